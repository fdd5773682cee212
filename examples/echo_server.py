#!/usr/bin/env python
"""An echo server: every message comes back to its sender.

Run it, then talk to it with ``python examples/hello_client.py``, ``python -m syncws
ws://localhost:8765/`` or any WebSocket client. Ctrl-C stops it gracefully.
"""

import syncws


def echo(ws: syncws.ServerConnection) -> None:
    for message in ws:  # str for text, bytes for binary; ends on a normal close
        ws.send(message)


syncws.serve(echo, "localhost", 8765)  # Ctrl-C or SIGTERM: graceful shutdown
