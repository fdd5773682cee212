"""Loopback integration tests of the server: real sockets, a server thread, real clients.

Raw-socket tests speak HTTP and WebSocket frames by hand, to send what a well-behaved client
never would (invalid UTF-8, malformed requests, silence).
"""

from __future__ import annotations

import base64
import gc
import logging
import os
import queue
import socket
import struct
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import pytest
from conftest import ipv6_loopback, tls_contexts
from rawws import REQUEST, wait_for
from timing import TIMEOUT

import syncws
from syncws.protocol.frames import Opcode, serialize_frame

ServerFactory = Callable[..., syncws.Server]
Uri = Callable[..., str]

#: Bound for every blocking step of a test, in seconds.
MASK = b"\x01\x02\x03\x04"


# Helpers.


def raw_connect(server: syncws.Server) -> socket.socket:
    """Open a plain TCP connection to ``server``, with a bounded timeout for every call."""
    sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def read_until_eof(sock: socket.socket) -> bytes:
    """Read everything the server sends until it closes the connection."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def read_http_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read a response head; return it and whatever bytes followed it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed during the response head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def raw_handshake(server: syncws.Server, path: str = "/") -> tuple[socket.socket, bytes]:
    """Complete a WebSocket handshake by hand; return the socket and any bytes read past it."""
    sock = raw_connect(server)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head, rest = read_http_head(sock)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock, rest


class FrameReader:
    """Reads unmasked frames (as a server sends them) from a raw socket."""

    def __init__(self, sock: socket.socket, buffered: bytes = b"") -> None:
        self.sock = sock
        self.buffer = buffered

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed in the middle of a frame"
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def frame(self) -> tuple[int, bytes]:
        """Return the next frame's opcode and payload."""
        b0, b1 = self._read(2)
        assert not b1 & 0x80, "a server must not mask its frames"
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read(8))
        return b0 & 0x0F, self._read(length)


def close_code(payload: bytes) -> int:
    """The code in a close frame's payload."""
    code: int = struct.unpack("!H", payload[:2])[0]
    return code


def masked(opcode: int, data: bytes, *, fin: bool = True) -> bytes:
    """A frame as a client sends it (masked)."""
    return serialize_frame(opcode, data, fin=fin, mask=os.urandom(4))


def blocking_handler(
    release: threading.Event, entered: threading.Semaphore | None = None
) -> Callable[[syncws.ServerConnection], None]:
    """A handler that waits (bounded) until ``release`` is set, then returns."""

    def handler(ws: syncws.ServerConnection) -> None:
        if entered is not None:
            entered.release()
        release.wait(TIMEOUT)

    return handler


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


def assert_threads_end(threads: list[threading.Thread]) -> None:
    """The threads exit, within TIMEOUT."""
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), f"{thread.name} still runs"


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event that blocked handlers wait for; set at teardown so they always end."""
    event = threading.Event()
    yield event
    event.set()


# Echo.


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("Hello, wörld! 👋", id="text"),
        pytest.param(bytes(range(256)), id="binary"),
        pytest.param("", id="empty-text"),
        pytest.param(b"", id="empty-binary"),
        pytest.param(b"\xab" * 2**20, id="1MiB"),
    ],
)
def test_echo_returns_message_unchanged(
    server: ServerFactory, message: str | bytes, uri: Uri
) -> None:
    """The echo handler sends back text, binary, empty and 1 MiB messages unchanged."""
    srv = server()
    with syncws.connect(uri(srv)) as ws:
        ws.send(message)
        assert ws.recv(timeout=TIMEOUT) == message


@pytest.mark.parametrize(
    ("fragments", "expected"),
    [
        pytest.param(["Hel", "lo", ", wörld"], "Hello, wörld", id="text"),
        pytest.param([b"\x00\x01", b"", b"\x02"], b"\x00\x01\x02", id="binary"),
    ],
)
def test_echo_reassembles_fragmented_message(
    server: ServerFactory, fragments: list[str] | list[bytes], expected: str | bytes, uri: Uri
) -> None:
    """A message sent as an iterable of fragments arrives as one message."""
    srv = server()
    with syncws.connect(uri(srv)) as ws:
        ws.send(iter(fragments))
        assert ws.recv(timeout=TIMEOUT) == expected


def test_recv_streaming_a_whole_message_read_with_the_next_ones_start(
    server: ServerFactory,
) -> None:
    """A handler's recv_streaming() yields the whole message A alone when one read brings
    A and the first fragment of B; recv() then returns B whole (issue 21)."""
    streaming = threading.Event()
    results: queue.Queue[object] = queue.Queue()

    def handler(ws: syncws.ServerConnection) -> None:
        fragments = ws.recv_streaming()
        threading.Timer(0.05, streaming.set).start()  # once the generator reads the socket
        results.put(list(fragments))
        results.put(ws.recv(timeout=TIMEOUT))

    srv = server(handler)
    sock, _ = raw_handshake(srv)
    with sock:
        assert streaming.wait(TIMEOUT)
        sock.sendall(
            serialize_frame(Opcode.TEXT, b"A", mask=MASK)
            + serialize_frame(Opcode.BINARY, b"B1", fin=False, mask=MASK)
        )
        time.sleep(0.05)
        sock.sendall(serialize_frame(Opcode.CONT, b"-B2", mask=MASK))
        assert results.get(timeout=TIMEOUT) == ["A"]
        assert results.get(timeout=TIMEOUT) == b"B1-B2"


# Limits and protocol errors.


def test_message_over_max_size_closes_with_1009(server: ServerFactory, uri: Uri) -> None:
    """A message larger than the server's max_size gets close code 1009."""
    srv = server(max_size=1024)
    with syncws.connect(uri(srv)) as ws:
        ws.send(b"x" * 1025)
        with pytest.raises(syncws.ConnectionClosedError) as excinfo:
            ws.recv(timeout=TIMEOUT)
    assert excinfo.value.rcvd is not None
    assert excinfo.value.rcvd.code == 1009


def test_message_at_max_size_is_accepted(server: ServerFactory, uri: Uri) -> None:
    """A message of exactly max_size bytes is accepted."""
    srv = server(max_size=1024)
    with syncws.connect(uri(srv)) as ws:
        ws.send(b"x" * 1024)
        assert ws.recv(timeout=TIMEOUT) == b"x" * 1024


def test_invalid_utf8_closes_with_1007(server: ServerFactory) -> None:
    """A text frame with invalid UTF-8 from a raw client gets close code 1007."""
    srv = server()
    sock, rest = raw_handshake(srv)
    with sock:
        sock.sendall(masked(Opcode.TEXT, b"caf\xc3"))  # truncated "é"
        opcode, payload = FrameReader(sock, rest).frame()
        assert opcode == Opcode.CLOSE
        assert close_code(payload) == 1007


def test_invalid_utf8_detected_on_first_fragment(server: ServerFactory) -> None:
    """Invalid UTF-8 in the first fragment of a text message closes with 1007 at once."""
    srv = server()
    sock, rest = raw_handshake(srv)
    with sock:
        sock.sendall(masked(Opcode.TEXT, b"\xff", fin=False))  # never finished
        opcode, payload = FrameReader(sock, rest).frame()
        assert opcode == Opcode.CLOSE
        assert close_code(payload) == 1007


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
            with pytest.raises(syncws.ConnectionClosedOK) as excinfo:
                ws.recv(timeout=TIMEOUT)
            assert excinfo.value.rcvd is not None
            assert excinfo.value.rcvd.code == 1001
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
        with pytest.raises(syncws.ConnectionClosedOK) as excinfo:
            ws.recv(timeout=TIMEOUT)
        assert excinfo.value.rcvd is not None
        assert excinfo.value.rcvd.code == 1001
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
    with pytest.raises(syncws.ConnectionClosedOK) as excinfo:
        second.recv(timeout=TIMEOUT)
    assert excinfo.value.rcvd is not None
    assert excinfo.value.rcvd.code == 1001
    second.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()


# HTTP: process_request, process_response, origins, subprotocols, malformed requests.


def test_process_request_answers_health_check(server: ServerFactory, uri: Uri) -> None:
    """process_request returning ws.respond(200, ...) answers plain HTTP; others upgrade."""

    def process_request(
        ws: syncws.ServerConnection, request: syncws.Request
    ) -> syncws.Response | None:
        if request.path == "/health":
            return ws.respond(200, "OK\n")
        return None

    srv = server(process_request=process_request)
    with raw_connect(srv) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        response = read_until_eof(sock)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert body == b"OK\n"
    with syncws.connect(uri(srv, "/chat")) as ws:
        ws.send("hi")
        assert ws.recv(timeout=TIMEOUT) == "hi"


def test_process_response_adds_header(server: ServerFactory, uri: Uri) -> None:
    """A header added by process_response reaches the client."""

    def process_response(
        ws: syncws.ServerConnection, request: syncws.Request, response: syncws.Response
    ) -> None:
        response.headers["X-Served-By"] = "syncws-test"

    srv = server(process_response=process_response)
    with syncws.connect(uri(srv)) as ws:
        assert ws.response is not None
        assert ws.response.headers["X-Served-By"] == "syncws-test"


def invalid_status(ws: syncws.ServerConnection, request: syncws.Request) -> object:
    return ws.respond(99, "x")


def legacy_tuple(ws: syncws.ServerConnection, request: syncws.Request) -> object:
    return (200, [], b"hi")  # what websockets' legacy process_request returns


def plain_str(ws: syncws.ServerConnection, request: syncws.Request) -> object:
    return "OK"


def response_with_str_body(
    ws: syncws.ServerConnection, request: syncws.Request, response: syncws.Response
) -> object:
    return syncws.Response(200, "OK", syncws.Headers(), "not bytes")  # type: ignore[arg-type]


def invalid_status_in_place(
    ws: syncws.ServerConnection, request: syncws.Request, response: syncws.Response
) -> None:
    response.status_code = 1000


def sys_exit(ws: syncws.ServerConnection, request: syncws.Request) -> None:
    raise SystemExit(3)


def served_and_collected(srv: syncws.Server) -> tuple[bytes, list[str]]:
    """Send a handshake request and read the answer until EOF, then shut the server down
    and wait for its pool thread to exit (which drops its last task, and what that held);
    return the answer and the ResourceWarnings raised meanwhile (garbage collected too)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with raw_connect(srv) as sock:
            sock.sendall(REQUEST % b"/")
            response = read_until_eof(sock)
        threads = list(srv._pool._threads)
        srv.shutdown(timeout=TIMEOUT)
        assert_threads_end(threads)
        gc.collect()
    return response, [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize(
    ("hooks", "logged"),
    [
        pytest.param(
            {"process_request": invalid_status},
            "process_request returned an invalid response (invalid status code: 99): ",
            id="status-99",
        ),
        pytest.param(
            {"process_request": legacy_tuple},
            "process_request returned an invalid response (a tuple, not a syncws.Response): "
            "(200, [], b'hi')",
            id="tuple",
        ),
        pytest.param(
            {"process_request": plain_str},
            "process_request returned an invalid response (a str, not a syncws.Response): 'OK'",
            id="str",
        ),
        pytest.param(
            {"process_response": response_with_str_body},
            "process_response returned an invalid response (",
            id="str-body",
        ),
        pytest.param(
            {"process_response": invalid_status_in_place},
            "process_response returned an invalid response (invalid status code: 1000): ",
            id="changed-in-place",
        ),
        pytest.param({"process_request": sys_exit}, "process_request failed", id="sys-exit"),
    ],
)
def test_hook_failing_or_returning_invalid_response_gets_500(
    server: ServerFactory,
    caplog: pytest.LogCaptureFixture,
    hooks: dict[str, Callable[..., object]],
    logged: str,
) -> None:
    """A hook's unsendable return value (or exit) gets a 500, logged at ERROR; no leak."""
    srv = server(**hooks)
    response, leaks = served_and_collected(srv)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 Internal Server Error\r\n"), response
    assert body == b"Failed to open a WebSocket connection.\n"
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == "syncws.server"
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith(logged), record.getMessage()
    assert record.exc_info is not None
    assert leaks == []


def test_unexpected_handshake_error_closes_socket(
    server: ServerFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever fails in the handshake, the server closes the socket: no leak, no hang."""
    srv = server()

    def broken() -> None:
        raise RuntimeError("broken")

    monkeypatch.setattr(srv, "_new_protocol", broken)
    response, leaks = served_and_collected(srv)
    assert response == b""
    assert leaks == []
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)


def test_handshake_headers_are_packed_and_still_readable(server: ServerFactory, uri: Uri) -> None:
    """Once open, a connection keeps its handshake headers packed in one string; the handler
    reads (and changes) them as usual, and process_response saw them whole."""
    seen: list[object] = []

    def process_response(
        ws: syncws.ServerConnection, request: syncws.Request, response: syncws.Response
    ) -> None:
        seen.append(hasattr(request.headers, "_packed"))
        response.headers["X-Served-By"] = "syncws-test"

    def handler(ws: syncws.ServerConnection) -> None:
        assert ws.request is not None and ws.response is not None
        request, response = ws.request.headers, ws.response.headers
        seen.append((hasattr(request, "_packed"), hasattr(response, "_packed")))
        seen.append((request["X-Token"], request.get_all("X-Multi"), request["host"]))
        seen.append((response["X-Served-By"], response["Upgrade"]))
        request["X-Added"] = "yes"
        seen.append(ws.request.headers.get_all("X-Added"))
        ws.send("done")

    srv = server(handler, process_response=process_response)
    headers = [("X-Token", "t0k3n"), ("X-Multi", "1"), ("X-Multi", "2")]
    with syncws.connect(uri(srv), additional_headers=headers) as ws:
        assert ws.recv(timeout=TIMEOUT) == "done"
    assert seen == [
        False,
        (True, True),
        ("t0k3n", ["1", "2"], f"127.0.0.1:{srv.port}"),
        ("syncws-test", "websocket"),
        ["yes"],
    ]


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


def test_origins_rejects_other_origin_with_403(server: ServerFactory, uri: Uri) -> None:
    """With origins set, another Origin gets HTTP 403 and an allowed one connects."""
    srv = server(origins=["https://ok.example"])
    with pytest.raises(syncws.InvalidStatus) as excinfo:
        syncws.connect(uri(srv), origin="https://evil.example")
    assert excinfo.value.response.status_code == 403
    with syncws.connect(uri(srv), origin="https://ok.example") as ws:
        ws.send("hi")
        assert ws.recv(timeout=TIMEOUT) == "hi"


def test_subprotocol_negotiated_on_both_sides(server: ServerFactory, uri: Uri) -> None:
    """The server picks the subprotocol it supports among those offered; both sides agree."""
    seen: list[str | None] = []

    def handler(ws: syncws.ServerConnection) -> None:
        seen.append(ws.subprotocol)
        ws.send(ws.subprotocol or "")

    srv = server(handler, subprotocols=["a"])
    with syncws.connect(uri(srv), subprotocols=["b", "a"]) as ws:
        assert ws.subprotocol == "a"
        assert ws.recv(timeout=TIMEOUT) == "a"
    assert seen == ["a"]


@pytest.mark.parametrize(
    ("request_bytes", "status", "header"),
    [
        pytest.param(b"POST / HTTP/1.1\r\nHost: localhost\r\n\r\n", 405, b"allow: get", id="405"),
        pytest.param(
            b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414, None, id="414"
        ),
        pytest.param(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 426, None, id="426"),
    ],
)
def test_malformed_request_gets_http_error(
    server: ServerFactory, request_bytes: bytes, status: int, header: bytes | None
) -> None:
    """Malformed or plain HTTP requests get the status of the limits table, then EOF."""
    srv = server()
    with raw_connect(srv) as sock:
        sock.sendall(request_bytes)
        response = read_until_eof(sock)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    if header is not None:
        assert header in head.lower().split(b"\r\n")
    if status == 426:
        assert body, "426 should have a readable body"


def test_open_timeout_drops_silent_connection(
    server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection that sends nothing is dropped after open_timeout and logged at INFO."""
    caplog.set_level(logging.INFO, logger="syncws.server")
    srv = server(open_timeout=0.5)
    with raw_connect(srv) as sock:
        start = time.monotonic()
        assert read_until_eof(sock) == b""
        elapsed = time.monotonic() - start
    assert 0.3 < elapsed < 3.0, f"dropped after {elapsed:.2f}s"
    assert any(
        r.name == "syncws.server" and r.levelno == logging.INFO and "timed out" in r.getMessage()
        for r in caplog.records
    )


# Transports: Unix socket, IPv6, TLS.


def test_unix_socket_echo(server: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A server on a Unix socket echoes to a client connected with unix_path."""
    # A short directory: Unix socket paths are limited to ~100 bytes.
    path = str(tmp_path_factory.mktemp("ws") / "s.sock")
    server(unix_path=path)
    with syncws.connect("ws://localhost/", unix_path=path) as ws:
        ws.send("over a unix socket")
        assert ws.recv(timeout=TIMEOUT) == "over a unix socket"


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_echo(server: ServerFactory, uri: Uri) -> None:
    """A server bound to ::1 echoes to a client connecting to ws://[::1]:PORT."""
    srv = server(host="::1")
    assert uri(srv).startswith("ws://[::1]:")
    with syncws.connect(uri(srv)) as ws:
        ws.send("over IPv6")
        assert ws.recv(timeout=TIMEOUT) == "over IPv6"


def test_tls_echo(server: ServerFactory) -> None:
    """A server with an ssl context echoes to a wss:// client trusting its certificate."""
    server_ctx, client_ctx = tls_contexts()
    srv = server(ssl=server_ctx)
    with syncws.connect(f"wss://localhost:{srv.port}/", ssl=client_ctx) as ws:
        for message in ("secure", b"\x00" * 100_000):
            ws.send(message)
            assert ws.recv(timeout=TIMEOUT) == message


# Concurrency.


def test_concurrent_senders_never_interleave_frames(server: ServerFactory, uri: Uri) -> None:
    """Messages sent from 8 threads on one connection all arrive intact."""
    threads_count, per_thread = 8, 200
    # Sizes that exercise the three payload length encodings, and fragmented sends.
    sizes = [10, 300, 70_000]

    def message(t: int, i: int) -> str:
        prefix = f"{t}:{i}:"
        return prefix + chr(ord("a") + t) * sizes[i % len(sizes)]

    def handler(ws: syncws.ServerConnection) -> None:
        errors: list[BaseException] = []

        def sender(t: int) -> None:
            try:
                for i in range(per_thread):
                    text = message(t, i)
                    if i % 7 == 0:
                        ws.send([text[:5], text[5:]])  # fragmented
                    else:
                        ws.send(text)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=sender, args=(t,)) for t in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        ws.send("done" if not errors else f"error: {errors[0]!r}")

    srv = server(handler)
    received: dict[int, list[int]] = {t: [] for t in range(threads_count)}
    with syncws.connect(uri(srv)) as ws:
        while True:
            text = ws.recv(timeout=TIMEOUT)
            assert isinstance(text, str)
            if text == "done" or text.startswith("error"):
                break
            t_str, i_str, _ = text.split(":", 2)
            t, i = int(t_str), int(i_str)
            assert text == message(t, i), f"corrupted message from thread {t}"
            received[t].append(i)
    assert text == "done"
    for t in range(threads_count):
        assert received[t] == list(range(per_thread)), f"thread {t}: lost or reordered"


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_a_message_sent_during_another_threads_fragmented_message_waits_for_its_end(
    server: ServerFactory, uri: Uri, compression: str | None
) -> None:
    """A whole message takes no send lock, unless it finds another thread in the middle of
    a fragmented message: it then waits for that message's end and goes out after it."""
    received: queue.Queue[object] = queue.Queue()

    def handler(ws: syncws.ServerConnection) -> None:
        for message in ws:
            received.put(message)

    srv = server(handler)
    with syncws.connect(uri(srv), compression=compression) as ws:
        first_sent, resume = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def fragments() -> Iterator[str]:
            yield "first half, "
            first_sent.set()  # the first frame is written: the message is in progress
            resume.wait(TIMEOUT)
            yield "second half"

        def send(message: object) -> None:
            try:
                ws.send(message)  # type: ignore[arg-type]
            except BaseException as exc:
                errors.append(exc)

        fragmented = threading.Thread(target=send, args=(fragments(),))
        fragmented.start()
        assert first_sent.wait(TIMEOUT)
        whole = threading.Thread(target=send, args=("whole",))
        whole.start()
        whole.join(0.2)
        assert whole.is_alive(), errors  # waiting for the fragmented message
        resume.set()
        fragmented.join(TIMEOUT)
        whole.join(TIMEOUT)
        assert not errors
        assert received.get(timeout=TIMEOUT) == "first half, second half"
        assert received.get(timeout=TIMEOUT) == "whole"


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
        assert wait_for(lambda: len(srv.connections) == 1, 5)
        (conn,) = srv.connections
        assert conn._call_when_closed(lambda: calls.append("first"))
        assert conn._call_when_closed(lambda: 1 / 0)
        assert conn._call_when_closed(lambda: calls.append("last"))
        assert calls == []
    assert wait_for(lambda: calls == ["first", "last"], TIMEOUT)
    assert "a close callback failed" in caplog.text
    assert not conn._call_when_closed(lambda: calls.append("late"))
    assert calls == ["first", "last"]
