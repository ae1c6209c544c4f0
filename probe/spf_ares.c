/* The SPF evaluator's DNS on c-ares: spf_ares_ops, with probe/dns.c's struct dns as ops_arg.
 * Each query is one dns_query_raw() whose answer is parsed here with c-ares' own parsers
 * (TXT: ares_parse_txt_reply_ext, joining the strings of each record; LIBRARY-NOTES 3). */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns.h"
#include "spf.h"
#include "strbuf.h"
#include "xalloc.h"

struct sa_req {
	enum spf_rr_type type;
	spf_dns_answer_cb *answer;
	void *cb_arg;
};

struct sa_rrs {
	struct spf_rr *v;
	char **owned;
	size_t n, cap;
};

/* Adds a record (data copied). */
static void rrs_add(struct sa_rrs *a, const char *data, size_t len, int pref)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 8;
		a->v = xrealloc(a->v, a->cap * sizeof *a->v);
		a->owned = xrealloc(a->owned, a->cap * sizeof *a->owned);
	}
	char *copy = xmalloc(len + 1);
	if (len)
		memcpy(copy, data, len);
	copy[len] = '\0';
	a->owned[a->n] = copy;
	a->v[a->n].data = copy;
	a->v[a->n].len = len;
	a->v[a->n].pref = pref;
	a->n++;
}

static void rrs_free(struct sa_rrs *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->owned[i]);
	free(a->owned);
	free(a->v);
}

static enum spf_dns_status status_of(int st)
{
	switch (st) {
	case ARES_SUCCESS: return SPF_DNS_OK;
	case ARES_ENOTFOUND: return SPF_DNS_NXDOMAIN;
	case ARES_ENODATA: return SPF_DNS_NODATA;
	case ARES_ETIMEOUT: return SPF_DNS_TIMEOUT;
	case ARES_EDESTRUCTION: return SPF_DNS_SHUTDOWN;
	default: return SPF_DNS_ERROR;
	}
}

static int parse_addrs(const unsigned char *abuf, int alen, int family, struct sa_rrs *out)
{
	struct hostent *h = NULL;
	int st = family == AF_INET ? ares_parse_a_reply(abuf, alen, &h, NULL, NULL)
				   : ares_parse_aaaa_reply(abuf, alen, &h, NULL, NULL);
	if (st != ARES_SUCCESS)
		return st;
	for (char **a = h->h_addr_list; a && *a; a++) {
		char ip[INET6_ADDRSTRLEN];
		if (inet_ntop(family, *a, ip, sizeof ip))
			rrs_add(out, ip, strlen(ip), 0);
	}
	ares_free_hostent(h);
	return ARES_SUCCESS;
}

static int parse_mx(const unsigned char *abuf, int alen, struct sa_rrs *out)
{
	struct ares_mx_reply *mx = NULL;
	int st = ares_parse_mx_reply(abuf, alen, &mx);
	if (st != ARES_SUCCESS)
		return st;
	for (struct ares_mx_reply *m = mx; m; m = m->next)
		rrs_add(out, m->host, strlen(m->host), m->priority);
	ares_free_data(mx);
	return ARES_SUCCESS;
}

static int parse_txt(const unsigned char *abuf, int alen, struct sa_rrs *out)
{
	struct ares_txt_ext *txt = NULL;
	struct strbuf sb;
	bool open = false;
	int st = ares_parse_txt_reply_ext(abuf, alen, &txt);
	if (st != ARES_SUCCESS)
		return st;
	sb_init(&sb);
	for (struct ares_txt_ext *t = txt; t; t = t->next) {
		if (t->record_start && open) {
			rrs_add(out, sb.s, sb.len, 0);
			sb_reset(&sb);
		}
		open = true;
		sb_appendn(&sb, (const char *)t->txt, t->length);
	}
	if (open)
		rrs_add(out, sb.s, sb.len, 0);
	sb_fini(&sb);
	ares_free_data(txt);
	return ARES_SUCCESS;
}

static int parse_ptr(const unsigned char *abuf, int alen, struct sa_rrs *out)
{
	struct hostent *h = NULL;
	unsigned char dummy[4] = { 0 }; /* copied into h_addr_list, not looked at */
	int st = ares_parse_ptr_reply(abuf, alen, dummy, sizeof dummy, AF_INET, &h);
	if (st != ARES_SUCCESS)
		return st;
	/* c-ares 1.18 lists every PTR name, in answer order, in h_aliases (h_name repeats one) */
	if (h->h_aliases && h->h_aliases[0]) {
		for (char **a = h->h_aliases; *a; a++)
			rrs_add(out, *a, strlen(*a), 0);
	} else if (h->h_name) {
		rrs_add(out, h->h_name, strlen(h->h_name), 0);
	}
	ares_free_hostent(h);
	return ARES_SUCCESS;
}

static void sa_on_raw(void *arg, int status, const unsigned char *abuf, int alen, double ms)
{
	struct sa_req *r = arg;
	struct sa_rrs rrs = { 0 };
	(void)ms;

	if (status == ARES_SUCCESS) {
		switch (r->type) {
		case SPF_RR_A: status = parse_addrs(abuf, alen, AF_INET, &rrs); break;
		case SPF_RR_AAAA: status = parse_addrs(abuf, alen, AF_INET6, &rrs); break;
		case SPF_RR_MX: status = parse_mx(abuf, alen, &rrs); break;
		case SPF_RR_TXT: status = parse_txt(abuf, alen, &rrs); break;
		case SPF_RR_PTR: status = parse_ptr(abuf, alen, &rrs); break;
		}
		if (status != ARES_SUCCESS && status != ARES_ENODATA)
			status = ARES_EBADRESP;
	}
	if (status == ARES_SUCCESS && rrs.n == 0)
		status = ARES_ENODATA;
	r->answer(r->cb_arg, status_of(status), status == ARES_SUCCESS ? rrs.v : NULL,
		  status == ARES_SUCCESS ? rrs.n : 0);
	rrs_free(&rrs);
	free(r);
}

static void sa_query(void *ops_arg, enum spf_rr_type type, const char *name, spf_dns_answer_cb *answer,
		     void *cb_arg)
{
	static const int qtype[] = { [SPF_RR_A] = ns_t_a, [SPF_RR_AAAA] = ns_t_aaaa, [SPF_RR_MX] = ns_t_mx,
				     [SPF_RR_TXT] = ns_t_txt, [SPF_RR_PTR] = ns_t_ptr };
	struct sa_req *r = xmalloc(sizeof *r);
	r->type = type;
	r->answer = answer;
	r->cb_arg = cb_arg;
	dns_query_raw(ops_arg, name, qtype[type], sa_on_raw, r);
}

const struct spf_dns_ops spf_ares_ops = { sa_query };
