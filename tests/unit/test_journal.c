/* Unit tests: the crash-safe journal (scheduler/journal.c). Round trip through the files,
 * reduction of record sequences into a state, corrupt and torn records, compaction, the lock and
 * the error paths. Records fed to the replay are written here from the format in journal.h with
 * an encoder and a CRC-32 of the test's own, so the code is checked against the format and not
 * against itself. Journals live in fresh mkdtemp directories under /tmp, removed afterwards. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"

/* The clock of every test: 2025-11-28 12:00:00 UTC, UTC day 20420. */
#define T0 INT64_C(1764331200000)
#define DAY_MS INT64_C(86400000)
#define TODAY (T0 / DAY_MS)

/* ---- helpers ---- */


/* CRC-32/ISO-HDLC (zlib's crc32), bit by bit. */
static uint32_t ref_crc32(const char *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		c ^= (unsigned char)p[i];
		for (int k = 0; k < 8; k++) {
			if (c & 1u)
				c = (c >> 1) ^ 0xEDB88320u;
			else
				c >>= 1;
		}
	}
	return c ^ 0xFFFFFFFFu;
}

/* A value as journal.h says it is written: space, '%' and control bytes percent-encoded. */
static char *pct(const char *v)
{
	char *s = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&s, &n);

	assert_non_null(fp);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p <= ' ' || *p == '%' || *p == 0x7f)
			fprintf(fp, "%%%02X", *p);
		else
			fputc(*p, fp);
	}
	fclose(fp);
	return s;
}

/* The record line for body (values already encoded): "CRC32 body\n". Returns owned. */
static char *rec(const char *body)
{
	return fmt("%08" PRIx32 " %s\n", ref_crc32(body, strlen(body)), body);
}

/* The journal text of bodies (NULL-terminated list). Returns owned. */
static char *journal_of(const char *const *bodies)
{
	char *s = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&s, &n);

	assert_non_null(fp);
	for (size_t i = 0; bodies[i]; i++) {
		char *r = rec(bodies[i]);
		fputs(r, fp);
		free(r);
	}
	fclose(fp);
	return s;
}

static const char *state_name(enum jprobe_state s)
{
	switch (s) {
	case JPROBE_WAIT:
		return "WAIT";
	case JPROBE_SENDING:
		return "SENDING";
	case JPROBE_READBACK:
		return "READBACK";
	case JPROBE_FINAL:
		return "FINAL";
	case JPROBE_DONE:
		return "DONE";
	}
	return "?";
}

/* The state as text, one line per seed, budget and probe, only the fields that mean something
 * in each probe state; strings percent-encoded so that each item stays on one line. */
static char *dump(const struct journal_state *st)
{
	char *s = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&s, &n);

	assert_non_null(fp);
	for (size_t i = 0; i < st->n_seeds; i++) {
		char *name = pct(st->seeds[i].name);
		fprintf(fp, "seed %s slot=%" PRId64, name, st->seeds[i].slot_s);
		if (st->seeds[i].win_at_ms)
			fprintf(fp, " win=%" PRId64 ":%u/%u:%u/%u", st->seeds[i].win_at_ms, st->seeds[i].win_next[0],
				st->seeds[i].win_validity[0], st->seeds[i].win_next[1], st->seeds[i].win_validity[1]);
		fprintf(fp, "\n");
		free(name);
	}
	for (size_t i = 0; i < st->n_budgets; i++) {
		char *dom = pct(st->budgets[i].dom);
		fprintf(fp, "budget %s day=%" PRId64 " n=%d\n", dom, st->budgets[i].day, st->budgets[i].n);
		free(dom);
	}
	for (size_t i = 0; i < st->n_probes; i++) {
		const struct jprobe *p = &st->probes[i];
		assert_non_null(p->id);
		assert_non_null(p->seed);
		assert_non_null(p->dom);
		assert_non_null(p->att);
		char *id = pct(p->id), *seed = pct(p->seed), *dom = pct(p->dom), *att = pct(p->att);
		fprintf(fp, "probe %s %s seed=%s", id, state_name(p->state), seed);
		if (p->state == JPROBE_READBACK) {
			char *json = p->final_json ? pct(p->final_json) : NULL;
			char *bnc = p->bounces ? pct(p->bounces) : NULL;
			fprintf(fp, " sent=%" PRId64 " acc=%" PRId64 " json=%s%s%s\n", p->sent_ms, p->accepted_ms,
				json ? json : "(null)", bnc ? " bnc=" : "", bnc ? bnc : "");
			free(json);
			free(bnc);
		} else if (p->state == JPROBE_FINAL) {
			char *json = p->final_json ? pct(p->final_json) : NULL;
			fprintf(fp, " json=%s\n", json ? json : "(null)");
			free(json);
		} else {
			fprintf(fp, " dom=%s sent=%" PRId64 " slot=%" PRId64 " n=%d", dom, p->sent_ms, p->slot_s, p->n);
			if (p->state == JPROBE_WAIT)
				fprintf(fp, " next=%" PRId64, p->next_ms);
			else
				fprintf(fp, " at=%" PRId64, p->send_at_ms);
			fprintf(fp, " att=%s\n", att);
		}
		free(id);
		free(seed);
		free(dom);
		free(att);
	}
	fclose(fp);
	return s;
}

static char *replay_dump(const char *text, size_t len, int64_t now, size_t *corrupt)
{
	struct journal_state st;
	journal_replay_text(text, len, "test", now, &st);
	char *d = dump(&st);
	*corrupt = st.n_corrupt;
	journal_state_fini(&st);
	return d;
}

static const struct jprobe *find_probe(const struct journal_state *st, const char *id)
{
	for (size_t i = 0; i < st->n_probes; i++)
		if (strcmp(st->probes[i].id, id) == 0)
			return &st->probes[i];
	return NULL;
}

static const struct jseed *find_seed(const struct journal_state *st, const char *name)
{
	for (size_t i = 0; i < st->n_seeds; i++)
		if (strcmp(st->seeds[i].name, name) == 0)
			return &st->seeds[i];
	return NULL;
}

/* Budget count for dom on day, or -1 when there is no entry. */
static int budget_of(const struct journal_state *st, const char *dom, int64_t day)
{
	for (size_t i = 0; i < st->n_budgets; i++)
		if (strcmp(st->budgets[i].dom, dom) == 0 && st->budgets[i].day == day)
			return st->budgets[i].n;
	return -1;
}


static char *tmpdir_new(void)
{
	char tmpl[] = "/tmp/test_journal.XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

/* Each test that touches files gets a fresh directory as its state, removed even when it fails. */
static int dir_setup(void **state)
{
	*state = tmpdir_new();
	return 0;
}

static int dir_teardown(void **state)
{
	rm_rf(*state);
	free(*state);
	return 0;
}

static void write_bytes(const char *path, const char *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	if (!fp)
		fail_msg("%s: %s", path, strerror(errno));
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}


static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* The state of dir/journal as replay sees it now (the file is not changed). */
static char *file_dump(const char *dir, int64_t now, size_t *corrupt)
{
	char *path = fmt("%s/journal", dir);
	size_t len;
	char *text = slurp(path, &len);
	char *d = replay_dump(text, len, now, corrupt);
	free(text);
	free(path);
	return d;
}

/* Runs journal_replay_text with stderr going to a file; returns what was logged (owned). */
static char *replay_logged(const char *text, size_t len, const char *name, int64_t now, struct journal_state *st)
{
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	journal_replay_text(text, len, name, now, st);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	char *s = NULL;
	size_t n = 0;
	FILE *out = open_memstream(&s, &n);
	assert_non_null(out);
	int c;
	while ((c = fgetc(tmp)) != EOF)
		fputc(c, out);
	fclose(out);
	fclose(tmp);
	return s;
}

/* ---- the reference CRC itself ---- */

static void test_crc_reference(void **state)
{
	(void)state;
	/* The check value of CRC-32/ISO-HDLC. */
	assert_int_equal(ref_crc32("123456789", 9), 0xCBF43926u);
	assert_int_equal(ref_crc32("", 0), 0);
}

/* ---- appending writes the format of journal.h ---- */

static void test_append_format(void **state)
{
	const char *dir = *state;
	char *err = NULL;
	struct journal_state st;
	struct journal *j = journal_open(dir, T0, &st, &err);
	if (!j)
		fail_msg("journal_open: %s", err);
	journal_state_fini(&st);

	const char *json = "{\"text\":\"100% sure\",\n\t\"x\":\"r\xc3\xa9" "essayez\x7f\"}";
	assert_int_equal(journal_append(j, "final", "id", "p 1", "seed", "seed-a", "json", json, NULL), 0);
	assert_int_equal(journal_append_lazy(j, "done", "id", "p 1", NULL), 0);
	assert_int_equal(journal_append(j, "seen", "seed", "", "slot", "0", NULL), 0);
	journal_close(j);

	char *ej = pct(json);
	char *b1 = fmt("final id=p%%201 seed=seed-a json=%s", ej);
	const char *const bodies[] = { b1, "done id=p%201", "seen seed= slot=0", NULL };
	char *want = journal_of(bodies);
	char *path = fmt("%s/journal", dir);
	char *got = slurp(path, NULL);
	if (strcmp(got, want) != 0)
		fail_msg("journal file:\n got: %s\nwant: %s", got, want);
	free(got);
	free(want);
	free(path);
	free(b1);
	free(ej);
}

/* ---- round trip through the files ---- */

static const char att1[] =
	"{\"attempt\":1,\"at\":\"2025-11-28T12:00:00.000Z\",\"outcome\":\"deferred\",\"code\":451,"
	"\"enhanced\":\"4.7.1\",\"text\":\"Greylisted, try again in 300 seconds (100% sure, %41 stays)\"}";
static const char att12[] =
	"{\"attempt\":1,\"at\":\"2025-11-28T12:00:00.000Z\",\"outcome\":\"deferred\",\"code\":451,"
	"\"enhanced\":\"4.7.1\",\"text\":\"Greylisted, try again in 300 seconds (100% sure, %41 stays)\"},"
	"{\"attempt\":2,\"outcome\":\"deferred\",\"text\":\"line one\nline two\r\n\tR\xc3\xa9" "essayez plus tard "
	"\xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x90\xa6 a=b %%\"}";
static const char json3[] = "{\"probe\":\"p3\",\"outcome\":\"delivered\",\"folder\":\"INBOX\"}";
static const char json4[] =
	"{\"probe\":\"p4\",\"outcome\":\"delivered\",\"folder\":\"Junk E-Mail\",\"text\":\"250 2.0.0 Ok: queued as "
	"4F1A22C0123\",\"note\":\"caf\xc3\xa9 50%\"}\n";

static void round_trip_check(const struct journal_state *st)
{
	assert_int_equal(st->n_corrupt, 0);
	assert_int_equal(st->n_probes, 3);
	const struct jprobe *p1 = find_probe(st, "p1"), *p2 = find_probe(st, "p2"), *p4 = find_probe(st, "p4");
	assert_non_null(p1);
	assert_non_null(p2);
	assert_non_null(p4);
	assert_null(find_probe(st, "p3")); /* done: dropped */

	assert_int_equal(p1->state, JPROBE_WAIT);
	assert_string_equal(p1->seed, "seed-a");
	assert_string_equal(p1->dom, "seed-a.test");
	assert_int_equal(p1->sent_ms, T0);
	assert_int_equal(p1->slot_s, 1764331200);
	assert_int_equal(p1->n, 2);
	assert_int_equal(p1->next_ms, T0 + 900000);
	if (strcmp(p1->att, att12) != 0)
		fail_msg("p1 att:\n got: \"%s\"\nwant: \"%s\"", p1->att, att12);

	assert_int_equal(p2->state, JPROBE_SENDING);
	assert_string_equal(p2->seed, "seed b");
	assert_string_equal(p2->dom, "seed-b.test");
	assert_int_equal(p2->sent_ms, T0 + 1000);
	assert_int_equal(p2->slot_s, 1764331200);
	assert_int_equal(p2->n, 0);
	assert_int_equal(p2->send_at_ms, T0 + 1000);

	assert_int_equal(p4->state, JPROBE_FINAL);
	assert_string_equal(p4->seed, "seed-c");
	assert_non_null(p4->final_json);
	if (strcmp(p4->final_json, json4) != 0)
		fail_msg("p4 json:\n got: \"%s\"\nwant: \"%s\"", p4->final_json, json4);

	assert_int_equal(st->n_seeds, 3);
	const struct jseed *sa = find_seed(st, "seed-a"), *sb = find_seed(st, "seed b"), *sc = find_seed(st, "seed-c");
	assert_non_null(sa);
	assert_non_null(sb);
	assert_non_null(sc);
	assert_int_equal(sa->slot_s, 1764331200); /* the later "seen" with a lower slot does not lower it */
	assert_int_equal(sb->slot_s, 1764334800); /* "seen" above the probe's slot */
	assert_int_equal(sc->slot_s, 1764331200); /* the send's slot above the first "seen" */

	/* seed-a.test: 5 from the budget record + the sends of p1 (2) and p3 (1); yesterday dropped. */
	assert_int_equal(st->n_budgets, 3);
	assert_int_equal(budget_of(st, "seed-a.test", TODAY), 8);
	assert_int_equal(budget_of(st, "seed-b.test", TODAY), 1);
	assert_int_equal(budget_of(st, "seed-c.test", TODAY), 1);
	assert_int_equal(budget_of(st, "seed-a.test", TODAY - 1), -1);
	assert_int_equal(budget_of(st, "old.example", TODAY - 1), -1);
}

static void test_round_trip(void **state)
{
	const char *dir = *state;
	char *err = NULL;
	struct journal_state st;
	struct journal *j = journal_open(dir, T0, &st, &err);
	if (!j)
		fail_msg("journal_open on an empty directory: %s", err);
	assert_int_equal(st.n_probes + st.n_seeds + st.n_budgets + st.n_corrupt, 0);
	journal_state_fini(&st);

	char day[24], yday[24];
	snprintf(day, sizeof day, "%" PRId64, TODAY);
	snprintf(yday, sizeof yday, "%" PRId64, TODAY - 1);
#define A(...) assert_int_equal(journal_append(j, __VA_ARGS__, NULL), 0)
	A("seen", "seed", "seed-c", "slot", "1764330300");
	A("send", "id", "p1", "seed", "seed-a", "dom", "seed-a.test", "sent", "1764331200000", "slot", "1764331200", "n",
	  "1", "at", "1764331200000");
	A("wait", "id", "p1", "seed", "seed-a", "dom", "seed-a.test", "sent", "1764331200000", "slot", "1764331200", "n",
	  "1", "next", "1764331500000", "att", att1);
	A("send", "id", "p1", "seed", "seed-a", "dom", "seed-a.test", "sent", "1764331200000", "slot", "1764331200", "n",
	  "2", "at", "1764331500000");
	A("wait", "id", "p1", "seed", "seed-a", "dom", "seed-a.test", "sent", "1764331200000", "slot", "1764331200", "n",
	  "2", "next", "1764332100000", "att", att12);
	A("send", "id", "p2", "seed", "seed b", "dom", "seed-b.test", "sent", "1764331201000", "slot", "1764331200", "n",
	  "1", "at", "1764331201000");
	A("send", "id", "p3", "seed", "seed-a", "dom", "seed-a.test", "sent", "1764331202000", "slot", "0", "n", "1", "at",
	  "1764331202000");
	A("final", "id", "p3", "seed", "seed-a", "json", json3);
	assert_int_equal(journal_append_lazy(j, "done", "id", "p3", NULL), 0);
	A("send", "id", "p4", "seed", "seed-c", "dom", "seed-c.test", "sent", "1764331203000", "slot", "1764331200", "n",
	  "1", "at", "1764331203000");
	A("final", "id", "p4", "seed", "seed-c", "json", json4);
	A("budget", "dom", "seed-a.test", "day", day, "n", "5");
	A("budget", "dom", "seed-a.test", "day", yday, "n", "7");
	A("budget", "dom", "old.example", "day", yday, "n", "3");
	A("seen", "seed", "seed-a", "slot", "1764327600");
	A("seen", "seed", "seed b", "slot", "1764334800");
#undef A
	journal_close(j);

	/* Reopen: the replay of what was appended. */
	j = journal_open(dir, T0 + 60000, &st, &err);
	if (!j)
		fail_msg("journal_open: %s", err);
	round_trip_check(&st);
	char *first = dump(&st);
	journal_state_fini(&st);
	journal_close(j);

	/* Reopen the compacted file: the same state, the interrupted send of p2 not counted twice. */
	j = journal_open(dir, T0 + 120000, &st, &err);
	if (!j)
		fail_msg("journal_open (compacted): %s", err);
	round_trip_check(&st);
	char *second = dump(&st);
	if (strcmp(first, second) != 0)
		fail_msg("state changed by compaction:\n got:\n%s\nwant:\n%s", second, first);
	journal_state_fini(&st);
	journal_close(j);

	/* The next day: the probes and seeds stay, today's budgets are gone. */
	j = journal_open(dir, T0 + DAY_MS, &st, &err);
	if (!j)
		fail_msg("journal_open (next day): %s", err);
	assert_int_equal(st.n_probes, 3);
	assert_int_equal(st.n_seeds, 3);
	assert_int_equal(st.n_budgets, 0);
	assert_int_equal(st.n_corrupt, 0);
	journal_state_fini(&st);
	journal_close(j);

	free(first);
	free(second);
}

/* ---- reduction: record sequences -> state ---- */

#define MAXREC 12

struct reduce_case {
	const char *name;
	const char *records[MAXREC]; /* bodies, values encoded; NULL ends */
	const char *want;            /* dump() of the state */
};

/* Times: T0 = 1764331200000 (day 20420 starts at 1764288000000, day 20421 at 1764374400000). */
static const struct reduce_case reduce_cases[] = {
	{ "rb: accepted, readback pending, then final and done",
	  { "send id=p seed=s dom=d.test sent=1764331200000 slot=0 n=1 at=1764331200000",
	    "rb id=p seed=s sent=1764331200000 acc=1764331200500 json={\"readback\":{\"status\":\"pending\"}}" },
	  "budget d.test day=20420 n=1\n"
	  "probe p READBACK seed=s sent=1764331200000 acc=1764331200500 json={\"readback\":{\"status\":\"pending\"}}\n" },
	{ "bnc: the latest bounces of a probe being read back; none for other probes or states",
	  { "rb id=p seed=s sent=1764331200000 acc=1764331200500 json={}",
	    "bnc id=p json={\"action\":\"delayed\"}",
	    "bnc id=p json={\"action\":\"delayed\"},{\"action\":\"failed\"}",
	    "bnc id=q json={\"action\":\"failed\"}",
	    "final id=r seed=s json={}", "bnc id=r json={}" },
	  "probe p READBACK seed=s sent=1764331200000 acc=1764331200500 json={} "
	  "bnc={\"action\":\"delayed\"},{\"action\":\"failed\"}\n"
	  "probe r FINAL seed=s json={}\n" },
	{ "rb then final then done: gone",
	  { "rb id=p seed=s sent=1764331200000 acc=1764331200500 json={}",
	    "final id=p seed=s json={\"final\":true}", "done id=p" },
	  "" },
	{ "win: the latest by poll time counts, older ones do not move it back",
	  { "win seed=s at=1764331300000 n0=50 v0=7 n1=3 v1=9",
	    "win seed=s at=1764331200000 n0=40 v0=7 n1=2 v1=9",
	    "win seed=t at=1764331250000 n0=5 v0=1 n1=0 v1=0" },
	  "seed s slot=0 win=1764331300000:50/7:3/9\n"
	  "seed t slot=0 win=1764331250000:5/1:0/0\n" },
	{ "send then wait: WAIT with the decided n",
	  { "send id=p seed=s dom=d.test sent=1764331200000 slot=1764331200 n=1 at=1764331200000",
	    "wait id=p seed=s dom=d.test sent=1764331200000 slot=1764331200 n=1 next=1764331500000 att={\"a\":1}" },
	  "seed s slot=1764331200\n"
	  "budget d.test day=20420 n=1\n"
	  "probe p WAIT seed=s dom=d.test sent=1764331200000 slot=1764331200 n=1 next=1764331500000 att={\"a\":1}\n" },
	{ "wait then send: SENDING with n = sent n - 1 and its start",
	  { "wait id=p seed=s dom=d.test sent=1764331200000 slot=0 n=1 next=1764331500000 att={\"a\":1}",
	    "send id=p seed=s dom=d.test sent=1764331200000 slot=0 n=2 at=1764331500123" },
	  "budget d.test day=20420 n=1\n"
	  "probe p SENDING seed=s dom=d.test sent=1764331200000 slot=0 n=1 at=1764331500123 att={\"a\":1}\n" },
	{ "send alone: SENDING attempt 1, nothing decided",
	  { "send id=p seed=s dom=d.test sent=1764331200000 slot=0 n=1 at=1764331200000" },
	  "budget d.test day=20420 n=1\n"
	  "probe p SENDING seed=s dom=d.test sent=1764331200000 slot=0 n=0 at=1764331200000 att=\n" },
	{ "final then done: gone (its send still counts)",
	  { "send id=p seed=s dom=d.test sent=1764331200000 slot=0 n=1 at=1764331200000",
	    "final id=p seed=s json={\"outcome\":\"delivered\"}", "done id=p" },
	  "budget d.test day=20420 n=1\n" },
	{ "final without done: FINAL kept with its json",
	  { "send id=p seed=s dom=d.test sent=1764331200000 slot=0 n=1 at=1764331200000",
	    "final id=p seed=s json={\"outcome\":%20\"deferred\",%0A\"x\":\"50%25\"}" },
	  "budget d.test day=20420 n=1\n"
	  "probe p FINAL seed=s json={\"outcome\":%20\"deferred\",%0A\"x\":\"50%25\"}\n" },
	{ "final of an unknown probe: FINAL",
	  { "final id=q seed=s json={}" },
	  "probe q FINAL seed=s json={}\n" },
	{ "done of an unknown probe: ignored, not corrupt",
	  { "done id=nobody", "seen seed=s slot=5" },
	  "seed s slot=5\n" },
	{ "done before final: a later final revives the probe",
	  { "done id=p", "final id=p seed=s json={}" },
	  "probe p FINAL seed=s json={}\n" },
	{ "seen: the seed keeps the highest slot",
	  { "seen seed=s slot=1764331200", "seen seed=s slot=1764327600", "seen seed=t slot=100", "seen seed=t slot=200" },
	  "seed s slot=1764331200\n"
	  "seed t slot=200\n" },
	{ "send with a slot updates the seed's slot (never lowers it); slot 0 (manual) does not",
	  { "seen seed=s slot=1764330300", "send id=p seed=s dom=d sent=1764331200000 slot=1764331200 n=1 at=1764331200000",
	    "send id=q seed=s dom=d sent=1764331200000 slot=1764327600 n=1 at=1764331200000",
	    "send id=m seed=manual dom=d sent=1764331200000 slot=0 n=1 at=1764331200000" },
	  "seed s slot=1764331200\n"
	  "budget d day=20420 n=3\n"
	  "probe p SENDING seed=s dom=d sent=1764331200000 slot=1764331200 n=0 at=1764331200000 att=\n"
	  "probe q SENDING seed=s dom=d sent=1764331200000 slot=1764327600 n=0 at=1764331200000 att=\n"
	  "probe m SENDING seed=manual dom=d sent=1764331200000 slot=0 n=0 at=1764331200000 att=\n" },
	{ "wait with a slot creates the seed",
	  { "wait id=p seed=s dom=d sent=1 slot=1764331200 n=0 next=0 att=" },
	  "seed s slot=1764331200\n"
	  "probe p WAIT seed=s dom=d sent=1 slot=1764331200 n=0 next=0 att=\n" },
	{ "budget: sends per domain per UTC day, plus budget records; days before today dropped",
	  { "budget dom=a.test day=20420 n=3", "budget dom=a.test day=20419 n=9",
	    "send id=p1 seed=s dom=a.test sent=1 slot=0 n=1 at=1764288000000",  /* first ms of today */
	    "send id=p2 seed=s dom=a.test sent=1 slot=0 n=1 at=1764287999999",  /* last ms of yesterday */
	    "send id=p3 seed=s dom=b.test sent=1 slot=0 n=1 at=1764331200000",
	    "send id=p1 seed=s dom=a.test sent=1 slot=0 n=2 at=1764374399999",  /* last ms of today */
	    "send id=p4 seed=s dom=a.test sent=1 slot=0 n=1 at=1764374400000",  /* tomorrow */
	    "budget dom=a.test day=20420 n=2" },
	  "budget a.test day=20420 n=7\n"
	  "budget b.test day=20420 n=1\n"
	  "budget a.test day=20421 n=1\n"
	  "probe p1 SENDING seed=s dom=a.test sent=1 slot=0 n=1 at=1764374399999 att=\n"
	  "probe p2 SENDING seed=s dom=a.test sent=1 slot=0 n=0 at=1764287999999 att=\n"
	  "probe p3 SENDING seed=s dom=b.test sent=1 slot=0 n=0 at=1764331200000 att=\n"
	  "probe p4 SENDING seed=s dom=a.test sent=1 slot=0 n=0 at=1764374400000 att=\n" },
	{ "the latest wait replaces att, next, n, seed and dom",
	  { "wait id=p seed=s dom=d sent=1 slot=0 n=1 next=10 att={1}",
	    "wait id=p seed=s2 dom=d2 sent=2 slot=0 n=2 next=20 att={1},{2}" },
	  "probe p WAIT seed=s2 dom=d2 sent=2 slot=0 n=2 next=20 att={1},{2}\n" },
	{ "percent escapes in ids and values decode",
	  { "wait id=p%201 seed=s%25 dom=d sent=1 slot=0 n=10000 next=0 att=%7B%22%C3%A9%22%7D" },
	  "probe p%201 WAIT seed=s%25 dom=d sent=1 slot=0 n=10000 next=0 att={\"\xc3\xa9\"}\n" },
	{ "field order does not matter; unknown fields are ignored",
	  { "wait att=x next=5 n=1 slot=0 sent=1 dom=d seed=s id=p extra=1" },
	  "probe p WAIT seed=s dom=d sent=1 slot=0 n=1 next=5 att=x\n" },
};

static void test_reduce(void **state)
{
	const char *dir = *state;
	char *path = fmt("%s/journal", dir);
	for (size_t i = 0; i < sizeof reduce_cases / sizeof reduce_cases[0]; i++) {
		const struct reduce_case *c = &reduce_cases[i];
		char *text = journal_of(c->records);
		size_t corrupt;
		char *got = replay_dump(text, strlen(text), T0, &corrupt);
		if (strcmp(got, c->want) != 0 || corrupt != 0)
			fail_msg("case %zu (%s):\n got (%zu corrupt):\n%s\nwant (0 corrupt):\n%s", i, c->name, corrupt, got,
				 c->want);
		/* Opening the journal rewrites it as its state: the same state again. */
		FILE *fp = fopen(path, "w");
		assert_non_null(fp);
		fputs(text, fp);
		fclose(fp);
		struct journal_state st;
		char *err = NULL;
		struct journal *j = journal_open(dir, T0, &st, &err);
		if (!j)
			fail_msg("case %zu (%s): journal_open: %s", i, c->name, err);
		journal_state_fini(&st);
		journal_close(j);
		char *again = file_dump(dir, T0, &corrupt);
		if (strcmp(again, c->want) != 0 || corrupt != 0)
			fail_msg("case %zu (%s) after compaction:\n got (%zu corrupt):\n%s\nwant:\n%s", i, c->name, corrupt,
				 again, c->want);
		free(again);
		free(got);
		free(text);
	}
	free(path);
}

/* ---- corrupt records ---- */

enum bad_kind {
	BAD_RAW,      /* text is the line as is */
	BAD_BODY,     /* text is a body: written with a correct checksum */
	BAD_FLIP,     /* a correct record, then the byte at offset arg XORed with 1 */
	BAD_NUL,      /* a correct record, then the byte at offset arg replaced by NUL */
	BAD_CR,       /* a correct record, then CR before the LF (an editor's CRLF) */
};

struct bad_case {
	const char *name;
	enum bad_kind kind;
	const char *text;
	size_t arg;
	const char *why;
};

/* The bad line goes between these; the records after it must still apply. */
static const char *const good_before = "wait id=p0 seed=s dom=d.test sent=1764331200000 slot=1764331200 n=1 "
				       "next=1764331500000 att={\"a\":1}";
static const char *const good_after = "send id=p1 seed=s dom=d.test sent=1764331200000 slot=0 n=1 at=1764331200000";

#define WHY_CRC "checksum mismatch (torn or altered record)"
#define WHY_FIELD "malformed field"
#define WHY_LACKS "record lacks a required field"

static const struct bad_case bad_cases[] = {
	{ "flipped bit in the body (n=1 -> n=0)", BAD_FLIP, "wait id=p0 seed=s dom=d.test sent=1764331200000 "
	  "slot=1764331200 n=1 next=1764331500000 att={}", 9 + 66 /* the '1' of n=1 */, WHY_CRC },
	{ "flipped bit in the checksum", BAD_FLIP, "done id=p0", 0, WHY_CRC },
	{ "empty line", BAD_RAW, "", 0, "no checksum" },
	{ "garbage", BAD_RAW, "GET / HTTP/1.1", 0, "no checksum" },
	{ "garbage with an 8-byte first word", BAD_RAW, "deadbeef done id=p0", 0, WHY_CRC },
	{ "not hex", BAD_RAW, "zzzzzzzz done id=p0", 0, WHY_CRC },
	{ "checksum only", BAD_RAW, "00000000", 0, "no checksum" },
	{ "NUL byte", BAD_NUL, "done id=p0", 12, "NUL byte in record" },
	{ "CR LF line end", BAD_CR, "done id=p0", 0, WHY_CRC },
	{ "unknown record type", BAD_BODY, "frob id=p0", 0, "unknown record type" },
	{ "unknown type, no fields", BAD_BODY, "sendx", 0, "unknown record type" },
	{ "empty body", BAD_BODY, "", 0, "empty record" },
	{ "bad percent escape %zz", BAD_BODY, "wait id=p0 seed=s dom=d sent=1 slot=0 n=2 next=0 att=%zz", 0, WHY_FIELD },
	{ "percent at the end", BAD_BODY, "wait id=p0 seed=s dom=d sent=1 slot=0 n=2 next=0 att=100%", 0, WHY_FIELD },
	{ "one hex digit", BAD_BODY, "wait id=p0 seed=s dom=d sent=1 slot=0 n=2 next=0 att=%4", 0, WHY_FIELD },
	{ "encoded NUL", BAD_BODY, "final id=p0 seed=s json=a%00b", 0, WHY_FIELD },
	{ "field without '='", BAD_BODY, "done id=p0 junk", 0, WHY_FIELD },
	{ "17 fields", BAD_BODY, "done id=p0 a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9 j=10 k=11 l=12 m=13 n=14 o=15 p=16", 0,
	  WHY_FIELD },
	{ "send without at", BAD_BODY, "send id=p0 seed=s dom=d.test sent=1764331200000 slot=0 n=2", 0, WHY_LACKS },
	{ "wait without att", BAD_BODY, "wait id=p0 seed=s dom=d.test sent=1764331200000 slot=0 n=2 next=5", 0,
	  WHY_LACKS },
	{ "wait without next", BAD_BODY, "wait id=p0 seed=s dom=d.test sent=1764331200000 slot=0 n=2 att=x", 0,
	  WHY_LACKS },
	{ "send without dom", BAD_BODY, "send id=p0 seed=s sent=1764331200000 slot=0 n=2 at=1", 0, WHY_LACKS },
	{ "send with an empty id", BAD_BODY, "send id= seed=s dom=d sent=1 slot=0 n=1 at=1", 0, WHY_LACKS },
	{ "final without json", BAD_BODY, "final id=p0 seed=s", 0, WHY_LACKS },
	{ "bnc without json", BAD_BODY, "bnc id=p0", 0, WHY_LACKS },
	{ "done without id", BAD_BODY, "done", 0, WHY_LACKS },
	{ "budget without day", BAD_BODY, "budget dom=d.test n=5", 0, WHY_LACKS },
	{ "budget n negative", BAD_BODY, "budget dom=d.test day=20420 n=-1", 0, WHY_LACKS },
	{ "budget n above INT32_MAX", BAD_BODY, "budget dom=d.test day=20420 n=2147483648", 0, WHY_LACKS },
	{ "seen without slot", BAD_BODY, "seen seed=s", 0, WHY_LACKS },
	{ "slot not a number", BAD_BODY, "seen seed=s slot=12x", 0, WHY_LACKS },
	{ "empty number", BAD_BODY, "seen seed=s slot=", 0, WHY_LACKS },
	{ "huge n (beyond int64)", BAD_BODY, "wait id=p0 seed=s dom=d sent=1 slot=0 n=99999999999999999999 next=0 att=", 0,
	  WHY_LACKS },
	{ "n above 10000", BAD_BODY, "wait id=p0 seed=s dom=d sent=1 slot=0 n=10001 next=0 att=", 0, WHY_LACKS },
	{ "n negative", BAD_BODY, "wait id=p0 seed=s dom=d sent=1 slot=0 n=-1 next=0 att=", 0, WHY_LACKS },
	{ "send n=0 (attempts are 1-based)", BAD_BODY, "send id=p0 seed=s dom=d sent=1 slot=0 n=0 at=1", 0, WHY_LACKS },
	{ "sent beyond int64", BAD_BODY, "send id=p0 seed=s dom=d sent=9223372036854775808 slot=0 n=2 at=1", 0,
	  WHY_LACKS },
};

/* The bad line of c (with its newline unless no_nl), written into fp. */
static void put_bad(FILE *fp, const struct bad_case *c, bool no_nl)
{
	char *line;
	size_t len;

	if (c->kind == BAD_RAW) {
		line = fmt("%s\n", c->text);
	} else {
		line = rec(c->text);
	}
	len = strlen(line);
	if (c->kind == BAD_FLIP) {
		assert_true(c->arg < len - 1);
		line[c->arg] ^= 1;
	} else if (c->kind == BAD_NUL) {
		assert_true(c->arg < len - 1);
		line[c->arg] = '\0';
	} else if (c->kind == BAD_CR) {
		line = realloc(line, len + 2);
		assert_non_null(line);
		line[len - 1] = '\r';
		line[len] = '\n';
		line[++len] = '\0';
	}
	fwrite(line, 1, no_nl ? len - 1 : len, fp);
	free(line);
}

static void test_corrupt(void **state)
{
	(void)state;
	const char *const good[] = { good_before, good_after, NULL };
	char *good_text = journal_of(good);
	size_t corrupt;
	char *want = replay_dump(good_text, strlen(good_text), T0, &corrupt);
	assert_int_equal(corrupt, 0);
	/* The bad lines must not be mistaken for the valid records they resemble. */
	assert_non_null(strstr(want, "probe p0 WAIT seed=s dom=d.test sent=1764331200000 slot=1764331200 n=1 "));
	assert_non_null(strstr(want, "probe p1 SENDING"));

	char *rec_before = rec(good_before), *rec_after = rec(good_after);
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *c = &bad_cases[i];
		/* In the middle (line 2), and as a torn last line without its newline (line 3). */
		for (int last = 0; last < 2; last++) {
			char *text = NULL;
			size_t len = 0;
			FILE *fp = open_memstream(&text, &len);
			assert_non_null(fp);
			fputs(rec_before, fp);
			if (!last)
				put_bad(fp, c, false);
			fputs(rec_after, fp);
			if (last)
				put_bad(fp, c, true);
			fclose(fp);
			if (last && c->kind == BAD_RAW && !*c->text) {
				free(text);
				continue; /* an empty last line without newline is no line at all */
			}

			struct journal_state st;
			char *log = replay_logged(text, len, "/var/lib/x/journal", T0, &st);
			char *got = dump(&st);
			const char *why = last ? "truncated (no end of line)" : c->why;
			char *want_log = fmt("journal /var/lib/x/journal:%d: %s: record skipped", last ? 3 : 2, why);
			if (st.n_corrupt != 1 || strcmp(got, want) != 0 || !strstr(log, want_log))
				fail_msg("case %zu (%s%s):\n got %zu corrupt, state:\n%s log: %s\nwant 1 corrupt, state:\n%s "
					 "log: %s",
					 i, c->name, last ? ", last line" : "", st.n_corrupt, got, log, want, want_log);
			free(want_log);
			free(got);
			free(log);
			journal_state_fini(&st);
			free(text);
		}
	}

	/* All of them in one journal, each between valid records. */
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);
	assert_non_null(fp);
	size_t n_bad = sizeof bad_cases / sizeof bad_cases[0];
	fputs(rec_before, fp);
	for (size_t i = 0; i < n_bad; i++) {
		put_bad(fp, &bad_cases[i], false);
		fputs(rec_before, fp);
	}
	fputs(rec_after, fp);
	put_bad(fp, &bad_cases[0], true);
	fclose(fp);
	struct journal_state st;
	char *log = replay_logged(text, len, "j", T0, &st);
	char *got = dump(&st);
	assert_int_equal(st.n_corrupt, n_bad + 1);
	if (strcmp(got, want) != 0)
		fail_msg("all bad lines:\n got:\n%s\nwant:\n%s", got, want);
	for (size_t i = 0; i < n_bad; i++) {
		char *w = fmt("journal j:%zu: %s: record skipped\n", 2 * i + 2, bad_cases[i].why);
		if (!strstr(log, w))
			fail_msg("case %zu (%s): log lacks \"%s\":\n%s", i, bad_cases[i].name, w, log);
		free(w);
	}
	free(got);
	free(log);
	journal_state_fini(&st);
	free(text);

	free(rec_before);
	free(rec_after);
	free(want);
	free(good_text);
}

/* A write torn at any byte: the complete lines apply, a partial last line is one corrupt record. */
static void test_torn_prefixes(void **state)
{
	(void)state;
	const char *const bodies[] = {
		"seen seed=s slot=1764331200",
		"send id=p seed=s dom=d.test sent=1764331200000 slot=1764331200 n=1 at=1764331200000",
		"wait id=p seed=s dom=d.test sent=1764331200000 slot=1764331200 n=1 next=1764331500000 att=%7B%22t%22:1%7D",
		"budget dom=d.test day=20420 n=4",
		"final id=p seed=s json=%7B%7D",
		"done id=p",
		NULL,
	};
	char *text = journal_of(bodies);
	size_t len = strlen(text);
	enum log_level level = log_get_level();
	log_set_level(LOG_LEVEL_ERR); /* one warning per torn prefix */
	for (size_t n = 0; n <= len; n++) {
		size_t full = n;
		while (full > 0 && text[full - 1] != '\n')
			full--;
		size_t c1, c2;
		char *got = replay_dump(text, n, T0, &c1);
		char *want = replay_dump(text, full, T0, &c2);
		assert_int_equal(c2, 0);
		if (strcmp(got, want) != 0 || c1 != (full < n ? 1u : 0u))
			fail_msg("prefix of %zu bytes: got %zu corrupt and\n%s\nwant %d corrupt and\n%s", n, c1, got,
				 full < n, want);
		free(got);
		free(want);
	}
	log_set_level(level);
	free(text);
}

/* Budget counts are ints: records that add up beyond INT32_MAX must neither overflow (undefined
 * behaviour; in practice a negative count that lifts the daily budget) nor go below the count of
 * any one record: saturating or refusing the record both give INT32_MAX here. */
static void test_budget_overflow(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *records[4];
	} cases[] = {
		{ "two budget records", { "budget dom=d day=20420 n=2147483647", "budget dom=d day=20420 n=2147483647" } },
		{ "a budget record and a send",
		  { "budget dom=d day=20420 n=2147483647", "send id=p seed=s dom=d sent=1 slot=0 n=1 at=1764331200000" } },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *text = journal_of(cases[i].records);
		struct journal_state st;
		journal_replay_text(text, strlen(text), "overflow", T0, &st);
		int got = budget_of(&st, "d", TODAY);
		if (got != INT32_MAX)
			fail_msg("case %zu (%s): got budget %d, want %d", i, cases[i].name, got, INT32_MAX);
		journal_state_fini(&st);
		free(text);
	}
}

/* A write that fails half way (here: the file size limit, as with a full disk) leaves part of a
 * record in the file. journal_append returns -1 for it; the records appended after it, for which
 * it returns 0 ("durable"), must still replay. */
static void test_append_after_failed_write(void **state)
{
	const char *dir = *state;
	char *err = NULL;
	char *path = fmt("%s/journal", dir);
	struct journal_state st;
	struct journal *j = journal_open(dir, T0, &st, &err);
	if (!j)
		fail_msg("journal_open: %s", err);
	journal_state_fini(&st);
	assert_int_equal(journal_append(j, "seen", "seed", "a", "slot", "1", NULL), 0);

	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)sb.st_size + 20;
	void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int rc = journal_append(j, "send", "id", "p1", "seed", "a", "dom", "a.test", "sent", "1764331200000", "slot", "0",
				"n", "1", "at", "1764331200000", NULL);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, oldsig);
	assert_int_equal(rc, -1);
	assert_int_equal(stat(path, &sb), 0);

	/* The disk has room again. */
	assert_int_equal(journal_append(j, "send", "id", "p2", "seed", "a", "dom", "a.test", "sent", "1764331200000",
					"slot", "0", "n", "1", "at", "1764331200000", NULL),
			 0);
	assert_int_equal(journal_append(j, "seen", "seed", "b", "slot", "2", NULL), 0);
	journal_close(j);

	size_t corrupt;
	char *got = file_dump(dir, T0, &corrupt);
	const char *want = "seed a slot=1\n"
			   "seed b slot=2\n"
			   "budget a.test day=20420 n=1\n"
			   "probe p2 SENDING seed=a dom=a.test sent=1764331200000 slot=0 n=0 at=1764331200000 att=\n";
	if (strcmp(got, want) != 0 || corrupt > 1)
		fail_msg("after a torn append (%lld bytes in the file then):\n got (%zu corrupt):\n%s\nwant (at most 1 "
			 "corrupt):\n%s",
			 (long long)sb.st_size, corrupt, got, want);
	free(got);
	free(path);
}

/* ---- compaction ---- */

static void test_compaction(void **state)
{
	const char *dir = *state;
	char *err = NULL;
	char *path = fmt("%s/journal", dir), *tmp = fmt("%s/journal.new", dir);
	struct journal_state st;
	struct journal *j = journal_open(dir, T0, &st, &err);
	if (!j)
		fail_msg("journal_open: %s", err);
	journal_state_fini(&st);

	char id[16], sent[24], at[24], nbuf[16], next[24];
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof id, "c%d", i);
		snprintf(sent, sizeof sent, "%" PRId64, T0 + i);
		assert_int_equal(journal_append(j, "send", "id", id, "seed", "seed-a", "dom", "seed-a.test", "sent", sent,
						"slot", "1764331200", "n", "1", "at", sent, NULL),
				 0);
	}
	/* 2000 wait records for the 10 probes. */
	for (int r = 1; r <= 200; r++) {
		for (int i = 0; i < 10; i++) {
			snprintf(id, sizeof id, "c%d", i);
			snprintf(sent, sizeof sent, "%" PRId64, T0 + i);
			snprintf(nbuf, sizeof nbuf, "%d", r);
			snprintf(next, sizeof next, "%" PRId64, T0 + r * 1000 + i);
			char *att = fmt("{\"attempt\":%d,\"text\":\"451 4.7.1 Greylisted, try again in %d seconds\"}", r, r);
			assert_int_equal(journal_append_lazy(j, "wait", "id", id, "seed", "seed-a", "dom", "seed-a.test",
							     "sent", sent, "slot", "1764331200", "n", nbuf, "next", next,
							     "att", att, NULL),
					 0);
			free(att);
		}
	}
	/* An interrupted attempt today, and one from yesterday (its budget day is gone). */
	assert_int_equal(journal_append(j, "send", "id", "cs", "seed", "seed-b", "dom", "seed-a.test", "sent",
					"1764331100000", "slot", "0", "n", "1", "at", "1764331100000", NULL),
			 0);
	assert_int_equal(journal_append(j, "wait", "id", "cs", "seed", "seed-b", "dom", "seed-a.test", "sent",
					"1764331100000", "slot", "0", "n", "1", "next", "1764331205000", "att", "{\"n\":1}",
					NULL),
			 0);
	assert_int_equal(journal_append(j, "send", "id", "cs", "seed", "seed-b", "dom", "seed-a.test", "sent",
					"1764331100000", "slot", "0", "n", "2", "at", "1764331205000", NULL),
			 0);
	snprintf(at, sizeof at, "%" PRId64, T0 - DAY_MS);
	assert_int_equal(journal_append(j, "send", "id", "cy", "seed", "seed-b", "dom", "seed-a.test", "sent", at,
					"slot", "0", "n", "1", "at", at, NULL),
			 0);

	struct stat sb0, sb1, sb2;
	assert_int_equal(stat(path, &sb0), 0);
	size_t c;
	char *before = file_dump(dir, T0, &c);
	assert_int_equal(c, 0);
	/* Budget: 10 first sends + 2 sends of cs today; cy's day is gone. */
	{
		size_t len;
		char *text = slurp(path, &len);
		journal_replay_text(text, len, "x", T0, &st);
		free(text);
		assert_int_equal(budget_of(&st, "seed-a.test", TODAY), 12);
		assert_int_equal(st.n_budgets, 1);
		journal_state_fini(&st);
	}

	/* Below the limit: nothing happens. */
	journal_maybe_compact(j, (size_t)sb0.st_size + 1, T0);
	assert_int_equal(stat(path, &sb1), 0);
	assert_int_equal(sb1.st_ino, sb0.st_ino);
	assert_int_equal(sb1.st_size, sb0.st_size);

	journal_maybe_compact(j, 4096, T0);
	assert_int_equal(stat(path, &sb2), 0);
	assert_false(exists(tmp));
	if (sb2.st_size * 10 > sb0.st_size)
		fail_msg("compaction: %lld bytes -> %lld, want less than a tenth", (long long)sb0.st_size,
			 (long long)sb2.st_size);
	char *after = file_dump(dir, T0, &c);
	assert_int_equal(c, 0);
	if (strcmp(before, after) != 0)
		fail_msg("state changed by journal_maybe_compact:\n got:\n%s\nwant:\n%s", after, before);
	assert_non_null(strstr(after, "probe cs SENDING seed=seed-b dom=seed-a.test sent=1764331100000 slot=0 n=1 "
				      "at=1764331205000 att={\"n\":1}\n"));
	assert_non_null(strstr(after, "probe cy SENDING seed=seed-b dom=seed-a.test sent=1764244800000 slot=0 n=0 "
				      "at=1764244800000 att=\n"));
	assert_non_null(strstr(after, "budget seed-a.test day=20420 n=12\n"));

	/* Appends after the compaction go to the new file. */
	assert_int_equal(journal_append(j, "final", "id", "c0", "seed", "seed-a", "json", "{}", NULL), 0);
	assert_int_equal(journal_append_lazy(j, "done", "id", "c0", NULL), 0);
	char *appended = file_dump(dir, T0, &c);
	assert_int_equal(c, 0);
	if (strstr(appended, "probe c0 "))
		fail_msg("records appended after the compaction are lost:\n%s", appended);
	journal_close(j);

	/* Reopened: the same, and again after one more compaction (budget not counted twice). */
	for (int round = 0; round < 3; round++) {
		j = journal_open(dir, T0, &st, &err);
		if (!j)
			fail_msg("journal_open: %s", err);
		char *got = dump(&st);
		assert_int_equal(st.n_corrupt, 0);
		if (strcmp(got, appended) != 0)
			fail_msg("round %d: reopened state:\n got:\n%s\nwant:\n%s", round, got, appended);
		assert_int_equal(budget_of(&st, "seed-a.test", TODAY), 12);
		const struct jprobe *cs = find_probe(&st, "cs");
		assert_non_null(cs);
		assert_int_equal(cs->state, JPROBE_SENDING);
		assert_int_equal(cs->n, 1);
		assert_int_equal(cs->send_at_ms, 1764331205000);
		free(got);
		journal_state_fini(&st);
		journal_maybe_compact(j, 0, T0);
		journal_close(j);
	}

	free(before);
	free(after);
	free(appended);
	free(path);
	free(tmp);
}

/* ---- kill safety of the rewrite ---- */

static void test_rewrite_leftovers(void **state)
{
	const char *dir = *state;
	char *err = NULL;
	char *path = fmt("%s/journal", dir), *tmp = fmt("%s/journal.new", dir);
	struct journal_state st;

	/* A compaction killed before its rename left journal.new: the journal is what counts. */
	const char *const real[] = { "seen seed=s slot=100", NULL };
	const char *const stale[] = { "seen seed=stale slot=999", NULL };
	char *t1 = journal_of(real), *t2 = journal_of(stale);
	write_bytes(path, t1, strlen(t1));
	write_bytes(tmp, t2, strlen(t2));
	/* And an append killed mid-record: a torn last line. */
	FILE *fp = fopen(path, "ab");
	assert_non_null(fp);
	fputs("1234abcd send id=p seed=s dom=d sen", fp);
	fclose(fp);

	struct journal *j = journal_open(dir, T0, &st, &err);
	if (!j)
		fail_msg("journal_open: %s", err);
	assert_false(exists(tmp));
	assert_int_equal(st.n_corrupt, 1);
	char *got = dump(&st);
	assert_string_equal(got, "seed s slot=100\n");
	free(got);
	journal_state_fini(&st);

	/* The torn line is gone from the file, so the next record does not glue onto it. */
	assert_int_equal(journal_append(j, "seen", "seed", "t", "slot", "5", NULL), 0);
	journal_close(j);
	size_t c;
	got = file_dump(dir, T0, &c);
	assert_int_equal(c, 0);
	assert_string_equal(got, "seed s slot=100\nseed t slot=5\n");
	free(got);
	assert_false(exists(tmp));

	free(t1);
	free(t2);
	free(path);
	free(tmp);
}

/* ---- error paths ---- */

static void test_open_errors(void **state)
{
	const char *dir = *state;
	char *err = NULL;
	struct journal_state st;

	/* The state directory is a regular file. */
	char *file = fmt("%s/file", dir);
	write_bytes(file, "x", 1);
	memset(&st, 0xa5, sizeof st);
	struct journal *j = journal_open(file, T0, &st, &err);
	assert_null(j);
	assert_non_null(err);
	char *want = fmt("%s/journal", file);
	if (!strstr(err, want) || !strstr(err, strerror(ENOTDIR)))
		fail_msg("got \"%s\", want a message naming %s and \"%s\"", err, want, strerror(ENOTDIR));
	assert_int_equal(st.n_probes + st.n_seeds + st.n_budgets, 0);
	free(want);
	free(err);
	err = NULL;

	/* The state directory does not exist (journal_open does not create it; journal_lock does). */
	char *missing = fmt("%s/missing", dir);
	j = journal_open(missing, T0, &st, &err);
	assert_null(j);
	assert_non_null(err);
	want = fmt("%s/journal.new", missing);
	if (!strstr(err, want) || !strstr(err, strerror(ENOENT)))
		fail_msg("got \"%s\", want a message naming %s and \"%s\"", err, want, strerror(ENOENT));
	free(want);
	free(err);
	err = NULL;

	/* The journal is a directory. */
	char *sub = fmt("%s/sub", dir), *jdir = fmt("%s/sub/journal", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(mkdir(jdir, 0700), 0);
	j = journal_open(sub, T0, &st, &err);
	assert_null(j);
	assert_non_null(err);
	if (!strstr(err, jdir) || !strstr(err, strerror(EISDIR)))
		fail_msg("got \"%s\", want a message naming %s and \"%s\"", err, jdir, strerror(EISDIR));
	free(err);

	free(sub);
	free(jdir);
	free(missing);
	free(file);
}

static void test_lock(void **state)
{
	const char *dir = *state;
	char *err = NULL;
	char *sdir = fmt("%s/a/b", dir); /* created by journal_lock */
	char *lockpath = fmt("%s/lock", sdir);

	int fd1 = journal_lock(sdir, &err);
	if (fd1 < 0)
		fail_msg("journal_lock: %s", err);
	char *pid = fmt("%ld\n", (long)getpid());
	char *content = slurp(lockpath, NULL);
	assert_string_equal(content, pid);
	free(content);

	/* flock locks belong to the open file description: a second open conflicts, even here. */
	int fd2 = journal_lock(sdir, &err);
	assert_int_equal(fd2, -1);
	assert_non_null(err);
	char *want = fmt("(pid %ld)", (long)getpid());
	if (!strstr(err, want) || !strstr(err, sdir))
		fail_msg("got \"%s\", want a message naming %s and %s", err, sdir, want);
	free(want);
	free(err);
	err = NULL;
	/* The failed attempt left the holder's pid in place. */
	content = slurp(lockpath, NULL);
	assert_string_equal(content, pid);
	free(content);

	close(fd1);
	int fd3 = journal_lock(sdir, &err);
	if (fd3 < 0)
		fail_msg("journal_lock after the holder closed: %s", err);
	close(fd3);

	/* Not creatable: below a regular file. */
	char *file = fmt("%s/file", dir), *below = fmt("%s/file/state", dir);
	write_bytes(file, "x", 1);
	assert_int_equal(journal_lock(below, &err), -1);
	assert_non_null(err);
	if (!strstr(err, below))
		fail_msg("got \"%s\", want a message naming %s", err, below);
	free(err);

	free(file);
	free(below);
	free(pid);
	free(lockpath);
	free(sdir);
}

/* An empty state directory is an error, not a read past the end of the name (ASan). */
static void test_lock_empty_dir(void **state)
{
	(void)state;
	char *err = NULL;
	assert_int_equal(journal_lock("", &err), -1);
	assert_non_null(err);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_reference),
		cmocka_unit_test_setup_teardown(test_append_format, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_reduce, dir_setup, dir_teardown),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_torn_prefixes),
		cmocka_unit_test_setup_teardown(test_compaction, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_rewrite_leftovers, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_lock, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_append_after_failed_write, dir_setup, dir_teardown),
		cmocka_unit_test(test_lock_empty_dir),
		/* Last: it fails on a known bug, and sanitizer builds abort the whole program there. */
		cmocka_unit_test(test_budget_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
