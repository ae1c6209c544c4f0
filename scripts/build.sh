#!/usr/bin/env bash
# Configure and build mailcanary. Usage: scripts/build.sh [plain|asan|clang|fuzz] (default plain)
# Build trees: build/ (plain), build-asan/ (AddressSanitizer + UBSan), build-clang/.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-plain}
jobs=$(nproc 2>/dev/null || echo 2)
case "$kind" in
  plain) dir=build; args=() ;;
  asan)  dir=build-asan; args=(-DMON_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug) ;;
  clang) dir=build-clang; args=(-DCMAKE_C_COMPILER=clang) ;;
  fuzz)  dir=build-fuzz; args=(-DCMAKE_C_COMPILER=clang -DMON_FUZZ=ON -DMON_SANITIZE=address,undefined) ;;
  *) echo "usage: $0 [plain|asan|clang|fuzz]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON "${args[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"
echo "build: $dir/cli/mailcanary"
