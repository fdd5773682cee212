"""A syncws server in a process of its own, on a fixed port, that tests stop and start
again (reconnection tests: the client must see a real server go away and come back)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from timing import TIMEOUT
from wsgi_servers import free_port, wait_listening

#: Seconds a server process has to exit.
EXIT_TIMEOUT = 2 * TIMEOUT

SERVER = """
import sys, syncws
def echo(ws):
    for message in ws:
        ws.send(message)
syncws.serve(echo, "127.0.0.1", int(sys.argv[1]))
"""


class ServerProcess:
    """``syncws.serve`` in a subprocess on a fixed port, which tests stop and start."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(self.port)],
            cwd=Path(__file__).resolve().parent.parent,
        )
        wait_listening(self.port, self.proc)

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)  # graceful: clients get 1001
        assert self.proc.wait(EXIT_TIMEOUT) == 0
        self.proc = None


@pytest.fixture
def server_process() -> Iterator[ServerProcess]:
    running = ServerProcess(free_port())
    try:
        yield running
    finally:
        if running.proc is not None:
            running.proc.kill()
            running.proc.wait(EXIT_TIMEOUT)
