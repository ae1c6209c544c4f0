#include <ares.h>
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "commands.h"
#include "conf.h"
#include "log.h"

#define DEFAULT_CONF "/etc/mailcanary/mailcanary.conf"

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: mailcanary [-c FILE] [-v] COMMAND [ARGS]\n"
		"\n"
		"Active e-mail deliverability monitor: sends probe messages to seed mailboxes and\n"
		"records where and how the receiving side said no.\n"
		"\n"
		"Options:\n"
		"  -c FILE     configuration file (default: $MAILCANARY_CONF, else " DEFAULT_CONF ")\n"
		"  -v          more log output on stderr (-vv: debug)\n"
		"  -h, --help  this help\n"
		"\n"
		"Commands:\n"
		"  check-config          validate the configuration: \"configuration OK\" (exit 0) or\n"
		"                        every error as FILE:LINE: key: message (exit 2)\n"
		"  probe [SEED...] [--json] [--transcript] [--no-readback] [--wait DURATION]\n"
		"                        probe all seeds (or the named ones) now; one line per probe,\n"
		"                        --json: one JSON object per line; --transcript adds the SMTP\n"
		"                        dialogue (credentials redacted). A deferral is retried on\n"
		"                        retry.schedule within --wait (default 0), later by the daemon\n"
		"                        or the cron mode from the journal. Exit 0 all accepted,\n"
		"                        1 any deferred/rejected/failed/unknown, 2 usage or config error\n"
		"  probe --due [--json] [--wait DURATION]\n"
		"                        the cron mode: runs what the schedules and the journal say is\n"
		"                        due (retries, missed slots once), waits at most DURATION for\n"
		"                        more, journals the rest; run it every minute from cron\n"
		"  run                   the daemon: probes on schedule until SIGTERM/SIGINT (running\n"
		"                        attempts finish, up to 30 s), SIGHUP reloads the configuration\n"
		"  graph --out DIR [--period 1d|1w|1m|1y]... [--width N] [--height N] [--jobs N] [SEED...]\n"
		"                        PNG graphs per seed and period from the RRD files (stage\n"
		"                        latency, delivery latency, outcomes, attempts) and a static\n"
		"                        dashboard: DIR/index.html, one page per seed, no JavaScript\n"
		"  dns [SEED|DOMAIN...] [--json]\n"
		"                        DNS trust checks of each seed (all by default) or domain:\n"
		"                        MX, PTR/FCrDNS, EHLO name, SPF, DMARC, DKIM keys, DNSBLs;\n"
		"                        one line per check (pass/warn/fail/error and the evidence),\n"
		"                        --json: one object per target. Exit 0 no fail or error,\n"
		"                        1 any, 2 usage or config error\n"
		"  status [SEED...] [--json]\n"
		"                        the latest result of each seed (all by default) from the detail\n"
		"                        log: outcome, stage, code, text, delivery time, folder, age, and\n"
		"                        the diagnosis under each one not cleanly delivered, then the\n"
		"                        round diagnosis across seeds; --json: one object per seed.\n"
		"                        Exit 0 all ok, 1 any problem, 2 usage or config error\n"
		"  check SEED [--warn-latency DURATION] [--crit-latency DURATION] [--no-readback]\n"
		"        [-t DURATION]\n"
		"                        Nagios/Icinga plugin: one probe now, one status line with\n"
		"                        performance data, the diagnosis below a problem; latency:\n"
		"                        delivery when read back, else SMTP time (seconds, or a unit).\n"
		"                        Exit 0 OK, 1 WARNING (deferred, junk, slow), 2 CRITICAL\n"
		"                        (rejected, failed, missing, bounced, slower, no result within\n"
		"                        -t, default 50 s), 3 UNKNOWN\n"
		"  version               print the version\n"
		"\n"
		"See mailcanary(8) and mailcanary.conf(5).\n");
}

int main(int argc, char **argv)
{
	struct cli_globals g = { .config_path = NULL, .verbose = 0 };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "config", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "+c:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': g.config_path = optarg; break;
		case 'v': g.verbose++; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (!g.config_path)
		g.config_path = getenv("MAILCANARY_CONF");
	if (!g.config_path || !*g.config_path)
		g.config_path = DEFAULT_CONF;
	log_init("mailcanary", g.verbose >= 2 ? LOG_LEVEL_DEBUG : g.verbose == 1 ? LOG_LEVEL_INFO : LOG_LEVEL_WARN,
		 false, 0);

	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[optind];
	int cargc = argc - optind;
	char **cargv = argv + optind;

	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
		printf("mailcanary %s (libcurl %s, %s, c-ares %s)\n", MON_VERSION, cv->version,
		       cv->ssl_version ? cv->ssl_version : "no TLS", ares_version(NULL));
		return 0;
	}
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}

	/* Each probe in flight holds a few descriptors (socket, its worker's epoll and eventfds). */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
		fprintf(stderr, "mailcanary: cannot initialise libcurl or c-ares\n");
		return 1;
	}
	int rc;
	if (strcmp(cmd, "check-config") == 0)
		rc = cmd_check_config(&g, cargc, cargv);
	else if (strcmp(cmd, "probe") == 0)
		rc = cmd_probe(&g, cargc, cargv);
	else if (strcmp(cmd, "run") == 0)
		rc = cmd_run(&g, cargc, cargv);
	else if (strcmp(cmd, "graph") == 0)
		rc = cmd_graph(&g, cargc, cargv);
	else if (strcmp(cmd, "dns") == 0)
		rc = cmd_dns(&g, cargc, cargv);
	else if (strcmp(cmd, "status") == 0)
		rc = cmd_status(&g, cargc, cargv);
	else if (strcmp(cmd, "check") == 0)
		rc = cmd_check(&g, cargc, cargv);
	else {
		fprintf(stderr, "mailcanary: unknown command '%s'\n", cmd);
		usage(stderr);
		rc = EXIT_USAGE;
	}
	ares_library_cleanup();
	curl_global_cleanup();
	return rc;
}
