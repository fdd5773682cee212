"""Tests for the trusted_proxies option: the client's address behind a reverse proxy."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from conftest import ServerFactory
from timing import TIMEOUT

import syncws
from syncws.protocol.http11 import Headers
from syncws.runtime.forwarded import _forwarded_for, _TrustedProxies

UriFactory = Callable[..., str]
PEER = ("127.0.0.1", 40000)


def address(rules: list[str], *headers: tuple[str, str], peer: Any = PEER) -> Any:
    return _TrustedProxies(rules).client_address(peer, Headers(list(headers)))


def tell_address(ws: syncws.ServerConnection) -> None:
    """A handler that sends the connection's remote address."""
    ws.send(repr(ws.remote_address))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("X-Forwarded-For", "203.0.113.7")], ("203.0.113.7", 0)),
        ([("X-Forwarded-For", "203.0.113.7:5555")], ("203.0.113.7", 5555)),
        ([("X-Forwarded-For", "2001:db8::1")], ("2001:db8::1", 0)),
        ([("X-Forwarded-For", "[2001:db8::1]:4711")], ("2001:db8::1", 4711)),
        ([("Forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43")], ("192.0.2.60", 0)),
        ([("Forwarded", 'for="[2001:db8:cafe::17]:4711"')], ("2001:db8:cafe::17", 4711)),
        ([("Forwarded", 'For="192.0.2.60:8080"')], ("192.0.2.60", 8080)),
        # The rightmost address that is not a trusted proxy is the client's.
        ([("X-Forwarded-For", "198.51.100.9, 203.0.113.7, 10.0.0.2")], ("203.0.113.7", 0)),
        ([("X-Forwarded-For", "198.51.100.9"), ("X-Forwarded-For", "10.0.0.2")],
         ("198.51.100.9", 0)),
        ([("Forwarded", "for=198.51.100.9, for=10.0.0.3;by=10.0.0.2")], ("198.51.100.9", 0)),
        # Every hop trusted: the leftmost one.
        ([("X-Forwarded-For", "10.0.0.5, 10.0.0.2")], ("10.0.0.5", 0)),
        # Forwarded wins over X-Forwarded-For.
        ([("X-Forwarded-For", "198.51.100.1"), ("Forwarded", "for=198.51.100.2")],
         ("198.51.100.2", 0)),
        # Nothing to believe: the TCP peer.
        ([], PEER),
        ([("X-Forwarded-For", "")], PEER),
        ([("Forwarded", "for=unknown")], PEER),
        ([("Forwarded", "for=_hidden, for=10.0.0.2")], PEER),
        ([("Forwarded", "proto=https")], PEER),
        ([("Forwarded", "for=192.0.2.1;;")], PEER),
        ([("X-Forwarded-For", "not an address")], PEER),
        ([("X-Forwarded-For", "198.51.100.9, garbage, 10.0.0.2")], PEER),
    ],
)  # fmt: skip
def test_client_address_from_a_trusted_proxy(headers: list[tuple[str, str]], expected: Any) -> None:
    """From a trusted peer, the headers give the client's address, read from the right."""
    assert address(["127.0.0.1", "10.0.0.0/8"], *headers) == expected


def test_headers_from_an_untrusted_peer_are_ignored() -> None:
    """A peer outside trusted_proxies cannot set its address with a header."""
    header = ("X-Forwarded-For", "203.0.113.7")
    assert address(["10.0.0.0/8"], header) == PEER
    assert address([], header) == PEER
    assert address(["127.0.0.1"], header, peer="") == ""  # a Unix socket's peer
    assert address(["unix"], header, peer="") == ("203.0.113.7", 0)
    assert address(["*"], header, peer=("192.0.2.1", 1)) == ("203.0.113.7", 0)
    assert address(["127.0.0.1"], header, peer=("::ffff:127.0.0.1", 1, 0, 0)) == (
        "203.0.113.7",
        0,
    )
    assert address(["127.0.0.1"], header, peer=("fe80::1%eth0", 1, 0, 2)) == (
        "fe80::1%eth0",
        1,
        0,
        2,
    )


def test_forwarded_quoted_strings() -> None:
    """Quoted values may hold separators and escapes."""
    assert _forwarded_for(['for="a,b;c", for="x\\"y"']) == ["a,b;c", 'x"y']


def test_invalid_rules() -> None:
    """trusted_proxies takes addresses, networks, "*" and "unix", in a list."""
    with pytest.raises(ValueError, match="not an address"):
        _TrustedProxies(["localhost"])
    with pytest.raises(ValueError, match="list"):
        _TrustedProxies("127.0.0.1")
    with pytest.raises(ValueError):
        syncws.Server(tell_address, "127.0.0.1", 0, trusted_proxies=["nope"])


def test_server_takes_the_address_from_a_trusted_proxy(
    server: ServerFactory, uri: UriFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """With the TCP peer trusted, remote_address is the forwarded one, also in
    process_request and the log."""
    caplog.set_level(logging.INFO, logger="syncws.server")
    seen = []

    def process_request(ws: syncws.ServerConnection, request: syncws.Request) -> None:
        seen.append(ws.remote_address)

    srv = server(tell_address, trusted_proxies=["127.0.0.1"], process_request=process_request)
    headers = {"X-Forwarded-For": "198.51.100.20, 203.0.113.7"}
    with syncws.connect(uri(srv), additional_headers=headers) as ws:
        assert ws.recv(timeout=TIMEOUT) == "('203.0.113.7', 0)"
    with syncws.connect(
        uri(srv), additional_headers={"Forwarded": 'for="[2001:db8::5]:4711"'}
    ) as ws:
        assert ws.recv(timeout=TIMEOUT) == "('2001:db8::5', 4711)"
    assert seen == [("203.0.113.7", 0), ("2001:db8::5", 4711)]
    assert "connection open from ('203.0.113.7', 0) via ('127.0.0.1'," in caplog.text


@pytest.mark.parametrize("trusted", [None, ["10.0.0.0/8"]])
def test_server_ignores_the_headers_of_an_untrusted_peer(
    server: ServerFactory, uri: UriFactory, trusted: list[str] | None
) -> None:
    """Without trusted_proxies, or from a peer not in it, the header changes nothing."""
    srv = server(tell_address, trusted_proxies=trusted)
    with syncws.connect(uri(srv), additional_headers={"X-Forwarded-For": "203.0.113.7"}) as ws:
        message = ws.recv(timeout=TIMEOUT)
        assert isinstance(message, str)
        assert message.startswith("('127.0.0.1', ")
        assert message == repr(ws.local_address)
