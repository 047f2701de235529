#!/usr/bin/env python3
"""TCP forward throughput and idle-connection memory of strait-agent, side by side with peers.

Runs in one process tree on loopback: an iperf3 server, then the same iperf3 client load
(1 stream and 64 streams) directly, through strait-agent (`-L tcp://.../target`), through
socat (fork mode) and through haproxy (mode tcp, splice). Prints Gbit/s and the ratios
strait/haproxy, strait/socat and strait/direct. Then opens N idle connections through
strait-agent and haproxy and prints the RSS growth per connection.

Usage: python3 bench/tcp_forward.py [--agent build/release/agent/strait-agent] [--seconds 3]
       [--rounds 3] [--idle 5000]
"""
import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from benchlib import ProcessGroup, free_port, rss_kib, wait_port, require_tools


class Peers(ProcessGroup):
    def __init__(self, agent, target_port):
        super().__init__("strait-bench-")
        self.agent = agent
        self.target_port = target_port

    def strait(self, port):
        # Warnings only: a log line per connection is not what is being measured.
        config = self.write(f"strait-{port}.yaml", "log: {level: warn}\n")
        return self.start([self.agent, "-C", config, "-L", f"tcp://127.0.0.1:{port}/127.0.0.1:{self.target_port}"],
                          port)

    def socat(self, port):
        return self.start(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                           f"TCP:127.0.0.1:{self.target_port}"], port)

    def haproxy(self, port):
        config = self.write(f"haproxy-{port}.cfg", f"""global
    nbthread {os.cpu_count()}
    maxconn 6000
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    option splice-auto
listen forward
    bind 127.0.0.1:{port}
    server target 127.0.0.1:{self.target_port}
""")
        return self.start(["haproxy", "-f", config, "-db"], port)


def iperf(port, streams, seconds):
    out = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-P", str(streams), "-t", str(seconds),
                          "-J"], capture_output=True, text=True, timeout=seconds + 30)
    if out.returncode != 0:
        raise RuntimeError(f"iperf3 through port {port} failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9



def iperf_when_free(port, streams, seconds, attempts=5):
    """iperf3's server runs one test at a time: a tunnel still closing the previous test's
    connections makes it answer "busy" for a moment, so try again."""
    for attempt in range(attempts):
        try:
            return iperf(port, streams, seconds)
        except (RuntimeError, KeyError):
            if attempt == attempts - 1:
                raise
            time.sleep(1)

async def hold_idle(port, count):
    conns = []
    for _ in range(count):
        conns.append(await asyncio.open_connection("127.0.0.1", port))
    return conns


def idle_memory(proc, port, count, settle, hold=hold_idle):
    """RSS growth of `proc` per connection while `hold(port, count)` keeps that many open."""
    before = rss_kib(proc.pid)
    loop = asyncio.new_event_loop()
    conns = loop.run_until_complete(hold(port, count))
    # The forwarder dials the target once per accepted connection; wait until it has.
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        time.sleep(0.5)
    after = rss_kib(proc.pid)
    for _, writer in conns:
        writer.close()
    loop.run_until_complete(asyncio.sleep(0.2))
    loop.close()
    return (after - before) * 1024 / count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", default="build/release/agent/strait-agent")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=int, default=5000)
    args = parser.parse_args()
    require_tools("iperf3", "socat", "haproxy")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))

    target_port = free_port()
    iperf_server = subprocess.Popen(["iperf3", "-s", "-p", str(target_port)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    peers = Peers(os.path.abspath(args.agent), target_port)
    try:
        wait_port(target_port, iperf_server)
        ports = {name: free_port() for name in ("strait", "socat", "haproxy")}
        procs = {"strait": peers.strait(ports["strait"]), "socat": peers.socat(ports["socat"]),
                 "haproxy": peers.haproxy(ports["haproxy"])}
        print(f"# tcp forward throughput, iperf3 {args.seconds}s per run, median of {args.rounds} interleaved "
              f"rounds, Gbit/s")
        targets = {"direct": target_port, **ports}
        for streams in (1, 64):
            samples = {name: [] for name in targets}
            # Interleaving the peers round by round spreads the machine's noise over all of them.
            for _ in range(args.rounds):
                for name, port in targets.items():
                    samples[name].append(iperf_when_free(port, streams, args.seconds))
            results = {name: statistics.median(values) for name, values in samples.items()}
            line = "  ".join(f"{k}={v:.2f}" for k, v in results.items())
            print(f"streams={streams:<3} {line}")
            print(f"streams={streams:<3} strait/haproxy={results['strait'] / results['haproxy']:.2f}  "
                  f"strait/socat={results['strait'] / results['socat']:.2f}  "
                  f"strait/direct={results['strait'] / results['direct']:.2f}  "
                  f"haproxy/direct={results['haproxy'] / results['direct']:.2f}")
        iperf_server.terminate()
        iperf_server.wait(timeout=5)

        # Idle connections need a target that accepts and holds them: a Python asyncio server.
        hold_port = free_port()
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(hold_port)])
        peers.procs.append(holder)
        wait_port(hold_port, holder)
        peers.target_port = hold_port
        idle_ports = {"strait": free_port(), "haproxy": free_port()}
        idle_procs = {"strait": peers.strait(idle_ports["strait"]), "haproxy": peers.haproxy(idle_ports["haproxy"])}
        print(f"# memory per idle forwarded connection ({args.idle} connections, RSS delta)")
        for name in ("strait", "haproxy"):
            per_conn = idle_memory(idle_procs[name], idle_ports[name], args.idle, settle=3)
            print(f"{name}: {per_conn:.0f} bytes/connection")
    finally:
        iperf_server.kill()
        peers.stop()


HOLDER = """
import asyncio, sys
async def main():
    held = []
    async def hold(reader, writer):
        held.append(writer)
        try:
            await reader.read()
        except ConnectionError:  # handshake benches reset their connections
            pass
    server = await asyncio.start_server(hold, '127.0.0.1', int(sys.argv[1]), backlog=4096)
    await server.serve_forever()
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
asyncio.run(main())
"""

if __name__ == "__main__":
    main()
