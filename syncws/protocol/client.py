"""The client side of the state machine: the opening handshake, then frames."""

from __future__ import annotations

from collections.abc import Sequence

from ..exceptions import InvalidHandshake, InvalidMessage
from .connection import DEFAULT_MAX_SIZE, Protocol
from .events import Event, ResponseReceived, State
from .extensions import ClientExtensionFactory
from .handshake import build_request, generate_key, process_response
from .headers import build_authorization_basic
from .http11 import Headers, HeadersLike, Request, Response, ResponseParser
from .uri import WebSocketURI

__all__ = ["DEFAULT_USER_AGENT", "ClientProtocol"]

#: The default ``User-Agent`` header.
DEFAULT_USER_AGENT = "syncws"


class ClientProtocol(Protocol):
    """A client connection, from the handshake request to the TCP close.

    :meth:`connect` builds the request (which the I/O layer may inspect), and
    :meth:`send_request` sends it. :meth:`receive_data` then parses the answer and returns
    :class:`~syncws.protocol.events.ResponseReceived`; frames that arrived in the same
    packet follow in the same call. A non-``101`` answer or an invalid one ends the
    connection with the reason in :attr:`handshake_exc`
    (:class:`~syncws.exceptions.InvalidStatus` carries the response).

    Args:
        uri: Where to connect, from :func:`~syncws.protocol.uri.parse_uri`. Its user
            info, if any, becomes a Basic ``Authorization`` header.
        origin: The ``Origin`` header, none if ``None``.
        subprotocols: Subprotocols to offer, by preference.
        extensions: Extension factories whose offers to make.
        additional_headers: More request headers.
        user_agent_header: The ``User-Agent`` header; ``None`` omits it.
        max_size: See :class:`~syncws.protocol.connection.Protocol`.

    Attributes:
        request: The handshake request once sent.
        response: The handshake response once received.
        subprotocol: The negotiated subprotocol, if any.
        handshake_exc: Why the handshake failed, if it did.
    """

    # See Protocol.__slots__.
    __slots__ = (
        "_key",
        "_parser",
        "additional_headers",
        "available_subprotocols",
        "extension_factories",
        "handshake_exc",
        "origin",
        "uri",
        "user_agent_header",
    )

    def __init__(
        self,
        uri: WebSocketURI,
        *,
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        extensions: Sequence[ClientExtensionFactory] = (),
        additional_headers: HeadersLike | None = None,
        user_agent_header: str | None = DEFAULT_USER_AGENT,
        max_size: int | None = DEFAULT_MAX_SIZE,
    ) -> None:
        super().__init__(is_client=True, state=State.CONNECTING, max_size=max_size)
        self.uri = uri
        self.origin = origin
        self.available_subprotocols = subprotocols
        self.extension_factories = list(extensions)
        self.additional_headers = additional_headers
        self.user_agent_header = user_agent_header
        self.handshake_exc: Exception | None = None
        self._key = generate_key()
        self._parser = ResponseParser()

    def connect(self) -> Request:
        """Build the handshake request (RFC 6455 §4.1)."""
        headers = Headers(self.additional_headers or ())
        if self.uri.user_info is not None and "Authorization" not in headers:
            headers["Authorization"] = build_authorization_basic(*self.uri.user_info)
        return build_request(
            self.uri.host_header,
            self.uri.resource_name,
            key=self._key,
            origin=self.origin,
            subprotocols=self.available_subprotocols,
            extensions=self.extension_factories,
            additional_headers=headers,
            user_agent_header=self.user_agent_header,
        )

    def send_request(self, request: Request) -> None:
        """Send the handshake request."""
        self.request = request
        self._out.append(request.serialize())

    def _receive_handshake(self, data: bytes, events: list[Event]) -> bytes | None:
        try:
            response = self._parser.feed(data)
        except InvalidMessage as exc:
            self._handshake_failed(exc)
            return None
        if response is None:
            return None
        return self._process_response(response, events)

    def _receive_handshake_eof(self) -> None:
        try:
            response = self._parser.feed_eof()
        except InvalidMessage as exc:
            self._handshake_failed(exc)
        else:
            self._process_response(response, [])

    def _process_response(self, response: Response, events: list[Event]) -> bytes | None:
        self.response = response
        events.append(ResponseReceived(response))
        try:
            self.subprotocol, extensions = process_response(
                response,
                key=self._key,
                subprotocols=self.available_subprotocols,
                extensions=self.extension_factories,
            )
        except InvalidHandshake as exc:
            self._handshake_failed(exc)
            return None
        self._set_extensions(extensions)
        self.state = State.OPEN
        return self._parser.remainder

    def _handshake_failed(self, exc: InvalidHandshake) -> None:
        self.handshake_exc = exc
        self.state = State.CLOSED
        self._discard = True
        self._close_transport = True
