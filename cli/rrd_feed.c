/* Finished probes to RRD samples (see rrd_feed.h). Every sample comes from the final JSON result
 * line, the same text the detail log and `probe --json` show, so that the RRD holds exactly what
 * the result reported, also for readbacks resumed from the journal, where only that line is
 * left of the probe. */
#include "rrd_feed.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alert_rules.h"
#include "clock.h"
#include "conf.h"
#include "evloop.h"
#include "log.h"
#include "strbuf.h"
#include "strmap.h"
#include "xalloc.h"

/* A submitted line, from rrd_feed_submit() until its done. */
struct feed_job {
	struct feed_job *next;
	struct rrd_feed *f;
	struct evpost post; /* fired by the writer once the line is written */
	char *json;
	bool want_hw;
	struct rrd_feed_hw hw;
};

struct rrd_feed {
	/* Everything down to hw_complained is the writer's while it writes a line (work_lock). */
	const struct mon_conf *conf; /* borrowed */
	struct store_rrd *store;
	char *dir, *daemon, *vantage; /* what the store was made with */
	struct strmap layouts;        /* seed name -> struct store_rrd_layout * (owned) */
	bool hw_complained;           /* a FAILURES fetch failed and was logged as a warning */

	/* the writer thread (rrd_feed_attach) */
	struct evloop *loop;          /* NULL: not attached, lines are written at once */
	rrd_feed_done_cb *done;
	void *done_arg;
	pthread_mutex_t work_lock;    /* held by the writer while it writes one line */
	pthread_mutex_t lock;         /* the queue below */
	pthread_cond_t cond;          /* a line was queued, or stop */
	struct feed_job *head, *tail; /* submitted, not yet reported, in order */
	struct feed_job *todo;        /* the first line not written yet (within head..tail), or NULL */
	bool running, stop;
	pthread_t thread;
};

static bool str_same(const char *a, const char *b)
{
	return (!a || !*a) ? (!b || !*b) : (b && strcmp(a, b) == 0);
}

static void layouts_clear(struct rrd_feed *f)
{
	for (size_t i = 0; i < f->layouts.cap; i++)
		if (f->layouts.slots[i].key)
			free(f->layouts.slots[i].value);
	strmap_fini(&f->layouts);
	strmap_init(&f->layouts, false);
}

static void store_close(struct rrd_feed *f)
{
	store_rrd_free(f->store);
	f->store = NULL;
	free(f->dir);
	free(f->daemon);
	free(f->vantage);
	f->dir = f->daemon = f->vantage = NULL;
}

static void set_conf_locked(struct rrd_feed *f, const struct mon_conf *conf)
{
	f->conf = conf;
	layouts_clear(f);
	if (f->store && str_same(f->dir, conf->rrd_dir) && str_same(f->daemon, conf->rrdcached) &&
	    str_same(f->vantage, conf->vantage))
		return;
	store_close(f);
	struct store_rrd_params p = { .dir = conf->rrd_dir, .daemon = conf->rrdcached, .vantage = conf->vantage };
	f->store = store_rrd_new(&p);
	f->dir = conf->rrd_dir ? xstrdup(conf->rrd_dir) : NULL;
	f->daemon = conf->rrdcached ? xstrdup(conf->rrdcached) : NULL;
	f->vantage = conf->vantage ? xstrdup(conf->vantage) : NULL;
}

void rrd_feed_set_conf(struct rrd_feed *f, const struct mon_conf *conf)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->work_lock);
	set_conf_locked(f, conf);
	pthread_mutex_unlock(&f->work_lock);
}

struct rrd_feed *rrd_feed_new(const struct mon_conf *conf)
{
	if (!conf->rrd)
		return NULL; /* rrd = false: every rrd_feed_* call does nothing */
	struct rrd_feed *f = xcalloc(1, sizeof *f);
	strmap_init(&f->layouts, false);
	pthread_mutex_init(&f->work_lock, NULL);
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	set_conf_locked(f, conf);
	return f;
}

void rrd_feed_free(struct rrd_feed *f)
{
	if (!f)
		return;
	rrd_feed_drain(f);
	pthread_mutex_destroy(&f->work_lock);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	layouts_clear(f);
	strmap_fini(&f->layouts);
	store_close(f);
	free(f);
}

/* The seed's layout from its schedule in the current configuration; NULL when the seed is gone. */
static const struct store_rrd_layout *layout_for(struct rrd_feed *f, const char *seed)
{
	struct store_rrd_layout *l = strmap_get(&f->layouts, seed);
	if (l)
		return l;
	const struct conf_seed *cs = conf_seed_find(f->conf, seed);
	if (!cs)
		return NULL;
	char *err = NULL;
	l = xmalloc(sizeof *l);
	if (store_rrd_layout_for_schedule(cs->schedule ? cs->schedule : "hourly", l, &err) < 0) {
		log_warnx("event=rrd status=failed seed=%s error=\"schedule: %s\"", seed, err);
		free(err);
		free(l);
		return NULL;
	}
	strmap_put(&f->layouts, seed, l);
	return l;
}

static bool json_true(const char *json, const char *key);
static const char *member(const char *p, const char *key);

unsigned rrd_feed_aberrations(unsigned ds_mask, const struct store_rrd_sample *s)
{
	unsigned out = 0;
	if ((ds_mask & (1u << STORE_RRD_DELIVERY)) && !isnan(s->v[STORE_RRD_DELIVERY]))
		out |= ALERT_ABERRATION_DELIVERY;
	if ((ds_mask & (1u << STORE_RRD_TOTAL)) && !isnan(s->v[STORE_RRD_TOTAL]))
		out |= ALERT_ABERRATION_TOTAL;
	return out;
}

/* After seed's update: its FAILURES row, when the file has one (at most one fetch). */
static void check_hw(struct rrd_feed *f, const char *seed, const struct store_rrd_layout *l,
		     const struct store_rrd_sample *s, struct rrd_feed_hw *hw)
{
	unsigned mask = 0;
	int64_t row = 0;
	char *err = NULL;
	if (!store_rrd_layout_has_hw(l))
		return;
	if (store_rrd_hw_failures(f->store, seed, l, &mask, &row, &err) < 0) {
		if (!f->hw_complained)
			log_warnx("event=rrd status=failed seed=%s error=\"Holt-Winters check: %s\" (further failures "
				  "of the check are logged with -vv only)", seed, err);
		else
			log_debug("event=rrd status=failed seed=%s error=\"Holt-Winters check: %s\"", seed, err);
		f->hw_complained = true;
		free(err);
		return;
	}
	if (!row)
		return;
	hw->checked = true;
	hw->row_s = row;
	unsigned counted = rrd_feed_aberrations(mask, s);
	if (counted) {
		/* librrd's flags also count unknown values: a window with one (downtime, the
		 * file's first steps) is not the server's doing */
		unsigned unknown = 0;
		if (store_rrd_hw_window_unknown(f->store, seed, l, row, &unknown, &err) < 0) {
			log_debug("event=rrd status=failed seed=%s error=\"Holt-Winters window: %s\"", seed, err);
			free(err);
			err = NULL;
			unknown = mask; /* cannot tell: not counted */
		}
		if (mask & unknown)
			log_debug("event=rrd status=aberration-ignored seed=%s row=%" PRId64 " ds_mask=%#x unknown_mask=%#x "
				  "reason=\"unknown values in the window\"", seed, row, mask, unknown);
		mask &= ~unknown;
		counted = rrd_feed_aberrations(mask, s);
	}
	hw->aberrations = counted;
	if (mask)
		log_debug("event=rrd status=aberration seed=%s row=%" PRId64 " ds_mask=%#x counted=\"%s\"", seed, row,
			  mask, alert_aberration_names(hw->aberrations));
}

void rrd_feed_json(struct rrd_feed *f, const char *json, struct rrd_feed_hw *hw)
{
	struct store_rrd_sample s;
	char seed[128];
	int64_t sent_ms = 0;
	if (hw)
		memset(hw, 0, sizeof *hw);
	/* One update per probe: a late arrival after "missing" (readback.late) was written then. */
	if (!f || json_true(member(json, "readback"), "late"))
		return;
	if (rrd_sample_from_json(json, &s, seed, sizeof seed, &sent_ms) < 0) {
		log_warnx("event=rrd status=failed error=\"not a probe result: %.60s\"", json);
		return;
	}
	const struct store_rrd_layout *l = layout_for(f, seed);
	if (!l) {
		log_info("event=rrd status=skipped seed=%s reason=\"not in the configuration\"", seed);
		return;
	}
	int64_t at = 0;
	if (store_rrd_update(f->store, seed, l, sent_ms / 1000, &s, &at, NULL) < 0)
		return;
	log_debug("event=rrd status=updated seed=%s at=%" PRId64, seed, at);
	if (hw && f->conf->alert_aberrations)
		check_hw(f, seed, l, &s, hw);
}

/* ---- the writer thread ---- */

static void *writer_main(void *arg)
{
	struct rrd_feed *f = arg;
	pthread_mutex_lock(&f->lock);
	for (;;) {
		while (!f->todo && !f->stop)
			pthread_cond_wait(&f->cond, &f->lock);
		struct feed_job *j = f->todo;
		if (!j)
			break; /* stop, and every line written */
		f->todo = j->next;
		pthread_mutex_unlock(&f->lock);
		pthread_mutex_lock(&f->work_lock);
		rrd_feed_json(f, j->json, j->want_hw ? &j->hw : NULL);
		pthread_mutex_unlock(&f->work_lock);
		pthread_mutex_lock(&f->lock);
		evpost_fire(&j->post);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

static void job_free(struct feed_job *j)
{
	free(j->json);
	free(j);
}

/* Takes j, the oldest line, off the queue, and reports it. */
static void job_report(struct rrd_feed *f, struct feed_job *j)
{
	pthread_mutex_lock(&f->lock);
	f->head = j->next;
	if (!f->head)
		f->tail = NULL;
	pthread_mutex_unlock(&f->lock);
	if (f->done)
		f->done(f->done_arg, j->json, &j->hw);
	job_free(j);
}

static void on_job_done(void *arg)
{
	struct feed_job *j = arg;
	job_report(j->f, j); /* posts come in firing order, which is the queue's */
}

void rrd_feed_attach(struct rrd_feed *f, struct evloop *loop, rrd_feed_done_cb *done, void *arg)
{
	if (!f)
		return;
	f->loop = loop;
	f->done = done;
	f->done_arg = arg;
}

void rrd_feed_submit(struct rrd_feed *f, const char *json, bool want_hw)
{
	if (!f)
		return;
	if (!f->loop) {
		struct rrd_feed_hw hw;
		rrd_feed_json(f, json, want_hw ? &hw : NULL);
		if (!want_hw)
			memset(&hw, 0, sizeof hw);
		if (f->done)
			f->done(f->done_arg, json, &hw);
		return;
	}
	struct feed_job *j = xcalloc(1, sizeof *j);
	j->f = f;
	j->json = xstrdup(json);
	j->want_hw = want_hw;
	evpost_arm(f->loop, &j->post, on_job_done, j);
	pthread_mutex_lock(&f->lock);
	if (f->tail)
		f->tail->next = j;
	else
		f->head = j;
	f->tail = j;
	if (!f->todo)
		f->todo = j;
	if (!f->running) {
		f->stop = false;
		int err = pthread_create(&f->thread, NULL, writer_main, f);
		f->running = err == 0;
		if (err) {
			/* No thread: the loop writes this line itself (the next submit tries again). */
			f->todo = NULL;
			pthread_mutex_unlock(&f->lock);
			log_warnx("event=rrd status=degraded error=\"no writer thread: %s\": RRD files are written "
				  "on the event loop", strerror(err));
			rrd_feed_json(f, j->json, want_hw ? &j->hw : NULL);
			evpost_fire(&j->post);
			return;
		}
	}
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

void rrd_feed_drain(struct rrd_feed *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	bool running = f->running;
	f->stop = true;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	if (running)
		pthread_join(f->thread, NULL); /* it ends once every line is written */
	f->running = false;
	/* What the loop has not delivered yet: reported here, in order, and withdrawn there. */
	for (struct feed_job *j; (j = f->head);) {
		evpost_disarm(&j->post);
		job_report(f, j);
	}
}

/* ---- reading values out of one JSON line ---- */

#define JSON_MAX_DEPTH 64

static const char *ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* p at '"': the position after the closing quote, or NULL. */
static const char *skip_string(const char *p)
{
	for (p++; *p; p++) {
		if (*p == '\\') {
			if (!p[1])
				return NULL;
			p++;
		} else if (*p == '"') {
			return p + 1;
		}
	}
	return NULL;
}

/* The position after the value at p, or NULL when it is not well formed. */
static const char *skip_value(const char *p, int depth)
{
	p = ws(p);
	if (depth > JSON_MAX_DEPTH)
		return NULL;
	if (*p == '"')
		return skip_string(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		p = ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				if (*p != '"' || !(p = skip_string(p)))
					return NULL;
				p = ws(p);
				if (*p != ':')
					return NULL;
				p++;
			}
			if (!(p = skip_value(p, depth + 1)))
				return NULL;
			p = ws(p);
			if (*p == ',') {
				p = ws(p + 1);
				continue;
			}
			return *p == close ? p + 1 : NULL;
		}
	}
	const char *start = p;
	while (*p && strchr("+-.0123456789eEtruefalsn", *p))
		p++;
	return p > start ? p : NULL;
}

/* The value of key in the object at p, or NULL. */
static const char *member(const char *p, const char *key)
{
	if (!p)
		return NULL;
	p = ws(p);
	if (*p != '{')
		return NULL;
	p = ws(p + 1);
	size_t klen = strlen(key);
	while (*p == '"') {
		const char *k = p + 1, *end = skip_string(p);
		if (!end)
			return NULL;
		bool match = (size_t)(end - 1 - k) == klen && memcmp(k, key, klen) == 0;
		p = ws(end);
		if (*p != ':')
			return NULL;
		p = ws(p + 1);
		if (match)
			return p;
		if (!(p = skip_value(p, 1)))
			return NULL;
		p = ws(p);
		if (*p != ',')
			break;
		p = ws(p + 1);
	}
	return NULL;
}

static bool get_num(const char *p, double *out)
{
	if (!p || !(*p == '-' || (*p >= '0' && *p <= '9')))
		return false;
	char *end;
	double v = strtod(p, &end);
	if (end == p || !isfinite(v))
		return false;
	*out = v;
	return true;
}

/* A string value into buf (escapes decoded; \u escapes as '?'); false when p is not a string. */
static bool get_str(const char *p, char *buf, size_t len)
{
	if (!p || *p != '"' || len == 0)
		return false;
	size_t n = 0;
	for (p++; *p && *p != '"'; p++) {
		char c = *p;
		if (c == '\\') {
			p++;
			switch (*p) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u':
				c = '?';
				for (int i = 0; i < 4 && p[1]; i++)
					p++;
				break;
			case '\0': return false;
			default: c = *p; break;
			}
		}
		if (n + 1 < len)
			buf[n++] = c;
	}
	if (*p != '"')
		return false;
	buf[n] = '\0';
	return true;
}

static bool get_bool(const char *p, bool *out)
{
	if (p && strncmp(p, "true", 4) == 0)
		*out = true;
	else if (p && strncmp(p, "false", 5) == 0)
		*out = false;
	else
		return false;
	return true;
}

/* The top-level member key is true. */
static bool json_true(const char *json, const char *key)
{
	bool v = false;
	return get_bool(member(json, key), &v) && v;
}

/* Elements of the array at p, or -1. */
static long array_len(const char *p)
{
	if (!p || *(p = ws(p)) != '[')
		return -1;
	p = ws(p + 1);
	if (*p == ']')
		return 0;
	for (long n = 1;; n++) {
		if (!(p = skip_value(p, 1)))
			return -1;
		p = ws(p);
		if (*p == ']')
			return n;
		if (*p != ',')
			return -1;
		p = ws(p + 1);
	}
}

/* "2026-11-28T06:12:00.123Z" (iso8601_ms's form; the fraction optional) to epoch ms. */
static bool parse_time(const char *s, int64_t *ms)
{
	int y, mo, d, h, mi, sec, n = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || h < 0 || mi < 0 || sec < 0)
		return false;
	int64_t frac = 0;
	const char *p = s + 19;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				frac = frac * 10 + (*p - '0');
		for (; digits < 3; digits++)
			frac *= 10;
	}
	if (*p != 'Z')
		return false;
	*ms = ((civil_to_days(y, mo, d) * 24 + h) * 60 + mi) * INT64_C(60000) + sec * INT64_C(1000) + frac;
	return true;
}

int rrd_sample_from_json(const char *json, struct store_rrd_sample *s, char *seed, size_t seed_len, int64_t *sent_ms)
{
	char buf[64];
	store_rrd_sample_init(s);
	if (!get_str(member(json, "seed"), seed, seed_len) || !*seed)
		return -1;
	if (!get_str(member(json, "sent_at"), buf, sizeof buf) || !parse_time(buf, sent_ms))
		return -1;
	const char *smtp = member(json, "smtp");
	if (!smtp || *smtp != '{')
		return -1;

	const char *ms = member(smtp, "ms");
	for (int ds = STORE_RRD_CONNECT; ds <= STORE_RRD_EOD; ds++)
		get_num(member(ms, store_rrd_ds_name((enum store_rrd_ds)ds)), &s->v[ds]);
	get_num(member(ms, "total"), &s->v[STORE_RRD_TOTAL]);

	if (get_str(member(smtp, "outcome"), buf, sizeof buf)) {
		s->v[STORE_RRD_ACCEPTED] = strcmp(buf, "accepted") == 0;
		s->v[STORE_RRD_DEFERRED] = strcmp(buf, "deferred") == 0;
		s->v[STORE_RRD_REJECTED] = strcmp(buf, "rejected") == 0;
		s->v[STORE_RRD_FAILED] = strcmp(buf, "failed") == 0;
	}
	long n = array_len(member(smtp, "attempts"));
	if (n > 0)
		s->v[STORE_RRD_ATTEMPTS] = (double)n;
	get_num(member(smtp, "accepted_after_s"), &s->v[STORE_RRD_ACCEPT_AFTER]);

	const char *rb = member(json, "readback");
	if (get_str(member(rb, "status"), buf, sizeof buf)) {
		if (strcmp(buf, "found") == 0) {
			char folder[256];
			bool junk = false;
			get_bool(member(rb, "junk"), &junk);
			if (get_str(member(rb, "folder"), folder, sizeof folder))
				s->v[STORE_RRD_INBOX] = !junk && strcasecmp(folder, "INBOX") == 0;
			s->v[STORE_RRD_JUNK] = junk;
			s->v[STORE_RRD_MISSING] = 0;
			get_num(member(rb, "delivery_s"), &s->v[STORE_RRD_DELIVERY]);
		} else if (strcmp(buf, "missing") == 0 || strcmp(buf, "bounced") == 0) {
			s->v[STORE_RRD_INBOX] = 0;
			s->v[STORE_RRD_JUNK] = 0;
			s->v[STORE_RRD_MISSING] = 1;
		}
	}
	return 0;
}
