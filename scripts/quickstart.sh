#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds Strait and runs a small fleet on this host:
# strait-controller with its embedded store, two agents enrolled with join tokens that grant
# them role=edge and role=exit (each gets a certificate from the controller's CA), and the
# demo topology of deploy/demo/fleet.yaml applied with straitctl: an HTTP proxy on the edge
# agent (127.0.0.1:8080) chained through a relay+wss service on the exit agent (127.0.0.1:8420)
# to a demo web page on 127.0.0.1:8000, and a SOCKS5 proxy on the edge (127.0.0.1:1080) chained
# through Shadowsocks over KCP on the exit agent (UDP 127.0.0.1:8338). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)"

bin=build/release
work=$(mktemp -d /tmp/strait-quickstart.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "<h1>Hello through the Strait fleet</h1>" > "$work/index.html"
python3 -m http.server 8000 --bind 127.0.0.1 --directory "$work" >/dev/null 2>&1 &
pids+=($!)

"$bin/controller/strait-controller" --data-dir "$work/controller" --listen-agents 127.0.0.1:7770 \
  --listen-admin 127.0.0.1:7771 --listen-http 127.0.0.1:7772 2>"$work/controller.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/controller/join.token" ] && break; sleep 0.1; done

export STRAIT_CONTROLLER=127.0.0.1:7771 STRAIT_CA_FILE="$work/controller/ca.pem"
export STRAIT_TOKEN_FILE="$work/controller/admin.token"
# One join token per role: an agent enrolled with the edge token can never place itself on
# the exit role, whatever labels it asks for.
for role in edge exit; do
  "$bin/controller/straitctl" token create --ttl 1h --labels "role=$role" --description "demo $role agents" \
    >"$work/$role.token"
  "$bin/agent/strait-agent" --controller 127.0.0.1:7770 --ca-file "$work/controller/ca.pem" \
    --join-token-file "$work/$role.token" --agent-id "$role-1" --labels "role=$role" \
    --state-dir "$work/state-$role" 2>"$work/agent-$role.log" &
  pids+=($!)
done

"$bin/controller/straitctl" apply -f deploy/demo/fleet.yaml
for _ in $(seq 100); do
  in_sync=$("$bin/controller/straitctl" agents | grep -c "in sync" || true)
  [ "$in_sync" -ge 2 ] && break
  sleep 0.1
done
"$bin/controller/straitctl" agents

cat <<TRY

The fleet is up (logs in $work). From another terminal:

  curl -x http://127.0.0.1:8080 http://127.0.0.1:8000/    # edge HTTP proxy -> relay over wss -> exit -> page
  curl -x socks5h://127.0.0.1:1080 http://127.0.0.1:8000/ # edge SOCKS5 -> ss over KCP (UDP) -> exit -> page

  export STRAIT_CONTROLLER=127.0.0.1:7771 STRAIT_CA_FILE=$work/controller/ca.pem
  export STRAIT_TOKEN_FILE=$work/controller/admin.token
  $bin/controller/straitctl get                     # resources
  $bin/controller/straitctl describe service edge-http
  $bin/controller/straitctl agents                  # who runs what, applied versions
  $bin/controller/straitctl token list              # join tokens, what they grant, who used them
  curl -s http://127.0.0.1:7772/metrics | grep strait_controller

Ctrl-C stops the fleet.
TRY
wait "${pids[1]}"
