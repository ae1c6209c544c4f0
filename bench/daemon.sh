#!/usr/bin/env bash
# mailcanary scheduler benchmark: `mailcanary run` with 10,000 seeds on "every 60s" against
# smtp-sink, then smtp-source sending the same messages per second to the same sink.
# See bench/README.md.
#
#   bench/daemon.sh                         10,000 seeds, 1 burst + 4 steady intervals (~7 min)
#   bench/daemon.sh --write                 also write its block into bench/RESULTS.md
#   bench/daemon.sh --seeds 1000 --intervals 2 --write      the scaling run (~4 min)
#   options passed on to bench/daemon.py: --seeds N, --domains N, --interval S, --intervals K,
#   --in-flight N, --ref-intervals K, --swaks-runs N, --no-reference, --bin PATH
#   ($MAILCANARY_BIN or build/cli/mailcanary)
#
# Needs root, smtp-sink/smtp-source (postfix) and swaks. A hard stop at 470 s keeps it under
# 8 minutes whatever happens.
# The root check, the build, the scratch directory, the traps and the hard stop are run.sh's.
exec env MC_BENCH_SCRIPT=bench/daemon.py MC_BENCH_NAME=daemon.sh bash "$(dirname "$0")/run.sh" "$@"
