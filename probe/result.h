/* The value-type result of one probe, and its JSON form (the DESIGN.md contract). */
#ifndef MON_PROBE_RESULT_H
#define MON_PROBE_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

struct json;

enum probe_outcome {
	OUTCOME_NONE = 0, /* not decided yet */
	OUTCOME_ACCEPTED,
	OUTCOME_DEFERRED,
	OUTCOME_REJECTED,
	OUTCOME_FAILED,
	OUTCOME_UNKNOWN,
};

enum probe_stage {
	STAGE_DNS = 0,
	STAGE_CONNECT,
	STAGE_BANNER,
	STAGE_EHLO,
	STAGE_STARTTLS,
	STAGE_AUTH,
	STAGE_MAIL,
	STAGE_RCPT,
	STAGE_DATA,
	STAGE_EOD,
	STAGE__COUNT,
	STAGE_NONE = -1,
};

const char *probe_outcome_name(enum probe_outcome o);
const char *probe_stage_name(enum probe_stage s);
/* The inverse of the two above: OUTCOME_NONE / STAGE_NONE for NULL or a name they never give. */
enum probe_outcome probe_outcome_from_name(const char *name);
enum probe_stage probe_stage_from_name(const char *name);

struct stage_times {
	double ms[STAGE__COUNT];       /* milliseconds per stage */
	bool present[STAGE__COUNT];    /* stage happened (even if it failed) */
	double total_ms;
};

/* One SMTP session with one MX address. */
struct smtp_try {
	enum probe_outcome outcome;
	enum probe_stage stage;
	int code;                /* 0 when no reply decided it */
	char enhanced[16];       /* "" when absent */
	char text[512];          /* reply text (multi-line replies joined with a space); "" when absent */
	char error[256];         /* failed/unknown: what went wrong locally; "" otherwise */
	char mx[256];            /* host name tried ("" in relay mode with an IP) */
	char ip[64];
	int port;
	int64_t at_ms;           /* wall clock when the try started */
	struct stage_times t;
	char tls_version[32];    /* "" without TLS */
	char tls_cipher[96];
	bool tls_verified;
	char local_ip[64];       /* our side of the connection, "" when not connected */
	char **warnings;         /* owned */
	size_t n_warnings;
	char **transcript;       /* owned: "+12.345 > EHLO x" lines, credentials redacted */
	size_t n_transcript;
};

/* One DNS trust check of the sending identity (an item of probe/dnscheck.h, as `dns --json`
 * writes it). */
struct probe_dns_check {
	char *name;              /* owned: "ptr", "fcrdns", "helo", "spf", "dkim:SEL", "dnsbl:ZONE", ... */
	char status[8];          /* pass | warn | fail | error */
	char *detail;            /* owned: the evidence */
};

/* The DNS checks of the sending identity behind a result (the scheduler runs them per identity,
 * dns.probe_checks, and shares them for dns.checks_ttl). */
struct probe_dns {
	char ip[64];             /* the sending IP checked; "" when unknown */
	char ip_from[16];        /* "local_ip" (the SMTP session's), "source_ip", or "" (unknown) */
	bool cached;             /* the run was another probe's (shared, or within dns.checks_ttl) */
	int64_t checked_at_ms;   /* wall clock when the run ended */
	double ms;               /* how long the run took */
	struct probe_dns_check *checks; /* owned, in the order of `dns --json` */
	size_t n_checks;
};

struct probe_result {
	char seed[128];
	char vantage[64];
	char probe_id[40];
	char token[128];         /* value of the probe's token header */
	char mode[8];            /* "mx" | "relay" */
	int64_t sent_at_ms;      /* wall clock at probe start */
	struct smtp_try smtp;    /* the deciding try (last one) */
	struct smtp_try *tries;  /* every MX/address tried, in order, the last equal to smtp */
	size_t n_tries;
	char **mx_hosts;         /* MX host names in preference order (mx mode) */
	size_t n_mx_hosts;
	double dns_ms;
	double total_ms;         /* from attempt start (including DNS and failed tries) to decision */
	int64_t attempt_at_ms;   /* wall clock when this attempt started (sent_at_ms: the first's) */

	/* Set by the scheduler around the attempt (defaults from probe_result_init). */
	int attempt;             /* 1-based number of this attempt */
	char *prev_attempts;     /* owned: the earlier attempts as JSON objects joined by ','; NULL none */
	bool final;              /* default true; false while a retry or the readback is pending */
	char *readback_json;     /* owned: the readback object; NULL: {"status":"skipped"} */
	int64_t retry_at_ms;     /* !final: when the next attempt is due */
	int64_t due_ms;          /* when this attempt was due (0: run at once, no schedule) */
	unsigned waited_for;     /* PROBE_WAITED_* bits: limits that delayed the start */
	struct probe_dns *dns;   /* owned: the sending identity's DNS checks; NULL: none (not run) */
};

/* Why an attempt started later than it was due (limits of DESIGN.md's limits group). */
enum {
	PROBE_WAITED_IN_FLIGHT = 1,
	PROBE_WAITED_PER_DOMAIN = 2,
	PROBE_WAITED_SPACING = 4,
	PROBE_WAITED_DAILY_BUDGET = 8,
};

void smtp_try_init(struct smtp_try *t);
void smtp_try_fini(struct smtp_try *t);
void smtp_try_add_warning(struct smtp_try *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Deep copy: dst must be uninitialised or finalised. */
void smtp_try_copy(struct smtp_try *dst, const struct smtp_try *src);

void probe_result_init(struct probe_result *r);
void probe_result_fini(struct probe_result *r);
/* dst takes everything src owns; src is left initialised (empty). dst must be uninitialised or
 * finalised. */
void probe_result_move(struct probe_result *dst, struct probe_result *src);

/* Returns an owned empty record; probe_dns_free(NULL) does nothing. */
struct probe_dns *probe_dns_new(void);
void probe_dns_free(struct probe_dns *d);
/* Returns an owned deep copy. */
struct probe_dns *probe_dns_copy(const struct probe_dns *d);
/* Appends one check (strings copied; status one of pass warn fail error). */
void probe_dns_add(struct probe_dns *d, const char *name, const char *status, const char *detail);
/* Writes the object {"ip":…,"ip_from":…,"checked_at":…,"ms":…,"cached":…,"checks":[{"name",
 * "status","detail"},…]} (the result's "dns" member; "ip" and "ip_from" only when known). */
void probe_dns_json(const struct probe_dns *d, struct json *j);

/* Appends the result as one JSON object (no newline). with_transcript adds smtp.transcript. */
void probe_result_json(const struct probe_result *r, struct strbuf *out, bool with_transcript);
/* Appends this attempt as the JSON object smtp.attempts holds (for the journal of retries). */
void probe_attempt_json(const struct probe_result *r, struct strbuf *out);
/* Seconds from the first attempt's start to this attempt's acceptance; < 0 if not accepted. */
double probe_accepted_after_s(const struct probe_result *r);

#endif
