"""The extension hook of the Sans-I/O core (RFC 6455 §9).

An extension transforms data frames on their way in (:meth:`Extension.decode`) and out
(:meth:`Extension.encode`) and may claim RSV bits. Negotiation goes through factories: a
client factory proposes parameters in ``Sec-WebSocket-Extensions`` and accepts the server's
answer; a server factory accepts or declines a client offer.

permessage-deflate (RFC 7692, :mod:`syncws.protocol.deflate`) is built on this hook; it
is the only extension in common use, but nothing here is specific to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .frames import Frame

__all__ = [
    "ClientExtensionFactory",
    "Extension",
    "ExtensionParameter",
    "ServerExtensionFactory",
]

#: One extension parameter: ``name`` or ``name=value`` (value ``None`` when absent).
ExtensionParameter = tuple[str, str | None]


class Extension(Protocol):
    """A negotiated extension, active on one connection."""

    #: Extension name as registered with IANA, e.g. ``"permessage-deflate"``.
    name: str
    #: RSV bits this extension may set: a subset of ``{1, 2, 3}`` (RSV1, RSV2, RSV3).
    rsv_bits: frozenset[int]

    # Optional (read with getattr, default False): ``plain_messages_unchanged = True``
    # declares that :meth:`decode` returns a whole unfragmented message with no RSV bit set
    # as it is, so :meth:`~syncws.protocol.shortcuts.Shortcuts.receive_message` may skip
    # the extension for such messages. permessage-deflate declares it.

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Transform an incoming frame (data frames and continuations only).

        Args:
            frame: The frame as parsed, unmasked.
            max_size: How many payload bytes the decoded frame may have at most, so that an
                extension that inflates data can stop before allocating more.

        Raises:
            PayloadTooBig: The decoded payload would exceed ``max_size``.
            ProtocolError: The frame is invalid for this extension.
        """
        ...

    def encode(self, frame: Frame) -> Frame:
        """Transform an outgoing frame (data frames and continuations only)."""
        ...


class ClientExtensionFactory(Protocol):
    """Offers an extension in a client's request and builds it from the server's answer."""

    name: str

    def get_request_params(self) -> Sequence[ExtensionParameter]:
        """Parameters to offer in ``Sec-WebSocket-Extensions``."""
        ...

    def process_response_params(
        self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]
    ) -> Extension:
        """Build the extension from the parameters the server accepted.

        Args:
            params: Parameters of the server's answer for this extension.
            accepted: Extensions already accepted earlier in the same header.

        Raises:
            NegotiationError: The answer is not acceptable; the client fails the handshake.
        """
        ...


class ServerExtensionFactory(Protocol):
    """Accepts or declines one extension offer in a client's request."""

    name: str

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Accept an offer.

        Args:
            params: Parameters of this offer.
            accepted: Extensions already accepted for this connection.

        Returns:
            The parameters to answer with, and the extension to activate.

        Raises:
            NegotiationError: This offer is declined; the server tries the next one.
        """
        ...
