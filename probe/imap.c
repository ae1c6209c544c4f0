#include "imap.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "dsn.h"
#include "headers.h"
#include "message.h"
#include "strbuf.h"
#include "xalloc.h"

#define BODY_MAX (2u << 20)                  /* what one command may return to us */
#define DISCOVERY_TTL_US (3600LL * 1000000)   /* CAPABILITY and the junk folder are kept this long */
#define OR_CHUNK 64                           /* wanted probes per UID SEARCH */
#define MAX_CANDIDATES 1024                   /* UIDs taken from one UID SEARCH */
#define MAX_DIRECT 20                         /* up to this many new UIDs: FETCH their headers */

struct imap_conn {
	CURL *easy;                 /* keeps its connection between polls */
	char *who;                  /* url, username, ca_file, source_ip of the account it serves */
	char selected[IMAP_FOLDER_MAX]; /* the folder selected by the last command on it ("": unsure) */
	bool desync;                /* a response was misread: drop the connection */
	bool discovered;            /* CAPABILITY and LIST done, at discovered_us */
	int64_t discovered_us;
	char junk_folder[IMAP_FOLDER_MAX];
	bool special_use, uidplus;
};

struct session {
	const struct imap_account *acct;
	struct imap_poll *p;
	struct imap_conn *conn;
	CURL *easy;
	struct strbuf body;    /* the command's untagged data (WRITEFUNCTION) */
	struct strbuf head;    /* untagged responses curl shows only as headers (SELECT's) */
	bool (*cancelled)(void *);
	void *carg;
	char errbuf[CURL_ERROR_SIZE];
};

/* Case-insensitive strstr (strcasestr is a GNU extension). */
static const char *ci_find(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return hay;
	return NULL;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
	struct strbuf *sb = arg;
	size_t len = size * n;
	if (sb->len + len > BODY_MAX)
		return 0; /* a server flooding us: the command fails */
	sb_appendn(sb, data, len);
	return len;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct session *s = arg;
	(void)a, (void)b, (void)c, (void)d;
	return s->cancelled && s->cancelled(s->carg) ? 1 : 0;
}

/* "imap://host:port/" plus the escaped folder (NULL: none) and an optional suffix. */
static char *url_for(const struct session *s, const char *folder, const char *suffix)
{
	const char *base = s->acct->url;
	size_t n = strlen(base);
	struct strbuf sb;
	sb_init(&sb);
	sb_append(&sb, base);
	if (n == 0 || base[n - 1] != '/')
		sb_appendc(&sb, '/');
	if (folder) {
		char *esc = curl_easy_escape(s->easy, folder, 0);
		sb_append(&sb, esc ? esc : "");
		curl_free(esc);
	}
	if (suffix)
		sb_append(&sb, suffix);
	return sb_steal(&sb);
}

/* One command: a custom request (NULL: the URL's own FETCH) on folder (NULL: none). */
static CURLcode run(struct session *s, const char *folder, const char *suffix, const char *request)
{
	char *url = url_for(s, folder, suffix);
	sb_reset(&s->body);
	sb_reset(&s->head);
	s->errbuf[0] = '\0';
	curl_easy_setopt(s->easy, CURLOPT_URL, url);
	curl_easy_setopt(s->easy, CURLOPT_CUSTOMREQUEST, request);
	CURLcode rc = s->cancelled && s->cancelled(s->carg) ? CURLE_ABORTED_BY_CALLBACK : curl_easy_perform(s->easy);
	if (folder) /* libcurl SELECTed it (or had it selected): the server's selected mailbox now */
		snprintf(s->conn->selected, sizeof s->conn->selected, "%s", rc == CURLE_OK ? folder : "");
	long connects = 0;
	if (s->p->n_commands++ == 0 && curl_easy_getinfo(s->easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK &&
	    connects > 0)
		s->p->reused = false; /* the kept connection had gone (or there was none): a new one */
	free(url);
	return rc;
}

static void set_error(struct session *s, const char *what, CURLcode rc)
{
	const char *why = s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc);
	if (rc == CURLE_LOGIN_DENIED && (!strcmp(what, "login") || !s->errbuf[0])) {
		what = "login";
		why = "the server refused the user name or password";
	}
	if (!s->p->error[0])
		snprintf(s->p->error, sizeof s->p->error, "%s: %.200s", what, why);
}

/* ---- parsing the untagged responses ---- */

/* Next line of text (without CR LF) starting at *pos; NULL at the end. */
static char *next_line(const struct strbuf *sb, size_t *pos)
{
	if (*pos >= sb->len)
		return NULL;
	const char *start = sb->s + *pos;
	const char *nl = memchr(start, '\n', sb->len - *pos);
	size_t n = nl ? (size_t)(nl - start) : sb->len - *pos;
	*pos += n + (nl ? 1 : 0);
	while (n && (start[n - 1] == '\r'))
		n--;
	return xstrndup(start, n);
}

/* The mailbox name of a "* LIST (flags) delim name" line (quoted or atom), into out. */
static bool list_name(const char *line, char *out, size_t outsz, char *flags, size_t flagsz)
{
	const char *p = line + 7; /* "* LIST " */
	if (strncasecmp(line, "* LIST ", 7) != 0 || *p != '(')
		return false;
	const char *close = strchr(p, ')');
	if (!close)
		return false;
	snprintf(flags, flagsz, "%.*s", (int)(close - p - 1), p + 1);
	p = close + 1;
	while (*p == ' ')
		p++;
	/* the delimiter: "x" or NIL */
	if (*p == '"') {
		p = strchr(p + 1, '"');
		if (!p)
			return false;
		p++;
	} else if (strncasecmp(p, "NIL", 3) == 0) {
		p += 3;
	} else {
		return false;
	}
	while (*p == ' ')
		p++;
	size_t o = 0;
	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			if (o + 1 < outsz)
				out[o++] = *p;
		}
	} else {
		for (; *p && *p != ' '; p++)
			if (o + 1 < outsz)
				out[o++] = *p;
	}
	out[o] = '\0';
	return o > 0;
}

static bool has_flag(const char *flags, const char *flag)
{
	size_t n = strlen(flag);
	for (const char *p = flags; (p = ci_find(p, flag)) != NULL; p += n)
		if ((p == flags || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
			return true;
	return false;
}

/* Finds the junk folder: \Junk from SPECIAL-USE, else a well-known name. */
static void find_junk(struct session *s)
{
	static const char *const names[] = { "Junk", "Spam", "Junk E-mail", "Junk Email", "[Gmail]/Spam",
					     "Bulk Mail", "INBOX.Junk", "INBOX.Spam", "INBOX/Junk", "INBOX/Spam" };
	char name[IMAP_FOLDER_MAX], flags[256];
	CURLcode rc = run(s, NULL, NULL, "LIST \"\" \"*\" RETURN (SPECIAL-USE)");
	bool special = rc == CURLE_OK;
	if (!special)
		rc = run(s, NULL, NULL, "LIST \"\" \"*\"");
	if (rc != CURLE_OK)
		return;
	size_t pos = 0, best = sizeof names / sizeof names[0];
	for (char *line; (line = next_line(&s->body, &pos)) != NULL; free(line)) {
		if (!list_name(line, name, sizeof name, flags, sizeof flags))
			continue;
		if (has_flag(flags, "\\Noselect") || has_flag(flags, "\\NonExistent"))
			continue;
		if (special && has_flag(flags, "\\Junk")) {
			snprintf(s->conn->junk_folder, sizeof s->conn->junk_folder, "%s", name);
			s->conn->special_use = true;
			best = 0;
			free(line);
			break;
		}
		for (size_t i = 0; i < best; i++) {
			if (strcasecmp(name, names[i]) == 0) {
				snprintf(s->conn->junk_folder, sizeof s->conn->junk_folder, "%s", name);
				best = i;
				break;
			}
		}
	}
}

/* "UIDNEXT n" / "UIDVALIDITY n" of a "* STATUS folder (...)" response. */
static uint32_t status_item(const struct strbuf *sb, const char *item)
{
	const char *st = sb->s ? ci_find(sb->s, "* STATUS ") : NULL;
	const char *p = st ? ci_find(st, item) : NULL;
	if (!p)
		return 0;
	unsigned long v = strtoul(p + strlen(item), NULL, 10);
	return v > UINT32_MAX ? 0 : (uint32_t)v;
}

/* Appends folder as an IMAP quoted string; false for a name that cannot be one (CR, LF). */
static bool quote_folder(struct strbuf *sb, const char *folder)
{
	sb_appendc(sb, '"');
	for (const char *p = folder; *p; p++) {
		if (*p == '\r' || *p == '\n')
			return false;
		if (*p == '"' || *p == '\\')
			sb_appendc(sb, '\\');
		sb_appendc(sb, *p);
	}
	sb_appendc(sb, '"');
	return true;
}

/* The UIDs of "* SEARCH 1 2 3", at most max. */
static size_t search_uids(const struct strbuf *sb, uint32_t *uids, size_t max)
{
	size_t n = 0, pos = 0;
	for (char *line; (line = next_line(sb, &pos)) != NULL; free(line)) {
		if (strncasecmp(line, "* SEARCH", 8) != 0)
			continue;
		for (char *p = line + 8; *p && n < max;) {
			while (*p == ' ')
				p++;
			if (!isdigit((unsigned char)*p))
				break;
			unsigned long v = strtoul(p, &p, 10);
			if (v > 0 && v <= UINT32_MAX)
				uids[n++] = (uint32_t)v;
		}
	}
	return n;
}

/* The unfolded value of the first field called name in a header block, into out; false when
 * there is none or it does not fit (then it is no token of ours either). */
static bool header_field(const char *block, const char *name, char *out, size_t outsz)
{
	struct hdr_iter it;
	struct hdr_field f;
	hdr_iter_init(&it, block, strlen(block));
	return hdr_next_named(&it, name, &f) && hdr_unfold(f.value, f.value_len, out, outsz) < outsz;
}

/* INTERNALDATE "28-Nov-2026 10:36:48 +0000" -> Unix seconds, or -1. */
static int64_t internaldate(const struct strbuf *sb)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *p = sb->s ? ci_find(sb->s, "INTERNALDATE \"") : NULL;
	int d, y, h, mi, se, zh;
	char mon[4], sign;
	if (!p || sscanf(p + 14, "%2d-%3s-%4d %2d:%2d:%2d %c%4d", &d, mon, &y, &h, &mi, &se, &sign, &zh) != 8)
		return -1;
	const char *m = strstr(months, mon);
	if (!m || (m - months) % 3 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 || (sign != '+' && sign != '-'))
		return -1;
	int64_t t = (civil_to_days(y, (int)(m - months) / 3 + 1, d) * 24 + h) * 3600 + mi * 60 + se;
	int64_t off = (zh / 100) * 3600 + (zh % 100) * 60;
	return sign == '+' ? t - off : t + off;
}

/* ---- the poll ---- */

/* Cleans up our verified message uid in folder as the account asks; the folder must be
 * SELECTed (read-write) unless the account keeps it. Returns whether it was done; note says. */
static bool cleanup(struct session *s, const char *folder, uint32_t uid, char *note, size_t notesz)
{
	char cmd[128];
	const struct imap_account *a = s->acct;
	if (a->cleanup == IMAP_CLEANUP_KEEP) {
		snprintf(note, notesz, "kept (cleanup = \"keep\")");
		return true;
	}
	if (a->cleanup == IMAP_CLEANUP_MOVE) {
		char *q = xasprintf("UID MOVE %u \"%s\"", uid, a->move_to ? a->move_to : "Trash");
		CURLcode rc = run(s, folder, NULL, q);
		free(q);
		snprintf(note, notesz, "%s", rc == CURLE_OK ? "moved" : "UID MOVE failed");
		return rc == CURLE_OK;
	}
	snprintf(cmd, sizeof cmd, "UID STORE %u +FLAGS.SILENT (\\Deleted)", uid);
	if (run(s, folder, NULL, cmd) != CURLE_OK) {
		snprintf(note, notesz, "UID STORE \\Deleted failed");
		return false;
	}
	if (!s->p->uidplus) {
		snprintf(note, notesz,
			 "flagged \\Deleted, not expunged: the server has no UIDPLUS (a plain EXPUNGE would remove "
			 "others' deleted mail)");
		return true;
	}
	snprintf(cmd, sizeof cmd, "UID EXPUNGE %u", uid);
	bool ok = run(s, folder, NULL, cmd) == CURLE_OK;
	snprintf(note, notesz, "%s", ok ? "deleted" : "UID EXPUNGE failed");
	return ok;
}

/* Fetches uid's header (whole: the full message) with BODY.PEEK, which leaves \\Seen alone,
 * and its INTERNALDATE, in one command. libcurl's URL fetch would send BODY[] (setting
 * \\Seen on a message that may not be ours) and a custom FETCH's literal reaches only the
 * header callback, line by line: it is taken from there ("... {N}" CRLF, then N bytes) into
 * s->body. A literal cut short (a line of it mistaken for the end of the response) is an
 * error, and the connection is dropped after the poll. */
/* The next FETCH response with a literal in s->head from *pos on: its UID, INTERNALDATE and the
 * literal (borrowed from s->head). Responses are walked by their literals' declared lengths, so
 * a message's own lines cannot pose as responses. false at the end; a literal cut short sets
 * conn->desync. */
static bool next_fetch(struct session *s, size_t *pos, uint32_t *uid, int64_t *idate, const char **lit, size_t *litlen)
{
	const char *h = s->head.s ? s->head.s : "";
	while (*pos < s->head.len) {
		const char *fetch = ci_find(h + *pos, " FETCH (");
		const char *eol = fetch ? strstr(fetch, "\r\n") : NULL;
		if (!eol)
			return false;
		if (eol[-1] != '}') { /* no literal (a flags update, an expunged message) */
			*pos = (size_t)(eol + 2 - h);
			continue;
		}
		const char *open = eol - 1;
		while (open > fetch && *open != '{')
			open--;
		char *end;
		unsigned long n = strtoul(open + 1, &end, 10);
		size_t avail = s->head.len - (size_t)(eol + 2 - h);
		if (*open != '{' || *end != '}' || n > BODY_MAX || n > avail) {
			s->conn->desync = true;
			return false;
		}
		struct strbuf fl; /* the FETCH line alone */
		sb_init(&fl);
		sb_appendn(&fl, fetch, (size_t)(eol - fetch));
		*idate = internaldate(&fl);
		const char *u = ci_find(fl.s, "UID ");
		unsigned long v = u ? strtoul(u + 4, NULL, 10) : 0;
		*uid = v <= UINT32_MAX ? (uint32_t)v : 0;
		sb_fini(&fl);
		*lit = eol + 2;
		*litlen = n;
		*pos = (size_t)(eol + 2 - h) + n;
		return true;
	}
	return false;
}

static bool fetch_peek(struct session *s, const char *folder, uint32_t uid, bool whole, int64_t *idate)
{
	char cmd[96];
	snprintf(cmd, sizeof cmd, "UID FETCH %u (INTERNALDATE BODY.PEEK[%s])", uid, whole ? "" : "HEADER");
	*idate = -1;
	if (run(s, folder, NULL, cmd) != CURLE_OK)
		return false;
	size_t pos = 0, n;
	uint32_t got;
	const char *lit;
	if (!next_fetch(s, &pos, &got, idate, &lit, &n))
		return false; /* no literal: no such message (expunged meanwhile) */
	sb_reset(&s->body); /* lit points into s->head, another buffer */
	sb_appendn(&s->body, lit, n);
	return true;
}

/* The wanted probe with this id among want[0..n), or NULL. */
static struct imap_want *want_by_id(struct imap_want *const *want, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(want[i]->probe_id, id) == 0)
			return want[i];
	return NULL;
}

/* The wanted probe whose token this is, verified (HMAC, its seed), with uid inside its window;
 * else NULL. */
static struct imap_want *token_want(struct session *s, const char *token, struct imap_want *const *want, size_t n,
				    int fi, uint32_t uid)
{
	char id[40];
	int64_t sent;
	/* The id first (unverified), to know whose seed the MAC must be for. */
	if (strncmp(token, "v1.", 3) != 0)
		return NULL;
	const char *dot = strchr(token + 3, '.');
	if (!dot || (size_t)(dot - token - 3) >= sizeof id)
		return NULL;
	snprintf(id, sizeof id, "%.*s", (int)(dot - token - 3), token + 3);
	struct imap_want *w = want_by_id(want, n, id);
	if (!w || uid < w->from_uid[fi])
		return NULL;
	const char *seed = w->seed[0] ? w->seed : s->acct->seed;
	if (token_verify(s->acct->key, token, seed, id, sizeof id, &sent) != 0 || strcmp(id, w->probe_id) != 0)
		return NULL;
	return w;
}

/* Bounce mode: the fetched message (s->body), if it is a bounce of one of want[0..n) whose
 * window includes uid (fi: the folder's index), recorded in that want; else NULL. */
static struct imap_bounce *bounce_of(struct session *s, struct imap_want *const *want, size_t n, int fi,
				     uint32_t uid)
{
	struct dsn_report *rep = xcalloc(1, sizeof *rep);
	struct imap_bounce *b = NULL;
	struct imap_want *w = NULL;
	if (dsn_parse(s->body.s ? s->body.s : "", s->body.len, rep) == 0 && rep->token[0] &&
	    (w = token_want(s, rep->token, want, n, fi, uid)) != NULL) {
		w->bounces = xrealloc(w->bounces, (w->n_bounces + 1) * sizeof *w->bounces);
		b = &w->bounces[w->n_bounces++];
		memset(b, 0, sizeof *b);
		b->internaldate = -1;
		b->rfc3464 = rep->is_rfc3464;
		snprintf(b->reporting_mta, sizeof b->reporting_mta, "%s", rep->reporting_mta);
		/* The probe has one recipient: the first one the report describes. */
		if (rep->n_recipients) {
			const struct dsn_recipient *r = &rep->recipients[0];
			snprintf(b->action, sizeof b->action, "%s", r->action);
			snprintf(b->status, sizeof b->status, "%s", r->status);
			snprintf(b->enhanced, sizeof b->enhanced, "%s", r->enhanced);
			b->reply_code = r->reply_code;
			snprintf(b->remote_mta, sizeof b->remote_mta, "%s", r->remote_mta);
			snprintf(b->diagnostic, sizeof b->diagnostic, "%s", r->diagnostic);
			snprintf(b->stage, sizeof b->stage, "%s", r->stage);
		}
		if (!b->action[0]) /* a plain-text bounce: a permanent status is a failure */
			snprintf(b->action, sizeof b->action, "%s", b->status[0] == '4' ? "delayed" : "failed");
	}
	free(rep);
	return b;
}

/* Seed mode: the fetched header (s->body), if it carries the verified token of one of
 * want[0..n) whose window includes uid, is that probe: found (or a duplicate of it). */
static struct imap_want *probe_of(struct session *s, struct imap_want *const *want, size_t n, int fi, uint32_t uid)
{
	char value[TOKEN_MAX + 64];
	if (!header_field(s->body.s ? s->body.s : "", PROBE_TOKEN_HEADER, value, sizeof value))
		return NULL;
	return token_want(s, value, want, n, fi, uid); /* NULL: token-like, forged or another seed's */
}

/* s->body holds the header of uid (the whole message in bounce mode), INTERNALDATE idate: if it
 * is one of want[0..n) (or a bounce of one), record it and clean it up; else leave it. */
static void take_candidate(struct session *s, const char *folder, int fi, struct imap_want *const *want, size_t n,
			   uint32_t uid, int64_t idate)
{
	char *note;
	size_t notesz;
	bool *cleaned;
	if (s->acct->bounces) {
		struct imap_bounce *b = bounce_of(s, want, n, fi, uid);
		if (!b)
			return; /* not a bounce, or not of these probes: not ours, not touched */
		b->uid = uid;
		b->internaldate = idate;
		snprintf(b->folder, sizeof b->folder, "%s", folder);
		note = b->cleanup_note, notesz = sizeof b->cleanup_note, cleaned = &b->cleaned;
	} else {
		struct imap_want *w = probe_of(s, want, n, fi, uid);
		if (!w)
			return; /* token-like, forged or another seed's: not ours, not touched */
		if (w->found) { /* a second copy of a probe found in this poll: ours too */
			char dup_note[160];
			w->duplicates++;
			cleanup(s, folder, uid, dup_note, sizeof dup_note);
			return;
		}
		w->found = true;
		w->junk = fi == 1;
		w->uid = uid;
		w->internaldate = idate;
		snprintf(w->folder, sizeof w->folder, "%s", folder);
		free(w->header);
		w->header = xstrdup(s->body.s ? s->body.s : "");
		note = w->cleanup_note, notesz = sizeof w->cleanup_note, cleaned = &w->cleaned;
	}
	*cleaned = cleanup(s, folder, uid, note, notesz);
}

/* Few new messages since the window (seed mode): their headers in one UID FETCH, instead of a
 * UID SEARCH and then a FETCH of each match. On Dovecot's Maildir every command that opens a
 * message file costs in proportion to the mailbox (533 ms per header at 100,000 messages), so
 * one open per new message instead of two halves the poll. Returns false to fall back to the
 * search (the FETCH failed). */
static bool fetch_new(struct session *s, const char *folder, int fi, struct imap_want *const *want, size_t n,
		      uint32_t from)
{
	char cmd[96];
	snprintf(cmd, sizeof cmd, "UID FETCH %u:* (UID INTERNALDATE BODY.PEEK[HEADER])", from);
	if (run(s, folder, NULL, cmd) != CURLE_OK)
		return false;
	/* Collect first: cleaning up runs commands, which reuse s->head. */
	struct cand {
		uint32_t uid;
		int64_t idate;
		char *header;
	} *c = NULL;
	size_t nc = 0, pos = 0, len;
	uint32_t uid;
	int64_t idate;
	const char *lit;
	while (next_fetch(s, &pos, &uid, &idate, &lit, &len)) {
		if (uid < from || nc >= MAX_DIRECT * 4)
			continue; /* "n:*" also gives the highest UID when it is below n */
		c = xrealloc(c, (nc + 1) * sizeof *c);
		c[nc].uid = uid;
		c[nc].idate = idate;
		c[nc].header = xstrndup(lit, len);
		nc++;
	}
	for (size_t i = 0; i < nc; i++) {
		if (!s->conn->desync) {
			sb_reset(&s->body);
			sb_append(&s->body, c[i].header);
			take_candidate(s, folder, fi, want, n, c[i].uid, c[i].idate);
		}
		free(c[i].header);
	}
	free(c);
	return true;
}

/* One UID SEARCH for want[0..n) (n <= OR_CHUNK) in folder (index fi), which STATUS showed
 * with UIDNEXT next; candidates fetched read-only, ours recorded and cleaned up. */
static void search_chunk(struct session *s, const char *folder, int fi, struct imap_want *const *want, size_t n,
			 uint32_t next)
{
	bool bounces = s->acct->bounces;
	uint32_t from = UINT32_MAX;
	for (size_t i = 0; i < n; i++)
		if ((want[i]->from_uid[fi] ? want[i]->from_uid[fi] : 1) < from)
			from = want[i]->from_uid[fi] ? want[i]->from_uid[fi] : 1;
	if (next && from >= next)
		return; /* nothing arrived since these probes' last search */
	if (!bounces && from > 1 && next && next - from <= MAX_DIRECT && fetch_new(s, folder, fi, want, n, from))
		goto windows;
	struct strbuf cmd;
	sb_init(&cmd);
	sb_appendf(&cmd, "UID SEARCH UID %u:*", from);
	if (from == 1) {
		/* No window yet (a mailbox never polled before): everything is a candidate, so
		 * at least leave out what arrived before the day before the oldest probe was sent
		 * (SINCE is a date in the server's zone; Dovecot answers it from its index). */
		int64_t since = INT64_MAX;
		for (size_t i = 0; i < n; i++)
			if (want[i]->sent_s > 0 && want[i]->sent_s < since)
				since = want[i]->sent_s;
		if (since != INT64_MAX) {
			static const char mon[][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
						       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
			int64_t y;
			int m, d;
			days_to_civil(since / 86400 - 1, &y, &m, &d);
			sb_appendf(&cmd, " SINCE %d-%s-%04lld", d, mon[m - 1], (long long)y);
		}
	}
	for (size_t i = 1; i < n; i++)
		sb_append(&cmd, " OR");
	for (size_t i = 0; i < n; i++) {
		if (bounces)
			sb_appendf(&cmd, " TEXT \"v1.%s.\"", want[i]->probe_id);
		else
			sb_appendf(&cmd, " HEADER %s \"v1.%s.\"", PROBE_TOKEN_HEADER, want[i]->probe_id);
	}
	CURLcode rc = run(s, folder, NULL, cmd.s);
	sb_fini(&cmd);
	if (rc != CURLE_OK) {
		set_error(s, "UID SEARCH", rc);
		return;
	}
	uint32_t *uids = xmalloc(MAX_CANDIDATES * sizeof *uids);
	size_t nu = search_uids(&s->body, uids, MAX_CANDIDATES);
	for (size_t i = 0; i < nu && !s->conn->desync; i++) {
		/* "n:*" also matches the highest UID when it is below n: skip what was searched before. */
		if (uids[i] < from)
			continue;
		int64_t idate;
		if (!fetch_peek(s, folder, uids[i], bounces, &idate))
			continue;
		take_candidate(s, folder, fi, want, n, uids[i], idate);
	}
	free(uids);
windows:
	if (s->conn->desync)
		set_error(s, "UID FETCH", CURLE_WEIRD_SERVER_REPLY);
	for (size_t i = 0; i < n; i++) {
		uint32_t f = want[i]->from_uid[fi] ? want[i]->from_uid[fi] : 1;
		if (!want[i]->found && next > f)
			want[i]->from_uid[fi] = next; /* everything below was searched for this probe */
	}
}

/* Looks for the wanted probes in folder (index fi: 0 INBOX, 1 junk). */
static void search_folder(struct session *s, const char *folder, int fi)
{
	/* UIDNEXT before the search: a message arriving meanwhile is above it, searched next time.
	 * STATUS; for the selected folder a NOOP first, or STATUS shows the session's old view of
	 * it (Dovecot does: new mail stays unseen until the session syncs). */
	uint32_t next, validity;
	CURLcode rc;
	if (s->conn->selected[0] && strcmp(s->conn->selected, folder) == 0 &&
	    (rc = run(s, NULL, NULL, "NOOP")) != CURLE_OK) { /* NOOP: the session sees new mail */
		set_error(s, "NOOP", rc);
		return;
	}
	{
		struct strbuf cmd;
		sb_init(&cmd);
		sb_append(&cmd, "STATUS ");
		bool ok = quote_folder(&cmd, folder);
		sb_append(&cmd, " (UIDNEXT UIDVALIDITY)");
		rc = ok ? run(s, NULL, NULL, cmd.s) : CURLE_BAD_FUNCTION_ARGUMENT;
		sb_fini(&cmd);
		if (rc != CURLE_OK) {
			set_error(s, "STATUS", rc);
			return;
		}
		next = status_item(&s->body, "UIDNEXT ");
		validity = status_item(&s->body, "UIDVALIDITY ");
	}
	s->p->uidnext[fi] = next;
	s->p->uidvalidity[fi] = validity;
	struct imap_want *chunk[OR_CHUNK];
	size_t n = 0;
	for (size_t i = 0; i <= s->p->n_want; i++) {
		struct imap_want *w = i < s->p->n_want ? &s->p->want[i] : NULL;
		if (w && !w->found) {
			if (validity && w->uidvalidity[fi] && validity != w->uidvalidity[fi])
				w->from_uid[fi] = 0; /* the folder was recreated: UIDs start over, so does the window */
			if (validity)
				w->uidvalidity[fi] = validity;
			chunk[n++] = w;
		}
		if (n && (n == OR_CHUNK || !w)) {
			search_chunk(s, folder, fi, chunk, n, next);
			n = 0;
		}
		if (s->p->error[0])
			return;
	}
}

struct imap_conn *imap_conn_new(void)
{
	return xcalloc(1, sizeof(struct imap_conn));
}

static void conn_drop(struct imap_conn *c)
{
	if (c->easy)
		curl_easy_cleanup(c->easy);
	c->easy = NULL;
	c->discovered = false;
	c->selected[0] = '\0';
	c->desync = false;
}

void imap_conn_free(struct imap_conn *c)
{
	if (!c)
		return;
	conn_drop(c);
	free(c->who);
	free(c);
}

int imap_poll_run(struct imap_conn *conn, const struct imap_account *acct, struct imap_poll *p,
		  bool (*cancelled)(void *), void *carg)
{
	struct session s = { .acct = acct, .p = p, .conn = conn, .cancelled = cancelled, .carg = carg };
	int64_t t0 = mono_us();
	p->error[0] = '\0';
	p->junk_folder[0] = '\0';
	char *who = xasprintf("%s\n%s\n%s\n%s", acct->url, acct->username, acct->ca_file ? acct->ca_file : "",
			      acct->source_ip ? acct->source_ip : "");
	if (!conn->who || strcmp(conn->who, who) != 0) { /* another account: another connection */
		conn_drop(conn);
		free(conn->who);
		conn->who = who;
	} else {
		free(who);
	}
	p->reused = conn->easy != NULL;
	if (!conn->easy)
		conn->easy = curl_easy_init();
	if (!conn->easy) {
		snprintf(p->error, sizeof p->error, "cannot create a libcurl handle");
		return -1;
	}
	s.easy = conn->easy;
	sb_init(&s.body);
	sb_init(&s.head);
	CURL *e = s.easy;
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERNAME, acct->username);
	curl_easy_setopt(e, CURLOPT_PASSWORD, acct->password);
	curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL); /* imap:// needs STARTTLS */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (acct->ca_file) /* (part of who: a handle never changes it) */
		curl_easy_setopt(e, CURLOPT_CAINFO, acct->ca_file);
	if (acct->source_ip) {
		char iface[80];
		snprintf(iface, sizeof iface, "host!%s", acct->source_ip);
		curl_easy_setopt(e, CURLOPT_INTERFACE, iface);
	}
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, acct->timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, acct->timeout_ms);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &s.body);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &s.head);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s.errbuf);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, &s);

	if (!conn->discovered || mono_us() - conn->discovered_us > DISCOVERY_TTL_US) {
		CURLcode c = run(&s, NULL, NULL, "CAPABILITY");
		if (c != CURLE_OK) {
			set_error(&s, "login", c);
		} else {
			conn->uidplus = s.body.s && ci_find(s.body.s, " UIDPLUS") != NULL;
			conn->junk_folder[0] = '\0';
			conn->special_use = false;
			find_junk(&s);
			conn->discovered = true;
			conn->discovered_us = mono_us();
		}
	}
	if (!p->error[0]) {
		p->uidplus = conn->uidplus;
		p->special_use = conn->special_use;
		snprintf(p->junk_folder, sizeof p->junk_folder, "%s", conn->junk_folder);
		for (int fi = 0; fi < 2 && !p->error[0]; fi++) {
			const char *folder = fi == 0 ? "INBOX" : p->junk_folder;
			if (*folder)
				search_folder(&s, folder, fi);
		}
	}
	/* The handle points at this poll's buffers: unhook them before they go. */
	curl_easy_setopt(e, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, NULL);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, NULL);
	curl_easy_setopt(e, CURLOPT_PASSWORD, "");
	if (p->error[0])
		conn_drop(conn); /* start clean next time */
	sb_fini(&s.body);
	sb_fini(&s.head);
	p->ms = (double)(mono_us() - t0) / 1000.0;
	return p->error[0] ? -1 : 0;
}

void imap_want_fini(struct imap_want *w)
{
	free(w->header);
	w->header = NULL;
	free(w->bounces);
	w->bounces = NULL;
	w->n_bounces = 0;
}
