"""The write side of a connection: the writer token, and the ways to write under it.

One writer at a time (rule 3 of :mod:`syncws.runtime`). :class:`WriterToken` says who may
write to the socket now: nobody, a thread that is writing, or the heartbeat thread, which
finishes a non-blocking write that the socket could not take at once (the token keeps its
unwritten tail meanwhile). Whoever holds the token drains ``protocol.data_to_send()`` until
it is empty, checked under the connection's lock, so bytes queued by anyone meanwhile (a
pong, a close echo, a broadcast) go out in order and frames never interleave.

:class:`Writer` writes for one connection, in three ways: application threads sending
messages wait for the token and write blocking, bounded by ``write_timeout``
(:meth:`Writer.write_data`, and :meth:`Writer.write_fragments`, which keeps a fragmented
message whole under the send mutex: rule 4); control frames (``ping()``, ``pong()``,
``close()``), the heartbeat thread and :func:`~syncws.broadcast` only write without
blocking (:meth:`Writer.flush_nowait`, :meth:`Writer.send_nowait`); and the heartbeat
thread finishes a tail once the socket is writable (:meth:`Writer.write_tail`).

The writer knows no connection and no heartbeat, and holds no reference back to them (rule
8): what only the connection can do, it leaves to the connection that composes it. A write
that fails raises :exc:`WriteFailed`, for the connection to abort itself; a tail left for
the heartbeat is the return value of :meth:`Writer.flush_nowait`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, cast

from ..exceptions import ConnectionClosed
from ..protocol.connection import Protocol
from ..protocol.events import State
from ..protocol.frames import CloseCode, Opcode
from .inbox import Data
from .options import LoggerLike
from .transport import send_short

if TYPE_CHECKING:
    from .transport import TLSTransport, Transport

__all__ = ["BROADCAST_HIGH_WATER", "HEARTBEAT", "THREAD", "WriteFailed", "Writer", "WriterToken"]

_OPEN = State.OPEN  # a plain global: enum attribute lookups are slow (3.11)

Buffer = bytes | memoryview

#: Bytes already queued for a connection above which :func:`~syncws.broadcast` skips it.
BROADCAST_HIGH_WATER = 2**16

#: :attr:`WriterToken.owner` while a thread writes (blocking, or not and about to finish).
THREAD = "a thread"
#: :attr:`WriterToken.owner` while the heartbeat thread finishes a non-blocking write.
HEARTBEAT = "the heartbeat"


class WriteFailed(Exception):
    """A write failed or timed out: the connection must be aborted (raised by
    :class:`Writer`, handled by the connection, which raises
    :exc:`~syncws.exceptions.ConnectionClosedError` to the application)."""


class WriterToken:
    """Who may write to a connection's socket now.

    :attr:`owner` is ``None`` (nobody: the next writer takes the token), :data:`THREAD`
    (a thread is writing; it releases the token, or hands it to the heartbeat, when its
    write ends) or :data:`HEARTBEAT` (the socket did not take a non-blocking write whole;
    the heartbeat thread writes the rest, :attr:`tail`, once the socket is writable).

    Every method requires the connection's lock. The methods assert it, except
    :meth:`take` and :meth:`release`, which :func:`~syncws.broadcast` calls for each message
    and connection (``lock.locked()`` is a call: measured, it added two calls to the 24 a
    broadcast costs per connection); the message path of ``send()``, which finds the token
    free, only reads :attr:`owner`.

    Args:
        lock: The connection's lock.
    """

    __slots__ = ("_cond", "_lock", "_waiters", "closed", "owner", "tail")

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        # Threads waiting for the token wait on this condition of the lock, made by the
        # first of them: most connections never need one.
        self._cond: threading.Condition | None = None
        self._waiters = 0
        self.closed = False
        """Whether the connection is closed: nothing will be written any more."""
        self.owner: str | None = None
        """``None``, :data:`THREAD` or :data:`HEARTBEAT` (changed by this class only)."""
        self.tail: memoryview | None = None
        """What the heartbeat has left to write, while it owns the token."""

    def take(self) -> None:
        """Take the free token for the calling thread, which is about to write."""
        assert self.owner is None, f"the token is held by {self.owner}"
        self.owner = THREAD

    def keep(self, tail: memoryview) -> None:
        """The non-blocking write of the holder (a thread, or the heartbeat continuing)
        left ``tail``: the heartbeat thread owns the token until it has written it (never,
        once the connection is closed: the tail is dropped then)."""
        assert self._lock.locked(), "requires the connection's lock"
        assert self.owner is not None, "the token is not held"
        self.owner = HEARTBEAT
        self.tail = None if self.closed else tail

    def release(self) -> None:
        """Give the token back and wake the threads waiting for it. Every release goes
        through here: one that skipped the wake-up left a send() waiting until the peer
        closed (issue 18)."""
        self.owner = None
        self.tail = None
        if self._waiters:
            self._wake_waiters()

    def wait(self, timeout: float | None) -> None:
        """Wait until the token is released or the connection closes (or ``timeout``
        seconds pass); the lock is released meanwhile. The caller checks again."""
        assert self._lock.locked(), "requires the connection's lock"
        cond = self._cond
        if cond is None:
            cond = self._cond = threading.Condition(self._lock)
        self._waiters += 1
        try:
            cond.wait(timeout)
        finally:
            self._waiters -= 1

    def close(self) -> None:
        """The connection is closed: drop an unwritten tail (the heartbeat will not write
        it: the socket is gone) and wake every thread waiting for the token, which then
        finds the connection closed. A thread that holds the token keeps it: its write
        fails, and it releases the token."""
        assert self._lock.locked(), "requires the connection's lock"
        self.closed = True
        self.tail = None
        if self._waiters:
            self._wake_waiters()

    def _wake_waiters(self) -> None:
        assert self._cond is not None
        self._cond.notify_all()


class Writer:
    """Writing to one connection's socket, under its writer token (see the module
    docstring). Composed by :class:`~syncws.runtime.connection.Connection`, which shares its
    lock, protocol and transport.

    Args:
        protocol: The connection's protocol.
        transport: The connection's transport.
        lock: The connection's lock.
        write_timeout: Seconds a blocking write may wait for the peer; ``None``: forever.
        logger: Where a write timeout is logged.
    """

    __slots__ = (
        "_encode_lock",
        "_lock",
        "_send_mutex",
        "_tls",
        "logger",
        "protocol",
        "token",
        "transport",
        "write_timeout",
    )

    def __init__(
        self,
        protocol: Protocol,
        transport: Transport,
        lock: threading.Lock,
        *,
        write_timeout: float | None,
        logger: LoggerLike,
    ) -> None:
        self.protocol = protocol
        self.transport = transport
        self.write_timeout = write_timeout
        self.logger = logger
        self._lock = lock
        self.token = WriterToken(lock)
        # Only TLS transports transform writes or produce bytes of their own.
        self._tls = transport.tls
        # Serialises compression, outside _lock: made by _encoder().
        self._encode_lock: threading.Lock | None = None
        # Keeps a fragmented message whole while other threads send (see write_fragments).
        self._send_mutex = threading.Lock()

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
            ConnectionClosed: The connection closed meanwhile.
            WriteFailed: ``write_timeout`` expired (the protocol has failed the connection).
        """
        assert self._lock.locked(), "requires the connection's lock"
        token = self.token
        while token.owner and not token.closed:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            token.wait(remaining)
        if token.closed:
            raise self.protocol.closed_exception()
        if token.owner:
            self._lock.release()
            try:
                self._write_timed_out()
            finally:
                self._lock.acquire()

    def write_data(
        self, opcode: int, payload: bytes, fin: bool = True, whole: bool = False
    ) -> bool:
        """Send one data frame, holding the writer token (waiting for it up to
        ``write_timeout``).

        Without extensions the frame is built under ``_lock``: it is cheap. Compression is
        not, so it runs outside ``_lock`` (a large message would otherwise stall the
        heartbeat thread, and every connection's pongs with it), serialised by
        ``_encode_lock``, which also keeps frames in the order the compressor saw them.

        ``whole`` is for a whole message sent without the connection's send mutex: if
        another thread's fragmented message is in progress, this sends nothing and returns
        ``False`` (the caller then takes the mutex, which waits for its end, and calls
        again without ``whole``). Returns ``True`` otherwise.

        Raises:
            ConnectionClosed: The connection is closing or closed.
            WriteFailed: The write failed or timed out.
        """
        protocol = self.protocol
        deadline = None  # the write deadline, computed only when something has to wait
        if not protocol.extensions:
            lock = self._lock
            lock.acquire()  # not "with": this is the message path, and "with" costs more
            try:
                # Once the connection is closed, the protocol refuses the frame below.
                if self.token.owner:
                    deadline = self._write_deadline()
                    self._wait_for_token(deadline)
                # The common case in one call: a whole message, nothing queued before it.
                wire = protocol.frame_message(opcode, payload) if fin else None
                if wire is None:
                    # Another thread's fragmented message: wait for its end (the caller
                    # takes the send mutex), unless the connection is closing, which the
                    # frame below reports at once, however long that message takes.
                    if whole and protocol.sending_fragments and protocol.state is _OPEN:
                        return False
                    b0, data = protocol.prepare_frame(opcode, payload, fin)
                    protocol.queue_frame(b0, data)
                    out = self._start_write(protocol.buffers_to_send())
                elif self._tls:
                    out = self._take_token(wire, 0)
                else:
                    # _start_write() for this one buffer, inline: this is the message path.
                    sent = send_short(self.transport.sock, wire)
                    if sent == len(wire):
                        return True
                    out = self._take_token(wire, sent)
            finally:
                lock.release()
        else:
            with self._lock:
                if self.token.owner:
                    deadline = self._write_deadline()
                    self._wait_for_token(deadline)
                encode_lock = self._encoder()
            with encode_lock:
                if whole and protocol.sending_fragments and protocol.state is _OPEN:
                    return False  # as above
                b0, data = protocol.prepare_frame(opcode, payload, fin)
                with self._lock:
                    protocol.queue_frame(b0, data)
                    # If another thread took the token meanwhile, it writes this frame too.
                    if self.token.owner:
                        out = None
                    else:
                        out = self._start_write(protocol.buffers_to_send())
        if out is not None:
            self._write_out(out, self._write_deadline() if deadline is None else deadline)
        return True

    def write_data_after_fragments(self, opcode: int, payload: bytes) -> None:
        """Send a whole message that :meth:`write_data` refused (``whole``): wait for the
        end of the fragmented message in progress (the send mutex), then send it.

        A whole message needs no send mutex otherwise: it is one frame, queued whole under
        ``_lock``.
        """
        with self._send_mutex:
            self.write_data(opcode, payload)

    def write_message(
        self,
        message: Data | Iterable[Data],
        text: bool | None,
        fail: Callable[[int, str], object],
    ) -> None:
        """``send()`` for any message but the two cases it handles itself (``bytes`` and
        ``str`` with ``text=None``): a bytes-like object or a ``str`` with ``text`` given is
        one frame; an iterable of them is a fragmented message (:meth:`write_fragments`,
        which takes ``fail``).

        Raises:
            TypeError: ``message`` is neither ``str``, bytes-like, nor an iterable of them
                (a mapping is refused: its keys are not fragments).
            WriteFailed: A write failed or timed out.
        """
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            is_text = isinstance(message, str) if text is None else text
            opcode = Opcode.TEXT if is_text else Opcode.BINARY
            payload = _as_bytes(message, "data")
            if not self.write_data(opcode, payload, whole=True):
                self.write_data_after_fragments(opcode, payload)
        elif isinstance(message, Iterable) and not isinstance(message, Mapping):
            self.write_fragments(message, text, fail)
        else:
            raise TypeError("data must be str, bytes-like, or an iterable of them")

    def write_fragments(
        self, fragments: Iterable[Data], text: bool | None, fail: Callable[[int, str], object]
    ) -> None:
        """Send ``fragments`` as one fragmented message, one frame each, holding the send
        mutex: other threads' messages wait for its end (a control frame may go between
        two fragments, as RFC 6455 §5.4 allows).

        Args:
            fragments: ``str`` items, or bytes-like items.
            text: As for ``send()``.
            fail: Fails the connection with a close code and reason: a message cut short
                (its iterable raised, or gave an item of the wrong type) cannot be finished
                or taken back.

        Raises:
            TypeError: An item is neither ``str`` nor bytes-like, or the items mix both.
            WriteFailed: A write failed or timed out.
        """
        with self._send_mutex:
            started = False
            kind: type | None = None
            try:
                for fragment in fragments:
                    payload = _as_bytes(fragment, "fragments")
                    if kind is None:
                        kind = type(fragment) if isinstance(fragment, str) else bytes
                        is_text = kind is str if text is None else text
                    elif (kind is str) != isinstance(fragment, str):
                        raise TypeError("all fragments must be str, or all bytes-like")
                    if not started:
                        opcode = Opcode.TEXT if is_text else Opcode.BINARY
                        self.write_data(opcode, payload, fin=False)
                        started = True
                    else:
                        self.write_data(Opcode.CONT, payload, fin=False)
                if started:
                    self.write_data(Opcode.CONT, b"", fin=True)
            except WriteFailed:
                raise  # the connection aborts: no close frame can follow
            except BaseException:
                if started and self.protocol.state is _OPEN:
                    fail(CloseCode.INTERNAL_ERROR, "error while sending a fragmented message")
                raise

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
            return self._take_token(wire, sent)
        elif not out:
            return None
        self.token.take()
        return out

    def _take_token(self, wire: bytes, sent: int) -> Sequence[Buffer]:
        """Take the writer token, for what is left of ``wire`` once ``sent`` bytes of it are
        written; called with ``_lock`` held."""
        assert self._lock.locked(), "requires the connection's lock"
        self.token.take()
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
                        self.token.release()
                        return
        except BaseException as exc:
            with self._lock:
                self.token.release()
            if isinstance(exc, TimeoutError):
                self._write_timed_out()
            if isinstance(exc, OSError):
                raise WriteFailed from exc
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
        raise WriteFailed("write timeout")

    def flush_nowait(self) -> bool:
        """Write what the protocol has to send without blocking (from any thread).

        If the token is taken, its holder writes it. If the socket is full, the heartbeat
        thread gets the token with the unwritten tail: the caller must then have it watch
        the socket (``Heartbeat.want_write``). Returns ``True`` in that case.

        Raises:
            WriteFailed: The socket failed.
        """
        with self._lock:
            token = self.token
            if token.owner:
                return False
            data = self.protocol.data_to_send()
            if not data and not (self._tls and self.transport.has_output()):
                return False
            token.take()
        return self._send_nowait(data)

    def _send_nowait(self, data: bytes, tail: bytes | memoryview | None = None) -> bool:
        """Write ``tail`` (bytes already encrypted: what a previous write left) if given,
        else ``data`` once encrypted, then what is queued meanwhile, without blocking,
        holding the token (see :meth:`flush_nowait`); whether a tail is left for the
        heartbeat.

        The token is given back when the socket fails, or TLS does (``ssl.SSLError`` is an
        ``OSError``): kept, it would hold every later send until the connection closed.
        """
        transport = self.transport
        while True:
            try:
                wire = transport.encode(data) if tail is None else tail
                sent = transport.send_nowait(wire)
            except OSError as exc:
                with self._lock:
                    self.token.release()
                raise WriteFailed from exc
            tail = None
            with self._lock:
                token = self.token
                if sent < len(wire):
                    token.keep(memoryview(wire)[sent:])
                    return True
                data = self.protocol.data_to_send()
                if not data and not (self._tls and transport.has_output()):
                    token.release()
                    return False

    def write_tail(self) -> bool:
        """For the heartbeat thread, once the socket is writable: go on writing the tail it
        holds the token for; whether a tail is left still.

        Raises:
            WriteFailed: The socket failed.
        """
        with self._lock:
            token = self.token
            wire = token.tail if token.owner is HEARTBEAT else None
        if wire is None:
            return False  # nothing left, or the connection closed meanwhile
        return self._send_nowait(b"", wire)

    def _can_broadcast(self) -> bool:
        """Whether a broadcast message may be queued now; called with ``_lock`` held."""
        protocol = self.protocol
        owner = self.token.owner
        return not (
            protocol.state is not _OPEN
            or protocol.sending_fragments
            or owner is HEARTBEAT
            or (owner and protocol.buffered_output() > BROADCAST_HIGH_WATER)
        )

    def send_nowait(self, payload: bytes, is_text: bool) -> bool | None:
        """Send one message without blocking, for :func:`~syncws.broadcast`.

        No send lock is needed: a single-frame message is queued whole, under ``_lock``,
        and whoever holds the writer token writes it; if nobody does, this thread takes the
        token in the same hold, and writes as :meth:`flush_nowait` does.

        Returns ``None``, sending nothing, when the connection is not open, when a
        fragmented message is being sent, or when the peer is not keeping up (a write is
        waiting for it to read, or more than :data:`BROADCAST_HIGH_WATER` bytes are already
        queued): a slow peer must not delay the others, nor make the sender's memory grow.
        Else, as :meth:`flush_nowait`, whether a tail is left for the heartbeat.

        With compression, the message is compressed outside ``_lock``, under
        ``_encode_lock``: this may wait for another message to this peer being compressed,
        never for the peer itself. The checks come before compressing: once compressed, a
        message must be sent, or the peer's decompressor would miss it.

        Raises:
            WriteFailed: The socket failed (the message was queued).
        """
        protocol = self.protocol
        opcode = Opcode.TEXT if is_text else Opcode.BINARY
        try:
            if protocol.extensions:
                with self._lock:
                    encode_lock = self._encoder()
                with encode_lock:
                    with self._lock:
                        if not self._can_broadcast():
                            return None
                    b0, data = protocol.prepare_frame(opcode, payload)
                    with self._lock:
                        protocol.queue_frame(b0, data)
                return self.flush_nowait()
            # The message path of a broadcast: one hold of _lock to queue the frame and,
            # if the token is free, to take it with the bytes to write.
            with self._lock:
                if not self._can_broadcast():
                    return None
                protocol.queue_frame(*protocol.prepare_frame(opcode, payload))
                token = self.token
                if token.owner:
                    return False  # its holder writes the message
                data = protocol.data_to_send()
                token.take()
        except ConnectionClosed:
            return None  # the closing handshake started meanwhile
        return self._send_nowait(data)


def _as_bytes(data: object, what: str) -> bytes:
    """``data`` as bytes: a ``str`` encoded to UTF-8, a bytes-like object copied; else
    TypeError (an ``int`` is not taken as a length, as ``bytes()`` would)."""
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} must be str or bytes-like")
