/* The detail log (store/jsonlog.c): appending, rotation by size and by day with `keep` files,
 * and the journal replay's duplicate check across a rotation. Files live in a fresh mkdtemp
 * directory under /tmp, removed afterwards. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>

#include "jsonlog.h"

static char *dir;

static int setup(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/mc-jsonlog-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	dir = strdup(tmpl);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rm_rf(dir);
	free(dir);
	return 0;
}

static void append(const struct jsonlog_rotate *rot, const char *line)
{
	char *err = NULL, *rerr = NULL;
	assert_int_equal(jsonlog_append(dir, rot, line, &err, &rerr), 0);
	assert_null(err);
	assert_null(rerr);
}

static char *file(const char *suffix)
{
	char *p = fmt("%s/results.jsonl%s", dir, suffix);
	char *s = slurp_opt(p, NULL);
	free(p);
	return s;
}

static void expect_file(const char *suffix, const char *want)
{
	char *s = file(suffix);
	if (!want) {
		assert_null(s);
		return;
	}
	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

static void test_size(void **state)
{
	(void)state;
	/* 20 bytes per line ("{\"probe_id\":\"pN\"}" + pad + \n); room for two lines per file */
	struct jsonlog_rotate rot = { .max_bytes = 45, .keep = 2 };
	append(&rot, "{\"probe_id\":\"p1\"}xx");
	append(&rot, "{\"probe_id\":\"p2\"}xx");
	expect_file("", "{\"probe_id\":\"p1\"}xx\n{\"probe_id\":\"p2\"}xx\n");
	expect_file(".1", NULL);
	append(&rot, "{\"probe_id\":\"p3\"}xx"); /* would pass 45 bytes: rotated first */
	expect_file("", "{\"probe_id\":\"p3\"}xx\n");
	expect_file(".1", "{\"probe_id\":\"p1\"}xx\n{\"probe_id\":\"p2\"}xx\n");
	append(&rot, "{\"probe_id\":\"p4\"}xx");
	append(&rot, "{\"probe_id\":\"p5\"}xx");
	expect_file("", "{\"probe_id\":\"p5\"}xx\n");
	expect_file(".1", "{\"probe_id\":\"p3\"}xx\n{\"probe_id\":\"p4\"}xx\n");
	expect_file(".2", "{\"probe_id\":\"p1\"}xx\n{\"probe_id\":\"p2\"}xx\n");
	append(&rot, "{\"probe_id\":\"p6\"}xx");
	append(&rot, "{\"probe_id\":\"p7\"}xx"); /* keep = 2: p1 and p2 are gone */
	expect_file("", "{\"probe_id\":\"p7\"}xx\n");
	expect_file(".1", "{\"probe_id\":\"p5\"}xx\n{\"probe_id\":\"p6\"}xx\n");
	expect_file(".2", "{\"probe_id\":\"p3\"}xx\n{\"probe_id\":\"p4\"}xx\n");
	expect_file(".3", NULL);

	/* a line longer than max_size still goes into a file of its own, whole */
	rot.max_bytes = 10;
	append(&rot, "{\"probe_id\":\"long\"}");
	expect_file("", "{\"probe_id\":\"long\"}\n");
	expect_file(".1", "{\"probe_id\":\"p7\"}xx\n");

	/* NULL and max 0 without daily: never rotated */
	append(NULL, "a");
	struct jsonlog_rotate off = { .keep = 3 };
	append(&off, "b");
	expect_file("", "{\"probe_id\":\"long\"}\na\nb\n");
}

static void set_mtime(const char *suffix, time_t t)
{
	char *p = fmt("%s/results.jsonl%s", dir, suffix);
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	free(p);
}

static void test_daily(void **state)
{
	(void)state;
	struct jsonlog_rotate rot = { .daily = true, .keep = 5 };
	append(&rot, "d1");
	append(&rot, "d2");                 /* the same day: no rotation */
	expect_file("", "d1\nd2\n");
	set_mtime("", time(NULL) - 86400);  /* last written yesterday */
	append(&rot, "d3");
	expect_file("", "d3\n");
	expect_file(".1", "d1\nd2\n");
	append(&rot, "d4");
	expect_file("", "d3\nd4\n");
}

static void test_contains(void **state)
{
	(void)state;
	struct jsonlog_rotate rot = { .max_bytes = 70, .keep = 3 }; /* two of these lines per file */
	append(&rot, "{\"probe_id\":\"a\",\"final\":true}");
	append(&rot, "{\"probe_id\":\"b\",\"final\":false}");
	assert_true(jsonlog_contains(dir, "a"));
	assert_false(jsonlog_contains(dir, "b")); /* not final */
	append(&rot, "{\"probe_id\":\"c\",\"final\":true}"); /* rotates: a is in .1 now */
	expect_file("", "{\"probe_id\":\"c\",\"final\":true}\n");
	assert_true(jsonlog_contains(dir, "a"));
	assert_true(jsonlog_contains(dir, "c"));
	assert_false(jsonlog_contains(dir, "d"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_daily, setup, teardown),
		cmocka_unit_test_setup_teardown(test_contains, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
