"""permessage-deflate over loopback: syncws against ``websockets.sync``, both ways, and
syncws against itself.

Each test checks that the extension was negotiated on both ends, then exchanges text,
binary, 1 MiB and fragmented messages.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import websockets.exceptions
import websockets.sync.client
import websockets.sync.server
from conftest import WsServerStarter, echo, ws_connect, ws_echo
from timing import TIMEOUT
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory as WsClientFactory,
)
from websockets.extensions.permessage_deflate import (
    ServerPerMessageDeflateFactory as WsServerFactory,
)

import syncws
from syncws.protocol.deflate import ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory

ServerFactory = Callable[..., syncws.Server]
UriFactory = Callable[..., str]

MESSAGES: list[str | bytes] = [
    "Hello, world! " * 10,
    "café ☕ " * 50,
    b"\x00\x01\x02\xff" * 100,
    "tiny",
    b"",
    os.urandom(2**20),  # 1 MiB, incompressible: the compressed frame is larger than that
    "x" * (2**20 - 1) + "!",  # 1 MiB of text that compresses to almost nothing
]
IDS = ["text", "non-ascii", "binary", "tiny", "empty", "1MiB-random", "1MiB-text"]
JSON = '{"type": "quote", "symbol": "EURUSD", "bid": 1.0842, "ask": 1.0844, "seq": %d}'

# Configurations of the websockets peer: its defaults, and every parameter set.
WS_CLIENT_CONFIGS = {
    "defaults": {},
    "no-context-takeover": {
        "compression": None,
        "extensions": [
            WsClientFactory(
                server_no_context_takeover=True,
                client_no_context_takeover=True,
                server_max_window_bits=10,
                client_max_window_bits=9,
            )
        ],
    },
}
WS_SERVER_CONFIGS = {
    "defaults": {},
    "no-context-takeover": {
        "compression": None,
        "extensions": [
            WsServerFactory(
                server_no_context_takeover=True,
                client_no_context_takeover=True,
                server_max_window_bits=9,
                client_max_window_bits=10,
            )
        ],
    },
}


def exchange(ws: Any) -> None:
    """Send each of MESSAGES, then 20 similar JSON messages (context takeover across
    them), and check that ``ws``'s peer echoes each one."""
    for message in MESSAGES:
        ws.send(message)
        assert ws.recv(timeout=TIMEOUT) == message
    for i in range(20):
        ws.send(JSON % i)
        assert ws.recv(timeout=TIMEOUT) == JSON % i


def negotiated(extensions: list[Any]) -> str:
    """The name of the single negotiated extension."""
    (extension,) = extensions
    name: str = extension.name
    return name


# syncws client, websockets server.


@pytest.mark.parametrize("config", WS_SERVER_CONFIGS.values(), ids=WS_SERVER_CONFIGS.keys())
def test_syncws_client_with_websockets_server(
    ws_server: WsServerStarter, config: dict[str, Any]
) -> None:
    """A syncws client negotiates permessage-deflate with a websockets server and
    exchanges text, binary and 1 MiB messages."""
    server_extensions: list[list[Any]] = []

    def handler(ws: websockets.sync.server.ServerConnection) -> None:
        server_extensions.append(ws.protocol.extensions)
        ws_echo(ws)

    with syncws.connect(ws_server(handler, **config)) as ws:
        assert negotiated(ws.protocol.extensions) == "permessage-deflate"
        assert ws.response is not None
        assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
        exchange(ws)
    [extensions] = server_extensions
    assert negotiated(extensions) == "permessage-deflate"


def test_syncws_client_fragments_with_websockets_server(ws_server: WsServerStarter) -> None:
    """Compressed fragmented messages go both ways between a syncws client and a
    websockets server."""

    def handler(ws: websockets.sync.server.ServerConnection) -> None:
        message = ws.recv()
        assert isinstance(message, str)
        ws.send([message[:100], message[100:200], message[200:]])
        ws.send([b"ab" * 100, b"", b"cd" * 100])
        ws.recv()

    text = "".join(JSON % i for i in range(10))
    with syncws.connect(ws_server(handler)) as ws:
        assert negotiated(ws.protocol.extensions) == "permessage-deflate"
        ws.send([text[:50], text[50:500], text[500:]])
        assert "".join(ws.recv_streaming()) == text
        assert ws.recv(timeout=TIMEOUT) == b"ab" * 100 + b"cd" * 100


def test_syncws_client_settings_with_websockets_server(ws_server: WsServerStarter) -> None:
    """Window bits, level and threshold set on the syncws client through extensions= are
    negotiated with a websockets server (its defaults: 12 bits each way at most), which
    then decompresses what the client compresses, and the other way round."""
    server_sides: list[Any] = []

    def handler(ws: websockets.sync.server.ServerConnection) -> None:
        server_sides.append(ws.protocol.extensions[0])
        ws_echo(ws)

    factory = ClientPerMessageDeflateFactory(
        server_max_window_bits=10, client_max_window_bits=11, compress_level=9, min_size=0
    )
    with syncws.connect(ws_server(handler), extensions=[factory]) as ws:
        assert ws.response is not None
        assert ws.response.headers["Sec-WebSocket-Extensions"] == (
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=11"
        )
        [client] = ws.protocol.extensions
        exchange(ws)
    assert (client.local_max_window_bits, client.remote_max_window_bits) == (11, 10)
    [server_side] = server_sides
    assert (server_side.local_max_window_bits, server_side.remote_max_window_bits) == (10, 11)


# websockets client, syncws server.


@pytest.mark.parametrize("config", WS_CLIENT_CONFIGS.values(), ids=WS_CLIENT_CONFIGS.keys())
def test_websockets_client_with_syncws_server(
    server: ServerFactory, uri: UriFactory, config: dict[str, Any]
) -> None:
    """A websockets client negotiates permessage-deflate with a syncws server and
    exchanges text, binary and 1 MiB messages."""
    server_extensions: list[list[Any]] = []

    def handler(ws: syncws.ServerConnection) -> None:
        server_extensions.append(ws.protocol.extensions)
        for message in ws:
            ws.send(message)

    with ws_connect(uri(server(handler)), **config) as ws:
        assert negotiated(ws.protocol.extensions) == "permessage-deflate"
        exchange(ws)
    [extensions] = server_extensions
    assert negotiated(extensions) == "permessage-deflate"


@pytest.mark.parametrize("server_bits", [8, 9, 13])
def test_websockets_client_with_syncws_server_settings(
    server: ServerFactory, uri: UriFactory, server_bits: int
) -> None:
    """Window bits, levels and threshold set on a syncws server through extensions= are
    negotiated with a websockets client (which offers client_max_window_bits without a
    value); both then exchange every kind of message. With 8 bits, the syncws server
    compresses with 9 (zlib's least) in a way that an 8-bit window decompresses."""
    factory = ServerPerMessageDeflateFactory(
        server_max_window_bits=server_bits,
        client_max_window_bits=10,
        compress_level=1,
        mem_level=3,
        min_size=200,
    )
    with ws_connect(uri(server(echo, extensions=[factory]))) as ws:
        assert ws.response is not None
        assert ws.response.headers["Sec-WebSocket-Extensions"] == (
            f"permessage-deflate; server_max_window_bits={server_bits}; client_max_window_bits=10"
        )
        [client] = ws.protocol.extensions
        assert (client.local_max_window_bits, client.remote_max_window_bits) == (10, server_bits)
        exchange(ws)


def test_websockets_client_fragments_with_syncws_server(
    server: ServerFactory, uri: UriFactory
) -> None:
    """Compressed fragmented messages go both ways between a websockets client and a
    syncws server."""

    def handler(ws: syncws.ServerConnection) -> None:
        pieces = list(ws.recv_streaming())
        ws.send(pieces)
        ws.send([b"ab" * 100, b"", b"cd" * 100])
        ws.recv()

    text = "".join(JSON % i for i in range(10))
    with ws_connect(uri(server(handler))) as ws:
        assert negotiated(ws.protocol.extensions) == "permessage-deflate"
        ws.send([text[:50], text[50:500], text[500:]])
        assert ws.recv(timeout=TIMEOUT) == text
        fragments = list(ws.recv_streaming(decode=False))
        assert b"".join(fragments) == b"ab" * 100 + b"cd" * 100
        assert len(fragments) >= 3


def test_websockets_client_bomb_closes_with_1009(server: ServerFactory, uri: UriFactory) -> None:
    """A 64 MiB message that compresses to 64 KiB is refused with 1009 by a syncws server
    whose max_size is 1 MiB."""

    def handler(ws: syncws.ServerConnection) -> None:
        for _ in ws:
            pass

    with ws_connect(uri(server(handler)), max_size=None) as ws:
        ws.send(bytes(64 * 2**20))
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as info:
            ws.recv(timeout=TIMEOUT)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1009


# syncws against itself.


def test_syncws_both_sides_negotiate_by_default(server: ServerFactory, uri: UriFactory) -> None:
    """A syncws client and server negotiate permessage-deflate by default."""
    srv = server()
    with syncws.connect(uri(srv)) as ws:
        assert ws.response is not None
        assert ws.response.headers["Sec-WebSocket-Extensions"] == (
            "permessage-deflate; server_max_window_bits=12"
        )
        for message in MESSAGES:
            ws.send(message)
            assert ws.recv(timeout=TIMEOUT) == message


@pytest.mark.parametrize(
    ("server_compression", "client_compression"), [(None, "deflate"), ("deflate", None)]
)
def test_compression_none_disables_it(
    server: ServerFactory,
    uri: UriFactory,
    server_compression: str | None,
    client_compression: str | None,
) -> None:
    """compression=None on either side opens without any extension."""
    srv = server(compression=server_compression)
    with syncws.connect(uri(srv), compression=client_compression) as ws:
        assert ws.protocol.extensions == []
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send("plain " * 20)
        assert ws.recv(timeout=TIMEOUT) == "plain " * 20


def test_compressed_bomb_from_syncws_client_closes_with_1009(
    server: ServerFactory, uri: UriFactory
) -> None:
    """max_size applies to the decompressed size: 16 MiB of zeros, a few KiB on the wire,
    close the connection with 1009."""

    def handler(ws: syncws.ServerConnection) -> None:
        for _ in ws:
            pass

    with syncws.connect(uri(server(handler))) as ws:
        ws.send(bytes(16 * 2**20))
        with pytest.raises(syncws.ConnectionClosedError) as info:
            ws.recv(timeout=TIMEOUT)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1009


def test_invalid_compression_option() -> None:
    """compression accepts "deflate" or None only."""
    with pytest.raises(ValueError, match="compression"):
        syncws.Server(lambda ws: None, "127.0.0.1", 0, compression="gzip")
    with pytest.raises(ValueError, match="compression"):
        syncws.connect("ws://127.0.0.1:1/", compression="zstd")
