/* Fuzz target: conf_load (conf/conf.c, libconfig 1.5 underneath) on a configuration file holding
 * the fuzz input.
 *
 * The input is written to DIR/mailcanary.conf, DIR = /tmp/mailcanary-fuzz-config.PID, a
 * directory of this process alone, so a relative @include can only reach that file (itself)
 * or fail. Inputs that combine @include with ".." are skipped: they could name /dev/stdin or
 * other files outside DIR and make the run depend on the machine.
 *
 * Checked: 0 with a configuration and no errors, or -1 with no configuration and at least one
 * error, each with a file, a key and a message; conf_errors_print works; a loaded configuration
 * is consistent (resolved senders, domains inside the addresses, positions in the file pool,
 * relay/mx host rule). Leaks on any path are LeakSanitizer reports (libFuzzer checks each
 * input; replay under ASan checks at exit). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "support.h"

static char dir[64], path[96];
static FILE *devnull;

static void cleanup(void)
{
	if (path[0])
		unlink(path);
	if (dir[0])
		rmdir(dir);
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/mailcanary-fuzz-config.%ld", (long)getpid());
	snprintf(path, sizeof path, "%s/mailcanary.conf", dir);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		perror(dir);
		abort();
	}
	devnull = fopen("/dev/null", "w");
	if (!devnull)
		abort();
	atexit(cleanup);
}

static bool in_pool(const struct mon_conf *c, const char *file)
{
	for (size_t i = 0; i < c->n_file_pool; i++)
		if (c->file_pool[i] == file)
			return true;
	return false;
}

static void check_conf(const struct mon_conf *c)
{
	FUZZ_CHECK(c->path && strcmp(c->path, path) == 0, "path %s", c->path ? c->path : "NULL");
	FUZZ_CHECK(c->state_dir && c->state_dir[0] == '/', "state_dir %s", c->state_dir ? c->state_dir : "NULL");
	FUZZ_CHECK(c->rrd_dir && c->rrd_dir[0] == '/', "rrd_dir %s", c->rrd_dir ? c->rrd_dir : "NULL");
	FUZZ_CHECK(c->log_target && c->log_facility, "log settings missing");
	FUZZ_CHECK(c->dns_timeout_ms > 0 && c->timeouts.connect_ms > 0 && c->timeouts.banner_ms > 0 &&
			   c->timeouts.command_ms > 0 && c->timeouts.data_ms > 0 && c->timeouts.eod_ms > 0,
		   "a timeout is not positive");
	FUZZ_CHECK(!c->n_dns_servers || c->dns_servers, "dns servers");
	FUZZ_CHECK(!c->n_dnsbl || c->dnsbl, "dnsbl");
	FUZZ_CHECK(!c->n_retry_schedule || c->retry_schedule_ms, "retry schedule");
	for (size_t i = 0; i < c->n_senders; i++) {
		const struct conf_sender *s = &c->senders[i];
		FUZZ_CHECK(s->name && s->mail_from && s->helo, "sender %zu lacks a name, mail_from or helo", i);
		FUZZ_CHECK(s->port >= 1 && s->port <= 65535, "sender %s port %d", s->name, s->port);
		FUZZ_CHECK((s->mode == CONF_MODE_RELAY) == (s->host != NULL), "sender %s: mode %s, host %s", s->name,
			   conf_mode_name(s->mode), s->host ? s->host : "NULL");
		FUZZ_CHECK(s->pos.file && in_pool(c, s->pos.file) && s->pos.line > 0, "sender %s position", s->name);
		FUZZ_CHECK(!s->n_headers || s->headers, "sender headers");
		FUZZ_CHECK(!s->username || s->password_file || s->password_env, "sender %s: username without password",
			   s->name);
	}
	for (size_t i = 0; i < c->n_seeds; i++) {
		const struct conf_seed *s = &c->seeds[i];
		FUZZ_CHECK(s->name && s->address && s->sender_name && s->schedule, "seed %zu incomplete", i);
		const char *at = strrchr(s->address, '@');
		FUZZ_CHECK(at && s->domain == at + 1 && *s->domain, "seed %s: domain", s->name);
		FUZZ_CHECK(s->sender && s->sender >= c->senders && s->sender < c->senders + c->n_senders &&
				   strcmp(s->sender->name, s->sender_name) == 0,
			   "seed %s: sender not resolved", s->name);
		FUZZ_CHECK(s->expect_folder && s->expect_folder[0], "seed %s: expect_folder", s->name);
		FUZZ_CHECK(s->pos.file && in_pool(c, s->pos.file) && s->pos.line > 0, "seed %s position", s->name);
		FUZZ_CHECK(s->imap.pos.file && in_pool(c, s->imap.pos.file), "seed %s imap position", s->name);
		FUZZ_CHECK(!s->imap.set || s->imap.url, "seed %s: imap without url", s->name);
		FUZZ_CHECK(conf_seed_find(c, s->name) == s, "conf_seed_find(%s)", s->name);
		char *err = NULL;
		FUZZ_CHECK(conf_schedule_check(s->schedule, &err) == 0, "seed %s: schedule %s", s->name, s->schedule);
		free(err);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0])
		setup();
	if (fuzz_memmem((const char *)data, size, "@include", 8) && fuzz_memmem((const char *)data, size, "..", 2))
		return 0;

	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1) {
		perror(path);
		abort();
	}
	for (size_t off = 0; off < size;) {
		ssize_t w = write(fd, data + off, size - off);
		if (w <= 0) {
			perror(path);
			abort();
		}
		off += (size_t)w;
	}
	close(fd);

	struct mon_conf *c = NULL;
	struct conf_errors errs;
	int rc = conf_load(path, &c, &errs);
	FUZZ_CHECK((rc == 0 && c && errs.n == 0) || (rc == -1 && !c && errs.n > 0),
		   "conf_load = %d, conf %p, %zu errors", rc, (void *)c, errs.n);
	for (size_t i = 0; i < errs.n; i++) {
		const struct conf_error *e = &errs.v[i];
		FUZZ_CHECK(e->file && e->key && e->msg && e->msg[0] && e->line >= 0, "error %zu is incomplete", i);
	}
	conf_errors_print(&errs, devnull);
	if (c)
		check_conf(c);
	conf_errors_fini(&errs);
	conf_free(c);
	return 0;
}
