#!/usr/bin/env python3
"""RRD files through the real CLI against the lab: a probe round writes one update per probe to
rrd_dir/[vantage/]SEED.rrd, and `rrdtool fetch` on the file gives back what the JSON result
reported (stage ms, total, the outcome flags, attempts, accept_after, and after a readback
delivery_s, inbox, missing and junk: a probe filed into Junk by the lab's Sieve rule and one never
found); a file of the layout before missing and junk is migrated in place with every value kept
(and, on a remote rrdcached, updated in its layout with one warning); a file of another layout is refused with an error naming it and left
byte for byte; the daemon (`run`) writes the same way; and with `rrdcached` configured the
updates go through a real rrdcached started here (on a unix socket, and on 127.0.0.1:PORT where
files are named relative to its base directory): its STATS count them, the file does not have
them before a FLUSH, and does after."""

import calendar
import json
import math
import os
import signal
import socket
import subprocess
import time
import zlib

import mclab

L = mclab.lab()
rep = mclab.Report("rrd")
wd = mclab.Workdir("rrd")
PF = L["postfix"]
IMAP = L["imap"]
USER = "seed1@seed-a.test"
STAGES = ["connect", "banner", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "eod"]
DS = STAGES + ["total", "delivery", "accepted", "deferred", "rejected", "failed", "inbox", "attempts",
               "accept_after", "missing", "junk"]
LEGACY_DS = DS[:-2]  # the layout before missing and junk
daemons = []  # rrdcached and mailcanary processes started here, stopped by pid


def stop(p, sig=signal.SIGTERM, timeout=30):
    if p.poll() is None:
        os.kill(p.pid, sig)
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        return p.wait()


def stop_all():
    for p in daemons:
        stop(p, timeout=10)


rep.guard(stop_all, wd.cleanup)


def sender(name, port):
    return {"name": name, "mode": "mx", "port": port, "helo": "probe.lab.test", "mail_from": "canary@lab.test",
            "tls": "none"}


SENDERS = [sender("pf", PF["mx"]), sender("ok", L["sinks"]["ok"]), sender("r432", L["sinks"]["rcpt432"])]


def seed(name, via, imap=False, schedule="hourly", headers=None):
    s = {"name": name, "address": USER if via == "pf" else "seed1@sink.test", "sender": via, "schedule": schedule}
    if headers:
        s["headers"] = headers
    if imap:
        s["imap"] = {"url": "imaps://127.0.0.1:%d/" % IMAP["imaps_port"], "username": USER,
                     "password_file": L["users"][USER]["secret_file"], "ca_file": L["ca_file"]}
    return s


def config(name, seeds, extra=""):
    # no retries: a deferral is final at once
    return wd.config(name, SENDERS, seeds, extra='retry: { schedule = []; };\nreadback: { timeout = "20s"; };\n' + extra)


def state(name):
    return os.path.join(wd.path, "state-" + name)


def probe(conf, *args, timeout=120):
    rc, out, err = mclab.run(["-c", conf, "probe", "--json"] + list(args), timeout=timeout)
    lines = [json.loads(x) for x in out.splitlines() if x.strip()]
    finals = {x["seed"]: x for x in lines if x.get("final")}
    return rc, finals, err


def epoch_s(iso):
    base, frac = iso.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))


def step_end(t, step):
    """The end of the step that holds t: where an aligned update lands."""
    return t if t % step == 0 else t - t % step + step


def fetch(path, cf, start, end):
    p = subprocess.run(["rrdtool", "fetch", path, cf, "--start", str(start), "--end", str(end)],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise RuntimeError("rrdtool fetch %s: %s" % (path, p.stderr))
    lines = p.stdout.splitlines()
    names = lines[0].split()
    rows = {}
    for ln in lines[1:]:
        if ":" in ln:
            ts, vals = ln.split(":", 1)
            rows[int(ts)] = dict(zip(names, [float(v) for v in vals.split()]))
    return names, rows


def info(path):
    p = subprocess.run(["rrdtool", "info", path], capture_output=True, text=True, timeout=30)
    out = {}
    for ln in p.stdout.splitlines():
        k, _, v = ln.partition(" = ")
        out[k] = v.strip('"')
    return out


def expected(r):
    """The values the RRD must hold for result r (None: unknown)."""
    s, rb = r["smtp"], r.get("readback", {})
    ms = s.get("ms", {})
    want = {d: ms.get(d) for d in STAGES}
    want["total"] = ms.get("total")
    for o in ("accepted", "deferred", "rejected", "failed"):
        want[o] = 1.0 if s["outcome"] == o else 0.0
    want["attempts"] = float(len(s["attempts"]))
    want["accept_after"] = s.get("accepted_after_s")
    want["delivery"] = rb.get("delivery_s") if rb.get("status") == "found" else None
    if rb.get("status") == "found":
        want["inbox"] = 1.0 if rb.get("folder") == "INBOX" and not rb.get("junk") else 0.0
        want["missing"] = 0.0
        want["junk"] = 1.0 if rb.get("junk") else 0.0
    elif rb.get("status") in ("missing", "bounced"):
        want["inbox"] = want["junk"] = 0.0
        want["missing"] = 1.0
    else:
        want["inbox"] = want["missing"] = want["junk"] = None
    return want


def same(got, want):
    if want is None:
        return math.isnan(got)
    return not math.isnan(got) and abs(got - want) <= 1e-6 + 1e-9 * abs(want)


def check_file(label, path, r, step=3600, cfs=("AVERAGE", "MIN", "MAX")):
    """The row of r's step in every archive at 1 step equals what r reported."""
    if not rep.check("%s: %s exists" % (label, os.path.basename(path)), os.path.exists(path), path):
        return
    t = step_end(epoch_s(r["sent_at"]), step)
    inf = info(path)
    rep.check("%s: step %d, last update at the end of the probe's step (%d)" % (label, step, t),
              inf.get("step") == str(step) and inf.get("last_update") == str(t),
              "step %s last_update %s" % (inf.get("step"), inf.get("last_update")))
    want = expected(r)
    for cf in cfs:
        names, rows = fetch(path, cf, t - 2 * step, t + step)
        row = rows.get(t)
        if not rep.check("%s: %s has a row at %d" % (label, cf, t), row is not None and names == DS,
                         "names %s rows %s" % (names, sorted(rows)[:5])):
            continue
        bad = ["%s got %r want %r" % (d, row[d], want[d]) for d in DS if not same(row[d], want[d])]
        rep.check("%s: %s values = the JSON result's" % (label, cf), not bad, "; ".join(bad))


def daemon_cmd(sock, cmd):
    """One rrdcached command over its socket (unix path or (host, port)); returns the lines."""
    if isinstance(sock, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock)
    else:
        s = socket.create_connection(sock)
    s.settimeout(10)
    f = s.makefile("rwb")
    f.write((cmd + "\n").encode())
    f.flush()
    first = f.readline().decode().rstrip("\n")
    n = int(first.split(" ", 1)[0])
    lines = [first] + [f.readline().decode().rstrip("\n") for _ in range(max(n, 0))]
    s.close()
    return lines


def stats(sock):
    return {k: int(v) for k, _, v in (ln.partition(": ") for ln in daemon_cmd(sock, "STATS")[1:])}


def start_rrdcached(name, listen, base):
    d = os.path.join(wd.path, name)
    os.makedirs(os.path.join(d, "journal"), exist_ok=True)
    os.makedirs(base, exist_ok=True)
    log = open(os.path.join(d, "rrdcached.log"), "ab")
    # -g: foreground; -w 3600: nothing is written to the files for an hour unless flushed
    p = subprocess.Popen(["rrdcached", "-g", "-l", listen, "-b", base, "-B", "-R", "-j", os.path.join(d, "journal"),
                          "-p", os.path.join(d, "rrdcached.pid"), "-w", "3600", "-z", "1"],
                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    daemons.append(p)
    return p


def wait_for(cond, timeout, step=0.1):
    return mclab.wait_for(cond, timeout, step)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------
# direct librrd updates: a round with a readback, a plain acceptance and a deferral

conf = config("direct", [seed("inbox", "pf", imap=True), seed("plain", "ok"), seed("defer", "r432")])
rc, fin, err = probe(conf)
rep.check("direct: exit 1 (one deferral), three final results", rc == 1 and sorted(fin) == ["defer", "inbox", "plain"],
          "rc %d finals %s err %s" % (rc, sorted(fin), err[-500:]))
rep.check("direct: nothing logged about the RRD files", "event=rrd" not in err, err[-500:])
rrd_dir = os.path.join(state("direct"), "rrd")
if "inbox" in fin:
    r = fin["inbox"]
    rep.check("direct inbox: accepted, found in INBOX with a delivery time",
              r["smtp"]["outcome"] == "accepted" and r["readback"]["status"] == "found"
              and r["readback"]["folder"] == "INBOX" and r["readback"].get("delivery_s") is not None,
              json.dumps(r)[:600])
    check_file("direct inbox", os.path.join(rrd_dir, "inbox.rrd"), r)
if "plain" in fin:
    check_file("direct plain", os.path.join(rrd_dir, "plain.rrd"), fin["plain"])
if "defer" in fin:
    r = fin["defer"]
    rep.check("direct defer: deferred at rcpt", r["smtp"]["outcome"] == "deferred" and r["smtp"]["stage"] == "rcpt",
              json.dumps(r["smtp"])[:400])
    check_file("direct defer", os.path.join(rrd_dir, "defer.rrd"), r)
rep.check("direct: no temporary files left in rrd_dir", sorted(os.listdir(rrd_dir)) == ["defer.rrd", "inbox.rrd", "plain.rrd"],
          str(os.listdir(rrd_dir)))

# a second round: a new row one step later (or, within the same hour, one second after the last)
before = info(os.path.join(rrd_dir, "plain.rrd")).get("last_update")
rc, fin2, err = probe(conf, "plain")
after = info(os.path.join(rrd_dir, "plain.rrd")).get("last_update")
if "plain" in fin2 and before and after:
    t2 = step_end(epoch_s(fin2["plain"]["sent_at"]), 3600)
    want = t2 if t2 > int(before) else int(before) + 1
    rep.check("direct: the next probe is written after the last update (%s -> %d)" % (before, want),
              int(after) == want, "last_update %s" % after)

# ---------------------------------------------------------------------------
# a final result journaled by a run that died before writing the detail log: the next run
# writes the line (journal repair) and its RRD update

def journal_record(body):
    crc = zlib.crc32(body.encode())
    return "%08x %s\n" % (crc, body)


def jenc(v):
    return "".join("%%%02X" % ord(c) if c in " %" or ord(c) < 0x20 else c for c in v)


if "plain" in fin:
    line = dict(fin["plain"])
    line["probe_id"] = "0" * 24 + "4e9a1c2b"
    conf = config("repair", [seed("plain", "ok")])
    os.makedirs(state("repair"))
    with open(os.path.join(state("repair"), "journal"), "w") as jf:
        jf.write(journal_record("seen seed=plain slot=%d" % int(time.time())))
        jf.write(journal_record("final id=%s seed=plain json=%s" % (
            line["probe_id"], jenc(json.dumps(line, separators=(",", ":"))))))
    rc, out, err = mclab.run(["-c", conf, "probe", "--due", "--json", "--wait", "1s"], timeout=60)
    with open(os.path.join(state("repair"), "results.jsonl")) as df:
        repaired = [json.loads(x) for x in df if x.strip()]
    rep.check("repair: the journaled final line is written to the detail log, nothing probed",
              [x["probe_id"] for x in repaired] == [line["probe_id"]] and rc == 0, "rc %d %s %s" % (
                  rc, [x["probe_id"] for x in repaired], err[-300:]))
    check_file("repair", os.path.join(state("repair"), "rrd", "plain.rrd"), line)

# ---------------------------------------------------------------------------
# a file of another layout is refused, named, and left as it was; probing goes on

conf = config("mismatch", [seed("plain", "ok")], extra='vantage = "lab1";\n')
path = os.path.join(state("mismatch"), "rrd", "lab1", "plain.rrd")
os.makedirs(os.path.dirname(path))
subprocess.run(["rrdtool", "create", path, "--step", "300", "DS:total:GAUGE:600:0:U", "RRA:AVERAGE:0.5:1:10"],
               check=True)
with open(path, "rb") as f:
    orig = f.read()
rc, fin, err = probe(conf)
rep.check("mismatch: the probe still ran (exit 0, accepted)", rc == 0 and "plain" in fin
          and fin["plain"]["smtp"]["outcome"] == "accepted", "rc %d err %s" % (rc, err[-400:]))
rep.check("mismatch: one warning naming the file and what differs",
          err.count("event=rrd status=failed") == 1 and path in err and "another layout" in err
          and "step 300 s, expected 3600 s" in err, err[-600:])
with open(path, "rb") as f:
    rep.check("mismatch: the file is byte for byte as it was", f.read() == orig)
rep.check("mismatch: nothing else created next to it", os.listdir(os.path.dirname(path)) == ["plain.rrd"],
          str(os.listdir(os.path.dirname(path))))

# ---------------------------------------------------------------------------
# missing and junk: a probe the lab's Sieve rule files into Junk puts 1 into junk, one that is
# never found (smtp-sink accepts and drops it) 1 into missing, each 0 into the other

conf = wd.config("placement", SENDERS, [seed("junk", "pf", imap=True, headers=["X-Lab-Junk: yes"]),
                                        seed("missing", "ok", imap=True)],
                 extra='retry: { schedule = []; };\nreadback: { timeout = "6s"; late = "0s"; };\n')
rc, fin, err = probe(conf)
rep.check("placement: junk found in the junk folder, missing not found",
          fin.get("junk", {}).get("readback", {}).get("junk") is True
          and fin.get("missing", {}).get("readback", {}).get("status") == "missing",
          "rc %d %s err %s" % (rc, json.dumps({k: v.get("readback") for k, v in fin.items()})[:600], err[-300:]))
for name, want_m, want_j in (("junk", 0.0, 1.0), ("missing", 1.0, 0.0)):
    if name not in fin:
        continue
    path = os.path.join(state("placement"), "rrd", name + ".rrd")
    check_file("placement " + name, path, fin[name], cfs=("AVERAGE", "MAX"))
    t = step_end(epoch_s(fin[name]["sent_at"]), 3600)
    names, rows = fetch(path, "AVERAGE", t - 3600, t)
    row = rows.get(t, {})
    rep.check("placement %s: rrdtool fetch gives missing %g, junk %g, inbox 0" % (name, want_m, want_j),
              row.get("missing") == want_m and row.get("junk") == want_j and row.get("inbox") == 0.0, str(row))

# ---------------------------------------------------------------------------
# a file of the layout before missing and junk is migrated in place and keeps its data


def legacy_args(ds):
    lim = {"accepted": "1", "deferred": "1", "rejected": "1", "failed": "1", "inbox": "1"}
    a = ["DS:%s:GAUGE:7200:0:%s" % (d, lim.get(d, "U")) for d in ds]
    for ppr, rows in ((1, 2400), (24, 731), (168, 522)):
        for cf in ("AVERAGE", "MIN", "MAX"):
            a.append("RRA:%s:0.5:%d:%d" % (cf, ppr, rows))
    return a + ["RRA:HWPREDICT:168:0.1:0.0035:24"]


conf = config("legacy", [seed("plain", "ok")])
path = os.path.join(state("legacy"), "rrd", "plain.rrd")
os.makedirs(os.path.dirname(path))
hour_now = int(time.time()) // 3600 * 3600
first = hour_now - 40 * 3600
subprocess.run(["rrdtool", "create", path, "--step", "3600", "--start", str(first - 3600)] + legacy_args(LEGACY_DS),
               check=True)
old_rows = {}
ups = []
for k in range(40):
    t = first + k * 3600
    vals = [str(k % 7 + 1)] * 9 + ["%d.5" % k, "3", "1", "0", "0", "0", str(k % 2), "1", "U"]
    old_rows[t] = vals
    ups.append("%d:%s" % (t, ":".join(vals)))
subprocess.run(["rrdtool", "update", path] + ups, check=True)
os.chmod(path, 0o640)
ino = os.stat(path).st_ino
names0, before = fetch(path, "AVERAGE", first - 3600, first + 40 * 3600)
rc, out, err = mclab.run(["-v", "-c", conf, "probe", "--json"], timeout=120)
fin = {x["seed"]: x for x in (json.loads(ln) for ln in out.splitlines() if ln.strip()) if x.get("final")}
rep.check("legacy: the probe ran (accepted), one line says the file was migrated",
          rc == 0 and "plain" in fin and err.count("event=rrd status=migrated file=%s" % path) == 1
          and "status=failed" not in err, "rc %d err %s" % (rc, err[-600:]))
inf = info(path)
rep.check("legacy: the file now has the 20 data sources in order (missing, junk last)",
          [k[3:-7] for k in sorted((k for k in inf if k.startswith("ds[") and k.endswith("].index")),
                                   key=lambda k: int(inf[k]))] == DS, str([k for k in inf if k.endswith("].index")]))
names1, after = fetch(path, "AVERAGE", first - 3600, first + 40 * 3600)
kept = [t for t in before if any(not math.isnan(before[t][d]) for d in names0)]
lost = ["%d %s" % (t, d) for t in kept for d in names0 if not same(after.get(t, {}).get(d, float("nan")), before[t][d])
        and not (math.isnan(before[t][d]) and math.isnan(after.get(t, {}).get(d, float("nan"))))]
rep.check("legacy: every value of the old file kept (%d rows), missing and junk unknown there" % len(kept),
          len(kept) >= 39 and not lost and all(math.isnan(after[t]["missing"]) and math.isnan(after[t]["junk"])
                                               for t in kept), "; ".join(lost[:5]))
if "plain" in fin:
    check_file("legacy new update", path, fin["plain"], cfs=("AVERAGE",))
st = os.stat(path)
rep.check("legacy: mode 0640 kept, a new file renamed into place, no temporary left",
          st.st_mode & 0o7777 == 0o640 and st.st_ino != ino and os.listdir(os.path.dirname(path)) == ["plain.rrd"],
          "mode %o ino %d/%d files %s" % (st.st_mode & 0o7777, st.st_ino, ino, os.listdir(os.path.dirname(path))))
rc, fin2, err = probe(conf)
rep.check("legacy: the next probe writes without migrating again", rc == 0 and "migrated" not in err
          and "status=failed" not in err, err[-300:])

# ---------------------------------------------------------------------------
# rrd = false: no RRD file, nothing logged about them, the probe as usual

conf = config("off", [seed("plain", "ok")], extra="rrd = false;\n")
rc, fin, err = probe(conf)
rep.check("rrd = false: the probe ran (accepted) and no rrd directory was made",
          rc == 0 and "plain" in fin and not os.path.exists(os.path.join(state("off"), "rrd"))
          and "event=rrd" not in err, "rc %d %s" % (rc, err[-300:]))

# ---------------------------------------------------------------------------
# the daemon writes the same way (one update per probe, readback included)

conf = config("run", [seed("inbox", "pf", imap=True), seed("plain", "ok")])
p = wd.start_daemon(conf, "run", daemons)


def run_finals():
    try:
        with open(os.path.join(state("run"), "results.jsonl")) as f:
            rs = [json.loads(x) for x in f if x.endswith("\n") and x.strip()]  # not a line being written
    except OSError:
        return {}
    return {x["seed"]: x for x in rs if x.get("final")}


ok = wait_for(lambda: len(run_finals()) == 2, 60)
rc = stop(p)
dlog = wd.log("run")
fin = run_finals()
rep.check("run: both seeds probed and final, exit 0 on SIGTERM", ok and rc == 0, "rc %r log %s" % (rc, dlog[-600:]))
rep.check("run: the files were created (logged once each)", dlog.count("event=rrd status=created") == 2, dlog[-600:])
for name in ("inbox", "plain"):
    if name in fin:
        check_file("run " + name, os.path.join(state("run"), "rrd", name + ".rrd"), fin[name], cfs=("AVERAGE",))

# ---------------------------------------------------------------------------
# cron mode: the readback of a probe sent by one `probe --due` run ends in the next run, which
# has nothing of the probe but its result line in the journal


def due_run(conf):
    rc, out, err = mclab.run(["-c", conf, "probe", "--due", "--json", "--wait", "0s"], timeout=120)
    return rc, [json.loads(x) for x in out.splitlines() if x.strip()], err


conf = config("due", [seed("inbox", "pf", imap=True)])
path = os.path.join(state("due"), "rrd", "inbox.rrd")
rc, lines, err = due_run(conf)
rep.check("due: the first run leaves the readback pending, no RRD update yet",
          len(lines) == 1 and lines[0]["readback"]["status"] == "pending" and not os.path.exists(path),
          "rc %d lines %s err %s" % (rc, json.dumps(lines)[:400], err[-300:]))
time.sleep(1.5)
rc, lines, err = due_run(conf)
finals = [x for x in lines if x.get("final")]
rep.check("due: the next run finishes the readback (found)", len(finals) == 1
          and finals[0]["readback"]["status"] == "found", "rc %d lines %s err %s" % (rc, json.dumps(lines)[:400], err[-300:]))
if finals:
    check_file("due inbox", path, finals[0], cfs=("AVERAGE",))

# ---------------------------------------------------------------------------
# rrdcached on a unix socket

base = os.path.join(wd.path, "cached-unix", "base")
sock = os.path.join(wd.path, "cached-unix", "rrdcached.sock")
cached = start_rrdcached("cached-unix", "unix:" + sock, base)
up = wait_for(lambda: os.path.exists(sock), 15)
rep.check("rrdcached (unix): started, socket %s" % sock, up and cached.poll() is None)
if up:
    s0 = stats(sock)
    conf = config("cached", [seed("inbox", "pf", imap=True), seed("plain", "ok")],
                  extra='rrd_dir = %s;\nrrdcached = %s;\nvantage = "lab1";\n' % (
                      mclab.q(os.path.join(base, "rrd")), mclab.q("unix:" + sock)))
    rc, fin, err = probe(conf)
    rep.check("rrdcached: exit 0, both final", rc == 0 and sorted(fin) == ["inbox", "plain"],
              "rc %d err %s" % (rc, err[-500:]))
    s1 = stats(sock)
    got = s1.get("UpdatesReceived", 0) - s0.get("UpdatesReceived", 0)
    rep.check("rrdcached: STATS count 2 updates received (one per probe)", got == 2, str(s1))
    rep.check("rrdcached: nothing written to the files yet", s1.get("DataSetsWritten", -1) == 0, str(s1))
    files = {n: os.path.join(base, "rrd", "lab1", n + ".rrd") for n in ("inbox", "plain")}
    if "plain" in fin and os.path.exists(files["plain"]):
        t = step_end(epoch_s(fin["plain"]["sent_at"]), 3600)
        names, rows = fetch(files["plain"], "AVERAGE", t - 7200, t + 3600)
        rep.check("rrdcached: before FLUSH the file does not have the value",
                  t in rows and math.isnan(rows[t]["total"]), str(rows.get(t)))
    flushed = [daemon_cmd(sock, "FLUSH " + files[n])[0] for n in ("inbox", "plain")]
    rep.check("rrdcached: FLUSH of both files answered 0", all(x.startswith("0 ") for x in flushed), str(flushed))
    # the daemon answers a FLUSH once written, and counts it a moment later
    wait_for(lambda: stats(sock).get("DataSetsWritten", 0) >= 2, 5)
    s2 = stats(sock)
    rep.check("rrdcached: STATS show the 2 data sets written", s2.get("DataSetsWritten") == 2, str(s2))
    for n in ("inbox", "plain"):
        if n in fin:
            check_file("rrdcached " + n, files[n], fin[n], cfs=("AVERAGE", "MAX"))
    # a file of the layout before missing and junk, with an update the daemon still holds: it is
    # flushed, then migrated in place; the held value and the new one both end up in the file
    lpath = os.path.join(base, "rrd", "lab1", "oldunix.rrd")
    hour = int(time.time()) // 3600 * 3600
    subprocess.run(["rrdtool", "create", lpath, "--step", "3600", "--start", str(hour - 7200)]
                   + legacy_args(LEGACY_DS), check=True)
    held = daemon_cmd(sock, "UPDATE %s %d:%s" % (lpath, hour - 3600, ":".join(["1"] * 9 + ["42", "U", "1", "0", "0",
                                                                                       "0", "U", "1", "U"])))
    conf = config("cached-legacy", [seed("oldunix", "ok")], extra='rrd_dir = %s;\nrrdcached = %s;\nvantage = "lab1";\n' % (
        mclab.q(os.path.join(base, "rrd")), mclab.q("unix:" + sock)))
    rc, out, err = mclab.run(["-v", "-c", conf, "probe", "--json"], timeout=120)
    fin = {x["seed"]: x for x in (json.loads(ln) for ln in out.splitlines() if ln.strip()) if x.get("final")}
    rep.check("rrdcached legacy: held update accepted, probe ran, the file migrated (logged), nothing failed",
              held[0].startswith("0 ") and rc == 0 and "oldunix" in fin and "event=rrd status=migrated file=%s" % lpath
              in err and "status=failed" not in err, "held %s rc %d err %s" % (held, rc, err[-500:]))
    fl = daemon_cmd(sock, "FLUSH " + lpath)[0]
    names, rows = fetch(lpath, "AVERAGE", hour - 7200, hour + 3600)
    rep.check("rrdcached legacy: after FLUSH the file has 20 data sources, the held total 42 and the probe's row",
              names == DS and same(rows.get(hour - 3600, {}).get("total", float("nan")), 42.0)
              and "oldunix" in fin and same(rows.get(step_end(epoch_s(fin["oldunix"]["sent_at"]), 3600), {}).get(
                  "total", float("nan")), fin["oldunix"]["smtp"]["ms"]["total"]),
              "flush %s names %s rows %s" % (fl, names, {t: r.get("total") for t, r in rows.items()}))
rc = stop(cached)
rep.check("rrdcached (unix): stopped by pid", rc is not None and cached.poll() is not None, "rc %r" % rc)

# ---------------------------------------------------------------------------
# rrdcached on 127.0.0.1:PORT: files named relative to its base directory, created through it

base = os.path.join(wd.path, "cached-tcp", "base")
port = free_port()
cached = start_rrdcached("cached-tcp", "127.0.0.1:%d" % port, base)


def tcp_up():
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


up = wait_for(tcp_up, 15)
rep.check("rrdcached (tcp): started on port %d" % port, up and cached.poll() is None)
if up:
    conf = config("tcp", [seed("plain", "ok")], extra='rrdcached = "127.0.0.1:%d";\n' % port)
    rc, fin, err = probe(conf)
    rep.check("rrdcached tcp: exit 0, nothing logged", rc == 0 and "plain" in fin and "event=rrd" not in err,
              "rc %d err %s" % (rc, err[-500:]))
    s1 = stats(("127.0.0.1", port))
    rep.check("rrdcached tcp: STATS count 1 update received", s1.get("UpdatesReceived") == 1, str(s1))
    path = os.path.join(base, "plain.rrd")
    rep.check("rrdcached tcp: the daemon created plain.rrd in its base directory, not in rrd_dir",
              os.path.exists(path) and not os.path.exists(os.path.join(state("tcp"), "rrd", "plain.rrd")))
    fl = daemon_cmd(("127.0.0.1", port), "FLUSH plain.rrd")[0]
    rep.check("rrdcached tcp: FLUSH answered 0", fl.startswith("0 "), fl)
    if "plain" in fin and os.path.exists(path):
        check_file("rrdcached tcp plain", path, fin["plain"], cfs=("AVERAGE",))
    # a file of the layout before missing and junk on the daemon's side: it cannot be migrated
    # through rrdcached; it is updated in its layout, with one warning that says how
    lpath = os.path.join(base, "old.rrd")
    subprocess.run(["rrdtool", "create", lpath, "--step", "3600", "--start", str(int(time.time()) // 3600 * 3600)]
                   + legacy_args(LEGACY_DS), check=True)
    conf = config("tcp-legacy", [seed("old", "ok")], extra='rrdcached = "127.0.0.1:%d";\n' % port)
    rc, fin, err = probe(conf)
    rep.check("rrdcached tcp legacy: the probe ran, one warning naming the file and the rrdtool tune command",
              rc == 0 and "old" in fin and err.count("event=rrd status=legacy") == 1 and "old.rrd" in err
              and "rrdtool tune" in err and "DS:missing:GAUGE:7200:0:1" in err and "status=failed" not in err,
              "rc %d err %s" % (rc, err[-600:]))
    fl = daemon_cmd(("127.0.0.1", port), "FLUSH old.rrd")[0]
    if "old" in fin:
        t = step_end(epoch_s(fin["old"]["sent_at"]), 3600)
        names, rows = fetch(lpath, "AVERAGE", t - 3600, t)
        row = rows.get(t, {})
        rep.check("rrdcached tcp legacy: the update is in the file (18 data sources, total %s)"
                  % fin["old"]["smtp"]["ms"].get("total"), names == LEGACY_DS and row
                  and same(row["total"], fin["old"]["smtp"]["ms"]["total"]), "flush %s names %s row %s" % (fl, names, row))
stop(cached)

# ---------------------------------------------------------------------------
# rrdcached configured but not running: probing goes on, one warning

conf = config("nodaemon", [seed("plain", "ok")],
              extra='rrdcached = %s;\n' % mclab.q("unix:" + os.path.join(wd.path, "nothing.sock")))
rc, fin, err = probe(conf)
rep.check("no rrdcached: the probe still ran (exit 0)", rc == 0 and "plain" in fin, "rc %d err %s" % (rc, err[-400:]))
rep.check("no rrdcached: one warning naming the daemon", err.count("event=rrd status=failed") == 1
          and "rrdcached unix:" in err, err[-400:])

# a relative socket path would depend on the working directory: refused by check-config
conf = config("relsock", [seed("plain", "ok")], extra='rrdcached = "unix:run/rrdcached.sock";\n')
rc, out, err = mclab.run(["-c", conf, "check-config"])
rep.check("check-config: a relative unix: socket path is refused (exit 2, FILE:LINE: rrdcached: ...)",
          rc == 2 and ("%s:" % conf) in err and 'rrdcached: "unix:run/rrdcached.sock" names a relative socket path' in err,
          "rc %d err %s" % (rc, err[-300:]))

stop_all()
wd.cleanup()
rep.finish()
