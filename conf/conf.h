/* Configuration: the libconfig file, validated against one schema table into an immutable
 * struct mon_conf. Every error names file and line: "FILE:LINE: key: message". */
#ifndef MON_CONF_CONF_H
#define MON_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "strmap.h"

enum conf_mode { CONF_MODE_MX = 0, CONF_MODE_RELAY };
enum conf_tls { CONF_TLS_OPPORTUNISTIC = 0, CONF_TLS_NONE, CONF_TLS_REQUIRED };

/* Where a setting came from, for error messages later (e.g. a secret file that turned bad). */
struct conf_pos {
	const char *file; /* points into mon_conf's file-name pool; never NULL */
	int line;
};

struct conf_imap {
	bool set;               /* an imap group was given */
	char *url;              /* imap://host:port/ or imaps://host:port/ */
	char *username;
	char *password_file;    /* NULL if not set */
	char *password_env;     /* NULL if not set */
	char *ca_file;          /* NULL if not set */
	char *cleanup;          /* "delete" (default), "keep" or "move:FOLDER" */
	char *authserv_id;      /* NULL: the topmost Authentication-Results counts */
	char *source_ip;        /* NULL: the kernel's choice */
	struct conf_pos pos;
};

struct conf_sender {
	char *name;
	enum conf_mode mode;
	char *host;             /* relay mode: required; mx mode: NULL */
	int port;               /* default 25 (mx) / 587 (relay); mx: replaces 25 for every MX */
	char *helo;             /* default: gethostname() at load time */
	char *mail_from;        /* envelope sender, also the From: header */
	enum conf_tls tls;      /* default opportunistic */
	char *ca_file;          /* NULL: system default trust store */
	bool tls_verify;        /* default true */
	char *username;         /* NULL: no AUTH */
	char *password_file;    /* NULL if not set; checked: regular file, mode 0600/0400 */
	char *password_env;     /* NULL if not set */
	char *source_ip;        /* NULL: kernel's choice */
	char **headers;         /* extra "Name: value" header lines */
	size_t n_headers;
	char **dkim_selectors;  /* DKIM selectors whose keys the dns checks look up (default none) */
	size_t n_dkim_selectors;
	struct conf_imap bounce_imap; /* the envelope sender's mailbox: bounces (DSNs) of probes */
	struct conf_pos pos;
};

struct conf_seed {
	char *name;
	char *address;                 /* recipient, local@domain */
	const char *domain;            /* points into address, after '@' */
	char *sender_name;
	const struct conf_sender *sender; /* resolved; never NULL after a successful load */
	char *schedule;                /* as written: hourly | daily | weekly | "every 15m" | "cron ..." */
	struct conf_imap imap;
	char *expect_folder;           /* default "INBOX" */
	char **headers;
	size_t n_headers;
	struct conf_pos pos;
};

struct conf_timeouts {
	int64_t connect_ms;  /* default 30s */
	int64_t banner_ms;   /* default 5m */
	int64_t command_ms;  /* default 5m: EHLO, STARTTLS, AUTH, MAIL, RCPT */
	int64_t data_ms;     /* default 2m: DATA command (waiting for 354) */
	int64_t eod_ms;      /* default 10m: end-of-data reply */
};

struct mon_conf {
	char *path;                 /* the main file as given */
	char *state_dir;            /* default /var/lib/mailcanary */
	bool rrd;                   /* default true: RRD files are written */
	char *rrd_dir;              /* default state_dir/rrd */
	char *rrdcached;            /* NULL if not set */
	char *vantage;              /* NULL if not set */

	char **dns_servers;         /* "ip[:port]"; none: /etc/resolv.conf */
	size_t n_dns_servers;
	int64_t dns_timeout_ms;     /* default 5s */
	char **dnsbl;
	size_t n_dnsbl;
	bool dns_probe_checks;      /* default true: every probe's sending identity is checked */
	int64_t dns_checks_ttl_ms;  /* default 10m: how long one identity's checks are reused */

	struct conf_timeouts timeouts;

	int64_t *retry_schedule_ms; /* default 5m 15m 30m 1h */
	size_t n_retry_schedule;
	int64_t retry_give_up_ms;   /* default 4h */

	int limits_in_flight;       /* default 100 */
	int limits_per_domain;      /* default 1; 0 = unlimited */
	int64_t limits_spacing_ms;  /* default 10s */
	int limits_daily_budget;    /* default 0 = unlimited */

	int64_t readback_timeout_ms; /* default 30m */
	int64_t readback_late_ms;    /* default 24h; 0: off */

	int detail_max_mib;         /* detail_log.max_size, MiB; default 64; 0: no size limit */
	bool detail_daily;          /* detail_log.daily; default false */
	int detail_keep;            /* detail_log.keep; default 10 */

	char *alert_command;        /* NULL if not set */
	int64_t alert_latency_ms;   /* default 10m */
	int alert_failing_after;    /* default 3 */
	int64_t alert_timeout_ms;   /* default 10s */
	bool alert_aberrations;     /* default true */

	char *graph_dir;            /* NULL if not set: the daemon draws no graphs */
	int64_t graph_every_ms;     /* default 5m */

	char *log_target;           /* "stderr" (default) or "syslog" */
	char *log_facility;         /* default "mail" */

	struct conf_sender *senders;
	size_t n_senders;
	struct conf_seed *seeds;
	size_t n_seeds;

	char **file_pool;           /* file names referenced by conf_pos */
	size_t n_file_pool;

	struct strmap seed_index;   /* name -> struct conf_seed *, for conf_seed_find() */
};

struct conf_error {
	char *file;   /* may be the main path when libconfig gives none */
	int line;     /* 0 when unknown */
	char *key;    /* dotted path, e.g. "seeds.[2].schedule"; may be "" */
	char *msg;
};

struct conf_errors {
	struct conf_error *v;
	size_t n;
};

/* Loads and validates path. On success returns 0 and *out (owned). On any error returns -1,
 * *out is NULL and errs holds every error found (not just the first). errs is (re)initialised
 * here, so it need not be zeroed, but release it with conf_errors_fini() after each call.
 * A relative @include path is resolved against the directory of the file that holds it (libconfig
 * 1.5 cannot: the files are read through rewritten private copies, see conf.c). Relative file
 * names in values (state_dir, rrd_dir, ca_file, password_file) are made absolute against that
 * directory too. The secrets are only checked here (regular file, mode 0600/0400), never read. */
int conf_load(const char *path, struct mon_conf **out, struct conf_errors *errs);
void conf_free(struct mon_conf *conf);
void conf_errors_fini(struct conf_errors *errs);
/* Prints each error as "FILE:LINE: key: message\n" (line omitted when 0, key when ""). */
void conf_errors_print(const struct conf_errors *errs, FILE *fp);

const struct conf_seed *conf_seed_find(const struct mon_conf *conf, const char *name);

/* Reads a secret: from password_env (environment variable name) if set, else from password_file,
 * refusing a file that group or others can read or that is not a regular file. Strips one trailing
 * newline. Returns an owned string, or NULL with *err set to an owned message (never containing the
 * secret). */
char *conf_read_secret(const char *password_file, const char *password_env, char **err);

const char *conf_tls_name(enum conf_tls tls);
const char *conf_mode_name(enum conf_mode mode);

/* Writes the documented schema (every key, type, default, range, doc) as libconfig comments:
 * the source of conf/mailcanary.conf.example's reference section. */
void conf_schema_doc(FILE *fp);
/* Added: the same reference as roff (.SS/.TP entries), the generated part of
 * docs/mailcanary.conf.5. */
void conf_schema_man(FILE *fp);

/* Added: checks a schedule: "hourly", "daily", "weekly", "every DURATION" (whole seconds, at least 1s) or
 * "cron MIN HOUR DAY MONTH WEEKDAY" (5 fields of numbers, '*', lists ',', ranges '-', steps '/';
 * minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-7). Returns 0 (*err NULL), or -1 with
 * *err an owned message (it quotes s but not the key). For the scheduler to reuse. */
int conf_schedule_check(const char *s, char **err);

#endif
