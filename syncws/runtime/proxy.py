"""The client's way through a proxy: which one (the environment, as :mod:`urllib` reads
it), and the tunnel (HTTP ``CONNECT``, over TLS for an ``https://`` proxy, or SOCKS through
the optional ``python-socks`` package).

Everything here runs in the thread that calls :func:`~syncws.connect`, before the
connection exists: it owns the socket until :func:`open_tunnel` returns it. A proxy's
credentials never go into a log line or an exception message; the proxy is named by its
host and port only.
"""

from __future__ import annotations

import socket
import ssl as ssl_module
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from ..exceptions import InvalidMessage, InvalidProxyMessage, InvalidProxyStatus, ProxyError
from ..protocol.headers import build_authorization_basic
from ..protocol.http11 import Headers, ResponseParser
from ..protocol.uri import WebSocketURI, build_host
from .transport import TLSTransport, Transport

__all__ = ["Proxy", "get_proxy", "open_tunnel", "parse_proxy"]

#: The proxy schemes :func:`parse_proxy` accepts, and their default ports.
_DEFAULT_PORTS = {
    "http": 80,
    "https": 443,
    "socks5": 1080,
    "socks5h": 1080,
    "socks4": 1080,
    "socks4a": 1080,
}
_SOCKS_EXTRA = "SOCKS proxies need python-socks: pip install 'syncws[socks]'"


@dataclass(frozen=True)
class Proxy:
    """A proxy, from :func:`parse_proxy`.

    Attributes:
        scheme: ``http``, ``https``, ``socks5``, ``socks5h``, ``socks4`` or ``socks4a``.
        host: The proxy's host (IPv6 literals without brackets).
        port: The proxy's port.
        user_info: ``(username, password)``, percent-decoded, or ``None``.
    """

    scheme: str
    host: str
    port: int
    user_info: tuple[str, str] | None = None

    @property
    def address(self) -> str:
        """``host:port``, as error messages name the proxy (never with credentials)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_proxy(proxy: str) -> Proxy:
    """Parse a proxy URL such as ``http://user:pass@proxy.example:3128``.

    A URL without a scheme (``proxy.example:3128``, as some environments set
    ``https_proxy``) is taken as ``http://``, as curl does.

    Raises:
        ValueError: The scheme is not one of those of :class:`Proxy`, or the host or port
            is missing or invalid. The message leaves the credentials out.
    """
    if "://" not in proxy:
        proxy = "http://" + proxy
    try:
        parts = urllib.parse.urlsplit(proxy)
        port = parts.port
    except ValueError:
        raise ValueError("invalid proxy URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"unsupported proxy scheme: {scheme!r}")
    if not parts.hostname:
        raise ValueError("proxy URL without a host")
    user_info = None
    if parts.username is not None:
        user_info = (
            urllib.parse.unquote(parts.username),
            urllib.parse.unquote(parts.password or ""),
        )
    return Proxy(scheme, parts.hostname, port or _DEFAULT_PORTS[scheme], user_info)


def get_proxy(uri: WebSocketURI) -> str | None:
    """The proxy for ``uri`` from the environment, as :mod:`urllib` reads it, or ``None``.

    ``wss://`` uses ``https_proxy``, ``ws://`` uses ``http_proxy`` (either case; with
    ``REQUEST_METHOD`` set, as under CGI, the upper-case ``HTTP_PROXY`` is ignored, see
    :func:`urllib.request.getproxies`); then ``all_proxy``, then ``socks_proxy``.
    ``no_proxy`` is honoured with :func:`urllib.request.proxy_bypass` semantics: host
    names, domain suffixes (``example.com`` and ``.example.com`` also match
    ``www.example.com``), ``host:port`` entries, and ``*``.
    """
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    if urllib.request.proxy_bypass(f"{host}:{uri.port}"):
        return None
    proxies = urllib.request.getproxies()
    for key in ("https" if uri.secure else "http", "all", "socks"):
        url = proxies.get(key)
        if url:
            if key == "socks" and "://" not in url:
                url = "socks5h://" + url
            return url
    return None


def open_tunnel(
    proxy: Proxy,
    uri: WebSocketURI,
    *,
    remaining: Callable[[], float | None],
    deadline: float | None,
    proxy_ssl: ssl_module.SSLContext | None,
    proxy_server_hostname: str | None,
    user_agent_header: str | None,
) -> socket.socket | TLSTransport:
    """Open a tunnel to ``uri``'s host and port through ``proxy``.

    Args:
        proxy: The proxy.
        uri: The destination.
        remaining: Seconds left of ``open_timeout`` (raises :exc:`TimeoutError` when none).
        deadline: The ``time.monotonic()`` by which the TLS handshake with an ``https://``
            proxy must be done, or ``None``.
        proxy_ssl: The TLS context for an ``https://`` proxy.
        proxy_server_hostname: The name to verify in an ``https://`` proxy's certificate.
        user_agent_header: The ``User-Agent`` of the ``CONNECT`` request.

    Returns:
        The connected socket, or for an ``https://`` proxy the TLS transport to the proxy,
        in which the tunnel runs.

    Raises:
        InvalidProxyStatus: An HTTP proxy refused the tunnel.
        InvalidProxyMessage: An HTTP proxy's answer is not valid HTTP.
        ProxyError: A SOCKS proxy refused the tunnel.
        OSError: The proxy could not be reached; the message names the proxy's address.
        TimeoutError: ``open_timeout`` ran out.
        ImportError: A SOCKS proxy, without ``python-socks``.
        ValueError: ``proxy_ssl`` or ``proxy_server_hostname`` given for a proxy that is
            not ``https://``.
    """
    if proxy.scheme != "https" and (proxy_ssl is not None or proxy_server_hostname):
        raise ValueError("proxy_ssl and proxy_server_hostname are for https:// proxies")
    if proxy.scheme.startswith("socks"):
        return _socks_tunnel(proxy, uri, remaining())
    try:
        sock = socket.create_connection((proxy.host, proxy.port), timeout=remaining())
    except OSError as exc:
        raise _unreachable(proxy, exc) from exc
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        transport: Transport
        if proxy.scheme == "https":
            context = proxy_ssl or ssl_module.create_default_context()
            tls = TLSTransport(
                sock,
                context,
                server_side=False,
                server_hostname=proxy_server_hostname or proxy.host,
            )
            tls.handshake(deadline)
            transport = tls
        else:
            transport = Transport(sock)
        _http_connect(transport, proxy, uri, remaining, deadline, user_agent_header)
    except BaseException:
        sock.close()
        raise
    return transport if isinstance(transport, TLSTransport) else sock


def _unreachable(proxy: Proxy, exc: OSError) -> OSError:
    """``exc`` again, of the same class (errno kept), with the proxy's address in the
    message: "connection refused" alone would leave the user looking at the server."""
    reason = exc.strerror or str(exc) or exc.__class__.__name__
    message = f"cannot reach proxy {proxy.address}: {reason}"
    if exc.errno is None:
        return exc.__class__(message)
    return exc.__class__(exc.errno, message)


def _http_connect(
    transport: Transport,
    proxy: Proxy,
    uri: WebSocketURI,
    remaining: Callable[[], float | None],
    deadline: float | None,
    user_agent_header: str | None,
) -> None:
    """Send ``CONNECT host:port`` (RFC 9110 §9.3.6) and read the proxy's answer."""
    authority = build_host(uri.host, uri.port, secure=False)
    if f":{uri.port}" not in authority:  # build_host() leaves out port 80
        authority = f"{authority}:{uri.port}"
    headers = Headers()
    headers["Host"] = authority
    if user_agent_header is not None:
        headers["User-Agent"] = user_agent_header
    if proxy.user_info is not None:
        headers["Proxy-Authorization"] = build_authorization_basic(*proxy.user_info)
    request = f"CONNECT {authority} HTTP/1.1\r\n".encode() + headers.serialize()
    transport.send(transport.encode(request), deadline)
    parser = ResponseParser(tunnel=True)
    try:
        while True:
            data = transport.recv(remaining())
            if data is None:
                raise TimeoutError(f"timed out waiting for proxy {proxy.address}")
            response = parser.feed(data) if data else parser.feed_eof()
            # An interim 1xx answer comes before the real one (RFC 9110 §15.2): skip it.
            while response is not None and response.status_code < 200:
                rest, parser = parser.remainder, ResponseParser(tunnel=True)
                response = parser.feed(rest) if rest else None
            if response is not None:
                break
    except InvalidMessage as exc:
        raise InvalidProxyMessage(f"invalid answer from proxy {proxy.address}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise InvalidProxyStatus(response)
    if parser.remainder:
        # The server speaks after the client in both TLS and the WebSocket handshake.
        raise InvalidProxyMessage(f"proxy {proxy.address} sent data before the tunnel opened")


def _socks_tunnel(proxy: Proxy, uri: WebSocketURI, timeout: float | None) -> socket.socket:
    """Connect through a SOCKS proxy with python-socks (the ``socks`` extra)."""
    try:
        from python_socks import ProxyError as SocksError
        from python_socks import ProxyType
        from python_socks.sync import Proxy as SocksProxy
    except ImportError as exc:
        raise ImportError(_SOCKS_EXTRA) from exc
    # socks5h and socks4a leave name resolution to the proxy ("remote DNS").
    version = ProxyType.SOCKS5 if proxy.scheme.startswith("socks5") else ProxyType.SOCKS4
    username, password = proxy.user_info or (None, None)
    socks = SocksProxy(
        version,
        proxy.host,
        proxy.port,
        username,
        password,
        rdns=proxy.scheme in ("socks5h", "socks4a"),
    )
    try:
        sock = socks.connect(uri.host, uri.port, timeout=timeout)
    except TimeoutError as exc:
        raise TimeoutError(f"timed out connecting through proxy {proxy.address}") from exc
    except OSError as exc:  # python-socks' ProxyConnectionError included
        raise _unreachable(proxy, exc) from exc
    except SocksError as exc:
        raise ProxyError(f"proxy {proxy.address} refused the connection: {exc}") from exc
    sock.settimeout(None)
    if sock.family != socket.AF_UNIX:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
