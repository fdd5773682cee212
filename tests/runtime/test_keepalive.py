"""Keepalive, deadlines, backpressure and resource use of the threaded runtime.

Every test runs on loopback with small intervals and bounded waits. Peers that misbehave
(never answer pings, stop reading) are raw sockets speaking just enough WebSocket.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import select
import socket
import termios
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

import pytest
from rawws import FrameReader, parse_close, raw_client, raw_server, wait_for
from timing import TIMEOUT

import syncws
from syncws.runtime import transport

ServerFactory = Callable[..., syncws.Server]
UriFactory = Callable[..., str]

# Tests.


def test_pings_are_answered_while_the_handler_is_busy(
    server: ServerFactory, uri: UriFactory
) -> None:
    """A handler busy longer than the peer's ping_timeout keeps the connection alive, then
    receives every message sent meanwhile, in order."""
    received: list[syncws.Data] = []
    done = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        time.sleep(1.5)  # simulates a busy handler: not reading
        for _ in range(10):
            received.append(ws.recv())
        done.set()
        ws.send("ok")
        for _ in ws:  # until the client closes
            pass

    srv = server(handler)
    with syncws.connect(uri(srv), ping_interval=0.2, ping_timeout=0.5) as ws:
        for i in range(10):
            ws.send(f"message {i}")
        assert ws.recv(timeout=TIMEOUT) == "ok"
        assert ws.state is syncws.State.OPEN
    assert done.is_set()
    assert received == [f"message {i}" for i in range(10)]


def test_silent_client_is_closed_with_1011(server: ServerFactory) -> None:
    """A client that never answers pings is failed with 1011 within ping_interval +
    ping_timeout."""
    srv = server(ping_interval=0.2, ping_timeout=0.3)
    sock, rest = raw_client(srv)
    start = time.monotonic()
    with sock:
        frames = FrameReader(sock, rest).read_until_eof()
    elapsed = time.monotonic() - start
    assert elapsed < 0.2 + 0.3 + 0.7
    opcodes = [opcode for opcode, _ in frames]
    assert opcodes[0] == 0x9  # the ping left unanswered
    assert opcodes[-1] == 0x8
    assert parse_close(frames[-1][1]) == (1011, "keepalive ping timeout")


def test_silent_server_is_detected_by_the_client() -> None:
    """A server that stops answering pings makes the client's recv raise
    ConnectionClosedError within ping_interval + ping_timeout."""
    with raw_server(lambda sock, rest: None) as ws_uri:
        ws = syncws.connect(ws_uri, ping_interval=0.2, ping_timeout=0.3, close_timeout=0.5)
        start = time.monotonic()
        with pytest.raises(syncws.ConnectionClosedError) as info:
            ws.recv(timeout=TIMEOUT)
        assert time.monotonic() - start < 0.2 + 0.3 + 0.7
        assert info.value.sent is not None
        assert info.value.sent.code == 1011
        assert info.value.sent.reason == "keepalive ping timeout"
        assert ws.wait_closed(TIMEOUT)


@pytest.mark.parametrize("ack_on_close", [False, True])
def test_a_peer_that_leaves_without_a_pong_never_reads_as_alive(ack_on_close: bool) -> None:
    """ping()'s event is set by the pong only: a peer that closes the TCP connection
    without answering leaves it unset (it was set, so ping().wait() said True: issue 19).
    With ack_on_close=True, as in websockets, the close sets it, and the state says why."""
    read_ping = threading.Event()

    def leave(sock: socket.socket, rest: bytes) -> None:
        opcode, _ = FrameReader(sock, rest).read()  # the ping, unanswered
        assert opcode == 0x9
        read_ping.set()
        sock.shutdown(socket.SHUT_RDWR)  # gone, without a pong or a close frame

    with raw_server(leave) as ws_uri:
        ws = syncws.connect(ws_uri, ping_interval=None, close_timeout=0.5)
        event = ws.ping(ack_on_close=ack_on_close)
        assert read_ping.wait(TIMEOUT)
        assert ws.wait_closed(TIMEOUT)  # the heartbeat read the EOF
        assert event.wait(0.3) is ack_on_close
        assert ws.state is syncws.State.CLOSED
        assert ws.close_code == 1006


def test_send_to_a_peer_that_stops_reading_times_out(
    server: ServerFactory, uri: UriFactory
) -> None:
    """With write_timeout, a send to a peer that stopped reading raises
    ConnectionClosedError (1011) and frees the pool thread for the next connection."""
    outcome: list[BaseException] = []
    failed = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        if ws.request is not None and ws.request.path == "/flood":
            chunk = b"\0" * 65536
            start = time.monotonic()
            try:
                while time.monotonic() - start < TIMEOUT:
                    ws.send(chunk)
            except BaseException as exc:
                outcome.append(exc)
                failed.set()
                raise
            return
        for message in ws:
            ws.send(message)

    srv = server(handler, write_timeout=0.5, max_connections=1)
    sock, _ = raw_client(srv, "/flood", rcvbuf=4096, handshake=False)
    with sock:
        assert failed.wait(0.5 + TIMEOUT), "the send never timed out"
    [exc] = outcome
    assert isinstance(exc, syncws.ConnectionClosedError)
    assert exc.sent is not None and exc.sent.code == 1011
    # The pool thread is free again: the only slot serves the next client.
    assert wait_for(lambda: srv._pool.busy == 0, TIMEOUT)
    with syncws.connect(uri(srv)) as ws:
        ws.send("hello")
        assert ws.recv(timeout=TIMEOUT) == "hello"


def test_write_timeout_sends_nothing_after_a_partial_frame(
    server: ServerFactory, uri: UriFactory
) -> None:
    """After a write timeout, no close frame follows a half-written frame: the peer reads
    only whole frames of the message, then the end of the connection."""
    failed = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        try:
            while True:
                ws.send(b"\0" * 65536)
        except syncws.ConnectionClosed:
            failed.set()

    srv = server(handler, write_timeout=0.3)
    sock, _ = raw_client(srv, "/", rcvbuf=4096, handshake=False)
    with sock:
        assert failed.wait(0.3 + TIMEOUT), "the send never timed out"
        sock.settimeout(TIMEOUT)
        data = bytearray()
        while chunk := sock.recv(1 << 20):
            data += chunk
    body = bytes(data[data.index(b"\r\n\r\n") + 4 :])
    # Every frame is a binary frame of zeros; whatever follows the last whole frame is
    # the start of another one, and no close frame bytes are mixed into it.
    while len(body) >= 4:
        assert body[0] == 0x82 and body[1] == 127
        length = int.from_bytes(body[2:10], "big")
        payload = body[10 : 10 + length]
        assert payload == b"\0" * len(payload)
        body = body[10 + length :]


class _PausedReader(NamedTuple):
    resume: threading.Event
    queued: list[int]
    received: list[bytes]
    handler: Callable[[syncws.ServerConnection], None]


def paused_reader(count: int) -> _PausedReader:
    """A handler that does not read until ``resume`` is set, then notes how many messages
    were queued meanwhile, receives ``count`` messages and sends "done"."""
    resume = threading.Event()
    queued: list[int] = []
    received: list[bytes] = []

    def handler(ws: syncws.ServerConnection) -> None:
        resume.wait(2 * TIMEOUT)
        queued.append(len(ws._inbox.messages or ()))
        for _ in range(count):
            received.append(ws.recv(decode=False))
        ws.send("done")

    return _PausedReader(resume, queued, received, handler)


def test_max_queue_applies_backpressure(server: ServerFactory, uri: UriFactory) -> None:
    """A handler that does not read makes the server stop reading after max_queue messages
    (the client's sends block); then the handler gets every message, in order."""
    count, size, max_queue = 400, 65536, 4
    resume, queued, received, handler = paused_reader(count)

    # Without compression: these repetitive messages would deflate to almost nothing and
    # never fill the TCP buffers.
    srv = server(handler, max_queue=max_queue, compression=None)
    sent = 0
    errors: list[BaseException] = []

    with syncws.connect(uri(srv)) as ws:

        def flood() -> None:
            nonlocal sent
            try:
                for i in range(count):
                    ws.send(i.to_bytes(4, "big") * (size // 4))
                    sent += 1
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=flood, daemon=True)
        thread.start()

        # The sender stalls: wait until it has made no progress for 0.5 s.
        def stalled() -> bool:
            before = sent
            time.sleep(0.5)
            return sent == before

        assert wait_for(stalled, 2 * TIMEOUT), "sends never blocked"
        assert sent < count
        [conn] = srv.connections
        # Once parked, the heartbeat reads up to max_queue messages, then stops.
        assert wait_for(lambda: len(conn._inbox.messages or ()) >= max_queue, TIMEOUT)
        time.sleep(0.2)
        assert sent < count
        resume.set()
        assert ws.recv(timeout=2 * TIMEOUT) == "done"
        thread.join(TIMEOUT)
    assert not errors
    assert queued[0] <= max_queue + 1  # one read may complete a message beyond the limit
    assert [int.from_bytes(m[:4], "big") for m in received] == list(range(count))
    assert all(len(m) == size for m in received)


def test_max_queue_is_a_high_water_mark_for_small_messages(server: ServerFactory) -> None:
    """With many small messages, the read that reaches max_queue is queued whole (the queue
    exceeds the limit by at most one read: 256 KiB), and then reading stops: the queue
    stops growing while unread data waits in the socket. No message is lost or reordered."""
    count, size, max_queue = 60_000, 16, 2  # 1.3 MB of frames: more than one read holds
    resume, queued, received, handler = paused_reader(count)

    srv = server(handler, max_queue=max_queue, compression=None, ping_interval=None)
    sock, rest = raw_client(srv)
    with sock:
        frames = b"".join(
            b"\x82\x90" + bytes(4) + i.to_bytes(4, "big") * (size // 4) for i in range(count)
        )
        sender = threading.Thread(target=sock.sendall, args=(frames,), daemon=True)
        sender.start()
        [conn] = srv.connections
        assert wait_for(lambda: len(conn._inbox.messages or ()) >= max_queue, TIMEOUT)
        before = len(conn._inbox.messages or ())
        time.sleep(0.3)
        assert len(conn._inbox.messages or ()) == before  # reading stopped...
        unread = array.array("i", [0])
        fcntl.ioctl(conn.transport.sock, termios.FIONREAD, unread)
        assert unread[0] > 0  # ...while data waits to be read
        assert max_queue <= before <= max_queue + (256 * 1024) // (size + 6)
        resume.set()
        sender.join(2 * TIMEOUT)
        assert FrameReader(sock, rest).read() == (1, b"done")
    assert queued[0] == before
    assert [int.from_bytes(m[:4], "big") for m in received] == list(range(count))


def test_ping_returns_an_event_set_by_the_pong(server: ServerFactory, uri: UriFactory) -> None:
    """ws.ping() returns an event set promptly by the pong, and latency is measured."""
    srv = server()
    with syncws.connect(uri(srv)) as ws:
        assert ws.latency == 0
        start = time.monotonic()
        pong = ws.ping()
        assert pong.wait(TIMEOUT)
        assert time.monotonic() - start < 0.5
        assert ws.latency > 0
        assert ws.ping(b"custom").wait(TIMEOUT)
        # Any bytes-like payload, as for pong() and send(); it was used as a dict key.
        assert ws.ping(bytearray(b"mutable")).wait(TIMEOUT)  # type: ignore[arg-type]
        assert ws.ping(memoryview(b"view")).wait(TIMEOUT)  # type: ignore[arg-type]


def test_ping_too_long_is_refused_before_it_is_registered(
    server: ServerFactory, uri: UriFactory
) -> None:
    """A ping payload over 125 bytes raises ValueError every time, and leaves no waiter
    behind: the same payload is not "already waiting" and later pings work."""
    with syncws.connect(uri(server())) as ws:
        for _ in range(2):
            with pytest.raises(ValueError, match="125 bytes"):
                ws.ping(b"x" * 126)
        assert ws.ping(b"x" * 125).wait(TIMEOUT)
        assert ws.ping(b"").wait(TIMEOUT)
        assert not ws._pings


@pytest.mark.parametrize("data", [5, [1, 2], 1.5], ids=["int", "list", "float"])
def test_ping_and_pong_refuse_data_that_is_not_str_or_bytes_like(
    server: ServerFactory, uri: UriFactory, data: object
) -> None:
    """ping() and pong() raise TypeError for data that is neither str nor bytes-like, as
    send() does: ping(5) must not send five NUL bytes."""
    with syncws.connect(uri(server())) as ws:
        with pytest.raises(TypeError):
            ws.ping(data)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            ws.pong(data)  # type: ignore[arg-type]
        assert not ws._pings
        assert ws.ping().wait(TIMEOUT)
        ws.send("still open")
        assert ws.recv(timeout=TIMEOUT) == "still open"


def test_ping_after_close_leaves_no_waiter(server: ServerFactory, uri: UriFactory) -> None:
    """A ping on a closed connection raises ConnectionClosed each time, not
    ConcurrencyError for the first one's payload, and registers nothing."""
    ws = syncws.connect(uri(server()))
    ws.close()
    for _ in range(2):
        with pytest.raises(syncws.ConnectionClosed):
            ws.ping(b"z")
    assert not ws._pings


def test_handler_ping_is_answered_while_the_handler_is_not_reading(
    server: ServerFactory, uri: UriFactory
) -> None:
    """A ping sent by a handler that is not in recv() gets its pong promptly."""
    results: list[tuple[bool, float]] = []

    def handler(ws: syncws.ServerConnection) -> None:
        pong = ws.ping()
        results.append((pong.wait(0.5), ws.latency))
        ws.send("measured")
        ws.recv()

    srv = server(handler)
    with syncws.connect(uri(srv)) as ws:
        assert ws.recv(timeout=TIMEOUT) == "measured"
    [(answered, latency)] = results
    assert answered
    assert latency > 0


def test_ping_does_not_wake_the_heartbeat_that_reads_already(
    server: ServerFactory, uri: UriFactory
) -> None:
    """A handler out of recv() that pings again and again hands reading to the heartbeat
    once: the pongs of its later pings are read without waking that thread each time."""
    results: list[bool] = []

    def handler(ws: syncws.ServerConnection) -> None:
        results.extend(ws.ping().wait(TIMEOUT) for _ in range(5))
        ws.send("done")
        ws.recv()

    srv = server(handler, ping_interval=None)
    take_overs: list[syncws.Connection] = []
    original = srv._heartbeat.take_over

    def take_over(conn: syncws.Connection) -> None:
        take_overs.append(conn)
        original(conn)

    srv._heartbeat.take_over = take_over  # type: ignore[method-assign]
    with syncws.connect(uri(srv)) as ws:
        assert ws.recv(timeout=2 * TIMEOUT) == "done"
    assert results == [True] * 5
    assert len(take_overs) == 1


def _releases_the_gil(function: object) -> bool:
    """Whether a C function is a short system call that the standard library makes with
    the GIL released: a non-blocking socket read or write, an epoll change, os.urandom."""
    owner = getattr(function, "__self__", None)
    name = getattr(function, "__name__", "")
    if isinstance(owner, socket.socket):
        return name in {"recv", "recv_into", "send", "sendall", "sendmsg"}
    if isinstance(owner, select.epoll):
        return name in {"register", "modify", "unregister"}
    return function is os.urandom


@pytest.mark.skipif(transport._send_holding_gil is None, reason="syncws.runtime._send not built")
def test_heartbeat_releases_the_gil_only_to_wait(server: ServerFactory, uri: UriFactory) -> None:
    """The heartbeat thread parks a busy handler's connection, reads it, answers the peer's
    ping, sends keepalive pings and reads their pongs, then hands reading back, without a
    system call that releases the GIL other than its wait in select(). While other threads
    run Python, each release cost this one thread a wait for the GIL (5 ms or more), for
    every socket in turn: it fell behind, and the peers' keepalive failed connections."""
    released: list[str] = []

    def profile(frame: object, event: str, arg: object) -> None:
        if (
            event == "c_call"
            and threading.current_thread().name == "syncws-server-heartbeat"
            and _releases_the_gil(arg)
        ):
            released.append(getattr(arg, "__qualname__", repr(arg)))

    resume = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        resume.wait(2 * TIMEOUT)  # busy elsewhere: the heartbeat reads for it
        for message in ws:
            ws.send(message)

    threading.setprofile(profile)  # for the threads started from now on
    try:
        srv = server(handler, ping_interval=0.1, ping_timeout=TIMEOUT)
        with syncws.connect(uri(srv), ping_interval=None) as ws:
            [conn] = srv.connections
            ws.send("queued while the handler is busy")
            assert ws.ping().wait(TIMEOUT)  # read and answered by the heartbeat
            assert wait_for(lambda: conn.latency > 0, TIMEOUT)  # a keepalive pong, read by it too
            assert wait_for(lambda: len(conn._inbox.messages or ()) == 1, TIMEOUT)
            resume.set()
            assert ws.recv(timeout=TIMEOUT) == "queued while the handler is busy"
            ws.send("read by the handler")
            assert ws.recv(timeout=TIMEOUT) == "read by the handler"
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
    assert released == []


def test_pong_reaches_the_peer() -> None:
    """ws.pong(data) sends an unsolicited pong with that payload."""
    seen: list[tuple[int, bytes]] = []
    got = threading.Event()

    def behaviour(sock: socket.socket, rest: bytes) -> None:
        reader = FrameReader(sock, rest)
        item = reader.read()
        if item is not None:
            seen.append(item)
        got.set()

    with raw_server(behaviour) as ws_uri:
        ws = syncws.connect(ws_uri, close_timeout=0.2)
        try:
            ws.pong(b"heartbeat")
            assert got.wait(TIMEOUT)
        finally:
            ws.close()
    assert seen == [(0xA, b"heartbeat")]


def test_thread_count_is_connections_plus_a_constant(
    server: ServerFactory, uri: UriFactory
) -> None:
    """200 open connections cost one server thread each and no client thread each."""
    srv = server(ping_interval=5)
    clients: list[syncws.ClientConnection] = []
    before = threading.active_count()
    try:
        for _ in range(200):
            clients.append(syncws.connect(uri(srv), ping_interval=5, open_timeout=TIMEOUT))
        for ws in clients[::20]:
            ws.send("ping")
            assert ws.recv(timeout=TIMEOUT) == "ping"
        assert len(srv.connections) == 200
        after = threading.active_count()
    finally:
        for ws in clients:
            ws.close()
    # 200 handler threads, plus at most the acceptor, the server heartbeat, the client
    # heartbeat and a little slack.
    assert after - before <= 200 + 4


def test_idle_server_uses_no_cpu(server: ServerFactory, uri: UriFactory) -> None:
    """With 50 idle connections, the process uses almost no CPU."""
    srv = server(ping_interval=20)
    clients = [syncws.connect(uri(srv), ping_interval=20) for _ in range(50)]
    try:
        for ws in clients:
            ws.send("warm up")
            assert ws.recv(timeout=TIMEOUT) == "warm up"
        cpu = time.process_time()
        wall = time.monotonic()
        time.sleep(1.0)  # measuring idleness, not synchronising
        cpu = time.process_time() - cpu
        assert time.monotonic() - wall >= 1.0
    finally:
        for ws in clients:
            ws.close()
    assert cpu < 0.05


def test_handing_reading_back_unparks_in_the_same_lock_hold(
    server: ServerFactory, uri: UriFactory
) -> None:
    """When the heartbeat finds the handler back in recv(), hb_read() has the heartbeat
    unpark the connection before it releases the connection's lock. ping() asks the
    heartbeat whether it reads the connection without the lock, after a hold of the lock
    and after _reading: a "parked" left for later made a ping() just after the handler
    left recv() skip the wake-up, and its pong wait for the next periodic park, 0.2-0.4 s
    (found by a review)."""
    srv = server()
    with syncws.connect(uri(srv)) as ws:

        def in_recv() -> None:  # a handler in recv(), which nothing will come to
            with contextlib.suppress(TimeoutError):
                ws.recv(timeout=1)

        reader = threading.Thread(target=in_recv)
        reader.start()
        try:
            assert wait_for(lambda: ws.hb_recv_count is None, TIMEOUT)  # _reading is set
            unparked: list[bool] = []  # whether the connection's lock was held
            # What the heartbeat calls for a connection it reads for, now readable.
            assert ws.hb_read(lambda: unparked.append(ws._lock.locked())) is False
            assert unparked == [True]
        finally:
            reader.join(1 + TIMEOUT)
