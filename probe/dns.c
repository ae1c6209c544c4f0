#include "dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "evloop.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

#define DNS_MAX_IN_FLIGHT 150

enum dns_req_kind { DNS_REQ_MX, DNS_REQ_ADDR, DNS_REQ_RAW };

struct dns_req {
	struct dns *dns;
	enum dns_req_kind kind;
	char *name;
	dns_mx_cb *mx_cb;
	dns_addr_cb *addr_cb;
	dns_raw_cb *raw_cb;
	int type;             /* DNS_REQ_RAW: the query type */
	void *arg;
	int64_t t_start_us;
	struct dns_req *next; /* waiting queue */
};

struct dns {
	struct evloop *loop;
	ares_channel ch;
	struct evtimer timer;
	int in_flight;
	int peak;             /* the most in flight at once */
	struct dns_req *wait_head, *wait_tail;
};

static void dns_rearm(struct dns *dns)
{
	struct timeval tv, *tvp = ares_timeout(dns->ch, NULL, &tv);
	if (!tvp) {
		evtimer_stop(dns->loop, &dns->timer);
		return;
	}
	evtimer_start(dns->loop, &dns->timer, mono_us() + (int64_t)tvp->tv_sec * 1000000 + tvp->tv_usec);
}

static void dns_on_timer(void *arg)
{
	struct dns *dns = arg;
	ares_process_fd(dns->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_rearm(dns);
}

static void dns_on_fd(void *arg, int fd, unsigned events)
{
	struct dns *dns = arg;
	ares_process_fd(dns->ch, (events & (EVLOOP_READ | EVLOOP_ERROR)) ? fd : ARES_SOCKET_BAD,
			(events & EVLOOP_WRITE) ? fd : ARES_SOCKET_BAD);
	dns_rearm(dns);
}

static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *dns = data;
	unsigned ev = (readable ? EVLOOP_READ : 0) | (writable ? EVLOOP_WRITE : 0);
	if (ev)
		evloop_fd_set(dns->loop, fd, ev, dns_on_fd, dns);
	else
		evloop_fd_del(dns->loop, fd);
}

struct dns *dns_new(struct evloop *loop, char *const *servers, size_t n_servers, int64_t timeout_ms, char **err)
{
	struct ares_options opts;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
		   ARES_OPT_DOMAINS | ARES_OPT_FLAGS;
	struct dns *dns = xcalloc(1, sizeof *dns);
	char lookups[] = "b";

	memset(&opts, 0, sizeof opts);
	opts.sock_state_cb = dns_sock_state;
	opts.sock_state_cb_data = dns;
	/* c-ares doubles the timeout on the retry: a third, then two thirds, make up timeout_ms. */
	opts.timeout = (int)(timeout_ms > 3 ? timeout_ms / 3 : 1);
	opts.tries = 2;
	opts.lookups = lookups;
	opts.ndomains = 0;  /* names are absolute: no search list */
	opts.flags = ARES_FLAG_NOSEARCH;
	dns->loop = loop;
	evtimer_init(&dns->timer, dns_on_timer, dns);
	int rc = ares_init_options(&dns->ch, &opts, mask);
	if (rc != ARES_SUCCESS) {
		*err = xasprintf("c-ares init: %s", ares_strerror(rc));
		free(dns);
		return NULL;
	}
	if (n_servers) {
		struct strbuf csv;
		sb_init(&csv);
		for (size_t i = 0; i < n_servers; i++)
			sb_appendf(&csv, "%s%s", i ? "," : "", servers[i]);
		rc = ares_set_servers_ports_csv(dns->ch, csv.s);
		if (rc != ARES_SUCCESS) {
			*err = xasprintf("DNS servers \"%s\": %s", csv.s, ares_strerror(rc));
			sb_fini(&csv);
			ares_destroy(dns->ch);
			free(dns);
			return NULL;
		}
		sb_fini(&csv);
	}
	return dns;
}

static void req_free(struct dns_req *r)
{
	free(r->name);
	free(r);
}

void dns_free(struct dns *dns)
{
	if (!dns)
		return;
	/* Queued requests never started: fail them like c-ares fails the started ones. */
	while (dns->wait_head) {
		struct dns_req *r = dns->wait_head;
		dns->wait_head = r->next;
		if (r->kind == DNS_REQ_MX)
			r->mx_cb(r->arg, ARES_EDESTRUCTION, NULL, 0, 0);
		else if (r->kind == DNS_REQ_RAW)
			r->raw_cb(r->arg, ARES_EDESTRUCTION, NULL, 0, 0);
		else
			r->addr_cb(r->arg, ARES_EDESTRUCTION, NULL, 0, 0);
		req_free(r);
	}
	ares_destroy(dns->ch);
	evtimer_stop(dns->loop, &dns->timer);
	free(dns);
}

static double req_ms(const struct dns_req *r) { return (double)(mono_us() - r->t_start_us) / 1000.0; }

static void dns_start(struct dns *dns, struct dns_req *r);

static void dns_req_done(struct dns *dns)
{
	dns->in_flight--;
	while (dns->wait_head && dns->in_flight < DNS_MAX_IN_FLIGHT) {
		struct dns_req *r = dns->wait_head;
		dns->wait_head = r->next;
		if (!dns->wait_head)
			dns->wait_tail = NULL;
		dns_start(dns, r);
	}
}

static int mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;
	return x->pref - y->pref;
}

static void on_mx(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_req *r = arg;
	struct dns *dns = r->dns;
	struct ares_mx_reply *mx = NULL;
	struct dns_mx *v = NULL;
	size_t n = 0;
	(void)timeouts;

	if (status == ARES_SUCCESS)
		status = ares_parse_mx_reply(abuf, alen, &mx);
	if (status == ARES_SUCCESS) {
		for (struct ares_mx_reply *m = mx; m; m = m->next)
			n++;
		v = xcalloc(n ? n : 1, sizeof *v);
		n = 0;
		for (struct ares_mx_reply *m = mx; m; m = m->next) {
			v[n].host = xstrdup(m->host);
			size_t l = strlen(v[n].host);
			if (l > 1 && v[n].host[l - 1] == '.')
				v[n].host[l - 1] = '\0';
			v[n].pref = m->priority;
			n++;
		}
		/* insertion sort keeps answer order among equal preferences (qsort is not stable) */
		for (size_t i = 1; i < n; i++)
			for (size_t k = i; k > 0 && mx_cmp(&v[k - 1], &v[k]) > 0; k--) {
				struct dns_mx t = v[k];
				v[k] = v[k - 1];
				v[k - 1] = t;
			}
		ares_free_data(mx);
		if (n == 0)
			status = ARES_ENODATA;
	}
	if (status != ARES_EDESTRUCTION)
		dns_req_done(dns);
	r->mx_cb(r->arg, status, v, n, req_ms(r));
	for (size_t i = 0; i < n; i++)
		free(v[i].host);
	free(v);
	req_free(r);
}

static void on_addr(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dns_req *r = arg;
	struct dns *dns = r->dns;
	struct dns_addr *v = NULL;
	size_t n = 0;
	(void)timeouts;

	if (status == ARES_SUCCESS && res) {
		for (struct ares_addrinfo_node *a = res->nodes; a; a = a->ai_next)
			n++;
		v = xcalloc(n ? n : 1, sizeof *v);
		n = 0;
		/* IPv4 first, then IPv6: the order an operator reads in the results */
		for (int pass = 0; pass < 2; pass++)
			for (struct ares_addrinfo_node *a = res->nodes; a; a = a->ai_next) {
				int fam = pass == 0 ? AF_INET : AF_INET6;
				if (a->ai_family != fam)
					continue;
				const void *src = fam == AF_INET ? (const void *)&((struct sockaddr_in *)(void *)a->ai_addr)->sin_addr
								 : (const void *)&((struct sockaddr_in6 *)(void *)a->ai_addr)->sin6_addr;
				bool dup = false;
				char ip[64];
				inet_ntop(fam, src, ip, sizeof ip);
				for (size_t i = 0; i < n; i++)
					dup |= strcmp(v[i].ip, ip) == 0;
				if (dup)
					continue;
				v[n].family = fam;
				memcpy(v[n].ip, ip, sizeof ip);
				n++;
			}
		if (n == 0)
			status = ARES_ENODATA;
	}
	if (res)
		ares_freeaddrinfo(res);
	if (status != ARES_EDESTRUCTION)
		dns_req_done(dns);
	r->addr_cb(r->arg, status, v, n, req_ms(r));
	free(v);
	req_free(r);
}

static void on_raw(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

static void dns_start(struct dns *dns, struct dns_req *r)
{
	if (++dns->in_flight > dns->peak)
		dns->peak = dns->in_flight;
	if (r->kind == DNS_REQ_RAW) {
		ares_query(dns->ch, r->name, ns_c_in, r->type, on_raw, r);
	} else if (r->kind == DNS_REQ_MX) {
		ares_query(dns->ch, r->name, ns_c_in, ns_t_mx, on_mx, r);
	} else {
		struct ares_addrinfo_hints hints;
		memset(&hints, 0, sizeof hints);
		hints.ai_family = AF_UNSPEC;
		hints.ai_flags = ARES_AI_NOSORT;
		ares_getaddrinfo(dns->ch, r->name, NULL, &hints, on_addr, r);
	}
	dns_rearm(dns);
}

/* Starts r, or queues it behind the others while the cap is reached. */
static void dns_go(struct dns *dns, struct dns_req *r)
{
	if (dns->in_flight >= DNS_MAX_IN_FLIGHT) {
		if (dns->wait_tail)
			dns->wait_tail->next = r;
		else
			dns->wait_head = r;
		dns->wait_tail = r;
		return;
	}
	dns_start(dns, r);
}

/* A request of kind for name, timed from now; the caller sets its callback and dns_go()es it. */
static struct dns_req *req_new(struct dns *dns, enum dns_req_kind kind, const char *name, void *arg)
{
	struct dns_req *r = xcalloc(1, sizeof *r);
	r->dns = dns;
	r->kind = kind;
	r->name = xstrdup(name);
	r->arg = arg;
	r->t_start_us = mono_us();
	return r;
}

void dns_lookup_mx(struct dns *dns, const char *domain, dns_mx_cb *cb, void *arg)
{
	struct dns_req *r = req_new(dns, DNS_REQ_MX, domain, arg);
	r->mx_cb = cb;
	dns_go(dns, r);
}

void dns_lookup_addr(struct dns *dns, const char *host, dns_addr_cb *cb, void *arg)
{
	struct dns_req *r = req_new(dns, DNS_REQ_ADDR, host, arg);
	r->addr_cb = cb;
	dns_go(dns, r);
}

const char *dns_strerror(int status)
{
	switch (status) {
	case ARES_ENOTFOUND: return "NXDOMAIN (name does not exist)";
	case ARES_ENODATA: return "no records of that type";
	case ARES_ETIMEOUT: return "DNS timeout";
	case ARES_ECONNREFUSED: return "DNS server refused the connection";
	case ARES_ESERVFAIL: return "SERVFAIL";
	case ARES_EREFUSED: return "DNS query refused";
	default: return ares_strerror(status);
	}
}

/* ---- raw queries of any type (dns_query_raw) ---- */

static void on_raw(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_req *r = arg;
	(void)timeouts;
	if (status != ARES_EDESTRUCTION)
		dns_req_done(r->dns);
	r->raw_cb(r->arg, status, status == ARES_SUCCESS ? abuf : NULL, status == ARES_SUCCESS ? alen : 0, req_ms(r));
	req_free(r);
}

void dns_query_raw(struct dns *dns, const char *name, int type, dns_raw_cb *cb, void *arg)
{
	struct dns_req *r = req_new(dns, DNS_REQ_RAW, name, arg);
	r->type = type;
	r->raw_cb = cb;
	dns_go(dns, r);
}

int dns_peak(const struct dns *dns)
{
	return dns->peak;
}
