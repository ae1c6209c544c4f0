/* conf-gendoc: writes the schema-derived documentation.
 *   conf-gendoc doc            the libconfig-comment reference (conf_schema_doc) to stdout
 *   conf-gendoc man-keys       the roff key list (conf_schema_man) to stdout
 *   conf-gendoc example FILE   replaces the reference at the end of FILE (from its first line on)
 *   conf-gendoc man FILE       replaces the lines between the GENERATED KEYS markers of FILE
 * test_conf checks that the committed files match, so run this after changing the schema. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fsutil.h"
#include "xalloc.h"

#define MAN_BEGIN ".\\\" BEGIN GENERATED KEYS"
#define MAN_END ".\\\" END GENERATED KEYS"

static char *capture(void (*fn)(FILE *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	if (!fp) {
		perror("open_memstream");
		exit(1);
	}
	fn(fp);
	fclose(fp);
	return buf;
}

/* All of path (NUL-terminated), or the program ends with the reason. */
static char *slurp(const char *path)
{
	size_t len;
	char *buf = read_all(path, &len);
	if (!buf) {
		perror(path);
		exit(1);
	}
	return buf;
}

static void spit(const char *path, const char *a, size_t alen, const char *b, const char *c)
{
	char *tmp = xasprintf("%s.tmp", path);
	FILE *fp = fopen(tmp, "w");
	if (!fp) {
		perror(tmp);
		exit(1);
	}
	fwrite(a, 1, alen, fp);
	fputs(b, fp);
	fputs(c, fp);
	if (fclose(fp) != 0 || rename(tmp, path) != 0) {
		perror(path);
		exit(1);
	}
	free(tmp);
}

/* Offset of the first line of text that starts with prefix, or -1. */
static long find_line(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, prefix, n) == 0)
			return (long)(p - text);
	return -1;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "doc") == 0) {
		conf_schema_doc(stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "man-keys") == 0) {
		conf_schema_man(stdout);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "example") == 0) {
		char *doc = capture(conf_schema_doc), *old = slurp(argv[2]);
		/* The reference starts with its first two lines (a rule and the title). */
		char *nl = strchr(doc, '\n');
		char *marker = xstrndup(doc, nl ? (size_t)(strchr(nl + 1, '\n') - doc) : strlen(doc));
		long at = find_line(old, marker);
		size_t keep = at >= 0 ? (size_t)at : strlen(old);
		const char *sep = at >= 0 || keep == 0 || old[keep - 1] == '\n' ? "" : "\n";
		spit(argv[2], old, keep, sep, doc);
		free(marker);
		free(doc);
		free(old);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "man") == 0) {
		char *keys = capture(conf_schema_man), *old = slurp(argv[2]);
		long b = find_line(old, MAN_BEGIN), e = find_line(old, MAN_END);
		if (b < 0 || e < b) {
			fprintf(stderr, "%s: no \"%s\" ... \"%s\" lines\n", argv[2], MAN_BEGIN, MAN_END);
			return 1;
		}
		size_t keep = (size_t)b + strcspn(old + b, "\n") + 1;
		spit(argv[2], old, keep, keys, old + e);
		free(keys);
		free(old);
		return 0;
	}
	fprintf(stderr, "usage: conf-gendoc doc | man-keys | example FILE | man FILE\n");
	return 2;
}
