"""The read side of a connection: feeding received bytes to the protocol, under ``_lock``.

One thread reads at a time (see :mod:`syncws.runtime.connection`): the handler inside
``recv()``, or the heartbeat thread while the handler is elsewhere (the ``hb_*`` methods).
Whichever it is feeds the same protocol, in order, into the same queue of messages.

:class:`Reader` is a base class of :class:`~syncws.runtime.connection.Connection`, which
sets up every attribute used here; it lives apart only to keep each module readable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ..protocol.connection import Protocol
from ..protocol.events import PayloadRead, Pong, State
from .inbox import Data, Inbox

if TYPE_CHECKING:
    from .connection import Connection
    from .heartbeat import Heartbeat
    from .transport import Transport

__all__ = ["Data", "Reader"]

_OPEN = State.OPEN  # a plain global: enum attribute lookups are slow (3.11)


class Reader:
    """Feeding received bytes to the protocol and acting on its events (see the module
    docstring)."""

    # No __slots__ here: this class gives Connection the instance __dict__ (made lazily)
    # that applications may use; Connection's __slots__ hold every attribute of its own.

    protocol: Protocol
    transport: Transport
    latency: float
    _heartbeat: Heartbeat
    _lock: threading.Lock
    _tls: bool
    _reading: bool
    _finalized: bool
    _aborted: bool
    _left_recv: float
    _inbox: Inbox
    _pings: dict[bytes, tuple[float, threading.Event | None, bool]]

    if TYPE_CHECKING:  # provided by Connection

        def _flush_nowait(self) -> None: ...

        def _finalize(self) -> None: ...

    def _read_payload(self, bulk: PayloadRead) -> Data | None:
        """Read the rest of a large message (see ``Protocol.start_payload_read``); return
        it, or ``None`` if the connection ended first or failed (invalid UTF-8), having
        processed that ending. The caller owns reading."""
        payload = self.transport.read_payload(bulk)
        if payload is None:
            self._process(b"")  # the connection ended inside the payload
            return None
        with self._lock:
            if self._finalized:
                return None
            closing = self.protocol.state is not _OPEN
            self._handle_events(self.protocol.finish_payload_read(bulk, payload), closing)
            message = self._inbox.pop()
        if message is None:
            self._after_feed(False)  # the protocol failed the connection: send its close
        return message

    def _read_once(self, timeout: float | None) -> None:
        """Read once from the socket, blocking, and process what arrived."""
        try:
            data = self.transport.recv(timeout)
        except OSError:
            data = b""
        if data is None:
            raise TimeoutError("no message received in time")
        self._process(data)

    def _process(self, data: bytes, eof: bool | None = None) -> None:
        """Feed bytes to the protocol (``b""`` is EOF unless ``eof=False``), then write and
        close as needed. Called by whichever thread owns reading."""
        if eof is None:
            eof = not data
        with self._lock:
            if not self._feed(data, eof):
                return
        self._after_feed(eof)

    def _feed(self, data: bytes, eof: bool) -> bool:
        """Feed bytes to the protocol; called with ``_lock`` held. ``False`` if finalized."""
        if self._finalized:
            return False
        # Whether the closing handshake had started before these bytes: messages that come
        # before the peer's close frame in the same read were sent while it was open.
        closing = self.protocol.state is not _OPEN
        events = self.protocol.receive_eof() if eof else self.protocol.receive_data(data)
        self._handle_events(events, closing)
        return True

    def _after_feed(self, eof: bool) -> None:
        """Write what the protocol answered and close as needed; called without ``_lock``."""
        if not eof and self.protocol.state is _OPEN:
            # The common case, kept cheap: an open connection needs no closing; a flush is
            # needed only if the protocol answered something (a pong).
            if self.protocol.has_data_to_send() or self._tls:
                self._flush_nowait()
            return
        if not eof:
            self._flush_nowait()
            if self.protocol.should_close_transport():
                eof = True
        if eof:
            self._finalize()
        elif self.protocol.close_expected():
            self._heartbeat.expect_close(cast("Connection", self))

    def _process_buffered(self, events: list[Any] | None = None) -> None:
        """Process what arrived together with the handshake: the ``events`` that the
        protocol returned with the handshake response (on the client side), then the frames
        it buffered."""
        if events:
            with self._lock:
                self._handle_events(events, False)  # sent while the connection was open
        self._process(b"", eof=False)

    def _handle_events(self, events: list[Any], closing: bool) -> None:
        """Act on protocol events; called with ``_lock`` held. Messages go to the inbox,
        pongs to the pings waiting for them; the protocol answered pings and close frames."""
        inbox = self._inbox
        for event in events:
            if type(event) is Pong:
                self._acknowledge_pings(event.data)
            else:
                inbox.receive(event, closing)

    def _acknowledge_pings(self, data: bytes) -> None:
        if data not in self._pings:
            return  # unsolicited pong
        now = time.monotonic()
        # A pong acknowledges its ping and every earlier one (RFC 6455 §5.5.3).
        for key in list(self._pings):
            sent, event, _ = self._pings.pop(key)
            last = key == data
            if last:
                self.latency = now - sent  # before set(): a waiter reads the new value
            if event is not None:  # None for keepalive pings: nobody waits for them
                event.set()
            if last:
                break

    # Heartbeat side of reading.

    def hb_read(self, unpark: Callable[[], object]) -> bool:
        """The heartbeat saw the socket readable: read without blocking.

        Args:
            unpark: Called when the heartbeat must stop reading (the handler reads again,
                or backpressure), with ``_lock`` held: in the same hold as that decision
                (see the comment below).

        Returns:
            Whether the heartbeat should keep watching the socket for reading.
        """
        with self._lock:
            if (
                self._finalized
                or self._reading  # the handler reads again: hand reading back
                or (  # backpressure: stop reading until the handler catches up
                    self._inbox.full() and not self.protocol.close_expected() and not self._aborted
                )
            ):
                # Unparked in the same lock hold as this check: that is what lets ping()
                # read the heartbeat's "parked" without a lock (Heartbeat.want_read).
                # ping() takes _lock to queue its frame, then reads _reading, then asks.
                # If this check saw the handler in recv(), the handler's next ping() takes
                # _lock after this hold, finds the connection unparked, and has the
                # heartbeat read its pong; if the handler had left recv() already, reading
                # is not handed back, and the heartbeat, still parked, reads the pong. A
                # "parked" cleared after the hold (as it once was) let a ping() just after
                # recv() skip the wake-up, and its pong wait for the next periodic park.
                unpark()
                return False
            try:
                data = self.transport.recv_nowait()
            except OSError:
                data = b""
            if data is None:
                return True
            # Feed under the same lock hold as the read: once the lock is released, a
            # handler may enter recv() and read (and feed) later bytes first.
            eof = not data
            if not self._feed(data, eof):
                return False
        self._after_feed(eof)
        return not self._finalized

    def hb_wants_read(self) -> bool:
        """Whether the heartbeat should read this connection now (the handler is elsewhere)."""
        return (
            not self._reading
            and not self._finalized
            and (not self._inbox.full() or self.protocol.close_expected() or self._aborted)
        )

    @property
    def hb_idle_since(self) -> float | None:
        """When the handler left ``recv()``, or ``None`` while it is inside."""
        return None if self._reading else self._left_recv
