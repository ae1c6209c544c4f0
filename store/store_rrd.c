/* RRD files per seed: layout from the schedule, creation under a temporary name, a layout check
 * of existing files, updates with librrd (rrd_update_r) or through rrdcached (rrdc_update), and
 * rate-limited complaints (collectd's utils_complain.h pattern). */
#include "store_rrd.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <rrd.h>
#include <rrd_client.h>

#include "rrd_dl.h" /* after rrd.h: the calls below go through the dlopen()ed library */

#include "clock.h"
#include "fsutil.h"
#include "log.h"
#include "schedule.h"
#include "strbuf.h"
#include "strmap.h"
#include "xalloc.h"

#define DAY_S INT64_C(86400)
#define WEEK_S (7 * DAY_S)
/* RRAs: every step for 100 days, one day for 2 years, one week for 10 years (Julian years). */
#define SPAN_STEP_S (100 * DAY_S)
#define SPAN_DAY_S (2 * INT64_C(31557600))
#define SPAN_WEEK_S (10 * INT64_C(31557600))
/* Holt-Winters: a daily season, predictions kept for a week. */
#define HW_ALPHA "0.1"
#define HW_BETA "0.0035"
#define HW_MAX_STEP_S (6 * 3600)

static const struct {
	const char *name;
	const char *min, *max;
} ds_def[STORE_RRD_DS__COUNT] = {
	[STORE_RRD_CONNECT] = { "connect", "0", "U" },
	[STORE_RRD_BANNER] = { "banner", "0", "U" },
	[STORE_RRD_EHLO] = { "ehlo", "0", "U" },
	[STORE_RRD_STARTTLS] = { "starttls", "0", "U" },
	[STORE_RRD_AUTH] = { "auth", "0", "U" },
	[STORE_RRD_MAIL] = { "mail", "0", "U" },
	[STORE_RRD_RCPT] = { "rcpt", "0", "U" },
	[STORE_RRD_DATA] = { "data", "0", "U" },
	[STORE_RRD_EOD] = { "eod", "0", "U" },
	[STORE_RRD_TOTAL] = { "total", "0", "U" },
	[STORE_RRD_DELIVERY] = { "delivery", "0", "U" },
	[STORE_RRD_ACCEPTED] = { "accepted", "0", "1" },
	[STORE_RRD_DEFERRED] = { "deferred", "0", "1" },
	[STORE_RRD_REJECTED] = { "rejected", "0", "1" },
	[STORE_RRD_FAILED] = { "failed", "0", "1" },
	[STORE_RRD_INBOX] = { "inbox", "0", "1" },
	[STORE_RRD_ATTEMPTS] = { "attempts", "0", "U" },
	[STORE_RRD_ACCEPT_AFTER] = { "accept_after", "0", "U" },
	[STORE_RRD_MISSING] = { "missing", "0", "1" },
	[STORE_RRD_JUNK] = { "junk", "0", "1" },
};

const char *store_rrd_ds_name(enum store_rrd_ds ds)
{
	return (unsigned)ds < STORE_RRD_DS__COUNT ? ds_def[ds].name : NULL;
}

void store_rrd_sample_init(struct store_rrd_sample *s)
{
	for (size_t i = 0; i < STORE_RRD_DS__COUNT; i++)
		s->v[i] = NAN;
}

/* ---- layout ---- */

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void layout_from_gaps(int64_t min_gap, int64_t max_gap, struct store_rrd_layout *out)
{
	out->step_s = clamp64(min_gap, STORE_RRD_MIN_STEP_S, DAY_S);
	out->heartbeat_s = (max_gap > out->step_s ? max_gap : out->step_s) + out->step_s;
	out->align = min_gap >= out->step_s;
}

int store_rrd_layout_for_schedule(const char *schedule, struct store_rrd_layout *out, char **err)
{
	struct schedule sc;
	if (schedule_parse(schedule, &sc, err) < 0)
		return -1;
	if (sc.kind == SCHEDULE_EVERY) {
		layout_from_gaps(sc.interval_s, sc.interval_s, out);
		return 0;
	}
	/* cron: the gaps between fire times from a fixed origin (2024-01-01, a Monday, before a
	 * leap day), over up to 1500 slots or 9 years, whichever ends first. */
	const int64_t origin = INT64_C(1704067200);
	int64_t prev = schedule_next(&sc, 0, origin - 1), min_gap = INT64_MAX, max_gap = 0;
	for (int i = 0; i < 1500 && prev != INT64_MAX && prev < origin + 9 * 365 * DAY_S; i++) {
		int64_t next = schedule_next(&sc, 0, prev);
		if (next == INT64_MAX)
			break;
		int64_t gap = next - prev;
		if (gap < min_gap)
			min_gap = gap;
		if (gap > max_gap)
			max_gap = gap;
		prev = next;
	}
	if (min_gap == INT64_MAX) /* one slot in 9 years at most */
		min_gap = max_gap = 9 * 365 * DAY_S;
	layout_from_gaps(min_gap, max_gap, out);
	return 0;
}

struct rra {
	const char *cf;
	int64_t ppr;  /* primary data points per row */
	int64_t rows;
};

#define MAX_RRAS 16

static int64_t ceil_div(int64_t a, int64_t b)
{
	return (a + b - 1) / b;
}

/* The archives a file with this layout has, in file order, as rrd_info reports them (the
 * HWPREDICT argument adds SEASONAL, DEVSEASONAL, DEVPREDICT and FAILURES). *season: the daily
 * season in steps, or 0 without Holt-Winters. */
static size_t layout_rras(const struct store_rrd_layout *l, struct rra *out, int64_t *season)
{
	static const char *const cfs[] = { "AVERAGE", "MIN", "MAX" };
	int64_t step = l->step_s;
	struct {
		int64_t ppr, span;
	} tiers[3] = {
		{ 1, SPAN_STEP_S },
		{ (DAY_S + step / 2) / step, SPAN_DAY_S },
		{ (WEEK_S + step / 2) / step, SPAN_WEEK_S },
	};
	int64_t ppr[3], rows[3];
	size_t nt = 0, n = 0;
	for (size_t i = 0; i < 3; i++) {
		int64_t p = tiers[i].ppr < 1 ? 1 : tiers[i].ppr;
		int64_t r = ceil_div(tiers[i].span, p * step);
		if (nt && ppr[nt - 1] == p) { /* daily or weekly seeds: one archive, the longer span */
			if (r > rows[nt - 1])
				rows[nt - 1] = r;
			continue;
		}
		ppr[nt] = p;
		rows[nt] = r;
		nt++;
	}
	for (size_t i = 0; i < nt; i++)
		for (size_t c = 0; c < 3; c++)
			out[n++] = (struct rra){ cfs[c], ppr[i], rows[i] };
	*season = 0;
	if (step <= HW_MAX_STEP_S && DAY_S % step == 0) {
		int64_t s = DAY_S / step, r = 7 * s;
		*season = s;
		out[n++] = (struct rra){ "HWPREDICT", 1, r };
		out[n++] = (struct rra){ "SEASONAL", 1, s };
		out[n++] = (struct rra){ "DEVSEASONAL", 1, s };
		out[n++] = (struct rra){ "DEVPREDICT", 1, r };
		out[n++] = (struct rra){ "FAILURES", 1, s };
	}
	return n;
}

/* ---- the store ---- */

struct rrd_file {
	char *path;
	bool checked;                   /* exists with layout (checked by this store) */
	struct store_rrd_layout layout; /* what it was checked against */
	int64_t last_s;                 /* last update time written or read; 0: read it */
	int64_t prev_s;                 /* the file's last update before the latest write (0: unknown) */
	bool legacy;                    /* the layout before missing and junk (a remote daemon's file
					 * that could not be migrated): updated without those two */
	bool legacy_warned;
	/* complaints */
	bool failing;
	int64_t quiet_until_ms;
	unsigned suppressed;
	unsigned failures;
};

struct store_rrd {
	char *dir;
	char *daemon;   /* NULL: direct */
	bool remote;    /* daemon over TCP: paths relative to its base directory */
	bool connected; /* this store called rrdc_connect successfully */
	char *vantage;  /* NULL: none */
	int64_t complain_ms;
	int64_t (*now_ms)(void);
	struct strmap files; /* path -> struct rrd_file * */
	unsigned tmp_seq;
};

static int64_t mono_ms(void)
{
	return mono_us() / 1000;
}

struct store_rrd *store_rrd_new(const struct store_rrd_params *p)
{
	struct store_rrd *s = xcalloc(1, sizeof *s);
	s->dir = xstrdup(p->dir ? p->dir : "");
	if (p->daemon && *p->daemon) {
		s->daemon = xstrdup(p->daemon);
		s->remote = strncmp(p->daemon, "unix:", 5) != 0 && p->daemon[0] != '/';
	}
	s->vantage = p->vantage && *p->vantage ? xstrdup(p->vantage) : NULL;
	s->complain_ms = p->complain_ms > 0 ? p->complain_ms : STORE_RRD_COMPLAIN_MS;
	s->now_ms = p->now_ms ? p->now_ms : mono_ms;
	strmap_init(&s->files, false);
	return s;
}

void store_rrd_free(struct store_rrd *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->files.cap; i++) {
		struct rrd_file *f = s->files.slots[i].value;
		if (s->files.slots[i].key && f) {
			free(f->path);
			free(f);
		}
	}
	strmap_fini(&s->files);
	if (s->connected)
		rrdc_disconnect();
	free(s->dir);
	free(s->daemon);
	free(s->vantage);
	free(s);
}

char *store_rrd_path(const struct store_rrd *s, const char *seed)
{
	if (s->remote)
		return s->vantage ? xasprintf("%s/%s.rrd", s->vantage, seed) : xasprintf("%s.rrd", seed);
	return s->vantage ? xasprintf("%s/%s/%s.rrd", s->dir, s->vantage, seed) : xasprintf("%s/%s.rrd", s->dir, seed);
}

char *store_rrd_path_v(const struct store_rrd *s, const char *vantage, const char *seed)
{
	bool v = vantage && *vantage;
	if (s->remote)
		return v ? xasprintf("%s/%s.rrd", vantage, seed) : xasprintf("%s.rrd", seed);
	return v ? xasprintf("%s/%s/%s.rrd", s->dir, vantage, seed) : xasprintf("%s/%s.rrd", s->dir, seed);
}

bool store_rrd_name_ok(const char *s, size_t len)
{
	if (len < 1 || len > 64 || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

/* "NAME.rrd" with a valid NAME. */
static bool rrd_name(const char *s)
{
	size_t n = strlen(s);
	return n > 4 && strcmp(s + n - 4, ".rrd") == 0 && store_rrd_name_ok(s, n - 4);
}

struct names {
	char **v;
	size_t n, cap;
};

static void names_add(struct names *nm, char *owned)
{
	if (nm->n == nm->cap) {
		nm->cap = nm->cap ? nm->cap * 2 : 16;
		nm->v = xrealloc(nm->v, nm->cap * sizeof *nm->v);
	}
	nm->v[nm->n++] = owned;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void store_rrd_list_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int list_local(const char *dir, struct names *nm, char **err)
{
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		*err = xasprintf("%s: %s", dir, strerror(errno));
		return -1;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (rrd_name(e->d_name)) {
			names_add(nm, xstrdup(e->d_name));
			continue;
		}
		if (!store_rrd_name_ok(e->d_name, strlen(e->d_name)))
			continue;
		char *sub = xasprintf("%s/%s", dir, e->d_name);
		DIR *sd = opendir(sub);
		free(sub);
		if (!sd)
			continue; /* not a directory, or unreadable */
		struct dirent *f;
		while ((f = readdir(sd)) != NULL)
			if (rrd_name(f->d_name))
				names_add(nm, xasprintf("%s/%s", e->d_name, f->d_name));
		closedir(sd);
	}
	closedir(d);
	return 0;
}

/* With a remote daemon: its LIST RECURSIVE / (librrd's rrdc_list is declared but not exported
 * by Debian's librrd 1.7.2), on a connection of our own: "N RRDs" and N lines of names. */
static int list_remote(const char *addr, struct names *nm, char **err)
{
	char host[256], port[16];
	const char *colon = strrchr(addr, ':');
	const char *h = addr;
	size_t hl = colon ? (size_t)(colon - addr) : 0;
	if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (!colon || hl == 0 || hl >= sizeof host || strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof port) {
		*err = xasprintf("rrdcached %s: not host:port", addr);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, sizeof port, "%s", colon + 1);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		*err = xasprintf("rrdcached %s: %s", addr, gai_strerror(gai));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		struct timeval tv = { 10, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0) {
		*err = xasprintf("rrdcached %s: LIST: cannot connect: %s", addr, strerror(errno));
		return -1;
	}
	static const char cmd[] = "LIST RECURSIVE /\n";
	FILE *fp = NULL;
	int rc = -1;
	if (send(fd, cmd, sizeof cmd - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof cmd - 1) || !(fp = fdopen(fd, "r"))) {
		*err = xasprintf("rrdcached %s: LIST: %s", addr, strerror(errno));
		if (!fp)
			close(fd);
		return -1;
	}
	char line[4096];
	if (!fgets(line, sizeof line, fp)) {
		*err = xasprintf("rrdcached %s: LIST: no answer", addr);
		goto out;
	}
	long count = strtol(line, NULL, 10);
	if (count < 0) {
		line[strcspn(line, "\r\n")] = '\0';
		*err = xasprintf("rrdcached %s: LIST: %s", addr, line);
		goto out;
	}
	for (long i = 0; i < count; i++) {
		if (!fgets(line, sizeof line, fp)) {
			*err = xasprintf("rrdcached %s: LIST: %ld of %ld names", addr, i, count);
			goto out;
		}
		line[strcspn(line, "\r\n")] = '\0';
		const char *name = line[0] == '/' ? line + 1 : line;
		const char *slash = strchr(name, '/');
		if (!slash ? rrd_name(name)
			   : (!strchr(slash + 1, '/') && store_rrd_name_ok(name, (size_t)(slash - name)) && rrd_name(slash + 1)))
			names_add(nm, xstrdup(name));
	}
	rc = 0;
out:
	fclose(fp);
	return rc;
}

int store_rrd_list(struct store_rrd *s, char ***out, size_t *n, char **err)
{
	struct names nm = { 0 };
	int rc = s->remote ? list_remote(s->daemon, &nm, err) : list_local(s->dir, &nm, err);
	if (rc < 0) {
		store_rrd_list_free(nm.v, nm.n);
		*out = NULL;
		*n = 0;
		return -1;
	}
	if (nm.n)
		qsort(nm.v, nm.n, sizeof *nm.v, cmp_str);
	*out = nm.v;
	*n = nm.n;
	return 0;
}

static struct rrd_file *file_get(struct store_rrd *s, const char *seed)
{
	char *path = store_rrd_path(s, seed);
	struct rrd_file *f = strmap_get(&s->files, path);
	if (f) {
		free(path);
		return f;
	}
	f = xcalloc(1, sizeof *f);
	f->path = path;
	strmap_put(&s->files, path, f);
	return f;
}

/* librrd's message for the last call, with the file named once. Returns owned. */
static char *rrd_message(const char *path, const char *what)
{
	const char *e = rrd_test_error() ? rrd_get_error() : "";
	if (!*e)
		e = "unknown error";
	if (strstr(e, path))
		return what ? xasprintf("%s: %s", what, e) : xstrdup(e);
	return what ? xasprintf("%s: %s: %s", path, what, e) : xasprintf("%s: %s", path, e);
}

/* The rrdc_* client writes to its socket with stdio: a daemon that went away must not kill us
 * with SIGPIPE. Blocked in this thread around each call; one raised meanwhile (a write's
 * SIGPIPE goes to the writing thread) is taken off again. */
static void pipe_block(sigset_t *old)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

static void pipe_restore(const sigset_t *old)
{
	sigset_t set, pending;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (!sigismember(old, SIGPIPE) && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&set, NULL, &zero) == SIGPIPE)
			;
	}
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static int daemon_connect(struct store_rrd *s, const char *path, char **err)
{
	rrd_clear_error();
	int st = rrdc_connect(s->daemon);
	if (st != 0) {
		const char *e = rrd_test_error() ? rrd_get_error() : strerror(st > 0 ? st : EIO);
		*err = xasprintf("%s: rrdcached %s: %s", path, s->daemon, e);
		s->connected = false;
		return -1;
	}
	s->connected = true;
	return 0;
}

/* After a failed rrdc_* call: the error, and a fresh connection next time (librrd's client
 * cannot tell an error line of the daemon from a broken connection in all cases). */
static char *daemon_failed(struct store_rrd *s, const char *path, const char *what, int status)
{
	char *msg;
	if (rrd_test_error())
		msg = xasprintf("%s: rrdcached %s: %s: %s", path, s->daemon, what, rrd_get_error());
	else
		msg = xasprintf("%s: rrdcached %s: %s: %s", path, s->daemon, what,
				status > 0 ? strerror(status) : "failed");
	rrdc_disconnect();
	s->connected = false;
	return msg;
}

/* ---- layout check ---- */

struct seen_ds {
	char name[32];
	char type[32];
	int64_t heartbeat;
	double min, max;
};

struct seen_rra {
	char cf[16];
	int64_t ppr, rows;
};

#define MAX_SEEN 64

struct seen {
	int64_t step;
	struct seen_ds ds[MAX_SEEN];
	size_t n_ds;
	struct seen_rra rra[MAX_SEEN];
	size_t n_rra;
};

static struct seen_ds *seen_ds(struct seen *sn, const char *name, size_t len)
{
	if (len >= sizeof sn->ds[0].name)
		return NULL;
	for (size_t i = 0; i < sn->n_ds; i++)
		if (strlen(sn->ds[i].name) == len && memcmp(sn->ds[i].name, name, len) == 0)
			return &sn->ds[i];
	if (sn->n_ds == MAX_SEEN)
		return NULL;
	struct seen_ds *d = &sn->ds[sn->n_ds++];
	memset(d, 0, sizeof *d);
	memcpy(d->name, name, len);
	d->min = d->max = NAN;
	return d;
}

static int64_t info_int(const rrd_info_t *i)
{
	switch (i->type) {
	case RD_I_CNT: return (int64_t)i->value.u_cnt;
	case RD_I_INT: return (int64_t)i->value.u_int;
	case RD_I_VAL: return isnan(i->value.u_val) ? -1 : (int64_t)i->value.u_val;
	default: return -1;
	}
}

static void info_str(const rrd_info_t *i, char *buf, size_t len)
{
	snprintf(buf, len, "%s", i->type == RD_I_STR && i->value.u_str ? i->value.u_str : "");
}

/* Collects step, data sources (in file order) and archives from rrd_info's list. */
static void seen_collect(const rrd_info_t *info, struct seen *sn)
{
	memset(sn, 0, sizeof *sn);
	sn->step = -1;
	for (const rrd_info_t *i = info; i; i = i->next) {
		const char *k = i->key;
		if (strcmp(k, "step") == 0) {
			sn->step = info_int(i);
		} else if (strncmp(k, "ds[", 3) == 0) {
			const char *close = strstr(k, "].");
			if (!close)
				continue;
			struct seen_ds *d = seen_ds(sn, k + 3, (size_t)(close - (k + 3)));
			const char *field = close + 2;
			if (!d)
				continue;
			if (strcmp(field, "type") == 0)
				info_str(i, d->type, sizeof d->type);
			else if (strcmp(field, "minimal_heartbeat") == 0)
				d->heartbeat = info_int(i);
			else if (strcmp(field, "min") == 0 && i->type == RD_I_VAL)
				d->min = i->value.u_val;
			else if (strcmp(field, "max") == 0 && i->type == RD_I_VAL)
				d->max = i->value.u_val;
		} else if (strncmp(k, "rra[", 4) == 0) {
			char *end;
			long idx = strtol(k + 4, &end, 10);
			if (idx < 0 || idx >= MAX_SEEN || strncmp(end, "].", 2) != 0)
				continue;
			const char *field = end + 2;
			if ((size_t)idx >= sn->n_rra) {
				for (size_t j = sn->n_rra; j <= (size_t)idx; j++)
					memset(&sn->rra[j], 0, sizeof sn->rra[j]);
				sn->n_rra = (size_t)idx + 1;
			}
			struct seen_rra *r = &sn->rra[idx];
			if (strcmp(field, "cf") == 0)
				info_str(i, r->cf, sizeof r->cf);
			else if (strcmp(field, "rows") == 0)
				r->rows = info_int(i);
			else if (strcmp(field, "pdp_per_row") == 0)
				r->ppr = info_int(i);
		}
	}
}

static bool same_limit(double have, const char *want)
{
	if (strcmp(want, "U") == 0)
		return isnan(have);
	return !isnan(have) && have == strtod(want, NULL);
}

static void limit_str(double v, char *buf, size_t len)
{
	if (isnan(v))
		snprintf(buf, len, "U");
	else
		snprintf(buf, len, "%g", v);
}

static void append_names(struct strbuf *sb, const struct seen *sn)
{
	for (size_t i = 0; i < sn->n_ds; i++)
		sb_appendf(sb, "%s%s", i ? " " : "", sn->ds[i].name);
}

/* The first difference between what the file has and what the layout needs with the first
 * n_ds data sources, in words; NULL when none. Returns owned. */
static char *layout_diff(const struct seen *sn, const struct store_rrd_layout *l, size_t n_ds)
{
	struct strbuf sb;
	sb_init(&sb);
	if (sn->step != l->step_s) {
		sb_appendf(&sb, "step %" PRId64 " s, expected %" PRId64 " s (from the seed's schedule)", sn->step,
			   l->step_s);
		goto out;
	}
	bool names_ok = sn->n_ds == n_ds;
	for (size_t i = 0; names_ok && i < sn->n_ds; i++)
		names_ok = strcmp(sn->ds[i].name, ds_def[i].name) == 0;
	if (!names_ok) {
		sb_appendf(&sb, "data sources \"");
		append_names(&sb, sn);
		sb_append(&sb, "\", expected \"");
		for (size_t i = 0; i < STORE_RRD_DS__COUNT; i++)
			sb_appendf(&sb, "%s%s", i ? " " : "", ds_def[i].name);
		sb_append(&sb, "\"");
		goto out;
	}
	for (size_t i = 0; i < sn->n_ds; i++) {
		const struct seen_ds *d = &sn->ds[i];
		char a[32], b[32];
		if (strcmp(d->type, "GAUGE") != 0) {
			sb_appendf(&sb, "data source %s is %s, expected GAUGE", d->name, d->type);
			goto out;
		}
		if (d->heartbeat != l->heartbeat_s) {
			sb_appendf(&sb, "data source %s has heartbeat %" PRId64 " s, expected %" PRId64 " s", d->name,
				   d->heartbeat, l->heartbeat_s);
			goto out;
		}
		if (!same_limit(d->min, ds_def[i].min) || !same_limit(d->max, ds_def[i].max)) {
			limit_str(d->min, a, sizeof a);
			limit_str(d->max, b, sizeof b);
			sb_appendf(&sb, "data source %s has range %s..%s, expected %s..%s", d->name, a, b, ds_def[i].min,
				   ds_def[i].max);
			goto out;
		}
	}
	struct rra want[MAX_RRAS];
	int64_t season;
	size_t n = layout_rras(l, want, &season);
	for (size_t i = 0; i < n || i < sn->n_rra; i++) {
		if (i >= sn->n_rra) {
			sb_appendf(&sb, "%zu archives, expected %zu (archive %zu: %s of %" PRId64 " steps x %" PRId64
					" rows missing)", sn->n_rra, n, i, want[i].cf, want[i].ppr, want[i].rows);
			goto out;
		}
		const struct seen_rra *r = &sn->rra[i];
		if (i >= n) {
			sb_appendf(&sb, "%zu archives, expected %zu (archive %zu: %s of %" PRId64 " steps x %" PRId64
					" rows is extra)", sn->n_rra, n, i, r->cf, r->ppr, r->rows);
			goto out;
		}
		if (strcmp(r->cf, want[i].cf) != 0 || r->ppr != want[i].ppr || r->rows != want[i].rows) {
			sb_appendf(&sb, "archive %zu is %s of %" PRId64 " steps x %" PRId64 " rows, expected %s of %" PRId64
					" steps x %" PRId64 " rows", i, r->cf, r->ppr, r->rows, want[i].cf, want[i].ppr,
				   want[i].rows);
			goto out;
		}
	}
out:
	if (sb.len == 0) {
		sb_fini(&sb);
		return NULL;
	}
	char *d = sb_steal(&sb);
	sb_fini(&sb);
	return d;
}

/* rrd_info of the file (through the daemon when it is remote); NULL with *err. */
static rrd_info_t *file_info(struct store_rrd *s, const char *path, char **err)
{
	rrd_info_t *info;
	if (s->remote) {
		if (daemon_connect(s, path, err) < 0)
			return NULL;
		sigset_t old;
		pipe_block(&old);
		rrd_clear_error();
		info = rrdc_info(path);
		pipe_restore(&old);
		if (!info)
			*err = daemon_failed(s, path, "INFO", -1);
		return info;
	}
	rrd_clear_error();
	info = rrd_info_r(path);
	if (!info)
		*err = rrd_message(path, "cannot read it");
	return info;
}

/* The arguments that add missing and junk to a file of heartbeat_s: "DS:missing:GAUGE:...". */
static void added_ds_args(int64_t heartbeat_s, char *out[STORE_RRD_DS__COUNT - STORE_RRD_DS_LEGACY_COUNT])
{
	for (size_t i = STORE_RRD_DS_LEGACY_COUNT; i < STORE_RRD_DS__COUNT; i++)
		out[i - STORE_RRD_DS_LEGACY_COUNT] = xasprintf("DS:%s:GAUGE:%" PRId64 ":%s:%s", ds_def[i].name,
								heartbeat_s, ds_def[i].min, ds_def[i].max);
}

#define N_ADDED (STORE_RRD_DS__COUNT - STORE_RRD_DS_LEGACY_COUNT)

static int copy_fd(int from, int to)
{
	char buf[65536];
	if (lseek(from, 0, SEEK_SET) < 0)
		return -1;
	for (;;) {
		ssize_t n = read(from, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(to, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -1;
			off += w;
		}
	}
}

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* Adds missing and junk to a local file of the layout before them: with rrdcached, what it holds
 * for the file is written first; the file is locked (fcntl, as librrd's own updates lock it, so
 * a concurrent update fails instead of being lost), copied to a temporary name in its
 * directory, rrd_tune'd there (librrd rewrites the copy), checked (the whole layout, the last
 * update), given the file's owner and mode, and renamed over the file. Any failure leaves the
 * file as it was. */
static int migrate_file(struct store_rrd *s, const char *path, const struct store_rrd_layout *l, char **err)
{
	if (s->daemon) {
		if (daemon_connect(s, path, err) < 0)
			return -1;
		sigset_t old;
		pipe_block(&old);
		rrd_clear_error();
		int st = rrdc_flush(path);
		pipe_restore(&old);
		if (st != 0) {
			*err = daemon_failed(s, path, "FLUSH (before migrating the file)", st);
			return -1;
		}
	}
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		*err = xasprintf("%s: cannot open it to migrate it: %s", path, strerror(errno));
		return -1;
	}
	struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fcntl(fd, F_SETLK, &lk) < 0) {
		*err = xasprintf("%s: cannot lock it to migrate it (%s): will try again", path, strerror(errno));
		close(fd);
		return -1;
	}
	struct stat st;
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (slash)
		*slash = '\0';
	char *tmp = slash ? xasprintf("%s/.%s.%ld.%u.tmp", dir, base, (long)getpid(), s->tmp_seq++)
			  : xasprintf(".%s.%ld.%u.tmp", base, (long)getpid(), s->tmp_seq++);
	char *added[N_ADDED];
	added_ds_args(l->heartbeat_s, added);
	int rc = -1, tfd = -1;
	bool made = false;
	if (fstat(fd, &st) < 0) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		goto out;
	}
	rrd_clear_error();
	time_t last_before = rrd_last_r(path);
	if (last_before <= 0) {
		*err = rrd_message(path, "cannot read its last update (not migrated)");
		goto out;
	}
	tfd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (tfd < 0) {
		*err = xasprintf("%s: cannot migrate it: %s: %s", path, tmp, strerror(errno));
		goto out;
	}
	made = true;
	if (copy_fd(fd, tfd) < 0 || fsync(tfd) < 0 || close(tfd) < 0) {
		tfd = -1;
		*err = xasprintf("%s: cannot migrate it: copy to %s: %s", path, tmp, strerror(errno));
		goto out;
	}
	tfd = -1;
	/* rrd_tune(argc, argv) as `rrdtool tune FILE DS:...`: argv[0] is the command. */
	char *argv[2 + N_ADDED + 1];
	argv[0] = (char *)"tune";
	argv[1] = tmp;
	for (size_t i = 0; i < N_ADDED; i++)
		argv[2 + i] = added[i];
	argv[2 + N_ADDED] = NULL;
	rrd_clear_error();
	if (rrd_tune(2 + N_ADDED, argv) != 0) {
		*err = rrd_message(path, "cannot migrate it: rrd_tune");
		goto out;
	}
	rrd_clear_error();
	rrd_info_t *info = rrd_info_r(tmp);
	if (!info) {
		*err = rrd_message(path, "cannot migrate it: the migrated copy cannot be read");
		goto out;
	}
	struct seen *sn = xmalloc(sizeof *sn);
	seen_collect(info, sn);
	rrd_info_free(info);
	char *diff = layout_diff(sn, l, STORE_RRD_DS__COUNT);
	free(sn);
	rrd_clear_error();
	time_t last_after = rrd_last_r(tmp);
	if (diff || last_after != last_before) {
		*err = xasprintf("%s: cannot migrate it: the migrated copy %s", path,
				 diff ? diff : "has another last update");
		free(diff);
		goto out;
	}
	if (chmod(tmp, st.st_mode & 07777) < 0 || (geteuid() == 0 && chown(tmp, st.st_uid, st.st_gid) < 0) ||
	    fsync_path(tmp) < 0) {
		*err = xasprintf("%s: cannot migrate it: %s: %s", path, tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, path) < 0) {
		*err = xasprintf("%s: cannot migrate it: rename from %s: %s", path, tmp, strerror(errno));
		goto out;
	}
	made = false;
	if (slash)
		fsync_path(*dir ? dir : "/");
	rc = 0;
out:
	if (tfd >= 0)
		close(tfd);
	if (made)
		unlink(tmp);
	close(fd); /* releases the lock */
	for (size_t i = 0; i < N_ADDED; i++)
		free(added[i]);
	free(tmp);
	free(dir);
	return rc;
}

/* Checks path against l; f (NULL for store_rrd_check) is the store's entry of the file: a file of
 * the layout before missing and junk is migrated (local) or updated in that layout (remote). */
static int check_file(struct store_rrd *s, struct rrd_file *f, const char *path, const struct store_rrd_layout *l,
		      char **err)
{
	rrd_info_t *info = file_info(s, path, err);
	if (!info)
		return -1;
	struct seen *sn = xmalloc(sizeof *sn);
	seen_collect(info, sn);
	rrd_info_free(info);
	char *diff = layout_diff(sn, l, STORE_RRD_DS__COUNT);
	char *legacy = diff ? layout_diff(sn, l, STORE_RRD_DS_LEGACY_COUNT) : NULL;
	bool is_legacy = diff && !legacy;
	free(sn);
	free(legacy);
	if (f)
		f->legacy = false;
	if (!diff)
		return 0;
	if (is_legacy && !f) {
		*err = xasprintf("%s: the file has the layout before the data sources missing and junk (an update "
				 "migrates it)", path);
		free(diff);
		return -1;
	}
	if (is_legacy && s->remote) {
		f->legacy = true;
		if (!f->legacy_warned) {
			log_warnx("event=rrd status=legacy file=%s daemon=%s: the file has no data sources missing and "
				  "junk and cannot be migrated through rrdcached: updated without them. To add them, "
				  "on the daemon's host: rrdtool flushcached --daemon %s %s && rrdtool tune "
				  "BASE/%s DS:missing:GAUGE:%" PRId64 ":0:1 DS:junk:GAUGE:%" PRId64 ":0:1",
				  path, s->daemon, s->daemon, path, path, l->heartbeat_s, l->heartbeat_s);
			f->legacy_warned = true;
		}
		free(diff);
		return 0;
	}
	if (is_legacy) {
		free(diff);
		if (migrate_file(s, path, l, err) < 0)
			return -1;
		log_info("event=rrd status=migrated file=%s added=\"missing junk\"", path);
		return 0;
	}
	*err = xasprintf("%s: not updated: the file has another layout: %s. It is left as it is: move it away "
			 "to start a new file", path, diff);
	free(diff);
	return -1;
}

int store_rrd_check(struct store_rrd *s, const char *seed, const struct store_rrd_layout *layout, char **err)
{
	if (rrd_dl_load(err) < 0)
		return -1;
	char *path = store_rrd_path(s, seed);
	int rc = check_file(s, NULL, path, layout, err);
	free(path);
	return rc;
}

/* ---- creation ---- */

/* The create arguments of a layout ("DS:...", "RRA:..."); returns the count. */
static int create_args(const struct store_rrd_layout *l, char **argv)
{
	int n = 0;
	for (size_t i = 0; i < STORE_RRD_DS__COUNT; i++)
		argv[n++] = xasprintf("DS:%s:GAUGE:%" PRId64 ":%s:%s", ds_def[i].name, l->heartbeat_s, ds_def[i].min,
				      ds_def[i].max);
	struct rra r[MAX_RRAS];
	int64_t season;
	size_t nr = layout_rras(l, r, &season);
	for (size_t i = 0; i < nr; i++) {
		if (strcmp(r[i].cf, "HWPREDICT") == 0) {
			argv[n++] = xasprintf("RRA:HWPREDICT:%" PRId64 ":" HW_ALPHA ":" HW_BETA ":%" PRId64, r[i].rows,
					      season);
			break; /* the rest of the set comes with it */
		}
		argv[n++] = xasprintf("RRA:%s:0.5:%" PRId64 ":%" PRId64, r[i].cf, r[i].ppr, r[i].rows);
	}
	return n;
}

#define MAX_ARGS (STORE_RRD_DS__COUNT + MAX_RRAS)

/* Creates path (missing) with last update start_s. Local: a temporary file in the same
 * directory, linked to path (link() never replaces a file), then unlinked. *exists: another
 * process created it first. */
static int create_file(struct store_rrd *s, const char *path, const struct store_rrd_layout *l, int64_t start_s,
		       bool *exists, char **err)
{
	char *argv[MAX_ARGS];
	int argc = create_args(l, argv);
	int rc = 0;
	*exists = false;
	if (s->remote) {
		if (daemon_connect(s, path, err) < 0) {
			rc = -1;
		} else {
			sigset_t old;
			pipe_block(&old);
			rrd_clear_error();
			int st = rrdc_create(path, (unsigned long)l->step_s, (time_t)start_s, 1, argc, (const char **)argv);
			pipe_restore(&old);
			if (st != 0) {
				*err = daemon_failed(s, path, "CREATE", st);
				rc = -1;
			}
		}
		goto out;
	}
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir_p(dir, 0755) < 0) {
			*err = xasprintf("%s: cannot create directory %s: %s", path, dir, strerror(errno));
			free(dir);
			rc = -1;
			goto out;
		}
	}
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char *tmp = slash && slash != dir ? xasprintf("%s/.%s.%ld.%u.tmp", dir, base, (long)getpid(), s->tmp_seq++)
					  : xasprintf(".%s.%ld.%u.tmp", base, (long)getpid(), s->tmp_seq++);
	free(dir);
	rrd_clear_error();
	if (rrd_create_r2(tmp, (unsigned long)l->step_s, (time_t)start_s, 1, NULL, NULL, argc, (const char **)argv) != 0) {
		*err = rrd_message(path, "cannot create it");
		unlink(tmp);
		rc = -1;
	} else if (link(tmp, path) < 0) {
		if (errno == EEXIST) {
			*exists = true;
		} else {
			*err = xasprintf("%s: cannot create it: link from %s: %s", path, tmp, strerror(errno));
			rc = -1;
		}
		unlink(tmp);
	} else {
		unlink(tmp);
	}
	free(tmp);
out:
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return rc;
}

/* Makes sure the file exists with layout: created (start start_s) or checked. */
static int ensure_file(struct store_rrd *s, struct rrd_file *f, const struct store_rrd_layout *l, int64_t start_s,
		       char **err)
{
	bool exists = false;
	if (!s->remote) {
		struct stat st;
		if (stat(f->path, &st) == 0)
			exists = true;
		else if (errno != ENOENT) {
			*err = xasprintf("%s: %s", f->path, strerror(errno));
			return -1;
		}
	} else {
		/* Remote: ask for it; a failure may just mean it is missing. */
		char *e = NULL;
		rrd_info_t *info = file_info(s, f->path, &e);
		if (info) {
			rrd_info_free(info);
			exists = true;
		}
		free(e);
	}
	if (!exists) {
		if (create_file(s, f->path, l, start_s, &exists, err) < 0)
			return -1;
		if (!exists) {
			log_info("event=rrd status=created file=%s step=%" PRId64 " heartbeat=%" PRId64, f->path, l->step_s,
				 l->heartbeat_s);
			f->last_s = start_s;
			return 0;
		}
	}
	return check_file(s, f, f->path, l, err);
}

/* ---- updates ---- */

/* The file's last update (from the daemon when there is one: it knows what it holds). */
static int read_last(struct store_rrd *s, const char *path, int64_t *out, char **err)
{
	time_t t;
	rrd_clear_error();
	if (s->daemon) {
		if (daemon_connect(s, path, err) < 0)
			return -1;
		sigset_t old;
		pipe_block(&old);
		t = rrdc_last(path);
		pipe_restore(&old);
		if (t <= 0) {
			*err = daemon_failed(s, path, "LAST", -1);
			return -1;
		}
	} else {
		t = rrd_last_r(path);
		if (t <= 0) {
			*err = rrd_message(path, "cannot read its last update");
			return -1;
		}
	}
	*out = (int64_t)t;
	return 0;
}

static char *format_update(int64_t t, const struct store_rrd_sample *v, size_t n_ds)
{
	struct strbuf sb;
	sb_init(&sb);
	sb_appendf(&sb, "%" PRId64, t);
	for (size_t i = 0; i < n_ds; i++) {
		if (isnan(v->v[i]) || isinf(v->v[i]))
			sb_append(&sb, ":U");
		else
			sb_appendf(&sb, ":%.17g", v->v[i]);
	}
	char *out = sb_steal(&sb);
	sb_fini(&sb);
	return out;
}

static int write_update(struct store_rrd *s, const char *path, int64_t t, const struct store_rrd_sample *v,
			size_t n_ds, char **err)
{
	char *val = format_update(t, v, n_ds);
	const char *argv[1] = { val };
	int rc = 0;
	rrd_clear_error();
	if (s->daemon) {
		if (daemon_connect(s, path, err) < 0) {
			free(val);
			return -1;
		}
		sigset_t old;
		pipe_block(&old);
		int st = rrdc_update(path, 1, argv);
		pipe_restore(&old);
		if (st != 0) {
			*err = daemon_failed(s, path, "UPDATE", st);
			rc = -1;
		}
	} else if (rrd_update_r(path, NULL, 1, argv) != 0) {
		*err = rrd_message(path, NULL);
		rc = -1;
	}
	free(val);
	return rc;
}

static int64_t aligned(const struct store_rrd_layout *l, int64_t t)
{
	if (!l->align || l->step_s <= 0)
		return t;
	int64_t r = t % l->step_s;
	return r == 0 ? t : t - r + l->step_s;
}

static bool layout_eq(const struct store_rrd_layout *a, const struct store_rrd_layout *b)
{
	return a->step_s == b->step_s && a->heartbeat_s == b->heartbeat_s && a->align == b->align;
}

static int do_update(struct store_rrd *s, struct rrd_file *f, const struct store_rrd_layout *l, int64_t t_s,
		     const struct store_rrd_sample *v, int64_t *written, char **err)
{
	int64_t t = aligned(l, t_s);
	if (!f->checked || !layout_eq(&f->layout, l)) {
		f->checked = false;
		f->last_s = 0;
		if (ensure_file(s, f, l, t - l->step_s, err) < 0)
			return -1;
		f->checked = true;
		f->layout = *l;
	}
	if (f->last_s <= 0 && read_last(s, f->path, &f->last_s, err) < 0)
		return -1;
	if (t <= f->last_s)
		t = f->last_s + 1;
	int64_t prev = f->last_s;
	if (write_update(s, f->path, t, v, f->legacy ? STORE_RRD_DS_LEGACY_COUNT : STORE_RRD_DS__COUNT, err) < 0) {
		/* Someone else (another mailcanary process) may have written meanwhile: once more
		 * after its last update. */
		int64_t last;
		char *e2 = NULL;
		if (read_last(s, f->path, &last, &e2) < 0 || last < t) {
			free(e2);
			return -1;
		}
		free(*err);
		*err = NULL;
		t = last + 1;
		prev = last;
		if (write_update(s, f->path, t, v, f->legacy ? STORE_RRD_DS_LEGACY_COUNT : STORE_RRD_DS__COUNT, err) < 0)
			return -1;
	}
	f->prev_s = prev;
	f->last_s = t;
	if (written)
		*written = t;
	return 0;
}

static void complain(struct store_rrd *s, struct rrd_file *f, const char *msg)
{
	int64_t now = s->now_ms();
	f->failures++;
	if (f->failing && now < f->quiet_until_ms) {
		f->suppressed++;
		return;
	}
	if (f->suppressed)
		log_warnx("event=rrd status=failed file=%s error=\"%s\" (%u similar failures not logged)", f->path, msg,
			  f->suppressed);
	else
		log_warnx("event=rrd status=failed file=%s error=\"%s\"", f->path, msg);
	f->failing = true;
	f->suppressed = 0;
	f->quiet_until_ms = now + s->complain_ms;
}

int store_rrd_update(struct store_rrd *s, const char *seed, const struct store_rrd_layout *layout, int64_t t_s,
		     const struct store_rrd_sample *v, int64_t *written_s, char **err)
{
	struct rrd_file *f = file_get(s, seed);
	char *e = NULL;
	if (rrd_dl_load(&e) < 0 || do_update(s, f, layout, t_s, v, written_s, &e) < 0) {
		if (!e)
			e = xasprintf("%s: update failed", f->path);
		complain(s, f, e);
		f->checked = false; /* look again next time: the file may have been fixed or removed */
		f->last_s = 0;
		if (err)
			*err = e;
		else
			free(e);
		return -1;
	}
	if (f->failing) {
		log_info("event=rrd status=recovered file=%s failures=%u", f->path, f->failures);
		f->failing = false;
		f->failures = 0;
		f->suppressed = 0;
	}
	return 0;
}

int store_rrd_flush(struct store_rrd *s, const char *seed, char **err)
{
	return store_rrd_flush_v(s, s->vantage, seed, err);
}

int store_rrd_flush_v(struct store_rrd *s, const char *vantage, const char *seed, char **err)
{
	if (!s->daemon)
		return 0;
	if (rrd_dl_load(err) < 0)
		return -1;
	char *path = store_rrd_path_v(s, vantage, seed);
	int rc = 0;
	if (daemon_connect(s, path, err) < 0) {
		rc = -1;
	} else {
		sigset_t old;
		pipe_block(&old);
		rrd_clear_error();
		int st = rrdc_flush(path);
		pipe_restore(&old);
		if (st != 0) {
			*err = daemon_failed(s, path, "FLUSH", st);
			rc = -1;
		}
	}
	free(path);
	return rc;
}

/* ---- Holt-Winters aberrations ---- */

bool store_rrd_layout_has_hw(const struct store_rrd_layout *layout)
{
	struct rra r[MAX_RRAS];
	int64_t season;
	layout_rras(layout, r, &season);
	return season > 0;
}

/* One fetch of path's archive cf over (*start, *end], through the daemon (whose FETCH writes what
 * it holds for the file first) or directly. Returns 0, or -1 with *err. */
static int fetch_cf(struct store_rrd *s, const char *path, const char *cf, time_t *start, time_t *end,
		    unsigned long *fstep, unsigned long *ds_cnt, char ***names, rrd_value_t **data, char **err)
{
	if (rrd_dl_load(err) < 0)
		return -1;
	rrd_clear_error();
	if (s->daemon) {
		if (daemon_connect(s, path, err) < 0)
			return -1;
		sigset_t old;
		pipe_block(&old);
		int st = rrdc_fetch(path, cf, start, end, fstep, ds_cnt, names, data);
		pipe_restore(&old);
		if (st != 0) {
			char *what = xasprintf("FETCH %s", cf);
			*err = daemon_failed(s, path, what, st);
			free(what);
			return -1;
		}
		return 0;
	}
	if (rrd_fetch_r(path, cf, start, end, fstep, ds_cnt, names, data) != 0) {
		char *what = xasprintf("cannot fetch its %s archive", cf);
		*err = rrd_message(path, what);
		free(what);
		return -1;
	}
	return 0;
}

static void fetched_free(unsigned long ds_cnt, char **names, rrd_value_t *data)
{
	for (unsigned long d = 0; d < ds_cnt; d++)
		rrd_freemem(names[d]);
	rrd_freemem(names);
	rrd_freemem(data);
}

/* The data source index of a name in the file, or -1. */
static int ds_index(const char *name)
{
	for (size_t k = 0; k < STORE_RRD_DS__COUNT; k++)
		if (strcmp(name, ds_def[k].name) == 0)
			return (int)k;
	return -1;
}

int store_rrd_hw_failures(struct store_rrd *s, const char *seed, const struct store_rrd_layout *layout,
			  unsigned *mask, int64_t *row_s, char **err)
{
	*mask = 0;
	*row_s = 0;
	char *path = store_rrd_path(s, seed);
	struct rrd_file *f = strmap_get(&s->files, path);
	int64_t step = layout->step_s;
	/* Only after an update by this store, only with the archives, only a row that update
	 * completed (a row is consolidated by the first update at or after its end). */
	if (!f || !f->checked || f->last_s <= 0 || step <= 0 || !store_rrd_layout_has_hw(layout)) {
		free(path);
		return 0;
	}
	int64_t row = f->last_s - f->last_s % step;
	if (row <= f->prev_s) {
		free(path);
		return 0;
	}
	time_t start = (time_t)(row - step), end = (time_t)row;
	unsigned long fstep = 0, ds_cnt = 0;
	char **names = NULL;
	rrd_value_t *data = NULL;
	if (fetch_cf(s, path, "FAILURES", &start, &end, &fstep, &ds_cnt, &names, &data, err) < 0) {
		free(path);
		return -1;
	}
	int rc = -1;
	if (fstep == 0 || end < start) {
		*err = xasprintf("%s: FAILURES archive: no rows for %" PRId64, path, row);
		goto out;
	}
	unsigned long rows = (unsigned long)(end - start) / fstep;
	for (unsigned long i = 0; i < rows; i++) {
		if ((int64_t)start + (int64_t)(i + 1) * (int64_t)fstep != row)
			continue;
		for (unsigned long d = 0; d < ds_cnt; d++) {
			double v = data[i * ds_cnt + d];
			int k = ds_index(names[d]);
			if (!isnan(v) && v >= 0.5 && k >= 0)
				*mask |= 1u << k;
		}
		*row_s = row;
		rc = 0;
	}
	if (rc < 0)
		*err = xasprintf("%s: FAILURES archive has no row for %" PRId64, path, row);
out:
	fetched_free(ds_cnt, names, data);
	free(path);
	return rc;
}

int store_rrd_hw_window_unknown(struct store_rrd *s, const char *seed, const struct store_rrd_layout *layout,
				int64_t row_s, unsigned *unknown_mask, char **err)
{
	*unknown_mask = 0;
	int64_t step = layout->step_s;
	if (step <= 0 || row_s <= 0)
		return 0;
	char *path = store_rrd_path(s, seed);
	time_t start = (time_t)(row_s - STORE_RRD_HW_WINDOW * step), end = (time_t)row_s;
	unsigned long fstep = 0, ds_cnt = 0;
	char **names = NULL;
	rrd_value_t *data = NULL;
	if (fetch_cf(s, path, "AVERAGE", &start, &end, &fstep, &ds_cnt, &names, &data, err) < 0) {
		free(path);
		return -1;
	}
	int rc = 0;
	if (fstep != (unsigned long)step || end < start) {
		*err = xasprintf("%s: no AVERAGE rows of one step (%" PRId64 " s) before %" PRId64, path, step, row_s);
		rc = -1;
	} else {
		/* the rows ending in (row_s - WINDOW steps, row_s]: the window's values */
		unsigned long rows = (unsigned long)(end - start) / fstep, seen = 0;
		for (unsigned long i = 0; i < rows; i++) {
			int64_t t = (int64_t)start + (int64_t)(i + 1) * (int64_t)fstep;
			if (t <= row_s - STORE_RRD_HW_WINDOW * step || t > row_s)
				continue;
			seen++;
			for (unsigned long d = 0; d < ds_cnt; d++) {
				int k = ds_index(names[d]);
				if (k >= 0 && isnan(data[i * ds_cnt + d]))
					*unknown_mask |= 1u << k;
			}
		}
		if (seen < STORE_RRD_HW_WINDOW) /* rows before the file began: unknown too */
			*unknown_mask = (1u << STORE_RRD_DS__COUNT) - 1;
	}
	fetched_free(ds_cnt, names, data);
	free(path);
	return rc;
}
