/* mailcanary dns [SEED|DOMAIN...] [--json]: the DNS trust checks (probe/dnscheck.h) of each seed
 * (its sender's identity and its domain's MX), or of a domain (as the recipient, with the identity
 * of the sender whose mail_from is at that domain, else the first sender). All targets run at
 * once in one event loop; the output keeps the order of the targets. */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "conf.h"
#include "dns.h"
#include "dnscheck.h"
#include "evloop.h"
#include "json.h"
#include "strbuf.h"
#include "xalloc.h"

#define PORT_TIMEOUT_CAP_MS 10000 /* mx_port: connect and greeting, each at most this */

struct target {
	const char *label;
	const char *domain;
	const struct conf_sender *sender; /* NULL: recipient checks only */
	struct dnscheck *run;
	struct strbuf out; /* the rendered result */
	bool done;
};

struct dns_out {
	bool json;
	struct target *t;
	size_t n, printed, left;
	size_t by[DNSCHECK_ERROR + 1];
	size_t checks;
};

static void dns_usage(FILE *fp)
{
	fprintf(fp, "usage: mailcanary [-c FILE] dns [SEED|DOMAIN...] [--json]\n");
}

static bool looks_like_domain(const char *s)
{
	size_t n = strlen(s);
	bool dot = false;
	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.')
			dot = true;
		else if (!isalnum(c) && c != '-')
			return false;
	}
	return dot;
}

static void render(struct dns_out *o, struct target *t, const struct dnscheck_result *r)
{
	if (o->json) {
		struct json j;
		json_init(&j, &t->out);
		dnscheck_result_json(r, &j);
		sb_appendc(&t->out, '\n');
		return;
	}
	for (size_t i = 0; i < r->n_items; i++) {
		const struct dnscheck_item *it = &r->items[i];
		sb_appendf(&t->out, "%-20s %-18s %-6s %s\n", r->target, it->name, dnscheck_status_name(it->status),
			   it->detail);
	}
}

static void flush_ready(struct dns_out *o)
{
	while (o->printed < o->n && o->t[o->printed].done) {
		struct target *t = &o->t[o->printed++];
		fputs(t->out.s, stdout);
		sb_fini(&t->out);
	}
	fflush(stdout);
}

struct done_arg {
	struct dns_out *o;
	size_t i;
};

static void on_target_done(void *arg, const struct dnscheck_result *r)
{
	struct done_arg *d = arg;
	struct dns_out *o = d->o;
	struct target *t = &o->t[d->i];
	for (size_t i = 0; i < r->n_items; i++)
		o->by[r->items[i].status]++;
	o->checks += r->n_items;
	render(o, t, r);
	t->done = true;
	t->run = NULL;
	o->left--;
	flush_ready(o);
}

/* The sender for a domain target: the one whose mail_from is at that domain, else the first. */
static const struct conf_sender *sender_for_domain(const struct mon_conf *conf, const char *domain)
{
	for (size_t i = 0; i < conf->n_senders; i++) {
		const char *at = strrchr(conf->senders[i].mail_from, '@');
		if (at && strcasecmp(at + 1, domain) == 0)
			return &conf->senders[i];
	}
	return conf->n_senders ? &conf->senders[0] : NULL;
}

int cmd_dns(const struct cli_globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct dns_out o;
	int ch, rc = 0;
	memset(&o, 0, sizeof o);
	optind = 0; /* reinitialise getopt (main stopped at the command with "+"): options may follow operands */
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j': o.json = true; break;
		case 'h': dns_usage(stdout); return 0;
		default: dns_usage(stderr); return EXIT_USAGE;
		}
	}
	struct mon_conf *conf = cli_load_conf(g);
	if (!conf)
		return EXIT_USAGE;
	/* like a manual probe, it logs to stderr (main() set that up, with -v) */

	o.n = optind < argc ? (size_t)(argc - optind) : conf->n_seeds;
	o.t = xcalloc(o.n ? o.n : 1, sizeof *o.t);
	for (size_t i = 0; i < o.n; i++) {
		struct target *t = &o.t[i];
		const struct conf_seed *seed = optind < argc ? conf_seed_find(conf, argv[optind + (int)i]) : &conf->seeds[i];
		if (seed) {
			t->label = seed->name;
			t->domain = seed->domain;
			t->sender = seed->sender;
		} else if (looks_like_domain(argv[optind + (int)i])) {
			t->label = argv[optind + (int)i];
			t->domain = t->label;
			t->sender = sender_for_domain(conf, t->domain);
		} else {
			fprintf(stderr, "mailcanary: '%s' is neither a seed of %s nor a domain name\n",
				argv[optind + (int)i], g->config_path);
			rc = EXIT_USAGE;
		}
	}
	if (rc == 0 && o.n == 0) {
		fprintf(stderr, "mailcanary: %s lists no seeds: name a domain to check\n", g->config_path);
		rc = EXIT_USAGE;
	}
	if (rc != 0) {
		free(o.t);
		conf_free(conf);
		return rc;
	}

	char *err = NULL;
	struct evloop *loop = evloop_new();
	struct dns *dns = dns_new(loop, conf->dns_servers, conf->n_dns_servers, conf->dns_timeout_ms, &err);
	if (!dns) {
		fprintf(stderr, "mailcanary: %s\n", err);
		free(err);
		evloop_free(loop);
		free(o.t);
		conf_free(conf);
		return EXIT_PROBLEM;
	}
	struct dnscheck_ctx *ctx = dnscheck_ctx_new(loop, dns, conf->dns_timeout_ms);
	struct done_arg *args = xcalloc(o.n, sizeof *args);
	int64_t conn_ms = conf->timeouts.connect_ms < PORT_TIMEOUT_CAP_MS ? conf->timeouts.connect_ms : PORT_TIMEOUT_CAP_MS;
	int64_t banner_ms = conf->timeouts.banner_ms < PORT_TIMEOUT_CAP_MS ? conf->timeouts.banner_ms : PORT_TIMEOUT_CAP_MS;

	if (!o.json)
		printf("%-20s %-18s %-6s %s\n", "TARGET", "CHECK", "STATUS", "DETAIL");
	fflush(stdout);
	o.left = o.n;
	for (size_t i = 0; i < o.n; i++) {
		struct target *t = &o.t[i];
		const struct conf_sender *s = t->sender;
		struct dnscheck_params p = {
			.target = t->label,
			.domain = t->domain,
			.connect_timeout_ms = conn_ms,
			.banner_timeout_ms = banner_ms,
			.port = 25,
		};
		if (s)
			dnscheck_params_sender(&p, conf, s); /* the identity a probe of it checks too */
		sb_init(&t->out);
		args[i].o = &o;
		args[i].i = i;
		t->run = dnscheck_start(ctx, &p, on_target_done, &args[i]);
	}
	while (o.left > 0)
		evloop_run_once(loop, 1000000);
	flush_ready(&o);

	if (!o.json)
		printf("%zu target%s, %zu checks: %zu pass, %zu warn, %zu fail, %zu error\n", o.n, o.n == 1 ? "" : "s",
		       o.checks, o.by[DNSCHECK_PASS], o.by[DNSCHECK_WARN], o.by[DNSCHECK_FAIL], o.by[DNSCHECK_ERROR]);
	rc = o.by[DNSCHECK_FAIL] || o.by[DNSCHECK_ERROR] ? EXIT_PROBLEM : 0;

	dnscheck_ctx_free(ctx);
	dns_free(dns);
	evloop_free(loop);
	free(args);
	free(o.t);
	conf_free(conf);
	return rc;
}
