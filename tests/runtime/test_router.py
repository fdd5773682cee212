"""route(): several endpoints on one server, dispatched by URL (as websockets' route())."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from rawws import response_head
from timing import TIMEOUT
from werkzeug.routing import Map, Rule

import syncws
from syncws.runtime.router import Router


def echo(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def room(ws: syncws.ServerConnection, name: str, number: int) -> None:
    ws.send(f"{name} {number} {type(number).__name__}")


URL_MAP = Map(
    [
        Rule("/echo", endpoint=echo),
        Rule("/rooms/<name>/<int:number>", endpoint=room),
        Rule("/old-echo", redirect_to="/echo"),
    ]
)


@pytest.fixture
def routed() -> Iterator[syncws.Server]:
    server = syncws.route(URL_MAP, "127.0.0.1", 0).start()
    try:
        yield server
    finally:
        server.shutdown(timeout=TIMEOUT)


def uri(server: syncws.Server, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def head(server: syncws.Server, path: str) -> bytes:
    """The response head to a WebSocket handshake for ``path``, on a raw socket."""
    assert server.port is not None
    request = (
        f"GET {path} HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    return response_head(server.port, request.encode(), TIMEOUT)


def test_each_path_reaches_its_handler_with_the_url_variables(routed: syncws.Server) -> None:
    """Connections go to the handler of their path, with the URL's variables converted."""
    with syncws.connect(uri(routed, "/echo")) as ws:
        ws.send("hello")
        assert ws.recv(timeout=TIMEOUT) == "hello"
    with syncws.connect(uri(routed, "/rooms/lobby/42?x=1")) as ws:
        assert ws.recv(timeout=TIMEOUT) == "lobby 42 int"


def test_an_unknown_path_gets_404_before_any_upgrade(routed: syncws.Server) -> None:
    """No rule matches: HTTP 404 answers the handshake, no connection opens."""
    with pytest.raises(syncws.InvalidStatus) as info:
        syncws.connect(uri(routed, "/nowhere"))
    assert info.value.response.status_code == 404
    assert not routed.connections
    assert head(routed, "/rooms/lobby/not-a-number").startswith(b"HTTP/1.1 404")


def test_a_redirect_rule_answers_302_with_its_location(routed: syncws.Server) -> None:
    """A rule with redirect_to answers 302, with a ws:// Location built for the Host."""
    response = head(routed, "/old-echo")
    assert response.startswith(b"HTTP/1.1 302")
    assert b"\r\nLocation: ws://example.test/echo" in response


def test_process_request_runs_first() -> None:
    """A process_request given to route() answers before the routing (a health check)."""

    def health(ws: syncws.ServerConnection, request: syncws.Request) -> syncws.Response | None:
        return ws.respond(200, "OK\n") if request.path == "/healthz" else None

    with syncws.route(URL_MAP, "127.0.0.1", 0, process_request=health).start() as server:
        assert head(server, "/healthz").startswith(b"HTTP/1.1 200")
        with syncws.connect(uri(server, "/echo")) as ws:
            ws.send(b"\x00")
            assert ws.recv(timeout=TIMEOUT) == b"\x00"


def test_ssl_true_builds_wss_redirects_behind_a_tls_proxy() -> None:
    """ssl=True serves plain ws:// (TLS ends at the proxy) but redirects to wss://; a
    fixed server_name replaces the Host header in them."""
    server = syncws.route(URL_MAP, "127.0.0.1", 0, ssl=True, server_name="chat.example")
    with server.start():
        assert server.ssl is None
        assert b"\r\nLocation: wss://chat.example/echo" in head(server, "/old-echo")


def test_a_router_subclass_changes_the_answers() -> None:
    """create_router: a Router subclass, e.g. with a JSON 404."""

    class Custom(Router):
        def route_request(
            self, connection: syncws.ServerConnection, request: syncws.Request
        ) -> syncws.Response | None:
            response = super().route_request(connection, request)
            if response is not None and response.status_code == 404:
                return connection.respond(404, '{"error": "no such endpoint"}')
            return response

    with syncws.route(URL_MAP, "127.0.0.1", 0, create_router=Custom).start() as server:
        with pytest.raises(syncws.InvalidStatus) as info:
            syncws.connect(uri(server, "/nowhere"))
        assert info.value.response.body == b'{"error": "no such endpoint"}'


def test_handlers_run_concurrently(routed: syncws.Server) -> None:
    """Routed handlers run in the pool like any handler: two connections at once."""
    results: list[str] = []

    def talk(path: str) -> None:
        with syncws.connect(uri(routed, path)) as ws:
            results.append(str(ws.recv(timeout=TIMEOUT)))

    threads = [threading.Thread(target=talk, args=(f"/rooms/r{i}/{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert sorted(results) == [f"r{i} {i} int" for i in range(4)]
