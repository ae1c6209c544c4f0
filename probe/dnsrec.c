/* Pure parsers for the DNS trust checks: DMARC, DKIM key records, DNSBL answers, reverse names,
 * organisational domains. See dnsrec.h. Tag lists follow RFC 6376 3.2 (DKIM), which DMARC
 * (RFC 7489 6.3) reuses: "name = value" specs separated by ';', whitespace around both. */
#include "dnsrec.h"

#include <arpa/inet.h>
#include <libpsl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TAGS 32

static void problemf(char *problem, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problemf(char *problem, size_t size, const char *fmt, ...)
{
	va_list ap;
	if (!problem || !size)
		return;
	va_start(ap, fmt);
	vsnprintf(problem, size, fmt, ap);
	va_end(ap);
}

void dnsrec_show(char *dst, size_t size, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, total = 0;
	if (!size)
		return;
	for (size_t i = 0; i < n && total < size; i++) {
		unsigned char c = (unsigned char)s[i];
		total += c >= 0x20 && c < 0x7f ? 1 : 4;
	}
	/* all of it, or what fits before "..." */
	bool cut = total >= size, dots = cut && size >= 4;
	size_t limit = dots ? size - 4 : size - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool plain = c >= 0x20 && c < 0x7f;
		if (o + (plain ? 1 : 4) > limit)
			break;
		if (plain) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	if (dots) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

/* ---- tag lists ---- */

struct tag {
	const char *name, *val;
	size_t nlen, vlen;
};

static bool is_wsp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Appends "what" to a space-separated note list in dst (cut silently). */
static void note(char *dst, size_t size, const char *what)
{
	size_t o = strlen(dst);
	if (o + 1 < size)
		snprintf(dst + o, size - o, "%s%s", o ? "; " : "", what);
}

/* Splits s into tags (at most MAX_TAGS). Empty specs (";;", a trailing ';') are skipped. Returns
 * the number of tags, or -1 with problem set. strict (DKIM, RFC 6376 3.2): a malformed spec or a
 * duplicate tag name (exact case) makes the list invalid. Otherwise (DMARC, RFC 7489 6.3: syntax
 * errors are discarded) they are skipped, each named in notes, and names compare case-insensitively. */
static int tags_split(const char *s, size_t len, struct tag *tags, bool strict, char *notes, size_t nsize,
		      char *problem, size_t psize)
{
	size_t i = 0;
	int n = 0;
	char shown[48], msg[128];

	while (i < len) {
		size_t end = i;
		while (end < len && s[end] != ';')
			end++;
		size_t a = i, b = end;
		i = end + 1;
		while (a < b && is_wsp(s[a]))
			a++;
		while (b > a && is_wsp(s[b - 1]))
			b--;
		if (a == b)
			continue;
		size_t q = a;
		while (q < b && (is_alpha(s[q]) || (q > a && (is_digit(s[q]) || s[q] == '_'))))
			q++;
		size_t nend = q;
		while (q < b && is_wsp(s[q]))
			q++;
		const char *bad = NULL, *why = "";
		if (nend == a) {
			bad = "malformed tag";
		} else if (q >= b || s[q] != '=') {
			bad = "malformed tag";
			why = " (no '=' after the name)";
		}
		if (!bad) {
			q++;
			while (q < b && is_wsp(s[q]))
				q++;
			for (size_t k = q; k < b && !bad; k++) {
				unsigned char c = (unsigned char)s[k];
				if (!is_wsp((char)c) && (c < 0x21 || c > 0x7e))
					bad = "control or non-ASCII byte in the tag";
			}
		}
		for (int t = 0; t < n && !bad; t++)
			if (tags[t].nlen == nend - a &&
			    (strict ? memcmp(tags[t].name, s + a, nend - a) == 0
				    : strncasecmp(tags[t].name, s + a, nend - a) == 0))
				bad = "duplicate tag";
		if (bad) {
			dnsrec_show(shown, sizeof shown, s + a, b - a);
			snprintf(msg, sizeof msg, "%s \"%s\"%s", bad, shown, why);
			if (strict) {
				problemf(problem, psize, "%s", msg);
				return -1;
			}
			note(notes, nsize, msg);
			continue;
		}
		if (n == MAX_TAGS) {
			problemf(problem, psize, "more than %d tags", MAX_TAGS);
			return -1;
		}
		tags[n].name = s + a;
		tags[n].nlen = nend - a;
		tags[n].val = s + q;
		tags[n].vlen = b - q;
		n++;
	}
	return n;
}

static bool tag_is(const struct tag *t, const char *name, bool case_fold)
{
	size_t l = strlen(name);
	return t->nlen == l && (case_fold ? strncasecmp(t->name, name, l) == 0 : memcmp(t->name, name, l) == 0);
}

static bool val_is(const char *v, size_t n, const char *word)
{
	size_t l = strlen(word);
	return n == l && strncasecmp(v, word, l) == 0;
}

/* The next element of a list separated by sep, whitespace trimmed; false at the end. */
static bool list_next(const char **p, const char *end, char sep, const char **e, size_t *elen)
{
	if (*p > end)
		return false;
	const char *s = *p, *x = s;
	while (x < end && *x != sep)
		x++;
	*p = x + 1;
	while (s < x && is_wsp(*s))
		s++;
	while (x > s && is_wsp(x[-1]))
		x--;
	*e = s;
	*elen = (size_t)(x - s);
	return true;
}

/* ---- DMARC ---- */

bool dmarc_is_record(const char *txt, size_t len)
{
	size_t i = 0;
	while (i < len && is_wsp(txt[i]))
		i++;
	if (i >= len || (txt[i] != 'v' && txt[i] != 'V'))
		return false;
	i++;
	while (i < len && is_wsp(txt[i]))
		i++;
	if (i >= len || txt[i] != '=')
		return false;
	i++;
	while (i < len && is_wsp(txt[i]))
		i++;
	if (len - i < 6 || memcmp(txt + i, "DMARC1", 6) != 0)
		return false;
	i += 6;
	while (i < len && is_wsp(txt[i]))
		i++;
	return i == len || txt[i] == ';';
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_P_NONE: return "none";
	case DMARC_P_QUARANTINE: return "quarantine";
	case DMARC_P_REJECT: return "reject";
	}
	return "?";
}

const char *dmarc_align_name(enum dmarc_align a)
{
	return a == DMARC_ALIGN_STRICT ? "strict" : "relaxed";
}

static int parse_policy(const char *v, size_t n, enum dmarc_policy *out)
{
	if (val_is(v, n, "none"))
		*out = DMARC_P_NONE;
	else if (val_is(v, n, "quarantine"))
		*out = DMARC_P_QUARANTINE;
	else if (val_is(v, n, "reject"))
		*out = DMARC_P_REJECT;
	else
		return -1;
	return 0;
}

/* dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ] (RFC 7489 6.4); the URI is only
 * checked for a scheme and something after it, without whitespace. */
static bool dmarc_uri_ok(const char *u, size_t n)
{
	size_t bang = n;
	for (size_t i = n; i > 0; i--)
		if (u[i - 1] == '!') {
			bang = i - 1;
			break;
		}
	if (bang < n) {
		size_t i = bang + 1, d = 0;
		while (i < n && is_digit(u[i]))
			i++, d++;
		if (i < n && strchr("kmgtKMGT", u[i]))
			i++;
		if (d == 0 || i != n)
			return false;
		n = bang;
	}
	size_t i = 0;
	if (!n || !is_alpha(u[0]))
		return false;
	while (i < n && (is_alpha(u[i]) || is_digit(u[i]) || u[i] == '+' || u[i] == '-' || u[i] == '.'))
		i++;
	if (i >= n || u[i] != ':' || i + 1 >= n)
		return false;
	for (size_t k = i + 1; k < n; k++)
		if (is_wsp(u[k]))
			return false;
	return true;
}

/* Number of valid URIs in a rua/ruf list, -1 for an empty element. */
static int dmarc_uris(const char *v, size_t n)
{
	const char *p = v, *end = v + n, *e;
	size_t el;
	int ok = 0;
	while (list_next(&p, end, ',', &e, &el)) {
		if (!el)
			return -1;
		ok += dmarc_uri_ok(e, el);
	}
	return ok;
}

static bool digits_ok(const char *v, size_t n, size_t max_digits)
{
	if (!n || n > max_digits)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_digit(v[i]))
			return false;
	return true;
}

int dmarc_parse(const char *txt, size_t len, struct dmarc_record *out, char *problem, size_t psize)
{
	struct tag tags[MAX_TAGS];
	struct dmarc_record r;
	char shown[64], msg[160];
	bool p_seen = false, p_ok = false, sp_ok = true;
	int rua_ok = 0;

	memset(out, 0, sizeof *out);
	memset(&r, 0, sizeof r);
	r.pct = 100;
	if (len > DNSREC_MAX_RECORD) {
		problemf(problem, psize, "record longer than %d bytes", DNSREC_MAX_RECORD);
		return -1;
	}
	if (!dmarc_is_record(txt, len)) {
		problemf(problem, psize, "not a DMARC record (it must start with v=DMARC1)");
		return -1;
	}
	int n = tags_split(txt, len, tags, false, r.notes, sizeof r.notes, problem, psize);
	if (n < 0)
		return -1;
	/* RFC 7489 6.3: unknown tags are ignored, and syntax errors after v= discarded in favour of
	 * the defaults; each one is named in notes */
	for (int i = 1; i < n; i++) {
		const struct tag *t = &tags[i];
		const char *v = t->val;
		size_t vn = t->vlen;
		const char *bad = NULL;
		dnsrec_show(shown, sizeof shown, v, vn);
		if (tag_is(t, "p", true)) {
			p_seen = true;
			p_ok = parse_policy(v, vn, &r.p) == 0;
		} else if (tag_is(t, "sp", true)) {
			r.sp_given = true;
			sp_ok = parse_policy(v, vn, &r.sp) == 0;
		} else if (tag_is(t, "adkim", true) || tag_is(t, "aspf", true)) {
			enum dmarc_align *a = tag_is(t, "adkim", true) ? &r.adkim : &r.aspf;
			if (val_is(v, vn, "r"))
				*a = DMARC_ALIGN_RELAXED;
			else if (val_is(v, vn, "s"))
				*a = DMARC_ALIGN_STRICT;
			else
				bad = "is neither r nor s: relaxed used";
		} else if (tag_is(t, "pct", true)) {
			if (digits_ok(v, vn, 3) && atoi(shown) <= 100)
				r.pct = atoi(shown);
			else
				bad = "is not a number from 0 to 100: 100 used";
		} else if (tag_is(t, "rua", true) || tag_is(t, "ruf", true)) {
			bool rua = tag_is(t, "rua", true);
			int ok = dmarc_uris(v, vn);
			if (ok <= 0)
				bad = "holds no valid URI";
			else if (rua)
				rua_ok = ok;
			dnsrec_show(rua ? r.rua : r.ruf, sizeof r.rua, v, vn);
		} else if (tag_is(t, "fo", true)) {
			const char *p = v, *end = v + vn, *e;
			size_t el;
			while (list_next(&p, end, ':', &e, &el))
				if (el != 1 || !strchr("01dsDS", e[0]))
					bad = "is not a list of 0, 1, d and s";
		} else if (tag_is(t, "rf", true)) {
			const char *p = v, *end = v + vn, *e;
			size_t el;
			while (list_next(&p, end, ':', &e, &el)) {
				bool ok = el > 0 && is_alpha(e[0]);
				for (size_t k = 0; ok && k < el; k++)
					ok = is_alpha(e[k]) || is_digit(e[k]) || e[k] == '-';
				if (!ok)
					bad = "is not a list of report formats";
			}
		} else if (tag_is(t, "ri", true)) {
			if (!digits_ok(v, vn, 32))
				bad = "is not a number of seconds";
		} else {
			char name[40];
			dnsrec_show(name, sizeof name, t->name, t->nlen);
			snprintf(msg, sizeof msg, "unknown tag %s ignored", name);
			note(r.notes, sizeof r.notes, msg);
		}
		if (bad) {
			char name[40];
			dnsrec_show(name, sizeof name, t->name, t->nlen);
			snprintf(msg, sizeof msg, "%s=%s %s", name, shown, bad);
			note(r.notes, sizeof r.notes, msg);
		}
	}
	if (!p_ok || !sp_ok) {
		/* RFC 7489 6.6.3 step 6: act as p=none when rua names somewhere to report to */
		const char *what = !p_seen ? "no p= tag" : !p_ok ? "invalid p= value" : "invalid sp= value";
		if (rua_ok <= 0) {
			problemf(problem, psize, "%s (and no rua= to fall back on)", what);
			return -1;
		}
		snprintf(msg, sizeof msg, "%s: treated as p=none because rua= is given", what);
		note(r.notes, sizeof r.notes, msg);
		r.p = DMARC_P_NONE;
		r.p_valid = false;
		r.sp = DMARC_P_NONE;
		r.sp_given = false;
	} else {
		r.p_valid = true;
		if (!r.sp_given)
			r.sp = r.p;
	}
	*out = r;
	return 0;
}

/* ---- DKIM keys ---- */

const char *dkim_key_type_name(enum dkim_key_type t)
{
	return t == DKIM_KEY_ED25519 ? "ed25519" : "rsa";
}

/* Base64 (RFC 4648 alphabet, '=' padding, whitespace anywhere skipped). Returns the decoded
 * length, or -1 for a bad character, bad padding or more than max bytes. */
static long b64_decode(const char *s, size_t n, unsigned char *out, size_t max)
{
	unsigned acc = 0;
	int bits = 0, pad = 0;
	size_t o = 0, chars = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int v;
		if (is_wsp(c))
			continue;
		if (c == '=') {
			pad++;
			chars++;
			continue;
		}
		if (pad)
			return -1; /* data after padding */
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else
			return -1;
		chars++;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= max)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (chars % 4 != 0 || pad > 2 || (pad && bits == 0) || acc != 0)
		return -1;
	return (long)o;
}

static int dkim_key_decode(struct dkim_key *k, const char *v, size_t vn, char *problem, size_t psize)
{
	unsigned char der[3072];
	long dn = b64_decode(v, vn, der, sizeof der);
	if (dn < 0) {
		problemf(problem, psize, "p= is not valid base64 (or longer than %zu bytes)", sizeof der);
		return -1;
	}
	if (k->type == DKIM_KEY_ED25519) {
		if (dn != 32) {
			problemf(problem, psize, "p= holds %ld bytes, an ed25519 key has 32", dn);
			return -1;
		}
		k->bits = 256;
		return 0;
	}
	const unsigned char *p = der;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, dn);
	if (pk && p != der + dn) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	if (!pk) { /* RFC 6376 3.6.1 also allows a bare RSAPublicKey */
		p = der;
		pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, dn);
		if (pk && p != der + dn) {
			EVP_PKEY_free(pk);
			pk = NULL;
		}
	}
	ERR_clear_error();
	if (!pk) {
		problemf(problem, psize, "p= does not hold a public key (%ld bytes of DER that do not parse)", dn);
		return -1;
	}
	int id = EVP_PKEY_get_base_id(pk);
	int bits = EVP_PKEY_get_bits(pk);
	EVP_PKEY_free(pk);
	if (id != EVP_PKEY_RSA) {
		problemf(problem, psize, "p= holds a %s key, k= says rsa", OBJ_nid2sn(id));
		return -1;
	}
	k->bits = bits;
	return 0;
}

int dkim_key_parse(const char *txt, size_t len, struct dkim_key *out, char *problem, size_t psize)
{
	struct tag tags[MAX_TAGS];
	struct dkim_key k;
	const struct tag *p = NULL;
	char shown[64];
	bool email = true;

	memset(out, 0, sizeof *out);
	memset(&k, 0, sizeof k);
	if (len > DNSREC_MAX_RECORD) {
		problemf(problem, psize, "record longer than %d bytes", DNSREC_MAX_RECORD);
		return -1;
	}
	int n = tags_split(txt, len, tags, true, NULL, 0, problem, psize);
	if (n < 0)
		return -1;
	if (n == 0) {
		problemf(problem, psize, "empty record");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const struct tag *t = &tags[i];
		const char *v = t->val;
		size_t vn = t->vlen;
		dnsrec_show(shown, sizeof shown, v, vn);
		if (tag_is(t, "v", false)) {
			if (i != 0) {
				problemf(problem, psize, "v= is not the first tag");
				return -1;
			}
			if (vn != 5 || memcmp(v, "DKIM1", 5) != 0) {
				problemf(problem, psize, "v=%s, want DKIM1", shown);
				return -1;
			}
		} else if (tag_is(t, "k", false)) {
			if (vn == 3 && memcmp(v, "rsa", 3) == 0)
				k.type = DKIM_KEY_RSA;
			else if (vn == 7 && memcmp(v, "ed25519", 7) == 0)
				k.type = DKIM_KEY_ED25519;
			else {
				problemf(problem, psize, "unknown key type k=%s", shown);
				return -1;
			}
		} else if (tag_is(t, "p", false)) {
			p = t;
		} else if (tag_is(t, "h", false)) {
			const char *q = v, *end = v + vn, *e;
			size_t el;
			bool sha1 = false, sha256 = false;
			while (list_next(&q, end, ':', &e, &el)) {
				sha1 |= el == 4 && memcmp(e, "sha1", 4) == 0;
				sha256 |= el == 6 && memcmp(e, "sha256", 6) == 0;
			}
			if (!sha256) {
				if (!sha1) {
					problemf(problem, psize, "h=%s names no known hash algorithm", shown);
					return -1;
				}
				k.sha1_only = true;
			}
		} else if (tag_is(t, "s", false)) {
			const char *q = v, *end = v + vn, *e;
			size_t el;
			email = false;
			while (list_next(&q, end, ':', &e, &el))
				email |= (el == 1 && e[0] == '*') || (el == 5 && memcmp(e, "email", 5) == 0);
		} else if (tag_is(t, "t", false)) {
			const char *q = v, *end = v + vn, *e;
			size_t el;
			while (list_next(&q, end, ':', &e, &el)) {
				k.testing |= el == 1 && e[0] == 'y';
				k.strict |= el == 1 && e[0] == 's';
			}
		} else if (!tag_is(t, "n", false)) {
			char name[40], msg[64];
			dnsrec_show(name, sizeof name, t->name, t->nlen);
			snprintf(msg, sizeof msg, "unknown tag %s ignored", name);
			note(k.notes, sizeof k.notes, msg);
		}
	}
	if (!email) {
		problemf(problem, psize, "service type s= excludes email");
		return -1;
	}
	if (!p) {
		problemf(problem, psize, "no p= tag (the public key)");
		return -1;
	}
	size_t nonspace = 0;
	for (size_t i = 0; i < p->vlen; i++)
		nonspace += !is_wsp(p->val[i]);
	if (nonspace == 0) {
		k.revoked = true;
	} else if (dkim_key_decode(&k, p->val, p->vlen, problem, psize) < 0) {
		return -1;
	}
	*out = k;
	return 0;
}

/* ---- DNSBL ---- */

void dnsbl_classify(const uint8_t (*addrs)[4], size_t n, struct dnsbl_answer *out)
{
	size_t o = 0;
	memset(out, 0, sizeof *out);
	out->verdict = DNSBL_NOT_LISTED;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *a = addrs[i];
		char ip[16];
		snprintf(ip, sizeof ip, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
		if (o + strlen(ip) + 2 < sizeof out->codes)
			o += (size_t)snprintf(out->codes + o, sizeof out->codes - o, "%s%s", o ? " " : "", ip);
		const char *why = NULL;
		if (a[0] != 127)
			why = "is outside 127.0.0.0/8: not a DNSBL answer (a wildcard or hijacked zone?)";
		else if (a[1] == 0 && a[2] == 0 && a[3] == 1)
			why = "is never a listing (RFC 5782 5): an error answer";
		else if (a[1] == 255 && a[2] == 255) {
			switch (a[3]) {
			case 252: why = "is an error code: typing error in the DNSBL name"; break;
			case 254: why = "is an error code: the list refuses queries through public resolvers"; break;
			case 255: why = "is an error code: excessive number of queries"; break;
			default: why = "is an error code of the list (127.255.255.0/24)"; break;
			}
		}
		if (why) {
			if (out->verdict != DNSBL_ERROR)
				snprintf(out->problem, sizeof out->problem, "%s %s", ip, why);
			out->verdict = DNSBL_ERROR;
		} else if (out->verdict == DNSBL_NOT_LISTED) {
			out->verdict = DNSBL_LISTED;
		}
	}
}

/* ---- names ---- */

int dnsrec_reverse_name(const char *ip, const char *suffix, char *out, size_t size)
{
	unsigned char a[16];
	char buf[DNSREC_MAX_NAME + 80];
	size_t o = 0;
	bool v4;

	if (!size)
		return -1;
	out[0] = '\0';
	if (!ip)
		return -1;
	if (inet_pton(AF_INET, ip, a) == 1) {
		v4 = true;
	} else if (inet_pton(AF_INET6, ip, a) == 1) {
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		v4 = memcmp(a, mapped, 12) == 0;
		if (v4)
			memmove(a, a + 12, 4);
	} else {
		return -1;
	}
	if (v4) {
		o = (size_t)snprintf(buf, sizeof buf, "%u.%u.%u.%u.", a[3], a[2], a[1], a[0]);
	} else {
		static const char hex[] = "0123456789abcdef";
		for (int i = 15; i >= 0; i--) {
			buf[o++] = hex[a[i] & 15];
			buf[o++] = '.';
			buf[o++] = hex[a[i] >> 4];
			buf[o++] = '.';
		}
	}
	if (!suffix)
		suffix = v4 ? "in-addr.arpa" : "ip6.arpa";
	size_t sl = strlen(suffix);
	if (sl && suffix[sl - 1] == '.')
		sl--;
	if (!sl || sl > DNSREC_MAX_NAME || suffix[0] == '.')
		return -1;
	if (o + sl > DNSREC_MAX_NAME || o + sl + 1 > size)
		return -1;
	memcpy(out, buf, o);
	memcpy(out + o, suffix, sl);
	out[o + sl] = '\0';
	return 0;
}

/* A domain in lower case without its trailing dot; -1 for an empty label or one too long. */
static int domain_copy(const char *d, size_t n, char *out, size_t size)
{
	if (n && d[n - 1] == '.')
		n--;
	if (!n || n > DNSREC_MAX_NAME || n + 1 > size)
		return -1;
	for (size_t i = 0, label = 0; i < n; i++) {
		char c = d[i];
		label = c == '.' ? 0 : label + 1;
		if ((c == '.' && (i == 0 || d[i - 1] == '.' || i + 1 == n)) || label > 63)
			return -1;
		out[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	out[n] = '\0';
	return 0;
}

int dnsrec_address_domain(const char *address, char *out, size_t size)
{
	const char *at = address ? strrchr(address, '@') : NULL;
	if (size)
		out[0] = '\0';
	if (!at)
		return -1;
	return domain_copy(at + 1, strlen(at + 1), out, size);
}

int dnsrec_org_domain(const struct psl_ctx_st *psl, const char *domain, char *out, size_t size)
{
	char low[DNSREC_MAX_NAME + 1];
	if (size)
		out[0] = '\0';
	if (!domain || domain_copy(domain, strlen(domain), low, sizeof low) < 0)
		return -1;
	const char *reg = psl ? psl_registrable_domain(psl, low) : NULL;
	const char *use = reg ? reg : low;
	if (strlen(use) + 1 > size)
		return -1;
	memcpy(out, use, strlen(use) + 1);
	return 0;
}

bool dnsrec_aligned(const struct psl_ctx_st *psl, const char *a, const char *b, enum dmarc_align mode)
{
	char x[DNSREC_MAX_NAME + 1], y[DNSREC_MAX_NAME + 1];
	if (mode == DMARC_ALIGN_STRICT) {
		if (!a || !b || domain_copy(a, strlen(a), x, sizeof x) < 0 || domain_copy(b, strlen(b), y, sizeof y) < 0)
			return false;
	} else if (dnsrec_org_domain(psl, a, x, sizeof x) < 0 || dnsrec_org_domain(psl, b, y, sizeof y) < 0) {
		return false;
	}
	return strcmp(x, y) == 0;
}
