/* Subcommands: each returns the process exit status. */
#ifndef MON_CLI_COMMANDS_H
#define MON_CLI_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

struct cli_globals {
	const char *config_path;
	int verbose;
};

int cmd_check_config(const struct cli_globals *g, int argc, char **argv);
int cmd_probe(const struct cli_globals *g, int argc, char **argv);
int cmd_run(const struct cli_globals *g, int argc, char **argv);
int cmd_dns(const struct cli_globals *g, int argc, char **argv);
int cmd_graph(const struct cli_globals *g, int argc, char **argv);
int cmd_status(const struct cli_globals *g, int argc, char **argv);
int cmd_check(const struct cli_globals *g, int argc, char **argv);

struct mon_conf;
/* Logging as the configuration's log group says (stderr or syslog with its facility); the
 * daemon logs its events at level info, other commands from -v on. */
void cli_log_setup(const struct mon_conf *conf, int verbose, bool daemon);

/* Loads the configuration or prints every error (FILE:LINE: key: message) to stderr.
 * Returns the owned config or NULL. */
struct mon_conf *cli_load_conf(const struct cli_globals *g);

struct conf_seed;
/* The seeds named (n_names of them, in that order), or every seed of conf when none is named:
 * NULL-terminated, *n of them (owned; free() it). An unknown name is reported on stderr and sets
 * *rc to EXIT_USAGE (its slot is NULL). */
const struct conf_seed **cli_select_seeds(const struct cli_globals *g, const struct mon_conf *conf, char **names,
					  size_t n_names, size_t *n, int *rc);

#define EXIT_PROBLEM 1 /* a probe was not accepted */
#define EXIT_USAGE 2   /* usage or configuration error */

/* probe --due: how long attempts still running when --wait ends may go on before they are
 * cancelled (journaled as interrupted, never resent). */
#define PROBE_DUE_GRACE_MS 30000
/* run: the same after SIGTERM/SIGINT (below systemd's default stop timeout of 90 s). */
#define RUN_STOP_GRACE_MS 30000

#endif
