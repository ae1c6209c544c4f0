/* Value checks used by the schema: names, addresses, host names, header lines, schedules,
 * DNS servers, URLs and files. Each returns 0, or -1 with *err set to an owned message that
 * does not repeat the key. */
#include "conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_internal.h"
#include "schedule.h"
#include "strbuf.h"
#include "xalloc.h"


int conf_fail(char **err, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;

	sb_init(&sb);
	va_start(ap, fmt);
	sb_vappendf(&sb, fmt, ap);
	va_end(ap);
	*err = sb_steal(&sb);
	sb_fini(&sb);
	return -1;
}

char *conf_quote(const char *s)
{
	struct strbuf sb;
	size_t n = 0;

	sb_init(&sb);
	sb_appendc(&sb, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++) {
		if (n == 120) {
			sb_append(&sb, "...");
			break;
		}
		switch (*p) {
		case '\r': sb_append(&sb, "\\r"); break;
		case '\n': sb_append(&sb, "\\n"); break;
		case '\t': sb_append(&sb, "\\t"); break;
		case '"': sb_append(&sb, "\\\""); break;
		case '\\': sb_append(&sb, "\\\\"); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				sb_appendf(&sb, "\\x%02x", *p);
			else
				sb_appendc(&sb, (char)*p);
		}
	}
	sb_appendc(&sb, '"');
	char *q = sb_steal(&sb);
	sb_fini(&sb);
	return q;
}

int conf_failq(char **err, const char *value, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;
	char *q = conf_quote(value);

	sb_init(&sb);
	sb_append(&sb, q);
	free(q);
	sb_appendc(&sb, ' ');
	va_start(ap, fmt);
	sb_vappendf(&sb, fmt, ap);
	va_end(ap);
	*err = sb_steal(&sb);
	sb_fini(&sb);
	return -1;
}

static bool is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool has_ctl_or_space(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return true;
	return false;
}

static bool ip4_ok(const char *s)
{
	struct in_addr a;
	return inet_pton(AF_INET, s, &a) == 1;
}

static bool ip6_ok(const char *s)
{
	struct in6_addr a;
	return inet_pton(AF_INET6, s, &a) == 1;
}

static bool ip6n_ok(const char *s, size_t n)
{
	char buf[INET6_ADDRSTRLEN + 8];
	if (n >= sizeof buf)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return ip6_ok(buf);
}

/* 1..65535, digits only. */
static bool port_ok(const char *s)
{
	long v = 0;
	size_t n = 0;
	for (; s[n]; n++) {
		if (s[n] < '0' || s[n] > '9' || n >= 5)
			return false;
		v = v * 10 + (s[n] - '0');
	}
	return n > 0 && v >= 1 && v <= 65535;
}

bool conf_hostname_ok(const char *s, bool need_dot)
{
	size_t len = strlen(s), labels = 0;
	const char *p = s, *last = s;

	if (len == 0 || len > 253)
		return false;
	while (*p) {
		const char *start = p;
		while (*p && *p != '.') {
			if (!is_alnum((unsigned char)*p) && *p != '-')
				return false;
			p++;
		}
		size_t n = (size_t)(p - start);
		if (n == 0 || n > 63 || start[0] == '-' || p[-1] == '-')
			return false;
		labels++;
		last = start;
		if (*p == '.') {
			p++;
			if (!*p)
				return false; /* trailing dot */
		}
	}
	if (need_dot) {
		if (labels < 2)
			return false;
		bool digits = true;
		for (const char *q = last; *q; q++)
			if (*q < '0' || *q > '9')
				digits = false;
		if (digits)
			return false;
	}
	return true;
}

/* Host name, IPv4, or (with brackets when port may follow) IPv6; with an optional :port. */
static bool hostport_ok(const char *s, bool need_port)
{
	const char *colon;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || !ip6n_ok(s + 1, (size_t)(close - s - 1)))
			return false;
		if (close[1] == '\0')
			return !need_port;
		return close[1] == ':' && port_ok(close + 2);
	}
	colon = strchr(s, ':');
	if (!colon)
		return !need_port && conf_hostname_ok(s, false);
	if (strchr(colon + 1, ':'))
		return false;
	char *host = xstrndup(s, (size_t)(colon - s));
	bool ok = conf_hostname_ok(host, false) && port_ok(colon + 1);
	free(host);
	return ok;
}

int conf_check_nonempty(const char *s, char **err)
{
	if (!*s)
		return conf_fail(err, "must not be empty");
	return 0;
}

int conf_check_name(const char *s, char **err)
{
	size_t n = strlen(s);
	bool ok = n >= 1 && n <= 64 && is_alnum((unsigned char)s[0]);

	for (size_t i = 0; ok && i < n; i++)
		if (!is_alnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			ok = false;
	if (!ok)
		return conf_failq(err, s, "is not a valid name (1 to 64 letters, digits, '.', '_' or '-', "
				     "starting with a letter or digit)");
	return 0;
}

int conf_check_envname(const char *s, char **err)
{
	bool ok = (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_';

	for (size_t i = 1; ok && s[i]; i++)
		if (!is_alnum((unsigned char)s[i]) && s[i] != '_')
			ok = false;
	if (!ok)
		return conf_failq(err, s, "is not an environment variable name (letters, digits and '_', "
				     "not starting with a digit)");
	return 0;
}

static bool atext(int c)
{
	return is_alnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

int conf_check_address(const char *s, char **err)
{
	const char *at = strrchr(s, '@');

	if (!at || at == s || !at[1])
		return conf_failq(err, s, "is not an address of the form local@domain");
	if (strchr(s, '@') != at)
		return conf_failq(err, s, "has more than one '@'");
	if (strlen(s) > 254)
		return conf_failq(err, s, "is longer than 254 characters");
	size_t ln = (size_t)(at - s);
	if (ln > 64)
		return conf_failq(err, s, "has a local part longer than 64 characters");
	for (size_t i = 0; i < ln; i++) {
		bool dot = s[i] == '.';
		if (!atext((unsigned char)s[i]) && !dot)
			return conf_failq(err, s, "has a character not allowed in the local part "
					     "(quoted local parts are not supported)");
		if (dot && (i == 0 || i == ln - 1 || s[i + 1] == '.'))
			return conf_failq(err, s, "has a misplaced '.' in the local part");
	}
	if (!conf_hostname_ok(at + 1, true))
		return conf_failq(err, s, "does not have a plausible mail domain after the '@'");
	return 0;
}

int conf_check_helo(const char *s, char **err)
{
	size_t n = strlen(s);

	if (s[0] == '[') {
		bool ok = false;
		if (n > 2 && s[n - 1] == ']') {
			char *in = xstrndup(s + 1, n - 2);
			if (strncasecmp(in, "IPv6:", 5) == 0)
				ok = ip6_ok(in + 5);
			else
				ok = ip4_ok(in);
			free(in);
		}
		if (!ok)
			return conf_failq(err, s, "is not an address literal such as \"[192.0.2.1]\" or "
					     "\"[IPv6:2001:db8::1]\"");
		return 0;
	}
	if (!conf_hostname_ok(s, false))
		return conf_failq(err, s, "is not a host name or an address literal such as "
				     "\"[192.0.2.1]\"");
	return 0;
}

int conf_check_host(const char *s, char **err)
{
	if (ip4_ok(s) || ip6_ok(s) || conf_hostname_ok(s, false))
		return 0;
	return conf_failq(err, s, "is not a host name or IP address");
}

int conf_check_ip(const char *s, char **err)
{
	if (ip4_ok(s) || ip6_ok(s))
		return 0;
	return conf_failq(err, s, "is not an IPv4 or IPv6 address");
}

int conf_check_dns_server(const char *s, char **err)
{
	const char *colon = strchr(s, ':');
	bool ok;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		ok = close && ip6n_ok(s + 1, (size_t)(close - s - 1)) &&
		     (close[1] == '\0' || (close[1] == ':' && port_ok(close + 2)));
	} else if (ip4_ok(s)) {
		ok = true;
	} else if (colon && !strchr(colon + 1, ':')) {
		char *ip = xstrndup(s, (size_t)(colon - s));
		ok = ip4_ok(ip) && port_ok(colon + 1);
		free(ip);
	} else {
		ok = ip6_ok(s);
	}
	if (!ok)
		return conf_failq(err, s, "is not a name server address: use \"ip\", \"ip:port\" or "
				     "\"[ipv6]:port\" (port 1 to 65535)");
	return 0;
}

int conf_check_zone(const char *s, char **err)
{
	if (!conf_hostname_ok(s, true))
		return conf_failq(err, s, "is not a DNS zone name such as \"zen.spamhaus.org\"");
	return 0;
}

/* A DKIM selector (RFC 6376 3.1): dot-separated labels of letters, digits and '-'. */
int conf_check_dkim_selector(const char *s, char **err)
{
	if (strlen(s) > 63 * 2 + 1 || !conf_hostname_ok(s, false))
		return conf_failq(err, s, "is not a DKIM selector such as \"mail\" or \"s2024.eu\" (labels of "
				     "letters, digits and '-', at most 127 characters)");
	return 0;
}

int conf_check_imap_url(const char *s, char **err)
{
	const char *rest;

	if (strncmp(s, "imaps://", 8) == 0)
		rest = s + 8;
	else if (strncmp(s, "imap://", 7) == 0)
		rest = s + 7;
	else
		return conf_failq(err, s, "must start with imap:// or imaps://");
	if (has_ctl_or_space(s))
		return conf_failq(err, s, "contains a space or a control character");
	size_t alen = strcspn(rest, "/?#");
	char *auth = xstrndup(rest, alen);
	int rc = 0;
	if (strchr(auth, '@'))
		rc = conf_failq(err, s, "must not hold a user name or password: use username and "
				   "password_file or password_env");
	else if (!*auth)
		rc = conf_failq(err, s, "has no host");
	else if (!hostport_ok(auth, false))
		rc = conf_failq(err, s, "does not have a valid host[:port] (port 1 to 65535)");
	free(auth);
	return rc;
}

static const char *const probe_headers[] = {
	"Date", "From", "To", "Subject", "Message-ID", "MIME-Version", "X-Mailcanary-Token", NULL,
};

int conf_check_header(const char *s, char **err)
{
	const char *colon = strchr(s, ':');
	size_t nlen;

	if (strpbrk(s, "\r\n"))
		return conf_failq(err, s, "contains CR or LF: one header line per entry, no folding");
	if (!colon || colon == s)
		return conf_failq(err, s, "is not a header line of the form \"Name: value\"");
	nlen = (size_t)(colon - s);
	for (size_t i = 0; i < nlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 32 || c >= 127)
			return conf_failq(err, s, "has an invalid header field name (printable ASCII, no "
					     "spaces, before the ':')");
	}
	for (const unsigned char *p = (const unsigned char *)colon + 1; *p; p++) {
		if ((*p < 32 && *p != '\t') || *p == 127)
			return conf_failq(err, s, "contains a control character");
		if (*p >= 128)
			return conf_failq(err, s, "contains non-ASCII bytes");
	}
	if (colon[1 + strspn(colon + 1, " \t")] == '\0')
		return conf_failq(err, s, "has an empty value");
	if (strlen(s) > 998)
		return conf_failq(err, s, "is longer than 998 characters");
	for (size_t i = 0; probe_headers[i]; i++)
		if (strlen(probe_headers[i]) == nlen && strncasecmp(s, probe_headers[i], nlen) == 0)
			return conf_failq(err, s, "sets %s, which the probe sets itself", probe_headers[i]);
	return 0;
}

/* ---- schedules ---- */

/* One parser: schedule_parse (schedule.c) also gives the scheduler its fire times. */
int conf_schedule_check(const char *s, char **err)
{
	struct schedule sc;

	return schedule_parse(s, &sc, err);
}

/* ---- files ---- */

int conf_check_secret_file(const char *s, char **err)
{
	struct stat st;

	if (stat(s, &st) == -1)
		return conf_failq(err, s, "cannot be used: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return conf_failq(err, s, "is not a regular file");
	if (st.st_mode & 077)
		return conf_failq(err, s, "is accessible by group or others (mode %04o): make it 0600 or "
				     "0400", (unsigned)(st.st_mode & 07777));
	if (access(s, R_OK) == -1)
		return conf_failq(err, s, "cannot be read: %s", strerror(errno));
	return 0;
}

int conf_check_readable_file(const char *s, char **err)
{
	struct stat st;

	if (stat(s, &st) == -1)
		return conf_failq(err, s, "cannot be used: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return conf_failq(err, s, "is not a regular file");
	if (access(s, R_OK) == -1)
		return conf_failq(err, s, "cannot be read: %s", strerror(errno));
	return 0;
}

int conf_check_rrdcached(const char *s, char **err)
{
	if (strncmp(s, "unix:", 5) == 0 ? s[5] == '/' : (s[0] == '/' || hostport_ok(s, false)))
		return 0;
	if (strncmp(s, "unix:", 5) == 0 && s[5])
		return conf_failq(err, s, "names a relative socket path: use \"unix:/absolute/path\"");
	return conf_failq(err, s, "is not \"unix:/path\", \"/path\" or \"host:port\"");
}

int conf_check_cleanup(const char *s, char **err)
{
	if (strcmp(s, "delete") == 0 || strcmp(s, "keep") == 0)
		return 0;
	if (strncmp(s, "move:", 5) == 0)
		return s[5] ? conf_check_folder(s + 5, err) : conf_failq(err, s, "names no folder (e.g. \"move:Trash\")");
	return conf_failq(err, s, "is not \"delete\", \"keep\" or \"move:FOLDER\"");
}

int conf_check_folder(const char *s, char **err)
{
	if (!*s)
		return conf_fail(err, "must not be empty");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 32 || *p == 127)
			return conf_failq(err, s, "contains a control character");
	return 0;
}
