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
# bench/daemon.sh runs the scheduler benchmark through this same wrapper
script=${MC_BENCH_SCRIPT:-bench/bench.py}
name=${MC_BENCH_NAME:-run.sh}

if [ "$(id -u)" != 0 ]; then
  echo "$name: run as root" >&2
  exit 2
fi
bin=${MAILCANARY_BIN:-build/cli/mailcanary}
if [ ! -x "$bin" ]; then
  echo "$name: no $bin; building it with scripts/build.sh" >&2
  bash scripts/build.sh >&2
fi

work=$(mktemp -d /tmp/mcbench-XXXXXX)
chmod 755 "$work"          # Postfix and nobody must traverse it
pid=
cleanup() {
  # bench.py stops its servers itself; this catches what a killed run left behind
  python3 "$script" --cleanup "$work" >/dev/null 2>&1 || true
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
timeout -k 10 470 python3 "$script" --workdir "$work" --bin "$bin" --command "bench/$name $*" "$@" &
pid=$!
rc=0
wait "$pid" || rc=$?
pid=
if [ "$rc" = 124 ]; then
  echo "$name: stopped after 470 s (the benchmark must finish in under 8 minutes)" >&2
fi
exit "$rc"
