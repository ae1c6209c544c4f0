#include "jsonlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "xalloc.h"

int jsonlog_append(const char *state_dir, const char *line, char **err)
{
	char *path = xasprintf("%s/results.jsonl", state_dir);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0 && errno == ENOENT) { /* the state directory first, only when it is missing */
		if (mkdir_p(state_dir, 0750) < 0) {
			*err = xasprintf("cannot create %s: %s", state_dir, strerror(errno));
			free(path);
			return -1;
		}
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	}
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

bool jsonlog_contains(const char *state_dir, const char *probe_id)
{
	char *path = xasprintf("%s/results.jsonl", state_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return false;
	struct stat st;
	size_t want = 1u << 20;
	off_t off = fstat(fd, &st) == 0 && st.st_size > (off_t)want ? st.st_size - (off_t)want : 0;
	char *buf = xmalloc(want + 1);
	ssize_t n = pread(fd, buf, want, off);
	close(fd);
	bool found = false;
	if (n > 0) {
		buf[n] = '\0';
		char *needle = xasprintf("\"probe_id\":\"%s\"", probe_id);
		for (char *line = buf, *nl; line && *line && !found; line = nl ? nl + 1 : NULL) {
			nl = strchr(line, '\n');
			if (nl)
				*nl = '\0';
			found = strstr(line, needle) && strstr(line, "\"final\":true");
		}
		free(needle);
	}
	free(buf);
	return found;
}
