#!/usr/bin/env python
"""Chat rooms across server processes and hosts, through Redis.

Each process has a :class:`~syncws.integrations.redis.Hub` on the same Redis: what a client
sends to its room is published to Redis, and every process delivers it to the members it
holds. An announcement to :data:`~syncws.integrations.redis.EVERYONE` reaches every client
of every server, and any program may send one, with or without a server.

Run (needs a Redis; ``REDIS_URL``, ``redis://localhost:6379/0`` by default)::

    python examples/redis_chat_server.py 8765 &     # as many as you like,
    python examples/redis_chat_server.py 8765 &     # here on one port (reuse_port)
    python -m syncws ws://localhost:8765/lobby
    python examples/redis_chat_server.py --announce "maintenance in 5 minutes"
"""

from __future__ import annotations

import os
import sys

import syncws
from syncws.integrations.redis import EVERYONE, Hub, RedisUnavailable

# One hub per process: one connection to Redis and one thread, whatever the rooms.
hub = Hub(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))


def chat(ws: syncws.ServerConnection) -> None:
    """Join the room named by the path; publish every message to it."""
    assert ws.request is not None
    room = ws.request.path.strip("/") or "lobby"
    hub.join(ws, room)  # left by itself when the connection closes
    hub.wait_subscribed(timeout=5)  # so that the client misses nothing from now on
    ws.send(f"joined {room}")
    for message in ws:
        try:
            hub.publish(room, message)  # str stays text, bytes stay binary
        except RedisUnavailable:
            ws.send("the chat is unavailable for a moment")


def serve(port: int) -> None:
    """Serve the rooms; attached, the server's clients also get what goes to EVERYONE."""
    with syncws.Server(chat, "localhost", port, reuse_port=True) as server:
        hub.attach(server)
        print(f"serving on ws://localhost:{server.port}/", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass  # the with block closes the connections with 1001


def announce(text: str) -> None:
    """Tell every client of every server: from any program, with or without a server."""
    reached = hub.publish(EVERYONE, text)
    print(f"announced to {reached} server processes", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--announce":
        announce(sys.argv[2])
    else:
        serve(int(sys.argv[1]))
