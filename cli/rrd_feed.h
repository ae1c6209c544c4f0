/* From finished probes to the RRD store: the engine's on_result (final results) and
 * on_readback (results completed by their readback, also those resumed from the journal by a
 * later run) each give one update per probe, at the probe's sent_at. Used by probe and run, from
 * the loop's thread; the file work runs on a writer thread (rrd_feed_attach()). */
#ifndef MON_CLI_RRD_FEED_H
#define MON_CLI_RRD_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store_rrd.h"

struct mon_conf;
struct rrd_feed;

/* conf is borrowed: it must stay valid until rrd_feed_set_conf() or rrd_feed_free(). Returns
 * owned, or NULL with rrd = false (a NULL feed takes every call below and does nothing). */
struct rrd_feed *rrd_feed_new(const struct mon_conf *conf);
/* After a reload: the new configuration (borrowed, as above); a new store when rrd_dir,
 * rrdcached or vantage changed. */
void rrd_feed_set_conf(struct rrd_feed *f, const struct mon_conf *conf);
/* Drains (rrd_feed_drain()), then frees. Does not touch the configuration. rrd_feed_free(NULL)
 * does nothing. */
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

/* One final result line, written at once (json borrowed): a probe's final result, a readback's
 * final line, or a line the engine repaired (journaled but not yet in the detail log after a
 * crash). A late arrival after a "missing" result ("late": true) is not written: that probe's
 * update was the "missing" one. hw: NULL, or filled (zeroed when nothing was read): with
 * alert.aberrations, after a successful update of a file that has the Holt-Winters archives,
 * one fetch of its FAILURES row (store_rrd_hw_failures()). f NULL: nothing (hw zeroed).
 * rrd_feed_submit() is the way from the loop; this is what its writer does. */
void rrd_feed_json(struct rrd_feed *f, const char *json, struct rrd_feed_hw *hw);

/*
 * The writer thread. Creating a seed's file takes librrd about a second for the 60-70 MB of a
 * 1-minute seed, and an update of a file direct (no rrdcached) a few hundred microseconds to a
 * few ms: on the loop's thread they held up every probe, timer and signal for that long, and a
 * first start with thousands of seeds stalled its first round. Attached, the feed does that work
 * on a thread of its own, in submission order; the loop only queues lines and hears back.
 */
/* One submitted line done, on the loop's thread, in submission order: json is the line given
 * (borrowed for the call); hw what its update found (zeroed unless asked for and read). */
typedef void rrd_feed_done_cb(void *arg, const char *json, const struct rrd_feed_hw *hw);
struct evloop;
/* From now on rrd_feed_submit() reports through done (may be NULL), and with a loop it hands the
 * file work to a writer thread and reports on loop (all borrowed until rrd_feed_drain() or
 * rrd_feed_free()). Without a loop (before there is one: the engine repairs the journal while it
 * is made) lines are written at once and reported from within rrd_feed_submit().
 * rrd_feed_set_conf() waits for the line being written, if any. */
void rrd_feed_attach(struct rrd_feed *f, struct evloop *loop, rrd_feed_done_cb *done, void *arg);
/* A final result line (as rrd_feed_json() takes it, copied): written by the writer thread, then
 * reported. want_hw: read the Holt-Winters FAILURES row after the update (rrd_feed_json()'s hw).
 * f NULL: nothing, done included. */
void rrd_feed_submit(struct rrd_feed *f, const char *json, bool want_hw);
/* Waits until every submitted line is written, calls done for those not reported yet, in
 * order, and ends the writer thread (a later rrd_feed_submit() starts it again). On the loop's
 * thread, also from one of its callbacks: it never runs the loop. rrd_feed_free() drains too. */
void rrd_feed_drain(struct rrd_feed *f);

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
