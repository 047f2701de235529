"""Budgets under pressure: descriptor limits, accept back-off, UDP session limits and memory,
and splice pipes as an unprivileged user. Each asserts what a user of a busy agent would
notice: established connections keep working, memory comes back, speed holds."""

import fcntl
import os
import resource
import socket
import struct
import sys
import termios
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import strait_test as st  # noqa: E402


def descriptor_limit(count: int):
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))


class LimitsTest(st.StraitTestCase):
    def test_at_1024_descriptors_no_established_connection_is_killed(self):
        echo = self.echo_server()
        port = st.free_port()
        agent = self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{echo.port}", "--workers", "1",
                                 wait_tcp=port, preexec_fn=descriptor_limit(1024))
        agent.wait_log(r"descriptors: 1024;")
        sockets = [socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) for _ in range(200)]
        self.addCleanup(lambda: [sock.close() for sock in sockets])
        # Every connection carries data at once, then again: pipes are in demand everywhere.
        for round_number in range(2):
            for index, sock in enumerate(sockets):
                sock.sendall(bytes([index % 256]) * 1000)
            for index, sock in enumerate(sockets):
                self.assertEqual(st.recv_exact(sock, 1000), bytes([index % 256]) * 1000,
                                 f"connection {index}, round {round_number}")
        self.assertNotIn("Too many open files", agent.log())

    def test_out_of_descriptors_pauses_accept_and_reports_once_a_second(self):
        echo = self.echo_server()
        port = st.free_port()
        # 64 descriptors and a connection limit far above what they allow: accept runs dry.
        agent = self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{echo.port}", "--workers", "1",
                                 "--max-connections", "1000", wait_tcp=port, preexec_fn=descriptor_limit(64))
        first = socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT)
        self.addCleanup(first.close)
        first.sendall(b"established")
        self.assertEqual(st.recv_exact(first, 11), b"established")
        crowd = []
        self.addCleanup(lambda: [sock.close() for sock in crowd])
        for _ in range(60):
            crowd.append(socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT))
        agent.wait_log(r"cannot accept: Too many open files \(\d+ times since the last report\)")
        started = time.monotonic()
        # The established connection still works while accept is starved.
        first.sendall(b"still here")
        self.assertEqual(st.recv_exact(first, 10), b"still here")
        time.sleep(2.5)  # pacing: lets the agent retry accept for a while, then count its reports
        reports = agent.log().count("cannot accept")
        self.assertLessEqual(reports, 2 + int(time.monotonic() - started) + 1, "at most one report a second")
        for sock in crowd:
            sock.close()
        crowd.clear()
        # Descriptors free again: new connections are served.
        st.wait_until(lambda: _echoes(port), timeout=15, what="service again")

    def test_udp_sessions_beyond_the_limit_replace_the_least_recent(self):
        target = self.udp_echo_server()
        port = st.free_port("udp")
        agent = self.start_agent("-L", f"udp://127.0.0.1:{port}/127.0.0.1:{target.port}?ttl=30s&maxConnections=3",
                                 "--workers", "1")
        agent.wait_udp_echo(port)
        clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(5)]
        for client in clients:
            self.addCleanup(client.close)
            client.settimeout(st.IO_TIMEOUT)
            client.sendto(b"hello", ("127.0.0.1", port))
            self.assertEqual(client.recvfrom(100)[0], b"hello")
        agent.wait_log(r"3 sessions, the limit: closing the one silent for longest")
        self.assertEqual(agent.log().count("ended by the agent, 5 B from client"), 3,
                         "the probe's session and the first two clients' sessions made room")

    @unittest.skipIf(st.agent_has_sanitizers(), "sanitizer allocators keep freed memory on purpose")
    def test_udp_client_churn_gives_its_memory_back(self):
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sink.close)
        sink.bind(("127.0.0.1", 0))
        port = st.free_port("udp")
        agent = self.start_agent("-L", f"udp://127.0.0.1:{port}/127.0.0.1:{sink.getsockname()[1]}?ttl=1s",
                                 "--workers", "2")
        st.wait_until(lambda: "listening on" in agent.log(), what="the agent listening")
        start_rss = st.rss_kib(agent.pid)
        start_fds = st.open_fds(agent.pid)
        after = []
        for round_number in range(2):
            # 100 000 distinct client addresses (source IPs across 127/8, kernel ports).
            for index in range(100_000):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                    client.bind((f"127.0.{(index // 250) % 250}.{1 + index % 250}", 0))
                    client.sendto(b"x" * 100, ("127.0.0.1", port))
            st.wait_until(lambda: st.open_fds(agent.pid) <= start_fds, timeout=20, what="every session expired")
            # Freed pages go back to the system within a few seconds (jemalloc's decay).
            st.wait_until(lambda: st.rss_kib(agent.pid) < start_rss + 16 * 1024, timeout=20,
                          what=f"RSS back near {start_rss} KiB (now {st.rss_kib(agent.pid)} KiB)")
            after.append(st.rss_kib(agent.pid))
        # Each of the 2 workers may keep up to 64 spare 64 KiB datagram buffers (4 MiB) for
        # reuse, filled to a different level by each round; a leak of 100 000 sessions is
        # far more than that.
        self.assertLess(after[1], after[0] + 8 * 1024, f"a second round grew RSS: {after}")
        self.assertTrue(agent.alive())

    @unittest.skipUnless(os.geteuid() == 0, "needs root to start the agent as another user (uid 65534)")
    def test_unprivileged_agent_keeps_full_speed_after_many_connections(self):
        if not os.access(st.agent_path(), os.X_OK, effective_ids=False):
            self.skipTest("agent binary not executable")
        sink = self.start_process(["python3", "-c", SINK_PROGRAM, str(st.free_port())], name="sink")
        sink_port = int(sink.wait_log(r"port (\d+)").group(1))
        port = st.free_port()

        def as_nobody():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        agent = self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{sink_port}", "--workers", "1",
                                 wait_tcp=port, preexec_fn=as_nobody)
        alone = _throughput(port)
        # 40 connections that each carried bytes and went quiet: they hold no pipes now.
        quiet = [socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) for _ in range(40)]
        self.addCleanup(lambda: [sock.close() for sock in quiet])
        for sock in quiet:
            sock.sendall(b"x" * 200_000)
        st.wait_until(lambda: all(_unsent_bytes(sock) == 0 for sock in quiet), what="the agent took every byte")
        crowded = _throughput(port)
        self.assertGreater(crowded, 0.7 * alone, f"{crowded:.0f} MB/s after 40 connections, {alone:.0f} MB/s alone")
        self.assertTrue(agent.alive())


# A sink in its own process, so that the sender's interpreter lock does not pace it.
SINK_PROGRAM = """
import socket, sys, threading
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0)); server.listen(128)
print("port", server.getsockname()[1], flush=True)
def drain(conn):
    with conn:
        while conn.recv(1 << 20):
            pass
while True:
    conn, _ = server.accept()
    threading.Thread(target=drain, args=(conn,), daemon=True).start()
"""


def _throughput(port: int, seconds: float = 2.0) -> float:
    """MB/s of one stream through `port` for `seconds`."""
    chunk = os.urandom(1 << 20)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as sock:
        deadline = time.monotonic() + seconds
        started = time.monotonic()
        while time.monotonic() < deadline:
            sock.sendall(chunk)
            sent += len(chunk)
        elapsed = time.monotonic() - started
    return sent / elapsed / 1e6


def _unsent_bytes(sock: socket.socket) -> int:
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def _echoes(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"ping")
            return st.recv_exact(sock, 4) == b"ping"
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main()
