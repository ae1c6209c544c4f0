#include "transcript.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reply.h"
#include "strbuf.h"
#include "xalloc.h"

void transcript_init(struct transcript *tr) { memset(tr, 0, sizeof *tr); }

void transcript_fini(struct transcript *tr)
{
	for (size_t i = 0; i < tr->n; i++)
		free(tr->v[i].line);
	free(tr->v);
	memset(tr, 0, sizeof *tr);
}

static struct tr_event *tr_push(struct transcript *tr, enum tr_kind kind, int64_t t_us)
{
	if (tr->n == tr->cap) {
		tr->cap = tr->cap ? tr->cap * 2 : 32;
		tr->v = xrealloc(tr->v, tr->cap * sizeof *tr->v);
	}
	struct tr_event *e = &tr->v[tr->n++];
	memset(e, 0, sizeof *e);
	e->kind = kind;
	e->t_us = t_us;
	return e;
}

static bool verb_is(const char *cmd, const char *verb)
{
	size_t n = strlen(verb);
	return strncasecmp(cmd, verb, n) == 0 && (cmd[n] == '\0' || cmd[n] == ' ');
}

/* Keeps "AUTH MECH" and hides any initial response. */
static char *redact_auth(const char *line, size_t len)
{
	const char *sp1 = memchr(line, ' ', len);
	if (!sp1)
		return xstrndup(line, len);
	const char *mech = sp1 + 1;
	const char *sp2 = memchr(mech, ' ', len - (size_t)(mech - line));
	if (!sp2)
		return xstrndup(line, len);
	return xasprintf("%.*s <redacted>", (int)(sp2 - line), line);
}

/* The SMTP verbs curl sends; while an AUTH exchange is going on, any other line we send is
 * SASL data and is redacted. */
static bool is_smtp_verb(const char *line)
{
	static const char *const verbs[] = { "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT",
					     "DATA", "QUIT", "RSET", "NOOP", "VRFY", "EXPN" };
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (verb_is(line, verbs[i]))
			return true;
	return false;
}

static void tr_add_line(struct transcript *tr, enum tr_kind kind, const char *s, size_t len, int64_t t_us)
{
	if (kind == TR_TEXT && len == 0)
		return;
	struct tr_event *e = tr_push(tr, kind, t_us);
	if (kind == TR_OUT) {
		char *line = xstrndup(s, len);
		if (tr->auth_pending || (tr->in_auth && !is_smtp_verb(line))) {
			/* the answer to a 334 challenge (or anything that is not a command) */
			e->line = xstrdup("<redacted>");
			free(line);
		} else if (verb_is(line, "AUTH")) {
			tr->in_auth = true;
			e->line = redact_auth(s, len);
			free(line);
		} else {
			tr->in_auth = false;
			e->line = line;
		}
		tr->auth_pending = false;
		return;
	}
	e->line = xstrndup(s, len);
	if (kind == TR_IN && tr->in_auth) {
		/* Decide "the server wants more" as generously as curl does (it accepts any 334 line,
		 * even "334-" or "334x"): a secret must never be logged because we parsed stricter. */
		if (len >= 3 && memcmp(s, "334", 3) == 0) {
			tr->auth_pending = true;
		} else {
			struct reply_line rl;
			if (reply_parse_line(s, len, &rl) == 0 && !rl.more) {
				tr->auth_pending = false;
				tr->in_auth = false;
			}
		}
	}
}

void transcript_add(struct transcript *tr, enum tr_kind kind, const char *data, size_t len, int64_t t_us)
{
	if (kind == TR_BODY) {
		/* The end-of-data stage starts at the last body chunk: merge chunks, keep the latest time. */
		if (tr->n && tr->v[tr->n - 1].kind == TR_BODY) {
			tr->v[tr->n - 1].bytes += len;
			tr->v[tr->n - 1].t_us = t_us;
		} else {
			tr_push(tr, TR_BODY, t_us)->bytes = len;
		}
		return;
	}
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || data[i] == '\n') {
			size_t end = i;
			while (end > start && (data[end - 1] == '\r' || data[end - 1] == '\n'))
				end--;
			if (i < len || end > start)
				tr_add_line(tr, kind, data + start, end - start, t_us);
			start = i + 1;
		}
	}
}

enum probe_stage transcript_command_stage(const char *cmd)
{
	if (verb_is(cmd, "EHLO") || verb_is(cmd, "HELO"))
		return STAGE_EHLO;
	if (verb_is(cmd, "STARTTLS"))
		return STAGE_STARTTLS;
	if (verb_is(cmd, "AUTH"))
		return STAGE_AUTH;
	if (verb_is(cmd, "MAIL"))
		return STAGE_MAIL;
	if (verb_is(cmd, "RCPT"))
		return STAGE_RCPT;
	if (verb_is(cmd, "DATA"))
		return STAGE_DATA;
	return STAGE_NONE;
}

/* ---- analysis ---- */

struct xchg {
	enum probe_stage stage;
	const char *cmd;     /* borrowed from the transcript; NULL for banner and body */
	bool is_body;
	bool is_banner;
	int64_t t_sent, t_last;
	int nlines;
	bool complete;       /* the last line of a reply arrived */
	int code;
	char enhanced[16];
	struct strbuf text;
	bool offers_starttls; /* EHLO reply advertised STARTTLS */
	bool offers_auth;
};

static void xchg_add_reply(struct xchg *x, const char *line, int64_t t_us)
{
	struct reply_line rl;
	x->t_last = t_us;
	x->nlines++;
	if (reply_parse_line(line, strlen(line), &rl) < 0) {
		/* Garbage from the server: keep it as text so the user sees it. */
		if (x->text.len)
			sb_appendc(&x->text, ' ');
		sb_append(&x->text, line);
		x->complete = false;
		return;
	}
	x->code = rl.code;
	x->complete = !rl.more;
	if (!x->enhanced[0] && rl.enhanced[0])
		memcpy(x->enhanced, rl.enhanced, sizeof x->enhanced);
	if (x->cmd && verb_is(x->cmd, "EHLO") && x->nlines > 1) {
		if (rl.text_len >= 8 && strncasecmp(rl.text, "STARTTLS", 8) == 0)
			x->offers_starttls = true;
		if (rl.text_len >= 4 && strncasecmp(rl.text, "AUTH", 4) == 0 &&
		    (rl.text_len == 4 || rl.text[4] == ' ' || rl.text[4] == '='))
			x->offers_auth = true;
		return; /* capability lines are not reply text */
	}
	if (rl.text_len) {
		if (x->text.len)
			sb_appendc(&x->text, ' ');
		sb_appendn(&x->text, rl.text, rl.text_len);
	}
}

static double us_to_ms(int64_t us) { return (double)us / 1000.0; }

static bool is_tls_curl_error(int code)
{
	/* CURLE_SSL_CONNECT_ERROR 35, PEER_FAILED_VERIFICATION 60, SSL_CERTPROBLEM 58,
	 * SSL_CIPHER 59, SSL_ENGINE_INITFAILED 66, SSL_CACERT_BADFILE 77, SSL_ISSUER_ERROR 83,
	 * SSL_PINNEDPUBKEYNOTMATCH 90, SSL_INVALIDCERTSTATUS 91, SSL_CLIENTCERT 98 */
	return code == 35 || code == 60 || code == 58 || code == 59 || code == 66 || code == 77 ||
	       code == 83 || code == 90 || code == 91 || code == 98;
}

static void copy_str(char *dst, size_t dstsz, const char *src)
{
	snprintf(dst, dstsz, "%s", src ? src : "");
}

static void describe_reply(char *buf, size_t len, const struct xchg *x)
{
	snprintf(buf, len, "%d%s%s %s", x->code, x->enhanced[0] ? " " : "", x->enhanced, x->text.s);
}

static void no_reply_error(const struct tr_context *ctx, const char *what, char *buf, size_t len)
{
	if (ctx->timeout_stage != STAGE_NONE)
		snprintf(buf, len, "timeout: no %s within %.3gs", what, (double)ctx->timeout_ms / 1000.0);
	else if (ctx->curl_code == 28)
		snprintf(buf, len, "timeout: no %s (%s)", what, ctx->curl_error[0] ? ctx->curl_error : "curl timeout");
	else if (ctx->curl_code == 56 || ctx->curl_code == 55 || ctx->curl_code == 8 || ctx->curl_code == 0)
		snprintf(buf, len, "connection closed by the server before the %s", what);
	else
		snprintf(buf, len, "%s (while waiting for the %s)",
			 ctx->curl_error[0] ? ctx->curl_error : "transfer failed", what);
}

static void parse_tls_text(const char *line, struct smtp_try *try)
{
	/* "SSL connection using TLSv1.3 / TLS_AES_256_GCM_SHA384[ / group / sig]" */
	const char *p = strstr(line, "SSL connection using ");
	if (!p)
		return;
	p += strlen("SSL connection using ");
	const char *sep = strstr(p, " / ");
	if (!sep) {
		copy_str(try->tls_version, sizeof try->tls_version, p);
		return;
	}
	snprintf(try->tls_version, sizeof try->tls_version, "%.*s", (int)(sep - p), p);
	const char *c = sep + 3;
	const char *end = strstr(c, " / ");
	snprintf(try->tls_cipher, sizeof try->tls_cipher, "%.*s", (int)(end ? end - c : (long)strlen(c)), c);
}

void transcript_analyse(const struct transcript *tr, const struct tr_context *ctx, struct smtp_try *try)
{
	struct xchg *xs = xcalloc(tr->n + 1, sizeof *xs);
	size_t nx = 0;
	int64_t t_connected = 0, t_tls_done = 0;
	bool saw_auth = false, saw_starttls = false, offers_starttls = false;

	/* 1. Group events into exchanges: a command and the reply lines that follow it. */
	for (size_t i = 0; i < tr->n; i++) {
		const struct tr_event *e = &tr->v[i];
		struct xchg *cur = nx ? &xs[nx - 1] : NULL;
		switch (e->kind) {
		case TR_TEXT:
			if (!t_connected && strncmp(e->line, "Connected to", 12) == 0)
				t_connected = e->t_us;
			if (strstr(e->line, "SSL connection using ")) {
				t_tls_done = e->t_us;
				parse_tls_text(e->line, try);
			}
			break;
		case TR_OUT:
		case TR_BODY: {
			struct xchg *x = &xs[nx++];
			sb_init(&x->text);
			x->t_sent = x->t_last = e->t_us;
			if (e->kind == TR_BODY) {
				x->is_body = true;
				x->stage = STAGE_EOD;
			} else {
				x->cmd = e->line;
				x->stage = transcript_command_stage(e->line);
				if (cur && cur->stage == STAGE_AUTH && cur->code == 334)
					x->stage = STAGE_AUTH; /* SASL continuation */
				if (x->stage == STAGE_AUTH)
					saw_auth = true;
				if (x->stage == STAGE_STARTTLS)
					saw_starttls = true;
			}
			break;
		}
		case TR_IN:
			if (!cur) {
				cur = &xs[nx++];
				sb_init(&cur->text);
				cur->is_banner = true;
				cur->stage = STAGE_BANNER;
				cur->t_sent = t_connected ? t_connected
							  : ctx->t_start_us + (int64_t)(ctx->connect_ms > 0 ? ctx->connect_ms * 1000 : 0);
			}
			xchg_add_reply(cur, e->line, e->t_us);
			if (cur->offers_starttls)
				offers_starttls = true;
			break;
		}
	}

	/* 2. Per-stage times. */
	struct stage_times *t = &try->t;
	memset(t, 0, sizeof *t);
	if (ctx->connected || t_connected) {
		t->present[STAGE_CONNECT] = true;
		t->ms[STAGE_CONNECT] = ctx->connect_ms >= 0 ? ctx->connect_ms
						       : us_to_ms(t_connected - ctx->t_start_us);
	}
	if (nx == 0 && t_connected) {
		/* connected, and no greeting ever came: the banner stage lasted until the end */
		t->present[STAGE_BANNER] = true;
		t->ms[STAGE_BANNER] = us_to_ms(ctx->t_end_us - t_connected);
	}
	for (size_t i = 0; i < nx; i++) {
		struct xchg *x = &xs[i];
		if (x->stage == STAGE_NONE)
			continue;
		int64_t end = x->nlines ? x->t_last : ctx->t_end_us;
		if (x->stage == STAGE_STARTTLS && t_tls_done > x->t_sent)
			end = t_tls_done;
		t->present[x->stage] = true;
		/* A greeting stamped by the kernel can precede curl noticing the connection
		 * ("Connected to"): the banner then took no measurable time, not a negative one. */
		t->ms[x->stage] += us_to_ms(end > x->t_sent ? end - x->t_sent : 0);
	}

	/* 3. The decision: the first reply >= 400 that curl did not tolerate, or the first
	 * exchange left without a complete reply. */
	try->outcome = OUTCOME_NONE;
	int64_t t_decided = ctx->t_end_us;
	for (size_t i = 0; i < nx && try->outcome == OUTCOME_NONE; i++) {
		struct xchg *x = &xs[i];
		const struct xchg *next = NULL;
		for (size_t k = i + 1; k < nx; k++)
			if (!xs[k].cmd || !verb_is(xs[k].cmd, "QUIT")) {
				next = &xs[k];
				break;
			}
		bool quit = x->cmd && verb_is(x->cmd, "QUIT");
		if (quit)
			continue;
		if (!x->complete) {
			try->stage = x->stage == STAGE_NONE ? STAGE_BANNER : x->stage;
			if (x->nlines && x->code) {
				/* a partial multi-line reply, then nothing */
				try->code = x->code;
				copy_str(try->enhanced, sizeof try->enhanced, x->enhanced);
				copy_str(try->text, sizeof try->text, x->text.s);
			}
			if (x->is_body) {
				try->outcome = ctx->timeout_stage == STAGE_EOD ? OUTCOME_FAILED : OUTCOME_UNKNOWN;
				no_reply_error(ctx, "end-of-data reply", try->error, sizeof try->error);
				if (try->outcome == OUTCOME_UNKNOWN)
					snprintf(try->error, sizeof try->error, "connection lost after the message was sent, "
						 "before the end-of-data reply: delivery state unknown");
				else
					snprintf(try->error + strlen(try->error), sizeof try->error - strlen(try->error),
						 "; delivery state unknown");
			} else {
				try->outcome = OUTCOME_FAILED;
				char what[64];
				if (x->is_banner)
					snprintf(what, sizeof what, "greeting");
				else /* "reply to RCPT", not the address */
					snprintf(what, sizeof what, "reply to %.*s", (int)strcspn(x->cmd, " "), x->cmd);
				no_reply_error(ctx, what, try->error, sizeof try->error);
			}
			break;
		}
		if (x->code >= 400) {
			char desc[600];
			describe_reply(desc, sizeof desc, x);
			if (x->cmd && verb_is(x->cmd, "EHLO") && next && next->cmd && verb_is(next->cmd, "HELO")) {
				smtp_try_add_warning(try, "EHLO refused (%s), fell back to HELO", desc);
				continue;
			}
			if (x->stage == STAGE_STARTTLS && next && next->cmd) {
				smtp_try_add_warning(try, "STARTTLS refused (%s), continued without TLS", desc);
				continue;
			}
			try->outcome = x->code < 500 ? OUTCOME_DEFERRED : OUTCOME_REJECTED;
		} else if (x->is_body && x->code >= 200 && x->code < 300) {
			try->outcome = OUTCOME_ACCEPTED;
		} else {
			continue;
		}
		try->stage = x->stage == STAGE_NONE ? STAGE_BANNER : x->stage;
		try->code = x->code;
		copy_str(try->enhanced, sizeof try->enhanced, x->enhanced);
		copy_str(try->text, sizeof try->text, x->text.s);
		t_decided = x->t_last;
	}

	if (try->outcome == OUTCOME_NONE) {
		try->outcome = OUTCOME_FAILED;
		const char *err = ctx->curl_error && ctx->curl_error[0] ? ctx->curl_error : "";
		if (nx == 0 && !(ctx->connected || t_connected)) {
			try->stage = STAGE_CONNECT;
			if (ctx->timeout_stage == STAGE_CONNECT)
				snprintf(try->error, sizeof try->error, "timeout: no TCP connection within %.3gs",
					 (double)ctx->timeout_ms / 1000.0);
			else
				copy_str(try->error, sizeof try->error, err[0] ? err : "connection failed");
		} else if (nx == 0) {
			try->stage = STAGE_BANNER;
			no_reply_error(ctx, "greeting", try->error, sizeof try->error);
		} else if (ctx->curl_code == 64 && !saw_starttls) {
			try->stage = STAGE_STARTTLS;
			copy_str(try->error, sizeof try->error, "STARTTLS required but not offered by the server");
		} else if (is_tls_curl_error(ctx->curl_code) || (saw_starttls && !t_tls_done && ctx->curl_code != 0)) {
			try->stage = STAGE_STARTTLS;
			snprintf(try->error, sizeof try->error, "TLS handshake failed: %s", err[0] ? err : "unknown error");
		} else if (ctx->curl_code == 67) {
			try->stage = STAGE_AUTH;
			copy_str(try->error, sizeof try->error, "authentication failed");
		} else {
			/* Transfer ended with every reply complete and no end-of-data reply. */
			try->stage = xs[nx - 1].stage == STAGE_NONE ? STAGE_BANNER : xs[nx - 1].stage;
			try->outcome = ctx->curl_code == 0 ? OUTCOME_UNKNOWN : OUTCOME_FAILED;
			snprintf(try->error, sizeof try->error, "session ended without an end-of-data reply%s%s",
				 err[0] ? ": " : "", err);
		}
	}

	/* 4. Credentials configured but no AUTH exchange: the relay was not authenticated to, whatever
	 * it then said. A failure at stage auth, not a success. */
	if (ctx->auth_expected && !saw_auth && try->stage > STAGE_AUTH) {
		if (try->code)
			smtp_try_add_warning(try, "server replied %d %s %s without authentication", try->code,
					     try->enhanced, try->text);
		try->outcome = OUTCOME_FAILED;
		try->stage = STAGE_AUTH;
		try->code = 0;
		try->enhanced[0] = try->text[0] = '\0';
		snprintf(try->error, sizeof try->error, "credentials configured but the server offered no AUTH%s",
			 t_tls_done ? "" : " (the session was not encrypted)");
	}

	/* 5. Tolerated TLS downgrade under opportunistic. */
	if (ctx->tls_wanted && !ctx->tls_required && !saw_starttls && !t_tls_done && try->stage > STAGE_EHLO &&
	    !offers_starttls)
		smtp_try_add_warning(try, "server did not offer STARTTLS: sent without TLS");
	if (!t_tls_done)
		try->tls_version[0] = try->tls_cipher[0] = '\0';

	t->total_ms = us_to_ms(t_decided - ctx->t_start_us);
	for (size_t i = 0; i < nx; i++)
		sb_fini(&xs[i].text);
	free(xs);
}

void transcript_export(const struct transcript *tr, int64_t t0_us, struct smtp_try *try)
{
	try->transcript = xrealloc(try->transcript, (try->n_transcript + tr->n + 1) * sizeof *try->transcript);
	for (size_t i = 0; i < tr->n; i++) {
		const struct tr_event *e = &tr->v[i];
		double t = us_to_ms(e->t_us - t0_us);
		char *line;
		switch (e->kind) {
		case TR_TEXT: line = xasprintf("%+.3f * %s", t, e->line); break;
		case TR_OUT: line = xasprintf("%+.3f > %s", t, e->line); break;
		case TR_IN: line = xasprintf("%+.3f < %s", t, e->line); break;
		default: line = xasprintf("%+.3f > [message body, %zu bytes]", t, e->bytes); break;
		}
		try->transcript[try->n_transcript++] = line;
	}
}
