#include "reply.h"

#include <string.h>

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

size_t reply_enhanced_code(const char *s, size_t len, char *buf, size_t bufsz)
{
	size_t i = 0;
	if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (i < len && is_digit(s[i]) && i - start < 4)
			i++;
		size_t n = i - start;
		if (n < 1 || n > 3)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
		return 0;
	if (i + 1 > bufsz)
		return 0;
	memcpy(buf, s, i);
	buf[i] = '\0';
	return i;
}

int reply_parse_line(const char *line, size_t len, struct reply_line *out)
{
	memset(out, 0, sizeof *out);
	out->text = "";
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]))
		return -1;
	if (line[0] < '1' || line[0] > '5')
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	out->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	out->more = len > 3 && line[3] == '-';
	const char *t = len > 4 ? line + 4 : line + len;
	size_t tl = len > 4 ? len - 4 : 0;
	size_t el = reply_enhanced_code(t, tl, out->enhanced, sizeof out->enhanced);
	/* The enhanced code's class must match the reply's class (RFC 3463 section 2). */
	if (el && out->enhanced[0] != line[0]) {
		out->enhanced[0] = '\0';
		el = 0;
	}
	if (el) {
		t += el;
		tl -= el;
		while (tl > 0 && (*t == ' ' || *t == '\t')) {
			t++;
			tl--;
		}
	}
	out->text = t;
	out->text_len = tl;
	return 0;
}
