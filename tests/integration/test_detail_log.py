#!/usr/bin/env python3
"""The detail log's own rotation (detail_log in the configuration), through the real CLI against
the lab's accepting smtp-sink: with daily = true a results.jsonl last written yesterday becomes
results.jsonl.1 before the new result is written, and a second run the same day appends; keep
bounds the rotated files (the oldest is removed); with max_size (MiB) a file that the next line
would take past it is rotated, every old line kept, whole, in results.jsonl.1; with the defaults
of max_size = 0 and daily = false nothing is rotated; `status` reads the rotated file; a bad
detail_log value is a config error naming file and line."""

import os
import time

import mclab

L = mclab.lab()
rep = mclab.Report("detail_log")
wd = mclab.Workdir("detail-log")
rep.guard(wd.cleanup)

SENDERS = [{"name": "ok", "mode": "mx", "port": L["sinks"]["ok"], "helo": "probe.lab.test",
            "mail_from": "canary@lab.test", "tls": "none"}]
SEEDS = [{"name": "plain", "address": "seed1@sink.test", "sender": "ok", "schedule": "hourly"},
         {"name": "other", "address": "seed2@sink.test", "sender": "ok", "schedule": "hourly"}]
EXTRA = 'retry: { schedule = []; };\n'


def lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return None


def yesterday(path):
    t = time.time() - 86400
    os.utime(path, (t, t))


def probe(conf, *seeds):
    rc, res, out, err = mclab.probe_json(conf, *seeds)
    return rc, res, err


# --- daily ------------------------------------------------------------------
conf = wd.config("daily", SENDERS, SEEDS, extra=EXTRA + 'detail_log: { daily = true; keep = 2; max_size = 0; };\n')
state = os.path.join(wd.path, "state-daily")
log = os.path.join(state, "results.jsonl")
os.makedirs(state, exist_ok=True)
old = ['{"seed":"other","probe_id":"old-1","note":"yesterday"}', '{"seed":"other","probe_id":"old-2"}']
with open(log, "w") as f:
    f.write("\n".join(old) + "\n")
yesterday(log)
rc, res, err = probe(conf, "plain")
now_lines = lines(log) or []
rep.check("daily: the probe was accepted", rc == 0 and res.get("plain", {}).get("smtp", {}).get("outcome") == "accepted",
          "rc %d %s" % (rc, err[-300:]))
rep.check("daily: yesterday's file became results.jsonl.1, unchanged", lines(log + ".1") == old, str(lines(log + ".1")))
rep.check("daily: results.jsonl holds only today's result",
          len(now_lines) == 1 and '"probe_id":"%s"' % res.get("plain", {}).get("probe_id") in now_lines[0], str(now_lines)[:300])
rc, res2, err = probe(conf, "plain")
rep.check("daily: a second run the same day appends", len(lines(log) or []) == 2 and lines(log + ".1") == old,
          str(lines(log))[:300])
# two more days: keep = 2 drops the oldest
yesterday(log)
probe(conf, "plain")
rep.check("daily: the next day: .1 is the day before, .2 the oldest",
          len(lines(log) or []) == 1 and len(lines(log + ".1") or []) == 2 and lines(log + ".2") == old,
          str([lines(log), lines(log + ".1"), lines(log + ".2")])[:400])
yesterday(log)
rc, last, err = probe(conf, "plain")
rep.check("daily: keep = 2: the oldest file is removed", lines(log + ".3") is None and lines(log + ".2") != old
          and len(lines(log + ".2") or []) == 2, str(os.listdir(state)))
rc, out, err = mclab.run(["-c", conf, "status", "--json", "plain"])
rep.check("daily: status shows the newest result, written just after a rotation",
          rc == 0 and '"probe_id":"%s"' % last.get("plain", {}).get("probe_id", "?") in out.replace(" ", ""),
          "rc %d %s %s" % (rc, out[:300], err[-200:]))

# --- size -------------------------------------------------------------------
conf = wd.config("size", SENDERS, SEEDS, extra=EXTRA + 'detail_log: { max_size = 1; };\n')
state = os.path.join(wd.path, "state-size")
log = os.path.join(state, "results.jsonl")
os.makedirs(state, exist_ok=True)
filler = '{"seed":"other","probe_id":"fill-%06d","pad":"' + "x" * 200 + '"}'
n = (1 << 20) // (len(filler % 0) + 1)      # just under 1 MiB
with open(log, "w") as f:
    for i in range(n):
        f.write(filler % i + "\n")
size_before = os.path.getsize(log)
rc, res, err = probe(conf, "plain", "other")
got = lines(log) or []
rot = lines(log + ".1") or []
rep.check("size: under 1 MiB before, two results made it pass: rotated",
          size_before < (1 << 20) and rc == 0 and len(rot) >= n and len(got) >= 1, "before %d, .1 %d lines, now %d lines"
          % (size_before, len(rot), len(got)))
rep.check("size: every old line kept whole, in order", rot[:n] == [filler % i for i in range(n)], "")
rep.check("size: results.jsonl stays under max_size", os.path.getsize(log) <= (1 << 20), str(os.path.getsize(log)))
rc, out, err = mclab.run(["-c", conf, "status", "--json", "plain", "other"])
rep.check("size: status reads the newest result of both seeds", rc == 0 and out.count('"state":"ok"') == 2,
          "rc %d %s %s" % (rc, out[:400], err[-200:]))

# --- defaults: max_size 64 MiB, no daily ---------------------------------------
conf = wd.config("dflt", SENDERS, SEEDS, extra=EXTRA)
state = os.path.join(wd.path, "state-dflt")
log = os.path.join(state, "results.jsonl")
os.makedirs(state, exist_ok=True)
with open(log, "w") as f:
    f.write(old[0] + "\n")
yesterday(log)
probe(conf, "plain")
rep.check("defaults: a small file of yesterday is not rotated", lines(log + ".1") is None and len(lines(log) or []) == 2,
          str(os.listdir(state)))

# --- config errors -------------------------------------------------------------
conf = wd.config("bad", SENDERS, SEEDS, extra=EXTRA + 'detail_log: {\n  keep = 0;\n};\n')
rc, out, err = mclab.run(["-c", conf, "check-config"])
rep.check("config: keep = 0 is an error naming file and line", rc != 0 and "bad.conf:" in err and "detail_log.keep" in err,
          "rc %d %s" % (rc, err[-300:]))

wd.cleanup()
rep.finish()
