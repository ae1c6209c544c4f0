/* Seed schedules: the one parser (conf_schedule_check uses it too) and fire times in UTC.
 * Civil dates use Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian,
 * exact for any int64 day count we use); no libc time functions, no time zones. Cron search
 * skips months, days and hours that cannot match, so a call costs at most a few hundred
 * steps even for "cron 0 0 29 2 *". */
#include "schedule.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conf_internal.h"
#include "duration.h"
#include "strbuf.h"
#include "xalloc.h"

#define DAY_S INT64_C(86400)
#define HORIZON_DAYS (SCHEDULE_HORIZON_S / DAY_S)
#define CRON_LIMIT_S (INT64_C(1) << 62) /* cron arithmetic domain: +-2^62 seconds */


/* ---- civil dates (UTC) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
	int64_t r = a % b;
	return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int dim[13] = { 0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : dim[m];
}

/* ---- bit sets ---- */

/* Lowest set bit >= from, or -1. */
static int bit_next(uint64_t mask, int from)
{
	if (from < 0)
		from = 0;
	if (from > 63)
		return -1;
	mask &= ~UINT64_C(0) << from;
	return mask ? __builtin_ctzll(mask) : -1;
}

/* Highest set bit <= upto, or -1. */
static int bit_prev(uint64_t mask, int upto)
{
	if (upto < 0)
		return -1;
	if (upto < 63)
		mask &= (UINT64_C(2) << upto) - 1;
	return mask ? 63 - __builtin_clzll(mask) : -1;
}

/* ---- parsing ---- */

static bool word_is(const char *s, const char *word, const char **rest)
{
	size_t n = strlen(word);
	if (strncmp(s, word, n) != 0 || (s[n] && s[n] != ' ' && s[n] != '\t'))
		return false;
	*rest = s + n + strspn(s + n, " \t");
	return true;
}

/* Reads a number at *p, capped at 9999; returns -1 when there is none. */
static int cron_num(const char **p)
{
	int v = 0, n = 0;
	while (**p >= '0' && **p <= '9') {
		if (n < 4)
			v = v * 10 + (**p - '0');
		else
			v = 9999;
		n++;
		(*p)++;
	}
	return n ? v : -1;
}

/* One cron field of length len into *bits: items separated by ',', each "*", "N" or "N-M",
 * with an optional "/STEP" after "*" or a range. *star: the field is exactly "*". */
static int cron_field(const char *whole, const char *f, size_t len, const char *what, int lo, int hi,
		      uint64_t *bits, bool *star, char **err)
{
	char *field = xstrndup(f, len);
	const char *p = field;
	int rc = 0;

	*bits = 0;
	*star = strcmp(field, "*") == 0;
	for (;;) {
		int a, b, step = 1;
		bool range;
		if (*p == '*') {
			a = lo;
			b = hi;
			range = true;
			p++;
		} else {
			if ((a = cron_num(&p)) < 0) {
				rc = conf_failq(err, whole, "has a bad %s field \"%s\" (numbers, '*', ',', '-' "
						       "and '/')", what, field);
				break;
			}
			b = a;
			range = false;
			if (*p == '-') {
				p++;
				if ((b = cron_num(&p)) < 0) {
					rc = conf_failq(err, whole, "has a bad %s field \"%s\" (a range needs two "
							       "numbers)", what, field);
					break;
				}
				range = true;
			}
			if (a < lo || a > hi || b < lo || b > hi) {
				rc = conf_failq(err, whole, "has %s %d out of range %d-%d", what,
					   (a < lo || a > hi) ? a : b, lo, hi);
				break;
			}
			if (a > b) {
				rc = conf_failq(err, whole, "has a backwards %s range %d-%d", what, a, b);
				break;
			}
		}
		if (*p == '/') {
			p++;
			step = cron_num(&p);
			if (!range) {
				rc = conf_failq(err, whole, "has a step in the %s field without '*' or a range "
						       "before it", what);
				break;
			}
			if (step < 1 || step > hi) {
				rc = conf_failq(err, whole, "has a bad step in the %s field (1 to %d)", what, hi);
				break;
			}
		}
		for (int v = a; v <= b; v += step)
			*bits |= UINT64_C(1) << v;
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p) {
			rc = conf_failq(err, whole, "has a bad %s field \"%s\" (numbers, '*', ',', '-' and "
					       "'/')", what, field);
		}
		break;
	}
	free(field);
	return rc;
}

/* True when some day of the day field exists in some month of the month field. Only asked
 * when the weekday field is '*' (otherwise the weekday alone makes days match). */
static bool cron_day_exists(const struct schedule *sc)
{
	int first = bit_next(sc->mday, 1);

	for (int m = 1; m <= 12; m++)
		if (((sc->month >> m) & 1) && first != -1 && first <= (m == 2 ? 29 : days_in_month(2001, m)))
			return true;
	return false;
}

static int cron_parse(const char *whole, const char *spec, struct schedule *sc, char **err)
{
	static const struct {
		const char *what;
		int lo, hi;
	} fields[5] = {
		{ "minute", 0, 59 }, { "hour", 0, 23 }, { "day", 1, 31 }, { "month", 1, 12 },
		{ "weekday", 0, 7 },
	};
	const char *start[6];
	size_t len[6];
	uint64_t bits[5];
	bool star[5];
	int n = 0;

	for (const char *p = spec; *p;) {
		p += strspn(p, " \t");
		if (!*p)
			break;
		size_t l = strcspn(p, " \t");
		if (n < 6) {
			start[n] = p;
			len[n] = l;
		}
		n++;
		p += l;
	}
	if (n != 5)
		return conf_failq(err, whole, "needs 5 cron fields (minute hour day month weekday), not %d",
			     n);
	for (int i = 0; i < 5; i++)
		if (cron_field(whole, start[i], len[i], fields[i].what, fields[i].lo, fields[i].hi,
			       &bits[i], &star[i], err))
			return -1;
	if (bits[4] & (UINT64_C(1) << 7))
		bits[4] = (bits[4] & ~(UINT64_C(1) << 7)) | 1; /* 7 is Sunday */
	memset(sc, 0, sizeof *sc);
	sc->kind = SCHEDULE_CRON;
	sc->interval_s = 60;
	sc->minute = bits[0];
	sc->hour = (uint32_t)bits[1];
	sc->mday = (uint32_t)bits[2];
	sc->month = (uint16_t)bits[3];
	sc->wday = (uint8_t)bits[4];
	sc->mday_star = star[2];
	sc->wday_star = star[4];
	if (sc->wday_star && !cron_day_exists(sc))
		return conf_failq(err, whole, "never fires: none of its days exists in its months (February "
					 "has 29 days at most; April, June, September and November 30)");
	return 0;
}

int schedule_parse(const char *s, struct schedule *out, char **err)
{
	struct schedule sc;
	const char *rest;

	*err = NULL;
	memset(&sc, 0, sizeof sc);
	sc.kind = SCHEDULE_EVERY;
	if (!s || !*s)
		return conf_fail(err, "empty schedule (use \"hourly\", \"daily\", \"weekly\", \"every "
				 "DURATION\" or \"cron MIN HOUR DAY MONTH WEEKDAY\")");
	if (strcmp(s, "hourly") == 0) {
		sc.interval_s = 3600;
	} else if (strcmp(s, "daily") == 0) {
		sc.interval_s = DAY_S;
	} else if (strcmp(s, "weekly") == 0) {
		sc.interval_s = 7 * DAY_S;
	} else if (word_is(s, "every", &rest)) {
		const char *derr;
		int64_t ms;
		if (!*rest)
			return conf_failq(err, s, "needs a duration, e.g. \"every 15m\"");
		char *d = xstrndup(rest, strcspn(rest, " \t"));
		bool trailing = rest[strlen(d) + strspn(rest + strlen(d), " \t")] != '\0';
		int rc = 0;
		if (trailing)
			rc = conf_failq(err, s, "has more than one duration (write \"every 1h30m\")");
		else if (duration_parse(d, &ms, &derr) < 0)
			rc = conf_failq(err, s, "has a bad duration: %s", derr);
		else if (ms <= 0)
			rc = conf_failq(err, s, "needs an interval greater than zero");
		else if (ms < 1000)
			rc = conf_failq(err, s, "needs an interval of at least 1s");
		else if (ms % 1000 != 0)
			rc = conf_failq(err, s, "needs a whole number of seconds");
		free(d);
		if (rc)
			return rc;
		sc.interval_s = ms / 1000;
	} else if (word_is(s, "cron", &rest)) {
		if (cron_parse(s, rest, &sc, err))
			return -1;
	} else {
		return conf_failq(err, s, "is not a schedule (use \"hourly\", \"daily\", \"weekly\", \"every "
				     "DURATION\" or \"cron MIN HOUR DAY MONTH WEEKDAY\")");
	}
	*out = sc;
	return 0;
}

/* ---- offsets ---- */

int64_t schedule_offset(const struct schedule *s, const char *seed_name)
{
	uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a 64 */
	int64_t period = s->kind == SCHEDULE_CRON ? 60 : s->interval_s;

	for (const unsigned char *p = (const unsigned char *)(seed_name ? seed_name : ""); *p; p++) {
		h ^= *p;
		h *= UINT64_C(1099511628211);
	}
	if (period <= 0)
		return 0;
	return (int64_t)(h % (uint64_t)period);
}

/* ---- fire times: EVERY ---- */

/* (t - offset) mod iv in [0, iv), without overflow. */
static int64_t every_phase(int64_t iv, int64_t offset, int64_t t)
{
	return floor_mod(floor_mod(t, iv) - floor_mod(offset, iv), iv);
}

static int64_t every_next(int64_t iv, int64_t offset, int64_t after)
{
	int64_t step = iv - every_phase(iv, offset, after); /* (0, iv] */
	if (step > SCHEDULE_HORIZON_S || after > INT64_MAX - step)
		return INT64_MAX;
	return after + step;
}

static int64_t every_prev(int64_t iv, int64_t offset, int64_t at)
{
	int64_t back = every_phase(iv, offset, at); /* [0, iv) */
	if (back > SCHEDULE_HORIZON_S || at < INT64_MIN + back)
		return INT64_MIN;
	return at - back;
}

/* ---- fire times: CRON ---- */

/* A position in the search: day number, its civil date, and the time of day. */
struct cpos {
	int64_t day, y;
	int mon, mday, hour, min;
};

static void cpos_set(struct cpos *c, int64_t t)
{
	int64_t sod;

	c->day = floor_div(t, DAY_S);
	sod = t - c->day * DAY_S;
	days_to_civil(c->day, &c->y, &c->mon, &c->mday);
	c->hour = (int)(sod / 3600);
	c->min = (int)(sod % 3600 / 60);
}

/* Moves to day dd of month m of year y (dd valid for that month), at time h:mi. */
static void cpos_goto(struct cpos *c, int64_t y, int m, int dd, int h, int mi)
{
	c->y = y;
	c->mon = m;
	c->mday = dd;
	c->day = civil_to_days(y, m, dd);
	c->hour = h;
	c->min = mi;
}

static bool cron_day_match(const struct schedule *s, const struct cpos *c)
{
	bool md = (s->mday >> c->mday) & 1;
	bool wd = (s->wday >> floor_mod(c->day + 4, 7)) & 1; /* 1970-01-01 was a Thursday */

	if (s->mday_star || s->wday_star)
		return md && wd;
	return md || wd;
}

/* First day of the first month in the set after the current one, 00:00. */
static void cron_next_month(const struct schedule *s, struct cpos *c)
{
	int m = bit_next(s->month & 0x1ffe, c->mon + 1);
	int64_t y = c->y;

	if (m < 1) {
		y++;
		m = bit_next(s->month & 0x1ffe, 1);
	}
	cpos_goto(c, y, m, 1, 0, 0);
}

/* Last day of the last month in the set before the current one, 23:59. */
static void cron_prev_month(const struct schedule *s, struct cpos *c)
{
	int m = bit_prev(s->month & 0x1ffe, c->mon - 1);
	int64_t y = c->y;

	if (m < 1) {
		y--;
		m = bit_prev(s->month & 0x1ffe, 12);
	}
	cpos_goto(c, y, m, days_in_month(y, m), 23, 59);
}

static void cron_next_day(const struct schedule *s, struct cpos *c)
{
	if (c->mday < days_in_month(c->y, c->mon))
		cpos_goto(c, c->y, c->mon, c->mday + 1, 0, 0);
	else if (c->mon < 12 && ((s->month >> (c->mon + 1)) & 1))
		cpos_goto(c, c->y, c->mon + 1, 1, 0, 0);
	else
		cron_next_month(s, c);
}

static void cron_prev_day(const struct schedule *s, struct cpos *c)
{
	if (c->mday > 1)
		cpos_goto(c, c->y, c->mon, c->mday - 1, 23, 59);
	else
		cron_prev_month(s, c);
}

static bool cron_sets_ok(const struct schedule *s)
{
	return (s->minute & ((UINT64_C(1) << 60) - 1)) && (s->hour & 0xffffff) &&
	       (s->month & 0x1ffe) && (s->mday & 0xfffffffe) && (s->wday & 0x7f);
}

/* Smallest matching minute start >= t (t a multiple of 60), searching up to the horizon;
 * false when there is none. */
static bool cron_find_next(const struct schedule *s, int64_t t, int64_t *out)
{
	struct cpos c;
	int64_t limit;

	cpos_set(&c, t);
	limit = c.day + HORIZON_DAYS + 1;
	while (c.day <= limit) {
		if (!((s->month >> c.mon) & 1)) {
			cron_next_month(s, &c);
			continue;
		}
		if (!cron_day_match(s, &c)) {
			if (s->wday_star) { /* only the day of the month decides: jump to it */
				int nd = bit_next(s->mday, c.mday + 1);
				if (nd > 0 && nd <= days_in_month(c.y, c.mon))
					cpos_goto(&c, c.y, c.mon, nd, 0, 0);
				else
					cron_next_month(s, &c);
			} else {
				cron_next_day(s, &c);
			}
			continue;
		}
		int h = bit_next(s->hour & 0xffffff, c.hour);
		if (h < 0) {
			cron_next_day(s, &c);
			continue;
		}
		if (h > c.hour) {
			c.hour = h;
			c.min = 0;
		}
		int m = bit_next(s->minute & ((UINT64_C(1) << 60) - 1), c.min);
		if (m < 0) {
			if (c.hour == 23) {
				cron_next_day(s, &c);
			} else {
				c.hour++;
				c.min = 0;
			}
			continue;
		}
		*out = c.day * DAY_S + c.hour * 3600 + m * 60;
		return true;
	}
	return false;
}

/* Largest matching minute start <= t (t a multiple of 60), searching back to the horizon. */
static bool cron_find_prev(const struct schedule *s, int64_t t, int64_t *out)
{
	struct cpos c;
	int64_t limit;

	cpos_set(&c, t);
	limit = c.day - HORIZON_DAYS - 1;
	while (c.day >= limit) {
		if (!((s->month >> c.mon) & 1)) {
			cron_prev_month(s, &c);
			continue;
		}
		if (!cron_day_match(s, &c)) {
			if (s->wday_star) {
				int pd = bit_prev(s->mday, c.mday - 1);
				if (pd >= 1)
					cpos_goto(&c, c.y, c.mon, pd, 23, 59);
				else
					cron_prev_month(s, &c);
			} else {
				cron_prev_day(s, &c);
			}
			continue;
		}
		int h = bit_prev(s->hour & 0xffffff, c.hour);
		if (h < 0) {
			cron_prev_day(s, &c);
			continue;
		}
		if (h < c.hour) {
			c.hour = h;
			c.min = 59;
		}
		int m = bit_prev(s->minute & ((UINT64_C(1) << 60) - 1), c.min);
		if (m < 0) {
			if (c.hour == 0) {
				cron_prev_day(s, &c);
			} else {
				c.hour--;
				c.min = 59;
			}
			continue;
		}
		*out = c.day * DAY_S + c.hour * 3600 + m * 60;
		return true;
	}
	return false;
}

static int64_t cron_next(const struct schedule *s, int64_t offset, int64_t after)
{
	int64_t base, m;

	if (!cron_sets_ok(s) || __builtin_sub_overflow(after, offset, &base) || base >= CRON_LIMIT_S ||
	    base < -CRON_LIMIT_S)
		return INT64_MAX;
	/* first minute start M with M + offset > after, i.e. M > base */
	if (!cron_find_next(s, (floor_div(base, 60) + 1) * 60, &m) || m - base > SCHEDULE_HORIZON_S)
		return INT64_MAX;
	if (__builtin_add_overflow(m, offset, &m))
		return INT64_MAX;
	return m;
}

static int64_t cron_prev(const struct schedule *s, int64_t offset, int64_t at)
{
	int64_t base, m;

	if (!cron_sets_ok(s) || __builtin_sub_overflow(at, offset, &base) || base >= CRON_LIMIT_S ||
	    base < -CRON_LIMIT_S)
		return INT64_MIN;
	/* last minute start M with M + offset <= at, i.e. M <= base */
	if (!cron_find_prev(s, floor_div(base, 60) * 60, &m) || base - m > SCHEDULE_HORIZON_S)
		return INT64_MIN;
	if (__builtin_add_overflow(m, offset, &m))
		return INT64_MIN;
	return m;
}

/* ---- public ---- */

int64_t schedule_next(const struct schedule *s, int64_t offset, int64_t after)
{
	if (s->kind == SCHEDULE_CRON)
		return cron_next(s, offset, after);
	if (s->interval_s <= 0)
		return INT64_MAX;
	return every_next(s->interval_s, offset, after);
}

int64_t schedule_prev(const struct schedule *s, int64_t offset, int64_t at)
{
	if (s->kind == SCHEDULE_CRON)
		return cron_prev(s, offset, at);
	if (s->interval_s <= 0)
		return INT64_MIN;
	return every_prev(s->interval_s, offset, at);
}
