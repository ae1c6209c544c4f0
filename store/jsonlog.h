/* The detail log: one JSON line per finished probe in state_dir/results.jsonl. */
#ifndef MON_STORE_JSONLOG_H
#define MON_STORE_JSONLOG_H

#include <stdbool.h>

/* Appends line (without newline) plus "\n" with one write(2) on an O_APPEND descriptor, so that
 * concurrent writers never interleave and readers see whole lines. Creates state_dir if missing.
 * Returns 0, or -1 with *err (owned). */
int jsonlog_append(const char *state_dir, const char *line, char **err);

/* Whether the last MiB of state_dir/results.jsonl holds the final result of probe_id (a line with
 * its "probe_id" and "final":true). For replaying the journal without duplicate lines. */
bool jsonlog_contains(const char *state_dir, const char *probe_id);

#endif
