"""KCP channel: kcptun's client against our kcp forward service and our kcp dialer against
kcptun's server (crypt none/aes/salsa20, FEC on and off, compression on and off, curl carrying
the traffic); the seed's ss+kcp pairs with shadowsocks-libev as the client; 16 MiB intact
through a lossy, delaying, reordering UDP relay; random datagrams, a wrong key and a flood of
conversations are dropped while the service keeps serving."""

import json
import os
import random
import socket
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import strait_test as st  # noqa: E402
from lossy_udp import LossyUdpRelay  # noqa: E402

KEY = "kcp-test-key"
# (crypt, FEC data/parity shards, compression): the combinations interop is checked with.
SETTINGS = [("aes", 10, 3, True), ("none", 0, 0, False), ("salsa20", 10, 3, False), ("aes", 0, 0, True)]


def kcptun_flags(crypt, data, parity, compress):
    flags = ["--key", KEY, "--crypt", crypt, "--mode", "fast", "--datashard", str(data), "--parityshard",
             str(parity), "--quiet"]
    return flags if compress else [*flags, "--nocomp"]


class KcpCase(st.StraitTestCase):
    def setUp(self):
        super().setUp()
        self.blob = st.random_blob()
        self.web = self.origin({"/blob": self.blob})

    def kcp_query(self, crypt, data, parity, compress):
        """GOST reads the FEC shards only from a config file; key, crypt and nocomp from the URL."""
        config = self.tmp / f"kcp-{crypt}-{data}-{parity}-{int(compress)}.json"
        config.write_text(json.dumps({"datashard": data, "parityshard": parity}))
        nocomp = "false" if compress else "true"
        return f"kcp.key={KEY}&kcp.crypt={crypt}&kcp.nocomp={nocomp}&kcp.configFile={config}"

    def curl_blob(self, port):
        result = st.run(["curl", "-sS", "--max-time", "30", f"http://127.0.0.1:{port}/blob"])
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertEqual(st.sha256(result.stdout), st.sha256(self.blob))


@unittest.skipUnless(st.have("kcptun-client") and st.have("curl"), "kcptun or curl is not installed")
class KcptunInteropTest(KcpCase):
    def test_kcptun_client_to_our_kcp_forward(self):
        for crypt, data, parity, compress in SETTINGS:
            with self.subTest(crypt=crypt, fec=(data, parity), compress=compress):
                server = st.free_port("udp")
                self.start_agent("-L", f"kcp://127.0.0.1:{server}/127.0.0.1:{self.web.port}?"
                                 + self.kcp_query(crypt, data, parity, compress))
                local = st.free_port()
                self.start_process(["kcptun-client", "-r", f"127.0.0.1:{server}", "-l", f"127.0.0.1:{local}",
                                    *kcptun_flags(crypt, data, parity, compress)], name="kcptun-client",
                                   wait_tcp=local)
                self.curl_blob(local)

    def test_our_kcp_dialer_to_kcptun_server(self):
        for crypt, data, parity, compress in SETTINGS:
            with self.subTest(crypt=crypt, fec=(data, parity), compress=compress):
                server = st.free_port("udp")
                self.start_process(["kcptun-server", "-t", f"127.0.0.1:{self.web.port}", "-l",
                                    f"127.0.0.1:{server}", *kcptun_flags(crypt, data, parity, compress)],
                                   name="kcptun-server")
                local = st.free_port()
                self.start_agent("-L", f"tcp://127.0.0.1:{local}", "-F",
                                 f"forward+kcp://127.0.0.1:{server}?" + self.kcp_query(crypt, data, parity, compress),
                                 wait_tcp=local)
                st.wait_until(lambda: self.try_curl(local), what="kcptun-server answering through our dialer")

    def try_curl(self, port) -> bool:
        result = st.run(["curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{port}/blob"])
        if result.returncode != 0:
            return False
        self.assertEqual(st.sha256(result.stdout), st.sha256(self.blob))
        return True


@unittest.skipUnless(st.have("ss-local") and st.have("curl"), "shadowsocks-libev or curl is not installed")
class SeedPairsTest(KcpCase):
    METHOD, PASSWORD = "chacha20-ietf-poly1305", "kcp-seed-pass"

    def ss_local_curl(self, server_port):
        local = st.free_port()
        self.start_process(["ss-local", "-s", "127.0.0.1", "-p", str(server_port), "-b", "127.0.0.1", "-l",
                            str(local), "-k", self.PASSWORD, "-m", self.METHOD], name="ss-local", wait_tcp=local)
        result = st.run(["curl", "-sS", "--max-time", "30", "--socks5-hostname", f"127.0.0.1:{local}",
                         f"http://127.0.0.1:{self.web.port}/blob"])
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertEqual(st.sha256(result.stdout), st.sha256(self.blob))

    def test_kcp_forward_in_front_of_ss_behaves_as_ss_over_kcp(self):
        """-L kcp://:8338/:8388 -L ss://:8388 and -L ss+kcp://:8338, each reached by
        -L tcp://:8080 -F forward+kcp://:8338, which then behaves as -L ss://:8080."""
        ss = f"{self.METHOD}:{self.PASSWORD}"
        plain_ss, kcp_front, ss_over_kcp = st.free_port(), st.free_port("udp"), st.free_port("udp")
        self.start_agent("-L", f"kcp://127.0.0.1:{kcp_front}/127.0.0.1:{plain_ss}",
                         "-L", f"ss://{ss}@127.0.0.1:{plain_ss}", wait_tcp=plain_ss)
        self.start_agent("-L", f"ss+kcp://{ss}@127.0.0.1:{ss_over_kcp}")
        for server in (kcp_front, ss_over_kcp):
            with self.subTest(server=server):
                front = st.free_port()
                self.start_agent("-L", f"tcp://127.0.0.1:{front}", "-F", f"forward+kcp://127.0.0.1:{server}",
                                 wait_tcp=front)
                self.ss_local_curl(front)


class LossyLinkTest(KcpCase):
    def test_16_mib_through_loss_delay_and_reordering(self):
        sink = self.echo_server()
        server = st.free_port("udp")
        self.start_agent("-L", f"kcp://127.0.0.1:{server}/127.0.0.1:{sink.port}?kcp.key={KEY}")
        relay = LossyUdpRelay(server, loss=0.03, delay=0.030, jitter=0.010, seed=7)
        self.addCleanup(relay.close)
        front = st.free_port()
        self.start_agent("-L", f"tcp://127.0.0.1:{front}", "-F", f"forward+kcp://127.0.0.1:{relay.port}?kcp.key={KEY}",
                         wait_tcp=front)
        payload = random.Random(3).randbytes(16 << 20)
        echoed = st.tcp_echo_exact(front, payload, timeout=180)
        self.assertEqual(st.sha256(echoed), st.sha256(payload))
        self.assertGreater(relay.dropped, 0, "the relay lost datagrams, which KCP sent again")


class BadInputTest(KcpCase):
    def test_garbage_wrong_key_and_a_flood_of_conversations_leave_the_service_working(self):
        server = st.free_port("udp")
        agent = self.start_agent("-L", f"kcp://127.0.0.1:{server}/127.0.0.1:{self.web.port}?kcp.key={KEY}",
                                 "-D")
        flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(flood.close)
        for size in (1, 20, 24, 100, 1400, 1500):
            for _ in range(50):
                flood.sendto(os.urandom(size), ("127.0.0.1", server))
        # Many source ports, each with one random datagram: no session may come of them.
        for _ in range(300):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as one:
                one.sendto(os.urandom(200), ("127.0.0.1", server))
        wrong = st.free_port()
        self.start_agent("-L", f"tcp://127.0.0.1:{wrong}", "-F",
                         f"forward+kcp://127.0.0.1:{server}?kcp.key=not-the-key", wait_tcp=wrong)
        result = st.run(["curl", "-sS", "--max-time", "3", f"http://127.0.0.1:{wrong}/blob"])
        self.assertNotEqual(result.returncode, 0, "a client with the wrong key gets nothing")
        good = st.free_port()
        self.start_agent("-L", f"tcp://127.0.0.1:{good}", "-F", f"forward+kcp://127.0.0.1:{server}?kcp.key={KEY}",
                         wait_tcp=good)
        self.curl_blob(good)
        self.assertTrue(agent.alive())


if __name__ == "__main__":
    unittest.main()
