/* The alert state machine (see alert_rules.h). */
#include "alert_rules.h"

#include <string.h>

static const char *const state_names[ALERT_STATE__COUNT] = {
	[ALERT_OK] = "ok",
	[ALERT_DEGRADED] = "degraded",
	[ALERT_FAILING] = "failing",
};

const char *alert_state_name(enum alert_state s)
{
	return (unsigned)s < ALERT_STATE__COUNT ? state_names[s] : NULL;
}

int alert_state_from_name(const char *name)
{
	for (int i = 0; i < ALERT_STATE__COUNT; i++)
		if (strcmp(state_names[i], name) == 0)
			return i;
	return -1;
}

enum alert_class alert_classify(enum alert_class own, unsigned aberrations)
{
	if (own == ALERT_CLEAN && (aberrations & (ALERT_ABERRATION_DELIVERY | ALERT_ABERRATION_TOTAL)))
		return ALERT_WARNING;
	return own;
}

enum alert_state alert_track_apply(struct alert_track *t, enum alert_class c, unsigned failing_after)
{
	enum alert_state old = t->state;
	switch (c) {
	case ALERT_CLEAN:
		t->fails = 0;
		t->state = ALERT_OK;
		break;
	case ALERT_WARNING:
		t->fails = 0;
		t->state = old == ALERT_FAILING ? ALERT_FAILING : ALERT_DEGRADED;
		break;
	case ALERT_FAILURE:
	default:
		if (t->fails < ~0u)
			t->fails++;
		t->state = old == ALERT_FAILING || t->fails >= (failing_after ? failing_after : 1) ? ALERT_FAILING
												 : ALERT_DEGRADED;
		break;
	}
	return t->state;
}

const char *alert_aberration_names(unsigned aberrations)
{
	switch (aberrations & (ALERT_ABERRATION_DELIVERY | ALERT_ABERRATION_TOTAL)) {
	case ALERT_ABERRATION_DELIVERY: return "delivery";
	case ALERT_ABERRATION_TOTAL: return "total";
	case ALERT_ABERRATION_DELIVERY | ALERT_ABERRATION_TOTAL: return "delivery total";
	default: return "";
	}
}

const char *alert_aberration_cause(unsigned aberrations)
{
	switch (aberrations & (ALERT_ABERRATION_DELIVERY | ALERT_ABERRATION_TOTAL)) {
	case ALERT_ABERRATION_DELIVERY: return "Holt-Winters aberration in delivery time";
	case ALERT_ABERRATION_TOTAL: return "Holt-Winters aberration in total SMTP time";
	case ALERT_ABERRATION_DELIVERY | ALERT_ABERRATION_TOTAL:
		return "Holt-Winters aberration in delivery time and total SMTP time";
	default: return NULL;
	}
}
