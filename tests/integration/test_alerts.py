#!/usr/bin/env python3
"""The alert hook through the real CLI against the lab: a seed's state (ok, degraded, failing)
follows its final results across `mailcanary probe` runs sharing one state_dir
(state_dir/alerts.state), and alert.command runs exactly once per change of state, with the
details in MAILCANARY_* environment variables: accepted (ok, no alert), deferred (ok -> degraded),
deferred again (no alert), accepted (degraded -> ok); with failing_after = 2 two rejections give
ok -> degraded, then degraded -> failing, a third nothing; a command that exits 1 is logged
(rc=1) and probing goes on; without alert.command no state file is written."""

import os

import mclab

L = mclab.lab()
rep = mclab.Report("alerts")
wd = mclab.Workdir("alerts")
rep.guard(wd.cleanup)
PF = L["postfix"]


def sender(name, port):
    return {"name": name, "mode": "mx", "port": port, "helo": "probe.lab.test", "mail_from": "canary@lab.test",
            "tls": "none"}


SENDERS = [sender("pf", PF["mx"]), sender("r432", L["sinks"]["rcpt432"]), sender("r5xx", L["sinks"]["rcpt5xx"])]


def seed(name, via):
    return {"name": name, "address": "seed1@seed-a.test" if via == "pf" else "seed1@sink.test", "sender": via,
            "schedule": "hourly"}


def config(name, seeds, command, failing_after=3):
    # no retries: a deferral is final at once; no readback configured
    alert = "alert: { command = %s; latency = \"10m\"; failing_after = %d; };\n" % (mclab.q(command), failing_after)
    return wd.config(name, SENDERS, seeds, extra="retry: { schedule = []; };\n" + (alert if command else ""))


def recorder(name):
    """A command that appends its MAILCANARY_* variables, one block per run, to a file."""
    path = os.path.join(wd.path, name + ".alerts")
    return path, "env | grep '^MAILCANARY_' | sort >> '%s'; echo END >> '%s'" % (path, path)


def alerts_of(path):
    """[{VAR: value}] in the order the command ran."""
    if not os.path.exists(path):
        return []
    out, cur = [], {}
    with open(path) as f:
        for line in f.read().splitlines():
            if line == "END":
                out.append(cur)
                cur = {}
            elif "=" in line:
                k, v = line.split("=", 1)
                cur[k[len("MAILCANARY_"):]] = v
    return out


def probe(conf, seed_name):
    rc, lines, err = probe_v(conf, seed_name)
    return rc, mclab.final_of(lines, seed_name), err


def probe_v(conf, seed_name):
    import json
    rc, out, err = mclab.run(["-v", "-c", conf, "probe", "--json", seed_name], timeout=120)
    return rc, [json.loads(x) for x in out.splitlines() if x.strip()], err


def state_line(name, seed_name):
    p = os.path.join(wd.path, "state-" + name, "alerts.state")
    if not os.path.exists(p):
        return None
    for line in open(p).read().splitlines():
        if line.split(" ")[0] == seed_name:
            return line
    return None


def alert_log_lines(err):
    return [x for x in err.splitlines() if "event=alert" in x]


def check_env(name, got, want):
    bad = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    rep.check(name, not bad, "got/want " + repr(bad))


# --- ok, deferred, deferred, ok ---
path, cmd = recorder("seq")
steps = [("pf", "accepted", 0), ("r432", "deferred", 1), ("r432", "deferred", 1), ("pf", "accepted", 2)]
results = []
for i, (via, outcome, n_want) in enumerate(steps):
    conf = config("seq", [seed("s1", via)], cmd)  # the same state_dir, another sender
    rc, r, err = probe(conf, "s1")
    results.append(r)
    rep.check("seq %d: %s via %s" % (i + 1, outcome, via), r is not None and r["smtp"]["outcome"] == outcome,
              "got %r | %s" % (r and r["smtp"], err[-400:]))
    got = alerts_of(path)
    rep.check("seq %d: %d alert%s so far" % (i + 1, n_want, "" if n_want == 1 else "s"), len(got) == n_want,
              "got %r" % got)
    logged = alert_log_lines(err)
    want_logged = 1 if i in (1, 3) else 0
    rep.check("seq %d: %d event=alert log line%s" % (i + 1, want_logged, "" if want_logged == 1 else "s"),
              len(logged) == want_logged, "got %r" % logged)

got = alerts_of(path)
if rep.check("seq: exactly two alerts", len(got) == 2, "got %r" % got):
    d = results[1]
    check_env("seq: ok -> degraded with the deferral's details", got[0], {
        "SEED": "s1", "OLD_STATE": "ok", "NEW_STATE": "degraded", "OUTCOME": "deferred", "STAGE": "rcpt",
        "CODE": "451", "ENHANCED": "4.3.2", "TEXT": d["smtp"]["text"] if d else "?",
        "PROBE_ID": d["probe_id"] if d else "?", "FOLDER": "", "DELIVERY": ""})
    rep.check("seq: the deferral's cause is passed", got[0].get("CAUSE", "") != "", "got %r" % got[0])
    a = results[3]
    check_env("seq: degraded -> ok with the acceptance's details", got[1], {
        "SEED": "s1", "OLD_STATE": "degraded", "NEW_STATE": "ok", "OUTCOME": "accepted", "STAGE": "eod",
        "CODE": "250", "PROBE_ID": a["probe_id"] if a else "?"})
st = state_line("seq", "s1")
rep.check("seq: alerts.state has s1 ok with no failures", st is not None and st.split(" ")[1:3] == ["ok", "0"],
          "got %r" % st)

# the log line of a transition
conf = config("seq", [seed("s1", "r432")], cmd)
rc, r, err = probe(conf, "s1")
logged = alert_log_lines(err)
rep.check("seq: a transition logs event=alert seed=s1 from=ok to=degraded rc=0",
          len(logged) == 1 and "seed=s1 from=ok to=degraded rc=0" in logged[0], "got %r" % logged)

# --- failing_after = 2: rejected, rejected, rejected ---
path, cmd = recorder("fail")
conf = config("fail", [seed("s2", "r5xx")], cmd, failing_after=2)
want = [("ok", "degraded"), ("degraded", "failing"), None]
for i, w in enumerate(want):
    rc, r, err = probe(conf, "s2")
    rep.smtp("fail %d: rejected at rcpt" % (i + 1), r, "rejected", "rcpt", code=550, enhanced="5.1.1")
    got = alerts_of(path)
    n_want = 2 if w is None else i + 1
    if rep.check("fail %d: %d alerts so far" % (i + 1, n_want), len(got) == n_want, "got %r" % got) and w:
        check_env("fail %d: %s -> %s" % (i + 1, w[0], w[1]), got[i], {
            "SEED": "s2", "OLD_STATE": w[0], "NEW_STATE": w[1], "OUTCOME": "rejected", "STAGE": "rcpt",
            "CODE": "550", "ENHANCED": "5.1.1", "PROBE_ID": r["probe_id"] if r else "?"})
st = state_line("fail", "s2")
rep.check("fail: alerts.state has s2 failing after 3 failures",
          st is not None and st.split(" ")[1:3] == ["failing", "3"], "got %r" % st)
# a deferral does not end failing (hysteresis); an acceptance does
conf = config("fail", [seed("s2", "r432")], cmd, failing_after=2)
probe(conf, "s2")
rep.check("fail: a deferral keeps failing (no alert)", len(alerts_of(path)) == 2, "got %r" % alerts_of(path))
conf = config("fail", [seed("s2", "pf")], cmd, failing_after=2)
probe(conf, "s2")
got = alerts_of(path)
rep.check("fail: an acceptance gives failing -> ok",
          len(got) == 3 and got[2].get("OLD_STATE") == "failing" and got[2].get("NEW_STATE") == "ok", "got %r" % got)

# --- a command that fails ---
conf = config("bad", [seed("s3", "r432")], "exit 1")
rc, r, err = probe(conf, "s3")
rep.smtp("bad: the probe still gives its result", r, "deferred", "rcpt", code=451)
logged = alert_log_lines(err)
rep.check("bad: the failing command is logged with rc=1",
          len(logged) == 1 and "from=ok to=degraded rc=1" in logged[0], "got %r" % logged)
rep.check("bad: the state is kept", (state_line("bad", "s3") or "").split(" ")[1:2] == ["degraded"],
          "got %r" % state_line("bad", "s3"))
conf = config("bad", [seed("s3", "pf")], "exit 1")
rc, r, err = probe(conf, "s3")
rep.smtp("bad: probing goes on", r, "accepted", "eod", code=250)
logged = alert_log_lines(err)
rep.check("bad: the next transition runs it again", len(logged) == 1 and "from=degraded to=ok rc=1" in logged[0],
          "got %r" % logged)
rep.check("bad: exit 0 after an accepted probe", rc == 0, "rc %d" % rc)

# --- no alert.command: nothing ---
conf = config("none", [seed("s4", "r432")], None)
probe(conf, "s4")
rep.check("none: no alerts.state without alert.command",
          not os.path.exists(os.path.join(wd.path, "state-none", "alerts.state")))

wd.cleanup()
rep.finish()
