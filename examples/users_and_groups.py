#!/usr/bin/env python
"""Send a message to one user, or to a group of users, from any thread of the server.

Each connection records who it is for in attributes of its own (``ws.user``,
``ws.groups``); :attr:`syncws.Server.connections` lists the open connections, so finding a
user's connections is a loop over it. Here a client says who it is in its first message,
then ``join GROUP`` joins a group; every line typed on the server's standard input,
``USER message`` or ``@GROUP message``, is sent there. Authenticate users for real in a
server that others can reach (docs/howto/authentication.rst).

Run it, connect with ``python -m syncws ws://localhost:8765/`` in a few terminals (type a
name, then ``join ops``), and type ``alice hello`` or ``@ops hello`` in the server's
terminal. Ctrl-C stops it.
"""

from __future__ import annotations

import sys
import threading

import syncws


def handler(ws: syncws.ServerConnection) -> None:
    ws.user = ws.recv(timeout=10)  # who this is: see the docstring
    ws.groups = set()
    ws.send(f"welcome {ws.user}")
    for message in ws:
        if isinstance(message, str) and message.startswith("join "):
            ws.groups.add(message.removeprefix("join "))
            ws.send(f"joined {message.removeprefix('join ')}")


def send_to_user(server: syncws.Server, user: str, message: str) -> int:
    """Send ``message`` to every connection of ``user``; return how many got it."""
    sent = 0
    for ws in server.connections:
        # getattr: a connection whose handler has not set ws.user yet has none.
        if getattr(ws, "user", None) == user:
            try:
                ws.send(message)  # thread-safe; blocks while that client's buffers are full
            except syncws.ConnectionClosed:
                continue  # closed since server.connections was read
            sent += 1
    return sent


def send_to_group(server: syncws.Server, group: str, message: str) -> int:
    """Send ``message`` to every member of ``group`` without waiting for slow clients."""
    members = [ws for ws in server.connections if group in getattr(ws, "groups", ())]
    return syncws.broadcast(members, message)


def read_commands(server: syncws.Server) -> None:
    """Send each line of standard input: ``USER message`` or ``@GROUP message``."""
    for line in sys.stdin:
        target, _, message = line.rstrip("\n").partition(" ")
        if target.startswith("@"):
            sent = send_to_group(server, target[1:], message)
        else:
            sent = send_to_user(server, target, message)
        print(f"sent to {sent} connections", flush=True)


def main() -> None:
    with syncws.Server(handler, "localhost", 8765) as server:
        threading.Thread(target=read_commands, args=(server,), daemon=True).start()
        print(f"listening on ws://localhost:{server.port}/", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass  # leaving the with block shuts the server down gracefully


if __name__ == "__main__":
    main()
