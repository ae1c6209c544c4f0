#!/usr/bin/env bash
# mailcanary benchmark: mailcanary vs smtp-source vs swaks (and check_smtp) on one smtp-sink,
# all on 127.0.0.1. See bench/README.md.
#
#   bench/run.sh            measure and print the markdown tables
#   bench/run.sh --write    also overwrite bench/RESULTS.md with the figures
#   options passed on to bench/bench.py: --reps N (default 3), --bin PATH (default
#   $MAILCANARY_BIN or build/cli/mailcanary), --phases plain,source,swaks,tls,inflight,timing
#
# Needs root (a private Postfix smtpd; a packet capture on lo for the stage-timing check),
# smtp-sink/smtp-source/postfix, swaks, monitoring-plugins-basic. Takes 2.5-4 minutes on
# 2 cores; a hard stop at 470 s keeps it under 8 minutes whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "run.sh: run as root (private Postfix, packet capture on lo)" >&2
  exit 2
fi
bin=${MAILCANARY_BIN:-build/cli/mailcanary}
if [ ! -x "$bin" ]; then
  echo "run.sh: no $bin; building it with scripts/build.sh" >&2
  bash scripts/build.sh >&2
fi

work=$(mktemp -d /tmp/mcbench-XXXXXX)
chmod 755 "$work"          # Postfix and nobody must traverse it
pid=
cleanup() {
  # bench.py stops its servers itself; this catches what a killed run left behind
  python3 bench/bench.py --cleanup "$work" >/dev/null 2>&1 || true
  rm -rf "$work"
}
stop() {
  # bench.py turns SIGTERM into an orderly stop (kills the running client, stops the servers)
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  exit "$1"
}
trap cleanup EXIT
trap 'stop 130' INT
trap 'stop 143' TERM

# in the background so that the traps run at once; timeout keeps the run under 8 minutes
timeout -k 10 470 python3 bench/bench.py --workdir "$work" --bin "$bin" --command "bench/run.sh $*" "$@" &
pid=$!
rc=0
wait "$pid" || rc=$?
pid=
if [ "$rc" = 124 ]; then
  echo "run.sh: stopped after 470 s (the benchmark must finish in under 8 minutes)" >&2
fi
exit "$rc"
