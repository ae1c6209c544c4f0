#!/usr/bin/env python3
"""mailcanary benchmark: mailcanary vs Postfix's smtp-source vs swaks (and check_smtp) against
the same smtp-sink on 127.0.0.1, in one run. Python 3 standard library only; run as root
(the private Postfix needs it; the stage-timing check captures loopback packets).

    python3 bench/bench.py [--write] [--reps N] [--bin PATH] [--workdir DIR]
    python3 bench/bench.py --cleanup DIR     stop servers a killed run left behind

Normally started through bench/run.sh. Every figure is printed as markdown on stdout;
--write also writes bench/RESULTS.md (overwritten: it holds the latest figures).
See bench/README.md for what is measured and how.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
import lab  # noqa: E402  (tests/lab/lab.py: spawn, ports registry, TLS cert, Postfix start/stop)

HOST = "127.0.0.1"            # the only address this benchmark ever talks to
N = 1000                      # probes per throughput run
SWAKS_RUNS = 100              # swaks is ~100 ms per run: 100 runs, scaled per probe
CHECK_SMTP_RUNS = 100
INFLIGHT_WAIT = 3             # smtp-sink -w: DATA reply delay that keeps 1,000 sessions open at once
DELAY_SINKS = 25              # stage-timing sinks (one session at a time each)
DELAY_ROUNDS = 2              # 25 sinks x 2 = 50 timed probes
DELAY_S = 1                   # smtp-sink -W/-w take whole seconds
NOFILE = 65536                # soft RLIMIT_NOFILE for every measured client (and the sinks)
SMTPD_PROCS = 100             # Postfix smtpd process limit (its default)
BUDGET_S = 480                # the whole run must stay under 8 minutes
MC_SENDER = "canary@bench.test"
HELO = "bench.test"
SMTP_SOURCE_LEN = 250         # smtp-source -l: about the body size of a mailcanary probe

T0 = time.monotonic()


def say(msg):
    print("bench [%5.1fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Running and measuring one command

class Run:
    """One finished command: wall seconds, user/sys CPU, peak RSS (KiB), exit status, and
    what the /proc sampler saw (peak threads, fds)."""

    def __init__(self, argv):
        self.argv = argv
        self.wall = self.user = self.sys = 0.0
        self.maxrss_kb = 0
        self.csw = 0              # voluntary + involuntary context switches
        self.rc = None
        self.timed_out = False
        self.peak_threads = 0
        self.peak_fds = 0
        self.hwm_kb = 0           # VmHWM as last read by the /proc sampler (0: not sampled)
        self.stdout = ""
        self.stderr = ""

    @property
    def cpu(self):
        return self.user + self.sys


def _limits(nofile):
    """nofile: the soft limit, or (soft, hard) to lower the hard limit too."""
    def pre():
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if isinstance(nofile, tuple):
            resource.setrlimit(resource.RLIMIT_NOFILE, nofile)
            return
        want = nofile if hard == resource.RLIM_INFINITY else min(nofile, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return pre


def _sampler(pid, run, stop):
    """Peak thread and fd counts of pid, every 100 ms (cheap enough not to disturb 2 cores), and
    its VmHWM: wait4's ru_maxrss also counts the Python image the child had between fork and exec
    (a /bin/true measured that way shows about 16 MiB), VmHWM only the process after exec."""
    while not stop.is_set():
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("Threads:"):
                        run.peak_threads = max(run.peak_threads, int(line.split()[1]))
                    elif line.startswith("VmHWM:"):
                        run.hwm_kb = max(run.hwm_kb, int(line.split()[1]))
            run.peak_fds = max(run.peak_fds, len(os.listdir("/proc/%d/fd" % pid)))
        except (OSError, ValueError):
            pass
        stop.wait(0.1)


def measure(argv, out_path=None, nofile=NOFILE, sample=False, timeout=120, keep_output=True):
    """Runs argv; its exact rusage comes from wait4() on that one child (descendants it
    waited for included). stdout goes to out_path (or is kept in memory, small outputs)."""
    r = Run(argv)
    tmpdir = tempfile.mkdtemp(prefix="mcb-run-")
    so = out_path or os.path.join(tmpdir, "stdout")
    se = os.path.join(tmpdir, "stderr")
    stop = threading.Event()
    try:
        with open(so, "wb") as fo, open(se, "wb") as fe:
            t0 = time.monotonic()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                 preexec_fn=_limits(nofile), close_fds=True)
            timer = threading.Timer(timeout, lambda: _kill(p.pid, r))
            timer.start()
            th = None
            if sample:
                th = threading.Thread(target=_sampler, args=(p.pid, r, stop), daemon=True)
                th.start()
            try:
                _, status, ru = os.wait4(p.pid, 0)
            except BaseException:           # interrupted: do not leave the client running
                _kill(p.pid, r)
                os.waitpid(p.pid, 0)
                p.returncode = -9
                timer.cancel()
                raise
            r.wall = time.monotonic() - t0
            timer.cancel()
            stop.set()
            if th:
                th.join()
            p.returncode = r.rc = os.waitstatus_to_exitcode(status)
        r.user, r.sys, r.maxrss_kb = ru.ru_utime, ru.ru_stime, ru.ru_maxrss
        r.csw = ru.ru_nvcsw + ru.ru_nivcsw
        if keep_output and not out_path:
            with open(so, "rb") as f:
                r.stdout = f.read().decode("utf-8", "replace")
        with open(se, "rb") as f:
            r.stderr = f.read().decode("utf-8", "replace")
    finally:
        stop.set()
        shutil.rmtree(tmpdir, ignore_errors=True)
    return r


def peak_rss_kb(r):
    """The sampled VmHWM when the sampler saw the process, else wait4's ru_maxrss."""
    return r.hwm_kb or r.maxrss_kb


def _kill(pid, r):
    r.timed_out = True
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------------------
# Servers: smtp-sink instances and a private Postfix smtpd (STARTTLS, proxying to the sink)

class BenchPostfix(lab.Postfix):
    """One Postfix smtpd on 127.0.0.1:port that offers STARTTLS and hands every transaction
    to the plain smtp-sink through smtpd_proxy_filter: TLS ends at Postfix, the mail goes to
    the same sink as the plain runs, and nothing is queued (no cleanup/qmgr/delivery load).
    Postfix's master sizes the listen backlog as max(maxproc, default_process_limit), so
    default_process_limit = 1000 lets 1,000 connections wait for one of the smtpd processes."""

    def __init__(self, port, sink_port):
        self.port = port
        self.sink_port = sink_port

    def configure(self, L):
        cfg = self.cfg = L.path("postfix")
        self.queue, self.data = L.path("spool", "queue"), L.path("spool", "data")
        for d in (cfg, self.queue, self.data):
            os.makedirs(d, exist_ok=True)
        os.chown(self.data, lab.grp_owner("postfix"), lab.grp_id("postfix"))
        main = """# mailcanary bench postfix (generated)
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.bench.test
mydomain = bench.test
mydestination =
relay_domains =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = $myhostname ESMTP mailcanary-bench
biff = no
alias_maps =
alias_database =
local_recipient_maps =
default_transport = discard:bench
relay_transport = discard:bench
maillog_file = {log}
maillog_file_prefixes = {logdir}
default_process_limit = 1000
smtpd_peername_lookup = no
smtpd_delay_reject = no
smtpd_helo_required = no
smtpd_client_restrictions =
smtpd_helo_restrictions =
smtpd_sender_restrictions =
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions =
smtpd_proxy_filter = {host}:{sink}
smtpd_proxy_ehlo = mx.bench.test
smtpd_tls_security_level = may
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_loglevel = 0
smtpd_tls_received_header = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
""".format(queue=self.queue, data=self.data, log=L.logfile("postfix"), logdir=L.path("log"),
           host=HOST, sink=self.sink_port, cert=L.tls_cert, key=L.tls_key)
        lab.write(os.path.join(cfg, "main.cf"), main)
        master = "# mailcanary bench postfix master.cf (generated)\n"
        master += "%s:%d inet n - n - %d smtpd -o syslog_name=postfix/bench\n" % (HOST, self.port, SMTPD_PROCS)
        master += lab.POSTFIX_SERVICES
        lab.write(os.path.join(cfg, "master.cf"), master)
        lab.postfix_prepare(cfg, self.queue, self.data)

    def ready(self, L):
        if self.name not in L.info["pids"]:
            pid = self.master_pid(L)
            if not pid:
                return False
            L.info["pids"][self.name] = pid
        return lab.greeting_ok(HOST, self.port, "220")


class Servers:
    """Everything this run starts, recorded in WORKDIR/pids (name pid starttime) so that
    run.sh's trap (bench.py --cleanup) can stop what a killed run left behind."""

    def __init__(self, workdir):
        self.dir = workdir
        self.L = lab.Lab(workdir)
        self.L.info["pids"] = {}
        self.pids = {}            # name -> pid
        self.postfix = None
        self.ports_registered = False

    def pick_ports(self, n):
        """Free 127.0.0.1 ports below the ephemeral range, registered in the lab's port
        registry (with our pid) so that a lab started meanwhile never takes them."""
        with lab.Lock():
            reg = lab._registry_live(lab._registry_load())
            reserved = set()
            for ent in reg.values():
                reserved.update(ent.get("ports", []))
            pp = lab.PortPicker(reserved)
            ports = [pp.pick() for _ in range(n)]
            reg[self.dir] = {"ports": sorted(ports), "pids": [os.getpid()]}
            lab._registry_save(reg)
        self.ports_registered = True
        return ports

    def _record(self):
        with open(os.path.join(self.dir, "pids"), "w") as f:
            for n, p in self.pids.items():
                f.write("%s %d %s\n" % (n, p, lab.proc_starttime(p)))

    def sink(self, name, port, opts, backlog):
        argv = ["smtp-sink", "-u", "nobody"] + opts + ["%s:%d" % (HOST, port), str(backlog)]
        self.pids[name] = lab.spawn(argv, self.L.logfile("sink_" + name))
        self._record()
        return argv

    def start_postfix(self, port, sink_port):
        tls = lab.TLS()
        tls.configure(self.L)                 # self-signed cert, also the CA file
        self.postfix = BenchPostfix(port, sink_port)
        self.postfix.configure(self.L)
        self.postfix.start(self.L)
        pid = self.postfix.master_pid(self.L)
        if pid:
            self.pids["postfix"] = pid
            self._record()
        return self.L.info["ca_file"]

    def wait_ready(self, checks, timeout=20):
        deadline = time.monotonic() + timeout
        pending = list(checks)
        while pending and time.monotonic() < deadline:
            pending = [c for c in pending if not c[1]()]
            if pending:
                time.sleep(0.05)
        if pending:
            names = ", ".join(c[0] for c in pending)
            logs = "".join("\n--- %s ---\n%s" % (f, lab.tail(f)) for f in sorted(
                os.path.join(self.dir, "log", x) for x in os.listdir(os.path.join(self.dir, "log"))))
            raise RuntimeError("not ready after %d s: %s%s" % (timeout, names, logs))

    def stop(self):
        if self.postfix and "postfix" in self.pids:
            self.postfix.stop(self.L, [self.pids["postfix"]])
        cleanup(self.dir, quiet=True)


def cleanup(workdir, quiet=False):
    """Stops the servers recorded in WORKDIR/pids (if each pid is still the process we
    started), Postfix daemons of this instance, and drops our port-registry entry."""
    workdir = os.path.abspath(workdir)
    pids = []
    try:
        with open(os.path.join(workdir, "pids")) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    pid, st = int(parts[1]), parts[2] if len(parts) > 2 else "None"
                    if st != "None" and str(lab.proc_starttime(pid)) != st:
                        continue          # recycled pid: not ours
                    pids.append((parts[0], pid))
    except OSError:
        pass
    cfg = os.path.join(workdir, "postfix")
    if any(n == "postfix" and lab.alive(p) for n, p in pids) and os.path.exists(os.path.join(cfg, "main.cf")):
        try:
            lab.run(["postfix", "-c", cfg, "stop"], timeout=15, check=False)
        except subprocess.TimeoutExpired:
            pass
    lab.terminate([p for _, p in pids])
    if os.path.isdir(workdir):
        left = lab._leftovers(workdir)     # Postfix daemons with MAIL_CONFIG=WORKDIR/postfix
        if left:
            lab.terminate(left, grace=2)
    with lab.Lock():
        reg = lab._registry_load()
        if reg.pop(workdir, None) is not None:
            lab._registry_save(lab._registry_live(reg))
    still = [p for _, p in pids if lab.alive(p)]
    if still and not quiet:
        say("warning: still running: %s" % still)


# ---------------------------------------------------------------------------
# mailcanary configs and results

def replace_results_block(text, begin, end):
    """Writes text (a block that starts with the line begin and ends with the line end) into
    bench/RESULTS.md in place of the block between the same markers, or at its end when there is
    none; returns the file's path. For the benchmarks that own one block (graph.py,
    rrd_updates.py)."""
    path = os.path.join(HERE, "RESULTS.md")
    with open(path) as f:
        cur = f.read()
    if begin in cur and end in cur:
        pre = cur[:cur.index(begin)]
        post = cur[cur.index(end) + len(end):].lstrip("\n")
        new = pre + text + (("\n" + post) if post else "")
    else:
        new = cur.rstrip("\n") + "\n\n" + text
    with open(path, "w") as f:
        f.write(new)
    return path


def q(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def mc_config(path, state_dir, senders, seeds, in_flight, per_domain=0):
    """senders: [(name, port, tls, ca_file)]; seeds: [(name, address, sender)]."""
    t = ['state_dir = %s;' % q(state_dir),
         'timeouts: { connect = "30s"; banner = "60s"; command = "60s"; data = "60s"; eod = "60s"; };',
         'limits: { in_flight = %d; per_domain = %d; spacing = "0s"; daily_budget = 0; };' % (in_flight, per_domain),
         'retry: { schedule = []; };',
         'rrd = false;  # the SMTP probe is measured here; RRD writing has its own benchmark',
         'senders = (']
    snd = []
    for name, port, tls, ca in senders:
        s = '  { name = %s; mode = "relay"; host = %s; port = %d; helo = %s; mail_from = %s; tls = %s;' % (
            q(name), q(HOST), port, q(HELO), q(MC_SENDER), q(tls))
        if ca:
            s += ' ca_file = %s;' % q(ca)
        snd.append(s + ' }')
    t.append(",\n".join(snd))
    t.append(');')
    t.append('seeds = (')
    t.append(",\n".join('  { name = %s; address = %s; sender = %s; }' % (q(n), q(a), q(s)) for n, a, s in seeds))
    t.append(');')
    with open(path, "w") as f:
        f.write("\n".join(t) + "\n")
    return path


def read_results(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def parse_ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def max_open(results):
    """Most sessions open at the same moment, from each probe's sent_at + ms.total."""
    ev = []
    for r in results:
        try:
            t = parse_ts(r["sent_at"])
            d = r["smtp"]["ms"]["total"] / 1000.0
        except (KeyError, ValueError, TypeError):
            continue
        ev.append((t, 1))
        ev.append((t + d, -1))
    ev.sort()
    cur = best = 0
    for _, k in ev:
        cur += k
        best = max(best, cur)
    return best


class Bench:
    def __init__(self, args):
        self.a = args
        self.dir = args.workdir
        self.rows = []            # throughput rows
        self.inflight = []        # in-flight rows
        self.timings = []          # stage-timing rows
        self.problems = []        # (title, text)
        self.notes = []
        self.mc_version = ""
        self.tls_example = {}
        self.load_start = loadavg()
        self.pair_ratios = {}
        self.n_conf = 0

    # -- helpers ------------------------------------------------------------

    def mc(self, conf, sample=False, nofile=NOFILE, timeout=180):
        """One `mailcanary -c conf probe --json` round; returns (Run, results)."""
        state = os.path.join(self.dir, "state")
        shutil.rmtree(state, ignore_errors=True)
        out = os.path.join(self.dir, "mc-out.jsonl")
        r = measure([self.bin, "-c", conf, "probe", "--json"], out_path=out, sample=sample,
                    nofile=nofile, timeout=timeout)
        res = read_results(out)
        shutil.rmtree(state, ignore_errors=True)
        return r, res

    def conf_path(self, name):
        self.n_conf += 1
        return os.path.join(self.dir, "conf", "%02d-%s.conf" % (self.n_conf, name))

    def problem(self, title, run, results=None, n_expected=None):
        """Records what a failing mailcanary run looked like: exit status, stderr, outcome
        counts, and the JSON of the first probe that was not accepted."""
        counts = {}
        for x in results or []:
            k = "%s at %s: %s" % (x["smtp"]["outcome"], x["smtp"]["stage"],
                                  (x["smtp"].get("error") or x["smtp"].get("text") or "")[:100])
            counts[k] = counts.get(k, 0) + 1
        bad = [x for x in results or [] if x["smtp"]["outcome"] != "accepted"]
        text = "exit status %s%s; %d results%s\n" % (
            run.rc, " (killed after timeout)" if run.timed_out else "", len(results or []),
            (" of %d expected" % n_expected) if n_expected else "")
        if run.stderr.strip():
            lines = run.stderr.strip().splitlines()
            uniq = {}
            for l in lines:
                uniq[l] = uniq.get(l, 0) + 1
            text += "stderr (%d lines, distinct shown with counts):\n" % len(lines)
            for l, c in list(uniq.items())[:12]:
                text += "    %4d× %s\n" % (c, l[:300])
        for k, c in sorted(counts.items(), key=lambda kv: -kv[1])[:10]:
            text += "    %4d  %s\n" % (c, k)
        if bad:
            text += "first failing probe:\n```json\n%s\n```\n" % json.dumps(bad[0], sort_keys=False)[:4000]
        self.problems.append((title, text))
        say("PROBLEM %s: %s" % (title, text.splitlines()[0]))

    def row(self, tool, transport, probes, conc, runs, ok_counts, note=""):
        """Median over repetitions (range kept for the table)."""
        walls = [r.wall for r in runs]
        cpus = [r.cpu / probes * 1000.0 for r in runs]
        rss = [r.maxrss_kb / 1024.0 for r in runs]
        self.rows.append({
            "tool": tool, "transport": transport, "probes": probes, "conc": conc, "reps": len(runs),
            "wall": statistics.median(walls), "rate": probes / statistics.median(walls),
            "cpu_ms": statistics.median(cpus), "cpu_min": min(cpus), "cpu_max": max(cpus),
            "user": statistics.median([r.user for r in runs]), "sys": statistics.median([r.sys for r in runs]),
            "rss": statistics.median(rss), "rss_max": max(rss),
            "csw": statistics.median([r.csw / probes for r in runs]),
            "ok": "%d/%d" % (min(ok_counts), probes),
            "ok_all": ok_counts, "note": note})

    # -- phases -------------------------------------------------------------

    def setup(self):
        os.makedirs(os.path.join(self.dir, "conf"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "log"), exist_ok=True)
        # a private copy: a rebuild of build/ during the run cannot change what is measured
        self.bin = os.path.join(self.dir, "mailcanary")
        shutil.copy2(self.a.bin, self.bin)
        with open(self.bin, "rb") as f:
            self.bin_sha = hashlib.sha256(f.read()).hexdigest()[:16]
        self.mc_version = subprocess.run([self.bin, "version"], capture_output=True, text=True).stdout.strip()
        self.git = git_rev()
        self.bin_mtime = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(os.stat(self.a.bin).st_mtime))

        self.srv = Servers(self.dir)
        ports = self.srv.pick_ports(3 + DELAY_SINKS)
        self.p_sink, self.p_wait, self.p_pf = ports[:3]
        self.p_delay = ports[3:]
        self.cmd_sink = self.srv.sink("plain", self.p_sink, ["-m", "2000"], 2000)
        self.cmd_wait = self.srv.sink("wait", self.p_wait, ["-m", "2000", "-w", str(INFLIGHT_WAIT)], 2000)
        delay_opts = ["-W", "RCPT:%d" % DELAY_S, "-w", str(DELAY_S), "-W", ".:%d" % DELAY_S]
        for i, p in enumerate(self.p_delay):
            self.cmd_delay = self.srv.sink("delay%02d" % i, p, delay_opts, 100)
        self.ca = self.srv.start_postfix(self.p_pf, self.p_sink)
        checks = [("sink plain", lambda: lab.greeting_ok(HOST, self.p_sink, "220")),
                  ("sink wait", lambda: lab.greeting_ok(HOST, self.p_wait, "220")),
                  ("postfix", lambda: self.srv.postfix.ready(self.srv.L))]
        checks += [("sink delay %d" % p, (lambda p=p: lab.greeting_ok(HOST, p, "220"))) for p in self.p_delay]
        self.srv.wait_ready(checks)
        say("servers up: sink %d (-m 2000, backlog 2000), wait-sink %d (-w %d), %d delay sinks, "
            "postfix %d (STARTTLS, proxy to sink %d)" % (self.p_sink, self.p_wait, INFLIGHT_WAIT,
                                                        DELAY_SINKS, self.p_pf, self.p_sink))

    def plain_pair(self, conc, reps):
        """mailcanary (in_flight = conc) and smtp-source (-s conc) alternately, rep by rep, so
        that a change in the machine's background load hits both alike; the CPU ratio is
        taken per pair."""
        conf = mc_config(self.conf_path("plain-%d" % conc), os.path.join(self.dir, "state"),
                         [("plain", self.p_sink, "none", None)],
                         [("p%04d" % i, "seed%04d@sink.test" % i, "plain") for i in range(N)], conc)
        mruns, moks, sruns, soks, ratios = [], [], [], [], []
        for k in range(reps):
            r, res = self.mc(conf)
            ok = sum(1 for x in res if x["smtp"]["outcome"] == "accepted")
            mruns.append(r)
            moks.append(ok)
            say("mailcanary plain in_flight=%d rep %d: %.2f s wall, %.3f s CPU, %d MiB, %d/%d accepted, rc %s" % (
                conc, k + 1, r.wall, r.cpu, r.maxrss_kb // 1024, ok, N, r.rc))
            if ok != N or r.rc != 0:
                self.problem("mailcanary plain, in_flight %d, rep %d" % (conc, k + 1), r, res, N)
            s = self.smtp_source_once(conc)
            sruns.append(s)
            soks.append(N if s.rc == 0 else 0)   # smtp-source aborts on any unexpected reply
            if s.cpu > 0:
                ratios.append(r.cpu / s.cpu)
        self.row("mailcanary", "plain", N, "in_flight %d" % conc, mruns, moks)
        self.row("smtp-source", "plain", N, "-s %d" % conc, sruns, soks)
        self.pair_ratios[conc] = ratios

    def smtp_source_once(self, sessions, port=None, sample=False):
        argv = ["smtp-source", "-s", str(sessions), "-m", str(N), "-l", str(SMTP_SOURCE_LEN),
                "-f", MC_SENDER, "-t", "seed@sink.test", "-M", HELO, "%s:%d" % (HOST, port or self.p_sink)]
        r = measure(argv, sample=sample)
        say("smtp-source -s %d: %.2f s wall, %.3f s CPU, %d MiB, rc %s" % (
            sessions, r.wall, r.cpu, r.maxrss_kb // 1024, r.rc))
        if r.rc != 0:
            self.problems.append(("smtp-source -s %d" % sessions, "exit %s: %s" % (r.rc, r.stderr[-800:])))
        return r

    def sequential(self, tool, transport, argv, runs_n, ok_rc=(0,)):
        runs, ok = [], 0
        t0 = time.monotonic()
        for _ in range(runs_n):
            r = measure(argv, keep_output=False)
            runs.append(r)
            ok += r.rc in ok_rc
            if r.rc not in ok_rc and len(self.problems) < 30:
                self.problems.append(("%s %s" % (tool, transport), "exit %s: %s" % (r.rc, r.stderr[-600:])))
        wall = time.monotonic() - t0
        agg = Run(argv)
        agg.wall = wall
        agg.user = sum(r.user for r in runs)
        agg.sys = sum(r.sys for r in runs)
        agg.maxrss_kb = max(r.maxrss_kb for r in runs)
        agg.csw = sum(r.csw for r in runs)
        say("%s %s: %d runs, %.2f s wall, %.3f s CPU (%.1f ms/run), %d/%d ok" % (
            tool, transport, runs_n, wall, agg.cpu, agg.cpu / runs_n * 1000, ok, runs_n))
        self.row(tool, transport, runs_n, "sequential", [agg], [ok])
        return " ".join(shlex.quote(x) for x in argv)

    def mc_tls(self, in_flight, reps):
        conf = mc_config(self.conf_path("tls-%d" % in_flight), os.path.join(self.dir, "state"),
                         [("tls", self.p_pf, "required", self.ca)],
                         [("t%04d" % i, "seed%04d@sink.test" % i, "tls") for i in range(N)], in_flight)
        runs, oks, tls_counts = [], [], []
        for k in range(reps):
            r, res = self.mc(conf, timeout=240)
            ok = sum(1 for x in res if x["smtp"]["outcome"] == "accepted")
            tls_ok = sum(1 for x in res if (x["smtp"].get("tls") or {}).get("verified"))
            runs.append(r)
            oks.append(ok)
            say("mailcanary STARTTLS in_flight=%d rep %d: %.2f s wall, %.3f s CPU, %d MiB, %d/%d accepted "
                "(%d over verified TLS), rc %s" % (in_flight, k + 1, r.wall, r.cpu, r.maxrss_kb // 1024, ok, N, tls_ok, r.rc))
            if ok != N or r.rc != 0:
                self.problem("mailcanary STARTTLS, in_flight %d, rep %d" % (in_flight, k + 1), r, res, N)
            tls_counts.append(tls_ok)
            if k == 0 and res:
                self.tls_example = (res[0]["smtp"].get("tls") or {})
        self.row("mailcanary", "STARTTLS", N, "in_flight %d" % in_flight, runs, oks,
                 note="TLS verified on %s of %d; Postfix smtpd (%d processes) terminates TLS" % (
                     "/".join(str(x) for x in tls_counts), N, SMTPD_PROCS))

    def inflight_run(self, n, label, nofile=NOFILE, record_row=True):
        conf = mc_config(self.conf_path("wait-%d" % n), os.path.join(self.dir, "state"),
                         [("wait", self.p_wait, "none", None)],
                         [("w%04d" % i, "seed%04d@sink.test" % i, "wait") for i in range(n)], n)
        r, res = self.mc(conf, sample=True, nofile=nofile)
        ok = sum(1 for x in res if x["smtp"]["outcome"] == "accepted")
        mo = max_open(res)
        say("mailcanary %d in flight (%s): %.2f s wall, %.3f s CPU, %.1f MiB peak RSS, %d threads, %d fds, "
            "%d open at once, %d/%d accepted, rc %s" % (n, label, r.wall, r.cpu, peak_rss_kb(r) / 1024.0,
                                                        r.peak_threads, r.peak_fds, mo, ok, n, r.rc))
        if ok != n or r.rc != 0:
            self.problem("mailcanary %d in flight (%s)" % (n, label), r, res, n)
        if record_row:
            self.inflight.append({"tool": "mailcanary", "label": label, "n": n, "open": mo, "wall": r.wall,
                                  "cpu_ms": r.cpu / n * 1000, "rss": peak_rss_kb(r) / 1024.0,
                                  "threads": r.peak_threads, "fds": r.peak_fds, "ok": "%d/%d" % (ok, n),
                                  "rc": r.rc})
        return r, res

    # -- stage timing against smtp-sink delays --------------------------------

    def timing(self, load):
        """25 single-session delay sinks (-W RCPT:1 -w 1 -W .:1); per_domain = 1 and one
        domain per sink keep each sink at one session, so its delay is not disturbed by
        other sessions (smtp-sink's timers are whole seconds on time()). The wire truth
        comes from a packet capture on lo: command packet -> first reply packet."""
        senders = [("d%02d" % i, p, "none", None) for i, p in enumerate(self.p_delay)]
        if load:
            seeds = [("d%02d-0" % i, "seed@d%02d.sink.test" % i, "d%02d" % i) for i in range(DELAY_SINKS)]
            seeds += [("f%04d" % i, "seed%04d@sink.test" % i, "fast") for i in range(N)]
            senders.append(("fast", self.p_sink, "none", None))
            conf = mc_config(self.conf_path("timing-load"), os.path.join(self.dir, "state"), senders, seeds,
                             DELAY_SINKS + N, per_domain=0)
            label = "%d probes in one round with %d fast probes (%d in flight)" % (
                DELAY_SINKS, N, DELAY_SINKS + N)
        else:
            seeds = [("d%02d-%d" % (i, k), "seed%d@d%02d.sink.test" % (k, i), "d%02d" % i)
                     for k in range(DELAY_ROUNDS) for i in range(DELAY_SINKS)]
            conf = mc_config(self.conf_path("timing"), os.path.join(self.dir, "state"), senders, seeds,
                             DELAY_SINKS, per_domain=1)
            label = "%d probes, %d at a time (one per sink)" % (len(seeds), DELAY_SINKS)
        sn = Sniffer(set(self.p_delay))
        sn.start()
        time.sleep(0.2)
        r, res = self.mc(conf)
        time.sleep(0.2)
        sn.finish()
        timed = [x for x in res if x["seed"].startswith("d")]
        ok = sum(1 for x in timed if x["smtp"]["outcome"] == "accepted")
        if ok != len(timed) or len(timed) != sum(1 for s in seeds if s[0].startswith("d")):
            self.problem("stage timing (%s)" % label, r, res, len(seeds))
        measured = [(x["seed"], x["smtp"]["ms"]) for x in timed if x["smtp"]["outcome"] == "accepted"]
        self.add_timing("mailcanary: " + label, measured, sn, len(timed), ok, r.wall)

    def timing_ref(self):
        """The same sessions made by a minimal reference client (Python, one thread,
        selectors, time taken right after send() and right after the reply is read): how
        close to the wire any client gets on this machine right now."""
        sn = Sniffer(set(self.p_delay))
        sn.start()
        time.sleep(0.2)
        argv = [sys.executable, os.path.abspath(__file__), "--refclient",
                ",".join(str(p) for p in self.p_delay), "--rounds", str(DELAY_ROUNDS)]
        r = measure(argv, timeout=60)
        time.sleep(0.2)
        sn.finish()
        measured = []
        for line in r.stdout.splitlines():
            try:
                x = json.loads(line)
                measured.append((x["seed"], x["ms"]))
            except (ValueError, KeyError):
                pass
        n = DELAY_SINKS * DELAY_ROUNDS
        if r.rc != 0 or len(measured) != n:
            self.problems.append(("reference client", "exit %s, %d of %d sessions: %s" % (
                r.rc, len(measured), n, r.stderr[-800:])))
        self.add_timing("reference client (Python, 1 thread): %d sessions, %d at a time (one per sink)" % (
            n, DELAY_SINKS), measured, sn, n, len(measured), r.wall, ref=True)

    def add_timing(self, label, measured, sn, n, ok, wall, ref=False):
        wire = sn.stages()                  # seed -> {stage: wire ms}
        stats, all_wire, all_nom = {}, [], []
        for st in ("rcpt", "data", "eod", "ehlo", "mail"):
            nominal = DELAY_S * 1000.0 if st in ("rcpt", "data", "eod") else None
            e_nom, e_wire, over, vals = [], [], [], []
            for seed, ms_d in measured:
                ms = ms_d.get(st)
                if ms is None:
                    continue
                vals.append(ms)
                if nominal is not None:
                    e_nom.append(ms - nominal)
                w = wire.get(seed, {}).get(st)
                if w is not None:
                    e_wire.append(ms - w)
                    if nominal is not None:
                        over.append(w - nominal)
            if nominal is not None:
                all_wire += e_wire
                all_nom += e_nom
            stats[st] = {"n": len(vals), "n_wire": len(e_wire), "nominal": nominal,
                         "mean": statistics.mean(vals) if vals else None,
                         "nom_mean": mean_abs(e_nom), "nom_p95": p95_abs(e_nom), "nom_max": max_abs(e_nom),
                         "wire_mean": mean_abs(e_wire), "wire_p95": p95_abs(e_wire), "wire_max": max_abs(e_wire),
                         "wire_signed": statistics.mean(e_wire) if e_wire else None,
                         "over_mean": statistics.mean(over) if over else None,
                         "over_max": max(over) if over else None}
        say("stage timing, %s: %d/%d accepted, %d sessions captured (%d packets, %d dropped by the kernel)" % (
            label, ok, n, len(wire), sn.packets, sn.drops))
        for st in ("rcpt", "data", "eod"):
            x = stats[st]
            say("  %s: vs injected mean %s max %s ms; vs wire mean %s max %s ms; sink overshoot mean %s max %s ms" % (
                st, fmt(x["nom_mean"], 2), fmt(x["nom_max"], 2), fmt(x["wire_mean"], 3), fmt(x["wire_max"], 3),
                fmt(x["over_mean"], 2), fmt(x["over_max"], 2)))
        self.timings.append({"label": label, "ref": ref, "stats": stats, "n": n, "ok": ok,
                             "captured": len(wire), "drops": sn.drops, "wall": wall,
                             "all_wire": all_wire, "all_nom": all_nom})

    # -- the whole run ---------------------------------------------------------

    def run(self):
        reps = self.a.reps
        ph = set(self.a.phases.split(","))
        self.setup()
        self.cmd_swaks = self.cmd_swaks_tls = self.cmd_check = self.cmd_check_tls = ""
        if "plain" in ph:
            for conc in (1, 100, 1000):
                self.plain_pair(conc, reps)
        if "swaks" in ph:
            self.cmd_swaks = self.sequential(
                "swaks", "plain", ["swaks", "--server", HOST, "--port", str(self.p_sink), "--from", MC_SENDER,
                                   "--to", "seed@sink.test", "--helo", HELO, "--silent", "2"], SWAKS_RUNS)
            self.cmd_check = self.sequential(
                "check_smtp", "plain", ["/usr/lib/nagios/plugins/check_smtp", "-H", HOST, "-p", str(self.p_sink),
                                        "-t", "10"], CHECK_SMTP_RUNS)
        if "tls" in ph:
            for inf in (100, 1000):
                self.mc_tls(inf, min(reps, 3))
        if "swaks" in ph:
            self.cmd_swaks_tls = self.sequential(
                "swaks", "STARTTLS", ["swaks", "--server", HOST, "--port", str(self.p_pf), "--from", MC_SENDER,
                                      "--to", "seed@sink.test", "--helo", HELO, "--tls", "--tls-verify",
                                      "--tls-ca-path", self.ca, "--silent", "2"], SWAKS_RUNS)
            self.cmd_check_tls = self.sequential(
                "check_smtp", "STARTTLS", ["/usr/lib/nagios/plugins/check_smtp", "-H", HOST, "-p", str(self.p_pf),
                                           "-S", "-t", "10"], CHECK_SMTP_RUNS)
        if "inflight" in ph:
            # 1,000 in flight: peak RSS, and how it grows with the number of open sessions
            for n in (100, 250, 500):
                self.inflight_run(n, "sink -w %d" % INFLIGHT_WAIT)
            for k in range(min(reps, 3)):
                self.inflight_run(N, "sink -w %d" % INFLIGHT_WAIT)
            src = self.smtp_source_once(N, port=self.p_wait, sample=True)
            self.inflight.append({"tool": "smtp-source", "label": "sink -w %d, -s %d" % (INFLIGHT_WAIT, N),
                                  "n": N, "open": None, "wall": src.wall, "cpu_ms": src.cpu / N * 1000,
                                  "rss": peak_rss_kb(src) / 1024.0, "threads": src.peak_threads,
                                  "fds": src.peak_fds, "ok": "%d/%d" % (N if src.rc == 0 else 0, N),
                                  "rc": src.rc})
            # mailcanary raises its soft fd limit to the hard one; a hard limit of 4096 is what
            # it cannot get around (4 fds per probe in flight since the worker threads poll
            # curl directly, 6 before: 1,000 probes now just fit)
            self.inflight_run(N, "sink -w %d, RLIMIT_NOFILE 4096 soft+hard" % INFLIGHT_WAIT, nofile=(4096, 4096))
        if "timing" in ph:
            self.timing(load=False)
            self.timing_ref()
            self.timing(load=True)


def mean_abs(v):
    return statistics.mean(abs(x) for x in v) if v else None


def max_abs(v):
    return max(abs(x) for x in v) if v else None


def p95_abs(v):
    if not v:
        return None
    a = sorted(abs(x) for x in v)
    return a[min(len(a) - 1, int(round(0.95 * (len(a) - 1))))]


def fmt(v, d=1):
    return "–" if v is None else ("%.*f" % (d, v))


# ---------------------------------------------------------------------------
# Packet capture on lo (AF_PACKET, kernel timestamps): the wire truth for stage times

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
PACKET_STATISTICS = 6


class Sniffer(threading.Thread):
    """Captures TCP payload to/from the given server ports on lo, with the kernel's receive
    timestamps. Only incoming copies (each loopback packet is seen once leaving and once
    arriving)."""

    def __init__(self, ports):
        super().__init__(daemon=True)
        self.ports = ports
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._attach_filter(sorted(ports))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.1)
        self.stop = threading.Event()
        self.conns = {}          # client port -> [(ts, from_client, payload)]
        self.packets = 0
        self.drops = 0

    def _attach_filter(self, ports):
        """A classic BPF filter: only TCP segments from or to the ports reach this socket, so
        the capture costs nothing while 1,000 other sessions run on lo."""
        import ctypes
        n = len(ports)
        DROP, ACCEPT = 9 + 2 * n, 10 + 2 * n
        prog = [(0x28, 0, 0, 12),                       # ldh [12]   ethertype
                (0x15, 0, None, 0x0800),                # IPv4?
                (0x30, 0, 0, 23),                       # ldb [23]   protocol
                (0x15, 0, None, 6),                     # TCP?
                (0x28, 0, 0, 20),                       # ldh [20]   fragment offset
                (0x45, None, 0, 0x1FFF),                # not a later fragment
                (0xB1, 0, 0, 14),                       # ldxb 4*([14]&0xf)
                (0x48, 0, 0, 14)]                       # ldh [x+14] source port
        prog += [(0x15, "A", 0, p) for p in ports]
        prog += [(0x48, 0, 0, 16)]                      # ldh [x+16] destination port
        prog += [(0x15, "A", 0, p) for p in ports]
        prog += [(0x06, 0, 0, 0), (0x06, 0, 0, 0x40000)]
        assert len(prog) == ACCEPT + 1
        ins = b""
        for pc, (code, jt, jf, k) in enumerate(prog):
            def rel(x, pc=pc):
                if x is None:
                    return DROP - pc - 1
                if x == "A":
                    return ACCEPT - pc - 1
                return x
            ins += struct.pack("HBBI", code, rel(jt), rel(jf), k)
        self._fbuf = ctypes.create_string_buffer(ins)
        fprog = struct.pack("HL", len(prog), ctypes.addressof(self._fbuf))
        self.sock.setsockopt(socket.SOL_SOCKET, 26, fprog)          # SO_ATTACH_FILTER

    def run(self):
        while not self.stop.is_set():
            try:
                data, anc, _, addr = self.sock.recvmsg(65536, 64)
            except socket.timeout:
                continue
            except OSError:
                break
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            ts = None
            for lvl, typ, cd in anc:
                if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(cd) >= 16:
                    sec, nsec = struct.unpack("qq", cd[:16])
                    ts = sec + nsec / 1e9
            if ts is None:
                ts = time.time()
            off = 14                          # lo has an Ethernet-style header
            if len(data) < off + 20 or data[off] >> 4 != 4 or data[off + 9] != 6:
                continue
            ihl = (data[off] & 15) * 4
            tot = struct.unpack("!H", data[off + 2:off + 4])[0]
            t = off + ihl
            sport, dport = struct.unpack("!HH", data[t:t + 4])
            doff = (data[t + 12] >> 4) * 4
            payload = data[t + doff:off + tot]
            if not payload:
                continue
            if dport in self.ports:
                key, from_client = sport, True
            elif sport in self.ports:
                key, from_client = dport, False
            else:
                continue
            self.packets += 1
            self.conns.setdefault((key, dport if from_client else sport), []).append((ts, from_client, payload))

    def finish(self):
        self.stop.set()
        self.join(2)
        try:
            st = self.sock.getsockopt(263, PACKET_STATISTICS, 8)      # SOL_PACKET
            self.drops = struct.unpack("II", st)[1]
        except OSError:
            pass
        self.sock.close()

    def stages(self):
        """seed -> {stage: wire ms}: command packet to the first reply packet after it."""
        out = {}
        for pkts in self.conns.values():
            # capture order, not timestamp order: a packet tap gets a segment before TCP does,
            # so per connection the order is causal; once (1 in 25 under load) a reply's stamp
            # sorted after the next command and paired the wrong packets
            seed, times, pending, in_body, body = None, {}, None, False, b""
            for ts, from_client, pl in pkts:
                if from_client:
                    if in_body:
                        body += pl
                        if body.endswith(b"\r\n.\r\n"):
                            m = re.search(rb"Seed:\s+(\S+)", body)
                            if m:
                                seed = m.group(1).decode("ascii", "replace")
                            # the end-of-data stage starts when the terminating dot is sent
                            # (curl writes it separately, right after the last body chunk)
                            pending, in_body = ("eod", ts), False
                        continue
                    verb = pl[:4].upper()
                    st = {b"EHLO": "ehlo", b"HELO": "ehlo", b"MAIL": "mail", b"RCPT": "rcpt",
                          b"DATA": "data"}.get(verb)
                    pending = (st, ts) if st else None
                elif pending:
                    st, t0 = pending
                    times[st] = (ts - t0) * 1000.0
                    if st == "data" and pl.startswith(b"354"):
                        in_body = True
                    pending = None
            if seed:
                out[seed] = times
        return out


# ---------------------------------------------------------------------------
# Reference client for the stage-timing check

def refclient(ports, rounds):
    """Sessions like a probe's (EHLO, MAIL, RCPT, DATA, body, QUIT), one at a time per port,
    all ports at once, in one thread; prints {"seed", "ms": {stage: ms}} per session."""
    import selectors
    sel = selectors.DefaultSelector()
    order = [("ehlo", lambda s: b"EHLO bench.test\r\n"), ("mail", lambda s: b"MAIL FROM:<canary@bench.test>\r\n"),
             ("rcpt", lambda s: b"RCPT TO:<seed@sink.test>\r\n"), ("data", lambda s: b"DATA\r\n"),
             ("eod", lambda s: ("Subject: reference\r\n\r\nSeed:     %s\r\n.\r\n" % s["seed"]).encode()),
             ("quit", lambda s: b"QUIT\r\n")]
    left = {p: rounds for p in ports}

    def start(port):
        left[port] -= 1
        sock = socket.create_connection((HOST, port), timeout=10)
        sock.setblocking(False)
        st = {"sock": sock, "port": port, "buf": b"", "step": -1, "t": None, "ms": {},
              "seed": "ref%d-%d" % (port, rounds - left[port])}
        sel.register(sock, selectors.EVENT_READ, st)

    for p in ports:
        start(p)
    deadline = time.monotonic() + 50
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(1):
            st = key.data
            data = st["sock"].recv(65536)
            now = time.monotonic()
            if not data:
                sel.unregister(st["sock"])
                st["sock"].close()
                continue
            st["buf"] += data
            lines = st["buf"].split(b"\r\n")
            done = any(len(l) >= 3 and (len(l) == 3 or l[3:4] == b" ") for l in lines[:-1])
            if not done:
                continue
            st["buf"] = b""
            if st["step"] >= 0:
                st["ms"][order[st["step"]][0]] = (now - st["t"]) * 1000.0
            st["step"] += 1
            if st["step"] >= len(order):
                sel.unregister(st["sock"])
                st["sock"].close()
                print(json.dumps({"seed": st["seed"], "ms": st["ms"]}), flush=True)
                if left[st["port"]] > 0:
                    start(st["port"])
                continue
            st["sock"].sendall(order[st["step"]][1](st))
            st["t"] = time.monotonic()
    return 0 if not sel.get_map() else 1


# ---------------------------------------------------------------------------
# Report

def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def machine():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return ""
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    return {
        "nproc": sh("nproc"),
        "cpu": cpu,
        "mem": sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo"),
        "kernel": platform.release(),
        "os": sh(". /etc/os-release && echo \"$PRETTY_NAME\""),
        "load": sh("cut -d' ' -f1-3 /proc/loadavg"),
        "postfix": sh("postconf -h mail_version 2>/dev/null") or sh("dpkg-query -W -f '${Version}' postfix"),
        "swaks": sh("swaks --version 2>&1 | head -1"),
        "check_smtp": sh("/usr/lib/nagios/plugins/check_smtp -V 2>&1 | head -1"),
        "tw_reuse": sh("cat /proc/sys/net/ipv4/tcp_tw_reuse"),
        "somaxconn": sh("cat /proc/sys/net/core/somaxconn"),
        "nofile": "%s soft / %s hard in the shell" % tuple(
            "unlimited" if x == resource.RLIM_INFINITY else str(x)
            for x in resource.getrlimit(resource.RLIMIT_NOFILE)),
    }


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return rev + (" + uncommitted changes" if dirty else "")
    except OSError:
        return "?"


def report(b, m, started, elapsed, command):
    L = []
    w = L.append
    w("# mailcanary benchmark results")
    w("")
    w("Latest figures from `%s` (everything above the scheduler section is overwritten on every `--write` "
      "run; that section comes from `bench/daemon.sh --write`)." % command)
    w("")
    w("- Date: %s (whole run %.0f s)" % (started, elapsed))
    w("- Machine: %s × %s, %s RAM, %s, kernel %s" % (m["nproc"], m["cpu"], m["mem"], m["os"], m["kernel"]))
    w("- Load average (1/5/15 min) at the start %s, at the end %s: anything else running on the "
      "machine shares its cores with the clients and servers measured here" % (b.load_start, m["load"]))
    w("- mailcanary: `%s`; git HEAD %s when the run started; binary sha256 %s…, built %s UTC "
      "(copied from %s before the run)" % (
        b.mc_version, b.git, b.bin_sha, b.bin_mtime,
        os.path.relpath(b.a.bin, ROOT) if os.path.abspath(b.a.bin).startswith(ROOT) else b.a.bin))
    w("- Postfix %s (smtp-sink, smtp-source, smtpd), %s, %s" % (m["postfix"], m["swaks"], m["check_smtp"]))
    w("- Clients run with RLIMIT_NOFILE %d (shell: %s); tcp_tw_reuse %s, somaxconn %s" % (
        NOFILE, m["nofile"], m["tw_reuse"], m["somaxconn"]))
    w("- Servers, all on 127.0.0.1: `%s` (the sink every plain run uses; STARTTLS runs go through a "
      "private Postfix smtpd with STARTTLS and `smtpd_proxy_filter` to this same sink, %d smtpd "
      "processes, listen backlog 1000, self-signed EC P-256 certificate verified by the clients)" % (
          " ".join(b.cmd_sink), SMTPD_PROCS))
    if b.tls_example:
        w("- STARTTLS as negotiated by mailcanary: %s, %s, verified %s" % (
            b.tls_example.get("version"), b.tls_example.get("cipher"), b.tls_example.get("verified")))
    w("")

    # targets
    t = targets(b)
    w("## Targets")
    w("")
    w("| target | measured | met? |")
    w("|---|---|---|")
    for name, meas, ok in t:
        if not isinstance(ok, str):
            ok = "yes" if ok else ("**no**" if ok is False else "n/a")
        w("| %s | %s | %s |" % (name, meas, ok))
    w("")

    w("## Throughput and CPU per probe")
    w("")
    w("%d probes per round unless noted; median of %d rounds for mailcanary and smtp-source (CPU range "
      "in brackets); swaks and check_smtp: %d sequential runs, one process each, summed and divided per "
      "probe. CPU = user + sys of the client process (wait4 rusage); the servers' CPU is not counted. "
      "Peak RSS = ru_maxrss (median; for sequential tools the largest single run)." % (N, b.a.reps, SWAKS_RUNS))
    w("")
    w("Concurrency: `in_flight N` is mailcanary's limit, not the sessions it opens. Its SMTP attempts run "
      "on pooled threads; up to 2 per core start at once, and more only while every thread waits on its "
      "server (probe/smtp.c). Against this sink, which answers at once, a few threads carry all 1,000 "
      "probes one after another, while `smtp-source -s N` opens N sessions. The in-flight section below "
      "uses a sink that holds every session for 3 s: there mailcanary opens 1,000 at once.")
    w("")
    w("| tool | transport | probes | concurrency | wall s | probes/s | CPU ms/probe | user s | sys s | ctx switches/probe | peak RSS MiB | accepted | note |")
    w("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in b.rows:
        rng = " (%.2f–%.2f)" % (r["cpu_min"], r["cpu_max"]) if r["reps"] > 1 else ""
        if r["reps"] == 1:
            ok = r["ok"]
        elif len(set(r["ok_all"])) == 1:
            ok = "%d/%d in each of %d rounds" % (r["ok_all"][0], r["probes"], r["reps"])
        else:
            ok = "/".join(str(x) for x in r["ok_all"]) + " of %d" % r["probes"]
        note = r["note"]
        if r["tool"] == "check_smtp":
            note = (note + "; " if note else "") + "connection check only (EHLO%s, QUIT), no message" % (
                ", STARTTLS" if r["transport"] == "STARTTLS" else "")
        if r["tool"] == "smtp-source":
            note = "HELO, no TLS support; -l %d" % SMTP_SOURCE_LEN
        if r["tool"] == "swaks":
            note = (note + "; " if note else "") + "one Perl process per message"
        w("| %s | %s | %d | %s | %.2f | %.0f | %.3f%s | %.2f | %.2f | %.1f | %.1f | %s | %s |" % (
            r["tool"], r["transport"], r["probes"], r["conc"], r["wall"], r["rate"], r["cpu_ms"], rng,
            r["user"], r["sys"], r["csw"], r["rss"], ok, note))
    w("")
    w("smtp-source has no STARTTLS, so it has no STARTTLS row. Probes per second for swaks and "
      "check_smtp are for one-at-a-time runs (as an admin or a Nagios check would run them).")
    w("")

    w("## %d probes in flight: peak RSS" % N)
    w("")
    w("The sink delays its DATA reply by %d s (`smtp-sink -w %d`), so every session stays open; "
      "\"open at once\" is the most sessions overlapping in time according to each probe's `sent_at` and "
      "`ms.total`. Threads and fds: peak of a 100 ms /proc sampler. Peak RSS: VmHWM as that sampler last "
      "read it (wait4's ru_maxrss would also count the Python image the child had before exec, about "
      "16 MiB even for /bin/true, which hid the growth below a few hundred sessions)." % (INFLIGHT_WAIT, INFLIGHT_WAIT))
    w("")
    w("| tool | run | sessions | open at once | wall s | CPU ms/probe | peak RSS MiB | KiB per session | KiB per added session | peak threads | peak fds | accepted | exit |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    prev = None
    for r in b.inflight:
        marg = "–"
        if r["tool"] == "mailcanary" and r["label"] == "sink -w %d" % INFLIGHT_WAIT:
            if prev and r["n"] > prev["n"]:
                marg = "%.0f" % ((r["rss"] - prev["rss"]) * 1024 / (r["n"] - prev["n"]))
            if not prev or r["n"] > prev["n"]:
                prev = r
        w("| %s | %s | %d | %s | %.2f | %.3f | %.1f | %.0f | %s | %d | %d | %s | %s |" % (
            r["tool"], r["label"], r["n"], "–" if not r["open"] else r["open"], r["wall"], r["cpu_ms"],
            r["rss"], r["rss"] * 1024 / r["n"], marg, r["threads"], r["fds"], r["ok"], r["rc"]))
    w("")

    w("## Stage timing against smtp-sink delays")
    w("")
    w("Delay sinks: `smtp-sink -u nobody -W RCPT:%d -w %d -W .:%d 127.0.0.1:PORT 100` × %d, one session per "
      "sink at a time (smtp-sink's delay timers are whole seconds on `time()`, so a sink that is busy with "
      "other sessions fires early; one session per sink keeps the delay honest). Error vs injected = "
      "mailcanary's `ms.<stage>` − %d ms. Error vs wire = mailcanary's `ms.<stage>` − the time between the "
      "command packet and the first reply packet, from a packet capture on lo (kernel timestamps): that is "
      "mailcanary's own measurement error. Sink overshoot = wire − injected: how late smtp-sink itself "
      "answers." % (DELAY_S, DELAY_S, DELAY_S, DELAY_SINKS, DELAY_S * 1000))
    w("")
    w("| client, run | stage | injected ms | probes (captured) | mean ms.stage | error vs injected mean / p95 / max ms | error vs wire mean / p95 / max ms | mean signed error vs wire ms | sink overshoot mean / max ms |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for tr in b.timings:
        for st in ("rcpt", "data", "eod", "ehlo", "mail"):
            s = tr["stats"][st]
            w("| %s | %s | %s | %d (%d) | %s | %s / %s / %s | %s / %s / %s | %s | %s / %s |" % (
                tr["label"], st, "%d" % s["nominal"] if s["nominal"] else "0 (no delay)", s["n"], s["n_wire"],
                fmt(s["mean"], 2), fmt(s["nom_mean"], 2), fmt(s["nom_p95"], 2), fmt(s["nom_max"], 2),
                fmt(s["wire_mean"], 3), fmt(s["wire_p95"], 3), fmt(s["wire_max"], 3), fmt(s["wire_signed"], 3),
                fmt(s["over_mean"], 2), fmt(s["over_max"], 2)))
    w("")
    if b.notes:
        w("## Notes")
        w("")
        for n in b.notes:
            w("- " + n)
        w("")
    if b.problems:
        w("## Problems seen in this run")
        w("")
        for title, text in b.problems:
            w("### " + title)
            w("")
            w(text)
    w("## Commands")
    w("")
    w("- mailcanary: `mailcanary -c CONF probe --json`, CONF generated (relay mode to 127.0.0.1:PORT, "
      "one sender, %d seeds, `limits: { in_flight = N; per_domain = 0; spacing = \"0s\"; }`, "
      "`tls = \"none\"` or `tls = \"required\"` + `ca_file`)" % N)
    w("- smtp-source: `smtp-source -s S -m %d -l %d -f %s -t seed@sink.test -M %s 127.0.0.1:PORT` "
      "(S = 1, 100, 1000)" % (N, SMTP_SOURCE_LEN, MC_SENDER, HELO))
    w("- swaks: `%s`" % b.cmd_swaks.replace(str(b.p_sink), "PORT"))
    w("- swaks STARTTLS: `%s`" % b.cmd_swaks_tls.replace(str(b.p_pf), "PORT").replace(b.ca, "CA.pem"))
    w("- check_smtp: `%s`, STARTTLS: `%s`" % (b.cmd_check.replace(str(b.p_sink), "PORT"),
                                             b.cmd_check_tls.replace(str(b.p_pf), "PORT")))
    w("")
    return "\n".join(L) + "\n"


def pick(rows, tool, transport, conc=None):
    for r in rows:
        if r["tool"] == tool and r["transport"] == transport and (conc is None or r["conc"] == conc):
            return r
    return None


def targets(b):
    out = []
    for conc in (1, 100, 1000):
        m = pick(b.rows, "mailcanary", "plain", "in_flight %d" % conc)
        s = pick(b.rows, "smtp-source", "plain", "-s %d" % conc)
        rs = b.pair_ratios.get(conc)
        if m and s and rs:
            ratio = statistics.median(rs)
            out.append(("CPU per probe ≤ 2× smtp-source (in_flight %d vs -s %d)" % (conc, conc),
                        "%.3f vs %.3f ms (medians); per-pair ratio median %.2f× (%.2f–%.2f over %d pairs)" % (
                            m["cpu_ms"], s["cpu_ms"], ratio, min(rs), max(rs), len(rs)), ratio <= 2.0))
    for tr in ("plain", "STARTTLS"):
        sw = pick(b.rows, "swaks", tr)
        for m in [r for r in b.rows if r["tool"] == "mailcanary" and r["transport"] == tr]:
            if sw:
                ratio = sw["cpu_ms"] / m["cpu_ms"]
                out.append(("CPU per probe ≥ 20× below swaks (%s, mailcanary %s)" % (tr, m["conc"]),
                            "%.3f vs %.1f ms = %.0f× below" % (m["cpu_ms"], sw["cpu_ms"], ratio), ratio >= 20))
    full = [r for r in b.inflight if r["tool"] == "mailcanary" and r["n"] == N
            and r["label"] == "sink -w %d" % INFLIGHT_WAIT]
    if full:
        rss = [r["rss"] for r in full]
        allok = all(r["ok"] == "%d/%d" % (N, N) for r in full)
        out.append(("%d in flight < 64 MiB peak RSS" % N,
                    "%.1f MiB (%.1f–%.1f over %d runs), %s open at once, all accepted: %s" % (
                        statistics.median(rss), min(rss), max(rss), len(rss),
                        "/".join(str(r["open"]) for r in full), "yes" if allok else "no"),
                    max(rss) < 64 and allok))
    for tr in b.timings:
        if tr.get("ref"):
            continue
        for kind, what in (("wire", "vs the wire (mailcanary's own error)"),
                           ("nom", "vs the injected delay (includes the sink's own overshoot)")):
            allv = tr["all_" + kind]
            if not allv:
                continue
            a = sorted(abs(x) for x in allv)
            mean, p95, mx = statistics.mean(a), a[min(len(a) - 1, int(round(0.95 * (len(a) - 1))))], a[-1]
            verdict = " / ".join("%s %s" % (n, "yes" if v <= 2.0 else "**no**")
                                 for n, v in (("mean", mean), ("p95", p95), ("max", mx)))
            out.append(("stage timing error ≤ 2 ms %s, %s" % (what, tr["label"]),
                        "absolute error over rcpt/data/eod (%d values): mean %.2f, p95 %.2f, max %.2f ms" % (
                            len(a), mean, p95, mx), verdict))
    return out


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description="mailcanary benchmark (see bench/README.md)")
    ap.add_argument("--write", action="store_true", help="also write bench/RESULTS.md")
    ap.add_argument("--reps", type=int, default=5,
                    help="rounds per plain mailcanary/smtp-source figure (default 5; STARTTLS and "
                         "1,000-in-flight runs use at most 3)")
    ap.add_argument("--bin", default=os.environ.get("MAILCANARY_BIN") or os.path.join(ROOT, "build", "cli", "mailcanary"))
    ap.add_argument("--workdir", help="scratch directory (default: a new one under /tmp)")
    ap.add_argument("--cleanup", metavar="DIR", help="stop the servers a run left in DIR, then exit")
    ap.add_argument("--command", default="bench/run.sh", help=argparse.SUPPRESS)
    ap.add_argument("--refclient", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=DELAY_ROUNDS, help=argparse.SUPPRESS)
    ap.add_argument("--phases", default="plain,swaks,tls,inflight,timing",
                    help="comma-separated subset of plain,swaks,tls,inflight,timing (default all)")
    a = ap.parse_args()
    if a.cleanup:
        cleanup(a.cleanup)
        return 0
    if a.refclient:
        return refclient([int(x) for x in a.refclient.split(",")], a.rounds)
    if os.geteuid() != 0:
        print("bench: run as root (private Postfix, loopback packet capture)", file=sys.stderr)
        return 2
    if not os.access(a.bin, os.X_OK):
        print("bench: no mailcanary binary at %s (build it: bash scripts/build.sh)" % a.bin, file=sys.stderr)
        return 2
    for tool in ("smtp-sink", "smtp-source", "swaks", "postfix"):
        if not shutil.which(tool):
            print("bench: %s not found" % tool, file=sys.stderr)
            return 2
    own_dir = not a.workdir
    if own_dir:
        a.workdir = tempfile.mkdtemp(prefix="mcbench-", dir="/tmp")
    a.workdir = os.path.abspath(a.workdir)
    os.makedirs(a.workdir, exist_ok=True)
    os.chmod(a.workdir, 0o755)              # postfix and nobody must traverse it

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    b = Bench(a)
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
        if own_dir and sys.exc_info()[0] is not None:
            shutil.rmtree(a.workdir, ignore_errors=True)
    if rc:
        if own_dir:
            shutil.rmtree(a.workdir, ignore_errors=True)
        return rc
    elapsed = time.monotonic() - T0
    text = report(b, machine(), started, elapsed, a.command)
    print(text)
    if elapsed > BUDGET_S:
        say("warning: the run took %.0f s, over the %d s budget" % (elapsed, BUDGET_S))
    if a.write:
        path = os.path.join(HERE, "RESULTS.md")
        # keep everything from the scheduler benchmark's block on: the sections the other
        # benchmarks write (daemon.py, readback.py, graph.py, rrd_updates.py)
        try:
            with open(path) as f:
                old = f.read()
            i = old.find("<!-- daemon-bench:begin")
            if i >= 0:
                text = text.rstrip("\n") + "\n\n" + old[i:]
        except OSError:
            pass
        with open(path, "w") as f:
            f.write(text)
        say("wrote %s" % os.path.join(HERE, "RESULTS.md"))
    if own_dir:
        shutil.rmtree(a.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
