"""Interoperability with the ``websockets`` library's threaded (sync) implementation.

syncws talks to a ``websockets.sync`` server, and a ``websockets.sync`` client talks to a
syncws server: text, binary, large and fragmented messages, and close codes both ways.
Compression is on by default on both sides; these tests check that ``compression=None``
opens without it (tests/runtime/test_deflate_interop.py covers permessage-deflate itself).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import websockets.exceptions
import websockets.sync.client
import websockets.sync.server
from conftest import WsServerStarter, ws_connect, ws_echo
from timing import TIMEOUT

import syncws

ServerFactory = Callable[..., syncws.Server]
UriFactory = Callable[..., str]

MESSAGES: list[str | bytes] = [
    "Hello, world!",
    "café ☕",
    b"\x00\x01\x02\xff",
    b"",
    "",
    b"\xab" * (2**20),  # 1 MiB, the default max_size of both libraries
    "x" * (2**20 - 1) + "!",
]
IDS = ["text", "non-ascii", "binary", "empty-binary", "empty-text", "1MiB-binary", "1MiB-text"]


# syncws client, websockets server.


@pytest.mark.parametrize("message", MESSAGES, ids=IDS)
def test_syncws_client_echo_with_websockets_server(
    ws_server: WsServerStarter, message: str | bytes
) -> None:
    """A syncws client exchanges text and binary messages, up to 1 MiB, with a
    websockets server."""
    with syncws.connect(ws_server()) as ws:
        ws.send(message)
        assert ws.recv(timeout=TIMEOUT) == message


def test_syncws_client_fragmented_messages_with_websockets_server(
    ws_server: WsServerStarter,
) -> None:
    """Fragmented messages go both ways between a syncws client and a websockets server."""

    def handler(ws: websockets.sync.server.ServerConnection) -> None:
        message = ws.recv()
        ws.send([message[:3], message[3:]])
        ws.send([b"ab", b"", b"cd"])
        ws.recv()

    with syncws.connect(ws_server(handler)) as ws:
        ws.send(["frag", "mented", " ✓"])
        assert list(ws.recv_streaming()) in (["fra", "gmented ✓"], ["fra", "gmented ✓", ""])
        assert ws.recv(timeout=TIMEOUT) == b"abcd"


def test_syncws_client_receives_websockets_server_close_code(
    ws_server: WsServerStarter,
) -> None:
    """A websockets server closing with (4000, "bye") gives the syncws client
    ConnectionClosedError with that code and reason."""

    def handler(ws: websockets.sync.server.ServerConnection) -> None:
        ws.close(4000, "bye")

    with syncws.connect(ws_server(handler)) as ws:
        with pytest.raises(syncws.ConnectionClosedError) as info:
            ws.recv(timeout=TIMEOUT)
        assert info.value.rcvd == syncws.Close(4000, "bye")
        assert ws.wait_closed(TIMEOUT)


def test_syncws_client_close_code_reaches_websockets_server(
    ws_server: WsServerStarter,
) -> None:
    """A syncws client closing with (4001, "done") ends the websockets handler with that
    code; a normal close ends it with ConnectionClosedOK."""
    outcomes: list[BaseException] = []
    ended = threading.Semaphore(0)

    def handler(ws: websockets.sync.server.ServerConnection) -> None:
        try:
            while True:
                ws.recv()
        except websockets.exceptions.ConnectionClosed as exc:
            outcomes.append(exc)
        finally:
            ended.release()

    uri = ws_server(handler)
    ws = syncws.connect(uri)
    ws.close(4001, "done")
    assert ws.state is syncws.State.CLOSED
    assert ended.acquire(timeout=TIMEOUT)
    ws = syncws.connect(uri)
    ws.close()
    assert ended.acquire(timeout=TIMEOUT)
    first, second = outcomes
    assert isinstance(first, websockets.exceptions.ConnectionClosedError)
    assert first.rcvd is not None
    assert (first.rcvd.code, first.rcvd.reason) == (4001, "done")
    assert isinstance(second, websockets.exceptions.ConnectionClosedOK)


def test_syncws_client_does_not_negotiate_compression(ws_server: WsServerStarter) -> None:
    """Against a websockets server that supports permessage-deflate, a syncws client with
    compression=None opens without any extension."""
    extensions: list[Any] = []

    def handler(ws: websockets.sync.server.ServerConnection) -> None:
        extensions.append(ws.protocol.extensions)
        ws_echo(ws)

    with syncws.connect(ws_server(handler), compression=None) as ws:
        ws.send("plain")
        assert ws.recv(timeout=TIMEOUT) == "plain"
        assert ws.response is not None
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        assert ws.protocol.extensions == []
    assert extensions == [[]]


# websockets client, syncws server.


@pytest.mark.parametrize("message", MESSAGES, ids=IDS)
def test_websockets_client_echo_with_syncws_server(
    server: ServerFactory, uri: UriFactory, message: str | bytes
) -> None:
    """A websockets client exchanges text and binary messages, up to 1 MiB, with a
    syncws server."""
    with ws_connect(uri(server())) as ws:
        ws.send(message)
        assert ws.recv(timeout=TIMEOUT) == message


def test_websockets_client_fragmented_messages_with_syncws_server(
    server: ServerFactory, uri: UriFactory
) -> None:
    """Fragmented messages go both ways between a websockets client and a syncws server."""

    def handler(ws: syncws.ServerConnection) -> None:
        pieces = list(ws.recv_streaming())
        ws.send(pieces)
        ws.send([b"ab", b"", b"cd"])
        ws.recv()

    with ws_connect(uri(server(handler))) as ws:
        ws.send(["frag", "mented", " ✓"])
        assert ws.recv(timeout=TIMEOUT) == "fragmented ✓"
        fragments = list(ws.recv_streaming(decode=False))
        assert b"".join(fragments) == b"abcd"
        assert len(fragments) >= 3


def test_websockets_client_receives_syncws_server_close_code(
    server: ServerFactory, uri: UriFactory
) -> None:
    """A syncws handler closing with (4000, "bye") gives the websockets client
    ConnectionClosedError with that code and reason."""

    def handler(ws: syncws.ServerConnection) -> None:
        ws.close(4000, "bye")

    with ws_connect(uri(server(handler))) as ws:
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as info:
            ws.recv(timeout=TIMEOUT)
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "bye")


def test_websockets_client_close_code_reaches_syncws_handler(
    server: ServerFactory, uri: UriFactory
) -> None:
    """A websockets client closing with (4001, "done") ends the syncws handler with
    ConnectionClosedError carrying that code; a normal close with ConnectionClosedOK."""
    outcomes: list[BaseException] = []
    ended = threading.Semaphore(0)

    def handler(ws: syncws.ServerConnection) -> None:
        try:
            while True:
                ws.recv()
        except syncws.ConnectionClosed as exc:
            outcomes.append(exc)
        finally:
            ended.release()

    srv = server(handler)
    with ws_connect(uri(srv)) as ws:
        ws.close(4001, "done")
    assert ended.acquire(timeout=TIMEOUT)
    with ws_connect(uri(srv)) as ws:
        pass  # closes with 1000
    assert ended.acquire(timeout=TIMEOUT)
    first, second = outcomes
    assert isinstance(first, syncws.ConnectionClosedError)
    assert first.rcvd == syncws.Close(4001, "done")
    assert isinstance(second, syncws.ConnectionClosedOK)


def test_websockets_client_compression_offer_is_declined(
    server: ServerFactory, uri: UriFactory
) -> None:
    """A websockets client offering permessage-deflate connects to a syncws server with
    compression=None without any extension."""
    offers: list[str | None] = []

    def handler(ws: syncws.ServerConnection) -> None:
        assert ws.request is not None
        offers.append(ws.request.headers.get("Sec-WebSocket-Extensions"))
        for message in ws:
            ws.send(message)

    with ws_connect(uri(server(handler, compression=None))) as ws:
        ws.send("plain")
        assert ws.recv(timeout=TIMEOUT) == "plain"
        assert ws.protocol.extensions == []
        assert ws.response is not None
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
    [offer] = offers
    assert offer is not None and "permessage-deflate" in offer
