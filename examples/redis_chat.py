#!/usr/bin/env python
"""Chat rooms across processes and hosts, through Redis pub/sub.

    REDIS_URL=redis://localhost:6379/0 python examples/redis_chat.py [PORT]

ws://localhost:PORT/ROOM joins the room ROOM; every message goes to every member of the
room, whichever process serves it: run several of these (same PORT: they share it), or on
several hosts. ``python examples/redis_chat.py announce TEXT`` sends TEXT to every
connection of every one of them. Needs ``pip install 'syncws[redis]'`` and a Redis.
"""

from __future__ import annotations

import contextlib
import os
import sys

import syncws
from syncws.integrations.redis import EVERYONE, Hub, RedisUnavailable

hub = Hub(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))


def chat(ws: syncws.ServerConnection) -> None:
    room = ws.request.path.strip("/")
    hub.join(ws, room)  # left automatically when ws closes
    hub.wait_subscribed(timeout=5)  # so that no message published from now on is missed
    ws.send(f"joined {room}")
    for message in ws:
        try:
            hub.publish(room, message)  # str stays text, bytes stay binary
        except RedisUnavailable:
            ws.send("the chat is unavailable for a moment")


def main() -> None:
    if sys.argv[1:2] == ["announce"]:
        hub.publish(EVERYONE, " ".join(sys.argv[2:]))  # from any process
        return
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    with syncws.Server(chat, "localhost", port, reuse_port=True) as server:
        hub.attach(server)  # EVERYONE reaches the connections of this server
        # Ctrl-C: out of serve_forever(), then of the with block, which shuts down (1001).
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


if __name__ == "__main__":
    main()
