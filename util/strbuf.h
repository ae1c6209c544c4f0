/* Growable NUL-terminated byte buffer. */
#ifndef MON_UTIL_STRBUF_H
#define MON_UTIL_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	char *s;    /* always NUL-terminated once initialised */
	size_t len;
	size_t cap;
};

void sb_init(struct strbuf *sb);
void sb_fini(struct strbuf *sb);
void sb_reset(struct strbuf *sb);
void sb_append(struct strbuf *sb, const char *s);
void sb_appendn(struct strbuf *sb, const char *s, size_t n);
void sb_appendc(struct strbuf *sb, char c);
void sb_appendf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vappendf(struct strbuf *sb, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
char *sb_steal(struct strbuf *sb); /* returns owned string; sb is left empty (appends re-grow it) */

#endif
