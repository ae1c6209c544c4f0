/* Unit tests: durations, JSON writer, timer heap and cross-thread posts of the event loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "duration.h"
#include "evloop.h"
#include "json.h"
#include "sockts.h"
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

/* Posts: fired from other threads, delivered on the loop's thread in firing order, exactly once;
 * a disarmed post never runs; evloop_run() lasts while any post is armed and no longer. */
struct postctx {
	struct evpost post;
	int id;
	int *order, *n;
	int delivered;
};

static void on_post(void *arg)
{
	struct postctx *c = arg;
	c->delivered++;
	c->order[(*c->n)++] = c->id;
}

struct firer {
	struct postctx *v;
	size_t from, to, step;
	int delay_us;
};

static void *fire_some(void *arg)
{
	struct firer *f = arg;
	if (f->delay_us)
		usleep((useconds_t)f->delay_us);
	for (size_t i = f->from; i < f->to; i += f->step)
		evpost_fire(&f->v[i].post);
	return NULL;
}

static void test_posts(void **state)
{
	(void)state;
	struct evloop *loop = evloop_new();
	int order[8], n = 0;
	struct postctx c[4];
	for (int i = 0; i < 4; i++) {
		c[i] = (struct postctx){ .id = i, .order = order, .n = &n };
		evpost_arm(loop, &c[i].post, on_post, &c[i]);
	}
	/* fired 3, 1, 0, 2 by one thread after the loop is already waiting; 1 withdrawn before it runs */
	struct firer f = { c, 3, 4, 1, 20000 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, fire_some, &f), 0);
	pthread_join(th, NULL);
	evpost_fire(&c[1].post);
	evpost_fire(&c[0].post);
	evpost_fire(&c[2].post);
	evpost_disarm(&c[1].post);
	evpost_disarm(&c[1].post); /* twice is harmless */
	int64_t t0 = mono_us();
	evloop_run(loop); /* returns once 3, 0 and 2 are delivered */
	assert_true(mono_us() - t0 < 5 * 1000 * 1000);
	assert_int_equal(n, 3);
	assert_int_equal(order[0], 3);
	assert_int_equal(order[1], 0);
	assert_int_equal(order[2], 2);
	assert_int_equal(c[1].delivered, 0);

	/* the loop waits for a post fired late, from another thread */
	evpost_arm(loop, &c[1].post, on_post, &c[1]);
	f = (struct firer){ c, 1, 2, 1, 50000 };
	assert_int_equal(pthread_create(&th, NULL, fire_some, &f), 0);
	t0 = mono_us();
	evloop_run(loop);
	assert_true(mono_us() - t0 >= 40000);
	pthread_join(th, NULL);
	assert_int_equal(n, 4);
	assert_int_equal(order[3], 1);
	assert_int_equal(c[1].delivered, 1);
	evloop_free(loop);
}

/* 4 threads fire 20,000 posts at once: every one is delivered exactly once, more than one turn's
 * worth per wakeup included. */
static void test_posts_many(void **state)
{
	(void)state;
	enum { N = 20000, T = 4 };
	struct evloop *loop = evloop_new();
	static struct postctx c[N];
	static int order[N];
	int n = 0;
	for (int i = 0; i < N; i++) {
		c[i] = (struct postctx){ .id = i, .order = order, .n = &n };
		evpost_arm(loop, &c[i].post, on_post, &c[i]);
	}
	struct firer f[T];
	pthread_t th[T];
	for (int t = 0; t < T; t++) {
		f[t] = (struct firer){ c, (size_t)t, N, T, 0 };
		assert_int_equal(pthread_create(&th[t], NULL, fire_some, &f[t]), 0);
	}
	evloop_run(loop);
	for (int t = 0; t < T; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(n, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(c[i].delivered, 1);
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

/* Kernel stamps on a loopback TCP pair: a send's stamp and a peek's stamp fall between the
 * clock readings around them, and a peek consumes nothing. */
static void test_sockts(void **state)
{
	(void)state;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(l >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(sockts_enable(c), 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
	int s = accept(l, NULL, NULL);
	assert_true(s >= 0);
	/* without it the server's second small write waits for the ACK of its first (Nagle), and
	 * arrives, and is stamped, up to 40 ms after the write */
	int one_on = 1;
	assert_int_equal(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one_on, sizeof one_on), 0);

	assert_true(sockts_tx_drain(c) < 0); /* nothing sent yet */
	sockts_rx_watch(c);
	assert_true(sockts_rx_last() < 0);
	/* The kernel turns receive stamps on from a work queue, a moment after the first socket
	 * asks: until then packets arrive unstamped (callers fall back to their own clock). */
	char buf[16];
	for (int i = 0; i < 200 && sockts_rx_last() < 0; i++) {
		assert_int_equal(write(s, "x", 1), 1);
		usleep(10000);
		assert_int_equal(recv(c, buf, 1, 0), 1);
	}
	assert_true(sockts_rx_last() >= 0);
	int64_t t0 = mono_us();
	assert_int_equal(write(c, "EHLO x\r\n", 8), 8);
	int64_t tx = sockts_tx_drain(c);
	int64_t t1 = mono_us();
	assert_true(tx >= t0 - 1000 && tx <= t1 + 1000); /* 1 ms: the two clocks are read apart */
	assert_true(sockts_tx_drain(c) < 0);             /* drained */

	/* recv() of the watched socket (libcurl's reads, through this executable's recv): the
	 * arrival of what it read, not the time of the read; peeks, and other sockets, leave it. */
	sockts_rx_watch(c);
	assert_true(sockts_rx_last() < 0);
	int64_t t2 = mono_us();
	assert_int_equal(write(s, "250 ok\r\n", 8), 8);
	int64_t t3 = mono_us();
	usleep(20000);
	assert_int_equal(recv(c, buf, sizeof buf, MSG_PEEK), 8);
	assert_true(sockts_rx_last() < 0);
	assert_int_equal(recv(c, buf, sizeof buf, 0), 8);
	assert_memory_equal(buf, "250 ok\r\n", 8);
	int64_t rx = sockts_rx_last();
	assert_true(rx >= t2 - 1000 && rx <= t3 + 1000);
	assert_true(mono_us() - rx >= 15000);            /* the arrival, not the read */
	assert_int_equal(write(c, "x", 1), 1);
	assert_int_equal(recv(s, buf, sizeof buf, 0), 9); /* "EHLO x\r\n" and "x"; s is not watched */
	assert_int_equal(sockts_rx_last(), rx);
	close(s);
	assert_int_equal(recv(c, buf, sizeof buf, 0), 0); /* EOF comes through as from recv() */
	assert_int_equal(sockts_rx_last(), rx);
	sockts_rx_watch(-1);
	assert_true(sockts_rx_last() < 0);
	close(c);

	/* A refused connection: a watched socket's recv() hands the pending error to its caller,
	 * as recv() does. l's port is free once l is closed. */
	close(l);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_int_equal(sockts_enable(c), 0);
	int rc = connect(c, (struct sockaddr *)&a, sizeof a);
	int cerr = rc < 0 ? errno : 0;
	assert_true(rc == 0 || cerr == EINPROGRESS || cerr == ECONNREFUSED);
	usleep(20000);
	assert_true(sockts_tx_drain(c) < 0);
	if (rc == 0 || cerr == EINPROGRESS) { /* else refused at once: nothing was left pending */
		sockts_rx_watch(c);
		errno = 0;
		assert_int_equal(recv(c, buf, sizeof buf, 0), -1);
		assert_int_equal(errno, ECONNREFUSED);
		assert_true(sockts_rx_last() < 0);
		sockts_rx_watch(-1);
	}
	close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_timer_heap_random),
		cmocka_unit_test(test_posts),
		cmocka_unit_test(test_posts_many),
		cmocka_unit_test(test_sockts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
