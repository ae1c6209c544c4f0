#!/usr/bin/env python3
"""Scheduler benchmark: `mailcanary run` with many seeds on a compressed schedule
("every 60s") against smtp-sink, and Postfix's smtp-source sending the same messages per
second to the same sink, in one run. Python 3 standard library only; run as root (like
bench.py: it shares its helpers, servers and port registry).

    python3 bench/daemon.py [--seeds 10000] [--intervals 4] [--write] [--bin PATH]
    python3 bench/daemon.py --cleanup DIR     stop what a killed run left behind

Normally started through bench/daemon.sh (hard stop, cleanup trap). See bench/README.md.
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (bench.py: Servers, cleanup, measure, machine, parse_ts, q, ...)
from bench import HOST, HELO, MC_SENDER, NOFILE, SMTP_SOURCE_LEN, say  # noqa: E402

ROOT = bench.ROOT
RESULTS = os.path.join(HERE, "RESULTS.md")
BEGIN = "<!-- daemon-bench:begin (bench/daemon.py --write replaces the blocks below by seed count) -->"
END = "<!-- daemon-bench:end -->"
SAMPLE_S = 0.5                # /proc sampling period (interval boundaries fall on samples)
SINK_OPTS = ["-m", "2000"]
SINK_BACKLOG = 2000
STOP_AT_FRAC = 0.03          # SIGTERM this far into a wall-clock second (slots are due on whole seconds)
STOP_WAIT_S = 60              # SIGTERM -> exit must happen within this (the daemon's grace is 30 s)


# ---------------------------------------------------------------------------
# configuration

def fnv_offset(name, period):
    """conf/schedule.c schedule_offset(): FNV-1a 64 of the seed name, mod the interval."""
    h = 14695981039346656037
    for c in name.encode():
        h ^= c
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h % period


def seeds_for(n, domains):
    """Distinct names and addresses; seed i goes to domain i % domains (the per-domain key)."""
    return [("s%05d" % i, "seed%05d@d%03d.sink.test" % (i, i % domains)) for i in range(n)]


def write_config(path, state_dir, port, seeds, interval_s, in_flight):
    q = bench.q
    t = ['state_dir = %s;' % q(state_dir),
         'timeouts: { connect = "30s"; banner = "60s"; command = "60s"; data = "60s"; eod = "60s"; };',
         'limits: { in_flight = %d; per_domain = 1; spacing = "0s"; daily_budget = 0; };' % in_flight,
         '# retry: the default schedule',
         'rrd = false;  # the SMTP probe is measured here; RRD writing has its own benchmark',
         '# The analysis reads every result from results.jsonl: at 10,000 seeds a minute the default',
         '# 64 MiB rotation would move the first minutes to results.jsonl.1 before it reads them.',
         'detail_log: { max_size = 0; };',
         'senders = (',
         '  { name = "sink"; mode = "relay"; host = %s; port = %d; helo = %s; mail_from = %s; tls = "none"; }'
         % (q(HOST), port, q(HELO), q(MC_SENDER)),
         ');',
         'seeds = (']
    t.append(",\n".join('  { name = %s; address = %s; sender = "sink"; schedule = "every %ds"; }' % (
        q(n), q(a), interval_s) for n, a in seeds))
    t.append(');')
    with open(path, "w") as f:
        f.write("\n".join(t) + "\n")


# ---------------------------------------------------------------------------
# /proc sampling of the running daemon

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_sample(pid, files):
    """(utime+stime s, utime s, stime s, VmRSS KiB, VmHWM KiB, RssAnon KiB, threads, fds, {file: size})."""
    with open("/proc/%d/stat" % pid) as f:
        st = f.read().rsplit(")", 1)[1].split()
    ut, stime = int(st[11]) / CLK_TCK, int(st[12]) / CLK_TCK
    rss = hwm = anon = thr = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == "VmRSS":
                rss = int(v.split()[0])
            elif k == "VmHWM":
                hwm = int(v.split()[0])
            elif k == "RssAnon":
                anon = int(v.split()[0])
            elif k == "Threads":
                thr = int(v.split()[0])
    try:
        fds = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        fds = 0
    sizes = {}
    for name, p in files.items():
        try:
            sizes[name] = os.stat(p).st_size
        except OSError:
            sizes[name] = 0
    return {"cpu": ut + stime, "user": ut, "sys": stime, "rss": rss, "hwm": hwm, "anon": anon,
            "threads": thr, "fds": fds, "sizes": sizes}


class Sampler(threading.Thread):
    """Samples the daemon every SAMPLE_S on a fixed grid from t0 (monotonic), so that the
    interval boundaries t0 + k*interval are sample points."""

    def __init__(self, pid, t0, files):
        super().__init__(daemon=True)
        self.pid, self.t0, self.files = pid, t0, files
        self.samples = []          # (t - t0, sample)
        self.stop = threading.Event()

    def run(self):
        k = 0
        while not self.stop.is_set():
            due = self.t0 + k * SAMPLE_S
            d = due - time.monotonic()
            if d > 0 and self.stop.wait(d):
                break
            try:
                s = proc_sample(self.pid, self.files)
            except (OSError, ValueError, IndexError):
                break
            self.samples.append((k * SAMPLE_S, s))
            k += 1

    def at(self, t):
        """The sample taken at (or right after) t seconds from t0."""
        for ts, s in self.samples:
            if ts >= t - 1e-6:
                return s
        return self.samples[-1][1] if self.samples else None


# x86_64 syscall numbers the event loop spends time in (others are shown by number)
SYSCALLS = {"0": "read", "1": "write", "3": "close", "7": "poll", "74": "fsync", "75": "fdatasync",
            "82": "rename", "83": "mkdir", "202": "futex", "232": "epoll_wait", "233": "epoll_ctl",
            "257": "openat", "262": "newfstatat", "281": "epoll_pwait", "441": "epoll_pwait2",
            "44": "sendto", "45": "recvfrom", "42": "connect", "41": "socket", "20": "writev"}


class LoopProfile(threading.Thread):
    """Where the daemon's one event-loop thread spends wall time: every PROFILE_S, what
    /proc/PID/syscall says (the syscall it is blocked in, or "running" on the CPU). Only
    samples from t_from (s after t0) on are kept: the steady window."""
    PROFILE_S = 0.01

    def __init__(self, pid, t0, t_from, t_to):
        super().__init__(daemon=True)
        self.path = "/proc/%d/syscall" % pid
        self.t0, self.t_from, self.t_to = t0, t_from, t_to
        self.counts = {}
        self.win = {}              # 10 s window (s after t0, floored) -> {state: samples}
        self.n = 0
        self.stop = threading.Event()

    def run(self):
        d = self.t0 + self.t_from - time.monotonic()
        if d > 0 and self.stop.wait(d):
            return
        try:
            f = open(self.path, "rb", buffering=0)
        except OSError:
            return
        with f:
            while not self.stop.is_set() and time.monotonic() < self.t0 + self.t_to:
                try:
                    f.seek(0)
                    v = f.read(200).split(b" ", 1)[0].decode()
                except OSError:
                    break
                k = "runnable (on a CPU or waiting for one)" if v.startswith("running") else (
                    "not in a syscall (page fault, preempted)" if v == "-1" else SYSCALLS.get(v, "syscall " + v))
                self.counts[k] = self.counts.get(k, 0) + 1
                wc = self.win.setdefault(int((time.monotonic() - self.t0) // 10) * 10, {})
                wc[k] = wc.get(k, 0) + 1
                self.n += 1
                time.sleep(self.PROFILE_S)


class DiskProbe(threading.Thread):
    """The disk's sync latency while the daemon runs: every 0.5 s, append 300 bytes to a file
    next to the state directory and time fdatasync() (what the daemon's journal does twice
    per probe). Kept per 10 s window (s after t0)."""

    def __init__(self, path, t0):
        super().__init__(daemon=True)
        self.path, self.t0 = path, t0
        self.all = []
        self.win = {}
        self.stop = threading.Event()

    def run(self):
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while not self.stop.wait(0.5):
                os.write(fd, b"x" * 299 + b"\n")
                t = time.monotonic()
                os.fdatasync(fd)
                ms = (time.monotonic() - t) * 1000
                self.all.append((t - self.t0, ms))
                self.win.setdefault(int((t - self.t0) // 10) * 10, []).append(ms)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------
# statistics

def pct(v, p):
    if not v:
        return None
    a = sorted(v)
    return a[min(len(a) - 1, int(round(p / 100.0 * (len(a) - 1))))]


def dist(v, scale=1.0):
    if not v:
        return None
    return {"n": len(v), "p50": pct(v, 50) * scale, "p95": pct(v, 95) * scale, "p99": pct(v, 99) * scale,
            "max": max(v) * scale, "mean": statistics.mean(v) * scale}


def fmt_dist(d, digits=1):
    if not d:
        return "–"
    return " / ".join("%.*f" % (digits, d[k]) for k in ("p50", "p95", "p99", "max"))


def f1(x, d=1):
    return "–" if x is None else "%.*f" % (d, x)


# ---------------------------------------------------------------------------

class DaemonBench:
    def __init__(self, a):
        self.a = a
        self.dir = a.workdir
        self.notes = []
        self.problems = []
        self.load_start = bench.loadavg()
        self.ref = None
        self.floor = None
        self.swaks = None

    def setup(self):
        os.makedirs(os.path.join(self.dir, "log"), exist_ok=True)
        self.bin = os.path.join(self.dir, "mailcanary")
        shutil.copy2(self.a.bin, self.bin)
        with open(self.bin, "rb") as f:
            self.bin_sha = hashlib.sha256(f.read()).hexdigest()[:16]
        self.mc_version = subprocess.run([self.bin, "version"], capture_output=True, text=True).stdout.strip()
        self.git = bench.git_rev()
        self.bin_mtime = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(os.stat(self.a.bin).st_mtime))
        self.srv = bench.Servers(self.dir)
        self.port, = self.srv.pick_ports(1)
        self.cmd_sink = self.srv.sink("sink", self.port, SINK_OPTS, SINK_BACKLOG)
        self.srv.wait_ready([("sink", lambda: bench.lab.greeting_ok(HOST, self.port, "220"))])
        say("sink up on %d: %s" % (self.port, " ".join(self.cmd_sink)))
        self.state = os.path.join(self.dir, "state")
        self.conf = os.path.join(self.dir, "daemon.conf")
        self.seeds = seeds_for(self.a.seeds, self.a.domains)
        write_config(self.conf, self.state, self.port, self.seeds, self.a.interval, self.a.in_flight)
        chk = subprocess.run([self.bin, "-c", self.conf, "check-config"], capture_output=True, text=True)
        if chk.returncode != 0:
            raise RuntimeError("check-config: %s%s" % (chk.stdout, chk.stderr[-2000:]))
        self.fs = (subprocess.run(["df", "--output=fstype", self.dir], capture_output=True, text=True).stdout.split()
                   or ["?"])[-1]
        # expected due seconds per phase of the interval (the scheduler's FNV offsets)
        self.per_phase = [0] * self.a.interval
        for name, _ in self.seeds:
            self.per_phase[fnv_offset(name, self.a.interval)] += 1

    # -- the daemon ---------------------------------------------------------

    def run_daemon(self):
        a = self.a
        S, K = a.interval, a.intervals
        self.errlog = os.path.join(self.dir, "daemon.stderr")
        files = {"results": os.path.join(self.state, "results.jsonl"), "journal": os.path.join(self.state, "journal"),
                 "stderr": self.errlog}
        argv = [self.bin, "-c", self.conf, "run"]
        with open(self.errlog, "wb") as fe:
            self.t0_wall = time.time()
            self.t0 = time.monotonic()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=fe,
                                 preexec_fn=bench._limits(NOFILE), close_fds=True)
        self.pid = p.pid
        self.srv.pids["daemon"] = p.pid           # so that --cleanup stops it after a kill
        self.srv._record()
        sm = Sampler(p.pid, self.t0, files)
        sm.start()
        self.prof = LoopProfile(p.pid, self.t0, S, (K + 1) * S)
        self.disk = DiskProbe(os.path.join(self.dir, "fdatasync-probe"), self.t0)
        if not a.no_profile:
            self.prof.start()
            self.disk.start()
        say("mailcanary run: pid %d, %d seeds over %d domains, every %ds, in_flight %d; %d intervals "
            "(1 burst + %d steady)" % (p.pid, a.seeds, a.domains, S, a.in_flight, K + 1, K))
        end = self.t0 + (K + 1) * S + SAMPLE_S     # the last boundary's sample is taken
        status = ru = None
        try:
            while time.monotonic() < end:
                r = os.waitpid(p.pid, os.WNOHANG)
                if r[0] == p.pid:
                    status = r[1]
                    break
                i = int((time.monotonic() - self.t0) // S)
                time.sleep(min(5.0, max(0.05, end - time.monotonic())))
                j = int((time.monotonic() - self.t0) // S)
                if j != i and sm.samples:
                    s = sm.samples[-1][1]
                    say("  interval %d done: CPU %.2f s so far, RSS %.1f MiB, HWM %.1f MiB, results %.1f MB" % (
                        i, s["cpu"], s["rss"] / 1024, s["hwm"] / 1024, s["sizes"]["results"] / 1e6))
            if status is None:
                # SIGTERM 30 ms after a whole second: the slots of that second are due, so
                # attempts are running when the stop begins (the stop with work in flight)
                time.sleep((STOP_AT_FRAC - time.time() % 1.0) % 1.0)
                last = proc_sample(p.pid, files)
                self.t_term = time.monotonic()
                self.t_term_wall = time.time()
                os.kill(p.pid, signal.SIGTERM)
                timer = threading.Timer(STOP_WAIT_S, lambda: os.kill(p.pid, signal.SIGKILL))
                timer.start()
                _, status, ru = os.wait4(p.pid, 0)
                self.stop_s = time.monotonic() - self.t_term
                timer.cancel()
                self.last = last
            else:
                self.problems.append(("the daemon exited by itself", "status %s after %.1f s" % (
                    status, time.monotonic() - self.t0)))
                self.stop_s = None
                self.last = sm.samples[-1][1] if sm.samples else None
        except BaseException:
            try:
                os.kill(p.pid, signal.SIGKILL)
                os.waitpid(p.pid, 0)
            except OSError:
                pass
            raise
        finally:
            sm.stop.set()
            sm.join(2)
            self.prof.stop.set()
            self.disk.stop.set()
            for th in (self.prof, self.disk):
                if th.is_alive():
                    th.join(2)
            self.srv.pids.pop("daemon", None)
            self.srv._record()
            p.returncode = 0
        self.rc = os.waitstatus_to_exitcode(status)
        self.ru = ru
        self.samples = sm
        say("mailcanary stopped: exit %s, %.2f s after SIGTERM; total CPU %.2f s (wait4), ru_maxrss %.1f MiB" % (
            self.rc, self.stop_s or -1, (ru.ru_utime + ru.ru_stime) if ru else -1,
            (ru.ru_maxrss / 1024) if ru else -1))

    def analyse_daemon(self):
        a = self.a
        S, K = a.interval, a.intervals
        t0w = self.t0_wall
        # log lines
        ev, outcomes, warns = {}, {}, {}
        with open(self.errlog, errors="replace") as f:
            for line in f:
                m = re.search(r"event=(\S+)", line)
                if m:
                    ev[m.group(1)] = ev.get(m.group(1), 0) + 1
                    if m.group(1) == "attempt":
                        o = re.search(r"outcome=(\S+)", line)
                        if o:
                            outcomes[o.group(1)] = outcomes.get(o.group(1), 0) + 1
                if ": warning:" in line or ": error:" in line or "warn" in line.split("event=")[0]:
                    k = re.sub(r"probe=\S+|seed=\S+|slot=\S+|\d+", "#", line.strip())[:200]
                    warns[k] = warns.get(k, 0) + 1
        self.events, self.log_outcomes, self.warns = ev, outcomes, warns
        # detail log
        recs = bench.read_results(os.path.join(self.state, "results.jsonl"))
        self.n_records = len(recs)
        first_due = {}
        rows = []
        for r in recs:
            sm = r.get("smtp") or {}
            atts = sm.get("attempts") or []
            at = bench.parse_ts(atts[-1]["at"]) if atts and atts[-1].get("at") else None
            sch = r.get("schedule")
            due = bench.parse_ts(sch["due_at"]) if sch and sch.get("due_at") else None
            ms = sm.get("ms") or {}
            tries = sm.get("tries") or []
            try_at = bench.parse_ts(tries[-1]["at"]) if tries and tries[-1].get("at") else None
            row = {"seed": r.get("seed"), "sent": bench.parse_ts(r["sent_at"]), "at": at, "try_at": try_at,
                   "due": due, "delay": sch.get("delay_s") if sch else None,
                   "waited": tuple(sch.get("waited_for") or []) if sch else (),
                   "connect": (ms.get("dns") or 0) + (ms.get("connect") or 0) if "connect" in ms else None,
                   "total": ms.get("total"), "outcome": sm.get("outcome"), "stage": sm.get("stage"),
                   "attempt": atts[-1].get("n") if atts else None, "text": sm.get("error") or sm.get("text")}
            rows.append(row)
            if due is not None and (row["seed"] not in first_due or due < first_due[row["seed"]]):
                first_due[row["seed"]] = due
        self.rows = rows
        # the burst: each seed's first probe (due at the daemon's start)
        burst = [x for x in rows if x["due"] is not None and x["due"] == first_due.get(x["seed"])
                 and x["due"] < t0w + S / 2]
        self.burst = burst
        bset = set(id(x) for x in burst)
        self.burst_rows = burst
        if burst:
            b_start = min(x["at"] for x in burst)
            b_end = max(x["at"] + (x["total"] or 0) / 1000 for x in burst)
            self.burst_span = (b_start - t0w, b_end - t0w)
            self.burst_delay = dist([x["delay"] for x in burst if x["delay"] is not None], 1000)
            self.burst_ok = sum(1 for x in burst if x["outcome"] == "accepted")
        else:
            self.burst_span = None
        # CPU of the burst: from the start to the first sample after the burst's last probe ended
        if burst:
            s_end = self.samples.at(self.burst_span[1] + SAMPLE_S)
            self.burst_cpu = s_end["cpu"] if s_end else None
            self.burst_cpu_t = self.burst_span[1] + SAMPLE_S
        # steady intervals: attempts whose due time falls in [t0 + i*S, t0 + (i+1)*S), i = 1..K
        self.intervals = []
        for i in range(K + 1):
            lo, hi = t0w + i * S, t0w + (i + 1) * S
            s0, s1 = self.samples.at(i * S), self.samples.at((i + 1) * S)
            inrows = [x for x in rows if x["due"] is not None and lo <= x["due"] < hi and id(x) not in bset]
            started = [x for x in rows if x["at"] is not None and lo <= x["at"] < hi]
            lat = dist([x["delay"] for x in inrows if x["delay"] is not None], 1000)
            self.intervals.append({
                "i": i, "due": len(inrows), "started": len(started), "lat": lat,
                "cpu": (s1["cpu"] - s0["cpu"]) if s0 and s1 else None,
                "user": (s1["user"] - s0["user"]) if s0 and s1 else None,
                "sys": (s1["sys"] - s0["sys"]) if s0 and s1 else None,
                "rss": s1["rss"] if s1 else None, "anon": s1["anon"] if s1 else None,
                "hwm": s1["hwm"] if s1 else None, "fds": s1["fds"] if s1 else None,
                "results_b": (s1["sizes"]["results"] - s0["sizes"]["results"]) if s0 and s1 else None,
                "stderr_b": (s1["sizes"]["stderr"] - s0["sizes"]["stderr"]) if s0 and s1 else None,
                "journal": s1["sizes"]["journal"] if s1 else None,
            })
        steady = [x for x in rows if x["due"] is not None and t0w + S <= x["due"] < t0w + (K + 1) * S
                  and id(x) not in bset]
        self.steady = steady
        st_iv = self.intervals[1:]
        self.steady_cpu = sum(iv["cpu"] for iv in st_iv) if all(iv["cpu"] is not None for iv in st_iv) else None
        self.steady_user = sum(iv["user"] for iv in st_iv) if self.steady_cpu is not None else None
        self.steady_sys = sum(iv["sys"] for iv in st_iv) if self.steady_cpu is not None else None
        self.steady_s = K * S
        # sampled peaks
        smp = [s for _, s in self.samples.samples]
        self.peak_threads = max((s["threads"] for s in smp), default=0)
        self.peak_fds = max((s["fds"] for s in smp), default=0)
        # journal compactions: the journal file got smaller between two samples
        js = [s["sizes"]["journal"] for s in smp]
        self.compactions = sum(1 for x, y in zip(js, js[1:]) if y < x)
        comp_t = [self.samples.samples[i + 1][0] for i in range(len(js) - 1) if js[i + 1] < js[i]]
        self.journal_max = max(js, default=0)
        # latency
        d = [x["delay"] for x in steady if x["delay"] is not None]
        self.lat_start = dist(d, 1000)
        self.lat_connect = dist([x["delay"] + x["connect"] / 1000 for x in steady
                                 if x["delay"] is not None and x["connect"] is not None], 1000)
        self.lat_pick = dist([x["sent"] - x["due"] for x in steady if x["attempt"] == 1], 1000)
        self.lat_sent_at = dist([x["at"] - x["sent"] for x in steady if x["attempt"] == 1 and x["at"]], 1000)
        self.lat_end = dist([(x["try_at"] or x["at"]) - x["due"] + (x["total"] or 0) / 1000 for x in steady
                             if x["at"]], 1000)
        self.total_ms = dist([x["total"] for x in steady if x["total"] is not None])
        # 10 s windows of the steady part: latency, starts, loop profile, the disk's fdatasync
        wins = {}
        for x in steady:
            if x["delay"] is not None:
                wins.setdefault(int((x["due"] - t0w) // 10) * 10, []).append(x)
        starts = {}
        for x in rows:
            if x["at"]:
                k = int((x["at"] - t0w) // 10) * 10
                starts[k] = starts.get(k, 0) + 1
        self.windows = []
        for k in sorted(wins):
            xs = wins[k]
            pc = self.prof.win.get(k, {})
            pn = sum(pc.values())
            dk = self.disk.win.get(k, [])
            self.windows.append({
                "t": k, "due": len(xs), "started": starts.get(k, 0),
                "p50": pct([x["delay"] for x in xs], 50) * 1000, "max": max(x["delay"] for x in xs) * 1000,
                "sent_at": statistics.median([x["at"] - x["sent"] for x in xs if x["at"]]) * 1000,
                "fsync_pct": pc.get("fdatasync", 0) * 100.0 / pn if pn else None,
                "run_pct": pc.get("runnable (on a CPU or waiting for one)", 0) * 100.0 / pn if pn else None,
                "idle_pct": pc.get("epoll_wait", 0) * 100.0 / pn if pn else None,
                "disk_p50": statistics.median(dk) if dk else None, "disk_max": max(dk) if dk else None})
        self.disk_steady = dist([ms for t, ms in self.disk.all if S <= t < (K + 1) * S])
        self.waited = {}
        for x in steady:
            for w in x["waited"]:
                self.waited[w] = self.waited.get(w, 0) + 1
        self.lat_nowait = dist([x["delay"] for x in steady if x["delay"] is not None and not x["waited"]], 1000)
        # the worst latencies, with what they waited for
        worst = sorted((x for x in steady if x["delay"] is not None), key=lambda x: -x["delay"])[:5]
        self.worst = [(x["seed"], x["delay"] * 1000, ",".join(x["waited"]) or "nothing",
                       datetime.datetime.fromtimestamp(x["due"], datetime.timezone.utc).strftime("%H:%M:%S"))
                      for x in worst]
        # latency by rank within the same due second (serial work per due second)
        by_sec = {}
        for x in steady:
            if x["delay"] is not None and x["attempt"] == 1:
                by_sec.setdefault(round(x["due"]), []).append(x)
        ranks = {}
        sec_max = []
        for sec, xs in by_sec.items():
            xs.sort(key=lambda x: x["at"])
            sec_max.append(max(x["delay"] for x in xs) * 1000)
            for k, x in enumerate(xs):
                b = min(k // 50, 3)
                ranks.setdefault(b, []).append(x["delay"] * 1000)
        self.rank_lat = {b: statistics.median(v) for b, v in ranks.items()}
        # the worst due seconds vs journal compactions (seen as the journal shrinking between
        # two samples, so within the 0.5 s before that sample)
        sec_worst = sorted(((sec, max(x["delay"] for x in xs)) for sec, xs in by_sec.items()), key=lambda kv: -kv[1])[:10]
        near = lambda sec: any(c - 1.5 <= sec - t0w <= c + 0.5 for c in comp_t)
        self.worst_secs = [(sec - t0w, d * 1000, near(sec)) for sec, d in sec_worst]
        self.comp_steady = sum(1 for c in comp_t if S <= c < (K + 1) * S)
        nm = [max(x["delay"] for x in xs) * 1000 for sec, xs in by_sec.items() if near(sec)]
        om = [max(x["delay"] for x in xs) * 1000 for sec, xs in by_sec.items() if not near(sec)]
        self.comp_med = (statistics.median(nm) if nm else None, statistics.median(om) if om else None)
        self.sec_max = dist(sec_max, 1.0)
        # outcomes
        self.outcomes = {}
        for x in steady:
            self.outcomes[x["outcome"]] = self.outcomes.get(x["outcome"], 0) + 1
        self.not_accepted = [x for x in rows if x["outcome"] != "accepted"]
        # the stop: attempts that started before SIGTERM and ended after it
        self.stop_running = None
        m = re.search(r"event=stopping running=(\d+)", open(self.errlog, errors="replace").read())
        if m:
            self.stop_running = int(m.group(1))
        tt = getattr(self, "t_term_wall", None)
        ends = [(x["try_at"] or x["at"]) + (x["total"] or 0) / 1000 for x in rows if x["at"]]
        self.last_end_after_term = (max(ends) - tt) if ends and tt else None
        # spread: the phase of each steady start within the interval (epoch-aligned)
        phases = [x["at"] % S for x in steady if x["at"]]
        nb = 6
        bw = S / nb
        self.hist = [0] * nb
        for ph in phases:
            self.hist[min(nb - 1, int(ph // bw))] += 1
        self.hist_ratio = (max(self.hist) / min(self.hist)) if min(self.hist) > 0 else None
        per_sec = {}
        for x in steady:
            if x["at"]:
                per_sec[int(x["at"])] = per_sec.get(int(x["at"]), 0) + 1
        lo, hi = int(t0w + S) + 1, int(t0w + (K + 1) * S) - 1
        secs = [per_sec.get(s, 0) for s in range(lo, hi)]
        self.per_sec = {"max": max(secs), "min": min(secs), "mean": statistics.mean(secs)} if secs else None
        self.due_per_sec = {"max": max(self.per_phase), "min": min(self.per_phase),
                            "mean": statistics.mean(self.per_phase)}
        # the due times the daemon used are the FNV offsets this script predicts
        mism = sum(1 for x in steady if x["due"] is not None and
                   int(round(x["due"])) % S != fnv_offset(x["seed"], S))
        self.offset_mismatch = mism
        # per-seed: every seed probed once per steady interval?
        cnt = {}
        for x in steady:
            if x["attempt"] == 1:
                cnt[x["seed"]] = cnt.get(x["seed"], 0) + 1
        self.seed_counts = {}
        for n, _ in self.seeds:
            c = cnt.get(n, 0)
            self.seed_counts[c] = self.seed_counts.get(c, 0) + 1
        say("steady: %d attempts due in %d s; CPU %.2f s; due->start p50/p95/p99/max %s ms; due->connect %s ms" % (
            len(steady), self.steady_s, self.steady_cpu or -1, fmt_dist(self.lat_start), fmt_dist(self.lat_connect)))
        say("spread: 10 s bins %s (max/min %.3f); starts per second max %s min %s" % (
            self.hist, self.hist_ratio or -1, self.per_sec and self.per_sec["max"], self.per_sec and self.per_sec["min"]))

    # -- the reference: smtp-source, the same messages per second ------------

    def reference(self):
        """For one interval: at each whole second, `smtp-source -s K -m K` with K = the number
        of seeds the daemon has due in that second of the interval (same FNV offsets), so the
        sink sees the same load per second. CPU from wait4 on each smtp-source."""
        S = self.a.interval
        n_iv = self.a.ref_intervals
        runs, lock = [], threading.Lock()
        procs = []

        def reap(p, t_launch, due, k):
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            with lock:
                runs.append({"k": k, "due": due, "launch": t_launch, "end": time.time(),
                             "cpu": ru.ru_utime + ru.ru_stime, "user": ru.ru_utime, "sys": ru.ru_stime,
                             "rss": ru.ru_maxrss, "rc": p.returncode})

        start = int(time.time()) + 2
        say("reference: smtp-source per second, %d interval(s) of %d s, %d messages per interval" % (
            n_iv, S, sum(self.per_phase)))
        threads = []
        for sec in range(start, start + n_iv * S):
            k = self.per_phase[sec % S]
            d = sec - time.time()
            if d > 0:
                time.sleep(d)
            if k == 0:
                continue
            argv = ["smtp-source", "-s", str(k), "-m", str(k), "-l", str(SMTP_SOURCE_LEN), "-f", MC_SENDER,
                    "-t", "seed@sink.test", "-M", HELO, "%s:%d" % (HOST, self.port)]
            t_launch = time.time()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, preexec_fn=bench._limits(NOFILE), close_fds=True)
            procs.append(p)
            th = threading.Thread(target=reap, args=(p, t_launch, sec, k), daemon=True)
            th.start()
            threads.append(th)
        for th in threads:
            th.join(30)
        for p in procs:
            if p.returncode is None:
                try:
                    p.kill()
                except OSError:
                    pass
        self.ref_cmd = "smtp-source -s K -m K -l %d -f %s -t seed@sink.test -M %s 127.0.0.1:PORT" % (
            SMTP_SOURCE_LEN, MC_SENDER, HELO)
        msgs = sum(r["k"] for r in runs)
        ok = sum(r["k"] for r in runs if r["rc"] == 0)
        cpu = sum(r["cpu"] for r in runs)
        self.ref = {"runs": len(runs), "msgs": msgs, "ok": ok, "cpu": cpu,
                    "user": sum(r["user"] for r in runs), "sys": sum(r["sys"] for r in runs),
                    "rss": max((r["rss"] for r in runs), default=0), "secs": n_iv * S,
                    "launch": dist([r["launch"] - r["due"] for r in runs], 1000),
                    "end": dist([r["end"] - r["due"] for r in runs], 1000),
                    "bad": [r for r in runs if r["rc"] != 0]}
        say("reference: %d runs, %d messages, %d ok, CPU %.2f s (%.3f ms/message), batch end after due p50/max %s ms" % (
            len(runs), msgs, ok, cpu, cpu / max(1, msgs) * 1000,
            "%.0f/%.0f" % (self.ref["end"]["p50"], self.ref["end"]["max"]) if self.ref["end"] else "-"))

    def reference_floor(self):
        """smtp-source sending one interval's messages in one process, unpaced, with the
        daemon's concurrency: the per-message floor without a fork+exec per second. Peak RSS
        through /usr/bin/time (wait4's ru_maxrss of a child forked from Python includes the
        Python image it had before exec)."""
        out = os.path.join(self.dir, "time.out")
        n, s = self.a.seeds, min(self.a.in_flight, self.a.seeds)
        argv = ["smtp-source", "-s", str(s), "-m", str(n), "-l", str(SMTP_SOURCE_LEN), "-f", MC_SENDER,
                "-t", "seed@sink.test", "-M", HELO, "%s:%d" % (HOST, self.port)]
        tm = ["/usr/bin/time", "-f", "%M", "-o", out] if os.access("/usr/bin/time", os.X_OK) else []
        r = bench.measure(tm + argv, keep_output=False, timeout=120)
        rss = None
        try:
            with open(out) as f:
                rss = int(f.read().split()[-1])
        except (OSError, ValueError, IndexError):
            pass
        self.floor = {"n": n, "s": s, "wall": r.wall, "cpu": r.cpu, "user": r.user, "sys": r.sys, "rss": rss,
                      "rc": r.rc, "cmd": " ".join(argv).replace(str(self.port), "PORT")}
        say("smtp-source floor: -s %d -m %d in %.2f s, CPU %.2f s (%.3f ms/message), peak RSS %s KiB, rc %s" % (
            s, n, r.wall, r.cpu, r.cpu / n * 1000, rss, r.rc))
        if r.rc != 0:
            self.problems.append(("smtp-source -s %d -m %d" % (s, n), "exit %s: %s" % (r.rc, r.stderr[-600:])))

    def swaks_sample(self):
        n = self.a.swaks_runs
        if n <= 0:
            return
        argv = ["swaks", "--server", HOST, "--port", str(self.port), "--from", MC_SENDER, "--to",
                "seed@sink.test", "--helo", HELO, "--silent", "2"]
        runs = [bench.measure(argv, keep_output=False) for _ in range(n)]
        ok = sum(1 for r in runs if r.rc == 0)
        cpu = sum(r.cpu for r in runs)
        self.swaks = {"n": n, "ok": ok, "cpu_ms": cpu / n * 1000, "wall": sum(r.wall for r in runs) / n,
                      "cmd": " ".join(shlex.quote(x) for x in argv).replace(str(self.port), "PORT")}
        say("swaks: %d runs, %.1f ms CPU per message, %d ok" % (n, self.swaks["cpu_ms"], ok))

    def run(self):
        self.setup()
        self.run_daemon()
        self.analyse_daemon()
        if not self.a.no_reference:
            self.reference()
            self.reference_floor()
            self.swaks_sample()

    # -- report ----------------------------------------------------------------

    def report(self, started, elapsed, command):
        a, S, K = self.a, self.a.interval, self.a.intervals
        m = bench.machine()
        L = []
        w = L.append
        w("<!-- daemon:%d -->" % a.seeds)
        w("### %s seeds, `every %ds`" % ("{:,}".format(a.seeds), S))
        w("")
        w("- Command: `%s`" % command)
        w("- Date: %s (whole run %.0f s)" % (started, elapsed))
        w("- Machine: %s × %s, %s RAM, %s, kernel %s; state_dir on %s (the journal's fdatasync is real)" % (
            m["nproc"], m["cpu"], m["mem"], m["os"], m["kernel"], self.fs))
        w("- Load average (1/5/15 min) at the start %s, at the end %s" % (self.load_start, m["load"]))
        w("- mailcanary: `%s`; git HEAD %s; binary sha256 %s…, built %s UTC (copied to the scratch directory)" % (
            self.mc_version, self.git, self.bin_sha, self.bin_mtime))
        w("- Postfix %s (smtp-sink, smtp-source), %s" % (m["postfix"], m["swaks"]))
        w("- Sink: `%s`" % " ".join(self.cmd_sink).replace(str(self.port), "PORT"))
        w("- Daemon: `mailcanary -c CONF run` (info log to a file), CONF: %s seeds `s00000`…, address "
          "`seedNNNNN@dDDD.sink.test` over %d domains (seed i → domain i mod %d), each `schedule = \"every %ds\"`, "
          "one relay sender to the sink with `tls = \"none\"`, `limits: { in_flight = %d; per_domain = 1; "
          "spacing = \"0s\"; daily_budget = 0; }`, default retry, no readback. Run for %d × %d s, then SIGTERM." % (
              "{:,}".format(a.seeds), a.domains, a.domains, S, a.in_flight, K + 1, S))
        w("")
        # --- steady state vs reference
        n_st = len(self.steady)
        cpu = self.steady_cpu
        w("**Steady state** (intervals 2–%d, %d s, attempts due from %d s to %d s after the start):" % (
            K + 1, self.steady_s, S, (K + 1) * S))
        w("")
        w("| client | messages | wall s | CPU s | user / sys s | CPU ms per message | CPU s per hour of monitoring | "
          "% of one core | peak RSS MiB | accepted |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        ok_st = self.outcomes.get("accepted", 0)
        if cpu is not None:
            w("| mailcanary run (one process) | %d | %d | %.2f | %.2f / %.2f | %.3f | %.0f | %.1f | %.1f (steady %.1f) | %d/%d |" % (
                n_st, self.steady_s, cpu, self.steady_user, self.steady_sys, cpu / max(1, n_st) * 1000,
                cpu * 3600 / self.steady_s, cpu / self.steady_s * 100, self.last["hwm"] / 1024 if self.last else 0,
                self.intervals[-1]["rss"] / 1024, ok_st, n_st))
        if self.ref:
            r = self.ref
            w("| smtp-source, one run per second (`-s K -m K`, K = seeds due that second) | %d | %d | %.2f | %.2f / %.2f | %.3f | %.0f | %.1f | – | %d/%d |" % (
                r["msgs"], r["secs"], r["cpu"], r["user"], r["sys"], r["cpu"] / max(1, r["msgs"]) * 1000,
                r["cpu"] * 3600 / r["secs"], r["cpu"] / r["secs"] * 100, r["ok"], r["msgs"]))
        if self.floor:
            fl = self.floor
            w("| smtp-source, one interval's messages in one unpaced run (`-s %d -m %d`) | %d | %.1f | %.2f | %.2f / %.2f | %.3f | %.0f | – | %s | %s |" % (
                fl["s"], fl["n"], fl["n"], fl["wall"], fl["cpu"], fl["user"], fl["sys"], fl["cpu"] / fl["n"] * 1000,
                fl["cpu"] / fl["n"] * a.seeds * 3600 / S, f1(fl["rss"] / 1024 if fl["rss"] else None),
                "all (exit 0)" if fl["rc"] == 0 else "exit %s" % fl["rc"]))
        if self.swaks:
            sw = self.swaks
            per_h = sw["cpu_ms"] / 1000 * a.seeds * 3600 / S
            w("| cron + swaks, one process per message (extrapolated from %d runs) | %d per %d s | – | – | – | %.1f | %.0f | %.0f | – | %d/%d of the sample |" % (
                sw["n"], a.seeds, S, sw["cpu_ms"], per_h, per_h / 36, sw["ok"], sw["n"]))
        w("")
        if cpu is not None and self.ref:
            mc = cpu / max(1, n_st)
            w("CPU per message: mailcanary %.2f× paced smtp-source%s%s. Peak RSS of mailcanary: VmHWM from /proc (wait4's "
              "ru_maxrss, %.1f MiB, counts the Python image the child had before exec); smtp-source's through "
              "/usr/bin/time." % (
                  mc / (self.ref["cpu"] / max(1, self.ref["msgs"])),
                  (", %.2f× unpaced smtp-source" % (mc / (self.floor["cpu"] / self.floor["n"]))) if self.floor else "",
                  (", %.0f× below swaks" % (self.swaks["cpu_ms"] / (mc * 1000))) if self.swaks else "",
                  self.ru.ru_maxrss / 1024 if self.ru else 0))
            w("")
        w("Per interval (CPU = /proc/PID/stat utime+stime delta; RSS = VmRSS at the interval's end; "
          "interval 1 holds the start-up burst):")
        w("")
        w("| interval | attempts due | attempts started | due → start p50 / max ms (regular slots) | CPU s | user / sys s | VmRSS MiB | RssAnon MiB | VmHWM MiB | fds | detail log MB | stderr log MB | journal MB |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for iv in self.intervals:
            w("| %d (%d–%d s)%s | %d | %d | %s | %s | %s / %s | %.1f | %.1f | %.1f | %d | %.1f | %.1f | %.1f |" % (
                iv["i"] + 1, iv["i"] * S, (iv["i"] + 1) * S, " burst" if iv["i"] == 0 else "",
                iv["due"] + (len(self.burst) if iv["i"] == 0 else 0), iv["started"],
                ("%.0f / %.0f" % (iv["lat"]["p50"], iv["lat"]["max"])) if iv["lat"] else "–", f1(iv["cpu"], 2),
                f1(iv["user"], 2), f1(iv["sys"], 2), (iv["rss"] or 0) / 1024, (iv["anon"] or 0) / 1024,
                (iv["hwm"] or 0) / 1024, iv["fds"] or 0, (iv["results_b"] or 0) / 1e6, (iv["stderr_b"] or 0) / 1e6,
                (iv["journal"] or 0) / 1e6))
        w("")
        st = self.intervals[1:]
        if len(st) >= 2 and all(iv["rss"] for iv in st):
            slope = (st[-1]["rss"] - st[0]["rss"]) / (len(st) - 1)
            w("RSS change per steady interval: %+.0f KiB (VmRSS %.1f → %.1f MiB from the end of interval 2 to the end of "
              "interval %d). Journal compactions seen (file shrank between two 0.5 s samples): %d; largest journal %.1f MB. "
              "Peak threads %d, peak fds %d." % (slope, st[0]["rss"] / 1024, st[-1]["rss"] / 1024, K + 1,
                                                  self.compactions, self.journal_max / 1e6, self.peak_threads,
                                                  self.peak_fds))
            w("")
        # --- burst
        if self.burst_span:
            w("**Start-up burst** (every seed's first probe is due at the start): %d probes, the first started %.2f s "
              "and the last ended %.2f s after the daemon was launched (%.0f probes/s); %d/%d accepted; daemon CPU "
              "from launch to the end of the burst %.2f s (%.3f ms per probe, start-up included); due→start "
              "p50 / p95 / p99 / max %s ms. VmHWM (peak RSS) over the whole run: %.1f MiB; ru_maxrss from wait4: %.1f MiB. "
              "Regular slots that came while the seed's first probe still waited (`event=skip`): %d." % (
                  len(self.burst), self.burst_span[0], self.burst_span[1],
                  len(self.burst) / max(0.001, self.burst_span[1] - self.burst_span[0]),
                  self.burst_ok, len(self.burst), self.burst_cpu or 0,
                  (self.burst_cpu or 0) / len(self.burst) * 1000, fmt_dist(self.burst_delay, 0),
                  self.last["hwm"] / 1024 if self.last else 0, self.ru.ru_maxrss / 1024 if self.ru else 0,
                  self.events.get("skip", 0)))
            w("")
        # --- spread
        w("**Spread of send times** over the %d steady intervals (attempt start `smtp.attempts[-1].at` modulo %d s; "
          "slots are aligned to the Unix epoch plus a per-seed FNV offset in whole seconds):" % (K, S))
        w("")
        bw = S // 6
        w("| second of the interval | " + " | ".join("%d–%d" % (i * bw, (i + 1) * bw) for i in range(6)) + " | max/min |")
        w("|---|" + "---:|" * 7)
        w("| attempts started (all %d intervals) | %s | %s |" % (K, " | ".join(str(h) for h in self.hist),
                                                                 f1(self.hist_ratio, 3)))
        w("")
        if self.per_sec:
            w("Starts per wall-clock second in the steady window: max %d, min %d, mean %.1f. Seeds due per second of "
              "the interval (the FNV offsets of these %d names, what the scheduler can do at best): max %d, min %d, "
              "mean %.1f. Attempts whose due second differs from the predicted FNV offset: %d. Seeds by number of "
              "first attempts in the %d steady intervals: %s." % (
                  self.per_sec["max"], self.per_sec["min"], self.per_sec["mean"], a.seeds,
                  self.due_per_sec["max"], self.due_per_sec["min"], self.due_per_sec["mean"], self.offset_mismatch, K,
                  ", ".join("%d× → %d seeds" % (c, n) for c, n in sorted(self.seed_counts.items()))))
            w("")
        # --- latency
        w("**Scheduler latency** (steady attempts; the due time is the whole second of the slot):")
        w("")
        w("| measure | attempts | p50 ms | p95 ms | p99 ms | max ms | mean ms |")
        w("|---|---:|---:|---:|---:|---:|---:|")
        for name, d in (("due → start (`schedule.delay_s`)", self.lat_start),
                        ("due → start, attempts that waited for no limit", self.lat_nowait),
                        ("due → TCP connected (`delay_s` + `ms.connect`)", self.lat_connect),
                        ("due → `sent_at` (the pump's clock reading)", self.lat_pick),
                        ("`sent_at` → attempt start (journal `send` + fdatasync, probe set-up)", self.lat_sent_at),
                        ("due → end of the session", self.lat_end),
                        ("session `ms.total`", self.total_ms)):
            if d:
                w("| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f |" % (name, d["n"], d["p50"], d["p95"], d["p99"],
                                                                    d["max"], d["mean"]))
        w("")
        if self.rank_lat:
            w("Median due → start by the attempt's rank among those due in the same second: %s. Worst due → start "
              "per due second: p50 %.0f, max %.0f ms." % (
                  ", ".join("%s %.1f ms" % (("1st–50th", "51st–100th", "101st–150th", "151st+")[b], v)
                            for b, v in sorted(self.rank_lat.items())),
                  self.sec_max["p50"], self.sec_max["max"]))
            w("")
        if self.worst_secs:
            w("Journal compactions in the steady window: %d. The ten due seconds with the worst due → start (s after "
              "the start, worst ms; C = within 1.5 s before or 0.5 s after a compaction was seen): %s. Worst due → start "
              "per due second, median: %s ms in seconds near a compaction, %s ms in the others." % (
                  self.comp_steady, ", ".join("%.0f s %.0f%s" % (t, d, " C" if c else "") for t, d, c in self.worst_secs),
                  f1(self.comp_med[0], 0), f1(self.comp_med[1], 0)))
            w("")
        w("Held back by a limit (`schedule.waited_for`): %s. Worst five: %s." % (
            ", ".join("%s %d" % kv for kv in sorted(self.waited.items())) or "none",
            "; ".join("%s %.0f ms (waited for %s, due %s)" % x for x in self.worst)))
        w("")
        oc = ", ".join("%s %d" % kv for kv in sorted(self.outcomes.items()))
        w("Outcomes (steady): %s. Not accepted in the whole run: %d%s. Log events: %s. Stop: SIGTERM → exit in "
          "%s s (exit status %s)." % (
              oc, len(self.not_accepted),
              (" (first: %s at %s: %s)" % (self.not_accepted[0]["outcome"], self.not_accepted[0]["stage"],
                                            (self.not_accepted[0]["text"] or "")[:120])) if self.not_accepted else "",
              ", ".join("%s %d" % kv for kv in sorted(self.events.items())),
              f1(self.stop_s, 2), self.rc))
        w("")
        if self.stop_running is not None:
            w("At SIGTERM the daemon had %d attempts running; the last attempt of the run ended %s s after the "
              "SIGTERM (from its `tries[].at` + `ms.total`), the process exited %s s after it." % (
                  self.stop_running, f1(self.last_end_after_term, 3), f1(self.stop_s, 2)))
            w("")
        if self.prof.n:
            tot = self.prof.n
            w("Where the event-loop thread spent the steady window (%d samples of /proc/PID/syscall every %d ms): %s." % (
                tot, int(LoopProfile.PROFILE_S * 1000), ", ".join("%s %.1f%%" % (k, v * 100.0 / tot) for k, v in sorted(
                    self.prof.counts.items(), key=lambda kv: -kv[1])[:8])))
            w("")
        if self.windows and self.prof.n:
            ws = sorted(self.windows, key=lambda x: -x["p50"])
            show = sorted(ws[:3] + [ws[len(ws) // 2]] + ws[-2:], key=lambda x: x["t"])
            seen, rows_ = set(), []
            for x in show:
                if x["t"] not in seen:
                    seen.add(x["t"])
                    rows_.append(x)
            w("The three 10 s windows with the highest median due → start, the median window and the two lowest "
              "(loop states from the /proc/PID/syscall samples; disk fdatasync: this script's own 300-byte append + "
              "fdatasync every 0.5 s in the scratch directory; over the whole steady window its p50 / p95 / max was "
              "%s / %s / %s ms):" % tuple(f1(self.disk_steady and self.disk_steady[k], 2) for k in ("p50", "p95", "max")))
            w("")
            w("| window (s after start) | attempts due | attempts started | due → start p50 / max ms | `sent_at` → start p50 ms | loop in fdatasync | loop runnable | loop idle in epoll_wait | disk fdatasync p50 / max ms |")
            w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for x in rows_:
                w("| %d–%d | %d | %d | %.0f / %.0f | %.1f | %s%% | %s%% | %s%% | %s / %s |" % (
                    x["t"], x["t"] + 10, x["due"], x["started"], x["p50"], x["max"], x["sent_at"],
                    f1(x["fsync_pct"], 0), f1(x["run_pct"], 0), f1(x["idle_pct"], 0), f1(x["disk_p50"]), f1(x["disk_max"])))
            w("")
        if self.warns:
            w("Warnings in the daemon's log: " + "; ".join("%d× `%s`" % (c, k) for k, c in
                                                           sorted(self.warns.items(), key=lambda kv: -kv[1])[:5]))
            w("")
        if self.ref:
            r = self.ref
            w("Reference: %d smtp-source runs, one at each whole second for %d s, each with K = the number of seeds "
              "due in that second of the interval (same per-second load on the same sink); launch after the second "
              "began p50 / max %.1f / %.1f ms; batch done after the second began p50 / p95 / max %.0f / %.0f / %.0f ms; "
              "%d runs exited non-zero. smtp-source keeps no journal, detail log or log line per message (mailcanary "
              "writes all three), and the fork+exec per second is in its CPU. swaks: `%s`." % (
                  r["runs"], r["secs"], r["launch"]["p50"], r["launch"]["max"], r["end"]["p50"], r["end"]["p95"],
                  r["end"]["max"], len(r["bad"]), self.swaks["cmd"] if self.swaks else "not run"))
            w("")
        for t, x in self.problems:
            w("Problem: %s: %s" % (t, x))
            w("")
        w("<!-- /daemon:%d -->" % a.seeds)
        return "\n".join(L) + "\n"


DEFAULT_INTRO = """## Scheduler: `mailcanary run` with many seeds

`bench/daemon.sh` (see bench/README.md) runs the daemon against one smtp-sink with every seed on
`every 60s`, then Postfix's smtp-source sending the same number of messages per second to the same
sink. These sections are written by `bench/daemon.sh --write`; `bench/run.sh --write` keeps them.
"""


def write_results(block, seeds):
    try:
        with open(RESULTS) as f:
            text = f.read()
    except OSError:
        text = ""
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        inner, post = rest.split(END, 1)
    else:
        pre, inner, post = text.rstrip("\n") + "\n\n", "\n" + DEFAULT_INTRO + "\n", "\n"
    blocks = {}
    for m in re.finditer(r"<!-- daemon:(\d+) -->.*?<!-- /daemon:\1 -->\n?", inner, re.S):
        blocks[int(m.group(1))] = m.group(0)
    intro = re.sub(r"<!-- daemon:(\d+) -->.*?<!-- /daemon:\1 -->\n?", "", inner, flags=re.S).rstrip("\n") + "\n\n"
    blocks[seeds] = block
    inner = intro + "\n".join(blocks[k].rstrip("\n") + "\n" for k in sorted(blocks, reverse=True))
    with open(RESULTS, "w") as f:
        f.write(pre + BEGIN + "\n" + inner.lstrip("\n") + END + post)


def main():
    ap = argparse.ArgumentParser(description="mailcanary scheduler benchmark (see bench/README.md)")
    ap.add_argument("--seeds", type=int, default=10000)
    ap.add_argument("--domains", type=int, default=500)
    ap.add_argument("--interval", type=int, default=60, help="seconds: every seed's `every Ns` (default 60)")
    ap.add_argument("--intervals", type=int, default=4, help="steady intervals measured after the first (default 4)")
    ap.add_argument("--in-flight", type=int, default=200)
    ap.add_argument("--ref-intervals", type=int, default=1, help="intervals of the smtp-source reference (default 1)")
    ap.add_argument("--swaks-runs", type=int, default=20)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--no-profile", action="store_true", help="do not sample /proc/PID/syscall (100 Hz)")
    ap.add_argument("--write", action="store_true", help="write this run's block into bench/RESULTS.md")
    ap.add_argument("--bin", default=os.environ.get("MAILCANARY_BIN") or os.path.join(ROOT, "build", "cli", "mailcanary"))
    ap.add_argument("--workdir")
    ap.add_argument("--keep", metavar="DIR", help="copy the daemon's log, detail log and config to DIR")
    ap.add_argument("--cleanup", metavar="DIR")
    ap.add_argument("--command", default="bench/daemon.sh", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.cleanup:
        bench.cleanup(a.cleanup)
        return 0
    if os.geteuid() != 0:
        print("daemon bench: run as root", file=sys.stderr)
        return 2
    if not os.access(a.bin, os.X_OK):
        print("daemon bench: no mailcanary binary at %s (bash scripts/build.sh)" % a.bin, file=sys.stderr)
        return 2
    for tool in ("smtp-sink", "smtp-source", "swaks"):
        if not shutil.which(tool):
            print("daemon bench: %s not found" % tool, file=sys.stderr)
            return 2
    if a.interval % 6:
        print("daemon bench: --interval must be a multiple of 6 (6 histogram bins)", file=sys.stderr)
        return 2
    own = not a.workdir
    if own:
        a.workdir = tempfile.mkdtemp(prefix="mcdaemon-", dir="/tmp")
    a.workdir = os.path.abspath(a.workdir)
    os.makedirs(a.workdir, exist_ok=True)
    os.chmod(a.workdir, 0o755)

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    b = DaemonBench(a)
    rc = 0
    try:
        b.run()
    except KeyboardInterrupt:
        say("interrupted")
        rc = 130
    finally:
        say("stopping servers")
        if hasattr(b, "srv"):
            b.srv.stop()
    if rc:
        if own:
            shutil.rmtree(a.workdir, ignore_errors=True)
        return rc
    text = b.report(started, time.monotonic() - bench.T0, a.command)
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
        for src in (b.errlog, os.path.join(b.state, "results.jsonl"), b.conf):
            if os.path.exists(src):
                shutil.copy2(src, a.keep)
        with open(os.path.join(a.keep, "samples.json"), "w") as f:
            json.dump({"t0_wall": b.t0_wall, "proc": b.samples.samples, "loop": b.prof.win,
                       "disk": b.disk.all}, f)
    print(text)
    if a.write:
        write_results(text, a.seeds)
        say("wrote the %d-seed block of %s" % (a.seeds, RESULTS))
    if own:
        shutil.rmtree(a.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
