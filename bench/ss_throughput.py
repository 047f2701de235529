#!/usr/bin/env python3
"""Shadowsocks AEAD throughput: strait-agent as both ends against shadowsocks-libev
(ss-local + ss-server), side by side on loopback, per cipher.

  iperf3 client -> client end (plain in) -> ss tunnel -> server end -> iperf3 server

strait: `-L tcp://:C/target -F ss://method:pw@:S` with `-L ss://method:pw@:S`; libev:
`ss-tunnel -L target` (ss-libev's port forward, the counterpart of our tcp:// forward) with
`ss-server`. Prints Gbit/s for 1 and 8 streams and strait/libev ratios, median of interleaved
rounds.

Usage: python3 bench/ss_throughput.py [--agent build/release/agent/strait-agent] [--seconds 3] [--rounds 3]
"""
import argparse
import os
import statistics

from benchlib import ProcessGroup, free_port, require_tools
from tcp_forward import iperf_when_free

PASSWORD = "bench-password"
METHODS = ("aes-128-gcm", "chacha20-ietf-poly1305")


class Peers(ProcessGroup):
    def __init__(self, agent):
        super().__init__("strait-bench-ss-")
        self.agent = agent
        self.config = self.write("strait.yaml", "log: {level: warn}\n")

    def strait(self, method, server, client, target):
        self.start([self.agent, "-C", self.config, "-L", f"ss://{method}:{PASSWORD}@127.0.0.1:{server}"], server)
        self.start([self.agent, "-C", self.config, "-L", f"tcp://127.0.0.1:{client}/127.0.0.1:{target}",
                    "-F", f"ss://{method}:{PASSWORD}@127.0.0.1:{server}"], client)

    def libev(self, method, server, client, target):
        self.start(["ss-server", "-s", "127.0.0.1", "-p", str(server), "-k", PASSWORD, "-m", method], server)
        self.start(["ss-tunnel", "-s", "127.0.0.1", "-p", str(server), "-b", "127.0.0.1", "-l", str(client),
                    "-k", PASSWORD, "-m", method, "-L", f"127.0.0.1:{target}"], client)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", default="build/release/agent/strait-agent")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require_tools("iperf3", "ss-server", "ss-tunnel")
    peers = Peers(os.path.abspath(args.agent))
    try:
        target = free_port()
        peers.start(["iperf3", "-s", "-p", str(target)], target)
        fronts = {}
        for method in METHODS:
            for peer in ("strait", "libev"):
                server, client = free_port(), free_port()
                getattr(peers, peer)(method, server, client, target)
                fronts[(method, peer)] = client
        print(f"# ss tunnel, iperf3 {args.seconds}s per run, median of {args.rounds} interleaved rounds, Gbit/s")
        for streams in (1, 8):
            samples = {key: [] for key in fronts}
            for _ in range(args.rounds):
                for key, port in fronts.items():
                    samples[key].append(iperf_when_free(port, streams, args.seconds))
            results = {key: statistics.median(values) for key, values in samples.items()}
            for method in METHODS:
                ours, theirs = results[(method, "strait")], results[(method, "libev")]
                print(f"streams={streams:<2} {method:<23} strait={ours:.2f} libev={theirs:.2f} "
                      f"strait/libev={ours / theirs:.2f}")
    finally:
        peers.stop()


if __name__ == "__main__":
    main()
