/* Seed states and the alert hook (see alerts.h). */
#include "alerts.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "engine.h"
#include "latest.h"
#include "log.h"
#include "result.h"
#include "strbuf.h"
#include "xalloc.h"

extern char **environ;

enum alert_state { ALERT_OK = 0, ALERT_DEGRADED, ALERT_FAILING, ALERT_STATE__COUNT };

static const char *const alert_state_names[ALERT_STATE__COUNT] = {
	[ALERT_OK] = "ok",
	[ALERT_DEGRADED] = "degraded",
	[ALERT_FAILING] = "failing",
};

struct alert_seed {
	char *name;
	enum alert_state state;
	unsigned fails;   /* consecutive failures */
	int64_t since;    /* Unix s: when the state began */
};

struct alerts {
	const struct mon_conf *conf; /* borrowed */
	char *path;                  /* state_dir/alerts.state */
	struct alert_seed *v;
	size_t n, cap;
	pid_t *running;              /* commands not waited for */
	size_t n_running;
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
	s->state = ALERT_OK;
	s->fails = 0;
	s->since = (int64_t)time(NULL);
	return s;
}

static int state_from_name(const char *name)
{
	for (int i = 0; i < ALERT_STATE__COUNT; i++)
		if (strcmp(alert_state_names[i], name) == 0)
			return i;
	return -1;
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
		if (sscanf(line, "%255s %31s %u %lld", name, st, &fails, &since) != 4 || (k = state_from_name(st)) < 0) {
			log_warnx("event=alert status=failed error=\"%s:%u: not a seed state: skipped\"", a->path, lineno);
			continue;
		}
		struct alert_seed *s = seed_get(a, name);
		s->state = (enum alert_state)k;
		s->fails = fails;
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
		fprintf(fp, "%s %s %u %" PRId64 "\n", a->v[i].name, alert_state_names[a->v[i].state], a->v[i].fails,
			a->v[i].since);
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
	struct alerts *a = xmalloc(sizeof *a);
	memset(a, 0, sizeof *a);
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

static void reap(struct alerts *a)
{
	size_t k = 0;
	for (size_t i = 0; i < a->n_running; i++)
		if (waitpid(a->running[i], NULL, WNOHANG) == 0)
			a->running[k++] = a->running[i];
	a->n_running = k;
}

void alerts_free(struct alerts *a)
{
	if (!a)
		return;
	reap(a);
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i].name);
	free(a->v);
	free(a->running);
	free(a->path);
	free(a);
}

static bool is_ours(const char *env)
{
	static const char *const names[] = { "SEED=", "OLD_STATE=", "NEW_STATE=", "STAGE=", "CODE=", "ENHANCED=",
					     "TEXT=", "FOLDER=", "DELIVERY=", "PROBE_ID=", "OUTCOME=", "CAUSE=" };
	if (strncmp(env, "MAILCANARY_", 11) != 0)
		return false;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strncmp(env + 11, names[i], strlen(names[i])) == 0)
			return true;
	return false;
}

/* Runs the command for seed's change from old; one log line. */
static void run_command(struct alerts *a, const struct latest_result *r, enum alert_state old, enum alert_state new)
{
	const char *from = alert_state_names[old], *to = alert_state_names[new];
	char code[16] = "", delivery[32] = "";
	if (r->code)
		snprintf(code, sizeof code, "%d", r->code);
	if (!isnan(r->delivery_s))
		snprintf(delivery, sizeof delivery, "%.1f", r->delivery_s);
	char *ours[] = {
		xasprintf("MAILCANARY_SEED=%s", r->seed),
		xasprintf("MAILCANARY_OLD_STATE=%s", from),
		xasprintf("MAILCANARY_NEW_STATE=%s", to),
		xasprintf("MAILCANARY_STAGE=%s", r->stage),
		xasprintf("MAILCANARY_CODE=%s", code),
		xasprintf("MAILCANARY_ENHANCED=%s", r->enhanced),
		xasprintf("MAILCANARY_TEXT=%s", *r->text ? r->text : *r->error ? r->error : r->rb_error),
		xasprintf("MAILCANARY_FOLDER=%s", r->folder),
		xasprintf("MAILCANARY_DELIVERY=%s", delivery),
		xasprintf("MAILCANARY_PROBE_ID=%s", r->probe_id),
		xasprintf("MAILCANARY_OUTCOME=%s", r->outcome),
		xasprintf("MAILCANARY_CAUSE=%s", r->cause),
	};
	size_t n_ours = sizeof ours / sizeof ours[0], n_env = 0;
	while (environ && environ[n_env])
		n_env++;
	char **envp = xmalloc((n_env + n_ours + 1) * sizeof *envp);
	size_t k = 0;
	for (size_t i = 0; i < n_env; i++)
		if (!is_ours(environ[i]))
			envp[k++] = environ[i];
	for (size_t i = 0; i < n_ours; i++)
		envp[k++] = ours[i];
	envp[k] = NULL;
	char sh[] = "sh", dash_c[] = "-c";
	char *argv[] = { sh, dash_c, a->conf->alert_command, NULL };
	long open_max = sysconf(_SC_OPEN_MAX);
	if (open_max < 0 || open_max > 65536)
		open_max = 65536;

	reap(a);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		/* The child: a clean signal state, stdin from /dev/null, stdout to our stderr (stdout
		 * may be `probe --json`), none of our other descriptors (the state_dir lock). */
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
	int status = 0;
	pid_t got = 0;
	if (pid < 0) {
		log_warn("event=alert seed=%s from=%s to=%s status=failed error=\"fork\"", r->seed, from, to);
	} else {
		for (int waited = 0; waited <= ALERT_WAIT_MS; waited += 10) {
			got = waitpid(pid, &status, WNOHANG);
			if (got != 0 && !(got < 0 && errno == EINTR))
				break;
			struct timespec ts = { 0, 10 * 1000000L };
			nanosleep(&ts, NULL);
		}
		if (got == 0) {
			log_warnx("event=alert seed=%s from=%s to=%s pid=%ld status=running: alert command still running, "
				  "not waited for", r->seed, from, to, (long)pid);
			a->running = xrealloc(a->running, (a->n_running + 1) * sizeof *a->running);
			a->running[a->n_running++] = pid;
		} else if (got < 0) {
			log_warn("event=alert seed=%s from=%s to=%s status=failed error=\"waitpid\"", r->seed, from, to);
		} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			log_info("event=alert seed=%s from=%s to=%s rc=0 probe=%s", r->seed, from, to, r->probe_id);
		} else if (WIFEXITED(status)) {
			log_warnx("event=alert seed=%s from=%s to=%s rc=%d probe=%s status=failed error=\"alert command "
				  "failed%s\"", r->seed, from, to, WEXITSTATUS(status), r->probe_id,
				  WEXITSTATUS(status) == 127 ? " (not found?)" : "");
		} else {
			log_warnx("event=alert seed=%s from=%s to=%s rc=-1 signal=%d probe=%s status=failed error=\"alert "
				  "command killed by a signal\"", r->seed, from, to, WIFSIGNALED(status) ? WTERMSIG(status) : 0,
				  r->probe_id);
		}
	}
	free(envp);
	for (size_t i = 0; i < n_ours; i++)
		free(ours[i]);
}

void alerts_feed_json(struct alerts *a, const char *json)
{
	if (!a)
		return;
	struct latest_result r;
	if (latest_result_parse(json, &r) < 0) {
		latest_result_fini(&r);
		return;
	}
	struct alert_seed *s = seed_get(a, r.seed);
	enum alert_state old = s->state, new;
	unsigned old_fails = s->fails;
	bool slow = !isnan(r.delivery_s) && r.delivery_s * 1000.0 > (double)a->conf->alert_latency_ms;
	if (r.state == LATEST_OK && !slow) {
		s->fails = 0;
		new = ALERT_OK;
	} else if (r.state == LATEST_OK || latest_state_warn(r.state)) {
		s->fails = 0;
		new = old == ALERT_FAILING ? ALERT_FAILING : ALERT_DEGRADED;
	} else {
		s->fails++;
		new = old == ALERT_FAILING || s->fails >= (unsigned)a->conf->alert_failing_after ? ALERT_FAILING
												  : ALERT_DEGRADED;
	}
	if (new != old) {
		s->state = new;
		s->since = r.sent_ms > 0 ? r.sent_ms / 1000 : (int64_t)time(NULL);
	}
	if (new != old || s->fails != old_fails)
		states_save(a);
	if (new != old)
		run_command(a, &r, old, new);
	latest_result_fini(&r);
}

void alerts_feed_result(struct alerts *a, const struct probe_result *r)
{
	if (!a || !r->final)
		return;
	struct strbuf line;
	sb_init(&line);
	probe_result_json(r, &line, false);
	alerts_feed_json(a, line.s);
	sb_fini(&line);
}

void alerts_feed_readback(struct alerts *a, const struct readback_done *d)
{
	if (a && d->json && *d->json)
		alerts_feed_json(a, d->json);
}
