/* SPF: check_host() of RFC 7208, for the `dns` command's "spf" check (does the envelope domain
 * authorise our sending IP?) and wherever a verdict must be explained with evidence.
 *
 * The evaluator is resumable: DNS goes through an ops table whose query() may answer at once
 * (an in-memory zone in tests) or later from the event loop (c-ares, spf_ares.c). One query is
 * outstanding at a time; include/redirect are an explicit stack of record frames, not C
 * recursion across callbacks. Every input from DNS is untrusted: records, names and counts are
 * bounded by the limits below, so a hostile record costs at most SPF_MAX_QUERIES queries and a
 * few kilobytes. */
#ifndef MON_PROBE_SPF_H
#define MON_PROBE_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 7208 4.6.4 */
#define SPF_MAX_DNS_TERMS 10 /* include a mx ptr exists redirect per check; more: permerror */
#define SPF_MAX_VOID 2       /* terms whose lookup gave NXDOMAIN or no records; more: permerror */
#define SPF_MAX_MX_NAMES 10  /* MX records of one mx mechanism; more: permerror */
#define SPF_MAX_PTR_NAMES 10 /* PTR names looked at; further ones are ignored */
/* Our own caps against hostile input. */
#define SPF_MAX_RECORD 4096    /* bytes of one SPF record (its strings joined); more: permerror */
#define SPF_MAX_QUERIES 160    /* DNS queries per check (explanation included); more: permerror */
#define SPF_MAX_EXPANSION 4096 /* bytes of one macro expansion; a longer target name matches nothing */
#define SPF_MAX_DEPTH 12       /* record frames (include nesting); the term limit keeps it <= 11 */
#define SPF_TIME_LIMIT_MS 20000 /* default for spf_params.time_limit_ms (RFC 7208 4.6.4: >= 20 s) */

enum spf_result {
	SPF_RESULT_NONE = 0,
	SPF_RESULT_NEUTRAL,
	SPF_RESULT_PASS,
	SPF_RESULT_FAIL,
	SPF_RESULT_SOFTFAIL,
	SPF_RESULT_TEMPERROR,
	SPF_RESULT_PERMERROR,
};

/* "none" "neutral" "pass" "fail" "softfail" "temperror" "permerror" */
const char *spf_result_name(enum spf_result r);
/* The inverse (ASCII case-insensitive); -1 for an unknown name. */
int spf_result_parse(const char *name, enum spf_result *out);

enum spf_identity {
	SPF_IDENTITY_MAILFROM = 0, /* MAIL FROM; the null sender checks postmaster@HELO */
	SPF_IDENTITY_HELO,         /* the HELO name, as postmaster@HELO (RFC 7208 2.3) */
};

/* Borrowed by spf_check_start() for the duration of the call only (it copies what it keeps). */
struct spf_params {
	const char *ip;     /* client address "192.0.2.1" or "2001:db8::1"; IPv4-mapped IPv6 is IPv4 */
	const char *sender; /* MAIL FROM address without <>, or NULL/"" for the null sender;
	                     * an empty local part ("@example.com") becomes "postmaster" */
	const char *helo;   /* HELO/EHLO name (%{h}); NULL: "" */
	enum spf_identity identity;
	const char *receiver;            /* %{r}; NULL: "unknown" */
	const char *default_explanation; /* explanation of a fail without a usable exp=; NULL: "" */
	int64_t now;                     /* %{t}, seconds since the epoch; 0: time(NULL) */
	int64_t time_limit_ms;           /* for the whole check; 0: SPF_TIME_LIMIT_MS; exceeded:
	                                  * temperror (checked whenever a query is sent or answered) */
};

/* The verdict with its evidence. A value type: every string is NUL-terminated, "" when absent,
 * cut to its array, control and non-ASCII bytes shown as \xHH. */
struct spf_outcome {
	enum spf_result result;
	char domain[256];           /* <domain> checked: the sender's (or HELO) domain */
	char record[512];           /* the SPF record published at domain, "" when none was found */
	char mechanism[256];        /* the term that decided, as written: "-all", "ip4:192.0.2.0/24",
	                             * "include:_spf.example.net"; "" for none, the default result and errors */
	char mechanism_domain[256]; /* domain of the record holding it (not domain after redirect=) */
	char match_path[512];       /* how it matched: "redirect=_spf.example.com include:a.example.net
	                             * ip4:192.0.2.0/24" (redirects followed, then include: terms down
	                             * to the innermost mechanism that matched) */
	char explanation[512];      /* fail only: the exp= text, else params.default_explanation */
	char problem[256];          /* none, temperror, permerror: why ("no SPF record at example.com",
	                             * "too many DNS lookups (more than 10)", "syntax error in the record
	                             * of example.com: unknown mechanism 'moo'") */
	int dns_lookups;            /* DNS terms counted against SPF_MAX_DNS_TERMS */
	int void_lookups;           /* counted against SPF_MAX_VOID */
	int queries;                /* DNS queries sent, address lookups of MX/PTR names and exp= included */
};

/* out is borrowed for the duration of the call. */
typedef void spf_done_cb(void *arg, const struct spf_outcome *out);

/* ---- DNS ---- */

enum spf_rr_type { SPF_RR_A, SPF_RR_AAAA, SPF_RR_MX, SPF_RR_TXT, SPF_RR_PTR };

enum spf_dns_status {
	SPF_DNS_OK = 0,   /* records in rrs (OK with n == 0 counts as NODATA) */
	SPF_DNS_NXDOMAIN, /* RCODE 3 */
	SPF_DNS_NODATA,   /* RCODE 0, no records of the type */
	SPF_DNS_TIMEOUT,
	SPF_DNS_ERROR,    /* SERVFAIL, REFUSED, a malformed answer, a CNAME loop, ... */
	SPF_DNS_SHUTDOWN, /* the resolver is going away: the check ends at once with temperror */
};

struct spf_rr {
	const char *data; /* A/AAAA: the address as text; MX: the exchange; PTR: the name (trailing
	                   * dot allowed); TXT: one record, its strings joined (may hold NUL bytes) */
	size_t len;       /* bytes at data */
	int pref;         /* MX preference; unused otherwise */
};

/* rrs is borrowed for the duration of the call. */
typedef void spf_dns_answer_cb(void *cb_arg, enum spf_dns_status status, const struct spf_rr *rrs,
			       size_t n);

struct spf_dns_ops {
	/* Looks up name (no trailing dot; any byte but NUL, e.g. spaces). Calls answer exactly once,
	 * before returning or later (from the event loop). name is borrowed for the call. */
	void (*query)(void *ops_arg, enum spf_rr_type type, const char *name, spf_dns_answer_cb *answer,
		      void *cb_arg);
};

/* DNS through probe/dns.c, i.e. c-ares in the event loop (spf_ares.c): ops_arg is the
 * struct dns *. dns_free() ends the checks still running (temperror, "DNS resolver shut down"). */
extern const struct spf_dns_ops spf_ares_ops;

/* ---- checking ---- */

struct spf_check;

/* Starts check_host() for params. ops, ops_arg, done and arg are borrowed until done fires;
 * done fires exactly once. Returns the check's handle, valid until done fires, or NULL when
 * done has already fired (DNS that answers at once). */
struct spf_check *spf_check_start(const struct spf_params *params, const struct spf_dns_ops *ops,
				  void *ops_arg, spf_done_cb *done, void *arg);
/* Stops a check: done fires now, with temperror "cancelled"; c is invalid afterwards. A query
 * still in flight is left to answer into the void. spf_check_cancel(NULL) does nothing. */
void spf_check_cancel(struct spf_check *c);

/* ---- pieces, for tests and other checks ---- */

/* Whether txt[0..len) is an SPF record: "v=spf1" (any case) alone or followed by a space. */
bool spf_record_is_spf(const char *txt, size_t len);
/* Full syntax check of one SPF record (RFC 7208 4.6, 5, 6, 7.1), no DNS. Returns 0, or -1 with
 * the reason in problem (cut to problem_size; may be NULL). */
int spf_record_check(const char *txt, size_t len, char *problem, size_t problem_size);

/* Expands the macro-string s[0..len) (RFC 7208 7) for params with <domain> = domain and
 * %{p} = p (NULL: "unknown"). explain: s is explanation text (an exp= TXT record: spaces are
 * literal, letters c r t allowed). Returns an owned string (cut at SPF_MAX_EXPANSION bytes,
 * *cut then set when cut is not NULL), or NULL with the reason in problem for a syntax error
 * or params without a usable ip. */
char *spf_macro_expand(const char *s, size_t len, const struct spf_params *params, const char *domain,
		       const char *p, bool explain, bool *cut, char *problem, size_t problem_size);

#endif
