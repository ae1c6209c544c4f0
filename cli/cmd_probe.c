#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts.h"
#include "commands.h"
#include "conf.h"
#include "diagnose.h"
#include "duration.h"
#include "log.h"
#include "result.h"
#include "clock.h"
#include "engine.h"
#include "journal.h"
#include "rrd_feed.h"
#include "strmap.h"
#include "strbuf.h"
#include "xalloc.h"

struct probe_out {
	bool json;
	bool transcript;
	struct strmap latest;   /* probe id -> latest outcome (enum probe_outcome, as a pointer) */
	size_t n_results;
	struct rrd_feed *rrd;   /* final results to the RRD files */
	struct alerts *alerts;  /* final results to the seed states and the alert hook */
	const struct mon_conf *conf;  /* borrowed: the engine's, valid while it runs */
	struct diag_round *round;     /* the latest outcome per probe, for the round's diagnosis */
};

/* The diagnosis lines under a probe that was not accepted (or not read back as expected). */
static void print_diagnosis(const struct diagnosis *d)
{
	printf("%-20s   diagnosis: %s [%s]\n", "", d->cause, d->rule);
	printf("%-20s   next step: %s\n", "", d->next_step);
}

/* One line naming the sending identity's DNS checks that failed or ended in an error (the
 * evidence is in --json and `mailcanary dns`); nothing when every check passed or warned. */
static void print_dns_findings(const struct probe_dns *dns)
{
	static const char *const bad[] = { "fail", "error" };
	size_t n[2] = { 0, 0 };
	if (!dns)
		return;
	for (size_t i = 0; i < dns->n_checks; i++)
		for (int b = 0; b < 2; b++)
			n[b] += strcmp(dns->checks[i].status, bad[b]) == 0;
	if (!n[0] && !n[1])
		return;
	printf("%-20s   dns checks of %s:", "", dns->ip[0] ? dns->ip : "an unknown sending IP");
	for (int b = 0; b < 2; b++) {
		if (!n[b])
			continue;
		printf("%s %s ", b && n[0] ? ";" : "", bad[b]);
		const char *sep = "";
		for (size_t i = 0; i < dns->n_checks; i++) {
			if (strcmp(dns->checks[i].status, bad[b]) == 0) {
				printf("%s%s", sep, dns->checks[i].name);
				sep = ", ";
			}
		}
	}
	printf("%s\n", dns->cached ? " (cached)" : "");
}

static void print_human(const struct probe_result *r, bool transcript)
{
	const struct smtp_try *s = &r->smtp;
	char code[8] = "-", at[32];
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
	if (r->attempt > 1 && s->outcome == OUTCOME_ACCEPTED)
		printf("%-20s   accepted after %.1f s, at attempt %d\n", "", probe_accepted_after_s(r), r->attempt);
	else if (r->attempt > 1)
		printf("%-20s   attempt %d of probe %s\n", "", r->attempt, r->probe_id);
	if (!r->final && r->retry_at_ms)
		printf("%-20s   retry (attempt %d) at %s\n", "", r->attempt + 1, iso8601_ms(r->retry_at_ms, at, sizeof at));
	for (size_t i = 0; i < s->n_warnings; i++)
		printf("%-20s   warning: %s\n", "", s->warnings[i]);
	if (s->outcome != OUTCOME_ACCEPTED) {
		struct diagnosis d;
		struct diag_findings f;
		print_dns_findings(r->dns);
		diagnose_result(r, diag_findings_of_result(r, &f), &d);
		print_diagnosis(&d);
	}
	if (transcript)
		for (size_t i = 0; i < s->n_transcript; i++)
			printf("%-20s   %s\n", "", s->transcript[i]);
	fflush(stdout);
}

static void on_result(void *arg, const struct probe_result *r, const char *json)
{
	struct probe_out *o = arg;
	if (o->json) {
		/* the engine's line, unless the transcript goes with it */
		struct strbuf line;
		sb_init(&line);
		if (o->transcript)
			probe_result_json(r, &line, true);
		fputs(o->transcript ? line.s : json, stdout);
		fputc('\n', stdout);
		fflush(stdout);
		sb_fini(&line);
	} else {
		print_human(r, o->transcript);
	}
	/* A probe whose readback is pending counts as accepted until the readback says more. */
	strmap_put(&o->latest, r->probe_id, (void *)(uintptr_t)(r->smtp.outcome + 1));
	const struct conf_seed *cs = conf_seed_find(o->conf, r->seed);
	diag_round_add(o->round, r->probe_id, cs ? cs->domain : r->seed, r->smtp.outcome, r->smtp.stage);
	o->n_results++;
	if (r->final)
		alerts_feed_line(o->alerts, o->rrd, json);
}

static void on_readback(void *arg, const struct readback_done *d)
{
	struct probe_out *o = arg;
	if (d->json && *d->json)
		alerts_feed_line(o->alerts, o->rrd, d->json);
	if (o->json) {
		fputs(d->json, stdout);
		fputc('\n', stdout);
	} else {
		printf("%-20s %-9s %-9s", d->seed, "readback", d->status);
		if (*d->folder)
			printf(" %s%s", d->folder, d->placement_ok ? "" : " (not where expect_folder says)");
		if (d->delivery_s >= 0)
			printf(", delivered %.0f s after acceptance", d->delivery_s);
		if (*d->error)
			printf(": %s", d->error);
		printf("\n");
		if (*d->bounce)
			printf("%-20s %-9s %s%s\n", "", "bounce", d->bounce,
			       d->n_bounces > 1 ? " (and earlier ones, see --json)" : "");
		if (!d->ok && d->diagnosis)
			print_diagnosis(d->diagnosis);
	}
	fflush(stdout);
	if (!d->ok)
		strmap_put(&o->latest, d->probe_id, (void *)(uintptr_t)(OUTCOME_UNKNOWN + 2));
}

static void on_repaired(void *arg, const char *json)
{
	struct probe_out *o = arg;
	alerts_feed_line(o->alerts, o->rrd, json);
}

static void probe_usage(FILE *fp)
{
	fprintf(fp, "usage: mailcanary [-c FILE] probe [SEED...] [--json] [--transcript] [--no-readback] "
		    "[--wait DURATION]\n"
		    "       mailcanary [-c FILE] probe --due [--json] [--wait DURATION]\n");
}

/* The journal for this run: required by --due, taken when free otherwise. */
static int open_state(const struct mon_conf *conf, bool required, int *lock_fd, struct journal **j,
		      struct journal_state *st)
{
	char *err = NULL;
	*j = NULL;
	*lock_fd = journal_lock(conf->state_dir, &err);
	if (*lock_fd < 0) {
		if (required) {
			fprintf(stderr, "mailcanary: %s\n", err);
			free(err);
			return -1;
		}
		log_warnx("%s; this run keeps no journal: a deferral is retried only within --wait", err);
		free(err);
		return 0;
	}
	*j = journal_open(conf->state_dir, wall_ms(), st, &err);
	if (!*j) {
		fprintf(stderr, "mailcanary: journal: %s\n", err);
		free(err);
		close(*lock_fd);
		*lock_fd = -1;
		return -1;
	}
	if (st->n_corrupt)
		log_warnx("journal in %s: %zu corrupt record%s skipped", conf->state_dir, st->n_corrupt,
			  st->n_corrupt == 1 ? "" : "s");
	return 0;
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
	bool due = false, readback = true, wait_given = false;
	int64_t wait_ms = 0;
	int ch;
	memset(&out, 0, sizeof out);
	optind = 0; /* reinitialise getopt (main stopped at the command with "+"): options may follow operands */
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j': out.json = true; break;
		case 't': out.transcript = true; break;
		case 'n': readback = false; break;
		case 'w': {
			const char *err;
			if (duration_parse(optarg, &wait_ms, &err) < 0) {
				fprintf(stderr, "mailcanary: --wait %s: %s\n", optarg, err);
				return EXIT_USAGE;
			}
			wait_given = true;
			break;
		}
		case 'd': due = true; break;
		case 'h': probe_usage(stdout); return 0;
		default: probe_usage(stderr); return EXIT_USAGE;
		}
	}
	if (due && optind < argc) {
		fprintf(stderr, "mailcanary: probe --due runs what the schedules say is due: name no seeds\n");
		return EXIT_USAGE;
	}

	struct mon_conf *conf = cli_load_conf(g);
	if (!conf)
		return EXIT_USAGE;
	if (due)
		cli_log_setup(conf, g->verbose, false);

	/* The seeds: all, or the named ones in the order given. */
	int rc = 0;
	size_t n;
	const struct conf_seed **seeds = cli_select_seeds(g, conf, argv + optind, (size_t)(argc - optind), &n, &rc);
	if (rc == 0 && n == 0) {
		fprintf(stderr, "mailcanary: %s lists no seeds: nothing to probe\n", g->config_path);
		rc = EXIT_USAGE;
	}
	int lock_fd = -1;
	struct journal *journal = NULL;
	struct journal_state st;
	memset(&st, 0, sizeof st);
	if (rc == 0 && open_state(conf, due, &lock_fd, &journal, &st) < 0)
		rc = EXIT_USAGE;
	if (rc != 0) {
		free(seeds);
		conf_free(conf);
		return rc;
	}

	strmap_init(&out.latest, false);
	if (!out.json)
		printf("%-20s %-9s %-9s %-4s %-8s %9s  %s\n", "SEED", "OUTCOME", "STAGE", "CODE", "ENH", "TOTAL_MS",
		       "TEXT");
	struct engine_params ep = {
		.mode = due ? ENGINE_DUE : ENGINE_ONCE,
		.seeds = seeds,
		.n_seeds = due ? 0 : n,
		.keep_transcript = out.transcript,
		.journal = journal,
		.jstate = &st,
		.wait_ms = wait_ms,
		.grace_ms = due ? PROBE_DUE_GRACE_MS : -1,
		.readback = readback,
		/* A manual probe waits for its readbacks (not for retries), unless --wait says how long. */
		.wait_readback = !due && !wait_given,
		.on_result = on_result,
		.on_readback = on_readback,
		.on_repaired = on_repaired,
		.arg = &out,
	};
	char *err = NULL;
	out.conf = conf;
	out.round = diag_round_new();
	out.rrd = rrd_feed_new(conf); /* borrows conf, which the engine keeps until engine_free */
	out.alerts = alerts_new(conf); /* the same */
	rrd_feed_attach(out.rrd, NULL, alerts_rrd_done, &out.alerts); /* engine_new's repairs: written at once */
	struct engine *e = engine_new(conf, &ep, &err); /* takes conf and journal */
	journal_state_fini(&st);
	if (!e) {
		fprintf(stderr, "mailcanary: %s\n", err);
		free(err);
		rc = 1;
	} else {
		alerts_attach(out.alerts, engine_loop(e)); /* alert commands run beside the probes */
		rrd_feed_attach(out.rrd, engine_loop(e), alerts_rrd_done, &out.alerts); /* RRD files on a writer thread */
		engine_run(e);
		rrd_feed_drain(out.rrd); /* the last lines, and their alerts */
		alerts_drain(out.alerts); /* a one-shot run waits for its alert commands (bounded) */
		engine_free(e);
		size_t by[OUTCOME_UNKNOWN + 3] = { 0 }; /* + readback not found or misplaced */
		for (size_t i = 0; i < out.latest.cap; i++)
			if (out.latest.slots[i].key)
				by[(uintptr_t)out.latest.slots[i].value - 1]++;
		size_t probes = out.latest.n;
		/* Across the seeds: one provider refusing, or all of them. --json keeps stdout to one
		 * object per probe: the verdict is logged (event=round, shown with -v). */
		struct diag_round_verdict rv;
		if (diag_round_verdict(out.round, &rv) == 0) {
			if (!out.json)
				printf("round diagnosis: %s [%s]\n%-15s next step: %s\n", rv.cause, rv.rule, "", rv.next_step);
			else
				log_info("event=round rule=%s cause=\"%s\" next_step=\"%s\"", rv.rule, rv.cause,
					 rv.next_step);
		}
		if (!out.json) {
			printf("%zu probe%s: %zu accepted", probes, probes == 1 ? "" : "s", by[OUTCOME_ACCEPTED]);
			for (int o = OUTCOME_DEFERRED; o <= OUTCOME_UNKNOWN; o++)
				if (by[o])
					printf(", %zu %s", by[o], probe_outcome_name((enum probe_outcome)o));
			if (by[OUTCOME_UNKNOWN + 1])
				printf(", %zu not read back where expected", by[OUTCOME_UNKNOWN + 1]);
			printf("\n");
		}
		rc = probes - by[OUTCOME_ACCEPTED] || (!due && probes < n) ? EXIT_PROBLEM : 0;
	}
	rrd_feed_free(out.rrd);
	alerts_free(out.alerts);
	diag_round_free(out.round);
	strmap_fini(&out.latest);
	if (lock_fd >= 0)
		close(lock_fd);
	free(seeds);
	return rc;
}
