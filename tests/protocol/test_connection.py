"""Tests for syncws.protocol.connection: the state machine in the OPEN and CLOSING states.

Each test feeds bytes, then checks the exact events, the bytes to send and the close code.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncws.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    PayloadTooBig,
    ProtocolError,
)
from syncws.protocol.connection import DEFAULT_MAX_FRAGMENTS, Protocol
from syncws.protocol.deflate import PerMessageDeflate
from syncws.protocol.events import Fragment, Message, Ping, Pong, State
from syncws.protocol.frames import Close, Frame, Opcode, parse_frame, serialize_frame
from syncws.protocol.mask import apply_mask

MASK = b"\x01\x02\x03\x04"


def client_frame(opcode, data, *, fin=True, rsv1=False, rsv2=False, rsv3=False):
    """A frame as a client sends it: masked."""
    return serialize_frame(opcode, data, fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3, mask=MASK)


def frames_out(protocol):
    """Parse everything the protocol wants to send into (frame, mask) pairs."""
    data = protocol.data_to_send()
    frames = []
    while data:
        frame, mask, size = parse_frame(data)
        frames.append((frame, mask))
        data = data[size:]
    return frames


def sent_close(protocol):
    """The single close frame the protocol sent, parsed."""
    ((frame, _),) = frames_out(protocol)
    assert frame.opcode is Opcode.CLOSE
    return Close.parse(frame.data)


def server(**kwargs):
    return Protocol(is_client=False, **kwargs)


def client(**kwargs):
    return Protocol(is_client=True, **kwargs)


def assert_failed(protocol, code):
    """The protocol failed the connection with ``code``."""
    assert sent_close(protocol).code == code
    assert protocol.state is State.CLOSING
    assert protocol.should_close_transport()
    assert isinstance(protocol.exc, ProtocolError)
    assert protocol.exc.code == code
    # Further input is ignored.
    assert protocol.receive_data(client_frame(Opcode.TEXT, b"more")) == []
    assert protocol.data_to_send() == b""


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


# Closing handshake.


def test_peer_initiated_close_is_echoed():
    """The server echoes the client's close code and reason (as websockets and Node's ws do,
    issue 19), then closes TCP (RFC 6455 §7.1.1)."""
    protocol = server()
    events = protocol.receive_data(client_frame(Opcode.CLOSE, Close(1001, "bye").serialize()))
    assert events == [Close(1001, "bye")]
    assert sent_close(protocol) == Close(1001, "bye")
    assert protocol.state is State.CLOSING
    assert protocol.close_expected()
    assert protocol.should_close_transport()
    assert protocol.close_rcvd_then_sent is True
    protocol.receive_eof()
    assert protocol.state is State.CLOSED
    assert (protocol.close_code, protocol.close_reason) == (1001, "bye")
    exc = protocol.closed_exception()
    assert isinstance(exc, ConnectionClosedOK)
    assert str(exc) == "received 1001 (going away) bye; then sent 1001 (going away) bye"


def test_client_waits_for_server_to_close_tcp():
    """After the closing handshake, a client waits for the server to close TCP."""
    protocol = client()
    protocol.receive_data(serialize_frame(Opcode.CLOSE, Close(1000).serialize()))
    assert sent_close(protocol) == Close(1000)
    assert protocol.close_expected()
    assert not protocol.should_close_transport()


def test_empty_close_answered_with_empty_close():
    """An empty close frame (1005) is answered with an empty close frame."""
    protocol = server()
    assert protocol.receive_data(client_frame(Opcode.CLOSE, b"")) == [Close(1005)]
    assert frames_out(protocol) == [(Frame(Opcode.CLOSE, b""), None)]
    protocol.receive_eof()
    assert isinstance(protocol.closed_exception(), ConnectionClosedOK)


def test_locally_initiated_close():
    """send_close, then the peer's close, completes the handshake."""
    protocol = server()
    protocol.send_close(1000, "done")
    assert sent_close(protocol) == Close(1000, "done")
    assert protocol.state is State.CLOSING
    assert not protocol.should_close_transport()
    assert protocol.receive_data(client_frame(Opcode.CLOSE, Close(1000).serialize())) == [
        Close(1000)
    ]
    assert protocol.data_to_send() == b""
    assert protocol.should_close_transport()
    assert protocol.close_rcvd_then_sent is False
    exc = protocol.closed_exception()
    assert str(exc) == "sent 1000 (OK) done; then received 1000 (OK)"


def test_send_close_twice_is_noop():
    """send_close after the closing handshake started does nothing."""
    protocol = server()
    protocol.send_close()
    protocol.data_to_send()
    protocol.send_close(1001)
    assert protocol.data_to_send() == b""


def test_send_close_invalid_code():
    """send_close refuses codes that may not go on the wire."""
    with pytest.raises(ValueError):
        server().send_close(1006)


def test_no_pong_after_close_sent():
    """Nothing follows our close frame, not even a pong."""
    protocol = server()
    protocol.send_close()
    protocol.data_to_send()
    assert protocol.receive_data(client_frame(Opcode.PING, b"x")) == [Ping(b"x")]
    assert protocol.data_to_send() == b""


def test_data_after_close_frame_ignored():
    """Frames after a close frame are ignored."""
    protocol = server()
    data = client_frame(Opcode.CLOSE, b"") + client_frame(Opcode.TEXT, b"late")
    assert protocol.receive_data(data) == [Close(1005)]
    assert protocol.receive_data(client_frame(Opcode.TEXT, b"later")) == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [(b"\x03", 1002), (b"\x03\xed", 1002), (b"\x03\xe8\xff\xfe", 1007)],
)
def test_invalid_close_frames(payload, code):
    """Invalid close payloads fail the connection with 1002 or 1007."""
    protocol = server()
    assert protocol.receive_data(client_frame(Opcode.CLOSE, payload)) == []
    assert_failed(protocol, code)


def test_eof_without_close_is_1006():
    """The TCP connection ending without a close frame closes with 1006, as an error."""
    protocol = server()
    protocol.receive_eof()
    assert protocol.state is State.CLOSED
    assert (protocol.close_code, protocol.close_reason) == (1006, "")
    exc = protocol.closed_exception()
    assert isinstance(exc, ConnectionClosedError)
    assert exc.code == 1006
    assert str(exc) == "no close frame received or sent"


def test_close_code_unknown_while_open():
    """close_code and close_reason are None until the connection is closed."""
    protocol = server()
    assert (protocol.close_code, protocol.close_reason) == (None, None)


def test_error_close_codes_raise_connection_closed_error():
    """A close code other than 1000/1001/1005 makes ConnectionClosedError."""
    protocol = server()
    protocol.receive_data(client_frame(Opcode.CLOSE, Close(4000, "app").serialize()))
    protocol.receive_eof()
    exc = protocol.closed_exception()
    assert isinstance(exc, ConnectionClosedError)
    assert (exc.code, exc.reason) == (4000, "app")


# Failing the connection.


def test_fail_truncates_reason_to_fit():
    """fail() truncates a long reason to 123 bytes without splitting a character."""
    protocol = server()
    protocol.fail(1011, "é" * 100)
    close = sent_close(protocol)
    assert close.code == 1011
    assert len(close.reason.encode()) <= 123
    assert isinstance(protocol.closed_exception(), ConnectionClosedError)


def test_fail_after_close_sent_sends_nothing_more():
    """Failing after our close frame sends no second close frame."""
    protocol = server()
    protocol.send_close()
    protocol.data_to_send()
    protocol.fail(1011, "late")
    assert protocol.data_to_send() == b""
    assert protocol.should_close_transport()


def test_exception_cause_is_the_protocol_error():
    """The ConnectionClosed raised after a failure has the ProtocolError as its cause."""
    protocol = server()
    protocol.receive_data(client_frame(Opcode.TEXT, b"\xff"))
    protocol.receive_eof()
    exc = protocol.closed_exception()
    assert isinstance(exc.__cause__, ProtocolError)
    assert str(exc) == (
        "sent 1007 (invalid frame payload data) invalid UTF-8 in text message; "
        "no close frame received"
    )


# Sending.


def test_server_frames_unmasked():
    """A server's frames are not masked."""
    protocol = server()
    protocol.send_text("é".encode())
    protocol.send_binary(b"\x00")
    assert protocol.data_to_send() == b"\x81\x02\xc3\xa9\x82\x01\x00"


def test_client_frames_masked_with_fresh_keys():
    """A client masks every frame, each with its own key."""
    protocol = client()
    for _ in range(100):
        protocol.send_binary(b"payload")
    frames = frames_out(protocol)
    assert all(frame == Frame(Opcode.BINARY, b"payload") for frame, _ in frames)
    assert len({mask for _, mask in frames}) > 90


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_client_large_frames(size):
    """A client's frames of every length form parse back."""
    protocol = client()
    protocol.send_binary(b"z" * size)
    assert frames_out(protocol)[0][0] == Frame(Opcode.BINARY, b"z" * size)


def test_send_fragmented():
    """send_text(fin=False) and send_continuation build a fragmented message."""
    protocol = server()
    protocol.send_text(b"a", fin=False)
    protocol.send_ping(b"p")
    protocol.send_continuation(b"b", fin=False)
    protocol.send_continuation(b"c", fin=True)
    assert [f for f, _ in frames_out(protocol)] == [
        Frame(Opcode.TEXT, b"a", fin=False),
        Frame(Opcode.PING, b"p"),
        Frame(Opcode.CONT, b"b", fin=False),
        Frame(Opcode.CONT, b"c"),
    ]


def test_send_continuation_without_message():
    """A continuation needs a fragmented message in progress."""
    with pytest.raises(RuntimeError):
        server().send_continuation(b"x", fin=True)


def test_send_new_message_while_fragmenting():
    """A new message cannot start inside a fragmented one."""
    protocol = server()
    protocol.send_binary(b"x", fin=False)
    with pytest.raises(RuntimeError):
        protocol.send_text(b"y")


def test_send_after_close_raises_connection_closed():
    """Sending after the closing handshake started raises ConnectionClosed."""
    protocol = server()
    protocol.send_close()
    with pytest.raises(ConnectionClosed):
        protocol.send_text(b"x")
    with pytest.raises(ConnectionClosed):
        protocol.send_ping(b"")


def test_send_before_handshake_raises():
    """Nothing can be sent before the opening handshake completes."""
    with pytest.raises(RuntimeError):
        Protocol(is_client=False, state=State.CONNECTING).send_text(b"x")


def test_prepare_then_queue_frame_is_send():
    """prepare_frame() + queue_frame() send exactly what send_text() sends."""
    a, b = server(), server()
    a.send_text(b"hello", fin=False)
    a.send_continuation(b"!", fin=True)
    b.queue_frame(*b.prepare_frame(Opcode.TEXT, b"hello", fin=False))
    b.queue_frame(*b.prepare_frame(Opcode.CONT, b"!"))
    assert a.data_to_send() == b.data_to_send()


def test_frame_prepared_before_the_closing_handshake_is_not_queued_after_it():
    """A frame prepared (e.g. compressed outside a lock) while the connection was open is
    refused once a close frame was received meanwhile: nothing may follow our close."""
    protocol = server()
    prepared = protocol.prepare_frame(Opcode.BINARY, b"late")
    protocol.receive_data(client_frame(Opcode.CLOSE, Close(1000, "").serialize()))
    echo = protocol.data_to_send()
    with pytest.raises(ConnectionClosed):
        protocol.queue_frame(*prepared)
    assert protocol.data_to_send() == b""
    assert echo == serialize_frame(Opcode.CLOSE, Close(1000, "").serialize())


def test_prepare_frame_checks_the_fragment_sequence():
    protocol = server()
    with pytest.raises(RuntimeError):
        protocol.prepare_frame(Opcode.CONT, b"x")
    protocol.prepare_frame(Opcode.TEXT, b"a", fin=False)
    with pytest.raises(RuntimeError):
        protocol.prepare_frame(Opcode.BINARY, b"b")


def test_control_payload_limit():
    """Pings and pongs carry at most 125 bytes."""
    protocol = server()
    with pytest.raises(ValueError):
        protocol.send_ping(b"x" * 126)
    with pytest.raises(ValueError):
        protocol.send_pong(b"x" * 126)
    protocol.send_pong(b"x" * 125)
    assert frames_out(protocol) == [(Frame(Opcode.PONG, b"x" * 125), None)]


# Extensions.


class Reverse:
    """A toy extension that reverses payloads and flags them with RSV1."""

    name = "x-reverse"
    rsv_bits = frozenset({1})

    def decode(self, frame, *, max_size=None):
        if not frame.rsv1:
            raise ProtocolError("not reversed")
        return dataclasses.replace(frame, data=frame.data[::-1] * 2, rsv1=False)

    def encode(self, frame):
        return dataclasses.replace(frame, data=frame.data[::-1], rsv1=True)


def test_extension_decodes_and_claims_rsv1():
    """An extension claiming RSV1 transforms incoming data frames."""
    protocol = server(extensions=[Reverse()])
    events = protocol.receive_data(client_frame(Opcode.TEXT, b"abc", rsv1=True))
    assert events == [Message("cbacba")]


def test_extension_error_fails_connection():
    """An extension's ProtocolError fails the connection."""
    protocol = server(extensions=[Reverse()])
    assert protocol.receive_data(client_frame(Opcode.TEXT, b"abc")) == []
    assert_failed(protocol, 1002)


def test_extension_rsv2_still_reserved():
    """Bits no extension claims stay reserved."""
    protocol = server(extensions=[Reverse()])
    assert protocol.receive_data(client_frame(Opcode.TEXT, b"a", rsv1=True, rsv2=True)) == []
    assert_failed(protocol, 1002)


def test_extension_output_limited_by_max_size():
    """max_size applies to the decoded payload."""
    protocol = server(extensions=[Reverse()], max_size=5)
    assert protocol.receive_data(client_frame(Opcode.BINARY, b"abc", rsv1=True)) == []
    assert_failed(protocol, 1009)


def test_extension_encodes_outgoing():
    """An extension transforms outgoing data frames and sets their RSV bits."""
    protocol = server(extensions=[Reverse()])
    protocol.send_text(b"abc")
    protocol.send_ping(b"abc")
    assert [f for f, _ in frames_out(protocol)] == [
        Frame(Opcode.TEXT, b"cba", rsv1=True),
        Frame(Opcode.PING, b"abc"),
    ]


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


def test_compressed_frame_size_bounded_from_header():
    """A compressed frame far larger than max_size fails at its header, before inflating."""
    protocol = server(extensions=[Reverse()], max_size=10_000)
    header = client_frame(Opcode.BINARY, b"x" * 20_000, rsv1=True)[:8]
    assert protocol.receive_data(header) == []
    assert_failed(protocol, 1009)


@pytest.mark.parametrize("make", [server, client])
def test_large_frames_queued_as_header_and_payload(make):
    """A large data frame is queued as two buffers (the payload not copied behind the
    header, unmasked on the server side); joined, they are the frame."""
    protocol = make()
    payload = bytes(range(256)) * 512  # 128 KiB
    protocol.send_binary(payload)
    protocol.send_text(b"small")
    buffers = protocol.buffers_to_send()
    assert len(buffers) == 3
    if protocol._masks is None:
        assert buffers[1] is payload
    frames = []
    data = b"".join(buffers)
    while data:
        frame, _, size = parse_frame(data)
        frames.append(frame)
        data = data[size:]
    assert frames == [Frame(Opcode.BINARY, payload), Frame(Opcode.TEXT, b"small")]
    assert protocol.buffers_to_send() == []
    assert protocol.data_to_send() == b""


# receive_message(): the shortcut for one whole message per read.


def _frame_bytes(b0, payload, *, masked, length_form, mask=MASK):
    """A frame with a chosen first byte and length encoding (7, 16 or 64 bits)."""
    n = len(payload)
    bit = 0x80 if masked else 0
    if length_form == 7 and n < 126:
        head = bytes((b0, bit | n))
    elif length_form == 16 and n < 1 << 16:
        head = bytes((b0, bit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, bit | 127)) + n.to_bytes(8, "big")
    if masked:
        masked_payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + masked_payload
    return head + payload


def _same_outcome(make, data, *, fragmenting=False):
    """receive_message() on ``data``, then receive_data() when it declined, gives what
    receive_data() alone gives: the same events, state and bytes to send."""
    fast, slow = make(), make()
    if fragmenting:
        for protocol in (fast, slow):
            protocol.receive_data(
                _frame_bytes(0x02, b"x", masked=not protocol.is_client, length_form=7)
            )
    message = fast.receive_message(data)
    expected = slow.receive_data(data)
    events = fast.receive_data(data) if message is None else [Message(message)]
    assert events == expected
    # (client frames are masked with random keys: compare them unmasked)
    assert [f for f, _ in frames_out(fast)] == [f for f, _ in frames_out(slow)]
    assert (fast.state, fast.exc.__class__, fast.should_close_transport()) == (
        slow.state,
        slow.exc.__class__,
        slow.should_close_transport(),
    )
    return message


@pytest.mark.parametrize(
    ("make", "masked"),
    [(server, True), (client, False)],
)
def test_receive_message_takes_one_whole_frame(make, masked):
    text = "héllo wörld".encode()
    assert _same_outcome(make, _frame_bytes(0x81, text, masked=masked, length_form=7)) == (
        "héllo wörld"
    )
    assert _same_outcome(make, _frame_bytes(0x82, b"\x00" * 125, masked=masked, length_form=7))
    big = bytes(range(256)) * 40  # 10 KiB: 16-bit length, unmasked through a view
    assert _same_outcome(make, _frame_bytes(0x82, big, masked=masked, length_form=16)) == big
    assert _same_outcome(make, _frame_bytes(0x82, b"", masked=masked, length_form=7)) == b""


@pytest.mark.parametrize(
    ("make", "masked"),
    [(server, True), (client, False)],
)
@pytest.mark.parametrize(
    "data_for",
    [
        lambda masked: _frame_bytes(0x81, b"\xff", masked=masked, length_form=7),  # UTF-8
        lambda masked: _frame_bytes(0x82, b"x", masked=not masked, length_form=7),  # masking
        lambda masked: _frame_bytes(0x82, b"x" * 10, masked=masked, length_form=64),
        lambda masked: _frame_bytes(0x82, b"x" * 10, masked=masked, length_form=7)[:-1],
        lambda masked: _frame_bytes(0x82, b"x", masked=masked, length_form=7) * 2,
        lambda masked: _frame_bytes(0x02, b"x", masked=masked, length_form=7),  # not final
        lambda masked: _frame_bytes(0xC2, b"x", masked=masked, length_form=7),  # RSV1
        lambda masked: _frame_bytes(0x89, b"p", masked=masked, length_form=7),  # ping
        lambda masked: _frame_bytes(0x88, b"\x03\xe8", masked=masked, length_form=7),
        lambda masked: _frame_bytes(0x82, b"x" * 300, masked=masked, length_form=16),  # size
        lambda masked: b"\x82",
        lambda masked: b"",
    ],
)
def test_receive_message_declines_everything_else(make, masked, data_for):
    """Anything but one whole plain message is left to receive_data(), untouched."""
    limited = functools.partial(make, max_size=200)
    assert _same_outcome(limited, data_for(masked)) is None


def test_receive_message_declines_inside_a_fragmented_message_and_after_failing():
    data = _frame_bytes(0x82, b"x", masked=True, length_form=7)
    assert _same_outcome(server, data, fragmenting=True) is None
    protocol = server()
    protocol.fail(1011)
    assert protocol.receive_message(data) is None
    closing = server()
    closing.send_close()
    assert closing.receive_message(data) is None  # the general path handles CLOSING


def test_receive_message_skips_only_extensions_that_leave_plain_messages_alone():
    data = _frame_bytes(0x82, b"abc", masked=True, length_form=7)
    assert server(extensions=[Reverse()]).receive_message(data) is None
    deflate = PerMessageDeflate()
    assert server(extensions=[deflate]).receive_message(data) == b"abc"


@settings(max_examples=300)
@given(
    b0=st.sampled_from([0x81, 0x82, 0x01, 0x02, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0x92, 0x83]),
    payload=st.binary(max_size=300) | st.text(max_size=100).map(str.encode),
    masked=st.booleans(),
    length_form=st.sampled_from([7, 16, 64]),
    trim=st.integers(min_value=0, max_value=3),
    extra=st.binary(max_size=3),
    is_client=st.booleans(),
)
def test_receive_message_agrees_with_receive_data(
    b0, payload, masked, length_form, trim, extra, is_client
):
    data = _frame_bytes(b0, payload, masked=masked, length_form=length_form)
    data = data[: len(data) - trim] + extra
    make = client if is_client else server
    _same_outcome(functools.partial(make, max_size=200), data)


# _receive_plain(): receive_data()'s loop for runs of plain whole messages.

_PLAIN_B0 = [0x81, 0x82, 0x01, 0x02, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0x92, 0x83]


class _GeneralLoopOnly(Protocol):
    """A protocol with _receive_plain() turned off: receive_data()'s general loop only."""

    def _receive_plain(self, buf, pos, events):
        return pos


@settings(max_examples=300)
@given(
    frames=st.lists(
        st.tuples(
            st.sampled_from(_PLAIN_B0[:2] * 4 + _PLAIN_B0),  # mostly plain messages
            st.binary(max_size=300) | st.text(max_size=60).map(str.encode),
            st.sampled_from([7, 7, 7, 16, 64]),
            st.booleans(),  # masked as it should be
        ),
        max_size=8,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=3),
    is_client=st.booleans(),
    limit=st.sampled_from([None, 200, 20]),
)
def test_plain_loop_agrees_with_the_general_loop(frames, cuts, is_client, limit):
    """Frames of every kind, valid or not, fed in chunks cut anywhere: receive_data() gives
    the same events, state and bytes to send with the plain loop and without it."""
    data = b"".join(
        _frame_bytes(b0, payload, masked=is_client is not right, length_form=form)
        for b0, payload, form, right in frames
    )
    fast = Protocol(is_client=is_client, max_size=limit)
    slow = _GeneralLoopOnly(is_client=is_client, max_size=limit)
    bounds = [0, *sorted(c for c in cuts if c < len(data)), len(data)]
    for a, b in itertools.pairwise(bounds):
        assert fast.receive_data(data[a:b]) == slow.receive_data(data[a:b])
        assert [f for f, _ in frames_out(fast)] == [f for f, _ in frames_out(slow)]
        assert (fast.state, fast.exc.__class__, fast.pending_failure.__class__) == (
            slow.state,
            slow.exc.__class__,
            slow.pending_failure.__class__,
        )


def test_plain_loop_takes_pipelined_messages_without_parsing_headers(monkeypatch):
    """Messages that arrive several per read skip the general loop: its header parser runs
    only for what follows them (here, a ping and a partial frame)."""
    import syncws.protocol.connection as module

    calls = []

    def counting_parse_header(buf, pos=0):
        calls.append(pos)
        return parse_header(buf, pos)

    from syncws.protocol.frames import parse_header

    monkeypatch.setattr(module, "parse_header", counting_parse_header)
    texts = [f"message {i}".encode() for i in range(50)]
    data = b"".join(_frame_bytes(0x81, t, masked=True, length_form=7) for t in texts)
    data += _frame_bytes(0x82, bytes(1000), masked=True, length_form=16)  # 16-bit length
    ping = _frame_bytes(0x89, b"p", masked=True, length_form=7)
    tail = _frame_bytes(0x82, b"xyz", masked=True, length_form=7)
    protocol = server()
    events = protocol.receive_data(data + ping + tail[:3])
    assert events == [Message(t.decode()) for t in texts] + [Message(bytes(1000)), Ping(b"p")]
    assert len(calls) == 2  # the ping, the partial frame
    assert protocol.receive_data(tail[3:]) == [Message(b"xyz")]
    assert len(calls) == 2
    assert frames_out(protocol)[0][0] == Frame(Opcode.PONG, b"p")


@pytest.mark.parametrize("size", [21, 126, 300])
def test_plain_loop_leaves_oversize_messages_to_the_general_loop(size):
    """A message above max_size after valid ones fails the connection with 1009 once
    those are consumed, as the general loop does."""
    good = _frame_bytes(0x82, b"x" * 20, masked=True, length_form=7)
    big = _frame_bytes(0x82, b"x" * size, masked=True, length_form=7 if size < 126 else 16)
    protocol = server(max_size=20)
    assert protocol.receive_data(good + big) == [Message(b"x" * 20)]
    assert protocol.pending_failure is not None and protocol.pending_failure.code == 1009
    assert protocol.fail_pending()
    assert sent_close(protocol).code == 1009


def test_plain_loop_leaves_invalid_utf8_to_the_general_loop():
    """A message with invalid UTF-8 after valid ones: those are returned first, then the
    connection fails with 1007 once they are consumed (fail_pending)."""
    good = _frame_bytes(0x81, b"ok", masked=True, length_form=7)
    bad = _frame_bytes(0x81, b"\xff", masked=True, length_form=7)
    protocol = server()
    assert protocol.receive_data(good * 2 + bad + good) == [Message("ok")] * 2
    assert protocol.pending_failure is not None and protocol.pending_failure.code == 1007
    assert protocol.fail_pending()
    assert sent_close(protocol).code == 1007


# frame_message(): the shortcut for sending one whole message.


@pytest.mark.parametrize("make", [server, client])
@pytest.mark.parametrize("size", [0, 1, 5, 124, 125, 126, 1024, 32767, 32768, 32775, 65535])
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_frame_message_is_what_send_queues(make, size, opcode):
    fast, slow = make(), make()
    payload = bytes(range(48, 58)) * (size // 10) + b"z" * (size % 10)
    wire = fast.frame_message(opcode, payload)
    (slow.send_text if opcode == Opcode.TEXT else slow.send_binary)(payload)
    parsed, mask, used = parse_frame(wire)
    assert used == len(wire)
    assert (parsed, mask is None) == (frames_out(slow)[0][0], not fast.is_client)
    assert fast.data_to_send() == b""  # nothing was queued


def test_frame_message_declines_when_it_must_not_jump_the_queue():
    protocol = server()
    protocol.send_ping(b"p")  # queued: a frame written now would overtake it
    assert protocol.frame_message(Opcode.TEXT, b"x") is None
    protocol.data_to_send()
    protocol.send_text(b"a", fin=False)  # a fragmented message in progress
    protocol.data_to_send()
    assert protocol.frame_message(Opcode.TEXT, b"x") is None
    assert server(extensions=[Reverse()]).frame_message(Opcode.TEXT, b"x") is None
    assert server().frame_message(Opcode.BINARY, b"x" * 65536) is None  # header + payload
    closing = server()
    closing.send_close()
    closing.data_to_send()
    assert closing.frame_message(Opcode.TEXT, b"x") is None


# start_payload_read(): large messages read by the I/O layer itself.


@pytest.mark.parametrize("make", [server, client])
@pytest.mark.parametrize("b0", [0x82, 0x81])
def test_large_message_handed_over_and_completed(make, b0):
    protocol = make()
    payload = bytes(range(128)) * 1024  # 128 KiB, valid UTF-8 too
    data = _frame_bytes(b0, payload, masked=not protocol.is_client, length_form=64)
    ping = _frame_bytes(0x89, b"p", masked=not protocol.is_client, length_form=7)
    assert protocol.receive_data(ping + data[:1000]) == [Ping(b"p")]
    read = protocol.start_payload_read()
    assert read is not None and read.size == len(payload) and read.text == (b0 == 0x81)
    assert read.received == data[14 if not protocol.is_client else 10 : 1000]
    assert protocol.start_payload_read() is None  # handed over: nothing left to offer
    rest = data[1000:]
    wire = read.received + rest
    unmasked = wire if read.mask is None else apply_mask(wire, read.mask)
    expected = payload.decode() if b0 == 0x81 else payload
    assert protocol.finish_payload_read(read, unmasked) == [Message(expected)]
    assert [f.opcode for f, _ in frames_out(protocol)] == [Opcode.PONG]
    # and the protocol goes on with the next frame
    small = _frame_bytes(0x81, b"next", masked=not protocol.is_client, length_form=7)
    assert protocol.receive_data(small) == [Message("next")]


@pytest.mark.parametrize("make", [server, client])
def test_large_text_message_with_invalid_utf8_fails_when_complete(make):
    protocol = make()
    payload = b"a" * 70_000 + b"\xff" + b"a" * 100
    data = _frame_bytes(0x81, payload, masked=not protocol.is_client, length_form=16)
    protocol.receive_data(data[:100])
    read = protocol.start_payload_read()
    assert read is not None and read.text
    wire = read.received + data[100:]
    unmasked = wire if read.mask is None else apply_mask(wire, read.mask)
    assert protocol.finish_payload_read(read, unmasked) == []
    assert_failed(protocol, 1007)


def test_large_text_message_with_invalid_utf8_in_its_first_bytes_fails_at_once():
    # The part of the frame that arrives with its header is checked as it arrives: the
    # connection fails there, and nothing is handed over.
    protocol = server()
    data = _frame_bytes(0x81, b"\xff" + b"a" * 70_000, masked=True, length_form=16)
    protocol.receive_data(data[:100])
    assert protocol.start_payload_read() is None
    assert_failed(protocol, 1007)


@pytest.mark.parametrize(
    "b0",
    [0x01, 0x02, 0xC2],  # not final (text, binary), compressed
)
def test_start_payload_read_only_for_whole_plain_messages(b0):
    protocol = server(extensions=[Reverse()]) if b0 & 0x40 else server()
    data = _frame_bytes(b0, b"a" * 70_000, masked=True, length_form=16)
    protocol.receive_data(data[:100])
    assert protocol.start_payload_read() is None


@pytest.mark.parametrize("b0", [0x81, 0x82])
def test_start_payload_read_leaves_plain_messages_to_extensions_that_may_change_them(b0):
    # Reverse rejects frames without RSV1: the general path must see this one.
    protocol = server(extensions=[Reverse()])
    data = _frame_bytes(b0, b"a" * 70_000, masked=True, length_form=16)
    protocol.receive_data(data[:100])
    assert protocol.start_payload_read() is None
    assert protocol.receive_data(data[100:]) == []
    assert_failed(protocol, 1002)


def test_start_payload_read_declines_small_complete_and_failed_frames():
    protocol = server()
    small = _frame_bytes(0x82, b"a" * 1000, masked=True, length_form=16)
    protocol.receive_data(small[:100])
    assert protocol.start_payload_read() is None  # below BULK_THRESHOLD
    assert server().start_payload_read() is None  # nothing buffered
    too_big = server(max_size=100_000)
    data = _frame_bytes(0x82, b"a" * 200_000, masked=True, length_form=64)
    too_big.receive_data(data[:100])
    assert too_big.start_payload_read() is None  # failed with 1009 at the header
    assert_failed(too_big, 1009)


def test_finish_payload_read_checks_the_size():
    protocol = server()
    protocol.receive_data(_frame_bytes(0x82, b"a" * 70_000, masked=True, length_form=16)[:50])
    read = protocol.start_payload_read()
    assert read is not None
    with pytest.raises(ValueError):
        protocol.finish_payload_read(read, b"short")
