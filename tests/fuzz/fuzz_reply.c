/* Fuzz target: SMTP reply lines (reply_parse_line) and RFC 3463 enhanced status codes
 * (reply_enhanced_code), the first code to see what a remote server sends.
 *
 * Input: byte 0 is the buffer size handed to reply_enhanced_code (0..31); the rest is the line.
 * Both functions are compared with a reference written here from reply.h and RFC 3463, so a
 * wrong answer fails as surely as a crash does. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "support.h"

static bool digit(char c) { return c >= '0' && c <= '9'; }

/* Reference: length of "c.sss.ddd" at the start of s, followed by end or blank, or 0. */
static size_t ref_enhanced(const char *s, size_t len)
{
	size_t i = 0, n;

	if (len < 1 || (s[0] != '2' && s[0] != '4' && s[0] != '5'))
		return 0;
	if (len < 2 || s[1] != '.')
		return 0;
	i = 2;
	for (n = 0; i < len && digit(s[i]); i++, n++)
		;
	if (n < 1 || n > 3 || i >= len || s[i] != '.')
		return 0;
	i++;
	for (n = 0; i < len && digit(s[i]); i++, n++)
		;
	if (n < 1 || n > 3)
		return 0;
	if (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
		return 0;
	return i;
}

static void check_enhanced(const char *s, size_t len, size_t bufsz)
{
	/* An exactly sized heap buffer, so that writing past bufsz is an ASan report. */
	char *buf = malloc(bufsz ? bufsz : 1);
	size_t want = ref_enhanced(s, len);
	if (want + 1 > bufsz)
		want = 0;
	size_t got = reply_enhanced_code(s, len, buf, bufsz);
	FUZZ_CHECK(got == want, "reply_enhanced_code(\"%.*s\", bufsz %zu) = %zu, want %zu", (int)len, s,
		   bufsz, got, want);
	if (got) {
		FUZZ_CHECK(buf[got] == '\0' && memcmp(buf, s, got) == 0, "copied code differs");
		FUZZ_CHECK(got >= 5 && got <= 9, "code length %zu", got);
	}
	free(buf);
}

static void check_line(const char *line, size_t len)
{
	struct reply_line rl;
	size_t l = len;
	int rc = reply_parse_line(line, len, &rl);

	FUZZ_CHECK(rl.text != NULL, "text is NULL");
	FUZZ_CHECK(memchr(rl.enhanced, '\0', sizeof rl.enhanced) != NULL, "enhanced not terminated");

	while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == '\n'))
		l--;
	bool want_ok = l >= 3 && line[0] >= '1' && line[0] <= '5' && digit(line[1]) && digit(line[2]) &&
		       (l == 3 || line[3] == ' ' || line[3] == '-');
	if (!want_ok) {
		FUZZ_CHECK(rc == -1 && rl.code == 0 && rl.text_len == 0 && rl.enhanced[0] == '\0',
			   "\"%.*s\": accepted (rc %d, code %d)", (int)len, line, rc, rl.code);
		return;
	}
	int want_code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	FUZZ_CHECK(rc == 0 && rl.code == want_code, "\"%.*s\": rc %d code %d, want 0 and %d", (int)len,
		   line, rc, rl.code, want_code);
	FUZZ_CHECK(rl.code >= 100 && rl.code <= 599, "code %d out of range", rl.code);
	FUZZ_CHECK(rl.more == (l > 3 && line[3] == '-'), "more flag wrong");

	const char *t = l > 4 ? line + 4 : line + l;
	size_t tl = l > 4 ? l - 4 : 0;
	size_t el = ref_enhanced(t, tl);
	if (el && t[0] != line[0])
		el = 0; /* the class must match the reply's (RFC 3463 section 2) */
	FUZZ_CHECK(strlen(rl.enhanced) == el && memcmp(rl.enhanced, t, el) == 0,
		   "\"%.*s\": enhanced \"%s\", want \"%.*s\"", (int)len, line, rl.enhanced, (int)el, t);
	if (el) {
		t += el;
		tl -= el;
		while (tl && (*t == ' ' || *t == '\t')) {
			t++;
			tl--;
		}
	}
	FUZZ_CHECK(rl.text == t && rl.text_len == tl, "\"%.*s\": text at +%td len %zu, want +%td len %zu",
		   (int)len, line, rl.text - line, rl.text_len, t - line, tl);
	/* The text never carries the line ending. */
	FUZZ_CHECK(tl == 0 || (t[tl - 1] != '\r' && t[tl - 1] != '\n'), "text ends in CR/LF");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t bufsz = data[0] % 32;
	size_t len = size - 1;
	/* A copy of exactly len bytes: reading past the line is an ASan report, not luck. */
	char *line = malloc(len ? len : 1);
	if (len)
		memcpy(line, data + 1, len);

	check_line(line, len);
	check_enhanced(line, len, bufsz);
	check_enhanced(line, len, 16); /* what reply_parse_line passes */
	/* Also right after "ddd ", as reply_parse_line calls it. */
	if (len > 4)
		check_enhanced(line + 4, len - 4, bufsz);

	free(line);
	return 0;
}
