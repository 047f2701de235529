#!/usr/bin/env python3
"""KCP tunnel throughput and CPU per GiB: strait-agent as both ends against kcptun
(kcptun-client + kcptun-server), same settings, side by side on loopback.

  iperf3 client -> client end (TCP in) -> KCP over UDP [-> lossy relay] -> server end -> iperf3 server

strait: `-L tcp://:C -F forward+kcp://:S` with `-L kcp://:S/target`; kcptun: `kcptun-client -l :C
-r :S` with `kcptun-server -l :S -t target`. Both: key and crypt aes, mode fast, mtu 1350,
windows 1024/1024, FEC 10/3, no compression (iperf3's payload does not compress). Links:
loopback as it is (0 %), and through tests/support/lossy_udp.py with 2 % loss each way and
15 ms delay with 5 ms jitter each way (the same relay, in this process, for both peers).
Prints Mbit/s and CPU seconds of both ends per GiB moved, median of interleaved rounds.

Usage: python3 bench/kcp_throughput.py [--agent build/release/agent/strait-agent] [--seconds 5] [--rounds 3]
                                       [--links 0%,2%+15ms]
"""
import argparse
import os
import statistics
import subprocess
import sys

from benchlib import ProcessGroup, cpu_seconds, free_port, require_tools, wait_port
from tcp_forward import iperf_when_free

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
from lossy_udp import LossyUdpRelay  # noqa: E402

KEY = "bench-kcp-key"
KCPTUN = ["--key", KEY, "--crypt", "aes", "--mode", "fast", "--mtu", "1350", "--sndwnd", "1024", "--rcvwnd", "1024",
          "--datashard", "10", "--parityshard", "3", "--nocomp", "--quiet"]
STRAIT = f"kcp.key={KEY}&kcp.crypt=aes&kcp.mode=fast&kcp.mtu=1350&kcp.sndwnd=1024&kcp.rcvwnd=1024&kcp.nocomp=true"
LINKS = {"0%": None, "2%+15ms": {"loss": 0.02, "delay": 0.015, "jitter": 0.005}}


class Peers(ProcessGroup):
    def __init__(self, agent):
        super().__init__("strait-bench-kcp-")
        self.agent = agent
        self.config = self.write("strait.yaml", "log: {level: warn}\n")

    def spawn(self, argv):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def strait(self, server, client, reach, target):
        ends = [self.spawn([self.agent, "-C", self.config, "-L", f"kcp://127.0.0.1:{server}/127.0.0.1:{target}?{STRAIT}"])]
        ends.append(self.start([self.agent, "-C", self.config, "-L", f"tcp://127.0.0.1:{client}",
                                "-F", f"forward+kcp://127.0.0.1:{reach}?{STRAIT}"], client))
        return ends

    def kcptun(self, server, client, reach, target):
        ends = [self.spawn(["kcptun-server", "-l", f"127.0.0.1:{server}", "-t", f"127.0.0.1:{target}", *KCPTUN])]
        ends.append(self.start(["kcptun-client", "-l", f"127.0.0.1:{client}", "-r", f"127.0.0.1:{reach}", *KCPTUN],
                               client))
        return ends


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", default="build/release/agent/strait-agent")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--links", default=",".join(LINKS), help="which links to run, of " + ", ".join(LINKS))
    args = parser.parse_args()
    links = {name: LINKS[name] for name in args.links.split(",")}
    require_tools("iperf3", "kcptun-client", "kcptun-server")
    peers = Peers(os.path.abspath(args.agent))
    relays = []
    try:
        target = free_port()
        iperf_server = peers.spawn(["iperf3", "-s", "-p", str(target)])
        wait_port(target, iperf_server)
        fronts = {}
        for link, shape in links.items():
            for peer in ("strait", "kcptun"):
                server, client = free_port(), free_port()
                reach = server
                if shape:
                    relays.append(LossyUdpRelay(server, seed=len(relays) + 1, **shape))
                    reach = relays[-1].port
                ends = getattr(peers, peer)(server, client, reach, target)
                fronts[(link, peer)] = (client, [end.pid for end in ends])
        print(f"# KCP tunnel, iperf3 1 stream {args.seconds}s per run, median of {args.rounds} interleaved rounds")
        samples = {key: [] for key in fronts}
        for _ in range(args.rounds):
            for key, (port, pids) in fronts.items():
                before = cpu_seconds(*pids)
                gbits = iperf_when_free(port, 1, args.seconds)
                spent = cpu_seconds(*pids) - before
                gib = gbits * args.seconds / 8 / 1.073741824
                samples[key].append((gbits * 1000, spent / gib if gib > 0 else float("inf")))
        for link in links:
            row = {}
            for peer in ("strait", "kcptun"):
                values = samples[(link, peer)]
                row[peer] = (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values))
            (ours, ours_cpu), (theirs, theirs_cpu) = row["strait"], row["kcptun"]
            print(f"link={link:<8} strait={ours:.0f} Mbit/s ({ours_cpu:.1f} CPU s/GiB)  "
                  f"kcptun={theirs:.0f} Mbit/s ({theirs_cpu:.1f} CPU s/GiB)  "
                  f"strait/kcptun={ours / theirs:.2f} throughput, {ours_cpu / theirs_cpu:.2f} CPU per GiB")
    finally:
        for relay in relays:
            relay.close()
        peers.stop()


if __name__ == "__main__":
    main()
