"""The deployment files of docs/howto/deployment.rst (``examples/deployment/``).

nginx.conf runs under a real nginx in tests/integrations/test_nginx.py. Here: the server
they all run (``service.py``), the systemd unit (``systemd-analyze verify`` where systemd is
installed, and its ``ExecStart`` run as systemd would run it), and the HAProxy
configuration (no HAProxy in CI: its structure, and what it must agree on with the app and
with nginx.conf). Loopback only, every wait bounded.
"""

from __future__ import annotations

import http.client
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Program, program
from timing import TIMEOUT
from wsgi_servers import free_port

import syncws

DEPLOYMENT = Path(__file__).resolve().parent.parent / "examples" / "deployment"
APP = DEPLOYMENT / "service.py"
UNIT = DEPLOYMENT / "syncws@.service"
HAPROXY = DEPLOYMENT / "haproxy.cfg"
NGINX = DEPLOYMENT / "nginx.conf"
#: Seconds the app may take to start, or to stop.
PROGRAM_TIMEOUT = 4 * TIMEOUT


#: The connection options' defaults, which the configurations must allow for.
DEFAULTS = syncws.ConnectionOptions()


def wait_for_line(running: Program, pattern: str) -> re.Match[str]:
    """The first line of the program's standard error that matches ``pattern`` (bounded)."""
    deadline = time.monotonic() + PROGRAM_TIMEOUT
    while True:
        line = running.line(deadline - time.monotonic())
        match = re.search(pattern, line)
        if match:
            return match


def get(port: int, path: str) -> tuple[int, bytes]:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=2 * TIMEOUT)
    try:
        client.request("GET", path)
        with client.getresponse() as response:
            return response.status, response.read()
    finally:
        client.close()


def test_app_answers_health_checks_echoes_and_believes_its_proxy() -> None:
    """service.py: ``GET /healthz`` is 200, other plain requests 426; the client's address is
    taken from X-Forwarded-For sent from 127.0.0.1 (the proxy); SIGTERM closes with 1001."""
    port = free_port()
    with program([str(APP), "--port", str(port)]) as running:
        wait_for_line(running, rf"server listening on ws://127\.0\.0\.1:{port}/")
        assert get(port, "/healthz") == (200, b"OK\n")
        assert get(port, "/")[0] == 426
        headers = {"X-Forwarded-For": "203.0.113.7"}
        with syncws.connect(f"ws://127.0.0.1:{port}/", additional_headers=headers) as ws:
            opened = wait_for_line(running, r"connection open from (.*)")
            assert opened[1].startswith("('203.0.113.7', 0) via ('127.0.0.1', ")
            ws.send("hello")
            assert ws.recv(timeout=TIMEOUT) == "hello"
            running.proc.send_signal(signal.SIGTERM)
            with pytest.raises(syncws.ConnectionClosedOK):
                ws.recv(timeout=PROGRAM_TIMEOUT)
            assert ws.close_code == 1001
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file as ``{section: {key: [values]}}`` (comments left out)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        assert equals and current is not None, f"line {number}: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def unit_for_here(port: int) -> str:
    """The unit with the paths of this checkout: each replacement applies exactly as many
    times as expected, so that the file and the test cannot drift apart unnoticed."""
    text = UNIT.read_text()
    for old, new, count in [
        ("/srv/app/.venv/bin/python", sys.executable, 1),
        ("/srv/app", str(DEPLOYMENT), 2),
    ]:
        assert text.count(old) == count, old
        text = text.replace(old, new)
    return text


def test_systemd_unit_runs_the_app_and_stops_it_within_its_timeout(tmp_path: Path) -> None:
    """The unit's ExecStart, run as systemd would (its working directory, %i the port),
    serves; its KillSignal stops it with 1001 to the clients, and the process exits with
    0 well within TimeoutStopSec, which exceeds the server's close_timeout."""
    port = free_port()
    unit = parse_unit(unit_for_here(port))
    assert set(unit) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    assert service["KillSignal"] == ["SIGTERM"]
    stop_timeout = int(service["TimeoutStopSec"][0])
    assert DEFAULTS.close_timeout is not None
    assert stop_timeout > DEFAULTS.close_timeout
    assert service["WorkingDirectory"] == [str(DEPLOYMENT)]
    [exec_start] = service["ExecStart"]
    executable, *args = shlex.split(exec_start.replace("%i", str(port)))
    assert executable == sys.executable
    assert args == [str(APP), "--port", str(port)]

    with program(args, cwd=DEPLOYMENT) as running:
        wait_for_line(running, rf"server listening on ws://127\.0\.0\.1:{port}/")
        with syncws.connect(f"ws://127.0.0.1:{port}/") as ws:
            started = time.monotonic()
            running.proc.send_signal(getattr(signal, service["KillSignal"][0]))
            with pytest.raises(syncws.ConnectionClosedOK):
                ws.recv(timeout=PROGRAM_TIMEOUT)
            assert ws.close_code == 1001
        assert running.proc.wait(stop_timeout) == 0
        assert time.monotonic() - started < stop_timeout

    analyze = shutil.which("systemd-analyze")
    if analyze is not None:  # systemd's own check: unknown keys, bad values, missing paths
        path = tmp_path / f"syncws@{port}.service"
        path.write_text(unit_for_here(port))
        result = subprocess.run(
            [analyze, "verify", str(path)], capture_output=True, text=True, timeout=12 * TIMEOUT
        )
        assert (result.returncode, result.stdout + result.stderr) == (0, "")


def parse_haproxy(text: str) -> dict[str, list[list[str]]]:
    """HAProxy sections as ``{"backend syncws": [[keyword, args...], ...]}``."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        words = line.partition("#")[0].split()
        if not words:
            continue
        if not line[0].isspace():  # a section header starts in the first column
            current = sections.setdefault(" ".join(words), [])
            continue
        assert current is not None, f"line {number}: a directive outside a section"
        current.append(words)
    return sections


#: The directives this configuration may use, per kind of section: a misspelt keyword
#: fails here as it would fail HAProxy's own check.
HAPROXY_KEYWORDS = {
    "defaults": {"mode", "timeout"},
    "frontend": {"bind", "default_backend"},
    "backend": {"balance", "option", "server"},
}


def seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value).groups()  # type: ignore[union-attr]
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit or "ms"]


def test_haproxy_config_agrees_with_the_app_and_nginx() -> None:
    """haproxy.cfg: known directives only; its backend servers are nginx.conf's upstream
    servers; its health check is a path the app answers with 200; ``timeout tunnel`` (the
    idle timeout of upgraded connections) exceeds the default ping_interval; it sends
    X-Forwarded-For, from 127.0.0.1, which the app trusts (the test above)."""
    sections = parse_haproxy(HAPROXY.read_text())
    assert [name.split()[0] for name in sections] == ["defaults", "frontend", "backend"]
    for name, directives in sections.items():
        for keyword, *_ in directives:
            assert keyword in HAPROXY_KEYWORDS[name.split()[0]], (name, keyword)
    defaults_, frontend, backend = sections.values()
    backend_name = next(name for name in sections if name.startswith("backend ")).split()[1]
    assert ["default_backend", backend_name] in frontend
    timeouts = {args[0]: seconds(args[1]) for keyword, *args in defaults_ if keyword == "timeout"}
    assert set(timeouts) == {"connect", "client", "server", "tunnel"}
    assert DEFAULTS.ping_interval is not None
    assert timeouts["tunnel"] > DEFAULTS.ping_interval
    assert ["balance", "leastconn"] in backend
    assert ["option", "forwardfor"] in backend

    servers = [args[1] for keyword, *args in backend if keyword == "server"]
    upstreams = re.findall(r"^\s*server (\S+);", NGINX.read_text(), re.MULTILINE)
    assert servers == upstreams == ["127.0.0.1:8001", "127.0.0.1:8002"]
    assert all(
        ["server", f"ws{i}", address, "check"] in backend for i, address in enumerate(servers, 1)
    )

    [(method, path)] = [args[1:] for keyword, *args in backend if args[:1] == ["httpchk"]]
    port = free_port()
    with program([str(APP), "--port", str(port)]) as running:
        wait_for_line(running, "server listening on")
        assert get(port, path) == (200, b"OK\n")
        assert method == "GET"
        running.proc.send_signal(signal.SIGTERM)
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0
