"""SIGTERM/SIGINT: stop accepting, let open connections finish within --drain-timeout, exit 0."""

import signal
import socket
import sys
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import strait_test as st  # noqa: E402


def wait_refused(port: int, timeout: float = 5.0) -> None:
    """Polls until a connect to `port` is refused (the listener is closed)."""
    def refused():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return False
        except ConnectionRefusedError:
            return True
        except ConnectionResetError:
            return False  # caught in a closing listener's backlog; ask again
    st.wait_until(refused, timeout, what=f"connections to 127.0.0.1:{port} refused")


class SignalTest(st.StraitTestCase):
    def test_sigterm_drains_a_transfer_in_progress(self):
        sink = self.sink_server(read_delay=0.002)
        port = st.free_port()
        agent = self.start_agent("--drain-timeout", "10s",
                                 "-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{sink.port}", wait_tcp=port)
        blob = st.random_blob(4 << 20)
        chunk = 64 * 1024
        first_part_sent = threading.Event()
        resume = threading.Event()
        outcome = {}

        def client():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as sock:
                    for offset in range(0, len(blob), chunk):
                        if offset == 1 << 20:
                            first_part_sent.set()
                            resume.wait(st.IO_TIMEOUT)
                        sock.sendall(blob[offset:offset + chunk])
                        time.sleep(0.005)  # a client that sends at its own pace
                    sock.shutdown(socket.SHUT_WR)
                    outcome["reply"] = st.recv_all(sock)
            except OSError as error:
                outcome["error"] = error

        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        self.assertTrue(first_part_sent.wait(st.IO_TIMEOUT), "the client could not send its first MiB")
        agent.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        wait_refused(port)  # no new connections while draining
        self.assertTrue(agent.alive(), f"the agent exited with a transfer open\n{agent.describe()}")
        resume.set()
        thread.join(st.IO_TIMEOUT * 2)
        self.assertFalse(thread.is_alive(), "the transfer did not finish")
        self.assertNotIn("error", outcome, f"{outcome.get('error')}\n{agent.describe()}")
        self.assertEqual(outcome["reply"].decode().strip(), st.sha256(blob), "the sink got different bytes")
        self.assertEqual(agent.wait_exit(5), 0, agent.log())
        self.assertLess(time.monotonic() - signalled, 10, "the agent waited past its drain timeout")
        log = agent.log()
        self.assertIn("received SIGTERM", log)
        self.assertRegex(log, rf"-> 127\.0\.0\.1:{sink.port}: closed, {len(blob)} B from client")

    def test_sigterm_closes_idle_connection_after_drain_timeout(self):
        echo = self.echo_server()
        port = st.free_port()
        agent = self.start_agent("--drain-timeout", "1s",
                                 "-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{echo.port}", wait_tcp=port)
        with socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) as idle:
            idle.sendall(b"ping")
            self.assertEqual(st.recv_exact(idle, 4), b"ping")  # relayed, so it counts as open
            started = time.monotonic()
            agent.send_signal(signal.SIGTERM)
            rc = agent.wait_exit(3)
            elapsed = time.monotonic() - started
            self.assertEqual(rc, 0, agent.log())
            self.assertGreaterEqual(elapsed, 0.9, "the agent did not wait for the drain timeout")
            try:
                self.assertEqual(idle.recv(16), b"", "the idle connection was not closed")
            except ConnectionResetError:
                pass  # closed hard is closed too
        self.assertIn("grace period over, closing 1 connections", agent.log())

    def test_sigint_drains_like_sigterm(self):
        echo = self.echo_server()
        port = st.free_port()
        agent = self.start_agent("-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{echo.port}", wait_tcp=port)
        self.assertEqual(st.tcp_roundtrip(port, b"hello"), b"hello")
        agent.wait_log(r"-> 127\.0\.0\.1:\d+: closed, 5 B from client")
        started = time.monotonic()
        agent.send_signal(signal.SIGINT)
        self.assertEqual(agent.wait_exit(3), 0, agent.log())
        self.assertLess(time.monotonic() - started, 2, "no connection was open, yet the agent waited")
        self.assertIn("received SIGINT", agent.log())

    # ThreadSanitizer runs a signal handler only when the receiving thread next enters one of
    # its interceptors; a SIGTERM that lands on a thread blocked elsewhere can wait for good
    # (CI saw one of 24 agents never log it under TSan, never in other builds).
    @unittest.skipIf(st.agent_has_thread_sanitizer(), "ThreadSanitizer defers signal handlers")
    def test_signal_right_after_start_is_handled(self):
        # The port accepts as soon as the services listen; a SIGTERM/SIGINT from then on must
        # take the draining path (exit 0), not the default action that kills the process.
        # The window, if any, is short: several starts make a miss visible.
        outcomes = []
        for attempt in range(24):
            port = st.free_port()
            agent = self.start_agent("-L", f"http://127.0.0.1:{port}", name="agent", wait_tcp=port)
            signum = signal.SIGTERM if attempt % 2 == 0 else signal.SIGINT
            agent.send_signal(signum)
            outcomes.append((signum.name, agent.wait_exit(5)))
        killed = [outcome for outcome in outcomes if outcome[1] != 0]
        self.assertEqual(killed, [], f"{len(killed)} of {len(outcomes)} agents died of the signal "
                                     "(negative code = killed by that signal)")

if __name__ == "__main__":
    unittest.main()
