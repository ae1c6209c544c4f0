#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "xalloc.h"
#include "conf.h"

struct mon_conf *cli_load_conf(const struct cli_globals *g)
{
	struct mon_conf *conf = NULL;
	struct conf_errors errs = { 0 };
	if (conf_load(g->config_path, &conf, &errs) < 0) {
		conf_errors_print(&errs, stderr);
		conf_errors_fini(&errs);
		return NULL;
	}
	conf_errors_fini(&errs);
	return conf;
}

const struct conf_seed **cli_select_seeds(const struct cli_globals *g, const struct mon_conf *conf, char **names,
					  size_t n_names, size_t *n, int *rc)
{
	*n = n_names ? n_names : conf->n_seeds;
	const struct conf_seed **seeds = xcalloc(*n + 1, sizeof *seeds);
	for (size_t i = 0; i < *n; i++) {
		seeds[i] = n_names ? conf_seed_find(conf, names[i]) : &conf->seeds[i];
		if (!seeds[i]) {
			fprintf(stderr, "mailcanary: no seed named '%s' in %s\n", names[i], g->config_path);
			*rc = EXIT_USAGE;
		}
	}
	return seeds;
}

int cmd_check_config(const struct cli_globals *g, int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: mailcanary [-c FILE] check-config\n");
		return EXIT_USAGE;
	}
	struct mon_conf *conf = cli_load_conf(g);
	if (!conf)
		return EXIT_USAGE;
	printf("configuration OK\n");
	if (g->verbose)
		printf("%s: %zu sender%s, %zu seed%s\n", g->config_path, conf->n_senders,
		       conf->n_senders == 1 ? "" : "s", conf->n_seeds, conf->n_seeds == 1 ? "" : "s");
	conf_free(conf);
	return 0;
}
