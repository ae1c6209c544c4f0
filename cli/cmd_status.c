/* `mailcanary status [SEED...] [--json]`: the latest final result per configured seed from the
 * detail log (state_dir/results.jsonl and results.jsonl.1, read by latest.c), one table row per
 * seed with the diagnosis under each seed whose latest result is not a clean delivery; --json:
 * one object per seed and line with that result line as logged. Below the table, the round
 * diagnosis across the seeds' latest outcomes (one provider refusing, or all). Exit 0 all ok (or
 * no result yet), 1 any problem, 2 usage, configuration or detail log error. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "clock.h"
#include "commands.h"
#include "conf.h"
#include "diagnose.h"
#include "json.h"
#include "latest.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

#define STATUS_DEFAULT_WIDTH 160 /* stdout not a terminal and no $COLUMNS */
#define STATUS_MIN_TEXT 20
#define STATUS_ROUND_MS (24 * 3600 * 1000LL) /* results older than this are not in the round verdict */

enum seed_state { SEED_NONE, SEED_OK, SEED_PROBLEM };

static const char *seed_state_name(enum seed_state s)
{
	return s == SEED_OK ? "ok" : s == SEED_PROBLEM ? "problem" : "none";
}

/* A result line of its own (not only pending attempts), and what it says. A found late arrival
 * where it belongs is delivered (slowly): ok. */
static enum seed_state state_of(const struct latest_result *r)
{
	if (!r || !*r->line)
		return SEED_NONE;
	return r->state == LATEST_OK || r->state == LATEST_LATE ? SEED_OK : SEED_PROBLEM;
}

/* The OUTCOME column: the SMTP outcome, or with an accepted probe the readback's finding. */
static const char *outcome_label(const struct latest_result *r)
{
	switch (r->state) {
	case LATEST_OK: return "accepted";
	case LATEST_LATE: return "accepted/late";
	case LATEST_JUNK: return "accepted/junk";
	case LATEST_MISPLACED: return "accepted/misplaced";
	case LATEST_MISSING: return "accepted/missing";
	case LATEST_BOUNCED: return "bounced";
	case LATEST_RB_ERROR: return "accepted/rb-error";
	default: return *r->outcome ? r->outcome : latest_state_name(r->state);
	}
}

/* "45s", "3m", "2h", "5d"; "-" when the time is unknown. */
static void fmt_age(int64_t age_s, char *buf, size_t len)
{
	if (age_s < 0)
		snprintf(buf, len, "-");
	else if (age_s < 60)
		snprintf(buf, len, "%llds", (long long)age_s);
	else if (age_s < 3600)
		snprintf(buf, len, "%lldm", (long long)(age_s / 60));
	else if (age_s < 86400)
		snprintf(buf, len, "%lldh", (long long)(age_s / 3600));
	else
		snprintf(buf, len, "%lldd", (long long)(age_s / 86400));
}

/* Seconds since the probe was sent (0 when its clock was ahead), -1 when unknown. */
static int64_t age_of(const struct latest_result *r, int64_t now_ms)
{
	if (!r || !*r->line || r->sent_ms <= 0)
		return -1;
	return now_ms > r->sent_ms ? (now_ms - r->sent_ms) / 1000 : 0;
}

static int out_width(void)
{
	struct winsize ws;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	const char *c = getenv("COLUMNS");
	if (c && *c) {
		char *end;
		long v = strtol(c, &end, 10);
		if (*end == '\0' && v > 0 && v < 10000)
			return (int)v;
	}
	return STATUS_DEFAULT_WIDTH;
}

/* s on one line (control characters as spaces), cut to at most max display columns (counting
 * UTF-8 sequences as one) with "..." at the end when cut. */
static void put_cut(const char *s, int max)
{
	struct strbuf sb;
	sb_init(&sb);
	int cols = 0;
	size_t len = strlen(s), cut_at = 0;
	bool cut = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c & 0xC0) != 0x80) {
			if (cols == max - 3)
				cut_at = sb.len;
			if (cols == max) {
				cut = true;
				break;
			}
			cols++;
		}
		sb_appendc(&sb, c < 0x20 || c == 0x7F ? ' ' : (char)c);
	}
	if (cut) {
		sb.s[cut_at] = '\0';
		fputs(sb.s, stdout);
		fputs("...", stdout);
	} else if (sb.len) {
		fputs(sb.s, stdout);
	}
	sb_fini(&sb);
}

static void print_row(const char *seed, int seed_w, const struct latest_result *r, int64_t now_ms, int width)
{
	char code[12] = "-", delivery[24] = "-", age[24];
	enum seed_state st = state_of(r);
	if (st == SEED_NONE) {
		printf("%-*s %s\n", seed_w, seed, "no result yet");
		if (r && r->pending)
			printf("%-*s   pending: %s\n", seed_w, "", r->pending_what);
		return;
	}
	if (r->code)
		snprintf(code, sizeof code, "%d", r->code);
	if (!isnan(r->delivery_s))
		snprintf(delivery, sizeof delivery, "%.1f", r->delivery_s);
	fmt_age(age_of(r, now_ms), age, sizeof age);
	int used = printf("%-*s %-18s %-9s %-4s %-7s %8s %-10s %5s  ", seed_w, seed, outcome_label(r),
			  *r->stage ? r->stage : "-", code, *r->enhanced ? r->enhanced : "-", delivery,
			  *r->folder ? r->folder : "-", age);
	int room = width - used;
	put_cut(*r->text ? r->text : *r->error ? r->error : "-", room < STATUS_MIN_TEXT ? STATUS_MIN_TEXT : room);
	putchar('\n');
	if (*r->rb_error)
		printf("%-*s   readback: %s\n", seed_w, "", r->rb_error);
	bool clean = r->state == LATEST_OK;
	if (!clean && *r->cause) {
		printf("%-*s   diagnosis: %s%s%s%s\n", seed_w, "", r->cause, *r->rule ? " [" : "", r->rule,
		       *r->rule ? "]" : "");
		if (*r->next_step)
			printf("%-*s   next step: %s\n", seed_w, "", r->next_step);
	}
	if (r->pending)
		printf("%-*s   pending: %s\n", seed_w, "", r->pending_what);
}

static void print_json(const char *seed, const struct latest_result *r, int64_t now_ms)
{
	struct strbuf sb;
	struct json j;
	sb_init(&sb);
	json_init(&j, &sb);
	json_obj_begin(&j);
	json_kstr(&j, "seed", seed);
	enum seed_state st = state_of(r);
	json_kstr(&j, "state", seed_state_name(st));
	int64_t age = age_of(r, now_ms);
	json_key(&j, "age_s");
	if (age >= 0)
		json_int(&j, age);
	else
		json_null(&j);
	json_key(&j, "result");
	if (st != SEED_NONE)
		json_raw(&j, r->line);
	else
		json_null(&j);
	json_obj_end(&j);
	fputs(sb.s, stdout);
	fputc('\n', stdout);
	sb_fini(&sb);
}

/* Across the seeds shown: their latest SMTP outcomes (of the last 24 hours) as one round, by
 * destination domain (diagnose_round: one provider refusing while others accept, or all). */
static int round_of(const struct conf_seed **seeds, size_t n, const struct latest_results *lr, int64_t now_ms,
		    struct diag_round_verdict *out)
{
	struct diag_round *rd = diag_round_new();
	for (size_t i = 0; i < n; i++) {
		const struct latest_result *r = latest_find(lr, seeds[i]->name);
		enum probe_outcome o = r && *r->line ? probe_outcome_from_name(r->outcome) : OUTCOME_NONE;
		if (o == OUTCOME_NONE || r->sent_ms <= 0 || now_ms - r->sent_ms > STATUS_ROUND_MS)
			continue;
		diag_round_add(rd, seeds[i]->name, seeds[i]->domain, o, probe_stage_from_name(r->stage));
	}
	int rc = diag_round_verdict(rd, out);
	diag_round_free(rd);
	return rc;
}

static void status_usage(FILE *fp)
{
	fprintf(fp, "usage: mailcanary [-c FILE] status [SEED...] [--json]\n");
}

int cmd_status(const struct cli_globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int ch;
	optind = 0; /* reinitialise getopt (main stopped at the command with "+"): options may follow operands */
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j': json = true; break;
		case 'h': status_usage(stdout); return 0;
		default: status_usage(stderr); return EXIT_USAGE;
		}
	}

	struct mon_conf *conf = cli_load_conf(g);
	if (!conf)
		return EXIT_USAGE;

	/* The seeds: all configured ones, or the named ones in the order given. */
	int rc = 0;
	size_t n;
	const struct conf_seed **seeds = cli_select_seeds(g, conf, argv + optind, (size_t)(argc - optind), &n, &rc);
	if (rc == 0 && n == 0) {
		fprintf(stderr, "mailcanary: %s lists no seeds: no status to show\n", g->config_path);
		rc = EXIT_USAGE;
	}
	struct latest_results lr;
	memset(&lr, 0, sizeof lr);
	char *err = NULL;
	if (rc == 0 && latest_results_load(conf->state_dir, &lr, &err) < 0) {
		fprintf(stderr, "mailcanary: detail log: %s\n", err);
		free(err);
		rc = EXIT_USAGE;
	}
	if (rc != 0) {
		latest_results_fini(&lr);
		free(seeds);
		conf_free(conf);
		return rc;
	}
	if (lr.bad_lines)
		log_warnx("detail log %s/results.jsonl: %zu line%s not a result (skipped)", conf->state_dir,
			  lr.bad_lines, lr.bad_lines == 1 ? "" : "s");

	int64_t now_ms = wall_ms();
	int seed_w = 4;
	for (size_t i = 0; i < n; i++) {
		int l = (int)strlen(seeds[i]->name);
		if (l > seed_w)
			seed_w = l;
	}
	int width = out_width();
	if (!json)
		printf("%-*s %-18s %-9s %-4s %-7s %8s %-10s %5s  %s\n", seed_w, "SEED", "OUTCOME", "STAGE", "CODE", "ENH",
		       "DELIVERY", "FOLDER", "AGE", "TEXT");
	for (size_t i = 0; i < n; i++) {
		const struct latest_result *r = latest_find(&lr, seeds[i]->name);
		if (state_of(r) == SEED_PROBLEM)
			rc = EXIT_PROBLEM;
		if (json)
			print_json(seeds[i]->name, r, now_ms);
		else
			print_row(seeds[i]->name, seed_w, r, now_ms, width);
	}
	/* --json keeps stdout to one object per seed: the verdict is logged (event=round, -v). */
	struct diag_round_verdict rv;
	if (round_of(seeds, n, &lr, now_ms, &rv) == 0) {
		if (!json)
			printf("round diagnosis: %s [%s]\n%-15s next step: %s\n", rv.cause, rv.rule, "", rv.next_step);
		else
			log_info("event=round rule=%s cause=\"%s\" next_step=\"%s\"", rv.rule, rv.cause, rv.next_step);
	}
	fflush(stdout);
	latest_results_fini(&lr);
	free(seeds);
	conf_free(conf);
	return rc;
}
