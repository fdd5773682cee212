"""Loopback tests of the server's shutdown(), and of ``with Server(...)``.

shutdown() closes every connection with 1001, returns within its timeout despite a silent
peer, a handler blocked sending or one busy outside syncws; it answers handshakes still in
progress or waiting for their request with 503 at once (TLS ones too), closes one that
ends during the shutdown, and leaves no thread behind.
"""

from __future__ import annotations

import base64
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable

import pytest
from conftest import ServerFactory, tls_contexts
from server_helpers import (
    FrameReader,
    Uri,
    assert_threads_end,
    close_code,
    raw_connect,
    raw_handshake,
    read_until_eof,
)
from timing import TIMEOUT

import syncws
from syncws.protocol.frames import Opcode


def wait_for_busy_pool(srv: syncws.Server) -> list[threading.Thread]:
    """Wait (bounded) until a pool thread has taken a connection; return the pool's threads.

    Only a handshake the server has accepted is "in progress"; one still in the kernel's
    backlog is reset when the listening socket closes.
    """
    deadline = time.monotonic() + TIMEOUT
    while srv._pool.busy == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv._pool.busy == 1
    return list(srv._pool._threads)


def assert_closed_ok(ws: syncws.ClientConnection, code: int) -> None:
    """The client's next recv() raises ConnectionClosedOK: the server closed with ``code``."""
    with pytest.raises(syncws.ConnectionClosedOK) as excinfo:
        ws.recv(timeout=TIMEOUT)
    assert excinfo.value.rcvd is not None
    assert excinfo.value.rcvd.code == code


# Shutdown.


def test_shutdown_closes_connections_with_1001(server: ServerFactory, uri: Uri) -> None:
    """shutdown() closes every open connection with 1001 (going away)."""
    srv = server()
    clients = [syncws.connect(uri(srv)) for _ in range(3)]
    try:
        for ws in clients:  # every handler is running
            ws.send("ping")
            assert ws.recv(timeout=TIMEOUT) == "ping"
        # Shut down from another thread while the clients read, as they would in real life.
        stopper = threading.Thread(target=srv.shutdown, kwargs={"timeout": TIMEOUT})
        stopper.start()
        for ws in clients:
            assert_closed_ok(ws, 1001)
        stopper.join(TIMEOUT)
        assert not stopper.is_alive(), "shutdown() did not return"
        assert srv.connections == set()
    finally:
        for ws in clients:
            ws.close()


def test_shutdown_returns_within_timeout_despite_silent_peer(
    server: ServerFactory, uri: Uri
) -> None:
    """shutdown(timeout) returns in time even when a peer never answers the close."""
    timeout = 1.0
    srv = server()
    sock, rest = raw_handshake(srv)
    with sock, syncws.connect(uri(srv)) as ws:
        ws.send("ready")
        assert ws.recv(timeout=TIMEOUT) == "ready"
        start = time.monotonic()
        srv.shutdown(timeout=timeout)
        elapsed = time.monotonic() - start
        assert elapsed < timeout + 1.5, f"shutdown took {elapsed:.2f}s"
        # The silent peer got a 1001 close frame all the same.
        opcode, payload = FrameReader(sock, rest).frame()
        assert opcode == Opcode.CLOSE
        assert close_code(payload) == 1001
        with pytest.raises(syncws.ConnectionClosedOK):
            ws.recv(timeout=TIMEOUT)


def test_shutdown_returns_within_timeout_despite_blocked_send(server: ServerFactory) -> None:
    """shutdown(timeout) returns in time when a handler is blocked sending to a non-reader."""
    timeout = 1.0
    sending = threading.Event()
    ended = threading.Event()

    def flood(ws: syncws.ServerConnection) -> None:
        chunk = b"x" * 65536
        try:
            while True:
                ws.send(chunk)
                sending.set()
        finally:
            ended.set()

    srv = server(flood)
    sock, _ = raw_handshake(srv)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        assert sending.wait(TIMEOUT)
        start = time.monotonic()
        srv.shutdown(timeout=timeout)
        elapsed = time.monotonic() - start
        assert elapsed < timeout + 1.5, f"shutdown took {elapsed:.2f}s"
        assert ended.is_set(), "the handler blocked in send() did not end"


def test_shutdown_returns_with_a_handler_busy_elsewhere_whose_next_send_raises(
    server: ServerFactory, uri: Uri
) -> None:
    """As its docstring says, shutdown() cannot stop a handler busy outside syncws: it
    returns all the same, with the connection closed, and that handler's next send()
    raises ConnectionClosed."""
    busy = threading.Event()
    release = threading.Event()
    outcome: queue.Queue[BaseException | None] = queue.Queue()

    def handler(ws: syncws.ServerConnection) -> None:
        busy.set()
        release.wait(TIMEOUT)  # not in syncws: nothing shutdown() can interrupt
        try:
            ws.send("too late")
        except BaseException as exc:
            outcome.put(exc)
        else:
            outcome.put(None)

    srv = server(handler)
    with syncws.connect(uri(srv)) as ws:
        assert busy.wait(TIMEOUT)
        start = time.monotonic()
        srv.shutdown(timeout=0.2)
        assert time.monotonic() - start < 3
        assert outcome.empty()  # the handler still runs
        release.set()
        assert isinstance(outcome.get(timeout=TIMEOUT), syncws.ConnectionClosed)
        assert ws.wait_closed(TIMEOUT)


def test_shutdown_answers_handshake_in_progress_with_503(server: ServerFactory) -> None:
    """A handshake still in progress when shutdown() starts is answered with HTTP 503."""
    timeout = 1.0
    srv = server()
    with raw_connect(srv) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")  # the rest comes later
        # Only a handshake the server has accepted is "in progress"; one still in the
        # kernel's backlog is reset when the listening socket closes.
        deadline = time.monotonic() + TIMEOUT
        while srv._pool.busy == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert srv._pool.busy == 1
        stopper = threading.Thread(target=srv.shutdown, kwargs={"timeout": timeout})
        start = time.monotonic()
        stopper.start()
        sock.sendall(
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        response = read_until_eof(sock)
        stopper.join(TIMEOUT)
        elapsed = time.monotonic() - start
    assert not stopper.is_alive(), "shutdown() did not return"
    assert elapsed < timeout + 1.5, f"shutdown took {elapsed:.2f}s"
    assert response.startswith(b"HTTP/1.1 503 "), response


def test_shutdown_closes_connection_whose_handshake_ends_during_shutdown(
    server: ServerFactory, uri: Uri
) -> None:
    """A handshake accepted just as shutdown() lists the connections still gets 1001."""
    timeout = 1.0
    in_handshake = threading.Event()
    proceed = threading.Event()

    def process_response(
        ws: syncws.ServerConnection, request: syncws.Request, response: syncws.Response
    ) -> None:
        # Past the server's "shutting down? then 503" check, before the 101 is sent.
        in_handshake.set()
        proceed.wait(TIMEOUT)

    srv = server(process_response=process_response)
    result: list[syncws.ClientConnection | BaseException] = []

    def client() -> None:
        try:
            result.append(syncws.connect(uri(srv), open_timeout=TIMEOUT))
        except BaseException as exc:
            result.append(exc)

    connector = threading.Thread(target=client)
    connector.start()
    try:
        assert in_handshake.wait(TIMEOUT)
        stopper = threading.Thread(target=srv.shutdown, kwargs={"timeout": timeout})
        stopper.start()
        # shutdown() closes the listening socket right before it lists the connections;
        # the short join below only makes the losing order (listed before added) likely:
        # the test must pass in either order.
        deadline = time.monotonic() + TIMEOUT
        while srv.socket.fileno() != -1 and time.monotonic() < deadline:
            stopper.join(0.001)
        stopper.join(0.05)
    finally:
        proceed.set()
        connector.join(TIMEOUT)
    (ws,) = result
    assert isinstance(ws, syncws.ClientConnection), ws
    with ws:
        assert_closed_ok(ws, 1001)
    stopper.join(TIMEOUT)
    assert not stopper.is_alive(), "shutdown() did not return"


@pytest.mark.parametrize("open_timeout", [None, 10.0], ids=["no-open-timeout", "open-timeout"])
@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"", id="nothing"),  # a browser's preconnect
        pytest.param(b"GET / HTTP/1.1\r\nHost: localhost\r\n", id="half-a-request"),
    ],
)
def test_shutdown_answers_waiting_handshake_with_503_at_once(
    server: ServerFactory,
    caplog: pytest.LogCaptureFixture,
    open_timeout: float | None,
    sent: bytes,
) -> None:
    """shutdown() answers 503 at once to a handshake whose request has not fully arrived."""
    caplog.set_level(logging.INFO, logger="syncws.server")
    srv = server(open_timeout=open_timeout)
    with raw_connect(srv) as sock:
        address = sock.getsockname()
        sock.sendall(sent)
        threads = wait_for_busy_pool(srv)
        start = time.monotonic()
        srv.shutdown(timeout=2.0)
        elapsed = time.monotonic() - start
        response = read_until_eof(sock)
    assert elapsed < 1.0, f"shutdown took {elapsed:.2f}s"
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 503 Service Unavailable", response
    assert b"connection: close" in [line.lower() for line in lines]
    assert f"content-length: {len(body)}".encode() in [line.lower() for line in lines]
    assert body == b"The server is shutting down.\n"
    assert [
        (r.levelno, r.getMessage()) for r in caplog.records if "HTTP 503" in r.getMessage()
    ] == [(logging.INFO, f"answered {address} with HTTP 503: the server is shutting down")]
    assert len(srv._awaited) == 0
    assert_threads_end(threads)


def test_handshake_starting_after_shutdown_began_gets_503_at_once(
    server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handshake whose thread starts after shutdown() woke the others is not waited for."""
    srv = server(open_timeout=None)
    gate = threading.Event()
    submit, join = srv._pool.try_submit, srv._pool.join

    def late_submit(task: Callable[[], None]) -> bool:
        def late_task() -> None:
            gate.wait(TIMEOUT)
            task()

        return submit(late_task)

    def open_gate_then_join(timeout: float | None = None) -> bool:
        gate.set()  # shutdown() has woken the threads waiting for a request by now
        return join(timeout)

    monkeypatch.setattr(srv._pool, "try_submit", late_submit)
    monkeypatch.setattr(srv._pool, "join", open_gate_then_join)
    with raw_connect(srv) as sock:
        wait_for_busy_pool(srv)
        start = time.monotonic()
        srv.shutdown(timeout=2.0)
        elapsed = time.monotonic() - start
        response = read_until_eof(sock)
    assert gate.is_set()
    assert elapsed < 1.0, f"shutdown took {elapsed:.2f}s"
    assert response.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), response


def test_shutdown_interrupts_tls_handshakes(
    server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """With TLS, shutdown() answers half a request with 503, drops a TLS handshake at once."""
    caplog.set_level(logging.INFO, logger="syncws.server")
    server_ctx, client_ctx = tls_contexts()
    srv = server(ssl=server_ctx, open_timeout=None)
    with raw_connect(srv) as silent:
        threads = wait_for_busy_pool(srv)
        with client_ctx.wrap_socket(raw_connect(srv), server_hostname="localhost") as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
            deadline = time.monotonic() + TIMEOUT
            while srv._pool.busy < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert srv._pool.busy == 2
            threads += srv._pool._threads
            start = time.monotonic()
            srv.shutdown(timeout=2.0)
            elapsed = time.monotonic() - start
            response = read_until_eof(tls)
        assert read_until_eof(silent) == b""
    assert elapsed < 1.0, f"shutdown took {elapsed:.2f}s"
    assert response.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), response
    assert response.endswith(b"\r\n\r\nThe server is shutting down.\n"), response
    assert any(
        r.levelno == logging.INFO and r.getMessage().endswith("failed: the server is shutting down")
        for r in caplog.records
    )
    assert_threads_end(threads)


def test_context_manager_shuts_down_and_connections_tracks_open_ones(
    echo: Callable[[syncws.ServerConnection], None],
    uri: Uri,
) -> None:
    """`with Server(...)` shuts down on exit; server.connections lists only open ones."""
    with syncws.Server(echo, "127.0.0.1", 0) as srv:
        srv.start()
        port = srv.port
        assert srv.connections == set()
        first = syncws.connect(uri(srv))
        second = syncws.connect(uri(srv))
        try:
            for ws in (first, second):  # the server registered both once it echoes
                ws.send("hi")
                assert ws.recv(timeout=TIMEOUT) == "hi"
            assert len(srv.connections) == 2
            assert all(isinstance(c, syncws.ServerConnection) for c in srv.connections)
            first.close()
            assert len(srv.connections) == 1
        except BaseException:
            first.close()
            second.close()
            raise
    assert_closed_ok(second, 1001)
    second.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
