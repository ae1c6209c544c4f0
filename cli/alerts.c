/* Seed states and the alert hook (see alerts.h). */
#include "alerts.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alert_rules.h"
#include "clock.h"
#include "conf.h"
#include "evloop.h"
#include "latest.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

extern char **environ;

struct alert_seed {
	char *name;
	struct alert_track track;
	int64_t since;    /* Unix s: when the state began */
};

/* One change of state and its command: queued, then running, then freed. */
struct alert_job {
	struct alert_job *next;
	struct alerts *a;
	char *seed, *probe_id;
	const char *from, *to;  /* static names */
	char *aberration;       /* "" when none */
	char *command;          /* copied: a reload may free the configuration meanwhile */
	int64_t timeout_ms;
	char **env;             /* MAILCANARY_* (owned) */
	size_t n_env;
	pid_t pid;
	int pidfd;              /* -1: polled with waitpid(WNOHANG) */
	int phase;              /* 0 running, 1 SIGTERM sent, 2 SIGKILL sent */
	int64_t started_us;
	int64_t killed_us;      /* when SIGKILL was sent */
	int64_t deadline_us;    /* the next step: SIGTERM, SIGKILL or a look again */
	struct evtimer timer;
};

struct alerts {
	const struct mon_conf *conf; /* borrowed */
	char *path;                  /* state_dir/alerts.state */
	struct alert_seed *v;
	size_t n, cap;
	struct evloop *loop;         /* borrowed; NULL before alerts_attach() and after alerts_drain() */
	bool draining;
	struct alert_job *q_head, *q_tail; /* waiting, in order */
	size_t n_queued;
	struct alert_job *running;
	size_t n_running;
	unsigned dropped;            /* changes dropped since the last command started */
};

static struct alert_seed *seed_get(struct alerts *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].name, name) == 0)
			return &a->v[i];
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->v = xrealloc(a->v, a->cap * sizeof *a->v);
	}
	struct alert_seed *s = &a->v[a->n++];
	s->name = xstrdup(name);
	s->track.state = ALERT_OK;
	s->track.fails = 0;
	s->since = (int64_t)time(NULL);
	return s;
}

/* Lines "seed state consecutive_failures since_epoch"; others are skipped with a warning. */
static void states_load(struct alerts *a)
{
	FILE *fp = fopen(a->path, "r");
	if (!fp) {
		if (errno != ENOENT)
			log_warn("event=alert status=failed error=\"%s: cannot read the seed states\"", a->path);
		return;
	}
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	while (getline(&line, &cap, fp) >= 0) {
		char name[256], st[32];
		unsigned fails;
		long long since;
		lineno++;
		int k;
		if (sscanf(line, "%255s %31s %u %lld", name, st, &fails, &since) != 4 ||
		    (k = alert_state_from_name(st)) < 0) {
			log_warnx("event=alert status=failed error=\"%s:%u: not a seed state: skipped\"", a->path, lineno);
			continue;
		}
		struct alert_seed *s = seed_get(a, name);
		s->track.state = (enum alert_state)k;
		s->track.fails = fails;
		s->since = since;
	}
	free(line);
	fclose(fp);
}

/* A temporary file renamed over the old one: a crash leaves the old states or the new. */
static void states_save(struct alerts *a)
{
	char *tmp = xasprintf("%s.tmp", a->path);
	FILE *fp = fopen(tmp, "w");
	if (!fp) {
		log_warn("event=alert status=failed error=\"%s: cannot write the seed states\"", tmp);
		free(tmp);
		return;
	}
	for (size_t i = 0; i < a->n; i++)
		fprintf(fp, "%s %s %u %" PRId64 "\n", a->v[i].name, alert_state_name(a->v[i].track.state),
			a->v[i].track.fails, a->v[i].since);
	bool bad = fflush(fp) != 0 || fsync(fileno(fp)) != 0;
	if (fclose(fp) != 0 || bad || rename(tmp, a->path) != 0) {
		log_warn("event=alert status=failed error=\"%s: cannot write the seed states\"", a->path);
		unlink(tmp);
	}
	free(tmp);
}

struct alerts *alerts_new(const struct mon_conf *conf)
{
	if (!conf->alert_command)
		return NULL;
	struct alerts *a = xcalloc(1, sizeof *a);
	a->conf = conf;
	a->path = xasprintf("%s/alerts.state", conf->state_dir);
	states_load(a);
	return a;
}

void alerts_set_conf(struct alerts *a, const struct mon_conf *conf)
{
	if (a)
		a->conf = conf;
}

/* ---- running commands ---- */

static bool is_ours(const char *env)
{
	static const char *const names[] = { "SEED=", "OLD_STATE=", "NEW_STATE=", "STAGE=", "CODE=", "ENHANCED=",
					     "TEXT=", "FOLDER=", "DELIVERY=", "PROBE_ID=", "OUTCOME=", "CAUSE=",
					     "ABERRATION=", "DROPPED=" };
	if (strncmp(env, "MAILCANARY_", 11) != 0)
		return false;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strncmp(env + 11, names[i], strlen(names[i])) == 0)
			return true;
	return false;
}

static void job_free(struct alert_job *j)
{
	for (size_t i = 0; i < j->n_env; i++)
		free(j->env[i]);
	free(j->env);
	free(j->seed);
	free(j->probe_id);
	free(j->aberration);
	free(j->command);
	free(j);
}

static bool seed_busy(const struct alerts *a, const char *seed)
{
	for (const struct alert_job *j = a->running; j; j = j->next)
		if (strcmp(j->seed, seed) == 0)
			return true;
	return false;
}

static void pump(struct alerts *a);
static void job_check(struct alert_job *j);

static void job_arm(struct alert_job *j)
{
	if (!j->a->loop)
		return;
	int64_t due = j->deadline_us;
	if (j->pidfd < 0 && due > mono_us() + ALERT_POLL_MS * 1000)
		due = mono_us() + ALERT_POLL_MS * 1000;
	evtimer_start(j->a->loop, &j->timer, due);
}

static void job_timer_cb(void *arg)
{
	job_check(arg);
}

static void job_exit_cb(void *arg, int fd, unsigned events)
{
	(void)fd;
	(void)events;
	job_check(arg);
}

static void job_unwatch(struct alert_job *j)
{
	if (j->a->loop) {
		evtimer_stop(j->a->loop, &j->timer);
		if (j->pidfd >= 0)
			evloop_fd_del(j->a->loop, j->pidfd);
	}
}

static void job_watch(struct alert_job *j)
{
	if (!j->a->loop)
		return;
	if (j->pidfd >= 0)
		evloop_fd_set(j->a->loop, j->pidfd, EVLOOP_READ, job_exit_cb, j);
	job_arm(j);
}

/* The command ended (status from waitpid; -1: lost): one log line, then the next ones start. */
static void job_finish(struct alert_job *j, int status)
{
	struct alerts *a = j->a;
	for (struct alert_job **pp = &a->running; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			a->n_running--;
			break;
		}
	job_unwatch(j);
	if (j->pidfd >= 0)
		close(j->pidfd);
	long long ms = (long long)((mono_us() - j->started_us) / 1000);
	char ab[64] = "";
	if (*j->aberration)
		snprintf(ab, sizeof ab, " aberration=\"%s\"", j->aberration);
	if (status == -1) {
		log_warnx("event=alert seed=%s from=%s to=%s rc=-1 probe=%s%s status=failed error=\"alert command lost "
			  "(waitpid)\"", j->seed, j->from, j->to, j->probe_id, ab);
	} else if (j->phase > 0) {
		log_warnx("event=alert seed=%s from=%s to=%s rc=-1 signal=%d probe=%s%s ms=%lld status=timeout "
			  "error=\"alert command killed: it ran longer than alert.timeout (%lld ms)\"", j->seed, j->from,
			  j->to, WIFSIGNALED(status) ? WTERMSIG(status) : 0, j->probe_id, ab, ms,
			  (long long)j->timeout_ms);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		log_info("event=alert seed=%s from=%s to=%s rc=0 probe=%s%s ms=%lld", j->seed, j->from, j->to,
			 j->probe_id, ab, ms);
	} else if (WIFEXITED(status)) {
		log_warnx("event=alert seed=%s from=%s to=%s rc=%d probe=%s%s ms=%lld status=failed error=\"alert "
			  "command failed%s\"", j->seed, j->from, j->to, WEXITSTATUS(status), j->probe_id, ab, ms,
			  WEXITSTATUS(status) == 127 ? " (not found?)" : "");
	} else {
		log_warnx("event=alert seed=%s from=%s to=%s rc=-1 signal=%d probe=%s%s ms=%lld status=failed "
			  "error=\"alert command killed by a signal\"", j->seed, j->from, j->to,
			  WIFSIGNALED(status) ? WTERMSIG(status) : 0, j->probe_id, ab, ms);
	}
	job_free(j);
	pump(a);
}

/* Reaps j if it has ended; else SIGTERM or SIGKILL when its time is up. */
static void job_check(struct alert_job *j)
{
	int status = 0;
	pid_t got;
	do
		got = waitpid(j->pid, &status, WNOHANG);
	while (got < 0 && errno == EINTR);
	if (got == j->pid) {
		job_finish(j, status);
		return;
	}
	if (got < 0) {
		log_warn("event=alert seed=%s pid=%ld status=failed error=\"waitpid\"", j->seed, (long)j->pid);
		job_finish(j, -1);
		return;
	}
	int64_t now = mono_us();
	if (now >= j->deadline_us) {
		if (j->phase == 0) {
			/* The group first (sh and what it started), the shell alone if the group is gone. */
			if (kill(-j->pid, SIGTERM) < 0)
				kill(j->pid, SIGTERM);
			log_warnx("event=alert seed=%s from=%s to=%s pid=%ld probe=%s status=timeout action=term "
				  "error=\"alert command still running after alert.timeout (%lld ms): SIGTERM sent\"",
				  j->seed, j->from, j->to, (long)j->pid, j->probe_id, (long long)j->timeout_ms);
			j->phase = 1;
			j->deadline_us = now + ALERT_KILL_GRACE_MS * INT64_C(1000);
		} else if (j->phase == 1) {
			if (kill(-j->pid, SIGKILL) < 0)
				kill(j->pid, SIGKILL);
			log_warnx("event=alert seed=%s from=%s to=%s pid=%ld probe=%s status=timeout action=kill "
				  "error=\"alert command still running %d ms after SIGTERM: SIGKILL sent\"", j->seed, j->from,
				  j->to, (long)j->pid, j->probe_id, ALERT_KILL_GRACE_MS);
			j->phase = 2;
			j->killed_us = now;
			j->deadline_us = now + ALERT_POLL_MS * INT64_C(1000);
		} else if (now - j->killed_us > ALERT_KILL_GRACE_MS * INT64_C(1000)) {
			/* Not even SIGKILL ended it (a process stuck in the kernel): not waited for. */
			log_warnx("event=alert seed=%s pid=%ld status=failed error=\"alert command not reaped %d ms after "
				  "SIGKILL: no longer waited for\"", j->seed, (long)j->pid, ALERT_KILL_GRACE_MS);
			job_finish(j, -1);
			return;
		} else {
			j->deadline_us = now + ALERT_POLL_MS * INT64_C(1000);
		}
	}
	job_arm(j);
}

static int pidfd_for(pid_t pid)
{
#ifdef SYS_pidfd_open
	long fd = syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0) {
		int flags = fcntl((int)fd, F_GETFD);
		if (flags >= 0)
			fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
		return (int)fd;
	}
#else
	(void)pid;
#endif
	return -1;
}

/* Forks the command of j (taken: running, or freed after a failed fork). */
static void job_start(struct alerts *a, struct alert_job *j)
{
	char dropped[32];
	snprintf(dropped, sizeof dropped, "MAILCANARY_DROPPED=%u", a->dropped);
	a->dropped = 0;
	size_t n_env = 0;
	while (environ && environ[n_env])
		n_env++;
	char **envp = xmalloc((n_env + j->n_env + 2) * sizeof *envp);
	size_t k = 0;
	for (size_t i = 0; i < n_env; i++)
		if (!is_ours(environ[i]))
			envp[k++] = environ[i];
	for (size_t i = 0; i < j->n_env; i++)
		envp[k++] = j->env[i];
	envp[k++] = dropped;
	envp[k] = NULL;
	char sh[] = "sh", dash_c[] = "-c";
	char *argv[] = { sh, dash_c, j->command, NULL };
	long open_max = sysconf(_SC_OPEN_MAX);
	if (open_max < 0 || open_max > 65536)
		open_max = 65536;

	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		/* The child: its own process group (a timeout kills what the shell started too), a
		 * clean signal state, stdin from /dev/null, stdout to our stderr (stdout may be
		 * `probe --json`), none of our other descriptors (the state_dir lock, the loop). */
		setpgid(0, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		int fd = open("/dev/null", O_RDONLY);
		if (fd >= 0 && fd != 0) {
			dup2(fd, 0);
			close(fd);
		}
		dup2(2, 1);
		for (long i = 3; i < open_max; i++)
			close((int)i);
		execve("/bin/sh", argv, envp);
		_exit(127);
	}
	free(envp);
	if (pid < 0) {
		log_warn("event=alert seed=%s from=%s to=%s rc=-1 probe=%s status=failed error=\"fork\"", j->seed, j->from,
			 j->to, j->probe_id);
		job_free(j);
		return;
	}
	setpgid(pid, pid); /* also here: no race with a kill before the child ran */
	j->pid = pid;
	j->pidfd = pidfd_for(pid);
	j->started_us = mono_us();
	j->deadline_us = j->started_us + j->timeout_ms * 1000;
	j->next = a->running;
	a->running = j;
	a->n_running++;
	log_debug("event=command kind=alert status=started seed=%s from=%s to=%s pid=%ld pidfd=%d", j->seed, j->from, j->to, (long)pid,
		  j->pidfd);
	job_watch(j);
}

/* Starts what may start: in queue order, at most ALERT_MAX_RUNNING, one per seed. */
static void pump(struct alerts *a)
{
	if (!a->loop && !a->draining)
		return;
	struct alert_job **pp = &a->q_head, *prev = NULL;
	while (*pp && a->n_running < ALERT_MAX_RUNNING) {
		struct alert_job *j = *pp;
		if (seed_busy(a, j->seed)) {
			prev = j;
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		if (a->q_tail == j)
			a->q_tail = prev;
		a->n_queued--;
		j->next = NULL;
		job_start(a, j);
	}
}

static void enqueue(struct alerts *a, struct alert_job *j)
{
	if (a->n_queued >= ALERT_QUEUE_MAX) {
		log_warnx("event=alert seed=%s from=%s to=%s rc=-1 probe=%s status=dropped error=\"%zu changes already "
			  "wait for the alert command (the queue's limit): this one is not run; the next command "
			  "gets MAILCANARY_DROPPED\"", j->seed, j->from, j->to, j->probe_id, a->n_queued);
		a->dropped++;
		job_free(j);
		return;
	}
	j->next = NULL;
	if (a->q_tail)
		a->q_tail->next = j;
	else
		a->q_head = j;
	a->q_tail = j;
	a->n_queued++;
	if (a->n_running)
		log_debug("event=command kind=alert status=queued seed=%s from=%s to=%s queued=%zu running=%zu", j->seed, j->from, j->to,
			  a->n_queued, a->n_running);
	pump(a);
}

void alerts_attach(struct alerts *a, struct evloop *loop)
{
	if (!a)
		return;
	a->loop = loop;
	for (struct alert_job *j = a->running; j; j = j->next)
		job_watch(j);
	pump(a);
}

void alerts_drain(struct alerts *a)
{
	if (!a)
		return;
	for (struct alert_job *j = a->running; j; j = j->next)
		job_unwatch(j);
	a->loop = NULL;
	a->draining = true;
	pump(a);
	if (a->running)
		log_debug("event=command kind=alert status=waiting running=%zu queued=%zu", a->n_running, a->n_queued);
	while (a->running) {
		struct pollfd pfd[ALERT_MAX_RUNNING];
		struct alert_job *jobs[ALERT_MAX_RUNNING];
		nfds_t n = 0;
		size_t nj = 0;
		int64_t now = mono_us(), next = INT64_MAX;
		for (struct alert_job *j = a->running; j && nj < ALERT_MAX_RUNNING; j = j->next) {
			jobs[nj++] = j;
			int64_t due = j->deadline_us;
			if (j->pidfd >= 0) {
				pfd[n].fd = j->pidfd;
				pfd[n].events = POLLIN;
				pfd[n].revents = 0;
				n++;
			} else if (due > now + ALERT_POLL_MS * 1000) {
				due = now + ALERT_POLL_MS * 1000;
			}
			if (due < next)
				next = due;
		}
		int64_t wait_ms = next <= now ? 0 : (next - now + 999) / 1000;
		if (poll(pfd, n, (int)(wait_ms > 60000 ? 60000 : wait_ms)) < 0 && errno != EINTR)
			log_warn("event=alert status=failed error=\"poll\"");
		/* job_check() frees only the job it is given (and starts queued ones, not in jobs[]). */
		for (size_t i = 0; i < nj; i++)
			job_check(jobs[i]);
	}
	a->draining = false;
}

void alerts_free(struct alerts *a)
{
	if (!a)
		return;
	alerts_drain(a);
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i].name);
	free(a->v);
	free(a->path);
	free(a);
}

/* ---- feeding results ---- */

static struct alert_job *job_new(struct alerts *a, const struct latest_result *r, enum alert_state old,
				 enum alert_state new, unsigned aberrations, const char *cause)
{
	struct alert_job *j = xcalloc(1, sizeof *j);
	j->a = a;
	j->seed = xstrdup(r->seed);
	j->probe_id = xstrdup(r->probe_id);
	j->from = alert_state_name(old);
	j->to = alert_state_name(new);
	j->aberration = xstrdup(alert_aberration_names(aberrations));
	j->command = xstrdup(a->conf->alert_command);
	j->timeout_ms = a->conf->alert_timeout_ms > 0 ? a->conf->alert_timeout_ms : 10000;
	j->pidfd = -1;
	evtimer_init(&j->timer, job_timer_cb, j);
	char code[16] = "", delivery[32] = "";
	if (r->code)
		snprintf(code, sizeof code, "%d", r->code);
	if (!isnan(r->delivery_s))
		snprintf(delivery, sizeof delivery, "%.1f", r->delivery_s);
	char *env[] = {
		xasprintf("MAILCANARY_SEED=%s", r->seed),
		xasprintf("MAILCANARY_OLD_STATE=%s", j->from),
		xasprintf("MAILCANARY_NEW_STATE=%s", j->to),
		xasprintf("MAILCANARY_STAGE=%s", r->stage),
		xasprintf("MAILCANARY_CODE=%s", code),
		xasprintf("MAILCANARY_ENHANCED=%s", r->enhanced),
		xasprintf("MAILCANARY_TEXT=%s", *r->text ? r->text : *r->error ? r->error : r->rb_error),
		xasprintf("MAILCANARY_FOLDER=%s", r->folder),
		xasprintf("MAILCANARY_DELIVERY=%s", delivery),
		xasprintf("MAILCANARY_PROBE_ID=%s", r->probe_id),
		xasprintf("MAILCANARY_OUTCOME=%s", r->outcome),
		xasprintf("MAILCANARY_CAUSE=%s", cause),
		xasprintf("MAILCANARY_ABERRATION=%s", j->aberration),
	};
	j->n_env = sizeof env / sizeof env[0];
	j->env = xmalloc(sizeof env);
	memcpy(j->env, env, sizeof env);
	return j;
}

void alerts_feed_json(struct alerts *a, const char *json, const struct rrd_feed_hw *hw)
{
	if (!a)
		return;
	struct latest_result r;
	if (latest_result_parse(json, &r) < 0) {
		latest_result_fini(&r);
		return;
	}
	struct alert_seed *s = seed_get(a, r.seed);
	enum alert_state old = s->track.state;
	unsigned old_fails = s->track.fails;
	bool slow = !isnan(r.delivery_s) && r.delivery_s * 1000.0 > (double)a->conf->alert_latency_ms;
	enum alert_class own = r.state == LATEST_OK && !slow                   ? ALERT_CLEAN
			       : r.state == LATEST_OK || latest_state_warn(r.state) ? ALERT_WARNING
										: ALERT_FAILURE;
	unsigned aberrations = hw ? hw->aberrations : 0;
	enum alert_class c = alert_classify(own, aberrations);
	enum alert_state new = alert_track_apply(&s->track, c, (unsigned)a->conf->alert_failing_after);
	if (new != old)
		s->since = r.sent_ms > 0 ? r.sent_ms / 1000 : (int64_t)time(NULL);
	if (new != old || s->track.fails != old_fails)
		states_save(a);
	if (new != old) {
		/* The aberration is the cause when it alone made the result a warning. */
		const char *cause = own == ALERT_CLEAN && c != ALERT_CLEAN ? alert_aberration_cause(aberrations) : r.cause;
		enqueue(a, job_new(a, &r, old, new, aberrations, cause ? cause : ""));
	}
	latest_result_fini(&r);
}

void alerts_feed_line(struct alerts *a, struct rrd_feed *f, const char *json)
{
	if (f)
		rrd_feed_submit(f, json, a != NULL);
	else
		alerts_feed_json(a, json, NULL);
}

void alerts_rrd_done(void *arg, const char *json, const struct rrd_feed_hw *hw)
{
	alerts_feed_json(*(struct alerts **)arg, json, hw);
}
