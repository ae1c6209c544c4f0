/* Bounces: RFC 3464 delivery status notifications and plain-text bounces (see dsn.h).
 *
 * The message is read in place (borrowed): a MIME walk over spans of it, with decoded copies only
 * for base64 or quoted-printable parts. What the walk finds goes into the report directly (the
 * delivery-status fields, the returned headers) or into ctx.text, the plain-text parts joined,
 * which later gives what the delivery-status part lacks (the stage, Postfix writes it only in
 * the text) and, without a delivery-status part, the best-effort plain-text reading. */
#include "dsn.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "strbuf.h"
#include "xalloc.h"

#define MAX_DEPTH 12              /* nested multiparts */
#define MAX_PARTS 1000            /* entities visited per message */
#define MAX_TEXT (512 * 1024)     /* plain text kept, searched for the returned headers */
#define MAX_NOTE (64 * 1024)      /* of which the part read for the diagnostics at most */
#define MAX_BLOCK (16 * 1024)     /* text kept per recipient in a plain-text bounce */

struct span {
	const char *p;
	size_t n;
};

/* ---- characters and strings (ASCII only: no locale) ---- */

static char lc(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }
static bool is_wsp(char c) { return c == ' ' || c == '\t'; }
static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

static bool ci_prefix(const char *a, size_t an, const char *lit)
{
	size_t n = strlen(lit);
	if (an < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lc(a[i]) != lc(lit[i]))
			return false;
	return true;
}

static bool ci_eq(const char *a, size_t an, const char *lit)
{
	return an == strlen(lit) && ci_prefix(a, an, lit);
}

/* Case-insensitive search for lit in s[0..n). Returns the offset, or SIZE_MAX. */
static size_t ci_find(const char *s, size_t n, const char *lit)
{
	size_t m = strlen(lit);
	if (m == 0)
		return 0;
	if (m > n)
		return SIZE_MAX;
	char first = lc(lit[0]);
	for (size_t i = 0; i + m <= n; i++) {
		if (lc(s[i]) != first)
			continue;
		size_t j = 1;
		while (j < m && lc(s[i + j]) == lc(lit[j]))
			j++;
		if (j == m)
			return i;
	}
	return SIZE_MAX;
}

static struct span trim(const char *p, size_t n)
{
	while (n > 0 && is_space(*p)) {
		p++;
		n--;
	}
	while (n > 0 && is_space(p[n - 1]))
		n--;
	return (struct span){ p, n };
}

/* Copies s[0..n) trimmed into dst (size dstsz > 0), cut at a UTF-8 character boundary when too
 * long; control characters (NUL included) become spaces. */
static void set_str(char *dst, size_t dstsz, const char *s, size_t n)
{
	struct span t = trim(s, n);
	n = t.n;
	if (n > dstsz - 1) {
		n = dstsz - 1;
		while (n > 0 && ((unsigned char)t.p[n] & 0xC0) == 0x80)
			n--;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)t.p[i];
		dst[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	dst[n] = '\0';
	/* Trailing blanks may remain when the cut or a control character made them: drop them. */
	while (n > 0 && dst[n - 1] == ' ')
		dst[--n] = '\0';
}

static void set_lower(char *dst, size_t dstsz, const char *s, size_t n)
{
	set_str(dst, dstsz, s, n);
	for (char *p = dst; *p; p++)
		*p = lc(*p);
}

/* Appends s[0..n) lower-cased with every run of white space made one space. */
static void append_collapsed(struct strbuf *sb, const char *s, size_t n)
{
	bool space = sb->len > 0 && sb->s[sb->len - 1] == ' ';
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (is_space(c) || c == '\0') {
			if (!space && sb->len > 0)
				sb_appendc(sb, ' ');
			space = true;
			continue;
		}
		sb_appendc(sb, lc(c));
		space = false;
	}
}

/* Copies s[0..n) into dst like set_str, with every run of white space made one space. */
static void set_collapsed(char *dst, size_t dstsz, const char *s, size_t n)
{
	struct strbuf sb;
	bool space = false;

	sb_init(&sb);
	for (size_t i = 0; i < n && sb.len < dstsz * 2; i++) {
		if (is_space(s[i])) {
			if (!space && sb.len)
				sb_appendc(&sb, ' ');
			space = true;
		} else {
			sb_appendc(&sb, s[i]);
			space = false;
		}
	}
	set_str(dst, dstsz, sb.s ? sb.s : "", sb.len);
	sb_fini(&sb);
}

/* ---- lines ---- */

/* The next line of s[0..n) from *pos, without its LF and a CR before it. */
static bool next_line(const char *s, size_t n, size_t *pos, struct span *line)
{
	if (*pos >= n)
		return false;
	const char *start = s + *pos;
	const char *nl = memchr(start, '\n', n - *pos);
	size_t len = nl ? (size_t)(nl - start) : n - *pos;
	*pos += len + (nl ? 1 : 0);
	if (len > 0 && start[len - 1] == '\r')
		len--;
	*line = (struct span){ start, len };
	return true;
}

static bool blank_line(struct span l)
{
	for (size_t i = 0; i < l.n; i++)
		if (!is_space(l.p[i]))
			return false;
	return true;
}

/* When line is "Name: value" (blanks allowed before the colon), returns the length of Name and
 * sets *value to the offset after the colon; else returns 0. */
static size_t field_name(struct span line, size_t *value)
{
	size_t i = 0;
	while (i < line.n && i < 100 && line.p[i] > ' ' && line.p[i] < 127 && line.p[i] != ':')
		i++;
	size_t name = i;
	if (name == 0)
		return 0;
	while (i < line.n && is_wsp(line.p[i]))
		i++;
	if (i >= line.n || line.p[i] != ':')
		return 0;
	*value = i + 1;
	return name;
}

/* ---- header blocks ---- */

typedef void field_fn(void *arg, const char *name, size_t nlen, const char *val, size_t vlen);

/* Reads the header block at s[0..n), calling fn once per field with its unfolded value (each
 * fold made one space). The block ends at a blank line, or at a line that is neither a field
 * nor a continuation (that line then starts the body). Returns the offset of the body. */
static size_t parse_headers(const char *s, size_t n, field_fn *fn, void *arg)
{
	struct strbuf val;
	struct span name = { NULL, 0 };
	size_t pos = 0, body = n;
	struct span line;

	sb_init(&val);
	for (;;) {
		size_t start = pos;
		if (!next_line(s, n, &pos, &line))
			break;
		if (line.n == 0) {
			body = pos;
			break;
		}
		if (is_wsp(line.p[0])) {
			if (name.p) {
				struct span t = trim(line.p, line.n);
				if (t.n) {
					if (val.len)
						sb_appendc(&val, ' ');
					sb_appendn(&val, t.p, t.n);
				}
			}
			continue;
		}
		size_t voff;
		size_t nlen = field_name(line, &voff);
		if (name.p)
			fn(arg, name.p, name.n, val.s, val.len);
		name.p = NULL;
		sb_reset(&val);
		if (nlen == 0) {
			body = start;
			break;
		}
		name = (struct span){ line.p, nlen };
		struct span t = trim(line.p + voff, line.n - voff);
		sb_appendn(&val, t.p, t.n);
	}
	if (name.p)
		fn(arg, name.p, name.n, val.s, val.len);
	sb_fini(&val);
	return body;
}

/* ---- the walk's state ---- */

struct ctx {
	struct dsn_report *out;
	size_t parts;
	struct strbuf text;         /* the plain-text parts (decoded), one after the other */
	bool looks_bounce;          /* the top-level headers say "bounce" */
	bool report;                /* top level is multipart/report for delivery status */
	char failed_rcpts[1024];    /* X-Failed-Recipients */
	struct dsn_recipient *cur;  /* the delivery-status block being read, or NULL */
	struct dsn_recipient spare; /* absorbs the fields of recipients beyond DSN_MAX_RECIPIENTS */
	bool inline_fields;         /* reading delivery-status fields found in plain text */
	bool after_final;           /* the last field read was a Final-Recipient */
};

/* ---- MIME ---- */

struct entity {
	char type[80];        /* "multipart/report", lower case; "" when absent */
	char boundary[200];
	char report_type[64]; /* lower case */
	char cte[40];         /* lower case */
	struct ctx *c;
	bool top;
};

static void parse_content_type(const char *v, size_t n, struct entity *e)
{
	size_t i = 0, start;

	while (i < n && is_space(v[i]))
		i++;
	start = i;
	while (i < n && v[i] != ';' && !is_space(v[i]) && v[i] != '(')
		i++;
	set_lower(e->type, sizeof e->type, v + start, i - start);
	while (i < n) {
		if (v[i] != ';') {
			i++;
			continue;
		}
		i++;
		while (i < n && is_space(v[i]))
			i++;
		start = i;
		while (i < n && v[i] != '=' && v[i] != ';' && !is_space(v[i]))
			i++;
		struct span pname = { v + start, i - start };
		while (i < n && is_space(v[i]))
			i++;
		if (i >= n || v[i] != '=')
			continue;
		i++;
		while (i < n && is_space(v[i]))
			i++;
		char val[256];
		size_t vl = 0;
		if (i < n && v[i] == '"') {
			i++;
			while (i < n && v[i] != '"') {
				if (v[i] == '\\' && i + 1 < n)
					i++;
				if (vl < sizeof val - 1)
					val[vl++] = v[i];
				i++;
			}
			if (i < n)
				i++;
		} else {
			while (i < n && v[i] != ';' && !is_space(v[i])) {
				if (vl < sizeof val - 1)
					val[vl++] = v[i];
				i++;
			}
		}
		if (ci_eq(pname.p, pname.n, "boundary"))
			set_str(e->boundary, sizeof e->boundary, val, vl);
		else if (ci_eq(pname.p, pname.n, "report-type"))
			set_lower(e->report_type, sizeof e->report_type, val, vl);
	}
}

static void entity_field(void *arg, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct entity *e = arg;

	if (ci_eq(name, nlen, "Content-Type")) {
		if (!e->type[0])
			parse_content_type(val, vlen, e);
	} else if (ci_eq(name, nlen, "Content-Transfer-Encoding")) {
		set_lower(e->cte, sizeof e->cte, val, vlen);
	} else if (e->top) {
		struct ctx *c = e->c;
		if (ci_eq(name, nlen, "From")) {
			static const char *const who[] = { "mailer-daemon", "postmaster", "mail delivery",
							   "mail administrator", "mmdf", "mail-daemon" };
			for (size_t i = 0; i < sizeof who / sizeof who[0]; i++)
				if (ci_find(val, vlen, who[i]) != SIZE_MAX)
					c->looks_bounce = true;
		} else if (ci_eq(name, nlen, "Subject")) {
			static const char *const what[] = {
				"undeliver", "delivery", "failure", "failed", "returned", "bounce",
				"not delivered", "rejected", "nondeliver", "non-deliver", "could not be delivered",
				"delayed", "mail system error", "warning: could not send",
			};
			for (size_t i = 0; i < sizeof what / sizeof what[0]; i++)
				if (ci_find(val, vlen, what[i]) != SIZE_MAX)
					c->looks_bounce = true;
		} else if (ci_eq(name, nlen, "X-Failed-Recipients")) {
			set_str(c->failed_rcpts, sizeof c->failed_rcpts, val, vlen);
			c->looks_bounce = true;
		}
	}
}

static int b64_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

static int hex_value(char ch)
{
	if (is_digit(ch))
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decodes a base64 or quoted-printable body into an owned copy (*outn bytes, NUL-terminated);
 * returns NULL for any other encoding (the body is used as it is). Never fails on bad input:
 * base64 skips what is not in its alphabet, quoted-printable keeps a bad escape as written. */
static char *decode_body(const char *cte, const char *s, size_t n, size_t *outn)
{
	if (strcmp(cte, "base64") == 0) {
		char *out = xmalloc(n / 4 * 3 + 4);
		size_t o = 0;
		uint32_t acc = 0;
		int bits = 0;
		for (size_t i = 0; i < n; i++) {
			int v = b64_value((unsigned char)s[i]);
			if (v < 0)
				continue;
			acc = (acc << 6) | (uint32_t)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				out[o++] = (char)((acc >> bits) & 0xff);
			}
		}
		out[o] = '\0';
		*outn = o;
		return out;
	}
	if (strcmp(cte, "quoted-printable") == 0) {
		char *out = xmalloc(n + 1);
		size_t o = 0;
		for (size_t i = 0; i < n; i++) {
			if (s[i] != '=') {
				out[o++] = s[i];
				continue;
			}
			/* A soft line break: "=", optional blanks, then the line end. */
			size_t j = i + 1;
			while (j < n && is_wsp(s[j]))
				j++;
			if (j >= n || s[j] == '\n' || (s[j] == '\r' && j + 1 < n && s[j + 1] == '\n') ||
			    (s[j] == '\r' && j + 1 == n)) {
				if (j < n && s[j] == '\r')
					j++;
				i = j; /* at the LF (or the end): the loop steps over it */
				continue;
			}
			int hi = i + 1 < n ? hex_value(s[i + 1]) : -1;
			int lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
			if (hi >= 0 && lo >= 0) {
				out[o++] = (char)(hi * 16 + lo);
				i += 2;
			} else {
				out[o++] = '=';
			}
		}
		out[o] = '\0';
		*outn = o;
		return out;
	}
	return NULL;
}

static void walk_entity(struct ctx *c, const char *s, size_t n, int depth, bool top);
static void parse_fields(struct ctx *c, const char *s, size_t n);
static void returned_headers(struct ctx *c, const char *s, size_t n);

static void add_text(struct ctx *c, const char *s, size_t n)
{
	if (c->text.len >= MAX_TEXT)
		return;
	if (n > MAX_TEXT - c->text.len)
		n = MAX_TEXT - c->text.len;
	if (c->text.len)
		sb_append(&c->text, "\n\n");
	sb_appendn(&c->text, s, n);
}

/* Walks the parts of a multipart body. Returns how many parts it found. */
static size_t walk_multipart(struct ctx *c, const char *s, size_t n, const char *boundary, int depth)
{
	size_t blen = strlen(boundary), pos = 0, part = 0, found = 0;
	bool in_part = false;
	struct span line;

	while (pos < n) {
		size_t start = pos;
		next_line(s, n, &pos, &line);
		if (line.n < 2 + blen || line.p[0] != '-' || line.p[1] != '-' ||
		    memcmp(line.p + 2, boundary, blen) != 0)
			continue;
		size_t i = 2 + blen;
		bool close = i + 1 < line.n && line.p[i] == '-' && line.p[i + 1] == '-';
		if (close)
			i += 2;
		while (i < line.n && (is_wsp(line.p[i]) || line.p[i] == '\r'))
			i++;
		if (i != line.n)
			continue; /* "--boundary-more": another delimiter, not ours */
		if (in_part) {
			size_t end = start;
			/* The line end before a delimiter belongs to the delimiter. */
			if (end > part && s[end - 1] == '\n')
				end--;
			if (end > part && s[end - 1] == '\r')
				end--;
			walk_entity(c, s + part, end - part, depth + 1, false);
			found++;
		}
		in_part = !close;
		part = pos;
		if (close)
			break;
	}
	if (in_part) { /* no closing delimiter: a cut message, the last part runs to the end */
		walk_entity(c, s + part, n - part, depth + 1, false);
		found++;
	}
	return found;
}

static bool starts(const char *type, const char *prefix) { return strncmp(type, prefix, strlen(prefix)) == 0; }

static void walk_entity(struct ctx *c, const char *s, size_t n, int depth, bool top)
{
	struct entity e;

	if (depth > MAX_DEPTH || c->parts >= MAX_PARTS)
		return;
	c->parts++;
	memset(&e, 0, sizeof e);
	e.c = c;
	e.top = top;
	size_t body = parse_headers(s, n, entity_field, &e);
	const char *b = s + body;
	size_t bn = n - body;

	if (strcmp(e.type, "multipart/report") == 0 &&
	    (e.report_type[0] == '\0' || strcmp(e.report_type, "delivery-status") == 0 ||
	     strcmp(e.report_type, "global-delivery-status") == 0)) {
		c->report = true;
		c->looks_bounce = true;
	}
	if (starts(e.type, "multipart/")) {
		if (e.boundary[0] && walk_multipart(c, b, bn, e.boundary, depth) > 0)
			return;
		add_text(c, b, bn); /* no part found (no or a wrong boundary): read it as text */
		return;
	}

	size_t dn = bn;
	char *decoded = decode_body(e.cte, b, bn, &dn);
	const char *d = decoded ? decoded : b;

	if (strcmp(e.type, "message/delivery-status") == 0 ||
	    strcmp(e.type, "message/global-delivery-status") == 0) {
		c->out->is_rfc3464 = true;
		c->inline_fields = false;
		parse_fields(c, d, dn);
	} else if (strcmp(e.type, "text/rfc822-headers") == 0 || strcmp(e.type, "message/rfc822-headers") == 0 ||
		   strcmp(e.type, "message/global-headers") == 0 || strcmp(e.type, "message/rfc822") == 0 ||
		   strcmp(e.type, "message/global") == 0) {
		returned_headers(c, d, dn);
	} else if (e.type[0] == '\0' || strcmp(e.type, "text/plain") == 0 || strcmp(e.type, "text") == 0) {
		add_text(c, d, dn);
	}
	free(decoded);
}

/* ---- delivery-status fields (RFC 3464 section 2) ---- */

static struct dsn_recipient *new_recipient(struct ctx *c)
{
	struct dsn_report *r = c->out;

	r->n_recipients_seen++;
	if (r->n_recipients < DSN_MAX_RECIPIENTS)
		return &r->recipients[r->n_recipients++];
	memset(&c->spare, 0, sizeof c->spare);
	return &c->spare;
}

/* "rfc822; <a@b>" -> "a@b" */
static void set_address(char *dst, size_t dstsz, const char *v, size_t n)
{
	const char *semi = memchr(v, ';', n);
	if (semi) {
		n -= (size_t)(semi + 1 - v);
		v = semi + 1;
	}
	struct span t = trim(v, n);
	if (t.n >= 2 && t.p[0] == '<') {
		const char *gt = memchr(t.p, '>', t.n);
		if (gt)
			t = (struct span){ t.p + 1, (size_t)(gt - t.p - 1) };
	}
	if (t.n > 0 && t.p[0] == '@') { /* a source route, "@relay:user@host" */
		const char *colon = memchr(t.p, ':', t.n);
		if (colon)
			t = (struct span){ colon + 1, t.n - (size_t)(colon + 1 - t.p) };
	}
	set_str(dst, dstsz, t.p, t.n);
}

/* "dns; mx.example.com (192.0.2.1)", "dns; [192.0.2.1]", "smtp;x.example.", "192.0.2.2" -> the
 * host or address alone. */
static void set_host(char *dst, size_t dstsz, const char *v, size_t n)
{
	const char *semi = memchr(v, ';', n);
	if (semi) {
		n -= (size_t)(semi + 1 - v);
		v = semi + 1;
	}
	struct span t = trim(v, n);
	size_t i = 0;
	while (i < t.n && !is_space(t.p[i]) && t.p[i] != '(')
		i++;
	t.n = i;
	if (t.n >= 2 && t.p[0] == '[') {
		const char *rb = memchr(t.p, ']', t.n);
		t = rb ? (struct span){ t.p + 1, (size_t)(rb - t.p - 1) } : (struct span){ t.p + 1, t.n - 1 };
	} else {
		const char *lb = memchr(t.p, '[', t.n); /* "mx.example.com[192.0.2.1]" */
		if (lb && lb > t.p)
			t.n = (size_t)(lb - t.p);
	}
	while (t.n > 0 && t.p[t.n - 1] == '.')
		t.n--;
	set_str(dst, dstsz, t.p, t.n);
}

static void set_diagnostic(struct dsn_recipient *r, const char *v, size_t n)
{
	const char *semi = memchr(v, ';', n);
	if (semi) {
		struct span type = trim(v, (size_t)(semi - v));
		bool atom = type.n > 0 && type.n < sizeof r->diagnostic_type;
		for (size_t i = 0; atom && i < type.n; i++)
			atom = is_alnum(type.p[i]) || type.p[i] == '-' || type.p[i] == '_' || type.p[i] == '.';
		if (atom) {
			set_lower(r->diagnostic_type, sizeof r->diagnostic_type, type.p, type.n);
			n -= (size_t)(semi + 1 - v);
			v = semi + 1;
		}
	}
	set_str(r->diagnostic, sizeof r->diagnostic, v, n);
}

static void dsn_field(struct ctx *c, const char *name, size_t nlen, const char *v, size_t vn)
{
	struct dsn_report *out = c->out;
	struct dsn_recipient *cur = c->cur;

	if (ci_eq(name, nlen, "Final-Recipient")) {
		/* A second Final-Recipient starts the next block even without the blank line. */
		if (!cur || cur->final_recipient[0])
			cur = new_recipient(c);
		set_address(cur->final_recipient, sizeof cur->final_recipient, v, vn);
	} else if (ci_eq(name, nlen, "Original-Recipient")) {
		/* Before or right after its Final-Recipient; after other fields of a block with a
		 * Final-Recipient it opens the next block. */
		if (!cur || cur->original_recipient[0] || (cur->final_recipient[0] && !c->after_final))
			cur = new_recipient(c);
		set_address(cur->original_recipient, sizeof cur->original_recipient, v, vn);
	} else if (ci_eq(name, nlen, "Action")) {
		/* A block has one Action and one Status: a second one opens the next block. */
		if (!cur || cur->action[0])
			cur = new_recipient(c);
		struct span t = trim(v, vn);
		size_t i = 0;
		while (i < t.n && !is_space(t.p[i]) && t.p[i] != '(' && t.p[i] != ';')
			i++;
		set_lower(cur->action, sizeof cur->action, t.p, i);
	} else if (!cur && c->inline_fields) {
		/* In plain text only the three above start a recipient: the returned headers that
		 * follow may well have a "Status: RO". */
		if (ci_eq(name, nlen, "Reporting-MTA"))
			set_host(out->reporting_mta, sizeof out->reporting_mta, v, vn);
		return;
	} else if (ci_eq(name, nlen, "Status")) {
		if (!cur || cur->status[0])
			cur = new_recipient(c);
		struct span t = trim(v, vn);
		char code[16];
		if (reply_enhanced_code(t.p, t.n, code, sizeof code) > 0)
			set_str(cur->status, sizeof cur->status, code, strlen(code));
	} else if (ci_eq(name, nlen, "Remote-MTA")) {
		if (!cur)
			cur = new_recipient(c);
		set_host(cur->remote_mta, sizeof cur->remote_mta, v, vn);
	} else if (ci_eq(name, nlen, "Diagnostic-Code")) {
		if (!cur)
			cur = new_recipient(c);
		set_diagnostic(cur, v, vn);
	} else if (ci_eq(name, nlen, "Last-Attempt-Date")) {
		if (!cur)
			cur = new_recipient(c);
		set_str(cur->last_attempt_date, sizeof cur->last_attempt_date, v, vn);
	} else if (ci_eq(name, nlen, "Will-Retry-Until")) {
		if (!cur)
			cur = new_recipient(c);
		set_str(cur->will_retry_until, sizeof cur->will_retry_until, v, vn);
	} else if (!cur) {
		/* per-message fields: only the first delivery-status part's count */
		if (ci_eq(name, nlen, "Reporting-MTA") && !out->reporting_mta[0])
			set_host(out->reporting_mta, sizeof out->reporting_mta, v, vn);
		else if (ci_eq(name, nlen, "Arrival-Date") && !out->arrival_date[0])
			set_str(out->arrival_date, sizeof out->arrival_date, v, vn);
		else if (ci_eq(name, nlen, "Original-Envelope-Id") && !out->original_envelope_id[0])
			set_str(out->original_envelope_id, sizeof out->original_envelope_id, v, vn);
	}
	c->cur = cur;
	c->after_final = ci_eq(name, nlen, "Final-Recipient");
}

/* Reads delivery-status fields: per-message fields, then per-recipient blocks separated by blank
 * lines (tolerating missing ones). Lines that are no field are skipped. */
static void parse_fields(struct ctx *c, const char *s, size_t n)
{
	struct strbuf val;
	struct span name = { NULL, 0 };
	size_t pos = 0;
	struct span line;

	sb_init(&val);
	c->cur = NULL;
	while (next_line(s, n, &pos, &line)) {
		if (blank_line(line)) {
			if (name.p)
				dsn_field(c, name.p, name.n, val.s, val.len);
			name.p = NULL;
			c->cur = NULL;
			continue;
		}
		if (is_wsp(line.p[0])) {
			if (name.p) {
				struct span t = trim(line.p, line.n);
				if (val.len)
					sb_appendc(&val, ' ');
				sb_appendn(&val, t.p, t.n);
			}
			continue;
		}
		size_t voff;
		size_t nlen = field_name(line, &voff);
		if (nlen == 0) {
			/* A line that is no field: in a delivery-status part, an unindented fold of
			 * the field before it ("550-..." lines of a multi-line reply); in plain text,
			 * prose. */
			if (name.p && !c->inline_fields) {
				struct span t = trim(line.p, line.n);
				sb_appendc(&val, ' ');
				sb_appendn(&val, t.p, t.n);
			}
			continue;
		}
		if (name.p)
			dsn_field(c, name.p, name.n, val.s, val.len);
		name.p = NULL;
		name = (struct span){ line.p, nlen };
		sb_reset(&val);
		struct span t = trim(line.p + voff, line.n - voff);
		sb_appendn(&val, t.p, t.n);
	}
	if (name.p)
		dsn_field(c, name.p, name.n, val.s, val.len);
	c->cur = NULL;
	sb_fini(&val);
}

/* ---- returned headers ---- */

struct returned {
	char token[256];
	char message_id[256];
};

static void returned_field(void *arg, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct returned *r = arg;

	if (ci_eq(name, nlen, "X-Mailcanary-Token") && !r->token[0])
		set_str(r->token, sizeof r->token, val, vlen);
	else if (ci_eq(name, nlen, "Message-ID") && !r->message_id[0])
		set_str(r->message_id, sizeof r->message_id, val, vlen);
}

/* The headers of a returned message (or headers-only part). The first part with a token wins;
 * without any token, the first Message-ID. */
static void returned_headers(struct ctx *c, const char *s, size_t n)
{
	struct dsn_report *out = c->out;
	struct returned r;

	memset(&r, 0, sizeof r);
	/* Some MTAs put a blank line or two before the headers. */
	size_t pos = 0, skip = 0;
	struct span line;
	while (next_line(s, n, &pos, &line) && blank_line(line))
		skip = pos;
	parse_headers(s + skip, n - skip, returned_field, &r);
	if (r.token[0] && !out->token[0]) {
		memcpy(out->token, r.token, sizeof out->token);
		memcpy(out->message_id, r.message_id, sizeof out->message_id);
		out->headers_origin = DSN_HEADERS_PART;
	} else if (r.message_id[0] && !out->token[0] && !out->message_id[0]) {
		memcpy(out->message_id, r.message_id, sizeof out->message_id);
		out->headers_origin = DSN_HEADERS_PART;
	}
}

/* Returns the value of a "Name: value" line (leading blanks and "> " quoting allowed) when line is
 * one, else an empty span with p == NULL. */
static struct span header_line_value(struct span line, const char *name)
{
	size_t i = 0;
	while (i < line.n && (is_wsp(line.p[i]) || line.p[i] == '>'))
		i++;
	size_t m = strlen(name);
	if (!ci_prefix(line.p + i, line.n - i, name))
		return (struct span){ NULL, 0 };
	i += m;
	while (i < line.n && is_wsp(line.p[i]))
		i++;
	if (i >= line.n || line.p[i] != ':')
		return (struct span){ NULL, 0 };
	i++;
	return trim(line.p + i, line.n - i);
}

/* Best effort: the returned headers quoted in the plain text. */
static void text_headers(struct ctx *c)
{
	struct dsn_report *out = c->out;
	const char *s = c->text.s;
	size_t n = c->text.len, pos = 0, tok_line = SIZE_MAX, ln = 0;
	struct span line, v;
	char first_id[256] = "", near_id[256] = "";
	size_t near_dist = SIZE_MAX;

	if (out->token[0] || !s)
		return;
	/* Find the token line and the Message-ID lines (the first few); keep the Message-ID closest
	 * to the token within its header block (no blank line between them). */
	size_t block = 0; /* number of the block (blank-separated) of each line */
	size_t tok_block = SIZE_MAX;
	struct {
		size_t line, block;
		char id[256];
	} ids[8];
	size_t nids = 0;
	while (next_line(s, n, &pos, &line)) {
		if (blank_line(line)) {
			block++;
		} else if (tok_line == SIZE_MAX && (v = header_line_value(line, "X-Mailcanary-Token")).p) {
			if (v.n == 0) { /* folded right after the colon */
				size_t p2 = pos;
				struct span next;
				if (next_line(s, n, &p2, &next) && next.n && is_wsp(next.p[0]))
					v = trim(next.p, next.n);
			}
			if (v.n) {
				set_str(out->token, sizeof out->token, v.p, v.n);
				tok_line = ln;
				tok_block = block;
			}
		} else if ((v = header_line_value(line, "Message-ID")).p && v.n) {
			if (!first_id[0])
				set_str(first_id, sizeof first_id, v.p, v.n);
			if (nids < sizeof ids / sizeof ids[0]) {
				ids[nids].line = ln;
				ids[nids].block = block;
				set_str(ids[nids].id, sizeof ids[nids].id, v.p, v.n);
				nids++;
			}
		}
		ln++;
	}
	if (out->token[0]) {
		for (size_t i = 0; i < nids; i++) {
			if (ids[i].block != tok_block)
				continue;
			size_t d = ids[i].line > tok_line ? ids[i].line - tok_line : tok_line - ids[i].line;
			if (d < near_dist) {
				near_dist = d;
				memcpy(near_id, ids[i].id, sizeof near_id);
			}
		}
		/* without one there, a Message-ID from a returned part stays */
		if (near_id[0])
			memcpy(out->message_id, near_id, sizeof out->message_id);
		out->headers_origin = DSN_HEADERS_TEXT;
	} else if (!out->message_id[0] && first_id[0]) {
		memcpy(out->message_id, first_id, sizeof out->message_id);
		out->headers_origin = DSN_HEADERS_TEXT;
	}
}

/* ---- stage ---- */

struct phrase {
	const char *text; /* lower case, single spaces */
	const char *stage;
};

static const struct phrase phrases[] = {
	/* Postfix smtp(8): "(in reply to RCPT TO command)"; also LMTP. */
	{ "in reply to end of data", "eod" },
	{ "in reply to data command", "data" },
	{ "in reply to rcpt to", "rcpt" },
	{ "in reply to mail from", "mail" },
	{ "in reply to ehlo", "ehlo" },
	{ "in reply to helo", "ehlo" },
	{ "in reply to lhlo", "ehlo" },
	{ "in reply to starttls", "starttls" },
	{ "in reply to auth", "auth" },
	{ "in reply to initial greeting", "banner" },
	/* Postfix: lost connection / conversation timed out "while ..." */
	{ "while receiving the initial server greeting", "banner" },
	{ "while performing the ehlo handshake", "ehlo" },
	{ "while performing the helo handshake", "ehlo" },
	{ "while performing the lhlo handshake", "ehlo" },
	{ "while sending mail from", "mail" },
	{ "while sending rcpt to", "rcpt" },
	{ "while sending data command", "data" },
	{ "while sending message body", "eod" },
	{ "while sending end of data", "eod" },
	{ "refused to talk to me", "banner" },
	{ "cannot start tls", "starttls" },
	{ "tls is required, but", "starttls" },
	{ "sasl authentication failed", "auth" },
	/* Exim: "SMTP error from remote mail server after RCPT TO:<a@b>:" */
	{ "after initial connection", "banner" },
	{ "after end of data", "eod" },
	{ "after pipelined end of data", "eod" },
	{ "after end of message", "eod" },
	{ "after pipelined rcpt to", "rcpt" },
	{ "after rcpt to", "rcpt" },
	{ "after pipelined mail from", "mail" },
	{ "after mail from", "mail" },
	{ "after pipelined data", "data" },
	{ "after data", "data" },
	{ "after ehlo", "ehlo" },
	{ "after helo", "ehlo" },
	{ "after starttls", "starttls" },
	{ "after auth", "auth" },
	/* qmail */
	{ "greeting failed", "banner" },
	{ "my name was rejected", "ehlo" },
	{ "sender was rejected", "mail" },
	{ "does not like recipient", "rcpt" },
	{ "rcpt to response", "rcpt" },
	{ "failed on data command", "data" },
	{ "failed after i sent the message", "eod" },
	{ "wasn't able to establish an smtp connection", "connect" },
	/* Yahoo!: "User Unknown [RCPT_TO]" */
	{ "[rcpt_to]", "rcpt" },
	/* no TCP connection */
	{ "connection refused", "connect" },
	{ "connection timed out", "connect" },
	{ "no route to host", "connect" },
	{ "network is unreachable", "connect" },
	{ "did not accept our requests to connect", "connect" },
};

/* Sendmail with PIPELINING shows only the last command it sent, ">>> DATA", before the replies
 * to RCPT TO and DATA: the refusal after it was RCPT's when it has an address status (x.1.y),
 * when the server then answers DATA with 503 ("need RCPT"), or when sendmail's own line
 * that follows names a recipient ("550 5.1.1 <a@b>... User unknown"). */
static bool pipelined_rcpt(struct span reply, const char *s, size_t n, size_t pos)
{
	struct reply_line rl;
	struct span line;
	bool first = true;

	if (reply_parse_line(reply.p + 4, reply.n - 4, &rl) == 0 && rl.enhanced[0] && rl.enhanced[2] == '1' &&
	    rl.enhanced[3] == '.')
		return true;
	while (next_line(s, n, &pos, &line)) {
		struct span t = trim(line.p, line.n);
		if (t.n == 0 || (t.n >= 4 && memcmp(t.p, ">>> ", 4) == 0))
			break;
		if (t.n >= 7 && memcmp(t.p, "<<< 503", 7) == 0)
			return true;
		if (first && t.n >= 4 && memcmp(t.p, "<<< ", 4) != 0 && is_digit(t.p[0]) &&
		    ci_find(t.p, t.n, ">... ") != SIZE_MAX && memchr(t.p, '@', t.n))
			return true;
		if (memcmp(t.p, "<<< ", t.n < 4 ? t.n : 4) != 0)
			first = false;
	}
	return false;
}

static const char *transcript_stage(const char *s, size_t n)
{
	const char *cmd_stage = NULL;
	size_t pos = 0;
	struct span line;

	while (next_line(s, n, &pos, &line)) {
		struct span t = trim(line.p, line.n);
		if (t.n >= 4 && memcmp(t.p, ">>> ", 4) == 0) {
			const char *w = t.p + 4;
			size_t wn = t.n - 4;
			cmd_stage = "";
			if (ci_prefix(w, wn, "MAIL"))
				cmd_stage = "mail";
			else if (ci_prefix(w, wn, "RCPT"))
				cmd_stage = "rcpt";
			else if (ci_prefix(w, wn, "DATA"))
				cmd_stage = "data";
			else if (wn == 1 && w[0] == '.')
				cmd_stage = "eod";
			else if (ci_prefix(w, wn, "EHLO") || ci_prefix(w, wn, "HELO") || ci_prefix(w, wn, "LHLO"))
				cmd_stage = "ehlo";
			else if (ci_prefix(w, wn, "STARTTLS"))
				cmd_stage = "starttls";
			else if (ci_prefix(w, wn, "AUTH"))
				cmd_stage = "auth";
			else if (ci_prefix(w, wn, "QUIT") || ci_prefix(w, wn, "RSET") || ci_prefix(w, wn, "NOOP"))
				cmd_stage = NULL; /* replies to these decide nothing */
			continue;
		}
		if (t.n >= 7 && memcmp(t.p, "<<< ", 4) == 0 && (t.p[4] == '4' || t.p[4] == '5') &&
		    is_digit(t.p[5]) && is_digit(t.p[6]) && cmd_stage && cmd_stage[0]) {
			if (strcmp(cmd_stage, "data") == 0 && pipelined_rcpt(t, s, n, pos))
				return "rcpt";
			return cmd_stage;
		}
	}
	return "";
}

const char *dsn_stage_from_text(const char *text, size_t len)
{
	struct strbuf low;
	const char *best = "";
	size_t best_at = SIZE_MAX;

	if (!text || len == 0)
		return "";
	const char *t = transcript_stage(text, len);
	if (t[0])
		return t;
	sb_init(&low);
	append_collapsed(&low, text, len);
	for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++) {
		const char *p = phrases[i].text;
		size_t m = strlen(p), from = 0;
		while (from < low.len) {
			const char *hit = low.len - from >= m ? strstr(low.s + from, p) : NULL;
			if (!hit)
				break;
			size_t at = (size_t)(hit - low.s);
			bool left = at == 0 || !is_alnum(low.s[at - 1]) || !is_alnum(p[0]);
			bool right = !is_alnum(p[m - 1]) || at + m >= low.len || !is_alnum(low.s[at + m]);
			if (left && right) {
				if (at < best_at) {
					best_at = at;
					best = phrases[i].stage;
				}
				break;
			}
			from = at + 1;
		}
	}
	sb_fini(&low);
	return best;
}

/* ---- the remote server's reply in a diagnostic ---- */

/* A reply "ddd" (2xx..5xx) followed by a blank, '-' or the end, at s. Returns the code or 0 and
 * sets *enh to its enhanced code (class-matched) or "". A repeated code ("450 450 4.2.2", Gmail)
 * is skipped. */
static int reply_at(const char *s, size_t n, char enh[16])
{
	struct reply_line rl;
	size_t len = 0;

	enh[0] = '\0';
	if (n < 3 || s[0] < '2' || s[0] > '5' || !is_digit(s[1]) || !is_digit(s[2]) ||
	    (n > 3 && s[3] != ' ' && s[3] != '-' && s[3] != '\r' && s[3] != '\n'))
		return 0;
	/* the line, or enough of it: callers try many places of one long line */
	while (len < n && len < 2048 && s[len] != '\n' && s[len] != '\r')
		len++;
	if (reply_parse_line(s, len, &rl) != 0 || (len > 3 && s[3] != ' ' && s[3] != '-'))
		return 0;
	if (!rl.enhanced[0] && rl.text_len >= 4 && memcmp(rl.text, s, 3) == 0 && rl.text[3] == ' ') {
		struct reply_line again;
		if (reply_parse_line(rl.text, rl.text_len, &again) == 0)
			rl = again;
	}
	if (!rl.enhanced[0] && rl.text_len >= 6 && rl.text[0] == '#' && rl.text[1] == s[0]) {
		/* "550 #5.1.0 Address rejected." */
		char code[16];
		if (reply_enhanced_code(rl.text + 1, rl.text_len - 1, code, sizeof code) > 0)
			memcpy(rl.enhanced, code, sizeof code);
	}
	memcpy(enh, rl.enhanced, sizeof rl.enhanced < 16 ? sizeof rl.enhanced : 16);
	enh[15] = '\0';
	return rl.code;
}

/* The reply code and enhanced code in a diagnostic text: at its start, after "said:", or
 * anywhere as "ddd[ -]c.s.d" with matching classes ("... error 550-'5.7.1 ..."). */
static int diagnostic_reply(const char *d, char enh[16])
{
	size_t n = strlen(d);
	int code = reply_at(d, n, enh);
	if (code)
		return code;
	size_t at = ci_find(d, n, "said:");
	if (at != SIZE_MAX) {
		struct span t = trim(d + at + 5, n - at - 5);
		if ((code = reply_at(t.p, t.n, enh)) != 0)
			return code;
	}
	for (size_t i = 0; i + 9 <= n; i++) {
		if ((i > 0 && is_alnum(d[i - 1])) || d[i] < '2' || d[i] > '5' || !is_digit(d[i + 1]) ||
		    !is_digit(d[i + 2]) || (d[i + 3] != ' ' && d[i + 3] != '-'))
			continue;
		size_t j = i + 4;
		if (d[j] == '\'' || d[j] == '"')
			j++;
		char buf[16];
		if (d[j] == d[i] && reply_enhanced_code(d + j, n - j, buf, sizeof buf) > 0) {
			memcpy(enh, buf, 16);
			return (d[i] - '0') * 100 + (d[i + 1] - '0') * 10 + (d[i + 2] - '0');
		}
	}
	enh[0] = '\0';
	return 0;
}

/* ---- plain text ---- */

/* The text before the copy of the original message. */
static size_t text_cut(const char *s, size_t n)
{
	static const char *const marks[] = {
		"below this line is a copy of the message", "this is a copy of the message",
		"original message follows", "unsent message follows", "----- original message -----",
		"enclosed is a copy of the message", "below is a copy of the original message",
		"original message headers:", "returned message follows", "this is a copy of the headers",
		"message headers follow", "--- the header of the original message is following",
		"------ original message ------",
	};
	size_t pos = 0;
	struct span line;

	while (true) {
		size_t start = pos;
		if (!next_line(s, n, &pos, &line))
			break;
		struct span t = trim(line.p, line.n);
		for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
			if (ci_find(t.p, t.n, marks[i]) != SIZE_MAX)
				return start;
	}
	return n;
}

static bool addr_char(char c)
{
	return is_alnum(c) || (c && strchr("!#$%&'*+/=?^_`{|}~.-", c) != NULL);
}

/* An address local@domain at s (no quoting). Returns its length or 0. */
static size_t address_at(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && addr_char(s[i]))
		i++;
	if (i == 0 || i >= n || s[i] != '@')
		return 0;
	size_t at = ++i;
	while (i < n && (is_alnum(s[i]) || s[i] == '.' || s[i] == '-' || s[i] == '_'))
		i++;
	if (i == at)
		return 0;
	while (i > at && s[i - 1] == '.')
		i--;
	return i > at ? i : 0;
}

/* When the line names a recipient the way bounces do ("<a@b>:", "  a@b", "a@b: 550 ...",
 * "Recipient address: a@b", "a@b on <date>", "a@b<mailto:a@b>"), returns the address. */
static struct span recipient_anchor(struct span line)
{
	static const char *const labels[] = { "recipient address:", "recipient:", "original recipient:",
					      "failed recipient:", "to address:" };
	struct span none = { NULL, 0 };
	size_t i = 0;
	bool indented = line.n > 0 && is_wsp(line.p[0]);

	while (i < line.n && is_wsp(line.p[i]))
		i++;
	for (size_t k = 0; k < sizeof labels / sizeof labels[0]; k++) {
		if (ci_prefix(line.p + i, line.n - i, labels[k])) {
			i += strlen(labels[k]);
			while (i < line.n && is_wsp(line.p[i]))
				i++;
			indented = true; /* a labelled address stands alone like an indented one */
			break;
		}
	}
	bool angle = i < line.n && line.p[i] == '<';
	if (angle)
		i++;
	size_t a = address_at(line.p + i, line.n - i);
	if (a == 0)
		return none;
	struct span addr = { line.p + i, a };
	size_t j = i + a;
	if (angle) {
		if (j >= line.n || line.p[j] != '>')
			return none;
		j++;
	}
	struct span rest = trim(line.p + j, line.n - j);
	if (rest.n == 0)
		return (angle || indented) ? addr : none;
	if (rest.p[0] == ':' || ci_prefix(rest.p, rest.n, "(expanded from") || ci_prefix(rest.p, rest.n, "<mailto:") ||
	    ci_prefix(rest.p, rest.n, "on ") || ci_prefix(rest.p, rest.n, "..."))
		return addr;
	return none;
}

/* Remote host named in a bounce's text. */
static void text_remote(const char *s, size_t n, char *dst, size_t dstsz)
{
	static const char *const marks[] = { "remote system: ", "while talking to ", "remote host ", "host ",
					     "giving up on " };
	for (size_t k = 0; k < sizeof marks / sizeof marks[0]; k++) {
		size_t from = 0;
		while (from < n) {
			size_t at = ci_find(s + from, n - from, marks[k]);
			if (at == SIZE_MAX)
				break;
			at += from;
			from = at + 1;
			if (at > 0 && is_alnum(s[at - 1]))
				continue;
			size_t i = at + strlen(marks[k]);
			size_t j = i;
			while (j < n && !is_space(s[j]) && s[j] != '(' && s[j] != ',' && s[j] != ':')
				j++;
			/* "host NAME[IP]" (Postfix), "host NAME [IP]:" (Exim), "remote host IP said:"
			 * (qmail), "while talking to NAME.:" (sendmail), "dns; NAME" (PMDF) */
			struct span h = { s + i, j - i };
			if (h.n >= 5 && ci_prefix(h.p, h.n, "dns;")) {
				size_t k2 = j;
				while (k2 < n && is_wsp(s[k2]))
					k2++;
				size_t e = k2;
				while (e < n && !is_space(s[e]) && s[e] != '(')
					e++;
				h = (struct span){ s + k2, e - k2 };
			}
			char tmp[256];
			set_host(tmp, sizeof tmp, h.p, h.n);
			bool dot = strchr(tmp, '.') != NULL || strchr(tmp, ':') != NULL;
			bool ok = dot && strlen(tmp) >= 4;
			for (const char *p = tmp; ok && *p; p++)
				ok = is_alnum(*p) || *p == '.' || *p == '-' || *p == ':' || *p == '_';
			if (ok) {
				set_str(dst, dstsz, tmp, strlen(tmp));
				return;
			}
		}
	}
}

/* The remote server's words in a block of bounce text: after "said:", "returned was:",
 * "Remote Server returned '", "host X [IP]: ", a "<<< " transcript line, or on a line of its
 * own starting with a 4xx/5xx reply. The result is collapsed to single spaces, cut at
 * Postfix's "(in reply to ...)". */
static void text_diagnostic(const char *s, size_t n, char *dst, size_t dstsz)
{
	static const char *const marks[] = { "remote server returned '", "said:", "returned was:", "<<< ",
					     "the response was:", "the error that the other server returned was:" };
	size_t best = SIZE_MAX, len = 0;
	bool quoted = false;

	for (size_t k = 0; k < sizeof marks / sizeof marks[0]; k++) {
		size_t at = ci_find(s, n, marks[k]);
		if (at == SIZE_MAX)
			continue;
		size_t i = at + strlen(marks[k]);
		while (i < n && is_space(s[i]))
			i++;
		if (strcmp(marks[k], "<<< ") == 0) { /* transcript: the first refusal */
			size_t pos = at;
			struct span line;
			bool found = false;
			while (next_line(s, n, &pos, &line)) {
				struct span t = trim(line.p, line.n);
				if (t.n >= 7 && memcmp(t.p, "<<< ", 4) == 0 && (t.p[4] == '4' || t.p[4] == '5')) {
					i = (size_t)(t.p + 4 - s);
					found = true;
					break;
				}
			}
			if (!found)
				continue;
		}
		if (i < best) {
			best = i;
			quoted = k == 0;
		}
	}
	if (best == SIZE_MAX) {
		/* "host mx.example.jp [192.0.2.20]: 550 ..." (Exim) */
		size_t from = 0;
		while (from < n) {
			size_t at = ci_find(s + from, n - from, "]: ");
			if (at == SIZE_MAX)
				break;
			at += from;
			from = at + 1;
			char enh[16];
			if (reply_at(s + at + 3, n - at - 3, enh)) {
				best = at + 3;
				break;
			}
		}
	}
	if (best == SIZE_MAX) {
		/* a line starting with a refusal: "550 5.1.1 <a@b>... User unknown" */
		size_t pos = 0;
		struct span line;
		while (next_line(s, n, &pos, &line)) {
			struct span t = trim(line.p, line.n);
			char enh[16];
			if (t.n >= 3 && (t.p[0] == '4' || t.p[0] == '5') && reply_at(t.p, t.n, enh)) {
				best = (size_t)(t.p - s);
				break;
			}
			/* "a@b: 550 5.1.1 ..." (OpenSMTPD) */
			struct span a = recipient_anchor(line);
			if (a.p) {
				const char *colon = memchr(a.p + a.n, ':', line.n - (size_t)(a.p + a.n - line.p));
				if (colon) {
					struct span r = trim(colon + 1, line.n - (size_t)(colon + 1 - line.p));
					if (r.n && reply_at(r.p, r.n, enh)) {
						best = (size_t)(r.p - s);
						break;
					}
				}
			}
		}
	}
	if (best == SIZE_MAX)
		return;
	/* Up to the end of the paragraph, or the line naming the next recipient. */
	size_t pos = best;
	struct span line;
	bool first = true;
	while (next_line(s, n, &pos, &line)) {
		if (blank_line(line) || (!first && recipient_anchor(line).p))
			break;
		first = false;
		len = (size_t)(line.p + line.n - (s + best));
	}
	set_collapsed(dst, dstsz, s + best, len);
	size_t dl = strlen(dst);
	size_t cut = ci_find(dst, dl, " (in reply to ");
	if (cut != SIZE_MAX)
		dst[cut] = '\0';
	if (quoted) { /* Exchange: '550 5.1.1 ...' */
		char *q = strchr(dst, '\'');
		if (q)
			*q = '\0';
	}
	/* cutting may leave blanks at the end */
	dl = strlen(dst);
	while (dl > 0 && dst[dl - 1] == ' ')
		dst[--dl] = '\0';
}

/* qmail's "(#5.1.1)" */
static void text_status(const char *s, size_t n, char *dst, size_t dstsz)
{
	size_t from = 0;
	while (from < n) {
		size_t at = ci_find(s + from, n - from, "(#");
		if (at == SIZE_MAX)
			return;
		at += from;
		from = at + 2;
		char code[16];
		size_t i = at + 2, len = 0;
		while (i + len < n && (is_digit(s[i + len]) || s[i + len] == '.'))
			len++;
		if (reply_enhanced_code(s + i, len, code, sizeof code) == len && len > 0) {
			set_str(dst, dstsz, code, len);
			return;
		}
	}
}

/* The notification text read for the diagnostics, and a lower-cased copy of it (NUL bytes made
 * blanks) for searching addresses with strstr, which is linear: the address comes from the
 * message and may be built to make a naive search quadratic. */
struct note {
	const char *s;
	char *low;
	size_t n;
};

/* The paragraph of the text that names addr (with or without <>), or an empty span. */
static struct span text_paragraph(const struct note *t, const char *addr)
{
	struct span none = { NULL, 0 };
	char needle[256];
	size_t alen = strlen(addr);
	if (alen == 0 || alen >= sizeof needle || t->n == 0)
		return none;
	for (size_t i = 0; i <= alen; i++)
		needle[i] = lc(addr[i]);
	const char *s = t->s;
	size_t n = t->n, from = 0;
	while (from < n) {
		const char *hit = strstr(t->low + from, needle);
		if (!hit)
			return none;
		size_t at = (size_t)(hit - t->low);
		from = at + 1;
		if ((at > 0 && addr_char(s[at - 1])) || (at + alen < n && addr_char(s[at + alen]) && s[at + alen] != '.'))
			continue;
		/* the line containing addr starts the paragraph */
		size_t start = at;
		while (start > 0 && s[start - 1] != '\n')
			start--;
		size_t pos = start, end = start;
		struct span line;
		while (next_line(s, n, &pos, &line)) {
			if (blank_line(line))
				break;
			end = pos;
		}
		return (struct span){ s + start, end - start };
	}
	return none;
}

/* Fills a recipient from its block of plain text. */
static void text_recipient(struct dsn_recipient *r, const char *s, size_t n)
{
	if (!r->diagnostic[0])
		text_diagnostic(s, n, r->diagnostic, sizeof r->diagnostic);
	if (!r->status[0])
		text_status(s, n, r->status, sizeof r->status);
	if (!r->remote_mta[0])
		text_remote(s, n, r->remote_mta, sizeof r->remote_mta);
	if (!r->stage[0]) {
		const char *st = dsn_stage_from_text(s, n);
		set_str(r->stage, sizeof r->stage, st, strlen(st));
	}
}

struct block {
	char addr[256];
	struct strbuf text;
};

/* A plain-text bounce: recipients named in the text (or X-Failed-Recipients), each with the
 * text up to the next one. */
static void plain_text_bounce(struct ctx *c, const char *s, size_t n)
{
	struct dsn_report *out = c->out;
	struct block blocks[DSN_MAX_RECIPIENTS];
	size_t nb = 0, cur = SIZE_MAX, pos = 0;
	struct span line;

	while (next_line(s, n, &pos, &line)) {
		struct span a = recipient_anchor(line);
		if (a.p) {
			char addr[256];
			set_str(addr, sizeof addr, a.p, a.n);
			size_t k;
			for (k = 0; k < nb; k++)
				if (ci_eq(blocks[k].addr, strlen(blocks[k].addr), addr))
					break;
			if (k == nb) {
				out->n_recipients_seen++;
				if (nb < DSN_MAX_RECIPIENTS) {
					memcpy(blocks[nb].addr, addr, sizeof addr);
					sb_init(&blocks[nb].text);
					nb++;
				} else {
					cur = SIZE_MAX;
					continue;
				}
			}
			cur = k;
		}
		if (cur != SIZE_MAX && blocks[cur].text.len < MAX_BLOCK) {
			sb_appendn(&blocks[cur].text, line.p, line.n);
			sb_appendc(&blocks[cur].text, '\n');
		}
	}
	if (nb == 0 && c->failed_rcpts[0]) {
		/* X-Failed-Recipients: a@b, c@d */
		const char *f = c->failed_rcpts;
		size_t fl = strlen(f), i = 0;
		while (i < fl && nb < DSN_MAX_RECIPIENTS) {
			while (i < fl && (is_space(f[i]) || f[i] == ',' || f[i] == '<' || f[i] == '>'))
				i++;
			size_t a = address_at(f + i, fl - i);
			if (a == 0) {
				while (i < fl && f[i] != ',')
					i++;
				continue;
			}
			set_str(blocks[nb].addr, sizeof blocks[nb].addr, f + i, a);
			sb_init(&blocks[nb].text);
			nb++;
			out->n_recipients_seen++;
			i += a;
		}
		if (nb == 1)
			sb_appendn(&blocks[0].text, s, n);
	}
	for (size_t k = 0; k < nb; k++) {
		if (out->n_recipients < DSN_MAX_RECIPIENTS) {
			struct dsn_recipient *r = &out->recipients[out->n_recipients++];
			memcpy(r->final_recipient, blocks[k].addr, sizeof r->final_recipient);
			text_recipient(r, blocks[k].text.s ? blocks[k].text.s : "", blocks[k].text.len);
			if (!r->diagnostic[0]) {
				/* the block itself, after the address line, says why */
				const char *b = blocks[k].text.s ? blocks[k].text.s : "";
				size_t bl = blocks[k].text.len, p2 = 0;
				struct span first;
				if (next_line(b, bl, &p2, &first))
					set_collapsed(r->diagnostic, sizeof r->diagnostic, b + p2, bl - p2);
			}
		}
		sb_fini(&blocks[k].text);
	}
	if (out->n_recipients == 0) {
		/* No recipient named: one unnamed recipient when the text quotes a refusal. */
		char diag[1024] = "";
		text_diagnostic(s, n, diag, sizeof diag);
		if (diag[0]) {
			struct dsn_recipient *r = &out->recipients[out->n_recipients++];
			out->n_recipients_seen++;
			text_recipient(r, s, n);
		}
	}
}

/* ---- after the walk ---- */

/* Fills in what the fields leave out: the diagnostic from the notification text when there is
 * no Diagnostic-Code, the reply and enhanced codes, the stage. The text read is the recipient's
 * paragraph, else (when it is the only recipient) the whole notification. */
static void finish_recipient(struct dsn_recipient *r, const struct note *t, bool single)
{
	char enh[16] = "";
	struct span p = text_paragraph(t, r->final_recipient);
	if (!p.p)
		p = text_paragraph(t, r->original_recipient);

	if (!r->diagnostic[0]) {
		if (p.p)
			text_diagnostic(p.p, p.n, r->diagnostic, sizeof r->diagnostic);
		if (!r->diagnostic[0] && single)
			text_diagnostic(t->s, t->n, r->diagnostic, sizeof r->diagnostic);
	}
	r->reply_code = diagnostic_reply(r->diagnostic, enh);
	if (r->reply_code == 0) {
		/* "Diagnostic-Code: X-Unix; 77", while the text quotes "550 5.0.0 ..." */
		char d[1024] = "", enh2[16] = "";
		if (p.p)
			text_diagnostic(p.p, p.n, d, sizeof d);
		if (!d[0] && single)
			text_diagnostic(t->s, t->n, d, sizeof d);
		r->reply_code = diagnostic_reply(d, enh2);
		if (!r->status[0])
			memcpy(enh, enh2, sizeof enh);
	}
	if (!enh[0]) {
		/* an enhanced code opening the text: "5.1.0 - Unknown address error ..." */
		char code[16];
		size_t dl = strlen(r->diagnostic);
		if (reply_enhanced_code(r->diagnostic, dl, code, sizeof code) > 0)
			memcpy(enh, code, sizeof code);
	}
	if (enh[0])
		memcpy(r->enhanced, enh, sizeof r->enhanced);
	else
		memcpy(r->enhanced, r->status, sizeof r->enhanced);
	if (!r->stage[0]) {
		const char *st = dsn_stage_from_text(r->diagnostic, strlen(r->diagnostic));
		if (!st[0] && p.p)
			st = dsn_stage_from_text(p.p, p.n);
		if (!st[0] && single)
			st = dsn_stage_from_text(t->s, t->n);
		set_str(r->stage, sizeof r->stage, st, strlen(st));
	}
}

static bool line_starts_field(const char *s, size_t n, const char *name)
{
	size_t pos = 0;
	struct span line, v;
	while (next_line(s, n, &pos, &line)) {
		if (line.n && !is_wsp(line.p[0]) && (v = header_line_value(line, name)).p)
			return true;
	}
	return false;
}

int dsn_parse(const char *msg, size_t len, struct dsn_report *out)
{
	struct ctx c;

	memset(out, 0, sizeof *out);
	memset(&c, 0, sizeof c);
	c.out = out;
	sb_init(&c.text);
	if (!msg)
		len = 0;
	if (len >= 5 && memcmp(msg, "From ", 5) == 0) { /* mbox */
		const char *nl = memchr(msg, '\n', len);
		size_t skip = nl ? (size_t)(nl - msg) + 1 : len;
		msg += skip;
		len -= skip;
	}
	if (len)
		walk_entity(&c, msg, len, 0, true);

	const char *text = c.text.s ? c.text.s : "";
	size_t cut = text_cut(text, c.text.len < MAX_NOTE ? c.text.len : MAX_NOTE);

	if (out->is_rfc3464 && out->n_recipients_seen == 0) {
		/* an empty delivery-status part: the text may still name the recipient */
		plain_text_bounce(&c, text, cut);
	} else if (!out->is_rfc3464 && (c.looks_bounce || c.report)) {
		/* DSN fields written into the text (broken multipart/report) */
		if (line_starts_field(text, cut, "Final-Recipient")) {
			c.inline_fields = true;
			parse_fields(&c, text, cut);
			for (size_t i = 0; i < out->n_recipients; i++)
				out->recipients[i].action[0] = '\0';
		}
		if (out->n_recipients_seen == 0)
			plain_text_bounce(&c, text, cut);
	}
	struct note note = { text, xmalloc(cut + 1), cut };
	for (size_t i = 0; i < cut; i++)
		note.low[i] = text[i] ? lc(text[i]) : ' ';
	note.low[cut] = '\0';
	for (size_t i = 0; i < out->n_recipients; i++)
		finish_recipient(&out->recipients[i], &note, out->n_recipients == 1);
	free(note.low);
	text_headers(&c);
	sb_fini(&c.text);

	if (out->is_rfc3464)
		return 0;
	if (!c.looks_bounce && !c.report)
		return -1;
	for (size_t i = 0; i < out->n_recipients; i++) {
		const struct dsn_recipient *r = &out->recipients[i];
		if (r->diagnostic[0] || r->status[0] || r->reply_code)
			return 0;
	}
	return -1;
}
