#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, builds plain (gcc) and with
# AddressSanitizer + UBSan, checks the clang build, and runs every unit and integration test
# (real Postfix, Dovecot, smtp-sink and dnsmasq on loopback, started and stopped by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

bash scripts/install-deps.sh

status=0
run_suite() { # name build-dir
  local name=$1 dir=$2
  echo "=== $name: ctest in $dir"
  if ! (cd "$dir" && ctest --output-on-failure --timeout 900 -j 2); then
    status=1
    echo "=== $name: FAILED"
  fi
}

bash scripts/build.sh plain
run_suite plain build

bash scripts/build.sh clang

bash scripts/build.sh asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite sanitized build-asan

if [ $status -eq 0 ]; then echo "test.sh: all suites passed"; else echo "test.sh: FAILURES (see above)"; fi
exit $status
