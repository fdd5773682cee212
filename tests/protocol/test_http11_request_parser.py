"""Tests of syncws.protocol.http11's RequestParser: what a server reads of a handshake.

Valid requests, whole or in pieces, with the bytes after them kept; the limits on a line,
on the number of headers and on the whole head, enforced before the end of what exceeds
them (414, 431); the method and the version (405, 505); malformed request lines, line ends,
header lines and request bodies (400); and the parser's life cycle (EOF, input after a
message or after an error).
"""

from __future__ import annotations

import pytest
from http11_helpers import parse_request

from syncws.exceptions import InvalidMessage
from syncws.protocol.http11 import (
    MAX_HEAD,
    MAX_LINE,
    MAX_NUM_HEADERS,
    Headers,
    Request,
    RequestParser,
)

REQUEST = (
    b"GET /chat?room=1 HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"\r\n"
)


def request_with(*lines: bytes, first: bytes = b"GET / HTTP/1.1") -> bytes:
    return first + b"\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def request_error(data: bytes) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as exc_info:
        RequestParser().feed(data)
    return exc_info.value


# RequestParser: valid requests


def test_request_parser_returns_request_once_complete() -> None:
    """The parser returns None until the empty line, then the request."""
    parser = RequestParser()
    assert parser.feed(REQUEST[:-2]) is None
    request = parser.feed(REQUEST[-2:])
    assert request == Request(
        "/chat?room=1",
        Headers([("Host", "example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade")]),
    )
    assert parser.remainder == b""


def test_request_parser_keeps_bytes_after_headers_in_remainder() -> None:
    """Frames arriving in the same packet as the request end up in ``remainder``."""
    parser = RequestParser()
    assert parser.feed(REQUEST + b"\x81\x85frame") is not None
    assert parser.remainder == b"\x81\x85frame"


def test_request_parser_strips_whitespace_around_values() -> None:
    """Spaces and tabs around a value are not part of it; empty values are kept."""
    request = parse_request(request_with(b"A: \t x y \t ", b"B:", b"C:   "))
    assert request is not None
    assert request.headers.items() == [("A", "x y"), ("B", ""), ("C", "")]


def test_request_parser_decodes_obs_text_as_latin_1() -> None:
    """Bytes 0x80-0xFF in values are accepted and decoded as ISO-8859-1."""
    request = parse_request(request_with(b"X: caf\xe9 \xff"))
    assert request is not None
    assert request.headers["X"] == "caf\xe9 \xff"


def test_request_parser_accepts_zero_content_length() -> None:
    """``Content-Length: 0`` announces no body and is accepted."""
    assert parse_request(request_with(b"Content-Length: 0")) is not None


def test_request_parser_accepts_line_of_exactly_max_line() -> None:
    """A request line or header line of exactly MAX_LINE bytes is accepted."""
    path = b"/" + b"a" * (MAX_LINE - len(b"GET / HTTP/1.1"))
    request = parse_request(request_with(first=b"GET " + path + b" HTTP/1.1"))
    assert request is not None
    assert len(request.path) == len(path)
    request = parse_request(request_with(b"X: " + b"b" * (MAX_LINE - 3)))
    assert request is not None
    assert len(request.headers["X"]) == MAX_LINE - 3


def test_request_parser_accepts_max_num_headers() -> None:
    """Exactly MAX_NUM_HEADERS header lines are accepted."""
    lines = [b"X-%d: v" % i for i in range(MAX_NUM_HEADERS)]
    request = parse_request(request_with(*lines))
    assert request is not None
    assert len(request.headers) == MAX_NUM_HEADERS


# RequestParser: limits


def test_request_parser_rejects_long_request_line_with_414() -> None:
    """A request line longer than MAX_LINE is answered with 414."""
    exc = request_error(request_with(first=b"GET /" + b"a" * MAX_LINE + b" HTTP/1.1"))
    assert exc.status_code == 414


def test_request_parser_rejects_long_request_line_before_its_end() -> None:
    """Without a line end, 414 is raised as soon as the buffer exceeds MAX_LINE."""
    parser = RequestParser()
    assert parser.feed(b"GET /" + b"a" * (MAX_LINE - 4)) is None
    with pytest.raises(InvalidMessage) as exc_info:
        parser.feed(b"aa")
    assert exc_info.value.status_code == 414


def test_request_parser_rejects_long_header_line_with_431() -> None:
    """A header line longer than MAX_LINE is answered with 431."""
    exc = request_error(request_with(b"X: " + b"a" * MAX_LINE))
    assert exc.status_code == 431


def test_request_parser_rejects_long_header_line_before_its_end() -> None:
    """A huge header line fails on the first chunk past MAX_LINE, slowloris or not."""
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\nX: ")
    with pytest.raises(InvalidMessage) as exc_info:
        parser.feed(b"a" * MAX_LINE)
    assert exc_info.value.status_code == 431


def test_request_parser_rejects_too_many_headers_with_431() -> None:
    """Header line number MAX_NUM_HEADERS + 1 is answered with 431, before the end."""
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\n" + b"X: v\r\n" * MAX_NUM_HEADERS)
    with pytest.raises(InvalidMessage) as exc_info:
        parser.feed(b"X: v\r\n")
    assert exc_info.value.status_code == 431


def _head_of(size: int) -> bytes:
    """A request whose head (request line, headers, CRLFs, blank line) is ``size`` bytes."""
    head = request_with()
    filler = size - len(head) - len(b"X-Fill: \r\n")
    lines = []
    while filler > MAX_LINE - len(b"X-Fill: "):
        lines.append(b"X-Fill: " + b"f" * (MAX_LINE - len(b"X-Fill: ") - 8))
        filler -= len(lines[-1]) + 2
    lines.append(b"X-Fill: " + b"f" * filler)
    request = request_with(*lines)
    assert len(request) == size
    return request


def test_request_parser_accepts_a_head_of_exactly_max_head() -> None:
    """A head of MAX_HEAD bytes, blank line included, is accepted, whole or in pieces."""
    data = _head_of(MAX_HEAD)
    assert parse_request(data) is not None
    parser = RequestParser()
    requests = [parser.feed(data[i : i + 1000]) for i in range(0, len(data), 1000)]
    assert requests[-1] is not None


def test_request_parser_rejects_a_larger_head_with_431() -> None:
    """One byte more than MAX_HEAD is answered with 431 (issue 21: 128 lines of 8 KiB, each
    within the line limits, cost 2 MiB per pending handshake)."""
    exc = request_error(_head_of(MAX_HEAD + 1))
    assert exc.status_code == 431
    assert str(exc) == "header section too large"


def test_request_parser_rejects_a_large_head_before_its_end() -> None:
    """Headers trickled in short lines fail as soon as the buffer passes MAX_HEAD."""
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(InvalidMessage) as exc_info:
        for i in range(MAX_NUM_HEADERS):
            parser.feed(b"X-%d: %s\r\n" % (i, b"v" * 200))
    assert exc_info.value.status_code == 431
    assert i < MAX_NUM_HEADERS - 1


def test_request_parser_applies_custom_limits() -> None:
    """``max_line`` and ``max_num_headers`` override the defaults."""
    with pytest.raises(InvalidMessage) as exc_info:
        RequestParser(max_line=20).feed(b"GET /" + b"a" * 20)
    assert exc_info.value.status_code == 414
    with pytest.raises(InvalidMessage) as exc_info:
        RequestParser(max_num_headers=1).feed(request_with(b"A: 1", b"B: 2"))
    assert exc_info.value.status_code == 431


# RequestParser: method and version


@pytest.mark.parametrize("method", [b"POST", b"HEAD", b"get", b"CONNECT"])
def test_request_parser_rejects_other_methods_with_405(method: bytes) -> None:
    """A method other than GET (case-sensitive) is answered with 405 and ``Allow: GET``."""
    exc = request_error(request_with(first=method + b" / HTTP/1.1"))
    assert exc.status_code == 405
    assert exc.headers == [("Allow", "GET")]


@pytest.mark.parametrize(
    "version", [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b"HTTP/1.10", b"http/1.1", b"FOO"]
)
def test_request_parser_rejects_other_versions_with_505(version: bytes) -> None:
    """A version other than exactly HTTP/1.1 is answered with 505."""
    exc = request_error(request_with(first=b"GET / " + version))
    assert exc.status_code == 505


def test_request_parser_checks_version_before_method() -> None:
    """An unsupported version with another method gets 505, not 405."""
    assert request_error(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").status_code == 400
    assert request_error(b"PRI / HTTP/2.0\r\n\r\n").status_code == 505


# RequestParser: malformed input


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"GET /",
        b"GET  / HTTP/1.1",
        b"GET / HTTP/1.1 ",
        b"GET / HTTP/1.1 x",
        b"GET\t/ HTTP/1.1",
        b"G(T / HTTP/1.1",
        b"GET chat HTTP/1.1",
        b"GET http://example.com/ HTTP/1.1",
        b"GET * HTTP/1.1",
        b"GET /\x7f HTTP/1.1",
        b"GET / HTTP/1.1\x00",
        b"GET / HTTP/1.1\rX",
    ],
)
def test_request_parser_rejects_malformed_request_line_with_400(line: bytes) -> None:
    """A request line that isn't ``token SP /target SP version`` is answered with 400."""
    assert request_error(request_with(first=line)).status_code == 400


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\n",
        b"\n",
    ],
)
def test_request_parser_rejects_bare_lf_with_400(data: bytes) -> None:
    """Lines must end with CRLF; a bare LF anywhere is answered with 400."""
    assert request_error(data).status_code == 400


@pytest.mark.parametrize(
    "line",
    [
        b" folded",
        b"\tfolded",
        b"No-Colon",
        b": value",
        b"Host : h",
        b"Ho st: h",
        b"H\xe9st: h",
        b"X(: v",
        b"X: a\x00b",
        b"X: a\rb",
        b"X: a\x1bb",
        b"X: \x7f",
    ],
)
def test_request_parser_rejects_malformed_header_line_with_400(line: bytes) -> None:
    """obs-fold, missing colon, invalid names and control characters are answered with 400."""
    assert request_error(request_with(b"Host: h", line)).status_code == 400


@pytest.mark.parametrize(
    "line", [b"Content-Length: 5", b"Content-Length: x", b"Transfer-Encoding: chunked"]
)
def test_request_parser_rejects_request_body_with_400(line: bytes) -> None:
    """A request announcing a body is answered with 400: its bytes would be read as frames."""
    assert request_error(request_with(line)).status_code == 400


# Parser life cycle


def test_request_parser_feed_eof_before_end_raises() -> None:
    """The stream ending before the empty line raises InvalidMessage caused by EOFError."""
    for data in (b"", b"GET / HTTP/1.1\r\nHost"):
        parser = RequestParser()
        parser.feed(data)
        with pytest.raises(InvalidMessage) as exc_info:
            parser.feed_eof()
        assert isinstance(exc_info.value.__cause__, EOFError)


def test_parser_refuses_input_after_returning_a_message() -> None:
    """After the message, ``feed`` and ``feed_eof`` raise RuntimeError."""
    parser = RequestParser()
    assert parser.feed(REQUEST) is not None
    with pytest.raises(RuntimeError):
        parser.feed(b"x")
    with pytest.raises(RuntimeError):
        parser.feed_eof()


def test_parser_refuses_input_after_an_error() -> None:
    """After an error, ``feed`` raises RuntimeError instead of pretending to wait."""
    parser = RequestParser()
    with pytest.raises(InvalidMessage):
        parser.feed(b"POST / HTTP/1.1\r\n")
    with pytest.raises(RuntimeError):
        parser.feed(b"\r\n")
