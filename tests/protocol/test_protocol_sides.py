"""Tests for ServerProtocol and ClientProtocol: the opening handshake through the core,
and the two sides talking to each other through bytes only."""

from __future__ import annotations

import pytest
from connection_helpers import handshake

from syncws.exceptions import (
    ConnectionClosedOK,
    InvalidHeader,
    InvalidMessage,
    InvalidStatus,
)
from syncws.protocol.client import ClientProtocol
from syncws.protocol.events import (
    Fragment,
    Message,
    Ping,
    Pong,
    RequestReceived,
    ResponseReceived,
    State,
)
from syncws.protocol.frames import Close, Opcode, serialize_frame
from syncws.protocol.http11 import Headers, Response
from syncws.protocol.server import ServerProtocol
from syncws.protocol.uri import parse_uri

URI = parse_uri("ws://example.com/chat?room=1")


def test_handshake_opens_both_sides():
    """A valid handshake opens both sides with a 101 and the right resource."""
    client, server = ClientProtocol(URI), ServerProtocol()
    request = handshake(client, server)
    assert request.path == "/chat?room=1"
    assert request.headers["Host"] == "example.com"
    assert request.headers["User-Agent"] == "syncws"
    assert server.response.status_code == 101
    assert server.response.headers["Server"] == "syncws"
    assert client.state is server.state is State.OPEN


def test_messages_both_ways():
    """After the handshake, messages flow both ways with masking in the right direction."""
    client, server = ClientProtocol(URI), ServerProtocol()
    handshake(client, server)
    client.send_text(b"hello")
    client.send_binary(b"\x00\x01", fin=False)
    client.send_continuation(b"\x02", fin=True)
    assert server.receive_data(client.data_to_send()) == [
        Message("hello"),
        Fragment(b"\x00\x01", False),
        Fragment(b"\x02", True),
    ]
    server.send_text(b"world")
    assert client.receive_data(server.data_to_send()) == [Message("world")]


def test_ping_pong_between_sides():
    """A ping from either side comes back as a pong."""
    client, server = ClientProtocol(URI), ServerProtocol()
    handshake(client, server)
    client.send_ping(b"c")
    assert server.receive_data(client.data_to_send()) == [Ping(b"c")]
    assert client.receive_data(server.data_to_send()) == [Pong(b"c")]


def test_closing_handshake_between_sides():
    """A client-initiated close: the server echoes, closes TCP; the client sees EOF."""
    client, server = ClientProtocol(URI), ServerProtocol()
    handshake(client, server)
    client.send_close(1000, "bye")
    assert server.receive_data(client.data_to_send()) == [Close(1000, "bye")]
    assert server.should_close_transport()
    assert client.receive_data(server.data_to_send()) == [Close(1000, "bye")]
    assert not client.should_close_transport()
    assert client.close_expected()
    server.receive_eof()
    client.receive_eof()
    assert client.close_code == 1000
    assert isinstance(client.closed_exception(), ConnectionClosedOK)


def test_frames_in_same_packet_as_request_wait_for_accept():
    """Frames sent right behind the request are processed once the server accepts."""
    client, server = ClientProtocol(URI), ServerProtocol()
    client.send_request(client.connect())
    data = client.data_to_send() + serialize_frame(Opcode.TEXT, b"early", mask=b"abcd")
    (event,) = server.receive_data(data[:-3])
    assert server.receive_data(data[-3:]) == []
    server.send_response(server.accept(event.request))
    assert server.receive_data(b"") == [Message("early")]


def test_handshake_headers_packed_once_open():
    """After a 101, the request and response headers are packed copies, equal to the ones
    the handshake used; the headers of a rejection are left alone."""
    client, server = ClientProtocol(URI), ServerProtocol()
    client.send_request(client.connect())
    (event,) = server.receive_data(client.data_to_send())
    request_headers = event.request.headers
    response = server.accept(event.request)
    response_headers = response.headers
    server.send_response(response)
    assert server.request.headers is not request_headers
    assert server.request.headers._packed and server.request.headers == request_headers
    assert server.response.headers._packed and server.response.headers == response_headers
    rejected = ServerProtocol()
    rejected.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = rejected.reject(403, "no\n")
    rejected.send_response(answer)
    assert not hasattr(answer.headers, "_packed")


def test_frames_in_same_packet_as_response():
    """Frames that arrive with the 101 are returned right after ResponseReceived."""
    client, server = ClientProtocol(URI), ServerProtocol()
    client.send_request(client.connect())
    (event,) = server.receive_data(client.data_to_send())
    server.send_response(server.accept(event.request))
    server.send_text(b"welcome")
    events = client.receive_data(server.data_to_send())
    assert isinstance(events[0], ResponseReceived)
    assert events[1:] == [Message("welcome")]


def test_malformed_request_answered_with_status():
    """A malformed request gets its error status at once and closes the connection."""
    server = ServerProtocol()
    assert server.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n") == []
    assert server.data_to_send().startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    assert isinstance(server.handshake_exc, InvalidMessage)
    assert server.should_close_transport()
    assert server.state is State.CLOSED
    assert server.receive_data(b"more") == []


def test_plain_http_request_gets_426():
    """A plain GET to a WebSocket endpoint is answered 426 by accept()."""
    server = ServerProtocol()
    (event,) = server.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    response = server.accept(event.request)
    assert response.status_code == 426
    assert isinstance(server.handshake_exc, InvalidHeader)
    server.send_response(response)
    assert server.should_close_transport()


def test_server_custom_response_and_reject():
    """reject() builds a plain-text response; sending it ends the connection."""
    server = ServerProtocol(server_header=None)
    server.receive_data(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    response = server.reject(200, "OK\n")
    assert "Server" not in response.headers
    server.send_response(response)
    assert server.data_to_send().endswith(b"\r\n\r\nOK\n")
    with pytest.raises(RuntimeError):
        server.send_response(response)


def test_server_eof_before_request():
    """The client leaving before its request is recorded as the handshake error."""
    server = ServerProtocol()
    server.receive_data(b"GET / HT")
    server.receive_eof()
    assert isinstance(server.handshake_exc, InvalidMessage)
    assert server.state is State.CLOSED


def test_server_origin_check():
    """An origin outside the allowed list gets 403."""
    client = ClientProtocol(URI, origin="https://evil.example")
    server = ServerProtocol(origins=["https://good.example"])
    client.send_request(client.connect())
    (event,) = server.receive_data(client.data_to_send())
    assert server.accept(event.request).status_code == 403


def test_subprotocol_negotiated():
    """The server's first supported subprotocol that the client offers is selected."""
    client = ClientProtocol(URI, subprotocols=["v2", "v1"])
    server = ServerProtocol(subprotocols=["v1", "v2"])
    handshake(client, server)
    assert client.subprotocol == server.subprotocol == "v1"


def test_client_user_info_sends_basic_auth():
    """User info in the URI becomes a Basic Authorization header."""
    client = ClientProtocol(parse_uri("ws://alice:s3cret@example.com/"))
    request = client.connect()
    assert request.headers["Authorization"] == "Basic YWxpY2U6czNjcmV0"


def test_client_additional_headers():
    """Additional headers and a custom User-Agent go into the request."""
    client = ClientProtocol(
        URI, additional_headers=Headers({"X-Token": "t"}), user_agent_header=None
    )
    request = client.connect()
    assert request.headers["X-Token"] == "t"
    assert "User-Agent" not in request.headers


def test_client_rejected_with_status():
    """A non-101 answer fails the handshake with InvalidStatus carrying the response."""
    client = ClientProtocol(URI)
    client.send_request(client.connect())
    client.data_to_send()
    events = client.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope")
    assert isinstance(events[0], ResponseReceived)
    assert isinstance(client.handshake_exc, InvalidStatus)
    assert client.handshake_exc.response.body == b"nope"
    assert client.state is State.CLOSED
    assert client.should_close_transport()


def test_client_response_body_until_eof():
    """A non-101 answer without Content-Length is read until EOF."""
    client = ClientProtocol(URI)
    client.send_request(client.connect())
    assert client.receive_data(b"HTTP/1.1 500 Oops\r\n\r\nbroken") == []
    client.receive_eof()
    assert isinstance(client.handshake_exc, InvalidStatus)
    assert client.handshake_exc.response.body == b"broken"


def test_client_eof_before_response():
    """The server closing before answering is an InvalidMessage."""
    client = ClientProtocol(URI)
    client.send_request(client.connect())
    client.receive_data(b"HTTP/1.1 101")
    client.receive_eof()
    assert isinstance(client.handshake_exc, InvalidMessage)


def test_client_malformed_response():
    """A malformed answer fails the handshake."""
    client = ClientProtocol(URI)
    client.send_request(client.connect())
    assert client.receive_data(b"garbage\r\n\r\n") == []
    assert isinstance(client.handshake_exc, InvalidMessage)
    assert client.should_close_transport()


def test_client_bad_accept_key():
    """A 101 with the wrong Sec-WebSocket-Accept fails the handshake."""
    client = ClientProtocol(URI)
    client.send_request(client.connect())
    response = Response(
        101,
        "Switching Protocols",
        Headers(
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", "bad"),
            ]
        ),
    )
    client.receive_data(response.serialize())
    assert isinstance(client.handshake_exc, InvalidHeader)
    assert client.state is State.CLOSED


def test_a_101_needs_a_request_that_accept_accepted() -> None:
    """send_response() refuses a 101 that accept() did not build for an accepted request:
    one of the caller's own, or after accept() refused the request; the connection stays
    where it was, and an error response can still be sent."""
    for origins in (None, ["https://good.example"]):
        server = ServerProtocol(origins=origins)
        client = ClientProtocol(URI, origin="https://evil.example")
        client.send_request(client.connect())
        (event,) = server.receive_data(client.data_to_send())
        assert isinstance(event, RequestReceived)
        if origins is not None:
            refused = server.accept(event.request)
            assert refused.status_code == 403
            assert not server.accepted
        own = Response(101, "Switching Protocols", Headers([("Upgrade", "websocket")]))
        with pytest.raises(ValueError, match="accept"):
            server.send_response(own)
        assert server.state is State.CONNECTING and server.response is None
        server.send_response(server.reject(400, "no"))
        assert server.should_close_transport()
