"""Shared fixtures for the loopback integration tests.

- ``server``: a factory; ``server(handler, **options)`` starts a :class:`syncws.Server` on
  127.0.0.1 with a free port (or with the given ``host``/``port``/``unix_path``/``sock``) in
  a background thread and shuts every server it started down at teardown (bounded).
- ``echo``: a handler that sends every message back.
- ``uri(server)``: the ``ws://`` URI of a running TCP server.
- ``tls_contexts(hostname="localhost")``: a server context with a certificate for
  ``hostname`` from a fresh test CA, and a client context that trusts that CA.
- ``program(args)``: a Python program of this checkout in a subprocess, killed at the end
  if still running, with its standard error read line by line (``Program``).
- ``ipv6_loopback()``: whether ``::1`` can be bound here.
- ``redis_server``: a real ``redis-server`` on a free port (from ``services.py``, which also
  runs nginx).
- ``pairs``: connections on socket pairs, without a server (:class:`pairs.Pairs`).

Every bounded wait uses :data:`timing.TIMEOUT`, the tests' one unit of time (scaled by
``SYNCWS_TESTS_TIMEOUT_FACTOR``).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import websockets.sync.client
import websockets.sync.server
from pairs import Pairs

# Fixtures: a syncws server process that tests stop and start (reconnection); real
# services (redis-server, nginx).
from server_process import server_process  # noqa: F401 (a fixture)
from services import redis_server  # noqa: F401
from timing import FACTOR, TIMEOUT, scale_timeout_marks

import syncws

# connect() takes its proxy from the environment (proxy=True): the tests, which only talk
# to loopback, must not depend on the machine's http_proxy / https_proxy / all_proxy (also
# in the subprocesses they start). Tests of the environment set their own.
for _name in list(os.environ):
    if _name.lower().endswith("_proxy"):
        del os.environ[_name]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """pytest-timeout's limits grow with the tests' unit of time (see timing.py)."""
    scale_timeout_marks(items, float(config.getini("timeout") or 0), FACTOR)


#: Upper bound, in seconds, for the shutdown of each server started by the fixture.
SHUTDOWN_TIMEOUT = TIMEOUT

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


def tls_contexts(hostname: str = "localhost") -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for ``hostname`` from a fresh test CA, and a
    client context that trusts that CA."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(hostname).configure_cert(server_ctx)
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


def ipv6_loopback() -> bool:
    """Whether ``::1`` can be bound on this machine (IPv6 may be disabled)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


class Program:
    """A Python program of this checkout in a subprocess, whose standard error a thread
    reads line by line (a ``select()`` on the pipe would miss lines already buffered).
    With ``stdin=True``, ``proc.stdin`` is a pipe to write the program's input to."""

    def __init__(self, args: list[str], cwd: Path | None = None, *, stdin: bool = False) -> None:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.PIPE if stdin else None,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.put(line)

    def line(self, timeout: float) -> str:
        """The next line of standard error, waiting up to ``timeout`` seconds."""
        try:
            return self._lines.get(timeout=max(0.0, timeout))
        except queue.Empty:
            raise AssertionError("no output from the program in time") from None

    def rest(self, timeout: float) -> str:
        """The rest of standard error, once the program has closed it (it exited)."""
        self._reader.join(timeout)
        lines = []
        while not self._lines.empty():
            lines.append(self._lines.get())
        return "".join(lines)

    def stop_gracefully(self, clients: list[syncws.ClientConnection], timeout: float) -> str:
        """SIGTERM the program (a server): each of its ``clients`` gets 1001, and it exits
        with 0 and no traceback, within ``timeout`` seconds; return the rest of its
        standard error."""
        self.proc.send_signal(signal.SIGTERM)
        for ws in clients:
            with pytest.raises(syncws.ConnectionClosedOK):
                ws.recv(timeout=timeout)
            assert ws.close_code == 1001
        assert self.proc.wait(timeout) == 0
        rest = self.rest(timeout)
        assert "Traceback" not in rest
        return rest


@contextlib.contextmanager
def program(args: list[str], cwd: Path | None = None, *, stdin: bool = False) -> Iterator[Program]:
    """Run ``python ARGS`` (see :class:`Program`), in ``cwd`` if given; kill it on the way
    out if it still runs."""
    running = Program(args, cwd, stdin=stdin)
    with running.proc:
        try:
            yield running
        finally:
            if running.proc.poll() is None:
                running.proc.kill()


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


@pytest.fixture
def pairs() -> Iterator[Pairs]:
    """Connections on socket pairs (see :mod:`pairs`), all closed at teardown, with the
    heartbeat thread that served them."""
    made = Pairs()
    yield made
    made.close()


# A websockets.sync peer, for the interoperability tests.

#: ``ws_server(handler=ws_echo, **options)`` starts a ``websockets.sync`` server; returns its URI.
WsServerStarter = Callable[..., str]


def ws_echo(ws: websockets.sync.server.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


@pytest.fixture
def ws_server() -> Iterator[WsServerStarter]:
    """Factory: ``ws_server(handler)`` runs a ``websockets.sync`` server on 127.0.0.1 and
    returns its URI; every server started is shut down at teardown."""
    started: list[tuple[websockets.sync.server.Server, threading.Thread]] = []

    def start(
        handler: Callable[[websockets.sync.server.ServerConnection], None] = ws_echo,
        **options: Any,
    ) -> str:
        instance = websockets.sync.server.serve(handler, "127.0.0.1", 0, **options)
        thread = threading.Thread(target=instance.serve_forever, daemon=True)
        thread.start()
        started.append((instance, thread))
        return f"ws://127.0.0.1:{instance.socket.getsockname()[1]}/"

    yield start
    for instance, thread in started:
        instance.shutdown()
        thread.join(TIMEOUT)


def ws_connect(uri: str, **options: Any) -> websockets.sync.client.ClientConnection:
    """A ``websockets.sync`` client connection, ignoring any proxy settings."""
    ws: websockets.sync.client.ClientConnection
    ws = websockets.sync.client.connect(uri, proxy=None, open_timeout=TIMEOUT, **options)
    return ws
