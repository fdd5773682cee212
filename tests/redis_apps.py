"""Programs and apps for the Redis tests.

Run in subprocesses (``python tests/redis_apps.py ...``):

- ``server URL``: a syncws server on 127.0.0.1 (free port) whose handler joins the topic
  named by the request path (``/room`` joins ``room``), says ``joined`` once Redis has
  confirmed the subscription, then reads until the client closes. Prints ``ready PORT``
  on standard error.
- ``publish URL TOPIC NAME COUNT``: publishes ``NAME:0`` .. ``NAME:COUNT-1`` to TOPIC, text
  for even numbers and binary for odd ones, from a process without a server; exits 0.
- ``fork URL``: a hub attached to a server that serves a client and to one that does not
  serve yet, then ``os.fork()``. Checks that the child subscribes to EVERYONE for the
  second (its own connection to Redis has one subscription) and not for the first (the
  client gets one copy of what is published to EVERYONE, the parent's), and that once
  closed, the hub stays closed in a child; exits 0 if so.

Imported: :func:`flask_app` (WebSocket routes of a Flask app, with a hub), also served by
gunicorn as ``redis_apps:flask_app()`` with ``REDIS_URL`` set.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import flask
import redis
from timing import TIMEOUT

import syncws
from syncws.integrations.flask import Sock
from syncws.integrations.redis import EVERYONE, Hub


def rooms(hub: Hub, ws: syncws.ServerConnection, topic: str) -> None:
    """Join ``topic``, say ``joined`` once Redis confirmed it, then read until the end."""
    hub.join(ws, topic)
    if not hub.wait_subscribed(2 * TIMEOUT):
        ws.close(1011, "not subscribed")
        return
    ws.send("joined")
    for _ in ws:
        pass


def server(url: str) -> None:
    hub = Hub(url)

    def handler(ws: syncws.ServerConnection) -> None:
        rooms(hub, ws, ws.request.path.lstrip("/") if ws.request else "")

    with syncws.Server(handler, "127.0.0.1", 0) as srv:
        hub.attach(srv)
        print(f"ready {srv.port}", file=sys.stderr, flush=True)
        srv.serve_forever()


def publish(url: str, topic: str, name: str, count: int) -> None:
    with Hub(url) as hub:
        for n in range(count):
            message = f"{name}:{n}"
            hub.publish(topic, message if n % 2 == 0 else message.encode())


def flask_app(url: str | None = None) -> flask.Flask:
    """A Flask app whose route ``/rooms/<room>`` joins the room (as ``server`` does), with
    a hub on ``url`` (``REDIS_URL`` by default) attached to its ``Sock``; ``app.hub`` is
    the hub."""
    app = flask.Flask(__name__)
    sock = Sock(app)
    hub = Hub(url or os.environ["REDIS_URL"])
    hub.attach(sock)
    app.extensions["hub"] = hub

    @sock.route("/rooms/<room>")
    def room(ws: syncws.ServerConnection, room: str) -> None:
        rooms(hub, ws, room)

    return app


def fork(url: str) -> None:
    hub = Hub(url)
    idle = syncws.Server(lambda ws: None, "127.0.0.1", 0)  # made, not started
    with syncws.Server(lambda ws: ws.wait_closed(), "127.0.0.1", 0) as busy:
        busy.start()
        client = syncws.connect(f"ws://127.0.0.1:{busy.port}/")
        deadline = time.monotonic() + 2 * TIMEOUT
        while not busy.connections and time.monotonic() < deadline:
            time.sleep(0.01)  # the server registers the connection after its 101
        hub.attach(busy)
        hub.attach(idle)
        assert hub.wait_subscribed(2 * TIMEOUT)
        ready_r, ready_w = os.pipe()
        done_r, done_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                os.close(ready_r)
                os.close(done_w)
                if hub.wait_subscribed(2 * TIMEOUT):
                    os.write(ready_w, b"1")
                    os.read(done_r, 1)  # until the parent is done
                    status = 0
            finally:
                os._exit(status)
        os.close(ready_w)
        os.close(done_r)
        try:
            assert os.read(ready_r, 1) == b"1", "the child did not subscribe"
            check = redis.Redis.from_url(url)
            (child,) = [c for c in check.client_list() if c["name"] == f"syncws-hub-{pid}"]
            assert child["sub"] == "1", child
            assert hub.publish(EVERYONE, "hello") == 2
            assert client.recv(timeout=TIMEOUT) == "hello"
            try:
                extra = client.recv(timeout=0.5)
            except TimeoutError:
                pass
            else:
                raise AssertionError(f"the child delivered to the parent's client: {extra!r}")
        finally:
            os.close(done_w)
            os.waitpid(pid, 0)
        client.close()
    hub.close()
    # A closed hub stays closed in a child: no thread, no connection.
    pid = os.fork()
    if pid == 0:
        os._exit(0 if threading.active_count() == 1 else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0, "the closed hub started"


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2])
    elif sys.argv[1] == "fork":
        fork(sys.argv[2])
    else:
        publish(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
