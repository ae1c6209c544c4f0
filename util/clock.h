/* Clocks: monotonic for measuring, wall-clock only for reporting. */
#ifndef MON_UTIL_CLOCK_H
#define MON_UTIL_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t mono_us(void);   /* CLOCK_MONOTONIC in microseconds */
int64_t wall_ms(void);   /* CLOCK_REALTIME in milliseconds since the epoch */
/* Writes "2026-11-28T06:12:00.123Z" (UTC) into buf (>= 25 bytes); returns buf. */
char *iso8601_ms(int64_t epoch_ms, char *buf, size_t len);
/* RFC 5322 date-time, e.g. "Sat, 28 Nov 2026 06:12:00 +0000"; returns buf (>= 32 bytes). */
char *rfc5322_date(int64_t epoch_ms, char *buf, size_t len);

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1-12), for any year: Howard
 * Hinnant's days_from_civil. Pure arithmetic, no time zone. */
int64_t civil_to_days(int64_t y, int m, int d);
/* The inverse: the date of day z since 1970-01-01 (civil_from_days). */
void days_to_civil(int64_t z, int64_t *y, int *m, int *d);

#endif
