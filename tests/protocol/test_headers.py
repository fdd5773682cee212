"""Tests for syncws.protocol.headers: token lists, Sec-WebSocket-Extensions, HTTP Basic."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncws.exceptions import InvalidHeader
from syncws.protocol.extensions import ExtensionParameter
from syncws.protocol.headers import (
    build_authorization_basic,
    parse_authorization_basic,
    parse_extension_header,
    parse_token_list,
    serialize_extension_header,
)

# Token lists


def test_parse_token_list_ignores_whitespace_and_empty_elements() -> None:
    """OWS around commas and empty elements are ignored; case is preserved."""
    assert parse_token_list(" keep-alive ,\tUpgrade,, ,x", "Connection") == [
        "keep-alive",
        "Upgrade",
        "x",
    ]
    assert parse_token_list("") == []


@pytest.mark.parametrize("value", ["a b", "a;b", 'a, "b"', "a/b", "é"])
def test_parse_token_list_rejects_non_tokens(value: str) -> None:
    """An element that isn't a token raises InvalidHeader naming the header."""
    with pytest.raises(InvalidHeader) as exc_info:
        parse_token_list(value, "Connection")
    assert (exc_info.value.name, exc_info.value.value) == ("Connection", value)


# Sec-WebSocket-Extensions


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("foo", [("foo", [])]),
        ("foo, bar", [("foo", []), ("bar", [])]),
        ("foo;a;b=1", [("foo", [("a", None), ("b", "1")])]),
        ("foo ; a = 1 ;\tb , bar", [("foo", [("a", "1"), ("b", None)]), ("bar", [])]),
        ('foo; a="10"', [("foo", [("a", "10")])]),
        ('foo; a = "\\1\\0" ; b', [("foo", [("a", "10"), ("b", None)])]),
        (" , foo,,bar ,", [("foo", []), ("bar", [])]),
        (
            "permessage-deflate; client_max_window_bits, permessage-deflate",
            [
                ("permessage-deflate", [("client_max_window_bits", None)]),
                ("permessage-deflate", []),
            ],
        ),
    ],
)
def test_parse_extension_header_follows_rfc_6455_grammar(
    value: str, parsed: list[tuple[str, list[ExtensionParameter]]]
) -> None:
    """Names, parameters, quoted values and whitespace parse per RFC 6455 §9.1."""
    assert parse_extension_header(value) == parsed


@pytest.mark.parametrize(
    "value",
    [
        "",
        " , ",
        "foo bar",
        "foo;",
        "foo; =1",
        "foo; a=",
        "foo; a=1 2",
        'foo; a="1',
        'foo; a="a b"',
        'foo; a="a\\"b"',
        'foo; a=""',
        "foo; a=é",
        "foo,;a",
        '"foo"',
    ],
)
def test_parse_extension_header_rejects_malformed_values(value: str) -> None:
    """Values outside the grammar, or quoted values that aren't tokens, raise InvalidHeader."""
    with pytest.raises(InvalidHeader) as exc_info:
        parse_extension_header(value)
    assert exc_info.value.name == "Sec-WebSocket-Extensions"
    assert exc_info.value.status_code == 400


def test_serialize_extension_header() -> None:
    """Extensions serialize as ``name; param; param=value`` joined with commas."""
    value = serialize_extension_header([("foo", [("a", None), ("b", "1")]), ("bar", [])])
    assert value == "foo; a; b=1, bar"


@pytest.mark.parametrize(
    "extensions",
    [[("a b", [])], [("foo", [("a=1", None)])], [("foo", [("a", "1 2")])], [("foo", [("a", "")])]],
)
def test_serialize_extension_header_rejects_non_tokens(
    extensions: list[tuple[str, list[ExtensionParameter]]],
) -> None:
    """Names, parameters and values must be tokens; anything else raises ValueError."""
    with pytest.raises(ValueError, match="invalid extension"):
        serialize_extension_header(extensions)


_TOKENS = st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", fullmatch=True)
_EXTENSIONS = st.lists(
    st.tuples(_TOKENS, st.lists(st.tuples(_TOKENS, st.none() | _TOKENS), max_size=4)),
    min_size=1,
    max_size=4,
)


@given(_EXTENSIONS)
def test_extension_header_round_trips(
    extensions: list[tuple[str, list[ExtensionParameter]]],
) -> None:
    """Serializing then parsing gives the extensions back."""
    assert parse_extension_header(serialize_extension_header(extensions)) == extensions


# Basic authentication


def test_build_authorization_basic() -> None:
    """Credentials are ``user:password`` in UTF-8, base64 (RFC 7617 §2 example)."""
    assert (
        build_authorization_basic("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    )


def test_build_authorization_basic_rejects_colon_in_username() -> None:
    """A username with a colon cannot be represented and raises ValueError."""
    with pytest.raises(ValueError, match="colon"):
        build_authorization_basic("a:b", "c")


@pytest.mark.parametrize(
    ("value", "credentials"),
    [
        ("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", ("Aladdin", "open sesame")),
        ("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", ("Aladdin", "open sesame")),
        ("Basic dTpwOnE=", ("u", "p:q")),
        ("Basic Og==", ("", "")),
    ],
)
def test_parse_authorization_basic(value: str, credentials: tuple[str, str]) -> None:
    """The scheme is case-insensitive; the password may contain colons."""
    assert parse_authorization_basic(value) == credentials


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("Bearer abc", "scheme"),
        ("QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "scheme"),
        ("Basic", "credentials"),
        ("Basic !!!", "credentials"),
        ("Basic QWxhZGRpbg==", "credentials"),
        ("Basic " + base64.b64encode(b"\xff:x").decode(), "credentials"),
    ],
)
def test_parse_authorization_basic_rejects_garbage(value: str, reason: str) -> None:
    """Another scheme, invalid base64, invalid UTF-8 or no colon raise InvalidHeader."""
    with pytest.raises(InvalidHeader, match=reason) as exc_info:
        parse_authorization_basic(value)
    assert exc_info.value.name == "Authorization"
    secret = value.partition(" ")[2]
    assert not secret or secret not in str(exc_info.value)


@given(st.text().filter(lambda user: ":" not in user), st.text())
def test_authorization_basic_round_trips(username: str, password: str) -> None:
    """Any username without a colon and any password survive build then parse."""
    value = build_authorization_basic(username, password)
    assert parse_authorization_basic(value) == (username, password)
