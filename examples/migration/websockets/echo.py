#!/usr/bin/env python
# syncws version of python-websockets/websockets: example/sync/echo.py
# (BSD-3-Clause, Copyright (c) Aymeric Augustin and contributors). Changed: serve -> Server.

"""Echo server using the threading API."""

from syncws import Server


def echo(websocket):
    for message in websocket:
        websocket.send(message)


def main():
    with Server(echo, "localhost", 8765) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
