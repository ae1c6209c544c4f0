/* The probe message (RFC 5322) and its identity. */
#ifndef MON_PROBE_MESSAGE_H
#define MON_PROBE_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#define PROBE_TOKEN_HEADER "X-Mailcanary-Token"

struct message_params {
	const char *seed;        /* seed name */
	const char *probe_id;
	const char *token;       /* value of the token header */
	const char *from;        /* envelope sender, also From: */
	const char *to;          /* recipient */
	const char *helo;        /* used for the Message-ID's right-hand side */
	int64_t date_ms;
	char *const *headers;    /* extra "Name: value" lines (sender's, then seed's) */
	size_t n_headers;
	char *const *headers2;
	size_t n_headers2;
};

/* Fills buf (>= 33 bytes) with a new probe id: 8 hex digits of time and 24 random hex digits.
 * Returns 0, or -1 when the random source fails. */
int message_new_probe_id(char *buf, size_t len, int64_t now_ms);

/* Returns the owned message text, CRLF line ends, ending in CRLF. */
char *message_build(const struct message_params *p);

#endif
