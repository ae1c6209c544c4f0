/* The probe token: made and verified with the key in state_dir, and refused in every other
 * shape (forged MAC, another seed, another time, token-like strings, a tampered byte). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <inttypes.h>

#include "token.h"

static const char ID[] = "6b0a95b5173a1c2d1bc11c353e3b0aa6";
static const int64_t T = INT64_C(1795856997845);

static char *tmpdir_new(void)
{
	char tmpl[] = "/tmp/test_token.XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return fmt("%s", d);
}

static void test_key_file(void **state)
{
	(void)state;
	char *dir = tmpdir_new(), *sub = fmt("%s/state", dir), *path = fmt("%s/token.key", sub), *err = NULL;
	unsigned char k1[TOKEN_KEY_LEN], k2[TOKEN_KEY_LEN];
	struct stat st;

	/* created on first use, with the state directory, mode 0600, 32 bytes */
	assert_int_equal(token_key_load(sub, k1, &err), 0);
	assert_null(err);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, TOKEN_KEY_LEN);
	/* the same key on every later use */
	assert_int_equal(token_key_load(sub, k2, &err), 0);
	assert_memory_equal(k1, k2, TOKEN_KEY_LEN);
	/* a key that others can read is refused, naming the file */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(token_key_load(sub, k2, &err), -1);
	assert_non_null(strstr(err, "readable by group or others"));
	assert_non_null(strstr(err, path));
	free(err);
	err = NULL;
	/* 0400 is fine */
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(token_key_load(sub, k2, &err), 0);
	assert_memory_equal(k1, k2, TOKEN_KEY_LEN);
	/* a truncated key is refused */
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(truncate(path, 16), 0);
	assert_int_equal(token_key_load(sub, k2, &err), -1);
	assert_non_null(strstr(err, "32-byte key"));
	free(err);
	err = NULL;
	/* a symbolic link is not followed */
	assert_int_equal(unlink(path), 0);
	char *other = fmt("%s/other.key", dir);
	FILE *fp = fopen(other, "w");
	assert_non_null(fp);
	fwrite(k1, 1, TOKEN_KEY_LEN, fp);
	fclose(fp);
	assert_int_equal(chmod(other, 0600), 0);
	assert_int_equal(symlink(other, path), 0);
	assert_int_equal(token_key_load(sub, k2, &err), -1);
	assert_non_null(err);
	free(err);
	free(other);
	rm_rf(dir);
	free(path);
	free(sub);
	free(dir);
}

static void key_of(unsigned char key[TOKEN_KEY_LEN], unsigned char seed)
{
	for (int i = 0; i < TOKEN_KEY_LEN; i++)
		key[i] = (unsigned char)(seed + 7 * i);
}

static void test_roundtrip(void **state)
{
	(void)state;
	unsigned char key[TOKEN_KEY_LEN];
	char tok[TOKEN_MAX], id[40];
	int64_t t = 0;
	key_of(key, 1);
	token_make(key, ID, "seed-a", T, tok, sizeof tok);
	char *want_prefix = fmt("v1.%s.%" PRId64 ".", ID, T);
	assert_int_equal(strncmp(tok, want_prefix, strlen(want_prefix)), 0);
	assert_int_equal(strlen(tok), strlen(want_prefix) + 32);
	free(want_prefix);
	assert_int_equal(token_verify(key, tok, "seed-a", id, sizeof id, &t), 0);
	assert_string_equal(id, ID);
	assert_true(t == T);
	/* header values come with white space around them */
	char *padded = fmt(" \t%s \r\n", tok);
	assert_int_equal(token_verify(key, padded, "seed-a", id, sizeof id, &t), 0);
	free(padded);
}

static void test_foreign(void **state)
{
	(void)state;
	unsigned char key[TOKEN_KEY_LEN], other[TOKEN_KEY_LEN];
	char tok[TOKEN_MAX], id[40];
	int64_t t;
	key_of(key, 1);
	key_of(other, 2);
	token_make(key, ID, "seed-a", T, tok, sizeof tok);

	assert_int_equal(token_verify(key, tok, "seed-b", id, sizeof id, &t), -1);   /* another seed */
	assert_int_equal(token_verify(other, tok, "seed-a", id, sizeof id, &t), -1); /* another key */
	/* every single changed byte: refused */
	size_t n = strlen(tok);
	for (size_t i = 0; i < n; i++) {
		for (int d = 1; d < 3; d++) {
			char bad[TOKEN_MAX];
			memcpy(bad, tok, n + 1);
			bad[i] = (char)(bad[i] + d);
			if (token_verify(key, bad, "seed-a", id, sizeof id, &t) == 0)
				fail_msg("byte %zu changed (+%d) still verifies: %s", i, d, bad);
		}
	}
	/* the MAC of one send time replayed with another */
	char *moved = fmt("v1.%s.%" PRId64 ".%s", ID, T + 1, tok + n - 32);
	assert_int_equal(token_verify(key, moved, "seed-a", id, sizeof id, &t), -1);
	free(moved);
	static const char *const shapes[] = {
		"", "v1", "v1.", "6b0a95b5173a1c2d1bc11c353e3b0aa6",
		"v1.6b0a95b5173a1c2d1bc11c353e3b0aa6.1795856997845.00000000000000000000000000000000",
		"v1.6b0a95b5173a1c2d1bc11c353e3b0aa6.01795856997845.00000000000000000000000000000000",
		"v1.6B0A95B5173A1C2D1BC11C353E3B0AA6.1795856997845.00000000000000000000000000000000",
		"v1.6b0a95b5173a1c2d1bc11c353e3b0aa6..00000000000000000000000000000000",
		"v1.6b0a95b5173a1c2d1bc11c353e3b0aa6.1795856997845",
		"v2.6b0a95b5173a1c2d1bc11c353e3b0aa6.1795856997845.00000000000000000000000000000000",
		"v1.6b0a95b5173a1c2d1bc11c353e3b0aa.1795856997845.00000000000000000000000000000000",
		"v1.6b0a95b5173a1c2d1bc11c353e3b0aa6.99999999999999999999.00000000000000000000000000000000",
		"x v1.6b0a95b5173a1c2d1bc11c353e3b0aa6.1795856997845.00000000000000000000000000000000",
	};
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
		if (token_verify(key, shapes[i], "seed-a", id, sizeof id, &t) == 0)
			fail_msg("token-like string accepted: \"%s\"", shapes[i]);
	/* our token with something after it is not our token */
	char *suffixed = fmt("%s0", tok);
	assert_int_equal(token_verify(key, suffixed, "seed-a", id, sizeof id, &t), -1);
	free(suffixed);
	assert_int_equal(token_verify(key, NULL, "seed-a", id, sizeof id, &t), -1);
	assert_int_equal(token_verify(key, tok, "seed-a", id, 10, &t), -1); /* no room for the id */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_foreign),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
