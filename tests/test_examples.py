"""Examples that run as programs of their own: examples/multicore_server.py."""

from __future__ import annotations

import re
import signal
import socket
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
