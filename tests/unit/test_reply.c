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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_lines),
		cmocka_unit_test(test_enhanced_code),
		cmocka_unit_test(test_reply_prefixes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
