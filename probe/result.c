#include "result.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "diagnose.h"
#include "json.h"
#include "xalloc.h"

const char *probe_outcome_name(enum probe_outcome o)
{
	switch (o) {
	case OUTCOME_ACCEPTED: return "accepted";
	case OUTCOME_DEFERRED: return "deferred";
	case OUTCOME_REJECTED: return "rejected";
	case OUTCOME_FAILED: return "failed";
	case OUTCOME_UNKNOWN: return "unknown";
	case OUTCOME_NONE: break;
	}
	return "none";
}

const char *probe_stage_name(enum probe_stage s)
{
	static const char *const names[STAGE__COUNT] = {
		"dns", "connect", "banner", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "eod",
	};
	if (s < 0 || s >= STAGE__COUNT)
		return "none";
	return names[s];
}

enum probe_outcome probe_outcome_from_name(const char *name)
{
	for (int o = OUTCOME_ACCEPTED; o <= OUTCOME_UNKNOWN; o++)
		if (name && strcmp(name, probe_outcome_name((enum probe_outcome)o)) == 0)
			return (enum probe_outcome)o;
	return OUTCOME_NONE;
}

enum probe_stage probe_stage_from_name(const char *name)
{
	for (int s = 0; s < STAGE__COUNT; s++)
		if (name && strcmp(name, probe_stage_name((enum probe_stage)s)) == 0)
			return (enum probe_stage)s;
	return STAGE_NONE;
}

void smtp_try_init(struct smtp_try *t)
{
	memset(t, 0, sizeof *t);
	t->stage = STAGE_NONE;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static char **strv_copy(char *const *v, size_t n)
{
	if (!n)
		return NULL;
	char **c = xcalloc(n, sizeof *c);
	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

void smtp_try_fini(struct smtp_try *t)
{
	strv_free(t->warnings, t->n_warnings);
	strv_free(t->transcript, t->n_transcript);
	t->warnings = t->transcript = NULL;
	t->n_warnings = t->n_transcript = 0;
}

void smtp_try_add_warning(struct smtp_try *t, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;
	sb_init(&sb);
	va_start(ap, fmt);
	sb_vappendf(&sb, fmt, ap);
	va_end(ap);
	t->warnings = xrealloc(t->warnings, (t->n_warnings + 1) * sizeof *t->warnings);
	t->warnings[t->n_warnings++] = sb_steal(&sb);
	sb_fini(&sb);
}

void smtp_try_copy(struct smtp_try *dst, const struct smtp_try *src)
{
	*dst = *src;
	dst->warnings = strv_copy(src->warnings, src->n_warnings);
	dst->transcript = strv_copy(src->transcript, src->n_transcript);
}

void probe_result_init(struct probe_result *r)
{
	memset(r, 0, sizeof *r);
	smtp_try_init(&r->smtp);
	r->attempt = 1;
	r->final = true;
}

void probe_result_fini(struct probe_result *r)
{
	smtp_try_fini(&r->smtp);
	for (size_t i = 0; i < r->n_tries; i++)
		smtp_try_fini(&r->tries[i]);
	free(r->tries);
	strv_free(r->mx_hosts, r->n_mx_hosts);
	free(r->prev_attempts);
	free(r->readback_json);
	probe_dns_free(r->dns);
	memset(r, 0, sizeof *r);
}

void probe_result_move(struct probe_result *dst, struct probe_result *src)
{
	*dst = *src;
	probe_result_init(src);
}

struct probe_dns *probe_dns_new(void)
{
	return xcalloc(1, sizeof(struct probe_dns));
}

void probe_dns_free(struct probe_dns *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_checks; i++) {
		free(d->checks[i].name);
		free(d->checks[i].detail);
	}
	free(d->checks);
	free(d);
}

void probe_dns_add(struct probe_dns *d, const char *name, const char *status, const char *detail)
{
	d->checks = xrealloc(d->checks, (d->n_checks + 1) * sizeof *d->checks);
	struct probe_dns_check *c = &d->checks[d->n_checks++];
	c->name = xstrdup(name ? name : "");
	snprintf(c->status, sizeof c->status, "%s", status ? status : "error");
	c->detail = xstrdup(detail ? detail : "");
}

struct probe_dns *probe_dns_copy(const struct probe_dns *d)
{
	struct probe_dns *c = probe_dns_new();
	*c = *d;
	c->checks = NULL;
	c->n_checks = 0;
	for (size_t i = 0; i < d->n_checks; i++)
		probe_dns_add(c, d->checks[i].name, d->checks[i].status, d->checks[i].detail);
	return c;
}

void probe_dns_json(const struct probe_dns *d, struct json *j)
{
	char at[32];
	json_obj_begin(j);
	if (d->ip[0])
		json_kstr(j, "ip", d->ip);
	if (d->ip_from[0])
		json_kstr(j, "ip_from", d->ip_from);
	json_kstr(j, "checked_at", iso8601_ms(d->checked_at_ms, at, sizeof at));
	json_kdouble(j, "ms", d->ms, 3);
	json_kbool(j, "cached", d->cached);
	json_key(j, "checks");
	json_arr_begin(j);
	for (size_t i = 0; i < d->n_checks; i++) {
		json_obj_begin(j);
		json_kstr(j, "name", d->checks[i].name);
		json_kstr(j, "status", d->checks[i].status);
		json_kstr(j, "detail", d->checks[i].detail);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

static void json_ms(struct json *j, const struct stage_times *t, double dns_ms, bool with_dns, double total)
{
	json_key(j, "ms");
	json_obj_begin(j);
	if (with_dns)
		json_kdouble(j, "dns", dns_ms, 3);
	for (int s = STAGE_CONNECT; s < STAGE__COUNT; s++)
		if (t->present[s])
			json_kdouble(j, probe_stage_name((enum probe_stage)s), t->ms[s], 3);
	json_kdouble(j, "total", total, 3);
	json_obj_end(j);
}

/* What decided an outcome: the fields the top-level smtp object, each attempt and each try share. */
static void json_decision(struct json *j, const struct smtp_try *t)
{
	json_kstr(j, "outcome", probe_outcome_name(t->outcome));
	json_kstr(j, "stage", probe_stage_name(t->stage));
	json_key(j, "code");
	if (t->code)
		json_int(j, t->code);
	else
		json_null(j);
	json_kstr(j, "enhanced", t->enhanced);
	json_kstr(j, "text", t->text);
	if (t->error[0])
		json_kstr(j, "error", t->error);
}

/* An attempt or a try: the decision and when it started. */
static void json_dated_decision(struct json *j, const struct smtp_try *t)
{
	char at[32];
	json_decision(j, t);
	json_kstr(j, "at", iso8601_ms(t->at_ms, at, sizeof at));
}

static void attempt_body(struct json *j, const struct probe_result *r);

static void json_strv(struct json *j, const char *key, char *const *v, size_t n)
{
	json_key(j, key);
	json_arr_begin(j);
	for (size_t i = 0; i < n; i++)
		json_str(j, v[i]);
	json_arr_end(j);
}

void probe_result_json(const struct probe_result *r, struct strbuf *out, bool with_transcript)
{
	struct json j;
	char at[32];
	const struct smtp_try *s = &r->smtp;

	json_init(&j, out);
	json_obj_begin(&j);
	json_kstr(&j, "seed", r->seed);
	if (r->vantage[0])
		json_kstr(&j, "vantage", r->vantage);
	json_kstr(&j, "probe_id", r->probe_id);
	json_kstr(&j, "sent_at", iso8601_ms(r->sent_at_ms, at, sizeof at));

	json_key(&j, "smtp");
	json_obj_begin(&j);
	json_decision(&j, s);
	json_kstr(&j, "mode", r->mode);
	json_kstr(&j, "mx", s->mx);
	json_kstr(&j, "ip", s->ip);
	json_kint(&j, "port", s->port);
	if (s->local_ip[0])
		json_kstr(&j, "local_ip", s->local_ip);
	json_ms(&j, &s->t, r->dns_ms, true, r->total_ms);
	if (s->tls_version[0]) {
		json_key(&j, "tls");
		json_obj_begin(&j);
		json_kstr(&j, "version", s->tls_version);
		json_kstr(&j, "cipher", s->tls_cipher);
		json_kbool(&j, "verified", s->tls_verified);
		json_obj_end(&j);
	}
	/* Every attempt over time (retries of deferrals), earlier ones as the journal kept them. */
	json_key(&j, "attempts");
	json_arr_begin(&j);
	if (r->prev_attempts && *r->prev_attempts) {
		sb_append(out, r->prev_attempts);
		sb_appendc(out, ',');
	}
	json_obj_begin(&j);
	attempt_body(&j, r);
	json_obj_end(&j);
	json_arr_end(&j);
	double after = probe_accepted_after_s(r);
	if (after >= 0)
		json_kdouble(&j, "accepted_after_s", after, 3);
	/* Every MX/address tried within this attempt, like an MTA walking the MX list. */
	json_key(&j, "tries");
	json_arr_begin(&j);
	for (size_t i = 0; i < r->n_tries; i++) {
		const struct smtp_try *t = &r->tries[i];
		json_obj_begin(&j);
		json_kstr(&j, "mx", t->mx);
		json_kstr(&j, "ip", t->ip);
		json_kint(&j, "port", t->port);
		json_dated_decision(&j, t);
		json_ms(&j, &t->t, 0, false, t->t.total_ms);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	if (r->n_mx_hosts)
		json_strv(&j, "mx_hosts", r->mx_hosts, r->n_mx_hosts);
	json_strv(&j, "warnings", s->warnings, s->n_warnings);
	if (with_transcript)
		json_strv(&j, "transcript", s->transcript, s->n_transcript);
	json_obj_end(&j);

	json_key(&j, "readback");
	if (r->readback_json) {
		json_raw(&j, r->readback_json); /* a complete object from the scheduler */
	} else {
		json_obj_begin(&j);
		json_kstr(&j, "status", "skipped");
		json_obj_end(&j);
	}

	/* The scheduler's view: final or a retry pending, and what delayed the start. */
	json_kbool(&j, "final", r->final);
	if (!r->final && r->retry_at_ms) {
		json_key(&j, "retry");
		json_obj_begin(&j);
		json_kint(&j, "attempt", r->attempt + 1);
		json_kstr(&j, "at", iso8601_ms(r->retry_at_ms, at, sizeof at));
		json_obj_end(&j);
	}
	if (r->due_ms) {
		static const char *const why[] = { "in_flight", "per_domain", "spacing", "daily_budget" };
		json_key(&j, "schedule");
		json_obj_begin(&j);
		json_kstr(&j, "due_at", iso8601_ms(r->due_ms, at, sizeof at));
		json_kdouble(&j, "delay_s", (double)(r->attempt_at_ms - r->due_ms) / 1000.0, 3);
		json_key(&j, "waited_for");
		json_arr_begin(&j);
		for (unsigned i = 0; i < sizeof why / sizeof why[0]; i++)
			if (r->waited_for & (1u << i))
				json_str(&j, why[i]);
		json_arr_end(&j);
		json_obj_end(&j);
	}
	/* The sending identity's DNS checks, which refine the diagnosis. */
	if (r->dns) {
		json_key(&j, "dns");
		probe_dns_json(r->dns, &j);
	}
	/* The likely cause and next step (the last member: the scheduler replaces it when the
	 * readback ends, see diagnosis_replace_json). */
	struct diagnosis d;
	struct diag_findings f;
	diagnose_result(r, diag_findings_of_result(r, &f), &d);
	json_key(&j, "diagnosis");
	diagnosis_json(&j, &d);
	json_obj_end(&j);
}

/* The members of one attempt object: the decision, when, where, and its stage times. */
static void attempt_body(struct json *j, const struct probe_result *r)
{
	const struct smtp_try *s = &r->smtp;
	char at[32];
	json_kint(j, "n", r->attempt);
	json_decision(j, s);
	json_kstr(j, "at", iso8601_ms(r->attempt_at_ms ? r->attempt_at_ms : s->at_ms, at, sizeof at));
	json_kstr(j, "mx", s->mx);
	json_kstr(j, "ip", s->ip);
	json_ms(j, &s->t, r->dns_ms, true, r->total_ms);
}

void probe_attempt_json(const struct probe_result *r, struct strbuf *out)
{
	struct json j;
	json_init(&j, out);
	json_obj_begin(&j);
	attempt_body(&j, r);
	json_obj_end(&j);
}

double probe_accepted_after_s(const struct probe_result *r)
{
	if (r->smtp.outcome != OUTCOME_ACCEPTED)
		return -1;
	int64_t start = r->attempt_at_ms ? r->attempt_at_ms : r->sent_at_ms;
	double s = ((double)(start - r->sent_at_ms) + r->total_ms) / 1000.0;
	return s < 0 ? 0 : s;
}
