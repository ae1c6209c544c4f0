/* Durations with units: "250ms", "30s", "5m", "1h", "2d", "1w"; several terms may be
 * concatenated ("1h30m"). A bare number is refused: the unit is part of the value. */
#ifndef MON_UTIL_DURATION_H
#define MON_UTIL_DURATION_H

#include <stdint.h>

/* Parses s into milliseconds. Returns 0, or -1 with *err (static string) set. */
int duration_parse(const char *s, int64_t *ms, const char **err);
/* Formats ms as the shortest exact unit string ("5m", "90s", "1500ms") into buf. */
char *duration_format(int64_t ms, char *buf, unsigned long len);

#endif
