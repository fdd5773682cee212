"""The command-line client on real networks: --proxy (tinyproxy), the environment's proxy,
redirects printed one line each, and --reconnect against a server process restarted."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from conftest import ServerFactory, uri
from proxy_servers import SOCKS_USER_INFO, RunningProxy, dante, tinyproxy
from server_process import ServerProcess
from test_cli import ENV, RUN_TIMEOUT, run_cli

import syncws
from syncws.protocol.http11 import Request, Response


@pytest.fixture(scope="module")
def http_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    with tinyproxy(tmp_path_factory.mktemp("tinyproxy")) as running:
        yield running


def tunnels(proxy: RunningProxy) -> int:
    return proxy.log.read_text(errors="replace").count("Established connection to host")


def test_proxy_option(server: ServerFactory, http_proxy: RunningProxy) -> None:
    """--proxy URL goes through that proxy."""
    before = tunnels(http_proxy)
    result = run_cli("--proxy", http_proxy.url(), uri(server()), stdin="hi\n")
    assert "< hi" in result.stdout, result.stderr
    assert result.returncode == 0
    assert tunnels(http_proxy) == before + 1


def test_proxy_from_the_environment_and_no_proxy(
    server: ServerFactory, http_proxy: RunningProxy
) -> None:
    """By default the environment's http_proxy is used; --no-proxy connects directly."""
    env = {**ENV, "http_proxy": http_proxy.url()}
    target = uri(server())
    before = tunnels(http_proxy)
    for args in (["--max-redirects", "0"], ["--no-proxy"]):
        result = subprocess.run(
            [sys.executable, "-m", "syncws", *args, target],
            input="hi\n",
            capture_output=True,
            text=True,
            env=env,
            timeout=RUN_TIMEOUT,
        )
        assert "< hi" in result.stdout, result.stderr
    assert tunnels(http_proxy) == before + 1


def test_proxy_refusal_is_one_line(http_proxy: RunningProxy) -> None:
    """A proxy refusing the tunnel: one error line with its status, exit 1."""
    result = run_cli("--proxy", http_proxy.url(), "ws://192.0.2.1:9/")
    assert result.returncode == 1
    assert result.stderr.strip().endswith("proxy rejected connection: HTTP 403 Filtered.")


def test_socks_proxy_with_credentials(server: ServerFactory, tmp_path: Path) -> None:
    """--proxy socks5://user:pass@...: through dante with the right password; with a
    wrong one, one line that says so, without the password, exit 1 (also with
    --reconnect: retrying cannot fix it)."""
    target = uri(server())
    with dante(tmp_path, with_user=True) as socks:
        result = run_cli("--proxy", socks.url("socks5h", SOCKS_USER_INFO), target, stdin="hi\n")
        assert "< hi" in result.stdout, result.stderr
        for args in ([], ["--reconnect"]):
            wrong = socks.url("socks5", "syncws-test:wrongpw")
            result = run_cli(*args, "--proxy", wrong, target)
            assert result.stderr == (
                f"Failed to connect to {target}: proxy 127.0.0.1:{socks.port} refused the "
                "username and password (Username and password authentication failure).\n"
            )
            assert result.returncode == 1


def redirect_to(target: str) -> Callable[[syncws.ServerConnection, Request], Response]:
    def process_request(ws: syncws.ServerConnection, request: Request) -> Response:
        response = ws.respond(302, "")
        response.headers["Location"] = target
        return response

    return process_request


def test_redirects_print_one_line_each(server: ServerFactory) -> None:
    """Each redirect prints 'Redirected to URI.', then 'Connected to' the final URI."""
    final = uri(server(), "/final")
    middle = uri(server(process_request=redirect_to(final)), "/middle")
    first = uri(server(process_request=redirect_to(middle)))
    result = run_cli(first, stdin="hi\n")
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        f"Redirected to {middle}.",
        f"Redirected to {final}.",
        f"Connected to {final}.",
    ]
    assert "< hi" in lines
    result = run_cli("--max-redirects", "1", first)
    assert result.returncode == 1
    assert "more than 1 redirects" in result.stderr


class Lines:
    """The lines of a pipe, read by a thread (a select() on the pipe would miss lines
    already buffered by the reader)."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)

    def next(self) -> str:
        try:
            return self._queue.get(timeout=RUN_TIMEOUT)
        except queue.Empty:
            raise AssertionError("no output in time") from None


def test_reconnect_after_the_server_restarts(server_process: ServerProcess) -> None:
    """--reconnect: the server process stops (1001) and starts again; the client prints a
    line per attempt, connects again, and goes on sending its input."""
    server_process.start()
    target = f"ws://127.0.0.1:{server_process.port}/"
    with subprocess.Popen(
        [sys.executable, "-m", "syncws", "--reconnect", target],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    ) as proc:
        try:
            assert proc.stdin is not None and proc.stdout is not None
            lines = Lines(proc.stdout)
            read_line = lines.next
            proc.stdin.write("one\n")
            proc.stdin.flush()
            assert read_line() == f"Connected to {target}.\n"
            assert read_line() == "< one\n"
            server_process.stop()
            assert read_line() == "Connection closed: 1001 (going away).\n"
            assert read_line().startswith("Reconnecting in ")
            server_process.start()
            line = read_line()
            assert line == f"Connected to {target}.\n"
            proc.stdin.write("two\n")
            proc.stdin.flush()
            assert read_line() == "< two\n"
            proc.stdin.close()  # the end of input: close and exit, no reconnection
            assert proc.wait(RUN_TIMEOUT) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_reconnect_retries_then_gives_up_on_4xx(server: ServerFactory, tmp_path: Path) -> None:
    """--reconnect retries refused connections (a line each) but not an HTTP 403."""
    srv = server(process_request=lambda ws, request: ws.respond(403, "no\n"))
    result = run_cli("--reconnect", uri(srv))
    assert result.returncode == 1
    assert result.stderr.count("Failed to connect") == 1
    assert "HTTP 403" in result.stderr
