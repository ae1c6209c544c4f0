/* Unit tests: the diagnosis table (diagnose.c). One cmocka test per rule of the table, each
 * with hand-written cases: real reply texts (the lab's Postfix and smtp-sink, the bounces of
 * tests/data/dsn named by file, providers' documented replies) and mailcanary's own error texts,
 * plus negative cases, each naming the rule it is tempted by and must not give. A rule without
 * a case fails its test. Then: the findings from `dns --json` checks and Authentication-Results
 * verdicts, placeholders, readback outcomes and bounces, the JSON member and its replacement,
 * the round across providers, the man page being current, and the 135 real bounces of
 * tests/data/dsn diagnosed as their expected reason says (with a ratchet on the agreement). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diagnose.h"
#include "dsn.h"
#include "result.h"
#include "strbuf.h"
#include "testutil.h"

#ifndef MON_SOURCE_DIR
#error "MON_SOURCE_DIR must be defined"
#endif

/* ---- the cases ---- */

struct tcase {
	const char *rule;      /* the rule wanted */
	const char *src;       /* where the text comes from */
	enum diag_outcome outcome;
	enum probe_stage stage;
	int code;
	const char *enh;
	const char *text;
	const char *error;
	const char *warning;
	int attempt;           /* 0: 1 */
	const char *folder;
	unsigned findings;
	const char *zone;
	const char *cause_has; /* substrings the expanded texts must contain (optional) */
	const char *next_has;
	const char *not_rule;  /* a negative case: the rule it looks like but must not give */
};

#define DEF DIAG_DEFERRED
#define REJ DIAG_REJECTED
#define FAIL DIAG_FAILED
#define ACC DIAG_ACCEPTED

static const struct tcase cases[] = {
	/* dnsbl-listed */
	{ .rule = "dnsbl-listed", .src = "postscreen after a DNSBL hit (Postfix POSTSCREEN_README)", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.3.2",
	  .text = "Service currently unavailable", .findings = DIAG_F_DNSBL_LISTED, .zone = "zen.spamhaus.org",
	  .cause_has = "listed on zen.spamhaus.org", .next_has = "request delisting from zen.spamhaus.org" },
	{ .rule = "dnsbl-listed", .src = "RFC 5321 421 greeting, IP listed and without PTR: the listing wins", .outcome = DEF, .stage = STAGE_BANNER, .code = 421,
	  .enh = "", .text = "mx.example.net Service not available, closing transmission channel",
	  .findings = DIAG_F_DNSBL_LISTED | DIAG_F_PTR_MISSING, .zone = "bl.test",
	  .cause_has = "at the banner stage" },
	{ .rule = "system-not-accepting", .src = "the same postscreen reply without a DNS finding", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.3.2",
	  .text = "Service currently unavailable", .not_rule = "dnsbl-listed" },
	{ .rule = "ehlo-refused", .src = "EHLO refused, IP listed: EHLO refusals are about the name", .outcome = DEF, .stage = STAGE_EHLO, .code = 450,
	  .enh = "4.3.0", .text = "Error: command failed", .findings = DIAG_F_DNSBL_LISTED, .not_rule = "dnsbl-listed" },
	/* fix-ptr */
	{ .rule = "fix-ptr", .src = "lab smtp-sink ehlohelo4xx, sending IP without PTR", .outcome = DEF, .stage = STAGE_EHLO, .code = 450, .enh = "4.3.0",
	  .text = "Error: command failed", .findings = DIAG_F_PTR_MISSING, .cause_has = "the sending IP has no PTR record",
	  .next_has = "fix PTR" },
	{ .rule = "fix-ptr", .src = "lab smtp-sink ehlohelo4xx from 127.0.0.12: dns says ptr and fcrdns fail", .outcome = DEF,
	  .stage = STAGE_EHLO, .code = 450, .enh = "4.3.0", .text = "Error: command failed",
	  .findings = DIAG_F_PTR_MISSING | DIAG_F_FCRDNS_FAIL | DIAG_F_HELO_UNRESOLVABLE,
	  .cause_has = "refuses at the ehlo stage, and the sending IP has no PTR record: many", .not_rule = "fix-helo" },
	{ .rule = "fix-ptr", .src = "a 554 greeting, PTR not forward-confirmed", .outcome = REJ, .stage = STAGE_BANNER, .code = 554, .enh = "",
	  .text = "mx.example.net ESMTP not accepting messages", .findings = DIAG_F_FCRDNS_FAIL,
	  .cause_has = "PTR name does not resolve back", .next_has = "fix PTR" },
	{ .rule = "ehlo-refused", .src = "the same EHLO refusal with nothing known about DNS", .outcome = DEF, .stage = STAGE_EHLO, .code = 450, .enh = "4.3.0",
	  .text = "Error: command failed", .not_rule = "fix-ptr" },
	{ .rule = "system-not-accepting", .src = "RCPT deferral with a missing PTR: not a banner/EHLO refusal", .outcome = DEF, .stage = STAGE_RCPT, .code = 451,
	  .enh = "4.3.2", .text = "System not accepting network messages", .findings = DIAG_F_PTR_MISSING, .not_rule = "fix-ptr" },
	/* fix-helo */
	{ .rule = "fix-helo", .src = "Postfix reject_non_fqdn_helo_hostname at EHLO, helo name without A record", .outcome = REJ, .stage = STAGE_EHLO, .code = 504,
	  .enh = "5.5.2", .text = "<probe>: Helo command rejected: need fully-qualified hostname",
	  .findings = DIAG_F_HELO_UNRESOLVABLE, .cause_has = "helo name does not resolve" },
	/* fix-spf */
	{ .rule = "fix-spf", .src = "postfix-policyd-spf-python at MAIL, SPF fail found by dns", .outcome = REJ, .stage = STAGE_MAIL, .code = 550, .enh = "5.7.1",
	  .text = "<canary@example.com>: Sender address rejected: Message rejected due to: SPF fail - not authorized",
	  .findings = DIAG_F_SPF_FAIL, .cause_has = "SPF does not authorise", .next_has = "mail_from" },
	/* fix-dkim-dmarc */
	{ .rule = "fix-dkim-dmarc", .src = "amavis at end of data (lhost-amavis-03.eml), no DKIM and no DMARC", .outcome = REJ, .stage = STAGE_EOD, .code = 554,
	  .enh = "5.7.0", .text = "Reject, id=20025-09 - SPAM", .findings = DIAG_F_DKIM_FAIL | DIAG_F_DMARC_FAIL,
	  .cause_has = "there is no valid DKIM signature and DMARC fails or is not published",
	  .next_has = "DKIM signature" },
	{ .rule = "content", .src = "the same amavis reply, authentication fine", .outcome = REJ, .stage = STAGE_EOD, .code = 554, .enh = "5.7.0",
	  .text = "Reject, id=20025-09 - SPAM", .not_rule = "fix-dkim-dmarc" },
	/* greylisting */
	{ .rule = "greylisting", .src = "lab postgrey (grey.test)", .outcome = DEF, .stage = STAGE_RCPT, .code = 450, .enh = "4.2.0",
	  .text = "<grey-abcdefgh@grey.test>: Recipient address rejected: Greylisted, try again in 3 seconds" },
	{ .rule = "greylisting", .src = "Gmail-style greylisting", .outcome = DEF, .stage = STAGE_RCPT, .code = 451, .enh = "4.7.1",
	  .text = "Greylisting in action, please come back later", .not_rule = "greylisting-likely" },
	{ .rule = "greylisting", .src = "lab Postfix access map grey@seed-a.test", .outcome = DEF, .stage = STAGE_RCPT, .code = 450, .enh = "4.2.0",
	  .text = "<grey@seed-a.test>: Recipient address rejected: Greylisted, try again later" },
	{ .rule = "policy", .src = "a permanent refusal that mentions greylisting is no greylisting", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.7.1",
	  .text = "Greylisted too many times, rejected", .not_rule = "greylisting" },
	/* blocklist */
	{ .rule = "blocklist", .src = "lhost-amazonses-16.eml", .outcome = REJ, .stage = STAGE_RCPT, .code = 521, .enh = "5.7.1",
	  .text = "Service unavailable; client [203.0.113.225] blocked using dnsbl.sorbs.net" },
	{ .rule = "blocklist", .src = "rhost-microsoft-01.eml", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.7.606",
	  .text = "Access denied, banned sending IP [198.51.100.222]. To request removal from this list please visit "
	  "https://sender.office.com/" },
	{ .rule = "blocklist", .src = "rhost-godaddy-02.eml", .outcome = REJ, .stage = STAGE_NONE, .code = 553, .enh = "", .text = "http://www.spamhaus.org/query/bl?ip=192.0.2.222" },
	{ .rule = "user-unknown", .src = "Domino: not listed in the directory is no blocklist", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.1.1",
	  .text = "User not listed in public Name & Address Book", .not_rule = "blocklist" },
	/* rdns */
	{ .rule = "rdns", .src = "rhost-google-06.eml", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.7.25",
	  .text = "[192.0.2.202] The IP address sending this message does not have a PTR record setup, or the "
	  "corresponding forward DNS entry does not point to the sending IP.", .next_has = "fix PTR" },
	{ .rule = "rdns", .src = "lhost-exim-43.eml", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.7.1",
	  .text = "Connections not accepted from servers without a valid sender domain. Fix reverse DNS for 203.0.113.2",
	  .not_rule = "policy" },
	{ .rule = "rdns", .src = "lhost-sendmail-08.eml", .outcome = DEF, .stage = STAGE_RCPT, .code = 450, .enh = "4.7.1", .text = "Access denied. IP name lookup failed [192.0.2.222]",
	  .not_rule = "greylisting-likely" },
	{ .rule = "rdns", .src = "Postfix reject_unknown_client_hostname", .outcome = DEF, .stage = STAGE_RCPT, .code = 450, .enh = "4.7.25",
	  .text = "Client host rejected: cannot find your hostname, [192.0.2.25]" },
	{ .rule = "policy", .src = "5.7.250 is not x.7.25", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.7.250", .text = "Rejected", .not_rule = "rdns" },
	{ .rule = "policy", .src = "5.7.2 is not x.7.25", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.7.2", .text = "Rejected", .not_rule = "rdns" },
	/* helo */
	{ .rule = "helo", .src = "Postfix reject_non_fqdn_helo_hostname (delayed to RCPT)", .outcome = REJ, .stage = STAGE_RCPT, .code = 504, .enh = "5.5.2",
	  .text = "<localhost>: Helo command rejected: need fully-qualified hostname" },
	{ .rule = "helo", .src = "lhost-outlook-09.eml", .outcome = REJ, .stage = STAGE_NONE, .code = 550, .enh = "", .text = "domain [example.com] mismatches client ip 192.0.2.225." },
	/* spf */
	{ .rule = "spf", .src = "lhost-exim-29.eml", .outcome = REJ, .stage = STAGE_MAIL, .code = 550, .enh = "", .text = "Bad SPF records for [example.org:192.0.2.2], see http://spf.pobox.com/" },
	{ .rule = "spf", .src = "lhost-office365-03.eml", .outcome = REJ, .stage = STAGE_NONE, .code = 550, .enh = "5.1.0",
	  .text = "192.0.2.222 is not allowed to send from <example.net> per it's SPF Record. Please inspect your SPF settings" },
	{ .rule = "spf", .src = "rhost-google-03.eml (5.7.26, about SPF)", .outcome = REJ, .stage = STAGE_EOD, .code = 550, .enh = "5.7.26",
	  .text = "The MAIL FROM domain [mail4.example.com] has an SPF record with a hard fail policy (-all) but it fails to "
	  "pass SPF checks with the ip: [192.0.2.24]." },
	{ .rule = "spf", .src = "Microsoft 5.7.23", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.7.23",
	  .text = "The message was rejected because of Sender Policy Framework violation" },
	/* dmarc */
	{ .rule = "dmarc", .src = "rhost-microsoft-04.eml", .outcome = REJ, .stage = STAGE_EOD, .code = 550, .enh = "5.7.509",
	  .text = "Access denied, sending domain [EXAMPLE.JP] does not pass DMARC verification and has a DMARC policy of reject." },
	{ .rule = "dmarc", .src = "Gmail 5.7.26 DMARC", .outcome = REJ, .stage = STAGE_EOD, .code = 550, .enh = "5.7.26",
	  .text = "Unauthenticated email from example.com is not accepted due to domain's DMARC policy." },
	/* dkim */
	{ .rule = "dkim", .src = "RFC 7372 5.7.20 wording", .outcome = REJ, .stage = STAGE_EOD, .code = 550, .enh = "5.7.20", .text = "No passing DKIM signature found" },
	{ .rule = "dkim", .src = "enhanced code only (RFC 7372 5.7.22)", .outcome = REJ, .stage = STAGE_EOD, .code = 550, .enh = "5.7.22", .text = "Message rejected" },
	/* relay-denied */
	{ .rule = "relay-denied", .src = "lab Postfix mx to a foreign domain", .outcome = REJ, .stage = STAGE_RCPT, .code = 554, .enh = "5.7.1",
	  .text = "<someone@elsewhere.test>: Relay access denied", .not_rule = "policy" },
	{ .rule = "relay-denied", .src = "sendmail", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.7.1", .text = "<x@example.org>... Relaying denied" },
	/* auth-required */
	{ .rule = "auth-required", .src = "rhost-messagelabs-01.eml", .outcome = REJ, .stage = STAGE_NONE, .code = 550, .enh = "",
	  .text = "Please turn on SMTP Authentication in your mail client. mail0.bemta0.messagelabs.com [198.51.100.21]:11111 "
	  "is not permitted to 550 relay through this server without authentication." },
	{ .rule = "auth-required", .src = "Postfix submission, no AUTH", .outcome = REJ, .stage = STAGE_MAIL, .code = 530, .enh = "5.7.57",
	  .text = "5.7.57 SMTP; Client was not authenticated to send anonymous mail during MAIL FROM" },
	/* auth-failed */
	{ .rule = "auth-failed", .src = "Postfix + Dovecot SASL, wrong password", .outcome = REJ, .stage = STAGE_AUTH, .code = 535, .enh = "5.7.8",
	  .text = "Error: authentication failed: authentication failure" },
	{ .rule = "auth-failed", .src = "curl 67 without a reply kept (transcript.c)", .outcome = FAIL, .stage = STAGE_AUTH, .code = 0, .enh = "", .text = "",
	  .error = "authentication failed" },
	/* auth-not-offered */
	{ .rule = "auth-not-offered", .src = "transcript.c", .outcome = FAIL, .stage = STAGE_AUTH, .code = 0, .enh = "", .text = "",
	  .error = "credentials configured but the server offered no AUTH (the session was not encrypted)" },
	/* auth-local */
	{ .rule = "auth-local", .src = "probe.c", .outcome = FAIL, .stage = STAGE_AUTH, .code = 0, .enh = "", .text = "",
	  .error = "cannot read the password of sender smarthost: /etc/mailcanary/smarthost.secret: Permission denied" },
	/* starttls-required */
	{ .rule = "starttls-required", .src = "lab Postfix submission without STARTTLS", .outcome = REJ, .stage = STAGE_MAIL, .code = 530, .enh = "5.7.0",
	  .text = "Must issue a STARTTLS command first", .not_rule = "policy" },
	{ .rule = "system-not-accepting", .src = "lab smtp-sink rcpt432 with the STARTTLS warning of every sink", .outcome = DEF, .stage = STAGE_RCPT, .code = 451,
	  .enh = "4.3.2", .text = "System not accepting network messages", .warning = "server did not offer STARTTLS: sent without TLS",
	  .not_rule = "starttls-required" },
	/* starttls-not-offered */
	{ .rule = "starttls-not-offered", .src = "transcript.c, tls = required against a server without STARTTLS", .outcome = FAIL,
	  .stage = STAGE_STARTTLS, .code = 0, .enh = "", .text = "", .error = "STARTTLS required but not offered by the server" },
	/* tls-certificate */
	{ .rule = "tls-certificate", .src = "curl 60 against the lab's self-signed certificate", .outcome = FAIL, .stage = STAGE_STARTTLS, .code = 0, .enh = "", .text = "",
	  .error = "TLS handshake failed: SSL certificate problem: self-signed certificate" },
	/* tls-handshake */
	{ .rule = "tls-handshake", .src = "OpenSSL 3 protocol version alert", .outcome = FAIL, .stage = STAGE_STARTTLS, .code = 0, .enh = "", .text = "",
	  .error = "TLS handshake failed: OpenSSL/3.0.11: error:0A00042E:SSL routines::tlsv1 alert protocol version" },
	/* mailbox-full */
	{ .rule = "mailbox-full", .src = "Gmail over quota (lhost-gmail-06.eml)", .outcome = DEF, .stage = STAGE_RCPT, .code = 452, .enh = "4.2.2",
	  .text = "The email account that you tried to reach is over quota. Please direct the recipient to "
	  "https://support.google.com/mail/?p=OverQuotaTemp" },
	{ .rule = "mailbox-full", .src = "lhost-messagingserver-02.eml", .outcome = REJ, .stage = STAGE_NONE, .code = 522, .enh = "5.2.0", .text = "Delivery failed: Over quota" },
	{ .rule = "mailbox-full", .src = "rhost-apple-03.eml", .outcome = REJ, .stage = STAGE_RCPT, .code = 552, .enh = "5.2.2",
	  .text = "<pseudo-local-part-of-apple-icloud-mail@icloud.com>: user is over quota" },
	/* reputation */
	{ .rule = "reputation", .src = "rhost-microsoft-05.eml: rate limited because of reputation", .outcome = DEF, .stage = STAGE_RCPT, .code = 451, .enh = "4.7.650",
	  .text = "The mail server [192.0.2.25] has been temporarily rate limited due to IP reputation.", .not_rule = "rate-limit" },
	{ .rule = "reputation", .src = "rhost-yahooinc-02.eml", .outcome = DEF, .stage = STAGE_BANNER, .code = 421, .enh = "4.7.0",
	  .text = "[TSS04] Messages from 192.0.2.192 temporarily deferred due to unexpected volume or user complaints - "
	  "4.16.55.1; see https://postmaster.verizonmedia.com/error-codes", .not_rule = "banner-421" },
	{ .rule = "reputation", .src = "lhost-postfix-58.eml (Gmail)", .outcome = REJ, .stage = STAGE_EOD, .code = 550, .enh = "5.7.1",
	  .text = "[192.0.2.22 18] Our system has detected that this message is likely suspicious due to the very low "
	  "reputation of the sending IP address." },
	{ .rule = "reputation", .src = "Gmail 4.7.28", .outcome = DEF, .stage = STAGE_EOD, .code = 421, .enh = "4.7.28",
	  .text = "Our system has detected an unusual rate of unsolicited mail originating from your IP address." },
	/* rate-limit */
	{ .rule = "rate-limit", .src = "lab Postfix 421 at connect (127.0.0.3 and refuse421)", .outcome = DEF, .stage = STAGE_BANNER, .code = 421, .enh = "4.7.0",
	  .text = "<localhost[127.0.0.1]>: Client host rejected: Too many connections, try again later",
	  .not_rule = "banner-421" },
	{ .rule = "rate-limit", .src = "lhost-postfix-09.eml: 4.3.2 with a reason", .outcome = DEF, .stage = STAGE_NONE, .code = 452, .enh = "4.3.2",
	  .text = "Connection rate limit exceeded.", .not_rule = "system-not-accepting" },
	{ .rule = "rate-limit", .src = "Gmail 4.2.1 receiving rate", .outcome = DEF, .stage = STAGE_RCPT, .code = 450, .enh = "4.2.1",
	  .text = "The user you are trying to contact is receiving mail at a rate that prevents additional messages from "
	  "being delivered.", .not_rule = "mailbox-disabled" },
	{ .rule = "rate-limit", .src = "rhost-tencent-01.eml", .outcome = REJ, .stage = STAGE_NONE, .code = 550, .enh = "",
	  .text = "Ip frequency limited [V2VkIEFwciAgMyAxNjozNjo1OSBKU1QgMjAxOQo=/RkNGMjlFQTVEQ0E Blocked IP 192.0.2.22]." },
	{ .rule = "rate-limit", .src = "Outlook server busy", .outcome = DEF, .stage = STAGE_RCPT, .code = 451, .enh = "4.7.500",
	  .text = "Server busy. Please try again later from [192.0.2.25]. (S77719)" },
	/* user-unknown */
	{ .rule = "user-unknown", .src = "lab Postfix nobody@seed-a.test", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.1.1",
	  .text = "<nobody@seed-a.test>: Recipient address rejected: User unknown in virtual mailbox table" },
	{ .rule = "user-unknown", .src = "lab smtp-sink rcpt5xx", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.1.1", .text = "No such user here" },
	{ .rule = "user-unknown", .src = "rfc3464-63.eml (Gmail)", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.1.1",
	  .text = "The email account that you tried to reach does not exist. Please try double-checking the recipient's email "
	  "address for typos or unnecessary spaces." },
	{ .rule = "user-unknown", .src = "lhost-office365-13.eml", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.1.10",
	  .text = "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup" },
	{ .rule = "user-unknown", .src = "lhost-postfix-05.eml (4.1.1)", .outcome = DEF, .stage = STAGE_RCPT, .code = 450, .enh = "4.1.1",
	  .text = "<kijitora@example.org>: Recipient address rejected: User unknown in virtual alias table" },
	{ .rule = "user-unknown", .src = "lhost-postfix-02.eml: 5.2.1 with User Unknown", .outcome = REJ, .stage = STAGE_NONE, .code = 550, .enh = "5.2.1",
	  .text = "<filtered@example.co.jp>... User Unknown", .not_rule = "mailbox-disabled" },
	{ .rule = "system-not-accepting", .src = "Postfix 4.3.2 text says Recipient address rejected", .outcome = DEF, .stage = STAGE_RCPT, .code = 451, .enh = "4.3.2",
	  .text = "<defer432@seed-a.test>: Recipient address rejected: System not accepting network messages",
	  .not_rule = "user-unknown" },
	/* mailbox-disabled */
	{ .rule = "mailbox-disabled", .src = "rhost-google-01.eml", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.2.1",
	  .text = "The email account that you tried to reach is disabled." },
	{ .rule = "mailbox-disabled", .src = "rhost-iua-01.eml", .outcome = REJ, .stage = STAGE_NONE, .code = 550, .enh = "", .text = "Mailbox is frozen. See http://mail.i.ua/err/3/" },
	/* system-not-accepting */
	{ .rule = "system-not-accepting", .src = "lab smtp-sink rcpt432", .outcome = DEF, .stage = STAGE_RCPT, .code = 451, .enh = "4.3.2", .text = "System not accepting network messages",
	  .next_has = "retry later" },
	{ .rule = "system-not-accepting", .src = "lhost-sendmail-56.eml (iCloud)", .outcome = REJ, .stage = STAGE_BANNER, .code = 554, .enh = "",
	  .text = "st11p00im-smtpin013.me.com ESMTP not accepting connections", .not_rule = "banner-refused" },
	/* system-resources */
	{ .rule = "system-resources", .src = "Postfix queue_minfree", .outcome = DEF, .stage = STAGE_MAIL, .code = 452, .enh = "4.3.1", .text = "Insufficient system storage" },
	/* message-too-big */
	{ .rule = "message-too-big", .src = "lhost-exchange2007-03.eml", .outcome = REJ, .stage = STAGE_EOD, .code = 550, .enh = "5.2.3",
	  .text = "RESOLVER.RST.RecipSizeLimit; message too large for this recipient" },
	{ .rule = "message-too-big", .src = "Postfix message_size_limit", .outcome = REJ, .stage = STAGE_EOD, .code = 552, .enh = "5.3.4", .text = "Error: message file too big" },
	/* content */
	{ .rule = "content", .src = "lhost-barracuda-01.eml", .outcome = REJ, .stage = STAGE_EOD, .code = 550, .enh = "5.7.1", .text = "Message content rejected, UBE, id=00000-22-225",
	  .not_rule = "policy" },
	{ .rule = "content", .src = "lhost-postfix-39.eml", .outcome = REJ, .stage = STAGE_EOD, .code = 554, .enh = "5.6.0",
	  .text = "This message has been scored as spam with a probability of more than 90%" },
	{ .rule = "content", .src = "lhost-sendmail-31.eml", .outcome = REJ, .stage = STAGE_EOD, .code = 552, .enh = "5.7.0",
	  .text = "This message was blocked because its content presents a potential security issue." },
	{ .rule = "policy", .src = "the amavis SPAM reply at RCPT is no content verdict", .outcome = REJ, .stage = STAGE_RCPT, .code = 554, .enh = "5.7.0",
	  .text = "Reject, id=20025-09 - SPAM", .not_rule = "content" },
	/* expired */
	{ .rule = "expired", .src = "lhost-amazonses-17.eml", .outcome = REJ, .stage = STAGE_NONE, .code = 554, .enh = "4.4.7",
	  .text = "Message expired: unable to deliver in 840 minutes.<421 4.4.2 Connection timed out>" },
	{ .rule = "expired", .src = "lhost-exchange2007-05.eml", .outcome = REJ, .stage = STAGE_NONE, .code = 550, .enh = "4.4.7", .text = "QUEUE.Expired; message expired" },
	/* remote-network */
	{ .rule = "remote-network", .src = "lhost-yandex-03.eml (a relay's connect timeout)", .outcome = DEF, .stage = STAGE_CONNECT, .code = 0, .enh = "4.4.1",
	  .text = "connect to 6jo.example.jp[192.0.2.79]:25: Connection timed out" },
	{ .rule = "remote-network", .src = "rfc3464-36.eml", .outcome = DEF, .stage = STAGE_NONE, .code = 426, .enh = "", .text = "connection timed out" },
	/* policy */
	{ .rule = "policy", .src = "lab Postfix policy@seed-a.test", .outcome = REJ, .stage = STAGE_RCPT, .code = 554, .enh = "5.7.1",
	  .text = "<policy@seed-a.test>: Recipient address rejected: Policy rejection", .next_has = "mailcanary dns" },
	{ .rule = "policy", .src = "rhost-yahooinc-01.eml", .outcome = REJ, .stage = STAGE_EOD, .code = 554, .enh = "5.7.9",
	  .text = "Message not accepted for policy reasons. See https://postmaster.verizonmedia.com/error-codes" },
	{ .rule = "policy", .src = "rhost-franceptt-12.eml", .outcome = REJ, .stage = STAGE_RCPT, .code = 554, .enh = "5.7.1",
	  .text = "<xxxx.xxxx.net[#.#.#.#]:49309>: Client host rejected: #216 lpn LPN000_630", .cause_has = "(5.7.1)" },
	/* interrupted */
	{ .rule = "interrupted", .src = "journal.c", .outcome = FAIL, .stage = STAGE_NONE, .code = 0, .enh = "", .text = "",
	  .error = "interrupted: mailcanary stopped while this attempt was in flight (not resent)" },
	/* local-error */
	{ .rule = "local-error", .src = "smtp.c", .outcome = FAIL, .stage = STAGE_CONNECT, .code = 0, .enh = "", .text = "", .error = "cannot start a probe thread: Resource temporarily unavailable",
	  .not_rule = "connect" },
	{ .rule = "local-error", .src = "smtp.c", .outcome = FAIL, .stage = STAGE_CONNECT, .code = 0, .enh = "", .text = "", .error = "curl_multi_init failed (out of descriptors?)" },
	/* null-mx */
	{ .rule = "null-mx", .src = "probe.c", .outcome = FAIL, .stage = STAGE_DNS, .code = 0, .enh = "", .text = "", .error = "example.org publishes a null MX (RFC 7505): it accepts no mail" },
	/* dns-nxdomain */
	{ .rule = "dns-nxdomain", .src = "probe.c, lab nxdomain.test", .outcome = FAIL, .stage = STAGE_DNS, .code = 0, .enh = "", .text = "",
	  .error = "MX lookup for nxdomain.test failed: NXDOMAIN (name does not exist)" },
	/* dns-no-address */
	{ .rule = "dns-no-address", .src = "probe.c, lab noaddr.test", .outcome = FAIL, .stage = STAGE_DNS, .code = 0, .enh = "", .text = "",
	  .error = "mx.noaddr.test has no address: NXDOMAIN (name does not exist)", .not_rule = "dns-nxdomain" },
	{ .rule = "dns-no-address", .src = "probe.c", .outcome = FAIL, .stage = STAGE_DNS, .code = 0, .enh = "", .text = "",
	  .error = "none of the 2 MX hosts has an address (last: mx2.example.org: no records of that type)" },
	/* dns-resolver */
	{ .rule = "dns-resolver", .src = "probe.c", .outcome = FAIL, .stage = STAGE_DNS, .code = 0, .enh = "", .text = "", .error = "MX lookup for seed-a.test failed: DNS timeout" },
	{ .rule = "dns-resolver", .src = "probe.c", .outcome = FAIL, .stage = STAGE_DNS, .code = 0, .enh = "", .text = "", .error = "MX lookup for seed-a.test failed: SERVFAIL" },
	/* dns */
	{ .rule = "dns", .src = "probe.c (c-ares EBADNAME)", .outcome = FAIL, .stage = STAGE_DNS, .code = 0, .enh = "", .text = "", .error = "MX lookup for -x-.test failed: Misformatted domain name" },
	/* connect-refused */
	{ .rule = "connect-refused", .src = "curl 7 with errno (smtp.c)", .outcome = FAIL, .stage = STAGE_CONNECT, .code = 0, .enh = "", .text = "",
	  .error = "Failed to connect to 127.0.0.1 port 2 after 0 ms: Couldn't connect to server (Connection refused)" },
	/* connect-timeout */
	{ .rule = "connect-timeout", .src = "transcript.c", .outcome = FAIL, .stage = STAGE_CONNECT, .code = 0, .enh = "", .text = "", .error = "timeout: no TCP connection within 30s" },
	/* connect */
	{ .rule = "connect", .src = "curl 7, unreachable", .outcome = FAIL, .stage = STAGE_CONNECT, .code = 0, .enh = "", .text = "",
	  .error = "Failed to connect to 192.0.2.1 port 25 after 3 ms: Couldn't connect to server (Network is unreachable)" },
	/* banner-421 */
	{ .rule = "banner-421", .src = "RFC 5321 3.8 421 greeting", .outcome = DEF, .stage = STAGE_BANNER, .code = 421, .enh = "",
	  .text = "mx.example.net Service not available, closing transmission channel" },
	/* banner-refused */
	{ .rule = "banner-refused", .src = "lab smtp-sink banner450", .outcome = DEF, .stage = STAGE_BANNER, .code = 450, .enh = "4.3.0", .text = "Error: command failed" },
	{ .rule = "banner-refused", .src = "a 554 greeting (RFC 5321 3.1)", .outcome = REJ, .stage = STAGE_BANNER, .code = 554, .enh = "", .text = "mx.example.net ESMTP not accepting messages" },
	/* banner-timeout */
	{ .rule = "banner-timeout", .src = "lab smtp-sink nobanner", .outcome = FAIL, .stage = STAGE_BANNER, .code = 0, .enh = "", .text = "", .error = "timeout: no greeting within 2s",
	  .not_rule = "timeout" },
	/* dropped */
	{ .rule = "dropped", .src = "lab smtp-sink drop_banner", .outcome = FAIL, .stage = STAGE_BANNER, .code = 0, .enh = "", .text = "",
	  .error = "connection closed by the server before the greeting", .cause_has = "at the banner stage" },
	{ .rule = "dropped", .src = "lab smtp-sink drop_rcpt", .outcome = FAIL, .stage = STAGE_RCPT, .code = 0, .enh = "", .text = "",
	  .error = "connection closed by the server before the RCPT reply", .cause_has = "at the rcpt stage" },
	/* timeout */
	{ .rule = "timeout", .src = "lab smtp-sink hang_rcpt", .outcome = FAIL, .stage = STAGE_RCPT, .code = 0, .enh = "", .text = "", .error = "timeout: no RCPT reply within 2s",
	  .cause_has = "at the rcpt stage" },
	{ .rule = "timeout", .src = "end-of-data timeout (curl 28)", .outcome = FAIL, .stage = STAGE_EOD, .code = 0, .enh = "", .text = "",
	  .error = "timeout: no end-of-data reply within 2s (delivery state unknown)" },
	/* ehlo-refused */
	{ .rule = "ehlo-refused", .src = "lab smtp-sink ehlohelo4xx", .outcome = DEF, .stage = STAGE_EHLO, .code = 450, .enh = "4.3.0", .text = "Error: command failed",
	  .next_has = "PTR" },
	/* starttls-refused */
	{ .rule = "starttls-refused", .src = "Postfix without a usable key", .outcome = DEF, .stage = STAGE_STARTTLS, .code = 454, .enh = "4.7.0",
	  .text = "TLS not available due to local problem", .not_rule = "policy" },
	/* auth-refused */
	{ .rule = "auth-refused", .src = "Dovecot SASL temporary failure", .outcome = DEF, .stage = STAGE_AUTH, .code = 454, .enh = "4.7.0",
	  .text = "Temporary authentication failure", .not_rule = "policy" },
	/* mail-refused */
	{ .rule = "mail-refused", .src = "lab smtp-sink mail4xx", .outcome = DEF, .stage = STAGE_MAIL, .code = 450, .enh = "4.3.0", .text = "Error: command failed" },
	{ .rule = "mail-refused", .src = "Postfix reject_unknown_sender_domain", .outcome = REJ, .stage = STAGE_MAIL, .code = 550, .enh = "5.1.8",
	  .text = "<canary@nowhere.example>: Sender address rejected: Domain not found" },
	/* greylisting-likely */
	{ .rule = "greylisting-likely", .src = "4.2.0 at RCPT without the word", .outcome = DEF, .stage = STAGE_RCPT, .code = 450, .enh = "4.2.0",
	  .text = "<seed1@example.org>: Recipient address rejected: Try again later", .cause_has = "450 4.2.0" },
	{ .rule = "greylisting-likely", .src = "451 4.7.1 at RCPT without a reason", .outcome = DEF, .stage = STAGE_RCPT, .code = 451, .enh = "4.7.1", .text = "Please try again later",
	  .not_rule = "policy" },
	{ .rule = "policy", .src = "451 4.7.1 at the banner is no greylisting", .outcome = DEF, .stage = STAGE_BANNER, .code = 451, .enh = "4.7.1", .text = "Please try again later",
	  .not_rule = "greylisting-likely" },
	/* rcpt-deferred */
	{ .rule = "rcpt-deferred", .src = "Postfix temporary lookup failure", .outcome = DEF, .stage = STAGE_RCPT, .code = 451, .enh = "4.3.0",
	  .text = "<seed1@seed-a.test>: Temporary lookup failure" },
	/* rcpt-rejected */
	{ .rule = "rcpt-rejected", .src = "lhost-postfix-30.eml (Microsoft edge)", .outcome = REJ, .stage = STAGE_RCPT, .code = 550, .enh = "5.4.1",
	  .text = "<kijitora@example.br>: Recipient address rejected: Access denied [BL2NAM02FT061.eop-nam02.prod.protection.outlook.com]" },
	/* data-refused */
	{ .rule = "data-refused", .src = "lab smtp-sink data4xx", .outcome = DEF, .stage = STAGE_DATA, .code = 450, .enh = "4.3.0", .text = "Error: command failed" },
	{ .rule = "data-refused", .src = "Postfix after all recipients were refused", .outcome = REJ, .stage = STAGE_DATA, .code = 554, .enh = "5.5.1", .text = "Error: no valid recipients" },
	/* eod-deferred */
	{ .rule = "eod-deferred", .src = "lab smtp-sink eod4xx", .outcome = DEF, .stage = STAGE_EOD, .code = 450, .enh = "4.3.0", .text = "Error: command failed" },
	{ .rule = "eod-deferred", .src = "Postfix", .outcome = DEF, .stage = STAGE_EOD, .code = 451, .enh = "4.3.0", .text = "Error: queue file write error" },
	/* eod-rejected */
	{ .rule = "eod-rejected", .src = "Postfix header_checks", .outcome = REJ, .stage = STAGE_EOD, .code = 554, .enh = "5.6.0", .text = "Error: header line too long" },
	/* unknown */
	{ .rule = "unknown", .src = "lab smtp-sink drop_eod", .outcome = DIAG_UNKNOWN, .stage = STAGE_EOD, .code = 0, .enh = "", .text = "", .error = "session ended without an end-of-data reply",
	  .next_has = "readback" },
	/* deferred / rejected / failed: what no other rule names */
	{ .rule = "deferred", .src = "rfc3464-43.eml, a bounce's reply without a stage", .outcome = DEF, .stage = STAGE_NONE, .code = 451, .enh = "4.3.0",
	  .text = "This message could not be delivered due to a recipient error. Please try again later." },
	{ .rule = "rejected", .src = "rfc3464-29.eml", .outcome = REJ, .stage = STAGE_NONE, .code = 503, .enh = "", .text = "Improper sequence of commands",
	  .cause_has = "at the none stage" },
	{ .rule = "failed", .src = "curl 55 while sending EHLO", .outcome = FAIL, .stage = STAGE_EHLO, .code = 0, .enh = "", .text = "",
	  .error = "Send failure: Broken pipe (while waiting for the EHLO reply)" },
	/* accepted-helo-fallback */
	{ .rule = "accepted-helo-fallback", .src = "lab smtp-sink ehlo4xx", .outcome = ACC, .stage = STAGE_EOD, .code = 250, .enh = "2.0.0", .text = "Ok: queued as 4Fq0X31nZ7z9rxN",
	  .warning = "EHLO refused (450 4.3.0 Error: command failed), fell back to HELO", .attempt = 2,
	  .not_rule = "accepted-retried" },
	/* accepted-retried */
	{ .rule = "accepted-retried", .src = "postgrey's retry", .outcome = ACC, .stage = STAGE_EOD, .code = 250, .enh = "2.0.0", .text = "Ok: queued as E154AA7C765", .attempt = 2,
	  .cause_has = "at attempt 2" },
	/* accepted */
	{ .rule = "accepted", .src = "lab Postfix", .outcome = ACC, .stage = STAGE_EOD, .code = 250, .enh = "2.0.0", .text = "Ok: queued as 79B00A7C0B3",
	  .warning = "server did not offer STARTTLS: sent without TLS", .next_has = "nothing to do" },
	{ .rule = "accepted", .src = "accepted with a spam-ish word in the text", .outcome = ACC, .stage = STAGE_EOD, .code = 250, .enh = "2.0.0", .text = "Ok: spam score 0.1, queued",
	  .not_rule = "content" },
	/* readback: missing-dnsbl */
	{ .rule = "missing-dnsbl", .src = "readback timeout, IP listed", .outcome = DIAG_MISSING, .stage = STAGE_NONE, .code = 0, .enh = "", .text = "", .error = "not found within 30m",
	  .findings = DIAG_F_DNSBL_LISTED | DIAG_F_SPF_FAIL, .zone = "b.barracudacentral.org",
	  .next_has = "b.barracudacentral.org" },
	/* missing-auth */
	{ .rule = "missing-auth", .src = "readback timeout, SPF fails", .outcome = DIAG_MISSING, .stage = STAGE_NONE, .code = 0, .enh = "", .text = "", .error = "not found within 30m",
	  .findings = DIAG_F_SPF_FAIL, .cause_has = "SPF does not authorise" },
	/* missing */
	{ .rule = "missing", .src = "readback timeout", .outcome = DIAG_MISSING, .stage = STAGE_NONE, .code = 0, .enh = "", .text = "", .error = "not found within 30m",
	  .findings = DIAG_F_PTR_MISSING, .not_rule = "missing-auth" },
	/* junk-dnsbl */
	{ .rule = "junk-dnsbl", .src = "Junk, IP listed", .outcome = DIAG_JUNK, .stage = STAGE_NONE, .folder = "Junk", .findings = DIAG_F_DNSBL_LISTED,
	  .zone = "bl.test", .cause_has = "(Junk)" },
	/* junk-auth */
	{ .rule = "junk-auth", .src = "Junk, unsigned and no DMARC", .outcome = DIAG_JUNK, .stage = STAGE_NONE, .folder = "Spam",
	  .findings = DIAG_F_DKIM_FAIL | DIAG_F_DMARC_FAIL,
	  .cause_has = "delivered to the junk folder (Spam), and there is no valid DKIM signature and DMARC fails" },
	/* junk */
	{ .rule = "junk", .src = "lab Sieve rule X-Lab-Junk", .outcome = DIAG_JUNK, .stage = STAGE_NONE, .folder = "Junk", .cause_has = "(Junk)" },
	/* misplaced */
	{ .rule = "misplaced", .src = "a provider's category tab", .outcome = DIAG_MISPLACED, .stage = STAGE_NONE, .folder = "Promotions",
	  .cause_has = "to Promotions" },
	/* readback-error */
	{ .rule = "readback-error", .src = "IMAP login refused", .outcome = DIAG_RB_ERROR, .stage = STAGE_NONE, .error = "login: refused" },
	/* delivered */
	{ .rule = "delivered", .src = "INBOX", .outcome = DIAG_FOUND, .stage = STAGE_NONE, .folder = "INBOX", .cause_has = "delivered to INBOX",
	  .findings = DIAG_F_DKIM_FAIL },
};

static void run_case(const struct tcase *c, struct diagnosis *d)
{
	char *w[1] = { (char *)(uintptr_t)c->warning };
	struct diag_input in = {
		.outcome = c->outcome,
		.stage = c->stage,
		.code = c->code,
		.enhanced = c->enh,
		.text = c->text,
		.error = c->error,
		.warnings = c->warning ? w : NULL,
		.n_warnings = c->warning ? 1 : 0,
		.attempt = c->attempt ? c->attempt : 1,
		.folder = c->folder,
	};
	struct diag_findings f;
	memset(&f, 0, sizeof f);
	f.flags = c->findings;
	if (c->zone)
		snprintf(f.dnsbl_zone, sizeof f.dnsbl_zone, "%s", c->zone);
	diagnose(&in, &f, d);
}

static void check_case(const struct tcase *c)
{
	struct diagnosis d;
	run_case(c, &d);
	if (strcmp(d.rule, c->rule) != 0)
		fail_msg("%s (%s %s %d %s \"%s\" \"%s\"): got rule %s, want %s", c->src, diag_outcome_name(c->outcome),
			 probe_stage_name(c->stage), c->code, c->enh ? c->enh : "", c->text ? c->text : "",
			 c->error ? c->error : "", d.rule, c->rule);
	if (c->not_rule && strcmp(d.rule, c->not_rule) == 0)
		fail_msg("%s: got rule %s, which it must not be", c->src, d.rule);
	if (c->cause_has && !strstr(d.cause, c->cause_has))
		fail_msg("%s: cause\n got: %s\n want it to contain: %s", c->src, d.cause, c->cause_has);
	if (c->next_has && !strstr(d.next_step, c->next_has))
		fail_msg("%s: next step\n got: %s\n want it to contain: %s", c->src, d.next_step, c->next_has);
	/* No placeholder left unexpanded. */
	if (strchr(d.cause, '{') || strchr(d.next_step, '{'))
		fail_msg("%s: unexpanded placeholder: %s / %s", c->src, d.cause, d.next_step);
	if (!d.cause[0] || !d.next_step[0] || d.row < 0)
		fail_msg("%s: empty diagnosis", c->src);
}

/* One test per rule: its positive cases, and the negative cases that must not give it. */
static void test_rule(void **state)
{
	size_t row = *(const size_t *)*state;
	const char *id = diag_rules[row].id;
	int positive = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct tcase *c = &cases[i];
		if (strcmp(c->rule, id) == 0)
			positive++;
		if (strcmp(c->rule, id) == 0 || (c->not_rule && strcmp(c->not_rule, id) == 0))
			check_case(c);
	}
	if (positive == 0)
		fail_msg("rule %s has no hand-written case of its own in test_diagnose.c", id);
}

/* Every case names a rule that exists (a renamed rule must not leave dead cases). */
static void test_cases_name_rules(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool found = false, not_found = !cases[i].not_rule;
		for (size_t r = 0; r < diag_n_rules; r++) {
			found |= strcmp(cases[i].rule, diag_rules[r].id) == 0;
			if (cases[i].not_rule)
				not_found |= strcmp(cases[i].not_rule, diag_rules[r].id) == 0;
		}
		if (!found || !not_found)
			fail_msg("case %zu (%s) names a rule the table does not have: %s / %s", i, cases[i].src,
				 cases[i].rule, cases[i].not_rule ? cases[i].not_rule : "-");
	}
}

/* ---- the table itself ---- */

static void test_table_sane(void **state)
{
	(void)state;
	for (size_t i = 0; i < diag_n_rules; i++) {
		const struct diag_rule *r = &diag_rules[i];
		assert_non_null(r->id);
		if (strspn(r->id, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(r->id) || !r->id[0])
			fail_msg("rule id \"%s\": use lower case, digits and hyphens", r->id);
		for (size_t k = 0; k < i; k++)
			if (strcmp(diag_rules[k].id, r->id) == 0)
				fail_msg("rule id %s is used twice (rows %zu and %zu)", r->id, k, i);
		if (!r->cause || !r->cause[0] || !r->next_step || !r->next_step[0])
			fail_msg("rule %s: cause and next step are required", r->id);
		for (size_t t = 0; t < DIAG_MAX_TEXT && r->text[t]; t++) {
			for (const char *p = r->text[t]; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					fail_msg("rule %s: word \"%s\" must be lower case", r->id, r->text[t]);
			if (!r->text[t][0])
				fail_msg("rule %s: an empty word matches everything", r->id);
		}
		for (size_t e = 0; e < DIAG_MAX_ENH && r->enhanced[e]; e++) {
			const char *p = r->enhanced[e];
			bool ok = (p[0] == 'x' || p[0] == '2' || p[0] == '4' || p[0] == '5') && p[1] == '.';
			if (!ok)
				fail_msg("rule %s: enhanced pattern \"%s\" must start with 2, 4, 5 or x and a dot", r->id, p);
		}
	}
}

/* The last rules catch everything: every outcome at every stage gets a real diagnosis. */
static void test_every_outcome_diagnosed(void **state)
{
	(void)state;
	for (int o = DIAG_ACCEPTED; o < DIAG__OUTCOMES; o++) {
		for (int s = STAGE_NONE; s < STAGE__COUNT; s++) {
			struct diag_input in = { .outcome = (enum diag_outcome)o, .stage = (enum probe_stage)s, .attempt = 1 };
			struct diagnosis d;
			diagnose(&in, NULL, &d);
			if (d.row < 0 || strchr(d.cause, '{') || strchr(d.next_step, '{'))
				fail_msg("%s at %s: no diagnosis (%s: %s)", diag_outcome_name((enum diag_outcome)o),
					 probe_stage_name((enum probe_stage)s), d.rule, d.cause);
		}
	}
	/* OUTCOME_NONE (not decided) is not guessed at. */
	struct diag_input none = { .outcome = (enum diag_outcome)OUTCOME_NONE, .stage = STAGE_RCPT };
	struct diagnosis d;
	diagnose(&none, NULL, &d);
	assert_int_equal(d.row, -1);
	assert_string_equal(d.rule, "none");
}

/* ---- findings ---- */

static void test_findings_from_checks(void **state)
{
	(void)state;
	struct diag_findings f;
	memset(&f, 0, sizeof f);
	static const struct {
		const char *name, *status;
		int rc;
		unsigned want;
	} steps[] = {
		{ "mx", "fail", 0, 0 },
		{ "mx_time", "warn", 0, 0 },
		{ "mx_port", "fail", 0, 0 },
		{ "spf_align", "fail", 0, 0 },
		{ "ptr", "pass", 0, 0 },
		{ "ptr", "fail", 0, DIAG_F_PTR_MISSING },
		{ "fcrdns", "warn", 0, DIAG_F_PTR_MISSING },
		{ "fcrdns", "fail", 0, DIAG_F_PTR_MISSING | DIAG_F_FCRDNS_FAIL },
		{ "helo", "fail", 0, DIAG_F_PTR_MISSING | DIAG_F_FCRDNS_FAIL | DIAG_F_HELO_UNRESOLVABLE },
		{ "spf", "error", 0, DIAG_F_PTR_MISSING | DIAG_F_FCRDNS_FAIL | DIAG_F_HELO_UNRESOLVABLE },
		{ "spf", "fail", 0, DIAG_F_PTR_MISSING | DIAG_F_FCRDNS_FAIL | DIAG_F_HELO_UNRESOLVABLE | DIAG_F_SPF_FAIL },
		{ "dkim:s1", "fail", 0, 0x1f },
		{ "dmarc", "fail", 0, 0x3f },
		{ "dnsbl:zen.spamhaus.org", "pass", 0, 0x3f },
		{ "dnsbl:bl.test", "fail", 0, 0x7f },
		{ "dnsbl:other.test", "fail", 0, 0x7f },
		{ "bogus", "fail", -1, 0x7f },
		{ NULL, "fail", -1, 0x7f },
	};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		int rc = diag_findings_add_check(&f, steps[i].name, steps[i].status);
		if (rc != steps[i].rc || f.flags != steps[i].want)
			fail_msg("step %zu (%s %s): got rc %d flags %#x, want rc %d flags %#x", i,
				 steps[i].name ? steps[i].name : "NULL", steps[i].status, rc, f.flags, steps[i].rc,
				 steps[i].want);
	}
	assert_string_equal(f.dnsbl_zone, "bl.test"); /* the first listing zone */
	assert_string_equal(diag_finding_name(DIAG_F_FCRDNS_FAIL), "fcrdns_fail");
	assert_string_equal(diag_finding_name(DIAG_F_DNSBL_LISTED), "dnsbl_listed");
	assert_null(diag_finding_name(3));
}

static void test_findings_from_auth(void **state)
{
	(void)state;
	static const struct {
		const char *spf, *dkim, *dmarc;
		unsigned want;
	} t[] = {
		{ "pass", "pass", "pass", 0 },
		{ "softfail", "pass", "pass", DIAG_F_SPF_FAIL },
		{ "neutral", "none", "none", DIAG_F_DKIM_FAIL | DIAG_F_DMARC_FAIL },
		{ "pass", "fail", "fail", DIAG_F_DKIM_FAIL | DIAG_F_DMARC_FAIL },
		{ "", NULL, "", 0 },
		{ "fail", "temperror", "bestguesspass", DIAG_F_SPF_FAIL },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct diag_findings f;
		memset(&f, 0, sizeof f);
		diag_findings_add_auth(&f, t[i].spf, t[i].dkim, t[i].dmarc);
		if (f.flags != t[i].want)
			fail_msg("verdicts %zu: got %#x, want %#x", i, f.flags, t[i].want);
	}
}

/* Placeholders, with and without what they stand for. */
static void test_placeholders(void **state)
{
	(void)state;
	struct diagnosis d;
	struct diag_input in = { .outcome = DIAG_DEFERRED, .stage = STAGE_RCPT, .code = 450, .enhanced = "4.2.0",
				 .text = "Try again later", .attempt = 1 };
	diagnose(&in, NULL, &d);
	assert_string_equal(d.rule, "greylisting-likely");
	assert_non_null(strstr(d.cause, "(450 4.2.0 at RCPT"));

	struct diag_input pol = { .outcome = DIAG_REJECTED, .stage = STAGE_EOD, .code = 554, .enhanced = "5.7.1",
				  .text = "Policy rejection", .attempt = 1 };
	diagnose(&pol, NULL, &d);
	assert_string_equal(d.rule, "policy");
	assert_non_null(strstr(d.cause, "reason (5.7.1)"));

	/* {zone} without a zone */
	struct diag_findings f;
	memset(&f, 0, sizeof f);
	f.flags = DIAG_F_DNSBL_LISTED;
	struct diag_input bl = { .outcome = DIAG_REJECTED, .stage = STAGE_RCPT, .code = 550, .enhanced = "5.7.1",
				 .text = "Service unavailable", .attempt = 1 };
	diagnose(&bl, &f, &d);
	assert_string_equal(d.rule, "dnsbl-listed");
	assert_non_null(strstr(d.cause, "listed on a DNS blocklist"));

	/* {findings}: three joined by commas and "and" */
	f.flags = DIAG_F_SPF_FAIL | DIAG_F_DKIM_FAIL | DIAG_F_DMARC_FAIL;
	struct diag_input junk = { .outcome = DIAG_JUNK, .stage = STAGE_NONE, .folder = "Junk", .attempt = 1 };
	diagnose(&junk, &f, &d);
	assert_string_equal(d.rule, "junk-auth");
	assert_string_equal(d.cause, "delivered to the junk folder (Junk), and SPF does not authorise the sending IP, "
				     "there is no valid DKIM signature and DMARC fails or is not published");

	/* NULL strings are "" and a missing folder has words */
	struct diag_input bare = { .outcome = DIAG_JUNK, .stage = STAGE_NONE };
	diagnose(&bare, NULL, &d);
	assert_string_equal(d.rule, "junk");
	assert_non_null(strstr(d.cause, "(an unnamed folder)"));
}

/* diagnose_result reads the deciding session and the attempt number. */
static void test_result(void **state)
{
	(void)state;
	struct probe_result r;
	struct diagnosis d;
	probe_result_init(&r);
	r.smtp.outcome = OUTCOME_DEFERRED;
	r.smtp.stage = STAGE_RCPT;
	r.smtp.code = 451;
	snprintf(r.smtp.enhanced, sizeof r.smtp.enhanced, "4.3.2");
	snprintf(r.smtp.text, sizeof r.smtp.text, "System not accepting network messages");
	smtp_try_add_warning(&r.smtp, "server did not offer STARTTLS: sent without TLS");
	diagnose_result(&r, NULL, &d);
	assert_string_equal(d.rule, "system-not-accepting");

	r.smtp.outcome = OUTCOME_ACCEPTED;
	r.smtp.stage = STAGE_EOD;
	r.smtp.code = 250;
	r.attempt = 3;
	diagnose_result(&r, NULL, &d);
	assert_string_equal(d.rule, "accepted-retried");
	assert_non_null(strstr(d.cause, "at attempt 3"));
	probe_result_fini(&r);
}

/* ---- readback ---- */

static void test_readback(void **state)
{
	(void)state;
	struct diagnosis d;
	static const struct {
		struct diag_readback rb;
		int rc;
		const char *rule, *cause_has;
	} t[] = {
		{ { .status = "pending" }, -1, NULL, NULL },
		{ { .status = "skipped" }, -1, NULL, NULL },
		{ { .status = "found", .folder = "INBOX", .placement_ok = true, .spf = "pass", .dkim = "pass",
		    .dmarc = "pass" }, 0, "delivered", "delivered to INBOX" },
		{ { .status = "found", .folder = "Junk", .junk = true, .spf = "pass", .dkim = "pass", .dmarc = "pass" },
		  0, "junk", "(Junk)" },
		/* the receiver's verdicts count as findings */
		{ { .status = "found", .folder = "Junk", .junk = true, .spf = "pass", .dkim = "none", .dmarc = "none" },
		  0, "junk-auth", "there is no valid DKIM signature and DMARC fails" },
		{ { .status = "found", .folder = "Archive", .spf = "pass" }, 0, "misplaced", "to Archive" },
		{ { .status = "missing", .error = "not found within 30m" }, 0, "missing", "readback.timeout" },
		{ { .status = "error", .error = "login: refused" }, 0, "readback-error", "could not be read" },
		/* a failed bounce through the smarthost: the remote reply it reports */
		{ { .status = "bounced", .bounce_action = "failed", .bounce_status = "5.1.1", .bounce_code = 550,
		    .bounce_enhanced = "5.1.1", .bounce_stage = "rcpt",
		    .bounce_diagnostic = "550 5.1.1 <seed1@seed-a.test>: Recipient address rejected: User unknown in "
					 "virtual mailbox table" },
		  0, "bounced.user-unknown", "the relay accepted the probe, then bounced it: the receiver says" },
		/* a failed bounce without a reply code, status only */
		{ { .status = "bounced", .bounce_action = "failed", .bounce_status = "5.2.2", .bounce_stage = "unknown",
		    .bounce_diagnostic = "Mailbox Full" },
		  0, "bounced.mailbox-full", "bounced it: the seed mailbox is full" },
		/* a delayed notice explains a missing probe */
		{ { .status = "missing", .bounce_action = "delayed", .bounce_status = "4.4.1",
		    .bounce_diagnostic = "connect to mx.example.jp[192.0.2.79]:25: Connection timed out" },
		  0, "bounced.remote-network", "reported its delivery delayed" },
		/* a delayed notice, then delivered: delivered */
		{ { .status = "found", .folder = "INBOX", .placement_ok = true, .bounce_action = "delayed",
		    .bounce_status = "4.4.1" },
		  0, "delivered", "INBOX" },
		/* only the bounce mailbox watched, a delayed notice: the notice */
		{ { .status = "skipped", .bounce_action = "delayed", .bounce_status = "4.3.2", .bounce_code = 451,
		    .bounce_stage = "rcpt", .bounce_diagnostic = "451 4.3.2 System not accepting network messages" },
		  0, "bounced.system-not-accepting", "delayed" },
		/* a bounce whose wording the table does not know: the catch-all of its class */
		{ { .status = "bounced", .bounce_action = "failed", .bounce_status = "5.0.0", .bounce_diagnostic = "77" },
		  0, "bounced.rejected", "permanent refusal" },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		memset(&d, 0, sizeof d);
		int rc = diagnose_readback(&t[i].rb, NULL, &d);
		if (rc != t[i].rc)
			fail_msg("readback %zu (%s): got rc %d, want %d", i, t[i].rb.status, rc, t[i].rc);
		if (rc != 0)
			continue;
		if (strcmp(d.rule, t[i].rule) != 0 || !strstr(d.cause, t[i].cause_has))
			fail_msg("readback %zu (%s): got %s \"%s\", want %s with \"%s\"", i, t[i].rb.status, d.rule, d.cause,
				 t[i].rule, t[i].cause_has);
	}
	/* DNS findings and the verdicts together: a listing first */
	struct diag_findings f;
	memset(&f, 0, sizeof f);
	assert_int_equal(diag_findings_add_check(&f, "dnsbl:bl.test", "fail"), 0);
	struct diag_readback junk = { .status = "found", .folder = "Junk", .junk = true, .dkim = "none" };
	assert_int_equal(diagnose_readback(&junk, &f, &d), 0);
	assert_string_equal(d.rule, "junk-dnsbl");
	assert_non_null(strstr(d.next_step, "bl.test"));
	assert_int_equal(f.flags, DIAG_F_DNSBL_LISTED); /* the caller's findings are not changed */
}

/* ---- JSON ---- */

static char *result_line(const struct probe_result *r)
{
	struct strbuf sb;
	sb_init(&sb);
	probe_result_json(r, &sb, false);
	return sb_steal(&sb);
}

static void test_json(void **state)
{
	(void)state;
	struct probe_result r;
	probe_result_init(&r);
	snprintf(r.seed, sizeof r.seed, "s1");
	r.smtp.outcome = OUTCOME_DEFERRED;
	r.smtp.stage = STAGE_RCPT;
	r.smtp.code = 451;
	snprintf(r.smtp.enhanced, sizeof r.smtp.enhanced, "4.3.2");
	/* a reply text that tries to look like the member */
	snprintf(r.smtp.text, sizeof r.smtp.text, "x\",\"diagnosis\":{\"rule\":\"evil\"} System not accepting network messages");
	char *line = result_line(&r);
	const char *tail = "\"next_step\":\"retry later (the retry schedule does); if it lasts for hours, or only this "
			   "sender gets it, ask the receiver's postmaster\",\"rule\":\"system-not-accepting\"}}";
	size_t ll = strlen(line), tl = strlen(tail);
	if (ll < tl || strcmp(line + ll - tl, tail) != 0)
		fail_msg("the diagnosis is not the last member:\n got: %s\n want the end: %s", line, tail);
	assert_non_null(strstr(line, ",\"diagnosis\":{\"cause\":\"the receiving system is not accepting mail now"));
	assert_non_null(strstr(line, "\"final\":true,\"diagnosis\":{"));

	/* the readback's diagnosis replaces it; the rest, the tricky text included, stays */
	struct diagnosis d;
	struct diag_readback rb = { .status = "found", .folder = "Junk", .junk = true };
	assert_int_equal(diagnose_readback(&rb, NULL, &d), 0);
	char *repl = diagnosis_replace_json(line, &d);
	const char *at = strstr(line, ",\"diagnosis\":{\"cause\":\"the receiving");
	assert_non_null(at);
	if (strncmp(repl, line, (size_t)(at - line)) != 0)
		fail_msg("the part before the diagnosis changed:\n got: %s\n was: %s", repl, line);
	char *want = fmt("%.*s,\"diagnosis\":{\"cause\":\"%s\",\"next_step\":\"%s\",\"rule\":\"junk\"}}", (int)(at - line),
			 line, d.cause, d.next_step);
	assert_string_equal(repl, want);
	assert_non_null(strstr(repl, "{\\\"rule\\\":\\\"evil\\\"}")); /* the text, untouched */
	free(want);
	free(repl);
	free(line);
	probe_result_fini(&r);

	/* no diagnosis yet: appended */
	char *a = diagnosis_replace_json("{\"a\":1}", &d);
	char *wa = fmt("{\"a\":1,\"diagnosis\":{\"cause\":\"%s\",\"next_step\":\"%s\",\"rule\":\"junk\"}}", d.cause,
		       d.next_step);
	assert_string_equal(a, wa);
	free(a);
	free(wa);
	a = diagnosis_replace_json("{}", &d);
	wa = fmt("{\"diagnosis\":{\"cause\":\"%s\",\"next_step\":\"%s\",\"rule\":\"junk\"}}", d.cause, d.next_step);
	assert_string_equal(a, wa);
	free(a);
	free(wa);
	/* a nested "diagnosis" is not the member */
	a = diagnosis_replace_json("{\"x\":{\"diagnosis\":1},\"diagnosis\":{\"rule\":\"old\"},\"z\":2}", &d);
	wa = fmt("{\"x\":{\"diagnosis\":1},\"diagnosis\":{\"cause\":\"%s\",\"next_step\":\"%s\",\"rule\":\"junk\"},\"z\":2}",
		 d.cause, d.next_step);
	assert_string_equal(a, wa);
	free(a);
	free(wa);
}

/* ---- a result's DNS checks (the "dns" member) ---- */

static void test_result_dns(void **state)
{
	(void)state;
	struct probe_result r;
	struct diagnosis d;
	struct diag_findings f;
	probe_result_init(&r);
	snprintf(r.seed, sizeof r.seed, "s1");
	r.smtp.outcome = OUTCOME_DEFERRED;
	r.smtp.stage = STAGE_EHLO;
	r.smtp.code = 450;
	snprintf(r.smtp.enhanced, sizeof r.smtp.enhanced, "4.3.0");
	snprintf(r.smtp.text, sizeof r.smtp.text, "Error: command failed");
	/* without checks: no findings, no member */
	assert_null(diag_findings_of_result(&r, &f));
	char *line = result_line(&r);
	assert_null(strstr(line, "\"dns\":{"));
	assert_int_equal(diag_findings_from_json(line, &f), -1);
	assert_int_equal(f.flags, 0);
	diagnose_result(&r, NULL, &d);
	assert_string_equal(d.rule, "ehlo-refused");
	free(line);

	/* with them: the line carries them before the diagnosis, which they refine */
	r.dns = probe_dns_new();
	snprintf(r.dns->ip, sizeof r.dns->ip, "127.0.0.12");
	snprintf(r.dns->ip_from, sizeof r.dns->ip_from, "local_ip");
	r.dns->checked_at_ms = 1764340000123;
	r.dns->ms = 2.5;
	probe_dns_add(r.dns, "ptr", "fail", "127.0.0.12 has no PTR record (\"quoted\" \\ \u2192 }])");
	probe_dns_add(r.dns, "fcrdns", "fail", "no PTR name to confirm: NXDOMAIN");
	probe_dns_add(r.dns, "helo", "pass", "mx.lab.test → 127.0.0.12");
	probe_dns_add(r.dns, "dnsbl:dead.test", "error", "DNS timeout after 1000 ms");
	const struct diag_findings *fp = diag_findings_of_result(&r, &f);
	assert_ptr_equal(fp, &f);
	assert_int_equal(f.flags, DIAG_F_PTR_MISSING | DIAG_F_FCRDNS_FAIL);
	diagnose_result(&r, fp, &d);
	assert_string_equal(d.rule, "fix-ptr");
	line = result_line(&r);
	const char *want = ",\"dns\":{\"ip\":\"127.0.0.12\",\"ip_from\":\"local_ip\",\"checked_at\":\"2025-11-28T14:26:40.123Z\","
			   "\"ms\":2.500,\"cached\":false,\"checks\":[{\"name\":\"ptr\",\"status\":\"fail\",";
	if (!strstr(line, want))
		fail_msg("no dns member like\n want: %s\n  in: %s", want, line);
	assert_non_null(strstr(line, "\"dns\":{"));
	assert_true(strstr(line, "\"dns\":{") < strstr(line, ",\"diagnosis\":{"));
	assert_non_null(strstr(line, "\"rule\":\"fix-ptr\"}}"));
	/* and back from the line (what the readback's end does with the journal's copy) */
	struct diag_findings g;
	assert_int_equal(diag_findings_from_json(line, &g), 0);
	assert_int_equal(g.flags, f.flags);

	/* a copy is deep; a move leaves the source empty */
	struct probe_dns *c = probe_dns_copy(r.dns);
	assert_int_equal(c->n_checks, 4);
	assert_string_equal(c->checks[3].name, "dnsbl:dead.test");
	assert_ptr_not_equal(c->checks[0].detail, r.dns->checks[0].detail);
	probe_dns_free(c);
	probe_dns_free(NULL);
	struct probe_result m;
	probe_result_move(&m, &r);
	assert_null(r.dns);
	assert_int_equal(r.attempt, 1);
	assert_non_null(m.dns);
	probe_result_fini(&r);
	probe_result_fini(&m);
	free(line);
}

static void test_findings_from_json(void **state)
{
	(void)state;
	static const struct {
		const char *json;
		int rc;
		unsigned flags;
		const char *zone;
	} jcases[] = {
		{ "{\"dns\":{\"checks\":[{\"name\":\"ptr\",\"status\":\"fail\"}]}}", 0, DIAG_F_PTR_MISSING, "" },
		{ " { \"seed\" : \"a\" , \"dns\" : { \"ip\":\"1.2.3.4\", \"cached\":true, \"ms\":-1.5e3, \"checks\" : [ "
		  "{ \"detail\":\"x\\\"}]\", \"status\" : \"fail\", \"name\" : \"dnsbl:bl.test\" } , "
		  "{\"name\":\"helo\",\"status\":\"warn\"}, {\"name\":\"spf\",\"status\":\"fail\",\"x\":[1,{\"a\":null}]} ] } , "
		  "\"diagnosis\":{} }", 0, DIAG_F_DNSBL_LISTED | DIAG_F_SPF_FAIL, "bl.test" },
		{ "{\"dns\":{\"checks\":[]}}", 0, 0, "" },
		{ "{\"dns\":{}}", 0, 0, "" },
		/* "dns" only at the top level, never inside a string or a nested object */
		{ "{\"text\":\"\\\"dns\\\":{\\\"checks\\\":[{\\\"name\\\":\\\"ptr\\\",\\\"status\\\":\\\"fail\\\"}]}\"}", -1, 0, "" },
		{ "{\"smtp\":{\"dns\":{\"checks\":[{\"name\":\"ptr\",\"status\":\"fail\"}]}}}", -1, 0, "" },
		/* broken: nothing, never past the end */
		{ "{\"dns\":{\"checks\":[{\"name\":\"ptr\",\"status\":\"fail\"}", -1, 0, "" },
		{ "{\"dns\":{\"checks\":[{\"name\":\"ptr\",\"status\":\"fa", -1, 0, "" },
		{ "{\"dns\"", -1, 0, "" },
		{ "{\"dns\":", -1, 0, "" },
		{ "{\"a\":\"\\", -1, 0, "" },
		{ "{\"dns\":[1]}", -1, 0, "" },
		{ "[]", -1, 0, "" },
		{ "", -1, 0, "" },
		{ "{\"a\":[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]],\"dns\":{\"checks\":[]}}", -1, 0, "" },
	};
	for (size_t i = 0; i < sizeof jcases / sizeof jcases[0]; i++) {
		struct diag_findings f;
		memset(&f, 0xff, sizeof f);
		/* an exact-size copy, so that ASan sees a read past the end */
		size_t n = strlen(jcases[i].json);
		char *copy = malloc(n + 1);
		memcpy(copy, jcases[i].json, n + 1);
		int rc = diag_findings_from_json(copy, &f);
		if (rc != jcases[i].rc || f.flags != jcases[i].flags || strcmp(f.dnsbl_zone, jcases[i].zone) != 0)
			fail_msg("case %zu (%s): got rc %d flags %#x zone '%s', want rc %d flags %#x zone '%s'", i,
				 jcases[i].json, rc, f.flags, f.dnsbl_zone, jcases[i].rc, jcases[i].flags, jcases[i].zone);
		free(copy);
	}
	struct diag_findings f;
	assert_int_equal(diag_findings_from_json(NULL, &f), -1);
}

/* ---- the round ---- */

static void test_round(void **state)
{
	(void)state;
	struct diag_round_verdict v;
	static const struct diag_round_item one_refuses[] = {
		{ "a.test", OUTCOME_ACCEPTED, STAGE_EOD },
		{ "b.test", OUTCOME_DEFERRED, STAGE_RCPT },
		{ "c.test", OUTCOME_ACCEPTED, STAGE_EOD },
		{ "a.test", OUTCOME_ACCEPTED, STAGE_EOD },
	};
	assert_int_equal(diagnose_round(one_refuses, 4, &v), 0);
	assert_string_equal(v.rule, "round.provider");
	if (!strstr(v.cause, "only b.test (deferred at rcpt) refuses while 2 other providers accept"))
		fail_msg("got: %s", v.cause);

	static const struct diag_round_item two_refuse[] = {
		{ "a.test", OUTCOME_ACCEPTED, STAGE_EOD },
		{ "b.test", OUTCOME_DEFERRED, STAGE_RCPT },
		{ "c.test", OUTCOME_REJECTED, STAGE_EOD },
		{ "c.test", OUTCOME_ACCEPTED, STAGE_EOD }, /* one seed of c refused: c refuses */
	};
	assert_int_equal(diagnose_round(two_refuse, 4, &v), 0);
	assert_string_equal(v.rule, "round.provider");
	if (!strstr(v.cause, "only b.test (deferred at rcpt) and c.test (rejected at eod) refuse while 1 other provider accepts"))
		fail_msg("got: %s", v.cause);

	static const struct diag_round_item all_refuse[] = {
		{ "a.test", OUTCOME_DEFERRED, STAGE_RCPT },
		{ "b.test", OUTCOME_DEFERRED, STAGE_BANNER },
		{ "c.test", OUTCOME_FAILED, STAGE_CONNECT },
	};
	assert_int_equal(diagnose_round(all_refuse, 3, &v), 0);
	assert_string_equal(v.rule, "round.sender");
	assert_non_null(strstr(v.cause, "every provider refuses (all 3)"));
	assert_non_null(strstr(v.next_step, "mailcanary dns"));

	static const struct diag_round_item unreachable[] = {
		{ "a.test", OUTCOME_FAILED, STAGE_CONNECT },
		{ "b.test", OUTCOME_FAILED, STAGE_DNS },
	};
	assert_int_equal(diagnose_round(unreachable, 2, &v), 0);
	assert_string_equal(v.rule, "round.unreachable");

	static const struct diag_round_item single[] = {
		{ "a.test", OUTCOME_DEFERRED, STAGE_RCPT },
		{ "a.test", OUTCOME_ACCEPTED, STAGE_EOD },
	};
	assert_int_equal(diagnose_round(single, 2, &v), -1); /* one provider: nothing to compare */
	static const struct diag_round_item all_ok[] = {
		{ "a.test", OUTCOME_ACCEPTED, STAGE_EOD },
		{ "b.test", OUTCOME_ACCEPTED, STAGE_EOD },
	};
	assert_int_equal(diagnose_round(all_ok, 2, &v), -1);
	assert_int_equal(diagnose_round(NULL, 0, &v), -1);

	/* the accumulator keeps the latest attempt per probe */
	struct diag_round *rd = diag_round_new();
	diag_round_add(rd, "p1", "a.test", OUTCOME_DEFERRED, STAGE_RCPT);
	diag_round_add(rd, "p2", "b.test", OUTCOME_ACCEPTED, STAGE_EOD);
	assert_int_equal(diag_round_verdict(rd, &v), 0);
	assert_string_equal(v.rule, "round.provider");
	diag_round_add(rd, "p1", "a.test", OUTCOME_ACCEPTED, STAGE_EOD); /* its retry was accepted */
	assert_int_equal(diag_round_verdict(rd, &v), -1);
	for (int i = 0; i < 40; i++) { /* growth */
		char id[16];
		snprintf(id, sizeof id, "q%d", i);
		diag_round_add(rd, id, i % 2 ? "c.test" : "d.test", OUTCOME_DEFERRED, STAGE_RCPT);
	}
	assert_int_equal(diag_round_verdict(rd, &v), 0);
	assert_string_equal(v.rule, "round.provider");
	assert_non_null(strstr(v.cause, "only d.test (deferred at rcpt) and c.test (deferred at rcpt) refuse"));
	diag_round_free(rd);
	diag_round_free(NULL);
}

/* ---- the man page ---- */

static char *capture_rules(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	assert_non_null(fp);
	diag_rules_man(fp);
	fclose(fp);
	return buf;
}

/* The rule list in docs/mailcanary.8 is exactly diag_rules_man's output. */
static void test_man_page_current(void **state)
{
	(void)state;
	char *man = slurp(MON_SOURCE_DIR "/docs/mailcanary.8", NULL);
	char *rules = capture_rules();
	const char *b = strstr(man, "\n.\\\" BEGIN GENERATED DIAGNOSIS");
	const char *e = strstr(man, "\n.\\\" END GENERATED DIAGNOSIS");
	if (!b || !e || e < b)
		fail_msg("docs/mailcanary.8 lacks the GENERATED DIAGNOSIS markers");
	b = strchr(b + 1, '\n') + 1;
	e++;
	if ((size_t)(e - b) != strlen(rules) || strncmp(b, rules, (size_t)(e - b)) != 0)
		fail_msg("docs/mailcanary.8: the diagnosis rules differ from the table; run "
			 "cmake --build BUILD --target diag-docs");
	/* every rule is in it */
	for (size_t i = 0; i < diag_n_rules; i++) {
		char *esc = fmt(".B %s\n", diag_rules[i].id);
		char *p = esc;
		struct strbuf sb;
		sb_init(&sb);
		for (; *p; p++) {
			if (*p == '-')
				sb_append(&sb, "\\-");
			else
				sb_appendc(&sb, *p);
		}
		if (!strstr(rules, sb.s))
			fail_msg("rule %s is not in the man page output", diag_rules[i].id);
		sb_fini(&sb);
		free(esc);
	}
	free(rules);
	free(man);
}

/* ---- the real bounces of tests/data/dsn ---- */

/* Sisimai's reasons and the rules that say the same (bounced.RULE). */
static const struct {
	const char *reason;
	const char *rules[6];
} reason_rules[] = {
	{ "userunknown", { "user-unknown", "mailbox-disabled" } },
	{ "mailboxfull", { "mailbox-full" } },
	{ "toomanyconn", { "rate-limit" } },
	{ "badreputation", { "reputation" } },
	{ "requireptr", { "rdns", "helo" } },
	{ "authfailure", { "spf", "dkim", "dmarc" } },
	{ "exceedlimit", { "message-too-big" } },
	{ "suspend", { "mailbox-disabled" } },
	{ "expired", { "expired", "remote-network" } },
	{ "spamdetected", { "content", "reputation" } },
	{ "blocked", { "blocklist", "rdns", "reputation", "rate-limit", "system-not-accepting" } },
	{ "policyviolation", { "policy", "content" } },
};

static void test_dsn_corpus(void **state)
{
	(void)state;
	const char *dir = getenv("MAILCANARY_DSN_CORPUS");
	if (!dir)
		dir = MON_SOURCE_DIR "/tests/data/dsn";
	char *tsv_path = fmt("%s/expected.tsv", dir);
	char *tsv = slurp_opt(tsv_path, NULL);
	free(tsv_path);
	if (!tsv) {
		print_message("no DSN corpus in %s: skipped\n", dir);
		skip();
	}
	int compared = 0, agreed = 0;
	char *save = NULL;
	for (char *line = strtok_r(tsv, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *cols[13] = { 0 };
		int nc = 0;
		for (char *p = line; nc < 13; nc++) {
			cols[nc] = p;
			char *tab = strchr(p, '\t');
			if (!tab) {
				nc++;
				break;
			}
			*tab = '\0';
			p = tab + 1;
		}
		if (nc < 6 || strcmp(cols[0], "file") == 0)
			continue;
		const char *reason = cols[5];
		size_t k = 0;
		while (k < sizeof reason_rules / sizeof reason_rules[0] && strcmp(reason_rules[k].reason, reason) != 0)
			k++;
		if (k == sizeof reason_rules / sizeof reason_rules[0])
			continue; /* a reason without a rule of ours */
		char *path = fmt("%s/eml/%s", dir, cols[0]);
		size_t len;
		char *msg = slurp(path, &len);
		struct dsn_report *rep = calloc(1, sizeof *rep);
		assert_non_null(rep);
		if (dsn_parse(msg, len, rep) == 0 && rep->n_recipients > 0) {
			const struct dsn_recipient *rc = &rep->recipients[0];
			struct diag_readback rb = {
				.status = "bounced",
				.bounce_action = rc->action[0] ? rc->action : "failed",
				.bounce_status = rc->status,
				.bounce_code = rc->reply_code,
				.bounce_enhanced = rc->enhanced,
				.bounce_stage = rc->stage,
				.bounce_diagnostic = rc->diagnostic,
			};
			struct diagnosis d;
			assert_int_equal(diagnose_readback(&rb, NULL, &d), 0);
			assert_int_equal(strncmp(d.rule, "bounced.", 8), 0);
			bool ok = false;
			for (size_t r = 0; r < 6 && reason_rules[k].rules[r]; r++)
				ok |= strcmp(d.rule + 8, reason_rules[k].rules[r]) == 0;
			compared++;
			agreed += ok;
			if (!ok)
				print_message("  %s: %s, diagnosed %s (%s %s: %.100s)\n", cols[0], reason, d.rule, rc->status,
					      rc->stage, rc->diagnostic);
		}
		free(rep);
		free(msg);
		free(path);
	}
	free(tsv);
	print_message("DSN corpus: %d of %d bounces diagnosed as their expected reason says\n", agreed, compared);
	/* The ratchet: raise it when the table gets better, never lower it. The 10 left: Sisimai's
	 * label disagrees with the text (rfc3464-01, powermta-01, ezweb-02: "User Unknown" labelled
	 * mailboxfull or suspend), no diagnostic at all (rfc3464-07, exim-60), a delay warning
	 * (sendmail-29), or wording that names no reason (rfc3464-51 "Address rejected", postfix-30
	 * "Access denied", spectrum-01 "sender rejected", exim-01 "use the smtp server of your ISP"). */
	if (compared < 99 || agreed < 89)
		fail_msg("DSN corpus: %d of %d agree; want at least 89 of 99", agreed, compared);
}

int main(void)
{
	size_t n = diag_n_rules;
	struct CMUnitTest *rules = calloc(n, sizeof *rules);
	size_t *idx = calloc(n, sizeof *idx);
	if (!rules || !idx)
		return 1;
	for (size_t i = 0; i < n; i++) {
		idx[i] = i;
		rules[i].name = diag_rules[i].id;
		rules[i].test_func = test_rule;
		rules[i].initial_state = &idx[i];
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases_name_rules),
		cmocka_unit_test(test_table_sane),
		cmocka_unit_test(test_every_outcome_diagnosed),
		cmocka_unit_test(test_findings_from_checks),
		cmocka_unit_test(test_findings_from_auth),
		cmocka_unit_test(test_placeholders),
		cmocka_unit_test(test_result),
		cmocka_unit_test(test_readback),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_result_dns),
		cmocka_unit_test(test_findings_from_json),
		cmocka_unit_test(test_round),
		cmocka_unit_test(test_man_page_current),
		cmocka_unit_test(test_dsn_corpus),
	};
	int rc = _cmocka_run_group_tests("diagnosis rules (one test per rule)", rules, n, NULL, NULL);
	rc += cmocka_run_group_tests_name("diagnosis", tests, NULL, NULL);
	free(rules);
	free(idx);
	return rc ? 1 : 0;
}
