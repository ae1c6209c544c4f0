/* Pure parsers for the DNS trust checks (dnscheck.c): DMARC policy records (RFC 7489), DKIM key
 * records (RFC 6376 3.6.1), DNSBL answers (RFC 5782), reverse names (in-addr.arpa, ip6.arpa, a
 * DNSBL zone), organisational domains (the public suffix list, libpsl) and identifier alignment.
 *
 * No DNS and no state: every function works on the bytes it is given. Those bytes come from DNS
 * and are untrusted: records longer than DNSREC_MAX_RECORD are refused, every output string is
 * NUL-terminated, cut to its array, and shown safe (control and non-ASCII bytes as \xHH). */
#ifndef MON_PROBE_DNSREC_H
#define MON_PROBE_DNSREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNSREC_MAX_RECORD 4096 /* bytes of one TXT record (its strings joined); more: refused */
#define DNSREC_MAX_NAME 253    /* a domain name in text form, without the trailing dot */

/* Copies s[0..n) into dst (size bytes) for display: bytes below 0x20, 0x7f and above as \xHH;
 * when it does not fit, cut (on a whole byte's form) and ended with "..." (size >= 4). */
void dnsrec_show(char *dst, size_t size, const char *s, size_t n);

/* ---- DMARC (RFC 7489 6.3, 6.4) ---- */

enum dmarc_policy { DMARC_P_NONE = 0, DMARC_P_QUARANTINE, DMARC_P_REJECT };
enum dmarc_align { DMARC_ALIGN_RELAXED = 0, DMARC_ALIGN_STRICT };

/* A value type; strings are "" when absent. */
struct dmarc_record {
	enum dmarc_policy p;
	bool p_valid;         /* false: p missing or invalid, but rua holds a URI: acts as p=none
	                       * (RFC 7489 6.6.3 step 6) */
	enum dmarc_policy sp; /* the subdomain policy; p when not given */
	bool sp_given;
	enum dmarc_align adkim, aspf; /* relaxed unless given */
	int pct;              /* 0..100, default 100 */
	char rua[256];        /* aggregate report URIs as written (shown safe) */
	char ruf[256];        /* failure report URIs */
	char notes[192];      /* what was ignored or discarded (RFC 7489 6.3: unknown tags, syntax
	                       * errors after v=), "; "-separated: "unknown tag x ignored; pct=150
	                       * is not a number from 0 to 100: 100 used"; "" when nothing */
};

/* Whether txt is a DMARC record: "v" *WSP "=" *WSP "DMARC1" (the version exact), then *WSP and
 * ';' or the end (RFC 7489 6.4; records that are not are ignored, 6.6.3). */
bool dmarc_is_record(const char *txt, size_t len);
/* Parses a DMARC record. Returns 0 with *out filled, or -1 with the reason in problem (cut to
 * problem_size; may be NULL), *out then zeroed: not a DMARC record, more than 32 tags, or a
 * missing or invalid p (or an invalid sp) without a usable rua. Other syntax errors (a malformed
 * or duplicate tag, a bad pct, adkim, aspf, fo, rf, ri, rua or ruf) are discarded for the
 * defaults and named in notes (RFC 7489 6.3). */
int dmarc_parse(const char *txt, size_t len, struct dmarc_record *out, char *problem, size_t problem_size);
/* "none" "quarantine" "reject" */
const char *dmarc_policy_name(enum dmarc_policy p);
/* "relaxed" "strict" */
const char *dmarc_align_name(enum dmarc_align a);

/* ---- DKIM key records (RFC 6376 3.6.1, RFC 8301, RFC 8463) ---- */

enum dkim_key_type { DKIM_KEY_RSA = 0, DKIM_KEY_ED25519 };

struct dkim_key {
	enum dkim_key_type type;
	int bits;         /* RSA: modulus bits; ed25519: 256 */
	bool revoked;     /* p= is empty: the key was revoked (3.6.1) */
	bool testing;     /* t=y: the domain is testing DKIM */
	bool strict;      /* t=s: the i= domain must equal d= */
	bool sha1_only;   /* h= lists only sha1 (RFC 8301: verifiers refuse it) */
	char notes[128];  /* unknown tags ignored ("" when none) */
};

/* Parses a DKIM key record and its public key (base64 DER: SubjectPublicKeyInfo or RSAPublicKey
 * for RSA, 32 raw bytes for ed25519). Returns 0 with *out filled (revoked: no key, bits 0), or -1
 * with the reason in problem: a malformed tag list, a duplicate tag, v= not first or not DKIM1,
 * no p= tag, an unknown key type k=, a service type s= without "email" or "*", bad base64, or a
 * key that does not parse. */
int dkim_key_parse(const char *txt, size_t len, struct dkim_key *out, char *problem, size_t problem_size);
/* "rsa" "ed25519" */
const char *dkim_key_type_name(enum dkim_key_type t);

/* ---- DNSBL answers (RFC 5782) ---- */

enum dnsbl_verdict { DNSBL_NOT_LISTED = 0, DNSBL_LISTED, DNSBL_ERROR };

struct dnsbl_answer {
	enum dnsbl_verdict verdict;
	char codes[128];   /* the A records answered, "127.0.0.2 127.0.0.4" (LISTED and ERROR) */
	char problem[192]; /* ERROR: what the answer means ("127.255.255.254: the list refuses
	                    * queries through public resolvers"; "192.0.2.1 is outside 127.0.0.0/8:
	                    * not a DNSBL answer"); "" otherwise */
};

/* Classifies the IPv4 addresses (4 bytes each, network order) answered to a DNSBL A query; n 0
 * means NXDOMAIN or no data: not listed. Only 127.0.0.0/8 counts: 127.0.0.1 (never a listing,
 * RFC 5782 5), 127.255.255.0/24 (the lists' error codes) and addresses outside 127/8 make the
 * whole answer an ERROR, never a listing. */
void dnsbl_classify(const uint8_t (*addrs)[4], size_t n, struct dnsbl_answer *out);

/* ---- names ---- */

/* The reverse name of ip under suffix: "4.3.2.1.SUFFIX" for 1.2.3.4, 32 nibbles for IPv6
 * (IPv4-mapped IPv6 counts as IPv4). suffix NULL: "in-addr.arpa" or "ip6.arpa" (PTR queries);
 * a DNSBL zone otherwise (a trailing dot on it is dropped). Returns 0, or -1 when ip is not an
 * address, suffix is empty, or the name would exceed DNSREC_MAX_NAME or size. */
int dnsrec_reverse_name(const char *ip, const char *suffix, char *out, size_t size);

/* The domain of an address: what follows the last '@' (lower case), without a trailing dot.
 * Returns 0, or -1 (no '@', an empty domain, an empty label, a label over 63 bytes or a domain
 * over DNSREC_MAX_NAME bytes). */
int dnsrec_address_domain(const char *address, char *out, size_t size);

struct psl_ctx_st;
/* The organisational domain (RFC 7489 3.2) of domain: its registrable domain under the public
 * suffix list psl, lower case, no trailing dot. A domain that is itself a public suffix (or has
 * none below it) is its own. Returns 0, or -1 (a domain dnsrec_address_domain would refuse, or
 * size too small). */
int dnsrec_org_domain(const struct psl_ctx_st *psl, const char *domain, char *out, size_t size);
/* Identifier alignment (RFC 7489 3.1): strict: the domains are equal (ASCII case-insensitive,
 * trailing dots ignored); relaxed: their organisational domains are. */
bool dnsrec_aligned(const struct psl_ctx_st *psl, const char *a, const char *b, enum dmarc_align mode);

#endif
