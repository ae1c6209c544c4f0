#include "probe.h"

#include <arpa/inet.h>
#include <ares.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dns.h"
#include "evloop.h"
#include "log.h"
#include "message.h"
#include "smtp.h"
#include "token.h"
#include "xalloc.h"

struct probe_target {
	char *host;
	struct dns_addr *addrs;
	size_t n_addrs;
	bool resolved;
	int status; /* c-ares status of the address lookup */
};

struct probe_job {
	struct probe_env env;
	const struct conf_seed *seed;
	const struct conf_sender *sender;
	struct probe_result r;
	int64_t t_start_us;
	char *message;
	char *password;
	struct probe_target *targets;
	size_t n_targets, cur_target, cur_addr;
	bool dns_pending;
	bool cancelled;          /* cancelled while a DNS callback was pending: it frees the job */
	struct smtp_attempt *attempt;
	int64_t try_start_us;    /* the current try */
	int64_t try_at_ms;
	struct evtimer finish;
	probe_done_cb *done;
	void *arg;
};

static void job_free(struct probe_job *job)
{
	evtimer_stop(job->env.loop, &job->finish);
	for (size_t i = 0; i < job->n_targets; i++) {
		free(job->targets[i].host);
		free(job->targets[i].addrs);
	}
	free(job->targets);
	if (job->password) {
		memset(job->password, 0, strlen(job->password));
		free(job->password);
	}
	free(job->message);
	probe_result_fini(&job->r);
	free(job);
}

static void job_on_finish(void *arg)
{
	struct probe_job *job = arg;
	/* From probe start to the decision: DNS, earlier tries, and the deciding reply of the last. */
	if (job->r.n_tries)
		job->r.total_ms = (double)(job->try_start_us - job->t_start_us) / 1000.0 +
				  job->r.tries[job->r.n_tries - 1].t.total_ms;
	else
		job->r.total_ms = (double)(mono_us() - job->t_start_us) / 1000.0;
	log_info("event=attempt probe=%s seed=%s attempt=%d outcome=%s stage=%s code=%d enh=%s ms=%.1f",
		 job->r.probe_id, job->r.seed, job->r.attempt,
		 probe_outcome_name(job->r.smtp.outcome), probe_stage_name(job->r.smtp.stage), job->r.smtp.code,
		 job->r.smtp.enhanced[0] ? job->r.smtp.enhanced : "-", job->r.total_ms);
	job->done(job->arg, &job->r);
	job_free(job);
}

/* Ends the job from the loop with the result as it stands. */
static void job_finish(struct probe_job *job)
{
	evtimer_start(job->env.loop, &job->finish, mono_us());
}

/* A failure before any SMTP try (DNS, secrets, ...). */
static void job_fail(struct probe_job *job, enum probe_stage stage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void job_fail(struct probe_job *job, enum probe_stage stage, const char *fmt, ...)
{
	va_list ap;
	struct smtp_try *t = &job->r.smtp;
	t->outcome = OUTCOME_FAILED;
	t->stage = stage;
	t->at_ms = job->r.attempt_at_ms;
	va_start(ap, fmt);
	vsnprintf(t->error, sizeof t->error, fmt, ap);
	va_end(ap);
	job_finish(job);
}

static void job_next(struct probe_job *job);

/* Whether an MTA would go on to the next MX after this try (Postfix: connection failures and
 * refusals before or at the greeting). */
static bool try_next_after(const struct smtp_try *t)
{
	if (t->outcome == OUTCOME_FAILED && (t->stage == STAGE_CONNECT || t->stage == STAGE_BANNER))
		return true;
	return t->outcome == OUTCOME_DEFERRED && t->stage == STAGE_BANNER;
}

static void on_smtp_done(void *arg, struct smtp_try *try)
{
	struct probe_job *job = arg;
	struct probe_target *tg = &job->targets[job->cur_target];
	job->attempt = NULL;
	snprintf(try->mx, sizeof try->mx, "%s", job->sender->mode == CONF_MODE_MX || strcmp(tg->host, tg->addrs[job->cur_addr].ip) ? tg->host : "");
	snprintf(try->ip, sizeof try->ip, "%s", tg->addrs[job->cur_addr].ip);
	try->port = job->sender->port;
	try->at_ms = job->try_at_ms;
	job->r.tries = xrealloc(job->r.tries, (job->r.n_tries + 1) * sizeof *job->r.tries);
	smtp_try_copy(&job->r.tries[job->r.n_tries++], try);
	smtp_try_fini(&job->r.smtp);
	smtp_try_copy(&job->r.smtp, try);
	log_debug("probe=%s seed=%s try=%zu mx=%s ip=%s outcome=%s stage=%s code=%d", job->r.probe_id,
		  job->r.seed, job->r.n_tries, try->mx, try->ip, probe_outcome_name(try->outcome),
		  probe_stage_name(try->stage), try->code);
	if (try_next_after(try) && job->r.n_tries < PROBE_MAX_TRIES) {
		job->cur_addr++;
		job_next(job);
		return;
	}
	job_finish(job);
}

static void start_attempt(struct probe_job *job)
{
	const struct conf_sender *s = job->sender;
	struct probe_target *tg = &job->targets[job->cur_target];
	struct smtp_params p = {
		.host = tg->host,
		.ip = tg->addrs[job->cur_addr].ip,
		.port = s->port,
		.helo = s->helo,
		.mail_from = s->mail_from,
		.rcpt = job->seed->address,
		.message = job->message,
		.message_len = strlen(job->message),
		.tls = s->tls,
		.tls_verify = s->tls_verify,
		.ca_file = s->ca_file,
		.username = s->username,
		.password = job->password,
		.source_ip = s->source_ip,
		.timeouts = &job->env.conf->timeouts,
		.keep_transcript = job->env.keep_transcript,
	};
	job->try_start_us = mono_us();
	job->try_at_ms = wall_ms();
	job->attempt = smtp_attempt_start(job->env.loop, &p, on_smtp_done, job);
}

/* Every DNS callback starts here: false when the job was cancelled meanwhile (and is freed
 * now) or the resolver is being destroyed; otherwise the lookup time is counted. */
static bool dns_answer_wanted(struct probe_job *job, int status, double ms)
{
	job->dns_pending = false;
	if (job->cancelled) {
		job_free(job);
		return false;
	}
	if (status == ARES_EDESTRUCTION)
		return false;
	job->r.dns_ms += ms;
	return true;
}

static void on_addr(void *arg, int status, const struct dns_addr *addrs, size_t n, double ms)
{
	struct probe_job *job = arg;
	struct probe_target *tg = &job->targets[job->cur_target];
	if (!dns_answer_wanted(job, status, ms))
		return;
	tg->resolved = true;
	tg->status = status;
	if (status == ARES_SUCCESS && n) {
		tg->addrs = xcalloc(n, sizeof *tg->addrs);
		memcpy(tg->addrs, addrs, n * sizeof *addrs);
		tg->n_addrs = n;
	}
	job_next(job);
}

/* Moves to the next address to try: the next address of this target, or the next target. */
static void job_next(struct probe_job *job)
{
	while (job->cur_target < job->n_targets) {
		struct probe_target *tg = &job->targets[job->cur_target];
		if (!tg->resolved) {
			job->dns_pending = true;
			dns_lookup_addr(job->env.dns, tg->host, on_addr, job);
			return;
		}
		if (job->cur_addr < tg->n_addrs) {
			start_attempt(job);
			return;
		}
		job->cur_target++;
		job->cur_addr = 0;
	}
	if (job->r.n_tries) {
		job_finish(job);
		return;
	}
	/* No address at all for any target. */
	const struct probe_target *last = &job->targets[job->n_targets - 1];
	if (job->n_targets == 1)
		job_fail(job, STAGE_DNS, "%s has no address: %s", last->host, dns_strerror(last->status));
	else
		job_fail(job, STAGE_DNS, "none of the %zu MX hosts has an address (last: %s: %s)", job->n_targets,
			 last->host, dns_strerror(last->status));
}

static void add_target(struct probe_job *job, const char *host)
{
	job->targets = xrealloc(job->targets, (job->n_targets + 1) * sizeof *job->targets);
	struct probe_target *tg = &job->targets[job->n_targets++];
	memset(tg, 0, sizeof *tg);
	tg->host = xstrdup(host);
	/* An address literal needs no lookup. */
	unsigned char buf[16];
	int fam = inet_pton(AF_INET, host, buf) == 1 ? AF_INET : inet_pton(AF_INET6, host, buf) == 1 ? AF_INET6 : 0;
	if (fam) {
		tg->resolved = true;
		tg->addrs = xcalloc(1, sizeof *tg->addrs);
		tg->addrs[0].family = fam;
		snprintf(tg->addrs[0].ip, sizeof tg->addrs[0].ip, "%s", host);
		tg->n_addrs = 1;
	}
}

static void on_mx(void *arg, int status, const struct dns_mx *mx, size_t n, double ms)
{
	struct probe_job *job = arg;
	if (!dns_answer_wanted(job, status, ms))
		return;
	if (status == ARES_SUCCESS) {
		/* RFC 7505 null MX: the domain accepts no mail. */
		if (n == 1 && (mx[0].host[0] == '\0' || strcmp(mx[0].host, ".") == 0)) {
			job_fail(job, STAGE_DNS, "%s publishes a null MX (RFC 7505): it accepts no mail",
				 job->seed->domain);
			return;
		}
		job->r.mx_hosts = xcalloc(n, sizeof *job->r.mx_hosts);
		for (size_t i = 0; i < n; i++) {
			job->r.mx_hosts[job->r.n_mx_hosts++] = xasprintf("%d %s", mx[i].pref, mx[i].host);
			add_target(job, mx[i].host);
		}
	} else if (status == ARES_ENODATA) {
		/* No MX: the domain itself is the implicit MX (RFC 5321 5.1). */
		add_target(job, job->seed->domain);
	} else {
		job_fail(job, STAGE_DNS, "MX lookup for %s failed: %s", job->seed->domain, dns_strerror(status));
		return;
	}
	job_next(job);
}

struct probe_job *probe_start(const struct probe_env *env, const struct conf_seed *seed,
			      const struct probe_ident *ident, probe_done_cb *done, void *arg)
{
	struct probe_job *job = xcalloc(1, sizeof *job);
	const struct conf_sender *s = seed->sender;
	job->env = *env;
	job->seed = seed;
	job->sender = s;
	job->done = done;
	job->arg = arg;
	job->t_start_us = mono_us();
	evtimer_init(&job->finish, job_on_finish, job);
	probe_result_init(&job->r);
	snprintf(job->r.seed, sizeof job->r.seed, "%s", seed->name);
	snprintf(job->r.vantage, sizeof job->r.vantage, "%s", env->conf->vantage ? env->conf->vantage : "");
	snprintf(job->r.mode, sizeof job->r.mode, "%s", conf_mode_name(s->mode));
	job->r.attempt_at_ms = wall_ms();
	job->r.sent_at_ms = ident ? ident->sent_at_ms : job->r.attempt_at_ms;
	job->r.attempt = ident ? ident->attempt : 1;
	job->r.smtp.port = s->port;
	if (ident) {
		snprintf(job->r.probe_id, sizeof job->r.probe_id, "%s", ident->probe_id);
	} else if (message_new_probe_id(job->r.probe_id, sizeof job->r.probe_id, job->r.sent_at_ms) < 0) {
		job_fail(job, STAGE_CONNECT, "no random bytes for the probe id");
		return job;
	}
	if (env->token_key)
		token_make(env->token_key, job->r.probe_id, seed->name, job->r.sent_at_ms, job->r.token,
			   sizeof job->r.token);
	else
		snprintf(job->r.token, sizeof job->r.token, "%s", job->r.probe_id);

	struct message_params mp = {
		.seed = seed->name,
		.probe_id = job->r.probe_id,
		.token = job->r.token,
		.from = s->mail_from,
		.to = seed->address,
		.helo = s->helo,
		.date_ms = job->r.sent_at_ms,
		.headers = s->headers,
		.n_headers = s->n_headers,
		.headers2 = seed->headers,
		.n_headers2 = seed->n_headers,
	};
	job->message = message_build(&mp);

	if (s->username) {
		char *err = NULL;
		job->password = conf_read_secret(s->password_file, s->password_env, &err);
		if (!job->password) {
			job_fail(job, STAGE_AUTH, "cannot read the password of sender %s: %s", s->name, err);
			free(err);
			return job;
		}
	}

	if (s->mode == CONF_MODE_RELAY) {
		add_target(job, s->host);
		job_next(job);
	} else {
		job->dns_pending = true;
		dns_lookup_mx(env->dns, seed->domain, on_mx, job);
	}
	return job;
}

void probe_cancel(struct probe_job *job)
{
	if (!job)
		return;
	smtp_attempt_cancel(job->attempt);
	job->attempt = NULL;
	if (job->dns_pending) {
		job->cancelled = true; /* the DNS callback frees it */
		evtimer_stop(job->env.loop, &job->finish);
		return;
	}
	job_free(job);
}
