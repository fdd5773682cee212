"""Compression settings and extensions of one's own, through ``extensions=`` on
:class:`syncws.Server`, :func:`syncws.connect` and :func:`syncws.reconnect`, observed where
a peer sees them: in the handshake headers and in the frames on the wire (recorded by a
relay between a syncws client and a syncws server)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from conftest import ServerFactory, echo
from rawws import tap
from test_examples import example
from timing import TIMEOUT

import syncws
from syncws.integrations.wsgi import Upgrader
from syncws.protocol.deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)

UriFactory = Callable[..., str]
RSV1, RSV2 = 0x40, 0x20

xor = example("custom_extension")


def data_frames(frames: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """The text, binary and continuation frames among ``frames``."""
    return [(b0, payload) for b0, payload in frames if b0 & 0x0F < 8]


def deflate_of(ws: syncws.Connection) -> PerMessageDeflate:
    """The connection's permessage-deflate extension (the last one negotiated)."""
    extension = ws.protocol.extensions[-1]
    assert isinstance(extension, PerMessageDeflate)
    return extension


# The threshold (min_size): on every send path, both ways.


@pytest.mark.parametrize("min_size", [0, 100])
def test_threshold_leaves_shorter_messages_uncompressed_on_every_send_path(
    server: ServerFactory, min_size: int
) -> None:
    """Whole messages shorter than min_size go with RSV1 clear, the others compressed,
    from send() on both sides and from broadcast(); a fragmented message is compressed
    whatever its size (its size is not known when its first frame goes)."""
    sizes = [1, 99, 100, 500]

    def handler(ws: syncws.ServerConnection) -> None:
        for message in ws:
            if message == "broadcast":
                for size in sizes:
                    syncws.broadcast({ws}, "b" * size)
            elif message == "fragments":
                ws.send(["f", "g"])
            else:
                ws.send(message)

    srv = server(handler, extensions=[ServerPerMessageDeflateFactory(min_size=min_size)])
    client_deflate = ClientPerMessageDeflateFactory(min_size=min_size)
    with (
        tap(srv.port) as (relay, record),
        syncws.connect(relay, extensions=[client_deflate]) as ws,
    ):
        for size in sizes:
            ws.send("s" * size)
            assert ws.recv(timeout=TIMEOUT) == "s" * size
        ws.send("broadcast")
        for size in sizes:
            assert ws.recv(timeout=TIMEOUT) == "b" * size
        ws.send("fragments")
        assert ws.recv(timeout=TIMEOUT) == "fg"
    compressed = [size >= min_size for size in sizes]
    commands = len("broadcast") >= min_size  # "broadcast" and "fragments": 9 bytes
    upstream = [bool(b0 & RSV1) for b0, _ in data_frames(record.frames("upstream"))]
    assert upstream == [*compressed, commands, commands]
    downstream = [
        (b0 & 0x8F, bool(b0 & RSV1)) for b0, _ in data_frames(record.frames("downstream"))
    ]
    assert downstream == [
        *[(0x81, c) for c in compressed],  # send()
        *[(0x81, c) for c in compressed],  # broadcast()
        (0x01, True),  # the first fragment: compressed
        (0x00, False),  # continuations: no RSV1 (RFC 7692 §6)
        (0x80, False),  # send() ends an iterable with an empty final frame
    ]


def test_default_threshold_is_32_bytes(server: ServerFactory, uri: UriFactory) -> None:
    """Without settings, 31-byte messages go uncompressed and 32-byte ones compressed."""
    srv = server()
    with tap(srv.port) as (relay, record), syncws.connect(relay) as ws:
        for size in (31, 32):
            ws.send("t" * size)
            assert ws.recv(timeout=TIMEOUT) == "t" * size
    for direction in ("upstream", "downstream"):
        rsv1 = [bool(b0 & RSV1) for b0, _ in data_frames(record.frames(direction))]
        assert rsv1 == [False, True]


# Window bits: negotiated as set, on each side.


def test_server_window_bits_are_negotiated_as_set(server: ServerFactory, uri: UriFactory) -> None:
    """The server's server_max_window_bits and client_max_window_bits are in its answer,
    and each end compresses and decompresses with them."""
    server_sides: list[PerMessageDeflate] = []

    def handler(ws: syncws.ServerConnection) -> None:
        server_sides.append(deflate_of(ws))
        echo(ws)

    factory = ServerPerMessageDeflateFactory(server_max_window_bits=11, client_max_window_bits=9)
    srv = server(handler, extensions=[factory])
    with syncws.connect(uri(srv)) as ws:
        assert ws.response is not None
        assert ws.response.headers["Sec-WebSocket-Extensions"] == (
            "permessage-deflate; server_max_window_bits=11; client_max_window_bits=9"
        )
        client = deflate_of(ws)
        message = json.dumps(list(range(5000)))
        ws.send(message)
        assert ws.recv(timeout=TIMEOUT) == message
    assert (client.local_max_window_bits, client.remote_max_window_bits) == (9, 11)
    [server_side] = server_sides
    assert (server_side.local_max_window_bits, server_side.remote_max_window_bits) == (11, 9)


def test_client_window_bits_are_offered_and_granted(server: ServerFactory, uri: UriFactory) -> None:
    """The client's settings are in its offer; a syncws server grants them."""
    factory = ClientPerMessageDeflateFactory(
        server_max_window_bits=10, client_max_window_bits=9, client_no_context_takeover=True
    )
    with syncws.connect(uri(server()), extensions=[factory]) as ws:
        assert ws.request is not None and ws.response is not None
        assert ws.request.headers.get_all("Sec-WebSocket-Extensions") == [
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=10; "
            "client_max_window_bits=9"
        ]
        assert ws.response.headers["Sec-WebSocket-Extensions"] == (
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=10; "
            "client_max_window_bits=9"
        )
        extension = deflate_of(ws)
        assert (extension.local_max_window_bits, extension.remote_max_window_bits) == (9, 10)
        assert extension.local_no_context_takeover
        for i in range(3):
            ws.send(f"message {i} " * 50)
            assert ws.recv(timeout=TIMEOUT) == f"message {i} " * 50


# Levels and window size: the compressed size on the wire.

random.seed(7)
RECORDS = json.dumps(
    [
        {
            "id": i,
            "user": f"user{random.randrange(1000)}",
            "price": round(random.random() * 100, 2),
            "tags": random.sample(["red", "green", "blue", "new", "sale", "hot"], 3),
        }
        for i in range(60)
    ]
)


@pytest.mark.parametrize(
    ("smaller", "larger"),
    [
        ({"compress_level": 9}, {"compress_level": 1}),
        ({"compress_level": 9}, {"compress_settings": {"level": 1}}),  # websockets' spelling
        ({"mem_level": 5}, {"mem_level": 1}),
        ({"server_max_window_bits": 12}, {"server_max_window_bits": 9}),
    ],
    ids=["level", "level-compress_settings", "mem_level", "window_bits"],
)
def test_settings_change_the_compressed_size(
    server: ServerFactory, smaller: dict[str, Any], larger: dict[str, Any]
) -> None:
    """A lower level, memLevel or window makes the compressed frame of the same message
    larger on the wire."""

    def send_records(ws: syncws.ServerConnection) -> None:
        ws.send(RECORDS)
        ws.recv()

    sizes = []
    for settings in (smaller, larger):
        srv = server(send_records, extensions=[ServerPerMessageDeflateFactory(**settings)])
        with tap(srv.port) as (relay, record), syncws.connect(relay) as ws:
            assert ws.recv(timeout=TIMEOUT) == RECORDS
        [(b0, payload)] = data_frames(record.frames("downstream"))
        assert b0 & RSV1
        sizes.append(len(payload))
    assert sizes[0] < sizes[1] < len(RECORDS)


# A factory in extensions replaces the default one.


@pytest.mark.parametrize("compression", ["deflate", None])
def test_a_deflate_factory_in_extensions_is_the_only_offer(
    server: ServerFactory, uri: UriFactory, compression: str | None
) -> None:
    """With a permessage-deflate factory in extensions, compression="deflate" adds no
    second offer, and compression=None does not remove it (as in websockets)."""
    srv = server(compression=compression, extensions=[ServerPerMessageDeflateFactory()])
    factory = ClientPerMessageDeflateFactory(server_max_window_bits=10)
    with syncws.connect(uri(srv), compression=compression, extensions=[factory]) as ws:
        assert ws.request is not None and ws.response is not None
        assert ws.request.headers.get_all("Sec-WebSocket-Extensions") == [
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits"
        ]
        assert ws.response.headers["Sec-WebSocket-Extensions"] == (
            "permessage-deflate; server_max_window_bits=10"
        )


# Bad settings: at construction, before any socket.


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: ServerPerMessageDeflateFactory(server_max_window_bits=16),
            ValueError,
            "server_max_window_bits must be between 8 and 15, got 16",
        ),
        (
            lambda: ClientPerMessageDeflateFactory(client_max_window_bits=7),
            ValueError,
            "client_max_window_bits must be between 8 and 15, got 7",
        ),
        (
            lambda: ClientPerMessageDeflateFactory(server_max_window_bits="10"),
            TypeError,
            "server_max_window_bits must be an integer or None, got str",
        ),
        (
            lambda: ServerPerMessageDeflateFactory(compress_level=10),
            ValueError,
            "compress_level must be between -1 and 9, got 10",
        ),
        (
            lambda: ServerPerMessageDeflateFactory(mem_level=0),
            ValueError,
            "mem_level must be between 1 and 9, got 0",
        ),
        (
            lambda: ClientPerMessageDeflateFactory(min_size=-1),
            ValueError,
            "min_size must be positive or 0, got -1",
        ),
        (
            lambda: ClientPerMessageDeflateFactory(min_size=1.5),
            TypeError,
            "min_size must be an integer, got float",
        ),
        (
            lambda: ServerPerMessageDeflateFactory(compress_settings={"wbits": 10}),
            ValueError,
            "compress_settings may set 'level' and 'memLevel' only, not 'wbits' "
            "(the window bits are negotiated)",
        ),
        (
            lambda: ServerPerMessageDeflateFactory(compress_settings={"level": 12}),
            ValueError,
            "compress_level must be between -1 and 9, got 12",
        ),
        (
            lambda: syncws.Server(
                echo, "127.0.0.1", 0, extensions=[ClientPerMessageDeflateFactory()]
            ),
            TypeError,
            "extensions of a server are server extension factories (with a name and "
            "process_request_params()), got ClientPerMessageDeflateFactory",
        ),
        (
            lambda: syncws.Server(
                echo, "127.0.0.1", 0, extensions=ServerPerMessageDeflateFactory()
            ),
            TypeError,
            "extensions must be a list of server extension factories, "
            "got ServerPerMessageDeflateFactory",
        ),
        (
            lambda: Upgrader(extensions=[xor.ClientXorFactory()]),
            TypeError,
            "extensions of a server are server extension factories",
        ),
        (
            # Port 1: nothing listens there, but the check comes before connecting.
            lambda: syncws.connect("ws://127.0.0.1:1/", extensions=[xor.ServerXorFactory()]),
            TypeError,
            "extensions of a client are client extension factories (with a name and "
            "process_response_params()), got ServerXorFactory",
        ),
        (
            lambda: syncws.connect("ws://127.0.0.1:1/", extensions="permessage-deflate"),
            TypeError,
            "extensions must be a list of client extension factories, got str",
        ),
    ],
)
def test_bad_settings_raise_at_construction(
    make: Callable[[], object], error: type[Exception], message: str
) -> None:
    """Each bad setting raises its error, with a message naming the setting."""
    with pytest.raises(error) as info:
        make()
    assert str(info.value).startswith(message)


# An extension of one's own (examples/custom_extension.py).


def test_custom_extension_is_negotiated_and_applied(server: ServerFactory, uri: UriFactory) -> None:
    """x-xor is negotiated with its parameter, and every data frame on the wire, both
    ways, has RSV2 and the payload XORed; messages arrive unchanged."""
    srv = server(compression=None, extensions=[xor.ServerXorFactory()])
    messages: list[str | bytes] = ["hello", b"\x00\x01\xff", "long " * 100, ""]
    factory = xor.ClientXorFactory(key=0x5A)
    with (
        tap(srv.port) as (relay, record),
        syncws.connect(relay, compression=None, extensions=[factory]) as ws,
    ):
        assert ws.response is not None
        assert ws.response.headers["Sec-WebSocket-Extensions"] == "x-xor; key=90"
        for message in messages:
            ws.send(message)
            assert ws.recv(timeout=TIMEOUT) == message
    wire = [m.encode() if isinstance(m, str) else m for m in messages]
    for direction in ("upstream", "downstream"):
        frames = data_frames(record.frames(direction))
        assert [b0 & RSV2 for b0, _ in frames] == [RSV2] * len(messages)
        assert [payload for _, payload in frames] == [bytes(b ^ 0x5A for b in m) for m in wire]


def test_custom_extension_with_compression_and_reconnect(
    server: ServerFactory, uri: UriFactory
) -> None:
    """Next to permessage-deflate (added after it), both apply: compressible frames carry
    RSV1 and RSV2. reconnect() passes extensions on to connect()."""
    srv = server(extensions=[xor.ServerXorFactory()])
    with tap(srv.port) as (relay, record):
        for ws in syncws.reconnect(relay, extensions=[xor.ClientXorFactory()]):
            assert ws.response is not None
            assert ws.response.headers["Sec-WebSocket-Extensions"] == (
                "x-xor; key=42, permessage-deflate; server_max_window_bits=12"
            )
            ws.send("compressible " * 20)
            assert ws.recv(timeout=TIMEOUT) == "compressible " * 20
            break
    for direction in ("upstream", "downstream"):
        [(b0, _)] = data_frames(record.frames(direction))
        assert b0 & (RSV1 | RSV2) == RSV1 | RSV2


def test_a_server_declines_a_bad_custom_offer(server: ServerFactory, uri: UriFactory) -> None:
    """An offer the server's factory declines (key=300) leaves the extension out; the
    connection opens with permessage-deflate only."""
    srv = server(extensions=[xor.ServerXorFactory()])
    with syncws.connect(uri(srv), extensions=[xor.ClientXorFactory(key=300)]) as ws:
        assert ws.response is not None
        assert ws.response.headers["Sec-WebSocket-Extensions"] == (
            "permessage-deflate; server_max_window_bits=12"
        )
        ws.send("still fine")
        assert ws.recv(timeout=TIMEOUT) == "still fine"
