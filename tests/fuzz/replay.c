/* Replays inputs through a fuzz target's LLVMFuzzerTestOneInput without libFuzzer, so that the
 * corpus runs under any compiler (ctest label "fuzz").
 *
 *   replay_TARGET DIR|FILE...                  run every file (directories: their regular files,
 *                                              in name order, not recursing, skipping dot files)
 *   replay_TARGET --expect-crash DIR|FILE...   run each file in a child process and succeed only
 *                                              if every one of them still fails (known bugs)
 *
 * Each input is passed in a heap buffer of exactly its size, as libFuzzer does, so that an
 * over-read is an ASan report in sanitizer builds. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

struct run {
	bool expect_crash;
	size_t n_inputs;
	size_t n_still_ok; /* --expect-crash: inputs that no longer fail */
};

static int read_file(const char *name, uint8_t **data, size_t *size)
{
	FILE *fp = fopen(name, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (!fp)
		return -1;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(fp);
				return -1;
			}
			buf = nb;
		}
		size_t got = fread(buf + len, 1, cap - len, fp);
		len += got;
		if (got == 0)
			break;
	}
	bool err = ferror(fp);
	fclose(fp);
	if (err) {
		free(buf);
		return -1;
	}
	/* exactly sized, so that reading one byte past the input is caught */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	*data = exact;
	*size = len;
	return 0;
}

static int run_one(const char *name)
{
	uint8_t *data;
	size_t size;

	if (read_file(name, &data, &size) == -1) {
		fprintf(stderr, "replay: %s: %s\n", name, strerror(errno));
		return -1;
	}
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	return 0;
}

static int run_file(struct run *r, const char *name)
{
	r->n_inputs++;
	fprintf(stderr, "replay: %s\n", name);
	if (!r->expect_crash)
		return run_one(name);

	fflush(NULL);
	pid_t pid = fork();
	if (pid == -1) {
		perror("fork");
		return -1;
	}
	if (pid == 0) {
		struct rlimit nocore = { 0, 0 };
		setrlimit(RLIMIT_CORE, &nocore); /* expected aborts: no core files */
		exit(run_one(name) == 0 ? 0 : 3); /* exit, not _exit: LeakSanitizer checks at exit */
	}
	int st;
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR) {
			perror("waitpid");
			return -1;
		}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		fprintf(stderr, "replay: %s no longer fails: the bug is fixed? Move it into the corpus "
				"directory of its target (see tests/fuzz/README.md).\n", name);
		r->n_still_ok++;
	} else if (WIFSIGNALED(st)) {
		fprintf(stderr, "replay: %s fails as expected (signal %d)\n", name, WTERMSIG(st));
	} else {
		fprintf(stderr, "replay: %s fails as expected (exit %d)\n", name, WEXITSTATUS(st));
	}
	return 0;
}

static int filter(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

static int run_path(struct run *r, const char *arg)
{
	struct stat st;
	struct dirent **list;
	int n, rc = 0;

	if (stat(arg, &st) == -1) {
		fprintf(stderr, "replay: %s: %s\n", arg, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(r, arg);
	if ((n = scandir(arg, &list, filter, alphasort)) == -1) {
		fprintf(stderr, "replay: %s: %s\n", arg, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		size_t len = strlen(arg) + strlen(list[i]->d_name) + 2;
		char *name = malloc(len);
		if (!name)
			abort();
		snprintf(name, len, "%s/%s", arg, list[i]->d_name);
		if (stat(name, &st) == 0 && S_ISREG(st.st_mode) && run_file(r, name) == -1)
			rc = -1;
		free(name);
		free(list[i]);
	}
	free(list);
	return rc;
}

int main(int argc, char **argv)
{
	struct run r = { 0 };
	int i = 1, rc = 0;

	if (i < argc && strcmp(argv[i], "--expect-crash") == 0) {
		r.expect_crash = true;
		i++;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: %s [--expect-crash] DIR|FILE...\n", argv[0]);
		return 2;
	}
	for (; i < argc; i++)
		if (run_path(&r, argv[i]) == -1)
			rc = 1;
	if (r.n_inputs == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		return 1;
	}
	if (r.expect_crash) {
		printf("replay: %zu known-bug inputs, %zu still fail, %zu no longer fail\n", r.n_inputs,
		       r.n_inputs - r.n_still_ok, r.n_still_ok);
		return rc || r.n_still_ok ? 1 : 0;
	}
	printf("replay: %zu inputs, no failure\n", r.n_inputs);
	return rc;
}
