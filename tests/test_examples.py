"""Examples that run as programs of their own: examples/multicore_server.py, examples/router.py,
examples/reconnecting_client.py."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import program
from wsgi_servers import free_port

import syncws

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 20


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="platform has no SO_REUSEPORT")
def test_multicore_server_runs_processes_on_one_port_and_stops_on_sigterm() -> None:
    """Two worker processes listen on the same port, both serve, and SIGTERM to the parent
    stops them gracefully (clients see 1001, every process exits with 0)."""
    port = free_port()
    with program([str(EXAMPLES / "multicore_server.py"), str(port), "2"]) as running:
        workers = set()
        deadline = time.monotonic() + TIMEOUT
        while len(workers) < 2:
            line = running.line(deadline - time.monotonic())
            match = re.match(rf"(\d+) server listening on ws://[^ ]*:{port}/$", line)
            if match:
                workers.add(match[1])
        clients = [syncws.connect(f"ws://127.0.0.1:{port}/") for _ in range(8)]
        for i, ws in enumerate(clients):
            ws.send(f"hello {i}")
            assert ws.recv(timeout=5) == f"hello {i}"
        running.proc.send_signal(signal.SIGTERM)
        for ws in clients:
            with pytest.raises(syncws.ConnectionClosedOK):
                ws.recv(timeout=5)
            assert ws.close_code == 1001
        assert running.proc.wait(TIMEOUT) == 0
        assert "Traceback" not in running.rest(TIMEOUT)


def test_router_dispatches_by_path_and_stops_on_ctrl_c() -> None:
    """examples/router.py: /echo echoes, /chat/<room> broadcasts within its room only, any
    other path gets 404, and SIGINT stops it (clients see 1001, exit status 0)."""
    port = free_port()
    with program([str(EXAMPLES / "router.py"), str(port)]) as running:
        deadline = time.monotonic() + TIMEOUT
        while "server listening on" not in running.line(deadline - time.monotonic()):
            pass
        base = f"ws://127.0.0.1:{port}"
        with syncws.connect(f"{base}/echo") as ws:
            ws.send("hi")
            assert ws.recv(timeout=5) == "hi"
        with pytest.raises(syncws.InvalidStatus) as info:
            syncws.connect(f"{base}/nowhere")
        assert info.value.response.status_code == 404
        alice = syncws.connect(f"{base}/chat/lobby")
        bob = syncws.connect(f"{base}/chat/lobby")
        eve = syncws.connect(f"{base}/chat/other")
        time.sleep(0.2)  # until their handlers run and join the rooms
        alice.send("hello")
        assert bob.recv(timeout=5) == "lobby: hello"
        assert alice.recv(timeout=5) == "lobby: hello"
        with pytest.raises(TimeoutError):
            eve.recv(timeout=0.3)
        running.proc.send_signal(signal.SIGINT)
        for ws in (alice, bob, eve):
            with pytest.raises(syncws.ConnectionClosedOK):
                ws.recv(timeout=5)
            assert ws.close_code == 1001
        assert running.proc.wait(TIMEOUT) == 0
        assert "Traceback" not in running.rest(TIMEOUT)


def test_reconnecting_client_reconnects_after_a_server_restart() -> None:
    """examples/reconnecting_client.py: connected, sees the server go away (1001), and is
    connected again once a server is back on the port; Ctrl-C ends it."""
    port = free_port()
    target = f"ws://127.0.0.1:{port}/"
    with syncws.Server(echo_server, "127.0.0.1", port) as srv:
        srv.start()
        with subprocess.Popen(
            [sys.executable, str(EXAMPLES / "reconnecting_client.py"), target],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as client:
            try:
                assert client.stdout is not None
                assert client.stdout.readline() == f"Connected to {target}.\n"
                assert client.stdout.readline() == "< hello\n"
                srv.shutdown(timeout=TIMEOUT)
                assert client.stdout.readline() == "Connection closed: 1001.\n"
                with syncws.Server(echo_server, "127.0.0.1", port) as again:
                    again.start()
                    assert client.stdout.readline() == f"Connected to {target}.\n"
                    assert client.stdout.readline() == "< hello\n"
                    client.send_signal(signal.SIGINT)
                    assert client.wait(TIMEOUT) == 0
            finally:
                if client.poll() is None:
                    client.kill()


def echo_server(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)
