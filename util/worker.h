/* Blocking work on its own thread, its completion delivered on the event loop's thread (an
 * evpost). For library calls that block (libcurl's IMAP logout, an IMAP session driven with
 * the easy interface) so that they never stall the loop. */
#ifndef MON_UTIL_WORKER_H
#define MON_UTIL_WORKER_H

#include <stdbool.h>

struct evloop;
struct worker;

typedef void worker_fn(struct worker *w, void *arg);   /* runs on the worker thread */
typedef void worker_done_cb(void *arg);                 /* runs on the loop's thread */

/* Starts work(w, arg) on a new thread; done(arg) fires once on loop's thread after it returned,
 * never from inside this call. Returns the handle (freed by the loop after done). */
struct worker *worker_start(struct evloop *loop, worker_fn *work, worker_done_cb *done, void *arg);
/* Asks the work to stop (worker_cancelled() turns true), waits for the thread; done does not fire. */
void worker_cancel(struct worker *w);
/* For the work function: whether worker_cancel() was called. */
bool worker_cancelled(const struct worker *w);

#endif
