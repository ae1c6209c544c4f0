/* Fuzz target: the journal (scheduler/journal.c), the file a restart trusts to continue where the
 * last process stopped: journal_replay_text, and journal_open's compaction.
 *
 * Input: byte 0 holds flags, the rest is the journal text.
 *   bit 0: prepend each line's CRC-32 ("%08x ", computed here), so that the fuzzer reaches the
 *          records behind the checksum; clear: the text is the journal as is
 *   bit 1: replay at now = 0 (every budget day >= 0 kept); clear: now = 2025-11-28 12:00 UTC
 * Seeds start with '0' (raw) or '1' (checksums added).
 *
 * Checked: the state is sound (ids non-empty and unique; seed, dom and att never NULL; n in
 * 0..10000; no DONE probe; FINAL has its json; seeds and budget keys unique; budgets >= 0 and not
 * before today); n_corrupt <= the number of lines. Then the text is written to DIR/journal, DIR =
 * /dev/shm/mailcanary-fuzz-journal.PID (or /tmp/... without /dev/shm: journal_open fsyncs) and
 * journal_open must replay it to the same state, rewrite it (no journal.new left) into a text
 * that replays with no corrupt record to an equal state (the fields that mean something in each
 * probe state), and that a second journal_open leaves byte for byte as it is. Leaks on any path
 * are LeakSanitizer reports. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "support.h"
/* After support.h: log.h includes <stdnoreturn.h>, whose noreturn macro would turn support.h's
 * __attribute__((noreturn)) into __attribute__((_Noreturn)). */
#include "log.h"

#define NOW INT64_C(1764331200000)
#define DAY_MS INT64_C(86400000)

static char dir[80], path[96], tmppath[112];

static void cleanup(void)
{
	if (path[0])
		unlink(path);
	if (tmppath[0])
		unlink(tmppath);
	if (dir[0])
		rmdir(dir);
}

static void setup(void)
{
	struct stat st;
	const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
				   ? "/dev/shm"
				   : "/tmp";
	snprintf(dir, sizeof dir, "%s/mailcanary-fuzz-journal.%ld", base, (long)getpid());
	snprintf(path, sizeof path, "%s/journal", dir);
	snprintf(tmppath, sizeof tmppath, "%s/journal.new", dir);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		perror(dir);
		abort();
	}
	atexit(cleanup);
	log_set_level(LOG_LEVEL_ERR); /* one warning per corrupt record otherwise */
}

/* CRC-32/ISO-HDLC, bit by bit, independent of journal.c. */
static uint32_t crc32_ref(const char *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= (unsigned char)p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1u ? (c >> 1) ^ 0xEDB88320u : c >> 1;
	}
	return c ^ 0xFFFFFFFFu;
}

/* Each line (and a last one without newline) prefixed with the CRC of its bytes. */
static char *add_checksums(const char *in, size_t len, size_t *outlen)
{
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += in[i] == '\n';
	char *out = malloc(len + lines * 9 + 1);
	size_t o = 0;
	if (!out)
		abort();
	for (size_t off = 0; off < len;) {
		const char *nl = memchr(in + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (in + off)) : len - off;
		char crc[10];
		snprintf(crc, sizeof crc, "%08" PRIx32 " ", crc32_ref(in + off, n));
		memcpy(out + o, crc, 9);
		o += 9;
		memcpy(out + o, in + off, n + (nl ? 1 : 0));
		o += n + (nl ? 1 : 0);
		off += n + (nl ? 1 : 0);
	}
	*outlen = o;
	return out;
}

static const char *sname(enum jprobe_state s)
{
	return s == JPROBE_WAIT ? "WAIT" : s == JPROBE_SENDING ? "SENDING" : s == JPROBE_FINAL ? "FINAL" : "?";
}

static void check_sound(const struct journal_state *st, int64_t now, size_t n_lines)
{
	FUZZ_CHECK(st->n_corrupt <= n_lines, "%zu corrupt records in %zu lines", st->n_corrupt, n_lines);
	FUZZ_CHECK(!st->n_probes || st->probes, "probes");
	FUZZ_CHECK(!st->n_seeds || st->seeds, "seeds");
	FUZZ_CHECK(!st->n_budgets || st->budgets, "budgets");
	for (size_t i = 0; i < st->n_probes; i++) {
		const struct jprobe *p = &st->probes[i];
		FUZZ_CHECK(p->id && *p->id && p->seed && p->dom && p->att, "probe %zu: a NULL or empty field", i);
		FUZZ_CHECK(p->n >= 0 && p->n <= 10000, "probe %s: n %d", p->id, p->n);
		FUZZ_CHECK(p->state == JPROBE_WAIT || p->state == JPROBE_SENDING || p->state == JPROBE_FINAL,
			   "probe %s: state %d", p->id, (int)p->state);
		FUZZ_CHECK(p->state != JPROBE_FINAL || p->final_json, "probe %s: FINAL without json", p->id);
		FUZZ_CHECK(p->state != JPROBE_SENDING || p->n < 10000, "probe %s: SENDING attempt %d", p->id, p->n + 1);
		for (size_t k = 0; k < i; k++)
			FUZZ_CHECK(strcmp(st->probes[k].id, p->id) != 0, "probe %s twice", p->id);
	}
	for (size_t i = 0; i < st->n_seeds; i++) {
		FUZZ_CHECK(st->seeds[i].name != NULL, "seed %zu: NULL name", i);
		for (size_t k = 0; k < i; k++)
			FUZZ_CHECK(strcmp(st->seeds[k].name, st->seeds[i].name) != 0, "seed %s twice", st->seeds[i].name);
	}
	for (size_t i = 0; i < st->n_budgets; i++) {
		const struct jbudget *b = &st->budgets[i];
		FUZZ_CHECK(b->dom != NULL, "budget %zu: NULL dom", i);
		FUZZ_CHECK(b->n >= 0, "budget %s day %" PRId64 ": n %d", b->dom, b->day, b->n);
		FUZZ_CHECK(b->day >= now / DAY_MS, "budget %s: day %" PRId64 " before today", b->dom, b->day);
		for (size_t k = 0; k < i; k++)
			FUZZ_CHECK(strcmp(st->budgets[k].dom, b->dom) != 0 || st->budgets[k].day != b->day,
				   "budget %s day %" PRId64 " twice", b->dom, b->day);
	}
}

/* a and b hold the same work: the same probes, seeds and budgets in the same order, each probe
 * with the fields its state uses (journal.h). */
static void check_equal(const struct journal_state *a, const struct journal_state *b, const char *what)
{
	FUZZ_CHECK(a->n_probes == b->n_probes && a->n_seeds == b->n_seeds && a->n_budgets == b->n_budgets,
		   "%s: %zu/%zu/%zu probes/seeds/budgets, want %zu/%zu/%zu", what, b->n_probes, b->n_seeds,
		   b->n_budgets, a->n_probes, a->n_seeds, a->n_budgets);
	for (size_t i = 0; i < a->n_probes; i++) {
		const struct jprobe *p = &a->probes[i], *q = &b->probes[i];
		FUZZ_CHECK(strcmp(p->id, q->id) == 0 && p->state == q->state && strcmp(p->seed, q->seed) == 0,
			   "%s: probe %zu is %s %s seed %s, want %s %s seed %s", what, i, q->id, sname(q->state), q->seed,
			   p->id, sname(p->state), p->seed);
		if (p->state == JPROBE_FINAL) {
			FUZZ_CHECK(strcmp(p->final_json, q->final_json) == 0, "%s: probe %s json \"%s\", want \"%s\"", what,
				   p->id, q->final_json, p->final_json);
			continue;
		}
		FUZZ_CHECK(strcmp(p->dom, q->dom) == 0 && p->sent_ms == q->sent_ms && p->slot_s == q->slot_s &&
				   p->n == q->n && strcmp(p->att, q->att) == 0,
			   "%s: probe %s: dom %s sent %" PRId64 " slot %" PRId64 " n %d att \"%s\", want dom %s sent %" PRId64
			   " slot %" PRId64 " n %d att \"%s\"",
			   what, p->id, q->dom, q->sent_ms, q->slot_s, q->n, q->att, p->dom, p->sent_ms, p->slot_s, p->n,
			   p->att);
		if (p->state == JPROBE_WAIT)
			FUZZ_CHECK(p->next_ms == q->next_ms, "%s: probe %s next %" PRId64 ", want %" PRId64, what, p->id,
				   q->next_ms, p->next_ms);
		else
			FUZZ_CHECK(p->send_at_ms == q->send_at_ms, "%s: probe %s at %" PRId64 ", want %" PRId64, what,
				   p->id, q->send_at_ms, p->send_at_ms);
	}
	for (size_t i = 0; i < a->n_seeds; i++)
		FUZZ_CHECK(strcmp(a->seeds[i].name, b->seeds[i].name) == 0 && a->seeds[i].slot_s == b->seeds[i].slot_s,
			   "%s: seed %zu is %s slot %" PRId64 ", want %s slot %" PRId64, what, i, b->seeds[i].name,
			   b->seeds[i].slot_s, a->seeds[i].name, a->seeds[i].slot_s);
	for (size_t i = 0; i < a->n_budgets; i++)
		FUZZ_CHECK(strcmp(a->budgets[i].dom, b->budgets[i].dom) == 0 && a->budgets[i].day == b->budgets[i].day &&
				   a->budgets[i].n == b->budgets[i].n,
			   "%s: budget %zu is %s day %" PRId64 " n %d, want %s day %" PRId64 " n %d", what, i,
			   b->budgets[i].dom, b->budgets[i].day, b->budgets[i].n, a->budgets[i].dom, a->budgets[i].day,
			   a->budgets[i].n);
}

static void write_file(const char *p, const char *data, size_t len)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	FUZZ_CHECK(fd >= 0, "%s: %s", p, strerror(errno));
	FUZZ_CHECK(len == 0 || write(fd, data, len) == (ssize_t)len, "%s: short write", p);
	close(fd);
}

static char *read_all(const char *p, size_t *len)
{
	int fd = open(p, O_RDONLY);
	FUZZ_CHECK(fd >= 0, "%s: %s", p, strerror(errno));
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		abort();
	for (;;) {
		if (n == cap && !(buf = realloc(buf, cap *= 2)))
			abort();
		ssize_t r = read(fd, buf + n, cap - n);
		FUZZ_CHECK(r >= 0, "%s: %s", p, strerror(errno));
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	/* exactly sized: an over-read is an ASan report */
	char *exact = malloc(n ? n : 1);
	if (!exact)
		abort();
	memcpy(exact, buf, n);
	free(buf);
	*len = n;
	return exact;
}

/* journal_open on dir; returns the compacted file's text. */
static char *open_compact(int64_t now, struct journal_state *st, size_t *len)
{
	char *err = NULL;
	struct journal *j = journal_open(dir, now, st, &err);
	FUZZ_CHECK(j != NULL, "journal_open: %s", err ? err : "(no message)");
	journal_close(j);
	FUZZ_CHECK(access(tmppath, F_OK) == -1, "%s left behind", tmppath);
	return read_all(path, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0])
		setup();
	if (size < 1)
		return 0;
	bool fix = data[0] & 1;
	int64_t now = data[0] & 2 ? 0 : NOW;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	char *text;
	if (fix) {
		text = add_checksums(in, len, &len);
	} else {
		text = malloc(len ? len : 1);
		if (!text)
			abort();
		memcpy(text, in, len);
	}
	size_t n_lines = 0;
	for (size_t i = 0; i < len; i++)
		n_lines += text[i] == '\n';
	if (len && text[len - 1] != '\n')
		n_lines++;

	struct journal_state st1, st2, st3, st4;
	journal_replay_text(text, len, "fuzz", now, &st1);
	check_sound(&st1, now, n_lines);

	/* journal_open replays the same text to the same state, and compacts. */
	write_file(path, text, len);
	size_t clen, clen2;
	char *compacted = open_compact(now, &st2, &clen);
	FUZZ_CHECK(st2.n_corrupt == st1.n_corrupt, "journal_open: %zu corrupt, replay: %zu", st2.n_corrupt,
		   st1.n_corrupt);
	check_equal(&st1, &st2, "journal_open");

	/* The compacted text is clean and holds the same work. */
	journal_replay_text(compacted, clen, "fuzz-compacted", now, &st3);
	FUZZ_CHECK(st3.n_corrupt == 0, "the compacted journal has %zu corrupt records:\n%.*s", st3.n_corrupt,
		   (int)clen, compacted);
	check_equal(&st1, &st3, "compacted");
	check_sound(&st3, now, n_lines + 1);

	/* Compaction is a fixed point. */
	char *again = open_compact(now, &st4, &clen2);
	FUZZ_CHECK(st4.n_corrupt == 0, "second journal_open: %zu corrupt", st4.n_corrupt);
	check_equal(&st1, &st4, "second journal_open");
	FUZZ_CHECK(clen == clen2 && memcmp(compacted, again, clen) == 0,
		   "a second compaction changed the file:\n%.*s\n---\n%.*s", (int)clen, compacted, (int)clen2, again);

	journal_state_fini(&st1);
	journal_state_fini(&st2);
	journal_state_fini(&st3);
	journal_state_fini(&st4);
	free(compacted);
	free(again);
	free(text);
	return 0;
}
