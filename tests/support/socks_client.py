"""A minimal SOCKS5 client (RFC 1928/1929) for integration tests: raw sockets, no third-party
code, every operation bounded by the socket's timeout."""

import ipaddress
import socket
import struct

import strait_test as st


class SocksError(Exception):
    def __init__(self, message: str, reply: int = None):
        super().__init__(message)
        self.reply = reply


def encode_address(host: str, port: int) -> bytes:
    try:
        ip = ipaddress.ip_address(host)
        kind = 1 if ip.version == 4 else 4
        return bytes([kind]) + ip.packed + struct.pack(">H", port)
    except ValueError:
        name = host.encode()
        return bytes([3, len(name)]) + name + struct.pack(">H", port)


def read_address(read) -> tuple:
    """Reads ATYP ADDR PORT with `read(n)`; returns (host, port)."""
    kind = read(1)[0]
    if kind == 1:
        host = str(ipaddress.IPv4Address(read(4)))
    elif kind == 4:
        host = str(ipaddress.IPv6Address(read(16)))
    elif kind == 3:
        host = read(read(1)[0]).decode()
    else:
        raise SocksError(f"address type {kind}")
    return host, struct.unpack(">H", read(2))[0]


def parse_datagram(data: bytes) -> tuple:
    """A SOCKS5 UDP datagram: returns ((host, port), payload)."""
    offset = 3

    def read(n):
        nonlocal offset
        chunk = data[offset:offset + n]
        offset += n
        return chunk

    address = read_address(read)
    return address, data[offset:]


def datagram(host: str, port: int, payload: bytes, fragment: int = 0) -> bytes:
    return bytes([0, 0, fragment]) + encode_address(host, port) + payload


class Socks5:
    """One SOCKS5 control connection to a proxy on loopback."""

    def __init__(self, port: int, username: str = None, password: str = None, host: str = "127.0.0.1",
                 timeout: float = st.IO_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        try:
            self._negotiate(username, password)
        except BaseException:
            self.sock.close()
            raise

    def _negotiate(self, username, password):
        methods = [0, 2] if username is not None else [0]
        self.sock.sendall(bytes([5, len(methods), *methods]))
        version, method = self._read(2)
        if method == 2:
            if username is None:
                raise SocksError("server wants a password")
            user, pw = username.encode(), password.encode()
            self.sock.sendall(bytes([1, len(user)]) + user + bytes([len(pw)]) + pw)
            _, status = self._read(2)
            if status != 0:
                raise SocksError("authentication refused")
        elif method != 0:
            raise SocksError(f"no acceptable method ({method:#x})")

    def _read(self, n: int) -> bytes:
        data = st.recv_exact(self.sock, n)
        if len(data) != n:
            raise SocksError("connection closed by the proxy")
        return data

    def request(self, command: int, host: str, port: int) -> tuple:
        """Sends a request; returns the bound (host, port) of a success reply."""
        self.sock.sendall(bytes([5, command, 0]) + encode_address(host, port))
        version, reply, _ = self._read(3)
        bound = read_address(self._read)
        if reply != 0:
            raise SocksError(f"reply {reply}", reply)
        return bound

    def connect(self, host: str, port: int) -> socket.socket:
        self.request(1, host, port)
        return self.sock

    def udp_associate(self) -> tuple:
        """Returns the relay (host, port) the proxy named."""
        return self.request(3, "0.0.0.0", 0)

    def close(self):
        self.sock.close()
