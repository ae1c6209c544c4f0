/* Unit tests: schedule parsing, per-seed offsets and fire times (UTC). Table-driven, got/want.
 * Expected times are written as ISO strings; the test converts them with its own calendar
 * (year and month loops, checked against known constants), independent of schedule.c's
 * days_from_civil. Random cron specs are checked against a minute-by-minute brute force. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schedule.h"

/* ---- the test's own calendar ---- */

static bool t_leap(int64_t y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int t_ylen(int64_t y)
{
	return t_leap(y) ? 366 : 365;
}

static int t_mlen(int64_t y, int m)
{
	static const int len[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && t_leap(y) ? 29 : len[m - 1];
}

/* Broken-down UTC time; wday 0 = Sunday. */
struct tfields {
	int64_t y;
	int mon, mday, hour, min, sec, wday;
};

static int64_t t_days(int64_t y, int m, int d)
{
	int64_t days = 0;
	for (int64_t i = 1970; i < y; i++)
		days += t_ylen(i);
	for (int64_t i = y; i < 1970; i++)
		days -= t_ylen(i);
	for (int i = 1; i < m; i++)
		days += t_mlen(y, i);
	return days + d - 1;
}

static struct tfields t_split(int64_t t)
{
	struct tfields f;
	int64_t days = t / 86400, sod = t % 86400;

	if (sod < 0) {
		sod += 86400;
		days--;
	}
	f.wday = (int)(((days % 7) + 7 + 4) % 7); /* 1970-01-01: Thursday */
	f.y = 1970;
	while (days < 0)
		days += t_ylen(--f.y);
	while (days >= t_ylen(f.y))
		days -= t_ylen(f.y++);
	f.mon = 1;
	while (days >= t_mlen(f.y, f.mon))
		days -= t_mlen(f.y, f.mon++);
	f.mday = (int)days + 1;
	f.hour = (int)(sod / 3600);
	f.min = (int)(sod / 60 % 60);
	f.sec = (int)(sod % 60);
	return f;
}

/* "YYYY-MM-DDTHH:MM:SSZ" to Unix seconds. */
static int64_t iso(const char *s)
{
	int y, mo, d, h, mi, se;
	char z;

	if (sscanf(s, "%d-%d-%dT%d:%d:%d%c", &y, &mo, &d, &h, &mi, &se, &z) != 7 || z != 'Z')
		fail_msg("bad ISO time in the test: %s", s);
	return t_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
}

/* Unix seconds to ISO, or "INT64_MAX"/"INT64_MIN"; buf of at least 32 bytes. */
static const char *iso_of(int64_t t, char *buf)
{
	if (t == INT64_MAX)
		return "INT64_MAX";
	if (t == INT64_MIN)
		return "INT64_MIN";
	struct tfields f = t_split(t);
	snprintf(buf, 32, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02dZ", f.y, f.mon, f.mday, f.hour, f.min,
		 f.sec);
	return buf;
}

static void test_calendar_helper(void **state)
{
	(void)state;
	static const struct {
		const char *iso;
		int64_t t;
		int wday;
	} cases[] = {
		{ "1970-01-01T00:00:00Z", 0, 4 },
		{ "1969-12-31T23:59:59Z", -1, 3 },
		{ "2000-01-01T00:00:00Z", 946684800, 6 },
		{ "2000-02-29T12:34:56Z", 951827696, 2 },
		{ "2038-01-19T03:14:07Z", 2147483647, 2 },
		{ "1900-03-01T00:00:00Z", -2203891200, 4 },
		{ "2100-03-01T00:00:00Z", 4107542400, 1 },
		{ "2104-02-29T00:00:00Z", 4233686400, 5 },
		{ "1601-01-01T00:00:00Z", -11644473600, 1 },
	};
	char buf[32];
	int failures = 0;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t got = iso(cases[i].iso);
		int wd = t_split(cases[i].t).wday;
		if (got != cases[i].t || strcmp(iso_of(cases[i].t, buf), cases[i].iso) != 0 ||
		    wd != cases[i].wday) {
			print_error("%s:\n got: %" PRId64 " %s wday %d\n want: %" PRId64 " wday %d\n",
				    cases[i].iso, got, buf, wd, cases[i].t, cases[i].wday);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* ---- parsing ---- */

/* Bit set from a plain list of numbers "0,15,30" ("" is empty). */
static uint64_t bits(const char *list)
{
	uint64_t m = 0;
	for (const char *p = list; *p;) {
		char *end;
		long v = strtol(p, &end, 10);
		m |= UINT64_C(1) << v;
		p = *end == ',' ? end + 1 : end;
	}
	return m;
}

static uint64_t span(int lo, int hi)
{
	uint64_t m = 0;
	for (int i = lo; i <= hi; i++)
		m |= UINT64_C(1) << i;
	return m;
}

struct parse_ok {
	const char *in;
	enum schedule_kind kind;
	int64_t interval_s;
	uint64_t minute, hour, mday, month, wday; /* CRON only */
	bool mday_star, wday_star;
};

#define EVERY(in, iv) { in, SCHEDULE_EVERY, iv, 0, 0, 0, 0, 0, false, false }

static void test_parse_ok(void **state)
{
	(void)state;
	const uint64_t MIN = span(0, 59), HR = span(0, 23), MD = span(1, 31), MO = span(1, 12),
		       WD = span(0, 6);
	const struct parse_ok cases[] = {
		EVERY("hourly", 3600),
		EVERY("daily", 86400),
		EVERY("weekly", 604800),
		EVERY("every 90s", 90),
		EVERY("every 1m30s", 90),
		EVERY("every  15m", 900),
		EVERY("every\t1h30m", 5400),
		EVERY("every 1s", 1),
		EVERY("every 1000ms", 1),
		EVERY("every 2500000ms", 2500),
		EVERY("every 1w", 604800),
		EVERY("every 2d", 172800),
		EVERY("every 15m ", 900),
		{ "cron * * * * *", SCHEDULE_CRON, 60, MIN, HR, MD, MO, WD, true, true },
		{ "cron */15 * * * *", SCHEDULE_CRON, 60, bits("0,15,30,45"), HR, MD, MO, WD, true, true },
		{ "cron 10-50/20 * * * *", SCHEDULE_CRON, 60, bits("10,30,50"), HR, MD, MO, WD, true,
		  true },
		{ "cron 0 9-17 * * 1-5", SCHEDULE_CRON, 60, 1, span(9, 17), MD, MO, span(1, 5), true,
		  false },
		{ "cron 0,30 8-18/2 1,15 1-12/3 0,7", SCHEDULE_CRON, 60, bits("0,30"),
		  bits("8,10,12,14,16,18"), bits("1,15"), bits("1,4,7,10"), 1, false, false },
		{ "cron 59 23 31 12 7", SCHEDULE_CRON, 60, bits("59"), bits("23"), bits("31"), bits("12"),
		  1, false, false },
		{ "cron 0 0 * * 5-7", SCHEDULE_CRON, 60, 1, 1, MD, MO, bits("0,5,6"), true, false },
		{ "cron 0 0 * * */2", SCHEDULE_CRON, 60, 1, 1, MD, MO, bits("0,2,4,6"), true, false },
		{ "cron 0 0 * * 0-7/7", SCHEDULE_CRON, 60, 1, 1, MD, MO, bits("0"), true, false },
		{ "cron 0 0 */2 * *", SCHEDULE_CRON, 60, 1, 1, bits("1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31"),
		  MO, WD, false, true },
		{ "cron 0 0 1-31 * *", SCHEDULE_CRON, 60, 1, 1, MD, MO, WD, false, true },
		{ "cron 0 12 29 2 *", SCHEDULE_CRON, 60, 1, bits("12"), bits("29"), bits("2"), WD, false,
		  true },
		{ "cron 0 0 31 2,4 1", SCHEDULE_CRON, 60, 1, 1, bits("31"), bits("2,4"), bits("1"), false,
		  false },
		{ "cron 0 0 30,31 1,2 *", SCHEDULE_CRON, 60, 1, 1, bits("30,31"), bits("1,2"), WD, false,
		  true },
		{ "cron\t00 000 01 01 00 ", SCHEDULE_CRON, 60, 1, 1, bits("1"), bits("1"), 1, false, false },
		{ "cron 5,1-3,*/30 * * * *", SCHEDULE_CRON, 60, bits("0,1,2,3,5,30"), HR, MD, MO, WD, true,
		  true },
	};
	int failures = 0;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct parse_ok *w = &cases[i];
		struct schedule got;
		char *err = (char *)"unset";
		memset(&got, 0xa5, sizeof got);
		if (schedule_parse(w->in, &got, &err) != 0) {
			print_error("\"%s\":\n got: %s\n want: accepted\n", w->in, err);
			free(err);
			failures++;
			continue;
		}
		if (err != NULL) {
			print_error("\"%s\": err not NULL on success\n", w->in);
			failures++;
		}
		bool ok = got.kind == w->kind && got.interval_s == w->interval_s;
		if (w->kind == SCHEDULE_CRON)
			ok = ok && got.minute == w->minute && got.hour == w->hour && got.mday == w->mday &&
			     got.month == w->month && got.wday == w->wday &&
			     got.mday_star == w->mday_star && got.wday_star == w->wday_star;
		if (!ok) {
			print_error("\"%s\":\n got: kind %d interval %" PRId64 " min %#" PRIx64
				    " hour %#" PRIx32 " mday %#" PRIx32 " mon %#x wday %#x stars %d %d\n"
				    " want: kind %d interval %" PRId64 " min %#" PRIx64 " hour %#" PRIx64
				    " mday %#" PRIx64 " mon %#" PRIx64 " wday %#" PRIx64 " stars %d %d\n",
				    w->in, got.kind, got.interval_s, got.minute, got.hour, got.mday,
				    (unsigned)got.month, (unsigned)got.wday, got.mday_star, got.wday_star,
				    w->kind, w->interval_s, w->minute, w->hour, w->mday, w->month, w->wday,
				    w->mday_star, w->wday_star);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

static void test_parse_bad(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want; /* want: a substring of the message */
	} cases[] = {
		{ "", "empty schedule (use \"hourly\"" },
		{ NULL, "empty schedule" },
		{ "monthly", "\"monthly\" is not a schedule (use \"hourly\", \"daily\", \"weekly\"" },
		{ "Hourly", "\"Hourly\" is not a schedule" },
		{ " hourly", "\" hourly\" is not a schedule" },
		{ "hourly ", "\"hourly \" is not a schedule" },
		{ "everyday", "\"everyday\" is not a schedule" },
		{ "every", "\"every\" needs a duration, e.g. \"every 15m\"" },
		{ "every ", "\"every \" needs a duration" },
		{ "every 0s", "\"every 0s\" needs an interval greater than zero" },
		{ "every 1ms", "\"every 1ms\" needs an interval of at least 1s" },
		{ "every 999ms", "\"every 999ms\" needs an interval of at least 1s" },
		{ "every 1500ms", "\"every 1500ms\" needs a whole number of seconds" },
		{ "every 1m1ms", "\"every 1m1ms\" needs a whole number of seconds" },
		{ "every 15", "\"every 15\" has a bad duration: missing unit" },
		{ "every 15q", "\"every 15q\" has a bad duration: unknown unit" },
		{ "every -5m", "\"every -5m\" has a bad duration" },
		{ "every 99999w", "\"every 99999w\" has a bad duration: duration too large" },
		{ "every 1h 30m", "\"every 1h 30m\" has more than one duration (write \"every 1h30m\")" },
		{ "cron", "\"cron\" needs 5 cron fields (minute hour day month weekday), not 0" },
		{ "cron * * * *", "\"cron * * * *\" needs 5 cron fields (minute hour day month weekday), not 4" },
		{ "cron * * * * * *", "needs 5 cron fields (minute hour day month weekday), not 6" },
		{ "cron 61 * * * *", "\"cron 61 * * * *\" has minute 61 out of range 0-59" },
		{ "cron 60 * * * *", "has minute 60 out of range 0-59" },
		{ "cron * 24 * * *", "\"cron * 24 * * *\" has hour 24 out of range 0-23" },
		{ "cron * * 0 * *", "has day 0 out of range 1-31" },
		{ "cron * * 32 * *", "has day 32 out of range 1-31" },
		{ "cron * * * 0 *", "has month 0 out of range 1-12" },
		{ "cron * * * 13 *", "has month 13 out of range 1-12" },
		{ "cron * * * * 8", "has weekday 8 out of range 0-7" },
		{ "cron 5-3 * * * *", "\"cron 5-3 * * * *\" has a backwards minute range 5-3" },
		{ "cron * * * * 7-1", "has a backwards weekday range 7-1" },
		{ "cron 1-70 * * * *", "has minute 70 out of range 0-59" },
		{ "cron */0 * * * *", "has a bad step in the minute field (1 to 59)" },
		{ "cron */ * * * *", "has a bad step in the minute field (1 to 59)" },
		{ "cron * */25 * * *", "has a bad step in the hour field (1 to 23)" },
		{ "cron 5/10 * * * *", "has a step in the minute field without '*' or a range before it" },
		{ "cron 1,,2 * * * *", "has a bad minute field \"1,,2\" (numbers, '*', ',', '-' and '/')" },
		{ "cron 1, * * * *", "has a bad minute field \"1,\"" },
		{ "cron 1- * * * *", "has a bad minute field \"1-\" (a range needs two numbers)" },
		{ "cron * * * jan *", "has a bad month field \"jan\"" },
		{ "cron * * * * mon", "has a bad weekday field \"mon\"" },
		{ "cron ** * * * *", "has a bad minute field \"**\"" },
		{ "cron -1 * * * *", "has a bad minute field \"-1\"" },
		{ "cron 99999 * * * *", "has minute 9999 out of range 0-59" },
		{ "cron 0 0 30 2 *", "\"cron 0 0 30 2 *\" never fires" },
		{ "cron 0 0 31 2 *", "\"cron 0 0 31 2 *\" never fires" },
		{ "cron 0 0 30,31 2 *", "never fires" },
		{ "cron 0 0 31 4,6,9,11 *", "\"cron 0 0 31 4,6,9,11 *\" never fires" },
		{ "cron 0 0 31 2-4/2 *", "never fires" },
		{ "cron\t1\t2\t30\t2\t*", "\"cron\\t1\\t2\\t30\\t2\\t*\" never fires" },
	};
	int failures = 0;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct schedule sc, before;
		char *err = NULL;
		memset(&sc, 0x5a, sizeof sc);
		before = sc;
		int rc = schedule_parse(cases[i].in, &sc, &err);
		if (rc != -1 || !err || !strstr(err, cases[i].want) ||
		    memcmp(&sc, &before, sizeof sc) != 0) {
			print_error("\"%s\":\n got: %d %s%s\n want: -1 ...%s...\n",
				    cases[i].in ? cases[i].in : "(null)", rc, err ? err : "(null)",
				    memcmp(&sc, &before, sizeof sc) ? " (and *out written)" : "",
				    cases[i].want);
			failures++;
		}
		free(err);
	}
	assert_int_equal(failures, 0);
}

/* ---- fire times: tables ---- */

struct fire_case {
	const char *spec;
	int64_t off;
	const char *from; /* after (next) or at (prev) */
	const char *want; /* NULL: INT64_MAX (next) or INT64_MIN (prev) */
};

static struct schedule parse_or_fail(const char *spec)
{
	struct schedule sc;
	char *err;
	if (schedule_parse(spec, &sc, &err) != 0)
		fail_msg("\"%s\": %s", spec, err);
	return sc;
}

static const struct fire_case next_cases[] = {
	/* EVERY, aligned to the epoch, with offsets (including negative and > interval) */
	{ "hourly", 0, "2025-01-01T00:00:00Z", "2025-01-01T01:00:00Z" },
	{ "hourly", 0, "2025-01-01T00:30:00Z", "2025-01-01T01:00:00Z" },
	{ "hourly", 0, "2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z" },
	{ "hourly", 1234, "2025-01-01T00:00:00Z", "2025-01-01T00:20:34Z" },
	{ "hourly", 1234, "2025-01-01T00:20:33Z", "2025-01-01T00:20:34Z" },
	{ "hourly", 1234, "2025-01-01T00:20:34Z", "2025-01-01T01:20:34Z" },
	{ "hourly", -1, "2025-01-01T00:00:00Z", "2025-01-01T00:59:59Z" },
	{ "hourly", 3605, "2025-01-01T00:00:00Z", "2025-01-01T00:00:05Z" },
	{ "hourly", -7195, "2025-01-01T00:00:00Z", "2025-01-01T00:00:05Z" },
	{ "hourly", 59, "1969-12-31T22:30:00Z", "1969-12-31T23:00:59Z" },
	{ "daily", 21600, "2025-06-30T07:00:00Z", "2025-07-01T06:00:00Z" },
	{ "daily", 0, "2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z" },
	{ "daily", 86399, "2024-02-28T23:59:59Z", "2024-02-29T23:59:59Z" },
	{ "daily", 3600, "1960-01-01T00:00:00Z", "1960-01-01T01:00:00Z" },
	{ "weekly", 0, "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z" }, /* Thursdays */
	{ "weekly", 0, "2025-01-02T00:00:00Z", "2025-01-09T00:00:00Z" },
	{ "weekly", 4 * 86400 + 9 * 3600, "2025-01-01T00:00:00Z", "2025-01-06T09:00:00Z" }, /* Mon */
	{ "weekly", 4 * 86400 + 9 * 3600, "2025-12-29T09:00:00Z", "2026-01-05T09:00:00Z" },
	{ "every 90s", 0, "2025-01-01T00:00:00Z", "2025-01-01T00:01:30Z" },
	{ "every 90s", 45, "2025-01-01T00:00:00Z", "2025-01-01T00:00:45Z" },
	{ "every 90s", 0, "2025-01-01T00:01:29Z", "2025-01-01T00:01:30Z" },
	{ "every 7s", 0, "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z" },
	{ "every 7s", 3, "1969-12-31T23:59:52Z", "1969-12-31T23:59:56Z" },
	{ "every 7s", -4, "1969-12-31T23:59:52Z", "1969-12-31T23:59:56Z" },
	/* cron: steps, ranges, lists */
	{ "cron */15 * * * *", 0, "2025-01-01T00:00:00Z", "2025-01-01T00:15:00Z" },
	{ "cron */15 * * * *", 0, "2025-01-01T00:14:59Z", "2025-01-01T00:15:00Z" },
	{ "cron */15 * * * *", 30, "2025-01-01T00:00:00Z", "2025-01-01T00:00:30Z" },
	{ "cron */15 * * * *", 30, "2025-01-01T00:00:30Z", "2025-01-01T00:15:30Z" },
	{ "cron */15 * * * *", 0, "2025-12-31T23:50:00Z", "2026-01-01T00:00:00Z" },
	{ "cron */15 * * * *", 59, "2025-12-31T23:45:59Z", "2026-01-01T00:00:59Z" },
	{ "cron 10-50/20 * * * *", 0, "2025-01-01T00:10:00Z", "2025-01-01T00:30:00Z" },
	{ "cron 10-50/20 * * * *", 0, "2025-01-01T00:50:00Z", "2025-01-01T01:10:00Z" },
	{ "cron 10-50/20 * * * *", 0, "2025-01-01T23:55:00Z", "2025-01-02T00:10:00Z" },
	{ "cron 5,35 0,12 * * *", 0, "2025-01-01T12:35:00Z", "2025-01-02T00:05:00Z" },
	{ "cron 5,35 0,12 * * *", 0, "2025-01-01T00:05:00Z", "2025-01-01T00:35:00Z" },
	{ "cron 5,35 0,12 * * *", 0, "2025-01-01T00:36:00Z", "2025-01-01T12:05:00Z" },
	{ "cron 0 9-17 * * 1-5", 0, "2025-01-03T17:00:00Z", "2025-01-06T09:00:00Z" }, /* Fri -> Mon */
	{ "cron 0 9-17 * * 1-5", 0, "2025-01-06T09:00:00Z", "2025-01-06T10:00:00Z" },
	{ "cron 30 6 * * *", 0, "1969-12-31T07:00:00Z", "1970-01-01T06:30:00Z" },
	/* month and year boundaries */
	{ "cron 0 0 1 * *", 0, "2025-01-31T12:00:00Z", "2025-02-01T00:00:00Z" },
	{ "cron 0 0 31 * *", 0, "2025-01-31T00:00:00Z", "2025-03-31T00:00:00Z" },
	{ "cron 0 0 31 * *", 0, "2025-03-31T00:00:00Z", "2025-05-31T00:00:00Z" },
	{ "cron 0 0 31 * *", 0, "2025-07-31T00:00:00Z", "2025-08-31T00:00:00Z" },
	{ "cron 0 0 30 * *", 0, "2025-01-30T00:00:00Z", "2025-03-30T00:00:00Z" },
	{ "cron 0 0 1 1 *", 0, "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z" },
	{ "cron 59 23 31 12 *", 0, "2025-12-31T23:59:00Z", "2026-12-31T23:59:00Z" },
	{ "cron 0 0 * 3 *", 0, "2025-03-31T00:00:00Z", "2026-03-01T00:00:00Z" },
	{ "cron 0 0 1 */4 *", 0, "2025-09-01T00:00:00Z", "2026-01-01T00:00:00Z" },
	/* the day fields: OR when both are restricted, Sunday as 7 */
	{ "cron 0 0 13 * 1", 0, "2025-06-10T00:00:00Z", "2025-06-13T00:00:00Z" }, /* 13th, a Friday */
	{ "cron 0 0 13 * 1", 0, "2025-06-13T00:00:00Z", "2025-06-16T00:00:00Z" }, /* Monday */
	{ "cron 0 0 13 * *", 0, "2025-06-13T00:00:00Z", "2025-07-13T00:00:00Z" },
	{ "cron 0 0 * * 1", 0, "2025-06-10T00:00:00Z", "2025-06-16T00:00:00Z" },
	{ "cron 0 0 */10 * 0", 0, "2025-06-02T00:00:00Z", "2025-06-08T00:00:00Z" }, /* Sunday 8 */
	{ "cron 0 0 */10 * 0", 0, "2025-06-08T00:00:00Z", "2025-06-11T00:00:00Z" }, /* day 11 */
	{ "cron 0 0 31 2,4 1", 0, "2025-02-25T00:00:00Z", "2025-04-07T00:00:00Z" }, /* a Monday */
	{ "cron 0 0 * * 7", 0, "2025-01-01T00:00:00Z", "2025-01-05T00:00:00Z" },
	{ "cron 0 0 * * 0", 0, "2025-01-01T00:00:00Z", "2025-01-05T00:00:00Z" },
	{ "cron 0 0 * * 5-7", 0, "2025-01-01T00:00:00Z", "2025-01-03T00:00:00Z" },
	{ "cron 0 0 * * 5-7", 0, "2025-01-05T00:00:00Z", "2025-01-10T00:00:00Z" },
	{ "cron 0 0 * * 6-7", 0, "2025-01-05T00:00:00Z", "2025-01-11T00:00:00Z" },
	/* leap years */
	{ "cron 0 12 29 2 *", 0, "2025-03-01T00:00:00Z", "2028-02-29T12:00:00Z" },
	{ "cron 0 12 29 2 *", 0, "2028-02-29T11:59:59Z", "2028-02-29T12:00:00Z" },
	{ "cron 0 0 29 2 *", 0, "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z" }, /* 2100: no */
	{ "cron 0 0 29 2 *", 0, "1999-01-01T00:00:00Z", "2000-02-29T00:00:00Z" }, /* 2000: yes */
	{ "cron 0 0 28 2 *", 0, "2025-02-27T00:00:00Z", "2025-02-28T00:00:00Z" },
	{ "cron 0 0 * * *", 0, "2025-02-28T00:00:00Z", "2025-03-01T00:00:00Z" },
	{ "cron 0 0 * * *", 0, "2024-02-28T00:00:00Z", "2024-02-29T00:00:00Z" },
	{ "cron 0 0 * * *", 0, "2100-02-28T00:00:00Z", "2100-03-01T00:00:00Z" },
	{ "cron 0 0 29,30 * *", 0, "2025-01-30T00:00:00Z", "2025-03-29T00:00:00Z" },
	{ "cron 0 0 29,30 * *", 0, "2024-01-30T00:00:00Z", "2024-02-29T00:00:00Z" },
	/* extremes */
	{ "hourly", 0, "9999-12-31T23:00:00Z", "10000-01-01T00:00:00Z" },
	{ "cron 0 0 1 1 *", 0, "1583-06-01T00:00:00Z", "1584-01-01T00:00:00Z" },
};

static const struct fire_case prev_cases[] = {
	{ "hourly", 0, "2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z" },
	{ "hourly", 0, "2025-01-01T00:59:59Z", "2025-01-01T00:00:00Z" },
	{ "hourly", 1234, "2025-01-01T00:20:33Z", "2024-12-31T23:20:34Z" },
	{ "hourly", 1234, "2025-01-01T00:20:34Z", "2025-01-01T00:20:34Z" },
	{ "hourly", 0, "1969-12-31T23:30:00Z", "1969-12-31T23:00:00Z" },
	{ "hourly", -1, "1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z" },
	{ "daily", 21600, "2025-07-01T05:59:59Z", "2025-06-30T06:00:00Z" },
	{ "daily", 0, "2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z" },
	{ "weekly", 0, "2025-01-01T00:00:00Z", "2024-12-26T00:00:00Z" },
	{ "weekly", 4 * 86400 + 9 * 3600, "2026-01-05T08:59:59Z", "2025-12-29T09:00:00Z" },
	{ "every 90s", 0, "2025-01-01T00:01:29Z", "2025-01-01T00:00:00Z" },
	{ "every 7s", 3, "1969-12-31T23:59:59Z", "1969-12-31T23:59:56Z" },
	{ "every 7s", 0, "1969-12-31T23:59:59Z", "1969-12-31T23:59:53Z" },
	{ "cron */15 * * * *", 0, "2026-01-01T00:14:59Z", "2026-01-01T00:00:00Z" },
	{ "cron */15 * * * *", 30, "2026-01-01T00:00:00Z", "2025-12-31T23:45:30Z" },
	{ "cron */15 * * * *", 30, "2026-01-01T00:00:30Z", "2026-01-01T00:00:30Z" },
	{ "cron 10-50/20 * * * *", 0, "2025-01-02T00:09:59Z", "2025-01-01T23:50:00Z" },
	{ "cron 5,35 0,12 * * *", 0, "2025-01-02T00:04:00Z", "2025-01-01T12:35:00Z" },
	{ "cron 0 9-17 * * 1-5", 0, "2025-01-06T08:59:00Z", "2025-01-03T17:00:00Z" },
	{ "cron 0 0 31 * *", 0, "2025-05-30T00:00:00Z", "2025-03-31T00:00:00Z" },
	{ "cron 0 0 1 1 *", 0, "2025-12-31T23:59:59Z", "2025-01-01T00:00:00Z" },
	{ "cron 59 23 31 12 *", 0, "2026-12-31T23:58:59Z", "2025-12-31T23:59:00Z" },
	{ "cron 0 0 * 3 *", 0, "2026-02-28T00:00:00Z", "2025-03-31T00:00:00Z" },
	{ "cron 0 0 13 * 1", 0, "2025-06-15T00:00:00Z", "2025-06-13T00:00:00Z" },
	{ "cron 0 0 13 * 1", 0, "2025-06-12T23:59:00Z", "2025-06-09T00:00:00Z" },
	{ "cron 0 0 * * 7", 0, "2025-01-04T23:59:00Z", "2024-12-29T00:00:00Z" },
	{ "cron 0 12 29 2 *", 0, "2028-02-29T11:59:59Z", "2024-02-29T12:00:00Z" },
	{ "cron 0 12 29 2 *", 0, "2028-02-29T12:00:00Z", "2028-02-29T12:00:00Z" },
	{ "cron 0 0 29 2 *", 0, "2104-02-28T00:00:00Z", "2096-02-29T00:00:00Z" },
	{ "cron 0 0 * * *", 0, "2025-03-01T00:00:00Z", "2025-03-01T00:00:00Z" },
	{ "cron 0 0 * * *", 0, "2025-02-28T23:59:59Z", "2025-02-28T00:00:00Z" },
	{ "cron 0 0 28-31 * *", 0, "2025-03-27T00:00:00Z", "2025-02-28T00:00:00Z" },
	{ "cron 0 0 28-31 * *", 0, "2024-03-27T00:00:00Z", "2024-02-29T00:00:00Z" },
	{ "cron 0 0 28-31 * *", 0, "2100-03-27T00:00:00Z", "2100-02-28T00:00:00Z" },
	{ "cron 30 6 * * *", 0, "1970-01-01T06:29:59Z", "1969-12-31T06:30:00Z" },
};

static int run_fire_table(const struct fire_case *cases, size_t n, bool next)
{
	int failures = 0;
	char b1[32], b2[32];

	for (size_t i = 0; i < n; i++) {
		const struct fire_case *c = &cases[i];
		struct schedule sc = parse_or_fail(c->spec);
		int64_t from = iso(c->from);
		int64_t want = c->want ? iso(c->want) : next ? INT64_MAX : INT64_MIN;
		int64_t got = next ? schedule_next(&sc, c->off, from) : schedule_prev(&sc, c->off, from);
		if (got != want) {
			print_error("%s(\"%s\", offset %" PRId64 ", %s):\n got: %s\n want: %s\n",
				    next ? "next" : "prev", c->spec, c->off, c->from, iso_of(got, b1),
				    iso_of(want, b2));
			failures++;
		}
	}
	return failures;
}

static void test_next_table(void **state)
{
	(void)state;
	assert_int_equal(run_fire_table(next_cases, sizeof next_cases / sizeof next_cases[0], true), 0);
}

static void test_prev_table(void **state)
{
	(void)state;
	assert_int_equal(run_fire_table(prev_cases, sizeof prev_cases / sizeof prev_cases[0], false), 0);
}

/* The 30-year horizon, extreme times and structs not made by schedule_parse. */
static void test_limits(void **state)
{
	(void)state;
	struct schedule sc;
	const int64_t forty_years = INT64_C(40) * 365 * 86400;

	/* Feb 29 that is also a Monday (the '*' flag forces the AND rule): 2044, 2072, then 2112. */
	memset(&sc, 0, sizeof sc);
	sc.kind = SCHEDULE_CRON;
	sc.interval_s = 60;
	sc.minute = 1;
	sc.hour = 1;
	sc.mday = 1u << 29;
	sc.month = 1u << 2;
	sc.wday = 1u << 1;
	sc.mday_star = true;
	assert_int_equal(schedule_next(&sc, 0, iso("2044-03-01T00:00:00Z")), iso("2072-02-29T00:00:00Z"));
	assert_int_equal(schedule_prev(&sc, 0, iso("2072-02-28T00:00:00Z")), iso("2044-02-29T00:00:00Z"));
	assert_true(schedule_next(&sc, 0, iso("2072-03-01T00:00:00Z")) == INT64_MAX);
	assert_true(schedule_prev(&sc, 0, iso("2112-02-28T00:00:00Z")) == INT64_MIN);
	assert_int_equal(schedule_prev(&sc, 0, iso("2112-02-29T00:00:00Z")), iso("2112-02-29T00:00:00Z"));

	/* impossible and empty sets */
	sc.wday = 0x7f;
	sc.mday = 1u << 30; /* Feb 30 */
	assert_true(schedule_next(&sc, 0, 0) == INT64_MAX);
	assert_true(schedule_prev(&sc, 0, 0) == INT64_MIN);
	sc.mday = 1u << 1;
	sc.minute = 0;
	assert_true(schedule_next(&sc, 0, 0) == INT64_MAX);
	assert_true(schedule_prev(&sc, 0, 0) == INT64_MIN);
	assert_int_equal(schedule_offset(&sc, "x"), schedule_offset(&sc, "x"));
	assert_true(schedule_offset(&sc, "x") < 60);

	/* EVERY longer than the horizon; interval 0 */
	memset(&sc, 0, sizeof sc);
	sc.kind = SCHEDULE_EVERY;
	sc.interval_s = forty_years;
	assert_true(schedule_next(&sc, 0, 0) == INT64_MAX);
	assert_int_equal(schedule_next(&sc, 0, forty_years - 100), forty_years);
	assert_true(schedule_prev(&sc, 0, forty_years - 1) == INT64_MIN);
	assert_int_equal(schedule_prev(&sc, 0, forty_years + 100), forty_years);
	sc.interval_s = 0;
	assert_true(schedule_next(&sc, 0, 0) == INT64_MAX);
	assert_true(schedule_prev(&sc, 0, 0) == INT64_MIN);
	assert_int_equal(schedule_offset(&sc, "x"), 0);

	/* the ends of int64 */
	sc = parse_or_fail("every 1s");
	assert_true(schedule_next(&sc, 0, INT64_MAX - 1) == INT64_MAX);
	assert_true(schedule_next(&sc, 0, INT64_MAX) == INT64_MAX);
	assert_true(schedule_prev(&sc, 0, INT64_MIN + 5) == INT64_MIN + 5);
	sc = parse_or_fail("hourly");
	assert_true(schedule_next(&sc, 17, INT64_MAX - 10) == INT64_MAX);
	assert_true(schedule_prev(&sc, 17, INT64_MIN + 10) == INT64_MIN);
	assert_true(schedule_next(&sc, INT64_MIN, 0) == 1792); /* INT64_MIN mod 3600 = 1792 (floor) */
	assert_true(schedule_next(&sc, INT64_MAX, 0) == 1807);  /* INT64_MAX mod 3600 = 1807 */
	sc = parse_or_fail("cron * * * * *");
	assert_true(schedule_next(&sc, 0, INT64_MAX) == INT64_MAX);
	assert_true(schedule_prev(&sc, 0, INT64_MIN) == INT64_MIN);
	assert_true(schedule_next(&sc, INT64_MIN, 0) == INT64_MAX);
	assert_true(schedule_prev(&sc, INT64_MAX, 0) == INT64_MIN);
	assert_int_equal(schedule_next(&sc, 0, -(INT64_C(1) << 61)), -(INT64_C(1) << 61) + 60 -
			 ((-(INT64_C(1) << 61)) % 60 + 60) % 60);
}

/* ---- fire times: random specs against a brute force ---- */

static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);

static uint64_t rnd(void) /* xorshift64* */
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static int rnd_in(int lo, int hi)
{
	return lo + (int)(rnd() % (uint64_t)(hi - lo + 1));
}

static int64_t rnd64(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* A random cron field, its text and its set (computed here, not by the parser). */
struct gen_field {
	char text[80];
	uint64_t set;
	bool star;
};

static void gen_item(struct gen_field *g, int lo, int hi, size_t *len)
{
	int a, b, step = 1, kind = rnd_in(0, 3);
	char buf[32];

	a = rnd_in(lo, hi);
	b = rnd_in(a, hi);
	switch (kind) {
	case 0: snprintf(buf, sizeof buf, "%d", a); b = a; break;
	case 1: snprintf(buf, sizeof buf, "%d-%d", a, b); break;
	case 2:
		step = rnd_in(1, hi < 12 ? hi : 12);
		snprintf(buf, sizeof buf, "*/%d", step);
		a = lo;
		b = hi;
		break;
	default:
		step = rnd_in(1, hi < 10 ? hi : 10);
		snprintf(buf, sizeof buf, "%d-%d/%d", a, b, step);
		break;
	}
	for (int v = a; v <= b; v += step)
		g->set |= UINT64_C(1) << v;
	*len += (size_t)snprintf(g->text + *len, sizeof g->text - *len, "%s%s", *len ? "," : "", buf);
}

/* star_pct: chance in percent of a plain '*'. */
static void gen_field(struct gen_field *g, int lo, int hi, int star_pct)
{
	size_t len = 0;

	memset(g, 0, sizeof *g);
	if (rnd_in(1, 100) <= star_pct) {
		strcpy(g->text, "*");
		for (int v = lo; v <= hi; v++)
			g->set |= UINT64_C(1) << v;
		g->star = true;
	} else {
		int items = rnd_in(1, 4) == 1 ? rnd_in(2, 3) : 1;
		for (int i = 0; i < items; i++)
			gen_item(g, lo, hi, &len);
	}
	if (hi == 7 && (g->set >> 7) & 1) /* weekday 7 is Sunday */
		g->set = (g->set & 0x7f) | 1;
}

struct ref {
	uint64_t set[5]; /* minute hour mday month wday */
	bool mstar, wstar;
};

static bool ref_match(const struct ref *r, const struct tfields *f)
{
	if (!((r->set[0] >> f->min) & 1) || !((r->set[1] >> f->hour) & 1) ||
	    !((r->set[3] >> f->mon) & 1))
		return false;
	bool md = (r->set[2] >> f->mday) & 1, wd = (r->set[4] >> f->wday) & 1;
	return (r->mstar || r->wstar) ? md && wd : md || wd;
}

static void step_fwd(struct tfields *f)
{
	if (++f->min < 60)
		return;
	f->min = 0;
	if (++f->hour < 24)
		return;
	f->hour = 0;
	f->wday = (f->wday + 1) % 7;
	if (++f->mday <= t_mlen(f->y, f->mon))
		return;
	f->mday = 1;
	if (++f->mon <= 12)
		return;
	f->mon = 1;
	f->y++;
}

static void step_back(struct tfields *f)
{
	if (--f->min >= 0)
		return;
	f->min = 59;
	if (--f->hour >= 0)
		return;
	f->hour = 23;
	f->wday = (f->wday + 6) % 7;
	if (--f->mday >= 1)
		return;
	if (--f->mon < 1) {
		f->mon = 12;
		f->y--;
	}
	f->mday = t_mlen(f->y, f->mon);
}

#define REF_SCAN_MINUTES (INT64_C(9) * 366 * 1440) /* longer than any parsed spec's gap */

static int64_t floor_min(int64_t t)
{
	int64_t r = t % 60;
	return r < 0 ? t - r - 60 : t - r;
}

/* Minute by minute: the first M + off > after with M a matching minute start. */
static int64_t ref_next(const struct ref *r, int64_t off, int64_t after)
{
	int64_t m = floor_min(after - off);
	struct tfields f = t_split(m);
	for (int64_t i = 0; i < REF_SCAN_MINUTES; i++, m += 60, step_fwd(&f))
		if (m + off > after && ref_match(r, &f))
			return m + off;
	return INT64_MAX;
}

static int64_t ref_prev(const struct ref *r, int64_t off, int64_t at)
{
	int64_t m = floor_min(at - off);
	struct tfields f = t_split(m);
	for (int64_t i = 0; i < REF_SCAN_MINUTES; i++, m -= 60, step_back(&f))
		if (ref_match(r, &f))
			return m + off;
	return INT64_MIN;
}

/* Never fires by the definition: only the day of the month decides (weekday '*') and no
 * chosen day exists in a chosen month (February having 29 days in leap years). */
static bool ref_never(const struct ref *r)
{
	if (!r->wstar)
		return false;
	for (int m = 1; m <= 12; m++)
		for (int d = 1; d <= (m == 2 ? 29 : t_mlen(2001, m)); d++)
			if (((r->set[3] >> m) & 1) && ((r->set[2] >> d) & 1))
				return false;
	return true;
}

/* Checks next/prev at t against the reference and the symmetry properties. */
static int check_at(const char *spec, const struct schedule *sc, int64_t off, int64_t t,
		    int64_t want_next, int64_t want_prev)
{
	int64_t n = schedule_next(sc, off, t), p = schedule_prev(sc, off, t);
	char b1[32], b2[32], b3[32];
	int failures = 0;

	if (n != want_next || p != want_prev) {
		print_error("\"%s\" offset %" PRId64 " at %s:\n got: next %s prev %s\n", spec, off,
			    iso_of(t, b1), iso_of(n, b2), iso_of(p, b3));
		print_error(" want: next %s prev %s\n", iso_of(want_next, b2), iso_of(want_prev, b3));
		return 1;
	}
	if (n == INT64_MAX || p == INT64_MIN)
		return 0;
	/* p <= t < n, no slot between them, and each is its own slot */
	if (!(p <= t && t < n) || schedule_prev(sc, off, n - 1) != p || schedule_next(sc, off, p) != n ||
	    schedule_prev(sc, off, n) != n || schedule_next(sc, off, n - 1) != n ||
	    schedule_prev(sc, off, p) != p) {
		print_error("\"%s\" offset %" PRId64 " at %s: next %s prev %s not symmetric\n", spec, off,
			    iso_of(t, b1), iso_of(n, b2), iso_of(p, b3));
		failures++;
	}
	return failures;
}

static void test_cron_random(void **state)
{
	(void)state;
	static const struct {
		int lo, hi, star_pct;
	} fields[5] = { { 0, 59, 25 }, { 0, 23, 40 }, { 1, 31, 50 }, { 1, 12, 70 }, { 0, 7, 50 } };
	const int64_t lo = iso("1890-01-01T00:00:00Z"), hi = iso("2210-01-01T00:00:00Z");
	int failures = 0, specs = 0, never = 0, checks = 0;

	for (int i = 0; i < 1500 && failures < 10; i++) {
		struct gen_field g[5];
		struct ref r;
		struct schedule sc;
		char spec[512], *err = NULL;

		for (int k = 0; k < 5; k++) {
			gen_field(&g[k], fields[k].lo, fields[k].hi, fields[k].star_pct);
			r.set[k] = g[k].set;
		}
		if (i % 16 == 0) { /* short months and late days: sometimes never fires */
			static const struct {
				const char *text;
				uint64_t set;
			} md[] = { { "30", 1u << 30 }, { "31", 1u << 31 }, { "30,31", 3u << 30 },
				   { "29-31/2", 5u << 29 }, { "29", 1u << 29 } },
			  mo[] = { { "2", 1u << 2 }, { "4,6", 5u << 4 }, { "2,4,6,9,11", 0xa54 },
				   { "2-4/2", 5u << 2 }, { "11", 1u << 11 }, { "1,2", 3u << 1 } };
			int a = rnd_in(0, 4), b = rnd_in(0, 5);
			strcpy(g[2].text, md[a].text);
			g[2].set = r.set[2] = md[a].set;
			g[2].star = false;
			strcpy(g[3].text, mo[b].text);
			g[3].set = r.set[3] = mo[b].set;
			g[3].star = false;
		}
		r.mstar = g[2].star;
		r.wstar = g[4].star;
		snprintf(spec, sizeof spec, "cron %s %s %s %s %s", g[0].text, g[1].text, g[2].text,
			 g[3].text, g[4].text);
		int rc = schedule_parse(spec, &sc, &err);
		if (ref_never(&r)) {
			if (rc != -1 || !strstr(err, "never fires")) {
				print_error("\"%s\":\n got: %d %s\n want: never fires\n", spec, rc,
					    err ? err : "accepted");
				failures++;
			}
			free(err);
			never++;
			continue;
		}
		if (rc != 0) {
			print_error("\"%s\":\n got: %s\n want: accepted\n", spec, err);
			free(err);
			failures++;
			continue;
		}
		if (sc.kind != SCHEDULE_CRON || sc.interval_s != 60 || sc.minute != r.set[0] ||
		    sc.hour != r.set[1] || sc.mday != r.set[2] || sc.month != r.set[3] ||
		    sc.wday != r.set[4] || sc.mday_star != r.mstar || sc.wday_star != r.wstar) {
			print_error("\"%s\": parsed sets differ from the generated ones\n", spec);
			failures++;
			continue;
		}
		specs++;
		for (int j = 0; j < 2; j++) {
			int64_t off = rnd_in(1, 5) == 1 ? rnd64(-200, 200) : rnd64(0, 59);
			int64_t t = rnd64(lo, hi);
			if (j == 1) /* exactly on, or just before, a slot */
				t = ref_next(&r, off, t) - rnd_in(0, 1);
			failures += check_at(spec, &sc, off, t, ref_next(&r, off, t), ref_prev(&r, off, t));
			checks++;
		}
	}
	print_message("%d random cron specs (%d never firing), %d times checked\n", specs, never,
		      checks);
	assert_true(specs > 1300 && never > 0);
	assert_int_equal(failures, 0);
}

/* EVERY against a stepping reference: k = trunc((t - off) / iv), then adjust. */
static int64_t every_ref_next(int64_t iv, int64_t off, int64_t t)
{
	int64_t c = off + (t - off) / iv * iv;
	while (c <= t)
		c += iv;
	while (c - iv > t)
		c -= iv;
	return c;
}

static int64_t every_ref_prev(int64_t iv, int64_t off, int64_t t)
{
	int64_t c = off + (t - off) / iv * iv;
	while (c > t)
		c -= iv;
	while (c + iv <= t)
		c += iv;
	return c;
}

static void test_every_random(void **state)
{
	(void)state;
	static const char *const specs[] = {
		"hourly", "daily", "weekly", "every 90s", "every 1s", "every 7s", "every 15m",
		"every 1h30m", "every 1d1s", "every 10w",
	};
	int failures = 0;

	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		struct schedule sc = parse_or_fail(specs[i]);
		for (int j = 0; j < 500 && failures < 10; j++) {
			char name[32];
			int64_t off;
			snprintf(name, sizeof name, "seed-%d", j);
			switch (j % 4) {
			case 0: off = schedule_offset(&sc, name); break;
			case 1: off = rnd64(-3 * sc.interval_s, 3 * sc.interval_s); break;
			case 2: off = rnd64(-INT64_C(1000000000000), INT64_C(1000000000000)); break;
			default: off = 0; break;
			}
			int64_t t = rnd64(-INT64_C(5000000000), INT64_C(10000000000));
			if (j % 3 == 0)
				t = every_ref_next(sc.interval_s, off, t) - (j % 2);
			failures += check_at(specs[i], &sc, off, t, every_ref_next(sc.interval_s, off, t),
					     every_ref_prev(sc.interval_s, off, t));
		}
	}
	assert_int_equal(failures, 0);
}

/* ---- offsets ---- */

static void test_offset(void **state)
{
	(void)state;
	/* FNV-1a 64 of "", "a" and "foobar" (the published test vectors) */
	static const struct {
		const char *name;
		uint64_t hash;
	} vec[] = {
		{ "", UINT64_C(0xcbf29ce484222325) },
		{ "a", UINT64_C(0xaf63dc4c8601ec8c) },
		{ "foobar", UINT64_C(0x85944171f73967e8) },
	};
	static const char *const specs[] = { "hourly", "daily", "weekly", "every 90s", "every 1s",
					      "cron */5 * * * *" };
	int failures = 0;

	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		struct schedule sc = parse_or_fail(specs[i]);
		uint64_t period = sc.kind == SCHEDULE_CRON ? 60 : (uint64_t)sc.interval_s;
		for (size_t k = 0; k < sizeof vec / sizeof vec[0]; k++) {
			int64_t got = schedule_offset(&sc, vec[k].name);
			if (got != (int64_t)(vec[k].hash % period)) {
				print_error("offset(\"%s\", \"%s\"):\n got: %" PRId64 "\n want: %" PRIu64
					    "\n", specs[i], vec[k].name, got, vec[k].hash % period);
				failures++;
			}
		}
		for (int k = 0; k < 1000; k++) {
			char name[32];
			snprintf(name, sizeof name, "seed-%d", k);
			int64_t o = schedule_offset(&sc, name);
			if (o < 0 || (uint64_t)o >= period || o != schedule_offset(&sc, name)) {
				print_error("offset(\"%s\", \"%s\") = %" PRId64 ": out of range or unstable\n",
					    specs[i], name, o);
				failures++;
			}
		}
	}
	assert_int_equal(failures, 0);
}

/* 500 names spread: for hourly, ~467 distinct seconds are expected out of 3600 (the birthday
 * bound), every minute of the hour used about 8 times; for daily, ~499 of 86400. */
static void test_offset_spread(void **state)
{
	(void)state;
	struct schedule hourly = parse_or_fail("hourly"), daily = parse_or_fail("daily"),
			cron = parse_or_fail("cron * * * * *");
	static bool sec_h[3600], sec_d[86400];
	int per_min[60] = { 0 }, per_sec[60] = { 0 }, dh = 0, dd = 0, mins = 0, max_min = 0, secs = 0;

	for (int k = 0; k < 500; k++) {
		char name[32];
		snprintf(name, sizeof name, "seed-%d.example", k);
		int64_t h = schedule_offset(&hourly, name), d = schedule_offset(&daily, name);
		int64_t c = schedule_offset(&cron, name);
		dh += !sec_h[h];
		sec_h[h] = true;
		dd += !sec_d[d];
		sec_d[d] = true;
		per_min[h / 60]++;
		per_sec[c]++;
	}
	for (int i = 0; i < 60; i++) {
		mins += per_min[i] > 0;
		secs += per_sec[i] > 0;
		if (per_min[i] > max_min)
			max_min = per_min[i];
	}
	print_message("hourly: %d distinct seconds, %d minutes (max %d per minute); daily: %d; "
		      "cron: %d seconds\n", dh, mins, max_min, dd, secs);
	assert_true(dh > 440);
	assert_true(mins >= 55 && max_min <= 25);
	assert_true(dd >= 490);
	assert_true(secs >= 55);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_calendar_helper),
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_next_table),
		cmocka_unit_test(test_prev_table),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_cron_random),
		cmocka_unit_test(test_every_random),
		cmocka_unit_test(test_offset),
		cmocka_unit_test(test_offset_spread),
	};
	return cmocka_run_group_tests_name("schedule", tests, NULL, NULL);
}
