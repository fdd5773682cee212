"""Shared fixtures for the loopback integration tests.

- ``server``: a factory; ``server(handler, **options)`` starts a :class:`syncws.Server` on
  127.0.0.1 with a free port (or with the given ``host``/``port``/``unix_path``/``sock``) in
  a background thread and shuts every server it started down at teardown (bounded).
- ``echo``: a handler that sends every message back.
- ``uri(server)``: the ``ws://`` URI of a running TCP server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import syncws

#: Upper bound, in seconds, for the shutdown of each server started by the fixture.
SHUTDOWN_TIMEOUT = 5

ServerFactory = Callable[..., syncws.Server]


def echo(ws: syncws.ServerConnection) -> None:
    """Send every message back to the client, until it closes."""
    for message in ws:
        ws.send(message)


@pytest.fixture(name="echo")
def echo_fixture() -> Callable[[syncws.ServerConnection], None]:
    """The :func:`echo` handler."""
    return echo


def uri(server: syncws.Server, path: str = "/", scheme: str = "ws") -> str:
    """Return the URI of ``server`` (a TCP server), e.g. ``ws://127.0.0.1:PORT/``."""
    host = server.host
    assert host is not None, "uri() is for TCP servers; use unix_path for Unix sockets"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{server.port}{path}"


@pytest.fixture(name="uri")
def uri_fixture() -> Callable[..., str]:
    """The :func:`uri` helper, as a fixture for tests that prefer not to import conftest."""
    return uri


@pytest.fixture
def server() -> Iterator[ServerFactory]:
    """Factory: ``server(handler, **options)`` returns a started server.

    Binds 127.0.0.1 on a free port unless ``host``, ``port``, ``unix_path`` or ``sock`` is
    given. Every server started is shut down at teardown with a bounded timeout.
    """
    started: list[syncws.Server] = []

    def start(
        handler: Callable[[syncws.ServerConnection], Any] = echo, **options: Any
    ) -> syncws.Server:
        if not {"unix_path", "sock"} & options.keys():
            options.setdefault("host", "127.0.0.1")
            options.setdefault("port", 0)
        host = options.pop("host", None)
        port = options.pop("port", None)
        instance = syncws.Server(handler, host, port, **options)
        started.append(instance)
        return instance.start()

    yield start
    for instance in started:
        instance.shutdown(timeout=SHUTDOWN_TIMEOUT)
