#!/usr/bin/env python3
"""`mailcanary graph` through the real CLI against the lab: a probe round (INBOX, junk, missing,
deferred, rejected, accepted without readback) writes the RRD files; `graph --out DIR` draws
4 graphs x 4 periods per seed, each a valid PNG (signature, chunk CRCs, IHDR, IDAT inflating to
the size IHDR says) of the configured size, and the pages; the outcome graph's definitions
(printed by --commands and run through rrdtool with PRINT) put each seed's probe in its own
outcome; the dashboard has every seed's state from the detail log, escapes what it shows,
uses no JavaScript and only relative links; headless Chromium (Debian's chromium) loads the
index and every seed page from the file system with every image loaded at its size, and every
link points at a file (and anchor) that exists; --period/--width/--height/seeds narrow a run;
--jobs 2 gives the same files; a broken RRD file fails its graphs (exit 1, file named) while the
rest is drawn; with rrdcached the data it holds is flushed to the file before drawing; usage
errors exit 2."""

import html.parser
import json
import os
import re
import struct
import subprocess
import time
import urllib.parse
import urllib.request
import zlib

import mclab

L = mclab.lab()
rep = mclab.Report("graph")
wd = mclab.Workdir("graph")
PF = L["postfix"]
KINDS = ["stages", "delivery", "outcomes", "retries"]
PERIODS = ["1d", "1w", "1m", "1y"]
daemons = mclab.Daemons()


stop = mclab.stop
rep.guard(daemons.stop_all, wd.cleanup)
sender = mclab.mx_sender


SENDERS = [sender("pf", PF["mx"]), sender("ok", L["sinks"]["ok"]), sender("r432", L["sinks"]["rcpt432"]),
           sender("r5xx", L["sinks"]["rcpt5xx"])]


seed = mclab.lab_seed


SEEDS = [
    seed("inbox", "pf", readback=True),
    seed("junk", "pf", readback=True, headers=["X-Lab-Junk: yes"]),
    seed("missing", "ok", readback=True),  # smtp-sink accepts and drops it: never found
    seed("plain", "ok"),
    seed("defer", "r432"),
    seed("reject", "r5xx"),
    seed("never", "ok"),                   # never probed: no RRD file
    seed("broken", "ok"),                  # never probed; gets a garbage RRD file below
]
PROBED = ["inbox", "junk", "missing", "plain", "defer", "reject"]
WANT_OUTCOME = {"inbox": "o_inbox", "junk": "o_junk", "missing": "o_missing", "plain": "o_noread",
                "defer": "o_deferred", "reject": "o_rejected"}
WANT_STATE = {"inbox": "ok", "junk": "junk", "missing": "missing", "plain": "ok", "defer": "deferred",
              "reject": "rejected"}


def config(name, seeds, extra=""):
    return wd.config(name, SENDERS, seeds,
                     extra='retry: { schedule = []; };\nreadback: { timeout = "8s"; late = "0s"; };\n' + extra)


def state(name):
    return os.path.join(wd.path, "state-" + name)


# In sanitizer builds: librrd 1.7.2's rrd_graph_v and fontconfig (through pango) leak memory of
# their own that LeakSanitizer reports at exit; those stacks only. librrd's strings come from
# vasprintf(), which mailcanary never calls (xasprintf uses vsnprintf), and the fast unwinder
# stops there (no frame pointers in libc): match that frame too.
LSAN_SUPP = os.path.join(wd.path, "lsan-graph.supp")
with open(LSAN_SUPP, "w") as f:
    f.write("leak:librrd.so\nleak:libfontconfig.so\nleak:__vasprintf_internal\n")
GRAPH_ENV = {"LSAN_OPTIONS": "suppressions=%s:print_suppressions=0" % LSAN_SUPP}


def graph(conf, *args, timeout=300):
    return mclab.run(["-c", conf, "graph"] + list(args), timeout=timeout, env=GRAPH_ENV)


# ---- PNG checks -------------------------------------------------------------

PNG_SIG = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def png_problem(path, width, height):
    """None when path is a complete, valid PNG of width x height; else what is wrong."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return str(e)
    if data[:8] != PNG_SIG:
        return "no PNG signature"
    pos, chunks, idat, ihdr = 8, [], b"", None
    while pos + 12 <= len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        typ, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if len(body) != n or pos + 12 + n > len(data):
            return "truncated %r chunk" % typ
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(typ + body) & 0xFFFFFFFF != crc:
            return "bad CRC in %r" % typ
        chunks.append(typ)
        if typ == b"IHDR":
            ihdr = body
        elif typ == b"IDAT":
            idat += body
        pos += 12 + n
    if not chunks or chunks[0] != b"IHDR" or chunks[-1] != b"IEND" or pos != len(data):
        return "chunks %r" % chunks[:3]
    w, h, depth, ctype = struct.unpack(">IIBB", ihdr[:10])
    if (w, h) != (width, height):
        return "IHDR %dx%d, want %dx%d" % (w, h, width, height)
    try:
        raw = zlib.decompress(idat)
    except zlib.error as e:
        return "IDAT: %s" % e
    row = (w * CHANNELS.get(ctype, 4) * depth + 7) // 8
    if ihdr[12] == 0 and len(raw) != h * (1 + row):
        return "IDAT inflates to %d bytes, want %d" % (len(raw), h * (1 + row))
    return None


def check_pngs(label, out, seeds, periods, width, height):
    bad, n = [], 0
    for s in seeds:
        for k in KINDS:
            for p in periods:
                path = os.path.join(out, "img", s, "%s-%s.png" % (k, p))
                n += 1
                prob = png_problem(path, width, height)
                if prob:
                    bad.append("%s/%s-%s: %s" % (s, k, p, prob))
    rep.check("%s: %d PNGs, each valid and %dx%d" % (label, n, width, height), not bad, "; ".join(bad[:8]))


def files_under(d):
    out = set()
    for root, _, files in os.walk(d):
        for f in files:
            out.add(os.path.relpath(os.path.join(root, f), d))
    return out


# ---- HTML checks -------------------------------------------------------------

class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.hrefs, self.srcs, self.scripts, self.rows = set(), [], [], 0, {}
        self._row = None
        self._cell = None
        self._cells = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag in ("img", "iframe", "link") and ("src" in a or "href" in a):
            self.srcs.append(a.get("src") or a.get("href"))
        if tag == "script" or any(k.startswith("on") for k in a):
            self.scripts += 1
        if tag == "tr":
            self._row, self._cells, self._name = a.get("class", ""), [], None
        if tag == "td":
            self._cell = ""
        if tag == "a" and self._row is not None and self._name is None:
            self._in_a, self._name = True, ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if getattr(self, "_in_a", False):
            self._name += data

    def handle_endtag(self, tag):
        if tag == "a":
            self._in_a = False
        if tag == "td" and self._cell is not None:
            self._cells.append(self._cell)
            self._cell = None
        if tag == "tr" and self._row is not None and self._cells:
            self.rows[self._name or ""] = (self._row, self._cells)
            self._row = None


def parse_page(path):
    p = Page()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    return p


def chromium_check(label, out, pages, width, height):
    """Loads pages (relative to out) in headless Chromium from the file system
    (mclab.chromium_frames()); every image must be complete at width x height, every link must
    point at an existing file (and anchor)."""
    res = mclab.chromium_frames(rep, wd.path, label, out, pages)
    if res is None:
        return
    bad_img, bad_link, n_img, n_link = [], [], 0, 0
    for r in res:
        for im in r["imgs"]:
            n_img += 1
            if not im["complete"] or (im["w"], im["h"]) != (width, height):
                bad_img.append("%s in %s: complete %s %dx%d" % (im["src"], r["src"], im["complete"], im["w"], im["h"]))
        for href in r["links"]:
            n_link += 1
            u = urllib.parse.urlparse(href)
            path = urllib.parse.unquote(u.path)
            if u.scheme != "file" or not os.path.isfile(path):
                bad_link.append("%s in %s: no such file" % (href, r["src"]))
            elif u.fragment and u.fragment not in parse_page(path).ids:
                bad_link.append("%s in %s: no such anchor" % (href, r["src"]))
    rep.check("%s: every image loaded (%d), each %dx%d" % (label, n_img, width, height), n_img > 0 and not bad_img,
              "; ".join(bad_img[:5]))
    rep.check("%s: every link (%d) points at an existing file and anchor" % (label, n_link),
              n_link > 0 and not bad_link, "; ".join(bad_link[:5]))
    rep.check("%s: the pages have no script" % label, all(r.get("scripts") == 0 for r in res))


def run_py(cmd, timeout=60):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------
# a round of probes, one per outcome

conf = config("main", SEEDS)
rc, out, err = mclab.run(["-c", conf, "probe", "--json"] + PROBED, timeout=180)
finals = {}
for ln in out.splitlines():
    if ln.strip():
        r = json.loads(ln)
        if r.get("final"):
            finals[r["seed"]] = r
rep.check("probe: every probed seed has a final result", sorted(finals) == sorted(PROBED),
          "got %s; err %s" % (sorted(finals), err[-500:]))
got = {s: (r["smtp"]["outcome"], r["readback"]["status"], r["readback"].get("folder")) for s, r in finals.items()}
rep.check("probe: the outcomes the graphs must show", got.get("inbox") == ("accepted", "found", "INBOX")
          and got.get("junk", ("", "", ""))[:2] == ("accepted", "found") and got.get("junk")[2] != "INBOX"
          and got.get("missing") == ("accepted", "missing", None) and got.get("plain") == ("accepted", "skipped", None)
          and got.get("defer", ("",))[0] == "deferred" and got.get("reject", ("",))[0] == "rejected", str(got))
rrd_dir = os.path.join(state("main"), "rrd")
with open(os.path.join(rrd_dir, "broken.rrd"), "wb") as f:
    f.write(b"this is not an RRD file\n" * 10)

# a crafted final line for "never": text that must be escaped on the pages
EVIL = "<script>alert(\"x\")</script> & 'q' \x01"
with open(os.path.join(state("main"), "results.jsonl"), "a") as f:
    f.write(json.dumps({"seed": "never", "probe_id": "evil", "sent_at": "2026-01-02T03:04:05.000Z",
                        "smtp": {"outcome": "rejected", "stage": "rcpt", "code": 550, "enhanced": "5.7.1",
                                 "text": EVIL, "attempts": [{"n": 1}]},
                        "readback": {"status": "skipped"}, "final": True}) + "\n")
    f.write("not json at all\n")

# ---------------------------------------------------------------------------
# graph --out DIR: everything

out_all = os.path.join(wd.path, "dash")
t0 = time.monotonic()
rc, o, e = graph(conf, "--out", out_all)
dt = time.monotonic() - t0
rep.check("graph: exit 1 (the broken file's graphs failed), in %.1f s" % dt, rc == 1, "rc %d err %s" % (rc, e[-800:]))
broken = os.path.join(rrd_dir, "broken.rrd")
rep.check("graph: the broken file is named in the errors, one line per graph (16)",
          e.count("mailcanary: graph: ") == 16 and e.count(broken) >= 16, e[-800:])
rep.check("graph: the detail log's bad line is reported", "bad_lines=1" in e, e[-400:])
check_pngs("graph", out_all, PROBED, PERIODS, 800, 240)
files = files_under(out_all)
want = {"index.html"} | {"seed-%s.html" % s["name"] for s in SEEDS} | \
    {"img/%s/%s-%s.png" % (s, k, p) for s in PROBED for k in KINDS for p in PERIODS}
rep.check("graph: exactly the pages and PNGs (no temporary files, none for never/broken)", files == want,
          "extra %s missing %s" % (sorted(files - want)[:5], sorted(want - files)[:5]))

idx = parse_page(os.path.join(out_all, "index.html"))
states = {name: (cls, cells[1].strip()) for name, (cls, cells) in idx.rows.items()}
for s, st in WANT_STATE.items():
    cls = "ok" if st == "ok" else "warn" if st in ("junk", "deferred") else "bad"
    rep.check("index: %s's state is %s (%s)" % (s, st, cls), states.get(s) == (cls, st), str(states))
rep.check("index: never's state comes from the crafted line (rejected)", states.get("never") == ("bad", "rejected"),
          str(states))
rep.check("index: broken has no result yet", states.get("broken") == ("none", "no result yet"), str(states))
rep.check("index: a row per seed, in configuration order", list(idx.rows) == [x["name"] for x in SEEDS],
          str(list(idx.rows)))
with open(os.path.join(out_all, "index.html"), encoding="utf-8") as f:
    index_text = f.read()
rep.check("index: the reply text is escaped", "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39; \ufffd"
          in index_text and "<script>alert" not in index_text, index_text[:300])
rep.check("index: the time it was generated", re.search(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", index_text)
          is not None)
all_pages = ["index.html"] + ["seed-%s.html" % s["name"] for s in SEEDS]
relative_only = True
for pg in all_pages:
    pp = parse_page(os.path.join(out_all, pg))
    if pp.scripts:
        relative_only = False
    for u in pp.hrefs + pp.srcs:
        if u.startswith("/") or ":" in u.split("/")[0] or ".." in u:
            relative_only = False
rep.check("pages: no script, no event handler, only relative links and images", relative_only)
seed_page = parse_page(os.path.join(out_all, "seed-inbox.html"))
rep.check("seed page: 16 images, anchors for the 4 periods", len(seed_page.srcs) == 16
          and {"p1d", "p1w", "p1m", "p1y"} <= seed_page.ids, "%d srcs ids %s" % (len(seed_page.srcs), seed_page.ids))
rep.check("seed page of never: no image, says why",
          parse_page(os.path.join(out_all, "seed-never.html")).srcs == [] and "no RRD file yet" in
          open(os.path.join(out_all, "seed-never.html")).read())

chromium_check("chromium", out_all, all_pages, 800, 240)

# ---------------------------------------------------------------------------
# what the outcome graph shows: its own definitions (--commands), with PRINT of each share

rc, cmds, e = graph(conf, "--commands", "--period", "1d", *PROBED)
lines = [ln for ln in cmds.splitlines() if ln.startswith("rrdtool graph")]
rep.check("--commands: one rrdtool command per graph (6 seeds x 4 kinds)", rc == 0 and len(lines) == 24,
          "rc %d lines %d err %s" % (rc, len(lines), e[-300:]))
for s in PROBED:
    cmd = [ln for ln in lines if "/img/%s/outcomes-1d.png" % s in ln]
    if not cmd:
        rep.check("outcomes of %s: command printed" % s, False)
        continue
    names = ["o_failed", "o_rejected", "o_deferred", "o_unknown", "o_missing", "o_junk", "o_other", "o_noread",
             "o_inbox"]
    script = cmd[0].replace(" >/dev/null", "").replace(
        "rrdtool graph ", "rrdtool graph /dev/null ", 1) + " " + " ".join(
        "PRINT:%s_a:%s=%%.1lf" % (n, n) for n in names)
    # the PNG path in the printed command stays as an extra (ignored) argument only if it is
    # first: write to /dev/null instead
    script = re.sub(r"rrdtool graph /dev/null \S+", "rrdtool graph /dev/null", script, count=1)
    p = run_py(["sh", "-c", script])
    vals = dict(x.split("=", 1) for x in p.stdout.split() if "=" in x)
    want = {n: ("100.0" if n == WANT_OUTCOME[s] else "0.0") for n in names}
    rep.check("outcomes of %s: 100%% %s, 0 for the rest" % (s, WANT_OUTCOME[s]), vals == want,
              "got %s err %s" % (vals, p.stderr[-300:]))

# ---------------------------------------------------------------------------
# a narrowed run: one period, another size, two seeds; and --jobs 2 gives the same files

out_one = os.path.join(wd.path, "dash-one")
rc, o, e = graph(conf, "--out", out_one, "--period", "1w", "--width", "640", "--height", "200", "defer", "inbox")
rep.check("narrow: exit 0, nothing printed but the warning about the detail log's bad line",
          rc == 0 and o == "" and len(e.splitlines()) == 1 and "bad_lines=1 (skipped)" in e, "rc %d err %s" % (rc, e[-300:]))
check_pngs("narrow", out_one, ["defer", "inbox"], ["1w"], 640, 200)
files = files_under(out_one)
rep.check("narrow: only those seeds and that period", files == {"index.html", "seed-defer.html", "seed-inbox.html"} |
          {"img/%s/%s-1w.png" % (s, k) for s in ("defer", "inbox") for k in KINDS}, str(sorted(files)))
idx = parse_page(os.path.join(out_one, "index.html"))
rep.check("narrow: the index lists the two seeds, in configuration order",
          list(idx.rows) == ["inbox", "defer"], str(list(idx.rows)))
chromium_check("narrow chromium", out_one, ["index.html", "seed-defer.html", "seed-inbox.html"], 640, 200)

out_j2 = os.path.join(wd.path, "dash-j2")
rc, o, e = graph(conf, "--out", out_j2, "--jobs", "2")
rep.check("--jobs 2: exit 1 (broken), the same files as one process", rc == 1 and files_under(out_j2) ==
          files_under(out_all), "rc %d diff %s" % (rc, sorted(files_under(out_j2) ^ files_under(out_all))[:5]))
with open(os.path.join(out_j2, "index.html")) as f1, open(os.path.join(out_all, "index.html")) as f2:
    strip = lambda t: re.sub(r"Generated [^<;]*", "", t)  # noqa: E731
    rep.check("--jobs 2: the same index page (but for the time)", strip(f1.read()) == strip(f2.read()))
check_pngs("--jobs 2", out_j2, PROBED, PERIODS, 800, 240)

# ---------------------------------------------------------------------------
# usage errors

for args, what in ((["--period", "1d"], "no --out"), (["--out", out_one, "--period", "2d"], "bad period"),
                   (["--out", out_one, "nosuchseed"], "unknown seed"), (["--out", out_one, "--width", "10"],
                                                                        "width too small"),
                   (["--out", out_one, "--jobs", "0"], "jobs 0")):
    rc, o, e = graph(conf, *args)
    rep.check("usage: %s: exit 2 with a message" % what, rc == 2 and "mailcanary: graph: " in e, "rc %d err %s" % (rc, e))

# rrd = false: the pages without graphs
conf_off = config("off", [seed("plain", "ok")], extra="rrd = false;\n")
out_off = os.path.join(wd.path, "dash-off")
rc, o, e = graph(conf_off, "--out", out_off)
rep.check("rrd = false: exit 0, pages without images", rc == 0 and files_under(out_off) == {"index.html",
          "seed-plain.html"} and "RRD files are off" in open(os.path.join(out_off, "index.html")).read(),
          "rc %d files %s err %s" % (rc, files_under(out_off), e[-300:]))

# ---------------------------------------------------------------------------
# rrdcached: graph flushes what the daemon holds before drawing

base = os.path.join(wd.path, "cached", "base")
sock = os.path.join(wd.path, "cached", "rrdcached.sock")
os.makedirs(os.path.join(wd.path, "cached", "journal"))
os.makedirs(base)
log = open(os.path.join(wd.path, "cached", "rrdcached.log"), "ab")
cached = subprocess.Popen(["rrdcached", "-g", "-l", "unix:" + sock, "-b", base, "-B", "-j",
                           os.path.join(wd.path, "cached", "journal"), "-p", os.path.join(wd.path, "cached", "pid"),
                           "-w", "3600", "-z", "1"], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
daemons.append(cached)
end = time.monotonic() + 15
while time.monotonic() < end and not os.path.exists(sock):
    time.sleep(0.1)
rep.check("rrdcached: started", os.path.exists(sock) and cached.poll() is None)
conf_c = config("cached", [seed("plain", "ok")], extra="rrd_dir = %s;\nrrdcached = %s;\n" % (
    mclab.q(os.path.join(base, "rrd")), mclab.q("unix:" + sock)))
rc, out, err = mclab.run(["-c", conf_c, "probe", "--json"], timeout=120)
path = os.path.join(base, "rrd", "plain.rrd")


def last_total(p):
    r = run_py(["rrdtool", "fetch", p, "AVERAGE", "--start", "-7200", "--end", "now"])
    vals = []
    for ln in r.stdout.splitlines()[1:]:
        if ":" in ln:
            v = ln.split(":", 1)[1].split()
            if len(v) > 9:
                vals.append(v[9])
    return [v for v in vals if "nan" not in v.lower()]


rep.check("rrdcached: probed, the file has no value yet (the daemon holds it)", rc == 0 and os.path.exists(path)
          and last_total(path) == [], "rc %d vals %s err %s" % (rc, last_total(path) if os.path.exists(path) else "-",
                                                                 err[-300:]))
out_c = os.path.join(wd.path, "dash-cached")
rc, o, e = graph(conf_c, "--out", out_c, "--period", "1d")
rep.check("rrdcached: graph exit 0", rc == 0, "rc %d err %s" % (rc, e[-400:]))
rep.check("rrdcached: after graph the file has the probe's total (flushed)", len(last_total(path)) == 1,
          str(last_total(path)))
check_pngs("rrdcached", out_c, ["plain"], ["1d"], 800, 240)
stop(cached)

daemons.stop_all()
wd.cleanup()
rep.finish()
