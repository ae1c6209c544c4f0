/* The detail log: one JSON line per finished probe in state_dir/results.jsonl. */
#ifndef MON_STORE_JSONLOG_H
#define MON_STORE_JSONLOG_H

#include <stdbool.h>

/* When the log is rotated (detail_log in the configuration): before a line is appended,
 * results.jsonl becomes results.jsonl.1 (.1 becomes .2, ..., up to .keep; the oldest is removed)
 * if the line would take it past max_bytes, or if daily and the file was last written on an
 * earlier UTC day. An empty file is never rotated. */
struct jsonlog_rotate {
	long long max_bytes; /* 0: no size limit */
	bool daily;
	int keep;            /* rotated files kept, >= 1 */
};

/* Appends line (without newline) plus "\n" with one write(2) on an O_APPEND descriptor, so that
 * concurrent writers never interleave and readers see whole lines. Creates state_dir if missing.
 * rot: rotate first when due (NULL: never; the writer holds the state lock, so one process
 * rotates). A failed rotation is reported in *rotate_err (owned, may be NULL) and the line is
 * still appended. Returns 0, or -1 with *err (owned). */
int jsonlog_append(const char *state_dir, const struct jsonlog_rotate *rot, const char *line, char **err,
		   char **rotate_err);

/* Whether the last MiB of state_dir/results.jsonl (continued into results.jsonl.1) holds the final result of probe_id (a line with
 * its "probe_id" and "final":true). For replaying the journal without duplicate lines. */
bool jsonlog_contains(const char *state_dir, const char *probe_id);

#endif
