"""connect() through real proxies: tinyproxy (HTTP CONNECT, Basic auth; behind a TLS
front for https:// proxies) and dante (SOCKS5 and SOCKS4, with and without a username
and password), started by fixtures on free loopback ports, IPv4 and IPv6 (see
proxy_servers.py); proxies that trickle their answer (open_timeout); and the proxy taken
from the environment."""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ServerFactory, ipv6_loopback, tls_contexts, uri
from proxy_servers import (
    SOCKS_USER,
    SOCKS_USER_INFO,
    RunningProxy,
    TLSFront,
    TricklingProxy,
    dante,
    tinyproxy,
)
from timing import TIMEOUT

import syncws
from syncws.protocol.uri import parse_uri
from syncws.runtime.proxy import get_proxy, parse_proxy
from syncws.runtime.reconnect import process_exception

#: open_timeout of the tests of slow proxies, and how late the failure may come (a loaded
#: machine wakes threads late; the bug it guards against was seconds late).
OPEN_TIMEOUT = 1.0
MARGIN = 0.5

ipv6 = pytest.mark.skipif(
    not ipv6_loopback(), reason="this machine has no IPv6 loopback (::1 cannot be bound)"
)


@pytest.fixture(scope="module")
def http_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    with tinyproxy(tmp_path_factory.mktemp("tinyproxy")) as running:
        yield running


@pytest.fixture(scope="module")
def auth_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    with tinyproxy(tmp_path_factory.mktemp("tinyproxy-auth"), ("alice", "s3cret")) as running:
        yield running


@pytest.fixture(scope="module")
def socks_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    with dante(tmp_path_factory.mktemp("dante")) as running:
        yield running


@pytest.fixture(scope="module")
def socks_auth_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    with dante(tmp_path_factory.mktemp("dante-auth"), with_user=True) as running:
        yield running


@pytest.fixture(scope="module")
def proxies6(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningProxy, ...]]:
    """tinyproxy and dante, both listening on ::1."""
    if not ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback (::1 cannot be bound)")
    directory = tmp_path_factory.mktemp("proxies6")
    with tinyproxy(directory, host="::1") as http, dante(directory, host="::1") as socks:
        yield http, socks


def echo_once(ws: syncws.ClientConnection, message: str = "hello") -> None:
    ws.send(message)
    assert ws.recv(timeout=TIMEOUT) == message


def proxied_connections(proxy: RunningProxy) -> int:
    """How many tunnels tinyproxy's log says it opened."""
    return proxy.log.read_text(errors="replace").count("Established connection to host")


def test_http_proxy_tunnels_ws(server: ServerFactory, http_proxy: RunningProxy) -> None:
    """ws:// through tinyproxy's CONNECT: messages go both ways, and the proxy saw it."""
    before = proxied_connections(http_proxy)
    with syncws.connect(uri(server()), proxy=http_proxy.url()) as ws:
        echo_once(ws)
    assert proxied_connections(http_proxy) == before + 1


def test_http_proxy_tunnels_wss(server: ServerFactory, http_proxy: RunningProxy) -> None:
    """wss:// through an HTTP proxy: TLS runs end to end inside the tunnel."""
    server_ctx, client_ctx = tls_contexts()
    srv = server(ssl=server_ctx)
    target = f"wss://127.0.0.1:{srv.port}/"
    with syncws.connect(
        target, proxy=http_proxy.url(), ssl=client_ctx, server_hostname="localhost"
    ) as ws:
        echo_once(ws, "x" * 200_000)  # several TLS records


def test_http_proxy_basic_auth(server: ServerFactory, auth_proxy: RunningProxy) -> None:
    """Credentials in the proxy URL are sent as Proxy-Authorization: Basic."""
    with syncws.connect(uri(server()), proxy=auth_proxy.url(user_info="alice:s3cret")) as ws:
        echo_once(ws)


# tinyproxy answers wrong credentials with 401, missing ones with 407.
@pytest.mark.parametrize(("user_info", "status"), [("", 407), ("alice:wrong", 401)])
def test_http_proxy_refusal_carries_the_response(
    server: ServerFactory, auth_proxy: RunningProxy, user_info: str, status: int
) -> None:
    """No or wrong credentials: InvalidProxyStatus with the proxy's response."""
    with pytest.raises(syncws.InvalidProxyStatus) as exc_info:
        syncws.connect(uri(server()), proxy=auth_proxy.url(user_info=user_info))
    assert exc_info.value.response.status_code == status
    assert exc_info.value.status_code == status
    assert str(status) in str(exc_info.value)
    assert isinstance(exc_info.value, syncws.ProxyError)


def test_http_proxy_403_for_a_forbidden_destination(http_proxy: RunningProxy) -> None:
    """A destination the proxy's rules forbid: InvalidProxyStatus 403, with its body."""
    with pytest.raises(syncws.InvalidProxyStatus) as exc_info:
        syncws.connect("ws://192.0.2.1:9/", proxy=http_proxy.url(), open_timeout=TIMEOUT)
    assert exc_info.value.response.status_code == 403
    assert b"Filtered" in exc_info.value.response.body


def test_http_proxy_unreachable_names_the_proxy(server: ServerFactory) -> None:
    """Nothing listens at the proxy's address: the error names the proxy, not the server."""
    srv = server()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    with pytest.raises(ConnectionRefusedError) as exc_info:
        syncws.connect(uri(srv), proxy=f"http://user:pw@127.0.0.1:{dead}")
    message = str(exc_info.value)
    assert f"proxy 127.0.0.1:{dead}" in message
    assert str(srv.port) not in message
    assert "pw" not in message


def test_open_timeout_bounds_a_silent_proxy() -> None:
    """A proxy that accepts and never answers: TimeoutError after open_timeout."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            syncws.connect(
                "ws://127.0.0.1:9/",
                proxy=f"http://127.0.0.1:{silent.getsockname()[1]}",
                open_timeout=0.5,
            )
        assert time.monotonic() - start < 3


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_open_timeout_bounds_a_trickling_proxy(kind: str) -> None:
    """A proxy whose answer comes a byte at a time and never ends: TimeoutError naming the
    proxy at open_timeout, however many reads it took (python-socks alone gives each read
    the whole timeout: 3.6 s for an open_timeout of 1 s)."""
    proxy = TricklingProxy(kind, 0.05, endless=True)
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError, match=f"proxy 127.0.0.1:{proxy.port}"):
            syncws.connect("ws://127.0.0.1:9/", proxy=proxy.url, open_timeout=OPEN_TIMEOUT)
        elapsed = time.monotonic() - start
    finally:
        proxy.close()
    assert OPEN_TIMEOUT <= elapsed < OPEN_TIMEOUT + MARGIN


# Byte intervals at which each proxy's answer takes 0.6 s.
_SLOW_ANSWERS = {"socks5": 0.6 / 12, "http": 0.6 / 39}


@pytest.mark.parametrize("kind", ["socks5", "http"])
@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_open_timeout_spans_the_proxy_tls_and_the_handshake(kind: str, scheme: str) -> None:
    """The proxy takes 0.6 s to open the tunnel, then the server never answers (the TLS
    handshake, or the WebSocket one): TimeoutError at open_timeout, not 0.6 s later. One
    deadline for the whole, not a timeout per step."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        proxy = TricklingProxy(kind, _SLOW_ANSWERS[kind])
        try:
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                syncws.connect(
                    f"{scheme}://127.0.0.1:{silent.getsockname()[1]}/",
                    proxy=proxy.url,
                    open_timeout=OPEN_TIMEOUT,
                )
            elapsed = time.monotonic() - start
        finally:
            proxy.close()
    assert OPEN_TIMEOUT <= elapsed < OPEN_TIMEOUT + MARGIN


def test_slow_proxy_within_open_timeout_connects(server: ServerFactory) -> None:
    """A proxy that takes 0.6 s of the 1 s open_timeout leaves the rest to the handshake:
    the connection opens (the deadline does not cut a slow but timely proxy short)."""
    srv = server()
    for kind in ("socks5", "http"):
        proxy = TricklingProxy(kind, _SLOW_ANSWERS[kind])
        try:
            with syncws.connect(uri(srv), proxy=proxy.url, open_timeout=OPEN_TIMEOUT + 1) as ws:
                echo_once(ws)
        finally:
            proxy.close()


def test_an_interim_1xx_answer_to_connect_is_skipped(server: ServerFactory) -> None:
    """A proxy that answers CONNECT with "100 Continue" first, then 200: the interim answer
    is skipped (RFC 9110 §15.2), not taken for a refusal (found by a review)."""
    srv = server()
    listener = socket.create_server(("127.0.0.1", 0))

    def proxy() -> None:
        client, _ = listener.accept()
        client.settimeout(TIMEOUT)
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        upstream = socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT)
        client.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\n\r\n")
        with client, upstream:
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(src, dst), daemon=True).start()
            done.wait(TIMEOUT)

    done = threading.Event()
    thread = threading.Thread(target=proxy, daemon=True)
    thread.start()
    try:
        proxy_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with syncws.connect(uri(srv), proxy=proxy_url, open_timeout=TIMEOUT) as ws:
            echo_once(ws)
    finally:
        done.set()
        thread.join(TIMEOUT)
        listener.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    """Copy ``src`` to ``dst`` until either side ends."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)  # pass the end on
    except OSError:
        pass


def test_https_proxy_tunnels_ws_and_wss(server: ServerFactory, http_proxy: RunningProxy) -> None:
    """An https:// proxy (TLS to the proxy, proxy_ssl, proxy_server_hostname): ws:// runs
    in the proxy's TLS session, wss:// in TLS inside it."""
    proxy_server_ctx, proxy_client_ctx = tls_contexts("proxy.test")
    front = TLSFront(proxy_server_ctx, http_proxy.port)
    try:
        proxy = f"https://127.0.0.1:{front.port}"
        options = {"proxy_ssl": proxy_client_ctx, "proxy_server_hostname": "proxy.test"}
        with syncws.connect(uri(server()), proxy=proxy, **options) as ws:
            echo_once(ws)
        server_ctx, client_ctx = tls_contexts()
        srv = server(ssl=server_ctx)
        with syncws.connect(
            f"wss://127.0.0.1:{srv.port}/",
            proxy=proxy,
            ssl=client_ctx,
            server_hostname="localhost",
            **options,
        ) as ws:
            echo_once(ws)
            echo_once(ws, "y" * 300_000)  # read_payload() through both TLS layers
            ws.send("z" * 100)
            assert ws.recv() == "z" * 100  # recv() without timeout
        # The proxy's certificate is checked: not for this name.
        with pytest.raises(ssl.SSLCertVerificationError):
            syncws.connect(uri(srv), proxy=proxy, proxy_ssl=proxy_client_ctx)
    finally:
        front.close()


@pytest.mark.parametrize("scheme", ["socks5", "socks5h", "socks4", "socks4a"])
def test_socks_proxy(server: ServerFactory, socks_proxy: RunningProxy, scheme: str) -> None:
    """ws:// through dante with each SOCKS flavour."""
    srv = server()
    host = "localhost" if scheme == "socks5h" else "127.0.0.1"  # the proxy resolves it
    with syncws.connect(
        f"ws://{host}:{srv.port}/", proxy=socks_proxy.url(scheme), open_timeout=TIMEOUT
    ) as ws:
        echo_once(ws)


@pytest.mark.parametrize("host", ["127.0.0.1", pytest.param("::1", marks=ipv6)])
def test_socks_proxy_wss(server: ServerFactory, socks_proxy: RunningProxy, host: str) -> None:
    """wss:// through SOCKS5, to a server on IPv4 or IPv6, the certificate checked."""
    server_ctx, client_ctx = tls_contexts()
    srv = server(host=host, ssl=server_ctx)
    with syncws.connect(
        uri(srv, scheme="wss"),
        proxy=socks_proxy.url("socks5"),
        ssl=client_ctx,
        server_hostname="localhost",
    ) as ws:
        echo_once(ws)


def test_socks_proxy_refusal_is_a_proxy_error(socks_proxy: RunningProxy) -> None:
    """A destination dante's rules block: ProxyError naming the proxy and its reason."""
    with pytest.raises(syncws.ProxyError) as exc_info:
        syncws.connect("ws://192.0.2.1:9/", proxy=socks_proxy.url("socks5"))
    assert f"127.0.0.1:{socks_proxy.port}" in str(exc_info.value)
    assert not isinstance(exc_info.value, syncws.InvalidProxyStatus)


def test_socks_proxy_unreachable_names_the_proxy() -> None:
    """Nothing listens at the SOCKS proxy's address: OSError naming it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    with pytest.raises(OSError, match=f"proxy 127.0.0.1:{dead}"):
        syncws.connect("ws://127.0.0.1:9/", proxy=f"socks5://127.0.0.1:{dead}")


def test_socks5_username_and_password(
    server: ServerFactory, socks_auth_proxy: RunningProxy
) -> None:
    """socks5://user:pass@ authenticates with RFC 1929, as dante (which checks the system's
    users) requires; the password's percent-encoded ':' is decoded."""
    for scheme in ("socks5", "socks5h"):
        proxy = socks_auth_proxy.url(scheme, SOCKS_USER_INFO)
        with syncws.connect(uri(server()), proxy=proxy, open_timeout=TIMEOUT) as ws:
            echo_once(ws)


@pytest.mark.parametrize(
    "user_info", [f"{SOCKS_USER}:wrongpw", "", SOCKS_USER_INFO.replace(SOCKS_USER, "nobody")]
)
def test_socks5_refused_credentials(
    server: ServerFactory,
    socks_auth_proxy: RunningProxy,
    caplog: pytest.LogCaptureFixture,
    user_info: str,
) -> None:
    """A wrong password, no credentials, or an unknown user: ProxyAuthenticationError (a
    ProxyError) naming the proxy, without the password, anywhere in the traceback or the
    logs; reconnect() takes it as fatal."""
    caplog.set_level(logging.DEBUG, logger="syncws")
    proxy = socks_auth_proxy.url("socks5", user_info)
    with pytest.raises(syncws.ProxyAuthenticationError) as exc_info:
        syncws.connect(uri(server()), proxy=proxy, open_timeout=TIMEOUT)
    exc = exc_info.value
    assert isinstance(exc, syncws.ProxyError)
    message = str(exc)
    assert message.startswith(f"proxy 127.0.0.1:{socks_auth_proxy.port} ")
    assert ("requires a username" if not user_info else "refused the username") in message
    text = "".join(traceback.format_exception(exc)) + caplog.text
    assert "wrongpw" not in text and "s3cret" not in text
    assert process_exception(exc) is exc


def test_socks_without_python_socks_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without python-socks, a SOCKS proxy gives an ImportError naming syncws[socks]."""
    monkeypatch.setitem(sys.modules, "python_socks", None)
    with pytest.raises(ImportError, match=r"syncws\[socks\]"):
        syncws.connect("ws://127.0.0.1:9/", proxy="socks5://127.0.0.1:1")


@pytest.mark.parametrize("target", ["127.0.0.1", "::1"])
def test_http_proxy_on_ipv6(
    server: ServerFactory, proxies6: tuple[RunningProxy, ...], target: str
) -> None:
    """http://[::1]:port: tinyproxy listening on ::1 tunnels to IPv4 and IPv6 servers (the
    CONNECT line puts an IPv6 address in brackets: CONNECT [::1]:port)."""
    http_proxy6 = proxies6[0]
    srv = server(host=target)
    before = proxied_connections(http_proxy6)
    assert http_proxy6.url().startswith("http://[::1]:")
    with syncws.connect(uri(srv), proxy=http_proxy6.url(), open_timeout=TIMEOUT) as ws:
        echo_once(ws)
    assert proxied_connections(http_proxy6) == before + 1


@pytest.mark.parametrize("target", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_socks_proxy_on_ipv6(
    server: ServerFactory, proxies6: tuple[RunningProxy, ...], target: str, scheme: str
) -> None:
    """socks5://[::1]:port: dante listening on ::1 connects to IPv4 and IPv6 servers (an
    IPv6 destination goes as such, address type 4, RFC 1928 §5)."""
    srv = server(host=target)
    proxy = proxies6[1].url(scheme)
    assert proxy.startswith(f"{scheme}://[::1]:")
    with syncws.connect(uri(srv), proxy=proxy, open_timeout=TIMEOUT) as ws:
        echo_once(ws)


@ipv6
def test_ipv6_server_through_an_ipv4_socks_proxy(
    server: ServerFactory, socks_proxy: RunningProxy
) -> None:
    """ws://[::1]:port/ through dante on 127.0.0.1 (wss://: test_socks_proxy_wss)."""
    with syncws.connect(uri(server(host="::1")), proxy=socks_proxy.url("socks5")) as ws:
        echo_once(ws)


@ipv6
def test_socks4_cannot_reach_ipv6(server: ServerFactory, socks_proxy: RunningProxy) -> None:
    """SOCKS4 has no IPv6 address type: ws://[::1]/ through socks4:// fails with a
    ProxyError that says so, before anything is sent."""
    with pytest.raises(syncws.ProxyError, match="IPv6"):
        syncws.connect(uri(server(host="::1")), proxy=socks_proxy.url("socks4"))


@ipv6
def test_trickling_proxy_on_ipv6() -> None:
    """open_timeout bounds a proxy on ::1 as well; the error names it with brackets."""
    proxy = TricklingProxy("socks5", 0.05, endless=True, host="::1")
    try:
        with pytest.raises(TimeoutError, match=rf"proxy \[::1\]:{proxy.port}"):
            syncws.connect("ws://[::1]:9/", proxy=proxy.url, open_timeout=OPEN_TIMEOUT)
    finally:
        proxy.close()


def test_socks_with_python_socks_2_names_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """python-socks 2.x has no forward=, which syncws needs to bound the SOCKS exchange by
    open_timeout: an ImportError that says which version to install, before connecting."""
    import python_socks

    monkeypatch.setattr(python_socks, "__version__", "2.8.1")
    with pytest.raises(ImportError, match=r"python-socks 3\.0 or later"):
        syncws.connect("ws://127.0.0.1:9/", proxy="socks5://127.0.0.1:1")


def test_proxy_from_the_environment(
    server: ServerFactory, http_proxy: RunningProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """proxy=True (the default) uses http_proxy for ws://; no_proxy bypasses it;
    proxy=None ignores the environment."""
    srv = server()
    monkeypatch.setenv("http_proxy", http_proxy.url())
    before = proxied_connections(http_proxy)
    with syncws.connect(uri(srv)) as ws:
        echo_once(ws)
    assert proxied_connections(http_proxy) == before + 1
    with syncws.connect(uri(srv), proxy=None) as ws:
        echo_once(ws)
    monkeypatch.setenv("no_proxy", f"127.0.0.1:{srv.port}")
    with syncws.connect(uri(srv)) as ws:
        echo_once(ws)
    assert proxied_connections(http_proxy) == before + 1


def test_no_proxy_with_an_ipv6_address(
    server: ServerFactory, proxies6: tuple[RunningProxy, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """no_proxy=::1, the way curl spells it, sends ws://[::1]:port/ directly; without it,
    the environment's proxy (itself on ::1) is used."""
    http_proxy6 = proxies6[0]
    srv = server(host="::1")
    monkeypatch.setenv("http_proxy", http_proxy6.url())
    before = proxied_connections(http_proxy6)
    with syncws.connect(uri(srv)) as ws:
        echo_once(ws)
    assert proxied_connections(http_proxy6) == before + 1
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1,::1")
    with syncws.connect(uri(srv)) as ws:
        echo_once(ws)
    assert proxied_connections(http_proxy6) == before + 1


def test_unix_path_never_uses_a_proxy(
    server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Unix socket connection ignores the environment's proxy."""
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    path = tmp_path / "ws.sock"
    server(unix_path=str(path))
    with syncws.connect("ws://localhost/", unix_path=path) as ws:
        echo_once(ws)


def test_proxy_credentials_stay_out_of_logs(
    server: ServerFactory, auth_proxy: RunningProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither the password nor the Basic token of a proxy appear in log lines."""
    caplog.set_level(logging.DEBUG, logger="syncws")
    with syncws.connect(uri(server()), proxy=auth_proxy.url(user_info="alice:s3cret")) as ws:
        echo_once(ws)
    with pytest.raises(syncws.InvalidProxyStatus) as exc_info:
        syncws.connect(uri(server()), proxy=auth_proxy.url(user_info="alice:wrongpw"))
    text = caplog.text + str(exc_info.value)
    assert "s3cret" not in text and "wrongpw" not in text and "YWxpY2" not in text


@pytest.mark.parametrize(
    ("env", "target", "expected"),
    [
        ({"https_proxy": "http://p:3128"}, "wss://ex.org/", "http://p:3128"),
        ({"https_proxy": "http://p:3128"}, "ws://ex.org/", None),
        ({"http_proxy": "http://p:3128"}, "ws://ex.org/", "http://p:3128"),
        ({"HTTPS_PROXY": "http://p:1"}, "wss://example.com/", "http://p:1"),
        ({"all_proxy": "socks5://s:1080"}, "ws://example.com/", "socks5://s:1080"),
        ({"socks_proxy": "s:1080"}, "wss://example.com/", "socks5h://s:1080"),
        ({"http_proxy": "http://p:1", "no_proxy": "ex.org"}, "ws://ex.org/", None),
        ({"http_proxy": "http://p:1", "no_proxy": "ex.org"}, "ws://www.ex.org/", None),
        ({"http_proxy": "http://p:1", "no_proxy": ".ex.org"}, "ws://a.ex.org/", None),
        ({"http_proxy": "http://p:1", "no_proxy": "other.org"}, "ws://a.ex.org/", "http://p:1"),
        ({"http_proxy": "http://p:1", "no_proxy": "ex.org:8080"}, "ws://ex.org:8080/", None),
        ({"http_proxy": "http://p:1", "no_proxy": "ex.org:8080"}, "ws://ex.org/", "http://p:1"),
        ({"http_proxy": "http://p:1", "no_proxy": "*"}, "ws://ex.org/", None),
        ({"http_proxy": "http://p:1", "no_proxy": "::1"}, "ws://[::1]:8080/", None),
        ({"http_proxy": "http://p:1", "no_proxy": "a, ::1 ,b"}, "ws://[::1]/", None),
        ({"http_proxy": "http://p:1", "no_proxy": "[::1]"}, "ws://[::1]:8080/", None),
        ({"http_proxy": "http://p:1", "no_proxy": "[::1]:8080"}, "ws://[::1]:8080/", None),
        ({"http_proxy": "http://p:1", "no_proxy": "[::1]:8080"}, "ws://[::1]:9/", "http://p:1"),
        ({"http_proxy": "http://p:1", "no_proxy": "0:0::1"}, "ws://[::1]/", None),
        ({"http_proxy": "http://p:1", "no_proxy": "::1"}, "ws://[0:0::1]/", None),
        ({"http_proxy": "http://p:1", "no_proxy": "fe80::1"}, "ws://[fe80::2]/", "http://p:1"),
        ({"http_proxy": "http://p:1", "no_proxy": "::1"}, "ws://127.0.0.1/", "http://p:1"),
        ({"http_proxy": "http://p:1", "no_proxy": "::1:80"}, "ws://[::1]/", "http://p:1"),
    ],
)  # fmt: skip
def test_get_proxy_reads_the_environment_as_urllib(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], target: str, expected: str | None
) -> None:
    """https_proxy for wss://, http_proxy for ws://, then all_proxy, socks_proxy; no_proxy
    with domain suffixes and ports, and IPv6 addresses bare or in brackets (as curl)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert get_proxy(parse_uri(target)) == expected


def test_parse_proxy() -> None:
    """Schemes, default ports, credentials (decoded), and errors without credentials."""
    assert parse_proxy("proxy:3128") == parse_proxy("http://proxy:3128")
    proxy = parse_proxy("socks5h://u%40x:p%3Aw@[::1]")
    assert (proxy.scheme, proxy.host, proxy.port, proxy.user_info) == (
        "socks5h",
        "::1",
        1080,
        ("u@x", "p:w"),
    )
    assert proxy.address == "[::1]:1080"
    with pytest.raises(ValueError, match="unsupported proxy scheme"):
        parse_proxy("ftp://user:topsecret@p")
    with pytest.raises(ValueError, match="invalid proxy URL") as exc_info:
        parse_proxy("http://user:topsecret@p:99999")
    assert "topsecret" not in str(exc_info.value)
    with pytest.raises(ValueError, match="without a host"):
        parse_proxy("http://:80")


def test_invalid_proxy_options() -> None:
    """A bad proxy URL fails before connecting; proxy_ssl is for https:// proxies."""
    with pytest.raises(ValueError):
        syncws.connect("ws://127.0.0.1:9/", proxy="gopher://p:1")
    with pytest.raises(ValueError, match="https:// proxies"):
        syncws.connect(
            "ws://127.0.0.1:9/",
            proxy="http://127.0.0.1:9",
            proxy_ssl=ssl.create_default_context(),
        )
