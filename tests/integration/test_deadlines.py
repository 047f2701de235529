"""Every connection has an end: keepalive on both sides, idle and half-close timeouts on
relays, and deadlines on the HTTP proxy's upstream, so a peer that hangs or vanishes costs
a bounded time and never holds a shutdown."""

import signal
import socket
import sys
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import strait_test as st  # noqa: E402


class HungOrigin:
    """Accepts connections, reads what comes, never answers."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self):
        self.server.close()
        for conn in self.connections:
            conn.close()


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the peer ends `sock` (EOF or reset) within `seconds`."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class DeadlinesTest(st.StraitTestCase):
    def hung_origin(self) -> HungOrigin:
        origin = HungOrigin()
        self.addCleanup(origin.close)
        return origin

    def test_http_request_to_a_hung_origin_gets_504_within_the_read_timeout(self):
        origin = self.hung_origin()
        port = st.free_port()
        agent = self.start_agent("-L", f"http://127.0.0.1:{port}?readTimeout=1s", wait_tcp=port)
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as sock:
            sock.sendall(f"GET http://127.0.0.1:{origin.port}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            answer = st.recv_all(sock)
        self.assertTrue(answer.startswith(b"HTTP/1.1 504 "), answer[:80])
        self.assertIn(b"sent no response within 1s", answer)
        self.assertLess(time.monotonic() - started, 5)
        # Nothing is left to hold a shutdown: the agent exits well within its 30 s drain. (The
        # client sees EOF when the socket closes, a moment before the worker counts the
        # connection as gone, so the agent may still log that it drains that one.)
        agent.send_signal(signal.SIGTERM)
        self.assertEqual(agent.wait_exit(5), 0)

    def test_an_upload_that_stops_midway_ends_after_the_idle_timeout(self):
        origin = self.hung_origin()
        port = st.free_port()
        self.start_agent("-L", f"http://127.0.0.1:{port}?idleTimeout=1s", wait_tcp=port)
        with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as sock:
            sock.sendall(f"POST http://127.0.0.1:{origin.port}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                         "only part of it".encode())
            self.assertTrue(closed_within(sock, 5), "the stalled upload was not cut off")

    def test_a_silent_tunnel_ends_after_the_idle_timeout(self):
        origin = self.hung_origin()
        port = st.free_port()
        agent = self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{origin.port}?idleTimeout=1s",
                                 wait_tcp=port)
        with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as sock:
            sock.sendall(b"hello")
            self.assertTrue(closed_within(sock, 5))
        agent.wait_log(r"idle timeout, 5 B from client")

    def test_a_half_closed_tunnel_ends_after_the_half_close_timeout(self):
        origin = self.hung_origin()
        port = st.free_port()
        agent = self.start_agent(
            "-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{origin.port}?halfCloseTimeout=1s", wait_tcp=port)
        with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as sock:
            sock.sendall(b"request")
            sock.shutdown(socket.SHUT_WR)  # done sending; the origin never answers nor closes
            self.assertTrue(closed_within(sock, 5))
        agent.wait_log(r"half-close timeout, 7 B from client")

    @unittest.skipUnless(st.have("ss"), "ss (iproute2) is not installed")
    def test_accepted_and_dialed_sockets_have_keepalive(self):
        origin = self.hung_origin()
        port = st.free_port()
        agent = self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{origin.port}", wait_tcp=port)
        with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as sock:
            sock.sendall(b"x")
            st.wait_until(lambda: origin.connections, what="the agent's connection to the origin")
            sockets = st.run(["ss", "-tnoH", "-p", "state", "established"]).stdout.decode()
            mine = [line for line in sockets.splitlines() if f"pid={agent.pid}," in line]
            self.assertEqual(len(mine), 2, sockets)
            for line in mine:
                self.assertIn("timer:(keepalive", line, line)


if __name__ == "__main__":
    unittest.main()
