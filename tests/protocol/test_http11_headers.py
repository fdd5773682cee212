"""Tests of syncws.protocol.http11's Headers, and of how requests and responses serialize.

Headers: case-insensitive names, repeated names and MultipleValuesError, the validation of
names and values on assignment, reading, iterating, deleting, copying, comparing and
serializing, and the packed copies (one string, rebuilt on first use, also by many threads
at once). Then Request and Response serialization, with the values they refuse.
"""

from __future__ import annotations

import threading

import pytest
from timing import TIMEOUT

from syncws.protocol.http11 import Headers, MultipleValuesError, Request, Response

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
            thread.join(TIMEOUT)
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
