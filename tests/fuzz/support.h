/* Shared by the fuzz targets: the libFuzzer entry point, an invariant check that aborts, and a
 * JSON syntax checker written independently of util/json.c (RFC 8259, strict UTF-8). */
#ifndef MON_FUZZ_SUPPORT_H
#define MON_FUZZ_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each fuzz_<target>.c defines it; libFuzzer or replay.c calls it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prints "fuzz invariant violated: WHAT (FILE:LINE)" and the detail, then abort()s, so that
 * libFuzzer saves the input and replay fails. */
void fuzz_fail(const char *what, const char *file, int line, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 4, 5)));

#define FUZZ_CHECK(cond, ...) \
	((cond) ? (void)0 : fuzz_fail(#cond, __FILE__, __LINE__, __VA_ARGS__))

/* s[0..n) is exactly one JSON string literal, quotes included. On success, when out is not NULL,
 * *out is the decoded value (owned, NUL-terminated, may contain NUL bytes) and *outlen its length.
 * Lone surrogate escapes and invalid UTF-8 are refused. */
bool jc_string(const char *s, size_t n, char **out, size_t *outlen);

/* s[0..n) is exactly one JSON value, optionally surrounded by whitespace. */
bool jc_document(const char *s, size_t n);

/* Length of the well-formed UTF-8 sequence at p (Unicode 15, table 3-7), or 0. */
size_t jc_utf8_len(const unsigned char *p, size_t n);

/* memmem() without relying on _GNU_SOURCE. */
const char *fuzz_memmem(const char *hay, size_t hn, const char *needle, size_t nn);

#endif
