#!/usr/bin/env python
"""Send one message to the echo server (``examples/echo_server.py``) and print the answer."""

import syncws

with syncws.connect("ws://localhost:8765/") as ws:
    ws.send("Hello, world!")
    print(ws.recv())
