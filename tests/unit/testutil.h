/* Helpers shared by the unit tests (cmocka): formatted strings and scratch directories.
 * Include after <cmocka.h>. static inline: a test that uses none of them gets no warning. */
#ifndef MON_TESTS_UNIT_TESTUTIL_H
#define MON_TESTS_UNIT_TESTUTIL_H

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Returns an owned formatted string. */
static inline char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static inline char *fmt(const char *f, ...)
{
	va_list ap;
	char *s = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&s, &n);

	assert_non_null(fp);
	va_start(ap, f);
	vfprintf(fp, f, ap);
	va_end(ap);
	fclose(fp);
	return s;
}

/* Returns the owned contents of path (NUL-terminated; *len its length when len is not NULL),
 * or NULL when it cannot be opened. */
static inline char *slurp_opt(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0;
	int c;

	if (len)
		*len = 0;
	if (!fp)
		return NULL;
	FILE *out = open_memstream(&buf, &n);
	assert_non_null(out);
	while ((c = fgetc(fp)) != EOF)
		fputc(c, out);
	fclose(out);
	fclose(fp);
	if (len)
		*len = n;
	return buf;
}

/* slurp_opt() of a file that must exist: a failed test otherwise. */
static inline char *slurp(const char *path, size_t *len)
{
	char *buf = slurp_opt(path, len);
	if (!buf)
		fail_msg("%s: %s", path, strerror(errno));
	return buf;
}

/* Removes path and, for a directory, everything under it. */
static inline void rm_rf(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == -1)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		assert_non_null(d);
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char *sub = fmt("%s/%s", path, e->d_name);
			rm_rf(sub);
			free(sub);
		}
		closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

#endif
