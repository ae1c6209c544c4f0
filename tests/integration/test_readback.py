#!/usr/bin/env python3
"""Readback over IMAP through the real CLI: real Postfix -> Dovecot LMTP delivery in the lab.
An accepted probe is found in INBOX with a plausible delivery time and deleted; a probe filed to
Junk by Sieve is found there (a placement finding unless expect_folder says Junk); IMAPS with the
lab's self-signed certificate fails without ca_file and works with it; nothing arriving gives
"missing" after the timeout; and foreign mail in the seed box (plain, a forged token, a real
token quoted in a body, one already \\Deleted) is never touched over several rounds."""

import json
import os
import time

import mclab

L = mclab.lab()
rep = mclab.Report("readback")
wd = mclab.Workdir("readback")
rep.guard(wd.cleanup)
PF = L["postfix"]
IMAP = L["imap"]
CA = L["ca_file"]
USER = "seed1@seed-a.test"
PW_FILE = L["users"][USER]["secret_file"]
PASSWORD = L["users"][USER]["password"]


def sender():
    return {"name": "d", "mode": "mx", "port": PF["mx"], "helo": "probe.lab.test",
            "mail_from": "canary@lab.test", "tls": "none"}


def imap_group(scheme="imaps", ca=True):
    port = IMAP["imaps_port"] if scheme == "imaps" else IMAP["port"]
    g = {"url": "%s://127.0.0.1:%d/" % (scheme, port), "username": USER, "password_file": PW_FILE}
    if ca:
        g["ca_file"] = CA
    return g


def seed(name, address=USER, imap=None, headers=None, expect=None):
    s = {"name": name, "address": address, "sender": "d", "schedule": "weekly", "imap": imap or imap_group()}
    if headers:
        s["headers"] = headers
    if expect:
        s["expect_folder"] = expect
    return s


def config(name, seeds, timeout="20s"):
    return wd.config(name, [sender()], seeds, extra='readback: { timeout = %s; };\n' % mclab.q(timeout))


probe = mclab.probe_lines
final_of = mclab.final_of


def imap_conn():
    return mclab.imap_login(USER, PASSWORD)


def mailbox_has_probe(probe_id):
    m = imap_conn()
    try:
        hits = []
        for folder in ("INBOX", "Junk"):
            m.select(folder)
            typ, data = m.uid("SEARCH", None, "HEADER", "X-Mailcanary-Token", "v1.%s." % probe_id)
            hits += data[0].split()
        return hits
    finally:
        m.logout()


# ---- found in INBOX, deleted ----
conf = config("inbox", [seed("in")])
t0 = time.time()
rc, lines, err = probe(conf, "in")
f = final_of(lines, "in")
rb = (f or {}).get("readback", {})
rep.check("inbox: exit 0 (accepted and found where expected)", rc == 0, "rc %d err %s" % (rc, err[-400:]))
rep.check("inbox: a pending line, then the final one", len(lines) == 2 and lines[0]["readback"]["status"] == "pending"
          and lines[0]["final"] is False, json.dumps(lines)[:600])
rep.check("inbox: found in INBOX, placement ok", rb.get("status") == "found" and rb.get("folder") == "INBOX"
          and rb.get("placement") == "ok" and rb.get("junk") is False, json.dumps(rb))
rep.check("inbox: plausible delivery_s (0-10 s) and found_after_s", 0 <= rb.get("delivery_s", -1) <= 10 and
          0 < rb.get("found_after_s", 0) <= 20, json.dumps(rb))
rep.check("inbox: the probe was deleted (UIDPLUS expunge of its UID)", rb.get("cleanup") == "deleted" and
          f and mailbox_has_probe(f["probe_id"]) == [], json.dumps(rb))
rep.check("inbox: the smtp part is kept in the final result", f and f["smtp"]["outcome"] == "accepted")

# ---- cleanup = "keep" and "move:Trash" ----
def in_folder(probe_id, folder):
    m = imap_conn()
    try:
        m.select(folder)
        typ, data = m.uid("SEARCH", None, "HEADER", "X-Mailcanary-Token", "v1.%s." % probe_id)
        return data[0].split()
    finally:
        m.logout()


keep = imap_group()
keep["cleanup"] = "keep"
move = imap_group()
move["cleanup"] = "move:Trash"
conf = config("cleanup", [seed("keep", imap=keep), seed("move", imap=move)])
rc, lines, err = probe(conf, "keep", "move")
fk, fm = final_of(lines, "keep"), final_of(lines, "move")
rep.check("cleanup keep: found and left in INBOX", fk and fk["readback"]["status"] == "found" and
          fk["readback"].get("cleanup", "").startswith("kept") and len(in_folder(fk["probe_id"], "INBOX")) == 1,
          json.dumps(fk)[:500])
rep.check("cleanup move:Trash: found, moved out of INBOX into Trash", fm and fm["readback"].get("cleanup") == "moved"
          and in_folder(fm["probe_id"], "INBOX") == [] and len(in_folder(fm["probe_id"], "Trash")) == 1,
          json.dumps(fm)[:500])
if fk:  # the kept probe must not be deleted by later rounds either; remove it here
    mm = imap_conn()
    mm.select("INBOX")
    for uid in in_folder(fk["probe_id"], "INBOX"):
        mm.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
        mm.uid("EXPUNGE", uid)
    mm.logout()

# ---- header forensics: hops, and only trusted Authentication-Results ----
forged = "Authentication-Results: attacker.example; spf=pass smtp.mailfrom=canary@lab.test; dkim=pass"
trusted = imap_group()
trusted["authserv_id"] = "mx.lab.test"
conf = config("forensics", [seed("any", headers=[forged]), seed("trust", headers=[forged], imap=trusted)])
rc, lines, err = probe(conf, "any", "trust")
fa, ft = final_of(lines, "any"), final_of(lines, "trust")
hops = (fa or {}).get("readback", {}).get("hops", [])
rep.check("forensics: Received hops oldest first (our smtpd, then LMTP into the mailbox)",
          len(hops) == 2 and hops[0]["by"] == "mx.lab.test" and hops[0].get("ip") == "127.0.0.1" and
          hops[1].get("with") == "LMTP" and all(h["at"] for h in hops) and 0 <= hops[1]["delay_s"] <= 5,
          json.dumps(hops))
rep.check("forensics: without authserv_id the topmost A-R counts (here the sender's own)",
          fa and fa["readback"]["auth"]["spf"] == "pass" and fa["readback"]["auth"]["fields"] == 1,
          json.dumps((fa or {}).get("readback", {}).get("auth")))
rep.check("forensics: with authserv_id = mx.lab.test a forged A-R from the sender is ignored",
          ft and ft["readback"]["auth"]["spf"] == "none" and ft["readback"]["auth"]["dkim"] == "none" and
          ft["readback"]["auth"]["trusted_fields"] == 0, json.dumps((ft or {}).get("readback", {}).get("auth")))
rep.check("forensics: the split before/after acceptance", fa and fa["readback"].get("before_acceptance_s", -1) >= 0
          and 0 <= fa["readback"].get("received_delay_s", -1) <= 10, json.dumps((fa or {}).get("readback"))[:400])

# ---- Junk placement ----
conf = config("junk", [seed("j", headers=["X-Lab-Junk: yes"]), seed("jok", headers=["X-Lab-Junk: yes"], expect="Junk")])
rc, lines, err = probe(conf, "j", "jok")
fj, fok = final_of(lines, "j"), final_of(lines, "jok")
rep.check("junk: found in Junk, a placement finding", fj and fj["readback"].get("folder") == "Junk" and
          fj["readback"].get("junk") is True and fj["readback"].get("placement") == "unexpected",
          json.dumps(fj)[:600])
rep.check("junk: expect_folder = Junk makes it ok", fok and fok["readback"].get("placement") == "ok",
          json.dumps(fok)[:600])
rep.check("junk: exit 1 for the misplaced probe", rc == 1, "rc %d" % rc)

# ---- TLS: the lab's self-signed certificate ----
conf = config("noca", [seed("noca", imap=imap_group(ca=False))], timeout="3s")
rc, lines, err = probe(conf, "noca")
f = final_of(lines, "noca")
rep.check("imaps without ca_file: readback error naming the certificate", f and f["readback"]["status"] == "error"
          and "certificate" in f["readback"].get("error", "").lower(), json.dumps(f)[:600])
rep.check("imaps without ca_file: exit 1, the probe itself accepted", rc == 1 and f and
          f["smtp"]["outcome"] == "accepted")
conf = config("starttls", [seed("st", imap=imap_group("imap"))])
rc, lines, err = probe(conf, "st")
f = final_of(lines, "st")
rep.check("imap:// with STARTTLS and ca_file: found", rc == 0 and f and f["readback"]["status"] == "found",
          "rc %d %s" % (rc, json.dumps(f)[:500]))

# ---- a wrong IMAP password: error at once, the probe result kept ----
# From 127.0.0.2: Dovecot delays further logins from an address for a while after a failure,
# which must not slow the other tests (they connect from 127.0.0.1).
bad_pw = wd.secret("wrong.secret", "Wrong-" + PASSWORD[::-1])
wrong = imap_group()
wrong["password_file"] = bad_pw
wrong["source_ip"] = "127.0.0.2"
conf = config("wrongpw", [seed("wrong", imap=wrong)])
t0 = time.time()
rc, lines, err = probe(conf, "wrong")
f = final_of(lines, "wrong")
rep.check("wrong IMAP password: readback error naming the refused login, at once (1 poll)",
          f and f["readback"]["status"] == "error" and "refused the user name or password" in
          f["readback"].get("error", "") and f["readback"]["polls"] == 1, json.dumps(f)[:600])
rep.check("wrong IMAP password: the probe's SMTP result kept (accepted), exit 1",
          rc == 1 and f and f["smtp"]["outcome"] == "accepted", "rc %d" % rc)
rep.check("wrong IMAP password: neither password in the output", PASSWORD not in json.dumps(lines) and
          ("Wrong-" + PASSWORD[::-1]) not in json.dumps(lines) + err)
if f:  # the probe itself stays in the mailbox: remove it
    mm = imap_conn()
    mm.select("INBOX")
    typ, data = mm.uid("SEARCH", None, "HEADER", "X-Mailcanary-Token", "v1.%s." % f["probe_id"])
    for uid in data[0].split():
        mm.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
        mm.uid("EXPUNGE", uid)
    mm.logout()

# ---- missing: accepted by an MTA that never delivers ----
sink = {"name": "d", "mode": "mx", "port": L["sinks"]["ok"], "helo": "probe.lab.test",
        "mail_from": "canary@lab.test", "tls": "none"}
conf = wd.config("missing", [sink], [seed("gone", address="seed1@sink.test")], extra='readback: { timeout = "4s"; };\n')
t0 = time.time()
rc, lines, err = probe(conf, "gone")
f = final_of(lines, "gone")
rep.check("missing: accepted by smtp-sink (never delivered), readback missing after the timeout",
          f and f["smtp"]["outcome"] == "accepted" and f["readback"]["status"] == "missing" and
          f["readback"]["polls"] >= 2, json.dumps(f)[:600])
rep.check("missing: the final line's diagnosis says missing (rule missing*)",
          f and f.get("diagnosis", {}).get("rule", "").startswith("missing"), json.dumps((f or {}).get("diagnosis")))
rep.check("missing: exit 1, within the timeout plus a poll", rc == 1 and time.time() - t0 < 15,
          "rc %d after %.1f s" % (rc, time.time() - t0))

# ---- --no-readback ----
conf = config("norb", [seed("norb")])
rc, lines, err = probe(conf, "--no-readback", "norb")
rep.check("--no-readback: one final line, readback skipped", len(lines) == 1 and lines[0]["final"] is True and
          lines[0]["readback"]["status"] == "skipped", json.dumps(lines)[:400])

# ---- foreign mail is never touched: 1,000 foreign messages, 20 probe rounds ----
# A real token first: a probe kept in the mailbox (cleanup = "keep") lends its header.
keep_conf = config("lend", [seed("lend", imap=dict(imap_group(), cleanup="keep"))])
rc, lines, err = probe(keep_conf, "lend")
lent = final_of(lines, "lend")
m = imap_conn()
m.select("INBOX")
typ, data = m.uid("SEARCH", None, "HEADER", "X-Mailcanary-Token", "v1.%s." % (lent or {}).get("probe_id", "-"))
lent_uids = data[0].split()
real_header = b""
if lent_uids:
    typ, d = m.uid("FETCH", lent_uids[0], "(BODY.PEEK[HEADER])")
    real_header = [x for x in d if isinstance(x, tuple)][0][1]
    m.uid("STORE", lent_uids[0], "+FLAGS.SILENT", "(\\Deleted)")
    m.uid("EXPUNGE", lent_uids[0])
real_token = ""
for hl in real_header.decode(errors="replace").split("\r\n"):
    if hl.lower().startswith("x-mailcanary-token:"):
        real_token = hl.split(":", 1)[1].strip()
rep.check("foreign: a real token to quote (from a kept probe)", real_token.startswith("v1."), repr(real_header[:300]))
forged = "v1.%s.1795856997845.%s" % ("ab" * 16, "cd" * 32)
foreign = []
for i in range(990):
    foreign.append(("Subject: foreign %d\r\nX-Note: plain\r\n\r\nbody %d\r\n" % (i, i)).encode())
# a forged token with the format of ours, a real token quoted in a body, a copy of a real probe
# (its probe is no longer wanted: not ours to touch any more)
foreign.append(("Subject: forged\r\nX-Mailcanary-Token: %s\r\n\r\nforged\r\n" % forged).encode())
foreign.append(("Subject: quoting\r\n\r\nSomeone quoted X-Mailcanary-Token: %s here\r\n" % real_token).encode())
foreign.append(real_header + b"copy of an old probe\r\n")
marker = "mc-foreign-%d" % os.getpid()
for i, msg in enumerate(foreign):
    m.append("INBOX", None, None, ("X-Foreign: %s-%d\r\n" % (marker, i)).encode() + msg)
n_deleted = 7  # already \Deleted by their owner: a plain EXPUNGE would take them
for i in range(n_deleted):
    m.append("INBOX", "(\\Deleted)", None,
             ("X-Foreign: %s-deleted-%d\r\nSubject: already deleted\r\n\r\nx\r\n" % (marker, i)).encode())
m.logout()


def snapshot():
    return mclab.snapshot(USER, PASSWORD, marker)


before = snapshot()
rep.check("foreign: %d messages in place before" % (len(foreign) + n_deleted), len(before) == len(foreign) + n_deleted
          and len(before) == 1000, "%d" % len(before))
conf = config("foreign", [seed("f1"), seed("f2")])
ok_rounds = 0
for _ in range(20):
    rc, lines, err = probe(conf)
    ok_rounds += rc == 0 and all(x["readback"]["cleanup"] == "deleted" for x in lines if x.get("final"))
after = snapshot()
rep.check("foreign: 20 probe rounds all found and cleaned up", ok_rounds == 20, "%d ok rounds" % ok_rounds)
rep.check("foreign: every foreign message still present, byte-identical, flags unchanged", before == after,
          "before %d after %d, changed %s" % (len(before), len(after),
                                               [k for k in before if before.get(k) != after.get(k)][:5]))
# Clear them out (the test's own cleanup), so later tests see an ordinary mailbox.
m = imap_conn()
m.select("INBOX")
for uid in before:
    m.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
m.uid("EXPUNGE", b",".join(before.keys()).decode())
m.logout()

# ---- greylisted by postgrey, retried, then found ----
import random
import string
GREY = L["postgrey"]
gbox = GREY["mailbox"]
gaddr = "grey-%s@%s" % ("".join(random.choice(string.ascii_lowercase) for _ in range(10)), GREY["domain"])
gimap = {"url": "imaps://127.0.0.1:%d/" % IMAP["imaps_port"], "username": gbox,
         "password_file": L["users"][gbox]["secret_file"], "ca_file": CA}
conf = config("grey", [seed("g", address=gaddr, imap=gimap)])
rc, lines, err = probe(conf, "--wait", "30s", "g")
f = final_of(lines, "g")
rep.check("greylisted: deferred first (450 4.2.0), retried, accepted and then found",
          rc == 0 and f and [a["outcome"] for a in f["smtp"]["attempts"]] == ["deferred", "accepted"] and
          f["readback"]["status"] == "found" and f["readback"]["folder"] == "INBOX",
          "rc %d %s %s" % (rc, json.dumps(f)[:700], err[-300:]))
rep.check("greylisted: one line per decision (deferred, pending, final)", [
    (x["smtp"]["outcome"], x["readback"]["status"]) for x in lines] ==
    [("deferred", "skipped"), ("accepted", "pending"), ("accepted", "found")],
    json.dumps([(x["smtp"]["outcome"], x["readback"]["status"]) for x in lines]))

# ---- the daemon reads back too ----
import signal
import subprocess
conf = config("daemon", [seed("d1")])
log = open(os.path.join(wd.path, "daemon.log"), "wb")
p = subprocess.Popen([mclab.BIN, "-c", conf, "run"], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
detail = os.path.join(wd.path, "state-daemon", "results.jsonl")


def daemon_finals():
    if not os.path.exists(detail):
        return []
    with open(detail) as fh:
        return [json.loads(x) for x in fh if x.endswith("\n") and x.strip() and json.loads(x).get("final")]


end = time.time() + 20
while time.time() < end and not daemon_finals():
    time.sleep(0.2)
p.send_signal(signal.SIGTERM)
rc = p.wait(timeout=40)
log.close()
fs = daemon_finals()
with open(os.path.join(wd.path, "daemon.log"), errors="replace") as fh:
    dlog = fh.read()
rep.check("daemon: the first probe read back (found in INBOX, final line in the detail log)",
          fs and fs[0]["readback"]["status"] == "found" and fs[0]["readback"]["folder"] == "INBOX",
          json.dumps(fs)[:500] + dlog[-800:])
rep.check("daemon: an event=readback log line, exit 0 on SIGTERM", "event=readback" in dlog and rc == 0,
          "rc %r %s" % (rc, dlog[-500:]))

# ---- missing after the timeout, then a late arrival is recorded (run, and across a restart) ----
# hold@seed-a.test is accepted by the lab's Postfix and put on hold: nothing arrives until the
# test releases the message (postsuper -H QUEUE_ID), long after readback.timeout.
HOLD = PF["hold"]


def queue_id(line):
    t = line["smtp"].get("text", "")
    return t.rsplit(" ", 1)[-1] if "queued as" in t else ""


def release(qid):
    subprocess.run(["postsuper", "-c", PF["config_dir"], "-H", qid], capture_output=True, timeout=30)


def lines_of(path):
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(x) for x in fh if x.endswith("\n") and x.strip()]  # a line being written: not yet


def wait_for(pred, path, secs):
    end = time.time() + secs
    while time.time() < end:
        got = pred(lines_of(path))
        if got:
            return got
        time.sleep(0.2)
    return pred(lines_of(path))


late_conf = wd.config("late", [sender()], [seed("late1", address=HOLD["address"]),
                                           seed("late2", address=HOLD["address"])],
                      extra='readback: { timeout = "3s"; late = "5m"; };\n')
late_detail = os.path.join(wd.path, "state-late", "results.jsonl")
late_log = open(os.path.join(wd.path, "late.log"), "ab")


def finals_by(lines, seed_name, status):
    return [x for x in lines if x["seed"] == seed_name and x.get("final") and x["readback"]["status"] == status]


p = subprocess.Popen([mclab.BIN, "-c", late_conf, "run"], stdout=late_log, stderr=late_log, stdin=subprocess.DEVNULL)
missing = wait_for(lambda ls: len(finals_by(ls, "late1", "missing")) and len(finals_by(ls, "late2", "missing")) and ls,
                   late_detail, 30) or []
m1, m2 = finals_by(missing, "late1", "missing"), finals_by(missing, "late2", "missing")
rep.check("late: both held probes reported missing after readback.timeout (3 s)", len(m1) == 1 and len(m2) == 1,
          json.dumps(missing)[:600])
q1 = queue_id(m1[0]) if m1 else ""
q2 = queue_id(m2[0]) if m2 else ""
release(q1)
late1 = wait_for(lambda ls: finals_by(ls, "late1", "found"), late_detail, 30)
p.send_signal(signal.SIGTERM)
rc1 = p.wait(timeout=40)
f1 = late1[-1]["readback"] if late1 else {}
rep.check("late: released while the daemon runs, found later: a further line, found, late true, deleted",
          f1.get("late") is True and f1.get("folder") == "INBOX" and f1.get("cleanup") == "deleted" and
          f1.get("delivery_s", 0) >= 3 and rc1 == 0 and late1[-1]["probe_id"] == m1[0]["probe_id"],
          "rc %s %s" % (rc1, json.dumps(late1)[:600]))
# The second one is released while nothing runs; the next daemon goes on with the journaled watch.
release(q2)
time.sleep(3)
p = subprocess.Popen([mclab.BIN, "-c", late_conf, "run"], stdout=late_log, stderr=late_log, stdin=subprocess.DEVNULL)
late2 = wait_for(lambda ls: finals_by(ls, "late2", "found"), late_detail, 30)
p.send_signal(signal.SIGTERM)
rc2 = p.wait(timeout=40)
late_log.close()
f2 = late2[-1]["readback"] if late2 else {}
rep.check("late: released between two daemon runs: the journaled watch finds it after the restart",
          f2.get("late") is True and f2.get("cleanup") == "deleted" and rc2 == 0 and
          late2[-1]["probe_id"] == m2[0]["probe_id"], "rc %s %s" % (rc2, json.dumps(late2)[:600]))
rep.check("late: neither probe is left in the mailbox",
          m1 and m2 and mailbox_has_probe(m1[0]["probe_id"]) == [] and mailbox_has_probe(m2[0]["probe_id"]) == [])
all_late = lines_of(late_detail)
rep.check("late: exactly one missing and one late found line per probe, no repeats",
          [len(finals_by(all_late, s_, st)) for s_ in ("late1", "late2") for st in ("missing", "found")] == [1, 1, 1, 1],
          json.dumps([(x["seed"], x["readback"]["status"]) for x in all_late]))

# ---- no secret anywhere ----
texts = []
for root, dirs, files in os.walk(wd.path):
    for fn in files:
        if fn.endswith(".secret"):
            continue
        try:
            with open(os.path.join(root, fn), errors="replace") as fh:
                texts.append(fh.read())
        except OSError:
            pass
rep.check("no IMAP password in the detail logs, journals or configs", not any(PASSWORD in t for t in texts))

wd.cleanup()
rep.finish()
