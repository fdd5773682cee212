"""The Redis hub with the other ways syncws serves: the Flask sidecar, and WebSocket routes
in a Flask app under Werkzeug's threaded server and gunicorn. A real redis-server; the
messages come from another process."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rawws import wait_for
from redis_apps import flask_app, rooms
from services import RedisServer
from timing import TIMEOUT
from wsgi_servers import gunicorn_server, werkzeug_server

import syncws
from syncws.integrations.redis import EVERYONE, Hub
from syncws.integrations.sidecar import Sidecar

pytestmark = pytest.mark.timeout(90)

APPS = str(Path(__file__).resolve().parents[1] / "redis_apps.py")


def join(url: str) -> syncws.ClientConnection:
    """A client of a ``rooms`` handler, once it has joined."""
    client = syncws.connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT)
    assert client.recv(timeout=2 * TIMEOUT) == "joined"
    return client


def publish_elsewhere(url: str, topic: str, name: str, count: int) -> None:
    """Publish ``name:0`` .. from another process (text for even numbers, else binary)."""
    args = [sys.executable, APPS, "publish", url, topic, name, str(count)]
    assert subprocess.run(args, timeout=6 * TIMEOUT).returncode == 0


def expected(name: str, count: int) -> list[str | bytes]:
    return [f"{name}:{n}" if n % 2 == 0 else f"{name}:{n}".encode() for n in range(count)]


def subscribers(url: str, topic: str) -> int:
    """How many connections to Redis subscribe to ``topic`` (``PUBSUB NUMSUB``)."""
    check = redis.Redis.from_url(url)
    try:
        ((_, count),) = check.pubsub_numsub(f"syncws:{topic}")
        return int(count)
    finally:
        check.close()


def check_rooms(redis_url: str, ws_url: str) -> None:
    """Two clients of ``ws_url`` in two rooms: what another process publishes to a room
    reaches its member only, EVERYONE reaches both, and once they close the serving
    process leaves the rooms (Redis counts no subscriber)."""
    with join(f"{ws_url}/rooms/red") as red, join(f"{ws_url}/rooms/blue") as blue:
        assert subscribers(redis_url, "red") == 1
        publish_elsewhere(redis_url, "red", "r", 10)
        assert [red.recv(timeout=2 * TIMEOUT) for _ in range(10)] == expected("r", 10)
        publish_elsewhere(redis_url, EVERYONE, "all", 1)
        assert red.recv(timeout=2 * TIMEOUT) == "all:0"
        assert blue.recv(timeout=2 * TIMEOUT) == "all:0"
        with pytest.raises(TimeoutError):
            blue.recv(timeout=0.3)  # nothing from "red"
    assert wait_for(lambda: subscribers(redis_url, "red") == 0, 2 * TIMEOUT)
    assert wait_for(lambda: subscribers(redis_url, "blue") == 0, 2 * TIMEOUT)


@pytest.fixture
def restore_sigterm() -> Iterator[None]:
    """Sidecar.start() chains SIGTERM in the main thread: undo it after the test."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.usefixtures("restore_sigterm")
def test_sidecar(redis_server: RedisServer) -> None:
    """A hub attached to a Sidecar (before it starts): its handlers join rooms, and get
    what other processes publish; a connection that closes leaves its rooms."""
    with Hub(redis_server.url) as hub:

        def handler(ws: syncws.ServerConnection) -> None:
            assert ws.request is not None
            rooms(hub, ws, ws.request.path.removeprefix("/rooms/"))

        sidecar = Sidecar(handler, "127.0.0.1", 0, reloader=False)
        hub.attach(sidecar)
        sidecar.start()
        try:
            assert sidecar.server is not None
            check_rooms(redis_server.url, f"ws://127.0.0.1:{sidecar.server.port}")
            assert not hub.members("red") and not hub.members("blue")
        finally:
            sidecar.shutdown(timeout=TIMEOUT)


def test_flask_routes_under_werkzeug(redis_server: RedisServer) -> None:
    """A hub attached to a Flask app's Sock, under Werkzeug's threaded server: views join
    rooms and get what other processes publish; closing leaves the rooms."""
    app = flask_app(redis_server.url)
    hub: Hub = app.extensions["hub"]
    try:
        with werkzeug_server(app) as address:
            check_rooms(redis_server.url, f"ws://{address}")
            assert not hub.members("red") and not hub.members("blue")
    finally:
        hub.close()


@pytest.mark.parametrize("preload", [False, True], ids=["", "preload"])
def test_flask_routes_under_gunicorn(redis_server: RedisServer, preload: bool) -> None:
    """The same app under gunicorn's gthread worker. With --preload, the app (its hub and
    the hub's attachment to the Sock) is made in the arbiter: the worker inherits the
    attachment, and subscribes to EVERYONE itself."""
    options = ["--preload"] if preload else []
    with gunicorn_server(
        "redis_apps:flask_app()", *options, env={"REDIS_URL": redis_server.url}
    ) as proc:
        check_rooms(redis_server.url, f"ws://127.0.0.1:{proc.port}")
        assert "Traceback" not in proc.output()
