"""The opening handshake of RFC 6455 §4: keys and the negotiation of both sides.

Both sides are plain functions over :class:`~syncws.protocol.http11.Request` and
:class:`~syncws.protocol.http11.Response`: a server validates a request with
:func:`process_request` and gets the ``101`` to send; a client builds its request with
:func:`build_request` and checks the answer with :func:`process_response`. The grammars of
the headers they read are in :mod:`~syncws.protocol.headers`, URIs in
:mod:`~syncws.protocol.uri`.

Failures raise :exc:`~syncws.exceptions.InvalidHandshake` subclasses whose ``status_code``
and ``headers`` say how a server answers (:func:`reject_handshake` builds that answer).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http
import os
import re
from collections.abc import Callable, Sequence

from ..exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidOrigin,
    InvalidStatus,
    NegotiationError,
)
from .extensions import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    ServerExtensionFactory,
)
from .headers import (
    PROTOCOL_RE,
    TOKEN_RE,
    header_items,
    joined_values,
    parse_extension_header,
    serialize_extension_header,
)
from .http11 import Headers, HeadersLike, Request, Response

__all__ = [
    "GUID",
    "OriginRule",
    "accept_key",
    "build_request",
    "generate_key",
    "process_request",
    "process_response",
    "reject",
    "reject_handshake",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""The GUID that RFC 6455 §1.3 appends to the key before hashing it."""

#: One item of ``origins``: an ``Origin`` value compared exactly, a compiled regular
#: expression that must match the whole value (``re.compile(r"https://[a-z]+\.example\.com")``),
#: or ``None`` to allow requests without ``Origin`` (non-browser clients).
OriginRule = str | re.Pattern[str] | None

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


def process_request(
    request: Request,
    *,
    origins: Sequence[OriginRule] | None = None,
    available_subprotocols: Sequence[str] | None = None,
    select_subprotocol: Callable[[Sequence[str], Sequence[str]], str | None] | None = None,
    extensions: Sequence[ServerExtensionFactory] = (),
    server_header: str | None = None,
) -> tuple[Response, str | None, list[Extension]]:
    """Validate a client's handshake request and build the ``101`` answer (RFC 6455 §4.2).

    Checks, in order: ``Upgrade: websocket`` and ``Connection: upgrade`` (426 with these
    headers: what a browser pointed at a WebSocket endpoint gets); one ``Host`` (400);
    ``Sec-WebSocket-Version: 13`` (426 with that header, RFC 6455 §4.4); one
    ``Sec-WebSocket-Key``, the base64 of 16 bytes (400); ``Origin`` (403); the syntax of
    ``Sec-WebSocket-Extensions`` and ``Sec-WebSocket-Protocol`` (400).

    Extensions: each offer, in the client's order, goes to each factory of its name until one
    accepts; :exc:`~syncws.exceptions.NegotiationError` declines. A factory accepts one offer
    at most, since clients offer alternatives of one extension.

    Subprotocol: ``select_subprotocol(offered, available)`` if given (it may raise
    :exc:`~syncws.exceptions.NegotiationError` to refuse the client), else the first of the
    server's subprotocols, in its order of preference, that the client offers (as
    websockets chooses). Without a match the handshake proceeds without
    ``Sec-WebSocket-Protocol``: RFC 6455 §4.2.2 lets the server omit it, and a client that
    needs one fails the handshake itself.

    Args:
        request: The request as parsed.
        origins: Allowed ``Origin`` values (see :data:`OriginRule`: strings compared
            exactly, patterns matched against the whole value); ``None`` allows any. A
            ``None`` entry allows requests without ``Origin`` (non-browser clients).
        available_subprotocols: Subprotocols the server supports.
        select_subprotocol: Overrides the default subprotocol choice.
        extensions: Extension factories the server supports.
        server_header: Value of the ``Server`` header, none if ``None``.

    Returns:
        The ``101`` response, the subprotocol (or ``None``) and the active extensions.

    Raises:
        InvalidHandshake: Not an acceptable handshake; ``status_code`` and ``headers``
            describe the answer (see :func:`reject_handshake`).
    """
    headers = request.headers
    index = headers._index  # read directly: get_all() copies
    _check_upgrade(headers, index)
    key = _check_key(headers, index)
    if origins is not None:
        _check_origin(headers, origins)
    offers = [
        offer
        for value in index.get("sec-websocket-extensions", ())
        for offer in parse_extension_header(value)
    ]
    offered = (
        header_items(headers, "Sec-WebSocket-Protocol") if "sec-websocket-protocol" in index else []
    )
    accepted, answers = _negotiate_extensions(offers, extensions)
    subprotocol = _choose_subprotocol(offered, available_subprotocols, select_subprotocol)

    response_headers = Headers()
    # Valid by construction: no need for the checks of __setitem__.
    response_headers._append("Upgrade", "websocket")
    response_headers._append("Connection", "Upgrade")
    response_headers._append("Sec-WebSocket-Accept", accept_key(key))
    if answers:
        response_headers["Sec-WebSocket-Extensions"] = serialize_extension_header(answers)
    if subprotocol is not None:
        response_headers["Sec-WebSocket-Protocol"] = subprotocol
    if server_header is not None:
        response_headers["Server"] = server_header
    return Response(101, "Switching Protocols", response_headers), subprotocol, accepted


def _check_upgrade(headers: Headers, index: dict[str, list[str]]) -> None:
    """``Upgrade: websocket``, ``Connection: upgrade``, one ``Host`` and version 13."""
    for name, key, expected in (
        ("Connection", "connection", "upgrade"),
        ("Upgrade", "upgrade", "websocket"),
    ):
        # The usual request has exactly the expected value, which needs no parsing.
        values = index.get(key, ())
        if not (
            len(values) == 1 and values[0].lower() == expected and values[0].isascii()
        ) and expected not in _upgrade_items(headers, name):
            raise InvalidHeader(
                name,
                joined_values(headers, name),
                f"missing {name}: {expected} header; this is a WebSocket endpoint, "
                "it needs a WebSocket client, not a plain HTTP request",
                status_code=426,
                headers=list(_UPGRADE_HEADERS),
            )
    if len(index.get("host", ())) != 1:
        raise InvalidHeader("Host", joined_values(headers, "Host"))
    if index.get("sec-websocket-version") != ["13"]:
        raise InvalidHeader(
            "Sec-WebSocket-Version",
            joined_values(headers, "Sec-WebSocket-Version"),
            status_code=426,
            headers=[("Sec-WebSocket-Version", "13")],
        )


def _check_key(headers: Headers, index: dict[str, list[str]]) -> str:
    """The one ``Sec-WebSocket-Key``, which must be the base64 of 16 bytes."""
    keys = index.get("sec-websocket-key", [])
    key_bytes = b""
    if len(keys) == 1:
        try:
            # base64.b64decode(key, validate=True), without its wrapper.
            key_bytes = binascii.a2b_base64(keys[0].encode("ascii"), strict_mode=True)
        except ValueError:  # not ASCII (UnicodeEncodeError) or not base64
            pass
    if len(key_bytes) != 16:
        raise InvalidHeader("Sec-WebSocket-Key", joined_values(headers, "Sec-WebSocket-Key"))
    return keys[0]


def _check_origin(headers: Headers, origins: Sequence[OriginRule]) -> None:
    """One ``Origin``, among ``origins`` (``None`` among them: no ``Origin`` is fine)."""
    values = headers.get_all("Origin")
    origin = values[0] if len(values) == 1 else joined_values(headers, "Origin")
    if len(values) > 1:
        raise InvalidOrigin(origin)
    if origin in origins:
        return
    if origin is not None:
        for rule in origins:
            if isinstance(rule, re.Pattern) and rule.fullmatch(origin):
                return
    raise InvalidOrigin(origin)


def _negotiate_extensions(
    offers: list[tuple[str, list[ExtensionParameter]]],
    extensions: Sequence[ServerExtensionFactory],
) -> tuple[list[Extension], list[tuple[str, Sequence[ExtensionParameter]]]]:
    """The extensions accepted and the answers to send: see :func:`process_request`."""
    accepted: list[Extension] = []
    answers: list[tuple[str, Sequence[ExtensionParameter]]] = []
    used: set[int] = set()
    for name, params in offers:
        for i, factory in enumerate(extensions):
            if i in used or factory.name != name:
                continue
            try:
                answer, extension = factory.process_request_params(params, accepted)
            except NegotiationError:
                continue
            used.add(i)
            accepted.append(extension)
            answers.append((name, answer))
            break
    return accepted, answers


def _choose_subprotocol(
    offered: list[str],
    available: Sequence[str] | None,
    select: Callable[[Sequence[str], Sequence[str]], str | None] | None,
) -> str | None:
    """The subprotocol chosen: see :func:`process_request`."""
    if select is not None:
        subprotocol = select(offered, available or ())
        if subprotocol is not None and subprotocol not in offered:
            raise NegotiationError(
                f"select_subprotocol returned {subprotocol!r}, which the client didn't offer",
                status_code=500,
            )
        return subprotocol
    if available:
        return next((p for p in available if p in offered), None)
    return None


def _upgrade_items(headers: Headers, name: str) -> list[str]:
    # Any defect in these two headers means "not a WebSocket request": answer 426 for all.
    try:
        return [item.lower() for item in header_items(headers, name, PROTOCOL_RE)]
    except InvalidHeader:
        return []


def reject(
    status_code: int,
    text: str,
    *,
    headers: HeadersLike = (),
    server_header: str | None = None,
) -> Response:
    """Build a plain-text error response: the body is ``text`` in UTF-8.

    The response has ``Server`` (unless ``server_header`` is ``None``), ``Content-Type:
    text/plain; charset=utf-8``, ``Content-Length``, ``Connection: close``, then ``headers``,
    and the reason phrase of :class:`http.HTTPStatus` (empty for an unregistered status).
    """
    body = text.encode()
    response_headers = Headers()
    if server_header is not None:
        response_headers["Server"] = server_header
    response_headers["Content-Type"] = "text/plain; charset=utf-8"
    response_headers["Content-Length"] = str(len(body))
    response_headers["Connection"] = "close"
    response_headers.update(headers)
    try:
        reason = http.HTTPStatus(status_code).phrase
    except ValueError:
        reason = ""
    return Response(status_code, reason, response_headers, body)


def reject_handshake(exc: InvalidHandshake, *, server_header: str | None = None) -> Response:
    """Build the answer to a failed handshake: :func:`reject` with the exception's status,
    headers and message.
    """
    text = f"Failed to open a WebSocket connection: {exc}.\n"
    return reject(exc.status_code, text, headers=exc.headers, server_header=server_header)


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
        host_header: The ``Host`` value, see :attr:`WebSocketURI.host_header`.
        resource: The resource name: path and query string.
        key: From :func:`generate_key`; keep it for :func:`process_response`.
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

    chosen = header_items(headers, "Sec-WebSocket-Protocol")
    if len(chosen) > 1:
        raise InvalidHeader(
            "Sec-WebSocket-Protocol", ", ".join(chosen), "server chose more than one subprotocol"
        )
    if chosen and chosen[0] not in (subprotocols or ()):
        raise InvalidHeader(
            "Sec-WebSocket-Protocol", chosen[0], f"unexpected subprotocol: {chosen[0]}"
        )
    return (chosen[0] if chosen else None), accepted
