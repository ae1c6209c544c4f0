/* Unit tests: SMTP reply lines and RFC 3463 enhanced status codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "reply.h"

struct reply_case {
	const char *line;
	int rc;
	int code;
	int more;
	const char *enhanced;
	const char *text;
};

static const struct reply_case cases[] = {
	{ "220 mx.example.com ESMTP Postfix\r\n", 0, 220, 0, "", "mx.example.com ESMTP Postfix" },
	{ "250-PIPELINING", 0, 250, 1, "", "PIPELINING" },
	{ "451 4.3.2 System not accepting network messages", 0, 451, 0, "4.3.2", "System not accepting network messages" },
	{ "450 4.2.0 <a@b>: Recipient address rejected: Greylisted", 0, 450, 0, "4.2.0", "<a@b>: Recipient address rejected: Greylisted" },
	{ "421-4.7.0 [192.0.2.1] Our system has detected", 0, 421, 1, "4.7.0", "[192.0.2.1] Our system has detected" },
	{ "550 5.1.1 No such user here\n", 0, 550, 0, "5.1.1", "No such user here" },
	{ "250 2.0.0 Ok: queued as 4F1", 0, 250, 0, "2.0.0", "Ok: queued as 4F1" },
	/* class mismatch: not an enhanced code for this reply */
	{ "450 5.1.1 odd server", 0, 450, 0, "", "5.1.1 odd server" },
	/* not an enhanced code: version-like text */
	{ "220 4.3 ready", 0, 220, 0, "", "4.3 ready" },
	{ "554 5.7.1234 too long detail", 0, 554, 0, "", "5.7.1234 too long detail" },
	{ "535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6", 0, 535, 0, "5.7.8", "Error: authentication failed: UGFzc3dvcmQ6" },
	{ "354", 0, 354, 0, "", "" },
	{ "354 End data with <CR><LF>.<CR><LF>", 0, 354, 0, "", "End data with <CR><LF>.<CR><LF>" },
	{ "250 4.3.2", 0, 250, 0, "", "4.3.2" },
	{ "450 4.10.100 x", 0, 450, 0, "4.10.100", "x" },
	{ "4.3.2 no code", -1, 0, 0, "", "" },
	{ "", -1, 0, 0, "", "" },
	{ "99 short", -1, 0, 0, "", "" },
	{ "600 out of range", -1, 0, 0, "", "" },
	{ "250xgarbage", -1, 0, 0, "", "" },
	{ "\x16\x03\x01 binary", -1, 0, 0, "", "" },
};

static void test_reply_lines(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct reply_case *c = &cases[i];
		struct reply_line rl;
		int rc = reply_parse_line(c->line, strlen(c->line), &rl);
		if (rc != c->rc || rl.code != c->code || (int)rl.more != c->more || strcmp(rl.enhanced, c->enhanced) ||
		    rl.text_len != strlen(c->text) || memcmp(rl.text, c->text, rl.text_len)) {
			fail_msg("line %zu \"%s\": got rc=%d code=%d more=%d enh=\"%s\" text=\"%.*s\"; want rc=%d code=%d "
				 "more=%d enh=\"%s\" text=\"%s\"",
				 i, c->line, rc, rl.code, rl.more, rl.enhanced, (int)rl.text_len, rl.text, c->rc, c->code,
				 c->more, c->enhanced, c->text);
		}
	}
}

static void test_enhanced_code(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		const char *want;
	} ec[] = {
		{ "4.2.0 greylisted", "4.2.0" }, { "5.7.1", "5.7.1" }, { "2.0.0\tok", "2.0.0" },
		{ "3.1.1 bad class", "" }, { "4..2 x", "" }, { "4.2. x", "" }, { "4.2.0x", "" },
		{ "4.2", "" }, { "4.999.999 max", "4.999.999" }, { "4.1000.1 x", "" },
	};
	for (size_t i = 0; i < sizeof ec / sizeof ec[0]; i++) {
		char buf[16] = "";
		size_t n = reply_enhanced_code(ec[i].s, strlen(ec[i].s), buf, sizeof buf);
		if (n != strlen(ec[i].want) || strcmp(n ? buf : "", ec[i].want))
			fail_msg("\"%s\": got \"%s\" (%zu), want \"%s\"", ec[i].s, n ? buf : "", n, ec[i].want);
	}
}

/* A parser of untrusted input must cope with every prefix of a line (fed byte by byte). */
static void test_reply_prefixes(void **state)
{
	(void)state;
	const char *line = "451-4.3.2 System not accepting network messages\r\n";
	for (size_t n = 0; n <= strlen(line); n++) {
		struct reply_line rl;
		int rc = reply_parse_line(line, n, &rl);
		if (n < 3)
			assert_int_equal(rc, -1);
		else
			assert_int_equal(rl.code, 451);
		assert_true(rl.text_len <= n);
	}
}

/* reply_retry_hint: a number with a time unit after a cue word (try, retry, again, wait,
 * greylisted, later, in, after) in the same sentence; seconds, capped at one day; else -1. */
static const struct {
	const char *text;
	long want;
} hints[] = {
	/* what greylisting servers say */
	{ "Greylisted, try again in 3 seconds", 3 },
	{ "<seed1@seed-a.test>: Recipient address rejected: Greylisted, try again in 3 seconds", 3 },
	{ "451 4.7.1 <seed1@seed-a.test>: Recipient address rejected: Greylisted, try again in 3 seconds", 3 },
	{ "Greylisted for 300 seconds", 300 },
	{ "Greylisted for 60s", 60 },
	{ "retry after 5 minutes", 300 },
	{ "please wait 2 min", 120 },
	{ "4.7.0 Try again in 1 hour", 3600 },
	{ "try again in 30s.", 30 },
	{ "try again in 5minutes", 300 },
	/* every unit */
	{ "wait 1 s", 1 }, { "wait 7 sec", 7 }, { "wait 7 secs", 7 }, { "wait 1 second", 1 }, { "wait 7 seconds", 7 },
	{ "wait 2 m", 120 }, { "wait 2 min", 120 }, { "wait 2 mins", 120 }, { "wait 1 minute", 60 },
	{ "wait 2 minutes", 120 }, { "wait 1 h", 3600 }, { "wait 1 hour", 3600 }, { "wait 2 hours", 7200 },
	{ "try again in 0 seconds", 0 },
	/* case does not matter */
	{ "TRY AGAIN IN 3 MINUTES", 180 },
	{ "GreyListed For 10 Secs", 10 },
	{ "Please Retry After 1 HOUR", 3600 },
	/* no hint */
	{ "try again later", -1 },
	{ "451 4.3.2 System not accepting network messages", -1 },
	{ "Greylisted, see http://postgrey.schweikert.ch/help/seed-a.test.html", -1 },
	{ "Server busy. Please try again later from [192.0.2.25]. (S77719)", -1 },
	{ "", -1 },
	{ NULL, -1 },
	/* digits that are no time: queue ids, dates, addresses, 7 digits and more */
	{ "queued as 12345678", -1 },
	{ "try again later, queued as 12345678", -1 },
	{ "2026-11-28", -1 },
	{ "Try again after 2026-11-28", -1 },
	{ "try again in 2026-11-28 10:00", -1 },
	{ "try again in 1234567 seconds", -1 },
	{ "try again in 12345678 s", -1 },
	{ "try again later from [192.0.2.25]", -1 },
	/* a number and a unit but no cue word (the doc: only after a cue) */
	{ "mailbox 5 s", -1 },
	{ "mailbox full, 5 minutes", -1 },
	/* the cue must be in the same sentence */
	{ "Try again later. Mailbox 5 s", -1 },
	/* a number glued to letters is no number; milliseconds are no unit */
	{ "try again in x5 minutes", -1 },
	{ "try again in 10 ms", -1 },
	/* "5.5 minutes": the doc knows whole numbers only; 5 (or 300) would be wrong, so no hint */
	{ "in 5.5 minutes", -1 },
	{ "try again in 1.5 hours", -1 },
	/* capped at one day */
	{ "try again in 86400 seconds", 86400 },
	{ "try again in 86401 seconds", 86400 },
	{ "try again in 25 hours", 86400 },
	{ "retry in 1441 minutes", 86400 },
	{ "try again in 999999 hours", 86400 },
	{ "try again in 123456 s", 86400 },
};

static void test_retry_hint(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++) {
		long got = reply_retry_hint(hints[i].text);
		if (got != hints[i].want)
			fail_msg("case %zu \"%s\": got %ld, want %ld", i, hints[i].text ? hints[i].text : "(NULL)", got,
				 hints[i].want);
	}
}

/* A token that starts with digits and a unit letter but goes on with more letters or digits
 * (a queue or session id) is no number with a unit. */
static void test_retry_hint_ids(void **state)
{
	(void)state;
	static const char *const texts[] = {
		"Greylisted, please try again later (ref 4m2Tq9Zb)",
		"4.7.1 Try again later, id 3h9Xk2",
		"try again in 5 s3",
	};
	int bad = 0;
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		long got = reply_retry_hint(texts[i]);
		if (got != -1) {
			print_error("case %zu \"%s\": got %ld, want -1\n", i, texts[i], got);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_lines),
		cmocka_unit_test(test_enhanced_code),
		cmocka_unit_test(test_reply_prefixes),
		cmocka_unit_test(test_retry_hint),
		cmocka_unit_test(test_retry_hint_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
