/* DNS trust checks of one target on c-ares in the event loop; see dnscheck.h.
 *
 * A run starts every lookup it can at once (MX, EHLO name, DMARC, DKIM keys, and with a known
 * sending IP its PTR, SPF and DNSBL queries); answers start the lookups that depend on them (MX
 * host addresses, then the route to the first MX, which gives the sending IP and the mx_port
 * connection; PTR names, then their addresses). `pending` counts the work outstanding; when it
 * drops to zero a zero-delay timer assembles the items and fires done. Queries go through the
 * context's queue (DNSCHECK_MAX_IN_FLIGHT); a run holds a reference for each of its own queries,
 * so an answer that arrives after a cancel finds the run still allocated (and is dropped). */
#include "dnscheck.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <errno.h>
#include <libpsl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "conf.h"
#include "dns.h"
#include "evloop.h"
#include "json.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

#define ST_PENDING (-1) /* a lookup status not known yet (or never started) */
#define PORT_DEFAULT_TIMEOUT_MS 10000
#define MAX_TXT_RECORDS 64 /* TXT records of one answer looked at */

const char *dnscheck_status_name(enum dnscheck_status s)
{
	switch (s) {
	case DNSCHECK_PASS: return "pass";
	case DNSCHECK_WARN: return "warn";
	case DNSCHECK_FAIL: return "fail";
	case DNSCHECK_ERROR: return "error";
	}
	return "error";
}

/* ---- the context and its query queue ---- */

struct dnscheck;
typedef void dq_cb(struct dnscheck *c, uintptr_t tag, int status, const unsigned char *abuf, int alen, double ms);

struct dq {
	struct dnscheck_ctx *ctx; /* NULL once the context is gone */
	struct dnscheck *run;     /* own queries (holds a reference); NULL for the SPF evaluator's */
	dq_cb *cb;
	uintptr_t tag;
	spf_dns_answer_cb *spf_answer;
	void *spf_arg;
	enum spf_rr_type spf_type;
	int type;
	char *name;
	struct dq *prev, *next; /* the wait queue, or the in-flight list */
};

struct dnscheck_ctx {
	struct evloop *loop;
	struct dns *dns;
	psl_ctx_t *psl;
	int64_t timeout_ms;
	int in_flight, peak;
	bool dying; /* the resolver is being destroyed (an answer said so): no more queries */
	struct dq *wait_head, *wait_tail;
	struct dq *fly;
	int tcp_active;
	struct dnscheck *tcp_head, *tcp_tail; /* runs waiting for a connection slot */
	struct dnscheck *runs;                /* runs not finished */
};

/* An A + AAAA lookup of one name, embedded in the run. */
enum look_kind { LOOK_MX, LOOK_HELO, LOOK_RELAY, LOOK_PTR };

struct look {
	enum look_kind kind;
	size_t idx;
	struct dnscheck_addrs *out;
	char v4[DNSCHECK_MAX_ADDRS][46], v6[DNSCHECK_MAX_ADDRS][46];
	size_t n4, n6;
	int st4, st6;
	int left;
};

enum port_stage { PORT_IDLE = 0, PORT_WAITING, PORT_CONNECTING, PORT_READING, PORT_DONE };

struct dnscheck {
	struct dnscheck_ctx *ctx; /* NULL once the context is gone (the run is finished then) */
	dnscheck_done_cb *done;
	void *arg;
	int refs;
	int pending;
	bool finished;
	struct evtimer finish_timer;
	struct dnscheck *prev, *next; /* ctx->runs */
	struct dnscheck_result r;

	char *source_ip, *relay_host, *mail_from;
	bool want_mx, want_port, want_helo, want_mail, want_ip;
	bool helo_literal;
	bool ip_started;    /* the IP-dependent checks were started (or found impossible) */
	bool need_route;    /* the sending IP comes from the route toward the first MX */
	int mx_left;        /* MX host address lookups outstanding */
	int ptr_left;       /* PTR name address lookups outstanding */
	struct look mx_look[DNSCHECK_MAX_MX], ptr_look[DNSCHECK_MAX_PTR], helo_look, relay_look;
	struct dnscheck_addrs relay_addrs;
	struct spf_check *spf;
	bool dmarc_pending;
	bool *dkim_pending, *dnsbl_pending;

	/* mx_port */
	enum port_stage port_stage;
	int port;
	int64_t connect_ms, banner_ms;
	char port_addrs[DNSCHECK_MAX_PORT_TRIES][46];
	char port_hosts[DNSCHECK_MAX_PORT_TRIES][DNSREC_MAX_NAME + 1];
	size_t n_port_addrs, port_try;
	int port_fd;
	struct evtimer port_timer;
	char port_buf[512];
	size_t port_len;
	bool port_first_ok; /* the first address tried answered 2xx */
	bool port_ok;
	struct strbuf port_log;
	struct dnscheck *tcp_next;
	bool tcp_slot;
};

static void dq_pump(struct dnscheck_ctx *ctx);
static void run_unref(struct dnscheck *c);
static void work_done(struct dnscheck *c);
static void port_slot_free(struct dnscheck *c);

static void fly_unlink(struct dnscheck_ctx *ctx, struct dq *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		ctx->fly = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	ctx->in_flight--;
}

static void dq_free(struct dq *q)
{
	free(q->name);
	free(q);
}

static void dq_on_raw(void *arg, int status, const unsigned char *abuf, int alen, double ms)
{
	struct dq *q = arg;
	struct dnscheck_ctx *ctx = q->ctx;
	if (ctx) {
		fly_unlink(ctx, q);
		ctx->dying |= status == ARES_EDESTRUCTION;
	}
	if (q->run) {
		struct dnscheck *c = q->run;
		if (!c->finished)
			q->cb(c, q->tag, status, abuf, alen, ms);
		run_unref(c);
	}
	dq_free(q);
	if (ctx)
		dq_pump(ctx);
}

static void dq_on_spf(void *arg, enum spf_dns_status st, const struct spf_rr *rrs, size_t n)
{
	struct dq *q = arg;
	struct dnscheck_ctx *ctx = q->ctx;
	if (ctx) {
		fly_unlink(ctx, q);
		ctx->dying |= st == SPF_DNS_SHUTDOWN;
	}
	q->spf_answer(q->spf_arg, st, rrs, n);
	dq_free(q);
	if (ctx)
		dq_pump(ctx);
}

static void dq_start(struct dnscheck_ctx *ctx, struct dq *q)
{
	if (++ctx->in_flight > ctx->peak)
		ctx->peak = ctx->in_flight;
	q->prev = NULL;
	q->next = ctx->fly;
	if (ctx->fly)
		ctx->fly->prev = q;
	ctx->fly = q;
	/* the answer may come before this returns (c-ares fails some sends at once) */
	if (ctx->dying)
		q->spf_answer ? dq_on_spf(q, SPF_DNS_SHUTDOWN, NULL, 0) : dq_on_raw(q, ARES_EDESTRUCTION, NULL, 0, 0);
	else if (q->spf_answer)
		spf_ares_ops.query(ctx->dns, q->spf_type, q->name, dq_on_spf, q);
	else
		dns_query_raw(ctx->dns, q->name, q->type, dq_on_raw, q);
}

static void dq_pump(struct dnscheck_ctx *ctx)
{
	while (ctx->wait_head && ctx->in_flight < DNSCHECK_MAX_IN_FLIGHT) {
		struct dq *q = ctx->wait_head;
		ctx->wait_head = q->next;
		if (ctx->wait_head)
			ctx->wait_head->prev = NULL;
		else
			ctx->wait_tail = NULL;
		dq_start(ctx, q);
	}
}

static void dq_submit(struct dnscheck_ctx *ctx, struct dq *q)
{
	q->ctx = ctx;
	if (ctx->in_flight < DNSCHECK_MAX_IN_FLIGHT && !ctx->wait_head) {
		dq_start(ctx, q);
		return;
	}
	q->prev = ctx->wait_tail;
	q->next = NULL;
	if (ctx->wait_tail)
		ctx->wait_tail->next = q;
	else
		ctx->wait_head = q;
	ctx->wait_tail = q;
}

/* One of the run's own queries: cb(c, tag, ...) unless the run finished meanwhile. */
static void query(struct dnscheck *c, const char *name, int type, dq_cb *cb, uintptr_t tag)
{
	struct dq *q = xcalloc(1, sizeof *q);
	q->run = c;
	q->cb = cb;
	q->tag = tag;
	q->type = type;
	q->name = xstrdup(name);
	c->refs++;
	c->pending++;
	dq_submit(c->ctx, q);
}

/* The SPF evaluator's DNS: spf_ares_ops behind the context's queue. */
static void spf_query(void *ops_arg, enum spf_rr_type type, const char *name, spf_dns_answer_cb *answer,
		      void *cb_arg)
{
	struct dnscheck *c = ops_arg;
	struct dq *q = xcalloc(1, sizeof *q);
	q->spf_answer = answer;
	q->spf_arg = cb_arg;
	q->spf_type = type;
	q->name = xstrdup(name);
	if (!c->ctx) {
		answer(cb_arg, SPF_DNS_SHUTDOWN, NULL, 0);
		dq_free(q);
		return;
	}
	dq_submit(c->ctx, q);
}

static const struct spf_dns_ops spf_queued_ops = { spf_query };

struct dnscheck_ctx *dnscheck_ctx_new(struct evloop *loop, struct dns *dns, int64_t timeout_ms)
{
	struct dnscheck_ctx *ctx = xcalloc(1, sizeof *ctx);
	ctx->loop = loop;
	ctx->dns = dns;
	ctx->timeout_ms = timeout_ms;
	ctx->psl = psl_latest(NULL); /* NULL: psl_builtin() is used, which may be NULL too */
	return ctx;
}

void dnscheck_ctx_free(struct dnscheck_ctx *ctx)
{
	if (!ctx)
		return;
	while (ctx->runs)
		dnscheck_cancel(ctx->runs);
	while (ctx->wait_head) {
		struct dq *q = ctx->wait_head;
		ctx->wait_head = q->next;
		if (q->spf_answer)
			q->spf_answer(q->spf_arg, SPF_DNS_SHUTDOWN, NULL, 0);
		if (q->run)
			run_unref(q->run);
		dq_free(q);
	}
	/* queries in flight answer later: into the void (their runs, kept for them, are finished) */
	for (struct dq *q = ctx->fly; q; q = q->next) {
		q->ctx = NULL;
		if (q->run)
			q->run->ctx = NULL;
	}
	if (ctx->psl)
		psl_free(ctx->psl);
	free(ctx);
}

int dnscheck_ctx_peak(const struct dnscheck_ctx *ctx)
{
	return ctx->peak;
}

static const psl_ctx_t *ctx_psl(const struct dnscheck_ctx *ctx)
{
	return ctx->psl ? ctx->psl : psl_builtin();
}

static const psl_ctx_t *ctx_psl_or_null(const struct dnscheck *c)
{
	return c->ctx ? ctx_psl(c->ctx) : psl_builtin();
}

/* ---- small helpers ---- */

/* Copies a name from DNS (or the configuration) for display and further queries: shown safe, no
 * trailing dot. */
static void name_copy(char *dst, size_t size, const char *s)
{
	size_t n = strlen(s);
	if (n && s[n - 1] == '.')
		n--;
	dnsrec_show(dst, size, s, n);
}

/* Whether a name from DNS can be queried: 1..253 bytes of printable ASCII without spaces. */
static bool name_queryable(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > DNSREC_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '\\')
			return false;
	return true;
}

static bool is_nodata(int st) { return st == ARES_ENOTFOUND || st == ARES_ENODATA; }

static const char *st_text(const struct dnscheck *c, int st, char *buf, size_t size)
{
	if (st == ARES_ETIMEOUT && c->ctx) {
		snprintf(buf, size, "DNS timeout after %lld ms", (long long)c->ctx->timeout_ms);
		return buf;
	}
	if (st == ARES_ENOTFOUND)
		return "NXDOMAIN";
	if (st == ARES_ENODATA)
		return "no records";
	if (st == ARES_EBADNAME)
		return "not a usable name";
	if (st == ARES_EDESTRUCTION)
		return "resolver shut down";
	return dns_strerror(st);
}

static bool ip_equal(const char *a, const char *b)
{
	unsigned char x[16], y[16];
	if (inet_pton(AF_INET, a, x) == 1)
		return inet_pton(AF_INET, b, y) == 1 && memcmp(x, y, 4) == 0;
	if (inet_pton(AF_INET6, a, x) == 1)
		return inet_pton(AF_INET6, b, y) == 1 && memcmp(x, y, 16) == 0;
	return false;
}

static bool addrs_have(const struct dnscheck_addrs *a, const char *ip)
{
	for (size_t i = 0; i < a->n; i++)
		if (ip_equal(a->ip[i], ip))
			return true;
	return false;
}

static void addrs_text(struct strbuf *sb, const struct dnscheck_addrs *a)
{
	for (size_t i = 0; i < a->n; i++)
		sb_appendf(sb, "%s%s", i ? ", " : "", a->ip[i]);
}

/* TXT records of an answer, each one's strings joined (cut at DNSREC_MAX_RECORD + 1 bytes, so
 * that the parsers see it is too long). Returns a c-ares status; *n records in recs (owned). */
struct txts {
	char *rec[MAX_TXT_RECORDS];
	size_t len[MAX_TXT_RECORDS];
	size_t n, total;
};

static int txt_parse(const unsigned char *abuf, int alen, struct txts *t)
{
	struct ares_txt_ext *txt = NULL;
	memset(t, 0, sizeof *t);
	int st = ares_parse_txt_reply_ext(abuf, alen, &txt);
	if (st != ARES_SUCCESS)
		return st;
	struct strbuf sb;
	bool open = false;
	sb_init(&sb);
	for (struct ares_txt_ext *x = txt;; x = x->next) {
		if (!x || x->record_start) {
			if (open) {
				if (t->n < MAX_TXT_RECORDS) {
					t->len[t->n] = sb.len;
					t->rec[t->n++] = sb_steal(&sb);
				}
				t->total++;
				sb_reset(&sb);
			}
			if (!x)
				break;
			open = true;
		}
		size_t room = DNSREC_MAX_RECORD + 1 > sb.len ? DNSREC_MAX_RECORD + 1 - sb.len : 0;
		sb_appendn(&sb, (const char *)x->txt, x->length < room ? x->length : room);
	}
	sb_fini(&sb);
	ares_free_data(txt);
	return t->n ? ARES_SUCCESS : ARES_ENODATA;
}

static void txts_free(struct txts *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->rec[i]);
}

/* Like snprintf into an item's detail, cut on a UTF-8 character boundary. */
static void detail_set(char *dst, size_t size, const char *s)
{
	size_t n = strlen(s);
	if (n >= size) {
		n = size - 4;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		memcpy(dst, s, n);
		memcpy(dst + n, "...", 4);
		return;
	}
	memcpy(dst, s, n + 1);
}

/* ---- lookups of addresses (A + AAAA) ---- */

static void look_then(struct dnscheck *c, struct look *l);

static void look_merge(struct look *l)
{
	struct dnscheck_addrs *o = l->out;
	o->n = 0;
	for (size_t i = 0; i < l->n4 && o->n < DNSCHECK_MAX_ADDRS; i++)
		memcpy(o->ip[o->n++], l->v4[i], 46);
	for (size_t i = 0; i < l->n6 && o->n < DNSCHECK_MAX_ADDRS; i++)
		memcpy(o->ip[o->n++], l->v6[i], 46);
	int a = l->n4 ? 0 : (l->st4 == 0 ? ARES_ENODATA : l->st4);
	int b = l->n6 ? 0 : (l->st6 == 0 ? ARES_ENODATA : l->st6);
	if (o->n)
		o->status = 0;
	else if (!is_nodata(a))
		o->status = a;
	else if (!is_nodata(b))
		o->status = b;
	else
		o->status = (a == ARES_ENOTFOUND || b == ARES_ENOTFOUND) ? ARES_ENOTFOUND : ARES_ENODATA;
}

static void on_addr(struct dnscheck *c, uintptr_t tag, int status, const unsigned char *abuf, int alen, double ms)
{
	struct look *l = (struct look *)(tag & ~(uintptr_t)1);
	bool six = tag & 1;
	(void)ms;
	if (status == ARES_SUCCESS) {
		if (!six) {
			struct ares_addrttl at[DNSCHECK_MAX_ADDRS];
			int n = DNSCHECK_MAX_ADDRS;
			status = ares_parse_a_reply(abuf, alen, NULL, at, &n);
			for (int i = 0; status == ARES_SUCCESS && i < n; i++)
				if (inet_ntop(AF_INET, &at[i].ipaddr, l->v4[l->n4], 46))
					l->n4++;
		} else {
			struct ares_addr6ttl at[DNSCHECK_MAX_ADDRS];
			int n = DNSCHECK_MAX_ADDRS;
			status = ares_parse_aaaa_reply(abuf, alen, NULL, at, &n);
			for (int i = 0; status == ARES_SUCCESS && i < n; i++)
				if (inet_ntop(AF_INET6, &at[i].ip6addr, l->v6[l->n6], 46))
					l->n6++;
		}
		if (status != ARES_SUCCESS && status != ARES_ENODATA)
			status = ARES_EBADRESP;
	}
	if (six)
		l->st6 = status;
	else
		l->st4 = status;
	if (--l->left == 0) {
		look_merge(l);
		look_then(c, l);
	}
	work_done(c);
}

/* Looks up the addresses of name into out; look_then() follows. An IP literal is its own address. */
static void look_start(struct dnscheck *c, struct look *l, enum look_kind kind, size_t idx, const char *name,
		       struct dnscheck_addrs *out)
{
	unsigned char tmp[16];
	memset(l, 0, sizeof *l);
	l->kind = kind;
	l->idx = idx;
	l->out = out;
	out->status = ST_PENDING;
	out->n = 0;
	if (inet_pton(AF_INET, name, tmp) == 1 || inet_pton(AF_INET6, name, tmp) == 1) {
		snprintf(out->ip[0], 46, "%s", name);
		out->n = 1;
		out->status = 0;
		c->pending++;
		look_then(c, l);
		work_done(c);
		return;
	}
	if (!name_queryable(name)) {
		out->status = ARES_EBADNAME;
		c->pending++;
		look_then(c, l);
		work_done(c);
		return;
	}
	l->left = 2;
	query(c, name, ns_t_a, on_addr, (uintptr_t)l);
	query(c, name, ns_t_aaaa, on_addr, (uintptr_t)l | 1);
}

/* ---- the sending IP and its checks ---- */

static void on_ptr(struct dnscheck *c, uintptr_t tag, int status, const unsigned char *abuf, int alen, double ms);
static void on_dnsbl_a(struct dnscheck *c, uintptr_t tag, int status, const unsigned char *abuf, int alen,
		       double ms);
static void on_spf_done(void *arg, const struct spf_outcome *out);

/* The local address the kernel would use toward ip (a connect()ed UDP socket: nothing is sent). */
static int route_source(const char *ip, int port, char *out, size_t size, char *err, size_t esize)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)(port > 0 ? port : 25));
		sl = sizeof *s4;
	} else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)(port > 0 ? port : 25));
		sl = sizeof *s6;
	} else {
		snprintf(err, esize, "%s is not an address", ip);
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, esize, "socket: %s", strerror(errno));
		return -1;
	}
	struct sockaddr_storage me;
	socklen_t ml = sizeof me;
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 || getsockname(fd, (struct sockaddr *)&me, &ml) < 0) {
		snprintf(err, esize, "no route to %s: %s", ip, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	const void *a = me.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&me)->sin_addr
						: (const void *)&((struct sockaddr_in6 *)&me)->sin6_addr;
	if (!inet_ntop(me.ss_family, a, out, (socklen_t)size)) {
		snprintf(err, esize, "getsockname: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void ip_checks_start(struct dnscheck *c)
{
	struct dnscheck_result *r = &c->r;
	char name[DNSREC_MAX_NAME + 1];
	if (c->ip_started)
		return;
	c->ip_started = true;
	if (!r->ip[0])
		return;
	if (dnsrec_reverse_name(r->ip, NULL, name, sizeof name) == 0)
		query(c, name, ns_t_ptr, on_ptr, 0);
	else
		r->ptr_status = ARES_EBADNAME;
	for (size_t i = 0; i < r->n_dnsbl; i++) {
		struct dnscheck_dnsbl *b = &r->dnsbl[i];
		if (dnsrec_reverse_name(r->ip, b->zone, b->query, sizeof b->query) < 0) {
			b->status = ARES_EBADNAME;
			continue;
		}
		c->dnsbl_pending[i] = true;
		query(c, b->query, ns_t_a, on_dnsbl_a, i);
	}
	if (c->want_mail) {
		struct spf_params sp = {
			.ip = r->ip,
			.sender = c->mail_from,
			.helo = r->helo[0] ? r->helo : NULL,
			.identity = SPF_IDENTITY_MAILFROM,
		};
		c->pending++;
		c->spf = spf_check_start(&sp, &spf_queued_ops, c, on_spf_done, c);
	}
}

static void set_ip(struct dnscheck *c, const char *ip, const char *how)
{
	snprintf(c->r.ip, sizeof c->r.ip, "%.45s", ip);
	detail_set(c->r.ip_how, sizeof c->r.ip_how, how);
}

static void ip_unknown(struct dnscheck *c, const char *why)
{
	c->r.ip[0] = '\0';
	detail_set(c->r.ip_problem, sizeof c->r.ip_problem, why);
	ip_checks_start(c);
}

static void on_spf_done(void *arg, const struct spf_outcome *out)
{
	struct dnscheck *c = arg;
	c->spf = NULL;
	if (c->finished)
		return;
	c->r.spf = *out;
	c->r.spf_done = true;
	work_done(c);
}

static void on_ptr(struct dnscheck *c, uintptr_t tag, int status, const unsigned char *abuf, int alen, double ms)
{
	struct dnscheck_result *r = &c->r;
	(void)tag;
	(void)ms;
	if (status == ARES_SUCCESS) {
		struct hostent *h = NULL;
		unsigned char dummy[16] = { 0 };
		status = ares_parse_ptr_reply(abuf, alen, dummy, 4, AF_INET, &h);
		if (status == ARES_SUCCESS) {
			/* c-ares 1.18 lists every PTR name in h_aliases (h_name repeats one) */
			char **names = h->h_aliases && h->h_aliases[0] ? h->h_aliases : NULL;
			char *one[2] = { h->h_name, NULL };
			for (char **p = names ? names : one; *p && r->n_ptr < DNSCHECK_MAX_PTR; p++) {
				char nm[DNSREC_MAX_NAME + 1];
				bool dup = false;
				name_copy(nm, sizeof nm, *p);
				for (size_t i = 0; i < r->n_ptr; i++)
					dup |= strcasecmp(r->ptr[i], nm) == 0;
				if (!dup && nm[0])
					memcpy(r->ptr[r->n_ptr++], nm, sizeof nm);
			}
			ares_free_hostent(h);
			if (!r->n_ptr)
				status = ARES_ENODATA;
		} else if (status != ARES_ENODATA) {
			status = ARES_EBADRESP;
		}
	}
	r->ptr_status = status;
	c->ptr_left = (int)r->n_ptr;
	for (size_t i = 0; i < r->n_ptr; i++)
		look_start(c, &c->ptr_look[i], LOOK_PTR, i, r->ptr[i], &r->ptr_addrs[i]);
	work_done(c);
}

static void on_dnsbl_txt(struct dnscheck *c, uintptr_t tag, int status, const unsigned char *abuf, int alen,
			 double ms)
{
	struct dnscheck_dnsbl *b = &c->r.dnsbl[tag];
	struct txts t;
	(void)ms;
	if (status == ARES_SUCCESS && txt_parse(abuf, alen, &t) == ARES_SUCCESS) {
		dnsrec_show(b->reason, sizeof b->reason, t.rec[0], t.len[0]);
		txts_free(&t);
	}
	c->dnsbl_pending[tag] = false;
	work_done(c);
}

static void on_dnsbl_a(struct dnscheck *c, uintptr_t tag, int status, const unsigned char *abuf, int alen,
		       double ms)
{
	struct dnscheck_dnsbl *b = &c->r.dnsbl[tag];
	(void)ms;
	if (status == ARES_SUCCESS) {
		struct ares_addrttl at[16];
		int n = 16;
		status = ares_parse_a_reply(abuf, alen, NULL, at, &n);
		if (status == ARES_SUCCESS) {
			uint8_t a[16][4];
			for (int i = 0; i < n; i++)
				memcpy(a[i], &at[i].ipaddr, 4);
			dnsbl_classify((const uint8_t(*)[4])a, (size_t)n, &b->answer);
		} else if (status != ARES_ENODATA) {
			status = ARES_EBADRESP;
		}
	}
	b->status = status;
	if (status == ARES_SUCCESS && b->answer.verdict != DNSBL_NOT_LISTED)
		query(c, b->query, ns_t_txt, on_dnsbl_txt, tag); /* the list's reason */
	else
		c->dnsbl_pending[tag] = false;
	work_done(c);
}

/* ---- mx_port: connect to the MX and read its greeting ---- */

static void port_next(struct dnscheck *c);

static void port_close(struct dnscheck *c)
{
	if (c->port_fd >= 0) {
		if (c->ctx)
			evloop_fd_del(c->ctx->loop, c->port_fd);
		close(c->port_fd);
		c->port_fd = -1;
	}
	if (c->ctx)
		evtimer_stop(c->ctx->loop, &c->port_timer);
}

static void port_finish(struct dnscheck *c)
{
	port_close(c);
	c->port_stage = PORT_DONE;
	port_slot_free(c);
	work_done(c);
}

/* The attempt at port_try ended (reply NULL: with the problem in what). */
static void port_attempt_end(struct dnscheck *c, int code, const char *what)
{
	const char *host = c->port_hosts[c->port_try], *ip = c->port_addrs[c->port_try];
	port_close(c);
	sb_appendf(&c->port_log, "%s%s [%s]:%d: %s", c->port_log.len ? "; " : "", host, ip, c->port, what);
	snprintf(c->r.port_addr, sizeof c->r.port_addr, "%s", ip);
	c->r.port_code = code;
	if (code >= 200 && code < 300) {
		c->port_ok = true;
		c->port_first_ok = c->port_try == 0;
		port_finish(c);
		return;
	}
	c->port_try++;
	port_next(c);
}

static void port_on_timer(void *arg)
{
	struct dnscheck *c = arg;
	char what[96];
	if (c->port_stage == PORT_CONNECTING)
		snprintf(what, sizeof what, "no TCP connection within %lld ms", (long long)c->connect_ms);
	else
		snprintf(what, sizeof what, "connected, no greeting within %lld ms", (long long)c->banner_ms);
	port_attempt_end(c, 0, what);
}

static void port_got_line(struct dnscheck *c, bool eof)
{
	size_t n = c->port_len;
	char *nl = memchr(c->port_buf, '\n', n);
	if (nl)
		n = (size_t)(nl - c->port_buf);
	if (n && c->port_buf[n - 1] == '\r')
		n--;
	if (n == 0 && eof) {
		port_attempt_end(c, 0, "connection closed without a greeting");
		return;
	}
	char line[256];
	dnsrec_show(line, sizeof line, c->port_buf, n);
	int code = 0;
	if (n >= 3 && c->port_buf[0] >= '2' && c->port_buf[0] <= '5' && c->port_buf[1] >= '0' &&
	    c->port_buf[1] <= '9' && c->port_buf[2] >= '0' && c->port_buf[2] <= '9')
		code = (c->port_buf[0] - '0') * 100 + (c->port_buf[1] - '0') * 10 + (c->port_buf[2] - '0');
	snprintf(c->r.port_reply, sizeof c->r.port_reply, "%s", line);
	/* say goodbye; the reply does not matter */
	if (send(c->port_fd, "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("dnscheck: QUIT to %s: %s", c->port_addrs[c->port_try], strerror(errno));
	port_attempt_end(c, code, code ? line : "not an SMTP greeting");
}

static void port_on_fd(void *arg, int fd, unsigned events)
{
	struct dnscheck *c = arg;
	(void)events;
	if (c->port_stage == PORT_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof err;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			port_attempt_end(c, 0, strerror(err));
			return;
		}
		c->port_stage = PORT_READING;
		evloop_fd_set(c->ctx->loop, fd, EVLOOP_READ, port_on_fd, c);
		evtimer_start(c->ctx->loop, &c->port_timer, mono_us() + c->banner_ms * 1000);
		return;
	}
	ssize_t n = recv(fd, c->port_buf + c->port_len, sizeof c->port_buf - 1 - c->port_len, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		port_attempt_end(c, 0, strerror(errno));
		return;
	}
	c->port_len += (size_t)n;
	if (n == 0 || memchr(c->port_buf, '\n', c->port_len) || c->port_len == sizeof c->port_buf - 1)
		port_got_line(c, n == 0);
}

static void port_next(struct dnscheck *c)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	const char *ip;

	for (; c->port_try < c->n_port_addrs; c->port_try++) {
		ip = c->port_addrs[c->port_try];
		memset(&ss, 0, sizeof ss);
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)c->port);
			sl = sizeof *s4;
		} else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)c->port);
			sl = sizeof *s6;
		} else {
			continue;
		}
		int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			sb_appendf(&c->port_log, "%s%s [%s]: socket: %s", c->port_log.len ? "; " : "",
				   c->port_hosts[c->port_try], ip, strerror(errno));
			continue;
		}
		c->port_fd = fd;
		c->port_len = 0;
		if (c->source_ip) {
			struct sockaddr_storage src;
			memset(&src, 0, sizeof src);
			struct sockaddr_in *b4 = (struct sockaddr_in *)&src;
			struct sockaddr_in6 *b6 = (struct sockaddr_in6 *)&src;
			int rc = 0;
			if (ss.ss_family == AF_INET && inet_pton(AF_INET, c->source_ip, &b4->sin_addr) == 1) {
				b4->sin_family = AF_INET;
				rc = bind(fd, (struct sockaddr *)b4, sizeof *b4);
			} else if (ss.ss_family == AF_INET6 && inet_pton(AF_INET6, c->source_ip, &b6->sin6_addr) == 1) {
				b6->sin6_family = AF_INET6;
				rc = bind(fd, (struct sockaddr *)b6, sizeof *b6);
			}
			if (rc < 0) {
				char what[128];
				snprintf(what, sizeof what, "bind to source_ip %s: %s", c->source_ip, strerror(errno));
				port_attempt_end(c, 0, what);
				return;
			}
		}
		if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
			port_attempt_end(c, 0, strerror(errno));
			return;
		}
		c->port_stage = PORT_CONNECTING;
		evloop_fd_set(c->ctx->loop, fd, EVLOOP_WRITE, port_on_fd, c);
		evtimer_start(c->ctx->loop, &c->port_timer, mono_us() + c->connect_ms * 1000);
		return;
	}
	port_finish(c);
}

static void port_go(struct dnscheck *c)
{
	c->tcp_slot = true;
	c->ctx->tcp_active++;
	c->port_try = 0;
	port_next(c);
}

static void port_slot_free(struct dnscheck *c)
{
	struct dnscheck_ctx *ctx = c->ctx;
	if (!c->tcp_slot || !ctx)
		return;
	c->tcp_slot = false;
	ctx->tcp_active--;
	while (ctx->tcp_head && ctx->tcp_active < DNSCHECK_MAX_TCP) {
		struct dnscheck *w = ctx->tcp_head;
		ctx->tcp_head = w->tcp_next;
		if (!ctx->tcp_head)
			ctx->tcp_tail = NULL;
		w->tcp_next = NULL;
		port_go(w);
	}
}

/* Removes c from the context's queue of runs waiting for a connection slot. */
static void port_unqueue(struct dnscheck *c)
{
	struct dnscheck_ctx *ctx = c->ctx;
	struct dnscheck *prev = NULL;
	if (!ctx)
		return;
	for (struct dnscheck *w = ctx->tcp_head; w; prev = w, w = w->tcp_next) {
		if (w != c)
			continue;
		if (prev)
			prev->tcp_next = w->tcp_next;
		else
			ctx->tcp_head = w->tcp_next;
		if (ctx->tcp_tail == w)
			ctx->tcp_tail = prev;
		w->tcp_next = NULL;
		return;
	}
}

static void port_start(struct dnscheck *c)
{
	struct dnscheck_result *r = &c->r;
	c->pending++;
	for (size_t i = 0; i < r->n_mx && c->n_port_addrs < DNSCHECK_MAX_PORT_TRIES; i++)
		for (size_t k = 0; k < r->mx[i].addrs.n && c->n_port_addrs < DNSCHECK_MAX_PORT_TRIES; k++) {
			memcpy(c->port_addrs[c->n_port_addrs], r->mx[i].addrs.ip[k], 46);
			memcpy(c->port_hosts[c->n_port_addrs], r->mx[i].host, sizeof r->mx[i].host);
			c->n_port_addrs++;
		}
	if (!c->n_port_addrs) {
		c->port_stage = PORT_DONE;
		work_done(c);
		return;
	}
	if (c->ctx->tcp_active >= DNSCHECK_MAX_TCP) {
		c->port_stage = PORT_WAITING;
		if (c->ctx->tcp_tail)
			c->ctx->tcp_tail->tcp_next = c;
		else
			c->ctx->tcp_head = c;
		c->ctx->tcp_tail = c;
		return;
	}
	port_go(c);
}

/* ---- MX ---- */

static void mx_phase_done(struct dnscheck *c)
{
	struct dnscheck_result *r = &c->r;
	if (c->need_route) {
		char err[160] = "", src[46];
		bool found = false;
		for (size_t i = 0; i < r->n_mx && !found; i++)
			for (size_t k = 0; k < r->mx[i].addrs.n && !found; k++) {
				if (route_source(r->mx[i].addrs.ip[k], c->port, src, sizeof src, err, sizeof err) == 0) {
					char how[160];
					snprintf(how, sizeof how, "route toward %.40s [%.64s]", r->mx[i].host, r->mx[i].addrs.ip[k]);
					set_ip(c, src, how);
					found = true;
				}
			}
		if (found) {
			ip_checks_start(c);
		} else if (err[0]) {
			ip_unknown(c, err);
		} else {
			char why[600], b[96];
			snprintf(why, sizeof why, "no MX address of %s to find the route toward (%s); source_ip "
				 "would name it", r->domain, r->mx_status == 0 ? "MX hosts without addresses" :
				 st_text(c, r->mx_status, b, sizeof b));
			ip_unknown(c, why);
		}
	}
	if (c->want_port)
		port_start(c);
}

static void look_then(struct dnscheck *c, struct look *l)
{
	struct dnscheck_result *r = &c->r;
	switch (l->kind) {
	case LOOK_MX:
		if (--c->mx_left == 0)
			mx_phase_done(c);
		break;
	case LOOK_PTR:
		if (--c->ptr_left == 0)
			for (size_t i = 0; i < r->n_ptr; i++)
				r->fcrdns |= addrs_have(&r->ptr_addrs[i], r->ip);
		break;
	case LOOK_HELO:
		break;
	case LOOK_RELAY: {
		char how[320];
		snprintf(how, sizeof how, "relay host %.200s", c->relay_host);
		if (c->relay_addrs.n) {
			set_ip(c, c->relay_addrs.ip[0], how);
			ip_checks_start(c);
		} else {
			char why[400], b[96];
			snprintf(why, sizeof why, "relay host %.200s has no address: %s", c->relay_host,
				 st_text(c, c->relay_addrs.status, b, sizeof b));
			ip_unknown(c, why);
		}
		break;
	}
	}
}

static void on_mx(struct dnscheck *c, uintptr_t tag, int status, const unsigned char *abuf, int alen, double ms)
{
	struct dnscheck_result *r = &c->r;
	(void)tag;
	r->mx_ms = ms;
	if (status == ARES_SUCCESS) {
		struct ares_mx_reply *mx = NULL;
		status = ares_parse_mx_reply(abuf, alen, &mx);
		if (status == ARES_SUCCESS) {
			size_t total = 0;
			for (struct ares_mx_reply *m = mx; m; m = m->next) {
				total++;
				char h[DNSREC_MAX_NAME + 1];
				name_copy(h, sizeof h, m->host);
				if (!h[0])
					r->null_mx = true;
				if (r->n_mx == DNSCHECK_MAX_MX) {
					/* keep the most preferred ones */
					size_t worst = 0;
					for (size_t i = 1; i < r->n_mx; i++)
						if (r->mx[i].pref >= r->mx[worst].pref)
							worst = i;
					if (m->priority >= r->mx[worst].pref)
						continue;
					memmove(&r->mx[worst], &r->mx[worst + 1], (r->n_mx - worst - 1) * sizeof r->mx[0]);
					r->n_mx--;
				}
				struct dnscheck_mx *x = &r->mx[r->n_mx++];
				memcpy(x->host, h, sizeof h);
				x->pref = m->priority;
			}
			ares_free_data(mx);
			r->n_mx_more = total - r->n_mx;
			/* by preference; ties keep the answer order */
			for (size_t i = 1; i < r->n_mx; i++)
				for (size_t k = i; k > 0 && r->mx[k - 1].pref > r->mx[k].pref; k--) {
					struct dnscheck_mx t = r->mx[k];
					r->mx[k] = r->mx[k - 1];
					r->mx[k - 1] = t;
				}
			if (!r->n_mx)
				status = ARES_ENODATA;
		} else if (status != ARES_ENODATA) {
			status = ARES_EBADRESP;
		}
	}
	r->mx_status = status;
	if (status == ARES_ENODATA && !r->n_mx) {
		/* RFC 5321 5.1: no MX records, the domain itself is the implicit MX */
		r->implicit_mx = true;
		r->n_mx = 1;
		memcpy(r->mx[0].host, r->domain, sizeof r->domain);
		r->mx[0].pref = 0;
	}
	if (r->null_mx) {
		for (size_t i = 0; i < r->n_mx; i++)
			r->mx[i].addrs.status = ARES_ENODATA;
		mx_phase_done(c);
	} else if (r->n_mx) {
		c->mx_left = (int)r->n_mx;
		for (size_t i = 0; i < r->n_mx; i++)
			look_start(c, &c->mx_look[i], LOOK_MX, i, r->mx[i].host, &r->mx[i].addrs);
	} else {
		mx_phase_done(c);
	}
	work_done(c);
}

/* ---- DMARC and DKIM ---- */

static void on_dmarc(struct dnscheck *c, uintptr_t tag, int status, const unsigned char *abuf, int alen, double ms)
{
	struct dnscheck_result *r = &c->r;
	struct txts t = { 0 };
	size_t found = 0, which = 0;
	(void)ms;
	if (status == ARES_SUCCESS) {
		status = txt_parse(abuf, alen, &t);
		if (status != ARES_SUCCESS && status != ARES_ENODATA)
			status = ARES_EBADRESP;
	}
	for (size_t i = 0; i < t.n; i++)
		if (dmarc_is_record(t.rec[i], t.len[i])) {
			if (!found)
				which = i;
			found++;
		}
	r->dmarc_status = status;
	r->dmarc_org = tag == 1;
	if ((status == ARES_SUCCESS || is_nodata(status)) && !found) {
		if (tag == 0 && strcmp(r->from_domain, r->org_domain) != 0) {
			/* RFC 7489 6.6.3: none at the From domain, so at its organisational domain */
			snprintf(r->dmarc_at, sizeof r->dmarc_at, "_dmarc.%s", r->org_domain);
			query(c, r->dmarc_at, ns_t_txt, on_dmarc, 1);
		} else {
			r->dmarc_status = status == ARES_SUCCESS ? ARES_ENODATA : status;
			c->dmarc_pending = false;
		}
	} else {
		if (found) {
			r->dmarc_status = 0;
			dnsrec_show(r->dmarc_record, sizeof r->dmarc_record, t.rec[which], t.len[which]);
			if (found > 1)
				snprintf(r->dmarc_problem, sizeof r->dmarc_problem,
					 "%zu DMARC records, so none applies (RFC 7489 6.6.3)", found);
			else if (dmarc_parse(t.rec[which], t.len[which], &r->dmarc, r->dmarc_problem,
					     sizeof r->dmarc_problem) == 0)
				r->dmarc_valid = true;
		}
		c->dmarc_pending = false;
	}
	txts_free(&t);
	work_done(c);
}

static void on_dkim(struct dnscheck *c, uintptr_t tag, int status, const unsigned char *abuf, int alen, double ms)
{
	struct dnscheck_dkim *d = &c->r.dkim[tag];
	struct txts t = { 0 };
	(void)ms;
	if (status == ARES_SUCCESS) {
		status = txt_parse(abuf, alen, &t);
		if (status != ARES_SUCCESS && status != ARES_ENODATA)
			status = ARES_EBADRESP;
	}
	d->status = status;
	d->n_records = t.total;
	/* RFC 6376 3.6.2.2: with several records, use one that parses */
	for (size_t i = 0; i < t.n && !d->valid; i++) {
		char problem[256];
		if (dkim_key_parse(t.rec[i], t.len[i], &d->key, problem, sizeof problem) == 0) {
			d->valid = true;
			d->problem[0] = '\0';
			dnsrec_show(d->record, sizeof d->record, t.rec[i], t.len[i]);
		} else if (i == 0) {
			snprintf(d->problem, sizeof d->problem, "%s", problem);
			dnsrec_show(d->record, sizeof d->record, t.rec[i], t.len[i]);
		}
	}
	c->dkim_pending[tag] = false;
	txts_free(&t);
	work_done(c);
}

/* ---- the items ---- */

static void item_add(struct dnscheck *c, const char *name, enum dnscheck_status st, const struct strbuf *detail)
{
	struct dnscheck_result *r = &c->r;
	r->items = xrealloc(r->items, (r->n_items + 1) * sizeof *r->items);
	struct dnscheck_item *it = &r->items[r->n_items++];
	snprintf(it->name, sizeof it->name, "%s", name);
	it->status = st;
	detail_set(it->detail, sizeof it->detail, detail->s);
	if (st > r->worst)
		r->worst = st;
}

static bool cancelled_item(struct dnscheck *c, const char *name, bool pending)
{
	if (!pending)
		return false;
	struct strbuf sb;
	sb_init(&sb);
	sb_append(&sb, c->r.cancelled ? "cancelled before an answer" : "no answer");
	item_add(c, name, DNSCHECK_ERROR, &sb);
	sb_fini(&sb);
	return true;
}

static void items_mx(struct dnscheck *c, struct strbuf *sb)
{
	struct dnscheck_result *r = &c->r;
	char b[96];
	enum dnscheck_status st;

	if (cancelled_item(c, "mx", r->mx_status == ST_PENDING || c->mx_left > 0))
		goto time;
	sb_reset(sb);
	size_t with = 0;
	for (size_t i = 0; i < r->n_mx; i++)
		with += r->mx[i].addrs.n > 0;
	if (r->null_mx) {
		st = DNSCHECK_FAIL;
		sb_appendf(sb, "%s publishes a null MX (RFC 7505): it accepts no mail", r->domain);
	} else if (r->mx_status == ARES_ENOTFOUND) {
		st = DNSCHECK_FAIL;
		sb_appendf(sb, "%s does not exist (NXDOMAIN)", r->domain);
	} else if (r->mx_status != 0 && !r->implicit_mx) {
		st = DNSCHECK_FAIL;
		sb_appendf(sb, "MX lookup for %s: %s", r->domain, st_text(c, r->mx_status, b, sizeof b));
	} else if (r->implicit_mx) {
		const struct dnscheck_addrs *a = &r->mx[0].addrs;
		if (a->n) {
			st = DNSCHECK_WARN;
			sb_appendf(sb, "%s has no MX records; implicit MX %s → ", r->domain, r->domain);
			addrs_text(sb, a);
		} else {
			st = DNSCHECK_FAIL;
			sb_appendf(sb, "%s has no MX records and no address (%s)", r->domain,
				   st_text(c, a->status, b, sizeof b));
		}
	} else {
		st = with == r->n_mx ? DNSCHECK_PASS : with ? DNSCHECK_WARN : DNSCHECK_FAIL;
		if (st == DNSCHECK_WARN)
			sb_appendf(sb, "%zu of %zu MX hosts without an address: ", r->n_mx - with, r->n_mx);
		else if (st == DNSCHECK_FAIL)
			sb_appendf(sb, "no MX host has an address: ");
		for (size_t i = 0; i < r->n_mx; i++) {
			const struct dnscheck_mx *m = &r->mx[i];
			sb_appendf(sb, "%s%s (%d) → ", i ? "; " : "", m->host, m->pref);
			if (m->addrs.n)
				addrs_text(sb, &m->addrs);
			else
				sb_appendf(sb, "no address (%s)", st_text(c, m->addrs.status, b, sizeof b));
		}
		if (r->n_mx_more)
			sb_appendf(sb, " (%zu more MX records not checked)", r->n_mx_more);
	}
	item_add(c, "mx", st, sb);
time:
	if (cancelled_item(c, "mx_time", r->mx_status == ST_PENDING))
		return;
	sb_reset(sb);
	if (r->mx_status == ARES_ETIMEOUT) {
		st = DNSCHECK_FAIL;
		sb_appendf(sb, "no answer within %lld ms", c->ctx ? (long long)c->ctx->timeout_ms : 0LL);
	} else {
		st = r->mx_ms >= DNSCHECK_MX_SLOW_MS ? DNSCHECK_WARN : DNSCHECK_PASS;
		sb_appendf(sb, "%.1f ms%s", r->mx_ms, st == DNSCHECK_WARN ? " (slow: over 1000 ms)" : "");
		if (r->mx_status != 0)
			sb_appendf(sb, " (%s)", st_text(c, r->mx_status, b, sizeof b));
	}
	item_add(c, "mx_time", st, sb);
}

static void items_port(struct dnscheck *c, struct strbuf *sb)
{
	struct dnscheck_result *r = &c->r;
	enum dnscheck_status st;
	if (cancelled_item(c, "mx_port", c->port_stage != PORT_DONE))
		return;
	sb_reset(sb);
	if (!c->n_port_addrs) {
		st = DNSCHECK_FAIL;
		sb_appendf(sb, "no MX address to connect to on port %d", c->port);
	} else {
		st = c->port_first_ok ? DNSCHECK_PASS : c->port_ok ? DNSCHECK_WARN : DNSCHECK_FAIL;
		if (st == DNSCHECK_WARN)
			sb_append(sb, "the first MX address did not greet with 2xx: ");
		sb_append(sb, c->port_log.len ? c->port_log.s : "nothing tried");
	}
	(void)r;
	item_add(c, "mx_port", st, sb);
}

static bool ip_missing(struct dnscheck *c, const char *name, struct strbuf *sb)
{
	if (c->r.ip[0])
		return false;
	if (!c->ip_started)
		return cancelled_item(c, name, true);
	sb_reset(sb);
	sb_appendf(sb, "sending IP unknown: %s", c->r.ip_problem);
	item_add(c, name, DNSCHECK_ERROR, sb);
	return true;
}

static void items_ptr(struct dnscheck *c, struct strbuf *sb)
{
	struct dnscheck_result *r = &c->r;
	char b[96], rev[DNSREC_MAX_NAME + 1] = "";
	enum dnscheck_status st;

	if (!ip_missing(c, "ptr", sb) && !cancelled_item(c, "ptr", r->ptr_status == ST_PENDING)) {
		sb_reset(sb);
		dnsrec_reverse_name(r->ip, NULL, rev, sizeof rev);
		if (r->ptr_status == 0) {
			st = DNSCHECK_PASS;
			sb_appendf(sb, "%s → ", r->ip);
			for (size_t i = 0; i < r->n_ptr; i++)
				sb_appendf(sb, "%s%s", i ? ", " : "", r->ptr[i]);
		} else if (is_nodata(r->ptr_status)) {
			st = DNSCHECK_FAIL;
			sb_appendf(sb, "%s has no PTR record (%s for %s)", r->ip, st_text(c, r->ptr_status, b, sizeof b), rev);
		} else {
			st = DNSCHECK_ERROR;
			sb_appendf(sb, "PTR lookup %s: %s", rev, st_text(c, r->ptr_status, b, sizeof b));
		}
		sb_appendf(sb, " (sending IP: %s)", r->ip_how);
		item_add(c, "ptr", st, sb);
	}
	if (ip_missing(c, "fcrdns", sb) || cancelled_item(c, "fcrdns", r->ptr_status == ST_PENDING || c->ptr_left > 0))
		return;
	sb_reset(sb);
	if (r->ptr_status != 0) {
		st = is_nodata(r->ptr_status) ? DNSCHECK_FAIL : DNSCHECK_ERROR;
		sb_appendf(sb, "%s: %s", st == DNSCHECK_FAIL ? "no PTR name to confirm" : "PTR lookup failed",
			   st_text(c, r->ptr_status, b, sizeof b));
	} else if (r->fcrdns) {
		st = DNSCHECK_PASS;
		for (size_t i = 0; i < r->n_ptr; i++)
			if (addrs_have(&r->ptr_addrs[i], r->ip)) {
				sb_appendf(sb, "%s → %s", r->ptr[i], r->ip);
				break;
			}
	} else {
		bool all_errors = true;
		for (size_t i = 0; i < r->n_ptr; i++) {
			const struct dnscheck_addrs *a = &r->ptr_addrs[i];
			all_errors &= a->n == 0 && !is_nodata(a->status) && a->status != ARES_EBADNAME;
			sb_appendf(sb, "%s%s → ", i ? "; " : "", r->ptr[i]);
			if (a->n)
				addrs_text(sb, a);
			else
				sb_appendf(sb, "no address (%s)", st_text(c, a->status, b, sizeof b));
		}
		sb_appendf(sb, ", not %s: the PTR name does not resolve back to the sending IP", r->ip);
		st = all_errors ? DNSCHECK_ERROR : DNSCHECK_FAIL;
	}
	item_add(c, "fcrdns", st, sb);
}

static void items_helo(struct dnscheck *c, struct strbuf *sb)
{
	struct dnscheck_result *r = &c->r;
	const struct dnscheck_addrs *a = &r->helo_addrs;
	char b[96];
	enum dnscheck_status st;

	if (cancelled_item(c, "helo", a->status == ST_PENDING))
		return;
	sb_reset(sb);
	r->helo_matches = r->ip[0] && addrs_have(a, r->ip);
	if (c->helo_literal) {
		if (!r->ip[0]) {
			st = DNSCHECK_WARN;
			sb_appendf(sb, "EHLO %s is an address literal; sending IP unknown (%s)", r->helo, r->ip_problem);
		} else if (r->helo_matches) {
			st = DNSCHECK_WARN;
			sb_appendf(sb, "EHLO %s is an address literal (it matches the sending IP); receivers often "
				       "want a host name that resolves", r->helo);
		} else {
			st = DNSCHECK_FAIL;
			sb_appendf(sb, "EHLO %s is an address literal that is not the sending IP %s", r->helo, r->ip);
		}
	} else if (a->n) {
		if (r->helo_matches) {
			st = DNSCHECK_PASS;
			sb_appendf(sb, "%s → ", r->helo);
			addrs_text(sb, a);
		} else {
			st = DNSCHECK_WARN;
			sb_appendf(sb, "%s → ", r->helo);
			addrs_text(sb, a);
			if (r->ip[0])
				sb_appendf(sb, ", not the sending IP %s", r->ip);
			else
				sb_appendf(sb, "; sending IP unknown (%s)", r->ip_problem);
		}
	} else {
		if (is_nodata(a->status) || a->status == ARES_EBADNAME) {
			st = DNSCHECK_FAIL;
			sb_appendf(sb, "EHLO name %s does not resolve (%s)", r->helo, st_text(c, a->status, b, sizeof b));
		} else {
			st = DNSCHECK_ERROR;
			sb_appendf(sb, "lookup of the EHLO name %s: %s", r->helo, st_text(c, a->status, b, sizeof b));
		}
	}
	item_add(c, "helo", st, sb);
}

static void items_spf(struct dnscheck *c, struct strbuf *sb)
{
	struct dnscheck_result *r = &c->r;
	const struct spf_outcome *o = &r->spf;
	enum dnscheck_status st;

	if (!ip_missing(c, "spf", sb) && !cancelled_item(c, "spf", !r->spf_done)) {
		sb_reset(sb);
		switch (o->result) {
		case SPF_RESULT_PASS: st = DNSCHECK_PASS; break;
		case SPF_RESULT_NEUTRAL:
		case SPF_RESULT_SOFTFAIL: st = DNSCHECK_WARN; break;
		case SPF_RESULT_TEMPERROR: st = DNSCHECK_ERROR; break;
		default: st = DNSCHECK_FAIL; break;
		}
		sb_appendf(sb, "%s for %s from %s", spf_result_name(o->result), r->ip, c->mail_from);
		if (o->mechanism[0])
			sb_appendf(sb, ": %s in %s", o->mechanism, o->mechanism_domain);
		else if (o->result == SPF_RESULT_NEUTRAL)
			sb_appendf(sb, ": no mechanism matched");
		if (o->problem[0])
			sb_appendf(sb, ": %s", o->problem);
		if (o->record[0])
			sb_appendf(sb, " (%s: \"%s\")", o->domain, o->record);
		item_add(c, "spf", st, sb);
	}

	/* SPF alignment (RFC 7489 3.1.2): the envelope domain against the From domain */
	if (ip_missing(c, "spf_align", sb) || cancelled_item(c, "spf_align", !r->spf_done || c->dmarc_pending))
		return;
	sb_reset(sb);
	enum dmarc_align mode = r->dmarc_valid ? r->dmarc.aspf : DMARC_ALIGN_RELAXED;
	char env[DNSREC_MAX_NAME + 1];
	dnsrec_address_domain(c->mail_from, env, sizeof env);
	r->spf_aligned = dnsrec_aligned(ctx_psl_or_null(c), env, r->from_domain, mode);
	bool dkim_ok = false;
	for (size_t i = 0; i < r->n_dkim; i++)
		dkim_ok |= r->dkim[i].valid && !r->dkim[i].key.revoked;
	if (o->result == SPF_RESULT_TEMPERROR) {
		st = DNSCHECK_ERROR;
		sb_appendf(sb, "SPF gave temperror: alignment not known");
	} else if (o->result != SPF_RESULT_PASS) {
		st = dkim_ok ? DNSCHECK_WARN : DNSCHECK_FAIL;
		sb_appendf(sb, "SPF %s: no aligned SPF pass for DMARC; %s", spf_result_name(o->result),
			   dkim_ok ? "DMARC depends on DKIM alone" : "and no usable DKIM key of a configured selector");
	} else if (r->spf_aligned) {
		st = DNSCHECK_PASS;
		sb_appendf(sb, "SPF pass for %s, aligned (%s) with the From domain %s", env, dmarc_align_name(mode),
			   r->from_domain);
	} else {
		st = DNSCHECK_FAIL;
		sb_appendf(sb, "SPF pass for %s, not aligned (%s) with the From domain %s", env,
			   dmarc_align_name(mode), r->from_domain);
	}
	item_add(c, "spf_align", st, sb);
}

static void items_dmarc(struct dnscheck *c, struct strbuf *sb)
{
	struct dnscheck_result *r = &c->r;
	char b[96];
	enum dnscheck_status st;

	if (cancelled_item(c, "dmarc", c->dmarc_pending))
		return;
	sb_reset(sb);
	if (r->dmarc_record[0]) {
		sb_appendf(sb, "%s: \"%s\"", r->dmarc_at, r->dmarc_record);
		if (r->dmarc_org)
			sb_appendf(sb, " (organisational domain of %s, no record at _dmarc.%s)", r->from_domain,
				   r->from_domain);
		if (!r->dmarc_valid) {
			st = DNSCHECK_FAIL;
			sb_appendf(sb, ": invalid: %s", r->dmarc_problem);
		} else {
			const struct dmarc_record *d = &r->dmarc;
			bool sub = r->dmarc_org;
			enum dmarc_policy eff = sub ? d->sp : d->p;
			sb_appendf(sb, ": %s=%s applies, adkim=%s, aspf=%s, pct=%d", sub ? "sp" : "p", dmarc_policy_name(eff),
				   d->adkim == DMARC_ALIGN_STRICT ? "s" : "r", d->aspf == DMARC_ALIGN_STRICT ? "s" : "r",
				   d->pct);
			if (d->rua[0])
				sb_appendf(sb, ", rua=%s", d->rua);
			else
				sb_appendf(sb, ", no rua (no aggregate reports)");
			if (eff == DMARC_P_NONE) {
				st = DNSCHECK_WARN;
				sb_appendf(sb, "; p=none only monitors");
			} else if (d->pct < 100) {
				st = DNSCHECK_WARN;
				sb_appendf(sb, "; the policy applies to %d%% of failing mail only", d->pct);
			} else {
				st = DNSCHECK_PASS;
			}
			if (d->notes[0])
				sb_appendf(sb, " (%s)", d->notes);
		}
	} else if (is_nodata(r->dmarc_status)) {
		st = DNSCHECK_FAIL;
		sb_appendf(sb, "no DMARC record at _dmarc.%s", r->from_domain);
		if (strcmp(r->from_domain, r->org_domain) != 0)
			sb_appendf(sb, " nor at its organisational domain's _dmarc.%s", r->org_domain);
	} else {
		st = DNSCHECK_ERROR;
		sb_appendf(sb, "DMARC lookup %s: %s", r->dmarc_at, st_text(c, r->dmarc_status, b, sizeof b));
	}
	item_add(c, "dmarc", st, sb);
}

static void items_dkim(struct dnscheck *c, struct strbuf *sb)
{
	struct dnscheck_result *r = &c->r;
	char b[96], name[DNSCHECK_NAME];
	enum dnscheck_status st;

	for (size_t i = 0; i < r->n_dkim; i++) {
		const struct dnscheck_dkim *d = &r->dkim[i];
		snprintf(name, sizeof name, "dkim:%s", d->selector);
		if (cancelled_item(c, name, c->dkim_pending[i]))
			continue;
		sb_reset(sb);
		if (d->valid && d->key.revoked) {
			st = DNSCHECK_FAIL;
			sb_appendf(sb, "%s: the key is revoked (empty p=)", d->name);
		} else if (d->valid) {
			const struct dkim_key *k = &d->key;
			sb_appendf(sb, "%s: %s key, %d bits", d->name, dkim_key_type_name(k->type), k->bits);
			if (k->type == DKIM_KEY_RSA && k->bits < 1024) {
				st = DNSCHECK_FAIL;
				sb_append(sb, ": too short, verifiers refuse RSA keys under 1024 bits (RFC 8301)");
			} else if (k->type == DKIM_KEY_RSA && k->bits < 2048) {
				st = DNSCHECK_WARN;
				sb_append(sb, ": shorter than the 2048 bits RFC 8301 recommends");
			} else if (k->testing) {
				st = DNSCHECK_WARN;
				sb_append(sb, ": t=y, the domain is testing DKIM");
			} else if (k->sha1_only) {
				st = DNSCHECK_WARN;
				sb_append(sb, ": h= allows only sha1, which verifiers refuse (RFC 8301)");
			} else {
				st = DNSCHECK_PASS;
			}
			if (k->notes[0])
				sb_appendf(sb, " (%s)", k->notes);
		} else if (d->status == 0 || d->status == ARES_EBADRESP) {
			st = DNSCHECK_FAIL;
			sb_appendf(sb, "%s: broken key record: %s", d->name, d->problem[0] ? d->problem : "unreadable answer");
		} else if (is_nodata(d->status) || d->status == ARES_EBADNAME) {
			st = DNSCHECK_FAIL;
			sb_appendf(sb, "no key at %s (%s)", d->name, st_text(c, d->status, b, sizeof b));
		} else {
			st = DNSCHECK_ERROR;
			sb_appendf(sb, "DKIM key lookup %s: %s", d->name, st_text(c, d->status, b, sizeof b));
		}
		if (d->record[0]) {
			char rec[112];
			dnsrec_show(rec, sizeof rec, d->record, strlen(d->record));
			sb_appendf(sb, " (\"%s\")", rec);
		}
		item_add(c, name, st, sb);
	}
}

static void items_dnsbl(struct dnscheck *c, struct strbuf *sb)
{
	struct dnscheck_result *r = &c->r;
	char b[96], name[DNSCHECK_NAME];
	enum dnscheck_status st;

	for (size_t i = 0; i < r->n_dnsbl; i++) {
		const struct dnscheck_dnsbl *d = &r->dnsbl[i];
		snprintf(name, sizeof name, "dnsbl:%s", d->zone);
		if (ip_missing(c, name, sb) || cancelled_item(c, name, c->dnsbl_pending[i] || d->status == ST_PENDING))
			continue;
		sb_reset(sb);
		if (d->status == 0 && d->answer.verdict == DNSBL_LISTED) {
			st = DNSCHECK_FAIL;
			sb_appendf(sb, "%s is listed: %s → %s", r->ip, d->query, d->answer.codes);
		} else if (d->status == 0 && d->answer.verdict == DNSBL_ERROR) {
			st = DNSCHECK_ERROR;
			sb_appendf(sb, "%s → %s: not a listing: %s", d->query, d->answer.codes, d->answer.problem);
		} else if (d->status == 0 || is_nodata(d->status)) {
			st = DNSCHECK_PASS;
			sb_appendf(sb, "%s is not listed (%s: %s)", r->ip, d->query,
				   st_text(c, d->status == 0 ? ARES_ENODATA : d->status, b, sizeof b));
		} else {
			st = DNSCHECK_ERROR;
			sb_appendf(sb, "%s: %s", d->query[0] ? d->query : d->zone, st_text(c, d->status, b, sizeof b));
		}
		if (d->reason[0])
			sb_appendf(sb, " \"%s\"", d->reason);
		item_add(c, name, st, sb);
	}
}

static void items_build(struct dnscheck *c)
{
	struct strbuf sb;
	sb_init(&sb);
	c->r.worst = DNSCHECK_PASS;
	if (c->want_mx)
		items_mx(c, &sb);
	if (c->want_port)
		items_port(c, &sb);
	if (c->want_ip)
		items_ptr(c, &sb);
	if (c->want_helo)
		items_helo(c, &sb);
	if (c->want_mail) {
		items_spf(c, &sb);
		items_dmarc(c, &sb);
		items_dkim(c, &sb);
	}
	items_dnsbl(c, &sb);
	sb_fini(&sb);
}

/* ---- a run's life ---- */

static void run_free(struct dnscheck *c)
{
	free(c->source_ip);
	free(c->relay_host);
	free(c->mail_from);
	free(c->r.dkim);
	free(c->r.dnsbl);
	free(c->r.items);
	free(c->dkim_pending);
	free(c->dnsbl_pending);
	sb_fini(&c->port_log);
	free(c);
}

static void run_unref(struct dnscheck *c)
{
	if (--c->refs == 0)
		run_free(c);
}

static void run_unlink(struct dnscheck *c)
{
	struct dnscheck_ctx *ctx = c->ctx;
	if (c->prev)
		c->prev->next = c->next;
	else if (ctx)
		ctx->runs = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void run_finish(struct dnscheck *c)
{
	if (c->finished)
		return;
	if (c->ctx)
		evtimer_stop(c->ctx->loop, &c->finish_timer);
	items_build(c);
	c->finished = true;
	run_unlink(c);
	c->done(c->arg, &c->r);
	run_unref(c);
}

static void on_finish_timer(void *arg)
{
	run_finish(arg);
}

static void work_done(struct dnscheck *c)
{
	if (--c->pending == 0 && !c->finished && c->ctx)
		evtimer_start(c->ctx->loop, &c->finish_timer, mono_us());
}

void dnscheck_cancel(struct dnscheck *c)
{
	if (!c || c->finished)
		return;
	struct dnscheck_ctx *ctx = c->ctx;
	c->r.cancelled = true;
	c->finished = true; /* answers from now on are dropped */
	if (c->spf) {
		struct spf_check *s = c->spf;
		c->spf = NULL;
		spf_check_cancel(s);
	}
	port_close(c);
	port_unqueue(c);
	port_slot_free(c);
	/* own queries not started yet: dropped */
	if (ctx) {
		for (struct dq *q = ctx->wait_head, *next; q; q = next) {
			next = q->next;
			if (q->run != c)
				continue;
			if (q->prev)
				q->prev->next = q->next;
			else
				ctx->wait_head = q->next;
			if (q->next)
				q->next->prev = q->prev;
			else
				ctx->wait_tail = q->prev;
			c->refs--; /* never 0 here: the run's own reference is still held */
			dq_free(q);
		}
	}
	c->finished = false;
	run_finish(c);
}

struct dnscheck *dnscheck_start(struct dnscheck_ctx *ctx, const struct dnscheck_params *p, dnscheck_done_cb *done,
				void *arg)
{
	struct dnscheck *c = xcalloc(1, sizeof *c);
	struct dnscheck_result *r = &c->r;

	c->ctx = ctx;
	c->done = done;
	c->arg = arg;
	c->refs = 1;
	c->pending = 1; /* released at the end of this function */
	c->port_fd = -1;
	sb_init(&c->port_log);
	evtimer_init(&c->finish_timer, on_finish_timer, c);
	evtimer_init(&c->port_timer, port_on_timer, c);
	c->next = ctx->runs;
	if (ctx->runs)
		ctx->runs->prev = c;
	ctx->runs = c;

	snprintf(r->target, sizeof r->target, "%s", p->target ? p->target : "");
	r->mx_status = ST_PENDING;
	r->ptr_status = ST_PENDING;
	r->dmarc_status = ST_PENDING;
	r->helo_addrs.status = ST_PENDING;
	c->source_ip = xstrdup(p->source_ip);
	c->relay_host = xstrdup(p->relay_host);
	c->mail_from = xstrdup(p->mail_from);
	c->port = p->port;
	c->connect_ms = p->connect_timeout_ms > 0 ? p->connect_timeout_ms : PORT_DEFAULT_TIMEOUT_MS;
	c->banner_ms = p->banner_timeout_ms > 0 ? p->banner_timeout_ms : PORT_DEFAULT_TIMEOUT_MS;

	/* recipient side */
	if (p->domain && p->domain[0]) {
		name_copy(r->domain, sizeof r->domain, p->domain);
		c->want_mx = true;
		c->want_port = p->port > 0;
		query(c, r->domain, ns_t_mx, on_mx, 0);
	}

	/* DMARC and DKIM of the From domain */
	if (p->mail_from && dnsrec_address_domain(p->mail_from, r->from_domain, sizeof r->from_domain) == 0) {
		char name[2 * DNSREC_MAX_NAME + 16];
		c->want_mail = true;
		if (dnsrec_org_domain(ctx_psl(ctx), r->from_domain, r->org_domain, sizeof r->org_domain) < 0)
			memcpy(r->org_domain, r->from_domain, sizeof r->org_domain);
		snprintf(r->dmarc_at, sizeof r->dmarc_at, "_dmarc.%s", r->from_domain);
		c->dmarc_pending = true;
		query(c, r->dmarc_at, ns_t_txt, on_dmarc, 0);
		r->n_dkim = p->n_dkim_selectors;
		r->dkim = xcalloc(r->n_dkim ? r->n_dkim : 1, sizeof *r->dkim);
		c->dkim_pending = xcalloc(r->n_dkim ? r->n_dkim : 1, sizeof *c->dkim_pending);
		for (size_t i = 0; i < r->n_dkim; i++) {
			struct dnscheck_dkim *d = &r->dkim[i];
			name_copy(d->selector, sizeof d->selector, p->dkim_selectors[i]);
			snprintf(name, sizeof name, "%s._domainkey.%s", d->selector, r->from_domain);
			name_copy(d->name, sizeof d->name, name);
			if (strlen(name) > DNSREC_MAX_NAME || !name_queryable(name)) {
				d->status = ARES_EBADNAME;
				continue;
			}
			c->dkim_pending[i] = true;
			query(c, name, ns_t_txt, on_dkim, i);
		}
	}

	/* DNSBL zones: queried once the sending IP is known */
	r->n_dnsbl = p->n_dnsbl;
	r->dnsbl = xcalloc(r->n_dnsbl ? r->n_dnsbl : 1, sizeof *r->dnsbl);
	c->dnsbl_pending = xcalloc(r->n_dnsbl ? r->n_dnsbl : 1, sizeof *c->dnsbl_pending);
	for (size_t i = 0; i < r->n_dnsbl; i++) {
		name_copy(r->dnsbl[i].zone, sizeof r->dnsbl[i].zone, p->dnsbl[i]);
		r->dnsbl[i].status = ST_PENDING;
	}

	/* the EHLO name */
	if (p->helo && p->helo[0]) {
		size_t n = strlen(p->helo);
		c->want_helo = true;
		name_copy(r->helo, sizeof r->helo, p->helo);
		if (p->helo[0] == '[' && n > 2 && p->helo[n - 1] == ']') {
			char lit[46];
			const char *in = p->helo + 1;
			size_t ln = n - 2;
			if (ln > 5 && strncasecmp(in, "IPv6:", 5) == 0)
				in += 5, ln -= 5;
			snprintf(lit, sizeof lit, "%.*s", (int)(ln < 45 ? ln : 45), in);
			c->helo_literal = true;
			unsigned char tmp[16];
			if (inet_pton(AF_INET, lit, tmp) == 1 || inet_pton(AF_INET6, lit, tmp) == 1) {
				snprintf(r->helo_addrs.ip[0], 46, "%s", lit);
				r->helo_addrs.n = 1;
			}
			r->helo_addrs.status = r->helo_addrs.n ? 0 : ARES_EBADNAME;
		} else {
			look_start(c, &c->helo_look, LOOK_HELO, 0, r->helo, &r->helo_addrs);
		}
	}

	/* the sending IP */
	c->want_ip = (p->ip && p->ip[0]) || (p->source_ip && p->source_ip[0]) || (p->relay_host && p->relay_host[0]) ||
		     c->want_mail || c->want_helo || r->n_dnsbl;
	if (!c->want_ip) {
		c->ip_started = true; /* a bare domain: no sending identity to check */
	} else if (p->ip && p->ip[0]) {
		set_ip(c, p->ip, p->ip_how && p->ip_how[0] ? p->ip_how : "given");
		ip_checks_start(c);
	} else if (p->relay_host && p->relay_host[0]) {
		look_start(c, &c->relay_look, LOOK_RELAY, 0, p->relay_host, &c->relay_addrs);
	} else if (p->source_ip && p->source_ip[0]) {
		set_ip(c, p->source_ip, "source_ip");
		ip_checks_start(c);
	} else if (c->want_mx) {
		c->need_route = true; /* mx_phase_done() */
	} else {
		ip_unknown(c, p->ip_unknown && p->ip_unknown[0] ? p->ip_unknown
							       : "no source_ip and no domain whose MX gives the route");
	}
	work_done(c);
	return c;
}

void dnscheck_params_sender(struct dnscheck_params *p, const struct mon_conf *conf, const struct conf_sender *s)
{
	p->helo = s->helo;
	p->mail_from = s->mail_from;
	p->source_ip = s->source_ip;
	p->dkim_selectors = s->dkim_selectors;
	p->n_dkim_selectors = s->n_dkim_selectors;
	p->dnsbl = conf->dnsbl;
	p->n_dnsbl = conf->n_dnsbl;
	if (s->mode == CONF_MODE_RELAY) {
		p->relay_host = s->host;
		p->port = 0; /* the relay is not an MX */
	} else {
		p->relay_host = NULL;
		p->port = s->port;
	}
}

/* ---- JSON ---- */

void dnscheck_result_json(const struct dnscheck_result *r, struct json *j)
{
	json_obj_begin(j);
	json_kstr(j, "target", r->target);
	if (r->domain[0])
		json_kstr(j, "domain", r->domain);
	if (r->ip[0])
		json_kstr(j, "ip", r->ip);
	json_key(j, "checks");
	json_arr_begin(j);
	for (size_t i = 0; i < r->n_items; i++) {
		const struct dnscheck_item *it = &r->items[i];
		json_obj_begin(j);
		json_kstr(j, "name", it->name);
		json_kstr(j, "status", dnscheck_status_name(it->status));
		json_kstr(j, "detail", it->detail);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}
