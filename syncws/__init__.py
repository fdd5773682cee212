"""syncws: WebSocket server and client for threads, not asyncio.

This release has the Sans-I/O core (:mod:`syncws.protocol`); the blocking runtime follows.
"""

from __future__ import annotations

from .exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidHeader,
    InvalidMessage,
    InvalidOrigin,
    InvalidStatus,
    InvalidURI,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    WebSocketException,
)
from .protocol.connection import State
from .protocol.frames import Close, CloseCode
from .protocol.http11 import Headers, Request, Response
from .protocol.mask import IMPLEMENTATION as MASK_IMPLEMENTATION

__version__ = "0.1.0"

__all__ = [
    "MASK_IMPLEMENTATION",
    "Close",
    "CloseCode",
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Headers",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidMessage",
    "InvalidOrigin",
    "InvalidStatus",
    "InvalidURI",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "Request",
    "Response",
    "State",
    "WebSocketException",
    "__version__",
]
