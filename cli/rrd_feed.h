/* From finished probes to the RRD store: the engine's on_result (final results) and
 * on_readback (results completed by their readback, also those resumed from the journal by a
 * later run) each give one update per probe, at the probe's sent_at. Used by probe and run, on
 * the loop's thread. */
#ifndef MON_CLI_RRD_FEED_H
#define MON_CLI_RRD_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store_rrd.h"

struct mon_conf;
struct probe_result;
struct readback_done;
struct rrd_feed;

/* conf is borrowed: it must stay valid until rrd_feed_set_conf() or rrd_feed_free(). Returns
 * owned, or NULL with rrd = false (a NULL feed takes every call below and does nothing). */
struct rrd_feed *rrd_feed_new(const struct mon_conf *conf);
/* After a reload: the new configuration (borrowed, as above); a new store when rrd_dir,
 * rrdcached or vantage changed. */
void rrd_feed_set_conf(struct rrd_feed *f, const struct mon_conf *conf);
/* Does not touch the configuration. rrd_feed_free(NULL) does nothing. */
void rrd_feed_free(struct rrd_feed *f);

/* What the update of one result says beyond the write, for the alert hook (alerts.h): the
 * Holt-Winters aberrations of the seed's file. The callers (cmd_run.c, cmd_probe.c) call the
 * rrd_feed_* function first and hand this to the alerts_feed_* function of the same result, so
 * an aberration counts for the result whose update raised it (seeds with one probe per step, the
 * aligned layouts: the row read is that result's own step; seeds probed more often than the step:
 * the row completed by this update, i.e. up to the previous result's values; see
 * store_rrd_hw_failures()). */
struct rrd_feed_hw {
	bool checked;          /* a FAILURES row was read for this result */
	unsigned aberrations;  /* ALERT_ABERRATION_* (alert_rules.h): flagged by librrd and this probe's
				* own value of that data source known */
	int64_t row_s;         /* the row read (Unix s) */
};

/* From on_result: a final result (no readback pending, no retry) is written; others wait for
 * their final form. r borrowed. hw: NULL, or filled (zeroed when nothing was read): with
 * alert.aberrations, after a successful update of a file that has the Holt-Winters archives,
 * one fetch of its FAILURES row (store_rrd_hw_failures()). */
void rrd_feed_result(struct rrd_feed *f, const struct probe_result *r, struct rrd_feed_hw *hw);
/* From on_readback: the final result line is written, unless it is a late arrival after a
 * "missing" one (its "late": true), which was the probe's update. d borrowed; hw as above. */
void rrd_feed_readback(struct rrd_feed *f, const struct readback_done *d, struct rrd_feed_hw *hw);

/* A final result line from elsewhere (the engine's on_repaired: a line journaled but not yet
 * in the detail log after a crash). json borrowed. f NULL: nothing (hw zeroed). */
void rrd_feed_json(struct rrd_feed *f, const char *json, struct rrd_feed_hw *hw);

/* The decision on librrd's flags: ds_mask (1u << enum store_rrd_ds, as store_rrd_hw_failures()
 * gives it) to ALERT_ABERRATION_* bits, keeping delivery and total only, and each only when the
 * sample has that value (an unknown value is counted as a violation by librrd: a probe that did
 * not measure a quantity is not blamed for an aberration in it). */
unsigned rrd_feed_aberrations(unsigned ds_mask, const struct store_rrd_sample *s);

/* The mapping: one final JSON result line (DESIGN.md's result contract) to a sample. Values the
 * result does not have stay NaN (unknown):
 *   connect .. eod, total   smtp.ms.STAGE, smtp.ms.total (ms; absent stages unknown)
 *   accepted deferred rejected failed   1 for smtp.outcome, 0 for the other three (all 0
 *                           when the outcome is unknown)
 *   attempts                the number of smtp.attempts
 *   accept_after            smtp.accepted_after_s
 *   delivery                readback.delivery_s
 *   inbox                   readback found: 1 in INBOX (not the junk folder), 0 elsewhere;
 *                           missing or bounced: 0; skipped, pending, error: unknown
 *   missing                 readback missing or bounced: 1; found: 0; otherwise unknown
 *   junk                    readback found with "junk": true (the \\Junk folder): 1; found
 *                           elsewhere, missing or bounced: 0; otherwise unknown
 * seed (seed_len bytes) gets the seed's name and *sent_ms the probe's sent_at. Returns 0, or -1
 * when the line is not a result (no seed, sent_at or smtp object). */
int rrd_sample_from_json(const char *json, struct store_rrd_sample *s, char *seed, size_t seed_len, int64_t *sent_ms);

#endif
