"""Real services for the integration tests: ``redis-server`` and ``nginx``, each started on
a free loopback port with its configuration in a temporary directory (never the system
configuration, the default ports or persistence).

Without the program, a test that needs it skips with a message naming the Debian package;
under ``CI=true`` it fails instead: CI must run every test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from timing import TIMEOUT

#: Seconds a service may take to accept connections.
START_TIMEOUT = 2 * TIMEOUT


def find_program(name: str, package: str) -> str:
    """The path of ``name`` (in ``PATH``, ``/usr/sbin`` or ``/usr/bin``); skip the test
    without it, or fail under ``CI=true``."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")
    if path is None:
        message = f"{name} is not installed: apt-get install {package}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 (the kernel's pick; nothing holds it afterwards)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = START_TIMEOUT) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on port {port} in time") from None
            time.sleep(0.02)


def stop(proc: subprocess.Popen[bytes], timeout: float = TIMEOUT) -> None:
    """Terminate ``proc``, then kill it if it has not exited within ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


class RedisServer:
    """A ``redis-server`` on 127.0.0.1, without persistence, that a test may restart (on
    the same port) or stop.

    ``args`` are more options for it. With ``tls`` (a ``trustme`` server certificate for
    ``localhost``, its chain and key in ``directory``), it serves TLS only, on
    :attr:`port`, and :attr:`url` is a ``rediss://`` URL.
    """

    def __init__(
        self, program: str, directory: Path, *args: str, tls: trustme.LeafCert | None = None
    ) -> None:
        self.program = program
        self.directory = directory
        self.port = free_port()
        self.args = list(args)
        if tls is None:
            self.args += ["--port", str(self.port)]
            self.url = f"redis://127.0.0.1:{self.port}/0"
        else:
            cert, key = directory / "redis-cert.pem", directory / "redis-key.pem"
            tls.cert_chain_pems[0].write_to_path(str(cert))
            tls.private_key_pem.write_to_path(str(key))
            self.args += [
                "--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no",
                "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            ]  # fmt: skip
            self.url = f"rediss://localhost:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            self.program,
            *self.args,
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            "--daemonize", "no",
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def running_redis(
    directory: Path, *args: str, tls: trustme.LeafCert | None = None
) -> Iterator[RedisServer]:
    """A started :class:`RedisServer` (see there for ``args`` and ``tls``), stopped at
    the end of the block."""
    program = find_program("redis-server", "redis-server")
    server = RedisServer(program, directory, *args, tls=tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running :class:`RedisServer`, stopped at teardown."""
    with running_redis(tmp_path) as server:
        yield server


@contextlib.contextmanager
def nginx(config: str, directory: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run nginx with ``config`` (the whole ``nginx.conf``) in the foreground, with
    ``directory`` as its prefix (pid file, logs, temporary files), until the block ends.
    ``port`` is the one the configuration listens on, to wait for."""
    program = find_program("nginx", "nginx-light")
    conf = directory / "nginx.conf"
    conf.write_text(config)
    proc = subprocess.Popen(
        [program, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log"),
         "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        try:
            wait_port(port, proc)
        except AssertionError:
            log = directory / "error.log"
            raise AssertionError(log.read_text() if log.exists() else "nginx failed") from None
        yield proc
    finally:
        stop(proc)
