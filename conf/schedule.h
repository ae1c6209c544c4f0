/* Seed schedules: parsing ("hourly", "daily", "weekly", "every DURATION", "cron ...") and fire
 * times. Pure computation on int64 Unix seconds in UTC: no time zones, no libc time functions,
 * no allocation except the error message. */
#ifndef MON_CONF_SCHEDULE_H
#define MON_CONF_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

enum schedule_kind { SCHEDULE_EVERY = 0, SCHEDULE_CRON };
struct schedule {
	enum schedule_kind kind;
	int64_t interval_s;   /* EVERY: period in whole seconds (hourly 3600, daily 86400, weekly 604800, "every 90s" 90). CRON: 60 */
	uint64_t minute;      /* CRON: bit m set = minute m (0-59) */
	uint32_t hour;        /* bits 0-23 */
	uint32_t mday;        /* bits 1-31 */
	uint16_t month;       /* bits 1-12 */
	uint8_t wday;         /* bits 0-6, Sunday 0 (7 accepted in input as Sunday) */
	bool mday_star, wday_star; /* field was '*' (Vixie cron rule: when both day fields are restricted, a day matches if EITHER matches) */
};
/* Parses "hourly" | "daily" | "weekly" | "every DURATION" | "cron MIN HOUR DAY MONTH WEEKDAY". Returns 0, or -1 with *err an owned message that quotes s. Durations use util/duration.h duration_parse (ms); "every" must be >= 1s and a whole number of seconds; cron fields: numbers, '*', lists ',', ranges 'a-b', steps '/n' on '*' or ranges; a cron spec that can never fire (e.g. "cron 0 0 30 2 *", "cron 0 0 31 4,6,9,11 *") is an error ("never fires"). */
int schedule_parse(const char *s, struct schedule *out, char **err);
/* Deterministic per-seed offset in seconds, from the seed name (FNV-1a 64-bit of the name), used to spread seeds: EVERY: hash % interval_s; CRON: hash % 60. */
int64_t schedule_offset(const struct schedule *s, const char *seed_name);
/* Slots: EVERY: every t with (t - offset) % interval_s == 0 (aligned to the Unix epoch, UTC). CRON: every minute start M (UTC) matching the spec, plus offset seconds. */
/* Smallest slot strictly greater than after (Unix seconds). Returns INT64_MAX if none within 30 years. */
int64_t schedule_next(const struct schedule *s, int64_t offset, int64_t after);
/* Largest slot less than or equal to at. Returns INT64_MIN if none within 30 years before. */
int64_t schedule_prev(const struct schedule *s, int64_t offset, int64_t at);

/* Details of the contract above:
 * - schedule_parse: s is borrowed; out is written only on success; *err is NULL on success.
 *   Whitespace between words and cron fields is one or more spaces or tabs; none is allowed
 *   before the first word. The empty string's message ("empty schedule (...)") is the one
 *   message that does not quote s. "every 1w" and "weekly" are the same schedule; weekly
 *   slots with offset 0 fall on Thursdays 00:00 UTC (the epoch was a Thursday).
 * - Cron: "7" and ranges or steps reaching 7 in the weekday field mean Sunday. mday_star and
 *   wday_star are true only for a field that is exactly "*": a step or a list after the '*'
 *   restricts the field (POSIX; Vixie cron instead treats any field starting with '*' as
 *   unrestricted). Day rule: if either day field is '*', a day matches when both match
 *   (the '*' one always does); otherwise when either matches.
 * - "Within 30 years" means SCHEDULE_HORIZON_S (10958 days, the longest 30 Gregorian years):
 *   schedule_next returns INT64_MAX when the slot it would return lies more than that after
 *   `after` (schedule_prev: INT64_MIN, before `at`). A parsed schedule always has a slot
 *   within it (the sparsest, "cron M H 29 2 *", fires at most 8 years apart).
 * - offset may be any value (schedule_offset's are 0 <= offset < interval_s for EVERY, and
 *   < 60 for CRON). EVERY is exact over the whole int64 range (INT64_MAX / INT64_MIN only
 *   where the slot is not representable). CRON is computed for after - offset and
 *   at - offset within +-2^62 seconds; beyond that it returns INT64_MAX / INT64_MIN.
 * - A struct not made by schedule_parse is accepted: interval_s <= 0 for EVERY, or empty or
 *   impossible cron sets, give INT64_MAX / INT64_MIN (and offset 0). */
#define SCHEDULE_HORIZON_S (INT64_C(10958) * 86400)

#endif
