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
	struct graph_seed *rows;         /* per seed: the dashboard's row */
	/* The vantages drawn side by side: this host's (conf's vantage, "" without one) first, then
	 * every other one that has a file of a seed drawn; one with just this host's is the page of
	 * old. Units are (seed, vantage) pairs, seed-major. */
	char **vantages;
	size_t n_v;
	struct graph_seed *cells;        /* per unit: its state and what was drawn */
	size_t n_units;
	char **files;                    /* store_rrd_list(): "[VANTAGE/]SEED.rrd"; NULL: not listed */
	size_t n_files;
	int first_period;                /* the shortest period drawn: the small graphs' */
	int own;                         /* this host's column (its detail log), or -1: none */
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

static bool listed(const struct graph_run *G, const char *rel)
{
	for (size_t i = 0; i < G->n_files; i++)
		if (strcmp(G->files[i], rel) == 0)
			return true;
	return false;
}

/* Draws (or prints) every graph of unit u (a seed at a vantage) and, with several vantages, its
 * small outcome graph; marks what was drawn in cells[u]. Returns the number of graphs that
 * failed. */
static unsigned draw_unit(struct graph_run *G, size_t u)
{
	const struct conf_seed *cs = G->seeds[u / G->n_v];
	const char *vantage = G->vantages[u % G->n_v];
	bool multi = G->n_v > 1;
	struct graph_seed *row = &G->cells[u];
	if (!G->store) {
		row->no_graphs = "RRD files are off (rrd = false)";
		return 0;
	}
	char *path = store_rrd_path_v(G->store, vantage, cs->name);
	struct stat st;
	bool missing;
	if (local_files(G->conf)) {
		missing = stat(path, &st) < 0;
	} else {
		char *rel = *vantage ? xasprintf("%s/%s.rrd", vantage, cs->name) : xasprintf("%s.rrd", cs->name);
		missing = G->files && !listed(G, rel);
		free(rel);
	}
	if (missing) {
		row->no_graphs = "no RRD file yet";
		log_info("event=graph seed=%s vantage=%s status=skipped reason=\"no RRD file %s\"", cs->name,
			 *vantage ? vantage : "-", path);
		free(path);
		return 0;
	}
	char *err = NULL;
	if (!G->commands && store_rrd_flush_v(G->store, vantage, cs->name, &err) < 0) {
		log_warnx("event=graph seed=%s status=flush-failed error=\"%s\"", cs->name, err);
		free(err);
		err = NULL;
	}
	char *title = *vantage ? xasprintf("%s (%s)", cs->name, vantage) : xstrdup(cs->name);
	const char *vdir = multi && *vantage ? vantage : NULL;
	unsigned failed = 0;
	for (int p = 0; p < GRAPH_PERIOD__COUNT; p++) {
		if (!G->periods[p])
			continue;
		for (int k = 0; k < GRAPH_KIND__COUNT + (multi && p == G->first_period) && !interrupted; k++) {
			bool small = k == GRAPH_KIND__COUNT;
			char *rel = small ? graph_small_rel(cs->name, vdir, (enum graph_period)p)
					  : graph_image_rel_v(cs->name, vdir, (enum graph_kind)k, (enum graph_period)p);
			char *out = xasprintf("%s/%s", G->out, rel);
			struct graph_params gp = {
				.rrd_path = path,
				.daemon = G->conf->rrdcached,
				.out_path = out,
				.title = title,
				.kind = small ? GRAPH_OUTCOMES : (enum graph_kind)k,
				.period = (enum graph_period)p,
				.width = small ? GRAPH_SMALL_WIDTH : G->width,
				.height = small ? GRAPH_SMALL_HEIGHT : G->height,
				.end_s = G->end_s,
				.small = small,
			};
			int rc = G->commands ? graph_command(&gp, stdout, &err) : graph_draw(&gp, &err);
			if (rc == 0 && small) {
				row->small = true;
			} else if (rc == 0) {
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

/* With jobs > 1: workers draw units i % jobs == w and report, per unit, a bitmap of the graphs
 * drawn through a pipe. Returns the number of failed graphs. */
static unsigned draw_all(struct graph_run *G, int jobs)
{
	unsigned failed = 0;
	if (jobs <= 1 || G->n_units < 2 || G->commands) {
		for (size_t i = 0; i < G->n_units; i++)
			failed += draw_unit(G, i);
		return failed;
	}
	if ((size_t)jobs > G->n_units)
		jobs = (int)G->n_units;
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
			for (size_t i = (size_t)w; i < G->n_units; i += (size_t)jobs) {
				f += draw_unit(G, i);
				uint32_t rec[2] = { (uint32_t)i, 0 };
				for (int k = 0; k < GRAPH_KIND__COUNT; k++)
					for (int p = 0; p < GRAPH_PERIOD__COUNT; p++)
						if (G->cells[i].graphs[k][p])
							rec[1] |= 1u << (k * GRAPH_PERIOD__COUNT + p);
				if (G->cells[i].no_graphs && strcmp(G->cells[i].no_graphs, "no RRD file yet") == 0)
					rec[1] |= 1u << 30;
				if (G->cells[i].small)
					rec[1] |= 1u << 29;
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
		for (size_t i = 0; i < G->n_units; i++)
			failed += draw_unit(G, i);
		return failed;
	}
	for (int w = 0; w < started; w++) {
		uint32_t rec[2];
		size_t seen = 0;
		while (read(fds[w], rec, sizeof rec) == (ssize_t)sizeof rec) {
			if (rec[0] >= G->n_units)
				continue;
			struct graph_seed *row = &G->cells[rec[0]];
			for (int k = 0; k < GRAPH_KIND__COUNT; k++)
				for (int p = 0; p < GRAPH_PERIOD__COUNT; p++)
					row->graphs[k][p] = (rec[1] >> (k * GRAPH_PERIOD__COUNT + p)) & 1;
			row->small = (rec[1] >> 29) & 1;
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
		for (size_t i = (size_t)w; i < G->n_units; i += (size_t)jobs)
			want++;
		if (seen != want) {
			fprintf(stderr, "mailcanary: graph: worker %d stopped after %zu of %zu seeds\n", w, seen, want);
			failed++;
		}
	}
	/* Seeds of workers that never started. */
	for (size_t i = 0; i < G->n_units; i++)
		if ((int)(i % (size_t)jobs) >= started)
			failed += draw_unit(G, i);
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

/* A state from the latest step of an RRD file (a vantage whose detail log is on another host):
 * the outcome data sources, then the readback's (inbox, missing, junk, delivery). */
static void fill_from_rrd(struct graph_seed *row, struct row_text *t, const struct store_rrd_sample *v, int64_t at_s)
{
	static const struct {
		enum store_rrd_ds ds;
		const char *name;
		enum graph_severity sev;
	} outcomes[] = {
		{ STORE_RRD_ACCEPTED, "accepted", GRAPH_SEV_OK },
		{ STORE_RRD_DEFERRED, "deferred", GRAPH_SEV_WARN },
		{ STORE_RRD_REJECTED, "rejected", GRAPH_SEV_BAD },
		{ STORE_RRD_FAILED, "failed", GRAPH_SEV_BAD },
	};
	int best = -1;
	for (int i = 0; i < 4; i++) {
		double x = v->v[outcomes[i].ds];
		if (!isnan(x) && x >= 0.5 && (best < 0 || x > v->v[outcomes[best].ds]))
			best = i;
	}
	struct strbuf sb;
	sb_init(&sb);
	const char *outcome = best >= 0 ? outcomes[best].name : "unknown";
	row->state = best == 0 ? "ok" : outcome;
	row->severity = best >= 0 ? outcomes[best].sev : GRAPH_SEV_BAD;
	double att = v->v[STORE_RRD_ATTEMPTS], aa = v->v[STORE_RRD_ACCEPT_AFTER];
	sb_append(&sb, outcome);
	if (!isnan(att) && att > 1.5)
		sb_appendf(&sb, " (attempt %.0f)", att);
	if (best == 0 && !isnan(aa) && !isnan(att) && att > 1.5)
		sb_appendf(&sb, " after %.0f s", aa);
	t->outcome = sb_steal(&sb);
	row->outcome = t->outcome;
	row->stage = "";
	row->reply = "";
	double ib = v->v[STORE_RRD_INBOX], ms = v->v[STORE_RRD_MISSING], jk = v->v[STORE_RRD_JUNK];
	double dl = v->v[STORE_RRD_DELIVERY];
	if (best != 0) {
		sb_append(&sb, "not read back");
	} else if (!isnan(ms) && ms >= 0.5) {
		row->state = "missing";
		row->severity = GRAPH_SEV_BAD;
		sb_append(&sb, "missing (not found, or bounced)");
	} else if (!isnan(jk) && jk >= 0.5) {
		row->state = "junk";
		row->severity = GRAPH_SEV_WARN;
		sb_append(&sb, "found in the junk folder");
	} else if (!isnan(ib) && ib >= 0.5) {
		sb_append(&sb, "found in INBOX");
	} else if (!isnan(ib)) {
		row->state = isnan(ms) ? "not in INBOX" : "misplaced";
		row->severity = isnan(ms) && isnan(dl) ? GRAPH_SEV_BAD : GRAPH_SEV_WARN;
		sb_append(&sb, isnan(ms) ? "not in INBOX (junk, another folder or missing)" : "found in another folder");
	} else {
		sb_append(&sb, "not read back");
	}
	if (best == 0 && !isnan(dl))
		sb_appendf(&sb, ", delivered in %.0f s", dl);
	t->readback = sb_steal(&sb);
	row->readback = t->readback;
	char *at = fmt_time(at_s * 1000);
	sb_appendf(&sb, "step ending %s", at);
	free(at);
	t->last_at = sb_steal(&sb);
	row->last_at = t->last_at;
	row->since = "";
	row->note = "state from the RRD file (no result of this vantage in the detail log)";
	row->source = "RRD file";
	sb_fini(&sb);
}

static void texts_free(struct row_text *t)
{
	free(t->since);
	free(t->last_at);
	free(t->outcome);
	free(t->reply);
	free(t->readback);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The columns: this host's vantage, then the others with a file of a seed drawn (sorted). */
static void find_vantages(struct graph_run *G)
{
	const char *own = G->conf->vantage ? G->conf->vantage : "";
	G->own = 0;
	G->vantages = xcalloc(1, sizeof *G->vantages);
	G->vantages[0] = xstrdup(own);
	G->n_v = 1;
	if (!G->store)
		return;
	char *err = NULL;
	if (store_rrd_list(G->store, &G->files, &G->n_files, &err) < 0) {
		log_warnx("event=graph status=no-vantages error=\"%s\": only this host's vantage is drawn", err);
		free(err);
		G->files = NULL;
		G->n_files = 0;
		return;
	}
	for (size_t f = 0; f < G->n_files; f++) {
		const char *rel = G->files[f], *slash = strchr(rel, '/');
		char *v = slash ? xstrndup(rel, (size_t)(slash - rel)) : xstrdup("");
		const char *file = slash ? slash + 1 : rel;
		bool seed_drawn = false;
		for (size_t i = 0; i < G->n_seeds && !seed_drawn; i++)
			seed_drawn = strlen(file) == strlen(G->seeds[i]->name) + 4 &&
				     strncmp(file, G->seeds[i]->name, strlen(G->seeds[i]->name)) == 0;
		bool have = false;
		for (size_t j = 0; j < G->n_v && !have; j++)
			have = strcmp(G->vantages[j], v) == 0;
		if (!seed_drawn || have) {
			free(v);
			continue;
		}
		G->vantages = xrealloc(G->vantages, (G->n_v + 1) * sizeof *G->vantages);
		G->vantages[G->n_v++] = v;
	}
	if (G->n_v > 2)
		qsort(G->vantages + 1, G->n_v - 1, sizeof *G->vantages, cmp_str);
	/* This host's vantage without a file of its own (a host that only draws the others): no
	 * column of its own when there are others. */
	bool own_files = false;
	for (size_t i = 0; i < G->n_seeds && !own_files; i++) {
		char *rel = *own ? xasprintf("%s/%s.rrd", own, G->seeds[i]->name) : xasprintf("%s.rrd", G->seeds[i]->name);
		own_files = listed(G, rel);
		free(rel);
	}
	if (!own_files && G->n_v > 1) {
		free(G->vantages[0]);
		memmove(G->vantages, G->vantages + 1, (G->n_v - 1) * sizeof *G->vantages);
		G->n_v--;
		G->own = -1;
	}
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
	optind = 0; /* reinitialise getopt (main stopped at the command with "+"): options may follow operands */
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
	G.first_period = -1;
	for (int p = 0; p < GRAPH_PERIOD__COUNT && G.first_period < 0; p++)
		if (G.periods[p])
			G.first_period = p;
	find_vantages(&G);
	G.n_units = G.n_seeds * G.n_v;
	G.cells = xcalloc(G.n_units ? G.n_units : 1, sizeof *G.cells);
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
	struct latest_results lr;
	memset(&lr, 0, sizeof lr);
	struct row_text *texts = NULL;
	char *generated = NULL, *title = NULL;
	char *err = NULL;
	if (interrupted) {
		log_warnx("event=graph status=interrupted signal=%d out=%s: stopped, pages not written", (int)interrupted,
			  G.out);
		rc = 1;
		goto out;
	}
	if (G.commands)
		goto out;

	if (latest_results_load(conf->state_dir, &lr, &err) < 0) {
		fprintf(stderr, "mailcanary: graph: detail log: %s\n", err);
		free(err);
		err = NULL;
		failed++;
	} else if (lr.bad_lines) {
		log_warnx("event=graph detail_log=%s/results.jsonl bad_lines=%zu (skipped)", conf->state_dir, lr.bad_lines);
	}
	/* texts: one per row, then one per cell */
	texts = xcalloc(G.n_seeds + G.n_units + 1, sizeof *texts);
	for (size_t i = 0; i < G.n_seeds; i++) {
		const struct latest_result *r = latest_find(&lr, G.seeds[i]->name);
		for (size_t v = 0; v < G.n_v; v++) {
			size_t u = i * G.n_v + v;
			struct graph_seed *c = &G.cells[u];
			struct row_text *t = &texts[G.n_seeds + u];
			if ((int)v == G.own && r) { /* this host's vantage, from its detail log */
				fill_row(c, t, G.seeds[i], r);
				c->source = "detail log";
			} else {
				fill_row(c, t, G.seeds[i], NULL);
				int64_t at = 0;
				struct store_rrd_sample sample;
				char *path = G.store && !c->no_graphs ? store_rrd_path_v(G.store, G.vantages[v], G.seeds[i]->name)
								      : NULL;
				if (path && graph_rrd_latest(path, conf->rrdcached, G.end_s, &sample, &at, &err) < 0) {
					log_warnx("event=graph seed=%s vantage=%s status=no-state error=\"%s\"", G.seeds[i]->name,
						  *G.vantages[v] ? G.vantages[v] : "-", err);
					free(err);
					err = NULL;
				} else if (path && at > 0) {
					fill_from_rrd(c, t, &sample, at);
				}
				free(path);
			}
			c->vantage = G.vantages[v];
		}
		struct graph_seed *row = &G.rows[i];
		if (G.n_v == 1) {
			*row = G.cells[i];
			row->cells = NULL;
		} else {
			fill_row(row, &texts[i], G.seeds[i], r);
			row->cells = &G.cells[i * G.n_v];
		}
	}

	generated = fmt_time(wall_ms());
	title = conf->vantage && *conf->vantage ? xasprintf("mailcanary: vantage %s", conf->vantage) : xstrdup("mailcanary");
	if (G.n_v > 1) {
		free(title);
		title = xstrdup("mailcanary: vantages side by side");
	}
	struct graph_dashboard d = {
		.title = title,
		.generated = generated,
		.note = conf->rrd ? NULL : "No graphs: RRD files are off (rrd = false).",
		.seeds = G.rows,
		.n_seeds = G.n_seeds,
		.width = G.width,
		.height = G.height,
		.vantages = (const char *const *)G.vantages,
		.n_vantages = G.n_v,
		.small_width = GRAPH_SMALL_WIDTH,
		.small_height = GRAPH_SMALL_HEIGHT,
	};
	memcpy(d.periods, G.periods, sizeof d.periods);
	if (graph_dashboard_write(G.out, &d, &err) < 0) {
		fprintf(stderr, "mailcanary: graph: %s\n", err);
		free(err);
		rc = 1;
	}
	size_t n_graphs = 0;
	for (size_t u = 0; u < G.n_units; u++)
		for (int k = 0; k < GRAPH_KIND__COUNT; k++)
			for (int p = 0; p < GRAPH_PERIOD__COUNT; p++)
				n_graphs += G.cells[u].graphs[k][p];
	log_info("event=graph status=%s out=%s seeds=%zu vantages=%zu graphs=%zu failed=%u ms=%" PRId64,
		 failed || rc ? "failed" : "ok", G.out, G.n_seeds, G.n_v, n_graphs, failed, (mono_us() - t0) / 1000);

out:
	for (size_t i = 0; texts && i < G.n_seeds + G.n_units; i++)
		texts_free(&texts[i]);
	free(texts);
	free(generated);
	free(title);
	latest_results_fini(&lr);
	store_rrd_list_free(G.files, G.n_files);
	for (size_t v = 0; v < G.n_v; v++)
		free(G.vantages[v]);
	free(G.vantages);
	free(G.cells);
	store_rrd_free(G.store);
	free(G.rows);
	free(G.seeds);
	conf_free(conf);
	return failed || rc ? 1 : 0;
}
