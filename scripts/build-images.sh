#!/usr/bin/env bash
# Builds two container images from scratch (no base image, no shell) with buildah:
#   strait-controller  strait-controller and straitctl; data (store, CA, tokens) in the
#                      volume /var/lib/strait-controller; ports 7770 (agents), 7771 (admin
#                      API), 7772 (/metrics /healthz /readyz)
#   strait-agent       strait-agent; its certificate and snapshot in the volume
#                      /var/lib/strait-agent; no port exposed (its services choose them)
# Each holds the release binaries, exactly the shared libraries they load (from ldd) and the
# dynamic loader, the few files glibc reads (nsswitch.conf, passwd/group with the user
# nonroot 65532), CA certificates in the agent only (it verifies upstream TLS hops with the
# system roots); it runs as 65532:65532.
#
# Usage: build-images.sh [--build-dir DIR] [--tag TAG] [--push REGISTRY] [--oci-archive DIR]
#   --build-dir    where the binaries are (default build/release; build it first)
#   --tag          image tag (default: the project version); images are localhost/NAME:TAG
#   --push         also push to REGISTRY/NAME:TAG (e.g. registry.example.net/strait)
#   --oci-archive  also write DIR/NAME-TAG.oci.tar
# Needs root and buildah (apt-get install buildah).
set -euo pipefail
umask 022

repo="$(cd "$(dirname "$0")/.." && pwd)"
build_dir="$repo/build/release"
tag=""
push=""
archive_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir="${2:?--build-dir needs a directory}"; shift 2 ;;
    --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
    --push) push="${2:?--push needs a registry}"; shift 2 ;;
    --oci-archive) archive_dir="${2:?--oci-archive needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-images.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

fail() { echo "build-images.sh: $*" >&2; exit 1; }
command -v buildah > /dev/null || fail "buildah is not installed (apt-get install -y buildah)"
[ "$(id -u)" = 0 ] || fail "run as root (buildah mount needs it)"

version="$(sed -n 's/^project(strait VERSION \([0-9][0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")"
tag="${tag:-$version}"
revision="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
created="$(git -C "$repo" log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)"
arch="$(dpkg --print-architecture 2>/dev/null || uname -m)"
agent="$build_dir/agent/strait-agent"
controller="$build_dir/controller/strait-controller"
ctl="$build_dir/controller/straitctl"
for binary in "$agent" "$controller" "$ctl"; do
  [ -x "$binary" ] || fail "no $binary: build the release preset first"
done

containers=()
cleanup() {
  local container
  for container in "${containers[@]}"; do
    buildah rm "$container" > /dev/null 2>&1 || true
  done
}
trap cleanup EXIT

# Copies one path of the host into the image at the same place, as the loader will look it
# up: the file itself at its real path, plus a link where the path named a symlink (a
# soname link, /lib64/ld-linux-x86-64.so.2).
copy_host_path() {
  local root="$1" path="$2"
  local real dir
  real="$(realpath "$path")"
  dir="$(realpath "$(dirname "$path")")"
  mkdir -p "$root$(dirname "$real")"
  cp -L --preserve=mode "$real" "$root$real"
  if [ "$dir/$(basename "$path")" != "$real" ]; then
    mkdir -p "$root$dir"
    ln -sfr "$root$real" "$root$dir/$(basename "$path")"
  fi
}

# Every library ldd resolves for the binaries, and the loader; a library ldd cannot find
# fails the build rather than the container at start.
copy_libraries() {
  local root="$1"
  shift
  local listing
  listing="$(ldd "$@")"
  if grep -q "not found" <<< "$listing"; then
    fail "missing libraries: $(grep "not found" <<< "$listing" | tr -s ' \t' ' ')"
  fi
  local path
  # "name => /path (addr)" and "/lib64/ld-linux-x86-64.so.2 (addr)"; linux-vdso has no file,
  # and "/path/of/binary:" heads the list of each binary when there are several.
  for path in $(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(0x/ {print $1}' <<< "$listing" | sort -u); do
    copy_host_path "$root" "$path"
  done
}

# The root filesystem every image shares: Debian's merged-/usr links (the binaries' loader
# path is /lib64/...), a sticky /tmp and deploy/images/rootfs/etc (the nonroot user, name
# service files).
base_layout() {
  local root="$1" data_dir="$2"
  mkdir -p "$root/usr/bin" "$root/usr/lib" "$root/usr/lib64" "$root/usr/local/bin" "$root/etc" "$root/tmp"
  ln -s usr/bin "$root/bin"
  ln -s usr/lib "$root/lib"
  ln -s usr/lib64 "$root/lib64"
  chmod 1777 "$root/tmp"
  install -m 0644 "$repo"/deploy/images/rootfs/etc/* "$root/etc/"
  mkdir -p "$root$data_dir"
  chown 65532:65532 "$root$data_dir"
  chmod 0700 "$root$data_dir"
}

# Configures and commits one working container; prints the image name.
commit_image() {
  local container="$1" name="$2" title="$3" description="$4"
  shift 4
  buildah config --user 65532:65532 --os linux --arch "$arch" \
    --label "org.opencontainers.image.title=$title" \
    --label "org.opencontainers.image.description=$description" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$revision" \
    --label "org.opencontainers.image.created=$created" \
    --label "org.opencontainers.image.vendor=Strait" \
    --label "org.opencontainers.image.base.name=scratch" \
    "$@" "$container"
  local previous
  previous="$(buildah images --noheading --format '{{.ID}}' "localhost/$name:$tag" 2> /dev/null || true)"
  local committed
  committed="$(buildah commit --quiet --rm "$container" "localhost/$name:$tag")"
  # A rebuild under the same tag would leave the previous image behind, nameless.
  if [ -n "$previous" ] && [[ "$committed" != "$previous"* ]]; then
    buildah rmi "$previous" > /dev/null 2>&1 || true
  fi
}

# A new working container from scratch with the shared layout and its data dir, mounted:
# sets $container and $root for the caller.
start_image() {
  container="$(buildah from scratch)"
  containers+=("$container")
  root="$(buildah mount "$container")"
  base_layout "$root" "$1"
}

build_controller() {
  local container root
  start_image /var/lib/strait-controller
  install -m 0755 "$controller" "$ctl" "$root/usr/local/bin/"
  copy_libraries "$root" "$controller" "$ctl"
  buildah unmount "$container" > /dev/null
  # Arguments given to the container replace the command's --data-dir; the working
  # directory keeps the default data dir (./strait-data) in the volume even then.
  commit_image "$container" strait-controller strait-controller \
    "Strait fleet controller (store, CA, agent and admin gRPC APIs) with straitctl" \
    --entrypoint '["/usr/local/bin/strait-controller"]' --cmd '--data-dir /var/lib/strait-controller' \
    --workingdir /var/lib/strait-controller --volume /var/lib/strait-controller \
    --port 7770/tcp --port 7771/tcp --port 7772/tcp
}

build_agent() {
  local container root
  start_image /var/lib/strait-agent
  install -m 0755 "$agent" "$root/usr/local/bin/"
  copy_libraries "$root" "$agent"
  # OpenSSL's default verify paths (SSL_CTX_set_default_verify_paths) are
  # /usr/lib/ssl/cert.pem and /usr/lib/ssl/certs, links into /etc/ssl/certs on Debian.
  local bundle=/etc/ssl/certs/ca-certificates.crt
  [ -f "$bundle" ] || fail "no $bundle (apt-get install ca-certificates)"
  mkdir -p "$root/etc/ssl/certs" "$root/usr/lib/ssl"
  install -m 0644 "$bundle" "$root$bundle"
  ln -s "$bundle" "$root/usr/lib/ssl/cert.pem"
  ln -s /etc/ssl/certs "$root/usr/lib/ssl/certs"
  buildah unmount "$container" > /dev/null
  commit_image "$container" strait-agent strait-agent \
    "Strait agent: GOST-compatible proxy, forward and tunnel services, standalone or fleet-controlled" \
    --entrypoint '["/usr/local/bin/strait-agent"]' --workingdir / --volume /var/lib/strait-agent
}

for image in strait-controller strait-agent; do
  started=$SECONDS
  if [ "$image" = strait-controller ]; then build_controller; else build_agent; fi
  size="$(buildah images --noheading --format '{{.Size}}' "localhost/$image:$tag" | head -n 1)"
  echo "localhost/$image:$tag $size ($((SECONDS - started)) s)"
  if [ -n "$archive_dir" ]; then
    mkdir -p "$archive_dir"
    buildah push --quiet "localhost/$image:$tag" "oci-archive:$archive_dir/$image-$tag.oci.tar:$image:$tag"
    echo "  $archive_dir/$image-$tag.oci.tar"
  fi
  if [ -n "$push" ]; then
    buildah push --quiet "localhost/$image:$tag" "docker://${push%/}/$image:$tag"
    echo "  pushed ${push%/}/$image:$tag"
  fi
done
