#!/usr/bin/env bash
# Packs a release build into build/dist/:
#   strait-<version>-linux-<arch>.tar.gz  bin/ (stripped binaries), systemd/ (units and env
#                                         examples), install.sh, README.md, docs/
#   strait_<version>_<arch>.deb           the same through CPack, Depends from dpkg-shlibdeps
#                                         (skipped with --no-deb or without dpkg-shlibdeps)
# It builds nothing: build first, e.g.
#   cmake --preset release && cmake --build --preset release --target strait-agent strait-controller straitctl
#
# Usage: package.sh [--build-dir DIR] [--out DIR] [--no-deb]
set -euo pipefail
umask 022

repo="$(cd "$(dirname "$0")/.." && pwd)"
build_dir="$repo/build/release"
out="$repo/build/dist"
deb=1

while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir="${2:?--build-dir needs a directory}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --no-deb) deb=0; shift ;;
    -h|--help) sed -n '2,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

fail() { echo "package.sh: $*" >&2; exit 1; }

build_dir="$(cd "$build_dir" 2>/dev/null && pwd)" || fail "no build dir: build the release preset first"
version="$(sed -n 's/^project(strait VERSION \([0-9][0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")"
[ -n "$version" ] || fail "no project(strait VERSION ...) in CMakeLists.txt"
# Debian's names (amd64, arm64), as the .deb and container images have them.
arch="$(dpkg --print-architecture 2>/dev/null || uname -m)"

declare -A binary=(
  [strait-agent]="$build_dir/agent/strait-agent"
  [strait-controller]="$build_dir/controller/strait-controller"
  [straitctl]="$build_dir/controller/straitctl"
)
for name in "${!binary[@]}"; do
  [ -x "${binary[$name]}" ] || fail "no ${binary[$name]}: build it first"
done
# The binaries carry their own version string: a package named for another is refused.
for name in strait-agent strait-controller; do
  reported="$("${binary[$name]}" -V | awk '{print $2}')"
  [ "$reported" = "$version" ] || fail "$name says version $reported, CMakeLists.txt says $version"
done

name="strait-$version-linux-$arch"
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
top="$staging/$name"
mkdir -p "$top/bin" "$top/systemd" "$top/docs" "$out"
for program in strait-agent strait-controller straitctl; do
  install -m 0755 "${binary[$program]}" "$top/bin/$program"
  # A no-op on the release preset's binaries (linked with -s); others get stripped here.
  if [ "$(head -c 4 "$top/bin/$program")" = $'\x7fELF' ]; then strip --strip-unneeded "$top/bin/$program"; fi
done
install -m 0644 "$repo"/deploy/systemd/*.service "$repo"/deploy/systemd/*.env.example "$top/systemd/"
install -m 0755 "$repo/scripts/install.sh" "$top/install.sh"
install -m 0644 "$repo/README.md" "$top/README.md"
install -m 0644 "$repo"/docs/*.md "$top/docs/"

# Same bytes for the same commit: fixed owner, order and times (the last commit's).
mtime="$(git -C "$repo" log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)"
tarball="$out/$name.tar.gz"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$mtime" -C "$staging" -cf - "$name" |
  gzip -n -9 > "$tarball"
echo "$tarball $(du -h "$tarball" | cut -f1)"

if [ "$deb" = 1 ]; then
  if ! command -v dpkg-shlibdeps > /dev/null; then
    echo "package.sh: no dpkg-shlibdeps (apt-get install dpkg-dev): no .deb" >&2
  elif [ ! -f "$build_dir/CPackConfig.cmake" ]; then
    echo "package.sh: $build_dir has no CPackConfig.cmake (configure it again): no .deb" >&2
  else
    cpack -G DEB --config "$build_dir/CPackConfig.cmake" -B "$staging/cpack" > "$staging/cpack.log" 2>&1 ||
      { cat "$staging/cpack.log" >&2; fail "cpack failed"; }
    for package in "$staging"/cpack/*.deb; do
      mv "$package" "$out/"
      echo "$out/$(basename "$package") $(du -h "$out/$(basename "$package")" | cut -f1)"
    done
  fi
fi
