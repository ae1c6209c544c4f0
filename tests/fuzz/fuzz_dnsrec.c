/* Fuzz target: the DNS record parsers of the trust checks (probe/dnsrec.c), fed what a DNS
 * server can answer: DMARC records (dmarc_parse), DKIM key records (dkim_key_parse, OpenSSL's
 * DER parser underneath), DNSBL A answers (dnsbl_classify), reverse and DNSBL names
 * (dnsrec_reverse_name), organisational domains and alignment (libpsl), and dnsrec_show.
 *
 * Input: byte 0 picks the function (% 6), byte 1 a buffer size (1..64) for the problem text or
 * the output; the rest is the record (or, for names, "IP\nZONE"; for DNSBL, 4 bytes per address).
 * Buffers are exactly sized heap blocks, so a write past them is an ASan report. Beyond "no crash":
 * results are consistent (a refused record says why, a parsed one has values in range), every
 * string is terminated and shown safe, DNSBL verdicts and reverse names equal a reference written
 * here from RFC 5782 and RFC 3596, and parsing twice gives the same result. */
#include <arpa/inet.h>
#include <libpsl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsrec.h"
#include "support.h"

/* s is terminated within size and printable ASCII (dnsrec_show output) */
static void check_safe(const char *what, const char *s, size_t size)
{
	const char *end = memchr(s, '\0', size);
	FUZZ_CHECK(end != NULL, "%s not terminated within %zu bytes", what, size);
	for (const char *p = s; p < end; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f, "%s has byte 0x%02x", what,
			   (unsigned char)*p);
}

static void fuzz_dmarc(const char *s, size_t n, size_t psize)
{
	struct dmarc_record d, again;
	char *problem = malloc(psize);
	problem[0] = 'X';
	int rc = dmarc_parse(s, n, &d, problem, psize);
	FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
	if (rc < 0) {
		FUZZ_CHECK(memchr(problem, '\0', psize) != NULL, "problem not terminated");
		FUZZ_CHECK(psize < 2 || problem[0] != '\0', "refused without a reason");
		free(problem);
		return;
	}
	FUZZ_CHECK(dmarc_is_record(s, n), "parsed a record that is not one");
	FUZZ_CHECK(d.p <= DMARC_P_REJECT && d.sp <= DMARC_P_REJECT, "policy out of range");
	FUZZ_CHECK(d.adkim <= DMARC_ALIGN_STRICT && d.aspf <= DMARC_ALIGN_STRICT, "alignment out of range");
	FUZZ_CHECK(d.pct >= 0 && d.pct <= 100, "pct %d", d.pct);
	FUZZ_CHECK(d.p_valid || (d.p == DMARC_P_NONE && d.rua[0]), "invalid p without rua");
	FUZZ_CHECK(d.sp_given || d.sp == d.p, "sp %d without sp= differs from p %d", d.sp, d.p);
	check_safe("rua", d.rua, sizeof d.rua);
	check_safe("ruf", d.ruf, sizeof d.ruf);
	check_safe("notes", d.notes, sizeof d.notes);
	FUZZ_CHECK(dmarc_parse(s, n, &again, NULL, 0) == 0 && memcmp(&d, &again, sizeof d) == 0, "not deterministic");
	free(problem);
}

static void fuzz_dkim(const char *s, size_t n, size_t psize)
{
	struct dkim_key k, again;
	char *problem = malloc(psize);
	int rc = dkim_key_parse(s, n, &k, problem, psize);
	FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
	if (rc < 0) {
		FUZZ_CHECK(memchr(problem, '\0', psize) != NULL, "problem not terminated");
		FUZZ_CHECK(psize < 2 || problem[0] != '\0', "refused without a reason");
		free(problem);
		return;
	}
	if (k.revoked)
		FUZZ_CHECK(k.bits == 0, "revoked key with %d bits", k.bits);
	else if (k.type == DKIM_KEY_ED25519)
		FUZZ_CHECK(k.bits == 256, "ed25519 with %d bits", k.bits);
	else
		FUZZ_CHECK(k.type == DKIM_KEY_RSA && k.bits > 0 && k.bits <= 3072 * 8, "rsa with %d bits", k.bits);
	check_safe("notes", k.notes, sizeof k.notes);
	FUZZ_CHECK(dkim_key_parse(s, n, &again, NULL, 0) == 0 && memcmp(&k, &again, sizeof k) == 0, "not deterministic");
	free(problem);
}

static void fuzz_dnsbl(const unsigned char *p, size_t n)
{
	size_t na = n / 4;
	uint8_t(*a)[4] = malloc(na ? na * 4 : 1);
	memcpy(a, p, na * 4);
	struct dnsbl_answer ans;
	dnsbl_classify((const uint8_t(*)[4])a, na, &ans);
	enum dnsbl_verdict want = DNSBL_NOT_LISTED;
	for (size_t i = 0; i < na; i++) {
		bool err = a[i][0] != 127 || (a[i][1] == 0 && a[i][2] == 0 && a[i][3] == 1) ||
			   (a[i][1] == 255 && a[i][2] == 255);
		if (err)
			want = DNSBL_ERROR;
		else if (want == DNSBL_NOT_LISTED)
			want = DNSBL_LISTED;
	}
	FUZZ_CHECK(ans.verdict == want, "verdict %d, want %d", ans.verdict, want);
	check_safe("codes", ans.codes, sizeof ans.codes);
	check_safe("problem", ans.problem, sizeof ans.problem);
	FUZZ_CHECK((ans.verdict == DNSBL_ERROR) == (ans.problem[0] != '\0'), "problem iff error");
	if (na) {
		char first[16];
		snprintf(first, sizeof first, "%u.%u.%u.%u", a[0][0], a[0][1], a[0][2], a[0][3]);
		FUZZ_CHECK(strncmp(ans.codes, first, strlen(first)) == 0, "codes \"%s\" do not start with %s", ans.codes, first);
	} else {
		FUZZ_CHECK(ans.codes[0] == '\0', "codes without answers");
	}
	free(a);
}

/* reference reverse name (RFC 1035 3.5, RFC 3596 2.5) */
static int ref_reverse(const char *ip, const char *suffix, char *out, size_t size)
{
	unsigned char a[16];
	char buf[400];
	size_t o = 0;
	bool v4 = inet_pton(AF_INET, ip, a) == 1;
	if (!v4) {
		static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
		if (inet_pton(AF_INET6, ip, a) != 1)
			return -1;
		if (memcmp(a, mapped, 12) == 0) {
			memmove(a, a + 12, 4);
			v4 = true;
		}
	}
	if (v4) {
		o = (size_t)snprintf(buf, sizeof buf, "%d.%d.%d.%d.", a[3], a[2], a[1], a[0]);
	} else {
		for (int i = 15; i >= 0; i--)
			o += (size_t)snprintf(buf + o, sizeof buf - o, "%x.%x.", a[i] & 15, a[i] >> 4);
	}
	const char *sfx = suffix ? suffix : v4 ? "in-addr.arpa" : "ip6.arpa";
	size_t sl = strlen(sfx);
	if (sl && sfx[sl - 1] == '.')
		sl--;
	if (sl == 0 || sfx[0] == '.' || o + sl > DNSREC_MAX_NAME || o + sl + 1 > size)
		return -1;
	snprintf(out, size, "%.*s%.*s", (int)o, buf, (int)sl, sfx);
	return 0;
}

static void fuzz_reverse(const char *s, size_t n, size_t osize)
{
	char ip[64], zone[300];
	const char *nl = memchr(s, '\n', n);
	size_t il = nl ? (size_t)(nl - s) : n;
	if (il >= sizeof ip || memchr(s, '\0', n))
		return;
	memcpy(ip, s, il);
	ip[il] = '\0';
	const char *suffix = NULL;
	if (nl) {
		size_t zl = n - il - 1;
		if (zl >= sizeof zone)
			return;
		memcpy(zone, nl + 1, zl);
		zone[zl] = '\0';
		suffix = zone;
	}
	osize *= 5; /* up to 320: room for the longest names too */
	char *out = malloc(osize), want[400];
	int rc = dnsrec_reverse_name(ip, suffix, out, osize);
	int wrc = ref_reverse(ip, suffix, want, osize < sizeof want ? osize : sizeof want);
	FUZZ_CHECK(rc == wrc, "reverse(%s, %s) = %d, want %d", ip, suffix ? suffix : "NULL", rc, wrc);
	if (rc == 0) {
		FUZZ_CHECK(strcmp(out, want) == 0, "reverse(%s) = %s, want %s", ip, out, want);
		FUZZ_CHECK(strlen(out) <= DNSREC_MAX_NAME, "name of %zu bytes", strlen(out));
	}
	free(out);
}

static void fuzz_domains(const char *s, size_t n, size_t osize)
{
	char a[300], b[300];
	const char *nl = memchr(s, '\n', n);
	size_t al = nl ? (size_t)(nl - s) : n;
	if (al >= sizeof a || memchr(s, '\0', n))
		return;
	memcpy(a, s, al);
	a[al] = '\0';
	size_t bl = nl ? n - al - 1 : 0;
	if (bl >= sizeof b)
		return;
	memcpy(b, nl ? nl + 1 : "", bl);
	b[bl] = '\0';
	const psl_ctx_t *psl = psl_builtin();
	osize *= 5;
	char *out = malloc(osize);
	if (dnsrec_org_domain(psl, a, out, osize) == 0) {
		/* the organisational domain is the input (lower case, no trailing dot) or a tail of it */
		char low[300];
		size_t ln = strlen(a);
		if (ln && a[ln - 1] == '.')
			ln--;
		for (size_t i = 0; i < ln; i++)
			low[i] = (a[i] >= 'A' && a[i] <= 'Z') ? (char)(a[i] - 'A' + 'a') : a[i];
		low[ln] = '\0';
		size_t ol = strlen(out);
		FUZZ_CHECK(ol > 0 && ol <= ln && strcmp(low + ln - ol, out) == 0 && (ol == ln || low[ln - ol - 1] == '.'),
			   "org domain of %s is %s", a, out);
		FUZZ_CHECK(dnsrec_aligned(psl, a, a, DMARC_ALIGN_STRICT), "%s not aligned with itself", a);
		FUZZ_CHECK(dnsrec_aligned(psl, a, out, DMARC_ALIGN_RELAXED),
			   "%s not aligned (relaxed) with its organisational domain %s", a, out);
	}
	bool strict = dnsrec_aligned(psl, a, b, DMARC_ALIGN_STRICT);
	bool relaxed = dnsrec_aligned(psl, a, b, DMARC_ALIGN_RELAXED);
	FUZZ_CHECK(!strict || relaxed, "%s and %s aligned strictly but not relaxed", a, b);
	FUZZ_CHECK(strict == dnsrec_aligned(psl, b, a, DMARC_ALIGN_STRICT) &&
			   relaxed == dnsrec_aligned(psl, b, a, DMARC_ALIGN_RELAXED),
		   "alignment of %s and %s not symmetric", a, b);
	free(out);
}

static void fuzz_show(const char *s, size_t n, size_t osize)
{
	char *out = malloc(osize);
	dnsrec_show(out, osize, s, n);
	check_safe("shown", out, osize);
	bool plain = true;
	for (size_t i = 0; i < n; i++)
		plain &= (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f;
	if (plain && n < osize)
		FUZZ_CHECK(strlen(out) == n && memcmp(out, s, n) == 0, "plain text changed");
	else if (plain)
		FUZZ_CHECK(strlen(out) + 1 == osize, "plain text cut early: %zu of %zu bytes in a %zu buffer", strlen(out),
			   n, osize);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	int mode = data[0] % 6;
	size_t bsize = 1 + data[1] % 64;
	size_t n = size - 2;
	/* an exactly sized copy: a read past the record is an ASan report */
	char *s = malloc(n ? n : 1);
	memcpy(s, data + 2, n);
	switch (mode) {
	case 0: fuzz_dmarc(s, n, bsize); break;
	case 1: fuzz_dkim(s, n, bsize); break;
	case 2: fuzz_dnsbl((const unsigned char *)s, n); break;
	case 3: fuzz_reverse(s, n, bsize); break;
	case 4: fuzz_domains(s, n, bsize); break;
	default: fuzz_show(s, n, bsize); break;
	}
	free(s);
	return 0;
}
