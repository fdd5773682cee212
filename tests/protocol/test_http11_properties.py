"""Property tests of syncws.protocol.http11: round trips and input cut anywhere.

Headers, requests and responses parse back to what was serialized; a request or a response
fed in arbitrary pieces gives the same message and remainder (or the same error) as fed at
once; and arbitrary bytes never make a parser raise anything but InvalidMessage.
"""

from __future__ import annotations

import itertools

from http11_helpers import SWITCHING, parse_request, parse_response
from hypothesis import given
from hypothesis import strategies as st

from syncws.exceptions import InvalidMessage
from syncws.protocol.http11 import Headers, Request, RequestParser, Response, ResponseParser


def feed_in_pieces(parser: RequestParser | ResponseParser, data: bytes, cuts: list[int]) -> object:
    """Feed ``data`` cut at ``cuts``; return the message, or the error's status code."""
    bounds = [0, *sorted(cut % (len(data) + 1) for cut in cuts), len(data)]
    try:
        for start, end in itertools.pairwise(bounds):
            message = parser.feed(data[start:end])
            if message is not None:
                return message, parser.remainder + data[end:]
        return parser.feed_eof(), b""
    except InvalidMessage as exc:
        return exc.status_code


# Properties

_NAMES = st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", fullmatch=True).filter(
    lambda name: name.lower() not in ("content-length", "transfer-encoding")
)
_VALUES = st.from_regex(
    r"([\x21-\x7e\x80-\xff]([\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?", fullmatch=True
)
_HEADERS = st.lists(st.tuples(_NAMES, _VALUES), max_size=10).map(Headers)
_PATHS = st.from_regex(r"/[\x21-\x7e]*", fullmatch=True)
_REASONS = st.from_regex(r"[\t\x20-\x7e\x80-\xff]*", fullmatch=True)
_CUTS = st.lists(st.integers(min_value=0), max_size=20)


@given(_HEADERS)
def test_headers_round_trip_through_serialize_and_parse(headers: Headers) -> None:
    """Serialized headers parse back to equal headers with the same pairs in order."""
    request = parse_request(b"GET / HTTP/1.1\r\n" + headers.serialize())
    assert request is not None
    assert request.headers == headers
    assert request.headers.items() == headers.items()


@given(_PATHS, _HEADERS)
def test_request_round_trip_through_serialize_and_parse(path: str, headers: Headers) -> None:
    """A serialized request parses back to an equal request."""
    request = Request(path, headers)
    assert parse_request(request.serialize()) == request


@given(st.integers(min_value=100, max_value=599), _REASONS, _HEADERS, st.binary(max_size=100))
def test_response_round_trip_through_serialize_and_parse(
    status_code: int, reason: str, headers: Headers, body: bytes
) -> None:
    """A serialized response with Content-Length parses back to an equal response."""
    if status_code < 200 or status_code in (204, 304):
        body = b""
    headers["Content-Length"] = str(len(body))
    response = Response(status_code, reason, headers, body)
    assert parse_response(response.serialize()) == response


@given(_PATHS, _HEADERS, st.binary(max_size=20), _CUTS)
def test_request_parser_byte_splits_dont_matter(
    path: str, headers: Headers, extra: bytes, cuts: list[int]
) -> None:
    """Feeding a request in arbitrary pieces gives the same request and remainder as at once."""
    data = Request(path, headers).serialize() + extra
    expected = feed_in_pieces(RequestParser(), data, [])
    assert feed_in_pieces(RequestParser(), data, cuts) == expected
    assert feed_in_pieces(RequestParser(), data, list(range(len(data)))) == expected


@given(
    st.sampled_from(
        [
            SWITCHING + b"frames",
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope",
            b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n2;x\r\nno\r\n0\r\n\r\n",
            b"HTTP/1.1 500 Error\r\n\r\nuntil the end",
            b"HTTP/1.1 500 Error\r\nX: \x00\r\n\r\n",
        ]
    ),
    _CUTS,
)
def test_response_parser_byte_splits_dont_matter(data: bytes, cuts: list[int]) -> None:
    """Feeding a response in arbitrary pieces gives the same outcome as at once."""
    expected = feed_in_pieces(ResponseParser(), data, [])
    assert feed_in_pieces(ResponseParser(), data, cuts) == expected
    assert feed_in_pieces(ResponseParser(), data, list(range(len(data)))) == expected


@given(st.binary(max_size=300), _CUTS)
def test_request_parser_splits_dont_change_errors(data: bytes, cuts: list[int]) -> None:
    """Arbitrary bytes give the same outcome (message or status code) however they are cut."""
    data = b"GET / HTTP/1.1\r\n" + data
    assert feed_in_pieces(RequestParser(), data, cuts) == feed_in_pieces(RequestParser(), data, [])


_HTTPISH = st.lists(
    st.sampled_from(
        [
            *(b"GET", b"HTTP/1.1", b" ", b"/", b"\r\n", b"\n", b":", b"0", b"101", b"200", b"\t"),
            *(b"Content-Length", b"Transfer-Encoding", b"chunked", b";", b"x", b"\x00", b"\xff"),
        ]
    )
).map(b"".join)


@given(st.one_of(st.binary(), _HTTPISH), _CUTS)
def test_parsers_raise_only_invalid_message_on_arbitrary_bytes(
    data: bytes, cuts: list[int]
) -> None:
    """Arbitrary input never raises anything but InvalidMessage, even at EOF."""
    for parser in (RequestParser(max_line=64), ResponseParser(max_line=64, max_body=64)):
        feed_in_pieces(parser, data, cuts)
