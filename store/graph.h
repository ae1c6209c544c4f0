/* Graphs and the static dashboard: PNG files drawn with librrd from a seed's RRD file (the data
 * sources of store_rrd.h), and the HTML pages that show them (no JavaScript).
 *
 * librrd's graphing is NOT thread-safe (LIBRARY-NOTES.md 4: two threads drawing at once crash
 * inside cairo/pango): call graph_draw() from one thread of a process that does nothing else
 * with librrd's graphing, e.g. the `graph` command or a child the daemon forks for it. */
#ifndef MON_STORE_GRAPH_H
#define MON_STORE_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store_rrd.h"

enum graph_period { GRAPH_1D = 0, GRAPH_1W, GRAPH_1M, GRAPH_1Y, GRAPH_PERIOD__COUNT };

enum graph_kind {
	GRAPH_STAGES = 0, /* SMTP stage latency (ms), stacked by stage, with the session total */
	GRAPH_DELIVERY,   /* delivery latency (s): average with the min/max band */
	GRAPH_OUTCOMES,   /* share of probes per outcome (INBOX, junk, other folder, missing,
			   * deferred, ...) */
	GRAPH_RETRIES,    /* attempts per probe and time to acceptance (s) */
	GRAPH_KIND__COUNT,
};

/* "1d" "1w" "1m" "1y"; NULL out of range. */
const char *graph_period_name(enum graph_period p);
/* "last day", ...; NULL out of range. */
const char *graph_period_title(enum graph_period p);
/* The span in seconds (1m: 31 days, 1y: 365 days). */
int64_t graph_period_seconds(enum graph_period p);
/* Parses "1d" "1w" "1m" "1y" (also "day" "week" "month" "year"). Returns 0, or -1. */
int graph_period_parse(const char *s, enum graph_period *out);

/* "stages" "delivery" "outcomes" "retries" (the file name part); NULL out of range. */
const char *graph_kind_name(enum graph_kind k);
/* "SMTP stage latency", ...; NULL out of range. */
const char *graph_kind_title(enum graph_kind k);

#define GRAPH_MIN_WIDTH 400
#define GRAPH_MAX_WIDTH 4000
#define GRAPH_MIN_HEIGHT 150
#define GRAPH_MAX_HEIGHT 2000
#define GRAPH_DEFAULT_WIDTH 800
#define GRAPH_DEFAULT_HEIGHT 240

struct graph_params {
	const char *rrd_path; /* the seed's RRD file (store_rrd_path()); relative to the daemon's base
			       * directory with a remote rrdcached */
	const char *daemon;   /* rrdcached address or NULL: the data is fetched through it, which
			       * writes what it holds for the file first */
	const char *out_path; /* the PNG; written under a temporary name in the same directory and
			       * renamed, so that a reader never sees half a file */
	const char *title;    /* e.g. the seed's name (and vantage) */
	enum graph_kind kind;
	enum graph_period period;
	int width, height;    /* of the whole image (librrd's --full-size-mode) */
	int64_t end_s;        /* the graph's right edge (Unix seconds) */
	bool small;           /* outcomes only: the graph area alone (no title, axes or legend) at
			       * width x height, for the dashboard's vantage table */
};

/* The latest step of rrd_path with a known outcome (one of accepted, deferred, rejected and
 * failed known) in its AVERAGE archive at the file's own step, within the 90 days before end_s,
 * fetched through daemon when given: *at_s gets the step's end (0: none found), out its values
 * (NaN: unknown, or a data source the file does not have). For the dashboard's state of a
 * vantage whose detail log is elsewhere. Returns 0, or -1 with *err (owned). */
int graph_rrd_latest(const char *rrd_path, const char *daemon, int64_t end_s, struct store_rrd_sample *out,
		     int64_t *at_s, char **err);

/* Draws one graph. Returns 0, or -1 with *err (owned): librrd's message with the file named. */
int graph_draw(const struct graph_params *p, char **err);

/* The same graph as an `rrdtool graph` shell command line (the definitions graph_draw() hands
 * to librrd, quoted for sh) on fp, for comparing with the reference tool. Returns 0, or -1
 * with *err (owned) when the data needed to lay it out could not be read. */
int graph_command(const struct graph_params *p, FILE *fp, char **err);

/* ---- the dashboard ---- */

/* The severity of a seed's state: the colour of its row. */
enum graph_severity { GRAPH_SEV_NONE = 0, GRAPH_SEV_OK, GRAPH_SEV_WARN, GRAPH_SEV_BAD };

/* One seed's row and page: plain text (the page escapes all of it). Strings may be NULL or "". */
struct graph_seed {
	const char *name;
	const char *address;      /* the seed's mailbox address */
	const char *sender;       /* the sender's name */
	const char *schedule;
	const char *state;        /* e.g. "ok", "deferred", "junk", "no result yet" */
	enum graph_severity severity;
	const char *since;        /* e.g. "3 probes in a row since 2026-11-28T06:12:00Z"; may be "" */
	const char *last_at;      /* sent_at of the last final result */
	const char *outcome;      /* smtp.outcome */
	const char *stage;
	const char *reply;        /* "451 4.3.2 text" or the error */
	const char *readback;     /* e.g. "found in INBOX after 2 s" */
	const char *note;         /* e.g. "retry pending: attempt 2 at ..."; may be "" */
	bool graphs[GRAPH_KIND__COUNT][GRAPH_PERIOD__COUNT]; /* drawn (the page shows these) */
	const char *no_graphs;    /* why there are none (e.g. "no RRD file yet"), or NULL */
	/* With several vantages (graph_dashboard.n_vantages > 1): */
	const struct graph_seed *cells; /* the seed at each vantage, in graph_dashboard.vantages order
					 * (each with its own state and graphs); NULL otherwise */
	const char *vantage;      /* a cell's vantage ("": files without one) */
	const char *source;       /* a cell's state came from: e.g. "detail log" or "RRD file"; may be NULL */
	bool small;               /* a cell's small outcome graph (graph_small_rel) was drawn */
};

struct graph_dashboard {
	const char *title;       /* e.g. "mailcanary" or "mailcanary: vantage fra1" */
	const char *generated;   /* the time it was generated, e.g. "2026-11-28 06:12:00 UTC" */
	const char *note;        /* shown under the title; may be NULL */
	const struct graph_seed *seeds;
	size_t n_seeds;
	bool periods[GRAPH_PERIOD__COUNT]; /* the periods drawn in this run */
	int width, height;
	/* The vantages side by side: more than one makes the index a table of seeds (rows) by
	 * vantages (columns, each with state, last outcome and a small outcome graph) and each
	 * seed's page show the vantages' graphs side by side. "" names the files without one. */
	const char *const *vantages;
	size_t n_vantages;
	int small_width, small_height; /* of the small outcome graphs */
};

#define GRAPH_SMALL_WIDTH 300
#define GRAPH_SMALL_HEIGHT 60

/* The file of a graph relative to the dashboard directory: "img/SEED/KIND-PERIOD.png".
 * Returns owned. Seed names are conf_check_name() names (no '/'). */
char *graph_image_rel(const char *seed, enum graph_kind k, enum graph_period p);
/* The same for the file of a vantage in a dashboard of several: "img/SEED/vantage-VANTAGE/KIND-
 * PERIOD.png"; vantage NULL or "" as graph_image_rel. Returns owned. */
char *graph_image_rel_v(const char *seed, const char *vantage, enum graph_kind k, enum graph_period p);
/* The small outcome graph of a vantage's cell: "img/SEED/[vantage-VANTAGE/]outcomes-PERIOD-small.png".
 * Returns owned. */
char *graph_small_rel(const char *seed, const char *vantage, enum graph_period p);
/* The page of a seed relative to the dashboard directory: "seed-SEED.html". Returns owned. */
char *graph_page_rel(const char *seed);

/* Writes dir/index.html (the table of seeds and each seed's graphs of the shortest period
 * drawn) and dir/seed-SEED.html per seed (all its graphs), each under a temporary name and
 * renamed. Returns 0, or -1 with *err (owned). */
int graph_dashboard_write(const char *dir, const struct graph_dashboard *d, char **err);

/* s as HTML text, also fit for an attribute value in double quotes: & < > " ' escaped, control
 * characters other than tab and newline as U+FFFD. NULL gives "". Returns owned. */
char *graph_html_escape(const char *s);

#endif
