#!/usr/bin/env bash
# Sets up the machine, builds with warnings as errors, runs every unit and integration test,
# then the same tests under AddressSanitizer + UBSan, then each libFuzzer target briefly.
# STRAIT_ASAN=0 skips the sanitizer stage; STRAIT_FUZZ_SECONDS=0 skips the fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)
cmake --preset dev
cmake --build --preset dev -j"$jobs"
ctest --preset dev -j2
if [ "${STRAIT_ASAN:-1}" != 0 ]; then
  cmake --preset asan
  cmake --build --preset asan -j"$jobs"
  ctest --preset asan -j2
fi
fuzz_seconds=${STRAIT_FUZZ_SECONDS:-30}
if [ "$fuzz_seconds" != 0 ]; then
  bash scripts/run_fuzzers.sh "$fuzz_seconds"
fi
