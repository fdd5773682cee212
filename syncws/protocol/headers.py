"""The header-field grammars of the opening handshake (RFC 9110 §5.6, RFC 6455 §9.1,
RFC 7617): token lists, ``Sec-WebSocket-Extensions``, HTTP Basic credentials.

Values come from the peer: each parser raises :exc:`~syncws.exceptions.InvalidHeader` on
what its grammar does not allow. The exception quotes the value it rejects, except a
credential, which it never includes (see :doc:`/topics/limits`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence

from ..exceptions import InvalidHeader
from .extensions import ExtensionParameter
from .http11 import Headers

__all__ = [
    "PROTOCOL_RE",
    "TOKEN_RE",
    "ExtensionHeaderItem",
    "build_authorization_basic",
    "header_items",
    "joined_values",
    "parse_authorization_basic",
    "parse_extension_header",
    "parse_token_list",
    "serialize_extension_header",
]

#: One extension in ``Sec-WebSocket-Extensions``: its name and its parameters.
ExtensionHeaderItem = tuple[str, list[ExtensionParameter]]

#: RFC 9110 §5.6.2: token = 1*tchar.
TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: RFC 9110 §7.8: Upgrade lists protocol = protocol-name ["/" protocol-version].
PROTOCOL_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:/[!#$%&'*+\-.^_`|~0-9A-Za-z]+)?")
_OWS_RE = re.compile(r"[ \t]*")
# RFC 9110 §5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE.
_QUOTED_RE = re.compile(r'"((?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*)"')
_QUOTED_PAIR_RE = re.compile(r"\\(.)")


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
    return _parse_list(value, name, TOKEN_RE)


def header_items(headers: Headers, name: str, item_re: re.Pattern[str] = TOKEN_RE) -> list[str]:
    """The items of every ``name`` header line, as one list (RFC 9110 §5.3), each matching
    ``item_re``.

    Raises:
        InvalidHeader: An item doesn't match.
    """
    return [item for value in headers.get_all(name) for item in _parse_list(value, name, item_re)]


def joined_values(headers: Headers, name: str) -> str | None:
    """Every value of ``name`` joined with ``", "``, or ``None`` if there is none: what an
    :exc:`~syncws.exceptions.InvalidHeader` reports."""
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
        match = TOKEN_RE.match(value, pos)
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
                        if not TOKEN_RE.fullmatch(param_value):
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
            if not TOKEN_RE.fullmatch(word):
                raise ValueError(f"invalid extension name or parameter: {word!r}")
        items.append("; ".join([name, *(p if v is None else f"{p}={v}" for p, v in params)]))
    return ", ".join(items)


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
