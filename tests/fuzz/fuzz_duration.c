/* Fuzz target: durations with units ("1h30m", duration_parse) and the schedules built on them
 * ("every 15m", "cron 0 6 * * 1-5", conf_schedule_check), both straight from the configuration.
 *
 * Input: the string (up to the first NUL byte). duration_parse is compared with a reference
 * that does its arithmetic without overflow, and every accepted value must survive
 * duration_format and a second parse unchanged. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "duration.h"
#include "support.h"

#define MAX_MS (INT64_C(10) * 366 * 86400000) /* duration.c: "ten years is plenty" */

/* Reference parser: 0 and *ms, or -1. */
static int ref_parse(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 }, { "w", 604800000 },
	};
	int64_t total = 0;

	if (!*s)
		return -1;
	while (*s) {
		int64_t n = 0;
		if (*s < '0' || *s > '9')
			return -1;
		for (; *s >= '0' && *s <= '9'; s++) {
			n = n * 10 + (*s - '0');
			if (n > MAX_MS)
				return -1;
		}
		size_t u;
		for (u = 0; u < sizeof units / sizeof units[0]; u++) {
			size_t ul = strlen(units[u].unit);
			if (strncmp(s, units[u].unit, ul) == 0 && (s[ul] == '\0' || (s[ul] >= '0' && s[ul] <= '9')))
				break;
		}
		if (u == sizeof units / sizeof units[0])
			return -1;
		s += strlen(units[u].unit);
		/* total + n * unit <= MAX_MS, checked without overflowing */
		if (n > (MAX_MS - total) / units[u].ms)
			return -1;
		total += n * units[u].ms;
	}
	*ms = total;
	return 0;
}

static void check_schedule(const char *s)
{
	char *err = (char *)"not touched";
	int rc = conf_schedule_check(s, &err);
	FUZZ_CHECK((rc == 0 && err == NULL) || (rc == -1 && err != NULL && err[0] != '\0'),
		   "conf_schedule_check(\"%s\") = %d with err %s", s, rc, err ? err : "NULL");
	free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';

	int64_t ms = -12345, ref_ms = 0;
	const char *err = NULL;
	int rc = duration_parse(s, &ms, &err);
	int ref = ref_parse(s, &ref_ms);

	FUZZ_CHECK(rc == 0 || rc == -1, "duration_parse returned %d", rc);
	FUZZ_CHECK(rc == ref, "duration_parse(\"%s\") = %d (ms %lld), reference says %d%s", s, rc,
		   (long long)ms, ref, ref ? " (invalid or more than ten years)" : "");
	if (rc == 0) {
		FUZZ_CHECK(ms == ref_ms, "duration_parse(\"%s\") = %lld ms, want %lld", s, (long long)ms,
			   (long long)ref_ms);
		FUZZ_CHECK(ms >= 0 && ms <= MAX_MS, "duration_parse(\"%s\") = %lld ms", s, (long long)ms);
		char buf[32];
		int64_t again = -1;
		const char *err2 = NULL;
		duration_format(ms, buf, sizeof buf);
		FUZZ_CHECK(duration_parse(buf, &again, &err2) == 0 && again == ms,
			   "\"%s\" = %lld ms formats as \"%s\", which parses as %lld", s, (long long)ms, buf,
			   (long long)again);
	} else {
		FUZZ_CHECK(err != NULL && err[0] != '\0', "duration_parse(\"%s\") failed without a message", s);
	}

	/* The same text as a schedule, and after "every ": accepted exactly when it is a duration
	 * of whole seconds, at least one. */
	check_schedule(s);
	if (size < 4096 && s[0] && !strpbrk(s, " \t")) {
		size_t n = strlen(s);
		char *every = malloc(n + 7);
		memcpy(every, "every ", 6);
		memcpy(every + 6, s, n + 1);
		char *serr = NULL;
		int src = conf_schedule_check(every, &serr);
		FUZZ_CHECK((src == 0) == (rc == 0 && ms >= 1000 && ms % 1000 == 0), "conf_schedule_check(\"%s\") = %d, duration_parse = %d",
			   every, src, rc);
		free(serr);
		free(every);
	}
	free(s);
	return 0;
}
