#!/usr/bin/env python3
"""The alert hook through the real CLI against the lab: a seed's state (ok, degraded, failing)
follows its final results across `mailcanary probe` runs sharing one state_dir
(state_dir/alerts.state), and alert.command runs exactly once per change of state, with the
details in MAILCANARY_* environment variables: accepted (ok, no alert), deferred (ok -> degraded),
deferred again (no alert), accepted (degraded -> ok); with failing_after = 2 two rejections give
ok -> degraded, then degraded -> failing, a third nothing; a command that exits 1 is logged
(rc=1) and probing goes on; without alert.command no state file is written. A Holt-Winters
aberration that librrd flags in the seed's RRD file (FAILURES of total) makes an accepted probe
degraded, with MAILCANARY_ABERRATION and the cause saying so (not with alert.aberrations =
false). The command runs beside the probes: a one-shot probe waits for it before it exits, one
that outlasts alert.timeout is killed with its process group and logged, and in the daemon a
command that sleeps 3 s does not hold up the next probe results while the next change waits
its turn."""

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

# --- Holt-Winters: librrd's FAILURES flag makes a clean result degraded ---
# "every 6h": step 6 h, a season of 4 steps. The seed's file gets a history through mailcanary's
# own store code (mc_rrdstore, the path the daemon writes through): 16 steady steps of total =
# 5000 ms (the seasonal coefficients and deviations become known), then 6 far below (6
# violations, under librrd's default 7 of 9). The probe's own total (a few ms, also far off) is
# the 7th: librrd flags the row of the probe's step, the feed reads it, the alert fires. The
# same history without the 6 ("hw0") gives no flag and no alert; with alert.aberrations = false
# nothing is read.
import signal
import subprocess
import time

RRDSTORE = os.environ.get("MAILCANARY_RRDSTORE", "")
ST = 6 * 3600


def hw_history(rrd_dir, seed_name, outliers):
    """Writes the history before the step that holds now; returns that step's end (the row the
    probe writes) and the helper's last line (the FAILURES flags after the last history step)."""
    now = time.time()
    if ST - now % ST < 60:  # too close to a step's end: the probe would land in the next step
        time.sleep(ST - now % ST + 1)
        now = time.time()
    t_row = int(now) - int(now) % ST + ST
    lines = []
    for k in range(22, 0, -1):
        total = 1 if k <= outliers else 5000
        lines.append("%d total=%d accepted=1 deferred=0 rejected=0 failed=0" % (t_row - k * ST, total))
    p = subprocess.run([RRDSTORE, "write", rrd_dir, "every 6h", seed_name, "--hw"], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, timeout=60)
    out = p.stdout.splitlines()
    return t_row, p.returncode, (out[-1] if out else ""), p.stderr


def failures_row(path, t_row):
    """librrd's own FAILURES row for t_row as rrdtool fetch shows it: {ds: value}."""
    p = subprocess.run(["rrdtool", "fetch", path, "FAILURES", "-s", str(t_row - ST), "-e", str(t_row)],
                       capture_output=True, text=True, timeout=30)
    lines = p.stdout.splitlines()
    if not lines:
        return {}
    names = lines[0].split()
    for line in lines[1:]:
        if line.startswith("%d:" % t_row):
            vals = line.split(":", 1)[1].split()
            return dict(zip(names, (float(v) if v not in ("-nan", "nan") else None for v in vals)))
    return {}


def hw_config(name, seeds, command, aberrations=True):
    alert = "alert: { command = %s; aberrations = %s; };\n" % (mclab.q(command), "true" if aberrations else "false")
    return wd.config(name, SENDERS, seeds, extra="retry: { schedule = []; };\n" + alert)


if rep.check("hw: mc_rrdstore built (MAILCANARY_RRDSTORE)", RRDSTORE and os.access(RRDSTORE, os.X_OK), RRDSTORE):
    path, cmd = recorder("hw")
    seeds = [{"name": "hw1", "address": "seed1@seed-a.test", "sender": "pf", "schedule": "every 6h"},
             {"name": "hw0", "address": "seed1@seed-a.test", "sender": "pf", "schedule": "every 6h"}]
    conf = hw_config("hw", seeds, cmd)
    rrd_dir = os.path.join(wd.path, "state-hw", "rrd")
    t_row, rc1, last1, e1 = hw_history(rrd_dir, "hw1", 6)
    _, rc0, last0, e0 = hw_history(rrd_dir, "hw0", 0)
    rep.check("hw: history written through the store, no flag after 6 violations",
              rc1 == 0 and rc0 == 0 and last1.endswith(" hw=-") and last0.endswith(" hw=-"),
              "rc %d/%d last %r/%r err %s %s" % (rc1, rc0, last1, last0, e1, e0))
    rc, lines, err = probe_v(conf, "hw1")
    r1 = mclab.final_of(lines, "hw1")
    rep.smtp("hw: hw1 accepted (a clean result by itself)", r1, "accepted", "eod", code=250)
    row = failures_row(os.path.join(rrd_dir, "hw1.rrd"), t_row)
    rep.check("hw: librrd flagged the probe's row (FAILURES total = 1)", row.get("total") == 1.0,
              "row %r" % row)
    got = alerts_of(path)
    if rep.check("hw: one alert for hw1", len(got) == 1, "got %r | %s" % (got, err[-1500:])):
        check_env("hw: ok -> degraded with the aberration", got[0], {
            "SEED": "hw1", "OLD_STATE": "ok", "NEW_STATE": "degraded", "OUTCOME": "accepted", "CODE": "250",
            "ABERRATION": "total", "CAUSE": "Holt-Winters aberration in total SMTP time",
            "PROBE_ID": r1["probe_id"] if r1 else "?"})
    logged = alert_log_lines(err)
    rep.check("hw: the log line names the aberration",
              len(logged) == 1 and 'seed=hw1 from=ok to=degraded rc=0' in logged[0] and 'aberration="total"' in logged[0],
              "got %r" % logged)
    rc, lines, err = probe_v(conf, "hw0")
    rep.smtp("hw: hw0 accepted", mclab.final_of(lines, "hw0"), "accepted", "eod", code=250)
    row0 = failures_row(os.path.join(rrd_dir, "hw0.rrd"), t_row)
    rep.check("hw: hw0's row not flagged (one violation)", row0.get("total") == 0.0, "row %r" % row0)
    rep.check("hw: no alert for hw0", len(alerts_of(path)) == 1, "got %r" % alerts_of(path))
    st0 = state_line("hw", "hw0")  # written only when something changed
    rep.check("hw: hw0 stays ok", st0 is None or st0.split(" ")[1:2] == ["ok"], "got %r" % st0)

    # alert.aberrations = false: the same situation, the flag is set by librrd but not read
    path2, cmd2 = recorder("hwoff")
    conf = hw_config("hwoff", [seeds[0]], cmd2, aberrations=False)
    rrd_dir2 = os.path.join(wd.path, "state-hwoff", "rrd")
    t_row2, rc1, last1, e1 = hw_history(rrd_dir2, "hw1", 6)
    rc, lines, err = probe_v(conf, "hw1")
    rep.check("hw off: librrd flagged the row", failures_row(os.path.join(rrd_dir2, "hw1.rrd"), t_row2).get("total") == 1.0)
    rep.check("hw off: no alert with alert.aberrations = false", alerts_of(path2) == [], "got %r" % alerts_of(path2))

# --- the command runs beside the probes: a one-shot probe waits for it, a slow one is killed ---
mark = os.path.join(wd.path, "waited")
conf = wd.config("wait", SENDERS, [seed("w1", "r432")],
                 extra="retry: { schedule = []; };\nalert: { command = %s; timeout = \"10s\"; };\n"
                 % mclab.q("sleep 2; echo done > '%s'" % mark))
rc, r, err = probe(conf, "w1")
rep.check("wait: probe waited for the command before it exited", os.path.exists(mark), err[-800:])
rep.check("wait: logged rc=0 when it ended", any("seed=w1 from=ok to=degraded rc=0" in x for x in alert_log_lines(err)),
          "got %r" % alert_log_lines(err))

survived = os.path.join(wd.path, "survived")
conf = wd.config("slow", SENDERS, [seed("k1", "r432")],
                 extra="retry: { schedule = []; };\nalert: { command = %s; timeout = \"1s\"; };\n"
                 % mclab.q("sleep 30.25; echo survived > '%s'" % survived))
t0 = time.monotonic()
rc, r, err = probe(conf, "k1")
took = time.monotonic() - t0
rep.smtp("slow: the probe gives its result", r, "deferred", "rcpt", code=451)
logged = alert_log_lines(err)
rep.check("slow: the overrun is logged (SIGTERM after alert.timeout)",
          any("seed=k1" in x and "status=timeout action=term" in x for x in logged), "got %r" % logged)
rep.check("slow: its end is logged as killed (signal 15)",
          any("seed=k1 from=ok to=degraded rc=-1 signal=15" in x and "status=timeout" in x for x in logged),
          "got %r" % logged)
rep.check("slow: the run did not wait the command's 30 s", took < 20, "took %.1f s" % took)
ps = subprocess.run(["pgrep", "-f", "sleep 30.25"], capture_output=True, text=True)
rep.check("slow: the command's children were killed with it (its process group)", ps.stdout.strip() == "",
          "left: %r" % ps.stdout)
rep.check("slow: the state is kept", (state_line("slow", "k1") or "").split(" ")[1:2] == ["degraded"])

# --- the daemon: a command that sleeps 3 s does not hold up the next probes; changes that come
# meanwhile wait and run in order ---
clog = os.path.join(wd.path, "daemon-cmd.log")
res = os.path.join(wd.path, "state-daemon", "results.jsonl")
dcmd = ("echo \"start $MAILCANARY_OLD_STATE $MAILCANARY_NEW_STATE $(date +%%s.%%N)\" >> '%s'; sleep 3; "
        "echo \"end $MAILCANARY_OLD_STATE $MAILCANARY_NEW_STATE $(date +%%s.%%N) $(wc -l < '%s')\" >> '%s'"
        % (clog, res, clog))


def dconf(via):
    return wd.config("daemon", SENDERS, [dict(seed("d1", via), schedule="every 1s")], limits={"spacing": "0s"},
                     extra="retry: { schedule = []; };\nalert: { command = %s; timeout = \"10s\"; };\n" % mclab.q(dcmd))


def cmd_log():
    if not os.path.exists(clog):
        return []
    return [x.split() for x in open(clog).read().splitlines()]


def results_d():
    if not os.path.exists(res):
        return []
    import json
    return [json.loads(x) for x in open(res) if x.endswith("\n") and x.strip()]


def wait_until(cond, timeout):
    return mclab.wait_for(cond, timeout, 0.1)


def iso_s(t):
    import calendar
    base, frac = t.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(frac) / 1000.0


conf = dconf("r432")
dlog = open(os.path.join(wd.path, "daemon.log"), "ab")
d = subprocess.Popen([mclab.BIN, "-v", "-c", conf, "run"], stdout=dlog, stderr=dlog, stdin=subprocess.DEVNULL)
try:
    rep.check("daemon: the first command started", wait_until(lambda: len(cmd_log()) >= 1, 20), repr(cmd_log()))
    time.sleep(0.5)
    # the next change (degraded -> ok) comes while the first command still sleeps
    conf = dconf("pf")
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: sum(1 for x in cmd_log() if x[0] == "end") >= 2, 20)
finally:
    if d.poll() is None:
        d.send_signal(signal.SIGTERM)
    try:
        d.wait(timeout=40)
    except subprocess.TimeoutExpired:
        d.kill()
        d.wait()
    dlog.close()
log = cmd_log()
rs = results_d()
ends = [x for x in log if x[0] == "end"]
rep.check("daemon: two commands ran, in order: ok->degraded, then degraded->ok",
          [x[:3] for x in log][:4] == [["start", "ok", "degraded"], ["end", "ok", "degraded"],
                                        ["start", "degraded", "ok"], ["end", "degraded", "ok"]],
          "log %r" % log)
if ends:
    first_end = float(ends[0][3])
    lines_then = int(ends[0][4])
    written_before = [r for r in rs if iso_s(r["sent_at"]) + r["smtp"]["ms"]["total"] / 1000.0 < first_end]
    rep.check("daemon: more probe results were written while the first command slept (%d lines at its end)" % lines_then,
              lines_then >= 2, "log %r" % log)
    rep.check("daemon: the second probe's result came before the first command finished (results.jsonl timestamps)",
              len(written_before) >= 2, "%d results; first end %.3f; sent %r" % (
                  len(rs), first_end, [r["sent_at"] for r in rs[:4]]))
starts = [x for x in log if x[0] == "start"]
if len(starts) >= 2 and ends:
    rep.check("daemon: the queued change waited for the first command (per-seed order)",
              float(starts[1][3]) >= float(ends[0][3]), "log %r" % log)
with open(os.path.join(wd.path, "daemon.log"), errors="replace") as f:
    dl = f.read()
rep.check("daemon: one event=alert line per change", len([x for x in dl.splitlines() if "event=alert " in x]) == 2,
          "\n".join(x for x in dl.splitlines() if "alert" in x))

wd.cleanup()
rep.finish()
