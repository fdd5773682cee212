"""The keys of the opening handshake (RFC 6455 §1.3, §4.1, §4.2.2): the client's
``Sec-WebSocket-Key`` and the server's ``Sec-WebSocket-Accept`` computed from it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

__all__ = ["GUID", "accept_key", "generate_key"]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""The GUID that RFC 6455 §1.3 appends to the key before hashing it."""

#: The two headers that ask for (and grant) the upgrade, in both directions.
_UPGRADE_HEADERS = [("Upgrade", "websocket"), ("Connection", "Upgrade")]


def accept_key(key: str) -> str:
    """Compute ``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2).

    Returns:
        base64(SHA-1(key + :data:`GUID`)).
    """
    digest = hashlib.sha1((key + GUID).encode(), usedforsecurity=False).digest()
    return binascii.b2a_base64(digest, newline=False).decode()


def generate_key() -> str:
    """Return a fresh ``Sec-WebSocket-Key``: 16 random bytes, base64 (RFC 6455 §4.1)."""
    return base64.b64encode(os.urandom(16)).decode()
