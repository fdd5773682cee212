"""Loopback tests of the server's handlers and the connections they hold.

A handler that raises (also SystemExit) closes with 1011 and is logged; one that returns
closes with 1000; either way its pool thread serves again; max_connections busy handlers
make the next handshake get 503. A connection is listed once connect() returns, has a
stable id, takes the application's attributes, runs its close callbacks once, and holds
no message queue nor compression lock while idle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from conftest import ServerFactory
from rawws import wait_for
from server_helpers import Uri
from timing import TIMEOUT

import syncws


def blocking_handler(
    release: threading.Event, entered: threading.Semaphore | None = None
) -> Callable[[syncws.ServerConnection], None]:
    """A handler that waits (bounded) until ``release`` is set, then returns."""

    def handler(ws: syncws.ServerConnection) -> None:
        if entered is not None:
            entered.release()
        release.wait(TIMEOUT)

    return handler


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event that blocked handlers wait for; set at teardown so they always end."""
    event = threading.Event()
    yield event
    event.set()


# Handler outcomes.


@pytest.mark.parametrize("error", [RuntimeError, SystemExit])
def test_handler_exception_closes_with_1011_and_is_logged(
    server: ServerFactory, caplog: pytest.LogCaptureFixture, uri: Uri, error: type[BaseException]
) -> None:
    """A handler that raises closes with 1011, logs the traceback; the server goes on, with
    its pool thread. Also for SystemExit, which a handler may raise (``sys.exit()``): in a
    pool thread it must not leave the connection open nor the thread dead and counted."""

    def handler(ws: syncws.ServerConnection) -> None:
        message = ws.recv()
        if message == "boom":
            raise error("boom from the handler")
        ws.send(message)

    caplog.set_level(logging.ERROR, logger="syncws.server")
    srv = server(handler, max_connections=1)
    with syncws.connect(uri(srv)) as ws:
        ws.send("boom")
        with pytest.raises(syncws.ConnectionClosedError) as excinfo:
            ws.recv(timeout=TIMEOUT)
    assert excinfo.value.rcvd is not None
    assert excinfo.value.rcvd.code == 1011
    records = [
        r for r in caplog.records if r.name == "syncws.server" and r.levelno == logging.ERROR
    ]
    assert records, "the handler's exception was not logged at ERROR"
    assert any(
        r.exc_info is not None and "boom from the handler" in str(r.exc_info[1]) for r in records
    )
    with connect_when_pool_frees(uri(srv)) as ws:
        ws.send("still serving")
        assert ws.recv(timeout=TIMEOUT) == "still serving"


def connect_when_pool_frees(address: str) -> syncws.ClientConnection:
    """Connect, retrying HTTP 503 for a bounded time.

    The server sends its close frame from the pool thread just before that thread returns
    to the pool, so a client that reconnects the instant it sees the close can still find
    the pool full for a few microseconds. A thread that is never released fails this.
    """
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            return syncws.connect(address, open_timeout=TIMEOUT)
        except syncws.InvalidStatus as exc:
            if exc.response.status_code != 503 or time.monotonic() > deadline:
                raise


def test_handler_return_closes_with_1000_and_releases_thread(
    server: ServerFactory, uri: Uri
) -> None:
    """When the handler returns, the client sees 1000 and the pool thread serves again."""
    served = threading.Semaphore(0)

    def handler(ws: syncws.ServerConnection) -> None:
        ws.send("bye")
        served.release()

    srv = server(handler, max_connections=1)
    for _ in range(3):
        with connect_when_pool_frees(uri(srv)) as ws:
            assert ws.recv(timeout=TIMEOUT) == "bye"
            with pytest.raises(syncws.ConnectionClosedOK) as excinfo:
                ws.recv(timeout=TIMEOUT)
        assert excinfo.value.rcvd is not None
        assert excinfo.value.rcvd.code == 1000
        assert served.acquire(timeout=TIMEOUT)


def test_max_connections_answers_503_when_full(
    server: ServerFactory, release: threading.Event, uri: Uri
) -> None:
    """With max_connections handlers busy, one more handshake gets HTTP 503."""
    n = 3
    srv = server(blocking_handler(release), max_connections=n)
    clients = [syncws.connect(uri(srv)) for _ in range(n)]
    try:
        with pytest.raises(syncws.InvalidStatus) as excinfo:
            syncws.connect(uri(srv), open_timeout=TIMEOUT)
        assert excinfo.value.response.status_code == 503
    finally:
        release.set()
        for ws in clients:
            ws.close()
    for ws in clients:
        assert ws.close_code == 1000


def test_idle_connection_makes_no_queue_or_compression_lock(
    server: ServerFactory, uri: Uri
) -> None:
    """An open connection whose messages are all received as they arrive holds no message
    queue and, without compression, no compression lock; a keepalive ping waits for its
    pong without an Event. The queue works once needed."""
    conns: list[syncws.ServerConnection] = []
    released = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        conns.append(ws)
        assert ws.recv() == "first"
        ws.send("ok")
        released.wait(TIMEOUT)  # not reading: the next messages are queued
        for message in ws:
            ws.send(message)

    srv = server(handler, compression=None)
    with syncws.connect(uri(srv)) as ws:
        ws.send("first")
        assert ws.recv(timeout=TIMEOUT) == "ok"
        conn = conns[0]
        assert conn._writer._encode_lock is None
        payload = conn.hb_ping()  # what the heartbeat thread calls
        assert payload is not None and conn._pings._waiting[payload][1] is None
        assert wait_for(lambda: not conn._pings and conn.latency > 0, TIMEOUT)  # the pong came
        assert conn._inbox.messages is None
        ws.send("queued")
        assert wait_for(lambda: conn._inbox.messages is not None, TIMEOUT)
        released.set()
        assert ws.recv(timeout=TIMEOUT) == "queued"


def test_handlers_can_attach_attributes_to_their_connection(
    server: ServerFactory, uri: Uri
) -> None:
    """Connections use __slots__ for their own state, but keep an instance dict for the
    application's attributes (a chat room's name, a user id...)."""
    rooms: list[str] = []

    def handler(ws: syncws.ServerConnection) -> None:
        ws.room = ws.recv()  # type: ignore[attr-defined]
        rooms.append(ws.room)  # type: ignore[attr-defined]
        ws.send("joined")

    srv = server(handler)
    with syncws.connect(uri(srv)) as ws:
        ws.send("lobby")
        assert ws.recv(timeout=TIMEOUT) == "joined"
        ws.note = "client side too"  # type: ignore[attr-defined]
    assert rooms == ["lobby"]


def test_a_connected_client_is_listed_and_reached_by_broadcast_at_once(
    server: ServerFactory, uri: Uri
) -> None:
    """Once connect() returns, the server lists the connection: it is registered before
    the 101 goes out, and a broadcast meanwhile is queued behind the 101."""
    srv = server(lambda ws: ws.recv())
    for i in range(30):
        with syncws.connect(uri(srv)) as ws:
            listed = srv.connections
            assert len(listed) == 1, f"attempt {i}: not listed yet"
            syncws.broadcast(listed, f"hello {i}")
            assert ws.recv(timeout=TIMEOUT) == f"hello {i}"
        assert wait_for_count(srv, 0)


def wait_for_count(srv: syncws.Server, n: int) -> bool:
    deadline = time.monotonic() + TIMEOUT
    while len(srv.connections) != n and time.monotonic() < deadline:
        time.sleep(0.005)
    return len(srv.connections) == n


def test_connection_ids_are_stable_and_unique(server: ServerFactory, uri: Uri) -> None:
    """ids are made on first use: the same one every time, a different one per connection."""
    ids: list[object] = []

    def handler(ws: syncws.ServerConnection) -> None:
        ids.append(ws.id)
        ids.append(ws.id)
        ws.recv()

    srv = server(handler)
    for _ in range(2):
        with syncws.connect(uri(srv)) as ws:
            assert ws.id == ws.id
            assert wait_for_count(srv, 1)
        assert wait_for_count(srv, 0)
    assert ids[0] is ids[1] and ids[2] is ids[3] and ids[0] != ids[2]


def test_close_callbacks_run_once_the_connection_is_closed(
    server: ServerFactory, uri: Uri, caplog: pytest.LogCaptureFixture
) -> None:
    """Callbacks registered with _call_when_closed run once, after the close, in order; one
    that raises is logged and does not stop the others; a closed connection refuses more."""
    srv = server()
    calls: list[str] = []
    with syncws.connect(uri(srv)):
        assert wait_for(lambda: len(srv.connections) == 1, TIMEOUT)
        (conn,) = srv.connections
        assert conn._call_when_closed(lambda: calls.append("first"))
        assert conn._call_when_closed(lambda: 1 / 0)
        assert conn._call_when_closed(lambda: calls.append("last"))
        assert calls == []
    assert wait_for(lambda: calls == ["first", "last"], TIMEOUT)
    assert "a close callback failed" in caplog.text
    assert not conn._call_when_closed(lambda: calls.append("late"))
    assert calls == ["first", "last"]
