/* The alert hook: a state per seed (ok, degraded, failing) from its final results, with
 * hysteresis, and alert.command run on every change of state (only then). Fed like rrd_feed.h,
 * from the engine's on_result, on_readback and on_repaired, on the loop's thread. The states are
 * kept in state_dir/alerts.state so that `probe --due` runs (cron) continue where the last one
 * stopped.
 *
 * Rules, per final result (DESIGN.md's result contract):
 *   clean        accepted; read back where expect_folder says (not late), or not read back;
 *                readback.delivery_s not above alert.latency                      -> ok
 *   warning      deferred; junk or misplaced; late; delivery above alert.latency -> degraded
 *   failure      rejected, failed, unknown; readback missing, bounced or error: one more
 *                consecutive failure -> failing at alert.failing_after, degraded before
 * A seed starts ok. Once failing, only a clean result ends it (to ok); warnings keep it failing.
 * Any result that is not a failure resets the count of consecutive failures.
 *
 * On a change: `/bin/sh -c alert.command` (fork + execve) with the details only in the
 * environment: MAILCANARY_SEED, _OLD_STATE, _NEW_STATE, _STAGE, _CODE, _ENHANCED, _TEXT,
 * _FOLDER, _DELIVERY, _PROBE_ID, _OUTCOME, _CAUSE; its stdout goes to stderr, stdin is
 * /dev/null. It is waited for up to ALERT_WAIT_MS; one log line per change:
 * event=alert seed=S from=OLD to=NEW rc=N. A failing command is a warning, never fatal. */
#ifndef MON_CLI_ALERTS_H
#define MON_CLI_ALERTS_H

struct alerts;
struct mon_conf;
struct probe_result;
struct readback_done;

#define ALERT_WAIT_MS 10000

/* conf is borrowed: it must stay valid until alerts_set_conf() or alerts_free(). Returns owned
 * (the states read from state_dir/alerts.state), or NULL when alert.command is not set (a NULL
 * handle takes every call below and does nothing). */
struct alerts *alerts_new(const struct mon_conf *conf);
/* After a reload: the new configuration (borrowed, as above). state_dir must not change. */
void alerts_set_conf(struct alerts *a, const struct mon_conf *conf);
/* Reaps commands not waited for, if they have ended. alerts_free(NULL) does nothing. */
void alerts_free(struct alerts *a);

/* One final result line (json borrowed). Lines that are not a probe result are ignored. */
void alerts_feed_json(struct alerts *a, const char *json);
/* From on_result: final results only, others wait for their final form. r borrowed. */
void alerts_feed_result(struct alerts *a, const struct probe_result *r);
/* From on_readback: its final result line. d borrowed. */
void alerts_feed_readback(struct alerts *a, const struct readback_done *d);

#endif
