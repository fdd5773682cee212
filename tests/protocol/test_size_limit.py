"""``max_size`` is one rule: every path that reads a message applies it at the same boundary.

A message of exactly ``max_size`` bytes is received and one of ``max_size + 1`` fails the
connection with 1009, whichever code reads it: the general parser (``receive_data`` with
the shortcuts off), the plain loop (``receive_data``), the single-message shortcut
(``receive_message``, on the server side and on the client side) and the bulk read of a
large message (``start_payload_read``, ``finish_payload_read``). With permessage-deflate,
the limit applies to the message once decompressed. Frames are built here independently
of :mod:`syncws.protocol` (``rawws``).
"""

from __future__ import annotations

import random
import string
import zlib

import pytest
from rawws import frame, xor

from syncws.protocol.connection import Protocol
from syncws.protocol.deflate import PerMessageDeflate
from syncws.protocol.events import Message
from syncws.protocol.frames import Opcode, parse_frame

MASK = b"\x9a\x01\xfe\x42"


def _deflate(data: bytes) -> bytes:
    """``data`` as permessage-deflate compresses a whole message (RFC 7692 §7.2.1)."""
    compressor = zlib.compressobj(wbits=-15)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def _message(opcode: int, size: int) -> bytes:
    """``size`` bytes: ASCII text, or random bytes, which deflate cannot shrink (their
    compressed frame is larger than the message)."""
    rng = random.Random(size)
    if opcode == Opcode.TEXT:
        return "".join(rng.choices(string.ascii_letters, k=size)).encode()
    return rng.randbytes(size)


class _GeneralOnly(Protocol):
    """The general parser only: every shortcut declines."""

    def receive_message(self, data):
        return None

    def _receive_plain(self, buf, pos, events):
        return pos

    def start_payload_read(self):
        return None


class _Counting(Protocol):
    """Counts the headers that reach the general parser's check."""

    checked = 0

    def _check_header(self, b0, length, mask):
        self.checked += 1
        super()._check_header(b0, length, mask)


def _outcome(protocol: Protocol, events: list) -> tuple:
    """What became of the message: ``("received", data)`` or ``("failed", code)``, the
    close code being the same in the exception and in the close frame sent."""
    if protocol.exc is not None:
        assert events == []
        frame, _, _ = parse_frame(protocol.data_to_send())
        assert frame.opcode is Opcode.CLOSE
        assert int.from_bytes(frame.data[:2]) == protocol.exc.code
        return ("failed", protocol.exc.code)
    (event,) = events
    assert type(event) is Message
    return ("received", event.data)


# Each path returns the outcome and whether the path itself took the frame.


def _general(make, wire):
    protocol = make(_GeneralOnly)
    return _outcome(protocol, protocol.receive_data(wire)), False


def _plain_loop(make, wire):
    protocol = make(_Counting)
    events = protocol.receive_data(wire)
    return _outcome(protocol, events), protocol.checked == 0


def _single(make, wire):
    protocol = make(Protocol)
    message = protocol.receive_message(wire)
    if message is not None:
        return ("received", message), True
    return _outcome(protocol, protocol.receive_data(wire)), False


def _bulk(make, wire):
    protocol = make(Protocol)
    events = protocol.receive_data(wire[:1000])
    read = protocol.start_payload_read()
    if read is None:
        events += protocol.receive_data(wire[1000:])
        return _outcome(protocol, events), False
    rest = read.received + wire[1000:]
    payload = rest if read.mask is None else xor(rest, read.mask)
    events += protocol.finish_payload_read(read, payload)
    return _outcome(protocol, events), True


PATHS = {"general": _general, "plain loop": _plain_loop, "single": _single, "bulk": _bulk}

# max_size, and the shortcuts that must take a plain message of max_size bytes.
BOUNDARIES = [
    (0, {"plain loop", "single"}),
    (100, {"plain loop", "single"}),
    (125, {"plain loop", "single"}),  # max_size + 1 has a 16-bit length
    (1000, {"plain loop", "single"}),
    (65535, {"plain loop", "single"}),  # max_size + 1 has a 64-bit length
    (70000, {"bulk"}),
]


@pytest.mark.parametrize(("max_size", "shortcuts"), BOUNDARIES)
@pytest.mark.parametrize("compression", ["none", "negotiated", "compressed"])
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
@pytest.mark.parametrize("side", ["server", "client"])
def test_every_path_applies_max_size_at_the_same_boundary(
    side, opcode, compression, max_size, shortcuts
):
    """``compression``: no extension; permessage-deflate negotiated, the message sent
    uncompressed (the shortcuts take it); or sent compressed (the general path only)."""
    extensions = [] if compression == "none" else [PerMessageDeflate()]

    def make(cls):
        return cls(is_client=side == "client", max_size=max_size, extensions=extensions)

    for size in (max_size, max_size + 1):
        message = _message(opcode, size)
        if compression == "compressed":
            wire = frame(opcode, _deflate(message), mask=side == "server", rsv1=True, key=MASK)
        else:
            wire = frame(opcode, message, mask=side == "server", key=MASK)
        expected = (
            ("received", message.decode() if opcode == Opcode.TEXT else message)
            if size <= max_size
            else ("failed", 1009)
        )
        for name, path in PATHS.items():
            outcome, took = path(make, wire)
            assert outcome == expected, (name, size)
            plain = compression != "compressed" and size <= max_size
            assert took is (plain and name in shortcuts), (name, size)


@pytest.mark.parametrize("side", ["server", "client"])
def test_changing_max_size_applies_to_every_path(side):
    """``max_size`` set on a protocol applies from the next frame to the shortcuts too."""
    masked = side == "server"

    def make(cls):
        protocol = cls(is_client=not masked, max_size=None)
        protocol.max_size = 10
        return protocol

    for size, expected in ((10, ("received", b"x" * 10)), (11, ("failed", 1009))):
        wire = frame(Opcode.BINARY, b"x" * size, mask=masked, key=MASK)
        for name in ("general", "plain loop", "single"):
            assert PATHS[name](make, wire)[0] == expected, (name, size)
    protocol = make(Protocol)
    protocol.max_size = None
    assert protocol.max_size is None
    big = frame(Opcode.BINARY, b"x" * 200_000, mask=masked, key=MASK)
    assert protocol.receive_data(big) == [Message(b"x" * 200_000)]
