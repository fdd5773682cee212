"""The server's side of the opening handshake (RFC 6455 §4.2): validate a client's request,
negotiate extensions and a subprotocol, and build the ``101``, or the error response."""

from __future__ import annotations

import binascii
import http
import re
from collections.abc import Callable, Sequence

from ...exceptions import InvalidHandshake, InvalidHeader, InvalidOrigin, NegotiationError
from ..extensions import Extension, ExtensionParameter, ServerExtensionFactory
from ..headers import (
    PROTOCOL_RE,
    header_items,
    joined_values,
    parse_extension_header,
    serialize_extension_header,
)
from ..http11 import Headers, HeadersLike, Request, Response
from .keys import _UPGRADE_HEADERS, accept_key

__all__ = ["OriginRule", "process_request", "reject", "reject_handshake"]

#: One item of ``origins``: an ``Origin`` value compared exactly, a compiled regular
#: expression that must match the whole value (``re.compile(r"https://[a-z]+\.example\.com")``),
#: or ``None`` to allow requests without ``Origin`` (non-browser clients).
OriginRule = str | re.Pattern[str] | None


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
