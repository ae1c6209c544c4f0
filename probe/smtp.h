/* One SMTP attempt: one curl easy handle, one session with one address, transcript and
 * per-stage deadlines. */
#ifndef MON_PROBE_SMTP_H
#define MON_PROBE_SMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "result.h"

struct evloop;
struct smtp_attempt;

struct smtp_params {
	const char *host;          /* name used in the URL: TLS SNI and verification (MX or relay) */
	const char *ip;            /* address to connect to (pinned with CURLOPT_CONNECT_TO) */
	int port;
	const char *helo;
	const char *mail_from;
	const char *rcpt;          /* exactly one recipient per probe */
	const char *message;       /* borrowed for the attempt's lifetime */
	size_t message_len;
	enum conf_tls tls;
	bool tls_verify;
	const char *ca_file;       /* NULL: system store */
	const char *username;      /* NULL: no AUTH */
	const char *password;      /* borrowed; never logged */
	const char *source_ip;     /* NULL: kernel's choice */
	const struct conf_timeouts *timeouts;
	bool keep_transcript;      /* export the transcript into the try */
};

/* try is borrowed for the call: copy what you need (smtp_try_copy). */
typedef void smtp_done_cb(void *arg, struct smtp_try *try);

/* Starts an attempt on a thread of its own from a pool (see smtp.c for why); done fires exactly
 * once, on loop's thread, never from inside this call. params are copied: nothing is borrowed. */
struct smtp_attempt *smtp_attempt_start(struct evloop *loop, const struct smtp_params *p, smtp_done_cb *done,
					void *arg);
/* Aborts and waits for its thread to let go (at most about a second); done does not fire. */
void smtp_attempt_cancel(struct smtp_attempt *a);

#endif
