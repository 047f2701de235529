"""Binary upgrades without a refused connection: a new agent takes the running agent's
listening sockets over a unix socket (--takeover) and the old one drains; sockets from
systemd (LISTEN_FDS) serve the clients the kernel queued before the agent even started."""

import socket
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import strait_test as st  # noqa: E402


class TakeoverTest(st.StraitTestCase):
    def setUp(self):
        super().setUp()
        self.echo = self.echo_server()
        self.sink = self.sink_server()
        self.path = self.tmp / "agent.sock"
        self.echo_port, self.sink_port = st.free_port(), st.free_port()
        self.udp_target = self.udp_echo_server()
        self.udp_port = st.free_port("udp")

    def agent(self, name: str, *extra):
        return self.start_agent("-L", f"tcp://127.0.0.1:{self.echo_port}/127.0.0.1:{self.echo.port}",
                                "-L", f"tcp://127.0.0.1:{self.sink_port}/127.0.0.1:{self.sink.port}",
                                "-L", f"udp://127.0.0.1:{self.udp_port}/127.0.0.1:{self.udp_target.port}",
                                "--workers", "2", "--takeover", self.path, *extra, name=name)

    def test_upgrades_under_load_refuse_nothing(self):
        old = self.agent("old")
        old.wait_tcp(self.echo_port)
        loop = st.ConnectionLoop(self.echo_port, clients=16)
        self.addCleanup(loop.stop)
        # Transfers the old agent carries past the takeover, and finishes while draining.
        transfers = [st.LongTransfer(self.sink_port, 4 << 20, seconds=4) for _ in range(2)]
        loop.wait_for(300)
        for generation in ("new", "newer"):
            agent = self.agent(generation)
            agent.wait_log(r"takeover: took 6 listening sockets")
            agent.wait_log(r"takeover: serving; the previous agent drains")
            self.assertEqual(old.wait_exit(20), 0, old.log())
            old.wait_log(r"takeover: the new agent serves; draining and exiting")
            loop.wait_for(300)
            old = agent
        loop.stop()
        self.assertEqual(loop.failures[:5], [], f"{len(loop.failures)} of {loop.ok + len(loop.failures)} failed")
        for transfer in transfers:
            self.assertEqual(transfer.result(), st.sha256(transfer.blob))
        self.assertNotIn("listening on", old.log().split("took")[0], "the sockets were adopted, not bound")
        old.wait_udp_echo(self.udp_port)

    def test_a_new_agent_that_cannot_start_leaves_the_old_one_serving(self):
        old = self.agent("old")
        old.wait_tcp(self.echo_port)
        broken = self.start_agent("-L", f"tcp://127.0.0.1:{self.echo_port}/127.0.0.1:{self.echo.port}?ttl=forever",
                                  "--takeover", self.path, name="broken")
        self.assertNotEqual(broken.wait_exit(10), 0)
        self.assertTrue(old.alive())
        self.assertEqual(st.tcp_roundtrip(self.echo_port, b"still the old one"), b"still the old one")
        old.wait_log(r"takeover: the new agent went away before serving; still serving here")

    def test_the_first_agent_just_starts_and_serves_the_next_upgrade(self):
        first = self.agent("first")
        first.wait_tcp(self.echo_port)
        self.assertNotIn("took", first.log())
        # The takeover socket is made once the services serve, a moment after the ports listen.
        st.wait_until(self.path.exists, what="the takeover socket")
        self.assertEqual(self.path.stat().st_mode & 0o777, 0o600)


class SystemdSocketTest(st.StraitTestCase):
    def test_clients_queued_before_the_agent_started_are_served(self):
        echo = self.echo_server()
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        # Clients connect while no agent runs: the kernel queues them in the socket.
        early = [socket.create_connection(("127.0.0.1", port), timeout=st.IO_TIMEOUT) for _ in range(5)]
        self.addCleanup(lambda: [sock.close() for sock in early])
        for index, sock in enumerate(early):
            sock.sendall(f"early {index}".encode())
        # As systemd starts a socket-activated service: the socket as descriptor 3.
        script = f'exec 3<&{listener.fileno()}; LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"'
        agent = self.start_process(["sh", "-c", script, st.agent_path(), "-L",
                                    f"tcp://127.0.0.1:{port}/127.0.0.1:{echo.port}", "--workers", "2"],
                                   name="agent", pass_fds=(listener.fileno(),))
        for index, sock in enumerate(early):
            self.assertEqual(st.recv_exact(sock, len(f"early {index}")), f"early {index}".encode())
        agent.wait_log(r"systemd passed 1 listening sockets")
        self.assertEqual(st.tcp_roundtrip(port, b"later"), b"later")


if __name__ == "__main__":
    unittest.main()
