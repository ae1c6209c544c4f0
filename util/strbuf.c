#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void sb_init(struct strbuf *sb)
{
	sb->cap = 64;
	sb->len = 0;
	sb->s = xmalloc(sb->cap);
	sb->s[0] = '\0';
}

void sb_fini(struct strbuf *sb)
{
	free(sb->s);
	sb->s = NULL;
	sb->len = sb->cap = 0;
}

void sb_reset(struct strbuf *sb)
{
	sb->len = 0;
	if (sb->s)
		sb->s[0] = '\0';
}

static void sb_reserve(struct strbuf *sb, size_t extra)
{
	if (sb->len + extra + 1 <= sb->cap)
		return;
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < sb->len + extra + 1)
		cap *= 2;
	sb->s = xrealloc(sb->s, cap);
	sb->cap = cap;
}

void sb_appendn(struct strbuf *sb, const char *s, size_t n)
{
	sb_reserve(sb, n);
	memcpy(sb->s + sb->len, s, n);
	sb->len += n;
	sb->s[sb->len] = '\0';
}

void sb_append(struct strbuf *sb, const char *s) { sb_appendn(sb, s, strlen(s)); }

void sb_appendc(struct strbuf *sb, char c) { sb_appendn(sb, &c, 1); }

void sb_vappendf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list ap2;
	if (!sb->s)
		sb_reserve(sb, 0);
	va_copy(ap2, ap);
	int n = vsnprintf(sb->s + sb->len, sb->cap - sb->len, fmt, ap);
	if (n >= 0 && (size_t)n >= sb->cap - sb->len) {
		sb_reserve(sb, (size_t)n);
		vsnprintf(sb->s + sb->len, sb->cap - sb->len, fmt, ap2);
	}
	va_end(ap2);
	if (n > 0)
		sb->len += (size_t)n;
}

void sb_appendf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_vappendf(sb, fmt, ap);
	va_end(ap);
}

char *sb_steal(struct strbuf *sb)
{
	char *s = sb->s ? sb->s : xstrdup("");
	sb->s = NULL;
	sb->len = sb->cap = 0;
	return s;
}
