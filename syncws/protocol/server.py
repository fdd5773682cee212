"""The server side of the state machine: the opening handshake, then frames."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..exceptions import InvalidHandshake, InvalidMessage
from .connection import DEFAULT_MAX_SIZE, Protocol
from .events import Event, RequestReceived, State
from .extensions import Extension, ServerExtensionFactory
from .handshake import OriginRule, process_request, reject, reject_handshake
from .http11 import Request, RequestParser, Response

__all__ = ["DEFAULT_SERVER_HEADER", "ServerProtocol"]

#: The default ``Server`` header.
DEFAULT_SERVER_HEADER = "syncws"


class ServerProtocol(Protocol):
    """A server connection, from the client's first byte to the TCP close.

    The handshake goes in three steps, so that the I/O layer can run hooks in between:
    :meth:`receive_data` returns :class:`~syncws.protocol.events.RequestReceived`;
    the I/O layer builds a response with :meth:`accept` (or :meth:`reject`, or any
    :class:`~syncws.protocol.http11.Response` of its own); :meth:`send_response` sends it
    and, for a ``101``, opens the connection. Frames that arrived with the request are
    processed by the next :meth:`receive_data` call (``receive_data(b"")`` if nothing else
    arrives).

    A malformed request is answered at once with the status of the error (414, 431, 405,
    505, 400: see :mod:`syncws.protocol.http11`); the error is in :attr:`handshake_exc`.

    Args:
        origins: Allowed ``Origin`` values, strings or compiled patterns (see
            :data:`~syncws.protocol.handshake.server.OriginRule`; ``None`` in the list allows
            requests without one); ``None`` allows any.
        subprotocols: Subprotocols the server supports, by preference.
        select_subprotocol: Chooses the subprotocol from ``(offered, available)``.
        extensions: Extension factories, e.g. for permessage-deflate.
        server_header: The ``Server`` header value; ``None`` omits it.
        max_size: See :class:`~syncws.protocol.connection.Protocol`.

    Attributes:
        request: The handshake request once received.
        response: The handshake response once sent.
        subprotocol: The negotiated subprotocol, if any.
        handshake_exc: Why the handshake failed, if it did.
    """

    # See Protocol.__slots__.
    __slots__ = (
        "_accepted",
        "_negotiated",
        "_parser",
        "available_subprotocols",
        "extension_factories",
        "handshake_exc",
        "origins",
        "select_subprotocol",
        "server_header",
    )

    def __init__(
        self,
        *,
        origins: Sequence[OriginRule] | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: Callable[[Sequence[str], Sequence[str]], str | None] | None = None,
        extensions: Sequence[ServerExtensionFactory] = (),
        server_header: str | None = DEFAULT_SERVER_HEADER,
        max_size: int | None = DEFAULT_MAX_SIZE,
    ) -> None:
        super().__init__(is_client=False, state=State.CONNECTING, max_size=max_size)
        self.origins = origins
        self.available_subprotocols = subprotocols
        self.select_subprotocol = select_subprotocol
        self.extension_factories = list(extensions)
        self.server_header = server_header
        self.handshake_exc: Exception | None = None
        self._parser: RequestParser | None = RequestParser()
        self._negotiated: tuple[str | None, Sequence[Extension]] = (None, ())
        self._accepted = False  # see accepted

    def _receive_handshake(self, data: bytes, events: list[Event]) -> bytes | None:
        if self._parser is None:
            self._buf += data  # frames sent before our answer: kept for later
            return None
        try:
            request = self._parser.feed(data)
        except InvalidMessage as exc:
            self.handshake_exc = exc
            self.send_response(reject_handshake(exc, server_header=self.server_header))
            return None
        if request is not None:
            self.request = request
            self._buf += self._parser.remainder
            self._parser = None  # its buffers are no longer needed
            events.append(RequestReceived(request))
        return None

    def _receive_handshake_eof(self) -> None:
        if self.request is None and self.handshake_exc is None:
            self.handshake_exc = InvalidMessage("connection closed before the handshake request")

    def has_buffered_data(self) -> bool:
        """Whether bytes that came with or after the request wait for :meth:`receive_data`."""
        return bool(self._buf)

    def accept(self, request: Request) -> Response:
        """Validate the request and build the answer: ``101`` or an error response.

        On failure, :attr:`handshake_exc` says why and the response carries the status of
        the error (426, 400, 403, ...).
        """
        try:
            response, subprotocol, extensions = process_request(
                request,
                origins=self.origins,
                available_subprotocols=self.available_subprotocols,
                select_subprotocol=self.select_subprotocol,
                extensions=self.extension_factories,
                server_header=self.server_header,
            )
        except InvalidHandshake as exc:
            self.handshake_exc = exc
            self._accepted = False
            return reject_handshake(exc, server_header=self.server_header)
        self._negotiated = (subprotocol, extensions)
        self._accepted = True
        return response

    @property
    def accepted(self) -> bool:
        """Whether :meth:`accept` accepted the request: only then may :meth:`send_response`
        send a ``101`` (a hook may still edit that ``101``, or answer something else)."""
        return self._accepted

    def reject(self, status_code: int, text: str) -> Response:
        """Build a plain-text response with ``status_code``, closing the connection."""
        return reject(status_code, text, server_header=self.server_header)

    def send_response(self, response: Response) -> None:
        """Send the handshake response; a ``101`` opens the connection, anything else ends
        it (:meth:`should_close_transport` becomes true).

        Raises:
            RuntimeError: A response was already sent.
            ValueError: A ``101`` for a request that :meth:`accept` did not accept (or
                that it was not asked about): the handshake's checks and negotiation would
                be skipped.
        """
        if self.state is not State.CONNECTING or self.response is not None:
            raise RuntimeError("the handshake response was already sent")
        if response.status_code == 101 and not self._accepted:
            raise ValueError("a 101 response needs a request that accept() accepted")
        self.response = response
        self._out.append(response.serialize())
        if response.status_code == 101:
            self.subprotocol, extensions = self._negotiated
            self._negotiated = (None, ())  # not needed any more
            if extensions:  # none yet: Protocol.__init__ set none
                self._set_extensions(extensions)
            self.state = State.OPEN
            # Kept for the connection's life, seldom read again: packed until they are.
            response.headers = response.headers._pack()
            if self.request is not None:
                self.request.headers = self.request.headers._pack()
        else:
            self.state = State.CLOSED
            self._discard = True
            self._close_transport = True
