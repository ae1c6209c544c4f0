#!/usr/bin/env python3
"""Turns the openspf test suite (tests/data/spf/rfc7208-tests.yml) into lines that test_spf.c
reads without a YAML parser. Usage: spf_suite.py SUITE.yml > suite.txt

One record per line, fields separated by TAB; in every field, bytes below 0x20, from 0x7f up,
and the backslash are written \\xHH (strings are UTF-8 encoded first):

  S <TAB> description                      a new scenario: the zone below replaces the last one
  Z <TAB> name <TAB> type [<TAB> field]...  a zone entry, in the order of the YAML:
        TXT/SPF: one field per string (none: a record of no strings); A, AAAA, PTR, CNAME: the
        value; MX: preference, exchange; TIMEOUT: no field
  T <TAB> id <TAB> helo <TAB> host <TAB> mailfrom <TAB> results <TAB> explanation-or-empty <TAB> 0|1
        results: the allowed ones, comma-separated; the last field says whether the case checks
        the explanation

The zone follows the suite's reference driver (pyspf's testspf.py): names are lower-cased; at a
name with no TXT entry, every SPF entry is also served as TXT (appended after the others);
"TXT: NONE" stands for no record but still stops that copying; a TIMEOUT entry times out any
query of a type that has no record before it at that name.
"""
import sys

try:
    import yaml
except ImportError:
    raise SystemExit("spf_suite.py: needs PyYAML (Debian: python3-yaml, see scripts/install-deps.sh)")


def esc(v):
    if isinstance(v, bool):
        v = "true" if v else "false"
    if not isinstance(v, (str, bytes)):
        v = str(v)
    b = v.encode("utf-8") if isinstance(v, str) else v
    out = []
    for c in b:
        if c < 0x20 or c >= 0x7F or c == 0x5C:
            out.append("\\x%02x" % c)
        else:
            out.append(chr(c))
    return "".join(out)


def line(*fields):
    return "\t".join(esc(f) for f in fields)


def strings(v):
    """A TXT/SPF value: one string or a list of strings."""
    if isinstance(v, list):
        return [str(s) for s in v]
    return [str(v)]


def zone_lines(zonedata):
    out = []
    for name, entries in zonedata.items():
        name = str(name).lower()
        has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        generated = []
        for e in entries:
            if e == "TIMEOUT":
                out.append(line("Z", name, "TIMEOUT"))
                continue
            if not isinstance(e, dict) or len(e) != 1:
                raise SystemExit("spf_suite.py: %s: unexpected zone entry %r" % (name, e))
            (rtype, value), = e.items()
            if rtype in ("TXT", "SPF"):
                if value == "NONE":
                    continue
                out.append(line("Z", name, rtype, *strings(value)))
                if rtype == "SPF" and not has_txt:
                    generated.append(line("Z", name, "TXT", *strings(value)))
            elif rtype == "MX":
                pref, host = value
                out.append(line("Z", name, "MX", pref, host))
            elif rtype in ("A", "AAAA", "PTR", "CNAME"):
                out.append(line("Z", name, rtype, value))
            else:
                raise SystemExit("spf_suite.py: %s: unknown record type %s" % (name, rtype))
        out.extend(generated)
    return out


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: spf_suite.py SUITE.yml")
    with open(sys.argv[1], "rb") as f:
        docs = list(yaml.safe_load_all(f))
    lines = []
    for doc in docs:
        if not doc:
            continue
        lines.append(line("S", doc.get("description", "")))
        lines.extend(zone_lines(doc.get("zonedata") or {}))
        for tid, t in doc["tests"].items():
            results = t["result"] if isinstance(t["result"], list) else [t["result"]]
            exp = t.get("explanation")
            lines.append(line("T", tid, t.get("helo", ""), t.get("host", ""), t.get("mailfrom", ""),
                              ",".join(str(r) for r in results), "" if exp is None else exp,
                              "0" if exp is None else "1"))
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
