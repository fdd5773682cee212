"""The command-line client with piped input: messages, close codes, exit codes, errors.

Each test runs ``python -m syncws`` in a subprocess against a server started in the test.
"""

from __future__ import annotations

import http.server
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from timing import TIMEOUT

import syncws
from syncws.cli import main
from syncws.cli.terminal import close_line, format_message

ServerFactory = Callable[..., syncws.Server]
UriFactory = Callable[..., str]

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "dumb"}
#: Upper bound for every client run, in seconds.
RUN_TIMEOUT = 4 * TIMEOUT
#: ``--wait`` for a run whose server answers at once and closes: it bounds a failure only.
WAIT = f"{2 * TIMEOUT:g}"


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the client with ``args`` and piped ``stdin``; return what it did."""
    return subprocess.run(
        [sys.executable, "-m", "syncws", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=RUN_TIMEOUT,
    )


def echo_then_close(count: int) -> Callable[[syncws.ServerConnection], None]:
    """A handler that echoes ``count`` messages and returns (the server closes with 1000):
    the client ends as soon as it has every answer, whatever ``--wait`` says."""

    def handler(ws: syncws.ServerConnection) -> None:
        for _ in range(count):
            ws.send(ws.recv())

    return handler


def read_line(stream: Any, timeout: float = 2 * TIMEOUT) -> str:
    """Read one line from a subprocess pipe, bounded by ``timeout``."""
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "no output in time"
    line: str = stream.readline()
    return line


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port with nothing listening on it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    yield port


# Messages.


def test_text_lines_are_sent_and_answers_printed(server: ServerFactory, uri: UriFactory) -> None:
    """Each input line is a text message; answers print as '< text' between the first and
    last lines, and the client exits 0 after a normal closure."""
    srv = server(echo_then_close(2))
    result = run_cli(uri(srv), "--wait", WAIT, stdin="hello\nwörld\n")
    assert result.stdout == (
        f"Connected to {uri(srv)}.\n< hello\n< wörld\nConnection closed: 1000 (OK).\n"
    )
    assert result.stderr == ""
    assert result.returncode == 0


def test_client_closes_with_1000_after_input_ends(server: ServerFactory, uri: UriFactory) -> None:
    """With piped input, the client waits --wait seconds after the last line, then closes
    the connection itself with 1000."""
    codes: list[int | None] = []
    done = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        for message in ws:
            ws.send(message)
        codes.append(ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None)
        done.set()

    srv = server(handler)
    result = run_cli(uri(srv), "--wait", "0.5", stdin="one\n")
    assert result.stdout.splitlines() == [
        f"Connected to {uri(srv)}.",
        "< one",
        "Connection closed: 1000 (OK).",
    ]
    assert result.returncode == 0
    assert done.wait(TIMEOUT)
    assert codes == [1000]


def test_binary_option_sends_hex_decoded_lines(server: ServerFactory, uri: UriFactory) -> None:
    """--binary sends each line hex-decoded as a binary message; binary answers print as
    hex; a line that is not hex is reported on stderr and skipped."""
    received: list[syncws.Data] = []

    def handler(ws: syncws.ServerConnection) -> None:
        for _ in range(2):
            received.append(ws.recv())
            ws.send(received[-1])

    srv = server(handler)
    result = run_cli(uri(srv), "--binary", "--wait", WAIT, stdin="01 02 ff\nzz\n00ab\n")
    assert received == [b"\x01\x02\xff", b"\x00\xab"]
    assert "< (binary) 0102ff\n< (binary) 00ab\n" in result.stdout
    assert result.stderr == "Invalid hex: 'zz' not sent.\n"
    assert result.returncode == 0


def test_control_characters_in_messages_are_escaped(server: ServerFactory, uri: UriFactory) -> None:
    """Control characters in incoming text cannot reach the terminal: they are escaped."""

    def handler(ws: syncws.ServerConnection) -> None:
        ws.send("red \x1b[31mtext\x1b[0m\r\nnext\tcol\u202e")

    result = run_cli(uri(server(handler)), stdin="")
    assert "< red \\x1b[31mtext\\x1b[0m\\r\\nnext\\tcol\\u202e\n" in result.stdout
    assert "\x1b" not in result.stdout


def test_headers_origin_and_subprotocol_are_sent(server: ServerFactory, uri: UriFactory) -> None:
    """--header (repeatable), --origin and --subprotocol end up in the opening handshake."""

    def handler(ws: syncws.ServerConnection) -> None:
        assert ws.request is not None
        headers = ws.request.headers
        ws.send(f"{headers.get_all('X-Test')} {headers['Origin']} {ws.subprotocol}")

    srv = server(handler, subprotocols=["chat"])
    result = run_cli(
        uri(srv),
        *("--header", "X-Test: one", "-H", "X-Test:two"),
        *("--origin", "https://example.com", "--subprotocol", "other", "--subprotocol", "chat"),
    )
    assert "Subprotocol: chat.\n" in result.stdout
    assert "< ['one', 'two'] https://example.com chat\n" in result.stdout
    assert result.returncode == 0


def test_no_compression_option_offers_no_extension(server: ServerFactory, uri: UriFactory) -> None:
    """permessage-deflate is offered by default and not with --no-compression."""

    def handler(ws: syncws.ServerConnection) -> None:
        assert ws.request is not None
        ws.send(repr(ws.request.headers.get("Sec-WebSocket-Extensions")))

    srv = server(handler)
    assert "< 'permessage-deflate" in run_cli(uri(srv)).stdout
    assert "< None\n" in run_cli(uri(srv), "--no-compression").stdout


def test_ping_option_prints_the_latency(server: ServerFactory, uri: UriFactory) -> None:
    """--ping sends pings periodically and prints the round-trip time of each."""
    srv = server()
    result = run_cli(uri(srv), "--ping", "0.05", "--wait", "0.5")
    assert "Latency: " in result.stdout
    assert result.returncode == 0


def test_slash_lines_are_messages_with_piped_input(server: ServerFactory, uri: UriFactory) -> None:
    """Slash commands are for a terminal: with piped input, '/ping' and '//x' are messages
    sent as they are, so scripts that send such lines keep working."""
    srv = server(echo_then_close(2))
    result = run_cli(uri(srv), "--wait", WAIT, stdin="/ping\n//x\n")
    assert "< /ping\n< //x\n" in result.stdout
    assert result.returncode == 0


def test_wait_gives_late_answers_time_to_arrive(server: ServerFactory, uri: UriFactory) -> None:
    """An answer that comes some time after the input ended is still printed."""

    def handler(ws: syncws.ServerConnection) -> None:
        ws.recv()
        time.sleep(0.3)  # the behaviour under test: an answer that takes a while
        ws.send("late")
        for _ in ws:
            pass

    result = run_cli(uri(server(handler)), "--wait", "5", stdin="question\n")
    assert "< late\n" in result.stdout


# Closing.


def test_close_code_and_reason_from_the_server_exit_1(
    server: ServerFactory, uri: UriFactory
) -> None:
    """A closure with an error code is reported with its explanation and reason; the exit
    status is 1."""

    def handler(ws: syncws.ServerConnection) -> None:
        ws.close(1008, "no entry")

    result = run_cli(uri(server(handler)), "--wait", WAIT)
    assert result.stdout.endswith("Connection closed: 1008 (policy violation): no entry.\n")
    assert result.returncode == 1


def test_going_away_is_a_normal_closure(server: ServerFactory, uri: UriFactory) -> None:
    """A server closing with 1001 (shutting down) ends the client with status 0."""

    def handler(ws: syncws.ServerConnection) -> None:
        ws.close(1001)

    result = run_cli(uri(server(handler)), "--wait", WAIT)
    assert result.stdout.endswith("Connection closed: 1001 (going away).\n")
    assert result.returncode == 0


def test_handler_error_closes_with_1011(server: ServerFactory, uri: UriFactory) -> None:
    """A server-side failure (1011) gives exit status 1."""

    def handler(ws: syncws.ServerConnection) -> None:
        ws.recv()
        raise RuntimeError("boom")

    result = run_cli(uri(server(handler)), "--wait", WAIT, stdin="x\n")
    assert result.stdout.endswith("Connection closed: 1011 (internal error).\n")
    assert result.returncode == 1


def test_message_over_max_size_closes_with_1009(server: ServerFactory, uri: UriFactory) -> None:
    """--max-size limits incoming messages: a bigger one closes the connection with 1009."""

    def handler(ws: syncws.ServerConnection) -> None:
        ws.send("x" * 2000)
        for _ in ws:
            pass

    result = run_cli(uri(server(handler)), "--max-size", "1000", "--wait", WAIT)
    last = result.stdout.splitlines()[-1]
    assert last.startswith("Connection closed: 1009 (message too big)"), last
    assert result.returncode == 1


def test_abnormal_closure_exits_1() -> None:
    """A TCP connection that ends without a close frame is reported as 1006; status 1."""
    from rawws import raw_server

    def behaviour(sock: socket.socket, rest: bytes) -> None:
        sock.shutdown(socket.SHUT_RDWR)

    with raw_server(behaviour) as ws_uri:
        result = run_cli(ws_uri, "--wait", WAIT)
    assert result.stdout.endswith(
        "Connection closed: 1006 (connection closed abnormally [internal]).\n"
    )
    assert result.returncode == 1


def test_server_closing_while_stdin_stays_open_ends_the_client(
    server: ServerFactory, uri: UriFactory
) -> None:
    """The client does not hang on an open stdin once the server closed the connection."""

    def handler(ws: syncws.ServerConnection) -> None:
        ws.send(ws.recv())

    srv = server(handler)
    with subprocess.Popen(
        [sys.executable, "-m", "syncws", uri(srv)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        assert read_line(proc.stdout).startswith("Connected to ")
        proc.stdin.write("ping\n")
        proc.stdin.flush()
        assert proc.wait(RUN_TIMEOUT) == 0  # stdin still open
        assert proc.stdout.read() == "< ping\nConnection closed: 1000 (OK).\n"
        proc.stdin.close()


def test_sigint_closes_the_connection_normally(server: ServerFactory, uri: UriFactory) -> None:
    """Ctrl-C (SIGINT) while the client waits for input closes with 1000 and exits 0."""
    srv = server()
    with subprocess.Popen(
        [sys.executable, "-m", "syncws", uri(srv)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        assert read_line(proc.stdout).startswith("Connected to ")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(RUN_TIMEOUT) == 0
        assert proc.stdout.read() == "Connection closed: 1000 (OK).\n"
        proc.stdin.close()


# Failures.


def test_a_password_in_the_uri_is_not_printed(closed_port: int) -> None:
    """The failure line masks the password of the URI's user info (it stayed on screen,
    once per attempt with --reconnect: found by a review)."""
    result = run_cli(f"ws://alice:s3cret@127.0.0.1:{closed_port}/")
    assert result.stderr == (
        f"Failed to connect to ws://alice:***@127.0.0.1:{closed_port}/: Connection refused.\n"
    )


def test_unreachable_host_fails_with_one_line(closed_port: int) -> None:
    """A refused connection is one line on stderr, no traceback, exit status 1."""
    result = run_cli(f"ws://127.0.0.1:{closed_port}/")
    assert result.stderr == (
        f"Failed to connect to ws://127.0.0.1:{closed_port}/: Connection refused.\n"
    )
    assert result.stdout == ""
    assert result.returncode == 1


def test_timeout_option_bounds_the_opening_handshake() -> None:
    """A server that accepts the TCP connection but never answers fails after --timeout."""
    from rawws import raw_server

    def silent(sock: socket.socket, rest: bytes) -> None:
        pass

    with raw_server(silent, handshake=False) as ws_uri:
        result = run_cli(ws_uri, "--timeout", "0.3")
    assert result.stderr == f"Failed to connect to {ws_uri}: timed out after 0.3 seconds.\n"
    assert result.returncode == 1


def test_non_websocket_http_server_fails_with_its_status() -> None:
    """A plain HTTP server's answer is reported with its status; exit status 1."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"Just a web page.\n"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        result = run_cli(f"ws://127.0.0.1:{httpd.server_address[1]}/")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(TIMEOUT)
    assert result.stderr.endswith(
        ": server rejected WebSocket connection: HTTP 404 Not Found (Just a web page.).\n"
    )
    assert result.stderr.count("\n") == 1
    assert result.returncode == 1


def test_tls_certificate_errors_are_reported_and_insecure_skips_them(
    server: ServerFactory, uri: UriFactory
) -> None:
    """wss:// to a self-signed certificate fails with a hint; --insecure connects anyway."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    srv = server(echo_then_close(1), ssl=context)
    wss = uri(srv, scheme="wss")
    failed = run_cli(wss)
    assert "certificate verification failed" in failed.stderr
    assert "--insecure" in failed.stderr
    assert failed.returncode == 1
    result = run_cli(wss, "--insecure", "--wait", WAIT, stdin="secure\n")
    assert "< secure\n" in result.stdout
    assert result.returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ["http://example.com/"],
        ["ws://"],
        ["ws://localhost/", "--header", "no colon"],
        ["ws://localhost/", "--header", "Bad Name: x"],
        ["ws://localhost/", "--ping", "0"],
        ["ws://localhost/", "--max-size", "-1"],
        ["ws://localhost/", "--unknown"],
        [],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    """A bad URI or option is a usage error: a message on stderr and exit status 2."""
    result = run_cli(*args)
    assert result.returncode == 2
    assert "syncws: error:" in result.stderr
    assert "Traceback" not in result.stderr


def test_version_and_help() -> None:
    """--version prints the version; --help lists every option."""
    assert run_cli("--version").stdout == f"syncws {syncws.__version__}\n"
    help_text = run_cli("--help").stdout
    for option in (
        "--header", "--subprotocol", "--origin", "--insecure", "--no-compression",
        "--ping", "--binary", "--max-size", "--timeout", "--wait", "--version",
        "--ca", "--cert", "--key", "/help",
    ):  # fmt: skip
        assert option in help_text


# In-process helpers.


def test_main_returns_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    """main() returns the status instead of exiting (usage error: 2, --version: 0)."""
    assert main(["--version"]) == 0
    assert main(["ftp://example.com/"]) == 2
    assert "isn't a valid WebSocket URI" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("code", "reason", "line"),
    [
        (1000, "", "Connection closed: 1000 (OK)."),
        (3001, "", "Connection closed: 3001 (registered)."),
        (4000, "bye\n", "Connection closed: 4000 (private use): bye\\n."),
        (2999, "", "Connection closed: 2999 (unknown)."),
    ],
)
def test_close_line(code: int, reason: str, line: str) -> None:
    """The closing line gives the code, its explanation and the escaped reason."""
    assert close_line(code, reason) == line


def test_format_message() -> None:
    """Text prints as is (escaped), binary as spaced hex."""
    assert format_message("héllo") == "< héllo"
    assert format_message(b"\x00\xff") == "< (binary) 00ff"
