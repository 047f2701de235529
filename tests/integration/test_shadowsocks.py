"""Shadowsocks AEAD (ss over TCP, ssu over UDP) against shadowsocks-libev, both directions, for
each cipher: ss-local -> our ss/ssu server with curl and a SOCKS5 UDP client carrying the
traffic, and our ss/ssu connector -> ss-server. Bad input gets no reply."""

import socket
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import socks_client  # noqa: E402
import strait_test as st  # noqa: E402

METHODS = ["aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305"]
PASSWORD = "s3cret-pass"
# shadowsocks-libev relays UDP packets up to its MTU-sized buffer (1397 B with salt and tag).
UDP_SIZES = (1, 500, 1200)


def udp_exchange(sock: socket.socket, address, payload: bytes) -> bytes:
    sock.sendto(payload, address)
    data, _ = sock.recvfrom(65536)
    return data


class ShadowsocksCase(st.StraitTestCase):
    def setUp(self):
        super().setUp()
        self.blob = st.random_blob()
        self.web = self.origin({"/blob": self.blob})
        self.url = f"http://127.0.0.1:{self.web.port}/blob"

    def curl(self, *args) -> bytes:
        result = st.run(["curl", "-sS", "--max-time", "20", *args, self.url])
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        return result.stdout

    def ss_local(self, server: int, method: str, password: str = PASSWORD) -> int:
        local = st.free_port()
        self.start_process(["ss-local", "-s", "127.0.0.1", "-p", str(server), "-b", "127.0.0.1", "-l", str(local),
                            "-k", password, "-m", method, "-u"], name="ss-local", wait_tcp=local)
        return local

    def ss_server(self, method: str) -> int:
        port = st.free_port()
        self.start_process(["ss-server", "-s", "127.0.0.1", "-p", str(port), "-k", PASSWORD, "-m", method, "-u"],
                           name="ss-server", wait_tcp=port)
        return port


@unittest.skipUnless(st.have("ss-local") and st.have("curl"), "shadowsocks-libev or curl is not installed")
class LibevClientToOurServerTest(ShadowsocksCase):
    def start_our_server(self, method: str, *extra) -> int:
        port = st.free_port()
        self.start_agent("-L", f"ss://{method}:{PASSWORD}@127.0.0.1:{port}",
                         "-L", f"ssu://{method}:{PASSWORD}@127.0.0.1:{port}", *extra, wait_tcp=port)
        return port

    def test_tcp_each_cipher(self):
        for method in METHODS:
            with self.subTest(method=method):
                local = self.ss_local(self.start_our_server(method), method)
                body = self.curl("--socks5-hostname", f"127.0.0.1:{local}")
                self.assertBlobEqual(self.blob, body, f"body through ss-local -> our ss ({method})")

    def test_udp_each_cipher(self):
        echo = self.udp_echo_server()
        for method in METHODS:
            with self.subTest(method=method):
                local = self.ss_local(self.start_our_server(method), method)
                control = socks_client.Socks5(local)
                self.addCleanup(control.close)
                relay = control.udp_associate()
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.settimeout(st.IO_TIMEOUT)
                    for size in UDP_SIZES:
                        payload = st.random_blob(size)
                        reply = udp_exchange(sock, ("127.0.0.1", relay[1]),
                                             socks_client.datagram("127.0.0.1", echo.port, payload))
                        source, data = socks_client.parse_datagram(reply)
                        self.assertEqual(source, ("127.0.0.1", echo.port))
                        self.assertEqual(st.sha256(data), st.sha256(payload), f"datagram of {size} B ({method})")

    def test_wrong_password_and_random_bytes_get_no_reply(self):
        port = self.start_our_server("aes-256-gcm", "-D")
        local = self.ss_local(port, "aes-256-gcm", password="not-the-password")
        result = st.run(["curl", "-sS", "--max-time", "2", "--socks5-hostname", f"127.0.0.1:{local}", self.url])
        self.assertNotEqual(result.returncode, 0, "a wrong password must not get through")
        self.assertEqual(result.stdout, b"")
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(st.random_blob(300))
            with self.assertRaises(socket.timeout, msg="no reply and no close: held"):
                sock.recv(1)
        # Other connections are undisturbed.
        good = self.ss_local(port, "aes-256-gcm")
        self.assertBlobEqual(self.blob, self.curl("--socks5-hostname", f"127.0.0.1:{good}"), "body after probes")


@unittest.skipUnless(st.have("ss-server") and st.have("curl"), "shadowsocks-libev or curl is not installed")
class OurConnectorToLibevServerTest(ShadowsocksCase):
    def test_tcp_each_cipher(self):
        for method in METHODS:
            with self.subTest(method=method):
                server = self.ss_server(method)
                proxy = st.free_port()
                self.start_agent("-L", f"http://127.0.0.1:{proxy}", "-F", f"ss://{method}:{PASSWORD}@127.0.0.1:{server}",
                                 wait_tcp=proxy)
                body = self.curl("-x", f"http://127.0.0.1:{proxy}")
                self.assertBlobEqual(self.blob, body, f"body through our ss connector -> ss-server ({method})")

    def test_udp_forward_each_cipher(self):
        echo = self.udp_echo_server()
        for method in METHODS:
            with self.subTest(method=method):
                server = self.ss_server(method)
                forward = st.free_port("udp")
                agent = self.start_agent("-L", f"udp://127.0.0.1:{forward}/127.0.0.1:{echo.port}",
                                         "-F", f"ssu://{method}:{PASSWORD}@127.0.0.1:{server}")
                agent.wait_udp_echo(forward)
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.settimeout(st.IO_TIMEOUT)
                    for size in UDP_SIZES:
                        payload = st.random_blob(size)
                        self.assertEqual(st.sha256(udp_exchange(sock, ("127.0.0.1", forward), payload)),
                                         st.sha256(payload), f"datagram of {size} B ({method})")

    def test_sip002_base64_userinfo(self):
        import base64
        server = self.ss_server("chacha20-ietf-poly1305")
        userinfo = base64.urlsafe_b64encode(f"chacha20-ietf-poly1305:{PASSWORD}".encode()).decode().rstrip("=")
        proxy = st.free_port()
        self.start_agent("-L", f"http://127.0.0.1:{proxy}", "-F", f"ss://{userinfo}@127.0.0.1:{server}", wait_tcp=proxy)
        self.assertBlobEqual(self.blob, self.curl("-x", f"http://127.0.0.1:{proxy}"), "body with SIP002 userinfo")


@unittest.skipUnless(st.have("curl"), "curl is not installed")
class OurChainTest(ShadowsocksCase):
    def test_ss_hop_then_ss_server(self):
        server, proxy = st.free_port(), st.free_port()
        self.start_agent("-L", f"ss://aes-128-gcm:{PASSWORD}@127.0.0.1:{server}", wait_tcp=server)
        self.start_agent("-L", f"socks5://127.0.0.1:{proxy}", "-F", f"ss://aes-128-gcm:{PASSWORD}@127.0.0.1:{server}",
                         wait_tcp=proxy)
        self.assertBlobEqual(self.blob, self.curl("--socks5-hostname", f"127.0.0.1:{proxy}"), "body through agents")


if __name__ == "__main__":
    unittest.main()
