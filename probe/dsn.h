/* Bounces: delivery status notifications (RFC 3464, RFC 6533) and, best effort, plain-text
 * bounces of MTAs that send none. A pure parser of one raw message (no I/O): what the readback
 * gives it after fetching a message from the envelope sender's mailbox in relay mode, where the
 * target's refusal is only visible to the smarthost. Untrusted input: any bytes, any length. */
#ifndef MON_PROBE_DSN_H
#define MON_PROBE_DSN_H

#include <stdbool.h>
#include <stddef.h>

/* Recipients kept per report; further ones are only counted (dsn_report.n_recipients_seen). */
#define DSN_MAX_RECIPIENTS 16

/* Where the returned message's headers were found: the token's place, or without a token the
 * Message-ID's. */
enum dsn_headers_origin {
	DSN_HEADERS_NONE = 0,
	DSN_HEADERS_PART, /* a text/rfc822-headers, message/rfc822, message/global(-headers) part */
	DSN_HEADERS_TEXT, /* quoted in a plain-text part or body (best effort) */
};

/* One recipient: a per-recipient block of the delivery-status part, or one recipient found in
 * a plain-text bounce. Every string is "" when absent, never NULL; over-long values are cut
 * (at a UTF-8 character boundary); control characters become spaces. */
struct dsn_recipient {
	char final_recipient[256];    /* "seed1@seed-a.test": the address type and <> removed */
	char original_recipient[256]; /* same form */
	char action[16];              /* lower case: failed delayed delivered relayed expanded, or a
	                               * non-standard value as written ("expired"); from a
	                               * delivery-status part only ("" in plain-text bounces) */
	char status[16];              /* the Status field's code ("5.1.1", comment removed); "" when
	                               * absent or malformed; plain text: qmail's "(#5.1.1)" */
	char enhanced[16];            /* the enhanced code the remote server gave (after the reply
	                               * code in the diagnostic), else status */
	int reply_code;               /* 200..599: the reply that starts the diagnostic text (or
	                               * follows "said:" in it, or "ddd c.s.d" inside it); without
	                               * one, a reply quoted by the notification text for this
	                               * recipient; 0 when none */
	char remote_mta[256];         /* "mx1.seed-a.test" or an address: the "dns;" type, comments
	                               * and [] removed */
	char diagnostic_type[32];     /* "smtp", "x-postfix", ...: lower case */
	char diagnostic[1024];        /* "550 5.1.1 <a@b>: Recipient address rejected: ...": the text
	                               * after the type, folded lines joined by one space; without a
	                               * Diagnostic-Code, the remote server's words quoted by the
	                               * notification text (Postfix's "said: ...") */
	char stage[16];               /* where the remote refused: connect banner ehlo starttls auth
	                               * mail rcpt data eod (probe_stage_name's), or "" */
	char last_attempt_date[64];
	char will_retry_until[64];
};

struct dsn_report {
	bool is_rfc3464;               /* a message/delivery-status or message/global-delivery-status
	                                * part was found (outside any attached message) */
	char reporting_mta[256];       /* per-message fields, type removed; "" when absent */
	char arrival_date[64];
	char original_envelope_id[128];
	char token[256];               /* the returned message's X-Mailcanary-Token, unfolded and
	                                * trimmed, not verified: the caller checks its HMAC */
	char message_id[256];          /* the returned message's Message-ID as written ("<...>"),
	                                * from where the token was found; without a token, the first */
	enum dsn_headers_origin headers_origin;
	size_t n_recipients;           /* entries used in recipients[], <= DSN_MAX_RECIPIENTS */
	size_t n_recipients_seen;      /* recipients found, kept or not */
	struct dsn_recipient recipients[DSN_MAX_RECIPIENTS];
};

/* Parses one raw message msg[0..len) (CRLF or LF line ends, an optional leading mbox "From "
 * line; NUL bytes allowed). Borrows msg; fills *out, which is caller-owned and holds no
 * resources (nothing to free). MIME: multipart bodies walked recursively (depth and part count
 * bounded), base64 and quoted-printable decoded for the parts read; attached messages are read
 * for their headers only.
 * Returns 0 when the message is a bounce: it has a delivery-status part, or it looks like one
 * (a multipart/report for delivery status, a sender such as MAILER-DAEMON or postmaster, a
 * subject such as "Undelivered Mail", X-Failed-Recipients) and its text gives a recipient a
 * diagnostic, status or reply code. Returns -1 otherwise (an auto-reply, a feedback report, any
 * other mail); *out then still holds whatever was found, such as the returned headers. */
int dsn_parse(const char *msg, size_t len, struct dsn_report *out);

/* The SMTP stage that a bounce's wording names: "in reply to RCPT TO command" (Postfix), "after
 * end of data" (Exim), "does not like recipient" (qmail), "connect to ...: Connection refused",
 * a sendmail transcript ">>> MAIL From:<...>" followed by "<<< 550 ...", and the like. Borrows
 * text[0..len). Returns a static stage name (see dsn_recipient.stage), or "" when none is named. */
const char *dsn_stage_from_text(const char *text, size_t len);

/* Every field of a report as X-macros, S(field) for strings and I(field) for integers, so that
 * code comparing or printing reports (tests, the fuzz target) lists them once. */
#define DSN_REPORT_FIELDS(S, I)                                                                    \
	I(is_rfc3464) S(reporting_mta) S(arrival_date) S(original_envelope_id) S(token) S(message_id) \
	I(headers_origin) I(n_recipients) I(n_recipients_seen)
#define DSN_RECIPIENT_FIELDS(S, I)                                                                 \
	S(final_recipient) S(original_recipient) S(action) S(status) S(enhanced) I(reply_code)      \
	S(remote_mta) S(diagnostic_type) S(diagnostic) S(stage) S(last_attempt_date)               \
	S(will_retry_until)

#endif
