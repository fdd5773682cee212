"""syncws: WebSocket server and client for threads, not asyncio."""

from __future__ import annotations

from .exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InsecureRedirect,
    InvalidHandshake,
    InvalidHeader,
    InvalidMessage,
    InvalidOrigin,
    InvalidProxyMessage,
    InvalidProxyStatus,
    InvalidRedirect,
    InvalidStatus,
    InvalidURI,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    ProxyAuthenticationError,
    ProxyError,
    TooManyRedirects,
    WebSocketException,
)
from .protocol.events import State
from .protocol.frames import Close, CloseCode
from .protocol.http11 import Headers, Request, Response
from .protocol.mask import IMPLEMENTATION as MASK_IMPLEMENTATION
from .runtime.auth import basic_auth
from .runtime.broadcast import broadcast
from .runtime.client import ClientConnection, connect
from .runtime.connection import Connection, Data
from .runtime.options import ConnectionOptions
from .runtime.reconnect import reconnect
from .runtime.router import route
from .runtime.server import Server, ServerConnection, serve

__version__ = "0.1.0"

__all__ = [
    "MASK_IMPLEMENTATION",
    "ClientConnection",
    "Close",
    "CloseCode",
    "ConcurrencyError",
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "ConnectionOptions",
    "Data",
    "Headers",
    "InsecureRedirect",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidMessage",
    "InvalidOrigin",
    "InvalidProxyMessage",
    "InvalidProxyStatus",
    "InvalidRedirect",
    "InvalidStatus",
    "InvalidURI",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "ProxyAuthenticationError",
    "ProxyError",
    "Request",
    "Response",
    "Server",
    "ServerConnection",
    "State",
    "TooManyRedirects",
    "WebSocketException",
    "__version__",
    "basic_auth",
    "broadcast",
    "connect",
    "reconnect",
    "route",
    "serve",
]
