"""The opening handshake of RFC 6455 §4: keys, header grammars, negotiation, URIs.

Both sides are plain functions over :class:`~syncws.protocol.http11.Request` and
:class:`~syncws.protocol.http11.Response`: a server validates a request with
:func:`process_request` and gets the ``101`` to send; a client builds its request with
:func:`build_request` and checks the answer with :func:`process_response`.

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
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidOrigin,
    InvalidStatus,
    InvalidURI,
    NegotiationError,
)
from .extensions import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    ServerExtensionFactory,
)
from .http11 import Headers, HeadersLike, Request, Response

__all__ = [
    "GUID",
    "ExtensionHeaderItem",
    "WebSocketURI",
    "accept_key",
    "build_authorization_basic",
    "build_host",
    "build_request",
    "generate_key",
    "parse_authorization_basic",
    "parse_extension_header",
    "parse_token_list",
    "parse_uri",
    "process_request",
    "process_response",
    "reject",
    "reject_handshake",
    "serialize_extension_header",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""The GUID that RFC 6455 §1.3 appends to the key before hashing it."""

#: One extension in ``Sec-WebSocket-Extensions``: its name and its parameters.
ExtensionHeaderItem = tuple[str, list[ExtensionParameter]]

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §7.8: Upgrade lists protocol = protocol-name ["/" protocol-version].
_PROTOCOL_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:/[!#$%&'*+\-.^_`|~0-9A-Za-z]+)?")
_OWS_RE = re.compile(r"[ \t]*")
# RFC 9110 §5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE.
_QUOTED_RE = re.compile(r'"((?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*)"')
_QUOTED_PAIR_RE = re.compile(r"\\(.)")
# Characters left as is in the resource name: RFC 3986 pchar, "/", "?" and "%" (escapes).
_URI_SAFE = "!$&'()*+,;=:@/?%"
_URI_FORBIDDEN_RE = re.compile(r"[\x00-\x20\x7f]")

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


def _parse_list(value: str, name: str, item_re: re.Pattern[str]) -> list[str]:
    items = []
    # RFC 9110 §5.6.1: recipients ignore empty list elements, e.g. "a, , b".
    for item in value.split(","):
        item = item.strip(" \t")
        if item:
            if not item_re.fullmatch(item):
                raise InvalidHeader(name, value)
            items.append(item)
    return items


def parse_token_list(value: str, name: str = "header") -> list[str]:
    """Parse a comma-separated list of tokens (RFC 9110 §5.6.1), e.g. ``Connection``.

    Empty elements and whitespace around commas are ignored; case is preserved.

    Raises:
        InvalidHeader: An element is not a token; ``name`` is the header name it reports.
    """
    return _parse_list(value, name, _TOKEN_RE)


def _header_list(headers: Headers, name: str, item_re: re.Pattern[str] = _TOKEN_RE) -> list[str]:
    # Several header lines of the same name form one list (RFC 9110 §5.3).
    return [item for value in headers.get_all(name) for item in _parse_list(value, name, item_re)]


def _joined(headers: Headers, name: str) -> str | None:
    values = headers.get_all(name)
    return ", ".join(values) if values else None


def parse_extension_header(value: str) -> list[ExtensionHeaderItem]:
    """Parse a ``Sec-WebSocket-Extensions`` value (RFC 6455 §9.1).

    The grammar is ``1#extension`` with ``extension = token *(";" param)`` and
    ``param = token ["=" (token / quoted-string)]``; a quoted value is unescaped and must
    then be a token. Whitespace is allowed around ``,``, ``;`` and ``=``.

    Returns:
        ``(name, [(param, value or None), ...])`` for each extension, in order.

    Raises:
        InvalidHeader: The value doesn't match the grammar.
    """

    def fail() -> InvalidHeader:
        return InvalidHeader("Sec-WebSocket-Extensions", value)

    def ows(pos: int) -> int:
        match = _OWS_RE.match(value, pos)
        assert match is not None  # [ \t]* matches anywhere
        return match.end()

    def token(pos: int) -> tuple[str, int]:
        match = _TOKEN_RE.match(value, pos)
        if match is None:
            raise fail()
        return match.group(), ows(match.end())

    result: list[ExtensionHeaderItem] = []
    pos = ows(0)
    while True:
        if pos < len(value) and value[pos] != ",":
            name, pos = token(pos)
            params: list[ExtensionParameter] = []
            while pos < len(value) and value[pos] == ";":
                param, pos = token(ows(pos + 1))
                param_value = None
                if pos < len(value) and value[pos] == "=":
                    pos = ows(pos + 1)
                    quoted = _QUOTED_RE.match(value, pos)
                    if quoted is None:
                        param_value, pos = token(pos)
                    else:
                        param_value = _QUOTED_PAIR_RE.sub(r"\1", quoted.group(1))
                        if not _TOKEN_RE.fullmatch(param_value):
                            raise fail()
                        pos = ows(quoted.end())
                params.append((param, param_value))
            result.append((name, params))
        if pos == len(value):
            break
        if value[pos] != ",":
            raise fail()
        pos = ows(pos + 1)
    if not result:
        raise fail()
    return result


def serialize_extension_header(
    extensions: Sequence[tuple[str, Sequence[ExtensionParameter]]],
) -> str:
    """Build a ``Sec-WebSocket-Extensions`` value, the inverse of :func:`parse_extension_header`.

    Raises:
        ValueError: A name or a value is not a token (RFC 6455 §9.1 allows nothing else).
    """
    items = []
    for name, params in extensions:
        for word in (name, *(word for param in params for word in param if word is not None)):
            if not _TOKEN_RE.fullmatch(word):
                raise ValueError(f"invalid extension name or parameter: {word!r}")
        items.append("; ".join([name, *(p if v is None else f"{p}={v}" for p, v in params)]))
    return ", ".join(items)


def process_request(
    request: Request,
    *,
    origins: Sequence[str | None] | None = None,
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
    :exc:`~syncws.exceptions.NegotiationError` to refuse the client), else the first one the
    client offers that is available. Without a match the handshake proceeds without
    ``Sec-WebSocket-Protocol``: RFC 6455 §4.2.2 lets the server omit it, and a client that
    needs one fails the handshake itself.

    Args:
        request: The request as parsed.
        origins: Allowed ``Origin`` values (compared exactly); ``None`` allows any. A
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
                _joined(headers, name),
                f"missing {name}: {expected} header; this is a WebSocket endpoint, "
                "it needs a WebSocket client, not a plain HTTP request",
                status_code=426,
                headers=list(_UPGRADE_HEADERS),
            )
    if len(index.get("host", ())) != 1:
        raise InvalidHeader("Host", _joined(headers, "Host"))
    if index.get("sec-websocket-version") != ["13"]:
        raise InvalidHeader(
            "Sec-WebSocket-Version",
            _joined(headers, "Sec-WebSocket-Version"),
            status_code=426,
            headers=[("Sec-WebSocket-Version", "13")],
        )
    keys = index.get("sec-websocket-key", [])
    key_bytes = b""
    if len(keys) == 1:
        try:
            # base64.b64decode(key, validate=True), without its wrapper.
            key_bytes = binascii.a2b_base64(keys[0].encode("ascii"), strict_mode=True)
        except ValueError:  # not ASCII (UnicodeEncodeError) or not base64
            pass
    if len(key_bytes) != 16:
        raise InvalidHeader("Sec-WebSocket-Key", _joined(headers, "Sec-WebSocket-Key"))
    if origins is not None:
        values = headers.get_all("Origin")
        origin = values[0] if len(values) == 1 else _joined(headers, "Origin")
        if len(values) > 1 or origin not in origins:
            raise InvalidOrigin(origin)
    offers = [
        offer
        for value in index.get("sec-websocket-extensions", ())
        for offer in parse_extension_header(value)
    ]
    offered = (
        _header_list(headers, "Sec-WebSocket-Protocol") if "sec-websocket-protocol" in index else []
    )

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

    subprotocol: str | None = None
    if select_subprotocol is not None:
        subprotocol = select_subprotocol(offered, available_subprotocols or ())
        if subprotocol is not None and subprotocol not in offered:
            raise NegotiationError(
                f"select_subprotocol returned {subprotocol!r}, which the client didn't offer",
                status_code=500,
            )
    elif available_subprotocols:
        subprotocol = next((p for p in offered if p in available_subprotocols), None)

    response_headers = Headers()
    # Valid by construction: no need for the checks of __setitem__.
    response_headers._append("Upgrade", "websocket")
    response_headers._append("Connection", "Upgrade")
    response_headers._append("Sec-WebSocket-Accept", accept_key(keys[0]))
    if answers:
        response_headers["Sec-WebSocket-Extensions"] = serialize_extension_header(answers)
    if subprotocol is not None:
        response_headers["Sec-WebSocket-Protocol"] = subprotocol
    if server_header is not None:
        response_headers["Server"] = server_header
    return Response(101, "Switching Protocols", response_headers), subprotocol, accepted


def _upgrade_items(headers: Headers, name: str) -> list[str]:
    # Any defect in these two headers means "not a WebSocket request": answer 426 for all.
    try:
        return [item.lower() for item in _header_list(headers, name, _PROTOCOL_RE)]
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
            if not _TOKEN_RE.fullmatch(subprotocol):
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
    if "upgrade" not in [item.lower() for item in _header_list(headers, "Connection")]:
        raise InvalidHeader("Connection", _joined(headers, "Connection"))
    if [item.lower() for item in _header_list(headers, "Upgrade", _PROTOCOL_RE)] != ["websocket"]:
        raise InvalidHeader("Upgrade", _joined(headers, "Upgrade"))
    if headers.get_all("Sec-WebSocket-Accept") != [accept_key(key)]:
        raise InvalidHeader("Sec-WebSocket-Accept", _joined(headers, "Sec-WebSocket-Accept"))

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

    chosen = _header_list(headers, "Sec-WebSocket-Protocol")
    if len(chosen) > 1:
        raise InvalidHeader(
            "Sec-WebSocket-Protocol", ", ".join(chosen), "server chose more than one subprotocol"
        )
    if chosen and chosen[0] not in (subprotocols or ()):
        raise InvalidHeader(
            "Sec-WebSocket-Protocol", chosen[0], f"unexpected subprotocol: {chosen[0]}"
        )
    return (chosen[0] if chosen else None), accepted


@dataclass(frozen=True)
class WebSocketURI:
    """A parsed ``ws://`` or ``wss://`` URI (RFC 6455 §3).

    Attributes:
        secure: ``True`` for ``wss``.
        host: The host: lowercase, IDNA-encoded, IPv6 literals without brackets.
        port: The port, 80 or 443 when the URI has none.
        resource_name: Path and query string, percent-encoded (``"/"`` at least).
        user_info: ``(username, password)`` from the URI, percent-decoded, for HTTP Basic
            authentication; ``None`` when the URI has none.
    """

    secure: bool
    host: str
    port: int
    resource_name: str
    user_info: tuple[str, str] | None = None

    @property
    def host_header(self) -> str:
        """The ``Host`` header value for this URI, see :func:`build_host`."""
        return build_host(self.host, self.port, self.secure)


def build_host(host: str, port: int, secure: bool) -> str:
    """Build a ``Host`` header value (RFC 9110 §7.2): brackets around IPv6 literals, no port
    when it is the default for the scheme.
    """
    if ":" in host:
        host = f"[{host}]"
    if port != (443 if secure else 80):
        host = f"{host}:{port}"
    return host


def parse_uri(uri: str) -> WebSocketURI:
    """Parse a WebSocket URI (RFC 6455 §3).

    Non-ASCII characters in the path and query are percent-encoded as UTF-8; an
    internationalized host name is encoded with the ``idna`` codec.

    Raises:
        InvalidURI: The scheme isn't ``ws`` or ``wss``, the host is missing or invalid, the
            port is invalid, the URI has a fragment (RFC 6455 §3 forbids them) or contains
            whitespace or control characters.
    """
    if _URI_FORBIDDEN_RE.search(uri):
        raise InvalidURI(uri, "contains whitespace or control characters")
    if "#" in uri:
        raise InvalidURI(uri, "fragment identifiers are not allowed")
    try:
        parts = urllib.parse.urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise InvalidURI(uri, str(exc)) from None
    if parts.scheme not in ("ws", "wss"):
        raise InvalidURI(uri, "scheme isn't ws or wss")
    host = parts.hostname
    if not host:
        raise InvalidURI(uri, "missing host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidURI(uri, "invalid internationalized host name") from None
    secure = parts.scheme == "wss"
    if port is None:
        port = 443 if secure else 80
    elif port == 0:
        raise InvalidURI(uri, "port 0 isn't a valid destination")
    resource_name = urllib.parse.quote(parts.path or "/", safe=_URI_SAFE)
    if parts.query:
        resource_name += "?" + urllib.parse.quote(parts.query, safe=_URI_SAFE)
    user_info = None
    if parts.username is not None:
        user_info = (
            urllib.parse.unquote(parts.username),
            urllib.parse.unquote(parts.password or ""),
        )
    return WebSocketURI(secure, host, port, resource_name, user_info)


def build_authorization_basic(username: str, password: str) -> str:
    """Build an ``Authorization`` value for HTTP Basic authentication (RFC 7617 §2), in UTF-8.

    Raises:
        ValueError: ``username`` contains a colon, which Basic cannot carry.
    """
    if ":" in username:
        raise ValueError("a Basic username cannot contain a colon")
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {credentials}"


def parse_authorization_basic(value: str) -> tuple[str, str]:
    """Parse an ``Authorization`` value for HTTP Basic authentication (RFC 7617 §2).

    The exception never contains the credentials, so that logging it doesn't leak them.

    Returns:
        ``(username, password)``.

    Raises:
        InvalidHeader: The scheme isn't Basic or the credentials are malformed.
    """
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() != "basic":
        raise InvalidHeader("Authorization", None, "unsupported authorization scheme")
    try:
        decoded = base64.b64decode(credentials.strip(" "), validate=True).decode()
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        decoded = ""
    username, colon, password = decoded.partition(":")
    if not colon:
        raise InvalidHeader("Authorization", None, "invalid Basic credentials")
    return username, password
