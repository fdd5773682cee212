"""Large binary and text messages, which the reading thread receives straight into the
message's buffer (Protocol.start_payload_read and Transport.read_payload), on both sides."""

from __future__ import annotations

import os
import struct
import threading

import pytest
from conftest import ServerFactory, tls_contexts, uri
from rawws import FrameReader, close_frame, frame, parse_close, raw_client, wait_for, xor
from timing import TIMEOUT

import syncws

# Multi-byte characters of 2, 3 and 4 bytes: the reads split some of them.
_TEXT = "aé€😀"


def _payload(opcode: int, size: int) -> bytes:
    """``size`` random bytes, or about ``size`` bytes of UTF-8 for a text message."""
    if opcode == 0x2:
        return os.urandom(size)
    return (_TEXT * (size // 10 + 1)).encode()[:size].decode(errors="ignore").encode()


@pytest.mark.parametrize("opcode", [0x2, 0x1])
@pytest.mark.parametrize("size", [65535, 65536, 65537, 1 << 20, 3 * (1 << 20) + 7])
def test_large_messages_echo_intact_after_a_ping(
    server: ServerFactory, opcode: int, size: int
) -> None:
    srv = server(compression=None, max_size=4 << 20, ping_interval=None)
    payload = _payload(opcode, size)
    sock, rest = raw_client(srv)
    with sock:
        mask = b"\x9a\x01\xfe\x42"
        masked = xor(payload, mask)
        header = bytes((0x80 | opcode, 0xFF)) + struct.pack("!Q", len(payload)) + mask
        # The ping and the start of the message in one write, the rest in pieces.
        sock.sendall(frame(0x9, b"hi", mask=True) + header + masked[:1001])
        for i in range(1001, len(payload), 300_007):
            sock.sendall(masked[i : i + 300_007])
        reader = FrameReader(sock, rest)
        assert reader.read() == (0xA, b"hi")
        assert reader.read() == (opcode, payload)
        sock.sendall(close_frame(1000, mask=True))
        op, body = reader.read()
        assert op == 0x8 and parse_close(body)[0] == 1000


def _one_recv(
    server: ServerFactory,
) -> tuple[syncws.Server, list[BaseException], threading.Event]:
    """A server whose handler calls ``recv()`` once and keeps the exception it raises."""
    outcome: list[BaseException] = []
    started = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        started.set()
        try:
            ws.recv()
        except BaseException as exc:
            outcome.append(exc)

    return server(handler, compression=None, ping_interval=None), outcome, started


def test_peer_vanishing_inside_a_large_payload_ends_recv(server: ServerFactory) -> None:
    srv, outcome, started = _one_recv(server)
    sock, _ = raw_client(srv)
    with sock:
        assert started.wait(TIMEOUT)
        header = bytes((0x82, 0xFF)) + struct.pack("!Q", 500_000) + b"\0\0\0\0"
        sock.sendall(header + b"x" * 200_000)  # then the peer is gone
    assert wait_for(lambda: outcome, TIMEOUT), "recv() is still blocked"
    assert isinstance(outcome[0], syncws.ConnectionClosedError)
    assert outcome[0].rcvd is None  # 1006: no close frame


def test_client_receives_large_binary_messages(server: ServerFactory) -> None:
    payload = os.urandom(2 << 20)

    def handler(ws: syncws.ServerConnection) -> None:
        ws.send(payload)
        ws.send(b"after")
        ws.recv()

    srv = server(handler, compression=None)
    with syncws.connect(uri(srv), compression=None, max_size=4 << 20) as ws:
        assert ws.recv() == payload
        assert ws.recv(timeout=TIMEOUT) == b"after"


def test_large_binary_message_over_max_size_fails_with_1009(server: ServerFactory) -> None:
    srv = server(compression=None, max_size=100_000, ping_interval=None)
    sock, rest = raw_client(srv)
    with sock:
        header = bytes((0x82, 0xFF)) + struct.pack("!Q", 200_000) + b"\0\0\0\0"
        sock.sendall(header + b"x" * 1000)
        opcode, body = FrameReader(sock, rest).read()
        assert opcode == 0x8 and parse_close(body)[0] == 1009


def test_large_text_message_with_invalid_utf8_fails_with_1007(server: ServerFactory) -> None:
    srv, outcome, _ = _one_recv(server)
    sock, rest = raw_client(srv)
    with sock:
        payload = b"a" * 100_000 + b"\xc3\x28" + b"a" * 1000  # C3 must start a 2-byte char
        header = bytes((0x81, 0xFF)) + struct.pack("!Q", len(payload)) + b"\0\0\0\0"
        sock.sendall(header + payload[:500])
        sock.sendall(payload[500:])
        opcode, body = FrameReader(sock, rest).read()
        assert opcode == 0x8 and parse_close(body)[0] == 1007
    assert wait_for(lambda: outcome, TIMEOUT), "recv() did not end"
    assert isinstance(outcome[0], syncws.ConnectionClosedError)
    assert outcome[0].sent is not None and outcome[0].sent.code == 1007


def test_client_receives_large_text_messages(server: ServerFactory) -> None:
    text = _TEXT * 300_000  # 3 MiB of UTF-8

    def handler(ws: syncws.ServerConnection) -> None:
        ws.send(text)
        ws.send("after")
        ws.recv()

    srv = server(handler, compression=None)
    with syncws.connect(uri(srv), compression=None, max_size=4 << 20) as ws:
        assert ws.recv() == text
        assert ws.recv(timeout=TIMEOUT) == "after"


@pytest.mark.parametrize("text", [False, True])
def test_large_messages_over_tls_echo_intact_and_in_order(
    server: ServerFactory, text: bool
) -> None:
    server_ctx, client_ctx = tls_contexts()
    srv = server(compression=None, max_size=4 << 20, ssl=server_ctx)
    sizes = [65536, 1 << 20, 3 * (1 << 20) + 3]
    messages: list[str | bytes] = [
        _payload(0x1, size).decode() if text else os.urandom(size) for size in sizes
    ]
    with syncws.connect(
        f"wss://localhost:{srv.port}/", ssl=client_ctx, compression=None, max_size=4 << 20
    ) as ws:
        for message in messages:
            ws.send(message)
            ws.send("small")  # right behind the large one, in the same TLS stream
        for message in messages:
            assert ws.recv() == message  # no timeout: the large-message path
            assert ws.recv(timeout=TIMEOUT) == "small"
