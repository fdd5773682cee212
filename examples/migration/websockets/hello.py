#!/usr/bin/env python
# syncws version of python-websockets/websockets: example/sync/hello.py
# (BSD-3-Clause, Copyright (c) Aymeric Augustin and contributors). Changed: the import.

"""Client using the threading API."""

from syncws import connect


def hello():
    with connect("ws://localhost:8765") as websocket:
        websocket.send("Hello world!")
        message = websocket.recv()
        print(message)


if __name__ == "__main__":
    hello()
