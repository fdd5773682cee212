"""Tests for syncws.protocol.handshake: keys and both sides' negotiation."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from syncws.exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidOrigin,
    InvalidStatus,
    NegotiationError,
)
from syncws.protocol.extensions import Extension, ExtensionParameter
from syncws.protocol.handshake import (
    OriginRule,
    accept_key,
    build_request,
    generate_key,
    process_request,
    process_response,
    reject,
    reject_handshake,
)
from syncws.protocol.http11 import Headers, Request, RequestParser, Response, ResponseParser

if TYPE_CHECKING:
    from syncws.protocol.frames import Frame

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def make_request(*remove: str, **extra: str | list[str]) -> Request:
    """A valid handshake request without the ``remove`` headers, plus ``extra`` ones."""
    headers = Headers()
    base = {
        "Host": "server.example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    for name, value in base.items():
        if name not in remove and name.replace("-", "_") not in extra:
            headers[name] = value
    for name, values in extra.items():
        for value in [values] if isinstance(values, str) else values:
            headers[name.replace("_", "-")] = value
    return Request("/chat", headers)


def make_response(*remove: str, **extra: str | list[str]) -> Response:
    """A valid 101 answer to KEY without the ``remove`` headers, plus ``extra`` ones."""
    headers = Headers()
    base = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": ACCEPT}
    for name, value in base.items():
        if name not in remove and name.replace("-", "_") not in extra:
            headers[name] = value
    for name, values in extra.items():
        for value in [values] if isinstance(values, str) else values:
            headers[name.replace("_", "-")] = value
    return Response(101, "Switching Protocols", headers)


def handshake_error(request: Request, **kwargs: Any) -> InvalidHandshake:
    with pytest.raises(InvalidHandshake) as exc_info:
        process_request(request, **kwargs)
    return exc_info.value


@dataclass
class FakeExtension:
    """A negotiated extension that remembers how it was negotiated."""

    name: str
    params: Sequence[ExtensionParameter]
    rsv_bits: frozenset[int] = frozenset()

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        return frame

    def encode(self, frame: Frame) -> Frame:
        return frame


@dataclass
class FakeServerFactory:
    """Accepts offers of ``name`` unless a parameter is called ``refuse`` or ``refuse_all``."""

    name: str
    refuse_all: bool = False
    seen: list[list[str]] = field(default_factory=list)

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], Extension]:
        self.seen.append([extension.name for extension in accepted])
        if self.refuse_all or ("refuse", None) in params:
            raise NegotiationError("refused")
        return [*params, ("ok", None)], FakeExtension(self.name, params)


@dataclass
class FakeClientFactory:
    """Offers ``name`` with ``params``; refuses answers with a ``refuse`` parameter or all."""

    name: str
    params: list[ExtensionParameter] = field(default_factory=list)
    refuse_all: bool = False

    def get_request_params(self) -> list[ExtensionParameter]:
        return self.params

    def process_response_params(
        self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]
    ) -> Extension:
        if self.refuse_all or ("refuse", None) in params:
            raise NegotiationError("refused")
        return FakeExtension(self.name, params)


# Keys


def test_accept_key_matches_rfc_6455_example() -> None:
    """The RFC 6455 §1.3 example key gives the RFC's accept value."""
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_generate_key_is_base64_of_16_random_bytes() -> None:
    """A key decodes to 16 bytes, and two keys differ."""
    key = generate_key()
    assert len(base64.b64decode(key, validate=True)) == 16
    assert generate_key() != key


# Server: validation


def test_process_request_accepts_valid_request() -> None:
    """A valid request gets a 101 with exactly the RFC 6455 headers."""
    response, subprotocol, extensions = process_request(make_request())
    assert (response.status_code, response.reason_phrase) == (101, "Switching Protocols")
    assert response.headers.items() == [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", ACCEPT),
    ]
    assert response.body == b""
    assert subprotocol is None
    assert extensions == []


def test_process_request_adds_server_header() -> None:
    """``server_header`` becomes a Server header."""
    response, _, _ = process_request(make_request(), server_header="syncws/0.1")
    assert response.headers["Server"] == "syncws/0.1"


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("Connection", "Upgrade, keep-alive"),
        ("Connection", ["keep-alive", "upgrade"]),
        ("Upgrade", "WebSocket"),
        ("Upgrade", "h2c, websocket"),
        ("Upgrade", ["h2c", "websocket"]),
    ],
)
def test_process_request_accepts_upgrade_variants(name: str, values: str | list[str]) -> None:
    """Connection and Upgrade are case-insensitive lists, over one or several lines."""
    response, _, _ = process_request(make_request(**{name: values}))
    assert response.status_code == 101


@pytest.mark.parametrize(
    ("remove", "extra"),
    [
        ("Connection", {}),
        ("Upgrade", {}),
        ("", {"Connection": "keep-alive"}),
        ("", {"Connection": "up grade"}),
        ("", {"Upgrade": "h2c"}),
        ("", {"Upgrade": "web socket"}),
        ("", {"Upgrade": "websocket/13"}),
    ],
)
def test_process_request_rejects_missing_upgrade_with_426(
    remove: str, extra: dict[str, str]
) -> None:
    """Without ``Upgrade: websocket`` and ``Connection: upgrade``, the answer is 426."""
    exc = handshake_error(make_request(remove, **extra))
    assert isinstance(exc, InvalidHeader)
    assert exc.status_code == 426
    assert exc.headers == [("Upgrade", "websocket"), ("Connection", "Upgrade")]
    assert "WebSocket client" in str(exc)


def test_browser_get_gets_readable_426_page() -> None:
    """A plain GET from a browser gets a 426 text page telling it to use a WebSocket client."""
    raw = b"GET / HTTP/1.1\r\nHost: localhost:8765\r\nAccept: text/html\r\n\r\n"
    request = RequestParser().feed(raw)
    assert request is not None
    exc = handshake_error(request)
    data = reject_handshake(exc, server_header="syncws").serialize()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"HTTP/1.1 426 Upgrade Required",
        b"Server: syncws",
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Length: %d" % len(body),
        b"Connection: close",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
    ]
    assert body.startswith(b"Failed to open a WebSocket connection: missing Connection")
    assert b"WebSocket client" in body


@pytest.mark.parametrize("hosts", [None, ["a", "b"]])
def test_process_request_requires_one_host_header(hosts: list[str] | None) -> None:
    """A missing or repeated Host header is answered with 400 (RFC 9112 §3.2)."""
    request = make_request("Host") if hosts is None else make_request(Host=hosts)
    exc = handshake_error(request)
    assert isinstance(exc, InvalidHeader)
    assert (exc.name, exc.status_code) == ("Host", 400)


@pytest.mark.parametrize("versions", [None, "8", "13, 8", ["13", "13"], "14"])
def test_process_request_rejects_other_versions_with_426(versions: str | list[str] | None) -> None:
    """A missing or different Sec-WebSocket-Version gets 426 with ``Sec-WebSocket-Version: 13``."""
    if versions is None:
        request = make_request("Sec-WebSocket-Version")
    else:
        request = make_request(Sec_WebSocket_Version=versions)
    exc = handshake_error(request)
    assert exc.status_code == 426
    assert exc.headers == [("Sec-WebSocket-Version", "13")]


@pytest.mark.parametrize(
    "keys",
    [
        None,
        [KEY, KEY],
        "not base64!",
        "dGhlIHNhbXBsZSBub25jZQ",
        base64.b64encode(b"x" * 15).decode(),
        base64.b64encode(b"x" * 17).decode(),
        "dGhlIHNhbXBsZSBub25jZQ==\xe9",
    ],
)
def test_process_request_rejects_bad_key_with_400(keys: str | list[str] | None) -> None:
    """The key must be one header holding the base64 of exactly 16 bytes, else 400."""
    request = (
        make_request("Sec-WebSocket-Key") if keys is None else make_request(Sec_WebSocket_Key=keys)
    )
    exc = handshake_error(request)
    assert isinstance(exc, InvalidHeader)
    assert (exc.name, exc.status_code) == ("Sec-WebSocket-Key", 400)


def test_process_request_checks_version_before_key() -> None:
    """A hixie-76 style request (no key, no version) learns that version 13 is needed."""
    exc = handshake_error(make_request("Sec-WebSocket-Key", "Sec-WebSocket-Version"))
    assert exc.status_code == 426


SUBDOMAINS = re.compile(r"https://[a-z0-9-]+\.example\.com")


@pytest.mark.parametrize(
    ("origin", "origins"),
    [
        ("https://evil.example", ["https://good.example"]),
        (None, ["https://good.example"]),
        (["https://good.example", "https://good.example"], ["https://good.example"]),
        ("HTTPS://GOOD.EXAMPLE", ["https://good.example"]),
        # A pattern must match the whole Origin, which it is not a search in.
        ("https://evil.example", [SUBDOMAINS]),
        ("https://a.example.com.evil.example", [SUBDOMAINS]),
        ("https://example.com", [SUBDOMAINS]),
        (None, [SUBDOMAINS]),
    ],
)
def test_process_request_rejects_disallowed_origin_with_403(
    origin: str | list[str] | None, origins: list[OriginRule]
) -> None:
    """An Origin that isn't listed exactly, a missing one or two of them get 403."""
    request = make_request() if origin is None else make_request(Origin=origin)
    exc = handshake_error(request, origins=origins)
    assert isinstance(exc, InvalidOrigin)
    assert exc.status_code == 403


@pytest.mark.parametrize(
    ("origin", "origins"),
    [
        ("https://evil.example", None),
        (None, None),
        ("https://good.example", ["https://other.example", "https://good.example"]),
        (None, [None, "https://good.example"]),
        ("https://a.example.com", ["https://good.example", SUBDOMAINS]),
        ("https://b-2.example.com", [SUBDOMAINS]),
    ],
)
def test_process_request_accepts_allowed_origin(
    origin: str | None, origins: list[OriginRule] | None
) -> None:
    """``origins=None`` allows anything; a None entry allows requests without Origin; a
    compiled pattern allows the Origins it matches whole (as websockets, issue 19)."""
    request = make_request() if origin is None else make_request(Origin=origin)
    response, _, _ = process_request(request, origins=origins)
    assert response.status_code == 101


def test_process_request_rejects_malformed_extensions_with_400() -> None:
    """A Sec-WebSocket-Extensions header outside the grammar gets 400."""
    exc = handshake_error(make_request(Sec_WebSocket_Extensions="foo; a=b c"))
    assert isinstance(exc, InvalidHeader)
    assert (exc.name, exc.status_code) == ("Sec-WebSocket-Extensions", 400)


def test_process_request_rejects_malformed_subprotocols_with_400() -> None:
    """A Sec-WebSocket-Protocol header that isn't a token list gets 400."""
    exc = handshake_error(
        make_request(Sec_WebSocket_Protocol="chat v2"), available_subprotocols=["chat"]
    )
    assert isinstance(exc, InvalidHeader)
    assert (exc.name, exc.status_code) == ("Sec-WebSocket-Protocol", 400)


# Server: subprotocols


@pytest.mark.parametrize(
    ("offered", "available", "chosen"),
    [
        ("superchat, chat", ["chat", "superchat"], "chat"),
        ("chat.v1, chat.v2", ["chat.v2", "chat.v1"], "chat.v2"),
        ("chat.v2, chat.v1", ["chat.v1", "chat.v2"], "chat.v1"),
        (["v1", "v2"], ["v2"], "v2"),
        ("v1", ["v2"], None),
        ("v1", None, None),
        (None, ["v1"], None),
    ],
)
def test_process_request_picks_the_servers_preferred_offered_subprotocol(
    offered: str | list[str] | None, available: list[str] | None, chosen: str | None
) -> None:
    """The server's first subprotocol that the client offers wins, whatever the client's
    order (as documented, and as websockets does: issue 19); no match means no header, no
    error."""
    request = make_request() if offered is None else make_request(Sec_WebSocket_Protocol=offered)
    response, subprotocol, _ = process_request(request, available_subprotocols=available)
    assert subprotocol == chosen
    assert response.headers.get("Sec-WebSocket-Protocol") == chosen


def test_process_request_uses_select_subprotocol() -> None:
    """``select_subprotocol`` gets (offered, available) and its choice is answered."""
    calls = []

    def select(offered: Sequence[str], available: Sequence[str]) -> str | None:
        calls.append((list(offered), list(available)))
        return offered[-1]

    request = make_request(Sec_WebSocket_Protocol="a, b")
    response, subprotocol, _ = process_request(
        request, available_subprotocols=["a"], select_subprotocol=select
    )
    assert calls == [(["a", "b"], ["a"])]
    assert subprotocol == response.headers["Sec-WebSocket-Protocol"] == "b"


def test_process_request_select_subprotocol_may_choose_none() -> None:
    """``select_subprotocol`` returning None means no Sec-WebSocket-Protocol header."""
    response, subprotocol, _ = process_request(
        make_request(Sec_WebSocket_Protocol="a"), select_subprotocol=lambda offered, available: None
    )
    assert subprotocol is None
    assert "Sec-WebSocket-Protocol" not in response.headers


def test_process_request_select_subprotocol_must_choose_an_offered_one() -> None:
    """A choice the client didn't offer is a server bug: 500."""
    exc = handshake_error(
        make_request(Sec_WebSocket_Protocol="a"), select_subprotocol=lambda offered, available: "z"
    )
    assert isinstance(exc, NegotiationError)
    assert exc.status_code == 500


def test_process_request_select_subprotocol_may_reject() -> None:
    """``select_subprotocol`` raising NegotiationError rejects the handshake with 400."""

    def select(offered: Sequence[str], available: Sequence[str]) -> str | None:
        raise NegotiationError("a subprotocol is required")

    exc = handshake_error(make_request(), select_subprotocol=select)
    assert isinstance(exc, NegotiationError)
    assert exc.status_code == 400


# Server: extensions


def test_process_request_negotiates_extensions_in_offer_order() -> None:
    """Each offer goes to the factory of its name; answers follow the client's order."""
    foo, bar = FakeServerFactory("foo"), FakeServerFactory("bar")
    request = make_request(Sec_WebSocket_Extensions=["bar; x=1, unknown", "foo"])
    response, _, extensions = process_request(request, extensions=[foo, bar])
    assert response.headers["Sec-WebSocket-Extensions"] == "bar; x=1; ok, foo; ok"
    assert [extension.name for extension in extensions] == ["bar", "foo"]
    assert foo.seen == [["bar"]]


def test_process_request_declined_offer_falls_back_to_next_offer() -> None:
    """A factory raising NegotiationError declines that offer; the next one is tried."""
    foo = FakeServerFactory("foo")
    request = make_request(Sec_WebSocket_Extensions="foo; refuse, foo; a, foo; b")
    response, _, extensions = process_request(request, extensions=[foo])
    assert response.headers["Sec-WebSocket-Extensions"] == "foo; a; ok"
    assert len(extensions) == 1


def test_process_request_tries_every_factory_of_a_name() -> None:
    """When a factory declines, another factory of the same name may accept."""
    picky, easy = FakeServerFactory("foo", refuse_all=True), FakeServerFactory("foo")
    _, _, extensions = process_request(
        make_request(Sec_WebSocket_Extensions="foo"), extensions=[picky, easy]
    )
    assert len(extensions) == 1
    assert easy.seen == [[]]


def test_process_request_without_accepted_extension_sends_no_header() -> None:
    """If every offer is declined, the answer has no Sec-WebSocket-Extensions."""
    request = make_request(Sec_WebSocket_Extensions="foo; refuse")
    response, _, extensions = process_request(request, extensions=[FakeServerFactory("foo")])
    assert "Sec-WebSocket-Extensions" not in response.headers
    assert extensions == []


# Server: rejections


def test_reject_builds_plain_text_response() -> None:
    """``reject`` sets the reason phrase, text headers, length and closes the connection."""
    response = reject(403, "Go away é\n", headers=[("X-Reason", "origin")])
    assert (response.status_code, response.reason_phrase) == (403, "Forbidden")
    assert response.headers.items() == [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", "11"),
        ("Connection", "close"),
        ("X-Reason", "origin"),
    ]
    assert response.body == "Go away é\n".encode()


def test_reject_with_unregistered_status_has_empty_reason() -> None:
    """A status unknown to http.HTTPStatus gets an empty reason phrase."""
    assert reject(599, "?").reason_phrase == ""


def test_reject_handshake_uses_status_headers_and_message() -> None:
    """The answer to an InvalidHandshake carries its status, headers and message."""
    exc = InvalidHandshake(
        "unsupported HTTP method: POST", status_code=405, headers=[("Allow", "GET")]
    )
    response = reject_handshake(exc)
    assert (response.status_code, response.reason_phrase) == (405, "Method Not Allowed")
    assert response.headers["Allow"] == "GET"
    assert "Server" not in response.headers
    assert (
        response.body == b"Failed to open a WebSocket connection: unsupported HTTP method: POST.\n"
    )


# Client


def test_build_request_minimal() -> None:
    """A minimal request has Host, Upgrade, Connection, key and version, in that order."""
    request = build_request("example.com:8765", "/chat?x=1", key=KEY)
    assert request.path == "/chat?x=1"
    assert request.headers.items() == [
        ("Host", "example.com:8765"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ]


def test_build_request_with_every_option() -> None:
    """Origin, extensions, subprotocols, additional headers and User-Agent are added."""
    request = build_request(
        "example.com",
        "/",
        key=KEY,
        origin="https://example.com",
        subprotocols=["chat", "superchat"],
        extensions=[FakeClientFactory("foo", [("a", None), ("b", "1")]), FakeClientFactory("bar")],
        additional_headers={"Cookie": "a=1"},
        user_agent_header="syncws/0.1",
    )
    headers = request.headers
    assert headers["Origin"] == "https://example.com"
    assert headers["Sec-WebSocket-Extensions"] == "foo; a; b=1, bar"
    assert headers["Sec-WebSocket-Protocol"] == "chat, superchat"
    assert headers["Cookie"] == "a=1"
    assert headers["User-Agent"] == "syncws/0.1"


def test_build_request_rejects_invalid_subprotocol() -> None:
    """A subprotocol that isn't a token raises ValueError."""
    with pytest.raises(ValueError, match="invalid subprotocol"):
        build_request("h", "/", key=KEY, subprotocols=["chat v2"])


def test_process_response_accepts_valid_response() -> None:
    """A correct 101 gives no subprotocol and no extensions."""
    assert process_response(make_response(), key=KEY) == (None, [])


def test_process_response_rejects_other_status() -> None:
    """A status other than 101 raises InvalidStatus carrying the response."""
    response = Response(403, "Forbidden", Headers(), b"nope")
    with pytest.raises(InvalidStatus) as exc_info:
        process_response(response, key=KEY)
    assert exc_info.value.response is response
    assert exc_info.value.status_code == 403


@pytest.mark.parametrize(
    ("remove", "extra", "name"),
    [
        ("Connection", {}, "Connection"),
        ("", {"Connection": "keep-alive"}, "Connection"),
        ("Upgrade", {}, "Upgrade"),
        ("", {"Upgrade": "websocket, h2c"}, "Upgrade"),
        ("", {"Upgrade": "websocket/13"}, "Upgrade"),
        ("Sec-WebSocket-Accept", {}, "Sec-WebSocket-Accept"),
        ("", {"Sec-WebSocket-Accept": "x" + ACCEPT[1:]}, "Sec-WebSocket-Accept"),
        ("", {"Sec-WebSocket-Accept": [ACCEPT, ACCEPT]}, "Sec-WebSocket-Accept"),
    ],
)
def test_process_response_rejects_bad_upgrade_headers(
    remove: str, extra: dict[str, str], name: str
) -> None:
    """Missing or wrong Connection, Upgrade or Sec-WebSocket-Accept raise InvalidHeader."""
    with pytest.raises(InvalidHeader) as exc_info:
        process_response(make_response(remove, **extra), key=KEY)
    assert exc_info.value.name == name


def test_process_response_accepts_header_case_and_lists() -> None:
    """Connection and Upgrade match case-insensitively; Connection may list other options."""
    response = make_response(Connection="keep-alive, UPGRADE", Upgrade="WebSocket")
    assert process_response(response, key=KEY) == (None, [])


def test_process_response_returns_offered_subprotocol() -> None:
    """The subprotocol chosen by the server is returned when it was offered."""
    response = make_response(Sec_WebSocket_Protocol="chat")
    assert process_response(response, key=KEY, subprotocols=["superchat", "chat"]) == ("chat", [])


@pytest.mark.parametrize(
    ("chosen", "offered"),
    [("chat", None), ("chat", ["superchat"]), ("chat, superchat", ["chat", "superchat"])],
)
def test_process_response_rejects_unexpected_subprotocol(
    chosen: str, offered: list[str] | None
) -> None:
    """A subprotocol that wasn't offered, or more than one, raises InvalidHeader."""
    with pytest.raises(InvalidHeader) as exc_info:
        process_response(
            make_response(Sec_WebSocket_Protocol=chosen), key=KEY, subprotocols=offered
        )
    assert exc_info.value.name == "Sec-WebSocket-Protocol"


def test_process_response_activates_accepted_extensions() -> None:
    """Each extension in the answer is built by the factory that offered it, in order."""
    response = make_response(Sec_WebSocket_Extensions=["bar", "foo; a=1"])
    _, extensions = process_response(
        response, key=KEY, extensions=[FakeClientFactory("foo"), FakeClientFactory("bar")]
    )
    assert extensions == [FakeExtension("bar", []), FakeExtension("foo", [("a", "1")])]


@pytest.mark.parametrize(
    ("answer", "factories"),
    [
        ("foo", []),
        ("foo", ["bar"]),
        ("foo, foo", ["foo"]),
        ("foo; refuse", ["foo"]),
    ],
)
def test_process_response_rejects_unexpected_or_refused_extension(
    answer: str, factories: list[str]
) -> None:
    """An extension not offered, accepted twice or refused by its factory raises."""
    with pytest.raises(NegotiationError, match="foo"):
        process_response(
            make_response(Sec_WebSocket_Extensions=answer),
            key=KEY,
            extensions=[FakeClientFactory(name) for name in factories],
        )


def test_process_response_checks_extensions_before_the_subprotocol() -> None:
    """An answer wrong in both is refused for its extension, which is checked first."""
    response = make_response(Sec_WebSocket_Extensions="foo", Sec_WebSocket_Protocol="chat")
    with pytest.raises(NegotiationError, match="foo"):
        process_response(response, key=KEY, subprotocols=None, extensions=[])


def test_process_response_refused_extension_keeps_factory_error_as_cause() -> None:
    """The factory's own NegotiationError is the cause of the one raised."""
    with pytest.raises(NegotiationError) as exc_info:
        process_response(
            make_response(Sec_WebSocket_Extensions="foo; refuse"),
            key=KEY,
            extensions=[FakeClientFactory("foo")],
        )
    assert str(exc_info.value.__cause__) == "refused"


def test_process_response_tries_next_factory_of_same_name() -> None:
    """If one factory refuses the answer, another one of the same name may accept it."""
    picky, easy = FakeClientFactory("foo", refuse_all=True), FakeClientFactory("foo")
    _, extensions = process_response(
        make_response(Sec_WebSocket_Extensions="foo"), key=KEY, extensions=[picky, easy]
    )
    assert extensions == [FakeExtension("foo", [])]


def test_process_response_rejects_malformed_extension_header() -> None:
    """A malformed Sec-WebSocket-Extensions answer raises InvalidHeader."""
    with pytest.raises(InvalidHeader):
        process_response(make_response(Sec_WebSocket_Extensions="foo;"), key=KEY)


def test_client_and_server_complete_a_handshake_over_bytes() -> None:
    """A client request, parsed and answered by the server, satisfies the client."""
    key = generate_key()
    client_factories = [FakeClientFactory("foo", [("a", "1")]), FakeClientFactory("bar")]
    request = build_request(
        "localhost", "/", key=key, subprotocols=["v2", "v1"], extensions=client_factories
    )
    parsed = RequestParser().feed(request.serialize())
    assert parsed == request
    response, server_subprotocol, _ = process_request(
        parsed, available_subprotocols=["v1", "v2"], extensions=[FakeServerFactory("foo")]
    )
    parsed_response = ResponseParser().feed(response.serialize())
    assert parsed_response is not None
    subprotocol, extensions = process_response(
        parsed_response, key=key, subprotocols=["v2", "v1"], extensions=client_factories
    )
    assert subprotocol == server_subprotocol == "v1"  # the server's preference
    assert extensions == [FakeExtension("foo", [("a", "1"), ("ok", None)])]
