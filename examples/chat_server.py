#!/usr/bin/env python
"""A chat room: every message from one client goes to every connected client.

Run it, then open several clients, e.g. ``python -m syncws ws://localhost:8765/`` in a few
terminals, and type. Ctrl-C stops it gracefully.

:func:`syncws.broadcast` never blocks: a client that cannot keep up misses messages instead
of slowing down everyone else.
"""

import argparse
import logging

import syncws


def chat(ws: syncws.ServerConnection) -> None:
    # Inside a handler, the server is ws.server; server.connections is the set of open
    # connections, this one included, so senders see their own messages too.
    syncws.broadcast(ws.server.connections, f"{ws.remote_address} joined")
    for message in ws:
        syncws.broadcast(ws.server.connections, message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
    print(f"Chat server on ws://{args.host}:{args.port}/", flush=True)
    syncws.serve(chat, args.host, args.port)


if __name__ == "__main__":
    main()
