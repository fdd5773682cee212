#!/usr/bin/env python
"""Authenticate WebSocket clients with a token, and refuse pages of other sites.

A browser's ``WebSocket`` cannot send an ``Authorization`` header, so a page that knows a
token sends it in the URL, ``wss://host/?token=...``, or as its first message. Both are
here, with the checks a server open to browsers needs:

* ``query_token_auth``: a ``process_request`` hook that reads ``?token=`` and answers 401
  before the WebSocket opens. syncws never logs the query string.
* ``first_message_auth``: a handler that waits (10 s at most) for a token as the first
  message, and closes with 1008 (policy violation) if it is not valid.
* ``ORIGINS``: the pages allowed to connect, against cross-site WebSocket hijacking.

The tokens are short-lived and signed with HMAC (``issue_token``, ``check_token``): the
web application that serves the page would issue them, with the same secret.

``python examples/token_auth.py [PORT [PORT2]]`` serves both: the query string on PORT
(8765), the first message on PORT2 (PORT + 1); it prints a token to try them with
``python -m syncws``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sys
import threading
import time
import urllib.parse

import syncws
from syncws.protocol.handshake import OriginRule

# In a real deployment, a secret from the configuration, shared with the web application.
SECRET = secrets.token_bytes(32)

# Pages allowed to open connections: exact values, or patterns that must match the whole
# Origin. None admits clients that send no Origin: programs, not browsers.
ORIGINS: list[OriginRule] = [
    "https://chat.example.com",
    re.compile(r"https://[a-z0-9-]+\.chat\.example\.com"),
    "http://localhost:8000",
    None,
]


def issue_token(user: str, ttl: float = 60) -> str:
    """A token for ``user``, valid ``ttl`` seconds: ``user:expiry:signature``."""
    payload = f"{user}:{int(time.time() + ttl)}"
    signature = hmac.new(SECRET, payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}:{signature}"


def check_token(token: str) -> str | None:
    """The user of a valid, unexpired ``token``; ``None`` for any other string."""
    payload, _, signature = token.rpartition(":")
    expected = hmac.new(SECRET, payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, expected):
        return None
    user, _, expiry = payload.rpartition(":")
    if not expiry.isdigit() or int(expiry) < time.time():
        return None
    return user


def query_token_auth(
    ws: syncws.ServerConnection, request: syncws.Request
) -> syncws.Response | None:
    """``process_request``: require ``?token=`` with a valid token."""
    query = urllib.parse.urlsplit(request.path).query
    tokens = urllib.parse.parse_qs(query).get("token", [])
    user = check_token(tokens[0]) if len(tokens) == 1 else None
    if user is None:
        return ws.respond(401, "Missing or invalid token.\n")
    ws.username = user
    return None


def greet(ws: syncws.ServerConnection) -> None:
    """The handler behind query_token_auth: the user is known when it starts."""
    ws.send(f"Hello, {ws.username}!")
    for message in ws:
        ws.send(message)


def first_message_auth(ws: syncws.ServerConnection) -> None:
    """A handler that takes the token from the first message."""
    try:
        user = check_token(ws.recv(timeout=10, decode=True))
    except (TimeoutError, UnicodeDecodeError):
        user = None
    if user is None:
        ws.close(syncws.CloseCode.POLICY_VIOLATION, "authentication failed")
        return
    ws.username = user
    ws.send(f"Hello, {user}!")
    for message in ws:
        ws.send(message)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    port2 = int(sys.argv[2]) if len(sys.argv) > 2 else port + 1
    first = syncws.Server(first_message_auth, "localhost", port2, origins=ORIGINS)
    threading.Thread(target=first.serve_forever, daemon=True).start()
    print(f"token for alice, valid 10 minutes: {issue_token('alice', 600)}", flush=True)
    try:
        syncws.serve(greet, "localhost", port, process_request=query_token_auth, origins=ORIGINS)
    finally:
        first.shutdown()


if __name__ == "__main__":
    main()
