#!/usr/bin/env python3
"""Push latency of strait-controller: from an Admin Apply to each agent's ACK, for N
simulated agents (bench/push_latency, all in one process: every agent enrols with the join
token and a key of its own, then holds a real AgentControl stream over a connection of its
own with mTLS under its certificate), and what the controller spends on them: RSS (idle,
right after the connections, "settled" 5 s later, peak), CPU time per connection and per
change, enrolment time.

Usage: python3 bench/push_latency.py [--build build/release] [--agents 1000,10000] [--rounds 20]
                                    [--stores sqlite,etcd] [--restart] [--controller-args "..."]
(etcd: a single-member etcd of Debian's etcd-server on loopback, started by the script.)
(--restart: after the rounds, SIGKILL the controller with every agent connected and start it
again on the same data dir and ports; the agents reconnect as real ones do. Reports the time
until every agent's stream is back, per-agent p50/p99, and the first push after it.)
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

from benchlib import cpu_seconds, free_port, rss_kib, wait_port

# Seconds the controller is left alone with every agent connected before the rounds: its CPU
# use then is what an idle fleet costs (keepalives, the once-a-second maintenance).
IDLE_SECONDS = 5.0


def raise_nofile():
    """preexec_fn of the controller: one descriptor per agent connection, and the controller
    raises no limit by itself."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


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
    if line.split()[:1] != [key]:
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


def start_controller(build, data, store_args, ports=None):
    """strait-controller on three fresh ports (or on `ports`, after a restart); returns it and
    its agent, admin and HTTP ports. A port taken between free_port() and the controller's
    bind (tests running beside the bench, or the last run's connections) means another try
    with other ports."""
    for attempt in range(5):
        agent_port, admin_port, http_port = ports or (free_port(), free_port(), free_port())
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
            return controller, (agent_port, admin_port, http_port)
        except RuntimeError:
            if controller.poll() is None:
                controller.kill()
            controller.wait()
            with open(log_path) as log:
                text = log.read()
            if "cannot listen" not in text or attempt == 4 or ports:
                raise RuntimeError(f"strait-controller did not start:\n{text[-2000:]}")


def restart(build, data, store_args, controller, ports, tool):
    """Kills the controller once the tool is armed and starts it again on the same ports;
    returns the new one and the time of the kill."""
    tool.stdin.write("restart\n")
    tool.stdin.flush()
    expect(tool, "armed", os.path.join(data, "push_latency.log"))
    killed = time.monotonic()
    controller.kill()
    controller.wait()
    # The first run's log is kept beside the new one.
    os.rename(os.path.join(data, "controller.log"), os.path.join(data, "controller-before-restart.log"))
    controller, _ = start_controller(build, data, store_args, ports)
    return controller, killed


def restart_figures(controller, killed, tool, tool_log):
    """The tool's figures after a restart, with the controller's start time, CPU and RSS."""
    up = time.monotonic() - killed
    back, p50, p99, attempts = expect(tool, "reconnected", tool_log)
    cpu = cpu_seconds(controller.pid)
    rss = rss_kib(controller.pid)
    after_p50, after_p99, after_max = expect(tool, "after-restart", tool_log)
    return {
        "controller_up": up, "back": float(back), "back_p50": float(p50), "back_p99": float(p99),
        "attempts": int(attempts), "restart_cpu": cpu, "restart_rss": rss,
        "after_p50": float(after_p50), "after_p99": float(after_p99), "after_max": float(after_max),
    }


def run(build, agents, rounds, store, with_restart, controller_args):
    data = tempfile.mkdtemp(prefix="strait-bench-push-")
    tool_log = os.path.join(data, "push_latency.log")
    controller = tool = etcd = None
    try:
        store_args = []
        if store == "etcd":
            etcd, endpoint = start_etcd(data)
            store_args = ["--store", "etcd", "--etcd-endpoints", endpoint]
        store_args += controller_args
        controller, ports = start_controller(build, data, store_args)
        agent_port, admin_port, _ = ports
        idle_rss = rss_kib(controller.pid)
        peak = PeakRss(controller.pid, idle_rss)
        with open(tool_log, "w") as log:
            tool = subprocess.Popen(
                [os.path.join(build, "bench", "push_latency"), f"127.0.0.1:{agent_port}", f"127.0.0.1:{admin_port}",
                 os.path.join(data, "ca.pem"), os.path.join(data, "join.token"), os.path.join(data, "admin.token"),
                 str(agents), str(rounds)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        enrolled = float(expect(tool, "enrolled", tool_log)[0])
        cpu_enrolled = cpu_seconds(controller.pid)
        connected = float(expect(tool, "connected", tool_log)[0])
        cpu_connected = cpu_seconds(controller.pid)
        connected_rss = rss_kib(controller.pid)
        cpu_idle_start = cpu_seconds(controller.pid)
        time.sleep(IDLE_SECONDS)
        cpu_start = cpu_seconds(controller.pid)
        settled_rss = rss_kib(controller.pid)  # once the handshakes' transient memory went back
        tool.stdin.write("go\n")
        tool.stdin.flush()
        p50, p99, worst, samples = expect(tool, "latency", tool_log)
        cpu_end = cpu_seconds(controller.pid)
        peak_rss = peak.stop()
        restarted = {}
        if with_restart:
            # The new controller is the one the finally below stops, whatever fails next.
            controller, killed = restart(build, data, store_args, controller, ports, tool)
            restarted = restart_figures(controller, killed, tool, tool_log)
        tool.stdin.write("done\n")
        tool.stdin.close()
        if tool.wait(timeout=120) != 0:
            raise RuntimeError(f"push_latency exited with {tool.returncode}")
        changes = 2 * rounds  # an Apply and a Delete each round
        return {
            "p50": float(p50), "p99": float(p99), "max": float(worst), "samples": int(samples),
            "enrol": enrolled, "connect": connected,
            "cpu_per_connect_ms": (cpu_connected - cpu_enrolled) / agents * 1000,
            "cpu_per_change_ms": (cpu_end - cpu_start) / changes * 1000,
            "idle_cpu": (cpu_start - cpu_idle_start) / IDLE_SECONDS,
            "idle_rss": idle_rss, "connected_rss": connected_rss,
            "settled_rss": settled_rss, "peak_rss": peak_rss, **restarted,
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
    parser.add_argument("--restart", action="store_true", help="also measure convergence after a controller restart")
    parser.add_argument("--controller-args", default="", help="more strait-controller flags, e.g. \"--coalesce-ms 50\"")
    args = parser.parse_args()
    for binary in ("controller/strait-controller", "bench/push_latency"):
        if not os.access(os.path.join(args.build, binary), os.X_OK):
            sys.exit(f"{args.build}/{binary} missing: cmake --preset release && cmake --build --preset release")
    print("| store | agents | rounds | samples | p50 ms | p99 ms | max ms | enrolment s | connect s "
          "| controller CPU ms per connect | controller CPU ms per change | controller CPU idle | controller RSS idle | connected | settled | peak |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    restarts = []
    for store in args.stores.split(","):
        for agents in (int(n) for n in args.agents.split(",")):
            r = run(args.build, agents, args.rounds, store, args.restart, args.controller_args.split())
            if args.restart:
                restarts.append((store, agents, r))
            print(f"| {store} | {agents} | {args.rounds} | {r['samples']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} "
                  f"| {r['enrol']:.2f} | {r['connect']:.2f} | {r['cpu_per_connect_ms']:.2f} | {r['cpu_per_change_ms']:.1f} "
                  f"| {r['idle_cpu'] * 100:.1f} % | {r['idle_rss'] / 1024:.1f} MiB | {r['connected_rss'] / 1024:.1f} MiB "
                  f"| {r['settled_rss'] / 1024:.1f} MiB | {r['peak_rss'] / 1024:.1f} MiB |", flush=True)
    if restarts:
        print()
        print("| store | agents | controller up s | all back s | back p50 ms | back p99 ms | attempts "
              "| controller CPU s to all back | RSS after | push after: p50 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for store, agents, r in restarts:
            print(f"| {store} | {agents} | {r['controller_up']:.2f} | {r['back']:.2f} | {r['back_p50']:.1f} "
                  f"| {r['back_p99']:.1f} | {r['attempts']} | {r['restart_cpu']:.1f} "
                  f"| {r['restart_rss'] / 1024:.1f} MiB | {r['after_p50']:.1f} | {r['after_p99']:.1f} "
                  f"| {r['after_max']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
