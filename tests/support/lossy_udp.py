"""A UDP relay that loses, delays and reorders datagrams, standing in for a bad link (this
kernel has no netem). Each client address gets its own upstream socket, so the server sees
one peer per client. One thread, one seeded generator: a run with the same traffic drops the
same datagrams.

    relay = LossyUdpRelay(upstream_port, loss=0.03, delay=0.030, jitter=0.010)
    ... clients send to relay.port ...
    relay.close()

As a program (for benchmarks run by hand):
    python3 tests/support/lossy_udp.py --listen 9000 --upstream 9001 --loss 0.02 --delay 0.03
"""

import argparse
import heapq
import itertools
import random
import selectors
import socket
import threading
import time

MAX_DATAGRAM = 65535


class LossyUdpRelay:
    def __init__(self, upstream_port: int, loss: float = 0.0, delay: float = 0.0, jitter: float = 0.0,
                 seed: int = 1, host: str = "127.0.0.1", listen_port: int = 0):
        """`loss`: probability of dropping each datagram, each way; `delay`: seconds added to
        each; `jitter`: up to this many seconds more, drawn per datagram, which reorders them."""
        self.upstream = (host, upstream_port)
        self.loss, self.delay, self.jitter = loss, delay, jitter
        self.random = random.Random(seed)
        self.forwarded = 0
        self.dropped = 0
        self._listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._listen.bind((host, listen_port))
        self._listen.setblocking(False)
        self._set_buffers(self._listen)
        self.port = self._listen.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listen, selectors.EVENT_READ, None)
        self._upstream_of = {}  # client address -> socket towards the upstream
        self._pending = []  # heap of (due, order, socket, datagram, destination)
        self._order = itertools.count()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _set_buffers(sock):
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, 4 << 20)

    def _schedule(self, sock, datagram, destination):
        if self.loss > 0 and self.random.random() < self.loss:
            self.dropped += 1
            return
        due = time.monotonic() + self.delay + (self.random.uniform(0, self.jitter) if self.jitter > 0 else 0)
        heapq.heappush(self._pending, (due, next(self._order), sock, datagram, destination))

    def _upstream_socket(self, client):
        sock = self._upstream_of.get(client)
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((self.upstream[0], 0))
            sock.setblocking(False)
            self._set_buffers(sock)
            self._upstream_of[client] = sock
            self._selector.register(sock, selectors.EVENT_READ, client)
        return sock

    def _drain(self, sock, client):
        for _ in range(256):
            try:
                datagram, source = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if client is None:
                self._schedule(self._upstream_socket(source), datagram, self.upstream)
            else:
                self._schedule(self._listen, datagram, client)

    def _send_due(self):
        now = time.monotonic()
        while self._pending and self._pending[0][0] <= now:
            _, _, sock, datagram, destination = heapq.heappop(self._pending)
            try:
                sock.sendto(datagram, destination)
                self.forwarded += 1
            except OSError:
                self.dropped += 1

    def _run(self):
        while not self._stopping.is_set():
            timeout = 0.05
            if self._pending:
                timeout = max(0.0, min(timeout, self._pending[0][0] - time.monotonic()))
            for key, _ in self._selector.select(timeout):
                self._drain(key.fileobj, key.data)
            self._send_due()

    def close(self):
        self._stopping.set()
        self._thread.join(timeout=5)
        for sock in [self._listen, *self._upstream_of.values()]:
            sock.close()
        self._selector.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--upstream", type=int, required=True)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--jitter", type=float, default=0.0)
    args = parser.parse_args()
    relay = LossyUdpRelay(args.upstream, args.loss, args.delay, args.jitter, listen_port=args.listen)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        relay.close()


if __name__ == "__main__":
    main()
