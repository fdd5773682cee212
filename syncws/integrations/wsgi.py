"""WebSocket routes inside a WSGI app: upgrade the request by taking over the server's socket.

A WSGI app cannot speak WebSocket through ``start_response``: the protocol needs the raw
connection. Werkzeug's development server and gunicorn's sync and gthread workers expose it
(``environ["werkzeug.socket"]``, ``environ["gunicorn.socket"]``). :meth:`Upgrader.accept`
validates the handshake, then takes that connection over:

1. it duplicates the socket's file descriptor: the duplicate, wrapped in a
   :class:`~syncws.ServerConnection`, is the only handle on the client's TCP connection;
2. it points the server's descriptor at a socket that is shut down both ways
   (``os.dup2``): from then on, whatever the WSGI server does with its socket object (write
   a response, read a next request, shut down, close) reaches that dead socket, never the
   client. Writes fail with ``EPIPE`` and reads see end of file: to the server, the client
   has gone away, which both servers handle silently (Werkzeug's ``connection_dropped``,
   gunicorn's "Ignoring EPIPE" at DEBUG), and neither keeps the connection for another
   request (gunicorn gthread's keep-alive pool never sees it);
3. it writes the ``101`` itself and registers the connection with the process's WSGI
   heartbeat thread (keepalive pings, close deadlines, reading while the view is busy).

The view then runs in the WSGI worker thread, with the full :class:`~syncws.ServerConnection`
API. When it returns, the closing handshake goes on in the heartbeat thread and the worker
thread returns :func:`handed_back`: a ``101`` status for the access log, whose bytes end up
on the dead socket. So after the ``101``, only WebSocket frames ever reach the client, and the
TCP connection ends when the closing handshake does.

Every open WebSocket holds one worker thread: see :doc:`/howto/flask` for sizing.
"""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote

from ..exceptions import ConnectionClosed
from ..protocol.connection import DEFAULT_MAX_SIZE
from ..protocol.extensions import ServerExtensionFactory
from ..protocol.frames import CloseCode
from ..protocol.handshake import OriginRule
from ..protocol.http11 import Headers, Request, Response
from ..protocol.server import DEFAULT_SERVER_HEADER, ServerProtocol
from ..runtime.heartbeat import Heartbeat, wsgi_heartbeat
from ..runtime.options import (
    ConnectionOptions,
    LoggerLike,
    _OpenConnections,
    _server_protocols,
)
from ..runtime.server_connection import ServerConnection
from ..runtime.transport import Transport

__all__ = [
    "SOCKET_KEYS",
    "HandshakeRejected",
    "SocketUnavailable",
    "Upgrader",
    "WebSocketApp",
    "handed_back",
    "request_from_environ",
    "shutdown_all",
    "wsgi_response",
]

#: A WSGI environ.
Environ = dict[str, Any]
#: A WSGI ``start_response`` callable.
StartResponse = Callable[..., Any]

#: Environ keys under which WSGI servers expose the client's socket, in the order tried.
SOCKET_KEYS = ("werkzeug.socket", "gunicorn.socket")

_TARGET_RE = re.compile(r"/[\x21-\x7e]*")
# RFC 9110 §7.6.1: connection-specific fields a WSGI app must not send (PEP 3333). Upgrade
# stays: a 426 must name the protocol to switch to (RFC 9110 §15.5.22).
_HOP_BY_HOP = frozenset(
    ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding"]
)


_SHUTTING_DOWN = "The server is shutting down.\n"

# Every Upgrader of this process, for shutdown_all().
_upgraders: weakref.WeakSet[Upgrader] = weakref.WeakSet()
_upgraders_lock = threading.Lock()


class SocketUnavailable(RuntimeError):
    """The WSGI server exposes no socket to take over (e.g. waitress, mod_wsgi, uWSGI),
    or one that cannot be taken over (TLS terminated by the WSGI server itself)."""


class HandshakeRejected(Exception):
    """The request is not an acceptable WebSocket handshake; nothing was taken over.

    Attributes:
        response: The HTTP answer (426, 400, 403, 405, ...), to send as a normal WSGI
            response (:func:`wsgi_response`).
    """

    def __init__(self, response: Response) -> None:
        super().__init__(f"HTTP {response.status_code} {response.reason_phrase}")
        self.response = response


def request_from_environ(environ: Environ) -> Request:
    """Rebuild the handshake :class:`~syncws.Request` from a WSGI environ.

    The request target is the raw one when the server provides it (``RAW_URI``,
    ``REQUEST_URI``), else ``SCRIPT_NAME + PATH_INFO`` re-quoted, plus ``QUERY_STRING``.
    Headers come from the ``HTTP_*`` keys (``Sec-Websocket-Key`` for
    ``HTTP_SEC_WEBSOCKET_KEY``: names are case-insensitive).

    Raises:
        ValueError: A header value is invalid (control characters).
    """
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not (isinstance(target, str) and _TARGET_RE.fullmatch(target)):
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        # PEP 3333: native strings carry the bytes as latin-1.
        target = quote(path.encode("latin-1"), safe="/:@!$&'()*+,;=~%") or "/"
        query = environ.get("QUERY_STRING", "")
        if query:
            target += "?" + quote(query.encode("latin-1"), safe="/:@!$&'()*+,;=~%?")
    headers = Headers()
    for key, value in environ.items():
        if key.startswith("HTTP_") and isinstance(value, str):
            headers[key[5:].replace("_", "-").title()] = value
    return Request(target, headers)


def wsgi_response(response: Response, start_response: StartResponse) -> list[bytes]:
    """Send a :class:`~syncws.Response` (e.g. a rejected handshake) as a WSGI response."""
    headers = [
        (name, value) for name, value in response.headers.items() if name.lower() not in _HOP_BY_HOP
    ]
    start_response(f"{response.status_code} {response.reason_phrase}", headers)
    return [response.body]


def handed_back(start_response: StartResponse) -> list[bytes]:
    """What a WSGI app returns once it upgraded the request (or tried to).

    It starts a ``101`` response, so the access log shows what happened. The WSGI server
    writes its headers to its own socket object, which :meth:`Upgrader.accept` pointed at a
    dead socket: the write fails with ``EPIPE``, which Werkzeug and gunicorn take as a client
    that went away, without an error log. Nothing reaches the client.
    """
    start_response("101 Switching Protocols", [])
    return []


def _find_socket(environ: Environ) -> socket.socket:
    for key in SOCKET_KEYS:
        sock = environ.get(key)
        if isinstance(sock, socket.socket):
            break
    else:
        server = environ.get("SERVER_SOFTWARE", "this WSGI server")
        raise SocketUnavailable(
            f"{server} does not expose its socket (environ keys {', '.join(SOCKET_KEYS)}), "
            "so syncws cannot upgrade the request inside the WSGI app. Run a syncws.Server "
            "next to the app on its own port instead (the sidecar: "
            "syncws.integrations.sidecar.Sidecar), or serve the app with Werkzeug or "
            "gunicorn (sync or gthread worker)."
        )
    if isinstance(sock, ssl.SSLSocket):
        raise SocketUnavailable(
            "the WSGI server terminates TLS itself, and a TLS session cannot be taken over: "
            "terminate TLS in a reverse proxy, or run a syncws.Server with ssl= next to the "
            "app (the sidecar)."
        )
    if os.name != "posix":
        raise SocketUnavailable("taking over a WSGI server's socket needs a POSIX system")
    return sock


def _buffered_input(environ: Environ, sock: socket.socket) -> bytes:
    """Bytes the server read past the request into its buffer (Werkzeug's ``rfile``).

    A client must wait for the ``101`` before sending frames (RFC 6455 §4.1), so this is
    empty in practice; reading it without blocking costs nothing and loses nothing.
    """
    stream = environ.get("wsgi.input")
    if type(stream) is not io.BufferedReader:
        return b""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        pending = stream.peek()
        return stream.read(len(pending)) if pending else b""
    except (OSError, ValueError):
        return b""
    finally:
        sock.settimeout(timeout)


def _take_over(sock: socket.socket) -> socket.socket:
    """Return a socket of our own on the client's connection; leave ``sock`` on a dead one."""
    fd = sock.fileno()
    ours = socket.socket(fileno=os.dup(fd))
    # The duplicate shares the descriptor's flags: a WSGI server that gave its socket a
    # timeout left it non-blocking, which our socket object, with no timeout, would not
    # know (its blocking reads would then return nothing instead of waiting).
    ours.setblocking(True)
    dead, peer = socket.socketpair()
    try:
        dead.shutdown(socket.SHUT_RDWR)
        # Atomic: the server's descriptor never refers to nothing (a new socket could get
        # its number) nor, from now on, to the client's connection.
        os.dup2(dead.fileno(), fd, inheritable=False)
    finally:
        dead.close()
        peer.close()
    return ours


class Upgrader:
    """Upgrades WSGI requests to :class:`~syncws.ServerConnection`; holds their settings.

    The options are those of :class:`~syncws.Server` that apply to a connection (there is
    no listening socket, pool or TLS here). Connections are served by one heartbeat thread
    per process (:func:`~syncws.runtime.heartbeat.wsgi_heartbeat`) and listed in
    :attr:`connections`, e.g. for :func:`~syncws.broadcast`.

    Args:
        origins: Allowed ``Origin`` values; ``None`` allows any.
        subprotocols: Supported subprotocols, by preference.
        select_subprotocol: ``select_subprotocol(offered, available)`` picks one.
        server_header: The ``Server`` header of the ``101``; ``None`` omits it.
        max_size: Largest incoming message in bytes (1009 beyond); ``None``: no limit.
        compression: ``"deflate"`` accepts permessage-deflate; ``None`` disables it.
        extensions: Extension factories to negotiate, as for :class:`~syncws.Server`
            (e.g. permessage-deflate with other settings: :doc:`/topics/compression`).
        max_queue: Messages buffered while the view is not reading.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds to wait for a pong before failing with 1011.
        close_timeout: Seconds to wait for the closing handshake.
        open_timeout: Seconds to write the ``101`` to the client.
        write_timeout: Seconds a send may block on a peer that does not read.
        logger: Logger, ``logging.getLogger("syncws.wsgi")`` by default.

    Attributes:
        options: The :class:`~syncws.ConnectionOptions` of its connections.

    Raises:
        ValueError: An option is out of range (see
            :class:`~syncws.ConnectionOptions`).
        TypeError: An option has the wrong type, e.g. an item of ``extensions`` is not a
            server extension factory.
    """

    def __init__(
        self,
        *,
        origins: Sequence[OriginRule] | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: Callable[[Sequence[str], Sequence[str]], str | None] | None = None,
        server_header: str | None = DEFAULT_SERVER_HEADER,
        max_size: int | None = DEFAULT_MAX_SIZE,
        compression: str | None = "deflate",
        extensions: Sequence[ServerExtensionFactory] | None = None,
        max_queue: int = 16,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        open_timeout: float | None = 10,
        write_timeout: float | None = None,
        logger: LoggerLike | None = None,
    ) -> None:
        self.options = ConnectionOptions(
            max_size=max_size,
            max_queue=max_queue,
            compression=compression,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            open_timeout=open_timeout,
            write_timeout=write_timeout,
        )
        self.logger = logger or logging.getLogger("syncws.wsgi")
        self._new_protocol = _server_protocols(
            self.options,
            origins=origins,
            subprotocols=subprotocols,
            select_subprotocol=select_subprotocol,
            server_header=server_header,
            extensions=extensions,
        )
        self._open_connections = _OpenConnections()
        self._lock = threading.Lock()  # guards _stopping and _shutdown_close
        self._stopping = False
        self._shutdown_close = (int(CloseCode.GOING_AWAY), "")
        with _upgraders_lock:
            _upgraders.add(self)

    @property
    def connections(self) -> set[ServerConnection]:
        """The open connections (a copy: safe to iterate while connections come and go)."""
        return self._open_connections.open()

    @property
    def _heartbeat(self) -> Heartbeat:
        return wsgi_heartbeat()

    def accept(
        self, environ: Environ, connection_class: type[ServerConnection] = ServerConnection
    ) -> ServerConnection:
        """Upgrade the request of ``environ``: validate it, take the socket over, send the 101.

        After this returns, the WSGI app must return :func:`handed_back` (or anything: no
        byte of it reaches the client), once it is done with the connection.

        Args:
            environ: The WSGI environ of the request.
            connection_class: :class:`~syncws.ServerConnection` or a subclass.

        Raises:
            HandshakeRejected: Not a valid WebSocket handshake (its ``response``, e.g. 426
                for plain HTTP, is to be sent as a normal WSGI response).
            SocketUnavailable: The server exposes no socket: use the sidecar.
            ConnectionError: The client left before the ``101`` was written; the
                connection is closed and the app should return :func:`handed_back`.
        """
        protocol = self._new_protocol()
        response = self._handshake(environ, protocol)
        sock = _find_socket(environ)
        early = _buffered_input(environ, sock)
        transport = Transport(_take_over(sock))
        conn = connection_class(self, transport, protocol)
        open_timeout = self.options.open_timeout
        deadline = None if open_timeout is None else time.monotonic() + open_timeout
        # As a Server's connection does: listed before the 101 goes out (a client whose
        # connect() returned is in `connections`), with the writer token held meanwhile (a
        # broadcast queues its message behind the 101), then open, the heartbeat serving it.
        try:
            conn._respond(response, deadline, conn.remote_address, early)
        except (OSError, TimeoutError) as exc:  # the connection is closed
            raise ConnectionError(f"writing the 101 response failed: {exc}") from exc
        return conn

    def _handshake(self, environ: Environ, protocol: ServerProtocol) -> Response:
        address = environ.get("REMOTE_ADDR")
        if self._stopping:
            self.logger.info("answered %s with HTTP 503: the server is shutting down", address)
            raise HandshakeRejected(protocol.reject(503, _SHUTTING_DOWN))
        if environ.get("REQUEST_METHOD") != "GET":
            response = protocol.reject(405, "A WebSocket handshake is a GET request.\n")
            response.headers["Allow"] = "GET"
            raise HandshakeRejected(response)
        if environ.get("SERVER_PROTOCOL") != "HTTP/1.1":
            # HTTP/2 streams share their connection: taking it over would kill the others.
            raise HandshakeRejected(protocol.reject(505, "A WebSocket handshake needs HTTP/1.1.\n"))
        try:
            request = request_from_environ(environ)
        except ValueError as exc:
            self.logger.info("bad HTTP request from %s: %s", address, exc)
            raise HandshakeRejected(protocol.reject(400, "Invalid request headers.\n")) from None
        protocol.request = request
        response = protocol.accept(request)
        if response.status_code != 101:
            self.logger.info(
                "rejected WebSocket handshake from %s: HTTP %d (%s)",
                address,
                response.status_code,
                protocol.handshake_exc,
            )
            raise HandshakeRejected(response)
        return response

    def run(
        self,
        conn: ServerConnection,
        handler: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """Run ``handler(conn, *args, **kwargs)``, then start the closing handshake.

        As in a :class:`~syncws.Server`: 1000 when the handler returns (or the connection
        closed under it), 1011 when it raises (logged at ERROR with the traceback). The
        closing handshake finishes in the heartbeat thread: this returns at once, freeing
        the WSGI worker thread.
        """
        code, reason = CloseCode.INTERNAL_ERROR, "internal error"
        try:
            handler(conn, *args, **kwargs)
        except ConnectionClosed:
            self.logger.debug("%s: handler ended: connection closed", conn.id)
            code, reason = CloseCode.NORMAL_CLOSURE, ""
        except Exception:
            self.logger.error("%s: connection handler failed", conn.id, exc_info=True)
        else:
            code, reason = CloseCode.NORMAL_CLOSURE, ""
        finally:
            # Also on BaseException (gunicorn aborts a timed-out sync worker with SystemExit).
            conn._close_nowait(code, reason, handler_done=True)

    def shutdown(
        self, code: int = CloseCode.GOING_AWAY, reason: str = "", timeout: float | None = None
    ) -> bool:
        """Close every connection of this upgrader and refuse new ones (HTTP 503).

        The WSGI counterpart of :meth:`syncws.Server.shutdown`: each open connection gets a
        close frame with ``code`` and ``reason`` at once, so that a view blocked in
        ``recv()`` gets :exc:`~syncws.exceptions.ConnectionClosedOK` once the client has
        answered, and returns; the heartbeat thread bounds each closing handshake by
        ``close_timeout``. Idempotent; safe from any thread, but not from a signal handler
        (it takes the connections' locks, which the interrupted thread may hold: see
        :func:`shutdown_all`).

        Args:
            code: The close code; 1001 (going away) by default.
            reason: The close reason.
            timeout: Seconds to wait for the connections to close; ``None`` waits for as
                long as their closing handshakes take (bounded by ``close_timeout``).

        Returns:
            Whether every connection closed within ``timeout``.
        """
        return _wait_closed(self._begin_shutdown(code, reason), timeout)

    def _begin_shutdown(self, code: int, reason: str) -> set[ServerConnection]:
        """Refuse new connections and start closing the open ones; return those."""
        with self._lock:
            self._stopping = True
            self._shutdown_close = (code, reason)
        closing = self.connections
        for conn in closing:
            conn._close_nowait(code, reason)
        return closing


def _wait_closed(connections: Iterable[ServerConnection], timeout: float | None) -> bool:
    """Wait up to ``timeout`` seconds in all for ``connections`` to close."""
    deadline = None if timeout is None else time.monotonic() + timeout
    for conn in connections:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not conn.wait_closed(remaining):
            return False
    return True


def shutdown_all(
    code: int = CloseCode.GOING_AWAY, reason: str = "", timeout: float | None = None
) -> bool:
    """:meth:`Upgrader.shutdown` for every :class:`Upgrader` of this process (every
    ``Sock`` and :class:`WebSocketApp`): what a WSGI server's graceful stop needs, so that
    clients get 1001 instead of a dropped connection (1006).
    :mod:`syncws.integrations.gunicorn` calls it on gunicorn's SIGTERM.

    Returns:
        Whether every connection closed within ``timeout``.
    """
    with _upgraders_lock:
        upgraders = list(_upgraders)
    closing: set[ServerConnection] = set()
    for upgrader in upgraders:
        closing |= upgrader._begin_shutdown(code, reason)
    return _wait_closed(closing, timeout)


class WebSocketApp(Upgrader):
    """A WSGI app serving WebSocket connections with ``handler(ws)``, one per worker thread.

    Mount it where the WSGI server routes the WebSocket path (e.g. with Werkzeug's
    ``DispatcherMiddleware``). A request that is not a WebSocket handshake gets a normal HTTP
    answer (426 for plain HTTP, 400, 403, ...).

    Args:
        handler: Called as ``handler(ws)`` with a :class:`~syncws.ServerConnection`.
        options: Those of :class:`Upgrader`.

    Example::

        from syncws.integrations.wsgi import WebSocketApp

        def echo(ws):
            for message in ws:
                ws.send(message)

        application = WebSocketApp(echo)   # gunicorn -k gthread --threads 32 module:application
    """

    def __init__(self, handler: Callable[[ServerConnection], Any], **options: Any) -> None:
        super().__init__(**options)
        self.handler = handler

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            ws = self.accept(environ)
        except HandshakeRejected as exc:
            return wsgi_response(exc.response, start_response)
        except ConnectionError as exc:
            self.logger.info("opening handshake failed: %s", exc)
            return handed_back(start_response)
        self.run(ws, self.handler)
        return handed_back(start_response)
