#!/usr/bin/env python3
"""Tunnels over WebSocket + TLS: strait-agent's relay+wss and relay+mwss against v2ray's
websocket transport (VLESS over ws + TLS, no inner encryption, as relay has none), side by
side in one process tree on loopback, same certificate.

  iperf3 client -> client end (plain in) -> wss tunnel -> server end -> iperf3 server

strait: `-L tcp://:C/target -F relay+wss://:S` with `-L relay+wss://:S` (and mwss: one smux
session carries every stream); v2ray: dokodemo-door inbound + VLESS/ws/tls outbound, and a
VLESS/ws/tls inbound + freedom outbound. Prints Gbit/s for 1 and 16 streams and the ratios.

Usage: python3 bench/ws_tunnel.py [--agent build/release/agent/strait-agent] [--seconds 3] [--rounds 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import uuid

from benchlib import ProcessGroup, free_port, wait_port, require_tools
from tcp_forward import iperf_when_free


class Peers(ProcessGroup):
    def __init__(self, agent):
        super().__init__("strait-bench-ws-")
        self.agent = agent
        self.cert = os.path.join(self.tmp, "cert.pem")
        self.key = os.path.join(self.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
        self.id = str(uuid.uuid4())

    def strait(self, channel, server, client, target):
        config = self.write(f"strait-{server}.yaml", "log: {level: warn}\n")
        self.start([self.agent, "-C", config, "-L",
                    f"relay+{channel}://127.0.0.1:{server}?certFile={self.cert}&keyFile={self.key}"], server)
        self.start([self.agent, "-C", config, "-L", f"tcp://127.0.0.1:{client}/127.0.0.1:{target}",
                    "-F", f"relay+{channel}://127.0.0.1:{server}"], client)

    def v2ray(self, server, client, target):
        stream = {"network": "ws", "security": "tls", "wsSettings": {"path": "/ws"}}
        server_config = {
            "log": {"loglevel": "warning"},
            "inbounds": [{"listen": "127.0.0.1", "port": server, "protocol": "vless",
                          "settings": {"clients": [{"id": self.id}], "decryption": "none"},
                          "streamSettings": {**stream, "tlsSettings": {"certificates": [
                              {"certificateFile": self.cert, "keyFile": self.key}]}}}],
            "outbounds": [{"protocol": "freedom"}]}
        client_config = {
            "log": {"loglevel": "warning"},
            "inbounds": [{"listen": "127.0.0.1", "port": client, "protocol": "dokodemo-door",
                          "settings": {"address": "127.0.0.1", "port": target, "network": "tcp"}}],
            "outbounds": [{"protocol": "vless",
                           "settings": {"vnext": [{"address": "127.0.0.1", "port": server,
                                                   "users": [{"id": self.id, "encryption": "none"}]}]},
                           "streamSettings": {**stream, "tlsSettings": {"serverName": "localhost",
                                                                        "allowInsecure": True}}}]}
        for name, config, port in (("server", server_config, server), ("client", client_config, client)):
            path = self.write(f"v2ray-{name}-{port}.json", json.dumps(config))
            self.start(["v2ray", "-config", path], port)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", default="build/release/agent/strait-agent")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require_tools("iperf3", "v2ray", "openssl")
    peers = Peers(os.path.abspath(args.agent))
    target = free_port()
    iperf_server = subprocess.Popen(["iperf3", "-s", "-p", str(target)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    peers.procs.append(iperf_server)
    try:
        wait_port(target, iperf_server)
        fronts = {}
        for name in ("relay+wss", "relay+mwss", "v2ray"):
            server, client = free_port(), free_port()
            if name == "v2ray":
                peers.v2ray(server, client, target)
            else:
                peers.strait(name.split("+")[1], server, client, target)
            fronts[name] = client
        print(f"# tunnel over WebSocket + TLS, iperf3 {args.seconds}s per run, median of {args.rounds} interleaved "
              f"rounds, Gbit/s")
        for streams in (1, 16):
            samples = {name: [] for name in fronts}
            for _ in range(args.rounds):
                for name, port in fronts.items():
                    samples[name].append(iperf_when_free(port, streams, args.seconds))
            results = {name: statistics.median(values) for name, values in samples.items()}
            print(f"streams={streams:<3} " + "  ".join(f"{k}={v:.2f}" for k, v in results.items()))
            print(f"streams={streams:<3} relay+wss/v2ray={results['relay+wss'] / results['v2ray']:.2f}  "
                  f"relay+mwss/v2ray={results['relay+mwss'] / results['v2ray']:.2f}")
    finally:
        peers.stop()


if __name__ == "__main__":
    main()
