#!/usr/bin/env bash
# Sets up the machine, builds with warnings as errors, runs every unit and integration test
# and a one-minute soak, then the tests again under AddressSanitizer + UBSan, the
# multi-worker tests and the controller's unit tests under ThreadSanitizer, then each
# libFuzzer target briefly.
# STRAIT_ASAN=0, STRAIT_TSAN=0 and STRAIT_SOAK_MINUTES=0 skip those stages;
# STRAIT_FUZZ_SECONDS=0 skips the fuzzers (default 5 s per target).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
stage() { echo "=== $1 ($((SECONDS - started)) s since start)"; }
stage setup
bash scripts/setup.sh
python3 scripts/check_layers.py
jobs=$(nproc)
# Line tables only (-g1): sanitizer reports and backtraces keep file and line, and the
# builds take less time than with full debug info (the setting stays in build/dev and
# build/asan until they are configured again).
stage "dev build"
cmake --preset dev -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
# What the tests run; the bench load generators are built by the release preset.
test_targets=(strait_unit_tests strait-agent strait-controller straitctl)
cmake --build --preset dev -j"$jobs" --target "${test_targets[@]}"
stage "dev tests"
ctest --preset dev -j2
soak_minutes=${STRAIT_SOAK_MINUTES:-1}
if [ "$soak_minutes" != 0 ]; then
  stage "soak"
  (cd bench && python3 soak.py --minutes "$soak_minutes" --agent ../build/dev/agent/strait-agent)
fi
if [ "${STRAIT_ASAN:-1}" != 0 ]; then
  stage "asan build"
  cmake --preset asan -DCMAKE_CXX_FLAGS_DEBUG="-g1"
  cmake --build --preset asan -j"$jobs" --target "${test_targets[@]}"
  stage "asan tests"
  ctest --preset asan -j2
fi
if [ "${STRAIT_TSAN:-1}" != 0 ]; then
  stage "tsan build"
  cmake --preset tsan
  # Only what the ThreadSanitizer tests run: the unit tests and the agent.
  cmake --build --preset tsan -j"$jobs" --target strait_unit_tests strait-agent
  stage "tsan tests"
  # Debian's gRPC is not built with ThreadSanitizer, whose reports inside it are noise: the
  # controller's gRPC paths are covered by the ASan stage, the multi-worker agent paths here.
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" ctest --preset tsan -j2
fi
fuzz_seconds=${STRAIT_FUZZ_SECONDS:-5}
if [ "$fuzz_seconds" != 0 ]; then
  stage "fuzz"
  bash scripts/run_fuzzers.sh "$fuzz_seconds"
fi
stage "done"
