/* Asynchronous DNS on c-ares, driven by the event loop (ARES_OPT_SOCK_STATE_CB + one timer).
 * Caps queries in flight (c-ares 1.18 has no per-socket cap: LIBRARY-NOTES 3). */
#ifndef MON_PROBE_DNS_H
#define MON_PROBE_DNS_H

#include <stddef.h>
#include <stdint.h>

struct evloop;
struct dns;

struct dns_mx {
	char *host;  /* owned, without trailing dot */
	int pref;
};

struct dns_addr {
	int family;     /* AF_INET or AF_INET6 */
	char ip[64];    /* text form */
};

/* status: 0 ok, else a c-ares status (ARES_ENOTFOUND, ARES_ENODATA, ARES_ETIMEOUT, ...).
 * Arrays are borrowed for the duration of the callback only. */
typedef void dns_mx_cb(void *arg, int status, const struct dns_mx *mx, size_t n, double ms);
typedef void dns_addr_cb(void *arg, int status, const struct dns_addr *addrs, size_t n, double ms);

/* servers: "ip[:port]" entries (NULL/0: system resolv.conf). timeout_ms: per query try.
 * Returns owned, or NULL with *err (owned) set. */
struct dns *dns_new(struct evloop *loop, char *const *servers, size_t n_servers, int64_t timeout_ms,
		    char **err);
void dns_free(struct dns *dns); /* pending callbacks fire with ARES_EDESTRUCTION */
/* The most queries (lookups and raw queries) that were in flight at once: never above 150. */
int dns_peak(const struct dns *dns);

/* MX records sorted by preference (ties keep answer order). */
void dns_lookup_mx(struct dns *dns, const char *domain, dns_mx_cb *cb, void *arg);
/* A and AAAA records (IPv4 first), DNS only (no hosts file). */
void dns_lookup_addr(struct dns *dns, const char *host, dns_addr_cb *cb, void *arg);

/* "NXDOMAIN", "no data", "timeout", ... */
const char *dns_strerror(int status);

/* Any query type (ns_t_txt, ns_t_ptr, ...; class IN), added for the SPF evaluator (spf_ares.c):
 * cb gets the c-ares status (ARES_SUCCESS, ARES_ENODATA, ARES_ENOTFOUND, ARES_ETIMEOUT, ...)
 * and, on ARES_SUCCESS, the raw answer (borrowed for the call) to parse with ares_parse_*_reply.
 * Counts toward the in-flight cap and waits in its queue like the lookups above, so that the
 * process never has more than 150 queries out (issue 6). ms includes the wait. */
typedef void dns_raw_cb(void *arg, int status, const unsigned char *abuf, int alen, double ms);
void dns_query_raw(struct dns *dns, const char *name, int type, dns_raw_cb *cb, void *arg);

#endif
