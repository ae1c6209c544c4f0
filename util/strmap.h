/* A string-keyed hash map (open addressing, FNV-1a) from a name to a caller's index or pointer. */
#ifndef MON_UTIL_STRMAP_H
#define MON_UTIL_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap_slot {
	char *key;   /* owned; NULL: empty */
	void *value; /* borrowed */
};

struct strmap {
	struct strmap_slot *slots;
	size_t cap;  /* power of two, or 0 */
	size_t n;
	bool nocase; /* keys compared ASCII case-insensitively (domain names) */
};

void strmap_init(struct strmap *m, bool nocase);
void strmap_fini(struct strmap *m);
/* Returns the value stored under key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);
/* Stores value under key (copied), replacing an earlier value. value must not be NULL. */
void strmap_put(struct strmap *m, const char *key, void *value);
/* FNV-1a 64-bit of s (lower-cased when nocase). */
unsigned long long strmap_hash(const char *s, bool nocase);

#endif
