"""Tests for syncws.integrations._resp3: the RESP3 codec and Redis URLs of the hub."""

from __future__ import annotations

from typing import Any

import pytest

from syncws.integrations._resp3 import (
    Address,
    Parser,
    ProtocolError,
    Push,
    ReplyError,
    command,
)

# Every RESP3 type, as Redis sends it, and what the parser makes of it.
REPLIES: list[tuple[bytes, Any]] = [
    (b"+PONG\r\n", b"PONG"),
    (b":-42\r\n", -42),
    (
        b"(3492890328409238509324850943850943825024385\r\n",
        3492890328409238509324850943850943825024385,
    ),
    (b",1.5\r\n", 1.5),
    (b"#t\r\n", True),
    (b"#f\r\n", False),
    (b"_\r\n", None),
    (b"$-1\r\n", None),
    (b"*-1\r\n", None),
    (b"$5\r\nhe\r\no\r\n", b"he\r\no"),
    (b"$0\r\n\r\n", b""),
    (b"=15\r\ntxt:Some string\r\n", b"Some string"),
    (b"*3\r\n:1\r\n$1\r\na\r\n*1\r\n_\r\n", [1, b"a", [None]]),
    (b"~2\r\n+a\r\n+b\r\n", [b"a", b"b"]),
    (b"%2\r\n+server\r\n+redis\r\n+proto\r\n:3\r\n", {b"server": b"redis", b"proto": 3}),
    (b"|1\r\n+ttl\r\n:3600\r\n$3\r\nval\r\n", b"val"),  # attributes are skipped
]


@pytest.mark.parametrize(("wire", "value"), REPLIES)
def test_every_reply_type_byte_by_byte(wire: bytes, value: Any) -> None:
    """Each type decodes to its value, whether its bytes come at once or one by one."""
    assert Parser().feed(wire) == [value]
    parser = Parser()
    items = []
    for n in range(len(wire)):
        items += parser.feed(wire[n : n + 1])
        assert items == ([] if n < len(wire) - 1 else [value])


def test_errors_and_pushes_are_told_apart() -> None:
    """Error replies become ReplyError values; push items are Push lists, unlike arrays;
    several items in one read come out in order."""
    items = Parser().feed(
        b"-NOPERM no\r\n!9\r\nSYNTAX oh\r\n"
        b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\ntx\r\n*1\r\n:1\r\n"
    )
    assert [type(item) for item in items] == [ReplyError, ReplyError, Push, list]
    assert [str(items[0]), str(items[1])] == ["NOPERM no", "SYNTAX oh"]
    assert items[2] == [b"message", b"c", b"tx"]


@pytest.mark.parametrize("wire", [b"?what\r\n", b":x\r\n", b"$abc\r\n"])
def test_not_resp(wire: bytes) -> None:
    """Bytes that are not RESP raise ProtocolError (e.g. another server on the port)."""
    with pytest.raises(ProtocolError):
        Parser().feed(wire)


def test_command() -> None:
    """Commands are arrays of bulk strings; str and int arguments are encoded."""
    assert command(b"PUBLISH", "ch", b"\r\n", 3) == (
        b"*4\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$2\r\n\r\n\r\n$1\r\n3\r\n"
    )


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://localhost", Address(False, "localhost", 6379, None, None, None, 0)),
        ("redis://h:1/2", Address(False, "h", 1, None, None, None, 2)),
        ("redis://:p%40ss@h/0", Address(False, "h", 6379, None, None, "p@ss", 0)),
        ("redis://u:p@[::1]:7/3", Address(False, "::1", 7, None, "u", "p", 3)),
        ("rediss://h/1?db=4", Address(True, "h", 6379, None, None, None, 4)),
        ("redis://h?username=u&password=p", Address(False, "h", 6379, None, "u", "p", 0)),
        ("unix:///run/redis.sock?db=1&password=p",
         Address(False, "", 0, "/run/redis.sock", None, "p", 1)),
    ],
)  # fmt: skip
def test_urls(url: str, address: Address) -> None:
    """redis://, rediss:// and unix:// URLs, with redis-py's query parameters."""
    assert Address.parse(url) == address


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://u:s3cr3t@h/0", "starts with redis://"),
        ("redis://u:s3cr3t@h/x", "bad port or database"),
        ("redis://u:s3cr3t@h:port/0", "bad port or database"),
        ("redis://h/0?ssl_cert_reqs=s3cr3t", "'ssl_cert_reqs'"),
        ("unix://?password=s3cr3t", "needs a path"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    """A URL the hub cannot use raises ValueError, which never shows the password."""
    with pytest.raises(ValueError, match=message) as raised:
        Address.parse(url)
    assert "s3cr3t" not in str(raised.value)
