#!/usr/bin/env python
"""Send each line you type to a WebSocket server and print the answer.

Usage: python examples/hello_client.py [ws://localhost:8765/]
"""

import sys

import syncws

uri = sys.argv[1] if len(sys.argv) > 1 else "ws://localhost:8765/"
with syncws.connect(uri) as ws:
    print(f"Connected to {uri}; type a message, Ctrl-D to quit.")
    for line in sys.stdin:
        ws.send(line.rstrip("\n"))
        print("<", ws.recv())
