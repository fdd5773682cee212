"""Tests for ``python -m syncws run``: the worker runner, in real processes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from conftest import Program, ipv6_loopback, program
from rawws import wait_for
from timing import TIMEOUT

import syncws

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the runner forks")

ROOT = Path(__file__).resolve().parents[2]
#: Seconds the runner may take to start its workers, or to stop.
PROGRAM_TIMEOUT = 4 * TIMEOUT

APP = """\
import os

def handler(ws):
    if ws.request.path == "/pid":
        ws.send(str(os.getpid()))
    for message in ws:
        ws.send(message)

not_callable = 42
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A directory holding ``app.py`` (``app:handler`` echoes; ``/pid`` says its pid)."""
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "broken.py").write_text("import nowhere_to_be_found\n")
    (tmp_path / "dies.py").write_text(
        APP + "os.register_at_fork(after_in_child=lambda: os._exit(3))\n"
    )
    return tmp_path


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "syncws", "run", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=PROGRAM_TIMEOUT,
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nosuchmodule:handler", "cannot import module 'nosuchmodule': ModuleNotFoundError"),
        ("broken:handler", "cannot import module 'broken': ModuleNotFoundError"),
        ("app:missing", "module 'app' has no attribute 'missing'"),
        ("app:not_callable", "app:not_callable is not callable: int"),
        ("app", "expected MODULE:HANDLER, got 'app'"),
    ],
)
def test_import_errors_are_one_line_before_any_worker(
    app_dir: Path, target: str, message: str
) -> None:
    """A handler that cannot be loaded: one line naming what is wrong, exit status 2."""
    result = run([target, "--workers", "2", "--port", "0"], app_dir)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("syncws run: error: ")
    assert message in lines[0]


def test_port_taken(app_dir: Path) -> None:
    """A port that cannot be bound: one line, exit status 1, no worker started."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(["app:handler", "--workers", "2", "--port", str(port),
                      "--host", "127.0.0.1"], app_dir)  # fmt: skip
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "server listening" not in result.stderr


@contextlib.contextmanager
def started(args: list[str], cwd: Path) -> Iterator[tuple[Program, int, str]]:
    """``python ARGS`` (a runner with 2 workers); yields it, its port and host once both
    workers listen (the host as the runner logs it: without "(SO_REUSEPORT)" when the
    workers share sockets bound before forking)."""
    with program(args, cwd=cwd) as running:
        port = host = None
        listening = 0
        deadline = time.monotonic() + PROGRAM_TIMEOUT
        while listening < 2:
            line = running.line(deadline - time.monotonic())
            if match := re.search(r"starting 2 workers on (.+):(\d+)( \(SO_REUSEPORT\))?$", line):
                host, port = match[1] + (match[3] or ""), int(match[2])
            listening += "server listening on" in line
        assert port is not None and host is not None
        yield running, port, host


@pytest.fixture
def runner(app_dir: Path) -> Iterator[tuple[Program, int]]:
    """``syncws run app:handler --workers 2`` on a free port; yields it and the port once
    both workers listen."""
    args = ["-m", "syncws", "run", "app:handler", "--workers", "2", "--host", "127.0.0.1",
            "--port", "0", "--close-timeout", "2"]  # fmt: skip
    with started(args, app_dir) as (running, port, _):
        yield running, port


def pids(port: int, count: int, host: str = "127.0.0.1") -> set[str]:
    """The worker pids that answer ``count`` connections."""
    seen = set()
    address = f"[{host}]" if ":" in host else host
    for _ in range(count):
        with syncws.connect(f"ws://{address}:{port}/pid") as ws:
            seen.add(str(ws.recv(timeout=TIMEOUT)))
    return seen


# The runner, in a process where socket.SO_REUSEPORT is missing, as on a system without it.
WITHOUT_REUSEPORT = """\
import socket, sys
del socket.SO_REUSEPORT
from syncws.cli.run import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        pytest.param("::1", marks=pytest.mark.skipif(not ipv6_loopback(), reason="no ::1")),
    ],
)
def test_workers_share_sockets_bound_before_forking(app_dir: Path, host: str) -> None:
    """Without SO_REUSEPORT, the runner binds the port before forking (IPv6 too) and both
    workers accept on that socket; SIGTERM closes every client with 1001 and the runner
    exits with 0."""
    args = ["-c", WITHOUT_REUSEPORT, "app:handler", "--workers", "2", "--host", host,
            "--port", "0", "--close-timeout", "2"]  # fmt: skip
    with started(args, app_dir) as (running, port, logged):
        assert logged == host  # not "(SO_REUSEPORT)"
        # Both workers wait on the one socket; which accepts a connection is the kernel's
        # pick: ask until both answered (each time, about one chance in two).
        workers: set[str] = set()
        for _ in range(100):
            workers |= pids(port, 1, host)
            if len(workers) == 2:
                break
        assert len(workers) == 2
        assert str(running.proc.pid) not in workers
        address = f"[{host}]" if ":" in host else host
        clients = [syncws.connect(f"ws://{address}:{port}/") for _ in range(6)]
        for n, ws in enumerate(clients):
            ws.send(f"hello {n}")
            assert ws.recv(timeout=TIMEOUT) == f"hello {n}"
        assert "stopped" in running.stop_gracefully(clients, PROGRAM_TIMEOUT)


def test_workers_share_the_port_restart_and_stop_gracefully(
    runner: tuple[Program, int],
) -> None:
    """Two workers serve one port; a worker killed is restarted (one log line); SIGTERM
    closes every client with 1001 and the runner exits with 0."""
    running, port = runner
    workers = pids(port, 24)  # all 24 to one worker: 1 chance in 8 million
    assert len(workers) == 2
    assert str(running.proc.pid) not in workers
    victim = workers.pop()
    os.kill(int(victim), signal.SIGKILL)
    deadline = time.monotonic() + PROGRAM_TIMEOUT
    while "was killed" not in (line := running.line(deadline - time.monotonic())):
        pass
    assert f"worker {victim} was killed by SIGKILL" in line
    assert "restarting it in 0.1 s" in line
    assert wait_for(lambda: len(pids(port, 8) - workers - {victim}) == 1, PROGRAM_TIMEOUT)
    clients = [syncws.connect(f"ws://127.0.0.1:{port}/") for _ in range(6)]
    for n, ws in enumerate(clients):
        ws.send(f"hello {n}")
        assert ws.recv(timeout=TIMEOUT) == f"hello {n}"
    start = time.monotonic()
    assert "stopped" in running.stop_gracefully(clients, PROGRAM_TIMEOUT)
    assert time.monotonic() - start < 2 + 3  # close_timeout, and a margin


def test_workers_stop_when_the_parent_is_killed(runner: tuple[Program, int]) -> None:
    """Workers do not outlive a parent killed with SIGKILL: they stop, and free the port."""
    running, port = runner
    with syncws.connect(f"ws://127.0.0.1:{port}/") as ws:
        running.proc.kill()
        with pytest.raises(syncws.ConnectionClosedOK):
            ws.recv(timeout=PROGRAM_TIMEOUT)
        assert ws.close_code == 1001

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        return False

    assert wait_for(refused, PROGRAM_TIMEOUT)


def test_crash_loop_backs_off(app_dir: Path) -> None:
    """Workers that die at start are restarted after growing delays, not in a hot loop;
    SIGTERM still stops the runner with 0."""
    args = ["-m", "syncws", "run", "dies:handler", "--workers", "2", "--port", "0",
            "--host", "127.0.0.1"]  # fmt: skip
    with program(args, cwd=app_dir) as running:
        delays = []
        deadline = time.monotonic() + PROGRAM_TIMEOUT
        while len(delays) < 6:
            line = running.line(deadline - time.monotonic())
            match = re.search(
                r"exited with status 3 after [\d.]+ s; restarting it in ([\d.]+)", line
            )
            if match:
                delays.append(float(match[1]))
        assert delays == sorted(delays)
        assert delays[-1] >= 0.8
        running.proc.send_signal(signal.SIGTERM)
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0


def test_one_worker_runs_in_process(app_dir: Path) -> None:
    """--workers 1 (the default) serves in the runner's own process."""
    args = ["-m", "syncws", "run", "app:handler", "--host", "127.0.0.1", "--port", "0"]
    with program(args, cwd=app_dir) as running:
        deadline = time.monotonic() + PROGRAM_TIMEOUT
        while not (match := re.search(r"listening on ws://127\.0\.0\.1:(\d+)/",
                                      running.line(deadline - time.monotonic()))):  # fmt: skip
            pass
        port = int(match[1])
        assert pids(port, 2) == {str(running.proc.pid)}
        with syncws.connect(f"ws://127.0.0.1:{port}/") as ws:
            running.proc.send_signal(signal.SIGTERM)
            with pytest.raises(syncws.ConnectionClosedOK):
                ws.recv(timeout=PROGRAM_TIMEOUT)
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0


def test_unix_socket_shared_by_workers(app_dir: Path, tmp_path: Path) -> None:
    """With --unix-path, the parent binds the socket and the workers accept on it; the
    runner removes it when it stops."""
    path = tmp_path / "ws.sock"
    args = ["-m", "syncws", "run", "app:handler", "--workers", "2", "--unix-path", str(path)]
    with program(args, cwd=app_dir) as running:
        deadline = time.monotonic() + PROGRAM_TIMEOUT
        listening = 0
        while listening < 2:
            listening += "server listening on" in running.line(deadline - time.monotonic())
        for n in range(4):
            with syncws.connect("ws://localhost/", unix_path=str(path)) as ws:
                ws.send(f"over unix {n}")
                assert ws.recv(timeout=TIMEOUT) == f"over unix {n}"
        running.proc.send_signal(signal.SIGTERM)
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0
    assert not path.exists()


def test_tls_workers(app_dir: Path) -> None:
    """--tls-cert and --tls-key serve wss:// from every worker."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert.cert_chain_pems[0].write_to_path(str(app_dir / "cert.pem"))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(app_dir / "cert.pem"), append=True)
    cert.private_key_pem.write_to_path(str(app_dir / "key.pem"))
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    args = ["-m", "syncws", "run", "app:handler", "--workers", "2", "--host", "127.0.0.1",
            "--port", "0", "--tls-cert", "cert.pem", "--tls-key", "key.pem"]  # fmt: skip
    with started(args, app_dir) as (running, port, _):
        for n in range(4):
            with syncws.connect(
                f"wss://127.0.0.1:{port}/", ssl=client_ctx, server_hostname="localhost"
            ) as ws:
                ws.send(f"secure {n}")
                assert ws.recv(timeout=TIMEOUT) == f"secure {n}"
        running.proc.send_signal(signal.SIGTERM)
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0
