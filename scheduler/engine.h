/* The scheduler engine: seeds' schedules, limits, retries and the journal on one event loop.
 * Three modes share it: a one-shot round (`probe`), the cron mode (`probe --due`) and the
 * daemon (`run`), so that cron and daemon give the same measurements. */
#ifndef MON_SCHEDULER_ENGINE_H
#define MON_SCHEDULER_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "journal.h"
#include "result.h"

enum engine_mode {
	ENGINE_ONCE = 0, /* the given seeds now, plus their due retries from the journal */
	ENGINE_DUE,      /* what the schedules and the journal say is due, until the wait ends */
	ENGINE_DAEMON,   /* schedules forever, until engine_shutdown() */
};

struct evloop;
struct engine;

/* The end of a readback (all borrowed for the call). */
struct diagnosis;

struct readback_done {
	const char *seed;
	const char *probe_id;
	const char *status;     /* found | missing | bounced | skipped | error */
	const char *folder;     /* found: as the server names it */
	bool junk;
	bool placement_ok;      /* found where expect_folder says */
	double delivery_s;      /* found: acceptance to the mailbox (INTERNALDATE), -1 unknown */
	const char *error;      /* "" or why */
	const char *json;       /* the final result line */
	bool ok;                /* found and placed as expected */
	int n_bounces;          /* bounces of the probe found in the sender's bounce mailbox */
	bool bounced;           /* one of them says "failed" */
	const char *bounce;     /* the latest bounce in words ("failed 5.1.1 at rcpt by mx: 550 ..."), or "" */
	bool late;              /* after a missing result: found (or bounced) late */
	const struct diagnosis *diagnosis; /* what the readback's end says (probe/diagnose.h), or NULL */
};

struct engine_params {
	enum engine_mode mode;
	const struct conf_seed *const *seeds; /* ENGINE_ONCE: the seeds to probe, in order (in conf) */
	size_t n_seeds;
	bool keep_transcript;
	/* Taken: the journal (NULL: none, retries then happen only within wait_ms) and its replayed
	 * state (borrowed for engine_new only). */
	struct journal *journal;
	const struct journal_state *jstate;
	int64_t wait_ms;        /* ONCE and DUE: how long to wait for retries and slots that come due */
	int64_t grace_ms;       /* ONCE and DUE: after the wait, how long running attempts may finish */
	bool readback;          /* read accepted probes back over IMAP (seeds with an imap group) */
	bool wait_readback;     /* ENGINE_ONCE: the run ends only when its readbacks have (bounded by
				 * readback.timeout), whatever wait_ms says about retries */
	/* Called for every decided attempt (final, or with a retry or the readback pending), from
	 * the loop; r borrowed, json its result line without the transcript (as the detail log has
	 * it; borrowed). */
	void (*on_result)(void *arg, const struct probe_result *r, const char *json);
	/* Called when a readback ends (found, missing or error): the probe's final result. */
	void (*on_readback)(void *arg, const struct readback_done *d);
	/* A final result line journaled by an earlier run but missing from the detail log, written
	 * there now (after a crash between the two); no on_result/on_readback fires for it. */
	void (*on_repaired)(void *arg, const char *json);
	void *arg;
};

/* Takes conf. Returns the engine, or NULL with *err (owned). */
struct engine *engine_new(struct mon_conf *conf, const struct engine_params *p, char **err);
/* Runs until the work of the mode is done, or until engine_shutdown() has finished. */
void engine_run(struct engine *e);
void engine_free(struct engine *e);

struct evloop *engine_loop(struct engine *e);
/* Stop taking new work; running attempts may finish for grace_ms, then they are cancelled (the
 * journal keeps them as interrupted: never resent, retried as the next attempt). */
void engine_shutdown(struct engine *e, int64_t grace_ms);
/* Takes conf: new seeds, schedules and limits from now on; running attempts finish under the old
 * configuration. Pending retries of seeds that no longer exist are dropped (logged). */
void engine_reload(struct engine *e, struct mon_conf *conf);

#endif
