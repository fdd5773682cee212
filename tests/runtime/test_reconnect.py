"""syncws.reconnect(): a real server process stopped and started again on the same port,
directly and through a real proxy (tinyproxy); failures sorted into transient and fatal."""

from __future__ import annotations

import contextlib
import itertools
import logging
import signal
import ssl
import threading
import time
from pathlib import Path

import pytest
from conftest import ServerFactory, program, tls_contexts, uri
from proxy_servers import tinyproxy
from server_process import ServerProcess
from timing import TIMEOUT as UNIT
from wsgi_servers import free_port

import syncws
from syncws.protocol.http11 import Headers, Response
from syncws.runtime.reconnect import backoff, process_exception

TIMEOUT = 2 * UNIT  # reconnection takes a few attempts
#: Short delays, and a bounded number of them: a test that cannot reconnect ends.
DELAYS = [0.05] * 200


def test_reconnects_after_the_server_restarts(
    server_process: ServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """The server process stops (clients get 1001), is down for a while, and comes back:
    the loop yields a new connection; the previous one is closed; retries are logged."""
    caplog.set_level(logging.INFO, logger="syncws.client")
    server_process.start()
    target = f"ws://127.0.0.1:{server_process.port}/?token=abc"
    connections = syncws.reconnect(target, reconnect_delays=DELAYS, open_timeout=TIMEOUT)
    first = next(connections)
    first.send("one")
    assert first.recv(timeout=TIMEOUT) == "one"
    server_process.stop()
    with pytest.raises(syncws.ConnectionClosedOK):
        first.recv(timeout=TIMEOUT)
    # The server comes back in 0.5 s; meanwhile the loop's attempts are refused.
    restart = threading.Timer(0.5, server_process.start)
    restart.start()
    second = next(connections)
    restart.join(TIMEOUT)
    assert first.state is syncws.State.CLOSED
    second.send("two")
    assert second.recv(timeout=TIMEOUT) == "two"
    connections.close()  # what a break out of the for loop does
    assert second.state is syncws.State.CLOSED
    lines = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(lines) >= 2
    assert "retrying in 0.05 s" in lines[0]
    assert "ConnectionRefusedError" in lines[0]
    assert "abc" not in caplog.text


def test_reconnects_through_a_proxy(server_process: ServerProcess, tmp_path: Path) -> None:
    """Through tinyproxy, a server that is down is a 5xx from the proxy: transient."""
    with tinyproxy(tmp_path) as proxy:
        server_process.start()
        target = f"ws://127.0.0.1:{server_process.port}/"
        # closing(): the break closes the generator, hence the connection, at once.
        with contextlib.closing(
            syncws.reconnect(target, proxy=proxy.url(), reconnect_delays=DELAYS)
        ) as connections:
            for count, ws in enumerate(connections):
                ws.send("ping")
                assert ws.recv(timeout=TIMEOUT) == "ping"
                if count == 1:
                    break
                server_process.stop()
                with pytest.raises(syncws.ConnectionClosed):
                    ws.recv(timeout=TIMEOUT)
                with pytest.raises(syncws.InvalidProxyStatus) as exc_info:
                    syncws.connect(target, proxy=proxy.url())
                assert 500 <= exc_info.value.response.status_code <= 599
                server_process.start()
        assert ws.state is syncws.State.CLOSED


def test_reconnects_with_unix_path(server: ServerFactory, tmp_path: Path) -> None:
    """A Unix socket server shut down and started again at the same path."""
    path = str(tmp_path / "ws.sock")
    srv = server(unix_path=path)
    connections = syncws.reconnect("ws://localhost/", unix_path=path, reconnect_delays=DELAYS)
    for count, ws in enumerate(itertools.islice(connections, 3)):
        ws.send(str(count))
        assert ws.recv(timeout=TIMEOUT) == str(count)
        srv.shutdown(timeout=TIMEOUT)
        srv = server(unix_path=path)
    connections.close()


def test_transient_http_5xx_then_success(server: ServerFactory) -> None:
    """HTTP 503 twice, then an accepted handshake: retried, then yielded."""
    answers = [503, 503]

    def process_request(ws: syncws.ServerConnection, request: object) -> Response | None:
        return ws.respond(answers.pop(), "busy\n") if answers else None

    srv = server(process_request=process_request)
    connections = syncws.reconnect(uri(srv), reconnect_delays=DELAYS)
    ws = next(connections)
    assert answers == []
    connections.close()
    assert ws.state is syncws.State.CLOSED


@pytest.mark.parametrize("status", [401, 403, 404])
def test_http_4xx_is_fatal(server: ServerFactory, status: int) -> None:
    """HTTP 4xx is raised out of the loop at the first attempt."""
    attempts = []

    def process_request(ws: syncws.ServerConnection, request: object) -> Response:
        attempts.append(request)
        return ws.respond(status, "no\n")

    srv = server(process_request=process_request)
    with pytest.raises(syncws.InvalidStatus) as exc_info:
        next(syncws.reconnect(uri(srv), reconnect_delays=DELAYS))
    assert exc_info.value.response.status_code == status
    assert len(attempts) == 1


def test_invalid_uri_and_certificate_failure_are_fatal(server: ServerFactory) -> None:
    """An invalid URI and a certificate that fails verification end the loop at once."""
    with pytest.raises(syncws.InvalidURI):
        next(syncws.reconnect("http://example.com/"))
    server_ctx, _ = tls_contexts()
    srv = server(ssl=server_ctx)
    start = time.monotonic()
    with pytest.raises(ssl.SSLCertVerificationError):
        next(syncws.reconnect(f"wss://127.0.0.1:{srv.port}/", reconnect_delays=[5.0]))
    assert time.monotonic() - start < 4


def test_a_refused_client_certificate_is_fatal(server: ServerFactory) -> None:
    """A server's TLS alert that it requires a client certificate (or refuses the one
    given) ends the loop at once: retrying cannot fix it."""
    server_ctx, client_ctx = tls_contexts()
    server_ctx.verify_mode = ssl.CERT_REQUIRED  # and trusts no CA: every client is refused
    srv = server(ssl=server_ctx)
    start = time.monotonic()
    with pytest.raises(ssl.SSLError) as exc_info:
        next(
            syncws.reconnect(f"wss://localhost:{srv.port}/", ssl=client_ctx, reconnect_delays=[5.0])
        )
    assert exc_info.value.reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    assert time.monotonic() - start < 4


def test_delays_running_out_raise_the_last_failure() -> None:
    """A finite reconnect_delays: once used up, the last failure is raised."""
    port = free_port()
    start = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        next(syncws.reconnect(f"ws://127.0.0.1:{port}/", reconnect_delays=[0.01, 0.01]))
    assert time.monotonic() - start < TIMEOUT


def test_custom_process_exception(server: ServerFactory) -> None:
    """process_exception decides: here 403 is retried, and its replacement raised."""
    answers = [403]

    def process_request(ws: syncws.ServerConnection, request: object) -> Response | None:
        return ws.respond(answers.pop(), "") if answers else None

    def retry_everything(exc: Exception) -> Exception | None:
        return None

    srv = server(process_request=process_request)
    connections = syncws.reconnect(
        uri(srv), process_exception=retry_everything, reconnect_delays=DELAYS
    )
    next(connections)
    connections.close()

    def replace(exc: Exception) -> Exception | None:
        return RuntimeError("give up")

    with pytest.raises(RuntimeError, match="give up") as exc_info:
        next(syncws.reconnect(f"ws://127.0.0.1:{free_port()}/", process_exception=replace))
    assert isinstance(exc_info.value.__cause__, ConnectionRefusedError)


def test_ctrl_c_during_backoff_exits_at_once() -> None:
    """SIGINT while the loop sleeps 30 s before retrying: KeyboardInterrupt at once."""
    code = f"""
import logging, syncws
logging.basicConfig(level=logging.INFO)
for ws in syncws.reconnect("ws://127.0.0.1:{free_port()}/", reconnect_delays=[30.0]):
    pass
"""
    with program(["-c", code]) as running:
        deadline = time.monotonic() + TIMEOUT
        while "retrying in 30.00 s" not in running.line(deadline - time.monotonic()):
            pass
        start = time.monotonic()
        running.proc.send_signal(signal.SIGINT)
        running.proc.wait(TIMEOUT)
        assert time.monotonic() - start < 3
        assert "KeyboardInterrupt" in running.rest(TIMEOUT)


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    """The first delay is within [0, initial]; then bounds grow by the factor, each delay
    within [bound / 2, bound], capped at max_delay."""
    delays = list(itertools.islice(backoff(1.0, 2.0, 60.0), 20))
    assert 0 <= delays[0] <= 1.0
    for n, delay in enumerate(delays[1:], start=1):
        bound = min(2.0**n, 60.0)
        assert bound / 2 <= delay <= bound
    assert max(delays) <= 60.0


def test_default_process_exception() -> None:
    """What the default policy retries and what it raises."""

    def status(code: int) -> syncws.InvalidStatus:
        return syncws.InvalidStatus(Response(code, "", Headers()))

    for transient in [
        ConnectionRefusedError(),
        TimeoutError(),
        OSError(),
        status(500),
        status(503),
        syncws.InvalidMessage("connection closed during the opening handshake"),
        syncws.InvalidProxyStatus(Response(502, "Bad Gateway", Headers())),
    ]:
        assert process_exception(transient) is None, transient
    for fatal in [
        status(400),
        status(404),
        syncws.InvalidURI("x", "y"),
        ssl.SSLCertVerificationError(),
        syncws.InvalidProxyStatus(Response(407, "", Headers())),
        syncws.ProxyError("refused"),
        syncws.TooManyRedirects(Response(302, "", Headers()), 10),
        syncws.NegotiationError("no"),
        ValueError("bug"),
    ]:
        assert process_exception(fatal) is fatal, fatal


class _SocksReply(Exception):
    """What python-socks raises for a SOCKS reply: its ``error_code``."""

    def __init__(self, error_code: int) -> None:
        super().__init__(f"SOCKS reply {error_code}")
        self.error_code = error_code


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        # The server behind a SOCKS proxy is down or unreachable (refused, host or network
        # unreachable, general failure, TTL expired; SOCKS4: rejected), as a 502 is.
        (syncws.InvalidProxyMessage("the proxy closed the connection"), True),
        (syncws.ProxyError("SOCKS refused"), False),
    ],
)
def test_process_exception_for_proxy_failures(exc: Exception, transient: bool) -> None:
    """A proxy that closes before answering (restarting) is transient, as the same from the
    server is; a proxy error that says nothing of the server is fatal (a review found the
    first fatal, which ended reconnect() through any proxy restart)."""
    assert (process_exception(exc) is None) is transient


@pytest.mark.parametrize(
    ("code", "transient"),
    [(1, True), (3, True), (4, True), (5, True), (6, True), (0x5B, True), (2, False), (7, False)],
)
def test_process_exception_for_socks_replies(code: int, transient: bool) -> None:
    """SOCKS replies that say the server is unreachable are transient, as a proxy's 502 is;
    'not allowed by the ruleset' (2) or 'command not supported' (7) are fatal."""
    exc = syncws.ProxyError(f"SOCKS reply {code}")
    exc.__cause__ = _SocksReply(code)
    assert (process_exception(exc) is None) is transient


def test_connections_that_end_at_once_do_not_restart_the_delays(server: ServerFactory) -> None:
    """A server that accepts each connection and drops it at once gets the delays of a
    failing one: with three delays, four connections, then the loop ends (a review saw a
    reconnection a second forever, the delays starting over at each opening)."""
    srv = server(lambda ws: None)  # the handler returns: closed at once
    opened = 0
    for ws in syncws.reconnect(uri(srv), reconnect_delays=[0.01] * 3):
        opened += 1
        with contextlib.suppress(syncws.ConnectionClosed):
            ws.recv(timeout=TIMEOUT)
        if opened > 10:
            break
    assert opened == 4
