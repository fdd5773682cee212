"""WebSocket URIs (RFC 6455 §3): ``ws://`` and ``wss://``, and the ``Host`` header they
give (RFC 9110 §7.2)."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from ..exceptions import InvalidURI

__all__ = ["WebSocketURI", "build_host", "parse_uri"]

# Characters left as is in the resource name: RFC 3986 pchar, "/", "?" and "%" (escapes).
_URI_SAFE = "!$&'()*+,;=:@/?%"
_URI_FORBIDDEN_RE = re.compile(r"[\x00-\x20\x7f]")


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
