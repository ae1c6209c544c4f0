/* SPF check_host() (RFC 7208): record parsing, macro expansion and a resumable evaluator.
 *
 * Flow: spf_check_start() pushes the top frame (the sender's domain) and calls run(). run()
 * calls step() until it needs DNS: step() leaves the query in c->q_* and returns STEP_WAIT, run()
 * sends it through ops->query(). An answer that comes back at once is stored and run() goes on;
 * a later one (c-ares) is stored by on_answer(), which calls run() again. step() is re-entered at
 * the same point (frame, term, phase) and consumes the stored answer there; everything before a
 * query point is idempotent or guarded by the phase, so nothing is counted twice.
 *
 * Frames: include pushes a frame, redirect replaces the top one in place. A temperror or
 * permerror anywhere ends the whole check (RFC 7208 5.2: include passes them up unchanged). */
#include "spf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "strbuf.h"
#include "xalloc.h"

/* ---- small helpers ---- */

static int lc(int ch) { return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch; }
static bool is_alpha(int ch) { return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'); }
static bool is_digit(int ch) { return ch >= '0' && ch <= '9'; }
static bool is_alnum(int ch) { return is_alpha(ch) || is_digit(ch); }
/* ch is a non-NUL byte of set (strchr() would also find the NUL). */
static bool in_set(int ch, const char *set) { return ch != '\0' && strchr(set, ch) != NULL; }

static bool mem_ieq(const char *a, size_t an, const char *b)
{
	size_t bn = strlen(b);
	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++)
		if (lc((unsigned char)a[i]) != lc((unsigned char)b[i]))
			return false;
	return true;
}

static bool str_ieq(const char *a, const char *b) { return mem_ieq(a, strlen(a), b); }

/* name equals dom or ends in "." dom (ASCII case-insensitive). */
static bool name_under(const char *name, const char *dom)
{
	size_t n = strlen(name), d = strlen(dom);
	if (n < d)
		return false;
	if (!mem_ieq(name + n - d, d, dom))
		return false;
	return n == d || name[n - d - 1] == '.';
}

/* Copies s[0..n) into dst[size] for display: bytes outside 0x20..0x7e as \xHH, cut to fit. */
static void show(char *dst, size_t size, const char *s, size_t n)
{
	size_t o = 0;
	if (!size)
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		char tmp[5];
		size_t k;
		if (ch >= 0x20 && ch < 0x7f) {
			tmp[0] = (char)ch;
			k = 1;
		} else {
			snprintf(tmp, sizeof tmp, "\\x%02x", ch);
			k = 4;
		}
		if (o + k >= size)
			break;
		memcpy(dst + o, tmp, k);
		o += k;
	}
	dst[o] = '\0';
}

/* A term for a problem text: shown as above, at most 64 bytes. */
static const char *term_show(char buf[80], const char *s, size_t n)
{
	show(buf, 72, s, n);
	if (strlen(buf) == 71)
		strcat(buf, "...");
	return buf;
}

/* ---- macro context (RFC 7208 7.3) ---- */

struct spf_env {
	char *s, *l, *o, *h, *r; /* owned */
	char c[INET6_ADDRSTRLEN];
	char i[72]; /* dotted: "192.0.2.1" or 32 nibbles "2.0.0.1.0.D.B.8...." */
	char t[24];
	bool v6;
	unsigned char ip[16]; /* 4 bytes for IPv4 */
};

/* Parses an address; IPv4-mapped IPv6 becomes IPv4. */
static int ip_parse(const char *s, unsigned char ip[16], bool *v6)
{
	unsigned char b[16];
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (inet_pton(AF_INET, s, b) == 1) {
		memcpy(ip, b, 4);
		*v6 = false;
		return 0;
	}
	if (inet_pton(AF_INET6, s, b) != 1)
		return -1;
	if (memcmp(b, mapped, 12) == 0) {
		memcpy(ip, b + 12, 4);
		*v6 = false;
		return 0;
	}
	memcpy(ip, b, 16);
	*v6 = true;
	return 0;
}

static void env_fini(struct spf_env *e)
{
	free(e->s);
	free(e->l);
	free(e->o);
	free(e->h);
	free(e->r);
	memset(e, 0, sizeof *e);
}

static int env_init(struct spf_env *e, const struct spf_params *p, char *problem, size_t psz)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *helo = p->helo ? p->helo : "";

	memset(e, 0, sizeof *e);
	if (!p->ip || ip_parse(p->ip, e->ip, &e->v6) < 0) {
		if (problem)
			snprintf(problem, psz, "client address \"%s\" is not an IP address", p->ip ? p->ip : "");
		return -1;
	}
	if (p->identity == SPF_IDENTITY_MAILFROM && p->sender && *p->sender) {
		const char *at = strrchr(p->sender, '@');
		if (at) {
			e->l = xstrndup(p->sender, (size_t)(at - p->sender));
			e->o = xstrdup(at + 1);
		} else {
			e->l = xstrdup("");
			e->o = xstrdup(p->sender);
		}
	} else {
		e->l = xstrdup("");
		e->o = xstrdup(helo);
	}
	if (!*e->l) {
		free(e->l);
		e->l = xstrdup("postmaster");
	}
	e->s = xasprintf("%s@%s", e->l, e->o);
	e->h = xstrdup(helo);
	e->r = xstrdup(p->receiver ? p->receiver : "unknown");
	snprintf(e->t, sizeof e->t, "%lld", (long long)(p->now ? p->now : (int64_t)time(NULL)));
	if (e->v6) {
		inet_ntop(AF_INET6, e->ip, e->c, sizeof e->c);
		for (int k = 0; k < 16; k++) {
			char *o = e->i + 4 * k;
			o[0] = hex[e->ip[k] >> 4];
			o[1] = '.';
			o[2] = hex[e->ip[k] & 15];
			o[3] = '.';
		}
		e->i[63] = '\0';
	} else {
		inet_ntop(AF_INET, e->ip, e->c, sizeof e->c);
		memcpy(e->i, e->c, sizeof e->c < sizeof e->i ? sizeof e->c : sizeof e->i);
	}
	return 0;
}

/* The name to look up PTR records at (RFC 7208 5.5). */
static void rev_name(const struct spf_env *e, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	if (!e->v6) {
		snprintf(buf, size, "%u.%u.%u.%u.in-addr.arpa", e->ip[3], e->ip[2], e->ip[1], e->ip[0]);
		return;
	}
	char tmp[80];
	size_t o = 0;
	for (int k = 15; k >= 0; k--) {
		tmp[o++] = hex[e->ip[k] & 15];
		tmp[o++] = '.';
		tmp[o++] = hex[e->ip[k] >> 4];
		tmp[o++] = '.';
	}
	tmp[o] = '\0';
	snprintf(buf, size, "%sip6.arpa", tmp);
}

/* ---- macro strings (RFC 7208 7.1) ---- */

struct mwalk {
	bool explain;             /* explanation text: spaces are literal */
	bool crt;                 /* letters c r t allowed */
	const struct spf_env *env; /* expansion values; NULL with out == NULL: syntax only */
	const char *domain;
	const char *p;
	struct strbuf *out; /* NULL: syntax check only */
	bool cut;           /* output reached SPF_MAX_EXPANSION */
	bool uses_p;        /* a %{p} was seen */
	bool ends_macro;    /* the string ends in a macro-expand */
	size_t macro_end;   /* offset just after the last macro-expand */
};

static void emit(struct mwalk *w, const char *s, size_t n)
{
	if (!w->out || w->cut)
		return;
	if (w->out->len + n > SPF_MAX_EXPANSION) {
		sb_appendn(w->out, s, SPF_MAX_EXPANSION - w->out->len);
		w->cut = true;
		return;
	}
	sb_appendn(w->out, s, n);
}

static void emit_escaped(struct mwalk *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (is_alnum(ch) || in_set(ch, "-._~")) {
			emit(w, s + i, 1);
		} else {
			char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };
			emit(w, e, 3);
		}
	}
}

static const char *macro_value(const struct mwalk *w, int letter)
{
	const struct spf_env *e = w->env;
	switch (letter) {
	case 's': return e->s;
	case 'l': return e->l;
	case 'o': return e->o;
	case 'd': return w->domain ? w->domain : "";
	case 'i': return e->i;
	case 'p': return w->p ? w->p : "unknown";
	case 'h': return e->h;
	case 'v': return e->v6 ? "ip6" : "in-addr";
	case 'c': return e->c;
	case 'r': return e->r;
	case 't': return e->t;
	default: return "";
	}
}

/* One %{...}: split on the delimiters, reverse, keep the rightmost `keep` parts (0: all), join
 * with ".", URL-escape for an upper-case letter (RFC 7208 7.3). */
static void expand_one(struct mwalk *w, int letter, bool upper, unsigned keep, bool rev, const char *delims,
		       size_t nd)
{
	const char *v = macro_value(w, letter);
	size_t vn = strlen(v), np = 0;
	char dset[8] = ".";
	struct part { const char *s; size_t n; } *parts;

	if (nd) {
		memcpy(dset, delims, nd < sizeof dset - 1 ? nd : sizeof dset - 1);
		dset[nd < sizeof dset - 1 ? nd : sizeof dset - 1] = '\0';
	}
	parts = xmalloc((vn + 1) * sizeof *parts);
	size_t start = 0;
	for (size_t i = 0; i <= vn; i++)
		if (i == vn || in_set((unsigned char)v[i], dset)) {
			parts[np].s = v + start;
			parts[np].n = i - start;
			np++;
			start = i + 1;
		}
	if (rev)
		for (size_t i = 0; i < np / 2; i++) {
			struct part t = parts[i];
			parts[i] = parts[np - 1 - i];
			parts[np - 1 - i] = t;
		}
	size_t first = keep && keep < np ? np - keep : 0;
	for (size_t i = first; i < np; i++) {
		if (i > first)
			emit(w, ".", 1);
		if (upper)
			emit_escaped(w, parts[i].s, parts[i].n);
		else
			emit(w, parts[i].s, parts[i].n);
	}
	free(parts);
}

#define PROBLEM(...) ((problem ? snprintf(problem, psz, __VA_ARGS__) : 0), -1)

/* Walks the macro-string s[0..n): checks its syntax and, with w->out, expands it. Returns 0, or
 * -1 with the reason in problem. */
static int macro_walk(const char *s, size_t n, struct mwalk *w, char *problem, size_t psz)
{
	char tb[80];
	size_t i = 0;

	w->uses_p = false;
	w->ends_macro = false;
	w->macro_end = 0;
	while (i < n) {
		unsigned char ch = (unsigned char)s[i];
		if (ch != '%') {
			if (!((ch >= 0x21 && ch <= 0x7e) || (ch == ' ' && w->explain)))
				return PROBLEM("invalid character \\x%02x in '%s'", ch, term_show(tb, s, n));
			size_t j = i + 1;
			while (j < n && s[j] != '%' &&
			       (((unsigned char)s[j] >= 0x21 && (unsigned char)s[j] <= 0x7e) || (s[j] == ' ' && w->explain)))
				j++;
			emit(w, s + i, j - i);
			i = j;
			w->ends_macro = false;
			continue;
		}
		if (i + 1 >= n)
			return PROBLEM("'%%' at the end of '%s'", term_show(tb, s, n));
		ch = (unsigned char)s[i + 1];
		if (ch == '%') {
			emit(w, "%", 1);
			i += 2;
		} else if (ch == '_') {
			emit(w, " ", 1);
			i += 2;
		} else if (ch == '-') {
			emit(w, "%20", 3);
			i += 2;
		} else if (ch == '{') {
			size_t j = i + 2;
			if (j >= n)
				return PROBLEM("unterminated macro in '%s'", term_show(tb, s, n));
			int L = (unsigned char)s[j], l = lc(L);
			if (!in_set(l, "slodiphvcrt"))
				return PROBLEM("unknown macro letter '%c' in '%s'", L >= 0x21 && L < 0x7f ? L : '?',
					       term_show(tb, s, n));
			if (!w->crt && in_set(l, "crt"))
				return PROBLEM("macro %%{%c} is only allowed in explanations: '%s'", L, term_show(tb, s, n));
			j++;
			unsigned keep = 0;
			bool digits = false;
			while (j < n && is_digit((unsigned char)s[j])) {
				digits = true;
				if (keep < 1000)
					keep = keep * 10 + (unsigned)(s[j] - '0');
				j++;
			}
			if (digits && keep == 0)
				return PROBLEM("macro keeps zero parts in '%s'", term_show(tb, s, n));
			bool rev = false;
			if (j < n && lc((unsigned char)s[j]) == 'r') {
				rev = true;
				j++;
			}
			size_t d0 = j;
			while (j < n && in_set((unsigned char)s[j], ".-+,/_="))
				j++;
			if (j >= n || s[j] != '}')
				return PROBLEM("malformed macro in '%s'", term_show(tb, s, n));
			if (l == 'p')
				w->uses_p = true;
			if (w->out)
				expand_one(w, l, L != l, keep, rev, s + d0, j - d0);
			i = j + 1;
		} else {
			return PROBLEM("'%%' not followed by '{', '%%', '_' or '-' in '%s'", term_show(tb, s, n));
		}
		w->ends_macro = true;
		w->macro_end = i;
	}
	return 0;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool toplabel_ok(const char *s, size_t n)
{
	bool alpha = false, dash = false;
	if (n == 0 || !is_alnum((unsigned char)s[0]) || !is_alnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '-')
			dash = true;
		else if (is_alpha(ch))
			alpha = true;
		else if (!is_digit(ch))
			return false;
	}
	return alpha || dash;
}

/* domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand.
 * *uses_p: whether it holds a %{p}. */
static int domain_spec_check(const char *s, size_t n, bool *uses_p, char *problem, size_t psz)
{
	char tb[80];
	struct mwalk w = { 0 };

	if (n == 0)
		return PROBLEM("empty domain-spec");
	if (macro_walk(s, n, &w, problem, psz) < 0)
		return -1;
	if (uses_p)
		*uses_p = w.uses_p;
	if (w.ends_macro)
		return 0;
	size_t m = n;
	if (s[m - 1] == '.')
		m--;
	size_t dot = m;
	while (dot > w.macro_end && s[dot - 1] != '.')
		dot--;
	if (dot <= w.macro_end || !toplabel_ok(s + dot, m - dot))
		return PROBLEM("'%s' does not end in a valid top-level label or a macro", term_show(tb, s, n));
	return 0;
}

/* An expanded name made ready to look up (RFC 7208 4.3, 7.3): one trailing dot dropped, labels
 * cut from the left until it fits 253 bytes. Takes s; returns owned, or NULL when it is no valid
 * domain name (an empty or over-long label). */
static char *name_ready(char *s)
{
	size_t n = strlen(s);
	char *p = s;

	if (n && s[n - 1] == '.')
		s[--n] = '\0';
	while (n > 253) {
		char *dot = memchr(p, '.', n);
		if (!dot) {
			free(s);
			return NULL;
		}
		n -= (size_t)(dot + 1 - p);
		p = dot + 1;
	}
	size_t label = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || p[i] == '.') {
			if (label == 0 || label > 63) {
				free(s);
				return NULL;
			}
			label = 0;
		} else {
			label++;
		}
	}
	char *r = xstrdup(p);
	free(s);
	return r;
}

/* ---- records (RFC 7208 4.5, 4.6, 5, 6) ---- */

enum mech { M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS, M_N };
static const char *const mech_names[M_N] = { "all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists" };

struct term {
	enum spf_result qual;
	enum mech mech;
	const char *text; /* as written, into record.text */
	size_t text_len;
	const char *spec; /* domain-spec, NULL when absent */
	size_t spec_len;
	bool spec_p;
	int cidr4, cidr6; /* -1: absent */
	unsigned char net[16];
};

struct record {
	char *text; /* owned copy, NUL-terminated */
	size_t len;
	struct term *terms;
	size_t n, cap;
	const char *redirect, *exp; /* domain-specs, NULL when absent */
	size_t redirect_len, exp_len;
	bool redirect_p, exp_p;
};

static void record_free(struct record *r)
{
	free(r->text);
	free(r->terms);
	memset(r, 0, sizeof *r);
}

bool spf_record_is_spf(const char *txt, size_t len)
{
	return len >= 6 && mem_ieq(txt, 6, "v=spf1") && (len == 6 || txt[6] == ' ');
}

/* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
static bool modifier_name_ok(const char *s, size_t n)
{
	if (n == 0 || !is_alpha((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alnum((unsigned char)s[i]) && !in_set((unsigned char)s[i], "-_."))
			return false;
	return true;
}

/* 1*DIGIT without leading zeros, at most max. */
static int cidr_parse(const char *s, size_t n, int max)
{
	int v = 0;
	if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

/* ip4-network: four qnum (0..255, no leading zeros). */
static int ip4_parse(const char *s, size_t n, unsigned char out[4])
{
	size_t i = 0;
	for (int k = 0; k < 4; k++) {
		size_t j = i;
		while (j < n && is_digit((unsigned char)s[j]))
			j++;
		int v = cidr_parse(s + i, j - i, 255);
		if (v < 0)
			return -1;
		out[k] = (unsigned char)v;
		if (k < 3) {
			if (j >= n || s[j] != '.')
				return -1;
			j++;
		}
		i = j;
	}
	return i == n ? 0 : -1;
}

/* Splits a trailing dual-cidr-length off s[0..n): returns the length before it. */
static size_t dual_cidr_split(const char *s, size_t n, const char **c4, size_t *c4n, const char **c6, size_t *c6n)
{
	size_t k = n, j = n;
	*c4 = *c6 = NULL;
	*c4n = *c6n = 0;
	while (j > 0 && is_digit((unsigned char)s[j - 1]))
		j--;
	if (j < k && j >= 2 && s[j - 1] == '/' && s[j - 2] == '/') {
		*c6 = s + j;
		*c6n = k - j;
		k = j - 2;
		j = k;
		while (j > 0 && is_digit((unsigned char)s[j - 1]))
			j--;
	}
	if (j < k && j >= 1 && s[j - 1] == '/') {
		*c4 = s + j;
		*c4n = k - j;
		k = j - 1;
	}
	return k;
}

static int term_parse(struct record *r, const char *s, size_t n, char *problem, size_t psz)
{
	char tb[80];
	struct term t;

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return PROBLEM("invalid character \\x%02x in '%s'", (unsigned char)s[i], term_show(tb, s, n));

	/* modifier: name "=" macro-string */
	const char *eq = memchr(s, '=', n);
	if (eq && modifier_name_ok(s, (size_t)(eq - s))) {
		size_t nn = (size_t)(eq - s), vn = n - nn - 1;
		const char *v = eq + 1;
		if (mem_ieq(s, nn, "redirect") || mem_ieq(s, nn, "exp")) {
			bool redirect = mem_ieq(s, nn, "redirect");
			bool p = false;
			if (redirect ? r->redirect != NULL : r->exp != NULL)
				return PROBLEM("more than one %s= modifier", redirect ? "redirect" : "exp");
			if (domain_spec_check(v, vn, &p, problem, psz) < 0) {
				if (problem) {
					char inner[200];
					snprintf(inner, sizeof inner, "%s", problem);
					snprintf(problem, psz, "%s: %s", term_show(tb, s, n), inner);
				}
				return -1;
			}
			if (redirect) {
				r->redirect = v;
				r->redirect_len = vn;
				r->redirect_p = p;
			} else {
				r->exp = v;
				r->exp_len = vn;
				r->exp_p = p;
			}
			return 0;
		}
		/* unknown modifiers are ignored, but their macro-string must be valid */
		struct mwalk w = { 0 };
		w.crt = true;
		return macro_walk(v, vn, &w, problem, psz);
	}

	/* mechanism: [ qualifier ] name [ rest ] */
	memset(&t, 0, sizeof t);
	t.text = s;
	t.text_len = n;
	t.cidr4 = t.cidr6 = -1;
	t.qual = SPF_RESULT_PASS;
	size_t i = 0;
	if (n && in_set((unsigned char)s[0], "+-~?")) {
		t.qual = s[0] == '+' ? SPF_RESULT_PASS : s[0] == '-' ? SPF_RESULT_FAIL
			: s[0] == '~' ? SPF_RESULT_SOFTFAIL : SPF_RESULT_NEUTRAL;
		i = 1;
	}
	size_t ns = i;
	while (i < n && is_alnum((unsigned char)s[i]))
		i++;
	int m;
	for (m = 0; m < M_N; m++)
		if (mem_ieq(s + ns, i - ns, mech_names[m]))
			break;
	if (m == M_N)
		return PROBLEM("unknown mechanism '%s'", term_show(tb, s, n));
	t.mech = (enum mech)m;
	const char *rest = s + i;
	size_t rn = n - i;
	const char *c4, *c6;
	size_t c4n, c6n;

	switch (t.mech) {
	case M_ALL:
		if (rn)
			return PROBLEM("'all' takes no argument: '%s'", term_show(tb, s, n));
		break;
	case M_INCLUDE:
	case M_EXISTS:
	case M_PTR:
		if (rn == 0 && t.mech == M_PTR)
			break;
		if (rn == 0 || rest[0] != ':')
			return PROBLEM("'%s' needs ':' and a domain: '%s'", mech_names[m], term_show(tb, s, n));
		t.spec = rest + 1;
		t.spec_len = rn - 1;
		break;
	case M_A:
	case M_MX:
		if (rn == 0)
			break;
		if (rest[0] != ':' && rest[0] != '/')
			return PROBLEM("unknown mechanism '%s'", term_show(tb, s, n));
		{
			size_t k = dual_cidr_split(rest, rn, &c4, &c4n, &c6, &c6n);
			if (c4 && (t.cidr4 = cidr_parse(c4, c4n, 32)) < 0)
				return PROBLEM("invalid IPv4 prefix length in '%s'", term_show(tb, s, n));
			if (c6 && (t.cidr6 = cidr_parse(c6, c6n, 128)) < 0)
				return PROBLEM("invalid IPv6 prefix length in '%s'", term_show(tb, s, n));
			if (rest[0] == '/') {
				if (k != 0)
					return PROBLEM("invalid prefix length in '%s'", term_show(tb, s, n));
			} else {
				t.spec = rest + 1;
				t.spec_len = k - 1;
			}
		}
		break;
	case M_IP4:
	case M_IP6: {
		if (rn < 2 || rest[0] != ':')
			return PROBLEM("'%s' needs ':' and a network: '%s'", mech_names[m], term_show(tb, s, n));
		const char *net = rest + 1, *slash = memchr(net, '/', rn - 1);
		size_t netn = slash ? (size_t)(slash - net) : rn - 1;
		if (t.mech == M_IP4) {
			if (ip4_parse(net, netn, t.net) < 0)
				return PROBLEM("invalid IPv4 network in '%s'", term_show(tb, s, n));
			if (slash && (t.cidr4 = cidr_parse(slash + 1, rn - 1 - netn - 1, 32)) < 0)
				return PROBLEM("invalid IPv4 prefix length in '%s'", term_show(tb, s, n));
		} else {
			char buf[64];
			if (netn == 0 || netn >= sizeof buf)
				return PROBLEM("invalid IPv6 network in '%s'", term_show(tb, s, n));
			memcpy(buf, net, netn);
			buf[netn] = '\0';
			if (inet_pton(AF_INET6, buf, t.net) != 1)
				return PROBLEM("invalid IPv6 network in '%s'", term_show(tb, s, n));
			if (slash && (t.cidr6 = cidr_parse(slash + 1, rn - 1 - netn - 1, 128)) < 0)
				return PROBLEM("invalid IPv6 prefix length in '%s'", term_show(tb, s, n));
		}
		break;
	}
	default:
		break;
	}
	if (t.spec && domain_spec_check(t.spec, t.spec_len, &t.spec_p, problem, psz) < 0) {
		if (problem) {
			char inner[200];
			snprintf(inner, sizeof inner, "%s", problem);
			snprintf(problem, psz, "%s: %s", term_show(tb, s, n), inner);
		}
		return -1;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 8;
		r->terms = xrealloc(r->terms, r->cap * sizeof *r->terms);
	}
	r->terms[r->n++] = t;
	return 0;
}

/* Parses an SPF record (spf_record_is_spf() true). Returns 0, or -1 with problem (r freed). */
static int record_parse(struct record *r, const char *txt, size_t len, char *problem, size_t psz)
{
	memset(r, 0, sizeof *r);
	if (len > SPF_MAX_RECORD)
		return PROBLEM("record longer than %d bytes", SPF_MAX_RECORD);
	r->text = xmalloc(len + 1);
	memcpy(r->text, txt, len);
	r->text[len] = '\0';
	r->len = len;
	size_t i = 6;
	while (i < len) {
		if (r->text[i] == ' ') {
			i++;
			continue;
		}
		size_t start = i;
		while (i < len && r->text[i] != ' ')
			i++;
		if (term_parse(r, r->text + start, i - start, problem, psz) < 0) {
			record_free(r);
			return -1;
		}
	}
	return 0;
}

int spf_record_check(const char *txt, size_t len, char *problem, size_t problem_size)
{
	struct record r;
	if (!spf_record_is_spf(txt, len)) {
		if (problem && problem_size)
			snprintf(problem, problem_size, "not an SPF record (no \"v=spf1\")");
		return -1;
	}
	if (record_parse(&r, txt, len, problem, problem_size) < 0)
		return -1;
	record_free(&r);
	return 0;
}

char *spf_macro_expand(const char *s, size_t len, const struct spf_params *params, const char *domain,
		       const char *p, bool explain, bool *cut, char *problem, size_t problem_size)
{
	struct spf_env env;
	struct strbuf sb;
	struct mwalk w = { 0 };

	if (env_init(&env, params, problem, problem_size) < 0)
		return NULL;
	sb_init(&sb);
	w.explain = explain;
	w.crt = explain;
	w.env = &env;
	w.domain = domain;
	w.p = p;
	w.out = &sb;
	int rc = macro_walk(s, len, &w, problem, problem_size);
	env_fini(&env);
	if (rc < 0) {
		sb_fini(&sb);
		return NULL;
	}
	if (cut)
		*cut = w.cut;
	return sb_steal(&sb);
}

/* ---- addresses ---- */

static bool prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
	int full = bits / 8, rem = bits % 8;
	if (memcmp(a, b, (size_t)full) != 0)
		return false;
	if (rem == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rem));
	return (a[full] & mask) == (b[full] & mask);
}

/* Whether the address text data[0..len) is the client's family and within bits of it. */
static bool rr_addr_match(const struct spf_env *e, const char *data, size_t len, int bits)
{
	char buf[64];
	unsigned char a[16];
	if (len == 0 || len >= sizeof buf)
		return false;
	memcpy(buf, data, len);
	buf[len] = '\0';
	if (inet_pton(e->v6 ? AF_INET6 : AF_INET, buf, a) != 1)
		return false;
	return prefix_match(e->ip, a, bits);
}

/* ---- the check ---- */

enum { STEP_MORE, STEP_WAIT, STEP_DONE };
enum frame_kind { FRAME_TOP, FRAME_INCLUDE };
enum frame_state { FRAME_FETCH, FRAME_RUN };
enum stage { STAGE_EVAL, STAGE_EXP };

struct frame {
	enum frame_kind kind;
	enum frame_state state;
	char *domain; /* <domain> of this record */
	bool asked;   /* FRAME_FETCH: the TXT query is out */
	bool redirected;
	struct record rec;
	size_t ti; /* term being evaluated; rec.n: the end (redirect) */
	int phase; /* of term ti */
	char *target;
	char **names; /* mx: exchanges in preference order */
	size_t n_names, ni;
	struct strbuf via; /* "redirect=x " for each redirect followed */
	char *child_path;  /* include: the included record's match path */
};

struct answer_rr {
	char *data;
	size_t len;
	int pref;
};

/* The query in flight; outlives a cancelled check (c NULL then). */
struct ticket {
	struct spf_check *c;
};

struct ptr_cache {
	int state; /* 0 not asked, 1 asked, 2 known */
	enum spf_dns_status status;
	char *names[SPF_MAX_PTR_NAMES];
	size_t n;
	int valid[SPF_MAX_PTR_NAMES]; /* 0 unknown, 2 asked, 1 valid, -1 not valid (or error) */
};

struct spf_check {
	struct spf_env env;
	char *default_exp;
	const struct spf_dns_ops *ops;
	void *ops_arg;
	spf_done_cb *done;
	void *done_arg;
	int64_t deadline_us, limit_ms;

	struct frame frames[SPF_MAX_DEPTH];
	size_t depth;
	enum stage stage;
	int exp_phase;
	char *exp_text; /* the explanation TXT record */
	bool exp_text_p;

	/* the query to send (STEP_WAIT), the one in flight and its answer */
	enum spf_rr_type q_type;
	char *q_name;
	struct ticket *ticket;
	bool in_query;
	bool ans_ready;
	enum spf_dns_status ans_status;
	struct answer_rr *ans;
	size_t ans_n;

	struct ptr_cache ptr;
	bool record_shown;
	struct spf_outcome out;
};

static const char *dns_status_text(enum spf_dns_status st)
{
	switch (st) {
	case SPF_DNS_OK: return "ok";
	case SPF_DNS_NXDOMAIN: return "NXDOMAIN";
	case SPF_DNS_NODATA: return "no records";
	case SPF_DNS_TIMEOUT: return "DNS timeout";
	default: return "DNS error";
	}
}

static const char *rr_name(enum spf_rr_type t)
{
	switch (t) {
	case SPF_RR_A: return "A";
	case SPF_RR_AAAA: return "AAAA";
	case SPF_RR_MX: return "MX";
	case SPF_RR_TXT: return "TXT";
	default: return "PTR";
	}
}

static void answer_clear(struct spf_check *c)
{
	for (size_t i = 0; i < c->ans_n; i++)
		free(c->ans[i].data);
	free(c->ans);
	c->ans = NULL;
	c->ans_n = 0;
	c->ans_ready = false;
}

static void frame_clear(struct frame *f)
{
	free(f->domain);
	free(f->target);
	for (size_t i = 0; i < f->n_names; i++)
		free(f->names[i]);
	free(f->names);
	free(f->child_path);
	sb_fini(&f->via);
	record_free(&f->rec);
	memset(f, 0, sizeof *f);
}

static void term_reset(struct frame *f)
{
	free(f->target);
	f->target = NULL;
	for (size_t i = 0; i < f->n_names; i++)
		free(f->names[i]);
	free(f->names);
	f->names = NULL;
	f->n_names = f->ni = 0;
	free(f->child_path);
	f->child_path = NULL;
	f->phase = 0;
}

static void check_free(struct spf_check *c)
{
	while (c->depth)
		frame_clear(&c->frames[--c->depth]);
	for (size_t i = 0; i < c->ptr.n; i++)
		free(c->ptr.names[i]);
	answer_clear(c);
	free(c->q_name);
	free(c->exp_text);
	free(c->default_exp);
	env_fini(&c->env);
	free(c);
}

/* The check is over with r. */
static int conclude(struct spf_check *c, enum spf_result r)
{
	c->out.result = r;
	return STEP_DONE;
}

/* The check is over with r, for the reason given. */
static int finish(struct spf_check *c, enum spf_result r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int finish(struct spf_check *c, enum spf_result r, const char *fmt, ...)
{
	char buf[sizeof c->out.problem];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	show(c->out.problem, sizeof c->out.problem, buf, strlen(buf));
	return conclude(c, r);
}

static int ask(struct spf_check *c, enum spf_rr_type type, const char *name)
{
	free(c->q_name);
	c->q_name = xstrdup(name);
	c->q_type = type;
	return STEP_WAIT;
}

static struct frame *frame_push(struct spf_check *c, enum frame_kind kind, char *domain)
{
	struct frame *f = &c->frames[c->depth++];
	memset(f, 0, sizeof *f);
	f->kind = kind;
	f->state = FRAME_FETCH;
	f->domain = domain;
	sb_init(&f->via);
	return f;
}

/* Expands a domain-spec for a lookup; NULL when the result is no valid name. */
static char *target_expand(struct spf_check *c, const char *spec, size_t n, const char *domain, const char *p)
{
	struct strbuf sb;
	struct mwalk w = { 0 };
	sb_init(&sb);
	w.env = &c->env;
	w.domain = domain;
	w.p = p;
	w.out = &sb;
	if (macro_walk(spec, n, &w, NULL, 0) < 0 || w.cut) {
		sb_fini(&sb);
		return NULL;
	}
	return name_ready(sb_steal(&sb));
}

/* PTR names of the client (RFC 7208 5.5), shared by ptr and %{p}: 1 when known, 0 when a query
 * was sent (come back with the answer). */
static int ptr_list(struct spf_check *c)
{
	struct ptr_cache *pc = &c->ptr;
	if (pc->state == 2)
		return 1;
	if (pc->state == 0) {
		char rev[96];
		rev_name(&c->env, rev, sizeof rev);
		pc->state = 1;
		ask(c, SPF_RR_PTR, rev);
		return 0;
	}
	pc->state = 2;
	pc->status = c->ans_status;
	for (size_t i = 0; i < c->ans_n && pc->n < SPF_MAX_PTR_NAMES; i++) {
		char *name = name_ready(xstrndup(c->ans[i].data, c->ans[i].len));
		pc->valid[pc->n] = name ? 0 : -1;
		pc->names[pc->n++] = name ? name : xstrdup("");
	}
	answer_clear(c);
	return 1;
}

/* Whether PTR name i resolves back to the client: 1 when known (pc->valid[i]), 0 when a query
 * was sent. A DNS error skips the name (RFC 7208 5.5). */
static int ptr_validate(struct spf_check *c, size_t i)
{
	struct ptr_cache *pc = &c->ptr;
	if (pc->valid[i] == 1 || pc->valid[i] == -1)
		return 1;
	if (pc->valid[i] == 0) {
		pc->valid[i] = 2;
		ask(c, c->env.v6 ? SPF_RR_AAAA : SPF_RR_A, pc->names[i]);
		return 0;
	}
	pc->valid[i] = -1;
	if (c->ans_status == SPF_DNS_OK)
		for (size_t k = 0; k < c->ans_n; k++)
			if (rr_addr_match(&c->env, c->ans[k].data, c->ans[k].len, c->env.v6 ? 128 : 32))
				pc->valid[i] = 1;
	answer_clear(c);
	return 1;
}

/* %{p} for domain (RFC 7208 7.3): the validated name equal to domain, else one under it, else
 * any; "unknown" without one. 1 with *out (owned) set, 0 when a query was sent. */
static int resolve_p(struct spf_check *c, const char *domain, char **out)
{
	struct ptr_cache *pc = &c->ptr;
	if (!ptr_list(c))
		return 0;
	for (int tier = 0; tier < 3; tier++)
		for (size_t i = 0; i < pc->n; i++) {
			if (pc->valid[i] == -1)
				continue;
			bool fits = tier == 0 ? str_ieq(pc->names[i], domain)
				  : tier == 1 ? name_under(pc->names[i], domain) : true;
			if (!fits)
				continue;
			if (!ptr_validate(c, i))
				return 0;
			if (pc->valid[i] == 1) {
				*out = xstrdup(pc->names[i]);
				return 1;
			}
		}
	*out = xstrdup("unknown");
	return 1;
}

static int term_nomatch(struct frame *f)
{
	term_reset(f);
	f->ti++;
	return STEP_MORE;
}

static int frame_end(struct spf_check *c, enum spf_result r, char *path);

/* Term ti of the top frame matched; child: the include's match path (taken). */
static int term_match(struct spf_check *c, struct frame *f)
{
	const struct term *t = &f->rec.terms[f->ti];
	struct strbuf sb;
	sb_init(&sb);
	sb_append(&sb, f->via.s ? f->via.s : "");
	sb_appendn(&sb, t->text, t->text_len);
	if (f->child_path)
		sb_appendf(&sb, " %s", f->child_path);
	if (c->depth == 1) {
		show(c->out.mechanism, sizeof c->out.mechanism, t->text, t->text_len);
		show(c->out.mechanism_domain, sizeof c->out.mechanism_domain, f->domain, strlen(f->domain));
	}
	return frame_end(c, t->qual, sb_steal(&sb));
}

/* The top frame's record gave r (path: its match path, owned, NULL for the default result). */
static int frame_end(struct spf_check *c, enum spf_result r, char *path)
{
	if (c->depth == 1) {
		struct frame *f = &c->frames[0];
		if (path)
			show(c->out.match_path, sizeof c->out.match_path, path, strlen(path));
		free(path);
		if (r == SPF_RESULT_FAIL) {
			snprintf(c->out.explanation, sizeof c->out.explanation, "%s", c->default_exp);
			if (f->rec.exp) {
				c->stage = STAGE_EXP;
				c->out.result = r;
				return STEP_MORE;
			}
		}
		return conclude(c, r);
	}
	frame_clear(&c->frames[--c->depth]);
	struct frame *parent = &c->frames[c->depth - 1];
	if (r != SPF_RESULT_PASS) {
		free(path);
		return term_nomatch(parent);
	}
	parent->child_path = path;
	return term_match(c, parent);
}

/* A record was looked for at f->domain and none found. */
static int frame_none(struct spf_check *c, struct frame *f, const char *why)
{
	if (f->kind == FRAME_TOP && !f->redirected)
		return finish(c, SPF_RESULT_NONE, "no SPF record at %s (%s)", f->domain, why);
	return finish(c, SPF_RESULT_PERMERROR, "%s %s has no SPF record (%s)",
		      f->redirected ? "redirect target" : "included domain", f->domain, why);
}

static int step_fetch(struct spf_check *c, struct frame *f)
{
	char problem[200];
	if (!f->asked) {
		f->asked = true;
		return ask(c, SPF_RR_TXT, f->domain);
	}
	f->asked = false;
	switch (c->ans_status) {
	case SPF_DNS_OK: break;
	case SPF_DNS_NXDOMAIN:
	case SPF_DNS_NODATA: {
		int r = frame_none(c, f, dns_status_text(c->ans_status));
		answer_clear(c);
		return r;
	}
	default: {
		int r = finish(c, SPF_RESULT_TEMPERROR, "%s looking up TXT %s", dns_status_text(c->ans_status), f->domain);
		answer_clear(c);
		return r;
	}
	}
	const struct answer_rr *rec = NULL;
	size_t n = 0;
	for (size_t i = 0; i < c->ans_n; i++)
		if (spf_record_is_spf(c->ans[i].data, c->ans[i].len)) {
			rec = &c->ans[i];
			n++;
		}
	int r = STEP_MORE;
	if (n == 0) {
		r = frame_none(c, f, "no TXT record starts with v=spf1");
	} else if (n > 1) {
		r = finish(c, SPF_RESULT_PERMERROR, "%zu SPF records at %s", n, f->domain);
	} else {
		if (c->depth == 1 && !c->record_shown) {
			show(c->out.record, sizeof c->out.record, rec->data, rec->len);
			c->record_shown = true;
		}
		if (record_parse(&f->rec, rec->data, rec->len, problem, sizeof problem) < 0) {
			r = finish(c, SPF_RESULT_PERMERROR, "syntax error in the SPF record of %s: %s", f->domain, problem);
		} else {
			f->state = FRAME_RUN;
			f->ti = 0;
			f->phase = 0;
		}
	}
	answer_clear(c);
	return r;
}

static int void_hit(struct spf_check *c, struct frame *f)
{
	answer_clear(c);
	if (++c->out.void_lookups > SPF_MAX_VOID)
		return finish(c, SPF_RESULT_PERMERROR, "too many void DNS lookups (more than %d), the last for %s",
			      SPF_MAX_VOID, f->target ? f->target : f->domain);
	return term_nomatch(f);
}

static int lookup_error(struct spf_check *c, const char *name)
{
	int r = finish(c, SPF_RESULT_TEMPERROR, "%s looking up %s %s", dns_status_text(c->ans_status),
		       rr_name(c->q_type), name);
	answer_clear(c);
	return r;
}

static int any_addr_match(struct spf_check *c, const struct term *t)
{
	int bits = c->env.v6 ? (t->cidr6 < 0 ? 128 : t->cidr6) : (t->cidr4 < 0 ? 32 : t->cidr4);
	for (size_t i = 0; i < c->ans_n; i++)
		if (rr_addr_match(&c->env, c->ans[i].data, c->ans[i].len, bits))
			return 1;
	return 0;
}

static int count_dns_term(struct spf_check *c, const char *what)
{
	if (++c->out.dns_lookups > SPF_MAX_DNS_TERMS)
		return finish(c, SPF_RESULT_PERMERROR, "too many DNS lookups (more than %d), at '%s'",
			      SPF_MAX_DNS_TERMS, what);
	return STEP_MORE;
}

/* End of the terms: redirect= or the default result (RFC 7208 4.7, 6.1). */
static int step_end(struct spf_check *c, struct frame *f)
{
	char tb[80];
	const struct record *r = &f->rec;
	if (!r->redirect)
		return frame_end(c, SPF_RESULT_NEUTRAL, NULL);
	if (f->phase == 0) {
		if (count_dns_term(c, "redirect") == STEP_DONE)
			return STEP_DONE;
		f->phase = 1;
	}
	char *p = NULL;
	if (r->redirect_p && !resolve_p(c, f->domain, &p))
		return STEP_WAIT;
	char *target = target_expand(c, r->redirect, r->redirect_len, f->domain, p);
	free(p);
	if (!target)
		return finish(c, SPF_RESULT_PERMERROR, "redirect=%s: not a valid domain name after expansion",
			      term_show(tb, r->redirect, r->redirect_len));
	sb_appendf(&f->via, "redirect=%s ", target);
	record_free(&f->rec);
	term_reset(f);
	free(f->domain);
	f->domain = target;
	f->redirected = true;
	f->state = FRAME_FETCH;
	f->asked = false;
	f->ti = 0;
	return STEP_MORE;
}

static int step_term(struct spf_check *c, struct frame *f)
{
	char tb[80];
	if (f->ti >= f->rec.n)
		return step_end(c, f);
	const struct term *t = &f->rec.terms[f->ti];

	switch (t->mech) {
	case M_ALL:
		return term_match(c, f);
	case M_IP4:
		if (!c->env.v6 && prefix_match(c->env.ip, t->net, t->cidr4 < 0 ? 32 : t->cidr4))
			return term_match(c, f);
		return term_nomatch(f);
	case M_IP6:
		if (c->env.v6 && prefix_match(c->env.ip, t->net, t->cidr6 < 0 ? 128 : t->cidr6))
			return term_match(c, f);
		return term_nomatch(f);
	default:
		break;
	}

	if (f->phase == 0) {
		if (count_dns_term(c, term_show(tb, t->text, t->text_len)) == STEP_DONE)
			return STEP_DONE;
		f->phase = 1;
	}
	if (f->phase == 1) {
		char *p = NULL;
		if (t->spec && t->spec_p && !resolve_p(c, f->domain, &p))
			return STEP_WAIT;
		f->target = t->spec ? target_expand(c, t->spec, t->spec_len, f->domain, p) : xstrdup(f->domain);
		free(p);
		f->phase = 2;
		if (!f->target) {
			if (t->mech == M_INCLUDE)
				return finish(c, SPF_RESULT_PERMERROR, "%s: not a valid domain name after expansion",
					      term_show(tb, t->text, t->text_len));
			return term_nomatch(f); /* like a name that does not exist (RFC 7208 4.3, 4.8) */
		}
	}

	enum spf_rr_type addr = c->env.v6 ? SPF_RR_AAAA : SPF_RR_A;
	switch (t->mech) {
	case M_A:
	case M_EXISTS:
		if (f->phase == 2) {
			f->phase = 3;
			return ask(c, t->mech == M_EXISTS ? SPF_RR_A : addr, f->target);
		}
		if (c->ans_status == SPF_DNS_NXDOMAIN || c->ans_status == SPF_DNS_NODATA)
			return void_hit(c, f);
		if (c->ans_status != SPF_DNS_OK)
			return lookup_error(c, f->target);
		{
			int m = t->mech == M_EXISTS ? c->ans_n > 0 : any_addr_match(c, t);
			answer_clear(c);
			return m ? term_match(c, f) : term_nomatch(f);
		}

	case M_MX:
		if (f->phase == 2) {
			f->phase = 3;
			return ask(c, SPF_RR_MX, f->target);
		}
		if (f->phase == 3) {
			if (c->ans_status == SPF_DNS_NXDOMAIN || c->ans_status == SPF_DNS_NODATA)
				return void_hit(c, f);
			if (c->ans_status != SPF_DNS_OK)
				return lookup_error(c, f->target);
			if (c->ans_n > SPF_MAX_MX_NAMES) {
				int r = finish(c, SPF_RESULT_PERMERROR, "%zu MX records at %s (more than %d)", c->ans_n,
					       f->target, SPF_MAX_MX_NAMES);
				answer_clear(c);
				return r;
			}
			/* by preference; insertion sort keeps the answer order of equal ones */
			f->names = xcalloc(c->ans_n ? c->ans_n : 1, sizeof *f->names);
			int *pref = xcalloc(c->ans_n ? c->ans_n : 1, sizeof *pref);
			for (size_t i = 0; i < c->ans_n; i++) {
				char *name = xstrndup(c->ans[i].data, c->ans[i].len);
				size_t k = f->n_names++;
				while (k > 0 && pref[k - 1] > c->ans[i].pref) {
					f->names[k] = f->names[k - 1];
					pref[k] = pref[k - 1];
					k--;
				}
				f->names[k] = name;
				pref[k] = c->ans[i].pref;
			}
			free(pref);
			answer_clear(c);
			f->ni = 0;
			f->phase = 4;
		}
		if (f->phase == 4) {
			while (f->ni < f->n_names) {
				/* a null MX ("." or "") or an invalid name: nothing to look up */
				char *name = name_ready(xstrdup(f->names[f->ni]));
				if (!name) {
					f->ni++;
					continue;
				}
				f->phase = 5;
				ask(c, addr, name);
				free(name);
				return STEP_WAIT;
			}
			return term_nomatch(f);
		}
		/* phase 5: addresses of exchange ni */
		if (c->ans_status == SPF_DNS_OK) {
			int m = any_addr_match(c, t);
			answer_clear(c);
			if (m)
				return term_match(c, f);
		} else if (c->ans_status != SPF_DNS_NXDOMAIN && c->ans_status != SPF_DNS_NODATA) {
			return lookup_error(c, c->q_name);
		}
		answer_clear(c);
		f->ni++;
		f->phase = 4;
		return STEP_MORE;

	case M_PTR:
		if (f->phase == 2) {
			if (!ptr_list(c))
				return STEP_WAIT;
			f->phase = 3;
			f->ni = 0;
			if (c->ptr.status == SPF_DNS_NXDOMAIN || c->ptr.status == SPF_DNS_NODATA)
				return void_hit(c, f);
			if (c->ptr.status != SPF_DNS_OK)
				return term_nomatch(f); /* a DNS error: no match (RFC 7208 5.5) */
		}
		for (; f->ni < c->ptr.n; f->ni++) {
			if (c->ptr.valid[f->ni] == -1 || !name_under(c->ptr.names[f->ni], f->target))
				continue;
			if (!ptr_validate(c, f->ni))
				return STEP_WAIT;
			if (c->ptr.valid[f->ni] == 1)
				return term_match(c, f);
		}
		return term_nomatch(f);

	case M_INCLUDE:
		if (c->depth >= SPF_MAX_DEPTH)
			return finish(c, SPF_RESULT_PERMERROR, "include nesting deeper than %d", SPF_MAX_DEPTH);
		f->phase = 3;
		frame_push(c, FRAME_INCLUDE, xstrdup(f->target));
		return STEP_MORE;

	default:
		return finish(c, SPF_RESULT_PERMERROR, "internal error: mechanism %d", (int)t->mech);
	}
}

/* exp= of the record that failed (RFC 7208 6.2): any problem leaves the default explanation. */
static int step_exp(struct spf_check *c)
{
	struct frame *f = &c->frames[0];
	const struct record *r = &f->rec;
	char *p = NULL;

	if (c->exp_phase == 0) {
		if (r->exp_p && !resolve_p(c, f->domain, &p))
			return STEP_WAIT;
		char *target = target_expand(c, r->exp, r->exp_len, f->domain, p);
		free(p);
		if (!target)
			return conclude(c, SPF_RESULT_FAIL);
		c->exp_phase = 1;
		ask(c, SPF_RR_TXT, target);
		free(target);
		return STEP_WAIT;
	}
	if (c->exp_phase == 1) {
		bool ok = c->ans_status == SPF_DNS_OK && c->ans_n == 1;
		if (ok) {
			struct mwalk w = { 0 };
			w.explain = w.crt = true;
			ok = macro_walk(c->ans[0].data, c->ans[0].len, &w, NULL, 0) == 0;
			if (ok) {
				c->exp_text = xstrndup(c->ans[0].data, c->ans[0].len);
				c->exp_text_p = w.uses_p;
			}
		}
		answer_clear(c);
		if (!ok)
			return conclude(c, SPF_RESULT_FAIL);
		c->exp_phase = 2;
	}
	if (c->exp_text_p && !resolve_p(c, f->domain, &p))
		return STEP_WAIT;
	struct strbuf sb;
	struct mwalk w = { 0 };
	sb_init(&sb);
	w.explain = w.crt = true;
	w.env = &c->env;
	w.domain = f->domain;
	w.p = p;
	w.out = &sb;
	if (macro_walk(c->exp_text, strlen(c->exp_text), &w, NULL, 0) == 0)
		show(c->out.explanation, sizeof c->out.explanation, sb.s, sb.len);
	sb_fini(&sb);
	free(p);
	return conclude(c, SPF_RESULT_FAIL);
}

static int step(struct spf_check *c)
{
	if (c->stage == STAGE_EXP)
		return step_exp(c);
	struct frame *f = &c->frames[c->depth - 1];
	if (f->state == FRAME_FETCH)
		return step_fetch(c, f);
	return step_term(c, f);
}

static void complete(struct spf_check *c)
{
	c->done(c->done_arg, &c->out);
	check_free(c);
}

static bool run(struct spf_check *c);

static void on_answer(void *arg, enum spf_dns_status status, const struct spf_rr *rrs, size_t n)
{
	struct ticket *t = arg;
	struct spf_check *c = t->c;
	free(t);
	if (!c)
		return; /* cancelled */
	c->ticket = NULL;
	answer_clear(c);
	if (status == SPF_DNS_OK && n == 0)
		status = SPF_DNS_NODATA;
	c->ans_status = status;
	if (status == SPF_DNS_OK) {
		c->ans = xcalloc(n, sizeof *c->ans);
		for (size_t i = 0; i < n; i++) {
			c->ans[i].data = xmalloc(rrs[i].len + 1);
			if (rrs[i].len)
				memcpy(c->ans[i].data, rrs[i].data, rrs[i].len);
			c->ans[i].data[rrs[i].len] = '\0';
			c->ans[i].len = rrs[i].len;
			c->ans[i].pref = rrs[i].pref;
		}
		c->ans_n = n;
	}
	c->ans_ready = true;
	if (!c->in_query)
		run(c);
}

static bool past_deadline(const struct spf_check *c) { return mono_us() > c->deadline_us; }

/* Steps until the check waits for an answer (false) or is complete and freed (true). */
static bool run(struct spf_check *c)
{
	for (;;) {
		int r;
		if (c->ans_ready && c->ans_status == SPF_DNS_SHUTDOWN) {
			answer_clear(c);
			r = finish(c, SPF_RESULT_TEMPERROR, "DNS resolver shut down");
		} else if (c->ans_ready && past_deadline(c)) {
			answer_clear(c);
			r = finish(c, SPF_RESULT_TEMPERROR, "time limit of %lld ms exceeded", (long long)c->limit_ms);
		} else {
			r = step(c);
		}
		if (r == STEP_WAIT) {
			if (c->out.queries >= SPF_MAX_QUERIES)
				r = finish(c, SPF_RESULT_PERMERROR, "too many DNS queries (more than %d)", SPF_MAX_QUERIES);
			else if (past_deadline(c))
				r = finish(c, SPF_RESULT_TEMPERROR, "time limit of %lld ms exceeded", (long long)c->limit_ms);
		}
		if (r == STEP_DONE) {
			complete(c);
			return true;
		}
		if (r == STEP_WAIT) {
			struct ticket *t = xmalloc(sizeof *t);
			t->c = c;
			c->ticket = t;
			c->out.queries++;
			answer_clear(c);
			c->in_query = true;
			c->ops->query(c->ops_arg, c->q_type, c->q_name, on_answer, t);
			c->in_query = false;
			if (!c->ans_ready)
				return false;
		}
	}
}

struct spf_check *spf_check_start(const struct spf_params *params, const struct spf_dns_ops *ops,
				  void *ops_arg, spf_done_cb *done, void *arg)
{
	struct spf_check *c = xcalloc(1, sizeof *c);
	char problem[sizeof c->out.problem];

	c->ops = ops;
	c->ops_arg = ops_arg;
	c->done = done;
	c->done_arg = arg;
	c->default_exp = xstrdup(params->default_explanation ? params->default_explanation : "");
	c->limit_ms = params->time_limit_ms > 0 ? params->time_limit_ms : SPF_TIME_LIMIT_MS;
	c->deadline_us = mono_us() + c->limit_ms * 1000;
	if (env_init(&c->env, params, problem, sizeof problem) < 0) {
		finish(c, SPF_RESULT_PERMERROR, "%s", problem);
		complete(c);
		return NULL;
	}
	char *domain = xstrdup(c->env.o);
	size_t n = strlen(domain);
	if (n && domain[n - 1] == '.')
		domain[n - 1] = '\0';
	show(c->out.domain, sizeof c->out.domain, domain, strlen(domain));
	/* RFC 7208 4.3: a malformed or single-label domain gives none */
	char *ready = domain[0] == '[' ? NULL : name_ready(xstrdup(domain));
	if (!ready || !strchr(ready, '.')) {
		finish(c, SPF_RESULT_NONE, "\"%s\" is not a valid multi-label domain name", domain);
		free(ready);
		free(domain);
		complete(c);
		return NULL;
	}
	free(domain);
	frame_push(c, FRAME_TOP, ready);
	return run(c) ? NULL : c;
}

void spf_check_cancel(struct spf_check *c)
{
	if (!c)
		return;
	if (c->ticket)
		c->ticket->c = NULL;
	c->ticket = NULL;
	c->out.mechanism[0] = c->out.mechanism_domain[0] = c->out.match_path[0] = c->out.explanation[0] = '\0';
	finish(c, SPF_RESULT_TEMPERROR, "cancelled");
	complete(c);
}

static const char *const result_names[] = { "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror" };

const char *spf_result_name(enum spf_result r)
{
	return (unsigned)r < sizeof result_names / sizeof result_names[0] ? result_names[r] : "?";
}

int spf_result_parse(const char *name, enum spf_result *out)
{
	for (size_t i = 0; i < sizeof result_names / sizeof result_names[0]; i++)
		if (str_ieq(name, result_names[i])) {
			*out = (enum spf_result)i;
			return 0;
		}
	return -1;
}
