"""The examples of the how-to guides (docs/howto/), run as users would: health checks and
passwords, TLS, proxies, Redis, Flask routes. The commands a guide shows are taken from
the page and run as shown, but for the ports. tests/test_examples.py has the others.
Loopback only, every wait bounded.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import ServerFactory, echo, program, uri
from doc_blocks import ROOT, commands_in
from proxy_servers import SOCKS_USER_INFO, dante, tinyproxy
from services import find_program
from test_examples import EXAMPLES, PROGRAM_TIMEOUT, example
from timing import TIMEOUT
from wsgi_servers import free_port, wait_listening, werkzeug_server

import syncws


class Answer(NamedTuple):
    status: int
    content_type: str | None
    body: bytes


def request(port: int, method: str, path: str, body: bytes | None = None) -> Answer:
    """A plain HTTP request to 127.0.0.1:``port``."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=2 * TIMEOUT)
    try:
        client.request(method, path, body=body)
        with client.getresponse() as response:
            return Answer(response.status, response.getheader("Content-Type"), response.read())
    finally:
        client.close()


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run ``python ARGS`` to completion; its standard output (it must succeed)."""
    result = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=PROGRAM_TIMEOUT,
        cwd=cwd,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_health_check_answers_plain_http_and_serves_websockets() -> None:
    """examples/health_check.py: the page's curl command gets the output the page shows;
    ``GET /`` is the HTML page, other plain requests get 426, WebSockets are echoed."""
    module = example("health_check")
    [curl] = commands_in("howto/health_checks.rst", "curl")
    path = urllib.parse.urlsplit(curl.pipeline()[0][1]).path
    port = free_port()
    with program([str(EXAMPLES / "health_check.py"), str(port)]) as running:
        wait_listening(port, running.proc)
        health = request(port, "GET", path)
        assert (health.status, health.body.decode().splitlines()) == (200, curl.output)
        page = request(port, "GET", "/")
        assert page == (200, "text/html; charset=utf-8", module.PAGE)
        assert request(port, "GET", "/elsewhere").status == 426
        with syncws.connect(f"ws://127.0.0.1:{port}/") as ws:
            ws.send("Hello from the browser")
            assert ws.recv(timeout=TIMEOUT) == "Hello from the browser"
        running.proc.send_signal(signal.SIGINT)
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0


def test_basic_auth_one_user(server: ServerFactory) -> None:
    """``basic_auth(("alice", "s3cret"))``: alice is greeted by name; a wrong password or
    none gets 401 with a Basic challenge."""
    module = example("basic_auth")
    running = server(module.handler, process_request=module.one_user)
    with syncws.connect(uri(running).replace("//", "//alice:s3cret@")) as ws:
        assert ws.recv(timeout=TIMEOUT) == "Hello, alice!"
    for credentials in ["alice:wrong@", "bob:hunter2@", ""]:
        with pytest.raises(syncws.InvalidStatus) as caught:
            syncws.connect(uri(running).replace("//", "//" + credentials))
        assert caught.value.response.status_code == 401
        assert caught.value.response.headers["WWW-Authenticate"].startswith("Basic")


def test_basic_auth_program_checks_hashes_and_answers_health_checks() -> None:
    """``python examples/basic_auth.py PORT``: greeting() (the client the page shows) is
    greeted as alice, bob with his password too; a wrong password, an unknown user or none
    get 401 with the realm; /health answers without credentials."""
    module = example("basic_auth")
    port = free_port()
    with program([str(EXAMPLES / "basic_auth.py"), str(port)]) as running:
        wait_listening(port, running.proc)
        assert module.greeting(port) == "Hello, alice!"
        with syncws.connect(f"ws://bob:hunter2@127.0.0.1:{port}/") as ws:
            assert ws.recv(timeout=TIMEOUT) == "Hello, bob!"
        for credentials in ["bob:s3cret@", "carol:s3cret@", ""]:
            with pytest.raises(syncws.InvalidStatus) as caught:
                syncws.connect(f"ws://{credentials}127.0.0.1:{port}/")
            assert caught.value.response.status_code == 401
            challenge = caught.value.response.headers["WWW-Authenticate"]
            assert challenge.startswith("Basic") and 'realm="chat"' in challenge
        assert request(port, "GET", "/health")[::2] == (200, b"OK\n")
        running.proc.send_signal(signal.SIGINT)
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0


def test_tls_guide_commands_as_shown(tmp_path: Path) -> None:
    """docs/howto/tls.rst's commands, as shown but for the port: its openssl command makes
    the certificate that tls_server.py serves with, and each tls_client.py command prints
    what the page shows. Without --cafile, the default context refuses the self-signed
    certificate."""
    [openssl] = commands_in("howto/tls.rst", "openssl")
    program_path = find_program("openssl", "openssl")
    subprocess.run(
        [program_path, *openssl.pipeline()[0][1:]],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=PROGRAM_TIMEOUT,
    )
    commands = commands_in("howto/tls.rst", "python")
    [serve] = [command for command in commands if "tls_server.py" in command.text]
    clients = [command for command in commands if "tls_client.py" in command.text]
    assert len(clients) == 2
    port = free_port()
    script, *args = serve.pipeline()[0][1:]
    with program([str(ROOT / script), *args, "--port", str(port)], cwd=tmp_path) as running:
        wait_listening(port, running.proc)
        for client in clients:
            script, *args = client.pipeline()[0][1:]
            if not any("8765" in arg for arg in args):
                args += ["--port", "8765"]
            args = [arg.replace("8765", str(port)) for arg in args]
            output = run(str(ROOT / script), *args, cwd=tmp_path)
            assert output.splitlines() == client.output
        refused = subprocess.run(
            [sys.executable, str(ROOT / script), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=PROGRAM_TIMEOUT,
        )
        assert refused.returncode != 0
        assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr
        running.proc.send_signal(signal.SIGINT)
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0


def test_proxy_client_through_real_proxies(server: ServerFactory, tmp_path: Path) -> None:
    """examples/proxy_client.py through tinyproxy with credentials, through dante with a
    username and password (socks5h), directly with ``none``, and from the environment:
    ``http_proxy`` is used, and ``no_proxy`` bypasses it. Each failure is one line without
    the password: wrong credentials (HTTP and SOCKS), a destination the proxy forbids, a
    proxy that is not there."""
    target = uri(server(echo))
    script = str(EXAMPLES / "proxy_client.py")
    clean = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}

    def fails(*args: str, env: dict[str, str] = clean) -> str:
        """Run the script, which must fail; its standard error."""
        result = subprocess.run(
            [sys.executable, script, *args],
            capture_output=True,
            text=True,
            timeout=PROGRAM_TIMEOUT,
            env=env,
        )
        assert result.returncode == 1 and not result.stdout
        return result.stderr

    with (
        tinyproxy(tmp_path, basic_auth=("alice", "s3cret")) as http_proxy,
        dante(tmp_path, with_user=True) as socks,
    ):
        with_credentials = http_proxy.url(user_info="alice:s3cret")
        assert run(script, target, with_credentials, env=clean) == "< Hello\n"
        assert run(script, target, socks.url("socks5h", SOCKS_USER_INFO), env=clean) == "< Hello\n"
        assert run(script, target, "none", env=clean) == "< Hello\n"
        wrong = fails(target, http_proxy.url(user_info="alice:wrong"))
        assert wrong == "The proxy refused the tunnel: HTTP 401.\n"
        assert fails(target, socks.url("socks5", "syncws-test:wrongpw")) == (
            f"Check the proxy's username and password: proxy 127.0.0.1:{socks.port} refused "
            "the username and password (Username and password authentication failure).\n"
        )
        forbidden = fails("ws://192.0.2.1:9/", with_credentials)  # tinyproxy's filter
        assert forbidden == "The proxy refused the tunnel: HTTP 403.\n"

        assert run(script, target, env={**clean, "http_proxy": with_credentials}) == "< Hello\n"
        port = free_port()
        nowhere = {**clean, "http_proxy": f"http://127.0.0.1:{port}"}
        refused = fails(target, env=nowhere)
        assert refused.startswith("Cannot connect: ")
        assert refused.endswith(f"cannot reach proxy 127.0.0.1:{port}: Connection refused.\n")
        assert run(script, target, env={**nowhere, "no_proxy": "127.0.0.1"}) == "< Hello\n"


def test_flask_routes_echo_feed_and_publish() -> None:
    """examples/flask_routes.py on Werkzeug's server: /echo echoes; a POST to /publish
    reaches a /feed client and says how many clients it reached."""
    module = example("flask_routes")
    with werkzeug_server(module.app) as address:
        with syncws.connect(f"ws://{address}/echo") as ws:
            ws.send("hi")
            assert ws.recv(timeout=TIMEOUT) == "hi"
        with syncws.connect(f"ws://{address}/feed") as feed:
            port = int(address.rpartition(":")[2])
            published = request(port, "POST", "/publish", body=b"hello everyone")
            assert published.body == b"sent to 1 clients\n"
            assert feed.recv(timeout=TIMEOUT) == "hello everyone"
        with pytest.raises(syncws.InvalidStatus) as caught:
            syncws.connect(f"ws://{address}/nowhere")
        assert caught.value.response.status_code == 404
