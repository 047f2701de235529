"""Encrypted and multiplexed channels (tls, ws, wss) with every handler over them, the GOST
relay protocol, and the seed's pairs run literally; interop with curl, stunnel and an
independent WebSocket implementation (python3-websockets)."""

import json
import socket
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import strait_test as st  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"
WS_PEER = Path(__file__).resolve().parents[1] / "support" / "ws_peer.py"

CHANNELS = ["tcp", "tls", "ws", "wss", "mtcp", "mtls", "mws", "mwss", "h2", "h2c", "pht", "phts"]
HANDLERS = ["http", "socks5", "relay", "forward"]


def have_system_websockets() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import websockets"], capture_output=True).returncode == 0


def make_certificate(directory: Path) -> tuple:
    cert, key = directory / "cert.pem", directory / "key.pem"
    st.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True)
    return cert, key


class SeedPairsTest(st.StraitTestCase):
    """The seed's examples, flag for flag, with curl as the client."""

    def setUp(self):
        super().setUp()
        self.blob = st.random_blob()
        self.web = self.origin({"/blob": self.blob})

    def curl(self, *args) -> bytes:
        result = st.run(["curl", "-sS", "--max-time", "20", *args])
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        return result.stdout

    def test_relay_wss_with_auth_behind_http_proxy(self):
        server, client = st.free_port(), st.free_port()
        self.start_agent("-L", f"relay+wss://gost:gost@127.0.0.1:{server}", wait_tcp=server)
        self.start_agent("-L", f"http://127.0.0.1:{client}", "-F", f"relay+wss://gost:gost@127.0.0.1:{server}",
                         wait_tcp=client)
        body = self.curl("-x", f"http://127.0.0.1:{client}", f"http://127.0.0.1:{self.web.port}/blob")
        self.assertBlobEqual(self.blob, body, "body through http -> relay+wss")

    def test_relay_wss_forward_mode(self):
        server, client = st.free_port(), st.free_port()
        self.start_agent("-L", f"relay+wss://127.0.0.1:{server}/127.0.0.1:{self.web.port}", wait_tcp=server)
        self.start_agent("-L", f"tcp://127.0.0.1:{client}", "-F", f"relay+wss://127.0.0.1:{server}", wait_tcp=client)
        body = self.curl(f"http://127.0.0.1:{client}/blob")
        self.assertBlobEqual(self.blob, body, "body through tcp -> relay+wss forward")

    def test_tls_forward_is_https_and_forward_tls_turns_it_back(self):
        proxy, tls_port, plain = st.free_port(), st.free_port(), st.free_port()
        self.start_agent("-L", f"tls://127.0.0.1:{tls_port}/127.0.0.1:{proxy}", "-L", f"http://127.0.0.1:{proxy}",
                         wait_tcp=tls_port)
        self.start_agent("-L", f"tcp://127.0.0.1:{plain}", "-F", f"forward+tls://127.0.0.1:{tls_port}", wait_tcp=plain)
        via_https = self.curl("--proxy", f"https://127.0.0.1:{tls_port}", "--proxy-insecure",
                              f"http://127.0.0.1:{self.web.port}/blob")
        self.assertBlobEqual(self.blob, via_https, "body through tls:// + http (an https proxy)")
        via_plain = self.curl("-x", f"http://127.0.0.1:{plain}", f"http://127.0.0.1:{self.web.port}/blob")
        self.assertBlobEqual(self.blob, via_plain, "body through tcp -> forward+tls")

    def test_https_proxy(self):
        port = st.free_port()
        self.start_agent("-L", f"https://127.0.0.1:{port}", wait_tcp=port)
        body = self.curl("--proxy", f"https://127.0.0.1:{port}", "--proxy-insecure",
                         f"http://127.0.0.1:{self.web.port}/blob")
        self.assertBlobEqual(self.blob, body, "body through an https proxy")


class HandlerChannelMatrixTest(st.StraitTestCase):
    """Each handler over each channel, reached through the matching connector and dialer:
    1 MiB to an echo server and back, compared by SHA-256."""

    def test_every_handler_over_every_channel(self):
        echo = self.echo_server()
        services, ports = [], {}
        for handler in HANDLERS:
            for channel in CHANNELS:
                port = st.free_port()
                ports[(handler, channel)] = port
                target = f"/127.0.0.1:{echo.port}" if handler == "forward" else ""
                services += ["-L", f"{handler}+{channel}://127.0.0.1:{port}{target}"]
        self.start_agent(*services, wait_tcp=ports[(HANDLERS[-1], CHANNELS[-1])], name="server")
        # One client agent: a forward service per pair, each with its own one-hop chain.
        config = {"services": [], "chains": []}
        locals_ = {}
        for index, ((handler, channel), port) in enumerate(ports.items()):
            locals_[(handler, channel)] = local = st.free_port()
            config["services"].append({
                "name": f"{handler}-{channel}", "addr": f"127.0.0.1:{local}",
                "handler": {"type": "tcp", "chain": f"chain-{index}"}, "listener": {"type": "tcp"},
                "forwarder": {"nodes": [{"name": "echo", "addr": f"127.0.0.1:{echo.port}"}]}})
            config["chains"].append({"name": f"chain-{index}", "hops": [{"name": "hop", "nodes": [{
                "name": "node", "addr": f"127.0.0.1:{port}",
                "connector": {"type": handler}, "dialer": {"type": channel}}]}]})
        config_file = self.tmp / "client.json"
        config_file.write_text(json.dumps(config))
        last = locals_[(HANDLERS[-1], CHANNELS[-1])]
        self.start_agent("-C", str(config_file), wait_tcp=last, name="client")
        for (handler, channel), local in locals_.items():
            with self.subTest(handler=handler, channel=channel):
                blob = st.random_blob()
                self.assertBlobEqual(blob, st.tcp_echo_exact(local, blob), f"echo through {handler}+{channel}")

    def test_udp_through_relay_over_tls(self):
        udp_echo = self.udp_echo_server()
        server, local = st.free_port(), st.free_port("udp")
        self.start_agent("-L", f"relay+tls://127.0.0.1:{server}", wait_tcp=server)
        self.start_agent("-L", f"udp://127.0.0.1:{local}/127.0.0.1:{udp_echo.port}",
                         "-F", f"relay+tls://127.0.0.1:{server}").wait_udp_echo(local)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(st.IO_TIMEOUT)
            for size in (1, 1400, 8000):
                payload = bytes([size % 251]) * size
                sock.sendto(payload, ("127.0.0.1", local))
                reply, _ = sock.recvfrom(65536)
                self.assertEqual(reply, payload, f"{size}-byte datagram through relay+tls")


class BadInputTest(st.StraitTestCase):
    """Refusals name the peer and the reason; the agent keeps serving."""

    def setUp(self):
        super().setUp()
        self.echo = self.echo_server()
        self.tls_port, self.ws_port, self.relay_port = st.free_port(), st.free_port(), st.free_port()
        self.agent = self.start_agent("-L", f"forward+tls://127.0.0.1:{self.tls_port}/127.0.0.1:{self.echo.port}",
                                      "-L", f"forward+ws://127.0.0.1:{self.ws_port}/127.0.0.1:{self.echo.port}",
                                      "-L", f"relay://u:p@127.0.0.1:{self.relay_port}", wait_tcp=self.relay_port)

    def still_serves(self):
        local = st.free_port()
        self.start_agent("-L", f"tcp://127.0.0.1:{local}", "-F", f"forward+tls://127.0.0.1:{self.tls_port}",
                         wait_tcp=local, name="client")
        blob = st.random_blob(64 << 10)
        self.assertBlobEqual(blob, st.tcp_echo_exact(local, blob), "echo after the bad input")

    def exchange(self, port: int, data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as sock:
            sock.sendall(data)
            return st.recv_all(sock)

    def test_plain_text_on_tls_port(self):
        self.exchange(self.tls_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.agent.wait_log(r"listener 127\.0\.0\.1:\d+: client 127\.0\.0\.1:\d+: channel handshake failed: "
                            r"http request")
        self.still_serves()

    def test_tls_client_on_plain_relay_port(self):
        result = st.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.relay_port}"], input=b"")
        self.assertNotEqual(result.returncode, 0)
        self.agent.wait_log(r"relay: bad request: relay: unsupported version 0x16|relay: bad request")
        self.still_serves()

    def test_plain_request_on_ws_path(self):
        reply = self.exchange(self.ws_port, b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 400"), reply[:100])
        self.agent.wait_log(r"client 127\.0\.0\.1:\d+: channel handshake failed: .*WebSocket")
        reply = self.exchange(self.ws_port, b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                                            b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                                            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 404"), reply[:100])
        self.still_serves()

    def test_bad_relay_header_and_bad_auth(self):
        reply = self.exchange(self.relay_port, bytes([0x01, 0x01, 0x00, 0x03, 0x09, 0x00, 0x00]))
        self.assertEqual(reply, bytes([0x01, 0x01, 0x00, 0x00]), "BadRequest for an unknown feature")
        self.agent.wait_log(r"relay: bad request: .*feature")
        auth = bytes([0x01, 0x00, 0x04, 0x01, 0x75, 0x01, 0x78])  # UserAuth u / x
        reply = self.exchange(self.relay_port, bytes([0x01, 0x01, 0x00, len(auth)]) + auth)
        self.assertEqual(reply, bytes([0x01, 0x02, 0x00, 0x00]), "Unauthorized for a wrong password")
        self.agent.wait_log(r'relay: refused: wrong credentials for user "u"')
        self.still_serves()


class InteropTest(st.StraitTestCase):
    def setUp(self):
        super().setUp()
        self.echo = self.echo_server()

    def start_stunnel(self, section: str) -> None:
        config = self.tmp / f"stunnel-{st.free_port()}.conf"
        config.write_text("foreground = yes\npid =\n" + section)
        self.start_process(["stunnel4" if st.have("stunnel4") else "stunnel", str(config)], name="stunnel")

    @unittest.skipUnless(st.have("stunnel4") or st.have("stunnel"), "stunnel is not installed")
    def test_stunnel_client_in_front_of_our_tls_listener(self):
        port, front = st.free_port(), st.free_port()
        self.start_agent("-L", f"tls://127.0.0.1:{port}/127.0.0.1:{self.echo.port}", wait_tcp=port)
        self.start_stunnel(f"[c]\nclient = yes\naccept = 127.0.0.1:{front}\nconnect = 127.0.0.1:{port}\n")
        st.wait_tcp(front)
        blob = st.random_blob()
        self.assertBlobEqual(blob, st.tcp_echo_exact(front, blob), "echo through stunnel -> tls listener")

    @unittest.skipUnless(st.have("stunnel4") or st.have("stunnel"), "stunnel is not installed")
    def test_stunnel_server_behind_our_forward_tls_connector(self):
        cert, key = make_certificate(self.tmp)
        server, local = st.free_port(), st.free_port()
        self.start_stunnel(f"[s]\ncert = {cert}\nkey = {key}\naccept = 127.0.0.1:{server}\n"
                           f"connect = 127.0.0.1:{self.echo.port}\n")
        st.wait_tcp(server)
        self.start_agent("-L", f"tcp://127.0.0.1:{local}",
                         "-F", f"forward+tls://127.0.0.1:{server}?secure=true&caFile={cert}&serverName=localhost",
                         wait_tcp=local)
        blob = st.random_blob()
        self.assertBlobEqual(blob, st.tcp_echo_exact(local, blob), "echo through forward+tls -> stunnel")

    @unittest.skipUnless(have_system_websockets(), "python3-websockets is not installed for /usr/bin/python3")
    def test_websockets_client_against_our_ws_listener(self):
        port = st.free_port()
        self.start_agent("-L", f"forward+ws://127.0.0.1:{port}/127.0.0.1:{self.echo.port}", wait_tcp=port)
        result = st.run([SYSTEM_PYTHON, str(WS_PEER), "client", f"ws://127.0.0.1:{port}/ws", str(1 << 20)])
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        sent, received = result.stdout.decode().split()
        self.assertEqual(sent, received, "echo through our ws listener, python3-websockets client")

    @unittest.skipUnless(have_system_websockets(), "python3-websockets is not installed for /usr/bin/python3")
    def test_our_ws_dialer_against_websockets_server(self):
        peer = self.start_process([SYSTEM_PYTHON, str(WS_PEER), "echo-server"], name="ws-peer")
        port = int(peer.wait_log(r"^(\d+)$").group(1))
        local = st.free_port()
        self.start_agent("-L", f"tcp://127.0.0.1:{local}", "-F", f"forward+ws://127.0.0.1:{port}", wait_tcp=local)
        blob = st.random_blob()
        self.assertBlobEqual(blob, st.tcp_echo_exact(local, blob), "echo from python3-websockets via our ws dialer")


if __name__ == "__main__":
    unittest.main()
