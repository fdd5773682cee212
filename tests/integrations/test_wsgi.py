"""WebSocket routes inside a WSGI app, against real servers: Werkzeug's threaded dev server
and gunicorn's gthread worker (a subprocess)."""

from __future__ import annotations

import http.client
import logging
import os
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from rawws import KEY, REQUEST, accept_key, close_frame, frame, parse_close, read_head
from timing import TIMEOUT
from wsgi_apps import wsgi_app
from wsgi_servers import gunicorn_server, werkzeug_server

import syncws
from syncws.integrations.wsgi import (
    HandshakeRejected,
    SocketUnavailable,
    Upgrader,
    WebSocketApp,
    _take_over,
    request_from_environ,
)

pytestmark = pytest.mark.timeout(60)


class Served:
    """A running server: its address, and its log so far (gunicorn) or None."""

    def __init__(self, address: str, output: Any = None) -> None:
        self.address = address
        self.output = output

    def uri(self, path: str) -> str:
        return f"ws://{self.address}{path}"


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """``wsgi_app`` served by each server in turn."""
    if request.param == "werkzeug":
        with werkzeug_server(wsgi_app) as address:
            yield Served(address)
    else:
        with gunicorn_server("wsgi_apps:wsgi_app") as process:
            yield Served(f"127.0.0.1:{process.port}", process.output)


def connect(uri: str, **options: Any) -> syncws.ClientConnection:
    options.setdefault("open_timeout", TIMEOUT)
    options.setdefault("close_timeout", TIMEOUT)
    return syncws.connect(uri, **options)


def read_to_eof(sock: socket.socket, data: bytes = b"") -> bytes:
    """Read until the server ends the TCP connection (bounded by the socket timeout)."""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Parse unmasked server frames; fail on anything that is not exactly frames."""
    frames = []
    while data:
        assert len(data) >= 2, f"trailing bytes: {data!r}"
        b0, b1 = data[0], data[1]
        assert b0 & 0x70 == 0 and b1 & 0x80 == 0, f"not a server frame: {data[:16]!r}"
        length, offset = b1 & 0x7F, 2
        if length == 126:
            (length,) = struct.unpack("!H", data[2:4])
            offset = 4
        elif length == 127:
            (length,) = struct.unpack("!Q", data[2:10])
            offset = 10
        assert len(data) >= offset + length, f"truncated frame: {data!r}"
        frames.append((b0 & 0x0F, data[offset : offset + length]))
        data = data[offset + length :]
    return frames


def raw_upgrade(served: Served, path: str) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(served.address.split(":"), timeout=TIMEOUT)  # type: ignore[arg-type]
    sock.sendall(REQUEST % path.encode())
    head, rest = read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert b"Sec-WebSocket-Accept: " + accept_key(KEY) in head
    return sock, rest


def test_echo(served: Served) -> None:
    """Text and binary messages go through an upgraded WSGI request and back."""
    with connect(served.uri("/echo")) as ws:
        ws.send("hello")
        assert ws.recv(TIMEOUT) == "hello"
        ws.send(b"\x00\xff" * 5000)
        assert ws.recv(TIMEOUT) == b"\x00\xff" * 5000


def test_server_close_code_reaches_client(served: Served) -> None:
    """A close code and reason chosen by the view arrive at the client."""
    with connect(served.uri("/server-close")) as ws:
        ws.send("go")
        with pytest.raises(syncws.ConnectionClosed):
            ws.recv(TIMEOUT)
        assert (ws.close_code, ws.close_reason) == (4002, "server says bye")


def test_client_close_code_reaches_view(served: Served) -> None:
    """A close code and reason chosen by the client arrive at the view."""
    with connect(served.uri("/record")) as ws:
        ws.send("x")
        assert ws.recv(TIMEOUT) == "x"
        ws.close(4001, "client says bye")
    conn = http.client.HTTPConnection(served.address, timeout=2 * TIMEOUT)
    conn.request("GET", "/last-close")
    assert conn.getresponse().read() == b"4001 client says bye"
    conn.close()


def test_view_exception_closes_with_1011(served: Served) -> None:
    """A view that raises closes the connection with 1011."""
    with connect(served.uri("/fail")) as ws:
        with pytest.raises(syncws.ConnectionClosedError):
            ws.recv(TIMEOUT)
        assert ws.close_code == 1011


def test_keepalive_pings_measure_latency(served: Served) -> None:
    """The process's WSGI heartbeat pings upgraded connections; the client's pongs count."""
    with connect(served.uri("/latency")) as ws:
        deadline = time.monotonic() + TIMEOUT
        latency = 0.0
        while latency == 0.0 and time.monotonic() < deadline:
            ws.send("?")
            latency = float(ws.recv(TIMEOUT))
        assert latency > 0.0


def test_client_ping_answered_while_view_is_busy(served: Served) -> None:
    """The heartbeat answers pings while the view is not reading."""
    with connect(served.uri("/busy"), ping_interval=None) as ws:
        assert ws.ping().wait(TIMEOUT)


def test_plain_http_gets_426(served: Served) -> None:
    """A plain GET to a WebSocket route gets 426 with a readable body, over plain WSGI."""
    conn = http.client.HTTPConnection(served.address, timeout=2 * TIMEOUT)
    conn.request("GET", "/echo")
    response = conn.getresponse()
    assert response.status == 426
    assert response.getheader("Upgrade") == "websocket"
    assert response.read()
    conn.close()


def test_only_frames_after_101_client_closes(served: Served) -> None:
    """After the 101 only frames reach the client, and TCP ends after the close handshake."""
    sock, data = raw_upgrade(served, "/echo")
    with sock:
        sock.sendall(frame(0x1, b"ping me", mask=True))
        # The echo first: a close read together with the message would be answered at once,
        # and the handler's send() would then find the connection closing (RFC 6455 §5.5.1).
        while len(parse_frames_prefix(data)) == 0:
            chunk = sock.recv(4096)
            assert chunk
            data += chunk
        sock.sendall(close_frame(1000, "done", mask=True))
        frames = parse_frames(read_to_eof(sock, data))
    assert frames[0] == (0x1, b"ping me")
    assert frames[-1][0] == 0x8 and parse_close(frames[-1][1])[0] == 1000
    assert len(frames) == 2


def test_only_frames_after_101_server_closes(served: Served) -> None:
    """The same when the view ends the connection: close frame, then EOF, nothing else."""
    sock, data = raw_upgrade(served, "/server-close")
    with sock:
        sock.sendall(frame(0x1, b"go", mask=True))
        while len(parse_frames_prefix(data)) == 0:
            chunk = sock.recv(4096)
            assert chunk
            data += chunk
        sock.sendall(close_frame(4002, "", mask=True))
        frames = parse_frames(read_to_eof(sock, data))
    assert [opcode for opcode, _ in frames] == [0x8]
    assert parse_close(frames[0][1]) == (4002, "server says bye")


def parse_frames_prefix(data: bytes) -> list[tuple[int, bytes]]:
    try:
        return parse_frames(data)
    except AssertionError:
        return []


def test_gunicorn_logs_no_error() -> None:
    """gunicorn takes each hand-back as a client gone away (DEBUG), never as an error."""
    with gunicorn_server("wsgi_apps:wsgi_app") as process:
        served = Served(f"127.0.0.1:{process.port}", process.output)
        check_gunicorn_log(served)


def check_gunicorn_log(served: Served) -> None:
    assert served.output is not None
    with connect(served.uri("/echo")) as ws:
        ws.send("x")
        ws.recv(TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while "epipe" not in served.output().lower() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a log file
    output = served.output()
    assert "ignoring connection epipe" in output.lower() or "ignoring epipe" in output.lower()
    for error in ("Error handling request", "Socket error processing", "Exception in worker"):
        assert error not in output
    assert '"GET /echo HTTP/1.1" 101' in output


def test_werkzeug_logs_no_error(caplog: pytest.LogCaptureFixture) -> None:
    """Werkzeug logs the upgrade as a 101 and no error; its response never goes out."""
    caplog.set_level(logging.INFO)
    with werkzeug_server(wsgi_app) as address:
        with connect(f"ws://{address}/echo") as ws:
            ws.send("x")
            ws.recv(TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while "101" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the log
    assert '"GET /echo HTTP/1.1" 101' in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


HANDSHAKE = {
    "REQUEST_METHOD": "GET",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "PATH_INFO": "/chat room",
    "QUERY_STRING": "a=1&b=%20",
    "HTTP_HOST": "example.com",
    "HTTP_UPGRADE": "websocket",
    "HTTP_CONNECTION": "Upgrade",
    "HTTP_SEC_WEBSOCKET_KEY": KEY.decode(),
    "HTTP_SEC_WEBSOCKET_VERSION": "13",
    "SERVER_SOFTWARE": "waitress",
}


def test_environ_without_socket_raises_a_clear_error() -> None:
    """A server that exposes no socket gets an error that points to the sidecar."""
    with pytest.raises(SocketUnavailable, match="sidecar") as info:
        Upgrader().accept(dict(HANDSHAKE))
    assert "waitress" in str(info.value)


def test_rejected_handshake_takes_nothing_over() -> None:
    """A non-upgrade request is rejected with 426 before any socket is looked for."""
    environ = {k: v for k, v in HANDSHAKE.items() if k != "HTTP_UPGRADE"}
    with pytest.raises(HandshakeRejected) as info:
        Upgrader().accept(environ)
    assert info.value.response.status_code == 426
    environ = dict(HANDSHAKE, REQUEST_METHOD="POST")
    with pytest.raises(HandshakeRejected) as info:
        Upgrader().accept(environ)
    assert info.value.response.status_code == 405


def test_request_from_environ() -> None:
    """The request target is re-quoted from PATH_INFO and QUERY_STRING; headers rebuilt."""
    request = request_from_environ(dict(HANDSHAKE))
    assert request.path == "/chat%20room?a=1&b=%20"
    assert request.headers["sec-websocket-key"] == KEY.decode()
    assert request_from_environ(dict(HANDSHAKE, RAW_URI="/raw?x")).path == "/raw?x"


def test_upgrader_rejects_unknown_compression_as_server_does() -> None:
    """The connection options are checked once for both: the same error for the same value."""
    with pytest.raises(ValueError, match="compression") as upgrader_error:
        Upgrader(compression="gzip")
    with pytest.raises(ValueError, match="compression") as server_error:
        syncws.Server(lambda ws: None, "127.0.0.1", 0, compression="gzip")
    assert str(upgrader_error.value) == str(server_error.value)


def test_upgrader_options_are_attributes() -> None:
    """As on a Server, the connection options are in ``options``; the logger has its own
    name."""
    upgrader = Upgrader(max_size=1024, ping_interval=None, open_timeout=3, compression=None)
    options = upgrader.options
    assert (options.max_size, options.ping_interval, options.open_timeout) == (1024, None, 3)
    assert (options.ping_timeout, options.max_queue) == (20, 16)
    assert upgrader.logger.name == "syncws.wsgi"
    assert upgrader.connections == set()


class _SlowOpenLog(logging.Handler):
    """Holds the thread that logs "connection open" (after the 101 is written) for a while,
    and broadcasts meanwhile to the upgrader's connections."""

    def __init__(self, upgrader: Upgrader) -> None:
        super().__init__(logging.INFO)
        self.upgrader = upgrader
        self.listed_while_opening: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if "connection open" in record.getMessage():
            time.sleep(0.3)  # the client's connect() has returned by now
            self.listed_while_opening = syncws.broadcast(self.upgrader.connections, "early")


def test_listed_before_the_101_and_broadcast_queued_behind_it() -> None:
    """As with a Server: once the client's connect() returns, its connection is in
    ``connections`` (it was listed only after the 101 and the log line), and a broadcast
    sent before the view starts comes after the 101, as a frame."""
    app = WebSocketApp(lambda ws: ws.send(ws.recv()))
    handler = _SlowOpenLog(app)
    app.logger.addHandler(handler)
    level = app.logger.level
    app.logger.setLevel(logging.INFO)
    try:
        with werkzeug_server(app) as address, connect(f"ws://{address}/") as ws:
            assert len(app.connections) == 1
            assert ws.recv(TIMEOUT) == "early"
            ws.send("then echo")
            assert ws.recv(TIMEOUT) == "then echo"
        assert handler.listed_while_opening == 1
    finally:
        app.logger.setLevel(level)
        app.logger.removeHandler(handler)


def test_the_taken_over_socket_blocks_whatever_timeout_the_server_gave_its_own() -> None:
    """A WSGI server that gave its socket a timeout left its descriptor non-blocking, a
    flag the duplicate shares: the socket the connection gets is blocking, as its socket
    object (no timeout) says, so a read waits for data instead of returning none; and the
    server's socket now reaches a dead end, never the client."""
    server_side, client_side = socket.socketpair()
    with client_side:
        server_side.settimeout(5)  # as a WSGI server may: the descriptor is non-blocking
        ours = _take_over(server_side)
        with ours, server_side:
            assert ours.gettimeout() is None
            assert os.get_blocking(ours.fileno())
            client_side.settimeout(TIMEOUT)
            client_side.sendall(b"late")
            assert ours.recv(16) == b"late"
            assert server_side.recv(16) == b""  # the dead socket: end of file
