#!/usr/bin/env python
"""Print every message of a WebSocket feed, reconnecting with backoff when it drops.

Usage: python examples/reconnecting_client.py [ws://localhost:8765/]

Goes through the proxy that https_proxy / http_proxy name, if any. Ctrl-C stops it, also
while it waits to reconnect.
"""

import logging
import sys

import syncws

logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
uri = sys.argv[1] if len(sys.argv) > 1 else "ws://localhost:8765/"
try:
    for ws in syncws.reconnect(uri):
        print(f"Connected to {ws.redirects[-1] if ws.redirects else uri}.", flush=True)
        ws.send("hello")
        try:
            for message in ws:
                print("<", message, flush=True)
        except syncws.ConnectionClosedError as exc:
            print(f"Connection lost: {exc}.", flush=True)
        else:
            print(f"Connection closed: {ws.close_code}.", flush=True)
except KeyboardInterrupt:
    pass
