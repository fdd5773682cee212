"""Tests for syncws.runtime.pings: pings waiting for their pong, on a protocol alone."""

from __future__ import annotations

import threading

import pytest

from syncws.exceptions import ConcurrencyError, ConnectionClosed
from syncws.protocol.connection import Protocol
from syncws.protocol.frames import Opcode, parse_frame
from syncws.runtime.pings import Pings


def pings() -> tuple[Pings, Protocol, threading.Lock]:
    protocol, lock = Protocol(is_client=False), threading.Lock()
    return Pings(protocol, lock), protocol, lock


def sent_pings(protocol: Protocol) -> list[bytes]:
    data, payloads = protocol.data_to_send(), []
    while data:
        frame, _, size = parse_frame(data)
        assert frame.opcode is Opcode.PING
        payloads.append(frame.data)
        data = data[size:]
    return payloads


def test_a_pong_acknowledges_its_ping_and_every_earlier_one() -> None:
    """RFC 6455 §5.5.3: the pong of the second ping sets the events of the first two, not
    of the third, and the latency is known when the event is set."""
    waiting, protocol, lock = pings()
    events = [waiting.send(payload, False) for payload in (b"1", b"2", b"3")]
    assert sent_pings(protocol) == [b"1", b"2", b"3"]
    latencies: list[float] = []  # as the waiter of the second ping reads it when woken
    second = events[1]
    second.set = lambda: (latencies.append(waiting.latency), threading.Event.set(second))  # type: ignore[method-assign]
    with lock:
        waiting.acknowledge(b"2")
    assert [event.is_set() for event in events] == [True, True, False]
    assert latencies == [waiting.latency] and waiting.latency > 0
    assert len(waiting) == 1


def test_an_unsolicited_pong_acknowledges_nothing() -> None:
    """A pong that matches no ping (RFC 6455 §5.5.3 allows them) changes nothing."""
    waiting, _, lock = pings()
    event = waiting.send(b"p", False)
    with lock:
        waiting.acknowledge(b"other")
    assert not event.is_set() and len(waiting) == 1 and waiting.latency == 0


def test_a_payload_that_is_waiting_is_refused_and_nothing_is_sent() -> None:
    """A second ping with the payload of one still waiting raises ConcurrencyError and
    queues no frame; a random payload is never one that waits."""
    waiting, protocol, _ = pings()
    waiting.send(b"same", False)
    protocol.data_to_send()
    with pytest.raises(ConcurrencyError):
        waiting.send(b"same", False)
    assert protocol.data_to_send() == b""
    waiting.send(None, False)
    (payload,) = sent_pings(protocol)
    assert len(payload) == 4 and payload != b"same" and len(waiting) == 2


def test_keepalive_pings_only_while_open() -> None:
    """The heartbeat's ping is queued with a payload of its own while the connection is
    open; once it closes, nothing is sent and ping() raises ConnectionClosed."""
    waiting, protocol, _ = pings()
    payload = waiting.send_keepalive()
    assert payload is not None and sent_pings(protocol) == [payload]
    assert waiting.overdue(payload)
    protocol.send_close()
    assert not waiting.overdue(payload)  # closing: the close timeout applies, not this
    assert waiting.send_keepalive() is None
    with pytest.raises(ConnectionClosed):
        waiting.send(b"late", False)


def test_closing_sets_only_the_events_asked_for() -> None:
    """When the connection closes, the events of ping(ack_on_close=True) are set, the
    others stay unset (a peer that went away never reads as alive), and none is kept."""
    waiting, _, lock = pings()
    plain, acked = waiting.send(b"a", False), waiting.send(b"b", True)
    with lock:
        waiting.close()
    assert (plain.is_set(), acked.is_set(), len(waiting)) == (False, True, 0)


def test_changes_by_events_require_the_connection_lock() -> None:
    """acknowledge() and close(), which the reading thread and the closing one call, assert
    that the connection's lock is held."""
    waiting, _, _ = pings()
    for change in (lambda: waiting.acknowledge(b"x"), waiting.close):
        with pytest.raises(AssertionError, match="requires the connection's lock"):
            change()
