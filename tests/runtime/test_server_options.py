"""Tests for Server and connect() options not covered elsewhere: pre-bound sockets,
SO_REUSEPORT, Basic auth, subprotocol selection, headers, SNI, and serve() signals."""

from __future__ import annotations

import base64
import logging
import os
import pathlib
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable

import pytest
from conftest import ServerFactory, echo, tls_contexts
from rawws import wait_for
from timing import TIMEOUT

import syncws

UriFactory = Callable[..., str]


def test_prebound_socket(server: ServerFactory) -> None:
    """A socket bound by the caller is used as is (e.g. handed over by a supervisor)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = server(sock=sock)
    assert srv.port == port
    with syncws.connect(f"ws://127.0.0.1:{port}/") as ws:
        ws.send("pre-bound")
        assert ws.recv(timeout=TIMEOUT) == "pre-bound"


def test_several_prebound_sockets(server: ServerFactory) -> None:
    """Several sockets bound by the caller (as a pre-fork parent binds every address of a
    host) are all served, and listed in ``sockets``."""
    sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    srv = server(sock=sockets)
    assert srv.sockets == sockets
    for sock in sockets:
        with syncws.connect(f"ws://127.0.0.1:{sock.getsockname()[1]}/") as ws:
            ws.send("either")
            assert ws.recv(timeout=TIMEOUT) == "either"


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="platform has no SO_REUSEPORT")
def test_reuse_port_lets_two_servers_share_a_port(server: ServerFactory) -> None:
    """With reuse_port, a second server binds the same port and both serve."""
    first = server(reuse_port=True)
    second = server(reuse_port=True, port=first.port)
    assert second.port == first.port
    for _ in range(4):
        with syncws.connect(f"ws://127.0.0.1:{first.port}/") as ws:
            ws.send("shared")
            assert ws.recv(timeout=TIMEOUT) == "shared"


def test_serve_forever_logs_where_it_listens(
    server: ServerFactory, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """serve_forever() logs its address at INFO: a ws:// or wss:// URI, or the socket path."""
    server_ctx, _ = tls_contexts()
    with caplog.at_level(logging.INFO, logger="syncws.server"):
        plain = server()
        secure = server(ssl=server_ctx, host="::1")
        server(unix_path=str(tmp_path / "s.sock"))
        expected = [
            f"server listening on ws://127.0.0.1:{plain.port}/",
            f"server listening on wss://[::1]:{secure.port}/",
            f"server listening on unix:{tmp_path / 's.sock'}",
        ]
        assert wait_for(lambda: all(line in caplog.messages for line in expected), TIMEOUT)


def test_basic_auth_accepts_and_rejects(server: ServerFactory, uri: UriFactory) -> None:
    """basic_auth() answers 401 with a challenge without credentials or with wrong ones,
    and sets ws.username for a valid user."""
    users: list[str | None] = []

    def handler(ws: syncws.ServerConnection) -> None:
        users.append(ws.username)
        echo(ws)

    srv = server(handler, process_request=syncws.basic_auth([("alice", "s3cret"), ("bob", "pw")]))
    for bad in (uri(srv), uri(srv).replace("ws://", "ws://alice:wrong@")):
        with pytest.raises(syncws.InvalidStatus) as info:
            syncws.connect(bad)
        assert info.value.response.status_code == 401
        assert info.value.response.headers["WWW-Authenticate"].startswith("Basic realm=")
    with syncws.connect(uri(srv).replace("ws://", "ws://alice:s3cret@")) as ws:
        ws.send("in")
        assert ws.recv(timeout=TIMEOUT) == "in"
    assert users == ["alice"]


def test_basic_auth_with_check_function(server: ServerFactory, uri: UriFactory) -> None:
    """basic_auth(check_credentials=...) delegates the decision."""
    srv = server(process_request=syncws.basic_auth(check_credentials=lambda u, p: p == u[::-1]))
    token = base64.b64encode(b"abc:cba").decode()
    with syncws.connect(uri(srv), additional_headers={"Authorization": f"Basic {token}"}) as ws:
        ws.send("ok")
        assert ws.recv(timeout=TIMEOUT) == "ok"
    with pytest.raises(TypeError):
        syncws.basic_auth()


def test_select_subprotocol_and_server_header(server: ServerFactory, uri: UriFactory) -> None:
    """select_subprotocol picks among the offers; server_header sets (or drops) Server."""
    srv = server(
        subprotocols=["chat.v1", "chat.v2"],
        select_subprotocol=lambda offered, available: max(set(offered) & set(available)),
        server_header="demo/1.0",
    )
    with syncws.connect(uri(srv), subprotocols=["chat.v1", "chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert ws.response is not None
        assert ws.response.headers["Server"] == "demo/1.0"
    quiet = server(server_header=None)
    with syncws.connect(uri(quiet)) as ws:
        assert ws.response is not None
        assert "Server" not in ws.response.headers


def test_client_request_headers(server: ServerFactory, uri: UriFactory) -> None:
    """additional_headers, origin and user_agent_header reach the server's request."""
    seen: list[syncws.Request] = []

    def handler(ws: syncws.ServerConnection) -> None:
        assert ws.request is not None
        seen.append(ws.request)

    srv = server(handler)
    with syncws.connect(
        uri(srv, "/path?q=1"),
        additional_headers=[("X-Trace", "a"), ("X-Trace", "b")],
        origin="https://app.example",
        user_agent_header="probe/2",
    ) as ws:
        ws.wait_closed(TIMEOUT)
    (request,) = seen
    assert request.path == "/path?q=1"
    assert request.headers.get_all("X-Trace") == ["a", "b"]
    assert request.headers["Origin"] == "https://app.example"
    assert request.headers["User-Agent"] == "probe/2"


def test_tls_server_hostname(server: ServerFactory) -> None:
    """server_hostname verifies the certificate against a name other than the URI's host."""
    server_ctx, client_ctx = tls_contexts("ws.internal")
    srv = server(ssl=server_ctx)
    with syncws.connect(
        f"wss://127.0.0.1:{srv.port}/", ssl=client_ctx, server_hostname="ws.internal"
    ) as ws:
        ws.send("sni")
        assert ws.recv(timeout=TIMEOUT) == "sni"
    with pytest.raises(ssl.SSLCertVerificationError):
        syncws.connect(f"wss://127.0.0.1:{srv.port}/", ssl=client_ctx)


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop


def test_serve_forever_runs_a_signal_handler_that_another_thread_received() -> None:
    """The kernel may hand a process-wide signal to any thread (forced here with
    pthread_kill): the handler still runs at once in the main thread, which serve_forever()
    then leaves with its exception, and the wake-up fd is given back."""
    srv = syncws.Server(echo, "127.0.0.1", 0)
    previous = signal.signal(signal.SIGUSR1, _raise_stop)
    # If the handler did not run, this ends serve_forever() after TIMEOUT anyway.
    watchdog = threading.Timer(TIMEOUT, srv.shutdown)

    def deliver() -> None:
        time.sleep(0.2)  # serve_forever() is waiting for connections by then
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)

    deliverer = threading.Thread(target=deliver)
    start = time.monotonic()
    try:
        watchdog.start()
        deliverer.start()
        with pytest.raises(_Stop):
            srv.serve_forever()
        elapsed = time.monotonic() - start
    finally:
        watchdog.cancel()
        deliverer.join()
        signal.signal(signal.SIGUSR1, previous)
        srv.shutdown()
    assert elapsed < TIMEOUT / 2
    assert signal.set_wakeup_fd(-1) == -1


def test_with_serve_as_in_websockets_says_to_use_server() -> None:
    """``with syncws.serve(...) as server:`` (websockets' idiom) serves until Ctrl-C, then
    raises a TypeError that says to use syncws.Server, not "'NoneType' object does not
    support the context manager protocol" (issue 19)."""
    script = textwrap.dedent(
        """
        import syncws
        server_socket = __import__("socket").create_server(("127.0.0.1", 0))
        print(server_socket.getsockname()[1], flush=True)
        with syncws.serve(lambda ws: None, sock=server_socket) as server:
            server.serve_forever()
        """
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        try:
            assert process.stdout is not None and process.stderr is not None
            port = int(process.stdout.readline())
            # It serves meanwhile: the handler returns, the connection closes with 1000.
            ws = syncws.connect(f"ws://127.0.0.1:{port}/")
            with ws, pytest.raises(syncws.ConnectionClosedOK):
                ws.recv(timeout=TIMEOUT)
            process.send_signal(signal.SIGINT)
            assert process.wait(TIMEOUT) == 1
            last = process.stderr.read().strip().splitlines()[-1]
            assert last.startswith("TypeError: syncws.serve() serves until the server stops")
            assert "use syncws.Server(handler, host, port, ...)" in last
        finally:
            process.kill()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_shuts_down_gracefully_on_signal(signum: signal.Signals) -> None:
    """serve() in a main thread turns SIGTERM/SIGINT into a graceful shutdown: clients get
    1001 and the process exits normally."""
    script = textwrap.dedent(
        """
        import sys, syncws
        def handler(ws):
            for message in ws:
                ws.send(message)
        server_socket = __import__("socket").create_server(("127.0.0.1", 0))
        print(server_socket.getsockname()[1], flush=True)
        syncws.serve(handler, sock=server_socket)
        print("returned", flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            assert process.stdout is not None
            port = int(process.stdout.readline())
            ws = syncws.connect(f"ws://127.0.0.1:{port}/")
            ws.send("before")
            assert ws.recv(timeout=TIMEOUT) == "before"
            process.send_signal(signum)
            with pytest.raises(syncws.ConnectionClosedOK) as info:
                ws.recv(timeout=TIMEOUT)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1001
            assert process.wait(TIMEOUT) == 0
            assert process.stdout.read().strip() == "returned"
        finally:
            process.kill()
