/* One-thread event loop: epoll for file descriptors, a binary heap of CLOCK_MONOTONIC timers.
 * It drives curl multi and c-ares today and the scheduler's timers later. */
#ifndef MON_UTIL_EVLOOP_H
#define MON_UTIL_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>

enum { EVLOOP_READ = 1, EVLOOP_WRITE = 2, EVLOOP_ERROR = 4 };

struct evloop;
typedef void evloop_fd_cb(void *arg, int fd, unsigned events);
typedef void evloop_timer_cb(void *arg);

/* A timer is embedded in its owner's struct; the loop never allocates or frees it. */
struct evtimer {
	int64_t due_us;        /* mono_us() deadline */
	long heap_idx;         /* -1 when not armed */
	evloop_timer_cb *cb;
	void *arg;
};

struct evloop *evloop_new(void);   /* returns owned */
void evloop_free(struct evloop *loop);

/* Watch fd for events (EVLOOP_READ|EVLOOP_WRITE); events == 0 stops watching. cb/arg borrowed. */
int evloop_fd_set(struct evloop *loop, int fd, unsigned events, evloop_fd_cb *cb, void *arg);
void evloop_fd_del(struct evloop *loop, int fd);

void evtimer_init(struct evtimer *t, evloop_timer_cb *cb, void *arg);
/* Arms (or re-arms) t to fire at due_us. */
void evtimer_start(struct evloop *loop, struct evtimer *t, int64_t due_us);
/* Disarms t; harmless if not armed. */
void evtimer_stop(struct evloop *loop, struct evtimer *t);
bool evtimer_armed(const struct evtimer *t);
/* Deadline of the earliest armed timer, or INT64_MAX. */
int64_t evloop_next_due(const struct evloop *loop);

/* A completion handed to the loop from another thread (a worker's result), embedded in its
 * owner's struct like a timer. The owner arms it on the loop's thread before the work starts;
 * while armed, evloop_run() keeps running even with nothing else to wait for. The worker fires
 * it once; the loop then disarms it and calls cb on its own thread, in firing order. One eventfd
 * per loop carries every post: no descriptor, epoll registration or system call per job, and a
 * write only when the queue was empty. */
typedef void evloop_post_cb(void *arg);
struct evpost {
	struct evloop *loop;
	struct evpost *next;   /* in the loop's fired queue */
	bool armed, fired;
	evloop_post_cb *cb;
	void *arg;
};
/* Loop thread. */
void evpost_arm(struct evloop *loop, struct evpost *p, evloop_post_cb *cb, void *arg);
/* Any thread, once per arming. */
void evpost_fire(struct evpost *p);
/* Loop thread: withdraws an armed post, fired or not, so that cb never runs. The caller makes
 * sure no thread fires it concurrently. Harmless on a disarmed post. */
void evpost_disarm(struct evpost *p);

/* Runs one iteration: waits at most max_wait_us (-1: until the next timer) then dispatches. */
int evloop_run_once(struct evloop *loop, int64_t max_wait_us);
/* Runs until evloop_stop() or until nothing (no fd, no timer, no armed post) is left. */
void evloop_run(struct evloop *loop);
void evloop_stop(struct evloop *loop);
bool evloop_stopped(const struct evloop *loop);

#endif
