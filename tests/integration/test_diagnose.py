#!/usr/bin/env python3
"""The diagnosis of every probe, through the real CLI against the lab's faults: the
"diagnosis" member (cause, next step, rule) of each JSON line, the diagnosis lines under each
probe that was not accepted in the table, the round across providers (one provider refusing,
all of them, none reachable), a Junk placement and a greylisted probe. Then a lab fault plus a
DNS finding of the probe's own sending identity (no PTR, PTR not forward-confirmed, a DNSBL
listing, SPF fail, an unresolvable HELO name), which the probe's DNS checks find and which refine
the diagnosis of its JSON line and of the table; the same probes with dns.probe_checks = false
keep the fault's own diagnosis. And a Junk placement from a listed IP: the readback's end is
refined by the DNS findings of the probe's line."""

import json
import os
import re

import mclab

L = mclab.lab()
rep = mclab.Report("diagnose")
wd = mclab.Workdir("diagnose")
rep.guard(wd.cleanup)
PF = L["postfix"]
SINK = L["sinks"]
CA = L["ca_file"]


# The default identity is clean in the lab's DNS: 127.0.0.1 has the PTR mx.lab.test, which
# resolves back to it, lab.test's SPF authorises it, _dmarc.lab.test exists; so the probes' own
# DNS checks add no finding and each fault keeps its own diagnosis (sections 1 to 4).
def sender(name, port, mode="mx", tls="opportunistic", **kw):
    s = {"name": name, "mode": mode, "port": port, "helo": "mx.lab.test", "mail_from": "canary@lab.test",
         "tls": tls}
    s.update(kw)
    return s


def seed(name, address, via, **kw):
    s = {"name": name, "address": address, "sender": via, "schedule": "hourly"}
    s.update(kw)
    return s


def diag_of(r):
    return (r or {}).get("diagnosis") or {}


def check_diag(what, r, rule, cause=None, next_step=None):
    """r's diagnosis has this rule, and its cause and next step contain these words."""
    d = diag_of(r)
    problems = []
    if d.get("rule") != rule:
        problems.append("rule %r, want %r" % (d.get("rule"), rule))
    if cause and cause not in d.get("cause", ""):
        problems.append("cause %r lacks %r" % (d.get("cause"), cause))
    if next_step and next_step not in d.get("next_step", ""):
        problems.append("next_step %r lacks %r" % (d.get("next_step"), next_step))
    if not d.get("cause") or not d.get("next_step"):
        problems.append("empty cause or next step")
    smtp = (r or {}).get("smtp", {})
    return rep.check(what, r is not None and not problems,
                     "; ".join(problems) + " | smtp %s %s %s %s %r %r" % (
                         smtp.get("outcome"), smtp.get("stage"), smtp.get("code"), smtp.get("enhanced"),
                         smtp.get("text"), smtp.get("error")))


def human_blocks(out):
    """{seed: [its indented lines]} of the table (the first line per seed), and the other lines."""
    blocks, cur, rest = {}, None, []
    for line in out.splitlines()[1:]:
        if line[:1].isspace() and cur is not None:
            blocks[cur].append(line.strip())
        elif line.strip():
            name = line.split()[0]
            if name in blocks or name.endswith(":") or len(line.split()) < 6:
                cur = None
                rest.append(line)
            else:
                cur = name
                blocks[name] = [line]
    return blocks, rest


# ---------------------------------------------------------------------------
# 1. Every fault of the lab in one round: the rule, cause and next step of each JSON line.

senders = [sender("via_" + name, port) for name, port in sorted(SINK.items())]
senders += [
    sender("via_refused", L["refused_port"]),
    sender("pf_mx", PF["mx"], ca_file=CA),
    sender("pf_421", PF["refuse421"]),
    sender("pf_relay", PF["mx"], mode="relay", host="mx.lab.test", tls="none"),
    sender("pf_notls_req", PF["notls"], tls="required", ca_file=CA),
    sender("pf_selfsigned_req", PF["mx"], tls="required"),
    sender("pf_sub_plain", PF["submission"], mode="relay", host="mx.lab.test", tls="none"),
    sender("pf_noauth", PF["mx"], mode="relay", host="mx.lab.test", tls="opportunistic", ca_file=CA,
           username="canary@lab.test", password_file=wd.secret("noauth.secret", "unused")),
]
# seed -> (address, sender, rule, words of the cause, words of the next step)
want = {
    "ok": ("seed1@sink.test", "via_ok", "accepted", "took the message", "nothing to do"),
    "rcpt432": ("seed1@sink.test", "via_rcpt432", "system-not-accepting", "not accepting mail now", "retry later"),
    "pf_defer432": ("defer432@seed-a.test", "pf_mx", "system-not-accepting", "not accepting mail now", "postmaster"),
    "rcpt5xx": ("seed1@sink.test", "via_rcpt5xx", "user-unknown", "does not exist", "seed's address"),
    "pf_unknown": ("nobody@seed-a.test", "pf_mx", "user-unknown", "does not exist", "seed's address"),
    "pf_policy": ("policy@seed-a.test", "pf_mx", "policy", "(5.7.1)", "mailcanary dns"),
    "pf_grey": ("grey@seed-a.test", "pf_mx", "greylisting", "greylisting", "retry"),
    "pf_421": ("seed1@seed-a.test", "pf_421", "rate-limit", "rate limit", "limits.per_domain"),
    "pf_relay": ("seed1@sink.test", "pf_relay", "relay-denied", "refuses to relay", "username"),
    "banner450": ("seed1@sink.test", "via_banner450", "banner-refused", "at the greeting", "blocklists"),
    "nobanner": ("seed1@sink.test", "via_nobanner", "banner-timeout", "no greeting", "timeouts.banner"),
    "ehlohelo4xx": ("seed1@sink.test", "via_ehlohelo4xx", "ehlo-refused", "EHLO and HELO were refused", "PTR"),
    "ehlo4xx": ("seed1@sink.test", "via_ehlo4xx", "accepted-helo-fallback", "fell back to HELO", "PTR"),
    "mail4xx": ("seed1@sink.test", "via_mail4xx", "mail-refused", "MAIL FROM was refused", "SPF"),
    "data4xx": ("seed1@sink.test", "via_data4xx", "data-refused", "DATA command was refused", None),
    "eod4xx": ("seed1@sink.test", "via_eod4xx", "eod-deferred", "deferred after its data", "plain-text"),
    "refused": ("seed1@sink.test", "via_refused", "connect-refused", "refused the TCP connection", "nc -vz"),
    "drop_banner": ("seed1@sink.test", "via_drop_banner", "dropped", "without a reply at the banner stage", "--transcript"),
    "drop_rcpt": ("seed1@sink.test", "via_drop_rcpt", "dropped", "at the rcpt stage", "blocklists"),
    "drop_eod": ("seed1@sink.test", "via_drop_eod", "unknown", "may or may not have been taken", "readback"),
    "hang_rcpt": ("seed1@sink.test", "via_hang_rcpt", "timeout", "no reply at the rcpt stage", "timeouts"),
    "dns_nx": ("seed1@nxdomain.test", "pf_mx", "dns-nxdomain", "does not exist in DNS", "dig MX"),
    "dns_noaddr": ("seed1@noaddr.test", "pf_mx", "dns-no-address", "no address records", "dig A"),
    "notls_required": ("seed1@seed-a.test", "pf_notls_req", "starttls-not-offered", "did not offer STARTTLS",
                       "tls = opportunistic"),
    "selfsigned_required": ("seed1@seed-a.test", "pf_selfsigned_req", "tls-certificate", "does not verify", "ca_file"),
    "submission_plain": ("seed1@seed-a.test", "pf_sub_plain", "starttls-required", "requires TLS", "tls = "),
    "auth_not_offered": ("seed1@seed-a.test", "pf_noauth", "auth-not-offered", "offered no AUTH", "587"),
}
seeds = [seed(name, w[0], w[1]) for name, w in sorted(want.items())]
conf = wd.config("faults", senders, seeds, timeouts={"banner": "2s", "command": "2s", "eod": "2s"})
rc, lines, err = mclab.probe_lines(conf, timeout=120)
res = {}
for x in lines:
    res[x["seed"]] = x
rep.check("faults: exit 1, one line per seed", rc == 1 and set(res) == set(want),
          "rc=%d missing %s err=%s" % (rc, sorted(set(want) - set(res)), err[-500:]))
rep.check("faults: every line has a diagnosis with cause, next_step and rule, as its last member",
          all(list(x)[-1] == "diagnosis" and set(x["diagnosis"]) == {"cause", "next_step", "rule"} for x in lines),
          json.dumps([list(x)[-3:] for x in lines])[:600])
for name, (addr, via, rule, cause, nxt) in sorted(want.items()):
    check_diag("fault %s: %s" % (name, rule), res.get(name), rule, cause, nxt)
rep.check("faults: --json stdout is one probe object per line (no round summary line)",
          all("seed" in x and "smtp" in x for x in lines), "")
bad_dns = {x["seed"]: [c for c in x.get("dns", {}).get("checks", []) if c["status"] == "fail"]
           for x in lines if x["seed"] not in ("refused", "dns_nx", "dns_noaddr")}
rep.check("faults: every line that connected carries its clean identity's DNS checks (dns, no fail)",
          bad_dns and all("dns" in res.get(n, {}) and not f and res[n]["dns"].get("ip") == "127.0.0.1"
                          for n, f in bad_dns.items()),
          json.dumps({n: f for n, f in bad_dns.items() if f or "dns" not in res.get(n, {})})[:800])

# The detail log holds the same diagnosis as stdout.
logp = os.path.join(wd.path, "state-faults", "results.jsonl")
logged = {}
try:
    with open(logp) as f:
        for ln in f:
            o = json.loads(ln)
            logged[o["seed"]] = o
except OSError:
    pass
rep.check("faults: the detail log has the same diagnosis per seed",
          logged and all(diag_of(logged.get(n)) == diag_of(res.get(n)) for n in want),
          "%d logged" % len(logged))

# ---------------------------------------------------------------------------
# 2. The table: the diagnosis under each probe that was not accepted, nothing under accepted ones.

hconf = wd.config("human", senders, [seed(n, want[n][0], want[n][1]) for n in
                                     ("ok", "rcpt432", "rcpt5xx", "ehlo4xx", "refused")],
                  timeouts={"banner": "2s", "command": "2s", "eod": "2s"})
rc, out, err = mclab.run(["-c", hconf, "probe"])
blocks, rest = human_blocks(out)
for name in ("rcpt432", "rcpt5xx", "refused"):
    b = blocks.get(name, [])
    rule = want[name][2]
    dl = [l for l in b if l.startswith("diagnosis: ")]
    nl = [l for l in b if l.startswith("next step: ")]
    rep.check("human: %s has one diagnosis line ending [%s] and one next step line" % (name, rule),
              len(dl) == 1 and dl[0].endswith("[%s]" % rule) and want[name][3] in dl[0] and len(nl) == 1
              and (want[name][4] or "") in nl[0], "\n".join(b))
    at = b.index(dl[0]) if dl else -1
    rep.check("human: %s's diagnosis comes after its via and warning lines" % name,
              at > 0 and not any(l.startswith(("via ", "warning: ")) for l in b[at:]), "\n".join(b))
for name in ("ok", "ehlo4xx"):
    rep.check("human: no diagnosis under accepted %s" % name,
              name in blocks and not any(l.startswith(("diagnosis:", "next step:")) for l in blocks[name]),
              "\n".join(blocks.get(name, [])))
lines_out = out.splitlines()
rep.check("human: the count stays the last line, no round line for one provider (sink.test)",
          lines_out and lines_out[-1] == "5 probes: 2 accepted, 1 deferred, 1 rejected, 1 failed"
          and not any(l.startswith("round diagnosis") for l in lines_out), out[-800:])
rep.check("human: nothing on stderr", err.strip() == "", err[-300:])

# ---------------------------------------------------------------------------
# 3. Across the providers of one round.

rsenders = [sender("pf_mx", PF["mx"], ca_file=CA), sender("via_ok", SINK["ok"]),
            sender("via_rcpt432", SINK["rcpt432"]), sender("via_refused", L["refused_port"])]


def round_conf(name, seeds_):
    return wd.config(name, rsenders, seeds_)


def round_lines(out):
    ls = out.splitlines()
    i = next((k for k, l in enumerate(ls) if l.startswith("round diagnosis: ")), None)
    return (ls[i], ls[i + 1].strip(), ls[i + 2:]) if i is not None and i + 1 < len(ls) else (None, None, [])


one = round_conf("one", [seed("a_defer", "defer432@seed-a.test", "pf_mx"), seed("b_ok", "seed2@seed-b.test", "pf_mx"),
                         seed("sink_ok", "seed1@sink.test", "via_ok")])
rc, out, err = mclab.run(["-c", one, "probe"])
line, nxt, after = round_lines(out)
rep.check("round: one provider refuses, two accept: round.provider, naming it",
          line is not None and line.endswith("[round.provider]")
          and "only seed-a.test (deferred at rcpt) refuses while 2 other providers accept" in line, out[-900:])
rep.check("round: its next step line, then only the count", nxt is not None and nxt.startswith("next step: ")
          and "warm up" in nxt and len(after) == 1 and after[0] == "3 probes: 2 accepted, 1 deferred", out[-600:])
rc, jout, err = mclab.run(["-c", one, "-v", "probe", "--json"])
lines = [json.loads(x) for x in jout.splitlines() if x.strip()]
rep.check("round --json: stdout stays one probe object per line",
          rc == 1 and len(lines) == 3 and all("seed" in x for x in lines), "rc=%d %d lines" % (rc, len(lines)))
rep.check("round --json: the verdict is logged (event=round rule=round.provider)",
          re.search(r"event=round rule=round\.provider cause=\"provider-specific: only seed-a\.test", err) is not None,
          err[-800:])

alld = round_conf("all", [seed("a_defer", "defer432@seed-a.test", "pf_mx"),
                          seed("sink_defer", "seed1@sink.test", "via_rcpt432")])
rc, out, err = mclab.run(["-c", alld, "probe"])
line, nxt, _ = round_lines(out)
rep.check("round: every provider refuses: round.sender, the sending side",
          line is not None and line.endswith("[round.sender]") and "every provider refuses (all 2)" in line
          and nxt and "mailcanary dns" in nxt, out[-900:])

unr = round_conf("unreach", [seed("nx", "seed1@nxdomain.test", "pf_mx"),
                             seed("refused", "seed1@sink.test", "via_refused")])
rc, out, err = mclab.run(["-c", unr, "probe"])
line, nxt, _ = round_lines(out)
rep.check("round: no provider reached (dns, connect): round.unreachable",
          line is not None and line.endswith("[round.unreachable]") and nxt and "TCP 25" in nxt, out[-900:])

# ---------------------------------------------------------------------------
# 4. After acceptance: Junk placement (the table), greylisting retried (the JSON).

USER = "seed1@seed-a.test"
imap = {"url": "imaps://127.0.0.1:%d/" % L["imap"]["imaps_port"], "username": USER,
        "password_file": L["users"][USER]["secret_file"], "ca_file": CA}
jconf = wd.config("junk", [sender("pf_mx", PF["mx"], tls="none")],
                  [seed("junked", USER, "pf_mx", imap=imap, headers=["X-Lab-Junk: yes"]),
                   seed("inboxed", USER, "pf_mx", imap=imap)],
                  extra='readback: { timeout = "20s"; };\n')
rc, out, err = mclab.run(["-c", jconf, "probe"], timeout=120)
ls = out.splitlines()
jr = [i for i, l in enumerate(ls) if l.split()[:2] == ["junked", "readback"]]
ir = [i for i, l in enumerate(ls) if l.split()[:2] == ["inboxed", "readback"]]
rep.check("junk: the readback line of the junked probe is followed by its diagnosis [junk]",
          jr and jr[0] + 2 < len(ls) and ls[jr[0] + 1].strip().startswith("diagnosis: delivered to the junk folder (Junk)")
          and ls[jr[0] + 1].strip().endswith("[junk]") and ls[jr[0] + 2].strip().startswith("next step: "), out[-1200:])
rep.check("junk: no diagnosis under the probe found in INBOX",
          ir and (ir[0] + 1 == len(ls) or not ls[ir[0] + 1].strip().startswith("diagnosis:")), out[-1200:])

gaddr = "grey-diag%s@%s" % (os.urandom(4).hex(), L["postgrey"]["domain"])
gconf = wd.config("grey", [sender("pf_mx", PF["mx"], tls="none")], [seed("grey", gaddr, "pf_mx")],
                  extra='retry: { schedule = ["1s"]; give_up = "1m"; };\n')
rc, lines, err = mclab.probe_lines(gconf, "--no-readback", "--wait", "%ds" % (L["postgrey"]["delay"] + 6), timeout=90)
g = [x for x in lines if x["seed"] == "grey"]
rep.check("greylisting: attempt 1 deferred by postgrey, diagnosed greylisting",
          g and g[0]["smtp"]["outcome"] == "deferred" and diag_of(g[0]).get("rule") == "greylisting", json.dumps(g)[:800])
rep.check("greylisting: the accepted retry is accepted-retried, naming its attempt",
          g and g[-1]["smtp"]["outcome"] == "accepted" and diag_of(g[-1]).get("rule") == "accepted-retried"
          and ("at attempt %d" % len(g)) in diag_of(g[-1]).get("cause", ""), json.dumps(g[-1:])[:800])

# ---------------------------------------------------------------------------
# 5. A lab fault plus a DNS finding of the probe's own sending identity. The lab's DNS: 127.0.0.12
# has no PTR, 127.0.0.11 a PTR that does not resolve back, 127.0.0.2 is listed on bl.test,
# spf-fail.test does not authorise 127/8, probe.lab.test does not resolve. Each sender binds its
# probe to such an address (source_ip); the probe's DNS checks run from the session's real local
# address and refine its diagnosis. With dns.probe_checks = false the same faults keep their own.

dsenders = [
    sender("noptr", SINK["ehlohelo4xx"], source_ip="127.0.0.12"),
    sender("fcrdns", SINK["banner450"], source_ip="127.0.0.11"),
    sender("listed", PF["mx"], source_ip="127.0.0.2", tls="none"),
    sender("listed_sink", SINK["rcpt432"], source_ip="127.0.0.2"),
    sender("spffail", SINK["mail4xx"], source_ip="127.0.0.1", mail_from="canary@spf-fail.test"),
    sender("badhelo", SINK["ehlohelo4xx"], source_ip="127.0.0.1", helo="probe.lab.test"),
]
# seed -> (address, sender, rule without checks, rule with them, next step words, failing check,
#          the sending IP)
dwant = {
    "noptr": ("seed1@sink.test", "noptr", "ehlo-refused", "fix-ptr", "fix PTR", "ptr", "127.0.0.12"),
    "fcrdns": ("seed1@sink.test", "fcrdns", "banner-refused", "fix-ptr", "fix PTR", "fcrdns", "127.0.0.11"),
    "listed_pf": ("policy@seed-a.test", "listed", "policy", "dnsbl-listed", "request delisting from bl.test",
                  "dnsbl:bl.test", "127.0.0.2"),
    "listed_sink": ("seed1@sink.test", "listed_sink", "system-not-accepting", "dnsbl-listed",
                    "request delisting from bl.test", "dnsbl:bl.test", "127.0.0.2"),
    "spffail": ("seed1@sink.test", "spffail", "mail-refused", "fix-spf", "SPF record of the mail_from domain",
                "spf", "127.0.0.1"),
    "badhelo": ("seed1@sink.test", "badhelo", "ehlo-refused", "fix-helo", "fully-qualified host name", "helo",
                "127.0.0.1"),
}


with_dns = mclab.with_dns


def dns_conf(name, checks):
    return with_dns(wd.config(name, dsenders, [seed(n, w[0], w[1]) for n, w in sorted(dwant.items())]),
                    'dnsbl = ["bl.test"]; probe_checks = %s;' % ("true" if checks else "false"))


on_conf = dns_conf("dnsfind", True)
off_conf = dns_conf("dnsfind_off", False)
rc, lines, err = mclab.probe_lines(on_conf)
pres = {x["seed"]: x for x in lines}
rc2, lines2, err2 = mclab.probe_lines(off_conf)
poff = {x["seed"]: x for x in lines2}
rep.check("dns findings: every seed probed, with and without the checks",
          set(pres) == set(dwant) and set(poff) == set(dwant),
          "on %s off %s err=%s %s" % (sorted(pres), sorted(poff), err[-300:], err2[-300:]))
for name, (addr, via, base, rule, nxt, check, ip) in sorted(dwant.items()):
    r, r0 = pres.get(name), poff.get(name)
    s = (r or {}).get("smtp", {})
    dns = (r or {}).get("dns") or {}
    failing = [c["name"] for c in dns.get("checks", []) if c["status"] == "fail"]
    check_diag("dns findings %s: checks off, no dns member, the fault's own diagnosis %s" % (name, base), r0, base)
    rep.check("dns findings %s: checks off: no dns member" % name, r0 is not None and "dns" not in r0,
              json.dumps((r0 or {}).get("dns"))[:300])
    rep.check("dns findings %s: the probe's dns checks are of its local address %s and find %s failing"
              % (name, ip, check),
              dns.get("ip") == ip and dns.get("ip_from") == "local_ip" and s.get("local_ip") == ip
              and check in failing and list(r)[-2:] == ["dns", "diagnosis"],
              "local_ip %r dns %s" % (s.get("local_ip"), json.dumps(dns)[:700]))
    check_diag("dns findings %s: %s fault + failing %s -> %s, next step '%s'" % (
                   name, (s.get("stage"), s.get("code")), check, rule, nxt), r, rule, None, nxt)

# The table: the failing checks on one line, then the refined diagnosis.
rc, out, err = mclab.run(["-c", on_conf, "probe", "noptr", "listed_sink"])
blocks, _ = human_blocks(out)
for name, words, rule in (("noptr", "dns checks of 127.0.0.12: fail ptr, fcrdns", "fix-ptr"),
                          ("listed_sink", "dns checks of 127.0.0.2: fail dnsbl:bl.test", "dnsbl-listed")):
    b = blocks.get(name, [])
    dl = [k for k, l in enumerate(b) if l.startswith("dns checks of ")]
    gl = [k for k, l in enumerate(b) if l.startswith("diagnosis: ")]
    rep.check("human: %s lists its failing DNS checks, then the diagnosis [%s]" % (name, rule),
              len(dl) == 1 and b[dl[0]].startswith(words) and len(gl) == 1 and gl[0] == dl[0] + 1
              and b[gl[0]].endswith("[%s]" % rule), "\n".join(b))
rc, out, err = mclab.run(["-c", off_conf, "probe", "noptr"])
blocks, _ = human_blocks(out)
rep.check("human: no dns line with dns.probe_checks = false",
          "noptr" in blocks and not any(l.startswith("dns checks") for l in blocks["noptr"]), out[-600:])

# After acceptance: the readback's end is refined by the line's findings. A probe sent from the
# listed 127.0.0.2 and filed into Junk -> junk-dnsbl (request delisting), not just junk.
ljconf = with_dns(wd.config("listed_junk", [sender("pf_listed", PF["mx"], tls="none", source_ip="127.0.0.2")],
                            [seed("junked_listed", USER, "pf_listed", imap=imap, headers=["X-Lab-Junk: yes"])],
                            extra='readback: { timeout = "20s"; };\n'), 'dnsbl = ["bl.test"];')
rc, lines, err = mclab.probe_lines(ljconf, timeout=120)
fin = mclab.final_of(lines, "junked_listed")
check_diag("readback: Junk placement + the sending IP listed on bl.test -> junk-dnsbl", fin, "junk-dnsbl",
           "listed on bl.test", "request delisting from bl.test")
rep.check("readback: the final line keeps the dns checks (dnsbl:bl.test fail)",
          fin is not None and any(c["name"] == "dnsbl:bl.test" and c["status"] == "fail"
                                  for c in fin.get("dns", {}).get("checks", [])), json.dumps((fin or {}).get("dns"))[:500])

wd.cleanup()
rep.finish()
