/* `mailcanary check SEED [--warn-latency D] [--crit-latency D] [--no-readback]`: a Nagios/Icinga
 * plugin (Monitoring Plugins development guidelines). One probe of SEED now, as `probe SEED`
 * sends it (readback included when the seed has an imap group), without the state lock: it runs
 * beside the daemon on the same configuration, keeps no journal, retries nothing, and writes no
 * RRD update or alert (the daemon's trends stay its own; the result still goes to the detail
 * log). Standard output: one status line with performance data, then the diagnosis. Exit 0 OK,
 * 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
 *
 *   CRITICAL  rejected, failed, unknown; read back: missing, bounced, error; latency > crit
 *   WARNING   deferred (a throttle or greylisting: a retry would come later); junk or another
 *             folder than expect_folder; latency > warn
 *   OK        accepted, and found where expected (or not read back)
 *   UNKNOWN   usage or configuration error, no such seed, the probe could not run
 * The latency is the delivery time (acceptance to the mailbox) when the probe was read back,
 * else the SMTP session's total. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "conf.h"
#include "diagnose.h"
#include "duration.h"
#include "clock.h"
#include "engine.h"
#include "evloop.h"
#include "log.h"
#include "result.h"
#include "strbuf.h"

enum nagios { N_OK = 0, N_WARNING = 1, N_CRITICAL = 2, N_UNKNOWN = 3 };

/* Under the 60 s a Nagios or Icinga service check gets by default. */
#define CHECK_DEFAULT_TIMEOUT_MS 50000

static const char *const nagios_name[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };

/* What the verdict needs of the probe's latest SMTP result (the engine's is borrowed). */
struct check_smtp {
	char seed[128];
	enum probe_outcome outcome;
	enum probe_stage stage;
	int code;
	char enhanced[16];
	char text[512];
	char error[256];
	struct stage_times t;
	double total_ms;
	int attempt;
};

struct check_out {
	bool have;                /* an SMTP result came */
	struct check_smtp r;      /* the latest */
	struct diagnosis dg;      /* of the latest result or readback end */
	bool have_dg;
	bool rb_done;
	char rb_status[16];
	char folder[128];
	bool placement_ok;
	bool junk;
	double delivery_s;
	char rb_error[256];
	char bounce[512];
};

/* Every decided attempt: the latest one counts (with no journal and no wait nothing is retried;
 * an accepted probe's line says its readback is pending, on_readback tells the rest). */
static void on_result(void *arg, const struct probe_result *r, const char *json)
{
	struct check_out *o = arg;
	(void)json;
	struct check_smtp *c = &o->r;
	snprintf(c->seed, sizeof c->seed, "%s", r->seed);
	c->outcome = r->smtp.outcome;
	c->stage = r->smtp.stage;
	c->code = r->smtp.code;
	memcpy(c->enhanced, r->smtp.enhanced, sizeof c->enhanced);
	memcpy(c->text, r->smtp.text, sizeof c->text);
	memcpy(c->error, r->smtp.error, sizeof c->error);
	c->t = r->smtp.t;
	c->total_ms = r->total_ms;
	c->attempt = r->attempt;
	struct diag_findings f;
	diagnose_result(r, diag_findings_of_result(r, &f), &o->dg);
	o->have_dg = true;
	o->have = true;
}

static void on_readback(void *arg, const struct readback_done *d)
{
	struct check_out *o = arg;
	o->rb_done = true;
	snprintf(o->rb_status, sizeof o->rb_status, "%s", d->status);
	snprintf(o->folder, sizeof o->folder, "%s", d->folder);
	o->placement_ok = d->placement_ok;
	o->junk = d->junk;
	o->delivery_s = d->delivery_s;
	snprintf(o->rb_error, sizeof o->rb_error, "%s", d->error);
	snprintf(o->bounce, sizeof o->bounce, "%s", d->bounce);
	if (d->diagnosis) {
		o->dg = *d->diagnosis;
		o->have_dg = true;
	}
}

/* The plugin's own deadline: a probe still running is cut (engine_shutdown). */
struct check_deadline {
	struct engine *e;
	struct evtimer timer;
	bool fired;
};

static void on_deadline(void *arg)
{
	struct check_deadline *dl = arg;
	dl->fired = true;
	engine_shutdown(dl->e, 0);
}

/* The plugin output may not contain '|' before the performance data: servers' texts can. */
static void put_text(struct strbuf *sb, const char *s)
{
	for (; *s; s++)
		sb_appendc(sb, *s == '|' ? '/' : (*s == '\n' || *s == '\r') ? ' ' : *s);
}

/* 'label'=value[UOM];[warn];[crit];[min];[max] with thresholds in the value's unit. */
static void perf(struct strbuf *sb, const char *label, double v, const char *uom, double warn, double crit)
{
	sb_appendf(sb, " '%s'=%.3f%s;", label, v, uom);
	if (warn >= 0)
		sb_appendf(sb, "%.3f", warn);
	sb_appendc(sb, ';');
	if (crit >= 0)
		sb_appendf(sb, "%.3f", crit);
	sb_append(sb, ";0;");
}

/* "850 ms", "2.5 s". */
static const char *fmt_ms(double ms, char *buf, size_t len)
{
	if (ms < 1000.0)
		snprintf(buf, len, "%.0f ms", ms);
	else
		snprintf(buf, len, "%.1f s", ms / 1000.0);
	return buf;
}

static void check_usage(FILE *fp)
{
	fprintf(fp, "usage: mailcanary [-c FILE] check SEED [--warn-latency DURATION] [--crit-latency DURATION] "
		    "[--no-readback] [-t|--timeout DURATION]\n"
		    "Nagios/Icinga plugin: one probe now; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n"
		    "A DURATION is seconds (\"90\", \"2.5\") or takes a unit (\"500ms\", \"2m\").\n"
		    "--timeout (default 50 s): the readback gives up by then (missing: CRITICAL), and a\n"
		    "probe still running 2 s later is cut (CRITICAL).\n");
}

/* Seconds, or a duration with its unit. Returns 0 and *ms, or -1. */
static int parse_latency(const char *s, int64_t *ms)
{
	char *end;
	double sec = strtod(s, &end);
	if (end != s && *end == '\0' && sec >= 0 && sec < 1e9) {
		*ms = (int64_t)(sec * 1000.0 + 0.5);
		return 0;
	}
	const char *err;
	return duration_parse(s, ms, &err);
}

static int unknown(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int unknown(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("MAILCANARY UNKNOWN - ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	return N_UNKNOWN;
}

int cmd_check(const struct cli_globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "warn-latency", required_argument, NULL, 'w' },
		{ "crit-latency", required_argument, NULL, 'c' },
		{ "no-readback", no_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t warn_ms = -1, crit_ms = -1, timeout_ms = CHECK_DEFAULT_TIMEOUT_MS;
	bool readback = true;
	int ch;
	optind = 0; /* reinitialise getopt (main stopped at the command with "+"): options may follow operands */
	while ((ch = getopt_long(argc, argv, "ht:", longopts, NULL)) != -1) {
		switch (ch) {
		case 't':
			if (parse_latency(optarg, &timeout_ms) < 0 || timeout_ms < 1000) {
				check_usage(stderr);
				return unknown("--timeout %s: not a duration of at least 1 s", optarg);
			}
			break;
		case 'w':
		case 'c':
			if (parse_latency(optarg, ch == 'w' ? &warn_ms : &crit_ms) < 0) {
				check_usage(stderr);
				return unknown("--%s %s: not a duration", ch == 'w' ? "warn-latency" : "crit-latency", optarg);
			}
			break;
		case 'n': readback = false; break;
		case 'h': check_usage(stdout); return N_OK;
		default: check_usage(stderr); return unknown("usage error");
		}
	}
	if (argc - optind != 1) {
		check_usage(stderr);
		return unknown("name exactly one seed");
	}
	const char *seed_name = argv[optind];

	struct mon_conf *conf = NULL;
	struct conf_errors errs = { 0 };
	if (conf_load(g->config_path, &conf, &errs) < 0) {
		conf_errors_print(&errs, stderr);
		char first[512] = "";
		if (errs.n)
			snprintf(first, sizeof first, "%s:%d: %s%s%s", errs.v[0].file, errs.v[0].line, errs.v[0].key,
				 *errs.v[0].key ? ": " : "", errs.v[0].msg);
		conf_errors_fini(&errs);
		return unknown("configuration error: %s", first);
	}
	conf_errors_fini(&errs);
	const struct conf_seed *seed = conf_seed_find(conf, seed_name);
	if (!seed) {
		int rc = unknown("no seed named '%s' in %s", seed_name, g->config_path);
		conf_free(conf);
		return rc;
	}
	/* The readback gives up by the deadline (missing, CRITICAL), the rest is cut there. */
	if (conf->readback_timeout_ms > timeout_ms)
		conf->readback_timeout_ms = timeout_ms;
	const struct conf_seed *seeds[2] = { seed, NULL };
	struct check_out out;
	memset(&out, 0, sizeof out);
	out.delivery_s = -1;
	struct engine_params ep = {
		.mode = ENGINE_ONCE,
		.seeds = seeds,
		.n_seeds = 1,
		.journal = NULL, /* no state lock: beside the daemon; no retries */
		.wait_ms = 0,
		.grace_ms = -1,
		.readback = readback,
		.wait_readback = true,
		.on_result = on_result,
		.on_readback = on_readback,
		.arg = &out,
	};
	char *err = NULL;
	struct engine *e = engine_new(conf, &ep, &err); /* takes conf */
	if (!e) {
		int rc = unknown("cannot probe: %s", err);
		free(err);
		return rc;
	}
	struct check_deadline dl = { .e = e };
	evtimer_init(&dl.timer, on_deadline, &dl);
	evtimer_start(engine_loop(e), &dl.timer, mono_us() + (timeout_ms + 2000) * 1000);
	engine_run(e);
	evtimer_stop(engine_loop(e), &dl.timer);

	int rc = N_UNKNOWN, outcome_rc = N_UNKNOWN;
	struct strbuf msg, pd;
	sb_init(&msg);
	sb_init(&pd);
	if (dl.fired && !out.have) {
		rc = N_CRITICAL;
		sb_appendf(&msg, "%s: no result within %.0f s (a server that does not answer: see the stage timeouts)",
			   seed_name, (double)timeout_ms / 1000.0);
	} else if (!out.have) {
		sb_append(&msg, "the probe did not finish");
	} else {
		const struct check_smtp *r = &out.r, *s = &out.r;
		double lat_ms = r->total_ms;
		bool found = out.rb_done && strcmp(out.rb_status, "found") == 0;
		if (found && out.delivery_s >= 0)
			lat_ms = out.delivery_s * 1000.0;
		sb_appendf(&msg, "%s: ", r->seed);
		if (s->outcome != OUTCOME_ACCEPTED) {
			rc = s->outcome == OUTCOME_DEFERRED ? N_WARNING : N_CRITICAL;
			sb_appendf(&msg, "%s at %s", probe_outcome_name(s->outcome), probe_stage_name(s->stage));
			if (s->code) {
				sb_appendf(&msg, ": %d%s%s ", s->code, s->enhanced[0] ? " " : "", s->enhanced);
				put_text(&msg, s->text);
			} else if (s->error[0]) {
				sb_append(&msg, ": ");
				put_text(&msg, s->error);
			}
		} else {
			rc = N_OK;
			sb_appendf(&msg, "accepted in %.0f ms", r->total_ms);
			if (r->attempt > 1)
				sb_appendf(&msg, " (attempt %d)", r->attempt);
			if (out.rb_done && strcmp(out.rb_status, "skipped") != 0) {
				if (found) {
					sb_append(&msg, ", found in ");
					put_text(&msg, out.folder);
					if (out.delivery_s >= 0)
						sb_appendf(&msg, " %.1f s after acceptance", out.delivery_s);
					if (!out.placement_ok) {
						sb_append(&msg, out.junk ? " (junk)" : " (not where expect_folder says)");
						rc = N_WARNING;
					}
				} else {
					rc = N_CRITICAL;
					sb_appendf(&msg, ", readback %s", out.rb_status);
					if (out.bounce[0]) {
						sb_append(&msg, ": ");
						put_text(&msg, out.bounce);
					} else if (out.rb_error[0]) {
						sb_append(&msg, ": ");
						put_text(&msg, out.rb_error);
					}
				}
			}
		}
		/* The latency thresholds apply to the delivery when read back, else the SMTP total. */
		outcome_rc = rc;
		int64_t limit = crit_ms >= 0 && lat_ms > (double)crit_ms   ? crit_ms
				: warn_ms >= 0 && lat_ms > (double)warn_ms ? warn_ms
									   : -1;
		int lat_rc = limit < 0 ? N_OK : limit == crit_ms ? N_CRITICAL : N_WARNING;
		if (lat_rc > rc) {
			char v[32], l[32];
			rc = lat_rc;
			sb_appendf(&msg, "; %s %s above %s", found ? "delivery" : "SMTP time", fmt_ms(lat_ms, v, sizeof v),
				   fmt_ms((double)limit, l, sizeof l));
		}
		bool thr_total = !(found && out.delivery_s >= 0);
		perf(&pd, "total", r->total_ms, "ms", thr_total ? (double)warn_ms : -1, thr_total ? (double)crit_ms : -1);
		for (int st = 0; st < STAGE__COUNT; st++)
			if (s->t.present[st])
				perf(&pd, probe_stage_name((enum probe_stage)st), s->t.ms[st], "ms", -1, -1);
		if (found && out.delivery_s >= 0)
			perf(&pd, "delivery", out.delivery_s, "s", warn_ms >= 0 ? (double)warn_ms / 1000.0 : -1,
			     crit_ms >= 0 ? (double)crit_ms / 1000.0 : -1);
		sb_appendf(&pd, " 'attempts'=%d;;;1;", r->attempt);
		sb_appendf(&pd, " 'accepted'=%d;;;0;1", s->outcome == OUTCOME_ACCEPTED);
	}
	printf("MAILCANARY %s - %s%s%s\n", nagios_name[rc], msg.s, pd.len ? " |" : "", pd.s);
	/* The diagnosis explains an outcome; a latency alone says what it says. */
	if (outcome_rc != N_OK && out.have_dg) {
		printf("diagnosis: %s [%s]\n", out.dg.cause, out.dg.rule);
		printf("next step: %s\n", out.dg.next_step);
	}
	fflush(stdout);
	sb_fini(&msg);
	sb_fini(&pd);
	engine_free(e);
	return rc;
}
