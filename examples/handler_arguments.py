#!/usr/bin/env python
"""Give a handler more than the connection: functools.partial, or a closure.

syncws calls ``handler(ws)`` with the connection only. Whatever else the handler needs (a
database, settings, a shared object) comes from a function that binds it beforehand. Both
servers below answer each message with ``PREFIX message`` and count the messages in a
shared :class:`Counter`.

``python examples/handler_arguments.py [--partial]`` serves ws://localhost:8765/ with the
closure (or the partial).
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable

import syncws


class Counter:
    """Something shared by every connection: handlers run in several threads, hence the lock."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> int:
        with self._lock:
            self.value += 1
            return self.value


# 1. functools.partial: the handler takes the extra arguments after the connection.


def reply(ws: syncws.ServerConnection, prefix: str, counter: Counter) -> None:
    for message in ws:
        counter.add()
        ws.send(f"{prefix} {message}")


# 2. A closure: a function that returns the handler.


def make_handler(prefix: str, counter: Counter) -> Callable[[syncws.ServerConnection], None]:
    def handler(ws: syncws.ServerConnection) -> None:
        for message in ws:
            counter.add()
            ws.send(f"{prefix} {message}")

    return handler


def main() -> None:
    counter = Counter()
    if "--partial" in sys.argv:
        handler = functools.partial(reply, prefix=">", counter=counter)
    else:
        handler = make_handler(">", counter)
    syncws.serve(handler, "localhost", 8765)


if __name__ == "__main__":
    main()
