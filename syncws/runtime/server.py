"""The threaded server: ``Server`` and ``serve()`` (``ServerConnection`` is imported here
from ``server_connection.py``, where it lives).

The acceptor thread (the one in :meth:`Server.serve_forever`) waits with ``poll`` on
the listening socket and a wake-up socket pair. Each accepted connection goes to a pool
thread, in which the :class:`ServerConnection` runs its TLS and HTTP handshake (bounded by
``open_timeout``; see ``server_connection.py``), then the handler runs; then the thread
hands the closing handshake to the heartbeat thread and returns to the pool. When every
pool thread is busy, the acceptor answers HTTP 503 itself.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import socket
import ssl as ssl_module
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType, TracebackType
from typing import Any, NoReturn

from ..exceptions import ConnectionClosed
from ..protocol.connection import DEFAULT_MAX_SIZE
from ..protocol.extensions import ServerExtensionFactory
from ..protocol.frames import CloseCode
from ..protocol.handshake import OriginRule
from ..protocol.server import DEFAULT_SERVER_HEADER
from .forwarded import _TrustedProxies
from .heartbeat import Heartbeat
from .options import ConnectionOptions, LoggerLike, _OpenConnections, _server_protocols
from .pool import Pool
from .server_connection import (
    ProcessRequest,
    ProcessResponse,
    ServerConnection,
    _AwaitedRequests,
)

__all__ = ["Server", "ServerConnection", "Stopped", "serve"]

_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 42\r\nConnection: close\r\n\r\n"
    b"The server is at capacity; try again later"
)


#: Seconds the acceptor stops accepting after ``accept()`` failed for lack of a resource
#: (file descriptors, socket buffers, memory), as asyncio does: the listening socket stays
#: readable, so retrying at once would spin a core and flood the log.
ACCEPT_RETRY_DELAY = 1.0

_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

# A listening socket with what its accepted sockets need: family, type, local address.
_Listener = tuple[socket.socket, int, int, Any]


def _bind(
    host: str | None,
    port: int | None,
    unix_path: str | None,
    reuse_port: bool,
    backlog: int,
    logger: LoggerLike,
) -> list[socket.socket]:
    """Listening sockets: one per address that ``host`` resolves to, on one port, or the
    Unix socket at ``unix_path``. :class:`Server` binds with it, and so does the worker
    runner before forking where workers cannot have sockets of their own on one port."""
    if unix_path is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(unix_path)
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        return [sock]
    port = port or 0
    if host is None and socket.has_dualstack_ipv6():
        sock = socket.create_server(
            ("", port),
            family=socket.AF_INET6,
            backlog=backlog,
            reuse_port=reuse_port,
            dualstack_ipv6=True,
        )
        return [sock]
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    # Every address, as asyncio's create_server binds them: "localhost" is ::1 and
    # 127.0.0.1 on Debian and Ubuntu, and a client (or nginx) may use either.
    sockets: list[socket.socket] = []
    addresses: set[tuple[int, str]] = set()
    try:
        for family, _, _, _, address in infos:
            ip = str(address[0])
            if (family, ip) in addresses:
                continue
            addresses.add((family, ip))
            # With port 0, the first socket picks a free port and the others take it.
            bound = sockets[0].getsockname()[1] if sockets else port
            try:
                sock = socket.create_server(
                    (ip, bound), family=family, backlog=backlog, reuse_port=reuse_port
                )
            except OSError as exc:
                if sockets and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                    # An address this system cannot bind (IPv6 disabled, while the
                    # hosts file still maps the name to ::1): serve on the others.
                    logger.info("cannot listen on %s: %s", ip, exc)
                    continue
                raise
            sockets.append(sock)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Server:
    r"""A WebSocket server: an acceptor thread, a bounded pool, a heartbeat thread.

    The constructor binds the socket (``port=0`` picks a free port: see :attr:`port`);
    :meth:`serve_forever` or :meth:`start` serves; :meth:`shutdown` stops. Used as a
    context manager, it shuts down on exit.

    Args:
        handler: Called as ``handler(connection)`` in a pool thread for each connection.
            When it returns, the server closes the connection with 1000; when it raises
            (anything, ``SystemExit`` included), with 1011, and the traceback is logged at
            ERROR; the pool thread goes on serving.
        host: Interface to bind; ``None`` binds all interfaces (IPv6 and IPv4 when the
            system allows both). A host name binds every address it resolves to, on one
            port, as asyncio does: ``"localhost"`` is often ``::1`` and ``127.0.0.1``, and
            clients (or a proxy in front) may use either. An address the system cannot
            bind (IPv6 disabled) is skipped, once one is bound, with an INFO log line.
        port: TCP port; ``0`` or ``None`` picks a free one.
        sock: A socket already bound (and possibly listening), or several (all served, as
            :attr:`sockets`), used instead of host/port: e.g. sockets bound before
            forking, which every process accepts on.
        unix_path: Path of a Unix socket to bind instead of TCP.
        reuse_port: Set ``SO_REUSEPORT`` so several processes can share the port.
        backlog: Listen backlog.
        ssl: A server-side :class:`ssl.SSLContext` to serve ``wss://``. The TLS handshake
            runs in the pool thread, bounded by ``open_timeout``.
        origins: Allowed ``Origin`` values; ``None`` allows any. An item is a string,
            compared exactly, or a compiled regular expression, which must match the whole
            value (``re.compile(r"https://[a-z0-9-]+\.example\.com")``). Include ``None``
            in the list to allow clients that send no ``Origin`` (non-browsers).
        subprotocols: Supported subprotocols, by preference.
        select_subprotocol: ``select_subprotocol(offered, available)`` picks one.
        process_request: ``process_request(connection, request)``, called before the
            handshake; return a :class:`~syncws.Response` (e.g. from
            :meth:`ServerConnection.respond`) to answer plain HTTP instead, or ``None`` to
            go on with the WebSocket handshake. Anything else, a ``101`` that the
            handshake's checks did not accept (one of its own), or an exception, gets the
            client HTTP 500, logged at ERROR.
        process_response: ``process_response(connection, request, response)``, called with
            the handshake response; it may modify it, or return another one (as above).
        server_header: The ``Server`` header; ``None`` omits it.
        trusted_proxies: Reverse proxies whose ``Forwarded`` or ``X-Forwarded-For``
            header gives the client's address: addresses or networks
            (``["127.0.0.1", "10.0.0.0/8"]``), ``"unix"`` for peers on a Unix socket,
            ``"*"`` for any peer (only when nothing but the proxy can reach the server).
            From such a peer, :attr:`~syncws.ServerConnection.remote_address` is the
            client's ``(host, port)`` (port 0 when the proxy omits it), found by reading
            the header from the right past the trusted proxies; from any other peer, the
            headers are ignored. ``None`` (the default) ignores them always. The same as
            gunicorn's and uvicorn's ``forwarded_allow_ips``; see :doc:`/howto/deployment`.
        max_size: Largest incoming message, in bytes; ``None`` for no limit (1009 beyond).
            With compression, the limit applies to the decompressed size.
        compression: ``"deflate"`` accepts permessage-deflate (RFC 7692) from clients that
            offer it, with memory-conscious settings (about 77 KiB per connection once
            used; see :doc:`/topics/compression`); ``None`` disables compression.
        extensions: Extension factories to negotiate, in order of preference
            (:class:`~syncws.protocol.extensions.ServerExtensionFactory`). A
            :class:`~syncws.protocol.deflate.ServerPerMessageDeflateFactory` among them
            sets compression's window bits, levels and threshold; it replaces the one
            ``compression="deflate"`` adds (see :doc:`/topics/compression`).
        max_queue: Messages buffered while the handler is not reading, before the server
            stops reading the socket (TCP backpressure). A high-water mark: the read that
            reaches it is queued whole (see :doc:`/topics/threads`).
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds to wait for a pong before failing with 1011; ``None`` waits
            forever.
        close_timeout: Seconds to wait for the closing handshake.
        open_timeout: Seconds for the TLS and HTTP handshake; slower clients are dropped.
        write_timeout: Seconds a send may block on a peer that does not read; then the
            connection fails with 1011. ``None`` blocks as long as the peer is alive.
        max_connections: Size of the thread pool: connections whose handler runs at once.
            One more gets HTTP 503.
        logger: Logger, ``logging.getLogger("syncws.server")`` by default.

    Attributes:
        options: The :class:`~syncws.ConnectionOptions` of its connections.

    Raises:
        ValueError: An option is out of range (see
            :class:`~syncws.ConnectionOptions`), or an item of
            ``trusted_proxies`` is not an address or a network.
        TypeError: An option has the wrong type, e.g. an item of ``extensions`` is not a
            server extension factory.
    """

    def __init__(
        self,
        handler: Callable[[ServerConnection], Any],
        host: str | None = None,
        port: int | None = None,
        *,
        sock: socket.socket | Sequence[socket.socket] | None = None,
        unix_path: str | os.PathLike[str] | None = None,
        reuse_port: bool = False,
        backlog: int = 128,
        ssl: ssl_module.SSLContext | None = None,
        origins: Sequence[OriginRule] | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: Callable[[Sequence[str], Sequence[str]], str | None] | None = None,
        process_request: ProcessRequest | None = None,
        process_response: ProcessResponse | None = None,
        server_header: str | None = DEFAULT_SERVER_HEADER,
        trusted_proxies: Sequence[str] | None = None,
        max_size: int | None = DEFAULT_MAX_SIZE,
        compression: str | None = "deflate",
        extensions: Sequence[ServerExtensionFactory] | None = None,
        max_queue: int = 16,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        open_timeout: float | None = 10,
        write_timeout: float | None = None,
        max_connections: int = 1024,
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
        self.logger = logger or logging.getLogger("syncws.server")
        self._new_protocol = _server_protocols(
            self.options,
            origins=origins,
            subprotocols=subprotocols,
            select_subprotocol=select_subprotocol,
            server_header=server_header,
            extensions=extensions,
        )
        self._open_connections = _OpenConnections()
        self._lock = threading.Lock()  # guards _serving
        self.handler = handler
        self.ssl = ssl
        self.process_request = process_request
        self.process_response = process_response
        self.trusted_proxies = trusted_proxies
        self._trusted_proxies = (
            None if trusted_proxies is None else _TrustedProxies(trusted_proxies)
        )
        self.unix_path = os.fspath(unix_path) if unix_path is not None else None
        if sock is None:
            sockets = _bind(host, port, self.unix_path, reuse_port, backlog, self.logger)
        else:
            sockets = [sock] if isinstance(sock, socket.socket) else list(sock)
            for listening in sockets:
                try:
                    listening.listen(backlog)
                except OSError:
                    pass  # already listening
        self.sockets = sockets
        self.socket = sockets[0]
        self._family = int(self.socket.family)
        # What each accepted socket needs and can be known once, to save system calls:
        # TCP_NODELAY, which accepted sockets inherit from the listening one on Linux (and
        # is set on each until one is seen to have it), and the local address, which is the
        # listening one for IPv4 unless bound to all interfaces. By file number.
        self._set_nodelay = self._family != socket.AF_UNIX
        self._nodelay_checked = False
        self._listeners: dict[int, _Listener] = {}
        for listening in sockets:
            listening.setblocking(False)
            if self._set_nodelay:
                try:
                    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            local_address = None
            if listening.family == socket.AF_INET:
                address = listening.getsockname()
                if address[0] != "0.0.0.0":
                    local_address = address
            self._listeners[listening.fileno()] = (
                listening,
                int(listening.family),
                int(listening.type),
                local_address,
            )
        self._pool = Pool(max_connections, "syncws-server", self.logger)
        self._heartbeat = Heartbeat("syncws-server-heartbeat", self.logger)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._stopping = False  # a flag, not an Event: nobody waits for it
        # Sockets whose handshake request is still awaited: shutdown() wakes their threads.
        self._awaited = _AwaitedRequests()
        self._shutdown_close: tuple[int, str] = (CloseCode.GOING_AWAY, "")
        self._stopped = threading.Event()
        self._shutdown_lock = threading.Lock()
        self._shutdown_done = False
        self._serving = False
        self._accept_failures = 0  # in a row, for lack of a resource (see _accept)
        self._signal_stop = False
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str | None:
        """The bound host (``None`` for a Unix socket); the first listening socket's when
        there are several (see :attr:`sockets`)."""
        if self.socket.family == socket.AF_UNIX:
            return None
        host: str = self.socket.getsockname()[0]
        return host

    @property
    def connections(self) -> set[ServerConnection]:
        """The open connections (a copy: safe to iterate while connections come and go)."""
        return self._open_connections.open()

    @property
    def port(self) -> int | None:
        """The bound port (``None`` for a Unix socket)."""
        if self.socket.family == socket.AF_UNIX:
            return None
        port: int = self.socket.getsockname()[1]
        return port

    def _listening_on(self) -> str:
        """Where the server listens, for the log: URIs, or a Unix socket's path."""
        if self._family == socket.AF_UNIX:
            return f"unix:{self.socket.getsockname()}"
        uris = []
        for listening in self.sockets:
            host, port = listening.getsockname()[:2]
            host = f"[{host}]" if ":" in host else host
            uris.append(f"{'ws' if self.ssl is None else 'wss'}://{host}:{port}/")
        return ", ".join(uris)

    # Serving.

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown` is called (from another thread or a
        signal handler installed by :func:`serve`).

        In the main thread, Python signal handlers run as soon as their signal arrives,
        whichever thread the kernel delivers it to: unless the application has set one,
        the server's wake-up socket is the :func:`signal.set_wakeup_fd` while it serves, so
        that the wait for connections returns and the main thread runs the handler (an
        exception it raises ends ``serve_forever``).
        """
        with self._lock:
            if self._serving:
                raise RuntimeError("serve_forever is already running")
            self._serving = True
        self.logger.info("server listening on %s", self._listening_on())
        poller = select.poll()
        for listening in self.sockets:
            poller.register(listening, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        listeners = self._listeners
        wakeup = self._set_wakeup_fd()
        resume: float | None = None  # when to accept again after running out of resources
        try:
            while not self._stopping:
                timeout = None
                if resume is not None:
                    timeout = (resume - time.monotonic()) * 1000
                    if timeout <= 0:
                        for listening in self.sockets:
                            poller.register(listening, select.POLLIN)
                        resume = timeout = None
                for fd, _ in poller.poll(timeout):
                    listener = listeners.get(fd)
                    if listener is None:
                        self._wake_r.recv(4096)
                    elif resume is None and not self._accept(*listener):
                        for listening in self.sockets:
                            poller.unregister(listening)
                        resume = time.monotonic() + ACCEPT_RETRY_DELAY
        finally:
            if wakeup:
                signal.set_wakeup_fd(-1)
            self._stopped.set()
        if self._signal_stop:
            self.shutdown()

    def _set_wakeup_fd(self) -> bool:
        """Make the wake-up socket the signal wake-up fd, in the main thread, unless one is
        set; return whether it was. Without it, a signal that the kernel delivers to
        another thread (any thread may get a process-wide signal) would have its Python
        handler wait until the main thread's ``poll()`` returns for a connection."""
        if threading.current_thread() is not threading.main_thread():
            return False
        try:
            previous = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        except ValueError:  # not the main interpreter
            return False
        if previous != -1:
            signal.set_wakeup_fd(previous)  # the application's own: leave it
            return False
        return True

    def _accept(
        self, listening: socket.socket, family: int, type_: int, local_address: Any
    ) -> bool:
        """Accept one connection, ``listening`` being readable; ``False`` if the process is
        out of a resource, and accepting must pause.

        One per wake-up: with more waiting, ``poll`` returns at once, which costs less than
        the ``accept`` failing with EAGAIN (an exception) that ends a batch.
        """
        try:
            # socket.accept() without its wrapper, which makes enums of the family and
            # the type each time. Blocking, as accept() leaves it.
            fd, address = listening._accept()  # type: ignore[attr-defined]
        except (BlockingIOError, InterruptedError):
            return True
        except OSError as exc:
            if exc.errno not in _OUT_OF_RESOURCES:
                # About that connection only (e.g. reset before it was accepted).
                self.logger.info("accept failed: %s", exc)
                return True
            if not self._accept_failures:
                self.logger.error(
                    "accept failed: %s; accepting again in %.1f s, and every %.1f s until "
                    "it succeeds (connections wait in the listen backlog meanwhile)",
                    exc,
                    ACCEPT_RETRY_DELAY,
                    ACCEPT_RETRY_DELAY,
                )
            self._accept_failures += 1
            return False
        if self._accept_failures:
            self.logger.warning("accepting again, after %d failed attempts", self._accept_failures)
            self._accept_failures = 0
        sock = socket.socket(family, type_, listening.proto, fd)
        if self._set_nodelay:
            self._nodelay(sock)
        # A lambda, not functools.partial: the pool thread calls it without nesting a C
        # call of the interpreter, which would cost every connection C stack (see Pool).
        handle = lambda: self._handle(sock, address, local_address)  # noqa: E731
        if self._stopping or not self._pool.try_submit(handle):
            self._reject_at_capacity(sock, address)
        return True

    def _nodelay(self, sock: socket.socket) -> None:
        if not self._nodelay_checked:
            self._nodelay_checked = True
            try:
                if sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY):
                    self._set_nodelay = False  # inherited from the listening socket
                    return
            except OSError:
                pass
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _reject_at_capacity(self, sock: socket.socket, address: Any) -> None:
        self.logger.warning("rejected connection from %s: server at capacity (HTTP 503)", address)
        try:
            sock.send(_503, socket.MSG_DONTWAIT)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._heartbeat.linger(sock)

    def _handle(self, sock: socket.socket, address: Any, local_address: Any) -> None:
        """Run in a pool thread: handshake, handler, then hand the close to the heartbeat."""
        conn = ServerConnection._accept(self, sock, address, local_address)
        if conn is None:
            return
        try:
            self.handler(conn)
        except ConnectionClosed:
            self.logger.debug("%s: handler ended: connection closed", conn.id)
            code, reason = CloseCode.NORMAL_CLOSURE, ""
        except BaseException:
            # SystemExit too (sys.exit() in a handler): this thread serves the pool, so the
            # connection closes as for any error, and the thread goes back to the pool.
            self.logger.error("%s: connection handler failed", conn.id, exc_info=True)
            code, reason = CloseCode.INTERNAL_ERROR, "internal error"
        else:
            code, reason = CloseCode.NORMAL_CLOSURE, ""
        conn._close_nowait(code, reason, handler_done=True)

    def start(self) -> Server:
        """Run :meth:`serve_forever` in a background thread; return the server.

        This is the way to run a server next to another program, e.g. in a Flask app.
        """
        self._thread = threading.Thread(
            target=self.serve_forever, name="syncws-server-acceptor", daemon=True
        )
        self._thread.start()
        return self

    def shutdown(
        self, code: int = CloseCode.GOING_AWAY, reason: str = "", timeout: float | None = None
    ) -> None:
        """Stop the server gracefully.

        Stops accepting, answers handshakes in progress with 503, closes every open
        connection with ``code``, waits for the handlers to return (at most ``timeout``
        seconds, then aborts what is left), and releases the socket. Idempotent; callable
        from any thread but a handler's.

        It returns soon after ``timeout`` (aborted connections get a moment to finish),
        but it cannot stop a thread:
        a handler that is busy outside syncws (a computation, a database call, a
        ``time.sleep()``) may still run when it returns. Its connection is closed by then,
        so its next ``recv()`` or ``send()`` raises
        :exc:`~syncws.exceptions.ConnectionClosed`; a handler that never calls syncws
        again runs until it returns (pool threads are daemon threads: they do not keep the
        process alive).

        Args:
            code: The close code sent to every client (1001 "going away", or 1012
                "service restart" for a rolling deploy).
            reason: The close reason.
            timeout: Seconds to wait for handlers and closing handshakes; ``None`` waits up
                to ``close_timeout``, then aborts the connections that are left.
        """
        if self._pool.is_pool_thread():
            raise RuntimeError("shutdown() cannot be called from a connection handler")
        with self._shutdown_lock:
            if self._shutdown_done:
                return
            self._shutdown_done = True
            self._shutdown_close = (code, reason)
            self._stopping = True
            try:
                self._wake_w.send(b"\0")
            except OSError:
                pass
            if self._serving:
                self._stopped.wait()
            for listening in self.sockets:
                listening.close()
            if self.unix_path is not None:
                try:
                    os.unlink(self.unix_path)
                except OSError:
                    pass
            self._awaited.interrupt()
            connections = self._open_connections.listed()
            for conn in connections:
                conn._close_nowait(code, reason)
            if timeout is None:
                timeout = self.options.close_timeout
            deadline = None if timeout is None else time.monotonic() + timeout
            self._pool.join(timeout)
            for conn in connections:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not conn.wait_closed(remaining):
                    conn._abort()
            # Aborted connections' handlers wake up and end; give them a moment.
            self._pool.join(1.0)
            for conn in connections:
                conn.wait_closed(1.0)
            self._pool.stop()
            self._heartbeat.stop()
            self._wake_r.close()
            self._wake_w.close()

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: stop accepting; serve_forever then shuts down gracefully."""
        self._signal_stop = True
        self._stopping = True
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()


class Stopped:
    """What :func:`serve` returns once the server has stopped: nothing to use.

    It exists for one mistake: ``with syncws.serve(...) as server:``, the idiom of
    websockets, where ``serve()`` returns a server. Here ``serve()`` serves until stopped,
    so the ``with`` is reached only then, and this says what to write instead.
    """

    __slots__ = ()

    def __enter__(self) -> NoReturn:
        raise TypeError(
            "syncws.serve() serves until the server stops, then returns: there is no "
            "server to use in a with block. For 'with ... as server: "
            "server.serve_forever()', use syncws.Server(handler, host, port, ...)"
        )

    def __exit__(self, *exc_info: object) -> None:
        """Never reached: :meth:`__enter__` raises."""

    def __repr__(self) -> str:
        return "<syncws.serve() has returned: the server is stopped>"


def serve(
    handler: Callable[[ServerConnection], Any],
    host: str | None = None,
    port: int | None = None,
    **options: Any,
) -> Stopped:
    """Run a WebSocket server until interrupted.

    Blocks. Called from the main thread, it installs SIGINT and SIGTERM handlers that shut
    the server down gracefully (closing connections with 1001), then restores the previous
    handlers. Options are those of :class:`Server`.

    Unlike websockets' ``serve()``, it returns only once the server has stopped, and what
    it returns (:class:`~syncws.runtime.server.Stopped`) cannot be used in a ``with``
    block: there, use :class:`Server` (``with Server(...) as server:
    server.serve_forever()``).

    Example::

        import syncws

        def echo(ws):
            for message in ws:
                ws.send(message)

        syncws.serve(echo, "localhost", 8765)
    """
    with Server(handler, host, port, **options) as server:
        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            # serve_forever() sees that they run at once, whichever thread gets the signal.
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, server._request_stop)
        try:
            server.serve_forever()
        finally:
            for signum, previous_handler in previous.items():
                signal.signal(signum, previous_handler)
    return Stopped()
