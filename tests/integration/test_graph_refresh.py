#!/usr/bin/env python3
"""graph_dir/graph_every through the real daemon against the lab: `run` with graph_every "5s"
writes index.html and every seed's PNGs into graph_dir without a manual graph run, with the
seeds' states; it redraws them (the files' mtimes change) and logs one line per refresh with
its exit status and duration (a slow build may skip one while another runs; none fails); a refresh that fails (a broken RRD file the graph command
trips over) is logged as failed and the daemon goes on, and refreshes work again once it is
gone; a refresh that hangs (the graph command blocked opening a FIFO) makes the next ones be
skipped and logged, never two children at once; SIGTERM stops the daemon with the child
ended and reaped (SIGTERM, then SIGKILL after 10 s); check-config takes graph_dir and refuses
a graph_every under 5 s."""

import html.parser
import os
import re
import subprocess
import time

import mclab

L = mclab.lab()
rep = mclab.Report("graph_refresh")
wd = mclab.Workdir("graph-refresh")
daemons = mclab.Daemons()


def stop(p, timeout=40):
    return mclab.stop(p, timeout)


rep.guard(daemons.stop_all, wd.cleanup)

SENDERS = [{"name": n, "mode": "mx", "port": L["sinks"][s], "helo": "probe.lab.test", "mail_from": "canary@lab.test",
            "tls": "none"} for n, s in (("ok", "ok"), ("r432", "rcpt432"))]
SEEDS = [{"name": "plain", "address": "seed1@sink.test", "sender": "ok", "schedule": "hourly"},
         {"name": "defer", "address": "seed1@sink.test", "sender": "r432", "schedule": "hourly"}]
KINDS = ["stages", "delivery", "outcomes", "retries"]
PERIODS = ["1d", "1w", "1m", "1y"]
LSAN_SUPP = os.path.join(wd.path, "lsan.supp")
with open(LSAN_SUPP, "w") as f:  # as test_graph.py: librrd's and fontconfig's own leaks in the graph child
    f.write("leak:librrd.so\nleak:libfontconfig.so\nleak:__vasprintf_internal\n")
ENV = dict(os.environ, LSAN_OPTIONS="suppressions=%s:print_suppressions=0" % LSAN_SUPP)


def config(name, out, seeds=SEEDS, every='"5s"'):
    extra = 'retry: { schedule = []; };\ngraph_dir = %s;\ngraph_every = %s;\n' % (mclab.q(out), every)
    return wd.config(name, SENDERS, seeds, extra=extra)


def state(name):
    return os.path.join(wd.path, "state-" + name)


def start(conf, name):
    return wd.start_daemon(conf, name, daemons, env=ENV)


log_of = wd.log


class States(html.parser.HTMLParser):
    """{seed: state} from the index's table: a row's first link is the seed, its second cell the
    state."""

    def __init__(self):
        super().__init__()
        self.rows, self._row, self._cell, self._name, self._in_a = {}, None, None, None, False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row, self._name = [], None
        elif tag == "td" and self._row is not None:
            self._cell = ""
        elif tag == "a" and self._row is not None and self._name is None:
            self._name, self._in_a = "", True

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._in_a:
            self._name += data

    def handle_endtag(self, tag):
        if tag == "a":
            self._in_a = False
        elif tag == "td" and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row:
            self.rows[(self._name or "").strip()] = self._row[1] if len(self._row) > 1 else ""
            self._row = None


def states(out):
    p = States()
    with open(os.path.join(out, "index.html"), encoding="utf-8") as f:
        p.feed(f.read())
    return p.rows


def refresh_lines(text, status=None):
    pat = r"event=graph-refresh status=%s [^\n]*" % (status or r"\S+")
    return re.findall(pat, text)


# ---------------------------------------------------------------------------
# the daemon draws the dashboard by itself, and again every 5 s

out = os.path.join(wd.path, "www")
conf = config("main", out)
rc, o, e = mclab.run(["-c", conf, "check-config"])
rep.check("check-config: graph_dir and graph_every = \"5s\" are accepted", rc == 0 and "configuration OK" in o,
          "rc %d %s %s" % (rc, o, e))
t_start = time.monotonic()
p = start(conf, "main")
pngs = [os.path.join(out, "img", s["name"], "%s-%s.png" % (k, per)) for s in SEEDS for k in KINDS for per in PERIODS]


def drawn_with_states():
    if not os.path.exists(os.path.join(out, "index.html")) or not all(os.path.exists(x) for x in pngs):
        return False
    try:
        st = states(out)
    except OSError:
        return False
    return st.get("plain") == "ok" and st.get("defer") == "deferred"


ok = mclab.wait_for(drawn_with_states, 60)
rep.check("run: index.html and the %d PNGs in graph_dir without a manual graph run, with the states (%.1f s)" % (
    len(pngs), time.monotonic() - t_start), ok, "files %s log %s" % (
    sorted(os.listdir(out)) if os.path.isdir(out) else "-", log_of("main")[-800:]))
bad = [x for x in pngs if mclab.png_size(x) != (800, 240)]
rep.check("run: each PNG is an 800x240 PNG", not bad, str(bad[:3]))
m_index = os.stat(os.path.join(out, "index.html")).st_mtime_ns
m_png = os.stat(pngs[0]).st_mtime_ns
n0 = len(refresh_lines(log_of("main"), "ok"))
ok = mclab.wait_for(lambda: os.stat(os.path.join(out, "index.html")).st_mtime_ns != m_index
              and os.stat(pngs[0]).st_mtime_ns != m_png and len(refresh_lines(log_of("main"), "ok")) > n0, 30)
rep.check("run: redrawn (index.html and a PNG have new mtimes, a further refresh logged)", ok,
          log_of("main")[-600:])
text = log_of("main")
oks = refresh_lines(text, "ok")
rep.check("run: one line per refresh with rc=0 and its duration (%d so far)" % len(oks),
          len(oks) >= 2 and all(re.search(r"rc=0 ms=\d+ out=%s pid=\d+" % re.escape(out), x) for x in oks),
          "\n".join(oks[:3]))
# a slow machine (a sanitizer build under load) may take longer than 5 s to draw: a refresh is
# then skipped, which is what it should do; none may fail
rep.check("run: no refresh failed (%d skipped while one ran)" % len(refresh_lines(text, "skipped")),
          not refresh_lines(text, "failed") and all("still running" in x for x in refresh_lines(text, "skipped")),
          "\n".join(refresh_lines(text)[-5:]))

# a refresh that fails: the graph command (which reads the configuration file itself) meets a
# seed whose RRD file is garbage; the daemon logs it and goes on; once the file is gone the
# refreshes are ok again
broken = os.path.join(state("main"), "rrd", "broken.rrd")
with open(broken, "wb") as f:
    f.write(b"not an RRD file\n" * 8)
with open(conf) as f:
    conf_text = f.read()
with open(conf, "w") as f:
    f.write(conf_text.replace("seeds = (\n", 'seeds = (\n  { name = "broken"; address = "seed1@sink.test"; sender = "ok";'
                              ' schedule = "hourly"; },\n', 1))
ok = mclab.wait_for(lambda: len(refresh_lines(log_of("main"), "failed")) >= 1, 30)
fails = refresh_lines(log_of("main"), "failed")
rep.check("run: a failing refresh is logged with its exit status (rc=1) and the daemon goes on",
          ok and re.search(r"status=failed rc=1 ms=\d+", fails[0]) is not None and p.poll() is None,
          "%s poll %r" % (fails[:2], p.poll()))
rep.check("run: the graph command's own error names the broken file", broken in log_of("main"),
          log_of("main")[-500:])
with open(conf, "w") as f:
    f.write(conf_text)
os.unlink(broken)
n1 = len(refresh_lines(log_of("main"), "ok"))
ok = mclab.wait_for(lambda: len(refresh_lines(log_of("main"), "ok")) > n1, 30)
rep.check("run: refreshes are ok again once the file is gone", ok and p.poll() is None,
          "\n".join(refresh_lines(log_of("main"))[-4:]))

rc = stop(p)
text = log_of("main")
rep.check("run: SIGTERM: exit 0, no graph child left", rc == 0 and "event=exit status=0" in text,
          "rc %r %s" % (rc, text[-500:]))
pids = [int(x) for x in re.findall(r"event=graph-refresh status=\S+ [^\n]*pid=(\d+)", text)]
alive = [x for x in pids if os.path.exists("/proc/%d" % x)]
rep.check("run: every refresh child was reaped (%d children, none left)" % len(pids), pids and not alive, str(alive))

# ---------------------------------------------------------------------------
# a refresh that hangs: the next ones are skipped (never two children at once); SIGTERM ends
# the daemon with the child killed after the grace and reaped

out2 = os.path.join(wd.path, "www-hang")
conf2 = config("hang", out2)
os.makedirs(state("hang"), exist_ok=True)
fifo = os.path.join(state("hang"), "results.jsonl.1")  # the graph command reads it: opening a FIFO blocks
os.mkfifo(fifo)
p = start(conf2, "hang")
ok = mclab.wait_for(lambda: len(refresh_lines(log_of("hang"), "skipped")) >= 2, 40)
text = log_of("hang")
skipped = refresh_lines(text, "skipped")
hung = [int(x) for x in re.findall(r"status=skipped pid=(\d+)", text)]
rep.check("hang: later refreshes are skipped and logged, all naming the one running child",
          ok and len(set(hung)) == 1 and all("still running" in x for x in skipped), "\n".join(skipped[:3]))
children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(p.pid)], capture_output=True, text=True).stdout.split()
rep.check("hang: the daemon has exactly one child", children == [str(hung[0])] if hung else False, str(children))
t0 = time.monotonic()
rc = stop(p, timeout=60)
dt = time.monotonic() - t0
text = log_of("hang")
rep.check("hang: SIGTERM: the daemon exits 0 within the 10 s grace plus a little (%.1f s)" % dt,
          rc == 0 and dt < 25, "rc %r %s" % (rc, text[-600:]))
rep.check("hang: the child was sent SIGTERM, then killed and reaped", "event=graph-refresh status=stopping" in text
          and "status=killed" in text and re.search(r"status=failed signal=9 [^\n]*stopped with the daemon", text)
          is not None, text[-800:])
rep.check("hang: the child is gone", hung and not os.path.exists("/proc/%d" % hung[0]), str(hung))
os.unlink(fifo)

# graph_every below its minimum
conf3 = config("fast", out2, every='"1s"')
rc, o, e = mclab.run(["-c", conf3, "check-config"])
rep.check("check-config: graph_every = \"1s\" is refused (exit 2, FILE:LINE: graph_every: ...)",
          rc == 2 and re.search(r"%s:\d+: graph_every: " % re.escape(conf3), e) is not None, "rc %d %s" % (rc, e))

daemons.stop_all()
wd.cleanup()
rep.finish()
