"""The write side of a connection: one writer at a time, by the writer token.

Whoever holds the token (``_writing``, under ``_lock``) drains
``protocol.data_to_send()`` until it is empty, checked under ``_lock``, so bytes queued by
anyone meanwhile (a pong, a close echo, a broadcast) go out in order and frames never
interleave. Application threads sending messages wait for the token and write blocking,
bounded by ``write_timeout``; control frames (``ping()``, ``pong()``, ``close()``), the
heartbeat thread and :func:`~syncws.broadcast` only write without blocking, and a write the
socket could not take at once keeps the token, with its unwritten tail, until the heartbeat
sees the socket writable again.

:class:`Writer` is the base class of :class:`~syncws.runtime.connection.Connection`, which
sets up every attribute used here; it lives apart only to keep each module readable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from ..exceptions import ConnectionClosed
from ..protocol.connection import Protocol
from ..protocol.events import State
from ..protocol.frames import CloseCode, Opcode
from .transport import send_short

if TYPE_CHECKING:
    from .connection import Connection
    from .heartbeat import Heartbeat
    from .transport import TLSTransport, Transport

__all__ = ["BROADCAST_HIGH_WATER", "Writer"]

_OPEN = State.OPEN  # a plain global: enum attribute lookups are slow (3.11)

Buffer = bytes | memoryview

#: Bytes already queued for a connection above which :func:`~syncws.broadcast` skips it.
BROADCAST_HIGH_WATER = 2**16


class Writer:
    """The writer token and the three ways to write under it (see the module docstring)."""

    # The state this class changes; Connection declares the rest (see its __slots__).
    __slots__ = ("_cond", "_encode_lock", "_pending", "_token_waiters", "_writing")

    protocol: Protocol
    transport: Transport
    write_timeout: float | None
    logger: Any
    _heartbeat: Heartbeat
    _lock: threading.Lock
    _cond: threading.Condition | None
    _encode_lock: threading.Lock | None
    _tls: bool
    _writing: bool
    _token_waiters: int
    _pending: memoryview | None
    _finalized: bool

    # Provided by Connection.
    def _fail(self, code: int, reason: str) -> None:
        raise NotImplementedError

    def _abort(self) -> None:
        raise NotImplementedError

    def _closed_exception(self) -> ConnectionClosed:
        raise NotImplementedError

    def _condition(self) -> threading.Condition:
        """The condition of ``_lock`` that waiting threads share; called with ``_lock`` held."""
        cond = self._cond
        if cond is None:
            cond = self._cond = threading.Condition(self._lock)
        return cond

    def _encoder(self) -> threading.Lock:
        """``_encode_lock``, made on first use (only compression needs it); called with
        ``_lock`` held."""
        lock = self._encode_lock
        if lock is None:
            lock = self._encode_lock = threading.Lock()
        return lock

    def _wait_for_token(self, deadline: float | None) -> None:
        """Wait, with ``_lock`` held, until nobody holds the writer token.

        Raises:
            ConnectionClosed: The connection closed meanwhile, or ``write_timeout`` expired
                (which fails the connection).
        """
        while self._writing and not self._finalized:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            self._token_waiters += 1
            try:
                self._condition().wait(remaining)
            finally:
                self._token_waiters -= 1
        if self._finalized:
            raise self.protocol.closed_exception()
        if self._writing:
            self._lock.release()
            try:
                self._write_timed_out()
            finally:
                self._lock.acquire()

    def _write_data(
        self, opcode: int, payload: bytes, fin: bool = True, whole: bool = False
    ) -> bool:
        """Send one data frame, holding the writer token (waiting for it up to
        ``write_timeout``).

        Without extensions the frame is built under ``_lock``: it is cheap. Compression is
        not, so it runs outside ``_lock`` (a large message would otherwise stall the
        heartbeat thread, and every connection's pongs with it), serialised by
        ``_encode_lock``, which also keeps frames in the order the compressor saw them.

        ``whole`` is for a whole message sent without ``_send_mutex``: if another thread's
        fragmented message is in progress, this sends nothing and returns ``False`` (the
        caller then takes the mutex, which waits for its end, and calls again without
        ``whole``). Returns ``True`` otherwise.
        """
        protocol = self.protocol
        deadline = None  # the write deadline, computed only when something has to wait
        if not protocol.extensions:
            lock = self._lock
            lock.acquire()  # not "with": this is the message path, and "with" costs more
            try:
                if self._writing or self._finalized:
                    deadline = self._write_deadline()
                    self._wait_for_token(deadline)
                # The common case in one call: a whole message, nothing queued before it.
                wire = protocol.frame_message(opcode, payload) if fin else None
                if wire is None:
                    if whole and protocol.sending_fragments:
                        return False
                    b0, data = protocol.prepare_frame(opcode, payload, fin)
                    protocol.queue_frame(b0, data)
                    out = self._start_write(protocol.buffers_to_send())
                elif self._tls:
                    out = self._keep_token(wire, 0)
                else:
                    # _start_write() for this one buffer, inline: this is the message path.
                    sent = send_short(self.transport.sock, wire)
                    if sent == len(wire):
                        return True
                    out = self._keep_token(wire, sent)
            finally:
                lock.release()
        else:
            with self._lock:
                if self._writing or self._finalized:
                    deadline = self._write_deadline()
                    self._wait_for_token(deadline)
                encode_lock = self._encoder()
            with encode_lock:
                if whole and protocol.sending_fragments:
                    return False
                b0, data = protocol.prepare_frame(opcode, payload, fin)
                with self._lock:
                    protocol.queue_frame(b0, data)
                    # If another thread took the token meanwhile, it writes this frame too.
                    out = None if self._writing else self._start_write(protocol.buffers_to_send())
        if out is not None:
            self._write_out(out, self._write_deadline() if deadline is None else deadline)
        return True

    def _write_deadline(self) -> float | None:
        """When a write that starts now must be done, by ``write_timeout``."""
        return None if self.write_timeout is None else time.monotonic() + self.write_timeout

    def _start_write(self, out: list[bytes]) -> Sequence[Buffer] | None:
        """Start writing ``out`` (what the protocol queued, taken from it): take the writer
        token; called with ``_lock`` held and the token free.

        A plain socket gets a first write without blocking, still under ``_lock`` (a system
        call that never waits): when it takes everything, which is the common case, the
        token is never taken. Returns what is left to write, or ``None`` if nothing is.
        """
        if self._tls:
            if not out and not self.transport.has_output():
                return None
        elif len(out) == 1:
            wire = out[0]
            sent = send_short(self.transport.sock, wire)
            if sent == len(wire):
                return None
            return self._keep_token(wire, sent)
        elif not out:
            return None
        self._writing = True
        return out

    def _release_token(self) -> None:
        """Give the writer token back and wake the threads waiting for it; called with
        ``_lock`` held. Every release goes through here: one that skipped the wake-up
        left a send() waiting until the peer closed."""
        self._writing = False
        if self._token_waiters:
            self._condition().notify_all()

    def _keep_token(self, wire: bytes, sent: int) -> Sequence[Buffer]:
        """Take the writer token, for what is left of ``wire`` once ``sent`` bytes of it are
        written; called with ``_lock`` held."""
        self._writing = True
        return [memoryview(wire)[sent:]] if sent else [wire]

    def _write_out(self, out: Sequence[Buffer], deadline: float | None) -> None:
        """Write ``out`` and whatever is queued meanwhile, blocking, then give the token back."""
        transport = self.transport
        try:
            while True:
                if self._tls:
                    # Encryption runs outside _lock too; only the token holder encrypts.
                    for wire in cast("TLSTransport", transport).encrypt(out):
                        transport.send(wire, deadline)
                else:
                    transport.send_buffers(out, deadline)
                with self._lock:
                    out = self.protocol.buffers_to_send()
                    if not out and not (self._tls and transport.has_output()):
                        self._release_token()
                        return
        except BaseException as exc:
            with self._lock:
                self._release_token()
            if isinstance(exc, TimeoutError):
                self._write_timed_out()
            if isinstance(exc, OSError):
                self._abort()
                raise self._closed_exception() from exc
            raise

    def _write_timed_out(self) -> None:
        self.logger.info(
            "write timed out after %s seconds: the peer is not reading", self.write_timeout
        )
        with self._lock:
            self.protocol.fail(CloseCode.INTERNAL_ERROR, "write timeout")
            # A frame may be half written: a close frame after it would be read as its
            # payload, so none is sent; the peer sees the TCP connection end (1006).
            self.protocol.data_to_send()
        self._abort()
        raise self._closed_exception()

    def _flush_nowait(self) -> bool:
        """Write what the protocol has to send without blocking (from any thread).

        If the token is taken, its holder writes it. If the socket is full, the token is
        kept with the unwritten tail and the heartbeat thread finishes the write when the
        socket becomes writable. Returns ``True`` in that case.
        """
        with self._lock:
            if self._writing:
                return False
            data = self.protocol.data_to_send()
            if not data and not (self._tls and self.transport.has_output()):
                return False
            self._writing = True
        return self._send_pending(self.transport.encode(data))

    def _send_pending(self, wire: bytes | memoryview) -> bool:
        """Write ``wire`` without blocking, holding the token; see :meth:`_flush_nowait`."""
        while True:
            try:
                sent = self.transport.send_nowait(wire)
            except OSError:
                with self._lock:
                    self._pending = None
                    self._release_token()
                self._abort()
                return False
            if sent < len(wire):
                self._pending = memoryview(wire)[sent:]
                self._heartbeat.want_write(cast("Connection", self))
                return True
            with self._lock:
                data = self.protocol.data_to_send()
                if not data and not (self._tls and self.transport.has_output()):
                    self._pending = None
                    self._release_token()
                    return False
            wire = self.transport.encode(data)

    def _can_broadcast(self) -> bool:
        """Whether a broadcast message may be queued now; called with ``_lock`` held."""
        protocol = self.protocol
        return not (
            protocol.state is not _OPEN
            or protocol.sending_fragments
            or self._pending is not None
            or (self._writing and protocol.buffered_output() > BROADCAST_HIGH_WATER)
        )

    def _send_nowait(self, payload: bytes, is_text: bool) -> bool:
        """Queue one message and flush it without blocking, for :func:`~syncws.broadcast`.

        No send lock is needed: a single-frame message is queued whole, under ``_lock``,
        and whoever holds the writer token writes it. Returns ``False``, sending nothing,
        when the connection is not open, when a fragmented message is being sent, or when
        the peer is not keeping up (a write is waiting for it to read, or more than
        :data:`BROADCAST_HIGH_WATER` bytes are already queued): a slow peer must not delay
        the others, nor make the sender's memory grow.

        With compression, the message is compressed outside ``_lock``, under
        ``_encode_lock``: this may wait for another message to this peer being compressed,
        never for the peer itself. The checks come before compressing: once compressed, a
        message must be sent, or the peer's decompressor would miss it.
        """
        protocol = self.protocol
        opcode = Opcode.TEXT if is_text else Opcode.BINARY
        try:
            if not protocol.extensions:
                with self._lock:
                    if not self._can_broadcast():
                        return False
                    protocol.queue_frame(*protocol.prepare_frame(opcode, payload))
            else:
                with self._lock:
                    encode_lock = self._encoder()
                with encode_lock:
                    with self._lock:
                        if not self._can_broadcast():
                            return False
                    b0, data = protocol.prepare_frame(opcode, payload)
                    with self._lock:
                        protocol.queue_frame(b0, data)
        except ConnectionClosed:
            return False  # the closing handshake started meanwhile
        self._flush_nowait()
        return True

    def hb_writable(self) -> bool:
        """The heartbeat saw the socket writable: continue the pending write."""
        wire = self._pending
        if wire is None:
            return False
        return self._send_pending(wire)
