"""Logging under hostile clients and stalled outputs: JSON lines stay JSON whatever bytes a
peer sends, and a log output nobody reads never stops the data path."""

import json
import signal
import socket
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import socks_client as socks  # noqa: E402
import strait_test as st  # noqa: E402

FORGERY = 'x"},"level":"critical","msg":"forged\nnext'


class LoggingTest(st.StraitTestCase):
    def test_json_lines_stay_json_with_hostile_names_and_users(self):
        echo = self.echo_server()
        open_port, auth_port = st.free_port(), st.free_port()
        config = self.tmp / "gost.yaml"
        config.write_text(
            "log: {format: json, level: info}\n"
            "services:\n"
            f"- {{name: open, addr: \"127.0.0.1:{open_port}\", handler: {{type: socks5}}}}\n"
            f"- {{name: auth, addr: \"127.0.0.1:{auth_port}\", handler: {{type: socks5, auther: users}}}}\n"
            "authers: [{name: users, auths: [{username: alice, password: secret}]}]\n")
        agent = self.start_agent("-C", config, wait_tcp=auth_port)
        st.wait_tcp(open_port)
        # A domain name built to close the JSON object and start a new line is refused.
        client = socks.Socks5(open_port)
        self.addCleanup(client.close)
        with self.assertRaises(socks.SocksError) as refused:
            client.connect(FORGERY, 80)
        self.assertEqual(refused.exception.reply, 1)
        # A user name is any bytes by RFC 1929; the refusal line carries it, escaped.
        with self.assertRaises(socks.SocksError):
            socks.Socks5(auth_port, FORGERY, "wrong")
        good = socks.Socks5(open_port).connect("127.0.0.1", echo.port)
        good.sendall(b"ping")
        self.assertEqual(st.recv_exact(good, 4), b"ping")
        good.close()
        agent.wait_log(r"wrong credentials")
        agent.wait_log(r"B from client")
        agent.stop()
        lines = agent.log().splitlines()
        self.assertGreater(len(lines), 3)
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                self.fail(f"not a JSON line: {line!r}\n{agent.log()}")
        self.assertNotIn("critical", {record["level"] for record in records})
        refusal = next(record for record in records if "wrong credentials" in record["msg"])
        self.assertIn(FORGERY, refusal["msg"], "the user name is kept whole inside its field")
        self.assertTrue(any("host-name alphabet" in record["msg"] for record in records))

    def test_text_lines_escape_control_characters(self):
        port = st.free_port()
        agent = self.start_agent("-L", f"socks5://alice:secret@127.0.0.1:{port}", wait_tcp=port)
        with self.assertRaises(socks.SocksError):
            socks.Socks5(port, "evil\nuser\x1b[2J", "wrong")
        line = agent.wait_log(r"wrong credentials for user .*").group(0)
        self.assertIn('"evil\\nuser\\x1b[2J"', line)

    def test_unread_stderr_does_not_stop_traffic(self):
        echo = self.echo_server()
        port = st.free_port()
        # stdout and stderr are pipes this test never reads: they fill after a few hundred lines.
        agent = subprocess.Popen([str(st.agent_path()), "-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{echo.port}",
                                  "--workers", "1"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True)
        self.addCleanup(agent.stderr.close)
        self.addCleanup(agent.stdout.close)
        self.addCleanup(lambda: agent.poll() is None and agent.kill())
        st.wait_tcp(port, alive=lambda: agent.poll() is None)
        started = time.monotonic()
        for index in range(3000):
            payload = f"connection {index}".encode()
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(payload)
                self.assertEqual(st.recv_exact(sock, len(payload)), payload, f"connection {index}")
        self.assertLess(time.monotonic() - started, 120)
        # Stopping does not wait for the stalled output either.
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(15)
        except subprocess.TimeoutExpired:
            self.fail("the agent did not exit within 15 s of SIGTERM with its stderr unread")
        self.assertEqual(agent.returncode, 0)


if __name__ == "__main__":
    unittest.main()
