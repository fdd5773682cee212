"""Tests of receiving with syncws.protocol.connection: what bytes from the peer become.

Whole, fragmented and interleaved data frames, incremental UTF-8 checks (1007), framing
errors (1002), the max_size and max_fragments limits (1009), pings and pongs, and the
properties that chunking never changes the events and that no input makes the state
machine raise. Each test feeds bytes, then checks the exact events, the bytes to send and
the close code.
"""

from __future__ import annotations

import pytest
from connection_helpers import (
    MASK,
    Reverse,
    assert_failed,
    client,
    client_frame,
    frames_out,
    server,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from syncws.exceptions import PayloadTooBig, ProtocolError
from syncws.protocol.connection import DEFAULT_MAX_FRAGMENTS, Protocol
from syncws.protocol.events import Fragment, Message, Ping, Pong, State
from syncws.protocol.frames import Frame, Opcode, serialize_frame

# Data frames.


def test_text_message():
    """A single-frame text message is one Message with a str."""
    assert server().receive_data(client_frame(Opcode.TEXT, "café".encode())) == [Message("café")]


def test_binary_message():
    """A single-frame binary message is one Message with bytes."""
    assert server().receive_data(client_frame(Opcode.BINARY, b"\x00\xff")) == [Message(b"\x00\xff")]


def test_empty_messages():
    """Empty text and binary messages are delivered."""
    protocol = server()
    data = client_frame(Opcode.TEXT, b"") + client_frame(Opcode.BINARY, b"")
    assert protocol.receive_data(data) == [Message(""), Message(b"")]


def test_several_frames_in_one_chunk():
    """Several frames in one chunk of bytes give several events, in order."""
    data = b"".join(client_frame(Opcode.BINARY, bytes([i])) for i in range(5))
    assert server().receive_data(data) == [Message(bytes([i])) for i in range(5)]


def test_frame_split_across_chunks():
    """A frame split anywhere, header included, is reassembled."""
    data = client_frame(Opcode.TEXT, b"x" * 300)
    protocol = server()
    for i in range(len(data) - 1):
        assert protocol.receive_data(data[i : i + 1]) == []
    assert protocol.receive_data(data[-1:]) == [Message("x" * 300)]


def test_large_masked_frame():
    """A large masked frame (unmasked through a view of the buffer) arrives intact."""
    payload = bytes(range(256)) * 1000
    data = client_frame(Opcode.BINARY, payload)
    protocol = server(max_size=None)
    assert protocol.receive_data(data[:1000]) == []
    assert protocol.receive_data(data[1000:] + client_frame(Opcode.BINARY, b"!")) == [
        Message(payload),
        Message(b"!"),
    ]


def test_client_receives_unmasked_frames():
    """A client accepts unmasked frames from the server."""
    protocol = client()
    assert protocol.receive_data(serialize_frame(Opcode.TEXT, b"hi")) == [Message("hi")]


def test_fragmented_text_decoded_incrementally():
    """Fragments of a text message are decoded as they arrive, even mid-character."""
    snowman = "☃".encode()  # three bytes
    protocol = server()
    events = protocol.receive_data(
        client_frame(Opcode.TEXT, b"a" + snowman[:1], fin=False)
        + client_frame(Opcode.CONT, snowman[1:], fin=False)
        + client_frame(Opcode.CONT, b"b", fin=True)
    )
    assert events == [Fragment("a", False), Fragment("☃", False), Fragment("b", True)]


def test_fragmented_binary():
    """Fragments of a binary message arrive as bytes, the last one final."""
    protocol = server()
    events = protocol.receive_data(
        client_frame(Opcode.BINARY, b"ab", fin=False) + client_frame(Opcode.CONT, b"cd")
    )
    assert events == [Fragment(b"ab", False), Fragment(b"cd", True)]
    # The next message starts afresh.
    assert protocol.receive_data(client_frame(Opcode.TEXT, b"e")) == [Message("e")]


def test_control_frames_between_fragments():
    """Control frames may be interleaved with fragments (RFC 6455 §5.4)."""
    protocol = server()
    events = protocol.receive_data(
        client_frame(Opcode.TEXT, b"a", fin=False)
        + client_frame(Opcode.PING, b"p")
        + client_frame(Opcode.CONT, b"b")
    )
    assert events == [Fragment("a", False), Ping(b"p"), Fragment("b", True)]


# UTF-8.


def test_invalid_utf8_single_frame_fails_1007():
    """Invalid UTF-8 in a text message fails the connection with 1007."""
    protocol = server()
    assert protocol.receive_data(client_frame(Opcode.TEXT, b"\xff")) == []
    assert_failed(protocol, 1007)


def test_invalid_utf8_detected_on_first_bad_fragment():
    """Invalid UTF-8 fails on the fragment where it appears, before the message ends."""
    protocol = server()
    events = protocol.receive_data(client_frame(Opcode.TEXT, b"ok", fin=False))
    assert events == [Fragment("ok", False)]
    assert protocol.receive_data(client_frame(Opcode.CONT, b"\xce\xba\xf4\x90", fin=False)) == []
    assert_failed(protocol, 1007)


def test_truncated_surrogate_fails_at_once():
    """ED A0 is already invalid (a UTF-16 surrogate), even with its third byte missing."""
    protocol = server()
    assert protocol.receive_data(client_frame(Opcode.TEXT, b"a\xed\xa0", fin=False)) == []
    assert_failed(protocol, 1007)


def test_incomplete_character_at_end_fails_1007():
    """A message may not end in the middle of a character."""
    protocol = server()
    protocol.receive_data(client_frame(Opcode.TEXT, b"a\xe2\x98", fin=False))
    assert protocol.receive_data(client_frame(Opcode.CONT, b"")) == []
    assert_failed(protocol, 1007)


def test_valid_character_split_over_three_fragments():
    """A four-byte character split over three fragments decodes."""
    smile = "😀".encode()
    protocol = server()
    events = protocol.receive_data(
        client_frame(Opcode.TEXT, smile[:1], fin=False)
        + client_frame(Opcode.CONT, smile[1:3], fin=False)
        + client_frame(Opcode.CONT, smile[3:])
    )
    assert "".join(e.data for e in events) == "😀"


# Framing errors: 1002.


def test_server_rejects_unmasked_frame():
    """A server fails the connection on an unmasked frame (RFC 6455 §5.1)."""
    protocol = server()
    assert protocol.receive_data(serialize_frame(Opcode.TEXT, b"hi")) == []
    assert_failed(protocol, 1002)


def test_client_rejects_masked_frame():
    """A client fails the connection on a masked frame (RFC 6455 §5.1)."""
    protocol = client()
    assert protocol.receive_data(client_frame(Opcode.TEXT, b"hi")) == []
    assert_failed(protocol, 1002)


@pytest.mark.parametrize("bits", [(True, False, False), (False, True, False), (False, False, True)])
def test_reserved_bits_without_extension(bits):
    """RSV bits set without an extension that claims them fail with 1002."""
    protocol = server()
    data = client_frame(Opcode.TEXT, b"x", rsv1=bits[0], rsv2=bits[1], rsv3=bits[2])
    assert protocol.receive_data(data) == []
    assert_failed(protocol, 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_reserved_opcodes(opcode):
    """Reserved opcodes fail with 1002."""
    protocol = server()
    assert protocol.receive_data(client_frame(opcode, b"")) == []
    assert_failed(protocol, 1002)


def test_fragmented_control_frame():
    """Control frames must not be fragmented."""
    protocol = server()
    assert protocol.receive_data(client_frame(Opcode.PING, b"", fin=False)) == []
    assert_failed(protocol, 1002)


def test_control_frame_too_long_rejected_from_header():
    """A control frame over 125 bytes fails as soon as its header arrives."""
    protocol = server()
    header = client_frame(Opcode.PING, b"x" * 126)[:8]
    assert protocol.receive_data(header) == []
    assert_failed(protocol, 1002)


def test_control_frame_with_rsv_bit():
    """Control frames never carry RSV bits, even with an extension."""
    protocol = server(extensions=[Reverse()])
    assert protocol.receive_data(client_frame(Opcode.PING, b"", rsv1=True)) == []
    assert_failed(protocol, 1002)


def test_continuation_without_message():
    """A continuation frame with no message in progress fails with 1002."""
    protocol = server()
    assert protocol.receive_data(client_frame(Opcode.CONT, b"x")) == []
    assert_failed(protocol, 1002)


def test_new_message_inside_fragmented_message():
    """A new data frame before the end of a fragmented message fails with 1002."""
    protocol = server()
    protocol.receive_data(client_frame(Opcode.TEXT, b"x", fin=False))
    assert protocol.receive_data(client_frame(Opcode.BINARY, b"y")) == []
    assert_failed(protocol, 1002)


def test_64_bit_length_msb():
    """A 64-bit length with its top bit set fails with 1002."""
    protocol = server()
    assert protocol.receive_data(b"\x82\xff\x80" + b"\0" * 7 + MASK) == []
    assert_failed(protocol, 1002)


# Limits: 1009.


def test_max_size_enforced_from_header():
    """A frame announcing more than max_size fails at its header, before the payload."""
    protocol = server(max_size=1000)
    header = client_frame(Opcode.BINARY, b"x" * 1001)[:8]
    assert protocol.receive_data(header) == []
    assert_failed(protocol, 1009)
    assert isinstance(protocol.exc, PayloadTooBig)


def test_max_size_exactly_allowed():
    """A message of exactly max_size bytes is accepted."""
    protocol = server(max_size=1000)
    assert protocol.receive_data(client_frame(Opcode.BINARY, b"x" * 1000)) == [Message(b"x" * 1000)]


def test_max_size_across_fragments():
    """max_size counts the whole message, across its fragments."""
    protocol = server(max_size=10)
    protocol.receive_data(client_frame(Opcode.TEXT, b"x" * 6, fin=False))
    assert protocol.receive_data(client_frame(Opcode.CONT, b"x" * 5)[:6]) == []
    assert_failed(protocol, 1009)


def test_max_size_none_is_unlimited():
    """max_size=None accepts any size."""
    protocol = server(max_size=None)
    assert protocol.receive_data(client_frame(Opcode.BINARY, b"x" * 70000)) == [
        Message(b"x" * 70000)
    ]


@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_max_fragments_counts_every_frame_of_a_message(opcode):
    """A message of max_fragments frames is received; one more frame, even empty, fails
    with 1009 (issue 21: endless empty continuations kept a core busy, unseen)."""
    protocol = server(max_fragments=4)
    whole = [client_frame(opcode, b"a", fin=False)]
    whole += [client_frame(Opcode.CONT, b"", fin=False)] * 2 + [client_frame(Opcode.CONT, b"b")]
    events = protocol.receive_data(b"".join(whole))
    assert [event.final for event in events] == [False, False, False, True]
    assert protocol.state is State.OPEN
    # The count starts again with each message.
    protocol.receive_data(b"".join(whole[:-1]) + client_frame(Opcode.CONT, b"", fin=False))
    assert protocol.state is State.OPEN
    assert protocol.receive_data(client_frame(Opcode.CONT, b"")) == []
    assert_failed(protocol, 1009)
    assert isinstance(protocol.exc, PayloadTooBig)
    assert "max_fragments=4" in str(protocol.exc)


def test_max_fragments_default_bounds_empty_continuations():
    """By default, DEFAULT_MAX_FRAGMENTS frames make a message, and no more."""
    protocol = server()
    assert protocol.max_fragments == DEFAULT_MAX_FRAGMENTS
    empty = client_frame(Opcode.CONT, b"", fin=False)
    protocol.receive_data(client_frame(Opcode.BINARY, b"", fin=False))
    protocol.receive_data(empty * (DEFAULT_MAX_FRAGMENTS - 1))
    assert protocol.state is State.OPEN
    protocol.receive_data(empty)
    assert_failed(protocol, 1009)


def test_max_fragments_default_takes_4_mib_in_64_byte_frames():
    """Autobahn 9.3.1 and 9.4.1: 4 MiB in 64-byte frames, then an empty final frame
    (65,537 frames), is a message under the defaults (a limit of 65,536 refused it)."""
    protocol = server(max_size=None)
    chunk = b"x" * 64
    frames = [client_frame(Opcode.BINARY, chunk, fin=False)]
    frames += [client_frame(Opcode.CONT, chunk, fin=False)] * (2**16 - 1)
    frames.append(client_frame(Opcode.CONT, b""))
    events = protocol.receive_data(b"".join(frames))
    assert protocol.state is State.OPEN
    assert sum(len(event.data) for event in events) == 4 * 2**20 and events[-1].final


# Control frames.


def test_ping_answered_with_pong():
    """A ping is answered with a pong carrying the same payload, and reported."""
    protocol = server()
    assert protocol.receive_data(client_frame(Opcode.PING, b"hello")) == [Ping(b"hello")]
    assert frames_out(protocol) == [(Frame(Opcode.PONG, b"hello"), None)]


def test_client_pong_is_masked():
    """A client's automatic pong is masked."""
    protocol = client()
    protocol.receive_data(serialize_frame(Opcode.PING, b"hi"))
    ((frame, mask),) = frames_out(protocol)
    assert frame == Frame(Opcode.PONG, b"hi")
    assert mask is not None


def test_pong_reported():
    """A pong is reported as an event, with nothing sent back."""
    protocol = server()
    assert protocol.receive_data(client_frame(Opcode.PONG, b"x")) == [Pong(b"x")]
    assert protocol.data_to_send() == b""


# Properties.


@settings(max_examples=50)
@given(
    messages=st.lists(st.binary(max_size=300), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=10),
)
def test_chunking_does_not_change_events(messages, cuts):
    """However the bytes are chunked, the same events come out."""
    data = b"".join(client_frame(Opcode.BINARY, m) for m in messages)
    whole = server().receive_data(data)
    protocol = server()
    chunked = []
    prev = 0
    for cut in sorted({min(c, len(data)) for c in cuts} | {len(data)}):
        chunked += protocol.receive_data(data[prev:cut])
        prev = cut
    assert chunked == whole == [Message(m) for m in messages]


@settings(max_examples=300)
@given(data=st.binary(max_size=500), is_client=st.booleans())
def test_arbitrary_bytes_never_raise(data, is_client):
    """Arbitrary input never raises: it yields events or fails the connection cleanly."""
    protocol = Protocol(is_client=is_client, max_size=200)
    for i in range(0, len(data), 37):
        protocol.receive_data(data[i : i + 37])
    if protocol.exc is not None:
        assert isinstance(protocol.exc, ProtocolError)
        assert protocol.should_close_transport()
    protocol.receive_eof()
    assert protocol.state is State.CLOSED
