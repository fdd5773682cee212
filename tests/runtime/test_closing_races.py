"""Regression tests for races around closing, found in review: each failed before its fix."""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from conftest import ServerFactory
from rawws import FrameReader, close_frame, frame, raw_client, raw_server, wait_for
from timing import TIMEOUT

import syncws
from syncws.protocol.events import State
from syncws.runtime.transport import Transport

UriFactory = Callable[..., str]


def test_send_waiting_for_an_unfinishable_write_raises_once_closed(
    server: ServerFactory,
) -> None:
    """A send() waiting for the writer token, held by a non-blocking write the peer never
    reads, raises ConnectionClosed when the peer closes, instead of waiting forever."""
    outcome: list[BaseException | str] = []
    pending = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        syncws.broadcast([ws], b"x" * (4 << 20))  # leaves an unwritten tail: peer not reading
        pending.set()
        try:
            ws.send("after")
            outcome.append("returned")
        except BaseException as exc:
            outcome.append(exc)

    srv = server(handler, ping_interval=None, compression=None, close_timeout=2)
    sock, _ = raw_client(srv, "/", rcvbuf=4096)
    with sock:
        assert pending.wait(TIMEOUT)
        # The handler is now blocked in send(), waiting for the token; then the peer closes.
        assert wait_for(
            lambda: any(c._writer.token._waiters for c in srv._open_connections.listed()), TIMEOUT
        )
        sock.sendall(frame(0x8, struct.pack("!H", 1000), mask=True))
        assert wait_for(lambda: outcome, TIMEOUT), "send() is still blocked"
    assert isinstance(outcome[0], syncws.ConnectionClosed)
    assert wait_for(lambda: srv._pool.busy == 0, TIMEOUT)


@pytest.mark.parametrize("fragmented", [False, True])
def test_messages_after_the_handler_returned_are_dropped_not_queued(
    server: ServerFactory, caplog: pytest.LogCaptureFixture, fragmented: bool
) -> None:
    """A peer that keeps sending after the server's close frame cannot grow the server's
    memory: nobody will read those messages, so they are dropped (and counted in a log),
    fragmented ones too (they were queued, issue 18)."""
    caplog.set_level(logging.INFO, logger="syncws.server")
    connections: list[syncws.ServerConnection] = []

    def handler(ws: syncws.ServerConnection) -> None:
        connections.append(ws)  # and return at once: the server starts closing

    srv = server(handler, ping_interval=None, compression=None, close_timeout=1)
    sock, _ = raw_client(srv)
    with sock:
        assert wait_for(lambda: connections, TIMEOUT)
        if fragmented:
            message = frame(0x2, b"y" * 512, mask=True, fin=False) + frame(
                0x0, b"z" * 512, mask=True
            )
        else:
            message = frame(0x2, b"y" * 1024, mask=True)
        chunk = message * 64
        deadline = time.monotonic() + 0.5
        try:
            while time.monotonic() < deadline:
                sock.sendall(chunk)
        except OSError:
            pass  # the server closed the connection meanwhile
        (conn,) = connections
        assert len(conn._inbox.messages or ()) == 0
        assert conn.wait_closed(TIMEOUT)
    assert any("dropped" in r.getMessage() for r in caplog.records)


def test_connections_can_be_listed_while_clients_come_and_go(
    server: ServerFactory, uri: UriFactory
) -> None:
    """server.connections never fails while connections open and close in other threads."""
    srv = server()
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            with syncws.connect(uri(srv)):
                pass

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            srv.connections  # noqa: B018 - raised "set changed size during iteration"
    finally:
        stop.set()
        for thread in threads:
            thread.join(2 * TIMEOUT)


def test_recv_after_close_from_another_thread_raises_connection_closed(
    server: ServerFactory, uri: UriFactory
) -> None:
    """When another thread closes the connection while the handler is busy, the handler's
    next recv() raises ConnectionClosedOK, not ConcurrencyError."""
    outcome: list[BaseException] = []
    got_first = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        ws.recv()
        got_first.set()
        # Busy with the message while another thread closes; the client is busy too, so
        # its answer to the close frame takes a while.
        assert wait_for(lambda: ws.state is not syncws.State.OPEN, TIMEOUT)
        try:
            ws.recv()
        except BaseException as exc:
            outcome.append(exc)

    srv = server(handler, ping_interval=None)
    with syncws.connect(uri(srv), ping_interval=None) as client:
        client.send("first")
        assert got_first.wait(TIMEOUT)
        (conn,) = srv.connections
        closer = threading.Thread(target=conn.close)
        closer.start()
        assert wait_for(lambda: outcome, TIMEOUT)
        closer.join(TIMEOUT)
    assert isinstance(outcome[0], syncws.ConnectionClosedOK)


def test_aborted_connection_with_a_full_queue_closes(server: ServerFactory) -> None:
    """A connection that failed while its queue was full (the handler does not read) still
    reads its EOF and closes, instead of staying open until the handler returns."""
    connections: list[syncws.ServerConnection] = []
    release = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        connections.append(ws)
        release.wait(2 * TIMEOUT)

    srv = server(handler, ping_interval=None, max_queue=4, compression=None)
    sock, _ = raw_client(srv)
    try:
        for _ in range(10):
            sock.sendall(frame(0x1, b"message", mask=True))
        assert wait_for(
            lambda: connections and len(connections[0]._inbox.messages or ()) >= 4, TIMEOUT
        )
        sock.sendall(frame(0x8, struct.pack("!H", 1000), mask=True))
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        (conn,) = connections
        conn._abort()  # what a failed write does
        assert conn.wait_closed(TIMEOUT)
        assert conn not in srv.connections
    finally:
        release.set()


def test_messages_read_together_with_the_peers_close_are_all_delivered(
    server: ServerFactory,
) -> None:
    """Messages that arrive in the same read as the peer's close frame, before it, were
    sent while the connection was open: none is dropped, however many exceed max_queue."""
    received: list[bytes | str] = []
    outcome: list[BaseException] = []
    ready = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        assert ready.wait(TIMEOUT)
        time.sleep(0.05)  # let all the bytes arrive, so that one read takes them all
        try:
            while True:
                received.append(ws.recv(timeout=TIMEOUT))
        except BaseException as exc:
            outcome.append(exc)

    srv = server(handler, ping_interval=None, compression=None, max_queue=4)
    sock, _ = raw_client(srv)
    with sock:
        messages = [f"m{i}".encode() for i in range(20)]
        sock.sendall(
            b"".join(frame(0x2, m, mask=True) for m in messages)
            + frame(0x8, struct.pack("!H", 1000), mask=True)
        )
        ready.set()
        assert wait_for(lambda: outcome, TIMEOUT)
    assert received == messages
    assert isinstance(outcome[0], syncws.ConnectionClosedOK)


def test_shutdown_while_the_101_is_being_written_closes_with_1001(
    server: ServerFactory, uri: UriFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection is listed before its 101 goes out, so shutdown() may start closing it
    then: the client must still get the 101, then a close frame with 1001 (it got 1006 when
    the server took the connection for a rejected handshake)."""
    srv = server(lambda ws: ws.recv())
    real_send = Transport.send

    def send(self: Transport, wire: bytes | memoryview, deadline: float | None = None) -> None:
        if bytes(wire[:12]) == b"HTTP/1.1 101":
            threading.Thread(target=srv.shutdown).start()
            closing = lambda: any(c.state is State.CLOSING for c in srv._open_connections.listed())  # noqa: E731
            assert wait_for(closing, TIMEOUT)
        real_send(self, wire, deadline)

    monkeypatch.setattr(Transport, "send", send)
    with syncws.connect(uri(srv)) as ws:
        with pytest.raises(syncws.ConnectionClosed):
            ws.recv(TIMEOUT)
        assert ws.close_code == 1001


def test_send_while_the_101_is_being_written_goes_out_after_it(
    server: ServerFactory, uri: UriFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send() to a connection taken from server.connections while its 101 is being
    written waits for the 101, then goes out: it hung until the client left, because the
    handshake gave the writer token back without waking it (issue 18)."""
    srv = server(lambda ws: ws.recv())
    real_send = Transport.send
    sent: list[float] = []

    def send_later(conn: syncws.ServerConnection) -> None:
        start = time.monotonic()
        conn.send("first")
        sent.append(time.monotonic() - start)

    def send(self: Transport, wire: bytes | memoryview, deadline: float | None = None) -> None:
        if bytes(wire[:12]) == b"HTTP/1.1 101":
            (conn,) = srv.connections
            threading.Thread(target=send_later, args=(conn,)).start()
            time.sleep(0.3)  # the send() above waits for the writer token meanwhile
        real_send(self, wire, deadline)

    monkeypatch.setattr(Transport, "send", send)
    with syncws.connect(uri(srv)) as ws:
        assert ws.recv(timeout=TIMEOUT) == "first"
        assert wait_for(lambda: sent, TIMEOUT)
        assert sent[0] < 1.5


def test_shutdown_does_not_wait_for_a_connection_whose_101_failed(
    server: ServerFactory, uri: UriFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that shutdown() listed, and whose 101 then failed to go out, is closed
    at once: shutdown() waited close_timeout for it (found by a review)."""
    srv = server(lambda ws: ws.recv(), close_timeout=5)
    real_send = Transport.send
    took: list[float] = []

    def shut_down() -> None:
        start = time.monotonic()
        srv.shutdown()
        took.append(time.monotonic() - start)

    def send(self: Transport, wire: bytes | memoryview, deadline: float | None = None) -> None:
        if bytes(wire[:12]) == b"HTTP/1.1 101":
            threading.Thread(target=shut_down).start()
            closing = lambda: any(c.state is State.CLOSING for c in srv._open_connections.listed())  # noqa: E731
            assert wait_for(closing, TIMEOUT)  # shutdown() has listed it
            raise ConnectionResetError("the client left")
        real_send(self, wire, deadline)

    monkeypatch.setattr(Transport, "send", send)
    with pytest.raises((syncws.InvalidHandshake, OSError)):
        syncws.connect(uri(srv), open_timeout=TIMEOUT)
    assert wait_for(lambda: took, 2 * TIMEOUT)
    assert took[0] < 3


def _close_in_a_thread(conn: syncws.Connection) -> tuple[threading.Thread, list[float]]:
    """Start ``conn.close()`` in a thread of its own (so that a close() that hangs fails the
    test instead of blocking it); the list gets the seconds close() took."""
    took: list[float] = []

    def close() -> None:
        start = time.monotonic()
        conn.close()
        took.append(time.monotonic() - start)

    closer = threading.Thread(target=close)
    closer.start()
    return closer, took


def test_close_does_not_wait_for_a_send_blocked_on_the_peer(
    server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """close() from another thread while send() of a large message is blocked on a peer
    that does not read returns within close_timeout (it waited for the send, with no
    write_timeout forever), logs the timeout at INFO, and the blocked send() raises
    ConnectionClosedError."""
    caplog.set_level(logging.INFO, logger="syncws.server")
    outcome: list[BaseException | str] = []

    def handler(ws: syncws.ServerConnection) -> None:
        try:
            ws.send(b"x" * (16 << 20))
            outcome.append("returned")
        except BaseException as exc:
            outcome.append(exc)

    srv = server(
        handler, ping_interval=None, write_timeout=None, close_timeout=0.5, compression=None
    )
    sock, _ = raw_client(srv, rcvbuf=4096)
    closer: threading.Thread | None = None
    try:
        assert wait_for(
            lambda: any(c._writer.token.owner for c in srv._open_connections.listed()), TIMEOUT
        )
        (conn,) = srv.connections
        closer, took = _close_in_a_thread(conn)
        closer.join(TIMEOUT)
        assert not closer.is_alive(), "close() waited for the blocked send()"
        assert took[0] < 2.0
        assert wait_for(lambda: outcome, TIMEOUT), "send() is still blocked"
        assert isinstance(outcome[0], syncws.ConnectionClosedError)
        assert conn.wait_closed(TIMEOUT)
        assert conn.close_code == 1006
        assert wait_for(lambda: srv._pool.busy == 0, TIMEOUT)
        timed_out = [r for r in caplog.records if "closing handshake timed out" in r.message]
        assert [r.levelno for r in timed_out] == [logging.INFO]
    finally:
        sock.close()  # unblocks everything if close() did hang
        if closer is not None:
            closer.join(TIMEOUT)


def test_ping_and_pong_do_not_wait_for_a_send_blocked_on_the_peer(
    server: ServerFactory,
) -> None:
    """ping() and pong() from another thread while send() of a large message is blocked on
    a peer that does not read return at once (with no write_timeout they waited forever);
    their frames go out after the message once the peer reads, never inside it."""
    size = 16 << 20
    sending, sent = threading.Event(), threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        sending.set()
        ws.send(b"x" * size)
        sent.set()
        for _ in ws:
            pass

    srv = server(handler, ping_interval=None, write_timeout=None, compression=None)
    sock, rest = raw_client(srv, rcvbuf=4096)
    with sock:
        assert sending.wait(TIMEOUT)
        (conn,) = srv.connections
        # Blocked in send() (not writing the 101 any more, which also holds the token).
        assert wait_for(lambda: conn._writer.token.owner and not sent.is_set(), TIMEOUT)
        time.sleep(0.2)
        assert conn._writer.token.owner and not sent.is_set()
        done: list[threading.Event] = []

        def control() -> None:
            done.append(conn.ping(b"p1"))
            conn.pong(b"u1")

        thread = threading.Thread(target=control, daemon=True)
        thread.start()
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "ping() or pong() waited for the blocked send()"
        assert not sent.is_set()
        reader = FrameReader(sock, rest)
        assert reader.read() == (2, b"x" * size)
        assert reader.read() == (9, b"p1")
        assert reader.read() == (10, b"u1")
        assert sent.wait(TIMEOUT)
        assert not done[0].is_set()  # no pong came for it


def test_close_does_not_wait_for_a_tail_left_by_broadcast(server: ServerFactory) -> None:
    """close() after broadcast() left the heartbeat holding an unwritten tail (the peer
    does not read) returns within close_timeout, the tail and the close frame unwritten."""
    took: list[float] = []
    held: list[bool] = []

    def handler(ws: syncws.ServerConnection) -> None:
        syncws.broadcast([ws], b"x" * (4 << 20))  # leaves an unwritten tail: peer not reading
        held.append(ws._writer.token.tail is not None)
        start = time.monotonic()
        ws.close()
        took.append(time.monotonic() - start)

    srv = server(
        handler, ping_interval=None, write_timeout=None, close_timeout=0.5, compression=None
    )
    sock, _ = raw_client(srv, rcvbuf=4096)
    with sock:
        assert wait_for(lambda: took, TIMEOUT), "close() waited for the heartbeat's write"
        assert held == [True]
        assert took[0] < 2.0
        assert wait_for(lambda: srv._pool.busy == 0, TIMEOUT)
        assert wait_for(lambda: not srv.connections, TIMEOUT)


def test_close_during_a_fragmented_send_goes_between_fragments(server: ServerFactory) -> None:
    """close() from another thread while a fragmented message is being sent (its sender
    holds the send mutex between fragments) sends the close frame at once, between two
    fragments, completes the closing handshake, and the sender's next fragment raises
    ConnectionClosed."""
    paused = threading.Event()
    resume = threading.Event()
    outcome: list[BaseException | str] = []

    def fragments() -> Iterator[bytes]:
        yield b"first"
        paused.set()
        resume.wait(2 * TIMEOUT)
        yield b"second"

    def handler(ws: syncws.ServerConnection) -> None:
        try:
            ws.send(fragments())
            outcome.append("returned")
        except BaseException as exc:
            outcome.append(exc)

    srv = server(handler, ping_interval=None, close_timeout=2, compression=None)
    sock, rest = raw_client(srv)
    sock.settimeout(TIMEOUT)
    closer: threading.Thread | None = None
    try:
        assert paused.wait(TIMEOUT)
        (conn,) = srv.connections
        closer, took = _close_in_a_thread(conn)
        reader = FrameReader(sock, rest)
        assert reader.read() == (0x2, b"first")
        assert reader.read() == (0x8, struct.pack("!H", 1000))  # before the message ends
        sock.sendall(close_frame(1000, mask=True))
        assert reader.read_until_eof() == []
        closer.join(TIMEOUT)
        assert not closer.is_alive(), "close() waited for the fragmented message"
        assert took[0] < 1.5
        assert conn.close_code == 1000
        resume.set()
        assert wait_for(lambda: outcome, TIMEOUT)
        assert isinstance(outcome[0], syncws.ConnectionClosed)
    finally:
        resume.set()
        sock.close()
        if closer is not None:
            closer.join(TIMEOUT)


def test_leaving_a_client_with_block_does_not_wait_for_a_blocked_send() -> None:
    """Leaving ``with connect(...)`` while another thread's send() is blocked on a server
    that does not read returns within close_timeout, and that send() raises
    ConnectionClosedError."""
    release = threading.Event()
    outcome: list[BaseException | str] = []

    def never_read(sock: socket.socket, rest: bytes) -> None:
        release.wait(2 * TIMEOUT)  # a client close() that hangs is released here: the test fails
        sock.close()  # with unread input: a reset, which fails the client's write

    with raw_server(never_read) as ws_uri:
        try:
            options = {"ping_interval": None, "write_timeout": None, "close_timeout": 0.5}
            with syncws.connect(ws_uri, compression=None, **options) as ws:

                def send() -> None:
                    try:
                        ws.send(b"x" * (16 << 20))
                        outcome.append("returned")
                    except BaseException as exc:
                        outcome.append(exc)

                sender = threading.Thread(target=send)
                sender.start()
                assert wait_for(lambda: ws._writer.token.owner, TIMEOUT)
                start = time.monotonic()
            elapsed = time.monotonic() - start
        finally:
            release.set()
        sender.join(TIMEOUT)
        assert not sender.is_alive(), "send() is still blocked"
    assert elapsed < 2.0, "close() waited for the blocked send()"
    assert isinstance(outcome[0], syncws.ConnectionClosedError)
    assert ws.close_code == 1006


def test_a_closing_timeout_is_logged_once_whoever_finds_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """close() and the heartbeat's close deadline can both find a closing handshake over
    time: it is logged and aborted once (CI saw the line twice)."""
    caplog.set_level(logging.INFO, logger="syncws.client")
    with raw_server(lambda sock, rest: None) as ws_uri:  # never answers the close
        ws = syncws.connect(ws_uri, close_timeout=0.2, ping_interval=None)
        finders = [threading.Thread(target=ws.hb_close_timed_out) for _ in range(4)]
        for finder in finders:
            finder.start()
        for finder in finders:
            finder.join(TIMEOUT)
        assert ws.wait_closed(TIMEOUT)
        ws.close()  # closed already: no closing handshake to time out
    timed_out = [r for r in caplog.records if "closing handshake timed out" in r.message]
    assert len(timed_out) == 1
