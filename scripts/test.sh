#!/usr/bin/env bash
# Sets up the machine, builds with warnings as errors, runs every unit and integration test,
# then each libFuzzer target briefly. STRAIT_FUZZ_SECONDS=0 skips the fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset dev
cmake --build --preset dev -j"$(nproc)"
ctest --preset dev -j2
fuzz_seconds=${STRAIT_FUZZ_SECONDS:-30}
if [ "$fuzz_seconds" != 0 ]; then
  bash scripts/run_fuzzers.sh "$fuzz_seconds"
fi
