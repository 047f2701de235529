"""Name lookups run side by side: a lookup that hangs delays no other, the dial timeout covers
resolution, and the same name asked at once is looked up once. A getaddrinfo shim
(tests/support/shims/slow_getaddrinfo.c, LD_PRELOAD) makes names under slow.* take seconds."""

import os
import subprocess
import sys
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import socks_client as socks  # noqa: E402
import strait_test as st  # noqa: E402

SHIM_SOURCE = Path(__file__).resolve().parents[1] / "support" / "shims" / "slow_getaddrinfo.c"


@unittest.skipUnless(st.have("cc"), "no C compiler to build the getaddrinfo shim")
class DnsTest(st.StraitTestCase):
    def setUp(self):
        super().setUp()
        self.shim = self.tmp / "slow_getaddrinfo.so"
        st.run(["cc", "-shared", "-fPIC", "-O1", "-o", self.shim, SHIM_SOURCE, "-ldl"], check=True)
        self.count_file = self.tmp / "lookups.txt"
        self.echo = self.echo_server()

    def start(self, *args, seconds: int = 3):
        port = st.free_port()
        env = dict(os.environ, LD_PRELOAD=str(self.shim), SLOW_DNS_SECONDS=str(seconds),
                   SLOW_DNS_COUNT_FILE=str(self.count_file))
        # An ASan build must come first in the preload list: put it there when present.
        asan = subprocess.run(["ldd", str(st.agent_path())], capture_output=True, text=True).stdout
        for line in asan.splitlines():
            if "libasan" in line and "=>" in line:
                env["LD_PRELOAD"] = line.split("=>")[1].split()[0] + ":" + env["LD_PRELOAD"]
        agent = self.start_process([st.agent_path(), "-L", f"socks5://127.0.0.1:{port}", "--workers", "1", *args],
                                   name="agent", env=env, wait_tcp=port)
        return agent, port

    def lookups_of(self, name: str) -> int:
        if not self.count_file.exists():
            return 0
        return sum(1 for line in self.count_file.read_text().splitlines() if line == name)

    def connect_in_thread(self, port, host, results, key):
        def run():
            started = time.monotonic()
            client = None
            try:
                # Longer than the agent's 10 s dial timeout, which a reply must beat.
                client = socks.Socks5(port, timeout=2 * st.IO_TIMEOUT)
                client.connect(host, self.echo.port)
                results[key] = ("ok", time.monotonic() - started)
            except (socks.SocksError, OSError) as error:
                results[key] = (getattr(error, "reply", str(error)), time.monotonic() - started)
            finally:
                if client is not None:
                    client.close()
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def test_a_fast_lookup_is_not_delayed_by_slow_ones(self):
        agent, port = self.start()
        results = {}
        slow = [self.connect_in_thread(port, f"slow.{i}.example", results, f"slow{i}") for i in range(3)]
        st.wait_until(lambda: all(self.lookups_of(f"slow.{i}.example") == 1 for i in range(3)),
                      what="three slow lookups under way")
        started = time.monotonic()
        client = socks.Socks5(port)
        sock = client.connect("localhost", self.echo.port)
        sock.sendall(b"quick")
        self.assertEqual(st.recv_exact(sock, 5), b"quick")
        client.close()
        self.assertLess(time.monotonic() - started, 1.0, "localhost waited behind the slow names")
        for thread in slow:
            thread.join(15)
        for i in range(3):
            self.assertEqual(results[f"slow{i}"][0], 4, "an unknown name is host unreachable (reply 4)")

    def test_the_dial_timeout_covers_the_lookup(self):
        # The name hangs for 30 s; the dial gives up after its 10 s.
        env_agent, port = self.start(seconds=30)
        results = {}
        thread = self.connect_in_thread(port, "slow.hang.example", results, "hang")
        thread.join(3 * st.IO_TIMEOUT)
        reply, waited = results["hang"]
        self.assertEqual(reply, 4)
        self.assertLess(waited, 13, "the CONNECT answered once the dial timeout passed")
        env_agent.wait_log(r"slow\.hang\.example:\d+: failed: Connection timed out|timed out")

    def test_the_same_name_asked_at_once_is_looked_up_once_and_remembered(self):
        agent, port = self.start(seconds=2)
        results = {}
        threads = [self.connect_in_thread(port, "slow.shared.example", results, i) for i in range(8)]
        for thread in threads:
            thread.join(15)
        self.assertEqual({result[0] for result in results.values()}, {4})
        self.assertEqual(self.lookups_of("slow.shared.example"), 1)
        # The failure is remembered for a few seconds: asking again costs no lookup.
        again = {}
        self.connect_in_thread(port, "slow.shared.example", again, "again").join(5)
        self.assertEqual(again["again"][0], 4)
        self.assertLess(again["again"][1], 1.0)
        self.assertEqual(self.lookups_of("slow.shared.example"), 1)


if __name__ == "__main__":
    unittest.main()
