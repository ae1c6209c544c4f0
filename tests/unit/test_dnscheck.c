/* Unit tests: the DNS trust checks.
 *
 *  - dnsrec.c, table-driven: DMARC records (RFC 7489 6.3/6.4: tags, defaults, discarded syntax
 *    errors, the p=none-with-rua rule), DKIM key records (RFC 6376 3.6.1: tags, RSA keys as
 *    SubjectPublicKeyInfo and as RSAPublicKey, ed25519, revoked, broken keys, flags), DNSBL answers
 *    (RFC 5782: only 127.0.0.0/8 counts, 127.0.0.1 and 127.255.255.x are errors), reverse and
 *    DNSBL names (IPv4, IPv6 nibbles, IPv4-mapped), organisational domains (the public suffix list
 *    built into libpsl) and alignment, safe display. Every prefix of each valid record is parsed too
 *    (a record cut anywhere is refused or parsed, never read past).
 *  - dnscheck.c against a real dnsmasq on a free loopback port (skipped without dnsmasq): every
 *    item of two targets (status and evidence), the typed result, the organisational-domain
 *    fallback, a resolver that never answers (timeouts), cancel, freeing the context with runs
 *    going, the cap on queries in flight, and mx_port against listeners in this process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libpsl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "dns.h"
#include "dnscheck.h"
#include "dnsrec.h"
#include "evloop.h"
#include "json.h"
#include "strbuf.h"
#include "testutil.h"

/* keys (their private halves were thrown away) */
#define RSA2048 "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAlnLLh20M8GgivVwxGtWFNBfXDwkUoWgeAoyiDPWpPsEL" \
	"X+AXWAmDePOmxX7ojcog5i/Q7L9Pt5l2w29MgOcL9bPqT5G+WnlQkW5P65Al/8b4H8a26BKHEyL3+hOphXLU4G24" \
	"Y+nbupwZdmoSCPHyiYa+IJQM+IH/mTSzw759bu0Gxeoy8s6+vsLgAjR8UF+qRgtT5LEjmqX7FcBBF72+Umg4V2+C" \
	"cEfkbbOySdrV3y6VKfFNmwih9Xc+kFNXzxQa+ByniGig9xAkOSePDsI4aXNgfLrkd97YL0kfg6ZihloLQ9IA0Yr5" \
	"XYEvAwJvDX0vWmYszv1GKgAibx+IGo9wVwIDAQAB"
/* the same key as a bare RSAPublicKey (PKCS#1) */
#define RSA2048_PKCS1 "MIIBCgKCAQEAlnLLh20M8GgivVwxGtWFNBfXDwkUoWgeAoyiDPWpPsELX+AXWAmDePOmxX7ojcog5i/Q7L9Pt5l2" \
	"w29MgOcL9bPqT5G+WnlQkW5P65Al/8b4H8a26BKHEyL3+hOphXLU4G24Y+nbupwZdmoSCPHyiYa+IJQM+IH/mTSz" \
	"w759bu0Gxeoy8s6+vsLgAjR8UF+qRgtT5LEjmqX7FcBBF72+Umg4V2+CcEfkbbOySdrV3y6VKfFNmwih9Xc+kFNX" \
	"zxQa+ByniGig9xAkOSePDsI4aXNgfLrkd97YL0kfg6ZihloLQ9IA0Yr5XYEvAwJvDX0vWmYszv1GKgAibx+IGo9w" \
	"VwIDAQAB"
#define RSA1024 "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDI/+A7aeLtWmYAhSOhjcet4s4bYnV2XWijUT9PyPbCj23qngdv" \
	"2hbZ+zQeOu7z7pTWsTl4e6OET5uXQagyTO1Ek9kD7hgOf3npjfAXz5PYVw0H2ceXa8s00CXSCHAx3fAn43Pq/Ksm" \
	"N8glSIztEd6Q7WwW/Y2p2G3yFqAuGkkOOwIDAQAB"
#define RSA512 "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKN9GBHlh78WTw5d+402qLaLTtaNVC/lx/OGqg2/XZrj7BMxU4efysN3" \
	"v1Wi97XeMupmHraXbbvHeVHa0xb6RjkCAwEAAQ=="
#define EC256 "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaxK3mZCksUhLTUDHc9PCIeF8OmDV+gKzTX6w+gUsMAo93cR7Hx22" \
	"Xw4eixH6sBCIM7Vr3w5e7sw6cvNhU8Q5BQ=="
#define ED25519 "kz/wZ83uxqnf4ayCaH/K+5ICNvYHHX8WX8vTSFH2Arw="

/* prefix followed by c up to total bytes; returns owned */
static char *pad(const char *prefix, char c, size_t total)
{
	char *s = malloc(total + 1);
	size_t n = strlen(prefix);
	assert_non_null(s);
	memcpy(s, prefix, n);
	memset(s + n, c, total - n);
	s[total] = '\0';
	return s;
}

/* ---- DMARC ---- */

struct dmarc_case {
	const char *rec;
	int rc;
	enum dmarc_policy p, sp;
	bool p_valid;
	enum dmarc_align adkim, aspf;
	int pct;
	const char *rua;
	const char *text; /* rc 0: a substring of notes ("" = notes empty); rc -1: of the problem */
};

static const struct dmarc_case dmarc_cases[] = {
	{ "v=DMARC1; p=reject", 0, DMARC_P_REJECT, DMARC_P_REJECT, true, DMARC_ALIGN_RELAXED, DMARC_ALIGN_RELAXED, 100, "", "" },
	{ "v=DMARC1;p=quarantine;sp=none;adkim=s;aspf=s;pct=20;rua=mailto:a@x.test", 0, DMARC_P_QUARANTINE, DMARC_P_NONE,
	  true, DMARC_ALIGN_STRICT, DMARC_ALIGN_STRICT, 20, "mailto:a@x.test", "" },
	{ "  v = DMARC1 ;  P = Reject ; ADKIM = S ; ", 0, DMARC_P_REJECT, DMARC_P_REJECT, true, DMARC_ALIGN_STRICT,
	  DMARC_ALIGN_RELAXED, 100, "", "" },
	{ "v=DMARC1; p=none; rua=mailto:a@x.test!10m, https://r.test/x", 0, DMARC_P_NONE, DMARC_P_NONE, true,
	  DMARC_ALIGN_RELAXED, DMARC_ALIGN_RELAXED, 100, "mailto:a@x.test!10m, https://r.test/x", "" },
	{ "v=DMARC1; p=reject; pct=0", 0, DMARC_P_REJECT, DMARC_P_REJECT, true, 0, 0, 0, "", "" },
	/* syntax errors after v= are discarded for the defaults (RFC 7489 6.3) */
	{ "v=DMARC1; p=reject; pct=150", 0, DMARC_P_REJECT, DMARC_P_REJECT, true, 0, 0, 100, "", "pct=150 is not a number" },
	{ "v=DMARC1; p=reject; aspf=x", 0, DMARC_P_REJECT, DMARC_P_REJECT, true, 0, 0, 100, "", "aspf=x is neither r nor s" },
	{ "v=DMARC1; p=reject; foo=bar", 0, DMARC_P_REJECT, DMARC_P_REJECT, true, 0, 0, 100, "", "unknown tag foo ignored" },
	{ "v=DMARC1; p=reject; p=none", 0, DMARC_P_REJECT, DMARC_P_REJECT, true, 0, 0, 100, "", "duplicate tag" },
	{ "v=DMARC1; p=reject; junk", 0, DMARC_P_REJECT, DMARC_P_REJECT, true, 0, 0, 100, "", "malformed tag" },
	{ "v=DMARC1; p=reject; rua=nourl", 0, DMARC_P_REJECT, DMARC_P_REJECT, true, 0, 0, 100, "nourl", "holds no valid URI" },
	{ "v=DMARC1; p=reject; fo=2", 0, DMARC_P_REJECT, DMARC_P_REJECT, true, 0, 0, 100, "", "fo=2" },
	{ "v=DMARC1; p=reject; ri=soon", 0, DMARC_P_REJECT, DMARC_P_REJECT, true, 0, 0, 100, "", "ri=soon" },
	/* p missing or invalid: none if rua names a report address (RFC 7489 6.6.3 step 6) */
	{ "v=DMARC1; rua=mailto:a@x.test", 0, DMARC_P_NONE, DMARC_P_NONE, false, 0, 0, 100, "mailto:a@x.test",
	  "no p= tag: treated as p=none" },
	{ "v=DMARC1; p=bogus; rua=mailto:a@x.test", 0, DMARC_P_NONE, DMARC_P_NONE, false, 0, 0, 100, "mailto:a@x.test",
	  "invalid p= value" },
	{ "v=DMARC1", -1, 0, 0, false, 0, 0, 0, "", "no p= tag (and no rua=" },
	{ "v=DMARC1; p=bogus", -1, 0, 0, false, 0, 0, 0, "", "invalid p= value" },
	{ "v=DMARC1; p=reject; sp=bogus", -1, 0, 0, false, 0, 0, 0, "", "invalid sp= value" },
	/* not DMARC records */
	{ "v=DMARC2; p=reject", -1, 0, 0, false, 0, 0, 0, "", "not a DMARC record" },
	{ "v=dmarc1; p=reject", -1, 0, 0, false, 0, 0, 0, "", "not a DMARC record" },
	{ "p=reject; v=DMARC1", -1, 0, 0, false, 0, 0, 0, "", "not a DMARC record" },
	{ "v=DMARC1x; p=reject", -1, 0, 0, false, 0, 0, 0, "", "not a DMARC record" },
	{ "v=spf1 -all", -1, 0, 0, false, 0, 0, 0, "", "not a DMARC record" },
	{ "", -1, 0, 0, false, 0, 0, 0, "", "not a DMARC record" },
};

static void test_dmarc(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof dmarc_cases / sizeof dmarc_cases[0]; i++) {
		const struct dmarc_case *k = &dmarc_cases[i];
		struct dmarc_record d;
		char problem[256] = "";
		int rc = dmarc_parse(k->rec, strlen(k->rec), &d, problem, sizeof problem);
		if (rc != k->rc)
			fail_msg("dmarc \"%s\": got rc %d (%s), want %d", k->rec, rc, problem, k->rc);
		if (rc < 0) {
			if (!strstr(problem, k->text))
				fail_msg("dmarc \"%s\": got problem \"%s\", want it to contain \"%s\"", k->rec, problem, k->text);
			assert_false(dmarc_is_record(k->rec, strlen(k->rec)) && strstr(k->text, "not a DMARC"));
			continue;
		}
		if (d.p != k->p || d.sp != k->sp || d.p_valid != k->p_valid || d.adkim != k->adkim || d.aspf != k->aspf ||
		    d.pct != k->pct)
			fail_msg("dmarc \"%s\": got p=%s sp=%s valid=%d adkim=%s aspf=%s pct=%d, want p=%s sp=%s valid=%d "
				 "adkim=%s aspf=%s pct=%d",
				 k->rec, dmarc_policy_name(d.p), dmarc_policy_name(d.sp), d.p_valid, dmarc_align_name(d.adkim),
				 dmarc_align_name(d.aspf), d.pct, dmarc_policy_name(k->p), dmarc_policy_name(k->sp), k->p_valid,
				 dmarc_align_name(k->adkim), dmarc_align_name(k->aspf), k->pct);
		if (strcmp(d.rua, k->rua) != 0)
			fail_msg("dmarc \"%s\": got rua \"%s\", want \"%s\"", k->rec, d.rua, k->rua);
		if (k->text[0] ? !strstr(d.notes, k->text) : d.notes[0] != '\0')
			fail_msg("dmarc \"%s\": got notes \"%s\", want \"%s\"", k->rec, d.notes, k->text);
	}
	assert_true(dmarc_is_record("v=DMARC1", 8));
	assert_true(dmarc_is_record("v = DMARC1 ;", 12));
	assert_false(dmarc_is_record("v=DMARC", 7));
	/* a record with NUL bytes (TXT strings may hold them) */
	static const char nul[] = "v=DMARC1; p=reject; rua=mailto:a@\0x.test";
	struct dmarc_record d;
	char problem[128];
	assert_int_equal(dmarc_parse(nul, sizeof nul - 1, &d, problem, sizeof problem), 0);
	assert_non_null(strstr(d.notes, "control or non-ASCII"));
	assert_string_equal(d.rua, "");
	/* too long */
	char *big = pad("v=DMARC1; p=reject; x=", 'a', DNSREC_MAX_RECORD + 1);
	assert_int_equal(dmarc_parse(big, strlen(big), &d, problem, sizeof problem), -1);
	assert_non_null(strstr(problem, "longer than"));
	free(big);
	assert_string_equal(dmarc_policy_name(DMARC_P_QUARANTINE), "quarantine");
}

/* ---- DKIM ---- */

struct dkim_case {
	const char *rec;
	int rc;
	enum dkim_key_type type;
	int bits;
	bool revoked, testing, strict, sha1_only;
	const char *text; /* rc 0: substring of notes ("" = none); rc -1: of the problem */
};

static const struct dkim_case dkim_cases[] = {
	{ "v=DKIM1; k=rsa; p=" RSA2048, 0, DKIM_KEY_RSA, 2048, false, false, false, false, "" },
	{ "p=" RSA2048, 0, DKIM_KEY_RSA, 2048, false, false, false, false, "" },
	{ "v=DKIM1; p=" RSA2048_PKCS1, 0, DKIM_KEY_RSA, 2048, false, false, false, false, "" },
	{ "v=DKIM1; k=rsa; p=" RSA1024, 0, DKIM_KEY_RSA, 1024, false, false, false, false, "" },
	{ "v=DKIM1; p=" RSA512, 0, DKIM_KEY_RSA, 512, false, false, false, false, "" },
	{ "v=DKIM1; k=ed25519; p=" ED25519, 0, DKIM_KEY_ED25519, 256, false, false, false, false, "" },
	{ "v=DKIM1; k=rsa; p=", 0, DKIM_KEY_RSA, 0, true, false, false, false, "" },
	{ "v=DKIM1; p= ; t=y", 0, DKIM_KEY_RSA, 0, true, true, false, false, "" },
	{ "v=DKIM1; t=y:s; h=sha256; s=email; n=a note; p=" RSA1024, 0, DKIM_KEY_RSA, 1024, false, true, true, false, "" },
	{ "v=DKIM1; h=sha1; s=*; p=" RSA1024, 0, DKIM_KEY_RSA, 1024, false, false, false, true, "" },
	{ "v=DKIM1; h=sha1:sha256; p=" RSA1024, 0, DKIM_KEY_RSA, 1024, false, false, false, false, "" },
	{ "v=DKIM1; g=*; p=" RSA1024, 0, DKIM_KEY_RSA, 1024, false, false, false, false, "unknown tag g ignored" },
	/* base64 with folding whitespace inside, a trailing ';' */
	{ "v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDI/+A7aeLtWmYAhSOhjcet4s4bYnV2XWijUT9PyPbCj23qngdv \r\n\t"
	  "2hbZ+zQeOu7z7pTWsTl4e6OET5uXQagyTO1Ek9kD7hgOf3npjfAXz5PYVw0H2ceXa8s00CXSCHAx3fAn43Pq/Ksm N8glSIztEd6Q7Ww"
	  "W/Y2p2G3yFqAuGkkOOwIDAQAB;",
	  0, DKIM_KEY_RSA, 1024, false, false, false, false, "" },
	{ "v=DKIM1; k=rsa; p=" EC256, -1, 0, 0, false, false, false, false, "holds a id-ecPublicKey key" },
	{ "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAlnLLh20M8GgivVwxGtWFNBfXDwkUoWgeAoyiDPWp",
	  -1, 0, 0, false, false, false, false, "does not hold a public key" },
	{ "v=DKIM1; p=not*base64", -1, 0, 0, false, false, false, false, "not valid base64" },
	{ "v=DKIM1; p=QUJD=", -1, 0, 0, false, false, false, false, "not valid base64" },
	{ "v=DKIM1; p=QQ==QQ==", -1, 0, 0, false, false, false, false, "not valid base64" },
	{ "v=DKIM1; k=ed25519; p=" RSA1024, -1, 0, 0, false, false, false, false, "an ed25519 key has 32" },
	{ "k=rsa; v=DKIM1; p=" RSA1024, -1, 0, 0, false, false, false, false, "v= is not the first tag" },
	{ "v=DKIM2; p=" RSA1024, -1, 0, 0, false, false, false, false, "v=DKIM2, want DKIM1" },
	{ "v=DKIM1; k=dsa; p=" RSA1024, -1, 0, 0, false, false, false, false, "unknown key type k=dsa" },
	{ "v=DKIM1; k=RSA; p=" RSA1024, -1, 0, 0, false, false, false, false, "unknown key type k=RSA" },
	{ "v=DKIM1; s=tlsrpt; p=" RSA1024, -1, 0, 0, false, false, false, false, "excludes email" },
	{ "v=DKIM1; h=md5; p=" RSA1024, -1, 0, 0, false, false, false, false, "names no known hash" },
	{ "v=DKIM1; k=rsa", -1, 0, 0, false, false, false, false, "no p= tag" },
	{ "v=DKIM1; p=" RSA1024 "; p=" RSA1024, -1, 0, 0, false, false, false, false, "duplicate tag" },
	{ "v=DKIM1; p", -1, 0, 0, false, false, false, false, "malformed tag" },
	{ "v=DKIM1; 1p=x", -1, 0, 0, false, false, false, false, "malformed tag" },
	{ "", -1, 0, 0, false, false, false, false, "empty record" },
	{ "v=spf1 -all", -1, 0, 0, false, false, false, false, "v=spf1 -all, want DKIM1" },
	{ "k=rsa; p=" RSA1024 "; x", -1, 0, 0, false, false, false, false, "malformed tag \"x\"" },
};

static void test_dkim(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof dkim_cases / sizeof dkim_cases[0]; i++) {
		const struct dkim_case *k = &dkim_cases[i];
		struct dkim_key d;
		char problem[256] = "";
		int rc = dkim_key_parse(k->rec, strlen(k->rec), &d, problem, sizeof problem);
		if (rc != k->rc)
			fail_msg("dkim #%zu \"%.60s\": got rc %d (%s), want %d", i, k->rec, rc, problem, k->rc);
		if (rc < 0) {
			if (!strstr(problem, k->text))
				fail_msg("dkim #%zu: got problem \"%s\", want it to contain \"%s\"", i, problem, k->text);
			continue;
		}
		if (d.type != k->type || d.bits != k->bits || d.revoked != k->revoked || d.testing != k->testing ||
		    d.strict != k->strict || d.sha1_only != k->sha1_only)
			fail_msg("dkim #%zu: got %s %d bits revoked=%d testing=%d strict=%d sha1_only=%d, want %s %d bits "
				 "revoked=%d testing=%d strict=%d sha1_only=%d",
				 i, dkim_key_type_name(d.type), d.bits, d.revoked, d.testing, d.strict, d.sha1_only,
				 dkim_key_type_name(k->type), k->bits, k->revoked, k->testing, k->strict, k->sha1_only);
		if (k->text[0] ? !strstr(d.notes, k->text) : d.notes[0] != '\0')
			fail_msg("dkim #%zu: got notes \"%s\", want \"%s\"", i, d.notes, k->text);
	}
	/* a control byte in a value */
	static const char ctl[] = "v=DKIM1; n=a\x01z; p=";
	struct dkim_key d;
	char problem[128];
	assert_int_equal(dkim_key_parse(ctl, sizeof ctl - 1, &d, problem, sizeof problem), -1);
	assert_non_null(strstr(problem, "control or non-ASCII"));
	/* more than 32 tags */
	struct strbuf sb;
	sb_init(&sb);
	for (int i = 0; i < 40; i++)
		sb_appendf(&sb, "x%d=1;", i);
	assert_int_equal(dkim_key_parse(sb.s, sb.len, &d, problem, sizeof problem), -1);
	assert_string_equal(problem, "more than 32 tags");
	sb_fini(&sb);
	/* a problem buffer of 1 byte, and none */
	assert_int_equal(dkim_key_parse("v=DKIM2", 7, &d, problem, 1), -1);
	assert_string_equal(problem, "");
	assert_int_equal(dkim_key_parse("v=DKIM2", 7, &d, NULL, 0), -1);
}

/* Every prefix of valid records parses or is refused with a reason; the full record parses. */
static void test_prefixes(void **state)
{
	static const char *const dmarc[] = {
		"v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=r; pct=50; fo=1:d; rf=afrf; ri=3600; "
		"rua=mailto:a@x.test!10m,mailto:b@y.test; ruf=mailto:f@x.test",
	};
	static const char *const dkim[] = {
		"v=DKIM1; h=sha256; k=rsa; s=email; t=s; n=note; p=" RSA2048,
		"v=DKIM1; k=ed25519; p=" ED25519,
	};
	(void)state;
	for (size_t i = 0; i < sizeof dmarc / sizeof dmarc[0]; i++) {
		size_t n = strlen(dmarc[i]);
		for (size_t k = 0; k <= n; k++) {
			/* an exact-size heap copy: ASan sees a read past the prefix */
			char *cut = malloc(k ? k : 1);
			memcpy(cut, dmarc[i], k);
			struct dmarc_record d;
			char problem[256] = "";
			int rc = dmarc_parse(cut, k, &d, problem, sizeof problem);
			assert_true(rc == 0 || (rc == -1 && problem[0]));
			if (k == n)
				assert_int_equal(rc, 0);
			free(cut);
		}
	}
	for (size_t i = 0; i < sizeof dkim / sizeof dkim[0]; i++) {
		size_t n = strlen(dkim[i]);
		for (size_t k = 0; k <= n; k++) {
			char *cut = malloc(k ? k : 1);
			memcpy(cut, dkim[i], k);
			struct dkim_key d;
			char problem[256] = "";
			int rc = dkim_key_parse(cut, k, &d, problem, sizeof problem);
			assert_true(rc == 0 || (rc == -1 && problem[0]));
			if (k == n)
				assert_int_equal(rc, 0);
			free(cut);
		}
	}
}

/* ---- DNSBL answers ---- */

static void test_dnsbl(void **state)
{
	static const struct {
		uint8_t a[3][4];
		size_t n;
		enum dnsbl_verdict v;
		const char *codes, *problem;
	} cases[] = {
		{ { { 0 } }, 0, DNSBL_NOT_LISTED, "", "" },
		{ { { 127, 0, 0, 2 } }, 1, DNSBL_LISTED, "127.0.0.2", "" },
		{ { { 127, 0, 0, 2 }, { 127, 0, 0, 4 }, { 127, 0, 0, 10 } }, 3, DNSBL_LISTED, "127.0.0.2 127.0.0.4 127.0.0.10", "" },
		{ { { 127, 1, 2, 3 } }, 1, DNSBL_LISTED, "127.1.2.3", "" },
		{ { { 127, 0, 0, 1 } }, 1, DNSBL_ERROR, "127.0.0.1", "127.0.0.1 is never a listing" },
		{ { { 127, 255, 255, 254 } }, 1, DNSBL_ERROR, "127.255.255.254",
		  "127.255.255.254 is an error code: the list refuses queries through public resolvers" },
		{ { { 127, 255, 255, 255 } }, 1, DNSBL_ERROR, "127.255.255.255", "excessive number of queries" },
		{ { { 127, 255, 255, 252 } }, 1, DNSBL_ERROR, "127.255.255.252", "typing error in the DNSBL name" },
		{ { { 127, 255, 255, 1 } }, 1, DNSBL_ERROR, "127.255.255.1", "an error code of the list" },
		{ { { 192, 0, 2, 1 } }, 1, DNSBL_ERROR, "192.0.2.1", "192.0.2.1 is outside 127.0.0.0/8" },
		/* a listing next to an error: the whole answer is an error */
		{ { { 127, 0, 0, 2 }, { 127, 255, 255, 254 } }, 2, DNSBL_ERROR, "127.0.0.2 127.255.255.254",
		  "127.255.255.254 is an error code" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct dnsbl_answer a;
		dnsbl_classify((const uint8_t(*)[4])cases[i].a, cases[i].n, &a);
		if (a.verdict != cases[i].v || strcmp(a.codes, cases[i].codes) != 0 ||
		    (cases[i].problem[0] ? !strstr(a.problem, cases[i].problem) : a.problem[0] != '\0'))
			fail_msg("dnsbl #%zu: got verdict %d codes \"%s\" problem \"%s\", want %d \"%s\" \"%s\"", i, a.verdict,
				 a.codes, a.problem, cases[i].v, cases[i].codes, cases[i].problem);
	}
	/* many answers: codes cut, never overflowing */
	uint8_t many[64][4];
	for (int i = 0; i < 64; i++) {
		many[i][0] = 127;
		many[i][1] = 200;
		many[i][2] = 200;
		many[i][3] = (uint8_t)(100 + i);
	}
	struct dnsbl_answer a;
	dnsbl_classify((const uint8_t(*)[4])many, 64, &a);
	assert_int_equal(a.verdict, DNSBL_LISTED);
	assert_true(strlen(a.codes) < sizeof a.codes);
	assert_true(strncmp(a.codes, "127.200.200.100 127.200.200.101 ", 32) == 0);
}

/* ---- names ---- */

static void test_names(void **state)
{
	static const struct {
		const char *ip, *suffix;
		int rc;
		const char *want;
	} cases[] = {
		{ "192.0.2.1", NULL, 0, "1.2.0.192.in-addr.arpa" },
		{ "127.0.0.2", "zen.spamhaus.org", 0, "2.0.0.127.zen.spamhaus.org" },
		{ "127.0.0.2", "bl.test.", 0, "2.0.0.127.bl.test" },
		{ "2001:db8::1", NULL, 0, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa" },
		{ "2001:DB8::abcd", "bl6.test", 0, "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl6.test" },
		{ "::ffff:192.0.2.7", NULL, 0, "7.2.0.192.in-addr.arpa" },
		{ "192.0.2", NULL, -1, "" },
		{ "mx.lab.test", NULL, -1, "" },
		{ "", NULL, -1, "" },
		{ "192.0.2.1", "", -1, "" },
		{ "192.0.2.1", ".", -1, "" },
		{ "192.0.2.1", ".bl.test", -1, "" },
	};
	char out[300];
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = dnsrec_reverse_name(cases[i].ip, cases[i].suffix, out, sizeof out);
		if (rc != cases[i].rc || strcmp(out, cases[i].want) != 0)
			fail_msg("reverse(%s, %s): got %d \"%s\", want %d \"%s\"", cases[i].ip,
				 cases[i].suffix ? cases[i].suffix : "NULL", rc, out, cases[i].rc, cases[i].want);
	}
	/* the limits: 253 characters in all, and the caller's buffer */
	char zone[260];
	memset(zone, 'a', sizeof zone);
	zone[253 - 16] = '\0'; /* "1.2.0.192." is 10, "1.0.0.127." too: 237 + 10 = 247 */
	assert_int_equal(dnsrec_reverse_name("192.0.2.1", zone, out, sizeof out), 0);
	assert_int_equal(strlen(out), 247);
	zone[253 - 9] = 'a';
	zone[253 - 9 + 1] = '\0'; /* 245 + 10 = 255: too long */
	memset(zone, 'a', 245);
	assert_int_equal(dnsrec_reverse_name("192.0.2.1", zone, out, sizeof out), -1);
	assert_int_equal(dnsrec_reverse_name("192.0.2.1", "bl.test", out, 10), -1);
	assert_int_equal(dnsrec_reverse_name("192.0.2.1", "bl.test", out, 18), 0);
	assert_string_equal(out, "1.2.0.192.bl.test");
	assert_int_equal(dnsrec_reverse_name("192.0.2.1", "bl.test", out, 17), -1);

	assert_int_equal(dnsrec_address_domain("canary@Lab.TEST.", out, sizeof out), 0);
	assert_string_equal(out, "lab.test");
	assert_int_equal(dnsrec_address_domain("a@b@c.test", out, sizeof out), 0);
	assert_string_equal(out, "c.test");
	assert_int_equal(dnsrec_address_domain("nodomain", out, sizeof out), -1);
	assert_int_equal(dnsrec_address_domain("x@", out, sizeof out), -1);
	assert_int_equal(dnsrec_address_domain(NULL, out, sizeof out), -1);
}

static void test_org_domain(void **state)
{
	const psl_ctx_t *psl = psl_builtin();
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "mail.example.com", "example.com" },
		{ "example.com", "example.com" },
		{ "a.b.example.co.uk", "example.co.uk" },
		{ "MAIL.Example.COM.", "example.com" },
		{ "mail.orgdmarc.test", "orgdmarc.test" }, /* the default rule "*" for an unlisted TLD */
		{ "co.uk", "co.uk" },                      /* a public suffix is its own */
		{ "test", "test" },
	};
	char out[256];
	(void)state;
	if (!psl) {
		print_message("dnscheck: libpsl without a built-in list, organisational domains skipped\n");
		skip();
	}
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(dnsrec_org_domain(psl, cases[i].in, out, sizeof out), 0);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("org domain of %s: got %s, want %s", cases[i].in, out, cases[i].want);
	}
	assert_int_equal(dnsrec_org_domain(psl, "", out, sizeof out), -1);
	assert_int_equal(dnsrec_org_domain(psl, "example.com", out, 5), -1);
	/* without a list, the domain itself */
	assert_int_equal(dnsrec_org_domain(NULL, "Mail.Example.com", out, sizeof out), 0);
	assert_string_equal(out, "mail.example.com");

	assert_true(dnsrec_aligned(psl, "example.com", "EXAMPLE.com.", DMARC_ALIGN_STRICT));
	assert_false(dnsrec_aligned(psl, "mail.example.com", "example.com", DMARC_ALIGN_STRICT));
	assert_true(dnsrec_aligned(psl, "mail.example.com", "example.com", DMARC_ALIGN_RELAXED));
	assert_true(dnsrec_aligned(psl, "a.example.co.uk", "b.example.co.uk", DMARC_ALIGN_RELAXED));
	assert_false(dnsrec_aligned(psl, "a.example.co.uk", "b.other.co.uk", DMARC_ALIGN_RELAXED));
	assert_false(dnsrec_aligned(psl, "x.github.io", "y.github.io", DMARC_ALIGN_RELAXED)); /* private suffix */
	assert_false(dnsrec_aligned(psl, "", "example.com", DMARC_ALIGN_RELAXED));
}

static void test_show(void **state)
{
	char out[16];
	(void)state;
	dnsrec_show(out, sizeof out, "plain", 5);
	assert_string_equal(out, "plain");
	dnsrec_show(out, sizeof out, "a\nb\x7f\xc3", 5);
	assert_string_equal(out, "a\\x0ab\\x7f\\xc3");
	dnsrec_show(out, sizeof out, "0123456789abcdefghij", 20);
	assert_string_equal(out, "0123456789ab...");
	dnsrec_show(out, sizeof out, "0123456789abcde", 15); /* exactly fits */
	assert_string_equal(out, "0123456789abcde");
	dnsrec_show(out, sizeof out, "\x01\x02\x03\x04", 4); /* 16 bytes shown do not fit */
	assert_string_equal(out, "\\x01\\x02\\x03...");
	dnsrec_show(out, 1, "abc", 3);
	assert_string_equal(out, "");
	dnsrec_show(out, sizeof out, "", 0);
	assert_string_equal(out, "");
}

/* ---- the engine against dnsmasq ---- */

struct lab {
	pid_t pid;
	int port;
	char server[64];
	struct evloop *loop;
	struct dns *dns;
	struct dnscheck_ctx *ctx;
};

static int free_port(int type)
{
	int fd = socket(AF_INET, type, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static const char *find_dnsmasq(void)
{
	static const char *const paths[] = { "/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq" };
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

/* One A query for mx.seed.test; whether dnsmasq answered within 200 ms. */
static bool dnsmasq_answers(int port)
{
	unsigned char q[64] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
	size_t n = 12;
	const char *labels[] = { "mx", "seed", "test" };
	for (size_t i = 0; i < 3; i++) {
		q[n++] = (unsigned char)strlen(labels[i]);
		memcpy(q + n, labels[i], strlen(labels[i]));
		n += strlen(labels[i]);
	}
	q[n++] = 0;
	q[n++] = 0, q[n++] = 1, q[n++] = 0, q[n++] = 1;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 0, 200000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	sendto(fd, q, n, 0, (struct sockaddr *)&a, sizeof a);
	unsigned char r[512];
	ssize_t got = recv(fd, r, sizeof r, 0);
	close(fd);
	return got > 12 && r[0] == 0x12 && r[1] == 0x34;
}

#define KEY_PART1 "v=DKIM1; k=rsa; p=" RSA2048

static int lab_teardown(void **state)
{
	struct lab *l = *state;
	if (!l)
		return 0;
	dnscheck_ctx_free(l->ctx);
	dns_free(l->dns);
	if (l->loop)
		evloop_free(l->loop);
	if (l->pid > 0) {
		kill(l->pid, SIGTERM);
		waitpid(l->pid, NULL, 0);
	}
	free(l);
	*state = NULL;
	return 0;
}

static int lab_setup(void **state)
{
	const char *dnsmasq = find_dnsmasq();
	*state = NULL;
	if (!dnsmasq)
		return 0;
	struct lab *l = calloc(1, sizeof *l);
	/* the 392-byte key record as two strings (dnsmasq: one per comma-separated part) */
	char key[600];
	snprintf(key, sizeof key, "--txt-record=k1._domainkey.seed.test,%.200s,%s", KEY_PART1, &KEY_PART1[200]);
	for (int attempt = 0; attempt < 5 && l->pid <= 0; attempt++) {
		l->port = free_port(SOCK_DGRAM);
		char portarg[32];
		snprintf(portarg, sizeof portarg, "--port=%d", l->port);
		const char *argv[] = {
			dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", portarg, "--listen-address=127.0.0.1",
			"--bind-interfaces", "--no-resolv", "--no-hosts", "--no-poll", "--local=/test/",
			"--local=/127.in-addr.arpa/", "--log-facility=/dev/null",
			"--mx-host=seed.test,mx.seed.test,10", "--host-record=mx.seed.test,127.0.0.1",
			"--host-record=nomx.seed.test,127.0.0.1",
			"--txt-record=seed.test,v=spf1 ip4:127.0.0.1 -all",
			"--txt-record=seed.test,some other text",
			"--txt-record=_dmarc.seed.test,v=DMARC1; p=none; rua=mailto:d@seed.test",
			key,
			"--txt-record=bad._domainkey.seed.test,v=DKIM1; k=rsa; p=QUJD",
			"--address=/bl.test/127.0.0.2", "--txt-record=1.0.0.127.bl.test,listed for testing",
			"--address=/err.test/127.255.255.254",
			"--ptr-record=11.0.0.127.in-addr.arpa,ghost.seed.test", "--address=/ghost.seed.test/127.0.0.99",
			NULL,
		};
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int nul = open("/dev/null", O_WRONLY);
			if (nul >= 0) {
				dup2(nul, 1);
				dup2(nul, 2);
			}
			execv(dnsmasq, (char *const *)argv);
			_exit(127);
		}
		l->pid = pid;
		bool up = false;
		for (int i = 0; i < 50 && !up; i++) {
			up = dnsmasq_answers(l->port);
			if (!up && waitpid(pid, NULL, WNOHANG) == pid) {
				l->pid = 0; /* the port was taken meanwhile: another one */
				break;
			}
		}
		if (!up && l->pid > 0) {
			kill(l->pid, SIGKILL);
			waitpid(l->pid, NULL, 0);
			l->pid = 0;
		}
	}
	if (l->pid <= 0) {
		free(l);
		fail_msg("dnsmasq did not start");
	}
	snprintf(l->server, sizeof l->server, "127.0.0.1:%d", l->port);
	char *servers[] = { l->server };
	char *err = NULL;
	l->loop = evloop_new();
	l->dns = dns_new(l->loop, servers, 1, 1500, &err);
	assert_non_null(l->dns);
	l->ctx = dnscheck_ctx_new(l->loop, l->dns, 1500);
	*state = l;
	return 0;
}

struct got {
	int fired;
	bool cancelled;
	struct strbuf items; /* "name status detail\n" lines */
	struct strbuf json;
	char ip[46], ip_how[96];
	struct dnscheck_result copy; /* the value part (arrays not kept) */
	struct dnscheck_dkim dkim0;
	struct dnscheck_dnsbl dnsbl0;
};

static void on_done(void *arg, const struct dnscheck_result *r)
{
	struct got *g = arg;
	g->fired++;
	g->cancelled = r->cancelled;
	sb_init(&g->items);
	for (size_t i = 0; i < r->n_items; i++)
		sb_appendf(&g->items, "%s %s %s\n", r->items[i].name, dnscheck_status_name(r->items[i].status),
			   r->items[i].detail);
	sb_init(&g->json);
	struct json j;
	json_init(&j, &g->json);
	dnscheck_result_json(r, &j);
	g->copy = *r;
	g->copy.items = NULL;
	g->copy.dkim = NULL;
	g->copy.dnsbl = NULL;
	if (r->n_dkim)
		g->dkim0 = r->dkim[0];
	if (r->n_dnsbl)
		g->dnsbl0 = r->dnsbl[0];
}

static void got_fini(struct got *g)
{
	if (g->fired) {
		sb_fini(&g->items);
		sb_fini(&g->json);
	}
}

static void run_until(struct lab *l, const int *fired, int want, int64_t max_ms)
{
	int64_t end = mono_us() + max_ms * 1000;
	while (*fired < want && mono_us() < end)
		evloop_run_once(l->loop, 50000);
}

/* Checks that the items are exactly want: "name status" per line, each followed by the
 * substrings its detail must contain ("name status|sub1|sub2"). */
static void expect_items(const struct got *g, const char *const *want, size_t n)
{
	const char *p = g->items.s;
	for (size_t i = 0; i < n; i++) {
		const char *nl = strchr(p, '\n');
		if (!nl)
			fail_msg("item %zu: got none, want \"%s\"\nall:\n%s", i, want[i], g->items.s);
		char line[1200];
		snprintf(line, sizeof line, "%.*s", (int)(nl - p), p);
		char spec[400];
		snprintf(spec, sizeof spec, "%s", want[i]);
		char *sub = strchr(spec, '|');
		if (sub)
			*sub++ = '\0';
		size_t sl = strlen(spec);
		if (strncmp(line, spec, sl) != 0 || line[sl] != ' ')
			fail_msg("item %zu: got \"%s\", want \"%s ...\"\nall:\n%s", i, line, spec, g->items.s);
		while (sub) {
			char *next = strchr(sub, '|');
			if (next)
				*next++ = '\0';
			if (!strstr(line, sub))
				fail_msg("item %zu: got \"%s\", want it to contain \"%s\"", i, line, sub);
			sub = next;
		}
		p = nl + 1;
	}
	if (*p)
		fail_msg("more items than wanted:\n%s", p);
}

static void test_engine_targets(void **state)
{
	struct lab *l = *state;
	if (!l) {
		print_message("dnscheck: no dnsmasq, engine tests skipped\n");
		skip();
	}
	char sel_0[] = "k1", sel_1[] = "nokey", sel_2[] = "bad";
	char *sel[] = { sel_0, sel_1, sel_2 };
	char zones_0[] = "bl.test", zones_1[] = "clean.test", zones_2[] = "err.test";
	char *zones[] = { zones_0, zones_1, zones_2 };
	struct dnscheck_params p = {
		.target = "a", .domain = "seed.test", .helo = "mx.seed.test", .mail_from = "x@seed.test",
		.dkim_selectors = sel, .n_dkim_selectors = 3, .dnsbl = zones, .n_dnsbl = 3,
	};
	struct got g = { 0 };
	struct dnscheck *c = dnscheck_start(l->ctx, &p, on_done, &g);
	assert_non_null(c);
	assert_int_equal(g.fired, 0); /* never from within dnscheck_start */
	run_until(l, &g.fired, 1, 10000);
	assert_int_equal(g.fired, 1);
	static const char *const want_a[] = {
		"mx pass|mx.seed.test (10) → 127.0.0.1",
		"mx_time pass| ms",
		"ptr pass|127.0.0.1 → mx.seed.test|route toward mx.seed.test [127.0.0.1]",
		"fcrdns pass|mx.seed.test → 127.0.0.1",
		"helo pass|mx.seed.test → 127.0.0.1",
		"spf pass|ip4:127.0.0.1 in seed.test|\"v=spf1 ip4:127.0.0.1 -all\"",
		"spf_align pass|aligned (relaxed) with the From domain seed.test",
		"dmarc warn|_dmarc.seed.test|p=none applies|rua=mailto:d@seed.test|only monitors",
		"dkim:k1 pass|k1._domainkey.seed.test: rsa key, 2048 bits",
		"dkim:nokey fail|no key at nokey._domainkey.seed.test (NXDOMAIN)",
		"dkim:bad fail|broken key record|does not hold a public key",
		"dnsbl:bl.test fail|127.0.0.1 is listed: 1.0.0.127.bl.test → 127.0.0.2|\"listed for testing\"",
		"dnsbl:clean.test pass|127.0.0.1 is not listed (1.0.0.127.clean.test: NXDOMAIN)",
		"dnsbl:err.test error|127.255.255.254|not a listing|public resolvers",
	};
	expect_items(&g, want_a, sizeof want_a / sizeof want_a[0]);
	const struct dnscheck_result *r = &g.copy;
	assert_string_equal(r->target, "a");
	assert_string_equal(r->ip, "127.0.0.1");
	assert_int_equal(r->mx_status, 0);
	assert_int_equal(r->n_mx, 1);
	assert_string_equal(r->mx[0].host, "mx.seed.test");
	assert_int_equal(r->mx[0].pref, 10);
	assert_string_equal(r->mx[0].addrs.ip[0], "127.0.0.1");
	assert_true(r->mx_ms >= 0 && r->mx_ms < 1500);
	assert_int_equal(r->n_ptr, 1);
	assert_true(r->fcrdns);
	assert_true(r->helo_matches);
	assert_int_equal(r->spf.result, SPF_RESULT_PASS);
	assert_true(r->spf_aligned);
	assert_true(r->dmarc_valid);
	assert_false(r->dmarc_org);
	assert_int_equal(r->dmarc.p, DMARC_P_NONE);
	assert_string_equal(r->dmarc_at, "_dmarc.seed.test");
	assert_int_equal(g.dkim0.key.bits, 2048); /* the record's two strings were joined */
	assert_int_equal(g.dnsbl0.answer.verdict, DNSBL_LISTED);
	assert_string_equal(g.dnsbl0.reason, "listed for testing");
	assert_int_equal(r->worst, DNSCHECK_ERROR);
	assert_false(r->cancelled);
	static const char json_head[] = "{\"target\":\"a\",\"domain\":\"seed.test\",\"ip\":\"127.0.0.1\",\"checks\":["
					"{\"name\":\"mx\",\"status\":\"pass\",\"detail\":\"mx.seed.test (10) → 127.0.0.1\"},";
	if (strncmp(g.json.s, json_head, sizeof json_head - 1) != 0)
		fail_msg("json: got %.200s, want it to start with %s", g.json.s, json_head);
	got_fini(&g);

	/* a given IP whose PTR does not resolve back, an implicit MX, an address literal as EHLO,
	 * a From subdomain without SPF whose DMARC comes from its organisational domain */
	struct dnscheck_params q = {
		.target = "b", .domain = "nomx.seed.test", .ip = "127.0.0.11", .helo = "[127.0.0.11]",
		.mail_from = "x@sub.seed.test",
	};
	struct got h = { 0 };
	dnscheck_start(l->ctx, &q, on_done, &h);
	run_until(l, &h.fired, 1, 10000);
	assert_int_equal(h.fired, 1);
	static const char *const want_b[] = {
		"mx warn|nomx.seed.test has no MX records; implicit MX nomx.seed.test → 127.0.0.1",
		"mx_time pass|(no records)",
		"ptr pass|127.0.0.11 → ghost.seed.test|(sending IP: given)",
		"fcrdns fail|ghost.seed.test → 127.0.0.99, not 127.0.0.11",
		"helo warn|address literal (it matches the sending IP)",
		"spf fail|none for 127.0.0.11 from x@sub.seed.test",
		"spf_align fail|SPF none",
		"dmarc warn|_dmarc.seed.test|organisational domain of sub.seed.test|sp=none applies",
	};
	expect_items(&h, want_b, sizeof want_b / sizeof want_b[0]);
	assert_true(h.copy.dmarc_org);
	assert_true(h.copy.implicit_mx);
	assert_false(h.copy.fcrdns);
	assert_string_equal(h.copy.org_domain, "seed.test");
	got_fini(&h);

	/* a bare domain: recipient checks only; an unknown one */
	struct dnscheck_params d = { .target = "nx.test", .domain = "nx.test" };
	struct got k = { 0 };
	dnscheck_start(l->ctx, &d, on_done, &k);
	run_until(l, &k.fired, 1, 10000);
	static const char *const want_d[] = { "mx fail|nx.test does not exist (NXDOMAIN)", "mx_time pass" };
	expect_items(&k, want_d, 2);
	assert_string_equal(k.copy.ip, "");
	got_fini(&k);
}

static void test_engine_timeout(void **state)
{
	(void)state;
	/* a UDP socket that never answers */
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	char server[64];
	snprintf(server, sizeof server, "127.0.0.1:%d", ntohs(a.sin_port));
	char *servers[] = { server };
	char *err = NULL;
	struct evloop *loop = evloop_new();
	struct dns *dns = dns_new(loop, servers, 1, 300, &err);
	assert_non_null(dns);
	struct dnscheck_ctx *ctx = dnscheck_ctx_new(loop, dns, 300);
	char zones_0[] = "bl.test";
	char *zones[] = { zones_0 };
	struct dnscheck_params p = {
		.target = "t", .domain = "seed.test", .helo = "mx.seed.test", .mail_from = "x@seed.test",
		.source_ip = "127.0.0.1", .dnsbl = zones, .n_dnsbl = 1,
	};
	struct got g = { 0 };
	int64_t t0 = mono_us();
	dnscheck_start(ctx, &p, on_done, &g);
	int64_t end = mono_us() + 10 * 1000000LL;
	while (!g.fired && mono_us() < end)
		evloop_run_once(loop, 50000);
	assert_int_equal(g.fired, 1);
	assert_true(mono_us() - t0 < 5 * 1000000LL);
	static const char *const want[] = {
		"mx fail|MX lookup for seed.test: DNS timeout after 300 ms",
		"mx_time fail|no answer within 300 ms",
		"ptr error|DNS timeout|(sending IP: source_ip)",
		"fcrdns error|PTR lookup failed: DNS timeout",
		"helo error|lookup of the EHLO name mx.seed.test: DNS timeout",
		"spf error|temperror",
		"spf_align error|temperror",
		"dmarc error|DMARC lookup _dmarc.seed.test: DNS timeout",
		"dnsbl:bl.test error|1.0.0.127.bl.test: DNS timeout",
	};
	expect_items(&g, want, sizeof want / sizeof want[0]);
	assert_int_equal(g.copy.mx_status, ARES_ETIMEOUT);
	got_fini(&g);
	dnscheck_ctx_free(ctx);
	dns_free(dns);
	evloop_free(loop);
	close(fd);
}

static void test_engine_cancel(void **state)
{
	struct lab *l = *state;
	if (!l)
		skip();
	char sel_0[] = "k1";
	char *sel[] = { sel_0 };
	char zones_0[] = "bl.test";
	char *zones[] = { zones_0 };
	struct dnscheck_params p = {
		.target = "c", .domain = "seed.test", .helo = "mx.seed.test", .mail_from = "x@seed.test",
		.source_ip = "127.0.0.1", .dkim_selectors = sel, .n_dkim_selectors = 1, .dnsbl = zones, .n_dnsbl = 1,
	};
	/* cancelled at once: done fires within the cancel, every check an error */
	struct got g = { 0 };
	struct dnscheck *c = dnscheck_start(l->ctx, &p, on_done, &g);
	dnscheck_cancel(c);
	assert_int_equal(g.fired, 1);
	assert_true(g.cancelled);
	assert_non_null(strstr(g.items.s, "mx error cancelled before an answer\n"));
	assert_non_null(strstr(g.items.s, "spf error cancelled before an answer\n"));
	assert_non_null(strstr(g.items.s, "dkim:k1 error cancelled"));
	assert_non_null(strstr(g.items.s, "dnsbl:bl.test error cancelled"));
	assert_null(strstr(g.items.s, " pass "));
	dnscheck_cancel(NULL);
	/* the answers of the cancelled run arrive and are dropped; a new run still works */
	struct got h = { 0 };
	dnscheck_start(l->ctx, &p, on_done, &h);
	run_until(l, &h.fired, 1, 10000);
	assert_int_equal(h.fired, 1);
	assert_int_equal(g.fired, 1);
	assert_non_null(strstr(h.items.s, "mx pass"));
	assert_non_null(strstr(h.items.s, "dkim:k1 pass"));
	got_fini(&g);
	got_fini(&h);

	/* cancelled half-way: some answers in, others not */
	struct got m = { 0 };
	c = dnscheck_start(l->ctx, &p, on_done, &m);
	for (int i = 0; i < 2 && !m.fired; i++)
		evloop_run_once(l->loop, 2000);
	if (!m.fired) {
		dnscheck_cancel(c);
		assert_int_equal(m.fired, 1);
		assert_true(m.cancelled);
	}
	for (int i = 0; i < 20; i++)
		evloop_run_once(l->loop, 20000);
	assert_int_equal(m.fired, 1);
	got_fini(&m);

	/* the context freed with runs going: each done fires once */
	struct dns *dns2;
	char *servers[] = { l->server };
	char *err = NULL;
	dns2 = dns_new(l->loop, servers, 1, 1500, &err);
	struct dnscheck_ctx *ctx2 = dnscheck_ctx_new(l->loop, dns2, 1500);
	struct got x[3];
	memset(x, 0, sizeof x);
	for (int i = 0; i < 3; i++)
		dnscheck_start(ctx2, &p, on_done, &x[i]);
	/* (no loop iteration: dnsmasq on loopback can answer a whole run within one) */
	dnscheck_ctx_free(ctx2);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(x[i].fired, 1);
		if (!x[i].cancelled)
			fail_msg("run %d not cancelled:\n%s", i, x[i].items.s);
		got_fini(&x[i]);
	}
	dns_free(dns2); /* the queries still in flight end here, into the void */
	for (int i = 0; i < 3; i++)
		assert_int_equal(x[i].fired, 1);

	/* the resolver freed before the context, with a run going: it ends with errors */
	dns2 = dns_new(l->loop, servers, 1, 1500, &err);
	ctx2 = dnscheck_ctx_new(l->loop, dns2, 1500);
	struct got y = { 0 };
	dnscheck_start(ctx2, &p, on_done, &y);
	dns_free(dns2);
	run_until(l, &y.fired, 1, 5000);
	assert_int_equal(y.fired, 1);
	assert_false(y.cancelled);
	assert_non_null(strstr(y.items.s, "mx fail MX lookup for seed.test: resolver shut down"));
	assert_non_null(strstr(y.items.s, "spf error"));
	dnscheck_ctx_free(ctx2);
	got_fini(&y);
}

static void test_engine_cap(void **state)
{
	struct lab *l = *state;
	if (!l)
		skip();
	enum { N = 60 };
	char sel_0[] = "k1", sel_1[] = "nokey";
	char *sel[] = { sel_0, sel_1 };
	char zones_0[] = "bl.test", zones_1[] = "clean.test";
	char *zones[] = { zones_0, zones_1 };
	struct dnscheck_params p = {
		.target = "cap", .domain = "seed.test", .helo = "mx.seed.test", .mail_from = "x@seed.test",
		.source_ip = "127.0.0.1", .dkim_selectors = sel, .n_dkim_selectors = 2, .dnsbl = zones, .n_dnsbl = 2,
	};
	static struct got g[N];
	int done = 0;
	memset(g, 0, sizeof g);
	for (int i = 0; i < N; i++)
		dnscheck_start(l->ctx, &p, on_done, &g[i]);
	int64_t end = mono_us() + 30 * 1000000LL;
	while (done < N && mono_us() < end) {
		evloop_run_once(l->loop, 50000);
		done = 0;
		for (int i = 0; i < N; i++)
			done += g[i].fired;
	}
	assert_int_equal(done, N);
	assert_int_equal(dnscheck_ctx_peak(l->ctx), DNSCHECK_MAX_IN_FLIGHT);
	for (int i = 0; i < N; i++) {
		assert_int_equal(g[i].fired, 1);
		if (!strstr(g[i].items.s, "spf pass") || !strstr(g[i].items.s, "dkim:k1 pass") ||
		    !strstr(g[i].items.s, "dnsbl:bl.test fail"))
			fail_msg("run %d:\n%s", i, g[i].items.s);
		got_fini(&g[i]);
	}
}

/* mx_port against listeners of this process, served from the same loop */
struct listener {
	int fd;
	const char *greeting; /* NULL: accept and close at once */
	struct evloop *loop;
};

static void on_accept(void *arg, int fd, unsigned events)
{
	struct listener *s = arg;
	(void)events;
	int c = accept(fd, NULL, NULL);
	if (c < 0)
		return;
	if (s->greeting && write(c, s->greeting, strlen(s->greeting)) < 0)
		fail_msg("write: %s", strerror(errno));
	close(c);
}

static int listener_open(struct listener *s, struct evloop *loop, const char *greeting)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	s->greeting = greeting;
	s->loop = loop;
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(s->fd, 8), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
	evloop_fd_set(loop, s->fd, EVLOOP_READ, on_accept, s);
	return ntohs(a.sin_port);
}

static void listener_close(struct listener *s)
{
	evloop_fd_del(s->loop, s->fd);
	close(s->fd);
}

static void test_engine_port(void **state)
{
	struct lab *l = *state;
	if (!l)
		skip();
	static const struct {
		const char *greeting; /* "-": nobody listening */
		const char *want;
	} cases[] = {
		{ "220 unit.test ESMTP ready\r\n", "mx_port pass|mx.seed.test [127.0.0.1]:PORT: 220 unit.test ESMTP ready" },
		{ "220-unit.test first\r\n220 second\r\n", "mx_port pass|220-unit.test first" },
		{ "554 5.7.1 go away\r\n", "mx_port fail|554 5.7.1 go away" },
		{ "421 busy \x01\r\n", "mx_port fail|421 busy \\x01" },
		{ "hello\r\n", "mx_port fail|not an SMTP greeting" },
		{ NULL, "mx_port fail|connection closed without a greeting" },
		{ "-", "mx_port fail|Connection refused" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct listener s;
		int port;
		if (cases[i].greeting && strcmp(cases[i].greeting, "-") == 0) {
			port = free_port(SOCK_STREAM);
			s.fd = -1;
		} else {
			port = listener_open(&s, l->loop, cases[i].greeting);
		}
		struct dnscheck_params p = { .target = "p", .domain = "seed.test", .port = port,
					     .connect_timeout_ms = 2000, .banner_timeout_ms = 2000 };
		struct got g = { 0 };
		dnscheck_start(l->ctx, &p, on_done, &g);
		run_until(l, &g.fired, 1, 10000);
		assert_int_equal(g.fired, 1);
		char want[200], pnum[16];
		snprintf(pnum, sizeof pnum, "%d", port);
		const char *w = cases[i].want, *at = strstr(w, "PORT");
		if (at)
			snprintf(want, sizeof want, "%.*s%s%s", (int)(at - w), w, pnum, at + 4);
		else
			snprintf(want, sizeof want, "%s", w);
		const char *items[] = { "mx pass", "mx_time pass", want };
		expect_items(&g, items, 3);
		got_fini(&g);
		if (s.fd >= 0)
			listener_close(&s);
	}
}

/* probe/dns.c's cap: MX and address lookups and raw queries (the DNS checks', SPF's) together
 * never have more than 150 queries out; the rest wait and still get their answer (here: a
 * timeout from a server that never answers). */
static int cap_calls;
static void cap_on_mx(void *arg, int status, const struct dns_mx *mx, size_t n, double ms)
{
	(void)arg; (void)status; (void)mx; (void)n; (void)ms;
	cap_calls++;
}
static void cap_on_raw(void *arg, int status, const unsigned char *abuf, int alen, double ms)
{
	(void)arg; (void)status; (void)abuf; (void)alen; (void)ms;
	cap_calls++;
}

static void test_dns_cap(void **state)
{
	(void)state;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	char server[64];
	snprintf(server, sizeof server, "127.0.0.1:%d", ntohs(a.sin_port));
	char *servers[] = { server };
	char *err = NULL;
	struct evloop *loop = evloop_new();
	struct dns *dns = dns_new(loop, servers, 1, 200, &err);
	assert_non_null(dns);
	cap_calls = 0;
	for (int i = 0; i < 120; i++) {
		char name[64];
		snprintf(name, sizeof name, "d%d.cap.test", i);
		dns_lookup_mx(dns, name, cap_on_mx, NULL);
		snprintf(name, sizeof name, "t%d.cap.test", i);
		dns_query_raw(dns, name, ns_t_txt, cap_on_raw, NULL);
	}
	int64_t end = mono_us() + 20 * 1000000LL;
	while (cap_calls < 240 && mono_us() < end)
		evloop_run_once(loop, 50000);
	assert_int_equal(cap_calls, 240);
	assert_int_equal(dns_peak(dns), 150);
	dns_free(dns);
	evloop_free(loop);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dmarc),
		cmocka_unit_test(test_dkim),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_dnsbl),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_org_domain),
		cmocka_unit_test(test_show),
		cmocka_unit_test_setup_teardown(test_engine_targets, lab_setup, lab_teardown),
		cmocka_unit_test(test_engine_timeout),
		cmocka_unit_test(test_dns_cap),
		cmocka_unit_test_setup_teardown(test_engine_cancel, lab_setup, lab_teardown),
		cmocka_unit_test_setup_teardown(test_engine_cap, lab_setup, lab_teardown),
		cmocka_unit_test_setup_teardown(test_engine_port, lab_setup, lab_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
