/* conf: loading, defaults, every error message (exact "FILE:LINE: key: message" lines),
 * schedules, secrets, and the generated documentation being current. Table-driven, got/want.
 * Configurations are written into a fresh temporary directory per case ("@D" in expected
 * messages), which always holds ok.secret (mode 0600) and ca.pem. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

#ifndef MON_SOURCE_DIR
#error "MON_SOURCE_DIR must be defined"
#endif
/* The fixtures live in tests/unit/data/conf. tests/CMakeLists.txt defines MON_TESTDATA_DIR as
 * tests/data (its own directory + "/data"), so build the path from MON_SOURCE_DIR instead. */
#define CONF_DATA MON_SOURCE_DIR "/tests/unit/data/conf"

/* ---- helpers ---- */

static char *xdup(const char *s)
{
	char *d = strdup(s);
	assert_non_null(d);
	return d;
}


/* Replaces every occurrence of from in s; returns owned. */
static char *subst(const char *s, const char *from, const char *to)
{
	size_t fl = strlen(from);
	char *out = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&out, &n);

	assert_non_null(fp);
	for (const char *p = s; *p;) {
		if (strncmp(p, from, fl) == 0) {
			fputs(to, fp);
			p += fl;
		} else {
			fputc(*p++, fp);
		}
	}
	fclose(fp);
	return out;
}


/* Writes dir/name (creating parent directories) with mode (0: 0644). */
static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	char *path = fmt("%s/%s", dir, name);
	for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(path, 0755) == -1 && errno != EEXIST)
			fail_msg("mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
	FILE *fp = fopen(path, "w");
	if (!fp)
		fail_msg("%s: %s", path, strerror(errno));
	fputs(text, fp);
	fclose(fp);
	assert_int_equal(chmod(path, mode ? mode : 0644), 0);
	free(path);
}


static char *capture(void (*fn)(FILE *))
{
	char *buf = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&buf, &n);
	assert_non_null(fp);
	fn(fp);
	fclose(fp);
	return buf;
}

static char *errors_text(const struct conf_errors *errs)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&buf, &n);
	assert_non_null(fp);
	conf_errors_print(errs, fp);
	fclose(fp);
	return buf;
}

/* A fresh temporary directory with ok.secret (0600) and ca.pem. Returns owned. */
static char *tmpdir_new(void)
{
	char tmpl[] = "/tmp/test_conf.XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	write_file(d, "ok.secret", "pw\n", 0600);
	write_file(d, "ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
	return xdup(d);
}

struct fixture {
	const char *name;
	const char *text;
	mode_t mode;
};

/* Loads dir/main after writing files; returns conf_load's result, errors as text in *got. */
static int load_in(const char *dir, const struct fixture *files, size_t n, const char *main,
		   struct mon_conf **conf, char **got)
{
	struct conf_errors errs;
	for (size_t i = 0; i < n && files[i].name; i++)
		write_file(dir, files[i].name, files[i].text, files[i].mode);
	char *path = fmt("%s/%s", dir, main);
	int rc = conf_load(path, conf, &errs);
	*got = errors_text(&errs);
	conf_errors_fini(&errs);
	free(path);
	return rc;
}

/* Loads one config text from a fresh directory; fails the test on any error. */
static struct mon_conf *load_ok(const char *text, char **dir_out)
{
	char *dir = tmpdir_new(), *got;
	struct mon_conf *conf = NULL;
	struct fixture f[] = { { "main.cfg", text, 0 } };
	int rc = load_in(dir, f, 1, "main.cfg", &conf, &got);
	if (rc != 0 || *got)
		fail_msg("load failed:\n got errors:\n%s want: none", got);
	free(got);
	*dir_out = dir;
	return conf;
}

/* ---- the complete configuration ---- */

static const char full_cfg[] =
	"state_dir = \"state\";\n"
	"rrd_dir = \"/srv/rrd\";\n"
	"rrdcached = \"unix:/run/rrdcached.sock\";\n"
	"vantage = \"fra1\";\n"
	"log: { target = \"syslog\"; facility = \"local3\"; };\n"
	"dns: { servers = [\"127.0.0.1:5353\", \"[::1]:53\", \"192.0.2.53\"]; timeout = \"2s\";\n"
	"       dnsbl = [\"zen.spamhaus.org\", \"bl.test\"]; probe_checks = false; checks_ttl = \"90s\"; };\n"
	"timeouts: { connect = \"10s\"; banner = \"1m\"; command = \"2m\"; data = \"90s\"; eod = \"5m\"; };\n"
	"retry: { schedule = [\"1m\", \"2m30s\"]; give_up = \"2h\"; };\n"
	"limits: { in_flight = 50; per_domain = 2; spacing = \"0s\"; daily_budget = 500; };\n"
	"readback: { timeout = \"45m\"; };\n"
	"alert: { command = \"/usr/local/bin/notify --all\"; latency = \"15m\"; failing_after = 5; };\n"
	"graph_every = \"10m\";\n"
	"senders = (\n"
	"  { name = \"direct\"; mode = \"mx\"; port = 2525; helo = \"probe.example.com\";\n"
	"    mail_from = \"canary@example.com\"; tls = \"none\"; source_ip = \"192.0.2.25\";\n"
	"    headers = [\"X-Campaign: direct\"]; },\n"
	"  { name = \"smarthost\"; mode = \"relay\"; host = \"smtp.example.com\"; tls = \"required\";\n"
	"    tls_verify = false; ca_file = \"ca.pem\"; username = \"canary\"; password_file = \"ok.secret\";\n"
	"    mail_from = \"canary+relay@example.com\"; helo = \"[192.0.2.25]\"; },\n"
	"  { name = \"env\"; mode = \"relay\"; host = \"192.0.2.1\"; port = 25; username = \"u\";\n"
	"    password_env = \"MC_TEST_PW\"; mail_from = \"a@b.example\"; helo = \"h.example\"; }\n"
	");\n"
	"seeds = (\n"
	"  { name = \"seed-a\"; address = \"seed1@seed-a.test\"; sender = \"direct\"; schedule = \"every 15m\";\n"
	"    imap: { url = \"imaps://imap.seed-a.test:993/\"; username = \"seed1@seed-a.test\";\n"
	"            password_file = \"ok.secret\"; ca_file = \"ca.pem\"; };\n"
	"    expect_folder = \"Junk\"; headers = [\"X-Seed: a\", \"X-Other: b\"]; },\n"
	"  { name = \"seed-b\"; address = \"b@seed-b.test\"; sender = \"smarthost\";\n"
	"    schedule = \"cron */5 0-6,22,23 * 1-12/2 1-5\";\n"
	"    imap: { url = \"imap://127.0.0.1:3143/\"; username = \"b\"; password_env = \"MC_SEED_B\"; }; },\n"
	"  { name = \"seed-c\"; address = \"c@seed-c.test\"; sender = \"env\"; }\n"
	");\n";

static void test_full(void **state)
{
	(void)state;
	char *dir, *p;
	struct mon_conf *c = load_ok(full_cfg, &dir);

	p = fmt("%s/main.cfg", dir);
	assert_string_equal(c->path, p);
	free(p);
	p = fmt("%s/state", dir); /* relative: against the main file's directory */
	assert_string_equal(c->state_dir, p);
	free(p);
	assert_string_equal(c->rrd_dir, "/srv/rrd");
	assert_string_equal(c->rrdcached, "unix:/run/rrdcached.sock");
	assert_string_equal(c->vantage, "fra1");
	assert_string_equal(c->log_target, "syslog");
	assert_string_equal(c->log_facility, "local3");
	assert_int_equal(c->n_dns_servers, 3);
	assert_string_equal(c->dns_servers[0], "127.0.0.1:5353");
	assert_string_equal(c->dns_servers[1], "[::1]:53");
	assert_string_equal(c->dns_servers[2], "192.0.2.53");
	assert_int_equal(c->dns_timeout_ms, 2000);
	assert_int_equal(c->n_dnsbl, 2);
	assert_string_equal(c->dnsbl[0], "zen.spamhaus.org");
	assert_string_equal(c->dnsbl[1], "bl.test");
	assert_false(c->dns_probe_checks);
	assert_int_equal(c->dns_checks_ttl_ms, 90000);
	assert_int_equal(c->timeouts.connect_ms, 10000);
	assert_int_equal(c->timeouts.banner_ms, 60000);
	assert_int_equal(c->timeouts.command_ms, 120000);
	assert_int_equal(c->timeouts.data_ms, 90000);
	assert_int_equal(c->timeouts.eod_ms, 300000);
	assert_int_equal(c->n_retry_schedule, 2);
	assert_int_equal(c->retry_schedule_ms[0], 60000);
	assert_int_equal(c->retry_schedule_ms[1], 150000);
	assert_int_equal(c->retry_give_up_ms, 7200000);
	assert_int_equal(c->limits_in_flight, 50);
	assert_int_equal(c->limits_per_domain, 2);
	assert_int_equal(c->limits_spacing_ms, 0);
	assert_int_equal(c->limits_daily_budget, 500);
	assert_int_equal(c->readback_timeout_ms, 2700000);
	assert_string_equal(c->alert_command, "/usr/local/bin/notify --all");
	assert_int_equal(c->alert_latency_ms, 900000);
	assert_int_equal(c->alert_failing_after, 5);
	assert_int_equal(c->graph_every_ms, 600000);

	assert_int_equal(c->n_senders, 3);
	const struct conf_sender *d = &c->senders[0], *r = &c->senders[1], *e = &c->senders[2];
	assert_string_equal(d->name, "direct");
	assert_int_equal(d->mode, CONF_MODE_MX);
	assert_null(d->host);
	assert_int_equal(d->port, 2525);
	assert_string_equal(d->helo, "probe.example.com");
	assert_string_equal(d->mail_from, "canary@example.com");
	assert_int_equal(d->tls, CONF_TLS_NONE);
	assert_null(d->ca_file);
	assert_true(d->tls_verify);
	assert_null(d->username);
	assert_null(d->password_file);
	assert_null(d->password_env);
	assert_string_equal(d->source_ip, "192.0.2.25");
	assert_int_equal(d->n_headers, 1);
	assert_string_equal(d->headers[0], "X-Campaign: direct");
	p = fmt("%s/main.cfg", dir);
	assert_string_equal(d->pos.file, p);
	free(p);
	assert_int_equal(d->pos.line, 15);

	assert_string_equal(r->name, "smarthost");
	assert_int_equal(r->mode, CONF_MODE_RELAY);
	assert_string_equal(r->host, "smtp.example.com");
	assert_int_equal(r->port, 587); /* relay default */
	assert_string_equal(r->helo, "[192.0.2.25]");
	assert_string_equal(r->mail_from, "canary+relay@example.com");
	assert_int_equal(r->tls, CONF_TLS_REQUIRED);
	p = fmt("%s/ca.pem", dir);
	assert_string_equal(r->ca_file, p);
	free(p);
	assert_false(r->tls_verify);
	assert_string_equal(r->username, "canary");
	p = fmt("%s/ok.secret", dir);
	assert_string_equal(r->password_file, p);
	free(p);
	assert_null(r->password_env);
	assert_null(r->source_ip);
	assert_int_equal(r->n_headers, 0);
	assert_null(r->headers);
	assert_int_equal(r->pos.line, 18);

	assert_string_equal(e->host, "192.0.2.1");
	assert_int_equal(e->port, 25);
	assert_int_equal(e->tls, CONF_TLS_OPPORTUNISTIC);
	assert_null(e->password_file);
	assert_string_equal(e->password_env, "MC_TEST_PW");

	assert_int_equal(c->n_seeds, 3);
	const struct conf_seed *a = &c->seeds[0], *b = &c->seeds[1], *s3 = &c->seeds[2];
	assert_string_equal(a->name, "seed-a");
	assert_string_equal(a->address, "seed1@seed-a.test");
	assert_string_equal(a->domain, "seed-a.test");
	assert_string_equal(a->sender_name, "direct");
	assert_ptr_equal(a->sender, d);
	assert_string_equal(a->schedule, "every 15m");
	assert_true(a->imap.set);
	assert_string_equal(a->imap.url, "imaps://imap.seed-a.test:993/");
	assert_string_equal(a->imap.username, "seed1@seed-a.test");
	p = fmt("%s/ok.secret", dir);
	assert_string_equal(a->imap.password_file, p);
	free(p);
	assert_null(a->imap.password_env);
	p = fmt("%s/ca.pem", dir);
	assert_string_equal(a->imap.ca_file, p);
	free(p);
	assert_int_equal(a->imap.pos.line, 26);
	assert_string_equal(a->expect_folder, "Junk");
	assert_int_equal(a->n_headers, 2);
	assert_string_equal(a->headers[0], "X-Seed: a");
	assert_string_equal(a->headers[1], "X-Other: b");
	assert_int_equal(a->pos.line, 25);

	assert_ptr_equal(b->sender, r);
	assert_string_equal(b->schedule, "cron */5 0-6,22,23 * 1-12/2 1-5");
	assert_true(b->imap.set);
	assert_string_equal(b->imap.url, "imap://127.0.0.1:3143/");
	assert_null(b->imap.password_file);
	assert_string_equal(b->imap.password_env, "MC_SEED_B");
	assert_null(b->imap.ca_file);

	assert_ptr_equal(s3->sender, e);
	assert_string_equal(s3->schedule, "hourly");
	assert_false(s3->imap.set);
	assert_ptr_equal(s3->imap.pos.file, s3->pos.file);
	assert_int_equal(s3->pos.line, 32);
	assert_null(s3->imap.url);
	assert_string_equal(s3->expect_folder, "INBOX");
	assert_int_equal(s3->n_headers, 0);

	assert_ptr_equal(conf_seed_find(c, "seed-b"), b);
	assert_null(conf_seed_find(c, "seed-x"));

	conf_free(c);
	rm_rf(dir);
	free(dir);
}

/* An empty file is a valid configuration: every default. */
static void test_defaults(void **state)
{
	(void)state;
	char *dir;
	struct mon_conf *c = load_ok("# nothing\n", &dir);

	assert_string_equal(c->state_dir, "/var/lib/mailcanary");
	assert_string_equal(c->rrd_dir, "/var/lib/mailcanary/rrd");
	assert_null(c->rrdcached);
	assert_null(c->vantage);
	assert_string_equal(c->log_target, "stderr");
	assert_string_equal(c->log_facility, "mail");
	assert_int_equal(c->n_dns_servers, 0);
	assert_null(c->dns_servers);
	assert_int_equal(c->dns_timeout_ms, 5000);
	assert_int_equal(c->n_dnsbl, 0);
	assert_true(c->dns_probe_checks);
	assert_int_equal(c->dns_checks_ttl_ms, 600000);
	assert_int_equal(c->timeouts.connect_ms, 30000);
	assert_int_equal(c->timeouts.banner_ms, 300000);
	assert_int_equal(c->timeouts.command_ms, 300000);
	assert_int_equal(c->timeouts.data_ms, 120000);
	assert_int_equal(c->timeouts.eod_ms, 600000);
	assert_int_equal(c->n_retry_schedule, 4);
	assert_int_equal(c->retry_schedule_ms[0], 300000);
	assert_int_equal(c->retry_schedule_ms[1], 900000);
	assert_int_equal(c->retry_schedule_ms[2], 1800000);
	assert_int_equal(c->retry_schedule_ms[3], 3600000);
	assert_int_equal(c->retry_give_up_ms, 4 * 3600000);
	assert_int_equal(c->limits_in_flight, 100);
	assert_int_equal(c->limits_per_domain, 1);
	assert_int_equal(c->limits_spacing_ms, 10000);
	assert_int_equal(c->limits_daily_budget, 0);
	assert_int_equal(c->readback_timeout_ms, 1800000);
	assert_null(c->alert_command);
	assert_int_equal(c->alert_latency_ms, 600000);
	assert_int_equal(c->alert_failing_after, 3);
	assert_int_equal(c->graph_every_ms, 300000);
	assert_int_equal(c->n_senders, 0);
	assert_null(c->senders);
	assert_int_equal(c->n_seeds, 0);
	assert_null(c->seeds);
	conf_free(c);
	rm_rf(dir);
	free(dir);
}

/* Defaults inside senders and seeds: port by mode, helo from gethostname(), tls, schedule. */
static void test_element_defaults(void **state)
{
	(void)state;
	char *dir, host[256];
	struct mon_conf *c = load_ok(
		"state_dir = \"/srv/mc\";\n"
		"senders = ( { name = \"d\"; mail_from = \"x@example.com\"; },\n"
		"            { name = \"r\"; mode = \"relay\"; host = \"smtp.example.com\";\n"
		"              mail_from = \"x@example.com\"; } );\n"
		"seeds = ( { name = \"s\"; address = \"s@seed.test\"; sender = \"r\"; } );\n", &dir);

	assert_int_equal(gethostname(host, sizeof host), 0);
	assert_string_equal(c->rrd_dir, "/srv/mc/rrd");
	assert_int_equal(c->senders[0].mode, CONF_MODE_MX);
	assert_int_equal(c->senders[0].port, 25);
	assert_string_equal(c->senders[0].helo, host);
	assert_int_equal(c->senders[0].tls, CONF_TLS_OPPORTUNISTIC);
	assert_true(c->senders[0].tls_verify);
	assert_int_equal(c->senders[1].port, 587);
	assert_string_equal(c->senders[1].helo, host);
	assert_string_equal(c->seeds[0].schedule, "hourly");
	assert_string_equal(c->seeds[0].expect_folder, "INBOX");
	assert_ptr_equal(c->seeds[0].sender, &c->senders[1]);
	assert_string_equal(c->seeds[0].domain, "seed.test");
	conf_free(c);
	rm_rf(dir);
	free(dir);
}

/* ---- broken configurations: exact error lines ---- */

#define SND "senders = ( { name = \"direct\"; mail_from = \"canary@example.com\"; helo = \"probe.example.com\"; } );\n"
#define SEED(extra) "seeds = ( { name = \"s1\"; address = \"s1@seed.test\"; sender = \"direct\"; " extra " } );\n"
#define SENDER(extra) "senders = ( { name = \"direct\"; mail_from = \"canary@example.com\"; helo = \"probe.example.com\"; " extra " } );\n"

struct bad_case {
	const char *name;
	struct fixture files[4]; /* files[0] is main.cfg unless main is set */
	const char *main;        /* NULL: files[0].name */
	const char *want;        /* conf_errors_print output, "@D" for the directory */
};

static const struct bad_case bad_cases[] = {
	{ "syntax error",
	  { { "main.cfg", "state_dir = \"/x\";\nvantage = ;\n", 0 } }, NULL,
	  "@D/main.cfg:2: syntax error\n" },
	{ "syntax error in an included file",
	  { { "main.cfg", "vantage = \"a\";\n@include \"inc/broken.cfg\"\n", 0 },
	    { "inc/broken.cfg", "rrdcached = \"/run/r.sock\";\n\nstate_dir = \"/x\"\n  = 3;\n", 0 } }, NULL,
	  "@D/inc/broken.cfg:4: syntax error\n" },
	{ "missing include",
	  { { "main.cfg", "vantage = \"a\";\n@include \"nope.cfg\"\n", 0 } }, NULL,
	  "@D/main.cfg:2: cannot open include file \"nope.cfg\" (@D/nope.cfg): No such file or "
	  "directory\n" },
	{ "nested include written relative to the main file's directory is not found",
	  { { "main.cfg", "@include \"sub/a.cfg\"\n", 0 },
	    { "sub/a.cfg", "vantage = \"a\";\n@include \"sub/b.cfg\"\n", 0 },
	    { "sub/b.cfg", "state_dir = \"/x\";\n", 0 } }, NULL,
	  "@D/sub/a.cfg:2: cannot open include file \"sub/b.cfg\" (@D/sub/sub/b.cfg): No such file or "
	  "directory\n" },
	{ "nested include relative to the including file, error inside it",
	  { { "main.cfg", "@include \"sub/a.cfg\"\n", 0 },
	    { "sub/a.cfg", "vantage = \"a\";\n@include \"b.cfg\"\n", 0 },
	    { "sub/b.cfg", "\nlimits: { in_flight = 0; };\n", 0 } }, NULL,
	  "@D/sub/b.cfg:2: limits.in_flight: 0 is out of range 1 to 100000\n" },
	{ "absolute include, missing",
	  { { "main.cfg", "\n@include \"/nonexistent/mailcanary/extra.cfg\"\n", 0 } }, NULL,
	  "@D/main.cfg:2: cannot open include file \"/nonexistent/mailcanary/extra.cfg\" "
	  "(/nonexistent/mailcanary/extra.cfg): No such file or directory\n" },
	{ "absolute include is read, and its includes are relative to it",
	  { { "main.cfg", "\n@include \"@D/abs/x.cfg\"\n", 0 },
	    { "abs/x.cfg", "@include \"y.cfg\"\n", 0 },
	    { "abs/y.cfg", "limits: { in_flight = 0; };\n", 0 } }, NULL,
	  "@D/abs/y.cfg:1: limits.in_flight: 0 is out of range 1 to 100000\n" },
	{ "include cycle",
	  { { "main.cfg", "@include \"a.cfg\"\n", 0 },
	    { "a.cfg", "@include \"main.cfg\"\n", 0 } }, NULL,
	  "@D/main.cfg:1: include files nested deeper than 10 (an @include cycle?)\n" },
	{ "duplicate setting (libconfig)",
	  { { "main.cfg", "vantage = \"a\";\nvantage = \"b\";\n", 0 } }, NULL,
	  "@D/main.cfg:2: duplicate setting name\n" },
	{ "missing main file", { { NULL, NULL, 0 } }, "nope.cfg",
	  "@D/nope.cfg: cannot open: No such file or directory\n" },
	{ "main file is a directory", { { "etc/x", "", 0 } }, "etc",
	  "@D/etc: cannot open: Is a directory\n" },
	{ "unknown top-level key with a suggestion",
	  { { "main.cfg", "state_dir = \"/x\";\nstat_dir = \"/y\";\n", 0 } }, NULL,
	  "@D/main.cfg:2: stat_dir: unknown setting (did you mean \"state_dir\"?)\n" },
	{ "unknown top-level key",
	  { { "main.cfg", "\nfrobnicate = 1;\n", 0 } }, NULL,
	  "@D/main.cfg:2: frobnicate: unknown setting\n" },
	{ "unknown key in a group",
	  { { "main.cfg", "timeouts: {\n  conect = \"5s\";\n  quit = \"1s\";\n};\n", 0 } }, NULL,
	  "@D/main.cfg:2: timeouts.conect: unknown setting (did you mean \"connect\"?)\n"
	  "@D/main.cfg:3: timeouts.quit: unknown setting\n" },
	{ "unknown key in a seed",
	  { { "main.cfg", SND SEED("adress = \"x@y.test\";"), 0 } }, NULL,
	  "@D/main.cfg:2: seeds.[0].adress: unknown setting (did you mean \"address\"?)\n" },
	{ "unknown key in imap",
	  { { "main.cfg", SND "seeds = ( { name = \"s1\"; address = \"s1@seed.test\"; sender = \"direct\";\n"
			  "  imap: { url = \"imaps://imap.seed.test/\"; username = \"u\"; password_file = \"ok.secret\";\n"
			  "          port = 993; }; } );\n", 0 } }, NULL,
	  "@D/main.cfg:4: seeds.[0].imap.port: unknown setting\n" },
	{ "float for int",
	  { { "main.cfg", "limits: { in_flight = 10.0; };\n", 0 } }, NULL,
	  "@D/main.cfg:1: limits.in_flight: expected an integer, got a float\n" },
	{ "string for int",
	  { { "main.cfg", SENDER("port = \"25\";"), 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].port: expected an integer, got a string\n" },
	{ "int for string",
	  { { "main.cfg", "state_dir = 5;\n", 0 } }, NULL,
	  "@D/main.cfg:1: state_dir: expected a string in double quotes, got an integer\n" },
	{ "bool for int, int for bool",
	  { { "main.cfg", "alert: { failing_after = true; };\n" SENDER("tls_verify = 1;"), 0 } }, NULL,
	  "@D/main.cfg:1: alert.failing_after: expected an integer, got a boolean\n"
	  "@D/main.cfg:2: senders.[0].tls_verify: expected true or false, got an integer\n" },
	{ "out-of-range port",
	  { { "main.cfg", SENDER("port = 70000;"), 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].port: 70000 is out of range 1 to 65535\n" },
	{ "out-of-range in_flight",
	  { { "main.cfg", "limits: { in_flight = 0; };\n", 0 } }, NULL,
	  "@D/main.cfg:1: limits.in_flight: 0 is out of range 1 to 100000\n" },
	{ "integer beyond 32 bits (libconfig 1.5 would truncate it to 1)",
	  { { "main.cfg", "limits: { per_domain = 2;\n  in_flight = 4294967297; };\n", 0 } }, NULL,
	  "@D/main.cfg:2: limits.in_flight: 4294967297 is out of range 1 to 100000\n" },
	{ "out-of-range duration",
	  { { "main.cfg", "timeouts: { eod = \"2h\"; };\n", 0 } }, NULL,
	  "@D/main.cfg:1: timeouts.eod: \"2h\" is out of range 100ms to 1h\n" },
	{ "bad duration unit",
	  { { "main.cfg", "timeouts: { banner = \"5x\"; };\n", 0 } }, NULL,
	  "@D/main.cfg:1: timeouts.banner: \"5x\" is not a duration: unknown unit (use ms, s, m, h, d "
	  "or w)\n" },
	{ "duration without unit",
	  { { "main.cfg", "timeouts: { banner = \"30\";\n  data = 30; };\n", 0 } }, NULL,
	  "@D/main.cfg:1: timeouts.banner: \"30\" is not a duration: missing unit (use ms, s, m, h, d "
	  "or w)\n"
	  "@D/main.cfg:2: timeouts.data: expected a duration in double quotes such as \"30s\", got an "
	  "integer\n" },
	{ "mixed array (libconfig)",
	  { { "main.cfg", "retry: { schedule = [\"5m\", 10]; };\n", 0 } }, NULL,
	  "@D/main.cfg:1: mismatched element type in array\n" },
	{ "bad duration in a list",
	  { { "main.cfg", "retry: { schedule = (\"5m\", 10, \"1x\"); };\n", 0 } }, NULL,
	  "@D/main.cfg:1: retry.schedule.[1]: expected a duration in double quotes such as \"30s\", got "
	  "an integer\n"
	  "@D/main.cfg:1: retry.schedule.[2]: \"1x\" is not a duration: unknown unit (use ms, s, m, h, d "
	  "or w)\n" },
	{ "string for a list",
	  { { "main.cfg", "dns: { servers = \"127.0.0.1\"; };\n", 0 } }, NULL,
	  "@D/main.cfg:1: dns.servers: expected a list of strings such as [\"a\", \"b\"], got a "
	  "string\n" },
	{ "scalar for a group, scalar in the seeds list",
	  { { "main.cfg", "timeouts = 5;\nseeds = ( \"s1\" );\n", 0 } }, NULL,
	  "@D/main.cfg:1: timeouts: expected a group { ... }, got an integer\n"
	  "@D/main.cfg:2: seeds.[0]: expected a group { ... }, got a string\n" },
	{ "bad tls value",
	  { { "main.cfg", SENDER("tls = \"tls1.3\";"), 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].tls: \"tls1.3\" is not one of \"none\", \"opportunistic\" or "
	  "\"required\"\n" },
	{ "bad mode",
	  { { "main.cfg", SENDER("mode = \"smtp\";"), 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].mode: \"smtp\" is not one of \"mx\" or \"relay\"\n" },
	{ "bad log target",
	  { { "main.cfg", "log: { target = \"file\"; };\n", 0 } }, NULL,
	  "@D/main.cfg:1: log.target: \"file\" is not one of \"stderr\" or \"syslog\"\n" },
	{ "relay without host",
	  { { "main.cfg", "senders = (\n  { name = \"r\"; mode = \"relay\";\n    mail_from = \"a@b.example\"; } );\n", 0 } }, NULL,
	  "@D/main.cfg:2: senders.[0].host: missing: required with mode = \"relay\"\n" },
	{ "password over a plaintext session",
	  { { "main.cfg", "senders = (\n  { name = \"r\"; mode = \"relay\"; host = \"192.0.2.1\";\n"
			  "    tls = \"none\"; username = \"u\"; password_env = \"MC_TEST_PW\";\n"
			  "    mail_from = \"a@b.example\"; } );\n", 0 } }, NULL,
	  "@D/main.cfg:3: senders.[0].tls: \"none\" with username would send the password in clear text: "
	  "use tls = \"required\"\n" },
	{ "host in mx mode",
	  { { "main.cfg", SENDER("host = \"smtp.example.com\";"), 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].host: only allowed with mode = \"relay\" (mode \"mx\" sends to the "
	  "MX hosts of each seed's domain)\n" },
	{ "duplicate seed",
	  { { "main.cfg", SND "seeds = (\n { name = \"s1\"; address = \"a@seed.test\"; sender = \"direct\"; },\n"
			  " { name = \"s1\"; address = \"b@seed.test\"; sender = \"direct\"; } );\n", 0 } }, NULL,
	  "@D/main.cfg:4: seeds.[1].name: duplicate seed name \"s1\" (first used at @D/main.cfg:3)\n" },
	{ "duplicate sender",
	  { { "main.cfg", "senders = (\n { name = \"a\"; mail_from = \"a@b.example\"; },\n"
			  " { name = \"a\"; mail_from = \"c@d.example\"; } );\n", 0 } }, NULL,
	  "@D/main.cfg:3: senders.[1].name: duplicate sender name \"a\" (first used at "
	  "@D/main.cfg:2)\n" },
	{ "unknown sender",
	  { { "main.cfg", SND "seeds = ( { name = \"s1\"; address = \"s1@seed.test\"; sender = \"smarthost\"; } );\n", 0 } }, NULL,
	  "@D/main.cfg:2: seeds.[0].sender: no sender is named \"smarthost\" (senders: direct)\n" },
	{ "unknown sender, no senders",
	  { { "main.cfg", "seeds = ( { name = \"s1\"; address = \"s1@seed.test\"; sender = \"direct\"; } );\n", 0 } }, NULL,
	  "@D/main.cfg:1: seeds.[0].sender: no sender is named \"direct\" (no senders are defined)\n" },
	{ "missing required keys in a seed",
	  { { "main.cfg", SND "seeds = (\n  { name = \"s1\"; } );\n", 0 } }, NULL,
	  "@D/main.cfg:3: seeds.[0].address: missing required setting\n"
	  "@D/main.cfg:3: seeds.[0].sender: missing required setting\n" },
	{ "bad address",
	  { { "main.cfg", SND "seeds = ( { name = \"s1\"; address = \"seed1\"; sender = \"direct\"; } );\n", 0 } }, NULL,
	  "@D/main.cfg:2: seeds.[0].address: \"seed1\" is not an address of the form local@domain\n" },
	{ "bad mail_from domain",
	  { { "main.cfg", "senders = ( { name = \"d\"; mail_from = \"canary@localhost\"; } );\n", 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].mail_from: \"canary@localhost\" does not have a plausible mail "
	  "domain after the '@'\n" },
	{ "bad local part",
	  { { "main.cfg", "senders = ( { name = \"d\"; mail_from = \"a..b@example.com\"; } );\n", 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].mail_from: \"a..b@example.com\" has a misplaced '.' in the local "
	  "part\n" },
	{ "bad helo",
	  { { "main.cfg", "senders = ( { name = \"d\"; mail_from = \"a@b.example\"; helo = \"probe example\"; } );\n", 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].helo: \"probe example\" is not a host name or an address literal "
	  "such as \"[192.0.2.1]\"\n" },
	{ "bad helo address literal",
	  { { "main.cfg", "senders = ( { name = \"d\"; mail_from = \"a@b.example\"; helo = \"[192.0.2.300]\"; } );\n", 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].helo: \"[192.0.2.300]\" is not an address literal such as "
	  "\"[192.0.2.1]\" or \"[IPv6:2001:db8::1]\"\n" },
	{ "bad name, bad source_ip",
	  { { "main.cfg", "senders = ( { name = \"../x\"; mail_from = \"a@b.example\";\n"
			  "  source_ip = \"192.0.2\"; } );\n", 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].name: \"../x\" is not a valid name (1 to 64 letters, digits, '.', "
	  "'_' or '-', starting with a letter or digit)\n"
	  "@D/main.cfg:2: senders.[0].source_ip: \"192.0.2\" is not an IPv4 or IPv6 address\n" },
	{ "password_file readable by others",
	  { { "main.cfg", SENDER("username = \"u\"; password_file = \"pw.secret\";"), 0 },
	    { "pw.secret", "pw\n", 0644 } }, NULL,
	  "@D/main.cfg:1: senders.[0].password_file: \"@D/pw.secret\" is accessible by group or others "
	  "(mode 0644): make it 0600 or 0400\n" },
	{ "password_file writable by group",
	  { { "main.cfg", SND "seeds = ( { name = \"s1\"; address = \"s1@seed.test\"; sender = \"direct\";\n"
			  "  imap: { url = \"imaps://imap.seed.test/\"; username = \"u\";\n"
			  "          password_file = \"@D/pw.secret\"; }; } );\n", 0 },
	    { "pw.secret", "pw\n", 0620 } }, NULL,
	  "@D/main.cfg:4: seeds.[0].imap.password_file: \"@D/pw.secret\" is accessible by group "
	  "or others (mode 0620): make it 0600 or 0400\n" },
	{ "password_file missing",
	  { { "main.cfg", SENDER("username = \"u\"; password_file = \"nope.secret\";"), 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].password_file: \"@D/nope.secret\" cannot be used: No such file or "
	  "directory\n" },
	{ "password_file is a directory",
	  { { "main.cfg", SENDER("username = \"u\"; password_file = \"d\";"), 0 },
	    { "d/x", "", 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].password_file: \"@D/d\" is not a regular file\n" },
	{ "username without password",
	  { { "main.cfg", SENDER("username = \"u\";"), 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].username: needs password_file or password_env\n" },
	{ "password without username",
	  { { "main.cfg", SENDER("password_env = \"PW\";"), 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].password_env: needs username\n" },
	{ "both password_file and password_env",
	  { { "main.cfg", SENDER("username = \"u\"; password_file = \"ok.secret\";\n  password_env = \"PW\";"), 0 } }, NULL,
	  "@D/main.cfg:2: senders.[0].password_env: set either password_file or password_env, not "
	  "both\n" },
	{ "imap without password, bad env name",
	  { { "main.cfg", SND "seeds = ( { name = \"s1\"; address = \"s1@seed.test\"; sender = \"direct\";\n"
			  "  imap: { url = \"imaps://imap.seed.test/\"; username = \"u\"; }; },\n"
			  "  { name = \"s2\"; address = \"s2@seed.test\"; sender = \"direct\";\n"
			  "  imap: { url = \"imaps://imap.seed.test/\"; username = \"u\"; password_env = \"2PW\"; }; } );\n", 0 } }, NULL,
	  "@D/main.cfg:3: seeds.[0].imap.username: needs password_file or password_env\n"
	  "@D/main.cfg:5: seeds.[1].imap.password_env: \"2PW\" is not an environment variable name "
	  "(letters, digits and '_', not starting with a digit)\n" },
	{ "imap cleanup and authserv_id",
	  { { "main.cfg", SND "seeds = ( { name = \"s1\"; address = \"s1@seed.test\"; sender = \"direct\";\n"
			  "  imap: { url = \"imaps://imap.seed.test/\"; username = \"u\"; password_env = \"PW\";\n"
			  "          cleanup = \"shred\"; authserv_id = \"\"; }; },\n"
			  "  { name = \"s2\"; address = \"s2@seed.test\"; sender = \"direct\";\n"
			  "  imap: { url = \"imaps://imap.seed.test/\"; username = \"u\"; password_env = \"PW\"; cleanup = \"move:\"; }; } );\n", 0 } }, NULL,
	  "@D/main.cfg:4: seeds.[0].imap.cleanup: \"shred\" is not \"delete\", \"keep\" or \"move:FOLDER\"\n"
	  "@D/main.cfg:4: seeds.[0].imap.authserv_id: must not be empty\n"
	  "@D/main.cfg:6: seeds.[1].imap.cleanup: \"move:\" names no folder (e.g. \"move:Trash\")\n" },
	{ "bounce_imap: missing password, bad url, unknown key, bad cleanup",
	  { { "main.cfg", "senders = ( { name = \"relay\"; mode = \"relay\"; host = \"smtp.example.com\";\n"
			  "  mail_from = \"canary@example.com\"; helo = \"h.example\";\n"
			  "  bounce_imap: { url = \"http://x/\"; username = \"canary\"; cleanup = \"shred\";\n"
			  "                 folder = \"INBOX\"; }; } );\n"
			  "seeds = ( { name = \"s1\"; address = \"s1@seed.test\"; sender = \"relay\"; } );\n", 0 } },
	  NULL,
	  "@D/main.cfg:3: senders.[0].bounce_imap.url: \"http://x/\" must start with imap:// or imaps://\n"
	  "@D/main.cfg:3: senders.[0].bounce_imap.cleanup: \"shred\" is not \"delete\", \"keep\" or \"move:FOLDER\"\n"
	  "@D/main.cfg:3: senders.[0].bounce_imap.username: needs password_file or password_env\n"
	  "@D/main.cfg:4: senders.[0].bounce_imap.folder: unknown setting\n" },
	{ "imap missing url and username",
	  { { "main.cfg", SND "seeds = ( { name = \"s1\"; address = \"s1@seed.test\"; sender = \"direct\";\n"
			  "  imap: { }; } );\n", 0 } }, NULL,
	  "@D/main.cfg:3: seeds.[0].imap.url: missing required setting\n"
	  "@D/main.cfg:3: seeds.[0].imap.username: missing required setting\n"
	  "@D/main.cfg:3: seeds.[0].imap.password_file: missing: set password_file or password_env\n" },
	{ "bad imap url",
	  { { "main.cfg", SND SEED("imap: { url = \"https://imap.seed.test/\"; username = \"u\"; password_env = \"PW\"; };"), 0 } }, NULL,
	  "@D/main.cfg:2: seeds.[0].imap.url: \"https://imap.seed.test/\" must start with imap:// or "
	  "imaps://\n" },
	{ "imap url with credentials, bad port",
	  { { "main.cfg", SND SEED("imap: { url = \"imaps://u:pw@imap.seed.test/\"; username = \"u\"; password_env = \"PW\"; };")
			  "vantage = \"x\";\n", 0 } }, NULL,
	  "@D/main.cfg:2: seeds.[0].imap.url: \"imaps://u:pw@imap.seed.test/\" must not hold a user name "
	  "or password: use username and password_file or password_env\n" },
	{ "ca_file missing",
	  { { "main.cfg", SENDER("ca_file = \"/nonexistent/ca.pem\";"), 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].ca_file: \"/nonexistent/ca.pem\" cannot be used: No such file or "
	  "directory\n" },
	{ "schedule every without duration",
	  { { "main.cfg", SND SEED("schedule = \"every\";"), 0 } }, NULL,
	  "@D/main.cfg:2: seeds.[0].schedule: \"every\" needs a duration, e.g. \"every 15m\"\n" },
	{ "schedule every 0s",
	  { { "main.cfg", SND SEED("schedule = \"every 0s\";"), 0 } }, NULL,
	  "@D/main.cfg:2: seeds.[0].schedule: \"every 0s\" needs an interval greater than zero\n" },
	{ "schedule cron minute out of range",
	  { { "main.cfg", SND SEED("schedule = \"cron 61 * * * *\";"), 0 } }, NULL,
	  "@D/main.cfg:2: seeds.[0].schedule: \"cron 61 * * * *\" has minute 61 out of range 0-59\n" },
	{ "schedule cron with 4 fields",
	  { { "main.cfg", SND SEED("schedule = \"cron * * * *\";"), 0 } }, NULL,
	  "@D/main.cfg:2: seeds.[0].schedule: \"cron * * * *\" needs 5 cron fields (minute hour day month "
	  "weekday), not 4\n" },
	{ "schedule monthly",
	  { { "main.cfg", SND SEED("schedule = \"monthly\";"), 0 } }, NULL,
	  "@D/main.cfg:2: seeds.[0].schedule: \"monthly\" is not a schedule (use \"hourly\", \"daily\", "
	  "\"weekly\", \"every DURATION\" or \"cron MIN HOUR DAY MONTH WEEKDAY\")\n" },
	{ "bad header line",
	  { { "main.cfg", SND SEED("headers = [\"X-Campaign canary\"];"), 0 } }, NULL,
	  "@D/main.cfg:2: seeds.[0].headers.[0]: \"X-Campaign canary\" is not a header line of the form "
	  "\"Name: value\"\n" },
	{ "bad header field name",
	  { { "main.cfg", SENDER("headers = [\"X Campaign: canary\"];"), 0 } }, NULL,
	  "@D/main.cfg:1: senders.[0].headers.[0]: \"X Campaign: canary\" has an invalid header field "
	  "name (printable ASCII, no spaces, before the ':')\n" },
	{ "header injection with CR LF",
	  { { "main.cfg", SND SEED("headers = [\"X-Ok: 1\", \"X-A: b\\r\\nBcc: victim@example.com\"];"), 0 } }, NULL,
	  "@D/main.cfg:2: seeds.[0].headers.[1]: \"X-A: b\\r\\nBcc: victim@example.com\" contains CR or "
	  "LF: one header line per entry, no folding\n" },
	{ "header the probe sets itself",
	  { { "main.cfg", SND SEED("headers = [\"to: someone@example.com\"];"), 0 } }, NULL,
	  "@D/main.cfg:2: seeds.[0].headers.[0]: \"to: someone@example.com\" sets To, which the probe "
	  "sets itself\n" },
	{ "bad dns servers and dnsbl zone",
	  { { "main.cfg", "dns: {\n  servers = [\"1.2.3.4:99999\", \"::1\", \"[::1]:53\", \"ns.example\"];\n"
			  "  dnsbl = [\"zen\"];\n};\n", 0 } }, NULL,
	  "@D/main.cfg:2: dns.servers.[0]: \"1.2.3.4:99999\" is not a name server address: use \"ip\", "
	  "\"ip:port\" or \"[ipv6]:port\" (port 1 to 65535)\n"
	  "@D/main.cfg:2: dns.servers.[3]: \"ns.example\" is not a name server address: use \"ip\", "
	  "\"ip:port\" or \"[ipv6]:port\" (port 1 to 65535)\n"
	  "@D/main.cfg:3: dns.dnsbl.[0]: \"zen\" is not a DNS zone name such as \"zen.spamhaus.org\"\n" },
	{ "bad vantage, rrdcached, empty folder",
	  { { "main.cfg", "vantage = \"fra 1\";\nrrdcached = \"tcp://x\";\n" SND SEED("expect_folder = \"\";"), 0 } }, NULL,
	  "@D/main.cfg:1: vantage: \"fra 1\" is not a valid name (1 to 64 letters, digits, '.', '_' or "
	  "'-', starting with a letter or digit)\n"
	  "@D/main.cfg:2: rrdcached: \"tcp://x\" is not \"unix:/path\", \"/path\" or \"host:port\"\n"
	  "@D/main.cfg:4: seeds.[0].expect_folder: must not be empty\n" },
	{ "three errors reported together, in file order",
	  { { "main.cfg", "graph_evry = \"5m\";\n" SND
			  "seeds = ( { name = \"s1\"; address = \"s1@seed.test\"; sender = \"relay\"; } );\n"
			  "limits: { per_domain = -1; };\n", 0 } }, NULL,
	  "@D/main.cfg:1: graph_evry: unknown setting (did you mean \"graph_every\"?)\n"
	  "@D/main.cfg:3: seeds.[0].sender: no sender is named \"relay\" (senders: direct)\n"
	  "@D/main.cfg:4: limits.per_domain: -1 is out of range 0 to 10000\n" },
	{ "errors in an included file keep its name",
	  { { "main.cfg", "vantage = \"a\";\n@include \"conf.d/seeds.cfg\"\nlimits: { in_flight = 0; };\n", 0 },
	    { "conf.d/seeds.cfg", SND "seeds = ( { name = \"s1\"; address = \"bad\"; sender = \"direct\"; } );\n", 0 } }, NULL,
	  "@D/main.cfg:3: limits.in_flight: 0 is out of range 1 to 100000\n"
	  "@D/conf.d/seeds.cfg:2: seeds.[0].address: \"bad\" is not an address of the form local@domain\n" },
};

static void run_bad_case(void **state)
{
	const struct bad_case *bc = *state;
	char *dir = tmpdir_new(), *got, *want;
	struct fixture files[4];
	struct mon_conf *conf = (struct mon_conf *)&files; /* must be reset to NULL */
	size_t n = 0;

	for (; n < 4 && bc->files[n].name; n++) {
		files[n] = bc->files[n];
		files[n].text = subst(bc->files[n].text, "@D", dir);
	}
	int rc = load_in(dir, files, n, bc->main ? bc->main : bc->files[0].name, &conf, &got);
	want = subst(bc->want, "@D", dir);
	if (strcmp(got, want) != 0)
		fail_msg("%s:\n got:\n%s want:\n%s", bc->name, got, want);
	assert_int_equal(rc, -1);
	assert_null(conf);
	for (size_t i = 0; i < n; i++)
		free((char *)files[i].text);
	free(got);
	free(want);
	rm_rf(dir);
	free(dir);
}

/* ---- includes ---- */

/* main.cfg includes parts/senders.cfg, which includes parts/more/seeds.cfg (written relative
 * to parts/, the including file's directory): loads from any working directory. */
static void test_include_tree(void **state)
{
	(void)state;
	static const char *const cwds[] = { "/", CONF_DATA };
	static const char *const paths[] = { CONF_DATA "/include/main.cfg", "include/main.cfg" };
	char old[PATH_MAX];

	assert_non_null(getcwd(old, sizeof old));
	for (size_t i = 0; i < 2; i++) {
		struct mon_conf *c;
		struct conf_errors errs;
		assert_int_equal(chdir(cwds[i]), 0);
		int rc = conf_load(paths[i], &c, &errs);
		char *got = errors_text(&errs);
		conf_errors_fini(&errs);
		assert_int_equal(chdir(old), 0);
		if (rc != 0)
			fail_msg("cwd %s, path %s:\n got:\n%s want: no errors", cwds[i], paths[i], got);
		free(got);
		assert_int_equal(c->n_senders, 1);
		assert_int_equal(c->n_seeds, 1);
		assert_ptr_equal(c->seeds[0].sender, &c->senders[0]);
		/* positions name the included files as the user can open them */
		char *want = fmt("%s", i == 0 ? CONF_DATA "/include/parts/more/seeds.cfg"
					      : "include/parts/more/seeds.cfg");
		assert_string_equal(c->seeds[0].pos.file, want);
		free(want);
		assert_int_equal(c->seeds[0].pos.line, 2);
		want = fmt("%s", i == 0 ? CONF_DATA "/include/parts/senders.cfg"
					: "include/parts/senders.cfg");
		assert_string_equal(c->senders[0].pos.file, want);
		free(want);
		/* relative state_dir: against the main file's directory, made absolute */
		assert_string_equal(c->state_dir, CONF_DATA "/include/state");
		conf_free(c);
	}
}

/* A main path without a directory: includes are relative to the working directory. */
static void test_include_bare_path(void **state)
{
	(void)state;
	char old[PATH_MAX], *dir = tmpdir_new(), *got;
	struct mon_conf *c;
	struct conf_errors errs;

	write_file(dir, "main.cfg", "@include \"inc.cfg\"\n", 0);
	write_file(dir, "inc.cfg", "vantage = \"x\";\nlimits: { in_flight = 0; };\n", 0);
	assert_non_null(getcwd(old, sizeof old));
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(conf_load("main.cfg", &c, &errs), -1);
	got = errors_text(&errs);
	assert_string_equal(got, "inc.cfg:2: limits.in_flight: 0 is out of range 1 to 100000\n");
	conf_errors_fini(&errs);
	free(got);
	assert_int_equal(chdir(old), 0);
	rm_rf(dir);
	free(dir);
}

/* ---- schedules ---- */

static void test_schedule_check(void **state)
{
	(void)state;
	static const char *const good[] = {
		"hourly", "daily", "weekly", "every 15m", "every 1h30m", "every  90s", "every 1s",
		"cron 0 * * * *", "cron */5 * * * *", "cron 0 6 * * 1-5", "cron 0,30 8-18/2 1,15 1-12/3 0,7",
		"cron 59 23 31 12 7", "cron\t0 0 1 1 0",
	};
	static const struct {
		const char *in, *want;
	} bad[] = {
		{ "", "empty schedule (use \"hourly\", \"daily\", \"weekly\", \"every DURATION\" or \"cron MIN "
		      "HOUR DAY MONTH WEEKDAY\")" },
		{ "monthly", "\"monthly\" is not a schedule (use \"hourly\", \"daily\", \"weekly\", \"every "
			     "DURATION\" or \"cron MIN HOUR DAY MONTH WEEKDAY\")" },
		{ "Hourly", "\"Hourly\" is not a schedule (use \"hourly\", \"daily\", \"weekly\", \"every "
			    "DURATION\" or \"cron MIN HOUR DAY MONTH WEEKDAY\")" },
		{ "everyday", "\"everyday\" is not a schedule (use \"hourly\", \"daily\", \"weekly\", \"every "
			      "DURATION\" or \"cron MIN HOUR DAY MONTH WEEKDAY\")" },
		{ "every", "\"every\" needs a duration, e.g. \"every 15m\"" },
		{ "every ", "\"every \" needs a duration, e.g. \"every 15m\"" },
		{ "every 0s", "\"every 0s\" needs an interval greater than zero" },
		{ "every 1ms", "\"every 1ms\" needs an interval of at least 1s" },
		{ "every 15", "\"every 15\" has a bad duration: missing unit (use ms, s, m, h, d or w)" },
		{ "every 15q", "\"every 15q\" has a bad duration: unknown unit (use ms, s, m, h, d or w)" },
		{ "every 1h 30m", "\"every 1h 30m\" has more than one duration (write \"every 1h30m\")" },
		{ "cron 61 * * * *", "\"cron 61 * * * *\" has minute 61 out of range 0-59" },
		{ "cron * * * *", "\"cron * * * *\" needs 5 cron fields (minute hour day month weekday), not 4" },
		{ "cron", "\"cron\" needs 5 cron fields (minute hour day month weekday), not 0" },
		{ "cron * * * * * *", "\"cron * * * * * *\" needs 5 cron fields (minute hour day month "
				      "weekday), not 6" },
		{ "cron * 24 * * *", "\"cron * 24 * * *\" has hour 24 out of range 0-23" },
		{ "cron * * 0 * *", "\"cron * * 0 * *\" has day 0 out of range 1-31" },
		{ "cron * * * 13 *", "\"cron * * * 13 *\" has month 13 out of range 1-12" },
		{ "cron * * * * 8", "\"cron * * * * 8\" has weekday 8 out of range 0-7" },
		{ "cron 5-3 * * * *", "\"cron 5-3 * * * *\" has a backwards minute range 5-3" },
		{ "cron 1-70 * * * *", "\"cron 1-70 * * * *\" has minute 70 out of range 0-59" },
		{ "cron */0 * * * *", "\"cron */0 * * * *\" has a bad step in the minute field (1 to 59)" },
		{ "cron */ * * * *", "\"cron */ * * * *\" has a bad step in the minute field (1 to 59)" },
		{ "cron 5/10 * * * *", "\"cron 5/10 * * * *\" has a step in the minute field without '*' or "
				       "a range before it" },
		{ "cron 1,,2 * * * *", "\"cron 1,,2 * * * *\" has a bad minute field \"1,,2\" (numbers, '*', "
				       "',', '-' and '/')" },
		{ "cron 1- * * * *", "\"cron 1- * * * *\" has a bad minute field \"1-\" (a range needs two "
				     "numbers)" },
		{ "cron * * * jan *", "\"cron * * * jan *\" has a bad month field \"jan\" (numbers, '*', ',', "
				      "'-' and '/')" },
		{ "cron ** * * * *", "\"cron ** * * * *\" has a bad minute field \"**\" (numbers, '*', ',', "
				     "'-' and '/')" },
		{ "cron 99999 * * * *", "\"cron 99999 * * * *\" has minute 9999 out of range 0-59" },
	};
	char *err;
	int failures = 0;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		if (conf_schedule_check(good[i], &err) != 0) {
			print_error("schedule \"%s\":\n got: %s\n want: accepted\n", good[i], err);
			failures++;
		}
		assert_null(err);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = NULL;
		int rc = conf_schedule_check(bad[i].in, &err);
		if (rc != -1 || !err || strcmp(err, bad[i].want) != 0) {
			print_error("schedule \"%s\":\n got: %d %s\n want: -1 %s\n", bad[i].in, rc,
				    err ? err : "(null)", bad[i].want);
			failures++;
		}
		free(err);
	}
	assert_int_equal(failures, 0);
}

/* ---- secrets ---- */

static void test_read_secret(void **state)
{
	(void)state;
	char *dir = tmpdir_new(), *err, *s, *p;
	static const struct {
		const char *name, *text;
		mode_t mode;
		const char *want;     /* NULL: refused */
		const char *want_err; /* with @D */
	} cases[] = {
		{ "nl.secret", "hunter2\n", 0600, "hunter2", NULL },
		{ "crlf.secret", "hunter2\r\n", 0400, "hunter2", NULL },
		{ "two.secret", "hunter2\n\n", 0600, "hunter2\n", NULL },
		{ "bare.secret", "p w", 0600, "p w", NULL },
		{ "open.secret", "x\n", 0644, NULL, "@D/open.secret: accessible by group or others (mode 0644): "
						    "make it 0600 or 0400" },
		{ "grp.secret", "x\n", 0640, NULL, "@D/grp.secret: accessible by group or others (mode 0640): "
						   "make it 0600 or 0400" },
		{ "empty.secret", "\n", 0600, NULL, "@D/empty.secret: empty" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		write_file(dir, cases[i].name, cases[i].text, cases[i].mode);
		p = fmt("%s/%s", dir, cases[i].name);
		s = conf_read_secret(p, NULL, &err);
		if (cases[i].want) {
			if (!s || strcmp(s, cases[i].want) != 0)
				fail_msg("%s: got %s (%s), want \"%s\"", cases[i].name, s ? s : "NULL",
					 err ? err : "", cases[i].want);
			assert_null(err);
		} else {
			char *want = subst(cases[i].want_err, "@D", dir);
			assert_null(s);
			if (!err || strcmp(err, want) != 0)
				fail_msg("%s:\n got: %s\n want: %s", cases[i].name, err ? err : "NULL", want);
			free(want);
		}
		free(s);
		free(err);
		free(p);
	}

	/* missing file, directory */
	p = fmt("%s/nope", dir);
	assert_null(conf_read_secret(p, NULL, &err));
	char *want = fmt("%s/nope: No such file or directory", dir);
	assert_string_equal(err, want);
	free(want);
	free(err);
	free(p);
	assert_null(conf_read_secret(dir, NULL, &err));
	want = fmt("%s: not a regular file", dir);
	assert_string_equal(err, want);
	free(want);
	free(err);

	/* the environment first; a file as fallback; neither */
	p = fmt("%s/nl.secret", dir);
	assert_int_equal(setenv("MC_TEST_SECRET", "from-env", 1), 0);
	s = conf_read_secret(p, "MC_TEST_SECRET", &err);
	assert_string_equal(s, "from-env");
	free(s);
	assert_int_equal(unsetenv("MC_TEST_SECRET"), 0);
	s = conf_read_secret(p, "MC_TEST_SECRET", &err);
	assert_string_equal(s, "hunter2");
	free(s);
	assert_null(conf_read_secret(NULL, "MC_TEST_SECRET", &err));
	assert_string_equal(err, "environment variable MC_TEST_SECRET is not set");
	free(err);
	assert_int_equal(setenv("MC_TEST_SECRET", "", 1), 0);
	assert_null(conf_read_secret(NULL, "MC_TEST_SECRET", &err));
	assert_string_equal(err, "environment variable MC_TEST_SECRET is empty");
	free(err);
	assert_int_equal(unsetenv("MC_TEST_SECRET"), 0);
	assert_null(conf_read_secret(NULL, NULL, &err));
	assert_string_equal(err, "no password_file or password_env is set");
	free(err);
	free(p);
	rm_rf(dir);
	free(dir);
}

/* The secret is never read at load: a file that cannot be read as a secret (empty) passes the
 * load-time checks, which look only at type and mode. */
static void test_secret_not_read_at_load(void **state)
{
	(void)state;
	char *dir;
	struct mon_conf *c;

	c = load_ok(SENDER("username = \"u\"; password_file = \"ok.secret\";"), &dir);
	char *p = fmt("%s/ok.secret", dir);
	assert_string_equal(c->senders[0].password_file, p);
	write_file(dir, "ok.secret", "", 0600);
	char *err, *s = conf_read_secret(c->senders[0].password_file, c->senders[0].password_env, &err);
	assert_null(s);
	char *want = fmt("%s: empty", p);
	assert_string_equal(err, want);
	free(want);
	free(err);
	free(p);
	conf_free(c);
	rm_rf(dir);
	free(dir);
}

/* ---- small API ---- */

static void test_names_and_print(void **state)
{
	(void)state;
	assert_string_equal(conf_tls_name(CONF_TLS_NONE), "none");
	assert_string_equal(conf_tls_name(CONF_TLS_OPPORTUNISTIC), "opportunistic");
	assert_string_equal(conf_tls_name(CONF_TLS_REQUIRED), "required");
	assert_string_equal(conf_mode_name(CONF_MODE_MX), "mx");
	assert_string_equal(conf_mode_name(CONF_MODE_RELAY), "relay");

	char f1[] = "a.cfg", f2[] = "b.cfg", k1[] = "seeds.[0].name", k2[] = "", m1[] = "bad", m2[] = "worse";
	struct conf_error v[] = { { f1, 3, k1, m1 }, { f2, 0, k2, m2 } };
	struct conf_errors errs = { v, 2 };
	char *got = errors_text(&errs);
	assert_string_equal(got, "a.cfg:3: seeds.[0].name: bad\nb.cfg: worse\n");
	free(got);
	conf_free(NULL);
}

/* ---- generated documentation is current ---- */

/* The offset in text of the line that starts with the first two lines of ref, or -1. */
static long find_ref(const char *text, const char *ref)
{
	size_t n = strcspn(ref, "\n");
	if (ref[n])
		n += 1 + strcspn(ref + n + 1, "\n");
	for (const char *p = text; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, ref, n) == 0)
			return (long)(p - text);
	return -1;
}

static void test_schema_doc(void **state)
{
	(void)state;
	char *doc = capture(conf_schema_doc);
	static const char *const keys[] = {
		"state_dir", "rrd_dir", "rrdcached", "vantage", "log.target", "log.facility",
		"dns.servers", "dns.timeout", "dns.dnsbl", "timeouts.connect", "timeouts.banner",
		"timeouts.command", "timeouts.data", "timeouts.eod", "retry.schedule", "retry.give_up",
		"limits.in_flight", "limits.per_domain", "limits.spacing", "limits.daily_budget",
		"readback.timeout", "alert.command", "alert.latency", "alert.failing_after", "graph_every",
		"senders.[].name", "senders.[].mode", "senders.[].host", "senders.[].port",
		"senders.[].helo", "senders.[].mail_from", "senders.[].tls", "senders.[].tls_verify",
		"senders.[].ca_file", "senders.[].source_ip", "senders.[].username",
		"senders.[].password_file", "senders.[].password_env", "senders.[].headers",
		"seeds.[].name", "seeds.[].address", "seeds.[].sender", "seeds.[].schedule",
		"seeds.[].imap", "seeds.[].imap.url", "seeds.[].imap.username",
		"seeds.[].imap.password_file", "seeds.[].imap.password_env", "seeds.[].imap.ca_file",
		"seeds.[].expect_folder", "seeds.[].headers",
	};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		char *line = fmt("\n# %s\n", keys[i]);
		if (!strstr(doc, line))
			fail_msg("conf_schema_doc has no entry for %s", keys[i]);
		free(line);
	}
	/* every line is a libconfig comment */
	for (const char *p = doc; *p; p = strchr(p, '\n') + 1)
		assert_int_equal(*p, '#');
	free(doc);
}

/* The reference part of the committed example is exactly conf_schema_doc's output. */
static void test_example_reference_current(void **state)
{
	(void)state;
	char *doc = capture(conf_schema_doc);
	char *ex = slurp(MON_SOURCE_DIR "/conf/mailcanary.conf.example", NULL);
	long at = find_ref(ex, doc);

	if (at < 0)
		fail_msg("conf/mailcanary.conf.example has no reference part; run "
			 "cmake --build BUILD --target conf-docs");
	if (strcmp(ex + at, doc) != 0)
		fail_msg("conf/mailcanary.conf.example: the reference differs from conf_schema_doc; run "
			 "cmake --build BUILD --target conf-docs\n got:\n%s\n want:\n%s", ex + at, doc);
	free(ex);
	free(doc);
}

/* The example loads once its secret files and CA file exist (paths moved to a temp dir). */
static void test_example_loads(void **state)
{
	(void)state;
	char *dir = tmpdir_new(), *got;
	char *ex = slurp(MON_SOURCE_DIR "/conf/mailcanary.conf.example", NULL);
	char *prefix = fmt("%s/", dir);
	char *t1 = subst(ex, "/etc/mailcanary/", prefix);
	char *ca = fmt("%s/ca.pem", dir);
	char *text = subst(t1, "/etc/ssl/certs/ca-certificates.crt", ca);
	struct mon_conf *c;

	/* create every secret file the example names */
	for (const char *p = text; (p = strstr(p, prefix)) != NULL; p += strlen(prefix)) {
		const char *name = p + strlen(prefix);
		size_t n = strcspn(name, "\"");
		char *file = strndup(name, n);
		if (strstr(file, ".secret"))
			write_file(dir, file, "pw\n", 0600);
		free(file);
	}
	struct fixture f[] = { { "mailcanary.conf", text, 0 } };
	int rc = load_in(dir, f, 1, "mailcanary.conf", &c, &got);
	if (rc != 0)
		fail_msg("the example does not load:\n got:\n%s want: no errors", got);
	assert_int_equal(c->n_senders, 2);
	assert_int_equal(c->n_seeds, 3);
	for (size_t i = 0; i < c->n_seeds; i++)
		assert_non_null(c->seeds[i].sender);
	conf_free(c);
	free(got);
	free(text);
	free(ca);
	free(t1);
	free(prefix);
	free(ex);
	rm_rf(dir);
	free(dir);
}

/* The key list in docs/mailcanary.conf.5 is exactly conf_schema_man's output. */
static void test_man_page_current(void **state)
{
	(void)state;
	char *man = slurp(MON_SOURCE_DIR "/docs/mailcanary.conf.5", NULL);
	char *keys = capture(conf_schema_man);
	const char *b = strstr(man, "\n.\\\" BEGIN GENERATED KEYS");
	const char *e = strstr(man, "\n.\\\" END GENERATED KEYS");

	if (!b || !e || e < b)
		fail_msg("docs/mailcanary.conf.5 lacks the GENERATED KEYS markers");
	b = strchr(b + 1, '\n') + 1;
	e++;
	if ((size_t)(e - b) != strlen(keys) || strncmp(b, keys, (size_t)(e - b)) != 0)
		fail_msg("docs/mailcanary.conf.5: the key list differs from conf_schema_man; run "
			 "cmake --build BUILD --target conf-docs");
	free(keys);
	free(man);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_element_defaults),
		cmocka_unit_test(test_include_tree),
		cmocka_unit_test(test_include_bare_path),
		cmocka_unit_test(test_schedule_check),
		cmocka_unit_test(test_read_secret),
		cmocka_unit_test(test_secret_not_read_at_load),
		cmocka_unit_test(test_names_and_print),
		cmocka_unit_test(test_schema_doc),
		cmocka_unit_test(test_example_reference_current),
		cmocka_unit_test(test_example_loads),
		cmocka_unit_test(test_man_page_current),
	};
	size_t nbad = sizeof bad_cases / sizeof bad_cases[0];
	struct CMUnitTest *bad = calloc(nbad, sizeof *bad);
	int rc;

	assert_non_null(bad);
	for (size_t i = 0; i < nbad; i++) {
		bad[i].name = bad_cases[i].name;
		bad[i].test_func = run_bad_case;
		bad[i].initial_state = (void *)&bad_cases[i];
	}
	rc = cmocka_run_group_tests_name("conf", tests, NULL, NULL);
	rc += _cmocka_run_group_tests("conf_errors", bad, nbad, NULL, NULL);
	free(bad);
	return rc ? 1 : 0;
}
