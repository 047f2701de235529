#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a while on a scratch copy of its
# seed corpus. Usage: scripts/run_fuzzers.sh [seconds per target, default 30]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j2 --target gost_url_fuzz http_request_fuzz config_text_fuzz \
  socks5_server_fuzz socks4_request_fuzz socks_udp_fuzz resource_yaml_fuzz
status=0
for target in gost_url http_request config_text socks5_server socks4_request socks_udp resource_yaml; do
  work=$(mktemp -d)
  cp tests/fuzz/corpus/${target}/* "$work"/
  echo "fuzz: ${target} for ${seconds}s"
  if ! build/fuzz/tests/fuzz/${target}_fuzz -max_total_time="$seconds" -rss_limit_mb=2048 \
      -artifact_prefix="build/fuzz/${target}-" "$work" 2>"build/fuzz/${target}.log"; then
    echo "fuzz: ${target} FAILED, see build/fuzz/${target}.log"; tail -40 "build/fuzz/${target}.log"; status=1
  fi
  grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "build/fuzz/${target}.log" | tail -1 || true
  rm -rf "$work"
done
exit $status
