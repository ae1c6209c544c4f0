/* Unit tests: durations, JSON writer, timer heap of the event loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "duration.h"
#include "evloop.h"
#include "json.h"
#include "strbuf.h"

static void test_duration_parse(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int rc;
		int64_t ms;
	} c[] = {
		{ "30s", 0, 30000 }, { "5m", 0, 300000 }, { "1h", 0, 3600000 }, { "2d", 0, 172800000 },
		{ "1w", 0, 604800000 }, { "250ms", 0, 250 }, { "1h30m", 0, 5400000 }, { "0s", 0, 0 },
		{ "", -1, 0 }, { "30", -1, 0 }, { "s", -1, 0 }, { "5x", -1, 0 }, { "-5s", -1, 0 },
		{ "5 s", -1, 0 }, { "1.5s", -1, 0 }, { "99999999999999999999s", -1, 0 }, { "5mss", -1, 0 },
		{ "213503982335d", -1, 0 }, { "15300000000w", -1, 0 }, /* overflowed before (fuzz_duration) */
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int64_t ms = -7;
		const char *err = NULL;
		int rc = duration_parse(c[i].s, &ms, &err);
		if (rc != c[i].rc || (rc == 0 && ms != c[i].ms) || (rc < 0 && !err))
			fail_msg("\"%s\": got rc=%d ms=%lld; want rc=%d ms=%lld", c[i].s, rc, (long long)ms, c[i].rc,
				 (long long)c[i].ms);
	}
	char buf[32];
	assert_string_equal(duration_format(300000, buf, sizeof buf), "5m");
	assert_string_equal(duration_format(90000, buf, sizeof buf), "90s");
	assert_string_equal(duration_format(1500, buf, sizeof buf), "1500ms");
	assert_string_equal(duration_format(0, buf, sizeof buf), "0s");
}

static void test_json(void **state)
{
	(void)state;
	struct strbuf sb;
	struct json j;
	sb_init(&sb);
	json_init(&j, &sb);
	json_obj_begin(&j);
	json_kstr(&j, "a", "q\"b\\\n\x01");
	json_kint(&j, "n", -5);
	json_key(&j, "arr");
	json_arr_begin(&j);
	json_str(&j, "x");
	json_null(&j);
	json_bool(&j, true);
	json_arr_end(&j);
	json_kdouble(&j, "d", 1.25, 1);
	json_key(&j, "o");
	json_obj_begin(&j);
	json_obj_end(&j);
	json_kstr(&j, "bad", "\xff\xc3\xa9");
	json_obj_end(&j);
	assert_string_equal(sb.s, "{\"a\":\"q\\\"b\\\\\\n\\u0001\",\"n\":-5,\"arr\":[\"x\",null,true],\"d\":1.2,\"o\":{},"
				  "\"bad\":\"\\ufffd\xc3\xa9\"}");
	sb_fini(&sb);
}

struct fired {
	int order[8];
	int n;
};
struct tctx {
	struct fired *f;
	int id;
};

static void on_t(void *arg)
{
	struct tctx *t = arg;
	t->f->order[t->f->n++] = t->id;
}

static void test_timers(void **state)
{
	(void)state;
	struct evloop *loop = evloop_new();
	struct fired f = { { 0 }, 0 };
	struct tctx c[5];
	struct evtimer t[5];
	int64_t now = mono_us();
	int64_t due[5] = { 30000, 10000, 20000, 5000, 40000 };
	for (int i = 0; i < 5; i++) {
		c[i].f = &f;
		c[i].id = i;
		evtimer_init(&t[i], on_t, &c[i]);
		evtimer_start(loop, &t[i], now + due[i]);
	}
	evtimer_stop(loop, &t[2]);   /* cancelled: never fires */
	evtimer_stop(loop, &t[2]);   /* twice is harmless */
	evtimer_start(loop, &t[4], now + 1000); /* re-armed earlier */
	evloop_run(loop);
	assert_int_equal(f.n, 4);
	assert_int_equal(f.order[0], 4);
	assert_int_equal(f.order[1], 3);
	assert_int_equal(f.order[2], 1);
	assert_int_equal(f.order[3], 0);
	assert_true(mono_us() - now >= 30000);
	evloop_free(loop);
}

/* Random arm/re-arm/stop sequences: the heap always yields the earliest armed timer. */
static void test_timer_heap_random(void **state)
{
	(void)state;
	enum { N = 200 };
	struct evloop *loop = evloop_new();
	static struct evtimer t[N];
	static int64_t due[N];
	static bool armed[N];
	unsigned seed = 12345;
	for (int i = 0; i < N; i++) {
		evtimer_init(&t[i], NULL, NULL);
		armed[i] = false;
	}
	for (int step = 0; step < 20000; step++) {
		seed = seed * 1103515245u + 12345u;
		int i = (int)((seed >> 8) % N);
		seed = seed * 1103515245u + 12345u;
		if ((seed >> 16) % 3 == 0) {
			evtimer_stop(loop, &t[i]);
			armed[i] = false;
		} else {
			due[i] = (int64_t)((seed >> 4) % 100000);
			evtimer_start(loop, &t[i], due[i]);
			armed[i] = true;
		}
		int64_t min = INT64_MAX;
		for (int k = 0; k < N; k++) {
			if (armed[k] && due[k] < min)
				min = due[k];
			assert_int_equal(evtimer_armed(&t[k]), armed[k]);
		}
		assert_true(min == INT64_MAX || evloop_next_due(loop) == min);
	}
	for (int k = 0; k < N; k++)
		evtimer_stop(loop, &t[k]);
	evloop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_timer_heap_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
