"""strait-agent's command line: GOST-style -L/-F parsing, -O output, -C config files and the
errors a user sees when something is wrong."""

import json
import os
import socket
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import strait_test as st  # noqa: E402

EXAMPLE = ["-L", "tcp://:8080/192.168.1.1:80", "-F", "http://192.168.1.2:8080"]


class CliTest(st.StraitTestCase):
    def agent(self, *args, timeout: float = 10) -> tuple:
        """Runs the agent to completion; returns (exit code, stdout text, stderr text)."""
        result = st.run([st.agent_path(), *args], timeout=timeout)
        return result.returncode, result.stdout.decode(), result.stderr.decode()

    def test_unknown_type_lists_known_ones(self):
        rc, _, err = self.agent("-L", "foo://:1")
        self.assertEqual(rc, 2, err)
        self.assertIn('"foo"', err)
        self.assertIn("http", err)
        self.assertIn("tcp", err)

    def test_version(self):
        rc, out, _ = self.agent("-V")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^strait-agent \d+\.\d+\.\d+")

    def test_unknown_flag_is_usage_error(self):
        rc, _, err = self.agent("--no-such-flag")
        self.assertEqual(rc, 2)
        self.assertIn("--no-such-flag", err)

    def test_bad_drain_timeout(self):
        rc, _, err = self.agent("--drain-timeout", "soon", "-L", "http://127.0.0.1:0")
        self.assertEqual(rc, 2)
        self.assertIn("--drain-timeout", err)

    def test_forward_without_target(self):
        rc, _, err = self.agent("-L", f"tcp://127.0.0.1:{st.free_port()}")
        self.assertEqual(rc, 2)
        self.assertIn("target", err)

    def test_nothing_to_serve(self):
        rc, _, err = self.agent()
        self.assertEqual(rc, 2)
        self.assertIn("-L", err)

    def test_output_json(self):
        rc, out, err = self.agent(*EXAMPLE, "-O", "json")
        self.assertEqual(rc, 0, err)
        config = json.loads(out)
        service = config["services"][0]
        self.assertEqual(service["addr"], ":8080")
        self.assertEqual(service["handler"]["type"], "tcp")
        self.assertEqual(service["listener"]["type"], "tcp")
        self.assertEqual(service["forwarder"]["nodes"][0]["addr"], "192.168.1.1:80")
        chain = config["chains"][0]
        self.assertEqual(service["handler"]["chain"], chain["name"])
        self.assertEqual(chain["name"], "chain-0")
        hop = chain["hops"][0]
        self.assertEqual(hop["name"], "hop-0")
        node = hop["nodes"][0]
        self.assertEqual(node["name"], "node-0")
        self.assertEqual(node["addr"], "192.168.1.2:8080")
        self.assertEqual(node["connector"]["type"], "http")

    def test_output_yaml(self):
        rc, out, err = self.agent(*EXAMPLE, "-O", "yaml")
        self.assertEqual(rc, 0, err)
        lines = [line.strip().lstrip("- ") for line in out.splitlines()]
        for expected in ["services:", "chains:", "type: tcp", "addr: 192.168.1.1:80", "name: chain-0",
                         "chain: chain-0", "name: hop-0", "name: node-0", "addr: 192.168.1.2:8080", "type: http"]:
            self.assertIn(expected, lines, f"-O yaml lacks {expected!r}:\n{out}")

    def test_yaml_output_round_trips_through_config_file(self):
        rc, yaml_text, err = self.agent(*EXAMPLE, "-O", "yaml")
        self.assertEqual(rc, 0, err)
        config_file = self.tmp / "printed.yaml"
        config_file.write_text(yaml_text)
        rc, from_file, err = self.agent("-C", config_file, "-O", "json")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("warning", err)
        rc, from_flags, err = self.agent(*EXAMPLE, "-O", "json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(from_file), json.loads(from_flags))

    def test_config_file_serves(self):
        echo = self.echo_server()
        port = st.free_port()
        config_file = self.tmp / "strait.yaml"
        config_file.write_text(
            "services:\n"
            "  - name: from-file\n"
            f"    addr: 127.0.0.1:{port}\n"
            "    handler:\n"
            "      type: tcp\n"
            "    listener:\n"
            "      type: tcp\n"
            "    forwarder:\n"
            "      nodes:\n"
            "        - name: echo\n"
            f"          addr: 127.0.0.1:{echo.port}\n")
        agent = self.start_agent("-C", config_file, wait_tcp=port)
        agent.wait_log(rf"from-file: listening on 127\.0\.0\.1:{port}")
        blob = st.random_blob()
        self.assertBlobEqual(blob, st.tcp_roundtrip(port, blob), "echo through the configured service")

    def test_inline_json_config(self):
        echo = self.echo_server()
        port = st.free_port()
        inline = json.dumps({"services": [{"name": "inline", "addr": f"127.0.0.1:{port}",
                                           "handler": {"type": "tcp"}, "listener": {"type": "tcp"},
                                           "forwarder": {"nodes": [{"name": "t", "addr": f"127.0.0.1:{echo.port}"}]}}]})
        self.start_agent("-C", inline, wait_tcp=port)
        self.assertEqual(st.tcp_roundtrip(port, b"inline json"), b"inline json")

    def test_config_syntax_error_names_file_and_line(self):
        config_file = self.tmp / "broken.yaml"
        # Line 4 is indented wrongly for the mapping it sits in.
        config_file.write_text('services:\n  - name: a\n    addr: ":1"\n   handler: {type: tcp}\n')
        rc, _, err = self.agent("-C", config_file)
        self.assertNotEqual(rc, 0)
        self.assertRegex(err, rf"{config_file.name}:4\b", f"no file:line in {err!r}")

    def test_config_unknown_type_names_it(self):
        config_file = self.tmp / "unknown.yaml"
        config_file.write_text('services:\n  - name: svc\n    addr: ":1"\n    handler:\n      type: nope\n')
        rc, _, err = self.agent("-C", config_file)
        self.assertEqual(rc, 2)
        self.assertIn('"nope"', err)
        self.assertIn("http", err)

    def test_config_error_message_not_doubled(self):
        config_file = self.tmp / "unknown.yaml"
        config_file.write_text('services:\n  - name: svc\n    addr: ":1"\n    handler:\n      type: nope\n')
        rc, _, err = self.agent("-C", config_file)
        self.assertEqual(rc, 2)
        self.assertNotIn("service svc: service svc:", err)

    def test_missing_config_file(self):
        missing = self.tmp / "no-such-dir" / "strait.yaml"
        rc, _, err = self.agent("-C", missing)
        self.assertNotEqual(rc, 0)
        self.assertIn(str(missing), err)
        self.assertIn("No such file", err)

    def test_config_path_is_a_directory(self):
        rc, _, err = self.agent("-C", self.tmp)
        self.assertNotEqual(rc, 0)
        self.assertIn(str(self.tmp), err, "the error does not name the config path")

    @unittest.skipIf(os.geteuid() == 0, "root reads files whatever their mode")
    def test_unreadable_config_file(self):
        config_file = self.tmp / "secret.yaml"
        config_file.write_text("services: []\n")
        config_file.chmod(0)
        rc, _, err = self.agent("-C", config_file)
        self.assertNotEqual(rc, 0)
        self.assertIn(str(config_file), err)
        self.assertIn("Permission denied", err)

    def test_port_in_use(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            agent = self.start_agent("-L", f"http://127.0.0.1:{port}")
            rc = agent.wait_exit(10)
            log = agent.log()
        self.assertNotEqual(rc, 0, log)
        self.assertIn(f"127.0.0.1:{port}", log)
        self.assertIn("in use", log)


if __name__ == "__main__":
    unittest.main()
