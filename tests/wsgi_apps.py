"""WSGI and Flask apps for the integration tests, importable by gunicorn (``wsgi_apps:...``).

- ``wsgi_app``: plain WSGI routes made of :class:`~syncws.integrations.wsgi.WebSocketApp`.
- ``flask_app``: the same with :class:`~syncws.integrations.flask.Sock`, plus a POST route
  that broadcasts to every WebSocket client of the process.
"""

from __future__ import annotations

import threading
from typing import Any

import flask
from timing import TIMEOUT

import syncws
from syncws.integrations.flask import Sock
from syncws.integrations.wsgi import Environ, StartResponse, WebSocketApp

#: Close code and reason of the last connection closed by the client, per route.
last_close: dict[str, tuple[int | None, str | None]] = {}
_closed = threading.Condition()


def echo(ws: syncws.ServerConnection) -> None:
    """Send every message back."""
    for message in ws:
        ws.send(message)


def server_close(ws: syncws.ServerConnection) -> None:
    """Close with 4002 as soon as a message arrives."""
    ws.recv()
    ws.close(4002, "server says bye")


def record(ws: syncws.ServerConnection) -> None:
    """Echo until the client closes, then remember its close code."""
    try:
        for message in ws:
            ws.send(message)
    finally:
        with _closed:
            last_close["record"] = (ws.close_code, ws.close_reason)
            _closed.notify_all()


def latency(ws: syncws.ServerConnection) -> None:
    """Answer each message with the latency measured by the server's keepalive pings."""
    for _ in ws:
        ws.send(repr(ws.latency))


def busy(ws: syncws.ServerConnection) -> None:
    """Wait for the client to close without ever calling recv()."""
    ws.wait_closed(2 * TIMEOUT)


def fail(ws: syncws.ServerConnection) -> None:
    """Raise: the connection closes with 1011."""
    raise RuntimeError("handler failed on purpose")


_ROUTES = {
    "/echo": WebSocketApp(echo),
    "/server-close": WebSocketApp(server_close),
    "/record": WebSocketApp(record),
    "/latency": WebSocketApp(latency, ping_interval=0.1, ping_timeout=TIMEOUT),
    "/busy": WebSocketApp(busy),
    "/fail": WebSocketApp(fail),
}


def wsgi_app(environ: Environ, start_response: StartResponse) -> Any:
    """Dispatch on PATH_INFO; ``/last-close`` tells what the client of ``/record`` sent."""
    path = environ.get("PATH_INFO", "")
    if path == "/last-close":
        with _closed:
            _closed.wait_for(lambda: "record" in last_close, timeout=TIMEOUT)
            code, reason = last_close.pop("record", (None, None))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{code} {reason}".encode()]
    route = _ROUTES.get(path)
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    return route(environ, start_response)


flask_app = flask.Flask(__name__)
sock = Sock(flask_app)


@sock.route("/echo")
def flask_echo(ws: Any) -> None:
    """Echo with flask-sock's names, until the client closes."""
    while True:
        ws.send(ws.receive())


@sock.route("/items/<int:item>")
def flask_item(ws: Any, item: int) -> None:
    """URL variables reach the view; so does the request context."""
    ws.send(f"{item} {flask.request.args.get('q')}")
    ws.recv()


@sock.route("/feed")
def flask_feed(ws: Any) -> None:
    """Stay connected, receiving what /publish broadcasts."""
    for _ in ws:
        pass


@sock.route("/boom")
def flask_boom(ws: Any) -> None:
    """Raise: 1011."""
    raise RuntimeError("view failed on purpose")


@flask_app.post("/publish")
def publish() -> tuple[str, int]:
    """A normal Flask route that broadcasts to every WebSocket client of this process."""
    sent = syncws.broadcast(sock.connections, flask.request.get_data(as_text=True))
    return str(sent), 200


@sock.route("/compat-close")
def flask_compat_close(ws: Any) -> None:
    """simple-websocket's close keywords: reason is the code, message the text."""
    assert ws.connected
    assert ws.receive(timeout=0) is None
    ws.close(reason=4003, message="compat")


@flask_app.get("/count")
def count() -> str:
    """How many WebSocket clients this process has."""
    return str(len(sock.connections))
