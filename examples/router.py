#!/usr/bin/env python3
"""Several endpoints on one server, dispatched by URL: an echo and chat rooms.

    python examples/router.py [PORT]

ws://localhost:PORT/echo echoes; ws://localhost:PORT/chat/NAME joins the chat room NAME,
where every message goes to everyone in that room. Any other path gets HTTP 404, before
a WebSocket connection opens. Ctrl-C or SIGTERM stops the server gracefully.

It needs Werkzeug for the URL map (pip install werkzeug).
"""

import logging
import signal
import sys

from werkzeug.routing import Map, Rule

import syncws


def echo(ws):
    for message in ws:
        ws.send(message)


def chat(ws, room):
    ws.room = room  # connections accept attributes of your own
    for message in ws:
        members = [peer for peer in ws.server.connections if getattr(peer, "room", None) == room]
        syncws.broadcast(members, f"{room}: {message}")


url_map = Map(
    [
        Rule("/echo", endpoint=echo),
        Rule("/chat/<room>", endpoint=chat),
    ]
)


def main():
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    # SIGTERM (systemd, docker stop) stops it as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with syncws.route(url_map, "localhost", port) as server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass  # leaving the with block shuts the server down: clients get 1001


if __name__ == "__main__":
    main()
