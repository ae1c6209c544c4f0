#!/usr/bin/env python3
"""RRD updates per second for N seed files (default 1,000 and 10,000): mailcanary's own store
code, directly with librrd and through a real rrdcached, side by side with the reference tool,
`rrdtool update`, in the same run and on the same files.

The files are created by mailcanary's store code (bench/mc_rrdstore, built from store/ by CMake:
store_rrd_update(), the function `run` and `probe` write every final result through; the first
update of a seed creates its file in the DESIGN.md layout for its schedule, here "hourly": step
1 h, AVERAGE/MIN/MAX at 1 step x 100 days, 1 day x 2 years, 1 week x 10 years, and the
Holt-Winters set). Every update writes all 18 data sources, one step after the file's last one.
Per N, in this order:

  direct     mailcanary: create (the first update of each seed creates its file), then R rounds
             of one update per seed, then R rounds with the Holt-Winters check of the alert hook
             after each update (one rrd_fetch of the FAILURES row);
             rrdtool update, one process per update (the first M seeds, one round);
             rrdtool update FILE with R values in one process per file (the first M seeds);
             rrdtool - (one process reading one "update FILE TIME:VALUES" line per update: every
             seed, R rounds)
  rrdcached  a real rrdcached on a unix socket in the scratch directory, started here and
             stopped by its pid (-w 1800 -z 900: nothing is written by the timer during the run);
             mailcanary: the first update of each existing file through the daemon (its layout
             check: the daemon's INFO), R rounds (rrdc_update), R rounds with the Holt-Winters
             check (the daemon's FETCH, which writes the file's pending values first), then a
             FLUSH of every file; the same three rrdtool variants with --daemon; at the end the
             daemon's STATS and a FLUSHALL.

CPU is user + system from wait4() of the measured process (with its children, e.g. every
rrdtool of a shell loop); mailcanary's phases come from its own getrusage(). rrdcached's CPU is
read from /proc/PID/stat at the start and end of each measured step.

usage: bench/rrd_updates.py [--rrdstore build/bench/mc_rrdstore] [--seeds 1000,10000]
                            [--rounds 2] [--per-process 1000] [--keep] [--write]
       (--write: replace the RRD-updates section of bench/RESULTS.md)
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import bench  # noqa: E402  (replace_results_block)
STEP = 3600
NDS = 18
MARK_BEGIN = "<!-- rrd-updates-bench:begin -->"
MARK_END = "<!-- rrd-updates-bench:end -->"
TICK = os.sysconf("SC_CLK_TCK")
DAEMONS = []  # rrdcached processes started here (subprocess.Popen)


def say(msg):
    print("bench/rrd_updates: " + msg, file=sys.stderr, flush=True)


def git_rev():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def proc_cpu(pid):
    """utime + stime of pid in seconds (0 when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except OSError:
        return 0.0


def values(seed_i, k):
    """The 18 values of one update (as mc_rrdstore writes them, varying a little)."""
    base = 5 + (seed_i % 17) * 0.25 + (k % 5) * 0.1
    stages = ["%.2f" % (base * (1 + i % 3)) if i != 4 else "U" for i in range(9)]
    return ":".join(stages + ["%.2f" % (base * 20), "%d" % (1 + k % 3), "1", "0", "0", "0", "1", "1", "U"])


def name(i):
    return "s%05d.rrd" % i


def wait_child(p, daemon_pid=None, d0=0.0, t0=0.0):
    """Waits for p (wait4): (wall s, cpu s, daemon cpu s)."""
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    d = proc_cpu(daemon_pid) - d0 if daemon_pid else 0.0
    if p.returncode != 0:
        raise RuntimeError("%s exited %d" % (p.args if isinstance(p.args, str) else " ".join(p.args), p.returncode))
    return wall, ru.ru_utime + ru.ru_stime, d


def run_measured(argv, stdin_path=None, daemon_pid=None, cwd=None):
    d0 = proc_cpu(daemon_pid) if daemon_pid else 0.0
    t0 = time.monotonic()
    fin = open(stdin_path) if stdin_path else subprocess.DEVNULL
    try:
        p = subprocess.Popen(argv, stdin=fin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd)
        return wait_child(p, daemon_pid, d0, t0)
    finally:
        if stdin_path:
            fin.close()


def mc_bench(rrdstore, d, n, rounds, start, daemon=None, daemon_pid=None):
    """mc_rrdstore bench: {phase: {...}} with the daemon's CPU per phase added."""
    argv = [rrdstore, "bench", d, "hourly", "--seeds", str(n), "--rounds", str(rounds), "--start", str(start)]
    if daemon:
        argv += ["--daemon", daemon]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    text = []
    last = proc_cpu(daemon_pid) if daemon_pid else 0.0
    daemon_cpu = {}
    for line in p.stdout:
        text.append(line)
        s = line.strip()
        if s.startswith('"') and daemon_pid:
            now = proc_cpu(daemon_pid)
            daemon_cpu[s.split('"')[1]] = now - last
            last = now
    err = p.stderr.read()
    if p.wait() != 0:
        raise RuntimeError("mc_rrdstore exited %d: %s" % (p.returncode, err))
    out = json.loads("".join(text))
    for k, v in daemon_cpu.items():
        if isinstance(out.get(k), dict):
            out[k]["daemon_cpu_s"] = v
    return out


def rrdcached_stats(sock_path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    s.sendall(b"STATS\n")
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        lines = buf.decode().splitlines()
        if lines and lines[0].split()[0].lstrip("-").isdigit() and len(lines) > int(lines[0].split()[0]):
            break
    s.close()
    out = {}
    for line in buf.decode().splitlines()[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = int(v.strip())
    return out


def rrdcached_cmd(sock_path, cmd):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    s.sendall((cmd + "\n").encode())
    r = s.recv(4096).decode()
    s.close()
    return r.strip()


def references(work, d, n, rounds, per_proc, t_next, daemon=None, daemon_pid=None):
    """The rrdtool rows; returns (rows, next time)."""
    rows = []
    dopt = ["--daemon", daemon] if daemon else []
    m = min(n, per_proc)
    # one process per update
    script = os.path.join(work, "per-process.sh")
    with open(script, "w") as f:
        for i in range(m):
            f.write("rrdtool update %s %s %d:%s\n" % (" ".join(dopt), os.path.join(d, name(i)), t_next,
                                                       values(i, 1)))
    w, c, dc = run_measured(["sh", script], daemon_pid=daemon_pid)
    rows.append(("`rrdtool update`, one process per update (first %d seeds)" % m, m, w, c, dc))
    t_next += STEP
    # R values per process, one process per file
    script = os.path.join(work, "batched.sh")
    with open(script, "w") as f:
        for i in range(m):
            vals = " ".join("%d:%s" % (t_next + k * STEP, values(i, k)) for k in range(rounds))
            f.write("rrdtool update %s %s %s\n" % (" ".join(dopt), os.path.join(d, name(i)), vals))
    w, c, dc = run_measured(["sh", script], daemon_pid=daemon_pid)
    rows.append(("`rrdtool update FILE` with %d values per process (first %d seeds)" % (rounds, m), m * rounds, w, c,
                 dc))
    t_next += rounds * STEP
    # rrdtool - : one process, one line per update
    lines = os.path.join(work, "pipe.txt")
    with open(lines, "w") as f:
        for k in range(rounds):
            for i in range(n):
                f.write("update %s %s %d:%s\n" % (" ".join(dopt), os.path.join(d, name(i)), t_next + k * STEP,
                                                  values(i, k)))
    w, c, dc = run_measured(["rrdtool", "-"], stdin_path=lines, daemon_pid=daemon_pid)
    rows.append(("`rrdtool -`, one process, one `update` line per update", n * rounds, w, c, dc))
    t_next += rounds * STEP
    return rows, t_next


def start_rrdcached(work, base):
    sock_path = os.path.join(work, "rrdcached.sock")
    jdir = os.path.join(work, "journal")
    os.makedirs(jdir, exist_ok=True)
    log = open(os.path.join(work, "rrdcached.log"), "wb")
    p = subprocess.Popen(["rrdcached", "-g", "-l", "unix:" + sock_path, "-p", os.path.join(work, "rrdcached.pid"),
                          "-j", jdir, "-b", base, "-B", "-w", "1800", "-z", "900", "-t", "4"],
                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    DAEMONS.append(p)
    for _ in range(100):
        if os.path.exists(sock_path):
            break
        if p.poll() is not None:
            raise RuntimeError("rrdcached exited %d" % p.returncode)
        time.sleep(0.05)
    return p, sock_path


def stop(p, timeout=120):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def du_bytes(d):
    total = 0
    for e in os.scandir(d):
        if e.is_file():
            total += e.stat().st_blocks * 512
    return total


def one_n(a, work, n):
    d = os.path.join(work, "rrd-%d" % n)
    os.makedirs(d)
    start = int(time.time()) - 400 * 86400
    start -= start % STEP
    say("%d seeds: mailcanary store, direct (creates the files)" % n)
    direct = mc_bench(a.rrdstore, d, n, a.rounds, start)
    size = du_bytes(d)
    t_next = direct["last_time"] + STEP
    say("%d seeds: rrdtool, direct" % n)
    ref_direct, t_next = references(work, d, n, a.rounds, a.per_process, t_next)
    say("%d seeds: rrdcached" % n)
    rc, sock_path = start_rrdcached(work, d)
    try:
        cached = mc_bench(a.rrdstore, d, n, a.rounds, t_next, daemon="unix:" + sock_path, daemon_pid=rc.pid)
        t_next = cached["last_time"] + STEP
        say("%d seeds: rrdtool --daemon" % n)
        ref_cached, t_next = references(work, d, n, a.rounds, a.per_process, t_next, daemon="unix:" + sock_path,
                                        daemon_pid=rc.pid)
        stats = rrdcached_stats(sock_path)
        d0 = proc_cpu(rc.pid)
        t0 = time.monotonic()
        flush_reply = rrdcached_cmd(sock_path, "FLUSHALL")
        # FLUSHALL only queues the files: wait for the queue to drain
        while rrdcached_stats(sock_path).get("QueueLength", 0) > 0:
            time.sleep(0.05)
        flushall = (time.monotonic() - t0, proc_cpu(rc.pid) - d0, flush_reply)
        daemon_total = proc_cpu(rc.pid)
    finally:
        stop(rc)
    if not a.keep:
        shutil.rmtree(d, ignore_errors=True)
    return {"n": n, "direct": direct, "ref_direct": ref_direct, "cached": cached, "ref_cached": ref_cached,
            "stats": stats, "flushall": flushall, "daemon_total": daemon_total, "size": size}


def fmt_row(label, ops, wall, cpu, dcpu=None):
    per_s = ops / wall if wall > 0 else 0
    return "| %s | %d | %.2f | %s | %.2f | %.0f |%s" % (
        label, ops, wall, "{:,.0f}".format(per_s), cpu, 1e6 * cpu / max(ops, 1),
        "" if dcpu is None else " %.2f |" % dcpu)


def report(a, results, started, elapsed, load0, load1):
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = "bench/rrd_updates.py --seeds %s --rounds %d --per-process %d --write" % (
        ",".join(str(x) for x in a.seeds), a.rounds, a.per_process)
    ver = subprocess.run(["rrdtool", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    out = [MARK_BEGIN, "## RRD updates per second: mailcanary's store vs `rrdtool update`, direct and rrdcached", "",
           "From `%s` (%s, whole run %.0f s, %s, %d cores, git %s, %s). Files in the DESIGN.md layout for an hourly "
           "seed, created by mailcanary's own store code (`bench/mc_rrdstore`, built from `store/`: "
           "`store_rrd_update()`, what `run` and `probe` call for every final result); every update writes all 18 "
           "data sources one step after the last. %d rounds per mailcanary phase; the one-process-per-update and "
           "batched `rrdtool` rows use the first %d seeds. CPU is user+system of the measured process (with its "
           "children for the shell loops), µs per update from it; rrdcached's own CPU in its column. Load average "
           "(1 min) %.1f at the start, %.1f at the end." % (
               cmd, when, elapsed, platform.node(), os.cpu_count(), git_rev(), ver, a.rounds, a.per_process,
               load0, load1), ""]
    for r in results:
        n = r["n"]
        dr, cr = r["direct"], r["cached"]
        out += ["### %s seed files (%.1f GiB on disk, %.2f MiB each)" % ("{:,}".format(n), r["size"] / 2**30,
                                                                        r["size"] / n / 2**20), "",
                "| path and client | updates | wall s | updates/s | client CPU s | µs CPU per update | rrdcached CPU s |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        ph = dr["create"]
        out.append(fmt_row("direct: mailcanary, first update creates the file", ph["ops"], ph["wall_s"],
                           ph["cpu_user_s"] + ph["cpu_sys_s"], 0.0))
        ph = dr["update"]
        out.append(fmt_row("direct: **mailcanary** (`rrd_update_r`)", ph["ops"], ph["wall_s"],
                           ph["cpu_user_s"] + ph["cpu_sys_s"], 0.0))
        ph = dr["update_hw"]
        out.append(fmt_row("direct: mailcanary + Holt-Winters check (one `rrd_fetch` FAILURES)", ph["ops"],
                           ph["wall_s"], ph["cpu_user_s"] + ph["cpu_sys_s"], 0.0))
        for label, ops, w, c, dc in r["ref_direct"]:
            out.append(fmt_row("direct: " + label, ops, w, c, 0.0))
        ph = cr["create"]
        out.append(fmt_row("rrdcached: mailcanary, first update per file (layout check: INFO)", ph["ops"],
                           ph["wall_s"], ph["cpu_user_s"] + ph["cpu_sys_s"], ph.get("daemon_cpu_s", 0)))
        ph = cr["update"]
        out.append(fmt_row("rrdcached: **mailcanary** (`rrdc_update`)", ph["ops"], ph["wall_s"],
                           ph["cpu_user_s"] + ph["cpu_sys_s"], ph.get("daemon_cpu_s", 0)))
        ph = cr["update_hw"]
        out.append(fmt_row("rrdcached: mailcanary + Holt-Winters check (FETCH, which flushes the file)", ph["ops"],
                           ph["wall_s"], ph["cpu_user_s"] + ph["cpu_sys_s"], ph.get("daemon_cpu_s", 0)))
        ph = cr["flush"]
        out.append(fmt_row("rrdcached: mailcanary FLUSH of every file (files, not updates)", ph["ops"], ph["wall_s"],
                           ph["cpu_user_s"] + ph["cpu_sys_s"], ph.get("daemon_cpu_s", 0)))
        for label, ops, w, c, dc in r["ref_cached"]:
            out.append(fmt_row("rrdcached: " + label.replace("`rrdtool update`", "`rrdtool update --daemon`")
                               .replace("`rrdtool update FILE`", "`rrdtool update --daemon FILE`")
                               .replace("`update` line", "`update --daemon` line"), ops, w, c, dc))
        st = r["stats"]
        fa = r["flushall"]
        out += ["", "rrdcached STATS before the final FLUSHALL: %s updates received, %s values (data sets) "
                "written to the files in %s `rrd_update_r` calls of the daemon, %s flushes received, journal %.1f MiB. The FLUSHALL of what was still cached "
                "took %.2f s wall, %.2f s of the daemon's CPU. rrdcached's CPU over the whole run: %.2f s." % (
                    "{:,}".format(st.get("UpdatesReceived", 0)), "{:,}".format(st.get("DataSetsWritten", 0)),
                    "{:,}".format(st.get("UpdatesWritten", 0)), "{:,}".format(st.get("FlushesReceived", 0)),
                    st.get("JournalBytes", 0) / 2**20, fa[0], fa[1], r["daemon_total"]), ""]
    out += ["How to read it:", "",
            "- librrd 1.7.2 updates a file through a shared `mmap` of the whole file (`strace`: open, `F_SETLK`, "
            "`mmap` MAP_SHARED, `madvise` RANDOM, writes, `munmap`; no `msync`, `fsync` or `fadvise`). So a direct "
            "update ends in the page cache; the kernel writes the dirty pages back later (`vm.dirty_expire_centisecs`"
            ", 30 s by default), outside the measured process. The figures are for a warm page cache (the files were "
            "just created, and the machine's RAM holds them); a cold cache adds a read of the file's header and of "
            "each archive's current row per update. Nothing here measures the disk's sync speed.",
            "- rrdcached takes an update into memory and its journal (no fsync of the journal either, without -F); "
            "with `-w 1800` it writes a file at most every 30 minutes, so its cost moves from the client to the "
            "daemon and to the final flush. The Holt-Winters check reads the FAILURES row through the daemon's FETCH, "
            "which writes the file's pending values first: with rrdcached and `alert.aberrations`, files with the "
            "Holt-Winters archives are written at every update (the row shows what that costs).",
            "- The one-process-per-update rows pay a process start, librrd's load and a file open per update; "
            "`rrdtool -` is rrdtool's own batching over many files (one process), `rrdtool update FILE v1 v2 ...` its "
            "batching within one file.",
            "- Other work shared the 2 cores during the run when the load average above is over 1: wall times then "
            "include waiting for a core; CPU figures are affected less.", MARK_END]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rrdstore", default=os.environ.get("MAILCANARY_RRDSTORE",
                                                         os.path.join(ROOT, "build", "bench", "mc_rrdstore")))
    ap.add_argument("--seeds", default="1000,10000")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--per-process", type=int, default=1000)
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    a.seeds = [int(x) for x in a.seeds.split(",") if x]
    if not os.access(a.rrdstore, os.X_OK):
        sys.exit("bench/rrd_updates: %s not built (cmake --build build --target mc_rrdstore)" % a.rrdstore)
    started = time.monotonic()
    load0 = os.getloadavg()[0]
    work = tempfile.mkdtemp(prefix="mcbench-rrd-")
    # a copy: a rebuild of build/ during the run does not change what is measured
    shutil.copy2(a.rrdstore, os.path.join(work, "mc_rrdstore"))
    a.rrdstore = os.path.join(work, "mc_rrdstore")
    results = []
    try:
        for n in a.seeds:
            results.append(one_n(a, work, n))
    finally:
        for p in DAEMONS:  # rrdcached instances started here, by pid, if still running
            stop(p)
        if a.keep:
            say("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    text = report(a, results, started, time.monotonic() - started, load0, os.getloadavg()[0])
    print(text)
    if a.write:
        path = bench.replace_results_block(text, MARK_BEGIN, MARK_END)
        say("wrote %s" % path)


if __name__ == "__main__":
    main()
