"""Helpers shared by the tests of syncws.protocol.connection and of its shortcuts.

``client_frame`` builds a frame as a client sends it (masked with ``MASK``); ``server`` and
``client`` make an open protocol of either side; ``handshake`` runs the opening handshake
between two protocols; ``frames_out`` and ``sent_close`` parse back
what a protocol wants to send; ``assert_failed`` checks that a protocol failed the
connection with a given close code and ignores what follows; ``Reverse`` is a toy extension
that claims RSV1.
"""

from __future__ import annotations

import dataclasses

from syncws.exceptions import ProtocolError
from syncws.protocol.connection import Protocol
from syncws.protocol.events import RequestReceived, ResponseReceived, State
from syncws.protocol.frames import Close, Opcode, parse_frame, serialize_frame

MASK = b"\x01\x02\x03\x04"


def client_frame(opcode, data, *, fin=True, rsv1=False, rsv2=False, rsv3=False):
    """A frame as a client sends it: masked."""
    return serialize_frame(opcode, data, fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3, mask=MASK)


def handshake(client, server):
    """Run the opening handshake between two protocols; return the server's request."""
    client.send_request(client.connect())
    (event,) = server.receive_data(client.data_to_send())
    assert isinstance(event, RequestReceived)
    server.send_response(server.accept(event.request))
    (event,) = client.receive_data(server.data_to_send())
    assert isinstance(event, ResponseReceived)
    assert client.state is server.state is State.OPEN
    return server.request


def frames_out(protocol):
    """Parse everything the protocol wants to send into (frame, mask) pairs."""
    data = protocol.data_to_send()
    frames = []
    while data:
        frame, mask, size = parse_frame(data)
        frames.append((frame, mask))
        data = data[size:]
    return frames


def sent_close(protocol):
    """The single close frame the protocol sent, parsed."""
    ((frame, _),) = frames_out(protocol)
    assert frame.opcode is Opcode.CLOSE
    return Close.parse(frame.data)


def server(**kwargs):
    return Protocol(is_client=False, **kwargs)


def client(**kwargs):
    return Protocol(is_client=True, **kwargs)


def assert_failed(protocol, code):
    """The protocol failed the connection with ``code``."""
    assert sent_close(protocol).code == code
    assert protocol.state is State.CLOSING
    assert protocol.should_close_transport()
    assert isinstance(protocol.exc, ProtocolError)
    assert protocol.exc.code == code
    # Further input is ignored.
    assert protocol.receive_data(client_frame(Opcode.TEXT, b"more")) == []
    assert protocol.data_to_send() == b""


class Reverse:
    """A toy extension that reverses payloads and flags them with RSV1."""

    name = "x-reverse"
    rsv_bits = frozenset({1})

    def decode(self, frame, *, max_size=None):
        if not frame.rsv1:
            raise ProtocolError("not reversed")
        return dataclasses.replace(frame, data=frame.data[::-1] * 2, rsv1=False)

    def encode(self, frame):
        return dataclasses.replace(frame, data=frame.data[::-1], rsv1=True)
