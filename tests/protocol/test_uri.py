"""Tests for syncws.protocol.uri: WebSocket URIs and the Host header."""

from __future__ import annotations

import pytest

from syncws.exceptions import InvalidURI
from syncws.protocol.uri import WebSocketURI, build_host, parse_uri

# URIs


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("ws://example.com", WebSocketURI(False, "example.com", 80, "/")),
        ("wss://example.com/", WebSocketURI(True, "example.com", 443, "/")),
        ("WS://Example.COM:8765/chat", WebSocketURI(False, "example.com", 8765, "/chat")),
        ("ws://h/a/b?x=1&y=%20", WebSocketURI(False, "h", 80, "/a/b?x=1&y=%20")),
        ("ws://h?x=1", WebSocketURI(False, "h", 80, "/?x=1")),
        ("ws://h/?", WebSocketURI(False, "h", 80, "/")),
        ("ws://h/caf\xe9?q=\xe9", WebSocketURI(False, "h", 80, "/caf%C3%A9?q=%C3%A9")),
        ('ws://h/<">', WebSocketURI(False, "h", 80, "/%3C%22%3E")),
        ("ws://[::1]:8765/", WebSocketURI(False, "::1", 8765, "/")),
        ("wss://b\xfccher.example/", WebSocketURI(True, "xn--bcher-kva.example", 443, "/")),
        ("ws://user:p%3Ass@h/", WebSocketURI(False, "h", 80, "/", ("user", "p:ss"))),
        ("ws://us%C3%A9r@h/", WebSocketURI(False, "h", 80, "/", ("us\xe9r", ""))),
        ("ws://:pw@h/", WebSocketURI(False, "h", 80, "/", ("", "pw"))),
    ],
)
def test_parse_uri(uri: str, parsed: WebSocketURI) -> None:
    """Scheme, host, default ports, resource name and user info are parsed and normalized."""
    assert parse_uri(uri) == parsed


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://example.com/", "scheme"),
        ("example.com", "scheme"),
        ("ws:///chat", "missing host"),
        ("ws://:8765/", "missing host"),
        ("ws://h/#frag", "fragment"),
        ("ws://h/#", "fragment"),
        ("ws://h:abc/", "Port"),
        ("ws://h:70000/", "Port"),
        ("ws://h:0/", "port 0"),
        ("ws://[::1/", "IPv6"),
        ("ws://h/a b", "whitespace"),
        ("ws://h/\n", "whitespace"),
        ("ws://a\xe4..b/", "internationalized"),
    ],
)
def test_parse_uri_rejects_invalid_uris(uri: str, reason: str) -> None:
    """Other schemes, no host, fragments, bad ports and IDNA errors raise InvalidURI."""
    with pytest.raises(InvalidURI, match=reason) as exc_info:
        parse_uri(uri)
    assert exc_info.value.uri == uri


@pytest.mark.parametrize(
    ("uri", "host_header"),
    [
        ("ws://h/", "h"),
        ("ws://h:80/", "h"),
        ("ws://h:443/", "h:443"),
        ("wss://h:443/", "h"),
        ("wss://h:80/", "h:80"),
        ("ws://[::1]/", "[::1]"),
        ("ws://[::1]:8765/", "[::1]:8765"),
    ],
)
def test_host_header_omits_default_port_and_brackets_ipv6(uri: str, host_header: str) -> None:
    """The Host value brackets IPv6 literals and omits the scheme's default port."""
    assert parse_uri(uri).host_header == host_header


def test_build_host() -> None:
    """``build_host`` is the Host value for a host, port and scheme."""
    assert build_host("::1", 443, secure=True) == "[::1]"
    assert build_host("example.com", 8080, secure=True) == "example.com:8080"
