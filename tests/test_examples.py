"""The examples that the documentation includes or points to, run as users would.

Programs of their own run in a subprocess (``program``); the others are imported and their
functions served by the ``server`` fixture. Loopback only, every wait bounded.
"""

from __future__ import annotations

import functools
import http.client
import importlib.util
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from types import ModuleType

import pytest
from conftest import Program, ServerFactory, program, uri
from doc_blocks import commands_in, rst_blocks
from services import RedisServer
from timing import TIMEOUT
from wsgi_servers import free_port, wait_listening, werkzeug_server

import syncws

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Seconds a program of its own may take to start, to answer or to stop.
PROGRAM_TIMEOUT = 4 * TIMEOUT


def example(name: str) -> ModuleType:
    """Import ``examples/NAME.py`` as a module (its ``__main__`` block does not run)."""
    module_name = "example_" + name.replace("/", "_")
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def connect_when_listening(port: int, path: str = "/") -> syncws.ClientConnection:
    """Connect to a program's server on ``port`` once it listens (bounded)."""
    deadline = time.monotonic() + PROGRAM_TIMEOUT
    while True:
        try:
            return syncws.connect(f"ws://localhost:{port}{path}", open_timeout=TIMEOUT)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling a port that is not bound yet: nothing to wait on


def shown_on(name: str, port: int, directory: Path) -> Path:
    """A copy of ``examples/NAME`` in ``directory`` with its port, the 8765 the docs show,
    replaced by ``port``: the program as shown, runnable beside anything else on 8765."""
    source = (EXAMPLES / name).read_text()
    assert "8765" in source, name
    copy = directory / Path(name).name
    copy.write_text(source.replace("8765", str(port)))
    return copy


def wait_for_line(running: Program, pattern: str) -> str:
    """The first line of the program's standard error that matches ``pattern`` (bounded)."""
    deadline = time.monotonic() + PROGRAM_TIMEOUT
    while not re.search(pattern, line := running.line(deadline - time.monotonic())):
        pass
    return line


def echo_then_stop(running: Program, port: int, clients: int) -> None:
    """Echo through ``clients`` connections to a program's echo server on ``port``, then
    SIGTERM it: each client gets 1001, and the program exits with 0."""
    connections = [syncws.connect(f"ws://127.0.0.1:{port}/") for _ in range(clients)]
    for i, ws in enumerate(connections):
        ws.send(f"hello {i}")
        assert ws.recv(timeout=TIMEOUT) == f"hello {i}"
    running.proc.send_signal(signal.SIGTERM)
    for ws in connections:
        with pytest.raises(syncws.ConnectionClosedOK):
            ws.recv(timeout=PROGRAM_TIMEOUT)
        assert ws.close_code == 1001
    assert running.proc.wait(PROGRAM_TIMEOUT) == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_quickstart_echo_server_and_client(signum: int, tmp_path: Path) -> None:
    """The quick start's programs, as the index, the README and the quick start show them
    (but for the port): hello_client.py prints the echo of its message, the server echoes
    binary too, and Ctrl-C or SIGTERM stops it gracefully: 1001 to the client, status 0."""
    port = free_port()
    server_copy = shown_on("echo_server.py", port, tmp_path)
    client_copy = shown_on("hello_client.py", port, tmp_path)
    with program([str(server_copy)]) as running:
        wait_listening(port, running.proc)
        result = subprocess.run(
            [sys.executable, str(client_copy)],
            capture_output=True,
            text=True,
            timeout=PROGRAM_TIMEOUT,
        )
        [shown] = [c for c in commands_in("tutorial/quickstart.rst", "python") if "hello" in c.text]
        assert shown.output == ["Hello, world!"]  # what the page says it prints
        assert (result.returncode, result.stdout, result.stderr) == (0, "Hello, world!\n", "")
        with syncws.connect(f"ws://localhost:{port}/") as ws:
            ws.send(b"\x00\xff")
            assert ws.recv(timeout=TIMEOUT) == b"\x00\xff"
            running.proc.send_signal(signum)
            with pytest.raises(syncws.ConnectionClosedOK):
                ws.recv(timeout=PROGRAM_TIMEOUT)
            assert ws.close_code == 1001
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0
        assert running.rest(PROGRAM_TIMEOUT) == ""


def test_chat_server_sends_every_message_to_everyone() -> None:
    """examples/chat_server.py: everyone hears who joins and every message, the sender
    included; Ctrl-C stops it."""
    port = free_port()
    with program([str(EXAMPLES / "chat_server.py"), "--port", str(port)]) as running:
        with connect_when_listening(port) as ann:
            assert ann.recv(timeout=TIMEOUT).endswith(" joined")
            with syncws.connect(f"ws://localhost:{port}/") as bob:
                joined = bob.recv(timeout=TIMEOUT)
                assert joined.endswith(" joined")
                assert ann.recv(timeout=TIMEOUT) == joined
                ann.send("hello")
                assert ann.recv(timeout=TIMEOUT) == bob.recv(timeout=TIMEOUT) == "hello"
        running.proc.send_signal(signal.SIGINT)
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0
        assert "Traceback" not in running.rest(PROGRAM_TIMEOUT)


def test_handlers_served_by_the_runner_as_the_cli_reference_shows() -> None:
    """``python -m syncws run handlers:echo --workers 2`` (docs/reference/cli.rst), run in
    examples/ on a free port: it logs the first line the page shows, both workers serve,
    and SIGTERM stops them (1001 to the clients, status 0)."""
    [command] = [c for c in commands_in("reference/cli.rst", "python") if "run" in c.text]
    args = command.pipeline()[0][1:]
    assert args[:4] == ["-m", "syncws", "run", "handlers:echo"]  # examples/handlers.py
    port = free_port()
    with program([*args, "--port", str(port)], cwd=EXAMPLES) as running:
        first = running.line(PROGRAM_TIMEOUT).split(maxsplit=3)[3].rstrip()
        assert first == command.output[0].split(maxsplit=3)[3].replace("8765", str(port))
        for _ in range(2):
            wait_for_line(running, rf"INFO server listening on .*:{port}/")
        echo_then_stop(running, port, clients=4)


#: The two lines of the logging page's quick set-up: timestamps, ids and ports vary.
LOG_LINES = [
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO syncws\.server server listening on ws://.+/",
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO syncws\.server [0-9a-f-]{36}: connection open "
    r"from \('127\.0\.0\.1', \d+\) /chat\?\[redacted\]",
]


def test_logging_setup_logs_the_lines_the_logging_page_shows() -> None:
    """examples/logging_setup.py logs, in the format it sets, lines of the shape the page
    shows after it (the same patterns match both), and never the query string."""
    [shown] = [
        block.text.splitlines()
        for block in rst_blocks(EXAMPLES.parent / "docs" / "topics" / "logging.rst")
        if block.language == "text"
    ][:1]
    port = free_port()
    with program([str(EXAMPLES / "logging_setup.py"), str(port)]) as running:
        listening = running.line(PROGRAM_TIMEOUT)
        with syncws.connect(f"ws://127.0.0.1:{port}/chat?token=s3cret") as ws:
            ws.send("hi")
            assert ws.recv(timeout=TIMEOUT) == "hi"
        opened = running.line(PROGRAM_TIMEOUT)
        running.proc.send_signal(signal.SIGINT)
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0
        rest = running.rest(PROGRAM_TIMEOUT)
    for pattern, line, shown_line in zip(LOG_LINES, [listening, opened], shown, strict=True):
        assert re.fullmatch(pattern, line.rstrip("\n")), line
        assert re.fullmatch(pattern, shown_line), shown_line
    assert "s3cret" not in listening + opened + rest


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="platform has no SO_REUSEPORT")
def test_multicore_server_runs_processes_on_one_port_and_stops_on_sigterm() -> None:
    """Two worker processes listen on the same port, both serve, and SIGTERM to the parent
    stops them gracefully (clients see 1001, every process exits with 0)."""
    port = free_port()
    with program([str(EXAMPLES / "multicore_server.py"), str(port), "2"]) as running:
        workers = set()
        deadline = time.monotonic() + PROGRAM_TIMEOUT
        while len(workers) < 2:
            line = running.line(deadline - time.monotonic())
            match = re.match(rf"(\d+) server listening on ws://[^ ]*:{port}/$", line)
            if match:
                workers.add(match[1])
        echo_then_stop(running, port, clients=8)
        assert "Traceback" not in running.rest(PROGRAM_TIMEOUT)


def test_users_and_groups_reaches_one_user_or_one_group(server: ServerFactory) -> None:
    """send_to_user() reaches the connections of that user only, send_to_group() the
    members of that group only, and both say how many connections they reached."""
    module = example("users_and_groups")
    running = server(module.handler)
    alice, bob = syncws.connect(uri(running)), syncws.connect(uri(running))
    with alice, bob:
        for ws, name in ((alice, "alice"), (bob, "bob")):
            ws.send(name)
            assert ws.recv(timeout=TIMEOUT) == f"welcome {name}"
        alice.send("join ops")
        assert alice.recv(timeout=TIMEOUT) == "joined ops"

        assert module.send_to_user(running, "bob", "hello bob") == 1
        assert bob.recv(timeout=TIMEOUT) == "hello bob"
        assert module.send_to_group(running, "ops", "hello ops") == 1
        assert alice.recv(timeout=TIMEOUT) == "hello ops"
        assert module.send_to_user(running, "carol", "nobody") == 0
        with pytest.raises(TimeoutError):
            alice.recv(timeout=0.1)
        with pytest.raises(TimeoutError):
            bob.recv(timeout=0)


def test_handler_arguments_partial_and_closure(server: ServerFactory) -> None:
    """A handler bound with functools.partial and one made by a closure both get their
    arguments, and share the counter passed to them."""
    module = example("handler_arguments")
    counter = module.Counter()
    handlers = [
        functools.partial(module.reply, prefix=">", counter=counter),
        module.make_handler(">", counter),
    ]
    for handler in handlers:
        with syncws.connect(uri(server(handler))) as ws:
            ws.send("hi")
            assert ws.recv(timeout=TIMEOUT) == "> hi"
    assert counter.value == 2


def test_stop_from_thread_closes_clients_with_1001_and_exits() -> None:
    """Typing "stop" makes another thread call shutdown(): the client gets 1001 with the
    reason, serve_forever() returns and the program exits with 0."""
    port = free_port()
    with program([str(EXAMPLES / "stop_from_thread.py"), str(port)], stdin=True) as running:
        with connect_when_listening(port) as ws:
            ws.send("ping")
            assert ws.recv(timeout=TIMEOUT) == "ping"
            assert running.proc.stdin is not None
            running.proc.stdin.write("stop\n")
            running.proc.stdin.flush()
            with pytest.raises(syncws.ConnectionClosedOK):
                ws.recv(timeout=PROGRAM_TIMEOUT)
            assert (ws.close_code, ws.close_reason) == (1001, "stopped by the operator")
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0
        assert "Traceback" not in running.rest(PROGRAM_TIMEOUT)


def test_stop_from_thread_stops_gracefully_on_ctrl_c() -> None:
    """SIGINT raises KeyboardInterrupt out of serve_forever() in the main thread; the with
    block shuts the server down: the client gets 1001 and the program exits with 0."""
    port = free_port()
    with program([str(EXAMPLES / "stop_from_thread.py"), str(port)], stdin=True) as running:
        with connect_when_listening(port) as ws:
            running.proc.send_signal(signal.SIGINT)
            with pytest.raises(syncws.ConnectionClosedOK):
                ws.recv(timeout=PROGRAM_TIMEOUT)
            assert ws.close_code == 1001
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0
        assert "Traceback" not in running.rest(PROGRAM_TIMEOUT)


def test_why_closed_reports_the_close_frames(
    server: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """why_closed.talk() prints the answers, then tells the close frames both ways: 1011
    after a handler fails, 1009 for a message over the server's max_size, 1000 when the
    handler returns."""
    module = example("why_closed")

    def fail(ws: syncws.ServerConnection) -> None:
        ws.recv()
        raise RuntimeError("a bug in the handler")

    def answer_once(ws: syncws.ServerConnection) -> None:
        ws.send(ws.recv())

    assert module.talk(uri(server(fail)), ["hello"]) == (
        "closed: received 1011 (internal error) internal error; then sent 1011 "
        "(internal error) internal error (close_code=1011)"
    )
    assert "received 1009 (message too big)" in module.talk(
        uri(server(answer_once, max_size=16)), ["x" * 100]
    )
    assert module.talk(uri(server(answer_once)), ["hello"]) == (
        "closed: received 1000 (OK); then sent 1000 (OK) (close_code=1000)"
    )
    assert capsys.readouterr().out == "< hello\n"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_background_server_shuts_down_on_ctrl_c_and_sigterm(signum: int) -> None:
    """The program serves from start()'s threads while its main thread works; SIGINT or
    SIGTERM ends the work, shutdown() closes the client with 1001, the exit status is 0."""
    port = free_port()
    with program([str(EXAMPLES / "background_server.py"), str(port)]) as running:
        with connect_when_listening(port) as ws:
            ws.send("ping")
            assert ws.recv(timeout=TIMEOUT) == "ping"
            running.proc.send_signal(signum)
            with pytest.raises(syncws.ConnectionClosedOK):
                ws.recv(timeout=PROGRAM_TIMEOUT)
            assert ws.close_code == 1001
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0
        assert "Traceback" not in running.rest(PROGRAM_TIMEOUT)


def test_json_logs_are_json_lines_with_the_connection_id() -> None:
    """Every line is a JSON object; syncws's "connection open" line and the handler's own
    line carry the same connection id; syncws's lines carry the field of the adapter given
    as ``logger=``; the token in the query string appears nowhere."""
    port = free_port()
    with program([str(EXAMPLES / "json_logs.py"), str(port)]) as running:
        deadline = time.monotonic() + PROGRAM_TIMEOUT
        while "server listening" not in running.line(deadline - time.monotonic()):
            pass
        with syncws.connect(f"ws://localhost:{port}/chat?token=s3cret") as ws:
            for message in ("one", "two"):
                ws.send(message)
                assert ws.recv(timeout=TIMEOUT) == message
        entries = []
        while len(entries) < 2:
            entries.append(json.loads(running.line(deadline - time.monotonic())))
        running.proc.send_signal(signal.SIGINT)
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0
        rest = running.rest(PROGRAM_TIMEOUT)
    opened, closed = entries
    assert opened["logger"] == "syncws.server"
    assert opened["service"] == "echo"  # the adapter passed as logger=
    assert "service" not in closed  # the handler's own adapter adds other fields
    assert opened["message"].endswith("/chat?[redacted]")
    assert closed["logger"] == "echo"
    assert closed["message"] == "closed after 2 messages: code 1000"
    assert closed["path"] == "/chat?[redacted]"
    assert opened["connection"] == closed["connection"]
    assert opened["message"].startswith(f"{opened['connection']}: connection open from ")
    assert "s3cret" not in json.dumps(entries) + rest


def test_token_auth_in_the_query_string(server: ServerFactory) -> None:
    """A valid token in the query string opens the connection as its user; a missing,
    forged or expired one gets HTTP 401; an Origin not allowed gets 403, one matching a
    pattern is allowed."""
    module = example("token_auth")
    running = server(module.greet, process_request=module.query_token_auth, origins=module.ORIGINS)
    token = urllib.parse.quote(module.issue_token("alice"))
    with syncws.connect(uri(running, f"/chat?token={token}")) as ws:
        assert ws.recv(timeout=TIMEOUT) == "Hello, alice!"
    with syncws.connect(
        uri(running, f"/?token={token}"), origin="https://eu.chat.example.com"
    ) as ws:
        assert ws.recv(timeout=TIMEOUT) == "Hello, alice!"
    forged = module.issue_token("alice").replace("alice", "mallory")
    expired = module.issue_token("alice", ttl=-1)
    for path in ["/", "/?token=", f"/?token={forged}", f"/?token={expired}"]:
        with pytest.raises(syncws.InvalidStatus) as caught:
            syncws.connect(uri(running, path))
        assert caught.value.response.status_code == 401
    with pytest.raises(syncws.InvalidStatus) as caught:
        syncws.connect(uri(running, f"/?token={token}"), origin="https://evil.example")
    assert caught.value.response.status_code == 403


def test_token_auth_program_serves_both_ways() -> None:
    """``python examples/token_auth.py PORT PORT2`` prints a token that opens a connection
    in the query string on PORT and as the first message on PORT2; Ctrl-C stops both."""
    port, port2 = free_port(), free_port()
    args = [sys.executable, str(EXAMPLES / "token_auth.py"), str(port), str(port2)]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # printed before serving; "" if it exits
            token = line.removeprefix("token for alice, valid 10 minutes: ").strip()
            with connect_when_listening(port, f"/?token={urllib.parse.quote(token)}") as ws:
                assert ws.recv(timeout=TIMEOUT) == "Hello, alice!"
            with syncws.connect(f"ws://localhost:{port2}/") as ws:
                ws.send(token)
                assert ws.recv(timeout=TIMEOUT) == "Hello, alice!"
            proc.send_signal(signal.SIGINT)
            assert proc.wait(PROGRAM_TIMEOUT) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_token_auth_in_the_first_message(server: ServerFactory) -> None:
    """A valid token as the first message gets the greeting; anything else gets close code
    1008 from the server."""
    module = example("token_auth")
    running = server(module.first_message_auth, origins=module.ORIGINS)
    with syncws.connect(uri(running)) as ws:
        ws.send(module.issue_token("bob"))
        assert ws.recv(timeout=TIMEOUT) == "Hello, bob!"
    for credentials in ["not a token", b"\xff", module.issue_token("bob", ttl=-1)]:
        with syncws.connect(uri(running)) as ws:
            ws.send(credentials)
            with pytest.raises(syncws.ConnectionClosedError):
                ws.recv(timeout=TIMEOUT)
            assert (ws.close_code, ws.close_reason) == (1008, "authentication failed")


def test_flask_session_auth_on_the_route_and_the_sidecar(monkeypatch: pytest.MonkeyPatch) -> None:
    """Logged in, a client with the session cookie and the app's Origin is greeted by name
    on @sock.route and on the sidecar; without the cookie, or with a forged one, it gets
    401; from another site's page, 403."""
    http_port, ws_port = free_port(), free_port()
    monkeypatch.setenv("HTTP_PORT", str(http_port))
    monkeypatch.setenv("WS_PORT", str(ws_port))
    with program([str(EXAMPLES / "flask_session_auth.py")]):
        wait_listening(http_port)
        wait_listening(ws_port)
        client = http.client.HTTPConnection("127.0.0.1", http_port, timeout=2 * TIMEOUT)
        client.request(
            "POST",
            "/login",
            body="user=alice",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        with client.getresponse() as response:
            assert response.status == 302
            cookie = response.getheader("Set-Cookie", "").partition(";")[0]
            response.read()
        client.close()
        assert cookie.startswith("session=")
        forged = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
        app_origin = f"http://localhost:{http_port}"

        def connect(uri: str, cookie: str | None, origin: str) -> syncws.ClientConnection:
            headers = {"Cookie": cookie} if cookie else {}
            return syncws.connect(uri, origin=origin, additional_headers=headers)

        for ws_uri in [f"ws://127.0.0.1:{http_port}/chat", f"ws://127.0.0.1:{ws_port}/"]:
            with connect(ws_uri, cookie, app_origin) as ws:
                assert ws.recv(timeout=TIMEOUT) == "Hello, alice!"
                ws.send("hi")
                assert ws.recv(timeout=TIMEOUT) == "alice: hi"
            for bad_cookie, origin, status in [
                (None, app_origin, 401),
                (forged, app_origin, 401),
                (cookie, "https://evil.example", 403),
            ]:
                with pytest.raises(syncws.InvalidStatus) as caught:
                    connect(ws_uri, bad_cookie, origin)
                assert caught.value.response.status_code == status


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_router_dispatches_by_path_and_stops_on_a_signal(signum: signal.Signals) -> None:
    """examples/router.py: /echo echoes, /chat/<room> broadcasts within its room only, any
    other path gets 404, and SIGINT or SIGTERM stops it (clients see 1001, exit status 0)."""
    port = free_port()
    with program([str(EXAMPLES / "router.py"), str(port)]) as running:
        deadline = time.monotonic() + PROGRAM_TIMEOUT
        while "server listening on" not in running.line(deadline - time.monotonic()):
            pass
        base = f"ws://127.0.0.1:{port}"
        with syncws.connect(f"{base}/echo") as ws:
            ws.send("hi")
            assert ws.recv(timeout=TIMEOUT) == "hi"
        with pytest.raises(syncws.InvalidStatus) as info:
            syncws.connect(f"{base}/nowhere")
        assert info.value.response.status_code == 404
        alice = syncws.connect(f"{base}/chat/lobby")
        bob = syncws.connect(f"{base}/chat/lobby")
        eve = syncws.connect(f"{base}/chat/other")
        time.sleep(0.2)  # until their handlers run and join the rooms
        alice.send("hello")
        assert bob.recv(timeout=TIMEOUT) == "lobby: hello"
        assert alice.recv(timeout=TIMEOUT) == "lobby: hello"
        with pytest.raises(TimeoutError):
            eve.recv(timeout=0.3)
        running.proc.send_signal(signum)
        for ws in (alice, bob, eve):
            with pytest.raises(syncws.ConnectionClosedOK):
                ws.recv(timeout=TIMEOUT)
            assert ws.close_code == 1001
        assert running.proc.wait(PROGRAM_TIMEOUT) == 0
        assert "Traceback" not in running.rest(PROGRAM_TIMEOUT)


def join(uri: str, name: str, *, greeting: str) -> syncws.ClientConnection:
    """Connect to a tutorial chat at ``uri``, check the greeting, give ``name``."""
    ws = syncws.connect(uri)
    assert ws.recv(timeout=TIMEOUT) == greeting
    ws.send(name)
    return ws


def test_chat_step1_one_room(server: ServerFactory) -> None:
    """Tutorial step 1: after giving their names, clients see who joins, says what, and
    leaves; a client that gives no name is closed with 1008."""
    running = server(example("chat/step1").chat)
    greeting = "Welcome! What is your name?"
    with join(uri(running), "ann", greeting=greeting) as ann:
        assert ann.recv(timeout=TIMEOUT) == "ann joined"
        with join(uri(running), "bob", greeting=greeting) as bob:
            assert bob.recv(timeout=TIMEOUT) == "bob joined"
            assert ann.recv(timeout=TIMEOUT) == "bob joined"
            ann.send("hi")
            assert ann.recv(timeout=TIMEOUT) == bob.recv(timeout=TIMEOUT) == "ann: hi"
        assert ann.recv(timeout=TIMEOUT) == "bob left"
    with join(uri(running), " ", greeting=greeting) as nameless:
        with pytest.raises(syncws.ConnectionClosedError):
            nameless.recv(timeout=TIMEOUT)
        assert nameless.close_code == 1008


def test_chat_step2_rooms_and_a_page() -> None:
    """Tutorial step 2: GET / is the page; /rooms/<room> joins a room whose members alone
    see its messages, and who is there is listed on arrival; other paths get 404."""
    module = example("chat/step2")
    with syncws.route(module.url_map, "127.0.0.1", 0, process_request=module.page) as running:
        running.start()
        client = http.client.HTTPConnection("127.0.0.1", running.port, timeout=2 * TIMEOUT)
        client.request("GET", "/")
        with client.getresponse() as response:
            assert response.status == 200
            assert b"new WebSocket" in response.read()
        client.close()
        with pytest.raises(syncws.InvalidStatus) as caught:
            syncws.connect(uri(running, "/elsewhere"))
        assert caught.value.response.status_code == 404

        lobby, other = uri(running, "/rooms/lobby"), uri(running, "/rooms/other")
        # One after the other: "Here: ..." lists those whose handler has their name.
        ann = join(lobby, "ann", greeting="Welcome to lobby! What is your name?")
        assert ann.recv(timeout=TIMEOUT) == "Here: nobody yet"
        assert ann.recv(timeout=TIMEOUT) == "ann joined"
        bob = join(lobby, "bob", greeting="Welcome to lobby! What is your name?")
        assert bob.recv(timeout=TIMEOUT) == "Here: ann"
        assert bob.recv(timeout=TIMEOUT) == ann.recv(timeout=TIMEOUT) == "bob joined"
        cat = join(other, "cat", greeting="Welcome to other! What is your name?")
        assert cat.recv(timeout=TIMEOUT) == "Here: nobody yet"
        assert cat.recv(timeout=TIMEOUT) == "cat joined"
        with ann, bob, cat:
            bob.send("hello")
            assert ann.recv(timeout=TIMEOUT) == bob.recv(timeout=TIMEOUT) == "bob: hello"
            with pytest.raises(TimeoutError):
                cat.recv(timeout=0.2)


def test_chat_step3_flask_logins() -> None:
    """Tutorial step 3: logged-in users chat in rooms under their session's name; without
    a session the handshake gets 401, from a page of another site 403."""
    module = example("chat/step3")
    cookies = {}
    for name in ("ann", "bob"):
        with module.app.test_client() as client:
            assert client.post("/login", data={"name": name}).status_code == 302
            cookie = client.get_cookie("session")
            assert cookie is not None
            cookies[name] = f"session={cookie.value}"
    with werkzeug_server(module.app) as address:
        origin = f"http://{address}"

        def connect(cookie: str | None, origin: str = origin) -> syncws.ClientConnection:
            headers = {"Cookie": cookie} if cookie else {}
            return syncws.connect(
                f"ws://{address}/rooms/lobby", origin=origin, additional_headers=headers
            )

        with connect(cookies["ann"]) as ann:
            assert ann.recv(timeout=TIMEOUT) == "Welcome to lobby, ann! Here: nobody yet"
            assert ann.recv(timeout=TIMEOUT) == "ann joined"
            with connect(cookies["bob"]) as bob:
                assert bob.recv(timeout=TIMEOUT) == "Welcome to lobby, bob! Here: ann"
                assert bob.recv(timeout=TIMEOUT) == ann.recv(timeout=TIMEOUT) == "bob joined"
                ann.send("hi")
                assert ann.recv(timeout=TIMEOUT) == bob.recv(timeout=TIMEOUT) == "ann: hi"
            assert ann.recv(timeout=TIMEOUT) == "bob left"
        for cookie, bad_origin, status in [
            (None, origin, 401),
            (cookies["ann"], "https://evil.example", 403),
        ]:
            with pytest.raises(syncws.InvalidStatus) as caught:
                connect(cookie, bad_origin)
            assert caught.value.response.status_code == status


def test_django_sidecar_serves_the_users_of_the_site(
    server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session cookie of a user logged in to the Django site opens the connection as
    that user, whose handler uses the ORM; no cookie, or an unknown session, gets 401."""
    pytest.importorskip("django")
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    monkeypatch.setenv("DJANGO_DB", str(tmp_path / "db.sqlite3"))
    module = example("django_sidecar")
    module.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    User.objects.create_user("ann", password="s3cret")
    client = Client()
    assert client.login(username="ann", password="s3cret")
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    connection.close()

    running = server(module.handler, process_request=module.authenticate)
    with syncws.connect(uri(running), additional_headers={"Cookie": cookie}) as ws:
        assert ws.recv(timeout=TIMEOUT) == "Hello, ann!"
        ws.send("/users")
        assert ws.recv(timeout=TIMEOUT) == "1 users"
        ws.send("hi")
        assert ws.recv(timeout=TIMEOUT) == "ann: hi"
    for headers in [{}, {"Cookie": "sessionid=nosuchsession"}]:
        with pytest.raises(syncws.InvalidStatus) as caught:
            syncws.connect(uri(running), additional_headers=headers)
        assert caught.value.response.status_code == 401


def test_reconnecting_client_reconnects_after_a_server_restart() -> None:
    """examples/reconnecting_client.py: connected, sees the server go away (1001), and is
    connected again once a server is back on the port; Ctrl-C ends it."""
    port = free_port()
    target = f"ws://127.0.0.1:{port}/"
    with syncws.Server(echo_server, "127.0.0.1", port) as srv:
        srv.start()
        with subprocess.Popen(
            [sys.executable, str(EXAMPLES / "reconnecting_client.py"), target],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as client:
            try:
                assert client.stdout is not None
                assert client.stdout.readline() == f"Connected to {target}.\n"
                assert client.stdout.readline() == "< hello\n"
                srv.shutdown(timeout=PROGRAM_TIMEOUT)
                assert client.stdout.readline() == "Connection closed: 1001.\n"
                with syncws.Server(echo_server, "127.0.0.1", port) as again:
                    again.start()
                    assert client.stdout.readline() == f"Connected to {target}.\n"
                    assert client.stdout.readline() == "< hello\n"
                    client.send_signal(signal.SIGINT)
                    assert client.wait(PROGRAM_TIMEOUT) == 0
            finally:
                if client.poll() is None:
                    client.kill()


def echo_server(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def test_redis_chat_server_across_processes(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/redis_chat_server.py: two server processes share a room through Redis;
    --announce, from a third process without a server, reaches the clients of both; with
    Redis gone, a message gets an apology and the server keeps serving; Ctrl-C stops each
    server with exit status 0."""
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    script = str(EXAMPLES / "redis_chat_server.py")
    ports = [free_port(), free_port()]
    with program([script, str(ports[0])]) as one, program([script, str(ports[1])]) as two:
        with connect_when_listening(ports[0]) as a, connect_when_listening(ports[1]) as b:
            assert a.recv(timeout=2 * TIMEOUT) == b.recv(timeout=2 * TIMEOUT) == "joined lobby"
            a.send("hello from one")
            assert b.recv(timeout=2 * TIMEOUT) == a.recv(timeout=2 * TIMEOUT) == "hello from one"
            b.send(b"\x00from two")
            assert a.recv(timeout=2 * TIMEOUT) == b.recv(timeout=2 * TIMEOUT) == b"\x00from two"
            announced = subprocess.run(
                [sys.executable, script, "--announce", "maintenance in 5 minutes"],
                capture_output=True,
                text=True,
                timeout=PROGRAM_TIMEOUT,
            )
            assert "announced to 2 server processes" in announced.stdout, announced.stderr
            assert (
                a.recv(timeout=2 * TIMEOUT)
                == b.recv(timeout=2 * TIMEOUT)
                == "maintenance in 5 minutes"
            )
            redis_server.stop()
            a.send("anyone there?")
            assert a.recv(timeout=2 * TIMEOUT) == "the chat is unavailable for a moment"
        for running in (one, two):
            running.proc.send_signal(signal.SIGINT)
            assert running.proc.wait(PROGRAM_TIMEOUT) == 0
            assert "Traceback" not in running.rest(PROGRAM_TIMEOUT)


def run_example(name: str) -> str:
    """Run ``examples/NAME.py`` to its end (bounded); return its standard output."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        capture_output=True,
        text=True,
        timeout=PROGRAM_TIMEOUT,
        check=True,
    )
    assert "Traceback" not in done.stderr
    return done.stdout


def test_compression_settings_are_negotiated() -> None:
    """examples/compression.py: the tuned server and client agree on 10-bit windows both
    ways; compression=None negotiates no extension; messages arrive whole either way."""
    assert run_example("compression") == (
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10\n"
        "700\n"
        "no extension\n"
        "700\n"
    )


def test_custom_extension_is_negotiated_before_compression() -> None:
    """examples/custom_extension.py: x-xor, then permessage-deflate, and the echo."""
    assert run_example("custom_extension") == (
        "x-xor; key=42, permessage-deflate; server_max_window_bits=12\nHello, extensions!\n"
    )


def test_own_socket_hands_a_handshaken_socket_pair_to_the_runtime() -> None:
    """examples/own_socket.py: the in-memory handshake, from_handshake() on both ends, a
    message each way and a closing handshake with 1000."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "own_socket.py")],
        capture_output=True,
        text=True,
        timeout=PROGRAM_TIMEOUT,
        check=True,
    )
    assert result.stdout.splitlines() == ["Hello", "Hello back", "True 1000"]
    assert result.stderr == ""
