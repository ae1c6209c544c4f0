/* Fuzz target: the SMTP transcript (probe/transcript.c): transcript_add, transcript_analyse and
 * transcript_export fed with what a hostile or broken server can make curl report, then the
 * result as JSON (probe_result_json).
 *
 * Input layout:
 *   byte 0  flags: bit 0 raw mode (below), bit 1 ctx.connected, bit 2 tls_wanted,
 *           bit 3 tls_required, bit 4 auth_expected, bits 5-7 which curl error text
 *   byte 1  curl code: even values index a table of the codes transcript.c knows, odd ones
 *           are taken as they are (b / 2)
 *   byte 2  timeout stage (b % 11 - 1: STAGE_NONE, or DNS..EOD)
 *   byte 3  connect time in ms (0xff when not connected: unknown, -1); byte 4: timeout in s
 *   then events: [kind][delta][len][len bytes]
 *     kind & 7: 0 text, 1 command, 2 "AUTH <mech>[ <initial response>]", 3 reply line,
 *               4 body chunk of len bytes, 5 "Connected to" text, 6 "SSL connection using" text,
 *               7 reply line
 *     kind & 8: the reply line ends in a bare LF (else CR LF)
 *     kind >> 4: scale of the time step: delta << (2 * scale) microseconds
 *
 * Faithful mode (bit 0 clear) gives transcript_add what curl 7.88 gives smtp.c's debug callback:
 * one command line + CRLF per HEADER_OUT, one reply line + its LF per HEADER_IN. A model of
 * curl's SMTP reply reading (smtp_endofresp: "ddd " or a 5-byte line ends a reply) decides when
 * curl sends a SASL continuation; the harness then sends a secret containing MARKER, and puts
 * MARKER after any AUTH initial response. MARKER must never reach the exported transcript, the
 * analysis or the JSON. Raw mode passes arbitrary chunks of any kind (multi-line, NUL bytes)
 * without the secret model.
 *
 * Invariants in both modes: outcome is one of the enum values and decided; stage is a real
 * stage; code is 0 or 100..599 and matches the outcome; failed/unknown come with an error text
 * and accepted/deferred/rejected without one; per-stage times are finite and not negative for
 * a consistent context; the export has one line per event; the JSON is valid. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "result.h"
#include "strbuf.h"
#include "support.h"
#include "transcript.h"

#define MARKER "c2VjcmV0LW1hcmtlcg"

struct model {
	bool in_auth; /* an AUTH command was sent, no final non-334 reply yet (curl's view) */
	bool pending; /* curl saw a final 334: its next command line is a SASL continuation */
};

struct input {
	const uint8_t *p, *end;
};

static unsigned take(struct input *in)
{
	return in->p < in->end ? *in->p++ : 0;
}

/* Copies the next [len][bytes] into buf (NUL-terminated); returns the length. */
static size_t take_field(struct input *in, char *buf)
{
	size_t n = take(in);
	if (n > (size_t)(in->end - in->p))
		n = (size_t)(in->end - in->p);
	memcpy(buf, in->p, n);
	buf[n] = '\0';
	in->p += n;
	return n;
}

/* Breaks any MARKER in non-secret data, so that only secrets can carry it. */
static void defuse(char *s, size_t n)
{
	const char *m;
	while ((m = fuzz_memmem(s, n, MARKER, strlen(MARKER))) != NULL)
		s[m - s] = '_';
}

static bool verb_auth(const char *s)
{
	return strncasecmp(s, "AUTH", 4) == 0 && (s[4] == '\0' || s[4] == ' ');
}

/* curl 7.88 lib/smtp.c smtp_endofresp(): is this line (length with its LF) the end of a reply
 * in a state that does not take multi-line replies (AUTH), and with which code. */
static bool curl_endofresp(const char *line, size_t len, int *code)
{
	if (len < 4 || line[0] < '0' || line[0] > '9' || line[1] < '0' || line[1] > '9' || line[2] < '0' ||
	    line[2] > '9')
		return false;
	if (line[3] != ' ' && len != 5)
		return false;
	char tmp[6] = { 0 };
	memcpy(tmp, line, len == 5 ? 5 : 3);
	*code = (int)strtol(tmp, NULL, 10);
	return true;
}

static void add(struct transcript *tr, enum tr_kind kind, const char *s, size_t n, int64_t t)
{
	transcript_add(tr, kind, s, n, t);
}

/* Only base64 characters: what curl sends as SASL data. */
static size_t b64ify(char *s, size_t n)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(b64, s[i]))
			s[i] = b64[(unsigned char)s[i] % 65];
	return n;
}

static void faithful_event(struct transcript *tr, struct model *m, unsigned kind, char *buf, size_t n,
			   int64_t t)
{
	char line[600];
	size_t ln;

	/* After a final 334, curl's next protocol event is its SASL answer: it sends it before it
	 * reads (and reports) anything else from the server. */
	bool secret_next = m->pending && (kind & 7) != 0 && (kind & 7) != 5 && (kind & 7) != 6;
	switch (secret_next ? 1 : kind & 7) {
	case 1:
	case 2: {
		if (m->pending) {
			/* curl answers a 334 with the next SASL message (or "*"). */
			ln = b64ify(buf, n > 64 ? 64 : n);
			ln = (size_t)snprintf(line, sizeof line, "%.*s%s\r\n", (int)ln, buf, MARKER);
			m->pending = false;
			add(tr, TR_OUT, line, ln, t);
			return;
		}
		n = strcspn(buf, "\r\n"); /* one command line, no NUL (curl builds it from strings) */
		buf[n] = '\0';
		defuse(buf, n);
		if ((kind & 7) == 2) {
			/* "AUTH MECH" or "AUTH MECH <initial response>MARKER" */
			size_t ml = strcspn(buf, " ");
			if (ml > 20)
				ml = 20;
			if (ml < n && n - ml > 1) {
				char *ir = buf + ml + 1;
				size_t il = b64ify(ir, n - ml - 1 > 200 ? 200 : n - ml - 1);
				ln = (size_t)snprintf(line, sizeof line, "AUTH %.*s %.*s%s\r\n", (int)ml, buf,
						      (int)il, ir, MARKER);
			} else {
				ln = (size_t)snprintf(line, sizeof line, "AUTH %.*s\r\n", (int)ml, buf);
			}
			m->in_auth = true;
		} else {
			ln = (size_t)snprintf(line, sizeof line, "%s\r\n", buf);
			if (verb_auth(buf)) {
				/* An initial response is whatever follows "AUTH MECH ". */
				if (n > 5 && strchr(buf + 5, ' ')) {
					ln = (size_t)snprintf(line, sizeof line, "%s%s\r\n", buf, MARKER);
				}
				m->in_auth = true;
			} else {
				m->in_auth = false;
			}
		}
		if (ln >= sizeof line)
			ln = sizeof line - 1;
		add(tr, TR_OUT, line, ln, t);
		return;
	}
	case 3:
	case 7: {
		/* One reply line as curl's pingpong reader passes it: the bytes up to and including
		 * the LF; a CR before it is part of the line. NUL bytes stay (a server may send them). */
		const char *lf = memchr(buf, '\n', n);
		ln = lf ? (size_t)(lf - buf) : n;
		defuse(buf, ln);
		memcpy(line, buf, ln);
		if (kind & 8) {
			line[ln++] = '\n';
		} else {
			line[ln++] = '\r';
			line[ln++] = '\n';
		}
		int code;
		if (m->in_auth && curl_endofresp(line, ln, &code)) {
			m->pending = code == 334;
			if (code != 334)
				m->in_auth = false;
		}
		add(tr, TR_IN, line, ln, t);
		return;
	}
	case 4:
		add(tr, TR_BODY, buf, n, t);
		m->in_auth = m->pending = false;
		return;
	case 5:
		ln = (size_t)snprintf(line, sizeof line, "Connected to %s (%s) port 25 (#0)\n", "mx.example",
				      n ? buf : "192.0.2.1");
		defuse(line, ln);
		add(tr, TR_TEXT, line, ln, t);
		return;
	case 6:
		ln = (size_t)snprintf(line, sizeof line, "SSL connection using %s\n", buf);
		defuse(line, ln);
		add(tr, TR_TEXT, line, ln, t);
		return;
	default:
		defuse(buf, n);
		add(tr, TR_TEXT, buf, n, t);
		return;
	}
}

static void raw_event(struct transcript *tr, unsigned kind, const char *buf, size_t n, int64_t t)
{
	static const enum tr_kind kinds[8] = { TR_TEXT, TR_OUT, TR_OUT, TR_IN, TR_BODY, TR_TEXT, TR_TEXT, TR_IN };
	add(tr, kinds[kind & 7], buf, n, t);
}

static void no_marker(const char *what, const char *s)
{
	FUZZ_CHECK(strstr(s, MARKER) == NULL, "a secret reached %s: %s", what, s);
}

static void check_try(const struct smtp_try *try, const struct transcript *tr, bool faithful)
{
	FUZZ_CHECK(try->outcome >= OUTCOME_ACCEPTED && try->outcome <= OUTCOME_UNKNOWN, "outcome %d",
		   (int)try->outcome);
	FUZZ_CHECK(try->stage >= STAGE_DNS && try->stage < STAGE__COUNT, "stage %d", (int)try->stage);
	FUZZ_CHECK(try->code == 0 || (try->code >= 100 && try->code <= 599), "code %d", try->code);
	switch (try->outcome) {
	case OUTCOME_ACCEPTED:
		FUZZ_CHECK(try->stage == STAGE_EOD && try->code >= 200 && try->code < 300,
			   "accepted at stage %s with code %d", probe_stage_name(try->stage), try->code);
		break;
	case OUTCOME_DEFERRED:
		FUZZ_CHECK(try->code >= 400 && try->code < 500, "deferred with code %d", try->code);
		break;
	case OUTCOME_REJECTED:
		FUZZ_CHECK(try->code >= 500 && try->code < 600, "rejected with code %d", try->code);
		break;
	default:
		break;
	}
	bool failure = try->outcome == OUTCOME_FAILED || try->outcome == OUTCOME_UNKNOWN;
	FUZZ_CHECK(failure == (try->error[0] != '\0'), "outcome %s with error \"%s\"",
		   probe_outcome_name(try->outcome), try->error);
	FUZZ_CHECK(memchr(try->enhanced, '\0', sizeof try->enhanced) && memchr(try->text, '\0', sizeof try->text) &&
			   memchr(try->error, '\0', sizeof try->error),
		   "unterminated string in the result");
	if (try->enhanced[0]) {
		/* A syntactically valid RFC 3463 code, as reply_enhanced_code found it. */
		size_t n = strlen(try->enhanced);
		FUZZ_CHECK(n >= 5 && n <= 9 && strchr("245", try->enhanced[0]) && try->enhanced[1] == '.',
			   "enhanced \"%s\"", try->enhanced);
	}
	for (int s = 0; s < STAGE__COUNT; s++) {
		if (!try->t.present[s])
			continue;
		FUZZ_CHECK(isfinite(try->t.ms[s]) && try->t.ms[s] >= 0, "stage %s took %g ms",
			   probe_stage_name((enum probe_stage)s), try->t.ms[s]);
	}
	FUZZ_CHECK(isfinite(try->t.total_ms) && try->t.total_ms >= 0, "total %g ms", try->t.total_ms);
	FUZZ_CHECK(try->n_transcript == tr->n, "%zu transcript lines for %zu events", try->n_transcript, tr->n);
	for (size_t i = 0; i < try->n_warnings; i++)
		FUZZ_CHECK(try->warnings[i] != NULL, "NULL warning");
	if (!faithful)
		return;
	no_marker("the reply text", try->text);
	no_marker("the error", try->error);
	for (size_t i = 0; i < try->n_warnings; i++)
		no_marker("a warning", try->warnings[i]);
	for (size_t i = 0; i < try->n_transcript; i++)
		no_marker("the exported transcript", try->transcript[i]);
	for (size_t i = 0; i < tr->n; i++)
		if (tr->v[i].line)
			no_marker("the recorded transcript", tr->v[i].line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int curl_codes[] = { 0, 6, 7, 8, 28, 35, 52, 55, 56, 58, 59, 60, 64, 66, 67, 77, 83, 90, 91, 98 };
	static const char *const curl_errors[] = {
		"", "Operation timed out after 30000 milliseconds with 0 bytes received",
		"Recv failure: Connection reset by peer", "Login denied",
		"SSL certificate problem: unable to get local issuer certificate",
		"STARTTLS not supported.", "Failed to connect to 192.0.2.1 port 25: Connection refused",
		"Weird server reply",
	};
	struct input in = { data, data + size };
	struct transcript tr;
	struct tr_context ctx;
	struct model m = { 0 };
	struct smtp_try try;
	char buf[256];

	if (size < 5)
		return 0;
	unsigned flags = take(&in);
	bool faithful = !(flags & 1);
	memset(&ctx, 0, sizeof ctx);
	unsigned cc = take(&in);
	ctx.curl_code = cc & 1 ? (int)(cc / 2) : curl_codes[(cc / 2) % (sizeof curl_codes / sizeof curl_codes[0])];
	ctx.curl_error = curl_errors[(flags >> 5) & 7];
	ctx.timeout_stage = (enum probe_stage)((int)(take(&in) % 11) - 1);
	unsigned cm = take(&in);
	ctx.timeout_ms = (int64_t)take(&in) * 1000;
	ctx.connected = flags & 2;
	ctx.tls_wanted = flags & 4;
	ctx.tls_required = (flags & 8) && ctx.tls_wanted;
	ctx.auth_expected = flags & 16;
	/* A consistent context: curl knows the connect time whenever it connected (smtp.c), and
	 * every event comes after the connection was made. */
	ctx.connect_ms = cm == 0xff && !ctx.connected ? -1 : (double)cm;
	ctx.t_start_us = INT64_C(1000000000);
	int64_t t = ctx.t_start_us + (ctx.connect_ms > 0 ? (int64_t)(ctx.connect_ms * 1000) : 0);

	transcript_init(&tr);
	while (in.p < in.end && tr.n < 4000) {
		unsigned kind = take(&in);
		unsigned delta = take(&in);
		t += (int64_t)delta << (2 * (kind >> 4));
		size_t n = take_field(&in, buf);
		if (faithful)
			faithful_event(&tr, &m, kind, buf, n, t);
		else
			raw_event(&tr, kind, buf, n, t);
	}
	ctx.t_end_us = t + 1000;

	smtp_try_init(&try);
	transcript_analyse(&tr, &ctx, &try);
	transcript_export(&tr, ctx.t_start_us, &try);
	check_try(&try, &tr, faithful);

	/* The result as results.jsonl gets it. */
	struct probe_result r;
	struct strbuf json;
	probe_result_init(&r);
	snprintf(r.seed, sizeof r.seed, "seed-a");
	snprintf(r.mode, sizeof r.mode, "mx");
	smtp_try_copy(&r.smtp, &try);
	r.tries = calloc(1, sizeof *r.tries);
	smtp_try_copy(&r.tries[0], &try);
	r.n_tries = 1;
	sb_init(&json);
	probe_result_json(&r, &json, true);
	FUZZ_CHECK(jc_document(json.s, json.len), "probe_result_json gave invalid JSON: %s", json.s);
	if (faithful)
		no_marker("the JSON result", json.s);
	sb_fini(&json);
	probe_result_fini(&r);

	smtp_try_fini(&try);
	transcript_fini(&tr);
	return 0;
}
