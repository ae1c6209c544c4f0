/* Fuzz target: json_escape (util/json.c), which puts server replies, transcripts and error texts
 * into results.jsonl, and the JSON writer around it.
 *
 * 1. The whole input goes through json_escape. The output must be exactly one JSON string
 *    literal (no raw control characters, only valid escapes, valid UTF-8), and decoding it must
 *    give back the input with each byte that does not start a well-formed UTF-8 sequence
 *    replaced by U+FFFD (json.h). The checker and the UTF-8 table are in support.c, written
 *    independently of json.c.
 * 2. The same bytes are then read as a script of writer calls (objects, arrays, keys, strings
 *    with NUL bytes, integers, doubles including NaN and infinities, ...), kept well formed and
 *    at most 31 containers deep (need_comma[32] in json.h); the document must be valid JSON. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "strbuf.h"
#include "support.h"

static void check_escape(const char *s, size_t n)
{
	struct strbuf out, want;
	char *dec = NULL;
	size_t declen = 0;

	sb_init(&out);
	sb_init(&want);
	json_escape(&out, s, n);
	FUZZ_CHECK(out.len == strlen(out.s), "json_escape output has a NUL byte");
	FUZZ_CHECK(jc_string(out.s, out.len, &dec, &declen), "not a JSON string literal: %s", out.s);

	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t l = jc_utf8_len(p + i, n - i);
		if (l) {
			sb_appendn(&want, s + i, l);
			i += l;
		} else {
			sb_append(&want, "\xEF\xBF\xBD");
			i++;
		}
	}
	FUZZ_CHECK(declen == want.len && memcmp(dec, want.s, declen) == 0,
		   "json_escape does not round-trip: got %s (decoded %zu bytes, want %zu)", out.s, declen,
		   want.len);
	free(dec);
	sb_fini(&out);
	sb_fini(&want);
}

struct script {
	const uint8_t *p, *end;
};

static unsigned take_byte(struct script *sc)
{
	return sc->p < sc->end ? *sc->p++ : 0;
}

/* Up to 255 bytes, as given (may contain NUL). */
static size_t take_bytes(struct script *sc, const char **s)
{
	size_t n = take_byte(sc);
	if (n > (size_t)(sc->end - sc->p))
		n = (size_t)(sc->end - sc->p);
	*s = (const char *)sc->p;
	sc->p += n;
	return n;
}

static char *take_cstr(struct script *sc)
{
	const char *s;
	size_t n = take_bytes(sc, &s);
	char *c = malloc(n + 1);
	memcpy(c, s, n);
	c[n] = '\0'; /* json_str and json_key stop at the first NUL, like any C string */
	return c;
}

static int64_t take_i64(struct script *sc)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | take_byte(sc);
	int64_t r;
	memcpy(&r, &v, sizeof r);
	return r;
}

static double take_double(struct script *sc)
{
	static const double special[] = { 0.0, -0.0, 1e308, -1e308, 5e-324, 0.1, 123456789.987654321 };
	unsigned k = take_byte(sc);
	if (k < 2 * (sizeof special / sizeof special[0]))
		return k & 1 ? special[k / 2] : -special[k / 2];
	if (k == 250)
		return NAN;
	if (k == 251)
		return INFINITY;
	if (k == 252)
		return -INFINITY;
	int64_t bits = take_i64(sc);
	double d;
	memcpy(&d, &bits, sizeof d);
	return d;
}

static void check_writer(const uint8_t *data, size_t size)
{
	struct script sc = { data, data + size };
	struct strbuf out;
	struct json j;
	bool is_obj[32];
	int depth = 0;
	bool want_value = false; /* a key was written, its value is next */
	int ops = 0;

	sb_init(&out);
	json_init(&j, &out);
	json_obj_begin(&j);
	is_obj[depth++] = true;
	while (sc.p < sc.end && ops++ < 2000) {
		unsigned op = take_byte(&sc) % 13;
		bool in_obj = is_obj[depth - 1];
		if (op == 2) { /* close */
			if (depth == 1)
				continue;
			if (want_value)
				json_null(&j);
			want_value = false;
			if (is_obj[depth - 1])
				json_obj_end(&j);
			else
				json_arr_end(&j);
			depth--;
			continue;
		}
		if (op == 3 || op == 10) { /* key, or key+value shorthand */
			if (!in_obj || want_value)
				continue;
			char *k = take_cstr(&sc);
			if (op == 3) {
				json_key(&j, k);
				want_value = true;
			} else {
				unsigned which = take_byte(&sc) % 4;
				if (which == 0) {
					char *v = take_cstr(&sc);
					json_kstr(&j, k, v);
					free(v);
				} else if (which == 1) {
					json_kint(&j, k, take_i64(&sc));
				} else if (which == 2) {
					double d = take_double(&sc);
					json_kdouble(&j, k, d, (int)(take_byte(&sc) % 20));
				} else {
					json_kbool(&j, k, take_byte(&sc) & 1);
				}
			}
			free(k);
			continue;
		}
		/* a value: inside an object it needs a key first */
		if (in_obj && !want_value)
			json_key(&j, "k");
		want_value = false;
		switch (op) {
		case 0:
		case 1:
			if (depth >= 31) {
				json_null(&j);
				break;
			}
			if (op == 0)
				json_obj_begin(&j);
			else
				json_arr_begin(&j);
			is_obj[depth++] = op == 0;
			break;
		case 4: {
			char *v = take_cstr(&sc);
			json_str(&j, v);
			free(v);
			break;
		}
		case 5: {
			const char *v;
			size_t n = take_bytes(&sc, &v);
			json_strn(&j, v, n);
			break;
		}
		case 6:
			json_int(&j, take_i64(&sc));
			break;
		case 7: {
			double d = take_double(&sc);
			json_double(&j, d, (int)(take_byte(&sc) % 20));
			break;
		}
		case 8:
			json_bool(&j, take_byte(&sc) & 1);
			break;
		case 9:
			json_null(&j);
			break;
		case 11:
			json_str(&j, NULL);
			break;
		default: { /* 12: a string that needs every kind of escape */
			static const char nasty[] = "\"\\/\b\f\n\r\t\x01\x1f\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x90\xa6\xff\xc0\xaf";
			json_strn(&j, nasty, sizeof nasty - 1);
			break;
		}
		}
	}
	if (want_value)
		json_null(&j);
	while (depth > 0) {
		if (is_obj[--depth])
			json_obj_end(&j);
		else
			json_arr_end(&j);
	}
	FUZZ_CHECK(j.depth == 0, "writer depth %d after closing everything", j.depth);
	FUZZ_CHECK(out.len == strlen(out.s), "writer output has a NUL byte");
	FUZZ_CHECK(jc_document(out.s, out.len), "writer produced invalid JSON: %s", out.s);
	sb_fini(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exactly sized copy, so that over-reads are caught */
	char *s = malloc(size ? size : 1);
	memcpy(s, data, size);
	check_escape(s, size);
	check_writer((const uint8_t *)s, size);
	free(s);
	return 0;
}
