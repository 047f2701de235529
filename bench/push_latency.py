#!/usr/bin/env python3
"""Push latency of strait-controller: from an Admin Apply to each agent's ACK, for N
simulated agents (bench/push_latency, all in one process: every agent enrols with the join
token and a key of its own, then holds a real AgentControl stream over a connection of its
own with mTLS under its certificate), and what the controller spends on them: RSS, CPU time
per change, enrolment time.

Usage: python3 bench/push_latency.py [--build build/release] [--agents 1000,10000] [--rounds 20]
                                    [--stores sqlite,etcd]
(etcd: a single-member etcd of Debian's etcd-server on loopback, started by the script.)
(STRAIT_BENCH_KEEP=1 keeps the scratch directory with the controller's and the tool's logs.)
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import free_port, rss_kib, wait_port

# Seconds the controller is left alone with every agent connected before the rounds: its CPU
# use then is what an idle fleet costs (keepalives, the once-a-second maintenance).
IDLE_SECONDS = 5.0


def raise_nofile():
    """preexec_fn of the controller: one descriptor per agent connection, and the controller
    raises no limit by itself."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_seconds(pid):
    """utime + stime of a process (all its threads) from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeakRss(threading.Thread):
    """Samples a process's RSS every 50 ms until stop()."""

    def __init__(self, pid, start_kib):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, start_kib, threading.Event()
        self.start()

    def run(self):
        while not self.done.wait(0.05):
            self.peak = max(self.peak, rss_kib(self.pid))

    def stop(self):
        self.done.set()
        self.join()
        return self.peak


def expect(tool, key, log):
    """The next stdout line of the tool, which must start with `key`; its other fields."""
    line = tool.stdout.readline()
    if not line.startswith(key + " "):
        tool.wait()
        with open(log) as f:
            raise RuntimeError(f"push_latency failed (exit {tool.returncode}, expected {key!r}, got {line!r}):\n"
                               f"{f.read()[-3000:]}")
    return line.split()[1:]


def start_etcd(data):
    """A single-member etcd in `data`; returns it and its client URL."""
    client, peer = free_port(), free_port()
    with open(os.path.join(data, "etcd.log"), "w") as log:
        etcd = subprocess.Popen(
            ["etcd", "--name=bench", f"--data-dir={os.path.join(data, 'etcd')}",
             f"--listen-client-urls=http://127.0.0.1:{client}", f"--advertise-client-urls=http://127.0.0.1:{client}",
             f"--listen-peer-urls=http://127.0.0.1:{peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
             f"--initial-cluster=bench=http://127.0.0.1:{peer}", "--logger=zap", "--log-level=error"],
            stdout=subprocess.DEVNULL, stderr=log)
    wait_port(client, etcd)
    return etcd, f"http://127.0.0.1:{client}"


def start_controller(build, data, store_args):
    """strait-controller on three fresh ports; returns it and its agent and admin ports. A port
    taken between free_port() and the controller's bind (tests running beside the bench, or
    the last run's connections) means another try with other ports."""
    for attempt in range(5):
        agent_port, admin_port, http_port = free_port(), free_port(), free_port()
        log_path = os.path.join(data, "controller.log")
        with open(log_path, "w") as log:
            controller = subprocess.Popen(
                [os.path.join(build, "controller", "strait-controller"), "--data-dir", data,
                 "--listen-agents", f"127.0.0.1:{agent_port}", "--listen-admin", f"127.0.0.1:{admin_port}",
                 "--listen-http", f"127.0.0.1:{http_port}", "--bootstrap-token-labels", "role=*",
                 "--enroll-rate", "10000", *store_args],
                stdout=subprocess.DEVNULL, stderr=log, preexec_fn=raise_nofile)
        try:
            wait_port(agent_port, controller)
            wait_port(admin_port, controller)
            return controller, agent_port, admin_port
        except RuntimeError:
            if controller.poll() is None:
                controller.kill()
            controller.wait()
            with open(log_path) as log:
                text = log.read()
            if "cannot listen" not in text or attempt == 4:
                raise RuntimeError(f"strait-controller did not start:\n{text[-2000:]}")


def run(build, agents, rounds, store):
    data = tempfile.mkdtemp(prefix="strait-bench-push-")
    tool_log = os.path.join(data, "push_latency.log")
    controller = tool = etcd = None
    try:
        store_args = []
        if store == "etcd":
            etcd, endpoint = start_etcd(data)
            store_args = ["--store", "etcd", "--etcd-endpoints", endpoint]
        controller, agent_port, admin_port = start_controller(build, data, store_args)
        idle_rss = rss_kib(controller.pid)
        peak = PeakRss(controller.pid, idle_rss)
        with open(tool_log, "w") as log:
            tool = subprocess.Popen(
                [os.path.join(build, "bench", "push_latency"), f"127.0.0.1:{agent_port}", f"127.0.0.1:{admin_port}",
                 os.path.join(data, "ca.pem"), os.path.join(data, "join.token"), os.path.join(data, "admin.token"),
                 str(agents), str(rounds)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        enrolled = float(expect(tool, "enrolled", tool_log)[0])
        connected = float(expect(tool, "connected", tool_log)[0])
        connected_rss = rss_kib(controller.pid)
        cpu_idle_start = cpu_seconds(controller.pid)
        time.sleep(IDLE_SECONDS)
        cpu_start = cpu_seconds(controller.pid)
        tool.stdin.write("go\n")
        tool.stdin.flush()
        p50, p99, worst, samples = expect(tool, "latency", tool_log)
        cpu_end = cpu_seconds(controller.pid)
        tool.stdin.write("done\n")
        tool.stdin.close()
        peak_rss = peak.stop()
        if tool.wait(timeout=120) != 0:
            raise RuntimeError(f"push_latency exited with {tool.returncode}")
        changes = 2 * rounds  # an Apply and a Delete each round
        return {
            "p50": float(p50), "p99": float(p99), "max": float(worst), "samples": int(samples),
            "enrol": enrolled, "connect": connected,
            "cpu_per_change_ms": (cpu_end - cpu_start) / changes * 1000,
            "idle_cpu": (cpu_start - cpu_idle_start) / IDLE_SECONDS,
            "idle_rss": idle_rss, "connected_rss": connected_rss, "peak_rss": peak_rss,
        }
    finally:
        if tool is not None and tool.poll() is None:
            tool.kill()
            tool.wait()
        if controller is not None:
            controller.terminate()
            try:
                controller.wait(timeout=10)
            except subprocess.TimeoutExpired:
                controller.kill()
        if etcd is not None:
            etcd.kill()
            etcd.wait()
        if os.environ.get("STRAIT_BENCH_KEEP"):
            print(f"kept {data}", file=sys.stderr)
        else:
            shutil.rmtree(data, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--agents", default="1000,10000")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--stores", default="sqlite", help="sqlite, etcd or both: sqlite,etcd")
    args = parser.parse_args()
    for binary in ("controller/strait-controller", "bench/push_latency"):
        if not os.access(os.path.join(args.build, binary), os.X_OK):
            sys.exit(f"{args.build}/{binary} missing: cmake --preset release && cmake --build --preset release")
    print("| store | agents | rounds | samples | p50 ms | p99 ms | max ms | enrolment s | connect s "
          "| controller CPU ms per change | controller CPU idle | controller RSS idle | connected | peak |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for store in args.stores.split(","):
        for agents in (int(n) for n in args.agents.split(",")):
            r = run(args.build, agents, args.rounds, store)
            print(f"| {store} | {agents} | {args.rounds} | {r['samples']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} "
                  f"| {r['enrol']:.2f} | {r['connect']:.2f} | {r['cpu_per_change_ms']:.1f} "
                  f"| {r['idle_cpu'] * 100:.1f} % | {r['idle_rss'] / 1024:.1f} MiB | {r['connected_rss'] / 1024:.1f} MiB "
                  f"| {r['peak_rss'] / 1024:.1f} MiB |", flush=True)


if __name__ == "__main__":
    main()
