"""Tests for syncws.protocol.http11: headers, messages and incremental parsers."""

from __future__ import annotations

import itertools
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncws.exceptions import InvalidMessage
from syncws.protocol.http11 import (
    MAX_BODY,
    MAX_HEAD,
    MAX_LINE,
    MAX_NUM_HEADERS,
    Headers,
    MultipleValuesError,
    Request,
    RequestParser,
    Response,
    ResponseParser,
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


def parse_request(data: bytes) -> Request | None:
    return RequestParser().feed(data)


def request_error(data: bytes) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as exc_info:
        RequestParser().feed(data)
    return exc_info.value


def parse_response(data: bytes, *, eof: bool = False) -> Response | None:
    parser = ResponseParser()
    response = parser.feed(data)
    if eof:
        return parser.feed_eof()
    return response


def response_error(data: bytes, *, eof: bool = False, **limits: int) -> InvalidMessage:
    parser = ResponseParser(**limits)
    with pytest.raises(InvalidMessage) as exc_info:
        parser.feed(data)
        if eof:
            parser.feed_eof()
    return exc_info.value


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


# Headers


def test_headers_item_access_is_case_insensitive() -> None:
    """A header set as ``Host`` reads back as ``host`` and ``HOST``."""
    headers = Headers({"Host": "example.com"})
    assert headers["host"] == headers["HOST"] == "example.com"


def test_headers_missing_name_raises_key_error() -> None:
    """Reading a missing header raises KeyError naming it."""
    with pytest.raises(KeyError, match="Origin"):
        Headers()["Origin"]


def test_headers_repeated_name_raises_multiple_values_error() -> None:
    """Reading a header with two values raises MultipleValuesError, a KeyError."""
    headers = Headers([("Cookie", "a=1"), ("cookie", "b=2")])
    with pytest.raises(MultipleValuesError) as exc_info:
        headers["Cookie"]
    assert isinstance(exc_info.value, KeyError)
    assert str(exc_info.value) == "multiple values for header 'Cookie'"


def test_headers_assignment_appends() -> None:
    """Assigning to an existing name adds a value instead of replacing it."""
    headers = Headers()
    headers["X-Tag"] = "a"
    headers["x-tag"] = "b"
    assert headers.get_all("X-TAG") == ["a", "b"]
    assert headers.items() == [("X-Tag", "a"), ("x-tag", "b")]


@pytest.mark.parametrize("name", ["", "X Tag", "X-Tag:", "Ünïcode", "X\r\nY"])
def test_headers_assignment_rejects_invalid_names(name: str) -> None:
    """A header name that isn't a token raises ValueError."""
    with pytest.raises(ValueError, match="invalid header name"):
        Headers()[name] = "value"


@pytest.mark.parametrize(
    "value", ["a\r\nInjected: 1", "a\rb", "a\nb", "a\x00b", "a\x7fb", " a", "a\t", "€"]
)
def test_headers_assignment_rejects_invalid_values(value: str) -> None:
    """Control characters, outer whitespace or non-Latin-1 characters raise ValueError."""
    with pytest.raises(ValueError, match="invalid value"):
        Headers()["X-Tag"] = value


@pytest.mark.parametrize("value", ["", "a b\tc", "caf\xe9", "!~"])
def test_headers_assignment_accepts_valid_values(value: str) -> None:
    """Empty values, inner whitespace and obs-text (Latin-1) are valid."""
    headers = Headers()
    headers["X-Tag"] = value
    assert headers["X-Tag"] == value


def test_headers_get_returns_value_or_default() -> None:
    """``get`` returns the single value, or the default when the header is missing."""
    headers = Headers({"Host": "example.com"})
    assert headers.get("host") == "example.com"
    assert headers.get("Origin") is None
    assert headers.get("Origin", "none") == "none"


def test_headers_get_with_multiple_values_raises() -> None:
    """``get`` doesn't hide several values behind the default."""
    headers = Headers([("A", "1"), ("A", "2")])
    with pytest.raises(MultipleValuesError):
        headers.get("A")


def test_headers_get_all_returns_a_new_list() -> None:
    """``get_all`` returns every value, [] when missing, and a list the caller may mutate."""
    headers = Headers([("A", "1"), ("B", "x"), ("a", "2")])
    assert headers.get_all("a") == ["1", "2"]
    assert headers.get_all("C") == []
    headers.get_all("A").append("3")
    assert headers.get_all("A") == ["1", "2"]


def test_headers_contains_is_case_insensitive() -> None:
    """``in`` matches names in any case and is False for non-strings."""
    headers = Headers({"Upgrade": "websocket"})
    assert "upgrade" in headers
    assert "Connection" not in headers
    assert 42 not in headers


def test_headers_iterate_distinct_names_in_first_case() -> None:
    """Iteration yields each name once, in order of first appearance and its original case."""
    headers = Headers([("Host", "h"), ("X-A", "1"), ("x-a", "2"), ("Origin", "o")])
    assert list(headers) == ["Host", "X-A", "Origin"]
    assert len(headers) == 3


def test_headers_items_returns_a_copy_of_pairs() -> None:
    """``items`` returns the pairs in order; mutating the result doesn't change the headers."""
    headers = Headers([("A", "1"), ("B", "2")])
    items = headers.items()
    items.clear()
    assert headers.items() == [("A", "1"), ("B", "2")]


def test_headers_delete_removes_every_value() -> None:
    """``del`` removes all values of a name, whatever their case."""
    headers = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    del headers["A"]
    assert headers.items() == [("B", "2")]
    assert "a" not in headers


def test_headers_delete_missing_raises_key_error() -> None:
    """Deleting a missing header raises KeyError."""
    with pytest.raises(KeyError):
        del Headers()["A"]


def test_headers_construct_from_dict_pairs_and_headers() -> None:
    """Headers are built from a dict, a list of pairs or another Headers alike."""
    pairs = [("Host", "h"), ("Origin", "o")]
    assert Headers(dict(pairs)) == Headers(pairs) == Headers(Headers(pairs))
    assert Headers(Headers(pairs)).items() == pairs


def test_headers_update_appends_and_validates() -> None:
    """``update`` appends from any source and rejects invalid values."""
    headers = Headers({"A": "1"})
    headers.update({"a": "2"})
    headers.update([("B", "3")])
    headers.update(Headers({"A": "4"}))
    assert headers.get_all("A") == ["1", "2", "4"]
    with pytest.raises(ValueError):
        headers.update([("C", "bad\n")])


def test_headers_copy_is_independent() -> None:
    """Changing a copy leaves the original unchanged."""
    headers = Headers({"A": "1"})
    copy = headers.copy()
    copy["A"] = "2"
    assert headers.get_all("A") == ["1"]
    assert copy.get_all("A") == ["1", "2"]


def test_headers_equality_ignores_name_case_but_not_value_order() -> None:
    """Equality compares names case-insensitively and each name's values in order."""
    assert Headers([("A", "1"), ("B", "2")]) == Headers([("b", "2"), ("a", "1")])
    assert Headers([("A", "1"), ("A", "2")]) != Headers([("A", "2"), ("A", "1")])
    assert Headers({"A": "1"}) != {"A": "1"}


def test_headers_repr_shows_pairs() -> None:
    """The repr lists the pairs."""
    assert repr(Headers({"A": "1"})) == "Headers([('A', '1')])"


def test_headers_serialize_ends_with_empty_line() -> None:
    """Serialization writes one line per value in order, then CRLF, in Latin-1."""
    headers = Headers([("Host", "h"), ("X", "caf\xe9"), ("x", "2")])
    assert headers.serialize() == b"Host: h\r\nX: caf\xe9\r\nx: 2\r\n\r\n"
    assert Headers().serialize() == b"\r\n"


def test_packed_headers_read_and_change_like_the_original() -> None:
    """_pack() returns an equal copy holding one string; the first use rebuilds the pairs
    and the index, and the copy then behaves as any Headers."""
    headers = Headers([("Host", "h"), ("X-A", "1"), ("x-a", "2"), ("Empty", ""), ("V", "a: b")])
    packed = headers._pack()
    assert packed is not headers
    assert packed._packed == "Host\nh\nX-A\n1\nx-a\n2\nEmpty\n\nV\na: b"
    assert packed == headers
    assert packed.items() == headers.items()
    assert packed.get_all("X-A") == ["1", "2"] and packed["empty"] == "" and "V" in packed
    assert list(packed) == ["Host", "X-A", "Empty", "V"] and len(packed) == 4
    assert packed.serialize() == headers.serialize()
    assert repr(packed) == repr(headers)
    packed["New"] = "3"
    del packed["host"]
    assert packed.items() == [*headers.items()[1:], ("New", "3")]
    assert headers["Host"] == "h"  # the original is untouched
    assert Headers(headers._pack()) == headers
    assert headers._pack().copy() == headers


def test_packed_headers_equal_each_other_unread() -> None:
    """Comparing two packed copies rebuilds both."""
    headers = Headers({"A": "1", "B": "2"})
    assert headers._pack() == headers._pack()
    assert headers._pack() != Headers({"A": "1"})._pack()


def test_headers_that_cannot_be_packed_are_kept() -> None:
    """Empty headers, a subclass and values with a newline (which _append() allows) are
    returned as they are."""

    class Custom(Headers):
        pass

    unpackable = Headers()
    unpackable._append("X", "a\nb")
    for headers in (Headers(), Custom({"A": "1"}), unpackable):
        assert headers._pack() is headers
    assert unpackable["x"] == "a\nb"


def test_unknown_attributes_of_headers_still_raise() -> None:
    """The lazy rebuild answers for the pairs and the index only."""
    with pytest.raises(AttributeError):
        Headers().no_such_attribute  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError):
        Headers()._packed  # noqa: B018


def test_packed_headers_rebuilt_by_many_threads_at_once() -> None:
    """Threads reading a packed copy at the same time all see the same headers."""

    def read(packed: Headers, barrier: threading.Barrier, seen: list[object]) -> None:
        barrier.wait()
        seen.append([(name, packed[name]) for name in packed])

    headers = Headers([(f"H{i}", str(i)) for i in range(50)])
    for _ in range(20):
        packed, barrier, seen = headers._pack(), threading.Barrier(4), []
        threads = [threading.Thread(target=read, args=(packed, barrier, seen)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        assert seen == [headers.items()] * 4


# Request and Response


def test_request_serialize() -> None:
    """A request serializes as a GET request line followed by its headers."""
    request = Request("/chat?room=1", Headers({"Host": "example.com"}))
    assert request.serialize() == b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"


@pytest.mark.parametrize("path", ["", "chat", "/a b", "/a\r\n", "/é"])
def test_request_serialize_rejects_invalid_paths(path: str) -> None:
    """A path that isn't an origin-form target raises ValueError."""
    with pytest.raises(ValueError, match="invalid request target"):
        Request(path, Headers()).serialize()


def test_response_serialize_with_body() -> None:
    """A response serializes as status line, headers and body."""
    response = Response(403, "Forbidden", Headers({"Content-Length": "2"}), b"no")
    assert response.serialize() == b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"


@pytest.mark.parametrize(
    ("status_code", "reason"), [(99, "x"), (600, "x"), (200, "O\r\nK"), (200, "\x00")]
)
def test_response_serialize_rejects_invalid_status_lines(status_code: int, reason: str) -> None:
    """An out-of-range status or a reason phrase with control characters raises ValueError."""
    with pytest.raises(ValueError, match="invalid"):
        Response(status_code, reason, Headers()).serialize()


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


# ResponseParser


SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"\r\n"
)


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
