#include "jsonlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "xalloc.h"

/* Shifts results.jsonl.N up by one (the one at keep is removed), then results.jsonl to .1.
 * Returns 0, or -1 with *err (owned). */
static int rotate(const char *path, int keep, char **err)
{
	char *from = NULL, *to = xasprintf("%s.%d", path, keep);
	if (unlink(to) < 0 && errno != ENOENT) {
		*err = xasprintf("cannot remove %s: %s", to, strerror(errno));
		free(to);
		return -1;
	}
	for (int i = keep - 1; i >= 0; i--) {
		from = i ? xasprintf("%s.%d", path, i) : xstrdup(path);
		if (rename(from, to) < 0 && errno != ENOENT) {
			*err = xasprintf("cannot rename %s to %s: %s", from, to, strerror(errno));
			free(from);
			free(to);
			return -1;
		}
		free(to);
		to = from;
	}
	free(to);
	return 0;
}

static bool rotation_due(const struct jsonlog_rotate *rot, const struct stat *st, size_t add)
{
	if (st->st_size == 0)
		return false;
	if (rot->max_bytes > 0 && (long long)st->st_size + (long long)add > rot->max_bytes)
		return true;
	if (rot->daily) {
		time_t now = time(NULL);
		if (st->st_mtime / 86400 < now / 86400)
			return true;
	}
	return false;
}

static int open_log(const char *state_dir, const char *path, char **err)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0 && errno == ENOENT) { /* the state directory first, only when it is missing */
		if (mkdir_p(state_dir, 0750) < 0) {
			*err = xasprintf("cannot create %s: %s", state_dir, strerror(errno));
			return -1;
		}
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	}
	if (fd < 0)
		*err = xasprintf("cannot open %s: %s", path, strerror(errno));
	return fd;
}

int jsonlog_append(const char *state_dir, const struct jsonlog_rotate *rot, const char *line, char **err,
		   char **rotate_err)
{
	char *path = xasprintf("%s/results.jsonl", state_dir);
	int fd = open_log(state_dir, path, err);
	if (fd < 0) {
		free(path);
		return -1;
	}
	size_t len = strlen(line);
	struct stat st;
	if (rot && (rot->max_bytes > 0 || rot->daily) && fstat(fd, &st) == 0 && rotation_due(rot, &st, len + 1)) {
		char *rerr = NULL;
		if (rotate(path, rot->keep > 0 ? rot->keep : 1, &rerr) == 0) {
			close(fd);
			fd = open_log(state_dir, path, err);
			if (fd < 0) {
				free(path);
				return -1;
			}
		} else if (rotate_err) {
			*rotate_err = rerr;
		} else {
			free(rerr);
		}
	}
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

/* Whether the last `want` bytes of path hold the final line of probe_id. *size: the file's size
 * (0 when missing). */
static bool tail_contains(const char *path, const char *probe_id, size_t want, off_t *size)
{
	*size = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct stat st;
	if (fstat(fd, &st) == 0)
		*size = st.st_size;
	off_t off = *size > (off_t)want ? *size - (off_t)want : 0;
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

bool jsonlog_contains(const char *state_dir, const char *probe_id)
{
	size_t want = 1u << 20;
	off_t size;
	char *path = xasprintf("%s/results.jsonl", state_dir);
	bool found = tail_contains(path, probe_id, want, &size);
	if (!found && size < (off_t)want) {
		/* rotated since: the rest of the last MiB is at the end of results.jsonl.1 */
		char *older = xasprintf("%s.1", path);
		off_t osize;
		found = tail_contains(older, probe_id, want - (size_t)size, &osize);
		free(older);
	}
	free(path);
	return found;
}
