"""Helpers shared by the loopback tests of the server (tests/runtime/test_server_*.py).

Raw sockets, to send what a well-behaved client never would and read exactly what the
server answers: ``raw_connect`` opens a plain TCP connection, ``raw_handshake`` completes
the opening handshake by hand, ``read_until_eof`` reads an answer (``rawws.read_head``, its head),
``FrameReader`` reads the server's (unmasked) frames and ``close_code`` a close frame's
code; ``assert_threads_end`` waits (bounded) for threads to exit. Every call is bounded by
:data:`timing.TIMEOUT`.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import threading
from collections.abc import Callable

from rawws import read_head
from timing import TIMEOUT

import syncws

Uri = Callable[..., str]


def raw_connect(server: syncws.Server) -> socket.socket:
    """Open a plain TCP connection to ``server``, with a bounded timeout for every call."""
    sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def read_until_eof(sock: socket.socket) -> bytes:
    """Read everything the server sends until it closes the connection."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def raw_handshake(server: syncws.Server, path: str = "/") -> tuple[socket.socket, bytes]:
    """Complete a WebSocket handshake by hand; return the socket and any bytes read past it."""
    sock = raw_connect(server)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head, rest = read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock, rest


class FrameReader:
    """Reads unmasked frames (as a server sends them) from a raw socket."""

    def __init__(self, sock: socket.socket, buffered: bytes = b"") -> None:
        self.sock = sock
        self.buffer = buffered

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed in the middle of a frame"
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def frame(self) -> tuple[int, bytes]:
        """Return the next frame's opcode and payload."""
        b0, b1 = self._read(2)
        assert not b1 & 0x80, "a server must not mask its frames"
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read(8))
        return b0 & 0x0F, self._read(length)


def close_code(payload: bytes) -> int:
    """The code in a close frame's payload."""
    code: int = struct.unpack("!H", payload[:2])[0]
    return code


def assert_threads_end(threads: list[threading.Thread]) -> None:
    """The threads exit, within TIMEOUT."""
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), f"{thread.name} still runs"
