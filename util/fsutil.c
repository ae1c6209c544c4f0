#include "fsutil.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "xalloc.h"

int mkdir_p(const char *dir, mode_t mode)
{
	if (!*dir) {
		errno = ENOENT;
		return -1;
	}
	char *d = xstrdup(dir);
	for (char *p = d + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(d, mode) < 0 && errno != EEXIST) {
			int e = errno;
			free(d);
			errno = e;
			return -1;
		}
		*p = '/';
	}
	int rc = mkdir(d, mode) < 0 && errno != EEXIST ? -1 : 0;
	int e = errno;
	free(d);
	errno = e;
	return rc;
}
