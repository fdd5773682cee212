"""The soak's clients: each runs sessions, one connection at a time, until the soak ends.

Well-behaved clients are syncws clients (:class:`Echoer`); misbehaving ones are raw sockets
(:mod:`rawws`) that break a rule on purpose: :class:`Reset` vanishes with a TCP reset,
:class:`MidFragment` closes in the middle of a fragmented message, :class:`NoRead` sends
without ever reading, :class:`NoPong` never answers pings and :class:`Trickle` sends its
handshake a few bytes at a time.

Every loop is bounded in count and in time; every socket has a timeout.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import itertools
import random
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import rawws
from server import SENTINEL, pieces, reassemble

import syncws

#: Largest message sent (the server's default ``max_size`` is 1 MiB), in bytes once encoded.
MAX_SIZE = 2**20


#: Characters of the text messages that are not all ASCII: 2-, 3- and 4-byte UTF-8.
UNICODE = "aé€😀zß中👍"

_tags = itertools.count(1)


@dataclass
class Stats:
    """What one client kind did, summed over its clients (each adds under ``lock``)."""

    kind: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, **counts: int) -> None:
        with self.lock:
            self.counts.update(counts)

    def fail(self, what: str, example: str) -> None:
        """Count a failure (a check fails on any); keep the first few examples."""
        with self.lock:
            self.failures[what] += 1
            if len(self.examples) < 10:
                self.examples.append(f"{what}: {example}")


@dataclass
class Soak:
    """What the clients share: the server's address, the clock, the knobs."""

    port: int
    deadline: float
    rng_seed: int
    ping_interval: float
    ping_timeout: float
    close_timeout: float
    open_timeout: float
    recv_timeout: float
    stop: threading.Event = field(default_factory=threading.Event)
    # Connections and sockets open now, so that a watchdog can end stuck clients.
    lock: threading.Lock = field(default_factory=threading.Lock)
    open_now: set[Any] = field(default_factory=set)
    # A fault for the self-test: if a list, every well-behaved connection is kept in it.
    leak: list[Any] | None = None

    @property
    def ending(self) -> bool:
        return self.stop.is_set() or time.monotonic() >= self.deadline

    def track(self, thing: Any) -> None:
        with self.lock:
            self.open_now.add(thing)

    def untrack(self, thing: Any) -> None:
        with self.lock:
            self.open_now.discard(thing)


def message_size(rng: random.Random) -> int:
    """1 B to 1 MiB, skewed small: the median is about 30 B, 7 % are above 64 KiB."""
    return max(1, int(2 ** (20 * rng.random() ** 3)))


def make_message(rng: random.Random, tag: int, seq: int) -> syncws.Data:
    """A text or binary message that names its connection and sequence number and carries
    a CRC-32 of its body: ``TTTTTTTTSSSSSSSSCCCCCCCC`` (hex), then the body.

    A message shorter than that header is the header cut short. Bodies are random, or a
    random pattern repeated (so that compression has something to do).
    """
    size = message_size(rng)
    text = rng.random() < 0.5
    unicode = text and rng.random() < 0.25
    if unicode:
        size = max(1, size // 4)  # at most 4 bytes per character
    body_size = max(0, size - 24)
    repeat = rng.random() < 0.5
    chunk = min(body_size, 512) if repeat else body_size
    body: syncws.Data
    if unicode:
        body = "".join(rng.choices(UNICODE, k=chunk))
    elif text:
        body = base64.b64encode(rng.randbytes(chunk * 3 // 4 + 3)).decode()[:chunk]
    else:
        body = rng.randbytes(chunk)
    if repeat and chunk:
        body = (body * (body_size // chunk + 1))[:body_size]
    raw = body.encode() if isinstance(body, str) else body
    header = f"{tag:08x}{seq:08x}{zlib.crc32(raw):08x}"
    if isinstance(body, str):
        return (header + body)[:size] if size < 24 else header + body
    return (header.encode() + body)[:size]


def digest(message: syncws.Data) -> bytes:
    """What identifies a message: its type and its bytes."""
    if isinstance(message, str):
        return b"t" + hashlib.blake2b(message.encode(), digest_size=16).digest()
    return b"b" + hashlib.blake2b(message, digest_size=16).digest()


def describe(message: syncws.Data) -> str:
    """A short description of a message for a failure report."""
    head = message[:24]
    kind = "text" if isinstance(message, str) else "binary"
    return f"{kind} of {len(message)}, starting {head!r}"


class Ledger:
    """The messages of one connection sent and not echoed yet, in order."""

    def __init__(self) -> None:
        self.order: collections.deque[tuple[int, bytes, str]] = collections.deque()

    def sent(self, seq: int, message: syncws.Data) -> None:
        self.order.append((seq, digest(message), describe(message)))

    def received(self, message: syncws.Data, stats: Stats, tag: int) -> None:
        """Check ``message`` against the next one expected."""
        d = digest(message)
        if self.order and self.order[0][1] == d:
            self.order.popleft()
            return
        for i, (seq, expected, _) in enumerate(self.order):
            if expected == d:
                del self.order[i]
                want = self.order[0][0] if self.order else "?"
                stats.fail("reordered", f"connection {tag:x}: got #{seq} before #{want}")
                return
        want = self.order[0][2] if self.order else "nothing"
        stats.fail("corrupted", f"connection {tag:x}: got {describe(message)}, expected {want}")
        # A message whose header survived names the one it replaces: not lost on top.
        seq = _header_seq(message, tag)
        for i, (s, _, _) in enumerate(self.order):
            if s == seq:
                del self.order[i]
                break


def _header_seq(message: syncws.Data, tag: int) -> int | None:
    head = message[:16]
    if isinstance(head, bytes):
        head = head.decode("ascii", "replace")
    try:
        return int(head[8:16], 16) if int(head[:8], 16) == tag else None
    except ValueError:
        return None


class Client:
    """A client thread: sessions until the soak ends."""

    kind = "client"

    def __init__(self, soak: Soak, stats: Stats, index: int) -> None:
        self.soak = soak
        self.stats = stats
        self.index = index
        self.rng = random.Random(soak.rng_seed * 100_003 + index)
        self.thread = threading.Thread(target=self.run, name=f"soak-{self.kind}-{index}")

    def run(self) -> None:
        # Spread the first connections over a second, not all at once.
        if self.soak.stop.wait(self.rng.random()):
            return
        sessions = 0
        while not self.soak.ending and self.can_start() and sessions < 1_000_000:
            sessions += 1
            self.stats.add(sessions=1)
            try:
                self.session()
            except Exception as exc:
                self.unexpected(exc)

    def unexpected(self, exc: Exception) -> None:
        self.stats.fail(type(exc).__name__, f"{self.kind} {self.index}: {exc!r}")

    def can_start(self) -> bool:
        """Whether a new session may start now (it must end soon after the soak)."""
        return True

    def session(self) -> None:
        raise NotImplementedError

    def uri(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.soak.port}{path}"


class Echoer(Client):
    """A well-behaved syncws client: echoes of every size, checked one by one.

    Half the clients offer compression. A session picks ``/echo`` or ``/mixed`` (the server
    fragments some echoes and pings), sends 1 to 100 messages with 1 to 4 of them in
    flight, one in five fragmented, receives one echo in ten with ``recv_streaming()``,
    then sends a sentinel, reads up to its echo and closes.
    """

    kind = "echo"

    def session(self) -> None:
        rng = self.rng
        soak = self.soak
        compression = "deflate" if self.index % 2 == 0 else None
        path = rng.choice(("/echo", "/mixed"))
        ws = syncws.connect(
            self.uri(path),
            compression=compression,
            open_timeout=soak.open_timeout + 7,
            ping_interval=soak.ping_interval,
            ping_timeout=soak.ping_timeout,
            close_timeout=soak.close_timeout,
        )
        tag = next(_tags)
        ledger = Ledger()
        soak.track(ws)
        if soak.leak is not None:
            soak.leak.append(ws)
        try:
            with ws:
                count = rng.randint(1, 100)
                window = rng.randint(1, 4)
                in_flight = 0
                for seq in range(count):
                    if soak.ending:
                        break
                    message = make_message(rng, tag, seq)
                    ledger.sent(seq, message)
                    if rng.random() < 0.2 and len(message) > 1:
                        ws.send(pieces(message, rng.randint(2, 8)))
                        self.stats.add(fragmented=1)
                    else:
                        ws.send(message)
                    self.stats.add(messages=1, bytes=len(message))
                    in_flight += 1
                    if in_flight >= window:
                        self.receive(ws, ledger, tag)
                        in_flight -= 1
                sentinel = f"{SENTINEL}{tag:x}"
                ws.send(sentinel)
                for _ in range(in_flight + 1):
                    echo = self.receive(ws, ledger, tag)
                    if echo == sentinel:
                        break
                else:
                    self.stats.fail("no sentinel", f"connection {tag:x}: more echoes than sent")
                closing = time.monotonic()
            if ws.close_code != 1000:
                took = time.monotonic() - closing
                if ws.close_code is None and ws.wait_closed(30):
                    # Not closed when close() gave up (close_timeout, then a second), but
                    # closed since: the client process's heartbeat thread waited that long
                    # for its turn of the GIL among ~200 busy client threads (the limit
                    # docs/topics/threads.rst describes), not a close that never ends.
                    self.stats.add(slow_closes=1)
                    with self.stats.lock:
                        if len(self.stats.examples) < 10:
                            self.stats.examples.append(
                                f"slow close: connection {tag:x}: closed "
                                f"{time.monotonic() - closing:.1f} s after close()"
                            )
                else:
                    self.stats.fail(
                        "bad close", f"connection {tag:x}: {ws.close_code} after {took:.1f} s"
                    )
        finally:
            soak.untrack(ws)
            if ledger.order:
                self.stats.fail("lost", f"connection {tag:x}: {len(ledger.order)} echoes")
                with self.stats.lock:
                    self.stats.failures["lost"] += len(ledger.order) - 1
            self.stats.add(connections=1)

    def receive(self, ws: syncws.ClientConnection, ledger: Ledger, tag: int) -> syncws.Data:
        """Receive one echo and check it (a sentinel is not checked: it ends the session)."""
        if self.rng.random() < 0.1:
            echo = reassemble(list(ws.recv_streaming()))
            self.stats.add(streamed=1)
        else:
            echo = ws.recv(timeout=self.soak.recv_timeout)
        if not (isinstance(echo, str) and echo.startswith(SENTINEL)):
            ledger.received(echo, self.stats, tag)
            self.stats.add(echoes=1)
        return echo


class Raw(Client):
    """A client on a plain socket, to break the protocol's rules."""

    def connect(self, path: str = "/echo", handshake: bool = True) -> tuple[socket.socket, bytes]:
        start = time.monotonic()
        sock = socket.create_connection(("127.0.0.1", self.soak.port), timeout=10)
        self.soak.track(sock)
        rest = b""
        try:
            if handshake:
                sock.sendall(rawws.REQUEST % path.encode())
                rest = self.read_head(sock)
        except OSError as exc:
            self.close(sock)
            took = time.monotonic() - start
            raise ConnectionError(f"handshake failed after {took:.1f} s: {exc}") from exc
        except BaseException:
            self.close(sock)
            raise
        return sock, rest

    @staticmethod
    def read_head(sock: socket.socket) -> bytes:
        """Read the HTTP response head (101 expected); return the bytes after it."""
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = sock.recv(4096)
            if not data:
                raise ConnectionError("the server closed the connection during the handshake")
            buf += data
            if len(buf) > 65536:
                raise ConnectionError("no end to the handshake response")
        head, _, rest = buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"handshake refused: {head[:40]!r}")
        return rest

    def close(self, sock: socket.socket, reset: bool = False) -> None:
        self.soak.untrack(sock)
        if reset:
            # SO_LINGER with a zero timeout: close() sends a RST and discards everything.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    def send_messages(self, sock: socket.socket, count: int, largest: int = 65536) -> int:
        """Send ``count`` binary messages of up to ``largest`` bytes; return the bytes sent."""
        total = 0
        for _ in range(count):
            payload = self.rng.randbytes(self.rng.randint(1, largest))
            sock.sendall(rawws.frame(0x2, payload, mask=True))
            total += len(payload)
        return total

    def drain(self, sock: socket.socket, seconds: float) -> tuple[bool, int | None]:
        """Read and discard for up to ``seconds``; return whether EOF came, and the code of
        the close frame if one was seen at the start of a read."""
        end = time.monotonic() + seconds
        code = None
        reads = 0
        while reads < 1_000_000:
            reads += 1
            left = end - time.monotonic()
            if left <= 0:
                return False, code
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                return False, code
            except OSError:
                return True, code
            if not data:
                return True, code
            if data[0] == 0x88 and len(data) >= 4:
                code = struct.unpack("!H", data[2:4])[0]
        return False, code


class Reset(Raw):
    """Sends a few messages (up to 512 KiB, so the server is often mid-read or mid-echo),
    maybe reads a little, then vanishes with a TCP reset."""

    kind = "rst"

    def session(self) -> None:
        sock, _ = self.connect()
        try:
            sent = self.send_messages(sock, self.rng.randint(0, 5), self.rng.choice((16, 2**19)))
            self.stats.add(messages=1, bytes=sent)
            if self.rng.random() < 0.5:
                self.drain(sock, self.rng.random() * 0.2)
        finally:
            self.close(sock, reset=True)
        self.stats.add(connections=1)


class MidFragment(Raw):
    """Sends the first fragments of a message, then closes the TCP connection (with FIN,
    or one time in three with RST)."""

    kind = "midfrag"

    def session(self) -> None:
        sock, _ = self.connect()
        try:
            opcode = self.rng.choice((0x1, 0x2))
            payload = b"x" * self.rng.randint(1, 4096)
            sock.sendall(rawws.frame(opcode, payload, mask=True, fin=False))
            for _ in range(self.rng.randint(0, 3)):
                sock.sendall(rawws.frame(0x0, payload, mask=True, fin=False))
            self.stats.add(messages=1)
            if self.rng.random() < 0.5:
                self.drain(sock, self.rng.random() * 0.2)
        finally:
            self.close(sock, reset=self.rng.random() < 1 / 3)
        self.stats.add(connections=1)


class NoRead(Raw):
    """Sends messages and never reads (the echoes pile up until the server's writes
    block): up to 32 MiB or until a send blocks for a second, then waits, still without
    reading, for up to ``ping_interval + ping_timeout + 1`` seconds, and closes.
    The server may fail the connection first (no pong: 1011)."""

    kind = "noread"

    def session(self) -> None:
        sock, _ = self.connect()
        try:
            sock.settimeout(1)
            sent = 0
            try:
                while sent < 32 * 2**20 and not self.soak.ending:
                    sent += self.send_messages(sock, 1)
            except (TimeoutError, OSError):
                pass
            self.stats.add(messages=1, bytes=sent)
            soak = self.soak
            wait = self.rng.random() * (soak.ping_interval + soak.ping_timeout + 1)
            soak.stop.wait(wait)
        finally:
            self.close(sock, reset=self.rng.random() < 0.5)
        self.stats.add(connections=1)


class NoPong(Raw):
    """Completes the handshake, sends a message, then reads everything and never answers
    a ping: the server must fail the connection (1011) within ``ping_interval +
    ping_timeout`` (and a margin), or this counts as a failure."""

    kind = "nopong"

    def session(self) -> None:
        sock, _ = self.connect()
        try:
            self.send_messages(sock, 1, 64)
            self.stats.add(messages=1)
            soak = self.soak
            bound = soak.ping_interval + soak.ping_timeout + soak.close_timeout + 10
            eof, code = self.drain(sock, bound)
            if not eof:
                self.stats.fail("not failed", f"no pong for {bound:.0f} s and still open")
            elif code == 1011:
                self.stats.add(failed_1011=1)
            else:
                self.stats.add(closed_otherwise=1)
        finally:
            self.close(sock)
        self.stats.add(connections=1)

    def can_start(self) -> bool:
        # A session lasts ping_interval + ping_timeout: start one only if it ends about
        # when the soak does.
        soak = self.soak
        return time.monotonic() + soak.ping_interval + soak.ping_timeout < soak.deadline + 2


class Trickle(Raw):
    """Sends the handshake request a few bytes at a time over 0.5 to ``2 * open_timeout``
    seconds: the server completes the slow ones that end in time and drops the others
    (``open_timeout``). A completed one sends a message, reads its echo and closes."""

    kind = "trickle"

    def session(self) -> None:
        soak = self.soak
        request = rawws.REQUEST % b"/echo"
        chunks = self.rng.randint(5, 20)
        spread = 0.5 + self.rng.random() * (2 * soak.open_timeout - 0.5)
        step = -(-len(request) // chunks)
        # Before connecting: the server's open_timeout cannot start earlier, so "dropped
        # early" is sound even when this thread waits long for the GIL.
        start = time.monotonic()
        sock, _ = self.connect(handshake=False)
        try:
            try:
                for i in range(0, len(request), step):
                    sock.sendall(request[i : i + step])
                    if soak.stop.wait(spread / chunks):
                        break
                rest = self.read_head(sock)
            except (ConnectionError, OSError) as exc:
                took = time.monotonic() - start
                if took < soak.open_timeout - 0.5:
                    self.stats.fail("dropped early", f"after {took:.1f} s: {exc!r}")
                self.stats.add(dropped=1)
                return
            self.stats.add(completed=1)
            sock.sendall(rawws.frame(0x1, b"trickled", mask=True))
            reader = rawws.FrameReader(sock, rest)
            frame = reader.read()
            for _ in range(10):  # skip the server's pings and pongs
                if frame is None or frame[0] not in (0x9, 0xA):
                    break
                frame = reader.read()
            if frame != (0x1, b"trickled"):
                self.stats.fail("bad echo", f"trickle got {frame!r}")
            sock.sendall(rawws.close_frame(1000, mask=True))
            self.drain(sock, soak.close_timeout + 2)
        finally:
            self.close(sock)
            self.stats.add(connections=1)


KINDS: dict[str, type[Client]] = {
    cls.kind: cls for cls in (Echoer, Reset, MidFragment, NoRead, NoPong, Trickle)
}
