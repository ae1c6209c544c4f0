/* mailcanary graph: PNG graphs per seed and period from the RRD files, and a static dashboard
 * (index.html plus one page per seed) with each seed's state from the detail log.
 *
 * librrd's graphing is not thread-safe: this command draws in its own process, from one thread
 * per process. With --jobs N it forks N workers that each draw a share of the seeds (the
 * process has no other threads, so fork() is safe here), and writes the pages itself. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "commands.h"
#include "conf.h"
#include "graph.h"
#include "latest.h"
#include "log.h"
#include "store_rrd.h"
#include "strbuf.h"
#include "xalloc.h"

#define MAX_JOBS 64

/* SIGTERM or SIGINT: stop after the graph being drawn (no temporary file is left behind), pass
 * it on to the workers, and write no pages. The daemon's graph_every child is stopped so. */
static volatile sig_atomic_t interrupted;
static pid_t worker_pids[MAX_JOBS];
static volatile sig_atomic_t n_worker_pids;

static void on_stop_signal(int sig)
{
	interrupted = sig;
	for (sig_atomic_t i = 0; i < n_worker_pids; i++)
		if (worker_pids[i] > 0)
			kill(worker_pids[i], sig);
}

struct graph_run {
	const struct mon_conf *conf;
	const char *out;
	bool periods[GRAPH_PERIOD__COUNT];
	int width, height;
	int64_t end_s;
	bool commands;                   /* print rrdtool commands, draw nothing */
	struct store_rrd *store;         /* paths and rrdcached flushes; NULL with rrd = false */
	const struct conf_seed **seeds;
	size_t n_seeds;
	struct graph_seed *rows;         /* per seed: what was drawn */
};

static void graph_usage(FILE *fp)
{
	fprintf(fp, "usage: mailcanary [-c FILE] [-v] graph --out DIR [--period 1d|1w|1m|1y]... [--width N] "
		    "[--height N] [--jobs N] [SEED...]\n"
		    "       mailcanary [-c FILE] graph --commands [--out DIR] [--period ...] [SEED...]\n");
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "mailcanary: graph: %s %s: want a number from %d to %d\n", opt, s, lo, hi);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static bool local_files(const struct mon_conf *conf)
{
	const char *d = conf->rrdcached;
	return !d || !*d || strncmp(d, "unix:", 5) == 0 || d[0] == '/';
}

/* Draws (or prints) every graph of seed i; marks what was drawn in rows[i]. Returns the
 * number of graphs that failed. */
static unsigned draw_seed(struct graph_run *G, size_t i)
{
	const struct conf_seed *cs = G->seeds[i];
	struct graph_seed *row = &G->rows[i];
	if (!G->store) {
		row->no_graphs = "RRD files are off (rrd = false)";
		return 0;
	}
	char *path = store_rrd_path(G->store, cs->name);
	struct stat st;
	if (local_files(G->conf) && stat(path, &st) < 0) {
		row->no_graphs = "no RRD file yet";
		log_info("event=graph seed=%s status=skipped reason=\"no RRD file %s\"", cs->name, path);
		free(path);
		return 0;
	}
	char *err = NULL;
	if (!G->commands && store_rrd_flush(G->store, cs->name, &err) < 0) {
		log_warnx("event=graph seed=%s status=flush-failed error=\"%s\"", cs->name, err);
		free(err);
		err = NULL;
	}
	char *title = G->conf->vantage && *G->conf->vantage ? xasprintf("%s (%s)", cs->name, G->conf->vantage)
							   : xstrdup(cs->name);
	unsigned failed = 0;
	for (int p = 0; p < GRAPH_PERIOD__COUNT; p++) {
		if (!G->periods[p])
			continue;
		for (int k = 0; k < GRAPH_KIND__COUNT && !interrupted; k++) {
			char *rel = graph_image_rel(cs->name, (enum graph_kind)k, (enum graph_period)p);
			char *out = xasprintf("%s/%s", G->out, rel);
			struct graph_params gp = {
				.rrd_path = path,
				.daemon = G->conf->rrdcached,
				.out_path = out,
				.title = title,
				.kind = (enum graph_kind)k,
				.period = (enum graph_period)p,
				.width = G->width,
				.height = G->height,
				.end_s = G->end_s,
			};
			int rc = G->commands ? graph_command(&gp, stdout, &err) : graph_draw(&gp, &err);
			if (rc == 0) {
				row->graphs[k][p] = true;
			} else {
				fprintf(stderr, "mailcanary: graph: %s\n", err);
				free(err);
				err = NULL;
				failed++;
			}
			free(rel);
			free(out);
		}
	}
	if (failed)
		row->no_graphs = "drawing failed (see the log of mailcanary graph)";
	free(title);
	free(path);
	return failed;
}

/* With jobs > 1: workers draw seeds i % jobs == w and report, per seed, a bitmap of the graphs
 * drawn through a pipe. Returns the number of failed graphs. */
static unsigned draw_all(struct graph_run *G, int jobs)
{
	unsigned failed = 0;
	if (jobs <= 1 || G->n_seeds < 2 || G->commands) {
		for (size_t i = 0; i < G->n_seeds; i++)
			failed += draw_seed(G, i);
		return failed;
	}
	if ((size_t)jobs > G->n_seeds)
		jobs = (int)G->n_seeds;
	fflush(NULL);
	pid_t pids[MAX_JOBS];
	int fds[MAX_JOBS];
	int started = 0;
	for (int w = 0; w < jobs; w++) {
		int pfd[2];
		if (pipe(pfd) < 0) {
			log_warn("graph: pipe");
			break;
		}
		pid_t pid = fork();
		if (pid > 0) {
			worker_pids[started] = pid;
			n_worker_pids = started + 1;
		}
		if (pid < 0) {
			log_warn("graph: fork");
			close(pfd[0]);
			close(pfd[1]);
			break;
		}
		if (pid == 0) {
			n_worker_pids = 0;
			close(pfd[0]);
			for (int o = 0; o < started; o++)
				close(fds[o]);
			unsigned f = 0;
			for (size_t i = (size_t)w; i < G->n_seeds; i += (size_t)jobs) {
				f += draw_seed(G, i);
				uint32_t rec[2] = { (uint32_t)i, 0 };
				for (int k = 0; k < GRAPH_KIND__COUNT; k++)
					for (int p = 0; p < GRAPH_PERIOD__COUNT; p++)
						if (G->rows[i].graphs[k][p])
							rec[1] |= 1u << (k * GRAPH_PERIOD__COUNT + p);
				if (G->rows[i].no_graphs && strcmp(G->rows[i].no_graphs, "no RRD file yet") == 0)
					rec[1] |= 1u << 30;
				if (write(pfd[1], rec, sizeof rec) != (ssize_t)sizeof rec)
					_exit(3);
			}
			fflush(NULL);
			_exit(f ? 1 : 0);
		}
		close(pfd[1]);
		pids[started] = pid;
		fds[started] = pfd[0];
		started++;
	}
	if (started == 0) { /* no workers: draw here */
		for (size_t i = 0; i < G->n_seeds; i++)
			failed += draw_seed(G, i);
		return failed;
	}
	for (int w = 0; w < started; w++) {
		uint32_t rec[2];
		size_t seen = 0;
		while (read(fds[w], rec, sizeof rec) == (ssize_t)sizeof rec) {
			if (rec[0] >= G->n_seeds)
				continue;
			struct graph_seed *row = &G->rows[rec[0]];
			for (int k = 0; k < GRAPH_KIND__COUNT; k++)
				for (int p = 0; p < GRAPH_PERIOD__COUNT; p++)
					row->graphs[k][p] = (rec[1] >> (k * GRAPH_PERIOD__COUNT + p)) & 1;
			if (rec[1] & (1u << 30))
				row->no_graphs = "no RRD file yet";
			else if (!G->store)
				row->no_graphs = "RRD files are off (rrd = false)";
			else if (!(rec[1] & ((1u << (GRAPH_KIND__COUNT * GRAPH_PERIOD__COUNT)) - 1)))
				row->no_graphs = "drawing failed (see the log of mailcanary graph)";
			seen++;
		}
		close(fds[w]);
		int status = 0;
		while (waitpid(pids[w], &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
		size_t want = 0;
		for (size_t i = (size_t)w; i < G->n_seeds; i += (size_t)jobs)
			want++;
		if (seen != want) {
			fprintf(stderr, "mailcanary: graph: worker %d stopped after %zu of %zu seeds\n", w, seen, want);
			failed++;
		}
	}
	/* Seeds of workers that never started. */
	for (size_t i = 0; i < G->n_seeds; i++)
		if ((int)(i % (size_t)jobs) >= started)
			failed += draw_seed(G, i);
	return failed;
}

static char *fmt_time(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[64];
	gmtime_r(&t, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
	return xstrdup(buf);
}

/* Strings of one row that the row points to; freed after the pages are written. */
struct row_text {
	char *since, *last_at, *outcome, *reply, *readback;
};

static void fill_row(struct graph_seed *row, struct row_text *t, const struct conf_seed *cs,
		     const struct latest_result *r)
{
	row->name = cs->name;
	row->address = cs->address;
	row->sender = cs->sender_name;
	row->schedule = cs->schedule ? cs->schedule : "hourly";
	if (!r) {
		row->state = "no result yet";
		row->severity = GRAPH_SEV_NONE;
		return;
	}
	row->state = latest_state_name(r->state);
	row->severity = r->state == LATEST_OK ? GRAPH_SEV_OK : latest_state_warn(r->state) ? GRAPH_SEV_WARN : GRAPH_SEV_BAD;
	struct strbuf sb;
	sb_init(&sb);
	char *since = fmt_time(r->run_since_ms);
	if (r->run > 1)
		sb_appendf(&sb, "%u results in a row, since %s", r->run, since);
	else
		sb_appendf(&sb, "since %s", since);
	free(since);
	if (r->state != LATEST_OK && r->last_ok_ms) {
		char *ok = fmt_time(r->last_ok_ms);
		sb_appendf(&sb, "; last ok %s", ok);
		free(ok);
	} else if (r->state != LATEST_OK) {
		sb_append(&sb, "; never ok in the log");
	}
	t->since = sb_steal(&sb);
	row->since = t->since;
	t->last_at = fmt_time(r->sent_ms);
	row->last_at = t->last_at;
	sb_append(&sb, r->outcome);
	if (r->attempts > 1)
		sb_appendf(&sb, " (attempt %d)", r->attempts);
	if (!isnan(r->accepted_after_s) && r->attempts > 1)
		sb_appendf(&sb, " after %.0f s", r->accepted_after_s);
	t->outcome = sb_steal(&sb);
	row->outcome = t->outcome;
	row->stage = strcmp(r->outcome, "accepted") == 0 ? "" : r->stage;
	if (r->code)
		sb_appendf(&sb, "%d ", r->code);
	if (*r->enhanced)
		sb_appendf(&sb, "%s ", r->enhanced);
	sb_append(&sb, *r->text ? r->text : r->error);
	if (*r->text && *r->error)
		sb_appendf(&sb, " (%s)", r->error);
	t->reply = sb_steal(&sb);
	row->reply = t->reply;
	if (strcmp(r->rb_status, "found") == 0) {
		sb_appendf(&sb, "found in %s%s", r->folder, r->junk ? " (junk)" : "");
		if (!isnan(r->delivery_s))
			sb_appendf(&sb, ", delivered in %.0f s", r->delivery_s);
		if (r->state == LATEST_LATE)
			sb_append(&sb, ", late (after it was reported missing)");
	} else if (strcmp(r->rb_status, "skipped") == 0 || !*r->rb_status) {
		sb_append(&sb, "not read back");
	} else {
		sb_append(&sb, r->rb_status);
		if (*r->rb_error)
			sb_appendf(&sb, ": %s", r->rb_error);
	}
	t->readback = sb_steal(&sb);
	row->readback = t->readback;
	row->note = r->pending ? r->pending_what : "";
	sb_fini(&sb);
}

int cmd_graph(const struct cli_globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "period", required_argument, NULL, 'p' },
		{ "width", required_argument, NULL, 'W' },
		{ "height", required_argument, NULL, 'H' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "commands", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct graph_run G;
	memset(&G, 0, sizeof G);
	G.width = GRAPH_DEFAULT_WIDTH;
	G.height = GRAPH_DEFAULT_HEIGHT;
	int jobs = 1, ch;
	bool any_period = false;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "ho:p:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'o': G.out = optarg; break;
		case 'p': {
			enum graph_period p;
			if (graph_period_parse(optarg, &p) < 0) {
				fprintf(stderr, "mailcanary: graph: --period %s: want 1d, 1w, 1m or 1y\n", optarg);
				return EXIT_USAGE;
			}
			G.periods[p] = any_period = true;
			break;
		}
		case 'W':
			if (parse_int("--width", optarg, GRAPH_MIN_WIDTH, GRAPH_MAX_WIDTH, &G.width) < 0)
				return EXIT_USAGE;
			break;
		case 'H':
			if (parse_int("--height", optarg, GRAPH_MIN_HEIGHT, GRAPH_MAX_HEIGHT, &G.height) < 0)
				return EXIT_USAGE;
			break;
		case 'j':
			if (parse_int("--jobs", optarg, 1, MAX_JOBS, &jobs) < 0)
				return EXIT_USAGE;
			break;
		case 'C': G.commands = true; break;
		case 'h': graph_usage(stdout); return 0;
		default: graph_usage(stderr); return EXIT_USAGE;
		}
	}
	if (!G.out && !G.commands) {
		fprintf(stderr, "mailcanary: graph: --out DIR is required\n");
		graph_usage(stderr);
		return EXIT_USAGE;
	}
	if (!G.out)
		G.out = ".";
	if (!any_period)
		for (int p = 0; p < GRAPH_PERIOD__COUNT; p++)
			G.periods[p] = true;

	struct mon_conf *conf = cli_load_conf(g);
	if (!conf)
		return EXIT_USAGE;
	cli_log_setup(conf, g->verbose, false);
	G.conf = conf;
	int rc = 0;
	/* The seeds: the named ones (each once, in configuration order), else all. */
	G.seeds = xcalloc(conf->n_seeds ? conf->n_seeds : 1, sizeof *G.seeds);
	for (int i = optind; i < argc; i++) {
		if (!conf_seed_find(conf, argv[i])) {
			fprintf(stderr, "mailcanary: graph: no seed named '%s' in %s\n", argv[i], conf->path);
			rc = EXIT_USAGE;
		}
	}
	if (rc) {
		free(G.seeds);
		conf_free(conf);
		return rc;
	}
	for (size_t s = 0; s < conf->n_seeds; s++) {
		bool want = optind >= argc;
		for (int i = optind; i < argc && !want; i++)
			want = strcmp(argv[i], conf->seeds[s].name) == 0;
		if (want)
			G.seeds[G.n_seeds++] = &conf->seeds[s];
	}
	G.rows = xcalloc(G.n_seeds ? G.n_seeds : 1, sizeof *G.rows);
	if (conf->rrd) {
		struct store_rrd_params sp = { .dir = conf->rrd_dir, .daemon = conf->rrdcached, .vantage = conf->vantage };
		G.store = store_rrd_new(&sp);
	}
	int64_t t0 = mono_us();
	G.end_s = wall_ms() / 1000;

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	unsigned failed = draw_all(&G, jobs);
	if (interrupted) {
		log_warnx("event=graph status=interrupted signal=%d out=%s: stopped, pages not written", (int)interrupted,
			  G.out);
		store_rrd_free(G.store);
		free(G.rows);
		free(G.seeds);
		conf_free(conf);
		return 1;
	}
	if (G.commands) {
		store_rrd_free(G.store);
		free(G.rows);
		free(G.seeds);
		conf_free(conf);
		return failed ? 1 : 0;
	}

	struct latest_results lr;
	char *err = NULL;
	if (latest_results_load(conf->state_dir, &lr, &err) < 0) {
		fprintf(stderr, "mailcanary: graph: detail log: %s\n", err);
		free(err);
		err = NULL;
		failed++;
	} else if (lr.bad_lines) {
		log_warnx("event=graph detail_log=%s/results.jsonl bad_lines=%zu (skipped)", conf->state_dir, lr.bad_lines);
	}
	struct row_text *texts = xcalloc(G.n_seeds ? G.n_seeds : 1, sizeof *texts);
	for (size_t i = 0; i < G.n_seeds; i++)
		fill_row(&G.rows[i], &texts[i], G.seeds[i], latest_find(&lr, G.seeds[i]->name));

	char *generated = fmt_time(wall_ms());
	char *title = conf->vantage && *conf->vantage ? xasprintf("mailcanary: vantage %s", conf->vantage)
						      : xstrdup("mailcanary");
	struct graph_dashboard d = {
		.title = title,
		.generated = generated,
		.note = conf->rrd ? NULL : "No graphs: RRD files are off (rrd = false).",
		.seeds = G.rows,
		.n_seeds = G.n_seeds,
		.width = G.width,
		.height = G.height,
	};
	memcpy(d.periods, G.periods, sizeof d.periods);
	if (graph_dashboard_write(G.out, &d, &err) < 0) {
		fprintf(stderr, "mailcanary: graph: %s\n", err);
		free(err);
		rc = 1;
	}
	size_t n_graphs = 0;
	for (size_t i = 0; i < G.n_seeds; i++)
		for (int k = 0; k < GRAPH_KIND__COUNT; k++)
			for (int p = 0; p < GRAPH_PERIOD__COUNT; p++)
				n_graphs += G.rows[i].graphs[k][p];
	log_info("event=graph status=%s out=%s seeds=%zu graphs=%zu failed=%u ms=%" PRId64, failed || rc ? "failed" : "ok",
		 G.out, G.n_seeds, n_graphs, failed, (mono_us() - t0) / 1000);

	for (size_t i = 0; i < G.n_seeds; i++) {
		free(texts[i].since);
		free(texts[i].last_at);
		free(texts[i].outcome);
		free(texts[i].reply);
		free(texts[i].readback);
	}
	free(texts);
	free(generated);
	free(title);
	latest_results_fini(&lr);
	store_rrd_free(G.store);
	free(G.rows);
	free(G.seeds);
	conf_free(conf);
	return failed || rc ? 1 : 0;
}
