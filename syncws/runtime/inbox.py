"""The inbox of a connection: incoming messages, from the protocol's events to ``recv()``.

:class:`Inbox` turns :class:`~syncws.protocol.events.Message` and
:class:`~syncws.protocol.events.Fragment` events into what
:meth:`~syncws.Connection.recv` and :meth:`~syncws.Connection.recv_streaming` return: a
queue of whole messages, the assembly of a fragmented message, the fragments handed to a
``recv_streaming()`` iteration as they arrive, and the rules that drop messages nobody
will read, or that a peer keeps sending once the closing handshake has started.

It knows no socket, thread or lock: the connection that owns it calls every method with
its lock held (rule 1 of :mod:`syncws.runtime`), whichever thread is reading (rule 2),
and ``tests/runtime/test_inbox.py`` drives it with events alone. Other objects read
:attr:`Inbox.messages` and :attr:`Inbox.dropped`; only the inbox changes them.
"""

from __future__ import annotations

import collections
import io

from ..protocol.events import Fragment, Message

__all__ = ["Data", "Inbox"]

#: A message: ``str`` for text, ``bytes`` for binary.
Data = str | bytes

# What a recv_streaming() iteration waits for: nothing (no iteration, or its message is
# complete), the first fragment of the next message, or the rest of a message that began.
_IDLE, _WAITING, _BEGUN = 0, 1, 2


class Inbox:
    """The incoming messages of one connection (see the module docstring).

    Args:
        max_queue: The high-water mark of the queue (at least 1): the connection stops
            reading once it holds that many messages, and while closing, a message that
            finds the queue that full is dropped.
    """

    __slots__ = (
        "_discarding",
        "_partial",
        "_skipping",
        "_stream",
        "_streaming",
        "dropped",
        "max_queue",
        "messages",
    )

    def __init__(self, max_queue: int) -> None:
        # The queue is made by its first message: most messages are returned by recv() as
        # they arrive, and an idle connection would hold an empty deque (about 700 bytes).
        self.messages: collections.deque[Data] | None = None
        """Whole messages waiting for ``recv()``, oldest first (``None`` until the first)."""
        self.max_queue = max(1, max_queue)
        self.dropped = 0
        """Messages dropped while closing (the connection logs the count when it closes)."""
        self._partial: io.StringIO | bytearray | None = None  # a fragmented message so far
        self._streaming = _IDLE  # see _WAITING and _BEGUN
        self._stream: collections.deque[Fragment] | None = None  # made by start_streaming
        # The rest of a message whose recv_streaming() was left early is being dropped.
        self._skipping = False
        self._discarding = False  # nobody will receive again: drop every message

    def receive(self, event: object, closing: bool) -> None:
        """Take one protocol event; events other than messages and fragments are ignored.

        Args:
            event: What the protocol returned.
            closing: Whether the closing handshake had started before the bytes that
                brought this event were read. Messages read together with the peer's close
                frame, before it, were sent while the connection was open: they are queued
                however full the queue is.
        """
        if type(event) is Message:
            self._receive_message(event.data, closing)
        elif type(event) is Fragment:
            self._receive_fragment(event, closing)

    def _receive_message(self, data: Data, closing: bool) -> None:
        if self._drops(closing):
            return
        if self._streaming:
            # recv_streaming() waits for the next message, and this is it, whole: it must
            # come before fragments of the message after it, read in the same chunk.
            assert self._stream is not None
            self._stream.append(Fragment(data, True))
            self._streaming = _IDLE
            return
        self._queue(data)

    def _receive_fragment(self, fragment: Fragment, closing: bool) -> None:
        if self._skipping:
            # The rest of a message whose recv_streaming() was left early (see there).
            if fragment.final:
                self._skipping = False
            return
        if self._streaming:
            assert self._stream is not None
            self._stream.append(fragment)
            # Once the streamed message is complete, fragments of the next one, read in the
            # same chunk, must be assembled, not left in the stream.
            self._streaming = _IDLE if fragment.final else _BEGUN
            return
        if self._discarding:
            # Not assembled: nobody will receive it (counted as dropped once complete).
            if fragment.final:
                self._partial = None
                self.dropped += 1
            return
        data = fragment.data
        partial = self._partial
        if partial is None:
            partial = self._partial = io.StringIO() if isinstance(data, str) else bytearray()
        if isinstance(partial, bytearray):
            assert isinstance(data, bytes)
            partial += data
        else:
            assert isinstance(data, str)
            partial.write(data)
        if fragment.final:
            self._partial = None
            if not self._drops(closing):
                self._queue(_assembled(partial))

    def _drops(self, closing: bool) -> bool:
        """Whether a message that is complete now is dropped, counting it if so.

        Once nobody will receive (:meth:`discard`), or once the closing handshake has
        started and the queue is full, the socket is still read to find the peer's close
        frame: a peer that keeps sending must not grow our memory meanwhile.
        """
        if self._discarding or (closing and len(self.messages or ()) >= self.max_queue):
            self.dropped += 1
            return True
        return False

    def _queue(self, message: Data) -> None:
        messages = self.messages
        if messages is None:
            messages = self.messages = collections.deque()
        messages.append(message)

    def pop(self) -> Data | None:
        """The oldest queued message, removed from the queue, or ``None`` if there is none."""
        messages = self.messages
        return messages.popleft() if messages else None

    def full(self) -> bool:
        """Whether the queue has reached ``max_queue`` (backpressure: stop reading)."""
        return len(self.messages or ()) >= self.max_queue

    def discard(self) -> None:
        """Nobody will receive again (the handler returned): drop every message from now
        on, instead of queueing it until the connection closes."""
        self._discarding = True

    # recv_streaming().

    def start_streaming(self) -> Data | None:
        """Begin a ``recv_streaming()`` iteration: return the oldest queued message if
        there is one (it is yielded whole); else return ``None`` and hand the fragments of
        the next message to :meth:`next_fragment` as they arrive, starting with those
        already assembled, as one fragment."""
        message = self.pop()
        if message is not None:
            return message
        self._streaming = _WAITING
        stream = self._stream
        if stream is None:
            stream = self._stream = collections.deque()
        partial, self._partial = self._partial, None
        if partial is not None:
            stream.append(Fragment(_assembled(partial), False))
            self._streaming = _BEGUN
        return None

    def next_fragment(self) -> Fragment | None:
        """The next fragment of the streamed message (a message that arrived whole is one
        final fragment), or ``None`` until more arrive."""
        stream = self._stream
        return stream.popleft() if stream else None

    def stop_streaming(self, finished: bool) -> None:
        """End a ``recv_streaming()`` iteration.

        Args:
            finished: Whether the message's last fragment was yielded. If not, the
                iteration was left early: the rest of the message is dropped, its fragments
                that arrived already and, if its last one has not, those still to come, up
                to and including the last one. A message of which nothing had arrived is
                not touched: it is received as usual.
        """
        if not finished:
            self._skipping = self._streaming == _BEGUN
            if self._stream:
                self._stream.clear()
        self._streaming = _IDLE


def _assembled(partial: io.StringIO | bytearray) -> Data:
    return partial.getvalue() if isinstance(partial, io.StringIO) else bytes(partial)


def _decode(data: Data, decode: bool | None) -> Data:
    """A message as ``recv(decode=...)`` returns it (see there)."""
    if decode is None:
        return data
    if decode:
        return data if isinstance(data, str) else data.decode()
    return data.encode() if isinstance(data, str) else data
