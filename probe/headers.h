/* The header block of a probe message read back over IMAP (UID FETCH n BODY[HEADER]): fields,
 * RFC 5322 date-time, the Received chain (RFC 5321 4.4, RFC 5322 3.6.7) and
 * Authentication-Results (RFC 8601). Pure parsing of untrusted input: no I/O, no allocation, no
 * dependence on TZ or the locale.
 *
 * Every function borrows its input (a pointer and a length; NUL bytes are ordinary bytes, no
 * terminator is needed or read) and never reads outside it. Strings in result structs are
 * NUL-terminated within their fixed-size buffers, "" when absent, never NULL; longer values are
 * cut at a UTF-8 character boundary. In them, runs of white space (SP, HT, CR, LF: folds
 * included) become one space, other control bytes (NUL included) become '?', 8-bit bytes are kept
 * as they are (they need not be valid UTF-8). */
#ifndef MON_PROBE_HEADERS_H
#define MON_PROBE_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the header block ---- */

#define HDR_MAX_FIELDS 1000            /* fields returned per block, at most */
#define HDR_MAX_BYTES (1024 * 1024)    /* bytes of a block looked at, at most */

/* One field. Both pointers borrow from the block passed to hdr_iter_init(). */
struct hdr_field {
	const char *name;  /* not NUL-terminated; obsolete white space before the colon excluded */
	size_t name_len;
	const char *value; /* the raw value after the colon: folds (CR LF or bare LF, then SP or HT)
			    * kept, the final line end not; not NUL-terminated */
	size_t value_len;
};

/* Walks the fields of a block in order. Lines end in CR LF or bare LF (a CR not followed by LF
 * is an ordinary byte); a line starting with SP or HT continues the field above it (RFC 5322
 * 2.2.3); the block ends at the first empty line (the body after it is not looked at), at the end
 * of the input (no final line end needed), or after HDR_MAX_BYTES bytes. A field is
 * name [WSP] ":" value, the name being 1*(printable US-ASCII except ":"): any other line (a
 * "From " line, 8-bit bytes or a space in the name, a continuation before the first field) is
 * skipped with its continuations and counted in n_skipped. An embedded struct: no _fini. */
struct hdr_iter {
	size_t n_fields;  /* fields returned so far */
	size_t n_skipped; /* lines skipped as no field */
	bool truncated;   /* stopped at HDR_MAX_FIELDS or HDR_MAX_BYTES before the end of the block */
	/* private */
	const char *p, *end;
	bool cut; /* the input was longer than HDR_MAX_BYTES */
	bool done;
};

/* Starts iterating over block[0..len) (borrowed: it must outlive the iteration). */
void hdr_iter_init(struct hdr_iter *it, const char *block, size_t len);

/* The next field into *f; false at the end of the block (then *f is left as it was). */
bool hdr_next(struct hdr_iter *it, struct hdr_field *f);

/* The next field named name (compared case-insensitively, ASCII); false when there is no more. */
bool hdr_next_named(struct hdr_iter *it, const char *name, struct hdr_field *f);

/* The field's name is name (case-insensitively). */
bool hdr_name_is(const struct hdr_field *f, const char *name);

/* Unfolds value[0..len) (RFC 5322 2.2.3: every CR LF or bare LF is removed, stray CRs too) and
 * trims the white space at both ends; a NUL byte becomes a space. Writes at most bufsz - 1 bytes
 * and a NUL into buf (bufsz >= 1; cut at a UTF-8 boundary) and returns the length of the whole
 * unfolded value, as snprintf does: the result was cut when it is >= bufsz. */
size_t hdr_unfold(const char *value, size_t len, char *buf, size_t bufsz);

/* ---- RFC 5322 3.3 date-time ---- */

/* Parses s[0..len) as an RFC 5322 date-time, obsolete forms (4.3) included:
 *   [day-name [","]] day month year hour ":" minute [":" second] zone
 * with comments (nested, quoted pairs; one left open runs to the end) and any white space (folds
 * too) wherever CFWS may stand, also around the colons. day-name and month are English
 * abbreviations in any case; a day name that does not match the date is accepted (it is
 * ignored). day: 1-2 digits, valid for the month
 * (leap years included); year: 2 digits (00-49 → 2000-2049, 50-99 → 1950-1999), 3 digits (+1900)
 * or 4 digits (1900-9999); hour 0-23, minute 0-59, second 0-60 (60: a leap second, counted as
 * the next minute's 0) with 1-2 digits each. zone: "+hhmm" or "-hhmm" (hh 00-23, mm 00-59); UT,
 * GMT, UTC, Z = +0000; EST -0500, EDT -0400, CST -0600, CDT -0500, MST -0700, MDT -0600,
 * PST -0800, PDT -0700; the military letters and any other 2-5 letter name are unknown zones,
 * taken as -0000 (RFC 5322 4.3), i.e. UTC. Nothing but CFWS may follow the zone.
 * Returns the Unix time (UTC seconds), or -1 when s is no such date-time or it lies before
 * 1970-01-01T00:00:00Z. *zone_min (may be NULL) gets the zone in minutes east of UTC (0 for
 * unknown zones), and is 0 on failure. */
int64_t hdr_date_parse(const char *s, size_t len, int *zone_min);

/* Formats t as "Sat, 28 Nov 2026 06:12:00 +0000" in the zone zone_min minutes east of UTC
 * (|zone_min| <= 23 * 60 + 59) into buf (bufsz >= 32). Returns 0, or -1 (buf then "" when
 * bufsz >= 1) when t < 0, the zone is out of range, or the local year is not in 1900-9999.
 * hdr_date_parse() of the output gives t and zone_min back. */
int hdr_date_format(int64_t t, int zone_min, char *buf, size_t bufsz);

/* ---- Received ---- */

enum hdr_clause { HDR_FROM, HDR_BY, HDR_VIA, HDR_WITH, HDR_ID, HDR_FOR, HDR_N_CLAUSES };

/* One Received field. The date is what follows the last ";" outside comments and quoted strings
 * (or, when there is none, the last ";" at all). Before it, the words from, by, via, with, id and
 * for (any case) outside comments start the clauses. A clause's value is the words up to the
 * next clause word (with "Microsoft SMTP Server", via "Frontend Transport"); the comments among
 * and after them are its comment. A repeated clause word starts no new clause. */
struct hdr_received {
	char value[HDR_N_CLAUSES][256];   /* words joined by one space: "mx.lab.test", "<a@b.test>" */
	char comment[HDR_N_CLAUSES][256]; /* the clause's comments, each with its parentheses, joined
					   * by one space: "(localhost [127.0.0.1])" */
	char other[256];  /* text in no clause: before the first clause word (qmail's "(qmail 1234
			   * invoked by uid 89)", sendmail's "(from user@localhost)"), after a
			   * repeated clause word, and extension clauses (Exim's "tls TLS_AES_...") */
	char ip[64];      /* the sending host's address, without brackets or "IPv6:": the first
			   * [address-literal] in the from clause's comment ("(host [192.0.2.1])",
			   * "([IPv6:2001:db8::1])"), else a comment that is just an address ("(192.0.2.1)",
			   * Exchange's "(2603:10a6::1)"), else the from value itself when it is an
			   * address or an address literal ("[192.0.2.1]"); "" when none is found */
	char date[128];   /* the date text as written (unfolded), "" when there is no ";" */
	int64_t at;       /* hdr_date_parse(date), -1 when absent or invalid */
	int zone_min;     /* its zone, minutes east of UTC; 0 when at is -1 */
};

/* Parses one Received value (a hdr_field's value; borrowed). Never fails: what cannot be made
 * sense of lands in other, or is left out; every field gives a result. */
void hdr_received_parse(const char *value, size_t len, struct hdr_received *out);

#define HDR_MAX_HOPS 32

/* One hop of the chain: one Received field. */
struct hdr_hop {
	char from[256];  /* the from clause's value ("" for qmail's "(qmail ... invoked by uid 89)") */
	char by[256];
	char with[64];
	char id[128];
	char ip[64];     /* as in struct hdr_received */
	int64_t at;      /* Unix seconds from the date after the last ";", -1 when absent or invalid */
	double delay_s;  /* at minus the at of the nearest older hop that has one (dropped hops
			  * included); 0 for the oldest dated hop and for hops with at == -1. Negative
			  * values are kept: they show clock skew. The sum over the chain is the newest
			  * at minus the oldest at. */
};

struct hdr_chain {
	size_t n;          /* hops in hop[], min(n_received, HDR_MAX_HOPS) */
	size_t n_received; /* Received fields in the block (all of them give a hop) */
	bool truncated;    /* more than HDR_MAX_HOPS Received fields (only the newest ones are in
			    * hop[]), or the block itself was cut (hdr_iter.truncated) */
	struct hdr_hop hop[HDR_MAX_HOPS]; /* oldest (bottom-most field) first, newest (topmost) last */
};

/* Reads every Received field of block[0..len) (borrowed) into *out. Never fails; a block without
 * Received fields gives n == 0. */
void hdr_received_chain(const char *block, size_t len, struct hdr_chain *out);

/* ---- Authentication-Results (RFC 8601) ---- */

/* One resinfo ("dkim=pass (2048-bit key) header.d=example.com") of an A-R field. */
struct hdr_authres {
	char authserv_id[128]; /* of its field, without the version; "" when the field has none
				* (Exchange Online writes "Authentication-Results: spf=pass ...") */
	char method[32];       /* lowercase, without "/version": "spf", "dkim", "dmarc", "arc", ... */
	char result[24];       /* lowercase: "pass", "fail", "softfail", "bestguesspass", ... */
	char props[256];       /* the reason and the properties, each "name=value" (CFWS around "."
				* and "=" removed, values as written, quotes kept), joined by one
				* space: "reason=\"bad sig\" header.d=example.com header.s=sel" */
	char comment[128];     /* the resinfo's comments, with parentheses, joined by one space */
	unsigned field;        /* which A-R field: 0 is the topmost */
	bool counted;          /* one of the results a verdict below was taken from */
};

#define HDR_AUTH_MAX_ENTRIES 32

/* Which fields count (RFC 8601 section 5 and 7.1: a reader must ignore A-R fields that are not
 * from an authserv-id it trusts; the trusted receiving MTA must remove fields claiming its
 * authserv-id from incoming mail, and adds its own above all that came with the message):
 * - The trusted authserv-id is the filter given, or without a filter (NULL) that of the topmost
 *   A-R field. IDs compare case-insensitively; the filter "" trusts fields without an ID.
 * - For each method, the verdict comes from the topmost field with the trusted ID that reports
 *   the method. Every trusted field may count, not only the topmost: MTAs with one milter per
 *   method add one field each with the same ID (OpenDKIM, OpenDMARC, policyd-spf). Taking the
 *   topmost per method means a leftover field forged with the trusted ID below the genuine ones
 *   (an MTA that breaks the section 5 rule) cannot override a result the trusted MTA reported;
 *   it can still supply a method the trusted MTA did not report at all.
 * - In that field: the first result of the method; for dkim, "pass" when any dkim result there
 *   passes, else the first.
 * Fields of other IDs, and "none" fields, give entries but no verdicts. */
struct hdr_auth {
	char authserv_id[128]; /* the trusted ID: the filter, or the topmost field's; "" when there is
				* neither */
	char spf[24];          /* verdicts, lowercase; "" when no trusted field reports the method */
	char dkim[24];
	char dmarc[24];
	char arc[24];
	size_t n_fields;       /* A-R fields in the block */
	size_t n_trusted;      /* of them with the trusted ID */
	size_t n;              /* entries in entry[] */
	bool truncated;        /* more results than HDR_AUTH_MAX_ENTRIES (verdicts still see them
				* all), or the block itself was cut */
	struct hdr_authres entry[HDR_AUTH_MAX_ENTRIES]; /* every field's results: topmost field
							 * first, in order within a field */
};

/* Reads every Authentication-Results field of block[0..len) (borrowed) into *out, trusting
 * authserv_id (borrowed; NULL: the topmost field's). Never fails; malformed results are skipped
 * up to the next ";" and the rest of the field is still read. */
void hdr_auth_parse(const char *block, size_t len, const char *authserv_id, struct hdr_auth *out);

#endif
