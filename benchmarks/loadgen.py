"""The load generator: raw sockets, one thread, epoll, frames built and masked once.

It is built to cost as little as possible per message, so that what is measured is the
server:

* Every client frame is prepared (and masked) before the clock starts, ``k`` frames in a
  row too: ``k`` replies are answered with one ``send()`` of pre-built bytes.
* Readiness comes from a ``select.epoll`` object used directly (Linux only, as is
  ``/proc``): it hands back ``(fd, events)`` pairs built in C, where ``selectors`` would
  add a ``SelectorKey`` lookup and a tuple per ready socket in Python. Sockets are
  registered once, level-triggered, for reading; writing is watched only while a send is
  incomplete; a closed socket leaves the epoll set by itself.
* Every read goes into one preallocated buffer (``recv_into``). A ``recv()`` of the same
  256 KiB size allocates a fresh ``bytes`` above malloc's mmap threshold each time: an
  mmap, mremap and munmap, plus page faults, per message, which was most of the cost.
* A read that is byte-for-byte the expected echo of ``k`` messages is recognised with one
  ``startswith`` on that buffer; only anything else (a ping from the server, a reply split
  across reads) goes through a small frame parser, which answers pings and notes closes.
* Every round trip is measured, with no per-message objects: the clock is read once per
  read, and that instant is both the arrival time of the replies in it and the send time
  of the messages that answer them. With one message in flight a connection keeps one
  timestamp; with more, a fixed ring of send times (there are always ``--inflight``
  messages in flight), updated by slices. Messages that arrive in one read share an
  arrival time, as messages sent in one write share a send time.
* Handshakes: sockets are created non-blocking (``SOCK_NONBLOCK``), the request goes out
  right after ``connect()`` (a loopback connection is established by then), and
  ``EPOLLRDHUP`` tells when the close frame's read is also the last one.

What remains is mostly system calls: a loopback ``send()`` runs the receiving side's TCP
stack, and wakes the receiver, in the sender's CPU time.

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

The frames and the connections are ``rawclient.py``'s; the figures read from ``/proc`` and
the measurement's window, ``measure.py``'s.

Usage: ``python benchmarks/loadgen.py echo --port P --pid PID --conns 1 --size 16``
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import select
import socket
import struct
import sys
import time

from measure import Window, cpu_seconds, percentile, status
from rawclient import (
    CLOSE_FRAME,
    ERR,
    HUP,
    IN,
    OUT,
    RDHUP,
    RECV_SIZE,
    Conn,
    client_frame,
    close_all,
    handshake,
    request,
    serve_ready,
    server_frame,
)


def retire(ring: list[int], head: int, k: int, now: int, lats: list[int] | None) -> int:
    """The replies to the ``k`` oldest messages in flight came in at ``now``, and ``k`` new
    messages go out: ``ring`` holds the send time of each message in flight (as many as
    ``--inflight``, always), the oldest at ``head``. Record the round trips in ``lats``
    (unless None); return the new ``head``."""
    n = len(ring)
    end = head + k
    if end <= n:
        old = ring[head:end]
        ring[head:end] = [now] * k
    else:
        end -= n
        old = ring[head:] + ring[:end]
        ring[head:] = [now] * (n - head)
        ring[:end] = [now] * end
    if lats is not None:
        lats += [now - t for t in old]
    return end if end < n else 0


# Modes.


def run_echo(args: argparse.Namespace) -> dict[str, object]:
    raw = args.raw
    payload = os.urandom(args.size)
    frame = client_frame(payload)
    reply = frame if raw else server_frame(payload)
    inflight = args.inflight
    frames = [frame * k for k in range(inflight + 1)]
    replies = [reply * k for k in range(inflight + 1)]
    conns = [handshake(args.port, raw) for _ in range(args.conns)]
    if args.conns == 1 and inflight * args.size <= 1 << 16:
        result = echo_one(args, conns[0], frames, replies)
    else:
        result = echo_many(args, conns, frames, replies)
    close_all(conns, raw)
    return result


def echo_result(
    count: int, elapsed: float, cpu: float, my_cpu: float, lats: list[int]
) -> dict[str, object]:
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


def echo_many(
    args: argparse.Namespace, conns: list[Conn], frames: list[bytes], replies: list[bytes]
) -> dict[str, object]:
    """``run_echo`` on any number of connections: epoll, one read into a preallocated
    buffer per ready connection, one send of the next messages."""
    raw = args.raw
    inflight = len(frames) - 1
    single = inflight == 1
    rl = len(replies[1])
    most = rl * inflight  # the longest read that can be the expected echo
    buf = bytearray(RECV_SIZE)
    view = memoryview(buf)
    startswith = buf.startswith
    ep = select.epoll()
    by_fd = {conn.fd: conn for conn in conns}
    perf = time.perf_counter_ns
    now = perf()
    for conn in conns:
        ep.register(conn.fd, IN)
        conn.t = now
        conn.ring = [now] * inflight
        conn.write(ep, frames[inflight])
    lats: list[int] = []
    append = lats.append
    measuring = False
    window = Window(args, now)
    end = window.end
    count = 0
    poll = ep.poll
    maxevents = len(conns)
    while True:
        events = poll(1.0, maxevents)
        now = perf()
        if not measuring and window.start(now):
            measuring = True
            count = 0
            lats.clear()
        if now >= end:
            break
        if not events:
            raise RuntimeError("no reply for 1 s: is the server stuck?")
        for fd, ev in events:
            conn = by_fd[fd]
            if ev & OUT:
                conn.flush(ep)
                if not ev & (IN | HUP | ERR):
                    continue
            try:
                n = conn.recv_into(buf)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                n = 0
            if not n:
                raise RuntimeError("the server closed a connection")
            # The reply's arrival time, and the next message's send time.
            now = perf()
            if conn.fast and n <= most and not n % rl and startswith(replies[n // rl]):
                k = n // rl
            else:
                k, answers = conn.parse(view[:n], raw)
                for answer in answers:
                    conn.write(ep, answer)
                if not k:
                    continue
                if k > inflight:
                    raise RuntimeError(f"{k} replies with {inflight} messages in flight")
            count += k
            if single:
                if measuring:
                    append(now - conn.t)
                conn.t = now
            else:
                conn.head = retire(conn.ring, conn.head, k, now, lats if measuring else None)
            data = frames[k]
            if conn.fast:
                try:
                    sent = conn.send(data)
                except BlockingIOError:
                    sent = 0
                if sent == len(data):
                    continue
                data = data[sent:]
            conn.write(ep, data)
    ep.close()
    return echo_result(count, *window.figures(now), lats)


def echo_one(
    args: argparse.Namespace, conn: Conn, frames: list[bytes], replies: list[bytes]
) -> dict[str, object]:
    """``run_echo`` for one connection with little in flight: blocking calls, no epoll
    (one system call less per read). What is in flight fits in the socket buffers, so
    blocking writes cannot deadlock with the server's."""
    raw = args.raw
    inflight = len(frames) - 1
    rl = len(replies[1])
    most = rl * inflight
    sock = conn.sock
    # Blocking, with the timeout in the kernel (SO_RCVTIMEO): socket.settimeout() would add
    # a poll() before every recv().
    sock.settimeout(None)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 1, 0))
    buf = bytearray(RECV_SIZE)
    view = memoryview(buf)
    startswith = buf.startswith
    perf = time.perf_counter_ns
    lats: list[int] = []
    now = perf()
    ring = [now] * inflight  # the send time of every message in flight, the oldest at h
    h = 0
    sock.sendall(frames[inflight])
    window = Window(args, now)
    end = window.end
    measuring = False
    count = 0
    recv_into = sock.recv_into
    sendall = sock.sendall
    append = lats.append
    while True:
        try:
            n = recv_into(buf)
        except BlockingIOError:  # SO_RCVTIMEO
            raise RuntimeError("no reply for 1 s: is the server stuck?") from None
        now = perf()
        if not n:
            raise RuntimeError("the server closed the connection")
        if conn.fast and n <= most and not n % rl and startswith(replies[n // rl]):
            k = n // rl
        else:
            k, answers = conn.parse(view[:n], raw)
            for answer in answers:
                sendall(answer)
            if not k:
                continue
            if k > inflight:
                raise RuntimeError(f"{k} replies with {inflight} messages in flight")
        if k == 1:
            if measuring:
                append(now - ring[h])
            ring[h] = now
            h += 1
            if h == inflight:
                h = 0
        else:
            h = retire(ring, h, k, now, lats if measuring else None)
        if not measuring and window.start(now):
            measuring = True
            count = 0
        count += k
        if now >= end:
            break
        sendall(frames[k])
    sock.setblocking(False)
    return echo_result(count, *window.figures(now), lats)


class Slot:
    """One handshake in progress."""

    __slots__ = ("buf", "closing", "connecting", "sock", "t0")

    def __init__(self, sock: socket.socket, t0: int) -> None:
        self.sock = sock
        self.t0 = t0
        self.buf = b""
        self.connecting = False
        self.closing = False


def run_handshake(args: argparse.Namespace) -> dict[str, object]:
    raw = args.raw
    req = request(args.port)
    addr = ("127.0.0.1", args.port)
    ep = select.epoll()
    slots: dict[int, Slot] = {}
    buf = bytearray(RECV_SIZE)
    view = memoryview(buf)
    perf = time.perf_counter_ns
    new_socket = socket.socket
    kind = socket.SOCK_STREAM | socket.SOCK_NONBLOCK  # non-blocking without a system call

    def start() -> None:
        # No TCP_NODELAY: each side sends only when the other has answered, so Nagle's
        # algorithm never holds anything back here (and that is a system call less).
        sock = new_socket(socket.AF_INET, kind)
        slot = Slot(sock, perf())
        err = sock.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, os.strerror(err))
        fd = sock.fileno()
        slots[fd] = slot
        # A loopback connection is established before connect() returns: send the
        # request at once, without waiting for an event that says so.
        try:
            sock.send(req)  # fits: a fresh socket's buffer is empty
        except BlockingIOError:
            slot.connecting = True
            ep.register(fd, OUT)
        else:
            ep.register(fd, IN | RDHUP)

    for _ in range(args.conns):
        start()
    lats: list[int] = []
    done = errors = 0
    now = perf()
    window = Window(args, now)
    end = window.end
    measuring = False
    poll = ep.poll
    while True:
        events = poll(1.0)
        now = perf()
        if not measuring and window.start(now):
            measuring = True
            done = errors = 0
            lats.clear()
        if now >= end:
            break
        if not events:
            raise RuntimeError("no progress for 1 s: is the server stuck?")
        for fd, ev in events:
            slot = slots[fd]
            sock = slot.sock
            if slot.connecting:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, os.strerror(err))
                sock.send(req)
                slot.connecting = False
                ep.modify(fd, IN | RDHUP)
                continue
            try:
                n = sock.recv_into(buf)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                n = 0
            if not slot.closing:
                if not n:
                    raise RuntimeError("the server closed during the handshake")
                slot.buf += view[:n]
                if raw:
                    if len(slot.buf) < len(req):
                        continue
                elif b"\r\n\r\n" not in slot.buf:
                    continue
                if measuring:
                    lats.append(perf() - slot.t0)
                if not raw and not slot.buf.startswith(b"HTTP/1.1 101"):
                    errors += 1
                slot.closing = True
                if not raw:
                    sock.send(CLOSE_FRAME)
                    continue
                # The plain TCP server has nothing to close: we close.
            elif n and (n == RECV_SIZE or not ev & RDHUP):
                continue  # the server's close frame; its FIN is still to come
            # EOF after the closing handshake, or the close frame with the FIN behind it
            # (RDHUP): nothing is left to read, which saves a recv() per handshake.
            del slots[fd]
            sock.close()  # which also takes it out of the epoll set
            done += 1
            start()
    for slot in slots.values():
        slot.sock.close()
    ep.close()
    return {**echo_result(done, *window.figures(now), lats), "errors": errors}


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
    ep = select.epoll()
    by_fd = {conn.fd: conn for conn in [*conns, active]}
    for fd in by_fd:
        ep.register(fd, IN)
    buf = bytearray(RECV_SIZE)
    view = memoryview(buf)
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
    waiting = False  # for the active connection's reply
    dropped = 0
    while True:
        now = perf()
        if now >= end:
            break
        if not waiting and now >= next_send:
            active.t = now
            waiting = True
            active.write(ep, frame)
            next_send = now + period
        timeout = max(0, (end if waiting else min(end, next_send)) - now) / 1e9
        for fd, ev in ep.poll(min(timeout, 1.0)):
            conn = by_fd[fd]
            n = serve_ready(ep, conn, ev, buf)
            if n is None:
                continue
            if not n:
                dropped += 1
                ep.unregister(fd)
                conn.closed = True
                continue
            if conn is active and conn.fast and n == len(reply) and buf.startswith(reply):
                k = 1
            else:
                k, answers = conn.parse(view[:n], raw)
                for answer in answers:
                    conn.write(ep, answer)
            if k and conn is active:
                lats.append(perf() - active.t)
                waiting = False
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
            conn.write(ep, client_frame(b"bench", 9))
        deadline = time.monotonic() + 10
        while answered < len(want) and time.monotonic() < deadline:
            for fd, ev in ep.poll(0.5):
                conn = by_fd[fd]
                n = serve_ready(ep, conn, ev, buf)
                if n is None:
                    continue
                if not n:
                    ep.unregister(fd)
                    continue
                _, answers = conn.parse(view[:n], raw)
                for answer in answers:
                    conn.write(ep, answer)
            answered = sum(1 for conn in want if conn.pongs)
    ep.close()
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
