#!/usr/bin/env python3
"""mailcanary test lab: real mail servers on loopback, in one directory.

    python3 tests/lab/lab.py start DIR     start every server, write DIR/lab.json
    python3 tests/lab/lab.py stop DIR [--clean]
    python3 tests/lab/lab.py env DIR       lab.json as shell KEY=value lines
    python3 tests/lab/lab.py status DIR    which recorded pids are alive

    import lab; info = lab.load(DIR)       the parsed lab.json

Servers (each one small class below: configure, spawn, ready check, stop):
  smtp-sink instances with one fault each, a private Postfix (mx, the same smtpd
  answering 421 at connect on 127.0.0.3, refuse421, submission with Dovecot SASL,
  notls), a private Dovecot (IMAP, IMAPS, LMTP, auth, Sieve), dnsmasq, a UDP port that
  never answers DNS queries, postgrey (real greylisting for grey.test, as a Postfix policy
  service).
Python 3 standard library only. Needs root (Postfix's master runs as root).
Nothing outside DIR is written except a small port registry and lock file in the
temp directory, so that labs started at the same time never share a port.
"""

import fcntl
import json
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

# ---------------------------------------------------------------------------
# Lab data (extend these tables; the code below reads them)

LAB_DOMAINS = ["seed-a.test", "seed-b.test", "fallback.test", "fallback421.test", "lab.test",
               "grey.test"]

# Dovecot users (passwd-file); all of them are also Postfix virtual mailboxes.
USERS = ["seed1@seed-a.test", "seed2@seed-b.test", "seed1@fallback.test",
         "seed1@fallback421.test", "canary@lab.test", "seed1@grey.test", "bounces@lab.test"]
SUBMISSION_USER = "canary@lab.test"

# Bounces (DSNs) made by the lab's own Postfix: mail submitted for these domains is relayed
# to a smtp-sink that refuses the recipient, softly (451 4.3.2: deferred, then a "delayed"
# notice after BOUNCE_DELAY_WARNING) or hard (550 5.1.1: a "failed" notice at once). The
# notices go to the envelope sender; use BOUNCE_MAILBOX as mail_from to read them back.
BOUNCE_SOFT_DOMAIN = "bounce-soft.test"
BOUNCE_HARD_DOMAIN = "bounce-hard.test"
BOUNCE_MAILBOX = "bounces@lab.test"
BOUNCE_DELAY_WARNING = 2

# Real greylisting: mail to any local part at GREY_DOMAIN passes postgrey (a Postfix
# policy service on the mx, notls smtpds) and lands in the one mailbox GREY_MAILBOX.
# postgrey keys on (client /24, normalised sender, recipient) and remembers a passed
# triplet for 35 days: use a fresh recipient local part with letters (digits-only parts
# are normalised to "#" in senders, not in recipients) for each greylisting test.
# In the reply text postgrey replaces %s by the seconds still to wait
# (GREY_DELAY - (now - first seen), whole seconds).
GREY_DOMAIN = "grey.test"
GREY_MAILBOX = "seed1@grey.test"
GREY_DELAY = 3
GREY_TEXT = "Greylisted, try again in %s seconds"

# Postfix check_recipient_access on the mx service (Postfix prefixes the text with
# "<rcpt>: Recipient address rejected: ").
RECIPIENT_ACCESS = {
    "defer432@seed-a.test": "451 4.3.2 System not accepting network messages",
    "grey@seed-a.test": "450 4.2.0 Greylisted, try again later",
    "policy@seed-a.test": "554 5.7.1 Policy rejection",
    # accepted and put on hold: delivered (to seed1@seed-a.test) only when a test releases it
    # with postsuper -H QUEUE_ID (late arrivals)
    "hold@seed-a.test": "HOLD late arrival test",
}
HOLD_ADDRESS, HOLD_MAILBOX = "hold@seed-a.test", "seed1@seed-a.test"
CONNECT_421 = "421 4.7.0 Too many connections, try again later"

MX_IP, DEAD_IP, MX421_IP = "127.0.0.1", "127.0.0.2", "127.0.0.3"

# smtp-sink instances: name -> (extra smtp-sink options, expected greeting prefix for
# the ready check: "220"/"450" = that reply, "" = closed without greeting, None = no
# greeting expected within the check; just connect).
SINK_SOFT_432 = "451 4.3.2 System not accepting network messages"
SINK_HARD_511 = "550 5.1.1 No such user here"
SINKS = {
    "ok":          (["-m", "2000"], "220"),
    "banner450":   (["-r", "CONNECT"], "450"),
    "nobanner":    (["-W", "CONNECT:60"], None),
    "ehlo4xx":     (["-r", "EHLO"], "220"),
    "ehlohelo4xx": (["-r", "EHLO,HELO"], "220"),
    "mail4xx":     (["-r", "MAIL"], "220"),
    "rcpt432":     (["-r", "RCPT", "-b", SINK_SOFT_432], "220"),
    "rcpt5xx":     (["-f", "RCPT", "-B", SINK_HARD_511], "220"),
    "data4xx":     (["-r", "DATA"], "220"),
    "eod4xx":      (["-r", "."], "220"),
    "drop_banner": (["-q", "CONNECT"], ""),
    "drop_ehlo":   (["-q", "EHLO"], "220"),
    "drop_mail":   (["-q", "MAIL"], "220"),
    "drop_rcpt":   (["-q", "RCPT"], "220"),
    "drop_data":   (["-q", "DATA"], "220"),
    "drop_eod":    (["-q", "."], "220"),
    "slow_banner": (["-W", "CONNECT:1"], "220"),
    "slow_rcpt":   (["-W", "RCPT:1"], "220"),
    "slow_data":   (["-w", "1"], "220"),
    "slow_eod":    (["-W", ".:1"], "220"),
    "hang_rcpt":   (["-W", "RCPT:60"], "220"),   # for stage timeouts: no RCPT reply within the test's limits
    "hang_eod":    (["-W", ".:60"], "220"),      # no end-of-data reply: curl waits for it blocking
}

# Public DKIM keys (their private halves were thrown away): base64 DER SubjectPublicKeyInfo
# for RSA, the raw 32 bytes for ed25519 (RFC 8463).
DKIM_RSA2048 = ("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAlnLLh20M8GgivVwxGtWFNBfXDwkUoWgeAoyiDPWpPsEL"
                "X+AXWAmDePOmxX7ojcog5i/Q7L9Pt5l2w29MgOcL9bPqT5G+WnlQkW5P65Al/8b4H8a26BKHEyL3+hOphXLU4G24"
                "Y+nbupwZdmoSCPHyiYa+IJQM+IH/mTSzw759bu0Gxeoy8s6+vsLgAjR8UF+qRgtT5LEjmqX7FcBBF72+Umg4V2+C"
                "cEfkbbOySdrV3y6VKfFNmwih9Xc+kFNXzxQa+ByniGig9xAkOSePDsI4aXNgfLrkd97YL0kfg6ZihloLQ9IA0Yr5"
                "XYEvAwJvDX0vWmYszv1GKgAibx+IGo9wVwIDAQAB")
DKIM_RSA1024 = ("MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDI/+A7aeLtWmYAhSOhjcet4s4bYnV2XWijUT9PyPbCj23qngdv"
                "2hbZ+zQeOu7z7pTWsTl4e6OET5uXQagyTO1Ek9kD7hgOf3npjfAXz5PYVw0H2ceXa8s00CXSCHAx3fAn43Pq/Ksm"
                "N8glSIztEd6Q7WwW/Y2p2G3yFqAuGkkOOwIDAQAB")
DKIM_ED25519 = "kz/wZ83uxqnf4ayCaH/K+5ICNvYHHX8WX8vTSFH2Arw="

# DNS data served by dnsmasq (zone "test" is local: anything not listed is NXDOMAIN).
# ("host", name, ip)          A record plus the PTR for ip (the first host for an ip owns its PTR)
# ("a", name, ip)             A record (also a PTR if no earlier entry claimed that ip)
# ("mx", domain, target, pref)
# ("txt", name, text)         SPF / DMARC / DKIM key / DNSBL text records
# ("ptr", name, target)       an explicit PTR, e.g. ("ptr", "2.0.0.127.in-addr.arpa", "x.test")
# ("cname", name, target)
# ("addr", name, ip)          A record for name and every name below it, no PTR (DNSBL answers)
# ("dead", zone)              queries for zone are forwarded to a UDP port that never answers
#                             (DnsBlackhole): the client sees a DNS timeout
# Loopback PTRs not listed are NXDOMAIN (local=/127.in-addr.arpa/).
DNS_RECORDS = [
    ("host", "mx.lab.test", MX_IP),                 # PTR 127.0.0.1 -> mx.lab.test
    ("mx", "sink.test", "mx.sink.test", 10),
    ("a", "mx.sink.test", MX_IP),
    ("mx", "seed-a.test", "mx.lab.test", 10),
    ("mx", "seed-b.test", "mx.lab.test", 10),
    ("mx", "lab.test", "mx.lab.test", 10),
    ("mx", GREY_DOMAIN, "mx.lab.test", 10),         # through postgrey
    ("mx", "fallback.test", "mx1.fallback.test", 10),
    ("mx", "fallback.test", "mx2.fallback.test", 20),
    ("a", "mx1.fallback.test", DEAD_IP),
    ("a", "mx2.fallback.test", MX_IP),
    ("mx", "fallback421.test", "mx1.fallback421.test", 10),
    ("mx", "fallback421.test", "mx2.fallback421.test", 20),
    ("a", "mx1.fallback421.test", MX421_IP),
    ("a", "mx2.fallback421.test", MX_IP),
    ("a", "nomx.test", MX_IP),                      # no MX: implicit MX
    ("mx", "noaddr.test", "mx.noaddr.test", 10),    # target without A/AAAA
    # nxdomain.test: deliberately absent
] + [
    # DNS trust checks (mailcanary dns; tests/integration/test_dns.py). Sending identities are
    # loopback addresses given as source_ip: 127.0.0.1 (PTR mx.lab.test, which resolves back),
    # 127.0.0.2 (PTR mx1.fallback.test, back to it; listed on bl.test), 127.0.0.11 (PTR
    # ghost.lab.test, which resolves to 127.0.0.99: not forward-confirmed), 127.0.0.12 (no PTR).
    ("ptr", "11.0.0.127.in-addr.arpa", "ghost.lab.test"),
    ("addr", "ghost.lab.test", "127.0.0.99"),
    ("mx", "halfaddr.test", "mx.noaddr.test", 10),  # one MX without an address, one with
    ("mx", "halfaddr.test", "mx.lab.test", 20),
    # SPF (envelope domains of the senders)
    ("txt", "lab.test", "v=spf1 ip4:127.0.0.1 ip4:127.0.0.2 -all"),
    ("txt", "spf-fail.test", "v=spf1 ip4:192.0.2.0/24 -all"),
    ("txt", "spf-soft.test", "v=spf1 ip4:192.0.2.0/24 ~all"),
    ("txt", "spf-perm.test", "v=spf1" + " a:h.spf-perm.test" * 11 + " -all"),  # 11 lookups
    ("addr", "h.spf-perm.test", "192.0.2.7"),
    ("txt", "mail.orgdmarc.test", "v=spf1 ip4:127.0.0.0/24 -all"),
    # DMARC: lab.test has its own record; mail.orgdmarc.test only through its organisational
    # domain orgdmarc.test (the public suffix list's default rule); spf-*.test have none
    ("txt", "_dmarc.lab.test", "v=DMARC1; p=reject; adkim=s; aspf=r; pct=100; rua=mailto:dmarc@lab.test"),
    ("txt", "_dmarc.orgdmarc.test", "v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@orgdmarc.test"),
    # DKIM keys of lab.test: mc1 (RSA 2048), ed1 (ed25519), weak (RSA 1024), broken (a cut key),
    # revoked (empty p=); no key for other selectors
    ("txt", "mc1._domainkey.lab.test", "v=DKIM1; k=rsa; p=" + DKIM_RSA2048),
    ("txt", "ed1._domainkey.lab.test", "v=DKIM1; k=ed25519; p=" + DKIM_ED25519),
    ("txt", "weak._domainkey.lab.test", "v=DKIM1; k=rsa; p=" + DKIM_RSA1024),
    ("txt", "broken._domainkey.lab.test", "v=DKIM1; k=rsa; p=" + DKIM_RSA2048[:120]),
    ("txt", "revoked._domainkey.lab.test", "v=DKIM1; k=rsa; p="),
    # DNSBL zones: bl.test lists 127.0.0.2 (the RFC 5782 test entry) with a reason; pubres.test
    # answers everything with 127.255.255.254 (Spamhaus: "query through a public resolver"), an
    # error, not a listing; dead.test never answers
    ("addr", "2.0.0.127.bl.test", "127.0.0.2"),
    ("txt", "2.0.0.127.bl.test", "Listed by the lab: test entry"),
    ("addr", "pubres.test", "127.255.255.254"),
    ("txt", "1.0.0.127.pubres.test", "Queries through public resolvers are refused"),
    ("dead", "dead.test"),
]

CERT_NAMES = ["mx.lab.test", "*.lab.test", "*.seed-a.test", "*.seed-b.test", "*.fallback.test",
              "*.fallback421.test", "*.sink.test", "*.grey.test", "localhost"]
CERT_IPS = ["127.0.0.1"]

START_TIMEOUT = 40.0        # whole start must stay well under 60 s
READY_TIMEOUT = 20.0        # per server
STOP_GRACE = 5.0            # SIGTERM -> SIGKILL
MAIL_UID_USER = "nobody"    # owner of the Maildirs (Dovecot refuses uid 0)

PORT_REGISTRY = os.path.join(tempfile.gettempdir(), "mailcanary-lab-ports.json")
PORT_LOCK = os.path.join(tempfile.gettempdir(), "mailcanary-lab.lock")
MARKER = ".mailcanary-lab"


class LabError(Exception):
    pass


def log(msg):
    print("lab: " + msg, file=sys.stderr, flush=True)


def debug(msg):
    if os.environ.get("MAILCANARY_LAB_DEBUG"):
        log(msg)


# ---------------------------------------------------------------------------
# Small helpers

def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def tail(path, lines=30):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 8192))
            data = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(data[-lines:])
    except OSError as e:
        return "(no log: %s)" % e


def run(argv, timeout=30, check=True):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise LabError("%s exited %d:\n%s" % (" ".join(argv), p.returncode, out))
    return out


def proc_state(pid):
    """'Z', 'R', ... or None if the pid does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def proc_starttime(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid):
    if not pid or pid <= 0:
        return False
    try:  # reap it if it is our own child
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    except OSError:
        pass
    st = proc_state(pid)
    return st is not None and st not in ("Z", "X")


def terminate(pids, grace=STOP_GRACE):
    """SIGTERM every pid, wait, SIGKILL what is left. Zombies count as stopped."""
    pids = [p for p in pids if alive(p)]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    for p in pids:
        if alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)


def _raise_nofile():
    # the "ok" sink takes up to 2000 sessions (-m 2000): needs more than 1024 fds
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def spawn(argv, logfile, env=None):
    """Start a server detached from our session, stdio to its log file."""
    os.makedirs(os.path.dirname(logfile), exist_ok=True)
    with open(logfile, "ab") as lf:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf,
                             close_fds=True, start_new_session=True, env=env,
                             preexec_fn=_raise_nofile)
    return p.pid


def read_smtp_line(sock, timeout):
    """First line of the greeting; b'' on EOF; None on timeout."""
    sock.settimeout(timeout)
    buf = b""
    try:
        while b"\n" not in buf:
            chunk = sock.recv(1024)
            if not chunk:
                return buf
            buf += chunk
    except socket.timeout:
        return None
    return buf.split(b"\n", 1)[0]


def greeting_ok(host, port, expect, timeout=2.0):
    """Ready check: connect and compare the first greeting line with expect."""
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return False
    try:
        if expect is None:
            return True
        line = read_smtp_line(s, timeout)
        if line is None:
            return False
        if expect == "":
            return line == b""
        return line.startswith(expect.encode())
    except OSError:
        return expect == ""
    finally:
        s.close()


def dns_query(server, port, name, qtype=1, timeout=1.0):
    """Minimal DNS client: returns (rcode, answer count) or None."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, (server, port))
        data, _ = s.recvfrom(4096)
    except OSError:
        return None
    finally:
        s.close()
    rid, flags, _, ancount = struct.unpack(">HHHH", data[:8])
    if rid != qid:
        return None
    return flags & 0xF, ancount


# ---------------------------------------------------------------------------
# Ports

def _port_free(port, ips, udp=False):
    for ip in ips:
        for kind in ((socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,)):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind((ip, port))
            except OSError:
                return False
            finally:
                s.close()
    return True


def _port_range():
    lo, hi = 32768, 60999
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        pass
    if lo > 12000:
        return 10000, lo - 1        # below the ephemeral range: outgoing connections never take them
    return hi + 1, 65535


class PortPicker:
    def __init__(self, reserved):
        self.lo, self.hi = _port_range()
        self.used = set(reserved)

    def pick(self, ips=("127.0.0.1",), udp=False, listen_free=True):
        for _ in range(2000):
            p = random.randint(self.lo, self.hi)
            if p in self.used:
                continue
            if listen_free and not _port_free(p, ips, udp):
                continue
            self.used.add(p)
            return p
        raise LabError("no free port found in %d-%d" % (self.lo, self.hi))


def _registry_load():
    try:
        with open(PORT_REGISTRY) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _registry_save(reg):
    tmp = PORT_REGISTRY + ".%d" % os.getpid()
    with open(tmp, "w") as f:
        json.dump(reg, f)
    os.replace(tmp, PORT_REGISTRY)


def _registry_live(reg):
    """Drop entries of labs that are no longer running."""
    out = {}
    for d, ent in reg.items():
        if any(alive(p) for p in ent.get("pids", [])):
            out[d] = ent
    return out


class Lock:
    """Inter-process lock around port picking and the registry. Re-entrant within one
    process (start() calls stop() on failure while holding it; a second flock on a new
    open file would wait for ourselves forever)."""
    _depth = 0
    _file = None

    def __enter__(self):
        if Lock._depth == 0:
            Lock._file = open(PORT_LOCK, "a")
            fcntl.flock(Lock._file, fcntl.LOCK_EX)
        Lock._depth += 1
        return self

    def __exit__(self, *a):
        Lock._depth -= 1
        if Lock._depth == 0:
            fcntl.flock(Lock._file, fcntl.LOCK_UN)
            Lock._file.close()
            Lock._file = None


# ---------------------------------------------------------------------------
# The lab context shared by the servers

class Lab:
    def __init__(self, d):
        self.dir = os.path.abspath(d)
        self.info = {"dir": self.dir, "pids": {}}
        self.ports = None

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def logfile(self, name):
        return self.path("log", name + ".log")


class Server:
    """One server: configure() writes files, start() spawns and records pids in
    lab.info["pids"], ready() is one non-blocking readiness probe, stop() ends it."""
    name = "server"
    log_name = None

    def configure(self, lab):
        pass

    def start(self, lab):
        raise NotImplementedError

    def ready(self, lab):
        return True

    def stop(self, lab, pids):
        terminate(pids)

    def logs(self, lab):
        return [lab.logfile(self.log_name or self.name)]


class TLS(Server):
    """Self-signed certificate: not a process, but started first."""
    name = "tls"

    def configure(self, lab):
        cert, key = lab.path("tls", "lab.pem"), lab.path("tls", "lab.key")
        os.makedirs(lab.path("tls"), exist_ok=True)
        san = ",".join(["DNS:" + n for n in CERT_NAMES] + ["IP:" + i for i in CERT_IPS])
        # EC P-256: an RSA-2048 key takes 0.1-1.5 s to generate, this one 10 ms
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "3650",
             "-sha256", "-subj", "/O=mailcanary lab/CN=mx.lab.test",
             "-addext", "subjectAltName=" + san,
             "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
             "-addext", "extendedKeyUsage=serverAuth",
             "-keyout", key, "-out", cert])
        os.chmod(cert, 0o644)
        os.chmod(key, 0o600)
        lab.info["ca_file"] = cert
        lab.tls_cert, lab.tls_key = cert, key

    def start(self, lab):
        pass

    def logs(self, lab):
        return []


class SmtpSink(Server):
    def __init__(self, name, opts, banner):
        self.name = "sink_" + name
        self.sink = name
        self.opts = opts
        self.banner = banner

    def configure(self, lab):
        self.port = lab.ports.pick()
        lab.info.setdefault("sinks", {})[self.sink] = self.port

    def start(self, lab):
        backlog = "1000" if self.sink == "ok" else "100"
        argv = ["smtp-sink", "-u", "nobody"] + self.opts + ["127.0.0.1:%d" % self.port, backlog]
        lab.info["pids"][self.name] = spawn(argv, lab.logfile(self.name))

    def ready(self, lab):
        return greeting_ok("127.0.0.1", self.port, self.banner)


class Dnsmasq(Server):
    name = "dnsmasq"

    def configure(self, lab):
        self.port = lab.ports.pick(udp=True)
        lab.info.setdefault("dns", {}).update({"server": "127.0.0.1:%d" % self.port, "port": self.port})
        lines = [
            "port=%d" % self.port, "listen-address=127.0.0.1", "bind-interfaces",
            "no-resolv", "no-hosts", "no-poll", "local=/test/", "local=/127.in-addr.arpa/",
            "domain-needed",
            "user=nobody", "group=nogroup", "log-queries",
            "log-facility=" + lab.logfile("dnsmasq"),
            "pid-file=" + lab.path("run", "dnsmasq.pid"),
        ]
        hosts = [r for r in DNS_RECORDS if r[0] == "host"]
        others = [r for r in DNS_RECORDS if r[0] != "host"]
        for rec in hosts + others:
            kind = rec[0]
            if kind in ("host", "a"):
                lines.append("host-record=%s,%s" % (rec[1], rec[2]))
            elif kind == "mx":
                lines.append("mx-host=%s,%s,%d" % (rec[1], rec[2], rec[3]))
            elif kind == "txt":
                # one TXT record; dnsmasq makes each comma-separated part one string:
                # quote them (commas inside SPF/DMARC stay) and cut long values (DKIM
                # keys) into 255-byte strings, which resolvers concatenate
                text = rec[2]
                parts = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
                lines.append("txt-record=%s,%s" % (rec[1], ",".join(
                    '"%s"' % p.replace("\\", "\\\\").replace('"', '\\"') for p in parts)))
            elif kind == "ptr":
                lines.append("ptr-record=%s,%s" % (rec[1], rec[2]))
            elif kind == "cname":
                lines.append("cname=%s,%s" % (rec[1], rec[2]))
            elif kind == "addr":
                lines.append("address=/%s/%s" % (rec[1], rec[2]))
            elif kind == "dead":
                lines.append("server=/%s/127.0.0.1#%d" % (rec[1], lab.info["dns"]["blackhole_port"]))
            else:
                raise LabError("unknown DNS record kind %r" % (kind,))
        write(lab.path("dns", "dnsmasq.conf"), "\n".join(lines) + "\n")

    def start(self, lab):
        # the log file is written by the unprivileged user after the switch
        os.makedirs(lab.path("run"), exist_ok=True)
        argv = ["dnsmasq", "-k", "-C", lab.path("dns", "dnsmasq.conf")]
        lab.info["pids"][self.name] = spawn(argv, lab.logfile("dnsmasq-stderr"))

    def ready(self, lab):
        r = dns_query("127.0.0.1", self.port, "mx.lab.test")
        return r is not None and r[0] == 0 and r[1] >= 1

    def logs(self, lab):
        return [lab.logfile("dnsmasq-stderr"), lab.logfile("dnsmasq")]


BLACKHOLE_SCRIPT = """
import signal, socket, sys
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    s.recvfrom(4096)   # read and never answer
"""


class DnsBlackhole(Server):
    """A UDP port on 127.0.0.1 that reads DNS queries and never answers: dns.blackhole as a
    name server gives DNS timeouts, and dnsmasq forwards the ("dead", zone) zones to it."""
    name = "dns_blackhole"

    def configure(self, lab):
        self.port = lab.ports.pick(udp=True)
        lab.info.setdefault("dns", {}).update({"blackhole": "127.0.0.1:%d" % self.port,
                                               "blackhole_port": self.port})

    def start(self, lab):
        argv = [sys.executable, "-c", BLACKHOLE_SCRIPT, str(self.port)]
        lab.info["pids"][self.name] = spawn(argv, lab.logfile(self.name))

    def ready(self, lab):
        return _udp_bound(self.port)


def _udp_bound(port):
    """Whether something holds UDP port on 127.0.0.1 (our bind fails)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        return True
    finally:
        s.close()
    return False


class Dovecot(Server):
    name = "dovecot"

    def configure(self, lab):
        import pwd
        pw = pwd.getpwnam(MAIL_UID_USER)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.imap = lab.ports.pick()
        self.imaps = lab.ports.pick()
        lab.info["imap"] = {"port": self.imap, "imaps_port": self.imaps}
        d = lab.path("dovecot")
        run_dir = lab.path("run")
        lab.lmtp_socket = os.path.join(run_dir, "lmtp")
        lab.auth_socket = os.path.join(run_dir, "auth")
        os.makedirs(run_dir, exist_ok=True)
        os.makedirs(lab.path("mail"), exist_ok=True)
        os.chown(lab.path("mail"), self.uid, self.gid)
        users, secrets_dir = [], lab.path("secrets")
        os.makedirs(secrets_dir, exist_ok=True)
        os.chmod(secrets_dir, 0o700)
        lab.info["users"] = {}
        for u in USERS:
            pw_ = secrets.token_urlsafe(15)
            local, dom = u.split("@")
            home = lab.path("mail", dom, local)
            os.makedirs(home, exist_ok=True)
            os.chown(lab.path("mail", dom), self.uid, self.gid)
            os.chown(home, self.uid, self.gid)
            os.chmod(home, 0o700)
            secret = os.path.join(secrets_dir, u + ".secret")
            write(secret, pw_, 0o600)
            lab.info["users"][u] = {"password": pw_, "secret_file": secret}
            users.append("%s:{PLAIN}%s:%d:%d::%s::" % (u, pw_, self.uid, self.gid, home))
        write(os.path.join(d, "users"), "\n".join(users) + "\n", 0o640)
        os.chown(os.path.join(d, "users"), 0, grp_id("dovecot"))

        sieve = os.path.join(d, "sieve", "before.sieve")
        write(sieve, 'require ["fileinto"];\n'
                     'if header :is "X-Lab-Junk" "yes" {\n  fileinto "Junk";\n  stop;\n}\n')
        run(["sievec", sieve])

        conf = """# mailcanary lab dovecot (generated)
base_dir = {base}
state_dir = {state}
instance_name = {instance}
log_path = {log}
info_log_path = {log}
protocols = imap lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_dh = </usr/share/dovecot/dh.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = yes
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_uid = {uid}
mail_gid = {gid}
recipient_delimiter = +
postmaster_address = postmaster@lab.test
hostname = mx.lab.test
lda_mailbox_autocreate = yes
lda_mailbox_autosubscribe = yes
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu {users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {users}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener {lmtp} {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
service auth {{
  unix_listener {auth} {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
protocol lmtp {{
  mail_plugins = $mail_plugins sieve
}}
plugin {{
  sieve_before = {sieve}
}}
""".format(base=lab.path("run", "dovecot"), state=lab.path("dovecot", "state"),
           instance=dovecot_instance(lab.dir), log=lab.logfile("dovecot"),
           cert=lab.tls_cert, key=lab.tls_key, uid=self.uid, gid=self.gid,
           users=os.path.join(d, "users"), imap=self.imap, imaps=self.imaps,
           lmtp=lab.lmtp_socket, auth=lab.auth_socket, sieve=sieve)
        write(os.path.join(d, "dovecot.conf"), conf)
        os.makedirs(lab.path("dovecot", "state"), exist_ok=True)

    def start(self, lab):
        argv = ["dovecot", "-F", "-c", lab.path("dovecot", "dovecot.conf")]
        lab.info["pids"][self.name] = spawn(argv, lab.logfile("dovecot-stderr"))

    def ready(self, lab):
        for sock in (lab.lmtp_socket, lab.auth_socket):
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(sock)
            except OSError:
                return False
            finally:
                s.close()
        if not greeting_ok("127.0.0.1", self.imap, "* OK"):
            return False
        try:
            ctx = ssl.create_default_context(cafile=lab.tls_cert)
            with socket.create_connection(("127.0.0.1", self.imaps), timeout=2) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    return (read_smtp_line(s, 2) or b"").startswith(b"* OK")
        except OSError:
            return False

    def logs(self, lab):
        return [lab.logfile("dovecot-stderr"), lab.logfile("dovecot")]


def dovecot_instance(d):
    """Dovecot instance name; its children are called "dovecot-<instance>/<service>"."""
    import hashlib
    return "mclab-" + hashlib.sha1(d.encode()).hexdigest()[:10]


def grp_id(name):
    import grp
    return grp.getgrnam(name).gr_gid


class Postgrey(Server):
    """postgrey in the foreground (own session; --daemonize would log to syslog only),
    stderr to log/postgrey.log, its own BerkeleyDB dir, empty whitelists so that the
    system's /etc/postgrey lists do not apply and every new triplet is greylisted.
    Configured before Postfix, which points a restriction class at it."""
    name = "postgrey"
    user = "postgrey"

    def configure(self, lab):
        import pwd
        pw = pwd.getpwnam(self.user)
        self.port = lab.ports.pick()
        d = lab.path("postgrey")
        self.dbdir = os.path.join(d, "db")
        os.makedirs(self.dbdir, exist_ok=True)
        os.chown(self.dbdir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dbdir, 0o700)
        self.wl_clients = os.path.join(d, "whitelist_clients")
        self.wl_recipients = os.path.join(d, "whitelist_recipients")
        write(self.wl_clients, "")
        write(self.wl_recipients, "")
        lab.postgrey_port = self.port
        lab.info["postgrey"] = {"port": self.port, "delay": GREY_DELAY, "domain": GREY_DOMAIN,
                                "mailbox": GREY_MAILBOX}

    def start(self, lab):
        argv = ["postgrey", "--inet=127.0.0.1:%d" % self.port, "--dbdir=" + self.dbdir,
                "--user=" + self.user, "--group=" + self.user,
                "--delay=%d" % GREY_DELAY, "--auto-whitelist-clients=0",
                "--whitelist-clients=" + self.wl_clients,
                "--whitelist-recipients=" + self.wl_recipients,
                "--greylist-text=" + GREY_TEXT]
        lab.info["pids"][self.name] = spawn(argv, lab.logfile(self.name))

    def ready(self, lab):
        # one policy request (a triplet no test uses): an action line means the
        # database is open and requests are answered
        req = ("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.1\n"
               "client_name=localhost\nsender=lab-ready@ready.invalid\n"
               "recipient=lab-ready@ready.invalid\n\n").encode()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(req)
                line = read_smtp_line(s, 2)
        except OSError:
            return False
        return bool(line) and line.startswith(b"action=")


# The non-smtpd services of a private Postfix's master.cf (chroot off everywhere).
POSTFIX_SERVICES = """pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfix_prepare(cfg, queue, data, extra_files=()):
    """Creates the queue as "postfix post-install create-missing" would (that takes 2.5 s),
    lets "postfix start" skip its integrity checks on it (another 2-3 s), and backdates the
    config files: Postfix re-reads main.cf, master.cf or a texthash file until it is 2 s old."""
    pf_uid, pd_gid = grp_owner("postfix"), grp_id("postdrop")
    for sub, uid, gid, mode in QUEUE_DIRS:
        p = os.path.join(queue, sub)
        os.makedirs(p, exist_ok=True)
        os.chown(p, {"postfix": pf_uid, "root": 0}[uid], {"root": 0, "postdrop": pd_gid}[gid])
        os.chmod(p, mode)
    os.chmod(data, 0o700)
    write(os.path.join(queue, "quick-start"), "")
    past = time.time() - 60
    for f in ("main.cf", "master.cf") + tuple(extra_files):
        os.utime(os.path.join(cfg, f), (past, past))


class Postfix(Server):
    name = "postfix"

    def configure(self, lab):
        P = lab.ports
        self.mx = P.pick(ips=(MX_IP, DEAD_IP, MX421_IP))
        self.refuse421 = P.pick()
        self.submission = P.pick()
        self.notls = P.pick()
        lab.info["postfix"] = {"mx": self.mx, "mx_ip": MX_IP, "mx421_ip": MX421_IP,
                               "dead_ip": DEAD_IP, "refuse421": self.refuse421,
                               "submission": self.submission, "notls": self.notls,
                               "config_dir": lab.path("postfix"),
                               "hold": {"address": HOLD_ADDRESS, "mailbox": HOLD_MAILBOX},
                               "bounce": {"soft_domain": BOUNCE_SOFT_DOMAIN,
                                          "hard_domain": BOUNCE_HARD_DOMAIN,
                                          "mailbox": BOUNCE_MAILBOX,
                                          "delay_warning_s": BOUNCE_DELAY_WARNING}}
        # config, queue and data directories apart: postfix-script checks the whole
        # config tree for root ownership
        cfg = self.cfg = lab.path("postfix")
        self.queue, self.data = lab.path("spool", "queue"), lab.path("spool", "data")
        for sub in (cfg, self.queue, self.data):
            os.makedirs(sub, exist_ok=True)
        os.chown(self.data, grp_owner("postfix"), grp_id("postfix"))
        ok = lab.info["sinks"]["ok"]
        write(os.path.join(cfg, "vmailbox"), "".join("%s OK\n" % u for u in USERS))
        sinks = lab.info["sinks"]
        write(os.path.join(cfg, "transport"),
              "%s smtp:[127.0.0.1]:%d\n%s smtp:[127.0.0.1]:%d\n" % (
                  BOUNCE_SOFT_DOMAIN, sinks["rcpt432"], BOUNCE_HARD_DOMAIN, sinks["rcpt5xx"]))
        # grey.test -> the lab_greylist restriction class (postgrey); no permit_mynetworks
        # anywhere before it, so loopback clients are greylisted like remote ones
        write(os.path.join(cfg, "recipient_access"),
              "".join("%s %s\n" % kv for kv in RECIPIENT_ACCESS.items())
              + "%s lab_greylist\n" % GREY_DOMAIN)
        # every local part at grey.test is valid and delivered to the one grey mailbox
        write(os.path.join(cfg, "virtual_alias"),
              "/^[^@]+@%s$/ %s\n" % (GREY_DOMAIN.replace(".", "\\."), GREY_MAILBOX)
              + "/^%s$/ %s\n" % (HOLD_ADDRESS.replace(".", "\\."), HOLD_MAILBOX))
        main = """# mailcanary lab postfix (generated)
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.lab.test
mydomain = lab.test
myorigin = $mydomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = $myhostname ESMTP mailcanary-lab
biff = no
append_dot_mydomain = no
recipient_delimiter = +
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled in the lab
default_transport = smtp:[127.0.0.1]:{ok}
relay_transport = smtp:[127.0.0.1]:{ok}
virtual_mailbox_domains = {domains}
virtual_mailbox_maps = texthash:{cfg}/vmailbox
virtual_transport = lmtp:unix:{lmtp}
virtual_alias_maps = regexp:{cfg}/virtual_alias
transport_maps = texthash:{cfg}/transport
lmtp_destination_recipient_limit = 1
smtp_tls_security_level = none
maillog_file = {log}
maillog_file_prefixes = {logdir}
smtpd_delay_reject = no
smtpd_helo_required = no
smtpd_client_restrictions =
smtpd_helo_restrictions =
smtpd_sender_restrictions =
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access texthash:{cfg}/recipient_access, reject_unlisted_recipient
lab421_client_restrictions = check_client_access static:{{{r421}}}
smtpd_restriction_classes = lab_greylist
lab_greylist = check_policy_service inet:127.0.0.1:{grey}
smtpd_tls_security_level = may
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {auth}
smtpd_sasl_auth_enable = no
smtpd_sasl_security_options = noanonymous
broken_sasl_auth_clients = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 10s
delay_warning_time = {warn}s
""".format(warn=BOUNCE_DELAY_WARNING, cfg=cfg, queue=self.queue, data=self.data, ok=ok, domains=" ".join(LAB_DOMAINS), lmtp=lab.lmtp_socket,
           log=lab.logfile("postfix"), logdir=lab.path("log"), r421=CONNECT_421,
           cert=lab.tls_cert, key=lab.tls_key, auth=lab.auth_socket, grey=lab.postgrey_port)
        write(os.path.join(cfg, "main.cf"), main)

        def inet(addr, port, *opts):
            o = "".join("\n  -o %s" % x for x in opts)
            return "%s:%d inet n - n - - smtpd%s\n" % (addr, port, o)
        master = "# mailcanary lab postfix master.cf (generated); chroot = n everywhere\n"
        master += inet(MX_IP, self.mx, "syslog_name=postfix/mx")
        master += inet(MX421_IP, self.mx, "syslog_name=postfix/mx421",
                       "smtpd_client_restrictions=$lab421_client_restrictions")
        master += inet(MX_IP, self.refuse421, "syslog_name=postfix/refuse421",
                       "smtpd_client_restrictions=$lab421_client_restrictions")
        master += inet(MX_IP, self.submission, "syslog_name=postfix/submission",
                       "smtpd_tls_security_level=encrypt", "smtpd_tls_auth_only=yes",
                       "smtpd_sasl_auth_enable=yes",
                       "smtpd_relay_restrictions=permit_sasl_authenticated,reject",
                       "smtpd_recipient_restrictions=permit_sasl_authenticated,reject")
        master += inet(MX_IP, self.notls, "syslog_name=postfix/notls",
                       "smtpd_tls_security_level=none")
        master += POSTFIX_SERVICES
        write(os.path.join(cfg, "master.cf"), master)
        os.makedirs(lab.path("log"), exist_ok=True)
        postfix_prepare(cfg, self.queue, self.data, ("vmailbox", "recipient_access", "virtual_alias", "transport"))
        out = run(["postconf", "-c", cfg, "-n"], check=False)
        if "warning:" in out:
            log("postfix configuration warnings:\n" + "\n".join(
                l for l in out.splitlines() if "warning:" in l))

    def start(self, lab):
        p = subprocess.run(["postfix", "-c", self.cfg, "start"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        write(lab.logfile("postfix-start"), p.stdout.decode("utf-8", "replace"))
        pid = self.master_pid(lab)
        if pid:
            lab.info["pids"][self.name] = pid
        if p.returncode != 0:
            raise LabError("postfix start exited %d" % p.returncode, self)

    def master_pid(self, lab):
        try:
            with open(lab.path("spool", "queue", "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def ready(self, lab):
        if self.name not in lab.info["pids"]:
            pid = self.master_pid(lab)
            if not pid:
                return False
            lab.info["pids"][self.name] = pid
        return (greeting_ok(MX_IP, self.mx, "220") and greeting_ok(MX421_IP, self.mx, "421")
                and greeting_ok(MX_IP, self.refuse421, "421")
                and greeting_ok(MX_IP, self.submission, "220")
                and greeting_ok(MX_IP, self.notls, "220"))

    def stop(self, lab, pids):
        cfg = lab.path("postfix")
        if any(alive(p) for p in pids) and os.path.exists(os.path.join(cfg, "main.cf")):
            try:
                run(["postfix", "-c", cfg, "stop"], timeout=15, check=False)
            except subprocess.TimeoutExpired:
                pass
            deadline = time.monotonic() + STOP_GRACE
            while time.monotonic() < deadline and any(alive(p) for p in pids):
                time.sleep(0.05)
        terminate(pids)

    def logs(self, lab):
        return [lab.logfile("postfix-start"), lab.logfile("postfix")]


# queue layout from /etc/postfix/postfix-files: (dir, owner, group, mode)
QUEUE_DIRS = [(d, "postfix", "root", 0o700) for d in (
    "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming",
    "private", "saved", "trace")] + [
    ("maildrop", "postfix", "postdrop", 0o730), ("public", "postfix", "postdrop", 0o710),
    ("pid", "root", "root", 0o755)]


def grp_owner(user):
    import pwd
    return pwd.getpwnam(user).pw_uid


def servers():
    """Every server, in start order. Add a server here (a Server subclass)."""
    out = [TLS(), DnsBlackhole(), Dnsmasq()]
    out += [SmtpSink(n, o, b) for n, (o, b) in SINKS.items()]
    out += [Dovecot(), Postgrey(), Postfix()]
    return out


# ---------------------------------------------------------------------------
# start / stop

def _read_pids(d):
    pids = {}
    try:
        with open(os.path.join(d, "pids")) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1].isdigit():
                    pids[parts[0]] = int(parts[1])
    except OSError:
        pass
    return pids


def _write_pids(lab):
    """DIR/pids: "name pid" lines. DIR/run/pids.start: each pid's start time, so that
    stop never signals a recycled pid that now belongs to someone else."""
    with open(lab.path("pids"), "w") as f:
        for n, p in lab.info["pids"].items():
            f.write("%s %d\n" % (n, p))
    starts = {str(p): proc_starttime(p) for p in lab.info["pids"].values()}
    os.makedirs(lab.path("run"), exist_ok=True)
    with open(lab.path("run", "pids.start"), "w") as f:
        json.dump(starts, f)


def _ours(d, pids):
    """The recorded pids that still are the processes we started."""
    try:
        with open(os.path.join(d, "run", "pids.start")) as f:
            starts = json.load(f)
    except (OSError, ValueError):
        starts = {}
    out = []
    for p in pids:
        want = starts.get(str(p))
        if want is not None and proc_starttime(p) != want:
            continue            # pid recycled: not ours any more
        out.append(p)
    return out


def _leftovers(d):
    """Server processes of this lab that outlived their recorded master pid: Postfix
    daemons (under /usr/lib/postfix, with MAIL_CONFIG=DIR/postfix in their environment)
    and Dovecot children (argv[0] "dovecot-<this lab's instance>/..."). Nothing else,
    so a client that merely mentions DIR on its command line is never touched."""
    want_env = ("MAIL_CONFIG=" + os.path.join(d, "postfix")).encode()
    dove = ("dovecot-" + dovecot_instance(d) + "/").encode()
    me = os.getpid()
    found = []
    for ent in os.listdir("/proc"):
        if not ent.isdigit() or int(ent) == me:
            continue
        pid = int(ent)
        try:
            with open("/proc/%s/cmdline" % ent, "rb") as f:
                argv0 = f.read().split(b"\0")[0]
            exe = os.readlink("/proc/%s/exe" % ent)
            if argv0.startswith(dove):
                hit = True
            elif exe.startswith(("/usr/lib/postfix/", "/usr/sbin/postfix")):
                with open("/proc/%s/environ" % ent, "rb") as f:
                    hit = want_env in f.read().split(b"\0")
            else:
                hit = False
        except OSError:
            continue
        if hit and alive(pid):
            found.append(pid)
    return found


def stop(d, clean=False, quiet=False):
    d = os.path.abspath(d)
    pids = _read_pids(d)
    if not pids:
        try:
            pids = dict(load(d).get("pids", {}))
        except (OSError, ValueError):
            pids = {}
    lab = Lab(d)
    mine = set(_ours(d, pids.values()))
    pids = {n: p for n, p in pids.items() if p in mine}
    if pids:
        # servers with their own stop() first (postfix: it delivers into dovecot), in
        # reverse start order; then every plain process at once
        by_name = {s.name: s for s in servers()}
        plain = []
        for n in reversed(list(pids)):
            srv = by_name.get(n)
            if srv is not None and type(srv).stop is not Server.stop:
                srv.stop(lab, [pids[n]])
            else:
                plain.append(pids[n])
        terminate(plain)
    if os.path.isdir(d):
        # children that outlived their master (postfix daemons, dovecot children)
        left = _leftovers(d)
        if left:
            terminate(left, grace=2)
    with Lock():
        reg = _registry_load()
        if reg.pop(d, None) is not None:
            _registry_save(_registry_live(reg))
    still = [p for p in pids.values() if alive(p)]
    if still and not quiet:
        log("warning: still running after stop: %s" % still)
    if clean and os.path.isdir(d):
        shutil.rmtree(d, ignore_errors=True)
    if not quiet:
        log("stopped %s" % d)
    return not still


def _prepare_dir(d):
    if os.path.isdir(d) and os.listdir(d):
        is_lab = any(os.path.exists(os.path.join(d, x)) for x in (MARKER, "lab.json", "pids"))
        if not is_lab:
            raise LabError("%s exists, is not empty and is not a lab directory; refusing to wipe it" % d)
        stop(d, quiet=True)
        shutil.rmtree(d)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)        # dovecot/postfix/nobody must traverse it
    # every parent must be traversable too
    p = os.path.dirname(d)
    while p and p != "/":
        st = os.stat(p)
        if not st.st_mode & 0o001:
            raise LabError("%s is not traversable by other users (mode %o); choose a lab dir "
                           "elsewhere (e.g. under /tmp)" % (p, st.st_mode & 0o777))
        p = os.path.dirname(p)
    with open(os.path.join(d, MARKER), "w") as f:
        f.write("mailcanary test lab; lab.py stop/start may wipe this directory\n")


def start(d):
    """Start a lab in d; returns the lab.json dict. Raises LabError (after stopping
    whatever it started) if a server does not come up."""
    if os.geteuid() != 0:
        raise LabError("the lab must run as root (Postfix's master runs as root)")
    t0 = time.monotonic()
    d = os.path.abspath(d)
    # longest unix socket: DIR/run/dovecot/token-login/imap-urlauth; sun_path is 108 bytes
    if len(d) > 68:
        raise LabError("lab dir path too long for unix sockets (%d > 68 chars): %s" % (len(d), d))
    _prepare_dir(d)
    lab = Lab(d)
    srvs = servers()
    ok = False
    with Lock():
        reg = _registry_live(_registry_load())
        reserved = set()
        for ent in reg.values():
            reserved.update(ent.get("ports", []))
        lab.ports = PortPicker(reserved)
        try:
            for s in srvs:
                t = time.monotonic()
                s.configure(lab)
                debug("configured %s in %.2f s" % (s.name, time.monotonic() - t))
            lab.info["refused_port"] = lab.ports.pick()
            lab.info["logs"] = {s.name: s.logs(lab) for s in srvs if s.logs(lab)}
            for s in srvs:
                t = time.monotonic()
                s.start(lab)
                debug("started %s in %.2f s" % (s.name, time.monotonic() - t))
            _write_pids(lab)
            t_ready = time.monotonic()
            pending = list(srvs)
            deadline = min(time.monotonic() + READY_TIMEOUT, t0 + START_TIMEOUT)
            while pending and time.monotonic() < deadline:
                for s in list(pending):
                    pid = lab.info["pids"].get(s.name)
                    if pid is not None and not alive(pid) and s.name != "postfix":
                        raise LabError("%s exited during start" % s.name, s)
                    if s.ready(lab):
                        pending.remove(s)
                        debug("%s ready after %.2f s" % (s.name, time.monotonic() - t_ready))
                if pending:
                    time.sleep(0.05)
            if pending:
                raise LabError("not ready after %.0f s: %s" % (time.monotonic() - t0, ", ".join(
                    s.name for s in pending)), *pending)
            _write_pids(lab)
            lab.info["start_seconds"] = round(time.monotonic() - t0, 2)
            tmp = lab.path("lab.json.tmp")
            with open(tmp, "w") as f:
                json.dump(lab.info, f, indent=2, sort_keys=True)
                f.write("\n")
            os.replace(tmp, lab.path("lab.json"))
            reg[d] = {"ports": sorted(lab.ports.used), "pids": list(lab.info["pids"].values())}
            _registry_save(reg)
            ok = True
            return lab.info
        except Exception as e:
            failed = [a for a in getattr(e, "args", ())[1:] if isinstance(a, Server)]
            msg = e.args[0] if isinstance(e, LabError) and e.args else "%s: %s" % (type(e).__name__, e)
            for s in failed or []:
                for lf in s.logs(lab):
                    msg += "\n--- %s (tail) ---\n%s" % (lf, tail(lf))
            raise LabError(msg) from None
        finally:
            if not ok:
                if lab.info["pids"]:
                    _write_pids(lab)
                stop(d, quiet=True)


def load(d):
    """The parsed DIR/lab.json."""
    with open(os.path.join(os.path.abspath(d), "lab.json")) as f:
        return json.load(f)


def env_lines(info, prefix="LAB"):
    out = []

    def walk(key, v):
        if isinstance(v, dict):
            for k, x in sorted(v.items()):
                walk(key + "_" + re.sub(r"[^A-Za-z0-9]", "_", str(k)).upper(), x)
        elif isinstance(v, list):
            out.append("%s=%s" % (key, shlex.quote(" ".join(str(x) for x in v))))
        else:
            out.append("%s=%s" % (key, shlex.quote(str(v))))
    walk(prefix, info)
    return out


def main(argv):
    import argparse
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # "lab.py env DIR | head" stays quiet
    ap = argparse.ArgumentParser(description="mailcanary test lab")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("start").add_argument("dir")
    sp = sub.add_parser("stop")
    sp.add_argument("dir")
    sp.add_argument("--clean", action="store_true", help="also remove the directory")
    sub.add_parser("env").add_argument("dir")
    sub.add_parser("status").add_argument("dir")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "start":
            info = start(a.dir)
            log("started %s in %.2f s (lab.json written)" % (info["dir"], info["start_seconds"]))
            return 0
        if a.cmd == "stop":
            stop(a.dir, clean=a.clean)
            return 0
        if a.cmd == "env":
            print("\n".join(env_lines(load(a.dir))))
            return 0
        if a.cmd == "status":
            pids = _read_pids(os.path.abspath(a.dir))
            bad = 0
            for n, p in pids.items():
                st = "running" if alive(p) else "stopped"
                bad += st != "running"
                print("%-16s %7d %s" % (n, p, st))
            return 1 if bad or not pids else 0
    except LabError as e:
        log("error: %s" % e)
        return 1
    except KeyboardInterrupt:
        return 130
    except FileNotFoundError as e:
        log("error: %s" % e)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
