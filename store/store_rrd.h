/* RRD files: one per seed (and vantage), rrd_dir/[vantage/]SEED.rrd, written with librrd directly
 * or through rrdcached. Sees plain samples (doubles, NaN for unknown), never probe types.
 *
 * Named store_rrd.h, not rrd.h: store/ is on the include path of everything that links
 * mon_store, and a store/rrd.h would shadow librrd's own <rrd.h>.
 *
 * Not thread-safe: one store, used from one thread (the event loop). rrdcached is reached
 * through librrd's process-wide rrdc_* connection, so a process has at most one store with a
 * daemon at a time. */
#ifndef MON_STORE_STORE_RRD_H
#define MON_STORE_STORE_RRD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The data sources, in file order (DESIGN.md, RRD). All GAUGE. missing and junk came later:
 * files made before them (the first STORE_RRD_DS_LEGACY_COUNT data sources, the rest of the
 * layout the same) are migrated in place when the store meets them (see store_rrd_update). */
enum store_rrd_ds {
	STORE_RRD_CONNECT = 0, /* ms per SMTP stage, as the JSON result's smtp.ms */
	STORE_RRD_BANNER,
	STORE_RRD_EHLO,
	STORE_RRD_STARTTLS,
	STORE_RRD_AUTH,
	STORE_RRD_MAIL,
	STORE_RRD_RCPT,
	STORE_RRD_DATA,
	STORE_RRD_EOD,
	STORE_RRD_TOTAL,        /* ms, smtp.ms.total */
	STORE_RRD_DELIVERY,     /* s, readback.delivery_s */
	STORE_RRD_ACCEPTED,     /* 0/1 from smtp.outcome */
	STORE_RRD_DEFERRED,
	STORE_RRD_REJECTED,
	STORE_RRD_FAILED,
	STORE_RRD_INBOX,        /* 1 read back from INBOX, 0 found elsewhere or missing */
	STORE_RRD_ATTEMPTS,     /* SMTP attempts of the probe */
	STORE_RRD_ACCEPT_AFTER, /* s, smtp.accepted_after_s */
	STORE_RRD_MISSING,      /* 1 never reached the mailbox (readback missing or bounced), 0 found */
	STORE_RRD_JUNK,         /* 1 found in the junk folder, 0 found elsewhere or missing */
	STORE_RRD_DS__COUNT,
};

/* The data sources of files made before missing and junk. */
#define STORE_RRD_DS_LEGACY_COUNT STORE_RRD_MISSING

/* The DS name in the file ("connect", ..., "accept_after"); NULL out of range. */
const char *store_rrd_ds_name(enum store_rrd_ds ds);

/* One probe's values; NaN is written as unknown ("U"). */
struct store_rrd_sample {
	double v[STORE_RRD_DS__COUNT];
};

/* Sets every value to NaN. */
void store_rrd_sample_init(struct store_rrd_sample *s);

/* Seconds per primary data point and heartbeat of a seed's file, from its schedule. */
struct store_rrd_layout {
	int64_t step_s;      /* STORE_RRD_MIN_STEP_S .. one day */
	int64_t heartbeat_s; /* longest gap between two updates that still counts as known */
	bool align;          /* one probe per step at most: each sample is written at the end of the
			      * step that holds its time, so a step holds exactly one probe's values */
};

#define STORE_RRD_MIN_STEP_S 60

/* Layout for a schedule (conf/schedule.h syntax). "every N" and the named ones: step = the
 * interval, at least STORE_RRD_MIN_STEP_S and at most one day (weekly: one day), heartbeat =
 * max(interval, step) + step (hourly 2 h, daily 2 days, weekly 8 days); align when the
 * interval is at least the step. cron: the same from the shortest and the longest gap between
 * its fire times (heartbeat = longest + step), computed from a fixed origin so that it does
 * not change between runs. Returns 0, or -1 with *err (owned). */
int store_rrd_layout_for_schedule(const char *schedule, struct store_rrd_layout *out, char **err);

struct store_rrd_params {
	const char *dir;       /* rrd_dir (copied); unused with a remote (host:port) daemon */
	const char *daemon;    /* rrdcached address (copied): "unix:/path", "/path" or "host:port";
				* NULL or "": update the files directly */
	const char *vantage;   /* NULL or "": none; else a subdirectory (a safe name, as
				* conf_check_name() allows) */
	int64_t complain_ms;   /* update failures: at most one log line per file per this long
				* (0: STORE_RRD_COMPLAIN_MS) */
	int64_t (*now_ms)(void); /* monotonic clock for complain_ms (NULL: the real one); tests */
};

#define STORE_RRD_COMPLAIN_MS (INT64_C(10) * 60 * 1000)

struct store_rrd;

/* Returns a new store (owned; nothing is opened or created yet). */
struct store_rrd *store_rrd_new(const struct store_rrd_params *p);
/* Disconnects from rrdcached when this store connected. store_rrd_free(NULL) does nothing. */
void store_rrd_free(struct store_rrd *s);

/* The file of seed as the store addresses it: "DIR/[VANTAGE/]SEED.rrd", or with a remote
 * daemon "[VANTAGE/]SEED.rrd" relative to the daemon's base directory. Returns owned. */
char *store_rrd_path(const struct store_rrd *s, const char *seed);

/* The file of seed for another vantage ("" or NULL: none) under the same rrd_dir or daemon:
 * as store_rrd_path() of a store with that vantage. Returns owned. */
char *store_rrd_path_v(const struct store_rrd *s, const char *vantage, const char *seed);

/* The RRD files there are, as "[VANTAGE/]SEED.rrd" relative to rrd_dir (or, with a remote
 * daemon, to its base directory, from its LIST RECURSIVE command): *.rrd in rrd_dir and in its
 * subdirectories whose names are vantage names (letters, digits, '.', '_', '-', starting with a
 * letter or digit), not hidden ones. *out (owned, each string owned) sorted; a missing rrd_dir
 * is an empty list. Returns 0, or -1 with *err (owned). */
int store_rrd_list(struct store_rrd *s, char ***out, size_t *n, char **err);
void store_rrd_list_free(char **v, size_t n);

/* A name fit for a seed or vantage (as conf_check_name). */
bool store_rrd_name_ok(const char *s, size_t len);

/* Writes one sample for seed at t_s (Unix seconds). The file is created when missing (local
 * files: under a temporary name in the same directory, then linked to its name, never
 * replacing a file; remote daemon: its CREATE without overwrite). An existing file is checked
 * against layout and the data sources once per store (again after a failure or a layout
 * change): another layout is refused with a message naming the file and what differs, and the
 * file is left alone. A file of the layout before missing and junk (the same but for those two)
 * is migrated first: local files (also with rrdcached on a unix socket, flushed first) get the
 * two data sources added by librrd's rrd_tune on a copy under a temporary name, checked and
 * renamed over the file while it is locked (owner and mode kept, every value kept); on failure
 * the file is left as it was and the update fails. A remote daemon's file cannot be migrated
 * from here: it is updated in its old layout (without missing and junk), with one warning per
 * store that says how to migrate it on the daemon's host. The time written is t_s, moved to the end of its step when layout->align,
 * and at least one second after the file's last update (librrd refuses older ones); *written_s
 * gets it (may be NULL).
 * Returns 0, or -1 with *err (owned, when err is not NULL). Failures are also logged,
 * rate-limited: one line per file per complain_ms, then one "recovered" line at the next
 * success. */
int store_rrd_update(struct store_rrd *s, const char *seed, const struct store_rrd_layout *layout, int64_t t_s,
		     const struct store_rrd_sample *v, int64_t *written_s, char **err);

/* Whether files of this layout have the Holt-Winters archives (HWPREDICT, SEASONAL, DEVSEASONAL,
 * DEVPREDICT, FAILURES for every data source): a step of at most 6 h that divides a day. */
bool store_rrd_layout_has_hw(const struct store_rrd_layout *layout);

/* Holt-Winters aberrations, after a successful store_rrd_update() of seed by this store: the
 * FAILURES archive's row that the update completed (one rrd_fetch of CF FAILURES; through
 * rrdcached, whose FETCH writes the file's pending updates first). librrd sets a data source's
 * flag to 1 when at least failure-threshold (7) of the last window-length (9) values were
 * outside the confidence band (unknown values count as outside). *mask gets 1u << DS for each
 * data source flagged, *row_s the row's time. Nothing to read (both 0, returns 0): a layout
 * without the archives, no update by this store, or the update completed no row (a second
 * update within one step; the row is completed, and read, by the next update after it ends).
 * With layout->align the update's own step is the row, so the flags include its values.
 * Returns 0, or -1 with *err (owned). */
int store_rrd_hw_failures(struct store_rrd *s, const char *seed, const struct store_rrd_layout *layout,
			  unsigned *mask, int64_t *row_s, char **err);

/* librrd's failure window (rrdcreate's default window-length, which the files keep). */
#define STORE_RRD_HW_WINDOW 9

/* Which data sources have an unknown value in the STORE_RRD_HW_WINDOW steps up to the row at
 * row_s (as store_rrd_hw_failures() gives it), from the 1-step AVERAGE archive (one fetch):
 * *unknown_mask gets 1u << DS for each, and every bit when the window reaches back before the
 * file's rows. librrd counts an unknown value as a violation, so after the monitor was down for
 * 7 steps or more every seed's file is flagged: a flag whose window holds an unknown value says
 * nothing about the server. Returns 0, or -1 with *err (owned). */
int store_rrd_hw_window_unknown(struct store_rrd *s, const char *seed, const struct store_rrd_layout *layout,
				int64_t row_s, unsigned *unknown_mask, char **err);

/* With rrdcached: asks it to write what it holds for seed's file (before reading the file
 * directly, e.g. to graph it). Without: nothing to do. Returns 0, or -1 with *err (owned). */
int store_rrd_flush(struct store_rrd *s, const char *seed, char **err);
/* The same for seed's file of another vantage ("" or NULL: none). */
int store_rrd_flush_v(struct store_rrd *s, const char *vantage, const char *seed, char **err);

/* Checks an existing file against the layout this store would create for it. Returns 0, or -1
 * with *err (owned): the file and the first difference, or why it could not be read. A file of
 * the layout before missing and junk is -1 too (it says so: store_rrd_update would migrate it). */
int store_rrd_check(struct store_rrd *s, const char *seed, const struct store_rrd_layout *layout, char **err);

#endif
