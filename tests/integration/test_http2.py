"""HTTP/2 channels (`h2`, `h2c`) and the `http2` listener, handler and connector.

curl 7.88 (Debian 12) speaks HTTP/2 to origins only: it has no --proxy-http2 (curl 8.1+), its
HTTPS proxies get HTTP/1.1, and it cannot tunnel through an h2/h2c CONNECT stream. So curl
reaches the HTTP/2 hops through a plain HTTP proxy agent whose chain uses our h2/h2c/http2
dialers and connectors (`-L http://:A -F ...://:B`), and talks HTTP/2 itself only where it
can: prior knowledge and `Upgrade: h2c` against an h2c listener. nghttp (nghttp2-client)
sends real HTTP/2 requests to the http2 listener and is skipped when missing.
"""

import socket
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import strait_test as st  # noqa: E402

CURL_TIMEOUT = "10"  # curl --max-time, seconds; the subprocess itself is bounded by st.RUN_TIMEOUT


@unittest.skipUnless(st.have("curl"), "curl is not installed")
class Http2Test(st.StraitTestCase):
    def setUp(self):
        super().setUp()
        self.body = st.random_blob(1 << 20)
        self.origin_server = self.origin({"/blob": self.body})
        self.origin_url = f"http://127.0.0.1:{self.origin_server.port}"
        self.upload = self.tmp / "upload.bin"
        self.upload_bytes = st.random_blob(1 << 20)
        self.upload.write_bytes(self.upload_bytes)

    def hop(self, listener: str, connector: str):
        """Agent B serves `listener`; agent A is an HTTP proxy whose chain is `connector` to B."""
        port_b = st.free_port()
        b = self.start_agent("-L", f"{listener}://127.0.0.1:{port_b}", name="b", wait_tcp=port_b)
        port_a = st.free_port()
        a = self.start_agent("-L", f"http://127.0.0.1:{port_a}", "-F", f"{connector}://127.0.0.1:{port_b}",
                             name="a", wait_tcp=port_a)
        self.port_b = port_b
        return f"http://127.0.0.1:{port_a}", a, b

    def curl(self, *args):
        """Runs curl; returns (exit code, http code, http version, body, stderr text)."""
        out = self.tmp / "body.out"
        result = st.run(["curl", "-sS", "--max-time", CURL_TIMEOUT, "-o", out,
                         "-w", "%{http_code} %{http_version}", *args])
        body = out.read_bytes() if out.exists() else b""
        code, _, version = result.stdout.decode().partition(" ")
        return result.returncode, code, version, body, result.stderr.decode("utf-8", "replace")

    def check_proxy(self, proxy: str, a, b):
        """A 1 MiB GET, a 1 MiB POST and a 1 MiB GET through CONNECT, each checked by SHA-256."""
        rc, code, _, body, err = self.curl("-x", proxy, f"{self.origin_url}/blob")
        self.assertEqual((rc, code), (0, "200"), f"{err}\n{a.describe()}\n{b.describe()}")
        self.assertBlobEqual(self.body, body, "GET body")
        rc, code, _, body, err = self.curl("-x", proxy, "-H", "Expect:", "--data-binary", f"@{self.upload}",
                                           f"{self.origin_url}/post")
        self.assertEqual((rc, code), (0, "200"), f"{err}\n{a.describe()}\n{b.describe()}")
        self.assertEqual(body.decode().split(), [st.sha256(self.upload_bytes), str(len(self.upload_bytes))])
        rc, code, _, body, err = self.curl("-p", "-x", proxy, f"{self.origin_url}/blob")
        self.assertEqual((rc, code), (0, "200"), f"{err}\n{a.describe()}\n{b.describe()}")
        self.assertBlobEqual(self.body, body, "body through CONNECT")

    # --- our clients and servers -----------------------------------------------------

    def test_http2_listener_handler_and_connector(self):
        proxy, a, b = self.hop("http2", "http2")
        self.check_proxy(proxy, a, b)
        # B's http2 handler tunnelled each request of A's HTTP/2 connection.
        b.wait_log(rf"service-0: 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:{self.origin_server.port}: closed")

    def test_http2_connector_sends_proxy_credentials(self):
        port_b = st.free_port()
        b = self.start_agent("-L", f"http2://user:secret@127.0.0.1:{port_b}", name="b", wait_tcp=port_b)
        good, bad = st.free_port(), st.free_port()
        self.start_agent("-L", f"http://127.0.0.1:{good}", "-F", f"http2://user:secret@127.0.0.1:{port_b}",
                         name="good", wait_tcp=good)
        self.start_agent("-L", f"http://127.0.0.1:{bad}", "-F", f"http2://user:wrong@127.0.0.1:{port_b}",
                         name="bad", wait_tcp=bad)
        rc, code, _, body, err = self.curl("-x", f"http://127.0.0.1:{good}", f"{self.origin_url}/blob")
        self.assertEqual((rc, code), (0, "200"), err)
        self.assertBlobEqual(self.body, body, "GET body")
        rc, code, _, _, err = self.curl("-x", f"http://127.0.0.1:{bad}", f"{self.origin_url}/blob")
        self.assertEqual(code, "502", err)  # the hop refused: A cannot reach the target
        b.wait_log(r"refused 407: missing or wrong proxy credentials")

    def test_http_over_h2_tunnel(self):
        proxy, a, b = self.hop("http+h2", "http+h2")
        self.check_proxy(proxy, a, b)

    def test_http_over_h2c_tunnel(self):
        proxy, a, b = self.hop("http+h2c", "http+h2c")
        self.check_proxy(proxy, a, b)

    def test_malformed_input_ends_only_that_session(self):
        proxy, a, b = self.hop("http+h2c", "http+h2c")
        rc, code, _, _, err = self.curl("-x", proxy, f"{self.origin_url}/blob")  # A's session to B is open now
        self.assertEqual((rc, code), (0, "200"), err)
        with socket.create_connection(("127.0.0.1", self.port_b), timeout=st.IO_TIMEOUT) as sock:
            client_port = sock.getsockname()[1]
            sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nnot an HTTP/2 frame\r\n")
            st.recv_all(sock)  # B ends this connection (after its GOAWAY)
        b.wait_log(rf"HTTP/2 session with 127\.0\.0\.1:{client_port} ended after \d+ ms: protocol error: ")
        # A's connection to B carries on.
        rc, code, _, body, err = self.curl("-x", proxy, f"{self.origin_url}/blob")
        self.assertEqual((rc, code), (0, "200"), err)
        self.assertBlobEqual(self.body, body, "GET body after the bad session")

    # --- curl and nghttp as HTTP/2 clients ---------------------------------------------

    def h2c_listener(self, query: str = ""):
        port = st.free_port()
        agent = self.start_agent("-L", f"http+h2c://127.0.0.1:{port}{query}", wait_tcp=port)
        return port, agent

    def test_curl_prior_knowledge_and_upgrade_against_h2c_listener(self):
        port, agent = self.h2c_listener()
        rc, code, version, _, err = self.curl("--http2-prior-knowledge", f"http://127.0.0.1:{port}/")
        self.assertEqual((rc, code, version), (0, "405", "2"), err)
        agent.wait_log(r"h2c listener: 127\.0\.0\.1:\d+: refused 405 GET /")
        rc, code, version, _, err = self.curl("--http2", f"http://127.0.0.1:{port}/")  # Upgrade: h2c
        self.assertEqual((rc, code, version), (0, "405", "2"), err)

    def test_curl_against_h2c_listener_with_path(self):
        port, _ = self.h2c_listener("?path=/tunnel")
        rc, code, version, _, err = self.curl("--http2-prior-knowledge", f"http://127.0.0.1:{port}/other")
        self.assertEqual((rc, code, version), (0, "400", "2"), err)
        rc, code, version, _, err = self.curl("--http2", f"http://127.0.0.1:{port}/other")
        self.assertEqual((rc, code, version), (0, "400", "2"), err)

    @unittest.skipUnless(st.have("nghttp"), "nghttp (nghttp2-client) is not installed")
    def test_nghttp_get_without_path_is_405(self):
        port, _ = self.h2c_listener()
        result = st.run(["nghttp", "-nv", "-t", "10", f"http://127.0.0.1:{port}/"])
        self.assertIn(b":status: 405", result.stdout, result.stdout.decode("utf-8", "replace"))

    @unittest.skipUnless(st.have("nghttp"), "nghttp (nghttp2-client) is not installed")
    def test_nghttp_through_http2_listener(self):
        port = st.free_port()
        agent = self.start_agent("-L", f"http2://127.0.0.1:{port}", wait_tcp=port)
        # An HTTP/2 proxy request: :scheme http and the origin as :authority (nghttp takes
        # pseudo-header fields from -H), over TLS with ALPN h2 to the listener.
        target = ["-H", ":scheme: http", "-H", f":authority: 127.0.0.1:{self.origin_server.port}"]
        result = st.run(["nghttp", "-t", "10", *target, f"https://127.0.0.1:{port}/blob"])
        self.assertEqual(result.returncode, 0, result.stderr.decode("utf-8", "replace"))
        self.assertBlobEqual(self.body, result.stdout, "GET body")
        result = st.run(["nghttp", "-t", "10", "-d", self.upload, *target, f"https://127.0.0.1:{port}/post"])
        self.assertEqual(result.returncode, 0, result.stderr.decode("utf-8", "replace"))
        self.assertEqual(result.stdout.decode().split(), [st.sha256(self.upload_bytes), str(len(self.upload_bytes))])
        agent.wait_log(rf"service-0: 127\.0\.0\.1:\d+ POST http://127\.0\.0\.1:{self.origin_server.port}/post -> 200")


if __name__ == "__main__":
    unittest.main()
