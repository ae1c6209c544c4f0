#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

void strmap_init(struct strmap *m, bool nocase)
{
	memset(m, 0, sizeof *m);
	m->nocase = nocase;
}

void strmap_fini(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].key);
	free(m->slots);
	m->slots = NULL;
	m->cap = m->n = 0;
}

unsigned long long strmap_hash(const char *s, bool nocase)
{
	uint64_t h = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if (nocase && c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h ^= c;
		h *= 1099511628211ULL;
	}
	return h;
}

static bool key_eq(const struct strmap *m, const char *a, const char *b)
{
	return m->nocase ? strcasecmp(a, b) == 0 : strcmp(a, b) == 0;
}

static struct strmap_slot *find(const struct strmap *m, const char *key)
{
	if (!m->cap)
		return NULL;
	size_t i = (size_t)strmap_hash(key, m->nocase) & (m->cap - 1);
	for (;;) {
		struct strmap_slot *s = &m->slots[i];
		if (!s->key || key_eq(m, s->key, key))
			return s;
		i = (i + 1) & (m->cap - 1);
	}
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_slot *s = find(m, key);
	return s && s->key ? s->value : NULL;
}

static void grow(struct strmap *m)
{
	struct strmap old = *m;
	m->cap = old.cap ? old.cap * 2 : 16;
	m->slots = xcalloc(m->cap, sizeof *m->slots);
	m->n = 0;
	for (size_t i = 0; i < old.cap; i++) {
		if (!old.slots[i].key)
			continue;
		struct strmap_slot *s = find(m, old.slots[i].key);
		*s = old.slots[i];
		m->n++;
	}
	free(old.slots);
}

void strmap_put(struct strmap *m, const char *key, void *value)
{
	if ((m->n + 1) * 4 > m->cap * 3)
		grow(m);
	struct strmap_slot *s = find(m, key);
	if (!s->key) {
		s->key = xstrdup(key);
		m->n++;
	}
	s->value = value;
}
