/* Unit tests: the RRD store (store/store_rrd.c) with real RRD files in fresh mkdtemp
 * directories: layouts from schedules, creation and the layout check, a file of another layout
 * refused and left byte for byte, updates read back with librrd's own rrd_fetch_r (NaN written
 * as unknown), the timestamp rules (end of step, one second after the last update), the
 * rate-limited failure log with its "recovered" line (a fake clock, stderr captured), an
 * rrdcached that is not there or hangs up (no SIGPIPE death); and the CLI's mapping of a final
 * JSON result to a sample (cli/rrd_feed.c, compiled in); the Holt-Winters FAILURES flags as
 * librrd sets them, read back after each update, and the CLI's decision on them; the feed's
 * writer thread (order, reports on the loop's thread, drain). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rrd.h>

#include "alert_rules.h"
#include "conf.h"
#include "evloop.h"
#include "log.h"
#include "result.h"
#include "rrd_feed.h"
#include "store_rrd.h"
#include "strbuf.h"
#include "xalloc.h"

/* 2023-11-14 22:13:20 UTC: not on an hour boundary (1700000000 % 3600 == 800). */
#define T0 INT64_C(1700000000)

struct fx {
	char *dir;
};

static int dir_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);
	char tmpl[] = "/tmp/mc-test-rrd-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	fx->dir = strdup(tmpl);
	*state = fx;
	return 0;
}

static int dir_teardown(void **state)
{
	struct fx *fx = *state;
	rm_rf(fx->dir);
	free(fx->dir);
	free(fx);
	return 0;
}

static struct store_rrd *store_in(const char *dir, const char *vantage)
{
	struct store_rrd_params p = { .dir = dir, .vantage = vantage };
	return store_rrd_new(&p);
}

static struct store_rrd_layout layout_of(const char *schedule)
{
	struct store_rrd_layout l;
	char *err = NULL;
	if (store_rrd_layout_for_schedule(schedule, &l, &err) < 0)
		fail_msg("layout of %s: %s", schedule, err);
	return l;
}

/* Names in dir other than "." and "..", joined by spaces in readdir order (sorted by the caller's
 * expectations: the tests leave at most one or two). */
static int count_entries(const char *dir, const char *skip)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && (!skip || strcmp(e->d_name, skip)))
			n++;
	closedir(d);
	return n;
}

/* Value of ds at time t in the CF archive of path (finest resolution), via librrd. */
static double fetch_at(const char *path, const char *cf, const char *ds, int64_t t, unsigned long *step_out)
{
	time_t start = (time_t)(t - 3 * 3600), end = (time_t)(t + 3600);
	unsigned long step = 0, ds_cnt = 0;
	char **names = NULL;
	rrd_value_t *data = NULL;
	rrd_clear_error();
	if (rrd_fetch_r(path, cf, &start, &end, &step, &ds_cnt, &names, &data) != 0)
		fail_msg("rrd_fetch_r %s: %s", path, rrd_get_error());
	double v = NAN;
	bool found_ds = false, found_t = false;
	size_t rows = (size_t)((end - start) / (time_t)step);
	for (size_t i = 0; i < ds_cnt; i++) {
		if (strcmp(names[i], ds) != 0)
			continue;
		found_ds = true;
		for (size_t r = 0; r < rows; r++) {
			if ((int64_t)start + (int64_t)(r + 1) * (int64_t)step == t) {
				v = data[r * ds_cnt + i];
				found_t = true;
			}
		}
	}
	for (size_t i = 0; i < ds_cnt; i++)
		rrd_freemem(names[i]);
	rrd_freemem(names);
	rrd_freemem(data);
	if (!found_ds)
		fail_msg("%s: no data source %s", path, ds);
	if (!found_t)
		fail_msg("%s: no row at %" PRId64 " (fetched %ld..%ld step %lu)", path, t, (long)start, (long)end, step);
	if (step_out)
		*step_out = step;
	return v;
}

/* A sample with distinct values; the stages that did not happen (starttls, auth) unknown. */
static void sample_fill(struct store_rrd_sample *s)
{
	store_rrd_sample_init(s);
	s->v[STORE_RRD_CONNECT] = 0.25;
	s->v[STORE_RRD_BANNER] = 1.5;
	s->v[STORE_RRD_EHLO] = 2.125;
	s->v[STORE_RRD_MAIL] = 3.75;
	s->v[STORE_RRD_RCPT] = 4.5;
	s->v[STORE_RRD_DATA] = 5.0;
	s->v[STORE_RRD_EOD] = 17.375;
	s->v[STORE_RRD_TOTAL] = 123.456;
	s->v[STORE_RRD_DELIVERY] = 2;
	s->v[STORE_RRD_ACCEPTED] = 1;
	s->v[STORE_RRD_DEFERRED] = 0;
	s->v[STORE_RRD_REJECTED] = 0;
	s->v[STORE_RRD_FAILED] = 0;
	s->v[STORE_RRD_INBOX] = 1;
	s->v[STORE_RRD_ATTEMPTS] = 3;
	s->v[STORE_RRD_ACCEPT_AFTER] = 312.4;
	s->v[STORE_RRD_MISSING] = 0;
	s->v[STORE_RRD_JUNK] = 0;
}

/* ---- layouts ---- */

static void test_layouts(void **state)
{
	(void)state;
	static const struct {
		const char *schedule;
		int64_t step, heartbeat;
		bool align;
	} cases[] = {
		{ "hourly", 3600, 7200, true },
		{ "daily", 86400, 172800, true },
		{ "weekly", 86400, 8 * 86400, true },
		{ "every 15m", 900, 1800, true },
		{ "every 90s", 90, 180, true },
		{ "every 2s", 60, 120, false }, /* at least a minute: several probes per step */
		{ "every 3d", 86400, 4 * 86400, true },
		{ "cron */5 * * * *", 300, 600, true },
		{ "cron 0 6 * * 1-5", 86400, 4 * 86400, true }, /* Friday to Monday: 3 days */
		{ "cron 30 * * * *", 3600, 7200, true },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct store_rrd_layout l = layout_of(cases[i].schedule);
		if (l.step_s != cases[i].step || l.heartbeat_s != cases[i].heartbeat || l.align != cases[i].align)
			fail_msg("%s: got step %" PRId64 " heartbeat %" PRId64 " align %d, want %" PRId64 " %" PRId64 " %d",
				 cases[i].schedule, l.step_s, l.heartbeat_s, l.align, cases[i].step, cases[i].heartbeat,
				 cases[i].align);
	}
	struct store_rrd_layout l;
	char *err = NULL;
	assert_int_equal(store_rrd_layout_for_schedule("sometimes", &l, &err), -1);
	assert_non_null(err);
	free(err);

	assert_string_equal(store_rrd_ds_name(STORE_RRD_CONNECT), "connect");
	assert_string_equal(store_rrd_ds_name(STORE_RRD_ACCEPT_AFTER), "accept_after");
	assert_string_equal(store_rrd_ds_name(STORE_RRD_MISSING), "missing");
	assert_string_equal(store_rrd_ds_name(STORE_RRD_JUNK), "junk");
	assert_int_equal(STORE_RRD_DS_LEGACY_COUNT, 18);
	assert_null(store_rrd_ds_name(STORE_RRD_DS__COUNT));
}

/* ---- creation and the layout check ---- */

static int64_t info_cnt(const char *path, const char *key)
{
	rrd_info_t *info = rrd_info_r(path);
	int64_t v = -1;
	if (!info)
		fail_msg("rrd_info_r %s: %s", path, rrd_get_error());
	for (rrd_info_t *i = info; i; i = i->next)
		if (strcmp(i->key, key) == 0)
			v = i->type == RD_I_CNT ? (int64_t)i->value.u_cnt : -2;
	rrd_info_free(info);
	return v;
}

static const char *info_rra_cf(rrd_info_t *info, int idx)
{
	char key[32];
	snprintf(key, sizeof key, "rra[%d].cf", idx);
	for (rrd_info_t *i = info; i; i = i->next)
		if (strcmp(i->key, key) == 0 && i->type == RD_I_STR)
			return i->value.u_str;
	return NULL;
}

static void test_create_and_check(void **state)
{
	struct fx *fx = *state;
	char *dir = fmt("%s/rrd", fx->dir); /* missing: created */
	struct store_rrd *s = store_in(dir, NULL);
	struct store_rrd_layout hourly = layout_of("hourly");
	struct store_rrd_sample v;
	sample_fill(&v);
	int64_t at = 0;
	char *err = NULL;

	if (store_rrd_update(s, "seed-a", &hourly, T0, &v, &at, &err) < 0)
		fail_msg("update: %s", err);
	char *path = store_rrd_path(s, "seed-a");
	char *want = fmt("%s/seed-a.rrd", dir);
	assert_string_equal(path, want);
	assert_int_equal(access(path, R_OK), 0);
	assert_int_equal(count_entries(dir, NULL), 1); /* no temporary file left behind */
	if (store_rrd_check(s, "seed-a", &hourly, &err) < 0)
		fail_msg("check: %s", err);

	/* The layout as rrdtool sees it: step, heartbeat, the 3 x 3 archives and Holt-Winters. */
	assert_int_equal(info_cnt(path, "step"), 3600);
	assert_int_equal(info_cnt(path, "ds[delivery].minimal_heartbeat"), 7200);
	assert_int_equal(info_cnt(path, "rra[0].rows"), 2400);        /* 100 days of hours */
	assert_int_equal(info_cnt(path, "rra[3].pdp_per_row"), 24);   /* days */
	assert_int_equal(info_cnt(path, "rra[3].rows"), 731);         /* 2 years */
	assert_int_equal(info_cnt(path, "rra[6].pdp_per_row"), 168);  /* weeks */
	assert_int_equal(info_cnt(path, "rra[6].rows"), 522);         /* 10 years */
	assert_int_equal(info_cnt(path, "rra[9].rows"), 168);         /* HWPREDICT: a week */
	assert_int_equal(info_cnt(path, "rra[10].rows"), 24);         /* SEASONAL: a day */
	rrd_info_t *info = rrd_info_r(path);
	assert_non_null(info);
	static const char *const cfs[] = { "AVERAGE", "MIN", "MAX", "AVERAGE", "MIN", "MAX", "AVERAGE", "MIN", "MAX",
					   "HWPREDICT", "SEASONAL", "DEVSEASONAL", "DEVPREDICT", "FAILURES" };
	for (int i = 0; i < 14; i++) {
		const char *cf = info_rra_cf(info, i);
		if (!cf || strcmp(cf, cfs[i]) != 0)
			fail_msg("rra[%d].cf: got %s, want %s", i, cf ? cf : "(none)", cfs[i]);
	}
	assert_null(info_rra_cf(info, 14));
	rrd_info_free(info);

	/* A second store (a new process) checks the existing file and writes to it. */
	store_rrd_free(s);
	s = store_in(dir, NULL);
	if (store_rrd_update(s, "seed-a", &hourly, T0 + 3600, &v, &at, &err) < 0)
		fail_msg("update through a new store: %s", err);
	assert_int_equal(at, T0 + 3600 - 800 + 3600); /* end of the hour that holds T0 + 3600 */

	/* A weekly seed: daily steps, no Holt-Winters, the 1-step and 1-day archives merged. */
	struct store_rrd_layout weekly = layout_of("weekly");
	if (store_rrd_update(s, "seed-w", &weekly, T0, &v, NULL, &err) < 0)
		fail_msg("weekly: %s", err);
	char *wpath = store_rrd_path(s, "seed-w");
	assert_int_equal(info_cnt(wpath, "step"), 86400);
	assert_int_equal(info_cnt(wpath, "ds[total].minimal_heartbeat"), 8 * 86400);
	assert_int_equal(info_cnt(wpath, "rra[0].rows"), 731);
	assert_int_equal(info_cnt(wpath, "rra[3].pdp_per_row"), 7);
	assert_int_equal(info_cnt(wpath, "rra[5].rows"), 522);
	assert_int_equal(info_cnt(wpath, "rra[6].rows"), -1);

	/* A vantage is a subdirectory. */
	struct store_rrd *sv = store_in(dir, "fra1");
	if (store_rrd_update(sv, "seed-a", &hourly, T0, &v, NULL, &err) < 0)
		fail_msg("vantage: %s", err);
	char *vpath = store_rrd_path(sv, "seed-a");
	char *vwant = fmt("%s/fra1/seed-a.rrd", dir);
	assert_string_equal(vpath, vwant);
	assert_int_equal(access(vpath, R_OK), 0);
	store_rrd_free(sv);

	free(vpath);
	free(vwant);
	free(wpath);
	free(path);
	free(want);
	store_rrd_free(s);
	free(dir);
}

/* Writes a file of another layout with librrd directly. */
static void create_foreign(const char *path, unsigned long step, const char *const *args, int argc)
{
	rrd_clear_error();
	if (rrd_create_r(path, step, (time_t)(T0 - 86400), argc, (const char **)args) != 0)
		fail_msg("rrd_create_r %s: %s", path, rrd_get_error());
}

static void expect_refused(struct store_rrd *s, const char *seed, const char *path,
			   const struct store_rrd_layout *l, const char *what)
{
	size_t len0 = 0, len1 = 0;
	char *before = slurp(path, &len0);
	struct store_rrd_sample v;
	sample_fill(&v);
	char *err = NULL;
	assert_int_equal(store_rrd_update(s, seed, l, T0, &v, NULL, &err), -1);
	assert_non_null(err);
	if (!strstr(err, path) || !strstr(err, what) || !strstr(err, "left as it is"))
		fail_msg("error %s: want the file %s and \"%s\"", err, path, what);
	free(err);
	err = NULL;
	assert_int_equal(store_rrd_check(s, seed, l, &err), -1);
	assert_non_null(strstr(err, what));
	free(err);
	char *after = slurp(path, &len1);
	assert_int_equal(len0, len1);
	assert_true(memcmp(before, after, len0) == 0);
	free(before);
	free(after);
}

static void test_other_layout_refused(void **state)
{
	struct fx *fx = *state;
	log_init("test", LOG_LEVEL_ERR, false, 0); /* the warnings are the errors checked below */
	struct store_rrd *s = store_in(fx->dir, NULL);
	struct store_rrd_layout hourly = layout_of("hourly");

	/* Another step: a file made for "every 5m". */
	struct store_rrd_layout five = layout_of("every 5m");
	struct store_rrd_sample v;
	sample_fill(&v);
	char *err = NULL;
	if (store_rrd_update(s, "five", &five, T0, &v, NULL, &err) < 0)
		fail_msg("every 5m: %s", err);
	char *path = store_rrd_path(s, "five");
	expect_refused(s, "five", path, &hourly, "step 300 s, expected 3600 s");
	free(path);

	/* Other data sources (someone else's file under the same name). */
	path = fmt("%s/foreign.rrd", fx->dir);
	static const char *const foreign[] = { "DS:temp:GAUGE:7200:U:U", "RRA:AVERAGE:0.5:1:100" };
	create_foreign(path, 3600, foreign, 2);
	expect_refused(s, "foreign", path, &hourly, "data sources \"temp\", expected \"connect banner");
	free(path);

	/* Same data sources, another heartbeat. */
	struct store_rrd_layout other = hourly;
	other.heartbeat_s = 3 * 3600;
	if (store_rrd_update(s, "hb", &other, T0, &v, NULL, &err) < 0)
		fail_msg("hb: %s", err);
	path = store_rrd_path(s, "hb");
	expect_refused(s, "hb", path, &hourly, "data source connect has heartbeat 10800 s, expected 7200 s");
	free(path);

	/* Not an RRD file at all. */
	path = fmt("%s/junk.rrd", fx->dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("not an rrd\n", fp);
	fclose(fp);
	size_t len = 0;
	assert_int_equal(store_rrd_update(s, "junk", &hourly, T0, &v, NULL, &err), -1);
	assert_non_null(strstr(err, path));
	free(err);
	char *after = slurp(path, &len);
	assert_string_equal(after, "not an rrd\n");
	free(after);
	free(path);
	store_rrd_free(s);
	log_init("test", LOG_LEVEL_WARN, false, 0);
}


/* ---- files of the layout before missing and junk ---- */

/* An hourly file as the store made them before missing and junk (heartbeat hb). */
static void create_legacy(const char *path, int64_t hb)
{
	char *args[STORE_RRD_DS_LEGACY_COUNT + 10];
	int n = 0;
	for (int i = 0; i < STORE_RRD_DS_LEGACY_COUNT; i++) {
		const char *name = store_rrd_ds_name((enum store_rrd_ds)i);
		bool flag = i >= STORE_RRD_ACCEPTED && i <= STORE_RRD_INBOX;
		args[n++] = fmt("DS:%s:GAUGE:%" PRId64 ":0:%s", name, hb, flag ? "1" : "U");
	}
	static const char *const rras[] = { "RRA:AVERAGE:0.5:1:2400", "RRA:MIN:0.5:1:2400", "RRA:MAX:0.5:1:2400",
					     "RRA:AVERAGE:0.5:24:731", "RRA:MIN:0.5:24:731", "RRA:MAX:0.5:24:731",
					     "RRA:AVERAGE:0.5:168:522", "RRA:MIN:0.5:168:522", "RRA:MAX:0.5:168:522",
					     "RRA:HWPREDICT:168:0.1:0.0035:24" };
	for (size_t i = 0; i < sizeof rras / sizeof rras[0]; i++)
		args[n++] = strdup(rras[i]);
	create_foreign(path, 3600, (const char *const *)args, n);
	for (int i = 0; i < n; i++)
		free(args[i]);
}

static void test_legacy_migrated(void **state)
{
	struct fx *fx = *state;
	log_init("test", LOG_LEVEL_ERR, false, 0);
	struct store_rrd *s = store_in(fx->dir, NULL);
	struct store_rrd_layout hourly = layout_of("hourly");
	char *path = fmt("%s/leg.rrd", fx->dir);
	create_legacy(path, hourly.heartbeat_s);
	/* 20 hours of values: total = k, inbox alternating */
	int64_t end = T0 - 800; /* a step end before T0 */
	for (int k = 20; k >= 1; k--) {
		char *val = fmt("%" PRId64 ":1:2:3:4:5:6:7:8:9:%d:2:1:0:0:0:%d:1:U", end - (int64_t)(k - 1) * 3600, k, k % 2);
		const char *argv[1] = { val };
		rrd_clear_error();
		if (rrd_update_r(path, NULL, 1, argv) != 0)
			fail_msg("rrd_update_r: %s", rrd_get_error());
		free(val);
	}
	assert_int_equal(chmod(path, 0640), 0);
	char *err = NULL;
	assert_int_equal(store_rrd_check(s, "leg", &hourly, &err), -1);
	if (!strstr(err, "before the data sources missing and junk"))
		fail_msg("check: %s", err);
	free(err);
	err = NULL;

	struct store_rrd_sample v;
	sample_fill(&v);
	v.v[STORE_RRD_MISSING] = 1;
	v.v[STORE_RRD_INBOX] = 0;
	int64_t at = 0;
	if (store_rrd_update(s, "leg", &hourly, T0, &v, &at, &err) < 0)
		fail_msg("update of a legacy file: %s", err);
	assert_int_equal(at, end + 3600);
	assert_int_equal(store_rrd_check(s, "leg", &hourly, &err), 0);
	/* every earlier value kept (the first is unknown: the file starts a day earlier, longer ago
	 * than the heartbeat), the new data sources unknown there */
	for (int k = 19; k >= 1; k--) {
		int64_t t = end - (int64_t)(k - 1) * 3600;
		double tot = fetch_at(path, "AVERAGE", "total", t, NULL), ib = fetch_at(path, "MAX", "inbox", t, NULL);
		if (tot != k || ib != k % 2)
			fail_msg("after migration at %" PRId64 ": total %g inbox %g, want %d %d", t, tot, ib, k, k % 2);
		assert_true(isnan(fetch_at(path, "AVERAGE", "missing", t, NULL)));
		assert_true(isnan(fetch_at(path, "AVERAGE", "junk", t, NULL)));
	}
	/* the new update has all 20 */
	assert_true(fetch_at(path, "AVERAGE", "missing", at, NULL) == 1);
	assert_true(fetch_at(path, "AVERAGE", "junk", at, NULL) == 0);
	assert_true(fetch_at(path, "AVERAGE", "inbox", at, NULL) == 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(count_entries(fx->dir, NULL), 1); /* no temporaries left */

	/* The old data sources with another heartbeat: another layout, refused and left alone. */
	char *path2 = fmt("%s/leghb.rrd", fx->dir);
	create_legacy(path2, 3 * 3600);
	expect_refused(s, "leghb", path2, &hourly, "data sources \"connect banner");
	free(path2);
	free(path);
	store_rrd_free(s);
	log_init("test", LOG_LEVEL_WARN, false, 0);
}

/* ---- updates ---- */

static void test_update_fetch(void **state)
{
	struct fx *fx = *state;
	struct store_rrd *s = store_in(fx->dir, NULL);
	struct store_rrd_layout hourly = layout_of("hourly");
	struct store_rrd_sample v;
	sample_fill(&v);
	int64_t at = 0;
	char *err = NULL;

	if (store_rrd_update(s, "seed-a", &hourly, T0, &v, &at, &err) < 0)
		fail_msg("update: %s", err);
	assert_int_equal(at, T0 - 800 + 3600); /* the end of the step that holds T0 */
	char *path = store_rrd_path(s, "seed-a");
	static const char *const cfs[] = { "AVERAGE", "MIN", "MAX" };
	for (size_t c = 0; c < 3; c++) {
		for (int ds = 0; ds < STORE_RRD_DS__COUNT; ds++) {
			unsigned long step = 0;
			double got = fetch_at(path, cfs[c], store_rrd_ds_name((enum store_rrd_ds)ds), at, &step);
			assert_int_equal(step, 3600);
			double want = v.v[ds];
			if (isnan(want)) {
				if (!isnan(got))
					fail_msg("%s %s: got %g, want unknown", cfs[c], store_rrd_ds_name((enum store_rrd_ds)ds), got);
			} else if (!(fabs(got - want) <= 1e-9 * fabs(want))) {
				fail_msg("%s %s: got %.17g, want %.17g", cfs[c], store_rrd_ds_name((enum store_rrd_ds)ds), got,
					 want);
			}
		}
	}
	/* starttls and auth were NaN: unknown, not 0 */
	assert_true(isnan(fetch_at(path, "AVERAGE", "starttls", at, NULL)));
	assert_true(isnan(fetch_at(path, "AVERAGE", "auth", at, NULL)));

	/* The next hour: a deferral with everything else unknown. */
	struct store_rrd_sample d;
	store_rrd_sample_init(&d);
	d.v[STORE_RRD_DEFERRED] = 1;
	d.v[STORE_RRD_ACCEPTED] = 0;
	d.v[STORE_RRD_RCPT] = 9.5;
	int64_t at2 = 0;
	if (store_rrd_update(s, "seed-a", &hourly, T0 + 3600, &d, &at2, &err) < 0)
		fail_msg("update 2: %s", err);
	assert_int_equal(at2, at + 3600);
	assert_true(fabs(fetch_at(path, "AVERAGE", "deferred", at2, NULL) - 1) < 1e-12);
	assert_true(fabs(fetch_at(path, "AVERAGE", "rcpt", at2, NULL) - 9.5) < 1e-12);
	assert_true(isnan(fetch_at(path, "AVERAGE", "total", at2, NULL)));
	/* the first hour is untouched */
	assert_true(fabs(fetch_at(path, "AVERAGE", "total", at, NULL) - 123.456) < 1e-9);

	free(path);
	store_rrd_free(s);
}

static void test_timestamps(void **state)
{
	struct fx *fx = *state;
	struct store_rrd *s = store_in(fx->dir, NULL);
	struct store_rrd_layout hourly = layout_of("hourly");
	struct store_rrd_sample v;
	sample_fill(&v);
	int64_t at = 0;
	char *err = NULL;
	int64_t end = T0 - 800 + 3600;

	assert_int_equal(store_rrd_update(s, "a", &hourly, T0, &v, &at, &err), 0);
	assert_int_equal(at, end);
	/* another probe in the same hour, and one sent earlier that finished later */
	assert_int_equal(store_rrd_update(s, "a", &hourly, T0 + 10, &v, &at, &err), 0);
	assert_int_equal(at, end + 1);
	assert_int_equal(store_rrd_update(s, "a", &hourly, T0 - 7200, &v, &at, &err), 0);
	assert_int_equal(at, end + 2);
	/* on a step boundary: that step's end is the time itself */
	assert_int_equal(store_rrd_update(s, "a", &hourly, end + 3600, &v, &at, &err), 0);
	assert_int_equal(at, end + 3600);

	/* Not aligned (several probes per step): the time itself. */
	struct store_rrd_layout fast = layout_of("every 2s");
	assert_int_equal(store_rrd_update(s, "fast", &fast, T0, &v, &at, &err), 0);
	assert_int_equal(at, T0);
	assert_int_equal(store_rrd_update(s, "fast", &fast, T0 + 2, &v, &at, &err), 0);
	assert_int_equal(at, T0 + 2);
	assert_int_equal(store_rrd_update(s, "fast", &fast, T0 + 2, &v, &at, &err), 0);
	assert_int_equal(at, T0 + 3);

	/* Another writer (a second process) got ahead: the next update still lands after it. */
	struct store_rrd *other = store_in(fx->dir, NULL);
	assert_int_equal(store_rrd_update(other, "a", &hourly, end + 3 * 3600, &v, &at, &err), 0);
	assert_int_equal(at, end + 3 * 3600);
	store_rrd_free(other);
	assert_int_equal(store_rrd_update(s, "a", &hourly, end + 2 * 3600, &v, &at, &err), 0);
	assert_int_equal(at, end + 3 * 3600 + 1);
	char *path = store_rrd_path(s, "a");
	assert_int_equal(info_cnt(path, "last_update"), end + 3 * 3600 + 1);
	free(path);
	store_rrd_free(s);
}

/* ---- rate-limited complaints ---- */

static int64_t fake_now;

static int64_t fake_clock(void)
{
	return fake_now;
}

struct capture {
	int saved;
	char *path;
};

static void capture_begin(struct capture *c, const char *dir)
{
	c->path = fmt("%s/stderr.log", dir);
	int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	c->saved = dup(2);
	dup2(fd, 2);
	close(fd);
}

static char *capture_end(struct capture *c)
{
	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	char *out = slurp(c->path, NULL);
	unlink(c->path);
	free(c->path);
	return out;
}

static int count_lines(const char *s, const char *needle)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void test_complaints(void **state)
{
	struct fx *fx = *state;
	log_init("test", LOG_LEVEL_INFO, false, 0);
	fake_now = 1000000;
	struct store_rrd_params p = { .dir = fx->dir, .complain_ms = 600000, .now_ms = fake_clock };
	struct store_rrd *s = store_rrd_new(&p);
	struct store_rrd_layout hourly = layout_of("hourly"), five = layout_of("every 5m");
	struct store_rrd_sample v;
	sample_fill(&v);
	char *err = NULL;
	assert_int_equal(store_rrd_update(s, "a", &five, T0, &v, NULL, &err), 0);

	struct capture cap;
	capture_begin(&cap, fx->dir);
	for (int i = 0; i < 5; i++) { /* five failures within ten minutes: one line */
		assert_int_equal(store_rrd_update(s, "a", &hourly, T0 + 3600 * i, &v, NULL, NULL), -1);
		fake_now += 60000;
	}
	fake_now += 600000; /* ten minutes later: one more line, counting the quiet ones */
	assert_int_equal(store_rrd_update(s, "a", &hourly, T0, &v, NULL, NULL), -1);
	assert_int_equal(store_rrd_update(s, "a", &hourly, T0, &v, NULL, NULL), -1);
	/* the file moved away: a new one is created, and the recovery logged once */
	char *path = store_rrd_path(s, "a");
	char *moved = fmt("%s.old", path);
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(store_rrd_update(s, "a", &hourly, T0, &v, NULL, NULL), 0);
	assert_int_equal(store_rrd_update(s, "a", &hourly, T0 + 3600, &v, NULL, NULL), 0);
	char *log = capture_end(&cap);

	assert_int_equal(count_lines(log, "event=rrd status=failed"), 2);
	assert_int_equal(count_lines(log, "(4 similar failures not logged)"), 1);
	assert_int_equal(count_lines(log, "step 300 s, expected 3600 s"), 2);
	assert_int_equal(count_lines(log, "event=rrd status=recovered"), 1);
	assert_int_equal(count_lines(log, "failures=7"), 1);
	assert_int_equal(count_lines(log, "event=rrd status=created"), 1);
	if (!strstr(log, path))
		fail_msg("log does not name %s:\n%s", path, log);
	free(log);
	free(path);
	free(moved);
	store_rrd_free(s);
	log_init("test", LOG_LEVEL_WARN, false, 0);
}

/* ---- rrdcached not reachable: a failure, never a crash ---- */

static void test_daemon_unreachable(void **state)
{
	struct fx *fx = *state;
	char *addr = fmt("unix:%s/no.sock", fx->dir);
	struct store_rrd_params p = { .dir = fx->dir, .daemon = addr };
	struct store_rrd *s = store_rrd_new(&p);
	struct store_rrd_layout hourly = layout_of("hourly");
	struct store_rrd_sample v;
	sample_fill(&v);
	char *err = NULL;
	log_init("test", LOG_LEVEL_ERR, false, 0);
	assert_int_equal(store_rrd_update(s, "a", &hourly, T0, &v, NULL, &err), -1);
	if (!strstr(err, "rrdcached") || !strstr(err, addr))
		fail_msg("error %s: want rrdcached and the address", err);
	free(err);
	assert_int_equal(store_rrd_flush(s, "a", &err), -1);
	free(err);
	store_rrd_free(s);

	/* without a daemon, flush has nothing to do */
	s = store_in(fx->dir, NULL);
	assert_int_equal(store_rrd_flush(s, "a", &err), 0);
	store_rrd_free(s);
	free(addr);
	log_init("test", LOG_LEVEL_WARN, false, 0);
}

/* A "daemon" that hangs up on every connection, some before the request is written: the
 * writes into the closed sockets raise SIGPIPE, which must not kill the process (SIGPIPE is at
 * its default action here, as in `mailcanary probe`). */
static void test_daemon_hangs_up(void **state)
{
	struct fx *fx = *state;
	char *sock = fmt("%s/hangup.sock", fx->dir);
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 128), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives a test that died */
		if (getppid() == 1)
			_exit(0);
		for (;;) {
			int c = accept(lfd, NULL, NULL);
			if (c >= 0)
				close(c);
		}
	}
	close(lfd);
	signal(SIGPIPE, SIG_DFL);
	char *addr = fmt("unix:%s", sock);
	struct store_rrd_params p = { .dir = fx->dir, .daemon = addr };
	struct store_rrd *s = store_rrd_new(&p);
	struct store_rrd_layout hourly = layout_of("hourly");
	struct store_rrd_sample v;
	sample_fill(&v);
	log_init("test", LOG_LEVEL_ERR, false, 0);
	int failed = 0;
	for (int i = 0; i < 200; i++) {
		char *err = NULL;
		if (store_rrd_update(s, "a", &hourly, T0 + 3600 * i, &v, NULL, &err) < 0)
			failed++;
		free(err);
		if (i % 10 == 0)
			usleep(1000); /* let the hang-ups overtake the writes now and then */
	}
	assert_int_equal(failed, 200);
	sigset_t pending;
	sigpending(&pending);
	assert_false(sigismember(&pending, SIGPIPE)); /* none left behind either */
	store_rrd_free(s);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	free(addr);
	free(sock);
	log_init("test", LOG_LEVEL_WARN, false, 0);
}

/* ---- the CLI's mapping of a final JSON result to a sample (cli/rrd_feed.c) ---- */

#define U NAN

struct want {
	double v[STORE_RRD_DS__COUNT];
};

static void expect_sample(const char *label, const struct store_rrd_sample *got, const struct want *w)
{
	for (int i = 0; i < STORE_RRD_DS__COUNT; i++) {
		bool ok = isnan(w->v[i]) ? isnan(got->v[i]) : got->v[i] == w->v[i];
		if (!ok)
			fail_msg("%s: %s got %.17g, want %.17g", label, store_rrd_ds_name((enum store_rrd_ds)i), got->v[i],
				 w->v[i]);
	}
}

/*                      connect banner ehlo starttls auth mail rcpt data eod total delivery acc def rej fail inbox att acc_after missing junk */
#define W(...) { { __VA_ARGS__ } }

/* Holt-Winters: librrd's own FAILURES flags, read back by store_rrd_hw_failures() after each
 * update. "every 6h": step 6 h, a season of 4 steps, so 16 steady steps make the seasonal
 * coefficients and deviations known; then 6 values far below (6 violations: not yet the 7 of 9
 * of librrd's default), then one more: the aberration, flagged for total only. The same history
 * without the 6 gives no flag for the same last value. */
static int64_t hw_feed(struct store_rrd *s, const char *seed, const struct store_rrd_layout *l, int64_t t,
		       double total, unsigned *mask)
{
	struct store_rrd_sample v;
	store_rrd_sample_init(&v);
	v.v[STORE_RRD_TOTAL] = total;
	v.v[STORE_RRD_ACCEPTED] = 1;
	int64_t at = 0, row = 0;
	char *err = NULL;
	if (store_rrd_update(s, seed, l, t, &v, &at, &err) < 0)
		fail_msg("update %s at %" PRId64 ": %s", seed, t, err);
	if (store_rrd_hw_failures(s, seed, l, mask, &row, &err) < 0)
		fail_msg("hw_failures %s at %" PRId64 ": %s", seed, t, err);
	if (row != at)
		fail_msg("%s: row %" PRId64 ", want the update's own step %" PRId64, seed, row, at);
	return at;
}

static void test_hw_failures(void **state)
{
	struct fx *fx = *state;
	struct store_rrd *s = store_in(fx->dir, NULL);
	struct store_rrd_layout l = layout_of("every 6h");
	assert_true(store_rrd_layout_has_hw(&l));
	struct store_rrd_layout daily = layout_of("daily");
	assert_false(store_rrd_layout_has_hw(&daily)); /* a step of a day: no Holt-Winters archives */
	const int64_t step = 6 * 3600;
	int64_t t = T0 - T0 % step;
	unsigned mask = 0;
	for (int i = 0; i < 22; i++, t += step) {
		double total = i < 16 ? 5000 : 1;
		hw_feed(s, "hw", &l, t, total, &mask);
		if (mask)
			fail_msg("hw: step %d (total %g): FAILURES mask %#x, want 0 (%d violations)", i, total, mask,
				 i < 16 ? 0 : i - 15);
		hw_feed(s, "steady", &l, t, 5000, &mask);
		if (mask)
			fail_msg("steady: step %d: FAILURES mask %#x, want 0", i, mask);
	}
	hw_feed(s, "hw", &l, t, 10, &mask);
	if (mask != 1u << STORE_RRD_TOTAL)
		fail_msg("hw: the 7th violation: got mask %#x, want %#x (total)", mask, 1u << STORE_RRD_TOTAL);
	hw_feed(s, "steady", &l, t, 10, &mask);
	if (mask != 0)
		fail_msg("steady: one violation: got mask %#x, want 0", mask);
	/* the real aberration's window holds no unknown value: it stands */
	unsigned unknown = 1;
	char *werr = NULL;
	if (store_rrd_hw_window_unknown(s, "hw", &l, t, &unknown, &werr) < 0)
		fail_msg("window of hw: %s", werr);
	if (unknown & (1u << STORE_RRD_TOTAL))
		fail_msg("hw: window unknown mask %#x: total was known at every step", unknown);

	/* Unknown values: a steady seed whose probes measured no total for 8 steps (NaN written),
	 * then the same value as always. librrd counts the unknown values as violations and flags
	 * total; the window says why. */
	int64_t g = t + step;
	for (int i = 0; i < 22; i++, g += step)
		hw_feed(s, "gap", &l, g, 5000, &mask);
	for (int i = 0; i < 8; i++, g += step)
		hw_feed(s, "gap", &l, g, NAN, &mask);
	hw_feed(s, "gap", &l, g, 5000, &mask);
	if (!(mask & (1u << STORE_RRD_TOTAL)))
		fail_msg("gap: librrd did not flag total after 8 unknown values (mask %#x)", mask);
	if (store_rrd_hw_window_unknown(s, "gap", &l, g, &unknown, &werr) < 0)
		fail_msg("window of gap: %s", werr);
	if (!(unknown & (1u << STORE_RRD_TOTAL)))
		fail_msg("gap: window unknown mask %#x lacks total", unknown);
	/* Downtime (no update at all for 8 steps) is not flagged by librrd: the deviation it
	 * compares with is unknown across the gap, and unknown steps then count as no violation. */
	g += 9 * step;
	hw_feed(s, "gap", &l, g, 5000, &mask);
	if (mask)
		fail_msg("gap: after 8 steps without updates librrd flagged %#x", mask);

	/* A second update within the same step completes no row: nothing read. */
	struct store_rrd_layout fast = layout_of("every 20s"); /* step 60, not aligned */
	assert_false(fast.align);
	struct store_rrd_sample v;
	store_rrd_sample_init(&v);
	int64_t at = 0, row = 1;
	char *err = NULL;
	int64_t base = T0 - T0 % 60 + 10;
	assert_int_equal(store_rrd_update(s, "fast", &fast, base, &v, &at, &err), 0);
	assert_int_equal(store_rrd_update(s, "fast", &fast, base + 20, &v, &at, &err), 0);
	assert_int_equal(store_rrd_hw_failures(s, "fast", &fast, &mask, &row, &err), 0);
	assert_int_equal(row, 0);
	assert_int_equal(store_rrd_update(s, "fast", &fast, base + 60, &v, &at, &err), 0);
	assert_int_equal(store_rrd_hw_failures(s, "fast", &fast, &mask, &row, &err), 0);
	assert_int_equal(row, base + 60 - 10); /* the row that update completed */
	/* A seed this store never wrote: nothing read. */
	assert_int_equal(store_rrd_hw_failures(s, "other", &l, &mask, &row, &err), 0);
	assert_int_equal(row, 0);
	store_rrd_free(s);
}

/* The CLI's decision on the flags: delivery and total only, each only with the probe's own value. */
static void test_feed_aberrations(void **state)
{
	(void)state;
	struct store_rrd_sample v;
	store_rrd_sample_init(&v);
	static const struct {
		double total, delivery;
		unsigned mask, want;
	} cases[] = {
		{ 10, NAN, 1u << STORE_RRD_TOTAL, ALERT_ABERRATION_TOTAL },
		{ NAN, NAN, 1u << STORE_RRD_TOTAL, 0 },                 /* total unknown: not blamed */
		{ 10, 2, 1u << STORE_RRD_DELIVERY, ALERT_ABERRATION_DELIVERY },
		{ 10, NAN, 1u << STORE_RRD_DELIVERY, 0 },              /* no readback: delivery unknown */
		{ 10, 2, 1u << STORE_RRD_TOTAL | 1u << STORE_RRD_DELIVERY,
		  ALERT_ABERRATION_TOTAL | ALERT_ABERRATION_DELIVERY },
		{ 10, 2, 1u << STORE_RRD_RCPT | 1u << STORE_RRD_INBOX, 0 }, /* other data sources: ignored */
		{ 10, 2, 0, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		v.v[STORE_RRD_TOTAL] = cases[i].total;
		v.v[STORE_RRD_DELIVERY] = cases[i].delivery;
		unsigned got = rrd_feed_aberrations(cases[i].mask, &v);
		if (got != cases[i].want)
			fail_msg("case %zu: mask %#x total %g delivery %g: got %#x, want %#x", i, cases[i].mask,
				 cases[i].total, cases[i].delivery, got, cases[i].want);
	}
}

/* ---- the feed's writer thread (cli/rrd_feed.c) ---- */

struct feed_seen {
	int n;
	char ids[128][16];
	bool checked[128];
	unsigned aberrations[128];
	bool off_thread;       /* a report came on another thread than the loop's */
	pthread_t loop_thread;
};

static void on_fed(void *arg, const char *json, const struct rrd_feed_hw *hw)
{
	struct feed_seen *fs = arg;
	if (!pthread_equal(pthread_self(), fs->loop_thread))
		fs->off_thread = true;
	const char *id = strstr(json, "\"probe_id\":\"");
	assert_non_null(id);
	id += 12;
	assert_true(fs->n < 128);
	snprintf(fs->ids[fs->n], sizeof fs->ids[fs->n], "%.*s", (int)strcspn(id, "\""), id);
	fs->checked[fs->n] = hw->checked;
	fs->aberrations[fs->n] = hw->aberrations;
	fs->n++;
}

static char *line_for(const char *seed, const char *id, int64_t t, double total, bool late)
{
	char when[32];
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
	char ms[48] = ""; /* total NaN: the probe measured none */
	if (!isnan(total))
		snprintf(ms, sizeof ms, "\"total\":%g", total);
	char *s = xasprintf("{\"seed\":\"%s\",\"probe_id\":\"%s\",\"sent_at\":\"%s\",\"smtp\":{\"outcome\":"
			      "\"accepted\",\"ms\":{%s},\"attempts\":[{}]},\"readback\":{\"status\":\"found\","
			      "\"folder\":\"INBOX\",\"delivery_s\":1%s},\"final\":true}",
			 seed, id, when, ms, late ? ",\"late\":true" : "");
	return s;
}

/* Lines submitted from the loop are written by the writer thread and reported on the loop's
 * thread in submission order, also a late arrival (not written) and a seed the configuration no
 * longer has; evloop_run() lasts until the last report. Drained without the loop, the lines
 * still queued are written and reported in order, and nothing is reported twice. */
static void test_feed_writer(void **state)
{
	struct fx *fx = *state;
	char *cpath = NULL, *rdir = NULL;
	cpath = xasprintf("%s/mc.conf", fx->dir);
	rdir = xasprintf("%s/rrd", fx->dir);
	FILE *fp = fopen(cpath, "w");
	assert_non_null(fp);
	fprintf(fp, "state_dir = \"%s\";\nrrd_dir = \"%s\";\nalert: { command = \"/bin/true\"; };\n"
		    "senders = ( { name = \"r\"; mode = \"relay\"; host = \"127.0.0.1\"; port = 2525; "
		    "helo = \"x.test\"; mail_from = \"c@x.test\"; } );\n"
		    "seeds = ( { name = \"a\"; address = \"a@x.test\"; sender = \"r\"; schedule = \"hourly\"; },\n"
		    "          { name = \"h\"; address = \"h@x.test\"; sender = \"r\"; schedule = \"every 6h\"; } );\n",
		fx->dir, rdir);
	fclose(fp);
	struct mon_conf *conf = NULL;
	struct conf_errors errs = { 0 };
	if (conf_load(cpath, &conf, &errs) < 0) {
		conf_errors_print(&errs, stderr);
		fail_msg("conf_load");
	}
	struct evloop *loop = evloop_new();
	struct rrd_feed *f = rrd_feed_new(conf);
	assert_non_null(f);
	struct feed_seen fs = { .loop_thread = pthread_self() };
	rrd_feed_attach(f, loop, on_fed, &fs);

	char id[16];
	for (int i = 0; i < 24; i++) {
		snprintf(id, sizeof id, "a%d", i);
		char *l = line_for("a", id, T0 + i * 3600, 100 + i, false);
		rrd_feed_submit(f, l, true);
		free(l);
		snprintf(id, sizeof id, "h%d", i);
		l = line_for("h", id, T0 + i * 6 * 3600, 50, false);
		rrd_feed_submit(f, l, true);
		free(l);
	}
	char *l = line_for("a", "late", T0 + 30 * 3600, 999, true);
	rrd_feed_submit(f, l, true);
	free(l);
	l = line_for("gone", "gone", T0, 1, false);
	rrd_feed_submit(f, l, true);
	free(l);
	assert_int_equal(fs.n, 0); /* nothing reported from within the submits */
	evloop_run(loop);
	assert_int_equal(fs.n, 50);
	assert_false(fs.off_thread);
	for (int i = 0; i < 24; i++) {
		snprintf(id, sizeof id, "a%d", i);
		assert_string_equal(fs.ids[2 * i], id);
		snprintf(id, sizeof id, "h%d", i);
		assert_string_equal(fs.ids[2 * i + 1], id);
	}
	assert_string_equal(fs.ids[48], "late");
	assert_string_equal(fs.ids[49], "gone");
	assert_false(fs.checked[48]); /* not written, so nothing read */
	assert_false(fs.checked[49]);
	assert_true(fs.checked[47]);  /* "every 6h" has the Holt-Winters archives */

	char *path = NULL;
	path = xasprintf("%s/a.rrd", rdir);
	for (int i = 0; i < 24; i++) {
		double got = fetch_at(path, "AVERAGE", "total", T0 - 800 + 3600 * (i + 1), NULL);
		if (!(fabs(got - (100 + i)) < 1e-9))
			fail_msg("a.rrd step %d: total %g, want %d", i, got, 100 + i);
	}
	assert_true(isnan(fetch_at(path, "AVERAGE", "total", T0 - 800 + 3600 * 31, NULL))); /* "late": not written */

	/* drained: written and reported without the loop */
	for (int i = 24; i < 30; i++) {
		snprintf(id, sizeof id, "a%d", i);
		l = line_for("a", id, T0 + i * 3600, 100 + i, false);
		rrd_feed_submit(f, l, false);
		free(l);
	}
	rrd_feed_drain(f);
	assert_int_equal(fs.n, 56);
	for (int i = 24; i < 30; i++) {
		snprintf(id, sizeof id, "a%d", i);
		assert_string_equal(fs.ids[50 + i - 24], id);
		assert_false(fs.checked[50 + i - 24]); /* not asked for */
	}
	assert_true(fabs(fetch_at(path, "AVERAGE", "total", T0 - 800 + 3600 * 30, NULL) - 129) < 1e-9);
	evloop_run(loop); /* nothing armed is left: returns at once, reports nothing again */
	assert_int_equal(fs.n, 56);

	/* Holt-Winters through the feed ("every 6h"): 8 probes that measured no total make librrd
	 * flag the next normal one (it counts unknown values as violations): not counted. Then 6
	 * totals far off and a 7th: a real aberration, counted. */
	int64_t th = T0 + 24 * 6 * 3600;
	for (int i = 0; i < 8; i++, th += 6 * 3600) {
		snprintf(id, sizeof id, "u%d", i);
		l = line_for("h", id, th, NAN, false);
		rrd_feed_submit(f, l, true);
		free(l);
	}
	for (int i = 0; i < 10; i++, th += 6 * 3600) { /* the window fills with known values again */
		snprintf(id, sizeof id, "k%d", i);
		l = line_for("h", id, th, 50, false);
		rrd_feed_submit(f, l, true);
		free(l);
	}
	for (int i = 0; i < 7; i++, th += 6 * 3600) {
		snprintf(id, sizeof id, "x%d", i);
		l = line_for("h", id, th, 90000, false);
		rrd_feed_submit(f, l, true);
		free(l);
	}
	evloop_run(loop);
	assert_int_equal(fs.n, 56 + 25);
	assert_string_equal(fs.ids[64], "k0");
	for (int i = 56; i < 56 + 24; i++)
		if (fs.aberrations[i])
			fail_msg("%s: aberrations %#x, want none", fs.ids[i], fs.aberrations[i]);
	assert_string_equal(fs.ids[80], "x6");
	assert_int_equal(fs.aberrations[80], ALERT_ABERRATION_TOTAL);

	rrd_feed_free(f);
	evloop_free(loop);
	conf_free(conf);
	conf_errors_fini(&errs);
	free(path);
	free(cpath);
	free(rdir);
}

static void test_sample_from_json(void **state)
{
	(void)state;
	static const struct {
		const char *label, *json;
		struct want want;
	} cases[] = {
		{ "accepted, read back from INBOX after two attempts",
		  "{\"seed\":\"seed-a\",\"vantage\":\"fra1\",\"probe_id\":\"x\",\"sent_at\":\"2026-11-28T06:12:00.123Z\","
		  "\"smtp\":{\"outcome\":\"accepted\",\"stage\":\"eod\",\"code\":250,\"enhanced\":\"2.0.0\","
		  "\"text\":\"Ok: queued as {\\\"}\\\" [x]\",\"ms\":{\"dns\":1.2,\"connect\":0.3,\"banner\":0.4,\"ehlo\":0.3,"
		  "\"starttls\":9.1,\"auth\":1,\"mail\":0.2,\"rcpt\":0.25,\"data\":0.2,\"eod\":1.1,\"total\":14},"
		  "\"attempts\":[{\"n\":1,\"outcome\":\"deferred\",\"ms\":{\"total\":99}},{\"n\":2,\"outcome\":\"accepted\"}],"
		  "\"accepted_after_s\":312.4,\"tries\":[],\"warnings\":[]},"
		  "\"readback\":{\"status\":\"found\",\"folder\":\"INBOX\",\"junk\":false,\"delivery_s\":2,"
		  "\"hops\":[{\"by\":\"a\",\"delay_s\":1}]},\"final\":true}",
		  W(0.3, 0.4, 0.3, 9.1, 1, 0.2, 0.25, 0.2, 1.1, 14, 2, 1, 0, 0, 0, 1, 2, 312.4, 0, 0) },
		{ "found in the junk folder",
		  "{\"seed\":\"s\",\"sent_at\":\"2026-11-28T06:12:00.000Z\",\"smtp\":{\"outcome\":\"accepted\","
		  "\"ms\":{\"total\":5},\"attempts\":[{}],\"accepted_after_s\":0.005},"
		  "\"readback\":{\"status\":\"found\",\"folder\":\"Junk\",\"junk\":true,\"delivery_s\":0}}",
		  W(U, U, U, U, U, U, U, U, U, 5, 0, 1, 0, 0, 0, 0, 1, 0.005, 0, 1) },
		{ "found in a lower-case inbox (IMAP's INBOX is case-insensitive)",
		  "{ \"seed\" : \"s\" , \"sent_at\" : \"2026-11-28T06:12:00Z\" , \"smtp\" : { \"outcome\" : \"accepted\" ,"
		  " \"attempts\" : [ { } ] } , \"readback\" : { \"status\" : \"found\" , \"folder\" : \"inbox\" } }",
		  W(U, U, U, U, U, U, U, U, U, U, U, 1, 0, 0, 0, 1, 1, U, 0, 0) },
		{ "missing",
		  "{\"seed\":\"s\",\"sent_at\":\"2026-11-28T06:12:00.000Z\",\"smtp\":{\"outcome\":\"accepted\","
		  "\"attempts\":[{}]},\"readback\":{\"status\":\"missing\",\"polls\":9}}",
		  W(U, U, U, U, U, U, U, U, U, U, U, 1, 0, 0, 0, 0, 1, U, 1, 0) },
		{ "bounced",
		  "{\"seed\":\"s\",\"sent_at\":\"2026-11-28T06:12:00.000Z\",\"smtp\":{\"outcome\":\"accepted\","
		  "\"attempts\":[{}]},\"readback\":{\"status\":\"bounced\",\"bounces\":[{\"action\":\"failed\"}]}}",
		  W(U, U, U, U, U, U, U, U, U, U, U, 1, 0, 0, 0, 0, 1, U, 1, 0) },
		{ "rejected at rcpt, no readback",
		  "{\"seed\":\"s\",\"sent_at\":\"2026-11-28T06:12:00.000Z\",\"smtp\":{\"outcome\":\"rejected\","
		  "\"stage\":\"rcpt\",\"ms\":{\"connect\":0.1,\"banner\":0.2,\"ehlo\":0.3,\"mail\":0.4,\"rcpt\":0.5,"
		  "\"total\":1.5},\"attempts\":[{}]},\"readback\":{\"status\":\"skipped\"},\"final\":true}",
		  W(0.1, 0.2, 0.3, U, U, 0.4, 0.5, U, U, 1.5, U, 0, 0, 1, 0, U, 1, U, U, U) },
		{ "failed after three attempts",
		  "{\"seed\":\"s\",\"sent_at\":\"2026-11-28T06:12:00.000Z\",\"smtp\":{\"outcome\":\"failed\","
		  "\"ms\":{\"connect\":30000,\"total\":30000.5},\"attempts\":[{},{},{}]}}",
		  W(30000, U, U, U, U, U, U, U, U, 30000.5, U, 0, 0, 0, 1, U, 3, U, U, U) },
		{ "unknown outcome: none of the four",
		  "{\"seed\":\"s\",\"sent_at\":\"2026-11-28T06:12:00.000Z\",\"smtp\":{\"outcome\":\"unknown\","
		  "\"ms\":{\"eod\":600000},\"attempts\":[{}]},\"readback\":{\"status\":\"error\",\"error\":\"x\"}}",
		  W(U, U, U, U, U, U, U, U, 600000, U, U, 0, 0, 0, 0, U, 1, U, U, U) },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct store_rrd_sample s;
		char seed[128];
		int64_t sent = 0;
		if (rrd_sample_from_json(cases[i].json, &s, seed, sizeof seed, &sent) < 0)
			fail_msg("%s: not understood", cases[i].label);
		expect_sample(cases[i].label, &s, &cases[i].want);
		assert_string_equal(seed, i == 0 ? "seed-a" : "s");
		/* 2026-11-28T06:12:00Z = 1795846320 */
		assert_int_equal(sent, INT64_C(1795846320000) + (i == 0 ? 123 : 0));
	}

	static const char *const bad[] = {
		"", "{}", "[1,2]", "not json",
		"{\"seed\":\"s\",\"smtp\":{}}",                                    /* no sent_at */
		"{\"seed\":\"s\",\"sent_at\":\"yesterday\",\"smtp\":{}}",           /* not a time */
		"{\"seed\":\"s\",\"sent_at\":\"2026-11-28T06:12:00.000Z\"}",        /* no smtp */
		"{\"seed\":\"\",\"sent_at\":\"2026-11-28T06:12:00.000Z\",\"smtp\":{}}",
		"{\"seed\":\"s\",\"text\":\"unterminated",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct store_rrd_sample s;
		char seed[16];
		int64_t sent = 0;
		if (rrd_sample_from_json(bad[i], &s, seed, sizeof seed, &sent) != -1)
			fail_msg("%s: understood, want -1", bad[i]);
	}
}

/* The JSON writer (probe/result.c) and the reader agree: a result built as the engine builds one. */
static void test_sample_from_result(void **state)
{
	(void)state;
	struct probe_result r;
	probe_result_init(&r);
	snprintf(r.seed, sizeof r.seed, "seed-a");
	snprintf(r.probe_id, sizeof r.probe_id, "abc");
	r.sent_at_ms = INT64_C(1795846320123);
	r.attempt_at_ms = r.sent_at_ms + 60000;
	r.attempt = 2;
	r.prev_attempts = strdup("{\"n\":1,\"outcome\":\"deferred\"}");
	r.smtp.outcome = OUTCOME_ACCEPTED;
	r.smtp.stage = STAGE_EOD;
	r.smtp.code = 250;
	static const double ms[STAGE__COUNT] = { 0, 0.5, 1.25, 2, 0, 0, 3.5, 4, 5, 6.125 };
	for (int st = STAGE_CONNECT; st < STAGE__COUNT; st++) {
		r.smtp.t.ms[st] = ms[st];
		r.smtp.t.present[st] = st != STAGE_STARTTLS && st != STAGE_AUTH;
	}
	r.total_ms = 250.25;
	r.readback_json = strdup("{\"status\":\"found\",\"folder\":\"INBOX\",\"junk\":false,\"delivery_s\":3}");
	struct strbuf line;
	sb_init(&line);
	probe_result_json(&r, &line, true);
	struct store_rrd_sample s;
	char seed[128];
	int64_t sent = 0;
	if (rrd_sample_from_json(line.s, &s, seed, sizeof seed, &sent) < 0)
		fail_msg("not understood: %s", line.s);
	struct want w = W(0.5, 1.25, 2, U, U, 3.5, 4, 5, 6.125, 250.25, 3, 1, 0, 0, 0, 1, 2, 60.25, 0, 0);
	expect_sample(line.s, &s, &w);
	assert_string_equal(seed, "seed-a");
	assert_int_equal(sent, r.sent_at_ms);
	sb_fini(&line);
	probe_result_fini(&r);
}

int main(void)
{
	log_init("test", LOG_LEVEL_WARN, false, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layouts),
		cmocka_unit_test(test_sample_from_json),
		cmocka_unit_test(test_sample_from_result),
		cmocka_unit_test(test_feed_aberrations),
		cmocka_unit_test_setup_teardown(test_hw_failures, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_feed_writer, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_create_and_check, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_other_layout_refused, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_legacy_migrated, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_update_fetch, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_timestamps, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_complaints, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_daemon_unreachable, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_daemon_hangs_up, dir_setup, dir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
