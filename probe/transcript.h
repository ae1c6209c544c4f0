/* The SMTP transcript of one session, rebuilt from curl's debug stream (LIBRARY-NOTES 1.1), and
 * its analysis: which stage decided the outcome, with which code, and how long each stage took.
 * Pure logic: fed by smtp.c in production and by recorded transcripts in unit tests. */
#ifndef MON_PROBE_TRANSCRIPT_H
#define MON_PROBE_TRANSCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "result.h"

enum tr_kind {
	TR_TEXT,  /* curl's informational text ("Connected to", "SSL connection using") */
	TR_OUT,   /* a command we sent */
	TR_IN,    /* one reply line */
	TR_BODY,  /* message body bytes (already dot-stuffed; the final "." never appears) */
};

struct tr_event {
	enum tr_kind kind;
	int64_t t_us;  /* monotonic */
	char *line;    /* owned; CRLF stripped; credentials redacted; NULL for TR_BODY */
	size_t bytes;  /* TR_BODY: bytes in this chunk */
};

struct transcript {
	struct tr_event *v;
	size_t n, cap;
	bool in_auth;      /* an AUTH exchange is going on */
	bool auth_pending; /* ... and the server asked for more with 334: the next line is secret */
};

void transcript_init(struct transcript *tr);
void transcript_fini(struct transcript *tr);
/* Records one debug-stream event. Splits multi-line data, strips CRLF and redacts credentials
 * (AUTH initial responses and every line sent while the server is asking with 334). */
void transcript_add(struct transcript *tr, enum tr_kind kind, const char *data, size_t len, int64_t t_us);

/* What the session knew beyond the transcript. */
struct tr_context {
	int curl_code;            /* CURLcode of the transfer */
	const char *curl_error;   /* curl's error buffer ("" if none) */
	int64_t t_start_us;       /* when the transfer was started */
	double connect_ms;        /* TCP handshake, from CURLINFO (-1 unknown) */
	bool connected;           /* curl reached the server (CURLINFO_CONNECT_TIME > 0) */
	bool tls_wanted;          /* tls = opportunistic or required */
	bool tls_required;        /* tls = required */
	bool auth_expected;       /* credentials were configured */
	enum probe_stage timeout_stage; /* our per-stage deadline fired in this stage, or STAGE_NONE */
	int64_t timeout_ms;       /* that deadline */
	int64_t t_end_us;         /* when the session ended (done or aborted) */
};

/* Fills outcome, stage, code, enhanced, text, error, per-stage times, TLS version/cipher and
 * warnings of try from the transcript. Does not touch mx/ip/port/at_ms. */
void transcript_analyse(const struct transcript *tr, const struct tr_context *ctx, struct smtp_try *try);

/* Appends the transcript as printable lines ("+0.412 < 220 ...") to try->transcript. */
void transcript_export(const struct transcript *tr, int64_t t0_us, struct smtp_try *try);

/* Stage a command belongs to, from its verb (EHLO/HELO, STARTTLS, AUTH, MAIL, RCPT, DATA);
 * STAGE_NONE for QUIT, RSET, NOOP and anything else. */
enum probe_stage transcript_command_stage(const char *cmd);

#endif
