"""The Flask helper (``@sock.route``) against Werkzeug's threaded server and gunicorn gthread."""

from __future__ import annotations

import http.client
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from rawws import KEY
from test_examples import example
from timing import TIMEOUT
from wsgi_apps import flask_app
from wsgi_servers import gunicorn_server, werkzeug_server

import syncws
from syncws.integrations.flask import Sock, SocketUnavailable
from syncws.protocol.deflate import ServerPerMessageDeflateFactory

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def address(request: pytest.FixtureRequest) -> Iterator[str]:
    """``flask_app`` served by each server in turn: ``host:port``."""
    if request.param == "werkzeug":
        with werkzeug_server(flask_app) as served:
            yield served
    else:
        with gunicorn_server("wsgi_apps:flask_app") as process:
            yield f"127.0.0.1:{process.port}"


def connect(address: str, path: str) -> syncws.ClientConnection:
    return syncws.connect(f"ws://{address}{path}", open_timeout=TIMEOUT, close_timeout=TIMEOUT)


def http_request(address: str, method: str, path: str, body: str | None = None) -> Any:
    conn = http.client.HTTPConnection(address, timeout=2 * TIMEOUT)
    conn.request(method, path, body)
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


def test_echo_with_flask_sock_names(address: str) -> None:
    """A view written for flask-sock (receive/send) works unchanged."""
    with connect(address, "/echo") as ws:
        for message in ["one", b"two", "three" * 1000]:
            ws.send(message)
            assert ws.recv(TIMEOUT) == message


def test_url_variables_and_request_context(address: str) -> None:
    """URL variables become arguments; flask.request is the handshake request."""
    with connect(address, "/items/42?q=hi") as ws:
        assert ws.recv(TIMEOUT) == "42 hi"


def test_compat_close_keywords(address: str) -> None:
    """close(reason=code, message=text), connected and receive(timeout=0) as in flask-sock."""
    with connect(address, "/compat-close") as ws:
        with pytest.raises(syncws.ConnectionClosed):
            ws.recv(TIMEOUT)
        assert (ws.close_code, ws.close_reason) == (4003, "compat")


def test_view_exception_closes_with_1011(address: str) -> None:
    """A view that raises closes the connection with 1011."""
    with connect(address, "/boom") as ws:
        with pytest.raises(syncws.ConnectionClosedError):
            ws.recv(TIMEOUT)
        assert ws.close_code == 1011


def test_plain_get_gets_426(address: str) -> None:
    """A browser visiting a WebSocket route gets 426 with a readable body."""
    response = http_request(address, "GET", "/echo")
    assert response.status == 426
    assert b"WebSocket" in response.body


def test_broadcast_from_a_flask_route(address: str) -> None:
    """A normal POST route broadcasts to every WebSocket client of the process."""
    with connect(address, "/feed") as one, connect(address, "/feed") as two:
        deadline = time.monotonic() + TIMEOUT
        while http_request(address, "GET", "/count").body != b"2":
            assert time.monotonic() < deadline, "the connections were not registered"
            time.sleep(0.02)  # polling over HTTP
        response = http_request(address, "POST", "/publish", "news")
        assert response.body == b"2"
        assert one.recv(TIMEOUT) == "news"
        assert two.recv(TIMEOUT) == "news"


def test_werkzeug_logs_no_error(caplog: pytest.LogCaptureFixture) -> None:
    """The Flask hand-back under Werkzeug logs a 101 and no error."""
    caplog.set_level(logging.INFO)
    with werkzeug_server(flask_app) as address:
        with connect(address, "/echo") as ws:
            ws.send("x")
            ws.recv(TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while "101" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the log
    assert '"GET /echo HTTP/1.1" 101' in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_server_without_socket_gets_a_clear_error() -> None:
    """Under a server that exposes no socket (Flask's test client here), the view fails
    with an error that points to the sidecar."""
    import flask

    app = flask.Flask(__name__)
    app.testing = True
    sock = Sock()

    @sock.route("/ws")
    def view(ws: Any) -> None:  # pragma: no cover - never upgraded
        raise AssertionError

    sock.init_app(app)
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY.decode(),
        "Sec-WebSocket-Version": "13",
    }
    with pytest.raises(SocketUnavailable, match="sidecar"):
        app.test_client().get("/ws", headers=headers)
    assert app.test_client().get("/ws").status_code == 426


def test_flask_sock_server_options_are_honoured(caplog: pytest.LogCaptureFixture) -> None:
    """flask-sock's SOCK_SERVER_OPTIONS config applies: max_message_size of 100 refuses a
    1,000-byte message with 1009 (it was silently ignored: issue 19); an option with no
    equivalent is named in one WARNING."""
    import flask

    app = flask.Flask("configured")
    app.config["SOCK_SERVER_OPTIONS"] = {"max_message_size": 100, "receive_bytes": 1024}
    caplog.set_level(logging.WARNING, "syncws")
    sock = Sock(app)

    @sock.route("/echo")
    def echo(ws: Any) -> None:
        while True:
            ws.send(ws.receive())

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["SOCK_SERVER_OPTIONS: 'receive_bytes' has no equivalent in syncws; ignored"]
    assert sock.upgrader.options.max_size == 100
    with werkzeug_server(app) as address, connect(address, "/echo") as ws:
        ws.send("x" * 100)
        assert ws.recv(TIMEOUT) == "x" * 100
        ws.send("y" * 1000)
        with pytest.raises(syncws.ConnectionClosedError) as info:
            ws.recv(TIMEOUT)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009


def test_sock_options_take_precedence_over_the_config() -> None:
    """Options given to Sock itself win over SOCK_SERVER_OPTIONS."""
    import flask

    app = flask.Flask("both")
    app.config["SOCK_SERVER_OPTIONS"] = {"max_message_size": 100, "ping_interval": 5}
    sock = Sock(app, max_size=2000)
    assert (sock.upgrader.options.max_size, sock.upgrader.options.ping_interval) == (2000, 5)


def test_sock_extensions_and_compression_settings() -> None:
    """extensions= on Sock reaches the Upgrader: a custom extension and permessage-deflate
    with its own window bits are negotiated on a Flask route, and messages go through both."""
    import flask

    xor = example("custom_extension")
    app = flask.Flask("extensions")
    deflate = ServerPerMessageDeflateFactory(server_max_window_bits=9, min_size=0)
    sock = Sock(app, extensions=[xor.ServerXorFactory(), deflate])

    @sock.route("/echo")
    def echo(ws: Any) -> None:
        while True:
            ws.send(ws.receive())

    with werkzeug_server(app) as address:
        uri = f"ws://{address}/echo"
        with syncws.connect(uri, extensions=[xor.ClientXorFactory(7)]) as ws:
            assert ws.response is not None
            assert ws.response.headers["Sec-WebSocket-Extensions"] == (
                "x-xor; key=7, permessage-deflate; server_max_window_bits=9"
            )
            for message in ["a", "through both " * 50, b"\x00\xff" * 300]:
                ws.send(message)
                assert ws.recv(TIMEOUT) == message
