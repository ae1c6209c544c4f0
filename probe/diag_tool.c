/* diag-tool: the diagnosis table outside the daemon.
 *   diag-tool rules            the roff rule list (diag_rules_man) to stdout
 *   diag-tool man FILE         replaces the lines between the GENERATED DIAGNOSIS markers of FILE
 *                              (target diag-docs; test_diagnose checks that the committed page
 *                              matches, so run it after changing the table)
 *   diag-tool explain OUTCOME STAGE CODE ENHANCED TEXT ERROR ATTEMPT [CHECK STATUS]...
 *                              the diagnosis of one decided attempt (the fields of a result's
 *                              smtp object) with the findings of `dns --json` checks (name and
 *                              status pairs), as {"cause","next_step","rule"}: what the scheduler
 *                              will do once it runs the DNS checks itself; the integration test
 *                              tests/integration/test_diagnose.py joins the two commands with it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diagnose.h"
#include "json.h"
#include "strbuf.h"
#include "fsutil.h"
#include "xalloc.h"

#define MAN_BEGIN ".\\\" BEGIN GENERATED DIAGNOSIS"
#define MAN_END ".\\\" END GENERATED DIAGNOSIS"

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

/* Offset of the first line of text that starts with prefix, or -1. */
static long find_line(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, prefix, n) == 0)
			return (long)(p - text);
	return -1;
}

static int write_man(const char *path)
{
	char *old = slurp(path);
	long b = find_line(old, MAN_BEGIN), e = find_line(old, MAN_END);
	if (b < 0 || e < b) {
		fprintf(stderr, "%s: no \"%s\" ... \"%s\" lines\n", path, MAN_BEGIN, MAN_END);
		free(old);
		return 1;
	}
	size_t keep = (size_t)b + strcspn(old + b, "\n") + 1;
	char *tmp = xasprintf("%s.tmp", path);
	FILE *fp = fopen(tmp, "w");
	if (!fp) {
		perror(tmp);
		exit(1);
	}
	fwrite(old, 1, keep, fp);
	diag_rules_man(fp);
	fputs(old + e, fp);
	if (fclose(fp) != 0 || rename(tmp, path) != 0) {
		perror(path);
		exit(1);
	}
	free(tmp);
	free(old);
	return 0;
}

static int explain(int argc, char **argv)
{
	struct diag_input in = { .outcome = (enum diag_outcome)OUTCOME_NONE, .stage = STAGE_NONE };
	for (int o = DIAG_ACCEPTED; o <= DIAG_UNKNOWN; o++)
		if (strcmp(argv[0], diag_outcome_name((enum diag_outcome)o)) == 0)
			in.outcome = (enum diag_outcome)o;
	in.stage = probe_stage_from_name(argv[1]);
	in.code = atoi(argv[2]);
	in.enhanced = argv[3];
	in.text = argv[4];
	in.error = argv[5];
	in.attempt = atoi(argv[6]);
	struct diag_findings f;
	memset(&f, 0, sizeof f);
	for (int i = 7; i + 1 < argc; i += 2)
		if (diag_findings_add_check(&f, argv[i], argv[i + 1]) < 0)
			fprintf(stderr, "diag-tool: unknown check %s: ignored\n", argv[i]);
	struct diagnosis d;
	struct strbuf sb;
	struct json j;
	diagnose(&in, &f, &d);
	sb_init(&sb);
	json_init(&j, &sb);
	diagnosis_json(&j, &d);
	puts(sb.s);
	sb_fini(&sb);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "rules") == 0) {
		diag_rules_man(stdout);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "man") == 0)
		return write_man(argv[2]);
	if (argc >= 9 && strcmp(argv[1], "explain") == 0 && (argc - 9) % 2 == 0)
		return explain(argc - 2, argv + 2);
	fprintf(stderr, "usage: diag-tool rules | man FILE\n"
			"       diag-tool explain OUTCOME STAGE CODE ENHANCED TEXT ERROR ATTEMPT [CHECK STATUS]...\n");
	return 2;
}
