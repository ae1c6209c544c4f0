/* Graphs with librrd (rrd_graph_v) from a seed's RRD file, and the static HTML dashboard.
 *
 * Colours are fixed per data source and outcome, the same in every graph and period, so that a
 * colour means one thing everywhere. The graph definitions are built once as an argv list
 * (args_*), handed to rrd_graph_v() or printed as an `rrdtool graph` command line. */
#include "graph.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rrd.h>
#include <rrd_client.h>

#include "rrd_dl.h" /* after rrd.h: the librrd calls below go through the dlopen()ed library */

#include "fsutil.h"
#include "strbuf.h"
#include "xalloc.h"

#define DAY_S INT64_C(86400)

static const struct {
	const char *name, *title;
	int64_t span_s;
} periods[GRAPH_PERIOD__COUNT] = {
	[GRAPH_1D] = { "1d", "last day", DAY_S },
	[GRAPH_1W] = { "1w", "last week", 7 * DAY_S },
	[GRAPH_1M] = { "1m", "last month", 31 * DAY_S },
	[GRAPH_1Y] = { "1y", "last year", 365 * DAY_S },
};

static const struct {
	const char *name, *title;
} kinds[GRAPH_KIND__COUNT] = {
	[GRAPH_STAGES] = { "stages", "SMTP stage latency" },
	[GRAPH_DELIVERY] = { "delivery", "Delivery latency" },
	[GRAPH_OUTCOMES] = { "outcomes", "Outcomes" },
	[GRAPH_RETRIES] = { "retries", "Attempts and time to acceptance" },
};

const char *graph_period_name(enum graph_period p)
{
	return (unsigned)p < GRAPH_PERIOD__COUNT ? periods[p].name : NULL;
}

const char *graph_period_title(enum graph_period p)
{
	return (unsigned)p < GRAPH_PERIOD__COUNT ? periods[p].title : NULL;
}

int64_t graph_period_seconds(enum graph_period p)
{
	return (unsigned)p < GRAPH_PERIOD__COUNT ? periods[p].span_s : 0;
}

int graph_period_parse(const char *s, enum graph_period *out)
{
	static const char *const words[GRAPH_PERIOD__COUNT] = { "day", "week", "month", "year" };
	for (int i = 0; i < GRAPH_PERIOD__COUNT; i++) {
		if (strcmp(s, periods[i].name) == 0 || strcmp(s, words[i]) == 0) {
			*out = (enum graph_period)i;
			return 0;
		}
	}
	return -1;
}

const char *graph_kind_name(enum graph_kind k)
{
	return (unsigned)k < GRAPH_KIND__COUNT ? kinds[k].name : NULL;
}

const char *graph_kind_title(enum graph_kind k)
{
	return (unsigned)k < GRAPH_KIND__COUNT ? kinds[k].title : NULL;
}

/* ---- colours (the same in every graph) ---- */

/* SMTP stages in dialogue order, as the data sources connect .. eod. */
static const struct {
	const char *ds, *colour;
} stage_colours[] = {
	{ "connect", "4E79A7" }, { "banner", "A0CBE8" }, { "ehlo", "F28E2B" },
	{ "starttls", "FFBE7D" }, { "auth", "59A14F" }, { "mail", "8CD17D" },
	{ "rcpt", "B6992D" }, { "data", "F1CE63" }, { "eod", "86BCB6" },
};
#define N_STAGES (sizeof stage_colours / sizeof stage_colours[0])

#define COLOUR_TOTAL "000000"
#define COLOUR_DELIVERY "1F4E79"
#define COLOUR_BAND "A0CBE8"
#define COLOUR_ACCEPT_AFTER "C9B1D9"
#define COLOUR_ATTEMPTS "B0305C"

/* Outcomes, bottom to top: problems first, next to the axis, where a thin one still shows.
 * missing, junk and other folder come from the data sources missing and junk (ms, jk) where a
 * step has them; without them (steps written before they existed, or a file not migrated yet)
 * from the older rule: accepted but not in INBOX is missing without a delivery time, junk (or
 * another folder) with one. */
static const struct {
	const char *vname, *legend, *colour, *rpn;
} outcome_defs[] = {
	{ "o_failed", "failed", "303030", "fl" },
	{ "o_rejected", "rejected", "E15759", "rj" },
	{ "o_deferred", "deferred", "EDC948", "df" },
	{ "o_unknown", "unknown", "9C755F", "1,ac,-,df,-,rj,-,fl,-,0,MAX" },
	{ "o_missing", "missing", "B07AA1", "ms,UN,notinbox,dl,UN,1,0,IF,*,ac,ms,*,IF" },
	{ "o_junk", "junk", "F28E2B", "jk,UN,notinbox,dl,UN,0,1,IF,*,ac,jk,*,IF" },
	{ "o_other", "other folder", "FF9DA7", "jk,UN,0,notinbox,ac,ms,*,-,ac,jk,*,-,0,MAX,IF" },
	{ "o_noread", "accepted (no readback)", "A8D5A2", "ib,UN,ac,0,IF" },
	{ "o_inbox", "INBOX", "3C9A4A", "ib,UN,0,ac,ib,*,IF" },
};
#define N_OUTCOMES (sizeof outcome_defs / sizeof outcome_defs[0])

/* ---- argv building ---- */

struct args {
	char **v;
	int n, cap;
};

static void args_add(struct args *a, char *owned)
{
	if (a->n + 1 >= a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->v = xrealloc(a->v, (size_t)a->cap * sizeof *a->v);
	}
	a->v[a->n++] = owned;
	a->v[a->n] = NULL;
}

static void args_adds(struct args *a, const char *s)
{
	args_add(a, xstrdup(s));
}

static void args_addf(struct args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void args_addf(struct args *a, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;
	sb_init(&sb);
	va_start(ap, fmt);
	sb_vappendf(&sb, fmt, ap);
	va_end(ap);
	args_add(a, sb_steal(&sb));
	sb_fini(&sb);
}

static void args_free(struct args *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	a->v = NULL;
	a->n = a->cap = 0;
}

/* A file name inside a DEF: librrd splits DEF fields at ':' (a "\:" is a literal colon). */
static char *def_path(const char *path)
{
	struct strbuf sb;
	sb_init(&sb);
	for (const char *p = path; *p; p++) {
		if (*p == ':' || *p == '\\')
			sb_appendc(&sb, '\\');
		sb_appendc(&sb, *p);
	}
	char *s = sb_steal(&sb);
	sb_fini(&sb);
	return s;
}

/* Text for a legend, title or COMMENT: ':' escaped, '%' doubled where librrd formats it. */
static char *legend_text(const char *s, bool percent)
{
	struct strbuf sb;
	sb_init(&sb);
	for (const char *p = s; *p; p++) {
		if (*p == ':')
			sb_appendc(&sb, '\\');
		if (*p == '%' && percent)
			sb_appendc(&sb, '%');
		sb_appendc(&sb, *p);
	}
	char *t = sb_steal(&sb);
	sb_fini(&sb);
	return t;
}

static void common_args(struct args *a, const struct graph_params *p, const char *file, const char *vlabel)
{
	args_adds(a, "graph");
	args_adds(a, file);
	args_adds(a, "--imgformat=PNG");
	args_adds(a, "--full-size-mode");
	if (p->small)
		args_adds(a, "--only-graph");
	args_addf(a, "--width=%d", p->width);
	args_addf(a, "--height=%d", p->height);
	args_addf(a, "--start=%" PRId64, p->end_s - graph_period_seconds(p->period));
	args_addf(a, "--end=%" PRId64, p->end_s);
	args_addf(a, "--title=%s: %s, %s", p->title, graph_kind_title(p->kind), graph_period_title(p->period));
	args_addf(a, "--vertical-label=%s", vlabel);
	args_adds(a, "--lower-limit=0");
	args_adds(a, "--disable-rrdtool-tag");
	args_adds(a, "--color=BACK#FFFFFF");
	args_adds(a, "--color=CANVAS#FFFFFF");
	args_adds(a, "--color=SHADEA#FFFFFF");
	args_adds(a, "--color=SHADEB#FFFFFF");
	args_adds(a, "--color=GRID#DDDDDD80");
	args_adds(a, "--color=MGRID#BBBBBB80");
	if (p->daemon && *p->daemon)
		args_addf(a, "--daemon=%s", p->daemon);
}

static void stages_args(struct args *a, const char *dp)
{
	args_adds(a, "--units-exponent=0");
	args_addf(a, "DEF:tot=%s:total:AVERAGE", dp);
	args_addf(a, "DEF:totmax=%s:total:MAX", dp);
	for (size_t i = 0; i < N_STAGES; i++) {
		/* A stage the dialogue did not have (no STARTTLS, no AUTH, or not reached) is 0 in a
		 * probe that has a total, so that the stack goes on above it; unknown without one. */
		args_addf(a, "DEF:r%zu=%s:%s:AVERAGE", i, dp, stage_colours[i].ds);
		args_addf(a, "CDEF:s%zu=r%zu,UN,tot,UN,UNKN,0,IF,r%zu,IF", i, i, i);
	}
	for (size_t i = 0; i < N_STAGES; i++)
		args_addf(a, "AREA:s%zu#%s:%-8s%s", i, stage_colours[i].colour, stage_colours[i].ds, i ? ":STACK" : "");
	args_adds(a, "COMMENT:\\l");
	args_addf(a, "LINE1:tot#%s:total   ", COLOUR_TOTAL);
	args_adds(a, "VDEF:tavg=tot,AVERAGE");
	args_adds(a, "VDEF:tmax=totmax,MAXIMUM");
	args_adds(a, "VDEF:tlast=tot,LAST");
	args_adds(a, "GPRINT:tavg:average %8.1lf ms");
	args_adds(a, "GPRINT:tmax:max %8.1lf ms");
	args_adds(a, "GPRINT:tlast:last %8.1lf ms\\l");
}

static void delivery_args(struct args *a, const char *dp)
{
	args_adds(a, "--units-exponent=0");
	args_addf(a, "DEF:d=%s:delivery:AVERAGE", dp);
	args_addf(a, "DEF:dmin=%s:delivery:MIN", dp);
	args_addf(a, "DEF:dmax=%s:delivery:MAX", dp);
	args_adds(a, "CDEF:band=dmax,dmin,-");
	args_adds(a, "AREA:dmin"); /* invisible: the band's base */
	args_addf(a, "AREA:band#%s:min to max:STACK", COLOUR_BAND);
	args_addf(a, "LINE2:d#%s:average", COLOUR_DELIVERY);
	args_adds(a, "VDEF:davg=d,AVERAGE");
	args_adds(a, "VDEF:dlo=dmin,MINIMUM");
	args_adds(a, "VDEF:dhi=dmax,MAXIMUM");
	args_adds(a, "VDEF:dlast=d,LAST");
	args_adds(a, "GPRINT:davg:%.0lf s");
	args_adds(a, "GPRINT:dlo:min %.0lf s");
	args_adds(a, "GPRINT:dhi:max %.0lf s");
	args_adds(a, "GPRINT:dlast:last %.0lf s\\l");
}

/* One fetch of a file's cf archive: f's start, end and step in, the rows and names out (free with
 * fetched_free). From the rrdcached at daemon when it is set (it flushes the file first). Returns
 * 0, or -1 with *err naming the file. */
struct fetched {
	time_t start, end;
	unsigned long step, ds_cnt;
	char **names;
	rrd_value_t *data;
};

static int fetch(const char *path, const char *daemon, const char *cf, struct fetched *f, char **err)
{
	f->ds_cnt = 0;
	f->names = NULL;
	f->data = NULL;
	int st;
	rrd_clear_error();
	if (daemon && *daemon) {
		st = rrdc_connect(daemon);
		if (st == 0)
			st = rrdc_fetch(path, cf, &f->start, &f->end, &f->step, &f->ds_cnt, &f->names, &f->data);
	} else {
		st = rrd_fetch_r(path, cf, &f->start, &f->end, &f->step, &f->ds_cnt, &f->names, &f->data);
	}
	if (st != 0) {
		const char *e = rrd_test_error() ? rrd_get_error() : "fetch failed";
		*err = strstr(e, path) ? xstrdup(e) : xasprintf("%s: %s", path, e);
		return -1;
	}
	return 0;
}

static void fetched_free(struct fetched *f)
{
	for (unsigned long i = 0; i < f->ds_cnt; i++)
		rrd_freemem(f->names[i]);
	rrd_freemem(f->names);
	rrd_freemem(f->data);
}

/* The graph's span at about one row per pixel. */
static struct fetched graph_span(const struct graph_params *p)
{
	return (struct fetched){
		.start = (time_t)(p->end_s - graph_period_seconds(p->period)),
		.end = (time_t)p->end_s,
		.step = (unsigned long)(graph_period_seconds(p->period) / (p->width > 0 ? p->width : 800)),
	};
}

/* Whether the file has the data sources missing and junk (a remote daemon's file may still have
 * the layout before them): from the names a fetch of the graph's span returns. */
static int has_missing_junk(const struct graph_params *p, bool *has, char **err)
{
	struct fetched f = graph_span(p);
	if (fetch(p->rrd_path, p->daemon, "AVERAGE", &f, err) < 0)
		return -1;
	int n = 0;
	for (unsigned long i = 0; i < f.ds_cnt; i++)
		n += strcmp(f.names[i], "missing") == 0 || strcmp(f.names[i], "junk") == 0;
	fetched_free(&f);
	*has = n == 2;
	return 0;
}

static int outcomes_args(struct args *a, const struct graph_params *p, const char *dp, char **err)
{
	static const char *const ds[][2] = {
		{ "ac", "accepted" }, { "df", "deferred" }, { "rj", "rejected" }, { "fl", "failed" },
		{ "ib", "inbox" },    { "dl", "delivery" }, { "ms", "missing" },  { "jk", "junk" },
	};
	bool has_mj;
	if (has_missing_junk(p, &has_mj, err) < 0)
		return -1;
	if (!p->small) {
		args_adds(a, "--upper-limit=100");
		args_adds(a, "--rigid");
		args_adds(a, "--units-exponent=0");
	}
	for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
		if (i >= 6 && !has_mj)
			args_addf(a, "CDEF:%s=ac,POP,UNKN", ds[i][0]); /* unknown everywhere: the older rule */
		else
			args_addf(a, "DEF:%s=%s:%s:AVERAGE", ds[i][0], dp, ds[i][1]);
	}
	/* Accepted but not in INBOX: junk, another folder or missing. */
	args_adds(a, "CDEF:notinbox=ib,UN,0,ac,1,ib,-,*,IF");
	for (size_t i = 0; i < N_OUTCOMES; i++) {
		/* Percent of the probes; a step without a probe (ac unknown) stays unknown. */
		args_addf(a, "CDEF:%s=ac,UN,UNKN,%s,100,*,IF", outcome_defs[i].vname, outcome_defs[i].rpn);
		if (!p->small)
			args_addf(a, "VDEF:%s_a=%s,AVERAGE", outcome_defs[i].vname, outcome_defs[i].vname);
	}
	for (size_t i = 0; i < N_OUTCOMES; i++) {
		if (p->small) {
			args_addf(a, "AREA:%s#%s%s", outcome_defs[i].vname, outcome_defs[i].colour, i ? "::STACK" : "");
			continue;
		}
		args_addf(a, "AREA:%s#%s:%s%s", outcome_defs[i].vname, outcome_defs[i].colour, outcome_defs[i].legend,
			  i ? ":STACK" : "");
		args_addf(a, "GPRINT:%s_a:%%.1lf%%%%%s", outcome_defs[i].vname, i == 3 || i == 6 ? "\\l" : "");
	}
	if (!p->small)
		args_adds(a, "COMMENT:\\l");
	return 0;
}

/* Rounds up to 1, 2 or 5 times a power of ten. */
static double nice_ceil(double v)
{
	if (!(v > 0) || !isfinite(v))
		return 1;
	double e = pow(10, floor(log10(v)));
	double m = v / e;
	return (m <= 1 + 1e-9 ? 1 : m <= 2 + 1e-9 ? 2 : m <= 5 + 1e-9 ? 5 : 10) * e;
}

/* The largest attempts and accept_after (MAX archive) in the graph's span: the scale that maps
 * attempts (right axis) onto seconds (left axis). NaN when there are none. */
static int retries_range(const struct graph_params *p, double *att_max, double *aa_max, char **err)
{
	struct fetched f = graph_span(p);
	if (fetch(p->rrd_path, p->daemon, "MAX", &f, err) < 0)
		return -1;
	long ia = -1, it = -1;
	for (unsigned long i = 0; i < f.ds_cnt; i++) {
		if (strcmp(f.names[i], "attempts") == 0)
			ia = (long)i;
		else if (strcmp(f.names[i], "accept_after") == 0)
			it = (long)i;
	}
	*att_max = *aa_max = NAN;
	unsigned long rows = f.step ? (unsigned long)(f.end - f.start) / f.step : 0;
	for (unsigned long r = 0; r < rows && f.ds_cnt; r++) {
		const rrd_value_t *row = f.data + r * f.ds_cnt;
		if (ia >= 0 && !isnan(row[ia]) && (isnan(*att_max) || row[ia] > *att_max))
			*att_max = row[ia];
		if (it >= 0 && !isnan(row[it]) && (isnan(*aa_max) || row[it] > *aa_max))
			*aa_max = row[it];
	}
	fetched_free(&f);
	return 0;
}

static int retries_args(struct args *a, const struct graph_params *p, const char *dp, char **err)
{
	double att_max, aa_max;
	if (retries_range(p, &att_max, &aa_max, err) < 0)
		return -1;
	/* Left axis seconds, right axis attempts: k seconds per attempt, a 1-2-5 number, so that
	 * the grid (every g attempts) is labelled with whole numbers on both sides. */
	double att = isnan(att_max) || att_max < 1 ? 1 : ceil(att_max);
	double k = nice_ceil((isnan(aa_max) || aa_max < 1 ? 1 : aa_max) / att);
	double g = att <= 6 ? 1 : nice_ceil(att / 5);
	args_adds(a, "--units-exponent=0");
	args_addf(a, "--upper-limit=%.17g", k * att);
	args_addf(a, "--y-grid=%.17g:1", k * g);
	args_addf(a, "--right-axis=%.17g:0", 1 / k);
	args_adds(a, "--right-axis-label=attempts");
	args_adds(a, "--right-axis-format=%.0lf");
	args_addf(a, "DEF:aa=%s:accept_after:AVERAGE", dp);
	args_addf(a, "DEF:aamax=%s:accept_after:MAX", dp);
	args_addf(a, "DEF:att=%s:attempts:MAX", dp);
	args_addf(a, "DEF:attavg=%s:attempts:AVERAGE", dp);
	args_addf(a, "CDEF:atts=att,%.17g,*", k);
	args_addf(a, "AREA:aa#%s:time to acceptance (left axis)", COLOUR_ACCEPT_AFTER);
	args_adds(a, "VDEF:aaavg=aa,AVERAGE");
	args_adds(a, "VDEF:aahi=aamax,MAXIMUM");
	args_adds(a, "VDEF:aalast=aa,LAST");
	args_adds(a, "GPRINT:aaavg:average %.1lf s");
	args_adds(a, "GPRINT:aahi:max %.1lf s");
	args_adds(a, "GPRINT:aalast:last %.1lf s\\l");
	args_addf(a, "LINE2:atts#%s:attempts (right axis)          ", COLOUR_ATTEMPTS);
	args_adds(a, "VDEF:attavg_a=attavg,AVERAGE");
	args_adds(a, "VDEF:atthi=att,MAXIMUM");
	args_adds(a, "VDEF:attlast=att,LAST");
	args_adds(a, "GPRINT:attavg_a:average %.2lf");
	args_adds(a, "GPRINT:atthi:max %.0lf");
	args_adds(a, "GPRINT:attlast:last %.0lf\\l");
	return 0;
}

static const char *vlabels[GRAPH_KIND__COUNT] = {
	[GRAPH_STAGES] = "milliseconds",
	[GRAPH_DELIVERY] = "seconds",
	[GRAPH_OUTCOMES] = "% of probes",
	[GRAPH_RETRIES] = "seconds",
};

static int build_args(struct args *a, const struct graph_params *p, const char *file, char **err)
{
	if ((unsigned)p->kind >= GRAPH_KIND__COUNT || (unsigned)p->period >= GRAPH_PERIOD__COUNT) {
		*err = xasprintf("%s: no such graph", p->rrd_path);
		return -1;
	}
	char *title = legend_text(p->title, false);
	struct graph_params q = *p;
	q.title = title;
	common_args(a, &q, file, vlabels[p->kind]);
	free(title);
	char *dp = def_path(p->rrd_path);
	int rc = 0;
	switch (p->kind) {
	case GRAPH_STAGES: stages_args(a, dp); break;
	case GRAPH_DELIVERY: delivery_args(a, dp); break;
	case GRAPH_OUTCOMES: rc = outcomes_args(a, p, dp, err); break;
	case GRAPH_RETRIES: rc = retries_args(a, p, dp, err); break;
	case GRAPH_KIND__COUNT: break;
	}
	free(dp);
	return rc;
}

static unsigned tmp_seq;

int graph_draw(const struct graph_params *p, char **err)
{
	if (rrd_dl_load(err) < 0) {
		if (!*err)
			*err = xstrdup("cannot load librrd");
		return -1;
	}
	if (rrd_dl_load(err) < 0)
		return -1;
	char *dir = xstrdup(p->out_path);
	char *slash = strrchr(dir, '/');
	const char *base = slash ? slash + 1 : dir;
	char *tmp;
	if (slash) {
		*slash = '\0';
		if (*dir && mkdir_p(dir, 0755) < 0) {
			*err = xasprintf("%s: cannot create directory %s: %s", p->out_path, dir, strerror(errno));
			free(dir);
			return -1;
		}
		tmp = xasprintf("%s/.%s.%ld.%u.tmp", dir, base, (long)getpid(), tmp_seq++);
	} else {
		tmp = xasprintf(".%s.%ld.%u.tmp", base, (long)getpid(), tmp_seq++);
	}
	free(dir);
	struct args a = { 0 };
	int rc = build_args(&a, p, tmp, err);
	if (rc == 0) {
		rrd_clear_error();
		rrd_info_t *info = rrd_graph_v(a.n, a.v);
		if (!info) {
			const char *e = rrd_test_error() ? rrd_get_error() : "rrd_graph failed";
			*err = strstr(e, p->rrd_path) ? xstrdup(e) : xasprintf("%s: %s", p->rrd_path, e);
			rc = -1;
		} else {
			rrd_info_free(info);
			if (rename(tmp, p->out_path) < 0) {
				*err = xasprintf("%s: %s", p->out_path, strerror(errno));
				rc = -1;
			}
		}
	}
	if (rc < 0)
		unlink(tmp);
	args_free(&a);
	free(tmp);
	return rc;
}

/* s quoted for sh when it needs it. */
static void sh_quote(FILE *fp, const char *s)
{
	if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.,/=+@%") == strlen(s)) {
		fputs(s, fp);
		return;
	}
	fputc('\'', fp);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", fp);
		else
			fputc(*s, fp);
	}
	fputc('\'', fp);
}

int graph_command(const struct graph_params *p, FILE *fp, char **err)
{
	if (rrd_dl_load(err) < 0) {
		if (!*err)
			*err = xstrdup("cannot load librrd");
		return -1;
	}
	struct args a = { 0 };
	if (build_args(&a, p, p->out_path, err) < 0) {
		args_free(&a);
		return -1;
	}
	fputs("rrdtool", fp);
	for (int i = 0; i < a.n; i++) {
		fputc(' ', fp);
		sh_quote(fp, a.v[i]);
	}
	fputs(" >/dev/null\n", fp);
	args_free(&a);
	return 0;
}

int graph_rrd_latest(const char *rrd_path, const char *daemon, int64_t end_s, struct store_rrd_sample *out,
		     int64_t *at_s, char **err)
{
	store_rrd_sample_init(out);
	*at_s = 0;
	if (rrd_dl_load(err) < 0)
		return -1;
	struct fetched f = { .start = (time_t)(end_s - 90 * DAY_S), .end = (time_t)end_s, .step = 1 };
	if (fetch(rrd_path, daemon, "AVERAGE", &f, err) < 0)
		return -1;
	long col[STORE_RRD_DS__COUNT];
	for (int d = 0; d < STORE_RRD_DS__COUNT; d++) {
		col[d] = -1;
		for (unsigned long i = 0; i < f.ds_cnt; i++)
			if (strcmp(f.names[i], store_rrd_ds_name((enum store_rrd_ds)d)) == 0)
				col[d] = (long)i;
	}
	unsigned long rows = f.step ? (unsigned long)(f.end - f.start) / f.step : 0;
	for (unsigned long r = rows; r-- > 0;) {
		const rrd_value_t *row = f.data + r * f.ds_cnt;
		bool known = false;
		for (int d = STORE_RRD_ACCEPTED; d <= STORE_RRD_FAILED; d++)
			known = known || (col[d] >= 0 && !isnan(row[col[d]]));
		if (!known)
			continue;
		for (int d = 0; d < STORE_RRD_DS__COUNT; d++)
			out->v[d] = col[d] >= 0 ? row[col[d]] : NAN;
		*at_s = (int64_t)f.start + (int64_t)(r + 1) * (int64_t)f.step;
		break;
	}
	fetched_free(&f);
	return 0;
}

/* ---- the dashboard ---- */

char *graph_image_rel_v(const char *seed, const char *vantage, enum graph_kind k, enum graph_period p)
{
	if (!vantage || !*vantage)
		return graph_image_rel(seed, k, p);
	const char *kn = graph_kind_name(k), *pn = graph_period_name(p);
	return xasprintf("img/%s/vantage-%s/%s-%s.png", seed, vantage, kn ? kn : "none", pn ? pn : "none");
}

char *graph_small_rel(const char *seed, const char *vantage, enum graph_period p)
{
	const char *pn = graph_period_name(p);
	if (!vantage || !*vantage)
		return xasprintf("img/%s/outcomes-%s-small.png", seed, pn ? pn : "none");
	return xasprintf("img/%s/vantage-%s/outcomes-%s-small.png", seed, vantage, pn ? pn : "none");
}

char *graph_image_rel(const char *seed, enum graph_kind k, enum graph_period p)
{
	const char *kn = graph_kind_name(k), *pn = graph_period_name(p);
	return xasprintf("img/%s/%s-%s.png", seed, kn ? kn : "none", pn ? pn : "none");
}

char *graph_page_rel(const char *seed)
{
	return xasprintf("seed-%s.html", seed);
}

static void html_text(struct strbuf *sb, const char *s)
{
	if (!s)
		return;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '&': sb_append(sb, "&amp;"); break;
		case '<': sb_append(sb, "&lt;"); break;
		case '>': sb_append(sb, "&gt;"); break;
		case '"': sb_append(sb, "&quot;"); break;
		case '\'': sb_append(sb, "&#39;"); break;
		default:
			if ((*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7f)
				sb_append(sb, "\xef\xbf\xbd");
			else
				sb_appendc(sb, (char)*p);
		}
	}
}

char *graph_html_escape(const char *s)
{
	struct strbuf sb;
	sb_init(&sb);
	html_text(&sb, s);
	char *out = sb_steal(&sb);
	sb_fini(&sb);
	return out;
}

/* A relative URL (path segments as given, each byte outside the unreserved set and '/'
 * percent-encoded), escaped for an attribute. */
static void html_url(struct strbuf *sb, const char *rel)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)rel; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    *p == '.' || *p == '_' || *p == '~' || *p == '/' || *p == '#') {
			sb_appendc(sb, (char)*p);
		} else {
			sb_appendc(sb, '%');
			sb_appendc(sb, hex[*p >> 4]);
			sb_appendc(sb, hex[*p & 15]);
		}
	}
}

static const char *const sev_class[] = { "none", "ok", "warn", "bad" };

static void page_head(struct strbuf *sb, const char *title)
{
	sb_append(sb, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
	html_text(sb, title);
	sb_append(sb, "</title>\n<style>\n"
		      "body{font-family:sans-serif;margin:1em 2em;color:#222;background:#fff}\n"
		      "h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.5em;border-bottom:1px solid #ccc}\n"
		      "h3{font-size:1em;margin:1em 0 .3em}\n"
		      ".meta{color:#555;font-size:.9em;margin-top:0}\n"
		      "table{border-collapse:collapse;font-size:.9em}\n"
		      "th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\n"
		      "th{background:#f2f2f2}\n"
		      "td.state{font-weight:bold;white-space:nowrap}\n"
		      "tr.ok td.state{background:#d9f0d3}tr.warn td.state{background:#fdeaa8}\n"
		      "tr.bad td.state{background:#f8c5c5}tr.none td.state{background:#eee}\n"
		      ".reply{font-family:monospace;word-break:break-word}\n"
		      ".small{color:#555;font-size:.85em}\n"
		      ".graphs{display:flex;flex-wrap:wrap;gap:.5em}\n"
		      ".graphs img{border:1px solid #ddd;max-width:100%;height:auto}\n"
		      "nav a{margin-right:1em}\n"
		      "td.cell{min-width:14em}\n"
		      "td.cell.ok{background:#eef8eb}td.cell.warn{background:#fef6da}td.cell.bad{background:#fbe3e3}"
		      "td.cell.none{background:#f6f6f6}\n"
		      "td.cell .state{font-weight:bold;display:block}\n"
		      "td.cell img{display:block;margin-top:.3em;border:1px solid #ddd}\n"
		      "table.side{table-layout:fixed;width:100%}table.side td,table.side th{width:auto}\n"
		      "table.side img{width:100%;height:auto}\n"
		      "</style>\n</head>\n<body>\n");
}

/* "<br>" and text in small print, when there is text. */
static void small_line(struct strbuf *sb, const char *text)
{
	if (!text || !*text)
		return;
	sb_append(sb, "<br><span class=\"small\">");
	html_text(sb, text);
	sb_append(sb, "</span>");
}

/* A link to the seed's page, its name as the text. */
static void seed_link(struct strbuf *sb, const char *name)
{
	char *page = graph_page_rel(name);
	sb_append(sb, "<a href=\"");
	html_url(sb, page);
	sb_append(sb, "\">");
	html_text(sb, name);
	sb_append(sb, "</a>");
	free(page);
}

/* The index's first cell of a seed's row: its link and address. */
static void seed_cell(struct strbuf *sb, const struct graph_seed *s)
{
	sb_append(sb, "<td>");
	seed_link(sb, s->name);
	small_line(sb, s->address);
	sb_append(sb, "</td>");
}

static void state_cells(struct strbuf *sb, const struct graph_seed *s)
{
	sb_append(sb, "<td class=\"state\">");
	html_text(sb, s->state && *s->state ? s->state : "no result yet");
	sb_append(sb, "</td><td>");
	html_text(sb, s->since);
	sb_append(sb, "</td><td>");
	html_text(sb, s->last_at);
	sb_append(sb, "</td><td>");
	html_text(sb, s->outcome);
	if (s->stage && *s->stage) {
		sb_append(sb, " at ");
		html_text(sb, s->stage);
	}
	sb_append(sb, "</td><td class=\"reply\">");
	html_text(sb, s->reply);
	sb_append(sb, "</td><td>");
	html_text(sb, s->readback);
	small_line(sb, s->note);
	sb_append(sb, "</td>");
}

static const char *state_head = "<th>State</th><th>Since</th><th>Last probe</th><th>Outcome</th>"
				"<th>Reply</th><th>Readback</th>";

static void graph_img(struct strbuf *sb, const struct graph_dashboard *d, const struct graph_seed *s,
		      enum graph_kind k, enum graph_period p, const char *prefix)
{
	char *rel = graph_image_rel(s->name, k, p);
	sb_append(sb, "<img src=\"");
	sb_append(sb, prefix);
	html_url(sb, rel);
	sb_appendf(sb, "\" width=\"%d\" height=\"%d\" alt=\"", d->width, d->height);
	html_text(sb, s->name);
	sb_appendf(sb, ": %s, %s\">\n", graph_kind_title(k), graph_period_title(p));
	free(rel);
}

static bool any_graph(const struct graph_seed *s, enum graph_period p)
{
	for (int k = 0; k < GRAPH_KIND__COUNT; k++)
		if (s->graphs[k][p])
			return true;
	return false;
}

static void page_foot(struct strbuf *sb, const struct graph_dashboard *d)
{
	sb_append(sb, "<p class=\"meta\">Generated ");
	html_text(sb, d->generated);
	sb_append(sb, " by mailcanary graph. Graph times are in the time zone of the host that drew them.</p>\n"
		      "</body>\n</html>\n");
}

static const char *vantage_label(const char *v)
{
	return v && *v ? v : "(no vantage)";
}

static const char *vantage_dir(const struct graph_dashboard *d, const char *v)
{
	return d->n_vantages > 1 && v && *v ? v : NULL;
}

/* One vantage's cell of the index: state, last probe, outcome, reply, readback, where the state
 * comes from, and the small outcome graph (a link to the seed page's column). */
static void vantage_cell(struct strbuf *sb, const struct graph_dashboard *d, const struct graph_seed *c,
			 int first)
{
	sb_appendf(sb, "<td class=\"cell %s\" data-vantage=\"", sev_class[c->severity]);
	html_text(sb, c->vantage);
	sb_append(sb, "\"><span class=\"state\">");
	html_text(sb, c->state && *c->state ? c->state : "no result yet");
	sb_append(sb, "</span>");
	if (c->last_at && *c->last_at) {
		sb_append(sb, "<span class=\"small\">");
		html_text(sb, c->last_at);
		sb_append(sb, "</span><br>");
	}
	if (c->outcome && *c->outcome) {
		html_text(sb, c->outcome);
		if (c->stage && *c->stage) {
			sb_append(sb, " at ");
			html_text(sb, c->stage);
		}
		sb_append(sb, "<br>");
	}
	if (c->reply && *c->reply) {
		sb_append(sb, "<span class=\"reply\">");
		html_text(sb, c->reply);
		sb_append(sb, "</span><br>");
	}
	if (c->readback && *c->readback) {
		html_text(sb, c->readback);
		sb_append(sb, "<br>");
	}
	if (c->source && *c->source) {
		sb_append(sb, "<span class=\"small\">from the ");
		html_text(sb, c->source);
		sb_append(sb, "</span>");
	}
	if (first >= 0 && c->small) {
		char *page = graph_page_rel(c->name);
		char *rel = graph_small_rel(c->name, vantage_dir(d, c->vantage), (enum graph_period)first);
		sb_append(sb, "<a href=\"");
		html_url(sb, page);
		sb_append(sb, "\"><img src=\"");
		html_url(sb, rel);
		sb_appendf(sb, "\" width=\"%d\" height=\"%d\" alt=\"", d->small_width, d->small_height);
		html_text(sb, c->name);
		sb_append(sb, " at ");
		html_text(sb, vantage_label(c->vantage));
		sb_appendf(sb, ": outcomes, %s\"></a>", graph_period_title((enum graph_period)first));
		free(rel);
		free(page);
	} else if (c->no_graphs) {
		sb_append(sb, "<span class=\"small\"><br>no graph: ");
		html_text(sb, c->no_graphs);
		sb_append(sb, "</span>");
	}
	sb_append(sb, "</td>");
}

/* The index with several vantages: seeds by vantages. */
static void index_vantages(struct strbuf *sb, const struct graph_dashboard *d, int first)
{
	sb_append(sb, "<table class=\"vantages\">\n<thead><tr><th>Seed</th>");
	for (size_t v = 0; v < d->n_vantages; v++) {
		sb_append(sb, "<th>");
		html_text(sb, vantage_label(d->vantages[v]));
		sb_append(sb, "</th>");
	}
	sb_append(sb, "</tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < d->n_seeds; i++) {
		const struct graph_seed *s = &d->seeds[i];
		sb_append(sb, "<tr class=\"seed\">");
		seed_cell(sb, s);
		for (size_t v = 0; v < d->n_vantages && s->cells; v++)
			vantage_cell(sb, d, &s->cells[v], first);
		sb_append(sb, "</tr>\n");
	}
	sb_append(sb, "</tbody>\n</table>\n");
}

static void index_page(struct strbuf *sb, const struct graph_dashboard *d)
{
	int first = -1;
	for (int p = 0; p < GRAPH_PERIOD__COUNT && first < 0; p++)
		if (d->periods[p])
			first = p;
	page_head(sb, d->title);
	sb_append(sb, "<h1>");
	html_text(sb, d->title);
	sb_append(sb, "</h1>\n<p class=\"meta\">Generated ");
	html_text(sb, d->generated);
	sb_appendf(sb, "; %zu seed%s.", d->n_seeds, d->n_seeds == 1 ? "" : "s");
	if (d->note && *d->note) {
		sb_append(sb, " ");
		html_text(sb, d->note);
	}
	if (d->n_vantages > 1) {
		sb_appendf(sb, " %zu vantages side by side: each column's state is its latest result (from the "
			   "detail log for this host's vantage, else from that vantage's RRD file).", d->n_vantages);
	}
	sb_append(sb, "</p>\n");
	if (d->n_vantages > 1) {
		index_vantages(sb, d, first);
		page_foot(sb, d);
		return;
	}
	sb_append(sb, "<table>\n<thead><tr><th>Seed</th>");
	sb_append(sb, state_head);
	sb_append(sb, "</tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < d->n_seeds; i++) {
		const struct graph_seed *s = &d->seeds[i];
		sb_appendf(sb, "<tr class=\"%s\">", sev_class[s->severity]);
		seed_cell(sb, s);
		state_cells(sb, s);
		sb_append(sb, "</tr>\n");
	}
	sb_append(sb, "</tbody>\n</table>\n");
	if (first >= 0) {
		sb_append(sb, "<h2>");
		html_text(sb, graph_period_title((enum graph_period)first));
		sb_append(sb, "</h2>\n");
		for (size_t i = 0; i < d->n_seeds; i++) {
			const struct graph_seed *s = &d->seeds[i];
			sb_append(sb, "<h3>");
			seed_link(sb, s->name);
			sb_append(sb, "</h3>\n");
			if (!any_graph(s, (enum graph_period)first)) {
				sb_append(sb, "<p class=\"small\">No graphs: ");
				html_text(sb, s->no_graphs ? s->no_graphs : "not drawn");
				sb_append(sb, ".</p>\n");
				continue;
			}
			sb_append(sb, "<div class=\"graphs\">\n");
			static const enum graph_kind overview[] = { GRAPH_OUTCOMES, GRAPH_STAGES };
			for (size_t k = 0; k < sizeof overview / sizeof overview[0]; k++)
				if (s->graphs[overview[k]][first])
					graph_img(sb, d, s, overview[k], (enum graph_period)first, "");
			sb_append(sb, "</div>\n");
		}
	}
	page_foot(sb, d);
}

static bool any_cell_graph(const struct graph_seed *s, size_t n, enum graph_period p)
{
	for (size_t v = 0; v < n && s->cells; v++)
		if (any_graph(&s->cells[v], p))
			return true;
	return false;
}

/* A seed's page with several vantages: a row of state per vantage, then per period and kind the
 * vantages' graphs side by side. */
static void seed_page_vantages(struct strbuf *sb, const struct graph_dashboard *d, const struct graph_seed *s)
{
	sb_append(sb, "<table>\n<thead><tr><th>Vantage</th>");
	sb_append(sb, state_head);
	sb_append(sb, "<th>From</th></tr></thead>\n<tbody>\n");
	for (size_t v = 0; v < d->n_vantages; v++) {
		const struct graph_seed *c = &s->cells[v];
		sb_appendf(sb, "<tr class=\"%s\" id=\"v", sev_class[c->severity]);
		html_url(sb, c->vantage && *c->vantage ? c->vantage : "-");
		sb_append(sb, "\"><td>");
		html_text(sb, vantage_label(c->vantage));
		sb_append(sb, "</td>");
		state_cells(sb, c);
		sb_append(sb, "<td>");
		html_text(sb, c->source);
		sb_append(sb, "</td></tr>\n");
	}
	sb_append(sb, "</tbody>\n</table>\n");
	bool any = false;
	for (int p = 0; p < GRAPH_PERIOD__COUNT; p++) {
		if (!d->periods[p] || !any_cell_graph(s, d->n_vantages, (enum graph_period)p))
			continue;
		any = true;
		sb_appendf(sb, "<h2 id=\"p%s\">", graph_period_name((enum graph_period)p));
		html_text(sb, graph_period_title((enum graph_period)p));
		sb_append(sb, "</h2>\n");
		for (int k = 0; k < GRAPH_KIND__COUNT; k++) {
			sb_append(sb, "<h3>");
			html_text(sb, graph_kind_title((enum graph_kind)k));
			sb_append(sb, "</h3>\n<table class=\"side\"><tr>");
			for (size_t v = 0; v < d->n_vantages; v++) {
				sb_append(sb, "<th>");
				html_text(sb, vantage_label(s->cells[v].vantage));
				sb_append(sb, "</th>");
			}
			sb_append(sb, "</tr>\n<tr>");
			for (size_t v = 0; v < d->n_vantages; v++) {
				const struct graph_seed *c = &s->cells[v];
				sb_append(sb, "<td>");
				if (c->graphs[k][p]) {
					char *rel = graph_image_rel_v(s->name, vantage_dir(d, c->vantage), (enum graph_kind)k,
								      (enum graph_period)p);
					sb_append(sb, "<img src=\"");
					html_url(sb, rel);
					sb_appendf(sb, "\" width=\"%d\" height=\"%d\" alt=\"", d->width, d->height);
					html_text(sb, s->name);
					sb_append(sb, " at ");
					html_text(sb, vantage_label(c->vantage));
					sb_appendf(sb, ": %s, %s\">", graph_kind_title((enum graph_kind)k),
						   graph_period_title((enum graph_period)p));
					free(rel);
				} else {
					sb_append(sb, "<span class=\"small\">No graph: ");
					html_text(sb, c->no_graphs ? c->no_graphs : "not drawn");
					sb_append(sb, ".</span>");
				}
				sb_append(sb, "</td>");
			}
			sb_append(sb, "</tr></table>\n");
		}
	}
	if (!any)
		sb_append(sb, "<p class=\"small\">No graphs at any vantage.</p>\n");
	page_foot(sb, d);
}

static void seed_page(struct strbuf *sb, const struct graph_dashboard *d, const struct graph_seed *s)
{
	char *title = xasprintf("%s: %s", d->title, s->name);
	page_head(sb, title);
	free(title);
	sb_append(sb, "<nav><a href=\"index.html\">All seeds</a>");
	for (int p = 0; p < GRAPH_PERIOD__COUNT; p++)
		if (d->periods[p] && (d->n_vantages > 1 && s->cells ? any_cell_graph(s, d->n_vantages, (enum graph_period)p)
								     : any_graph(s, (enum graph_period)p)))
			sb_appendf(sb, "<a href=\"#p%s\">%s</a>", graph_period_name((enum graph_period)p),
				   graph_period_title((enum graph_period)p));
	sb_append(sb, "</nav>\n<h1>");
	html_text(sb, s->name);
	sb_append(sb, "</h1>\n<p class=\"meta\">");
	html_text(sb, s->address);
	if (s->sender && *s->sender) {
		sb_append(sb, ", sender ");
		html_text(sb, s->sender);
	}
	if (s->schedule && *s->schedule) {
		sb_append(sb, ", schedule ");
		html_text(sb, s->schedule);
	}
	if (d->n_vantages > 1 && s->cells) {
		sb_append(sb, "</p>\n");
		seed_page_vantages(sb, d, s);
		return;
	}
	sb_append(sb, "</p>\n<table>\n<thead><tr>");
	sb_append(sb, state_head);
	sb_appendf(sb, "</tr></thead>\n<tbody><tr class=\"%s\">", sev_class[s->severity]);
	state_cells(sb, s);
	sb_append(sb, "</tr></tbody>\n</table>\n");
	bool any = false;
	for (int p = 0; p < GRAPH_PERIOD__COUNT; p++) {
		if (!d->periods[p] || !any_graph(s, (enum graph_period)p))
			continue;
		any = true;
		sb_appendf(sb, "<h2 id=\"p%s\">", graph_period_name((enum graph_period)p));
		html_text(sb, graph_period_title((enum graph_period)p));
		sb_append(sb, "</h2>\n<div class=\"graphs\">\n");
		for (int k = 0; k < GRAPH_KIND__COUNT; k++)
			if (s->graphs[k][p])
				graph_img(sb, d, s, (enum graph_kind)k, (enum graph_period)p, "");
		sb_append(sb, "</div>\n");
	}
	if (!any) {
		sb_append(sb, "<p class=\"small\">No graphs: ");
		html_text(sb, s->no_graphs ? s->no_graphs : "not drawn");
		sb_append(sb, ".</p>\n");
	}
	page_foot(sb, d);
}

/* Writes text to dir/name through a temporary file and rename(). */
static int write_file(const char *dir, const char *name, const struct strbuf *text, char **err)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *tmp = xasprintf("%s/.%s.%ld.%u.tmp", dir, name, (long)getpid(), tmp_seq++);
	int rc = -1;
	FILE *fp = fopen(tmp, "w");
	if (!fp) {
		*err = xasprintf("%s: %s", tmp, strerror(errno));
		goto out;
	}
	size_t w = fwrite(text->s, 1, text->len, fp);
	int ferr = ferror(fp);
	if (fclose(fp) != 0 || w != text->len || ferr) {
		*err = xasprintf("%s: write failed: %s", tmp, strerror(errno ? errno : EIO));
		unlink(tmp);
		goto out;
	}
	if (chmod(tmp, 0644) < 0 || rename(tmp, path) < 0) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	free(path);
	free(tmp);
	return rc;
}

int graph_dashboard_write(const char *dir, const struct graph_dashboard *d, char **err)
{
	if (mkdir_p(dir, 0755) < 0) {
		*err = xasprintf("%s: cannot create directory: %s", dir, strerror(errno));
		return -1;
	}
	struct strbuf sb;
	sb_init(&sb);
	int rc = 0;
	for (size_t i = 0; i < d->n_seeds && rc == 0; i++) {
		sb_reset(&sb);
		seed_page(&sb, d, &d->seeds[i]);
		char *name = graph_page_rel(d->seeds[i].name);
		rc = write_file(dir, name, &sb, err);
		free(name);
	}
	if (rc == 0) {
		sb_reset(&sb);
		index_page(&sb, d);
		rc = write_file(dir, "index.html", &sb, err);
	}
	sb_fini(&sb);
	return rc;
}
