#!/usr/bin/env python3
"""SOCKS5 connection rate and throughput of strait-agent, side by side with dante, microsocks
and v2ray's socks inbound (each when installed).

One process tree on loopback: every proxy is started once, then the same client
(bench/socks_load, which hosts its own target) drives each proxy in turn, round after round,
so slow drifts of the shared machine hit every peer alike. Prints the median of the rounds
and the ratios strait/peer.

Usage: python3 bench/socks5.py [--build build/release] [--seconds 3] [--rounds 3]
       [--concurrency 32] [--streams 1,16]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

from benchlib import ProcessGroup, free_port


class Proxies(ProcessGroup):
    def __init__(self, agent):
        super().__init__("strait-bench-socks-")
        self.agent = agent
        self.ports = {}

    def start_proxy(self, name, argv, port):
        self.start(argv, port)
        self.ports[name] = port

    def strait(self):
        port = free_port()
        # Warnings only: a log line per connection is not what is being measured.
        config = self.write("strait.yaml", "log: {level: warn}\n")
        self.start_proxy("strait", [self.agent, "-C", config, "-L", f"socks5://127.0.0.1:{port}"], port)

    def dante(self):
        port = free_port()
        config = self.write("danted.conf", f"""logoutput: /dev/null
internal: 127.0.0.1 port = {port}
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect }}
""")
        self.start_proxy("dante", ["danted", "-f", config, "-p", os.path.join(self.tmp, "danted.pid")], port)

    def microsocks(self):
        port = free_port()
        self.start_proxy("microsocks", ["microsocks", "-i", "127.0.0.1", "-p", str(port)], port)

    def v2ray(self):
        port = free_port()
        config = self.write("v2ray.json", json.dumps({
            "log": {"loglevel": "none"},
            "inbounds": [{"listen": "127.0.0.1", "port": port, "protocol": "socks",
                          "settings": {"auth": "noauth", "udp": False}}],
            "outbounds": [{"protocol": "freedom"}]}))
        self.start_proxy("v2ray", ["v2ray", "-config", config], port)



def load(tool, mode, port, parallel, seconds):
    result = subprocess.run([tool, mode, str(port), str(parallel), str(seconds)], capture_output=True, text=True,
                            timeout=seconds + 30)
    if result.returncode != 0:
        raise RuntimeError(f"socks_load failed: {result.stderr}")
    if result.stderr.strip():
        print(f"  ({result.stderr.strip()})", file=sys.stderr)
    return [float(v) for v in result.stdout.split()]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--streams", default="1,16")
    args = parser.parse_args()
    agent = os.path.join(args.build, "agent", "strait-agent")
    tool = os.path.join(args.build, "bench", "socks_load")
    for path in (agent, tool):
        if not os.access(path, os.X_OK):
            sys.exit(f"{path} missing: cmake --preset release && cmake --build --preset release")

    proxies = Proxies(agent)
    try:
        proxies.strait()
        for name, program in (("dante", "danted"), ("microsocks", "microsocks"), ("v2ray", "v2ray")):
            if shutil.which(program):
                getattr(proxies, name)()
            else:
                print(f"{name}: not installed, skipped")
        names = list(proxies.ports)
        streams = [int(s) for s in args.streams.split(",")]
        rate = {n: [] for n in names}
        p50 = {n: [] for n in names}
        p99 = {n: [] for n in names}
        gbps = {(n, s): [] for n in names for s in streams}
        for round_index in range(args.rounds):
            for name in names:
                per_second, median_ms, tail_ms = load(tool, "connect", proxies.ports[name], args.concurrency,
                                                      args.seconds)
                rate[name].append(per_second)
                p50[name].append(median_ms)
                p99[name].append(tail_ms)
                for s in streams:
                    gbps[(name, s)].append(load(tool, "throughput", proxies.ports[name], s, args.seconds)[0])
            print(f"round {round_index + 1}: " + ", ".join(f"{n} {rate[n][-1]:.0f}/s" for n in names))
    finally:
        proxies.stop()

    med = statistics.median
    print(f"\nSOCKS5 CONNECT + 1 byte each way, {args.concurrency} concurrent clients, median of {args.rounds}:")
    print("| proxy | connections/s | p50 ms | p99 ms | strait/proxy |")
    print("|---|---|---|---|---|")
    for name in names:
        print(f"| {name} | {med(rate[name]):.0f} | {med(p50[name]):.2f} | {med(p99[name]):.2f} | "
              f"{med(rate['strait']) / med(rate[name]):.2f} |")
    print(f"\nThroughput through one CONNECT per stream (Gbit/s), median of {args.rounds}:")
    print("| proxy | " + " | ".join(f"{s} stream{'s' if s > 1 else ''}" for s in streams) + " | "
          + " | ".join(f"strait/proxy ({s})" for s in streams) + " |")
    print("|---|" + "---|" * (2 * len(streams)))
    for name in names:
        values = [med(gbps[(name, s)]) for s in streams]
        ratios = [med(gbps[("strait", s)]) / v if v else float("nan") for s, v in zip(streams, values)]
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " | "
              + " | ".join(f"{r:.2f}" for r in ratios) + " |")


if __name__ == "__main__":
    main()
