#!/usr/bin/env python
"""An echo server: every message comes back to its sender.

Run it, then talk to it with ``python examples/hello_client.py`` (or any WebSocket client
pointed at ws://localhost:8765/). Ctrl-C stops it gracefully.
"""

import logging

import syncws


def echo(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


if __name__ == "__main__":
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
    print(f"Echo server on ws://localhost:8765/ (masking: {syncws.MASK_IMPLEMENTATION})")
    syncws.serve(echo, "localhost", 8765)
