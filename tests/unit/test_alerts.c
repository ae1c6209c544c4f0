/* Unit tests: the alert state machine (cli/alert_rules.c): a result's class with and without a
 * Holt-Winters aberration, the transitions with hysteresis, table by table (got/want), and the
 * names and causes the command gets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "alert_rules.h"

static const char *class_name(enum alert_class c)
{
	return c == ALERT_CLEAN ? "clean" : c == ALERT_WARNING ? "warning" : "failure";
}

static void test_classify(void **state)
{
	(void)state;
	static const struct {
		enum alert_class own;
		unsigned ab;
		enum alert_class want;
	} cases[] = {
		{ ALERT_CLEAN, 0, ALERT_CLEAN },
		{ ALERT_CLEAN, ALERT_ABERRATION_TOTAL, ALERT_WARNING },
		{ ALERT_CLEAN, ALERT_ABERRATION_DELIVERY, ALERT_WARNING },
		{ ALERT_CLEAN, ALERT_ABERRATION_DELIVERY | ALERT_ABERRATION_TOTAL, ALERT_WARNING },
		{ ALERT_CLEAN, 1u << 7, ALERT_CLEAN }, /* bits that are no aberration of ours */
		{ ALERT_WARNING, 0, ALERT_WARNING },
		{ ALERT_WARNING, ALERT_ABERRATION_TOTAL, ALERT_WARNING },
		{ ALERT_FAILURE, 0, ALERT_FAILURE },
		{ ALERT_FAILURE, ALERT_ABERRATION_TOTAL, ALERT_FAILURE }, /* never softened, never hardened */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum alert_class got = alert_classify(cases[i].own, cases[i].ab);
		if (got != cases[i].want)
			fail_msg("case %zu: %s with aberrations %#x: got %s, want %s", i, class_name(cases[i].own),
				 cases[i].ab, class_name(got), class_name(cases[i].want));
	}
}

/* Sequences of results from ok: the state after each one ("o", "d", "f") and the failure count. */
static void test_sequences(void **state)
{
	(void)state;
	static const struct {
		unsigned failing_after;
		const char *results; /* c clean, w warning, f failure */
		const char *states;  /* after each */
		unsigned fails;      /* at the end */
	} cases[] = {
		{ 3, "c", "o", 0 },
		{ 3, "w", "d", 0 },
		{ 3, "wc", "do", 0 },
		{ 3, "fff", "ddf", 3 },
		{ 3, "ffwf", "dddd", 1 },   /* a warning resets the count */
		{ 3, "fffw", "ddff", 0 },   /* failing stays failing on a warning */
		{ 3, "fffwc", "ddffo", 0 }, /* a clean result ends it */
		{ 3, "ffffc", "ddffo", 0 },
		{ 1, "f", "f", 1 },
		{ 1, "wf", "df", 1 },
		{ 2, "ff", "df", 2 },
		{ 3, "cwcw", "odod", 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct alert_track t = { ALERT_OK, 0 };
		char got[32] = "";
		size_t n = strlen(cases[i].results);
		for (size_t k = 0; k < n; k++) {
			char r = cases[i].results[k];
			enum alert_class c = r == 'c' ? ALERT_CLEAN : r == 'w' ? ALERT_WARNING : ALERT_FAILURE;
			enum alert_state st = alert_track_apply(&t, c, cases[i].failing_after);
			assert_int_equal(st, t.state);
			got[k] = alert_state_name(st)[0];
		}
		got[n] = '\0';
		const char *want = cases[i].states;
		if (strcmp(got, want) != 0 || t.fails != cases[i].fails)
			fail_msg("case %zu (failing_after %u, %s): got %s fails %u, want %s fails %u", i,
				 cases[i].failing_after, cases[i].results, got, t.fails, want, cases[i].fails);
	}
}

/* A clean result with an aberration takes an ok seed to degraded, once; the next clean one
 * without takes it back. */
static void test_aberration_transitions(void **state)
{
	(void)state;
	struct alert_track t = { ALERT_OK, 0 };
	assert_int_equal(alert_track_apply(&t, alert_classify(ALERT_CLEAN, ALERT_ABERRATION_TOTAL), 3), ALERT_DEGRADED);
	assert_int_equal(alert_track_apply(&t, alert_classify(ALERT_CLEAN, ALERT_ABERRATION_TOTAL), 3), ALERT_DEGRADED);
	assert_int_equal(alert_track_apply(&t, alert_classify(ALERT_CLEAN, 0), 3), ALERT_OK);
	/* failing: an aberration keeps it failing, as any warning does */
	t = (struct alert_track){ ALERT_FAILING, 0 };
	assert_int_equal(alert_track_apply(&t, alert_classify(ALERT_CLEAN, ALERT_ABERRATION_DELIVERY), 3),
			 ALERT_FAILING);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(alert_aberration_names(0), "");
	assert_string_equal(alert_aberration_names(ALERT_ABERRATION_TOTAL), "total");
	assert_string_equal(alert_aberration_names(ALERT_ABERRATION_DELIVERY), "delivery");
	assert_string_equal(alert_aberration_names(ALERT_ABERRATION_DELIVERY | ALERT_ABERRATION_TOTAL),
			    "delivery total");
	assert_null(alert_aberration_cause(0));
	assert_string_equal(alert_aberration_cause(ALERT_ABERRATION_TOTAL), "Holt-Winters aberration in total SMTP time");
	assert_string_equal(alert_aberration_cause(ALERT_ABERRATION_DELIVERY), "Holt-Winters aberration in delivery time");
	for (int s = 0; s < ALERT_STATE__COUNT; s++)
		assert_int_equal(alert_state_from_name(alert_state_name((enum alert_state)s)), s);
	assert_int_equal(alert_state_from_name("bad"), -1);
	assert_null(alert_state_name(ALERT_STATE__COUNT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_sequences),
		cmocka_unit_test(test_aberration_transitions),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
