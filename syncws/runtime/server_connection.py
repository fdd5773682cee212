"""The server's side of a connection: :class:`ServerConnection`, and its opening handshake.

A :class:`ServerConnection` runs its own opening handshake. On a socket that a
:class:`~syncws.Server` accepted, :meth:`ServerConnection._accept` (in a pool thread) runs
the TLS handshake if any, reads the HTTP request (bounded by ``open_timeout``), calls the
hooks, and writes the response. Every way it can end without a connection (a bad or missing
request, a rejected or failed handshake, a hook's error, a shutdown) answers what is due and
closes the socket: none outlives its handshake. Until its request has arrived, a socket is
listed in the server's :class:`_AwaitedRequests`, so that :meth:`~syncws.Server.shutdown`
can end the wait at once.

The server supplies what only it knows through :class:`Acceptor`: the hooks, the trusted
proxies, whether it is shutting down, and the set of open connections. An
:class:`~syncws.integrations.wsgi.Upgrader`, whose WSGI server read the request, shares the
last step, :meth:`ServerConnection._respond`: it lists the connection before the ``101``
goes out, while holding the writer token, then opens it.
"""

from __future__ import annotations

import logging
import reprlib
import socket
import ssl as ssl_module
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..protocol.events import ResponseReceived, State
from ..protocol.http11 import Request, Response, redact_target
from ..protocol.server import ServerProtocol
from .connection import Connection
from .forwarded import _TrustedProxies
from .heartbeat import Heartbeat, wsgi_heartbeat
from .options import ConnectionOptions, LoggerLike, _OpenConnections
from .transport import TLSTransport, Transport, _handshaken, _socket_addresses

__all__ = ["ConnectionOwner", "ServerConnection"]

_SHUTTING_DOWN = "The server is shutting down.\n"
_HOOK_FAILED = "Failed to open a WebSocket connection.\n"

# For the log: what a hook returned instead of a Response, shortened.
_repr = reprlib.Repr()
_repr.maxother = _repr.maxstring = 80


class ConnectionOwner(Protocol):
    """What a :class:`ServerConnection` takes from whoever accepted it: its options and
    logger, the heartbeat thread that serves it, the set of open connections it joins, and
    whether a shutdown has begun (with the close code and reason it closes connections with).

    :class:`~syncws.Server` is one; :class:`syncws.integrations.wsgi.Upgrader`, which
    upgrades requests inside a WSGI app and has no listening socket, is the other.
    """

    @property
    def options(self) -> ConnectionOptions: ...
    @property
    def logger(self) -> LoggerLike: ...
    @property
    def connections(self) -> set[ServerConnection]: ...
    @property
    def _heartbeat(self) -> Heartbeat: ...
    @property
    def _open_connections(self) -> _OpenConnections: ...
    @property
    def _stopping(self) -> bool: ...
    @property
    def _shutdown_close(self) -> tuple[int, str]: ...


class Acceptor(ConnectionOwner, Protocol):
    """What the opening handshake of a :class:`ServerConnection` takes from the server that
    accepted its socket, besides a :class:`ConnectionOwner`'s: the TLS context, the hooks,
    the trusted proxies, the protocol of each connection, and the sockets whose request is
    awaited. :class:`~syncws.Server` is one."""

    @property
    def ssl(self) -> ssl_module.SSLContext | None: ...
    @property
    def process_request(self) -> ProcessRequest | None: ...
    @property
    def process_response(self) -> ProcessResponse | None: ...
    @property
    def _trusted_proxies(self) -> _TrustedProxies | None: ...
    @property
    def _new_protocol(self) -> Callable[[], ServerProtocol]: ...
    @property
    def _awaited(self) -> _AwaitedRequests: ...


def _shut_read(sock: socket.socket) -> None:
    """Shut ``sock`` down for reading: a thread blocked reading it wakes up with EOF."""
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    """Shut ``sock`` down both ways, and close it."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class _AwaitedRequests:
    """The sockets of a :class:`~syncws.Server` whose handshake request is still awaited,
    under a lock of their own, so that :meth:`interrupt` (step 2 of
    :meth:`~syncws.Server.shutdown`) ends the wait of their threads at once."""

    __slots__ = ("_interrupted", "_lock", "_sockets")

    def __init__(self) -> None:
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._interrupted = False

    def add(self, sock: socket.socket) -> None:
        """Await the request on ``sock``; a socket added after :meth:`interrupt` is shut
        down for reading at once (a handshake thread that started after shutdown began)."""
        with self._lock:
            if self._interrupted:
                _shut_read(sock)
            else:
                self._sockets.add(sock)

    def discard(self, sock: socket.socket) -> None:
        """The request arrived, or ``sock`` is about to be closed: from now on a shutdown
        must not shut it down (its descriptor may soon belong to another socket)."""
        with self._lock:
            self._sockets.discard(sock)

    def interrupt(self) -> None:
        """Wake the threads waiting for a handshake request, and those still to come.

        Shut down for reading, a socket wakes its reader with EOF (after what had arrived);
        that thread, the socket's only writer, answers 503 (drops a TLS handshake not done).
        Waiting on a wake-up socket too would cost a ``poll()`` per handshake read; this
        costs nothing until shutdown."""
        with self._lock:
            self._interrupted = True
            for sock in self._sockets:
                _shut_read(sock)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sockets)


class ServerConnection(Connection):
    """A connection accepted by a :class:`Server`, passed to its handler.

    Attributes:
        server: The :class:`Server` that accepted the connection (for a connection
            upgraded inside a WSGI app, the :class:`~syncws.integrations.wsgi.Upgrader`).
        request: The client's handshake :class:`~syncws.Request` (path, headers).
        response: The server's handshake :class:`~syncws.Response`.
        subprotocol: The negotiated subprotocol, or ``None``.
        handler: On a server made by :func:`~syncws.route`, the handler that the request's
            URL matched (set before the handshake completes).
        handler_kwargs: With ``handler``, the variables of the URL, as keyword arguments.
    """

    # See Connection.__slots__.
    __slots__ = (
        "_close_callbacks",
        "server",
        "username",
    )

    protocol: ServerProtocol
    # Set by Router.route_request only: in the instance __dict__ (see Connection).
    handler: Callable[..., Any]
    handler_kwargs: dict[str, Any]

    def __init__(
        self,
        server: ConnectionOwner,
        transport: Transport,
        protocol: ServerProtocol,
        *,
        addresses: tuple[Any, Any] = (None, None),
    ) -> None:
        """``addresses``: the local and remote addresses where known (``None`` where not),
        which saves asking the socket for them."""
        super().__init__(
            transport,
            protocol,
            heartbeat=server._heartbeat,
            options=server.options,
            logger=server.logger,
            addresses=_socket_addresses(transport.sock, *addresses),
        )
        self.server = server
        self.username: str | None = None
        """The authenticated user, set by :func:`~syncws.basic_auth`."""
        # Made by the first _call_when_closed(): most connections never have any.
        self._close_callbacks: list[Callable[[], Any]] | None = None

    @classmethod
    def from_handshake(
        cls,
        transport: Transport | socket.socket,
        protocol: ServerProtocol,
        *,
        options: ConnectionOptions | None = None,
        logger: LoggerLike | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> ServerConnection:
        """A server connection over a socket whose opening handshake is done, without a
        :class:`~syncws.Server`.

        For an application that accepts the socket and runs the handshake itself, with
        ``protocol`` (see :doc:`/howto/sans_io`), and for tests. The connection is served
        at once (keepalive pings, the closing handshake bounded by ``close_timeout``);
        its :attr:`server` has its ``options``, ``logger`` and ``connections`` (this
        connection while it is open).

        Args:
            transport: A connected socket, blocking (an ``ssl.SSLSocket`` is refused), or a
                :class:`~syncws.runtime.transport.Transport` of the runtime (for TLS, a
                :class:`~syncws.runtime.transport.TLSTransport` whose handshake is done).
            protocol: The :class:`~syncws.protocol.server.ServerProtocol` that answered
                the handshake, no longer ``CONNECTING``; make it with the same
                ``max_size`` as ``options``.
            options: The connection options; the defaults if ``None``.
            logger: Logger, ``logging.getLogger("syncws.server")`` by default.
            heartbeat: The heartbeat thread that serves the connection; the one shared by
                the process's connections without a server if ``None``.

        Raises:
            TypeError: ``protocol`` is not a server protocol, or ``transport`` is neither
                a socket nor a transport.
            ValueError: The handshake is not complete.
        """
        wrapped = _handshaken(transport, protocol, ServerProtocol)
        owner = _Standalone(
            ConnectionOptions() if options is None else options,
            logger or logging.getLogger("syncws.server"),
            wsgi_heartbeat() if heartbeat is None else heartbeat,
        )
        conn = cls(owner, wrapped, protocol)
        owner.adopt(conn)
        conn._start()
        return conn

    def respond(self, status_code: int, text: str) -> Response:
        """Build a plain-text response, to return from ``process_request``.

        Example: ``return ws.respond(200, "OK\\n")`` answers a health check.
        """
        return self.protocol.reject(status_code, text)

    def _call_when_closed(self, callback: Callable[[], Any]) -> bool:
        """Have ``callback()`` called once the connection is closed (by the thread that
        finalises it: it must not block); ``False``, registering nothing, when it already is.

        For integrations that keep connections in registries of their own (the Redis hub's
        topics): a connection leaves them without its handler doing anything.
        """
        with self._lock:
            # _finalize sets _closed under _lock before calling _connection_lost, which
            # takes the list: a callback is either called or refused, never forgotten.
            if self._closed:
                return False
            if self._close_callbacks is None:
                self._close_callbacks = []
            self._close_callbacks.append(callback)
        return True

    def _connection_lost(self) -> None:
        self.server._open_connections.discard(self)
        with self._lock:
            callbacks, self._close_callbacks = self._close_callbacks, None
        for callback in callbacks or ():
            try:
                callback()
            except Exception:
                self.logger.error("%s: a close callback failed", self.id, exc_info=True)

    # The opening handshake (see the module docstring).

    @classmethod
    def _accept(
        cls, server: Acceptor, sock: socket.socket, address: Any, local_address: Any = None
    ) -> ServerConnection | None:
        """Open a connection on ``sock``, which ``server`` accepted from ``address``: run
        the TLS and HTTP handshakes; return the open connection, or ``None`` once the socket
        has been answered (or dropped) and closed: it never outlives a failure.
        ``local_address`` is the socket's own when the acceptor knows it, else ``None``."""
        try:
            context = server.ssl
            transport: Transport = Transport(sock)
            if context is not None:
                transport = TLSTransport(sock, context, server_side=True)
            protocol = server._new_protocol()
            conn = cls(server, transport, protocol, addresses=(local_address, address))
        except BaseException:
            # Unexpected, and reported by the pool thread; the socket must not leak for all
            # that.
            _close(sock)
            raise
        return conn if conn._open(server, address) else None

    def _open(self, server: Acceptor, address: Any) -> bool:
        """:meth:`_accept`, once the connection is made: whether it is open."""
        open_timeout = self.server.options.open_timeout
        deadline = None if open_timeout is None else time.monotonic() + open_timeout
        transport = self.transport
        # Until the request has arrived, shutdown() can end the wait for it; a thread that
        # starts after shutdown() began does so at once.
        server._awaited.add(transport.sock)
        try:
            if isinstance(transport, TLSTransport):
                try:
                    transport.handshake(deadline)
                except (OSError, ssl_module.SSLError, TimeoutError) as exc:
                    why = "the server is shutting down" if server._stopping else exc
                    self.logger.info("TLS handshake with %s failed: %s", address, why)
                    self._drop(server._awaited)
                    return False
            request = self._read_request(server, deadline)
            if request is None:
                return False
            if server._trusted_proxies is not None:
                # Before the hooks: process_request sees the client's address.
                self._peername = server._trusted_proxies.client_address(
                    self._peername, request.headers
                )
            response = self._build_response(server, request)
        except (OSError, TimeoutError) as exc:
            self.logger.info("opening handshake with %s failed: %s", address, exc)
            self._drop(server._awaited, finalize=True)
            return False
        except BaseException:
            # Unexpected (_build_response vets what the hooks return), and reported by the
            # pool thread; the socket must not leak for all that.
            self._drop(server._awaited, finalize=True)
            raise
        try:
            return self._respond(response, deadline, address)
        except (OSError, TimeoutError) as exc:  # _respond dropped the connection
            self.logger.info("opening handshake with %s failed: %s", address, exc)
            return False

    def _read_request(self, server: Acceptor, deadline: float | None) -> Request | None:
        """Read the handshake request; ``None`` when there is none to answer: then the
        socket is closed, after an error response where one is due."""
        protocol, transport = self.protocol, self.transport
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
                        server._awaited.discard(transport.sock)
                        return event.request  # type: ignore[union-attr]
                if protocol.handshake_exc is None:
                    data = None
                    continue
                # A malformed request: the protocol already built the error response.
                self.logger.info(
                    "bad HTTP request from %s: %s", self.remote_address, protocol.handshake_exc
                )
            elif server._stopping:
                # shutdown() ended the wait, or the client left as it began: 503 either way.
                self.logger.info(
                    "answered %s with HTTP 503: the server is shutting down", self.remote_address
                )
                protocol.send_response(self.respond(503, _SHUTTING_DOWN))
            elif data is None:
                self.logger.info(
                    "opening handshake from %s timed out; dropped", self.remote_address
                )
            else:
                self.logger.info(
                    "%s closed the connection during the handshake", self.remote_address
                )
            wire = protocol.data_to_send()
            if wire:
                try:
                    transport.send(transport.encode(wire), deadline)
                except (OSError, TimeoutError):
                    pass
            self._drop(server._awaited)
            return None

    def _build_response(self, server: Acceptor, request: Request) -> Response:
        if server.process_request is not None:
            try:
                response = server.process_request(self, request)
            except BaseException:  # SystemExit too, as for a handler
                self.logger.error("process_request failed", exc_info=True)
                return self.respond(500, _HOOK_FAILED)
            if response is not None:
                return self._vetted("process_request", response)
        if server._stopping:
            return self.respond(503, _SHUTTING_DOWN)
        response = self.protocol.accept(request)
        if server.process_response is not None:
            try:
                replacement = server.process_response(self, request, response)
            except BaseException:
                self.logger.error("process_response failed", exc_info=True)
                return self.respond(500, _HOOK_FAILED)
            # The hook may have changed the response in place, too: vetted either way.
            return self._vetted(
                "process_response", response if replacement is None else replacement
            )
        return response

    def _vetted(self, hook: str, response: object) -> Response:
        """``response``, from ``hook``, if it can be sent, else a 500 (the error logged):
        checked here, as ``send_response()`` fails past the point where a 500 can be sent."""
        try:
            if not isinstance(response, Response):
                raise TypeError(f"a {type(response).__name__}, not a syncws.Response")
            if response.status_code == 101 and not self.protocol.accepted:
                raise ValueError(
                    "a 101 for a request that the handshake's checks did not accept: "
                    "return None from process_request to run them"
                )
            response.serialize()  # as send_response() will: raises for a bad status, ...
        except Exception as exc:
            message = "%s returned an invalid response (%s): %s"
            self.logger.error(message, hook, exc, _repr.repr(response), exc_info=True)
            return self.respond(500, _HOOK_FAILED)
        return response

    def _respond(
        self, response: Response, deadline: float | None, address: Any, early: bytes = b""
    ) -> bool:
        """Write the handshake ``response``; if it accepts the handshake, open the
        connection and process ``early`` (bytes that came after the request) and what the
        protocol buffered. Return whether the connection is open; when not, the socket is
        closed (the rejection written). Both handshakes end here: a :class:`~syncws.Server`'s
        and a WSGI :class:`~syncws.integrations.wsgi.Upgrader`'s.

        ``address`` is the socket's peer, for the log (:attr:`remote_address` may be the
        client's behind a trusted proxy).

        Raises:
            OSError: Writing the response failed (``TimeoutError`` past ``deadline``); the
                connection is closed, and unlisted.
        """
        protocol, transport = self.protocol, self.transport
        try:
            protocol.send_response(response)
            wire = protocol.data_to_send()
            # Decided now: once listed, shutdown() may start closing the connection (the
            # state moves on to CLOSING) before the 101 is even written.
            accepted = protocol.state is State.OPEN
            if accepted:
                # Listed before the 101 goes out, so that a client whose connect() returned
                # is in server.connections. This thread holds the writer token meanwhile:
                # a broadcast queues its message behind the 101, written just below.
                with self._lock:
                    self._writer.token.take()
                self.server._open_connections.add(self)
            transport.send(transport.encode(wire), deadline)
        except BaseException:
            self._drop(finalize=True)
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
            self._drop()
            return False
        if self.logger.isEnabledFor(logging.INFO):  # the id is made on first use
            remote = self.remote_address
            via = "" if remote is address else f" via {address}"
            request = protocol.request
            self.logger.info(
                "%s: connection open from %s%s %s",
                self.id,
                remote,
                via,
                "" if request is None else redact_target(request.path),
            )
        self._heartbeat.add(self)
        # Give the writer token back (waking whoever waits for it), and write what a
        # broadcast queued behind the 101.
        with self._lock:
            self._writer.token.release()
        self._flush_nowait()
        if early or protocol.has_buffered_data() or self._tls:
            self._process(early, eof=False)
        if self.server._stopping:
            # shutdown() may have listed the connections just before this one was added
            # (it passed the "shutting down? 503" check before shutdown began).
            self._close_nowait(*self.server._shutdown_close)
        return True

    def _drop(self, awaited: _AwaitedRequests | None = None, *, finalize: bool = False) -> None:
        """Close the socket of a handshake that ended without a connection; ``finalize``
        when the connection may have been listed (and a shutdown may wait for it)."""
        sock = self.transport.sock
        if awaited is not None:
            # Unlisted first: shutdown() must not shut down a closed socket's descriptor,
            # which may already belong to another socket.
            awaited.discard(sock)
        if finalize:
            self.server._open_connections.discard(self)
        _close(sock)
        if finalize:
            # shutdown() may have listed it already, and waits until it is closed.
            self._finalize()


ProcessRequest = Callable[[ServerConnection, Request], Response | None]
ProcessResponse = Callable[[ServerConnection, Request, Response], Response | None]


class _Standalone:
    """The :class:`ConnectionOwner` of a connection made by
    :meth:`ServerConnection.from_handshake`, which no server accepted."""

    __slots__ = ("_heartbeat", "_open_connections", "logger", "options")

    #: No server: nothing shuts it down but the application.
    _stopping = False
    _shutdown_close = (1001, "")

    def __init__(
        self, options: ConnectionOptions, logger: LoggerLike, heartbeat: Heartbeat
    ) -> None:
        self.options = options
        self.logger = logger
        self._heartbeat = heartbeat
        self._open_connections = _OpenConnections()

    @property
    def connections(self) -> set[ServerConnection]:
        """Its connection while it is open, as :attr:`Server.connections` would list it."""
        return self._open_connections.open()

    def adopt(self, conn: ServerConnection) -> None:
        """List ``conn``, which leaves the list when it closes."""
        self._open_connections.add(conn)
