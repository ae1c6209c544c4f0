/* Subcommands: each returns the process exit status. */
#ifndef MON_CLI_COMMANDS_H
#define MON_CLI_COMMANDS_H

struct cli_globals {
	const char *config_path;
	int verbose;
};

int cmd_check_config(const struct cli_globals *g, int argc, char **argv);
int cmd_probe(const struct cli_globals *g, int argc, char **argv);

/* Loads the configuration or prints every error (FILE:LINE: key: message) to stderr.
 * Returns the owned config or NULL. */
struct mon_conf *cli_load_conf(const struct cli_globals *g);

#define EXIT_PROBLEM 1 /* a probe was not accepted */
#define EXIT_USAGE 2   /* usage or configuration error */

#endif
