#!/usr/bin/env python
"""HTTP Basic authentication: a password before the WebSocket opens.

``python examples/basic_auth.py [PORT]`` (default 8765) greets ``alice`` (password
``s3cret``) and ``bob`` (``hunter2``); ``/health`` answers without a password. A client
passes the credentials in the URI: ``python -m syncws ws://alice:s3cret@localhost:8765/``.
Basic authentication sends the password in clear: serve it over ``wss://`` only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys

import syncws

# The simplest: one user (or a list of pairs), passwords compared in constant time.
one_user = syncws.basic_auth(("alice", "s3cret"))


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 100_000)


def new_user(password: str) -> tuple[bytes, bytes]:
    salt = secrets.token_bytes(16)
    return salt, hash_password(password, salt)


# A user database: name -> (salt, hash of the password). Your application's, in practice.
USERS = {"alice": new_user("s3cret"), "bob": new_user("hunter2")}


def check(username: str, password: str) -> bool:
    if username not in USERS:
        return False
    salt, expected = USERS[username]
    return hmac.compare_digest(hash_password(password, salt), expected)


auth = syncws.basic_auth(check_credentials=check, realm="chat")


def process_request(ws: syncws.ServerConnection, request: syncws.Request) -> syncws.Response | None:
    if request.path == "/health":
        return ws.respond(200, "OK\n")
    return auth(ws, request)


def handler(ws: syncws.ServerConnection) -> None:
    ws.send(f"Hello, {ws.username}!")


def greeting(port: int) -> str | bytes:
    """A client: the credentials go in the URI."""
    with syncws.connect(f"ws://alice:s3cret@localhost:{port}/") as ws:
        return ws.recv()  # "Hello, alice!"


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    syncws.serve(handler, "localhost", port, process_request=process_request)


if __name__ == "__main__":
    main()
