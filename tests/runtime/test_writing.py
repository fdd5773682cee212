"""The write side (syncws/runtime/writing.py): slow work stays outside the connection lock,
and the writer token.

The heartbeat thread takes each connection's ``_lock`` to read it, ping it or answer it; if
a send held that lock while compressing or encrypting a large message, every connection the
heartbeat serves would wait that long for its pongs. These tests record, at the moment the
compressor or the TLS layer runs, whether the lock is held.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import ServerFactory, tls_contexts
from rawws import wait_for
from timing import TIMEOUT

import syncws
import syncws.runtime.transport as transport_module
from syncws.protocol.frames import Frame
from syncws.runtime.writing import HEARTBEAT, THREAD, WriterToken

Uri = Callable[..., str]


def _spy_compression(ws: syncws.ServerConnection, held: list[bool]) -> None:
    """Record, each time ``ws`` compresses a frame, whether its ``_lock`` is held."""
    (extension,) = ws.protocol.extensions
    encode = extension.encode

    def spy(frame: Frame) -> Frame:
        held.append(ws._lock.locked())
        return encode(frame)

    extension.encode = spy  # type: ignore[method-assign]


def test_send_compresses_outside_the_connection_lock(server: ServerFactory, uri: Uri) -> None:
    held: list[bool] = []
    big = os.urandom(1 << 16).hex()  # compressible: deflate runs and shrinks it

    def handler(ws: syncws.ServerConnection) -> None:
        _spy_compression(ws, held)
        ws.send(big)
        ws.send([big[:10], big[10:]])  # a fragmented message: each frame
        ws.recv()

    srv = server(handler)
    with syncws.connect(uri(srv)) as ws:
        assert ws.recv(timeout=TIMEOUT) == big
        assert ws.recv(timeout=TIMEOUT) == big
    assert held == [False, False, False, False]


def test_broadcast_compresses_outside_the_connection_lock(server: ServerFactory, uri: Uri) -> None:
    held: list[bool] = []
    big = os.urandom(1 << 16).hex()
    ready = threading.Event()
    conns: list[syncws.ServerConnection] = []

    def handler(ws: syncws.ServerConnection) -> None:
        _spy_compression(ws, held)
        conns.append(ws)
        ready.set()
        ws.recv()

    srv = server(handler)
    with syncws.connect(uri(srv)) as ws:
        assert ready.wait(TIMEOUT)
        syncws.broadcast(conns, big)
        assert ws.recv(timeout=TIMEOUT) == big
        syncws.broadcast(conns, "small")  # below min_size: sent as it is, still outside
        assert ws.recv(timeout=TIMEOUT) == "small"
    assert held == [False, False]


def test_tls_encrypts_outside_the_connection_lock(server: ServerFactory) -> None:
    server_ctx, client_ctx = tls_contexts()
    held: list[bool] = []

    def handler(ws: syncws.ServerConnection) -> None:
        transport: Any = ws.transport
        encode = transport.encode

        def spy(data: bytes) -> bytes:
            held.append(ws._lock.locked())
            wire: bytes = encode(data)
            return wire

        transport.encode = spy
        for message in ws:
            ws.send(message)
        ws.ping()  # and a control frame, from this thread

    srv = server(handler, ssl=server_ctx, compression=None)
    with syncws.connect(f"wss://localhost:{srv.port}/", ssl=client_ctx) as ws:
        for message in ("secure", b"\x00" * 100_000):
            ws.send(message)
            assert ws.recv(timeout=TIMEOUT) == message
    assert held and not any(held)


def test_compressed_messages_from_many_threads_and_broadcasts_arrive_intact(
    server: ServerFactory, uri: Uri
) -> None:
    """Compression outside the lock keeps frames in the compressor's order: with context
    takeover, one frame out of order corrupts every later message."""
    per_thread, threads_count = 40, 4
    start = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        def sender(t: int) -> None:
            start.wait(TIMEOUT)
            for i in range(per_thread):
                ws.send(f"{t}:{i}:" + "abc" * (50 * i))

        def broadcaster() -> None:
            start.wait(TIMEOUT)
            for i in range(per_thread):
                syncws.broadcast([ws], f"b:{i}:" + "xyz" * (50 * i))

        threads = [threading.Thread(target=sender, args=(t,)) for t in range(threads_count)]
        threads.append(threading.Thread(target=broadcaster))
        for thread in threads:
            thread.start()
        start.set()
        for thread in threads:
            thread.join(TIMEOUT)
        ws.send("done")
        ws.recv()

    srv = server(handler)
    seen: dict[str, list[int]] = {}
    with syncws.connect(uri(srv)) as ws:
        while (text := ws.recv(timeout=TIMEOUT)) != "done":
            assert isinstance(text, str)
            key, i_str, body = text.split(":", 2)
            i = int(i_str)
            assert body == ("xyz" if key == "b" else "abc") * (50 * i)
            seen.setdefault(key, []).append(i)
    for t in range(threads_count):
        assert seen[str(t)] == list(range(per_thread))
    # broadcast skips a busy peer: what arrived is in order, and nothing is corrupted
    assert seen.get("b", []) == sorted(seen.get("b", []))


def _echo(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def _echo_once(srv: syncws.Server, uri: Uri, *messages: bytes) -> None:
    """Send each message through a new client connection and check its echo."""
    with syncws.connect(uri(srv), compression=None) as ws:
        for message in messages:
            ws.send(message)
            assert ws.recv(timeout=TIMEOUT) == message


def _spy_short_writes(monkeypatch: pytest.MonkeyPatch, convoy: int) -> list[int]:
    """Make send_short() keep the GIL from ``convoy`` open connections on; return the list
    of the sizes it then writes that way. (send_short() gives the C call the socket's
    number; Transport.send_nowait(), which writes close frames and pings with the GIL held
    whatever the number of connections, gives it the socket, and is not counted.)"""
    real = transport_module._send_holding_gil
    if real is None:
        pytest.skip("syncws.runtime._send not built or disabled")
    sizes: list[int] = []

    def spy(sock: int | socket.socket, data: bytes, flags: int) -> int:
        if isinstance(sock, int):
            sizes.append(len(data))
        return real(sock, data, flags)

    monkeypatch.setattr(transport_module, "_holding", transport_module._holding)  # restored
    monkeypatch.setattr(transport_module, "_send_holding_gil", spy)
    monkeypatch.setattr(transport_module, "_CONVOY", convoy)
    transport_module.count_connections(0)  # decide again, with these settings
    return sizes


def test_whole_messages_go_out_through_send_short(
    server: ServerFactory, uri: Uri, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message path's first write is send_short()'s: with enough connections open,
    short frames are written by the C call that keeps the GIL, on both sides, and large
    ones are not."""
    sizes = _spy_short_writes(monkeypatch, convoy=1)
    large = b"L" * (transport_module._SHORT_WRITE + 1)

    _echo_once(server(_echo, compression=None), uri, b"x" * 16, large)
    # 16 B: 22 bytes from the client (masked), 18 from the server; the large message's
    # frames never go through it; the closing handshake's may.
    assert sizes[:2] == [22, 18]
    assert all(size <= transport_module._SHORT_WRITE for size in sizes)


def test_few_connections_release_the_gil_to_write(
    server: ServerFactory, uri: Uri, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below _CONVOY open connections, send_short() lets another thread run while it
    writes: the C call that keeps the GIL is not used."""
    sizes = _spy_short_writes(monkeypatch, convoy=1000)

    _echo_once(server(_echo, compression=None), uri, b"x" * 16)
    assert sizes == []


def test_open_connections_are_counted_until_they_close(server: ServerFactory, uri: Uri) -> None:
    """Both sides of each connection count while open, and no longer once closed."""

    srv = server(_echo, compression=None)
    # Connections of earlier tests may still be closing: wait until the count settles.
    before, deadline = -1, time.monotonic() + TIMEOUT
    while before != transport_module._open_connections and time.monotonic() < deadline:
        before = transport_module._open_connections
        time.sleep(0.2)
    clients = [syncws.connect(uri(srv), compression=None) for _ in range(3)]
    for ws in clients:
        ws.send(b"ping")
        assert ws.recv(timeout=TIMEOUT) == b"ping"
    assert transport_module._open_connections == before + 6
    for ws in clients:
        ws.close()
    deadline = time.monotonic() + TIMEOUT
    while transport_module._open_connections != before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert transport_module._open_connections == before


# The writer token on its own (syncws.runtime.writing.WriterToken).


def test_token_changes_require_the_connection_lock() -> None:
    """The token's changes assert that the connection's lock is held, but for take() and
    release(), which a broadcast calls for each connection; take() asserts the token is
    free."""
    lock = threading.Lock()
    token = WriterToken(lock)
    changes = (lambda: token.keep(memoryview(b"")), token.close, lambda: token.wait(0))
    for change in changes:
        with pytest.raises(AssertionError, match="requires the connection's lock"):
            change()
    with lock:
        token.take()
        with pytest.raises(AssertionError, match="held by a thread"):
            token.take()  # one writer at a time


def test_token_knows_its_owner_and_the_heartbeat_keeps_the_tail() -> None:
    """A thread takes the token; a non-blocking write that leaves a tail hands it to the
    heartbeat, with the tail; a release frees it and forgets the tail."""
    lock = threading.Lock()
    token = WriterToken(lock)
    with lock:
        assert token.owner is None
        token.take()
        assert token.owner == THREAD
        token.keep(memoryview(b"tail"))
        assert token.owner == HEARTBEAT and token.tail == b"tail"
        token.keep(memoryview(b"il"))  # the heartbeat wrote some of it
        assert token.owner == HEARTBEAT and token.tail == b"il"
        token.release()
        assert token.owner is None and token.tail is None


def test_token_release_and_close_wake_the_threads_waiting_for_it() -> None:
    """A thread waiting for the token wakes as soon as it is released, and a thread that
    waits again wakes when the connection closes, which drops the heartbeat's tail."""
    lock = threading.Lock()
    token = WriterToken(lock)
    woken: list[tuple[str | None, bool]] = []

    def waiter() -> None:
        with lock:
            token.wait(TIMEOUT)
            woken.append((token.owner, token.closed))

    with lock:
        token.take()
    for expected in ((None, False), (HEARTBEAT, True)):
        thread = threading.Thread(target=waiter)
        thread.start()
        assert wait_for(lambda: token._waiters, TIMEOUT)
        with lock:
            if expected[0] is None:
                token.release()
            else:
                token.take()
                token.keep(memoryview(b"never written"))
                token.close()
        thread.join(TIMEOUT)
        assert woken.pop() == expected
    assert token.tail is None


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_send_after_close_does_not_wait_for_a_fragmented_send(
    server: ServerFactory, uri: Uri, compression: str | None
) -> None:
    """A whole message sent on a closed connection raises at once, even while another
    thread's fragmented message is stuck in its iterator: it must not wait for that
    message's end (the send mutex), which may never come."""

    def close_on_go(ws: syncws.ServerConnection) -> None:
        ws.recv()

    srv = server(close_on_go, compression=compression)
    ws = syncws.connect(uri(srv), compression=compression, ping_interval=None)
    more = threading.Event()

    def fragments() -> Any:
        yield "first"
        more.wait(TIMEOUT)  # a producer with nothing more for now
        yield "last"

    sender = threading.Thread(target=lambda: _ignore_closed(ws.send, fragments()))
    try:
        ws.send("go")
        sender.start()
        assert wait_for(lambda: ws.protocol.sending_fragments, TIMEOUT)
        assert ws.wait_closed(TIMEOUT)  # the handler returned: the server closed
        started = time.monotonic()
        with pytest.raises(syncws.ConnectionClosed):
            ws.send("after the close")
        assert time.monotonic() - started < 1
    finally:
        more.set()
        sender.join(TIMEOUT)


def _ignore_closed(send: Callable[[Any], None], message: Any) -> None:
    try:
        send(message)
    except syncws.ConnectionClosed:
        pass
