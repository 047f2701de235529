"""Helpers shared by the bench/*.py scripts: ports, readiness, memory."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, deadline=10.0):
    """Polls a TCP connect until it succeeds; fails early when `proc` exits."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"port {port} not ready")


def _summed_kib(pid, proc_file, field):
    """A KiB field of /proc/PID/<proc_file> summed over a process and its children."""
    total = 0
    pids = [pid]
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(c) for c in children]
    except FileNotFoundError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/{proc_file}") as f:
                for line in f:
                    if line.startswith(field):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def rss_kib(pid):
    """Resident memory of a process and its children (haproxy and socat fork workers)."""
    return _summed_kib(pid, "status", "VmRSS:")


def pss_kib(pid):
    """Proportional set size of a process and its children: shared pages are charged once
    across them, so a process per session is not charged its libraries N times."""
    return _summed_kib(pid, "smaps_rollup", "Pss:")


class ProcessGroup:
    """Programs started for one benchmark, with a scratch directory; stop() ends them all."""

    def __init__(self, prefix):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.procs = []

    def start(self, argv, port):
        """Starts `argv` quietly and waits until it accepts on `port`."""
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        wait_port(port, proc)
        return proc

    def write(self, name, text):
        """A file in the scratch directory; returns its path."""
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def stop(self):
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def cpu_seconds(*pids):
    """utime + stime of processes (all their threads), from /proc/PID/stat."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return total / os.sysconf("SC_CLK_TCK")


def require_tools(*tools):
    """Exits with a hint when a peer program the bench runs is not installed."""
    for tool in tools:
        if not shutil.which(tool):
            sys.exit(f"bench needs {tool} (bash scripts/setup.sh installs it)")
