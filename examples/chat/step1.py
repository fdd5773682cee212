#!/usr/bin/env python
"""Tutorial, step 1: a chat room. Each client says its name, then every message it sends
goes to everyone connected.

``python examples/chat/step1.py``, then ``python -m syncws ws://localhost:8765/`` in
two or three terminals. Ctrl-C stops the server.
"""

from __future__ import annotations

import logging

import syncws


def members(server: syncws.Server) -> list[syncws.ServerConnection]:
    """The connections that have said their name: the people in the room."""
    return [ws for ws in server.connections if hasattr(ws, "name")]


def chat(ws: syncws.ServerConnection) -> None:
    ws.send("Welcome! What is your name?")
    try:
        name = ws.recv(timeout=60)
    except TimeoutError:
        ws.close(syncws.CloseCode.POLICY_VIOLATION, "no name given")
        return
    if not isinstance(name, str) or not name.strip():
        ws.close(syncws.CloseCode.POLICY_VIOLATION, "a name is some text")
        return
    ws.name = name.strip()[:32]

    syncws.broadcast(members(ws.server), f"{ws.name} joined")
    try:
        for message in ws:
            if isinstance(message, str):  # text only: bytes would print as b'...'
                syncws.broadcast(members(ws.server), f"{ws.name}: {message}")
    finally:
        # Closed by now, so no longer among the members.
        syncws.broadcast(members(ws.server), f"{ws.name} left")


if __name__ == "__main__":
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
    syncws.serve(chat, "localhost", 8765)
