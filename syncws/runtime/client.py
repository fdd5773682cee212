"""The client: ``connect()`` and ``ClientConnection``."""

from __future__ import annotations

import logging
import os
import socket
import ssl as ssl_module
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, Literal

from ..exceptions import (
    InsecureRedirect,
    InvalidMessage,
    InvalidRedirect,
    InvalidStatus,
    InvalidURI,
    TooManyRedirects,
)
from ..protocol.client import DEFAULT_USER_AGENT, ClientProtocol
from ..protocol.connection import DEFAULT_MAX_SIZE
from ..protocol.deflate import client_extensions
from ..protocol.events import Event, State
from ..protocol.extensions import ClientExtensionFactory
from ..protocol.http11 import Headers, HeadersLike, redact_target
from ..protocol.uri import WebSocketURI, parse_uri
from .connection import Connection
from .heartbeat import Heartbeat, client_heartbeat
from .options import ConnectionOptions, LoggerLike
from .proxy import get_proxy, open_tunnel, parse_proxy
from .transport import NestedTLSTransport, TLSTransport, Transport, _handshaken, _socket_addresses

__all__ = ["ClientConnection", "connect", "redact_uri"]

#: The statuses :func:`connect` follows (RFC 9110 §15.4); 300 and 305 are not redirects
#: that a WebSocket client can act on.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers that carry credentials the user gave for the first server only.
_CREDENTIAL_HEADERS = ("Authorization", "Cookie")


class ClientConnection(Connection):
    """A client connection, returned by :func:`connect`.

    Attributes:
        request: The handshake :class:`~syncws.Request` sent.
        response: The server's handshake :class:`~syncws.Response`.
        subprotocol: The negotiated subprotocol, or ``None``.
        redirects: The URIs the server redirected the handshake to, in order; the last
            one is where the connection is. Empty when there was no redirect.
    """

    protocol: ClientProtocol
    redirects: list[str]

    @classmethod
    def from_handshake(
        cls,
        transport: Transport | socket.socket,
        protocol: ClientProtocol,
        *,
        options: ConnectionOptions | None = None,
        logger: LoggerLike | None = None,
        heartbeat: Heartbeat | None = None,
        events: list[Event] | None = None,
    ) -> ClientConnection:
        """A client connection over a socket whose opening handshake is done.

        For an application that opens the socket and runs the handshake itself, with
        ``protocol`` (see :doc:`/howto/sans_io`), and for tests: :func:`connect` ends
        with it. The connection is served at once (keepalive pings, the closing handshake
        bounded by ``close_timeout``).

        Args:
            transport: A connected socket, blocking (an ``ssl.SSLSocket`` is refused), or a
                :class:`~syncws.runtime.transport.Transport` of the runtime (for TLS, a
                :class:`~syncws.runtime.transport.TLSTransport` whose handshake is done).
            protocol: The :class:`~syncws.protocol.client.ClientProtocol` that ran the
                handshake, no longer ``CONNECTING``; make it with the same ``max_size``
                as ``options``.
            options: The connection options; the defaults if ``None``.
            logger: Logger, ``logging.getLogger("syncws.client")`` by default.
            heartbeat: The heartbeat thread that serves the connection; the one shared by
                the process's client connections if ``None``.
            events: What ``protocol.receive_data()`` returned with the handshake response
                (messages the server sent right after it), if any.

        Raises:
            TypeError: ``protocol`` is not a client protocol, or ``transport`` is neither
                a socket nor a transport.
            ValueError: The handshake is not complete.
        """
        wrapped = _handshaken(transport, protocol, ClientProtocol)
        conn = cls(
            wrapped,
            protocol,
            heartbeat=client_heartbeat() if heartbeat is None else heartbeat,
            options=ConnectionOptions() if options is None else options,
            logger=logger or logging.getLogger("syncws.client"),
            addresses=_socket_addresses(wrapped.sock),
        )
        conn.redirects = []
        conn._start(events)
        return conn

    def __enter__(self) -> ClientConnection:
        return self


def connect(
    uri: str,
    *,
    sock: socket.socket | None = None,
    unix_path: str | os.PathLike[str] | None = None,
    ssl: ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
    proxy: str | Literal[True] | None = True,
    proxy_ssl: ssl_module.SSLContext | None = None,
    proxy_server_hostname: str | None = None,
    max_redirects: int = 10,
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
    extensions: Sequence[ClientExtensionFactory] | None = None,
    max_queue: int = 16,
    logger: LoggerLike | None = None,
) -> ClientConnection:
    """Open a WebSocket connection to ``uri``.

    Use it as a context manager to close the connection on exit::

        with syncws.connect("ws://localhost:8765/") as ws:
            ws.send("Hello")
            print(ws.recv())

    Through a proxy when the environment names one (see :doc:`/howto/client`), and
    following redirects (HTTP 301, 302, 303, 307 and 308) up to ``max_redirects``.

    Args:
        uri: A ``ws://`` or ``wss://`` URI. User info (``ws://user:pass@host/``) is sent as
            HTTP Basic authentication.
        sock: A connected socket to use instead of opening one (no proxy, no redirect).
        unix_path: Connect to this Unix socket instead of the URI's host and port (the URI
            still gives the ``Host`` header and the path). Never through a proxy; a
            redirect connects to the same socket again.
        ssl: The TLS context for ``wss://``; a default, certificate-verifying one if
            ``None``.
        server_hostname: The name to verify in the server's certificate and send in SNI,
            when it differs from the URI's host.
        proxy: ``True`` (the default) takes the proxy from the environment as
            :mod:`urllib` does: ``https_proxy`` for ``wss://``, ``http_proxy`` for
            ``ws://``, then ``all_proxy``, then ``socks_proxy``, unless ``no_proxy``
            matches the host. A URL selects a proxy: ``http://[user:pass@]host:port``
            (HTTP ``CONNECT``), ``https://...`` (the same over TLS to the proxy),
            ``socks5://``, ``socks5h://`` (the proxy resolves the host name),
            ``socks4://`` or ``socks4a://`` (these need ``pip install 'syncws[socks]'``).
            ``None`` connects directly.
        proxy_ssl: The TLS context for an ``https://`` proxy; a default one if ``None``.
        proxy_server_hostname: The name to verify in an ``https://`` proxy's certificate,
            when it differs from the proxy's host.
        max_redirects: How many redirects to follow; ``0`` follows none (a redirect then
            raises :exc:`~syncws.TooManyRedirects`).
        origin: The ``Origin`` header.
        subprotocols: Subprotocols to offer, by preference.
        additional_headers: More headers for the handshake request. An ``Authorization``
            or ``Cookie`` header among them is not sent after a redirect to another
            origin (scheme, host and port), nor is the URI's user info.
        user_agent_header: The ``User-Agent`` header (also sent to an HTTP proxy);
            ``None`` omits it.
        open_timeout: Seconds for everything that opens the connection: the proxy and its
            tunnel, TCP, TLS and WebSocket handshakes, and every redirect.
        ping_interval: Seconds between keepalive pings; ``None`` disables them.
        ping_timeout: Seconds to wait for a pong before failing with 1011.
        close_timeout: Seconds to wait for the closing handshake.
        write_timeout: Seconds a send may block; then the connection fails with 1011.
        max_size: Largest incoming message in bytes; ``None`` for no limit. With
            compression, the limit applies to the decompressed size.
        compression: ``"deflate"`` offers permessage-deflate (RFC 7692), used if the
            server accepts it (see :doc:`/topics/compression`); ``None`` disables
            compression.
        extensions: Extension factories whose offers to make, in order
            (:class:`~syncws.protocol.extensions.ClientExtensionFactory`). A
            :class:`~syncws.protocol.deflate.ClientPerMessageDeflateFactory` among them
            sets compression's window bits, levels and threshold; it replaces the one
            ``compression="deflate"`` adds (see :doc:`/topics/compression`).
        max_queue: Messages buffered while no thread is in ``recv()``, before the client
            stops reading the socket (TCP backpressure). A high-water mark: the read that
            reaches it is queued whole (see :doc:`/topics/threads`).
        logger: Logger, ``logging.getLogger("syncws.client")`` by default. Each redirect
            is logged at INFO (without the query string).

    Raises:
        InvalidURI: ``uri`` is not a valid WebSocket URI.
        InvalidStatus: The server answered with a status other than 101 (and not a
            redirect that was followed).
        TooManyRedirects: More than ``max_redirects`` redirects.
        InsecureRedirect: A ``wss://`` server redirected to ``ws://``.
        InvalidRedirect: A redirect without a valid ``Location``.
        InvalidHandshake: The server's answer is not a valid WebSocket handshake.
        InvalidProxyStatus: The HTTP proxy refused the tunnel (403, 407, 502, ...); the
            exception carries the proxy's response.
        ProxyAuthenticationError: A SOCKS5 proxy refused the username and password of
            ``proxy``, or wants some and it has none.
        ProxyError: A SOCKS proxy refused the tunnel; :exc:`InvalidProxyMessage` when an
            HTTP proxy's answer is not valid HTTP.
        TimeoutError: The connection did not open within ``open_timeout``: one deadline
            for the proxy, the tunnel, TLS and the handshake, however slowly each answers.
        OSError: The connection could not be opened (refused, unreachable, TLS failure);
            when the proxy cannot be reached, the message names the proxy's address.
        ImportError: A SOCKS proxy without the ``socks`` extra installed.
        ValueError: An option is out of range (see
            :class:`~syncws.ConnectionOptions`), or ``proxy`` is not a URL
            of a supported proxy.
        TypeError: An option has the wrong type, e.g. an item of ``extensions`` is not a
            client extension factory.
    """
    wsuri = parse_uri(uri)
    options = ConnectionOptions(
        max_size=max_size,
        max_queue=max_queue,
        compression=compression,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
        open_timeout=open_timeout,
        write_timeout=write_timeout,
    )
    factories = client_extensions(compression, extensions)
    if ssl is not None and not wsuri.secure:
        raise ValueError("ssl is only for wss:// URIs")
    if max_redirects < 0:
        raise ValueError("max_redirects must be at least 0")
    if isinstance(proxy, str):
        parse_proxy(proxy)  # ValueError now, not after a redirect
    logger = logger or logging.getLogger("syncws.client")
    deadline = None if options.open_timeout is None else time.monotonic() + options.open_timeout

    def remaining() -> float | None:
        if deadline is None:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out during the opening handshake")
        return left

    first = wsuri
    redirects: list[str] = []
    while True:
        same_origin = _origin(wsuri) == _origin(first)
        headers = Headers(additional_headers or ())
        if not same_origin:
            for name in _CREDENTIAL_HEADERS:
                if name in headers:
                    del headers[name]
        elif wsuri.user_info is None and first.user_info is not None:
            wsuri = WebSocketURI(
                wsuri.secure, wsuri.host, wsuri.port, wsuri.resource_name, first.user_info
            )
        hop_proxy = None
        if sock is None and unix_path is None:
            hop_proxy = get_proxy(wsuri) if proxy is True else proxy
        try:
            transport, protocol, events = _open(
                wsuri,
                sock=sock,
                unix_path=unix_path,
                ssl=ssl,
                server_hostname=server_hostname if wsuri.host == first.host else None,
                proxy=hop_proxy,
                proxy_ssl=proxy_ssl,
                proxy_server_hostname=proxy_server_hostname,
                remaining=remaining,
                deadline=deadline,
                protocol=ClientProtocol(
                    wsuri,
                    origin=origin,
                    subprotocols=subprotocols,
                    additional_headers=headers,
                    user_agent_header=user_agent_header,
                    max_size=options.max_size,
                    extensions=factories,
                ),
            )
        except InvalidStatus as exc:
            if exc.response.status_code not in REDIRECT_STATUSES:
                raise
            if sock is not None:
                raise InvalidRedirect(
                    exc.response, "cannot follow a redirect on a socket passed with sock"
                ) from None
            if len(redirects) >= max_redirects:
                raise TooManyRedirects(exc.response, max_redirects) from None
            wsuri = _redirect(wsuri, exc)
            redirects.append(_unparse(wsuri))
            logger.info("redirected to %s (HTTP %d)", redact_uri(wsuri), exc.response.status_code)
            continue
        break
    conn = ClientConnection.from_handshake(
        transport, protocol, options=options, logger=logger, events=events
    )
    conn.redirects = redirects
    return conn


def _open(
    wsuri: WebSocketURI,
    *,
    sock: socket.socket | None,
    unix_path: str | os.PathLike[str] | None,
    ssl: ssl_module.SSLContext | None,
    server_hostname: str | None,
    proxy: str | None,
    proxy_ssl: ssl_module.SSLContext | None,
    proxy_server_hostname: str | None,
    remaining: Callable[[], float | None],
    deadline: float | None,
    protocol: ClientProtocol,
) -> tuple[Transport, ClientProtocol, list[Any]]:
    """One attempt at the opening handshake: connect (through ``proxy`` if not ``None``),
    TLS, then the WebSocket handshake. Raises ``protocol.handshake_exc`` when it fails (an
    :exc:`InvalidStatus` for a redirect, which :func:`connect` follows)."""
    tunnel: TLSTransport | None = None  # the TLS session with an https:// proxy
    if sock is None:
        if unix_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(remaining())
            try:
                sock.connect(os.fspath(unix_path))
            except BaseException:
                sock.close()
                raise
        elif proxy is not None:
            opened = open_tunnel(
                parse_proxy(proxy),
                wsuri,
                remaining=remaining,
                deadline=deadline,
                proxy_ssl=proxy_ssl,
                proxy_server_hostname=proxy_server_hostname,
                user_agent_header=protocol.user_agent_header,
            )
            if isinstance(opened, TLSTransport):
                tunnel, sock = opened, opened.sock
            else:
                sock = opened
        else:
            sock = socket.create_connection((wsuri.host, wsuri.port), timeout=remaining())
    sock.settimeout(None)
    if sock.family != socket.AF_UNIX:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport: Transport
    try:
        if wsuri.secure:
            context = ssl if ssl is not None else ssl_module.create_default_context()
            hostname = server_hostname or wsuri.host
            tls: TLSTransport
            if tunnel is not None:
                tls = NestedTLSTransport(tunnel, context, server_hostname=hostname)
            else:
                tls = TLSTransport(sock, context, server_side=False, server_hostname=hostname)
            tls.handshake(deadline)
            transport = tls
        else:
            transport = tunnel if tunnel is not None else Transport(sock)
        protocol.send_request(protocol.connect())
        transport.send(transport.encode(protocol.data_to_send()), deadline)
        events: list[Any] = []
        while protocol.state is State.CONNECTING:
            data = transport.recv(remaining())
            if data is None:
                raise TimeoutError("timed out during the opening handshake")
            if not data and isinstance(transport, TLSTransport) and transport.tls_error:
                # Why the server closed: e.g. TLS 1.3's "certificate required" alert, which
                # says more than "connection closed during the handshake".
                raise transport.tls_error
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
    return transport, protocol, events


def _origin(wsuri: WebSocketURI) -> tuple[bool, str, int]:
    return wsuri.secure, wsuri.host, wsuri.port


def _unparse(wsuri: WebSocketURI) -> str:
    """``wsuri`` as a URI string, without its user info."""
    scheme = "wss" if wsuri.secure else "ws"
    return f"{scheme}://{wsuri.host_header}{wsuri.resource_name}"


def redact_uri(wsuri: WebSocketURI) -> str:
    """``wsuri`` as syncws logs it: no user info, no query string (see
    :func:`~syncws.protocol.http11.redact_target`)."""
    scheme = "wss" if wsuri.secure else "ws"
    return f"{scheme}://{wsuri.host_header}{redact_target(wsuri.resource_name)}"


def _redirect(wsuri: WebSocketURI, exc: InvalidStatus) -> WebSocketURI:
    """Where the redirect ``exc`` leads, from ``wsuri`` (RFC 9110 §10.2.2: ``Location``
    may be relative, resolved against the request's URI)."""
    response = exc.response
    locations = response.headers.get_all("Location")
    if len(locations) != 1:
        raise InvalidRedirect(response, "redirect without a single Location header") from None
    scheme = "wss" if wsuri.secure else "ws"
    base = f"{scheme}://{wsuri.host_header}{wsuri.resource_name}"
    try:
        target = parse_uri(urllib.parse.urljoin(base, locations[0]))
    except (InvalidURI, ValueError):
        raise InvalidRedirect(
            response, f"redirect to an invalid WebSocket URI: {locations[0]!r}"
        ) from None
    if wsuri.secure and not target.secure:
        raise InsecureRedirect(response, "redirect from wss:// to ws:// refused") from None
    return target
