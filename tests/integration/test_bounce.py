#!/usr/bin/env python3
"""Bounces through a smarthost, through the real CLI: the lab's Postfix takes the probe on its
submission port (AUTH), relays it to a smtp-sink that refuses the recipient, and sends the
delivery status notification (RFC 3464) to the envelope sender's mailbox in Dovecot. mailcanary
watches that mailbox (bounce_imap) and records what the notice says: "failed" (550 5.1.1 at RCPT)
ends the readback as "bounced"; "delayed" (451 4.3.2, deferred) is recorded while waiting. A
bounce in the seed's own mailbox never counts as the probe being delivered; messages in the
bounce mailbox that only quote the probe's id (a forged token, a reply) are not touched, not
even marked \\Seen; matched bounces are deleted."""

import json
import os
import random
import string
import subprocess
import time

import mclab

L = mclab.lab()
rep = mclab.Report("bounce")
wd = mclab.Workdir("bounce")
rep.guard(wd.cleanup)
PF = L["postfix"]
B = PF["bounce"]
IMAP = L["imap"]
CA = L["ca_file"]
BOX = B["mailbox"]
BOX_PW = L["users"][BOX]["password"]
SUB_USER = "canary@lab.test"


def rnd(n=10):
    return "".join(random.choice(string.ascii_lowercase) for _ in range(n))


def bounce_imap(cleanup=None):
    g = {"url": "imaps://127.0.0.1:%d/" % IMAP["imaps_port"], "username": BOX,
         "password_file": L["users"][BOX]["secret_file"], "ca_file": CA}
    if cleanup:
        g["cleanup"] = cleanup
    return g


def sender(name="relay", bimap=None):
    return {"name": name, "mode": "relay", "host": "mx.lab.test", "port": PF["submission"],
            "helo": "probe.lab.test", "mail_from": BOX, "tls": "required", "ca_file": CA,
            "username": SUB_USER, "password_file": L["users"][SUB_USER]["secret_file"],
            "bounce_imap": bimap or bounce_imap()}


def seed(name, address, imap=None):
    s = {"name": name, "address": address, "sender": "relay", "schedule": "weekly"}
    if imap:
        s["imap"] = imap
    return s


def config(name, seeds, timeout="30s", senders=None):
    return wd.config(name, senders or [sender()], seeds,
                     extra='readback: { timeout = %s; };\n' % mclab.q(timeout))


def parse(out):
    return [json.loads(x) for x in out.splitlines() if x.strip()]


probe = mclab.probe_lines
final_of = mclab.final_of


def box():
    return mclab.imap_login(BOX, BOX_PW)


def box_search_body(text):
    m = box()
    try:
        m.select("INBOX", readonly=True)
        typ, data = m.uid("SEARCH", None, "BODY", text)
        return data[0].split()
    finally:
        m.logout()


# ---- hard bounce: 550 5.1.1 at RCPT behind the smarthost -> "failed" DSN -> bounced ----
hard = "hard-%s@%s" % (rnd(), B["hard_domain"])
conf = config("hard", [seed("hard", hard)])
rc, lines, err = probe(conf, "hard")
f = final_of(lines, "hard")
rb = (f or {}).get("readback", {})
bs = rb.get("bounces", [])
rep.check("hard: the smarthost accepted the probe (smtp accepted at eod, mode relay)",
          f is not None and f["smtp"]["outcome"] == "accepted" and f["smtp"].get("mode") == "relay",
          json.dumps(f)[:500] + err[-300:])
rep.check("hard: readback status bounced, exit status 1", rb.get("status") == "bounced" and rc == 1,
          "rc %d %s" % (rc, json.dumps(rb)[:800]))
b = bs[-1] if bs else {}
rep.check("hard: the bounce says failed, 5.1.1, code 550, at rcpt, remote 127.0.0.1",
          b.get("action") == "failed" and b.get("status") == "5.1.1" and b.get("code") == 550 and
          b.get("enhanced") == "5.1.1" and b.get("stage") == "rcpt" and b.get("remote_mta") == "127.0.0.1",
          json.dumps(b))
rep.check("hard: the final line's diagnosis is the remote refusal the bounce reports (rule bounced.*)",
          f is not None and f.get("diagnosis", {}).get("rule", "").startswith("bounced.") and
          f["diagnosis"].get("next_step"), json.dumps((f or {}).get("diagnosis")))
rep.check("hard: diagnostic_code carries the remote server's text",
          "No such user here" in b.get("diagnostic_code", ""), json.dumps(b))
rep.check("hard: reporting MTA is the lab's Postfix, an RFC 3464 report, arrived within seconds",
          b.get("reporting_mta") == "mx.lab.test" and b.get("rfc3464") is True and 0 <= b.get("after_s", -1) <= 20,
          json.dumps(b))
rep.check("hard: the matched bounce was deleted from the sender's mailbox",
          b.get("cleanup") == "deleted" and f is not None and box_search_body("v1.%s." % f["probe_id"]) == [],
          json.dumps(b))
rc2, out2, err2 = mclab.run(["-c", conf, "probe", "hard"], timeout=120)
rep.check("hard: the human output names the bounce under the readback line",
          rc2 == 1 and "bounced" in out2 and "failed 5.1.1 at rcpt by 127.0.0.1" in out2, out2[-800:] + err2[-300:])

# ---- the seed's mailbox is the bounce mailbox: the bounce is no delivery ----
hard2 = "hard-%s@%s" % (rnd(), B["hard_domain"])
conf = config("same", [seed("same", hard2, imap=bounce_imap())])
rc, lines, err = probe(conf, "same")
f = final_of(lines, "same")
rb = (f or {}).get("readback", {})
rep.check("same mailbox: a bounce quoting our token is never counted as delivery (bounced, not found)",
          rb.get("status") == "bounced" and "folder" not in rb and rc == 1, json.dumps(rb)[:800])

# ---- soft: 451 4.3.2 behind the smarthost -> deferred -> "delayed" DSN; foreign mail untouched ----
soft = "soft-%s@%s" % (rnd(), B["soft_domain"])
conf = config("soft", [seed("soft", soft)], timeout="25s")
p = subprocess.Popen([mclab.BIN, "-c", conf, "probe", "--json", "soft"], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
first = p.stdout.readline()
pending = json.loads(first) if first.strip() else {}
pid = pending.get("probe_id", "")
rep.check("soft: a pending line first (accepted by the smarthost)",
          pending.get("readback", {}).get("status") == "pending", first[:300])
# Foreign messages that mention the pending probe's id: a forged DSN (token with a wrong MAC)
# and a reply quoting it. Neither may be touched, not even \Seen.
marker = "mc-bounce-foreign-%d" % os.getpid()
forged_token = "v1.%s.%d.%s" % (pid, int(time.time() * 1000), "00" * 32)
forged_dsn = ("X-Foreign: %s-dsn\r\nFrom: MAILER-DAEMON@mx.lab.test\r\nTo: %s\r\n"
              "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
              "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n"
              "--b1\r\nContent-Type: text/plain\r\n\r\nforged\r\n"
              "--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; evil.test\r\n\r\n"
              "Final-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: 5.7.1\r\n"
              "Diagnostic-Code: smtp; 550 5.7.1 forged\r\n\r\n"
              "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nX-Mailcanary-Token: %s\r\nSubject: x\r\n\r\n"
              "--b1--\r\n") % (marker, BOX, soft, forged_token)
reply = ("X-Foreign: %s-reply\r\nFrom: someone@example.test\r\nTo: %s\r\nSubject: Re: your probe\r\n\r\n"
         "> X-Mailcanary-Token: %s\r\nthanks\r\n") % (marker, BOX, forged_token)
m = box()
for msg in (forged_dsn, reply):
    m.append("INBOX", None, None, msg.encode())
m.logout()


def snapshot():
    return mclab.snapshot(BOX, BOX_PW, marker)


before = snapshot()
try:
    out, err = p.communicate(timeout=120)
except subprocess.TimeoutExpired:
    p.kill()
    out, err = p.communicate()
lines = [pending] + parse(out)
f = final_of(lines, "soft")
rb = (f or {}).get("readback", {})
bs = rb.get("bounces", [])
b = bs[0] if bs else {}
rep.check("soft: one bounce recorded, action delayed, 4.3.2 at rcpt, remote 127.0.0.1",
          len(bs) == 1 and b.get("action") == "delayed" and b.get("status") == "4.3.2" and
          b.get("stage") == "rcpt" and b.get("remote_mta") == "127.0.0.1" and
          "System not accepting network messages" in b.get("diagnostic_code", ""), json.dumps(rb)[:900])
rep.check("soft: the readback ran to its timeout (no seed mailbox: skipped) and the exit status is 1",
          rb.get("status") == "skipped" and p.returncode == 1, "rc %s %s" % (p.returncode, json.dumps(rb)[:400]))
after = snapshot()
rep.check("soft: the forged DSN and the quoting reply are still there, byte-identical, flags unchanged (no \\Seen)",
          len(before) == 2 and before == after and all("\\Seen" not in v[0] for v in after.values()),
          "before %r after %r" % (list(before.values())[:1], list(after.values())[:1]))
rep.check("soft: no secret in the output", L["users"][BOX]["password"] not in out + err and
          L["users"][SUB_USER]["password"] not in out + err)

# ---- a wrong password for the bounce mailbox: a clear error, the probe result kept ----
bad = bounce_imap()
bad["password_file"] = wd.secret("wrong.secret", "not-the-password")
hard3 = "hard-%s@%s" % (rnd(), B["hard_domain"])
conf = config("badpw", [seed("badpw", hard3)], senders=[sender(bimap=bad)])
rc, lines, err = probe(conf, "badpw")
f = final_of(lines, "badpw")
rb = (f or {}).get("readback", {})
rep.check("bad password: readback error naming the bounce mailbox's login, smtp result kept",
          rb.get("status") == "error" and "bounce mailbox: login" in rb.get("error", "") and
          f["smtp"]["outcome"] == "accepted" and rc == 1, json.dumps(rb)[:500])

wd.cleanup()
rep.finish()
