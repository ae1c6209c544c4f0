/* Small file-system helpers. */
#ifndef MON_UTIL_FSUTIL_H
#define MON_UTIL_FSUTIL_H

#include <sys/types.h>

/* Creates dir and its missing parents with mode (like mkdir -p). Returns 0, or -1 (errno set). */
int mkdir_p(const char *dir, mode_t mode);

/* Reads all of path. Returns it owned and NUL-terminated (*len: its length, NUL bytes included),
 * or NULL with errno set. */
char *read_all(const char *path, size_t *len);

#endif
