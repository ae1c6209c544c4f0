/* diagnose: the likely cause of a probe's outcome and the next step, from one table of rules.
 *
 * A rule matches on what a result says (outcome, stage, reply code, enhanced code, the wording
 * of the reply, of the error or of a warning) and on what is known about the sending side (DNS
 * findings such as a missing PTR or a DNSBL listing, filled in by the caller). The first rule
 * that matches wins, so the table is ordered most specific first; the last rules catch every
 * outcome, so every result gets a diagnosis. The table is data (diag_rules in diagnose.c),
 * documented in mailcanary(8), section DIAGNOSIS, by diag-tool (target diag-docs).
 *
 * Readback outcomes (missing, junk, misplaced, a bounce from a smarthost) go through the same
 * table (diagnose_readback), and diagnose_round() looks across the seeds of one round: one
 * provider refusing while the others accept, or every provider refusing. */
#ifndef MON_PROBE_DIAGNOSE_H
#define MON_PROBE_DIAGNOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "json.h"
#include "result.h"

/* What is diagnosed: an SMTP outcome (the enum probe_outcome values) or a readback outcome. */
enum diag_outcome {
	DIAG_ACCEPTED = OUTCOME_ACCEPTED,
	DIAG_DEFERRED = OUTCOME_DEFERRED,
	DIAG_REJECTED = OUTCOME_REJECTED,
	DIAG_FAILED = OUTCOME_FAILED,
	DIAG_UNKNOWN = OUTCOME_UNKNOWN,
	DIAG_FOUND,     /* read back in the expected folder */
	DIAG_MISPLACED, /* read back in another folder that is not junk */
	DIAG_JUNK,      /* read back in the junk folder */
	DIAG_MISSING,   /* not found within readback.timeout */
	DIAG_RB_ERROR,  /* the readback itself failed (IMAP) */
	DIAG__OUTCOMES,
};

/* "deferred", "junk", ... ("none" for anything else). */
const char *diag_outcome_name(enum diag_outcome o);

/* What is known about the sending side: DIAG_F_* bits. Unset bits mean "passed or not
 * checked"; with no findings at all (flags 0, or a NULL pointer) only the rules without a
 * findings condition can match. */
enum {
	DIAG_F_PTR_MISSING = 1u << 0,       /* the sending IP has no PTR record */
	DIAG_F_FCRDNS_FAIL = 1u << 1,       /* its PTR name does not resolve back to it */
	DIAG_F_HELO_UNRESOLVABLE = 1u << 2, /* the EHLO name does not resolve (to the sending IP) */
	DIAG_F_SPF_FAIL = 1u << 3,          /* the envelope domain's SPF does not authorise the IP */
	DIAG_F_DKIM_FAIL = 1u << 4,         /* no valid DKIM signature (no key, fail, or unsigned) */
	DIAG_F_DMARC_FAIL = 1u << 5,        /* no DMARC policy, or DMARC fails */
	DIAG_F_DNSBL_LISTED = 1u << 6,      /* the sending IP is listed on a DNS blocklist */
	DIAG_F_RETRIED = 1u << 7,           /* set by diagnose() itself: attempt > 1 */
	DIAG_F__COUNT = 8,
};

struct diag_findings {
	unsigned flags;        /* DIAG_F_* */
	char dnsbl_zone[128];  /* DIAG_F_DNSBL_LISTED: the (first) zone that lists the sending IP */
};

/* The name of one DIAG_F_* bit ("ptr_missing", ...; the man page's names), or NULL. */
const char *diag_finding_name(unsigned bit);
/* Records one check of the `dns --json` contract (DESIGN.md; dnscheck.h's items: name "ptr",
 * "fcrdns", "helo", "spf", "dmarc", "dkim:SELECTOR", "dnsbl:ZONE", or the recipient side's "mx",
 * "mx_time", "mx_port" and "spf_align", which set nothing; status "pass", "warn", "fail" or
 * "error"): a "fail" sets the matching bit (and, for the first listing DNSBL, dnsbl_zone).
 * Returns 0, or -1 for a check name it does not know (nothing set). Borrows name and status. */
int diag_findings_add_check(struct diag_findings *f, const char *name, const char *status);
/* Records the receiver's Authentication-Results verdicts of a read-back probe (readback.auth:
 * "pass", "fail", "softfail", "none", ...; NULL or "" unknown): spf fail/softfail/permerror sets
 * DIAG_F_SPF_FAIL, dkim fail/permerror/none DIAG_F_DKIM_FAIL, dmarc fail/none DIAG_F_DMARC_FAIL. */
void diag_findings_add_auth(struct diag_findings *f, const char *spf, const char *dkim, const char *dmarc);

/* The findings of a result's DNS checks (r->dns, each check through diag_findings_add_check):
 * fills *buf and returns buf, or returns NULL when the result carries no DNS checks. Checks that
 * ended in an error set nothing. */
const struct diag_findings *diag_findings_of_result(const struct probe_result *r, struct diag_findings *buf);
/* The same from a result line (probe_result_json's text, e.g. the journal's copy): the checks of
 * its top-level "dns" member. Returns 0 with *f filled (zeroed first), or -1 when the line has no
 * readable "dns" member (f zeroed). Bounded: reads at most the line, nests at most 16 deep. */
int diag_findings_from_json(const char *json, struct diag_findings *f);

/* One rule of the table. Every condition given must hold; within a list any entry will do;
 * enhanced and text together are one condition: either an enhanced pattern or a word matches. */
#define DIAG_MAX_ENH 4
#define DIAG_MAX_TEXT 16
struct diag_rule {
	const char *id;          /* short and stable: the "rule" of the JSON diagnosis */
	unsigned outcomes;       /* DIAG_O() bits; 0 any */
	unsigned stages;         /* DIAG_S() bits; 0 any */
	int code;                /* the basic reply code; 0 any */
	/* Enhanced code patterns, NULL-terminated: "4.2.2" exact, "x.7.25" either class, "x.7.*"
	 * any detail. */
	const char *enhanced[DIAG_MAX_ENH];
	/* Lower-case words, NULL-terminated, looked for case-insensitively in the reply text and the
	 * error (and, for an accepted probe, its warnings). */
	const char *text[DIAG_MAX_TEXT];
	unsigned findings;       /* DIAG_F_* bits, any of which must be set; 0 none needed */
	/* What it means and what to do. Placeholders: {stage}, {code}, {enhanced}, {attempt},
	 * {folder}, {zone} (the DNSBL zone) and {findings} (the names of the findings that made
	 * the rule match). */
	const char *cause;
	const char *next_step;
};
#define DIAG_O(o) (1u << (unsigned)(o))
#define DIAG_S(s) (1u << (unsigned)((int)(s) + 1)) /* STAGE_NONE (-1) is bit 0 */

extern const struct diag_rule diag_rules[];
extern const size_t diag_n_rules;

/* What diagnose() looks at: plain fields, all borrowed, NULL taken as "". */
struct diag_input {
	enum diag_outcome outcome;
	enum probe_stage stage;
	int code;
	const char *enhanced;
	const char *text;
	const char *error;
	char *const *warnings;
	size_t n_warnings;
	int attempt;             /* 1-based; > 1 sets DIAG_F_RETRIED */
	const char *folder;      /* read back in this folder */
};

struct diagnosis {
	char rule[48];           /* the rule's id ("bounced." + id for a bounce) */
	char cause[512];
	char next_step[512];
	int row;                 /* index into diag_rules */
};

/* Diagnoses in, with what is known about the sending side (f may be NULL). Always fills out. */
void diagnose(const struct diag_input *in, const struct diag_findings *f, struct diagnosis *out);
/* The diagnosis of a probe result's deciding SMTP session (r->smtp and r->attempt). */
void diagnose_result(const struct probe_result *r, const struct diag_findings *f, struct diagnosis *out);

/* The end of a readback, in plain fields (all borrowed, NULL taken as ""). */
struct diag_readback {
	const char *status;            /* found | missing | bounced | skipped | error | pending */
	const char *folder;            /* found: where */
	bool junk;                     /* found in the junk folder */
	bool placement_ok;             /* found where expect_folder says */
	const char *spf, *dkim, *dmarc; /* found: the receiver's verdicts (readback.auth), "" unknown */
	const char *error;             /* missing/error: why */
	/* The latest bounce of the probe (readback.bounces), action "" when none. */
	const char *bounce_action;     /* failed | delayed */
	const char *bounce_status;     /* the DSN's Status, "5.1.1" */
	int bounce_code;               /* the remote server's reply code, 0 unknown */
	const char *bounce_enhanced;   /* its enhanced code, "" unknown (then bounce_status is used) */
	const char *bounce_stage;      /* where the remote refused (probe_stage_name), "" or "unknown" */
	const char *bounce_diagnostic; /* the Diagnostic-Code text */
	int attempt;
};
/* The diagnosis of a readback's end: fills out and returns 0, or returns -1 when the readback
 * adds nothing to the SMTP diagnosis (pending, or skipped without a bounce). A failed bounce (or
 * a delayed one while the probe is missing) is diagnosed as the remote server's reply, its rule
 * prefixed "bounced.". f: the DNS findings or NULL; the receiver's verdicts are added to them. */
int diagnose_readback(const struct diag_readback *rb, const struct diag_findings *f, struct diagnosis *out);

/* Writes the diagnosis as the JSON object {"cause":…,"next_step":…,"rule":…}. */
void diagnosis_json(struct json *j, const struct diagnosis *d);
/* A copy of the result line json (one object of probe_result_json) whose top-level
 * "diagnosis" member is d (appended when it has none). Returns owned. */
char *diagnosis_replace_json(const char *json, const struct diagnosis *d);

/* ---- across the seeds of one round ---- */

struct diag_round_item {
	const char *provider;    /* the destination: the seed address's domain */
	enum probe_outcome outcome;
	enum probe_stage stage;
};

struct diag_round_verdict {
	char rule[32];           /* round.provider | round.sender | round.unreachable */
	char cause[768];
	char next_step[512];
};

/* Looks across the latest outcomes of one round's probes. A provider refuses when one of its
 * probes was not accepted. With at least two providers: some refuse while others accept ->
 * round.provider; all refuse -> round.sender, or round.unreachable when none was even reached
 * (failed at dns or connect). Fills out and returns 0, or returns -1 when there is nothing to say
 * (fewer than two providers, or every probe accepted). */
int diagnose_round(const struct diag_round_item *items, size_t n, struct diag_round_verdict *out);

/* A round in progress: the latest outcome per probe id (a retry replaces its earlier attempt). */
struct diag_round;
/* Returns owned; diag_round_free(NULL) does nothing. */
struct diag_round *diag_round_new(void);
void diag_round_free(struct diag_round *rd);
/* Records (or, for a probe id seen before, replaces) a probe's latest outcome; copies the
 * strings. */
void diag_round_add(struct diag_round *rd, const char *probe_id, const char *provider, enum probe_outcome outcome,
		    enum probe_stage stage);
/* diagnose_round() over what was added. */
int diag_round_verdict(const struct diag_round *rd, struct diag_round_verdict *out);

/* ---- documentation ---- */

/* The table as roff lines for mailcanary(8) (between its GENERATED DIAGNOSIS markers). */
void diag_rules_man(FILE *fp);

#endif
