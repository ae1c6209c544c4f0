#include "message.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "strbuf.h"

int message_new_probe_id(char *buf, size_t len, int64_t now_ms)
{
	unsigned char rnd[12];
	if (len < 33 || RAND_bytes(rnd, sizeof rnd) != 1)
		return -1;
	int n = snprintf(buf, len, "%08llx", (unsigned long long)(now_ms / 1000) & 0xffffffffULL);
	for (size_t i = 0; i < sizeof rnd; i++)
		n += snprintf(buf + n, len - (size_t)n, "%02x", rnd[i]);
	return 0;
}

static const char *domain_of(const char *addr, const char *fallback)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;
	return at && at[1] ? at + 1 : fallback;
}

char *message_build(const struct message_params *p)
{
	struct strbuf sb;
	char date[64], iso[32];
	sb_init(&sb);
	sb_appendf(&sb, "Date: %s\r\n", rfc5322_date(p->date_ms, date, sizeof date));
	sb_appendf(&sb, "From: mailcanary <%s>\r\n", p->from);
	sb_appendf(&sb, "To: <%s>\r\n", p->to);
	sb_appendf(&sb, "Subject: mailcanary probe %s %s\r\n", p->seed, p->probe_id);
	sb_appendf(&sb, "Message-ID: <%s@%s>\r\n", p->probe_id, domain_of(p->from, p->helo));
	sb_append(&sb, "MIME-Version: 1.0\r\n");
	sb_append(&sb, "Content-Type: text/plain; charset=us-ascii\r\n");
	sb_append(&sb, "Content-Transfer-Encoding: 7bit\r\n");
	sb_appendf(&sb, "%s: %s\r\n", PROBE_TOKEN_HEADER, p->token);
	for (size_t i = 0; i < p->n_headers; i++)
		sb_appendf(&sb, "%s\r\n", p->headers[i]);
	for (size_t i = 0; i < p->n_headers2; i++)
		sb_appendf(&sb, "%s\r\n", p->headers2[i]);
	sb_append(&sb, "\r\n");
	sb_appendf(&sb, "This is a delivery probe sent by mailcanary, a mail deliverability monitor.\r\n"
			"\r\n"
			"Seed:     %s\r\n"
			"Probe id: %s\r\n"
			"Sent at:  %s\r\n"
			"\r\n"
			"It was sent to a mailbox that exists for monitoring. If you see it, you may delete it.\r\n",
		    p->seed, p->probe_id, iso8601_ms(p->date_ms, iso, sizeof iso));
	return sb_steal(&sb);
}
