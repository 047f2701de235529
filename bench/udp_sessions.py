#!/usr/bin/env python3
"""Memory per live UDP session of a UDP forward: strait-agent, socat and v2ray side by side.

Each proxy forwards a loopback UDP port to a UDP echo target. N clients, each on its own
source port, send one datagram and wait for its echo, so the proxy holds N live sessions;
the proxy's memory is read before and with the sessions open, and the difference divided
by N. Memory is PSS (proportional set size, from /proc/PID/smaps_rollup, summed over the
proxy and its children), so that socat's process per session is not charged its shared
libraries N times. Prints KiB per session and the ratios.

Usage: python3 bench/udp_sessions.py [--agent build/release/agent/strait-agent] [--sessions 1000]
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

from benchlib import ProcessGroup, pss_kib


def udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def echo_target():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                data, address = sock.recvfrom(65536)
                sock.sendto(data, address)
            except OSError:
                return
    threading.Thread(target=serve, daemon=True).start()
    return sock


def wait_udp(port, proc, deadline=10.0):
    end = time.monotonic() + deadline
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.settimeout(0.2)
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited early")
            try:
                probe.sendto(b"probe", ("127.0.0.1", port))
                if probe.recv(100) == b"probe":
                    return
            except OSError:
                pass
    raise RuntimeError(f"udp port {port} not ready")


def open_sessions(port, count):
    """`count` clients, each with one echoed datagram (sent up to three times: UDP may drop
    one); returns the sockets of those that got their echo, kept open."""
    clients = []
    for index in range(count):
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.settimeout(1)
        client.bind((f"127.0.{1 + index // 250}.{1 + index % 250}", 0))
        payload = f"session {index}".encode()
        for _ in range(3):
            client.sendto(payload, ("127.0.0.1", port))
            try:
                if client.recv(100) == payload:
                    clients.append(client)
                    break
            except socket.timeout:
                continue
        else:
            client.close()
    return clients


def measure(name, argv, port, sessions, group):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    group.procs.append(proc)
    wait_udp(port, proc)
    time.sleep(1)  # pacing: lets the proxy finish its start-up allocations before the baseline
    before = pss_kib(proc.pid)
    clients = open_sessions(port, sessions)
    time.sleep(1)
    after = pss_kib(proc.pid)
    children = len(subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split())
    for client in clients:
        client.close()
    proc.terminate()
    proc.wait(10)
    per_session = (after - before) / max(1, len(clients))
    print(f"{name}: {before / 1024:.1f} MiB idle, {after / 1024:.1f} MiB with {len(clients)} of {sessions} sessions "
          f"answered ({children} child processes): {per_session:.2f} KiB per session", flush=True)
    return per_session


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="build/release/agent/strait-agent")
    parser.add_argument("--sessions", type=int, default=1000)
    args = parser.parse_args()
    if not os.access(args.agent, os.X_OK):
        sys.exit(f"{args.agent} missing: cmake --preset release && cmake --build --preset release")
    target = echo_target()
    group = ProcessGroup("strait-udp-bench-")
    results = {}
    try:
        port = udp_port()
        config = group.write("strait.yaml", "log: {level: warn}\n")
        results["strait"] = measure("strait", [args.agent, "-C", config, "-L",
                                               f"udp://127.0.0.1:{port}/127.0.0.1:{target.getsockname()[1]}?ttl=60s"],
                                    port, args.sessions, group)
        if shutil.which("socat"):
            port = udp_port()
            results["socat"] = measure("socat", ["socat", f"UDP4-RECVFROM:{port},bind=127.0.0.1,fork,reuseaddr",
                                                 f"UDP4:127.0.0.1:{target.getsockname()[1]}"],
                                       port, args.sessions, group)
        if shutil.which("v2ray"):
            port = udp_port()
            v2ray_config = group.write("v2ray.json", json.dumps({
                "log": {"loglevel": "none"},
                "inbounds": [{"listen": "127.0.0.1", "port": port, "protocol": "dokodemo-door",
                              "settings": {"address": "127.0.0.1", "port": target.getsockname()[1],
                                           "network": "udp"}}],
                "outbounds": [{"protocol": "freedom"}]}))
            results["v2ray"] = measure("v2ray", ["v2ray", "-config", v2ray_config], port, args.sessions, group)
    finally:
        group.stop()
        target.close()
    # socat's UDP4-RECVFROM,fork answers each datagram in a child that then exits: it keeps
    # no session between datagrams, so its figure is what a client costs while it waits.
    print(f"\nMemory per live UDP session ({args.sessions} sessions, PSS):")
    print("| proxy | KiB per session | proxy/strait |")
    print("|---|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value:.2f} | {value / results['strait']:.1f} |")


if __name__ == "__main__":
    main()
