"""Loopback tests of the server's opening handshake, as HTTP.

process_request answering plain HTTP (a health check), process_response adding a header,
hooks that fail or return an unsendable response (500, logged, no leak), an unexpected
error (the socket closed), handshake headers kept packed yet readable, origins (403),
subprotocols, malformed requests (405, 414, 426) and open_timeout dropping a silent
connection.
"""

from __future__ import annotations

import gc
import logging
import time
import warnings
from collections.abc import Callable

import pytest
from conftest import ServerFactory, echo
from rawws import REQUEST
from server_helpers import Uri, assert_threads_end, raw_connect, read_until_eof
from timing import TIMEOUT

import syncws

# HTTP: process_request, process_response, origins, subprotocols, malformed requests.


def test_process_request_answers_health_check(server: ServerFactory, uri: Uri) -> None:
    """process_request returning ws.respond(200, ...) answers plain HTTP; others upgrade."""

    def process_request(
        ws: syncws.ServerConnection, request: syncws.Request
    ) -> syncws.Response | None:
        if request.path == "/health":
            return ws.respond(200, "OK\n")
        return None

    srv = server(process_request=process_request)
    with raw_connect(srv) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        response = read_until_eof(sock)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert body == b"OK\n"
    with syncws.connect(uri(srv, "/chat")) as ws:
        ws.send("hi")
        assert ws.recv(timeout=TIMEOUT) == "hi"


def test_process_response_adds_header(server: ServerFactory, uri: Uri) -> None:
    """A header added by process_response reaches the client."""

    def process_response(
        ws: syncws.ServerConnection, request: syncws.Request, response: syncws.Response
    ) -> None:
        response.headers["X-Served-By"] = "syncws-test"

    srv = server(process_response=process_response)
    with syncws.connect(uri(srv)) as ws:
        assert ws.response is not None
        assert ws.response.headers["X-Served-By"] == "syncws-test"


def invalid_status(ws: syncws.ServerConnection, request: syncws.Request) -> object:
    return ws.respond(99, "x")


def legacy_tuple(ws: syncws.ServerConnection, request: syncws.Request) -> object:
    return (200, [], b"hi")  # what websockets' legacy process_request returns


def switching_protocols(ws: syncws.ServerConnection, request: syncws.Request) -> object:
    # A 101 of the hook's own: no Sec-WebSocket-Accept, no negotiation.
    headers = syncws.Headers([("Upgrade", "websocket"), ("Connection", "Upgrade")])
    return syncws.Response(101, "Switching Protocols", headers)


def switching_anyway(
    ws: syncws.ServerConnection, request: syncws.Request, response: syncws.Response
) -> object:
    response.status_code = 101  # in place, over the 403 of a refused Origin
    return None


def plain_str(ws: syncws.ServerConnection, request: syncws.Request) -> object:
    return "OK"


def response_with_str_body(
    ws: syncws.ServerConnection, request: syncws.Request, response: syncws.Response
) -> object:
    return syncws.Response(200, "OK", syncws.Headers(), "not bytes")  # type: ignore[arg-type]


def invalid_status_in_place(
    ws: syncws.ServerConnection, request: syncws.Request, response: syncws.Response
) -> None:
    response.status_code = 1000


def sys_exit(ws: syncws.ServerConnection, request: syncws.Request) -> None:
    raise SystemExit(3)


def served_and_collected(srv: syncws.Server) -> tuple[bytes, list[str]]:
    """Send a handshake request and read the answer until EOF, then shut the server down
    and wait for its pool thread to exit (which drops its last task, and what that held);
    return the answer and the ResourceWarnings raised meanwhile (garbage collected too)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with raw_connect(srv) as sock:
            sock.sendall(REQUEST % b"/")
            response = read_until_eof(sock)
        threads = list(srv._pool._threads)
        srv.shutdown(timeout=TIMEOUT)
        assert_threads_end(threads)
        gc.collect()
    return response, [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize(
    ("hooks", "logged"),
    [
        pytest.param(
            {"process_request": invalid_status},
            "process_request returned an invalid response (invalid status code: 99): ",
            id="status-99",
        ),
        pytest.param(
            {"process_request": legacy_tuple},
            "process_request returned an invalid response (a tuple, not a syncws.Response): "
            "(200, [], b'hi')",
            id="tuple",
        ),
        pytest.param(
            {"process_request": switching_protocols},
            "process_request returned an invalid response (a 101 for a request that the "
            "handshake's checks did not accept: return None from process_request to run "
            "them): ",
            id="101",
        ),
        pytest.param(
            {"origins": ["https://good.example"], "process_response": switching_anyway},
            "process_response returned an invalid response (a 101 for a request that the "
            "handshake's checks did not accept",
            id="101-after-403",
        ),
        pytest.param(
            {"process_request": plain_str},
            "process_request returned an invalid response (a str, not a syncws.Response): 'OK'",
            id="str",
        ),
        pytest.param(
            {"process_response": response_with_str_body},
            "process_response returned an invalid response (",
            id="str-body",
        ),
        pytest.param(
            {"process_response": invalid_status_in_place},
            "process_response returned an invalid response (invalid status code: 1000): ",
            id="changed-in-place",
        ),
        pytest.param({"process_request": sys_exit}, "process_request failed", id="sys-exit"),
    ],
)
def test_hook_failing_or_returning_invalid_response_gets_500(
    server: ServerFactory,
    caplog: pytest.LogCaptureFixture,
    hooks: dict[str, Callable[..., object]],
    logged: str,
) -> None:
    """A hook's unsendable return value (or exit) gets a 500, logged at ERROR; no leak."""
    srv = server(**hooks)
    response, leaks = served_and_collected(srv)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 Internal Server Error\r\n"), response
    assert body == b"Failed to open a WebSocket connection.\n"
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == "syncws.server"
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith(logged), record.getMessage()
    assert record.exc_info is not None
    assert leaks == []


def test_process_request_may_answer_with_the_protocols_own_101(
    server: ServerFactory, uri: Uri
) -> None:
    """A 101 that the protocol's accept() built (here with a header added) is sent as it
    is: the handshake's checks ran, and the connection opens."""

    def accepting(ws: syncws.ServerConnection, request: syncws.Request) -> syncws.Response:
        response = ws.protocol.accept(request)
        response.headers["X-Accepted-By"] = "hook"
        return response

    srv = server(echo, process_request=accepting)
    with syncws.connect(uri(srv)) as ws:
        assert ws.response is not None
        assert ws.response.headers["X-Accepted-By"] == "hook"
        ws.send("hello")
        assert ws.recv(timeout=TIMEOUT) == "hello"


def test_unexpected_handshake_error_closes_socket(
    server: ServerFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever fails in the handshake, the server closes the socket: no leak, no hang."""
    srv = server()

    def broken() -> None:
        raise RuntimeError("broken")

    monkeypatch.setattr(srv, "_new_protocol", broken)
    response, leaks = served_and_collected(srv)
    assert response == b""
    assert leaks == []
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)


def test_handshake_headers_are_packed_and_still_readable(server: ServerFactory, uri: Uri) -> None:
    """Once open, a connection keeps its handshake headers packed in one string; the handler
    reads (and changes) them as usual, and process_response saw them whole."""
    seen: list[object] = []

    def process_response(
        ws: syncws.ServerConnection, request: syncws.Request, response: syncws.Response
    ) -> None:
        seen.append(hasattr(request.headers, "_packed"))
        response.headers["X-Served-By"] = "syncws-test"

    def handler(ws: syncws.ServerConnection) -> None:
        assert ws.request is not None and ws.response is not None
        request, response = ws.request.headers, ws.response.headers
        seen.append((hasattr(request, "_packed"), hasattr(response, "_packed")))
        seen.append((request["X-Token"], request.get_all("X-Multi"), request["host"]))
        seen.append((response["X-Served-By"], response["Upgrade"]))
        request["X-Added"] = "yes"
        seen.append(ws.request.headers.get_all("X-Added"))
        ws.send("done")

    srv = server(handler, process_response=process_response)
    headers = [("X-Token", "t0k3n"), ("X-Multi", "1"), ("X-Multi", "2")]
    with syncws.connect(uri(srv), additional_headers=headers) as ws:
        assert ws.recv(timeout=TIMEOUT) == "done"
    assert seen == [
        False,
        (True, True),
        ("t0k3n", ["1", "2"], f"127.0.0.1:{srv.port}"),
        ("syncws-test", "websocket"),
        ["yes"],
    ]


def test_origins_rejects_other_origin_with_403(server: ServerFactory, uri: Uri) -> None:
    """With origins set, another Origin gets HTTP 403 and an allowed one connects."""
    srv = server(origins=["https://ok.example"])
    with pytest.raises(syncws.InvalidStatus) as excinfo:
        syncws.connect(uri(srv), origin="https://evil.example")
    assert excinfo.value.response.status_code == 403
    with syncws.connect(uri(srv), origin="https://ok.example") as ws:
        ws.send("hi")
        assert ws.recv(timeout=TIMEOUT) == "hi"


def test_subprotocol_negotiated_on_both_sides(server: ServerFactory, uri: Uri) -> None:
    """The server picks the subprotocol it supports among those offered; both sides agree."""
    seen: list[str | None] = []

    def handler(ws: syncws.ServerConnection) -> None:
        seen.append(ws.subprotocol)
        ws.send(ws.subprotocol or "")

    srv = server(handler, subprotocols=["a"])
    with syncws.connect(uri(srv), subprotocols=["b", "a"]) as ws:
        assert ws.subprotocol == "a"
        assert ws.recv(timeout=TIMEOUT) == "a"
    assert seen == ["a"]


@pytest.mark.parametrize(
    ("request_bytes", "status", "header"),
    [
        pytest.param(b"POST / HTTP/1.1\r\nHost: localhost\r\n\r\n", 405, b"allow: get", id="405"),
        pytest.param(
            b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414, None, id="414"
        ),
        pytest.param(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 426, None, id="426"),
    ],
)
def test_malformed_request_gets_http_error(
    server: ServerFactory, request_bytes: bytes, status: int, header: bytes | None
) -> None:
    """Malformed or plain HTTP requests get the status of the limits table, then EOF."""
    srv = server()
    with raw_connect(srv) as sock:
        sock.sendall(request_bytes)
        response = read_until_eof(sock)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    if header is not None:
        assert header in head.lower().split(b"\r\n")
    if status == 426:
        assert body, "426 should have a readable body"


def test_open_timeout_drops_silent_connection(
    server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection that sends nothing is dropped after open_timeout and logged at INFO."""
    caplog.set_level(logging.INFO, logger="syncws.server")
    srv = server(open_timeout=0.5)
    with raw_connect(srv) as sock:
        start = time.monotonic()
        assert read_until_eof(sock) == b""
        elapsed = time.monotonic() - start
    assert 0.3 < elapsed < 3.0, f"dropped after {elapsed:.2f}s"
    assert any(
        r.name == "syncws.server" and r.levelno == logging.INFO and "timed out" in r.getMessage()
        for r in caplog.records
    )
