/* DNS trust checks of one target (a seed, or a domain), all asynchronous on c-ares in the event
 * loop (probe/dns.c): the recipient side (MX resolution, its time, MX hosts without addresses,
 * whether the first MX answers on the probe's port) and the sending identity (the sending IP, its
 * PTR and forward-confirmed rDNS, the EHLO name, SPF of the envelope domain for that IP, the From
 * domain's DMARC record with the organisational-domain fallback and SPF alignment, DKIM keys of
 * the configured selectors, DNS blocklists).
 *
 * Engine-independent: the `dns` command runs it for each target; a probe can run it with its
 * actual local IP (CURLINFO_LOCAL_IP) as params.ip. The result is a value-type record (typed
 * fields for a diagnosis, plus one pass/warn/fail/error line per check with its evidence).
 *
 * Queries of every check running on one context share a cap of DNSCHECK_MAX_IN_FLIGHT (the
 * SPF evaluator's included), below probe/dns.c's own cap, so that probes' lookups still get
 * through. Every answer is untrusted: names, records and counts are bounded (dnsrec.h). */
#ifndef MON_PROBE_DNSCHECK_H
#define MON_PROBE_DNSCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsrec.h"
#include "spf.h"

struct evloop;
struct dns;
struct json;
struct dnscheck_ctx;
struct dnscheck;

#define DNSCHECK_MAX_IN_FLIGHT 100 /* DNS queries of one context in flight; more wait */
#define DNSCHECK_MAX_TCP 16        /* mx_port connections of one context at a time; more wait */
#define DNSCHECK_MAX_MX 10         /* MX hosts looked at (by preference); more are counted */
#define DNSCHECK_MAX_ADDRS 8       /* addresses kept per name */
#define DNSCHECK_MAX_PTR 10        /* PTR names kept and confirmed */
#define DNSCHECK_MAX_PORT_TRIES 3  /* MX addresses mx_port tries, in preference order */
#define DNSCHECK_MX_SLOW_MS 1000   /* mx_time: an MX answer slower than this is a warning */
#define DNSCHECK_NAME 272          /* bytes of a check name ("dnsbl:" + a zone) */
#define DNSCHECK_DETAIL 1024       /* bytes of a check's detail */

enum dnscheck_status { DNSCHECK_PASS = 0, DNSCHECK_WARN, DNSCHECK_FAIL, DNSCHECK_ERROR };

/* "pass" "warn" "fail" "error" */
const char *dnscheck_status_name(enum dnscheck_status s);

/* Borrowed by dnscheck_start() for the call only (it copies what it keeps). */
struct dnscheck_params {
	const char *target;     /* label of the report: a seed name or a domain */
	const char *domain;     /* recipient domain: checks mx, mx_time (and mx_port); NULL: none */
	int port;               /* mx_port: connect to the first MX hosts on this port and read the
	                         * greeting; 0: no mx_port check */
	int64_t connect_timeout_ms; /* mx_port: TCP connect (0: 10 s) */
	int64_t banner_timeout_ms;  /* mx_port: connect to greeting (0: 10 s) */
	const char *ip;         /* the sending IP when known (a probe's local IP); NULL: found below */
	const char *ip_how;     /* with ip: how it was found, for the ptr detail; NULL: "given" */
	const char *ip_unknown; /* without ip, source_ip, relay_host and domain: why the sending IP
	                         * is unknown, for the checks that need it; NULL: a generic reason */
	const char *source_ip;  /* the configured local address: the sending IP when ip is NULL, and
	                         * bound for mx_port */
	const char *relay_host; /* relay mode: without ip, the sending IP is this host's first
	                         * address (name or IP literal) */
	/* Without ip, source_ip and relay_host: the local address the kernel would use toward the
	 * first MX address (a UDP socket connect()ed to it, getsockname(): nothing is sent). */
	const char *helo;       /* EHLO name or address literal; NULL: no helo check */
	const char *mail_from;  /* envelope sender, also the From: address; NULL: no spf, spf_align,
	                         * dmarc, dkim checks */
	char *const *dkim_selectors; /* dkim:SELECTOR checks at SELECTOR._domainkey.FROM-DOMAIN */
	size_t n_dkim_selectors;
	char *const *dnsbl;          /* dnsbl:ZONE checks */
	size_t n_dnsbl;
};

struct mon_conf;
struct conf_sender;

/* Fills the sending-identity fields of p from sender s of conf (both borrowed; p keeps pointers
 * into them): helo, mail_from, source_ip, dkim_selectors and conf's dns.dnsbl zones, and
 * relay_host (relay mode) or the mx_port port (mx mode; 0 in relay mode). The other fields are
 * left alone. What
 * `mailcanary dns` checks for a seed's sender; a probe then sets ip to its session's local IP and
 * clears relay_host and port. */
void dnscheck_params_sender(struct dnscheck_params *p, const struct mon_conf *conf, const struct conf_sender *s);

struct dnscheck_item {
	char name[DNSCHECK_NAME]; /* mx mx_time mx_port ptr fcrdns helo spf spf_align dmarc
	                           * dkim:SELECTOR dnsbl:ZONE */
	enum dnscheck_status status;
	char detail[DNSCHECK_DETAIL]; /* the evidence: the record, the IP, the answer */
};

/* Lookup status fields: 0 = answered with data, else a c-ares status (ARES_ENOTFOUND,
 * ARES_ENODATA, ARES_ETIMEOUT, ...), or -1 = not looked up. */

struct dnscheck_addrs {
	int status;
	char ip[DNSCHECK_MAX_ADDRS][46]; /* IPv4 first */
	size_t n;
};

struct dnscheck_mx {
	char host[DNSREC_MAX_NAME + 1]; /* shown safe */
	int pref;
	struct dnscheck_addrs addrs;
};

struct dnscheck_dkim {
	char selector[DNSREC_MAX_NAME + 1];
	char name[DNSREC_MAX_NAME + 1]; /* SELECTOR._domainkey.DOMAIN */
	int status;
	bool valid;            /* a key record parsed */
	struct dkim_key key;
	char record[512];      /* the TXT record (first one that parsed, else the first), shown safe */
	char problem[256];
	size_t n_records;
};

struct dnscheck_dnsbl {
	char zone[DNSREC_MAX_NAME + 1];
	char query[DNSREC_MAX_NAME + 1];
	int status;                 /* of the A query */
	struct dnsbl_answer answer;
	char reason[256];           /* the TXT record of a listing, shown safe; "" when none */
};

/* The result: a value type except the three arrays, which are borrowed (valid for the done call
 * only). Strings are NUL-terminated, "" when absent. */
struct dnscheck_result {
	char target[256];
	char domain[DNSREC_MAX_NAME + 1];

	/* recipient side */
	int mx_status;
	double mx_ms;           /* time of the MX query */
	bool null_mx;           /* "0 ." (RFC 7505) */
	bool implicit_mx;       /* no MX records: the domain's own addresses (RFC 5321 5.1) */
	struct dnscheck_mx mx[DNSCHECK_MAX_MX];
	size_t n_mx;
	size_t n_mx_more;       /* MX records beyond DNSCHECK_MAX_MX, not looked at */
	char port_reply[256];   /* mx_port: the greeting line, shown safe */
	char port_addr[64];     /* mx_port: the address that answered (or was tried last) */
	int port_code;          /* mx_port: greeting reply code, 0 none */

	/* sending identity */
	char ip[46];            /* "" when it could not be found */
	char ip_how[96];        /* "source_ip", "route toward 192.0.2.1", "relay host smtp.x", ... */
	char ip_problem[160];   /* why ip is "" */
	char ptr[DNSCHECK_MAX_PTR][DNSREC_MAX_NAME + 1]; /* PTR names, shown safe */
	size_t n_ptr;
	int ptr_status;
	struct dnscheck_addrs ptr_addrs[DNSCHECK_MAX_PTR]; /* forward lookups of the PTR names */
	bool fcrdns;            /* a PTR name resolves back to ip */
	char helo[DNSREC_MAX_NAME + 1];
	struct dnscheck_addrs helo_addrs;
	bool helo_matches;      /* the EHLO name (or literal) has ip among its addresses */
	char from_domain[DNSREC_MAX_NAME + 1];
	char org_domain[DNSREC_MAX_NAME + 1];
	bool spf_done;
	struct spf_outcome spf;
	int dmarc_status;       /* of the query that decided (0: a record was found) */
	bool dmarc_valid;
	bool dmarc_org;         /* found at the organisational domain */
	char dmarc_at[DNSREC_MAX_NAME + 8];  /* _dmarc.DOMAIN where it was found (or looked last) */
	char dmarc_record[512]; /* shown safe */
	char dmarc_problem[256];
	struct dmarc_record dmarc;
	bool spf_aligned;
	struct dnscheck_dkim *dkim;   /* one per selector */
	size_t n_dkim;
	struct dnscheck_dnsbl *dnsbl; /* one per zone */
	size_t n_dnsbl;

	/* every check, in the order above (see mailcanary(8), DNS CHECKS) */
	struct dnscheck_item *items;
	size_t n_items;
	enum dnscheck_status worst;
	bool cancelled;
};

/* r is borrowed for the duration of the call. */
typedef void dnscheck_done_cb(void *arg, const struct dnscheck_result *r);

/* A context for the checks of one loop and resolver (both borrowed; free the context before
 * them: a resolver freed first ends the running checks with "resolver shut down" errors). It owns the public suffix list (libpsl: the newest of the system file and the built-in
 * list). timeout_ms: the resolver's query timeout (dns.timeout), quoted in timeout findings. */
struct dnscheck_ctx *dnscheck_ctx_new(struct evloop *loop, struct dns *dns, int64_t timeout_ms);
/* Cancels the checks still running (their done fires), forgets the queries still in flight
 * (they answer into the void). dnscheck_ctx_free(NULL) does nothing. */
void dnscheck_ctx_free(struct dnscheck_ctx *ctx);
/* The most queries the context had in flight at once so far (never above DNSCHECK_MAX_IN_FLIGHT). */
int dnscheck_ctx_peak(const struct dnscheck_ctx *ctx);

/* Starts every check that params allows. done fires exactly once, from the event loop (never
 * from within dnscheck_start). Returns the handle, valid until done fires. */
struct dnscheck *dnscheck_start(struct dnscheck_ctx *ctx, const struct dnscheck_params *params,
				dnscheck_done_cb *done, void *arg);
/* Stops a check run: done fires now with what was found, the unfinished checks as errors
 * ("cancelled"); the handle is invalid afterwards. dnscheck_cancel(NULL) does nothing. */
void dnscheck_cancel(struct dnscheck *c);

/* Writes { "target": ..., "domain": ..., "ip": ..., "checks": [ { "name", "status", "detail" } ] }
 * (DESIGN.md "DNS checks"). */
void dnscheck_result_json(const struct dnscheck_result *r, struct json *j);

#endif
