#!/usr/bin/env python
"""A server in the background of a program that has other work: :meth:`syncws.Server.start`.

``start()`` serves in daemon threads and returns at once. It installs no signal handler,
so the program decides what stops it, and must call ``shutdown()`` on its way out:
otherwise the daemon threads die with the process and the clients see 1006 instead of a
closing handshake. Here the other work is printing how many clients are connected, until
Ctrl-C (or SIGTERM, which the program turns into the same exception).

``python examples/background_server.py [PORT]`` (default 8765).
"""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType

import syncws


def echo(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    signal.signal(signal.SIGTERM, interrupt)  # kill PID: shut down as for Ctrl-C
    server = syncws.Server(echo, "localhost", port)
    try:  # from start() on: a signal may come as soon as clients are served
        server.start()
        print(f"listening on ws://localhost:{server.port}/", flush=True)
        count = 0
        while True:  # the program's own work
            if len(server.connections) != count:
                count = len(server.connections)
                print(f"{count} clients", flush=True)
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()  # closes the connections with 1001, waits for the handlers
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
