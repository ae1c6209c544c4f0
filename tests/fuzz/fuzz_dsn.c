/* Fuzz target: bounces (dsn_parse, dsn_stage_from_text), read from the envelope sender's mailbox
 * where anyone can send anything.
 *
 * Input: the raw message. Checks beyond "no crash, no sanitizer report":
 *   - every string of the report is NUL-terminated inside its array and free of control bytes;
 *   - stages are one of the stage names or ""; reply codes 0 or 200..599; the enhanced and
 *     status codes are "" or whole RFC 3463 codes; counts bounded (n_recipients <=
 *     DSN_MAX_RECIPIENTS, <= n_recipients_seen, and recipients beyond n_recipients untouched);
 *   - the return value agrees with the report (a delivery-status part is a bounce; an Action
 *     only comes from one), and the returned-headers origin with the token and Message-ID;
 *   - the same message with an mbox "From " line in front, and (when it has no CR) with CRLF
 *     line ends, gives the same report;
 *   - dsn_stage_from_text on the input returns a stage name or "". */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"
#include "reply.h"
#include "support.h"

static const char *const stages[] = { "", "connect", "banner", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "eod" };

static bool is_stage(const char *s)
{
	for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
		if (strcmp(s, stages[i]) == 0)
			return true;
	return false;
}

static void check_str(const char *what, const char *s, size_t size)
{
	const char *nul = memchr(s, '\0', size);
	FUZZ_CHECK(nul != NULL, "%s not NUL-terminated", what);
	for (const char *p = s; p < nul; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f, "%s has control byte 0x%02x", what,
			   (unsigned char)*p);
}

#define CHECK_STR(f) check_str(#f, (f), sizeof(f))

static void check_code(const char *what, const char *code)
{
	char buf[16];
	size_t n = strlen(code);
	FUZZ_CHECK(n == 0 || reply_enhanced_code(code, n, buf, sizeof buf) == n, "%s \"%s\" is no enhanced code",
		   what, code);
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void check_report(const struct dsn_report *r, int rc)
{
	FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
	CHECK_STR(r->reporting_mta);
	CHECK_STR(r->arrival_date);
	CHECK_STR(r->original_envelope_id);
	CHECK_STR(r->token);
	CHECK_STR(r->message_id);
	FUZZ_CHECK(r->n_recipients <= DSN_MAX_RECIPIENTS, "n_recipients %zu", r->n_recipients);
	FUZZ_CHECK(r->n_recipients <= r->n_recipients_seen, "n_recipients %zu > seen %zu", r->n_recipients,
		   r->n_recipients_seen);
	FUZZ_CHECK(r->headers_origin == DSN_HEADERS_NONE || r->headers_origin == DSN_HEADERS_PART ||
			   r->headers_origin == DSN_HEADERS_TEXT,
		   "headers_origin %d", (int)r->headers_origin);
	FUZZ_CHECK((r->token[0] || r->message_id[0]) == (r->headers_origin != DSN_HEADERS_NONE),
		   "headers_origin %d with token \"%s\" message_id \"%s\"", (int)r->headers_origin, r->token,
		   r->message_id);
	if (r->is_rfc3464)
		FUZZ_CHECK(rc == 0, "a delivery-status part, but rc %d", rc);
	for (size_t i = 0; i < r->n_recipients; i++) {
		const struct dsn_recipient *p = &r->recipients[i];
		CHECK_STR(p->final_recipient);
		CHECK_STR(p->original_recipient);
		CHECK_STR(p->action);
		CHECK_STR(p->status);
		CHECK_STR(p->enhanced);
		CHECK_STR(p->remote_mta);
		CHECK_STR(p->diagnostic_type);
		CHECK_STR(p->diagnostic);
		CHECK_STR(p->stage);
		CHECK_STR(p->last_attempt_date);
		CHECK_STR(p->will_retry_until);
		FUZZ_CHECK(is_stage(p->stage), "stage \"%s\"", p->stage);
		FUZZ_CHECK(p->reply_code == 0 || (p->reply_code >= 200 && p->reply_code <= 599), "reply_code %d",
			   p->reply_code);
		check_code("status", p->status);
		check_code("enhanced", p->enhanced);
		FUZZ_CHECK(!p->status[0] || p->enhanced[0], "status \"%s\" but no enhanced code", p->status);
		FUZZ_CHECK(!p->action[0] || r->is_rfc3464, "action \"%s\" without a delivery-status part", p->action);
		for (const char *a = p->action; *a; a++)
			FUZZ_CHECK(!(*a >= 'A' && *a <= 'Z'), "action \"%s\" not lower case", p->action);
	}
	for (size_t i = r->n_recipients; i < DSN_MAX_RECIPIENTS; i++)
		FUZZ_CHECK(all_zero(&r->recipients[i], sizeof r->recipients[i]), "recipient %zu beyond n_recipients set", i);
}

static void same(const char *what, const struct dsn_report *a, const struct dsn_report *b)
{
#define SAME_S(f) FUZZ_CHECK(strcmp(a->f, b->f) == 0, "%s: " #f " \"%s\" vs \"%s\"", what, a->f, b->f);
#define SAME_I(f) FUZZ_CHECK(a->f == b->f, "%s: " #f " %ld vs %ld", what, (long)a->f, (long)b->f);
	DSN_REPORT_FIELDS(SAME_S, SAME_I)
	for (size_t i = 0; i < a->n_recipients; i++) {
#define SAME_RS(f) SAME_S(recipients[i].f)
#define SAME_RI(f) SAME_I(recipients[i].f)
		DSN_RECIPIENT_FIELDS(SAME_RS, SAME_RI)
	}
#undef SAME_RS
#undef SAME_RI
#undef SAME_S
#undef SAME_I
}

/* Parses an exactly sized copy, so that reading past the end is an ASan report. */
static int parse(const char *s, size_t n, struct dsn_report *r)
{
	char *copy = calloc(1, n ? n : 1); /* calloc: gcc -O2 sees malloc(1) bytes passed on unset */
	if (n)
		memcpy(copy, s, n);
	/* garbage in the output struct must not matter */
	memset(r, 0xa5, sizeof *r);
	int rc = dsn_parse(copy, n, r);
	free(copy);
	check_report(r, rc);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dsn_report a, b;
	const char *s = (const char *)data;
	int rc = parse(s, size, &a);

	/* An mbox "From " line in front changes nothing. */
	if (size < 5 || memcmp(s, "From ", 5) != 0) {
		static const char from[] = "From MAILER-DAEMON  Tue Nov  3 06:12:05 2026\n";
		char *m = malloc(sizeof from - 1 + size);
		memcpy(m, from, sizeof from - 1);
		if (size)
			memcpy(m + sizeof from - 1, s, size);
		FUZZ_CHECK(parse(m, sizeof from - 1 + size, &b) == rc, "mbox: rc differs");
		same("mbox", &a, &b);
		free(m);
	}

	/* Nor do CRLF line ends (for inputs of bare LFs; below the text size limits). */
	if (!memchr(s, '\r', size) && size < 64 * 1024) {
		char *c = malloc(2 * size + 1);
		size_t n = 0;
		for (size_t i = 0; i < size; i++) {
			if (s[i] == '\n')
				c[n++] = '\r';
			c[n++] = s[i];
		}
		FUZZ_CHECK(parse(c, n, &b) == rc, "CRLF: rc differs");
		same("CRLF", &a, &b);
		free(c);
	}

	char *copy = malloc(size ? size : 1);
	if (size)
		memcpy(copy, s, size);
	const char *st = dsn_stage_from_text(copy, size);
	FUZZ_CHECK(st && is_stage(st), "dsn_stage_from_text: \"%s\"", st ? st : "(null)");
	free(copy);
	return 0;
}
