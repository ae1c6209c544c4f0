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

/* Runs one iteration: waits at most max_wait_us (-1: until the next timer) then dispatches. */
int evloop_run_once(struct evloop *loop, int64_t max_wait_us);
/* Runs until evloop_stop() or until nothing (no fd, no timer) is left. */
void evloop_run(struct evloop *loop);
void evloop_stop(struct evloop *loop);
bool evloop_stopped(const struct evloop *loop);

#endif
