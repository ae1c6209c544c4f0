#!/usr/bin/env python3
"""mailcanary dns against the lab's dnsmasq (DNS_RECORDS in tests/lab/lab.py): every check of
seeds whose senders have a good identity, a listed IP, no PTR, a PTR that does not resolve
back, a HELO name that does not resolve, an address-literal HELO, SPF pass/softfail/fail/
permerror (11 lookups), DMARC present/absent/from the organisational domain, DKIM keys
(RSA 2048, ed25519, RSA 1024, cut, revoked, missing), DNSBL listed/not listed/127.255.255.254/
a zone that never answers, MX hosts without addresses, the MX port (220, 421, refused); domain
arguments; the JSON contract; human output; exit codes; a resolver that never answers (timeout
findings, and the probe still runs)."""

import json
import os
import re
import time

import mclab

L = mclab.lab()
rep = mclab.Report("dns")
wd = mclab.Workdir("dns")
rep.guard(wd.cleanup)
run = mclab.run
NO_ENV = {"MAILCANARY_CONF": ""}
MX = L["postfix"]["mx"]
STATUSES = {"pass", "warn", "fail", "error"}


def sender(name, **kw):
    s = {"name": name, "mode": "mx", "port": MX, "helo": "mx.lab.test", "mail_from": "canary@lab.test",
         "tls": "none"}
    s.update(kw)
    return s


def write_config(name, senders, seeds, servers=None, timeout="2s", dnsbl=None):
    text = "state_dir = %s;\n" % mclab.q(os.path.join(wd.path, "state-" + name))
    text += "dns: %s;\n" % mclab.group({"servers": servers or [L["dns"]["server"]], "timeout": timeout,
                                         "dnsbl": dnsbl or []})
    text += "timeouts: %s;\n" % mclab.group({"connect": "5s", "banner": "10s"})  # mx_port
    text += "senders = (\n  " + ",\n  ".join(mclab.group(s) for s in senders) + "\n);\n"
    text += "seeds = (\n  " + ",\n  ".join(mclab.group(s) for s in seeds) + "\n);\n"
    p = os.path.join(wd.path, name + ".conf")
    with open(p, "w") as f:
        f.write(text)
    return p


secret = wd.secret("relay.secret", "relay-password-not-for-output")
SENDERS = [
    sender("good", dkim_selectors=["mc1", "ed1", "weak", "broken", "revoked", "missing"]),
    sender("listed", source_ip="127.0.0.2", helo="nohost.lab.test", mail_from="canary@spf-soft.test"),
    sender("noptr", source_ip="127.0.0.12", helo="[127.0.0.12]", mail_from="canary@spf-fail.test"),
    sender("mismatch", source_ip="127.0.0.11", mail_from="canary@spf-perm.test"),
    sender("org", mail_from="canary@mail.orgdmarc.test"),
    sender("refused", port=L["refused_port"]),
    sender("relay", mode="relay", host="127.0.0.1", port=L["postfix"]["submission"], username="canary@lab.test",
           password_file=secret, tls="required", ca_file=L["ca_file"]),
]
SEEDS = [
    {"name": "good", "address": "seed1@seed-a.test", "sender": "good"},
    {"name": "listed", "address": "seed1@fallback421.test", "sender": "listed"},
    {"name": "noptr", "address": "x@noaddr.test", "sender": "noptr"},
    {"name": "mismatch", "address": "x@halfaddr.test", "sender": "mismatch"},
    {"name": "org", "address": "x@fallback.test", "sender": "org"},
    {"name": "refused", "address": "seed1@seed-a.test", "sender": "refused"},
    {"name": "relay", "address": "seed1@seed-a.test", "sender": "relay"},
]
main = write_config("main", SENDERS, SEEDS, dnsbl=["bl.test", "pubres.test", "dead.test"])


def dns_json(conf, *args, timeout=120):
    t = time.monotonic()
    rc, out, err = run(["-c", conf, "dns", "--json"] + list(args), env=NO_ENV, timeout=timeout)
    objs, bad = [], []
    for ln in out.splitlines():
        try:
            objs.append(json.loads(ln))
        except ValueError:
            bad.append(ln)
    return rc, objs, bad, err, time.monotonic() - t


def checks_of(obj):
    return {c.get("name"): c for c in obj.get("checks", [])}


def want(label, checks, name, status, *evidence):
    """The check exists with that status and its detail holds every evidence string."""
    c = checks.get(name)
    if c is None:
        return rep.check("%s: %s %s" % (label, name, status), False, "no check %s among %s" % (name, sorted(checks)))
    missing = [e for e in evidence if e not in c.get("detail", "")]
    return rep.check("%s: %s %s%s" % (label, name, status, (" (" + ", ".join(evidence) + ")") if evidence else ""),
                     c.get("status") == status and not missing,
                     "got %s: %s" % (c.get("status"), c.get("detail")))


# ---------------------------------------------------------------------------
# every seed, JSON

rc, objs, bad, err, secs = dns_json(main)
rep.check("dns --json: exit 1 (there are failures)", rc == 1, "rc=%d err=%r" % (rc, err[-500:]))
rep.check("dns --json: every stdout line is one JSON object", not bad and len(objs) == len(SEEDS), str(bad)[:300])
rep.check("dns --json: one object per seed, in the configuration's order",
          [o.get("target") for o in objs] == [s["name"] for s in SEEDS], str([o.get("target") for o in objs]))
contract = all(isinstance(o.get("checks"), list) and o["checks"] and
               all(set(c) >= {"name", "status", "detail"} and c["status"] in STATUSES and isinstance(c["detail"], str)
                   and c["detail"] for c in o["checks"]) for o in objs)
rep.check("dns --json: each check has name, status (pass|warn|fail|error) and a detail", contract,
          json.dumps(objs)[:500])
rep.check("dns --json: took less than 30 s (one dead zone of 2 s)", secs < 30, "%.1f s" % secs)
rep.check("dns --json: nothing on stderr", err.strip() == "", err[-300:])
rep.check("dns --json: the relay password is not in the output", "relay-password-not-for-output" not in json.dumps(objs))
by = {o.get("target"): o for o in objs}

c = checks_of(by.get("good", {}))
rep.check("good: the contract's check names, in order",
          [x["name"] for x in by.get("good", {}).get("checks", [])] ==
          ["mx", "mx_time", "mx_port", "ptr", "fcrdns", "helo", "spf", "spf_align", "dmarc", "dkim:mc1", "dkim:ed1",
           "dkim:weak", "dkim:broken", "dkim:revoked", "dkim:missing", "dnsbl:bl.test", "dnsbl:pubres.test",
           "dnsbl:dead.test"], str([x["name"] for x in by.get("good", {}).get("checks", [])]))
rep.check("good: ip 127.0.0.1 (the route toward the first MX)", by.get("good", {}).get("ip") == "127.0.0.1",
          str(by.get("good", {}).get("ip")))
want("good", c, "mx", "pass", "mx.lab.test (10) → 127.0.0.1")
want("good", c, "mx_time", "pass", " ms")
want("good", c, "mx_port", "pass", "mx.lab.test [127.0.0.1]:%d: 220 " % MX)
want("good", c, "ptr", "pass", "127.0.0.1 → mx.lab.test", "route toward mx.lab.test [127.0.0.1]")
want("good", c, "fcrdns", "pass", "mx.lab.test → 127.0.0.1")
want("good", c, "helo", "pass", "mx.lab.test → 127.0.0.1")
want("good", c, "spf", "pass", "ip4:127.0.0.1 in lab.test", '"v=spf1 ip4:127.0.0.1 ip4:127.0.0.2 -all"')
want("good", c, "spf_align", "pass", "aligned (relaxed) with the From domain lab.test")
want("good", c, "dmarc", "pass", '_dmarc.lab.test: "v=DMARC1; p=reject;', "p=reject applies", "adkim=s",
     "rua=mailto:dmarc@lab.test")
want("good", c, "dkim:mc1", "pass", "mc1._domainkey.lab.test: rsa key, 2048 bits")
want("good", c, "dkim:ed1", "pass", "ed25519 key, 256 bits")
want("good", c, "dkim:weak", "warn", "1024 bits", "RFC 8301")
want("good", c, "dkim:broken", "fail", "broken key record", "does not hold a public key")
want("good", c, "dkim:revoked", "fail", "revoked (empty p=)")
want("good", c, "dkim:missing", "fail", "no key at missing._domainkey.lab.test (NXDOMAIN)")
want("good", c, "dnsbl:bl.test", "pass", "127.0.0.1 is not listed (1.0.0.127.bl.test: NXDOMAIN)")
want("good", c, "dnsbl:pubres.test", "error", "1.0.0.127.pubres.test → 127.255.255.254", "not a listing",
     "public resolvers", '"Queries through public resolvers are refused"')
want("good", c, "dnsbl:dead.test", "error", "1.0.0.127.dead.test: DNS timeout after 2000 ms")

c = checks_of(by.get("listed", {}))
want("listed", c, "mx", "pass", "mx1.fallback421.test (10) → 127.0.0.3; mx2.fallback421.test (20) → 127.0.0.1")
want("listed", c, "mx_port", "warn", "[127.0.0.3]:%d: 421 4.7.0" % MX, "[127.0.0.1]:%d: 220 " % MX)
want("listed", c, "ptr", "pass", "127.0.0.2 → mx1.fallback.test", "(sending IP: source_ip)")
want("listed", c, "fcrdns", "pass", "mx1.fallback.test → 127.0.0.2")
want("listed", c, "helo", "fail", "EHLO name nohost.lab.test does not resolve (NXDOMAIN)")
want("listed", c, "spf", "warn", "softfail for 127.0.0.2 from canary@spf-soft.test", "~all in spf-soft.test")
want("listed", c, "spf_align", "fail", "SPF softfail")
want("listed", c, "dmarc", "fail", "no DMARC record at _dmarc.spf-soft.test")
want("listed", c, "dnsbl:bl.test", "fail", "127.0.0.2 is listed: 2.0.0.127.bl.test → 127.0.0.2",
     '"Listed by the lab: test entry"')
rep.check("listed: no dkim checks without selectors", not any(k.startswith("dkim:") for k in c), str(sorted(c)))

c = checks_of(by.get("noptr", {}))
want("noptr", c, "mx", "fail", "no MX host has an address", "mx.noaddr.test (10) → no address (NXDOMAIN)")
want("noptr", c, "mx_port", "fail", "no MX address to connect to")
want("noptr", c, "ptr", "fail", "127.0.0.12 has no PTR record (NXDOMAIN for 12.0.0.127.in-addr.arpa)")
want("noptr", c, "fcrdns", "fail", "no PTR name to confirm")
want("noptr", c, "helo", "warn", "EHLO [127.0.0.12] is an address literal (it matches the sending IP)")
want("noptr", c, "spf", "fail", "fail for 127.0.0.12 from canary@spf-fail.test", "-all in spf-fail.test")
want("noptr", c, "dnsbl:bl.test", "pass", "127.0.0.12 is not listed")

c = checks_of(by.get("mismatch", {}))
want("mismatch", c, "mx", "warn", "1 of 2 MX hosts without an address", "mx.lab.test (20) → 127.0.0.1")
want("mismatch", c, "mx_port", "pass", "mx.lab.test [127.0.0.1]")
want("mismatch", c, "ptr", "pass", "127.0.0.11 → ghost.lab.test")
want("mismatch", c, "fcrdns", "fail", "ghost.lab.test → 127.0.0.99, not 127.0.0.11")
want("mismatch", c, "helo", "warn", "mx.lab.test → 127.0.0.1, not the sending IP 127.0.0.11")
want("mismatch", c, "spf", "fail", "permerror for 127.0.0.11", "too many DNS lookups (more than 10)")

c = checks_of(by.get("org", {}))
want("org", c, "mx_port", "warn", "[127.0.0.2]:%d: Connection refused" % MX, "[127.0.0.1]:%d: 220 " % MX)
want("org", c, "spf", "pass", "ip4:127.0.0.0/24 in mail.orgdmarc.test")
want("org", c, "spf_align", "pass")
want("org", c, "dmarc", "pass", "_dmarc.orgdmarc.test", "organisational domain of mail.orgdmarc.test",
     "no record at _dmarc.mail.orgdmarc.test", "sp=quarantine applies")

c = checks_of(by.get("refused", {}))
want("refused", c, "mx_port", "fail", "mx.lab.test [127.0.0.1]:%d: Connection refused" % L["refused_port"])

c = checks_of(by.get("relay", {}))
rep.check("relay: no mx_port check (the probe goes to the relay host)", "mx_port" not in c, str(sorted(c)))
want("relay", c, "ptr", "pass", "127.0.0.1 → mx.lab.test", "(sending IP: relay host 127.0.0.1)")

# ---------------------------------------------------------------------------
# human output, selection and order, domains

rc, out, err = run(["-c", main, "dns", "org", "good"], env=NO_ENV, timeout=120)
lines = out.splitlines()
rep.check("human: exit 1", rc == 1, "rc=%d err=%r" % (rc, err[-300:]))
rep.check("human: header TARGET CHECK STATUS DETAIL", bool(lines) and lines[0].split() == ["TARGET", "CHECK", "STATUS",
                                                                                           "DETAIL"], out[:200])
rows = [ln.split(None, 3) for ln in lines[1:-1]]
rep.check("human: one line per check: TARGET CHECK STATUS DETAIL",
          rows and all(len(r) == 4 and r[2] in STATUSES for r in rows), out[:600])
rep.check("human: the named seeds only, in the order given",
          [r[0] for r in rows] == ["org"] * sum(1 for r in rows if r[0] == "org") +
          ["good"] * sum(1 for r in rows if r[0] == "good") and {r[0] for r in rows} == {"org", "good"},
          str([r[0] for r in rows][:40]))
row = {(r[0], r[1]): r for r in rows}
rep.check("human: good ptr line shows the evidence",
          row.get(("good", "ptr"), [None] * 4)[2:] ==
          ["pass", "127.0.0.1 → mx.lab.test (sending IP: route toward mx.lab.test [127.0.0.1])"],
          str(row.get(("good", "ptr"))))
n = {s: sum(1 for r in rows if r[2] == s) for s in STATUSES}
summary = "2 targets, %d checks: %d pass, %d warn, %d fail, %d error" % (len(rows), n["pass"], n["warn"], n["fail"],
                                                                        n["error"])
rep.check("human: summary line counts every status", bool(lines) and lines[-1] == summary,
          "%r, want %r" % (lines[-1] if lines else "", summary))

rc, objs, bad, err, secs = dns_json(main, "nomx.test", "nxdomain.test", "lab.test")
by = {o.get("target"): o for o in objs}
rep.check("domains: one object each, in order", [o.get("target") for o in objs] == ["nomx.test", "nxdomain.test",
                                                                                     "lab.test"], str(objs)[:300])
want("nomx.test", checks_of(by.get("nomx.test", {})), "mx", "warn",
     "nomx.test has no MX records; implicit MX nomx.test → 127.0.0.1")
want("nxdomain.test", checks_of(by.get("nxdomain.test", {})), "mx", "fail", "nxdomain.test does not exist (NXDOMAIN)")
want("nxdomain.test", checks_of(by.get("nxdomain.test", {})), "mx_time", "pass")
want("lab.test", checks_of(by.get("lab.test", {})), "dmarc", "pass", "_dmarc.lab.test")
want("lab.test", checks_of(by.get("lab.test", {})), "dkim:mc1", "pass")
rep.check("domains: the identity is the first sender's (or the one at that domain)",
          by.get("nomx.test", {}).get("domain") == "nomx.test" and
          "dkim:mc1" in checks_of(by.get("nomx.test", {})), str(by.get("nomx.test"))[:300])

# ---------------------------------------------------------------------------
# exit 0 when nothing fails; usage and configuration errors

clean = write_config("clean", [sender("good", dkim_selectors=["mc1", "ed1"])],
                     [{"name": "good", "address": "seed1@seed-a.test", "sender": "good"}], dnsbl=["bl.test"])
rc, objs, bad, err, secs = dns_json(clean)
statuses = [c["status"] for o in objs for c in o.get("checks", [])]
rep.check("clean config: exit 0, every check passes", rc == 0 and statuses and set(statuses) == {"pass"},
          "rc=%d %s" % (rc, json.dumps(objs)[:600]))
rc, out, err = run(["-c", clean, "dns"], env=NO_ENV)
rep.check("clean config, human: exit 0, summary without failures",
          rc == 0 and out.splitlines()[-1].endswith("0 warn, 0 fail, 0 error"), out[-200:])

rc, out, err = run(["-c", clean, "dns", "--bogus"], env=NO_ENV)
rep.check("dns --bogus: exit 2 with usage", rc == 2 and "usage" in err, "rc=%d err=%r" % (rc, err))
rc, out, err = run(["-c", clean, "dns", "no_such_seed"], env=NO_ENV)
rep.check("dns with a name that is neither seed nor domain: exit 2, named", rc == 2 and "no_such_seed" in err
          and out == "", "rc=%d err=%r out=%r" % (rc, err, out[:200]))
rc, out, err = run(["-c", clean, "dns", "--help"], env=NO_ENV)
rep.check("dns --help: exit 0", rc == 0 and "dns [SEED|DOMAIN...]" in out, out)
rc, out, err = run(["--help"], env=NO_ENV)
rep.check("mailcanary --help lists dns", rc == 0 and "dns [SEED|DOMAIN...] [--json]" in out, out[-800:])

badsel = write_config("badsel", [sender("good", dkim_selectors=["mc1", "not a selector!"])],
                      [{"name": "good", "address": "seed1@seed-a.test", "sender": "good"}])
for cmd in (["check-config"], ["dns"]):
    rc, out, err = run(["-c", badsel] + cmd, env=NO_ENV)
    rep.check("%s with a bad dkim selector: exit 2, FILE:LINE: senders.[0].dkim_selectors" % cmd[0],
              rc == 2 and re.search(r"badsel\.conf:\d+: senders\.\[0\]\.dkim_selectors(\.\[1\])?: \"not a selector!\"",
                                    err) is not None, "rc=%d err=%r" % (rc, err))

# ---------------------------------------------------------------------------
# a resolver that never answers: timeout findings, bounded time; the probe still runs

dead = write_config("dead", [sender("good", dkim_selectors=["mc1"], source_ip="127.0.0.1")],
                    [{"name": "good", "address": "seed1@seed-a.test", "sender": "good"}],
                    servers=[L["dns"]["blackhole"]], timeout="1s", dnsbl=["bl.test"])
rc, objs, bad, err, secs = dns_json(dead)
c = checks_of(objs[0]) if objs else {}
rep.check("dead resolver: exit 1 within 15 s", rc == 1 and secs < 15, "rc=%d %.1f s err=%r" % (rc, secs, err[-300:]))
want("dead resolver", c, "mx", "fail", "MX lookup for seed-a.test: DNS timeout after 1000 ms")
want("dead resolver", c, "mx_time", "fail", "no answer within 1000 ms")
want("dead resolver", c, "mx_port", "fail", "no MX address")
want("dead resolver", c, "ptr", "error", "DNS timeout")
want("dead resolver", c, "helo", "error", "lookup of the EHLO name mx.lab.test: DNS timeout")
want("dead resolver", c, "spf", "error", "temperror")
want("dead resolver", c, "dmarc", "error", "DMARC lookup _dmarc.lab.test: DNS timeout")
want("dead resolver", c, "dkim:mc1", "error", "DNS timeout")
want("dead resolver", c, "dnsbl:bl.test", "error", "1.0.0.127.bl.test: DNS timeout")

t = time.monotonic()
rc, res, out, err = mclab.probe_json(dead, "good", extra_args=["--no-readback"], timeout=120)
r = res.get("good")
rep.check("dead resolver: probe still runs and ends (exit 1, within 15 s)", rc == 1 and r is not None and
          time.monotonic() - t < 15, "rc=%d out=%r err=%r" % (rc, out[:300], err[-300:]))
rep.smtp("dead resolver: the probe fails at stage dns with the timeout", r, "failed", "dns", error="timeout")

wd.cleanup()
rep.finish()
