"""The client: ``connect()`` and ``ClientConnection``."""

from __future__ import annotations

import logging
import os
import socket
import ssl as ssl_module
import time
from collections.abc import Sequence
from typing import Any

from ..exceptions import InvalidMessage
from ..protocol.client import DEFAULT_USER_AGENT, ClientProtocol
from ..protocol.connection import DEFAULT_MAX_SIZE
from ..protocol.deflate import client_extensions
from ..protocol.events import ResponseReceived, State
from ..protocol.http11 import HeadersLike
from ..protocol.uri import parse_uri
from .connection import Connection
from .heartbeat import client_heartbeat
from .transport import TLSTransport, Transport

__all__ = ["ClientConnection", "connect"]


class ClientConnection(Connection):
    """A client connection, returned by :func:`connect`.

    Attributes:
        request: The handshake :class:`~syncws.Request` sent.
        response: The server's handshake :class:`~syncws.Response`.
        subprotocol: The negotiated subprotocol, or ``None``.
    """

    protocol: ClientProtocol

    def __enter__(self) -> ClientConnection:
        return self


def connect(
    uri: str,
    *,
    sock: socket.socket | None = None,
    unix_path: str | os.PathLike[str] | None = None,
    ssl: ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
    origin: str | None = None,
    subprotocols: Sequence[str] | None = None,
    additional_headers: HeadersLike | None = None,
    user_agent_header: str | None = DEFAULT_USER_AGENT,
    open_timeout: float | None = 10,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
    close_timeout: float | None = 10,
    write_timeout: float | None = None,
    max_size: int | None = DEFAULT_MAX_SIZE,
    compression: str | None = "deflate",
    max_queue: int = 16,
    logger: logging.Logger | None = None,
) -> ClientConnection:
    """Open a WebSocket connection to ``uri``.

    Use it as a context manager to close the connection on exit::

        with syncws.connect("ws://localhost:8765/") as ws:
            ws.send("Hello")
            print(ws.recv())

    Args:
        uri: A ``ws://`` or ``wss://`` URI. User info (``ws://user:pass@host/``) is sent as
            HTTP Basic authentication.
        sock: A connected socket to use instead of opening one.
        unix_path: Connect to this Unix socket instead of the URI's host and port (the URI
            still gives the ``Host`` header and the path).
        ssl: The TLS context for ``wss://``; a default, certificate-verifying one if
            ``None``.
        server_hostname: The name to verify in the server's certificate and send in SNI,
            when it differs from the URI's host.
        origin: The ``Origin`` header.
        subprotocols: Subprotocols to offer, by preference.
        additional_headers: More headers for the handshake request.
        user_agent_header: The ``User-Agent`` header; ``None`` omits it.
        open_timeout: Seconds for TCP, TLS and WebSocket handshakes together.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds to wait for a pong before failing with 1011.
        close_timeout: Seconds to wait for the closing handshake.
        write_timeout: Seconds a send may block; then the connection fails with 1011.
        max_size: Largest incoming message in bytes; ``None`` for no limit. With
            compression, the limit applies to the decompressed size.
        compression: ``"deflate"`` offers permessage-deflate (RFC 7692), used if the
            server accepts it (see :doc:`/topics/compression`); ``None`` disables
            compression.
        max_queue: Messages buffered while no thread is in ``recv()``, before the client
            stops reading the socket (TCP backpressure). A high-water mark: the read that
            reaches it is queued whole (see :doc:`/topics/threads`).
        logger: Logger, ``logging.getLogger("syncws.client")`` by default.

    Raises:
        InvalidURI: ``uri`` is not a valid WebSocket URI.
        InvalidStatus: The server answered with a status other than 101.
        InvalidHandshake: The server's answer is not a valid WebSocket handshake.
        TimeoutError: The handshake did not complete within ``open_timeout``.
        OSError: The connection could not be opened (refused, unreachable, TLS failure).
        ValueError: An option is invalid, e.g. ``compression`` is neither ``"deflate"``
            nor ``None``.
    """
    wsuri = parse_uri(uri)
    extensions = client_extensions(compression)  # ValueError if unknown
    if ssl is not None and not wsuri.secure:
        raise ValueError("ssl is only for wss:// URIs")
    logger = logger or logging.getLogger("syncws.client")
    deadline = None if open_timeout is None else time.monotonic() + open_timeout

    def remaining() -> float | None:
        if deadline is None:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out during the opening handshake")
        return left

    if sock is None:
        if unix_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(remaining())
            try:
                sock.connect(os.fspath(unix_path))
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection((wsuri.host, wsuri.port), timeout=remaining())
    sock.settimeout(None)
    if sock.family != socket.AF_UNIX:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport: Transport
    try:
        if wsuri.secure:
            context = ssl if ssl is not None else ssl_module.create_default_context()
            transport = TLSTransport(
                sock, context, server_side=False, server_hostname=server_hostname or wsuri.host
            )
            transport.handshake(deadline)
        else:
            transport = Transport(sock)
        protocol = ClientProtocol(
            wsuri,
            origin=origin,
            subprotocols=subprotocols,
            additional_headers=additional_headers,
            user_agent_header=user_agent_header,
            max_size=max_size,
            extensions=extensions,
        )
        protocol.send_request(protocol.connect())
        transport.send(transport.encode(protocol.data_to_send()), deadline)
        events: list[Any] = []
        while protocol.state is State.CONNECTING:
            data = transport.recv(remaining())
            if data is None:
                raise TimeoutError("timed out during the opening handshake")
            events = protocol.receive_data(data) if data else protocol.receive_eof()
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        if protocol.response is None:
            raise InvalidMessage("connection closed during the opening handshake")
        # The state may already be CLOSING: frames that came with the 101 (messages, then a
        # close frame) were processed too; the connection delivers them before closing.
    except BaseException:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        raise
    conn = ClientConnection(
        transport,
        protocol,
        heartbeat=client_heartbeat(),
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
        write_timeout=write_timeout,
        max_queue=max_queue,
        logger=logger,
    )
    conn._remember_addresses()
    client_heartbeat().add(conn)
    with conn._lock:
        for event in events:
            if not isinstance(event, ResponseReceived):
                conn._handle_event(event)
    conn._process_buffered()
    return conn
