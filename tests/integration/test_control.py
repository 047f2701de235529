"""Fleet control plane with real processes on loopback: strait-controller, straitctl and
controlled strait-agents (apply, update, drain-safe apply, NACK, outages, placement, tokens)."""

import json
import socket
import signal
import sys
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import control_plane as cp  # noqa: E402
import strait_test as st  # noqa: E402

CURL_TIMEOUT = cp.CURL_TIMEOUT


curl_via = cp.curl_via


class SlowTransfer:
    """A TCP transfer through `port` to a sink, spread over `seconds`, in a thread; `digest`
    holds the sink's answer (SHA-256 of what it received) once the transfer is done."""

    def __init__(self, port: int, blob: bytes, seconds: float):
        self.blob = blob
        self.digest = None
        self.error = None
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT * 3)
        self.thread = threading.Thread(target=self._run, args=(seconds,), daemon=True)
        self.thread.start()

    def _run(self, seconds):
        try:
            chunk = 64 * 1024
            pieces = max(1, len(self.blob) // chunk)
            for offset in range(0, len(self.blob), chunk):
                self.sock.sendall(self.blob[offset:offset + chunk])
                time.sleep(seconds / pieces)
            self.sock.shutdown(socket.SHUT_WR)
            self.digest = st.recv_all(self.sock).strip().decode()
        except OSError as error:
            self.error = error
        finally:
            self.sock.close()

    def result(self, timeout: float = 60):
        self.thread.join(timeout)
        return self.error or self.digest


@unittest.skipUnless(st.have("curl"), "curl is not installed")
class ControlPlaneTest(st.StraitTestCase):
    def setUp(self):
        super().setUp()
        if not cp.controller_path().is_file() or not cp.straitctl_path().is_file():
            self.fail(f"no strait-controller/straitctl at {cp.controller_path()}: build them")
        self.plane = cp.ControlPlane(self)
        self.origin_server = self.origin({"/hello": b"hello through the fleet\n"})
        self.url = f"http://127.0.0.1:{self.origin_server.port}/hello"

    def test_apply_serves_and_updates_are_acked(self):
        agent = self.plane.start_agent("edge-1", "role=edge")
        port = st.free_port()
        out = self.plane.apply(cp.service_yaml("entry", port))
        self.assertIn("service/entry created", out)
        first = self.plane.wait_in_sync("edge-1")
        agent.wait_tcp(port)
        self.assertEqual(curl_via(port, self.url), b"hello through the fleet\n")
        # The same file again changes nothing; a changed one is a new version, ACKed.
        self.assertIn("service/entry unchanged", self.plane.apply(cp.service_yaml("entry", port)))
        new_port = st.free_port()
        self.assertIn("configured", self.plane.apply(cp.service_yaml("entry", new_port)))
        second = st.wait_until(lambda: (a := self.plane.wait_in_sync("edge-1"))["appliedVersion"] !=
                               first["appliedVersion"] and a, what="a new version applied")
        agent.wait_tcp(new_port)
        self.assertEqual(curl_via(new_port, self.url), b"hello through the fleet\n")
        self.assertTrue(second["services"], "status reports the running services")
        agent.wait_log(rf"snapshot {second['appliedVersion']} applied")
        table = self.plane.ctl("agents").stdout
        self.assertRegex(table, r"edge-1\s+role=edge\s+-\s+yes\s+\S+\s+\S+\s+1\s+\S+ ago\s+in sync")

    def test_label_placement_and_chains_across_agents(self):
        self.plane.start_agent("edge-1", "role=edge")
        exit_agent = self.plane.start_agent("exit-1", "role=exit")
        entry_port, exit_port = st.free_port(), st.free_port()
        self.plane.apply(
            cp.service_yaml("entry", entry_port, placement="role: edge", chain="via-exit") + "---\n" +
            cp.service_yaml("exit", exit_port, handler="socks5", placement="role: exit") + "---\n" +
            "kind: Chain\nmetadata: {name: via-exit}\nspec:\n  hops:\n  - name: hop-0\n    nodes:\n"
            f"    - {{name: exit-1, addr: \"127.0.0.1:{exit_port}\", connector: {{type: socks5}}}}\n")
        edge = self.plane.wait_in_sync("edge-1")
        exit_info = self.plane.wait_in_sync("exit-1")
        self.assertEqual([s["name"] for s in st.wait_until(lambda: self.plane.wait_in_sync("edge-1").get("services"))],
                         ["entry"])
        self.assertEqual([s["name"] for s in st.wait_until(lambda: self.plane.wait_in_sync("exit-1").get("services"))],
                         ["exit"])
        self.assertNotEqual(edge["appliedVersion"], "")
        self.assertNotEqual(exit_info["appliedVersion"], "")
        st.wait_tcp(entry_port)
        self.assertEqual(curl_via(entry_port, self.url), b"hello through the fleet\n")
        exit_agent.wait_log(rf"-> 127\.0\.0\.1:{self.origin_server.port}: closed")
        describe = self.plane.ctl("describe", "chain", "via-exit").stdout
        self.assertRegex(describe, r"edge-1\s+\S+\s+applied")
        self.assertNotIn("exit-1", describe.split("Agents:")[1], "the chain is not placed on the exit agent")

    def test_unchanged_service_survives_updates_and_changed_service_drains(self):
        agent = self.plane.start_agent("edge-1")
        sink = self.sink_server()
        stable_port, moving_port = st.free_port(), st.free_port()
        self.plane.apply(cp.forward_yaml("stable", stable_port, f"127.0.0.1:{sink.port}") + "---\n" +
                         cp.forward_yaml("moving", moving_port, f"127.0.0.1:{sink.port}"))
        self.plane.wait_in_sync("edge-1")
        agent.wait_tcp(stable_port)
        agent.wait_tcp(moving_port)
        stable_blob, moving_blob = st.random_blob(4 << 20), st.random_blob(2 << 20)
        stable = SlowTransfer(stable_port, stable_blob, seconds=6)
        moving = SlowTransfer(moving_port, moving_blob, seconds=2)
        # The moving service changes (new metadata) while its transfer runs: the new listener
        # takes over, the old connection finishes on the old one.
        self.plane.apply(cp.forward_yaml("moving", moving_port, f"127.0.0.1:{sink.port}").replace(
            "listener: {type: tcp}", "listener: {type: tcp}, metadata: {idleTimeout: 1m}"))
        for i in range(20):
            other = st.free_port()
            self.plane.apply(cp.service_yaml(f"other-{i % 3}", other))
            self.plane.wait_in_sync("edge-1")
        self.assertEqual(moving.result(), st.sha256(moving_blob), "the changed service cut its in-flight transfer")
        self.assertEqual(stable.result(), st.sha256(stable_blob), "an unchanged service was disturbed by updates")
        # The moving service answers on its new listener too.
        self.assertEqual(st.tcp_roundtrip(moving_port, b"x").strip(), st.sha256(b"x").encode())

    def test_pushed_changes_under_load_fail_no_connection(self):
        agent = self.plane.start_agent("edge-1")
        echo, sink = self.echo_server(), self.sink_server()
        echo_port, sink_port = st.free_port(), st.free_port()
        sink_service = cp.forward_yaml("bulk", sink_port, f"127.0.0.1:{sink.port}")
        self.plane.apply(cp.forward_yaml("echo", echo_port, f"127.0.0.1:{echo.port}") + "---\n" + sink_service)
        agent.wait_tcp(echo_port)
        agent.wait_tcp(sink_port)
        loop = st.ConnectionLoop(echo_port, clients=16)
        self.addCleanup(loop.stop)
        transfers = [st.LongTransfer(sink_port, 4 << 20, seconds=8) for _ in range(2)]
        loop.wait_for(200)
        versions = set()
        for index in range(100):
            # Each push changes the echo service (its idle timeout): a new config on the same
            # sockets, ACKed before the next one.
            self.plane.apply(cp.forward_yaml("echo", echo_port, f"127.0.0.1:{echo.port}").replace(
                "listener: {type: tcp}", f"listener: {{type: tcp}}, metadata: {{idleTimeout: {index + 1}m}}"))
            versions.add(self.plane.wait_in_sync("edge-1")["appliedVersion"])
            loop.wait_for(5)
        loop.stop()
        self.assertEqual(loop.failures[:5], [], f"{len(loop.failures)} of {loop.ok + len(loop.failures)} failed")
        self.assertGreater(len(versions), 50, "the pushes were applied one after another")
        for transfer in transfers:
            self.assertEqual(transfer.result(), st.sha256(transfer.blob))
        self.assertEqual(agent.log().count("echo: listening on"), 1, "the sockets were kept through every push")

    def test_invalid_snapshot_is_nacked_and_the_old_config_keeps_serving(self):
        agent = self.plane.start_agent("edge-1")
        port = st.free_port()
        self.plane.apply(cp.service_yaml("entry", port))
        agent.wait_tcp(port)  # the version with the service is applied, not the empty one before it
        good = self.plane.wait_in_sync("edge-1")
        # A GOST type this agent does not have passes the controller (another agent may have it)
        # and is this agent's NACK.
        self.plane.apply(cp.service_yaml("entry", port) + "---\n" + cp.service_yaml("broken", st.free_port(),
                                                                                    handler="tunnel"))
        refused = st.wait_until(lambda: (a := self.plane.agents()["edge-1"]).get("lastNackError") and a,
                                what="a NACK")
        self.assertIn('service broken: unknown handler type "tunnel"', refused["lastNackError"])
        self.assertEqual(refused["appliedVersion"], good["appliedVersion"], "the agent kept its version")
        self.assertNotEqual(refused["desiredVersion"], good["desiredVersion"])
        self.assertEqual(curl_via(port, self.url), b"hello through the fleet\n")
        self.assertIn("refused", self.plane.ctl("agents").stdout)
        agent.wait_log(r"snapshot \S+ refused, still serving")
        # Fixing it brings the agent back in sync. What it should serve is again what it serves,
        # so it is sent nothing (xDS sends only versions a client does not hold).
        self.plane.ctl("delete", "service", "broken")
        st.wait_until(lambda: self.plane.wait_in_sync("edge-1")["desiredVersion"] == good["appliedVersion"],
                      what="the agent in sync with its own version")
        self.assertIn("in sync", self.plane.ctl("agents").stdout)

    def test_values_that_would_crash_agents_are_refused_at_apply(self):
        agent = self.plane.start_agent("edge-1")
        port = st.free_port()
        self.plane.apply(cp.service_yaml("entry", port))
        good = self.plane.wait_in_sync("edge-1")
        huge = '"' + "9" * 400 + 's"'
        bad = self.plane.ctl("apply", "-f", "-", check=False,
                             input_text=cp.service_yaml("entry", port, extra_spec=f", metadata: {{readTimeout: {huge}}}"))
        self.assertEqual(bad.returncode, 2, bad.stdout + bad.stderr)
        self.assertIn("Service/entry: service entry: metadata: metadata readTimeout: invalid duration", bad.stderr)
        self.assertIn("too large", bad.stderr)
        for value, message in (("-5s", "must not be negative"), ("100000h", "at most 87600h"),
                               ("99999999999", "too large")):
            refused = self.plane.ctl("apply", "-f", "-", check=False, input_text=cp.service_yaml(
                "entry", port, extra_spec=f", metadata: {{idleTimeout: {value}}}"))
            self.assertNotEqual(refused.returncode, 0, value)
            self.assertIn(message, refused.stderr)
        # References are checked by the controller against its store, and what is in use
        # cannot be deleted from under a service.
        missing = self.plane.ctl("apply", "-f", "-", check=False,
                                 input_text=cp.service_yaml("other", st.free_port(), chain="nowhere"))
        self.assertEqual(missing.returncode, 1)
        self.assertIn("Service/other references Chain/nowhere, which does not exist; apply it first", missing.stderr)
        self.plane.apply("kind: Chain\nmetadata: {name: up}\nspec: {hops: [{name: h, nodes: [{name: n, "
                         "addr: \"127.0.0.1:1\"}]}]}\n")
        self.plane.apply(cp.service_yaml("other", st.free_port(), chain="up"))
        in_use = self.plane.ctl("delete", "chain", "up", check=False)
        self.assertEqual(in_use.returncode, 1)
        self.assertIn("Chain/up is referenced by Service/other", in_use.stderr)
        # None of it reached the agent, which kept serving.
        self.assertTrue(agent.alive())
        st.wait_until(lambda: self.plane.wait_in_sync("edge-1")["appliedVersion"] != good["appliedVersion"],
                      what="the valid changes applied")
        self.assertIsNone(self.plane.agents()["edge-1"].get("lastNackError"))
        self.assertEqual(curl_via(port, self.url), b"hello through the fleet\n")

    def test_outages_persisted_snapshot_and_resync(self):
        state_dir = self.tmp / "edge-state"
        agent = self.plane.start_agent("edge-1", state_dir=state_dir)
        port = st.free_port()
        self.plane.apply(cp.service_yaml("entry", port))
        applied = self.plane.wait_in_sync("edge-1")["appliedVersion"]
        agent.wait_tcp(port)
        # Controller killed: the agent keeps serving.
        self.plane.stop(kill=True)
        self.assertEqual(curl_via(port, self.url), b"hello through the fleet\n")
        agent.wait_log(r"stream ended")
        # Agent restarted while the controller is away: it serves the persisted snapshot.
        agent.stop()
        restarted = self.plane.start_agent("edge-1", state_dir=state_dir)
        restarted.wait_log(rf"serving snapshot {applied} from the state dir")
        restarted.wait_tcp(port)
        self.assertEqual(curl_via(port, self.url), b"hello through the fleet\n")
        # Controller back: the agent resyncs on its own, and a change reaches it.
        self.plane.start()
        self.assertEqual(self.plane.wait_in_sync("edge-1", timeout=40)["appliedVersion"], applied)
        new_port = st.free_port()
        self.plane.apply(cp.service_yaml("second", new_port))
        restarted.wait_tcp(new_port, timeout=20)

    def test_demo_fleet_of_the_quick_start(self):
        ports = {"127.0.0.1:8080": st.free_port(), "127.0.0.1:8420": st.free_port(),
                 "127.0.0.1:1080": st.free_port(), "127.0.0.1:8338": st.free_port("udp")}
        fleet = (st.REPO_ROOT / "deploy" / "demo" / "fleet.yaml").read_text()
        for address, port in ports.items():
            self.assertIn(address, fleet)
            fleet = fleet.replace(address, f"127.0.0.1:{port}")
        self.plane.start_agent("edge-1", "role=edge")
        exit_agent = self.plane.start_agent("exit-1", "role=exit")
        out = self.plane.apply(fleet)
        # Referenced kinds go first, whatever the file's order.
        self.assertEqual(out.split(), ["chain/via-exit", "created", "chain/via-exit-kcp", "created",
                                       "service/edge-http", "created", "service/exit-relay", "created",
                                       "service/edge-socks", "created", "service/exit-ss-kcp", "created"])
        self.plane.wait_in_sync("edge-1")
        self.plane.wait_in_sync("exit-1")
        st.wait_tcp(ports["127.0.0.1:8080"])
        self.assertEqual(curl_via(ports["127.0.0.1:8080"], self.url), b"hello through the fleet\n")
        exit_agent.wait_log(rf"-> 127\.0\.0\.1:{self.origin_server.port}: closed")
        st.wait_tcp(ports["127.0.0.1:1080"])
        socks = st.run(["curl", "-sS", "--max-time", CURL_TIMEOUT, "-x", f"socks5h://127.0.0.1:{ports['127.0.0.1:1080']}",
                        self.url])
        self.assertEqual(socks.stdout, b"hello through the fleet\n", socks.stderr)

    def test_seed_channel_topologies_pushed_as_resources(self):
        # The seed's relay+wss forward pair and its tls:// + forward+tls pair, as resources.
        self.plane.start_agent("edge-1", "role=edge")
        self.plane.start_agent("exit-1", "role=exit")
        relay_port, relay_entry = st.free_port(), st.free_port()
        https_port, proxy_port, plain_entry = st.free_port(), st.free_port(), st.free_port()
        web = f"127.0.0.1:{self.origin_server.port}"
        self.plane.apply(f"""kind: Service
metadata: {{name: relay-exit, placement: {{role: exit}}}}
spec:
  addr: "127.0.0.1:{relay_port}"
  handler: {{type: relay}}
  listener: {{type: wss}}
  forwarder: {{nodes: [{{name: web, addr: "{web}"}}]}}
---
kind: Chain
metadata: {{name: via-relay}}
spec: {{hops: [{{name: hop, nodes: [{{name: exit, addr: "127.0.0.1:{relay_port}", connector: {{type: relay}},
        dialer: {{type: wss}}}}]}}]}}
---
kind: Service
metadata: {{name: relay-entry, placement: {{role: edge}}}}
spec:
  addr: "127.0.0.1:{relay_entry}"
  handler: {{type: tcp, chain: via-relay}}
  listener: {{type: tcp}}
---
kind: Service
metadata: {{name: https-exit, placement: {{role: exit}}}}
spec:
  addr: "127.0.0.1:{https_port}"
  handler: {{type: forward}}
  listener: {{type: tls}}
  forwarder: {{nodes: [{{name: proxy, addr: "127.0.0.1:{proxy_port}"}}]}}
---
kind: Service
metadata: {{name: proxy, placement: {{role: exit}}}}
spec: {{addr: "127.0.0.1:{proxy_port}", handler: {{type: http}}, listener: {{type: tcp}}}}
---
kind: Chain
metadata: {{name: via-tls}}
spec: {{hops: [{{name: hop, nodes: [{{name: exit, addr: "127.0.0.1:{https_port}", connector: {{type: forward}},
        dialer: {{type: tls}}}}]}}]}}
---
kind: Service
metadata: {{name: plain-entry, placement: {{role: edge}}}}
spec:
  addr: "127.0.0.1:{plain_entry}"
  handler: {{type: tcp, chain: via-tls}}
  listener: {{type: tcp}}
""")
        self.plane.wait_in_sync("edge-1")
        self.plane.wait_in_sync("exit-1")
        st.wait_tcp(relay_entry)
        st.wait_tcp(plain_entry)
        hello = b"hello through the fleet\n"
        result = st.run(["curl", "-sS", "--max-time", CURL_TIMEOUT, f"http://127.0.0.1:{relay_entry}/hello"])
        self.assertEqual(result.stdout, hello, result.stderr.decode())
        self.assertEqual(curl_via(plain_entry, self.url), hello)
        result = st.run(["curl", "-sS", "--max-time", CURL_TIMEOUT, "--proxy", f"https://127.0.0.1:{https_port}",
                         "--proxy-insecure", self.url])
        self.assertEqual(result.stdout, hello, result.stderr.decode())

    def test_seed_kcp_and_ss_topology_pushed_as_resources(self):
        # -L ss+kcp://:8338 on the exit; -L tcp://:8080 -F forward+kcp://:8338 on the edge, which
        # then behaves as -L ss://:8080: an HTTP proxy on the edge whose chain speaks ss to it.
        self.plane.start_agent("edge-1", "role=edge")
        self.plane.start_agent("exit-1", "role=exit")
        kcp_port, ss_entry, proxy_port = st.free_port("udp"), st.free_port(), st.free_port()
        ss_auth = "auth: {username: chacha20-ietf-poly1305, password: kcp-fleet-pass}"
        self.plane.apply(f"""kind: Service
metadata: {{name: ss-over-kcp, placement: {{role: exit}}}}
spec:
  addr: "127.0.0.1:{kcp_port}"
  handler: {{type: ss, {ss_auth}}}
  listener: {{type: kcp, metadata: {{kcp.key: fleet-kcp-key}}}}
---
kind: Chain
metadata: {{name: via-kcp}}
spec: {{hops: [{{name: hop, nodes: [{{name: exit, addr: "127.0.0.1:{kcp_port}", connector: {{type: forward}},
        dialer: {{type: kcp, metadata: {{kcp.key: fleet-kcp-key}}}}}}]}}]}}
---
kind: Service
metadata: {{name: ss-entry, placement: {{role: edge}}}}
spec:
  addr: "127.0.0.1:{ss_entry}"
  handler: {{type: tcp, chain: via-kcp}}
  listener: {{type: tcp}}
---
kind: Chain
metadata: {{name: via-ss}}
spec: {{hops: [{{name: hop, nodes: [{{name: entry, addr: "127.0.0.1:{ss_entry}", connector: {{type: ss, {ss_auth}}},
        dialer: {{type: tcp}}}}]}}]}}
---
kind: Service
metadata: {{name: proxy, placement: {{role: edge}}}}
spec: {{addr: "127.0.0.1:{proxy_port}", handler: {{type: http, chain: via-ss}}, listener: {{type: tcp}}}}
""")
        self.plane.wait_in_sync("edge-1")
        self.plane.wait_in_sync("exit-1")
        st.wait_tcp(proxy_port)
        self.assertEqual(curl_via(proxy_port, self.url), b"hello through the fleet\n")

    def test_a_hangup_leaves_the_controller_serving(self):
        self.plane.process.popen.send_signal(signal.SIGHUP)
        self.plane.process.wait_log(r"received SIGHUP: nothing to reload")
        self.assertIn("service/entry created", self.plane.apply(cp.service_yaml("entry", st.free_port())))
        self.assertIsNone(self.plane.process.popen.poll())

    def test_tokens_and_secrets(self):
        bad_token = self.tmp / "bad.token"
        bad_token.write_text("sj_nothing_real\n")
        refused = self.plane.start_agent("intruder", join_token_file=bad_token)
        refused.wait_log(r"refused to enrol agent intruder: join token missing, unknown, expired or deleted")
        self.plane.process.wait_log(r"enrolment from \S+ refused: join token missing, unknown, expired or deleted")
        self.assertNotIn("intruder", self.plane.agents())
        # A token made with straitctl lets an agent in.
        token = self.plane.ctl("token", "create", "--ttl", "1h", "--description", "test").stdout.strip()
        token_file = self.tmp / "new.token"
        token_file.write_text(token + "\n")
        self.plane.start_agent("newcomer", join_token_file=token_file)
        st.wait_until(lambda: self.plane.agents().get("newcomer", {}).get("connected"), what="newcomer connected")
        # The admin API needs the admin token.
        result = self.plane.ctl("get", token_file=bad_token, check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("admin token missing or wrong", result.stderr)
        # Secrets are redacted unless asked for, and never logged.
        self.plane.apply(cp.service_yaml("guarded", st.free_port()).replace(
            "handler: {type: http}", "handler: {type: http, auth: {username: u, password: Sup3r-S3cret}}"))
        self.assertNotIn("Sup3r-S3cret", self.plane.ctl("get", "service", "guarded", "-o", "yaml").stdout)
        self.assertIn("********", self.plane.ctl("get", "service", "guarded", "-o", "json").stdout)
        self.assertIn("Sup3r-S3cret", self.plane.ctl("get", "service", "guarded", "-o", "yaml",
                                                      "--show-secrets").stdout)
        for process in (self.plane.process,):
            self.assertNotIn("Sup3r-S3cret", process.log())
            self.assertNotIn(token, process.log())
            self.assertNotIn(self.plane.admin_token_file.read_text().strip(), process.log())

    def test_get_diff_and_optimistic_concurrency(self):
        port = st.free_port()
        self.plane.start_agent("edge-1")
        self.plane.apply(cp.service_yaml("entry", port))
        self.plane.wait_in_sync("edge-1")
        table = self.plane.ctl("get").stdout
        self.assertRegex(table, r"Service\s+entry\s+\d+\s+<none>\s+http\+tcp 127\.0\.0\.1:\d+")
        listed = json.loads(self.plane.ctl("get", "services", "-o", "json").stdout)
        self.assertEqual([item["metadata"]["name"] for item in listed["items"]], ["entry"])
        revision = json.loads(self.plane.ctl("get", "service", "entry", "-o", "json").stdout)["metadata"]["revision"]
        # diff: exit 1 and the changed line, naming the agent it would reach.
        changed = cp.service_yaml("entry", port + 1 if port < 65535 else port - 1)
        diff = self.plane.ctl("diff", "-f", "-", input_text=changed, check=False)
        self.assertEqual(diff.returncode, 1, diff.stdout + diff.stderr)
        self.assertIn("service/entry: update (agents: edge-1)", diff.stdout)
        self.assertRegex(diff.stdout, r"\n- .*addr: 127\.0\.0\.1:\d+\n\+ .*addr: 127\.0\.0\.1:\d+")
        self.assertEqual(self.plane.ctl("diff", "-f", "-", input_text=cp.service_yaml("entry", port)).returncode, 0)
        # A write naming a stale revision is refused.
        self.plane.apply(changed)
        stale = changed.replace("metadata: {name: entry", f"metadata: {{name: entry, revision: {revision}")
        result = self.plane.ctl("apply", "-f", "-", input_text=stale, check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"not {revision}: it changed since it was read", result.stderr)


if __name__ == "__main__":
    unittest.main()
