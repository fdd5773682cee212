"""Frames and close payloads of RFC 6455 §5 and §7: the frame codec.

This module holds the wire format of one frame, the rules of close frames and the size rule
of ``max_size``; the rest of the package reads and writes frames with its pieces.

Writing
   :func:`encode_header` is the only code that lays a header out (the 7-, 16- and 64-bit
   length forms and the MASK bit). The connection queues every frame with it
   (:meth:`~syncws.protocol.connection.Protocol.queue_frame`), and
   :meth:`~syncws.protocol.shortcuts.Shortcuts.frame_message` takes the headers of whole
   small messages from a table that it filled, and the 16-bit form from the same struct.

Reading
   :func:`parse_header` parses any header; :mod:`~syncws.protocol.connection` then checks it
   against the connection's state (opcodes, fragmentation, RSV bits, masking direction,
   ``max_size``) before the payload has arrived. The shortcuts of
   :mod:`~syncws.protocol.shortcuts`, which read the most common frames without that call,
   recognise their second byte with a table that :func:`parse_header` computed, for the
   connection's masking direction and size limit. :func:`parse_frame` reads a whole frame,
   for tests and tools.

Size
   :func:`size_limit` turns ``max_size`` into the number of bytes a message may reach; every
   reader compares sizes with what it returned, and no other code reads ``max_size``.

Masking
   Payloads are masked and unmasked by :func:`~syncws.protocol.mask.apply_mask`. Payloads
   of at most 125 bytes, every small message and every control frame, go through its one
   short branch, ``mask._mask_short`` (an XOR of two Python integers), which the shortcuts
   call directly.

The tests check that each shortcut gives what the general code gives, on the same bytes.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import struct

from ..exceptions import ProtocolError
from .mask import apply_mask

__all__ = [
    "CLOSE_CODE_EXPLANATIONS",
    "CONTROL_OPCODES",
    "DATA_OPCODES",
    "MAX_CONTROL_PAYLOAD",
    "Close",
    "CloseCode",
    "Frame",
    "Opcode",
    "encode_header",
    "parse_frame",
    "parse_header",
    "serialize_frame",
    "size_limit",
]


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 §5.2)."""

    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


#: Opcodes of data frames, which may be fragmented.
DATA_OPCODES = frozenset({Opcode.CONT, Opcode.TEXT, Opcode.BINARY})
#: Opcodes of control frames, which are never fragmented and carry at most 125 bytes.
CONTROL_OPCODES = frozenset({Opcode.CLOSE, Opcode.PING, Opcode.PONG})
#: Largest payload of a control frame (RFC 6455 §5.5).
MAX_CONTROL_PAYLOAD = 125


class CloseCode(enum.IntEnum):
    """Close codes (RFC 6455 §7.4.1 and the IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005  #: never on the wire: the close frame had no code
    ABNORMAL_CLOSURE = 1006  #: never on the wire: the TCP connection ended without a close
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  #: never on the wire: the TLS handshake failed


#: A short explanation of each known close code, for logs and the CLI.
CLOSE_CODE_EXPLANATIONS: dict[int, str] = {
    1000: "OK",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status received [internal]",
    1006: "connection closed abnormally [internal]",
    1007: "invalid frame payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure [internal]",
}

# Codes an endpoint may put in a close frame: the registered ones except those reserved for
# local use (1005, 1006, 1015), and the ranges for libraries (3000-3999) and applications
# (4000-4999). Anything else in a received close frame is a protocol error (RFC 6455 §7.4).
_WIRE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def _code_allowed_on_wire(code: int) -> bool:
    return code in _WIRE_CODES or 3000 <= code <= 4999


def _explain(code: int) -> str:
    if code in CLOSE_CODE_EXPLANATIONS:
        return CLOSE_CODE_EXPLANATIONS[code]
    if 3000 <= code < 4000:
        return "registered"
    if 4000 <= code < 5000:
        return "private use"
    return "unknown"


@dataclasses.dataclass(slots=True)
class Frame:
    """One WebSocket frame, unmasked.

    Attributes:
        opcode: The frame's opcode.
        data: The payload (unmasked; after extensions on the way in, before on the way out).
        fin: ``True`` on the last frame of a message (always ``True`` for control frames).
        rsv1: The RSV1 bit (permessage-deflate's "compressed" flag).
        rsv2: The RSV2 bit.
        rsv3: The RSV3 bit.
    """

    opcode: Opcode
    data: bytes
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Close:
    """The payload of a close frame (RFC 6455 §5.5.1).

    Attributes:
        code: The close code; 1005 when the frame carried none.
        reason: The close reason (at most 123 bytes once UTF-8 encoded).
    """

    code: int
    reason: str = ""

    def __str__(self) -> str:
        text = f"{self.code} ({_explain(self.code)})"
        return f"{text} {self.reason}" if self.reason else text

    @classmethod
    def parse(cls, data: bytes) -> Close:
        """Parse a close frame's payload.

        Raises:
            ProtocolError: A one-byte payload or a code not allowed on the wire (1002), or a
                reason that is not valid UTF-8 (1007).
        """
        if not data:
            return cls(CloseCode.NO_STATUS_RCVD)
        if len(data) == 1:
            raise ProtocolError("close frame with a one-byte payload")
        code = int.from_bytes(data[:2], "big")
        if not _code_allowed_on_wire(code):
            raise ProtocolError(f"invalid close code {code}")
        try:
            reason = data[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("invalid UTF-8 in close reason", code=1007) from None
        return cls(code, reason)

    def serialize(self) -> bytes:
        """The close frame's payload; empty for code 1005.

        Raises:
            ValueError: The code may not be sent, or the reason is longer than 123 bytes.
        """
        if self.code == CloseCode.NO_STATUS_RCVD:
            if self.reason:
                raise ValueError("a close frame without a code cannot carry a reason")
            return b""
        if not _code_allowed_on_wire(self.code):
            raise ValueError(f"close code {self.code} may not be sent")
        reason = self.reason.encode("utf-8")
        if len(reason) > MAX_CONTROL_PAYLOAD - 2:
            raise ValueError("close reason is longer than 123 bytes")
        return self.code.to_bytes(2, "big") + reason


# The second byte of a header (RFC 6455 §5.2): the MASK bit, then a 7-bit length, whose
# values 126 and 127 say that a 16-bit or a 64-bit length follows.
_MASK_BIT = 0x80
_LENGTH_BITS = 0x7F
_MAX_LENGTH_7 = 125
_LENGTH_16 = 126
_LENGTH_64 = 127
_MAX_LENGTH_16 = 0xFFFF
_MASKED_LENGTH_16 = _MASK_BIT | _LENGTH_16

_pack_header16 = struct.Struct("!BBH").pack
_pack_header16_masked = struct.Struct("!BBH4s").pack
_pack_header64 = struct.Struct("!BBQ").pack
_pack_header64_masked = struct.Struct("!BBQ4s").pack


def encode_header(b0: int, length: int, mask: bytes | None = None) -> bytes:
    """The header of a frame: its first byte, its payload length in the shortest form
    (RFC 6455 §5.2), and its masking key if it is masked.

    Args:
        b0: The first byte: FIN, RSV bits and opcode.
        length: The payload length.
        mask: The 4-byte masking key of a frame sent by a client; ``None`` for a server.
    """
    if length <= _MAX_LENGTH_7:
        if mask is None:
            return bytes((b0, length))
        return bytes((b0, _MASK_BIT | length)) + mask
    if length <= _MAX_LENGTH_16:
        if mask is None:
            return _pack_header16(b0, _LENGTH_16, length)
        return _pack_header16_masked(b0, _MASKED_LENGTH_16, length, mask)
    if mask is None:
        return _pack_header64(b0, _LENGTH_64, length)
    return _pack_header64_masked(b0, _MASK_BIT | _LENGTH_64, length, mask)


# The headers of whole (FIN) text and binary frames of 0.._MAX_LENGTH_7 bytes, by opcode and
# length: _SHORT_HEADERS[opcode][length] unmasked, _SHORT_HEADERS[opcode + 2][length] masked,
# without the masking key that follows. For Shortcuts.frame_message().
_SHORT_HEADERS = [[b""] * (_MAX_LENGTH_7 + 1)] + [
    [encode_header(0x80 | opcode, n, mask)[:2] for n in range(_MAX_LENGTH_7 + 1)]
    for mask in (None, bytes(4))
    for opcode in (Opcode.TEXT, Opcode.BINARY)
]


def serialize_frame(
    opcode: int,
    data: bytes,
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bytes | None = None,
) -> bytes:
    """Build one frame for the wire.

    Args:
        opcode: The opcode.
        data: The payload, unmasked.
        fin: The FIN bit.
        rsv1: The RSV1 bit (set by extensions).
        rsv2: The RSV2 bit.
        rsv3: The RSV3 bit.
        mask: The 4-byte masking key for frames sent by a client; ``None`` for a server.
    """
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    b0 |= (0x20 if rsv2 else 0) | (0x10 if rsv3 else 0)
    header = encode_header(b0, len(data), mask)
    if mask is None:
        return header + data
    return header + apply_mask(data, mask)


def parse_header(
    data: bytes | bytearray, pos: int = 0
) -> tuple[int, int, bytes | None, int] | None:
    """Parse the header of the frame that starts at ``data[pos]``.

    The connection calls it on its receive buffer, then checks the header (opcode, RSV bits,
    masking direction, limits) before the payload has arrived, which is how ``max_size`` is
    enforced without buffering an oversize payload. The shortcuts read the common headers
    with a table that this function computed.

    Returns:
        ``None`` if the header is incomplete, else ``(first_byte, payload_length, mask,
        payload_start)`` where ``mask`` is the 4-byte masking key or ``None``.

    Raises:
        ProtocolError: The 64-bit length has its most significant bit set (§5.2).
    """
    end = len(data)
    if end - pos < 2:
        return None
    b1 = data[pos + 1]
    length = b1 & _LENGTH_BITS
    start = pos + 2
    if length > _MAX_LENGTH_7:
        if length == _LENGTH_16:
            start += 2
            if end < start:
                return None
            length = int.from_bytes(data[pos + 2 : start], "big")
        else:
            start += 8
            if end < start:
                return None
            length = int.from_bytes(data[pos + 2 : start], "big")
            if length >> 63:
                raise ProtocolError("frame length with the most significant bit set")
    mask = None
    if b1 & _MASK_BIT:
        if end < start + 4:
            return None
        mask = bytes(data[start : start + 4])
        start += 4
    return data[pos], length, mask, start


def parse_frame(data: bytes | bytearray) -> tuple[Frame, bytes | None, int] | None:
    """Parse one whole frame at the start of ``data`` (for tests and tools).

    Only the wire format is checked; the rules that depend on the connection (opcodes, RSV
    bits, masking direction, limits) are checked by :mod:`syncws.protocol.connection`.

    Returns:
        ``None`` if ``data`` holds no complete frame yet, else the frame (unmasked), its
        masking key (``None`` if unmasked) and the number of bytes it took.

    Raises:
        ProtocolError: The length is invalid or the opcode is reserved.
    """
    header = parse_header(data)
    if header is None:
        return None
    b0, length, mask, start = header
    if len(data) < start + length:
        return None
    payload = bytes(data[start : start + length])
    if mask is not None:
        payload = apply_mask(payload, mask)
    try:
        opcode = Opcode(b0 & 0x0F)
    except ValueError:
        raise ProtocolError(f"reserved opcode {b0 & 0x0F}") from None
    frame = Frame(
        opcode,
        payload,
        fin=bool(b0 & 0x80),
        rsv1=bool(b0 & 0x40),
        rsv2=bool(b0 & 0x20),
        rsv3=bool(b0 & 0x10),
    )
    return frame, mask, start + length


# What a _plain_lengths() table gives for a second byte that is not a 7-bit length: a 16-bit
# length follows, or the frame is not for the shortcuts. Both are below any length that the
# shortcuts compare them with (a frame's size minus its header, at least -4).
_FOLLOWS_16 = -16
_NOT_PLAIN = -256

# The limit of max_size=None: above any message (lengths have 63 bits, §5.2), and above any
# sum of a length and the size of a message received so far.
_NO_LIMIT = 1 << 64


def size_limit(max_size: int | None, *, compressed: bool = False) -> int:
    """How many bytes a received message may have under ``max_size``: one more fails the
    connection with 1009 (:exc:`~syncws.exceptions.PayloadTooBig`). Every path that reads
    frames compares sizes with this number, and nothing else reads ``max_size``.

    Args:
        max_size: The connection's ``max_size``; ``None`` for no limit.
        compressed: For the bytes of a compressed message as they arrive, before they are
            inflated (which is checked against ``max_size`` itself). On the wire,
            incompressible data exceeds its size: zlib ends a stored block whenever its
            symbol buffer fills (5 bytes per 127 bytes at memLevel 1, measured 2.5 KiB per
            MiB at memLevel 5), and a compressor stuck with fixed Huffman codes adds up to
            1/8. This allows that much.
    """
    if max_size is None:
        return _NO_LIMIT
    if compressed:
        return max_size + max_size // 8 + 1024
    return max_size


def _plain_lengths(masked: bool, limit: int) -> tuple[int, ...]:
    """The shortcuts' reading of the second byte of a header, for a connection whose frames
    arrive masked (a server's) or not (a client's), and whose size limit is ``limit``
    (from :func:`size_limit`): ``table[b1]`` is the payload length when ``b1`` gives a
    7-bit one within the limit, :data:`_FOLLOWS_16` when a 16-bit length follows (which
    the shortcuts then check against the limit), and :data:`_NOT_PLAIN` for anything else,
    which they leave to the general path: a 64-bit length, a MASK bit that does not match,
    a length above the limit.
    """
    return _lengths_table(masked, min(limit, _MAX_LENGTH_7))


@functools.cache
def _lengths_table(masked: bool, limit: int) -> tuple[int, ...]:
    # At most 2 x 126 tables: the limit matters only up to _MAX_LENGTH_7.
    table = []
    for b1 in range(256):
        header = parse_header(bytes((0x82, b1)) + bytes(12))
        assert header is not None  # 14 bytes hold any header
        _, length, mask, start = header
        extra = start - 2 - (0 if mask is None else 4)  # 0, 2 or 8 bytes of length
        if (mask is not None) is not masked or extra == 8:
            table.append(_NOT_PLAIN)
        elif extra == 2:
            table.append(_FOLLOWS_16)
        else:
            table.append(length if length <= limit else _NOT_PLAIN)
    return tuple(table)
