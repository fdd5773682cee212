"""Tests of max_size with permessage-deflate: decompression bombs and their close code.

max_size counts the decompressed size, across the fragments of a message, and a frame that
inflates past it fails the connection with 1009 without being inflated whole; the close
reason names max_size, and the extension's decode() enforces the limit itself.
"""

from __future__ import annotations

import tracemalloc
import zlib

import pytest
from deflate_helpers import assert_failed, client_frame, deflate, frames_out, server_with

from syncws.exceptions import PayloadTooBig
from syncws.protocol.deflate import PerMessageDeflate
from syncws.protocol.events import Fragment, Message
from syncws.protocol.frames import Frame, Opcode

# max_size and decompression bombs.


def test_decompression_bomb_fails_with_1009_in_bounded_memory():
    """A small frame inflating far past max_size fails with 1009 without inflating it all."""
    bomb = deflate(bytes(200 * 2**20))  # 200 MiB of zeros in about 200 KiB
    assert len(bomb) < 2**20
    protocol = server_with(PerMessageDeflate(), max_size=2**20)
    data = client_frame(Opcode.BINARY, bomb, rsv1=True)
    tracemalloc.start()
    try:
        assert protocol.receive_data(data) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_failed(protocol, 1009)
    assert isinstance(protocol.exc, PayloadTooBig)
    # The decompressed output stops at max_size + 1: a few MiB at most, not 200.
    assert peak < 8 * 2**20


def test_message_exactly_max_size_is_accepted():
    """A message decompressing to exactly max_size is accepted; one byte more isn't."""
    protocol = server_with(PerMessageDeflate(), max_size=1000)
    assert protocol.receive_data(client_frame(Opcode.BINARY, deflate(bytes(1000)), rsv1=True)) == [
        Message(bytes(1000))
    ]
    protocol.receive_data(client_frame(Opcode.BINARY, deflate(bytes(1001)), rsv1=True))
    assert_failed(protocol, 1009)


def test_fragmented_bomb_fails_with_1009():
    """max_size counts the decompressed size across the fragments of a message."""
    protocol = server_with(PerMessageDeflate(), max_size=10_000)
    compressor = zlib.compressobj(wbits=-15)
    chunk = bytes(4000)
    events = []
    for fin in (False, False, True):
        payload = compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if fin:
            payload = payload[:-4]
        opcode = Opcode.CONT if events else Opcode.BINARY
        events += protocol.receive_data(
            client_frame(opcode, payload, fin=fin, rsv1=opcode == Opcode.BINARY)
        )
    assert events == [Fragment(chunk, False), Fragment(chunk, False)]
    assert_failed(protocol, 1009)


@pytest.mark.parametrize("fragments", [1, 3])
def test_max_size_close_reason_names_max_size(fragments):
    """The close reason of a message over max_size once decompressed names max_size, also
    when a later fragment goes over (the extension only knows what the others left)."""
    protocol = server_with(PerMessageDeflate(), max_size=10_000)
    compressor = zlib.compressobj(wbits=-15)
    chunk = bytes(12_000 // fragments)
    for i in range(fragments):
        payload = compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
        fin = i == fragments - 1
        if fin:
            payload = payload[:-4]
        opcode = Opcode.CONT if i else Opcode.BINARY
        protocol.receive_data(client_frame(opcode, payload, fin=fin, rsv1=not i))
    (frame,) = frames_out(protocol)
    assert frame.opcode is Opcode.CLOSE
    assert int.from_bytes(frame.data[:2], "big") == 1009
    assert frame.data[2:] == b"message exceeds max_size=10000 once decompressed"
    assert str(protocol.exc) == "message exceeds max_size=10000 once decompressed"


def test_decode_max_size_directly():
    """Extension.decode enforces max_size itself and frees its decompressor."""
    extension = PerMessageDeflate()
    with pytest.raises(PayloadTooBig):
        extension.decode(Frame(Opcode.BINARY, deflate(bytes(101)), rsv1=True), max_size=100)
    # max_size=0 still limits (zlib's max_length=0 would mean "unlimited").
    extension = PerMessageDeflate()
    with pytest.raises(PayloadTooBig):
        extension.decode(Frame(Opcode.BINARY, deflate(b"a"), rsv1=True), max_size=0)
    frame = extension.decode(Frame(Opcode.BINARY, deflate(b""), rsv1=True), max_size=0)
    assert frame == Frame(Opcode.BINARY, b"")
