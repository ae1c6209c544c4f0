#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "evloop.h"
#include "log.h"
#include "xalloc.h"

struct worker {
	struct evloop *loop;
	pthread_t thread;
	int done_fd;
	atomic_bool cancelled;
	worker_fn *work;
	worker_done_cb *done;
	void *arg;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->work(w, w->arg);
	uint64_t one = 1;
	if (write(w->done_fd, &one, sizeof one) < 0)
		log_warn("worker eventfd");
	return NULL;
}

static void worker_free(struct worker *w)
{
	evloop_fd_del(w->loop, w->done_fd);
	close(w->done_fd);
	free(w);
}

static void on_done(void *arg, int fd, unsigned events)
{
	struct worker *w = arg;
	uint64_t v;
	(void)events;
	if (read(fd, &v, sizeof v) < 0 && errno == EAGAIN)
		return;
	pthread_join(w->thread, NULL);
	worker_done_cb *done = w->done;
	void *darg = w->arg;
	worker_free(w);
	done(darg);
}

struct worker *worker_start(struct evloop *loop, worker_fn *work, worker_done_cb *done, void *arg)
{
	struct worker *w = xcalloc(1, sizeof *w);
	w->loop = loop;
	w->work = work;
	w->done = done;
	w->arg = arg;
	atomic_init(&w->cancelled, false);
	w->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->done_fd < 0)
		fatal("eventfd");
	evloop_fd_set(loop, w->done_fd, EVLOOP_READ, on_done, w);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 512 * 1024);
	int err = pthread_create(&w->thread, &attr, worker_main, w);
	pthread_attr_destroy(&attr);
	if (err) {
		errno = err;
		fatal("pthread_create");
	}
	return w;
}

void worker_cancel(struct worker *w)
{
	if (!w)
		return;
	atomic_store(&w->cancelled, true);
	pthread_join(w->thread, NULL);
	worker_free(w);
}

bool worker_cancelled(const struct worker *w)
{
	return atomic_load(&((struct worker *)w)->cancelled);
}
