/* Unit tests: header blocks read back over IMAP (fields, unfolding, limits), RFC 5322
 * date-time, the Received chain and Authentication-Results. Real-world samples live in
 * tests/unit/data/headers/ (lab-postfix-dovecot-lmtp.eml was fetched from the lab's real
 * Postfix + Dovecot LMTP + IMAP; the others are written after what Gmail, Exchange Online, Yahoo,
 * Exim, qmail, sendmail, Fastmail/Cyrus and a Postfix with milters put into headers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "headers.h"
#include "testutil.h"

#define T0 INT64_C(1795875120) /* 2026-11-28T14:12:00Z, the samples' time */
#define T(s) (T0 + (s))

/* Reads tests/unit/data/headers/NAME into an exactly sized owned buffer. */
static char *sample(const char *name, size_t *len)
{
	char *path = fmt("%s/headers/%s", MON_TESTDATA_DIR, name);
	FILE *fp = fopen(path, "rb");
	if (!fp)
		fail_msg("%s: cannot open", path);
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	char *buf = malloc(n > 0 ? (size_t)n : 1);
	assert_non_null(buf);
	if (n > 0 && fread(buf, 1, (size_t)n, fp) != (size_t)n)
		fail_msg("%s: short read", path);
	fclose(fp);
	free(path);
	*len = (size_t)n;
	return buf;
}

/* "name=unfolded value|..." for every field, for comparing with a table. */
static char *fields_str(const char *block, size_t len, size_t *skipped, bool *truncated)
{
	struct hdr_iter it;
	struct hdr_field f;
	char *out = fmt("%s", "");
	hdr_iter_init(&it, block, len);
	while (hdr_next(&it, &f)) {
		char v[512];
		hdr_unfold(f.value, f.value_len, v, sizeof v);
		char *n = fmt("%s%s%.*s=%s", out, *out ? "|" : "", (int)f.name_len, f.name, v);
		free(out);
		out = n;
	}
	*skipped = it.n_skipped;
	*truncated = it.truncated;
	return out;
}

/* ---- the header block ---- */

static void test_fields(void **state)
{
	(void)state;
	static const struct {
		const char *block;
		const char *want;
		size_t skipped;
	} cases[] = {
		{ "Subject: hi\r\nFrom: a@b\r\n\r\n", "Subject=hi|From=a@b", 0 },
		/* bare LF, a missing final line end */
		{ "Subject: hi\nFrom: a@b", "Subject=hi|From=a@b", 0 },
		{ "Subject: hi\r\nFrom: a@b\r", "Subject=hi|From=a@b", 0 },
		/* folding with tabs and spaces: CRLF removed, the white space kept */
		{ "Subject: a\r\n\tb\r\n  c\r\nX: y\r\n", "Subject=a\tb  c|X=y", 0 },
		{ "Subject: a\n\tb\nX: y\n", "Subject=a\tb|X=y", 0 },
		/* the header ends at the first empty line; the body is not looked at */
		{ "A: 1\r\n\r\nB: 2\r\n", "A=1", 0 },
		{ "A: 1\n\nB: 2\n", "A=1", 0 },
		{ "\r\nA: 1\r\n", "", 0 },
		{ "", "", 0 },
		/* obsolete white space before the colon (RFC 5322 4.5) */
		{ "Received : x\r\nSubject\t:y\r\n", "Received=x|Subject=y", 0 },
		/* empty values, a value that is only a fold */
		{ "A:\r\nB: \r\n\t\r\nC: 3\r\n", "A=|B=|C=3", 0 },
		/* not fields: a "From " line, no colon, a space in the name, 8-bit in the name,
		 * a continuation before any field (skipped with it) */
		{ "From a@b Sat Nov 28 06:12:00 2026\r\nA: 1\r\n", "A=1", 1 },
		{ "no colon here\r\n\tcontinued\r\nA: 1\r\n", "A=1", 1 },
		{ "Bad Name: x\r\nA: 1\r\n", "A=1", 1 },
		{ "Gr\xc3\xbc\xc3\x9f""e: x\r\nA: 1\r\n", "A=1", 1 },
		{ "  leading: fold\r\nA: 1\r\n", "A=1", 1 },
		{ ": no name\r\nA: 1\r\n", "A=1", 1 },
		/* 8-bit bytes and NUL in values are kept (NUL unfolds to a space) */
		{ "Subject: caf\xc3\xa9 \xe9\r\n", "Subject=caf\xc3\xa9 \xe9", 0 },
		/* a CR not followed by LF is an ordinary byte: dropped by unfolding */
		{ "A: x\ry\r\n", "A=xy", 0 },
		/* a colon in the value */
		{ "A: b: c\r\n", "A=b: c", 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t skipped;
		bool trunc;
		char *got = fields_str(cases[i].block, strlen(cases[i].block), &skipped, &trunc);
		if (strcmp(got, cases[i].want) != 0 || skipped != cases[i].skipped || trunc)
			fail_msg("case %zu: got \"%s\" skipped %zu trunc %d; want \"%s\" skipped %zu", i, got,
				 skipped, trunc, cases[i].want, cases[i].skipped);
		free(got);
	}

	/* NUL bytes: lengths, not terminators */
	static const char nul[] = "A: x\0y\r\nB\0: 2\r\nC: 3\r\n";
	size_t skipped;
	bool trunc;
	char *got = fields_str(nul, sizeof nul - 1, &skipped, &trunc);
	if (strcmp(got, "A=x y|C=3") != 0 || skipped != 1)
		fail_msg("NUL: got \"%s\" skipped %zu", got, skipped);
	free(got);

	/* NULL with length 0 is an empty block */
	struct hdr_iter it;
	struct hdr_field f;
	hdr_iter_init(&it, NULL, 0);
	assert_false(hdr_next(&it, &f));
	assert_false(it.truncated);
}

static void test_named(void **state)
{
	(void)state;
	const char *b = "Received: 1\r\nX-Received: no\r\nreceived: 2\r\nRECEIVED : 3\r\nReceivedX: no\r\n"
			"Subject: s\r\n";
	struct hdr_iter it;
	struct hdr_field f;
	char v[16];
	int n = 0;
	hdr_iter_init(&it, b, strlen(b));
	while (hdr_next_named(&it, "Received", &f)) {
		n++;
		hdr_unfold(f.value, f.value_len, v, sizeof v);
		char want[16];
		snprintf(want, sizeof want, "%d", n);
		if (strcmp(v, want) != 0)
			fail_msg("Received %d: got \"%s\"", n, v);
		assert_true(hdr_name_is(&f, "rEcEiVeD"));
	}
	assert_int_equal(n, 3);
	assert_false(hdr_next_named(&it, "Subject", &f)); /* the iterator is at the end */
	hdr_iter_init(&it, b, strlen(b));
	assert_true(hdr_next_named(&it, "subject", &f));
	assert_int_equal(it.n_fields, 6);
}

static void test_limits(void **state)
{
	(void)state;
	/* exactly HDR_MAX_FIELDS fields: all of them, not truncated; one more: truncated */
	for (int extra = 0; extra <= 1; extra++) {
		char *b = fmt("%s", "");
		for (int i = 0; i < HDR_MAX_FIELDS + extra; i++) {
			char *n = fmt("%sX-%d: %d\r\n", b, i, i);
			free(b);
			b = n;
		}
		struct hdr_iter it;
		struct hdr_field f;
		size_t n = 0;
		hdr_iter_init(&it, b, strlen(b));
		while (hdr_next(&it, &f))
			n++;
		if (n != HDR_MAX_FIELDS || it.truncated != (extra == 1))
			fail_msg("%d fields: got %zu, truncated %d", HDR_MAX_FIELDS + extra, n, it.truncated);
		free(b);
	}

	/* a block longer than HDR_MAX_BYTES: what fits is read, truncated is set */
	size_t big = HDR_MAX_BYTES + 4096;
	char *b = malloc(big);
	assert_non_null(b);
	memset(b, 'a', big);
	memcpy(b, "A: 1\r\nB: ", 9);
	struct hdr_iter it;
	struct hdr_field f;
	hdr_iter_init(&it, b, big);
	assert_true(hdr_next(&it, &f));
	assert_true(hdr_next(&it, &f));
	assert_true(hdr_name_is(&f, "B"));
	assert_int_equal(f.value_len, HDR_MAX_BYTES - 8);
	assert_false(hdr_next(&it, &f));
	assert_true(it.truncated);

	/* ... but not when the header ends before the limit and a long body follows */
	memcpy(b, "A: 1\r\n\r\n", 8);
	hdr_iter_init(&it, b, big);
	assert_true(hdr_next(&it, &f));
	assert_false(hdr_next(&it, &f));
	assert_false(it.truncated);

	/* a very long line (1 MiB - 1) is one field */
	memset(b, 'a', big);
	memcpy(b, "Long: ", 6);
	hdr_iter_init(&it, b, HDR_MAX_BYTES - 1);
	assert_true(hdr_next(&it, &f));
	assert_int_equal(f.value_len, HDR_MAX_BYTES - 6); /* after "Long:" */
	assert_false(hdr_next(&it, &f));
	assert_false(it.truncated);

	/* the chain and A-R report a cut block too */
	static const char rcvd1[] = "Received: from a by b; 1 Jan 2026 00:00:00 +0000\r\nX: ";
	memset(b, 'a', big);
	memcpy(b, rcvd1, sizeof rcvd1 - 1);
	struct hdr_chain *c = malloc(sizeof *c);
	assert_non_null(c);
	hdr_received_chain(b, big, c);
	assert_int_equal(c->n, 1);
	assert_true(c->truncated);
	free(c);
	free(b);
}

static void test_unfold(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t bufsz;
		const char *want;
		size_t ret;
	} cases[] = {
		{ " hello\r\n world ", 64, "hello world", 11 },
		{ "\r\n\t a \r\n\tb\r\n ", 64, "a \tb", 4 },
		{ "", 64, "", 0 },
		{ " \t\r\n ", 64, "", 0 },
		{ "abcdef", 4, "abc", 6 },
		{ "abcdef", 1, "", 6 },
		/* a cut never splits a UTF-8 character: "é" is 2 bytes, "€" 3 */
		{ "ab\xc3\xa9", 4, "ab", 4 },
		{ "ab\xc3\xa9", 5, "ab\xc3\xa9", 4 },
		{ "a\xe2\x82\xac", 3, "a", 4 },
		{ "a\xe2\x82\xac", 4, "a", 4 },
		{ "a\xe2\x82\xac", 5, "a\xe2\x82\xac", 4 },
		{ "\xf0\x9f\x90\xa6x", 4, "", 5 },
		/* invalid UTF-8 is copied as it is */
		{ "\xff\xfe", 8, "\xff\xfe", 2 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[64];
		memset(buf, 'Z', sizeof buf);
		size_t r = hdr_unfold(cases[i].in, strlen(cases[i].in), buf, cases[i].bufsz);
		if (r != cases[i].ret || strcmp(buf, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\" (%zu); want \"%s\" (%zu)", i, buf, r, cases[i].want,
				 cases[i].ret);
		assert_true(strlen(buf) < cases[i].bufsz);
	}
	assert_int_equal(hdr_unfold("abc", 3, NULL, 0), 3);
}

/* ---- dates ---- */

static const struct date_case {
	const char *s;
	int64_t want;
	int zone;
} dates[] = {
	{ "Sat, 28 Nov 2026 06:12:00 +0000", T(-8 * 3600), 0 },
	{ "Sat, 28 Nov 2026 14:12:00 +0000", T0, 0 },
	{ "Sat, 28 Nov 2026 06:12:03 -0800 (PST)", T(3), -480 },
	{ "28 Nov 2026 14:12:00 +0000", T0, 0 },                   /* no day name */
	{ "Sat 28 Nov 2026 14:12:00 +0000", T0, 0 },               /* no comma */
	{ "sat, 28 nov 2026 14:12:00 gmt", T0, 0 },                /* any case */
	{ "Sat, 28 Nov 2026 14:12 +0000", T0, 0 },                 /* no seconds */
	{ "Sat, 28 Nov 2026 15:42:00 +0130", T0, 90 },
	{ "Sat, 28 Nov 2026 04:42:00 -0930", T0, -570 },
	{ "Sun, 29 Nov 2026 13:12:00 +2300", T0, 1380 },
	{ "Sat, 28 Nov 2026 14:12:00 -0000", T0, 0 },
	/* named zones */
	{ "Sat, 28 Nov 2026 14:12:00 UT", T0, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 GMT", T0, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 UTC", T0, 0 },
	{ "Sat, 28 Nov 2026 09:12:00 EST", T0, -300 },
	{ "Sat, 28 Nov 2026 10:12:00 EDT", T0, -240 },
	{ "Sat, 28 Nov 2026 08:12:00 CST", T0, -360 },
	{ "Sat, 28 Nov 2026 09:12:00 CDT", T0, -300 },
	{ "Sat, 28 Nov 2026 07:12:00 MST", T0, -420 },
	{ "Sat, 28 Nov 2026 08:12:00 MDT", T0, -360 },
	{ "Sat, 28 Nov 2026 06:12:00 PST", T0, -480 },
	{ "Sat, 28 Nov 2026 07:12:00 PDT", T0, -420 },
	/* military letters and other names: unknown zones, -0000 (RFC 5322 4.3) */
	{ "Sat, 28 Nov 2026 14:12:00 Z", T0, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 z", T0, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 A", T0, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 M", T0, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 N", T0, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 Y", T0, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 CET", T0, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 AEDST", T0, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 J", -1, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 EUROPE", -1, 0 },
	/* comments and white space wherever CFWS may stand; folds too */
	{ "Sat, 28 Nov 2026 14:12:00 +0000 (UTC)", T0, 0 },
	{ "(day) Sat (x) , (y) 28 (d) Nov (m) 2026 (y) 14 (h) : (m) 12 : 00 (s) +0000 (z)", T0, 0 },
	{ "  Sat,   28   Nov   2026   14:12:00   +0000  ", T0, 0 },
	{ "Sat,\r\n 28 Nov\r\n\t2026 14:12:00\r\n +0000", T0, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 +0000 (Coordinated (Universal \\) Time))", T0, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 +0000 (unclosed", T0, 0 },
	{ "Sat,28Nov2026 14:12:00+0000", T0, 0 },
	/* one-digit day, hour, minute, second */
	{ "Sun, 1 Nov 2026 1:2:3 +0000", INT64_C(1793494923), 0 },
	/* 2- and 3-digit years (RFC 5322 4.3) */
	{ "Sat, 28 Nov 26 14:12:00 +0000", T0, 0 },
	{ "1 Jan 49 00:00:00 +0000", INT64_C(2493072000), 0 },
	{ "1 Jan 50 00:00:00 +0000", -1, 0 },             /* 1950: before 1970 */
	{ "1 Jan 70 00:00:00 +0000", 0, 0 },
	{ "1 Jan 99 00:00:00 +0000", INT64_C(915148800), 0 },
	{ "1 Jan 124 10:00:00 +0000", INT64_C(1704103200), 0 }, /* 1900 + 124 */
	{ "Mon, 1 Jan 2024 10:00:00 +0000", INT64_C(1704103200), 0 },
	/* a wrong day name is ignored; an unknown one is not */
	{ "Mon, 28 Nov 2026 14:12:00 +0000", T0, 0 },
	{ "Sam, 28 Nov 2026 14:12:00 +0000", -1, 0 },
	{ "Saturday, 28 Nov 2026 14:12:00 +0000", -1, 0 },
	/* calendar edges */
	{ "Thu, 1 Jan 1970 00:00:00 +0000", 0, 0 },
	{ "Thu, 1 Jan 1970 00:59:59 +0100", -1, 0 },
	{ "Wed, 31 Dec 1969 23:59:59 +0000", -1, 0 },
	{ "Thu, 29 Feb 2024 12:00:00 +0000", INT64_C(1709208000), 0 },
	{ "29 Feb 2000 23:59:59 -2359", INT64_C(951955139), -1439 },
	{ "Sun, 29 Feb 2026 12:00:00 +0000", -1, 0 },
	{ "29 Feb 1900 12:00:00 +0000", -1, 0 },
	{ "29 Feb 2100 12:00:00 +0000", -1, 0 },
	{ "Fri, 31 Dec 9999 23:59:59 +0000", INT64_C(253402300799), 0 },
	{ "Fri, 31 Dec 1999 23:59:60 +0000", INT64_C(946684800), 0 },       /* leap second */
	/* invalid */
	{ "Thu, 31 Apr 2026 14:12:07 +0000", -1, 0 },
	{ "Sat, 28 Nov 2026 24:00:00 +0000", -1, 0 },
	{ "Sat, 28 Nov 2026 14:60:00 +0000", -1, 0 },
	{ "Sat, 28 Nov 2026 14:12:61 +0000", -1, 0 },
	{ "Sat, 0 Nov 2026 14:12:00 +0000", -1, 0 },
	{ "Sat, 32 Dec 2026 14:12:00 +0000", -1, 0 },
	{ "Sat, 123 Nov 2026 14:12:00 +0000", -1, 0 },
	{ "Sat, 28 November 2026 14:12:00 +0000", -1, 0 },
	{ "Sat, 28 Nov 2026 14:12:00", -1, 0 },                /* no zone */
	{ "Sat, 28 Nov 2026 14:12:00 +000", -1, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 +00000", -1, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 +2400", -1, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 +0060", -1, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 0000", -1, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 +0000 garbage", -1, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 +0000;", -1, 0 },
	{ "Sat, 28 Nov 2026 14:12:00.123 +0000", -1, 0 },
	{ "Sat, 28 Nov 2026 14:12:00 GMT+0100", -1, 0 },
	{ "Sat, 28 Nov 2026 141200 +0000", -1, 0 },
	{ "Sat, 28 Nov 2026 14: +0000", -1, 0 },
	{ "Sat, 28 Nov 1 14:12:00 +0000", -1, 0 },
	{ "Sat, 28 Nov 12026 14:12:00 +0000", -1, 0 },
	{ "Sat, 28 Nov 0999 14:12:00 +0000", -1, 0 },
	{ "Sat Nov 28 14:12:00 2026", -1, 0 },                 /* asctime */
	{ "2026-11-28T14:12:00Z", -1, 0 },                     /* ISO 8601 */
	{ "", -1, 0 },
	{ "   (only a comment)", -1, 0 },
	{ "Sat,", -1, 0 },
};

static void test_dates(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
		const struct date_case *c = &dates[i];
		int zone = 12345;
		int64_t got = hdr_date_parse(c->s, strlen(c->s), &zone);
		if (got != c->want || zone != c->zone)
			fail_msg("\"%s\": got %lld zone %d; want %lld zone %d", c->s, (long long)got, zone,
				 (long long)c->want, c->zone);
		assert_int_equal(hdr_date_parse(c->s, strlen(c->s), NULL), c->want);
		/* a date that parses formats back to the same instant and zone */
		if (got >= 0) {
			char buf[40];
			int z2;
			assert_int_equal(hdr_date_format(got, zone, buf, sizeof buf), 0);
			int64_t again = hdr_date_parse(buf, strlen(buf), &z2);
			if (again != got || z2 != zone)
				fail_msg("\"%s\" → \"%s\" → %lld zone %d", c->s, buf, (long long)again, z2);
		}
	}
	/* only the given length is read */
	const char *s = "Sat, 28 Nov 2026 14:12:00 +0000 trailing";
	assert_int_equal(hdr_date_parse(s, 31, NULL), T0);
	assert_int_equal(hdr_date_parse(s, 30, NULL), -1);
	assert_int_equal(hdr_date_parse(NULL, 0, NULL), -1);
}

static void test_date_format(void **state)
{
	(void)state;
	static const struct {
		int64_t t;
		int zone;
		const char *want;
	} cases[] = {
		{ T0, 0, "Sat, 28 Nov 2026 14:12:00 +0000" },
		{ T0, -480, "Sat, 28 Nov 2026 06:12:00 -0800" },
		{ T0, 570, "Sat, 28 Nov 2026 23:42:00 +0930" },
		{ T0, 600, "Sun, 29 Nov 2026 00:12:00 +1000" },
		{ 0, 0, "Thu, 1 Jan 1970 00:00:00 +0000" },
		{ 0, -60, "Wed, 31 Dec 1969 23:00:00 -0100" },
		{ INT64_C(951782400), 0, "Tue, 29 Feb 2000 00:00:00 +0000" },
		{ INT64_C(253402300799), 0, "Fri, 31 Dec 9999 23:59:59 +0000" },
		{ INT64_C(253402300799), -1439, "Fri, 31 Dec 9999 00:00:59 -2359" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[40];
		if (hdr_date_format(cases[i].t, cases[i].zone, buf, sizeof buf) != 0 ||
		    strcmp(buf, cases[i].want) != 0)
			fail_msg("%lld zone %d: got \"%s\"; want \"%s\"", (long long)cases[i].t, cases[i].zone,
				 buf, cases[i].want);
	}
	char buf[40] = "x";
	assert_int_equal(hdr_date_format(-1, 0, buf, sizeof buf), -1);
	assert_string_equal(buf, "");
	assert_int_equal(hdr_date_format(T0, 24 * 60, buf, sizeof buf), -1);
	assert_int_equal(hdr_date_format(T0, -24 * 60, buf, sizeof buf), -1);
	assert_int_equal(hdr_date_format(INT64_C(253402300800), 0, buf, sizeof buf), -1); /* year 10000 */
	assert_int_equal(hdr_date_format(T0, 0, buf, 31), -1);
	assert_int_equal(hdr_date_format(T0, 0, buf, 32), 0);
}

/* The civil-date arithmetic against the C library's (gmtime_r and timegm do not depend on TZ):
 * every day from 1970 to 2200, and a spread of instants up to 9999. */
static void test_date_against_libc(void **state)
{
	(void)state;
	static const char *mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	uint64_t x = 88172645463325252u;
	for (int64_t t = 0; t < INT64_C(7258118400); t += 86400 + 3671) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int zone = (int)(x % 2879) - 1439;
		char buf[40], want[64];
		time_t tt = (time_t)(t + zone * 60);
		struct tm tm;
		if (!gmtime_r(&tt, &tm))
			fail_msg("gmtime_r(%lld)", (long long)tt);
		static const char *wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
		snprintf(want, sizeof want, "%s, %d %s %04d %02d:%02d:%02d %c%02d%02d", wd[tm.tm_wday],
			 tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 zone < 0 ? '-' : '+', abs(zone) / 60, abs(zone) % 60);
		if (hdr_date_format(t, zone, buf, sizeof buf) != 0 || strcmp(buf, want) != 0)
			fail_msg("%lld zone %d: got \"%s\"; want \"%s\"", (long long)t, zone, buf, want);
		int z2;
		if (hdr_date_parse(buf, strlen(buf), &z2) != t || z2 != zone)
			fail_msg("\"%s\" does not parse back to %lld", buf, (long long)t);
		if (timegm(&tm) != tt)
			fail_msg("timegm disagrees at %lld", (long long)tt);
	}
	for (int64_t y = 1970; y <= 9999; y += 7) {
		for (int m = 1; m <= 12; m++) {
			struct tm tm = { .tm_year = (int)(y - 1900), .tm_mon = m - 1, .tm_mday = 28,
					 .tm_hour = 23, .tm_min = 59, .tm_sec = 58 };
			char *s = fmt("28 %s %lld 23:59:58 +0000", mon[m - 1], (long long)y);
			int64_t got = hdr_date_parse(s, strlen(s), NULL);
			if (got != (int64_t)timegm(&tm))
				fail_msg("\"%s\": got %lld; want %lld", s, (long long)got, (long long)timegm(&tm));
			free(s);
		}
	}
}

/* ---- Received ---- */

static const struct rcvd_case {
	const char *value;
	const char *from, *from_comment, *by, *via, *with, *id, *for_, *other, *ip;
	int64_t at;
} rcvd[] = {
	/* Postfix */
	{ " from probe.lab.test (localhost [127.0.0.1])\r\n\tby mx.lab.test (Postfix) with ESMTP id 81F6BA76E6A\r\n"
	  "\tfor <seed1@seed-a.test>; Sat, 28 Nov 2026 14:12:00 +0000 (UTC)",
	  "probe.lab.test", "(localhost [127.0.0.1])", "mx.lab.test", "", "ESMTP", "81F6BA76E6A",
	  "<seed1@seed-a.test>", "", "127.0.0.1", T0 },
	{ " from unknown (unknown [IPv6:2001:db8::25]) by mx.example.com (Postfix) with ESMTPS id 4AbC;"
	  " Sat, 28 Nov 2026 14:12:00 +0000",
	  "unknown", "(unknown [IPv6:2001:db8::25])", "mx.example.com", "", "ESMTPS", "4AbC", "", "",
	  "2001:db8::25", T0 },
	/* Dovecot LMTP */
	{ " from mx.lab.test\r\n\tby mx.lab.test with LMTP\r\n\tid oKFjI3SuCmuRBwAAg+zDdQ\r\n"
	  "\t(envelope-from <canary@lab.test>)\r\n\tfor <seed1@seed-a.test>; Sat, 28 Nov 2026 14:12:00 +0000",
	  "mx.lab.test", "", "mx.lab.test", "", "LMTP", "oKFjI3SuCmuRBwAAg+zDdQ", "<seed1@seed-a.test>", "",
	  "", T0 },
	/* Gmail */
	{ " by 2002:a05:7010:8d0b:b0:3c8:1b2e:4f1a with SMTP id f11csp1873461mdo;\r\n"
	  "        Sat, 28 Nov 2026 06:12:00 -0800 (PST)",
	  "", "", "2002:a05:7010:8d0b:b0:3c8:1b2e:4f1a", "", "SMTP", "f11csp1873461mdo", "", "", "", T0 },
	/* Exchange Online */
	{ " from mail.example.com (192.0.2.1) by DB5EUR03FT012.mail.protection.outlook.com (10.152.20.161)"
	  " with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id"
	  " 15.20.7409.39 via Frontend Transport; Sat, 28 Nov 2026 14:12:00 +0000",
	  "mail.example.com", "(192.0.2.1)", "DB5EUR03FT012.mail.protection.outlook.com", "Frontend Transport",
	  "Microsoft SMTP Server", "15.20.7409.39", "", "", "192.0.2.1", T0 },
	/* qmail */
	{ " (qmail 1234 invoked by uid 89); 28 Nov 2026 14:12:00 -0000", "", "", "", "", "", "", "",
	  "(qmail 1234 invoked by uid 89)", "", T0 },
	{ " from unknown (HELO mail.example.com) (canary@192.0.2.7) by mx.example.com with ESMTPA;"
	  " 28 Nov 2026 14:12:00 -0000",
	  "unknown", "(HELO mail.example.com) (canary@192.0.2.7)", "mx.example.com", "", "ESMTPA", "", "", "",
	  "192.0.2.7", T0 },
	/* Exim without reverse DNS */
	{ " from [198.51.100.9] (helo=unknown.example)\r\n\tby mx.example.com with esmtp (Exim 4.96)\r\n"
	  "\t(envelope-from <a@b.example>)\r\n\tid 1tGq8z-00A1bC-2K\r\n\tfor x@y.example;"
	  " Sat, 28 Nov 2026 14:12:00 +0000",
	  "[198.51.100.9]", "(helo=unknown.example)", "mx.example.com", "", "esmtp", "1tGq8z-00A1bC-2K",
	  "x@y.example", "", "198.51.100.9", T0 },
	/* sendmail, local submission */
	{ " (from user@localhost)\r\n\tby host.example.com (8.17.1/8.17.1/Submit) id 5ASEC3Aa001234;\r\n"
	  "\tSat, 28 Nov 2026 15:12:00 +0100",
	  "", "", "host.example.com", "", "", "5ASEC3Aa001234", "", "(from user@localhost)", "", T0 },
	/* no date, no ';' */
	{ " from a.example by b.example with SMTP id X1", "a.example", "", "b.example", "", "SMTP", "X1", "", "",
	  "", -1 },
	/* an invalid date: the clauses are kept */
	{ " from a.example by b.example; Thu, 31 Apr 2026 00:00:00 +0000", "a.example", "", "b.example", "",
	  "", "", "", "", "", -1 },
	/* ';' inside a comment is not the date separator */
	{ " from a.example (x; y [192.0.2.3]) by b.example; Sat, 28 Nov 2026 14:12:00 +0000", "a.example",
	  "(x; y [192.0.2.3])", "b.example", "", "", "", "", "", "192.0.2.3", T0 },
	/* an unclosed comment: the date is still found by the last ';' */
	{ " from a.example (oops by b.example; Sat, 28 Nov 2026 14:12:00 +0000", "a.example",
	  "(oops by b.example", "", "", "", "", "", "", "", T0 },
	/* clause words in any case; a repeated one goes to other */
	{ " FROM a.example BY b.example WITH smtp BY c.example; Sat, 28 Nov 2026 14:12:00 +0000", "a.example",
	  "", "b.example", "", "smtp", "", "", "BY c.example", "", T0 },
	/* the address literal is the first valid one; a bad one is skipped */
	{ " from x ([999.1.1.1] [192.0.2.4]) by y; Sat, 28 Nov 2026 14:12:00 +0000", "x",
	  "([999.1.1.1] [192.0.2.4])", "y", "", "", "", "", "", "192.0.2.4", T0 },
	{ " from [IPv6:2001:db8::1] by y; Sat, 28 Nov 2026 14:12:00 +0000", "[IPv6:2001:db8::1]", "", "y", "",
	  "", "", "", "", "2001:db8::1", T0 },
	{ " from 192.0.2.300 by y", "192.0.2.300", "", "y", "", "", "", "", "", "", -1 },
	/* empty and odd values never fail */
	{ "", "", "", "", "", "", "", "", "", "", -1 },
	{ ";", "", "", "", "", "", "", "", "", "", -1 },
	{ " from", "", "", "", "", "", "", "", "", "", -1 },
	{ " garbage \x01\x7f words; also junk", "", "", "", "", "", "", "", "garbage ?? words", "", -1 },
};

static void test_received(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof rcvd / sizeof rcvd[0]; i++) {
		const struct rcvd_case *c = &rcvd[i];
		struct hdr_received r;
		hdr_received_parse(c->value, strlen(c->value), &r);
		const char *got[] = { r.value[HDR_FROM], r.comment[HDR_FROM], r.value[HDR_BY], r.value[HDR_VIA],
				      r.value[HDR_WITH], r.value[HDR_ID], r.value[HDR_FOR], r.other, r.ip };
		const char *want[] = { c->from, c->from_comment, c->by, c->via, c->with, c->id, c->for_, c->other,
				       c->ip };
		static const char *what[] = { "from", "from comment", "by", "via", "with", "id", "for", "other", "ip" };
		for (size_t k = 0; k < sizeof got / sizeof got[0]; k++)
			if (strcmp(got[k], want[k]) != 0)
				fail_msg("case %zu: %s: got \"%s\"; want \"%s\"", i, what[k], got[k], want[k]);
		if (r.at != c->at)
			fail_msg("case %zu: at: got %lld; want %lld (date \"%s\")", i, (long long)r.at,
				 (long long)c->at, r.date);
	}

	/* values longer than their buffers are cut, at a character boundary */
	char *longv = fmt(" from %0300d.example by b (%0400d\xc3\xa9)", 7, 9);
	struct hdr_received r;
	hdr_received_parse(longv, strlen(longv), &r);
	assert_int_equal(strlen(r.value[HDR_FROM]), sizeof r.value[HDR_FROM] - 1);
	assert_int_equal(strlen(r.comment[HDR_BY]), sizeof r.comment[HDR_BY] - 1);
	free(longv);
	longv = fmt(" from a by b (%0253d\xc3\xa9)", 1); /* "(" + 253 + "é": 256 bytes, one too many */
	hdr_received_parse(longv, strlen(longv), &r);
	assert_int_equal(strlen(r.comment[HDR_BY]), 254);
	free(longv);
	hdr_received_parse(NULL, 0, &r);
	assert_int_equal(r.at, -1);
	assert_string_equal(r.value[HDR_FROM], "");
}

/* ---- samples: the chain and the verdicts ---- */

struct want_hop {
	const char *from, *by, *with, *id, *ip;
	int64_t at;
	double delay;
};

struct want_auth {
	const char *filter; /* NULL: none */
	const char *authserv_id, *spf, *dkim, *dmarc, *arc;
	size_t n_fields, n_trusted, n;
};

#define MAXH 10
static const struct sample_case {
	const char *file;
	size_t n_hops;
	struct want_hop hop[MAXH]; /* oldest first */
	struct want_auth auth[3];
} samples[] = {
	{ "lab-postfix-dovecot-lmtp.eml", 2,
	  { { "probe.lab.test", "mx.lab.test", "ESMTP", "81F6BA76E6A", "127.0.0.1", INT64_C(1795862132), 0 },
	    { "mx.lab.test", "mx.lab.test", "LMTP", "oKFjI3SuCmuRBwAAg+zDdQ", "", INT64_C(1795862132), 0 } },
	  { { NULL, "", "", "", "", "", 0, 0, 0 } } },
	{ "gmail.eml", 3,
	  { { "localhost", "probe.example.com", "ESMTP", "4Zk9Qx1Hn2z9sTm", "127.0.0.1", T(0), 0 },
	    { "probe.example.com", "mx.google.com", "ESMTPS",
	      "a640c23a62f3a-a8d2a5c9c11si1442866b.512.2026.11.28.06.12.02", "192.0.2.25", T(2), 2 },
	    { "", "2002:a05:7010:8d0b:b0:3c8:1b2e:4f1a", "SMTP", "f11csp1873461mdo", "", T(3), 1 } },
	  { { NULL, "mx.google.com", "pass", "pass", "pass", "", 1, 1, 3 },
	    { "MX.Google.COM", "MX.Google.COM", "pass", "pass", "pass", "", 1, 1, 3 },
	    { "mx.example.org", "mx.example.org", "", "", "", "", 1, 0, 3 } } },
	{ "outlook.eml", 5,
	  { { "localhost", "probe.example.com", "ESMTP", "4Zk9Qx1Hn2z9sTm", "127.0.0.1", T(1), 0 },
	    { "probe.example.com", "DB1PEPF000509E8.mail.protection.outlook.com", "Microsoft SMTP Server",
	      "15.20.8207.18", "192.0.2.25", T(3), 2 },
	    { "DB1PEPF000509E8.eurprd03.prod.outlook.com", "DU7P250CA0012.outlook.office365.com",
	      "Microsoft SMTP Server", "15.20.8207.18", "2603:10a6:10:54f:cafe::9a", T(4), 1 },
	    { "DU7P250CA0012.EURP250.PROD.OUTLOOK.COM", "DU0PR07MB9185.eurprd07.prod.outlook.com",
	      "Microsoft SMTP Server", "15.20.8207.18", "2603:10a6:10:54f::20", T(4), 0 },
	    { "DU0PR07MB9185.eurprd07.prod.outlook.com", "AS8PR07MB7926.eurprd07.prod.outlook.com", "HTTPS", "",
	      "2603:10a6:10:3a5::9", T(5), 1 } },
	  /* Exchange Online's A-R has no authserv-id: trusted with "" (or no filter) */
	  { { NULL, "", "pass", "pass", "pass", "", 1, 1, 4 },
	    { "", "", "pass", "pass", "pass", "", 1, 1, 4 },
	    { "protection.outlook.com", "protection.outlook.com", "", "", "", "", 1, 0, 4 } } },
	{ "yahoo.eml", 3,
	  { { "localhost", "probe.example.com", "ESMTP", "4Zk9Qx1Hn2z9sTm", "127.0.0.1", T(2), 0 },
	    { "192.0.2.25", "10.217.151.75", "SMTPs", "", "192.0.2.25", T(5), 3 },
	    { "10.217.151.75", "atlas322.free.mail.ne1.yahoo.com", "HTTP", "", "10.217.151.75", T(6), 1 } },
	  { { NULL, "atlas322.free.mail.ne1.yahoo.com", "pass", "pass", "pass", "", 1, 1, 3 } } },
	{ "exim.eml", 3,
	  { { "localhost", "probe.example.com", "ESMTP", "4Zk9Qx1Hn2z9sTm", "127.0.0.1", T(2), 0 },
	    { "[192.0.2.25]", "mx1.seed-e.test", "esmtps", "1tGq8y-009zXa-0b", "192.0.2.25", T(4), 2 },
	    { "mx1.seed-e.test", "imap.seed-e.test", "esmtps", "1tGq8z-00A1bC-2K", "198.51.100.7", T(5), 1 } },
	  { { NULL, "mx1.seed-e.test", "pass", "pass", "pass", "none", 1, 1, 5 } } },
	{ "qmail.eml", 3,
	  { { "localhost", "probe.example.com", "ESMTP", "4Zk9Qx1Hn2z9sTm", "127.0.0.1", T(3), 0 },
	    { "unknown", "mail.seed-q.test", "ESMTPS", "", "192.0.2.25", T(5), 2 },
	    { "", "", "", "", "", T(6), 1 } },
	  { { NULL, "", "", "", "", "", 0, 0, 0 } } },
	{ "sendmail.eml", 3,
	  { { "", "probe.example.com", "", "5ASEC3Aa001234", "", T(3), 0 },
	    { "probe.example.com", "mx.seed-s.test", "ESMTPS", "5ASEC5t9012340", "192.0.2.25", T(5), 2 },
	    { "mx.seed-s.test", "mx.seed-s.test", "ESMTP", "5ASEC6u5012345", "127.0.0.1", T(6), 1 } },
	  { { NULL, "", "", "", "", "", 0, 0, 0 } } },
	{ "fastmail.eml", 6,
	  { { "localhost", "probe.example.com", "ESMTP", "4Zk9Qx1Hn2z9sTm", "127.0.0.1", T(4), 0 },
	    { "probe.example.com", "mx3.messagingengine.com", "ESMTPS", "", "192.0.2.25", T(5), 1 },
	    { "mx3.messagingengine.com", "mx3.messagingengine.com", "ESMTP", "8A1F37B4E1B", "127.0.0.1", T(6), 1 },
	    { "mx3.messagingengine.com", "mailmx.nyi.internal", "ESMTP", "9C3B52A0066", "127.0.0.1", T(6), 0 },
	    { "mx3", "compute3.internal", "", "", "10.202.2.202", T(7), 1 },
	    { "compute3.internal", "sloti53n2", "LMTPA", "", "10.202.2.43", T(7), 0 } },
	  /* two dkim results, fail first: "pass" since one passes; ARC-Authentication-Results is
	   * another field and not read */
	  { { NULL, "mx3.messagingengine.com", "pass", "pass", "pass", "", 1, 1, 11 } } },
	{ "postfix-milters-forged.eml", 4,
	  { { "localhost", "probe.example.com", "ESMTP", "4Zk9Qx1Hn2z9sTm", "127.0.0.1", T(2), 0 },
	    { "probe.example.com", "relay.forwarder.test", "ESMTPS", "4Zk9R14TqLz1xyZ", "192.0.2.25", T(4), 2 },
	    { "relay.forwarder.test", "mail.seed-p.test", "ESMTPS", "4Zk9R21xYmz3wQd", "203.0.113.9", T(5), 1 },
	    { "mail.seed-p.test", "mail.seed-p.test", "LMTP", "8Kq2Hc3uCmtYBwAAl5fCdA", "", T(6), 1 } },
	  /* The trusted MTA's three milter fields (dmarc, dkim, spf) all count; the forged
	   * all-pass field below them loses for every method they report. It still supplies arc,
	   * which the trusted MTA did not report: the residual risk documented in headers.h (an MTA
	   * following RFC 8601 section 5 would have removed it). The forwarder's field counts only
	   * when it is the one trusted. */
	  { { NULL, "mail.seed-p.test", "softfail", "fail", "fail", "pass", 5, 4, 10 },
	    { "mail.seed-p.test", "mail.seed-p.test", "softfail", "fail", "fail", "pass", 5, 4, 10 },
	    { "relay.forwarder.test", "relay.forwarder.test", "pass", "pass", "pass", "", 5, 1, 10 } } },
	{ "odd-dates.eml", 9,
	  { { "[192.0.2.99]", "h.example", "SMTP", "G8", "192.0.2.99", T(10), 0 },
	    { "h.example", "g.example", "SMTP", "F7", "", -1, 0 },             /* no date */
	    { "g.example", "f.example", "SMTP", "E6", "", T(0), -10 },         /* PST, no seconds; skew */
	    { "f.example", "e.example", "SMTP", "D5", "", T(5), 5 },           /* EST, spaces */
	    { "e.example", "d.example", "SMTP", "", "", -1, 0 },               /* hour 24 */
	    { "d.example", "c.example", "SMTP", "C3", "", -1, 0 },             /* 31 April */
	    { "c.example", "a.example", "SMTP", "B2", "", T(8), 3 },           /* comments */
	    { "a.example", "b.example", "ESMTP", "A1", "192.0.2.1", T(9), 1 }, /* 2-digit year, Z */
	    { "b.example", "top.example", "ESMTP", "H9", "192.0.2.2", T(11), 2 } }, /* military A */
	  { { NULL, "", "", "", "", "", 0, 0, 0 } } },
	{ "lf-obsolete.eml", 2,
	  { { "localhost", "probe.example.com", "ESMTP", "4Zk9R1", "::1", T(3), 0 },
	    { "probe.example.com", "mx.seed-l.test", "ESMTP", "4Zk9R2", "192.0.2.25", T(4), 1 } },
	  { { NULL, "mx.seed-l.test", "pass", "", "", "", 1, 1, 1 } } },
};

static void check_hop(const char *file, size_t i, const struct hdr_hop *h, const struct want_hop *w)
{
	const char *got[] = { h->from, h->by, h->with, h->id, h->ip };
	const char *want[] = { w->from, w->by, w->with, w->id, w->ip };
	static const char *what[] = { "from", "by", "with", "id", "ip" };
	for (size_t k = 0; k < 5; k++)
		if (strcmp(got[k], want[k]) != 0)
			fail_msg("%s hop %zu: %s: got \"%s\"; want \"%s\"", file, i, what[k], got[k], want[k]);
	if (h->at != w->at || h->delay_s != w->delay)
		fail_msg("%s hop %zu: got at %lld delay %g; want at %lld delay %g", file, i, (long long)h->at,
			 h->delay_s, (long long)w->at, w->delay);
}

static void test_samples(void **state)
{
	(void)state;
	struct hdr_chain *c = malloc(sizeof *c);
	struct hdr_auth *a = malloc(sizeof *a);
	assert_non_null(c);
	assert_non_null(a);
	for (size_t s = 0; s < sizeof samples / sizeof samples[0]; s++) {
		const struct sample_case *sc = &samples[s];
		size_t len;
		char *b = sample(sc->file, &len);

		hdr_received_chain(b, len, c);
		if (c->n != sc->n_hops || c->n_received != sc->n_hops || c->truncated)
			fail_msg("%s: got %zu hops of %zu (truncated %d); want %zu", sc->file, c->n, c->n_received,
				 c->truncated, sc->n_hops);
		for (size_t i = 0; i < c->n; i++)
			check_hop(sc->file, i, &c->hop[i], &sc->hop[i]);

		for (size_t k = 0; k < 3 && sc->auth[k].authserv_id; k++) {
			const struct want_auth *w = &sc->auth[k];
			hdr_auth_parse(b, len, w->filter, a);
			if (strcmp(a->authserv_id, w->authserv_id) || strcmp(a->spf, w->spf) ||
			    strcmp(a->dkim, w->dkim) || strcmp(a->dmarc, w->dmarc) || strcmp(a->arc, w->arc) ||
			    a->n_fields != w->n_fields || a->n_trusted != w->n_trusted || a->n != w->n || a->truncated)
				fail_msg("%s filter %s: got id \"%s\" spf \"%s\" dkim \"%s\" dmarc \"%s\" arc \"%s\" "
					 "fields %zu trusted %zu n %zu; want \"%s\" \"%s\" \"%s\" \"%s\" \"%s\" %zu %zu %zu",
					 sc->file, w->filter ? w->filter : "(none)", a->authserv_id, a->spf, a->dkim,
					 a->dmarc, a->arc, a->n_fields, a->n_trusted, a->n, w->authserv_id, w->spf,
					 w->dkim, w->dmarc, w->arc, w->n_fields, w->n_trusted, w->n);
		}
		free(b);
	}
	free(c);
	free(a);
}

/* The detail entries of two samples, in full. */
static void test_auth_entries(void **state)
{
	(void)state;
	static const struct {
		const char *file, *filter;
		const char *want; /* "field counted id method=result [props] {comment}" lines */
	} cases[] = {
		{ "fastmail.eml", NULL,
		  "0 * mx3.messagingengine.com dkim=fail [reason=\"signature verification failed; body hash mismatch\" "
		  "header.d=lists.example.net header.i=@lists.example.net header.b=\"Xy9+/abc\"] "
		  "{(1024-bit key; unprotected)}\n"
		  "0 * mx3.messagingengine.com dkim=pass [header.d=example.com header.i=@example.com "
		  "header.b=\"T2p0YxQk\" header.a=rsa-sha256 header.s=mc2026 x-bits=1024] {(1024-bit key; unprotected)}\n"
		  "0 * mx3.messagingengine.com dmarc=pass [policy.published-domain-policy=reject "
		  "policy.applied-disposition=none policy.evaluated-disposition=none policy.policy-from=p "
		  "header.from=example.com] {(p=reject,d=none,d.eval=none)}\n"
		  "0 - mx3.messagingengine.com iprev=pass [smtp.remote-ip=192.0.2.25] {(probe.example.com)}\n"
		  "0 * mx3.messagingengine.com spf=pass [smtp.mailfrom=canary@example.com "
		  "smtp.helo=probe.example.com] {}\n"
		  "0 - mx3.messagingengine.com x-aligned-from=pass [] {(Address match)}\n"
		  "0 - mx3.messagingengine.com x-me-sender=none [] {}\n"
		  "0 - mx3.messagingengine.com x-ptr=pass [smtp.helo=probe.example.com policy.ptr=probe.example.com] {}\n"
		  "0 - mx3.messagingengine.com x-return-mx=pass [header.domain=example.com policy.is_org=yes] "
		  "{(MX Records found: mx.example.com)}\n"
		  "0 - mx3.messagingengine.com x-tls=pass [smtp.version=TLSv1.3 smtp.cipher=TLS_AES_256_GCM_SHA384 "
		  "smtp.bits=256/256] {}\n"
		  "0 - mx3.messagingengine.com x-vs=clean [score=0 state=0] {}\n" },
		{ "postfix-milters-forged.eml", NULL,
		  "0 * mail.seed-p.test dmarc=fail [header.from=example.com] {(p=none dis=none)}\n"
		  "1 * mail.seed-p.test dkim=fail [reason=\"signature verification failed\" header.d=example.com "
		  "header.i=@example.com header.a=rsa-sha256 header.s=mc2026 header.b=AbCdEf12] "
		  "{(2048-bit key; unprotected)}\n"
		  "2 * mail.seed-p.test spf=softfail [smtp.mailfrom=example.com] {(domain owner discourages use of "
		  "this host) (client-ip=203.0.113.9; helo=relay.forwarder.test; envelope-from=canary@example.com}\n"
		  "3 - mail.seed-p.test spf=pass [smtp.mailfrom=example.com] {}\n"
		  "3 - mail.seed-p.test dkim=pass [header.d=example.com] {}\n"
		  "3 - mail.seed-p.test dmarc=pass [header.from=example.com] {}\n"
		  "3 * mail.seed-p.test arc=pass [] {}\n"
		  "4 - relay.forwarder.test spf=pass [smtp.mailfrom=example.com] {}\n"
		  "4 - relay.forwarder.test dkim=pass [header.d=example.com header.s=mc2026] {}\n"
		  "4 - relay.forwarder.test dmarc=pass [header.from=example.com] {}\n" },
	};
	struct hdr_auth *a = malloc(sizeof *a);
	assert_non_null(a);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len;
		char *b = sample(cases[i].file, &len);
		hdr_auth_parse(b, len, cases[i].filter, a);
		char *got = fmt("%s", "");
		for (size_t k = 0; k < a->n; k++) {
			const struct hdr_authres *e = &a->entry[k];
			char *n = fmt("%s%u %s %s %s=%s [%s] {%s}\n", got, e->field, e->counted ? "*" : "-",
				      e->authserv_id, e->method, e->result, e->props, e->comment);
			free(got);
			got = n;
		}
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s:\ngot:\n%s\nwant:\n%s", cases[i].file, got, cases[i].want);
		free(got);
		free(b);
	}
	free(a);
}

/* ---- Authentication-Results syntax ---- */

static const struct ar_case {
	const char *block;
	const char *filter;
	const char *want; /* "id|spf|dkim|dmarc|arc|n_fields|n_trusted|entries" */
} ars[] = {
	{ "Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=a.example\r\n", NULL,
	  "mx.example.com|pass||||1|1|spf=pass" },
	/* version, quoted authserv-id, comments everywhere, case */
	{ "Authentication-Results: mx.example.com 1; SPF=PASS smtp.mailfrom=a.example\r\n", NULL,
	  "mx.example.com|pass||||1|1|spf=pass" },
	{ "Authentication-Results: \"mx.example.com\"; dkim=pass\r\n", "mx.example.com",
	  "mx.example.com||pass|||1|1|dkim=pass" },
	{ "Authentication-Results: (c) mx.example.com (c; d) 1 (e); (f) spf (g) = (h) pass (i) smtp (j) . (k)"
	  " mailfrom (l) = (m) a.example (n); dkim=fail\r\n", NULL,
	  "mx.example.com|pass|fail|||1|1|spf=pass,dkim=fail" },
	/* nested comments with quoted pairs */
	{ "Authentication-Results: mx.example.com; dkim=pass (good (really \\) ; no) sig) header.d=a.example;"
	  " dmarc=fail\r\n", NULL,
	  "mx.example.com||pass|fail||1|1|dkim=pass,dmarc=fail" },
	/* quoted strings with ';' and '(' */
	{ "Authentication-Results: mx.example.com; dkim=neutral reason=\"bad; (odd\" header.d=a.example;"
	  " spf=none\r\n", NULL,
	  "mx.example.com|none|neutral|||1|1|dkim=neutral,spf=none" },
	/* method versions */
	{ "Authentication-Results: mx.example.com; dkim/1=pass; spf / 2 = fail\r\n", NULL,
	  "mx.example.com|fail|pass|||1|1|dkim=pass,spf=fail" },
	/* "none" fields give nothing */
	{ "Authentication-Results: mx.example.com; none\r\n", NULL, "mx.example.com|||||1|1|" },
	{ "Authentication-Results: mx.example.com 1; none (no signatures)\r\n", NULL, "mx.example.com|||||1|1|" },
	{ "Authentication-Results: mx.example.com\r\n", NULL, "mx.example.com|||||1|1|" },
	/* malformed resinfo: skipped up to the next ';' */
	{ "Authentication-Results: mx.example.com; =pass; spf pass; dkim=; dmarc=pass; @@@; arc=fail\r\n", NULL,
	  "mx.example.com|||pass|fail|1|1|dmarc=pass,arc=fail" },
	/* several dkim results: pass if any passes, else the first */
	{ "Authentication-Results: mx.example.com; dkim=fail; dkim=neutral; dkim=pass; dkim=temperror\r\n", NULL,
	  "mx.example.com||pass|||1|1|dkim=fail,dkim=neutral,dkim=pass,dkim=temperror" },
	{ "Authentication-Results: mx.example.com; dkim=policy; dkim=fail\r\n", NULL,
	  "mx.example.com||policy|||1|1|dkim=policy,dkim=fail" },
	/* several spf results: the first */
	{ "Authentication-Results: mx.example.com; spf=permerror; spf=pass\r\n", NULL,
	  "mx.example.com|permerror||||1|1|spf=permerror,spf=pass" },
	/* no filter: the topmost field's ID; others ignored */
	{ "Authentication-Results: top.example; spf=fail\r\n"
	  "Authentication-Results: other.example; spf=pass; dkim=pass\r\n", NULL,
	  "top.example|fail||||2|1|spf=fail,spf=pass,dkim=pass" },
	/* filter: only fields with that ID count, topmost first per method */
	{ "Authentication-Results: other.example; spf=pass; dkim=pass\r\n"
	  "Authentication-Results: mx.example.com; dkim=fail\r\n"
	  "Received: from x by mx.example.com; Sat, 28 Nov 2026 14:12:00 +0000\r\n"
	  "Authentication-Results: MX.EXAMPLE.COM; spf=pass; dkim=pass; dmarc=pass\r\n", "mx.example.com",
	  "mx.example.com|pass|fail|pass||3|2|spf=pass,dkim=pass,dkim=fail,spf=pass,dkim=pass,dmarc=pass" },
	{ "Authentication-Results: other.example; spf=pass\r\n", "mx.example.com",
	  "mx.example.com|||||1|0|spf=pass" },
	/* Exchange Online style: no authserv-id */
	{ "Authentication-Results: spf=pass (sender IP is 192.0.2.25) smtp.mailfrom=example.com; dkim=none"
	  " (message not signed) header.d=none;dmarc=bestguesspass action=none header.from=example.com;\r\n",
	  NULL, "|pass|none|bestguesspass||1|1|spf=pass,dkim=none,dmarc=bestguesspass" },
	{ "Authentication-Results: spf=softfail smtp.mailfrom=example.com\r\n", "",
	  "|softfail||||1|1|spf=softfail" },
	{ "Authentication-Results: spf=softfail smtp.mailfrom=example.com\r\n", "mx.example.com",
	  "mx.example.com|||||1|0|spf=softfail" },
	/* folded over lines, bare LF */
	{ "Authentication-Results: mx.example.com;\n\tspf=pass\n\t smtp.mailfrom=a.example;\n  dkim=pass\n", NULL,
	  "mx.example.com|pass|pass|||1|1|spf=pass,dkim=pass" },
	/* results are lowercased, unknown ones kept */
	{ "Authentication-Results: mx.example.com; DMARC=Quarantine; arc=PASS\r\n", NULL,
	  "mx.example.com|||quarantine|pass|1|1|dmarc=quarantine,arc=pass" },
	/* Yahoo: a comment right after the result, a trailing ';' */
	{ "Authentication-Results: mx.example.com; dmarc=pass(p=REJECT) header.from=a.example;\r\n", NULL,
	  "mx.example.com|||pass||1|1|dmarc=pass" },
	/* ARC-Authentication-Results is not Authentication-Results */
	{ "ARC-Authentication-Results: i=1; mx.example.com; spf=pass\r\n", NULL, "|||||0|0|" },
	/* garbage */
	{ "Authentication-Results: ;;;\r\n", NULL, "|||||1|1|" },
	{ "Authentication-Results: \"unterminated; spf=pass\r\n", NULL, "unterminated; spf=pass|||||1|1|" },
	{ "Authentication-Results: (unterminated; spf=pass\r\n", NULL, "|||||1|1|" },
	{ "Authentication-Results: mx; spf=pass \"a\" ( ) = . = ; dkim=pass\r\n", NULL,
	  "mx|pass|pass|||1|1|spf=pass,dkim=pass" },
};

static void test_auth(void **state)
{
	(void)state;
	struct hdr_auth *a = malloc(sizeof *a);
	assert_non_null(a);
	for (size_t i = 0; i < sizeof ars / sizeof ars[0]; i++) {
		hdr_auth_parse(ars[i].block, strlen(ars[i].block), ars[i].filter, a);
		char *got = fmt("%s|%s|%s|%s|%s|%zu|%zu|", a->authserv_id, a->spf, a->dkim, a->dmarc, a->arc,
				a->n_fields, a->n_trusted);
		for (size_t k = 0; k < a->n; k++) {
			char *n = fmt("%s%s%s=%s", got, k ? "," : "", a->entry[k].method, a->entry[k].result);
			free(got);
			got = n;
		}
		if (strcmp(got, ars[i].want) != 0)
			fail_msg("case %zu: got \"%s\"; want \"%s\"", i, got, ars[i].want);
		free(got);
	}

	/* more results than entries: truncated, verdicts still from all of them */
	char *b = fmt("%s", "Authentication-Results: mx.example.com");
	for (int i = 0; i < HDR_AUTH_MAX_ENTRIES + 8; i++) {
		char *n = fmt("%s; x-m%d=pass", b, i);
		free(b);
		b = n;
	}
	char *n = fmt("%s; spf=fail\r\n", b);
	free(b);
	b = n;
	hdr_auth_parse(b, strlen(b), NULL, a);
	assert_int_equal(a->n, HDR_AUTH_MAX_ENTRIES);
	assert_true(a->truncated);
	assert_string_equal(a->spf, "fail");
	free(b);

	/* long values are cut within their buffers */
	b = fmt("Authentication-Results: %0300d.example; dkim%0100d=pass%0100d header.b=%0400d (%0300d)\r\n", 1,
		2, 3, 4, 5);
	hdr_auth_parse(b, strlen(b), NULL, a);
	assert_int_equal(a->n, 1);
	assert_int_equal(strlen(a->authserv_id), sizeof a->authserv_id - 1);
	assert_int_equal(strlen(a->entry[0].method), sizeof a->entry[0].method - 1);
	assert_int_equal(strlen(a->entry[0].result), sizeof a->entry[0].result - 1);
	assert_int_equal(strlen(a->entry[0].props), sizeof a->entry[0].props - 1);
	assert_int_equal(strlen(a->entry[0].comment), sizeof a->entry[0].comment - 1);
	free(b);
	free(a);
}

/* ---- limits of the chain ---- */

static void test_chain_limits(void **state)
{
	(void)state;
	/* 40 Received fields, one second apart, the newest on top: the newest 32 are kept, and the
	 * oldest kept hop's delay is against the dropped hop below it */
	int total = HDR_MAX_HOPS + 8;
	char *b = fmt("%s", "");
	for (int i = 0; i < total; i++) {
		char date[40];
		assert_int_equal(hdr_date_format(T0 + total - 1 - i, 0, date, sizeof date), 0);
		char *n = fmt("%sReceived: from h%d by h%d; %s\r\n", b, total - 2 - i, total - 1 - i, date);
		free(b);
		b = n;
	}
	struct hdr_chain *c = malloc(sizeof *c);
	assert_non_null(c);
	hdr_received_chain(b, strlen(b), c);
	assert_int_equal(c->n, HDR_MAX_HOPS);
	assert_int_equal(c->n_received, total);
	assert_true(c->truncated);
	for (size_t i = 0; i < c->n; i++) {
		char want[32];
		snprintf(want, sizeof want, "h%zu", i + 8);
		if (strcmp(c->hop[i].by, want) != 0 || c->hop[i].at != T0 + (int64_t)i + 8 || c->hop[i].delay_s != 1)
			fail_msg("hop %zu: by %s at %lld delay %g", i, c->hop[i].by, (long long)c->hop[i].at,
				 c->hop[i].delay_s);
	}
	free(b);

	/* a hop's shorter buffers (with[64], id[128]) are cut without a trailing space (found by
	 * fuzz_headers) */
	b = fmt("Received: from a by b with %062d bbbb id %0126d cc\r\n", 1, 2);
	hdr_received_chain(b, strlen(b), c);
	assert_int_equal(c->n, 1);
	assert_int_equal(strlen(c->hop[0].with), 62);
	assert_int_equal(strlen(c->hop[0].id), 126);
	free(b);

	/* no Received field at all */
	hdr_received_chain("Subject: x\r\n", 12, c);
	assert_int_equal(c->n, 0);
	assert_int_equal(c->n_received, 0);
	assert_false(c->truncated);
	hdr_received_chain(NULL, 0, c);
	assert_int_equal(c->n, 0);
	free(c);
}

/* ---- every prefix of every sample: no crash, no read past the prefix (ASan), sane results ---- */

static void check_str(const char *s, size_t size, const char *what)
{
	if (!memchr(s, '\0', size))
		fail_msg("%s not terminated", what);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			fail_msg("%s has control byte 0x%02x", what, (unsigned char)*p);
}

static void test_every_prefix(void **state)
{
	(void)state;
	struct hdr_chain *c = malloc(sizeof *c);
	struct hdr_auth *a = malloc(sizeof *a);
	assert_non_null(c);
	assert_non_null(a);
	size_t checked = 0;
	for (size_t s = 0; s < sizeof samples / sizeof samples[0]; s++) {
		size_t len;
		char *full = sample(samples[s].file, &len);
		/* lf-obsolete.eml is long: every 7th prefix, and every one of its last 200 bytes */
		size_t step = len > 8000 ? 7 : 1;
		for (size_t n = 0; n <= len; n += (n + 200 >= len ? 1 : step)) {
			char *b = malloc(n ? n : 1); /* exactly n bytes: ASan sees any read beyond */
			assert_non_null(b);
			memcpy(b, full, n);
			hdr_received_chain(b, n, c);
			assert_true(c->n <= c->n_received && c->n <= HDR_MAX_HOPS);
			assert_true(c->n_received <= samples[s].n_hops);
			for (size_t i = 0; i < c->n; i++) {
				const struct hdr_hop *h = &c->hop[i];
				check_str(h->from, sizeof h->from, "from");
				check_str(h->by, sizeof h->by, "by");
				check_str(h->with, sizeof h->with, "with");
				check_str(h->id, sizeof h->id, "id");
				check_str(h->ip, sizeof h->ip, "ip");
				assert_true(h->at >= -1);
			}
			hdr_auth_parse(b, n, NULL, a);
			assert_true(a->n <= HDR_AUTH_MAX_ENTRIES && a->n_trusted <= a->n_fields);
			check_str(a->authserv_id, sizeof a->authserv_id, "authserv_id");
			check_str(a->spf, sizeof a->spf, "spf");
			check_str(a->dkim, sizeof a->dkim, "dkim");
			check_str(a->dmarc, sizeof a->dmarc, "dmarc");
			check_str(a->arc, sizeof a->arc, "arc");
			for (size_t i = 0; i < a->n; i++) {
				check_str(a->entry[i].props, sizeof a->entry[i].props, "props");
				check_str(a->entry[i].comment, sizeof a->entry[i].comment, "comment");
			}
			/* every field's value, and the date parser on each of them */
			struct hdr_iter it;
			struct hdr_field f;
			hdr_iter_init(&it, b, n);
			while (hdr_next(&it, &f)) {
				assert_true(f.name >= b && f.name + f.name_len <= b + n);
				assert_true(f.value >= b && f.value + f.value_len <= b + n);
				(void)hdr_date_parse(f.value, f.value_len, NULL);
				struct hdr_received r;
				hdr_received_parse(f.value, f.value_len, &r);
			}
			free(b);
			checked++;
		}
		free(full);
	}
	free(c);
	free(a);
	assert_true(checked > 10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_named),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_unfold),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_date_format),
		cmocka_unit_test(test_date_against_libc),
		cmocka_unit_test(test_received),
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_auth_entries),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_chain_limits),
		cmocka_unit_test(test_every_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
