#!/usr/bin/env python3
"""TLS forward: throughput, handshake rate and idle memory per TLS connection of strait-agent,
side by side with haproxy (`ssl`) and stunnel, in one process tree on loopback.

Each peer runs both ends of the same TLS forward, with the same EC P-256 certificate:
  iperf3 client -> [client end: plain in, TLS out] -> [server end: TLS in, plain out] -> iperf3 server
strait: `-L tcp://:C -F forward+tls://:S` and `-L tls://:S/target`; haproxy: a `server ... ssl`
and a `bind ... ssl crt`; stunnel: `client = yes` and a server section. Then:
- handshakes per second against each server end (openssl s_time -new, a full handshake per
  connection, no resumption), and the server's CPU per handshake, two ways:
  * handshake only: the client closes right after its Finished. haproxy then drops the
    connection on the hang-up before it reads that Finished, so it skips the end of the
    handshake (Finished check, session ticket), which the others complete;
  * handshake and a request (`-www /`): the client sends a GET through to an HTTP responder
    (haproxy `http-request return`) and reads the reply, so every server completes the
    handshake, sends its tickets, dials the target and relays, as for a real client;
- RSS growth per idle TLS connection held open to each server end (which holds its
  upstream connection too).

Usage: python3 bench/tls_forward.py [--agent build/release/agent/strait-agent] [--seconds 3]
       [--rounds 3] [--idle 2000]
"""
import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import ssl
import statistics
import subprocess
import sys

from benchlib import ProcessGroup, cpu_seconds, free_port, wait_port, require_tools
from tcp_forward import HOLDER, idle_memory, iperf_when_free


class Peers(ProcessGroup):
    def __init__(self, agent):
        super().__init__("strait-bench-tls-")
        self.agent = agent
        self.cert = os.path.join(self.tmp, "cert.pem")
        self.key = os.path.join(self.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
        self.pem = self.write("combined.pem", open(self.cert).read() + open(self.key).read())

    def strait(self, *args, port):
        config = self.write(f"strait-{port}.yaml", "log: {level: warn}\n")
        return self.start([self.agent, "-C", config, *args], port)

    def strait_server(self, port, target):
        return self.strait("-L", f"tls://127.0.0.1:{port}/127.0.0.1:{target}?certFile={self.cert}&keyFile={self.key}",
                           port=port)

    def strait_client(self, port, server):
        return self.strait("-L", f"tcp://127.0.0.1:{port}", "-F", f"forward+tls://127.0.0.1:{server}", port=port)

    def haproxy(self, port, body):
        config = self.write(f"haproxy-{port}.cfg", f"""global
    nbthread {os.cpu_count()}
    maxconn 8000
    tune.ssl.default-dh-param 2048
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
{body}""")
        return self.start(["haproxy", "-f", config, "-db"], port)

    def http_responder(self, port):
        """Answers every HTTP request with a short 200 and closes: the target of requests
        that measure connections rather than bytes."""
        return self.haproxy(port, f"frontend f\n    mode http\n    bind 127.0.0.1:{port}\n"
                                  f"    http-request return status 200 content-type text/plain string ok\n")

    def haproxy_server(self, port, target):
        return self.haproxy(port, f"listen s\n    bind 127.0.0.1:{port} ssl crt {self.pem}\n"
                                  f"    server t 127.0.0.1:{target}\n")

    def haproxy_client(self, port, server):
        return self.haproxy(port, f"listen c\n    bind 127.0.0.1:{port}\n"
                                  f"    server s 127.0.0.1:{server} ssl verify none\n")

    def stunnel(self, port, section):
        config = self.write(f"stunnel-{port}.conf", f"foreground = yes\npid =\ndebug = 3\n{section}")
        return self.start([shutil.which("stunnel4") or "stunnel", config], port)

    def stunnel_server(self, port, target):
        return self.stunnel(port, f"[s]\ncert = {self.cert}\nkey = {self.key}\naccept = 127.0.0.1:{port}\n"
                                  f"connect = 127.0.0.1:{target}\n")

    def stunnel_client(self, port, server):
        return self.stunnel(port, f"[c]\nclient = yes\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{server}\n")


PEERS = ("strait", "haproxy", "stunnel")


def handshake_rate(port, seconds, request=False):
    command = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(seconds)]
    if request:
        command += ["-www", "/"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    match = re.search(r"([\d.]+) connections/user sec", out.stdout)
    total = re.search(r"(\d+) connections in ([\d.]+)s", out.stdout)
    if not total:
        raise RuntimeError(f"s_time against {port}: {out.stdout[-300:]} {out.stderr[-300:]}")
    return int(total.group(1)) / seconds, float(match.group(1)) if match else 0.0


async def hold_tls(port, count):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conns = []
    for _ in range(count):
        conns.append(await asyncio.open_connection("127.0.0.1", port, ssl=context))
    return conns


def measure_handshakes(servers, seconds, rounds, request):
    rates = {name: [] for name in servers}
    cpu_ms = {name: [] for name in servers}
    names = tuple(servers)
    # The order turns each round: the first peer after the throughput runs met a slower
    # machine (strait, always first, lost 10-15 % in its first round).
    for round_index in range(rounds):
        for name in names[round_index % len(names):] + names[:round_index % len(names)]:
            proc, port = servers[name]
            before = cpu_seconds(proc.pid)
            rate = handshake_rate(port, seconds, request)[0]
            rates[name].append(rate)
            cpu_ms[name].append(1000 * (cpu_seconds(proc.pid) - before) / (rate * seconds))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print("  ".join(f"{k}={v:.0f}/s" for k, v in medians.items()))
    print(f"strait/haproxy={medians['strait'] / medians['haproxy']:.2f}  "
          f"strait/stunnel={medians['strait'] / medians['stunnel']:.2f}")
    # One s_time client runs one handshake at a time, so the rate is mostly its own; the
    # server's CPU per handshake is what bounds a server's rate under many clients.
    cpu = {name: statistics.median(values) for name, values in cpu_ms.items()}
    print("server CPU ms per handshake: " + "  ".join(f"{k}={v:.3f}" for k, v in cpu.items()))
    print(f"handshakes per server CPU second, strait/haproxy={cpu['haproxy'] / cpu['strait']:.2f}  "
          f"strait/stunnel={cpu['stunnel'] / cpu['strait']:.2f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", default="build/release/agent/strait-agent")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=int, default=2000)
    args = parser.parse_args()
    require_tools("iperf3", "haproxy", "openssl")
    if not (shutil.which("stunnel4") or shutil.which("stunnel")):
        sys.exit("bench needs stunnel (bash scripts/setup.sh installs it)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))

    peers = Peers(os.path.abspath(args.agent))
    target = free_port()
    iperf_server = subprocess.Popen(["iperf3", "-s", "-p", str(target)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    peers.procs.append(iperf_server)
    try:
        wait_port(target, iperf_server)
        fronts = {}
        for name in PEERS:
            server, client = free_port(), free_port()
            getattr(peers, f"{name}_server")(server, target)
            getattr(peers, f"{name}_client")(client, server)
            fronts[name] = client
        print(f"# tls forward throughput (both ends TLS-forwarding), iperf3 {args.seconds}s per run, median of "
              f"{args.rounds} interleaved rounds, Gbit/s")
        for streams in (1, 16):
            samples = {name: [] for name in PEERS}
            samples["direct"] = []
            for _ in range(args.rounds):
                samples["direct"].append(iperf_when_free(target, streams, args.seconds))
                for name in PEERS:
                    samples[name].append(iperf_when_free(fronts[name], streams, args.seconds))
            results = {name: statistics.median(values) for name, values in samples.items()}
            print(f"streams={streams:<3} " + "  ".join(f"{k}={v:.2f}" for k, v in results.items()))
            print(f"streams={streams:<3} strait/haproxy={results['strait'] / results['haproxy']:.2f}  "
                  f"strait/stunnel={results['strait'] / results['stunnel']:.2f}")

        # Handshakes only: a target that accepts and holds connections, as for idle memory.
        hold_port = free_port()
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(hold_port)])
        peers.procs.append(holder)
        wait_port(hold_port, holder)
        responder_port = free_port()
        peers.http_responder(responder_port)
        for request, target_port in ((False, hold_port), (True, responder_port)):
            servers = {}
            for name in PEERS:
                port = free_port()
                servers[name] = (getattr(peers, f"{name}_server")(port, target_port), port)
            what = "and a request through to an HTTP responder (-www /)" if request else "only"
            print(f"# full TLS handshakes {what} per second (openssl s_time -new, {args.seconds}s, "
                  f"median of {args.rounds})")
            measure_handshakes(servers, args.seconds, args.rounds, request)

        print(f"# memory per idle TLS connection ({args.idle} connections, RSS delta, upstream held too)")
        for name in ("strait", "haproxy"):
            idle_port = free_port()
            proc = getattr(peers, f"{name}_server")(idle_port, hold_port)
            print(f"{name}: {idle_memory(proc, idle_port, args.idle, settle=3, hold=hold_tls):.0f} bytes/connection")
    finally:
        peers.stop()


if __name__ == "__main__":
    main()
