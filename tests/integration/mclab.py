"""Helpers for mailcanary integration tests: the lab's facts, configs, running the real CLI,
and TAP-like reporting that ends with "N passed, M failed"."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

BIN = os.environ.get("MAILCANARY_BIN", "")
LAB_DIR = os.environ.get("MAILCANARY_LAB", "")


def lab():
    with open(os.path.join(LAB_DIR, "lab.json")) as f:
        return json.load(f)


def free_port():
    """A TCP port on 127.0.0.1 for a server a test starts itself (rrdcached): free, from the lab's
    port range, not in the lab's port registry (tests/lab/lab.py), and recorded there for this
    process so that no lab started meanwhile takes it (the entry is dropped once the process has
    exited)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
    import lab as labmod
    with labmod.Lock():
        reg = labmod._registry_live(labmod._registry_load())
        reserved = set()
        for ent in reg.values():
            reserved.update(ent.get("ports", []))
        port = labmod.PortPicker(reserved).pick()
        ent = reg.setdefault("test-pid-%d" % os.getpid(), {"ports": [], "pids": [os.getpid()]})
        ent["ports"].append(port)
        labmod._registry_save(reg)
    return port


def q(s):
    """A libconfig string literal."""
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def group(d):
    parts = []
    for k, v in d.items():
        if v is None:
            continue
        if isinstance(v, bool):
            parts.append("%s = %s;" % (k, "true" if v else "false"))
        elif isinstance(v, int):
            parts.append("%s = %d;" % (k, v))
        elif isinstance(v, list):
            parts.append("%s = [%s];" % (k, ", ".join(q(x) for x in v)))
        elif isinstance(v, dict):
            parts.append("%s: %s;" % (k, group(v)))
        else:
            parts.append("%s = %s;" % (k, q(v)))
    return "{ " + " ".join(parts) + " }"


class Workdir:
    """A temporary directory for one test script's configs, secrets and state."""

    def __init__(self, name):
        self.path = tempfile.mkdtemp(prefix="mc-%s-" % name)

    def secret(self, name, value):
        p = os.path.join(self.path, name)
        with open(p, "w") as f:
            f.write(value)
        os.chmod(p, 0o600)
        return p

    def config(self, name, senders, seeds, timeouts=None, limits=None, dns_servers=None, extra="",
               dns_timeout="3s"):
        L = lab()
        t = {"connect": "3s", "banner": "3s", "command": "5s", "data": "5s", "eod": "5s"}
        t.update(timeouts or {})
        lim = {"in_flight": 100, "per_domain": 0}
        lim.update(limits or {})
        text = "state_dir = %s;\n" % q(os.path.join(self.path, "state-" + name))
        text += "dns: %s;\n" % group({"servers": dns_servers or [L["dns"]["server"]], "timeout": dns_timeout})
        text += "timeouts: %s;\n" % group(t)
        text += "limits: %s;\n" % group(lim)
        text += extra
        text += "senders = (\n  " + ",\n  ".join(group(s) for s in senders) + "\n);\n"
        text += "seeds = (\n  " + ",\n  ".join(group(s) for s in seeds) + "\n);\n"
        p = os.path.join(self.path, name + ".conf")
        with open(p, "w") as f:
            f.write(text)
        return p

    def start_daemon(self, conf, name, into, env=None):
        """`mailcanary -c conf run`, its output appended to NAME.log here (log() reads it); the
        process is appended to into (a Daemons) and returned."""
        with open(os.path.join(self.path, name + ".log"), "ab") as log:
            p = subprocess.Popen([BIN, "-c", conf, "run"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        into.append(p)
        return p

    def log(self, name):
        """What a daemon started as name has written so far."""
        with open(os.path.join(self.path, name + ".log"), errors="replace") as f:
            return f.read()

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def run(args, timeout=180, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=timeout, env=e,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def probe_json(conf, *seeds, extra_args=(), timeout=180):
    """Runs `mailcanary -c conf probe --json [seeds]`; returns (rc, {seed: result}, stdout, stderr)."""
    rc, out, err = run(["-c", conf, "probe", "--json"] + list(extra_args) + list(seeds), timeout=timeout)
    results = {}
    for line in out.splitlines():
        line = line.strip()
        if line:
            r = json.loads(line)
            results[r["seed"]] = r
    return rc, results, out, err


def probe_lines(conf, *args, timeout=120):
    """Runs `mailcanary -c conf probe --json ARGS`; returns (rc, [every JSON line], stderr)."""
    rc, out, err = run(["-c", conf, "probe", "--json"] + list(args), timeout=timeout)
    return rc, [json.loads(x) for x in out.splitlines() if x.strip()], err


def final_of(lines, seed_name):
    """The last line with final true for seed_name, or None."""
    fs = [x for x in lines if x["seed"] == seed_name and x.get("final")]
    return fs[-1] if fs else None


# ---- the lab's usual senders and seeds, and processes a test starts ----

LAB_USER = "seed1@seed-a.test"  # the first mailbox, delivered to by the lab's Postfix MX


def mx_sender(name, port, helo="probe.lab.test"):
    """A sender of mode mx without TLS, to one lab port (Postfix's MX or a sink)."""
    return {"name": name, "mode": "mx", "port": port, "helo": helo, "mail_from": "canary@lab.test", "tls": "none"}


def lab_imap(user=LAB_USER):
    """A seed's imap group for the lab's Dovecot (IMAPS, the lab CA)."""
    L = lab()
    return {"url": "imaps://127.0.0.1:%d/" % L["imap"]["imaps_port"], "username": user,
            "password_file": L["users"][user]["secret_file"], "ca_file": L["ca_file"]}


def lab_seed(name, via, readback=False, headers=None):
    """An hourly seed sent through sender via: LAB_USER when via is "pf" (the Postfix MX), else
    seed1@sink.test (a sink); read back over IMAP when readback; extra headers."""
    s = {"name": name, "address": LAB_USER if via == "pf" else "seed1@sink.test", "sender": via,
         "schedule": "hourly"}
    if readback:
        s["imap"] = lab_imap()
    if headers:
        s["headers"] = headers
    return s


def stop(p, timeout=20):
    """SIGTERM, then SIGKILL after timeout s; the exit status."""
    import signal
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        return p.wait()


class Daemons(list):
    """The processes a test started (append them), for Report.guard(daemons.stop_all, ...)."""

    def stop_all(self, timeout=20):
        for p in self:
            stop(p, timeout)


def with_dns(path, settings):
    """Adds settings (raw text, e.g. "probe_checks = false;") to the dns group that
    Workdir.config wrote into path; returns path."""
    import re
    with open(path) as f:
        text = f.read()
    text = re.sub(r"(dns: \{[^\n]*?)\s*\};", lambda m: m.group(1) + " " + settings + " };", text, count=1)
    with open(path, "w") as f:
        f.write(text)
    return path


def wait_for(cond, timeout, step=0.2):
    """Polls cond() every step s until it is true or timeout s have passed; its last value."""
    import time
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def png_size(path):
    """(width, height) from a PNG's IHDR, or None when path is not a PNG."""
    import struct
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


_FRAMES_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
%s
<pre id="result">pending</pre>
<script>
window.addEventListener('load', function () {
  var out = [], frames = document.getElementsByTagName('iframe');
  for (var i = 0; i < frames.length; i++) {
    var r = {src: frames[i].src, imgs: [], links: []};
    try {
      var d = frames[i].contentDocument;
      r.title = d.title;
      r.scripts = d.scripts.length;
      for (var j = 0; j < d.images.length; j++) {
        var im = d.images[j];
        r.imgs.push({src: im.src, complete: im.complete, w: im.naturalWidth, h: im.naturalHeight});
      }
      for (var j = 0; j < d.links.length; j++) r.links.push(d.links[j].href);
    } catch (e) { r.error = String(e); }
    out.push(r);
  }
  document.getElementById('result').textContent = JSON.stringify(out);
});
</script></body></html>"""


def chromium_frames(rep, workdir, label, out, pages):
    """Loads pages (relative to out) in iframes of a check page in headless Chromium from the
    file system. Reports (through rep) that chromium is installed, finished and rendered every
    page; returns one dict a page ({src, title, scripts, imgs: [{src, complete, w, h}], links}),
    or None when that failed."""
    import html
    import re
    import urllib.parse
    exe = shutil.which("chromium")
    if not rep.check("%s: Debian's chromium is installed (scripts/install-deps.sh)" % label, exe is not None):
        return None
    check = os.path.join(workdir, "check-%s.html" % re.sub(r"\W", "_", label))
    frames = "\n".join('<iframe src="%s"></iframe>' % urllib.parse.quote(os.path.join(out, p)) for p in pages)
    with open(check, "w") as f:
        f.write(_FRAMES_PAGE % frames)
    prof = os.path.join(workdir, "chromium-profile")
    try:
        p = subprocess.run([exe, "--headless", "--disable-gpu", "--no-sandbox", "--allow-file-access-from-files",
                            "--user-data-dir=" + prof, "--virtual-time-budget=20000", "--dump-dom",
                            "file://" + urllib.parse.quote(check)], capture_output=True, text=True, timeout=180,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        rep.check("%s: chromium finished" % label, False, "timeout")
        return None
    m = re.search(r'<pre id="result">(.*?)</pre>', p.stdout, re.S)
    res = None
    if m and m.group(1) != "pending":
        try:
            res = json.loads(html.unescape(m.group(1)))
        except ValueError:
            res = None
    if not rep.check("%s: chromium rendered the %d pages" % (label, len(pages)),
                     res is not None and len(res) == len(pages) and all("error" not in r for r in res),
                     "rc %d out %s err %s" % (p.returncode, p.stdout[-300:], p.stderr[-500:])):
        return None
    return res


def imap_login(user, password):
    """An IMAPS session to the lab's Dovecot as user, the lab CA verified."""
    import imaplib
    import ssl
    L = lab()
    ctx = ssl.create_default_context(cafile=L["ca_file"])
    m = imaplib.IMAP4_SSL("127.0.0.1", L["imap"]["imaps_port"], ssl_context=ctx, timeout=20)
    m.login(user, password)
    return m


def snapshot(user, password, marker, folder="INBOX"):
    """{uid: (flags, bytes)} of the messages in folder with an X-Foreign header containing marker,
    read without changing anything (EXAMINE, BODY.PEEK); \\Recent, which belongs to the session
    that sees a message first, is left out of the flags."""
    m = imap_login(user, password)
    try:
        m.select(folder, readonly=True)
        typ, data = m.uid("SEARCH", None, "HEADER", "X-Foreign", marker)
        out = {}
        uids = data[0].split()
        if not uids:
            return out
        typ, d = m.uid("FETCH", b",".join(uids).decode(), "(FLAGS BODY.PEEK[])")
        for x in d:
            if isinstance(x, tuple):
                meta = x[0].decode()
                uid = meta.split("UID ", 1)[1].split()[0].encode()
                flags = meta.split("FLAGS (", 1)[1].split(")", 1)[0].replace("\\Recent", "").split()
                out[uid] = (" ".join(sorted(flags)), x[1])
        return out
    finally:
        m.logout()


class Report:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            print("ok - %s" % name)
        else:
            self.failed += 1
            print("not ok - %s%s" % (name, (": " + detail) if detail else ""))
        sys.stdout.flush()
        return cond

    def smtp(self, name, r, outcome, stage, code=None, enhanced=None, text=None, error=None, warning=None):
        """Checks a probe result's smtp decision; prints what was got on failure."""
        if r is None:
            return self.check(name, False, "no result")
        s = r["smtp"]
        problems = []
        if s["outcome"] != outcome:
            problems.append("outcome %s, want %s" % (s["outcome"], outcome))
        if s["stage"] != stage:
            problems.append("stage %s, want %s" % (s["stage"], stage))
        if code is not None and s["code"] != code:
            if not (isinstance(code, str) and s["code"] and str(s["code"]).startswith(code)):
                problems.append("code %s, want %s" % (s["code"], code))
        if enhanced is not None and s["enhanced"] != enhanced:
            if not (enhanced.endswith(".") and s["enhanced"].startswith(enhanced)):
                problems.append("enhanced %r, want %r" % (s["enhanced"], enhanced))
        if text is not None and s["text"] != text:
            if not (text.startswith("~") and text[1:] in s["text"]):
                problems.append("text %r, want %r" % (s["text"], text))
        if error is not None and error not in s.get("error", ""):
            problems.append("error %r, want it to contain %r" % (s.get("error", ""), error))
        if warning is not None and not any(warning in w for w in s.get("warnings", [])):
            problems.append("warnings %r, want one containing %r" % (s.get("warnings"), warning))
        return self.check(name, not problems, "; ".join(problems) + " | got " + json.dumps(s)[:600])

    def guard(self, *cleanups):
        """On an uncaught exception: the traceback, a failed check, the summary line, and the
        cleanups (temporary directories, sockets) still run."""
        def hook(t, v, tb):
            import traceback
            traceback.print_exception(t, v, tb)
            self.check("test script ran to the end", False, "%s: %s" % (t.__name__, v))
            for c in cleanups:
                try:
                    c()
                except Exception:
                    pass
            print("%d passed, %d failed" % (self.passed, self.failed))
            sys.stdout.flush()
        sys.excepthook = hook

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed or self.passed == 0 else 0)
