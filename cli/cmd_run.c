/* mailcanary run: the daemon. Schedules forever on one event loop; SIGTERM/SIGINT stop taking
 * new work and let running attempts finish (up to RUN_STOP_GRACE_MS), SIGHUP reloads the
 * configuration (a broken one is logged and the running one kept). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <syslog.h>
#include <unistd.h>

#include "clock.h"
#include "commands.h"
#include "conf.h"
#include "engine.h"
#include "evloop.h"
#include "journal.h"
#include "alerts.h"
#include "graph_refresh.h"
#include "log.h"
#include "rrd_feed.h"
#include "result.h"
#include "strbuf.h"
#include "xalloc.h"

struct run_ctx {
	const struct cli_globals *g;
	struct engine *e;
	const char *state_dir; /* the one locked at start */
	struct rrd_feed *rrd;  /* final results to the RRD files, with the running configuration */
	struct alerts *alerts; /* final results to the seed states and the alert hook */
	struct graph_refresh *graph; /* graph_dir redrawn every graph_every in a child process */
};

void cli_log_setup(const struct mon_conf *conf, int verbose, bool daemon)
{
	static const struct {
		const char *name;
		int facility;
	} facilities[] = {
		{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER }, { "local0", LOG_LOCAL0 },
		{ "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 },
		{ "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
	};
	int facility = LOG_MAIL;
	for (size_t i = 0; i < sizeof facilities / sizeof facilities[0]; i++)
		if (conf->log_facility && strcmp(conf->log_facility, facilities[i].name) == 0)
			facility = facilities[i].facility;
	enum log_level lvl = verbose >= 2 ? LOG_LEVEL_DEBUG : verbose == 1 || daemon ? LOG_LEVEL_INFO : LOG_LEVEL_WARN;
	log_init("mailcanary", lvl, conf->log_target && strcmp(conf->log_target, "syslog") == 0, facility);
}

static void reload(struct run_ctx *ctx)
{
	struct mon_conf *conf = NULL;
	struct conf_errors errs = { 0 };
	int rc = conf_load(ctx->g->config_path, &conf, &errs);
	if (rc == 0 && strcmp(conf->state_dir, ctx->state_dir) != 0) {
		/* The lock and the journal belong to the running state directory. */
		log_warnx("event=reload status=failed error=\"state_dir changed from %s to %s: restart to move it\": "
			  "keeping the running configuration", ctx->state_dir, conf->state_dir);
		conf_free(conf);
		conf_errors_fini(&errs);
		return;
	}
	if (rc < 0) {
		for (size_t i = 0; i < errs.n; i++)
			log_warnx("event=reload status=failed error=\"%s:%d: %s%s%s\"", errs.v[i].file, errs.v[i].line,
				  errs.v[i].key, *errs.v[i].key ? ": " : "", errs.v[i].msg);
		log_warnx("event=reload status=failed errors=%zu: keeping the running configuration", errs.n);
		conf_errors_fini(&errs);
		return;
	}
	conf_errors_fini(&errs);
	/* First: a callback from within engine_reload must not see the old configuration, which
	 * the engine may free there. The engine keeps conf until the next reload. */
	if (ctx->rrd && !conf->rrd) {
		rrd_feed_free(ctx->rrd); /* waits for the lines queued (and feeds their alerts) */
		ctx->rrd = NULL;
	} else if (!ctx->rrd) {
		ctx->rrd = rrd_feed_new(conf); /* NULL while rrd = false */
		rrd_feed_attach(ctx->rrd, engine_loop(ctx->e), alerts_rrd_done, &ctx->alerts);
	} else {
		rrd_feed_set_conf(ctx->rrd, conf);
	}
	if (ctx->alerts && !conf->alert_command) {
		alerts_free(ctx->alerts);
		ctx->alerts = NULL;
	} else if (!ctx->alerts) {
		ctx->alerts = alerts_new(conf); /* NULL while alert.command is not set */
		alerts_attach(ctx->alerts, engine_loop(ctx->e));
	} else {
		alerts_set_conf(ctx->alerts, conf);
	}
	graph_refresh_set_conf(ctx->graph, conf);
	engine_reload(ctx->e, conf);
}

/* The engine's callbacks, on the loop's thread: one RRD update per probe once it is final, then
 * the alerts (alerts_feed_line()). */
static void on_result(void *arg, const struct probe_result *r, const char *json)
{
	struct run_ctx *ctx = arg;
	if (r->final)
		alerts_feed_line(ctx->alerts, ctx->rrd, json);
}

static void on_readback(void *arg, const struct readback_done *d)
{
	struct run_ctx *ctx = arg;
	if (d->json && *d->json)
		alerts_feed_line(ctx->alerts, ctx->rrd, d->json);
}

static void on_repaired(void *arg, const char *json)
{
	struct run_ctx *ctx = arg;
	alerts_feed_line(ctx->alerts, ctx->rrd, json);
}

static void on_signal(void *arg, int fd, unsigned events)
{
	struct run_ctx *ctx = arg;
	struct signalfd_siginfo si;
	(void)events;
	while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
		switch (si.ssi_signo) {
		case SIGHUP:
			log_info("event=signal signal=HUP action=reload");
			reload(ctx);
			break;
		case SIGTERM:
		case SIGINT:
			log_info("event=signal signal=%s action=stop", si.ssi_signo == SIGTERM ? "TERM" : "INT");
			graph_refresh_stop(ctx->graph);
			engine_shutdown(ctx->e, RUN_STOP_GRACE_MS);
			break;
		default:
			break;
		}
	}
}

static void run_usage(FILE *fp)
{
	fprintf(fp, "usage: mailcanary [-c FILE] [-v] run\n");
}

int cmd_run(const struct cli_globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	optind = 0; /* reinitialise getopt (main stopped at the command with "+"): options may follow operands */
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h': run_usage(stdout); return 0;
		default: run_usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		run_usage(stderr);
		return EXIT_USAGE;
	}
	struct mon_conf *conf = cli_load_conf(g);
	if (!conf)
		return EXIT_USAGE;
	cli_log_setup(conf, g->verbose, true);

	char *err = NULL;
	int lock_fd = journal_lock(conf->state_dir, &err);
	if (lock_fd < 0) {
		fprintf(stderr, "mailcanary: %s\n", err);
		log_warnx("event=exit reason=\"%s\"", err);
		free(err);
		conf_free(conf);
		return EXIT_USAGE;
	}
	struct journal_state st;
	struct journal *journal = journal_open(conf->state_dir, wall_ms(), &st, &err);
	if (!journal) {
		fprintf(stderr, "mailcanary: journal: %s\n", err);
		free(err);
		close(lock_fd);
		conf_free(conf);
		return 1;
	}
	if (st.n_corrupt)
		log_warnx("event=journal corrupt=%zu: skipped", st.n_corrupt);

	/* Signals arrive through the loop; threads started later inherit the blocked mask. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0) {
		log_warn("signalfd");
		journal_state_fini(&st);
		journal_close(journal);
		close(lock_fd);
		conf_free(conf);
		return 1;
	}

	char *state_dir = xstrdup(conf->state_dir);
	log_info("event=start version=%s pid=%ld seeds=%zu pending=%zu state_dir=%s", MON_VERSION, (long)getpid(),
		 conf->n_seeds, st.n_probes, state_dir);
	struct run_ctx ctx = { .g = g, .state_dir = state_dir, .rrd = rrd_feed_new(conf),
				.alerts = alerts_new(conf) };
	rrd_feed_attach(ctx.rrd, NULL, alerts_rrd_done, &ctx.alerts); /* engine_new's repairs: written at once */
	struct engine_params ep = {
		.mode = ENGINE_DAEMON,
		.journal = journal,
		.jstate = &st,
		.readback = true,
		.on_result = on_result,
		.on_readback = on_readback,
		.on_repaired = on_repaired,
		.arg = &ctx,
	};
	struct engine *e = engine_new(conf, &ep, &err); /* takes conf and journal */
	journal_state_fini(&st);
	if (!e) {
		fprintf(stderr, "mailcanary: %s\n", err);
		log_warnx("event=exit reason=\"%s\"", err);
		free(err);
		rrd_feed_free(ctx.rrd);
		alerts_free(ctx.alerts);
		free(state_dir);
		close(sfd);
		close(lock_fd);
		return 1;
	}
	ctx.e = e;
	ctx.graph = graph_refresh_new(engine_loop(e), g, conf);
	evloop_fd_set(engine_loop(e), sfd, EVLOOP_READ, on_signal, &ctx);
	alerts_attach(ctx.alerts, engine_loop(e)); /* alert commands run beside the probes */
	rrd_feed_attach(ctx.rrd, engine_loop(e), alerts_rrd_done, &ctx.alerts); /* RRD files on a writer thread */
	engine_run(e);
	graph_refresh_free(ctx.graph); /* before the loop goes: waits for a refresh still running */
	evloop_fd_del(engine_loop(e), sfd);
	rrd_feed_drain(ctx.rrd); /* before the loop goes: the last lines, and their alerts */
	alerts_drain(ctx.alerts); /* before the loop goes: the commands still running end or are killed */
	engine_free(e);
	rrd_feed_free(ctx.rrd);
	alerts_free(ctx.alerts);
	close(sfd);
	close(lock_fd);
	free(state_dir);
	log_info("event=exit status=0");
	return 0;
}
