"""Tests for syncws.broadcast: many connections, many broadcasters, slow peers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest
from conftest import ServerFactory
from rawws import raw_client
from timing import TIMEOUT

import syncws

UriFactory = Callable[..., str]


def hold(ws: syncws.ServerConnection) -> None:
    """A handler that reads until the client closes (broadcasts come from the test)."""
    for _ in ws:
        pass


def wait_connections(server: syncws.Server, count: int) -> set[syncws.ServerConnection]:
    deadline = time.monotonic() + TIMEOUT
    while len(server.connections) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    connections = server.connections
    assert len(connections) == count
    return connections


def test_broadcast_reaches_every_connection(server: ServerFactory, uri: UriFactory) -> None:
    """Every open connection gets the message once; the count of recipients is returned."""
    srv = server(hold)
    clients = [syncws.connect(uri(srv)) for _ in range(5)]
    try:
        connections = wait_connections(srv, 5)
        assert syncws.broadcast(connections, "hello") == 5
        assert syncws.broadcast(connections, b"\x00\x01") == 5
        for client in clients:
            assert client.recv(timeout=TIMEOUT) == "hello"
            assert client.recv(timeout=TIMEOUT) == b"\x00\x01"
    finally:
        for client in clients:
            client.close()


def test_concurrent_broadcasts_lose_nothing(server: ServerFactory, uri: UriFactory) -> None:
    """Several threads broadcasting at once to the same connections lose no message."""
    srv = server(hold)
    clients = [syncws.connect(uri(srv)) for _ in range(4)]
    threads_count, per_thread = 4, 100
    try:
        connections = wait_connections(srv, 4)
        sent = []

        def sender(index: int) -> None:
            for n in range(per_thread):
                sent.append(syncws.broadcast(connections, f"{index}:{n}"))

        threads = [threading.Thread(target=sender, args=(i,)) for i in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(2 * TIMEOUT)
        assert sent == [4] * threads_count * per_thread
        for client in clients:
            received = [client.recv(timeout=TIMEOUT) for _ in range(threads_count * per_thread)]
            for index in range(threads_count):
                # Each sender's messages arrive complete and in its order.
                mine = [m for m in received if isinstance(m, str) and m.startswith(f"{index}:")]
                assert mine == [f"{index}:{n}" for n in range(per_thread)]
    finally:
        for client in clients:
            client.close()


def test_slow_peer_is_skipped_without_blocking(
    server: ServerFactory, uri: UriFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer that stops reading is skipped (logged at WARNING); the caller never blocks
    and the other peers get every message."""
    srv = server(hold, compression=None)
    fast = syncws.connect(uri(srv), compression=None)
    slow, _ = raw_client(srv, "/", rcvbuf=4096)
    try:
        connections = wait_connections(srv, 2)
        payload = b"x" * 16384
        start = time.monotonic()
        counts = []
        for _ in range(200):
            counts.append(syncws.broadcast(connections, payload))
            assert fast.recv(timeout=TIMEOUT) == payload
        assert time.monotonic() - start < 5
        assert counts[0] == 2
        assert 1 in counts, "the slow peer was never skipped"
        assert any(
            r.levelno == logging.WARNING and "not keeping up" in r.getMessage()
            for r in caplog.records
        )
    finally:
        slow.close()
        fast.close()


def test_closed_connections_are_skipped_silently(
    server: ServerFactory, uri: UriFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection that closed is skipped without a warning."""
    srv = server(hold)
    client = syncws.connect(uri(srv))
    (conn,) = wait_connections(srv, 1)
    client.close()
    assert conn.wait_closed(TIMEOUT)
    assert syncws.broadcast([conn], "late") == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_broadcast_waits_for_no_fragmented_message(server: ServerFactory, uri: UriFactory) -> None:
    """A connection in the middle of a fragmented send is skipped; its message stays whole."""
    release = threading.Event()
    started = threading.Event()
    connections: list[syncws.ServerConnection] = []

    def fragments():
        yield "a"
        started.set()
        release.wait(TIMEOUT)
        yield "b"

    def handler(ws: syncws.ServerConnection) -> None:
        connections.append(ws)
        ws.send(fragments())
        for _ in ws:
            pass

    srv = server(handler)
    with syncws.connect(uri(srv)) as client:
        assert started.wait(TIMEOUT)
        assert syncws.broadcast(connections, "interloper") == 0
        release.set()
        assert client.recv(timeout=TIMEOUT) == "ab"
        assert syncws.broadcast(connections, "after") == 1
        assert client.recv(timeout=TIMEOUT) == "after"


def test_broadcast_rejects_other_types() -> None:
    """Only str and bytes-like messages can be broadcast."""
    with pytest.raises(TypeError):
        syncws.broadcast([], 42)  # type: ignore[arg-type]
