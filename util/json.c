#include "json.h"

#include <math.h>
#include <string.h>

void json_init(struct json *j, struct strbuf *out)
{
	memset(j, 0, sizeof *j);
	j->out = out;
}

static void json_sep(struct json *j)
{
	if (j->need_comma[j->depth])
		sb_appendc(j->out, ',');
	j->need_comma[j->depth] = true;
}

static void json_open(struct json *j, char c)
{
	json_sep(j);
	sb_appendc(j->out, c);
	if (j->depth < 31)
		j->depth++;
	j->need_comma[j->depth] = false;
}

static void json_close(struct json *j, char c)
{
	if (j->depth > 0)
		j->depth--;
	sb_appendc(j->out, c);
}

void json_obj_begin(struct json *j) { json_open(j, '{'); }
void json_obj_end(struct json *j) { json_close(j, '}'); }
void json_arr_begin(struct json *j) { json_open(j, '['); }
void json_arr_end(struct json *j) { json_close(j, ']'); }

void json_raw(struct json *j, const char *json)
{
	json_sep(j);
	sb_append(j->out, json);
}

void json_key(struct json *j, const char *key)
{
	json_sep(j);
	json_escape(j->out, key, strlen(key));
	sb_appendc(j->out, ':');
	j->need_comma[j->depth] = false; /* the value follows without a comma */
}

/* Length of a valid UTF-8 sequence at p (max n bytes), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned min;
	unsigned cp;
	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xE0) == 0xC0) { len = 2; min = 0x80; cp = p[0] & 0x1F; }
	else if ((p[0] & 0xF0) == 0xE0) { len = 3; min = 0x800; cp = p[0] & 0x0F; }
	else if ((p[0] & 0xF8) == 0xF0) { len = 4; min = 0x10000; cp = p[0] & 0x07; }
	else return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

void json_escape(struct strbuf *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	sb_appendc(out, '"');
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			sb_appendc(out, '\\');
			sb_appendc(out, (char)c);
			i++;
		} else if (c == '\n') { sb_append(out, "\\n"); i++; }
		else if (c == '\r') { sb_append(out, "\\r"); i++; }
		else if (c == '\t') { sb_append(out, "\\t"); i++; }
		else if (c < 0x20 || c == 0x7f) {
			char u[7] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0 };
			sb_append(out, u);
			i++;
		} else if (c < 0x80) {
			sb_appendc(out, (char)c);
			i++;
		} else {
			size_t l = utf8_len(p + i, n - i);
			if (l == 0) {
				sb_append(out, "\\ufffd");
				i++;
			} else {
				sb_appendn(out, s + i, l);
				i += l;
			}
		}
	}
	sb_appendc(out, '"');
}

void json_strn(struct json *j, const char *s, size_t n)
{
	json_sep(j);
	json_escape(j->out, s, n);
}

void json_str(struct json *j, const char *s)
{
	if (!s) {
		json_null(j);
		return;
	}
	json_strn(j, s, strlen(s));
}

void json_int(struct json *j, int64_t v)
{
	json_sep(j);
	sb_appendf(j->out, "%lld", (long long)v);
}

void json_double(struct json *j, double v, int decimals)
{
	json_sep(j);
	if (!isfinite(v))
		sb_append(j->out, "null");
	else
		sb_appendf(j->out, "%.*f", decimals, v);
}

void json_bool(struct json *j, bool v)
{
	json_sep(j);
	sb_append(j->out, v ? "true" : "false");
}

void json_null(struct json *j)
{
	json_sep(j);
	sb_append(j->out, "null");
}

void json_kstr(struct json *j, const char *key, const char *s) { json_key(j, key); json_str(j, s); }
void json_kint(struct json *j, const char *key, int64_t v) { json_key(j, key); json_int(j, v); }
void json_kdouble(struct json *j, const char *key, double v, int d) { json_key(j, key); json_double(j, v, d); }
void json_kbool(struct json *j, const char *key, bool v) { json_key(j, key); json_bool(j, v); }
