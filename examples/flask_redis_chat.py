#!/usr/bin/env python
"""Chat rooms that work across gunicorn workers (and hosts), through Redis.

Each worker process has its own WebSocket clients: :func:`syncws.broadcast` alone would
reach those of one worker. A :class:`~syncws.integrations.redis.Hub` per process shares
topics through Redis pub/sub: a message published to a room, by any worker (or any other
program), reaches every member of the room, whichever worker holds its connection.

Run (needs ``pip install syncws[flask,redis]`` and a Redis)::

    REDIS_URL=redis://localhost:6379/0 \\
        gunicorn -k gthread --threads 32 -w 2 --chdir examples flask_redis_chat:app

then, in two terminals or more::

    python -m syncws ws://localhost:8000/chat/lobby
    curl -d "hello from HTTP" http://localhost:8000/rooms/lobby
    curl -d "maintenance in 5 minutes" http://localhost:8000/announce

``--preload`` works too: the hub made in gunicorn's arbiter starts afresh in each worker,
still attached to ``sock``.
"""

from __future__ import annotations

import os

import flask

import syncws
from syncws.integrations.flask import Sock
from syncws.integrations.redis import EVERYONE, Hub

app = flask.Flask(__name__)
sock = Sock(app, ping_interval=20)
# One hub per process. Made at import, it is each worker's own: gunicorn imports the app
# in every worker (and a hub inherited through --preload starts afresh in each).
hub = Hub(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
# What is published to EVERYONE reaches every WebSocket client of the Sock's routes.
hub.attach(sock)


@sock.route("/chat/<room>")
def chat(ws: syncws.ServerConnection, room: str) -> None:
    """Join ``room``; publish every message to it. Leaving is automatic on close."""
    hub.join(ws, room)
    hub.wait_subscribed(timeout=5)
    ws.send(f"joined {room} (worker {os.getpid()})")
    for message in ws:
        hub.publish(room, message)


@app.post("/rooms/<room>")
def post(room: str) -> tuple[str, int]:
    """A normal route that publishes to a room, from whichever worker gets the request."""
    hub.publish(room, flask.request.get_data(as_text=True))
    return "", 204


@app.post("/announce")
def announce() -> tuple[str, int]:
    """Tell every WebSocket client of every worker (and of every other attached server)."""
    hub.publish(EVERYONE, flask.request.get_data(as_text=True))
    return "", 204
