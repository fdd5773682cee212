"""Log hygiene: no credential reaches a log record, and what the peer sent is quoted.

Browsers authenticate WebSockets with a token in the query string or a cookie, and proxies
with ``Authorization``: none of them may appear in a record at INFO or above, however
malformed the request that carries them. Header values come from the peer, so a record
never holds a control character (C0 or C1: NEL, CSI...) that could forge a log line or
drive a terminal (issue 21, items 5, 7 and 8).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Iterator

import pytest
from rawws import KEY, response_head
from timing import TIMEOUT

import syncws
from syncws.protocol.http11 import Headers, redact_target

ServerFactory = Callable[..., syncws.Server]
UriFactory = Callable[..., str]

SECRET = "s3cr3t-do-not-log"


class Records(logging.Handler):
    """Every record of the ``syncws`` loggers, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self, record: logging.LogRecord) -> str:
        return logging.Formatter("%(levelname)s %(name)s %(message)s").format(record)


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("syncws")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def handshake(path: str = "/", *extra: bytes, host: bytes = b"127.0.0.1") -> bytes:
    lines = [
        b"GET " + path.encode() + b" HTTP/1.1",
        b"Host: " + host,
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: " + KEY,
        b"Sec-WebSocket-Version: 13",
        *extra,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def assert_clean(records: Records) -> None:
    """No secret at INFO or above, no control character anywhere, no ERROR."""
    assert records.records, "the scenario logged nothing: the test checks nothing"
    for record in records.records:
        text = records.text(record)
        if record.levelno >= logging.INFO:
            assert SECRET not in text, text
        controls = [c for c in text if unicodedata.category(c) == "Cc" and c != "\n"]
        assert not controls, text
        assert record.levelno < logging.ERROR, text


SECRET_BYTES = SECRET.encode()

MALFORMED = {
    # Credentials in a value that is not a valid field value (a C0 control inside).
    "authorization-value": handshake("/", b"Authorization: Bearer " + SECRET_BYTES + b"\x01"),
    "cookie-value": handshake("/", b"Cookie: session=" + SECRET_BYTES + b"\x1b[31m"),
    "proxy-authorization-value": handshake(
        "/", b"Proxy-Authorization: Basic " + SECRET_BYTES + b"\x01"
    ),
    # A credentials header line that is not even a header line.
    "authorization-line": handshake("/", b"Authorization : Basic " + SECRET_BYTES),
    # A query string in a request line that is malformed.
    "request-line": b"GET /chat?token=" + SECRET_BYTES + b" HTTP/1.1 junk\r\n\r\n",
    # Values that get quoted in the rejection's log line: C1 controls, an escape sequence.
    # (obs-text, which RFC 9110 allows in a value: C1 controls pass the parser.)
    "host-c1": handshake("/", b"Host: evil\x85INFO forged line"),
    "origin-csi": handshake("/", b"Origin: http://x\x9b2J"),
    "origin-c0": handshake("/", b"Origin: http://x\x1b[2J"),
    "version-c1": handshake("/").replace(b"HTTP/1.1", b"HTTP/1.1\x85", 1),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_handshake_logs_no_secret_and_quotes_what_it_quotes(
    server: ServerFactory, records: Records, name: str
) -> None:
    """Each malformed request gets an HTTP error and an INFO line, which holds neither the
    credentials it carried nor a raw control character."""
    srv = server(origins=["http://example.com"])
    head = response_head(srv.port, MALFORMED[name])
    assert head.startswith(b"HTTP/1.1 4") or head.startswith(b"HTTP/1.1 505"), head
    assert (
        syncws.connect(f"ws://127.0.0.1:{srv.port}/", origin="http://example.com").close() is None
    )
    assert_clean(records)


def test_the_query_string_of_an_accepted_connection_is_not_logged(
    server: ServerFactory, records: Records, echo: Callable[[syncws.ServerConnection], None]
) -> None:
    """``connection open`` logs the path without its query string, where tokens go."""
    srv = server(echo)
    with syncws.connect(f"ws://127.0.0.1:{srv.port}/chat?token={SECRET}&room=1") as ws:
        ws.send("hi")
        assert ws.recv(timeout=TIMEOUT) == "hi"
        assert ws.request is not None
    opened = [r for r in records.records if "connection open" in r.getMessage()]
    assert opened and "/chat?[redacted]" in opened[0].getMessage()
    assert_clean(records)


def test_two_authorization_headers_get_401_not_500(server: ServerFactory, records: Records) -> None:
    """basic_auth answers a request with two Authorization headers like one without valid
    credentials (401, as websockets does), not with a 500 and an ERROR traceback that any
    client could flood the log with."""
    srv = server(process_request=syncws.basic_auth(("alice", SECRET)))
    basic = b"Authorization: Basic YWxpY2U6czNjcjN0LWRvLW5vdC1sb2c="  # alice:SECRET
    head = response_head(srv.port, handshake("/", basic, basic))
    assert head.startswith(b"HTTP/1.1 401"), head
    assert b"WWW-Authenticate: Basic" in head
    head = response_head(srv.port, handshake("/", basic))
    assert head.startswith(b"HTTP/1.1 101"), head
    assert_clean(records)


def test_invalid_credentials_values_are_left_out_of_exceptions() -> None:
    """Setting an invalid credentials header raises ValueError without its value; other
    headers are quoted."""
    for name in ("Authorization", "Cookie", "Set-Cookie", "Proxy-Authorization"):
        with pytest.raises(ValueError) as exc_info:
            Headers()[name] = SECRET + "\x00"
        assert SECRET not in str(exc_info.value)
    with pytest.raises(ValueError, match=r"'x\\x00'"):
        Headers()["X-Other"] = "x\x00"


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/", "/"),
        ("/chat", "/chat"),
        ("/chat?token=abc", "/chat?[redacted]"),
        ("/?", "/?[redacted]"),
        ("GET /x?t=1 HTTP/1.1", "GET /x?[redacted]"),
    ],
)
def test_redact_target(target: str, logged: str) -> None:
    assert redact_target(target) == logged
