/* The journal: pending work in state_dir, written durably (fdatasync) before the action it stands
 * for, so that a restart after kill -9 continues where the last process stopped and never sends
 * the same attempt twice.
 *
 * File state_dir/journal, one record per line: "CRC32 TYPE key=value ...", values percent-encoded
 * (space, '%', control bytes), CRC32 (8 hex digits) over everything after the first space.
 * Records:
 *   seen  seed= slot=                          a seed's slot reached without a probe (first start)
 *   send  id= seed= dom= sent= slot= n= at=    attempt n (1-based) of probe id starts now (at, ms)
 *   wait  id= seed= dom= sent= slot= n= next= att=   n attempts decided, JSON objects in att,
 *                                                    retry due at next (ms; 0: none yet)
 *   rb    id= seed= sent= acc= json=           accepted at acc (ms); readback pending; json is the
 *                                              result line with "readback":{"status":"pending"}
 *   late  id= seed= sent= acc= until= json=   reported missing (final and done came before); still
 *                                              looked for until until (ms); json: the pending line
 *   bnc   id= json=                            bounces of a probe being read back, found so far
 *                                              (JSON objects separated by ',')
 *   final id= seed= json=                      the probe's final result (detail log line follows)
 *   done  id=                                  the final result is in the detail log
 *   budget dom= day= n=                        attempts sent to dom on UTC day (snapshot)
 *   win   seed= at= n0= v0= n1= v1=            the seed mailbox's UIDNEXT/UIDVALIDITY (INBOX, junk)
 *                                              seen by a readback poll started at at (ms); seed
 *                                              "sender:NAME" is the sender's bounce mailbox
 * Replay reduces the records to a struct journal_state; opening the journal rewrites the file as
 * that state (compaction), so it never grows beyond the live work plus one run's records. */
#ifndef MON_SCHEDULER_JOURNAL_H
#define MON_SCHEDULER_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jprobe_state {
	JPROBE_WAIT = 0, /* attempts decided, the next not started (next_ms: when) */
	JPROBE_SENDING,  /* attempt n+1 started (at send_at_ms) and never decided: interrupted */
	JPROBE_READBACK, /* accepted; read back over IMAP pending (final_json: the pending line) */
	JPROBE_FINAL,    /* final result journaled; maybe not yet in the detail log */
	JPROBE_DONE,
};

struct jprobe {
	char *id;
	char *seed;
	char *dom;
	int64_t sent_ms;     /* the probe's first attempt (message Date) */
	int64_t slot_s;      /* the schedule slot it was sent for; 0: manual */
	int n;               /* attempts decided */
	char *att;           /* decided attempts as JSON objects separated by ','; "" none */
	int64_t next_ms;     /* JPROBE_WAIT: retry due (wall ms); 0 none */
	int64_t send_at_ms;  /* JPROBE_SENDING: when the interrupted attempt started */
	char *final_json;    /* JPROBE_FINAL: the final line; JPROBE_READBACK: the pending line */
	int64_t accepted_ms; /* JPROBE_READBACK: when the end-of-data reply accepted it */
	int64_t late_until_ms; /* JPROBE_READBACK: 0, or reported missing and looked for until then */
	char *bounces;       /* JPROBE_READBACK: bounces found so far, JSON objects separated by ','
	                      * (record "bnc"), or NULL */
	enum jprobe_state state;
};

struct jseed {
	char *name;
	int64_t slot_s;      /* latest slot sent for (or seen) */
	/* The seed mailbox's UIDNEXT and UIDVALIDITY (0 INBOX, 1 junk) seen by a readback poll that
	 * started at win_at_ms (0: none): probes sent later search only from there. */
	uint32_t win_next[2], win_validity[2];
	int64_t win_at_ms;
};

struct jbudget {
	char *dom;
	int64_t day;         /* UTC day number (Unix seconds / 86400) */
	int n;
};

struct journal_state {
	struct jprobe *probes; /* not JPROBE_DONE */
	size_t n_probes;
	struct jseed *seeds;
	size_t n_seeds;
	struct jbudget *budgets;
	size_t n_budgets;
	size_t n_corrupt;      /* lines skipped */
};

struct journal;

/* Takes the state_dir lock (flock on state_dir/lock, which holds our pid). Returns the lock's fd,
 * or -1 with *err (owned): already held by another process (its pid is named) or not creatable.
 * Creates state_dir if missing. */
int journal_lock(const char *state_dir, char **err);

/* Replays state_dir/journal into *st (corrupt or truncated records are logged with file and line
 * and skipped), rewrites the file as *st and opens it for appending. The caller holds the lock.
 * now_ms drops budget days before today. Returns the journal, or NULL with *err (owned). */
struct journal *journal_open(const char *state_dir, int64_t now_ms, struct journal_state *st, char **err);
void journal_close(struct journal *j);
void journal_state_fini(struct journal_state *st);

/* Appends a record and makes it durable before returning. kv: key, value pairs ending in NULL;
 * values must not be NULL. Returns 0, or -1 (logged; the caller goes on: a journal that cannot be
 * written must not stop probing). */
int journal_append(struct journal *j, const char *type, ...) __attribute__((sentinel));
/* The same without fdatasync, for records whose loss is harmless ("done"). */
int journal_append_lazy(struct journal *j, const char *type, ...) __attribute__((sentinel));

/* Makes every record appended so far durable (group commit after journal_append_lazy). */
int journal_sync(struct journal *j);

/* Rewrites the journal from its own records when it grew beyond limit bytes. */
void journal_maybe_compact(struct journal *j, size_t limit, int64_t now_ms);

/* For tests and fuzzing: reduce the text of a journal (lines as written) into *st. */
void journal_replay_text(const char *text, size_t len, const char *name, int64_t now_ms, struct journal_state *st);

#endif
