#!/usr/bin/env python
"""Stop a server from another thread: :meth:`syncws.Server.shutdown`.

The main thread serves (``serve_forever()``), so Ctrl-C works as usual: it raises
:exc:`KeyboardInterrupt` out of ``serve_forever()``, and leaving the ``with`` block shuts
the server down gracefully. Another thread, here one that reads commands on standard
input, stops the server by calling ``server.shutdown()``: ``serve_forever()`` returns, the
clients get close code 1001 with a reason, and the handlers have returned (or were given up
on after the timeout) when ``shutdown()`` returns.

``python examples/stop_from_thread.py [PORT]`` (default 8765), then type ``stop`` (or
Ctrl-D, or Ctrl-C).
"""

from __future__ import annotations

import sys
import threading

import syncws


def echo(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def read_commands(server: syncws.Server) -> None:
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    # Any thread but a handler's may call shutdown() (a handler would wait for itself).
    server.shutdown(code=1001, reason="stopped by the operator", timeout=5)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    with syncws.Server(echo, "localhost", port) as server:
        threading.Thread(target=read_commands, args=(server,), daemon=True).start()
        print(f"listening on ws://localhost:{server.port}/; type stop to stop", flush=True)
        try:
            server.serve_forever()  # returns once shutdown() is called
        except KeyboardInterrupt:
            pass  # the with block shuts the server down
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
