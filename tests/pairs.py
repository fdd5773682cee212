"""Connections on a socket pair, without a :class:`syncws.Server` and without ``connect()``.

The opening handshake runs in memory, between a
:class:`~syncws.protocol.client.ClientProtocol` and a
:class:`~syncws.protocol.server.ServerProtocol`; then each end of a
:func:`socket.socketpair` (or a TLS session over it) becomes a connection through
:meth:`syncws.ServerConnection.from_handshake` and
:meth:`syncws.ClientConnection.from_handshake`, served by a heartbeat thread of the test's
own. Nothing is listening, nothing is resolved: a connection costs two socket system calls
and no round trip.

The ``pairs`` fixture (conftest.py) hands out a :class:`Pairs`:

- ``pairs()`` returns ``(server, client)``, two connected connections;
- ``pairs.server_facing_raw()`` / ``pairs.client_facing_raw()`` return one connection and
  the other end as a plain socket (:data:`~timing.TIMEOUT` on its reads), for a peer that
  misbehaves on purpose (frames from :mod:`rawws`: a raw client masks, a raw server not).

Connection options are keyword arguments, as for ``connect()``; the defaults here differ
from the library's where determinism asks for it: no keepalive pings, no compression, and
``close_timeout`` is :data:`~timing.TIMEOUT`. At teardown, the raw ends are closed, every
connection is closed (both ends of a pair at once), and the heartbeat is stopped.
"""

from __future__ import annotations

import functools
import logging
import socket
import ssl
import threading
from typing import Any

from timing import TIMEOUT

import syncws
from syncws.protocol.client import ClientProtocol
from syncws.protocol.deflate import client_extensions, server_extensions
from syncws.protocol.events import RequestReceived, State
from syncws.protocol.server import ServerProtocol
from syncws.protocol.uri import parse_uri
from syncws.runtime.heartbeat import Heartbeat
from syncws.runtime.transport import TLSTransport, Transport

__all__ = ["Pairs", "handshake"]

#: The options of a pair unless a test gives its own.
DEFAULTS: dict[str, Any] = {"ping_interval": None, "compression": None, "close_timeout": TIMEOUT}


def handshake(
    options: syncws.ConnectionOptions,
    *,
    subprotocols: list[str] | None = None,
) -> tuple[ServerProtocol, ClientProtocol]:
    """Run an opening handshake in memory; return both protocols, open."""
    client = ClientProtocol(
        parse_uri("ws://pair.invalid/"),
        subprotocols=subprotocols,
        max_size=options.max_size,
        extensions=client_extensions(options.compression),
    )
    server = ServerProtocol(
        subprotocols=subprotocols,
        max_size=options.max_size,
        extensions=server_extensions(options.compression),
    )
    client.send_request(client.connect())
    (event,) = server.receive_data(client.data_to_send())
    assert isinstance(event, RequestReceived)
    server.send_response(server.accept(event.request))
    client.receive_data(server.data_to_send())
    assert server.state is State.OPEN and client.state is State.OPEN, client.handshake_exc
    return server, client


@functools.cache
def _tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    from conftest import tls_contexts  # a fresh CA costs ~50 ms: one per session

    return tls_contexts("localhost")


def _tls(server_sock: socket.socket, client_sock: socket.socket) -> tuple[Transport, Transport]:
    """TLS sessions over both ends, their handshakes run at once (each one blocks)."""
    server_ctx, client_ctx = _tls_contexts()
    server = TLSTransport(server_sock, server_ctx, server_side=True)
    client = TLSTransport(client_sock, client_ctx, server_side=False, server_hostname="localhost")
    failed: list[BaseException] = []

    def server_side() -> None:
        try:
            server.handshake(None)
        except BaseException as exc:  # reported below, in the test's thread
            failed.append(exc)

    thread = threading.Thread(target=server_side)
    thread.start()
    client.handshake(None)
    thread.join(TIMEOUT)
    assert not thread.is_alive() and not failed, failed
    return server, client


class Pairs:
    """Makes connections on socket pairs; :meth:`close` ends them all (see the module)."""

    def __init__(self) -> None:
        self.heartbeat = Heartbeat("syncws-test-heartbeat", logging.getLogger("syncws.test"))
        self._connections: list[syncws.Connection] = []
        self._raw: list[socket.socket] = []

    def _options(self, options: dict[str, Any]) -> syncws.ConnectionOptions:
        return syncws.ConnectionOptions(**{**DEFAULTS, **options})

    def __call__(
        self, *, tls: bool = False, subprotocols: list[str] | None = None, **options: Any
    ) -> tuple[syncws.ServerConnection, syncws.ClientConnection]:
        """A connected ``(server, client)`` pair, over TLS if ``tls``."""
        opts = self._options(options)
        server_protocol, client_protocol = handshake(opts, subprotocols=subprotocols)
        server_sock, client_sock = socket.socketpair()
        server_end: Transport | socket.socket = server_sock
        client_end: Transport | socket.socket = client_sock
        if tls:
            server_end, client_end = _tls(server_sock, client_sock)
        server = self._server(server_end, server_protocol, opts)
        client = self._client(client_end, client_protocol, opts)
        self._connections += [server, client]
        return server, client

    def server_facing_raw(self, **options: Any) -> tuple[syncws.ServerConnection, socket.socket]:
        """A server connection and its peer, a plain socket (send masked frames on it)."""
        opts = self._options(options)
        sock, raw = socket.socketpair()
        server = self._server(sock, handshake(opts)[0], opts)
        return server, self._keep(server, raw)

    def client_facing_raw(self, **options: Any) -> tuple[syncws.ClientConnection, socket.socket]:
        """A client connection and its peer, a plain socket (send unmasked frames on it)."""
        opts = self._options(options)
        sock, raw = socket.socketpair()
        client = self._client(sock, handshake(opts)[1], opts)
        return client, self._keep(client, raw)

    def _server(
        self, end: Transport | socket.socket, protocol: ServerProtocol, options: Any
    ) -> syncws.ServerConnection:
        return syncws.ServerConnection.from_handshake(end, protocol, **self._serving(options))

    def _client(
        self, end: Transport | socket.socket, protocol: ClientProtocol, options: Any
    ) -> syncws.ClientConnection:
        return syncws.ClientConnection.from_handshake(end, protocol, **self._serving(options))

    def _serving(self, options: syncws.ConnectionOptions) -> dict[str, Any]:
        return {"options": options, "heartbeat": self.heartbeat}

    def _keep(self, conn: syncws.Connection, raw: socket.socket) -> socket.socket:
        raw.settimeout(TIMEOUT)
        self._connections.append(conn)
        self._raw.append(raw)
        return raw

    def close(self) -> None:
        """Close the raw ends, then every connection (at once, so that both ends of a pair
        answer each other), then stop the heartbeat. Bounded by :data:`~timing.TIMEOUT`."""
        for raw in self._raw:
            raw.close()
        closers = [
            threading.Thread(target=_close_quietly, args=(conn,)) for conn in self._connections
        ]
        for thread in closers:
            thread.start()
        for thread in closers:
            thread.join(TIMEOUT)
        self.heartbeat.stop()
        still_open = [conn for conn in self._connections if not conn.wait_closed(0)]
        assert not still_open, f"connections still open after the test: {still_open}"


def _close_quietly(conn: syncws.Connection) -> None:
    try:
        conn.close()
    except ValueError:  # e.g. a test changed close_timeout to something odd
        pass
