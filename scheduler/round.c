#include "round.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "curl_glue.h"
#include "dns.h"
#include "evloop.h"
#include "log.h"
#include "probe.h"
#include "xalloc.h"

enum seed_state { SEED_WAITING = 0, SEED_RUNNING, SEED_DONE };

struct round {
	const struct round_params *p;
	struct probe_env env;
	enum seed_state *state; /* per seed */
	size_t running;
	size_t finished;
};

struct round_slot {
	struct round *rd;
	size_t idx;
};

static void round_fill(struct round *rd);

/* Probes to one destination domain in flight now (limits.per_domain). */
static size_t domain_in_flight(const struct round *rd, const char *domain)
{
	size_t n = 0;
	for (size_t i = 0; i < rd->p->n_seeds; i++)
		if (rd->state[i] == SEED_RUNNING && strcasecmp(rd->p->seeds[i]->domain, domain) == 0)
			n++;
	return n;
}

static void on_probe_done(void *arg, const struct probe_result *r)
{
	struct round_slot *slot = arg;
	struct round *rd = slot->rd;
	rd->p->on_result(rd->p->arg, r);
	rd->state[slot->idx] = SEED_DONE;
	rd->running--;
	rd->finished++;
	free(slot);
	round_fill(rd);
}

/* Starts waiting seeds, in order, as far as the limits allow. */
static void round_fill(struct round *rd)
{
	const struct mon_conf *c = rd->p->conf;
	size_t in_flight_max = c->limits_in_flight > 0 ? (size_t)c->limits_in_flight : (size_t)-1;
	for (size_t i = 0; i < rd->p->n_seeds && rd->running < in_flight_max; i++) {
		const struct conf_seed *seed = rd->p->seeds[i];
		if (rd->state[i] != SEED_WAITING)
			continue;
		if (c->limits_per_domain > 0 && domain_in_flight(rd, seed->domain) >= (size_t)c->limits_per_domain)
			continue;
		struct round_slot *slot = xcalloc(1, sizeof *slot);
		slot->rd = rd;
		slot->idx = i;
		rd->state[i] = SEED_RUNNING;
		rd->running++;
		probe_start(&rd->env, seed, on_probe_done, slot);
	}
}

int round_run(const struct round_params *p, char **err)
{
	struct round rd;
	memset(&rd, 0, sizeof rd);
	rd.p = p;
	rd.state = xcalloc(p->n_seeds + 1, sizeof *rd.state);
	rd.env.conf = p->conf;
	rd.env.keep_transcript = p->keep_transcript;
	rd.env.loop = evloop_new();
	rd.env.dns = dns_new(rd.env.loop, p->conf->dns_servers, p->conf->n_dns_servers, p->conf->dns_timeout_ms, err);
	if (!rd.env.dns) {
		evloop_free(rd.env.loop);
		free(rd.state);
		return -1;
	}
	rd.env.glue = curl_glue_new(rd.env.loop);
	round_fill(&rd);
	evloop_run(rd.env.loop);
	if (rd.finished != p->n_seeds)
		log_warnx("round ended with %zu of %zu probes finished", rd.finished, p->n_seeds);
	curl_glue_free(rd.env.glue);
	dns_free(rd.env.dns);
	evloop_free(rd.env.loop);
	free(rd.state);
	return 0;
}
