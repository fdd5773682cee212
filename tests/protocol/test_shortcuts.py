"""Tests of syncws.protocol.shortcuts: the single-call paths that Protocol inherits.

receive_message() (one whole message per read), _receive_plain() (receive_data()'s loop for
runs of plain whole messages), frame_message() (one whole message to send) and
start_payload_read() with finish_payload_read() (a large message read by the I/O layer
itself). Each is checked against the general path on the same bytes: the same events, state
and bytes to send, or a decline that changes nothing.
"""

from __future__ import annotations

import functools
import itertools

import pytest
from connection_helpers import MASK, Reverse, assert_failed, client, frames_out, sent_close, server
from hypothesis import given, settings
from hypothesis import strategies as st

from syncws.protocol.connection import Protocol
from syncws.protocol.deflate import PerMessageDeflate
from syncws.protocol.events import Message, Ping
from syncws.protocol.frames import Frame, Opcode, parse_frame
from syncws.protocol.mask import apply_mask

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
