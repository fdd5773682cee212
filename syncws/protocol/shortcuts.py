"""Single-call paths for the most common cases of receiving and sending a message.

The :class:`~syncws.protocol.connection.Protocol` state machine handles every frame in
general; the I/O layer's message path mostly sees one whole small message per read, one
whole message per send, and sometimes a large message. These methods do exactly
that in one call each, and decline (return ``None``, changing nothing) whenever the
general path is needed; the tests check that both paths agree on the same bytes.
:class:`~syncws.protocol.connection.Protocol` inherits them.

They take the rules of the wire format from :mod:`~syncws.protocol.frames`, the codec: they
write headers with its table and struct, read the second byte of a header with its table
(the length form, the MASK bit, the size limit for 7-bit lengths), and compare 16-bit
lengths with the limit that its :func:`~syncws.protocol.frames.size_limit` computed, and
mask small payloads with the short branch of :func:`~syncws.protocol.mask.apply_mask`. What
is theirs is the choice of frames they take: whole text and binary messages with no RSV
bit (first byte ``0x81`` or ``0x82``), everything else being left to the general path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import ProtocolError
from .events import Event, Message, PayloadRead, State
from .frames import (
    _FOLLOWS_16,
    _LENGTH_16,
    _MASKED_LENGTH_16,
    _MAX_LENGTH_7,
    _MAX_LENGTH_16,
    _SHORT_HEADERS,
    _pack_header16,
    _pack_header16_masked,
    parse_header,
)
from .mask import _mask_frame, _mask_short, _unmask_slice

if TYPE_CHECKING:
    import codecs

    from .extensions import Extension

__all__ = ["BULK_THRESHOLD", "Shortcuts"]

#: Payload size from which :meth:`Shortcuts.start_payload_read` offers a message to
#: be read straight into its final buffer.
BULK_THRESHOLD = 65536

# Data frames from this size on, those with a 64-bit length, are queued as a header and a
# payload (see Protocol.buffers_to_send): frame_message() leaves them to the general path.
_SPLIT_THRESHOLD = _MAX_LENGTH_16 + 1

# Enum members are looked up through EnumType.__getattr__ (about 4x a plain attribute in
# CPython 3.11): the message path uses this module-level alias.
_OPEN = State.OPEN


class Shortcuts:
    """The shortcuts, as methods of :class:`~syncws.protocol.connection.Protocol`."""

    __slots__ = ()

    # Protocol's state, which these methods read (and, when they apply, update).
    state: State
    extensions: list[Extension]
    _buf: bytearray
    _out: list[bytes]
    _discard: bool
    _limit: int  # frames.size_limit(max_size)
    _plain_lengths: tuple[int, ...]  # frames._plain_lengths() for this side and limit
    _recv_opcode: int
    _plain_fast: bool
    _send_fragmenting: bool
    _masks: Any  # a _MaskSource on the client side, None on the server side
    _decoder: codecs.IncrementalDecoder | None
    _partial_decoder: codecs.IncrementalDecoder | None

    def fail(self, code: int, reason: str = "", exc: Exception | None = None) -> None:
        raise NotImplementedError

    def _forget_partial_check(self) -> None:
        raise NotImplementedError

    def receive_message(self, data: bytes) -> str | bytes | None:
        """A shortcut for :meth:`receive_data`, for the most common input: ``data`` is exactly
        one whole, unfragmented text or binary frame with no RSV bit set, and nothing is
        buffered. Returns that message (``str`` or ``bytes``, as :class:`Message` would hold
        it) in one call, with no event objects.

        For any other input, including every kind of invalid frame, it consumes nothing
        and returns ``None``: call :meth:`receive_data` with the same bytes, which handles
        them (and fails the connection when they are invalid).
        """
        if (
            self._buf
            or self._discard
            or self._recv_opcode
            or self.state is not _OPEN
            or not self._plain_fast
        ):
            return None
        end = len(data)
        b0 = data[0] if end > 1 else 0
        if b0 != 0x82 and b0 != 0x81:
            return None
        payload: bytes | None
        # The common frames: a 7-bit length, which the frame's size gives, after a header of
        # 6 bytes (masked, from a client) or 2. The table of the codec says whether the
        # second byte gives that length, with the MASK bit this side expects, within the
        # size limit (never when the length is negative: see frames._plain_lengths).
        if self._masks is None:  # server: the frame must be masked
            length = end - 6
            if self._plain_lengths[data[1]] == length:
                payload = _mask_short(data[6:], data[2:6], length)
            else:
                payload = self._unframe_long(data, 6)
        else:
            length = end - 2
            if self._plain_lengths[data[1]] == length:
                payload = data[2:]
            else:
                payload = self._unframe_long(data, 2)
        if payload is None:
            return None
        if b0 == 0x82:
            return payload
        try:
            return payload.decode()
        except UnicodeDecodeError:
            return None

    def _receive_plain(self, buf: bytes | bytearray, pos: int, events: list[Event]) -> int:
        """:meth:`receive_data`'s loop for its most common frames, which come several per
        read when the peer sends faster than the application reads (pipelining, bursts).

        From ``buf[pos]`` on, append a :class:`Message` for each whole, unfragmented text or
        binary frame with no RSV bit and a 7- or 16-bit length, masked as it must be, within
        ``max_size`` and, for text, valid UTF-8; return the position of the first frame that
        is anything else, or incomplete, which the general loop then handles (and fails the
        connection on, if it is invalid). Such a frame changes no state but the buffer, so
        this applies only when there is none to change: the connection is open, no
        fragmented message is in progress, no extension changes plain messages and no partial
        text frame was checked. The tests check that both loops agree on the same bytes.
        """
        if (
            self._recv_opcode
            or self.state is not _OPEN
            or not self._plain_fast
            or self._partial_decoder is not None
        ):
            return pos
        end = len(buf)
        lengths = self._plain_lengths
        limit = self._limit
        server = self._masks is None
        payload: bytes
        message: str | bytes
        while end - pos >= 2:
            b0 = buf[pos]
            if b0 != 0x82 and b0 != 0x81:
                break
            # The codec's table checks the MASK bit and a 7-bit length against the limit.
            length = lengths[buf[pos + 1]]
            start = pos + 2
            if length < 0:
                if length != _FOLLOWS_16 or end - start < 2:
                    break  # a 64-bit length (a large message), a wrong MASK bit, too big
                length = buf[start] << 8 | buf[start + 1]
                if length > limit:
                    break
                start += 2
            stop = start + length + 4 if server else start + length
            if stop > end:
                break
            if not server:
                payload = bytes(buf[start:stop])
            elif length <= _MAX_LENGTH_7:
                payload = _mask_short(buf[start + 4 : stop], buf[start : start + 4], length)
            else:
                payload = _unmask_slice(buf, start + 4, stop, bytes(buf[start : start + 4]))
            if b0 == 0x82:
                message = payload
            else:
                try:
                    message = payload.decode()
                except UnicodeDecodeError:
                    break  # the general loop fails the connection with 1007
            events.append(Message(message))
            pos = stop
        return pos

    def _unframe_long(self, data: bytes, start: int) -> bytes | None:
        """:meth:`receive_message`'s payload for a frame with a 16-bit length, starting at
        ``start`` + 2 (``start`` is 6 when masked, 2 when not); ``None`` for anything else."""
        end = len(data)
        if end < start + 2 or self._plain_lengths[data[1]] != _FOLLOWS_16:
            return None  # a 7-bit length that does not match, a 64-bit one, a short header
        length = data[2] << 8 | data[3]
        start += 2
        if start + length != end or length > self._limit:
            return None
        if start == 4:  # not masked
            return data[start:]
        return _unmask_slice(data, start, end, data[start - 4 : start])

    def start_payload_read(self) -> PayloadRead | None:
        """Hand the rest of a large message over to the I/O layer.

        When what is buffered is the beginning of one whole, unfragmented, uncompressed
        binary or text message of at least :data:`BULK_THRESHOLD` bytes (its header was
        checked, e.g. against ``max_size``, when it arrived), this takes it out of the
        buffer and returns what the I/O layer needs to read the rest of the payload straight
        into the buffer of the final message, with no intermediate copies: it reads ``size -
        len(received)`` more bytes, unmasks the whole payload (``received`` first) and
        passes it to :meth:`finish_payload_read`. Returns ``None`` otherwise.

        The UTF-8 of a text message is then checked once it is complete, by
        :meth:`finish_payload_read`, rather than as its bytes arrive.
        """
        buf = self._buf
        if (
            len(buf) < 4
            or (buf[0] != 0x82 and buf[0] != 0x81)
            or self._discard
            or self._recv_opcode
            or self.state is not _OPEN
            or not self._plain_fast  # an extension may change a message with no RSV bit
        ):
            return None
        header = parse_header(buf)
        if header is None:
            return None
        b0, length, mask, start = header
        if length < BULK_THRESHOLD or start + length <= len(buf):
            return None
        read = PayloadRead(length, bytes(buf[start:]), mask, b0 == 0x81)
        buf.clear()
        # The part of a text frame checked as it arrived: the whole payload is checked at
        # the end instead.
        self._forget_partial_check()
        return read

    def finish_payload_read(self, read: PayloadRead, payload: bytes) -> list[Event]:
        """Complete the message of :meth:`start_payload_read` with its whole ``payload``,
        unmasked; return the events, as :meth:`receive_data` would have.

        Invalid UTF-8 in a text message fails the connection with 1007 and returns no event.
        """
        if len(payload) != read.size:
            raise ValueError(f"expected {read.size} bytes of payload, got {len(payload)}")
        if self._discard:
            return []
        if not read.text:
            return [Message(payload)]
        try:
            return [Message(payload.decode())]
        except UnicodeDecodeError:
            exc = ProtocolError("invalid UTF-8 in text message", code=1007)
            self.fail(exc.code, str(exc), exc)
            return []

    def frame_message(self, opcode: int, data: bytes) -> bytes | None:
        """A shortcut for sending a whole message: return its frame, for the caller to write
        at once, instead of queueing it for :meth:`data_to_send`.

        It applies when the connection is open, nothing is queued, no fragmented message is
        being sent, no extension is active and the payload is under 64 KiB. Otherwise it
        returns ``None`` and changes nothing: use :meth:`send_text` or :meth:`send_binary`.

        Args:
            opcode: :attr:`~syncws.protocol.frames.Opcode.TEXT` or ``BINARY``.
            data: The payload; UTF-8 already for text.
        """
        if self._out or self.extensions or self._send_fragmenting or self.state is not _OPEN:
            return None
        n = len(data)
        masks = self._masks
        # The headers of frames.encode_header(), without that call: from its table, or
        # with its struct for a 16-bit length.
        if n <= _MAX_LENGTH_7:
            if masks is None:
                return _SHORT_HEADERS[opcode][n] + data
            mask: bytes = masks.next()
            return _SHORT_HEADERS[opcode + 2][n] + mask + _mask_short(data, mask, n)
        if n >= _SPLIT_THRESHOLD:
            return None
        if masks is None:
            return _pack_header16(0x80 | opcode, _LENGTH_16, n) + data
        mask = masks.next()
        header = _pack_header16_masked(0x80 | opcode, _MASKED_LENGTH_16, n, mask)
        return _mask_frame(header, data, mask)
