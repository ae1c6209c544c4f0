#!/usr/bin/env python3
"""The DNS checks every probe runs for its sending identity (dns.probe_checks), through the real
CLI against the lab: which identity is checked (the session's local address, also through a
relay; source_ip when the probe never connected), no recipient-side checks, one check run per
identity shared by concurrent probes and reused for dns.checks_ttl (the second result says
"cached"; counted in -v's event=dnscheck lines and in dnsmasq's own query log), and a resolver
that never answers (a blackholed DNSBL zone, a blackholed resolver) never stops a result from
being written: bounded in time, the checks recorded as errors, no finding, the diagnosis
unchanged."""

import json
import os
import re
import time

import mclab

L = mclab.lab()
rep = mclab.Report("probe_dns")
wd = mclab.Workdir("probe_dns")
rep.guard(wd.cleanup)
SINK = L["sinks"]
DNSMASQ_LOG = [p for p in L["logs"]["dnsmasq"] if not p.endswith("-stderr.log")][0]
RECIPIENT_SIDE = {"mx", "mx_time", "mx_port"}


def sender(name, port, **kw):
    s = {"name": name, "mode": "mx", "port": port, "helo": "mx.lab.test", "mail_from": "canary@lab.test",
         "tls": "none"}
    s.update(kw)
    return s


def seed(name, address, via):
    return {"name": name, "address": address, "sender": via, "schedule": "hourly"}


with_dns = mclab.with_dns


def checks(r):
    return {c["name"]: c for c in ((r or {}).get("dns") or {}).get("checks", [])}


def dnsmasq_queries(name):
    """How many A queries for name dnsmasq has logged so far."""
    try:
        with open(DNSMASQ_LOG, errors="replace") as f:
            return sum(1 for ln in f if re.search(r"query\[A\] %s from" % re.escape(name), ln))
    except OSError:
        return -1


def run_lines(conf, *args, timeout=120):
    t = time.monotonic()
    rc, out, err = mclab.run(["-c", conf, "-v", "probe", "--json", "--no-readback"] + list(args), timeout=timeout)
    lines = [json.loads(x) for x in out.splitlines() if x.strip()]
    return rc, {x["seed"]: x for x in lines}, err, time.monotonic() - t


# ---------------------------------------------------------------------------
# 1. Whose identity: the local address of the session (mx and relay mode), not the relay's.

conf = with_dns(wd.config("ident", [
    sender("plain", SINK["ok"]),
    sender("bound", SINK["ok"], source_ip="127.0.0.2"),
    sender("relay", SINK["ok"], mode="relay", host="127.0.0.1", source_ip="127.0.0.2"),
    sender("never", L["refused_port"], source_ip="127.0.0.12"),
], [seed("plain", "seed1@sink.test", "plain"), seed("bound", "seed1@sink.test", "bound"),
    seed("relay", "seed1@sink.test", "relay"), seed("never", "seed1@sink.test", "never")]),
    'dnsbl = ["bl.test"];')
rc, res, err, secs = run_lines(conf)
rep.check("identity: four results, each with a dns member", set(res) == {"plain", "bound", "relay", "never"}
          and all("dns" in r for r in res.values()), "rc=%d %s err=%s" % (rc, sorted(res), err[-400:]))
for name, ip, frm, listed in (("plain", "127.0.0.1", "local_ip", False), ("bound", "127.0.0.2", "local_ip", True),
                              ("relay", "127.0.0.2", "local_ip", True), ("never", "127.0.0.12", "source_ip", False)):
    r = res.get(name) or {}
    d = r.get("dns") or {}
    c = checks(r)
    rep.check("identity %s: checked %s (%s), smtp.local_ip %r" % (name, ip, frm, r.get("smtp", {}).get("local_ip")),
              d.get("ip") == ip and d.get("ip_from") == frm
              and (frm != "local_ip" or r.get("smtp", {}).get("local_ip") == ip), json.dumps(d)[:400])
    rep.check("identity %s: the sending identity's checks, none of the recipient side" % name,
              {"ptr", "fcrdns", "helo", "spf", "dmarc", "dnsbl:bl.test"} <= set(c) and not (RECIPIENT_SIDE & set(c)),
              sorted(c))
    rep.check("identity %s: dnsbl:bl.test %s" % (name, "fail (listed)" if listed else "pass"),
              c.get("dnsbl:bl.test", {}).get("status") == ("fail" if listed else "pass"),
              json.dumps(c.get("dnsbl:bl.test")))
rep.check("identity never: 127.0.0.12 has no PTR (ptr fail), the probe failed at connect",
          checks(res.get("never")).get("ptr", {}).get("status") == "fail"
          and (res.get("never") or {}).get("smtp", {}).get("stage") == "connect", json.dumps(res.get("never"))[:600])
rep.check("identity: the dns member comes right before the diagnosis (the last member)",
          all(list(r)[-2:] == ["dns", "diagnosis"] for r in res.values()), str([list(r)[-3:] for r in res.values()]))

# ---------------------------------------------------------------------------
# 2. The cache: one run per identity. The identity gets a unique EHLO name, so that dnsmasq's
# query log counts this test's runs alone (each run asks for its A record once). Two senders
# with different ports share the identity: probes to the fast sink decide together (one run,
# the other waits for it or reuses it); the probe to the sink that answers end-of-data after 1 s
# decides later and reuses the finished run within dns.checks_ttl, or runs again with 0s.

helo = "c%s.lab.test" % os.urandom(4).hex()
csenders = [sender("fast", SINK["ok"], helo=helo), sender("slow", SINK["slow_eod"], helo=helo)]


def cache_round(name, dns_settings, seeds_):
    c = wd.config(name, csenders, seeds_)
    if dns_settings:
        with_dns(c, dns_settings)
    before = dnsmasq_queries(helo)
    rc, res, err, secs = run_lines(c)
    time.sleep(0.3)  # dnsmasq's log line is written after its answer
    return rc, res, err, dnsmasq_queries(helo) - before


cseeds = [seed("a1", "seed1@sink.test", "fast"), seed("a2", "seed2@sink.test", "fast"),
          seed("b", "seed3@sink.test", "slow")]
rc, res, err, nq = cache_round("cache", None, cseeds)
runs = re.findall(r"event=dnscheck ip=127\.0\.0\.1 helo=%s " % re.escape(helo), err)
cached = {n: (r.get("dns") or {}).get("cached") for n, r in res.items()}
rep.check("cache: three accepted probes with the same identity", rc == 0 and set(res) == {"a1", "a2", "b"},
          "rc=%d %s err=%s" % (rc, sorted(res), err[-400:]))
rep.check("cache: one check run (one event=dnscheck line, one A query for the EHLO name at dnsmasq)",
          len(runs) == 1 and nq == 1, "%d runs logged, %d queries" % (len(runs), nq))
rep.check("cache: exactly one of a1, a2 ran the checks (cached false), the other says cached",
          sorted([cached.get("a1"), cached.get("a2")]) == [False, True], str(cached))
rep.check("cache: b, decided a second later, reuses the finished run (cached, same checked_at)",
          cached.get("b") is True and res["b"]["dns"]["checked_at"] == min(
              res["a1"]["dns"]["checked_at"], res["a2"]["dns"]["checked_at"]), json.dumps(
              {n: r.get("dns", {}).get("checked_at") for n, r in res.items()}))
rep.check("cache: the helo finding is the same in every copy (fail: the name does not resolve)",
          all(checks(r).get("helo", {}).get("status") == "fail" for r in res.values()),
          str({n: checks(r).get("helo") for n, r in res.items()})[:500])

rc, res, err, nq = cache_round("cache0", 'checks_ttl = "0s";', [cseeds[0], cseeds[2]])
runs = re.findall(r"event=dnscheck ip=127\.0\.0\.1 helo=%s " % re.escape(helo), err)
rep.check("cache: checks_ttl = 0s: the later probe runs the checks again (two runs, both cached false)",
          len(runs) == 2 and nq == 2 and all(r.get("dns", {}).get("cached") is False for r in res.values())
          and len(res) == 2, "%d runs, %d queries, %s" % (len(runs), nq,
                                                          {n: r.get("dns", {}).get("cached") for n, r in res.items()}))

rc, res, err, nq = cache_round("cacheoff", "probe_checks = false;", cseeds[:1])
rep.check("cache: probe_checks = false: no run, no dns member", nq == 0 and "event=dnscheck " not in err
          and res.get("a1") is not None and "dns" not in res["a1"], "%d queries %s" % (nq, list(res.get("a1", {}))))

# ---------------------------------------------------------------------------
# 3. DNS that never answers does not stop the result. dead.test is forwarded by dnsmasq to a
# port that never answers: as a DNSBL zone its check times out while the probe is accepted.

dconf = with_dns(wd.config("deadzone", [sender("s", SINK["ok"])], [seed("ok", "seed1@sink.test", "s")],
                           dns_timeout="1s"), 'dnsbl = ["dead.test", "bl.test"];')
rc, res, err, secs = run_lines(dconf)
r = res.get("ok")
c = checks(r)
rep.check("dead zone: accepted, exit 0, written within 10 s", rc == 0 and r is not None and secs < 10
          and r["smtp"]["outcome"] == "accepted", "rc=%d %.1f s err=%s" % (rc, secs, err[-300:]))
rep.check("dead zone: dnsbl:dead.test is an error with the timeout, the other checks answered",
          c.get("dnsbl:dead.test", {}).get("status") == "error"
          and "timeout" in c.get("dnsbl:dead.test", {}).get("detail", "").lower()
          and c.get("ptr", {}).get("status") == "pass" and c.get("dnsbl:bl.test", {}).get("status") == "pass",
          json.dumps(c)[:700])
rep.check("dead zone: the diagnosis is accepted (an error is no finding)",
          (r or {}).get("diagnosis", {}).get("rule") == "accepted", json.dumps((r or {}).get("diagnosis")))

# A resolver that never answers at all: the probe fails at dns; its checks all time out; the
# result is written in bounded time with the diagnosis it has without checks.
bh = [L["dns"]["blackhole"]]
NO_RETRY = "retry: { schedule = []; };\n"
bconf = with_dns(wd.config("blackhole", [sender("s", SINK["rcpt432"], source_ip="127.0.0.1")],
                           [seed("bh", "seed1@sink.test", "s")], dns_servers=bh, dns_timeout="1s", extra=NO_RETRY),
                 'dnsbl = ["bl.test"];')
bconf_off = with_dns(wd.config("blackhole_off", [sender("s", SINK["rcpt432"], source_ip="127.0.0.1")],
                               [seed("bh", "seed1@sink.test", "s")], dns_servers=bh, dns_timeout="1s", extra=NO_RETRY),
                     'dnsbl = ["bl.test"]; probe_checks = false;')
rc, res, err, secs = run_lines(bconf, timeout=60)
r = res.get("bh")
c = checks(r)
rc0, res0, err0, secs0 = run_lines(bconf_off, timeout=60)
r0 = res0.get("bh")
rep.check("blackholed resolver: the probe fails at dns and its line is written within 10 s (exit 1)",
          rc == 1 and r is not None and r["smtp"]["stage"] == "dns" and r.get("final") is True and secs < 10,
          "rc=%d %.1f s out=%s err=%s" % (rc, secs, json.dumps(r)[:300], err[-300:]))
rep.check("blackholed resolver: every check is an error (timeouts), none a pass or fail",
          c and all(x["status"] == "error" for x in c.values()) and "DNS timeout" in c.get("ptr", {}).get("detail", ""),
          json.dumps(c)[:700])
rep.check("blackholed resolver: the diagnosis is the one without checks",
          r is not None and r0 is not None and r["diagnosis"] == r0["diagnosis"] and "dns" not in r0,
          "%s vs %s" % (json.dumps((r or {}).get("diagnosis")), json.dumps((r0 or {}).get("diagnosis"))))

wd.cleanup()
rep.finish()
