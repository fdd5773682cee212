"""Tests of extensions in syncws.protocol.connection, with the toy extension ``Reverse``.

An extension that claims RSV1 decodes incoming data frames and encodes outgoing ones
(never control frames); its ProtocolError fails the connection; bits it does not claim stay
reserved; and max_size applies to the decoded payload, checked from the header first.
"""

from __future__ import annotations

from connection_helpers import Reverse, assert_failed, client_frame, frames_out, server

from syncws.protocol.events import Message
from syncws.protocol.frames import Frame, Opcode

# Extensions.


def test_extension_decodes_and_claims_rsv1():
    """An extension claiming RSV1 transforms incoming data frames."""
    protocol = server(extensions=[Reverse()])
    events = protocol.receive_data(client_frame(Opcode.TEXT, b"abc", rsv1=True))
    assert events == [Message("cbacba")]


def test_extension_error_fails_connection():
    """An extension's ProtocolError fails the connection."""
    protocol = server(extensions=[Reverse()])
    assert protocol.receive_data(client_frame(Opcode.TEXT, b"abc")) == []
    assert_failed(protocol, 1002)


def test_extension_rsv2_still_reserved():
    """Bits no extension claims stay reserved."""
    protocol = server(extensions=[Reverse()])
    assert protocol.receive_data(client_frame(Opcode.TEXT, b"a", rsv1=True, rsv2=True)) == []
    assert_failed(protocol, 1002)


def test_extension_output_limited_by_max_size():
    """max_size applies to the decoded payload."""
    protocol = server(extensions=[Reverse()], max_size=5)
    assert protocol.receive_data(client_frame(Opcode.BINARY, b"abc", rsv1=True)) == []
    assert_failed(protocol, 1009)


def test_extension_encodes_outgoing():
    """An extension transforms outgoing data frames and sets their RSV bits."""
    protocol = server(extensions=[Reverse()])
    protocol.send_text(b"abc")
    protocol.send_ping(b"abc")
    assert [f for f, _ in frames_out(protocol)] == [
        Frame(Opcode.TEXT, b"cba", rsv1=True),
        Frame(Opcode.PING, b"abc"),
    ]


def test_compressed_frame_size_bounded_from_header():
    """A compressed frame far larger than max_size fails at its header, before inflating."""
    protocol = server(extensions=[Reverse()], max_size=10_000)
    header = client_frame(Opcode.BINARY, b"x" * 20_000, rsv1=True)[:8]
    assert protocol.receive_data(header) == []
    assert_failed(protocol, 1009)
