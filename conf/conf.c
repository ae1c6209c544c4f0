/* Loading: libconfig parses, then we walk the parsed tree against the schema table (schema.c)
 * ourselves, since libconfig 1.5 detects neither unknown keys nor type mismatches. Every error
 * is collected with its file and line; nothing stops at the first one except a syntax error
 * (libconfig gives up there). */
#include "conf.h"

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_internal.h"
#include "duration.h"
#include "fsutil.h"
#include "strbuf.h"
#include "xalloc.h"

_Static_assert(sizeof(enum conf_mode) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum conf_tls) == sizeof(int), "enums are stored as int");

#define SECRET_MAX 4096
#define INCLUDE_DEPTH_MAX 10 /* libconfig 1.5's own limit */

/* libconfig 1.5 joins every @include path to one include directory. To resolve each @include
 * relative to the file that contains it, every file of the tree is copied into a private
 * directory with its @include lines rewritten to the copies' absolute paths (line numbers stay),
 * and libconfig reads the copies; file names in errors and positions are mapped back. */
struct shadow {
	char *tmpdir;              /* owned; removed with its files after loading */
	char **orig;               /* display name of each file (main as given, others resolved) */
	char **copy;               /* its rewritten copy */
	size_t n;
};

struct loader {
	config_t cfg;
	struct mon_conf *conf;     /* being filled; owns the file-name pool */
	struct conf_errors *errs;
	const char *path;          /* main file as given (borrowed) */
	char *dir;                 /* its directory as given ("." when none) */
	char *absdir;              /* the same, absolute: base of relative file names in values */
	char *cwd;
	struct shadow sh;
};

/* ---- file names and errors ---- */

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir);
	if (n && dir[n - 1] == '/')
		return xasprintf("%s%s", dir, name);
	return xasprintf("%s/%s", dir, name);
}

/* The name to show for a file libconfig reports: the main path as given; an included file
 * as its @include resolved against the including file's directory. */
static char *display_file(const struct loader *ld, const char *raw)
{
	if (!raw)
		return xstrdup(ld->path);
	for (size_t i = 0; i < ld->sh.n; i++)
		if (strcmp(raw, ld->sh.copy[i]) == 0)
			return xstrdup(ld->sh.orig[i]);
	return xstrdup(raw);
}

/* The directory part of file ("." when none). */
static char *dir_of(const char *file)
{
	const char *slash = strrchr(file, '/');
	return slash ? xstrndup(file, slash == file ? 1 : (size_t)(slash - file)) : xstrdup(".");
}

/* An @include name resolved against the directory of the file that holds it. */
static char *include_path(const char *including, const char *name)
{
	if (name[0] == '/')
		return xstrdup(name);
	char *dir = dir_of(including);
	char *full = strcmp(dir, ".") == 0 ? xstrdup(name) : path_join(dir, name);
	free(dir);
	return full;
}

/* Interns a display name in conf->file_pool; returns the pooled (borrowed) copy. */
static const char *pool_file(struct loader *ld, const char *raw)
{
	struct mon_conf *c = ld->conf;
	char *name = display_file(ld, raw);

	for (size_t i = 0; i < c->n_file_pool; i++) {
		if (strcmp(c->file_pool[i], name) == 0) {
			free(name);
			return c->file_pool[i];
		}
	}
	c->file_pool = xrealloc(c->file_pool, (c->n_file_pool + 1) * sizeof *c->file_pool);
	c->file_pool[c->n_file_pool++] = name;
	return name;
}

/* Takes msg. */
static void add_error(struct conf_errors *errs, const char *file, int line, const char *key,
		      char *msg)
{
	errs->v = xrealloc(errs->v, (errs->n + 1) * sizeof *errs->v);
	errs->v[errs->n].file = xstrdup(file);
	errs->v[errs->n].line = line;
	errs->v[errs->n].key = xstrdup(key ? key : "");
	errs->v[errs->n].msg = msg;
	errs->n++;
}

static void err_at(struct loader *ld, const config_setting_t *s, const char *key, const char *fmt,
		   ...) __attribute__((format(printf, 4, 5)));

/* An error at setting s (NULL: the main file, no line). */
static void err_at(struct loader *ld, const config_setting_t *s, const char *key, const char *fmt,
		   ...)
{
	struct strbuf sb;
	va_list ap;

	sb_init(&sb);
	va_start(ap, fmt);
	sb_vappendf(&sb, fmt, ap);
	va_end(ap);
	add_error(ld->errs, pool_file(ld, s ? config_setting_source_file(s) : NULL),
		  s ? (int)config_setting_source_line(s) : 0, key, sb_steal(&sb));
	sb_fini(&sb);
}

static size_t file_rank(const struct mon_conf *c, const char *file)
{
	for (size_t i = 0; i < c->n_file_pool; i++)
		if (strcmp(c->file_pool[i], file) == 0)
			return i;
	return c->n_file_pool;
}

/* Stable sort by (file in order of first appearance, line): the order a reader meets them. */
static void sort_errors(const struct mon_conf *c, struct conf_errors *errs)
{
	for (size_t i = 1; i < errs->n; i++) {
		struct conf_error e = errs->v[i];
		size_t r = file_rank(c, e.file), j = i;
		while (j > 0) {
			const struct conf_error *p = &errs->v[j - 1];
			size_t pr = file_rank(c, p->file);
			if (pr < r || (pr == r && p->line <= e.line))
				break;
			errs->v[j] = errs->v[j - 1];
			j--;
		}
		errs->v[j] = e;
	}
}

static char *key_join(const char *parent, const char *name)
{
	return *parent ? xasprintf("%s.%s", parent, name) : xstrdup(name);
}

static char *key_index(const char *parent, unsigned i)
{
	return xasprintf("%s.[%u]", parent, i);
}

/* ---- typed storage at base + off ---- */

static void put_str(char *base, size_t off, char *v) { memcpy(base + off, &v, sizeof v); }
static void put_int(char *base, size_t off, int v) { memcpy(base + off, &v, sizeof v); }
static void put_i64(char *base, size_t off, int64_t v) { memcpy(base + off, &v, sizeof v); }
static void put_bool(char *base, size_t off, bool v) { memcpy(base + off, &v, sizeof v); }
static void put_size(char *base, size_t off, size_t v) { memcpy(base + off, &v, sizeof v); }
static void put_ptr(char *base, size_t off, void *v) { memcpy(base + off, &v, sizeof v); }

static void *get_ptr(const char *base, size_t off)
{
	void *v;
	memcpy(&v, base + off, sizeof v);
	return v;
}

static size_t get_size(const char *base, size_t off)
{
	size_t v;
	memcpy(&v, base + off, sizeof v);
	return v;
}

/* ---- type errors ---- */

static const char *got_word(int type)
{
	switch (type) {
	case CONFIG_TYPE_INT: return "an integer";
	case CONFIG_TYPE_INT64: return "a 64-bit integer";
	case CONFIG_TYPE_FLOAT: return "a float";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY: return "an array [ ... ]";
	case CONFIG_TYPE_LIST: return "a list ( ... )";
	case CONFIG_TYPE_GROUP: return "a group { ... }";
	}
	return "nothing";
}

static const char *want_word(enum conf_ktype t)
{
	switch (t) {
	case CONF_K_STRING: return "a string in double quotes";
	case CONF_K_INT: return "an integer";
	case CONF_K_BOOL: return "true or false";
	case CONF_K_DURATION: return "a duration in double quotes such as \"30s\"";
	case CONF_K_STRLIST: return "a list of strings such as [\"a\", \"b\"]";
	case CONF_K_DURLIST: return "a list of durations such as [\"5m\", \"1h\"]";
	case CONF_K_ENUM: return "a string in double quotes";
	case CONF_K_GROUP: return "a group { ... }";
	case CONF_K_GROUPLIST: return "a list of groups ( { ... }, ... )";
	}
	return "?";
}

static void type_error(struct loader *ld, enum conf_ktype want, const config_setting_t *s,
		       const char *key)
{
	err_at(ld, s, key, "expected %s, got %s", want_word(want), got_word(config_setting_type(s)));
}

/* ---- values ---- */

static void walk_group(struct loader *ld, const config_setting_t *grp, const char *pattern,
		       const char *keypath, char *base);

/* Runs k's extra check on v; reports and returns -1 on failure. */
static int check_value(struct loader *ld, const struct conf_key *k, const config_setting_t *s,
		       const char *key, const char *v)
{
	char *msg = NULL;

	if (!k->check || k->check(v, &msg) == 0)
		return 0;
	err_at(ld, s, key, "%s", msg);
	free(msg);
	return -1;
}

/* Returns an owned copy of v; with CONF_F_PATH a relative name is made absolute against the
 * main file's directory. */
static char *path_value(const struct loader *ld, const struct conf_key *k, const char *v)
{
	if ((k->flags & CONF_F_PATH) && v[0] && v[0] != '/')
		return path_join(ld->absdir, v);
	return xstrdup(v);
}

static int parse_duration(struct loader *ld, const struct conf_key *k, const config_setting_t *s,
			  const char *key, int64_t *ms)
{
	const char *derr;
	char a[32], b[32];

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		type_error(ld, CONF_K_DURATION, s, key);
		return -1;
	}
	const char *v = config_setting_get_string(s);
	char *q = conf_quote(v);
	int rc = -1;
	if (duration_parse(v, ms, &derr) < 0)
		err_at(ld, s, key, "%s is not a duration: %s", q, derr);
	else if (*ms < k->min || *ms > k->max)
		err_at(ld, s, key, "%s is out of range %s to %s", q, duration_format(k->min, a, sizeof a),
		       duration_format(k->max, b, sizeof b));
	else
		rc = 0;
	free(q);
	return rc;
}

static void load_list(struct loader *ld, const struct conf_key *k, const config_setting_t *s,
		      const char *key, char *base)
{
	int t = config_setting_type(s);

	if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
		type_error(ld, k->type, s, key);
		return;
	}
	unsigned n = (unsigned)config_setting_length(s), got = 0;
	char **strs = NULL;
	int64_t *durs = NULL;
	if (n && k->type == CONF_K_STRLIST)
		strs = xcalloc(n, sizeof *strs);
	else if (n)
		durs = xcalloc(n, sizeof *durs);
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		char *ekey = key_index(key, i);
		if (k->type == CONF_K_DURLIST) {
			if (parse_duration(ld, k, e, ekey, &durs[got]) == 0)
				got++;
		} else if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			type_error(ld, CONF_K_STRING, e, ekey);
		} else if (check_value(ld, k, e, ekey, config_setting_get_string(e)) == 0) {
			strs[got++] = xstrdup(config_setting_get_string(e));
		}
		free(ekey);
	}
	if (got == 0) {
		free(strs);
		free(durs);
		strs = NULL;
		durs = NULL;
	}
	put_ptr(base, k->off, k->type == CONF_K_STRLIST ? (void *)strs : (void *)durs);
	put_size(base, k->off_n, got);
}

static void set_pos(struct loader *ld, const struct conf_key *k, const config_setting_t *s,
		    char *elem)
{
	struct conf_pos pos = {
		.file = pool_file(ld, config_setting_source_file(s)),
		.line = (int)config_setting_source_line(s),
	};
	if (k->flags & CONF_F_HASPOS)
		memcpy(elem + k->pos_off, &pos, sizeof pos);
}

static void load_grouplist(struct loader *ld, const struct conf_key *k, const config_setting_t *s,
			   const char *key, char *base)
{
	int t = config_setting_type(s);

	if (t != CONFIG_TYPE_LIST && !(t == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0)) {
		type_error(ld, k->type, s, key);
		return;
	}
	unsigned n = (unsigned)config_setting_length(s);
	if (n == 0)
		return;
	char *arr = xcalloc(n, k->elem_size);
	char *pattern = xasprintf("%s.[]", k->path);
	put_ptr(base, k->off, arr);
	put_size(base, k->off_n, n);
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		char *ekey = key_index(key, i);
		if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
			type_error(ld, CONF_K_GROUP, e, ekey);
		} else {
			set_pos(ld, k, e, arr + i * k->elem_size);
			walk_group(ld, e, pattern, ekey, arr + i * k->elem_size);
		}
		free(ekey);
	}
	free(pattern);
}

static char *read_line(const char *file, int line);

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '*';
}

/* libconfig 1.5 silently truncates an integer literal beyond 32 bits that lacks the L suffix
 * (4294967297 reads as 1). Finds "name = LITERAL" on the setting's source line: returns the
 * literal (owned) when it does not equal v, else NULL (also when it cannot be found). */
static char *int_literal(struct loader *ld, const config_setting_t *s, long long v)
{
	const char *raw = config_setting_source_file(s), *name = config_setting_name(s);
	char *out = NULL;

	if (!raw || !name)
		return NULL;
	char *file = display_file(ld, raw);
	char *text = read_line(file, (int)config_setting_source_line(s));
	size_t nl = strlen(name);
	for (const char *p = text; p && (p = strstr(p, name)) != NULL; p += nl) {
		if ((p > text && name_char(p[-1])) || name_char(p[nl]))
			continue;
		const char *q = p + nl + strspn(p + nl, " \t");
		if (*q != '=' && *q != ':')
			continue;
		q++;
		q += strspn(q, " \t");
		size_t len = strspn(q, "-+0123456789abcdefABCDEFxX");
		char *tok = xstrndup(q, len), *end;
		errno = 0;
		long long lit = strtoll(tok, &end, 0);
		if (len && *end == '\0' && (errno == ERANGE || lit != v))
			out = tok;
		else
			free(tok);
		break;
	}
	free(text);
	free(file);
	return out;
}

static void load_key(struct loader *ld, const struct conf_key *k, const config_setting_t *s,
		     const char *key, char *base)
{
	int t = config_setting_type(s);

	switch (k->type) {
	case CONF_K_STRING:
		if (t != CONFIG_TYPE_STRING) {
			type_error(ld, k->type, s, key);
		} else {
			char *v = path_value(ld, k, config_setting_get_string(s));
			if (check_value(ld, k, s, key, v) == 0)
				put_str(base, k->off, v);
			else
				free(v);
		}
		break;
	case CONF_K_ENUM: {
		if (t != CONFIG_TYPE_STRING) {
			type_error(ld, k->type, s, key);
			break;
		}
		const char *v = config_setting_get_string(s);
		const struct conf_choice *c;
		for (c = k->choices; c->name; c++)
			if (strcmp(c->name, v) == 0)
				break;
		if (!c->name) {
			struct strbuf sb;
			char *q = conf_quote(v);
			sb_init(&sb);
			for (c = k->choices; c->name; c++)
				sb_appendf(&sb, "%s\"%s\"", c == k->choices ? "" : (c[1].name ? ", " : " or "),
					   c->name);
			err_at(ld, s, key, "%s is not one of %s", q, sb.s);
			sb_fini(&sb);
			free(q);
		} else if (k->flags & CONF_F_ENUMSTR) {
			put_str(base, k->off, xstrdup(c->name));
		} else {
			put_int(base, k->off, c->value);
		}
		break;
	}
	case CONF_K_INT:
		if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
			long long v = config_setting_get_int64(s);
			char *lit = t == CONFIG_TYPE_INT ? int_literal(ld, s, v) : NULL;
			if (lit)
				err_at(ld, s, key, "%s is out of range %lld to %lld", lit, (long long)k->min,
				       (long long)k->max);
			else if (v < k->min || v > k->max)
				err_at(ld, s, key, "%lld is out of range %lld to %lld", v, (long long)k->min,
				       (long long)k->max);
			else
				put_int(base, k->off, (int)v);
			free(lit);
		} else {
			type_error(ld, k->type, s, key);
		}
		break;
	case CONF_K_BOOL:
		if (t != CONFIG_TYPE_BOOL)
			type_error(ld, k->type, s, key);
		else
			put_bool(base, k->off, config_setting_get_bool(s) != 0);
		break;
	case CONF_K_DURATION: {
		int64_t ms;
		if (parse_duration(ld, k, s, key, &ms) == 0)
			put_i64(base, k->off, ms);
		break;
	}
	case CONF_K_STRLIST:
	case CONF_K_DURLIST:
		load_list(ld, k, s, key, base);
		break;
	case CONF_K_GROUP:
		if (t != CONFIG_TYPE_GROUP) {
			type_error(ld, k->type, s, key);
			break;
		}
		if (k->flags & CONF_F_HASSET)
			put_bool(base, k->set_off, true);
		set_pos(ld, k, s, base);
		walk_group(ld, s, k->path, key, base);
		break;
	case CONF_K_GROUPLIST:
		load_grouplist(ld, k, s, key, base);
		break;
	}
}

/* Applies k's default by parsing its literal text with libconfig and loading it like a value
 * from the file, so the documented default is exactly what is used. */
static void apply_default(struct loader *ld, const struct conf_key *k, const char *key, char *base)
{
	config_t tmp;
	char *text = xasprintf("v = %s;", k->def);

	config_init(&tmp);
	if (config_read_string(&tmp, text) == CONFIG_TRUE)
		load_key(ld, k, config_lookup(&tmp, "v"), key, base);
	else
		err_at(ld, NULL, key, "internal error: bad default %s", k->def);
	config_destroy(&tmp);
	free(text);
}

/* Levenshtein distance, capped: for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[65];

	if (la > 64 || lb > 64)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static void unknown_key(struct loader *ld, const config_setting_t *m, const char *key,
			const char *pattern)
{
	const char *name = config_setting_name(m), *best = NULL;
	size_t best_d = 3;

	for (size_t i = 0; i < conf_schema_len; i++) {
		if (!conf_key_is_child(&conf_schema[i], pattern))
			continue;
		size_t d = edit_distance(name, conf_key_name(&conf_schema[i]));
		if (d < best_d) {
			best_d = d;
			best = conf_key_name(&conf_schema[i]);
		}
	}
	if (best)
		err_at(ld, m, key, "unknown setting (did you mean \"%s\"?)", best);
	else
		err_at(ld, m, key, "unknown setting");
}

/* Loads the members of grp (NULL: an absent group, defaults only) against the keys whose parent
 * is pattern, storing relative to base. keypath is grp's dotted key for messages. */
static void walk_group(struct loader *ld, const config_setting_t *grp, const char *pattern,
		       const char *keypath, char *base)
{
	if (grp) {
		unsigned n = (unsigned)config_setting_length(grp);
		for (unsigned i = 0; i < n; i++) {
			const config_setting_t *m = config_setting_get_elem(grp, i);
			char *key = key_join(keypath, config_setting_name(m));
			char *pat = key_join(pattern, config_setting_name(m));
			const struct conf_key *k = conf_schema_find(pat);
			if (k)
				load_key(ld, k, m, key, base);
			else
				unknown_key(ld, m, key, pattern);
			free(pat);
			free(key);
		}
	}
	for (size_t i = 0; i < conf_schema_len; i++) {
		const struct conf_key *k = &conf_schema[i];
		if (!conf_key_is_child(k, pattern))
			continue;
		const char *name = conf_key_name(k);
		if (grp && config_setting_get_member(grp, name))
			continue;
		char *key = key_join(keypath, name);
		if (k->type == CONF_K_GROUP)
			walk_group(ld, NULL, k->path, key, base);
		else if (k->flags & CONF_F_REQUIRED) {
			if (grp)
				err_at(ld, grp, key, "missing required setting");
		} else if (k->def)
			apply_default(ld, k, key, base);
		free(key);
	}
}

/* ---- checks across settings ---- */

static const config_setting_t *member(const config_setting_t *g, const char *name)
{
	return g && config_setting_is_group(g) ? config_setting_get_member(g, name) : NULL;
}

static const char *member_str(const config_setting_t *g, const char *name)
{
	const config_setting_t *m = member(g, name);
	return m && config_setting_type(m) == CONFIG_TYPE_STRING ? config_setting_get_string(m) : NULL;
}

/* username needs exactly one of password_file and password_env, and they need username. */
static void check_auth(struct loader *ld, const config_setting_t *g, const char *key,
		       bool username_required)
{
	const config_setting_t *u = member(g, "username"), *pf = member(g, "password_file"),
			       *pe = member(g, "password_env");
	char *k;

	if (u && !pf && !pe) {
		k = key_join(key, "username");
		err_at(ld, u, k, "needs password_file or password_env");
		free(k);
	}
	if (pf && pe) {
		k = key_join(key, "password_env");
		err_at(ld, pe, k, "set either password_file or password_env, not both");
		free(k);
	}
	if (!u && !username_required && (pf || pe)) {
		k = key_join(key, pf ? "password_file" : "password_env");
		err_at(ld, pf ? pf : pe, k, "needs username");
		free(k);
	}
}

/* An IMAP account group (a seed's imap, a sender's bounce_imap): a password source is needed. */
static void check_imap_group(struct loader *ld, const config_setting_t *parent, const char *key, const char *name)
{
	const config_setting_t *imap = member(parent, name);
	if (!imap || !config_setting_is_group(imap))
		return;
	char *k = key_join(key, name);
	check_auth(ld, imap, k, true);
	if (!member(imap, "username") && !member(imap, "password_file") && !member(imap, "password_env")) {
		char *pk = key_join(k, "password_file");
		err_at(ld, imap, pk, "missing: set password_file or password_env");
		free(pk);
	}
	free(k);
}

static void check_sender(struct loader *ld, const config_setting_t *e, unsigned i,
			 struct conf_sender *snd)
{
	char *key = key_index("senders", i), *k;
	const char *mode = member_str(e, "mode");
	bool relay = mode && strcmp(mode, "relay") == 0;
	bool mx = !member(e, "mode") || (mode && strcmp(mode, "mx") == 0);
	const config_setting_t *host = member(e, "host");

	if (relay && !host) {
		k = key_join(key, "host");
		err_at(ld, e, k, "missing: required with mode = \"relay\"");
		free(k);
	}
	if (mx && host) {
		k = key_join(key, "host");
		err_at(ld, host, k, "only allowed with mode = \"relay\" (mode \"mx\" sends to the MX "
				    "hosts of each seed's domain)");
		free(k);
	}
	if (!member(e, "port"))
		snd->port = relay ? 587 : 25;
	if (!member(e, "helo")) {
		char name[HOST_NAME_MAX + 1], *msg = NULL;
		k = key_join(key, "helo");
		if (gethostname(name, sizeof name) == -1) {
			err_at(ld, e, k, "not set, and gethostname() failed: %s", strerror(errno));
		} else {
			name[sizeof name - 1] = '\0';
			if (conf_check_helo(name, &msg) == 0)
				snd->helo = xstrdup(name);
			else
				err_at(ld, e, k, "not set, and this host's name cannot be used: %s", msg);
			free(msg);
		}
		free(k);
	}
	check_auth(ld, e, key, false);
	/* AUTH over a plaintext session would hand the password to anyone on the path. */
	const char *tls = member_str(e, "tls");
	if (member(e, "username") && tls && strcmp(tls, "none") == 0) {
		k = key_join(key, "tls");
		err_at(ld, member(e, "tls"), k, "\"none\" with username would send the password in clear text: "
						 "use tls = \"required\"");
		free(k);
	}
	if (!snd->bounce_imap.set)
		snd->bounce_imap.pos = snd->pos;
	check_imap_group(ld, e, key, "bounce_imap");
	free(key);
}

/* Names used twice in a list of groups; a hash of the names seen, so that 10,000 seeds take
 * 10,000 lookups and not 50 million comparisons. */
static void check_duplicates(struct loader *ld, const config_setting_t *list, const char *what)
{
	unsigned n = list ? (unsigned)config_setting_length(list) : 0;
	struct strmap seen;

	strmap_init(&seen, false);
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *ni = member(config_setting_get_elem(list, i), "name");
		const char *a = member_str(config_setting_get_elem(list, i), "name");
		if (!a)
			continue;
		const config_setting_t *nj = strmap_get(&seen, a);
		if (!nj) {
			strmap_put(&seen, a, (void *)ni);
			continue;
		}
		char *k = xasprintf("%s.[%u].name", config_setting_name(list), i);
		char *q = conf_quote(a);
		err_at(ld, ni, k, "duplicate %s name %s (first used at %s:%u)", what, q,
		       pool_file(ld, config_setting_source_file(nj)), config_setting_source_line(nj));
		free(q);
		free(k);
	}
	strmap_fini(&seen);
}

static void check_seed(struct loader *ld, const config_setting_t *e, unsigned i,
		       struct conf_seed *seed)
{
	const struct mon_conf *c = ld->conf;
	char *key = key_index("seeds", i);

	if (seed->address)
		seed->domain = strrchr(seed->address, '@') + 1;
	if (!seed->imap.set)
		seed->imap.pos = seed->pos; /* conf_pos.file is never NULL */
	if (seed->sender_name) {
		for (size_t j = 0; j < c->n_senders && !seed->sender; j++)
			if (c->senders[j].name && strcmp(c->senders[j].name, seed->sender_name) == 0)
				seed->sender = &c->senders[j];
		if (!seed->sender) {
			struct strbuf sb;
			char *q = conf_quote(seed->sender_name), *k = key_join(key, "sender");
			sb_init(&sb);
			for (size_t j = 0; j < c->n_senders; j++)
				if (c->senders[j].name)
					sb_appendf(&sb, "%s%s", sb.len ? ", " : "", c->senders[j].name);
			if (sb.len)
				err_at(ld, member(e, "sender"), k, "no sender is named %s (senders: %s)", q,
				       sb.s);
			else
				err_at(ld, member(e, "sender"), k, "no sender is named %s (no senders are "
								   "defined)", q);
			sb_fini(&sb);
			free(k);
			free(q);
		}
	}
	check_imap_group(ld, e, key, "imap");
	free(key);
}

static void check_all(struct loader *ld)
{
	struct mon_conf *c = ld->conf;
	const config_setting_t *root = config_root_setting(&ld->cfg);
	const config_setting_t *senders = member(root, "senders"), *seeds = member(root, "seeds");

	if (!member(root, "rrd_dir") && c->state_dir)
		c->rrd_dir = path_join(c->state_dir, "rrd");
	if (senders && config_setting_is_list(senders)) {
		for (unsigned i = 0; i < c->n_senders; i++) {
			const config_setting_t *e = config_setting_get_elem(senders, i);
			if (config_setting_is_group(e))
				check_sender(ld, e, i, &c->senders[i]);
		}
		check_duplicates(ld, senders, "sender");
	}
	if (seeds && config_setting_is_list(seeds)) {
		for (unsigned i = 0; i < c->n_seeds; i++) {
			const config_setting_t *e = config_setting_get_elem(seeds, i);
			if (config_setting_is_group(e))
				check_seed(ld, e, i, &c->seeds[i]);
		}
		check_duplicates(ld, seeds, "seed");
	}
}

/* ---- syntax errors ---- */

/* Line `line` (1-based) of file, owned, or NULL. */
static char *read_line(const char *file, int line)
{
	FILE *fp = fopen(file, "r");
	char buf[4096];
	char *out = NULL;

	if (!fp)
		return NULL;
	for (int n = 1; fgets(buf, sizeof buf, fp); n++) {
		if (n == line) {
			out = xstrdup(buf);
			break;
		}
	}
	fclose(fp);
	return out;
}

/* libconfig says only "cannot open include file": name the file and the reason. */
static char *include_error(const char *file, int line)
{
	char *text = read_line(file, line), *msg = NULL;
	const char *p = text ? strstr(text, "@include") : NULL;
	const char *q1 = p ? strchr(p, '"') : NULL;
	const char *q2 = q1 ? strchr(q1 + 1, '"') : NULL;

	if (q2) {
		char *name = xstrndup(q1 + 1, (size_t)(q2 - q1 - 1));
		char *full = include_path(file, name);
		struct stat st;
		const char *why = stat(full, &st) == -1 ? strerror(errno)
			: S_ISDIR(st.st_mode) ? "is a directory" : "cannot be read";
		msg = xasprintf("cannot open include file \"%s\" (%s): %s", name, full, why);
		free(full);
		free(name);
	}
	free(text);
	return msg ? msg : xstrdup("cannot open include file");
}

static void syntax_error(struct loader *ld)
{
	char *file = display_file(ld, config_error_file(&ld->cfg));
	int line = config_error_line(&ld->cfg);
	const char *text = config_error_text(&ld->cfg);
	char *msg;

	if (text && strcmp(text, "cannot open include file") == 0)
		msg = include_error(file, line);
	else if (text && strcmp(text, "include file nesting too deep") == 0)
		msg = xasprintf("include files nested deeper than %d (an @include cycle?)", INCLUDE_DEPTH_MAX);
	else
		msg = xstrdup(text ? text : "syntax error");
	add_error(ld->errs, file, line, "", msg);
	free(file);
}

/* Copies file (display name orig) into the shadow directory with its @include lines pointing
 * at the copies of the files they name, resolved against orig's directory. Reports what
 * libconfig 1.5 cannot (it calls exit(2) when an @include names a directory or "") and a NUL
 * byte. Returns the copy's index, or -1 after adding an error. Missing files are left to
 * libconfig, which reports them at the @include line. */
static long shadow_file(struct loader *ld, const char *orig, int depth)
{
	struct shadow *sh = &ld->sh;
	for (size_t i = 0; i < sh->n; i++)
		if (strcmp(sh->orig[i], orig) == 0)
			return (long)i; /* included twice, or a cycle: libconfig stops at its own depth limit */
	size_t len = 0;
	char *text = read_all(orig, &len);
	if (!text) {
		add_error(ld->errs, orig, 0, "", xasprintf("cannot open: %s", strerror(errno)));
		return -1;
	}
	if (memchr(text, '\0', len)) {
		/* A NUL byte would hide the rest of a line, and libconfig cuts names at it: a config is text. */
		size_t nl = 1;
		for (const char *p = text; *p; p++)
			nl += *p == '\n';
		add_error(ld->errs, orig, (int)nl, "", xstrdup("contains a NUL byte: not a text file"));
		free(text);
		return -1;
	}
	long idx = (long)sh->n;
	sh->orig = xrealloc(sh->orig, (sh->n + 1) * sizeof *sh->orig);
	sh->copy = xrealloc(sh->copy, (sh->n + 1) * sizeof *sh->copy);
	sh->orig[sh->n] = xstrdup(orig);
	sh->copy[sh->n] = xasprintf("%s/%ld.cfg", sh->tmpdir, idx);
	sh->n++;

	struct strbuf out;
	sb_init(&out);
	bool bad = false;
	int lineno = 0;
	for (char *line = text, *next; line && *line; line = next) {
		char *nl = strchr(line, '\n');
		next = nl ? nl + 1 : NULL;
		size_t llen = nl ? (size_t)(nl - line) + 1 : strlen(line);
		lineno++;
		const char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		const char *q = NULL;
		if (strncmp(p, "@include", 8) == 0) {
			p += 8;
			while (*p == ' ' || *p == '\t')
				p++;
			q = *p == '"' ? memchr(p + 1, '"', llen - (size_t)(p + 1 - line)) : NULL;
		}
		if (!q) { /* not an @include, or a syntax error that libconfig reports */
			sb_appendn(&out, line, llen);
			continue;
		}
		char *name = xstrndup(p + 1, (size_t)(q - p - 1));
		char *full = include_path(orig, name);
		struct stat st;
		const char *target = full;
		if (stat(full, &st) == 0 && !S_ISREG(st.st_mode)) {
			add_error(ld->errs, orig, lineno, "", xasprintf("@include \"%s\": %s is not a regular file", name, full));
			bad = true;
		} else if (stat(full, &st) == 0 && depth >= INCLUDE_DEPTH_MAX) {
			add_error(ld->errs, orig, lineno, "",
				  xasprintf("@include \"%s\": includes nested deeper than %d", name, INCLUDE_DEPTH_MAX));
			bad = true;
		} else if (stat(full, &st) == 0) {
			long k = shadow_file(ld, full, depth + 1);
			if (k < 0)
				bad = true;
			else
				target = sh->copy[k];
		}
		/* A missing file keeps its resolved (absolute when possible) name: libconfig reports
		 * it and include_error() explains. */
		char *abs = target == full && full[0] != '/' ? path_join(ld->cwd, full) : NULL;
		sb_appendn(&out, line, (size_t)(p + 1 - line));
		sb_append(&out, abs ? abs : target);
		sb_appendn(&out, q, llen - (size_t)(q - line));
		free(abs);
		free(name);
		free(full);
	}
	free(text);
	if (!bad) {
		int fd = open(sh->copy[idx], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, out.s, out.len) != (ssize_t)out.len) {
			add_error(ld->errs, orig, 0, "", xasprintf("cannot copy for reading: %s", strerror(errno)));
			bad = true;
		}
		if (fd >= 0)
			close(fd);
	}
	sb_fini(&out);
	return bad ? -1 : idx;
}

static void shadow_fini(struct shadow *sh)
{
	for (size_t i = 0; i < sh->n; i++) {
		unlink(sh->copy[i]);
		free(sh->copy[i]);
		free(sh->orig[i]);
	}
	free(sh->copy);
	free(sh->orig);
	if (sh->tmpdir)
		rmdir(sh->tmpdir);
	free(sh->tmpdir);
	memset(sh, 0, sizeof *sh);
}

/* ---- public ---- */

int conf_load(const char *path, struct mon_conf **out, struct conf_errors *errs)
{
	struct loader ld = { .errs = errs, .path = path };
	const char *slash = strrchr(path, '/');
	struct stat st;
	int rc = -1;

	*out = NULL;
	errs->v = NULL;
	errs->n = 0;
	if (stat(path, &st) == -1) {
		add_error(errs, path, 0, "", xasprintf("cannot open: %s", strerror(errno)));
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		add_error(errs, path, 0, "", xstrdup("cannot open: Is a directory"));
		return -1;
	}
	ld.dir = slash ? xstrndup(path, slash == path ? 1 : (size_t)(slash - path)) : xstrdup(".");
	ld.absdir = realpath(ld.dir, NULL);
	if (!ld.absdir)
		ld.absdir = xstrdup(ld.dir);

	ld.cwd = getcwd(NULL, 0);
	if (!ld.cwd)
		ld.cwd = xstrdup("/");
	config_init(&ld.cfg);
	{
		const char *tmp = getenv("TMPDIR");
		char *tmpl = xasprintf("%s/mailcanary-conf.XXXXXX", tmp && *tmp == '/' ? tmp : "/tmp");
		ld.sh.tmpdir = mkdtemp(tmpl) ? tmpl : NULL;
		if (!ld.sh.tmpdir) {
			add_error(errs, path, 0, "", xasprintf("cannot create a temporary directory: %s", strerror(errno)));
			free(tmpl);
			goto out;
		}
	}
	if (shadow_file(&ld, path, 0) != 0)
		goto out;
	if (config_read_file(&ld.cfg, ld.sh.copy[0]) != CONFIG_TRUE) {
		if (config_error_type(&ld.cfg) == CONFIG_ERR_FILE_IO)
			add_error(errs, path, 0, "", xasprintf("cannot open: %s", strerror(errno)));
		else
			syntax_error(&ld);
		goto out;
	}

	ld.conf = xcalloc(1, sizeof *ld.conf);
	ld.conf->path = xstrdup(path);
	strmap_init(&ld.conf->seed_index, false);
	pool_file(&ld, path);
	walk_group(&ld, config_root_setting(&ld.cfg), "", "", (char *)ld.conf);
	check_all(&ld);
	sort_errors(ld.conf, errs);
	if (errs->n == 0) {
		for (size_t i = 0; i < ld.conf->n_seeds; i++)
			if (ld.conf->seeds[i].name && !strmap_get(&ld.conf->seed_index, ld.conf->seeds[i].name))
				strmap_put(&ld.conf->seed_index, ld.conf->seeds[i].name, &ld.conf->seeds[i]);
		*out = ld.conf;
		rc = 0;
	} else {
		conf_free(ld.conf);
	}
out:
	config_destroy(&ld.cfg);
	shadow_fini(&ld.sh);
	free(ld.dir);
	free(ld.absdir);
	free(ld.cwd);
	return rc;
}

static void free_group(const char *pattern, char *base)
{
	for (size_t i = 0; i < conf_schema_len; i++) {
		const struct conf_key *k = &conf_schema[i];
		if (!conf_key_is_child(k, pattern))
			continue;
		switch (k->type) {
		case CONF_K_ENUM:
			if (k->flags & CONF_F_ENUMSTR)
				free(get_ptr(base, k->off));
			break;
		case CONF_K_STRING:
		case CONF_K_DURLIST:
			free(get_ptr(base, k->off));
			break;
		case CONF_K_STRLIST: {
			char **v = get_ptr(base, k->off);
			size_t n = get_size(base, k->off_n);
			for (size_t j = 0; j < n; j++)
				free(v[j]);
			free(v);
			break;
		}
		case CONF_K_GROUP:
			free_group(k->path, base);
			break;
		case CONF_K_GROUPLIST: {
			char *arr = get_ptr(base, k->off);
			size_t n = get_size(base, k->off_n);
			char *pat = xasprintf("%s.[]", k->path);
			for (size_t j = 0; j < n; j++)
				free_group(pat, arr + j * k->elem_size);
			free(pat);
			free(arr);
			break;
		}
		case CONF_K_INT:
		case CONF_K_BOOL:
		case CONF_K_DURATION:
			break;
		}
	}
}

void conf_free(struct mon_conf *conf)
{
	if (!conf)
		return;
	free_group("", (char *)conf);
	for (size_t i = 0; i < conf->n_file_pool; i++)
		free(conf->file_pool[i]);
	free(conf->file_pool);
	free(conf->path);
	strmap_fini(&conf->seed_index);
	free(conf);
}

void conf_errors_fini(struct conf_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++) {
		free(errs->v[i].file);
		free(errs->v[i].key);
		free(errs->v[i].msg);
	}
	free(errs->v);
	errs->v = NULL;
	errs->n = 0;
}

void conf_errors_print(const struct conf_errors *errs, FILE *fp)
{
	for (size_t i = 0; i < errs->n; i++) {
		const struct conf_error *e = &errs->v[i];
		fputs(e->file, fp);
		if (e->line > 0)
			fprintf(fp, ":%d", e->line);
		if (e->key && *e->key)
			fprintf(fp, ": %s", e->key);
		fprintf(fp, ": %s\n", e->msg);
	}
}

const struct conf_seed *conf_seed_find(const struct mon_conf *conf, const char *name)
{
	if (conf->seed_index.n)
		return strmap_get(&conf->seed_index, name);
	for (size_t i = 0; i < conf->n_seeds; i++)
		if (strcmp(conf->seeds[i].name, name) == 0)
			return &conf->seeds[i];
	return NULL;
}

char *conf_read_secret(const char *password_file, const char *password_env, char **err)
{
	struct stat st;
	char *buf;
	ssize_t n;
	size_t len = 0;
	int fd;

	*err = NULL;
	if (password_env) {
		const char *v = getenv(password_env);
		if (v && *v)
			return xstrdup(v);
		if (!password_file) {
			*err = xasprintf("environment variable %s is %s", password_env,
					 v ? "empty" : "not set");
			return NULL;
		}
	}
	if (!password_file) {
		*err = xstrdup("no password_file or password_env is set");
		return NULL;
	}
	if ((fd = open(password_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1) {
		*err = xasprintf("%s: %s", password_file, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1)
		*err = xasprintf("%s: %s", password_file, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		*err = xasprintf("%s: not a regular file", password_file);
	else if (st.st_mode & 077)
		*err = xasprintf("%s: accessible by group or others (mode %04o): make it 0600 or 0400",
				 password_file, (unsigned)(st.st_mode & 07777));
	if (*err) {
		close(fd);
		return NULL;
	}
	buf = xmalloc(SECRET_MAX + 2);
	while ((n = read(fd, buf + len, SECRET_MAX + 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (n < 0 || len > SECRET_MAX || memchr(buf, '\0', len)) {
		*err = n < 0 ? xasprintf("%s: %s", password_file, strerror(errno))
		     : len > SECRET_MAX ? xasprintf("%s: longer than %d bytes", password_file, SECRET_MAX)
		     : xasprintf("%s: contains a NUL byte", password_file);
		explicit_bzero(buf, SECRET_MAX + 2);
		free(buf);
		return NULL;
	}
	if (len && buf[len - 1] == '\n') {
		len--;
		if (len && buf[len - 1] == '\r')
			len--;
	}
	buf[len] = '\0';
	if (len == 0) {
		*err = xasprintf("%s: empty", password_file);
		free(buf);
		return NULL;
	}
	return buf;
}

const char *conf_tls_name(enum conf_tls tls)
{
	switch (tls) {
	case CONF_TLS_NONE: return "none";
	case CONF_TLS_OPPORTUNISTIC: return "opportunistic";
	case CONF_TLS_REQUIRED: return "required";
	}
	return "?";
}

const char *conf_mode_name(enum conf_mode mode)
{
	switch (mode) {
	case CONF_MODE_MX: return "mx";
	case CONF_MODE_RELAY: return "relay";
	}
	return "?";
}
