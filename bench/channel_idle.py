#!/usr/bin/env python3
"""User-space memory per idle connection over each encrypted or multiplexed channel, against
haproxy's TLS forward, in two set-ups:

  both ends:   N plain connections -> client end -> channel -> server end -> holder
  server end:  N channel clients (TLS and/or the WebSocket upgrade, in Python) -> server end -> holder

strait: client end `-L tcp://:C -F forward+<channel>://:S`, server end `-L <channel>://:S/holder`;
haproxy: client end `server ... ssl`, server end `bind ... ssl crt`. Each end's RSS growth
while N connections are held open, divided by N (after a settle time, so every connection
reached the holder). mtls/mwss carry all N as streams of one smux session per worker.

Usage: python3 bench/channel_idle.py [--agent build/release/agent/strait-agent] [--idle 2000]
"""
import argparse
import asyncio
import base64
import os
import resource
import subprocess
import sys
import time

from benchlib import free_port, require_tools, rss_kib, wait_port
from tcp_forward import HOLDER, hold_idle, idle_memory
from tls_forward import Peers, hold_tls

CHANNELS = ("tls", "ws", "wss", "mtls", "mwss")
SECURE = ("tls", "wss", "mtls", "mwss")


def start_strait(peers, channel, client, server, target):
    options = f"?certFile={peers.cert}&keyFile={peers.key}" if channel in SECURE else ""
    server_proc = peers.strait("-L", f"{channel}://127.0.0.1:{server}/127.0.0.1:{target}{options}", port=server)
    client_proc = peers.strait("-L", f"tcp://127.0.0.1:{client}", "-F", f"forward+{channel}://127.0.0.1:{server}",
                               port=client)
    return client_proc, server_proc


def start_haproxy(peers, client, server, target):
    server_proc = peers.haproxy_server(server, target)
    client_proc = peers.haproxy_client(client, server)
    return client_proc, server_proc


def idle_per_connection(client_proc, server_proc, port, count, settle):
    """RSS growth of both ends per connection while `count` connections are held open."""
    before = (rss_kib(client_proc.pid), rss_kib(server_proc.pid))
    loop = asyncio.new_event_loop()
    conns = loop.run_until_complete(hold_idle(port, count))
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        time.sleep(0.5)
    after = (rss_kib(client_proc.pid), rss_kib(server_proc.pid))
    for _, writer in conns:
        writer.close()
    loop.run_until_complete(asyncio.sleep(0.2))
    loop.close()
    return tuple((a - b) * 1024 / count for a, b in zip(after, before))


async def hold_ws(port, count, tls):
    """`count` WebSocket clients, each past its upgrade, holding the connection open."""
    context = None
    if tls:
        import ssl
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    conns = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"upgrade refused: {head[:80]!r}")
        conns.append((reader, writer))
    return conns


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", default="build/release/agent/strait-agent")
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--settle", type=int, default=3)
    args = parser.parse_args()
    require_tools("haproxy", "openssl")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    peers = Peers(os.path.abspath(args.agent))
    try:
        hold_port = free_port()
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(hold_port)], stderr=subprocess.DEVNULL)
        peers.procs.append(holder)
        wait_port(hold_port, holder)
        print(f"# bytes per idle connection ({args.idle} held, RSS delta / count), client end and server end")
        runs = [("haproxy tls", lambda c, s: start_haproxy(peers, c, s, hold_port))]
        runs += [(f"strait {channel}", lambda c, s, ch=channel: start_strait(peers, ch, c, s, hold_port))
                 for channel in CHANNELS]
        for name, start in runs:
            client, server = free_port(), free_port()
            client_proc, server_proc = start(client, server)
            client_bytes, server_bytes = idle_per_connection(client_proc, server_proc, client, args.idle, args.settle)
            print(f"{name:<13} client={client_bytes:>7.0f}  server={server_bytes:>7.0f}")
            for proc in (client_proc, server_proc):
                proc.kill()
                proc.wait()

        print(f"# bytes per idle connection at the server end, {args.idle} clients in Python")
        direct = [("haproxy tls", lambda p: peers.haproxy_server(p, hold_port), hold_tls),
                  ("strait tls", lambda p: start_strait(peers, "tls", free_port(), p, hold_port)[1], hold_tls),
                  ("strait ws", lambda p: start_strait(peers, "ws", free_port(), p, hold_port)[1],
                   lambda port, n: hold_ws(port, n, False)),
                  ("strait wss", lambda p: start_strait(peers, "wss", free_port(), p, hold_port)[1],
                   lambda port, n: hold_ws(port, n, True))]
        for name, start, hold in direct:
            port = free_port()
            proc = start(port)
            print(f"{name:<13} server={idle_memory(proc, port, args.idle, args.settle, hold):>7.0f}")
    finally:
        peers.stop()


if __name__ == "__main__":
    main()
