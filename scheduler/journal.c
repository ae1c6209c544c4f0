#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "strbuf.h"
#include "strmap.h"
#include "xalloc.h"

#define MAX_FIELDS 16

struct journal {
	char *path;
	char *dir;
	int fd;
	size_t size;   /* bytes of whole records */
	bool torn;     /* a failed write may have left a partial record at the end */
	bool warned;   /* a write failure was logged (rate limit: once until a write succeeds) */
};

/* ---- encoding ---- */

static uint32_t crc32_buf(const char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= (unsigned char)p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return ~c;
}

static void put_escaped(struct strbuf *sb, const char *v)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p <= ' ' || *p == '%' || *p == 0x7f) {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			sb_appendn(sb, e, 3);
		} else {
			sb_appendc(sb, (char)*p);
		}
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes in place; returns -1 on a bad escape or an encoded NUL. */
static int unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r != '%') {
			*w++ = *r;
			continue;
		}
		int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -1;
		*w++ = (char)(hi * 16 + lo);
		r += 2;
	}
	*w = '\0';
	return 0;
}

static char *format_record(const char *type, va_list ap)
{
	struct strbuf body, line;
	sb_init(&body);
	sb_append(&body, type);
	for (;;) {
		const char *k = va_arg(ap, const char *);
		if (!k)
			break;
		const char *v = va_arg(ap, const char *);
		sb_appendc(&body, ' ');
		sb_append(&body, k);
		sb_appendc(&body, '=');
		put_escaped(&body, v);
	}
	sb_init(&line);
	sb_appendf(&line, "%08" PRIx32 " %s\n", crc32_buf(body.s, body.len), body.s);
	sb_fini(&body);
	return sb_steal(&line);
}

/* ---- reduction ---- */

struct reducer {
	struct journal_state *st;
	struct strmap probes;  /* id -> index + 1 */
	struct strmap seeds;   /* name -> index + 1 */
	struct strmap budgets; /* "day dom" -> index + 1 */
};

struct fields {
	size_t n;
	char *k[MAX_FIELDS];
	char *v[MAX_FIELDS];
};

static const char *field(const struct fields *f, const char *key)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->k[i], key) == 0)
			return f->v[i];
	return NULL;
}

static bool field_i64(const struct fields *f, const char *key, int64_t *out)
{
	const char *v = field(f, key);
	if (!v || !*v)
		return false;
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || *end)
		return false;
	*out = x;
	return true;
}

static struct jprobe *probe_get(struct reducer *rd, const char *id, bool create)
{
	uintptr_t i = (uintptr_t)strmap_get(&rd->probes, id);
	if (i)
		return &rd->st->probes[i - 1];
	if (!create)
		return NULL;
	struct journal_state *st = rd->st;
	st->probes = xrealloc(st->probes, (st->n_probes + 1) * sizeof *st->probes);
	struct jprobe *p = &st->probes[st->n_probes++];
	memset(p, 0, sizeof *p);
	p->id = xstrdup(id);
	p->seed = xstrdup("");
	p->dom = xstrdup("");
	p->att = xstrdup("");
	strmap_put(&rd->probes, id, (void *)(uintptr_t)st->n_probes);
	return p;
}

static void seed_slot(struct reducer *rd, const char *name, int64_t slot)
{
	uintptr_t i = (uintptr_t)strmap_get(&rd->seeds, name);
	struct journal_state *st = rd->st;
	if (!i) {
		st->seeds = xrealloc(st->seeds, (st->n_seeds + 1) * sizeof *st->seeds);
		memset(&st->seeds[st->n_seeds], 0, sizeof st->seeds[st->n_seeds]);
		st->seeds[st->n_seeds].name = xstrdup(name);
		st->seeds[st->n_seeds].slot_s = slot;
		st->n_seeds++;
		strmap_put(&rd->seeds, name, (void *)(uintptr_t)st->n_seeds);
		return;
	}
	if (slot > st->seeds[i - 1].slot_s)
		st->seeds[i - 1].slot_s = slot;
}

static void budget_add(struct reducer *rd, const char *dom, int64_t day, int n)
{
	char *key = xasprintf("%" PRId64 " %s", day, dom);
	uintptr_t i = (uintptr_t)strmap_get(&rd->budgets, key);
	struct journal_state *st = rd->st;
	if (!i) {
		st->budgets = xrealloc(st->budgets, (st->n_budgets + 1) * sizeof *st->budgets);
		st->budgets[st->n_budgets] = (struct jbudget){ .dom = xstrdup(dom), .day = day, .n = 0 };
		st->n_budgets++;
		i = st->n_budgets;
		strmap_put(&rd->budgets, key, (void *)(uintptr_t)i);
	}
	free(key);
	/* Saturating: a hand-edited journal must not wrap the count and lift the budget. */
	int *cur = &st->budgets[i - 1].n;
	*cur = n > INT32_MAX - *cur ? INT32_MAX : *cur + n;
}

static void set_str(char **dst, const char *v)
{
	if (!v)
		return;
	free(*dst);
	*dst = xstrdup(v);
}

/* Applies one parsed record; returns -1 when it lacks what its type needs. */
static int apply(struct reducer *rd, const char *type, const struct fields *f)
{
	const char *id = field(f, "id");
	int64_t x;
	if (strcmp(type, "seen") == 0) {
		const char *seed = field(f, "seed");
		if (!seed || !field_i64(f, "slot", &x))
			return -1;
		seed_slot(rd, seed, x);
		return 0;
	}
	if (strcmp(type, "win") == 0) {
		const char *seed = field(f, "seed");
		int64_t at, v[4];
		static const char *const keys[] = { "n0", "v0", "n1", "v1" };
		if (!seed || !field_i64(f, "at", &at))
			return -1;
		for (int k = 0; k < 4; k++)
			if (!field_i64(f, keys[k], &v[k]) || v[k] < 0 || v[k] > UINT32_MAX)
				return -1;
		seed_slot(rd, seed, 0);
		struct jseed *js = &rd->st->seeds[(uintptr_t)strmap_get(&rd->seeds, seed) - 1];
		if (at >= js->win_at_ms) {
			js->win_at_ms = at;
			js->win_next[0] = (uint32_t)v[0];
			js->win_validity[0] = (uint32_t)v[1];
			js->win_next[1] = (uint32_t)v[2];
			js->win_validity[1] = (uint32_t)v[3];
		}
		return 0;
	}
	if (strcmp(type, "budget") == 0) {
		const char *dom = field(f, "dom");
		int64_t day, n;
		if (!dom || !field_i64(f, "day", &day) || !field_i64(f, "n", &n) || n < 0 || n > INT32_MAX)
			return -1;
		budget_add(rd, dom, day, (int)n);
		return 0;
	}
	if (!id || !*id)
		return -1;
	if (strcmp(type, "send") == 0 || strcmp(type, "wait") == 0) {
		const char *seed = field(f, "seed"), *dom = field(f, "dom");
		int64_t sent, slot, n;
		if (!seed || !dom || !field_i64(f, "sent", &sent) || !field_i64(f, "slot", &slot) ||
		    !field_i64(f, "n", &n) || n < 0 || n > 10000)
			return -1;
		bool send = type[0] == 's';
		int64_t at = 0, next = 0;
		const char *att = field(f, "att");
		if (send ? !field_i64(f, "at", &at) || n < 1 : !field_i64(f, "next", &next) || !att)
			return -1;
		struct jprobe *p = probe_get(rd, id, true);
		set_str(&p->seed, seed);
		set_str(&p->dom, dom);
		p->sent_ms = sent;
		p->slot_s = slot;
		if (slot > 0)
			seed_slot(rd, seed, slot);
		if (send) {
			p->state = JPROBE_SENDING;
			p->send_at_ms = at;
			p->n = (int)n - 1;
			budget_add(rd, dom, at / 86400000, 1);
		} else {
			p->state = JPROBE_WAIT;
			p->n = (int)n;
			p->next_ms = next;
			set_str(&p->att, att);
		}
		return 0;
	}
	if (strcmp(type, "rb") == 0) {
		const char *json = field(f, "json"), *seed = field(f, "seed");
		int64_t sent, acc;
		if (!json || !seed || !field_i64(f, "sent", &sent) || !field_i64(f, "acc", &acc))
			return -1;
		struct jprobe *p = probe_get(rd, id, true);
		set_str(&p->seed, seed);
		p->state = JPROBE_READBACK;
		p->sent_ms = sent;
		p->accepted_ms = acc;
		p->late_until_ms = 0;
		set_str(&p->final_json, json);
		return 0;
	}
	if (strcmp(type, "late") == 0) { /* reported missing; still looked for until "until" */
		const char *json = field(f, "json"), *seed = field(f, "seed");
		int64_t sent, acc, until;
		if (!json || !seed || !field_i64(f, "sent", &sent) || !field_i64(f, "acc", &acc) ||
		    !field_i64(f, "until", &until) || until <= 0)
			return -1;
		struct jprobe *p = probe_get(rd, id, true);
		set_str(&p->seed, seed);
		p->state = JPROBE_READBACK;
		p->sent_ms = sent;
		p->accepted_ms = acc;
		p->late_until_ms = until;
		set_str(&p->final_json, json);
		return 0;
	}
	if (strcmp(type, "bnc") == 0) { /* bounces found so far for a probe being read back */
		const char *json = field(f, "json");
		struct jprobe *p = probe_get(rd, id, false);
		if (!json)
			return -1;
		if (p && p->state == JPROBE_READBACK)
			set_str(&p->bounces, json);
		return 0;
	}
	if (strcmp(type, "final") == 0) {
		const char *json = field(f, "json"), *seed = field(f, "seed");
		if (!json || !seed)
			return -1;
		struct jprobe *p = probe_get(rd, id, true);
		set_str(&p->seed, seed);
		p->state = JPROBE_FINAL;
		set_str(&p->final_json, json);
		return 0;
	}
	if (strcmp(type, "done") == 0) {
		struct jprobe *p = probe_get(rd, id, false);
		if (p)
			p->state = JPROBE_DONE;
		return 0;
	}
	return -1;
}

static void jprobe_fini(struct jprobe *p)
{
	free(p->id);
	free(p->seed);
	free(p->dom);
	free(p->att);
	free(p->final_json);
	free(p->bounces);
}

void journal_state_fini(struct journal_state *st)
{
	for (size_t i = 0; i < st->n_probes; i++)
		jprobe_fini(&st->probes[i]);
	free(st->probes);
	for (size_t i = 0; i < st->n_seeds; i++)
		free(st->seeds[i].name);
	free(st->seeds);
	for (size_t i = 0; i < st->n_budgets; i++)
		free(st->budgets[i].dom);
	free(st->budgets);
	memset(st, 0, sizeof *st);
}

/* Parses and applies one line (without its newline). Returns 0, or -1 with *why. */
static int replay_line(struct reducer *rd, char *line, const char **why)
{
	char *sp = strchr(line, ' ');
	if (!sp || sp - line != 8) {
		*why = "no checksum";
		return -1;
	}
	*sp = '\0';
	char *body = sp + 1;
	char *end;
	errno = 0;
	unsigned long want = strtoul(line, &end, 16);
	if (errno || *end || want != crc32_buf(body, strlen(body))) {
		*why = "checksum mismatch (torn or altered record)";
		return -1;
	}
	struct fields f = { 0 };
	char *save = NULL;
	char *type = strtok_r(body, " ", &save);
	if (!type) {
		*why = "empty record";
		return -1;
	}
	for (char *tok = strtok_r(NULL, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq || f.n == MAX_FIELDS || unescape(eq + 1) < 0) {
			*why = "malformed field";
			return -1;
		}
		*eq = '\0';
		f.k[f.n] = tok;
		f.v[f.n] = eq + 1;
		f.n++;
	}
	if (apply(rd, type, &f) < 0) {
		*why = strcmp(type, "seen") && strcmp(type, "send") && strcmp(type, "wait") && strcmp(type, "final") &&
				       strcmp(type, "done") && strcmp(type, "budget") && strcmp(type, "rb") &&
				       strcmp(type, "win") && strcmp(type, "bnc") &&
				       strcmp(type, "late")
			       ? "unknown record type"
			       : "record lacks a required field";
		return -1;
	}
	return 0;
}

void journal_replay_text(const char *text, size_t len, const char *name, int64_t now_ms, struct journal_state *st)
{
	struct reducer rd;
	memset(st, 0, sizeof *st);
	rd.st = st;
	strmap_init(&rd.probes, false);
	strmap_init(&rd.seeds, false);
	strmap_init(&rd.budgets, false);
	size_t lineno = 0;
	for (size_t off = 0; off < len;) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
		lineno++;
		const char *why = NULL;
		if (!nl) {
			why = "truncated (no end of line)";
		} else if (memchr(text + off, '\0', n)) {
			why = "NUL byte in record";
		} else {
			char *line = xstrndup(text + off, n);
			if (replay_line(&rd, line, &why) == 0)
				why = NULL;
			free(line);
		}
		if (why) {
			log_warnx("journal %s:%zu: %s: record skipped", name, lineno, why);
			st->n_corrupt++;
		}
		off += n + (nl ? 1 : 0);
	}
	strmap_fini(&rd.probes);
	strmap_fini(&rd.seeds);
	strmap_fini(&rd.budgets);

	/* Keep live probes and today's budgets only. */
	size_t w = 0;
	for (size_t i = 0; i < st->n_probes; i++) {
		if (st->probes[i].state == JPROBE_DONE)
			jprobe_fini(&st->probes[i]);
		else
			st->probes[w++] = st->probes[i];
	}
	st->n_probes = w;
	w = 0;
	for (size_t i = 0; i < st->n_budgets; i++) {
		if (st->budgets[i].day < now_ms / 86400000)
			free(st->budgets[i].dom);
		else
			st->budgets[w++] = st->budgets[i];
	}
	st->n_budgets = w;
}

/* ---- files ---- */

int journal_lock(const char *state_dir, char **err)
{
	if (mkdir_p(state_dir, 0750) < 0) {
		*err = xasprintf("cannot create state directory %s: %s", state_dir, strerror(errno));
		return -1;
	}
	char *path = xasprintf("%s/lock", state_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		*err = xasprintf("cannot open %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (e == EWOULDBLOCK)
			*err = xasprintf("state directory %s is in use by another mailcanary (pid %s): run either the "
					 "daemon or the cron mode (probe --due) on one state directory, not both",
					 state_dir, *pid ? pid : "unknown");
		else
			*err = xasprintf("cannot lock %s: %s", path, strerror(e));
		close(fd);
		free(path);
		return -1;
	}
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warn("cannot write the pid into %s", path);
	free(path);
	return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void emit(struct strbuf *out, const char *type, ...) __attribute__((sentinel));
static void emit(struct strbuf *out, const char *type, ...)
{
	va_list ap;
	va_start(ap, type);
	char *rec = format_record(type, ap);
	va_end(ap);
	sb_append(out, rec);
	free(rec);
}

/* The state as records, in an order that replays to the same state. */
static void state_text(const struct journal_state *st, struct strbuf *out)
{
	char a[24], b[24], c[24], d[24];
	for (size_t i = 0; i < st->n_seeds; i++) {
		snprintf(a, sizeof a, "%" PRId64, st->seeds[i].slot_s);
		emit(out, "seen", "seed", st->seeds[i].name, "slot", a, NULL);
		const struct jseed *js = &st->seeds[i];
		if (js->win_at_ms) {
			char n0[16], v0[16], n1[16], v1[16];
			snprintf(a, sizeof a, "%" PRId64, js->win_at_ms);
			snprintf(n0, sizeof n0, "%" PRIu32, js->win_next[0]);
			snprintf(v0, sizeof v0, "%" PRIu32, js->win_validity[0]);
			snprintf(n1, sizeof n1, "%" PRIu32, js->win_next[1]);
			snprintf(v1, sizeof v1, "%" PRIu32, js->win_validity[1]);
			emit(out, "win", "seed", js->name, "at", a, "n0", n0, "v0", v0, "n1", n1, "v1", v1, NULL);
		}
	}
	for (size_t i = 0; i < st->n_budgets; i++) {
		/* The send records written below for interrupted attempts count again on replay. */
		int n = st->budgets[i].n;
		for (size_t k = 0; k < st->n_probes; k++)
			if (st->probes[k].state == JPROBE_SENDING && st->probes[k].send_at_ms / 86400000 == st->budgets[i].day &&
			    strcmp(st->probes[k].dom, st->budgets[i].dom) == 0 && n > 0)
				n--;
		snprintf(a, sizeof a, "%" PRId64, st->budgets[i].day);
		snprintf(b, sizeof b, "%d", n);
		emit(out, "budget", "dom", st->budgets[i].dom, "day", a, "n", b, NULL);
	}
	for (size_t i = 0; i < st->n_probes; i++) {
		const struct jprobe *p = &st->probes[i];
		if (p->state == JPROBE_FINAL) {
			emit(out, "final", "id", p->id, "seed", p->seed, "json", p->final_json ? p->final_json : "", NULL);
			continue;
		}
		if (p->state == JPROBE_READBACK) {
			snprintf(a, sizeof a, "%" PRId64, p->sent_ms);
			snprintf(b, sizeof b, "%" PRId64, p->accepted_ms);
			if (p->late_until_ms) {
				snprintf(c, sizeof c, "%" PRId64, p->late_until_ms);
				emit(out, "late", "id", p->id, "seed", p->seed, "sent", a, "acc", b, "until", c, "json",
				     p->final_json ? p->final_json : "", NULL);
			} else {
				emit(out, "rb", "id", p->id, "seed", p->seed, "sent", a, "acc", b, "json",
				     p->final_json ? p->final_json : "", NULL);
			}
			if (p->bounces)
				emit(out, "bnc", "id", p->id, "json", p->bounces, NULL);
			continue;
		}
		snprintf(a, sizeof a, "%" PRId64, p->sent_ms);
		snprintf(b, sizeof b, "%" PRId64, p->slot_s);
		snprintf(c, sizeof c, "%d", p->n);
		snprintf(d, sizeof d, "%" PRId64, p->state == JPROBE_WAIT ? p->next_ms : 0);
		emit(out, "wait", "id", p->id, "seed", p->seed, "dom", p->dom, "sent", a, "slot", b, "n", c, "next", d,
		     "att", p->att, NULL);
		if (p->state == JPROBE_SENDING) {
			snprintf(c, sizeof c, "%d", p->n + 1);
			snprintf(d, sizeof d, "%" PRId64, p->send_at_ms);
			emit(out, "send", "id", p->id, "seed", p->seed, "dom", p->dom, "sent", a, "slot", b, "n", c, "at",
			     d, NULL);
		}
	}
}

/* The journal's text: none yet is an empty journal. */
static int read_file(const char *path, char **text, size_t *len, char **err)
{
	*len = 0;
	*text = read_all(path, len);
	if (*text || errno == ENOENT)
		return 0;
	*err = xasprintf("cannot read %s: %s", path, strerror(errno));
	return -1;
}

/* Writes st as the new journal (temporary file, fsync, rename, fsync of the directory) and opens
 * it for appending. */
static int rewrite(struct journal *j, const struct journal_state *st, char **err)
{
	struct strbuf text;
	sb_init(&text);
	state_text(st, &text);
	char *tmp = xasprintf("%s.new", j->path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = -1;
	if (fd < 0) {
		*err = xasprintf("cannot create %s: %s", tmp, strerror(errno));
	} else if (write_all(fd, text.s, text.len) < 0 || fsync(fd) < 0) {
		*err = xasprintf("cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
	} else if (close(fd) < 0 || rename(tmp, j->path) < 0) {
		*err = xasprintf("cannot replace %s: %s", j->path, strerror(errno));
		unlink(tmp);
	} else {
		int dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		rc = 0;
	}
	free(tmp);
	if (rc == 0) {
		int nfd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (nfd < 0) {
			*err = xasprintf("cannot open %s: %s", j->path, strerror(errno));
			rc = -1;
		} else {
			if (j->fd >= 0)
				close(j->fd);
			j->fd = nfd;
			j->size = text.len;
		}
	}
	sb_fini(&text);
	return rc;
}

struct journal *journal_open(const char *state_dir, int64_t now_ms, struct journal_state *st, char **err)
{
	struct journal *j = xcalloc(1, sizeof *j);
	j->fd = -1;
	j->dir = xstrdup(state_dir);
	j->path = xasprintf("%s/journal", state_dir);
	char *text;
	size_t len;
	memset(st, 0, sizeof *st);
	if (read_file(j->path, &text, &len, err) < 0) {
		journal_close(j);
		return NULL;
	}
	journal_replay_text(text ? text : "", len, j->path, now_ms, st);
	free(text);
	if (rewrite(j, st, err) < 0) {
		journal_state_fini(st);
		journal_close(j);
		return NULL;
	}
	return j;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j->path);
	free(j->dir);
	free(j);
}

static int append_va(struct journal *j, bool sync, const char *type, va_list ap)
{
	char *rec = format_record(type, ap);
	size_t n = strlen(rec);
	/* After a write that could not be cut back, start on a fresh line so that its torn
	 * remains stay one corrupt record and do not swallow this one. */
	int rc = j->torn ? write_all(j->fd, "\n", 1) : 0;
	if (rc == 0) {
		j->size += j->torn;
		j->torn = false;
		rc = write_all(j->fd, rec, n);
	}
	if (rc == 0 && sync)
		rc = fdatasync(j->fd);
	free(rec);
	if (rc < 0) {
		/* Cut a partial record off (disk full, file size limit); the caller learns it failed. */
		int e = errno;
		if (ftruncate(j->fd, (off_t)j->size) < 0)
			j->torn = true;
		errno = e;
		if (!j->warned)
			log_warn("journal %s: cannot write a %s record (pending work may be lost on restart)", j->path,
				 type);
		j->warned = true;
		return -1;
	}
	if (j->warned)
		log_info("journal %s: writing again", j->path);
	j->warned = false;
	j->size += n;
	return 0;
}

int journal_append(struct journal *j, const char *type, ...)
{
	va_list ap;
	va_start(ap, type);
	int rc = append_va(j, true, type, ap);
	va_end(ap);
	return rc;
}

int journal_append_lazy(struct journal *j, const char *type, ...)
{
	va_list ap;
	va_start(ap, type);
	int rc = append_va(j, false, type, ap);
	va_end(ap);
	return rc;
}

int journal_sync(struct journal *j)
{
	if (fdatasync(j->fd) == 0)
		return 0;
	if (!j->warned)
		log_warn("journal %s: cannot sync (pending work may be lost on restart)", j->path);
	j->warned = true;
	return -1;
}

void journal_maybe_compact(struct journal *j, size_t limit, int64_t now_ms)
{
	if (j->size <= limit)
		return;
	char *text, *err = NULL;
	size_t len;
	if (read_file(j->path, &text, &len, &err) < 0) {
		log_warnx("journal: %s", err);
		free(err);
		return;
	}
	struct journal_state st;
	journal_replay_text(text ? text : "", len, j->path, now_ms, &st);
	free(text);
	if (rewrite(j, &st, &err) < 0) {
		log_warnx("journal: compaction failed: %s", err);
		free(err);
	}
	journal_state_fini(&st);
}
