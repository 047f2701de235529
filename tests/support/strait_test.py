"""Helpers for Strait's integration tests (stdlib only).

Everything here runs on loopback with ports chosen by the kernel, waits on readiness (a TCP
connect that succeeds, a UDP reply, a log line) with a deadline, and is torn down by the
test's cleanups. Use `StraitTestCase` as the base class: its `start_agent`, `start_process`
and `*_server` methods register the cleanup for you.

The agent binary is $STRAIT_AGENT, default build/dev/agent/strait-agent relative to the
repository root (a relative $STRAIT_AGENT is taken relative to the repository root too).
"""

import collections
import hashlib
import http.server
import os
import random
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 10.0  # seconds a started program gets to accept connections
IO_TIMEOUT = 10.0  # seconds any single socket operation of a test may block
RUN_TIMEOUT = 20.0  # seconds any helper program (curl, socat, ...) may run


def agent_path() -> Path:
    configured = os.environ.get("STRAIT_AGENT", "build/dev/agent/strait-agent")
    path = Path(configured)
    return path if path.is_absolute() else REPO_ROOT / path


def agent_available() -> bool:
    path = agent_path()
    return path.is_file() and os.access(path, os.X_OK)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_blob(size: int = 1 << 20) -> bytes:
    return os.urandom(size)


# --- ports -----------------------------------------------------------------------------

def _ports_below_ephemeral_range() -> range:
    """Ports below the kernel's ephemeral range: every outgoing connection of any process on
    the machine takes its local port from that range, so a port handed out inside it can be
    taken by some connection before the caller binds it (an etcd member of a test failed to
    start that way, with tests running side by side)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(max(1024, low - 12000), low) if low > 2024 else range(0)


_PORT_RANGE = _ports_below_ephemeral_range()
# Ports this process handed out lately: a test often takes several before binding any.
_RECENT_PORTS = collections.deque(maxlen=2000)


def free_port(kind: str = "tcp", host: str = "127.0.0.1") -> int:
    """A port nothing is bound to for `kind` ("tcp" or "udp"), released again.

    Picked at random below the ephemeral range, so that neither outgoing connections nor the
    other tests running side by side (each picking at random) are likely to take it before
    the caller binds it; the kernel's choice if that range is empty.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock_type = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    for _ in range(100 if _PORT_RANGE else 0):
        port = random.choice(_PORT_RANGE)
        if port in _RECENT_PORTS:
            continue
        with socket.socket(family, sock_type) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _RECENT_PORTS.append(port)
        return port
    with socket.socket(family, sock_type) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def closed_port(host: str = "127.0.0.1") -> int:
    """A TCP port on which nothing listens (connecting to it is refused)."""
    return free_port("tcp", host)


def wait_tcp(port: int, host: str = "127.0.0.1", timeout: float = READY_TIMEOUT, alive=None) -> None:
    """Polls a TCP connect until it succeeds. `alive()` returning False stops early."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"process exited before {host}:{port} accepted connections")
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as error:
            last_error = error
            time.sleep(0.02)
    raise TimeoutError(f"{host}:{port} did not accept a connection within {timeout}s: {last_error}")


def wait_udp_echo(port: int, host: str = "127.0.0.1", timeout: float = READY_TIMEOUT, alive=None) -> None:
    """Polls a UDP service that echoes (directly or through a forward) until one probe returns."""
    deadline = time.monotonic() + timeout
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        while time.monotonic() < deadline:
            if alive is not None and not alive():
                raise RuntimeError(f"process exited before udp {host}:{port} answered")
            try:
                sock.sendto(b"probe", (host, port))
                data, _ = sock.recvfrom(65536)
                if data == b"probe":
                    return
            except OSError:  # timeout, or ICMP port unreachable while nothing is bound yet
                pass
    raise TimeoutError(f"udp {host}:{port} did not echo a probe within {timeout}s")


def wait_until(predicate, timeout: float = READY_TIMEOUT, interval: float = 0.02, what: str = "condition"):
    """Polls `predicate()` until it returns a true value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout}s")
        time.sleep(interval)


def recv_all(sock: socket.socket, limit: int = 64 << 20) -> bytes:
    """Reads until EOF (or a reset after some data); the socket's timeout bounds each read."""
    chunks = []
    total = 0
    while total < limit:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            if chunks:
                break
            raise
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """Reads exactly `size` bytes (less only if the peer ends the stream first)."""
    chunks, total = [], 0
    while total < size:
        chunk = sock.recv(size - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def tcp_roundtrip(port: int, payload: bytes, host: str = "127.0.0.1", timeout: float = IO_TIMEOUT) -> bytes:
    """Sends `payload` (writer thread), half-closes, returns everything read until EOF."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        errors = []

        def writer():
            try:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
            except OSError as error:
                errors.append(error)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        received = recv_all(sock)
        thread.join(timeout)
        if errors:
            raise errors[0]
        return received


def tcp_echo_exact(port: int, payload: bytes, host: str = "127.0.0.1", timeout: float = IO_TIMEOUT) -> bytes:
    """Sends `payload` (writer thread) and reads until as many bytes came back, without a
    half-close: for paths through peers that end the whole connection on a client's EOF."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        errors = []

        def writer():
            try:
                sock.sendall(payload)
            except OSError as error:
                errors.append(error)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        received = recv_exact(sock, len(payload))
        thread.join(timeout)
        if errors:
            raise errors[0]
        return received


def run(argv, timeout: float = RUN_TIMEOUT, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run with a timeout always set and output captured as bytes."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([str(a) for a in argv], timeout=timeout, **kwargs)


class ConnectionLoop:
    """`clients` threads that each connect to `port`, echo a short message and close, over
    and over until stop(); counts successes and keeps the first failures. For tests that
    change an agent (reloads, takeovers) under load and count what failed."""

    def __init__(self, port: int, clients: int = 16, host: str = "127.0.0.1"):
        self.port, self.host = port, host
        self.ok = 0
        self.failures = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]
        for thread in self._threads:
            thread.start()

    def _run(self, index: int) -> None:
        count = 0
        while not self._stop.is_set():
            payload = f"client {index} message {count}".encode()
            count += 1
            try:
                with socket.create_connection((self.host, self.port), timeout=IO_TIMEOUT) as sock:
                    sock.sendall(payload)
                    got = recv_exact(sock, len(payload))
                if got != payload:
                    raise AssertionError(f"echo returned {got!r} for {payload!r}")
                with self._lock:
                    self.ok += 1
            except (OSError, AssertionError) as error:
                with self._lock:
                    self.failures.append(f"{type(error).__name__}: {error}")

    def wait_for(self, successes: int, timeout: float = READY_TIMEOUT) -> None:
        start = self.ok
        wait_until(lambda: self.ok >= start + successes, timeout, what=f"{successes} more echoes")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(IO_TIMEOUT * 2)


class LongTransfer:
    """Sends `size` random bytes through `port` to a sink server (which answers with the
    SHA-256 of what it got), paced over about `seconds`, in a thread."""

    def __init__(self, port: int, size: int, seconds: float, host: str = "127.0.0.1"):
        self.blob = random_blob(size)
        self.digest, self.error = None, None
        self._thread = threading.Thread(target=self._run, args=(port, host, seconds), daemon=True)
        self._thread.start()

    def _run(self, port, host, seconds):
        try:
            with socket.create_connection((host, port), timeout=IO_TIMEOUT * 3) as sock:
                chunk = 64 * 1024
                pieces = max(1, len(self.blob) // chunk)
                for offset in range(0, len(self.blob), chunk):
                    sock.sendall(self.blob[offset:offset + chunk])
                    time.sleep(seconds / pieces)
                sock.shutdown(socket.SHUT_WR)
                self.digest = recv_all(sock).strip().decode()
        except OSError as error:
            self.error = error

    def result(self, timeout: float = 120) -> str:
        self._thread.join(timeout)
        return repr(self.error) if self.error else self.digest


# --- processes -------------------------------------------------------------------------

class Process:
    """A program started for a test; stdout and stderr go to one log file."""

    def __init__(self, argv, log_dir: Path, name: str, env=None, cwd=None, preexec_fn=None, pass_fds=()):
        self.argv = [str(a) for a in argv]
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self._log_file = open(self.log_path, "wb")
        # A new session: the program gets no terminal signals meant for the test runner.
        try:
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                          stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True,
                                          preexec_fn=preexec_fn, pass_fds=pass_fds)
        except OSError:
            self._log_file.close()
            raise

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def describe(self) -> str:
        state = "running" if self.alive() else f"exited with {self.popen.returncode}"
        return f"{self.name} ({' '.join(self.argv)}) {state}; log:\n{self.log()}"

    def wait_tcp(self, port: int, host: str = "127.0.0.1", timeout: float = READY_TIMEOUT) -> "Process":
        try:
            wait_tcp(port, host, timeout, alive=self.alive)
        except (TimeoutError, RuntimeError) as error:
            raise AssertionError(f"{error}\n{self.describe()}") from None
        return self

    def wait_udp_echo(self, port: int, host: str = "127.0.0.1", timeout: float = READY_TIMEOUT) -> "Process":
        try:
            wait_udp_echo(port, host, timeout, alive=self.alive)
        except (TimeoutError, RuntimeError) as error:
            raise AssertionError(f"{error}\n{self.describe()}") from None
        return self

    def wait_log(self, pattern: str, timeout: float = READY_TIMEOUT) -> "re.Match":
        """Waits for a log line matching the regular expression `pattern`."""
        compiled = re.compile(pattern, re.MULTILINE)
        try:
            return wait_until(lambda: compiled.search(self.log()), timeout, what=f"log line /{pattern}/")
        except TimeoutError as error:
            raise AssertionError(f"{error}\n{self.describe()}") from None

    def send_signal(self, signum: int) -> None:
        if self.alive():
            self.popen.send_signal(signum)

    def wait_exit(self, timeout: float) -> int:
        """The exit code; fails the test (with the log) when the program runs past `timeout`."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout}s\n{self.describe()}") from None

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; safe to call twice."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log_file.close()


# --- in-process servers ----------------------------------------------------------------

class _ThreadedTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    # socketserver's default listen backlog is 5: a burst of connections would wait for SYN
    # retransmits (1 s, 3 s, 7 s...) in the test's own server, not in the agent.
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        pass  # a peer that resets is part of several tests; the test checks what matters


class _ServerThread:
    """Runs a socketserver in a daemon thread; `port` is the kernel-chosen port."""

    def __init__(self, server):
        self.server = server
        self.port = server.server_address[1]
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _family(host: str):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(IO_TIMEOUT * 3)
        self.server.connections.append(self.client_address)
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class _SinkHandler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(IO_TIMEOUT * 3)
        digest = hashlib.sha256()
        total = 0
        try:
            while True:
                data = sock.recv(self.server.read_size)
                if not data:
                    break
                digest.update(data)
                total += len(data)
                if self.server.read_delay:
                    time.sleep(self.server.read_delay)
            sock.sendall(digest.hexdigest().encode() + b"\n")
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.server.received.append(total)


def tcp_echo_server(host: str = "127.0.0.1") -> _ServerThread:
    """Echoes every byte back; half-closes after the client's EOF."""
    server_class = type("_EchoServer", (_ThreadedTCPServer,), {"address_family": _family(host)})
    server = server_class((host, 0), _EchoHandler)
    server.connections = []
    return _ServerThread(server)


def tcp_sink_server(host: str = "127.0.0.1", read_delay: float = 0.0, read_size: int = 65536) -> _ServerThread:
    """Reads until EOF, then answers the hex SHA-256 of what it read plus "\\n".

    `read_delay` seconds are slept after every read of up to `read_size` bytes: a slow sink.
    """
    server_class = type("_SinkServer", (_ThreadedTCPServer,), {"address_family": _family(host)})
    server = server_class((host, 0), _SinkHandler)
    server.read_delay = read_delay
    server.read_size = read_size
    server.received = []
    return _ServerThread(server)


class UdpEchoServer:
    """Sends every datagram back to its sender."""

    def __init__(self, host: str = "127.0.0.1"):
        self.sock = socket.socket(_family(host), socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.peers = set()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65536)
            except OSError:
                continue
            self.peers.add(peer)
            try:
                self.sock.sendto(data, peer)
            except OSError:
                pass

    def close(self):
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


class _OriginHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection ends its thread eventually

    def log_message(self, *args):  # keep the test output clean
        pass

    def _record(self):
        self.server.requests.append({"method": self.command, "path": self.path, "client": self.client_address,
                                     "headers": dict(self.headers.items())})

    def _reply(self, status, body, content_type="application/octet-stream"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self._record()
        body = self.server.routes.get(self.path.split("?")[0])
        if body is None:
            self._reply(404, b"not found\n", "text/plain")
        else:
            self._reply(200, body)

    do_HEAD = do_GET

    def do_POST(self):
        self._record()
        length = int(self.headers.get("Content-Length", "0"))
        digest = hashlib.sha256()
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
        self._reply(200, f"{digest.hexdigest()} {length - remaining}\n".encode(), "text/plain")


class _OriginServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        pass  # clients (and the proxy) may reset; the test checks what it received

    def shutdown_request(self, request):
        try:
            peer = request.getpeername()
        except OSError:
            peer = None
        super().shutdown_request(request)
        self.closed.append(peer)  # recorded once the socket is really closed


def http_origin(routes: dict, host: str = "127.0.0.1", idle_timeout: float = 30) -> _ServerThread:
    """A tiny HTTP/1.1 origin: GET/HEAD of a path in `routes` returns those bytes with a
    Content-Length; POST returns "<sha256 hex> <length>\\n" of the request body. Every request
    is recorded in `.server.requests` (method, path, client address, headers), every ended
    connection's client address in `.server.closed`. A connection idle for `idle_timeout`
    seconds is closed, as real servers end idle keep-alive connections."""
    server_class = type("_Origin", (_OriginServer,), {"address_family": _family(host)})
    handler_class = type("_Handler", (_OriginHandler,), {"timeout": idle_timeout})
    server = server_class((host, 0), handler_class)
    server.routes = dict(routes)
    server.requests = []
    server.closed = []
    return _ServerThread(server)


# --- test case base --------------------------------------------------------------------

class StraitTestCase(unittest.TestCase):
    """Base class: temp dir per test, processes and servers stopped in cleanup."""

    def setUp(self):
        super().setUp()
        # The agent is what is under test: without it the tests fail rather than skip.
        if not agent_available():
            self.fail(f"no strait-agent binary at {agent_path()}: build it or set STRAIT_AGENT")
        self._tmp = tempfile.TemporaryDirectory(prefix="strait-test-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = Path(self._tmp.name)
        self._names = {}

    def _unique(self, name: str) -> str:
        count = self._names.get(name, 0)
        self._names[name] = count + 1
        return name if count == 0 else f"{name}-{count}"

    def start_process(self, argv, name: str = "proc", wait_tcp: int = None, env=None, preexec_fn=None,
                      pass_fds=()) -> Process:
        """`preexec_fn` runs in the child before exec (limits, another user); `pass_fds` stay open in it."""
        process = Process(argv, self.tmp, self._unique(name), env=env, preexec_fn=preexec_fn, pass_fds=pass_fds)
        self.addCleanup(process.stop)
        if os.environ.get("STRAIT_TEST_SHOW_LOGS"):
            self.addCleanup(lambda: print(f"\n--- {process.describe()}"))
        if wait_tcp is not None:
            process.wait_tcp(wait_tcp)
        return process

    def start_agent(self, *args, wait_tcp: int = None, name: str = "agent", preexec_fn=None) -> Process:
        """Starts strait-agent with `args`; waits for `wait_tcp` to accept when given."""
        return self.start_process([agent_path(), *args], name=name, wait_tcp=wait_tcp, preexec_fn=preexec_fn)

    def echo_server(self, host: str = "127.0.0.1") -> _ServerThread:
        server = tcp_echo_server(host)
        self.addCleanup(server.close)
        return server

    def sink_server(self, **kwargs) -> _ServerThread:
        server = tcp_sink_server(**kwargs)
        self.addCleanup(server.close)
        return server

    def udp_echo_server(self, host: str = "127.0.0.1") -> UdpEchoServer:
        server = UdpEchoServer(host)
        self.addCleanup(server.close)
        return server

    def origin(self, routes: dict, host: str = "127.0.0.1", idle_timeout: float = 30) -> _ServerThread:
        server = http_origin(routes, host, idle_timeout)
        self.addCleanup(server.close)
        return server

    def assertBlobEqual(self, expected: bytes, actual: bytes, what: str = "bytes"):
        """Compares by length and SHA-256 so a mismatch does not print megabytes."""
        self.assertEqual((len(actual), sha256(actual)), (len(expected), sha256(expected)),
                         f"{what} differ from what was sent")


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def agent_has_sanitizers() -> bool:
    """True for an ASan/TSan build, whose allocator makes memory figures meaningless."""
    linked = subprocess.run(["ldd", str(agent_path())], capture_output=True, text=True).stdout
    return "libasan" in linked or "libtsan" in linked


def agent_has_thread_sanitizer() -> bool:
    linked = subprocess.run(["ldd", str(agent_path())], capture_output=True, text=True).stdout
    return "libtsan" in linked


def have(program: str) -> bool:
    return shutil.which(program) is not None
