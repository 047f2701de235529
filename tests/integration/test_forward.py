"""TCP and UDP port forwarding (`-L tcp://addr/target`, `-L udp://addr/target`)."""

import socket
import sys
import threading
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import strait_test as st  # noqa: E402


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


class TcpForwardTest(st.StraitTestCase):
    def setUp(self):
        super().setUp()
        self.echo = self.echo_server()
        self.port = st.free_port()
        self.agent = self.start_agent("-L", f"tcp://127.0.0.1:{self.port}/127.0.0.1:{self.echo.port}",
                                      wait_tcp=self.port)

    def test_blob_round_trip(self):
        blob = st.random_blob()
        self.assertBlobEqual(blob, st.tcp_roundtrip(self.port, blob), "echo through the forward")
        self.agent.wait_log(rf"service-0: 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:{self.echo.port}: closed, "
                            rf"{len(blob)} B from client, {len(blob)} B to client")

    @unittest.skipUnless(st.have("socat"), "socat is not installed")
    def test_blob_round_trip_socat(self):
        blob = st.random_blob()
        # -t: after stdin's EOF, wait up to 10 s for the echo to finish (it ends with EOF).
        result = st.run(["socat", "-t", "10", "-", f"TCP:127.0.0.1:{self.port}"], input=blob)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertBlobEqual(blob, result.stdout, "echo through socat")

    def test_half_close_reaches_target_and_reply_follows(self):
        # The sink answers only after it sees EOF: the client's shutdown(SHUT_WR) must cross
        # the forward while the way back stays open.
        sink = self.sink_server()
        port = st.free_port()
        self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{sink.port}", wait_tcp=port)
        blob = st.random_blob()
        reply = st.tcp_roundtrip(port, blob)
        self.assertEqual(reply.decode().strip(), st.sha256(blob))

    def test_half_close_echo_then_eof(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=st.IO_TIMEOUT) as sock:
            sock.sendall(b"first half")
            self.assertEqual(st.recv_exact(sock, 10), b"first half")  # still open both ways
            sock.sendall(b" and the rest")
            sock.shutdown(socket.SHUT_WR)
            self.assertEqual(st.recv_all(sock), b" and the rest")  # full echo, then EOF

    def test_concurrent_connections(self):
        blobs = [st.random_blob(256 * 1024) for _ in range(8)]
        results = [None] * len(blobs)

        def one(index):
            try:
                results[index] = st.tcp_roundtrip(self.port, blobs[index])
            except OSError as error:
                results[index] = error

        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(blobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(st.IO_TIMEOUT * 2)
        for blob, result in zip(blobs, results):
            self.assertIsInstance(result, bytes, f"connection failed: {result}")
            self.assertBlobEqual(blob, result, "concurrent echo")


class TcpForwardTargetsTest(st.StraitTestCase):
    def test_dead_target_gives_way_to_next(self):
        echo = self.echo_server()
        dead = st.closed_port()
        port = st.free_port()
        agent = self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{dead},127.0.0.1:{echo.port}",
                                 wait_tcp=port)
        for attempt in range(6):
            payload = f"connection {attempt}".encode() * 100
            self.assertEqual(st.tcp_roundtrip(port, payload), payload, f"connection {attempt}\n{agent.log()}")
        agent.wait_log(rf"-> 127\.0\.0\.1:{dead} \(target-0\): Connection refused")

    def test_all_targets_dead_closes_client(self):
        port = st.free_port()
        dead = st.closed_port()
        agent = self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{dead}", wait_tcp=port)
        with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as sock:
            self.assertEqual(st.recv_all(sock), b"")
        agent.wait_log(rf"-> 127\.0\.0\.1:{dead}: failed: Connection refused")
        self.assertTrue(agent.alive())

    @unittest.skipUnless(ipv6_loopback_available(), "no IPv6 loopback")
    def test_ipv6_listen_and_target(self):
        echo = self.echo_server(host="::1")
        port = st.free_port(host="::1")
        agent = self.start_agent("-L", f"tcp://[::1]:{port}/[::1]:{echo.port}")
        agent.wait_tcp(port, host="::1")
        blob = st.random_blob()
        self.assertBlobEqual(blob, st.tcp_roundtrip(port, blob, host="::1"), "echo over ::1")


class UdpForwardTest(st.StraitTestCase):
    SIZES = [1, 17, 512, 1400, 4096, 8192]

    def setUp(self):
        super().setUp()
        self.echo = self.udp_echo_server()
        self.port = st.free_port("udp")
        self.agent = self.start_agent("-L", f"udp://127.0.0.1:{self.port}/127.0.0.1:{self.echo.port}")
        self.agent.wait_udp_echo(self.port)

    def client(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(3.0)
        sock.connect(("127.0.0.1", self.port))
        self.addCleanup(sock.close)
        return sock

    def test_datagrams_of_several_sizes(self):
        sock = self.client()
        for size in self.SIZES:
            datagram = st.random_blob(size)
            sock.send(datagram)
            self.assertEqual(sock.recv(65536), datagram, f"{size}-byte datagram")

    def test_burst_keeps_boundaries(self):
        sock = self.client()
        datagrams = [st.random_blob(size) for size in self.SIZES * 3]
        for datagram in datagrams:
            sock.send(datagram)
        received = [sock.recv(65536) for _ in datagrams]
        # Loopback keeps order in practice; compare as multisets to not depend on it.
        self.assertEqual(sorted(map(st.sha256, received)), sorted(map(st.sha256, datagrams)))

    def test_two_clients_have_separate_sessions(self):
        before = set(self.echo.peers)
        first, second = self.client(), self.client()
        for round_number in range(5):
            a = b"A" * (100 + round_number)
            b = b"B" * (200 + round_number)
            first.send(a)
            second.send(b)
            self.assertEqual(first.recv(65536), a)
            self.assertEqual(second.recv(65536), b)
        # Each client session has its own upstream socket.
        self.assertEqual(len(self.echo.peers - before), 2, "the two clients did not get separate sessions")

    @unittest.skipUnless(st.have("socat"), "socat is not installed")
    def test_socat_client(self):
        # -t 1: after stdin's EOF socat waits 1 s for the reply, then exits.
        result = st.run(["socat", "-t", "1", "-", f"UDP:127.0.0.1:{self.port}"], input=b"hello over udp\n")
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertEqual(result.stdout, b"hello over udp\n")


if __name__ == "__main__":
    unittest.main()
