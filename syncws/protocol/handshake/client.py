"""The client's side of the opening handshake (RFC 6455 §4.1): build the request, then
check the server's answer and the extensions and subprotocol it chose."""

from __future__ import annotations

from collections.abc import Sequence

from ...exceptions import InvalidHeader, InvalidStatus, NegotiationError
from ..extensions import ClientExtensionFactory, Extension
from ..headers import (
    PROTOCOL_RE,
    TOKEN_RE,
    header_items,
    joined_values,
    parse_extension_header,
    serialize_extension_header,
)
from ..http11 import Headers, HeadersLike, Request, Response
from .keys import _UPGRADE_HEADERS, accept_key

__all__ = ["build_request", "process_response"]


def build_request(
    host_header: str,
    resource: str,
    *,
    key: str,
    origin: str | None = None,
    subprotocols: Sequence[str] | None = None,
    extensions: Sequence[ClientExtensionFactory] = (),
    additional_headers: HeadersLike | None = None,
    user_agent_header: str | None = None,
) -> Request:
    """Build a client's handshake request (RFC 6455 §4.1).

    Args:
        host_header: The ``Host`` value, see :attr:`~syncws.protocol.uri.WebSocketURI.host_header`.
        resource: The resource name: path and query string.
        key: From :func:`~syncws.protocol.handshake.keys.generate_key`; keep it for
            :func:`process_response`.
        origin, user_agent_header: Header values, none if ``None``.
        subprotocols: Subprotocols to offer, by preference.
        extensions: Extension factories whose offers to make, in order.
        additional_headers: More headers, appended.

    Raises:
        ValueError: A subprotocol is not a token, or a header is invalid.
    """
    headers = Headers()
    headers["Host"] = host_header
    headers.update(_UPGRADE_HEADERS)
    headers["Sec-WebSocket-Key"] = key
    headers["Sec-WebSocket-Version"] = "13"
    if origin is not None:
        headers["Origin"] = origin
    if extensions:
        offers = [(factory.name, factory.get_request_params()) for factory in extensions]
        headers["Sec-WebSocket-Extensions"] = serialize_extension_header(offers)
    if subprotocols:
        for subprotocol in subprotocols:
            if not TOKEN_RE.fullmatch(subprotocol):
                raise ValueError(f"invalid subprotocol: {subprotocol!r}")
        headers["Sec-WebSocket-Protocol"] = ", ".join(subprotocols)
    if additional_headers is not None:
        headers.update(additional_headers)
    if user_agent_header is not None:
        headers["User-Agent"] = user_agent_header
    return Request(resource, headers)


def process_response(
    response: Response,
    *,
    key: str,
    subprotocols: Sequence[str] | None = None,
    extensions: Sequence[ClientExtensionFactory] = (),
) -> tuple[str | None, list[Extension]]:
    """Check the server's answer to a handshake request (RFC 6455 §4.1, end).

    ``key``, ``subprotocols`` and ``extensions`` are what :func:`build_request` got.

    Returns:
        The subprotocol the server chose (or ``None``) and the active extensions.

    Raises:
        InvalidStatus: The status is not 101.
        InvalidHeader: ``Upgrade``, ``Connection`` or ``Sec-WebSocket-Accept`` is wrong, or
            ``Sec-WebSocket-Protocol`` names more than one or one that wasn't offered.
        NegotiationError: An extension wasn't offered, or its factory refused the answer.
    """
    if response.status_code != 101:
        raise InvalidStatus(response)
    headers = response.headers
    if "upgrade" not in [item.lower() for item in header_items(headers, "Connection")]:
        raise InvalidHeader("Connection", joined_values(headers, "Connection"))
    if [item.lower() for item in header_items(headers, "Upgrade", PROTOCOL_RE)] != ["websocket"]:
        raise InvalidHeader("Upgrade", joined_values(headers, "Upgrade"))
    if headers.get_all("Sec-WebSocket-Accept") != [accept_key(key)]:
        raise InvalidHeader("Sec-WebSocket-Accept", joined_values(headers, "Sec-WebSocket-Accept"))

    accepted = _accept_extensions(headers, extensions)  # checked first, as it always was
    return _chosen_subprotocol(headers, subprotocols), accepted


def _accept_extensions(
    headers: Headers, extensions: Sequence[ClientExtensionFactory]
) -> list[Extension]:
    """The extensions the server's answer activates, each by the first factory of its name
    that accepts it; one the client did not offer, or that its factory refuses, fails."""
    accepted: list[Extension] = []
    used: set[int] = set()
    for value in headers.get_all("Sec-WebSocket-Extensions"):
        for name, params in parse_extension_header(value):
            error: NegotiationError | None = None
            for i, factory in enumerate(extensions):
                if i in used or factory.name != name:
                    continue
                try:
                    extension = factory.process_response_params(params, accepted)
                except NegotiationError as exc:
                    error = exc
                    continue
                used.add(i)
                accepted.append(extension)
                break
            else:
                raise NegotiationError(f"unexpected or refused extension: {name}") from error
    return accepted


def _chosen_subprotocol(headers: Headers, subprotocols: Sequence[str] | None) -> str | None:
    """The subprotocol the server chose: at most one, among those offered."""
    chosen = header_items(headers, "Sec-WebSocket-Protocol")
    if len(chosen) > 1:
        raise InvalidHeader(
            "Sec-WebSocket-Protocol", ", ".join(chosen), "server chose more than one subprotocol"
        )
    if chosen and chosen[0] not in (subprotocols or ()):
        raise InvalidHeader(
            "Sec-WebSocket-Protocol", chosen[0], f"unexpected subprotocol: {chosen[0]}"
        )
    return chosen[0] if chosen else None
