/* The latest result per seed from the detail log (state_dir/results.jsonl, and before it
 * results.jsonl.1 when logrotate left one uncompressed): the last final line of each seed, what
 * it says, how many final results in a row had the same state, and whether a newer attempt
 * (a retry) is pending. For `graph` (the dashboard) and `status`. */
#ifndef MON_CLI_LATEST_H
#define MON_CLI_LATEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A seed's state from its last final result. */
enum latest_state {
	LATEST_OK = 0,     /* accepted; read back where expect_folder says, or not read back */
	LATEST_LATE,       /* found after it had been reported missing (readback.late) */
	LATEST_JUNK,       /* found in the junk folder */
	LATEST_MISPLACED,  /* found in another folder than expect_folder */
	LATEST_MISSING,    /* accepted, never found within readback.timeout */
	LATEST_BOUNCED,    /* accepted, then bounced (a DSN came back) */
	LATEST_RB_ERROR,   /* accepted, the readback failed (IMAP login, connection, ...) */
	LATEST_DEFERRED,   /* smtp.outcome deferred (a 4xx decided it, retries exhausted) */
	LATEST_REJECTED,   /* 5xx */
	LATEST_FAILED,     /* no reply: DNS, connection, timeout, TLS */
	LATEST_UNKNOWN,    /* the connection died after the message was sent */
	LATEST_STATE__COUNT,
};

/* "ok", "late", "junk", "misplaced", "missing", "bounced", "readback error", "deferred",
 * "rejected", "failed", "unknown"; NULL out of range. */
const char *latest_state_name(enum latest_state s);
/* OK: false; LATE, JUNK, MISPLACED, DEFERRED: a warning; the others: a failure. */
bool latest_state_warn(enum latest_state s);

struct latest_result {
	char *seed;
	char *line;             /* the last final line, as logged */
	char *probe_id;
	char *vantage;          /* "" when none */
	int64_t sent_ms;        /* sent_at (Unix ms) */
	enum latest_state state;
	/* smtp */
	char *outcome;          /* accepted deferred rejected failed unknown */
	char *stage;
	int code;               /* 0: none */
	char *enhanced;
	char *text;             /* the deciding reply's text, "" when none */
	char *error;            /* "" when none */
	char *mx;
	int attempts;           /* SMTP attempts of the probe */
	double accepted_after_s; /* NaN unless accepted */
	double total_ms;        /* smtp.ms.total, NaN when absent */
	/* readback */
	char *rb_status;        /* found missing bounced error skipped ("" when absent) */
	char *folder;           /* "" unless found */
	bool junk;
	double delivery_s;      /* NaN when unknown */
	char *rb_error;         /* "" when none */
	/* diagnosis ("" when the line has none) */
	char *cause;
	char *next_step;
	char *rule;
	/* history: final results in a row with this state, the first of them sent at run_since_ms */
	unsigned run;
	int64_t run_since_ms;
	int64_t last_ok_ms;     /* sent_at of the last final result in state OK; 0: none seen */
	/* a newer attempt than the last final line: a retry pending or a readback going on */
	bool pending;
	char *pending_what;     /* e.g. "attempt 2 deferred at rcpt, retry at 2026-...Z"; "" */
};

struct latest_results {
	struct latest_result *v; /* in order of first appearance in the log */
	size_t n;
	size_t lines;            /* lines read */
	size_t bad_lines;        /* lines that were not a JSON result (skipped) */
	size_t partial_lines;    /* a last line without its newline (being written: skipped) */
};

/* Reads state_dir/results.jsonl.1 (if there) and state_dir/results.jsonl. A missing log is no
 * error (no seeds). A file's last line without a trailing newline is one being written: skipped. Returns 0, or -1 with *err (owned) when a file exists but cannot be read;
 * out is then empty. Release with latest_results_fini() in every case. */
int latest_results_load(const char *state_dir, struct latest_results *out, char **err);
void latest_results_fini(struct latest_results *r);
/* One final result line (DESIGN.md's contract) read as its seed's only result: out gets its
 * fields and state (run 1). Returns 0, or -1 when the line is not a probe result. Release with
 * latest_result_fini() in every case. line borrowed. */
int latest_result_parse(const char *line, struct latest_result *out);
void latest_result_fini(struct latest_result *r);
/* The seed's entry, or NULL. */
const struct latest_result *latest_find(const struct latest_results *r, const char *seed);

#endif
