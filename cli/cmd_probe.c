#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "conf.h"
#include "duration.h"
#include "jsonlog.h"
#include "log.h"
#include "result.h"
#include "round.h"
#include "strbuf.h"
#include "xalloc.h"

struct probe_out {
	bool json;
	bool transcript;
	const char *state_dir;
	size_t n, n_accepted, n_by_outcome[OUTCOME_UNKNOWN + 1];
	bool log_warned;
};

static void print_human(const struct probe_result *r, bool transcript)
{
	const struct smtp_try *s = &r->smtp;
	char code[8] = "-";
	if (s->code)
		snprintf(code, sizeof code, "%d", s->code);
	const char *text = s->text[0] ? s->text : s->error;
	printf("%-20s %-9s %-9s %-4s %-8s %9.1f  %s\n", r->seed, probe_outcome_name(s->outcome),
	       probe_stage_name(s->stage), code, s->enhanced[0] ? s->enhanced : "-", r->total_ms, text);
	if (s->text[0] && s->error[0])
		printf("%-20s   error: %s\n", "", s->error);
	if (s->ip[0])
		printf("%-20s   via %s [%s]:%d%s%s%s\n", "", s->mx[0] ? s->mx : s->ip, s->ip, s->port,
		       s->tls_version[0] ? ", " : "", s->tls_version,
		       s->tls_version[0] ? (s->tls_verified ? " (verified)" : " (not verified)") : "");
	for (size_t i = 0; i + 1 < r->n_tries; i++) {
		const struct smtp_try *t = &r->tries[i];
		printf("%-20s   tried %s [%s]:%d: %s at %s: ", "", t->mx[0] ? t->mx : t->ip, t->ip, t->port,
		       probe_outcome_name(t->outcome), probe_stage_name(t->stage));
		if (t->code)
			printf("%d%s%s %s\n", t->code, t->enhanced[0] ? " " : "", t->enhanced, t->text);
		else
			printf("%s\n", t->error);
	}
	for (size_t i = 0; i < s->n_warnings; i++)
		printf("%-20s   warning: %s\n", "", s->warnings[i]);
	if (transcript)
		for (size_t i = 0; i < s->n_transcript; i++)
			printf("%-20s   %s\n", "", s->transcript[i]);
	fflush(stdout);
}

static void on_result(void *arg, const struct probe_result *r)
{
	struct probe_out *o = arg;
	struct strbuf line;
	sb_init(&line);
	probe_result_json(r, &line, o->transcript);
	if (o->json) {
		fputs(line.s, stdout);
		fputc('\n', stdout);
		fflush(stdout);
	} else {
		print_human(r, o->transcript);
	}
	/* The detail log never carries the transcript (it stays small); credentials never appear. */
	sb_reset(&line);
	probe_result_json(r, &line, false);
	char *err = NULL;
	if (jsonlog_append(o->state_dir, line.s, &err) < 0) {
		if (!o->log_warned)
			log_warnx("detail log not written: %s", err);
		o->log_warned = true;
		free(err);
	}
	sb_fini(&line);
	o->n++;
	o->n_by_outcome[r->smtp.outcome <= OUTCOME_UNKNOWN ? r->smtp.outcome : OUTCOME_NONE]++;
}

static void probe_usage(FILE *fp)
{
	fprintf(fp, "usage: mailcanary [-c FILE] probe [SEED...] [--json] [--transcript] [--no-readback] "
		    "[--wait DURATION]\n");
}

int cmd_probe(const struct cli_globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "transcript", no_argument, NULL, 't' },
		{ "no-readback", no_argument, NULL, 'n' },
		{ "wait", required_argument, NULL, 'w' },
		{ "due", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct probe_out out;
	int ch;
	memset(&out, 0, sizeof out);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j': out.json = true; break;
		case 't': out.transcript = true; break;
		case 'n': break; /* readback is not part of this version: always implied */
		case 'w': {
			int64_t ms;
			const char *err;
			if (duration_parse(optarg, &ms, &err) < 0) {
				fprintf(stderr, "mailcanary: --wait %s: %s\n", optarg, err);
				return EXIT_USAGE;
			}
			break; /* no pending readbacks or retries to wait for in this version */
		}
		case 'd':
			fprintf(stderr, "mailcanary: probe --due (the cron mode) is not available in this version yet\n");
			return EXIT_USAGE;
		case 'h': probe_usage(stdout); return 0;
		default: probe_usage(stderr); return EXIT_USAGE;
		}
	}

	struct mon_conf *conf = cli_load_conf(g);
	if (!conf)
		return EXIT_USAGE;

	/* The seeds: all, or the named ones in the order given. */
	size_t n = optind < argc ? (size_t)(argc - optind) : conf->n_seeds;
	const struct conf_seed **seeds = xcalloc(n + 1, sizeof *seeds);
	int rc = 0;
	if (optind < argc) {
		for (size_t i = 0; i < n; i++) {
			seeds[i] = conf_seed_find(conf, argv[optind + (int)i]);
			if (!seeds[i]) {
				fprintf(stderr, "mailcanary: no seed named '%s' in %s\n", argv[optind + (int)i],
					g->config_path);
				rc = EXIT_USAGE;
			}
		}
	} else {
		for (size_t i = 0; i < n; i++)
			seeds[i] = &conf->seeds[i];
	}
	if (rc == 0 && n == 0) {
		fprintf(stderr, "mailcanary: %s lists no seeds: nothing to probe\n", g->config_path);
		rc = EXIT_USAGE;
	}
	if (rc != 0) {
		free(seeds);
		conf_free(conf);
		return rc;
	}

	out.state_dir = conf->state_dir;
	if (!out.json)
		printf("%-20s %-9s %-9s %-4s %-8s %9s  %s\n", "SEED", "OUTCOME", "STAGE", "CODE", "ENH", "TOTAL_MS",
		       "TEXT");
	struct round_params rp = {
		.conf = conf,
		.seeds = seeds,
		.n_seeds = n,
		.keep_transcript = out.transcript,
		.on_result = on_result,
		.arg = &out,
	};
	char *err = NULL;
	if (round_run(&rp, &err) < 0) {
		fprintf(stderr, "mailcanary: %s\n", err);
		free(err);
		rc = 1;
	} else {
		size_t bad = out.n - out.n_by_outcome[OUTCOME_ACCEPTED];
		if (!out.json) {
			printf("%zu probe%s: %zu accepted", out.n, out.n == 1 ? "" : "s", out.n_by_outcome[OUTCOME_ACCEPTED]);
			for (int o = OUTCOME_DEFERRED; o <= OUTCOME_UNKNOWN; o++)
				if (out.n_by_outcome[o])
					printf(", %zu %s", out.n_by_outcome[o], probe_outcome_name((enum probe_outcome)o));
			printf("\n");
		}
		rc = bad || out.n != n ? EXIT_PROBLEM : 0;
	}
	free(seeds);
	conf_free(conf);
	return rc;
}
