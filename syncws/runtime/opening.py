"""The server's side of the opening handshake, from an accepted socket to an open
connection: :class:`_OpeningHandshake`, a base of :class:`~syncws.Server`.

A pool thread runs :meth:`_OpeningHandshake._handshake` on each accepted socket: the TLS
handshake if any, reading the HTTP request (bounded by ``open_timeout``), the hooks, and
the response. Every way it can end without a connection (a bad or missing request, a
rejected or failed handshake, a hook's error, a shutdown) answers what is due and closes
the socket: none outlives its handshake. Until its request has arrived, a socket is listed
in ``_handshaking``, so that :meth:`~syncws.Server.shutdown` can end the wait at once.
"""

from __future__ import annotations

import logging
import reprlib
import socket
import ssl as ssl_module
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..protocol.events import ResponseReceived, State
from ..protocol.http11 import Request, Response, redact_target
from ..protocol.server import ServerProtocol
from .forwarded import _TrustedProxies
from .heartbeat import Heartbeat
from .options import ConnectionOptions, LoggerLike, _OpenConnections
from .transport import TLSTransport, Transport

if TYPE_CHECKING:
    from .server import ServerConnection

_SHUTTING_DOWN = "The server is shutting down.\n"
_HOOK_FAILED = "Failed to open a WebSocket connection.\n"

# For the log: what a hook returned instead of a Response, shortened.
_repr = reprlib.Repr()
_repr.maxother = _repr.maxstring = 80


def _shut_read(sock: socket.socket) -> None:
    """Shut ``sock`` down for reading: a thread blocked reading it wakes up with EOF."""
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass


class _OpeningHandshake:
    """The opening handshake of :class:`~syncws.Server` (see the module docstring)."""

    options: ConnectionOptions
    logger: LoggerLike
    ssl: ssl_module.SSLContext | None
    process_request: Callable[[ServerConnection, Request], Response | None] | None
    process_response: Callable[[ServerConnection, Request, Response], Response | None] | None
    _heartbeat: Heartbeat
    _new_protocol: Callable[[], ServerProtocol]
    _open_connections: _OpenConnections
    _lock: threading.Lock
    _trusted_proxies: _TrustedProxies | None
    _handshaking: set[socket.socket]
    _stopping: bool
    _shutdown_close: tuple[int, str]

    def _new_connection(
        self, transport: Transport, protocol: ServerProtocol, addresses: tuple[Any, Any]
    ) -> ServerConnection:
        raise NotImplementedError  # Server's

    def _handshake(
        self, sock: socket.socket, address: Any, local_address: Any = None
    ) -> ServerConnection | None:
        """Run the TLS and HTTP handshakes; return the open connection, or ``None`` once the
        socket has been answered (or dropped) and closed: it never outlives a failure.
        ``local_address`` is the socket's own when the acceptor knows it, else ``None``."""
        open_timeout = self.options.open_timeout
        deadline = None if open_timeout is None else time.monotonic() + open_timeout
        with self._lock:
            # Until the request has arrived, shutdown() can end the wait for it (see
            # _interrupt_handshakes); a thread that starts after shutdown() began does so.
            if self._stopping:
                _shut_read(sock)
            else:
                self._handshaking.add(sock)
        conn: ServerConnection | None = None
        try:
            if self.ssl is None:
                transport: Transport = Transport(sock)
            else:
                try:
                    transport = TLSTransport(sock, self.ssl, server_side=True)
                    transport.handshake(deadline)
                except (OSError, ssl_module.SSLError, TimeoutError) as exc:
                    why = "the server is shutting down" if self._stopping else exc
                    self.logger.info("TLS handshake with %s failed: %s", address, why)
                    self._drop(sock)
                    return None
            protocol = self._new_protocol()
            conn = self._new_connection(transport, protocol, (local_address, address))
            request = self._read_request(conn, deadline)
            if request is None:
                return None
            if self._trusted_proxies is not None:
                # Before the hooks: process_request sees the client's address.
                conn._set_remote_address(
                    self._trusted_proxies.client_address(conn.remote_address, request.headers)
                )
            response = self._build_response(conn, request)
            protocol.send_response(response)
            wire = protocol.data_to_send()
            # Decided now: once listed, shutdown() may start closing the connection (the
            # state moves on to CLOSING) before the 101 is even written.
            accepted = protocol.state is State.OPEN
            if accepted:
                # Listed before the 101 goes out, so that a client whose connect() returned
                # is in server.connections. This thread holds the writer token meanwhile:
                # a broadcast queues its message behind the 101, written just below.
                conn._hold_writer()
                self._open_connections.add(conn)
            transport.send(transport.encode(wire), deadline)
        except (OSError, TimeoutError) as exc:
            self.logger.info("opening handshake with %s failed: %s", address, exc)
            self._drop(sock, conn)
            return None
        except BaseException:
            # Unexpected (_build_response vets what the hooks return), and reported by the
            # pool thread; the socket must not leak for all that.
            self._drop(sock, conn)
            raise
        if not accepted:
            if protocol.handshake_exc is not None:
                self.logger.info(
                    "rejected WebSocket handshake from %s: HTTP %d (%s)",
                    address,
                    response.status_code,
                    protocol.handshake_exc,
                )
            else:
                self.logger.info("answered %s with HTTP %d", address, response.status_code)
            self._drop(sock)
            return None
        if self.logger.isEnabledFor(logging.INFO):  # conn.id is made on first use
            remote = conn.remote_address
            via = "" if remote is address else f" via {address}"
            self.logger.info(
                "%s: connection open from %s%s %s",
                conn.id,
                remote,
                via,
                redact_target(request.path),
            )
        self._heartbeat.add(conn)
        conn._release_writer()  # and write what a broadcast queued behind the 101
        if protocol.has_buffered_data() or transport.tls:
            conn._process_buffered()
        if self._stopping:
            # shutdown() may have listed the connections just before this one was added
            # (it passed the "shutting down? 503" check before shutdown began).
            conn._close_nowait(*self._shutdown_close)
        return conn

    def _read_request(self, conn: ServerConnection, deadline: float | None) -> Request | None:
        """Read the handshake request; ``None`` when there is none to answer: then the
        socket is closed, after an error response where one is due."""
        protocol, transport = conn.protocol, conn.transport
        # The request has usually arrived by now: then one system call reads it.
        data = transport.recv_nowait()
        while True:
            if data is None:
                timeout = None if deadline is None else deadline - time.monotonic()
                data = transport.recv(timeout) if timeout is None or timeout > 0 else None
            if data:
                for event in protocol.receive_data(data):
                    if not isinstance(event, ResponseReceived):
                        # From now on, a shutdown answers 503 in _build_response or closes
                        # the connection: the socket must stay readable.
                        with self._lock:
                            self._handshaking.discard(transport.sock)
                        return event.request  # type: ignore[union-attr]
                if protocol.handshake_exc is None:
                    data = None
                    continue
                # A malformed request: the protocol already built the error response.
                self.logger.info(
                    "bad HTTP request from %s: %s", conn.remote_address, protocol.handshake_exc
                )
            elif self._stopping:
                # shutdown() ended the wait, or the client left as it began: 503 either way.
                self.logger.info(
                    "answered %s with HTTP 503: the server is shutting down", conn.remote_address
                )
                protocol.send_response(conn.respond(503, _SHUTTING_DOWN))
            elif data is None:
                self.logger.info(
                    "opening handshake from %s timed out; dropped", conn.remote_address
                )
            else:
                self.logger.info(
                    "%s closed the connection during the handshake", conn.remote_address
                )
            wire = protocol.data_to_send()
            if wire:
                try:
                    transport.send(transport.encode(wire), deadline)
                except (OSError, TimeoutError):
                    pass
            self._drop(transport.sock)
            return None

    def _build_response(self, conn: ServerConnection, request: Request) -> Response:
        if self.process_request is not None:
            try:
                response = self.process_request(conn, request)
            except BaseException:  # SystemExit too, as for a handler
                self.logger.error("process_request failed", exc_info=True)
                return conn.respond(500, _HOOK_FAILED)
            if response is not None:
                return self._vetted("process_request", response, conn)
        if self._stopping:
            return conn.respond(503, _SHUTTING_DOWN)
        response = conn.protocol.accept(request)
        if self.process_response is not None:
            try:
                replacement = self.process_response(conn, request, response)
            except BaseException:
                self.logger.error("process_response failed", exc_info=True)
                return conn.respond(500, _HOOK_FAILED)
            # The hook may have changed the response in place, too: vetted either way.
            return self._vetted(
                "process_response", response if replacement is None else replacement, conn
            )
        return response

    def _vetted(self, hook: str, response: object, conn: ServerConnection) -> Response:
        """``response``, from ``hook``, if it can be sent, else a 500 (the error logged):
        checked here, as ``send_response()`` fails past the point where a 500 can be sent."""
        try:
            if not isinstance(response, Response):
                raise TypeError(f"a {type(response).__name__}, not a syncws.Response")
            response.serialize()  # as send_response() will: raises for a bad status, ...
        except Exception as exc:
            message = "%s returned an invalid response (%s): %s"
            self.logger.error(message, hook, exc, _repr.repr(response), exc_info=True)
            return conn.respond(500, _HOOK_FAILED)
        return response

    def _drop(self, sock: socket.socket, conn: ServerConnection | None = None) -> None:
        """Close the socket of a handshake that ended without a connection."""
        with self._lock:
            # Unlisted first: shutdown() must not shut down a closed socket's descriptor,
            # which may already belong to another socket.
            self._handshaking.discard(sock)
        if conn is not None:
            self._open_connections.discard(conn)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        if conn is not None:
            # shutdown() may have listed it already, and waits until it is closed.
            conn._finalize()

    def _interrupt_handshakes(self) -> None:
        """Step 2 of :meth:`shutdown`: wake the threads waiting for a handshake request.

        Shut down for reading, a socket wakes its reader with EOF (after what had arrived);
        that thread, the socket's only writer, answers 503 (drops a TLS handshake not done).
        Waiting on a wake-up socket too would cost a ``poll()`` per handshake read; this
        costs nothing until shutdown."""
        with self._lock:
            for sock in self._handshaking:
                _shut_read(sock)
