/* The alert hook: a state per seed (ok, degraded, failing) from its final results, with
 * hysteresis, and alert.command run on every change of state (only then). Fed like rrd_feed.h,
 * from the engine's on_result, on_readback and on_repaired, on the loop's thread, each time
 * right after the rrd_feed_* call of the same result, whose Holt-Winters finding (struct
 * rrd_feed_hw) it takes. The states are kept in state_dir/alerts.state so that `probe --due`
 * runs (cron) continue where the last one stopped.
 *
 * Rules, per final result (DESIGN.md's result contract; the table is alert_rules.h):
 *   clean        accepted; read back where expect_folder says (not late), or not read back;
 *                readback.delivery_s not above alert.latency; no aberration        -> ok
 *   warning      deferred; junk or misplaced; late; delivery above alert.latency; a
 *                Holt-Winters aberration (FAILURES) of delivery or total           -> degraded
 *   failure      rejected, failed, unknown; readback missing, bounced or error: one more
 *                consecutive failure -> failing at alert.failing_after, degraded before
 * A seed starts ok. Once failing, only a clean result ends it (to ok); warnings keep it failing.
 * Any result that is not a failure resets the count of consecutive failures.
 *
 * On a change: `/bin/sh -c alert.command` (fork + execve, in its own process group) with the
 * details only in the environment: MAILCANARY_SEED, _OLD_STATE, _NEW_STATE, _STAGE, _CODE,
 * _ENHANCED, _TEXT, _FOLDER, _DELIVERY, _PROBE_ID, _OUTCOME, _CAUSE, _ABERRATION ("delivery",
 * "total", "delivery total" or ""), _DROPPED (changes dropped because the queue was full since
 * the previous command started, normally 0); its stdout goes to stderr, stdin is /dev/null.
 *
 * Commands never block the loop: each runs beside the probes and is reaped through a pidfd in
 * the loop (a 50 ms waitpid(WNOHANG) timer where pidfd_open is missing). One that runs longer
 * than alert.timeout gets SIGTERM (its process group), and SIGKILL ALERT_KILL_GRACE_MS later;
 * both are logged. At most ALERT_MAX_RUNNING commands run at once and at most one per seed: a
 * change that comes meanwhile waits in a FIFO queue, so every change runs exactly once and in
 * order per seed. The queue holds ALERT_QUEUE_MAX changes; one more is not run: it is logged
 * (status=dropped) and counted in the next command's MAILCANARY_DROPPED (its state is kept in
 * alerts.state all the same). One log line per change when its command ends:
 * event=alert seed=S from=OLD to=NEW rc=N probe=ID [aberration=...]. A failing command is a
 * warning, never fatal. */
#ifndef MON_CLI_ALERTS_H
#define MON_CLI_ALERTS_H

#include "rrd_feed.h"

struct alerts;
struct evloop;
struct mon_conf;

#define ALERT_MAX_RUNNING 4
#define ALERT_QUEUE_MAX 1000
#define ALERT_KILL_GRACE_MS 2000
#define ALERT_POLL_MS 50

/* conf is borrowed: it must stay valid until alerts_set_conf() or alerts_free(). Returns owned
 * (the states read from state_dir/alerts.state), or NULL when alert.command is not set (a NULL
 * handle takes every call below and does nothing). Changes fed before alerts_attach() wait in
 * the queue. */
struct alerts *alerts_new(const struct mon_conf *conf);
/* After a reload: the new configuration (borrowed, as above). state_dir must not change.
 * Commands already queued keep the command and timeout they were queued with. */
void alerts_set_conf(struct alerts *a, const struct mon_conf *conf);
/* Runs and reaps the commands on loop (borrowed, until alerts_drain()): queued ones start now. */
void alerts_attach(struct alerts *a, struct evloop *loop);
/* Leaves the loop (call it before the loop is freed) and waits, blocking, until every running
 * and queued command has ended: each within alert.timeout + ALERT_KILL_GRACE_MS, so at most
 * ceil(queued / ALERT_MAX_RUNNING) times that in all. Used by one-shot runs before they exit
 * and by the daemon when it stops. */
void alerts_drain(struct alerts *a);
/* Drains (alerts_drain()), then frees. alerts_free(NULL) does nothing. */
void alerts_free(struct alerts *a);

/* One final result line (json borrowed); hw: what the RRD update of the same result found
 * (NULL: nothing). Lines that are not a probe result are ignored. */
void alerts_feed_json(struct alerts *a, const char *json, const struct rrd_feed_hw *hw);
/* A final result line (borrowed) to the seed's RRD file and then to the alerts: with a feed, its
 * writer thread writes it and alerts_rrd_done() passes it on, with what the update found; with
 * no feed (rrd = false), straight to a. a NULL: the RRD file only. */
void alerts_feed_line(struct alerts *a, struct rrd_feed *f, const char *json);
/* rrd_feed_done_cb for rrd_feed_attach(): arg is a struct alerts ** (read at each report, so a
 * reload may replace the alerts; *arg NULL: none). */
void alerts_rrd_done(void *arg, const char *json, const struct rrd_feed_hw *hw);

#endif
