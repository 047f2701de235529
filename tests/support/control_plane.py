"""A controller, straitctl and controlled agents for integration tests, on loopback with
kernel-chosen ports. Binaries: $STRAIT_CONTROLLER and $STRAITCTL (default build/dev/...)."""

import json
import os
import time
import urllib.request
from pathlib import Path

import strait_test as st


def _binary(variable: str, default: str) -> Path:
    path = Path(os.environ.get(variable, default))
    return path if path.is_absolute() else st.REPO_ROOT / path


def controller_path() -> Path:
    return _binary("STRAIT_CONTROLLER", "build/dev/controller/strait-controller")


def straitctl_path() -> Path:
    return _binary("STRAITCTL", "build/dev/controller/straitctl")


CURL_TIMEOUT = "10"


def curl_via(proxy_port: int, url: str) -> bytes:
    """`url` fetched with curl through the HTTP proxy on `proxy_port`."""
    result = st.run(["curl", "-sS", "--max-time", CURL_TIMEOUT, "-x", f"http://127.0.0.1:{proxy_port}", url])
    if result.returncode != 0:
        raise AssertionError(f"curl via :{proxy_port} failed: {result.stderr.decode()}")
    return result.stdout


class ControlPlane:
    """One strait-controller with its data dir under the test's temp dir."""

    def __init__(self, case: st.StraitTestCase, name: str = "controller", extra_args=(), ca_dir=None,
                 bootstrap_token_file=None, admin_token_file=None):
        """`ca_dir`, `bootstrap_token_file`, `admin_token_file`: given to the controller as
        Kubernetes mounts them (and as replicas share them), instead of the ones it makes in
        its data dir."""
        self.case = case
        self.ca_dir = ca_dir
        self.bootstrap_token_file = bootstrap_token_file
        self._admin_token_file = admin_token_file
        if admin_token_file:
            extra_args = ["--admin-token-file", admin_token_file, *extra_args]
        if ca_dir:
            extra_args = ["--ca-dir", ca_dir, *extra_args]
        if bootstrap_token_file:
            extra_args = ["--bootstrap-token-file", bootstrap_token_file, *extra_args]
        # The bootstrap token may grant any role, as an operator's first token often does.
        self.extra_args = ["--bootstrap-token-labels", "role=*", *extra_args]
        self.data_dir = case.tmp / f"{name}-data"
        self.agent_port = st.free_port()
        self.admin_port = st.free_port()
        self.http_port = st.free_port()
        self.name = name
        self.process = None
        self.start()

    def start(self):
        self.process = self.case.start_process(
            [controller_path(), "--data-dir", self.data_dir, "--listen-agents", f"127.0.0.1:{self.agent_port}",
             "--listen-admin", f"127.0.0.1:{self.admin_port}", "--listen-http", f"127.0.0.1:{self.http_port}",
             *self.extra_args],
            name=self.name)
        for port in (self.http_port, self.admin_port, self.agent_port):
            self.process.wait_tcp(port)
        return self.process

    def stop(self, kill: bool = False):
        if kill:
            self.process.popen.kill()
            self.process.popen.wait(5)
        else:
            self.process.stop()

    @property
    def ca_file(self) -> Path:
        return Path(self.ca_dir or self.data_dir) / "ca.pem"

    @property
    def admin_token_file(self) -> Path:
        return Path(self._admin_token_file or self.data_dir / "admin.token")

    @property
    def join_token_file(self) -> Path:
        return Path(self.bootstrap_token_file or self.data_dir / "join.token")

    def ctl(self, *args, input_text: str = None, token_file=None, check: bool = True):
        """Runs straitctl against this controller; returns the CompletedProcess (text)."""
        argv = [straitctl_path(), "--controller", f"127.0.0.1:{self.admin_port}", "--ca-file", self.ca_file,
                "--token-file", token_file or self.admin_token_file, *args]
        env = dict(os.environ, STRAIT_CONFIG=str(self.case.tmp / "no-ctl-config.yaml"),
                   LSAN_OPTIONS=f"suppressions={st.REPO_ROOT / 'tests' / 'lsan_straitctl.supp'}:print_suppressions=0")
        result = st.run(argv, input=input_text.encode() if input_text is not None else None, env=env)
        result.stdout = result.stdout.decode("utf-8", "replace")
        result.stderr = result.stderr.decode("utf-8", "replace")
        if check and result.returncode != 0:
            raise AssertionError(f"straitctl {' '.join(map(str, args))} failed ({result.returncode}):\n"
                                 f"{result.stdout}{result.stderr}\n{self.process.describe()}")
        return result

    def apply(self, yaml_text: str) -> str:
        return self.ctl("apply", "-f", "-", input_text=yaml_text).stdout

    def agents(self) -> dict:
        """Agent id -> its AgentInfo as straitctl prints it in JSON."""
        data = json.loads(self.ctl("agents", "-o", "json").stdout or "{}")
        return {agent["id"]: agent for agent in data.get("agents", [])}

    def create_token(self, *args) -> Path:
        """A join token made with straitctl (`args`: --ttl, --labels ...), in a file."""
        token = self.ctl("token", "create", *args).stdout.strip()
        path = self.case.tmp / f"token-{token.split('_')[1]}"
        path.write_text(token + "\n")
        return path

    def metric(self, name: str) -> float:
        """One sample of the controller's /metrics, e.g. 'strait_controller_refusals_total{reason="revoked"}'."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=st.IO_TIMEOUT) as response:
            text = response.read().decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        raise AssertionError(f"no metric {name} in:\n{text}")

    def wait_in_sync(self, agent_id: str, timeout: float = st.READY_TIMEOUT) -> dict:
        """Waits until the agent has ACKed the last snapshot sent to it; returns its info."""
        def in_sync():
            agent = self.agents().get(agent_id)
            if agent and agent.get("connected") and agent.get("desiredVersion") and \
                    agent.get("appliedVersion") == agent.get("desiredVersion"):
                return agent
            return None
        return st.wait_until(in_sync, timeout, interval=0.05, what=f"agent {agent_id} in sync")

    def start_agent(self, agent_id: str, labels: str = "", state_dir=None, extra=(), join_token_file=None,
                    name: str = None):
        state_dir = state_dir or self.case.tmp / f"state-{agent_id}"
        argv = ["--controller", f"127.0.0.1:{self.agent_port}", "--join-token-file",
                join_token_file or self.join_token_file, "--ca-file", self.ca_file, "--agent-id", agent_id,
                "--state-dir", state_dir]
        if labels:
            argv += ["--labels", labels]
        return self.case.start_agent(*argv, *extra, name=name or agent_id)


def service_yaml(name: str, port: int, handler: str = "http", placement: str = "", chain: str = "",
                 extra_spec: str = "") -> str:
    meta = f"{{name: {name}" + (f", placement: {{{placement}}}" if placement else "") + "}"
    chain_part = f", chain: {chain}" if chain else ""
    return (f"kind: Service\nmetadata: {meta}\n"
            f"spec: {{addr: \"127.0.0.1:{port}\", handler: {{type: {handler}{chain_part}}}, listener: {{type: tcp}}"
            f"{extra_spec}}}\n")


def forward_yaml(name: str, port: int, target: str, placement: str = "") -> str:
    return service_yaml(name, port, handler="tcp", placement=placement,
                        extra_spec=f", forwarder: {{nodes: [{{name: t0, addr: \"{target}\"}}]}}")
