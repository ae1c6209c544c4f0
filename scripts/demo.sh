#!/usr/bin/env bash
# mailcanary demo: installs what is missing, builds, starts a lab of real mail servers on
# loopback (Postfix, postgrey, Dovecot, smtp-sink, dnsmasq), runs one probe round against
# seeds that each show one thing mailcanary finds, prints one result as JSON, runs the
# daemon for a few seconds (schedules, retries, real greylisting), and stops the lab.
#
#   sudo bash scripts/demo.sh          # everything above; the lab is always stopped at the end
#   sudo bash scripts/demo.sh --keep   # leave the lab, the config and the detail log in place
#
# Needs root (the lab's private Postfix master runs as root) and Debian 12. Touches no system
# mail server: every server runs from one temporary directory on 127.0.0.x and high ports.
# Exit status: 0 when the demo ran (the probe round itself exits 1 on purpose: some seeds
# are deferred or rejected by design), non-zero when a step could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$ROOT/build/cli/mailcanary
TEMPLATE=$ROOT/conf/demo.conf.in

usage() {
	sed -n '2,12s/^# \{0,1\}//p' "$0"
}

keep=0
for arg in "$@"; do
	case $arg in
	--keep) keep=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "demo.sh: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
	esac
done

if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh: run as root, e.g. 'sudo bash scripts/demo.sh' (the lab's Postfix master runs as root)" >&2
	exit 1
fi
exec </dev/null # nothing here reads stdin (CI, ssh without a tty)
export DEBIAN_FRONTEND=noninteractive

step=0
section() {
	step=$((step + 1))
	printf '\n==== %d. %s\n' "$step" "$*"
}

# One fresh directory per run: the lab, the demo config and the state directory go in it.
# Under /tmp (not $TMPDIR): the lab's unix sockets limit the path length, and the servers
# (running as nobody, postfix, dovecot) must be able to traverse every parent directory.
DEMO_DIR=$(mktemp -d /tmp/mailcanary-demo.XXXXXX)
chmod 755 "$DEMO_DIR"
LAB=$DEMO_DIR/lab
CONF=$DEMO_DIR/demo.conf
lab_started=0
ok=0
daemon_pid=

cleanup() {
	local rc=$?
	trap - EXIT
	trap '' INT TERM # let the lab stop completely, even on a second Ctrl-C
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		kill -TERM "$daemon_pid" 2>/dev/null || true
		wait "$daemon_pid" 2>/dev/null || true
	fi
	if [ "$lab_started" = 1 ]; then
		if [ "$keep" = 1 ] && [ "$ok" = 1 ]; then
			section "Lab left running (--keep)"
			cat <<EOF
lab directory:  $LAB   (servers, ports and passwords: $LAB/lab.json)
demo config:    $CONF
detail log:     $DEMO_DIR/state/results.jsonl
probe again:    $BIN -c $CONF probe
stop the lab:   python3 $ROOT/tests/lab/lab.py stop $LAB && rm -rf $DEMO_DIR
EOF
			exit "$rc"
		fi
		section "Stopping the lab"
		python3 "$ROOT/tests/lab/lab.py" stop "$LAB" || true
	fi
	if [ "$keep" = 1 ] && [ "$ok" != 1 ]; then
		echo "demo.sh: the demo did not complete; the lab is stopped, files kept in $DEMO_DIR"
	elif [ "$keep" != 1 ]; then
		rm -rf "$DEMO_DIR"
	fi
	if [ "$rc" -ne 0 ]; then
		echo "demo.sh: FAILED (exit $rc)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "demo.sh: interrupted" >&2; exit 130' INT
trap 'echo "demo.sh: terminated" >&2; exit 143' TERM

section "Installing missing packages (scripts/install-deps.sh)"
bash scripts/install-deps.sh

section "Building (scripts/build.sh)"
if ! bash scripts/build.sh >"$DEMO_DIR/build.log" 2>&1; then
	tail -n 40 "$DEMO_DIR/build.log" >&2
	echo "demo.sh: the build failed (log above)" >&2
	keep=1 # keep build.log for a look
	exit 1
fi
echo "built $BIN"
"$BIN" version

section "Starting the demo lab in $LAB"
lab_started=1
# lab.py start runs in its own session so that a Ctrl-C cannot cut it off between spawning
# a server and recording its pid (that server would be left running); the interrupt is
# acted on when the start is over (2-3 s), and then the EXIT trap stops the whole lab.
interrupted=0
trap 'interrupted=130' INT
trap 'interrupted=143' TERM
lab_rc=0
setsid -w python3 tests/lab/lab.py start "$LAB" || lab_rc=$?
trap 'echo; echo "demo.sh: interrupted" >&2; exit 130' INT
trap 'echo "demo.sh: terminated" >&2; exit 143' TERM
if [ "$interrupted" != 0 ]; then
	echo "demo.sh: interrupted" >&2
	exit "$interrupted"
fi
if [ "$lab_rc" != 0 ]; then
	echo "demo.sh: the lab did not start (see the lab: lines above)" >&2
	exit 1
fi

section "Writing the demo configuration $CONF"
python3 - "$LAB/lab.json" "$TEMPLATE" "$CONF" "$DEMO_DIR" <<'EOF'
import json, random, re, string, sys
lab_json, template, out, demo_dir = sys.argv[1:]
L = json.load(open(lab_json))
# postgrey remembers a sender/recipient pair once it passed: a fresh recipient per demo run
# (letters only: postgrey folds digits) shows the greylisting every time.
grey = "grey-%s@%s" % ("".join(random.choice(string.ascii_lowercase) for _ in range(10)), L["postgrey"]["domain"])
values = {
    "GREY_ADDRESS": grey,
    "DEMO_DIR": demo_dir,
    "LAB_DNS_SERVER": L["dns"]["server"],
    "LAB_POSTFIX_MX": L["postfix"]["mx"],
    "LAB_POSTFIX_SUBMISSION": L["postfix"]["submission"],
    "LAB_CA_FILE": L["ca_file"],
    "LAB_SUBMISSION_SECRET_FILE": L["users"]["canary@lab.test"]["secret_file"],
    "LAB_SINKS_RCPT432": L["sinks"]["rcpt432"],
    "LAB_IMAPS_PORT": L["imap"]["imaps_port"],
    "LAB_SEED_A_SECRET_FILE": L["users"]["seed1@seed-a.test"]["secret_file"],
    "LAB_SINKS_DROP_EOD": L["sinks"]["drop_eod"],
}
text = open(template).read()
text = re.sub(r"@([A-Z0-9_]+)@", lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)
left = [m for m in re.findall(r"@[A-Z0-9_]+@", text) if m != "@NAME@"]
if left:
    sys.exit("demo.sh: unreplaced placeholders in %s: %s" % (template, " ".join(sorted(set(left)))))
open(out, "w").write(text)
EOF
echo "from $TEMPLATE; state_dir = $DEMO_DIR/state"
"$BIN" -c "$CONF" check-config

section "What each seed is set up to show"
cat <<'EOF'
seed-a      Postfix accepts the probe: 250 2.0.0 at end-of-data (STARTTLS on the way), then it
            is read back over IMAPS: found in INBOX, delivery time, hops; deleted
junk        accepted, but Sieve files it into Junk: found there, a placement finding
greylist-real  postgrey greylists a new sender/recipient pair: 450 4.2.0 "try again in 3 seconds"
greylisted  greylisting-style deferral at RCPT that never passes: 450 4.2.0
defer432    "451 4.3.2 System not accepting network messages" at RCPT (Postfix policy)
sink-432    the same 451 4.3.2, word for word as a busy server sends it (smtp-sink)
fallback    first MX answers 421 4.7.0 at the greeting, the second MX accepts
smarthost   submission through a relay: STARTTLS required, AUTH, then accepted
policy      permanent rejection at RCPT: 554 5.7.1
drop-eod    connection dropped after the message was sent: delivery state unknown
EOF

section "Probe round: mailcanary -c $CONF probe"
set +e
"$BIN" -c "$CONF" probe
rc=$?
set -e
case $rc in
1) echo "(exit status 1, as expected: some probes are deferred, rejected, unknown or misplaced on purpose)" ;;
0) echo "(exit status 0: every probe accepted; the demo expected some not to be)" ;;
*) echo "demo.sh: mailcanary probe exited $rc" >&2; exit 1 ;;
esac

# Each seed against what the lab is set up to do, from the detail log.
python3 - "$DEMO_DIR/state/results.jsonl" <<'EOF'
import json, sys
want = {
    "seed-a": ("accepted", "eod", 250), "greylisted": ("deferred", "rcpt", 450),
    "greylist-real": ("deferred", "rcpt", 450), "junk": ("accepted", "eod", 250),
    "defer432": ("deferred", "rcpt", 451), "sink-432": ("deferred", "rcpt", 451),
    "fallback": ("accepted", "eod", 250), "smarthost": ("accepted", "eod", 250),
    "policy": ("rejected", "rcpt", 554), "drop-eod": ("unknown", "eod", None),
}
got, rb = {}, {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    s = r["smtp"]
    got[r["seed"]] = (s["outcome"], s["stage"], s["code"])
    rb[r["seed"]] = r["readback"]
bad = ["%s: got %s, the lab is set up for %s" % (k, got.get(k), w) for k, w in want.items() if got.get(k) != w]
for seed, folder, placement in (("seed-a", "INBOX", "ok"), ("junk", "Junk", "unexpected")):
    r = rb.get(seed, {})
    if r.get("status") != "found" or r.get("folder") != folder or r.get("placement") != placement:
        bad.append("%s: readback %s, the lab is set up for found in %s" % (seed, json.dumps(r)[:200], folder))
    else:
        print("%s: read back from %s (placement %s), delivered %s s after acceptance, %d Received hops, "
              "then %s" % (seed, folder, placement, r.get("delivery_s"), len(r.get("hops", [])), r.get("cleanup")))
if bad:
    print("NOTE: not what the lab is set up to do:\n  " + "\n  ".join(bad))
else:
    print("every seed behaved as the lab is set up to do")
EOF

# probe_to FILE ARGS...: mailcanary probe ARGS into FILE; exit 1 (some probe not accepted) is
# what the demo shows on purpose, 2 or more is a real failure.
probe_to() {
	local out=$1 rc=0
	shift
	"$BIN" -c "$CONF" probe "$@" >"$out" || rc=$?
	if [ "$rc" -gt 1 ]; then
		echo "demo.sh: mailcanary probe $* exited $rc" >&2
		exit 1
	fi
}

section "One result as JSON: mailcanary -c $CONF probe --json defer432 | python3 -m json.tool"
probe_to "$DEMO_DIR/defer432.json" --json defer432
python3 -m json.tool "$DEMO_DIR/defer432.json"

section "SMTP dialogue of the smarthost probe: mailcanary probe --transcript smarthost"
probe_to "$DEMO_DIR/smarthost.txt" --transcript smarthost
# The SMTP commands (>) and replies (<) only; curl's TLS notes (*) are left out here.
grep -E '^ +\+[0-9.]+ [<>]' "$DEMO_DIR/smarthost.txt" | sed 's/^ *//' |
	grep -vE '< 250-(PIPELINING|SIZE|VRFY|ETRN|DSN|SMTPUTF8|8BITMIME|ENHANCEDSTATUSCODES)' || true
echo "(the AUTH exchange is redacted: no password in the output, the detail log or any transcript)"

section "The monitor itself: mailcanary -c $CONF run, for 14 seconds"
echo "(every seed is due every 10 s; deferrals are retried after 2 s and 4 s, or when the"
echo " server says; retries pending from the round above are taken over from the journal)"
"$BIN" -c "$CONF" run 2>"$DEMO_DIR/daemon.log" &
daemon_pid=$!
sleep 14
kill -TERM "$daemon_pid"
drc=0
wait "$daemon_pid" || drc=$?
daemon_pid=
sed -n 's/^mailcanary: [a-z]*: //p' "$DEMO_DIR/daemon.log" |
	grep -E 'event=(start|stopping|exit)|event=(first|attempt|retry|readback).*seed=(greylist-real|seed-a|defer432) ' |
	sed -E 's/ probe=[0-9a-f]{24}([0-9a-f]{8})/ probe=…\1/' || true
echo "(log lines for three of the seeds, probe ids shortened to their last 8 digits; all of them: $DEMO_DIR/daemon.log)"
if [ "$drc" -ne 0 ]; then
	echo "demo.sh: mailcanary run exited $drc on SIGTERM" >&2
	exit 1
fi
python3 - "$DEMO_DIR/state/results.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
g = [r for r in rows if r["seed"] == "greylist-real" and r["smtp"]["outcome"] == "accepted" and len(r["smtp"]["attempts"]) > 1]
if g:
    r = g[0]
    print("greylist-real: accepted after %.1f s at attempt %d (the first %s %s %s)" % (
        r["smtp"]["accepted_after_s"], len(r["smtp"]["attempts"]), r["smtp"]["attempts"][0]["outcome"],
        r["smtp"]["attempts"][0]["code"], r["smtp"]["attempts"][0]["enhanced"]))
else:
    print("NOTE: greylist-real was not retried to acceptance in this run")
EOF

section "Detail log"
echo "$DEMO_DIR/state/results.jsonl: $(wc -l <"$DEMO_DIR/state/results.jsonl") lines, one JSON result per decided attempt"
echo "RRD files, one per seed (vantage \"demo\"), fed with every final result:" \
	"$(cd "$DEMO_DIR/state/rrd" && find . -name '*.rrd' | sed 's|^\./||' | sort | tr '\n' ' ')"

section "The latest result per seed: mailcanary -c $CONF status"
COLUMNS=110 "$BIN" -c "$CONF" status || true
echo "(exit status 1: some seeds' latest result is a problem, on purpose)"

section "The Nagios/Icinga plugin: mailcanary -c $CONF check SEED"
for s in seed-a sink-432 policy; do
	out=$("$BIN" -c "$CONF" check "$s" --warn-latency 30 --crit-latency 120) && rc=0 || rc=$?
	printf '%s\n' "$out" | cut -c1-160
	echo "(exit $rc: $(case $rc in 0) echo OK;; 1) echo WARNING;; 2) echo CRITICAL;; *) echo UNKNOWN;; esac))"
done

section "Graphs and the dashboard: mailcanary -c $CONF graph --out $DEMO_DIR/www --period 1d"
if "$BIN" -c "$CONF" graph --out "$DEMO_DIR/www" --period 1d; then
	echo "dashboard: $DEMO_DIR/www/index.html, $(find "$DEMO_DIR/www" -name '*.png' | wc -l) PNG graphs" \
		"(stage latency, delivery, outcomes, retries per seed), one page per seed, no JavaScript"
else
	echo "NOTE: graph reported a problem (above)"
fi

section "Trust checks of the sending side: mailcanary -c $CONF dns seed-a"
"$BIN" -c "$CONF" dns seed-a || true
ok=1
if [ "$keep" != 1 ]; then
	echo "(removed at the end of the demo; run 'scripts/demo.sh --keep' to keep the lab, the config and this log)"
fi
