/* mc_rrdstore: mailcanary's own RRD store code (store/store_rrd.c, the path `run` and `probe`
 * write through: layout from the schedule, creation under a temporary name, the layout check,
 * rrd_update_r or rrdcached's rrdc_update, and the Holt-Winters check of the alert hook) driven
 * without probes, for bench/rrd_updates.py and for tests that need a seed's file with a history
 * (tests/integration/test_alerts.py). Not installed.
 *
 *   mc_rrdstore write DIR SCHEDULE SEED [--daemon ADDR] [--hw]
 *       one sample per stdin line "UNIX_TIME DS=VALUE ..." (DS names as in the file, VALUE a
 *       number or U; the others unknown), written at that time as a probe's result would be;
 *       prints per line the time written and, with --hw, the FAILURES flags read after it
 *       ("hw=total,delivery", "hw=-" for none, "hw=none" when no row was read)
 *   mc_rrdstore bench DIR SCHEDULE --seeds N --rounds R [--daemon ADDR] [--start T]
 *       creates N seed files s00000 ... (the first update of each creates it), then R rounds
 *       of one update per seed (a step apart), then R more with the Holt-Winters check after
 *       each update, and with a daemon a flush of every file; one JSON object with wall time and
 *       this process's CPU (getrusage) per phase. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "store_rrd.h"

static void usage(void)
{
	fprintf(stderr, "usage: mc_rrdstore write DIR SCHEDULE SEED [--daemon ADDR] [--hw]\n"
			"       mc_rrdstore bench DIR SCHEDULE --seeds N --rounds R [--daemon ADDR] [--start T]\n");
	exit(2);
}

static int ds_index(const char *name, size_t len)
{
	for (int i = 0; i < STORE_RRD_DS__COUNT; i++) {
		const char *n = store_rrd_ds_name((enum store_rrd_ds)i);
		if (strlen(n) == len && memcmp(n, name, len) == 0)
			return i;
	}
	return -1;
}

static void print_mask(unsigned mask, int64_t row)
{
	if (!row) {
		printf(" hw=none");
		return;
	}
	if (!mask) {
		printf(" hw=-");
		return;
	}
	const char *sep = " hw=";
	for (int i = 0; i < STORE_RRD_DS__COUNT; i++)
		if (mask & (1u << i)) {
			printf("%s%s", sep, store_rrd_ds_name((enum store_rrd_ds)i));
			sep = ",";
		}
}

static int cmd_write(struct store_rrd *s, const struct store_rrd_layout *l, const char *seed, bool hw)
{
	char line[4096];
	unsigned lineno = 0;
	int rc = 0;
	while (fgets(line, sizeof line, stdin)) {
		lineno++;
		char *p = line, *end;
		while (*p == ' ')
			p++;
		if (*p == '\n' || *p == '\0' || *p == '#')
			continue;
		long long t = strtoll(p, &end, 10);
		if (end == p || t <= 0) {
			fprintf(stderr, "mc_rrdstore: stdin:%u: no time\n", lineno);
			return 2;
		}
		struct store_rrd_sample v;
		store_rrd_sample_init(&v);
		for (char *tok = strtok(end, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
			char *eq = strchr(tok, '=');
			int ds = eq ? ds_index(tok, (size_t)(eq - tok)) : -1;
			if (ds < 0) {
				fprintf(stderr, "mc_rrdstore: stdin:%u: %s: not DS=VALUE with a DS of the file\n", lineno, tok);
				return 2;
			}
			v.v[ds] = strcmp(eq + 1, "U") == 0 ? NAN : strtod(eq + 1, NULL);
		}
		int64_t at = 0;
		char *err = NULL;
		if (store_rrd_update(s, seed, l, (int64_t)t, &v, &at, &err) < 0) {
			fprintf(stderr, "mc_rrdstore: stdin:%u: %s\n", lineno, err);
			free(err);
			rc = 1;
			continue;
		}
		printf("%" PRId64, at);
		if (hw) {
			unsigned mask = 0;
			int64_t row = 0;
			if (store_rrd_hw_failures(s, seed, l, &mask, &row, &err) < 0) {
				fprintf(stderr, "mc_rrdstore: stdin:%u: %s\n", lineno, err);
				free(err);
				rc = 1;
			}
			print_mask(mask, row);
		}
		printf("\n");
	}
	return rc;
}

struct meter {
	int64_t us;
	struct rusage ru;
};

static void meter_start(struct meter *m)
{
	getrusage(RUSAGE_SELF, &m->ru);
	m->us = mono_us();
}

static double tv_s(struct timeval a, struct timeval b)
{
	return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_usec - a.tv_usec) / 1e6;
}

/* Prints "NAME": {...} for the phase that began at m. */
static void meter_print(const struct meter *m, const char *name, long ops, bool comma)
{
	struct rusage now;
	getrusage(RUSAGE_SELF, &now);
	double wall = (double)(mono_us() - m->us) / 1e6;
	double user = tv_s(m->ru.ru_utime, now.ru_utime), sys = tv_s(m->ru.ru_stime, now.ru_stime);
	printf("\"%s\": {\"ops\": %ld, \"wall_s\": %.4f, \"cpu_user_s\": %.4f, \"cpu_sys_s\": %.4f, "
	       "\"per_s\": %.1f, \"cpu_us_per_op\": %.2f, \"inblock\": %ld, \"oublock\": %ld}%s\n",
	       name, ops, wall, user, sys, wall > 0 ? (double)ops / wall : 0.0, ops ? (user + sys) * 1e6 / (double)ops : 0.0,
	       now.ru_inblock - m->ru.ru_inblock, now.ru_oublock - m->ru.ru_oublock, comma ? "," : "");
	fflush(stdout); /* one line per phase as it ends: the caller samples rrdcached's CPU then */
}

static void sample_for(struct store_rrd_sample *v, long seed, long round)
{
	store_rrd_sample_init(v);
	double base = 5 + (double)(seed % 17) * 0.25 + (double)(round % 5) * 0.1;
	for (int i = STORE_RRD_CONNECT; i <= STORE_RRD_EOD; i++)
		if (i != STORE_RRD_AUTH)
			v->v[i] = base * (1 + i % 3);
	v->v[STORE_RRD_TOTAL] = base * 20;
	v->v[STORE_RRD_DELIVERY] = 1 + (double)(round % 3);
	v->v[STORE_RRD_ACCEPTED] = 1;
	v->v[STORE_RRD_DEFERRED] = 0;
	v->v[STORE_RRD_REJECTED] = 0;
	v->v[STORE_RRD_FAILED] = 0;
	v->v[STORE_RRD_INBOX] = 1;
	v->v[STORE_RRD_ATTEMPTS] = 1;
}

static int update_all(struct store_rrd *s, const struct store_rrd_layout *l, long n, long round, int64_t t,
		      bool hw, long *flagged)
{
	char seed[32];
	struct store_rrd_sample v;
	for (long i = 0; i < n; i++) {
		snprintf(seed, sizeof seed, "s%05ld", i);
		sample_for(&v, i, round);
		char *err = NULL;
		if (store_rrd_update(s, seed, l, t, &v, NULL, &err) < 0) {
			fprintf(stderr, "mc_rrdstore: %s: %s\n", seed, err);
			free(err);
			return -1;
		}
		if (hw) {
			unsigned mask = 0;
			int64_t row = 0;
			if (store_rrd_hw_failures(s, seed, l, &mask, &row, &err) < 0) {
				fprintf(stderr, "mc_rrdstore: %s: %s\n", seed, err);
				free(err);
				return -1;
			}
			if (mask)
				(*flagged)++;
		}
	}
	return 0;
}

static int cmd_bench(struct store_rrd *s, const struct store_rrd_layout *l, const char *schedule, long n,
		     long rounds, int64_t start, const char *daemon)
{
	int64_t t = start - start % l->step_s;
	long flagged = 0;
	struct meter m;
	printf("{\"seeds\": %ld, \"rounds\": %ld, \"schedule\": \"%s\", \"step_s\": %" PRId64 ", \"daemon\": %s%s%s,\n",
	       n, rounds, schedule, l->step_s, daemon ? "\"" : "", daemon ? daemon : "null", daemon ? "\"" : "");
	meter_start(&m);
	if (update_all(s, l, n, 0, t, false, &flagged) < 0)
		return 1;
	meter_print(&m, "create", n, true);
	meter_start(&m);
	for (long r = 1; r <= rounds; r++)
		if (update_all(s, l, n, r, t + r * l->step_s, false, &flagged) < 0)
			return 1;
	meter_print(&m, "update", n * rounds, true);
	meter_start(&m);
	for (long r = rounds + 1; r <= 2 * rounds; r++)
		if (update_all(s, l, n, r, t + r * l->step_s, true, &flagged) < 0)
			return 1;
	meter_print(&m, "update_hw", n * rounds, true);
	if (daemon) {
		meter_start(&m);
		char seed[32];
		for (long i = 0; i < n; i++) {
			char *err = NULL;
			snprintf(seed, sizeof seed, "s%05ld", i);
			if (store_rrd_flush(s, seed, &err) < 0) {
				fprintf(stderr, "mc_rrdstore: flush %s: %s\n", seed, err);
				free(err);
				return 1;
			}
		}
		meter_print(&m, "flush", n, true);
	}
	printf("\"hw_flagged\": %ld, \"last_time\": %" PRId64 "}\n", flagged, t + 2 * rounds * l->step_s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		usage();
	const char *cmd = argv[1], *dir = argv[2], *schedule = argv[3], *seed = NULL, *daemon = NULL;
	bool hw = false;
	long n = 0, rounds = 0;
	int64_t start = (int64_t)time(NULL) - 30 * 86400;
	int i = 4;
	if (strcmp(cmd, "write") == 0) {
		if (argc < 5)
			usage();
		seed = argv[i++];
	} else if (strcmp(cmd, "bench") != 0) {
		usage();
	}
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--daemon") == 0 && i + 1 < argc)
			daemon = argv[++i];
		else if (strcmp(argv[i], "--hw") == 0)
			hw = true;
		else if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc)
			n = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--start") == 0 && i + 1 < argc)
			start = strtoll(argv[++i], NULL, 10);
		else
			usage();
	}
	log_init("mc_rrdstore", getenv("MC_RRDSTORE_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN, false, 0);
	struct store_rrd_layout l;
	char *err = NULL;
	if (store_rrd_layout_for_schedule(schedule, &l, &err) < 0) {
		fprintf(stderr, "mc_rrdstore: %s: %s\n", schedule, err);
		free(err);
		return 2;
	}
	struct store_rrd_params p = { .dir = dir, .daemon = daemon };
	struct store_rrd *s = store_rrd_new(&p);
	int rc;
	if (seed)
		rc = cmd_write(s, &l, seed, hw);
	else if (n <= 0 || rounds <= 0)
		usage(), rc = 2;
	else
		rc = cmd_bench(s, &l, schedule, n, rounds, start, daemon);
	store_rrd_free(s);
	fflush(stdout);
	return rc;
}
