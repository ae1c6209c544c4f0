/* Unit tests: the probe message (RFC 5322) and probe ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"

static void test_probe_id(void **state)
{
	(void)state;
	char a[40], b[40];
	assert_int_equal(message_new_probe_id(a, sizeof a, 1764310320000), 0);
	assert_int_equal(message_new_probe_id(b, sizeof b, 1764310320000), 0);
	assert_int_equal(strlen(a), 32);
	assert_string_not_equal(a, b);
	assert_memory_equal(a, b, 8); /* same second: same time prefix, ids sort by time */
	for (size_t i = 0; i < strlen(a); i++)
		assert_non_null(strchr("0123456789abcdef", a[i]));
	assert_int_equal(message_new_probe_id(a, 10, 0), -1); /* buffer too small */
}

static void test_message(void **state)
{
	(void)state;
	char h1[] = "X-Campaign: canary", h2[] = "X-Lab-Junk: yes";
	char *extra1[] = { h1 };
	char *extra2[] = { h2 };
	struct message_params p = {
		.seed = "seed-a",
		.probe_id = "6b0a91185b70de96fc78a512f8ca7df8",
		.token = "6b0a91185b70de96fc78a512f8ca7df8",
		.from = "canary@example.com",
		.to = "seed1@seed-a.test",
		.helo = "probe.example.com",
		.date_ms = 1764310320123, /* 2025-11-28 06:12:00.123 UTC */
		.headers = extra1,
		.n_headers = 1,
		.headers2 = extra2,
		.n_headers2 = 1,
	};
	char *m = message_build(&p);
	const char *body = strstr(m, "\r\n\r\n");
	assert_non_null(body);
	/* headers the contract needs, each exactly once, in the header section */
	static const char *const want[] = {
		"Date: Fri, 28 Nov 2025 06:12:00 +0000\r\n",
		"From: mailcanary <canary@example.com>\r\n",
		"To: <seed1@seed-a.test>\r\n",
		"Subject: mailcanary probe seed-a 6b0a91185b70de96fc78a512f8ca7df8\r\n",
		"Message-ID: <6b0a91185b70de96fc78a512f8ca7df8@example.com>\r\n",
		"MIME-Version: 1.0\r\n",
		"X-Mailcanary-Token: 6b0a91185b70de96fc78a512f8ca7df8\r\n",
		"X-Campaign: canary\r\n",
		"X-Lab-Junk: yes\r\n",
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		const char *at = strstr(m, want[i]);
		if (!at || at > body || (at != m && at[-1] != '\n'))
			fail_msg("header missing or misplaced: %s", want[i]);
		assert_null(strstr(at + 1, want[i]));
	}
	/* every line ends in CRLF, none longer than 998 characters, 7-bit only */
	size_t col = 0;
	for (const char *c = m; *c; c++) {
		assert_true((unsigned char)*c < 128);
		if (*c == '\n') {
			assert_true(c > m && c[-1] == '\r');
			col = 0;
		} else {
			assert_true(++col <= 998);
		}
	}
	assert_true(strlen(m) >= 2 && strcmp(m + strlen(m) - 2, "\r\n") == 0);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_id),
		cmocka_unit_test(test_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
