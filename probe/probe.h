/* A probe job for one seed: DNS (MX or relay host), then SMTP attempts down the MX list like an
 * MTA, into one struct probe_result. */
#ifndef MON_PROBE_PROBE_H
#define MON_PROBE_PROBE_H

#include <stdbool.h>

#include "conf.h"
#include "result.h"

struct evloop;
struct dns;
struct curl_glue;
struct probe_job;

/* What every job of a round shares (all borrowed). */
struct probe_env {
	struct evloop *loop;
	struct dns *dns;
	struct curl_glue *glue;
	const struct mon_conf *conf;
	bool keep_transcript;
	const unsigned char *token_key; /* TOKEN_KEY_LEN bytes; NULL: the token is the bare probe id */
};

/* r is borrowed for the duration of the call; the callee may fill its scheduler fields. */
typedef void probe_done_cb(void *arg, struct probe_result *r);

/* A retry resends the same message: same probe id, same Date. */
struct probe_ident {
	const char *probe_id;   /* borrowed */
	int64_t sent_at_ms;     /* the first attempt's start */
	int attempt;            /* 1-based number of the attempt about to start */
};

/* Starts one attempt of the probe of seed (borrowed, must outlive the job): a new probe when
 * ident is NULL, else a retry of ident (borrowed for the call). done fires exactly once, from
 * the loop. */
struct probe_job *probe_start(const struct probe_env *env, const struct conf_seed *seed,
			      const struct probe_ident *ident, probe_done_cb *done, void *arg);
/* Aborts; done does not fire. */
void probe_cancel(struct probe_job *job);

/* Most addresses tried per probe (Postfix smtp_mx_address_limit). */
#define PROBE_MAX_TRIES 5

#endif
