#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "evloop.h"
#include "log.h"
#include "xalloc.h"

struct worker {
	pthread_t thread;
	struct evpost post; /* fired when work returned */
	atomic_bool cancelled;
	worker_fn *work;
	worker_done_cb *done;
	void *arg;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->work(w, w->arg);
	if (!atomic_load(&w->cancelled))
		evpost_fire(&w->post); /* the last touch: the loop frees w from here on */
	return NULL;
}

static void on_done(void *arg)
{
	struct worker *w = arg;
	pthread_join(w->thread, NULL);
	worker_done_cb *done = w->done;
	void *darg = w->arg;
	free(w);
	done(darg);
}

struct worker *worker_start(struct evloop *loop, worker_fn *work, worker_done_cb *done, void *arg)
{
	struct worker *w = xcalloc(1, sizeof *w);
	w->work = work;
	w->done = done;
	w->arg = arg;
	atomic_init(&w->cancelled, false);
	evpost_arm(loop, &w->post, on_done, w);
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
	evpost_disarm(&w->post); /* also when it had fired before the cancel */
	free(w);
}

bool worker_cancelled(const struct worker *w)
{
	return atomic_load(&((struct worker *)w)->cancelled);
}
