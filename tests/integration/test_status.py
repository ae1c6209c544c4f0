#!/usr/bin/env python3
"""`mailcanary status [SEED...] [--json]` through the real CLI against the lab: a probe round
(accepted and found in INBOX, found in Junk, accepted without readback, deferred, rejected,
accepted and never found) writes the detail log; status --json gives one object per configured
seed in configuration order whose result is the probe's last final line as is, state ok/problem/
none and a plausible age; the human table agrees with those lines (outcome or readback finding,
stage, code, enhanced code, delivery, folder, age, text) and shows the diagnosis (cause, next
step) under every seed not cleanly delivered and only there; a seed never probed has "no result
yet"; TEXT is cut to $COLUMNS; exit 0/1/2 (seed arguments narrow, unknown seed and bad option
exit 2); a last line without its newline is ignored until it is complete; a late arrival
supersedes the missing result of the same probe; after rotation results.jsonl.1 is read too,
the newer file winning; ages print as s/m/h/d; below the table the round diagnosis across the
seeds' latest outcomes (one provider refusing while another accepts), logged as event=round with
--json."""

import copy
import datetime
import json
import os
import re
import time

import mclab

L = mclab.lab()
rep = mclab.Report("status")
wd = mclab.Workdir("status")
rep.guard(wd.cleanup)
PF = L["postfix"]


sender = mclab.mx_sender
seed = mclab.lab_seed


SENDERS = [sender("pf", PF["mx"]), sender("ok", L["sinks"]["ok"]), sender("r432", L["sinks"]["rcpt432"]),
           sender("r5xx", L["sinks"]["rcpt5xx"])]


SEEDS = [
    seed("inbox", "pf", readback=True),
    seed("junk", "pf", readback=True, headers=["X-Lab-Junk: yes"]),
    seed("plain", "ok"),
    seed("defer", "r432"),
    seed("reject", "r5xx"),
    seed("missing", "ok", readback=True),  # smtp-sink accepts and drops it: never found
    seed("never", "ok"),                   # never probed
]
PROBED = ["inbox", "junk", "plain", "defer", "reject", "missing"]
NAMES = [s["name"] for s in SEEDS]
WANT = {"inbox": ("accepted", "ok"), "junk": ("accepted/junk", "problem"), "plain": ("accepted", "ok"),
        "defer": ("deferred", "problem"), "reject": ("rejected", "problem"),
        "missing": ("accepted/missing", "problem")}

conf = wd.config("main", SENDERS, SEEDS,
                 extra='retry: { schedule = []; };\nreadback: { timeout = "8s"; late = "0s"; };\n')
STATE = os.path.join(wd.path, "state-main")
LOG = os.path.join(STATE, "results.jsonl")


def status(*args, columns=400):
    return mclab.run(["-c", conf, "status"] + list(args), env={"COLUMNS": str(columns)})


def status_json(*args):
    rc, out, err = status("--json", *args)
    objs = []
    for ln in out.splitlines():
        try:
            objs.append(json.loads(ln))
        except ValueError:
            objs.append({"unparsable": ln})
    return rc, objs, err


def table(out):
    """{seed: {"cols": [...9 columns...] or None, "row": line, "notes": [indented lines]}}."""
    lines = out.splitlines()
    rows, cur = {}, None
    if not lines or not lines[0].startswith("SEED "):
        return rows
    for ln in lines[1:]:
        if ln.startswith("round diagnosis: "):
            break                                # the verdict across seeds, below the table
        if ln.startswith(" "):
            if cur:
                rows[cur]["notes"].append(ln.strip())
            continue
        parts = ln.split(None, 8)
        cur = parts[0]
        rows[cur] = {"row": ln, "notes": [], "cols": parts if "no result yet" not in ln else None}
    return rows


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


# ---------------------------------------------------------------------------
# a round of probes, one per outcome

t_start = time.time()
rc, lines, err = mclab.probe_lines(conf, *PROBED, timeout=180)
finals = {s: mclab.final_of(lines, s) for s in PROBED}
rep.check("probe: exit 1 and a final line per probed seed", rc == 1 and all(finals.values()),
          "rc %d, finals %s, err %s" % (rc, [s for s in PROBED if finals[s]], err[-500:]))
got = {s: (r["smtp"]["outcome"], r["readback"]["status"]) for s, r in finals.items() if r}
rep.check("probe: the outcomes the status must show",
          got.get("inbox") == ("accepted", "found") and got.get("junk") == ("accepted", "found")
          and got.get("plain") == ("accepted", "skipped") and got.get("defer", ("",))[0] == "deferred"
          and got.get("reject", ("",))[0] == "rejected" and got.get("missing") == ("accepted", "missing"), str(got))
elapsed = time.time() - t_start + 5

# ---------------------------------------------------------------------------
# --json: one object per seed, the last final line as is

rc, objs, err = status_json()
rep.check("json: exit 1 (problems among the seeds)", rc == 1, "rc %d err %s" % (rc, err[-300:]))
rep.check("json: one object per configured seed, in configuration order", [o.get("seed") for o in objs] == NAMES,
          str(objs)[:600])
by = {o.get("seed"): o for o in objs}
for s in PROBED:
    o = by.get(s, {})
    rep.check("json: %s's result is its last final line" % s, o.get("result") == finals[s],
              "got %s want %s" % (json.dumps(o.get("result"))[:300], json.dumps(finals[s])[:300]))
    rep.check("json: %s's state is %s" % (s, WANT[s][1]), o.get("state") == WANT[s][1], str(o.get("state")))
    age = o.get("age_s")
    rep.check("json: %s's age_s is plausible (0..%d)" % (s, elapsed), isinstance(age, int) and 0 <= age <= elapsed,
              str(age))
rep.check("json: never has state none, no result, no age",
          by.get("never") == {"seed": "never", "state": "none", "age_s": None, "result": None}, str(by.get("never")))

# ---------------------------------------------------------------------------
# the table agrees with the JSON lines

rc, out, err = status()
rep.check("human: exit 1", rc == 1, "rc %d err %s" % (rc, err[-300:]))
rows = table(out)
rep.check("human: header and one row per seed in configuration order", list(rows) == NAMES, out[:800])
# seed-a.test (inbox, junk) accepted while sink.test deferred and rejected: a provider-specific verdict
verdict = [ln for ln in out.splitlines() if ln.startswith("round diagnosis: ")]
rep.check("human: the round diagnosis names the one refusing provider",
          len(verdict) == 1 and "[round.provider]" in verdict[0] and "sink.test" in verdict[0]
          and "seed-a.test" not in verdict[0].split("[")[0].split("while")[0], str(verdict))
rc2, out2, err2 = status("inbox", "junk", "plain")
rep.check("human: no round diagnosis when every provider accepted",
          "round diagnosis" not in out2, out2[-400:])
rc2, out2, err2 = mclab.run(["-c", conf, "-v", "status", "--json"])
rep.check("json: stdout one object per seed; the verdict logged as event=round",
          len([x for x in out2.splitlines() if x.strip()]) == len(NAMES) and "event=round rule=round.provider" in err2,
          err2[-400:])
for s in PROBED:
    r, row = finals[s], rows.get(s, {"cols": None, "notes": [], "row": ""})
    sm, rb = r["smtp"], r["readback"]
    want = [s, WANT[s][0], sm["stage"], str(sm["code"]) if sm.get("code") else "-", sm.get("enhanced") or "-",
            "%.1f" % rb["delivery_s"] if rb.get("delivery_s") is not None else "-", rb.get("folder") or "-"]
    cols = row["cols"] or []
    rep.check("human: %s's columns match its JSON line" % s, cols[:7] == want, "got %s want %s" % (cols[:7], want))
    m = re.fullmatch(r"(\d+)s", cols[7] if len(cols) > 7 else "")
    rep.check("human: %s's age is plausible" % s, bool(m) and int(m.group(1)) <= elapsed, row["row"])
    text = sm.get("text") or sm.get("error") or "-"
    rep.check("human: %s's text is the reply text" % s, len(cols) > 8 and cols[8] == text.strip(),
              "got %r want %r" % (cols[8:], text))
    d = r.get("diagnosis") or {}
    has = any(n.startswith("diagnosis: ") for n in row["notes"])
    if WANT[s][1] == "ok":
        rep.check("human: no diagnosis under %s (cleanly delivered)" % s, not has, str(row["notes"]))
    else:
        rep.check("human: %s's diagnosis and next step are shown" % s, bool(d.get("cause"))
                  and ("diagnosis: %s [%s]" % (d["cause"], d.get("rule"))) in row["notes"]
                  and ("next step: " + d.get("next_step", "")) in row["notes"], "%s vs %s" % (row["notes"], d))
rep.check("human: never has no result yet", re.fullmatch(r"never +no result yet", rows.get("never", {}).get("row", ""))
          is not None, out[-300:])
rep.check("human: the junk row names its folder (not INBOX)",
          (rows.get("junk", {}).get("cols") or ["?"] * 7)[6] not in ("INBOX", "-"), str(rows.get("junk")))

# ---------------------------------------------------------------------------
# exit status and seed arguments

rc, out, err = status("inbox", "plain")
rows = table(out)
rep.check("args: inbox plain: exit 0, just those rows", rc == 0 and list(rows) == ["inbox", "plain"],
          "rc %d out %s err %s" % (rc, out, err[-300:]))
rc, objs, err = status_json("plain", "never")
rep.check("args: --json plain never: exit 0 (no result is no problem), those two",
          rc == 0 and [o.get("seed") for o in objs] == ["plain", "never"], "rc %d %s" % (rc, objs))
rc, objs, err = status_json("defer")
rep.check("args: --json defer: exit 1", rc == 1 and len(objs) == 1, "rc %d %s" % (rc, objs))
rc, out, err = status("inbox", "nosuch")
rep.check("args: an unknown seed: exit 2, named", rc == 2 and "no seed named 'nosuch'" in err and out == "",
          "rc %d out %r err %r" % (rc, out, err))
rc, out, err = status("--bogus")
rep.check("args: an unknown option: exit 2 with usage", rc == 2 and "usage:" in err, "rc %d err %r" % (rc, err))
rc, out, err = mclab.run(["-c", os.path.join(wd.path, "nope.conf"), "status"])
rep.check("args: a missing configuration: exit 2", rc == 2 and out == "", "rc %d err %r" % (rc, err))

# ---------------------------------------------------------------------------
# a partial last line (being written) is ignored until its newline arrives

crafted = copy.deepcopy(finals["inbox"])
crafted["probe_id"] = "crafted-inbox"
crafted["sent_at"] = iso(datetime.datetime.now(datetime.timezone.utc))
crafted["smtp"].update({"outcome": "rejected", "stage": "rcpt", "code": 554, "enhanced": "5.7.1",
                        "text": "crafted rejection " + "x" * 300})
crafted["readback"] = {"status": "skipped"}
crafted["diagnosis"] = {"cause": "crafted cause", "next_step": "crafted step", "rule": "crafted"}
with open(LOG, "a") as f:
    f.write(json.dumps(crafted))
rc, objs, err = status_json("inbox")
rep.check("partial: a last line without newline is ignored", rc == 0 and objs and objs[0].get("result") == finals["inbox"],
          "rc %d %s" % (rc, str(objs)[:300]))
with open(LOG, "a") as f:
    f.write("\n")
rc, objs, err = status_json("inbox")
rep.check("partial: complete, it is the latest", rc == 1 and objs and objs[0].get("result") == crafted
          and objs[0].get("state") == "problem", "rc %d %s" % (rc, str(objs)[:300]))
rc, out, err = status("inbox")
row = table(out).get("inbox", {})
rep.check("partial: the table shows it with its diagnosis",
          (row.get("cols") or [])[1:5] == ["rejected", "rcpt", "554", "5.7.1"]
          and "diagnosis: crafted cause [crafted]" in row.get("notes", []), str(row))

# TEXT cut to the width
full = crafted["smtp"]["text"]
rc, out, err = status("inbox", columns=100)
row = (table(out).get("inbox") or {}).get("row", "")
parts = row.split(None, 8)
prefix = len(row) - len(parts[8]) if len(parts) > 8 else 0
cut = row[prefix:]
rep.check("width: the text is cut to $COLUMNS (100, with ... at the end)",
          prefix > 0 and len(row) == 100 and cut.endswith("...") and full.startswith(cut[:-3]),
          "%r (%d)" % (row, len(row)))
rc, out, err = status("inbox", columns=40)
row = (table(out).get("inbox") or {}).get("row", "")
rep.check("width: at least 20 columns of text on a narrow terminal",
          len(row) == prefix + 20 and row.endswith("...") and row[prefix:-3] == full[:17], "%r" % row)
rc, out, err = status("inbox", columns=1000)
row = (table(out).get("inbox") or {}).get("row", "")
rep.check("width: wide enough, the whole text", row.endswith(full) and not row.endswith("..."), "%r" % row[-60:])

# a late arrival of the missing probe supersedes the missing result
late = copy.deepcopy(finals["missing"])
late["readback"] = {"status": "found", "folder": "INBOX", "delivery_s": 20.0, "late": True}
late.pop("diagnosis", None)
with open(LOG, "a") as f:
    f.write(json.dumps(late) + "\n")
rc, out, err = status("missing")
row = table(out).get("missing", {})
rep.check("late: found late supersedes missing: exit 0, accepted/late in INBOX",
          rc == 0 and (row.get("cols") or [])[1:2] == ["accepted/late"] and (row.get("cols") or [])[5:7] == ["20.0", "INBOX"],
          "rc %d %s" % (rc, row))

# ---------------------------------------------------------------------------
# rotation: results.jsonl.1 is read, the newer file wins; ages in h and d

os.rename(LOG, LOG + ".1")
now = datetime.datetime.now(datetime.timezone.utc)
fixed = copy.deepcopy(finals["inbox"])
fixed.update({"seed": "defer", "probe_id": "crafted-defer", "sent_at": iso(now - datetime.timedelta(hours=2, minutes=5))})
old = copy.deepcopy(finals["reject"])
old.update({"seed": "never", "probe_id": "crafted-never", "sent_at": iso(now - datetime.timedelta(days=5, hours=1))})
with open(LOG, "w") as f:
    f.write(json.dumps(fixed) + "\n" + json.dumps(old) + "\n")
rc, objs, err = status_json()
by = {o.get("seed"): o for o in objs}
rep.check("rotated: the older file's results still count",
          all(by.get(s, {}).get("result") == finals[s] for s in ("junk", "plain", "reject"))
          and by.get("missing", {}).get("result") == late and by.get("inbox", {}).get("result") == crafted,
          str(objs)[:600])
rep.check("rotated: the newer file wins (defer now ok, never rejected)",
          by.get("defer", {}).get("state") == "ok" and by.get("defer", {}).get("result") == fixed
          and by.get("never", {}).get("state") == "problem", str([by.get("defer"), by.get("never")])[:600])
rep.check("rotated: age_s of the crafted lines", abs((by.get("defer", {}).get("age_s") or 0) - 7500) < 120
          and abs((by.get("never", {}).get("age_s") or 0) - 435600) < 120, str([by.get("defer"), by.get("never")])[:300])
rc, out, err = status("defer", "never", "plain")
rows = table(out)
rep.check("rotated: ages print as 2h and 5d", (rows.get("defer", {}).get("cols") or [""] * 8)[7] == "2h"
          and (rows.get("never", {}).get("cols") or [""] * 8)[7] == "5d" and rc == 1, out)
os.remove(LOG)
rc, objs, err = status_json("plain")
rep.check("rotated: only results.jsonl.1 left: still read", rc == 0 and objs and objs[0].get("result") == finals["plain"],
          "rc %d %s" % (rc, str(objs)[:300]))

wd.cleanup()
rep.finish()
