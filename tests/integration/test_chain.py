"""Chains (`-F`): agents as HTTP hops for each other, auth on a hop, tinyproxy as a foreign
hop, and failover between the nodes of one hop."""

import base64
import socket
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import strait_test as st  # noqa: E402


class ChainTest(st.StraitTestCase):
    def http_hop(self, name: str, auth: str = "") -> tuple:
        """Starts an agent serving `-L http://[auth@]127.0.0.1:port`; returns (port, process)."""
        port = st.free_port()
        prefix = f"{auth}@" if auth else ""
        return port, self.start_agent("-L", f"http://{prefix}127.0.0.1:{port}", name=name, wait_tcp=port)

    def test_forward_through_one_http_hop(self):
        echo = self.echo_server()
        hop_port, hop = self.http_hop("hop")
        port = st.free_port()
        entry = self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{echo.port}",
                                 "-F", f"http://127.0.0.1:{hop_port}", name="entry", wait_tcp=port)
        blob = st.random_blob()
        self.assertBlobEqual(blob, st.tcp_roundtrip(port, blob), f"echo through the chain\n{entry.log()}")
        # The hop carried the bytes: its session log names the echo target and the byte counts.
        hop.wait_log(rf"-> 127\.0\.0\.1:{echo.port}: closed, {len(blob)} B from client, {len(blob)} B to client")

    @unittest.skipUnless(st.have("curl"), "curl is not installed")
    def test_http_proxy_through_two_hops(self):
        body = st.random_blob(256 * 1024)
        origin = self.origin({"/blob": body})
        port_b, agent_b = self.http_hop("b")
        port_c, agent_c = self.http_hop("c")
        port_a = st.free_port()
        agent_a = self.start_agent("-L", f"http://127.0.0.1:{port_a}", "-F", f"http://127.0.0.1:{port_b}",
                                   "-F", f"http://127.0.0.1:{port_c}", name="a", wait_tcp=port_a)
        url = f"http://127.0.0.1:{origin.port}/blob"
        for mode in ([], ["-p"]):
            out = self.tmp / "body.out"
            result = st.run(["curl", "-sS", "--max-time", "10", *mode, "-x", f"http://127.0.0.1:{port_a}",
                             "-o", out, url])
            self.assertEqual(result.returncode, 0, f"curl {mode}: {result.stderr.decode()}\n{agent_a.describe()}")
            self.assertBlobEqual(body, out.read_bytes(), f"body via the chain (curl {mode})")
        self.assertEqual(len(origin.server.requests), 2)
        # The origin saw the last hop (C), not the client; B carried the stream to C, C to the origin.
        agent_b.wait_log(rf"-> 127\.0\.0\.1:{port_c}: closed")
        agent_c.wait_log(rf"-> 127\.0\.0\.1:{origin.port}: closed")
        self.assertNotIn(f"127.0.0.1:{origin.port}", agent_b.log(), "B talked to the origin directly")

    def test_hop_with_auth(self):
        echo = self.echo_server()
        hop_port, _ = self.http_hop("hop", auth="u:p")
        port = st.free_port()
        entry = self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{echo.port}",
                                 "-F", f"http://u:p@127.0.0.1:{hop_port}", name="entry", wait_tcp=port)
        blob = st.random_blob()
        self.assertBlobEqual(blob, st.tcp_roundtrip(port, blob), f"echo through the auth hop\n{entry.log()}")

    def test_hop_with_wrong_password_closes_without_data(self):
        echo = self.echo_server()
        hop_port, hop = self.http_hop("hop", auth="u:s3cr3t-pw")
        port = st.free_port()
        entry = self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{echo.port}",
                                 "-F", f"http://u:not-the-pw@127.0.0.1:{hop_port}", name="entry", wait_tcp=port)
        with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as sock:
            client_port = sock.getsockname()[1]
            self.assertEqual(st.recv_all(sock), b"")
        entry.wait_log(rf"service-0: 127\.0\.0\.1:{client_port} -> 127\.0\.0\.1:{echo.port}: failed: "
                       r"proxy authentication required by the hop")
        hop.wait_log(r"refused 407")
        self.assertEqual(echo.server.connections, [], "the echo server was reached without credentials")
        for process in (entry, hop):  # secrets are never logged
            for secret in ("s3cr3t-pw", "not-the-pw", base64.b64encode(b"u:not-the-pw").decode()):
                self.assertNotIn(secret, process.log(), f"{process.name} logged a password")

    def test_udp_forward_through_http_hop_is_refused_with_reason(self):
        udp_echo = self.udp_echo_server()
        hop_port, _ = self.http_hop("hop")
        port = st.free_port("udp")
        entry = self.start_agent("-L", f"udp://127.0.0.1:{port}/127.0.0.1:{udp_echo.port}",
                                 "-F", f"http://127.0.0.1:{hop_port}", name="entry")
        entry.wait_log(rf"service-0: listening on 127\.0\.0\.1:{port}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"datagram", ("127.0.0.1", port))
            entry.wait_log(r"failed: the hop's protocol cannot carry this network")
        self.assertEqual(udp_echo.peers, set(), "a datagram reached the target around the chain")
        self.assertTrue(entry.alive())

    @unittest.skipUnless(st.have("tinyproxy"), "tinyproxy is not installed")
    def test_tinyproxy_as_hop(self):
        echo = self.echo_server()
        tiny_port = st.free_port()
        conf = self.tmp / "tinyproxy.conf"
        # No ConnectPort line: CONNECT is allowed to every port ("ConnectPort 0" would disable it).
        conf.write_text(f"Port {tiny_port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\n"
                        "Allow 127.0.0.1\nLogLevel Info\n")
        tiny = self.start_process(["tinyproxy", "-d", "-c", conf], name="tinyproxy", wait_tcp=tiny_port)
        port = st.free_port()
        entry = self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{echo.port}",
                                 "-F", f"http://127.0.0.1:{tiny_port}", name="entry", wait_tcp=port)
        blob = st.random_blob()
        # tinyproxy ends the whole tunnel when one side sends EOF (no half-close), so the
        # client reads the full echo back before it closes.
        self.assertBlobEqual(blob, st.tcp_echo_exact(port, blob),
                             f"echo through tinyproxy\n{entry.log()}\n{tiny.log()}")
        tiny.wait_log(rf"CONNECT.*127\.0\.0\.1:{echo.port}")

    def test_dead_node_in_hop_fails_over(self):
        echo = self.echo_server()
        hop_port, hop = self.http_hop("hop")
        dead = st.closed_port()
        port = st.free_port()
        entry = self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{echo.port}",
                                 "-F", f"http://127.0.0.1:{dead},127.0.0.1:{hop_port}", name="entry", wait_tcp=port)
        for attempt in range(6):
            payload = st.random_blob(64 * 1024)
            self.assertBlobEqual(payload, st.tcp_roundtrip(port, payload),
                                 f"connection {attempt}\n{entry.log()}")
        entry.wait_log(rf"chain chain-0 hop-0 node-0 \(127\.0\.0\.1:{dead}\): Connection refused")
        hop.wait_log(rf"-> 127\.0\.0\.1:{echo.port}: closed")


if __name__ == "__main__":
    unittest.main()
