"""SOCKS4/4a/5 and auto handlers, socks4/socks5 connectors: interop both ways with curl,
proxychains4, microsocks and dante, UDP relaying, and refusals of bad input."""

import os
import socket
import sys
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import socks_client  # noqa: E402
import strait_test as st  # noqa: E402

CURL_TIMEOUT = "10"


def curl(*args) -> tuple:
    """Runs curl; returns (exit code, stdout bytes, stderr text)."""
    result = st.run(["curl", "-sS", "--max-time", CURL_TIMEOUT, *args])
    return result.returncode, result.stdout, result.stderr.decode("utf-8", "replace")


class SocksCase(st.StraitTestCase):
    """Helpers shared by the SOCKS suites: agents, peers and an HTTP origin."""

    def socks_agent(self, scheme: str = "socks5", auth: str = "", query: str = "", name: str = "agent",
                    extra=()) -> tuple:
        port = st.free_port()
        prefix = f"{auth}@" if auth else ""
        suffix = f"?{query}" if query else ""
        agent = self.start_agent("-L", f"{scheme}://{prefix}127.0.0.1:{port}{suffix}", *extra, name=name,
                                 wait_tcp=port)
        return port, agent

    def dante(self, socks4: bool = False) -> int:
        port = st.free_port()
        conf = self.tmp / f"danted-{port}.conf"
        conf.write_text(
            "logoutput: stderr\n"
            f"internal: 127.0.0.1 port = {port}\n"
            "external: 127.0.0.1\n"
            "socksmethod: none\nclientmethod: none\n"
            "user.privileged: root\nuser.unprivileged: nobody\n"
            "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
            "socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect udpassociate }\n"
            "socks pass { from: 0.0.0.0/0 to: 127.0.0.0/8 command: udpreply }\n")
        self.start_process(["danted", "-f", conf, "-p", self.tmp / f"danted-{port}.pid"], name="danted",
                           wait_tcp=port)
        return port

    def microsocks(self, user: str = None, password: str = None) -> int:
        port = st.free_port()
        argv = ["microsocks", "-i", "127.0.0.1", "-p", str(port)]
        if user:
            argv += ["-u", user, "-P", password]
        self.start_process(argv, name="microsocks", wait_tcp=port)
        return port

    def assertNoSecrets(self, process, *secrets):
        for secret in secrets:
            self.assertNotIn(secret, process.log(), f"{process.name} logged a secret")


@unittest.skipUnless(st.have("curl"), "curl is not installed")
class CurlThroughStraitTest(SocksCase):
    """Standard clients against our handlers."""

    def setUp(self):
        super().setUp()
        self.body = st.random_blob(256 * 1024)
        self.origin_server = self.origin({"/blob": self.body})
        self.ip_url = f"http://127.0.0.1:{self.origin_server.port}/blob"
        self.name_url = f"http://localhost:{self.origin_server.port}/blob"

    def fetch(self, *args) -> bytes:
        out = self.tmp / "body.out"
        rc, _, err = curl("-o", str(out), *args)
        self.assertEqual(rc, 0, f"curl {' '.join(args)}: {err}")
        return out.read_bytes()

    def test_socks5_with_local_and_remote_name_resolution(self):
        port, agent = self.socks_agent("socks5")
        self.assertBlobEqual(self.body, self.fetch("--socks5", f"127.0.0.1:{port}", self.ip_url), "--socks5")
        self.assertBlobEqual(self.body, self.fetch("--socks5-hostname", f"127.0.0.1:{port}", self.name_url),
                             "--socks5-hostname")
        # With --socks5-hostname the agent got the name, not an address.
        agent.wait_log(rf"service-0: 127\.0\.0\.1:\d+ -> localhost:{self.origin_server.port}: closed")

    def test_socks5_with_auth(self):
        port, agent = self.socks_agent("socks5", auth="alice:0pen-s3same")
        body = self.fetch("-x", f"socks5h://alice:0pen-s3same@127.0.0.1:{port}", self.ip_url)
        self.assertBlobEqual(self.body, body, "socks5 with credentials")
        requests_before = len(self.origin_server.server.requests)
        rc, _, err = curl("-x", f"socks5h://alice:wrong-pw@127.0.0.1:{port}", self.ip_url)
        self.assertNotEqual(rc, 0, "wrong password was accepted")
        rc, _, _ = curl("--socks5", f"127.0.0.1:{port}", self.ip_url)
        self.assertNotEqual(rc, 0, "no credentials were accepted")
        agent.wait_log(r"socks5: refused: wrong credentials for user \"alice\"")
        agent.wait_log(r"socks5: refused: the client does not offer username/password authentication")
        self.assertEqual(len(self.origin_server.server.requests), requests_before,
                         "a refused client reached the origin")
        self.assertNoSecrets(agent, "0pen-s3same", "wrong-pw")

    def test_socks4_and_socks4a(self):
        port, agent = self.socks_agent("socks4")
        self.assertBlobEqual(self.body, self.fetch("--socks4", f"127.0.0.1:{port}", self.ip_url), "--socks4")
        self.assertBlobEqual(self.body, self.fetch("--socks4a", f"127.0.0.1:{port}", self.name_url), "--socks4a")
        agent.wait_log(rf"-> localhost:{self.origin_server.port}: closed")

    def test_socks4_user_id_checked_against_users(self):
        # SOCKS4 carries a user id but no password: only users without one may pass.
        port, agent = self.socks_agent("socks4", auth="bob")
        self.assertBlobEqual(self.body, self.fetch("--socks4", f"127.0.0.1:{port}", "-U", "bob:", self.ip_url),
                             "user id bob")
        rc, _, _ = curl("--socks4", f"127.0.0.1:{port}", "-U", "eve:", self.ip_url)
        self.assertNotEqual(rc, 0)
        agent.wait_log(r"socks4: refused 93: user id \"eve\" is not allowed")

    def test_auto_handler_speaks_http_socks4_and_socks5_on_one_port(self):
        port = st.free_port()
        agent = self.start_agent("-L", f":{port}", wait_tcp=port)
        for args in (["-x", f"http://127.0.0.1:{port}"], ["-x", f"socks5h://127.0.0.1:{port}"],
                     ["--socks4a", f"127.0.0.1:{port}"]):
            self.assertBlobEqual(self.body, self.fetch(*args, self.ip_url), f"auto handler with {args}")
        self.assertEqual(len(self.origin_server.server.requests), 3, agent.log())

    @unittest.skipUnless(st.have("proxychains4"), "proxychains4 is not installed")
    def test_proxychains_runs_a_client_through_socks5(self):
        port, agent = self.socks_agent("socks5", auth="pc:pc-pass")
        conf = self.tmp / "proxychains.conf"
        conf.write_text("strict_chain\nquiet_mode\ntcp_read_time_out 15000\ntcp_connect_time_out 8000\n"
                        f"[ProxyList]\nsocks5 127.0.0.1 {port} pc pc-pass\n")
        out = self.tmp / "pc.out"
        # curl here has no proxy option: proxychains4 diverts its connect() through the agent.
        result = st.run(["proxychains4", "-f", conf, "curl", "-sS", "--max-time", CURL_TIMEOUT, "-o", out,
                         self.ip_url])
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertBlobEqual(self.body, out.read_bytes(), "body via proxychains4")
        agent.wait_log(rf"-> 127\.0\.0\.1:{self.origin_server.port}: closed")


class StraitThroughSocksServersTest(SocksCase):
    """Our connectors as chain hops through real SOCKS servers, and through our own handlers."""

    def forward_via(self, hop: str, name: str = "entry"):
        echo = self.echo_server()
        port = st.free_port()
        entry = self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{echo.port}", "-F", hop, name=name,
                                 wait_tcp=port)
        blob = st.random_blob()
        self.assertBlobEqual(blob, st.tcp_echo_exact(port, blob), f"echo via {hop}\n{entry.log()}")
        return echo, entry

    @unittest.skipUnless(st.have("microsocks"), "microsocks is not installed")
    def test_socks5_connector_through_microsocks_with_auth(self):
        hop = self.microsocks("mu", "mu-pass")
        self.forward_via(f"socks5://mu:mu-pass@127.0.0.1:{hop}")

    @unittest.skipUnless(st.have("microsocks"), "microsocks is not installed")
    def test_wrong_password_at_microsocks_fails_the_connection(self):
        hop = self.microsocks("mu", "mu-pass")
        echo = self.echo_server()
        port = st.free_port()
        entry = self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{echo.port}",
                                 "-F", f"socks5://mu:bad-pass@127.0.0.1:{hop}", wait_tcp=port)
        with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as sock:
            self.assertEqual(st.recv_all(sock), b"")
        entry.wait_log(r"failed: proxy authentication required by the hop")
        self.assertEqual(echo.server.connections, [])
        self.assertNoSecrets(entry, "bad-pass")

    @unittest.skipUnless(st.have("danted"), "dante-server is not installed")
    def test_socks5_and_socks4_connectors_through_dante(self):
        hop = self.dante()
        self.forward_via(f"socks5://127.0.0.1:{hop}", name="via-socks5")
        self.forward_via(f"socks4://127.0.0.1:{hop}", name="via-socks4")

    @unittest.skipUnless(st.have("danted"), "dante-server is not installed")
    def test_udp_forward_through_dante_with_udp_associate(self):
        hop = self.dante()
        udp_echo = self.udp_echo_server()
        port = st.free_port("udp")
        entry = self.start_agent("-L", f"udp://127.0.0.1:{port}/127.0.0.1:{udp_echo.port}",
                                 "-F", f"socks5://127.0.0.1:{hop}?relay=udp")
        entry.wait_udp_echo(port)
        # The echo saw dante's relay socket, not this agent.
        self.assertTrue(udp_echo.peers)

    def test_udp_forward_through_our_socks5_hop(self):
        hop_port, hop = self.socks_agent("socks5", query="udp=true", name="hop")
        udp_echo = self.udp_echo_server()
        port = st.free_port("udp")
        entry = self.start_agent("-L", f"udp://127.0.0.1:{port}/127.0.0.1:{udp_echo.port}",
                                 "-F", f"socks5://127.0.0.1:{hop_port}", name="entry")
        entry.wait_udp_echo(port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(st.IO_TIMEOUT)
            for size in (1, 1400, 60000):
                payload = os.urandom(size)
                sock.sendto(payload, ("127.0.0.1", port))
                self.assertEqual(sock.recv(65536), payload, f"{size}-byte datagram via the UDP tunnel")
        # The hop carried them in one GOST UDP tunnel, ended when the entry's session idled out.
        hop.wait_log(r"-> UDP tunnel: closed, 61401 B from client, 61401 B to client")

    def test_http_entry_through_socks5_then_socks4_hops(self):
        body = st.random_blob(128 * 1024)
        origin = self.origin({"/b": body})
        port_b, agent_b = self.socks_agent("socks5", auth="u:p", name="b")
        port_c, agent_c = self.socks_agent("socks4", name="c")
        port_a = st.free_port()
        agent_a = self.start_agent("-L", f"http://127.0.0.1:{port_a}", "-F", f"socks5://u:p@127.0.0.1:{port_b}",
                                   "-F", f"socks4://127.0.0.1:{port_c}", name="a", wait_tcp=port_a)
        out = self.tmp / "b.out"
        rc, _, err = curl("-x", f"http://127.0.0.1:{port_a}", "-o", str(out), f"http://127.0.0.1:{origin.port}/b")
        self.assertEqual(rc, 0, f"{err}\n{agent_a.log()}")
        self.assertBlobEqual(body, out.read_bytes(), "body through two SOCKS hops")
        agent_b.wait_log(rf"-> 127\.0\.0\.1:{port_c}: closed")
        agent_c.wait_log(rf"-> 127\.0\.0\.1:{origin.port}: closed")


class UdpAssociateTest(SocksCase):
    def test_round_trip_and_fragment_refusal(self):
        port, agent = self.socks_agent("socks5", query="udp=true")
        udp_echo = self.udp_echo_server()
        control = socks_client.Socks5(port)
        relay = control.udp_associate()
        self.assertEqual(relay[0], "127.0.0.1")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(st.IO_TIMEOUT)
            sock.sendto(socks_client.datagram("127.0.0.1", udp_echo.port, b"part", fragment=1), relay)
            for payload in (b"hello", os.urandom(30000)):
                sock.sendto(socks_client.datagram("127.0.0.1", udp_echo.port, payload), relay)
                data, source = sock.recvfrom(65536)
                self.assertEqual(source, relay)
                self.assertEqual(socks_client.parse_datagram(data), (("127.0.0.1", udp_echo.port), payload))
        agent.wait_log(r"UDP ASSOCIATE: fragmented datagram \(FRAG 1\) dropped")
        control.close()
        # The association ends with its control connection; its summary line says what it carried.
        agent.wait_log(r"-> UDP ASSOCIATE 127\.0\.0\.1:\d+: closed, 30005 B from client, 30005 B to client")

    def test_udp_is_refused_unless_enabled(self):
        port, agent = self.socks_agent("socks5")
        control = socks_client.Socks5(port)
        with self.assertRaises(socks_client.SocksError) as refused:
            control.udp_associate()
        self.assertEqual(refused.exception.reply, 2)
        agent.wait_log(r"socks5: refused: UDP relay is disabled \(enable with udp=true\)")


class BadInputTest(SocksCase):
    def test_bad_handshakes_are_refused_while_a_transfer_goes_on(self):
        port, agent = self.socks_agent("socks5", auth="u:p", query="readTimeout=1s")
        sink = self.sink_server()
        blob = st.random_blob(8 << 20)
        outcome = {}

        def transfer():
            control = socks_client.Socks5(port, "u", "p")
            sock = control.connect("127.0.0.1", sink.port)
            for offset in range(0, len(blob), 1 << 16):
                sock.sendall(blob[offset:offset + (1 << 16)])
                time.sleep(0.001)  # stretch the transfer over the bad connections below
            sock.shutdown(socket.SHUT_WR)
            outcome["digest"] = st.recv_all(sock).strip().decode()
            sock.close()

        thread = threading.Thread(target=transfer, daemon=True)
        thread.start()
        # Each bad input gets its protocol refusal (or a close) and a log line naming the reason.
        cases = [
            (b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00", b"\x05\xff", r"bad greeting: not SOCKS5 \(version byte 4\)"),
            (b"\x05\x00", b"\x05\xff", r"bad greeting: greeting offers no methods"),
            (b"\x05\x01\x02\x07\x01u\x01p", b"\x05\x02\x01\x01", r"bad authentication request"),
            (b"\x05\x01\x02\x01\x01u\x01p\x05\x09\x00\x01\x7f\x00\x00\x01\x00\x50", b"\x05\x02\x01\x00\x05\x07",
             r"refused request \(reply 7\): unknown command 9"),
            (b"\x05\x01\x02\x01\x01u\x01p\x05\x01\x00\x03\x00\x00\x50", b"\x05\x02\x01\x00\x05\x01",
             r"refused request \(reply 1\): zero-length domain name"),
            (b"\x05\x01\x02\x01\x01u\x01p\x05\x01\x00\x06\x00", b"\x05\x02\x01\x00\x05\x08",
             r"refused request \(reply 8\): unknown address type 6"),
        ]
        for request, expected, reason in cases:
            with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as sock:
                sock.sendall(request)
                self.assertEqual(st.recv_all(sock)[:len(expected)], expected, f"answer to {request!r}")
            agent.wait_log(rf"service-0: 127\.0\.0\.1:\d+: socks5: {reason}")
        # Oversized input: a greeting claiming 255 methods then garbage well past any message.
        with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as sock:
            sock.sendall(b"\x05\xff" + os.urandom(255) + b"\x05" * 4096)
            st.recv_all(sock)
        # Truncated: half a greeting, then silence, ends after readTimeout.
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as sock:
            sock.sendall(b"\x05\x02\x00")
            self.assertEqual(st.recv_all(sock), b"")
        self.assertLess(time.monotonic() - started, 5)
        agent.wait_log(r"socks5: no complete handshake within 1s")
        thread.join(60)
        self.assertEqual(outcome.get("digest"), st.sha256(blob), "the long transfer was disturbed")
        self.assertTrue(agent.alive())


if __name__ == "__main__":
    unittest.main()
