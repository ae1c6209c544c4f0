#include "engine.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "curl_glue.h"
#include "diagnose.h"
#include "dns.h"
#include "dnscheck.h"
#include "evloop.h"
#include "json.h"
#include "jsonlog.h"
#include "sockts.h"
#include "log.h"
#include "message.h"
#include "probe.h"
#include "reply.h"
#include "schedule.h"
#include "strbuf.h"
#include "strmap.h"
#include "token.h"
#include "headers.h"
#include "imap.h"
#include "worker.h"
#include "xalloc.h"

#define DAY_MS 86400000LL
#define COMPACT_BYTES (4u << 20)

/* A configuration and what depends on it; kept while an attempt started under it runs. */
struct confref {
	struct mon_conf *conf;
	struct dns *dns;
	int refs;              /* running attempts, plus one while current */
	struct confref *next;
};

struct seedstate {
	struct engine *e;
	const struct conf_seed *seed;
	struct schedule sched;
	int64_t offset;
	int64_t sub_ms;        /* 0-999: the seed's fixed place within its slot's second */
	int64_t last_slot;     /* latest slot probed or seen (Unix s) */
	int64_t next_slot;
	struct evtimer timer;
	struct job *queued;    /* a slot job not started yet */
};

enum job_state { JOB_WAITING = 0, JOB_READY, JOB_RUNNING };

struct job {
	struct engine *e;
	char *seed_name;
	const struct conf_seed *seed;  /* in e->cur, or in cr while running */
	struct seedstate *ss;          /* slot jobs not yet started: the seed state that made it */
	struct confref *cr;            /* running: the configuration it started under */
	char *dom;
	char probe_id[40];             /* "" until the first attempt */
	int64_t sent_ms;               /* first attempt's start; 0 before */
	int64_t slot_s;                /* 0: not from a schedule */
	int n;                         /* attempts decided */
	struct strbuf att;             /* decided attempts as JSON objects */
	int64_t due_ms;
	unsigned waited;
	enum job_state state;
	bool must_run;                 /* ENGINE_ONCE: a seed asked for; runs even after the wait */
	bool unjournaled;              /* nothing of it can outlive the run: no journal records */
	struct probe_job *pj;
	struct evtimer timer;          /* JOB_WAITING: due */
	struct job *prev, *next;       /* e->jobs */
	struct job *rprev, *rnext;     /* JOB_READY: e->ready, oldest first */
	struct job *lnext;             /* pump(): claimed, to launch after the journal sync */
	/* Decided, waiting for the DNS checks of its sending identity (still JOB_RUNNING, no longer
	 * counted in n_running): the result, moved out of the probe. */
	struct probe_result *held;     /* owned */
	struct dnsid *dwait;           /* the run waited for */
	struct job *dnext;             /* dwait->waiters */
	bool dns_own;                  /* its attempt started that run */
};

/* The DNS checks of one sending identity (IP, helo, mail_from, DKIM selectors, DNSBL zones):
 * one run on the engine's check context, shared by the probes that decide while it runs and
 * reused for dns.checks_ttl. */
struct dnsid {
	struct engine *e;
	char *key;
	struct dnscheck *run;          /* running; NULL once done */
	struct probe_dns *dns;         /* done: what it found (owned); each result gets a copy */
	char ip_from[16];
	int64_t started_us, expires_us;
	unsigned gen;                  /* e->dns_gen at its start: a reload makes older ones stale */
	struct job *waiters;           /* jobs waiting for the run (job->dnext) */
	bool resuming;                 /* its waiters are being decided: not to be dropped */
	struct evtimer deadline;       /* the most a result waits: then the run is cut short */
	struct dnsid *prev, *next;     /* e->dnsids */
};

/* A probe accepted and not yet read back: looked for in the seed's mailbox and, when its sender
 * has a bounce_imap group, for bounces in the sender's mailbox, until readback.timeout after
 * acceptance; then, reported missing, until readback.late (late). */
struct rb {
	struct engine *e;
	struct rb *prev, *next;        /* e->rbs */
	char probe_id[40];
	char *seed_name;
	int64_t sent_ms, accepted_ms, deadline_ms; /* deadline: the timeout, or the late window's end */
	char *json;                    /* the result line with "readback":{"status":"pending"} */
	struct imap_want want[2];      /* per mailbox: windows; [0], once found, what was found */
	struct mbox *mb[2];            /* 0: the seed's mailbox, 1: the sender's bounce mailbox; NULL: none */
	bool due[2];                   /* waiting for the next poll of mb[i] */
	bool polling[2];               /* in the poll mb[i] runs now */
	bool late;                     /* reported missing; looked for until deadline_ms */
	struct strbuf bounces;         /* bounces found so far: JSON objects separated by ',' */
	int n_bounces;
	bool bounced;                  /* a bounce with action "failed" was found */
	char last_bounce[1024];        /* the latest bounce in words, for the human output */
	struct imap_bounce last_b;     /* the latest bounce found by this process (has_b) */
	bool has_b;
	int polls;                     /* rounds (every mailbox polled once) */
	int commands;                  /* IMAP commands of the polls it was part of */
	double imap_ms;                /* time those polls took */
	int duplicates;                /* further copies of the probe found and cleaned up */
	char last_error[256];
	bool refused;                  /* the seed mailbox refused the login */
	bool must_run;                 /* ENGINE_DUE: due at the start, polled even after the wait */
	bool finish_run;               /* ENGINE_ONCE with wait_readback: the run waits for its end */
	struct evtimer timer;
};

/* A mailbox polled for readbacks: a seed's (key: the seed name) or a sender's bounce mailbox
 * (key "sender:NAME"). One poll at a time, on a worker thread, on an IMAP connection kept from
 * poll to poll; a poll looks for every due probe of the mailbox at once. */
struct mbox {
	struct engine *e;
	char *key;
	int leg;                       /* 0: a seed's mailbox, 1: a sender's bounce mailbox */
	struct imap_conn *conn;        /* used by the worker while polling */
	struct rb **rbs;               /* readbacks watching it */
	size_t n_rbs, cap_rbs;
	struct worker *w;              /* polling */
	struct mbox_req *req;
};

/* One poll's request, owned by the worker while it runs. */
struct mbox_req {
	struct imap_account acct;
	char *url, *username, *password, *ca_file, *move_to, *source_ip, *seed;
	unsigned char key[TOKEN_KEY_LEN];
	struct imap_want *want;        /* copies of the due probes' windows */
	struct rb **rbs;               /* whose they are (NULL: freed meanwhile) */
	size_t n;
	struct imap_poll poll;
};

struct domstate {
	int in_flight;
	int64_t last_start_ms;
	int64_t day;
	int count;
};

struct engine {
	struct engine_params p;
	struct evloop *loop;
	struct curl_glue *glue;
	struct confref *cur;           /* current configuration (head of the list) */
	struct journal *journal;
	struct seedstate *ss;
	size_t n_ss;
	struct job *jobs;              /* every job, newest first */
	struct job *ready, *ready_tail; /* JOB_READY jobs in the order they became ready */
	size_t n_running;
	struct strmap doms;            /* domain -> struct domstate * (owned) */
	struct domstate **dom_list;
	size_t n_doms;
	struct evtimer pump_timer;
	struct evtimer end_timer;      /* ONCE/DUE: the wait's end; shutdown: the grace's end */
	struct evtimer idle_check;
	int64_t deadline_ms;           /* ONCE/DUE: the wait's end */
	enum { PHASE_RUN = 0, PHASE_DRAIN, PHASE_STOP } phase; /* DRAIN: only must_run jobs start */
	int64_t rotate_warned_us;  /* when a failed rotation of the detail log was last logged */
	bool log_warned;
	bool has_key;
	unsigned char token_key[TOKEN_KEY_LEN];
	struct rb *rbs;
	size_t n_polling;
	bool sync_pending;             /* a send record appended since the last journal_sync */
	struct strmap wins;            /* seed or "sender:NAME" -> struct mbox_win * (owned) */
	struct strmap mboxes;          /* seed or "sender:NAME" -> struct mbox * (in mbox_list) */
	struct mbox **mbox_list;       /* owned */
	size_t n_mbox;
	/* DNS checks of the probes' sending identities (dns.probe_checks): one context on the loop
	 * and resolver of dc_cr (a reference held), its cap for all runs. */
	struct dnscheck_ctx *dc;
	struct confref *dc_cr;
	struct dnsid *dnsids;          /* runs and the findings kept for dns.checks_ttl */
	size_t n_dnsruns;              /* of dnsids running */
	size_t n_dnswait;              /* jobs waiting for a run */
	unsigned dns_gen;
};

/* What a seed mailbox looked like at the end of the last poll: a probe sent after it is
 * searched only among UIDs from next on (flat cost however full the mailbox is). */
struct mbox_win {
	uint32_t next[2], validity[2]; /* INBOX, junk */
	int64_t at_ms;                 /* the poll's end: the SELECTs were before it */
};

static void pump(struct engine *e);
static void pump_soon(struct engine *e);
static void rb_start(struct engine *e, const char *probe_id, const char *seed, int64_t sent_ms, int64_t accepted_ms,
		     const char *json, const char *bounces, int64_t late_until_ms, int64_t first_poll_ms);
static void job_decided(struct job *job, struct probe_result *r);
static bool rb_wanted(const struct conf_seed *seed);

/* ---- small helpers ---- */

static int64_t mono_due_us(int64_t wall_due_ms)
{
	return mono_us() + (wall_due_ms - wall_ms()) * 1000;
}

static struct domstate *dom_get(struct engine *e, const char *dom)
{
	struct domstate *d = strmap_get(&e->doms, dom);
	if (!d) {
		d = xcalloc(1, sizeof *d);
		strmap_put(&e->doms, dom, d);
		e->dom_list = xrealloc(e->dom_list, (e->n_doms + 1) * sizeof *e->dom_list);
		e->dom_list[e->n_doms++] = d;
	}
	return d;
}

static int dom_count_today(struct domstate *d, int64_t now_ms)
{
	if (d->day != now_ms / DAY_MS) {
		d->day = now_ms / DAY_MS;
		d->count = 0;
	}
	return d->count;
}

static struct confref *confref_new(struct mon_conf *conf, struct evloop *loop, char **err)
{
	struct dns *dns = dns_new(loop, conf->dns_servers, conf->n_dns_servers, conf->dns_timeout_ms, err);
	if (!dns)
		return NULL;
	struct confref *cr = xcalloc(1, sizeof *cr);
	cr->conf = conf;
	cr->dns = dns;
	cr->refs = 1;
	return cr;
}

static void confref_release(struct engine *e, struct confref *cr)
{
	if (--cr->refs > 0)
		return;
	for (struct confref **pp = &e->cur; *pp; pp = &(*pp)->next) {
		if (*pp == cr) {
			*pp = cr->next;
			break;
		}
	}
	dns_free(cr->dns);
	conf_free(cr->conf);
	free(cr);
}

static const struct mon_conf *conf_of(const struct engine *e)
{
	return e->cur->conf;
}

/* ---- jobs ---- */

static void job_timer_cb(void *arg);

static struct job *job_new(struct engine *e, const struct conf_seed *seed, const char *seed_name, const char *dom)
{
	struct job *job = xcalloc(1, sizeof *job);
	job->e = e;
	job->seed = seed;
	job->seed_name = xstrdup(seed_name);
	job->dom = xstrdup(dom);
	sb_init(&job->att);
	evtimer_init(&job->timer, job_timer_cb, job);
	job->prev = NULL;
	job->next = e->jobs;
	if (e->jobs)
		e->jobs->prev = job;
	e->jobs = job;
	return job;
}

/* The only place a job's state changes: keeps the ready queue in step. */
static void job_set_state(struct job *job, enum job_state st)
{
	struct engine *e = job->e;
	if (job->state == JOB_READY && st != JOB_READY) {
		if (job->rprev)
			job->rprev->rnext = job->rnext;
		else
			e->ready = job->rnext;
		if (job->rnext)
			job->rnext->rprev = job->rprev;
		else
			e->ready_tail = job->rprev;
		job->rprev = job->rnext = NULL;
	} else if (job->state != JOB_READY && st == JOB_READY) {
		job->rprev = e->ready_tail;
		job->rnext = NULL;
		if (e->ready_tail)
			e->ready_tail->rnext = job;
		else
			e->ready = job;
		e->ready_tail = job;
	}
	job->state = st;
}

static void job_free(struct job *job)
{
	struct engine *e = job->e;
	if (job->dwait) { /* the engine goes away while it waits for DNS checks */
		for (struct job **pp = &job->dwait->waiters; *pp; pp = &(*pp)->dnext) {
			if (*pp == job) {
				*pp = job->dnext;
				break;
			}
		}
		job->dwait = NULL;
		e->n_dnswait--;
	}
	if (job->held) {
		probe_result_fini(job->held);
		free(job->held);
		job->held = NULL;
	}
	job_set_state(job, JOB_WAITING);
	evtimer_stop(e->loop, &job->timer);
	if (job->ss && job->ss->queued == job)
		job->ss->queued = NULL;
	if (job->prev)
		job->prev->next = job->next;
	else
		e->jobs = job->next;
	if (job->next)
		job->next->prev = job->prev;
	sb_fini(&job->att);
	free(job->seed_name);
	free(job->dom);
	free(job);
}

/* Waits until due_ms, then the job is ready to start when the limits allow. */
static void job_schedule(struct job *job, int64_t due_ms)
{
	job->due_ms = due_ms;
	job_set_state(job, JOB_WAITING);
	evtimer_start(job->e->loop, &job->timer, mono_due_us(due_ms));
}

static void job_timer_cb(void *arg)
{
	struct job *job = arg;
	int64_t now = wall_ms();
	if (now < job->due_ms) { /* the wall clock went back: wait for it */
		evtimer_start(job->e->loop, &job->timer, mono_due_us(job->due_ms));
		return;
	}
	job_set_state(job, JOB_READY);
	pump_soon(job->e);
}

static bool dns_wait(struct job *job, const struct confref *cr, struct probe_result *r);

static void on_attempt_done(void *arg, struct probe_result *r)
{
	struct job *job = arg;
	struct engine *e = job->e;
	job->pj = NULL;
	e->n_running--;
	dom_get(e, job->dom)->in_flight--;
	struct confref *cr = job->cr;
	job->cr = NULL;
	r->due_ms = job->due_ms;
	r->waited_for = job->waited;
	/* The sending identity's DNS checks first (cached: at once), then the result. */
	if (!dns_wait(job, cr, r))
		job_decided(job, r);
	confref_release(e, cr);
	pump_soon(e);
}

/* Claims a job for an attempt: limits' bookkeeping and its journal record (not yet synced:
 * pump() syncs once for all it starts, then launches them). */
/* A manual probe (ENGINE_ONCE) with no retry schedule and no readback ends within the run:
 * nothing would be resumed from the journal, so it writes no records (and no fdatasync: two
 * per probe were a quarter of `probe`'s CPU at in_flight 1). Scheduled work is always
 * journaled (slots, budgets). */
static bool job_needs_journal(const struct engine *e, const struct job *job)
{
	const struct conf_seed *seed = conf_seed_find(conf_of(e), job->seed_name);
	return e->p.mode != ENGINE_ONCE || conf_of(e)->n_retry_schedule > 0 ||
	       (e->p.readback && e->has_key && rb_wanted(seed));
}

static void job_claim(struct job *job, int64_t now)
{
	struct engine *e = job->e;
	const struct mon_conf *c = conf_of(e);
	char a[24], b[24], n[16], at[24];
	job->unjournaled = !job_needs_journal(e, job);
	if (!job->probe_id[0]) {
		if (message_new_probe_id(job->probe_id, sizeof job->probe_id, now) < 0)
			snprintf(job->probe_id, sizeof job->probe_id, "%08" PRIx64 "000000000000000000000000",
				 (uint64_t)(now / 1000));
		job->sent_ms = now;
	}
	/* Jobs behind a full in_flight limit are not visited; the delay tells. */
	if (!job->waited && now - job->due_ms >= 1000 && e->n_running + 1 >= (size_t)(c->limits_in_flight > 0 ? c->limits_in_flight : 1))
		job->waited |= PROBE_WAITED_IN_FLIGHT;
	if (job->ss) {
		if (job->ss->queued == job)
			job->ss->queued = NULL;
		if (job->slot_s > job->ss->last_slot)
			job->ss->last_slot = job->slot_s;
		job->ss = NULL;
	}
	/* Durable before the attempt: a restart never sends this attempt again. */
	if (e->journal && !job->unjournaled) {
		e->sync_pending = true;
		snprintf(a, sizeof a, "%" PRId64, job->sent_ms);
		snprintf(b, sizeof b, "%" PRId64, job->slot_s);
		snprintf(n, sizeof n, "%d", job->n + 1);
		snprintf(at, sizeof at, "%" PRId64, now);
		journal_append_lazy(e->journal, "send", "id", job->probe_id, "seed", job->seed_name, "dom", job->dom,
				    "sent", a, "slot", b, "n", n, "at", at, NULL);
	}
	struct domstate *d = dom_get(e, job->dom);
	dom_count_today(d, now);
	d->count++;
	d->in_flight++;
	d->last_start_ms = now;
	e->n_running++;
	job_set_state(job, JOB_RUNNING);
	job->cr = e->cur;
	job->cr->refs++;
}

static void job_launch(struct job *job)
{
	struct engine *e = job->e;
	struct probe_env env = {
		.loop = e->loop,
		.dns = job->cr->dns,
		.glue = e->glue,
		.conf = job->cr->conf,
		.keep_transcript = e->p.keep_transcript,
		.token_key = e->has_key ? e->token_key : NULL,
	};
	struct probe_ident id = { .probe_id = job->probe_id, .sent_at_ms = job->sent_ms, .attempt = job->n + 1 };
	log_debug("event=start probe=%s seed=%s attempt=%d slot=%" PRId64 " delay_ms=%" PRId64, job->probe_id,
		  job->seed_name, job->n + 1, job->slot_s, wall_ms() - job->due_ms);
	job->pj = probe_start(&env, job->seed, &id, on_attempt_done, job);
}

/* ---- results ---- */

static void write_detail(struct engine *e, const char *line)
{
	char *err = NULL, *rerr = NULL;
	const struct mon_conf *c = conf_of(e);
	struct jsonlog_rotate rot = { .max_bytes = (long long)c->detail_max_mib << 20, .daily = c->detail_daily,
				      .keep = c->detail_keep };
	/* Only the holder of the state lock (it keeps the journal) rotates: a run without it (a
	 * manual probe beside the daemon, check) only appends. */
	int rc = jsonlog_append(c->state_dir, e->journal ? &rot : NULL, line, &err, &rerr);
	if (rerr) {
		/* once per hour at most: a rotation that fails fails on every line */
		int64_t now = mono_us();
		if (!e->rotate_warned_us || now - e->rotate_warned_us >= INT64_C(3600000000)) {
			log_warnx("detail log not rotated (the line was still written): %s", rerr);
			e->rotate_warned_us = now;
		}
		free(rerr);
	}
	if (rc < 0) {
		if (!e->log_warned)
			log_warnx("detail log not written: %s", err);
		e->log_warned = true;
		free(err);
	} else if (e->log_warned) {
		log_info("detail log written again");
		e->log_warned = false;
	}
}

/* A probe's final line: journaled first (a crash before the detail log is repaired on replay),
 * then the detail log, then marked done. */
static void write_final(struct engine *e, const char *probe_id, const char *seed, const char *line, bool journal)
{
	if (e->journal && journal)
		journal_append(e->journal, "final", "id", probe_id, "seed", seed, "json", line, NULL);
	write_detail(e, line);
	if (e->journal && journal)
		journal_append_lazy(e->journal, "done", "id", probe_id, NULL);
}

/* When to retry after attempt n (1-based) was deferred or failed, or -1 to give up. */
static int64_t retry_at(const struct engine *e, const struct job *job, const struct probe_result *r, int64_t now)
{
	const struct mon_conf *c = conf_of(e);
	if (c->n_retry_schedule == 0)
		return -1;
	size_t i = (size_t)(r->attempt - 1) < c->n_retry_schedule ? (size_t)(r->attempt - 1) : c->n_retry_schedule - 1;
	int64_t delay = c->retry_schedule_ms[i];
	int64_t limit = job->sent_ms + c->retry_give_up_ms;
	/* A server that says when to come back is believed when that is within the schedule. */
	long hint = r->smtp.code >= 400 && r->smtp.code < 500 ? reply_retry_hint(r->smtp.text) : -1;
	if (hint >= 0) {
		int64_t h = (int64_t)(hint < 1 ? 1 : hint) * 1000;
		if (now + h <= limit)
			delay = h;
	}
	if (now + delay > limit)
		return -1;
	return now + delay;
}

static void job_decided(struct job *job, struct probe_result *r)
{
	struct engine *e = job->e;
	int64_t now = wall_ms();
	char *prev = job->att.len ? xstrdup(job->att.s) : NULL;
	free(r->prev_attempts);
	r->prev_attempts = prev;

	/* Rebind to the current configuration (a reload may have happened while it ran). */
	const struct conf_seed *seed = conf_seed_find(conf_of(e), job->seed_name);
	bool retry = r->smtp.outcome == OUTCOME_DEFERRED || r->smtp.outcome == OUTCOME_FAILED;
	int64_t next = retry && seed ? retry_at(e, job, r, now) : -1;
	if (next >= 0 && !e->journal && next > e->deadline_ms && e->p.mode != ENGINE_DAEMON)
		next = -1; /* nobody would ever make this retry */
	if (retry && next < 0 && r->attempt > 1)
		smtp_try_add_warning(&r->smtp, "gave up after %d attempts", r->attempt);
	r->final = next < 0;
	r->retry_at_ms = next < 0 ? 0 : next;
	/* Accepted: read it back where the seed has a mailbox to read. */
	bool readback = r->final && r->smtp.outcome == OUTCOME_ACCEPTED && rb_wanted(seed) && e->p.readback &&
			e->has_key;
	if (readback) {
		r->final = false;
		free(r->readback_json);
		r->readback_json = xstrdup("{\"status\":\"pending\"}");
	}

	struct strbuf line;
	sb_init(&line);
	probe_result_json(r, &line, false);
	char nbuf[16], tbuf[24], sbuf[24], slbuf[24];
	if (readback) {
		int64_t acc = r->attempt_at_ms + (int64_t)r->total_ms;
		if (e->journal) {
			snprintf(sbuf, sizeof sbuf, "%" PRId64, job->sent_ms);
			snprintf(tbuf, sizeof tbuf, "%" PRId64, acc);
			journal_append(e->journal, "rb", "id", job->probe_id, "seed", job->seed_name, "sent", sbuf, "acc",
				       tbuf, "json", line.s, NULL);
		}
		write_detail(e, line.s);
		rb_start(e, job->probe_id, job->seed_name, job->sent_ms, acc, line.s, NULL, 0, now + 1000);
	} else if (r->final) {
		write_final(e, job->probe_id, job->seed_name, line.s, !job->unjournaled);
	} else {
		if (job->att.len)
			sb_appendc(&job->att, ',');
		probe_attempt_json(r, &job->att);
		job->n = r->attempt;
		job->must_run = false;
		if (e->journal) {
			snprintf(nbuf, sizeof nbuf, "%d", job->n);
			snprintf(tbuf, sizeof tbuf, "%" PRId64, next);
			snprintf(sbuf, sizeof sbuf, "%" PRId64, job->sent_ms);
			snprintf(slbuf, sizeof slbuf, "%" PRId64, job->slot_s);
			journal_append(e->journal, "wait", "id", job->probe_id, "seed", job->seed_name, "dom", job->dom,
				       "sent", sbuf, "slot", slbuf, "n", nbuf, "next", tbuf, "att", job->att.s, NULL);
		}
		write_detail(e, line.s);
		char at[32];
		log_info("event=retry probe=%s seed=%s attempt=%d at=%s", job->probe_id, job->seed_name, job->n + 1,
			 iso8601_ms(next, at, sizeof at));
	}
	if (e->p.on_result)
		e->p.on_result(e->p.arg, r, line.s);
	sb_fini(&line);
	if (e->journal)
		journal_maybe_compact(e->journal, COMPACT_BYTES, now);

	if (r->final || readback) {
		job_free(job);
		return;
	}
	job->seed = seed;
	job->waited = 0;
	job_schedule(job, next);
}

/* ---- DNS checks of the sending identity ---- */

/* The check context, on the current configuration's resolver unless runs still use an older one. */
static struct dnscheck_ctx *dc_get(struct engine *e)
{
	if (e->dc && e->dc_cr != e->cur && e->n_dnsruns == 0) {
		dnscheck_ctx_free(e->dc);
		confref_release(e, e->dc_cr);
		e->dc = NULL;
		e->dc_cr = NULL;
	}
	if (!e->dc) {
		e->dc_cr = e->cur;
		e->dc_cr->refs++;
		e->dc = dnscheck_ctx_new(e->loop, e->cur->dns, e->cur->conf->dns_timeout_ms);
	}
	return e->dc;
}

static void dnsid_free(struct dnsid *d)
{
	struct engine *e = d->e;
	evtimer_stop(e->loop, &d->deadline);
	if (d->prev)
		d->prev->next = d->next;
	else
		e->dnsids = d->next;
	if (d->next)
		d->next->prev = d->prev;
	probe_dns_free(d->dns);
	free(d->key);
	free(d);
}

/* The entry for key that a probe may use now (running, or done and fresh); drops stale ones. */
static struct dnsid *dnsid_find(struct engine *e, const char *key)
{
	int64_t now = mono_us();
	struct dnsid *hit = NULL;
	for (struct dnsid *d = e->dnsids, *next; d; d = next) {
		next = d->next;
		bool fresh = d->gen == e->dns_gen;
		if (!d->run && !d->resuming && (!fresh || d->expires_us <= now)) {
			dnsid_free(d);
			continue;
		}
		if (!hit && fresh && strcmp(d->key, key) == 0)
			hit = d;
	}
	return hit;
}

/* The result of job, held while it waited, with the run's findings: decided now. */
static void job_dns_resume(struct job *job, const struct probe_dns *dns)
{
	struct engine *e = job->e;
	struct probe_result *r = job->held;
	job->held = NULL;
	job->dwait = NULL;
	job->dnext = NULL;
	e->n_dnswait--;
	r->dns = probe_dns_copy(dns);
	r->dns->cached = !job->dns_own;
	job_decided(job, r); /* may free job */
	probe_result_fini(r);
	free(r);
}

static void dnsid_on_done(void *arg, const struct dnscheck_result *res)
{
	struct dnsid *d = arg;
	struct engine *e = d->e;
	const struct mon_conf *c = conf_of(e);
	size_t n_fail = 0, n_err = 0;
	d->run = NULL;
	e->n_dnsruns--;
	evtimer_stop(e->loop, &d->deadline);
	d->dns = probe_dns_new();
	snprintf(d->dns->ip, sizeof d->dns->ip, "%s", res->ip);
	snprintf(d->dns->ip_from, sizeof d->dns->ip_from, "%s", res->ip[0] ? d->ip_from : "");
	d->dns->checked_at_ms = wall_ms();
	d->dns->ms = (double)(mono_us() - d->started_us) / 1000.0;
	for (size_t i = 0; i < res->n_items; i++) {
		const struct dnscheck_item *it = &res->items[i];
		probe_dns_add(d->dns, it->name, dnscheck_status_name(it->status), it->detail);
		n_fail += it->status == DNSCHECK_FAIL;
		n_err += it->status == DNSCHECK_ERROR;
	}
	/* Errors (timeouts) are not kept for long: the next probes try again soon. */
	int64_t ttl = c->dns_checks_ttl_ms;
	if ((n_err || res->cancelled) && ttl > 60000)
		ttl = 60000;
	d->expires_us = mono_us() + ttl * 1000;
	/* A run cut short (twice dns.timeout, or stopping) is worth a warning: DNS is slow. */
#define DNSCHECK_LOG "event=dnscheck ip=%s helo=%s from_domain=%s checks=%zu fail=%zu error=%zu%s ms=%.1f", \
		     res->ip[0] ? res->ip : "-", res->helo[0] ? res->helo : "-", \
		     res->from_domain[0] ? res->from_domain : "-", res->n_items, n_fail, n_err, \
		     res->cancelled ? " cut=1" : "", d->dns->ms
	if (res->cancelled)
		log_warnx(DNSCHECK_LOG);
	else
		log_info(DNSCHECK_LOG);
#undef DNSCHECK_LOG
	struct job *w = d->waiters;
	d->waiters = NULL;
	d->resuming = true;
	while (w) {
		struct job *next = w->dnext;
		job_dns_resume(w, d->dns);
		w = next;
	}
	d->resuming = false;
	pump_soon(e);
}

static void dnsid_deadline_cb(void *arg)
{
	struct dnsid *d = arg;
	dnscheck_cancel(d->run); /* done fires now, with what was found (logged there as cut) */
}

/* Cuts every run short (its waiting results are written with what was found). */
static void dns_cut_all(struct engine *e)
{
	for (struct dnsid *d = e->dnsids, *next; d; d = next) {
		next = d->next;
		if (d->run)
			dnscheck_cancel(d->run);
	}
}

static void key_add(struct strbuf *k, const char *s)
{
	sb_append(k, s ? s : "");
	sb_appendc(k, '\n');
}

/* After an attempt decided: the DNS checks of its sending identity. Returns false when the result
 * can be decided now (checks off, or findings still fresh: copied into r->dns), true when job
 * waits for a run (r moved into job->held; job_dns_resume() decides it). */
static bool dns_wait(struct job *job, const struct confref *cr, struct probe_result *r)
{
	struct engine *e = job->e;
	const struct mon_conf *c = cr->conf;
	const struct conf_sender *s = job->seed ? job->seed->sender : NULL;
	if (!c->dns_probe_checks || !s)
		return false;
	/* The identity receivers saw: the local address of the deciding session (through a relay
	 * too: the relay sees it), else of an earlier try that connected, else source_ip. */
	const char *ip = r->smtp.local_ip[0] ? r->smtp.local_ip : NULL, *from = "local_ip";
	for (size_t i = r->n_tries; !ip && i > 0; i--)
		if (r->tries[i - 1].local_ip[0])
			ip = r->tries[i - 1].local_ip;
	if (!ip && s->source_ip && s->source_ip[0]) {
		ip = s->source_ip;
		from = "source_ip";
	}
	struct dnscheck_params p = { .target = s->name };
	dnscheck_params_sender(&p, c, s);
	p.relay_host = NULL;
	p.port = 0;
	p.source_ip = NULL;
	p.ip = ip;
	p.ip_how = ip ? (strcmp(from, "local_ip") == 0 ? "the probe's local address" : "source_ip") : NULL;
	p.ip_unknown = "the probe never connected and the sender has no source_ip";

	struct strbuf key;
	sb_init(&key);
	key_add(&key, ip);
	key_add(&key, p.helo);
	key_add(&key, p.mail_from);
	for (size_t i = 0; i < p.n_dkim_selectors; i++)
		key_add(&key, p.dkim_selectors[i]);
	sb_appendc(&key, '\n');
	for (size_t i = 0; i < p.n_dnsbl; i++)
		key_add(&key, p.dnsbl[i]);

	struct dnsid *d = dnsid_find(e, key.s);
	if (d && !d->run) {
		sb_fini(&key);
		r->dns = probe_dns_copy(d->dns);
		r->dns->cached = true;
		return false;
	}
	bool own = !d;
	if (!d) {
		d = xcalloc(1, sizeof *d);
		d->e = e;
		d->key = sb_steal(&key);
		d->gen = e->dns_gen;
		d->started_us = mono_us();
		snprintf(d->ip_from, sizeof d->ip_from, "%s", from);
		evtimer_init(&d->deadline, dnsid_deadline_cb, d);
		d->next = e->dnsids;
		if (e->dnsids)
			e->dnsids->prev = d;
		e->dnsids = d;
		e->n_dnsruns++;
		d->run = dnscheck_start(dc_get(e), &p, dnsid_on_done, d); /* done fires from the loop */
		evtimer_start(e->loop, &d->deadline, d->started_us + (2 * conf_of(e)->dns_timeout_ms + 1000) * 1000);
		log_debug("event=dnscheck_start probe=%s ip=%s helo=%s", job->probe_id, ip ? ip : "-", p.helo ? p.helo : "-");
	}
	sb_fini(&key);
	job->held = xmalloc(sizeof *job->held);
	probe_result_move(job->held, r);
	job->dwait = d;
	job->dns_own = own;
	job->dnext = NULL;
	struct job **tail = &d->waiters; /* in the order they decided */
	while (*tail)
		tail = &(*tail)->dnext;
	*tail = job;
	e->n_dnswait++;
	return true;
}

/* ---- readback ---- */

static void mbox_detach(struct mbox *mb, struct rb *rb)
{
	for (size_t i = 0; i < mb->n_rbs; i++) {
		if (mb->rbs[i] == rb) {
			mb->rbs[i] = mb->rbs[--mb->n_rbs];
			break;
		}
	}
	for (size_t i = 0; mb->req && i < mb->req->n; i++)
		if (mb->req->rbs[i] == rb)
			mb->req->rbs[i] = NULL; /* the poll's result for it is dropped */
}

static void mbox_attach(struct mbox *mb, struct rb *rb)
{
	if (mb->n_rbs == mb->cap_rbs) {
		mb->cap_rbs = mb->cap_rbs ? 2 * mb->cap_rbs : 4;
		mb->rbs = xrealloc(mb->rbs, mb->cap_rbs * sizeof *mb->rbs);
	}
	mb->rbs[mb->n_rbs++] = rb;
}

static void rb_free(struct rb *rb)
{
	struct engine *e = rb->e;
	evtimer_stop(e->loop, &rb->timer);
	for (int i = 0; i < 2; i++)
		if (rb->mb[i])
			mbox_detach(rb->mb[i], rb);
	if (rb->prev)
		rb->prev->next = rb->next;
	else
		e->rbs = rb->next;
	if (rb->next)
		rb->next->prev = rb->prev;
	imap_want_fini(&rb->want[0]);
	imap_want_fini(&rb->want[1]);
	sb_fini(&rb->bounces);
	free(rb->seed_name);
	free(rb->json);
	free(rb);
}

static void mbox_req_free(struct mbox_req *q)
{
	if (q->password) {
		OPENSSL_cleanse(q->password, strlen(q->password));
		free(q->password);
	}
	OPENSSL_cleanse(q->key, sizeof q->key);
	for (size_t i = 0; i < q->n; i++)
		imap_want_fini(&q->want[i]);
	free(q->want);
	free(q->rbs);
	free(q->url);
	free(q->username);
	free(q->ca_file);
	free(q->move_to);
	free(q->source_ip);
	free(q->seed);
	free(q);
}

static struct mbox *mbox_get(struct engine *e, const char *key, int leg)
{
	struct mbox *mb = strmap_get(&e->mboxes, key);
	if (!mb) {
		mb = xcalloc(1, sizeof *mb);
		mb->e = e;
		mb->key = xstrdup(key);
		mb->leg = leg;
		mb->conn = imap_conn_new();
		strmap_put(&e->mboxes, key, mb);
		e->mbox_list = xrealloc(e->mbox_list, (e->n_mbox + 1) * sizeof *e->mbox_list);
		e->mbox_list[e->n_mbox++] = mb;
	}
	return mb;
}

static void mbox_free(struct mbox *mb)
{
	if (mb->w)
		worker_cancel(mb->w); /* waits for the thread */
	if (mb->req) {
		mb->e->n_polling--;
		mbox_req_free(mb->req);
	}
	imap_conn_free(mb->conn);
	free(mb->rbs);
	free(mb->key);
	free(mb);
}

/* Replaces the first "from" in s by "to" (owned result). */
static char *replace_once(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);
	if (!p)
		return xstrdup(s);
	struct strbuf sb;
	sb_init(&sb);
	sb_appendn(&sb, s, (size_t)(p - s));
	sb_append(&sb, to);
	sb_append(&sb, p + strlen(from));
	char *out = sb_steal(&sb);
	sb_fini(&sb);
	return out;
}

/* Whether folder is where the seed expects its probes (INBOX, or the junk folder). */
static bool placement_ok(const struct conf_seed *seed, const struct imap_want *w)
{
	const char *want = seed && seed->expect_folder ? seed->expect_folder : "INBOX";
	if (strcasecmp(want, "INBOX") == 0)
		return !w->junk && strcasecmp(w->folder, "INBOX") == 0;
	if (strcasecmp(want, "Junk") == 0 || strcasecmp(want, "Spam") == 0)
		return w->junk;
	return strcmp(want, w->folder) == 0;
}

/* From the found probe's header: the receiver's verdicts (Authentication-Results, trusted by
 * authserv-id) and the Received chain as hops with per-hop delays. */
static void header_forensics(struct json *j, const struct rb *rb, const struct conf_seed *seed, char verdicts[3][24])
{
	const char *h = rb->want[0].header;
	size_t len = strlen(h);
	char at[32];
	struct hdr_auth *auth = xcalloc(1, sizeof *auth);
	hdr_auth_parse(h, len, seed ? seed->imap.authserv_id : NULL, auth);
	json_key(j, "auth");
	json_obj_begin(j);
	json_kstr(j, "authserv_id", auth->authserv_id);
	json_kstr(j, "spf", auth->spf[0] ? auth->spf : "none");
	json_kstr(j, "dkim", auth->dkim[0] ? auth->dkim : "none");
	json_kstr(j, "dmarc", auth->dmarc[0] ? auth->dmarc : "none");
	if (auth->arc[0])
		json_kstr(j, "arc", auth->arc);
	json_kint(j, "fields", (int64_t)auth->n_fields);
	json_kint(j, "trusted_fields", (int64_t)auth->n_trusted);
	json_obj_end(j);
	snprintf(verdicts[0], sizeof verdicts[0], "%s", auth->spf);
	snprintf(verdicts[1], sizeof verdicts[1], "%s", auth->dkim);
	snprintf(verdicts[2], sizeof verdicts[2], "%s", auth->dmarc);
	free(auth);

	struct hdr_chain *chain = xcalloc(1, sizeof *chain);
	hdr_received_chain(h, len, chain);
	json_key(j, "hops");
	json_arr_begin(j);
	for (size_t i = 0; i < chain->n; i++) {
		const struct hdr_hop *hop = &chain->hop[i];
		json_obj_begin(j);
		json_kstr(j, "from", hop->from);
		json_kstr(j, "by", hop->by);
		if (hop->with[0])
			json_kstr(j, "with", hop->with);
		if (hop->ip[0])
			json_kstr(j, "ip", hop->ip);
		json_key(j, "at");
		if (hop->at >= 0)
			json_str(j, iso8601_ms(hop->at * 1000, at, sizeof at));
		else
			json_null(j);
		json_kdouble(j, "delay_s", hop->delay_s, 0);
		json_obj_end(j);
	}
	json_arr_end(j);
	/* The split: queueing before acceptance (retries) and acceptance to the mailbox, the latter
	 * also by the topmost Received date (the receiver's clock, 1 s). */
	const struct hdr_hop *top = chain->n ? &chain->hop[chain->n - 1] : NULL;
	json_kdouble(j, "before_acceptance_s", (double)(rb->accepted_ms - rb->sent_ms) / 1000.0, 3);
	if (top && top->at >= 0)
		json_kdouble(j, "received_delay_s", (double)top->at - (double)(rb->accepted_ms / 1000), 0);
	free(chain);
}

static void rb_schedule(struct rb *rb, int64_t at_ms)
{
	evtimer_start(rb->e->loop, &rb->timer, mono_due_us(at_ms));
}

/* Polls of a late probe: readback.timeout / 6, between 1 s and 5 min. */
static int64_t late_interval_ms(const struct engine *e)
{
	int64_t t = conf_of(e)->readback_timeout_ms / 6;
	return t < 1000 ? 1000 : t > 300000 ? 300000 : t;
}

/* Journals a late watch (after the missing result's final and done records). */
static void rb_journal_late(struct rb *rb)
{
	struct engine *e = rb->e;
	if (!e->journal)
		return;
	char s[24], a[24], u[24];
	snprintf(s, sizeof s, "%" PRId64, rb->sent_ms);
	snprintf(a, sizeof a, "%" PRId64, rb->accepted_ms);
	snprintf(u, sizeof u, "%" PRId64, rb->deadline_ms);
	journal_append_lazy(e->journal, "late", "id", rb->probe_id, "seed", rb->seed_name, "sent", s, "acc", a, "until",
			    u, "json", rb->json, NULL);
	if (rb->bounces.len)
		journal_append_lazy(e->journal, "bnc", "id", rb->probe_id, "json", rb->bounces.s, NULL);
}

static void rb_finish(struct rb *rb, const char *status)
{
	struct engine *e = rb->e;
	int64_t now = wall_ms();
	const struct conf_seed *seed = conf_seed_find(conf_of(e), rb->seed_name);
	const struct imap_want *w = &rb->want[0];
	bool found = strcmp(status, "found") == 0;
	bool placed = found && placement_ok(seed, w);
	double delivery = -1;
	struct strbuf obj;
	struct json j;
	char at[32], verdicts[3][24] = { "", "", "" };
	sb_init(&obj);
	json_init(&j, &obj);
	json_obj_begin(&j);
	json_kstr(&j, "status", status);
	if (rb->late)
		json_kbool(&j, "late", true);
	if (found) {
		json_kstr(&j, "folder", w->folder);
		json_kbool(&j, "junk", w->junk);
		json_kstr(&j, "expected_folder", seed && seed->expect_folder ? seed->expect_folder : "INBOX");
		json_kstr(&j, "placement", placed ? "ok" : "unexpected");
		if (w->internaldate >= 0) {
			/* INTERNALDATE (1 s) against the end-of-data reply: the server's own figure. */
			delivery = (double)w->internaldate - (double)(rb->accepted_ms / 1000);
			if (delivery < 0)
				delivery = 0;
			json_kdouble(&j, "delivery_s", delivery, 0);
			json_kstr(&j, "internaldate", iso8601_ms(w->internaldate * 1000, at, sizeof at));
		}
		json_kdouble(&j, "found_after_s", (double)(now - rb->accepted_ms) / 1000.0, 3);
		json_kstr(&j, "cleanup", w->cleanup_note);
		if (w->duplicates)
			json_kint(&j, "duplicates", w->duplicates);
		if (w->header)
			header_forensics(&j, rb, seed, verdicts);
	}
	if (rb->mb[1] || rb->bounces.len) { /* the sender's bounce mailbox was watched: what came back */
		char *arr = xasprintf("[%s]", rb->bounces.len ? rb->bounces.s : "");
		json_key(&j, "bounces");
		json_raw(&j, arr);
		free(arr);
	}
	json_kint(&j, "polls", rb->polls);
	json_kint(&j, "imap_commands", rb->commands);
	json_kdouble(&j, "imap_ms", rb->imap_ms, 1);
	if (!found && rb->last_error[0])
		json_kstr(&j, "error", rb->last_error);
	json_obj_end(&j);
	char *repl = xasprintf("\"readback\":%s", obj.s);
	char *t1 = replace_once(rb->json, "\"readback\":{\"status\":\"pending\"}", repl);
	char *line = replace_once(t1, "\"final\":false", "\"final\":true");
	free(t1);
	free(repl);
	sb_fini(&obj);
	/* The readback's end may say more than the SMTP outcome did: missing, junk, bounced. */
	const struct imap_bounce *lb = rb->has_b ? &rb->last_b : NULL;
	struct diag_readback drb = {
		.status = status,
		.folder = found ? w->folder : "",
		.junk = w->junk,
		.placement_ok = placed,
		.spf = verdicts[0],
		.dkim = verdicts[1],
		.dmarc = verdicts[2],
		.error = found ? "" : rb->last_error,
		.bounce_action = lb ? lb->action : "",
		.bounce_status = lb ? lb->status : "",
		.bounce_code = lb ? lb->reply_code : 0,
		.bounce_enhanced = lb ? lb->enhanced : "",
		.bounce_stage = lb ? lb->stage : "",
		.bounce_diagnostic = lb ? lb->diagnostic : "",
		.attempt = 1,
	};
	/* The DNS findings of the sending identity, as the result line recorded them (also after a
	 * restart: the journal kept the line). A relay's bounce is diagnosed without them: the
	 * remote server saw the relay's address, not the probe's. */
	struct diagnosis dg;
	struct diag_findings df;
	bool by_bounce = lb && lb->action[0] && (strcmp(status, "bounced") == 0 || !found);
	bool has_df = !by_bounce && diag_findings_from_json(rb->json, &df) == 0;
	bool has_dg = diagnose_readback(&drb, has_df ? &df : NULL, &dg) == 0;
	if (has_dg) {
		char *l2 = diagnosis_replace_json(line, &dg);
		free(line);
		line = l2;
	}
	write_final(e, rb->probe_id, rb->seed_name, line, true);
	log_info("event=readback probe=%s seed=%s status=%s%s folder=%s polls=%d%s%s", rb->probe_id, rb->seed_name,
		 status, rb->late ? " late=1" : "", found ? w->folder : "-", rb->polls,
		 rb->last_error[0] && !found ? " error=" : "", rb->last_error[0] && !found ? rb->last_error : "");
	struct readback_done d = {
		.seed = rb->seed_name,
		.probe_id = rb->probe_id,
		.status = status,
		.folder = found ? w->folder : "",
		.junk = w->junk,
		.placement_ok = placed,
		.delivery_s = delivery,
		.error = found ? "" : rb->last_error,
		.json = line,
		/* skipped: only bounces were watched; any notice (delayed too) is a finding */
		.ok = ((found && placed) || strcmp(status, "skipped") == 0) && rb->n_bounces == 0,
		.n_bounces = rb->n_bounces,
		.bounced = rb->bounced,
		.bounce = rb->last_bounce,
		.late = rb->late,
		.diagnosis = has_dg ? &dg : NULL,
	};
	if (e->p.on_readback)
		e->p.on_readback(e->p.arg, &d);
	free(line);
	/* Missing is not the end in run and probe --due: a late arrival is still recorded. */
	int64_t late_until = rb->accepted_ms + conf_of(e)->readback_late_ms;
	if (strcmp(status, "missing") == 0 && !rb->late && e->p.mode != ENGINE_ONCE && conf_of(e)->readback_late_ms > 0 &&
	    late_until > now && rb->mb[0]) {
		rb->late = true;
		rb->finish_run = false;
		rb->deadline_ms = late_until;
		rb_journal_late(rb);
		rb_schedule(rb, now + late_interval_ms(e));
	} else {
		rb_free(rb);
	}
	pump_soon(e);
}

/* A late watch ran out: nothing more to say. */
static void rb_drop_late(struct rb *rb)
{
	struct engine *e = rb->e;
	if (e->journal)
		journal_append_lazy(e->journal, "done", "id", rb->probe_id, NULL);
	log_debug("event=late_gone probe=%s seed=%s", rb->probe_id, rb->seed_name);
	rb_free(rb);
	pump_soon(e);
}

/* The readback's time is up. */
static void rb_deadline(struct rb *rb)
{
	if (rb->late)
		rb_drop_late(rb);
	else
		rb_finish(rb, rb->last_error[0] ? "error" : rb->mb[0] ? "missing" : "skipped");
}

/* Every mailbox of rb was polled once more: decide, or schedule the next round. */
static void rb_after_round(struct rb *rb)
{
	struct engine *e = rb->e;
	rb->polls++;
	int64_t now = wall_ms();
	if (rb->want[0].found) {
		rb_finish(rb, "found");
		return;
	}
	if (rb->bounced) {
		rb_finish(rb, "bounced");
		return;
	}
	if (rb->refused || (!rb->mb[0] && !rb->mb[1])) { /* a wrong password does not get better by waiting */
		if (rb->late)
			rb_drop_late(rb);
		else
			rb_finish(rb, "error");
		return;
	}
	if (now >= rb->deadline_ms) {
		rb_deadline(rb);
		return;
	}
	/* Soon after acceptance, then backing off: 1, 2, 4 ... 60 s; late: late_interval_ms(). */
	int64_t delay = rb->late ? late_interval_ms(e) : rb->polls >= 6 ? 60000 : (int64_t)1000 << rb->polls;
	rb_schedule(rb, now + delay < rb->deadline_ms ? now + delay : rb->deadline_ms);
	pump_soon(e);
}

static bool rb_idle(const struct rb *rb)
{
	return !rb->due[0] && !rb->due[1] && !rb->polling[0] && !rb->polling[1];
}

static bool rb_cancelled(void *w)
{
	return worker_cancelled(w);
}

/* On the worker thread: the loop leaves mb->req and mb->conn alone until mbox_work_done(). */
static void mbox_work(struct worker *w, void *arg)
{
	struct mbox *mb = arg;
	imap_poll_run(mb->conn, &mb->req->acct, &mb->req->poll, rb_cancelled, w);
}

/* What a mailbox (window key: a seed name or "sender:NAME") looked like at the end of a poll. */
static void win_update(struct engine *e, const char *key, const struct imap_poll *poll)
{
	if (!poll->uidnext[0] && !poll->uidnext[1])
		return;
	struct mbox_win *win = strmap_get(&e->wins, key);
	if (!win) {
		win = xcalloc(1, sizeof *win);
		strmap_put(&e->wins, key, win);
	}
	for (int f = 0; f < 2; f++) {
		win->next[f] = poll->uidnext[f];
		win->validity[f] = poll->uidvalidity[f];
	}
	win->at_ms = wall_ms();
	if (e->journal) {
		char a[24], n0[16], v0[16], n1[16], v1[16];
		snprintf(a, sizeof a, "%" PRId64, win->at_ms);
		snprintf(n0, sizeof n0, "%" PRIu32, win->next[0]);
		snprintf(v0, sizeof v0, "%" PRIu32, win->validity[0]);
		snprintf(n1, sizeof n1, "%" PRIu32, win->next[1]);
		snprintf(v1, sizeof v1, "%" PRIu32, win->validity[1]);
		journal_append_lazy(e->journal, "win", "seed", key, "at", a, "n0", n0, "v0", v0, "n1", n1, "v1", v1,
				    NULL);
	}
}

/* Records the bounces the last poll found (JSON, log, journal). */
static void rb_take_bounces(struct rb *rb, const struct imap_want *w)
{
	struct engine *e = rb->e;
	char at[32];
	for (size_t i = 0; i < w->n_bounces; i++) {
		const struct imap_bounce *b = &w->bounces[i];
		struct json j;
		if (rb->bounces.len)
			sb_appendc(&rb->bounces, ',');
		json_init(&j, &rb->bounces);
		json_obj_begin(&j);
		json_kstr(&j, "action", b->action);
		json_kstr(&j, "status", b->status);
		if (b->reply_code)
			json_kint(&j, "code", b->reply_code);
		json_kstr(&j, "enhanced", b->enhanced);
		json_kstr(&j, "stage", b->stage[0] ? b->stage : "unknown");
		json_kstr(&j, "remote_mta", b->remote_mta);
		json_kstr(&j, "diagnostic_code", b->diagnostic);
		json_kstr(&j, "reporting_mta", b->reporting_mta);
		json_kbool(&j, "rfc3464", b->rfc3464);
		json_kstr(&j, "folder", b->folder);
		if (b->internaldate >= 0) {
			json_kstr(&j, "arrived_at", iso8601_ms(b->internaldate * 1000, at, sizeof at));
			json_kdouble(&j, "after_s", (double)b->internaldate - (double)(rb->accepted_ms / 1000), 0);
		}
		json_kstr(&j, "cleanup", b->cleanup_note);
		json_obj_end(&j);
		rb->n_bounces++;
		rb->last_b = *b;
		rb->has_b = true;
		if (strcmp(b->action, "failed") == 0)
			rb->bounced = true;
		snprintf(rb->last_bounce, sizeof rb->last_bounce, "%s %s%s%s%s%s: %.300s", b->action,
			 b->status[0] ? b->status : "(no status)", b->stage[0] ? " at " : "", b->stage,
			 b->remote_mta[0] ? " by " : "", b->remote_mta, b->diagnostic[0] ? b->diagnostic : "(no diagnostic)");
		log_info("event=bounce probe=%s seed=%s action=%s status=%s stage=%s remote=%s", rb->probe_id,
			 rb->seed_name, b->action, b->status[0] ? b->status : "-", b->stage[0] ? b->stage : "-",
			 b->remote_mta[0] ? b->remote_mta : "-");
	}
	if (w->n_bounces && e->journal)
		journal_append_lazy(e->journal, "bnc", "id", rb->probe_id, "json", rb->bounces.s, NULL);
}

static bool login_refused(const struct imap_poll *p)
{
	return strncmp(p->error, "login:", 6) == 0 && strstr(p->error, "refused");
}

static void mbox_kick(struct mbox *mb);

static void mbox_work_done(void *arg)
{
	struct mbox *mb = arg;
	struct engine *e = mb->e;
	struct mbox_req *q = mb->req;
	int leg = mb->leg;
	mb->req = NULL;
	mb->w = NULL;
	e->n_polling--;
	win_update(e, mb->key, &q->poll);
	struct rb **done = xcalloc(q->n ? q->n : 1, sizeof *done);
	size_t nd = 0;
	bool refused = login_refused(&q->poll);
	for (size_t i = 0; i < q->n; i++) {
		struct rb *rb = q->rbs[i];
		struct imap_want *w = &q->want[i];
		if (!rb)
			continue; /* finished meanwhile */
		rb->polling[leg] = false;
		rb->commands += q->poll.n_commands;
		rb->imap_ms += q->poll.ms;
		if (leg == 0) {
			/* The windows move on; a found message's details come back with it. */
			imap_want_fini(&rb->want[0]);
			rb->want[0] = *w;
			w->header = NULL;
			w->bounces = NULL;
			w->n_bounces = 0;
			if (q->poll.error[0])
				snprintf(rb->last_error, sizeof rb->last_error, "%s", q->poll.error);
			else
				rb->last_error[0] = '\0';
			rb->refused = rb->refused || refused;
		} else {
			memcpy(rb->want[1].from_uid, w->from_uid, sizeof w->from_uid);
			memcpy(rb->want[1].uidvalidity, w->uidvalidity, sizeof w->uidvalidity);
			rb_take_bounces(rb, w);
			if (q->poll.error[0] && (!rb->last_error[0] || !rb->mb[0]))
				snprintf(rb->last_error, sizeof rb->last_error, "bounce mailbox: %.230s", q->poll.error);
			if (refused) { /* no more bounce polls for it */
				mbox_detach(mb, rb);
				rb->mb[1] = NULL;
			}
		}
		done[nd++] = rb;
	}
	mbox_req_free(q);
	for (size_t i = 0; i < nd; i++)
		if (rb_idle(done[i]))
			rb_after_round(done[i]);
	free(done);
	mbox_kick(mb); /* probes that became due meanwhile */
	pump_soon(e);
}

/* The IMAP account behind a mailbox in the current configuration, or NULL. */
static const struct conf_imap *mbox_account(const struct engine *e, const struct mbox *mb)
{
	const struct mon_conf *c = conf_of(e);
	if (mb->leg == 0) {
		const struct conf_seed *seed = conf_seed_find(c, mb->key);
		return seed && seed->imap.set ? &seed->imap : NULL;
	}
	for (size_t i = 0; i < c->n_senders; i++)
		if (strcmp(c->senders[i].name, mb->key + strlen("sender:")) == 0)
			return c->senders[i].bounce_imap.set ? &c->senders[i].bounce_imap : NULL;
	return NULL;
}

/* Starts a poll of mb for its due probes, unless one runs (its end starts the next). */
static void mbox_kick(struct mbox *mb)
{
	struct engine *e = mb->e;
	int leg = mb->leg;
	if (mb->w)
		return;
	size_t n = 0;
	for (size_t i = 0; i < mb->n_rbs; i++)
		n += mb->rbs[i]->due[leg];
	if (!n)
		return;
	struct rb **due = xcalloc(n, sizeof *due);
	n = 0;
	for (size_t i = 0; i < mb->n_rbs; i++)
		if (mb->rbs[i]->due[leg])
			due[n++] = mb->rbs[i];
	const struct conf_imap *ci = mbox_account(e, mb);
	char *err = NULL, *password = NULL;
	if (ci)
		password = conf_read_secret(ci->password_file, ci->password_env, &err);
	if (!password) {
		/* The account is gone or its password unreadable: these readbacks end with that. */
		for (size_t i = 0; i < n; i++) {
			struct rb *rb = due[i];
			rb->due[leg] = false;
			if (!ci)
				snprintf(rb->last_error, sizeof rb->last_error, "%s", leg == 0 ? "the seed has no imap group any more"
											: "the sender has no bounce_imap group any more");
			else
				snprintf(rb->last_error, sizeof rb->last_error, "cannot read the %sIMAP password: %.180s",
					 leg == 0 ? "" : "bounce mailbox's ", err);
			mbox_detach(mb, rb);
			rb->mb[leg] = NULL;
			if (leg == 0)
				rb->refused = true;
		}
		for (size_t i = 0; i < n; i++)
			if (rb_idle(due[i]))
				rb_after_round(due[i]);
		free(err);
		free(due);
		return;
	}
	struct mbox_req *q = xcalloc(1, sizeof *q);
	q->password = password;
	q->url = xstrdup(ci->url);
	q->username = xstrdup(ci->username);
	q->ca_file = xstrdup(ci->ca_file);
	q->source_ip = xstrdup(ci->source_ip);
	q->seed = xstrdup(leg == 0 ? mb->key : "");
	bool move = ci->cleanup && strncmp(ci->cleanup, "move:", 5) == 0;
	q->move_to = move ? xstrdup(ci->cleanup + 5) : NULL;
	memcpy(q->key, e->token_key, sizeof q->key);
	q->n = n;
	q->rbs = due;
	q->want = xcalloc(n, sizeof *q->want);
	for (size_t i = 0; i < n; i++) {
		struct rb *rb = due[i];
		q->want[i] = rb->want[leg];
		q->want[i].header = NULL;
		q->want[i].bounces = NULL;
		q->want[i].n_bounces = 0;
		snprintf(q->want[i].seed, sizeof q->want[i].seed, "%s", rb->seed_name);
		rb->due[leg] = false;
		rb->polling[leg] = true;
	}
	q->acct = (struct imap_account){
		.url = q->url,
		.username = q->username,
		.password = q->password,
		.ca_file = q->ca_file,
		.source_ip = q->source_ip,
		.seed = q->seed,
		.key = q->key,
		.cleanup = !ci->cleanup || strcmp(ci->cleanup, "delete") == 0 ? IMAP_CLEANUP_DELETE
			   : strcmp(ci->cleanup, "keep") == 0		      ? IMAP_CLEANUP_KEEP
									      : IMAP_CLEANUP_MOVE,
		.move_to = q->move_to,
		.timeout_ms = conf_of(e)->timeouts.command_ms < 60000 ? (long)conf_of(e)->timeouts.command_ms : 60000,
		.bounces = leg == 1,
	};
	q->poll.want = q->want;
	q->poll.n_want = n;
	mb->req = q;
	e->n_polling++;
	mb->w = worker_start(e->loop, mbox_work, mbox_work_done, mb);
}

static void rb_timer_cb(void *arg)
{
	struct rb *rb = arg;
	struct engine *e = rb->e;
	if (e->phase == PHASE_STOP || (e->phase == PHASE_DRAIN && !rb->must_run && !rb->finish_run))
		return; /* journaled: the next run goes on */
	rb->must_run = false;
	int64_t now = wall_ms();
	if (!conf_seed_find(conf_of(e), rb->seed_name)) {
		snprintf(rb->last_error, sizeof rb->last_error, "the seed is no longer configured");
		if (rb->late)
			rb_drop_late(rb);
		else
			rb_finish(rb, "error");
		return;
	}
	if (now > rb->deadline_ms + 1000 && rb->polls > 0) {
		rb_deadline(rb);
		return;
	}
	struct mbox *mbs[2] = { rb->mb[0], rb->mb[1] };
	for (int i = 0; i < 2; i++)
		if (mbs[i])
			rb->due[i] = true;
	for (int i = 0; i < 2; i++)
		if (mbs[i])
			mbox_kick(mbs[i]); /* may end rb (an account gone): rb is not used after this */
}

/* Where a probe of seed is read back: its mailbox, its sender's bounce mailbox. */
static bool rb_wanted(const struct conf_seed *seed)
{
	return seed && (seed->imap.set || (seed->sender && seed->sender->bounce_imap.set));
}

/* late_until_ms: 0, or a late watch (reported missing) until then. */
static void rb_start(struct engine *e, const char *probe_id, const char *seed, int64_t sent_ms, int64_t accepted_ms,
		     const char *json, const char *bounces, int64_t late_until_ms, int64_t first_poll_ms)
{
	struct rb *rb = xcalloc(1, sizeof *rb);
	const struct conf_seed *cs = conf_seed_find(conf_of(e), seed);
	char *bkey = cs && cs->sender && cs->sender->bounce_imap.set ? xasprintf("sender:%s", cs->sender->name) : NULL;
	const char *keys[2] = { cs && cs->imap.set ? seed : NULL, bkey };
	rb->e = e;
	for (int i = 0; i < 2; i++) {
		snprintf(rb->want[i].probe_id, sizeof rb->want[i].probe_id, "%s", probe_id);
		rb->want[i].internaldate = -1;
		rb->want[i].sent_s = sent_ms / 1000;
		if (!keys[i])
			continue;
		const struct mbox_win *win = strmap_get(&e->wins, keys[i]);
		for (int f = 0; win && win->at_ms < sent_ms && f < 2; f++) {
			rb->want[i].from_uid[f] = win->next[f];
			rb->want[i].uidvalidity[f] = win->validity[f];
		}
		rb->mb[i] = mbox_get(e, keys[i], i);
		mbox_attach(rb->mb[i], rb);
	}
	free(bkey);
	sb_init(&rb->bounces);
	if (bounces && *bounces) {
		sb_append(&rb->bounces, bounces);
		rb->n_bounces = 1; /* at least: only "delayed" ones, or it would have ended */
	}
	snprintf(rb->probe_id, sizeof rb->probe_id, "%s", probe_id);
	rb->seed_name = xstrdup(seed);
	rb->sent_ms = sent_ms;
	rb->accepted_ms = accepted_ms;
	rb->late = late_until_ms > 0;
	rb->deadline_ms = rb->late ? late_until_ms : accepted_ms + conf_of(e)->readback_timeout_ms;
	rb->json = xstrdup(json);
	rb->finish_run = e->p.mode == ENGINE_ONCE && e->p.wait_readback && !rb->late;
	evtimer_init(&rb->timer, rb_timer_cb, rb);
	rb->next = e->rbs;
	if (e->rbs)
		e->rbs->prev = rb;
	e->rbs = rb;
	rb_schedule(rb, first_poll_ms);
}

static void rb_cancel_all(struct engine *e)
{
	for (size_t i = 0; i < e->n_mbox; i++) {
		struct mbox *mb = e->mbox_list[i];
		if (!mb->w)
			continue;
		worker_cancel(mb->w);
		mb->w = NULL;
		for (size_t j = 0; j < mb->req->n; j++)
			if (mb->req->rbs[j])
				mb->req->rbs[j]->polling[mb->leg] = false;
		mbox_req_free(mb->req);
		mb->req = NULL;
		e->n_polling--;
	}
}

/* ---- starting work within the limits ---- */

static void pump_timer_cb(void *arg)
{
	pump(arg);
}

/* Pumps once after the timers and completions of this loop pass, so that attempts becoming
 * due together share one journal sync. */
static void pump_soon(struct engine *e)
{
	int64_t now = mono_us();
	if (!evtimer_armed(&e->pump_timer) || e->pump_timer.due_us > now)
		evtimer_start(e->loop, &e->pump_timer, now);
}

static void pump(struct engine *e)
{
	/* Whether the run is over is checked after every change, also while stopping. */
	evtimer_start(e->loop, &e->idle_check, mono_us());
	if (e->phase == PHASE_STOP)
		return;
	const struct mon_conf *c = conf_of(e);
	int64_t now = wall_ms();
	bool scheduled = e->p.mode != ENGINE_ONCE;
	size_t max = c->limits_in_flight > 0 ? (size_t)c->limits_in_flight : (size_t)-1;
	int64_t wake = INT64_MAX;
	struct job *launch = NULL, **tail = &launch;
	for (struct job *job = e->ready, *next; job; job = next) {
		next = job->rnext;
		if (e->phase == PHASE_DRAIN && !job->must_run)
			continue;
		if (e->n_running >= max) {
			job->waited |= PROBE_WAITED_IN_FLIGHT; /* the ones behind it: see job_claim() */
			break;
		}
		struct domstate *d = dom_get(e, job->dom);
		if (c->limits_per_domain > 0 && d->in_flight >= c->limits_per_domain) {
			job->waited |= PROBE_WAITED_PER_DOMAIN;
			continue;
		}
		if (scheduled && c->limits_spacing_ms > 0 && d->last_start_ms &&
		    now < d->last_start_ms + c->limits_spacing_ms) {
			job->waited |= PROBE_WAITED_SPACING;
			if (d->last_start_ms + c->limits_spacing_ms < wake)
				wake = d->last_start_ms + c->limits_spacing_ms;
			continue;
		}
		if (scheduled && c->limits_daily_budget > 0 && dom_count_today(d, now) >= c->limits_daily_budget) {
			job->waited |= PROBE_WAITED_DAILY_BUDGET;
			if ((now / DAY_MS + 1) * DAY_MS < wake)
				wake = (now / DAY_MS + 1) * DAY_MS;
			continue;
		}
		job_claim(job, now);
		job->lnext = NULL;
		*tail = job;
		tail = &job->lnext;
	}
	/* One fdatasync for every send record: durable before any of these attempts starts. */
	if (launch && e->journal && e->sync_pending)
		journal_sync(e->journal);
	e->sync_pending = false;
	for (struct job *job = launch, *next; job; job = next) {
		next = job->lnext;
		job_launch(job);
	}
	if (wake != INT64_MAX)
		evtimer_start(e->loop, &e->pump_timer, mono_due_us(wake));
}

/* ---- schedules ---- */

static void slot_timer_cb(void *arg)
{
	struct seedstate *ss = arg;
	struct engine *e = ss->e;
	int64_t now = wall_ms();
	if (now < ss->next_slot * 1000 + ss->sub_ms) {
		evtimer_start(e->loop, &ss->timer, mono_due_us(ss->next_slot * 1000 + ss->sub_ms));
		return;
	}
	int64_t slot = ss->next_slot;
	if (ss->queued) {
		log_info("event=skip seed=%s slot=%" PRId64 " reason=\"the previous slot's probe has not started yet\"",
			 ss->seed->name, slot);
	} else {
		struct job *job = job_new(e, ss->seed, ss->seed->name, ss->seed->domain);
		job->slot_s = slot;
		job->ss = ss;
		ss->queued = job;
		job->due_ms = slot * 1000 + ss->sub_ms;
		job_set_state(job, JOB_READY);
	}
	ss->next_slot = schedule_next(&ss->sched, ss->offset, now / 1000 > slot ? now / 1000 : slot);
	if (ss->next_slot != INT64_MAX)
		evtimer_start(e->loop, &ss->timer, mono_due_us(ss->next_slot * 1000 + ss->sub_ms));
	pump_soon(e);
}


/* Seed states for the current configuration; last slots from old (by name), else from the journal. */
static void seeds_setup(struct engine *e, const struct seedstate *old, size_t n_old, const struct journal_state *st)
{
	const struct mon_conf *c = conf_of(e);
	int64_t now_s = wall_ms() / 1000;
	struct strmap oldmap, jmap;
	strmap_init(&oldmap, false);
	strmap_init(&jmap, false);
	for (size_t i = 0; i < n_old; i++)
		strmap_put(&oldmap, old[i].seed->name, (void *)(uintptr_t)(i + 1));
	for (size_t i = 0; st && i < st->n_seeds; i++)
		strmap_put(&jmap, st->seeds[i].name, &st->seeds[i]);
	e->ss = xcalloc(c->n_seeds + 1, sizeof *e->ss);
	e->n_ss = c->n_seeds;
	for (size_t i = 0; i < c->n_seeds; i++) {
		struct seedstate *ss = &e->ss[i];
		char *err = NULL;
		ss->e = e;
		ss->seed = &c->seeds[i];
		evtimer_init(&ss->timer, slot_timer_cb, ss);
		if (schedule_parse(ss->seed->schedule, &ss->sched, &err) < 0) { /* conf_load checked it */
			log_warnx("seed %s: %s", ss->seed->name, err);
			free(err);
			continue;
		}
		ss->offset = schedule_offset(&ss->sched, ss->seed->name);
		/* Seeds whose offsets share a second start spread over it, not all at its start. */
		ss->sub_ms = (int64_t)((strmap_hash(ss->seed->name, false) >> 32) % 1000);
		int64_t prev = schedule_prev(&ss->sched, ss->offset, now_s);
		uintptr_t k = (uintptr_t)strmap_get(&oldmap, ss->seed->name);
		const struct jseed *js = k ? NULL : strmap_get(&jmap, ss->seed->name);
		bool known = k || js;
		ss->last_slot = k ? old[k - 1].last_slot : js ? js->slot_s : 0;
		if (!k && (!known || (prev != INT64_MIN && ss->last_slot < prev))) {
			/* A seed never probed before gets its first measurement now; slots missed while
			 * nothing ran are made up once, now, not as a burst. */
			struct job *job = job_new(e, ss->seed, ss->seed->name, ss->seed->domain);
			job->slot_s = prev != INT64_MIN ? prev : now_s;
			job->ss = ss;
			ss->queued = job;
			job->due_ms = wall_ms();
			job_set_state(job, JOB_READY);
			log_info("event=%s seed=%s slot=%" PRId64, known ? "catch-up" : "first", ss->seed->name,
				 job->slot_s);
		}
		ss->next_slot = schedule_next(&ss->sched, ss->offset, now_s);
		if (ss->next_slot != INT64_MAX)
			evtimer_start(e->loop, &ss->timer, mono_due_us(ss->next_slot * 1000 + ss->sub_ms));
	}
	strmap_fini(&oldmap);
	strmap_fini(&jmap);
}

/* ---- work from the journal ---- */

static bool selected(const struct engine *e, const char *seed)
{
	if (e->p.mode != ENGINE_ONCE)
		return true;
	for (size_t i = 0; i < e->p.n_seeds; i++)
		if (strcmp(e->p.seeds[i]->name, seed) == 0)
			return true;
	return false;
}

static void journal_resume(struct engine *e, const struct journal_state *st)
{
	const struct mon_conf *c = conf_of(e);
	for (size_t i = 0; i < st->n_probes; i++) {
		const struct jprobe *p = &st->probes[i];
		if (p->state == JPROBE_FINAL) {
			/* Decided but maybe not in the detail log: the record carries the line. */
			if (p->final_json && *p->final_json && !jsonlog_contains(c->state_dir, p->id)) {
				write_detail(e, p->final_json);
				if (e->p.on_repaired)
					e->p.on_repaired(e->p.arg, p->final_json);
			}
			journal_append_lazy(e->journal, "done", "id", p->id, NULL);
			continue;
		}
		if (!selected(e, p->seed))
			continue;
		if (p->state == JPROBE_READBACK) {
			rb_start(e, p->id, p->seed, p->sent_ms, p->accepted_ms, p->final_json ? p->final_json : "", p->bounces,
				 p->late_until_ms, wall_ms());
			continue;
		}
		const struct conf_seed *seed = conf_seed_find(c, p->seed);
		if (!seed) {
			log_warnx("event=drop probe=%s seed=%s reason=\"the seed is no longer configured\"", p->id, p->seed);
			journal_append_lazy(e->journal, "done", "id", p->id, NULL);
			continue;
		}
		struct job *job = job_new(e, seed, p->seed, p->dom[0] ? p->dom : seed->domain);
		snprintf(job->probe_id, sizeof job->probe_id, "%s", p->id);
		job->sent_ms = p->sent_ms;
		job->slot_s = p->slot_s;
		job->n = p->n;
		sb_append(&job->att, p->att);
		if (p->state == JPROBE_SENDING) {
			/* Sent or not, we cannot know: never resend it; it counts as a failed attempt. */
			struct probe_result r;
			probe_result_init(&r);
			snprintf(r.seed, sizeof r.seed, "%s", p->seed);
			snprintf(r.vantage, sizeof r.vantage, "%s", c->vantage ? c->vantage : "");
			snprintf(r.probe_id, sizeof r.probe_id, "%s", p->id);
			snprintf(r.mode, sizeof r.mode, "%s", conf_mode_name(seed->sender->mode));
			r.sent_at_ms = p->sent_ms;
			r.attempt_at_ms = p->send_at_ms;
			r.attempt = p->n + 1;
			r.smtp.outcome = OUTCOME_FAILED;
			r.smtp.stage = STAGE_NONE;
			r.smtp.at_ms = p->send_at_ms;
			snprintf(r.smtp.error, sizeof r.smtp.error,
				 "interrupted: mailcanary stopped while this attempt was in flight (not resent)");
			log_warnx("event=interrupted probe=%s seed=%s attempt=%d", p->id, p->seed, r.attempt);
			job_decided(job, &r);
			probe_result_fini(&r);
			continue;
		}
		job_schedule(job, p->next_ms ? p->next_ms : wall_ms());
	}
}

/* ---- the end of a run ---- */

static bool has_work_before(const struct engine *e, int64_t limit_ms)
{
	if (e->n_running || e->n_polling || e->n_dnswait)
		return true;
	for (const struct rb *rb = e->rbs; rb; rb = rb->next)
		if (rb->timer.due_us <= mono_due_us(limit_ms))
			return true;
	for (const struct job *j = e->jobs; j; j = j->next)
		if (j->state == JOB_READY || (j->state == JOB_WAITING && j->due_ms <= limit_ms))
			return true;
	if (e->p.mode == ENGINE_DUE)
		for (size_t i = 0; i < e->n_ss; i++)
			if (e->ss[i].next_slot != INT64_MAX && e->ss[i].next_slot * 1000 <= limit_ms)
				return true;
	return false;
}

static bool must_run_left(const struct engine *e)
{
	for (const struct job *j = e->jobs; j; j = j->next)
		if (j->must_run && j->state != JOB_RUNNING)
			return true;
	for (const struct rb *rb = e->rbs; rb; rb = rb->next)
		if (rb->must_run || rb->finish_run)
			return true;
	return false;
}

static void idle_check_cb(void *arg)
{
	struct engine *e = arg;
	if (e->n_running || e->n_polling || e->n_dnswait)
		return;
	if (e->phase == PHASE_STOP) {
		evloop_stop(e->loop);
		return;
	}
	if (must_run_left(e))
		return;
	if (e->phase == PHASE_DRAIN || (e->p.mode != ENGINE_DAEMON && !has_work_before(e, e->deadline_ms)))
		evloop_stop(e->loop);
}

static void stop_slots(struct engine *e)
{
	for (size_t i = 0; i < e->n_ss; i++)
		evtimer_stop(e->loop, &e->ss[i].timer);
}

static void end_timer_cb(void *arg)
{
	struct engine *e = arg;
	if (e->phase == PHASE_RUN) {
		/* The wait is over: nothing new starts but the seeds asked for; running attempts
		 * may finish within the grace. */
		e->phase = PHASE_DRAIN;
		stop_slots(e);
		if (e->p.grace_ms >= 0)
			evtimer_start(e->loop, &e->end_timer, mono_us() + e->p.grace_ms * 1000);
		evtimer_start(e->loop, &e->idle_check, mono_us());
		return;
	}
	/* The grace is over: cancel what still runs; the journal keeps it as interrupted. Results
	 * waiting for DNS checks are written now with what the checks found so far. */
	rb_cancel_all(e);
	dns_cut_all(e);
	for (struct job *job = e->jobs, *next; job; job = next) {
		next = job->next;
		if (job->state != JOB_RUNNING || !job->pj)
			continue;
		log_warnx("event=cancel probe=%s seed=%s attempt=%d reason=\"stopping\"", job->probe_id, job->seed_name,
			  job->n + 1);
		probe_cancel(job->pj);
		job->pj = NULL;
		e->n_running--;
		dom_get(e, job->dom)->in_flight--;
		confref_release(e, job->cr);
		job->cr = NULL;
		job_free(job);
	}
	evloop_stop(e->loop);
}

void engine_shutdown(struct engine *e, int64_t grace_ms)
{
	if (e->phase == PHASE_STOP)
		return;
	e->phase = PHASE_STOP;
	stop_slots(e);
	evtimer_stop(e->loop, &e->pump_timer);
	log_info("event=stopping running=%zu grace_ms=%" PRId64, e->n_running, grace_ms);
	evtimer_start(e->loop, &e->end_timer, mono_us() + grace_ms * 1000);
	evtimer_start(e->loop, &e->idle_check, mono_us());
}

/* ---- life cycle ---- */

struct engine *engine_new(struct mon_conf *conf, const struct engine_params *p, char **err)
{
	sockts_prepare(); /* the SMTP stage times' kernel stamps: on before the first connection */
	struct engine *e = xcalloc(1, sizeof *e);
	e->p = *p;
	e->journal = p->journal;
	e->loop = evloop_new();
	strmap_init(&e->doms, true);
	strmap_init(&e->wins, false);
	strmap_init(&e->mboxes, false);
	evtimer_init(&e->pump_timer, pump_timer_cb, e);
	evtimer_init(&e->end_timer, end_timer_cb, e);
	evtimer_init(&e->idle_check, idle_check_cb, e);
	e->cur = confref_new(conf, e->loop, err);
	if (!e->cur) {
		conf_free(conf);
		journal_close(e->journal);
		e->journal = NULL;
		evloop_free(e->loop);
		strmap_fini(&e->doms);
		free(e);
		return NULL;
	}
	e->glue = curl_glue_new(e->loop);
	char *kerr = NULL;
	if (token_key_load(conf->state_dir, e->token_key, &kerr) == 0) {
		e->has_key = true;
	} else {
		log_warnx("probe tokens without a MAC (readback cannot tell our probes from others): %s", kerr);
		free(kerr);
	}
	int64_t now = wall_ms();
	if (p->mode != ENGINE_DAEMON) {
		e->deadline_ms = now + (p->wait_ms > 0 ? p->wait_ms : 0);
		evtimer_start(e->loop, &e->end_timer, mono_us() + (p->wait_ms > 0 ? p->wait_ms : 0) * 1000);
	}
	for (size_t i = 0; p->jstate && i < p->jstate->n_seeds; i++) {
		const struct jseed *js = &p->jstate->seeds[i];
		if (!js->win_at_ms)
			continue;
		struct mbox_win *win = xcalloc(1, sizeof *win);
		memcpy(win->next, js->win_next, sizeof win->next);
		memcpy(win->validity, js->win_validity, sizeof win->validity);
		win->at_ms = js->win_at_ms;
		strmap_put(&e->wins, js->name, win);
	}
	/* Budgets spent today by earlier runs. */
	for (size_t i = 0; p->jstate && i < p->jstate->n_budgets; i++) {
		const struct jbudget *b = &p->jstate->budgets[i];
		struct domstate *d = dom_get(e, b->dom);
		dom_count_today(d, now);
		if (b->day == now / DAY_MS)
			d->count = b->n > INT32_MAX - d->count ? INT32_MAX : d->count + b->n;
	}
	if (p->mode == ENGINE_ONCE) {
		for (size_t i = 0; i < p->n_seeds; i++) {
			struct job *job = job_new(e, p->seeds[i], p->seeds[i]->name, p->seeds[i]->domain);
			job->due_ms = now;
			job_set_state(job, JOB_READY);
			job->must_run = true;
		}
	} else {
		seeds_setup(e, NULL, 0, p->jstate);
	}
	if (e->journal && p->jstate)
		journal_resume(e, p->jstate);
	/* The cron mode runs what is due at its start even when --wait is short. */
	if (p->mode == ENGINE_DUE) {
		for (struct job *job = e->jobs; job; job = job->next)
			if (job->state == JOB_READY || job->due_ms <= now)
				job->must_run = true;
		for (struct rb *rb = e->rbs; rb; rb = rb->next)
			if (rb->timer.due_us <= mono_us() + 1000)
				rb->must_run = true;
	}
	return e;
}

struct evloop *engine_loop(struct engine *e)
{
	return e->loop;
}

void engine_run(struct engine *e)
{
	pump(e);
	evloop_run(e->loop);
}

void engine_reload(struct engine *e, struct mon_conf *conf)
{
	char *err = NULL;
	struct confref *cr = confref_new(conf, e->loop, &err);
	if (!cr) {
		log_warnx("event=reload status=failed reason=\"%s\": keeping the running configuration", err);
		free(err);
		conf_free(conf);
		return;
	}
	struct confref *old = e->cur;
	cr->next = old;
	e->cur = cr;
	/* New seed states, carrying the last slots over by name. */
	struct seedstate *old_ss = e->ss;
	size_t n_old = e->n_ss;
	for (size_t i = 0; i < n_old; i++)
		evtimer_stop(e->loop, &old_ss[i].timer);
	for (struct job *job = e->jobs; job; job = job->next)
		job->ss = NULL;
	e->ss = NULL;
	e->n_ss = 0;
	if (e->p.mode != ENGINE_ONCE)
		seeds_setup(e, old_ss, n_old, NULL);
	free(old_ss);
	/* Jobs not running follow the new configuration; those of removed seeds are dropped. */
	for (struct job *job = e->jobs, *next; job; job = next) {
		next = job->next;
		if (job->state == JOB_RUNNING)
			continue;
		const struct conf_seed *seed = conf_seed_find(conf, job->seed_name);
		if (!seed) {
			log_warnx("event=drop probe=%s seed=%s reason=\"the seed is no longer configured\"",
				  job->probe_id[0] ? job->probe_id : "-", job->seed_name);
			if (e->journal && job->probe_id[0])
				journal_append_lazy(e->journal, "done", "id", job->probe_id, NULL);
			job_free(job);
			continue;
		}
		job->seed = seed;
		if (job->slot_s && !job->probe_id[0]) {
			for (size_t i = 0; i < e->n_ss; i++)
				if (e->ss[i].seed == seed && !e->ss[i].queued) {
					e->ss[i].queued = job;
					job->ss = &e->ss[i];
				}
		}
	}
	e->dns_gen++; /* DNS findings start afresh (servers, zones, identities may have changed) */
	confref_release(e, old);
	log_info("event=reload status=ok seeds=%zu", conf->n_seeds);
	pump(e);
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	while (e->jobs) {
		struct job *job = e->jobs;
		if (job->state == JOB_RUNNING && job->pj) {
			probe_cancel(job->pj);
			confref_release(e, job->cr);
		}
		job_free(job); /* a result waiting for DNS checks is dropped */
	}
	dns_cut_all(e); /* nobody waits any more */
	while (e->dnsids)
		dnsid_free(e->dnsids);
	dnscheck_ctx_free(e->dc);
	if (e->dc_cr)
		confref_release(e, e->dc_cr);
	rb_cancel_all(e);
	while (e->rbs)
		rb_free(e->rbs);
	for (size_t i = 0; i < e->n_ss; i++)
		evtimer_stop(e->loop, &e->ss[i].timer);
	free(e->ss);
	curl_glue_free(e->glue);
	while (e->cur)
		confref_release(e, e->cur);
	for (size_t i = 0; i < e->n_doms; i++)
		free(e->dom_list[i]);
	free(e->dom_list);
	strmap_fini(&e->doms);
	for (size_t i = 0; i < e->wins.cap; i++)
		if (e->wins.slots[i].key)
			free(e->wins.slots[i].value);
	strmap_fini(&e->wins);
	for (size_t i = 0; i < e->n_mbox; i++)
		mbox_free(e->mbox_list[i]);
	free(e->mbox_list);
	strmap_fini(&e->mboxes);
	journal_close(e->journal);
	evloop_free(e->loop);
	OPENSSL_cleanse(e->token_key, sizeof e->token_key);
	free(e);
}
