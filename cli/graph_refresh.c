/* The daemon's graph refresh in a child process (see graph_refresh.h). */
#include "graph_refresh.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "commands.h"
#include "conf.h"
#include "evloop.h"
#include "log.h"
#include "xalloc.h"

/* Without a pidfd: how often the loop looks whether the child has ended. */
#define POLL_US (250 * 1000)
/* The first refresh after the daemon starts (or graph_dir is set by a reload). */
#define FIRST_US (1000 * 1000)
#define MAX_VERBOSE 4

struct graph_refresh {
	struct evloop *loop;
	const struct cli_globals *g;
	char *config_path;  /* absolute when it could be made so: the child reads it */
	char *dir;          /* graph_dir; NULL: off */
	int64_t every_us;
	struct evtimer due;  /* the next refresh */
	struct evtimer poll; /* without a pidfd: waitpid WNOHANG */
	pid_t child;         /* 0: none */
	int pidfd;           /* -1: none */
	int64_t started_us;
	unsigned n;          /* refreshes started */
	bool stopping;
	int64_t stop_us;     /* when graph_refresh_stop sent SIGTERM */
};

static void due_cb(void *arg);
static void poll_cb(void *arg);

static char *abs_path(const char *p)
{
	char buf[PATH_MAX];
	if (p[0] != '/' && realpath(p, buf))
		return xstrdup(buf);
	return xstrdup(p);
}

static void apply_conf(struct graph_refresh *r, const struct mon_conf *conf)
{
	bool was_on = r->dir != NULL;
	free(r->dir);
	r->dir = conf->graph_dir && *conf->graph_dir ? xstrdup(conf->graph_dir) : NULL;
	int64_t every = conf->graph_every_ms * 1000;
	bool changed = every != r->every_us;
	r->every_us = every;
	if (!r->dir) {
		evtimer_stop(r->loop, &r->due);
		if (was_on)
			log_info("event=graph-refresh status=off reason=\"graph_dir is not set\"");
		return;
	}
	if (!was_on)
		evtimer_start(r->loop, &r->due, mono_us() + FIRST_US);
	else if (changed || !evtimer_armed(&r->due))
		evtimer_start(r->loop, &r->due, mono_us() + r->every_us);
}

struct graph_refresh *graph_refresh_new(struct evloop *loop, const struct cli_globals *g, const struct mon_conf *conf)
{
	struct graph_refresh *r = xcalloc(1, sizeof *r);
	r->loop = loop;
	r->g = g;
	r->config_path = abs_path(g->config_path);
	r->pidfd = -1;
	evtimer_init(&r->due, due_cb, r);
	evtimer_init(&r->poll, poll_cb, r);
	apply_conf(r, conf);
	return r;
}

void graph_refresh_set_conf(struct graph_refresh *r, const struct mon_conf *conf)
{
	if (r && !r->stopping)
		apply_conf(r, conf);
}

/* The child's end: one line with its exit status and duration. */
static void finished(struct graph_refresh *r, int status)
{
	int64_t ms = (mono_us() - r->started_us) / 1000;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		log_info("event=graph-refresh status=ok rc=0 ms=%" PRId64 " out=%s pid=%ld", ms, r->dir ? r->dir : "-",
			 (long)r->child);
	else if (WIFEXITED(status))
		log_warnx("event=graph-refresh status=failed rc=%d ms=%" PRId64 " out=%s pid=%ld: see the graph "
			  "command's lines above", WEXITSTATUS(status), ms, r->dir ? r->dir : "-", (long)r->child);
	else
		log_warnx("event=graph-refresh status=failed signal=%d ms=%" PRId64 " out=%s pid=%ld%s",
			  WIFSIGNALED(status) ? WTERMSIG(status) : 0, ms, r->dir ? r->dir : "-", (long)r->child,
			  r->stopping ? " (stopped with the daemon)" : "");
	if (r->pidfd >= 0) {
		evloop_fd_del(r->loop, r->pidfd);
		close(r->pidfd);
		r->pidfd = -1;
	}
	evtimer_stop(r->loop, &r->poll);
	r->child = 0;
}

/* Reaps the child if it has ended; true when it has (or is gone). */
static bool try_reap(struct graph_refresh *r)
{
	int status = 0;
	pid_t got;
	do
		got = waitpid(r->child, &status, WNOHANG);
	while (got < 0 && errno == EINTR);
	if (got == 0)
		return false;
	if (got < 0) {
		log_warn("event=graph-refresh status=failed pid=%ld error=\"waitpid\"", (long)r->child);
		status = 0xff00; /* reported as rc 255 */
	}
	finished(r, status);
	return true;
}

static void pidfd_cb(void *arg, int fd, unsigned events)
{
	struct graph_refresh *r = arg;
	(void)fd;
	(void)events;
	if (r->child && !try_reap(r)) {
		/* readable but not yet reapable: should not happen; fall back to polling */
		evloop_fd_del(r->loop, r->pidfd);
		close(r->pidfd);
		r->pidfd = -1;
		evtimer_start(r->loop, &r->poll, mono_us() + POLL_US);
	}
}

static void poll_cb(void *arg)
{
	struct graph_refresh *r = arg;
	if (r->child && !try_reap(r))
		evtimer_start(r->loop, &r->poll, mono_us() + POLL_US);
}

static void start_child(struct graph_refresh *r)
{
	/* Everything the child needs is made before fork(): between fork and exec only
	 * async-signal-safe calls (the daemon has other threads: curl's resolver, IMAP workers). */
	char *argv[8 + MAX_VERBOSE];
	int n = 0;
	argv[n++] = (char *)"mailcanary";
	argv[n++] = (char *)"-c";
	argv[n++] = r->config_path;
	for (int i = 0; i < r->g->verbose && i < MAX_VERBOSE; i++)
		argv[n++] = (char *)"-v";
	argv[n++] = (char *)"graph";
	argv[n++] = (char *)"--out";
	argv[n++] = r->dir;
	argv[n] = NULL;
	long open_max = sysconf(_SC_OPEN_MAX);
	if (open_max < 0 || open_max > 65536)
		open_max = 65536;
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		/* A clean signal state (the daemon blocks TERM, INT and HUP for its signalfd and
		 * ignores PIPE; both survive exec), stdin from /dev/null, stdout to our stderr, none
		 * of our other descriptors (the state_dir lock, sockets). */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(2, 1);
		for (long i = 3; i < open_max; i++)
			close((int)i);
		/* Background work: drawing must not take the CPU from the probes' timing. */
		setpriority(PRIO_PROCESS, 0, GRAPH_REFRESH_NICE);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	if (devnull >= 0)
		close(devnull);
	if (pid < 0) {
		log_warn("event=graph-refresh status=failed error=\"fork\"");
		return;
	}
	r->child = pid;
	r->started_us = mono_us();
	r->n++;
	log_debug("event=graph-refresh status=started pid=%ld out=%s", (long)pid, r->dir);
#ifdef SYS_pidfd_open
	r->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (r->pidfd >= 0) {
		if (fcntl(r->pidfd, F_SETFD, FD_CLOEXEC) < 0 || evloop_fd_set(r->loop, r->pidfd, EVLOOP_READ, pidfd_cb, r) < 0) {
			close(r->pidfd);
			r->pidfd = -1;
		}
	}
#endif
	if (r->pidfd < 0)
		evtimer_start(r->loop, &r->poll, mono_us() + POLL_US);
}

static void due_cb(void *arg)
{
	struct graph_refresh *r = arg;
	if (r->stopping || !r->dir)
		return;
	int64_t now = mono_us();
	evtimer_start(r->loop, &r->due, now + r->every_us);
	if (r->child && !try_reap(r)) {
		log_warnx("event=graph-refresh status=skipped pid=%ld running_ms=%" PRId64 ": the previous refresh is "
			  "still running (graph_every %" PRId64 " ms)", (long)r->child, (now - r->started_us) / 1000,
			  r->every_us / 1000);
		return;
	}
	start_child(r);
}

void graph_refresh_stop(struct graph_refresh *r)
{
	if (!r || r->stopping)
		return;
	r->stopping = true;
	evtimer_stop(r->loop, &r->due);
	r->stop_us = mono_us();
	if (r->child && !try_reap(r)) {
		log_info("event=graph-refresh status=stopping pid=%ld", (long)r->child);
		kill(r->child, SIGTERM);
	}
}

void graph_refresh_free(struct graph_refresh *r)
{
	if (!r)
		return;
	graph_refresh_stop(r);
	while (r->child && !try_reap(r)) {
		if (mono_us() - r->stop_us > (int64_t)GRAPH_REFRESH_STOP_MS * 1000) {
			log_warnx("event=graph-refresh pid=%ld status=killed: still running %d ms after SIGTERM",
				  (long)r->child, GRAPH_REFRESH_STOP_MS);
			kill(r->child, SIGKILL);
			int status;
			while (waitpid(r->child, &status, 0) < 0 && errno == EINTR)
				;
			finished(r, status);
			break;
		}
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
	}
	evtimer_stop(r->loop, &r->due);
	evtimer_stop(r->loop, &r->poll);
	free(r->config_path);
	free(r->dir);
	free(r);
}
