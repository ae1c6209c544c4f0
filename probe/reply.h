/* SMTP reply lines (RFC 5321 4.2) and enhanced status codes (RFC 3463). Pure parsing. */
#ifndef MON_PROBE_REPLY_H
#define MON_PROBE_REPLY_H

#include <stdbool.h>
#include <stddef.h>

struct reply_line {
	int code;           /* 100..599, or 0 when the line is not a reply line */
	bool more;          /* "ddd-": more lines follow */
	char enhanced[16];  /* "4.3.2" when the text starts with one matching the code's class; else "" */
	const char *text;   /* borrowed: points into the parsed line, after code (and enhanced code) */
	size_t text_len;    /* without the trailing CR LF */
};

/* Parses one reply line (CRLF optional). Returns 0, or -1 when the line is not "ddd[ -]text"
 * (out->code is then 0). A bare "ddd" is accepted. */
int reply_parse_line(const char *line, size_t len, struct reply_line *out);

/* Finds an RFC 3463 enhanced status code "c.sss.ddd" at the start of s (c in 2,4,5; 1-3 digits
 * subject, 1-3 digits detail) followed by space or end. Copies it into buf (>= 16 bytes) and
 * returns its length, or returns 0. */
size_t reply_enhanced_code(const char *s, size_t len, char *buf, size_t bufsz);

/* A retry-after hint in a deferral's text, as greylisting servers give it: "try again in 300
 * seconds", "retry after 5 minutes", "Greylisted for 60s", "please wait 2 min". Looks for a
 * whole number with a time unit (s, sec, secs, second(s), m, min, mins, minute(s), h, hrs,
 * hour(s)) standing alone (no letter or digit right after it: "ref 4m2Tq9" is no time) after
 * one of the words try, retry, again, wait, greylisted, graylisted, later, in, after, for within
 * the same sentence. Returns the seconds (capped at one day), or -1 when there is no such hint. */
long reply_retry_hint(const char *text);

#endif
