#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a while on a scratch copy of its
# seed corpus. The targets are the tests/fuzz/*_fuzz.cc files, so adding one needs no edit
# here. Usage: scripts/run_fuzzers.sh [seconds per target, default 30]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
targets=()
for source in tests/fuzz/*_fuzz.cc; do targets+=("$(basename "$source" .cc)"); done
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j2 --target "${targets[@]}"
status=0
for target in "${targets[@]}"; do
  name=${target%_fuzz}
  work=$(mktemp -d)
  cp tests/fuzz/corpus/${name}/* "$work"/
  echo "fuzz: ${name} for ${seconds}s"
  if ! build/fuzz/tests/fuzz/${target} -max_total_time="$seconds" -rss_limit_mb=2048 \
      -artifact_prefix="build/fuzz/${name}-" "$work" 2>"build/fuzz/${name}.log"; then
    echo "fuzz: ${name} FAILED, see build/fuzz/${name}.log"; tail -40 "build/fuzz/${name}.log"; status=1
  fi
  grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "build/fuzz/${name}.log" | tail -1 || true
  rm -rf "$work"
done
exit $status
