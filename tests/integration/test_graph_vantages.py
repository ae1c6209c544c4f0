#!/usr/bin/env python3
"""Vantages side by side in `mailcanary graph`, through the real CLI against the lab: two
configurations with their own `vantage` (v-def, whose seed s1 is deferred by the rcpt432 sink, and
v-ok, where it is accepted; s2 is accepted at both) write into one rrd_dir, and in the other case
into one rrdcached on 127.0.0.1:PORT (a real rrdcached started here, stopped after). `graph` run
with either configuration draws every vantage's files: the index is a table of seeds by
vantages, this host's vantage first (its state from its detail log) and the other's state from
its RRD file (the latest step with a known outcome), each cell with its small outcome graph, so
s1 shows deferred at v-def and ok at v-ok while s2 is ok at both; a host with no files of its
own (no vantage) shows just the two; a seed's page has a row per vantage and each graph side by
side; every PNG is valid; headless Chromium loads the pages from the file system with every
image loaded at its size and every link pointing at a file."""

import html
import html.parser
import os
import re
import socket
import subprocess
import time
import urllib.parse

import mclab

L = mclab.lab()
rep = mclab.Report("graph_vantages")
wd = mclab.Workdir("graph-vantages")
daemons = mclab.Daemons()
KINDS = ["stages", "delivery", "outcomes", "retries"]
PERIODS = ["1d", "1w", "1m", "1y"]


stop = mclab.stop
rep.guard(daemons.stop_all, wd.cleanup)

LSAN_SUPP = os.path.join(wd.path, "lsan.supp")
with open(LSAN_SUPP, "w") as f:  # as test_graph.py: librrd's and fontconfig's own leaks
    f.write("leak:librrd.so\nleak:libfontconfig.so\nleak:__vasprintf_internal\n")
GRAPH_ENV = {"LSAN_OPTIONS": "suppressions=%s:print_suppressions=0" % LSAN_SUPP}

SENDERS = [{"name": n, "mode": "mx", "port": L["sinks"][s], "helo": "probe.lab.test", "mail_from": "canary@lab.test",
            "tls": "none"} for n, s in (("ok", "ok"), ("r432", "rcpt432"))]


def seeds(s1_sender):
    return [{"name": "s1", "address": "seed1@sink.test", "sender": s1_sender, "schedule": "hourly"},
            {"name": "s2", "address": "seed2@sink.test", "sender": "ok", "schedule": "hourly"}]


def config(name, vantage, s1_sender, where):
    extra = 'retry: { schedule = []; };\n' + where
    if vantage:
        extra += "vantage = %s;\n" % mclab.q(vantage)
    return wd.config(name, SENDERS, seeds(s1_sender), extra=extra)


# ---- pages ----------------------------------------------------------------

class Index(html.parser.HTMLParser):
    """The vantage table: head (column names) and {seed: {vantage: (class, state, text)}}."""

    def __init__(self):
        super().__init__()
        self.head, self.rows, self.srcs, self.hrefs, self.scripts = [], {}, [], [], 0
        self._th = self._seed = self._cell = None
        self._in_a = self._in_state = False
        self._state = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" or any(k.startswith("on") for k in a):
            self.scripts += 1
        if tag == "img":
            self.srcs.append(a.get("src"))
        if tag == "a":
            self.hrefs.append(a.get("href"))
        if tag == "th":
            self._th = ""
        elif tag == "tr" and a.get("class") == "seed":
            self._seed = ""
            self._in_a = False
        elif tag == "a" and self._seed == "":
            self._in_a = True
        elif tag == "td" and "cell" in (a.get("class") or "").split():
            self._cell = [a.get("class").split()[1], a.get("data-vantage"), ""]
            self._state = ""
        elif tag == "span" and self._cell is not None and a.get("class") == "state":
            self._in_state = True

    def handle_data(self, data):
        if self._th is not None:
            self._th += data
        if self._in_a:
            self._seed += data
        if self._in_state:
            self._state += data
        elif self._cell is not None:
            self._cell[2] += data

    def handle_endtag(self, tag):
        if tag == "th" and self._th is not None:
            self.head.append(self._th.strip())
            self._th = None
        elif tag == "a":
            self._in_a = False
        elif tag == "span":
            self._in_state = False
        elif tag == "td" and self._cell is not None:
            self.rows.setdefault(self._seed, {})[self._cell[1]] = (self._cell[0], self._state.strip(), self._cell[2])
            self._cell = None


def parse(path, cls=Index):
    p = cls()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    return p


def chromium_check(label, out, pages):
    """Every image of the pages complete at its PNG's size (800x240, the small ones 300x60),
    every link to an existing file, no script: headless Chromium from the file system
    (mclab.chromium_frames())."""
    res = mclab.chromium_frames(rep, wd.path, label, out, pages)
    if res is None:
        return
    bad, n, bad_link, n_link = [], 0, [], 0
    for r in res:
        for im in r["imgs"]:
            n += 1
            want = (300, 60) if im["src"].endswith("-small.png") else (800, 240)
            if not im["complete"] or (im["w"], im["h"]) != want:
                bad.append("%s: complete %s %dx%d" % (im["src"], im["complete"], im["w"], im["h"]))
        for href in r["links"]:
            n_link += 1
            u = urllib.parse.urlparse(href)
            if u.scheme != "file" or not os.path.isfile(urllib.parse.unquote(u.path)):
                bad_link.append(href)
    rep.check("%s: every image loaded at its size (%d)" % (label, n), n > 0 and not bad, "; ".join(bad[:4]))
    rep.check("%s: every link (%d) points at a file" % (label, n_link), n_link > 0 and not bad_link, str(bad_link[:4]))
    rep.check("%s: no script" % label, all(r.get("scripts") == 0 for r in res))


def check_dashboard(label, out, want_cols, own):
    """The index's table and the seed pages for vantages want_cols (own: the column from the
    detail log, or None)."""
    idx = parse(os.path.join(out, "index.html"))
    rep.check("%s: the index's columns are Seed then %s" % (label, want_cols), idx.head == ["Seed"] + want_cols,
              str(idx.head))
    want = {"s1": {"v-def": ("warn", "deferred"), "v-ok": ("ok", "ok")},
            "s2": {"v-def": ("ok", "ok"), "v-ok": ("ok", "ok")}}
    got = {s: {v: c[:2] for v, c in cells.items()} for s, cells in idx.rows.items()}
    rep.check("%s: s1 deferred at v-def and ok at v-ok, s2 ok at both" % label, got == want, str(got))
    src = {s: {v: ("detail log" if "from the detail log" in c[2] else "RRD file" if "from the RRD file" in c[2]
                   else "?") for v, c in cells.items()} for s, cells in idx.rows.items()}
    rep.check("%s: each state's source: %s from its detail log, the others from their RRD files" % (label, own),
              all(src[s][v] == ("detail log" if v == own else "RRD file") for s in src for v in src[s]), str(src))
    rep.check("%s: the deferred cell says so from the RRD (outcome deferred, not read back)" % label,
              "deferred" in idx.rows.get("s1", {}).get("v-def", ("", "", ""))[2], str(idx.rows.get("s1")))
    smalls = sorted(x for x in idx.srcs if x.endswith("-small.png"))
    want_smalls = sorted("img/%s/vantage-%s/outcomes-1d-small.png" % (s, v) for s in ("s1", "s2") for v in want_cols)
    rep.check("%s: a small outcome graph in every cell" % label, smalls == want_smalls, str(smalls))
    pngs = ["img/%s/vantage-%s/%s-%s.png" % (s, v, k, p) for s in ("s1", "s2") for v in want_cols for k in KINDS
            for p in PERIODS]
    bad = [x for x in pngs if mclab.png_size(os.path.join(out, x)) != (800, 240)]
    bad += [x for x in want_smalls if mclab.png_size(os.path.join(out, x)) != (300, 60)]
    rep.check("%s: %d graphs per vantage and seed, each a PNG of its size" % (label, len(pngs)), not bad, str(bad[:4]))
    page = parse(os.path.join(out, "seed-s1.html"))
    rep.check("%s: s1's page has both vantages' graphs side by side (2 x 16 images)" % label,
              len(page.srcs) == 32 and sum("vantage-v-def/" in x for x in page.srcs) == 16, str(page.srcs[:4]))
    with open(os.path.join(out, "seed-s1.html"), encoding="utf-8") as f:
        text = f.read()
    rep.check("%s: s1's page has a state row per vantage" % label,
              all(re.search(r'<tr class="%s" id="v%s"><td>%s</td><td class="state">%s</td>' % (c, v, v, st), text)
                  for v, (c, st) in want["s1"].items()), text[:1500])
    chromium_check(label, out, ["index.html", "seed-s1.html", "seed-s2.html"])


def graph(conf, out):
    return mclab.run(["-c", conf, "graph", "--out", out], timeout=300, env=GRAPH_ENV)


# ---------------------------------------------------------------------------
# one rrd_dir, two vantages

rrd_dir = os.path.join(wd.path, "rrd")
where = "rrd_dir = %s;\n" % mclab.q(rrd_dir)
conf_def = config("def", "v-def", "r432", where)
conf_ok = config("ok", "v-ok", "ok", where)
rc1, fin1, _, e1 = mclab.probe_json(conf_def)
rc2, fin2, _, e2 = mclab.probe_json(conf_ok)
rep.check("dir: v-def's s1 deferred, s2 accepted; v-ok's both accepted",
          fin1.get("s1", {}).get("smtp", {}).get("outcome") == "deferred"
          and fin1.get("s2", {}).get("smtp", {}).get("outcome") == "accepted"
          and all(fin2.get(s, {}).get("smtp", {}).get("outcome") == "accepted" for s in ("s1", "s2")),
          "%s %s %s" % ({k: v["smtp"]["outcome"] for k, v in fin1.items()}, e1[-300:], e2[-300:]))
rep.check("dir: the files rrd_dir/v-def/s1.rrd ... v-ok/s2.rrd",
          all(os.path.exists(os.path.join(rrd_dir, v, s + ".rrd")) for v in ("v-def", "v-ok") for s in ("s1", "s2")),
          str(os.listdir(rrd_dir)))

out = os.path.join(wd.path, "dash-ok")
rc, o, e = graph(conf_ok, out)
rep.check("dir: graph (as v-ok) exit 0", rc == 0, "rc %d err %s" % (rc, e[-600:]))
check_dashboard("dir as v-ok", out, ["v-ok", "v-def"], "v-ok")

out = os.path.join(wd.path, "dash-def")
rc, o, e = graph(conf_def, out)
rep.check("dir: graph (as v-def) exit 0, this host's vantage first", rc == 0
          and parse(os.path.join(out, "index.html")).head == ["Seed", "v-def", "v-ok"], "rc %d err %s" % (rc, e[-600:]))

# a host that only draws: no vantage, no detail log, no files of its own
conf_central = wd.config("central", SENDERS, seeds("ok"), extra=where)
out = os.path.join(wd.path, "dash-central")
rc, o, e = graph(conf_central, out)
rep.check("dir: graph on a host without a vantage or files of its own: exit 0", rc == 0, "rc %d err %s" % (rc, e[-600:]))
idx = parse(os.path.join(out, "index.html"))
rep.check("dir central: just the two vantages (sorted), states from the RRD files",
          idx.head == ["Seed", "v-def", "v-ok"] and {s: {v: c[:2] for v, c in cells.items()} for s, cells in idx.rows.items()}
          == {"s1": {"v-def": ("warn", "deferred"), "v-ok": ("ok", "ok")},
              "s2": {"v-def": ("ok", "ok"), "v-ok": ("ok", "ok")}}, "%s %s" % (idx.head, idx.rows))

# ---------------------------------------------------------------------------
# one rrdcached over TCP, two vantages

port = mclab.free_port()
base = os.path.join(wd.path, "cached", "base")
os.makedirs(os.path.join(wd.path, "cached", "journal"))
os.makedirs(base)
log = open(os.path.join(wd.path, "cached", "rrdcached.log"), "ab")
cached = subprocess.Popen(["rrdcached", "-g", "-l", "127.0.0.1:%d" % port, "-b", base, "-B", "-R", "-j",
                           os.path.join(wd.path, "cached", "journal"), "-p", os.path.join(wd.path, "cached", "pid"),
                           "-w", "3600", "-z", "1"], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
daemons.append(cached)


def tcp_up():
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


end = time.monotonic() + 15
while time.monotonic() < end and not tcp_up():
    time.sleep(0.1)
if rep.check("tcp: rrdcached listening on 127.0.0.1:%d" % port, tcp_up() and cached.poll() is None):
    where = 'rrdcached = "127.0.0.1:%d";\n' % port
    conf_def = config("tdef", "v-def", "r432", where)
    conf_ok = config("tok", "v-ok", "ok", where)
    rc1, fin1, _, e1 = mclab.probe_json(conf_def)
    rc2, fin2, _, e2 = mclab.probe_json(conf_ok)
    rep.check("tcp: v-def's s1 deferred; the four files created through the daemon in its base directory",
              fin1.get("s1", {}).get("smtp", {}).get("outcome") == "deferred"
              and all(os.path.exists(os.path.join(base, v, s + ".rrd")) for v in ("v-def", "v-ok") for s in ("s1", "s2"))
              and "event=rrd status=failed" not in e1 + e2, "%s %s" % (e1[-300:], e2[-300:]))
    out = os.path.join(wd.path, "dash-tcp")
    rc, o, e = graph(conf_ok, out)
    rep.check("tcp: graph (as v-ok) exit 0", rc == 0, "rc %d err %s" % (rc, e[-600:]))
    check_dashboard("tcp as v-ok", out, ["v-ok", "v-def"], "v-ok")
stop(cached)

daemons.stop_all()
wd.cleanup()
rep.finish()
