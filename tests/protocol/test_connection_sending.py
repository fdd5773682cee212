"""Tests of sending with syncws.protocol.connection: the frames the state machine writes.

Masking by side (a fresh key per client frame), every length form, fragmented messages and
their order rules, prepare_frame() with queue_frame(), what may not be sent before the
opening handshake or after the closing one, the limit on control payloads, and large frames
queued as a header and a payload buffer.
"""

from __future__ import annotations

import pytest
from connection_helpers import client, client_frame, frames_out, server

from syncws.exceptions import ConnectionClosed
from syncws.protocol.connection import Protocol
from syncws.protocol.events import State
from syncws.protocol.frames import Close, Frame, Opcode, parse_frame, serialize_frame

# Sending.


def test_server_frames_unmasked():
    """A server's frames are not masked."""
    protocol = server()
    protocol.send_text("é".encode())
    protocol.send_binary(b"\x00")
    assert protocol.data_to_send() == b"\x81\x02\xc3\xa9\x82\x01\x00"


def test_client_frames_masked_with_fresh_keys():
    """A client masks every frame, each with its own key."""
    protocol = client()
    for _ in range(100):
        protocol.send_binary(b"payload")
    frames = frames_out(protocol)
    assert all(frame == Frame(Opcode.BINARY, b"payload") for frame, _ in frames)
    assert len({mask for _, mask in frames}) > 90


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_client_large_frames(size):
    """A client's frames of every length form parse back."""
    protocol = client()
    protocol.send_binary(b"z" * size)
    assert frames_out(protocol)[0][0] == Frame(Opcode.BINARY, b"z" * size)


def test_send_fragmented():
    """send_text(fin=False) and send_continuation build a fragmented message."""
    protocol = server()
    protocol.send_text(b"a", fin=False)
    protocol.send_ping(b"p")
    protocol.send_continuation(b"b", fin=False)
    protocol.send_continuation(b"c", fin=True)
    assert [f for f, _ in frames_out(protocol)] == [
        Frame(Opcode.TEXT, b"a", fin=False),
        Frame(Opcode.PING, b"p"),
        Frame(Opcode.CONT, b"b", fin=False),
        Frame(Opcode.CONT, b"c"),
    ]


def test_send_continuation_without_message():
    """A continuation needs a fragmented message in progress."""
    with pytest.raises(RuntimeError):
        server().send_continuation(b"x", fin=True)


def test_send_new_message_while_fragmenting():
    """A new message cannot start inside a fragmented one."""
    protocol = server()
    protocol.send_binary(b"x", fin=False)
    with pytest.raises(RuntimeError):
        protocol.send_text(b"y")


def test_send_after_close_raises_connection_closed():
    """Sending after the closing handshake started raises ConnectionClosed."""
    protocol = server()
    protocol.send_close()
    with pytest.raises(ConnectionClosed):
        protocol.send_text(b"x")
    with pytest.raises(ConnectionClosed):
        protocol.send_ping(b"")


def test_send_before_handshake_raises():
    """Nothing can be sent before the opening handshake completes."""
    with pytest.raises(RuntimeError):
        Protocol(is_client=False, state=State.CONNECTING).send_text(b"x")


def test_prepare_then_queue_frame_is_send():
    """prepare_frame() + queue_frame() send exactly what send_text() sends."""
    a, b = server(), server()
    a.send_text(b"hello", fin=False)
    a.send_continuation(b"!", fin=True)
    b.queue_frame(*b.prepare_frame(Opcode.TEXT, b"hello", fin=False))
    b.queue_frame(*b.prepare_frame(Opcode.CONT, b"!"))
    assert a.data_to_send() == b.data_to_send()


def test_frame_prepared_before_the_closing_handshake_is_not_queued_after_it():
    """A frame prepared (e.g. compressed outside a lock) while the connection was open is
    refused once a close frame was received meanwhile: nothing may follow our close."""
    protocol = server()
    prepared = protocol.prepare_frame(Opcode.BINARY, b"late")
    protocol.receive_data(client_frame(Opcode.CLOSE, Close(1000, "").serialize()))
    echo = protocol.data_to_send()
    with pytest.raises(ConnectionClosed):
        protocol.queue_frame(*prepared)
    assert protocol.data_to_send() == b""
    assert echo == serialize_frame(Opcode.CLOSE, Close(1000, "").serialize())


def test_prepare_frame_checks_the_fragment_sequence():
    protocol = server()
    with pytest.raises(RuntimeError):
        protocol.prepare_frame(Opcode.CONT, b"x")
    protocol.prepare_frame(Opcode.TEXT, b"a", fin=False)
    with pytest.raises(RuntimeError):
        protocol.prepare_frame(Opcode.BINARY, b"b")


def test_control_payload_limit():
    """Pings and pongs carry at most 125 bytes."""
    protocol = server()
    with pytest.raises(ValueError):
        protocol.send_ping(b"x" * 126)
    with pytest.raises(ValueError):
        protocol.send_pong(b"x" * 126)
    protocol.send_pong(b"x" * 125)
    assert frames_out(protocol) == [(Frame(Opcode.PONG, b"x" * 125), None)]


@pytest.mark.parametrize("make", [server, client])
def test_large_frames_queued_as_header_and_payload(make):
    """A large data frame is queued as two buffers (the payload not copied behind the
    header, unmasked on the server side); joined, they are the frame."""
    protocol = make()
    payload = bytes(range(256)) * 512  # 128 KiB
    protocol.send_binary(payload)
    protocol.send_text(b"small")
    buffers = protocol.buffers_to_send()
    assert len(buffers) == 3
    if protocol._masks is None:
        assert buffers[1] is payload
    frames = []
    data = b"".join(buffers)
    while data:
        frame, _, size = parse_frame(data)
        frames.append(frame)
        data = data[size:]
    assert frames == [Frame(Opcode.BINARY, payload), Frame(Opcode.TEXT, b"small")]
    assert protocol.buffers_to_send() == []
    assert protocol.data_to_send() == b""
