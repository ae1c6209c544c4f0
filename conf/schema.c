/* The one schema table: every key of the configuration file with its type, default, range,
 * required flag and documentation. Loading (conf.c), freeing and both documentation writers
 * (conf_schema_doc for the example file, conf_schema_man for mailcanary.conf(5)) walk it. */
#include "conf.h"

#include <string.h>

#include "conf_internal.h"
#include "duration.h"
#include "strbuf.h"

#define MS(x) ((int64_t)(x))
#define SEC MS(1000)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define WEEK (7 * DAY)

#define TOP(f) offsetof(struct mon_conf, f)
#define SND(f) offsetof(struct conf_sender, f)
#define SEED(f) offsetof(struct conf_seed, f)

static const struct conf_choice mode_choices[] = {
	{ "mx", CONF_MODE_MX }, { "relay", CONF_MODE_RELAY }, { NULL, 0 },
};
static const struct conf_choice tls_choices[] = {
	{ "none", CONF_TLS_NONE }, { "opportunistic", CONF_TLS_OPPORTUNISTIC },
	{ "required", CONF_TLS_REQUIRED }, { NULL, 0 },
};
static const struct conf_choice log_target_choices[] = {
	{ "stderr", 0 }, { "syslog", 1 }, { NULL, 0 },
};
static const struct conf_choice log_facility_choices[] = {
	{ "mail", 0 }, { "daemon", 1 }, { "user", 2 }, { "local0", 3 }, { "local1", 4 },
	{ "local2", 5 }, { "local3", 6 }, { "local4", 7 }, { "local5", 8 }, { "local6", 9 },
	{ "local7", 10 }, { NULL, 0 },
};

const struct conf_key conf_schema[] = {
	{ .path = "state_dir", .type = CONF_K_STRING, .flags = CONF_F_PATH,
	  .def = "\"/var/lib/mailcanary\"", .check = conf_check_nonempty, .off = TOP(state_dir),
	  .doc = "Directory for the journal of pending work, the detail log (results.jsonl) and, "
		 "unless rrd_dir is set, the RRD files." },
	{ .path = "rrd", .type = CONF_K_BOOL, .def = "true", .off = TOP(rrd),
	  .doc = "Write every final probe result into the seed's RRD file (rrd_dir, rrdcached); false "
		 "writes none (only the detail log, e.g. for benchmarks with thousands of fast seeds)." },
	{ .path = "rrd_dir", .type = CONF_K_STRING, .flags = CONF_F_PATH,
	  .def_doc = "state_dir + \"/rrd\"", .check = conf_check_nonempty, .off = TOP(rrd_dir),
	  .doc = "Directory for the RRD files, one per seed (rrd_dir/[vantage/]SEED.rrd), written at "
		 "each probe's final result and created when missing; see RRD FILES in mailcanary(8). Not "
		 "used with a \"host:port\" rrdcached." },
	{ .path = "rrdcached", .type = CONF_K_STRING, .def_doc = "none (update the RRD files directly)",
	  .check = conf_check_rrdcached, .off = TOP(rrdcached),
	  .doc = "Address of an rrdcached daemon: \"unix:/path/to/socket\", \"/path/to/socket\" or "
		 "\"host:port\". The RRD updates then go through it (it must be allowed to write the "
		 "files). With \"host:port\" the files are the daemon's: [vantage/]SEED.rrd relative "
		 "to its base directory (-b), created and checked through it." },
	{ .path = "vantage", .type = CONF_K_STRING, .def_doc = "none",
	  .check = conf_check_name, .off = TOP(vantage),
	  .doc = "Name of this probing host, recorded in every result and used as a subdirectory of "
		 "rrd_dir (letters, digits, '.', '_', '-'). Hosts with their own vantages may share one rrd_dir "
		 "or one rrdcached over TCP: graph then shows every vantage side by side (see GRAPHS in "
		 "mailcanary(8))." },

	{ .path = "log", .type = CONF_K_GROUP, .doc = "Where run and probe --due write their log lines (a manual probe always logs to "
		 "standard error). Read at start: a reload (SIGHUP) does not change it." },
	{ .path = "log.target", .type = CONF_K_ENUM, .flags = CONF_F_ENUMSTR, .def = "\"stderr\"",
	  .choices = log_target_choices, .off = TOP(log_target),
	  .doc = "\"stderr\": lines \"mailcanary: LEVEL: event=NAME key=value ...\" on standard error "
		 "(under systemd: the systemd journal); \"syslog\": to syslog with the ident mailcanary and the "
		 "pid. run logs at level info, probe --due only warnings unless -v is given." },
	{ .path = "log.facility", .type = CONF_K_ENUM, .flags = CONF_F_ENUMSTR, .def = "\"mail\"",
	  .choices = log_facility_choices, .off = TOP(log_facility),
	  .doc = "Syslog facility when target is \"syslog\"; ignored otherwise." },

	{ .path = "dns", .type = CONF_K_GROUP, .doc = "DNS resolution (c-ares) and DNS checks." },
	{ .path = "dns.servers", .type = CONF_K_STRLIST, .def = "[]",
	  .check = conf_check_dns_server, .off = TOP(dns_servers), .off_n = TOP(n_dns_servers),
	  .doc = "Name servers as \"ip\", \"ip:port\" or \"[ipv6]:port\". Empty: the servers of "
		 "/etc/resolv.conf." },
	{ .path = "dns.timeout", .type = CONF_K_DURATION, .def = "\"5s\"", .min = 100, .max = MIN,
	  .off = TOP(dns_timeout_ms), .doc = "Time allowed for one DNS query, retries included." },
	{ .path = "dns.dnsbl", .type = CONF_K_STRLIST, .def = "[]", .check = conf_check_zone,
	  .off = TOP(dnsbl), .off_n = TOP(n_dnsbl),
	  .doc = "DNS blocklist zones the dns command and every probe (probe_checks) check the sending "
		 "addresses against, e.g. \"zen.spamhaus.org\"." },
	{ .path = "dns.probe_checks", .type = CONF_K_BOOL, .def = "true", .off = TOP(dns_probe_checks),
	  .doc = "Run the sending identity's DNS checks for every probe result: the local IP of the "
		 "SMTP session that decided it (source_ip when it never connected) with its PTR and "
		 "forward-confirmed rDNS, the sender's helo, SPF of its mail_from for that IP, DMARC, "
		 "its dkim_selectors' keys and the dnsbl zones, as the dns command does. The checks "
		 "refine the result's diagnosis and are recorded in its \"dns\" member. They never "
		 "fail a probe: the result waits for them at most twice dns.timeout plus a second, and "
		 "checks that time out or fail to answer are recorded as errors and count as no finding. "
		 "false: no checks, no \"dns\" member." },
	{ .path = "dns.checks_ttl", .type = CONF_K_DURATION, .def = "\"10m\"", .min = 0, .max = DAY,
	  .off = TOP(dns_checks_ttl_ms),
	  .doc = "How long the checks of one sending identity (IP, helo, mail_from, dkim_selectors, "
		 "dnsbl zones) are reused by later probes with the same identity (their \"dns\" says "
		 "\"cached\": true); probes that decide while a run is in progress wait for that run. A "
		 "run with errors (timeouts) is reused for at most a minute. 0: reuse only an "
		 "unfinished run. A reload (SIGHUP) starts afresh." },

	{ .path = "timeouts", .type = CONF_K_GROUP,
	  .doc = "SMTP timeouts per stage. The defaults follow RFC 5321 section 4.5.3.2; shorter values "
		 "are allowed." },
	{ .path = "timeouts.connect", .type = CONF_K_DURATION, .def = "\"30s\"", .min = 100,
	  .max = HOUR, .off = TOP(timeouts.connect_ms), .doc = "TCP connection set-up." },
	{ .path = "timeouts.banner", .type = CONF_K_DURATION, .def = "\"5m\"", .min = 100,
	  .max = HOUR, .off = TOP(timeouts.banner_ms),
	  .doc = "From the connection to the server's greeting." },
	{ .path = "timeouts.command", .type = CONF_K_DURATION, .def = "\"5m\"", .min = 100,
	  .max = HOUR, .off = TOP(timeouts.command_ms),
	  .doc = "Reply to EHLO, STARTTLS, AUTH, MAIL and RCPT." },
	{ .path = "timeouts.data", .type = CONF_K_DURATION, .def = "\"2m\"", .min = 100,
	  .max = HOUR, .off = TOP(timeouts.data_ms), .doc = "Reply to DATA (the 354)." },
	{ .path = "timeouts.eod", .type = CONF_K_DURATION, .def = "\"10m\"", .min = 100,
	  .max = HOUR, .off = TOP(timeouts.eod_ms), .doc = "Reply to the end of the message data." },

	{ .path = "retry", .type = CONF_K_GROUP,
	  .doc = "Retries of a probe whose attempt was deferred (a 4xx reply, e.g. greylisting) or "
		 "failed (no reply: DNS, connection, timeout, TLS), as an MTA retries its queue. "
		 "Rejected, accepted and unknown outcomes are final. A retry sends the same message "
		 "again (same probe id and Date)." },
	{ .path = "retry.schedule", .type = CONF_K_DURLIST, .def = "[\"5m\", \"15m\", \"30m\", \"1h\"]",
	  .min = SEC, .max = WEEK, .off = TOP(retry_schedule_ms), .off_n = TOP(n_retry_schedule),
	  .doc = "Delay before each retry, counted from the end of the previous attempt: the i-th "
		 "delay follows the i-th attempt, and the last one repeats. A 4xx reply that says "
		 "when to come back (\"try again in 300 seconds\", \"retry after 5 minutes\") "
		 "replaces the delay when the retry then still falls within give_up. Empty: never "
		 "retry." },
	{ .path = "retry.give_up", .type = CONF_K_DURATION, .def = "\"4h\"", .min = SEC, .max = WEEK,
	  .off = TOP(retry_give_up_ms),
	  .doc = "No retry starts later than this after the start of the first attempt. When the next "
		 "retry would, the probe ends: final, with its last attempt's outcome and the warning "
		 "\"gave up after N attempts\"." },

	{ .path = "limits", .type = CONF_K_GROUP,
	  .doc = "Concurrency and sending limits. per_domain, spacing and daily_budget apply per "
		 "destination domain (the domain of the seed's address, also through a relay); 0 "
		 "means unlimited. run and probe --due obey all four; a manual probe obeys in_flight "
		 "and per_domain only. An attempt held back by a limit lists it in its result's "
		 "schedule.waited_for." },
	{ .path = "limits.in_flight", .type = CONF_K_INT, .def = "100", .min = 1, .max = 100000,
	  .off = TOP(limits_in_flight), .doc = "Attempts in progress at once, in all." },
	{ .path = "limits.per_domain", .type = CONF_K_INT, .def = "1", .min = 0, .max = 10000,
	  .off = TOP(limits_per_domain), .doc = "Attempts in progress at once to one destination domain." },
	{ .path = "limits.spacing", .type = CONF_K_DURATION, .def = "\"10s\"", .min = 0, .max = DAY,
	  .off = TOP(limits_spacing_ms),
	  .doc = "Minimum time between the starts of two attempts to one destination domain (run and "
		 "probe --due only)." },
	{ .path = "limits.daily_budget", .type = CONF_K_INT, .def = "0", .min = 0, .max = 100000000,
	  .off = TOP(limits_daily_budget),
	  .doc = "Maximum attempts (retries included) started per destination domain per UTC day by "
		 "run and probe --due, counted across restarts through the journal; further ones "
		 "wait for the next UTC day. A manual probe is never held back by it, but its "
		 "attempts count when it holds the journal." },

	{ .path = "readback", .type = CONF_K_GROUP, .doc = "Reading the probe back over IMAP." },
	{ .path = "readback.timeout", .type = CONF_K_DURATION, .def = "\"30m\"", .min = SEC,
	  .max = WEEK, .off = TOP(readback_timeout_ms),
	  .doc = "Time after acceptance when a probe not found in the mailbox counts as missing. Polls: 1 s after acceptance, then 2, 4, 8 ... up to 60 s apart." },
	{ .path = "readback.late", .type = CONF_K_DURATION, .def = "\"24h\"", .min = 0,
	  .max = 4 * WEEK, .off = TOP(readback_late_ms),
	  .doc = "After a probe was reported missing, run and probe --due keep looking for it this "
		 "long after acceptance (every readback.timeout / 6, between 1 s and 5 min, on the "
		 "same polls as other probes of the mailbox); a late arrival (or bounce) is recorded "
		 "as a further result line with \"late\": true and cleaned up. 0 turns it off." },

	{ .path = "detail_log", .type = CONF_K_GROUP,
	  .doc = "Rotation of the detail log, state_dir/results.jsonl (one JSON line per probe result). "
		 "Before a line is written, results.jsonl becomes results.jsonl.1 (.1 becomes .2, and so "
		 "on; the oldest beyond keep is removed) when the line would take it past max_size, or with "
		 "daily when it was last written on an earlier day (UTC). `status` reads results.jsonl and "
		 "results.jsonl.1." },
	{ .path = "detail_log.max_size", .type = CONF_K_INT, .def = "64", .min = 0, .max = 1048576,
	  .off = TOP(detail_max_mib),
	  .doc = "Largest size of results.jsonl in MiB before it is rotated; 0: no limit (leave rotation "
		 "to daily, or to logrotate with the installed logrotate file)." },
	{ .path = "detail_log.daily", .type = CONF_K_BOOL, .def = "false", .off = TOP(detail_daily),
	  .doc = "Also rotate at the first line of each new day (UTC), so that each file holds one day." },
	{ .path = "detail_log.keep", .type = CONF_K_INT, .def = "10", .min = 1, .max = 10000,
	  .off = TOP(detail_keep),
	  .doc = "Rotated files kept (results.jsonl.1 to results.jsonl.KEEP)." },

	{ .path = "alert", .type = CONF_K_GROUP, .doc = "The alert hook, run when a seed changes state." },
	{ .path = "alert.command", .type = CONF_K_STRING, .def_doc = "none (no alerts)",
	  .check = conf_check_nonempty, .off = TOP(alert_command),
	  .doc = "Command run (by /bin/sh -c) when a seed changes state between ok, degraded and failing, "
		 "only then, with the details in MAILCANARY_* environment variables (see ALERTS in "
		 "mailcanary(8)); a failing command is logged, never fatal." },
	{ .path = "alert.latency", .type = CONF_K_DURATION, .def = "\"10m\"", .min = SEC, .max = WEEK,
	  .off = TOP(alert_latency_ms),
	  .doc = "A delivery slower than this makes the seed degraded (as a deferral or junk placement does)." },
	{ .path = "alert.failing_after", .type = CONF_K_INT, .def = "3", .min = 1, .max = 1000,
	  .off = TOP(alert_failing_after),
	  .doc = "Consecutive failed probes (rejected, failed, unknown, missing, bounced, readback error) "
		 "before a seed is reported as failing; fewer make it degraded." },
	{ .path = "alert.timeout", .type = CONF_K_DURATION, .def = "\"10s\"", .min = SEC, .max = HOUR,
	  .off = TOP(alert_timeout_ms),
	  .doc = "Longest run of one alert.command: one still running then gets SIGTERM (its process group), "
		 "and SIGKILL 2 s later; logged. The command runs beside the probes, never blocking them; "
		 "changes of state that come meanwhile wait their turn (in order per seed)." },
	{ .path = "alert.aberrations", .type = CONF_K_BOOL, .def = "true", .off = TOP(alert_aberrations),
	  .doc = "Count a Holt-Winters aberration of the seed's RRD file (a 1 in its FAILURES archive for "
		 "delivery or total SMTP time, read after each update) as degraded. Needs rrd = true and a "
		 "schedule with Holt-Winters archives (see RRD FILES in mailcanary(8)); with rrdcached each "
		 "check makes the daemon write that file first." },

	{ .path = "graph_dir", .type = CONF_K_STRING, .flags = CONF_F_PATH,
	  .def_doc = "none (the daemon draws no graphs)", .check = conf_check_nonempty, .off = TOP(graph_dir),
	  .doc = "Directory where run redraws the graphs and the dashboard every graph_every, as "
		 "\"mailcanary graph --out graph_dir\" with the same configuration file and -v flags, in a child "
		 "process (librrd's drawing is not thread-safe). At most one such child runs at a time: a refresh "
		 "that comes due while the previous one still runs is skipped and logged. Each refresh logs one "
		 "line (event=graph-refresh) with its exit status and duration; a failure never stops the "
		 "daemon. probe and probe --due do not use it." },
	{ .path = "graph_every", .type = CONF_K_DURATION, .def = "\"5m\"", .min = 5 * SEC, .max = DAY,
	  .off = TOP(graph_every_ms),
	  .doc = "How often the daemon redraws the graphs and the dashboard into graph_dir (in a child "
		 "process); the first time a second after it starts. Without graph_dir it has no effect." },

	{ .path = "senders", .type = CONF_K_GROUPLIST, .flags = CONF_F_HASPOS,
	  .off = TOP(senders), .off_n = TOP(n_senders), .elem_size = sizeof(struct conf_sender),
	  .pos_off = SND(pos), .doc = "Ways of sending probes: one group per sender." },
	{ .path = "senders.[].name", .type = CONF_K_STRING, .flags = CONF_F_REQUIRED,
	  .check = conf_check_name, .off = SND(name),
	  .doc = "Unique name, used by seeds (letters, digits, '.', '_', '-')." },
	{ .path = "senders.[].mode", .type = CONF_K_ENUM, .def = "\"mx\"", .choices = mode_choices,
	  .off = SND(mode),
	  .doc = "\"mx\": deliver directly to the MX hosts of each seed's domain; \"relay\": submit "
		 "through host." },
	{ .path = "senders.[].host", .type = CONF_K_STRING, .def_doc = "none (required in relay mode)",
	  .check = conf_check_host, .off = SND(host),
	  .doc = "Relay host name or address (relay mode only)." },
	{ .path = "senders.[].port", .type = CONF_K_INT, .def_doc = "25 in mx mode, 587 in relay mode",
	  .min = 1, .max = 65535, .off = SND(port),
	  .doc = "Server port. In mx mode it replaces 25 for every MX (test labs)." },
	{ .path = "senders.[].helo", .type = CONF_K_STRING, .def_doc = "this host's name (gethostname())",
	  .check = conf_check_helo, .off = SND(helo),
	  .doc = "EHLO name: a host name or an address literal such as \"[192.0.2.25]\"." },
	{ .path = "senders.[].mail_from", .type = CONF_K_STRING, .flags = CONF_F_REQUIRED,
	  .check = conf_check_address, .off = SND(mail_from),
	  .doc = "Envelope sender (local@domain), also used in the From: header." },
	{ .path = "senders.[].tls", .type = CONF_K_ENUM, .def = "\"opportunistic\"",
	  .choices = tls_choices, .off = SND(tls),
	  .doc = "STARTTLS: \"none\" never; \"opportunistic\" when offered, certificate checked and "
		 "reported but not enforced (as MTAs do); \"required\" or fail." },
	{ .path = "senders.[].tls_verify", .type = CONF_K_BOOL, .def = "true", .off = SND(tls_verify),
	  .doc = "With tls = \"required\": refuse a certificate (or name) that does not verify." },
	{ .path = "senders.[].ca_file", .type = CONF_K_STRING, .flags = CONF_F_PATH,
	  .def_doc = "none (the system trust store)", .check = conf_check_readable_file,
	  .off = SND(ca_file), .doc = "PEM file of the CA certificates to trust; must be readable." },
	{ .path = "senders.[].source_ip", .type = CONF_K_STRING, .def_doc = "none (the kernel's choice)",
	  .check = conf_check_ip, .off = SND(source_ip),
	  .doc = "Local IPv4 or IPv6 address to send from." },
	{ .path = "senders.[].username", .type = CONF_K_STRING, .def_doc = "none (no AUTH)",
	  .check = conf_check_nonempty, .off = SND(username),
	  .doc = "SMTP AUTH user; needs exactly one of password_file and password_env." },
	{ .path = "senders.[].password_file", .type = CONF_K_STRING, .flags = CONF_F_PATH,
	  .def_doc = "none", .check = conf_check_secret_file, .off = SND(password_file),
	  .doc = "File holding the SMTP AUTH password (one trailing newline is ignored); a regular "
		 "file of mode 0600 or 0400." },
	{ .path = "senders.[].password_env", .type = CONF_K_STRING, .def_doc = "none",
	  .check = conf_check_envname, .off = SND(password_env),
	  .doc = "Name of the environment variable holding the SMTP AUTH password." },
	{ .path = "senders.[].headers", .type = CONF_K_STRLIST, .def = "[]",
	  .check = conf_check_header, .off = SND(headers), .off_n = SND(n_headers),
	  .doc = "Extra \"Name: value\" header lines for this sender's probes (not Date, From, To, "
		 "Subject, Message-ID, MIME-Version or X-Mailcanary-Token)." },
	{ .path = "senders.[].dkim_selectors", .type = CONF_K_STRLIST, .def = "[]",
	  .check = conf_check_dkim_selector, .off = SND(dkim_selectors), .off_n = SND(n_dkim_selectors),
	  .doc = "DKIM selectors this sender's mail is signed with: the dns command checks that a "
		 "parseable key is published at SELECTOR._domainkey.DOMAIN of the mail_from domain "
		 "(check dkim:SELECTOR). mailcanary does not sign its probes itself." },

	{ .path = "senders.[].bounce_imap", .type = CONF_K_GROUP, .flags = CONF_F_HASPOS | CONF_F_HASSET,
	  .pos_off = SND(bounce_imap.pos), .set_off = SND(bounce_imap.set),
	  .def_doc = "none (bounces are not watched)",
	  .doc = "The IMAP account of mail_from, where the bounces of this sender's probes arrive. "
		 "Each accepted probe is also looked for there until readback.timeout: a delivery "
		 "status notification (RFC 3464) that returns the probe's verified token is recorded "
		 "(action, status, remote MTA, diagnostic, the remote stage) and deleted; \"failed\" "
		 "ends the readback with status \"bounced\". Mostly for relay mode, where the "
		 "target's refusal is only seen by the smarthost. Other messages are never touched." },
	{ .path = "senders.[].bounce_imap.url", .type = CONF_K_STRING, .flags = CONF_F_REQUIRED,
	  .check = conf_check_imap_url, .off = SND(bounce_imap.url),
	  .doc = "As seeds.[].imap.url." },
	{ .path = "senders.[].bounce_imap.username", .type = CONF_K_STRING, .flags = CONF_F_REQUIRED,
	  .check = conf_check_nonempty, .off = SND(bounce_imap.username),
	  .doc = "IMAP login; needs exactly one of password_file and password_env." },
	{ .path = "senders.[].bounce_imap.password_file", .type = CONF_K_STRING, .flags = CONF_F_PATH,
	  .def_doc = "none", .check = conf_check_secret_file, .off = SND(bounce_imap.password_file),
	  .doc = "File holding the IMAP password; a regular file of mode 0600 or 0400." },
	{ .path = "senders.[].bounce_imap.password_env", .type = CONF_K_STRING, .def_doc = "none",
	  .check = conf_check_envname, .off = SND(bounce_imap.password_env),
	  .doc = "Name of the environment variable holding the IMAP password." },
	{ .path = "senders.[].bounce_imap.ca_file", .type = CONF_K_STRING, .flags = CONF_F_PATH,
	  .def_doc = "none (the system trust store)", .check = conf_check_readable_file,
	  .off = SND(bounce_imap.ca_file), .doc = "PEM file of the CA certificates to trust." },
	{ .path = "senders.[].bounce_imap.cleanup", .type = CONF_K_STRING, .def = "\"delete\"",
	  .check = conf_check_cleanup, .off = SND(bounce_imap.cleanup),
	  .doc = "What happens to a matched bounce: as seeds.[].imap.cleanup." },
	{ .path = "senders.[].bounce_imap.source_ip", .type = CONF_K_STRING,
	  .def_doc = "none (the kernel's choice)", .check = conf_check_ip, .off = SND(bounce_imap.source_ip),
	  .doc = "Local address the IMAP connection is made from." },

	{ .path = "seeds", .type = CONF_K_GROUPLIST, .flags = CONF_F_HASPOS,
	  .off = TOP(seeds), .off_n = TOP(n_seeds), .elem_size = sizeof(struct conf_seed),
	  .pos_off = SEED(pos), .doc = "Seed mailboxes probed: one group per seed." },
	{ .path = "seeds.[].name", .type = CONF_K_STRING, .flags = CONF_F_REQUIRED,
	  .check = conf_check_name, .off = SEED(name),
	  .doc = "Unique name, also the RRD file name (letters, digits, '.', '_', '-')." },
	{ .path = "seeds.[].address", .type = CONF_K_STRING, .flags = CONF_F_REQUIRED,
	  .check = conf_check_address, .off = SEED(address),
	  .doc = "Recipient address of the probes (local@domain)." },
	{ .path = "seeds.[].sender", .type = CONF_K_STRING, .flags = CONF_F_REQUIRED,
	  .check = conf_check_name, .off = SEED(sender_name),
	  .doc = "Name of the sender that probes this seed." },
	{ .path = "seeds.[].schedule", .type = CONF_K_STRING, .def = "\"hourly\"",
	  .check = conf_schedule_check, .off = SEED(schedule),
	  .doc = "When run and probe --due probe the seed: \"hourly\", \"daily\", \"weekly\", "
		 "\"every DURATION\" (whole seconds, at least 1s; e.g. \"every 15m\") or "
		 "\"cron MIN HOUR DAY MONTH WEEKDAY\" (e.g. \"cron 0 6 * * 1-5\"; when both day "
		 "fields are restricted, either may match). Times are UTC, aligned to the Unix epoch "
		 "and shifted by an offset derived from the seed's name that spreads seeds over the "
		 "interval (cron: 0 to 59 s after the minute), so \"daily\" is not midnight. A seed "
		 "not probed before is probed at once, then on its schedule; a slot missed while "
		 "nothing ran is made up once." },
	{ .path = "seeds.[].imap", .type = CONF_K_GROUP, .flags = CONF_F_HASPOS | CONF_F_HASSET,
	  .pos_off = SEED(imap.pos), .set_off = SEED(imap.set),
	  .def_doc = "none (no readback)",
	  .doc = "The seed's IMAP account, to read the probes back. Without it readback is skipped." },
	{ .path = "seeds.[].imap.url", .type = CONF_K_STRING, .flags = CONF_F_REQUIRED,
	  .check = conf_check_imap_url, .off = SEED(imap.url),
	  .doc = "\"imap://host[:port]/\" (STARTTLS, required) or \"imaps://host[:port]/\" (TLS from the start); the certificate is verified against ca_file or the system store." },
	{ .path = "seeds.[].imap.username", .type = CONF_K_STRING, .flags = CONF_F_REQUIRED,
	  .check = conf_check_nonempty, .off = SEED(imap.username),
	  .doc = "IMAP login; needs exactly one of password_file and password_env." },
	{ .path = "seeds.[].imap.password_file", .type = CONF_K_STRING, .flags = CONF_F_PATH,
	  .def_doc = "none", .check = conf_check_secret_file, .off = SEED(imap.password_file),
	  .doc = "File holding the IMAP password; a regular file of mode 0600 or 0400." },
	{ .path = "seeds.[].imap.password_env", .type = CONF_K_STRING, .def_doc = "none",
	  .check = conf_check_envname, .off = SEED(imap.password_env),
	  .doc = "Name of the environment variable holding the IMAP password." },
	{ .path = "seeds.[].imap.ca_file", .type = CONF_K_STRING, .flags = CONF_F_PATH,
	  .def_doc = "none (the system trust store)", .check = conf_check_readable_file,
	  .off = SEED(imap.ca_file), .doc = "PEM file of the CA certificates to trust." },
	{ .path = "seeds.[].imap.cleanup", .type = CONF_K_STRING, .def = "\"delete\"",
	  .check = conf_check_cleanup, .off = SEED(imap.cleanup),
	  .doc = "What happens to a probe once read back: \"delete\" (UID STORE \\Deleted, then UID "
		 "EXPUNGE of that UID when the server has UIDPLUS; else it stays flagged), \"keep\" "
		 "(for audits) or \"move:FOLDER\" (UID MOVE). Other messages are never touched." },
	{ .path = "seeds.[].imap.source_ip", .type = CONF_K_STRING, .def_doc = "none (the kernel's choice)",
	  .check = conf_check_ip, .off = SEED(imap.source_ip),
	  .doc = "Local address the IMAP connection is made from." },
	{ .path = "seeds.[].imap.authserv_id", .type = CONF_K_STRING, .def_doc = "none (the topmost "
	  "Authentication-Results field)", .check = conf_check_nonempty, .off = SEED(imap.authserv_id),
	  .doc = "The receiver's authserv-id: only Authentication-Results fields with it are trusted "
		 "(RFC 8601 section 5)." },
	{ .path = "seeds.[].expect_folder", .type = CONF_K_STRING, .def = "\"INBOX\"",
	  .check = conf_check_folder, .off = SEED(expect_folder),
	  .doc = "Folder the probe should arrive in: \"INBOX\", \"Junk\" or \"Spam\" (the junk folder, found by SPECIAL-USE or its usual names) or a folder name; finding it elsewhere is a placement finding (exit status 1)." },
	{ .path = "seeds.[].headers", .type = CONF_K_STRLIST, .def = "[]",
	  .check = conf_check_header, .off = SEED(headers), .off_n = SEED(n_headers),
	  .doc = "Extra \"Name: value\" header lines for this seed's probes, after the sender's." },
};

const size_t conf_schema_len = sizeof conf_schema / sizeof conf_schema[0];

const struct conf_key *conf_schema_find(const char *path)
{
	for (size_t i = 0; i < conf_schema_len; i++)
		if (strcmp(conf_schema[i].path, path) == 0)
			return &conf_schema[i];
	return NULL;
}

const char *conf_key_name(const struct conf_key *k)
{
	const char *dot = strrchr(k->path, '.');
	return dot ? dot + 1 : k->path;
}

bool conf_key_is_child(const struct conf_key *k, const char *parent)
{
	size_t n = strlen(parent);
	const char *rest;

	if (n == 0)
		rest = k->path;
	else if (strncmp(k->path, parent, n) == 0 && k->path[n] == '.')
		rest = k->path + n + 1;
	else
		return false;
	return *rest && strchr(rest, '.') == NULL;
}

/* ---- documentation ---- */

static const char *type_word(const struct conf_key *k)
{
	switch (k->type) {
	case CONF_K_STRING: return (k->flags & CONF_F_PATH) ? "file name" : "string";
	case CONF_K_INT: return "integer";
	case CONF_K_BOOL: return "boolean";
	case CONF_K_DURATION: return "duration";
	case CONF_K_STRLIST: return "list of strings";
	case CONF_K_DURLIST: return "list of durations";
	case CONF_K_ENUM: return "string";
	case CONF_K_GROUP: return "group { ... }";
	case CONF_K_GROUPLIST: return "list of groups ( { ... }, ... )";
	}
	return "?";
}

/* One line: type, range, choices, default or "required". */
static void key_describe(const struct conf_key *k, struct strbuf *sb)
{
	char a[32], b[32];

	sb_append(sb, type_word(k));
	switch (k->type) {
	case CONF_K_INT:
		sb_appendf(sb, ", %lld to %lld", (long long)k->min, (long long)k->max);
		break;
	case CONF_K_DURATION:
		sb_appendf(sb, ", %s to %s", duration_format(k->min, a, sizeof a),
			   duration_format(k->max, b, sizeof b));
		break;
	case CONF_K_DURLIST:
		sb_appendf(sb, ", each %s to %s", duration_format(k->min, a, sizeof a),
			   duration_format(k->max, b, sizeof b));
		break;
	case CONF_K_ENUM:
		sb_append(sb, ", one of");
		for (const struct conf_choice *c = k->choices; c->name; c++)
			sb_appendf(sb, "%s \"%s\"", c == k->choices ? "" : ",", c->name);
		break;
	default:
		break;
	}
	if (k->flags & CONF_F_REQUIRED)
		sb_append(sb, "; required");
	else if (k->def)
		sb_appendf(sb, "; default %s", k->def);
	else if (k->def_doc)
		sb_appendf(sb, "; default: %s", k->def_doc);
	else if (k->type != CONF_K_GROUP && k->type != CONF_K_GROUPLIST)
		sb_append(sb, "; optional");
	sb_append(sb, ".");
}

/* Writes text word-wrapped to width columns, each line starting with prefix. */
static void wrap(FILE *fp, const char *prefix, const char *text, size_t width)
{
	const char *p = text;
	size_t plen = strlen(prefix);

	while (*p) {
		size_t col = plen, n = 0, last_space = 0;
		while (p[n] && (col + n < width || last_space == 0)) {
			if (p[n] == ' ')
				last_space = n;
			n++;
		}
		if (!p[n])
			last_space = n;
		fprintf(fp, "%s%.*s\n", prefix, (int)last_space, p);
		p += last_space;
		while (*p == ' ')
			p++;
	}
}

/* Visits the keys under pattern in documentation order: the plain settings first, then each
 * group or list of groups followed by its own keys (so a group's keys are never separated by a
 * setting of its parent). */
static void schema_visit(const char *pattern, void (*fn)(const struct conf_key *, void *), void *arg)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < conf_schema_len; i++) {
			const struct conf_key *k = &conf_schema[i];
			bool group = k->type == CONF_K_GROUP || k->type == CONF_K_GROUPLIST;
			if (!conf_key_is_child(k, pattern) || group != (pass == 1))
				continue;
			fn(k, arg);
			if (k->type == CONF_K_GROUP) {
				schema_visit(k->path, fn, arg);
			} else if (k->type == CONF_K_GROUPLIST) {
				struct strbuf sub;
				sb_init(&sub);
				sb_appendf(&sub, "%s.[]", k->path);
				schema_visit(sub.s, fn, arg);
				sb_fini(&sub);
			}
		}
	}
}

static void doc_key(const struct conf_key *k, void *arg)
{
	FILE *fp = arg;
	struct strbuf sb;

	sb_init(&sb);
	key_describe(k, &sb);
	fprintf(fp, "#\n# %s\n", k->path);
	wrap(fp, "#     ", sb.s, 76);
	wrap(fp, "#     ", k->doc, 76);
	sb_fini(&sb);
}

void conf_schema_doc(FILE *fp)
{
	fputs("# =====================================================================\n"
	      "# Reference: every setting (generated from the schema in conf/schema.c\n"
	      "# by conf_schema_doc; do not edit this part by hand)\n"
	      "# =====================================================================\n"
	      "#\n"
	      "# \"senders.[].port\" means the port setting of each group in the senders\n"
	      "# list. Durations are strings of numbers with units: ms, s, m, h, d, w\n"
	      "# (\"90s\", \"1h30m\"). Relative file names are taken relative to the\n"
	      "# directory of the main configuration file. A required setting must be\n"
	      "# given in every group that is present.\n", fp);
	schema_visit("", doc_key, fp);
}

/* roff text: escape backslashes and hyphens, protect a leading '.' or '\''. */
static void man_text(FILE *fp, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", fp);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", fp);
		else if (*s == '-')
			fputs("\\-", fp);
		else
			fputc(*s, fp);
	}
}

static void man_key(const struct conf_key *k, void *arg)
{
	FILE *fp = arg;
	struct strbuf sb;

	sb_init(&sb);
	key_describe(k, &sb);
	if (k->type == CONF_K_GROUP || k->type == CONF_K_GROUPLIST) {
		fputs(".SS ", fp);
		man_text(fp, k->path);
		fputs("\n", fp);
		man_text(fp, sb.s);
		fputs("\n", fp);
		man_text(fp, k->doc);
		fputs("\n", fp);
	} else {
		fputs(".TP\n.B ", fp);
		man_text(fp, k->path);
		fputs("\n", fp);
		man_text(fp, sb.s);
		fputs("\n.br\n", fp);
		man_text(fp, k->doc);
		fputs("\n", fp);
	}
	sb_fini(&sb);
}

void conf_schema_man(FILE *fp)
{
	fputs(".SS Top\\-level settings\n", fp);
	schema_visit("", man_key, fp);
}
