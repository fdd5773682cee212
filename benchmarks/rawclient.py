"""The load's client side, on raw sockets: frames built and masked once, and connections.

``client_frame`` masks a frame as it builds it, once per benchmark, and ``request`` is the
upgrade request. ``handshake`` opens a connection and completes the upgrade (blocking),
then hands over a non-blocking :class:`Conn`: its socket, unparsed input, pending output and
send times, and a small frame parser that answers pings and notes closes. ``serve_ready``
handles one epoll event of a connection; ``close_all`` closes many at once, bounded in
time. ``loadgen.py`` and ``broadcast.py`` drive them (Linux only: ``select.epoll``).
"""

from __future__ import annotations

import select
import socket
import struct
import time

MASK = b"\x37\xfa\x21\x3d"
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
IN, OUT, HUP, ERR = select.EPOLLIN, select.EPOLLOUT, select.EPOLLHUP, select.EPOLLERR
RDHUP = select.EPOLLRDHUP
#: The size of the preallocated receive buffers (never a fresh ``bytes`` per read).
RECV_SIZE = 1 << 18


def mask_bytes(payload: bytes, mask: bytes = MASK) -> bytes:
    """XOR ``payload`` with the repeated 4-byte ``mask`` (done once per benchmark)."""
    if not payload:
        return b""
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def header(opcode: int, n: int, masked: bool) -> bytes:
    bit = 0x80 if masked else 0
    if n < 126:
        return struct.pack("!BB", 0x80 | opcode, bit | n)
    if n < 1 << 16:
        return struct.pack("!BBH", 0x80 | opcode, bit | 126, n)
    return struct.pack("!BBQ", 0x80 | opcode, bit | 127, n)


def client_frame(payload: bytes, opcode: int = 2) -> bytes:
    """A masked frame, as a client sends it."""
    return header(opcode, len(payload), True) + MASK + mask_bytes(payload)


def server_frame(payload: bytes, opcode: int = 2) -> bytes:
    """An unmasked frame, as a server sends it."""
    return header(opcode, len(payload), False) + payload


CLOSE_FRAME = client_frame(struct.pack("!H", 1000), 8)


def request(port: int) -> bytes:
    return (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY.decode()}\r\n"
        f"Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


# Connections.


class Conn:
    """One client connection: its socket, unparsed input, pending output, send times."""

    __slots__ = (
        "buf",
        "closed",
        "fast",
        "fd",
        "head",
        "out",
        "pings",
        "pongs",
        "recv_into",
        "ring",
        "send",
        "skip",
        "skip_fin",
        "sock",
        "t",
    )

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.recv_into = sock.recv_into  # bound once: one attribute load per call
        self.send = sock.send
        self.buf = bytearray()
        self.skip = 0  # payload bytes of a data frame still to discard
        self.skip_fin = False
        self.out = bytearray()
        # Nothing buffered either way: a read that is the expected echo needs no parsing,
        # and a write can go straight to the socket.
        self.fast = True
        self.t = 0  # send time of the one message in flight (--inflight 1)
        # --inflight > 1: the send time of every message in flight, the oldest at ``head``.
        self.ring: list[int] = []
        self.head = 0
        self.pings = 0  # pings received from the server
        self.pongs = 0  # pongs received (answers to our pings)
        self.closed = False

    def parse(self, data: bytes | memoryview, raw: bool) -> tuple[int, list[bytes]]:
        """Consume ``data``; return (complete data messages, control frames to answer)."""
        done = 0
        answers: list[bytes] = []
        if self.skip:
            n = min(self.skip, len(data))
            self.skip -= n
            data = memoryview(data)[n:]
            if not self.skip and self.skip_fin:
                done += 1
        buf = self.buf
        buf += data
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n = b1 & 0x7F
            hl = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n = struct.unpack_from("!H", buf, 2)[0]
                hl = 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n = struct.unpack_from("!Q", buf, 2)[0]
                hl = 10
            if b1 & 0x80:
                hl += 4
            opcode = b0 & 0x0F
            fin = bool(b0 & 0x80)
            if len(buf) < hl + n:
                if opcode < 8 and len(buf) >= hl:
                    self.skip = hl + n - len(buf)
                    self.skip_fin = fin
                    buf.clear()
                break
            if opcode == 9 and not raw:
                self.pings += 1
                answers.append(client_frame(bytes(buf[hl : hl + n]), 10))
            elif opcode == 10 and not raw:
                self.pongs += 1
            elif opcode == 8 and not raw:
                self.closed = True
            elif opcode < 8 and fin:
                done += 1
            del buf[: hl + n]
        self.fast = not buf and not self.skip and not self.out
        return done, answers

    def write(self, ep: select.epoll, data: bytes) -> None:
        """Send without blocking; keep what does not fit and watch the socket for writing."""
        if self.out:
            self.out += data
            return
        try:
            sent = self.send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            self.out += memoryview(data)[sent:]
            self.fast = False
            ep.modify(self.fd, IN | OUT)

    def flush(self, ep: select.epoll) -> None:
        """Send what is pending (the socket is writable)."""
        try:
            sent = self.send(self.out)
        except BlockingIOError:
            sent = 0
        del self.out[:sent]
        if not self.out:
            self.fast = not self.buf and not self.skip
            ep.modify(self.fd, IN)


def handshake(port: int, raw: bool, timeout: float = 10.0) -> Conn:
    """Open a connection and complete the upgrade (blocking)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = request(port)
    sock.sendall(req)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed during the handshake")
        data += chunk
        if raw and len(data) >= len(req):
            rest = data[len(req) :]
            break
        if not raw and b"\r\n\r\n" in data:
            head, _, rest = data.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(f"handshake failed: {head[:60]!r}")
            break
    sock.setblocking(False)
    conn = Conn(sock)
    conn.buf += rest
    conn.fast = not rest
    return conn


def serve_ready(ep: select.epoll, conn: Conn, ev: int, buf: bytearray) -> int | None:
    """Handle one epoll event: finish a pending write; read into ``buf`` and return how
    much was read (0 at EOF or reset), or ``None`` when there was nothing to read."""
    if ev & OUT:
        conn.flush(ep)
    if not ev & (IN | HUP | ERR):
        return None
    try:
        return conn.recv_into(buf)
    except BlockingIOError:
        return None
    except ConnectionResetError:
        return 0


def close_all(conns: list[Conn], raw: bool, timeout: float = 2.0) -> None:
    """Send a close frame on every connection, wait (bounded) for EOF, close the sockets."""
    ep = select.epoll()
    socks: dict[int, socket.socket] = {}
    for conn in conns:
        try:
            if not raw:
                conn.sock.send(CLOSE_FRAME)
            else:
                conn.sock.shutdown(socket.SHUT_WR)
            ep.register(conn.fd, IN)
            socks[conn.fd] = conn.sock
        except OSError:
            conn.sock.close()
    buf = bytearray(RECV_SIZE)
    deadline = time.monotonic() + timeout
    while socks and time.monotonic() < deadline:
        for fd, _ in ep.poll(0.2):
            sock = socks[fd]
            try:
                n = sock.recv_into(buf)
            except BlockingIOError:
                continue
            except OSError:
                n = 0
            if not n:
                del socks[fd]
                sock.close()  # which also takes it out of the epoll set
    for sock in socks.values():
        sock.close()
    ep.close()
