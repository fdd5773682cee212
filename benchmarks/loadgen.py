"""The load generator: raw sockets, one thread, ``selectors``, frames built and masked once.

It is built to cost as little as possible per message, so that what is measured is the
server: every client frame is prepared (and masked) before the clock starts; a reply that
is byte-for-byte the expected echo is recognised with one comparison; only anything else
(a ping from the server, a reply split across reads) goes through a small frame parser.

Modes (each prints one JSON object on stdout):

``echo``
    ``--conns`` connections, each keeping ``--inflight`` binary messages of ``--size``
    bytes in flight: a reply is answered at once with the next message. Reports messages/s,
    p50/p99 round-trip latency, and the server's CPU time per message.
``handshake``
    ``--conns`` handshakes at a time, each a whole connection: TCP connect, HTTP upgrade,
    closing handshake, TCP close. Reports handshakes/s, p50/p99 of connect-to-101.
``idle``
    ``--conns`` idle connections held open for ``--duration`` seconds while one more
    connection does 50 round trips per second; the server's keepalive pings are answered.
    Reports the server's RSS and threads per connection, its CPU while idle, the active
    connection's latency, how many connections the server pinged, and whether every
    connection answers a ping of ours at the end.

The server's CPU time and memory come from ``/proc/<--pid>``. ``--raw`` is for the plain
TCP echo server, which sends every byte back as it came (masked frames, the upgrade
request itself).

Usage: ``python benchmarks/loadgen.py echo --port P --pid PID --conns 1 --size 16``
"""

from __future__ import annotations

import argparse
import collections
import errno
import json
import os
import selectors
import socket
import struct
import sys
import time

MASK = b"\x37\xfa\x21\x3d"
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
RECV_SIZE = 1 << 18
CLK_TCK = os.sysconf("SC_CLK_TCK")


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


# The server process, from /proc.


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the whole process (all threads, live or exited)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status(pid: int) -> dict[str, int]:
    """VmRSS (KiB) and Threads of a process."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                out[key] = int(value.split()[0])
    return out


def percentile(sorted_values: list[int], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))] / 1000


# Connections.


class Conn:
    """One client connection: its socket, unparsed input, pending output, send times."""

    __slots__ = (
        "buf",
        "closed",
        "events",
        "out",
        "pings",
        "pongs",
        "skip",
        "skip_fin",
        "sock",
        "times",
    )

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.skip = 0  # payload bytes of a data frame still to discard
        self.skip_fin = False
        self.out = bytearray()
        self.times: collections.deque[int] = collections.deque()
        self.pings = 0  # pings received from the server
        self.pongs = 0  # pongs received (answers to our pings)
        self.closed = False
        self.events = READ

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
        return done, answers


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
    return conn


def send(sel: selectors.BaseSelector, conn: Conn, data: bytes) -> None:
    """Write without blocking; keep what does not fit and watch the socket for writing."""
    if conn.out:
        conn.out += data
        return
    try:
        sent = conn.sock.send(data)
    except BlockingIOError:
        sent = 0
    if sent < len(data):
        conn.out += memoryview(data)[sent:]
        if not conn.events & WRITE:
            conn.events = READ | WRITE
            sel.modify(conn.sock, conn.events, conn)


def serve_ready(sel: selectors.BaseSelector, conn: Conn, ev: int) -> bytes | None:
    """Handle one selector event: finish a pending write; return what could be read
    (``b""`` at EOF or reset), or ``None`` when there was nothing to read."""
    if ev & WRITE:
        flush(sel, conn)
    if not ev & READ:
        return None
    try:
        return conn.sock.recv(RECV_SIZE)
    except BlockingIOError:
        return None
    except ConnectionResetError:
        return b""


def flush(sel: selectors.BaseSelector, conn: Conn) -> None:
    try:
        sent = conn.sock.send(conn.out)
    except BlockingIOError:
        sent = 0
    del conn.out[:sent]
    if not conn.out:
        conn.events = READ
        sel.modify(conn.sock, READ, conn)


def close_all(conns: list[Conn], raw: bool, timeout: float = 2.0) -> None:
    """Send a close frame on every connection, wait (bounded) for EOF, close the sockets."""
    sel = selectors.DefaultSelector()
    for conn in conns:
        try:
            if not raw:
                conn.sock.send(CLOSE_FRAME)
            else:
                conn.sock.shutdown(socket.SHUT_WR)
            sel.register(conn.sock, READ, conn)
        except OSError:
            conn.sock.close()
    left = len(sel.get_map())
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            try:
                data = key.fileobj.recv(RECV_SIZE)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
                left -= 1
    for key in list(sel.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    sel.close()


# Modes.


def run_echo(args: argparse.Namespace) -> dict[str, object]:
    raw = args.raw
    payload = os.urandom(args.size)
    frame = client_frame(payload)
    reply = frame if raw else server_frame(payload)
    rl = len(reply)
    inflight = args.inflight
    frames = [frame * k for k in range(inflight + 1)]
    replies = [reply * k for k in range(inflight + 1)]
    conns = [handshake(args.port, raw) for _ in range(args.conns)]
    if args.conns == 1 and inflight * args.size <= 1 << 16:
        return echo_one(args, conns[0], frames, replies, rl)
    sel = selectors.DefaultSelector()
    now = time.perf_counter_ns()
    for conn in conns:
        sel.register(conn.sock, READ, conn)
        conn.times.extend([now] * inflight)
        send(sel, conn, frames[inflight])
    lats: list[int] = []
    measuring = False
    warm_end = now + int(args.warmup * 1e9)
    end = warm_end + int(args.duration * 1e9)
    count = 0
    t0 = cpu0 = my_cpu0 = 0.0
    select = sel.select
    perf = time.perf_counter_ns
    while True:
        events = select(1.0)
        now = perf()
        if not measuring and now >= warm_end:
            measuring = True
            count = 0
            lats.clear()
            cpu0 = cpu_seconds(args.pid)
            my_cpu0 = time.process_time()
            t0 = now
        if now >= end:
            break
        if not events:
            raise RuntimeError("no reply for 1 s: is the server stuck?")
        for key, ev in events:
            conn = key.data
            if ev & WRITE:
                flush(sel, conn)
            if not ev & READ:
                continue
            try:
                data = conn.sock.recv(RECV_SIZE)
            except BlockingIOError:
                continue
            if not data:
                raise RuntimeError("the server closed a connection")
            n = len(data)
            if not conn.buf and not conn.skip and n % rl == 0 and data == replies[n // rl]:
                k = n // rl
            else:
                k, answers = conn.parse(data, raw)
                for answer in answers:
                    send(sel, conn, answer)
            if k:
                times = conn.times
                if measuring:
                    for _ in range(k):
                        lats.append(now - times.popleft())
                else:
                    for _ in range(k):
                        times.popleft()
                count += k
                times.extend([now] * k)
                send(sel, conn, frames[k] if k <= inflight else frame * k)
    elapsed = (now - t0) / 1e9
    cpu = cpu_seconds(args.pid) - cpu0
    my_cpu = time.process_time() - my_cpu0
    sel.close()
    close_all(conns, raw)
    lats.sort()
    return {
        "msgs": count,
        "seconds": elapsed,
        "rate": count / elapsed,
        "p50_us": percentile(lats, 0.5),
        "p99_us": percentile(lats, 0.99),
        "cpu_us": cpu / max(count, 1) * 1e6,
        "loadgen_cpu_us": my_cpu / max(count, 1) * 1e6,
    }


def echo_one(
    args: argparse.Namespace, conn: Conn, frames: list[bytes], replies: list[bytes], rl: int
) -> dict[str, object]:
    """``run_echo`` for one connection with little in flight: blocking calls, no selector
    (one system call less per read). What is in flight fits in the socket buffers, so
    blocking writes cannot deadlock with the server's."""
    raw = args.raw
    inflight = len(frames) - 1
    sock = conn.sock
    # Blocking, with the timeout in the kernel (SO_RCVTIMEO): socket.settimeout() would add
    # a poll() before every recv().
    sock.settimeout(None)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 1, 0))
    perf = time.perf_counter_ns
    times = conn.times
    lats: list[int] = []
    now = perf()
    times.extend([now] * inflight)
    sock.sendall(frames[inflight])
    warm_end = now + int(args.warmup * 1e9)
    end = warm_end + int(args.duration * 1e9)
    measuring = False
    count = 0
    t0 = cpu0 = my_cpu0 = 0.0
    recv = sock.recv
    sendall = sock.sendall
    while True:
        data = recv(RECV_SIZE)
        now = perf()
        if not data:
            raise RuntimeError("the server closed the connection")
        n = len(data)
        if (
            not conn.buf
            and not conn.skip
            and n % rl == 0
            and n // rl <= inflight
            and (data == replies[n // rl])
        ):
            k = n // rl
        else:
            k, answers = conn.parse(data, raw)
            for answer in answers:
                sendall(answer)
        if not k:
            continue
        if measuring:
            for _ in range(k):
                lats.append(now - times.popleft())
        else:
            for _ in range(k):
                times.popleft()
            if now >= warm_end:
                measuring = True
                count = 0
                cpu0 = cpu_seconds(args.pid)
                my_cpu0 = time.process_time()
                t0 = now
        count += k
        if now >= end:
            break
        times.extend([now] * k)
        sendall(frames[k])
    elapsed = (now - t0) / 1e9
    cpu = cpu_seconds(args.pid) - cpu0
    my_cpu = time.process_time() - my_cpu0
    sock.setblocking(False)
    close_all([conn], raw)
    lats.sort()
    return {
        "msgs": count,
        "seconds": elapsed,
        "rate": count / elapsed,
        "p50_us": percentile(lats, 0.5),
        "p99_us": percentile(lats, 0.99),
        "cpu_us": cpu / max(count, 1) * 1e6,
        "loadgen_cpu_us": my_cpu / max(count, 1) * 1e6,
    }


class Slot:
    """One handshake in progress."""

    __slots__ = ("buf", "closing", "sock", "t0")

    def __init__(self, sock: socket.socket, t0: int) -> None:
        self.sock = sock
        self.t0 = t0
        self.buf = b""
        self.closing = False


def run_handshake(args: argparse.Namespace) -> dict[str, object]:
    raw = args.raw
    req = request(args.port)
    sel = selectors.DefaultSelector()
    perf = time.perf_counter_ns

    def start() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        slot = Slot(sock, perf())
        err = sock.connect_ex(("127.0.0.1", args.port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, os.strerror(err))
        sel.register(sock, WRITE, slot)

    for _ in range(args.conns):
        start()
    lats: list[int] = []
    done = errors = 0
    now = perf()
    warm_end = now + int(args.warmup * 1e9)
    end = warm_end + int(args.duration * 1e9)
    measuring = False
    t0 = cpu0 = my_cpu0 = 0.0
    while True:
        events = sel.select(1.0)
        now = perf()
        if not measuring and now >= warm_end:
            measuring = True
            done = errors = 0
            lats.clear()
            cpu0 = cpu_seconds(args.pid)
            my_cpu0 = time.process_time()
            t0 = now
        if now >= end:
            break
        if not events:
            raise RuntimeError("no progress for 1 s: is the server stuck?")
        for key, ev in events:
            slot = key.data
            sock = slot.sock
            if ev & WRITE:  # connected
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, os.strerror(err))
                sock.send(req)  # fits: a fresh socket's buffer is empty
                sel.modify(sock, READ, slot)
                continue
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            if not slot.closing:
                slot.buf += data
                if raw:
                    if len(slot.buf) < len(req):
                        if not data:
                            raise RuntimeError("the server closed during the handshake")
                        continue
                elif b"\r\n\r\n" not in slot.buf:
                    if not data:
                        raise RuntimeError("the server closed during the handshake")
                    continue
                if measuring:
                    lats.append(now - slot.t0)
                if not raw and not slot.buf.startswith(b"HTTP/1.1 101"):
                    errors += 1
                slot.closing = True
                if raw:
                    data = b""  # the plain TCP server has nothing to close: we close
                else:
                    sock.send(CLOSE_FRAME)
                    continue
            if not data:  # EOF after the closing handshake
                sel.unregister(sock)
                sock.close()
                done += 1
                start()
    elapsed = (now - t0) / 1e9
    cpu = cpu_seconds(args.pid) - cpu0
    my_cpu = time.process_time() - my_cpu0
    for key in list(sel.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    sel.close()
    lats.sort()
    return {
        "msgs": done,
        "errors": errors,
        "seconds": elapsed,
        "rate": done / elapsed,
        "p50_us": percentile(lats, 0.5),
        "p99_us": percentile(lats, 0.99),
        "cpu_us": cpu / max(done, 1) * 1e6,
        "loadgen_cpu_us": my_cpu / max(done, 1) * 1e6,
    }


def run_idle(args: argparse.Namespace) -> dict[str, object]:
    raw = args.raw
    pid = args.pid
    # Warm the server up (imports, first thread, heartbeat) before the baseline.
    close_all([handshake(args.port, raw) for _ in range(4)], raw)
    time.sleep(0.5)
    base = status(pid)
    t_open = time.monotonic()
    conns = [handshake(args.port, raw) for _ in range(args.conns)]
    open_seconds = time.monotonic() - t_open
    active = handshake(args.port, raw)
    time.sleep(1.0)
    loaded = status(pid)
    sel = selectors.DefaultSelector()
    for conn in conns:
        sel.register(conn.sock, READ, conn)
    sel.register(active.sock, READ, active)
    payload = os.urandom(16)
    frame = client_frame(payload)
    reply = frame if raw else server_frame(payload)
    perf = time.perf_counter_ns
    period = 20_000_000  # 50 round trips per second on the active connection
    lats: list[int] = []
    cpu0 = cpu_seconds(pid)
    t0 = perf()
    end = t0 + int(args.duration * 1e9)
    next_send = t0
    dropped = 0
    while True:
        now = perf()
        if now >= end:
            break
        if not active.times and now >= next_send:
            active.times.append(now)
            send(sel, active, frame)
            next_send = now + period
        timeout = max(0, (end if active.times else min(end, next_send)) - now) / 1e9
        for key, ev in sel.select(min(timeout, 1.0)):
            conn = key.data
            data = serve_ready(sel, conn, ev)
            if data is None:
                continue
            if not data:
                dropped += 1
                sel.unregister(conn.sock)
                conn.closed = True
                continue
            if conn is active and data == reply:
                k = 1
            else:
                k, answers = conn.parse(data, raw)
                for answer in answers:
                    send(sel, conn, answer)
            if k and conn is active:
                lats.append(perf() - active.times.popleft())
    seconds = (perf() - t0) / 1e9
    cpu = cpu_seconds(pid) - cpu0
    end_status = status(pid)
    pinged = sum(1 for conn in conns if conn.pings)
    # Our own ping on every idle connection: how many pongs come back within 10 s?
    answered = 0
    if not raw:
        want = [conn for conn in conns if not conn.closed]
        for conn in want:
            conn.pongs = 0
            send(sel, conn, client_frame(b"bench", 9))
        deadline = time.monotonic() + 10
        while answered < len(want) and time.monotonic() < deadline:
            for key, ev in sel.select(0.5):
                conn = key.data
                data = serve_ready(sel, conn, ev)
                if data is None:
                    continue
                if not data:
                    sel.unregister(conn.sock)
                    continue
                _, answers = conn.parse(data, raw)
                for answer in answers:
                    send(sel, conn, answer)
            answered = sum(1 for conn in want if conn.pongs)
    sel.close()
    close_all([*conns, active], raw, timeout=5.0)
    lats.sort()
    n = args.conns
    return {
        "conns": n,
        "open_seconds": open_seconds,
        "rss_base_kib": base["VmRSS"],
        "rss_kib": loaded["VmRSS"],
        "rss_end_kib": end_status["VmRSS"],
        "rss_per_conn_kib": (max(loaded["VmRSS"], end_status["VmRSS"]) - base["VmRSS"]) / n,
        "threads_base": base["Threads"],
        "threads": loaded["Threads"],
        "threads_per_conn": (loaded["Threads"] - base["Threads"]) / n,
        "idle_cpu_ms_per_s": cpu / seconds * 1000,
        "seconds": seconds,
        "p50_us": percentile(lats, 0.5),
        "p99_us": percentile(lats, 0.99),
        "round_trips": len(lats),
        "pinged_conns": pinged,
        "answered_pings": answered,
        "dropped": dropped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["echo", "handshake", "idle"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True, help="the server's process id")
    parser.add_argument("--conns", type=int, default=1)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--inflight", type=int, default=1)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--raw", action="store_true", help="plain TCP echo server")
    args = parser.parse_args()
    run = {"echo": run_echo, "handshake": run_handshake, "idle": run_idle}[args.mode]
    json.dump(run(args), sys.stdout)
    print()


if __name__ == "__main__":
    main()
