#!/usr/bin/env python3
"""`mailcanary check SEED` (the Nagios/Icinga plugin of DESIGN.md) through the real CLI against
the lab: one status line "MAILCANARY STATE - ..." with valid performance data ('label'=value
[UOM];warn;crit;min;), exit 0 OK (accepted; read back in INBOX with a delivery figure), 1
WARNING (deferred with its code; found in Junk), 2 CRITICAL (rejected with code and text;
accepted and never found), the diagnosis on the lines after a problem; --warn-latency and
--crit-latency on the delivery (read back) or the SMTP time, in seconds or with a unit, the
thresholds in the perfdata; exit 3 UNKNOWN for an unknown seed, a bad configuration (naming
file and line), a bad threshold or no seed; it runs while another process holds the state
lock (the daemon's) and takes no RRD update; --timeout cuts a probe that hangs (CRITICAL). Also: options may follow the seed names in probe."""

import fcntl
import os
import re
import time

import mclab

L = mclab.lab()
rep = mclab.Report("check")
wd = mclab.Workdir("check")
rep.guard(wd.cleanup)
PF = L["postfix"]


def sender(name, port):
    return mclab.mx_sender(name, port, helo="mx.lab.test")


seed = mclab.lab_seed


SENDERS = [sender("pf", PF["mx"]), sender("ok", L["sinks"]["ok"]), sender("r432", L["sinks"]["rcpt432"]),
           sender("r5xx", L["sinks"]["rcpt5xx"])]
SEEDS = [seed("plain", "ok"), seed("inbox", "pf", readback=True),
         seed("junk", "pf", readback=True, headers=["X-Lab-Junk: yes"]),
         seed("defer", "r432"), seed("reject", "r5xx"), seed("missing", "ok", readback=True)]
conf = wd.config("main", SENDERS, SEEDS,
                 extra='retry: { schedule = []; };\nreadback: { timeout = "6s"; late = "0s"; };\n')
STATE = os.path.join(wd.path, "state-main")

PERF = re.compile(r"^'([^'=]+)'=(-?[0-9.]+)(ms|s|%|B|KB|MB|TB|c)?;(-?[0-9.]*);(-?[0-9.]*);(-?[0-9.]*);(-?[0-9.]*)$")


def check(*args):
    rc, out, err = mclab.run(["-c", conf, "check"] + list(args), timeout=120)
    lines = out.splitlines()
    first = lines[0] if lines else ""
    text, _, perfdata = first.partition(" |")
    perf, bad = {}, []
    for item in perfdata.split():
        m = PERF.match(item)
        if m:
            perf[m.group(1)] = m.groups()[1:]
        else:
            bad.append(item)
    return rc, text, perf, bad, lines[1:], err


def state_of(text):
    m = re.match(r"MAILCANARY (OK|WARNING|CRITICAL|UNKNOWN) - ", text)
    return m.group(1) if m else None


rc, text, perf, bad, more, err = check("plain")
rep.check("plain: OK, exit 0", rc == 0 and state_of(text) == "OK" and "plain: accepted in" in text, text + err[-300:])
rep.check("plain: perfdata valid: total and stages in ms, attempts, accepted",
          not bad and perf.get("total", [None, "ms"])[1] == "ms" and "eod" in perf and "rcpt" in perf
          and perf.get("attempts", [""])[0] == "1" and perf.get("accepted", [""])[0] == "1", str(perf) + str(bad))
rep.check("plain: no diagnosis lines when OK", more == [], str(more))

rc, text, perf, bad, more, err = check("inbox")
rep.check("inbox: OK, found in INBOX with a delivery time", rc == 0 and state_of(text) == "OK"
          and "found in INBOX" in text and "delivery" in perf and perf["delivery"][1] == "s", text + str(perf) + err[-300:])

rc, text, perf, bad, more, err = check("junk")
rep.check("junk: WARNING, exit 1, found in Junk", rc == 1 and state_of(text) == "WARNING" and "Junk" in text
          and "(junk)" in text, text + err[-300:])
rep.check("junk: the diagnosis follows", len(more) == 2 and more[0].startswith("diagnosis: ")
          and more[1].startswith("next step: "), str(more))

rc, text, perf, bad, more, err = check("defer")
rep.check("defer: WARNING, exit 1, stage and codes in the text",
          rc == 1 and state_of(text) == "WARNING" and "deferred at rcpt: 451 4.3.2" in text, text + err[-300:])
rep.check("defer: perfdata says not accepted; the diagnosis follows",
          not bad and perf.get("accepted", [""])[0] == "0" and more and more[0].startswith("diagnosis: "), str(perf) + str(more))

rc, text, perf, bad, more, err = check("reject")
rep.check("reject: CRITICAL, exit 2, code and text", rc == 2 and state_of(text) == "CRITICAL"
          and "rejected at rcpt: 5" in text, text + err[-300:])

rc, text, perf, bad, more, err = check("missing")
rep.check("missing: accepted but never found: CRITICAL, exit 2", rc == 2 and state_of(text) == "CRITICAL"
          and "readback missing" in text, text + err[-300:])

# thresholds
rc, text, perf, bad, more, err = check("plain", "--warn-latency", "0s", "--crit-latency", "10m")
rep.check("latency: a warning threshold in a unit below the SMTP time: WARNING, no diagnosis",
          rc == 1 and "SMTP time" in text and "above" in text and more == [], text + str(more) + err[-200:])
rep.check("latency: thresholds on total in ms in the perfdata", perf.get("total", ["", "", "", ""])[2] == "0.000"
          and perf.get("total", ["", "", "", "", ""])[3] == "600000.000", str(perf.get("total")))
rc, text, perf, bad, more, err = check("--crit-latency", "0.000001", "plain")
rep.check("latency: seconds as a plain number, option before the seed: CRITICAL", rc == 2 and "SMTP time" in text, text)
rc, text, perf, bad, more, err = check("inbox", "--warn-latency", "3600")
rep.check("latency: read back: the thresholds go on delivery (s)", rc == 0 and perf.get("delivery", ["", "", ""])[2] == "3600.000"
          and perf.get("total", ["", "", ""])[2] == "", str(perf))

# UNKNOWN
rc, text, perf, bad, more, err = check("nope")
rep.check("unknown seed: UNKNOWN, exit 3", rc == 3 and state_of(text) == "UNKNOWN" and "nope" in text, text)
rc, text, perf, bad, more, err = check()
rep.check("no seed: UNKNOWN, exit 3", rc == 3 and state_of(text) == "UNKNOWN", text)
rc, text, perf, bad, more, err = check("plain", "--warn-latency", "soon")
rep.check("bad threshold: UNKNOWN, exit 3", rc == 3 and state_of(text) == "UNKNOWN" and "soon" in text, text)
badconf = os.path.join(wd.path, "bad.conf")
with open(badconf, "w") as f:
    f.write('state_dir = "/tmp/x";\nlimits: {\n  in_flight = "many";\n};\n')
rc, out, err = mclab.run(["-c", badconf, "check", "plain"])
rep.check("bad configuration: UNKNOWN naming file and line, exit 3",
          rc == 3 and out.startswith("MAILCANARY UNKNOWN - configuration error: ") and "bad.conf:3" in out, out + err)

# beside the daemon: the state lock taken by another process
os.makedirs(STATE, exist_ok=True)
lockfd = os.open(os.path.join(STATE, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
try:
    rc, text, perf, bad, more, err = check("plain")
finally:
    os.close(lockfd)
rep.check("state lock held elsewhere: still OK, exit 0", rc == 0 and state_of(text) == "OK", text + err[-300:])
rep.check("no RRD file written by check", not os.path.exists(os.path.join(STATE, "rrd")),
          str(os.listdir(STATE)))

# the plugin's own deadline: a server that never greets, stage timeouts far longer
hang = wd.config("hang", [sender("nob", L["sinks"]["nobanner"])], [seed("hang", "nob")],
                 timeouts={"banner": "5m", "command": "5m"}, extra='retry: { schedule = []; };\n')
t0 = time.monotonic()
rc, out, err = mclab.run(["-c", hang, "check", "hang", "-t", "2"], timeout=60)
took = time.monotonic() - t0
rep.check("--timeout: a server that never greets is CRITICAL by the deadline, not after the 5 min banner timeout",
          rc == 2 and out.startswith("MAILCANARY CRITICAL - hang: no result within 2 s") and took < 30,
          "rc %d in %.1f s: %s %s" % (rc, took, out, err[-300:]))
rc, text, perf, bad, more, err = check("plain", "--timeout", "0.5")
rep.check("--timeout below 1 s: UNKNOWN, exit 3", rc == 3 and state_of(text) == "UNKNOWN", text)

# options after operands, in every command (getopt reinitialised after main's "+" parse)
rc, out, err = mclab.run(["-c", conf, "probe", "plain", "--json", "--no-readback"])
rep.check("probe SEED --json: the options after the seed are options", rc == 0 and out.startswith('{"seed":"plain"'),
          out[:200] + err[-200:])

wd.cleanup()
rep.finish()
