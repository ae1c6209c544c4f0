#include "evloop.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "xalloc.h"

/* A registration; epoll hands its pointer back. Registrations are few per loop (a worker loop
 * has three or four): a small array searched by fd keeps a loop's memory proportional to what it
 * watches, not to the highest descriptor number in the process. */
struct evfd {
	int fd;
	evloop_fd_cb *cb;
	void *arg;
	unsigned events; /* 0: removed (freed after the current dispatch) */
};

struct evloop {
	int epfd;
	struct evfd **regs;
	size_t nregs, regs_cap;
	struct evfd **dead;     /* removed during a dispatch: epoll may still hand them out */
	size_t ndead, dead_cap;
	int nwatched;
	struct evtimer **heap;
	long heap_len, heap_cap;
	bool stop;
	/* posts (evpost_*) */
	int post_fd;             /* eventfd, opened at the first arming; not counted in nwatched */
	long posts_armed;        /* loop thread only */
	pthread_mutex_t post_lock;
	struct evpost *post_head, *post_tail; /* fired, not yet delivered; under post_lock */
};

struct evloop *evloop_new(void)
{
	struct evloop *loop = xcalloc(1, sizeof *loop);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		fatal("epoll_create1");
	loop->post_fd = -1;
	pthread_mutex_init(&loop->post_lock, NULL);
	return loop;
}

static void free_dead(struct evloop *loop)
{
	for (size_t i = 0; i < loop->ndead; i++)
		free(loop->dead[i]);
	loop->ndead = 0;
}

void evloop_free(struct evloop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	if (loop->post_fd >= 0)
		close(loop->post_fd);
	pthread_mutex_destroy(&loop->post_lock);
	for (size_t i = 0; i < loop->nregs; i++)
		free(loop->regs[i]);
	free(loop->regs);
	free_dead(loop);
	free(loop->dead);
	free(loop->heap);
	free(loop);
}

static uint32_t ev_to_epoll(unsigned ev)
{
	return (ev & EVLOOP_READ ? EPOLLIN : 0) | (ev & EVLOOP_WRITE ? EPOLLOUT : 0);
}

static size_t reg_find(const struct evloop *loop, int fd)
{
	for (size_t i = 0; i < loop->nregs; i++)
		if (loop->regs[i]->fd == fd)
			return i;
	return (size_t)-1;
}

int evloop_fd_set(struct evloop *loop, int fd, unsigned events, evloop_fd_cb *cb, void *arg)
{
	if (fd < 0)
		return -1;
	if (events == 0) {
		evloop_fd_del(loop, fd);
		return 0;
	}
	size_t i = reg_find(loop, fd);
	struct evfd *e = i == (size_t)-1 ? NULL : loop->regs[i];
	bool fresh = e == NULL;
	if (fresh)
		e = xcalloc(1, sizeof *e);
	struct epoll_event ee = { .events = ev_to_epoll(events), .data.ptr = e };
	int op = fresh ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
	if (epoll_ctl(loop->epfd, op, fd, &ee) < 0) {
		/* A descriptor closed without being removed and reused: re-add; or the reverse. */
		if (op == EPOLL_CTL_MOD && errno == ENOENT)
			op = EPOLL_CTL_ADD;
		else if (op == EPOLL_CTL_ADD && errno == EEXIST)
			op = EPOLL_CTL_MOD;
		else
			op = -1;
		if (op < 0 || epoll_ctl(loop->epfd, op, fd, &ee) < 0) {
			log_warn("epoll_ctl fd=%d", fd);
			if (fresh)
				free(e);
			return -1;
		}
	}
	if (fresh) {
		if (loop->nregs == loop->regs_cap) {
			loop->regs_cap = loop->regs_cap ? loop->regs_cap * 2 : 8;
			loop->regs = xrealloc(loop->regs, loop->regs_cap * sizeof *loop->regs);
		}
		loop->regs[loop->nregs++] = e;
		loop->nwatched++;
	}
	e->fd = fd;
	e->cb = cb;
	e->arg = arg;
	e->events = events;
	return 0;
}

void evloop_fd_del(struct evloop *loop, int fd)
{
	size_t i = fd < 0 ? (size_t)-1 : reg_find(loop, fd);
	if (i == (size_t)-1)
		return;
	struct evfd *e = loop->regs[i];
	/* The fd may already be closed (curl closes before telling us): ignore errors. */
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	loop->regs[i] = loop->regs[--loop->nregs];
	loop->nwatched--;
	e->events = 0;
	e->cb = NULL;
	if (loop->ndead == loop->dead_cap) {
		loop->dead_cap = loop->dead_cap ? loop->dead_cap * 2 : 8;
		loop->dead = xrealloc(loop->dead, loop->dead_cap * sizeof *loop->dead);
	}
	loop->dead[loop->ndead++] = e;
}

/* ---- posts from other threads ---- */

/* At most this many callbacks per wakeup, so that a flood of completions cannot starve the
 * descriptors and timers; the rest come at the next turn. */
#define POSTS_PER_TURN 256

static void post_wake(struct evloop *loop)
{
	uint64_t one = 1;
	if (write(loop->post_fd, &one, sizeof one) < 0 && errno != EAGAIN)
		log_warn("post eventfd");
}

static void on_posts(void *arg, int fd, unsigned events)
{
	struct evloop *loop = arg;
	uint64_t v;
	(void)events;
	if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
		log_warn("post eventfd");
	/* One at a time, so that a callback that disarms another post still finds it queued. */
	for (int n = 0; !loop->stop; n++) {
		pthread_mutex_lock(&loop->post_lock);
		struct evpost *p = loop->post_head;
		if (p && n == POSTS_PER_TURN) {
			pthread_mutex_unlock(&loop->post_lock);
			post_wake(loop);
			return;
		}
		if (p) {
			loop->post_head = p->next;
			if (!loop->post_head)
				loop->post_tail = NULL;
			p->next = NULL;
		}
		pthread_mutex_unlock(&loop->post_lock);
		if (!p)
			return;
		p->armed = false;
		p->fired = false;
		loop->posts_armed--;
		p->cb(p->arg);
	}
}

void evpost_arm(struct evloop *loop, struct evpost *p, evloop_post_cb *cb, void *arg)
{
	if (loop->post_fd < 0) {
		loop->post_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (loop->post_fd < 0)
			fatal("eventfd");
		if (evloop_fd_set(loop, loop->post_fd, EVLOOP_READ, on_posts, loop) < 0)
			fatalx("cannot watch the loop's post eventfd");
		loop->nwatched--; /* what keeps the loop running is an armed post, not this fd */
	}
	p->loop = loop;
	p->next = NULL;
	p->armed = true;
	p->fired = false;
	p->cb = cb;
	p->arg = arg;
	loop->posts_armed++;
}

void evpost_fire(struct evpost *p)
{
	struct evloop *loop = p->loop;
	pthread_mutex_lock(&loop->post_lock);
	bool was_empty = loop->post_head == NULL;
	p->fired = true;
	p->next = NULL;
	if (loop->post_tail)
		loop->post_tail->next = p;
	else
		loop->post_head = p;
	loop->post_tail = p;
	pthread_mutex_unlock(&loop->post_lock);
	if (was_empty)
		post_wake(loop);
}

void evpost_disarm(struct evpost *p)
{
	struct evloop *loop = p->loop;
	if (!loop || !p->armed)
		return;
	pthread_mutex_lock(&loop->post_lock);
	if (p->fired) {
		struct evpost **pp = &loop->post_head, *prev = NULL;
		while (*pp && *pp != p) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		if (*pp) {
			*pp = p->next;
			if (loop->post_tail == p)
				loop->post_tail = prev;
		}
	}
	pthread_mutex_unlock(&loop->post_lock);
	p->next = NULL;
	p->armed = false;
	p->fired = false;
	loop->posts_armed--;
}

/* ---- timer heap ---- */

void evtimer_init(struct evtimer *t, evloop_timer_cb *cb, void *arg)
{
	t->due_us = 0;
	t->heap_idx = -1;
	t->cb = cb;
	t->arg = arg;
}

bool evtimer_armed(const struct evtimer *t) { return t->heap_idx >= 0; }

int64_t evloop_next_due(const struct evloop *loop)
{
	return loop->heap_len ? loop->heap[0]->due_us : INT64_MAX;
}

static void heap_set(struct evloop *loop, long i, struct evtimer *t)
{
	loop->heap[i] = t;
	t->heap_idx = i;
}

static void heap_up(struct evloop *loop, long i)
{
	struct evtimer *t = loop->heap[i];
	while (i > 0) {
		long p = (i - 1) / 2;
		if (loop->heap[p]->due_us <= t->due_us)
			break;
		heap_set(loop, i, loop->heap[p]);
		i = p;
	}
	heap_set(loop, i, t);
}

static void heap_down(struct evloop *loop, long i)
{
	struct evtimer *t = loop->heap[i];
	for (;;) {
		long c = 2 * i + 1;
		if (c >= loop->heap_len)
			break;
		if (c + 1 < loop->heap_len && loop->heap[c + 1]->due_us < loop->heap[c]->due_us)
			c++;
		if (loop->heap[c]->due_us >= t->due_us)
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, t);
}

void evtimer_stop(struct evloop *loop, struct evtimer *t)
{
	long i = t->heap_idx;
	if (i < 0)
		return;
	t->heap_idx = -1;
	loop->heap_len--;
	if (i == loop->heap_len)
		return;
	struct evtimer *last = loop->heap[loop->heap_len];
	heap_set(loop, i, last);
	heap_up(loop, i);
	heap_down(loop, last->heap_idx);
}

void evtimer_start(struct evloop *loop, struct evtimer *t, int64_t due_us)
{
	evtimer_stop(loop, t);
	if (loop->heap_len == loop->heap_cap) {
		loop->heap_cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		loop->heap = xrealloc(loop->heap, (size_t)loop->heap_cap * sizeof *loop->heap);
	}
	t->due_us = due_us;
	heap_set(loop, loop->heap_len++, t);
	heap_up(loop, t->heap_idx);
}

/* ---- running ---- */

static void run_timers(struct evloop *loop)
{
	int64_t now = mono_us();
	/* Only timers already due when we started, so a timer re-armed for "now" cannot spin. */
	int budget = (int)loop->heap_len;
	while (loop->heap_len > 0 && budget-- > 0 && !loop->stop) {
		struct evtimer *t = loop->heap[0];
		if (t->due_us > now)
			break;
		evtimer_stop(loop, t);
		t->cb(t->arg);
	}
}

int evloop_run_once(struct evloop *loop, int64_t max_wait_us)
{
	struct epoll_event evs[64];
	int64_t wait_us = max_wait_us;
	if (loop->heap_len > 0) {
		int64_t until = loop->heap[0]->due_us - mono_us();
		if (until < 0)
			until = 0;
		if (wait_us < 0 || until < wait_us)
			wait_us = until;
	}
	int timeout_ms = wait_us < 0 ? -1 : (int)((wait_us + 999) / 1000);
	int n = epoll_wait(loop->epfd, evs, 64, timeout_ms);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		log_warn("epoll_wait");
		return -1;
	}
	for (int i = 0; i < n && !loop->stop; i++) {
		struct evfd *e = evs[i].data.ptr;
		if (!e->events)
			continue; /* removed by an earlier callback in this batch */
		unsigned ev = 0;
		if (evs[i].events & EPOLLIN)
			ev |= EVLOOP_READ;
		if (evs[i].events & EPOLLOUT)
			ev |= EVLOOP_WRITE;
		if (evs[i].events & (EPOLLERR | EPOLLHUP))
			ev |= EVLOOP_ERROR | EVLOOP_READ;
		e->cb(e->arg, e->fd, ev);
	}
	free_dead(loop);
	run_timers(loop);
	return 0;
}

void evloop_run(struct evloop *loop)
{
	while (!loop->stop && (loop->nwatched > 0 || loop->heap_len > 0 || loop->posts_armed > 0))
		evloop_run_once(loop, -1);
}

void evloop_stop(struct evloop *loop) { loop->stop = true; }
bool evloop_stopped(const struct evloop *loop) { return loop->stop; }
