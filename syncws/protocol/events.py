"""What the Sans-I/O protocol reports: connection states and events.

:meth:`~syncws.protocol.connection.Protocol.receive_data` returns a list of
:data:`Event`; the names are also importable from :mod:`syncws.protocol.connection`.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING

from .frames import Close

if TYPE_CHECKING:
    from .http11 import Request, Response

__all__ = [
    "Event",
    "Fragment",
    "Message",
    "PayloadRead",
    "Ping",
    "Pong",
    "RequestReceived",
    "ResponseReceived",
    "State",
]


class State(enum.IntEnum):
    """Connection states (RFC 6455 §4 and §7)."""

    CONNECTING = 0  #: the opening handshake is in progress
    OPEN = 1  #: messages flow both ways
    CLOSING = 2  #: a close frame was sent; waiting for the peer's and for the TCP close
    CLOSED = 3  #: the TCP connection is closed


@dataclasses.dataclass(slots=True)
class Message:
    """A whole message that arrived in a single frame.

    Attributes:
        data: ``str`` for a text message (UTF-8 already validated and decoded), ``bytes``
            for a binary one.
    """

    data: str | bytes


@dataclasses.dataclass(slots=True)
class Fragment:
    """One frame of a fragmented message (RFC 6455 §5.4).

    Fragments of a text message are decoded incrementally: ``data`` is a ``str`` holding the
    characters complete so far (a multi-byte character split across frames arrives with the
    frame that completes it), and invalid UTF-8 fails the connection on the frame where it
    appears. Fragments of a binary message are ``bytes``.

    Attributes:
        data: This fragment's payload.
        final: ``True`` on the last fragment of the message.
    """

    data: str | bytes
    final: bool


@dataclasses.dataclass(slots=True)
class Ping:
    """A ping arrived; the protocol has already queued the pong that answers it."""

    data: bytes


@dataclasses.dataclass(slots=True)
class Pong:
    """A pong arrived (the answer to one of our pings, or unsolicited)."""

    data: bytes


@dataclasses.dataclass(slots=True)
class RequestReceived:
    """A server received the client's opening handshake request."""

    request: Request


@dataclasses.dataclass(slots=True)
class ResponseReceived:
    """A client received the server's answer to its opening handshake."""

    response: Response


@dataclasses.dataclass(slots=True)
class PayloadRead:
    """The rest of a large binary or text message, for the I/O layer to read itself: see
    :meth:`~syncws.protocol.shortcuts.Shortcuts.start_payload_read`.

    Attributes:
        size: The payload's size, in bytes.
        received: The part of the payload received already, as it came on the wire (masked
            on the server side).
        mask: The masking key of the frame (``None`` on the client side).
        text: Whether it is a text message (its UTF-8 is checked when it is complete).
    """

    size: int
    received: bytes
    mask: bytes | None
    text: bool = False


#: What :meth:`~syncws.protocol.connection.Protocol.receive_data` returns a list of. A
#: received close frame is reported as the :class:`~syncws.protocol.frames.Close` itself.
Event = Message | Fragment | Ping | Pong | Close | RequestReceived | ResponseReceived
