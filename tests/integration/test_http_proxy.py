"""HTTP proxy service (`-L http://...`) driven by curl and raw sockets against a local origin."""

import re
import socket
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import strait_test as st  # noqa: E402

CURL_TIMEOUT = "10"  # curl --max-time, seconds; the subprocess itself is bounded by st.RUN_TIMEOUT


@unittest.skipUnless(st.have("curl"), "curl is not installed")
class HttpProxyTest(st.StraitTestCase):
    def setUp(self):
        super().setUp()
        self.body = st.random_blob(256 * 1024)
        self.origin_server = self.origin({"/blob": self.body, "/small": b"small body\n"})
        self.origin_url = f"http://127.0.0.1:{self.origin_server.port}"
        self.port = st.free_port()
        self.agent = self.start_agent("-L", f"http://127.0.0.1:{self.port}", wait_tcp=self.port)
        self.proxy = f"http://127.0.0.1:{self.port}"

    def curl(self, *args, proxy=None, max_time=CURL_TIMEOUT):
        """Runs curl through the proxy; returns (exit code, http code, stdout bytes, stderr text)."""
        result = st.run(["curl", "-sS", "--max-time", max_time, "-x", proxy or self.proxy,
                         "-w", "\n%{http_code}", *args])
        out, _, code = result.stdout.rpartition(b"\n")
        return result.returncode, code.decode(), out, result.stderr.decode("utf-8", "replace")

    def curl_to_file(self, *args, **kwargs):
        out = self.tmp / "body.out"
        rc, code, _, err = self.curl("-o", str(out), *args, **kwargs)
        self.assertEqual(rc, 0, f"curl failed: {err}\n{self.agent.describe()}")
        return code, out.read_bytes()

    def test_get_absolute_uri(self):
        code, body = self.curl_to_file(f"{self.origin_url}/blob")
        self.assertEqual(code, "200")
        self.assertBlobEqual(self.body, body, "GET body")
        self.agent.wait_log(rf"service-0: 127\.0\.0\.1:\d+ GET {re.escape(self.origin_url)}/blob -> 200")

    def test_connect_tunnel(self):
        code, body = self.curl_to_file("-p", f"{self.origin_url}/blob")
        self.assertEqual(code, "200")
        self.assertBlobEqual(self.body, body, "body through CONNECT")
        # Through the tunnel the origin gets curl's own origin-form request.
        self.assertEqual(self.origin_server.server.requests[-1]["path"], "/blob")
        self.agent.wait_log(rf"service-0: 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:{self.origin_server.port}: closed")

    def test_keep_alive_two_urls_one_connection(self):
        first, second = self.tmp / "first.out", self.tmp / "second.out"
        result = st.run(["curl", "-sS", "--max-time", CURL_TIMEOUT, "-x", self.proxy,
                         "-w", "%{http_code} %{num_connects}\n",
                         "-o", first, f"{self.origin_url}/blob", "-o", second, f"{self.origin_url}/small"])
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertBlobEqual(self.body, first.read_bytes(), "first body")
        self.assertEqual(second.read_bytes(), b"small body\n")
        # The second request reused curl's connection to the proxy (no new connect) ...
        self.assertEqual(result.stdout.decode().split("\n")[:2], ["200 1", "200 0"])
        # ... and the proxy reused its connection to the origin.
        clients = [request["client"] for request in self.origin_server.server.requests]
        self.assertEqual(len(clients), 2)
        self.assertEqual(clients[0], clients[1], "the proxy opened a second upstream connection")

    def test_post_1mib_body(self):
        payload = st.random_blob(1 << 20)
        upload = self.tmp / "upload.bin"
        upload.write_bytes(payload)
        code, body = self.curl_to_file("-H", "Expect:", "--data-binary", f"@{upload}", f"{self.origin_url}/post")
        self.assertEqual(code, "200")
        self.assertEqual(body.decode().split(), [st.sha256(payload), str(len(payload))])

    def test_post_with_expect_100_continue(self):
        # curl adds "Expect: 100-continue" by itself for bodies over 1 MiB; the origin answers
        # "100 Continue" and then the real response, which must reach the client.
        payload = st.random_blob(2 << 20)
        upload = self.tmp / "upload.bin"
        upload.write_bytes(payload)
        rc, code, body, err = self.curl("-H", "Expect: 100-continue", "--data-binary", f"@{upload}",
                                        f"{self.origin_url}/post", max_time="5")
        self.assertEqual(rc, 0, f"curl failed: {err}\n{self.agent.describe()}")
        self.assertEqual(code, "200")
        self.assertEqual(body.decode().split(), [st.sha256(payload), str(len(payload))])

    def test_unreachable_target_is_502(self):
        dead = st.closed_port()
        rc, code, body, err = self.curl(f"http://127.0.0.1:{dead}/")
        self.assertEqual(rc, 0, err)
        self.assertEqual(code, "502")
        self.assertIn(f"127.0.0.1:{dead}".encode(), body)
        self.agent.wait_log(rf"127\.0\.0\.1:\d+ -> 127\.0\.0\.1:{dead}: failed: Connection refused")

    def test_connect_to_unreachable_target_is_502(self):
        dead = st.closed_port()
        rc, code, _, err = self.curl("-p", f"http://127.0.0.1:{dead}/")
        self.assertNotEqual(rc, 0)  # curl gives up on a failed tunnel ...
        self.assertIn("response 502", err)  # ... after the proxy's answer to CONNECT

    def test_origin_closing_idle_keep_alive_connection(self):
        # Origins end idle keep-alive connections (Apache after 5 s, nginx 75 s). The next
        # request on the client's connection must still be answered, on a fresh upstream.
        origin = self.origin({"/first": b"first\n", "/second": b"second\n"}, idle_timeout=0.3)
        request = "GET http://127.0.0.1:{}{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{}\r\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=st.IO_TIMEOUT) as sock:
            sock.sendall(request.format(origin.port, "/first", origin.port, "").encode())
            reply = b""
            while not reply.endswith(b"first\n"):
                chunk = sock.recv(4096)
                self.assertTrue(chunk, f"connection closed after {reply!r}")
                reply += chunk
            self.assertTrue(reply.startswith(b"HTTP/1.1 200"), reply)
            st.wait_until(lambda: origin.server.closed, what="the origin closing its idle connection")
            sock.sendall(request.format(origin.port, "/second", origin.port, "Connection: close\r\n").encode())
            reply = st.recv_all(sock)
        self.assertTrue(reply.startswith(b"HTTP/1.1 200"), f"{reply!r}\n{self.agent.log()}")
        self.assertTrue(reply.endswith(b"second\n"), reply)

    # --- malformed and hostile input ---------------------------------------------------

    def raw_exchange(self, data: bytes, half_close: bool = False):
        """Sends raw bytes to the proxy; returns (client port, everything read until EOF)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=st.IO_TIMEOUT) as sock:
            client_port = sock.getsockname()[1]
            try:
                sock.sendall(data)
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the proxy may refuse before reading everything; its answer is still queued
            return client_port, st.recv_all(sock)

    def test_garbage_is_400_and_logged(self):
        client_port, reply = self.raw_exchange(b"\x00\x01garbage\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 400"), reply[:200])
        self.agent.wait_log(rf"service-0: 127\.0\.0\.1:{client_port}: refused 400: malformed request")

    def test_huge_header_block_is_431_and_logged(self):
        head = f"GET {self.origin_url}/small HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
        head += b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(72)) + b"\r\n"
        self.assertGreater(len(head), 70 * 1024)
        client_port, reply = self.raw_exchange(head)
        self.assertTrue(reply.startswith(b"HTTP/1.1 431"), reply[:200])
        self.agent.wait_log(rf"service-0: 127\.0\.0\.1:{client_port}: refused 431: request head larger than")
        self.assertEqual(self.origin_server.server.requests, [], "an oversized request reached the origin")

    def test_relative_uri_is_400(self):
        _, reply = self.raw_exchange(b"GET /small HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 400"), reply[:200])

    def test_truncated_request_then_close_keeps_serving(self):
        partial = f"GET {self.origin_url}/small HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ".encode()
        with socket.create_connection(("127.0.0.1", self.port), timeout=st.IO_TIMEOUT) as sock:
            client_port = sock.getsockname()[1]
            sock.sendall(partial)
        self.agent.wait_log(rf"service-0: 127\.0\.0\.1:{client_port}: ")
        code, body = self.curl_to_file(f"{self.origin_url}/blob")
        self.assertEqual(code, "200")
        self.assertBlobEqual(self.body, body, "GET body after a truncated request")
        self.assertTrue(self.agent.alive())
        self.assertEqual([r["path"] for r in self.origin_server.server.requests], ["/blob"])

    def test_truncated_request_is_logged_as_truncated(self):
        # A client that goes away mid-head is not a malformed request: the agent means to log
        # "truncated request head" (info) and send nothing.
        partial = f"GET {self.origin_url}/small HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ".encode()
        client_port, reply = self.raw_exchange(partial, half_close=True)
        line = self.agent.wait_log(rf"^.*service-0: 127\.0\.0\.1:{client_port}: .*$").group(0)
        self.assertIn("truncated request head", line)
        self.assertEqual(reply, b"", "a client that stopped mid-request was answered")


@unittest.skipUnless(st.have("curl"), "curl is not installed")
class HttpProxyIsolationTest(st.StraitTestCase):
    def test_half_sent_request_does_not_block_others(self):
        # One worker thread: a handler that blocked its thread would stall the second client.
        body = st.random_blob(64 * 1024)
        origin = self.origin({"/blob": body})
        port = st.free_port()
        agent = self.start_agent("--workers", "1", "-L", f"http://127.0.0.1:{port}", wait_tcp=port)
        with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as held:
            held.sendall(f"GET http://127.0.0.1:{origin.port}/blob HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
            out = self.tmp / "body.out"
            result = st.run(["curl", "-sS", "--max-time", "5", "-x", f"http://127.0.0.1:{port}", "-o", out,
                             f"http://127.0.0.1:{origin.port}/blob"])
            self.assertEqual(result.returncode, 0, f"{result.stderr.decode()}\n{agent.describe()}")
            self.assertBlobEqual(body, out.read_bytes(), "second client's body")
            # The held request still completes once its head is finished.
            held.sendall(b"Connection: close\r\n\r\n")
            reply = st.recv_all(held)
        self.assertTrue(reply.startswith(b"HTTP/1.1 200"), reply[:200])
        self.assertTrue(reply.endswith(body), "held request's body differs")


@unittest.skipUnless(st.have("curl"), "curl is not installed")
class HttpProxyAuthTest(st.StraitTestCase):
    def setUp(self):
        super().setUp()
        self.origin_server = self.origin({"/small": b"small body\n"})
        self.url = f"http://127.0.0.1:{self.origin_server.port}/small"
        self.port = st.free_port()
        self.agent = self.start_agent("-L", f"http://user:pass@127.0.0.1:{self.port}", wait_tcp=self.port)

    def curl(self, *args):
        headers = self.tmp / "headers.out"
        result = st.run(["curl", "-sS", "--max-time", CURL_TIMEOUT, "-D", headers, "-o", "-",
                         "-w", "\n%{http_code}", *args, self.url])
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        body, _, code = result.stdout.rpartition(b"\n")
        return code.decode(), headers.read_text(errors="replace"), body

    def test_no_credentials_is_407_with_challenge(self):
        code, headers, _ = self.curl("-x", f"http://127.0.0.1:{self.port}")
        self.assertEqual(code, "407")
        self.assertRegex(headers, r"(?im)^Proxy-Authenticate: Basic\b")
        self.assertEqual(self.origin_server.server.requests, [])
        self.agent.wait_log(r"refused 407: missing or wrong proxy credentials")

    def test_wrong_password_is_407(self):
        code, _, _ = self.curl("-x", f"http://127.0.0.1:{self.port}", "--proxy-user", "user:wrong")
        self.assertEqual(code, "407")
        self.assertEqual(self.origin_server.server.requests, [])

    def test_right_credentials_pass(self):
        code, _, body = self.curl("-x", f"http://user:pass@127.0.0.1:{self.port}")
        self.assertEqual(code, "200")
        self.assertEqual(body, b"small body\n")

    def test_right_credentials_connect(self):
        code, _, body = self.curl("-p", "-x", f"http://127.0.0.1:{self.port}", "--proxy-user", "user:pass")
        self.assertEqual(code, "200")
        self.assertEqual(body, b"small body\n")

    def test_credentials_not_forwarded_to_origin(self):
        self.curl("-x", f"http://user:pass@127.0.0.1:{self.port}")
        sent = {name.lower() for name in self.origin_server.server.requests[-1]["headers"]}
        self.assertNotIn("proxy-authorization", sent)


if __name__ == "__main__":
    unittest.main()
