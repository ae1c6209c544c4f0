/* The alert state machine alone (no I/O): a seed's state from one final result's class, with
 * hysteresis, and the Holt-Winters aberrations a result may carry. Used by alerts.c; kept apart
 * so that the unit test (tests/unit/test_alerts.c) checks the rules table by table. */
#ifndef MON_CLI_ALERT_RULES_H
#define MON_CLI_ALERT_RULES_H

#include <stdbool.h>
#include <stddef.h>

enum alert_state { ALERT_OK = 0, ALERT_DEGRADED, ALERT_FAILING, ALERT_STATE__COUNT };

/* "ok", "degraded", "failing"; NULL out of range. */
const char *alert_state_name(enum alert_state s);
/* The state named, or -1. */
int alert_state_from_name(const char *name);

/* What one final result says about its seed. */
enum alert_class {
	ALERT_CLEAN = 0, /* accepted; read back where expected (or not read back), not slow, no aberration */
	ALERT_WARNING,   /* deferred, junk, misplaced, late, delivery above alert.latency, or an aberration */
	ALERT_FAILURE,   /* rejected, failed, unknown; readback missing, bounced or error */
};

/* Holt-Winters aberrations of a result (bits). */
enum {
	ALERT_ABERRATION_DELIVERY = 1u << 0, /* the FAILURES flag of the `delivery` data source */
	ALERT_ABERRATION_TOTAL = 1u << 1,    /* the FAILURES flag of `total` (SMTP time) */
};

/* A result's class: own is what the result itself says (CLEAN, WARNING or FAILURE from its
 * outcome, readback and delivery time); an aberration (aberrations != 0) makes a CLEAN result a
 * WARNING and leaves the others as they are (a failure stays a failure). */
enum alert_class alert_classify(enum alert_class own, unsigned aberrations);

/* A seed's state across results. */
struct alert_track {
	enum alert_state state; /* starts ALERT_OK */
	unsigned fails;         /* consecutive failures */
};

/* Applies one result: clean -> ok (also from failing); warning -> degraded, but failing stays
 * failing; failure -> one more consecutive failure: failing at failing_after, degraded before,
 * failing stays failing. Anything but a failure resets the count. Returns the new state (also
 * in t->state). */
enum alert_state alert_track_apply(struct alert_track *t, enum alert_class c, unsigned failing_after);

/* The aberrations in words for MAILCANARY_ABERRATION: "delivery", "total" or "delivery total";
 * "" for none. */
const char *alert_aberration_names(unsigned aberrations);
/* The cause given when an aberration is what made a clean result a warning, e.g. "Holt-Winters
 * aberration in total SMTP time". NULL for none. */
const char *alert_aberration_cause(unsigned aberrations);

#endif
