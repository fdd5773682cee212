#!/usr/bin/env python
# syncws version of python-websockets/websockets: example/sync/server.py
# (BSD-3-Clause, Copyright (c) Aymeric Augustin and contributors). Changed: serve -> Server.

"""Server example using the threading API."""

from syncws import Server


def hello(websocket):
    name = websocket.recv()
    print(f"<<< {name}")

    greeting = f"Hello {name}!"

    websocket.send(greeting)
    print(f">>> {greeting}")


def main():
    with Server(hello, "localhost", 8765) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
