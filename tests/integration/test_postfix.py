#!/usr/bin/env python3
"""A real MTA on the other side: the lab's Postfix (mx, 421 at connect, submission with Dovecot
SASL, no STARTTLS), its access maps and TLS, MX fallback and DNS failures from dnsmasq, all
through the real CLI. One check per behaviour, each on outcome, stage, code, enhanced code and
text or error. No credentials may appear in any output, transcript or the detail log."""

import base64
import os
import socket
import ssl
import threading
import time

import mclab

L = mclab.lab()
rep = mclab.Report("postfix")
wd = mclab.Workdir("postfix")
rep.guard(wd.cleanup)
S = rep.smtp
PF = L["postfix"]
CA = L["ca_file"]
SUB_USER = "canary@lab.test"
SUB_PASS = L["users"][SUB_USER]["password"]
WRONG_PASS = "Wrong-" + SUB_PASS[::-1]


def sender(name, port, mode="mx", tls="opportunistic", ca_file=CA, **kw):
    s = {"name": name, "mode": mode, "port": port, "helo": "probe.lab.test",
         "mail_from": "canary@lab.test", "tls": tls}
    if ca_file:
        s["ca_file"] = ca_file
    s.update(kw)
    return s


def seed(name, address, via):
    return {"name": name, "address": address, "sender": via, "schedule": "hourly"}


def secret_forms(user, password):
    """The password and the encodings in which it could leak from an AUTH exchange."""
    b64 = lambda b: base64.b64encode(b).decode()
    forms = {
        "password": password,
        "AUTH PLAIN \\0user\\0pass": b64(("\0%s\0%s" % (user, password)).encode()),
        "AUTH PLAIN user\\0user\\0pass": b64(("%s\0%s\0%s" % (user, user, password)).encode()),
        "AUTH LOGIN pass": b64(password.encode()),
    }
    return forms


def no_secret(what, texts, secrets):
    """Checks that none of the secrets' forms appears in any of the texts."""
    leaks = []
    for label, text in texts.items():
        text = text + "\n" + text.replace("\\/", "/")     # a JSON writer may escape '/' (base64)
        for sname, forms in secrets.items():
            for fname, form in forms.items():
                if form and form in text:
                    leaks.append("%s of %s in %s" % (fname, sname, label))
    rep.check(what, not leaks, "; ".join(leaks))


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def tries(r):
    return (r or {}).get("smtp", {}).get("tries", [])


# ---------------------------------------------------------------------------
# Round 1: everything that needs the lab's DNS and ordinary timeouts, in one probe round.

pass_file = wd.secret("submission.secret", SUB_PASS)
senders = [
    sender("pf_mx", PF["mx"]),                                    # Postfix mx, TLS verified with the lab CA
    sender("pf_421", PF["refuse421"]),
    sender("pf_notls_req", PF["notls"], tls="required"),
    sender("pf_selfsigned_req", PF["mx"], tls="required", ca_file=None),
    sender("pf_selfsigned_opp", PF["mx"], tls="opportunistic", ca_file=None),
    sender("pf_tls_req", PF["mx"], tls="required"),
    sender("pf_submission", PF["submission"], mode="relay", host="mx.lab.test", tls="required",
           username=SUB_USER, password_file=pass_file),
    sender("pf_noauth", PF["mx"], mode="relay", host="mx.lab.test", tls="opportunistic",
           username=SUB_USER, password_file=pass_file),
    sender("sink_ok", L["sinks"]["ok"]),
]
seeds = [
    seed("mx_ok", "seed1@seed-a.test", "pf_mx"),
    seed("banner421", "seed1@seed-a.test", "pf_421"),
    seed("fallback_dead", "seed1@fallback.test", "pf_mx"),
    seed("fallback_421", "seed1@fallback421.test", "pf_mx"),
    seed("rcpt_defer432", "defer432@seed-a.test", "pf_mx"),
    seed("rcpt_grey", "grey@seed-a.test", "pf_mx"),
    seed("rcpt_policy", "policy@seed-a.test", "pf_mx"),
    seed("rcpt_unknown", "nobody@seed-a.test", "pf_mx"),
    seed("notls_required", "seed1@seed-a.test", "pf_notls_req"),
    seed("selfsigned_required", "seed1@seed-a.test", "pf_selfsigned_req"),
    seed("selfsigned_opportunistic", "seed1@seed-a.test", "pf_selfsigned_opp"),
    seed("tls_verified", "seed1@seed-a.test", "pf_tls_req"),
    seed("auth_ok", "seed1@seed-a.test", "pf_submission"),
    seed("auth_not_offered", "seed1@seed-a.test", "pf_noauth"),
    seed("dns_nxdomain", "seed1@nxdomain.test", "pf_mx"),
    seed("dns_noaddr", "seed1@noaddr.test", "pf_mx"),
    seed("dns_nomx", "seed1@nomx.test", "sink_ok"),
    seed("sink_no_starttls", "seed1@sink.test", "sink_ok"),
]
conf = wd.config("main", senders, seeds)

# Meanwhile (its own config: the limits differ), the stage limits after the TCP connection must
# hold even when they are longer than the connect limit, as in the RFC 5321 defaults (connect
# 30 s, greeting 5 min): a server that sends no greeting, connect limit 1 s, greeting limit 3 s.
# (The same rule makes a wrong-password AUTH reply that Dovecot delays wait for the command limit.)
conf_slow = wd.config("slowbanner", [sender("nobanner", L["sinks"]["nobanner"], ca_file=None)],
                      [seed("banner_after_connect_limit", "seed1@sink.test", "nobanner")],
                      timeouts={"connect": "1s", "banner": "3s"})
slow = {}


def run_slow():
    t = time.monotonic()
    slow["rc"], slow["res"], _, slow["err"] = mclab.probe_json(conf_slow, timeout=60)
    slow["took"] = time.monotonic() - t


slow_thread = threading.Thread(target=run_slow)
slow_thread.start()

t0 = time.monotonic()
rc, res, out, err = mclab.probe_json(conf, extra_args=["--transcript"])
elapsed = time.monotonic() - t0
slow_thread.join(70)
rep.check("round 1: exit 1 (some probes are not accepted)", rc == 1, "rc=%d stderr=%s" % (rc, err[-500:]))
rep.check("round 1: one result per seed", set(res) == {s["name"] for s in seeds},
          "missing %s" % sorted({s["name"] for s in seeds} - set(res)))
rep.check("round 1: nothing on stderr", err.strip() == "", err[-800:])

# 1. Postfix accepts.
r = res.get("mx_ok")
S("postfix mx accepts seed1@seed-a.test", r, "accepted", "eod", 250, "2.0.0", text="~queued as")
s = (r or {}).get("smtp", {})
rep.check("accepted: mx = mx.lab.test, ip = 127.0.0.1, port = the mx port",
          s.get("mx") == "mx.lab.test" and s.get("ip") == "127.0.0.1" and s.get("port") == PF["mx"],
          "mx=%r ip=%r port=%r" % (s.get("mx"), s.get("ip"), s.get("port")))
rep.check("accepted: opportunistic TLS with the lab CA was used and verified",
          s.get("tls", {}).get("verified") is True and "starttls" in s.get("ms", {}), str(s.get("tls")))

# 2. 421 at connect.
S("postfix 421 at connect: deferred at banner", res.get("banner421"), "deferred", "banner", 421, "4.7.0",
  text="~Too many connections")

# 3. First MX refuses the connection, the second accepts.
r = res.get("fallback_dead")
S("fallback.test: first MX dead, accepted by the second", r, "accepted", "eod", 250, "2.0.0")
T = tries(r)
rep.check("fallback.test: two tries", len(T) == 2, str(T)[:600])
if len(T) == 2:
    rep.check("fallback.test: try 1 failed at connect on 127.0.0.2 (mx1.fallback.test)",
              T[0].get("outcome") == "failed" and T[0].get("stage") == "connect" and T[0].get("ip") == PF["dead_ip"]
              and T[0].get("mx") == "mx1.fallback.test" and T[0].get("error"), str(T[0])[:400])
    rep.check("fallback.test: try 2 accepted on 127.0.0.1 (mx2.fallback.test)",
              T[1].get("outcome") == "accepted" and T[1].get("stage") == "eod" and T[1].get("code") == 250
              and T[1].get("ip") == "127.0.0.1" and T[1].get("mx") == "mx2.fallback.test", str(T[1])[:400])
rep.check("fallback.test: top level names the accepting MX",
          (r or {}).get("smtp", {}).get("mx") == "mx2.fallback.test" and r["smtp"].get("ip") == "127.0.0.1",
          str((r or {}).get("smtp", {}).get("mx")))
mxh = (r or {}).get("smtp", {}).get("mx_hosts")
rep.check("fallback.test: mx_hosts in preference order",
          mxh == ["10 mx1.fallback.test", "20 mx2.fallback.test"], str(mxh))

# 4. First MX answers 421 at connect.
r = res.get("fallback_421")
S("fallback421.test: first MX 421, accepted by the second", r, "accepted", "eod", 250, "2.0.0")
T = tries(r)
rep.check("fallback421.test: two tries", len(T) == 2, str(T)[:600])
if len(T) == 2:
    rep.check("fallback421.test: try 1 deferred at banner with 421 4.7.0 on 127.0.0.3",
              T[0].get("outcome") == "deferred" and T[0].get("stage") == "banner" and T[0].get("code") == 421
              and T[0].get("enhanced") == "4.7.0" and T[0].get("ip") == PF["mx421_ip"]
              and "Too many connections" in (T[0].get("text") or ""), str(T[0])[:400])
    rep.check("fallback421.test: try 2 accepted on 127.0.0.1",
              T[1].get("outcome") == "accepted" and T[1].get("ip") == "127.0.0.1", str(T[1])[:400])
mxh = (r or {}).get("smtp", {}).get("mx_hosts")
rep.check("fallback421.test: mx_hosts in preference order",
          mxh == ["10 mx1.fallback421.test", "20 mx2.fallback421.test"], str(mxh))

# 5. Postfix's recipient access map and unknown users.
S("RCPT defer432: 451 4.3.2 with Postfix's text", res.get("rcpt_defer432"), "deferred", "rcpt", 451, "4.3.2",
  text="~System not accepting network messages")
S("RCPT grey: 450 4.2.0", res.get("rcpt_grey"), "deferred", "rcpt", 450, "4.2.0", text="~Greylisted")
S("RCPT policy: rejected 554 5.7.1", res.get("rcpt_policy"), "rejected", "rcpt", 554, "5.7.1",
  text="~Policy rejection")
S("RCPT unknown user: rejected 550 5.1.1", res.get("rcpt_unknown"), "rejected", "rcpt", 550, "5.1.1",
  text="~nobody@seed-a.test")
for name in ("rcpt_defer432", "rcpt_grey", "rcpt_policy", "rcpt_unknown"):
    r = res.get(name) or {}
    rep.check("%s: the RCPT reply text keeps Postfix's prefix" % name,
              "Recipient address rejected" in r.get("smtp", {}).get("text", ""), r.get("smtp", {}).get("text", ""))

# 6. STARTTLS required, not offered.
S("tls required, STARTTLS not offered: failed at starttls", res.get("notls_required"), "failed", "starttls",
  error="not offered")

# 7. Self-signed certificate: tls = "required" verifies by default and refuses it;
# "opportunistic" (what MTAs do to MXes) goes on encrypted and reports the certificate as unverified.
r = res.get("selfsigned_opportunistic")
S("selfsigned_opportunistic: accepted over TLS with a warning", r, "accepted", "eod", 250,
  warning="certificate not verified (self-signed certificate)")
tls = (r or {}).get("smtp", {}).get("tls") or {}
rep.check("selfsigned_opportunistic: TLS used, verified false",
          str(tls.get("version", "")).startswith("TLS") and tls.get("verified") is False, str(tls))
for name in ("selfsigned_required",):
    r = res.get(name)
    S("%s: failed at starttls" % name, r, "failed", "starttls")
    e = ((r or {}).get("smtp", {}).get("error") or "").lower()
    rep.check("%s: the error names the certificate problem" % name,
              "certificate" in e and ("self-signed" in e or "self signed" in e or "verif" in e), e)
    rep.check("%s: nothing was sent unencrypted after the failed handshake" % name,
              not any(" > MAIL FROM" in l for l in (r or {}).get("smtp", {}).get("transcript", [])))

# 8. TLS with the lab CA.
r = res.get("tls_verified")
S("tls required with ca_file: accepted", r, "accepted", "eod", 250, "2.0.0")
s = (r or {}).get("smtp", {})
tls = s.get("tls") or {}
rep.check("tls: version starts with TLS", str(tls.get("version", "")).startswith("TLS"), str(tls))
rep.check("tls: cipher recorded", bool(tls.get("cipher")), str(tls))
rep.check("tls: verified", tls.get("verified") is True, str(tls))
rep.check("tls: ms.starttls present", "starttls" in s.get("ms", {}), str(s.get("ms")))

# 9a. AUTH on the submission port, right password.
r = res.get("auth_ok")
S("relay AUTH with the right password: accepted", r, "accepted", "eod", 250, "2.0.0")
s = (r or {}).get("smtp", {})
rep.check("relay AUTH: ms.auth present", "auth" in s.get("ms", {}), str(s.get("ms")))
rep.check("relay AUTH: mode relay, mx = mx.lab.test, port = submission",
          s.get("mode") == "relay" and s.get("mx") == "mx.lab.test" and s.get("port") == PF["submission"],
          "mode=%r mx=%r port=%r" % (s.get("mode"), s.get("mx"), s.get("port")))
rep.check("relay AUTH: the transcript shows the AUTH exchange, redacted",
          any("> AUTH" in l for l in s.get("transcript", [])) and any("235" in l for l in s.get("transcript", [])),
          "\n".join(s.get("transcript", []))[:1500])

# 10. Credentials, but the server offers no AUTH.
S("relay with credentials, no AUTH offered: failed at auth", res.get("auth_not_offered"), "failed", "auth",
  error="offered no AUTH")
tr = (res.get("auth_not_offered") or {}).get("smtp", {}).get("transcript", [])
rep.check("no AUTH offered: stopped before any recipient or message was sent",
          tr and not any((" > RCPT" in l or "message body" in l) for l in tr), "\n".join(tr[-6:]))

# 11. DNS.
S("nxdomain.test: failed at dns", res.get("dns_nxdomain"), "failed", "dns", error="nxdomain.test")
S("noaddr.test: failed at dns, no address", res.get("dns_noaddr"), "failed", "dns", error="no address")
r = res.get("dns_nomx")
S("nomx.test: accepted via the implicit MX", r, "accepted", "eod", 250)
rep.check("nomx.test: mx = nomx.test", (r or {}).get("smtp", {}).get("mx") == "nomx.test",
          str((r or {}).get("smtp", {}).get("mx")))

# 12. Opportunistic TLS to a server without STARTTLS.
S("smtp-sink without STARTTLS, opportunistic: accepted with a warning", res.get("sink_no_starttls"),
  "accepted", "eod", 250, warning="STARTTLS")
rep.check("smtp-sink: no tls object when TLS was not used",
          "tls" not in (res.get("sink_no_starttls") or {}).get("smtp", {}))

# The greeting limit beyond the connect limit (run alongside round 1).
r = slow.get("res", {}).get("banner_after_connect_limit")
S("no greeting: failed at banner after the banner limit (3 s), not the connect limit (1 s)", r, "failed",
  "banner", error="timeout: no greeting within 3s")
ms = (r or {}).get("smtp", {}).get("ms", {})
waited = ms["total"] - ms.get("dns", 0) if "total" in ms else None
rep.check("no greeting: gave up %s ms after DNS, at the 3 s limit (not ~2 s: connect limit + 1 s)" % waited,
          waited is not None and 2950 <= waited <= 4500, str(ms))

state1 = os.path.join(wd.path, "state-main", "results.jsonl")
log1 = read(state1)
rep.check("round 1: detail log has one line per probe", len(log1.splitlines()) == len(seeds),
          "%d lines" % len(log1.splitlines()))
rep.check("round 1: the detail log carries no transcript", '"transcript"' not in log1)

# ---------------------------------------------------------------------------
# Round 2 (9b): wrong password, from 127.0.0.2 (Dovecot slows later logins from an address that
# failed; other tests use 127.0.0.2 for that too, so the command timeout is generous).

wrong_file = wd.secret("wrong.secret", WRONG_PASS)
conf2 = wd.config("wrongpw", [
    sender("pf_submission_wrong", PF["submission"], mode="relay", host="mx.lab.test", tls="required",
           username=SUB_USER, password_file=wrong_file, source_ip=PF["dead_ip"])],
    [seed("auth_wrong", "seed1@seed-a.test", "pf_submission_wrong")], timeouts={"command": "40s"})
rc2, res2, out2, err2 = mclab.probe_json(conf2, extra_args=["--transcript"])
r = res2.get("auth_wrong")
rep.check("wrong password: exit 1", rc2 == 1, "rc=%d stderr=%s" % (rc2, err2[-500:]))
# rejected is what a 535 means; deferred is tolerated for the outcome, stage and codes must match
got = (r or {}).get("smtp", {}).get("outcome")
S("wrong password: rejected (or deferred) at auth, 535 5.7.8", r, got if got in ("rejected", "deferred") else "rejected",
  "auth", 535, "5.7.8", text="~authentication failed")
rep.check("wrong password: sent from 127.0.0.2", (r or {}).get("smtp", {}).get("local_ip") == PF["dead_ip"],
          str((r or {}).get("smtp", {}).get("local_ip")))
rep.check("wrong password: no MAIL FROM after the failed AUTH",
          not any("> MAIL FROM" in l for l in (r or {}).get("smtp", {}).get("transcript", [])))

# The same, human output with the transcript, -vv: no secret there either (right password, from
# 127.0.0.1, so no Dovecot penalty).
rc3, out3, err3 = mclab.run(["-vv", "-c", conf, "probe", "--transcript", "auth_ok", "auth_not_offered"])
rep.check("human output with --transcript: auth_ok accepted line present",
          any(l.split()[:2] == ["auth_ok", "accepted"] for l in out3.splitlines()), out3[-1500:])

log2 = read(os.path.join(wd.path, "state-wrongpw", "results.jsonl"))
log1 = read(state1)
secrets = {"the right password": secret_forms(SUB_USER, SUB_PASS),
           "the wrong password": secret_forms(SUB_USER, WRONG_PASS)}
no_secret("no password or AUTH encoding in any output, transcript or detail log", {
    "round 1 stdout (--json --transcript)": out, "round 1 stderr": err,
    "round 2 stdout (--json --transcript)": out2, "round 2 stderr": err2,
    "human --transcript -vv stdout": out3, "human --transcript -vv stderr": err3,
    "state-main/results.jsonl": log1, "state-wrongpw/results.jsonl": log2}, secrets)
rep.check("the transcripts did include the AUTH exchange (so the check above saw it)",
          "AUTH" in out and "AUTH" in out2 and "AUTH" in out3)

# ---------------------------------------------------------------------------
# AUTH LOGIN: curl prefers PLAIN, which is all the lab's Postfix gets to see. A scripted server
# that offers only LOGIN (as some real ones do) shows the username and password continuation
# lines are redacted too; it checks that it did receive the password, so the redaction is real.

class LoginOnlyServer:
    """Offers STARTTLS (the lab's certificate), then only AUTH LOGIN; accepts the message."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(CA, os.path.join(L["dir"], "tls", "lab.key"))
        self.got_user = self.got_pass = None
        self.errors = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            c, _ = self.sock.accept()
        except OSError as e:
            self.errors.append("accept: %s" % e)
            return
        c.settimeout(10)
        f = c.makefile("rb")
        tls = False

        def say(line):
            c.sendall(line.encode() + b"\r\n")
        try:
            say("220 login-only.lab.test ESMTP")
            state = None
            while True:
                line = f.readline()
                if not line:
                    break
                cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                up = cmd.upper()
                if state == "user":
                    self.got_user = base64.b64decode(cmd).decode("utf-8", "replace")
                    say("334 UGFzc3dvcmQ6")
                    state = "pass"
                elif state == "pass":
                    self.got_pass = base64.b64decode(cmd).decode("utf-8", "replace")
                    state = None
                    say("235 2.7.0 Authentication successful")
                elif up.startswith("EHLO"):
                    say("250-login-only.lab.test")
                    say("250-AUTH LOGIN" if tls else "250-STARTTLS")
                    say("250 ENHANCEDSTATUSCODES")
                elif up == "STARTTLS" and not tls:
                    say("220 2.0.0 Ready to start TLS")
                    c = self.ctx.wrap_socket(c, server_side=True)
                    f = c.makefile("rb")
                    tls = True
                elif up == "AUTH LOGIN" and tls:
                    say("334 VXNlcm5hbWU6")
                    state = "user"
                elif up.startswith("AUTH LOGIN ") and tls:
                    self.got_user = base64.b64decode(cmd.split()[2]).decode("utf-8", "replace")
                    say("334 UGFzc3dvcmQ6")
                    state = "pass"
                elif up.startswith("MAIL") or up.startswith("RCPT"):
                    say("250 2.1.0 Ok")
                elif up == "DATA":
                    say("354 End data with <CR><LF>.<CR><LF>")
                    while True:
                        body = f.readline()
                        if not body or body in (b".\r\n", b".\n"):
                            break
                    say("250 2.0.0 Ok: queued as LOGINTEST")
                elif up == "QUIT":
                    say("221 2.0.0 Bye")
                    break
                else:
                    self.errors.append("unexpected command %r" % cmd)
                    say("502 5.5.2 Error: command not recognized")
        except (OSError, ValueError) as e:
            if not self.got_pass:
                self.errors.append("session: %s" % e)
        finally:
            c.close()

    def close(self):
        self.sock.close()
        self.thread.join(5)


LOGIN_PASS = "Login-" + SUB_PASS
login_file = wd.secret("login.secret", LOGIN_PASS)
srv = LoginOnlyServer()
try:
    conf_login = wd.config("login", [
        sender("login_only", srv.port, mode="relay", host="127.0.0.1", tls="required",
               username=SUB_USER, password_file=login_file)],
        [seed("auth_login", "seed1@seed-a.test", "login_only")])
    rcl, resl, outl, errl = mclab.probe_json(conf_login, extra_args=["--transcript"], timeout=60)
finally:
    srv.close()
r = resl.get("auth_login")
if r is None:
    print("# rc=%d stdout=%r stderr=%r" % (rcl, outl[-800:], errl[-800:]))
S("AUTH LOGIN (scripted server): accepted", r, "accepted", "eod", 250, "2.0.0")
rep.check("AUTH LOGIN: the server got the username and the password from the file",
          srv.got_user == SUB_USER and srv.got_pass == LOGIN_PASS and not srv.errors,
          "user=%r password ok=%s errors=%s" % (srv.got_user, srv.got_pass == LOGIN_PASS, srv.errors))
tr = (r or {}).get("smtp", {}).get("transcript", [])
rep.check("AUTH LOGIN: transcript shows AUTH LOGIN and both continuations redacted",
          any(l.endswith("> AUTH LOGIN") or "> AUTH LOGIN <redacted>" in l for l in tr)
          and sum(l.endswith("> <redacted>") for l in tr) >= 1, "\n".join(tr)[:1500])
login_secrets = {"the LOGIN password": secret_forms(SUB_USER, LOGIN_PASS)}
login_secrets["the LOGIN password"]["AUTH LOGIN user"] = base64.b64encode(SUB_USER.encode()).decode()
no_secret("AUTH LOGIN: no password (nor the base64 username) in stdout, stderr or the detail log", {
    "stdout (--json --transcript)": outl, "stderr": errl,
    "state-login/results.jsonl": read(os.path.join(wd.path, "state-login", "results.jsonl"))}, login_secrets)

# ---------------------------------------------------------------------------
# Rounds 3 and 4: a DNS server that refuses (closed port), and one that never answers (a UDP
# socket of ours that reads nothing): failed at dns, within the DNS timeout plus slack.

DNS_TIMEOUT = 2.0
for label, mk in (("refused", None), ("silent", "udp")):
    holder = None
    if mk:
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        holder.bind(("127.0.0.1", 0))
        dns = "127.0.0.1:%d" % holder.getsockname()[1]
    else:
        dns = "127.0.0.1:%d" % L["refused_port"]
    try:
        c = wd.config("dns_" + label, [sender("pf_mx", PF["mx"])], [seed("dns_" + label, "seed1@seed-a.test", "pf_mx")],
                      dns_servers=[dns], dns_timeout="%gs" % DNS_TIMEOUT)
        t0 = time.monotonic()
        rcd, resd, outd, errd = mclab.probe_json(c, timeout=60)
        took = time.monotonic() - t0
    finally:
        if holder:
            holder.close()
    S("DNS server %s: failed at dns" % label, resd.get("dns_" + label), "failed", "dns")
    rep.check("DNS server %s: finished in %.1f s (timeout %g s + 3 s)" % (label, took, DNS_TIMEOUT),
              took <= DNS_TIMEOUT + 3.0)
    rep.check("DNS server %s: exit 1" % label, rcd == 1, "rc=%d stderr=%s" % (rcd, errd[-300:]))

print("# round 1 took %.1f s" % elapsed)
wd.cleanup()
rep.finish()
