#!/usr/bin/env python3
"""Writes the hand-made seed inputs (seed-*) of every fuzz target into tests/fuzz/corpus/TARGET/.

Run it after changing a seed or an input format; files the fuzzer found (found-*, crash-*) are
left alone. The transcript seeds are binary (see the layout in fuzz_transcript.c); they are
described here as readable sessions."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---- reply: byte 0 is the buffer size for reply_enhanced_code (% 32), then the line ----

REPLIES = {
    "postfix-banner": "220 mx.example.com ESMTP Postfix (Debian/GNU)\r\n",
    "gmail-banner": "220 mx.google.com ESMTP a1-20020a05600c000100b003f0c5d0e1f3si1234567wmq.123 - gsmtp\r\n",
    "ehlo-first": "250-mx.google.com at your service, [192.0.2.25]\r\n",
    "ehlo-size": "250-SIZE 157286400\r\n",
    "ehlo-starttls": "250-STARTTLS\r\n",
    "ehlo-auth": "250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n",
    "ehlo-last": "250 SMTPUTF8\r\n",
    "mail-ok": "250 2.1.0 Ok\r\n",
    "rcpt-ok": "250 2.1.5 Ok\r\n",
    "data-354": "354 End data with <CR><LF>.<CR><LF>\r\n",
    "gmail-354": "354  Go ahead a1-20020a05600c000100b003f0c5d0e1f3si1234567wmq.123 - gsmtp\r\n",
    "queued": "250 2.0.0 Ok: queued as 4F1A22C0123\r\n",
    "gmail-queued": "250 2.0.0 OK  1700000000 a1-20020a05600c000100b003f0c5d0e1f3si1234567wmq.123 - gsmtp\r\n",
    "outlook-queued": "250 2.6.0 <20240101120000.1234@probe.example.com> [InternalId=1234567890123, "
                      "Hostname=AM0PR01MB1234.eurprd01.prod.exchangelabs.com] 12345 bytes in 0.123, "
                      "98.765 KB/sec Queued mail for delivery\r\n",
    "postgrey": "451 4.7.1 <seed1@seed-a.test>: Recipient address rejected: Greylisted, see "
                "http://postgrey.schweikert.ch/help/seed-a.test.html\r\n",
    "postfix-nohostname": "450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.25]\r\n",
    "postfix-queue-error": "451 4.3.0 Error: queue file write error\r\n",
    "postfix-unknown-user": "550 5.1.1 <x@seed-a.test>: Recipient address rejected: User unknown in "
                            "virtual mailbox table\r\n",
    "postfix-storage": "452 4.3.1 Insufficient system storage\r\n",
    "postfix-tls": "454 4.7.0 TLS not available due to local problem\r\n",
    "gmail-421-1": "421-4.7.0 [192.0.2.25      15] Our system has detected an unusual rate of\r\n",
    "gmail-421-2": "421-4.7.0 unsolicited mail originating from your IP address. To protect our\r\n",
    "gmail-421-3": "421 4.7.0 users from spam, mail sent from your IP address has been temporarily "
                   "rate limited. - gsmtp\r\n",
    "gmail-450": "450-4.2.1 The user you are trying to contact is receiving mail at a rate that\r\n",
    "gmail-550-1": "550-5.7.1 [192.0.2.25] The IP you're using to send mail is not authorized to\r\n",
    "gmail-550-26": "550 5.7.26 This mail is unauthenticated, which poses a security risk to the "
                    "sender and Gmail users, and has been blocked. - gsmtp\r\n",
    "gmail-535": "535-5.7.8 Username and Password not accepted. For more information, go to\r\n",
    "outlook-busy": "451 4.7.500 Server busy. Please try again later from [192.0.2.25]. (S77719) "
                    "[DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com]\r\n",
    "outlook-spamhaus": "550 5.7.1 Service unavailable, Client host [192.0.2.25] blocked using "
                        "Spamhaus. To request removal from this list see "
                        "https://www.spamhaus.org/query/ip/192.0.2.25 AS(1450) "
                        "[AM0PR01MB1234.eurprd01.prod.exchangelabs.com]\r\n",
    "outlook-banned": "550 5.7.606 Access denied, banned sending IP [192.0.2.25]. To request removal "
                      "from this list please visit https://sender.office.com/ and follow the "
                      "directions. For more information please go to "
                      "http://go.microsoft.com/fwlink/?LinkID=526655 (AS16012609)\r\n",
    "outlook-notfound": "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient seed1@seed-a.test not "
                        "found by SMTP address lookup\r\n",
    "outlook-conns": "421 4.3.2 The maximum number of concurrent server connections has exceeded a "
                     "limit, closing transmission channel\r\n",
    "too-many-rcpts": "452 4.5.3 Too many recipients\r\n",
    "no-enhanced-421": "421 mx.example.com Service not available, closing transmission channel\r\n",
    "auth-334-user": "334 VXNlcm5hbWU6\r\n",
    "auth-334-empty": "334 \r\n",
    "auth-ok": "235 2.7.0 Authentication successful\r\n",
    "bye": "221 2.0.0 Bye\r\n",
    "bare-code": "354",
    "bare-dash": "250-",
    "lf-only": "250 2.0.0 Ok\n",
    "class-mismatch": "450 5.1.1 odd server\r\n",
    "long-detail": "554 5.7.1234 too long detail\r\n",
    "tab-after-code": "550 5.7.1\tblocked\r\n",
    "out-of-range": "600 5.0.0 no such class\r\n",
    "tls-garbage": "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "short": "25",
}


def reply_seeds():
    for i, (name, line) in enumerate(sorted(REPLIES.items())):
        # cycle the buffer size through small, exact and roomy values
        bufsz = [16, 0, 5, 6, 9, 10, 31][i % 7]
        write("reply", name, bytes([bufsz]) + line.encode("latin-1"))


# ---- duration: the string itself ----

DURATIONS = {
    "30s": "30s", "5m": "5m", "1h30m": "1h30m", "250ms": "250ms", "2d": "2d", "1w": "1w", "0s": "0s",
    "all-units": "1w2d3h4m5s6ms", "ms-then-s": "10ms5s", "ten-years": "3660d", "too-long": "3661d",
    "bare-number": "30", "space": "5 m", "bad-unit": "1x", "negative": "-5m", "fraction": "1.5h",
    "unit-only": "m", "every": "every 15m", "every-bad": "every 15", "every-zero": "every 0s",
    "every-two": "every 1h 30m", "hourly": "hourly", "daily": "daily", "weekly": "weekly",
    "cron-weekdays": "cron 0 6 * * 1-5", "cron-step": "cron */5 * * * *",
    "cron-lists": "cron 0,30 8-18/2 1-31 1-12 0-7", "cron-backwards": "cron 0 18-8 * * *",
    "cron-four": "cron 0 6 * *", "cron-range": "cron 60 6 * * *", "empty": "",
}


def duration_seeds():
    for name, s in DURATIONS.items():
        write("duration", name, s)


# ---- json: bytes for json_escape, then read again as a writer script ----

JSONS = {
    "ascii": b"250 2.0.0 Ok: queued as 4F1A22C0123",
    "quotes": b'550 5.7.1 "blocked" \\ see C:\\temp\\x',
    "controls": b"line1\r\nline2\ttab\x00nul\x01\x1f\x7f",
    "utf8": "Grüße, 日本語, emoji 🐦, euro €".encode(),
    "invalid-utf8": b"\xc0\xaf overlong \xed\xa0\x80 surrogate \xf4\x90\x80\x80 too big \xff \xe2\x82 cut",
    "truncated-seq": b"abc\xe2\x82",
    "transcript-line": b"+1.234 < 421-4.7.0 [192.0.2.25      15] Our system has detected an unusual rate of",
    "writer-script": bytes([0, 3, 4]) + b"text" + bytes([4, 5]) + b"hello" + bytes([6]) + b"\x00" * 8
                     + bytes([1, 7, 250, 3, 8, 1, 9, 2, 10, 3]) + b"key" + bytes([0, 5]) + b"value"
                     + bytes([12, 11, 2]),
    "writer-deep": bytes([1] * 40 + [2] * 10 + [0] * 5),
}


def json_seeds():
    for name, b in JSONS.items():
        write("json", name, b)


# ---- transcript: header + events (see fuzz_transcript.c) ----

TEXT, OUT, AUTH, IN, BODY, CONNECTED, TLS = 0, 1, 2, 3, 4, 5, 6
LF = 8
CURL_CODES = [0, 6, 7, 8, 28, 35, 52, 55, 56, 58, 59, 60, 64, 66, 67, 77, 83, 90, 91, 98]
ERRORS = ["", "timeout", "reset", "login", "cert", "starttls", "refused", "weird"]
STAGES = ["none", "dns", "connect", "banner", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "eod"]


def session(events, raw=False, connected=True, tls=0, auth=False, curl=0, error="", timeout_stage="none",
            connect_ms=3, timeout_s=0):
    flags = (1 if raw else 0) | (2 if connected else 0) | (4 if tls >= 1 else 0) | (8 if tls >= 2 else 0) \
        | (16 if auth else 0) | (ERRORS.index(error) << 5)
    out = bytearray([flags, 2 * CURL_CODES.index(curl), STAGES.index(timeout_stage), connect_ms, timeout_s])
    for ev in events:
        kind, data = ev[0], ev[1]
        ms = ev[2] if len(ev) > 2 else 1  # time since the previous event, ms
        if isinstance(data, str):
            data = data.encode("latin-1")
        scale = 5  # delta << 10 us, about 1 ms per unit
        delta = max(0, min(255, round(ms)))
        out += bytes([kind | (scale << 4), delta, len(data)]) + data
    return bytes(out)


def c(host="mx.seed-a.test"):
    return (CONNECTED, host)


BANNER = (IN, "220 mx.seed-a.test ESMTP Postfix")
EHLO = [(OUT, "EHLO probe.example.com"), (IN, "250-mx.seed-a.test"), (IN, "250-PIPELINING"),
        (IN, "250-SIZE 10240000"), (IN, "250-STARTTLS"), (IN, "250-ENHANCEDSTATUSCODES"), (IN, "250 8BITMIME")]
EHLO_NOTLS = [(OUT, "EHLO probe.example.com"), (IN, "250-mx.seed-a.test"), (IN, "250 8BITMIME")]
STARTTLS = [(OUT, "STARTTLS"), (IN, "220 2.0.0 Ready to start TLS", 2),
            (TLS, "TLSv1.3 / TLS_AES_256_GCM_SHA384 / X25519 / RSASSA-PSS", 20)]
EHLO_AUTH = [(OUT, "EHLO probe.example.com"), (IN, "250-smtp.example.com"), (IN, "250-AUTH PLAIN LOGIN"),
             (IN, "250 ENHANCEDSTATUSCODES")]
MAIL = [(OUT, "MAIL FROM:<canary@example.com>"), (IN, "250 2.1.0 Ok")]
RCPT = [(OUT, "RCPT TO:<seed1@seed-a.test>"), (IN, "250 2.1.5 Ok")]
DATA = [(OUT, "DATA"), (IN, "354 End data with <CR><LF>.<CR><LF>")]
BODY_ = [(BODY, "x" * 200), (BODY, "y" * 100)]
QUIT = [(OUT, "QUIT"), (IN, "221 2.0.0 Bye")]


def transcript_seeds():
    s = {}
    s["accepted-postfix"] = session([c(), BANNER] + EHLO + STARTTLS + EHLO + MAIL + RCPT + DATA + BODY_
                                    + [(IN, "250 2.0.0 Ok: queued as 4F1A22C0123", 150)] + QUIT, tls=1)
    s["accepted-auth-plain-ir"] = session([c("smtp.example.com"), (IN, "220 smtp.example.com ESMTP")] + EHLO
                                          + STARTTLS + EHLO_AUTH + [(AUTH, "PLAIN AGNhbmFyeQBzM2NyZXQ="),
                                                                    (IN, "235 2.7.0 Authentication successful")]
                                          + MAIL + RCPT + DATA + BODY_ + [(IN, "250 2.0.0 Ok: queued as 9A")] + QUIT,
                                          tls=2, auth=True)
    s["accepted-auth-login"] = session([c("smtp.example.com"), (IN, "220 smtp.example.com ESMTP")] + EHLO_AUTH
                                       + [(AUTH, "LOGIN"), (IN, "334 VXNlcm5hbWU6"), (OUT, "Y2FuYXJ5"),
                                          (IN, "334 UGFzc3dvcmQ6"), (OUT, "czNjcmV0"),
                                          (IN, "235 2.7.0 Authentication successful")]
                                       + MAIL + RCPT + DATA + BODY_ + [(IN, "250 2.0.0 Ok")] + QUIT, auth=True)
    s["auth-plain-continuation-lf"] = session([c(), (IN | LF, "220 smtp.example.com ESMTP")]
                                              + [(e[0] | LF if e[0] == IN else e[0], e[1]) for e in EHLO_AUTH]
                                              + [(AUTH, "PLAIN"), (IN | LF, "334 "), (OUT, "AGNhbmFyeQBzM2NyZXQ="),
                                                 (IN | LF, "535 5.7.8 Error: authentication failed")],
                                              auth=True, curl=67, error="login")
    s["auth-failed-gmail"] = session([c("smtp.gmail.com"), (IN, "220 smtp.gmail.com ESMTP x1-20020a.123 - gsmtp")]
                                     + EHLO_AUTH + [(AUTH, "PLAIN AGNhbmFyeQB3cm9uZw=="),
                                                    (IN, "535-5.7.8 Username and Password not accepted. For more "
                                                         "information, go to"),
                                                    (IN, "535 5.7.8  https://support.google.com/mail/?p=BadCredentials "
                                                         "x1-20020a.123 - gsmtp")],
                                     auth=True, curl=67, error="login")
    s["greylisted-rcpt"] = session([c(), BANNER] + EHLO_NOTLS + MAIL
                                   + [(OUT, "RCPT TO:<seed1@seed-a.test>"),
                                      (IN, "451 4.7.1 <seed1@seed-a.test>: Recipient address rejected: Greylisted, "
                                           "see http://postgrey.schweikert.ch/help/seed-a.test.html")] + QUIT,
                                   tls=1, curl=56, error="weird")
    s["gmail-421-banner"] = session([c("gmail-smtp-in.l.google.com"),
                                     (IN, "421-4.7.0 [192.0.2.25      15] Our system has detected an unusual rate of"),
                                     (IN, "421-4.7.0 unsolicited mail originating from your IP address. To protect our"),
                                     (IN, "421 4.7.0 users from spam, mail sent from your IP address has been "
                                          "temporarily rate limited. - gsmtp")], curl=8, error="weird")
    s["outlook-busy-banner"] = session([c("seed-b-test.mail.protection.outlook.com"),
                                        (IN, "451 4.7.500 Server busy. Please try again later from [192.0.2.25]. "
                                             "(S77719) [DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com]")],
                                       curl=8, error="weird")
    s["outlook-spamhaus-rcpt"] = session([c(), (IN, "220 AM0PR01MB1234.outlook.office365.com Microsoft ESMTP MAIL "
                                                   "Service ready")] + EHLO + STARTTLS + EHLO + MAIL
                                         + [(OUT, "RCPT TO:<seed2@seed-b.test>"),
                                            (IN, "550 5.7.1 Service unavailable, Client host [192.0.2.25] blocked using "
                                                 "Spamhaus. To request removal from this list see "
                                                 "https://www.spamhaus.org/query/ip/192.0.2.25 AS(1450)")] + QUIT,
                                         tls=1, curl=55, error="weird")
    s["eod-deferred"] = session([c(), BANNER] + EHLO_NOTLS + MAIL + RCPT + DATA + BODY_
                                + [(IN, "451 4.3.0 Error: queue file write error", 300)] + QUIT, curl=56)
    s["dropped-after-body"] = session([c(), BANNER] + EHLO_NOTLS + MAIL + RCPT + DATA + BODY_, curl=56,
                                      error="reset")
    s["eod-timeout"] = session([c(), BANNER] + EHLO_NOTLS + MAIL + RCPT + DATA + BODY_, curl=28, error="timeout",
                               timeout_stage="eod", timeout_s=60)
    s["dropped-mid-ehlo"] = session([c(), BANNER, (OUT, "EHLO probe.example.com"), (IN, "250-mx.seed-a.test"),
                                     (IN, "250-PIPELINING")], curl=56, error="reset")
    s["ehlo-refused-helo"] = session([c(), BANNER, (OUT, "EHLO probe.example.com"),
                                      (IN, "502 5.5.2 Error: command not recognized"), (OUT, "HELO probe.example.com"),
                                      (IN, "250 mx.seed-a.test")] + MAIL + RCPT + DATA + BODY_
                                     + [(IN, "250 2.0.0 Ok: queued as 77")] + QUIT)
    s["starttls-refused"] = session([c(), BANNER] + EHLO + [(OUT, "STARTTLS"),
                                                            (IN, "454 4.7.0 TLS not available due to local problem")]
                                    + MAIL + RCPT + DATA + BODY_ + [(IN, "250 2.0.0 Ok")] + QUIT, tls=1)
    s["tls-handshake-failed"] = session([c(), BANNER] + EHLO + [(OUT, "STARTTLS"), (IN, "220 2.0.0 Ready to start TLS"),
                                                                (TEXT, "OpenSSL SSL_connect: SSL_ERROR_SYSCALL in "
                                                                       "connection to mx.seed-a.test:25\n")],
                                        tls=2, curl=35, error="cert")
    s["starttls-not-offered"] = session([c(), BANNER] + EHLO_NOTLS, tls=2, curl=64, error="starttls")
    s["no-tls-offered-opportunistic"] = session([c(), BANNER] + EHLO_NOTLS + MAIL + RCPT + DATA + BODY_
                                                + [(IN, "250 2.0.0 Ok")] + QUIT, tls=1)
    s["auth-expected-not-offered"] = session([c(), BANNER] + EHLO_NOTLS + MAIL + RCPT + DATA + BODY_
                                             + [(IN, "250 2.0.0 Ok")] + QUIT, auth=True)
    s["connection-refused"] = session([(TEXT, "  Trying 192.0.2.1:25...\n"),
                                       (TEXT, "connect to 192.0.2.1 port 25 failed: Connection refused\n")],
                                      connected=False, curl=7, error="refused", connect_ms=255)
    s["connect-timeout"] = session([(TEXT, "  Trying 192.0.2.1:25...\n")], connected=False, curl=28,
                                   error="timeout", timeout_stage="connect", timeout_s=30, connect_ms=255)
    s["banner-timeout"] = session([c()], curl=28, error="timeout", timeout_stage="banner", timeout_s=5)
    s["rcpt-rejected-unknown"] = session([c(), BANNER] + EHLO_NOTLS + MAIL
                                         + [(OUT, "RCPT TO:<x@seed-a.test>"),
                                            (IN, "550 5.1.1 <x@seed-a.test>: Recipient address rejected: User unknown")]
                                         + QUIT, curl=55)
    s["raw-multiline-chunks"] = session([(TEXT, "Connected to mx (192.0.2.1) port 25 (#0)\n"),
                                         (IN, "220-mx ESMTP\r\n220 ready\r\n"),
                                         (OUT, "EHLO x\r\n"), (IN, "250-a\r\n250-b\x00c\r\n250 d\r\n"),
                                         (OUT, "AUTH PLAIN dGVzdA==\r\nextra\r\n"), (IN, "334 \r\n"),
                                         (OUT, "c2VjcmV0\r\n"), (IN, "235 ok\r\n"), (BODY, "abc"),
                                         (IN, "250 ok\r\n\r\n")], raw=True)
    for name, b in s.items():
        write("transcript", name, b)


# ---- config: whole configuration files ----

VALID = """\
# A complete configuration that loads without errors (no secret files: environment variables).
state_dir = "/var/lib/mailcanary";
vantage = "fra1";
log: { target = "syslog"; facility = "mail"; };
dns: { servers = ["127.0.0.1:53", "[::1]:5353"]; timeout = "5s"; dnsbl = ["zen.spamhaus.org"]; };
timeouts: { connect = "30s"; banner = "5m"; command = "5m"; data = "2m"; eod = "10m"; };
retry: { schedule = ["5m", "15m", "30m", "1h"]; give_up = "4h"; };
limits: { in_flight = 100; per_domain = 1; spacing = "10s"; daily_budget = 200; };
readback: { timeout = "30m"; };
alert: { command = "/usr/local/bin/notify"; latency = "10m"; failing_after = 3; };
graph_every = "5m";
senders = (
  { name = "direct"; mode = "mx"; port = 25; helo = "probe.example.com";
    mail_from = "canary@example.com"; tls = "opportunistic"; source_ip = "192.0.2.25"; },
  { name = "smarthost"; mode = "relay"; host = "smtp.example.com"; port = 587;
    helo = "[192.0.2.25]"; tls = "required"; tls_verify = true;
    username = "canary"; password_env = "MAILCANARY_SMARTHOST_PASSWORD";
    mail_from = "canary@example.com"; headers = ["X-Campaign: canary"]; }
);
seeds = (
  { name = "seed-a"; address = "seed1@seed-a.test"; sender = "direct"; schedule = "hourly";
    imap: { url = "imaps://imap.seed-a.test:993/"; username = "seed1@seed-a.test";
            password_env = "MAILCANARY_SEED_A_PASSWORD"; };
    expect_folder = "INBOX"; },
  { name = "seed-b"; address = "canary-check@seed-b.test"; sender = "smarthost";
    schedule = "every 15m"; headers = ["X-Seed: b"]; },
  { name = "seed-c"; address = "postmaster@seed-c.test"; sender = "direct";
    schedule = "cron 0 6 * * 1-5"; }
);
"""

MINIMAL = """\
senders = ( { name = "d"; mail_from = "c@example.com"; helo = "probe.example.com"; } );
seeds = ( { name = "s"; address = "s@seed-a.test"; sender = "d"; schedule = "daily"; } );
"""

CONFIGS = {
    "valid": VALID,
    "minimal": MINIMAL,
    "empty": "",
    "comments-only": "# nothing here\n// nor here\n/* nor here */\n",
    "syntax-error": "state_dir = \"/var/lib/mailcanary\"\nvantage = ;\n",
    "unknown-keys": "stat_dir = \"/x\";\ntimeouts: { conect = \"5s\"; banner = \"1m\"; };\nfoo = 1;\n",
    "type-errors": "state_dir = 5;\ndns: { timeout = 5; servers = \"127.0.0.1\"; };\nlimits: { in_flight = \"100\"; };\n"
                   "senders = { name = \"x\"; };\nseeds = [1, 2];\n",
    "ranges": "dns: { timeout = \"2m\"; };\nlimits: { in_flight = 4294967297; per_domain = -1; "
              "daily_budget = 0x7fffffffffL; };\ngraph_every = \"1s\";\nretry: { schedule = (\"0s\", \"1w\", 5); };\n",
    "bad-durations": "timeouts: { connect = \"30\"; banner = \"1x\"; command = \"99999999999999w\"; "
                     "data = \"\"; eod = \"1h30m\"; };\n",
    "senders-errors": "senders = (\n  { name = \"r\"; mode = \"relay\"; mail_from = \"a@b\"; },\n"
                      "  { name = \"m\"; mode = \"mx\"; host = \"smtp.example.com\"; mail_from = \"bad\"; "
                      "helo = \"-bad-.example\"; source_ip = \"300.1.1.1\"; username = \"u\"; },\n"
                      "  { name = \"r\"; mode = \"relay\"; host = \"h\"; mail_from = \"x@example.com\"; "
                      "password_file = \"secret\"; password_env = \"1BAD\"; headers = [\"From: x\", \"X-A:\", "
                      "\"X-B: ok\"]; tls = \"maybe\"; },\n  5\n);\n",
    "seeds-errors": "senders = ( { name = \"d\"; mail_from = \"c@example.com\"; helo = \"p.example.com\"; } );\n"
                    "seeds = (\n  { name = \"s1\"; address = \"s@seed\"; sender = \"nobody\"; schedule = \"cron 0 6 * *\"; },\n"
                    "  { name = \"s1\"; address = \"a@b@c.test\"; sender = \"d\"; schedule = \"every 0s\"; "
                    "imap: { url = \"imap://user@host/\"; password_file = \"p\"; }; },\n"
                    "  { name = \".bad\"; address = \"x@seed-a.test\"; sender = \"d\"; schedule = \"cron */0 25 0 13 8\"; "
                    "imap: { url = \"http://x\"; username = \"u\"; }; expect_folder = \"\"; }\n);\n",
    "include-missing": "@include \"missing.conf\"\nvantage = \"x\";\n",
    "include-absolute": "@include \"/etc/mailcanary/other.conf\"\n",
    "include-self": "@include \"mailcanary.conf\"\n",
    "rrdcached": "rrdcached = \"unix:/run/rrdcached.sock\";\nrrd_dir = \"rrd\";\nstate_dir = \"state\";\n",
    "no-senders-seed": "seeds = ( { name = \"s\"; address = \"s@seed-a.test\"; sender = \"d\"; schedule = \"weekly\"; } );\n",
}


def config_seeds():
    for name, text in CONFIGS.items():
        write("config", name, text)
    with open(os.path.join(HERE, "..", "..", "conf", "mailcanary.conf.example"), "rb") as f:
        write("config", "example", f.read())


# ---- dnsrec: byte 0 the function (% 6: 0 DMARC, 1 DKIM key, 2 DNSBL A answers, 3 "IP\nZONE",
# 4 "DOMAIN\nDOMAIN", 5 dnsrec_show), byte 1 a buffer size (1 + % 64), then the input ----

DKIM_RSA2048 = ("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAlnLLh20M8GgivVwxGtWFNBfXDwkUoWgeAoyiDPWpPsEL"
                "X+AXWAmDePOmxX7ojcog5i/Q7L9Pt5l2w29MgOcL9bPqT5G+WnlQkW5P65Al/8b4H8a26BKHEyL3+hOphXLU4G24"
                "Y+nbupwZdmoSCPHyiYa+IJQM+IH/mTSzw759bu0Gxeoy8s6+vsLgAjR8UF+qRgtT5LEjmqX7FcBBF72+Umg4V2+C"
                "cEfkbbOySdrV3y6VKfFNmwih9Xc+kFNXzxQa+ByniGig9xAkOSePDsI4aXNgfLrkd97YL0kfg6ZihloLQ9IA0Yr5"
                "XYEvAwJvDX0vWmYszv1GKgAibx+IGo9wVwIDAQAB")
DNSREC = {
    "dmarc-reject": (0, 63, "v=DMARC1; p=reject; rua=mailto:dmarc-reports@example.com; ruf=mailto:f@example.com; fo=1"),
    "dmarc-google": (0, 63, "v=DMARC1; p=quarantine; sp=none; adkim=s; aspf=r; pct=50; rf=afrf; ri=86400; "
                            "rua=mailto:mailauth-reports@google.com!10m"),
    "dmarc-none-rua-only": (0, 63, "v=DMARC1; rua=mailto:a@example.com,https://r.example.com/dmarc"),
    "dmarc-garbage-tags": (0, 20, "v=DMARC1;p=reject;;pct=1000;foo;adkim=x;P=none; v=DMARC1"),
    "dkim-rsa2048": (1, 63, "v=DKIM1; k=rsa; h=sha256; s=email; t=s; p=" + DKIM_RSA2048),
    "dkim-ed25519": (1, 63, "v=DKIM1; k=ed25519; p=kz/wZ83uxqnf4ayCaH/K+5ICNvYHHX8WX8vTSFH2Arw="),
    "dkim-revoked": (1, 63, "v=DKIM1; p="),
    "dkim-cut": (1, 10, "v=DKIM1; k=rsa; p=" + DKIM_RSA2048[:150]),
    "dkim-folded": (1, 63, "v=DKIM1;\r\n\tp=" + DKIM_RSA2048[:200] + " \r\n " + DKIM_RSA2048[200:]),
    "dnsbl-listed": (2, 0, bytes([127, 0, 0, 2, 127, 0, 0, 4])),
    "dnsbl-errors": (2, 0, bytes([127, 255, 255, 254, 127, 0, 0, 1, 192, 0, 2, 1])),
    "reverse-v4": (3, 63, "192.0.2.25\nzen.spamhaus.org"),
    "reverse-v6": (3, 63, "2001:db8::25\nbl.example.org."),
    "reverse-mapped-ptr": (3, 5, "::ffff:192.0.2.25"),
    "domains-psl": (4, 63, "Mail.Example.CO.UK.\nexample.co.uk"),
    "domains-private-suffix": (4, 20, "a.github.io\nb.github.io"),
    "show-controls": (5, 12, "mx\x00.\x01\x7f\xc3\xa9.example.com"),
}


def dnsrec_seeds():
    for name, (mode, size, data) in DNSREC.items():
        if isinstance(data, str):
            data = data.encode("latin-1")
        write("dnsrec", name, bytes([mode, size]) + data)


if __name__ == "__main__":
    reply_seeds()
    duration_seeds()
    json_seeds()
    transcript_seeds()
    config_seeds()
    dnsrec_seeds()
    print("seeds written under", os.path.join(HERE, "corpus"), file=sys.stderr)
