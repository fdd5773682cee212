"""Real proxies for the client's tests: tinyproxy (HTTP CONNECT, with or without Basic
auth) and dante (``danted``, SOCKS5), the Debian packages ``tinyproxy`` and
``dante-server``.

Each starts on a free loopback port with a configuration file written to a temporary
directory (never the system's), and is stopped at teardown. Without the binary a test
skips with a message naming the package, except under ``CI=true``, where it fails: CI
installs both (``.ci/run``), and a skip there would hide the tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from wsgi_servers import free_port

#: Seconds a proxy has to start listening, and to exit once told to.
START_TIMEOUT = 10

TINYPROXY = os.environ.get("SYNCWS_TINYPROXY", "/usr/bin/tinyproxy")
DANTED = os.environ.get("SYNCWS_DANTED", "/usr/sbin/danted")


@dataclass
class RunningProxy:
    """A proxy process listening on 127.0.0.1:``port``."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, scheme: str = "http", user_info: str = "") -> str:
        at = f"{user_info}@" if user_info else ""
        return f"{scheme}://{at}127.0.0.1:{self.port}"


def require(binary: str, package: str) -> str:
    """``binary``'s path; skip (fail under CI=true) when it is not installed."""
    path = binary if os.access(binary, os.X_OK) else shutil.which(os.path.basename(binary))
    if path:
        return path
    message = f"{binary} not found: apt-get install {package}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI must run the proxy tests)")
    pytest.skip(message)


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"proxy exited with {process.returncode}: {text[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"proxy not listening on port {port} after {START_TIMEOUT} s")


@contextlib.contextmanager
def _run(args: list[str], port: int, log: Path) -> Iterator[RunningProxy]:
    process = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        _wait_listening(port, process, log)
        yield RunningProxy(port, process, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(START_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(START_TIMEOUT)


@contextlib.contextmanager
def tinyproxy(directory: Path, basic_auth: tuple[str, str] | None = None) -> Iterator[RunningProxy]:
    """tinyproxy on a free port, allowing CONNECT to any port of 127.0.0.1, from it."""
    binary = require(TINYPROXY, "tinyproxy")
    port = free_port()
    log = directory / "tinyproxy.log"
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 30",
        "MaxClients 50",
        "Allow 127.0.0.1",
        "LogLevel Info",
        f'LogFile "{log}"',
        f'PidFile "{directory / "tinyproxy.pid"}"',
        # Only these destinations: anything else gets 403 (tests rely on it).
        f'Filter "{directory / "filter"}"',
        "FilterDefaultDeny Yes",
        "FilterType ere",
    ]
    (directory / "filter").write_text("^127\\.0\\.0\\.1$\n^localhost$\n")
    if basic_auth is not None:
        lines.append(f"BasicAuth {basic_auth[0]} {basic_auth[1]}")
    config = directory / "tinyproxy.conf"
    config.write_text("\n".join(lines) + "\n")
    with _run([binary, "-d", "-c", str(config)], port, log) as running:
        yield running


@contextlib.contextmanager
def dante(directory: Path) -> Iterator[RunningProxy]:
    """danted (SOCKS5, no authentication) on a free port, for 127.0.0.1 only."""
    binary = require(DANTED, "dante-server")
    port = free_port()
    log = directory / "danted.log"
    lines = [
        f"logoutput: {log}",
        f"internal: 127.0.0.1 port = {port}",
        "external: 127.0.0.1",
        "clientmethod: none",
        "socksmethod: none",
        # Settings before rules (dante's grammar); as root, it drops to nobody.
        *(["user.privileged: root", "user.unprivileged: nobody"] if os.geteuid() == 0 else []),
        "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }",
        "socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 }",
        "socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 }",
    ]
    config = directory / "danted.conf"
    config.write_text("\n".join(lines) + "\n")
    args = [binary, "-f", str(config), "-p", str(directory / "danted.pid"), "-N", "1"]
    with _run(args, port, log) as running:
        yield running


class TLSFront:
    """A TLS terminator in front of a proxy, on a free loopback port: an ``https://``
    proxy made of tinyproxy (the CONNECT logic) and this (TLS). One thread per client,
    bounded by the test's few connections; ``close()`` stops everything."""

    def __init__(self, context: ssl.SSLContext, backend_port: int) -> None:
        self._context = context
        self._backend = backend_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            tls = self._context.wrap_socket(client, server_side=True)
        except OSError:
            client.close()
            return
        backend = socket.create_connection(("127.0.0.1", self._backend))
        self._sockets += [tls, backend]

        def pump(source: socket.socket, sink: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        threading.Thread(target=pump, args=(backend, tls), daemon=True).start()
        pump(tls, backend)

    def close(self) -> None:
        self._closing.set()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(START_TIMEOUT)
