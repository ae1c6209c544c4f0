/* Minimal streaming JSON writer into a strbuf. Commas are inserted automatically. */
#ifndef MON_UTIL_JSON_H
#define MON_UTIL_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include "strbuf.h"

struct json {
	struct strbuf *out; /* borrowed */
	int depth;
	bool need_comma[32];
};

void json_init(struct json *j, struct strbuf *out);
void json_obj_begin(struct json *j);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j);
void json_arr_end(struct json *j);
void json_key(struct json *j, const char *key);      /* next value is this key's */
void json_str(struct json *j, const char *s);        /* NULL writes null */
void json_strn(struct json *j, const char *s, size_t n);
void json_int(struct json *j, int64_t v);
void json_double(struct json *j, double v, int decimals);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
/* A value already written as JSON (an object or array from elsewhere), inserted as is. */
void json_raw(struct json *j, const char *json);
/* key + value shorthands */
void json_kstr(struct json *j, const char *key, const char *s);
void json_kint(struct json *j, const char *key, int64_t v);
void json_kdouble(struct json *j, const char *key, double v, int decimals);
void json_kbool(struct json *j, const char *key, bool v);
/* Appends s as a JSON string literal (quoted, escaped; invalid UTF-8 bytes become U+FFFD). */
void json_escape(struct strbuf *out, const char *s, size_t n);

#endif
