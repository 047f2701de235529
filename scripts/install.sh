#!/usr/bin/env bash
# Installs strait-agent, strait-controller and straitctl with their systemd units:
#   binaries      -> PREFIX/bin (default /usr/local/bin)
#   units         -> /etc/systemd/system (ExecStart follows PREFIX)
#   env files     -> /etc/strait/agent.env, controller.env (from the examples; an existing
#                    file is never touched)
# and nothing else: no user (the units use DynamicUser=), no enabled or started unit.
# `systemctl daemon-reload` runs only when systemd is running and --root is /.
#
# Where it takes the files from:
#   - run from an unpacked release tarball (bin/ and systemd/ beside this script): from there;
#   - --tarball FILE: from that tarball (scripts/package.sh makes it);
#   - in the source tree: binaries from --build-dir (default build/release), units from
#     deploy/systemd.
#
# Usage: install.sh [--build-dir DIR | --tarball FILE] [--prefix DIR] [--root DIR] [--dry-run]
set -euo pipefail
# Directories 0755 and files as each install line says, whatever the caller's umask.
umask 022

here="$(cd "$(dirname "$0")" && pwd)"
build_dir=""
tarball=""
prefix="/usr/local"
root="/"
dry_run=0

usage() {
  # The header comment above is the help text.
  sed -n '2,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir="${2:?--build-dir needs a directory}"; shift 2 ;;
    --tarball) tarball="${2:?--tarball needs a file}"; shift 2 ;;
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --root) root="${2:?--root needs a directory}"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; usage 2 >&2 ;;
  esac
done

fail() { echo "install.sh: $*" >&2; exit 1; }

case "$prefix" in /*) ;; *) fail "--prefix must be an absolute path: $prefix" ;; esac
prefix="${prefix%/}"
[ -n "$prefix" ] || fail "--prefix / would put the binaries in /bin; give /usr instead"
case "$root" in /*) ;; *) root="$(pwd)/$root" ;; esac
root="${root%/}"  # "" is the real root

temporary=()
trap 'rm -rf "${temporary[@]}"' EXIT
declare -A binary
if [ -n "$tarball" ]; then
  [ -f "$tarball" ] || fail "no tarball at $tarball"
  unpacked="$(mktemp -d)"
  temporary+=("$unpacked")
  tar -xzf "$tarball" -C "$unpacked"
  top="$(find "$unpacked" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
  [ -n "$top" ] && [ -d "$top/bin" ] || fail "$tarball is not a strait release tarball (no bin/)"
  for name in strait-agent strait-controller straitctl; do binary[$name]="$top/bin/$name"; done
  units="$top/systemd"
elif [ -z "$build_dir" ] && [ -d "$here/bin" ] && [ -d "$here/systemd" ]; then
  for name in strait-agent strait-controller straitctl; do binary[$name]="$here/bin/$name"; done
  units="$here/systemd"
else
  repo="$(cd "$here/.." && pwd)"
  build_dir="${build_dir:-$repo/build/release}"
  [ -d "$build_dir" ] || fail "no build dir $build_dir: cmake --preset release && cmake --build --preset release"
  binary[strait-agent]="$build_dir/agent/strait-agent"
  binary[strait-controller]="$build_dir/controller/strait-controller"
  binary[straitctl]="$build_dir/controller/straitctl"
  units="$repo/deploy/systemd"
fi

for name in strait-agent strait-controller straitctl; do
  [ -x "${binary[$name]}" ] || fail "no ${binary[$name]}: build it (cmake --build --preset release) or give --tarball"
done

# Every change goes through here, so --dry-run prints exactly what a real run would do.
run() {
  if [ "$dry_run" = 1 ]; then
    echo "would run: $*"
  else
    "$@"
  fi
}

# Copies beside the target, then renames over it: a running binary is replaced, not
# rewritten under the process (which would fail with "text file busy").
install_file() {
  local mode="$1" source="$2" target="$3"
  echo "install $target"
  run install -m "$mode" "$source" "$target.new"
  run mv -f "$target.new" "$target"
}

bindir="$root$prefix/bin"
unitdir="$root/etc/systemd/system"
confdir="$root/etc/strait"
run mkdir -p "$bindir" "$unitdir" "$confdir"

for name in strait-agent strait-controller straitctl; do
  install_file 0755 "${binary[$name]}" "$bindir/$name"
done

staged="$(mktemp -d)"
temporary+=("$staged")
for unit in strait-agent.service strait-agent@.service strait-controller.service; do
  [ -f "$units/$unit" ] || fail "no unit $units/$unit"
  # The units name /usr/local/bin; another prefix is written into the installed copy.
  sed "s|/usr/local/bin/|$prefix/bin/|g" "$units/$unit" > "$staged/$unit"
  install_file 0644 "$staged/$unit" "$unitdir/$unit"
done

for name in agent controller; do
  target="$confdir/$name.env"
  if [ -e "$target" ]; then
    echo "keep $target (exists)"
  else
    # Mode 0600: extra flags may carry passwords (-L user:pass@...); only systemd reads it.
    install_file 0600 "$units/$name.env.example" "$target"
  fi
done

if [ -z "$root" ] && [ -d /run/systemd/system ]; then
  run systemctl daemon-reload
else
  echo "systemd is not running here (or --root is set): no daemon-reload"
fi

cat <<EOF
Installed. Next:
  controller: edit /etc/strait/controller.env, then systemctl enable --now strait-controller
  agent:      edit /etc/strait/agent.env, put the join token in /etc/strait/join.token (mode 0600),
              then systemctl enable --now strait-agent (or strait-agent@NAME with agent-NAME.env)
EOF
