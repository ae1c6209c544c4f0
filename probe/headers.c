#include "headers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "clock.h"

/* ---- bytes and strings ---- */

static bool is_wsp(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static unsigned char to_lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c; }

/* s[0..n) equals the NUL-terminated w, ASCII case-insensitively. */
static bool ci_eq(const char *s, size_t n, const char *w)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (w[i] == '\0' || to_lower((unsigned char)s[i]) != to_lower((unsigned char)w[i]))
			return false;
	return w[i] == '\0';
}

/* The length to cut buf[0..n) to so that it does not end inside a UTF-8 sequence. */
static size_t utf8_cut(const char *buf, size_t n)
{
	size_t k = n, cont = 0;
	while (k > 0 && cont < 3 && ((unsigned char)buf[k - 1] & 0xC0) == 0x80) {
		k--;
		cont++;
	}
	if (k == 0)
		return n;
	unsigned char lead = (unsigned char)buf[k - 1];
	size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
	return need > cont + 1 ? k - 1 : n;
}

/* Appends to a fixed-size result string: runs of white space become one space (never leading or
 * trailing), other control bytes '?', optionally lowercased; cut at a UTF-8 boundary when full.
 * The string is NUL-terminated after every call. */
struct sbuf {
	char *buf;
	size_t size, len;
	bool space; /* a space is due before the next byte */
	bool full;
	bool lower;
};

static void sb_init(struct sbuf *b, char *buf, size_t size)
{
	b->buf = buf;
	b->size = size;
	b->len = 0;
	b->space = b->full = b->lower = false;
	buf[0] = '\0';
}

static void sb_byte(struct sbuf *b, unsigned char c)
{
	if (b->full)
		return;
	if (is_wsp(c)) {
		b->space = b->len > 0;
		return;
	}
	size_t need = b->space ? 2 : 1;
	if (b->len + need >= b->size) {
		b->full = true;
		b->len = utf8_cut(b->buf, b->len);
		if (b->len > 0 && b->buf[b->len - 1] == ' ') /* the cut may bare a space */
			b->len--;
		b->buf[b->len] = '\0';
		return;
	}
	if (b->space)
		b->buf[b->len++] = ' ';
	b->space = false;
	if (c < 0x20 || c == 0x7F)
		c = '?';
	else if (b->lower)
		c = to_lower(c);
	b->buf[b->len++] = (char)c;
	b->buf[b->len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n && !b->full; i++)
		sb_byte(b, (unsigned char)s[i]);
}

/* Adds s[0..n) as a new word: separated from what is there by one space. */
static void sb_word(struct sbuf *b, const char *s, size_t n)
{
	if (b->len > 0)
		b->space = true;
	sb_add(b, s, n);
}

/* Copies the NUL-terminated src (an sbuf result) into dst[size], cut at a UTF-8 boundary and
 * without the space the cut may leave at the end. */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size) {
		n = utf8_cut(src, size - 1);
		if (n > 0 && src[n - 1] == ' ')
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- lexing structured field bodies (RFC 5322 3.2.2): CR and LF count as white space ---- */

/* p at '(': the length of the comment up to its matching ')' (nested, with quoted pairs), or up
 * to end when it is not closed. */
static size_t comment_len(const char *p, const char *end)
{
	const char *q = p;
	int depth = 0;
	while (q < end) {
		char c = *q++;
		if (c == '\\') {
			if (q < end)
				q++;
		} else if (c == '(') {
			depth++;
		} else if (c == ')') {
			if (--depth == 0)
				break;
		}
	}
	return (size_t)(q - p);
}

/* p at '"': the length of the quoted string, quotes included, or up to end when not closed. */
static size_t quoted_len(const char *p, const char *end)
{
	const char *q = p + 1;
	while (q < end) {
		char c = *q++;
		if (c == '\\') {
			if (q < end)
				q++;
		} else if (c == '"') {
			break;
		}
	}
	return (size_t)(q - p);
}

struct lex {
	const char *p, *end;
};

/* Skips CFWS; comments go to comments (may be NULL), each as a word. */
static void skip_cfws(struct lex *l, struct sbuf *comments)
{
	while (l->p < l->end) {
		if (is_wsp((unsigned char)*l->p)) {
			l->p++;
		} else if (*l->p == '(') {
			size_t n = comment_len(l->p, l->end);
			if (comments)
				sb_word(comments, l->p, n);
			l->p += n;
		} else {
			break;
		}
	}
}

/* The length of the run of bytes at l->p for which ok() holds. */
static size_t run_len(const struct lex *l, bool (*ok)(unsigned char))
{
	const char *q = l->p;
	while (q < l->end && ok((unsigned char)*q))
		q++;
	return (size_t)(q - l->p);
}

/* ---- the header block ---- */

static bool is_ftext(unsigned char c) { return c >= 33 && c <= 126 && c != ':'; }

void hdr_iter_init(struct hdr_iter *it, const char *block, size_t len)
{
	memset(it, 0, sizeof *it);
	if (!block) {
		block = "";
		len = 0;
	}
	it->p = block;
	it->end = block + (len > HDR_MAX_BYTES ? HDR_MAX_BYTES : len);
	it->cut = len > HDR_MAX_BYTES;
}

/* The line at p: returns the end of its content (before CR LF, LF, or a CR at the very end)
 * and sets *next to the start of the next line. */
static const char *line_at(const char *p, const char *end, const char **next)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));
	const char *ce = lf ? lf : end;
	*next = lf ? lf + 1 : end;
	if (ce > p && ce[-1] == '\r')
		ce--;
	return ce;
}

bool hdr_next(struct hdr_iter *it, struct hdr_field *f)
{
	while (!it->done) {
		if (it->p >= it->end) {
			it->done = true;
			it->truncated = it->truncated || it->cut;
			break;
		}
		const char *next, *line = it->p;
		const char *ce = line_at(line, it->end, &next);
		if (ce == line) { /* the empty line that ends the header */
			it->done = true;
			break;
		}
		/* the field, or junk, with its continuation lines */
		const char *vend = ce;
		while (next < it->end && (*next == ' ' || *next == '\t'))
			vend = line_at(next, it->end, &next);

		const char *q = line;
		while (q < ce && is_ftext((unsigned char)*q))
			q++;
		const char *name_end = q;
		while (q < ce && (*q == ' ' || *q == '\t'))
			q++;
		if (name_end == line || q >= ce || *q != ':') {
			it->n_skipped++;
			it->p = next;
			continue;
		}
		if (it->n_fields >= HDR_MAX_FIELDS) {
			it->done = true;
			it->truncated = true;
			break;
		}
		it->p = next;
		it->n_fields++;
		f->name = line;
		f->name_len = (size_t)(name_end - line);
		f->value = q + 1;
		f->value_len = (size_t)(vend - (q + 1));
		return true;
	}
	return false;
}

bool hdr_name_is(const struct hdr_field *f, const char *name)
{
	return ci_eq(f->name, f->name_len, name);
}

bool hdr_next_named(struct hdr_iter *it, const char *name, struct hdr_field *f)
{
	struct hdr_field g;
	while (hdr_next(it, &g))
		if (hdr_name_is(&g, name)) {
			*f = g;
			return true;
		}
	return false;
}

size_t hdr_unfold(const char *value, size_t len, char *buf, size_t bufsz)
{
	size_t a = 0, b = len, n = 0, w = 0;
	bool cut = false;

	if (!value)
		len = b = 0;
	while (a < b && (is_wsp((unsigned char)value[a]) || value[a] == '\0'))
		a++;
	while (b > a && (is_wsp((unsigned char)value[b - 1]) || value[b - 1] == '\0'))
		b--;
	for (size_t i = a; i < b; i++) {
		char c = value[i];
		if (c == '\r' || c == '\n')
			continue;
		n++;
		if (w + 1 < bufsz)
			buf[w++] = c ? c : ' ';
		else
			cut = true;
	}
	if (bufsz == 0)
		return n;
	if (cut)
		w = utf8_cut(buf, w);
	buf[w] = '\0';
	return n;
}

/* ---- date-time ---- */



static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int64_t y, int m)
{
	static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static const char day_names[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char month_names[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static bool dig(unsigned char c) { return is_digit(c); }
static bool alpha(unsigned char c) { return is_alpha(c); }

/* A run of min..max digits at l->p; -1 when the run is shorter or longer. */
static int lex_number(struct lex *l, size_t min, size_t max)
{
	size_t n = run_len(l, dig);
	int v = 0;
	if (n < min || n > max)
		return -1;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (l->p[i] - '0');
	l->p += n;
	return v;
}

/* The zone at l->p into *zone (minutes east of UTC); false when there is none. */
static bool lex_zone(struct lex *l, int *zone)
{
	static const struct {
		const char *name;
		int min;
	} names[] = {
		{ "UT", 0 }, { "GMT", 0 }, { "UTC", 0 }, { "Z", 0 },
		{ "EST", -5 * 60 }, { "EDT", -4 * 60 }, { "CST", -6 * 60 }, { "CDT", -5 * 60 },
		{ "MST", -7 * 60 }, { "MDT", -6 * 60 }, { "PST", -8 * 60 }, { "PDT", -7 * 60 },
	};
	if (l->p >= l->end)
		return false;
	if (*l->p == '+' || *l->p == '-') {
		int sign = *l->p == '-' ? -1 : 1;
		l->p++;
		if (run_len(l, dig) != 4)
			return false;
		int hh = (l->p[0] - '0') * 10 + (l->p[1] - '0');
		int mm = (l->p[2] - '0') * 10 + (l->p[3] - '0');
		if (hh > 23 || mm > 59)
			return false;
		l->p += 4;
		*zone = sign * (hh * 60 + mm);
		return true;
	}
	size_t n = run_len(l, alpha);
	if (n < 1 || n > 5)
		return false;
	*zone = 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (ci_eq(l->p, n, names[i].name)) {
			*zone = names[i].min;
			l->p += n;
			return true;
		}
	/* military letters (not J) and other names: unknown, -0000 (RFC 5322 4.3) */
	if (n == 1 && to_lower((unsigned char)*l->p) == 'j')
		return false;
	l->p += n;
	return true;
}

int64_t hdr_date_parse(const char *s, size_t len, int *zone_min)
{
	struct lex l = { s, s + len };
	int day, month = 0, hour, minute, second = 0, zone = 0;
	int64_t year;

	if (zone_min)
		*zone_min = 0;
	if (!s)
		return -1;
	skip_cfws(&l, NULL);
	size_t n = run_len(&l, alpha);
	if (n > 0) {
		bool ok = false;
		for (int i = 0; i < 7 && !ok; i++)
			ok = ci_eq(l.p, n, day_names[i]);
		if (!ok)
			return -1;
		l.p += n;
		skip_cfws(&l, NULL);
		if (l.p < l.end && *l.p == ',') {
			l.p++;
			skip_cfws(&l, NULL);
		}
	}
	if ((day = lex_number(&l, 1, 2)) < 0)
		return -1;
	skip_cfws(&l, NULL);
	n = run_len(&l, alpha);
	for (int i = 0; i < 12 && !month; i++)
		if (ci_eq(l.p, n, month_names[i]))
			month = i + 1;
	if (!month)
		return -1;
	l.p += n;
	skip_cfws(&l, NULL);
	n = run_len(&l, dig);
	if ((year = lex_number(&l, 2, 4)) < 0)
		return -1;
	if (n == 2)
		year += year < 50 ? 2000 : 1900;
	else if (n == 3)
		year += 1900;
	if (year < 1900 || day < 1 || day > days_in_month(year, month))
		return -1;
	skip_cfws(&l, NULL);
	if ((hour = lex_number(&l, 1, 2)) < 0 || hour > 23)
		return -1;
	skip_cfws(&l, NULL);
	if (l.p >= l.end || *l.p != ':')
		return -1;
	l.p++;
	skip_cfws(&l, NULL);
	if ((minute = lex_number(&l, 1, 2)) < 0 || minute > 59)
		return -1;
	skip_cfws(&l, NULL);
	if (l.p < l.end && *l.p == ':') {
		l.p++;
		skip_cfws(&l, NULL);
		if ((second = lex_number(&l, 1, 2)) < 0 || second > 60)
			return -1;
		skip_cfws(&l, NULL);
	}
	if (!lex_zone(&l, &zone))
		return -1;
	skip_cfws(&l, NULL);
	if (l.p != l.end)
		return -1;
	int64_t t = civil_to_days(year, month, day) * 86400 + hour * 3600 + minute * 60 + second -
		    (int64_t)zone * 60;
	if (t < 0)
		return -1;
	if (zone_min)
		*zone_min = zone;
	return t;
}

int hdr_date_format(int64_t t, int zone_min, char *buf, size_t bufsz)
{
	int64_t y;
	int m, d;

	if (bufsz >= 1)
		buf[0] = '\0';
	if (t < 0 || zone_min < -(23 * 60 + 59) || zone_min > 23 * 60 + 59 || bufsz < 32)
		return -1;
	int64_t local = t + (int64_t)zone_min * 60;
	int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
	int64_t secs = local - days * 86400;
	days_to_civil(days, &y, &m, &d);
	if (y < 1900 || y > 9999)
		return -1;
	int wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
	int az = zone_min < 0 ? -zone_min : zone_min;
	snprintf(buf, bufsz, "%s, %d %s %04d %02d:%02d:%02d %c%02d%02d", day_names[wday], d,
		 month_names[m - 1], (int)y, (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60),
		 zone_min < 0 ? '-' : '+', az / 60, az % 60);
	return 0;
}

/* ---- Received ---- */

static const char *const clause_words[HDR_N_CLAUSES] = { "from", "by", "via", "with", "id", "for" };

/* s[0..n) is an IPv4 or IPv6 address, optionally in brackets and with "IPv6:"; copies the bare
 * address into out[64]. */
static bool ip_literal(const char *s, size_t n, char *out)
{
	char tmp[64];
	unsigned char bin[sizeof(struct in6_addr)];

	while (n > 0 && is_wsp((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && is_wsp((unsigned char)s[n - 1]))
		n--;
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	bool v6 = n >= 5 && ci_eq(s, 5, "IPv6:");
	if (v6) {
		s += 5;
		n -= 5;
	}
	if (n == 0 || n >= sizeof tmp)
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if ((v6 || inet_pton(AF_INET, tmp, bin) != 1) && inet_pton(AF_INET6, tmp, bin) != 1)
		return false;
	memcpy(out, tmp, n + 1);
	return true;
}

/* The sending host's address from the from clause (see struct hdr_received). */
static void received_ip(struct hdr_received *r)
{
	const char *c = r->comment[HDR_FROM];
	size_t cl = strlen(c);

	/* an address literal anywhere in the comments */
	for (const char *p = memchr(c, '[', cl); p; p = memchr(p + 1, '[', cl - (size_t)(p + 1 - c))) {
		const char *q = memchr(p, ']', cl - (size_t)(p - c));
		if (q && ip_literal(p, (size_t)(q - p + 1), r->ip))
			return;
		if (p + 1 >= c + cl)
			break;
	}
	/* a comment that is just an address, or "user@address" (qmail) */
	for (size_t i = 0; i < cl; i++) {
		if (c[i] != '(')
			continue;
		size_t n = comment_len(c + i, c + cl);
		const char *in = c + i + 1, *ie = c + i + n;
		if (ie > in && ie[-1] == ')')
			ie--;
		for (const char *a = ie; a > in; a--)
			if (a[-1] == '@') {
				in = a;
				break;
			}
		if (ip_literal(in, (size_t)(ie - in), r->ip))
			return;
		i += n - 1;
	}
	const char *v = r->value[HDR_FROM];
	if (!ip_literal(v, strlen(v), r->ip))
		r->ip[0] = '\0';
}

void hdr_received_parse(const char *value, size_t len, struct hdr_received *out)
{
	struct sbuf vb[HDR_N_CLAUSES], cb[HDR_N_CLAUSES], ob, db;
	bool seen[HDR_N_CLAUSES] = { false };
	const char *p, *end, *semi = NULL;
	int cur = -1;

	memset(out, 0, sizeof *out);
	out->at = -1;
	if (!value)
		return;
	p = value;
	end = value + len;

	/* the last ';' outside comments and quoted strings; else the last one */
	for (const char *q = p; q < end;) {
		if (*q == '(')
			q += comment_len(q, end);
		else if (*q == '"')
			q += quoted_len(q, end);
		else if (*q++ == ';')
			semi = q - 1;
	}
	if (!semi)
		for (const char *q = end; q > p; q--)
			if (q[-1] == ';') {
				semi = q - 1;
				break;
			}
	if (semi) {
		sb_init(&db, out->date, sizeof out->date);
		sb_add(&db, semi + 1, (size_t)(end - semi - 1));
		out->at = hdr_date_parse(semi + 1, (size_t)(end - semi - 1), &out->zone_min);
		end = semi;
	}

	for (int k = 0; k < HDR_N_CLAUSES; k++) {
		sb_init(&vb[k], out->value[k], sizeof out->value[k]);
		sb_init(&cb[k], out->comment[k], sizeof out->comment[k]);
	}
	sb_init(&ob, out->other, sizeof out->other);
	while (p < end) {
		unsigned char c = (unsigned char)*p;
		if (is_wsp(c) || c == ';') {
			p++;
			continue;
		}
		if (c == '(') {
			size_t n = comment_len(p, end);
			sb_word(cur >= 0 ? &cb[cur] : &ob, p, n);
			p += n;
			continue;
		}
		size_t n;
		if (c == '"') {
			n = quoted_len(p, end);
		} else {
			const char *q = p;
			while (q < end && !is_wsp((unsigned char)*q) && *q != '(' && *q != ';')
				q++;
			n = (size_t)(q - p);
		}
		int k = -1;
		for (int i = 0; i < HDR_N_CLAUSES && c != '"'; i++)
			if (ci_eq(p, n, clause_words[i]))
				k = i;
		if (k >= 0 && !seen[k]) {
			seen[k] = true;
			cur = k;
		} else if (k >= 0 || (c != '"' && ci_eq(p, n, "tls"))) {
			/* a repeated clause word or an extension clause: what follows is in no clause */
			cur = -1;
			sb_word(&ob, p, n);
		} else {
			sb_word(cur >= 0 ? &vb[cur] : &ob, p, n);
		}
		p += n;
	}
	received_ip(out);
}

void hdr_received_chain(const char *block, size_t len, struct hdr_chain *out)
{
	int64_t at[HDR_MAX_FIELDS];
	struct hdr_received r;
	struct hdr_iter it;
	struct hdr_field f;
	size_t total = 0, keep, i = 0;

	memset(out, 0, sizeof *out);
	hdr_iter_init(&it, block, len);
	while (hdr_next_named(&it, "Received", &f))
		total++;
	bool cut = it.truncated; /* the first pass went to the end of the block */
	keep = total < HDR_MAX_HOPS ? total : HDR_MAX_HOPS;

	/* fields come newest first: field i is hop total-1-i, kept in hop[keep-1-i] when i < keep */
	hdr_iter_init(&it, block, len);
	while (i < total && hdr_next_named(&it, "Received", &f)) {
		hdr_received_parse(f.value, f.value_len, &r);
		at[total - 1 - i] = r.at;
		if (i < keep) {
			struct hdr_hop *h = &out->hop[keep - 1 - i];
			copy_str(h->from, sizeof h->from, r.value[HDR_FROM]);
			copy_str(h->by, sizeof h->by, r.value[HDR_BY]);
			copy_str(h->with, sizeof h->with, r.value[HDR_WITH]);
			copy_str(h->id, sizeof h->id, r.value[HDR_ID]);
			copy_str(h->ip, sizeof h->ip, r.ip);
			h->at = r.at;
		}
		i++;
	}
	total = i; /* the same fields both times; this only keeps at[] provably written */
	keep = total < keep ? total : keep;
	int64_t prev = -1;
	for (size_t j = 0; j < total; j++) {
		double d = 0;
		if (at[j] != -1) {
			if (prev != -1)
				d = (double)(at[j] - prev);
			prev = at[j];
		}
		if (j >= total - keep)
			out->hop[j - (total - keep)].delay_s = d;
	}
	out->n = keep;
	out->n_received = total;
	out->truncated = total > keep || cut;
}

/* ---- Authentication-Results ---- */

enum { AR_SPF, AR_DKIM, AR_DMARC, AR_ARC, AR_N };
static const char *const ar_methods[AR_N] = { "spf", "dkim", "dmarc", "arc" };

struct ar_state {
	struct hdr_auth *out;
	const char *filter;
	char trusted[256]; /* the trusted ID, whole (out->authserv_id may be cut) */
	bool have_trusted;
	int src[AR_N]; /* the field each verdict came from, -1: none yet */
	char *verdict[AR_N];
};

static bool is_keyword(unsigned char c) { return is_alpha(c) || is_digit(c) || c == '-' || c == '_'; }
static bool is_token(unsigned char c)
{
	return c > 0x20 && c != 0x7F && c != ';' && c != '(' && c != ')' && c != '"' && c != '=';
}

/* Moves to the next ';' outside comments and quoted strings (or the end). */
static void skip_to_semi(struct lex *l)
{
	while (l->p < l->end && *l->p != ';') {
		if (*l->p == '(')
			l->p += comment_len(l->p, l->end);
		else if (*l->p == '"')
			l->p += quoted_len(l->p, l->end);
		else
			l->p++;
	}
}

/* One word at l->p: a quoted string (quotes kept) or a run up to white space, ';' or '('. */
static size_t word_len(const struct lex *l)
{
	if (l->p < l->end && *l->p == '"')
		return quoted_len(l->p, l->end);
	const char *q = l->p;
	while (q < l->end && !is_wsp((unsigned char)*q) && *q != ';' && *q != '(')
		q++;
	return (size_t)(q - l->p);
}

static void ar_result(struct ar_state *st, unsigned field, bool trusted, struct hdr_authres *e)
{
	struct hdr_auth *out = st->out;
	bool counted = false;

	for (int m = 0; m < AR_N && trusted; m++) {
		if (strcmp(e->method, ar_methods[m]) != 0)
			continue;
		if (st->src[m] == -1) {
			st->src[m] = (int)field;
			copy_str(st->verdict[m], 24, e->result);
			counted = true;
		} else if (st->src[m] == (int)field) {
			if (m == AR_DKIM && strcmp(e->result, "pass") == 0)
				copy_str(st->verdict[m], 24, "pass");
			counted = true;
		}
	}
	if (out->n >= HDR_AUTH_MAX_ENTRIES) {
		out->truncated = true;
		return;
	}
	e->field = field;
	e->counted = counted;
	out->entry[out->n++] = *e;
}

/* One resinfo at l->p (after the ';'): method[/version] = result, then reason and properties. */
static void ar_resinfo(struct ar_state *st, struct lex *l, unsigned field, bool trusted, const char *id)
{
	struct hdr_authres e;
	struct sbuf mb, rb, pb, cb;
	size_t n;

	memset(&e, 0, sizeof e);
	copy_str(e.authserv_id, sizeof e.authserv_id, id);
	sb_init(&mb, e.method, sizeof e.method);
	sb_init(&rb, e.result, sizeof e.result);
	sb_init(&pb, e.props, sizeof e.props);
	sb_init(&cb, e.comment, sizeof e.comment);
	mb.lower = rb.lower = true;

	n = run_len(l, is_keyword);
	if (n == 0) {
		skip_to_semi(l);
		return;
	}
	const char *method = l->p;
	l->p += n;
	skip_cfws(l, &cb);
	if (ci_eq(method, n, "none") && (l->p >= l->end || *l->p == ';'))
		return; /* no-result */
	sb_add(&mb, method, n);
	if (l->p < l->end && *l->p == '/') {
		l->p++;
		skip_cfws(l, &cb);
		l->p += run_len(l, is_keyword);
		skip_cfws(l, &cb);
	}
	if (l->p >= l->end || *l->p != '=') {
		skip_to_semi(l);
		return;
	}
	l->p++;
	skip_cfws(l, &cb);
	if ((n = run_len(l, is_keyword)) == 0) {
		skip_to_semi(l);
		return;
	}
	sb_add(&rb, l->p, n);
	l->p += n;

	for (;;) {
		skip_cfws(l, &cb);
		if (l->p >= l->end || *l->p == ';')
			break;
		/* ptype [CFWS] "." [CFWS] property, or reason (or any other name) */
		const char *name = l->p;
		n = run_len(l, is_keyword);
		if (n == 0) { /* not a name: keep the word as written */
			size_t w = word_len(l);
			if (w == 0)
				w = 1;
			sb_word(&pb, l->p, w);
			l->p += w;
			continue;
		}
		sb_word(&pb, name, n);
		l->p += n;
		skip_cfws(l, &cb);
		if (l->p < l->end && *l->p == '.') {
			l->p++;
			skip_cfws(l, &cb);
			sb_add(&pb, ".", 1);
			n = run_len(l, is_keyword);
			sb_add(&pb, l->p, n);
			l->p += n;
			skip_cfws(l, &cb);
		}
		if (l->p < l->end && *l->p == '=') {
			l->p++;
			sb_add(&pb, "=", 1);
			skip_cfws(l, &cb);
			n = word_len(l);
			sb_add(&pb, l->p, n);
			l->p += n;
		}
	}
	ar_result(st, field, trusted, &e);
}

static void ar_field(struct ar_state *st, const char *value, size_t len, unsigned field)
{
	struct lex l = { value, value + len };
	char id[256];
	struct sbuf ib;

	sb_init(&ib, id, sizeof id);
	skip_cfws(&l, NULL);
	/* authserv-id [version], unless the field starts with a result (Exchange Online) */
	const char *save = l.p;
	if (l.p < l.end && *l.p == '"') {
		size_t n = quoted_len(l.p, l.end);
		for (size_t i = 1; i < n; i++) {
			if (l.p[i] == '\\' && i + 1 < n)
				i++;
			else if (l.p[i] == '"')
				break;
			sb_add(&ib, l.p + i, 1);
		}
		l.p += n;
	} else {
		size_t n = run_len(&l, is_token);
		sb_add(&ib, l.p, n);
		l.p += n;
	}
	skip_cfws(&l, NULL);
	if (l.p < l.end && (*l.p == '=' || *l.p == '/')) {
		l.p = save; /* that was a method */
		sb_init(&ib, id, sizeof id);
	} else if (l.p < l.end && is_digit((unsigned char)*l.p)) {
		l.p += run_len(&l, dig); /* authres-version */
	}
	if (!st->have_trusted) {
		copy_str(st->trusted, sizeof st->trusted, st->filter ? st->filter : id);
		copy_str(st->out->authserv_id, sizeof st->out->authserv_id, st->trusted);
		st->have_trusted = true;
	}
	bool trusted = st->filter ? strcasecmp(id, st->filter) == 0 : strcasecmp(id, st->trusted) == 0;
	if (trusted)
		st->out->n_trusted++;

	for (;;) {
		skip_cfws(&l, NULL);
		if (l.p >= l.end)
			break;
		if (*l.p == ';') {
			l.p++;
			continue;
		}
		const char *before = l.p;
		ar_resinfo(st, &l, field, trusted, id);
		if (l.p == before) /* no progress: skip the junk up to the next ';' */
			skip_to_semi(&l);
		if (l.p == before)
			l.p++;
	}
}

void hdr_auth_parse(const char *block, size_t len, const char *authserv_id, struct hdr_auth *out)
{
	struct ar_state st;
	struct hdr_iter it;
	struct hdr_field f;

	memset(out, 0, sizeof *out);
	memset(&st, 0, sizeof st);
	st.out = out;
	st.filter = authserv_id;
	for (int m = 0; m < AR_N; m++)
		st.src[m] = -1;
	st.verdict[AR_SPF] = out->spf;
	st.verdict[AR_DKIM] = out->dkim;
	st.verdict[AR_DMARC] = out->dmarc;
	st.verdict[AR_ARC] = out->arc;
	if (authserv_id) {
		copy_str(st.trusted, sizeof st.trusted, authserv_id);
		copy_str(out->authserv_id, sizeof out->authserv_id, authserv_id);
		st.have_trusted = true;
	}
	hdr_iter_init(&it, block, len);
	while (hdr_next_named(&it, "Authentication-Results", &f)) {
		ar_field(&st, f.value, f.value_len, (unsigned)out->n_fields);
		out->n_fields++;
	}
	out->truncated = out->truncated || it.truncated;
}
