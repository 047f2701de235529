#!/usr/bin/env bash
# Sets up the machine, builds with warnings as errors under AddressSanitizer + UBSan, runs
# every unit and integration test and a one-minute soak on that build, then the
# multi-worker tests and the controller's unit tests under ThreadSanitizer, then each
# libFuzzer target briefly. One sanitized build runs everything instead of an optimised
# build plus a sanitized one: each build of the tree costs ~10 minutes on two cores.
# (For day-to-day work the dev preset builds optimised: cmake --preset dev, ctest --preset dev.)
# STRAIT_TSAN=0 and STRAIT_SOAK_MINUTES=0 skip those stages;
# STRAIT_FUZZ_SECONDS=0 skips the fuzzers (default 3 s per target).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
stage() { echo "=== $1 ($((SECONDS - started)) s since start)"; }
stage setup
bash scripts/setup.sh
python3 scripts/check_layers.py
jobs=$(nproc)
# Line tables only (-g1): sanitizer reports keep file and line, and the build takes less
# time than with full debug info.
stage "asan build"
cmake --preset asan -DCMAKE_CXX_FLAGS_DEBUG="-g1"
# What the tests run; the bench load generators are built by the release preset.
cmake --build --preset asan -j"$jobs" --target strait_unit_tests strait-agent strait-controller straitctl
stage "tests (ASan+UBSan)"
ctest --preset asan -j2
soak_minutes=${STRAIT_SOAK_MINUTES:-1}
if [ "$soak_minutes" != 0 ]; then
  stage "soak (ASan+UBSan)"
  (cd bench && python3 soak.py --minutes "$soak_minutes" --connections 2000 --agent ../build/asan/agent/strait-agent)
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
fuzz_seconds=${STRAIT_FUZZ_SECONDS:-3}
if [ "$fuzz_seconds" != 0 ]; then
  stage "fuzz"
  bash scripts/run_fuzzers.sh "$fuzz_seconds"
fi
stage "done"
