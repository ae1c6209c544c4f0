#!/usr/bin/env python3
"""The command line contract (DESIGN.md): version/help/usage exits, check-config's output and
FILE:LINE: key: message errors, probe's seed selection, exit codes, human and JSON output, and
-c versus $MAILCANARY_CONF. Probes go to the lab's smtp-sinks; a local listener that never
answers (the "trap") proves that nothing was sent where nothing may be."""

import json
import os
import re
import socket

import mclab

L = mclab.lab()
rep = mclab.Report("cli")
wd = mclab.Workdir("cli")
run = mclab.run
NO_ENV = {"MAILCANARY_CONF": ""}        # never inherit a config from the caller's environment


class Trap:
    """A TCP listener that accepts nothing: a connection to it is queued by the kernel, so
    connections() tells whether anything tried to connect."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connections(self):
        n = 0
        while True:
            try:
                c, _ = self.sock.accept()
            except (BlockingIOError, OSError):
                return n
            c.close()
            n += 1

    def close(self):
        self.sock.close()


def results_log(name):
    p = os.path.join(wd.path, "state-" + name, "results.jsonl")
    try:
        with open(p) as f:
            return f.read().splitlines()
    except OSError:
        return None


def write(name, text):
    p = os.path.join(wd.path, name)
    with open(p, "w") as f:
        f.write(text)
    return p


trap = Trap()
rep.guard(wd.cleanup, trap.close)

# ---------------------------------------------------------------------------
# version, help, unknown commands

rc, out, err = run(["version"], env=NO_ENV)
rep.check("version: exit 0, prints mailcanary", rc == 0 and out.startswith("mailcanary "),
          "rc=%d out=%r err=%r" % (rc, out, err))
for args in (["--help"], ["-h"], ["help"]):
    rc, out, err = run(args, env=NO_ENV)
    rep.check("%s: exit 0, lists check-config and probe" % " ".join(args),
              rc == 0 and "check-config" in out and "probe" in out, "rc=%d out=%r" % (rc, out[:300]))
rc, out, err = run(["frobnicate"], env=NO_ENV)
rep.check("unknown command: exit 2, named on stderr", rc == 2 and "frobnicate" in err,
          "rc=%d err=%r" % (rc, err[:300]))
rc, out, err = run([], env=NO_ENV)
rep.check("no command: exit 2 with usage on stderr", rc == 2 and "usage" in err.lower(), "rc=%d" % rc)

# ---------------------------------------------------------------------------
# check-config

ok_sink, rcpt432 = L["sinks"]["ok"], L["sinks"]["rcpt432"]


def sender(name, port, **kw):
    s = {"name": name, "mode": "mx", "port": port, "helo": "probe.lab.test", "mail_from": "canary@lab.test",
         "tls": "opportunistic"}
    s.update(kw)
    return s


senders = [sender("via_ok", ok_sink), sender("via_rcpt432", rcpt432),
           sender("via_trap", trap.port, mode="relay", host="127.0.0.1", tls="none")]
seeds = [{"name": "good", "address": "seed1@sink.test", "sender": "via_ok", "schedule": "hourly"},
         {"name": "deferred", "address": "seed1@sink.test", "sender": "via_rcpt432", "schedule": "hourly"},
         {"name": "trap", "address": "seed1@sink.test", "sender": "via_trap", "schedule": "hourly"}]
good = wd.config("good", senders, seeds, timeouts={"banner": "2s"}, extra='vantage = "lab1";\n')

rc, out, err = run(["-c", good, "check-config"], env=NO_ENV)
rep.check("check-config on a valid config: exactly 'configuration OK', exit 0",
          rc == 0 and out == "configuration OK\n" and err == "", "rc=%d out=%r err=%r" % (rc, out, err[:500]))

ERR_RE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?:(?P<key>[A-Za-z_][\w.\[\]]*): )?(?P<msg>\S.*)$")


def parse_errors(err):
    """[(file, line, key, msg)] or None if a line does not have the FILE:LINE: [key: ]message form."""
    out = []
    for ln in err.splitlines():
        m = ERR_RE.match(ln)
        if not m:
            return None
        out.append((m.group("file"), int(m.group("line")), m.group("key"), m.group("msg")))
    return out


state_broken = os.path.join(wd.path, "state-broken")
# A syntax error on line 3 (libconfig stops there: the unknown key on line 5 and the bad port on
# line 7 can only be reported once it parses).
syntax = write("syntax.conf", """state_dir = %s;
dns: { servers = [%s]; timeout = "3s"; };
timeouts: { connect = "3s"; banner = ; };
senders = (
  { name = "s"; mode = "relay"; host = "127.0.0.1"; colour = "blue";
    mail_from = "canary@lab.test"; tls = "none";
    port = 70000; }
);
seeds = ( { name = "x"; address = "seed1@sink.test"; sender = "s"; } );
""" % (mclab.q(state_broken), mclab.q(L["dns"]["server"])))
rc, out, err = run(["-c", syntax, "check-config"], env=NO_ENV)
errs = parse_errors(err)
rep.check("syntax error: exit 2, nothing on stdout", rc == 2 and out == "", "rc=%d out=%r" % (rc, out))
rep.check("syntax error: one FILE:LINE: message line naming %s:3" % os.path.basename(syntax),
          errs is not None and len(errs) == 1 and errs[0][:2] == (syntax, 3), err)

# Semantic errors, one per line, in the main file and in an included file.
inc = write("broken-inc.conf", """# included from semantic.conf
retry: { schedule = ["5m"]; give_up = "forever"; };
""")
semantic = write("semantic.conf", """state_dir = %s;
dns: { servers = [%s]; timeout = "3s"; };
timeouts: { connect = "3s"; banner = "2s"; };
senders = (
  { name = "s"; mode = "relay"; host = "127.0.0.1"; colour = "blue";
    mail_from = "canary@lab.test"; tls = "none";
    port = 70000; },
  { name = "r"; mode = "relay"; host = "127.0.0.1"; port = %d; mail_from = "canary@lab.test";
    tls = "maybe"; }
);
seeds = (
  { name = "x"; address = "seed1@sink.test"; sender = "nosuch"; },
  { name = "y"; address = "seed1@sink.test"; sender = "r"; schedule = "every 15m"; }
);
@include "broken-inc.conf"
""" % (mclab.q(state_broken), mclab.q(L["dns"]["server"]), trap.port))
want = [(semantic, 5, "senders.[0].colour"), (semantic, 7, "senders.[0].port"), (semantic, 9, "senders.[1].tls"),
        (semantic, 12, "seeds.[0].sender"), (inc, 2, "retry.give_up")]
rc, out, err = run(["-c", semantic, "check-config"], env=NO_ENV)
errs = parse_errors(err)
rep.check("semantic errors: exit 2, nothing on stdout", rc == 2 and out == "", "rc=%d out=%r" % (rc, out))
rep.check("semantic errors: every stderr line is FILE:LINE: key: message", errs is not None and
          all(e[2] for e in errs), err)
got = [e[:3] for e in (errs or [])]
rep.check("semantic errors: one line per error, right files, lines and keys",
          sorted(got) == sorted(want), "got %s\nwant %s" % (got, want))
rep.check("semantic errors: reported in file and line order", got == want, str(got))
msgs = {e[:3]: e[3] for e in (errs or [])}
rep.check("semantic errors: the messages say what is wrong",
          "unknown" in msgs.get((semantic, 5, "senders.[0].colour"), "")
          and "70000" in msgs.get((semantic, 7, "senders.[0].port"), "")
          and "maybe" in msgs.get((semantic, 9, "senders.[1].tls"), "")
          and "nosuch" in msgs.get((semantic, 12, "seeds.[0].sender"), "")
          and "forever" in msgs.get((inc, 2, "retry.give_up"), ""), str(msgs))

# Secrets only from files that only their owner may read.
pw = write("open.secret", "not-so-secret")
os.chmod(pw, 0o644)
openpw = write("openpw.conf", """state_dir = %s;
dns: { servers = [%s]; timeout = "3s"; };
senders = (
  { name = "r"; mode = "relay"; host = "127.0.0.1"; port = %d; mail_from = "canary@lab.test";
    tls = "required"; username = "canary@lab.test";
    password_file = %s; }
);
seeds = ( { name = "x"; address = "seed1@sink.test"; sender = "r"; } );
""" % (mclab.q(state_broken), mclab.q(L["dns"]["server"]), trap.port, mclab.q(pw)))
rc, out, err = run(["-c", openpw, "check-config"], env=NO_ENV)
errs = parse_errors(err) or []
rep.check("password_file readable by others (0644): exit 2, %s:6: senders.[0].password_file" %
          os.path.basename(openpw), rc == 2 and [e[:3] for e in errs] == [(openpw, 6, "senders.[0].password_file")],
          "rc=%d err=%r" % (rc, err))
rep.check("password_file 0644: the secret itself is not printed", "not-so-secret" not in out + err)

rc, out, err = run(["-c", os.path.join(wd.path, "missing.conf"), "check-config"], env=NO_ENV)
rep.check("missing config file: exit 2, names the file", rc == 2 and "missing.conf" in err, err)
rc, out, err = run(["-c", good, "check-config", "extra"], env=NO_ENV)
rep.check("check-config with an argument: exit 2 (usage)", rc == 2 and "usage" in err, "rc=%d" % rc)

# ---------------------------------------------------------------------------
# probe with a broken config: exit 2, nothing sent, file:line named

for label, path, line in (("syntax error", syntax, 3), ("semantic errors", semantic, 5)):
    rc, out, err = run(["-c", path, "probe", "--json"], env=NO_ENV)
    rep.check("probe, %s: exit 2" % label, rc == 2, "rc=%d err=%r" % (rc, err[:300]))
    rep.check("probe, %s: names %s:%d on stderr" % (label, os.path.basename(path), line),
              ("%s:%d:" % (path, line)) in err, err)
    rep.check("probe, %s: nothing on stdout" % label, out == "", out[:300])
rep.check("probe with a broken config: no connection made", trap.connections() == 0)
rep.check("probe with a broken config: no detail log written",
          not os.path.exists(os.path.join(state_broken, "results.jsonl")))

# ---------------------------------------------------------------------------
# probe: seed selection and exit codes

rc, out, err = run(["-c", good, "probe", "good", "nosuch"], env=NO_ENV)
rep.check("probe with an unknown seed name: exit 2", rc == 2, "rc=%d" % rc)
rep.check("probe with an unknown seed name: the message names it",
          "nosuch" in err and "seed" in err, err)
rep.check("probe with an unknown seed name: nothing probed (no connection, no detail log)",
          trap.connections() == 0 and results_log("good") is None and "good" not in out.split(), out)

rc, res, out, err = mclab.probe_json(good, "good")
rep.check("probe SEED (accepted): exit 0", rc == 0, "rc=%d err=%r" % (rc, err[:300]))
rep.check("probe SEED: only that seed ran", list(res) == ["good"] and len(out.splitlines()) == 1, out[:500])
rep.check("probe SEED: the other seeds were not probed", trap.connections() == 0)
lines = results_log("good") or []
rep.check("probe SEED: one detail-log line", len(lines) == 1, "%d lines" % len(lines))

rc, res, out, err = mclab.probe_json(good, "good", "deferred")
rep.check("probe with a deferral: exit 1", rc == 1, "rc=%d err=%r" % (rc, err[:300]))
rep.check("probe two seeds: both ran, nothing else", sorted(res) == ["deferred", "good"] and
          trap.connections() == 0, str(sorted(res)))

# ---------------------------------------------------------------------------
# --json: each line parses and carries the contract's keys

SENT_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
json_ok, bad_lines = True, []
objs = []
for ln in out.splitlines():
    try:
        objs.append(json.loads(ln))
    except ValueError:
        bad_lines.append(ln)
rep.check("--json: every stdout line is one JSON object", not bad_lines and len(objs) == 2, str(bad_lines)[:300])
for o in objs:
    s = o.get("smtp", {})
    missing = [k for k in ("seed", "probe_id", "sent_at", "smtp", "readback") if k not in o]
    missing += ["smtp." + k for k in ("outcome", "stage", "code", "enhanced", "text", "mx", "ip", "port", "ms",
                                       "attempts", "warnings") if k not in s]
    missing += ["readback.status"] if "status" not in o.get("readback", {}) else []
    rep.check("--json %s: contract keys present" % o.get("seed"), not missing, "missing %s" % missing)
    rep.check("--json %s: vantage from the config" % o.get("seed"), o.get("vantage") == "lab1", str(o.get("vantage")))
    rep.check("--json %s: sent_at is ISO 8601 UTC with milliseconds" % o.get("seed"),
              bool(SENT_AT.match(str(o.get("sent_at")))), str(o.get("sent_at")))
    rep.check("--json %s: types (code int, port int, ms numbers, attempts and warnings lists)" % o.get("seed"),
              isinstance(s.get("code"), int) and isinstance(s.get("port"), int)
              and all(isinstance(v, (int, float)) for v in s.get("ms", {}).values()) and "total" in s.get("ms", {})
              and isinstance(s.get("attempts"), list) and len(s["attempts"]) >= 1
              and isinstance(s.get("warnings"), list), json.dumps(s)[:500])
    a = (s.get("attempts") or [{}])[-1]
    rep.check("--json %s: the last attempt repeats the decision" % o.get("seed"),
              all(a.get(k) == s.get(k) for k in ("outcome", "stage", "code", "enhanced", "text")) and "at" in a
              and "ms" in a, json.dumps(a)[:300])
    rep.check("--json %s: readback skipped (no IMAP account)" % o.get("seed"),
              o.get("readback", {}).get("status") == "skipped", str(o.get("readback")))
by = {o.get("seed"): o for o in objs}
rep.smtp("--json: the deferred seed's decision", by.get("deferred"), "deferred", "rcpt", 451, "4.3.2",
         "System not accepting network messages")
rep.check("--json: probe ids differ", len({o.get("probe_id") for o in objs}) == len(objs))

# ---------------------------------------------------------------------------
# Human output

rc, out, err = run(["-c", good, "probe", "good", "deferred"], env=NO_ENV)
lines = out.splitlines()
rep.check("human: exit 1", rc == 1, "rc=%d err=%r" % (rc, err[:300]))
rep.check("human: header SEED OUTCOME STAGE CODE ENH TOTAL_MS TEXT",
          bool(lines) and lines[0].split() == ["SEED", "OUTCOME", "STAGE", "CODE", "ENH", "TOTAL_MS", "TEXT"],
          lines[0] if lines else "")
rows = {l.split()[0]: l for l in lines[1:] if l and not l[0].isspace() and len(l.split()) >= 6}
rep.check("human: one line per probe", sorted(k for k in rows if k in ("good", "deferred")) == ["deferred", "good"]
          and len([l for l in lines[1:] if l.split() and l.split()[0] in ("good", "deferred")]) == 2, out)
g, d = rows.get("good", "").split(), rows.get("deferred", "").split()
rep.check("human: accepted line shows outcome, stage, code, enhanced code",
          g[1:5] == ["accepted", "eod", "250", "2.0.0"], rows.get("good"))
rep.check("human: deferred line shows outcome, stage, code, enhanced code and the text",
          d[1:5] == ["deferred", "rcpt", "451", "4.3.2"]
          and "System not accepting network messages" in rows.get("deferred", ""), rows.get("deferred"))
rep.check("human: TOTAL_MS is a number", len(g) > 5 and re.match(r"^\d+(\.\d+)?$", g[5]) is not None, str(g))
rep.check("human: summary '2 probes: 1 accepted, 1 deferred'",
          bool(lines) and lines[-1] == "2 probes: 1 accepted, 1 deferred", lines[-1] if lines else "")
rep.check("human: nothing on stderr", err.strip() == "", err[-300:])

rc, out, err = run(["-c", good, "probe", "good"], env=NO_ENV)
lines = out.splitlines()
rep.check("human, one accepted probe: exit 0, summary '1 probe: 1 accepted'",
          rc == 0 and bool(lines) and lines[-1] == "1 probe: 1 accepted", out[-300:])
rep.check("probe option errors: exit 2", run(["-c", good, "probe", "--bogus"], env=NO_ENV)[0] == 2)

# ---------------------------------------------------------------------------
# -c versus $MAILCANARY_CONF

rc, out, err = run(["check-config"], env={"MAILCANARY_CONF": good})
rep.check("$MAILCANARY_CONF selects the config (check-config OK)", rc == 0 and out == "configuration OK\n",
          "rc=%d out=%r err=%r" % (rc, out, err[:300]))
rc, out, err = run(["check-config"], env={"MAILCANARY_CONF": semantic})
rep.check("$MAILCANARY_CONF with a broken config: exit 2 naming that file",
          rc == 2 and ("%s:5:" % semantic) in err, "rc=%d err=%r" % (rc, err[:300]))
rc, out, err = run(["-c", good, "check-config"], env={"MAILCANARY_CONF": semantic})
rep.check("-c wins over $MAILCANARY_CONF", rc == 0 and out == "configuration OK\n", "rc=%d err=%r" % (rc, err[:300]))
rc, out, err = run(["-c", semantic, "check-config"], env={"MAILCANARY_CONF": good})
rep.check("-c wins over $MAILCANARY_CONF (broken -c file reported)",
          rc == 2 and semantic in err and good not in err, "rc=%d err=%r" % (rc, err[:300]))
rc, out, err = run(["--config", good, "check-config"], env={"MAILCANARY_CONF": semantic})
rep.check("--config is -c", rc == 0 and out == "configuration OK\n", "rc=%d err=%r" % (rc, err[:300]))

before = len(results_log("good") or [])
rc, out, err = run(["probe", "--json", "good"], env={"MAILCANARY_CONF": good})
res = [json.loads(l) for l in out.splitlines() if l.strip()]
rep.check("probe through $MAILCANARY_CONF: ran that config's seed",
          rc == 0 and [r["seed"] for r in res] == ["good"] and len(results_log("good") or []) == before + 1,
          "rc=%d out=%r err=%r" % (rc, out[:300], err[:300]))

rep.check("no connection to the trap at any point", trap.connections() == 0)
trap.close()
wd.cleanup()
rep.finish()
