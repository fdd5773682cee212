"""Tests for syncws.protocol.deflate: permessage-deflate (RFC 7692) through the Sans-I/O core.

Negotiation is tested factory by factory (tables of offers and answers) and through whole
handshakes; compression through two protocols wired back to back, and frame by frame
against zlib itself.
"""

from __future__ import annotations

import os
import random
import tracemalloc
import zlib

import pytest

from syncws.exceptions import NegotiationError, PayloadTooBig, ProtocolError
from syncws.protocol.client import ClientProtocol
from syncws.protocol.connection import Protocol
from syncws.protocol.deflate import (
    MIN_COMPRESS_SIZE,
    SERVER_MAX_WINDOW_BITS,
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
    client_extensions,
    server_extensions,
)
from syncws.protocol.events import Fragment, Message, Ping, RequestReceived, ResponseReceived, State
from syncws.protocol.frames import Frame, Opcode, parse_frame, serialize_frame
from syncws.protocol.server import ServerProtocol
from syncws.protocol.uri import parse_uri

URI = parse_uri("ws://example.com/")
MASK = b"\x01\x02\x03\x04"
TAIL = b"\x00\x00\xff\xff"

# Text that compresses well and refers back to itself, like JSON traffic.
JSON = (
    b'{"type": "quote", "symbol": "EURUSD", "bid": 1.0842, "ask": 1.0844, '
    b'"tags": ["fx", "eu"], "ts": 1760000000.25}'
)


def handshake(client, server):
    """Run the opening handshake between two protocols."""
    client.send_request(client.connect())
    (event,) = server.receive_data(client.data_to_send())
    assert isinstance(event, RequestReceived)
    server.send_response(server.accept(event.request))
    (event,) = client.receive_data(server.data_to_send())
    assert isinstance(event, ResponseReceived)
    assert client.state is server.state is State.OPEN


def pair(server_factory=None, client_factory=None, *, max_size=2**20):
    """A client and a server protocol that negotiated permessage-deflate."""
    client = ClientProtocol(
        URI, extensions=[client_factory or ClientPerMessageDeflateFactory()], max_size=max_size
    )
    server = ServerProtocol(
        extensions=[server_factory or ServerPerMessageDeflateFactory()], max_size=max_size
    )
    handshake(client, server)
    return client, server


def frames_out(protocol):
    """Parse what the protocol wants to send into frames (unmasked)."""
    data = protocol.data_to_send()
    frames = []
    while data:
        frame, _, size = parse_frame(data)
        frames.append(frame)
        data = data[size:]
    return frames


def reframe(frames, *, mask=MASK):
    """Serialize frames again (masked, as from a client, unless mask is None)."""
    return b"".join(
        serialize_frame(f.opcode, f.data, fin=f.fin, rsv1=f.rsv1, mask=mask) for f in frames
    )


def deflate(data, *, wbits=15, flush=zlib.Z_SYNC_FLUSH):
    """Compress one message as RFC 7692 §7.2.1 says, with a fresh compressor."""
    compressor = zlib.compressobj(wbits=-wbits)
    out = compressor.compress(data) + compressor.flush(flush)
    return out[:-4] if out.endswith(TAIL) else out


def server_with(extension, **kwargs):
    """A server-side protocol, already open, with this extension."""
    return Protocol(is_client=False, extensions=[extension], **kwargs)


def client_frame(opcode, data, *, fin=True, rsv1=False):
    return serialize_frame(opcode, data, fin=fin, rsv1=rsv1, mask=MASK)


def assert_failed(protocol, code):
    """The protocol failed the connection with a close frame carrying ``code``."""
    (frame,) = frames_out(protocol)
    assert frame.opcode is Opcode.CLOSE
    assert int.from_bytes(frame.data[:2], "big") == code
    assert protocol.exc is not None and protocol.exc.code == code
    assert protocol.should_close_transport()


# Server negotiation.


@pytest.mark.parametrize(
    ("options", "offer", "answer", "negotiated"),
    [
        # (factory options, offer, answer, (remote_nct, local_nct, remote_bits, local_bits))
        ({}, [], [("server_max_window_bits", "12")], (False, False, 15, 12)),
        (
            {},
            [("server_no_context_takeover", None)],
            [("server_no_context_takeover", None), ("server_max_window_bits", "12")],
            (False, True, 15, 12),
        ),
        (
            {},
            [("client_no_context_takeover", None)],
            [("client_no_context_takeover", None), ("server_max_window_bits", "12")],
            (True, False, 15, 12),
        ),
        (
            {},
            [("server_max_window_bits", "10")],
            [("server_max_window_bits", "10")],
            (False, False, 15, 10),
        ),
        (
            {},
            [("server_max_window_bits", "14")],
            [("server_max_window_bits", "12")],
            (False, False, 15, 12),
        ),
        (
            {},
            [("server_max_window_bits", "8")],
            [("server_max_window_bits", "8")],
            (False, False, 15, 8),
        ),
        (
            {},
            [("client_max_window_bits", None)],
            [("server_max_window_bits", "12")],
            (False, False, 15, 12),
        ),
        (
            {},
            [("client_max_window_bits", "10")],
            [("server_max_window_bits", "12"), ("client_max_window_bits", "10")],
            (False, False, 10, 12),
        ),
        (
            {"client_max_window_bits": 11},
            [("client_max_window_bits", None)],
            [("server_max_window_bits", "12"), ("client_max_window_bits", "11")],
            (False, False, 11, 12),
        ),
        (
            {"client_max_window_bits": 11},
            [("client_max_window_bits", "9")],
            [("server_max_window_bits", "12"), ("client_max_window_bits", "9")],
            (False, False, 9, 12),
        ),
        # Without the client's parameter, the server can't limit the client's window.
        (
            {"client_max_window_bits": 11},
            [],
            [("server_max_window_bits", "12")],
            (False, False, 15, 12),
        ),
        ({"server_max_window_bits": None}, [], [], (False, False, 15, 15)),
        (
            {"server_max_window_bits": None},
            [("server_max_window_bits", "9")],
            [("server_max_window_bits", "9")],
            (False, False, 15, 9),
        ),
        (
            {"server_no_context_takeover": True, "client_no_context_takeover": True},
            [],
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "12"),
            ],
            (True, True, 15, 12),
        ),
        (
            {},
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "15"),
                ("client_max_window_bits", "15"),
            ],
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "12"),
                ("client_max_window_bits", "15"),
            ],
            (True, True, 15, 12),
        ),
    ],
)
def test_server_accepts_offer(options, offer, answer, negotiated):
    """The server answers an offer with echoed flags and the smaller window bits."""
    factory = ServerPerMessageDeflateFactory(**options)
    params, extension = factory.process_request_params(offer, [])
    assert params == answer
    assert (
        extension.remote_no_context_takeover,
        extension.local_no_context_takeover,
        extension.remote_max_window_bits,
        extension.local_max_window_bits,
    ) == negotiated


@pytest.mark.parametrize(
    "offer",
    [
        [("unknown", None)],
        [("server_no_context_takeover", None), ("server_no_context_takeover", None)],
        [("client_max_window_bits", None), ("client_max_window_bits", "10")],
        [("server_no_context_takeover", "1")],
        [("client_no_context_takeover", "yes")],
        [("server_max_window_bits", None)],
        [("server_max_window_bits", "7")],
        [("server_max_window_bits", "16")],
        [("server_max_window_bits", "010")],
        [("server_max_window_bits", "abc")],
        [("client_max_window_bits", "0")],
        [("client_max_window_bits", "16")],
    ],
)
def test_server_declines_invalid_offer(offer):
    """Unknown, repeated or malformed parameters decline the offer (RFC 7692 §5)."""
    with pytest.raises(NegotiationError):
        ServerPerMessageDeflateFactory().process_request_params(offer, [])


def test_server_declines_second_offer_once_accepted():
    """Only one permessage-deflate offer is accepted per connection."""
    factory = ServerPerMessageDeflateFactory()
    _, extension = factory.process_request_params([], [])
    with pytest.raises(NegotiationError, match="already"):
        factory.process_request_params([], [extension])


@pytest.mark.parametrize(
    ("header", "answer"),
    [
        ("permessage-deflate", "permessage-deflate; server_max_window_bits=12"),
        (
            'permessage-deflate; client_max_window_bits="10"',
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10",
        ),
        # The first offer is declined; the fallback is accepted.
        (
            "permessage-deflate; foo, permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12",
        ),
        ("permessage-deflate; server_max_window_bits=99", None),
        ("x-unknown, permessage-deflate", "permessage-deflate; server_max_window_bits=12"),
    ],
)
def test_server_handshake_answers(header, answer):
    """A whole handshake answers the first acceptable offer, or none."""
    server = ServerProtocol(extensions=server_extensions("deflate"))
    client = ClientProtocol(URI)
    request = client.connect()
    request.headers["Sec-WebSocket-Extensions"] = header
    client.send_request(request)
    (event,) = server.receive_data(client.data_to_send())
    response = server.accept(event.request)
    server.send_response(response)
    assert response.status_code == 101
    assert response.headers.get("Sec-WebSocket-Extensions") == answer
    assert len(server.extensions) == (answer is not None)


# Client negotiation.


@pytest.mark.parametrize(
    ("options", "offer"),
    [
        ({}, [("client_max_window_bits", None)]),
        ({"client_max_window_bits": 10}, [("client_max_window_bits", "10")]),
        (
            {
                "server_no_context_takeover": True,
                "client_no_context_takeover": True,
                "server_max_window_bits": 11,
            },
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "11"),
                ("client_max_window_bits", None),
            ],
        ),
    ],
)
def test_client_offer(options, offer):
    """The client's offer carries its options and always client_max_window_bits."""
    assert ClientPerMessageDeflateFactory(**options).get_request_params() == offer


@pytest.mark.parametrize(
    ("options", "answer", "negotiated"),
    [
        ({}, [], (False, False, 15, 15)),
        ({}, [("server_max_window_bits", "12")], (False, False, 12, 15)),
        ({}, [("client_max_window_bits", "8")], (False, False, 15, 8)),
        ({}, [("server_no_context_takeover", None)], (True, False, 15, 15)),
        ({}, [("client_no_context_takeover", None)], (False, True, 15, 15)),
        ({"client_no_context_takeover": True}, [], (False, True, 15, 15)),
        ({"client_max_window_bits": 10}, [], (False, False, 15, 10)),
        ({"client_max_window_bits": 10}, [("client_max_window_bits", "9")], (False, False, 15, 9)),
        (
            {"server_max_window_bits": 10, "server_no_context_takeover": True},
            [("server_no_context_takeover", None), ("server_max_window_bits", "9")],
            (True, False, 9, 15),
        ),
    ],
)
def test_client_accepts_answer(options, answer, negotiated):
    """The client honours the server's answer."""
    factory = ClientPerMessageDeflateFactory(**options)
    extension = factory.process_response_params(answer, [])
    assert (
        extension.remote_no_context_takeover,
        extension.local_no_context_takeover,
        extension.remote_max_window_bits,
        extension.local_max_window_bits,
    ) == negotiated


@pytest.mark.parametrize(
    ("options", "answer"),
    [
        ({}, [("unknown", None)]),
        ({}, [("server_max_window_bits", "10"), ("server_max_window_bits", "10")]),
        ({}, [("server_no_context_takeover", "x")]),
        ({}, [("client_max_window_bits", None)]),
        ({}, [("server_max_window_bits", None)]),
        ({}, [("server_max_window_bits", "16")]),
        ({}, [("client_max_window_bits", "09")]),
        ({"server_no_context_takeover": True}, []),
        ({"server_max_window_bits": 10}, []),
        ({"server_max_window_bits": 10}, [("server_max_window_bits", "11")]),
        ({"client_max_window_bits": 10}, [("client_max_window_bits", "11")]),
    ],
)
def test_client_rejects_answer(options, answer):
    """An invalid answer, or one that doesn't honour the offer, fails the handshake."""
    with pytest.raises(NegotiationError):
        ClientPerMessageDeflateFactory(**options).process_response_params(answer, [])


def test_client_rejects_second_acceptance():
    """A server can't accept permessage-deflate twice."""
    factory = ClientPerMessageDeflateFactory()
    extension = factory.process_response_params([], [])
    with pytest.raises(NegotiationError, match="already"):
        factory.process_response_params([], [extension])


def test_client_handshake_fails_on_invalid_answer():
    """A 101 with a bad permessage-deflate answer fails the client's handshake."""
    client = ClientProtocol(URI, extensions=client_extensions("deflate"))
    server = ServerProtocol()
    client.send_request(client.connect())
    (event,) = server.receive_data(client.data_to_send())
    response = server.accept(event.request)
    response.headers["Sec-WebSocket-Extensions"] = "permessage-deflate; server_max_window_bits"
    server.send_response(response)
    client.receive_data(server.data_to_send())
    assert isinstance(client.handshake_exc, NegotiationError)
    assert client.state is State.CLOSED


def test_client_without_answer_runs_uncompressed():
    """A server that ignores the offer gets an uncompressed connection."""
    client, server = (
        ClientProtocol(URI, extensions=client_extensions("deflate")),
        ServerProtocol(extensions=server_extensions(None)),
    )
    handshake(client, server)
    assert client.extensions == server.extensions == []
    assert "Sec-WebSocket-Extensions" not in client.response.headers


# Options.


@pytest.mark.parametrize(
    "options",
    [
        {"server_max_window_bits": 7},
        {"server_max_window_bits": 16},
        {"client_max_window_bits": 0},
        {"compress_level": 10},
        {"compress_level": -2},
        {"mem_level": 0},
        {"mem_level": 10},
        {"min_size": -1},
    ],
)
@pytest.mark.parametrize("cls", [ServerPerMessageDeflateFactory, ClientPerMessageDeflateFactory])
def test_factory_options_are_validated(cls, options):
    """Out-of-range options raise ValueError."""
    with pytest.raises(ValueError):
        cls(**options)


@pytest.mark.parametrize(
    "options", [{"remote_max_window_bits": 16}, {"local_max_window_bits": 7}, {"mem_level": 0}]
)
def test_extension_options_are_validated(options):
    """Out-of-range extension settings raise ValueError."""
    with pytest.raises(ValueError):
        PerMessageDeflate(**options)


def test_compression_option_helpers():
    """compression="deflate" builds one factory per side, None none, others fail."""
    (server_factory,) = server_extensions("deflate")
    (client_factory,) = client_extensions("deflate")
    assert server_factory.server_max_window_bits == SERVER_MAX_WINDOW_BITS
    assert client_factory.name == server_factory.name == "permessage-deflate"
    assert server_extensions(None) == client_extensions(None) == []
    with pytest.raises(ValueError, match="deflate"):
        server_extensions("gzip")
    with pytest.raises(ValueError, match="deflate"):
        client_extensions("br")


def test_extension_helpers_keep_a_given_deflate_factory():
    """A permessage-deflate factory among extensions replaces the default one, whatever
    compression says; other factories come first, in their order, then the default."""
    custom = ServerPerMessageDeflateFactory(server_max_window_bits=9)
    assert server_extensions("deflate", [custom]) == [custom]
    assert server_extensions(None, [custom]) == [custom]
    other = type("Other", (), {"name": "x-other", "process_request_params": print})()
    first, default = server_extensions("deflate", (other,))
    assert first is other and isinstance(default, ServerPerMessageDeflateFactory)
    client = ClientPerMessageDeflateFactory(client_max_window_bits=10)
    assert client_extensions("deflate", [client]) == [client]
    assert client_extensions(None, None) == []


def test_extension_helpers_refuse_factories_of_the_other_side():
    """A client factory given to a server (or the other way round), or a factory that is
    not in a list, raises TypeError at once."""
    with pytest.raises(TypeError, match="server extension factories"):
        server_extensions("deflate", [ClientPerMessageDeflateFactory()])
    with pytest.raises(TypeError, match="client extension factories"):
        client_extensions(None, [ServerPerMessageDeflateFactory()])
    with pytest.raises(TypeError, match="must be a list"):
        client_extensions(None, ClientPerMessageDeflateFactory())


def test_compress_settings_is_websockets_spelling():
    """compress_settings={"level": ..., "memLevel": ...} sets compress_level and mem_level,
    which the negotiated extension then compresses with; other keys raise ValueError."""
    factory = ClientPerMessageDeflateFactory(compress_settings={"level": 1, "memLevel": 4})
    assert (factory.compress_level, factory.mem_level) == (1, 4)
    extension = factory.process_response_params([], [])
    assert (extension.compress_level, extension.mem_level) == (1, 4)
    with pytest.raises(ValueError, match="not 'strategy'"):
        ServerPerMessageDeflateFactory(compress_settings={"strategy": zlib.Z_FILTERED})


def test_repr_shows_negotiated_parameters():
    """The extension's repr shows what was negotiated."""
    extension = PerMessageDeflate(local_max_window_bits=12)
    assert repr(extension) == (
        "PerMessageDeflate(remote_no_context_takeover=False, local_no_context_takeover=False, "
        "remote_max_window_bits=15, local_max_window_bits=12)"
    )


# Round trips.


MESSAGES = [
    # (message, compressed on the wire)
    ("Hello, world! " * 10, True),
    ("café ☕ " * 20, True),
    (JSON.decode(), True),
    ("x" * MIN_COMPRESS_SIZE, True),
    (bytes(200_000), True),
    # Incompressible: compressed below 4 KiB (a few bytes larger), sent as is above.
    (os.urandom(1000), True),
    (os.urandom(70_000), False),
]


@pytest.mark.parametrize(("message", "compressed"), MESSAGES)
@pytest.mark.parametrize("direction", ["client->server", "server->client"])
def test_round_trip(message, compressed, direction):
    """Messages arrive intact both ways, compressed (RSV1 on the wire) unless that
    doesn't shrink a large message."""
    client, server = pair()
    sender, receiver = (client, server) if direction == "client->server" else (server, client)
    payload = message.encode() if isinstance(message, str) else message
    send = sender.send_text if isinstance(message, str) else sender.send_binary
    for _ in range(2):
        send(payload)
        data = sender.data_to_send()
        assert parse_frame(data)[0].rsv1 is compressed
        assert receiver.receive_data(data) == [Message(message)]


def test_incompressible_message_is_forgotten_by_context_takeover():
    """A large message sent uncompressed isn't in the compressor's history: later
    messages still decode, and still refer to the messages before it."""
    client, server = pair()
    noise = os.urandom(10_000)
    server.send_text(JSON)
    server.send_binary(noise)
    server.send_text(JSON)
    server.send_text(JSON)
    data = server.data_to_send()
    frames = frames_out_of(data)
    assert [frame.rsv1 for frame in frames] == [True, False, True, True]
    assert len(frames[2].data) < len(frames[0].data) / 4
    assert client.receive_data(data) == [
        Message(JSON.decode()),
        Message(noise),
        Message(JSON.decode()),
        Message(JSON.decode()),
    ]


def test_incompressible_message_without_context_takeover_is_sent_as_is():
    """Without context takeover, any whole message that doesn't shrink goes out as is."""
    client, server = pair(ServerPerMessageDeflateFactory(server_no_context_takeover=True))
    noise = os.urandom(100)
    server.send_binary(noise)
    server.send_text(JSON)
    data = server.data_to_send()
    assert [frame.rsv1 for frame in frames_out_of(data)] == [False, True]
    assert client.receive_data(data) == [Message(noise), Message(JSON.decode())]


def test_incompressible_fragmented_message_is_compressed():
    """RSV1 is decided on the first frame, so a fragmented message stays compressed."""
    client, server = pair()
    noise = os.urandom(10_000)
    server.send_binary(noise, fin=False)
    server.send_continuation(noise, fin=True)
    data = server.data_to_send()
    assert [frame.rsv1 for frame in frames_out_of(data)] == [True, False]
    assert client.receive_data(data) == [Fragment(noise, False), Fragment(noise, True)]


def test_compression_shrinks_repetitive_text():
    """Repetitive text goes out much smaller than it is."""
    _, server = pair()
    server.send_text(JSON * 20)
    (frame,) = frames_out(server)
    assert len(frame.data) < len(JSON) * 20 / 10


@pytest.mark.parametrize("size", [0, 1, MIN_COMPRESS_SIZE - 1])
def test_small_messages_go_uncompressed(size):
    """Whole messages under min_size are sent as they are, with RSV1 clear (RFC 7692 §6)."""
    client, server = pair()
    server.send_binary(b"a" * size)
    data = server.data_to_send()
    assert parse_frame(data)[0] == Frame(Opcode.BINARY, b"a" * size)
    assert client.receive_data(data) == [Message(b"a" * size)]


def test_min_size_zero_compresses_everything():
    """With min_size=0, even an empty message is compressed and round-trips."""
    client, server = pair(ServerPerMessageDeflateFactory(min_size=0))
    server.send_text(b"")
    server.send_text(b"hi")
    data = server.data_to_send()
    assert all(frame.rsv1 for frame in frames_out_of(data))
    assert client.receive_data(data) == [Message(""), Message("hi")]


def frames_out_of(data):
    frames = []
    while data:
        frame, _, size = parse_frame(data)
        frames.append(frame)
        data = data[size:]
    return frames


def test_uncompressed_messages_from_peer_pass_through():
    """With the extension active, a message without RSV1 is delivered as it is."""
    protocol = server_with(PerMessageDeflate())
    events = protocol.receive_data(
        client_frame(Opcode.TEXT, b"plain")
        + client_frame(Opcode.BINARY, b"a", fin=False)
        + client_frame(Opcode.CONT, b"b")
    )
    assert events == [Message("plain"), Fragment(b"a", False), Fragment(b"b", True)]


def test_peer_compressed_data_decodes():
    """Data compressed by zlib directly, as RFC 7692 §7.2.1 describes, decodes."""
    protocol = server_with(PerMessageDeflate())
    data = client_frame(Opcode.TEXT, deflate(b"Hello"), rsv1=True)
    assert protocol.receive_data(data) == [Message("Hello")]


def test_rfc_7692_example_decodes():
    """The example of RFC 7692 §7.2.3.1 decodes to "Hello"."""
    protocol = server_with(PerMessageDeflate())
    payload = bytes.fromhex("f248cdc9c90700")
    assert protocol.receive_data(client_frame(Opcode.TEXT, payload, rsv1=True)) == [
        Message("Hello")
    ]


def test_bfinal_block_then_next_message():
    """A message ending the DEFLATE stream (BFINAL, §7.2.3.4) is followed by a new one."""
    protocol = server_with(PerMessageDeflate())
    first = deflate(b"Hello", flush=zlib.Z_FINISH)
    second = deflate(b"World", flush=zlib.Z_FINISH)
    data = client_frame(Opcode.TEXT, first, rsv1=True) + client_frame(
        Opcode.TEXT, second, rsv1=True
    )
    assert protocol.receive_data(data) == [Message("Hello"), Message("World")]


def test_no_max_size_decompresses_everything():
    """Without max_size, any size decompresses."""
    protocol = server_with(PerMessageDeflate(), max_size=None)
    data = client_frame(Opcode.BINARY, deflate(bytes(3 * 2**20)), rsv1=True)
    assert protocol.receive_data(data) == [Message(bytes(3 * 2**20))]


def test_invalid_compressed_data_fails_with_1002():
    """Data that isn't valid DEFLATE fails the connection with 1002."""
    protocol = server_with(PerMessageDeflate())
    protocol.receive_data(client_frame(Opcode.TEXT, b"\xff\xff\xff\xff", rsv1=True))
    assert_failed(protocol, 1002)
    assert "invalid compressed data" in str(protocol.exc)


def test_invalid_utf8_after_decompression_fails_with_1007():
    """UTF-8 is checked on the decompressed text."""
    protocol = server_with(PerMessageDeflate())
    protocol.receive_data(client_frame(Opcode.TEXT, deflate(b"\xff" * 40), rsv1=True))
    assert_failed(protocol, 1007)


# Context takeover.


def test_context_takeover_shrinks_repeated_messages():
    """With context takeover, a repeated message refers to the previous one."""
    client, server = pair()
    for _ in range(3):
        server.send_text(JSON)
    frames = frames_out(server)
    assert len(frames[1].data) < len(frames[0].data) / 4
    assert client.receive_data(reframe(frames, mask=None)) == [Message(JSON.decode())] * 3


@pytest.mark.parametrize(
    ("server_factory", "client_factory", "direction"),
    [
        (None, ClientPerMessageDeflateFactory(server_no_context_takeover=True), "server->client"),
        (ServerPerMessageDeflateFactory(server_no_context_takeover=True), None, "server->client"),
        (ServerPerMessageDeflateFactory(client_no_context_takeover=True), None, "client->server"),
        (None, ClientPerMessageDeflateFactory(client_no_context_takeover=True), "client->server"),
    ],
)
def test_no_context_takeover_makes_messages_independent(server_factory, client_factory, direction):
    """Without context takeover, each message decompresses on its own (RFC 7692 §7.1.1)."""
    client, server = pair(server_factory, client_factory)
    sender, receiver = (server, client) if direction == "server->client" else (client, server)
    for _ in range(3):
        sender.send_text(JSON)
    frames = frames_out(sender)
    assert len({frame.data for frame in frames}) == 1  # no reference to earlier messages
    bits = sender.extensions[0].local_max_window_bits
    for frame in frames:
        assert zlib.decompressobj(-bits).decompress(frame.data + TAIL) == JSON
    mask = MASK if sender is client else None
    assert receiver.receive_data(reframe(frames, mask=mask)) == [Message(JSON.decode())] * 3


def test_window_bits_8_output_fits_a_256_byte_window():
    """With 8 window bits negotiated, output decompresses with a 256-byte window."""
    rnd = random.Random(8)
    words = [os.urandom(rnd.randint(1, 6)).hex().encode() for _ in range(100)]
    extension = PerMessageDeflate(local_max_window_bits=8, min_size=0)
    decompressor = zlib.decompressobj(-8)
    for _ in range(200):
        message = b" ".join(rnd.choice(words) for _ in range(rnd.randint(1, 300)))
        frame = extension.encode(Frame(Opcode.BINARY, message))
        assert decompressor.decompress(frame.data + TAIL) == message


def test_window_bits_are_honoured():
    """A compressor limited to N window bits is readable by an N-bit decompressor."""
    _, server = pair(ServerPerMessageDeflateFactory(server_max_window_bits=9))
    messages = [os.urandom(100).hex().encode() * 3 for _ in range(20)]
    decompressor = zlib.decompressobj(-9)
    for message in messages:
        server.send_binary(message)
        (frame,) = frames_out(server)
        assert decompressor.decompress(frame.data + TAIL) == message


# Fragmentation.


def test_fragmented_message_round_trip():
    """A compressed fragmented message has RSV1 on its first frame only and decodes
    fragment by fragment."""
    client, server = pair()
    parts = [JSON * 3, JSON * 2, b"", JSON]
    client.send_text(parts[0], fin=False)
    client.send_continuation(parts[1], fin=False)
    client.send_continuation(parts[2], fin=False)
    client.send_continuation(parts[3], fin=True)
    data = client.data_to_send()
    frames = frames_out_of(data)
    assert [frame.rsv1 for frame in frames] == [True, False, False, False]
    assert [frame.opcode for frame in frames] == [Opcode.TEXT] + [Opcode.CONT] * 3
    events = server.receive_data(data)
    assert events == [Fragment(part.decode(), i == 3) for i, part in enumerate(parts)]


def test_fragmented_message_small_first_frame_still_compressed():
    """The first frame of a fragmented message is compressed whatever its size."""
    client, server = pair()
    server.send_binary(b"a", fin=False)
    server.send_continuation(b"b", fin=True)
    server.send_binary(b"c")  # a small whole message afterwards: uncompressed
    data = server.data_to_send()
    assert [frame.rsv1 for frame in frames_out_of(data)] == [True, False, False]
    assert client.receive_data(data) == [
        Fragment(b"a", False),
        Fragment(b"b", True),
        Message(b"c"),
    ]


def test_compressed_fragments_interleaved_with_control_frames():
    """A ping between the fragments of a compressed message goes out uncompressed."""
    client, server = pair()
    client.send_text(JSON, fin=False)
    client.send_ping(b"ping")
    client.send_continuation(JSON, fin=True)
    data = client.data_to_send()
    frames = frames_out_of(data)
    assert frames[1] == Frame(Opcode.PING, b"ping")
    assert server.receive_data(data) == [
        Fragment(JSON.decode(), False),
        Ping(b"ping"),
        Fragment(JSON.decode(), True),
    ]


# RSV1 and control frames.


def test_rsv1_on_continuation_of_compressed_message_fails():
    """RSV1 on a non-first fragment fails the connection with 1002 (RFC 7692 §6)."""
    protocol = server_with(PerMessageDeflate())
    compressor = zlib.compressobj(wbits=-15)
    first = compressor.compress(b"abc") + compressor.flush(zlib.Z_SYNC_FLUSH)
    protocol.receive_data(client_frame(Opcode.TEXT, first, fin=False, rsv1=True))
    protocol.receive_data(client_frame(Opcode.CONT, deflate(b"def"), rsv1=True))
    assert_failed(protocol, 1002)


def test_rsv1_on_continuation_of_uncompressed_message_fails():
    """RSV1 on a later frame of an uncompressed message fails with 1002."""
    protocol = server_with(PerMessageDeflate())
    protocol.receive_data(client_frame(Opcode.TEXT, b"abc", fin=False))
    protocol.receive_data(client_frame(Opcode.CONT, deflate(b"def"), rsv1=True))
    assert_failed(protocol, 1002)


def test_rsv1_on_control_frame_fails():
    """RSV1 on a control frame fails with 1002, compression or not."""
    protocol = server_with(PerMessageDeflate())
    protocol.receive_data(client_frame(Opcode.PING, b"", rsv1=True))
    assert_failed(protocol, 1002)


def test_control_frames_never_compressed():
    """Pings, pongs and close frames go out as they are, even above min_size."""
    _, server = pair(ServerPerMessageDeflateFactory(min_size=0))
    server.send_ping(b"p" * 100)
    server.send_pong(b"q" * 100)
    server.send_close(1000, "bye" * 30)
    frames = frames_out(server)
    assert [frame.rsv1 for frame in frames] == [False, False, False]
    assert frames[0].data == b"p" * 100


def test_continuation_without_compressed_message_passes_through():
    """A continuation outside a compressed message goes out as it is."""
    extension = PerMessageDeflate(min_size=0)
    frame = Frame(Opcode.CONT, b"x" * 100)
    assert extension.encode(frame) is frame


def test_extension_leaves_control_frames_alone():
    """Called on control frames directly, the extension passes them through."""
    extension = PerMessageDeflate(min_size=0)
    ping = Frame(Opcode.PING, b"x" * 100)
    assert extension.encode(ping) is ping
    assert extension.decode(ping) is ping
    with pytest.raises(ProtocolError):
        extension.decode(Frame(Opcode.PONG, b"", rsv1=True))


# max_size and decompression bombs.


def test_decompression_bomb_fails_with_1009_in_bounded_memory():
    """A small frame inflating far past max_size fails with 1009 without inflating it all."""
    bomb = deflate(bytes(200 * 2**20))  # 200 MiB of zeros in about 200 KiB
    assert len(bomb) < 2**20
    protocol = server_with(PerMessageDeflate(), max_size=2**20)
    data = client_frame(Opcode.BINARY, bomb, rsv1=True)
    tracemalloc.start()
    try:
        assert protocol.receive_data(data) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_failed(protocol, 1009)
    assert isinstance(protocol.exc, PayloadTooBig)
    # The decompressed output stops at max_size + 1: a few MiB at most, not 200.
    assert peak < 8 * 2**20


def test_message_exactly_max_size_is_accepted():
    """A message decompressing to exactly max_size is accepted; one byte more isn't."""
    protocol = server_with(PerMessageDeflate(), max_size=1000)
    assert protocol.receive_data(client_frame(Opcode.BINARY, deflate(bytes(1000)), rsv1=True)) == [
        Message(bytes(1000))
    ]
    protocol.receive_data(client_frame(Opcode.BINARY, deflate(bytes(1001)), rsv1=True))
    assert_failed(protocol, 1009)


def test_fragmented_bomb_fails_with_1009():
    """max_size counts the decompressed size across the fragments of a message."""
    protocol = server_with(PerMessageDeflate(), max_size=10_000)
    compressor = zlib.compressobj(wbits=-15)
    chunk = bytes(4000)
    events = []
    for fin in (False, False, True):
        payload = compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if fin:
            payload = payload[:-4]
        opcode = Opcode.CONT if events else Opcode.BINARY
        events += protocol.receive_data(
            client_frame(opcode, payload, fin=fin, rsv1=opcode == Opcode.BINARY)
        )
    assert events == [Fragment(chunk, False), Fragment(chunk, False)]
    assert_failed(protocol, 1009)


@pytest.mark.parametrize("fragments", [1, 3])
def test_max_size_close_reason_names_max_size(fragments):
    """The close reason of a message over max_size once decompressed names max_size, also
    when a later fragment goes over (the extension only knows what the others left)."""
    protocol = server_with(PerMessageDeflate(), max_size=10_000)
    compressor = zlib.compressobj(wbits=-15)
    chunk = bytes(12_000 // fragments)
    for i in range(fragments):
        payload = compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
        fin = i == fragments - 1
        if fin:
            payload = payload[:-4]
        opcode = Opcode.CONT if i else Opcode.BINARY
        protocol.receive_data(client_frame(opcode, payload, fin=fin, rsv1=not i))
    (frame,) = frames_out(protocol)
    assert frame.opcode is Opcode.CLOSE
    assert int.from_bytes(frame.data[:2], "big") == 1009
    assert frame.data[2:] == b"message exceeds max_size=10000 once decompressed"
    assert str(protocol.exc) == "message exceeds max_size=10000 once decompressed"


def test_decode_max_size_directly():
    """Extension.decode enforces max_size itself and frees its decompressor."""
    extension = PerMessageDeflate()
    with pytest.raises(PayloadTooBig):
        extension.decode(Frame(Opcode.BINARY, deflate(bytes(101)), rsv1=True), max_size=100)
    # max_size=0 still limits (zlib's max_length=0 would mean "unlimited").
    extension = PerMessageDeflate()
    with pytest.raises(PayloadTooBig):
        extension.decode(Frame(Opcode.BINARY, deflate(b"a"), rsv1=True), max_size=0)
    frame = extension.decode(Frame(Opcode.BINARY, deflate(b""), rsv1=True), max_size=0)
    assert frame == Frame(Opcode.BINARY, b"")


def test_server_response_headers_negotiate_default_extension():
    """The default server factory answers the default client offer with 12 window bits."""
    client, server = pair()
    assert server.response.headers["Sec-WebSocket-Extensions"] == (
        "permessage-deflate; server_max_window_bits=12"
    )
    (client_extension,) = client.extensions
    (server_extension,) = server.extensions
    assert client_extension.remote_max_window_bits == server_extension.local_max_window_bits == 12
    assert client_extension.local_max_window_bits == server_extension.remote_max_window_bits == 15


def test_partial_continuation_of_compressed_text_is_not_checked_as_utf8():
    """A continuation frame of a compressed text message, received in pieces, is not
    mistaken for invalid UTF-8 before it is decompressed."""
    client, server = pair()
    text = os.urandom(20_000).hex()
    client.send_text(text[:100].encode(), fin=False)
    client.send_continuation(text[100:].encode(), fin=True)
    data = client.data_to_send()
    events = []
    for i in range(0, len(data), 1000):
        events += server.receive_data(data[i : i + 1000])
    assert server.exc is None
    assert "".join(event.data for event in events) == text
