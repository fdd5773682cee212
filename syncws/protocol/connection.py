"""The WebSocket state machine shared by both sides (RFC 6455 §5-§7).

A :class:`Protocol` is fed bytes with :meth:`~Protocol.receive_data` and returns events;
what it has to send accumulates until :meth:`~Protocol.data_to_send`. It never blocks,
reads a clock or touches a socket, so the blocking runtime, the WSGI integration and the
tests drive it the same way.

Errors of the peer never raise out of :meth:`~Protocol.receive_data`: the protocol *fails
the connection* (RFC 6455 §7.1.7) instead: it queues a close frame with the right code,
records the error in :attr:`~Protocol.exc`, ignores further input and asks the I/O layer to
close the TCP connection (:meth:`~Protocol.should_close_transport`).
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    PayloadTooBig,
    ProtocolError,
)
from .events import (
    Event,
    Fragment,
    Message,
    Ping,
    Pong,
    State,
)
from .frames import (
    MAX_CONTROL_PAYLOAD,
    Close,
    CloseCode,
    Frame,
    Opcode,
    _plain_lengths,
    encode_header,
    parse_header,
    size_limit,
)
from .mask import _mask_frame, _unmask_slice, apply_mask
from .shortcuts import _OPEN, _SPLIT_THRESHOLD, BULK_THRESHOLD, Shortcuts

if TYPE_CHECKING:
    from .extensions import Extension
    from .http11 import Request, Response

__all__ = ["BULK_THRESHOLD", "DEFAULT_MAX_FRAGMENTS", "DEFAULT_MAX_SIZE", "Protocol"]

#: Default limit on the size of a received message, in bytes (1 MiB).
DEFAULT_MAX_SIZE = 2**20

#: The most frames one message may have. Fragments need not carry any data (empty
#: continuation frames are valid), so ``max_size`` alone does not end a message that never
#: ends: a peer could keep a core busy with empty frames while the application, waiting
#: for the message, never sees anything. Beyond it the connection fails with 1009.
#: Twice 65,536: a 4 MiB message in 64-byte frames, which Autobahn|Testsuite sends (9.3.1,
#: 9.4.1) and which an application streaming small chunks may, is 65,537 frames with its
#: empty final one. 131,072 empty frames cost about a tenth of a second of CPU.
DEFAULT_MAX_FRAGMENTS = 2**17


# Close codes that end a connection normally, for ConnectionClosedOK vs ConnectionClosedError.
_OK_CODES = frozenset({CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY, CloseCode.NO_STATUS_RCVD})


class _MaskSource:
    """Masking keys for a client's frames (RFC 6455 §5.3, §10.3).

    Keys must be unpredictable, so they come from ``os.urandom``; fetching them 64 at a time
    makes their cost per frame a slice instead of a system call.
    """

    __slots__ = ("_pool", "_pos")

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0

    def next(self) -> bytes:
        pos = self._pos
        if pos >= len(self._pool):
            self._pool = os.urandom(256)
            pos = 0
        self._pos = pos + 4
        return self._pool[pos : pos + 4]


class Protocol(Shortcuts):
    """The state machine of one WebSocket connection, for either side.

    Args:
        is_client: ``True`` for the client side: outgoing frames are masked and incoming
            frames must not be. ``False`` for the server: the reverse.
        state: The initial state. :class:`~syncws.protocol.server.ServerProtocol` and
            :class:`~syncws.protocol.client.ClientProtocol` start in ``CONNECTING`` and run
            the opening handshake; integrations that did the handshake themselves start
            in ``OPEN``.
        max_size: The largest message accepted, in bytes, across all its fragments and
            after decompression; ``None`` for no limit. A larger message fails the
            connection with 1009 as soon as a frame header announces it.
        max_fragments: The most frames a received message may have (see
            :data:`DEFAULT_MAX_FRAGMENTS`); one more fails the connection with 1009.
        extensions: The negotiated extensions, in the order of the handshake.

    Attributes:
        state: The current :class:`State`.
        close_rcvd: The close frame received, if any.
        close_sent: The close frame sent, if any.
        close_rcvd_then_sent: Whether the peer started the closing handshake, once both
            frames are known.
        exc: The error that failed the connection, if any (a :class:`ProtocolError` subclass
            for errors of the peer).
        pending_failure: An error of the peer held back until the messages before it are
            consumed, if any: see :meth:`fail_pending`. Read-only.
    """

    # Slots: one Protocol per connection, on the message path. Subclasses that do not
    # declare slots get an instance dict as usual.
    __slots__ = (
        "_buf",
        "_close_transport",
        "_compressed_limit",
        "_decoder",
        "_discard",
        "_limit",
        "_masks",
        "_max_size",
        "_out",
        "_partial_checked",
        "_partial_decoder",
        "_plain_fast",
        "_plain_lengths",
        "_recv_frames",
        "_recv_opcode",
        "_recv_size",
        "_rsv_allowed",
        "_send_fragmenting",
        "close_rcvd",
        "close_rcvd_then_sent",
        "close_sent",
        "exc",
        "extensions",
        "is_client",
        "max_fragments",
        "pending_failure",
        "request",
        "response",
        "state",
        "subprotocol",
    )

    def __init__(
        self,
        *,
        is_client: bool,
        state: State = State.OPEN,
        max_size: int | None = DEFAULT_MAX_SIZE,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
        extensions: Sequence[Extension] = (),
    ) -> None:
        self.is_client = is_client
        self.state = state
        self.max_size = max_size
        self.max_fragments = max_fragments
        self.close_rcvd: Close | None = None
        self.close_sent: Close | None = None
        self.close_rcvd_then_sent: bool | None = None
        self.exc: Exception | None = None
        # The opening handshake, set by ServerProtocol and ClientProtocol.
        self.request: Request | None = None
        self.response: Response | None = None
        self.subprotocol: str | None = None
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._discard = False  # ignore input: after a close frame, or after failing
        self._close_transport = False
        self._masks = _MaskSource() if is_client else None
        # Reading a fragmented message: its opcode, size and frames so far, UTF-8 decoder.
        self._recv_opcode = 0
        self._recv_size = 0
        self._recv_frames = 0
        self._decoder: codecs.IncrementalDecoder | None = None
        # Validating the UTF-8 of a text frame whose payload has only partly arrived (it is
        # always the first frame in _buf): bytes checked so far, and the decoder doing it.
        self._partial_checked = 0
        self._partial_decoder: codecs.IncrementalDecoder | None = None
        # An error of the peer found after messages that this receive_data() returned: it
        # fails the connection once the application has consumed them (fail_pending()).
        self.pending_failure: ProtocolError | None = None
        # Writing a fragmented message.
        self._send_fragmenting = False
        self.extensions: list[Extension] = []
        self._rsv_allowed = 0
        self._set_extensions(extensions)

    @property
    def max_size(self) -> int | None:
        """The largest message accepted, in bytes, ``None`` for no limit; a change applies
        from the next frame header."""
        return self._max_size

    @max_size.setter
    def max_size(self, max_size: int | None) -> None:
        # Every reader compares sizes with these (see frames.size_limit), never with
        # max_size: the shortcuts' table of 7-bit lengths has the limit built in.
        self._max_size = max_size
        self._limit = size_limit(max_size)
        self._compressed_limit = size_limit(max_size, compressed=True)
        self._plain_lengths = _plain_lengths(not self.is_client, self._limit)

    def _set_extensions(self, extensions: Sequence[Extension]) -> None:
        self.extensions = list(extensions)
        self._rsv_allowed = 0
        for extension in self.extensions:
            for bit in extension.rsv_bits:
                self._rsv_allowed |= 0x80 >> bit  # RSV1 is 0x40, RSV2 0x20, RSV3 0x10
        # receive_message() may skip the extensions when none of them changes a whole
        # message that has no RSV bit set (see Extension.plain_messages_unchanged).
        self._plain_fast = all(
            getattr(extension, "plain_messages_unchanged", False) for extension in self.extensions
        )

    # Receiving.

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes received from the network; return the events they complete.

        ``receive_data(b"")`` processes bytes buffered earlier, e.g. frames that arrived with
        the handshake request before the server accepted it.
        """
        events: list[Event] = []
        if self.state is State.CONNECTING:
            rest = self._receive_handshake(data, events)
            if rest is None:
                return events
            data = rest
        if self._discard:
            return events
        buf: bytes | bytearray
        if self._buf:
            self._buf += data
            buf = self._buf
        elif data:
            buf = data
        else:
            return events
        try:
            pos = self._receive_frames(buf, events)
        except ProtocolError as exc:
            if any(type(event) is Message or type(event) is Fragment for event in events):
                # Fail once the application has seen the messages that came before the
                # error, so that it may still answer them (RFC 6455 processes frames in
                # order; Autobahn|Testsuite 3.2, 4.1.3, 5.15...): see fail_pending().
                self.pending_failure = exc
                self._discard = True
                self._buf = bytearray()
            else:
                self.fail(exc.code, str(exc), exc)
            return events
        # Keep what follows the last whole frame, in the buffer (``data`` is not ours).
        if self._discard:
            self._buf = bytearray()
        elif pos == len(buf):
            if buf is self._buf:
                self._buf.clear()
        elif buf is self._buf:
            del self._buf[:pos]
        else:
            self._buf = bytearray(buf[pos:])
        return events

    def _receive_frames(self, buf: bytes | bytearray, events: list[Event]) -> int:
        """:meth:`receive_data`'s loop: append the events of the whole frames at the start
        of ``buf``; return the position of the first incomplete one (or where it stopped to
        discard what follows our close). Raises :exc:`ProtocolError` on an invalid frame."""
        end = len(buf)
        pos = 0
        while end - pos >= 2:
            pos = self._receive_plain(buf, pos, events)  # the common frames, quickly
            if end - pos < 2:
                break
            header = parse_header(buf, pos)
            if header is None:
                break
            b0, length, mask, start = header
            self._check_header(b0, length, mask)
            stop = start + length
            if stop > end:
                if end > start:
                    self._check_partial_text(buf, b0, start, end, mask)
                break
            if self._partial_decoder is not None:
                self._forget_partial_check()
            payload = _unmask_slice(buf, start, stop, mask)
            pos = stop
            if b0 & 0x08:
                self._receive_control(b0 & 0x0F, payload, events)
                if self._discard:
                    break
            else:
                self._receive_data_frame(b0, payload, events)
        return pos

    def _check_header(self, b0: int, length: int, mask: bytes | None) -> None:
        """Check a frame header before its payload arrives (RFC 6455 §5.2-§5.5)."""
        if (mask is None) is not self.is_client:
            raise ProtocolError("masked frame from server" if self.is_client else "unmasked frame")
        opcode = b0 & 0x0F
        if opcode >= 8:
            if opcode > 10:
                raise ProtocolError(f"reserved opcode {opcode}")
            if b0 & 0x70:
                raise ProtocolError("reserved bits set in a control frame")
            if not b0 & 0x80:
                raise ProtocolError("fragmented control frame")
            if length > MAX_CONTROL_PAYLOAD:
                raise ProtocolError("control frame longer than 125 bytes")
            return
        if opcode > 2:
            raise ProtocolError(f"reserved opcode {opcode}")
        if b0 & 0x70 & ~self._rsv_allowed:
            raise ProtocolError("reserved bits set")
        if opcode == 0:
            if not self._recv_opcode:
                raise ProtocolError("continuation frame outside a fragmented message")
            if self._recv_frames >= self.max_fragments:
                raise PayloadTooBig(
                    f"message of more than max_fragments={self.max_fragments} frames"
                )
        elif self._recv_opcode:
            raise ProtocolError("new message before the end of a fragmented message")
        # A compressed frame (or a continuation, which has RSV1 clear even in a compressed
        # message) is checked again after decompression, by the extension and
        # _decode_extensions.
        if b0 & 0x40 or (opcode == 0 and self._rsv_allowed & 0x40):
            limit = self._compressed_limit
        else:
            limit = self._limit
        if self._recv_size + length > limit:
            raise PayloadTooBig(
                f"message of at least {self._recv_size + length} bytes exceeds "
                f"max_size={self._max_size}"
            )

    def _receive_data_frame(self, b0: int, payload: bytes, events: list[Event]) -> None:
        opcode = b0 & 0x0F
        fin = b0 & 0x80
        if self.extensions:
            payload = self._decode_extensions(b0, payload)
        if opcode == Opcode.CONT:
            self._recv_size += len(payload)
            self._recv_frames += 1
            final = bool(fin)
            data: str | bytes = (
                self._decode_text(payload, final) if self._recv_opcode == Opcode.TEXT else payload
            )
            if final:
                self._recv_opcode = 0
                self._recv_size = 0
                self._decoder = None
            events.append(Fragment(data, final))
        elif fin:
            if opcode == Opcode.TEXT:
                try:
                    events.append(Message(payload.decode()))
                except UnicodeDecodeError:
                    raise ProtocolError("invalid UTF-8 in text message", code=1007) from None
            else:
                events.append(Message(payload))
        else:
            self._recv_opcode = opcode
            self._recv_size = len(payload)
            self._recv_frames = 1
            if opcode == Opcode.TEXT:
                self._decoder = codecs.getincrementaldecoder("utf-8")()
                events.append(Fragment(self._decode_text(payload, False), False))
            else:
                events.append(Fragment(payload, False))

    def _decode_extensions(self, b0: int, payload: bytes) -> bytes:
        frame = Frame(
            Opcode(b0 & 0x0F),
            payload,
            fin=bool(b0 & 0x80),
            rsv1=bool(b0 & 0x40),
            rsv2=bool(b0 & 0x20),
            rsv3=bool(b0 & 0x10),
        )
        left = self._limit - self._recv_size
        try:
            for extension in reversed(self.extensions):
                frame = extension.decode(frame, max_size=None if self._max_size is None else left)
        except PayloadTooBig as exc:
            # An extension knows only what is left of max_size for this frame (less than
            # max_size in a fragmented message): the reason names the limit the user set.
            raise PayloadTooBig(
                f"message exceeds max_size={self._max_size} once decompressed"
            ) from exc
        if len(frame.data) > left:
            raise PayloadTooBig(f"message exceeds max_size={self._max_size} after decoding")
        return frame.data

    def _decode_text(self, payload: bytes, final: bool) -> str:
        """Decode one fragment of a text message, failing on the first invalid byte."""
        assert self._decoder is not None
        return _decode_strict(self._decoder, payload, final)

    def _forget_partial_check(self) -> None:
        """Drop the state of :meth:`_check_partial_text`: the frame is complete."""
        self._partial_checked = 0
        self._partial_decoder = None

    def _check_partial_text(
        self, buf: bytes | bytearray, b0: int, start: int, end: int, mask: bytes | None
    ) -> None:
        """Validate the UTF-8 of the part of a text frame received so far (fail fast, even
        inside one frame: Autobahn|Testsuite 6.4.3, 6.4.4). Each byte is checked once here,
        and once more when the frame is complete. Frames of other messages, and compressed
        ones, are left alone."""
        opcode = b0 & 0x0F
        if (
            b0 & 0x40
            # A continuation may belong to a compressed message (RSV1 is on its first frame
            # only): its bytes are UTF-8 only once decompressed.
            or (opcode == Opcode.CONT and self._rsv_allowed & 0x40)
            or not (
                opcode == Opcode.TEXT
                or (opcode == Opcode.CONT and self._recv_opcode == Opcode.TEXT)
            )
        ):
            return
        checked = self._partial_checked
        if end - start <= checked:
            return
        decoder = self._partial_decoder
        if decoder is None:
            decoder = self._partial_decoder = codecs.getincrementaldecoder("utf-8")()
            if opcode == Opcode.CONT:
                assert self._decoder is not None  # a text message is in progress
                decoder.setstate(self._decoder.getstate())
        chunk = buf[start + checked : end]
        if mask is not None:
            chunk = apply_mask(chunk, mask, checked)
        self._partial_checked = end - start
        _decode_strict(decoder, chunk, False)

    def _receive_control(self, opcode: int, payload: bytes, events: list[Event]) -> None:
        if opcode == Opcode.PING:
            # No frame may follow our close frame (§5.5.1), not even a pong.
            if self.close_sent is None:
                self.queue_frame(0x8A, payload)
            events.append(Ping(payload))
        elif opcode == Opcode.PONG:
            events.append(Pong(payload))
        else:
            close = Close.parse(payload)
            self.close_rcvd = close
            if self.close_sent is None:
                # Echo the peer's code and reason, as §5.5.1 suggests (and as websockets and
                # Node's ws do: clients show the reason); an empty close answers an empty one.
                self.close_sent = close
                self.close_rcvd_then_sent = True
                self.queue_frame(0x88, self.close_sent.serialize())
            else:
                self.close_rcvd_then_sent = False
            self.state = State.CLOSING
            self._discard = True
            # The server closes the TCP connection first (§7.1.1); a client waits for it.
            if not self.is_client:
                self._close_transport = True
            events.append(close)

    def receive_eof(self) -> list[Event]:
        """Report that the TCP connection ended (the peer closed it, or the I/O layer did).

        Moves to ``CLOSED``. Without a close frame from the peer, the connection ends with
        1006 (:attr:`close_code`).
        """
        if self.state is State.CONNECTING:
            self._receive_handshake_eof()
        if self.pending_failure is not None:
            if self.exc is None:
                self.exc = self.pending_failure
            self.pending_failure = None
        self.state = State.CLOSED
        self._discard = True
        self._buf = bytearray()
        return []

    def _receive_handshake(self, data: bytes, events: list[Event]) -> bytes | None:
        """Consume the opening handshake (in subclasses).

        Returns:
            The bytes that follow the handshake once the connection is open, else ``None``.
        """
        raise NotImplementedError

    def _receive_handshake_eof(self) -> None:
        """Handle the TCP connection ending during the opening handshake (in subclasses)."""
        raise NotImplementedError

    # Sending.

    def _check_can_send(self) -> None:
        if self.state is not _OPEN:
            if self.state is State.CONNECTING:
                raise RuntimeError("cannot send before the opening handshake completes")
            raise self.closed_exception()

    def _send_data(self, opcode: int, data: bytes, fin: bool) -> None:
        b0, payload = self.prepare_frame(opcode, data, fin)
        self.queue_frame(b0, payload)

    def prepare_frame(self, opcode: int, data: bytes, fin: bool = True) -> tuple[int, bytes]:
        """The first half of sending a data frame: check it may be sent and run the
        extensions on it (compression). :meth:`queue_frame` is the second half;
        :meth:`send_text` and the other ``send_*`` methods do both.

        This half touches only the sending side of the protocol (the fragmentation state and
        the compressor), never the state shared with receiving, so an I/O layer may run it,
        with the time compression takes, outside the lock under which it feeds received
        bytes; it must then queue the frames in the order they were prepared (the
        compressor's state follows that order), and must queue every prepared frame unless
        the connection closes meanwhile.

        Args:
            opcode: :attr:`~syncws.protocol.frames.Opcode.TEXT`, ``BINARY`` or ``CONT``.
            data: The payload; UTF-8 already for text.
            fin: ``False`` for a frame that a continuation will follow.

        Returns:
            The frame's first byte (FIN, RSV bits, opcode) and its payload, for
            :meth:`queue_frame`.

        Raises:
            ConnectionClosed: The closing handshake has started.
            RuntimeError: The frame doesn't fit the fragmentation sequence (a continuation
                without a fragmented message, a new message inside one).
        """
        if self.state is not _OPEN:
            self._check_can_send()
        if opcode == Opcode.CONT:
            if not self._send_fragmenting:
                raise RuntimeError("no fragmented message to continue")
        elif self._send_fragmenting:
            raise RuntimeError("a fragmented message is in progress")
        self._send_fragmenting = not fin
        if not self.extensions:
            return (opcode | 0x80 if fin else opcode), data
        frame = Frame(Opcode(opcode), data, fin=fin)
        for extension in self.extensions:
            frame = extension.encode(frame)
        b0 = frame.opcode | (0x80 if frame.fin else 0)
        b0 |= (0x40 if frame.rsv1 else 0) | (0x20 if frame.rsv2 else 0)
        b0 |= 0x10 if frame.rsv3 else 0
        return b0, frame.data

    def queue_frame(self, b0: int, data: bytes) -> None:
        """The second half of sending a data frame: queue what :meth:`prepare_frame`
        returned for :meth:`data_to_send` (masking it on the client side). Control frames
        are queued here too.

        A frame of 64 KiB or more (a 64-bit length) is queued as its header and its payload,
        which is not copied (see :meth:`buffers_to_send`).

        Raises:
            ConnectionClosed: The closing handshake has started since the frame was
                prepared; the frame is dropped.
        """
        if self.state is not _OPEN:
            self._check_can_send()
        n = len(data)
        masks = self._masks
        if masks is None:
            header = encode_header(b0, n)
            if n < _SPLIT_THRESHOLD:
                self._out.append(header + data)
            else:
                self._out += (header, data)
            return
        mask: bytes = masks.next()
        header = encode_header(b0, n, mask)
        if n < _SPLIT_THRESHOLD:
            self._out.append(_mask_frame(header, data, mask))
        else:
            self._out += (header, apply_mask(data, mask))

    def send_text(self, data: bytes, fin: bool = True) -> None:
        """Send a text frame; ``data`` is already UTF-8 encoded.

        With ``fin=False``, the frame starts a fragmented message, which
        :meth:`send_continuation` continues and ends.

        Raises:
            ConnectionClosed: The closing handshake has started.
        """
        self._send_data(Opcode.TEXT, data, fin)

    def send_binary(self, data: bytes, fin: bool = True) -> None:
        """Send a binary frame. See :meth:`send_text` for ``fin``."""
        self._send_data(Opcode.BINARY, data, fin)

    def send_continuation(self, data: bytes, fin: bool) -> None:
        """Send the next frame of a fragmented message; ``fin=True`` ends it."""
        self._send_data(Opcode.CONT, data, fin)

    def _send_control(self, b0: int, data: bytes) -> None:
        self._check_can_send()
        if len(data) > MAX_CONTROL_PAYLOAD:
            raise ValueError("control frame payload longer than 125 bytes")
        self.queue_frame(b0, data)

    def send_ping(self, data: bytes) -> None:
        """Send a ping (at most 125 bytes)."""
        self._send_control(0x89, data)

    def send_pong(self, data: bytes) -> None:
        """Send an unsolicited pong (at most 125 bytes)."""
        self._send_control(0x8A, data)

    def send_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (RFC 6455 §7.1.2); a no-op once it has started.

        Raises:
            ValueError: The code may not be sent, or the reason is longer than 123 bytes.
        """
        if self.state is not _OPEN:
            return
        if self.fail_pending():
            return
        close = Close(code, reason)
        payload = close.serialize()
        self.close_sent = close
        self.queue_frame(0x88, payload)
        self.state = State.CLOSING

    def fail(self, code: int, reason: str = "", exc: Exception | None = None) -> None:
        """Fail the connection (RFC 6455 §7.1.7): send a close frame if none was sent yet,
        ignore further input, and ask the I/O layer to close the TCP connection.

        Args:
            code: The close code, e.g. 1002, 1007, 1009 or 1011.
            reason: The close reason, truncated to fit in a close frame.
            exc: The error that caused it, kept in :attr:`exc`.
        """
        if self.exc is None:
            self.exc = exc
        if self.state is _OPEN:
            encoded = reason.encode("utf-8")[: MAX_CONTROL_PAYLOAD - 2]
            close = Close(code, encoded.decode("utf-8", "ignore"))
            self.close_sent = close
            self.queue_frame(0x88, close.serialize())
        if self.state is not State.CLOSED:
            self.state = State.CLOSING
        self._discard = True
        self._close_transport = True

    def fail_pending(self) -> bool:
        """Fail the connection for an error of the peer held back by :meth:`receive_data`.

        When the bytes given to :meth:`receive_data` hold whole messages followed by an
        error, it returns the messages and ignores further input, but keeps the connection
        open: the application may still answer the messages. The I/O layer calls this once
        the application has consumed them (it wants the next message, or it closes); the
        connection then fails as it would have at once. :meth:`send_close` calls it too.

        Returns:
            Whether an error was pending (the close frame is now queued).
        """
        exc = self.pending_failure
        if exc is None:
            return False
        self.pending_failure = None
        self.fail(exc.code, str(exc), exc)
        return True

    @property
    def sending_fragments(self) -> bool:
        """Whether a fragmented message is being sent (no other message may start)."""
        return self._send_fragmenting

    def buffered_output(self) -> int:
        """How many bytes wait in :meth:`data_to_send`."""
        return sum(map(len, self._out))

    def has_data_to_send(self) -> bool:
        """Whether :meth:`data_to_send` would return bytes."""
        return bool(self._out)

    def buffers_to_send(self) -> list[bytes]:
        """Like :meth:`data_to_send`, as a list of buffers to write in order (e.g. with
        ``socket.sendmsg``): a large frame's payload is not copied behind its header."""
        out = self._out
        self._out = []
        return out

    def data_to_send(self) -> bytes:
        """Return (and forget) the bytes to write to the network, ``b""`` if there are none."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    # What the I/O layer should do.

    def close_expected(self) -> bool:
        """Whether the peer is expected to end the connection soon.

        True from the moment a close frame is sent or received: the I/O layer should then
        bound the wait for the TCP close with its close timeout.
        """
        return self.state is State.CLOSING

    def should_close_transport(self) -> bool:
        """Whether the I/O layer should close the TCP connection now (after writing
        :meth:`data_to_send`): a server after the closing handshake, either side after
        failing the connection or rejecting the handshake.
        """
        return self._close_transport

    @property
    def close_code(self) -> int | None:
        """The close code of the connection once closed: the peer's, or 1006 if none came."""
        if self.state is not State.CLOSED:
            return None
        return CloseCode.ABNORMAL_CLOSURE if self.close_rcvd is None else self.close_rcvd.code

    @property
    def close_reason(self) -> str | None:
        """The close reason of the connection once closed (``""`` if none came)."""
        if self.state is not State.CLOSED:
            return None
        return "" if self.close_rcvd is None else self.close_rcvd.reason

    def closed_exception(self) -> ConnectionClosed:
        """The exception to raise when using the connection after it closed.

        :class:`~syncws.exceptions.ConnectionClosedOK` when both close frames carried 1000,
        1001 or no code; :class:`~syncws.exceptions.ConnectionClosedError` otherwise.
        """
        rcvd, sent = self.close_rcvd, self.close_sent
        ok = rcvd is not None and rcvd.code in _OK_CODES
        ok = ok and (sent is None or sent.code in _OK_CODES)
        cls = ConnectionClosedOK if ok else ConnectionClosedError
        exc = cls(rcvd, sent, self.close_rcvd_then_sent)
        exc.__cause__ = self.exc
        return exc


def _decode_strict(decoder: codecs.IncrementalDecoder, data: bytes | bytearray, final: bool) -> str:
    """Decode ``data`` with an incremental UTF-8 decoder, failing on the first invalid byte."""
    try:
        text: str = decoder.decode(data, final)
    except UnicodeDecodeError:
        raise ProtocolError("invalid UTF-8 in text message", code=1007) from None
    # CPython's decoder waits for the third byte of ED xx: a lead ED followed by A0..BF
    # is already a UTF-16 surrogate, invalid in UTF-8 (RFC 3629), so fail now.
    pending = decoder.getstate()[0]
    if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
        raise ProtocolError("invalid UTF-8 in text message", code=1007)
    return text
