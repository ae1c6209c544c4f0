#!/usr/bin/env python3
"""Time of `mailcanary graph` for 100 seeds with filled RRD files, side by side with the
reference tool, `rrdtool graph`, run by a shell loop with the same graph definitions.

Sets up in a temporary directory a configuration with N hourly seeds, one RRD file per seed in
exactly the layout mailcanary creates for an hourly seed (step 1 h, heartbeat 2 h, AVERAGE/MIN/
MAX archives at 1 step x 100 days, 1 day x 2 years, 1 week x 10 years, and the Holt-Winters set),
filled with a year and a quarter of synthetic probes (stage times, outcomes with deferrals,
rejections, failures, junk and missing, delivery times, retries), and a detail log with a week
of results per seed. Then it measures, in the same run:

  mailcanary graph            --out DIR (all 4 periods x 4 graphs per seed, plus the pages),
                              with --jobs 1 and --jobs 2
  rrdtool graph, shell loop   the same graphs: `mailcanary graph --commands` prints each graph
                              as an `rrdtool graph` command line (the definitions mailcanary
                              hands to librrd); `sh` runs them one after the other

and checks that both produced the same number of PNGs, each of the configured size.

usage: bench/graph.py [--bin build/cli/mailcanary] [--seeds 100] [--runs 3] [--write]
                      (--write: replace the graph section at the end of bench/RESULTS.md)
"""

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import bench  # noqa: E402  (replace_results_block)
STAGES = ["connect", "banner", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "eod"]
DS = STAGES + ["total", "delivery", "accepted", "deferred", "rejected", "failed", "inbox", "attempts",
               "accept_after"]
STEP = 3600
MARK_BEGIN = "<!-- graph-bench:begin -->"
MARK_END = "<!-- graph-bench:end -->"


def create_args(path, start):
    """The `rrdtool create` arguments of store_rrd.c's layout for an hourly seed."""
    a = ["rrdtool", "create", path, "--step", str(STEP), "--start", str(start)]
    for d in DS:
        mx = "1" if d in ("accepted", "deferred", "rejected", "failed", "inbox") else "U"
        a.append("DS:%s:GAUGE:%d:0:%s" % (d, 2 * STEP, mx))
    for ppr, rows in ((1, 2400), (24, 731), (168, 522)):
        for cf in ("AVERAGE", "MIN", "MAX"):
            a.append("RRA:%s:0.5:%d:%d" % (cf, ppr, rows))
    a.append("RRA:HWPREDICT:168:0.1:0.0035:24")
    return a


def sample(rng, hour):
    """One synthetic probe: a dict of DS values (None: unknown)."""
    v = {d: None for d in DS}
    busy = 1.0 + 0.6 * (8 <= hour % 24 <= 18)
    ms = {"connect": rng.uniform(0.2, 2), "banner": rng.uniform(1, 40) * busy, "ehlo": rng.uniform(0.5, 4),
          "starttls": rng.uniform(8, 30), "auth": None, "mail": rng.uniform(0.3, 3),
          "rcpt": rng.uniform(0.5, 8) * busy, "data": rng.uniform(0.3, 2), "eod": rng.uniform(5, 120) * busy}
    r = rng.random()
    outcome = "accepted" if r < 0.93 else "deferred" if r < 0.97 else "rejected" if r < 0.98 else "failed" \
        if r < 0.995 else "unknown"
    stage_end = {"accepted": "eod", "deferred": "rcpt", "rejected": "eod", "failed": "banner",
                 "unknown": "eod"}[outcome]
    for s in STAGES:
        if ms[s] is not None:
            v[s] = ms[s]
        if s == stage_end:
            break
    if outcome == "failed":
        v["banner"] = None
    v["total"] = sum(x for x in (v[s] for s in STAGES) if x is not None) + rng.uniform(0.5, 3)
    for o in ("accepted", "deferred", "rejected", "failed"):
        v[o] = 1.0 if outcome == o else 0.0
    v["attempts"] = 1.0
    if outcome == "accepted":
        if rng.random() < 0.06:  # greylisted first, accepted on retry
            v["attempts"] = float(rng.choice([2, 2, 2, 3]))
            v["accept_after"] = 300.0 * (v["attempts"] - 1) + rng.uniform(1, 20)
        else:
            v["accept_after"] = v["total"] / 1000.0
        p = rng.random()
        if p < 0.93:
            v["inbox"], v["delivery"] = 1.0, float(int(rng.lognormvariate(1.2, 0.8)))
        elif p < 0.97:
            v["inbox"], v["delivery"] = 0.0, float(int(rng.lognormvariate(1.5, 0.8)))  # junk
        else:
            v["inbox"] = 0.0  # missing
    elif outcome == "deferred":
        v["attempts"] = 5.0
    return v


def fill(path, seed, end, days):
    rng = random.Random(seed)
    start = end - days * 86400
    start -= start % STEP
    subprocess.run(create_args(path, start - STEP), check=True)
    batch = []
    t = start
    while t <= end:
        v = sample(rng, t // STEP)
        batch.append("%d:%s" % (t, ":".join("U" if v[d] is None else "%.6g" % v[d] for d in DS)))
        t += STEP
        if len(batch) >= 2000:
            subprocess.run(["rrdtool", "update", path] + batch, check=True)
            batch = []
    if batch:
        subprocess.run(["rrdtool", "update", path] + batch, check=True)


def result_line(rng, seed, t):
    outcome = "accepted" if rng.random() < 0.9 else rng.choice(["deferred", "rejected", "failed"])
    sent = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    smtp = {"outcome": outcome, "stage": "eod" if outcome == "accepted" else "rcpt",
            "code": 250 if outcome == "accepted" else 451 if outcome == "deferred" else 550,
            "enhanced": "2.0.0" if outcome == "accepted" else "4.7.1" if outcome == "deferred" else "5.7.1",
            "text": "Ok: queued as 4Xy" if outcome == "accepted" else "Greylisted <try again>",
            "mx": "mx.%s.test" % seed, "ip": "127.0.0.1", "port": 25,
            "ms": {"connect": 0.3, "banner": 4.1, "ehlo": 0.8, "mail": 0.4, "rcpt": 1.1, "data": 0.3, "eod": 9.5,
                   "total": 17.2},
            "attempts": [{"n": 1, "outcome": outcome}], "warnings": []}
    rb = {"status": "found", "folder": "INBOX", "junk": False, "placement": "ok", "delivery_s": 2} \
        if outcome == "accepted" else {"status": "skipped"}
    return json.dumps({"seed": seed, "probe_id": "%s-%d" % (seed, t), "sent_at": sent, "smtp": smtp, "readback": rb,
                       "final": True}, separators=(",", ":"))


def setup(work, n, days, now):
    state = os.path.join(work, "state")
    rrd = os.path.join(state, "rrd")
    os.makedirs(rrd)
    names = ["seed%03d" % i for i in range(n)]
    templates = []
    for i in range(min(4, n)):  # four differently filled files, copied round robin
        p = os.path.join(work, "template%d.rrd" % i)
        fill(p, i, now, days)
        templates.append(p)
    for i, name in enumerate(names):
        shutil.copyfile(templates[i % len(templates)], os.path.join(rrd, name + ".rrd"))
    rng = random.Random(7)
    with open(os.path.join(state, "results.jsonl"), "w") as f:
        for h in range(7 * 24, 0, -1):
            for name in names:
                f.write(result_line(rng, name, now - h * 3600) + "\n")
    conf = os.path.join(work, "bench.conf")
    with open(conf, "w") as f:
        f.write('state_dir = "%s";\n' % state)
        f.write('senders = ( { name = "direct"; mode = "mx"; helo = "bench.test"; mail_from = "canary@bench.test"; } );\n')
        f.write("seeds = (\n" + ",\n".join(
            '  { name = "%s"; address = "seed@%s.test"; sender = "direct"; schedule = "hourly"; }' % (s, s)
            for s in names) + "\n);\n")
    return conf, names


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def count_pngs(d, width, height):
    n = bad = 0
    for root, _, files in os.walk(d):
        for f in files:
            if f.endswith(".png"):
                n += 1
                if png_size(os.path.join(root, f)) != (width, height):
                    bad += 1
    return n, bad


def timed(cmd, **kw):
    t0 = time.monotonic()
    r0 = os.times()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    r1 = os.times()
    wall = time.monotonic() - t0
    cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd[:4]), p.returncode, p.stderr[-800:]))
    return wall, cpu


def git_rev():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "?"
    except Exception:
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("MAILCANARY_BIN", os.path.join(ROOT, "build", "cli", "mailcanary")))
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--days", type=int, default=460)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--width", type=int, default=800)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    t_start = time.monotonic()
    work = tempfile.mkdtemp(prefix="mcbench-graph-")
    try:
        now = int(time.time())
        print("bench/graph: filling %d RRD files (%d days of hourly probes) in %s" % (a.seeds, a.days, work),
              file=sys.stderr)
        t0 = time.monotonic()
        conf, names = setup(work, a.seeds, a.days, now)
        fill_s = time.monotonic() - t0
        size = ["--width", str(a.width), "--height", str(a.height)]
        rows = []
        out_n = {}
        for jobs in (1, 2):
            walls, cpus = [], []
            for r in range(a.runs):
                out = os.path.join(work, "out-j%d-%d" % (jobs, r))
                w, c = timed([a.bin, "-c", conf, "graph", "--out", out, "--jobs", str(jobs)] + size)
                walls.append(w)
                cpus.append(c)
                out_n[jobs] = count_pngs(out, a.width, a.height)
                print("bench/graph: mailcanary graph --jobs %d run %d: %.2f s" % (jobs, r + 1, w), file=sys.stderr)
            rows.append(("`mailcanary graph --jobs %d`" % jobs, walls, cpus, out_n[jobs]))
        # the reference: the same definitions through rrdtool, one process per graph
        ref = os.path.join(work, "out-ref")
        os.makedirs(ref)
        p = subprocess.run([a.bin, "-c", conf, "graph", "--commands", "--out", ref] + size, capture_output=True,
                           text=True, check=True)
        script = os.path.join(work, "ref.sh")
        dirs = sorted({os.path.dirname(ln.split(" ", 3)[2].strip("'")) for ln in p.stdout.splitlines() if ln})
        with open(script, "w") as f:
            f.write("set -e\n")
            for d in dirs:
                f.write("mkdir -p '%s'\n" % d)
            f.write(p.stdout)
        n_cmds = len([ln for ln in p.stdout.splitlines() if ln.startswith("rrdtool ")])
        walls, cpus = [], []
        for r in range(a.runs):
            w, c = timed(["sh", script])
            walls.append(w)
            cpus.append(c)
            print("bench/graph: rrdtool graph loop run %d: %.2f s" % (r + 1, w), file=sys.stderr)
        rows.append(("`rrdtool graph` x %d, shell loop (reference)" % n_cmds, walls, cpus, count_pngs(ref, a.width,
                                                                                                     a.height)))
        total_s = time.monotonic() - t_start
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        lines = [MARK_BEGIN, "## Graphs: `mailcanary graph` for %d seeds" % a.seeds, "",
                 "From `bench/graph.py --write` (%s, whole run %.0f s, %s, %d cores, git %s). %d hourly seeds, each "
                 "with an RRD file in mailcanary's layout filled with %d days of synthetic probes (filling took %.0f s, "
                 "not timed), and a week of results per seed in the detail log (%d lines). One run draws %d "
                 "graphs per seed (4 kinds x 4 periods, %dx%d) and, for mailcanary, writes the %d pages. The reference "
                 "runs the same graph definitions (printed by `mailcanary graph --commands`) with `rrdtool graph`, "
                 "one process per graph, from `sh`. Median of %d runs; CPU is user+system of the child processes."
                 % (when, total_s, platform.node(), os.cpu_count(), git_rev(), a.seeds, a.days, fill_s, a.seeds * 168,
                    16, a.width, a.height, a.seeds + 1, a.runs), "",
                 "| command | PNGs (all %dx%d) | wall s, median (min–max) | CPU s, median | ms per graph (wall) |"
                 % (a.width, a.height), "|---|---:|---:|---:|---:|"]
        for name, walls, cpus, (n, bad) in rows:
            lines.append("| %s | %d%s | %.2f (%.2f–%.2f) | %.2f | %.1f |" % (
                name, n, "" if bad == 0 else " (%d of another size)" % bad, statistics.median(walls), min(walls),
                max(walls), statistics.median(cpus), 1000 * statistics.median(walls) / max(n, 1)))
        j1 = statistics.median(rows[0][1])
        ref_w = statistics.median(rows[2][1])
        c1, cref = statistics.median(rows[0][2]), statistics.median(rows[2][2])
        load = os.getloadavg()[1]
        lines += ["", "mailcanary with one process is %.1fx faster than the rrdtool loop in wall time (%.1f vs %.1f s) "
                      "and uses %.1fx less CPU (%.1f vs %.1f ms per graph: the loop starts a process and sets up "
                      "fonts per graph). `--jobs 2` draws in two forked workers. Load average over the last 5 "
                      "minutes at the end: %.1f%s." % (
                          ref_w / j1 if j1 else 0, j1, ref_w, cref / c1 if c1 else 0, 1000 * c1 / max(rows[0][3][0], 1),
                          1000 * cref / max(rows[2][3][0], 1), load,
                          " (other work on the machine: wall times above CPU times are waiting for a core)"
                          if load > 1.5 else ""), MARK_END]
        text = "\n".join(lines) + "\n"
        print(text)
        if a.write:
            path = bench.replace_results_block(text, MARK_BEGIN, MARK_END)
            print("bench/graph: wrote %s" % path, file=sys.stderr)
    finally:
        if a.keep:
            print("bench/graph: kept %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
