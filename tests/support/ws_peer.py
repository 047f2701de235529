"""An independent WebSocket peer for interop tests, on Debian's python3-websockets.

Run with the system interpreter (/usr/bin/python3), which has the package:
  ws_peer.py echo-server            serves /ws on a kernel-chosen port, echoes every message;
                                    prints the port on its first line
  ws_peer.py client URL SIZE        sends SIZE random bytes as binary messages of 16 KiB,
                                    reads the echo back as a byte stream, prints
                                    "<sha256 sent> <sha256 received>"
"""

import asyncio
import hashlib
import os
import sys

import websockets


async def echo(connection, path=None):
    async for message in connection:
        await connection.send(message)


async def serve():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(port, flush=True)
        await asyncio.Future()


async def client(url: str, size: int):
    blob = os.urandom(size)
    received = bytearray()
    async with websockets.connect(url, max_size=None) as connection:
        async def send():
            for offset in range(0, size, 16384):
                await connection.send(blob[offset:offset + 16384])

        sender = asyncio.create_task(send())
        while len(received) < size:
            message = await asyncio.wait_for(connection.recv(), timeout=10)
            received += message if isinstance(message, bytes) else message.encode()
        await sender
    print(hashlib.sha256(blob).hexdigest(), hashlib.sha256(bytes(received)).hexdigest())


if __name__ == "__main__":
    if sys.argv[1] == "echo-server":
        asyncio.run(serve())
    else:
        asyncio.run(client(sys.argv[2], int(sys.argv[3])))
