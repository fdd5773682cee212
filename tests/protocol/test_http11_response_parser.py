"""Tests of syncws.protocol.http11's ResponseParser: what a client reads of a handshake.

A 101 ends with its headers (the frames after it are kept); status lines, valid or not; the
body of any other response, by Content-Length, chunked, or until EOF, within max_body; no
body for 1xx, 204 and 304; the cap on the head; unsupported transfer codings; the stream
ending early; and tunnel mode, where a proxy's 2xx to CONNECT ends with its headers.
"""

from __future__ import annotations

import pytest
from http11_helpers import SWITCHING, parse_response

from syncws.exceptions import InvalidMessage
from syncws.protocol.http11 import MAX_BODY, MAX_HEAD, MAX_LINE, MAX_NUM_HEADERS, ResponseParser


def response_error(data: bytes, *, eof: bool = False, **limits: int) -> InvalidMessage:
    parser = ResponseParser(**limits)
    with pytest.raises(InvalidMessage) as exc_info:
        parser.feed(data)
        if eof:
            parser.feed_eof()
    return exc_info.value


# The head's limit (MAX_HEAD)


def test_response_parser_caps_the_head_too() -> None:
    """A response head over MAX_HEAD fails the handshake (a client's memory is bounded too)."""
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 101 Switching Protocols\r\n")
    with pytest.raises(InvalidMessage, match="header section too large"):
        for i in range(MAX_NUM_HEADERS):
            parser.feed(b"X-%d: %s\r\n" % (i, b"v" * 200))


def test_response_parser_max_head_leaves_a_chunked_body_alone() -> None:
    """MAX_HEAD bounds the head, not the chunk-size lines of a body up to MAX_BODY: a proxy's
    403 page of 20 KiB, chunked, is parsed (the client reports it as InvalidStatus)."""
    head = b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunks = b"".join(b"%x\r\n" % 4000 + b"x" * 4000 + b"\r\n" for _ in range(5))
    response = ResponseParser().feed(head + chunks + b"0\r\n\r\n")
    assert response is not None
    assert (response.status_code, len(response.body)) == (403, 20000)
    assert MAX_HEAD < 20000  # the body is larger than any head may be


# Status lines and bodies


def test_response_parser_returns_101_at_end_of_headers() -> None:
    """A 101 ends with its headers; the following bytes are frames, in ``remainder``."""
    parser = ResponseParser()
    assert parser.feed(SWITCHING[:-1]) is None
    response = parser.feed(SWITCHING[-1:] + b"\x81\x02hi")
    assert response is not None
    assert (response.status_code, response.reason_phrase) == (101, "Switching Protocols")
    assert response.headers["Upgrade"] == "websocket"
    assert response.body == b""
    assert parser.remainder == b"\x81\x02hi"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"HTTP/1.1 200 OK", "OK"),
        (b"HTTP/1.1 200 ", ""),
        (b"HTTP/1.1 200", ""),
        (b"HTTP/1.0 200 OK", "OK"),
        (b"HTTP/1.1 200 All \tgood caf\xe9", "All \tgood caf\xe9"),
    ],
)
def test_response_parser_accepts_status_lines(line: bytes, reason: str) -> None:
    """Empty or missing reason phrases and HTTP/1.0 responses are accepted."""
    response = parse_response(line + b"\r\nContent-Length: 0\r\n\r\n")
    assert response is not None
    assert response.reason_phrase == reason


@pytest.mark.parametrize(
    "line",
    [
        b"HTTP/1.1  200 OK",
        b"HTTP/2 200 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 099 Low",
        b"HTTP/1.1 600 High",
        b"HTTP/1.1 abc OK",
        b"HTTP/1.1 200 O\x00K",
        b"garbage",
    ],
)
def test_response_parser_rejects_malformed_status_lines(line: bytes) -> None:
    """A malformed status line raises InvalidMessage."""
    response_error(line + b"\r\n\r\n")


def test_response_parser_rejects_long_status_line_early() -> None:
    """A status line longer than MAX_LINE fails without waiting for its end."""
    response_error(b"HTTP/1.1 200 " + b"x" * MAX_LINE)


def test_response_parser_reads_content_length_body() -> None:
    """With Content-Length, exactly that many bytes form the body."""
    parser = ResponseParser()
    head = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\n"
    assert parser.feed(head + b"forbi") is None
    response = parser.feed(b"dden!extra")
    assert response is not None
    assert response.body == b"forbidden"
    assert parser.remainder == b"!extra"


def test_response_parser_accepts_repeated_identical_content_length() -> None:
    """Repeated identical Content-Length values are accepted (RFC 9112 §6.3)."""
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"
    response = parse_response(data)
    assert response is not None
    assert response.body == b"ok"


@pytest.mark.parametrize("value", [b"-1", b"x", b"1, 1", b"+1", b"\xd9\xa1", b""])
def test_response_parser_rejects_invalid_content_length(value: bytes) -> None:
    """A Content-Length that isn't a decimal number raises InvalidMessage."""
    exc = response_error(b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\n")
    assert "Content-Length" in str(exc)


def test_response_parser_rejects_conflicting_content_lengths() -> None:
    """Two different Content-Length values raise InvalidMessage."""
    response_error(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")


def test_response_parser_rejects_content_length_over_max_body_at_once() -> None:
    """A Content-Length above MAX_BODY fails at the end of the headers, before the body."""
    exc = response_error(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1))
    assert "too large" in str(exc)


def test_response_parser_reads_until_eof_without_length() -> None:
    """Without Content-Length or chunking, the body ends with the stream."""
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 404 Not Found\r\n\r\nnot ") is None
    assert parser.feed(b"found") is None
    response = parser.feed_eof()
    assert (response.status_code, response.body) == (404, b"not found")


def test_response_parser_caps_body_read_until_eof() -> None:
    """A body read until EOF fails as soon as it exceeds ``max_body``."""
    parser = ResponseParser(max_body=10)
    parser.feed(b"HTTP/1.1 500 Oops\r\n\r\n" + b"x" * 10)
    with pytest.raises(InvalidMessage, match="too large"):
        parser.feed(b"x")


@pytest.mark.parametrize("status", [b"100 Continue", b"204 No Content", b"304 Not Modified"])
def test_response_parser_reads_no_body_for_1xx_204_304(status: bytes) -> None:
    """1xx, 204 and 304 responses end with their headers (RFC 9112 §6.3)."""
    parser = ResponseParser()
    response = parser.feed(b"HTTP/1.1 " + status + b"\r\nContent-Length: 3\r\n\r\nabc")
    assert response is not None
    assert response.body == b""
    assert parser.remainder == b"abc"


def test_response_parser_decodes_chunked_body() -> None:
    """Chunked bodies are decoded; extensions and trailers are ignored."""
    data = (
        b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: Chunked\r\n\r\n"
        b"4\r\nforb\r\n"
        b"5;ext=1 \r\nidden\r\n"
        b"A\r\n, go away!\r\n"
        b"0\r\nX-Trailer: t\r\n\r\n"
        b"rest"
    )
    parser = ResponseParser()
    response = parser.feed(data)
    assert response is not None
    assert response.body == b"forbidden, go away!"
    assert parser.remainder == b"rest"


@pytest.mark.parametrize(
    "chunks",
    [
        b"x\r\n\r\n",
        b"\r\n",
        b"-1\r\n",
        b"11111111111111111\r\n",
        b"3\r\nabcd\r\n0\r\n\r\n",
        b"3\r\nabc",
    ],
)
def test_response_parser_rejects_malformed_chunks(chunks: bytes) -> None:
    """Invalid chunk sizes, missing CRLF after data and truncated bodies raise."""
    response_error(b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks, eof=True)


def test_response_parser_caps_chunked_body() -> None:
    """A chunk that would take the body past ``max_body`` fails before its data arrives."""
    data = b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n3\r\n"
    response_error(data, max_body=10)


@pytest.mark.parametrize(
    "headers",
    [
        b"Transfer-Encoding: gzip, chunked\r\n",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
    ],
)
def test_response_parser_rejects_unsupported_transfer_encoding(headers: bytes) -> None:
    """Only a lone ``chunked`` coding without Content-Length is supported."""
    exc = response_error(b"HTTP/1.1 200 OK\r\n" + headers + b"\r\n0\r\n\r\n")
    assert "Transfer-Encoding" in str(exc)


def test_response_parser_rejects_eof_before_end_of_body() -> None:
    """The stream ending before Content-Length bytes raises InvalidMessage."""
    response_error(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", eof=True)


def test_response_parser_rejects_eof_in_headers() -> None:
    """The stream ending inside the headers raises InvalidMessage."""
    exc = response_error(b"HTTP/1.1 200 OK\r\nServer: x", eof=True)
    assert isinstance(exc.__cause__, EOFError)


def test_response_parser_rejects_malformed_header() -> None:
    """Header rules apply to responses too."""
    response_error(b"HTTP/1.1 101 Switching Protocols\r\n folded\r\n\r\n")


# Tunnel mode (a proxy's answer to CONNECT)


def test_response_parser_tunnel_ends_a_2xx_with_its_headers() -> None:
    """With tunnel=True, a proxy's 200 to CONNECT ends with its headers (RFC 9110 §9.3.6):
    what follows is the tunnel's, left in ``remainder``."""
    parser = ResponseParser(tunnel=True)
    response = parser.feed(b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03")
    assert response is not None
    assert (response.status_code, response.body) == (200, b"")
    assert parser.remainder == b"\x16\x03"


def test_response_parser_tunnel_reads_the_body_of_a_refusal() -> None:
    """With tunnel=True, a 407 still has its body read, as any other response."""
    parser = ResponseParser(tunnel=True)
    response = parser.feed(
        b"HTTP/1.0 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\ndeny"
    )
    assert response is not None
    assert (response.status_code, response.body) == (407, b"deny")
