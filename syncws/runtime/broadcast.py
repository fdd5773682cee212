"""Sending one message to many connections."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..protocol.events import State
from .connection import Connection, Data

__all__ = ["broadcast"]

logger = logging.getLogger("syncws.server")


def broadcast(connections: Iterable[Connection], message: Data, text: bool | None = None) -> int:
    """Send ``message`` to every connection in ``connections`` without blocking.

    The message is encoded once and queued on each connection without waiting: several
    threads may broadcast at once, and handlers may send meanwhile. A connection is skipped
    when its peer is not keeping up (a write is waiting for the peer to read, or more than
    64 KiB are already queued for it) or while its handler is in the middle of sending a
    fragmented message, so that one slow client never delays the others and the caller
    never blocks. Skipped connections are logged at WARNING on ``syncws.server``; closed
    ones are skipped silently.

    For a chat room or live updates, that is the right trade-off: a client that cannot keep
    up misses messages instead of making everybody wait. When every message must arrive,
    call :meth:`~syncws.ServerConnection.send` on each connection instead, which blocks
    (bounded by ``write_timeout``).

    Args:
        connections: E.g. ``server.connections``.
        message: ``str`` for a text message, bytes-like for binary.
        text: Override the message type as in :meth:`~syncws.ServerConnection.send`.

    Returns:
        How many connections the message was sent to.

    Raises:
        TypeError: ``message`` is neither ``str`` nor bytes-like.
    """
    if isinstance(message, str):
        payload, is_text = message.encode(), True if text is None else text
    elif isinstance(message, (bytes, bytearray, memoryview)):
        payload, is_text = bytes(message), False if text is None else text
    else:
        raise TypeError("broadcast sends str or bytes-like messages")
    sent = 0
    for conn in connections:
        if conn._send_nowait(payload, is_text):
            sent += 1
        elif conn.state is State.OPEN:
            logger.warning("%s: skipped by broadcast: the peer is not keeping up", conn.id)
    return sent
