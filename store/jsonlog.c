#include "jsonlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

static int mkdir_p(const char *dir, mode_t mode)
{
	char *d = xstrdup(dir);
	for (char *p = d + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(d, mode) < 0 && errno != EEXIST) {
			free(d);
			return -1;
		}
		*p = '/';
	}
	int rc = mkdir(d, mode) < 0 && errno != EEXIST ? -1 : 0;
	free(d);
	return rc;
}

int jsonlog_append(const char *state_dir, const char *line, char **err)
{
	if (mkdir_p(state_dir, 0750) < 0) {
		*err = xasprintf("cannot create %s: %s", state_dir, strerror(errno));
		return -1;
	}
	char *path = xasprintf("%s/results.jsonl", state_dir);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		*err = xasprintf("cannot open %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	size_t len = strlen(line);
	char *buf = xmalloc(len + 1);
	memcpy(buf, line, len);
	buf[len] = '\n';
	ssize_t n = write(fd, buf, len + 1);
	int saved = errno;
	free(buf);
	close(fd);
	if (n != (ssize_t)(len + 1)) {
		*err = xasprintf("cannot write %s: %s", path, n < 0 ? strerror(saved) : "short write");
		free(path);
		return -1;
	}
	free(path);
	return 0;
}
