"""An etcd cluster of Debian's etcd-server on loopback ports for control-plane tests: each
member a process of the test, stopped, killed and started again on the same ports and data."""

import json
import shutil
from pathlib import Path

import strait_test as st

ETCD = shutil.which("etcd")


class EtcdCluster:
    def __init__(self, case: st.StraitTestCase, members: int = 3):
        self.case = case
        self.names = [f"m{i}" for i in range(members)]
        self.client_ports = [st.free_port() for _ in self.names]
        self.peer_ports = [st.free_port() for _ in self.names]
        self.processes = [None] * members
        initial = ",".join(f"{name}=http://127.0.0.1:{port}" for name, port in zip(self.names, self.peer_ports))
        self.argv = []
        for i, name in enumerate(self.names):
            client = f"http://127.0.0.1:{self.client_ports[i]}"
            peer = f"http://127.0.0.1:{self.peer_ports[i]}"
            self.argv.append([ETCD, f"--name={name}", f"--data-dir={case.tmp / ('etcd-' + name)}",
                              f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
                              f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                              f"--initial-cluster={initial}", "--initial-cluster-state=new",
                              "--initial-cluster-token=strait-test", "--logger=zap", "--log-level=warn",
                              # Elections in a second, not the default's several: tests kill leaders.
                              "--heartbeat-interval=50", "--election-timeout=500"])
        for i in range(members):
            self.start(i)
        for i in range(members):
            self.processes[i].wait_tcp(self.client_ports[i])

    @property
    def endpoints(self) -> str:
        return ",".join(f"http://127.0.0.1:{port}" for port in self.client_ports)

    def start(self, index: int):
        self.processes[index] = self.case.start_process(self.argv[index], name=f"etcd-{self.names[index]}")
        return self.processes[index]

    def kill(self, index: int):
        self.processes[index].popen.kill()
        self.processes[index].popen.wait(10)

    def leader(self) -> int:
        """The index of the member that leads now (from etcdctl), or fails the test."""
        def find():
            result = st.run(["etcdctl", f"--endpoints={self.endpoints}", "endpoint", "status", "-w", "json"])
            try:
                statuses = json.loads(result.stdout.decode() or "[]")
            except ValueError:
                return None
            for status in statuses:
                header = status.get("Status", {}).get("header", {})
                if header.get("member_id") and header.get("member_id") == status["Status"].get("leader"):
                    port = int(status["Endpoint"].rsplit(":", 1)[1])
                    return (self.client_ports.index(port),)
            return None
        return st.wait_until(find, what="an etcd leader")[0]


def available() -> bool:
    return ETCD is not None and shutil.which("etcdctl") is not None and Path(ETCD).exists()
