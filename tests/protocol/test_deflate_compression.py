"""Tests of compressing with permessage-deflate (RFC 7692) through the Sans-I/O core.

Messages round-trip through two protocols wired back to back, compressed unless that does
not pay; data compressed by zlib directly decodes; context takeover makes repeated messages
smaller, and its absence makes each message decode on its own, within the negotiated window;
fragmented messages carry RSV1 on their first frame only, and control frames never.
"""

from __future__ import annotations

import os
import random
import zlib

import pytest
from deflate_helpers import (
    MASK,
    TAIL,
    assert_failed,
    client_frame,
    deflate,
    frames_out,
    frames_out_of,
    pair,
    server_with,
)

from syncws.exceptions import ProtocolError
from syncws.protocol.deflate import (
    MIN_COMPRESS_SIZE,
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from syncws.protocol.events import Fragment, Message, Ping
from syncws.protocol.frames import Frame, Opcode, parse_frame, serialize_frame

# Text that compresses well and refers back to itself, like JSON traffic.
JSON = (
    b'{"type": "quote", "symbol": "EURUSD", "bid": 1.0842, "ask": 1.0844, '
    b'"tags": ["fx", "eu"], "ts": 1760000000.25}'
)


def reframe(frames, *, mask=MASK):
    """Serialize frames again (masked, as from a client, unless mask is None)."""
    return b"".join(
        serialize_frame(f.opcode, f.data, fin=f.fin, rsv1=f.rsv1, mask=mask) for f in frames
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
