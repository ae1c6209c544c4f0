/* Unit tests: bounces (dsn.c). Postfix 3.7 DSNs of the kind a smarthost sends back in relay mode,
 * the returned headers (token, Message-ID) wherever a bounce puts them, MIME and field-block
 * quirks, stage wording, truncated input, and the 135 real bounces of the shared corpus
 * (Sisimai's set-of-emails) compared with expected.tsv, with a ratchet on the agreement. The
 * Postfix samples are real Postfix 3.7 bounces, made as described above them.
 *
 * The corpus is tests/data/dsn (README.md and LICENSE there; $MAILCANARY_DSN_CORPUS names another
 * copy); without it that test is
 * skipped. Differences known and explained are listed in tests/unit/data/dsn-known-differences.tsv. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dsn.h"
#include "testutil.h"

/* ---- samples ---- */

/* Real Postfix 3.7.11 (Debian 12) output, byte for byte: a private instance (relayhost
 * [127.0.0.1]:PORT, hence the address as the remote host; delay_warning_time = 2s) relaying
 * a probe (as message_build writes it, submitted with sendmail(1)) to smtp-sink, which refused at RCPT TO (-f RCPT, -r RCPT), at end of data
 * (-f .) and in its greeting (-f CONNECT; Postfix treats a 5xx greeting as a soft error), or was
 * not running; virtual(8) delivered the bounces to the sender's Maildir. */
static const char postfix_failed[] =
	"Return-Path: <>\n"
	"X-Original-To: canary@example.com\n"
	"Delivered-To: canary@example.com\n"
	"Received: by smtp.example.net (Postfix)\n"
	"\tid 4F6B5A86A7E; Sat, 28 Nov 2026 11:10:38 +0000 (UTC)\n"
	"Date: Sat, 28 Nov 2026 11:10:38 +0000 (UTC)\n"
	"From: Mail Delivery System <MAILER-DAEMON@example.com>\n"
	"Subject: Undelivered Mail Returned to Sender\n"
	"To: canary@example.com\n"
	"Auto-Submitted: auto-replied\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/report; report-type=delivery-status;\n"
	"\tboundary=\"3FD1FA86A7C.1795864238/smtp.example.net\"\n"
	"Content-Transfer-Encoding: 8bit\n"
	"Message-Id: <20261128111038.4F6B5A86A7E@smtp.example.net>\n"
	"\n"
	"This is a MIME-encapsulated message.\n"
	"\n"
	"--3FD1FA86A7C.1795864238/smtp.example.net\n"
	"Content-Description: Notification\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"This is the mail system at host smtp.example.net.\n"
	"\n"
	"I'm sorry to have to inform you that your message could not\n"
	"be delivered to one or more recipients. It's attached below.\n"
	"\n"
	"For further assistance, please send mail to postmaster.\n"
	"\n"
	"If you do so, please include this problem report. You can\n"
	"delete your own text from the attached returned message.\n"
	"\n"
	"                   The mail system\n"
	"\n"
	"<seed1@seed-a.test>: host 127.0.0.1[127.0.0.1] said: 550 5.1.1\n"
	"    <seed1@seed-a.test>: Recipient address rejected: User unknown in virtual\n"
	"    mailbox table (in reply to RCPT TO command)\n"
	"\n"
	"--3FD1FA86A7C.1795864238/smtp.example.net\n"
	"Content-Description: Delivery report\n"
	"Content-Type: message/delivery-status\n"
	"\n"
	"Reporting-MTA: dns; smtp.example.net\n"
	"X-Postfix-Queue-ID: 3FD1FA86A7C\n"
	"X-Postfix-Sender: rfc822; canary@example.com\n"
	"Arrival-Date: Sat, 28 Nov 2026 11:10:38 +0000 (UTC)\n"
	"\n"
	"Final-Recipient: rfc822; seed1@seed-a.test\n"
	"Original-Recipient: rfc822;seed1@seed-a.test\n"
	"Action: failed\n"
	"Status: 5.1.1\n"
	"Remote-MTA: dns; 127.0.0.1\n"
	"Diagnostic-Code: smtp; 550 5.1.1 <seed1@seed-a.test>: Recipient address\n"
	"    rejected: User unknown in virtual mailbox table\n"
	"\n"
	"--3FD1FA86A7C.1795864238/smtp.example.net\n"
	"Content-Description: Undelivered Message\n"
	"Content-Type: message/rfc822\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"Return-Path: <canary@example.com>\n"
	"Received: by smtp.example.net (Postfix, from userid 0)\n"
	"\tid 3FD1FA86A7C; Sat, 28 Nov 2026 11:10:38 +0000 (UTC)\n"
	"Date: Tue, 03 Nov 2026 06:12:00 +0000\n"
	"From: mailcanary <canary@example.com>\n"
	"To: <seed1@seed-a.test>\n"
	"Subject: mailcanary probe seed-a 6ae9b3704f1c2a09b3e4d7f8a2c6e1b5\n"
	"Message-ID: <6ae9b3704f1c2a09b3e4d7f8a2c6e1b5@example.com>\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=us-ascii\n"
	"Content-Transfer-Encoding: 7bit\n"
	"X-Mailcanary-Token: v1.6ae9b3704f1c2a09b3e4d7f8a2c6e1b5.1793700720123.4be1c6a8d02f9e7b3c5a1d8f6e2b0c97\n"
	"\n"
	"This is a delivery probe sent by mailcanary, a mail deliverability monitor.\n"
	"\n"
	"--3FD1FA86A7C.1795864238/smtp.example.net--\n";

static const char postfix_delayed[] =
	"Return-Path: <>\n"
	"X-Original-To: canary@example.com\n"
	"Delivered-To: canary@example.com\n"
	"Received: by smtp.example.net (Postfix)\n"
	"\tid B9BACA86AAE; Sat, 28 Nov 2026 11:10:49 +0000 (UTC)\n"
	"Date: Sat, 28 Nov 2026 11:10:49 +0000 (UTC)\n"
	"From: Mail Delivery System <MAILER-DAEMON@example.com>\n"
	"Subject: Delayed Mail (still being retried)\n"
	"To: canary@example.com\n"
	"Auto-Submitted: auto-replied\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/report; report-type=delivery-status;\n"
	"\tboundary=\"AF3D0A86AA6.1795864249/smtp.example.net\"\n"
	"Content-Transfer-Encoding: 8bit\n"
	"Message-Id: <20261128111049.B9BACA86AAE@smtp.example.net>\n"
	"\n"
	"This is a MIME-encapsulated message.\n"
	"\n"
	"--AF3D0A86AA6.1795864249/smtp.example.net\n"
	"Content-Description: Notification\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"This is the mail system at host smtp.example.net.\n"
	"\n"
	"####################################################################\n"
	"# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
	"####################################################################\n"
	"\n"
	"Your message could not be delivered for more than 0 hour(s).\n"
	"It will be retried until it is 5 day(s) old.\n"
	"\n"
	"For further assistance, please send mail to postmaster.\n"
	"\n"
	"If you do so, please include this problem report. You can\n"
	"delete your own text from the attached returned message.\n"
	"\n"
	"                   The mail system\n"
	"\n"
	"<seed1@seed-a.test>: host 127.0.0.1[127.0.0.1] said: 451 4.7.1\n"
	"    <seed1@seed-a.test>: Recipient address rejected: Greylisted, see\n"
	"    http://postgrey.schweikert.ch/help/seed-a.test.html (in reply to RCPT TO\n"
	"    command)\n"
	"\n"
	"--AF3D0A86AA6.1795864249/smtp.example.net\n"
	"Content-Description: Delivery report\n"
	"Content-Type: message/delivery-status\n"
	"\n"
	"Reporting-MTA: dns; smtp.example.net\n"
	"X-Postfix-Queue-ID: AF3D0A86AA6\n"
	"X-Postfix-Sender: rfc822; canary@example.com\n"
	"Arrival-Date: Sat, 28 Nov 2026 11:10:48 +0000 (UTC)\n"
	"\n"
	"Final-Recipient: rfc822; seed1@seed-a.test\n"
	"Original-Recipient: rfc822;seed1@seed-a.test\n"
	"Action: delayed\n"
	"Status: 4.7.1\n"
	"Remote-MTA: dns; 127.0.0.1\n"
	"Diagnostic-Code: smtp; 451 4.7.1 <seed1@seed-a.test>: Recipient address\n"
	"    rejected: Greylisted, see\n"
	"    http://postgrey.schweikert.ch/help/seed-a.test.html\n"
	"Will-Retry-Until: Thu,  3 Dec 2026 11:10:48 +0000 (UTC)\n"
	"\n"
	"--AF3D0A86AA6.1795864249/smtp.example.net\n"
	"Content-Description: Undelivered Message Headers\n"
	"Content-Type: text/rfc822-headers\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"Return-Path: <canary@example.com>\n"
	"Received: by smtp.example.net (Postfix, from userid 0)\n"
	"\tid AF3D0A86AA6; Sat, 28 Nov 2026 11:10:48 +0000 (UTC)\n"
	"Date: Tue, 03 Nov 2026 06:12:00 +0000\n"
	"From: mailcanary <canary@example.com>\n"
	"To: <seed1@seed-a.test>\n"
	"Subject: mailcanary probe seed-a 6ae9b3704f1c2a09b3e4d7f8a2c6e1b5\n"
	"Message-ID: <6ae9b3704f1c2a09b3e4d7f8a2c6e1b5@example.com>\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=us-ascii\n"
	"Content-Transfer-Encoding: 7bit\n"
	"X-Mailcanary-Token: v1.6ae9b3704f1c2a09b3e4d7f8a2c6e1b5.1793700720123.4be1c6a8d02f9e7b3c5a1d8f6e2b0c97\n"
	"\n"
	"--AF3D0A86AA6.1795864249/smtp.example.net--\n";

static const char postfix_failed_eod[] =
	"Return-Path: <>\n"
	"X-Original-To: canary@example.com\n"
	"Delivered-To: canary@example.com\n"
	"Received: by smtp.example.net (Postfix)\n"
	"\tid 73EB1A86ADD; Sat, 28 Nov 2026 11:11:02 +0000 (UTC)\n"
	"Date: Sat, 28 Nov 2026 11:11:02 +0000 (UTC)\n"
	"From: Mail Delivery System <MAILER-DAEMON@example.com>\n"
	"Subject: Undelivered Mail Returned to Sender\n"
	"To: canary@example.com\n"
	"Auto-Submitted: auto-replied\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/report; report-type=delivery-status;\n"
	"\tboundary=\"6C820A86ADC.1795864262/smtp.example.net\"\n"
	"Content-Transfer-Encoding: 8bit\n"
	"Message-Id: <20261128111102.73EB1A86ADD@smtp.example.net>\n"
	"\n"
	"This is a MIME-encapsulated message.\n"
	"\n"
	"--6C820A86ADC.1795864262/smtp.example.net\n"
	"Content-Description: Notification\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"This is the mail system at host smtp.example.net.\n"
	"\n"
	"I'm sorry to have to inform you that your message could not\n"
	"be delivered to one or more recipients. It's attached below.\n"
	"\n"
	"For further assistance, please send mail to postmaster.\n"
	"\n"
	"If you do so, please include this problem report. You can\n"
	"delete your own text from the attached returned message.\n"
	"\n"
	"                   The mail system\n"
	"\n"
	"<seed1@seed-a.test>: host 127.0.0.1[127.0.0.1] said: 554 5.7.1 Message\n"
	"    rejected: spam content detected (in reply to end of DATA command)\n"
	"\n"
	"--6C820A86ADC.1795864262/smtp.example.net\n"
	"Content-Description: Delivery report\n"
	"Content-Type: message/delivery-status\n"
	"\n"
	"Reporting-MTA: dns; smtp.example.net\n"
	"X-Postfix-Queue-ID: 6C820A86ADC\n"
	"X-Postfix-Sender: rfc822; canary@example.com\n"
	"Arrival-Date: Sat, 28 Nov 2026 11:11:02 +0000 (UTC)\n"
	"\n"
	"Final-Recipient: rfc822; seed1@seed-a.test\n"
	"Original-Recipient: rfc822;seed1@seed-a.test\n"
	"Action: failed\n"
	"Status: 5.7.1\n"
	"Remote-MTA: dns; 127.0.0.1\n"
	"Diagnostic-Code: smtp; 554 5.7.1 Message rejected: spam content detected\n"
	"\n"
	"--6C820A86ADC.1795864262/smtp.example.net\n"
	"Content-Description: Undelivered Message\n"
	"Content-Type: message/rfc822\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"Return-Path: <canary@example.com>\n"
	"Received: by smtp.example.net (Postfix, from userid 0)\n"
	"\tid 6C820A86ADC; Sat, 28 Nov 2026 11:11:02 +0000 (UTC)\n"
	"Date: Tue, 03 Nov 2026 06:12:00 +0000\n"
	"From: mailcanary <canary@example.com>\n"
	"To: <seed1@seed-a.test>\n"
	"Subject: mailcanary probe seed-a 6ae9b3704f1c2a09b3e4d7f8a2c6e1b5\n"
	"Message-ID: <6ae9b3704f1c2a09b3e4d7f8a2c6e1b5@example.com>\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=us-ascii\n"
	"Content-Transfer-Encoding: 7bit\n"
	"X-Mailcanary-Token: v1.6ae9b3704f1c2a09b3e4d7f8a2c6e1b5.1793700720123.4be1c6a8d02f9e7b3c5a1d8f6e2b0c97\n"
	"\n"
	"This is a delivery probe sent by mailcanary, a mail deliverability monitor.\n"
	"\n"
	"--6C820A86ADC.1795864262/smtp.example.net--\n";

static const char postfix_banner[] =
	"Return-Path: <>\n"
	"X-Original-To: canary@example.com\n"
	"Delivered-To: canary@example.com\n"
	"Received: by smtp.example.net (Postfix)\n"
	"\tid 794B4A86AF4; Sat, 28 Nov 2026 11:11:08 +0000 (UTC)\n"
	"Date: Sat, 28 Nov 2026 11:11:08 +0000 (UTC)\n"
	"From: Mail Delivery System <MAILER-DAEMON@example.com>\n"
	"Subject: Delayed Mail (still being retried)\n"
	"To: canary@example.com\n"
	"Auto-Submitted: auto-replied\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/report; report-type=delivery-status;\n"
	"\tboundary=\"6E4E4A86AEF.1795864268/smtp.example.net\"\n"
	"Content-Transfer-Encoding: 8bit\n"
	"Message-Id: <20261128111108.794B4A86AF4@smtp.example.net>\n"
	"\n"
	"This is a MIME-encapsulated message.\n"
	"\n"
	"--6E4E4A86AEF.1795864268/smtp.example.net\n"
	"Content-Description: Notification\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"This is the mail system at host smtp.example.net.\n"
	"\n"
	"####################################################################\n"
	"# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
	"####################################################################\n"
	"\n"
	"Your message could not be delivered for more than 0 hour(s).\n"
	"It will be retried until it is 5 day(s) old.\n"
	"\n"
	"For further assistance, please send mail to postmaster.\n"
	"\n"
	"If you do so, please include this problem report. You can\n"
	"delete your own text from the attached returned message.\n"
	"\n"
	"                   The mail system\n"
	"\n"
	"<seed1@seed-a.test>: host 127.0.0.1[127.0.0.1] refused to talk to me: 554 5.7.1\n"
	"    Service unavailable; client [127.0.0.1] blocked using zen.spamhaus.org\n"
	"\n"
	"--6E4E4A86AEF.1795864268/smtp.example.net\n"
	"Content-Description: Delivery report\n"
	"Content-Type: message/delivery-status\n"
	"\n"
	"Reporting-MTA: dns; smtp.example.net\n"
	"X-Postfix-Queue-ID: 6E4E4A86AEF\n"
	"X-Postfix-Sender: rfc822; canary@example.com\n"
	"Arrival-Date: Sat, 28 Nov 2026 11:11:07 +0000 (UTC)\n"
	"\n"
	"Final-Recipient: rfc822; seed1@seed-a.test\n"
	"Original-Recipient: rfc822;seed1@seed-a.test\n"
	"Action: delayed\n"
	"Status: 4.7.1\n"
	"Remote-MTA: dns; 127.0.0.1\n"
	"Diagnostic-Code: smtp; 554 5.7.1 Service unavailable; client [127.0.0.1]\n"
	"    blocked using zen.spamhaus.org\n"
	"Will-Retry-Until: Thu,  3 Dec 2026 11:11:07 +0000 (UTC)\n"
	"\n"
	"--6E4E4A86AEF.1795864268/smtp.example.net\n"
	"Content-Description: Undelivered Message Headers\n"
	"Content-Type: text/rfc822-headers\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"Return-Path: <canary@example.com>\n"
	"Received: by smtp.example.net (Postfix, from userid 0)\n"
	"\tid 6E4E4A86AEF; Sat, 28 Nov 2026 11:11:07 +0000 (UTC)\n"
	"Date: Tue, 03 Nov 2026 06:12:00 +0000\n"
	"From: mailcanary <canary@example.com>\n"
	"To: <seed1@seed-a.test>\n"
	"Subject: mailcanary probe seed-a 6ae9b3704f1c2a09b3e4d7f8a2c6e1b5\n"
	"Message-ID: <6ae9b3704f1c2a09b3e4d7f8a2c6e1b5@example.com>\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=us-ascii\n"
	"Content-Transfer-Encoding: 7bit\n"
	"X-Mailcanary-Token: v1.6ae9b3704f1c2a09b3e4d7f8a2c6e1b5.1793700720123.4be1c6a8d02f9e7b3c5a1d8f6e2b0c97\n"
	"\n"
	"--6E4E4A86AEF.1795864268/smtp.example.net--\n";

static const char postfix_connect[] =
	"Return-Path: <>\n"
	"X-Original-To: canary@example.com\n"
	"Delivered-To: canary@example.com\n"
	"Received: by smtp.example.net (Postfix)\n"
	"\tid 48A0CA86A34; Sat, 28 Nov 2026 11:10:26 +0000 (UTC)\n"
	"Date: Sat, 28 Nov 2026 11:10:26 +0000 (UTC)\n"
	"From: Mail Delivery System <MAILER-DAEMON@example.com>\n"
	"Subject: Delayed Mail (still being retried)\n"
	"To: canary@example.com\n"
	"Auto-Submitted: auto-replied\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/report; report-type=delivery-status;\n"
	"\tboundary=\"2E421A86A2E.1795864226/smtp.example.net\"\n"
	"Content-Transfer-Encoding: 8bit\n"
	"Message-Id: <20261128111026.48A0CA86A34@smtp.example.net>\n"
	"\n"
	"This is a MIME-encapsulated message.\n"
	"\n"
	"--2E421A86A2E.1795864226/smtp.example.net\n"
	"Content-Description: Notification\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"This is the mail system at host smtp.example.net.\n"
	"\n"
	"####################################################################\n"
	"# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
	"####################################################################\n"
	"\n"
	"Your message could not be delivered for more than 0 hour(s).\n"
	"It will be retried until it is 5 day(s) old.\n"
	"\n"
	"For further assistance, please send mail to postmaster.\n"
	"\n"
	"If you do so, please include this problem report. You can\n"
	"delete your own text from the attached returned message.\n"
	"\n"
	"                   The mail system\n"
	"\n"
	"<seed1@seed-a.test>: connect to 127.0.0.1[127.0.0.1]:60629: Connection refused\n"
	"\n"
	"--2E421A86A2E.1795864226/smtp.example.net\n"
	"Content-Description: Delivery report\n"
	"Content-Type: message/delivery-status\n"
	"\n"
	"Reporting-MTA: dns; smtp.example.net\n"
	"X-Postfix-Queue-ID: 2E421A86A2E\n"
	"X-Postfix-Sender: rfc822; canary@example.com\n"
	"Arrival-Date: Sat, 28 Nov 2026 11:10:25 +0000 (UTC)\n"
	"\n"
	"Final-Recipient: rfc822; seed1@seed-a.test\n"
	"Original-Recipient: rfc822;seed1@seed-a.test\n"
	"Action: delayed\n"
	"Status: 4.4.1\n"
	"Diagnostic-Code: X-Postfix; connect to 127.0.0.1[127.0.0.1]:60629: Connection\n"
	"    refused\n"
	"Will-Retry-Until: Thu,  3 Dec 2026 11:10:25 +0000 (UTC)\n"
	"\n"
	"--2E421A86A2E.1795864226/smtp.example.net\n"
	"Content-Description: Undelivered Message Headers\n"
	"Content-Type: text/rfc822-headers\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"Return-Path: <canary@example.com>\n"
	"Received: by smtp.example.net (Postfix, from userid 0)\n"
	"\tid 2E421A86A2E; Sat, 28 Nov 2026 11:10:25 +0000 (UTC)\n"
	"Date: Tue, 03 Nov 2026 06:12:00 +0000\n"
	"From: mailcanary <canary@example.com>\n"
	"To: <seed1@seed-a.test>\n"
	"Subject: mailcanary probe seed-a 6ae9b3704f1c2a09b3e4d7f8a2c6e1b5\n"
	"Message-ID: <6ae9b3704f1c2a09b3e4d7f8a2c6e1b5@example.com>\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=us-ascii\n"
	"Content-Transfer-Encoding: 7bit\n"
	"X-Mailcanary-Token: v1.6ae9b3704f1c2a09b3e4d7f8a2c6e1b5.1793700720123.4be1c6a8d02f9e7b3c5a1d8f6e2b0c97\n"
	"\n"
	"--2E421A86A2E.1795864226/smtp.example.net--\n";

#define TOKEN "v1.6ae9b3704f1c2a09b3e4d7f8a2c6e1b5.1793700720123.4be1c6a8d02f9e7b3c5a1d8f6e2b0c97"
#define MSGID "<6ae9b3704f1c2a09b3e4d7f8a2c6e1b5@example.com>"

/* The probe as it reached the smarthost (mailcanary's message_build plus the smarthost's
 * Received), the returned message of the samples built below. */
static const char returned_probe[] =
	"Return-Path: <canary@example.com>\n"
	"Received: from probe.example.com (probe.example.com [192.0.2.25])\n"
	"\tby smtp.example.net (Postfix) with ESMTPSA id 4C2F81A0B3\n"
	"\tfor <seed1@seed-a.test>; Tue,  3 Nov 2026 06:12:00 +0000 (UTC)\n"
	"Date: Tue, 03 Nov 2026 06:12:00 +0000\n"
	"From: mailcanary <canary@example.com>\n"
	"To: <seed1@seed-a.test>\n"
	"Subject: mailcanary probe seed-a 6ae9b3704f1c2a09b3e4d7f8a2c6e1b5\n"
	"Message-ID: " MSGID "\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=us-ascii\n"
	"Content-Transfer-Encoding: 7bit\n"
	"X-Mailcanary-Token: " TOKEN "\n"
	"\n"
	"This is a delivery probe sent by mailcanary, a mail deliverability monitor.\n";

/* qmail: plain text, the original quoted below a separator. */
static const char qmail_plain[] =
	"Return-Path: <>\n"
	"Date: 3 Nov 2026 06:12:04 -0000\n"
	"From: MAILER-DAEMON@mx.seed-b.test\n"
	"To: canary@example.com\n"
	"Subject: failure notice\n"
	"\n"
	"Hi. This is the qmail-send program at mx.seed-b.test.\n"
	"I'm afraid I wasn't able to deliver your message to the following addresses.\n"
	"This is a permanent error; I've given up. Sorry it didn't work out.\n"
	"\n"
	"<seed2@seed-b.test>:\n"
	"192.0.2.30 does not like recipient.\n"
	"Remote host said: 550 5.1.1 <seed2@seed-b.test>: Recipient address rejected: User unknown\n"
	"Giving up on 192.0.2.30.\n"
	"\n"
	"--- Below this line is a copy of the message.\n"
	"\n"
	"Return-Path: <canary@example.com>\n"
	"Received: (qmail 4711 invoked from network); 3 Nov 2026 06:12:03 -0000\n"
	"Message-ID: <0123456789abcdef0123456789abcdef@example.com>\n"
	"Date: Tue, 03 Nov 2026 06:12:00 +0000\n"
	"From: mailcanary <canary@example.com>\n"
	"To: <seed2@seed-b.test>\n"
	"X-Mailcanary-Token: v1.0123456789abcdef0123456789abcdef.1793700720000.00112233445566778899aabbccddeeff\n"
	"\n"
	"This is a delivery probe sent by mailcanary, a mail deliverability monitor.\n";

/* Exim 4.9x: plain text, two recipients, the stage in the wording. */
static const char exim_plain[] =
	"From: Mail Delivery System <Mailer-Daemon@mx.seed-c.test>\n"
	"To: canary@example.com\n"
	"Subject: Mail delivery failed: returning message to sender\n"
	"X-Failed-Recipients: seed3@seed-c.test, seed4@seed-c.test\n"
	"Auto-Submitted: auto-replied\n"
	"\n"
	"This message was created automatically by mail delivery software.\n"
	"\n"
	"A message that you sent could not be delivered to one or more of its\n"
	"recipients. This is a permanent error. The following address(es) failed:\n"
	"\n"
	"  seed3@seed-c.test\n"
	"    host mx.seed-c.test [192.0.2.40]\n"
	"    SMTP error from remote mail server after end of data:\n"
	"    550 5.7.1 Message rejected due to content restrictions\n"
	"  seed4@seed-c.test\n"
	"    host mx.seed-c.test [192.0.2.40]\n"
	"    SMTP error from remote mail server after RCPT TO:<seed4@seed-c.test>:\n"
	"    550 5.1.1 <seed4@seed-c.test>: No such user\n"
	"\n"
	"------ This is a copy of the message, including all the headers. ------\n"
	"\n"
	"Return-path: <canary@example.com>\n"
	"Message-ID: <fedcba9876543210fedcba9876543210@example.com>\n"
	"X-Mailcanary-Token:\n"
	"\tv1.fedcba9876543210fedcba9876543210.1793700720000.ffeeddccbbaa99887766554433221100\n"
	"\n"
	"body\n";

/* Exchange Online: the returned headers quoted in a quoted-printable text part, a soft line
 * break in the middle of the token. */
static const char o365_qp[] =
	"From: Microsoft Outlook <postmaster@seed-d.test>\n"
	"To: <canary@example.com>\n"
	"Subject: Undeliverable: mailcanary probe\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/report; report-type=delivery-status;\n"
	"\tboundary=\"b1_ff00\"\n"
	"\n"
	"--b1_ff00\n"
	"Content-Type: multipart/alternative; differences=Content-Type;\n"
	"\tboundary=b2_ee11\n"
	"\n"
	"--b2_ee11\n"
	"Content-Type: text/plain; charset=\"us-ascii\"\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"Delivery has failed to these recipients or groups:\n"
	"\n"
	"seed5@seed-d.test<mailto:seed5@seed-d.test>\n"
	"The email address wasn't found at the destination domain.\n"
	"\n"
	"Diagnostic information for administrators:\n"
	"\n"
	"Generating server: AM0PR01MB0001.eurprd01.prod.outlook.com\n"
	"\n"
	"seed5@seed-d.test\n"
	"Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipien=\n"
	"t not found by SMTP address lookup'\n"
	"\n"
	"Original message headers:\n"
	"\n"
	"Message-ID: <aaaabbbbccccddddeeeeffff00001111@example.com>\n"
	"X-Mailcanary-Token: v1.aaaabbbbccccddddeeeeffff00001111.1793700720000.0f0e0d0c0b0a09080706=\n"
	"050403020100\n"
	"\n"
	"--b2_ee11\n"
	"Content-Type: text/html; charset=\"us-ascii\"\n"
	"\n"
	"<html><body>X-Mailcanary-Token: not-this-one</body></html>\n"
	"--b2_ee11--\n"
	"\n"
	"--b1_ff00--\n";

/* A vacation reply (RFC 3834) quoting nothing: not a bounce. */
static const char vacation[] =
	"From: seed1@seed-a.test\n"
	"To: canary@example.com\n"
	"Subject: Away until May 5\n"
	"Auto-Submitted: auto-replied\n"
	"\n"
	"I am away until May 5 and will read your message <x@y.test> when I return.\n";

/* ---- helpers ---- */

static const char *const stage_names[] = { "", "connect", "banner", "ehlo", "starttls",
					   "auth", "mail", "rcpt", "data", "eod" };

static bool terminated(const char *s, size_t n) { return memchr(s, '\0', n) != NULL; }

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

#define STR_OK(f) (terminated((f), sizeof(f)) && printable(f))

/* What holds for every report, whatever the input. */
static void check_invariants(const struct dsn_report *r, int rc)
{
	assert_true(STR_OK(r->reporting_mta) && STR_OK(r->arrival_date) && STR_OK(r->original_envelope_id) &&
		    STR_OK(r->token) && STR_OK(r->message_id));
	assert_true(r->n_recipients <= DSN_MAX_RECIPIENTS);
	assert_true(r->n_recipients <= r->n_recipients_seen);
	assert_true(r->headers_origin == DSN_HEADERS_NONE || r->headers_origin == DSN_HEADERS_PART ||
		    r->headers_origin == DSN_HEADERS_TEXT);
	if (r->token[0] || r->message_id[0])
		assert_int_not_equal(r->headers_origin, DSN_HEADERS_NONE);
	else
		assert_int_equal(r->headers_origin, DSN_HEADERS_NONE);
	assert_true(rc == 0 || rc == -1);
	if (r->is_rfc3464)
		assert_int_equal(rc, 0);
	for (size_t i = 0; i < r->n_recipients; i++) {
		const struct dsn_recipient *p = &r->recipients[i];
		assert_true(STR_OK(p->final_recipient) && STR_OK(p->original_recipient) && STR_OK(p->action) &&
			    STR_OK(p->status) && STR_OK(p->enhanced) && STR_OK(p->remote_mta) &&
			    STR_OK(p->diagnostic_type) && STR_OK(p->diagnostic) && STR_OK(p->stage) &&
			    STR_OK(p->last_attempt_date) && STR_OK(p->will_retry_until));
		bool known = false;
		for (size_t k = 0; k < sizeof stage_names / sizeof stage_names[0]; k++)
			known = known || strcmp(p->stage, stage_names[k]) == 0;
		if (!known)
			fail_msg("stage \"%s\" is not a stage name", p->stage);
		assert_true(p->reply_code == 0 || (p->reply_code >= 200 && p->reply_code <= 599));
		if (p->action[0])
			assert_true(r->is_rfc3464);
	}
}

/* Parses an exactly sized heap copy, so that reading past the end is an ASan report. */
static int parse(const char *msg, size_t len, struct dsn_report *r)
{
	char *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	if (len)
		memcpy(copy, msg, len);
	int rc = dsn_parse(copy, len, r);
	free(copy);
	check_invariants(r, rc);
	return rc;
}

static struct dsn_report *parse_new(const char *msg, int want_rc)
{
	struct dsn_report *r = calloc(1, sizeof *r);
	assert_non_null(r);
	int rc = parse(msg, strlen(msg), r);
	if (rc != want_rc)
		fail_msg("dsn_parse: got %d, want %d", rc, want_rc);
	return r;
}

/* Returns an owned copy of s with every bare LF made CR LF (some corpus files mix both). */
static char *to_crlf(const char *s, size_t n, size_t *outn)
{
	char *out = malloc(2 * n + 1);
	size_t o = 0;
	assert_non_null(out);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = s[i];
	}
	out[o] = '\0';
	*outn = o;
	return out;
}

static void b64(FILE *fp, const unsigned char *s, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t col = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
		fputc(a[v >> 18 & 63], fp);
		fputc(a[v >> 12 & 63], fp);
		fputc(i + 1 < n ? a[v >> 6 & 63] : '=', fp);
		fputc(i + 2 < n ? a[v & 63] : '=', fp);
		if ((col += 4) >= 76) {
			fputc('\n', fp);
			col = 0;
		}
	}
	fputc('\n', fp);
}

/* Postfix's line_wrap(): lines of at most 79 columns broken at blanks, continuation lines
 * indented by 4 (bounce_print_wrap). */
static void pf_wrap(FILE *fp, const char *text)
{
	size_t col = 0, indent = 0;
	const char *w = text;
	while (*w) {
		const char *e = strchr(w, ' ');
		size_t wl = e ? (size_t)(e - w) : strlen(w);
		if (col > indent && col + 1 + wl > 79) {
			fputs("\n    ", fp);
			col = indent = 4;
		} else if (col > indent) {
			fputc(' ', fp);
			col++;
		}
		fwrite(w, 1, wl, fp);
		col += wl;
		w += wl;
		while (*w == ' ')
			w++;
	}
	fputc('\n', fp);
}

/* A DSN in the layout of the real Postfix samples above, for one recipient, with the given
 * wording: for the refusals and failures that smtp-sink cannot make (TLS, timeouts, a lost
 * connection) or that need a host name as the remote. */
struct pf {
	const char *action, *status, *remote, *reason, *diag;
};

static char *postfix_dsn(const struct pf *p, const char *returned_type, const char *returned_cte)
{
	char *s = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&s, &n);
	const char *bnd = "7F1A21A0E4.1793700723/smtp.example.net";

	assert_non_null(fp);
	fprintf(fp, "Received: by smtp.example.net (Postfix)\n\tid 7F1A21A0E4; Tue,  3 Nov 2026 06:12:03 +0000 (UTC)\n"
		    "Date: Tue,  3 Nov 2026 06:12:03 +0000 (UTC)\n"
		    "From: Mail Delivery System <MAILER-DAEMON@example.com>\n"
		    "Subject: %s\nTo: canary@example.com\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n"
		    "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"%s\"\n"
		    "Content-Transfer-Encoding: 8bit\nMessage-Id: <20261103061203.7F1A21A0E4@smtp.example.net>\n\n"
		    "This is a MIME-encapsulated message.\n\n--%s\nContent-Description: Notification\n"
		    "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
		    "This is the mail system at host smtp.example.net.\n\n"
		    "                   The mail system\n\n",
		strcmp(p->action, "delayed") == 0 ? "Delayed Mail (still being retried)"
						    : "Undelivered Mail Returned to Sender",
		bnd, bnd);
	char *line = fmt("<seed1@seed-a.test>: %s", p->reason);
	pf_wrap(fp, line);
	free(line);
	fprintf(fp, "\n--%s\nContent-Description: Delivery report\nContent-Type: message/delivery-status\n\n"
		    "Reporting-MTA: dns; smtp.example.net\nX-Postfix-Queue-ID: 4C2F81A0B3\n"
		    "X-Postfix-Sender: rfc822; canary@example.com\nArrival-Date: Tue,  3 Nov 2026 06:12:00 +0000 (UTC)\n\n"
		    "Final-Recipient: rfc822; seed1@seed-a.test\nOriginal-Recipient: rfc822;seed1@seed-a.test\n"
		    "Action: %s\nStatus: %s\n",
		bnd, p->action, p->status);
	if (p->remote[0])
		fprintf(fp, "Remote-MTA: dns; %s\n", p->remote);
	line = fmt("Diagnostic-Code: %s", p->diag);
	pf_wrap(fp, line);
	free(line);
	fprintf(fp, "\n--%s\nContent-Description: Undelivered Message\nContent-Type: %s\n", bnd, returned_type);
	if (returned_cte)
		fprintf(fp, "Content-Transfer-Encoding: %s\n", returned_cte);
	fputc('\n', fp);
	if (returned_cte && strcmp(returned_cte, "base64") == 0)
		b64(fp, (const unsigned char *)returned_probe, strlen(returned_probe));
	else
		fputs(returned_probe, fp);
	fprintf(fp, "\n--%s--\n", bnd);
	fclose(fp);
	return s;
}

static void want_str(const char *what, const char *got, const char *want)
{
	if (strcmp(got, want) != 0)
		fail_msg("%s: got \"%s\", want \"%s\"", what, got, want);
}

static void want_int(const char *what, long got, long want)
{
	if (got != want)
		fail_msg("%s: got %ld, want %ld", what, got, want);
}

/* Two reports are the same, field by field. */
static void same_report(const char *what, const struct dsn_report *a, const struct dsn_report *b)
{
	char *w;
#define SAME_S(f) (w = fmt("%s: " #f, what), want_str(w, b->f, a->f), free(w));
#define SAME_I(f) (w = fmt("%s: " #f, what), want_int(w, (long)b->f, (long)a->f), free(w));
	DSN_REPORT_FIELDS(SAME_S, SAME_I)
	for (size_t i = 0; i < a->n_recipients && i < b->n_recipients; i++) {
#define SAME_RS(f) SAME_S(recipients[i].f)
#define SAME_RI(f) SAME_I(recipients[i].f)
		DSN_RECIPIENT_FIELDS(SAME_RS, SAME_RI)
	}
#undef SAME_RS
#undef SAME_RI
#undef SAME_S
#undef SAME_I
}

/* The report of msg equals the report of its CRLF form and of its mbox form. */
static void check_variants(const char *what, const char *msg, size_t len)
{
	struct dsn_report *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
	size_t cn;
	assert_true(a && b);
	int rc = parse(msg, len, a);
	char *crlf = to_crlf(msg, len, &cn);
	char *w = fmt("%s (CRLF)", what);
	want_int(w, parse(crlf, cn, b), rc);
	same_report(w, a, b);
	free(w);
	if (len < 5 || memcmp(msg, "From ", 5) != 0) {
		static const char from[] = "From MAILER-DAEMON  Tue Nov  3 06:12:05 2026\n";
		char *mbox = malloc(sizeof from + len);
		assert_non_null(mbox);
		memcpy(mbox, from, sizeof from - 1);
		memcpy(mbox + sizeof from - 1, msg, len);
		w = fmt("%s (mbox)", what);
		want_int(w, parse(mbox, sizeof from - 1 + len, b), rc);
		same_report(w, a, b);
		free(w);
		free(mbox);
	}
	free(crlf);
	free(a);
	free(b);
}

/* ---- Postfix ---- */

static void test_postfix_failed(void **state)
{
	(void)state;
	struct dsn_report *r = parse_new(postfix_failed, 0);

	assert_true(r->is_rfc3464);
	want_str("reporting_mta", r->reporting_mta, "smtp.example.net");
	want_str("arrival_date", r->arrival_date, "Sat, 28 Nov 2026 11:10:38 +0000 (UTC)");
	want_str("token", r->token, TOKEN);
	want_str("message_id", r->message_id, MSGID);
	want_int("headers_origin", r->headers_origin, DSN_HEADERS_PART);
	want_int("n_recipients", (long)r->n_recipients, 1);
	want_int("n_recipients_seen", (long)r->n_recipients_seen, 1);
	const struct dsn_recipient *p = &r->recipients[0];
	want_str("final_recipient", p->final_recipient, "seed1@seed-a.test");
	want_str("original_recipient", p->original_recipient, "seed1@seed-a.test");
	want_str("action", p->action, "failed");
	want_str("status", p->status, "5.1.1");
	want_str("enhanced", p->enhanced, "5.1.1");
	want_int("reply_code", p->reply_code, 550);
	want_str("remote_mta", p->remote_mta, "127.0.0.1");
	want_str("diagnostic_type", p->diagnostic_type, "smtp");
	/* folded by Postfix's line_wrap, joined again */
	want_str("diagnostic", p->diagnostic,
		 "550 5.1.1 <seed1@seed-a.test>: Recipient address rejected: User unknown in virtual mailbox table");
	/* only the notification text says "(in reply to RCPT TO command)" */
	want_str("stage", p->stage, "rcpt");
	want_str("will_retry_until", p->will_retry_until, "");
	free(r);
}

static void test_postfix_delayed(void **state)
{
	(void)state;
	struct dsn_report *r = parse_new(postfix_delayed, 0);

	assert_true(r->is_rfc3464);
	want_str("token", r->token, TOKEN);
	want_str("message_id", r->message_id, MSGID);
	want_int("headers_origin", r->headers_origin, DSN_HEADERS_PART);
	want_int("n_recipients", (long)r->n_recipients, 1);
	const struct dsn_recipient *p = &r->recipients[0];
	want_str("final_recipient", p->final_recipient, "seed1@seed-a.test");
	want_str("action", p->action, "delayed");
	want_str("status", p->status, "4.7.1");
	want_str("enhanced", p->enhanced, "4.7.1");
	want_int("reply_code", p->reply_code, 451);
	want_str("remote_mta", p->remote_mta, "127.0.0.1");
	want_str("diagnostic", p->diagnostic,
		 "451 4.7.1 <seed1@seed-a.test>: Recipient address rejected: Greylisted, see "
		 "http://postgrey.schweikert.ch/help/seed-a.test.html");
	want_str("stage", p->stage, "rcpt");
	want_str("will_retry_until", p->will_retry_until, "Thu,  3 Dec 2026 11:10:48 +0000 (UTC)");
	free(r);
}

/* The real samples of refusals at other stages, and that a DSN reads the same with CRLF line
 * ends and an mbox From line. */
static void test_postfix_real(void **state)
{
	(void)state;
	static const struct {
		const char *name, *msg, *action, *status, *enhanced, *stage, *remote, *dtype;
		int code;
	} cases[] = {
		{ "failed", postfix_failed, "failed", "5.1.1", "5.1.1", "rcpt", "127.0.0.1", "smtp", 550 },
		{ "delayed", postfix_delayed, "delayed", "4.7.1", "4.7.1", "rcpt", "127.0.0.1", "smtp", 451 },
		{ "eod", postfix_failed_eod, "failed", "5.7.1", "5.7.1", "eod", "127.0.0.1", "smtp", 554 },
		/* the server said 554 5.7.1, Postfix reports it as 4.7.1 and keeps trying */
		{ "banner", postfix_banner, "delayed", "4.7.1", "5.7.1", "banner", "127.0.0.1", "smtp", 554 },
		/* no connection: no Remote-MTA, no reply */
		{ "connect", postfix_connect, "delayed", "4.4.1", "4.4.1", "connect", "", "x-postfix", 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct dsn_report *r = parse_new(cases[i].msg, 0);
		const struct dsn_recipient *p = &r->recipients[0];
		char *w = fmt("real %s", cases[i].name);
		assert_true(r->is_rfc3464);
		want_int(w, (long)r->n_recipients, 1);
		want_str(w, p->final_recipient, "seed1@seed-a.test");
		want_str(w, p->action, cases[i].action);
		want_str(w, p->status, cases[i].status);
		want_str(w, p->enhanced, cases[i].enhanced);
		want_str(w, p->stage, cases[i].stage);
		want_str(w, p->remote_mta, cases[i].remote);
		want_str(w, p->diagnostic_type, cases[i].dtype);
		want_int(w, p->reply_code, cases[i].code);
		want_str(w, r->token, TOKEN);
		want_str(w, r->message_id, MSGID);
		want_int(w, r->headers_origin, DSN_HEADERS_PART);
		check_variants(w, cases[i].msg, strlen(cases[i].msg));
		free(w);
		free(r);
	}
	struct dsn_report *r = parse_new(postfix_connect, 0);
	want_str("connect diagnostic", r->recipients[0].diagnostic,
		 "connect to 127.0.0.1[127.0.0.1]:60629: Connection refused");
	free(r);
}

/* What Postfix's smtp(8) writes for a refusal or failure at each stage (in the layout of the
 * real samples), and what we read from it. */
static void test_postfix_stages(void **state)
{
	(void)state;
	static const struct {
		struct pf pf;
		const char *stage, *enhanced;
		int code;
	} cases[] = {
		{ { "failed", "5.7.1", "mx1.seed-a.test",
		    "host mx1.seed-a.test[192.0.2.10] said: 554 5.7.1 Message rejected as spam (in reply to end of DATA command)",
		    "smtp; 554 5.7.1 Message rejected as spam" },
		  "eod", "5.7.1", 554 },
		{ { "delayed", "4.4.1", "",
		    "connect to mx1.seed-a.test[192.0.2.10]:25: Connection refused",
		    "X-Postfix; connect to mx1.seed-a.test[192.0.2.10]:25: Connection refused" },
		  "connect", "4.4.1", 0 },
		{ { "delayed", "4.3.2", "mx1.seed-a.test",
		    "host mx1.seed-a.test[192.0.2.10] refused to talk to me: 421 4.3.2 System not accepting network messages",
		    "smtp; 421 4.3.2 System not accepting network messages" },
		  "banner", "4.3.2", 421 },
		{ { "failed", "5.7.1", "mx1.seed-a.test",
		    "host mx1.seed-a.test[192.0.2.10] said: 550 5.7.1 <probe.example.com>: Helo command rejected: Host not found (in reply to EHLO command)",
		    "smtp; 550 5.7.1 <probe.example.com>: Helo command rejected: Host not found" },
		  "ehlo", "5.7.1", 550 },
		{ { "failed", "5.7.1", "mx1.seed-a.test",
		    "host mx1.seed-a.test[192.0.2.10] said: 553 5.7.1 <canary@example.com>: Sender address rejected: not owned by user (in reply to MAIL FROM command)",
		    "smtp; 553 5.7.1 <canary@example.com>: Sender address rejected: not owned by user" },
		  "mail", "5.7.1", 553 },
		{ { "failed", "5.5.1", "mx1.seed-a.test",
		    "host mx1.seed-a.test[192.0.2.10] said: 554 5.5.1 Error: no valid recipients (in reply to DATA command)",
		    "smtp; 554 5.5.1 Error: no valid recipients" },
		  "data", "5.5.1", 554 },
		{ { "delayed", "4.7.5", "mx1.seed-a.test",
		    "Cannot start TLS: handshake failure",
		    "X-Postfix; Cannot start TLS: handshake failure" },
		  "starttls", "4.7.5", 0 },
		{ { "delayed", "4.4.2", "mx1.seed-a.test",
		    "conversation with mx1.seed-a.test[192.0.2.10] timed out while receiving the initial server greeting",
		    "X-Postfix; conversation with mx1.seed-a.test[192.0.2.10] timed out while receiving the initial server greeting" },
		  "banner", "4.4.2", 0 },
		{ { "delayed", "4.4.2", "mx1.seed-a.test",
		    "lost connection with mx1.seed-a.test[192.0.2.10] while sending end of data -- message may be sent more than once",
		    "X-Postfix; lost connection with mx1.seed-a.test[192.0.2.10] while sending end of data -- message may be sent more than once" },
		  "eod", "4.4.2", 0 },
		{ { "failed", "5.7.26", "gmail-smtp-in.l.google.com",
		    "host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users, and has been blocked. 550 5.7.26 https://support.google.com/mail/answer/81126#authentication - gsmtp (in reply to end of DATA command)",
		    "smtp; 550-5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users, and has been blocked. 550 5.7.26 https://support.google.com/mail/answer/81126#authentication - gsmtp" },
		  "eod", "5.7.26", 550 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *msg = postfix_dsn(&cases[i].pf, "text/rfc822-headers", NULL);
		struct dsn_report *r = parse_new(msg, 0);
		const struct dsn_recipient *p = &r->recipients[0];
		char *w = fmt("case %zu (%s)", i, cases[i].stage);
		if (r->n_recipients != 1 || strcmp(p->stage, cases[i].stage) || strcmp(p->enhanced, cases[i].enhanced) ||
		    p->reply_code != cases[i].code || strcmp(p->action, cases[i].pf.action) ||
		    strcmp(p->remote_mta, cases[i].pf.remote) || strcmp(r->token, TOKEN))
			fail_msg("%s: got n=%zu stage=\"%s\" enhanced=\"%s\" code=%d action=\"%s\" remote=\"%s\" "
				 "token=\"%s\"; want stage=\"%s\" enhanced=\"%s\" code=%d",
				 w, r->n_recipients, p->stage, p->enhanced, p->reply_code, p->action, p->remote_mta,
				 r->token, cases[i].stage, cases[i].enhanced, cases[i].code);
		check_variants(w, msg, strlen(msg));
		free(w);
		free(r);
		free(msg);
	}
}

/* ---- the returned headers ---- */

static void test_token_message_rfc822(void **state)
{
	(void)state;
	struct pf pf = { "failed", "5.1.1", "mx1.seed-a.test", "host mx1.seed-a.test[192.0.2.10] said: 550 5.1.1 No such user (in reply to RCPT TO command)",
			 "smtp; 550 5.1.1 No such user" };
	static const struct {
		const char *type, *cte;
	} forms[] = {
		{ "message/rfc822", NULL },
		{ "message/rfc822", "7bit" },
		{ "message/rfc822", "base64" },           /* not allowed by RFC 2046, sent anyway */
		{ "text/rfc822-headers", "base64" },
		{ "message/global", NULL },               /* RFC 6533 */
		{ "message/global-headers", NULL },
	};
	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		char *msg = postfix_dsn(&pf, forms[i].type, forms[i].cte);
		struct dsn_report *r = parse_new(msg, 0);
		char *w = fmt("%s %s", forms[i].type, forms[i].cte ? forms[i].cte : "");
		want_str(w, r->token, TOKEN);
		want_str(w, r->message_id, MSGID);
		want_int(w, r->headers_origin, DSN_HEADERS_PART);
		free(w);
		free(r);
		free(msg);
	}
}

static void test_token_in_text(void **state)
{
	(void)state;
	struct dsn_report *r = parse_new(qmail_plain, 0);
	assert_false(r->is_rfc3464);
	want_str("qmail token", r->token,
		 "v1.0123456789abcdef0123456789abcdef.1793700720000.00112233445566778899aabbccddeeff");
	want_str("qmail message_id", r->message_id, "<0123456789abcdef0123456789abcdef@example.com>");
	want_int("qmail origin", r->headers_origin, DSN_HEADERS_TEXT);
	free(r);

	r = parse_new(exim_plain, 0);
	/* folded right after the colon */
	want_str("exim token", r->token,
		 "v1.fedcba9876543210fedcba9876543210.1793700720000.ffeeddccbbaa99887766554433221100");
	want_str("exim message_id", r->message_id, "<fedcba9876543210fedcba9876543210@example.com>");
	free(r);

	r = parse_new(o365_qp, 0);
	/* quoted-printable soft break inside the token; the text/html alternative is not read */
	want_str("o365 token", r->token,
		 "v1.aaaabbbbccccddddeeeeffff00001111.1793700720000.0f0e0d0c0b0a09080706050403020100");
	want_str("o365 message_id", r->message_id, "<aaaabbbbccccddddeeeeffff00001111@example.com>");
	free(r);

	/* The probe itself (not a bounce): its own token is no returned header. */
	r = parse_new(returned_probe, -1);
	want_str("probe token", r->token, "");
	want_int("probe recipients", (long)r->n_recipients, 0);
	free(r);
}

/* The token header folded in a text/rfc822-headers part, with other headers around. */
static void test_token_folded(void **state)
{
	(void)state;
	static const char msg[] =
		"From: MAILER-DAEMON@relay.test\nSubject: Delivery Status Notification\n"
		"Content-Type: multipart/report; report-type=delivery-status; boundary=XX\n\n"
		"--XX\nContent-Type: message/delivery-status\n\n"
		"Reporting-MTA: dns; relay.test\n\nFinal-Recipient: rfc822; a@b.test\nAction: failed\nStatus: 5.0.0\n\n"
		"--XX\nContent-Type: text/rfc822-headers\n\n"
		"\n" /* a blank line before the headers, as some MTAs write */
		"Message-Id: <m1@example.com>\n"
		"x-mailcanary-token:\n"
		"    v1.0000000000000000000000000000000a.1.0000000000000000000000000000000b\n"
		"Subject: x\n"
		"--XX--\n";
	struct dsn_report *r = parse_new(msg, 0);
	want_str("token", r->token, "v1.0000000000000000000000000000000a.1.0000000000000000000000000000000b");
	want_str("message_id", r->message_id, "<m1@example.com>");
	free(r);
}

/* ---- delivery-status field blocks ---- */

static void test_two_recipients(void **state)
{
	(void)state;
	/* with blank lines; without them (rhost-aol-03 style); Action first (Amazon SES style)
	 * without them; RFC 3464 order (Original- before Final-Recipient) without them */
	static const char *const blocks[] = {
		"Reporting-MTA: dns; relay.test\n\n"
		"Final-Recipient: rfc822; one@seed.test\nAction: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.seed.test\n"
		"Diagnostic-Code: smtp; 550 5.1.1 <one@seed.test>: User unknown\n\n"
		"Final-Recipient: rfc822; two@seed.test\nAction: delayed\nStatus: 4.2.2\nRemote-MTA: dns; mx2.seed.test\n"
		"Diagnostic-Code: smtp; 452 4.2.2 <two@seed.test>: Mailbox full\n",

		"Reporting-MTA: dns; relay.test\n"
		"Final-Recipient: rfc822; one@seed.test\nOriginal-Recipient: rfc822;one@seed.test\nAction: failed\n"
		"Status: 5.1.1\nRemote-MTA: dns; mx.seed.test\nDiagnostic-Code: smtp; 550 5.1.1 <one@seed.test>: User unknown\n"
		"Final-Recipient: rfc822; two@seed.test\nOriginal-Recipient: rfc822;two@seed.test\nAction: Delayed\n"
		"Status: 4.2.2\nRemote-MTA: dns; mx2.seed.test\nDiagnostic-Code: smtp; 452 4.2.2 <two@seed.test>: Mailbox full\n",

		"Reporting-MTA: dns; relay.test\n\n"
		"Action: failed\nFinal-Recipient: rfc822; one@seed.test\nOriginal-Recipient: rfc822; one@seed.test\n"
		"Remote-MTA: dns; mx.seed.test\nDiagnostic-Code: smtp; 550 5.1.1 <one@seed.test>: User unknown\nStatus: 5.1.1\n"
		"Action: DELAYED\nFinal-Recipient: rfc822; two@seed.test\nOriginal-Recipient: rfc822; two@seed.test\n"
		"Remote-MTA: dns; mx2.seed.test\nDiagnostic-Code: smtp; 452 4.2.2 <two@seed.test>: Mailbox full\nStatus: 4.2.2\n",

		"Reporting-MTA: dns; relay.test\n\n"
		"Original-Recipient: rfc822; one@seed.test\nFinal-Recipient: rfc822; one@seed.test\nAction: failed\n"
		"Status: 5.1.1 (no such user)\nRemote-MTA: dns; mx.seed.test (192.0.2.7)\n"
		"Diagnostic-Code: smtp; 550 5.1.1 <one@seed.test>: User unknown\n"
		"Original-Recipient: rfc822; two@seed.test\nFinal-Recipient: rfc822; <two@seed.test>\nAction: delayed\n"
		"Status: 4.2.2\nRemote-MTA: DNS; [mx2.seed.test]\nDiagnostic-Code: SMTP; 452 4.2.2 <two@seed.test>: Mailbox full\n",
	};
	for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
		char *msg = fmt("From: MAILER-DAEMON@relay.test\nSubject: Returned mail\n"
				"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n"
				"--b\nContent-Type: text/plain\n\nSee below.\n\n--b\nContent-Type: message/delivery-status\n\n%s"
				"\n--b--\n",
				blocks[i]);
		struct dsn_report *r = parse_new(msg, 0);
		char *w = fmt("block %zu", i);
		want_int(w, (long)r->n_recipients, 2);
		want_str(w, r->reporting_mta, "relay.test");
		const struct dsn_recipient *a = &r->recipients[0], *b = &r->recipients[1];
		want_str(w, a->final_recipient, "one@seed.test");
		want_str(w, a->action, "failed");
		want_str(w, a->status, "5.1.1");
		want_str(w, a->remote_mta, "mx.seed.test");
		want_int(w, a->reply_code, 550);
		want_str(w, b->final_recipient, "two@seed.test");
		want_str(w, b->action, "delayed");
		want_str(w, b->status, "4.2.2");
		want_str(w, b->remote_mta, "mx2.seed.test");
		want_int(w, b->reply_code, 452);
		want_str(w, b->diagnostic, "452 4.2.2 <two@seed.test>: Mailbox full");
		check_variants(w, msg, strlen(msg));
		free(w);
		free(r);
		free(msg);
	}
}

static void test_field_quirks(void **state)
{
	(void)state;
	static const char msg[] =
		"From: postmaster@relay.test\nSubject: Undeliverable\n"
		"Content-Type: multipart/mixed; boundary=outer\n\n"
		"preamble\n--outer\nContent-Type: text/plain\n\nHello\n--outer\n"
		/* the report nested in multipart/mixed, an unquoted boundary that the outer one prefixes */
		"Content-Type: multipart/report; boundary=outer-inner\n\n"
		"--outer-inner\nContent-Type: message/global-delivery-status\nContent-Transfer-Encoding: quoted-printable\n\n"
		"Reporting-MTA: dns; relay.test\n\n"
		"Final-Recipient: rfc822; one@seed.test\nAction: expired\nStatus: 4.4.7 (delivery time expired)\n"
		"Diagnostic-Code: smtp; 550-Please turn on SMTP Authentication in your mail client.\n"
		"550-mx.seed.test [198.51.100.21]:11111 is not permitted to\n"
		"550 relay through this server without authentication.\n"
		"Last-Attempt-Date: Tue, 3 Nov 2026 06:12:00 +0000\n"
		"Will-Retry-Until: =\n"
		"Wed, 4 Nov 2026 06:12:00 +0000\n"
		"--outer-inner--\n"
		"--outer--\n";
	struct dsn_report *r = parse_new(msg, 0);
	const struct dsn_recipient *p = &r->recipients[0];
	assert_true(r->is_rfc3464);
	want_int("n", (long)r->n_recipients, 1);
	want_str("action", p->action, "expired");
	want_str("status", p->status, "4.4.7");
	/* unindented continuation lines of a multi-line reply */
	want_str("diagnostic", p->diagnostic,
		 "550-Please turn on SMTP Authentication in your mail client. 550-mx.seed.test [198.51.100.21]:11111 is "
		 "not permitted to 550 relay through this server without authentication.");
	want_int("reply_code", p->reply_code, 550);
	want_str("last_attempt_date", p->last_attempt_date, "Tue, 3 Nov 2026 06:12:00 +0000");
	want_str("will_retry_until", p->will_retry_until, "Wed, 4 Nov 2026 06:12:00 +0000");
	free(r);
}

static void test_many_recipients(void **state)
{
	(void)state;
	char *s = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&s, &n);
	assert_non_null(fp);
	fputs("From: MAILER-DAEMON@relay.test\nContent-Type: multipart/report; boundary=b\n\n--b\n"
	      "Content-Type: message/delivery-status\n\nReporting-MTA: dns; relay.test\n",
	      fp);
	for (int i = 0; i < DSN_MAX_RECIPIENTS + 4; i++)
		fprintf(fp, "\nFinal-Recipient: rfc822; r%d@seed.test\nAction: failed\nStatus: 5.1.1\n", i);
	fputs("--b--\n", fp);
	fclose(fp);
	struct dsn_report *r = parse_new(s, 0);
	want_int("n_recipients", (long)r->n_recipients, DSN_MAX_RECIPIENTS);
	want_int("n_recipients_seen", (long)r->n_recipients_seen, DSN_MAX_RECIPIENTS + 4);
	want_str("last kept", r->recipients[DSN_MAX_RECIPIENTS - 1].final_recipient, "r15@seed.test");
	free(r);
	free(s);
}

/* ---- plain-text bounces ---- */

static void test_plain_text(void **state)
{
	(void)state;
	struct dsn_report *r = parse_new(qmail_plain, 0);
	const struct dsn_recipient *p = &r->recipients[0];
	want_int("qmail n", (long)r->n_recipients, 1);
	want_str("qmail rcpt", p->final_recipient, "seed2@seed-b.test");
	want_str("qmail action", p->action, "");
	want_int("qmail code", p->reply_code, 550);
	want_str("qmail enhanced", p->enhanced, "5.1.1");
	want_str("qmail stage", p->stage, "rcpt");
	want_str("qmail remote", p->remote_mta, "192.0.2.30");
	check_variants("qmail", qmail_plain, strlen(qmail_plain));
	free(r);

	r = parse_new(exim_plain, 0);
	want_int("exim n", (long)r->n_recipients, 2);
	p = &r->recipients[0];
	want_str("exim rcpt 0", p->final_recipient, "seed3@seed-c.test");
	want_int("exim code 0", p->reply_code, 550);
	want_str("exim enhanced 0", p->enhanced, "5.7.1");
	want_str("exim stage 0", p->stage, "eod");
	want_str("exim remote 0", p->remote_mta, "mx.seed-c.test");
	want_str("exim diag 0", p->diagnostic, "550 5.7.1 Message rejected due to content restrictions");
	p = &r->recipients[1];
	want_str("exim rcpt 1", p->final_recipient, "seed4@seed-c.test");
	want_str("exim enhanced 1", p->enhanced, "5.1.1");
	want_str("exim stage 1", p->stage, "rcpt");
	check_variants("exim", exim_plain, strlen(exim_plain));
	free(r);

	r = parse_new(o365_qp, 0);
	p = &r->recipients[0];
	assert_false(r->is_rfc3464); /* multipart/report, but no delivery-status part */
	want_int("o365 n", (long)r->n_recipients, 1);
	want_str("o365 rcpt", p->final_recipient, "seed5@seed-d.test");
	want_int("o365 code", p->reply_code, 550);
	want_str("o365 enhanced", p->enhanced, "5.1.10");
	want_str("o365 diag", p->diagnostic,
		 "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup");
	check_variants("o365", o365_qp, strlen(o365_qp));
	free(r);

	r = parse_new(vacation, -1);
	want_int("vacation n", (long)r->n_recipients, 0);
	free(r);
	r = parse_new("", -1);
	free(r);
	struct dsn_report z;
	want_int("NULL", dsn_parse(NULL, 10, &z), -1);
}

/* ---- stage wording ---- */

static void test_stage_text(void **state)
{
	(void)state;
	static const struct {
		const char *text, *stage;
	} cases[] = {
		{ "host x[192.0.2.1] said: 550 5.1.1 no (in reply to RCPT TO\n    command)", "rcpt" },
		{ "said: 554 5.7.1 spam (in reply to end of DATA command)", "eod" },
		{ "said: 554 5.5.1 no valid recipients (in reply to DATA command)", "data" },
		{ "said: 553 sender (in reply to MAIL FROM command)", "mail" },
		{ "said: 504 5.5.2 helo (in reply to EHLO command)", "ehlo" },
		{ "said: 454 4.7.0 TLS not available (in reply to STARTTLS command)", "starttls" },
		{ "SMTP error from remote mail server after RCPT TO:<a@b>: 550 no", "rcpt" },
		{ "SMTP error from remote mail server after pipelined MAIL FROM:<a@b> SIZE=1: 550 no", "mail" },
		{ "SMTP error from remote mail server after end of data: 550 no", "eod" },
		{ "SMTP error from remote mail server after initial connection: 554 go away", "banner" },
		{ "SMTP error from remote mail server after DATA: 554 no", "data" },
		{ "connect to mx.example.com[192.0.2.1]:25: Connection refused", "connect" },
		{ "connect to mx.example.com[192.0.2.1]:25: Connection timed out", "connect" },
		{ "host mx[192.0.2.1] refused to talk to me: 421 busy", "banner" },
		{ "192.0.2.30 does not like recipient.\nRemote host said: 550 no", "rcpt" },
		{ "Connected to 192.0.2.30 but sender was rejected.", "mail" },
		{ "192.0.2.30 failed after I sent the message.", "eod" },
		{ "... while talking to mx.example.jp.:\n>>> MAIL From:<a@b>\n<<< 553 5.1.8 Domain of sender does not exist", "mail" },
		{ "... while talking to mx.example.jp.:\n>>> RCPT To:<a@b>\n<<< 550 5.1.1 User unknown", "rcpt" },
		{ "... while talking to mx.example.jp.:\n>>> DATA\n<<< 550 5.1.1 <a@b>... User unknown\n550 5.1.1 <a@b>... User unknown\n<<< 503 5.0.0 Need RCPT", "rcpt" },
		{ "... while talking to mx.example.jp.:\n>>> DATA\n<<< 554 5.7.1 rejected by content filter\n", "data" },
		{ "... while talking to mx.example.jp.:\n>>> QUIT\n<<< 421 4.7.0 too many errors", "" },
		{ "550 5.1.1 User unknown", "" },
		{ "afterdata", "" },
		{ "the database is gone after database maintenance", "" },
		{ "", "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *got = dsn_stage_from_text(cases[i].text, strlen(cases[i].text));
		if (strcmp(got, cases[i].stage) != 0)
			fail_msg("case %zu \"%s\": got \"%s\", want \"%s\"", i, cases[i].text, got, cases[i].stage);
	}
	want_str("NULL", dsn_stage_from_text(NULL, 5), "");
}

/* ---- robustness ---- */

/* Every prefix of every sample: no crash, no read past the end (ASan), sound reports. */
static void test_truncation(void **state)
{
	(void)state;
	struct pf pf = { "failed", "5.1.1", "mx1.seed-a.test", "host mx1.seed-a.test[192.0.2.10] said: 550 5.1.1 No such user (in reply to RCPT TO command)",
			 "smtp; 550 5.1.1 No such user" };
	char *b64msg = postfix_dsn(&pf, "message/rfc822", "base64");
	size_t crn;
	char *crlf = to_crlf(postfix_failed, strlen(postfix_failed), &crn);
	const char *samples[] = { postfix_failed, postfix_delayed, postfix_failed_eod, postfix_banner, postfix_connect,
				  qmail_plain, exim_plain, o365_qp, b64msg, crlf };
	struct dsn_report *r = calloc(1, sizeof *r);
	size_t total = 0;

	assert_non_null(r);
	for (size_t k = 0; k < sizeof samples / sizeof samples[0]; k++) {
		size_t len = strlen(samples[k]);
		for (size_t n = 0; n <= len; n++)
			parse(samples[k], n, r);
		total += len + 1;
	}
	print_message("truncation: %zu prefixes parsed\n", total);
	free(r);
	free(crlf);
	free(b64msg);
}

/* Hostile structure: deep nesting, a boundary on every line, binary junk. */
static void test_hostile(void **state)
{
	(void)state;
	char *s = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&s, &n);
	assert_non_null(fp);
	for (int i = 0; i < 200; i++)
		fprintf(fp, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i);
	fputs("Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822; deep@seed.test\nAction: failed\n", fp);
	fclose(fp);
	struct dsn_report *r = calloc(1, sizeof *r);
	assert_non_null(r);
	parse(s, n, r); /* too deep: not reached, but no crash */
	assert_false(r->is_rfc3464);
	free(s);

	s = NULL;
	fp = open_memstream(&s, &n);
	assert_non_null(fp);
	fputs("Content-Type: multipart/report; boundary=x\n\n", fp);
	for (int i = 0; i < 5000; i++)
		fputs("--x\n", fp);
	fclose(fp);
	parse(s, n, r);
	free(s);

	/* Addresses built to make a naive substring search quadratic (240 'a's against a text of
	 * 'a's), and many places that look like a reply on one long line: linear time wanted. The
	 * bound is loose (expected: milliseconds; a quadratic search took over 10 s). */
	s = NULL;
	fp = open_memstream(&s, &n);
	assert_non_null(fp);
	fputs("From: MAILER-DAEMON@x.test\nSubject: Undelivered\nContent-Type: multipart/report; boundary=b\n\n"
	      "--b\nContent-Type: text/plain\n\n",
	      fp);
	for (int i = 0; i < 520; i++) {
		for (int k = 0; k < 1000; k++)
			fputc('a', fp);
		fputc('\n', fp);
	}
	for (int i = 0; i < 20000; i++)
		fputs("]: 550 ", fp);
	fputs("\n\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x.test\n", fp);
	for (int i = 0; i < DSN_MAX_RECIPIENTS; i++) {
		fputs("\nFinal-Recipient: rfc822; ", fp);
		for (int k = 0; k < 240; k++)
			fputc('a', fp);
		fprintf(fp, "%d@b.test\nAction: failed\n", i);
	}
	fputs("--b--\n", fp);
	fclose(fp);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	parse(s, n, r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("hostile: %zu bytes parsed in %.3f s\n", n, secs);
	want_int("recipients", (long)r->n_recipients, DSN_MAX_RECIPIENTS);
	assert_true(secs < 5.0);
	free(s);

	unsigned char junk[4096];
	uint32_t x = 2463534242u;
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof junk; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			junk[i] = (unsigned char)x;
			if (round % 2 && junk[i] % 7 == 0)
				junk[i] = '\n';
		}
		parse((const char *)junk, sizeof junk, r);
	}
	free(r);
}

/* ---- the shared corpus ---- */


/* Splits line (modified in place) at tabs into at most max fields. Returns the count. */
static size_t split_tabs(char *line, char **f, size_t max)
{
	size_t n = 0;
	char *p = line;
	while (n < max) {
		f[n++] = p;
		char *t = strchr(p, '\t');
		if (!t)
			break;
		*t = '\0';
		p = t + 1;
	}
	return n;
}

/* Columns compared: expected.tsv's name, and the minimum agreement reached (the ratchet). */
enum { COL_RFC3464, COL_ACTION, COL_STATUS, COL_MSG_STATUS, COL_REPLY, COL_REMOTE, COL_RECIPIENTS, NCOLS };
static const char *const col_names[NCOLS] = { "rfc3464", "action", "status", "msg_status",
					      "reply_code", "remote_mta", "recipients" };
/* Agreement reached: raise these when the parser gets better; never lower them. */
static const int col_min[NCOLS] = { 135, 134, 117, 107, 127, 108, 130 };

struct known {
	char *file, *col, *want, *got;
};

static struct known *load_known(size_t *n)
{
	size_t len;
	char *text = slurp(MON_TESTDATA_DIR "/dsn-known-differences.tsv", &len);
	struct known *k = NULL;
	size_t cnt = 0;

	assert_non_null(text);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *f[5];
		if (line[0] == '#' || split_tabs(line, f, 5) < 4 || strcmp(f[0], "file") == 0)
			continue;
		k = realloc(k, (cnt + 1) * sizeof *k);
		assert_non_null(k);
		k[cnt].file = strdup(f[0]);
		k[cnt].col = strdup(f[1]);
		k[cnt].want = strdup(f[2]);
		k[cnt].got = strdup(f[3]);
		cnt++;
	}
	free(text);
	*n = cnt;
	return k;
}

static void test_corpus(void **state)
{
	(void)state;
	const char *dir = getenv("MAILCANARY_DSN_CORPUS"); /* else the copy in tests/data/dsn */
	if (!dir || !*dir)
		dir = MON_SOURCE_DIR "/tests/data/dsn";
	char *tsv_path = fmt("%s/expected.tsv", dir);
	size_t tsv_len;
	char *tsv = slurp_opt(tsv_path, &tsv_len);
	if (!tsv) {
		print_message("corpus not found (%s): set MAILCANARY_DSN_CORPUS; skipped\n", tsv_path);
		free(tsv_path);
		skip();
	}
	free(tsv_path);

	size_t n_known;
	struct known *known = load_known(&n_known);
	bool *known_seen = calloc(n_known + 1, sizeof *known_seen);
	int agree[NCOLS] = { 0 }, total[NCOLS] = { 0 };
	int unexplained = 0, files = 0;
	int colidx[16];
	size_t ncol = 0;
	struct dsn_report *r = calloc(1, sizeof *r);
	assert_true(r && known_seen);

	char *save = NULL;
	for (char *line = strtok_r(tsv, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[16];
		size_t nf = split_tabs(line, f, 16);
		if (strcmp(f[0], "file") == 0) { /* the header: find the columns by name */
			static const char *const want[] = { "file", "rfc3464", "action", "status", "reply_code",
							    "remote_mta", "msg_status", "recipients" };
			ncol = nf;
			for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
				colidx[w] = -1;
				for (size_t i = 0; i < nf; i++)
					if (strcmp(f[i], want[w]) == 0)
						colidx[w] = (int)i;
				if (colidx[w] < 0)
					fail_msg("expected.tsv has no column %s", want[w]);
			}
			continue;
		}
		assert_true(ncol > 0);
		for (size_t i = nf; i < 16; i++)
			f[i] = (char *)"";
		const char *file = f[colidx[0]];
		char *path = fmt("%s/eml/%s", dir, file);
		size_t len;
		char *msg = slurp(path, &len);
		if (!msg)
			fail_msg("cannot read %s", path);
		free(path);
		files++;
		parse(msg, len, r);
		check_variants(file, msg, len);

		const struct dsn_recipient *p = r->n_recipients ? &r->recipients[0] : NULL;
		char code[16] = "", count[24];
		if (p && p->reply_code)
			snprintf(code, sizeof code, "%d", p->reply_code);
		snprintf(count, sizeof count, "%zu", r->n_recipients_seen);
		bool is3464 = strcmp(f[colidx[1]], "yes") == 0;
		const char *want[NCOLS] = { f[colidx[1]], f[colidx[2]], f[colidx[3]], f[colidx[6]], f[colidx[4]],
					    f[colidx[5]], f[colidx[7]] };
		const char *got[NCOLS] = { r->is_rfc3464 ? "yes" : "no", p ? p->action : "", p ? p->enhanced : "",
					   p ? p->status : "", code, p ? p->remote_mta : "", count };
		for (int c = 0; c < NCOLS; c++) {
			/* msg_status is the DSN's own Status; remote_mta is only given for DSNs */
			if ((c == COL_MSG_STATUS || c == COL_REMOTE) && !is3464)
				continue;
			total[c]++;
			if (strcmp(want[c], got[c]) == 0) {
				agree[c]++;
				for (size_t k = 0; k < n_known; k++)
					if (!strcmp(known[k].file, file) && !strcmp(known[k].col, col_names[c]))
						print_message("now agrees, remove from the known differences: %s %s\n", file,
							      col_names[c]);
				continue;
			}
			bool listed = false;
			for (size_t k = 0; k < n_known && !listed; k++) {
				if (!strcmp(known[k].file, file) && !strcmp(known[k].col, col_names[c]) &&
				    !strcmp(known[k].want, want[c]) && !strcmp(known[k].got, got[c])) {
					listed = true;
					known_seen[k] = true;
				}
			}
			if (!listed) {
				print_message("unexplained difference (file, column, expected, got):\n%s\t%s\t%s\t%s\n", file,
					      col_names[c], want[c], got[c]);
				unexplained++;
			}
		}
		free(msg);
	}
	print_message("dsn corpus (%d files):", files);
	for (int c = 0; c < NCOLS; c++)
		print_message(" %s %d/%d%s", col_names[c], agree[c], total[c], c + 1 < NCOLS ? "," : "\n");
	for (size_t k = 0; k < n_known; k++)
		if (!known_seen[k])
			print_message("known difference not seen: %s %s\n", known[k].file, known[k].col);
	for (int c = 0; c < NCOLS; c++)
		if (agree[c] < col_min[c])
			fail_msg("%s: agreement %d below the %d reached before", col_names[c], agree[c], col_min[c]);
	want_int("unexplained differences", unexplained, 0);
	want_int("files", files, 135);

	for (size_t k = 0; k < n_known; k++) {
		free(known[k].file);
		free(known[k].col);
		free(known[k].want);
		free(known[k].got);
	}
	free(known);
	free(known_seen);
	free(r);
	free(tsv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_postfix_failed),
		cmocka_unit_test(test_postfix_delayed),
		cmocka_unit_test(test_postfix_real),
		cmocka_unit_test(test_postfix_stages),
		cmocka_unit_test(test_token_message_rfc822),
		cmocka_unit_test(test_token_in_text),
		cmocka_unit_test(test_token_folded),
		cmocka_unit_test(test_two_recipients),
		cmocka_unit_test(test_field_quirks),
		cmocka_unit_test(test_many_recipients),
		cmocka_unit_test(test_plain_text),
		cmocka_unit_test(test_stage_text),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_corpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
