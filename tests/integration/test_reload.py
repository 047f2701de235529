"""SIGHUP reload through the runtime's single apply entry point: unchanged services keep
their connections, changed ones start anew while old connections finish, invalid files
change nothing."""

import signal
import socket
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import strait_test as st  # noqa: E402


def forward_service(name: str, port: int, target: int, listener_metadata: str = "", metadata: str = "") -> str:
    return (f"- name: {name}\n  addr: 127.0.0.1:{port}\n  handler: {{type: tcp}}\n"
            f"  listener: {{type: tcp, metadata: {{{listener_metadata}}}}}\n  metadata: {{{metadata}}}\n"
            f"  forwarder: {{nodes: [{{name: t, addr: 127.0.0.1:{target}}}]}}\n")


def echo_once(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    return st.recv_exact(sock, len(payload))


class ReloadTest(st.StraitTestCase):
    def setUp(self):
        super().setUp()
        self.echo = self.echo_server()
        self.sink = self.sink_server()
        self.port_a = st.free_port()
        self.port_b = st.free_port()
        self.config = self.tmp / "strait.yaml"
        self.write_config(forward_service("a", self.port_a, self.echo.port) +
                          forward_service("b", self.port_b, self.echo.port))
        self.agent = self.start_agent("-C", self.config, wait_tcp=self.port_a)
        st.wait_tcp(self.port_b)

    def write_config(self, services: str) -> None:
        self.config.write_text("services:\n" + services)

    def reload(self, expect: str) -> None:
        # Once, under ThreadSanitizer, the first SIGHUP after start was not acted upon in 10 s
        # (no "SIGHUP:" line at all; not reproduced since, cause not found). A second signal
        # goes only when the agent logged no reload for the first, so no reload is doubled.
        handled_before = self.agent.log().count("SIGHUP:")
        self.agent.send_signal(signal.SIGHUP)
        try:
            st.wait_until(lambda: self.agent.log().count("SIGHUP:") > handled_before, timeout=3, what="SIGHUP handled")
        except TimeoutError:
            print("test_reload: SIGHUP not acted upon within 3 s; sending it again", file=sys.stderr)
            self.agent.send_signal(signal.SIGHUP)
        self.agent.wait_log(expect)

    def test_unchanged_service_keeps_connections_and_changed_one_drains(self):
        with socket.create_connection(("127.0.0.1", self.port_a), timeout=st.IO_TIMEOUT) as on_a, \
             socket.create_connection(("127.0.0.1", self.port_b), timeout=st.IO_TIMEOUT) as on_b:
            self.assertEqual(echo_once(on_a, b"before"), b"before")
            self.assertEqual(echo_once(on_b, b"before"), b"before")
            port_c = st.free_port()
            # a unchanged; b now forwards to the sink; c is new.
            self.write_config(forward_service("a", self.port_a, self.echo.port) +
                              forward_service("b", self.port_b, self.sink.port) +
                              forward_service("c", port_c, self.echo.port))
            self.reload(r"SIGHUP: reloaded")
            st.wait_tcp(port_c)
            # The open connections of both a (untouched) and b (draining) still carry bytes.
            self.assertEqual(echo_once(on_a, b"after"), b"after")
            self.assertEqual(echo_once(on_b, b"after"), b"after")
            # New connections to b reach the new target: the sink answers with a digest.
            blob = st.random_blob(64 * 1024)
            self.assertEqual(st.tcp_roundtrip(self.port_b, blob).strip().decode(), st.sha256(blob))
            self.assertEqual(st.tcp_roundtrip(port_c, b"new service"), b"new service")
        log = self.agent.log()
        self.assertEqual(log.count("a: listening on"), 1, log)  # a was never restarted
        # b kept its listening sockets: only its config changed.
        self.assertEqual(log.count("b: listening on"), 1, log)
        self.assertEqual(log.count("b: new config on the same sockets"), 1, log)

    def test_reloads_under_load_fail_no_connection(self):
        self.write_config(forward_service("a", self.port_a, self.sink.port) +
                          forward_service("b", self.port_b, self.echo.port))
        self.reload(r"a: new config on the same sockets")
        loop = st.ConnectionLoop(self.port_b, clients=16)
        self.addCleanup(loop.stop)
        transfers = [st.LongTransfer(self.port_a, 4 << 20, seconds=8) for _ in range(3)]
        loop.wait_for(200)
        for index in range(100):
            # Every reload changes b: its idle timeout, and every fourth time its listen
            # backlog (which changes on the same socket). An auther no service uses changes
            # too, which must restart nothing.
            backlog = 4096 if index % 4 else 1024 + index
            self.write_config(
                forward_service("a", self.port_a, self.sink.port) +
                forward_service("b", self.port_b, self.echo.port, listener_metadata=f"backlog: {backlog}",
                                metadata=f"idleTimeout: {1 + index % 2}h") +
                f"authers: [{{name: unused, auths: [{{username: u{index}, password: p}}]}}]\n")
            self.agent.send_signal(signal.SIGHUP)
            st.wait_until(lambda: self.agent.log().count("SIGHUP: reloaded") >= index + 2, what=f"reload {index}")
            loop.wait_for(10)
        loop.stop()
        self.assertEqual(loop.failures[:5], [], f"{len(loop.failures)} of {loop.ok + len(loop.failures)} failed")
        self.assertGreater(loop.ok, 1000)
        for transfer in transfers:
            self.assertEqual(transfer.result(), st.sha256(transfer.blob))
        log = self.agent.log()
        self.assertEqual(log.count("a: listening on"), 1, "a was never restarted")
        self.assertEqual(log.count("a: new config"), 1, "nor changed after its first reload")
        self.assertEqual(log.count("b: listening on"), 1, "b kept its sockets through every reload")
        self.assertEqual(log.count("b: new config on the same sockets"), 100)

    def test_removed_service_stops_accepting(self):
        self.write_config(forward_service("a", self.port_a, self.echo.port))
        self.reload(r"b: removed, draining")
        st.wait_until(lambda: not _accepts(self.port_b), what=f"port {self.port_b} closed")
        self.assertEqual(st.tcp_roundtrip(self.port_a, b"still here"), b"still here")

    def test_invalid_file_changes_nothing(self):
        self.config.write_text("services:\n  - name: [broken\n")
        self.reload(r"SIGHUP: .*still serving the previous config")
        self.write_config(forward_service("a", self.port_a, self.echo.port) +
                          "- {name: b, addr: '127.0.0.1:1', handler: {type: teleport}}\n")
        self.reload(r"SIGHUP: .*unknown handler type \"teleport\".*still serving the previous config")
        self.assertEqual(st.tcp_roundtrip(self.port_a, b"ok a"), b"ok a")
        self.assertEqual(st.tcp_roundtrip(self.port_b, b"ok b"), b"ok b")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main()
