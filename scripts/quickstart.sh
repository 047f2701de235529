#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds strait-agent and runs it with a seed topology:
# an HTTP proxy on :8080, a SOCKS5 proxy on :1080 (with UDP) and a TCP forward :8081 -> a local
# demo web page on 127.0.0.1:8000.
# Ctrl-C stops it (SIGINT drains open connections first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)"

demo_dir=$(mktemp -d)
echo "<h1>Hello through Strait</h1>" > "$demo_dir/index.html"
python3 -m http.server 8000 --bind 127.0.0.1 --directory "$demo_dir" >/dev/null 2>&1 &
origin_pid=$!
trap 'kill $origin_pid 2>/dev/null; rm -rf "$demo_dir"' EXIT

cat <<'TRY'

strait-agent is starting with:
  -L http://:8080                      HTTP proxy (CONNECT and plain requests)
  -L socks5://:1080?udp=true           SOCKS5 proxy with UDP ASSOCIATE
  -L tcp://:8081/127.0.0.1:8000        TCP forward to the demo page

Try it from another terminal:
  curl -x http://127.0.0.1:8080 http://127.0.0.1:8000/     # through the HTTP proxy
  curl -p -x http://127.0.0.1:8080 http://127.0.0.1:8000/  # same, tunnelled with CONNECT
  curl --socks5-hostname 127.0.0.1:1080 http://localhost:8000/  # through the SOCKS5 proxy
  curl http://127.0.0.1:8081/                              # through the TCP forward
  build/release/agent/strait-agent -L http://:8080 -L tcp://:8081/127.0.0.1:8000 -O yaml  # as a config file

TRY
build/release/agent/strait-agent -L http://:8080 -L 'socks5://:1080?udp=true' -L tcp://:8081/127.0.0.1:8000
