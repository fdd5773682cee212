"""Raw-socket WebSocket peers for tests: just enough of RFC 6455 to misbehave on purpose.

A raw client completes the opening handshake and then does only what a test tells it (it
may never answer a ping, never read, ...); a raw server does the same from the other side.
Frames are serialized and parsed here independently of :mod:`syncws.protocol`.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from timing import TIMEOUT

import syncws

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="

REQUEST = (
    b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def accept_key(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` value for ``key``."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def xor(payload: bytes, key: bytes) -> bytes:
    """``payload`` masked with ``key`` (RFC 6455 §5.3), or unmasked: the same operation."""
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload) ^ int.from_bytes(repeated)).to_bytes(n)


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    mask: bool,
    fin: bool = True,
    rsv1: bool = False,
    key: bytes = b"\0\0\0\0",
) -> bytes:
    """Serialize one frame, its length in the shortest form; a client frame is masked with
    ``key``, all zeros by default (payload unchanged)."""
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    m = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    return head + key + xor(payload, key) if mask else head + payload


def close_frame(code: int, reason: str = "", *, mask: bool) -> bytes:
    """Serialize a close frame."""
    return frame(0x8, struct.pack("!H", code) + reason.encode(), mask=mask)


def parse_close(payload: bytes) -> tuple[int, str]:
    """Return the code and reason of a close frame's payload."""
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


class FrameReader:
    """Reads frames, masked or not, from a blocking socket (or from ``buffered`` bytes
    only, when ``sock`` is ``None``)."""

    def __init__(self, sock: socket.socket | None, buffered: bytes = b"") -> None:
        self.sock = sock
        self.buf = bytearray(buffered)

    def _fill(self, n: int) -> bool:
        while len(self.buf) < n:
            if self.sock is None:
                return False
            data = self.sock.recv(65536)
            if not data:
                return False
            self.buf += data
        return True

    def read(self) -> tuple[int, bytes] | None:
        """Return ``(opcode, payload)`` of the next frame, or ``None`` at EOF."""
        item = self.read_frame()
        return None if item is None else (item[0] & 0x0F, item[1])

    def read_frame(self) -> tuple[int, bytes] | None:
        """Return ``(first byte, payload)`` of the next frame (the first byte has FIN, the
        RSV bits and the opcode), or ``None`` at EOF."""
        if not self._fill(2):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        n, pos = b1 & 0x7F, 2
        if n == 126:
            if not self._fill(4):
                return None
            (n,) = struct.unpack("!H", self.buf[2:4])
            pos = 4
        elif n == 127:
            if not self._fill(10):
                return None
            (n,) = struct.unpack("!Q", self.buf[2:10])
            pos = 10
        mask = b""
        if b1 & 0x80:
            if not self._fill(pos + 4):
                return None
            mask = bytes(self.buf[pos : pos + 4])
            pos += 4
        if not self._fill(pos + n):
            return None
        payload = bytes(self.buf[pos : pos + n])
        del self.buf[: pos + n]
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return b0, payload

    def read_until_eof(self) -> list[tuple[int, bytes]]:
        """Read every frame until the peer closes the TCP connection."""
        frames = []
        while (item := self.read()) is not None:
            frames.append(item)
        return frames


def raw_client(
    server: syncws.Server, path: str = "/", rcvbuf: int | None = None, handshake: bool = True
) -> tuple[socket.socket, bytes]:
    """Connect to ``server`` with a plain socket (``rcvbuf`` set before connecting) and,
    if ``handshake``, complete the opening handshake.

    Returns:
        The socket (5 s timeout) and the bytes received after the handshake response.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(TIMEOUT)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(REQUEST % path.encode())
    if not handshake:
        return sock, b""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(4096)
        assert data, "connection closed during the handshake"
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, rest


def read_request(sock: socket.socket) -> tuple[bytes, bytes] | None:
    """Read an HTTP request head; return it and the bytes after it, ``None`` at EOF."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(4096)
        if not data:
            return None
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def switching_protocols(head: bytes) -> bytes:
    """The 101 response to a WebSocket request head."""
    key = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n"
    )


Behaviour = Callable[[socket.socket, bytes], None]


@contextmanager
def raw_server(behaviour: Behaviour, *, handshake: bool = True) -> Iterator[str]:
    """Serve one connection with a plain socket and yield its ``ws://`` URI.

    With ``handshake``, the server answers the opening handshake, then calls
    ``behaviour(sock, rest)`` (``rest``: bytes received after the request). Without it,
    ``behaviour`` gets the socket as accepted. The connection stays open until the block
    ends; then everything is closed and the thread joined.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    done = threading.Event()
    conns: list[socket.socket] = []

    def run() -> None:
        try:
            sock, _ = listener.accept()
        except OSError:
            return
        conns.append(sock)
        sock.settimeout(TIMEOUT)
        try:
            if handshake:
                request = read_request(sock)
                if request is None:
                    return
                head, rest = request
                sock.sendall(switching_protocols(head))
                behaviour(sock, rest)
            else:
                behaviour(sock, b"")
        except OSError:
            pass  # the client went away: the test checks what it saw
        done.wait(2 * TIMEOUT)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        done.set()
        listener.close()
        thread.join(2 * TIMEOUT)
        for sock in conns:
            sock.close()


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read an HTTP head from ``sock``; return it and whatever bytes followed it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed during the HTTP head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def response_head(port: int, request: bytes, timeout: float = TIMEOUT) -> bytes:
    """Send ``request`` to 127.0.0.1:``port`` on a plain socket; return the response's head
    (status line and headers), or what came before the connection ended."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.partition(b"\r\n\r\n")[0]


def wait_for(predicate: Callable[[], Any], timeout: float) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` expires: a bounded wait for a
    state that no event reports."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Tapped:
    """What went through a :func:`tap` relay: the bytes each way, as they went."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.upstream = bytearray()  # client to server
        self.downstream = bytearray()  # server to client

    def frames(self, direction: str) -> list[tuple[int, bytes]]:
        """The whole frames sent ``"upstream"`` or ``"downstream"`` after the HTTP head:
        ``(first byte, unmasked payload)``; the first byte has FIN, RSV1-3 and the opcode."""
        with self.lock:
            data = bytes(getattr(self, direction))
        _, _, data = data.partition(b"\r\n\r\n")
        reader = FrameReader(None, data)
        frames = []
        while (item := reader.read_frame()) is not None:
            frames.append(item)
        return frames


@contextmanager
def tap(port: int) -> Iterator[tuple[str, Tapped]]:
    """Relay one TCP connection to 127.0.0.1:``port``, recording the bytes each way.

    Yields the relay's ``ws://`` URI and the record. Each byte is recorded before it is
    passed on: what a peer received, the record has. The relay ends when the block does
    (every socket closed, the threads joined, each wait bounded).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    record = Tapped()
    sockets: list[socket.socket] = []
    pumps: list[threading.Thread] = []

    def pump(source: socket.socket, sink: socket.socket, buf: bytearray) -> None:
        try:
            while data := source.recv(65536):
                with record.lock:
                    buf += data
                sink.sendall(data)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def run() -> None:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        server = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        for sock in (client, server):
            sock.settimeout(2 * TIMEOUT)
            sockets.append(sock)
        for source, sink, buf in (
            (client, server, record.upstream),
            (server, client, record.downstream),
        ):
            thread = threading.Thread(target=pump, args=(source, sink, buf), daemon=True)
            pumps.append(thread)
            thread.start()

    acceptor = threading.Thread(target=run, daemon=True)
    acceptor.start()
    try:
        yield f"ws://127.0.0.1:{listener.getsockname()[1]}/", record
    finally:
        listener.close()
        acceptor.join(2 * TIMEOUT)
        for thread in pumps:
            thread.join(TIMEOUT)  # both peers have usually closed by now
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a pump still waiting
            except OSError:
                pass
        for thread in pumps:
            thread.join(TIMEOUT)
        for sock in sockets:
            sock.close()
