/* Fuzz target: header blocks read back over IMAP (probe/headers.h): the field iterator,
 * unfolding, RFC 5322 dates, the Received chain and Authentication-Results.
 *
 * Input: the header block itself (so real headers are seeds as they are). The field walk is
 * compared with a reference written here; the rest is checked against invariants: every string
 * NUL-terminated within its buffer and free of control bytes, hops <= Received fields, delays
 * consistent with the dates, verdicts backed by the counted entries, and dates that parse format
 * back (checked against gmtime_r) and parse again to the same instant and zone. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "headers.h"
#include "support.h"

/* ---- reference field walk ---- */

struct ref_field {
	size_t name, name_len, value, value_len; /* offsets */
};

static bool ftext(unsigned char c) { return c >= 33 && c <= 126 && c != ':'; }

/* Content end (offset) of the line starting at i, and the start of the next line. */
static size_t ref_line(const char *b, size_t end, size_t i, size_t *next)
{
	size_t j = i;
	while (j < end && b[j] != '\n')
		j++;
	*next = j < end ? j + 1 : end;
	if (j > i && b[j - 1] == '\r')
		j--;
	return j;
}

static size_t ref_fields(const char *b, size_t len, struct ref_field *out, bool *truncated)
{
	size_t end = len > HDR_MAX_BYTES ? HDR_MAX_BYTES : len, i = 0, n = 0;
	*truncated = false;
	while (i < end) {
		size_t next, ce = ref_line(b, end, i, &next);
		if (ce == i)
			return n;
		size_t vend = ce;
		while (next < end && (b[next] == ' ' || b[next] == '\t'))
			vend = ref_line(b, end, next, &next);
		size_t k = i;
		while (k < ce && ftext((unsigned char)b[k]))
			k++;
		size_t ne = k;
		while (k < ce && (b[k] == ' ' || b[k] == '\t'))
			k++;
		if (ne > i && k < ce && b[k] == ':') {
			if (n == HDR_MAX_FIELDS) {
				*truncated = true;
				return n;
			}
			out[n++] = (struct ref_field){ i, ne - i, k + 1, vend - (k + 1) };
		}
		i = next;
	}
	*truncated = len > HDR_MAX_BYTES;
	return n;
}

/* ---- helpers ---- */

static void check_str(const char *s, size_t size, const char *what)
{
	const char *z = memchr(s, '\0', size);
	FUZZ_CHECK(z != NULL, "%s not NUL-terminated within %zu bytes", what, size);
	for (const char *p = s; p < z; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f, "%s has control byte 0x%02x", what,
			   (unsigned char)*p);
	FUZZ_CHECK(z == s || (s[0] != ' ' && z[-1] != ' '), "%s has leading or trailing space: \"%s\"", what, s);
	FUZZ_CHECK(strstr(s, "  ") == NULL, "%s has a double space: \"%s\"", what, s);
}

static bool is_lower_str(const char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			return false;
	return true;
}

/* A date that parses formats back as gmtime_r sees it, and parses again to the same. */
static void check_date(const char *s, size_t n)
{
	int zone = 99999;
	int64_t t = hdr_date_parse(s, n, &zone);
	FUZZ_CHECK(t >= -1, "date %lld", (long long)t);
	if (t == -1) {
		FUZZ_CHECK(zone == 0, "zone %d after a failure", zone);
		return;
	}
	FUZZ_CHECK(zone >= -(23 * 60 + 59) && zone <= 23 * 60 + 59, "zone %d", zone);
	char buf[40], want[64];
	FUZZ_CHECK(hdr_date_format(t, zone, buf, sizeof buf) == 0, "\"%.*s\" = %lld zone %d does not format",
		   (int)n, s, (long long)t, zone);
	static const char *wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)(t + (int64_t)zone * 60);
	struct tm tm;
	FUZZ_CHECK(gmtime_r(&tt, &tm) != NULL, "gmtime_r");
	int az = zone < 0 ? -zone : zone;
	snprintf(want, sizeof want, "%s, %d %s %04d %02d:%02d:%02d %c%02d%02d", wd[tm.tm_wday], tm.tm_mday,
		 mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, zone < 0 ? '-' : '+',
		 az / 60, az % 60);
	FUZZ_CHECK(strcmp(buf, want) == 0, "format %lld zone %d: \"%s\", libc \"%s\"", (long long)t, zone, buf, want);
	int z2;
	int64_t t2 = hdr_date_parse(buf, strlen(buf), &z2);
	FUZZ_CHECK(t2 == t && z2 == zone, "\"%s\" parses to %lld zone %d, want %lld zone %d", buf,
		   (long long)t2, z2, (long long)t, zone);
}

/* ---- the parts ---- */

static size_t check_fields(const char *b, size_t len)
{
	static struct ref_field ref[HDR_MAX_FIELDS];
	bool ref_trunc;
	size_t nref = ref_fields(b, len, ref, &ref_trunc);
	struct hdr_iter it;
	struct hdr_field f;
	size_t n = 0;

	hdr_iter_init(&it, b, len);
	while (hdr_next(&it, &f)) {
		FUZZ_CHECK(n < nref, "field %zu beyond the reference's %zu", n, nref);
		const struct ref_field *r = &ref[n];
		FUZZ_CHECK(f.name == b + r->name && f.name_len == r->name_len && f.value == b + r->value &&
				   f.value_len == r->value_len,
			   "field %zu: name +%td/%zu value +%td/%zu, want +%zu/%zu +%zu/%zu", n, f.name - b,
			   f.name_len, f.value - b, f.value_len, r->name, r->name_len, r->value, r->value_len);
		/* unfolding into a small buffer gives a prefix of the whole, cut at a boundary */
		char small[17], big[512];
		size_t bs = 1 + (f.value_len % sizeof small);
		size_t whole = hdr_unfold(f.value, f.value_len, big, sizeof big);
		size_t part = hdr_unfold(f.value, f.value_len, small, bs);
		FUZZ_CHECK(whole == part, "unfold lengths %zu and %zu", whole, part);
		FUZZ_CHECK(memchr(small, '\0', bs) != NULL, "unfold not terminated");
		size_t sl = strlen(small), bl = strlen(big);
		FUZZ_CHECK(memchr(small, '\r', sl) == NULL && memchr(small, '\n', sl) == NULL, "CR/LF after unfolding");
		FUZZ_CHECK(sl <= bl && memcmp(small, big, sl) == 0, "unfold prefix differs");
		FUZZ_CHECK(whole < sizeof big ? bl == whole : bl + 4 >= sizeof big, "unfold %zu of %zu", bl, whole);
		FUZZ_CHECK(whole < bs ? sl == whole : sl + 4 >= bs, "cut unfold %zu of %zu into %zu", sl, whole, bs);
		check_date(f.value, f.value_len);
		n++;
	}
	FUZZ_CHECK(n == nref && it.n_fields == n, "%zu fields, reference %zu", n, nref);
	FUZZ_CHECK(it.truncated == ref_trunc, "truncated %d, reference %d", it.truncated, ref_trunc);
	return n;
}

static void check_chain(const char *b, size_t len)
{
	static struct hdr_chain c;
	struct hdr_iter it;
	struct hdr_field f;
	size_t nrec = 0;

	hdr_received_chain(b, len, &c);
	hdr_iter_init(&it, b, len);
	/* each hop is its field's hdr_received_parse; fields come newest first */
	size_t keep = c.n;
	while (hdr_next_named(&it, "Received", &f)) {
		struct hdr_received r;
		hdr_received_parse(f.value, f.value_len, &r);
		for (int k = 0; k < HDR_N_CLAUSES; k++) {
			check_str(r.value[k], sizeof r.value[k], "clause value");
			check_str(r.comment[k], sizeof r.comment[k], "clause comment");
		}
		check_str(r.other, sizeof r.other, "other");
		check_str(r.date, sizeof r.date, "date");
		check_str(r.ip, sizeof r.ip, "ip");
		FUZZ_CHECK(r.at >= -1, "at %lld", (long long)r.at);
		FUZZ_CHECK(r.at != -1 || r.zone_min == 0, "zone without a date");
		/* the date text, whitespace collapsed, parses the same when it was not cut (a cut string
		 * is at least size - 6 long: a pending space, up to 3 bytes of a UTF-8 sequence and the
		 * space before them may go) */
		if (strlen(r.date) + 6 < sizeof r.date)
			FUZZ_CHECK(hdr_date_parse(r.date, strlen(r.date), NULL) == r.at, "date \"%s\": %lld", r.date,
				   (long long)r.at);
		if (nrec < keep) {
			const struct hdr_hop *h = &c.hop[keep - 1 - nrec];
			FUZZ_CHECK(h->at == r.at, "hop at %lld, field %lld", (long long)h->at, (long long)r.at);
			FUZZ_CHECK(strncmp(h->from, r.value[HDR_FROM], sizeof h->from - 5) == 0 &&
					   strncmp(h->by, r.value[HDR_BY], sizeof h->by - 5) == 0 &&
					   strncmp(h->with, r.value[HDR_WITH], sizeof h->with - 5) == 0 &&
					   strncmp(h->id, r.value[HDR_ID], sizeof h->id - 5) == 0 && strcmp(h->ip, r.ip) == 0,
				   "hop %zu differs from its field", keep - 1 - nrec);
		}
		nrec++;
	}
	FUZZ_CHECK(c.n_received == nrec, "n_received %zu, fields %zu", c.n_received, nrec);
	FUZZ_CHECK(c.n == (nrec < HDR_MAX_HOPS ? nrec : HDR_MAX_HOPS), "%zu hops of %zu", c.n, nrec);
	FUZZ_CHECK(c.truncated == (nrec > HDR_MAX_HOPS || it.truncated), "truncated %d", c.truncated);

	/* delays: 0 without a date, else at minus the previous dated hop's at */
	int64_t prev = -1, first = -1, last = -1;
	double sum = 0;
	for (size_t i = 0; i < c.n; i++) {
		const struct hdr_hop *h = &c.hop[i];
		check_str(h->from, sizeof h->from, "from");
		check_str(h->by, sizeof h->by, "by");
		check_str(h->with, sizeof h->with, "with");
		check_str(h->id, sizeof h->id, "id");
		check_str(h->ip, sizeof h->ip, "ip");
		if (h->at == -1) {
			FUZZ_CHECK(h->delay_s == 0, "hop %zu without a date has delay %g", i, h->delay_s);
			continue;
		}
		if (prev != -1)
			FUZZ_CHECK(h->delay_s == (double)(h->at - prev), "hop %zu delay %g, at %lld, previous %lld", i,
				   h->delay_s, (long long)h->at, (long long)prev);
		else if (!c.truncated)
			FUZZ_CHECK(h->delay_s == 0, "oldest dated hop %zu has delay %g", i, h->delay_s);
		if (first == -1)
			first = h->at;
		last = h->at;
		prev = h->at;
		sum += h->delay_s;
	}
	if (!c.truncated && first != -1)
		FUZZ_CHECK(sum == (double)(last - first), "delays sum to %g, newest - oldest = %lld", sum,
			   (long long)(last - first));
}

static void check_auth(const char *b, size_t len, const char *filter, size_t n_ar)
{
	static struct hdr_auth a;
	hdr_auth_parse(b, len, filter, &a);

	check_str(a.authserv_id, sizeof a.authserv_id, "authserv_id");
	FUZZ_CHECK(a.n_fields == n_ar, "n_fields %zu, A-R fields %zu", a.n_fields, n_ar);
	FUZZ_CHECK(a.n_trusted <= a.n_fields && a.n <= HDR_AUTH_MAX_ENTRIES, "counts");
	const char *verdict[4] = { a.spf, a.dkim, a.dmarc, a.arc };
	static const char *method[4] = { "spf", "dkim", "dmarc", "arc" };
	bool seen[4] = { false }, pass[4] = { false };
	const char *first[4] = { "", "", "", "" };
	for (int m = 0; m < 4; m++) {
		check_str(verdict[m], sizeof a.spf, method[m]);
		FUZZ_CHECK(is_lower_str(verdict[m]), "%s verdict \"%s\" not lowercase", method[m], verdict[m]);
	}
	unsigned prev_field = 0;
	for (size_t i = 0; i < a.n; i++) {
		const struct hdr_authres *e = &a.entry[i];
		check_str(e->authserv_id, sizeof e->authserv_id, "entry authserv_id");
		check_str(e->method, sizeof e->method, "method");
		check_str(e->result, sizeof e->result, "result");
		check_str(e->props, sizeof e->props, "props");
		check_str(e->comment, sizeof e->comment, "comment");
		FUZZ_CHECK(e->method[0] && e->result[0], "entry %zu without method or result", i);
		FUZZ_CHECK(is_lower_str(e->method) && is_lower_str(e->result), "entry %zu not lowercase", i);
		FUZZ_CHECK(e->field < a.n_fields && e->field >= prev_field, "entry %zu field %u", i, e->field);
		prev_field = e->field;
		for (int m = 0; m < 4; m++) {
			if (strcmp(e->method, method[m]) != 0 || !e->counted)
				continue;
			/* (IDs cut to their buffers may differ in the cut: see check_chain) */
			if (strlen(e->authserv_id) + 6 < sizeof e->authserv_id &&
			    strlen(a.authserv_id) + 6 < sizeof a.authserv_id)
				FUZZ_CHECK(strcasecmp(e->authserv_id, a.authserv_id) == 0,
					   "counted entry of \"%s\", trusted \"%s\"", e->authserv_id, a.authserv_id);
			if (!seen[m]) {
				FUZZ_CHECK(m == 1 || strcmp(verdict[m], e->result) == 0,
					   "%s verdict \"%s\", first counted \"%s\"", method[m], verdict[m], e->result);
				first[m] = e->result;
			}
			seen[m] = true;
			pass[m] = pass[m] || strcmp(e->result, "pass") == 0;
		}
	}
	if (!a.truncated) {
		for (int m = 0; m < 4; m++) {
			FUZZ_CHECK(seen[m] == (verdict[m][0] != '\0'), "%s verdict \"%s\" but counted entries: %d",
				   method[m], verdict[m], seen[m]);
			if (m == 1 && seen[m])
				FUZZ_CHECK(strcmp(verdict[m], pass[m] ? "pass" : first[m]) == 0,
					   "dkim verdict \"%s\", a pass: %d, first \"%s\"", verdict[m], pass[m], first[m]);
		}
	}
	if (a.n_trusted == 0)
		for (int m = 0; m < 4; m++)
			FUZZ_CHECK(verdict[m][0] == '\0', "%s verdict without a trusted field", method[m]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *b = (const char *)data;

	check_fields(b, size);
	check_chain(b, size);

	size_t n_ar = 0;
	struct hdr_iter it;
	struct hdr_field f;
	hdr_iter_init(&it, b, size);
	while (hdr_next_named(&it, "Authentication-Results", &f))
		n_ar++;
	static struct hdr_auth top;
	hdr_auth_parse(b, size, NULL, &top);
	check_auth(b, size, NULL, n_ar);
	check_auth(b, size, top.authserv_id, n_ar); /* the same ID as a filter */
	check_auth(b, size, "", n_ar);
	check_auth(b, size, "mx.example.com", n_ar);

	/* the whole input as one date */
	check_date(b, size);
	/* an instant and a zone from the first bytes: format, then parse back */
	if (size >= 10) {
		uint64_t u = 0;
		for (int i = 0; i < 8; i++)
			u = u << 8 | data[i];
		int64_t t = (int64_t)(u % UINT64_C(253402300800));
		int zone = (int)((data[8] << 8 | data[9]) % 2879) - 1439;
		char buf[40];
		if (hdr_date_format(t, zone, buf, sizeof buf) == 0)
			check_date(buf, strlen(buf));
		else
			FUZZ_CHECK(buf[0] == '\0', "failed format left \"%s\"", buf);
	}
	return 0;
}
