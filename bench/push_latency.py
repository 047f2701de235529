#!/usr/bin/env python3
"""Push latency of strait-controller: from an Admin Apply to each agent's ACK, for N
simulated agents (bench/push_latency: every agent a real AgentControl stream over TLS, all in
one process), and the controller's RSS with N agents connected.

Usage: python3 bench/push_latency.py [--build build/release] [--agents 100,1000] [--rounds 20]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, rss_kib, wait_port


def run(build, agents, rounds):
    data = tempfile.mkdtemp(prefix="strait-bench-push-")
    agent_port, admin_port, http_port = free_port(), free_port(), free_port()
    controller = subprocess.Popen(
        [os.path.join(build, "controller", "strait-controller"), "--data-dir", data,
         "--listen-agents", f"127.0.0.1:{agent_port}", "--listen-admin", f"127.0.0.1:{admin_port}",
         "--listen-http", f"127.0.0.1:{http_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(agent_port, controller)
        wait_port(admin_port, controller)
        idle_rss = rss_kib(controller.pid)
        tool = subprocess.Popen(
            [os.path.join(build, "bench", "push_latency"), f"127.0.0.1:{agent_port}", f"127.0.0.1:{admin_port}",
             os.path.join(data, "ca.pem"), os.path.join(data, "join.token"), os.path.join(data, "admin.token"),
             str(agents), str(rounds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak_rss = idle_rss
        while tool.poll() is None:
            peak_rss = max(peak_rss, rss_kib(controller.pid))
            time.sleep(0.05)
        out, err = tool.communicate()
        if tool.returncode != 0:
            raise RuntimeError(f"push_latency failed: {err}")
        p50, p99, worst, samples = out.split()
        return float(p50), float(p99), float(worst), int(samples), idle_rss, peak_rss
    finally:
        controller.terminate()
        try:
            controller.wait(timeout=10)
        except subprocess.TimeoutExpired:
            controller.kill()
        shutil.rmtree(data, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--agents", default="100,1000")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    for binary in ("controller/strait-controller", "bench/push_latency"):
        if not os.access(os.path.join(args.build, binary), os.X_OK):
            sys.exit(f"{args.build}/{binary} missing: cmake --preset release && cmake --build --preset release")
    print("| agents | rounds | samples | p50 ms | p99 ms | max ms | controller RSS idle | with agents |")
    print("|---|---|---|---|---|---|---|---|")
    for agents in (int(n) for n in args.agents.split(",")):
        p50, p99, worst, samples, idle, peak = run(args.build, agents, args.rounds)
        print(f"| {agents} | {args.rounds} | {samples} | {p50:.1f} | {p99:.1f} | {worst:.1f} | "
              f"{idle / 1024:.1f} MiB | {peak / 1024:.1f} MiB |", flush=True)


if __name__ == "__main__":
    main()
