"""The demo server (``python -m syncws serve``): its page, echo and chat endpoints, CLI."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import program
from timing import TIMEOUT

import syncws
from syncws.cli import demo

ServerFactory = Callable[..., syncws.Server]
UriFactory = Callable[..., str]

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
#: Seconds a ``syncws`` program may take to start, to answer or to stop.
PROGRAM_TIMEOUT = 4 * TIMEOUT


def demo_server(server: ServerFactory) -> syncws.Server:
    """The demo server, on a free port."""
    return server(demo.handler, process_request=demo.process_request)


def get(srv: syncws.Server, path: str) -> tuple[int, str | None, bytes]:
    """A plain HTTP GET, as a browser would send it: status, content type, body."""
    assert srv.port is not None
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=TIMEOUT)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


def test_page_is_served_as_html(server: ServerFactory) -> None:
    """GET / without Upgrade returns the self-contained HTML page."""
    status, content_type, body = get(demo_server(server), "/")
    assert status == 200
    assert content_type == "text/html; charset=utf-8"
    assert body == demo.PAGE.encode()
    assert b"new WebSocket(" in body
    assert b"src=" not in body and b"href=" not in body  # nothing loaded from elsewhere


def test_other_plain_http_paths_get_404(server: ServerFactory) -> None:
    """Plain HTTP elsewhere (a browser's /favicon.ico) is a 404; /chat asks for an upgrade."""
    srv = demo_server(server)
    assert get(srv, "/favicon.ico")[0] == 404
    assert get(srv, "/chat")[0] == 426


def test_websocket_endpoint_echoes(server: ServerFactory, uri: UriFactory) -> None:
    """The WebSocket endpoint at / sends every message back, text and binary."""
    with syncws.connect(uri(demo_server(server))) as ws:
        ws.send("Hello")
        assert ws.recv(timeout=TIMEOUT) == "Hello"
        ws.send(b"\x00\x01")
        assert ws.recv(timeout=TIMEOUT) == b"\x00\x01"


def test_chat_broadcasts_to_everyone_on_chat(server: ServerFactory, uri: UriFactory) -> None:
    """A message sent to /chat reaches every /chat client, prefixed with the sender."""
    srv = demo_server(server)
    with (
        syncws.connect(uri(srv, "/chat")) as alice,
        syncws.connect(uri(srv, "/chat")) as bob,
        syncws.connect(uri(srv)) as echo_client,
    ):
        # A connection joins the room once its handler runs: a round trip proves it.
        alice.send("alice here")
        recv_until(alice, ": alice here")
        bob.send("bob here")
        # Bob was in the room when Alice spoke, so he gets both, in either order: Alice's
        # handler may still be broadcasting to him when Bob's handler broadcasts.
        recv_all(bob, [": alice here", ": bob here"])
        recv_until(alice, ": bob here")
        alice.send("hi all")
        host, port = alice.local_address[:2]
        assert alice.recv(timeout=TIMEOUT) == f"{host}:{port}: hi all"
        assert bob.recv(timeout=TIMEOUT) == f"{host}:{port}: hi all"
        echo_client.send("ping")
        assert echo_client.recv(timeout=TIMEOUT) == "ping"  # not in the room: nothing else


def recv_all(ws: syncws.ClientConnection, suffixes: list[str]) -> None:
    """Receive one message ending with each of ``suffixes``, in any order (TIMEOUT per message)."""
    missing = list(suffixes)
    while missing:
        message = ws.recv(timeout=TIMEOUT)
        assert isinstance(message, str)
        matches = [suffix for suffix in missing if message.endswith(suffix)]
        assert matches, f"unexpected message {message!r}, waiting for {missing}"
        missing.remove(matches[0])


def recv_until(ws: syncws.ClientConnection, suffix: str) -> None:
    """Receive until a message ending with ``suffix`` (bounded: TIMEOUT per message)."""
    for _ in range(10):
        message = ws.recv(timeout=TIMEOUT)
        if isinstance(message, str) and message.endswith(suffix):
            return
    raise AssertionError(f"no message ending with {suffix!r}")


def test_serve_command_serves_and_stops_on_ctrl_c() -> None:
    """``python -m syncws serve`` logs its URL, echoes, and shuts down on SIGINT (exit 0)."""
    with program(["-m", "syncws", "serve", "--host", "127.0.0.1", "--port", "0"]) as running:
        line = running.line(PROGRAM_TIMEOUT)
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        with syncws.connect(f"ws://127.0.0.1:{match[1]}/") as ws:
            ws.send("echo?")
            assert ws.recv(timeout=TIMEOUT) == "echo?"
            running.proc.send_signal(signal.SIGINT)
            with pytest.raises(syncws.ConnectionClosedOK):
                ws.recv(timeout=TIMEOUT)
        assert ws.close_code == 1001
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0
        log = running.rest(PROGRAM_TIMEOUT)
        assert "connection open from" in log
        assert "Traceback" not in log


@pytest.mark.parametrize(
    "args",
    [["--tls-cert", "cert.pem"], ["--tls-key", "key.pem"], ["--port", "70000"]],
)
def test_serve_usage_errors_exit_2(args: list[str]) -> None:
    """--tls-cert and --tls-key go together; the port must be valid."""
    result = subprocess.run(
        [sys.executable, "-m", "syncws", "serve", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=PROGRAM_TIMEOUT,
    )
    assert result.returncode == 2
    assert "syncws serve: error:" in result.stderr


def test_serve_reports_a_missing_certificate(tmp_path: Path) -> None:
    """An unreadable certificate is one line of error and exit status 1."""
    missing = str(tmp_path / "missing.pem")
    result = subprocess.run(
        [sys.executable, "-m", "syncws", "serve", "--tls-cert", missing, "--tls-key", missing],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=PROGRAM_TIMEOUT,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Cannot load the TLS certificate and key:")
    assert result.stderr.count("\n") == 1
