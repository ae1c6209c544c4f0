/* One probe round: every selected seed probed now, concurrently within limits.in_flight and
 * limits.per_domain, on one event loop. The daemon's scheduler builds on the same loop. */
#ifndef MON_SCHEDULER_ROUND_H
#define MON_SCHEDULER_ROUND_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "result.h"

struct round_params {
	const struct mon_conf *conf;
	const struct conf_seed *const *seeds; /* the seeds to probe, in order */
	size_t n_seeds;
	bool keep_transcript;
	/* Called once per finished probe, in completion order; r borrowed for the call. */
	void (*on_result)(void *arg, const struct probe_result *r);
	void *arg;
};

/* Runs the round to completion. Returns 0, or -1 with *err (owned) when it could not start. */
int round_run(const struct round_params *p, char **err);

#endif
