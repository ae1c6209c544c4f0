/* Small file-system helpers. */
#ifndef MON_UTIL_FSUTIL_H
#define MON_UTIL_FSUTIL_H

#include <sys/types.h>

/* Creates dir and its missing parents with mode (like mkdir -p). Returns 0, or -1 (errno set). */
int mkdir_p(const char *dir, mode_t mode);

#endif
