/* Private to conf/: the schema table that drives loading, validation, freeing and the
 * documentation, and the value checkers it refers to. Not installed, not for other modules. */
#ifndef MON_CONF_INTERNAL_H
#define MON_CONF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum conf_ktype {
	CONF_K_STRING,    /* char * */
	CONF_K_INT,       /* int; min..max */
	CONF_K_BOOL,      /* bool */
	CONF_K_DURATION,  /* int64_t ms, written with a unit ("30s"); min..max in ms */
	CONF_K_STRLIST,   /* char ** + size_t count (off_n) */
	CONF_K_DURLIST,   /* int64_t * + size_t count (off_n); each element min..max ms */
	CONF_K_ENUM,      /* one of choices: stored as the choice's int value, or as char * (CONF_F_ENUMSTR) */
	CONF_K_GROUP,     /* { ... }: children are the keys "path.NAME" */
	CONF_K_GROUPLIST, /* ( { ... }, ... ): array of elem_size structs at off, count at off_n;
	                   * children are the keys "path.[].NAME", stored relative to one element */
};

enum {
	CONF_F_REQUIRED = 1 << 0, /* missing is an error (only checked when the parent is present) */
	CONF_F_PATH = 1 << 1,     /* file name: relative values are taken relative to the directory
	                           * of the main configuration file */
	CONF_F_ENUMSTR = 1 << 2,  /* ENUM stored as an owned string, not an int */
	CONF_F_HASPOS = 1 << 3,   /* GROUP/GROUPLIST: store a struct conf_pos at pos_off (per element) */
	CONF_F_HASSET = 1 << 4,   /* GROUP: store true at set_off when the group is present */
};

struct conf_choice {
	const char *name;
	int value;
};

/* A value check beyond the type: returns 0, or -1 with *err set to an owned message that does
 * not repeat the key (the caller prefixes "FILE:LINE: key: "). */
typedef int conf_check_fn(const char *s, char **err);

struct conf_key {
	const char *path;          /* "timeouts.banner", "seeds.[].imap.url" */
	enum conf_ktype type;
	unsigned flags;
	const char *def;           /* default as libconfig literal text ("\"30s\"", "100", "true",
	                            * "[\"5m\", \"1h\"]"); NULL: no default (or a computed one) */
	const char *def_doc;       /* computed default, in words, when def is NULL */
	int64_t min, max;          /* INT: values; DURATION and DURLIST: milliseconds */
	const struct conf_choice *choices; /* ENUM: terminated by { NULL, 0 } */
	conf_check_fn *check;      /* STRING and STRLIST elements: extra check, or NULL */
	size_t off;                /* storage, relative to the enclosing struct (see conf.c) */
	size_t off_n;              /* STRLIST, DURLIST, GROUPLIST: size_t element count */
	size_t elem_size;          /* GROUPLIST: sizeof one element */
	size_t pos_off;            /* CONF_F_HASPOS */
	size_t set_off;            /* CONF_F_HASSET */
	const char *doc;           /* one line (wrapped by the doc writers) */
};

extern const struct conf_key conf_schema[];
extern const size_t conf_schema_len;

/* The key whose path is exactly path, or NULL. */
const struct conf_key *conf_schema_find(const char *path);
/* The part of k->path after the last '.', e.g. "url" for "seeds.[].imap.url". */
const char *conf_key_name(const struct conf_key *k);
/* True when k is a direct child of the group pattern parent ("" for the top level,
 * "timeouts", "senders.[]", "seeds.[].imap"). */
bool conf_key_is_child(const struct conf_key *k, const char *parent);

/* Checkers used by the schema and by conf.c (check.c). */
conf_check_fn conf_check_name;
conf_check_fn conf_check_address;
conf_check_fn conf_check_helo;
conf_check_fn conf_check_host;
conf_check_fn conf_check_ip;
conf_check_fn conf_check_dns_server;
conf_check_fn conf_check_zone;
conf_check_fn conf_check_dkim_selector;
conf_check_fn conf_check_imap_url;
conf_check_fn conf_check_cleanup;
conf_check_fn conf_check_header;
conf_check_fn conf_check_secret_file;
conf_check_fn conf_check_readable_file;
conf_check_fn conf_check_rrdcached;
conf_check_fn conf_check_nonempty;
conf_check_fn conf_check_folder;
conf_check_fn conf_check_envname;

/* s in double quotes with control characters escaped (\r, \n, \xNN), cut after 120
 * characters: safe to print. Returns owned. */
char *conf_quote(const char *s);
/* Sets *err to the formatted message (owned) and returns -1. */
int conf_fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* conf_fail() with the value quoted in front: "VALUE" MESSAGE. */
int conf_failq(char **err, const char *value, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Syntax of a host name: labels of letters, digits and '-', 1..63 each, 253 in all. need_dot: at
 * least two labels and a last label that is not all digits (a plausible mail domain). */
bool conf_hostname_ok(const char *s, bool need_dot);

#endif
