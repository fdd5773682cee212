"""Real WSGI servers for the integration tests: Werkzeug's threaded server in a thread,
gunicorn's gthread worker in a subprocess. Loopback only, free ports, bounded waits."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from timing import TIMEOUT
from werkzeug.serving import make_server

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

#: Seconds to wait for a subprocess to start listening, or to exit.
PROCESS_TIMEOUT = 3 * TIMEOUT


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[Any] | None = None) -> None:
    """Wait until something accepts connections on ``port`` (bounded)."""
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # polling a port: there is no event to wait for
    raise TimeoutError(f"nothing listens on port {port}")


@contextmanager
def werkzeug_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with Werkzeug's threaded dev server; yield ``host:port``."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


class Process:
    """A server subprocess and its captured output."""

    def __init__(self, args: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the context manager
        environ = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]))
        environ.update(env or {})
        self.process = subprocess.Popen(
            args,
            cwd=TESTS,
            env=environ,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, signum: int = 15) -> int:
        """Signal the process group, wait (bounded), kill if needed; return the exit code."""
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass
        try:
            return self.process.wait(PROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            return self.process.wait(PROCESS_TIMEOUT)


def gunicorn_options() -> list[str]:
    """Options isolating a test gunicorn: no control socket (shared across instances in
    ~/.gunicorn since gunicorn 24) where the version has one."""
    from gunicorn.config import KNOWN_SETTINGS

    names = {setting.name for setting in KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in names else []


@contextmanager
def gunicorn_server(app: str, *extra: str, env: dict[str, str] | None = None) -> Iterator[Process]:
    """Serve ``module:app`` with gunicorn's gthread worker (one worker), with ``env`` added
    to the environment; yield the process."""
    port = free_port()
    args = [
        sys.executable, "-m", "gunicorn",
        "-k", "gthread", "--threads", "16", "-w", "1",
        "-b", f"127.0.0.1:{port}", "--log-level", "debug", "--graceful-timeout", "3",
        "--access-logfile", "-",
        *gunicorn_options(), *extra, app,
    ]  # fmt: skip
    server = Process(args, port, env)
    try:
        wait_listening(port, server.process)
        yield server
    finally:
        server.stop()
        server.log.close()
