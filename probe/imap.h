/* Readback over IMAP: one poll of one mailbox for the probes still wanted there, with libcurl's
 * easy interface on a connection kept from poll to poll (struct imap_conn: one per account).
 * Blocking: run it on a worker thread (util/worker.h), never on the event loop; one poll at a
 * time per connection.
 *
 * A connection's first poll: CAPABILITY (UIDPLUS) and LIST (SPECIAL-USE, else well-known names)
 * find the junk folder; that is kept for an hour. Each poll, in INBOX and the junk folder:
 * STATUS (UIDNEXT UIDVALIDITY; NOOP first for the selected folder), then one UID SEARCH UID from:* OR HEADER X-Mailcanary-Token
 * "v1.ID1." HEADER ... "v1.ID2." ... for every wanted probe, from the lowest UID one of them
 * has not searched yet (or, when at most 20 messages arrived since the window, one UID FETCH of
 * their headers instead: half the server's work on a large Maildir); each candidate's header is
 * fetched (BODY.PEEK: nothing changes) and its token verified (HMAC, this seed): a message that
 * is not ours is never touched. A second verified copy of a probe found
 * in the same poll (a duplicate delivery) is cleaned up too and counted. Found probes are deleted (UID STORE +FLAGS.SILENT (\Deleted),
 * then UID EXPUNGE of that UID only, when the server has UIDPLUS; without it the message
 * stays flagged, because a plain EXPUNGE would remove others' deleted mail), moved
 * (cleanup "move:FOLDER", UID MOVE) or kept.
 *
 * Candidates are fetched with UID FETCH (INTERNALDATE BODY.PEEK[HEADER]), so that fetching a
 * message that turns out not to be ours does not even set its \Seen flag.
 *
 * Bounce mode (imap_account.bounces, the envelope sender's mailbox): UID SEARCH ... TEXT
 * "v1.ID." (not BODY: Dovecot's BODY skips the header of an attached message/rfc822) finds messages quoting the probe's token anywhere; each is fetched whole and parsed
 * as a delivery status notification (probe/dsn.h); only a bounce whose returned token verifies
 * for this probe is recorded (imap_want.bounces) and cleaned up. A bounce never counts as the
 * probe itself (found stays false). */
#ifndef MON_PROBE_IMAP_H
#define MON_PROBE_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "token.h"

#define IMAP_FOLDER_MAX 128

enum imap_cleanup { IMAP_CLEANUP_DELETE = 0, IMAP_CLEANUP_KEEP, IMAP_CLEANUP_MOVE };

struct imap_account {
	const char *url;          /* imap://host[:port]/ (STARTTLS required) or imaps://host[:port]/ */
	const char *username;
	const char *password;     /* never logged */
	const char *ca_file;      /* NULL: the system's trust store */
	const char *source_ip;    /* NULL: the kernel's choice */
	const char *seed;         /* the seed name tokens are verified against */
	const unsigned char *key; /* TOKEN_KEY_LEN bytes */
	enum imap_cleanup cleanup;
	const char *move_to;      /* IMAP_CLEANUP_MOVE: the target folder */
	long timeout_ms;          /* per command */
	bool bounces;             /* the sender's mailbox: look for bounces of the probes */
};

/* A bounce of the probe found in the sender's mailbox: what the notification says about the
 * recipient (strings "" when absent). */
struct imap_bounce {
	char folder[IMAP_FOLDER_MAX];
	uint32_t uid;
	int64_t internaldate;        /* Unix seconds, -1 unknown: when the bounce arrived */
	bool rfc3464;                /* from a delivery-status part (else read from the text) */
	char action[16];             /* failed, delayed, ... */
	char status[16];             /* "5.1.1" */
	char enhanced[16];           /* the remote server's enhanced code, else status */
	int reply_code;              /* the remote server's reply code, 0 unknown */
	char remote_mta[256];
	char reporting_mta[256];
	char diagnostic[1024];
	char stage[16];              /* where the remote refused (probe_stage_name), or "" */
	bool cleaned;
	char cleanup_note[160];
};

/* A probe to look for; from_uid is updated by the poll (the next UID not yet searched for it,
 * per folder: 0 = INBOX, 1 = junk), uidvalidity with it (a change restarts from 1). */
struct imap_want {
	char probe_id[40];
	char seed[72];                /* the seed its token is verified for; "": imap_account.seed */
	int64_t sent_s;               /* when the probe was sent (Unix s; 0 unknown): a search without a
	                               * window (UID 1:*) is limited to mail since the day before */
	uint32_t from_uid[2];
	uint32_t uidvalidity[2];
	/* results */
	bool found;
	char folder[IMAP_FOLDER_MAX]; /* as the server names it */
	bool junk;                    /* found in the junk folder */
	uint32_t uid;
	int64_t internaldate;         /* Unix seconds, -1 unknown */
	char *header;                 /* owned: the message's header block */
	bool cleaned;                 /* deleted, moved or (keep) left as asked */
	char cleanup_note[160];       /* what was done or why not ("no UIDPLUS: left flagged \Deleted") */
	int duplicates;               /* further verified copies found (and cleaned up) with it */
	/* bounce mode: bounces found by this poll (owned array; appended, never found) */
	struct imap_bounce *bounces;
	size_t n_bounces;
};

struct imap_poll {
	struct imap_want *want;   /* borrowed array */
	size_t n_want;
	/* results for the whole poll */
	char junk_folder[IMAP_FOLDER_MAX]; /* "" when none was found */
	bool special_use;         /* the junk folder came from SPECIAL-USE */
	bool uidplus;
	uint32_t uidnext[2];      /* SELECT's UIDNEXT of INBOX and the junk folder (0: not seen) */
	uint32_t uidvalidity[2];
	char error[256];          /* "" when the poll worked (even if nothing was found) */
	int n_commands;           /* IMAP commands sent (for the benchmark) */
	double ms;                /* how long the poll took */
	bool reused;              /* the connection of an earlier poll was used (no TLS, no login) */
};

/* A connection kept between polls of one account. */
struct imap_conn;
struct imap_conn *imap_conn_new(void);
void imap_conn_free(struct imap_conn *c); /* NULL: nothing */

/* Runs one poll on conn (borrowed; a different account than its last poll starts a new
 * connection). cancelled (may be NULL) is checked between commands and during transfers.
 * Returns 0, or -1 with p->error set (login refused, TLS, connection; wanted probes unchanged;
 * the connection is dropped). */
int imap_poll_run(struct imap_conn *conn, const struct imap_account *acct, struct imap_poll *p,
		  bool (*cancelled)(void *), void *carg);

/* Frees what a poll stored in want[] (headers, bounces). */
void imap_want_fini(struct imap_want *w);

#endif
