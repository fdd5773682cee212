"""A server that broadcasts on request, for the ``broadcast`` scenario of ``run.py``:
``python broadcast_server.py LIBRARY [PORT]``; prints ``PORT <n>``.

``LIBRARY`` is ``syncws`` (:func:`syncws.broadcast`) or ``websockets.sync``
(``websockets.sync.server.broadcast``). Compression off, keepalive at its defaults. Text
messages from any client drive it; other messages are ignored:

``go K``
    The handler broadcasts K binary messages of 16 bytes to every connection, one
    broadcast call each.
``busy N``
    N threads run Python code without pause until the next ``busy``: the handlers of a
    real server that are busy with their own work, which compete for the GIL with whoever
    broadcasts. ``busy 0`` stops them.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Iterable
from typing import Any

PAYLOAD = bytes(range(16))


busy_threads: list[threading.Thread] = []
busy_count = 0  # how many of busy_threads should run


def busy(index: int) -> None:
    """Run Python code while fewer than ``index + 1`` busy threads are wanted."""
    n = 0
    while index < busy_count:
        n += 1


def set_busy(count: int) -> None:
    global busy_count
    busy_count = count
    for index in range(len(busy_threads), count):
        busy_threads.append(threading.Thread(target=busy, args=(index,), daemon=True))
        busy_threads[-1].start()
    for thread in busy_threads[count:]:
        thread.join()
    del busy_threads[count:]


def handler_for(
    broadcast: Callable[[Iterable[Any], bytes], object], connections: Callable[[], Iterable[Any]]
) -> Callable[[Any], None]:
    def handler(ws: Any) -> None:
        for message in ws:
            if isinstance(message, str) and message.startswith("go "):
                for _ in range(int(message[3:])):
                    broadcast(connections(), PAYLOAD)
            elif isinstance(message, str) and message.startswith("busy "):
                set_busy(int(message[5:]))

    return handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("library", choices=["syncws", "websockets.sync"])
    parser.add_argument("port", nargs="?", type=int, default=0)
    args = parser.parse_args()
    server: Any = None
    if args.library == "syncws":
        import syncws

        handler = handler_for(syncws.broadcast, lambda: server.connections)
        server = syncws.Server(
            handler, "127.0.0.1", args.port, compression=None, max_connections=10_000
        )
        print("PORT", server.port, flush=True)
        server.serve_forever()
    else:
        from websockets.sync.server import broadcast, serve

        handler = handler_for(broadcast, lambda: server.connections)
        with serve(handler, "127.0.0.1", args.port, compression=None) as server:
            print("PORT", server.socket.getsockname()[1], flush=True)
            server.serve_forever()


if __name__ == "__main__":
    main()
