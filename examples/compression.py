#!/usr/bin/env python
"""permessage-deflate with settings of your own, or none at all.

A permessage-deflate factory passed in ``extensions=`` takes the place of the one that
``compression="deflate"`` (the default) adds, with its window bits, zlib levels and
threshold. ``compression=None`` turns compression off.

``python examples/compression.py`` starts a server with each configuration on a free port,
connects to it, and prints what was negotiated and the message echoed.
"""

from __future__ import annotations

import syncws
from syncws.protocol.deflate import ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory


def echo(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def tuned_server(port: int = 0) -> syncws.Server:
    """A server for many connections: small windows both ways, short messages as they are."""
    deflate = ServerPerMessageDeflateFactory(
        server_max_window_bits=10,  # compress with a 1 KiB window (default 12: 4 KiB)
        client_max_window_bits=10,  # and ask clients to, when they let the server choose
        compress_level=6,  # zlib's level: 1 is fastest, 9 smallest (default 6)
        mem_level=4,  # zlib's memLevel, 1 to 9: lower saves memory (default 5)
        min_size=256,  # messages under 256 bytes go uncompressed (default 32)
    )
    return syncws.Server(echo, "localhost", port, extensions=[deflate])


def tuned_client(uri: str) -> syncws.ClientConnection:
    """A client that asks the server for a 2 KiB window at most and compresses harder."""
    deflate = ClientPerMessageDeflateFactory(
        server_max_window_bits=11,  # the server must compress with 11 bits or fewer
        compress_level=9,
        min_size=256,
    )
    return syncws.connect(uri, extensions=[deflate])


def plain_server(port: int = 0) -> syncws.Server:
    """A server that declines compression (clients that offer it get none)."""
    return syncws.Server(echo, "localhost", port, compression=None)


def plain_client(uri: str) -> syncws.ClientConnection:
    """A client that offers no compression."""
    return syncws.connect(uri, compression=None)


def main() -> None:
    for make_server, connect in ((tuned_server, tuned_client), (plain_server, plain_client)):
        with make_server() as server:
            server.start()
            with connect(f"ws://localhost:{server.port}/") as ws:
                assert ws.response is not None
                print(ws.response.headers.get("Sec-WebSocket-Extensions", "no extension"))
                ws.send("Hello, " * 100)
                print(len(ws.recv(timeout=5)))


if __name__ == "__main__":
    main()
