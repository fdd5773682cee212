"""The pings of a connection that wait for their pong, and the latency they measure.

RFC 6455 §5.5.3: "A Pong frame sent in response to a Ping frame must have identical
'Application data' as found in the message body of the Ping frame being replied to", and a
pong may answer several pings at once. :class:`Pings` queues the pings of
:meth:`~syncws.Connection.ping` and of the heartbeat's keepalive, remembers each one, by
payload, until a pong acknowledges it, sets the event that ``ping()`` returned, and measures
the latency. It shares the connection's protocol and lock (rule 1 of :mod:`syncws.runtime`)
and knows no socket: writing the queued ping is the connection's business.
"""

from __future__ import annotations

import os
import random
import threading
import time

from ..exceptions import ConcurrencyError
from ..protocol.connection import Protocol
from ..protocol.events import State
from ..protocol.frames import MAX_CONTROL_PAYLOAD
from .writing import _as_bytes

__all__ = ["Pings"]

_OPEN = State.OPEN  # a plain global: enum attribute lookups are slow (3.11)

_keepalive_payload = random.getrandbits  # see Pings.send_keepalive


class Pings:
    """The pings of one connection waiting for their pong (see the module docstring).

    Args:
        protocol: The connection's protocol, which queues the pings.
        lock: The connection's lock, which guards the protocol and this object.
    """

    __slots__ = ("_lock", "_protocol", "_waiting", "latency")

    def __init__(self, protocol: Protocol, lock: threading.Lock) -> None:
        self._protocol = protocol
        self._lock = lock
        # By payload: when sent, the event that ping() returned (None for the heartbeat's
        # keepalive pings, which nobody waits for), and whether that event is set when the
        # connection closes (ack_on_close).
        self._waiting: dict[bytes, tuple[float, threading.Event | None, bool]] = {}
        self.latency = 0.0
        """Seconds between the last acknowledged ping and its pong (0 before the first)."""

    def __len__(self) -> int:
        return len(self._waiting)

    def send(self, payload: bytes | None, ack_on_close: bool) -> threading.Event:
        """Queue a ping (with a random 4-byte payload if ``payload`` is ``None``); return
        the event that its pong sets (and the connection's closing, with
        ``ack_on_close``). Takes the lock.

        Raises:
            ConnectionClosed: The connection is closing or closed.
            ConcurrencyError: A ping with the same payload is still waiting for its pong.
        """
        waiter = threading.Event()
        with self._lock:
            waiting = self._waiting
            if payload is None:
                payload = os.urandom(4)
                while payload in waiting:
                    payload = os.urandom(4)
            elif payload in waiting:
                raise ConcurrencyError("a ping with the same payload is already waiting")
            self._protocol.send_ping(payload)  # raises ConnectionClosed once closing
            # Remembered once queued: a ping that is not sent must not refuse the same
            # payload later, nor take a pong meant for no one.
            waiting[payload] = (time.monotonic(), waiter, ack_on_close)
        return waiter

    def send_keepalive(self) -> bytes | None:
        """Queue a keepalive ping, for the heartbeat thread; return its payload, or ``None``
        if the connection is not open. Takes the lock."""
        with self._lock:
            if self._protocol.state is not _OPEN:
                return None
            # Not os.urandom(): it releases the GIL, which the heartbeat thread then waits
            # for behind every thread running Python (see Transport.recv_nowait). A
            # keepalive payload needs to be unique among this connection's pings, not secret.
            payload = _keepalive_payload(32).to_bytes(4, "big")
            while payload in self._waiting:
                payload = _keepalive_payload(32).to_bytes(4, "big")
            self._protocol.send_ping(payload)
            self._waiting[payload] = (time.monotonic(), None, False)
        return payload

    def overdue(self, payload: bytes) -> bool:
        """Whether the ping with ``payload`` is still unanswered, the connection open. Takes
        the lock."""
        with self._lock:
            return payload in self._waiting and self._protocol.state is _OPEN

    def acknowledge(self, payload: bytes) -> None:
        """A pong with ``payload`` arrived: it acknowledges its ping and every earlier one
        (RFC 6455 §5.5.3); an unsolicited pong acknowledges nothing. Requires the lock."""
        assert self._lock.locked(), "requires the connection's lock"
        waiting = self._waiting
        if payload not in waiting:
            return
        now = time.monotonic()
        for key in list(waiting):
            sent, event, _ = waiting.pop(key)
            last = key == payload
            if last:
                self.latency = now - sent  # before set(): a waiter reads the new value
            if event is not None:
                event.set()
            if last:
                break

    def close(self) -> None:
        """The connection closed: no pong will come. Set the events of the pings sent with
        ``ack_on_close`` (their waiters then check the connection's state) and forget every
        ping. Requires the lock."""
        assert self._lock.locked(), "requires the connection's lock"
        for _, waiter, ack_on_close in self._waiting.values():
            if ack_on_close:
                assert waiter is not None
                waiter.set()
        self._waiting.clear()


def _control_payload(data: object) -> bytes:
    """The payload of a ping or a pong, checked before anything is sent or registered:
    RFC 6455 §5.5, "All control frames MUST have a payload length of 125 bytes or less"."""
    payload = _as_bytes(data, "data")
    if len(payload) > MAX_CONTROL_PAYLOAD:
        raise ValueError("control frame payload longer than 125 bytes")
    return payload
