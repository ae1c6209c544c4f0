#!/usr/bin/env python3
"""The scheduler through the real CLI against the lab: the daemon on `every 2s` schedules with
per-domain limits, real greylisting by postgrey retried to acceptance, kill -9 while a retry is
pending (the retry happens exactly once), the cron mode (`probe --due`) completing a greylisted
probe over three runs, SIGHUP with a broken configuration, the state_dir lock, a corrupt
journal, and SIGTERM."""

import json
import os
import random
import signal
import string
import subprocess
import time

import mclab

L = mclab.lab()
rep = mclab.Report("scheduler")
wd = mclab.Workdir("sched")
PF = L["postfix"]
GREY = L["postgrey"]
procs = []


def kill_all():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


rep.guard(kill_all, wd.cleanup)


def letters(n=10):
    return "".join(random.choice(string.ascii_lowercase) for _ in range(n))


def grey_address():
    """A fresh greylisting triplet: postgrey remembers passed ones (letters only: it folds digits)."""
    return "grey-%s@%s" % (letters(), GREY["domain"])


def sender(name="d", port=None):
    return {"name": name, "mode": "mx", "port": port or PF["mx"], "helo": "probe.lab.test",
            "mail_from": "canary@lab.test", "tls": "none"}


def seed(name, address, schedule="weekly", via="d"):
    return {"name": name, "address": address, "sender": via, "schedule": schedule}


def config(name, seeds, retry=("2s",), give_up="1m", limits=None, senders=None, extra=""):
    lim = {"in_flight": 10, "per_domain": 1, "spacing": "0s"}
    lim.update(limits or {})
    # RRD files are written (the default): a 2 s seed's first file (about 70 MB, its 100 days at
    # one step) takes librrd up to 1.4 s on a busy host, on the feed's writer thread, and the
    # slots timed here must not wait for it (they did when the loop wrote the files itself)
    extra_text = "retry: { schedule = [%s]; give_up = %s; };\n" % (
        ", ".join(mclab.q(x) for x in retry), mclab.q(give_up)) + extra
    return wd.config(name, senders or [sender()], seeds, limits=lim, extra=extra_text)


def state_dir(name):
    return os.path.join(wd.path, "state-" + name)


def results(name):
    p = os.path.join(state_dir(name), "results.jsonl")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return [json.loads(line) for line in f if line.endswith("\n") and line.strip()]  # not one being written


def start_daemon(conf, name):
    return wd.start_daemon(conf, name, procs)


daemon_log = wd.log


def stop_daemon(p, sig=signal.SIGTERM, timeout=40):
    if p.poll() is None:
        p.send_signal(sig)
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return None


def wait_for(cond, timeout, step=0.1):
    return mclab.wait_for(cond, timeout, step)


def iso_s(t):
    """Seconds since the epoch from "2026-11-28T06:12:00.123Z"."""
    import calendar
    base, frac = t.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(frac) / 1000.0


def probe_json_lines(conf, args, timeout=120):
    rc, out, err = mclab.run(["-c", conf, "probe", "--json"] + list(args), timeout=timeout)
    return rc, [json.loads(x) for x in out.splitlines() if x.strip()], err


# ---- the daemon: three seeds every 2s, per-domain limit and spacing ----
def test_daemon_schedule():
    conf = config("daemon", [seed("a1", "seed1@seed-a.test", "every 2s"),
                             seed("a2", "seed1@seed-a.test", "every 2s"),
                             seed("b1", "seed2@seed-b.test", "every 2s")],
                  limits={"spacing": "1500ms"})
    p = start_daemon(conf, "daemon")
    time.sleep(10)
    rc = stop_daemon(p)
    rep.check("daemon: SIGTERM exits 0", rc == 0, "rc %r; log:\n%s" % (rc, daemon_log("daemon")[-2000:]))
    rs = results("daemon")
    by = {}
    for r in rs:
        by.setdefault(r["seed"], []).append(r)
    n_b1 = len(by.get("b1", []))
    # b1 alone on its domain: one probe every 2 s for ~10 s, the first at start.
    rep.check("daemon: b1 probed on its schedule (5-6 in 10 s)", 4 <= n_b1 <= 7, "got %d" % n_b1)
    # a1 and a2 share seed-a.test: spacing 1.5 s keeps them apart, so together they get fewer
    # than the 10-12 slots they have, and never two starts within 1.5 s.
    starts = sorted(iso_s(r["smtp"]["attempts"][-1]["at"]) for r in by.get("a1", []) + by.get("a2", []))
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    rep.check("daemon: seed-a.test probed (a1 and a2)", len(by.get("a1", [])) >= 2 and len(by.get("a2", [])) >= 2,
              "a1 %d a2 %d" % (len(by.get("a1", [])), len(by.get("a2", []))))
    rep.check("daemon: per-domain spacing held (>= 1.5 s between starts to seed-a.test)",
              gaps and min(gaps) >= 1.45, "gaps %s" % [round(g, 3) for g in gaps])
    rep.check("daemon: every probe accepted", all(r["smtp"]["outcome"] == "accepted" for r in rs),
              json.dumps([r["smtp"]["outcome"] for r in rs]))
    waited = [r for r in rs if r["seed"] in ("a1", "a2") and "spacing" in r.get("schedule", {}).get("waited_for", [])]
    rep.check("daemon: a wait for spacing shows in the JSON (schedule.waited_for)", waited,
              json.dumps([r.get("schedule") for r in rs])[:800])
    b1_starts = sorted(iso_s(r["smtp"]["attempts"][-1]["at"]) for r in by.get("b1", []))
    b1_gaps = [b - a for a, b in zip(b1_starts, b1_starts[1:])]
    # The schedule itself: due every 2 s exactly (no burst of made-up slots; the first, a seed
    # never probed, is due at once, off the grid); the start may lag its due time under load (a
    # sanitizer build on 2 busy cores), but by less than the interval.
    b1_due = sorted(iso_s(r["schedule"]["due_at"]) for r in by.get("b1", []) if r.get("schedule", {}).get("due_at"))
    b1_due_gaps = [b - a for a, b in zip(b1_due, b1_due[1:])]
    b1_lag = [r["schedule"].get("delay_s", 99) for r in by.get("b1", []) if r.get("schedule")]
    rep.check("daemon: b1's probes due 2 s apart (its interval, not a burst), each started within 2 s of it",
              len(b1_due_gaps) >= 3 and all(abs(g - 2.0) < 0.01 for g in b1_due_gaps[1:]) and all(d < 2.0 for d in b1_lag)
              and all(g >= 0.5 for g in b1_gaps),
              "due gaps %s start gaps %s lags %s" % ([round(g, 3) for g in b1_due_gaps],
                                                     [round(g, 3) for g in b1_gaps], b1_lag))
    log = daemon_log("daemon")
    rep.check("daemon: logs key=value events (start, attempt, stopping, exit)",
              all(x in log for x in ("event=start", "event=attempt", "event=stopping", "event=exit")), log[-1500:])


# ---- greylisting, retried in one run ----
def test_greylist_retry():
    conf = config("grey", [seed("g", grey_address())], retry=("10s",))
    t0 = time.time()
    rc, lines, err = probe_json_lines(conf, ["--wait", "20s", "g"])
    rep.check("greylist: two result lines (deferred, then accepted)", len(lines) == 2,
              "rc %d lines %s err %s" % (rc, [x["smtp"]["outcome"] for x in lines], err[-500:]))
    if len(lines) != 2:
        return
    first, last = lines
    rep.smtp("greylist: first attempt 450 4.2.0 at rcpt", first, "deferred", "rcpt", 450, "4.2.0", text="~Greylisted")
    rep.check("greylist: the first line says a retry is pending", first.get("final") is False
              and first.get("retry", {}).get("attempt") == 2, json.dumps(first)[:400])
    rep.smtp("greylist: retry accepted", last, "accepted", "eod", 250)
    att = last["smtp"]["attempts"]
    rep.check("greylist: attempts hold both, in order", [a["outcome"] for a in att] == ["deferred", "accepted"]
              and [a["n"] for a in att] == [1, 2], json.dumps(att)[:600])
    rep.check("greylist: same probe id across the retry", first["probe_id"] == last["probe_id"])
    after = last["smtp"].get("accepted_after_s")
    # postgrey says "try again in 3 seconds": honoured over the 10 s schedule; it counts whole
    # seconds, so acceptance comes 2-3 s after the first attempt plus our reaction.
    rep.check("greylist: accepted_after_s ~ the greylist delay (hint honoured, not the 10 s schedule)",
              after is not None and GREY["delay"] - 1 <= after <= GREY["delay"] + 2.5, "accepted_after_s %r" % after)
    rep.check("greylist: exit 0 (finally accepted)", rc == 0, "rc %d" % rc)
    rep.check("greylist: the run took about the delay", time.time() - t0 < 15)
    rs = results("grey")
    rep.check("greylist: detail log has the interim and the final line",
              [r.get("final") for r in rs] == [False, True], json.dumps([r.get("final") for r in rs]))


def test_no_wait_journals_retry():
    """probe without --wait: the deferral is reported and the retry journaled for later runs."""
    conf = config("nowait", [seed("g", grey_address())])
    rc, lines, err = probe_json_lines(conf, ["g"])
    rep.check("no wait: one deferred line, exit 1", rc == 1 and len(lines) == 1 and
              lines[0]["smtp"]["outcome"] == "deferred" and lines[0]["final"] is False,
              "rc %d %s" % (rc, [(x["smtp"]["outcome"], x.get("final")) for x in lines]))
    with open(os.path.join(state_dir("nowait"), "journal")) as f:
        j = f.read()
    rep.check("no wait: the journal holds the pending retry", " wait id=%s" % lines[0]["probe_id"] in j if lines else False, j[:600])


# ---- cron mode: three runs complete a greylisted probe ----
def test_due_three_runs():
    conf = config("due", [seed("g", grey_address(), "weekly")], retry=("2s",))
    rc1, l1, e1 = probe_json_lines(conf, ["--due"])
    rep.check("due run 1: the new seed's first probe, deferred by greylisting", rc1 == 1 and len(l1) == 1 and
              l1[0]["smtp"]["outcome"] == "deferred" and l1[0]["smtp"]["code"] == 450,
              "rc %d lines %s err %s" % (rc1, [x["smtp"] for x in l1], e1[-400:]))
    rc2, l2, e2 = probe_json_lines(conf, ["--due"])
    rep.check("due run 2 (before the retry is due): nothing sent, exit 0", rc2 == 0 and l2 == [],
              "rc %d lines %d err %s" % (rc2, len(l2), e2[-300:]))
    time.sleep(GREY["delay"] + 0.5)
    rc3, l3, e3 = probe_json_lines(conf, ["--due"])
    ok = len(l3) == 1 and l1 and l3[0]["probe_id"] == l1[0]["probe_id"]
    rep.check("due run 3: the retry of the same probe, accepted", ok and rc3 == 0 and
              l3[0]["smtp"]["outcome"] == "accepted" and l3[0]["final"] is True,
              "rc %d %s err %s" % (rc3, [x["smtp"]["outcome"] for x in l3], e3[-300:]))
    if ok:
        after = l3[0]["smtp"].get("accepted_after_s")
        rep.check("due run 3: accepted_after_s over the runs ~ delay", after is not None and
                  GREY["delay"] <= after <= GREY["delay"] + 3, "accepted_after_s %r" % after)
        rep.check("due run 3: both attempts", [a["outcome"] for a in l3[0]["smtp"]["attempts"]] ==
                  ["deferred", "accepted"])
    rc4, l4, _ = probe_json_lines(conf, ["--due"])
    rep.check("due run 4: weekly seed not due again", rc4 == 0 and l4 == [], "%d lines" % len(l4))


# ---- kill -9 with a retry pending ----
def test_kill9_retry_once():
    conf = config("kill", [seed("k", "defer432@seed-a.test", "weekly")], retry=("5s",), give_up="12s")
    p = start_daemon(conf, "kill")
    ok = wait_for(lambda: any(r["seed"] == "k" for r in results("kill")), 10)
    rep.check("kill -9: first attempt deferred (451 4.3.2) before the kill", ok and
              results("kill")[0]["smtp"]["code"] == 451, json.dumps(results("kill"))[:400])
    p.kill()  # SIGKILL while the retry (due in 5 s) is pending
    p.wait()
    time.sleep(0.5)
    p2 = start_daemon(conf, "kill")
    wait_for(lambda: len(results("kill")) >= 3, 20)
    time.sleep(1)
    rc = stop_daemon(p2)
    rs = [r for r in results("kill") if r["seed"] == "k"]
    ids = {r["probe_id"] for r in rs}
    numbers = [r["smtp"]["attempts"][-1]["n"] for r in rs]
    rep.check("kill -9: one probe, every attempt exactly once (1, 2, 3)", len(ids) == 1 and numbers == [1, 2, 3],
              "ids %d attempts %s; log:\n%s" % (len(ids), numbers, daemon_log("kill")[-1500:]))
    rep.check("kill -9: gave up after give_up with the last attempt's outcome", rs and rs[-1]["final"] is True and
              rs[-1]["smtp"]["outcome"] == "deferred" and
              any("gave up" in w for w in rs[-1]["smtp"].get("warnings", [])), json.dumps(rs[-1] if rs else {})[:500])
    rep.check("kill -9: restarted daemon exits 0 on SIGTERM", rc == 0)


def test_kill9_in_flight():
    """Killed during an attempt: after restart that attempt is recorded as interrupted and never resent."""
    hang = L["sinks"]["hang_rcpt"]
    conf = config("inflight", [seed("h", "seed1@sink.test", "weekly")], retry=("1s",), give_up="3s",
                  senders=[sender(port=hang)])
    p = start_daemon(conf, "inflight")
    time.sleep(1.5)  # the attempt now hangs at RCPT (command timeout 5 s)
    p.kill()
    p.wait()
    rc, lines, err = probe_json_lines(conf, ["--due", "--wait", "1s"], timeout=60)
    first = lines[0] if lines else {}
    rep.check("in flight: the killed attempt is reported as interrupted, not resent",
              first.get("smtp", {}).get("attempts", [{}])[0].get("error", "").startswith("interrupted")
              and first["smtp"]["attempts"][0]["n"] == 1, "lines %s err %s" % (json.dumps(lines)[:700], err[-300:]))


# ---- SIGHUP, lock ----
def test_reload_and_lock():
    conf = config("hup", [seed("h1", "seed1@seed-a.test", "every 1s")])
    p = start_daemon(conf, "hup")
    wait_for(lambda: len(results("hup")) >= 1, 10)
    rc, out, err = mclab.run(["-c", conf, "run"], timeout=20)
    rep.check("lock: a second daemon is refused, exit 2, naming the pid", rc == 2 and "in use by another mailcanary" in err
              and str(p.pid) in err, "rc %d err %s" % (rc, err))
    rc, out, err = mclab.run(["-c", conf, "probe", "--due"], timeout=20)
    rep.check("lock: probe --due refused while the daemon runs", rc == 2 and "in use" in err, "rc %d err %s" % (rc, err))
    rc, out, err = mclab.run(["-c", conf, "probe", "h1"], timeout=30)
    rep.check("lock: a manual probe still runs (without the journal), with a warning", rc == 0 and "keeps no journal" in err,
              "rc %d err %s" % (rc, err))
    with open(conf) as f:
        good = f.read()
    assert "in_flight = 10;" in good
    with open(conf, "w") as f:
        f.write(good.replace("in_flight = 10;", "in_flight = -5;") + "bogus_key = 1;\n")
    p.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    n_before = len(results("hup"))
    time.sleep(2.5)
    log = daemon_log("hup")
    rep.check("SIGHUP broken config: still running", p.poll() is None)
    rep.check("SIGHUP broken config: errors logged with file:line", "event=reload status=failed" in log and
              ("%s:" % conf) in log and "bogus_key" in log and "in_flight" in log, log[-1500:])
    rep.check("SIGHUP broken config: still probing with the old configuration", len(results("hup")) > n_before)
    with open(conf, "w") as f:
        f.write(good.replace('"h1"', '"h2"'))
    p.send_signal(signal.SIGHUP)
    ok = wait_for(lambda: any(r["seed"] == "h2" for r in results("hup")), 10)
    rep.check("SIGHUP good config: reloaded, the renamed seed probed", ok and "event=reload status=ok" in daemon_log("hup"))
    rc = stop_daemon(p)
    rep.check("SIGTERM: exit 0", rc == 0, "rc %r" % rc)
    rc, out, err = mclab.run(["-c", conf, "probe", "--due"], timeout=30)
    rep.check("lock: free again after the daemon exits", rc in (0, 1) and "in use" not in err, "rc %d err %s" % (rc, err))


# ---- a corrupt journal ----
def test_corrupt_journal():
    conf = config("corrupt", [seed("c", grey_address(), "weekly")])
    rc, lines, err = probe_json_lines(conf, ["--due"])
    jpath = os.path.join(state_dir("corrupt"), "journal")
    with open(jpath, "rb") as f:
        good = f.read()
    wait_line = [x for x in good.split(b"\n") if b" wait " in x]
    with open(jpath, "wb") as f:
        f.write(b"garbage line\n")
        f.write(good)
        if wait_line:
            bad = bytearray(wait_line[0])
            bad[-3] ^= 0x20
            f.write(bytes(bad) + b"\n")
        f.write(b"0badc0de send id=x seed=y")  # torn last write
    time.sleep(GREY["delay"] + 0.5)
    rc, lines, err = probe_json_lines(conf, ["--due"])
    rep.check("corrupt journal: reported with file and line, skipped", "journal %s:1:" % jpath in err and
              "record skipped" in err and "corrupt record" in err, err[-800:])
    rep.check("corrupt journal: the valid pending retry still runs", len(lines) == 1 and
              lines[0]["smtp"]["outcome"] == "accepted" and lines[0]["smtp"]["attempts"][0]["outcome"] == "deferred",
              "rc %d %s" % (rc, json.dumps(lines)[:500]))


# ---- downtime: a missed slot is made up once; the daily budget ----
def test_catch_up_once():
    conf = config("catchup", [seed("c", "seed2@seed-b.test", "every 2s")])
    rc, l1, e1 = probe_json_lines(conf, ["--due"])
    rep.check("catch-up: first run probes the new seed once", rc == 0 and len(l1) == 1,
              "rc %d lines %d %s" % (rc, len(l1), e1[-300:]))
    time.sleep(7)  # three slots pass with nothing running
    rc, l2, e2 = probe_json_lines(conf, ["--due"])
    rep.check("catch-up: after downtime the missed slots are made up once, not as a burst",
              rc == 0 and len(l2) == 1, "rc %d lines %d" % (rc, len(l2)))
    rc, l3, _ = probe_json_lines(conf, ["--due"])
    # At most the one slot that may have come due since (a slow machine): never the backlog.
    rep.check("catch-up: an immediate third run repeats nothing", rc == 0 and len(l3) <= 1, "%d lines" % len(l3))


def test_daily_budget():
    conf = config("budget", [seed("b", "seed2@seed-b.test", "every 1s")], limits={"daily_budget": 2})
    p = start_daemon(conf, "budget")
    time.sleep(5)
    rc = stop_daemon(p)
    rs = results("budget")
    rep.check("daily budget: at most 2 attempts to the domain in a day", len(rs) == 2 and rc == 0,
              "%d results, rc %r" % (len(rs), rc))
    rc, lines, err = probe_json_lines(conf, ["--due"])
    rep.check("daily budget: counted across runs (the journal): probe --due sends nothing more", lines == [],
              "%d lines %s" % (len(lines), err[-300:]))


def test_sigterm_waits_for_running_only():
    """SIGTERM while an attempt runs: the daemon exits when it has finished, not after the grace."""
    conf = config("term", [seed("t", "seed1@sink.test", "every 1h")], senders=[sender(port=L["sinks"]["slow_eod"])])
    p = start_daemon(conf, "term")
    wait_for(lambda: "event=first" in daemon_log("term"), 5)
    time.sleep(0.3)  # the attempt now waits ~1 s for the end-of-data reply
    t0 = time.monotonic()
    rc = stop_daemon(p)
    took = time.monotonic() - t0
    rs = results("term")
    rep.check("SIGTERM: the running attempt finished and was recorded", len(rs) == 1 and
              rs[0]["smtp"]["outcome"] == "accepted", json.dumps(rs)[:400])
    rep.check("SIGTERM: exit 0 as soon as it finished (not after the 30 s grace)", rc == 0 and took < 5,
              "rc %r after %.1f s" % (rc, took))


test_sigterm_waits_for_running_only()
test_catch_up_once()
test_daily_budget()
test_greylist_retry()
test_no_wait_journals_retry()
test_due_three_runs()
test_daemon_schedule()
test_kill9_retry_once()
test_kill9_in_flight()
test_reload_and_lock()
test_corrupt_journal()
kill_all()
wd.cleanup()
rep.finish()
