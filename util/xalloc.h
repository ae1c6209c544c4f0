/* Allocation that aborts on exhaustion (Postfix mymalloc): callers never check for NULL. */
#ifndef MON_UTIL_XALLOC_H
#define MON_UTIL_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);                 /* returns owned */
void *xcalloc(size_t nmemb, size_t size); /* returns owned, zeroed */
void *xrealloc(void *p, size_t n);       /* takes p, returns owned */
char *xstrdup(const char *s);            /* returns owned; xstrdup(NULL) is NULL */
char *xstrndup(const char *s, size_t n); /* returns owned */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* returns owned */

#endif
