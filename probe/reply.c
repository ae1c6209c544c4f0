#include "reply.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static bool word_at(const char *s, size_t i, const char *w)
{
	size_t n = strlen(w);
	if (i > 0 && isalnum((unsigned char)s[i - 1]))
		return false;
	/* A letter or digit right after it makes it part of a longer token ("4m2Tq9", "s3"). */
	return strncasecmp(s + i, w, n) == 0 && !isalnum((unsigned char)s[i + n]);
}

/* Seconds per unit for the word at s, or 0 when it is no time unit. */
static long unit_seconds(const char *s)
{
	static const struct {
		const char *w;
		long secs;
	} units[] = {
		{ "seconds", 1 }, { "second", 1 }, { "secs", 1 }, { "sec", 1 }, { "s", 1 },
		{ "minutes", 60 }, { "minute", 60 }, { "mins", 60 }, { "min", 60 }, { "m", 60 },
		{ "hours", 3600 }, { "hour", 3600 }, { "hrs", 3600 }, { "h", 3600 },
	};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (word_at(s, 0, units[i].w))
			return units[i].secs;
	return 0;
}

long reply_retry_hint(const char *text)
{
	static const char *const cues[] = { "try", "retry", "again", "wait", "greylisted", "graylisted", "later",
					    "in", "after", "for" };
	if (!text)
		return -1;
	size_t cue_end = 0; /* just after the last cue word seen in this sentence; 0 none */
	for (size_t i = 0; text[i]; i++) {
		char c = text[i];
		if (c == '.' && !isdigit((unsigned char)text[i + 1])) {
			cue_end = 0;
			continue;
		}
		if (isalpha((unsigned char)c) && (i == 0 || !isalpha((unsigned char)text[i - 1]))) {
			for (size_t k = 0; k < sizeof cues / sizeof cues[0]; k++)
				if (word_at(text, i, cues[k]))
					cue_end = i + strlen(cues[k]);
			continue;
		}
		if (!isdigit((unsigned char)c) || (i > 0 && (isalnum((unsigned char)text[i - 1]) || text[i - 1] == '.')))
			continue;
		if (!cue_end)
			continue;
		char *end;
		long v = strtol(text + i, &end, 10);
		if (end - (text + i) > 6) { /* no time is written with 7 digits: an id or a date */
			i = (size_t)(end - text) - 1;
			continue;
		}
		const char *u = end;
		while (*u == ' ')
			u++;
		long mult = unit_seconds(u);
		if (mult) {
			long s = v * mult;
			return s > 86400 ? 86400 : s;
		}
		i = (size_t)(end - text) - 1;
	}
	return -1;
}
