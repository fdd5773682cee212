#!/usr/bin/env python
"""A WebSocket extension of your own, passed with ``extensions=``: the three pieces.

``x-xor`` is a toy (XOR hides nothing): it XORs the payload of every data frame with a
byte that the client offers and the server accepts (``x-xor; key=42``), and marks such
frames with RSV2. A real extension follows the same pattern: an *extension*, active on one
connection, transforms frames both ways; a *client factory* offers it and checks the
server's answer; a *server factory* accepts or declines an offer. See
:mod:`syncws.protocol.extensions` for the interfaces.

``python examples/custom_extension.py`` runs a server and a client that negotiate it,
next to permessage-deflate, and prints the negotiated header and the echoed message.
"""

from __future__ import annotations

from collections.abc import Sequence

import syncws
from syncws.protocol.extensions import Extension, ExtensionParameter
from syncws.protocol.frames import Frame

NAME = "x-xor"


class XorExtension:
    """XOR the payload of data frames with ``key``; RSV2 marks the frames it changed."""

    name = NAME
    rsv_bits = frozenset({2})  # frames with RSV2 set are valid once this is negotiated

    def __init__(self, key: int) -> None:
        self.key = key

    def _xor(self, data: bytes) -> bytes:
        return bytes(byte ^ self.key for byte in data)

    def encode(self, frame: Frame) -> Frame:
        return Frame(frame.opcode, self._xor(frame.data), frame.fin, frame.rsv1, True)

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if not frame.rsv2:
            raise syncws.ProtocolError(f"{NAME}: a data frame without RSV2")
        return Frame(frame.opcode, self._xor(frame.data), frame.fin, frame.rsv1)


def _key(params: Sequence[ExtensionParameter]) -> int:
    """The key of an offer or an answer; NegotiationError unless it is one byte."""
    if len(params) == 1 and params[0][0] == "key":
        value = params[0][1] or ""
        if value.isascii() and value.isdigit() and int(value) <= 255:
            return int(value)
    raise syncws.NegotiationError(f"{NAME} takes one parameter, key=0..255")


class ClientXorFactory:
    """Offer ``x-xor; key=KEY`` and accept the server's answer if it has the same key."""

    name = NAME

    def __init__(self, key: int = 42) -> None:
        self.key = key

    def get_request_params(self) -> list[ExtensionParameter]:
        return [("key", str(self.key))]

    def process_response_params(
        self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]
    ) -> XorExtension:
        if _key(params) != self.key:
            raise syncws.NegotiationError(f"{NAME}: the server changed the key")
        return XorExtension(self.key)


class ServerXorFactory:
    """Accept an ``x-xor`` offer with a valid key, and answer with that key."""

    name = NAME

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], XorExtension]:
        key = _key(params)  # a bad offer is declined: the handshake goes on without it
        return [("key", str(key))], XorExtension(key)


def echo(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def main() -> None:
    # Extensions come in the order given; compression="deflate" (the default) adds
    # permessage-deflate after them, so frames are XORed, then compressed.
    with syncws.Server(echo, "localhost", 0, extensions=[ServerXorFactory()]) as server:
        server.start()
        uri = f"ws://localhost:{server.port}/"
        with syncws.connect(uri, extensions=[ClientXorFactory(key=42)]) as ws:
            assert ws.response is not None
            print(ws.response.headers["Sec-WebSocket-Extensions"])
            ws.send("Hello, extensions!")
            print(ws.recv(timeout=5))


if __name__ == "__main__":
    main()
