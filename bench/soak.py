#!/usr/bin/env python3
"""Soak: strait-agent under mixed load for N minutes, its memory and descriptors sampled.

One agent serves four services on loopback: a TCP forward, an HTTP proxy, a SOCKS5 proxy
and a UDP forward. A load generator (asyncio, this process) keeps --connections long-lived
connections open across the three TCP services, each sending a short message every few
seconds and checking the echo; plus short-lived connections opened and closed all the
time, plain HTTP requests through the proxy, and UDP clients. Targets (echo, HTTP origin,
UDP echo) run in a child process. Every 10 s it prints the agent's RSS and open
descriptors, what passed and what failed; at the end, the RSS growth from the first sample
after warm-up to the last.

Exit status 1 when any exchange failed, or when --max-rss-growth is given and exceeded.

Usage: python3 bench/soak.py [--minutes 30] [--connections 8000] [--agent build/release/agent/strait-agent]
       [--max-rss-growth 5]
"""
import argparse
import asyncio
import collections
import os
import random
import resource
import socket
import subprocess
import sys
import time

from benchlib import ProcessGroup, free_port, rss_kib, wait_port

SAMPLE_SECONDS = 10
MESSAGE = b"soak message 0123456789abcdef\n"

TARGETS_PROGRAM = r"""
import asyncio, sys
async def echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
async def origin(reader, writer):
    body = b"hello from the origin\n"
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                break
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError):
        pass
    finally:
        writer.close()
class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport
    def datagram_received(self, data, address):
        self.transport.sendto(data, address)
async def main():
    loop = asyncio.get_running_loop()
    echo_server = await asyncio.start_server(echo, "127.0.0.1", 0, backlog=4096)
    origin_server = await asyncio.start_server(origin, "127.0.0.1", 0, backlog=4096)
    udp, _ = await loop.create_datagram_endpoint(UdpEcho, local_addr=("127.0.0.1", 0))
    print(echo_server.sockets[0].getsockname()[1], origin_server.sockets[0].getsockname()[1],
          udp.get_extra_info("sockname")[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


class Counters:
    def __init__(self):
        self.ok = 0
        self.failed = 0
        self.errors = {}

    def fail(self, what, error):
        self.failed += 1
        key = f"{what}: {type(error).__name__}"
        self.errors[key] = self.errors.get(key, 0) + 1


async def socks5_connect(reader, writer, port):
    writer.write(b"\x05\x01\x00")
    await writer.drain()
    if await reader.readexactly(2) != b"\x05\x00":
        raise ConnectionError("socks5: method refused")
    writer.write(b"\x05\x01\x00\x01\x7f\x00\x00\x01" + port.to_bytes(2, "big"))
    await writer.drain()
    reply = await reader.readexactly(10)
    if reply[1] != 0:
        raise ConnectionError(f"socks5: reply {reply[1]}")


async def http_connect(reader, writer, port):
    writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(f"CONNECT answered {head[:20]!r}")


class Load:
    def __init__(self, ports, counters, deadline):
        self.ports = ports
        self.counters = counters
        self.deadline = deadline
        self.open = 0

    def running(self):
        return time.monotonic() < self.deadline

    async def tunnel(self, kind):
        """Opens a connection of `kind` and keeps it, echoing a message every 1-5 s."""
        while self.running():
            writer = None
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.ports[kind]), timeout=20)
                if kind == "socks5":
                    await asyncio.wait_for(socks5_connect(reader, writer, self.ports["echo"]), timeout=20)
                elif kind == "http":
                    await asyncio.wait_for(http_connect(reader, writer, self.ports["echo"]), timeout=20)
                self.open += 1
                try:
                    while self.running():
                        await asyncio.sleep(random.uniform(1, 5))
                        writer.write(MESSAGE)
                        await writer.drain()
                        if await asyncio.wait_for(reader.readexactly(len(MESSAGE)), timeout=20) != MESSAGE:
                            raise ConnectionError("echo differs")
                        self.counters.ok += 1
                finally:
                    self.open -= 1
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError) as error:
                self.counters.fail(kind, error)
                await asyncio.sleep(1)
            finally:
                if writer is not None:
                    writer.close()

    async def churn(self, rate):
        """Short connections through the TCP forward: connect, one echo, close."""
        async def one():
            writer = None
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.ports["forward"]), timeout=20)
                writer.write(MESSAGE)
                await writer.drain()
                if await asyncio.wait_for(reader.readexactly(len(MESSAGE)), timeout=20) != MESSAGE:
                    raise ConnectionError("echo differs")
                self.counters.ok += 1
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError) as error:
                self.counters.fail("churn", error)
            finally:
                if writer is not None:
                    writer.close()
        tasks = set()
        while self.running():
            task = asyncio.ensure_future(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def http_requests(self, clients):
        """Plain GETs through the HTTP proxy on kept-alive connections."""
        async def client():
            while self.running():
                writer = None
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.ports["http"])
                    for _ in range(20):
                        writer.write(f"GET http://127.0.0.1:{self.ports['origin']}/ HTTP/1.1\r\n"
                                     f"Host: 127.0.0.1:{self.ports['origin']}\r\n\r\n".encode())
                        await writer.drain()
                        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=20)
                        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                        await asyncio.wait_for(reader.readexactly(length), timeout=20)
                        self.counters.ok += 1
                        await asyncio.sleep(random.uniform(0.2, 1))
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
                    self.counters.fail("http", error)
                    await asyncio.sleep(1)
                finally:
                    if writer is not None:
                        writer.close()
        await asyncio.gather(*(client() for _ in range(clients)))

    async def udp_clients(self, clients):
        """Datagrams through the UDP forward, each client on its own port; a lost, late or
        reordered datagram is UDP being UDP, so only an answer that is none of the client's
        recent datagrams counts as a failure."""
        loop = asyncio.get_running_loop()

        class Client(asyncio.DatagramProtocol):
            RECENT = 64  # datagrams an answer may still come for

            def __init__(self, counters):
                self.counters = counters
                self.outstanding = collections.OrderedDict()

            def sent(self, data):
                self.outstanding[data] = True
                while len(self.outstanding) > self.RECENT:
                    self.outstanding.popitem(last=False)

            def datagram_received(self, data, address):
                if self.outstanding.pop(data, None):
                    self.counters.ok += 1
                else:
                    self.counters.fail("udp", ValueError("an answer to no datagram sent"))

        async def client(index):
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: Client(self.counters), remote_addr=("127.0.0.1", self.ports["udp"]))
            try:
                sequence = 0
                while self.running():
                    datagram = f"udp {index} {sequence}".encode()
                    protocol.sent(datagram)
                    transport.sendto(datagram)
                    sequence += 1
                    await asyncio.sleep(random.uniform(0.5, 2))
            finally:
                transport.close()
        await asyncio.gather(*(client(i) for i in range(clients)))


def sample(agent, started, counters, load):
    rss = rss_kib(agent.pid)
    fds = len(os.listdir(f"/proc/{agent.pid}/fd"))
    print(f"t={time.monotonic() - started:6.0f}s  rss={rss / 1024:7.1f} MiB  fds={fds:6d}  open={load.open:5d}  "
          f"ok={counters.ok:9d}  failed={counters.failed}", flush=True)
    return rss


async def run(args, agent, ports):
    counters = Counters()
    started = time.monotonic()
    load = Load(ports, counters, started + args.minutes * 60)
    tunnels = []
    shares = {"forward": 0.6, "socks5": 0.2, "http": 0.2}
    # About 1000 new connections a second.
    for kind, share in shares.items():
        for _ in range(int(args.connections * share)):
            tunnels.append(asyncio.ensure_future(load.tunnel(kind)))
            if len(tunnels) % 1000 == 0:
                await asyncio.sleep(1)
    others = [asyncio.ensure_future(load.churn(args.churn)),
              asyncio.ensure_future(load.http_requests(50)),
              asyncio.ensure_future(load.udp_clients(args.udp_clients))]
    samples = []
    while load.running():
        await asyncio.sleep(min(SAMPLE_SECONDS, max(0.1, load.deadline - time.monotonic())))
        if agent.poll() is not None:
            print(f"the agent exited with {agent.returncode}")
            counters.fail("agent", RuntimeError("exited"))
            break
        samples.append(sample(agent, started, counters, load))
    await asyncio.gather(*tunnels, *others, return_exceptions=True)
    return counters, samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--connections", type=int, default=8000)
    parser.add_argument("--churn", type=int, default=200, help="short connections a second")
    parser.add_argument("--udp-clients", type=int, default=500)
    parser.add_argument("--agent", default="build/release/agent/strait-agent")
    parser.add_argument("--max-rss-growth", type=float, default=None, help="percent; fail beyond it")
    args = parser.parse_args()
    if not os.path.exists(args.agent):
        sys.exit(f"no agent at {args.agent}: build it (cmake --preset release && cmake --build --preset release)")
    needed = args.connections * 2 + 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < needed and os.geteuid() == 0:
        hard = needed  # root may raise the hard limit; the agent and targets inherit it
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < needed:
        sys.exit(f"the descriptor limit {hard} is too low for {args.connections} connections")

    group = ProcessGroup("strait-soak-")
    try:
        targets = subprocess.Popen([sys.executable, "-c", TARGETS_PROGRAM], stdout=subprocess.PIPE, text=True)
        group.procs.append(targets)
        echo_port, origin_port, udp_echo_port = map(int, targets.stdout.readline().split())
        ports = {"echo": echo_port, "origin": origin_port, "forward": free_port(), "http": free_port(),
                 "socks5": free_port(), "udp": free_port()}
        config = group.write("soak.yaml", "log: {level: warn}\n")
        agent = subprocess.Popen(
            [args.agent, "-C", config, "--max-pipes", "512",
             "-L", f"tcp://127.0.0.1:{ports['forward']}/127.0.0.1:{echo_port}",
             "-L", f"http://127.0.0.1:{ports['http']}",
             "-L", f"socks5://127.0.0.1:{ports['socks5']}",
             "-L", f"udp://127.0.0.1:{ports['udp']}/127.0.0.1:{udp_echo_port}?ttl=10s"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(group.tmp, "agent.log"), "w"))
        group.procs.append(agent)
        wait_port(ports["socks5"], agent)
        print(f"soak: {args.minutes} min, {args.connections} connections (60 % forward, 20 % SOCKS5, 20 % HTTP "
              f"CONNECT), {args.churn} short connections/s, 50 HTTP clients, {args.udp_clients} UDP clients",
              flush=True)
        counters, samples = asyncio.run(run(args, agent, ports))
        log = open(os.path.join(group.tmp, "agent.log")).read().splitlines()
        if log:
            print(f"agent log: {len(log)} lines; the last ones:")
            for line in log[-5:]:
                print(f"  {line}")
    finally:
        group.stop()
    print(f"exchanges: {counters.ok} ok, {counters.failed} failed")
    for what, count in sorted(counters.errors.items()):
        print(f"  {what}: {count}")
    status = 0 if counters.failed == 0 else 1
    # Growth is measured after warm-up: from the third sample (20 s in) to the last.
    if len(samples) >= 4:
        base, last = samples[2], samples[-1]
        growth = (last - base) * 100 / base
        print(f"RSS: {base / 1024:.1f} MiB after warm-up, {last / 1024:.1f} MiB at the end: {growth:+.1f} %")
        if args.max_rss_growth is not None and growth > args.max_rss_growth:
            print(f"RSS grew more than {args.max_rss_growth} %")
            status = 1
    sys.exit(status)


if __name__ == "__main__":
    main()
