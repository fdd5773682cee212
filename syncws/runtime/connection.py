"""A WebSocket connection over a blocking socket: recv, send, ping, close.

:class:`Connection` follows the ownership rules of :mod:`syncws.runtime` (numbered there).
It composes what owns the rest of its state: an :class:`~syncws.runtime.inbox.Inbox` for
incoming messages, :class:`~syncws.runtime.pings.Pings` for the pings waiting for their
pong, and a :class:`~syncws.runtime.writing.Writer` for outgoing bytes; it keeps who reads
(rule 2) and the closing of the connection (rule 7). The heartbeat thread calls it through
:class:`~syncws.runtime.heartbeat.Served` (the ``hb_*`` methods).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from ..exceptions import ConcurrencyError, ConnectionClosed, ConnectionClosedOK
from ..protocol.connection import Protocol
from ..protocol.events import PayloadRead, Pong, State
from ..protocol.frames import CloseCode, Opcode
from ..protocol.http11 import Request, Response
from .inbox import Data, Inbox, _decode
from .options import LoggerLike
from .pings import Pings, _control_payload
from .transport import Transport
from .writing import WriteFailed, Writer

if TYPE_CHECKING:
    from .heartbeat import Heartbeat
    from .options import ConnectionOptions

__all__ = ["Connection", "Data"]

# Connection ids are made on first use (uuid4 costs a getrandom() call per connection).
_ID_LOCK = threading.Lock()


_T = TypeVar("_T")

# Plain globals: enum attribute lookups are slow (3.11).
_OPEN = State.OPEN
_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY


class Connection:
    """Base class of :class:`~syncws.ServerConnection` and :class:`~syncws.ClientConnection`.

    Not created directly: the server makes one per accepted connection, and
    :func:`~syncws.connect` makes one per client connection.

    Attributes:
        logger: The logger of this connection.
    """

    # Slots: about 1.2 KiB less per connection than an instance dict, and faster attribute
    # access on the message path. An instance __dict__ (made lazily) stays for attributes
    # that applications attach to their connections.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_aborted",
        "_closed",
        "_cond",
        "_finalized",
        "_heartbeat",
        "_id",
        "_inbox",
        "_lock",
        "_peername",
        "_pings",
        "_reading",
        "_recvs",
        "_sockname",
        "_tls",
        "_writer",
        "close_timeout",
        "logger",
        "ping_interval",
        "ping_timeout",
        "protocol",
        "transport",
    )

    def __init__(
        self,
        transport: Transport,
        protocol: Protocol,
        *,
        heartbeat: Heartbeat,
        options: ConnectionOptions,
        logger: LoggerLike,
        addresses: tuple[Any, Any],
    ) -> None:
        self._id: uuid.UUID | None = None  # made on first use (see id)
        self.logger = logger
        self.transport = transport
        self.protocol = protocol
        self._sockname, self._peername = addresses  # see transport._socket_addresses
        # Plain attributes, from options (checked there): the heartbeat reads them without a
        # second attribute lookup.
        self.ping_interval = options.ping_interval
        self.ping_timeout = options.ping_timeout
        self.close_timeout = options.close_timeout
        self._heartbeat = heartbeat
        # Only TLS transports transform writes or produce bytes of their own.
        self._tls = transport.tls
        self._lock = threading.Lock()
        # Threads waiting for the close wait on this condition of _lock, made by the first
        # of them (under _lock): most connections never need one.
        self._cond: threading.Condition | None = None
        self._writer = Writer(
            protocol, transport, self._lock, write_timeout=options.write_timeout, logger=logger
        )
        self._reading = False
        self._recvs = 0  # how many times the handler left recv(): see hb_recv_count
        self._inbox = Inbox(options.max_queue)
        self._pings = Pings(protocol, self._lock)
        # Closed and released (set by _finalize, under _lock; waited for on _cond): a flag
        # costs less per connection than an Event of its own.
        self._closed = False
        self._aborted = False  # shut down by us: read until EOF, whatever the queue holds
        self._finalized = False

    # Attributes.

    @property
    def id(self) -> uuid.UUID:
        """A unique identifier of this connection, for logs (made when first asked for)."""
        ident = self._id
        if ident is None:
            with _ID_LOCK:  # never two identifiers for one connection
                ident = self._id
                if ident is None:
                    ident = self._id = uuid.uuid4()
        return ident

    @property
    def latency(self) -> float:
        """Seconds between the last ping and its pong (0 before the first pong)."""
        return self._pings.latency

    @property
    def state(self) -> State:
        """The connection's :class:`~syncws.protocol.events.State`."""
        return self.protocol.state

    @property
    def local_address(self) -> Any:
        """The local address of the socket (a ``(host, port)`` tuple for TCP)."""
        return self._sockname

    @property
    def remote_address(self) -> Any:
        """The address of the peer (a ``(host, port)`` tuple for TCP)."""
        return self._peername

    @property
    def request(self) -> Request | None:
        """The opening handshake request."""
        return self.protocol.request

    @property
    def response(self) -> Response | None:
        """The opening handshake response."""
        return self.protocol.response

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, or ``None``."""
        return self.protocol.subprotocol

    @property
    def close_code(self) -> int | None:
        """The close code once the connection is closed (1006 without a close frame)."""
        return self.protocol.close_code

    @property
    def close_reason(self) -> str | None:
        """The close reason once the connection is closed."""
        return self.protocol.close_reason

    @property
    def max_queue(self) -> int:
        """The ``max_queue`` option of this connection (its inbox's)."""
        return self._inbox.max_queue

    @property
    def write_timeout(self) -> float | None:
        """The ``write_timeout`` option of this connection (its writer's)."""
        return self._writer.write_timeout

    # Receiving.

    @overload
    def recv(self, timeout: float | None = None, decode: None = None) -> Data: ...
    @overload
    def recv(self, timeout: float | None = None, *, decode: Literal[True]) -> str: ...
    @overload
    def recv(self, timeout: float | None = None, *, decode: Literal[False]) -> bytes: ...

    def recv(self, timeout: float | None = None, decode: bool | None = None) -> Data:
        """Receive the next message.

        Args:
            timeout: Seconds to wait; ``None`` waits forever and ``0`` only returns a message
                that has already arrived.
            decode: ``None`` returns ``str`` for text and ``bytes`` for binary messages;
                ``True`` returns ``str`` always (decoding binary messages as UTF-8);
                ``False`` returns ``bytes`` always (encoding text messages as UTF-8).

        Raises:
            TimeoutError: No message arrived within ``timeout``.
            ConnectionClosed: The connection is closed (messages that arrived before the
                close are returned first).
            ConcurrencyError: Another thread is already in ``recv()``.
        """
        lock = self._lock
        lock.acquire()  # not "with": this is the message path, and "with" costs more (3.11)
        try:
            if self._reading:
                raise ConcurrencyError(_ALREADY_RECEIVING)
            if self._inbox.messages:
                return _decode(self._inbox.messages.popleft(), decode)
            if self._finalized:
                raise self.protocol.closed_exception()
            # The messages that came before an error of the peer are consumed: fail.
            failing = self.protocol.pending_failure is not None and self.protocol.fail_pending()
            self._reading = True
        finally:
            lock.release()
        # Read until a whole message is queued; this thread owns reading until it returns.
        try:
            if timeout is not None or failing or self._tls:
                return self._receive(None, timeout, decode, failing)
            # The common case: one recv() system call of the socket's own brings one whole
            # message. No lock: only this thread feeds the protocol (rule 2), and
            # receive_message() changes nothing; a close() meanwhile finds it received.
            try:
                data = self.transport.recv_raw()
            except OSError:
                data = b""
            if data:
                message = self.protocol.receive_message(data)
                if message is not None:
                    return message if decode is None else _decode(message, decode)
            return self._receive(data, None, decode, False)
        finally:
            self._recvs += 1
            self._reading = False

    def _receive(
        self, data: bytes | None, timeout: float | None, decode: bool | None, failing: bool
    ) -> Data:
        """:meth:`recv` from its first read on, in general: ``data`` is what that read
        returned, or ``None`` if :meth:`recv` made none (a timeout, TLS, or a failure of
        the peer to report first, which ``failing`` says)."""
        if failing:
            self._after_feed(False)
        deadline = None if timeout is None else time.monotonic() + timeout
        # With no timeout and no TLS, one recv() system call of the socket's own.
        raw = deadline is None and not self._tls
        # The queue was found empty and the connection open, and nothing was read since.
        checked = data is None and not failing
        while True:
            if data is None:
                message = None if checked else self._queued(self._inbox.pop)
                checked = False
                if message is not None:
                    return _decode(message, decode)
                data = self._read_chunk(raw, deadline)
                if raw and data:
                    message = self.protocol.receive_message(data)  # see recv()
                    if message is not None:
                        return message if decode is None else _decode(message, decode)
            # A large message is read straight into its buffer, unless a timeout bounds it.
            message = self._feed_chunk(data, bulk=deadline is None)
            data = None
            if message is not None:
                return message if decode is None else _decode(message, decode)

    def _queued(self, take: Callable[[], _T]) -> _T:
        """What ``take`` takes from the inbox under ``_lock`` (a message, or a fragment of
        the streamed one), or ``None`` if the caller must read; raise once the connection
        is finalized. A failure of the peer held back until the messages before it were
        consumed (``Protocol.fail_pending``) is acted on here. The caller owns reading."""
        while True:
            with self._lock:
                item = take()
                if item is not None:
                    return item
                if self._finalized:
                    raise self.protocol.closed_exception()
                if self.protocol.pending_failure is None or not self.protocol.fail_pending():
                    return item  # None
            self._after_feed(False)

    def _read_chunk(self, raw: bool, deadline: float | None) -> bytes:
        """Read once, blocking until ``deadline``: with ``raw``, one ``recv()`` system call
        of the socket's own (no TLS, no deadline). ``b""`` at EOF or when the socket
        failed; raise :exc:`TimeoutError` at the deadline."""
        transport = self.transport
        try:
            if raw:
                data = transport.recv_raw()
            else:
                data = transport.recv(None if deadline is None else deadline - time.monotonic())
        except OSError:
            return b""
        if data is None:
            raise TimeoutError("no message received in time")
        return data

    def _feed_chunk(self, chunk: bytes, bulk: bool) -> Data | None:
        """Feed what one read returned (``b""``: EOF), then answer and close as needed;
        return the next queued message, if any. With ``bulk``, a large message that begins
        in ``chunk`` is first read whole, straight into its buffer (TLS included; see
        ``Protocol.start_payload_read``). The caller owns reading."""
        eof = not chunk
        read: PayloadRead | None = None
        with self._lock:
            if not self._feed(chunk, eof):
                return None
            message = self._inbox.pop()
            if message is None and bulk:
                read = self.protocol.start_payload_read()
        if read is not None:
            self._after_feed(False)  # answer what came before it (a ping), first
            return self._read_payload(read)
        self._after_feed(eof)
        return message

    def recv_streaming(self, decode: bool | None = None) -> Iterator[Data]:
        """Receive the next message fragment by fragment, as its frames arrive.

        A message that already arrived whole is yielded in one piece. Text fragments are
        ``str`` (a character split across frames comes with the frame completing it).

        Leaving the iteration before the message's last fragment (``break``, an exception
        in the loop, or closing the generator) discards the rest of that message: its
        fragments that arrived already and those still to come, up to and including the
        last one, are dropped by whichever thread reads them, and the next :meth:`recv` or
        :meth:`recv_streaming` gets the message after it. The discarded fragments are still
        checked as they arrive (``max_size``, and UTF-8 for text, failing the connection
        with 1009 or 1007), and they are not buffered. Until the generator is closed or
        released, it keeps the reader role: another :meth:`recv` in the meantime raises
        :exc:`~syncws.exceptions.ConcurrencyError`.

        Args:
            decode: As for :meth:`recv`.

        Raises:
            ConnectionClosed: The connection closed before the message ended.
            ConcurrencyError: Another thread is already receiving.
        """
        inbox = self._inbox
        with self._lock:
            if self._reading:
                raise ConcurrencyError(_ALREADY_RECEIVING)
            self._reading = True
            message = inbox.start_streaming()
        final = False  # whether the message's last fragment was yielded
        try:
            if message is not None:
                final = True
                yield _decode(message, decode)
                return
            while True:
                # A message that arrives whole comes here too (see Inbox.receive).
                fragment = self._queued(inbox.next_fragment)
                if fragment is None:
                    self._process(self._read_chunk(False, None))
                    continue
                final = fragment.final
                yield _decode(fragment.data, decode)
                if final:
                    return
        finally:
            with self._lock:
                inbox.stop_streaming(final)
                self._reading = False
                self._recvs += 1

    def __iter__(self) -> Iterator[Data]:
        """Iterate over incoming messages until the connection closes normally.

        Raises:
            ConnectionClosedError: The connection closed with an error.
        """
        try:
            while True:
                yield self.recv()
        except ConnectionClosedOK:
            return

    # Feeding the protocol: whichever thread reads (see the module docstring).

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
            self._heartbeat.expect_close(self)

    def _start(self, events: list[Any] | None = None) -> None:
        """Serve this connection, whose opening handshake is complete: its heartbeat takes
        it (keepalive pings, reading while nobody does), and what arrived with the
        handshake is processed: the ``events`` that the protocol returned with the
        handshake response (on the client side), then the frames it buffered."""
        self._heartbeat.add(self)
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
                self._pings.acknowledge(event.data)
            else:
                inbox.receive(event, closing)

    # The heartbeat's side of reading (see heartbeat.Served).

    def hb_read(self, unpark: Callable[[], object]) -> bool:
        """The heartbeat saw the socket readable: read without blocking.

        Args:
            unpark: Called when the heartbeat must stop reading (the handler reads again,
                or backpressure), with ``_lock`` held: in the same hold as that decision
                (rule 6).

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
                unpark()  # in the same hold as this check: see rule 6
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
    def hb_recv_count(self) -> int | None:
        """How many times the handler left ``recv()``, or ``None`` while it is inside."""
        return None if self._reading else self._recvs

    # Sending.

    def send(self, message: Data | Iterable[Data], text: bool | None = None) -> None:
        """Send a message.

        A ``str`` is sent as a text frame and a bytes-like object as a binary frame; ``text``
        overrides this (``text=True`` sends bytes that must be UTF-8 as a text frame,
        ``text=False`` sends a ``str`` as binary UTF-8). An iterable of ``str`` or of bytes
        is sent as one fragmented message, one frame per item, while other threads' sends
        wait.

        It is safe to call from several threads: messages never interleave.

        Raises:
            ConnectionClosed: The connection is closed or closing.
            TimeoutError: Never; when ``write_timeout`` expires the connection fails with
                1011 and this raises :class:`~syncws.exceptions.ConnectionClosedError`.
            TypeError: ``message`` has an unsupported type.
        """
        try:
            if type(message) is bytes and text is None:  # the common cases, inline
                payload, opcode = message, _BINARY
            elif type(message) is str and text is None:
                payload, opcode = message.encode(), _TEXT
            else:
                self._writer.write_message(message, text, self._fail)
                return
            if not self._writer.write_data(opcode, payload, whole=True):
                self._writer.write_data_after_fragments(opcode, payload)
        except WriteFailed as exc:
            raise self._write_failed() from exc.__cause__

    # Control frames.

    def ping(self, data: Data | None = None, *, ack_on_close: bool = False) -> threading.Event:
        """Send a ping; the returned event is set when the matching pong arrives.

        It never blocks: the ping is written at once if the socket takes it, else by the
        thread already writing to this connection, or by the heartbeat thread once the peer
        reads (as a control frame, it may go between two fragments of a message).

        If the connection closes before the pong arrives, the event stays unset: a peer
        that went away never reads as alive, and ``ping().wait(timeout)`` returns ``False``
        after ``timeout``. With ``ack_on_close=True`` (as in websockets), the event is set
        when the connection closes too, so that a waiter wakes up at once; it then checks
        :attr:`state` (or ``close_code``) to tell a pong from a close.

        Args:
            data: Payload (at most 125 bytes); random 4 bytes if ``None``. A ``str`` is
                encoded to UTF-8, a bytes-like object is sent as it is.
            ack_on_close: Set the event when the connection closes, too.

        Raises:
            ConnectionClosed: The connection is closed.
            ConcurrencyError: A ping with the same payload is still waiting for its pong.
            TypeError: ``data`` is neither ``str`` nor bytes-like (an ``int`` is refused,
                not taken as a length as by ``bytes()``).
            ValueError: The payload is longer than 125 bytes.
        """
        waiter = self._pings.send(None if data is None else _control_payload(data), ack_on_close)
        self._flush_nowait()  # or the writer token's holder writes it
        if not self._reading:
            # No thread is in recv(): have the heartbeat read the pong at once (unless it
            # reads this connection already), so that the waiter and the latency do not
            # depend on the handler's next recv(). After the lock hold above: rule 6.
            self._heartbeat.want_read(self)
        return waiter

    def pong(self, data: Data = b"") -> None:
        """Send an unsolicited pong (a unidirectional heartbeat, RFC 6455 §5.5.3). Like
        :meth:`ping`, it never blocks.

        Args:
            data: Payload (at most 125 bytes), as for :meth:`ping`.

        Raises:
            ConnectionClosed: The connection is closed.
            TypeError: ``data`` is neither ``str`` nor bytes-like.
            ValueError: The payload is longer than 125 bytes.
        """
        payload = _control_payload(data)
        with self._lock:
            self.protocol.send_pong(payload)  # raises ConnectionClosed once closing
        self._flush_nowait()

    def hb_ping(self) -> bytes | None:
        """Send a keepalive ping from the heartbeat thread; return its payload."""
        payload = self._pings.send_keepalive()
        if payload is not None:
            self._flush_nowait()
        return payload

    def hb_pong_overdue(self, payload: bytes) -> bool:
        """Whether the keepalive ping with ``payload`` is still unanswered."""
        return self._pings.overdue(payload)

    def hb_ping_timed_out(self) -> None:
        """For the heartbeat: a keepalive pong did not come within ``ping_timeout``."""
        self._fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")

    # Closing.

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection: send a close frame and wait for the closing handshake.

        Waits up to ``close_timeout`` for the peer, then closes the TCP connection anyway.
        That bound holds even while another thread is writing to a peer that does not
        read: the close frame is queued behind the frame being written, never inside it,
        and the writing thread sends it. If the closing handshake is not complete within
        ``close_timeout``, the TCP connection is closed, and a :meth:`send` still blocked
        on it raises :exc:`~syncws.exceptions.ConnectionClosedError`. A fragmented message
        that another thread is sending is cut short: the close frame goes between two of
        its fragments (RFC 6455 §5.4 allows control frames there), and the next one raises
        :exc:`~syncws.exceptions.ConnectionClosed`.

        Idempotent: closing a closed connection does nothing.

        Args:
            code: The close code (1000 normal, 1001 going away, 3000-4999 for apps).
            reason: The close reason, at most 123 bytes once encoded.

        Raises:
            ValueError: ``code`` may not be sent, or ``reason`` is too long.
        """
        # Neither the send mutex nor the writer token is waited for: their holder may be
        # blocked on the peer for as long as write_timeout (None: forever) allows.
        with self._lock:
            self.protocol.send_close(code, reason)  # a no-op once closing; may fail_pending()
        self._flush_nowait()  # or the token holder writes it, after its own frames
        if self.protocol.should_close_transport():
            # send_close() failed the connection for an error of the peer held back until
            # now (see Protocol.fail_pending): there is no closing handshake to wait for.
            self._abort()
        self._wait_for_close()

    def _wait_for_close(self) -> None:
        """Wait up to ``close_timeout`` for the closing handshake, then abort.

        The thread in ``recv()``, if any, reads the peer's answer; otherwise the heartbeat
        does. ``close()`` never takes the reader role itself, so a handler that calls
        ``recv()`` after another thread closed the connection gets ConnectionClosed, not
        ConcurrencyError.
        """
        if not self._reading:
            self._heartbeat.take_over(self)
        if not self.wait_closed(self.close_timeout):
            self.hb_close_timed_out()
            self.wait_closed(1.0)

    def hb_close_timed_out(self) -> None:
        """The closing handshake did not complete within ``close_timeout``: say so at INFO
        and abort, once, whether ``close()`` or the heartbeat's deadline finds it first (a
        connection already aborted, e.g. by a failed write, is left to finish)."""
        with self._lock:
            if self._closed or self._aborted:
                return
            self._aborted = True
        self.logger.info("%s: closing handshake timed out", self.id)
        self._abort()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the TCP connection is closed; return whether it is."""
        with self._lock:
            cond = self._cond
            if cond is None:
                cond = self._cond = threading.Condition(self._lock)
            return cond.wait_for(lambda: self._closed, timeout)

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection from any thread: send a close frame if possible, shut down."""
        with self._lock:
            self.protocol.fail(code, reason)
        self._flush_nowait()
        self._abort()

    def _close_nowait(self, code: int, reason: str, *, handler_done: bool = False) -> None:
        """Start the closing handshake without blocking and let the heartbeat finish it.

        Used when a handler returns or raises (``handler_done``: nobody will receive again,
        so messages that still arrive are dropped instead of queued), and on server
        shutdown: the pool thread is free at once; the heartbeat bounds the handshake by
        ``close_timeout``.
        """
        with self._lock:
            if handler_done:
                self._inbox.discard()
            if self._finalized:
                return
            if self.protocol.state is _OPEN:
                self.protocol.send_close(code, reason)  # may fail_pending()
        self._flush_nowait()
        if self.protocol.should_close_transport():
            self._abort()
        self._heartbeat.expect_close(self)

    def _abort(self) -> None:
        """Shut the socket down: every thread blocked on it wakes up; the reader finalizes."""
        self._aborted = True  # the heartbeat reads the EOF even past max_queue
        self.transport.shutdown()
        self._heartbeat.take_over(self)

    def _write_failed(self) -> ConnectionClosed:
        """A write failed or timed out (:exc:`~syncws.runtime.writing.WriteFailed`): abort;
        return the exception for the thread that was writing."""
        self._abort()
        with self._lock:
            return self.protocol.closed_exception()

    # Writing without blocking.

    def _flush_nowait(self) -> None:
        """Write what the protocol has to send without blocking, from any thread: the
        writer token's holder writes it if there is one; if the socket is full, the
        heartbeat thread finishes the write once the socket is writable."""
        try:
            if self._writer.flush_nowait():
                self._heartbeat.want_write(self)
        except WriteFailed:
            self._abort()

    def _send_nowait(self, payload: bytes, is_text: bool) -> bool:
        """Send one message without blocking, for :func:`~syncws.broadcast`; ``False``,
        sending nothing, when the peer is not keeping up (see ``Writer.send_nowait``)."""
        try:
            pending = self._writer.send_nowait(payload, is_text)
        except WriteFailed:
            self._abort()
            return True  # sent, as far as the sender can tell
        if pending is None:
            return False
        if pending:
            self._heartbeat.want_write(self)
        return True

    def hb_writable(self) -> bool:
        """The heartbeat saw the socket writable: go on with the write it holds the writer
        token for. Returns whether it should keep watching the socket for writing."""
        try:
            return self._writer.write_tail()
        except WriteFailed:
            self._abort()
            return False

    def _finalize(self) -> None:
        """The TCP connection ended: record it, release the socket and every waiter."""
        with self._lock:
            if self._finalized:
                return
            self._finalized = True
            if self.protocol.state is not State.CLOSED:
                self.protocol.receive_eof()
            if self._inbox.dropped:
                self.logger.info(
                    "%s: dropped %d messages received after the closing handshake started",
                    self.id,
                    self._inbox.dropped,
                )
            self._pings.close()  # sets the events of ping(ack_on_close=True)
            self._writer.token.close()  # wakes the threads waiting to write

        # The heartbeat thread closes the socket after unregistering it: closing it here
        # could let a new socket reuse its number while the selector still maps it.
        self.transport.shutdown()
        self._heartbeat.remove(self)
        with self._lock:
            self._closed = True
            if self._cond is not None:
                self._cond.notify_all()
        self._connection_lost()

    def _connection_lost(self) -> None:
        """Hook for subclasses, called once the connection is closed."""

    # Context manager.

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.close(CloseCode.INTERNAL_ERROR)


_ALREADY_RECEIVING = (
    "another thread is already receiving (or a recv_streaming() iteration is not finished)"
)
