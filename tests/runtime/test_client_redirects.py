"""connect() follows redirects (301, 302, 303, 307, 308) from real redirecting servers:
syncws servers whose process_request answers with a Location."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ServerFactory, tls_contexts, uri
from timing import TIMEOUT

import syncws
from syncws.protocol.http11 import Request, Response

Seen = list[Request]


def redirecting(
    location: Callable[[Request], str], status: int = 302, seen: Seen | None = None
) -> Callable[[syncws.ServerConnection, Request], Response]:
    """A process_request that redirects every request to ``location(request)``."""

    def process_request(ws: syncws.ServerConnection, request: Request) -> Response:
        if seen is not None:
            seen.append(request)
        response = ws.respond(status, "moved\n")
        response.headers["Location"] = location(request)
        return response

    return process_request


def recording(seen: Seen) -> Callable[[syncws.ServerConnection, Request], None]:
    def process_request(ws: syncws.ServerConnection, request: Request) -> None:
        seen.append(request)

    return process_request


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_each_redirect_status_is_followed(server: ServerFactory, status: int) -> None:
    """Each redirect status leads to the Location; ws.request and ws.response describe the
    final hop; ws.redirects lists the hops."""
    final = server()
    first = server(process_request=redirecting(lambda r: uri(final, "/final?x=1"), status))
    with syncws.connect(uri(first, "/start")) as ws:
        assert ws.request.path == "/final?x=1"
        assert ws.request.headers["Host"] == f"127.0.0.1:{final.port}"
        assert ws.response.status_code == 101
        assert ws.redirects == [uri(final, "/final?x=1")]
        ws.send("hi")
        assert ws.recv(timeout=TIMEOUT) == "hi"


def test_relative_location(server: ServerFactory) -> None:
    """A relative Location is resolved against the request's URI."""
    seen: Seen = []

    def process_request(ws: syncws.ServerConnection, request: Request) -> Response | None:
        seen.append(request)
        if request.path == "/a/b":
            response = ws.respond(307, "")
            response.headers["Location"] = "../c?room=1"
            return response
        return None

    srv = server(process_request=process_request)
    with syncws.connect(uri(srv, "/a/b")) as ws:
        assert ws.request.path == "/c?room=1"
    assert [r.path for r in seen] == ["/a/b", "/c?room=1"]


def test_too_many_redirects_names_the_limit(server: ServerFactory) -> None:
    """A redirect loop stops after max_redirects, with an error naming the limit."""
    seen: Seen = []
    srv = server(process_request=redirecting(lambda r: r.path, seen=seen))
    with pytest.raises(syncws.TooManyRedirects, match="more than 3 redirects") as exc_info:
        syncws.connect(uri(srv, "/loop"), max_redirects=3)
    assert exc_info.value.max_redirects == 3
    assert exc_info.value.response.status_code == 302
    assert len(seen) == 4
    seen.clear()
    with pytest.raises(syncws.TooManyRedirects, match="more than 10 redirects"):
        syncws.connect(uri(srv, "/loop"))
    assert len(seen) == 11
    with pytest.raises(syncws.TooManyRedirects):
        syncws.connect(uri(srv, "/loop"), max_redirects=0)
    assert isinstance(exc_info.value, syncws.InvalidStatus)


def test_wss_to_ws_is_refused(server: ServerFactory) -> None:
    """A redirect from wss:// to ws:// would drop TLS: InsecureRedirect, not followed."""
    server_ctx, client_ctx = tls_contexts()
    seen: Seen = []
    plain = server(process_request=recording(seen))
    secure = server(ssl=server_ctx, process_request=redirecting(lambda r: uri(plain)))
    with pytest.raises(syncws.InsecureRedirect):
        syncws.connect(
            f"wss://127.0.0.1:{secure.port}/", ssl=client_ctx, server_hostname="localhost"
        )
    assert seen == []


def test_ws_to_wss_is_followed(server: ServerFactory) -> None:
    """A redirect from ws:// to wss:// is followed, with TLS and a default context (which
    does not trust the test CA: the verification failure shows TLS was attempted)."""
    server_ctx, _ = tls_contexts("127.0.0.1")
    secure = server(ssl=server_ctx)
    plain = server(process_request=redirecting(lambda r: f"wss://127.0.0.1:{secure.port}/"))
    with pytest.raises(ssl.SSLCertVerificationError):
        syncws.connect(uri(plain))


def test_credentials_not_sent_to_another_origin(server: ServerFactory) -> None:
    """User info and an Authorization header go to the first origin only; a redirect
    within the origin keeps them."""
    seen_final: Seen = []
    seen_first: Seen = []
    final = server(process_request=recording(seen_final))

    def process_request(ws: syncws.ServerConnection, request: Request) -> Response | None:
        seen_first.append(request)
        response = ws.respond(302, "")
        if request.path == "/":
            response.headers["Location"] = "/same-origin"
        else:
            response.headers["Location"] = uri(final, "/other-origin")
        return response

    first = server(process_request=process_request)
    with syncws.connect(f"ws://alice:s3cret@127.0.0.1:{first.port}/") as ws:
        assert ws.request.path == "/other-origin"
    assert all("Authorization" in r.headers for r in seen_first)
    assert len(seen_first) == 2
    assert "Authorization" not in seen_final[0].headers
    with syncws.connect(
        uri(first), additional_headers={"Authorization": "Bearer t0ken", "X-Keep": "1"}
    ):
        pass
    assert seen_first[-1].headers["Authorization"] == "Bearer t0ken"
    assert "Authorization" not in seen_final[-1].headers
    assert seen_final[-1].headers["X-Keep"] == "1"


def test_invalid_location(server: ServerFactory) -> None:
    """A redirect without a Location, or to a URI that is not a WebSocket URI:
    InvalidRedirect, carrying the response."""
    no_location = server(process_request=lambda ws, request: ws.respond(301, ""))
    with pytest.raises(syncws.InvalidRedirect, match="Location") as exc_info:
        syncws.connect(uri(no_location))
    assert exc_info.value.response.status_code == 301
    ftp = server(process_request=redirecting(lambda r: "ftp://example.com/"))
    with pytest.raises(syncws.InvalidRedirect, match="invalid WebSocket URI"):
        syncws.connect(uri(ftp))


def test_other_3xx_is_not_followed(server: ServerFactory) -> None:
    """300 and 304 are not redirects a client follows: InvalidStatus."""
    srv = server(process_request=redirecting(lambda r: "/x", status=300))
    with pytest.raises(syncws.InvalidStatus) as exc_info:
        syncws.connect(uri(srv))
    assert not isinstance(exc_info.value, syncws.InvalidRedirect)


def test_redirects_are_logged_without_query(
    server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Each redirect is logged at INFO, without the query string or credentials."""
    final = server()
    first = server(process_request=redirecting(lambda r: uri(final, "/f?token=abc")))
    caplog.set_level(logging.INFO, logger="syncws.client")
    with syncws.connect(f"ws://u:pw@127.0.0.1:{first.port}/?token=abc"):
        pass
    lines = [r.getMessage() for r in caplog.records if "redirect" in r.getMessage()]
    assert lines == [f"redirected to ws://127.0.0.1:{final.port}/f?[redacted] (HTTP 302)"]
    assert "abc" not in caplog.text and "pw" not in caplog.text


def test_redirect_with_unix_path_reconnects_to_the_socket(
    server: ServerFactory, tmp_path: Path
) -> None:
    """With unix_path, a redirect connects to the same Unix socket, for the new path."""
    path = str(tmp_path / "ws.sock")

    def process_request(ws: syncws.ServerConnection, request: Request) -> Response | None:
        if request.path == "/old":
            return redirecting(lambda r: "/new")(ws, request)
        return None

    server(unix_path=path, process_request=process_request)
    with syncws.connect("ws://localhost/old", unix_path=path) as ws:
        assert ws.request.path == "/new"


def test_redirect_with_sock_is_not_followed(server: ServerFactory) -> None:
    """A connection on a socket passed with sock cannot follow a redirect."""
    srv = server(process_request=redirecting(lambda r: "/new"))
    sock = socket.create_connection(("127.0.0.1", srv.port))
    with pytest.raises(syncws.InvalidRedirect, match="sock"):
        syncws.connect(uri(srv), sock=sock)


def test_max_redirects_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="max_redirects"):
        syncws.connect("ws://127.0.0.1:9/", max_redirects=-1)
