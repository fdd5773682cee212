"""syncws behind a real nginx: TLS terminated by nginx, two server processes upstream.

nginx runs ``examples/deployment/nginx.conf`` (the configuration the deployment guide
shows), with the ports, the certificate paths and the timeouts replaced, inside a minimal
main configuration whose pid file, logs and temporary files are in the test's directory.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from conftest import program
from rawws import wait_for
from services import find_program, free_port, nginx
from timing import TIMEOUT

import syncws

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "examples" / "deployment" / "nginx.conf"
APP = str(Path(__file__).resolve().parents[1] / "nginx_apps.py")

#: nginx's proxy_read_timeout and proxy_send_timeout in these tests, in seconds.
PROXY_TIMEOUT = 2


@dataclass
class Proxied:
    """nginx on ``port`` (TLS), in front of two syncws processes."""

    port: int
    client_ssl: ssl.SSLContext
    directory: Path

    @property
    def uri(self) -> str:
        return f"wss://127.0.0.1:{self.port}"

    def connect(self, path: str = "/", **options: object) -> syncws.ClientConnection:
        return syncws.connect(
            self.uri + path,
            ssl=self.client_ssl,
            open_timeout=2 * TIMEOUT,
            **options,  # type: ignore[arg-type]
        )


def site_config(port: int, upstreams: list[int], cert: Path, key: Path) -> str:
    """The example's configuration with test values; each replacement must apply once,
    so that the example and the test cannot drift apart unnoticed."""
    config = SITE.read_text()
    for old, new in [
        ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        ("server 127.0.0.1:8001;", f"server 127.0.0.1:{upstreams[0]};"),
        ("server 127.0.0.1:8002;", f"server 127.0.0.1:{upstreams[1]};"),
        ("/etc/ssl/certs/example.com.pem", str(cert)),
        ("/etc/ssl/private/example.com.key", str(key)),
        ("proxy_read_timeout 60s;", f"proxy_read_timeout {PROXY_TIMEOUT}s;"),
        ("proxy_send_timeout 60s;", f"proxy_send_timeout {PROXY_TIMEOUT}s;"),
    ]:
        assert config.count(old) == 1, old
        config = config.replace(old, new)
    return config


def main_config(directory: Path) -> str:
    """A main nginx.conf that keeps everything in ``directory`` and includes the site."""
    version = subprocess.run(
        [find_program("nginx", "nginx-light"), "-V"], capture_output=True, text=True
    ).stderr
    temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    paths = "\n".join(
        f"    {name}_temp_path {directory / name};"
        for name in temp
        if name == "client_body" or f"{name}-temp-path" in version
    )
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} info;
events {{ worker_connections 64; }}
http {{
    access_log {directory / "access.log"};
{paths}
    include {directory / "site.conf"};
}}
"""


@contextlib.contextmanager
def proxied(directory: Path, ping_interval: str) -> Iterator[Proxied]:
    """Two syncws processes (``ping_interval``: seconds, or ``none``) behind nginx."""
    find_program("nginx", "nginx-light")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    with contextlib.ExitStack() as stack:
        upstreams = []
        for _ in range(2):
            worker = stack.enter_context(program([APP, ping_interval, str(directory)]))
            line = worker.line(timeout=4 * TIMEOUT)
            assert line.startswith("ready "), line
            upstreams.append(int(line.split()[1]))
        port = free_port()
        (directory / "site.conf").write_text(site_config(port, upstreams, cert_path, key_path))
        stack.enter_context(nginx(main_config(directory), directory, port))
        yield Proxied(port, client_ssl, directory)


@pytest.fixture(scope="module")
def behind_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    """nginx in front of two syncws processes that ping every 0.5 s."""
    with proxied(tmp_path_factory.mktemp("nginx"), "0.5") as running:
        yield running


def test_echo_through_nginx(behind_nginx: Proxied) -> None:
    """Text, binary and a 4 MiB message each way, through TLS at nginx."""
    big_text = "syncws " * (4 * 2**20 // 7)
    big_binary = os.urandom(4 * 2**20)
    with behind_nginx.connect("/echo", max_size=8 * 2**20) as ws:
        for message in ["hello", b"\x00\x01\xff", big_text, big_binary]:
            ws.send(message)
            assert ws.recv(timeout=6 * TIMEOUT) == message


def test_least_conn_spreads_connections_and_forwards_the_address(
    behind_nginx: Proxied,
) -> None:
    """Two open connections go to the two processes; each sees the client's address from
    X-Forwarded-For (port 0), nginx being a trusted proxy."""
    with behind_nginx.connect("/whoami") as first, behind_nginx.connect("/whoami") as second:
        answers = [str(first.recv(timeout=2 * TIMEOUT)), str(second.recv(timeout=2 * TIMEOUT))]
    pids = {answer.split()[0] for answer in answers}
    assert len(pids) == 2
    for answer in answers:
        assert answer.split(" ", 1)[1] == "('127.0.0.1', 0)"


def test_close_code_and_reason_from_the_server(behind_nginx: Proxied) -> None:
    """The server's close code and reason reach the client through nginx."""
    with behind_nginx.connect("/close") as ws:
        ws.send("4001 server says bye")
        with pytest.raises(syncws.ConnectionClosedError):
            ws.recv(timeout=2 * TIMEOUT)
        assert (ws.close_code, ws.close_reason) == (4001, "server says bye")


def test_close_code_and_reason_from_the_client(behind_nginx: Proxied) -> None:
    """The client's close code and reason reach the server through nginx."""
    closes = behind_nginx.directory / "closes"
    ws = behind_nginx.connect("/report")
    ws.close(4002, "client says bye")
    assert ws.close_code == 4002
    assert wait_for(lambda: closes.exists() and closes.read_text() != "", 2 * TIMEOUT)
    assert closes.read_text() == "4002 client says bye\n"


def test_health_check_through_nginx(behind_nginx: Proxied) -> None:
    """A plain GET to the health check gets the answer of process_request."""
    connection = http.client.HTTPSConnection(
        "127.0.0.1", behind_nginx.port, context=behind_nginx.client_ssl, timeout=2 * TIMEOUT
    )
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"OK\n")
    finally:
        connection.close()


def test_pings_keep_an_idle_connection_open_past_proxy_read_timeout(
    behind_nginx: Proxied,
) -> None:
    """With ping_interval below nginx's proxy_read_timeout, an idle connection lives on."""
    with behind_nginx.connect("/echo", ping_interval=None) as ws:
        time.sleep(PROXY_TIMEOUT * 1.75)  # idle on purpose: what is tested is the waiting
        ws.send("still there?")
        assert ws.recv(timeout=TIMEOUT) == "still there?"


def test_without_pings_nginx_closes_an_idle_connection(tmp_path: Path) -> None:
    """The control: without pings, nginx drops the idle connection after its timeout."""
    with proxied(tmp_path, "none") as running, running.connect("/echo", ping_interval=None) as ws:
        start = time.monotonic()
        with pytest.raises(syncws.ConnectionClosed):
            ws.recv(timeout=PROXY_TIMEOUT * 5)
        assert PROXY_TIMEOUT * 0.9 < time.monotonic() - start < PROXY_TIMEOUT * 4
