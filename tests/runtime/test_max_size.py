"""``max_size`` over real sockets, on both sides: a message of exactly ``max_size`` bytes
arrives, one byte more fails the connection with 1009. Small messages go through
``recv()``'s shortcuts, large ones through ``Transport.read_payload``; with
permessage-deflate, the limit is on the message once decompressed (random bytes are sent
compressed below 4 KiB, where deflate makes them larger, and uncompressed above)."""

from __future__ import annotations

import queue
import random
import string

import pytest
from conftest import ServerFactory, echo, uri
from timing import TIMEOUT

import syncws


def _message(text: bool, size: int) -> str | bytes:
    rng = random.Random(size)
    if text:
        return "".join(rng.choices(string.ascii_letters, k=size))
    return rng.randbytes(size)


# Every test runs for each size, message type and compression.
pytestmark = [
    pytest.mark.parametrize("size", [100, 1000, 70_000]),
    pytest.mark.parametrize("text", [True, False]),
    pytest.mark.parametrize("compression", [None, "deflate"]),
]


def test_server_receives_max_size_and_fails_one_byte_more(
    server: ServerFactory, size: int, text: bool, compression: str | None
) -> None:
    srv = server(echo, max_size=size, compression=compression, ping_interval=None)
    with syncws.connect(uri(srv), compression=compression, max_size=None) as ws:
        message = _message(text, size)
        ws.send(message)
        assert ws.recv() == message
        ws.send(_message(text, size + 1))
        with pytest.raises(syncws.ConnectionClosedError) as info:
            ws.recv(timeout=TIMEOUT)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


def test_client_receives_max_size_and_fails_one_byte_more(
    server: ServerFactory, size: int, text: bool, compression: str | None
) -> None:
    closes: queue.Queue[int | None] = queue.Queue()

    def handler(ws: syncws.ServerConnection) -> None:
        ws.send(_message(text, size))
        ws.send(_message(text, size + 1))
        try:
            ws.recv(timeout=TIMEOUT)
        except syncws.ConnectionClosed as exc:  # the client fails the connection
            closes.put(None if exc.rcvd is None else exc.rcvd.code)

    srv = server(handler, compression=compression, ping_interval=None)
    with syncws.connect(uri(srv), compression=compression, max_size=size) as ws:
        assert ws.recv() == _message(text, size)
        with pytest.raises(syncws.ConnectionClosedError) as info:
            ws.recv(timeout=TIMEOUT)
    assert info.value.sent is not None and info.value.sent.code == 1009
    assert closes.get(timeout=TIMEOUT) == 1009
