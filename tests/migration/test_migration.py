"""The converted examples of the migration guides (examples/migration/), each against a real
peer of the library it was written for: websockets.sync, simple-websocket (flask-sock's
client), and a websockets.sync server for websocket-client's examples, which are clients.

The programs run in this process with runpy, unmodified: ``syncws.Server``, ``syncws.route``
and ``syncws.connect`` are replaced by wrappers that check the address the program asks for
(upstream's) and use a free loopback port instead. Flask's clock example, whose
``__main__`` starts a thread that never ends, runs as a subprocess.
"""

from __future__ import annotations

import datetime
import json
import runpy
import socket
import sys
import threading
import urllib.request
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import simple_websocket
import websockets.sync.server
from conftest import program, ws_connect
from timing import TIMEOUT
from websockets.exceptions import ConnectionClosedOK as WsConnectionClosedOK
from websockets.exceptions import InvalidStatus as WsInvalidStatus
from wsgi_servers import free_port, gunicorn_server, wait_listening, werkzeug_server

import syncws

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "migration"
#: Seconds an example program may take to make its server, or to run to its end.
PROGRAM_TIMEOUT = 2 * TIMEOUT


def run_bounded(target: Callable[[], Any], timeout: float = PROGRAM_TIMEOUT) -> None:
    """Run ``target`` in a thread; fail if it raises or is still running after ``timeout``."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{target} still runs after {timeout} s"
    if errors:
        raise errors[0]


@pytest.fixture
def run_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., syncws.Server]]:
    """``run_server(path, factory, host, port)`` runs the program at ``path`` as
    ``__main__`` in a thread, its ``syncws.<factory>(..., host, port)`` made on 127.0.0.1
    with a free port; returns the server once made. Stopped at teardown (bounded)."""
    running: list[tuple[syncws.Server, threading.Thread]] = []

    def start(path: Path, factory: str, host: str, port: int) -> syncws.Server:
        made: list[syncws.Server] = []
        ready = threading.Event()
        original = getattr(syncws, factory)

        def redirected(first: Any, asked_host: str, asked_port: int, **options: Any) -> Any:
            assert (asked_host, asked_port) == (host, port)
            made.append(original(first, "127.0.0.1", 0, **options))
            ready.set()
            return made[0]

        monkeypatch.setattr(syncws, factory, redirected)
        thread = threading.Thread(
            target=runpy.run_path, args=(str(path),), kwargs={"run_name": "__main__"}
        )
        thread.daemon = True
        thread.start()
        assert ready.wait(PROGRAM_TIMEOUT), f"{path.name} made no server"
        running.append((made[0], thread))
        return made[0]

    yield start
    for server, thread in running:
        server.shutdown(timeout=TIMEOUT)
        thread.join(TIMEOUT)
        assert not thread.is_alive()


def redirect_connect(monkeypatch: pytest.MonkeyPatch, expected: str, actual: str) -> None:
    """Make ``syncws.connect(expected)`` connect to ``actual``; any other URI fails."""
    original = syncws.connect

    def redirected(uri: str, **options: Any) -> syncws.ClientConnection:
        assert uri == expected
        return original(actual, open_timeout=TIMEOUT, **options)

    monkeypatch.setattr(syncws, "connect", redirected)


def base(server: syncws.Server) -> str:
    return f"ws://127.0.0.1:{server.port}"


# websockets: example/sync/ and the routing guide's example.


def test_websockets_echo_server_echoes_to_a_websockets_client(
    run_server: Callable[..., syncws.Server],
) -> None:
    """websockets/echo.py serves on localhost:8765; a websockets.sync client gets text and
    binary messages back, then a 1000 close when it closes."""
    server = run_server(EXAMPLES / "websockets" / "echo.py", "Server", "localhost", 8765)
    with ws_connect(base(server) + "/") as ws:
        ws.send("Hello world!")
        assert ws.recv(timeout=TIMEOUT) == "Hello world!"
        ws.send(b"\x00\xff")
        assert ws.recv(timeout=TIMEOUT) == b"\x00\xff"
    assert ws.close_code == 1000


def test_websockets_hello_server_greets_a_websockets_client(
    run_server: Callable[..., syncws.Server], capsys: pytest.CaptureFixture[str]
) -> None:
    """websockets/server.py answers a name with a greeting, prints both, and closes with
    1000 when its handler returns."""
    server = run_server(EXAMPLES / "websockets" / "server.py", "Server", "localhost", 8765)
    with ws_connect(base(server) + "/") as ws:
        ws.send("Alice")
        assert ws.recv(timeout=TIMEOUT) == "Hello Alice!"
        with pytest.raises(WsConnectionClosedOK):
            ws.recv(timeout=TIMEOUT)
        assert ws.close_code == 1000
    assert capsys.readouterr().out == "<<< Alice\n>>> Hello Alice!\n"


def websockets_hello(ws: websockets.sync.server.ServerConnection) -> None:
    """websockets' example/sync/server.py handler, on a websockets.sync server."""
    name = ws.recv()
    ws.send(f"Hello {name}!")


def test_websockets_client_talks_to_a_websockets_server(
    ws_server: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """websockets/client.py asks for a name, sends it to a websockets.sync server and prints
    the greeting."""
    redirect_connect(monkeypatch, "ws://localhost:8765", ws_server(websockets_hello))
    prompts: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or "Alice")
    run_bounded(
        lambda: runpy.run_path(str(EXAMPLES / "websockets" / "client.py"), run_name="__main__")
    )
    assert prompts == ["What's your name? "]
    assert capsys.readouterr().out == ">>> Alice\n<<< Hello Alice!\n"


def test_websockets_hello_client_talks_to_a_websockets_echo_server(
    ws_server: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """websockets/hello.py sends "Hello world!" to a websockets.sync echo server and prints
    the answer."""
    redirect_connect(monkeypatch, "ws://localhost:8765", ws_server())
    run_bounded(
        lambda: runpy.run_path(str(EXAMPLES / "websockets" / "hello.py"), run_name="__main__")
    )
    assert capsys.readouterr().out == "Hello world!\n"


@pytest.fixture
def routing(run_server: Callable[..., syncws.Server]) -> str:
    """websockets/routing.py running; its base URI."""
    return base(run_server(EXAMPLES / "websockets" / "routing.py", "route", "localhost", 8888))


def test_websockets_routing_clock_in_utc_and_in_a_time_zone(routing: str) -> None:
    """/clock sends the time in UTC every second, /clock/<zone> in that zone."""
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    for path, zone in [("/clock", datetime.UTC), ("/clock/Europe/Paris", paris)]:
        with ws_connect(routing + path) as ws:
            first = datetime.datetime.fromisoformat(ws.recv(timeout=TIMEOUT))
            second = datetime.datetime.fromisoformat(ws.recv(timeout=TIMEOUT))
        now = datetime.datetime.now(zone)
        assert first.utcoffset() == now.utcoffset()
        assert abs((now - second).total_seconds()) < 2
        assert (second - first).total_seconds() == 1


def test_websockets_routing_redirects_and_rejects_like_websockets(routing: str) -> None:
    """/ redirects to /clock (a websockets client follows it); an unknown path or an unknown
    time zone gets HTTP 404."""
    with ws_connect(routing + "/") as ws:
        assert ws.request is not None and ws.request.path == "/clock"
        datetime.datetime.fromisoformat(ws.recv(timeout=TIMEOUT))
    for path in ["/nowhere", "/clock/No/Such_Zone"]:
        with pytest.raises(WsInvalidStatus) as info:
            ws_connect(routing + path)
        assert info.value.response.status_code == 404


def test_websockets_routing_timer_counts_down_then_closes(routing: str) -> None:
    """/timer/00:00:02 sends the seconds left, ends with 00:00:00 and a 1000 close."""
    received = []
    with ws_connect(routing + "/timer/00:00:02") as ws:
        with pytest.raises(WsConnectionClosedOK):
            while True:
                received.append(ws.recv(timeout=TIMEOUT))
        assert ws.close_code == 1000
    assert received[-1] == "00:00:00"
    assert 2 <= len(received) <= 3


def test_websockets_routing_alarm_rings_at_its_time(routing: str) -> None:
    """/alarm/<datetime>/<zone> sends the alarm time when it is reached, then closes; a
    client that leaves first ends the handler without an alarm."""
    at = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)).replace(
        microsecond=0, tzinfo=None
    )
    with ws_connect(f"{routing}/alarm/{at.isoformat()}/UTC") as ws:
        assert ws.recv(timeout=1 + TIMEOUT) == at.replace(tzinfo=datetime.UTC).isoformat()
        with pytest.raises(WsConnectionClosedOK):
            ws.recv(timeout=TIMEOUT)


# flask-sock: examples/.


def flask_module(name: str) -> dict[str, Any]:
    return runpy.run_path(str(EXAMPLES / "flask_sock" / name), run_name=f"flask_sock_{name}")


def check_echo(url: str, sock: Any = None) -> None:
    """flask-sock's echo view at ``url``, with simple-websocket's client: text and binary
    come back, "close" ends the connection with 1000."""
    client = simple_websocket.Client.connect(url)
    try:
        client.send("hello")
        assert client.receive(timeout=TIMEOUT) == "hello"
        client.send(b"\x01\x02")
        assert client.receive(timeout=TIMEOUT) == b"\x01\x02"
        if sock is not None:  # SOCK_SERVER_OPTIONS = {'ping_interval': 25} applies
            assert [ws.ping_interval for ws in sock.connections] == [25]
        client.send("close")
        with pytest.raises(simple_websocket.ConnectionClosed) as info:
            client.receive(timeout=TIMEOUT)
        assert info.value.reason == 1000
    finally:
        if client.connected:
            client.close()


def test_flask_sock_echo_on_werkzeug_with_a_simple_websocket_client() -> None:
    """flask_sock/echo.py on Werkzeug's server: the page and the echo route."""
    module = flask_module("echo.py")
    with werkzeug_server(module["app"]) as hostport:
        with urllib.request.urlopen(f"http://{hostport}/", timeout=TIMEOUT) as page:
            assert "Flask-Sock Demo" in page.read().decode()
        check_echo(f"ws://{hostport}/echo", module["sock"])


def test_flask_sock_echo_on_gunicorn_gthread_for_eventlet_and_gevent() -> None:
    """flask_sock/echo.py under gunicorn's gthread worker, which replaces flask-sock's
    echo-eventlet.py and echo-gevent.py."""
    with gunicorn_server("echo:app", "--chdir", str(EXAMPLES / "flask_sock")) as server:
        check_echo(f"ws://127.0.0.1:{server.port}/echo")


def test_flask_sock_blueprints_with_a_simple_websocket_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """flask_sock/blueprints: the app factory registers a blueprint and the Sock's routes."""
    monkeypatch.syspath_prepend(str(EXAMPLES / "flask_sock" / "blueprints"))
    for name in [name for name in sys.modules if name.split(".")[0] == "blueprints"]:
        monkeypatch.delitem(sys.modules, name)
    app = runpy.run_path(str(EXAMPLES / "flask_sock" / "blueprints" / "run.py"))["app"]
    with werkzeug_server(app) as hostport:
        with urllib.request.urlopen(f"http://{hostport}/", timeout=TIMEOUT) as page:
            assert "Flask-Sock Demo with Blueprints" in page.read().decode()
        check_echo(f"ws://{hostport}/echo")
    for name in [name for name in sys.modules if name.split(".")[0] == "blueprints"]:
        monkeypatch.delitem(sys.modules, name)


def test_flask_sock_clock_ticks_until_stop() -> None:
    """flask_sock/clock.py run as a program (its clock thread starts in ``__main__``): a
    simple-websocket client gets the time every second, and "stop" closes with 1000."""
    port = free_port()
    shim = (
        "import flask, runpy, sys; run = flask.Flask.run; "
        "flask.Flask.run = lambda self: run(self, host='127.0.0.1', port=int(sys.argv[2])); "
        "runpy.run_path(sys.argv[1], run_name='__main__')"
    )
    path = EXAMPLES / "flask_sock" / "clock.py"
    with program(["-c", shim, str(path), str(port)]) as running:
        wait_listening(port, running.proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=TIMEOUT) as page:
            assert "Clock Demo" in page.read().decode()
        client = simple_websocket.Client.connect(f"ws://127.0.0.1:{port}/clock")
        try:
            ticks = [json.loads(client.receive(timeout=TIMEOUT))["text"] for _ in range(2)]
            client.send("stop")
            with pytest.raises(simple_websocket.ConnectionClosed) as info:
                while True:
                    assert client.receive(timeout=TIMEOUT) is not None
            assert info.value.reason == 1000
        finally:
            if client.connected:
                client.close()
        first, second = (datetime.datetime.strptime(t, "%Y-%m-%d %H:%M:%S") for t in ticks)
        assert 0 < (second - first).total_seconds() <= 2
        assert abs((datetime.datetime.now() - second).total_seconds()) < 3


# websocket-client: README.md's two examples (clients; the peer is a websockets.sync server).

GREETING = "echo.websocket.events sponsored by Lob.com"


def test_websocket_client_short_lived_against_a_websockets_echo_server(
    ws_server: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """websocket_client/short_lived.py reads the greeting, gets its message back, prints
    what upstream prints, and closes with 1000."""
    closed: list[int | None] = []
    handler_done = threading.Event()

    def echo_events(ws: websockets.sync.server.ServerConnection) -> None:
        ws.send(GREETING)
        for message in ws:
            ws.send(message)
        closed.append(ws.close_code)
        handler_done.set()

    redirect_connect(monkeypatch, "ws://echo.websocket.events/", ws_server(echo_events))
    run_bounded(lambda: runpy.run_path(str(EXAMPLES / "websocket_client" / "short_lived.py")))
    assert capsys.readouterr().out.splitlines() == [
        GREETING,
        "Sending 'Hello, World'...",
        "Sent",
        "Receiving...",
        "Received 'Hello, World'",
    ]
    assert handler_done.wait(TIMEOUT)
    assert closed == [1000]


def test_websocket_client_long_lived_reconnects_after_an_error_only(
    ws_server: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    """websocket_client/long_lived.py calls on_open, on_message, on_error and on_close as
    WebSocketApp does; it connects again after a connection lost without a close frame,
    and returns after a normal close."""
    connections = []

    def feed(ws: websockets.sync.server.ServerConnection) -> None:
        connections.append(ws)
        if len(connections) == 1:
            ws.send("first")
            ws.socket.shutdown(socket.SHUT_RDWR)  # no close frame: an error
        else:
            ws.send("tick 1")
            ws.send("tick 2")  # then a 1000 close when this returns

    module = runpy.run_path(str(EXAMPLES / "websocket_client" / "long_lived.py"))
    uri = ws_server(feed)
    run_bounded(lambda: module["run_forever"](uri, reconnect=0.1))
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["Opened connection", "first"]
    assert "no close frame" in lines[2]  # str(ConnectionClosedError)
    assert lines[3:] == [
        "### closed ###",
        "Opened connection",
        "tick 1",
        "tick 2",
        "### closed ###",
    ]
    assert len(connections) == 2
