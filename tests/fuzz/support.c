#include "support.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fuzz_fail(const char *what, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz invariant violated: %s (%s:%d)\n  ", what, file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	abort();
}

const char *fuzz_memmem(const char *hay, size_t hn, const char *needle, size_t nn)
{
	if (nn == 0)
		return hay;
	for (size_t i = 0; i + nn <= hn; i++)
		if (hay[i] == needle[0] && memcmp(hay + i, needle, nn) == 0)
			return hay + i;
	return NULL;
}

size_t jc_utf8_len(const unsigned char *p, size_t n)
{
	/* Well-formed byte sequences, Unicode table 3-7: lead byte range, then the range of the
	 * second byte; later bytes are always 80..BF. */
	static const struct {
		unsigned char lo, hi, lo2, hi2, len;
	} t[] = {
		{ 0xC2, 0xDF, 0x80, 0xBF, 2 }, { 0xE0, 0xE0, 0xA0, 0xBF, 3 }, { 0xE1, 0xEC, 0x80, 0xBF, 3 },
		{ 0xED, 0xED, 0x80, 0x9F, 3 }, { 0xEE, 0xEF, 0x80, 0xBF, 3 }, { 0xF0, 0xF0, 0x90, 0xBF, 4 },
		{ 0xF1, 0xF3, 0x80, 0xBF, 4 }, { 0xF4, 0xF4, 0x80, 0x8F, 4 },
	};
	if (n == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (p[0] < t[i].lo || p[0] > t[i].hi)
			continue;
		if (n < t[i].len || p[1] < t[i].lo2 || p[1] > t[i].hi2)
			return 0;
		for (size_t k = 2; k < t[i].len; k++)
			if (p[k] < 0x80 || p[k] > 0xBF)
				return 0;
		return t[i].len;
	}
	return 0;
}

/* ---- a small recursive-descent JSON checker ---- */

struct jc {
	const unsigned char *p, *end;
	int depth;
	char *out; /* decoded string, when wanted */
	size_t outlen, outcap;
};

static void jc_put(struct jc *j, const unsigned char *b, size_t n)
{
	if (!j->out && j->outcap == 0)
		return;
	if (j->outlen + n + 1 > j->outcap) {
		while (j->outlen + n + 1 > j->outcap)
			j->outcap *= 2;
		j->out = realloc(j->out, j->outcap);
		if (!j->out)
			abort();
	}
	memcpy(j->out + j->outlen, b, n);
	j->outlen += n;
	j->out[j->outlen] = '\0';
}

static void jc_ws(struct jc *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool jc_hex4(struct jc *j, unsigned *v)
{
	*v = 0;
	if (j->end - j->p < 4)
		return false;
	for (int i = 0; i < 4; i++) {
		int h = hexval(j->p[i]);
		if (h < 0)
			return false;
		*v = (*v << 4) | (unsigned)h;
	}
	j->p += 4;
	return true;
}

static void jc_put_cp(struct jc *j, unsigned cp)
{
	unsigned char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xC0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xE0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xF0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		b[3] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	jc_put(j, b, n);
}

static bool jc_str(struct jc *j)
{
	if (j->p >= j->end || *j->p != '"')
		return false;
	j->p++;
	while (j->p < j->end) {
		unsigned char c = *j->p;
		if (c == '"') {
			j->p++;
			return true;
		}
		if (c < 0x20)
			return false; /* raw control characters are not allowed */
		if (c == '\\') {
			if (j->end - j->p < 2)
				return false;
			unsigned char e = j->p[1];
			const char *simple = "\"\\/bfnrt";
			const char *map = "\"\\/\b\f\n\r\t";
			const char *hit = e ? strchr(simple, e) : NULL;
			j->p += 2;
			if (hit) {
				unsigned char d = (unsigned char)map[hit - simple];
				jc_put(j, &d, 1);
				continue;
			}
			if (e != 'u')
				return false;
			unsigned cp, lo;
			if (!jc_hex4(j, &cp))
				return false;
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return false; /* lone low surrogate */
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u')
					return false;
				j->p += 2;
				if (!jc_hex4(j, &lo) || lo < 0xDC00 || lo > 0xDFFF)
					return false;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			}
			jc_put_cp(j, cp);
			continue;
		}
		size_t l = jc_utf8_len(j->p, (size_t)(j->end - j->p));
		if (l == 0)
			return false;
		jc_put(j, j->p, l);
		j->p += l;
	}
	return false; /* unterminated */
}

static bool jc_digits(struct jc *j)
{
	const unsigned char *s = j->p;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > s;
}

static bool jc_number(struct jc *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (!jc_digits(j))
		return false;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!jc_digits(j))
			return false;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!jc_digits(j))
			return false;
	}
	return true;
}

static bool jc_lit(struct jc *j, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
		return false;
	j->p += n;
	return true;
}

static bool jc_value(struct jc *j)
{
	jc_ws(j);
	if (j->p >= j->end)
		return false;
	switch (*j->p) {
	case '"':
		return jc_str(j);
	case 't':
		return jc_lit(j, "true");
	case 'f':
		return jc_lit(j, "false");
	case 'n':
		return jc_lit(j, "null");
	case '{':
	case '[': {
		bool obj = *j->p == '{';
		char close = obj ? '}' : ']';
		if (++j->depth > 64)
			return false;
		j->p++;
		jc_ws(j);
		if (j->p < j->end && *j->p == close) {
			j->p++;
			j->depth--;
			return true;
		}
		for (;;) {
			if (obj) {
				jc_ws(j);
				if (!jc_str(j))
					return false;
				jc_ws(j);
				if (j->p >= j->end || *j->p != ':')
					return false;
				j->p++;
			}
			if (!jc_value(j))
				return false;
			jc_ws(j);
			if (j->p >= j->end)
				return false;
			if (*j->p == ',') {
				j->p++;
				continue;
			}
			if (*j->p != close)
				return false;
			j->p++;
			j->depth--;
			return true;
		}
	}
	default:
		return jc_number(j);
	}
}

bool jc_string(const char *s, size_t n, char **out, size_t *outlen)
{
	struct jc j = { .p = (const unsigned char *)s, .end = (const unsigned char *)s + n };
	if (out) {
		j.outcap = 64;
		j.out = malloc(j.outcap);
		if (!j.out)
			abort();
		j.out[0] = '\0';
	}
	bool ok = jc_str(&j) && j.p == j.end;
	if (out && ok) {
		*out = j.out;
		*outlen = j.outlen;
	} else {
		free(j.out);
	}
	return ok;
}

bool jc_document(const char *s, size_t n)
{
	struct jc j = { .p = (const unsigned char *)s, .end = (const unsigned char *)s + n };
	if (!jc_value(&j))
		return false;
	jc_ws(&j);
	return j.p == j.end;
}
