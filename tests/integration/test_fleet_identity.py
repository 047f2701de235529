"""Fleet identity with real processes on loopback: enrolment with join tokens, certificates
that name the agent, labels the controller holds, duplicate ids, token and agent deletion,
certificate renewal and expiry."""

import re
import shutil
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import control_plane as cp  # noqa: E402
import strait_test as st  # noqa: E402

SECRET = "Exit-Only-S3cret"


def refusals(plane: cp.ControlPlane, reason: str) -> float:
    return plane.metric(f'strait_controller_refusals_total{{reason="{reason}"}}')


class FleetIdentityTest(st.StraitTestCase):
    def setUp(self):
        super().setUp()
        if not cp.controller_path().is_file() or not cp.straitctl_path().is_file():
            self.fail(f"no strait-controller/straitctl at {cp.controller_path()}: build them")

    def plane(self, *extra_args) -> cp.ControlPlane:
        return cp.ControlPlane(self, extra_args=extra_args)

    def test_an_agent_cannot_place_itself_where_the_secrets_are(self):
        plane = self.plane()
        edge_token = plane.create_token("--ttl", "1h", "--labels", "role=edge")
        plane.apply(cp.service_yaml("exit-socks", st.free_port(), handler="socks5", placement="role: exit").replace(
            "handler: {type: socks5}", f"handler: {{type: socks5, auth: {{username: u, password: {SECRET}}}}}"))
        # The review's scenario: a laptop with an edge token asks to be an exit.
        state = self.tmp / "state-laptop"
        plane.start_agent("laptop-7", "role=exit", state_dir=state, join_token_file=edge_token)
        info = plane.wait_in_sync("laptop-7")
        self.assertEqual(info.get("labels", {}), {})
        self.assertEqual(info["requestedLabels"], {"role": "exit"})
        plane.process.wait_log(r"agent laptop-7 asked for labels role=exit that token \S+ does not grant")
        self.assertGreaterEqual(refusals(plane, "labels_not_granted"), 1)
        self.assertNotIn(SECRET.encode(), (state / "snapshot.pb").read_bytes())
        self.assertEqual(info.get("services", []), [])
        # Its identity file is private to it.
        self.assertEqual((state / "identity.pem").stat().st_mode & 0o777, 0o600)
        # Only an operator can place it: then it gets the exit service.
        plane.ctl("agents", "label", "laptop-7", "role=exit")
        st.wait_until(lambda: SECRET.encode() in (state / "snapshot.pb").read_bytes(), what="exit service applied")
        self.assertEqual(plane.agents()["laptop-7"]["labels"], {"role": "exit"})

    def test_two_processes_with_one_id_do_not_flap(self):
        plane = self.plane()
        first_state = self.tmp / "state-first"
        first = plane.start_agent("exit-1", "role=exit", state_dir=first_state, name="first")
        peer = plane.wait_in_sync("exit-1")["peer"]
        # Another host enrolling as exit-1, and a copy of the first's identity.
        second = plane.start_agent("exit-1", "role=exit", state_dir=self.tmp / "state-second", name="second")
        copied_state = self.tmp / "state-copy"
        shutil.copytree(first_state, copied_state)
        copy = plane.start_agent("exit-1", state_dir=copied_state, name="copy")
        second.wait_log(r"refused to enrol agent exit-1: agent exit-1 is enrolled and its certificate is valid")
        copy.wait_log(r"ended the stream of agent exit-1: agent exit-1 already has a live stream")
        # Both keep being refused, less and less often, and the first agent is never replaced.
        st.wait_until(lambda: refusals(plane, "id_taken") >= 2 and refusals(plane, "duplicate_stream") >= 2,
                      timeout=30, what="two refusals each")
        self.assertEqual(plane.agents()["exit-1"]["peer"], peer)
        self.assertEqual(first.log().count("connected as agent exit-1"), 1)
        self.assertNotIn("replaces the one from", plane.process.log())
        delays = [int(d) for d in re.findall(r"reconnecting in (\d+) ms", second.log())]
        self.assertGreaterEqual(len(delays), 2)
        self.assertGreater(delays[-1], 500, "a refused agent backs off")

    def test_a_ca_and_bootstrap_token_the_operator_provides(self):
        # As a Helm chart mounts them: an RSA CA made elsewhere (Helm's genCA makes RSA) and a
        # token chosen by the operator, both read-only.
        ca_dir = self.tmp / "ca"
        ca_dir.mkdir()
        st.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=strait-ca",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,digitalSignature",
                "-keyout", ca_dir / "ca.key", "-out", ca_dir / "ca.pem"], check=True)
        token_file = self.tmp / "bootstrap-token"
        token_file.write_text("sj_ChosenByTheOperatorInASecret0123456789\n")
        for path in (ca_dir / "ca.key", ca_dir / "ca.pem", token_file):
            path.chmod(0o400)
        ca_dir.chmod(0o500)
        plane = cp.ControlPlane(self, ca_dir=ca_dir, bootstrap_token_file=token_file)
        self.assertFalse((plane.data_dir / "ca.key").exists())
        self.assertFalse((plane.data_dir / "join.token").exists())
        plane.process.wait_log(r"bootstrap join token [0-9a-f]{8} from ")
        port = st.free_port()
        agent = plane.start_agent("edge-1", "role=edge")
        plane.apply(cp.service_yaml("entry", port))
        plane.wait_in_sync("edge-1")
        agent.wait_tcp(port)
        agent_certificate = st.run(["openssl", "verify", "-CAfile", ca_dir / "ca.pem",
                                    self.tmp / "state-edge-1" / "identity.pem"])
        self.assertEqual(agent_certificate.returncode, 0, agent_certificate.stdout + agent_certificate.stderr)
        # A restart finds the token it registered and adds none.
        plane.stop()
        plane.start()
        self.assertEqual(len(re.findall(r"^\S+\s+bootstrap from ", plane.ctl("token", "list").stdout, re.M)), 1)
        # A token too short to be safe stops the controller, naming the flag.
        token_file.chmod(0o600)
        token_file.write_text("short\n")
        plane.stop()
        refused = st.run([cp.controller_path(), "--data-dir", plane.data_dir, "--ca-dir", ca_dir,
                          "--bootstrap-token-file", token_file, "--listen-agents", "127.0.0.1:0",
                          "--listen-admin", "127.0.0.1:0", "--listen-http", "127.0.0.1:0"])
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn(b"--bootstrap-token-file", refused.stderr)
        self.assertIn(b"32 to 256", refused.stderr)

    def test_token_expiry_and_deletion(self):
        plane = self.plane()
        short = plane.create_token("--ttl", "1s", "--labels", "role=edge")
        st.wait_until(lambda: "expired" in plane.ctl("token", "list").stdout, timeout=10, what="token expired")
        late = plane.start_agent("late-1", "role=edge", join_token_file=short)
        late.wait_log(r"refused to enrol agent late-1: join token missing, unknown, expired or deleted")
        # A deleted token enrols no one; with --revoke-agents its agents go too.
        token = plane.create_token("--ttl", "1h", "--labels", "role=edge")
        enrolled = plane.start_agent("edge-1", "role=edge", join_token_file=token)
        plane.wait_in_sync("edge-1")
        token_id = token.read_text().split("_")[1]
        listed = plane.ctl("token", "list", "-o", "json").stdout
        self.assertIn("edge-1", listed)
        plane.ctl("token", "delete", token_id, "--revoke-agents")
        enrolled.wait_log(r"refused agent edge-1: agent edge-1 was deleted")
        self.assertNotIn("edge-1", plane.agents())
        other = plane.start_agent("edge-2", "role=edge", join_token_file=token)
        other.wait_log(r"refused to enrol agent edge-2: join token missing, unknown, expired or deleted")
        self.assertGreaterEqual(refusals(plane, "join_token"), 2)

    def test_agent_deletion_closes_its_stream_and_frees_its_id(self):
        plane = self.plane()
        state = self.tmp / "state-old"
        old = plane.start_agent("edge-1", "role=edge", state_dir=state, name="old")
        plane.wait_in_sync("edge-1")
        plane.ctl("agents", "delete", "edge-1")
        old.wait_log(r"refused agent edge-1: agent edge-1 was deleted")
        # Its certificate no longer connects, however often it tries.
        old.wait_log(r"refused agent edge-1: agent edge-1 is not enrolled", timeout=20)
        self.assertGreaterEqual(refusals(plane, "revoked"), 1)
        # The id is free: a new host takes it over, explicitly.
        old.stop()
        plane.start_agent("edge-1", "role=edge", state_dir=self.tmp / "state-new", name="new")
        plane.wait_in_sync("edge-1")

    def test_certificate_renewal_across_restarts(self):
        # Agents renew at two thirds of a certificate's life and speak every 5 s.
        plane = self.plane("--agent-cert-ttl", "12s")
        state = self.tmp / "state-edge"
        agent = plane.start_agent("edge-1", "role=edge", state_dir=state)
        plane.wait_in_sync("edge-1")
        first_expiry = plane.agents()["edge-1"]["certificateExpiresUnix"]
        agent.wait_log(r"certificate renewed", timeout=20)
        renewed_expiry = st.wait_until(
            lambda: int(plane.agents()["edge-1"]["certificateExpiresUnix"]) > int(first_expiry) and
            plane.agents()["edge-1"]["certificateExpiresUnix"], what="renewal recorded")
        # Both ends restart: the renewed certificate is kept by both.
        agent.stop()
        plane.stop()
        plane.start()
        restarted = plane.start_agent("edge-1", state_dir=state, name="restarted")
        info = plane.wait_in_sync("edge-1")
        self.assertGreaterEqual(int(info["certificateExpiresUnix"]), int(renewed_expiry))
        self.assertNotIn("enrolled as agent", restarted.log())
        # It already served that snapshot: the controller sent it nothing (xDS: no response
        # to a version the client holds).
        self.assertEqual(plane.metric("strait_controller_pushes_skipped_on_connect_total"), 1)
        self.assertNotIn("snapshot", restarted.log().split("from the state dir")[1])

    def test_an_agent_whose_certificate_expired_offline_enrols_again_with_a_fresh_token(self):
        plane = self.plane("--agent-cert-ttl", "3s")
        first_token = plane.create_token("--ttl", "1h", "--labels", "role=edge")
        state = self.tmp / "state-edge"
        agent = plane.start_agent("edge-1", "role=edge", state_dir=state, join_token_file=first_token)
        plane.wait_in_sync("edge-1")
        agent.stop()
        expiry = int(plane.agents()["edge-1"]["certificateExpiresUnix"])
        st.wait_until(lambda: time.time() > expiry + 1, timeout=10, what="certificate expired")
        plane.ctl("token", "delete", first_token.read_text().split("_")[1])
        fresh = plane.create_token("--ttl", "1h", "--labels", "role=edge")
        back = plane.start_agent("edge-1", "role=edge", state_dir=state, join_token_file=fresh, name="back")
        back.wait_log(r"enrolled as agent edge-1")
        plane.process.wait_log(r"agent edge-1 enrolled from \S+ with token \S+ again, its old certificate expired")
        self.assertEqual(plane.wait_in_sync("edge-1")["labels"], {"role": "edge"})


if __name__ == "__main__":
    unittest.main()
