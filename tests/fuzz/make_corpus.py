"""Write the seed corpus of every fuzz target to ``tests/fuzz/corpus/<target>/``.

Usage: ``python tests/fuzz/make_corpus.py`` (rewrites the generated seeds; other files,
such as reproducers added by hand, are kept).

Seeds are small valid inputs and edge cases, one per file, named after what they hold;
their format is described in each target's docstring (a first byte of settings, then the
stream). Frames are built by a real peer with the negotiated extension, so compressed
seeds are valid compressed data. The output does not depend on randomness: running the
script again gives the same files (a client's frames are masked with fixed keys).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import frames_harness
import fuzzing
from frames_harness import Config, Role

from syncws.protocol.connection import Protocol
from syncws.protocol.frames import serialize_frame
from syncws.protocol.handshake import accept_key

GENERATED = "seed-"  # prefix of the files this script owns
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = accept_key(KEY)

REQUEST = (
    b"GET /chat?room=1 HTTP/1.1\r\n"
    b"Host: example.com:8765\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
)


def request_seeds() -> Iterator[tuple[str, bytes]]:
    plain = REQUEST + b"\r\n"
    yield "plain", b"\x00" + plain
    yield "plain-then-frame", b"\x00" + plain + b"\x81\x85\x01\x02\x03\x04iggkn"
    yield (
        "deflate",
        b"\x00"
        + REQUEST
        + (b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"),
    )
    yield (
        "deflate-twice",
        b"\x00"
        + REQUEST
        + (
            b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n\r\n"
        ),
    )
    yield "subprotocols", b"\x00" + REQUEST + b"Sec-WebSocket-Protocol: x, superchat\r\n\r\n"
    yield (
        "lists",
        b"\x00"
        + REQUEST.replace(b"Upgrade\r\n", b"keep-alive, , Upgrade\r\n")
        + (b"Upgrade: h2c\r\nOrigin: http://example.com\r\n\r\n"),
    )
    yield "tab-and-obs-text", b"\x00GET / HTTP/1.1\r\nX-Tab:\ta\tb\t\r\nX-Obs: caf\xe9\r\n\r\n"
    yield "empty-value", b"\x00GET / HTTP/1.1\r\nX-Empty:\r\n\r\n"
    yield "token-name", b"\x00GET / HTTP/1.1\r\nx!#$%&'*+.^_`|~-: v\r\n\r\n"
    yield "content-length-0", b"\x00GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    yield "content-length-5", b"\x00GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    yield "chunked", b"\x00GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    yield "obs-fold", b"\x00GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n"
    yield "space-before-colon", b"\x00GET / HTTP/1.1\r\nHost : a\r\n\r\n"
    yield "bare-lf", b"\x00GET / HTTP/1.1\nHost: a\r\n\r\n"
    yield "cr-in-value", b"\x00GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"
    yield "nul-in-value", b"\x00GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n"
    yield "post", b"\x00POST / HTTP/1.1\r\n\r\n"
    yield "http10", b"\x00GET / HTTP/1.0\r\n\r\n"
    yield "absolute-form", b"\x00GET http://example.com/ HTTP/1.1\r\n\r\n"
    yield "double-space", b"\x00GET  / HTTP/1.1\r\n\r\n"
    yield "incomplete", b"\x00GET / HTTP/1.1\r\nHost: a\r\n"
    yield "empty", b"\x00"
    yield "long-line-16", b"\x01GET /0123456789abcdef HTTP/1.1\r\n\r\n"
    yield "long-header-40", b"\x02GET / HTTP/1.1\r\nX-Long: " + b"a" * 40 + b"\r\n\r\n"
    yield "two-headers-max-2", b"\x08" + plain
    yield "no-headers-max-0", b"\x04GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    yield "limits-200-6", b"\x0f" + plain


def response_seeds() -> Iterator[tuple[str, bytes]]:
    status = b"HTTP/1.1 101 Switching Protocols\r\n"
    upgrade = b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    accept = b"Sec-WebSocket-Accept: " + ACCEPT.encode() + b"\r\n"
    ok = status + upgrade + accept
    yield "101", b"\x00" + ok + b"\r\n"
    yield "101-then-frame", b"\x00" + ok + b"\r\n\x81\x05hello"
    yield "101-deflate", b"\x40" + ok + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    yield (
        "101-deflate-params",
        b"\x40"
        + ok
        + (
            b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12; "
            b"client_max_window_bits=10; client_no_context_takeover\r\n\r\n"
        ),
    )
    yield (
        "101-deflate-required",
        b"\x80"
        + ok
        + (
            b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
            b"server_max_window_bits=9\r\n\r\n"
        ),
    )
    yield (
        "101-deflate-too-wide",
        b"\xc0"
        + ok
        + (b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15\r\n\r\n"),
    )
    yield (
        "101-deflate-unoffered",
        b"\x00" + ok + (b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
    )
    yield "101-subprotocol", b"\x00" + ok + b"Sec-WebSocket-Protocol: chat\r\n\r\n"
    yield "101-two-subprotocols", b"\x00" + ok + b"Sec-WebSocket-Protocol: chat, x\r\n\r\n"
    yield "101-bad-accept", b"\x00" + status + upgrade + b"Sec-WebSocket-Accept: x\r\n\r\n"
    yield "101-no-upgrade", b"\x00" + status + accept + b"\r\n"
    yield "101-http10", b"\x00" + ok.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n"
    yield "403-length", b"\x00HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nhello"
    yield (
        "403-length-twice",
        (b"\x00HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
    )
    yield (
        "500-chunked",
        (
            b"\x00HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nTrailer: x\r\n\r\n"
        ),
    )
    yield "200-until-eof", b"\x00HTTP/1.1 200 OK\r\n\r\nthe body runs to the end"
    yield "200-too-long-body", b"\x20HTTP/1.1 200 OK\r\n\r\nseventeen bytes!!"
    yield "204", b"\x00HTTP/1.1 204 No Content\r\nX: y\r\n\r\n"
    yield "304-no-reason", b"\x00HTTP/1.1 304 \r\n\r\n"
    yield "301-location", b"\x00HTTP/1.1 301 Moved\r\nLocation: ws://a/\r\n\r\n"
    yield (
        "chunked-and-length",
        (b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
    )
    yield "bad-chunk-size", b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    yield "status-99", b"\x00HTTP/1.1 099 Low\r\n\r\n"
    yield "status-line-only", b"\x00HTTP/1.1 101"
    yield "bare-lf", b"\x00HTTP/1.1 101 Switching Protocols\n\r\n"
    yield "limits-small", b"\x15" + ok + b"\r\n"
    yield "empty", b"\x00"


def proxy_response_seeds() -> Iterator[tuple[str, bytes]]:
    open_, closed = b"\x00", b"\x01"  # the proxy keeps the connection open, or closes it
    ok = b"HTTP/1.1 200 Connection established\r\n\r\n"
    tls = b"\x16\x03\x03\x00\x02\x02\x28"  # a TLS alert record: the server's, too early
    auth = b'Proxy-Authenticate: Basic realm="proxy"\r\n'
    yield "200", open_ + ok
    yield "200-closed", closed + ok
    yield "200-http10", open_ + b"HTTP/1.0 200 OK\r\n\r\n"
    yield "200-headers", open_ + b"HTTP/1.1 200 OK\r\nVia: 1.1 proxy\r\nX-Tab:\ta\t\r\n\r\n"
    yield "200-no-reason", open_ + b"HTTP/1.1 200 \r\n\r\n"
    yield "200-then-data", open_ + ok + tls
    yield "200-content-length", open_ + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    yield "200-chunked", open_ + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    yield "204", open_ + b"HTTP/1.1 204 No Content\r\n\r\n"
    yield "100-then-200", open_ + b"HTTP/1.1 100 Continue\r\n\r\n" + ok
    yield "1xx-twice-no-answer-yet", open_ + b"HTTP/1.1 100 A\r\n\r\nHTTP/1.1 102 B\r\n\r\n"
    yield (
        "103-hints-then-407",
        (closed + b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 407 No\r\n\r\n"),
    )
    yield "100-then-eof", closed + b"HTTP/1.1 100 Continue\r\n\r\n"
    yield "101", open_ + b"HTTP/1.1 101 Switching Protocols\r\n\r\n" + ok
    yield "407-length", (
        open_ + b"HTTP/1.1 407 Proxy Authentication Required\r\n" + auth
        + b"Content-Length: 14\r\n\r\nAccess denied."
    )  # fmt: skip
    yield (
        "403-until-eof",
        (closed + b"HTTP/1.0 403 Filtered\r\nContent-Type: text/html\r\n\r\n<p>Filtered</p>"),
    )
    yield "403-no-eof-yet", open_ + b"HTTP/1.0 403 Filtered\r\n\r\n<p>Filtered"
    yield "502-chunked", (
        open_ + b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"7\r\nrefused\r\n0\r\n\r\n"
    )  # fmt: skip
    yield "302-location", open_ + b"HTTP/1.1 302 Found\r\nLocation: http://a/\r\n\r\n"
    yield "599", open_ + b"HTTP/1.1 599 Odd\r\nContent-Length: 0\r\n\r\n"
    yield "incomplete-head", closed + b"HTTP/1.1 200 OK\r\nVia: 1.1"
    yield "empty-closed", closed
    yield "http2", open_ + b"HTTP/2 200\r\n\r\n"
    yield "status-99", open_ + b"HTTP/1.1 099 Low\r\n\r\n"
    yield "bare-lf", open_ + b"HTTP/1.1 200 OK\nVia: x\n\n"
    yield "obs-fold", open_ + b"HTTP/1.1 200 OK\r\nVia: a\r\n b\r\n\r\n"
    yield "nul-in-header", open_ + b"HTTP/1.1 200 OK\r\nVia: a\x00b\r\n\r\n"
    yield "too-many-headers", open_ + b"HTTP/1.1 200 OK\r\n" + b"a:\r\n" * 129 + b"\r\n"
    yield "tls-instead", open_ + tls
    yield (
        "length-and-chunked",
        (closed + b"HTTP/1.1 500 Oops\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
    )


# Masking keys for a client's frames: fixed, so that the corpus is reproducible.
_MASKS = [bytes([i, 0x5A, 0xA5, 0xFF - i]) for i in range(256)]


class _FixedMasks:
    def __init__(self) -> None:
        self._next = 0

    def next(self) -> bytes:
        mask = _MASKS[self._next % len(_MASKS)]
        self._next += 1
        return mask


def _sender(config: Config, role: Role) -> Protocol:
    peer = frames_harness.peer(config, role)
    if peer.is_client:
        peer._masks = _FixedMasks()  # the seeds must not change from run to run
    return peer


def frame_seeds(role: Role) -> Iterator[tuple[str, bytes]]:
    mask = b"\x37\xfa\x21\x3d" if role == "server" else None
    plain = Config()

    def raw(*frames: tuple[int, bytes, dict[str, bool]]) -> bytes:
        return b"".join(serialize_frame(op, data, mask=mask, **bits) for op, data, bits in frames)

    def sent(config: Config, build: Callable[[Protocol], None]) -> bytes:
        peer = _sender(config, role)
        build(peer)
        return bytes([config.to_byte()]) + peer.data_to_send()

    def mix(p: Protocol) -> None:
        p.send_text("hello ☃".encode())
        p.send_binary(bytes(range(200)))
        p.send_ping(b"are you there")
        p.send_text("café ".encode() * 3, fin=False)
        p.send_continuation(b"\xe2\x98", fin=False)  # a snowman split across frames
        p.send_continuation(b"\x83!", fin=True)
        p.send_pong(b"unsolicited")
        p.send_binary(b"")
        p.send_close(1000, "done")

    def compressible(p: Protocol) -> None:
        for _ in range(3):
            p.send_text(b'{"type": "update", "value": 12345, "text": "lorem ipsum"}' * 4)
        p.send_binary(bytes(300), fin=False)
        p.send_continuation(bytes(300), fin=True)
        p.send_text(b"short")

    yield "mix", sent(plain, mix)
    yield "mix-in-stream", sent(Config(in_stream=True), mix)
    yield "mix-small-thresholds", sent(Config(small=True), mix)
    yield "mix-close-first", sent(Config(close_first=True), mix)
    yield "mix-max-size-64", sent(Config(max_size=64), mix)
    yield "mix-no-max-size", sent(Config(max_size=None, small=True), mix)
    for variant in range(4):
        config = Config(deflate=True, variant=variant)
        yield f"deflate-{variant}", sent(config, compressible)
        yield f"deflate-{variant}-mix", sent(config, mix)
    yield "deflate-small-in-stream", sent(Config(True, 0, 1000, True, True, False), compressible)
    yield "deflate-max-size-64", sent(Config(deflate=True, max_size=64), compressible)
    big = sent(Config(small=True), lambda p: p.send_binary(bytes(range(256)) * 3))
    yield "bulk-binary", big
    yield "bulk-text", sent(Config(small=True), lambda p: p.send_text("é".encode() * 200))
    yield (
        "bulk-text-invalid",
        bytes([Config(small=True).to_byte()])
        + raw((1, "é".encode() * 100 + b"\xff" + b"a" * 50, {})),
    )
    header = bytes([0x82, 0xFF if mask else 0x7F]) + (300).to_bytes(8, "big") + (mask or b"")
    yield "64-bit-length", b"\x00" + header + raw((2, bytes(300), {}))[4 if mask else 2 :]
    yield "64-bit-length-msb", b"\x00" + bytes([0x82, 0xFF if mask else 0x7F]) + b"\x80" + bytes(7)
    yield "text-invalid-utf8", b"\x00" + raw((1, b"ok", {}), (1, b"\xed\xa0\x80", {}))
    yield "text-truncated-invalid", b"\x00" + raw((1, b"abc\xc3(" + b"z" * 20, {}))[:-10]
    yield (
        "fragments-invalid-utf8",
        b"\x00"
        + raw((1, b"abc", {"fin": False}), (0, b"\xf4\x90", {"fin": False}), (0, b"\x80\x80", {})),
    )
    yield "reserved-bits", b"\x00" + raw((1, b"x", {"rsv2": True}))
    yield "rsv1-without-deflate", b"\x00" + raw((1, b"x", {"rsv1": True}))
    yield "rsv1-bad-deflate", b"\x01" + raw((2, b"ok", {}), (1, b"\xff\xff\xff", {"rsv1": True}))
    yield (
        "rsv1-on-continuation",
        b"\x01" + raw((1, b"a", {"fin": False}), (0, b"b", {"rsv1": True})),
    )
    yield "reserved-opcode", b"\x00" + raw((3, b"", {}))
    yield "reserved-control-opcode", b"\x00" + raw((11, b"", {}))
    yield "fragmented-ping", b"\x00" + raw((9, b"p", {"fin": False}))
    yield "long-ping", b"\x00" + raw((9, bytes(126), {}))
    yield "continuation-first", b"\x00" + raw((0, b"x", {}))
    yield "new-message-in-fragmented", b"\x00" + raw((1, b"a", {"fin": False}), (2, b"b", {}))
    yield "close-one-byte", b"\x00" + raw((8, b"\x03", {}))
    yield "close-bad-code", b"\x00" + raw((8, b"\x03\xed", {}))
    yield "close-invalid-reason", b"\x00" + raw((8, b"\x03\xe8\xff", {}))
    yield "close-empty-then-data", b"\x00" + raw((8, b"", {}), (1, b"after", {}))
    yield "close-4000", b"\x00" + raw((8, b"\x0f\xa0private", {}))
    yield "messages-then-error", b"\x00" + raw((9, b"1", {}), (1, b"a", {}), (2, b"b", {}))[:-1]
    wrong = serialize_frame(1, b"wrong", mask=None if mask else b"abcd")
    yield "wrong-masking", b"\x00" + raw((1, b"ok", {})) + wrong
    yield "too-big-64", bytes([Config(max_size=64).to_byte()]) + raw((2, bytes(65), {}))
    yield (
        "too-big-fragments",
        bytes([Config(max_size=64).to_byte()])
        + raw((2, bytes(40), {"fin": False}), (0, bytes(40), {})),
    )


def extension_seeds() -> Iterator[tuple[str, bytes]]:
    values = {
        "deflate": b"permessage-deflate",
        "deflate-client-bits": b"permessage-deflate; client_max_window_bits",
        "deflate-all": (
            b"permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            b"server_max_window_bits=10; client_max_window_bits=12"
        ),
        "deflate-quoted": b'permessage-deflate; server_max_window_bits="10"',
        "deflate-8-bits": b"permessage-deflate; server_max_window_bits=8; client_max_window_bits=8",
        "alternatives": (
            b"permessage-deflate; client_max_window_bits=8, permessage-deflate, x-webkit-deflate"
        ),
        "two-lines": b"permessage-deflate; server_max_window_bits=9\npermessage-deflate",
        "unknown-param": b"permessage-deflate; foo=bar, permessage-deflate",
        "duplicate-param": b"permessage-deflate; client_max_window_bits; client_max_window_bits",
        "flag-with-value": b"permessage-deflate; client_no_context_takeover=1",
        "bits-16": b"permessage-deflate; server_max_window_bits=16",
        "bits-leading-zero": b"permessage-deflate; client_max_window_bits=09",
        "bits-missing": b"permessage-deflate; server_max_window_bits",
        "ows": b" \tpermessage-deflate \t; \tclient_max_window_bits \t= \t15 \t, ",
        "empty-elements": b", ,permessage-deflate,,",
        "empty": b"",
        "quoted-escape": b'foo; bar="b\\az"',
        "quoted-comma": b'foo; bar="a,b"',
        "quoted-unclosed": b'foo; bar="abc',
        "semicolon-only": b"foo;",
        "equals-only": b"foo; bar=",
        "bad-token": b"foo bar",
        "obs-text": b"caf\xe9",
        "tab-inside": b"foo;\tbar=baz",
        "three-lines": b"foo\n\nbar; baz",
    }
    options = [(0, 0), (0x0C, 0x08), (0x3F, 0x3F), (0x01, 0x02), (0x40, 0x44), (0x30, 0x30)]
    for i, (name, value) in enumerate(values.items()):
        client, server = options[i % len(options)]
        yield name, bytes([client, server]) + value


SEEDS: dict[str, Callable[[], Iterator[tuple[str, bytes]]]] = {
    "request": request_seeds,
    "response": response_seeds,
    "proxy_response": proxy_response_seeds,
    "frames_server": lambda: frame_seeds("server"),
    "frames_client": lambda: frame_seeds("client"),
    "extensions": extension_seeds,
}


def write(root: Path = fuzzing.CORPUS_ROOT) -> None:
    for target, seeds in SEEDS.items():
        directory = root / target
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob(f"{GENERATED}*"):
            old.unlink()
        count = 0
        for name, data in seeds():
            assert len(data) <= 4096, (target, name, len(data))
            (directory / f"{GENERATED}{name}").write_bytes(data)
            count += 1
        print(f"{directory}: {count} seeds", file=sys.stderr)


if __name__ == "__main__":
    write()
