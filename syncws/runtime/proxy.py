"""The client's way through a proxy: which one (the environment, as :mod:`urllib` reads
it), and the tunnel (HTTP ``CONNECT``, over TLS for an ``https://`` proxy, or SOCKS through
the optional ``python-socks`` package).

Everything here runs in the thread that calls :func:`~syncws.connect`, before the
connection exists: it owns the socket until :func:`open_tunnel` returns it. A proxy's
credentials never go into a log line or an exception message; the proxy is named by its
host and port only.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl as ssl_module
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..exceptions import (
    InvalidMessage,
    InvalidProxyMessage,
    InvalidProxyStatus,
    ProxyAuthenticationError,
    ProxyError,
)
from ..protocol.headers import build_authorization_basic
from ..protocol.http11 import Headers, Response, ResponseParser
from ..protocol.uri import WebSocketURI, build_host
from .transport import TLSTransport, Transport

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

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
_SOCKS_VERSION = "SOCKS proxies need python-socks 3.0 or later: pip install -U 'syncws[socks]'"
# python-socks' messages (the same from 2.4 to 3.2) when a SOCKS5 proxy accepts none of the
# authentication methods offered (RFC 1928 §3: X'FF'), and when it refuses the username and
# password (RFC 1929 §2: a status other than X'00').
_SOCKS_NO_METHOD = "No acceptable authentication methods were offered"
_SOCKS_REFUSED_PASSWORD = "Username and password authentication failure"


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
    ``www.example.com``), ``host:port`` entries, and ``*``; and IPv6 addresses as curl
    reads them, bare or in brackets, with a port or not (``::1``, ``[::1]``,
    ``[::1]:8080``), whatever their spelling (``0:0::1`` is ``::1``).
    """
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    if urllib.request.proxy_bypass(f"{host}:{uri.port}"):
        return None
    proxies = urllib.request.getproxies()
    if ":" in uri.host and _bypass_ipv6(proxies.get("no", ""), uri.host, uri.port):
        return None
    for key in ("https" if uri.secure else "http", "all", "socks"):
        url = proxies.get(key)
        if url:
            if key == "socks" and "://" not in url:
                url = "socks5h://" + url
            return url
    return None


def _bypass_ipv6(no_proxy: str, host: str, port: int) -> bool:
    """Whether ``no_proxy`` lists the IPv6 address ``host`` (and ``port``, if it says).

    urllib compares entries with ``[::1]`` as text: the bare ``::1`` that curl, requests
    and httpx document (and ``no_proxy=localhost,127.0.0.1,::1`` is common) never matched.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    for entry in no_proxy.split(","):
        entry, entry_port = entry.strip(), ""
        if entry.startswith("["):
            entry, _, rest = entry[1:].partition("]")
            if rest.startswith(":"):
                entry_port = rest[1:]
        try:
            if ipaddress.ip_address(entry) != address:
                continue
        except ValueError:
            continue
        if entry_port in ("", str(port)):
            return True
    return False


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
        ProxyAuthenticationError: A SOCKS5 proxy refused the credentials, or wants some.
        ProxyError: A SOCKS proxy refused the tunnel.
        OSError: The proxy could not be reached; the message names the proxy's address.
        TimeoutError: ``open_timeout`` ran out.
        ImportError: A SOCKS proxy, without ``python-socks`` 3.0 or later.
        ValueError: ``proxy_ssl`` or ``proxy_server_hostname`` given for a proxy that is
            not ``https://``.
    """
    if proxy.scheme != "https" and (proxy_ssl is not None or proxy_server_hostname):
        raise ValueError("proxy_ssl and proxy_server_hostname are for https:// proxies")
    if proxy.scheme.startswith("socks"):
        return _socks_tunnel(proxy, uri, remaining)
    sock = _connect_to(proxy, remaining)
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
    except TimeoutError as exc:  # in TLS, in the request, in the answer: the proxy's fault
        sock.close()
        raise TimeoutError(f"timed out waiting for proxy {proxy.address}") from exc
    except BaseException:
        sock.close()
        raise
    return transport if isinstance(transport, TLSTransport) else sock


def _connect_to(proxy: Proxy, remaining: Callable[[], float | None]) -> socket.socket:
    """A TCP connection to ``proxy``, blocking, with ``TCP_NODELAY``."""
    try:
        sock = socket.create_connection((proxy.host, proxy.port), timeout=remaining())
    except OSError as exc:  # TimeoutError included: it stays one
        raise _unreachable(proxy, exc) from exc
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


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
    answer = _ConnectAnswer(proxy.address)
    while True:
        data = transport.recv(remaining())  # remaining() raises once it is over
        if data is None:
            raise TimeoutError("no answer")
        if answer.feed(data) is not None:
            break
    if answer.remainder:
        # The server speaks after the client in both TLS and the WebSocket handshake.
        raise InvalidProxyMessage(f"proxy {proxy.address} sent data before the tunnel opened")


class _ConnectAnswer:
    """A proxy's answer to ``CONNECT``, fed as it arrives (Sans-I/O: the fuzz target
    ``tests/fuzz/fuzz_proxy_response.py`` runs this very code).

    Args:
        address: The proxy, as exception messages name it.
    """

    def __init__(self, address: str) -> None:
        self._address = address
        self._parser = ResponseParser(tunnel=True)

    def feed(self, data: bytes) -> Response | None:
        """Add bytes received, ``b""`` at the end of the stream; return the proxy's 2xx
        answer once it is complete (the tunnel is open), else ``None``.

        Raises:
            InvalidProxyStatus: The proxy refused the tunnel (an answer not 1xx nor 2xx).
            InvalidProxyMessage: The answer is not valid HTTP, or the stream ended first.
        """
        try:
            response = self._parser.feed(data) if data else self._parser.feed_eof()
            # An interim 1xx answer comes before the real one (RFC 9110 §15.2): skip it.
            while response is not None and response.status_code < 200:
                rest, self._parser = self._parser.remainder, ResponseParser(tunnel=True)
                response = self._parser.feed(rest)
                if response is None and not data:
                    response = self._parser.feed_eof()
        except InvalidMessage as exc:
            message = f"invalid answer from proxy {self._address}: {exc}"
            raise InvalidProxyMessage(message) from exc
        if response is not None and response.status_code >= 300:
            raise InvalidProxyStatus(response)
        return response

    @property
    def remainder(self) -> bytes:
        """What came after the 2xx answer: bytes from inside the tunnel."""
        return self._parser.remainder


def _socks_tunnel(
    proxy: Proxy, uri: WebSocketURI, remaining: Callable[[], float | None]
) -> socket.socket:
    """Connect through a SOCKS proxy with python-socks (the ``socks`` extra).

    python-socks gives its ``timeout`` to each read, and a proxy that trickles its answer
    a byte at a time would stretch the exchange far beyond ``open_timeout``. So syncws
    opens the connection to the proxy itself and hands it over (python-socks' ``forward``,
    meant for a chain of proxies, takes any object whose ``connect()`` returns a socket)
    as a :class:`_DeadlineSocket`: every read and write gets the time left, no more.
    """
    try:
        import python_socks
        from python_socks import ProxyType
        from python_socks.sync import Proxy as SocksProxy
    except ImportError as exc:
        raise ImportError(_SOCKS_EXTRA) from exc
    if int(python_socks.__version__.partition(".")[0]) < 3:  # no forward before 3.0
        raise ImportError(_SOCKS_VERSION)
    # socks5h and socks4a leave name resolution to the proxy ("remote DNS").
    version = ProxyType.SOCKS5 if proxy.scheme.startswith("socks5") else ProxyType.SOCKS4
    if version is ProxyType.SOCKS4 and ":" in uri.host:
        # python-socks would send it as a host name (SOCKS4a), which the proxy rejects
        # with no reason given.
        raise ProxyError("a SOCKS4 proxy cannot reach an IPv6 address: use socks5://")
    username, password = proxy.user_info or (None, None)
    sock = _DeadlineSocket(_connect_to(proxy, remaining), remaining)
    socks = SocksProxy(
        version,
        proxy.host,
        proxy.port,
        username,
        password,
        rdns=proxy.scheme in ("socks5h", "socks4a"),
        forward=cast(Any, _Connected(sock)),
    )
    try:
        socks.connect(uri.host, uri.port)
    except BaseException as exc:
        sock.close()  # python-socks closes it on most errors, not all
        if isinstance(exc, TimeoutError):
            raise TimeoutError(f"timed out connecting through proxy {proxy.address}") from exc
        if isinstance(exc, OSError):  # python-socks' ProxyConnectionError included
            raise _unreachable(proxy, exc) from exc
        if isinstance(exc, python_socks.ProxyError):
            raise _socks_refusal(proxy, str(exc)) from exc
        raise
    return sock.release()


def _socks_refusal(proxy: Proxy, reason: str) -> ProxyError:
    """The exception for python-socks' ``ProxyError`` with message ``reason``."""
    if reason == _SOCKS_NO_METHOD and not (proxy.user_info and all(proxy.user_info)):
        # python-socks offers username and password only when both are given.
        return ProxyAuthenticationError(f"proxy {proxy.address} requires a username and password")
    if reason in (_SOCKS_NO_METHOD, _SOCKS_REFUSED_PASSWORD):
        message = f"proxy {proxy.address} refused the username and password ({reason})"
        return ProxyAuthenticationError(message)
    return ProxyError(f"proxy {proxy.address} refused the connection: {reason}")


class _Connected:
    """What python-socks takes for the proxy before it (``forward``): the connection to
    the SOCKS proxy, already open."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def connect(self, dest_host: str, dest_port: int, **kwargs: Any) -> socket.socket:
        return self._sock


class _DeadlineSocket(socket.socket):
    """A socket whose reads and writes block no longer than the time left before the
    deadline (``remaining()`` raises :exc:`TimeoutError` once it has passed), however
    many there are: python-socks reads a reply in as many ``recv()`` calls as it takes.

    It takes over ``sock``'s descriptor; :meth:`release` gives it back as a plain
    socket, without the per-call cost of this class on the connection's message path.
    """

    def __init__(self, sock: socket.socket, remaining: Callable[[], float | None]) -> None:
        super().__init__(sock.family, sock.type, sock.proto, sock.detach())
        self._remaining = remaining

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self.settimeout(self._remaining())
        return super().recv(bufsize, flags)

    def sendall(self, data: ReadableBuffer, flags: int = 0) -> None:
        self.settimeout(self._remaining())  # the whole sendall() (Python >= 3.5)
        super().sendall(data, flags)

    def release(self) -> socket.socket:
        """This socket's descriptor as a plain, blocking socket (this one is then closed)."""
        family, type_, proto = self.family, self.type, self.proto
        sock = socket.socket(family, type_, proto, self.detach())
        sock.settimeout(None)
        return sock
