"""Tests for syncws.runtime.inbox: the queue, assembly, streaming and drop policy of
incoming messages, driven with protocol events alone (no socket, no thread)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from syncws.protocol.connection import Protocol
from syncws.protocol.events import Fragment, Message, Ping, Pong
from syncws.protocol.frames import Close, Opcode, serialize_frame
from syncws.runtime.inbox import Data, Inbox


def feed(inbox: Inbox, *events: object, closing: bool = False) -> None:
    for event in events:
        inbox.receive(event, closing)


def drain(inbox: Inbox) -> list[Data]:
    messages = []
    while (message := inbox.pop()) is not None:
        messages.append(message)
    return messages


def test_whole_messages_are_queued_in_order() -> None:
    """Whole messages wait in order; an empty message is a message, not the end."""
    inbox = Inbox(max_queue=16)
    assert inbox.messages is None  # no queue until the first message
    assert inbox.pop() is None
    feed(inbox, Message("one"), Message(b"two"), Message(""))
    assert drain(inbox) == ["one", b"two", ""]


def test_fragments_are_assembled_into_one_message() -> None:
    """Text fragments make one str and binary fragments one bytes; control events are not
    the inbox's business."""
    inbox = Inbox(max_queue=16)
    feed(
        inbox,
        Fragment("caf", False),
        Ping(b"p"),
        Fragment("é", False),
        Pong(b"q"),
        Fragment("!", True),
        Close(1000, ""),
        Fragment(b"\x00", False),
        Fragment(b"\x01", True),
    )
    assert drain(inbox) == ["café!", b"\x00\x01"]


def test_full_is_the_high_water_mark() -> None:
    """full() says when to stop reading: at max_queue messages, which is at least 1."""
    inbox = Inbox(max_queue=2)
    feed(inbox, Message("a"))
    assert not inbox.full()
    feed(inbox, Message("b"), Message("c"))  # a read that reaches it is queued whole
    assert inbox.full()
    assert drain(inbox) == ["a", "b", "c"]
    assert not Inbox(max_queue=0).full() and Inbox(max_queue=0).max_queue == 1


def test_messages_sent_before_the_close_are_kept_past_max_queue() -> None:
    """Messages read while open, even in the read that brings the peer's close, are all
    kept, however many: the peer sent them before closing."""
    inbox = Inbox(max_queue=2)
    feed(inbox, *(Message(str(i)) for i in range(5)), closing=False)
    assert drain(inbox) == ["0", "1", "2", "3", "4"]
    assert inbox.dropped == 0


def test_messages_while_closing_are_dropped_once_the_queue_is_full() -> None:
    """Once the closing handshake has started, a message that finds the queue full is
    dropped and counted (whole or fragmented): a peer that keeps sending after the close
    cannot grow our memory."""
    inbox = Inbox(max_queue=2)
    feed(inbox, Message("a"), closing=True)
    feed(inbox, Message("b"), closing=True)  # the queue had room
    feed(inbox, Message("c"), Fragment("d", False), Fragment("e", True), closing=True)
    assert inbox.dropped == 2
    assert drain(inbox) == ["a", "b"]
    feed(inbox, Fragment("f", False), Fragment("g", True), closing=True)  # room again
    assert drain(inbox) == ["fg"]


def test_discard_drops_everything_from_then_on() -> None:
    """After discard() (the handler returned), every message is dropped and counted,
    and a fragmented one is not even assembled."""
    inbox = Inbox(max_queue=16)
    feed(inbox, Message("kept"), Fragment(b"x" * 10, False))
    inbox.discard()
    feed(inbox, Fragment(b"y" * 10, False), Fragment(b"z", True), Message("late"))
    assert inbox.dropped == 2
    assert drain(inbox) == ["kept"]


def test_streaming_takes_a_queued_message_whole_first() -> None:
    """recv_streaming() yields a message that had arrived already in one piece, and
    leaves the stream idle."""
    inbox = Inbox(max_queue=16)
    feed(inbox, Message("queued"))
    assert inbox.start_streaming() == "queued"
    inbox.stop_streaming(True)
    feed(inbox, Message("next"))
    assert inbox.next_fragment() is None
    assert drain(inbox) == ["next"]


def test_streaming_hands_over_fragments_as_they_arrive() -> None:
    """The fragments assembled before the iteration started come as one fragment, then
    each one as it arrives; fragments of the next message, read in the same chunk as the
    last one, are assembled, not streamed."""
    inbox = Inbox(max_queue=16)
    feed(inbox, Fragment("ab", False), Fragment("c", False))
    assert inbox.start_streaming() is None
    assert inbox.next_fragment() == Fragment("abc", False)
    assert inbox.next_fragment() is None
    feed(
        inbox, Fragment("d", False), Fragment("e", True), Fragment("n", False), Fragment("x", True)
    )
    assert inbox.next_fragment() == Fragment("d", False)
    assert inbox.next_fragment() == Fragment("e", True)
    assert inbox.next_fragment() is None
    inbox.stop_streaming(True)
    assert drain(inbox) == ["nx"]


def test_streaming_gets_a_whole_message_as_its_only_fragment() -> None:
    """A message that arrives whole while an iteration waits is its one final fragment;
    the message after it is queued."""
    inbox = Inbox(max_queue=16)
    assert inbox.start_streaming() is None
    feed(inbox, Message(b"whole"), Message(b"after"))
    assert inbox.next_fragment() == Fragment(b"whole", True)
    inbox.stop_streaming(True)
    assert drain(inbox) == [b"after"]


def test_leaving_a_stream_early_skips_the_rest_of_its_message() -> None:
    """An iteration left before the last fragment drops the fragments already there and
    those still to come, up to the last one; the next message is received as usual."""
    inbox = Inbox(max_queue=16)
    assert inbox.start_streaming() is None
    feed(inbox, Fragment(b"1", False), Fragment(b"2", False))
    assert inbox.next_fragment() == Fragment(b"1", False)
    inbox.stop_streaming(False)
    assert inbox.next_fragment() is None  # the fragment left in the stream is gone
    feed(inbox, Fragment(b"3", False), Fragment(b"4", True), Message(b"next"))
    assert drain(inbox) == [b"next"]
    assert inbox.dropped == 0  # skipped at the reader's request: not a drop


def test_leaving_a_stream_whose_last_fragment_arrived_skips_nothing_more() -> None:
    """When the last fragment had arrived (unread), leaving early drops what is left in
    the stream and nothing after it."""
    inbox = Inbox(max_queue=16)
    assert inbox.start_streaming() is None
    feed(inbox, Fragment(b"1", False), Fragment(b"2", True), Fragment(b"3", False))
    assert inbox.next_fragment() == Fragment(b"1", False)
    inbox.stop_streaming(False)
    feed(inbox, Fragment(b"4", True))
    assert drain(inbox) == [b"34"]


@given(
    st.lists(
        st.tuples(st.one_of(st.text(max_size=20), st.binary(max_size=20)), st.integers(1, 4)),
        max_size=8,
    )
)
def test_messages_fed_through_the_protocol_come_out_whole_and_in_order(
    messages: list[tuple[Data, int]],
) -> None:
    """Whatever the fragmentation, the inbox delivers what the peer sent, in order, from
    the events of a real protocol fed the peer's bytes."""
    protocol = Protocol(is_client=False)
    wire = bytearray()
    for data, pieces in messages:
        payload = data.encode() if isinstance(data, str) else data
        opcode = Opcode.TEXT if isinstance(data, str) else Opcode.BINARY
        cut = [len(payload) * i // pieces for i in range(pieces + 1)]
        for i in range(pieces):
            wire += serialize_frame(
                opcode if i == 0 else Opcode.CONT,
                payload[cut[i] : cut[i + 1]],
                fin=i == pieces - 1,
                mask=b"abcd",
            )
    inbox = Inbox(max_queue=1)
    feed(inbox, *protocol.receive_data(bytes(wire)))
    assert drain(inbox) == [data for data, _ in messages]


def test_leaving_a_stream_before_its_message_began_loses_nothing() -> None:
    """An iteration left before any fragment arrived (an exception while it waited for
    the first one, e.g. Ctrl-C) drops nothing: the next message, fragmented or whole, is
    received as usual (its fragments were skipped)."""
    inbox = Inbox(max_queue=16)
    assert inbox.start_streaming() is None
    inbox.stop_streaming(False)
    feed(inbox, Fragment("b", False), Fragment("c", True), Message("d"))
    assert inbox.next_fragment() is None
    assert drain(inbox) == ["bc", "d"]
    assert inbox.dropped == 0
