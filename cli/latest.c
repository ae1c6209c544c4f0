/* The latest result per seed from the detail log (see latest.h). Each line is parsed into a
 * small JSON tree (objects, arrays, strings with \u escapes decoded to UTF-8, numbers, true,
 * false, null), read, and freed again; only each seed's latest values are kept. */
#include "latest.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "strbuf.h"
#include "strmap.h"
#include "xalloc.h"

/* ---- a small JSON tree ---- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
	enum jtype type;
	bool b;
	double num;
	char *str;           /* J_STR */
	size_t n;            /* J_ARR, J_OBJ: members */
	char **keys;         /* J_OBJ */
	struct jval *items;  /* J_ARR, J_OBJ */
};

#define J_MAX_DEPTH 64

struct jparser {
	const char *p;
};

static void jfree(struct jval *v)
{
	free(v->str);
	for (size_t i = 0; i < v->n; i++) {
		if (v->keys)
			free(v->keys[i]);
		jfree(&v->items[i]);
	}
	free(v->keys);
	free(v->items);
	memset(v, 0, sizeof *v);
}

static void jws(struct jparser *jp)
{
	while (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\r' || *jp->p == '\n')
		jp->p++;
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void utf8_put(struct strbuf *sb, unsigned cp)
{
	if (cp < 0x80) {
		sb_appendc(sb, (char)cp);
	} else if (cp < 0x800) {
		sb_appendc(sb, (char)(0xC0 | (cp >> 6)));
		sb_appendc(sb, (char)(0x80 | (cp & 0x3F)));
	} else if (cp < 0x10000) {
		sb_appendc(sb, (char)(0xE0 | (cp >> 12)));
		sb_appendc(sb, (char)(0x80 | ((cp >> 6) & 0x3F)));
		sb_appendc(sb, (char)(0x80 | (cp & 0x3F)));
	} else {
		sb_appendc(sb, (char)(0xF0 | (cp >> 18)));
		sb_appendc(sb, (char)(0x80 | ((cp >> 12) & 0x3F)));
		sb_appendc(sb, (char)(0x80 | ((cp >> 6) & 0x3F)));
		sb_appendc(sb, (char)(0x80 | (cp & 0x3F)));
	}
}

/* jp->p at '"'. Returns the decoded string (owned), or NULL. */
static char *jstring(struct jparser *jp)
{
	struct strbuf sb;
	sb_init(&sb);
	const char *p = jp->p + 1;
	for (;;) {
		unsigned char c = (unsigned char)*p;
		if (c == '"') {
			p++;
			break;
		}
		if (c == '\0' || c < 0x20)
			goto bad;
		if (c != '\\') {
			sb_appendc(&sb, (char)c);
			p++;
			continue;
		}
		p++;
		switch (*p) {
		case '"': sb_appendc(&sb, '"'); break;
		case '\\': sb_appendc(&sb, '\\'); break;
		case '/': sb_appendc(&sb, '/'); break;
		case 'b': sb_appendc(&sb, '\b'); break;
		case 'f': sb_appendc(&sb, '\f'); break;
		case 'n': sb_appendc(&sb, '\n'); break;
		case 'r': sb_appendc(&sb, '\r'); break;
		case 't': sb_appendc(&sb, '\t'); break;
		case 'u': {
			unsigned cp, lo;
			if (hex4(p + 1, &cp) < 0)
				goto bad;
			p += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF && p[1] == '\\' && p[2] == 'u' && hex4(p + 3, &lo) == 0 &&
			    lo >= 0xDC00 && lo <= 0xDFFF) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				p += 6;
			} else if (cp >= 0xD800 && cp <= 0xDFFF) {
				cp = 0xFFFD; /* a lone surrogate */
			}
			utf8_put(&sb, cp);
			break;
		}
		default: goto bad;
		}
		p++;
	}
	jp->p = p;
	char *s = sb_steal(&sb);
	sb_fini(&sb);
	return s;
bad:
	sb_fini(&sb);
	return NULL;
}

static int jparse(struct jparser *jp, struct jval *v, int depth);

/* An array or object; jp->p at its opening bracket. */
static int jcompound(struct jparser *jp, struct jval *v, int depth)
{
	bool obj = *jp->p == '{';
	char close = obj ? '}' : ']';
	size_t cap = 0;
	v->type = obj ? J_OBJ : J_ARR;
	jp->p++;
	jws(jp);
	if (*jp->p == close) {
		jp->p++;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		if (obj) {
			jws(jp);
			if (*jp->p != '"' || !(key = jstring(jp)))
				return -1;
			jws(jp);
			if (*jp->p != ':') {
				free(key);
				return -1;
			}
			jp->p++;
		}
		if (v->n == cap) {
			cap = cap ? cap * 2 : 8;
			v->items = xrealloc(v->items, cap * sizeof *v->items);
			if (obj)
				v->keys = xrealloc(v->keys, cap * sizeof *v->keys);
		}
		memset(&v->items[v->n], 0, sizeof v->items[v->n]);
		if (obj)
			v->keys[v->n] = key;
		v->n++;
		if (jparse(jp, &v->items[v->n - 1], depth + 1) < 0)
			return -1;
		jws(jp);
		if (*jp->p == ',') {
			jp->p++;
			continue;
		}
		if (*jp->p != close)
			return -1;
		jp->p++;
		return 0;
	}
}

static int jparse(struct jparser *jp, struct jval *v, int depth)
{
	jws(jp);
	if (depth > J_MAX_DEPTH)
		return -1;
	const char *p = jp->p;
	if (*p == '{' || *p == '[')
		return jcompound(jp, v, depth);
	if (*p == '"') {
		v->type = J_STR;
		v->str = jstring(jp);
		return v->str ? 0 : -1;
	}
	if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
		v->type = J_BOOL;
		v->b = *p == 't';
		jp->p += v->b ? 4 : 5;
		return 0;
	}
	if (strncmp(p, "null", 4) == 0) {
		v->type = J_NULL;
		jp->p += 4;
		return 0;
	}
	if (*p == '-' || (*p >= '0' && *p <= '9')) {
		char *end;
		v->type = J_NUM;
		v->num = strtod(p, &end);
		if (end == p)
			return -1;
		jp->p = end;
		return 0;
	}
	return -1;
}

/* Parses one line; -1 when it is not one JSON value. */
static int jparse_line(const char *line, struct jval *v)
{
	struct jparser jp = { line };
	memset(v, 0, sizeof *v);
	if (jparse(&jp, v, 0) < 0) {
		jfree(v);
		return -1;
	}
	jws(&jp);
	if (*jp.p) {
		jfree(v);
		return -1;
	}
	return 0;
}

static const struct jval *jget(const struct jval *o, const char *key)
{
	if (!o || o->type != J_OBJ)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->keys[i], key) == 0)
			return &o->items[i];
	return NULL;
}

static const char *jstr(const struct jval *o, const char *key)
{
	const struct jval *v = jget(o, key);
	return v && v->type == J_STR ? v->str : "";
}

static double jnum(const struct jval *o, const char *key)
{
	const struct jval *v = jget(o, key);
	return v && v->type == J_NUM ? v->num : NAN;
}

static bool jbool(const struct jval *o, const char *key)
{
	const struct jval *v = jget(o, key);
	return v && v->type == J_BOOL && v->b;
}

/* ---- results ---- */

static const char *const state_names[LATEST_STATE__COUNT] = {
	[LATEST_OK] = "ok",
	[LATEST_LATE] = "late",
	[LATEST_JUNK] = "junk",
	[LATEST_MISPLACED] = "misplaced",
	[LATEST_MISSING] = "missing",
	[LATEST_BOUNCED] = "bounced",
	[LATEST_RB_ERROR] = "readback error",
	[LATEST_DEFERRED] = "deferred",
	[LATEST_REJECTED] = "rejected",
	[LATEST_FAILED] = "failed",
	[LATEST_UNKNOWN] = "unknown",
};

const char *latest_state_name(enum latest_state s)
{
	return (unsigned)s < LATEST_STATE__COUNT ? state_names[s] : NULL;
}

bool latest_state_warn(enum latest_state s)
{
	return s == LATEST_LATE || s == LATEST_JUNK || s == LATEST_MISPLACED || s == LATEST_DEFERRED;
}

/* "2026-11-28T06:12:00.123Z" to Unix ms; 0 when it is not one. */
static int64_t parse_iso_ms(const char *s)
{
	int y, mo, d, h, mi, sec, n = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
		return 0;
	int64_t ms = 0;
	const char *p = s + 19;
	if (*p == '.') {
		int64_t scale = 100;
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			ms += (*p - '0') * scale;
	}
	return ((civil_to_days(y, mo, d) * 24 + h) * 60 + mi) * INT64_C(60000) + sec * INT64_C(1000) + ms;
}

static enum latest_state state_of(const struct jval *smtp, const struct jval *rb)
{
	const char *o = jstr(smtp, "outcome");
	if (strcmp(o, "deferred") == 0)
		return LATEST_DEFERRED;
	if (strcmp(o, "rejected") == 0)
		return LATEST_REJECTED;
	if (strcmp(o, "failed") == 0)
		return LATEST_FAILED;
	if (strcmp(o, "accepted") != 0)
		return LATEST_UNKNOWN;
	const char *st = jstr(rb, "status");
	if (strcmp(st, "found") == 0) {
		const char *placement = jstr(rb, "placement");
		bool placed = *placement ? strcmp(placement, "ok") == 0
					 : !jbool(rb, "junk") && strcasecmp(jstr(rb, "folder"), "INBOX") == 0;
		if (!placed)
			return jbool(rb, "junk") ? LATEST_JUNK : LATEST_MISPLACED;
		return jbool(rb, "late") ? LATEST_LATE : LATEST_OK;
	}
	if (strcmp(st, "missing") == 0)
		return LATEST_MISSING;
	if (strcmp(st, "bounced") == 0)
		return LATEST_BOUNCED;
	if (strcmp(st, "error") == 0)
		return LATEST_RB_ERROR;
	return LATEST_OK; /* skipped (no readback configured or --no-readback) */
}

static void set(char **dst, const char *s)
{
	free(*dst);
	*dst = xstrdup(s ? s : "");
}

static void result_fini(struct latest_result *r)
{
	free(r->seed);
	free(r->line);
	free(r->probe_id);
	free(r->vantage);
	free(r->outcome);
	free(r->stage);
	free(r->enhanced);
	free(r->text);
	free(r->error);
	free(r->mx);
	free(r->rb_status);
	free(r->folder);
	free(r->rb_error);
	free(r->cause);
	free(r->next_step);
	free(r->rule);
	free(r->pending_what);
}

struct loader {
	struct latest_results *out;
	struct strmap index; /* seed -> position + 1 in out->v */
	size_t cap;
};

static void result_init(struct latest_result *r, const char *seed);

static struct latest_result *entry(struct loader *L, const char *seed)
{
	uintptr_t pos = (uintptr_t)strmap_get(&L->index, seed);
	if (pos)
		return &L->out->v[pos - 1];
	if (L->out->n == L->cap) {
		L->cap = L->cap ? L->cap * 2 : 16;
		L->out->v = xrealloc(L->out->v, L->cap * sizeof *L->out->v);
	}
	struct latest_result *r = &L->out->v[L->out->n++];
	result_init(r, seed);
	strmap_put(&L->index, seed, (void *)(uintptr_t)L->out->n);
	return r;
}

static void result_init(struct latest_result *r, const char *seed)
{
	memset(r, 0, sizeof *r);
	r->seed = xstrdup(seed);
	r->accepted_after_s = r->total_ms = r->delivery_s = NAN;
	set(&r->line, "");
	set(&r->probe_id, "");
	set(&r->vantage, "");
	set(&r->outcome, "");
	set(&r->stage, "");
	set(&r->enhanced, "");
	set(&r->text, "");
	set(&r->error, "");
	set(&r->mx, "");
	set(&r->rb_status, "");
	set(&r->folder, "");
	set(&r->rb_error, "");
	set(&r->cause, "");
	set(&r->next_step, "");
	set(&r->rule, "");
	set(&r->pending_what, "");
}

static void take_final(struct latest_result *r, const char *line, const struct jval *v)
{
	const struct jval *smtp = jget(v, "smtp"), *rb = jget(v, "readback");
	const char *probe_id = jstr(v, "probe_id");
	enum latest_state st = state_of(smtp, rb);
	int64_t sent = parse_iso_ms(jstr(v, "sent_at"));
	/* A late arrival (readback.late) ends the same probe again: it replaces that result in the
	 * run instead of counting as one more probe. */
	bool same_probe = jbool(rb, "late") && *probe_id && strcmp(probe_id, r->probe_id) == 0;
	if (r->run && st == r->state) {
		if (!same_probe)
			r->run++;
	} else {
		r->run = 1;
		r->run_since_ms = sent;
	}
	r->state = st;
	if (st == LATEST_OK || st == LATEST_LATE)
		r->last_ok_ms = sent;
	r->sent_ms = sent;
	set(&r->line, line);
	set(&r->probe_id, probe_id);
	set(&r->vantage, jstr(v, "vantage"));
	set(&r->outcome, jstr(smtp, "outcome"));
	set(&r->stage, jstr(smtp, "stage"));
	double code = jnum(smtp, "code");
	r->code = isnan(code) ? 0 : (int)code;
	set(&r->enhanced, jstr(smtp, "enhanced"));
	set(&r->text, jstr(smtp, "text"));
	set(&r->error, jstr(smtp, "error"));
	set(&r->mx, jstr(smtp, "mx"));
	const struct jval *att = jget(smtp, "attempts");
	r->attempts = att && att->type == J_ARR ? (int)att->n : 0;
	r->accepted_after_s = jnum(smtp, "accepted_after_s");
	r->total_ms = jnum(jget(smtp, "ms"), "total");
	set(&r->rb_status, jstr(rb, "status"));
	set(&r->folder, jstr(rb, "folder"));
	r->junk = jbool(rb, "junk");
	r->delivery_s = jnum(rb, "delivery_s");
	set(&r->rb_error, jstr(rb, "error"));
	const struct jval *diag = jget(v, "diagnosis");
	set(&r->cause, jstr(diag, "cause"));
	set(&r->next_step, jstr(diag, "next_step"));
	set(&r->rule, jstr(diag, "rule"));
	r->pending = false;
	set(&r->pending_what, "");
}

static void take_pending(struct latest_result *r, const struct jval *v)
{
	const struct jval *smtp = jget(v, "smtp"), *rb = jget(v, "readback"), *retry = jget(v, "retry");
	const struct jval *att = jget(smtp, "attempts");
	struct strbuf sb;
	sb_init(&sb);
	sb_appendf(&sb, "attempt %zu %s", att && att->type == J_ARR ? att->n : (size_t)1, jstr(smtp, "outcome"));
	if (*jstr(smtp, "stage") && strcmp(jstr(smtp, "outcome"), "accepted") != 0)
		sb_appendf(&sb, " at %s", jstr(smtp, "stage"));
	if (retry)
		sb_appendf(&sb, ", retry at %s", jstr(retry, "at"));
	else if (strcmp(jstr(rb, "status"), "pending") == 0)
		sb_append(&sb, ", readback pending");
	r->pending = true;
	free(r->pending_what);
	r->pending_what = sb_steal(&sb);
	sb_fini(&sb);
}

static int load_file(struct loader *L, const char *path, char **err)
{
	FILE *fp = fopen(path, "r");
	if (!fp) {
		if (errno == ENOENT)
			return 0;
		*err = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, fp)) >= 0) {
		if (n > 0 && line[n - 1] != '\n') {
			L->out->partial_lines++; /* only the last line can lack it: one being written */
			continue;
		}
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		L->out->lines++;
		struct jval v;
		if (jparse_line(line, &v) < 0) {
			L->out->bad_lines++;
			continue;
		}
		const char *seed = jstr(&v, "seed");
		if (v.type != J_OBJ || !*seed || !jget(&v, "smtp")) {
			L->out->bad_lines++;
		} else if (jbool(&v, "final")) {
			take_final(entry(L, seed), line, &v);
		} else {
			take_pending(entry(L, seed), &v);
		}
		jfree(&v);
	}
	int rc = 0;
	if (ferror(fp)) {
		*err = xasprintf("%s: read error: %s", path, strerror(errno));
		rc = -1;
	}
	free(line);
	fclose(fp);
	return rc;
}

int latest_results_load(const char *state_dir, struct latest_results *out, char **err)
{
	struct loader L = { .out = out };
	memset(out, 0, sizeof *out);
	strmap_init(&L.index, false);
	char *older = xasprintf("%s/results.jsonl.1", state_dir);
	char *path = xasprintf("%s/results.jsonl", state_dir);
	int rc = load_file(&L, older, err);
	if (rc == 0)
		rc = load_file(&L, path, err);
	free(older);
	free(path);
	strmap_fini(&L.index);
	if (rc < 0)
		latest_results_fini(out);
	return rc;
}

void latest_results_fini(struct latest_results *r)
{
	for (size_t i = 0; i < r->n; i++)
		result_fini(&r->v[i]);
	free(r->v);
	memset(r, 0, sizeof *r);
}

const struct latest_result *latest_find(const struct latest_results *r, const char *seed)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i].seed, seed) == 0)
			return &r->v[i];
	return NULL;
}

int latest_result_parse(const char *line, struct latest_result *out)
{
	memset(out, 0, sizeof *out);
	struct jval v;
	if (jparse_line(line, &v) < 0)
		return -1;
	const char *seed = jstr(&v, "seed");
	int rc = -1;
	if (v.type == J_OBJ && *seed && jget(&v, "smtp")) {
		result_init(out, seed);
		take_final(out, line, &v);
		rc = 0;
	}
	jfree(&v);
	return rc;
}

void latest_result_fini(struct latest_result *r)
{
	result_fini(r);
	memset(r, 0, sizeof *r);
}
