#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strbuf.h"
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

char *read_all(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct strbuf sb;
	char buf[65536];
	sb_init(&sb);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			sb_fini(&sb);
			errno = e;
			return NULL;
		}
		if (n == 0)
			break;
		sb_appendn(&sb, buf, (size_t)n);
	}
	close(fd);
	*len = sb.len;
	char *t = sb_steal(&sb);
	sb_fini(&sb);
	return t;
}
