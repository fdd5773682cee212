"""Helpers shared by the tests of syncws.protocol.deflate (permessage-deflate, RFC 7692).

``pair`` opens a client and a server protocol that negotiated permessage-deflate (through
``handshake``, the opening handshake between two protocols); ``server_with`` makes an open
server-side protocol with a given extension, fed by ``client_frame``; ``deflate`` compresses
a message as RFC 7692 says, with zlib itself; ``frames_out`` parses what a protocol wants to
send, and ``assert_failed`` checks that it failed the connection with a given close code.
"""

from __future__ import annotations

import zlib

from connection_helpers import handshake

from syncws.protocol.client import ClientProtocol
from syncws.protocol.connection import Protocol
from syncws.protocol.deflate import ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory
from syncws.protocol.frames import Opcode, parse_frame, serialize_frame
from syncws.protocol.server import ServerProtocol
from syncws.protocol.uri import parse_uri

URI = parse_uri("ws://example.com/")
MASK = b"\x01\x02\x03\x04"
TAIL = b"\x00\x00\xff\xff"


def pair(server_factory=None, client_factory=None, *, max_size=2**20):
    """A client and a server protocol that negotiated permessage-deflate."""
    client = ClientProtocol(
        URI, extensions=[client_factory or ClientPerMessageDeflateFactory()], max_size=max_size
    )
    server = ServerProtocol(
        extensions=[server_factory or ServerPerMessageDeflateFactory()], max_size=max_size
    )
    handshake(client, server)
    return client, server


def frames_out_of(data):
    """Parse bytes into frames (unmasked)."""
    frames = []
    while data:
        frame, _, size = parse_frame(data)
        frames.append(frame)
        data = data[size:]
    return frames


def frames_out(protocol):
    """Parse what the protocol wants to send into frames (unmasked)."""
    return frames_out_of(protocol.data_to_send())


def deflate(data, *, wbits=15, flush=zlib.Z_SYNC_FLUSH):
    """Compress one message as RFC 7692 §7.2.1 says, with a fresh compressor."""
    compressor = zlib.compressobj(wbits=-wbits)
    out = compressor.compress(data) + compressor.flush(flush)
    return out[:-4] if out.endswith(TAIL) else out


def server_with(extension, **kwargs):
    """A server-side protocol, already open, with this extension."""
    return Protocol(is_client=False, extensions=[extension], **kwargs)


def client_frame(opcode, data, *, fin=True, rsv1=False):
    return serialize_frame(opcode, data, fin=fin, rsv1=rsv1, mask=MASK)


def assert_failed(protocol, code):
    """The protocol failed the connection with a close frame carrying ``code``."""
    (frame,) = frames_out(protocol)
    assert frame.opcode is Opcode.CLOSE
    assert int.from_bytes(frame.data[:2], "big") == code
    assert protocol.exc is not None and protocol.exc.code == code
    assert protocol.should_close_transport()
