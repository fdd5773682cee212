"""Cross-checks of the handshake's fast paths against the general code they shortcut.

The server parses a request that arrives whole in one pass (``RequestParser._parse_whole``),
checks usual header names and values without regexes, and accepts the usual ``Upgrade`` and
``Connection`` values without parsing them. Each shortcut must decide exactly as the general
code does; these tests run both on the same inputs, malformed ones included.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncws.exceptions import InvalidHandshake, InvalidMessage
from syncws.protocol import http11
from syncws.protocol.handshake import process_request
from syncws.protocol.handshake.server import _upgrade_items
from syncws.protocol.http11 import Headers, Request, RequestParser, Response

KEY = "dGhlIHNhbXBsZSBub25jZQ=="

PLAIN = (
    b"GET /chat?room=1 HTTP/1.1\r\n"
    b"Host: example.com:8765\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)

# Requests that are valid but not plain, and malformed ones: each line of http11's rules.
VARIANTS = [
    PLAIN,
    PLAIN + b"\x81\x85frame",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-Empty:\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-Spaces:   a b   \r\n\r\n",
    b"GET / HTTP/1.1\r\nX-Tab:\ta\tb\t\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-Obs-Text: caf\xe9\r\n\r\n",
    b"GET / HTTP/1.1\r\nx!#$%&'*+.^_`|~-: token name\r\n\r\n",
    b"GET / HTTP/1.1\r\n---: dashes only\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    b"GET / HTTP/1.1\r\ncontent-length: 1\r\n\r\nx",
    b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    b"GET / HTTP/1.1\r\n: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nNo colon\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-\xe9: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-Ctl: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-Del: a\x7fb\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-Cr: a\rb\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-Lf: a\nb\r\n\r\n",
    b"GET / HTTP/1.1\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\n",
    b"GET / HTTP/1.1\r\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\n\r\n",
    b"\r\n\r\n",
    b"POST / HTTP/1.1\r\n\r\n",
    b"get / HTTP/1.1\r\n\r\n",
    b"G(T / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/2\r\n\r\n",
    b"GET http://example.com/ HTTP/1.1\r\n\r\n",
    b"GET * HTTP/1.1\r\n\r\n",
    b"GET  / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1 \r\n\r\n",
    b"GET /\xe9 HTTP/1.1\r\n\r\n",
    b"GET /a\tb HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a",
    b"GET / HTTP/1.1\r\nHost: a\r\n",
    b"GET / HT",
]


def outcome(parse: object) -> object:
    """What a parse gives: the request and remainder, or the error's status, text, headers."""
    assert callable(parse)
    try:
        result = parse()
    except InvalidMessage as exc:
        return ("error", exc.status_code, str(exc), exc.headers)
    if result is None:
        return None
    request, remainder = result
    return ("request", request.path, request.headers.items(), remainder)


def whole(data: bytes, **limits: int) -> object:
    """Feed ``data`` at once: the fast path when it applies."""
    parser = RequestParser(**limits)

    def parse() -> tuple[Request, bytes] | None:
        request = parser.feed(data)
        return None if request is None else (request, parser.remainder)

    return outcome(parse)


def general(data: bytes, **limits: int) -> object:
    """Feed ``data`` in two pieces, the first one byte: never the fast path."""
    parser = RequestParser(**limits)

    def parse() -> tuple[Request, bytes] | None:
        request = parser.feed(data[:1]) or parser.feed(data[1:])
        return None if request is None else (request, parser.remainder)

    return outcome(parse)


@pytest.mark.parametrize("data", VARIANTS)
def test_whole_request_parses_as_in_pieces(data: bytes) -> None:
    """A request fed at once gives the request, or the error, that it gives fed in pieces."""
    assert whole(data) == general(data)


@pytest.mark.parametrize(
    "limits", [{"max_line": 24}, {"max_line": 25}, {"max_num_headers": 3}, {"max_num_headers": 4}]
)
def test_whole_request_applies_the_limits_as_in_pieces(limits: dict[str, int]) -> None:
    """Limits on lines and headers give the same answers (414, 431) either way."""
    # "Host: example.com:8765" is 22 bytes, "Sec-WebSocket-Key: ..." 43: around the limits.
    for data in VARIANTS:
        assert whole(data, **limits) == general(data, **limits)


def test_plain_request_takes_the_fast_path() -> None:
    """A plain request is parsed in one pass: the incremental parser is never made."""
    parser = RequestParser()
    request = parser.feed(PLAIN + b"frames")
    assert request is not None
    assert parser._gen is None
    assert request.path == "/chat?room=1"
    assert request.headers["sec-websocket-key"] == KEY
    assert parser.remainder == b"frames"
    with pytest.raises(RuntimeError, match="the parser is done"):
        parser.feed(b"more")


@pytest.mark.parametrize("data", [PLAIN[:-1], b"GET / HTTP/1.1\r\nX-Tab:\ta\r\n\r\n"])
def test_other_requests_take_the_general_path(data: bytes) -> None:
    """An incomplete or unusual request goes to the incremental parser."""
    parser = RequestParser()
    parser.feed(data)
    assert parser._gen is not None


# The request's parts, built from characters that matter to the grammar.
_CHARS = st.sampled_from(
    [
        *(b"a", b"Z", b"0", b"-", b"!", b"/", b":", b" ", b"\t", b"\r", b"\n", b"\x00"),
        *(b"\x7f", b"\x80", b"\xe9", b"\xff", b"G", b"E", b"T", b"H", b"P", b"1", b"."),
        b"\r\n",
    ]
)
_LINE = st.lists(_CHARS, max_size=12).map(b"".join)
_HEADER = st.one_of(
    _LINE,
    st.tuples(
        st.sampled_from([b"Host", b"X-A", b"Content-Length", b"Transfer-Encoding", b"a b"]),
        st.sampled_from([b": ", b":", b" :"]),
        st.one_of(_LINE, st.sampled_from([b"0", b"1", b"chunked"])),
    ).map(b"".join),
)
_REQUEST_LINE = st.one_of(
    _LINE,
    st.tuples(
        st.sampled_from([b"GET", b"POST", b"G\xe9T"]),
        st.sampled_from([b" ", b"  ", b"\t"]),
        st.one_of(st.just(b"/"), _LINE.map(lambda s: b"/" + s)),
        st.sampled_from([b" HTTP/1.1", b" HTTP/1.0", b"HTTP/1.1", b" HTTP/1.1 "]),
    ).map(b"".join),
)


@given(
    first=_REQUEST_LINE,
    headers=st.lists(_HEADER, max_size=5),
    end=st.sampled_from([b"\r\n\r\n", b"\r\n", b"\n\r\n", b""]),
    rest=st.sampled_from([b"", b"\x81\x80", b"\r\n"]),
)
def test_random_requests_parse_alike(
    first: bytes, headers: list[bytes], end: bytes, rest: bytes
) -> None:
    """On generated requests, most of them malformed, both paths agree."""
    data = b"\r\n".join([first, *headers]) + end + rest
    for limits in ({}, {"max_line": 8, "max_num_headers": 2}):
        assert whole(data, **limits) == general(data, **limits)


# Header names and values.

_TEXT = st.text(
    st.one_of(
        st.characters(max_codepoint=0xFF),
        st.sampled_from(["\u0100", "\u212a", "\u00a0", "\u2028", "\U0001f600"]),
    ),
    max_size=12,
)


@given(_TEXT)
def test_token_check_agrees_with_the_regex(name: str) -> None:
    """``_is_token`` decides as RFC 9110's token regex."""
    assert http11._is_token(name) is (http11._TOKEN_RE.fullmatch(name) is not None)


@given(_TEXT)
def test_field_value_check_agrees_with_the_regex(value: str) -> None:
    """``_is_field_value`` decides as RFC 9110's field value regex."""
    assert http11._is_field_value(value) is (http11._BAD_VALUE_RE.search(value) is None)


@given(st.text(st.characters(max_codepoint=0xFF), max_size=12))
def test_reason_phrase_check_agrees_with_the_regex(reason: str) -> None:
    """A reason phrase is refused exactly when it holds a control character."""
    response = Response(400, reason, Headers())
    if http11._CTL_RE.search(reason):
        with pytest.raises(ValueError, match="invalid reason phrase"):
            response.serialize()
    else:
        assert response.serialize().startswith(f"HTTP/1.1 400 {reason}\r\n".encode("latin-1"))


@given(name=_TEXT, value=_TEXT)
def test_header_assignment_agrees_with_the_regexes(name: str, value: str) -> None:
    """``headers[name] = value`` refuses exactly what the regexes refuse."""
    valid = http11._TOKEN_RE.fullmatch(name) and not http11._BAD_VALUE_RE.search(value)
    headers = Headers()
    if valid:
        headers[name] = value
        assert headers.items() == [(name, value)]
    else:
        with pytest.raises(ValueError):
            headers[name] = value


# Upgrade and Connection in process_request.

_UPGRADE_VALUE = st.one_of(
    st.sampled_from(
        [
            *("websocket", "WebSocket", "WEBSOCKET", "websocket ", "web socket", "websocket/13"),
            *("h2c, websocket", "websocket,", ",websocket", "WEBSOC\u212aET", "upgrade"),
            *("Upgrade", "UPGRADE", "keep-alive, Upgrade", "up grade", "upgrade\t", ""),
            "\u0130upgrade",
        ]
    ),
    _TEXT,
)


def _request(name: str, values: list[str]) -> Request:
    headers = Headers()
    base = {
        "Host": "example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    for base_name, base_value in base.items():
        if base_name == name:
            for value in values:
                headers._append(name, value)  # no checks: values a parser would refuse too
        else:
            headers[base_name] = base_value
    return Request("/", headers)


@given(
    name=st.sampled_from(["Upgrade", "Connection"]),
    values=st.lists(_UPGRADE_VALUE, min_size=0, max_size=2),
)
def test_upgrade_check_agrees_with_parsing(name: str, values: list[str]) -> None:
    """The request is accepted exactly when the parsed list holds the expected value."""
    request = _request(name, values)
    expected = "websocket" if name == "Upgrade" else "upgrade"
    valid = expected in _upgrade_items(request.headers, name)
    try:
        response, _, _ = process_request(request)
    except InvalidHandshake as exc:
        assert not valid
        assert exc.status_code == 426
    else:
        assert valid
        assert response.status_code == 101
