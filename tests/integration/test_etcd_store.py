"""Three controllers on one etcd cluster (Debian's etcd-server, three members on loopback):
a change applied through one replica reaches agents connected to another, an agent moves to
another replica when its own dies, racing applies through two replicas let one win, the
cluster loses its leader, and etcd goes away entirely and comes back while agents keep
serving."""

import sys
import threading
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import control_plane as cp  # noqa: E402
import etcd_cluster  # noqa: E402
import strait_test as st  # noqa: E402


@unittest.skipUnless(etcd_cluster.available(), "etcd and etcdctl are not installed (apt-get install etcd-server etcd-client)")
class EtcdStoreTest(st.StraitTestCase):
    def setUp(self):
        super().setUp()
        if not cp.controller_path().is_file() or not cp.straitctl_path().is_file():
            self.fail(f"no strait-controller/straitctl at {cp.controller_path()}: build them")
        self.etcd = etcd_cluster.EtcdCluster(self)
        # What replicas share besides the store: the CA and the admin token (mounted Secrets in
        # Kubernetes). The first replica makes them.
        self.shared = self.tmp / "shared"
        self.shared.mkdir()
        self.token_file = self.shared / "join.token"
        self.token_file.write_text("sj_SharedBootstrapTokenOfEveryReplica0123456789\n")
        self.replicas = [self.replica(f"controller-{i}") for i in range(3)]
        self.origin_server = self.origin({"/hello": b"hello through the replicas\n"})
        self.url = f"http://127.0.0.1:{self.origin_server.port}/hello"

    def replica(self, name: str) -> cp.ControlPlane:
        return cp.ControlPlane(self, name=name, ca_dir=self.shared, bootstrap_token_file=self.token_file,
                               admin_token_file=self.shared / "admin.token",
                               extra_args=["--store", "etcd", "--etcd-endpoints", self.etcd.endpoints,
                                           "--replica-name", name, "--coalesce-ms", "5"])

    def start_failover_agent(self, agent_id: str):
        """An agent that knows every replica, the first one first."""
        addresses = ",".join(f"127.0.0.1:{plane.agent_port}" for plane in self.replicas)
        return self.start_agent("--controller", addresses, "--join-token-file", self.token_file,
                                "--ca-file", self.replicas[0].ca_file, "--agent-id", agent_id, "--labels", "role=edge",
                                "--state-dir", self.tmp / f"state-{agent_id}", name=agent_id)

    def test_a_change_through_one_replica_reaches_agents_of_the_others(self):
        first, second, third = self.replicas
        agents = [second.start_agent("edge-1", "role=edge"), third.start_agent("edge-2", "role=edge")]
        st.wait_until(lambda: {"edge-1", "edge-2"} <= set(first.agents()), what="the agents' records on every replica")
        port = st.free_port()
        self.assertIn("service/entry created", first.apply(cp.service_yaml("entry", port)))
        second.wait_in_sync("edge-1")
        third.wait_in_sync("edge-2")
        agents[0].wait_tcp(port)
        self.assertEqual(cp.curl_via(port, self.url), b"hello through the replicas\n")
        # Every replica reads the same resources at the same revision.
        resources = [plane.ctl("get", "-o", "yaml").stdout for plane in self.replicas]
        self.assertEqual(resources[0], resources[1])
        self.assertEqual(resources[0], resources[2])
        # And lists every agent's connection, held by whichever replica: from its presence.
        listed = st.wait_until(lambda: (lambda agents: agents if all(
            agents.get(agent_id, {}).get("appliedVersion") for agent_id in ("edge-1", "edge-2")) else None)(
                first.agents()), what="both agents listed as in sync through the first replica")
        self.assertEqual((listed["edge-1"]["connected"], listed["edge-1"]["controller"]), (True, "controller-1"))
        self.assertEqual((listed["edge-2"]["connected"], listed["edge-2"]["controller"]), (True, "controller-2"))
        self.assertIn("controller-1", first.ctl("agents").stdout)

    def test_an_agent_moves_to_another_replica_when_its_own_dies(self):
        first, second, _ = self.replicas
        port = st.free_port()
        first.apply(cp.service_yaml("entry", port))
        agent = self.start_agent("--controller", f"127.0.0.1:{first.agent_port},127.0.0.1:{second.agent_port}",
                                 "--join-token-file", self.token_file, "--ca-file", first.ca_file,
                                 "--agent-id", "edge-1", "--labels", "role=edge", "--state-dir", self.tmp / "state",
                                 name="edge-1")
        first.wait_in_sync("edge-1")
        agent.wait_tcp(port)
        skipped = second.metric("strait_controller_pushes_skipped_on_connect_total")
        first.stop(kill=True)
        # The other replica has the same resources at the same revision: nothing to push.
        st.wait_until(lambda: second.metric("strait_controller_pushes_skipped_on_connect_total") > skipped,
                      timeout=30, what="the agent on the other replica, holding what it has")
        second.wait_in_sync("edge-1")
        new_port = st.free_port()
        second.apply(cp.service_yaml("entry", new_port))
        agent.wait_tcp(new_port, timeout=30)
        self.assertEqual(cp.curl_via(new_port, self.url), b"hello through the replicas\n")
        # The third replica lists it on the second, though the killed one's entry lingers
        # until its lease runs out.
        st.wait_until(lambda: self.replicas[2].agents()["edge-1"].get("controller") == "controller-1",
                      what="the agent listed on its new replica through the third")

    def test_a_replica_killed_in_the_middle_of_a_push(self):
        first, second, third = self.replicas
        first.apply(cp.service_yaml("entry", st.free_port()))
        agents = [self.start_failover_agent(f"edge-{i}") for i in range(3)]
        for index in range(len(agents)):
            first.wait_in_sync(f"edge-{index}")
        port = st.free_port()
        second.apply(cp.service_yaml("entry", port))
        # The first replica learns of the change from etcd and pushes it to its agents within
        # milliseconds: killed now, some may have it and some not.
        first.stop(kill=True)
        for agent in agents:
            agent.wait_tcp(port, timeout=30)
        self.assertEqual(cp.curl_via(port, self.url), b"hello through the replicas\n")
        # Listed in sync on a live replica (the killed one's entries linger until its lease ends).
        def on_a_live_replica(agent_id):
            info = third.agents().get(agent_id, {})
            return info.get("controller") in ("controller-1", "controller-2") and info.get("connected") and \
                info.get("appliedVersion") == info.get("desiredVersion")
        for index in range(len(agents)):
            st.wait_until(lambda: on_a_live_replica(f"edge-{index}"), timeout=30,
                          what=f"edge-{index} in sync on a live replica")

    def test_racing_applies_through_two_replicas_let_one_win(self):
        first, second, _ = self.replicas
        first.apply(cp.service_yaml("entry", st.free_port()))
        revision = int(st.wait_until(
            lambda: [line.split()[-1] for line in second.ctl("get", "service", "entry", "-o", "yaml").stdout.splitlines()
                     if line.strip().startswith("revision:")], what="the resource on the second replica")[0])
        results = [None, None]

        def apply(index, plane, port):
            body = cp.service_yaml("entry", port).replace("metadata: {name: entry", f"metadata: {{name: entry, revision: {revision}")
            results[index] = plane.ctl("apply", "-f", "-", input_text=body, check=False)

        threads = [threading.Thread(target=apply, args=(i, plane, st.free_port()))
                   for i, plane in enumerate((first, second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        outcomes = sorted(result.returncode == 0 for result in results)
        self.assertEqual(outcomes, [False, True], [r.stdout + r.stderr for r in results])
        loser = next(result for result in results if result.returncode != 0)
        self.assertIn("changed since it was read", loser.stderr)

    def test_the_leader_of_etcd_dies(self):
        first, second, _ = self.replicas
        agent = second.start_agent("edge-1", "role=edge")
        self.etcd.kill(self.etcd.leader())
        port = st.free_port()
        applied = st.wait_until(lambda: first.ctl("apply", "-f", "-", input_text=cp.service_yaml("entry", port),
                                                  check=False).returncode == 0, timeout=30,
                                what="an apply accepted by the remaining etcd members")
        self.assertTrue(applied)
        second.wait_in_sync("edge-1", timeout=30)
        agent.wait_tcp(port)
        self.assertEqual(cp.curl_via(port, self.url), b"hello through the replicas\n")

    def test_etcd_away_and_back(self):
        first, second, _ = self.replicas
        agent = second.start_agent("edge-1", "role=edge")
        port = st.free_port()
        first.apply(cp.service_yaml("entry", port))
        second.wait_in_sync("edge-1")
        agent.wait_tcp(port)
        for index in range(len(self.etcd.processes)):
            self.etcd.kill(index)
        # Agents keep serving and the replicas keep answering reads; writes say why they fail.
        self.assertEqual(cp.curl_via(port, self.url), b"hello through the replicas\n")
        self.assertIn("entry", second.ctl("get").stdout)
        refused = first.ctl("apply", "-f", "-", input_text=cp.service_yaml("other", st.free_port()), check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("takes no changes until etcd answers", refused.stderr)
        for index in range(len(self.etcd.processes)):
            self.etcd.start(index)
        new_port = st.free_port()
        st.wait_until(lambda: first.ctl("apply", "-f", "-", input_text=cp.service_yaml("entry", new_port),
                                        check=False).returncode == 0, timeout=60, interval=0.5,
                      what="an apply accepted once etcd is back")
        agent.wait_tcp(new_port, timeout=30)
        self.assertEqual(cp.curl_via(new_port, self.url), b"hello through the replicas\n")


if __name__ == "__main__":
    unittest.main()
