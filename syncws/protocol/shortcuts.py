"""Single-call paths for the most common cases of receiving and sending a message.

The :class:`~syncws.protocol.connection.Protocol` state machine handles every frame in
general; the I/O layer's message path mostly sees one whole small message per read, one
whole message per send, and sometimes a large message. These methods do exactly
that in one call each, and decline (return ``None``, changing nothing) whenever the
general path is needed; the tests check that both paths agree on the same bytes.
:class:`~syncws.protocol.connection.Protocol` inherits them.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from ..exceptions import ProtocolError
from .events import Event, Message, PayloadRead, State
from .frames import parse_header
from .mask import _mask_frame, apply_mask

if TYPE_CHECKING:
    import codecs

    from .extensions import Extension

__all__ = ["BULK_THRESHOLD", "Shortcuts"]

#: Payload size from which :meth:`Shortcuts.start_payload_read` offers a message to
#: be read straight into its final buffer.
BULK_THRESHOLD = 65536

# Payloads above this size are unmasked through a memoryview of the receive buffer, which
# saves one copy; below it, slicing is cheaper than creating the view.
_VIEW_THRESHOLD = 4096

# Data frames from this size on are queued as a header and a payload (see
# Protocol.buffers_to_send): frame_message() leaves them to the general path.
_SPLIT_THRESHOLD = 65536

# Enum members are looked up through EnumType.__getattr__ (about 4x a plain attribute in
# CPython 3.11): the message path uses this module-level alias.
_OPEN = State.OPEN

_from_bytes = int.from_bytes

# The header of a client's frame of 126..65535 bytes, masking key included.
_pack_header16 = struct.Struct("!BBH4s").pack

# The two bytes that start a text (opcode 1) or binary (2) frame of 0..125 bytes, by
# opcode and length; masked at opcode + 2.
_HEADERS = [[b""] * 126] + [
    [bytes((0x80 | opcode, mask_bit | n)) for n in range(126)]
    for mask_bit in (0, 0x80)
    for opcode in (1, 2)
]


class Shortcuts:
    """The shortcuts, as methods of :class:`~syncws.protocol.connection.Protocol`."""

    __slots__ = ()

    # Protocol's state, which these methods read (and, when they apply, update).
    state: State
    max_size: int | None
    extensions: list[Extension]
    _buf: bytearray
    _out: list[bytes]
    _discard: bool
    _recv_opcode: int
    _plain_fast: bool
    _send_fragmenting: bool
    _masks: Any  # a _MaskSource on the client side, None on the server side
    _decoder: codecs.IncrementalDecoder | None
    _partial_decoder: codecs.IncrementalDecoder | None

    def _frame(self, b0: int, data: bytes) -> bytes:
        raise NotImplementedError

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
        max_size = self.max_size
        payload: bytes | None
        # The common frames: a payload of 0..125 bytes, which the frame's size gives; the
        # second byte must then be the mask bit (from clients only) and that size (never
        # equal when the size is negative).
        if self._masks is None:  # server: the frame must be masked
            length = end - 6
            if data[1] == 0x80 | length and length < 126:
                if max_size is not None and length > max_size:
                    return None
                # apply_mask(), inline: XOR of two integers (this is the whole message path),
                # big-endian, the default byte order (Python 3.11+), which saves arguments.
                key = _from_bytes((data[2:6] * 32)[:length])
                payload = (_from_bytes(data[6:]) ^ key).to_bytes(length)
            else:
                payload = self._unframe_long(data, 6)
        else:
            length = end - 2
            if data[1] == length and length < 126:
                if max_size is not None and length > max_size:
                    return None
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
        max_size = self.max_size
        server = self._masks is None
        payload: bytes
        message: str | bytes
        while end - pos >= 2:
            b0 = buf[pos]
            if b0 != 0x82 and b0 != 0x81:
                break
            # A server's frames must have the mask bit, a client's must not: the other case
            # gives a length above 127 here.
            length = buf[pos + 1] ^ 0x80 if server else buf[pos + 1]
            start = pos + 2
            if length >= 126:
                if length > 126 or end - start < 2:
                    break  # a 64-bit length (for a large message), or a mask bit off
                length = buf[start] << 8 | buf[start + 1]
                start += 2
            stop = start + length + 4 if server else start + length
            if stop > end or (max_size is not None and length > max_size):
                break
            if not server:
                payload = bytes(buf[start:stop])
            elif length <= 125:
                # apply_mask(), inline, as in receive_message()
                key = _from_bytes((buf[start : start + 4] * 32)[:length])
                payload = (_from_bytes(buf[start + 4 : stop]) ^ key).to_bytes(length)
            elif length > _VIEW_THRESHOLD:
                with memoryview(buf) as view:
                    payload = apply_mask(view[start + 4 : stop], bytes(buf[start : start + 4]))
            else:
                payload = apply_mask(buf[start + 4 : stop], bytes(buf[start : start + 4]))
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
        masked = start == 6
        if end < start + 2 or data[1] != (0xFE if masked else 0x7E):
            return None  # a 7-bit length that does not match, a 64-bit one, a short header
        length = _from_bytes(data[2:4], "big")
        start += 2
        if start + length != end or (self.max_size is not None and length > self.max_size):
            return None
        if not masked:
            return data[start:]
        if length > _VIEW_THRESHOLD:
            with memoryview(data) as view:
                return apply_mask(view[start:], data[start - 4 : start])
        return apply_mask(data[start:], data[start - 4 : start])

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
        if n < 126:
            if masks is None:
                return _HEADERS[opcode][n] + data
            # A client's frame, masked inline as in receive_message().
            mask: bytes = masks.next()
            masked = (_from_bytes(data) ^ _from_bytes((mask * 32)[:n])).to_bytes(n)
            return _HEADERS[opcode + 2][n] + mask + masked
        if n >= _SPLIT_THRESHOLD:
            return None
        if masks is None:
            return self._frame(0x80 | opcode, data)
        # A client's frame, as Protocol._frame() builds it (here without that call).
        mask = masks.next()
        return _mask_frame(_pack_header16(0x80 | opcode, 0xFE, n, mask), data, mask)
