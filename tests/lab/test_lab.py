#!/usr/bin/env python3
"""Smoke test of the mailcanary test lab: every server behaves as named.

Uses the running lab in $MAILCANARY_LAB (as under ctest); without it, starts a lab in
a temporary directory and stops it at the end. One line per check ("ok - name" or
"not ok - name: detail"), then "N passed, M failed"; exit status 1 on any failure.
Python 3 standard library only (plus dig from bind9-dnsutils).
"""

import base64
import imaplib
import os
import random
import re
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lab  # noqa: E402

PASSED, FAILED = [], []
LAB = None          # lab.json dict
FAST = 0.8          # a reply that should be immediate (generous: ctest -j load)
SLOW = 0.9          # a reply delayed by 1 s


class Fail(Exception):
    pass


def check(name):
    """Decorator: run the check now, print its TAP-like line."""
    def deco(fn):
        t = time.monotonic()
        try:
            fn()
        except Fail as e:
            FAILED.append(name)
            print("not ok - %s: %s" % (name, e), flush=True)
        except Exception as e:  # a crash is a failure too
            FAILED.append(name)
            print("not ok - %s: %s: %s" % (name, type(e).__name__, e), flush=True)
        else:
            PASSED.append(name)
            print("ok - %s" % name, flush=True)
        if os.environ.get("MAILCANARY_LAB_DEBUG"):
            print("#   %.2f s" % (time.monotonic() - t), flush=True)
        return fn
    return deco


def expect(cond, detail):
    if not cond:
        raise Fail(detail)


# ---------------------------------------------------------------------------
# A small SMTP client that shows every reply, its timing, and EOF/timeout

class Timeout(Exception):
    pass


class Smtp:
    def __init__(self, host, port, timeout=5.0, source=None):
        t = time.monotonic()
        self.sock = socket.create_connection(
            (host, port), timeout=timeout, source_address=(source, 0) if source else None)
        self.connect_s = time.monotonic() - t
        self.buf = b""
        self.tls = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout()
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                raise Timeout()
            except (ConnectionResetError, ssl.SSLEOFError, BrokenPipeError):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self, timeout=5.0):
        """(code, [lines], seconds); code None means the server closed the connection."""
        t = time.monotonic()
        deadline = t + timeout
        lines = []
        while True:
            line = self._line(deadline)
            if line is None:
                return None, lines, time.monotonic() - t
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                break
        try:
            code = int(lines[-1][:3])
        except ValueError:
            code = -1
        return code, lines, time.monotonic() - t

    def send(self, line):
        try:
            self.sock.sendall(line.encode() + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def cmd(self, line, timeout=5.0):
        self.send(line)
        return self.reply(timeout)

    def starttls(self, ctx, hostname):
        code, lines, _ = self.cmd("STARTTLS")
        expect(code == 220, "STARTTLS answered %s" % lines)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=hostname)
        self.tls = self.sock.version()


def last(lines):
    return lines[-1] if lines else "(no reply)"


MSG = ("From: <canary@lab.test>\r\nTo: <{to}>\r\nSubject: lab smoke {token}\r\n"
       "Message-ID: <{token}@lab.test>\r\nX-Lab-Token: {token}\r\n{extra}\r\n"
       "mailcanary lab smoke test\r\n.")


def transaction(port, host="127.0.0.1", rcpt="seed1@sink.test", banner_timeout=5.0):
    """Run one SMTP session like an MTA (EHLO, HELO fallback). Returns
    (stage, code, text, times) where stage is where it ended: the first failing
    stage, or "eod" with 250; code None = connection closed, "timeout" = no reply."""
    times = {}
    s = Smtp(host, port)
    try:
        steps = [("banner", None, banner_timeout), ("ehlo", "EHLO probe.lab.test", 5),
                 ("mail", "MAIL FROM:<canary@lab.test>", 5), ("rcpt", "RCPT TO:<%s>" % rcpt, 5),
                 ("data", "DATA", 5),
                 ("eod", MSG.format(to=rcpt, token=uuid.uuid4().hex, extra=""), 5)]
        for stage, line, tmo in steps:
            try:
                code, lines, secs = s.reply(tmo) if line is None else s.cmd(line, tmo)
            except Timeout:
                return stage, "timeout", "", times
            times[stage] = secs
            if stage == "ehlo" and code is not None and code >= 400:
                times["ehlo_code"] = code
                stage = "helo"
                try:
                    code, lines, secs = s.cmd("HELO probe.lab.test")
                except Timeout:
                    return stage, "timeout", "", times
                times[stage] = secs
            ok = code is not None and (code < 400)
            if not ok:
                return stage, code, last(lines), times
        return "eod", code, last(lines), times
    finally:
        s.close()


# ---------------------------------------------------------------------------
# IMAP helpers

class IMAP4From(imaplib.IMAP4):
    """imaplib.IMAP4 with a source address (wrong-password tests run from 127.0.0.2)."""
    def __init__(self, host, port, source):
        self._source = source
        super().__init__(host, port, timeout=20)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._source, 0))


def tls_ctx():
    return ssl.create_default_context(cafile=LAB["ca_file"])


def imap_login(user):
    m = imaplib.IMAP4_SSL("127.0.0.1", LAB["imap"]["imaps_port"], ssl_context=tls_ctx(),
                          timeout=20)
    m.login(user, LAB["users"][user]["password"])
    return m


def find_and_delete(user, token, folder="INBOX", wait=20.0, delete=True):
    """Poll folder for the message with X-Lab-Token: token; delete only it.
    Returns the folders where it was found (checks INBOX and Junk)."""
    m = imap_login(user)
    try:
        deadline = time.monotonic() + wait
        while True:
            where = []
            for f in ("INBOX", "Junk"):
                typ, _ = m.select(f)
                expect(typ == "OK", "SELECT %s failed" % f)
                typ, data = m.uid("SEARCH", None, "HEADER", "X-Lab-Token", token)
                uids = data[0].split() if data and data[0] else []
                if uids:
                    where.append(f)
                    if delete and f == folder:
                        m.uid("STORE", b",".join(uids).decode(), "+FLAGS", "(\\Deleted)")
                        m.uid("EXPUNGE", b",".join(uids).decode())
            if where or time.monotonic() > deadline:
                return where
            time.sleep(0.2)
    finally:
        try:
            m.logout()
        except Exception:
            pass


def send_mail(port, rcpt, extra_headers="", host="127.0.0.1", auth=None, tls_host=None):
    """Deliver one message; returns (token, queue reply)."""
    token = "lab%s" % uuid.uuid4().hex
    s = Smtp(host, port)
    try:
        code, lines, _ = s.reply()
        expect(code == 220, "banner %s" % lines)
        code, lines, _ = s.cmd("EHLO probe.lab.test")
        expect(code == 250, "EHLO %s" % lines)
        if tls_host:
            s.starttls(tls_ctx(), tls_host)
            code, lines, _ = s.cmd("EHLO probe.lab.test")
            expect(code == 250, "EHLO after TLS %s" % lines)
        if auth:
            user, pw = auth
            code, lines, _ = s.cmd("AUTH PLAIN " + base64.b64encode(
                ("\0%s\0%s" % (user, pw)).encode()).decode())
            expect(code == 235, "AUTH %s" % lines)
        for line, want in (("MAIL FROM:<canary@lab.test>", 250), ("RCPT TO:<%s>" % rcpt, 250),
                           ("DATA", 354)):
            code, lines, _ = s.cmd(line)
            expect(code == want, "%s -> %s" % (line, last(lines)))
        code, lines, _ = s.cmd(MSG.format(to=rcpt, token=token, extra=extra_headers), 30)
        expect(code == 250, "end of data -> %s" % last(lines))
        s.cmd("QUIT")
        return token, last(lines)
    finally:
        s.close()


def rcpt_reply(port, rcpt, host="127.0.0.1"):
    s = Smtp(host, port)
    try:
        s.reply()
        s.cmd("EHLO probe.lab.test")
        s.cmd("MAIL FROM:<canary@lab.test>")
        code, lines, _ = s.cmd("RCPT TO:<%s>" % rcpt)
        return code, last(lines)
    finally:
        s.close()


def fresh_grey_rcpt():
    """A grey.test address postgrey has never seen: letters only (postgrey stores passed
    triplets for 35 days; the lab accepts any local part there)."""
    return "grey-%s@%s" % ("".join(random.choice(string.ascii_lowercase) for _ in range(12)),
                           LAB["postgrey"]["domain"])


GREY_RE = re.compile(r"^450 4\.2\.0 <([^>]+)>: Recipient address rejected: "
                     r"Greylisted, try again in (\d+) seconds$")


def expect_greylisted(rcpt, port):
    """One SMTP session up to RCPT; the reply must be postgrey's 450. Returns the seconds
    postgrey says are left."""
    code, text = rcpt_reply(port, rcpt)
    m = GREY_RE.match(text)
    expect(code == 450 and m and m.group(1) == rcpt, "RCPT %s -> %s" % (rcpt, text))
    left = int(m.group(2))
    expect(0 < left <= LAB["postgrey"]["delay"], "seconds left %d in %r" % (left, text))
    return left


def dig(name, qtype="A"):
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(LAB["dns"]["port"]), "+time=2",
                          "+tries=1", "+noall", "+comments", "+answer", name, qtype],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=10).stdout.decode()
    m = re.search(r"status: (\w+)", out)
    status = m.group(1) if m else "NOREPLY"
    answers = []
    for line in out.splitlines():
        if line and not line.startswith(";"):
            parts = line.split()
            if len(parts) >= 5 and parts[3] == qtype:
                answers.append(" ".join(parts[4:]))
    return status, sorted(answers)


# ---------------------------------------------------------------------------
# The checks

def run_checks():
    sinks = LAB["sinks"]
    pf = LAB["postfix"]

    @check("lab.json has every key")
    def _():
        for k in ("dir", "dns", "refused_port", "sinks", "postfix", "imap", "ca_file", "users",
                  "pids", "postgrey"):
            expect(k in LAB, "missing %s" % k)
        pg = LAB["postgrey"]
        expect(pg == {"port": pg.get("port"), "delay": lab.GREY_DELAY, "domain": "grey.test",
                      "mailbox": "seed1@grey.test"}, "postgrey %s" % pg)
        expect(pg["mailbox"] in LAB["users"], "no user %s" % pg["mailbox"])
        expect("postgrey" in LAB["pids"], "no postgrey pid")
        for k in ("mx", "mx_ip", "mx421_ip", "dead_ip", "refuse421", "submission", "notls"):
            expect(k in pf, "missing postfix.%s" % k)
        want = {"ok", "banner450", "nobanner", "ehlo4xx", "ehlohelo4xx", "mail4xx", "rcpt432",
                "rcpt5xx", "data4xx", "eod4xx", "drop_banner", "drop_ehlo", "drop_mail",
                "drop_rcpt", "drop_data", "drop_eod", "slow_banner", "slow_rcpt", "slow_data",
                "slow_eod"}
        expect(want <= set(LAB["sinks"]), "missing sinks %s" % (want - set(LAB["sinks"])))
        expect(LAB["dns"]["server"] == "127.0.0.1:%d" % LAB["dns"]["port"], "dns.server")
        ports = list(LAB["sinks"].values()) + [LAB["refused_port"], LAB["dns"]["port"],
                 pf["mx"], pf["refuse421"], pf["submission"], pf["notls"],
                 LAB["imap"]["port"], LAB["imap"]["imaps_port"], LAB["postgrey"]["port"]]
        expect(len(ports) == len(set(ports)), "ports not unique")

    @check("every recorded pid is running")
    def _():
        dead = [n for n, p in LAB["pids"].items() if not lab.alive(p)]
        expect(not dead, "not running: %s" % dead)

    @check("secret files are 0600 and hold the passwords")
    def _():
        for u, ent in LAB["users"].items():
            st = os.stat(ent["secret_file"])
            expect(st.st_mode & 0o777 == 0o600, "%s mode %o" % (u, st.st_mode & 0o777))
            with open(ent["secret_file"]) as f:
                expect(f.read() == ent["password"], "%s secret differs" % u)

    # --- smtp-sink faults --------------------------------------------------
    def sink(name, stage, code, text=None, slow=None, times_check=None, **kw):
        @check("sink %s: %s %s" % (name, stage, code if code is not None else "closed"))
        def _():
            st, c, t, times = transaction(sinks[name], **kw)
            expect((st, c) == (stage, code), "ended at %s with %s %r (times %s)" % (st, c, t, times))
            if text is not None:
                expect(t == text, "reply text %r, want %r" % (t, text))
            for s_, secs in times.items():
                if s_ == "ehlo_code":
                    continue
                if s_ == slow:
                    expect(secs >= SLOW, "%s took only %.2f s" % (s_, secs))
                else:
                    expect(secs < FAST, "%s took %.2f s" % (s_, secs))
            if slow:
                expect(slow in times, "stage %s never reached" % slow)
            if times_check:
                times_check(times)

    sink("ok", "eod", 250)
    sink("banner450", "banner", 450)
    sink("nobanner", "banner", "timeout", banner_timeout=2.0)
    sink("ehlo4xx", "eod", 250,
         times_check=lambda t: expect(t.get("ehlo_code", 0) // 100 == 4 and "helo" in t,
                                      "EHLO not refused / no HELO fallback: %s" % t))
    sink("ehlohelo4xx", "helo", 450)
    sink("mail4xx", "mail", 450)
    sink("rcpt432", "rcpt", 451, text="451 4.3.2 System not accepting network messages")
    sink("rcpt5xx", "rcpt", 550, text="550 5.1.1 No such user here")
    sink("data4xx", "data", 450)
    sink("eod4xx", "eod", 450)
    for st in ("banner", "ehlo", "mail", "rcpt", "data", "eod"):
        sink("drop_" + st, st, None)
    sink("slow_banner", "eod", 250, slow="banner")
    sink("slow_rcpt", "eod", 250, slow="rcpt")
    sink("slow_data", "eod", 250, slow="data")
    sink("slow_eod", "eod", 250, slow="eod")

    @check("refused_port refuses connections")
    def _():
        try:
            socket.create_connection(("127.0.0.1", LAB["refused_port"]), timeout=2).close()
        except ConnectionRefusedError:
            return
        raise Fail("connected")

    # --- Postfix -----------------------------------------------------------
    @check("postfix mx: banner, EHLO offers STARTTLS, no AUTH")
    def _():
        s = Smtp("127.0.0.1", pf["mx"])
        try:
            code, lines, _ = s.reply()
            expect(code == 220 and "mx.lab.test" in lines[0], "banner %s" % lines)
            code, lines, _ = s.cmd("EHLO probe.lab.test")
            caps = [l[4:].upper() for l in lines]
            expect("STARTTLS" in caps, "no STARTTLS in %s" % caps)
            expect(not any(c.startswith("AUTH") for c in caps), "AUTH offered on mx: %s" % caps)
        finally:
            s.close()

    for hostname in ("mx.lab.test", "mx.seed-a.test", "mx1.fallback421.test", "localhost",
                     "127.0.0.1"):
        @check("postfix mx STARTTLS verifies with ca_file as %s" % hostname)
        def _():
            s = Smtp("127.0.0.1", pf["mx"])
            try:
                s.reply()
                s.cmd("EHLO probe.lab.test")
                s.starttls(tls_ctx(), hostname)
                code, lines, _ = s.cmd("EHLO probe.lab.test")
                expect(code == 250, "EHLO over TLS: %s" % lines)
                expect(s.tls in ("TLSv1.2", "TLSv1.3"), "version %s" % s.tls)
            finally:
                s.close()

    @check("postfix mx STARTTLS fails verification without ca_file and for other names")
    def _():
        for ctx, name in ((ssl.create_default_context(), "mx.lab.test"),
                          (tls_ctx(), "mx.other.invalid")):
            s = Smtp("127.0.0.1", pf["mx"])
            try:
                s.reply()
                s.cmd("EHLO probe.lab.test")
                try:
                    s.starttls(ctx, name)
                except ssl.SSLCertVerificationError:
                    continue
                raise Fail("verified %s with %s" % (name, ctx))
            finally:
                s.close()

    @check("postfix mx delivers seed1@seed-a.test into its INBOX (IMAP finds and deletes it)")
    def _():
        token, q = send_mail(pf["mx"], "seed1@seed-a.test")
        where = find_and_delete("seed1@seed-a.test", token)
        expect(where == ["INBOX"], "found in %s (queued: %s)" % (where, q))
        expect(find_and_delete("seed1@seed-a.test", token, wait=0) == [], "not deleted")

    @check("postfix mx over STARTTLS delivers to every other lab user")
    def _():
        for u in ("seed2@seed-b.test", "seed1@fallback.test", "seed1@fallback421.test",
                  "canary@lab.test"):
            token, q = send_mail(pf["mx"], u, tls_host="mx.lab.test")
            where = find_and_delete(u, token)
            expect(where == ["INBOX"], "%s: found in %s (queued: %s)" % (u, where, q))

    @check("X-Lab-Junk: yes is filed into Junk (Sieve sieve_before)")
    def _():
        token, q = send_mail(pf["mx"], "seed1@seed-a.test", extra_headers="X-Lab-Junk: yes\r\n")
        where = find_and_delete("seed1@seed-a.test", token, folder="Junk")
        expect(where == ["Junk"], "found in %s (queued: %s)" % (where, q))

    @check("postfix mx: unknown recipient gets 550 5.1.1")
    def _():
        code, text = rcpt_reply(pf["mx"], "nobody@seed-a.test")
        expect(code == 550 and text.startswith("550 5.1.1 "), text)

    @check("postfix mx: relaying to another domain is refused (554 5.7.1)")
    def _():
        code, text = rcpt_reply(pf["mx"], "someone@example.com")
        expect(code == 554 and text.startswith("554 5.7.1 "), text)

    for rcpt, want in lab.RECIPIENT_ACCESS.items():
        @check("postfix mx access map: %s -> %s" % (rcpt, want))
        def _():
            code, text = rcpt_reply(pf["mx"], rcpt)
            if want.startswith("HOLD"):  # accepted; the message waits in the hold queue
                expect(code == 250, text)
                return
            prefix, msg = want[:10], want[10:]
            expect(text.startswith(prefix) and text.endswith(msg), text)

    # --- postgrey (real greylisting for grey.test) ---------------------------
    delay = LAB["postgrey"]["delay"]

    @check("postgrey: fresh grey.test address: 450 4.2.0 greylisted, early retry 450, "
           "accepted after the delay + 1 s and delivered into seed1@grey.test")
    def _():
        rcpt = fresh_grey_rcpt()
        t0 = time.monotonic()
        left = expect_greylisted(rcpt, pf["mx"])
        expect(left == delay, "first attempt: %d s left, want %d" % (left, delay))
        expect_greylisted(rcpt, pf["mx"])           # a new session at once: still greylisted
        time.sleep(max(0.0, t0 + delay + 1 - time.monotonic()))
        token, q = send_mail(pf["mx"], rcpt)        # RCPT 250 now (send_mail checks it)
        where = find_and_delete(LAB["postgrey"]["mailbox"], token)
        expect(where == ["INBOX"], "found in %s (queued: %s)" % (where, q))

    @check("postgrey: another fresh local part is greylisted again (new triplet)")
    def _():
        expect_greylisted(fresh_grey_rcpt(), pf["mx"])

    @check("postgrey: no greylisting elsewhere (seed1@seed-a.test accepted at once)")
    def _():
        t = time.monotonic()
        code, text = rcpt_reply(pf["mx"], "seed1@seed-a.test")
        expect(code == 250, text)
        expect(time.monotonic() - t < FAST + 1, "took %.2f s" % (time.monotonic() - t))

    @check("postgrey: submission (AUTH) to grey.test is not greylisted, lands in seed1@grey.test")
    def _():
        u = lab.SUBMISSION_USER
        token, q = send_mail(pf["submission"], fresh_grey_rcpt(), tls_host="mx.lab.test",
                             auth=(u, LAB["users"][u]["password"]))
        where = find_and_delete(LAB["postgrey"]["mailbox"], token)
        expect(where == ["INBOX"], "found in %s (queued: %s)" % (where, q))

    def expect_421_at_connect(host, port):
        s = Smtp(host, port)
        try:
            code, lines, secs = s.reply()
            expect(code == 421 and lines[-1].startswith("421 4.7.0 ")
                   and "Too many connections, try again later" in lines[-1], "greeting %s" % lines)
            try:
                code2, lines2, _ = s.cmd("EHLO probe.lab.test", timeout=3)
            except Timeout:
                raise Fail("connection left open after 421")
            expect(code2 is None, "after 421 the server answered EHLO: %s" % lines2)
        finally:
            s.close()

    @check("postfix on %s:mx answers 421 4.7.0 at connect and hangs up" % lab.MX421_IP)
    def _():
        expect_421_at_connect(pf["mx421_ip"], pf["mx"])

    @check("postfix refuse421 answers 421 4.7.0 at connect and hangs up")
    def _():
        expect_421_at_connect("127.0.0.1", pf["refuse421"])

    @check("nothing listens on %s:mx (dead first MX)" % lab.DEAD_IP)
    def _():
        try:
            socket.create_connection((pf["dead_ip"], pf["mx"]), timeout=2).close()
        except ConnectionRefusedError:
            return
        raise Fail("connected")

    @check("postfix notls: no STARTTLS offered")
    def _():
        s = Smtp("127.0.0.1", pf["notls"])
        try:
            code, _, _ = s.reply()
            expect(code == 220, "banner %s" % code)
            code, lines, _ = s.cmd("EHLO probe.lab.test")
            expect(code == 250 and not any("STARTTLS" in l.upper() for l in lines), lines)
            code, lines, _ = s.cmd("STARTTLS")
            expect(code is not None and code >= 500, "STARTTLS -> %s" % lines)
        finally:
            s.close()

    @check("postfix submission: TLS required before AUTH and MAIL")
    def _():
        s = Smtp("127.0.0.1", pf["submission"])
        try:
            s.reply()
            code, lines, _ = s.cmd("EHLO probe.lab.test")
            caps = [l[4:].upper() for l in lines]
            expect("STARTTLS" in caps and not any(c.startswith("AUTH") for c in caps),
                   "EHLO before TLS: %s" % caps)
            code, lines, _ = s.cmd("MAIL FROM:<canary@lab.test>")
            expect(code == 530, "MAIL before TLS -> %s" % lines)
            s.starttls(tls_ctx(), "mx.lab.test")
            code, lines, _ = s.cmd("EHLO probe.lab.test")
            caps = [l[4:].upper() for l in lines]
            expect(any(c.startswith("AUTH") and "PLAIN" in c for c in caps), "no AUTH PLAIN: %s" % caps)
            s.cmd("MAIL FROM:<canary@lab.test>")
            code, lines, _ = s.cmd("RCPT TO:<seed1@seed-a.test>")
            expect(code is not None and code >= 500, "unauthenticated RCPT -> %s" % lines)
        finally:
            s.close()

    @check("postfix submission: AUTH as %s delivers to a lab mailbox" % lab.SUBMISSION_USER)
    def _():
        u = lab.SUBMISSION_USER
        token, q = send_mail(pf["submission"], "seed2@seed-b.test", tls_host="mx.lab.test",
                             auth=(u, LAB["users"][u]["password"]))
        where = find_and_delete("seed2@seed-b.test", token)
        expect(where == ["INBOX"], "found in %s (queued: %s)" % (where, q))

    @check("postfix submission: other domains are relayed to the ok sink")
    def _():
        u = lab.SUBMISSION_USER
        _, q = send_mail(pf["submission"], "someone@example.com", tls_host="mx.lab.test",
                         auth=(u, LAB["users"][u]["password"]))
        m = re.search(r"queued as (\w+)", q)
        expect(m, "no queue id in %r" % q)
        qid = m.group(1)
        logf = os.path.join(LAB["dir"], "log", "postfix.log")
        want = "relay=127.0.0.1[127.0.0.1]:%d" % LAB["sinks"]["ok"]
        deadline = time.monotonic() + 20
        line = ""
        while time.monotonic() < deadline:
            with open(logf, errors="replace") as f:
                lines = [l for l in f if ("%s: to=<someone@example.com>" % qid) in l]
            if lines:
                line = lines[-1]
                if "status=" in line:
                    break
            time.sleep(0.2)
        expect(want in line and "status=sent" in line, "log: %r" % line.strip())

    @check("postfix submission: wrong password from 127.0.0.2 gets 535 5.7.8")
    def _():
        s = Smtp("127.0.0.1", pf["submission"], source="127.0.0.2")
        try:
            s.reply()
            s.cmd("EHLO probe.lab.test")
            s.starttls(tls_ctx(), "mx.lab.test")
            s.cmd("EHLO probe.lab.test")
            code, lines, _ = s.cmd("AUTH PLAIN " + base64.b64encode(
                ("\0%s\0wrong-password" % lab.SUBMISSION_USER).encode()).decode(), timeout=30)
            expect(code == 535 and lines[-1].startswith("535 5.7.8"), "AUTH -> %s" % lines)
        finally:
            s.close()

    # --- Dovecot -----------------------------------------------------------
    @check("imap: greeting, STARTTLS verifies with ca_file, LOGIN works")
    def _():
        m = imaplib.IMAP4("127.0.0.1", LAB["imap"]["port"], timeout=20)
        try:
            expect("STARTTLS" in m.capabilities, "capabilities %s" % (m.capabilities,))
            m.starttls(ssl_context=tls_ctx())
            u = "seed1@seed-a.test"
            typ, _ = m.login(u, LAB["users"][u]["password"])
            expect(typ == "OK", typ)
        finally:
            m.logout()

    @check("imaps: every user logs in with the password from its secret file")
    def _():
        for u, ent in LAB["users"].items():
            with open(ent["secret_file"]) as f:
                pw = f.read()
            m = imaplib.IMAP4_SSL("127.0.0.1", LAB["imap"]["imaps_port"], ssl_context=tls_ctx(),
                                  timeout=20)
            try:
                typ, _ = m.login(u, pw)
                expect(typ == "OK", "%s: %s" % (u, typ))
            finally:
                m.logout()

    @check("imap: INBOX, Junk (\\Junk) and Trash (\\Trash) exist")
    def _():
        m = imap_login("seed1@seed-a.test")
        try:
            typ, data = m.list()
            text = b"\n".join(data).decode()
            expect(re.search(r'\\Junk\b.*"?Junk"?$', text, re.M), "no \\Junk Junk in %s" % text)
            expect(re.search(r'\\Trash\b.*"?Trash"?$', text, re.M), "no \\Trash Trash in %s" % text)
            expect(re.search(r'INBOX', text), "no INBOX in %s" % text)
        finally:
            m.logout()

    @check("imap: wrong password from 127.0.0.2 is refused")
    def _():
        m = IMAP4From("127.0.0.1", LAB["imap"]["port"], "127.0.0.2")
        try:
            try:
                m.login("seed1@seed-a.test", "wrong-password")
            except imaplib.IMAP4.error as e:
                expect("AUTHENTICATIONFAILED" in str(e) or "failed" in str(e).lower(), str(e))
                return
            raise Fail("login succeeded")
        finally:
            try:
                m.logout()
            except Exception:
                pass

    # --- dnsmasq -----------------------------------------------------------
    dns_cases = [
        ("sink.test", "MX", "NOERROR", ["10 mx.sink.test."]),
        ("mx.sink.test", "A", "NOERROR", ["127.0.0.1"]),
        ("seed-a.test", "MX", "NOERROR", ["10 mx.lab.test."]),
        ("seed-b.test", "MX", "NOERROR", ["10 mx.lab.test."]),
        ("lab.test", "MX", "NOERROR", ["10 mx.lab.test."]),
        ("grey.test", "MX", "NOERROR", ["10 mx.lab.test."]),
        ("mx.lab.test", "A", "NOERROR", ["127.0.0.1"]),
        ("mx.lab.test", "AAAA", "NOERROR", []),
        ("fallback.test", "MX", "NOERROR", ["10 mx1.fallback.test.", "20 mx2.fallback.test."]),
        ("mx1.fallback.test", "A", "NOERROR", ["127.0.0.2"]),
        ("mx2.fallback.test", "A", "NOERROR", ["127.0.0.1"]),
        ("fallback421.test", "MX", "NOERROR",
         ["10 mx1.fallback421.test.", "20 mx2.fallback421.test."]),
        ("mx1.fallback421.test", "A", "NOERROR", ["127.0.0.3"]),
        ("mx2.fallback421.test", "A", "NOERROR", ["127.0.0.1"]),
        ("nomx.test", "MX", "NOERROR", []),
        ("nomx.test", "A", "NOERROR", ["127.0.0.1"]),
        ("nxdomain.test", "MX", "NXDOMAIN", []),
        ("nxdomain.test", "A", "NXDOMAIN", []),
        ("noaddr.test", "MX", "NOERROR", ["10 mx.noaddr.test."]),
        ("mx.noaddr.test", "A", None, []),
        ("mx.noaddr.test", "AAAA", None, []),
        ("1.0.0.127.in-addr.arpa", "PTR", "NOERROR", ["mx.lab.test."]),
    ]
    for name, qtype, status, answers in dns_cases:
        @check("dns %s %s -> %s %s" % (name, qtype, status or "no data", " ".join(answers) or "-"))
        def _():
            st, got = dig(name, qtype)
            if status is None:
                expect(st in ("NOERROR", "NXDOMAIN") and not got, "%s %s" % (st, got))
            else:
                expect(st == status and got == sorted(answers), "%s %s" % (st, got))


def main():
    global LAB
    labdir = os.environ.get("MAILCANARY_LAB")
    own = None
    if not labdir:
        own = tempfile.mkdtemp(prefix="mclab-")
        print("# no MAILCANARY_LAB: starting a lab in %s" % own, flush=True)
        try:
            lab.start(own)
        except lab.LabError as e:
            print("not ok - lab start: %s" % e)
            print("0 passed, 1 failed")
            lab.stop(own, clean=True, quiet=True)
            return 1
        labdir = own
    try:
        LAB = lab.load(labdir)
        t = time.monotonic()
        run_checks()
        print("# checks took %.1f s" % (time.monotonic() - t))
    finally:
        if own:
            lab.stop(own, clean=True, quiet=True)
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
