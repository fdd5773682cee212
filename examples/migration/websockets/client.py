#!/usr/bin/env python
# syncws version of python-websockets/websockets: example/sync/client.py
# (BSD-3-Clause, Copyright (c) Aymeric Augustin and contributors). Changed: the import.

"""Client example using the threading API."""

from syncws import connect


def hello():
    with connect("ws://localhost:8765") as websocket:
        name = input("What's your name? ")

        websocket.send(name)
        print(f">>> {name}")

        greeting = websocket.recv()
        print(f"<<< {greeting}")


if __name__ == "__main__":
    hello()
