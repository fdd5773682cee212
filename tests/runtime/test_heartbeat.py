"""The heartbeat thread's bookkeeping: short connections cost it nothing, sockets are closed
once, by the right thread, and nothing is kept for connections that are gone."""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import random
import select
import selectors
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rawws import wait_for
from timing import TIMEOUT

import syncws
from syncws.runtime.debug import live_connections
from syncws.runtime.heartbeat import (
    _COMPACT_AFTER,
    _PING,
    PARK_DELAY,
    Heartbeat,
    _make_selector,
    client_heartbeat,
)

ServerFactory = Callable[..., syncws.Server]
UriFactory = Callable[..., str]


def count_wakes(heartbeat: Heartbeat) -> list[int]:
    """Count the heartbeat's wake-ups from now on (in the returned one-item list)."""
    count = [0]
    wake = heartbeat._wake

    def counting() -> None:
        count[0] += 1
        wake()

    heartbeat._wake = counting  # type: ignore[method-assign]
    return count


def test_short_connections_do_not_wake_the_heartbeat(
    server: ServerFactory, uri: UriFactory
) -> None:
    """Connections that open, echo and are closed by the client, in turn, don't wake the
    heartbeat thread each time; their sockets are closed all the same, and none is left to
    the thread."""
    conns: list[syncws.ServerConnection] = []

    def handler(ws: syncws.ServerConnection) -> None:
        conns.append(ws)
        for message in ws:  # until the client closes
            ws.send(message)

    srv = server(handler)

    def connect() -> None:
        with syncws.connect(uri(srv)) as ws:
            ws.send("hello")
            assert ws.recv(timeout=TIMEOUT) == "hello"

    connect()  # starts the heartbeat thread
    heartbeat = srv._heartbeat
    wakes = count_wakes(heartbeat)
    n = 30
    started = time.monotonic()
    for _ in range(n):
        connect()
    checks = (time.monotonic() - started) / PARK_DELAY + 1  # periodic checks meanwhile
    assert wait_for(lambda: len(conns) == n + 1 and all(c.wait_closed(0) for c in conns), TIMEOUT)
    # A wake-up at most when the periodic check had stopped, every PARK_DELAY (and far
    # fewer than one per connection: n connections take well under n * PARK_DELAY here).
    assert wakes[0] <= min(checks, n // 2)
    assert all(conn.transport.sock.fileno() == -1 for conn in conns)
    assert not heartbeat._claimed
    assert wait_for(lambda: not heartbeat._conns and not heartbeat._new, 2 * PARK_DELAY + TIMEOUT)
    # Pings are scheduled (and kept until due) only for the connections that were alive
    # when the thread woke up or ran its periodic check, not for each: how many checks
    # ran depends on the machine's speed (CI once saw 2).
    pings = [entry for entry in heartbeat._heap if entry[2] == _PING]
    assert len(pings) <= wakes[0] + checks + 1


class FakeTransport:
    def __init__(self) -> None:
        self.sock: Any = None  # never registered
        self.closed_by: list[str] = []

    def close(self) -> None:
        self.closed_by.append(threading.current_thread().name)


class FakeConnection:
    """What the heartbeat uses of a connection (its interface, heartbeat.Served) that is
    never parked and never pings: each method it must not call fails the test."""

    hb_recv_count: int | None = None  # always in recv(): skipped by the periodic check

    def __init__(self, ping_interval: float | None) -> None:
        self.id = uuid.uuid4()
        self.ping_interval = ping_interval
        self.ping_timeout = None
        self.close_timeout = None
        self.transport = FakeTransport()
        self.pings = 0

    def hb_ping(self) -> None:
        self.pings += 1  # then nothing to send: the heartbeat schedules no more

    def hb_wants_read(self) -> bool:
        raise AssertionError("never parked")

    def hb_read(self, unpark: Callable[[], object]) -> bool:
        raise AssertionError("never parked")

    def hb_writable(self) -> bool:
        raise AssertionError("never written")

    def hb_pong_overdue(self, payload: bytes) -> bool:
        raise AssertionError("never pinged")

    def hb_ping_timed_out(self) -> None:
        raise AssertionError("never pinged")

    def hb_close_timed_out(self) -> None:
        raise AssertionError("never closed")


def fake(ping_interval: float | None) -> FakeConnection:
    return FakeConnection(ping_interval)


@pytest.fixture
def heartbeat() -> Iterator[Heartbeat]:
    instance = Heartbeat("test-heartbeat", logging.getLogger("test"))
    yield instance
    instance.stop()
    if instance._thread is not None:
        instance._thread.join(TIMEOUT)
        assert not instance._thread.is_alive()


def test_add_and_remove_wake_the_heartbeat_only_when_needed(heartbeat: Heartbeat) -> None:
    """Adding a connection wakes the thread only if it must wake earlier than planned (the
    periodic check had stopped, or the first ping is due sooner); removing one it never
    touched closes its socket at once, from the calling thread."""
    first = fake(20)
    heartbeat.add(first)  # starts the thread and the periodic check
    assert wait_for(lambda: math.isfinite(heartbeat._sleep_until), TIMEOUT)
    wakes = count_wakes(heartbeat)
    second = fake(20)
    heartbeat.add(second)
    third = fake(None)
    heartbeat.add(third)
    assert wakes[0] == 0
    heartbeat.remove(third)
    heartbeat.remove(second)
    assert wakes[0] == 0
    assert second.transport.closed_by == [threading.current_thread().name]
    # A ping due before the thread's next wake-up: woken, so the ping is on time.
    short = fake(PARK_DELAY / 10)
    heartbeat.add(short)
    assert wakes[0] == 1
    assert wait_for(lambda: short.pings == 1, TIMEOUT)
    # Pinged: claimed by the thread, which closes it then.
    assert short in heartbeat._claimed
    heartbeat.remove(short)
    assert wait_for(lambda: short.transport.closed_by == [heartbeat.name], TIMEOUT)
    assert short not in heartbeat._claimed
    # Nothing is kept for the connection removed before its first ping was scheduled.
    assert wait_for(lambda: not heartbeat._new, 2 * PARK_DELAY + TIMEOUT)
    assert [entry[3] for entry in heartbeat._heap if entry[2] == _PING] == [first]
    heartbeat.remove(first)


class BusyConnection(FakeConnection):
    """A handler that calls ``recv()`` again and again (its count moves at each look) until
    it becomes idle; the heartbeat's questions of whether to read it are timed."""

    def __init__(self) -> None:
        super().__init__(None)
        self.busy = True
        self.count = 0
        self.left = 0.0  # when the count last moved: when the handler last left recv()
        self.asked: list[float] = []

    @property  # type: ignore[override]
    def hb_recv_count(self) -> int | None:
        if self.busy:
            self.count += 1
            self.left = time.monotonic()
        return self.count

    def hb_wants_read(self) -> bool:
        self.asked.append(time.monotonic())
        return False  # then nothing more: the question is what is tested


def test_a_connection_is_read_for_only_once_out_of_recv_for_park_delay(
    heartbeat: Heartbeat,
) -> None:
    """The periodic check parks a connection only if its handler stayed out of ``recv()``
    from one check to the next: a handler back in ``recv()`` meanwhile is never read for,
    however often the checks run, and an idle one is, between one and two checks later."""
    conn = BusyConnection()
    heartbeat.add(conn)
    try:
        time.sleep(5 * PARK_DELAY)
        assert conn.count >= 3  # checked again and again meanwhile
        assert conn.asked == []
        conn.busy = False
        assert wait_for(lambda: conn.asked, TIMEOUT)
        # One whole period after the handler last left recv(): the next check.
        assert conn.asked[0] - conn.left >= PARK_DELAY * 0.9  # timers are not exact
    finally:
        heartbeat.remove(conn)
    assert wait_for(lambda: not heartbeat._recv_counts, 2 * PARK_DELAY + TIMEOUT)


def test_parked_connection_is_closed_by_the_heartbeat_thread(
    server: ServerFactory, uri: UriFactory
) -> None:
    """A connection the heartbeat has read for is claimed: its socket is unregistered and
    closed by the heartbeat thread, not by the thread that finalizes it."""
    conns: list[syncws.ServerConnection] = []
    release = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        conns.append(ws)
        release.wait(TIMEOUT)  # not reading: the heartbeat parks the connection

    srv = server(handler)
    heartbeat = srv._heartbeat
    closed_by: list[str] = []
    with syncws.connect(uri(srv)) as ws:
        assert wait_for(lambda: conns and conns[0] in heartbeat._claimed, TIMEOUT)
        conn = conns[0]
        fd = conn.transport.sock.fileno()
        assert fd in heartbeat._selector.get_map()
        close = conn.transport.close

        def recording_close() -> None:
            closed_by.append(threading.current_thread().name)
            close()

        conn.transport.close = recording_close  # type: ignore[method-assign]
        ws.close()  # the heartbeat reads the close frame, answers it, finalizes
    assert conn.wait_closed(TIMEOUT)
    assert wait_for(lambda: conn.transport.sock.fileno() == -1, TIMEOUT)
    release.set()
    assert closed_by == [heartbeat.name]
    assert conn not in heartbeat._claimed
    assert fd not in heartbeat._selector.get_map()


def test_removal_and_parking_race_cleanly(server: ServerFactory, uri: UriFactory) -> None:
    """Handlers that return around the moment the heartbeat parks their connection: every
    socket is closed once, the heartbeat keeps nothing, and it stops with the server."""
    conns: list[syncws.ServerConnection] = []
    lock = threading.Lock()

    def handler(ws: syncws.ServerConnection) -> None:
        with lock:
            conns.append(ws)
        time.sleep(random.uniform(0.5, 1.5) * PARK_DELAY)

    srv = server(handler)
    errors: list[BaseException] = []

    def client() -> None:
        try:
            for _ in range(3):
                with (
                    syncws.connect(uri(srv), close_timeout=TIMEOUT) as ws,
                    pytest.raises(syncws.ConnectionClosedOK),
                ):
                    ws.recv(timeout=TIMEOUT)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(6 * TIMEOUT)
    assert not errors
    assert len(conns) == 24
    assert wait_for(lambda: all(conn.wait_closed(0) for conn in conns), TIMEOUT)
    assert wait_for(lambda: all(conn.transport.sock.fileno() == -1 for conn in conns), TIMEOUT)
    heartbeat = srv._heartbeat
    assert wait_for(lambda: not heartbeat._conns and not heartbeat._claimed, TIMEOUT)
    assert list(heartbeat._selector.get_map()) == [heartbeat._wake_r.fileno()]
    srv.shutdown(timeout=TIMEOUT)
    thread = heartbeat._thread
    assert thread is not None
    thread.join(TIMEOUT)
    assert not thread.is_alive()


# Nothing kept for closed connections (issue 21, item 2).


def _live(kind: type[syncws.Connection]) -> list[syncws.Connection]:
    gc.collect()
    return [conn for conn in live_connections() if isinstance(conn, kind)]


def test_closed_connections_are_not_kept_until_their_next_ping(
    server: ServerFactory, uri: UriFactory
) -> None:
    """Once closed, connections are released at once on both sides, although their next
    keepalive ping was due 20 s later: the heartbeat drops the deadlines of the
    connections it no longer serves."""
    srv = server(ping_interval=20, ping_timeout=20, close_timeout=10)
    for _ in range(3):
        with syncws.connect(uri(srv), ping_interval=20) as ws:
            ws.send("x")
            assert ws.recv(timeout=TIMEOUT) == "x"
        del ws
    assert wait_for(lambda: not _live(syncws.ServerConnection), 3)
    assert wait_for(lambda: not _live(syncws.ClientConnection), 3)


def test_closed_connections_are_freed_by_reference_counting(
    server: ServerFactory, uri: UriFactory
) -> None:
    """No reference cycle keeps a closed connection, with its buffers and compression
    state, until the garbage collector runs: the objects a connection composes hold no
    reference back to it (rule 8 of syncws.runtime), on either side."""
    conns: list[syncws.ServerConnection] = []

    def handler(ws: syncws.ServerConnection) -> None:
        conns.append(ws)
        for message in ws:
            ws.send(message)

    srv = server(handler, ping_interval=None)
    gc.collect()
    gc.disable()
    try:
        ws = syncws.connect(uri(srv), ping_interval=None)
        ws.send("x")
        assert ws.recv(timeout=TIMEOUT) == "x"
        ws.ping().wait(TIMEOUT)  # the pings, the writer and the inbox have all served
        refs = [weakref.ref(ws), weakref.ref(conns.pop())]
        ws.close()
        del ws
        assert wait_for(lambda: all(ref() is None for ref in refs), TIMEOUT)
    finally:
        gc.enable()


def test_a_stopped_heartbeat_keeps_no_connection_it_watched_for_idleness(
    server: ServerFactory, uri: UriFactory
) -> None:
    """A connection whose handler was out of ``recv()`` at a periodic check is in the
    heartbeat's bookkeeping of counts; once it is closed and the server shut down, the
    stopped heartbeat thread keeps nothing of it, and reference counting frees it."""
    refs: list[weakref.ref[syncws.ServerConnection]] = []
    recorded = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        refs.append(weakref.ref(ws))
        ws.send("hi")
        # Out of recv() until a periodic check has recorded the connection.
        wait_for(lambda: ws in ws.server._heartbeat._recv_counts, TIMEOUT)
        recorded.set()

    srv = server(handler, ping_interval=None)
    heartbeat = srv._heartbeat
    gc.collect()
    gc.disable()
    try:
        with syncws.connect(uri(srv), ping_interval=None) as ws:
            assert ws.recv(timeout=TIMEOUT) == "hi"
            assert recorded.wait(TIMEOUT)
            with pytest.raises(syncws.ConnectionClosedOK):
                ws.recv(timeout=TIMEOUT)  # the handler returned: the server closes
        srv.shutdown(timeout=TIMEOUT)
        assert heartbeat._thread is not None
        heartbeat._thread.join(TIMEOUT)
        assert not heartbeat._thread.is_alive()
        assert heartbeat._recv_counts == {}
        assert wait_for(lambda: refs[0]() is None, TIMEOUT)
    finally:
        gc.enable()


def test_closed_connections_kept_by_deadlines_are_bounded_while_others_live(
    server: ServerFactory, uri: UriFactory
) -> None:
    """While a connection stays open, churned ones are released in batches: the heartbeat
    never keeps more than _COMPACT_AFTER closed connections for their pending pings."""
    srv = server(ping_interval=20, ping_timeout=20)
    with syncws.connect(uri(srv), ping_interval=None) as staying:
        for _ in range(3 * _COMPACT_AFTER):
            with syncws.connect(uri(srv), ping_interval=None) as ws:
                ws.send("x")
                assert ws.recv(timeout=TIMEOUT) == "x"
        del ws
        assert wait_for(lambda: len(_live(syncws.ServerConnection)) <= 1 + _COMPACT_AFTER + 2, 3)
        staying.send("still here")
        assert staying.recv(timeout=TIMEOUT) == "still here"


def test_closing_handshake_started_after_removal_keeps_nothing(
    server: ServerFactory, uri: UriFactory
) -> None:
    """A connection whose closing handshake is registered after it was finalized and
    removed (a close racing with the peer's EOF) is not remembered by the heartbeat."""
    srv = server()
    ws = syncws.connect(uri(srv))
    ws.close()
    client_heartbeat().expect_close(ws)  # what the losing side of the race does
    del ws
    assert wait_for(lambda: not _live(syncws.ClientConnection), 3)


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux's")
def test_the_epoll_wrapper_refuses_changes_once_closed() -> None:
    """The heartbeat's epoll wrapper (changes with the GIL held) asks the epoll for its
    number at each change: once closed, a change is refused, instead of reaching whatever
    descriptor took that number since (found by a review)."""
    selector = _make_selector()
    a, b = socket.socketpair()
    with a, b:
        selector.register(a, selectors.EVENT_READ)
        selector.unregister(a)
        epoll = selector._selector  # type: ignore[attr-defined]
        selector.close()
        with contextlib.ExitStack() as reused:
            # Descriptors opened now may take the closed epoll's number.
            for _ in range(4):
                reused.enter_context(select.epoll())
            with pytest.raises(ValueError):
                epoll.register(a.fileno(), selectors.EVENT_READ)
