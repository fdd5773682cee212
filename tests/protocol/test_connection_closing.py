"""Tests of closing with syncws.protocol.connection: the closing handshake and failures.

A close started by the peer (echoed) or by us (send_close), empty and invalid close frames,
the end of TCP without a close frame (1006), the close code, reason and exception that
result, and fail(): the close frame it sends, once, and the exception's cause.
"""

from __future__ import annotations

import pytest
from connection_helpers import assert_failed, client, client_frame, frames_out, sent_close, server

from syncws.exceptions import ConnectionClosedError, ConnectionClosedOK, ProtocolError
from syncws.protocol.events import Ping, State
from syncws.protocol.frames import Close, Frame, Opcode, serialize_frame

# Closing handshake.


def test_peer_initiated_close_is_echoed():
    """The server echoes the client's close code and reason (as websockets and Node's ws do,
    issue 19), then closes TCP (RFC 6455 §7.1.1)."""
    protocol = server()
    events = protocol.receive_data(client_frame(Opcode.CLOSE, Close(1001, "bye").serialize()))
    assert events == [Close(1001, "bye")]
    assert sent_close(protocol) == Close(1001, "bye")
    assert protocol.state is State.CLOSING
    assert protocol.close_expected()
    assert protocol.should_close_transport()
    assert protocol.close_rcvd_then_sent is True
    protocol.receive_eof()
    assert protocol.state is State.CLOSED
    assert (protocol.close_code, protocol.close_reason) == (1001, "bye")
    exc = protocol.closed_exception()
    assert isinstance(exc, ConnectionClosedOK)
    assert str(exc) == "received 1001 (going away) bye; then sent 1001 (going away) bye"


def test_client_waits_for_server_to_close_tcp():
    """After the closing handshake, a client waits for the server to close TCP."""
    protocol = client()
    protocol.receive_data(serialize_frame(Opcode.CLOSE, Close(1000).serialize()))
    assert sent_close(protocol) == Close(1000)
    assert protocol.close_expected()
    assert not protocol.should_close_transport()


def test_empty_close_answered_with_empty_close():
    """An empty close frame (1005) is answered with an empty close frame."""
    protocol = server()
    assert protocol.receive_data(client_frame(Opcode.CLOSE, b"")) == [Close(1005)]
    assert frames_out(protocol) == [(Frame(Opcode.CLOSE, b""), None)]
    protocol.receive_eof()
    assert isinstance(protocol.closed_exception(), ConnectionClosedOK)


def test_locally_initiated_close():
    """send_close, then the peer's close, completes the handshake."""
    protocol = server()
    protocol.send_close(1000, "done")
    assert sent_close(protocol) == Close(1000, "done")
    assert protocol.state is State.CLOSING
    assert not protocol.should_close_transport()
    assert protocol.receive_data(client_frame(Opcode.CLOSE, Close(1000).serialize())) == [
        Close(1000)
    ]
    assert protocol.data_to_send() == b""
    assert protocol.should_close_transport()
    assert protocol.close_rcvd_then_sent is False
    exc = protocol.closed_exception()
    assert str(exc) == "sent 1000 (OK) done; then received 1000 (OK)"


def test_send_close_twice_is_noop():
    """send_close after the closing handshake started does nothing."""
    protocol = server()
    protocol.send_close()
    protocol.data_to_send()
    protocol.send_close(1001)
    assert protocol.data_to_send() == b""


def test_send_close_invalid_code():
    """send_close refuses codes that may not go on the wire."""
    with pytest.raises(ValueError):
        server().send_close(1006)


def test_no_pong_after_close_sent():
    """Nothing follows our close frame, not even a pong."""
    protocol = server()
    protocol.send_close()
    protocol.data_to_send()
    assert protocol.receive_data(client_frame(Opcode.PING, b"x")) == [Ping(b"x")]
    assert protocol.data_to_send() == b""


def test_data_after_close_frame_ignored():
    """Frames after a close frame are ignored."""
    protocol = server()
    data = client_frame(Opcode.CLOSE, b"") + client_frame(Opcode.TEXT, b"late")
    assert protocol.receive_data(data) == [Close(1005)]
    assert protocol.receive_data(client_frame(Opcode.TEXT, b"later")) == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [(b"\x03", 1002), (b"\x03\xed", 1002), (b"\x03\xe8\xff\xfe", 1007)],
)
def test_invalid_close_frames(payload, code):
    """Invalid close payloads fail the connection with 1002 or 1007."""
    protocol = server()
    assert protocol.receive_data(client_frame(Opcode.CLOSE, payload)) == []
    assert_failed(protocol, code)


def test_eof_without_close_is_1006():
    """The TCP connection ending without a close frame closes with 1006, as an error."""
    protocol = server()
    protocol.receive_eof()
    assert protocol.state is State.CLOSED
    assert (protocol.close_code, protocol.close_reason) == (1006, "")
    exc = protocol.closed_exception()
    assert isinstance(exc, ConnectionClosedError)
    assert exc.code == 1006
    assert str(exc) == "no close frame received or sent"


def test_close_code_unknown_while_open():
    """close_code and close_reason are None until the connection is closed."""
    protocol = server()
    assert (protocol.close_code, protocol.close_reason) == (None, None)


def test_error_close_codes_raise_connection_closed_error():
    """A close code other than 1000/1001/1005 makes ConnectionClosedError."""
    protocol = server()
    protocol.receive_data(client_frame(Opcode.CLOSE, Close(4000, "app").serialize()))
    protocol.receive_eof()
    exc = protocol.closed_exception()
    assert isinstance(exc, ConnectionClosedError)
    assert (exc.code, exc.reason) == (4000, "app")


# Failing the connection.


def test_fail_truncates_reason_to_fit():
    """fail() truncates a long reason to 123 bytes without splitting a character."""
    protocol = server()
    protocol.fail(1011, "é" * 100)
    close = sent_close(protocol)
    assert close.code == 1011
    assert len(close.reason.encode()) <= 123
    assert isinstance(protocol.closed_exception(), ConnectionClosedError)


def test_fail_after_close_sent_sends_nothing_more():
    """Failing after our close frame sends no second close frame."""
    protocol = server()
    protocol.send_close()
    protocol.data_to_send()
    protocol.fail(1011, "late")
    assert protocol.data_to_send() == b""
    assert protocol.should_close_transport()


def test_exception_cause_is_the_protocol_error():
    """The ConnectionClosed raised after a failure has the ProtocolError as its cause."""
    protocol = server()
    protocol.receive_data(client_frame(Opcode.TEXT, b"\xff"))
    protocol.receive_eof()
    exc = protocol.closed_exception()
    assert isinstance(exc.__cause__, ProtocolError)
    assert str(exc) == (
        "sent 1007 (invalid frame payload data) invalid UTF-8 in text message; "
        "no close frame received"
    )
