"""Exceptions raised by syncws.

Every exception derives from :class:`WebSocketException`, so ``except
syncws.WebSocketException`` catches anything the library raises on purpose.

The hierarchy::

    WebSocketException
    ├── ConnectionClosed
    │   ├── ConnectionClosedOK
    │   └── ConnectionClosedError
    ├── InvalidURI
    ├── InvalidHandshake
    │   ├── InvalidMessage
    │   ├── InvalidStatus
    │   │   └── InvalidRedirect
    │   │       ├── TooManyRedirects
    │   │       └── InsecureRedirect
    │   ├── ProxyError
    │   │   ├── InvalidProxyStatus
    │   │   ├── ProxyAuthenticationError
    │   │   └── InvalidProxyMessage
    │   ├── InvalidHeader
    │   │   └── InvalidOrigin
    │   └── NegotiationError
    ├── ProtocolError
    │   └── PayloadTooBig
    └── ConcurrencyError

This module imports nothing from the rest of the package so that both the Sans-I/O core
(:mod:`syncws.protocol`) and the blocking runtime can use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .protocol.frames import Close
    from .protocol.http11 import Response

__all__ = [
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
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
    "TooManyRedirects",
    "WebSocketException",
]


class WebSocketException(Exception):
    """Base class for every exception raised by syncws."""


class ConnectionClosed(WebSocketException):
    """Raised when using a connection that is closed or closing.

    Attributes:
        rcvd: The close frame received from the peer, or ``None`` when the TCP connection
            ended without one (the peer vanished, or we failed the connection first).
        sent: The close frame sent to the peer, or ``None`` when none was sent.
        rcvd_then_sent: ``True`` when the peer started the closing handshake, ``False`` when
            we did, ``None`` when the handshake did not complete.
    """

    def __init__(
        self,
        rcvd: Close | None,
        sent: Close | None,
        rcvd_then_sent: bool | None = None,
    ) -> None:
        self.rcvd = rcvd
        self.sent = sent
        self.rcvd_then_sent = rcvd_then_sent
        # The message is made by __str__ when needed, not for every exception raised.
        super().__init__(rcvd, sent, rcvd_then_sent)

    def __str__(self) -> str:
        if self.rcvd is None and self.sent is None:
            return "no close frame received or sent"
        if self.rcvd is None:
            return f"sent {self.sent}; no close frame received"
        if self.sent is None:
            return f"received {self.rcvd}; no close frame sent"
        if self.rcvd_then_sent:
            return f"received {self.rcvd}; then sent {self.sent}"
        return f"sent {self.sent}; then received {self.rcvd}"

    @property
    def code(self) -> int:
        """The close code the connection ended with (1006 when no close frame arrived)."""
        return 1006 if self.rcvd is None else self.rcvd.code

    @property
    def reason(self) -> str:
        """The close reason the peer gave ("" when no close frame arrived)."""
        return "" if self.rcvd is None else self.rcvd.reason


class ConnectionClosedOK(ConnectionClosed):
    """The connection ended normally: close code 1000 or 1001 (or 1005, no code) both ways."""


class ConnectionClosedError(ConnectionClosed):
    """The connection ended with an error: any other close code, or no close frame."""


class InvalidURI(WebSocketException):
    """A ``ws://`` or ``wss://`` URI could not be parsed.

    Attributes:
        uri: The URI as given.
        msg: Why it is invalid.
    """

    def __init__(self, uri: str, msg: str) -> None:
        self.uri = uri
        self.msg = msg
        super().__init__(f"{uri!r} isn't a valid WebSocket URI: {msg}")


class InvalidHandshake(WebSocketException):
    """The opening handshake failed.

    On the server side, the status code and headers say how to answer the client (see the
    table of limits in the docs); a client that receives such an answer raises
    :class:`InvalidStatus` instead.

    Attributes:
        status_code: The HTTP status a server answers with (400 unless a subclass says otherwise).
        headers: Extra ``(name, value)`` pairs for that answer, e.g. ``Allow: GET`` for 405.
    """

    status_code: int = 400

    def __init__(
        self,
        msg: str,
        *,
        status_code: int | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(msg)
        if status_code is not None:
            self.status_code = status_code
        self.headers: list[tuple[str, str]] = headers or []


class InvalidMessage(InvalidHandshake):
    """The HTTP request or response of the opening handshake is malformed or too large."""


class InvalidStatus(InvalidHandshake):
    """The server answered the opening handshake with a status other than 101.

    Attributes:
        response: The :class:`~syncws.Response`, with its status, headers and body.
    """

    def __init__(self, response: Response) -> None:
        self.response = response
        super().__init__(
            f"server rejected WebSocket connection: HTTP {response.status_code}",
            status_code=response.status_code,
        )


class InvalidRedirect(InvalidStatus):
    """The server redirected the opening handshake (HTTP 3xx) and the client did not follow.

    Raised as such when the ``Location`` header is missing or not a ``ws://``, ``wss://``
    URI (relative ones are resolved), or when a redirect cannot be followed (the connection
    was opened on a socket passed with ``sock``). :attr:`response` is the redirect.
    """

    def __init__(self, response: Response, msg: str) -> None:
        super().__init__(response)
        self.args = (msg,)


class TooManyRedirects(InvalidRedirect):
    """The server redirected more than ``max_redirects`` times in a row.

    Attributes:
        max_redirects: The limit that was reached.
    """

    def __init__(self, response: Response, max_redirects: int) -> None:
        self.max_redirects = max_redirects
        super().__init__(response, f"more than {max_redirects} redirects (max_redirects)")


class InsecureRedirect(InvalidRedirect):
    """A ``wss://`` server redirected to a ``ws://`` URI: following it would drop TLS."""


class ProxyError(InvalidHandshake):
    """The proxy could not open a tunnel to the server (base class, and raised as such when a
    SOCKS proxy refuses: its reason is in the message and in ``__cause__``).

    A proxy that cannot be reached at all raises :exc:`OSError` (or :exc:`TimeoutError`)
    instead, with the proxy's address in the message.
    """


class InvalidProxyStatus(ProxyError):
    """An HTTP proxy answered ``CONNECT`` with a status other than 2xx: 403 (the proxy's
    rules forbid that destination), 407 (proxy authentication required or wrong), 502 (the
    proxy could not reach the server), ...

    Attributes:
        response: The proxy's :class:`~syncws.Response`.
    """

    def __init__(self, response: Response) -> None:
        self.response = response
        super().__init__(
            f"proxy rejected connection: HTTP {response.status_code} {response.reason_phrase}",
            status_code=response.status_code,
        )


class ProxyAuthenticationError(ProxyError):
    """A SOCKS5 proxy refused the username and password of the proxy URL, or wants
    credentials and none were given (an HTTP proxy answers 407 instead:
    :exc:`InvalidProxyStatus`). The message names the proxy, never the password."""


class InvalidProxyMessage(ProxyError):
    """The proxy's answer to ``CONNECT`` is not valid HTTP, or the proxy closed the
    connection before answering."""


class InvalidHeader(InvalidHandshake):
    """A handshake header is missing or has a value that is not acceptable.

    Attributes:
        name: The header name.
        value: The offending value, or ``None`` when the header is missing.
    """

    def __init__(
        self,
        name: str,
        value: str | None = None,
        msg: str | None = None,
        *,
        status_code: int | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.name = name
        self.value = value
        if msg is None:
            # Quoted: the value comes from the peer and ends up in log lines.
            msg = f"missing {name} header" if value is None else f"invalid {name} header: {value!r}"
        super().__init__(msg, status_code=status_code, headers=headers)


class InvalidOrigin(InvalidHeader):
    """The ``Origin`` header is missing or not in the allowed origins (HTTP 403)."""

    status_code = 403

    def __init__(self, origin: str | None) -> None:
        super().__init__("Origin", origin, f"origin not allowed: {origin!r}")


class NegotiationError(InvalidHandshake):
    """Subprotocol or extension negotiation failed."""


class ProtocolError(WebSocketException):
    """The peer broke RFC 6455; the connection is failed with the code in :attr:`code`.

    Attributes:
        code: The close code sent to the peer (1002 protocol error, 1007 invalid data,
            1009 too big, ...).
    """

    code: int = 1002

    def __init__(self, msg: str, *, code: int | None = None) -> None:
        super().__init__(msg)
        if code is not None:
            self.code = code


class PayloadTooBig(ProtocolError):
    """A message exceeded ``max_size`` (close code 1009)."""

    code = 1009


class ConcurrencyError(WebSocketException, RuntimeError):
    """Two threads called a method that allows one caller at a time, e.g. two ``recv()``."""
