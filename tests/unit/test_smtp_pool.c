/* The pool of SMTP attempt threads (probe/smtp.c), against TCP servers of this test on loopback:
 * every attempt is reported exactly once, on the loop's thread, also when more attempts are
 * started at once than the pool has threads; attempts cancelled while queued, while running
 * (inside curl's wait for a greeting that never comes) and after they ended but before the loop
 * delivered them are never reported, and the cancel returns at once; the pool grows past its
 * first threads only when they all wait on their servers, and reuses its threads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "evloop.h"
#include "smtp.h"

/* A listener on 127.0.0.1: "close" servers accept and close at once (each attempt fails fast at
 * the banner); "silent" ones accept and keep every connection open without a word. */
struct server {
	int lfd;
	int port;
	bool silent;
	atomic_bool stop;
	pthread_t thread;
	int held[512];
	atomic_int n_held;
};

static void *serve(void *arg)
{
	struct server *s = arg;
	while (!atomic_load(&s->stop)) {
		int c = accept(s->lfd, NULL, NULL);
		if (c < 0)
			continue;
		int n = atomic_load(&s->n_held);
		if (s->silent && n < 512) {
			s->held[n] = c;
			atomic_store(&s->n_held, n + 1);
		} else {
			close(c);
		}
	}
	return NULL;
}

static void server_start(struct server *s, bool silent)
{
	memset(s, 0, sizeof *s);
	atomic_init(&s->n_held, 0);
	atomic_init(&s->stop, false);
	s->silent = silent;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(s->lfd, 1024), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	struct timeval tv = { 0, 100000 }; /* accept() wakes up to see stop */
	setsockopt(s->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	for (int i = 0; i < atomic_load(&s->n_held); i++)
		close(s->held[i]);
	close(s->lfd);
}

struct reports {
	int n;
	int by_id[600];
	bool off_thread;
	pthread_t loop_thread;
	int last_outcome;
};

struct tag {
	struct reports *r;
	int id;
};

static void on_done(void *arg, struct smtp_try *try)
{
	struct tag *t = arg;
	if (!pthread_equal(pthread_self(), t->r->loop_thread))
		t->r->off_thread = true;
	t->r->by_id[t->id]++;
	t->r->n++;
	t->r->last_outcome = (int)try->outcome;
}

static const struct conf_timeouts TIMEOUTS = { 5000, 60000, 60000, 60000, 60000 };

static struct smtp_attempt *start(struct evloop *loop, int port, struct tag *t)
{
	static const char msg[] = "Subject: x\r\n\r\nx\r\n";
	struct smtp_params p = {
		.host = "127.0.0.1", .ip = "127.0.0.1", .port = port, .helo = "pool.test",
		.mail_from = "a@pool.test", .rcpt = "b@pool.test", .message = msg, .message_len = sizeof msg - 1,
		.tls = CONF_TLS_NONE, .timeouts = &TIMEOUTS,
	};
	return smtp_attempt_start(loop, &p, on_done, t);
}

/* Threads of this process, from /proc (the pool's, the manager, ours). */
static int threads_now(void)
{
	DIR *d = opendir("/proc/self/task");
	assert_non_null(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* One test's server, loop and reports. */
struct fx {
	struct server s;
	struct evloop *loop;
	struct reports r;
};

static struct fx *fx_begin(bool silent)
{
	static struct fx f;
	server_start(&f.s, silent);
	f.loop = evloop_new();
	memset(&f.r, 0, sizeof f.r);
	f.r.loop_thread = pthread_self();
	return &f;
}

static void fx_end(struct fx *f)
{
	evloop_free(f->loop);
	server_stop(&f->s);
}

/* 500 attempts at once to a server that closes at once: each reported once, on the loop's
 * thread; a few threads carry them all. */
static void test_all_reported_once(void **state)
{
	(void)state;
	struct fx *f = fx_begin(false);
	static struct tag tags[500];
	int before = threads_now();
	for (int i = 0; i < 500; i++) {
		tags[i] = (struct tag){ &f->r, i };
		start(f->loop, f->s.port, &tags[i]);
	}
	assert_int_equal(f->r.n, 0); /* never from within the start */
	evloop_run(f->loop);         /* lasts until the last report */
	assert_int_equal(f->r.n, 500);
	for (int i = 0; i < 500; i++)
		assert_int_equal(f->r.by_id[i], 1);
	assert_false(f->r.off_thread);
	assert_int_equal(f->r.last_outcome, OUTCOME_FAILED); /* closed before the greeting */
	/* The pool grows only while its threads all wait on their servers: one that closes at once
	 * keeps them busy, not waiting. Bounded loosely, so that a slow host's stalls pass. */
	assert_true(threads_now() - before < 250);

	/* the threads are kept: a second round starts no more than it needs */
	int kept = threads_now();
	memset(&f->r, 0, sizeof f->r);
	f->r.loop_thread = pthread_self();
	for (int i = 0; i < 100; i++)
		start(f->loop, f->s.port, &tags[i]);
	evloop_run(f->loop);
	assert_int_equal(f->r.n, 100);
	assert_true(threads_now() <= kept + 100);
	fx_end(f);
}

/* Servers that never greet: every attempt waits, so the pool grows to one thread per attempt
 * (doubling past its first threads); all of them are then cancelled inside curl's wait, and
 * queued ones before a thread took them. No report, and the cancels return at once. */
static void test_cancel(void **state)
{
	(void)state;
	struct fx *f = fx_begin(true);
	static struct tag tags[300];
	static struct smtp_attempt *a[300];
	for (int i = 0; i < 300; i++) {
		tags[i] = (struct tag){ &f->r, i };
		a[i] = start(f->loop, f->s.port, &tags[i]);
	}
	/* some are still queued: cancel those at once (the newest wait longest) */
	for (int i = 299; i >= 290; i--)
		smtp_attempt_cancel(a[i]);
	/* the rest get threads within a few stalls of 2 ms each and wait for the greeting */
	int64_t until = mono_us() + 5 * 1000 * 1000;
	while (atomic_load(&f->s.n_held) < 290 && mono_us() < until)
		evloop_run_once(f->loop, 10000);
	assert_int_equal(atomic_load(&f->s.n_held), 290);
	int64_t t0 = mono_us();
	for (int i = 0; i < 290; i++)
		smtp_attempt_cancel(a[i]);
	/* each cancel wakes its thread out of curl_multi_poll() at once (not the 1 s of curl's
	 * blocking waits): 290 of them well within the greeting's 60 s timeout */
	assert_true(mono_us() - t0 < 30 * 1000 * 1000);
	evloop_run(f->loop); /* nothing armed is left: returns at once */
	assert_int_equal(f->r.n, 0);
	fx_end(f);
}

/* An attempt that ended, but whose report the loop has not delivered yet, is cancelled: no
 * report. */
static void test_cancel_after_end(void **state)
{
	(void)state;
	struct fx *f = fx_begin(false);
	struct tag t = { &f->r, 0 }, t2 = { &f->r, 1 };
	struct smtp_attempt *a = start(f->loop, f->s.port, &t);
	usleep(300000); /* it ends (the server closes) without the loop running */
	smtp_attempt_cancel(a);
	start(f->loop, f->s.port, &t2);
	evloop_run(f->loop);
	assert_int_equal(f->r.by_id[0], 0);
	assert_int_equal(f->r.by_id[1], 1);
	fx_end(f);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT); /* as main() does: before any thread uses curl */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_reported_once),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_cancel_after_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
