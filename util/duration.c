#include "duration.h"

#include <stdio.h>
#include <string.h>

int duration_parse(const char *s, int64_t *ms, const char **err)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "d", 86400000 }, { "w", 604800000 },
	};
	const int64_t max = INT64_C(10) * 366 * 86400000; /* ten years is plenty */
	int64_t total = 0;
	const char *p = s;

	if (!s || !*s) {
		*err = "empty duration";
		return -1;
	}
	while (*p) {
		if (*p < '0' || *p > '9') {
			*err = "expected a number followed by a unit (ms, s, m, h, d, w)";
			return -1;
		}
		int64_t n = 0;
		while (*p >= '0' && *p <= '9') {
			n = n * 10 + (*p++ - '0');
			if (n > max) {
				*err = "duration too large";
				return -1;
			}
		}
		size_t i, found = sizeof units / sizeof units[0];
		for (i = 0; i < sizeof units / sizeof units[0]; i++) {
			size_t ul = strlen(units[i].unit);
			if (strncmp(p, units[i].unit, ul) == 0 && (p[ul] == '\0' || (p[ul] >= '0' && p[ul] <= '9'))) {
				found = i;
				p += ul;
				break;
			}
		}
		if (found == sizeof units / sizeof units[0]) {
			*err = *p ? "unknown unit (use ms, s, m, h, d or w)" : "missing unit (use ms, s, m, h, d or w)";
			return -1;
		}
		if (n > (max - total) / units[found].ms) { /* checked before multiplying: no overflow */
			*err = "duration too large";
			return -1;
		}
		total += n * units[found].ms;
		if (total > max) {
			*err = "duration too large";
			return -1;
		}
	}
	*ms = total;
	return 0;
}

char *duration_format(int64_t ms, char *buf, unsigned long len)
{
	if (ms % 604800000 == 0 && ms)
		snprintf(buf, len, "%lldw", (long long)(ms / 604800000));
	else if (ms % 86400000 == 0 && ms)
		snprintf(buf, len, "%lldd", (long long)(ms / 86400000));
	else if (ms % 3600000 == 0 && ms)
		snprintf(buf, len, "%lldh", (long long)(ms / 3600000));
	else if (ms % 60000 == 0 && ms)
		snprintf(buf, len, "%lldm", (long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%llds", (long long)(ms / 1000));
	else
		snprintf(buf, len, "%lldms", (long long)ms);
	return buf;
}
