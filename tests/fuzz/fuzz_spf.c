/* Fuzz target: SPF (spf.c), whose input is whatever a domain's owner publishes in DNS.
 *
 * Input: byte 0 is flags, the rest is up to 8 lines (LF-separated), line k being the only TXT
 * record of d<k>.fz (d0.fz is the checked domain; exp= and include targets can point at the
 * others). A fixed zone holds the rest: addresses, MX, PTR, a name that times out, a CNAME loop.
 *   flags bit 0: IPv6 client; bit 1: HELO identity; bits 2-3: which client address (one the
 *   zone knows, one it does not); bits 4-5: sender form.
 *
 * Checks beyond "no crash, no sanitizer report":
 *   - done fires exactly once; the outcome's strings are NUL-terminated in their arrays and hold
 *     no control bytes; counters within the limits (a limit exceeded only with permerror);
 *   - pass/fail/softfail name the mechanism, none/temperror/permerror name a problem and no
 *     mechanism; only fail has an explanation; every query the DNS saw is counted;
 *   - DNS that answers at once and DNS that answers later give the same outcome;
 *   - a record spf_record_check() refuses gives permerror when it is the one at d0.fz;
 *   - spf_macro_expand() of each line: output within SPF_MAX_EXPANSION; a line without '%' of
 *     allowed bytes expands to itself, one with a forbidden byte is an error. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spf.h"
#include "support.h"

#define FZ_LINES 8

struct fz_rec {
	const char *name, *type, *data;
	int pref;
};

static const struct fz_rec fz_zone[] = {
	{ "a.fz", "A", "192.0.2.1", 0 },
	{ "a.fz", "A", "192.0.2.2", 0 },
	{ "a.fz", "AAAA", "2001:db8::1", 0 },
	{ "mx.fz", "MX", "a.fz", 10 },
	{ "mx.fz", "MX", "b.fz", 20 },
	{ "mx.fz", "MX", ".", 30 },
	{ "b.fz", "A", "198.51.100.1", 0 },
	{ "b.fz", "AAAA", "2001:db8::2", 0 },
	{ "1.2.0.192.in-addr.arpa", "PTR", "a.fz", 0 },
	{ "1.2.0.192.in-addr.arpa", "PTR", "d0.fz", 0 },
	{ "1.2.0.192.in-addr.arpa", "PTR", "loop.fz", 0 },
	{ "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "PTR", "a.fz", 0 },
	{ "d0.fz", "A", "192.0.2.1", 0 },
	{ "d1.fz", "AAAA", "2001:db8::1", 0 },
	{ "loop.fz", "CNAME", "loop2.fz", 0 },
	{ "loop2.fz", "CNAME", "loop.fz", 0 },
	{ "t.fz", "TIMEOUT", "", 0 },
};

static const char *const rr_names[] = { "A", "AAAA", "MX", "TXT", "PTR" };

struct fz_dns {
	const char *lines[FZ_LINES];
	size_t lens[FZ_LINES];
	size_t n_lines;
	bool deferred;
	bool pending;
	enum spf_rr_type p_type;
	char p_name[300];
	spf_dns_answer_cb *p_answer;
	void *p_arg;
	int queries;
};

static void fz_answer(const struct fz_dns *d, enum spf_rr_type type, const char *name, spf_dns_answer_cb *answer,
		      void *arg)
{
	struct spf_rr rr[8];
	size_t n = 0;
	bool found = false;
	char cur[300];
	snprintf(cur, sizeof cur, "%s", name);

	for (int depth = 0; depth < 8; depth++) {
		const char *cname = NULL;
		/* d<k>.fz: the input's lines */
		if (strlen(cur) == 5 && strncasecmp(cur, "d", 1) == 0 && strcasecmp(cur + 2, ".fz") == 0 &&
		    cur[1] >= '0' && (size_t)(cur[1] - '0') < d->n_lines) {
			found = true;
			if (type == SPF_RR_TXT) {
				size_t k = (size_t)(cur[1] - '0');
				rr[n++] = (struct spf_rr){ d->lines[k], d->lens[k], 0 };
			}
		}
		for (size_t i = 0; i < sizeof fz_zone / sizeof fz_zone[0]; i++) {
			const struct fz_rec *r = &fz_zone[i];
			if (strcasecmp(r->name, cur) != 0)
				continue;
			found = true;
			if (strcmp(r->type, "TIMEOUT") == 0) {
				answer(arg, SPF_DNS_TIMEOUT, NULL, 0);
				return;
			}
			if (strcmp(r->type, "CNAME") == 0)
				cname = r->data;
			else if (strcmp(r->type, rr_names[type]) == 0 && n < 8)
				rr[n++] = (struct spf_rr){ r->data, strlen(r->data), r->pref };
		}
		if (n || !cname)
			break;
		snprintf(cur, sizeof cur, "%s", cname);
		if (depth == 7) {
			answer(arg, SPF_DNS_ERROR, NULL, 0);
			return;
		}
	}
	answer(arg, n ? SPF_DNS_OK : found ? SPF_DNS_NODATA : SPF_DNS_NXDOMAIN, rr, n);
}

static void fz_query(void *ops_arg, enum spf_rr_type type, const char *name, spf_dns_answer_cb *answer, void *arg)
{
	struct fz_dns *d = ops_arg;
	d->queries++;
	FUZZ_CHECK(name && *name && strlen(name) <= 253, "query name \"%s\"", name ? name : "(null)");
	if (!d->deferred) {
		fz_answer(d, type, name, answer, arg);
		return;
	}
	FUZZ_CHECK(!d->pending, "two queries out at once");
	d->pending = true;
	d->p_type = type;
	snprintf(d->p_name, sizeof d->p_name, "%s", name);
	d->p_answer = answer;
	d->p_arg = arg;
}

static const struct spf_dns_ops fz_ops = { fz_query };

struct fz_got {
	int fired;
	struct spf_outcome out;
};

static void fz_done(void *arg, const struct spf_outcome *out)
{
	struct fz_got *g = arg;
	g->fired++;
	g->out = *out;
}

static void check_str(const char *what, const char *s, size_t size)
{
	const char *nul = memchr(s, '\0', size);
	FUZZ_CHECK(nul != NULL, "%s not NUL-terminated", what);
	for (const char *p = s; p < nul; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f, "%s has byte 0x%02x", what,
			   (unsigned char)*p);
}

#define CHECK_STR(o, f) check_str(#f, (o)->f, sizeof((o)->f))

static void check_outcome(const struct spf_outcome *o, int queries)
{
	CHECK_STR(o, domain);
	CHECK_STR(o, record);
	CHECK_STR(o, mechanism);
	CHECK_STR(o, mechanism_domain);
	CHECK_STR(o, match_path);
	CHECK_STR(o, explanation);
	CHECK_STR(o, problem);
	FUZZ_CHECK(o->result >= SPF_RESULT_NONE && o->result <= SPF_RESULT_PERMERROR, "result %d", (int)o->result);
	FUZZ_CHECK(o->queries == queries, "%d queries counted, %d seen", o->queries, queries);
	FUZZ_CHECK(o->queries <= SPF_MAX_QUERIES, "%d queries", o->queries);
	FUZZ_CHECK(o->dns_lookups <= SPF_MAX_DNS_TERMS + 1, "%d DNS lookups", o->dns_lookups);
	FUZZ_CHECK(o->dns_lookups <= SPF_MAX_DNS_TERMS || o->result == SPF_RESULT_PERMERROR,
		   "%d DNS lookups, result %s", o->dns_lookups, spf_result_name(o->result));
	FUZZ_CHECK(o->void_lookups <= SPF_MAX_VOID + 1, "%d void lookups", o->void_lookups);
	FUZZ_CHECK(o->void_lookups <= SPF_MAX_VOID || o->result == SPF_RESULT_PERMERROR,
		   "%d void lookups, result %s", o->void_lookups, spf_result_name(o->result));
	switch (o->result) {
	case SPF_RESULT_PASS:
	case SPF_RESULT_FAIL:
	case SPF_RESULT_SOFTFAIL:
		FUZZ_CHECK(o->mechanism[0] && o->mechanism_domain[0] && o->match_path[0],
			   "%s without mechanism", spf_result_name(o->result));
		FUZZ_CHECK(!o->problem[0], "%s with problem \"%s\"", spf_result_name(o->result), o->problem);
		break;
	case SPF_RESULT_NEUTRAL:
		FUZZ_CHECK(!o->problem[0], "neutral with problem \"%s\"", o->problem);
		break;
	default:
		FUZZ_CHECK(o->problem[0], "%s without problem", spf_result_name(o->result));
		FUZZ_CHECK(!o->mechanism[0], "%s with mechanism \"%s\"", spf_result_name(o->result), o->mechanism);
		break;
	}
	if (o->result != SPF_RESULT_FAIL)
		FUZZ_CHECK(!o->explanation[0], "%s with explanation", spf_result_name(o->result));
}

static bool same_outcome(const struct spf_outcome *a, const struct spf_outcome *b)
{
	return a->result == b->result && strcmp(a->domain, b->domain) == 0 && strcmp(a->record, b->record) == 0 &&
	       strcmp(a->mechanism, b->mechanism) == 0 && strcmp(a->mechanism_domain, b->mechanism_domain) == 0 &&
	       strcmp(a->match_path, b->match_path) == 0 && strcmp(a->explanation, b->explanation) == 0 &&
	       strcmp(a->problem, b->problem) == 0 && a->dns_lookups == b->dns_lookups &&
	       a->void_lookups == b->void_lookups && a->queries == b->queries;
}

static struct spf_outcome run(struct fz_dns *d, const struct spf_params *p, bool deferred)
{
	struct fz_got g = { 0 };
	d->deferred = deferred;
	d->pending = false;
	d->queries = 0;
	struct spf_check *c = spf_check_start(p, &fz_ops, d, fz_done, &g);
	FUZZ_CHECK(deferred || c == NULL, "immediate DNS, but the check is not over");
	while (d->pending) {
		d->pending = false;
		fz_answer(d, d->p_type, d->p_name, d->p_answer, d->p_arg);
	}
	FUZZ_CHECK(g.fired == 1, "done fired %d times", g.fired);
	check_outcome(&g.out, d->queries);
	return g.out;
}

static void check_macro(const char *s, size_t n, const struct spf_params *p)
{
	for (int explain = 0; explain < 2; explain++) {
		char problem[256];
		bool cut = false;
		char *out = spf_macro_expand(s, n, p, "d0.fz", explain ? "a.fz" : NULL, explain, &cut, problem,
					     sizeof problem);
		bool plain = true, allowed = true;
		for (size_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)s[i];
			if (ch == '%')
				plain = false;
			else if (!((ch >= 0x21 && ch < 0x7f) || (explain && ch == ' ')))
				allowed = false;
		}
		if (out) {
			FUZZ_CHECK(strlen(out) <= SPF_MAX_EXPANSION, "expansion of %zu bytes", strlen(out));
			FUZZ_CHECK(allowed, "a forbidden byte expanded");
			if (plain)
				FUZZ_CHECK(strlen(out) == n && memcmp(out, s, n) == 0, "plain text changed: \"%s\"", out);
			free(out);
		} else {
			FUZZ_CHECK(problem[0], "an error without problem");
			FUZZ_CHECK(!plain || !allowed, "plain text refused: %s", problem);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ips4[] = { "192.0.2.1", "198.51.100.1", "203.0.113.9", "::ffff:192.0.2.2" };
	static const char *const ips6[] = { "2001:db8::1", "2001:db8::2", "2001:db8::99", "::1" };
	static const char *const senders[] = { "user@d0.fz", "", "@d0.fz", "d0.fz" };
	struct fz_dns d = { 0 };

	if (size == 0)
		return 0;
	unsigned flags = data[0];
	const char *s = (const char *)data + 1;
	size_t n = size - 1;

	/* the lines, as exactly sized copies */
	char *copies[FZ_LINES] = { 0 };
	size_t start = 0;
	for (size_t i = 0; i <= n && d.n_lines < FZ_LINES; i++)
		if (i == n || s[i] == '\n') {
			size_t len = i - start;
			copies[d.n_lines] = malloc(len ? len : 1);
			if (len)
				memcpy(copies[d.n_lines], s + start, len);
			d.lines[d.n_lines] = copies[d.n_lines];
			d.lens[d.n_lines] = len;
			d.n_lines++;
			start = i + 1;
		}

	struct spf_params p = {
		.ip = (flags & 1) ? ips6[(flags >> 2) & 3] : ips4[(flags >> 2) & 3],
		.sender = senders[(flags >> 4) & 3],
		.helo = "d0.fz",
		.identity = (flags & 2) ? SPF_IDENTITY_HELO : SPF_IDENTITY_MAILFROM,
		.receiver = "mx.receiver.fz",
		.default_explanation = "default",
		.now = 1700000000,
		.time_limit_ms = 3600 * 1000,
	};
	struct spf_outcome a = run(&d, &p, false);
	struct spf_outcome b = run(&d, &p, true);
	FUZZ_CHECK(same_outcome(&a, &b), "immediate %s \"%s\" vs deferred %s \"%s\"", spf_result_name(a.result),
		   a.problem, spf_result_name(b.result), b.problem);

	if (d.n_lines && spf_record_is_spf(d.lines[0], d.lens[0])) {
		char problem[256];
		if (spf_record_check(d.lines[0], d.lens[0], problem, sizeof problem) < 0)
			FUZZ_CHECK(a.result == SPF_RESULT_PERMERROR, "d0.fz refused (%s), but %s", problem,
				   spf_result_name(a.result));
	}
	for (size_t k = 0; k < d.n_lines; k++) {
		check_macro(d.lines[k], d.lens[k], &p);
		free(copies[k]);
	}
	return 0;
}
