"""Tests of negotiating permessage-deflate (RFC 7692) with syncws.protocol.deflate.

Factory by factory, with tables of offers and answers: what the server accepts and answers,
what the client offers and which answers it honours or rejects; then whole handshakes; then
the validation of the factories' and the extension's options, the compression option
helpers, and the negotiated parameters as the extension shows them.
"""

from __future__ import annotations

import zlib

import pytest
from deflate_helpers import URI, handshake, pair

from syncws.exceptions import NegotiationError
from syncws.protocol.client import ClientProtocol
from syncws.protocol.deflate import (
    SERVER_MAX_WINDOW_BITS,
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
    client_extensions,
    server_extensions,
)
from syncws.protocol.events import State
from syncws.protocol.server import ServerProtocol


def negotiated_parameters(extension):
    """What the tables of negotiations compare: (remote_no_context_takeover,
    local_no_context_takeover, remote_max_window_bits, local_max_window_bits)."""
    return (
        extension.remote_no_context_takeover,
        extension.local_no_context_takeover,
        extension.remote_max_window_bits,
        extension.local_max_window_bits,
    )


# Server negotiation.


@pytest.mark.parametrize(
    ("options", "offer", "answer", "negotiated"),
    [
        # (factory options, offer, answer, (remote_nct, local_nct, remote_bits, local_bits))
        ({}, [], [("server_max_window_bits", "12")], (False, False, 15, 12)),
        (
            {},
            [("server_no_context_takeover", None)],
            [("server_no_context_takeover", None), ("server_max_window_bits", "12")],
            (False, True, 15, 12),
        ),
        (
            {},
            [("client_no_context_takeover", None)],
            [("client_no_context_takeover", None), ("server_max_window_bits", "12")],
            (True, False, 15, 12),
        ),
        (
            {},
            [("server_max_window_bits", "10")],
            [("server_max_window_bits", "10")],
            (False, False, 15, 10),
        ),
        (
            {},
            [("server_max_window_bits", "14")],
            [("server_max_window_bits", "12")],
            (False, False, 15, 12),
        ),
        (
            {},
            [("server_max_window_bits", "8")],
            [("server_max_window_bits", "8")],
            (False, False, 15, 8),
        ),
        (
            {},
            [("client_max_window_bits", None)],
            [("server_max_window_bits", "12")],
            (False, False, 15, 12),
        ),
        (
            {},
            [("client_max_window_bits", "10")],
            [("server_max_window_bits", "12"), ("client_max_window_bits", "10")],
            (False, False, 10, 12),
        ),
        (
            {"client_max_window_bits": 11},
            [("client_max_window_bits", None)],
            [("server_max_window_bits", "12"), ("client_max_window_bits", "11")],
            (False, False, 11, 12),
        ),
        (
            {"client_max_window_bits": 11},
            [("client_max_window_bits", "9")],
            [("server_max_window_bits", "12"), ("client_max_window_bits", "9")],
            (False, False, 9, 12),
        ),
        # Without the client's parameter, the server can't limit the client's window.
        (
            {"client_max_window_bits": 11},
            [],
            [("server_max_window_bits", "12")],
            (False, False, 15, 12),
        ),
        ({"server_max_window_bits": None}, [], [], (False, False, 15, 15)),
        (
            {"server_max_window_bits": None},
            [("server_max_window_bits", "9")],
            [("server_max_window_bits", "9")],
            (False, False, 15, 9),
        ),
        (
            {"server_no_context_takeover": True, "client_no_context_takeover": True},
            [],
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "12"),
            ],
            (True, True, 15, 12),
        ),
        (
            {},
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "15"),
                ("client_max_window_bits", "15"),
            ],
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "12"),
                ("client_max_window_bits", "15"),
            ],
            (True, True, 15, 12),
        ),
    ],
)
def test_server_accepts_offer(options, offer, answer, negotiated):
    """The server answers an offer with echoed flags and the smaller window bits."""
    factory = ServerPerMessageDeflateFactory(**options)
    params, extension = factory.process_request_params(offer, [])
    assert params == answer
    assert negotiated_parameters(extension) == negotiated


@pytest.mark.parametrize(
    "offer",
    [
        [("unknown", None)],
        [("server_no_context_takeover", None), ("server_no_context_takeover", None)],
        [("client_max_window_bits", None), ("client_max_window_bits", "10")],
        [("server_no_context_takeover", "1")],
        [("client_no_context_takeover", "yes")],
        [("server_max_window_bits", None)],
        [("server_max_window_bits", "7")],
        [("server_max_window_bits", "16")],
        [("server_max_window_bits", "010")],
        [("server_max_window_bits", "abc")],
        [("client_max_window_bits", "0")],
        [("client_max_window_bits", "16")],
    ],
)
def test_server_declines_invalid_offer(offer):
    """Unknown, repeated or malformed parameters decline the offer (RFC 7692 §5)."""
    with pytest.raises(NegotiationError):
        ServerPerMessageDeflateFactory().process_request_params(offer, [])


def test_server_declines_second_offer_once_accepted():
    """Only one permessage-deflate offer is accepted per connection."""
    factory = ServerPerMessageDeflateFactory()
    _, extension = factory.process_request_params([], [])
    with pytest.raises(NegotiationError, match="already"):
        factory.process_request_params([], [extension])


@pytest.mark.parametrize(
    ("header", "answer"),
    [
        ("permessage-deflate", "permessage-deflate; server_max_window_bits=12"),
        (
            'permessage-deflate; client_max_window_bits="10"',
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10",
        ),
        # The first offer is declined; the fallback is accepted.
        (
            "permessage-deflate; foo, permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12",
        ),
        ("permessage-deflate; server_max_window_bits=99", None),
        ("x-unknown, permessage-deflate", "permessage-deflate; server_max_window_bits=12"),
    ],
)
def test_server_handshake_answers(header, answer):
    """A whole handshake answers the first acceptable offer, or none."""
    server = ServerProtocol(extensions=server_extensions("deflate"))
    client = ClientProtocol(URI)
    request = client.connect()
    request.headers["Sec-WebSocket-Extensions"] = header
    client.send_request(request)
    (event,) = server.receive_data(client.data_to_send())
    response = server.accept(event.request)
    server.send_response(response)
    assert response.status_code == 101
    assert response.headers.get("Sec-WebSocket-Extensions") == answer
    assert len(server.extensions) == (answer is not None)


# Client negotiation.


@pytest.mark.parametrize(
    ("options", "offer"),
    [
        ({}, [("client_max_window_bits", None)]),
        ({"client_max_window_bits": 10}, [("client_max_window_bits", "10")]),
        (
            {
                "server_no_context_takeover": True,
                "client_no_context_takeover": True,
                "server_max_window_bits": 11,
            },
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "11"),
                ("client_max_window_bits", None),
            ],
        ),
    ],
)
def test_client_offer(options, offer):
    """The client's offer carries its options and always client_max_window_bits."""
    assert ClientPerMessageDeflateFactory(**options).get_request_params() == offer


@pytest.mark.parametrize(
    ("options", "answer", "negotiated"),
    [
        ({}, [], (False, False, 15, 15)),
        ({}, [("server_max_window_bits", "12")], (False, False, 12, 15)),
        ({}, [("client_max_window_bits", "8")], (False, False, 15, 8)),
        ({}, [("server_no_context_takeover", None)], (True, False, 15, 15)),
        ({}, [("client_no_context_takeover", None)], (False, True, 15, 15)),
        ({"client_no_context_takeover": True}, [], (False, True, 15, 15)),
        ({"client_max_window_bits": 10}, [], (False, False, 15, 10)),
        ({"client_max_window_bits": 10}, [("client_max_window_bits", "9")], (False, False, 15, 9)),
        (
            {"server_max_window_bits": 10, "server_no_context_takeover": True},
            [("server_no_context_takeover", None), ("server_max_window_bits", "9")],
            (True, False, 9, 15),
        ),
    ],
)
def test_client_accepts_answer(options, answer, negotiated):
    """The client honours the server's answer."""
    factory = ClientPerMessageDeflateFactory(**options)
    extension = factory.process_response_params(answer, [])
    assert negotiated_parameters(extension) == negotiated


@pytest.mark.parametrize(
    ("options", "answer"),
    [
        ({}, [("unknown", None)]),
        ({}, [("server_max_window_bits", "10"), ("server_max_window_bits", "10")]),
        ({}, [("server_no_context_takeover", "x")]),
        ({}, [("client_max_window_bits", None)]),
        ({}, [("server_max_window_bits", None)]),
        ({}, [("server_max_window_bits", "16")]),
        ({}, [("client_max_window_bits", "09")]),
        ({"server_no_context_takeover": True}, []),
        ({"server_max_window_bits": 10}, []),
        ({"server_max_window_bits": 10}, [("server_max_window_bits", "11")]),
        ({"client_max_window_bits": 10}, [("client_max_window_bits", "11")]),
    ],
)
def test_client_rejects_answer(options, answer):
    """An invalid answer, or one that doesn't honour the offer, fails the handshake."""
    with pytest.raises(NegotiationError):
        ClientPerMessageDeflateFactory(**options).process_response_params(answer, [])


def test_client_rejects_second_acceptance():
    """A server can't accept permessage-deflate twice."""
    factory = ClientPerMessageDeflateFactory()
    extension = factory.process_response_params([], [])
    with pytest.raises(NegotiationError, match="already"):
        factory.process_response_params([], [extension])


def test_client_handshake_fails_on_invalid_answer():
    """A 101 with a bad permessage-deflate answer fails the client's handshake."""
    client = ClientProtocol(URI, extensions=client_extensions("deflate"))
    server = ServerProtocol()
    client.send_request(client.connect())
    (event,) = server.receive_data(client.data_to_send())
    response = server.accept(event.request)
    response.headers["Sec-WebSocket-Extensions"] = "permessage-deflate; server_max_window_bits"
    server.send_response(response)
    client.receive_data(server.data_to_send())
    assert isinstance(client.handshake_exc, NegotiationError)
    assert client.state is State.CLOSED


def test_client_without_answer_runs_uncompressed():
    """A server that ignores the offer gets an uncompressed connection."""
    client, server = (
        ClientProtocol(URI, extensions=client_extensions("deflate")),
        ServerProtocol(extensions=server_extensions(None)),
    )
    handshake(client, server)
    assert client.extensions == server.extensions == []
    assert "Sec-WebSocket-Extensions" not in client.response.headers


# Options.


@pytest.mark.parametrize(
    "options",
    [
        {"server_max_window_bits": 7},
        {"server_max_window_bits": 16},
        {"client_max_window_bits": 0},
        {"compress_level": 10},
        {"compress_level": -2},
        {"mem_level": 0},
        {"mem_level": 10},
        {"min_size": -1},
    ],
)
@pytest.mark.parametrize("cls", [ServerPerMessageDeflateFactory, ClientPerMessageDeflateFactory])
def test_factory_options_are_validated(cls, options):
    """Out-of-range options raise ValueError."""
    with pytest.raises(ValueError):
        cls(**options)


@pytest.mark.parametrize(
    "options", [{"remote_max_window_bits": 16}, {"local_max_window_bits": 7}, {"mem_level": 0}]
)
def test_extension_options_are_validated(options):
    """Out-of-range extension settings raise ValueError."""
    with pytest.raises(ValueError):
        PerMessageDeflate(**options)


def test_compression_option_helpers():
    """compression="deflate" builds one factory per side, None none, others fail."""
    (server_factory,) = server_extensions("deflate")
    (client_factory,) = client_extensions("deflate")
    assert server_factory.server_max_window_bits == SERVER_MAX_WINDOW_BITS
    assert client_factory.name == server_factory.name == "permessage-deflate"
    assert server_extensions(None) == client_extensions(None) == []
    with pytest.raises(ValueError, match="deflate"):
        server_extensions("gzip")
    with pytest.raises(ValueError, match="deflate"):
        client_extensions("br")


def test_extension_helpers_keep_a_given_deflate_factory():
    """A permessage-deflate factory among extensions replaces the default one, whatever
    compression says; other factories come first, in their order, then the default."""
    custom = ServerPerMessageDeflateFactory(server_max_window_bits=9)
    assert server_extensions("deflate", [custom]) == [custom]
    assert server_extensions(None, [custom]) == [custom]
    other = type("Other", (), {"name": "x-other", "process_request_params": print})()
    first, default = server_extensions("deflate", (other,))
    assert first is other and isinstance(default, ServerPerMessageDeflateFactory)
    client = ClientPerMessageDeflateFactory(client_max_window_bits=10)
    assert client_extensions("deflate", [client]) == [client]
    assert client_extensions(None, None) == []


def test_extension_helpers_refuse_factories_of_the_other_side():
    """A client factory given to a server (or the other way round), or a factory that is
    not in a list, raises TypeError at once."""
    with pytest.raises(TypeError, match="server extension factories"):
        server_extensions("deflate", [ClientPerMessageDeflateFactory()])
    with pytest.raises(TypeError, match="client extension factories"):
        client_extensions(None, [ServerPerMessageDeflateFactory()])
    with pytest.raises(TypeError, match="must be a list"):
        client_extensions(None, ClientPerMessageDeflateFactory())


def test_compress_settings_is_websockets_spelling():
    """compress_settings={"level": ..., "memLevel": ...} sets compress_level and mem_level,
    which the negotiated extension then compresses with; other keys raise ValueError."""
    factory = ClientPerMessageDeflateFactory(compress_settings={"level": 1, "memLevel": 4})
    assert (factory.compress_level, factory.mem_level) == (1, 4)
    extension = factory.process_response_params([], [])
    assert (extension.compress_level, extension.mem_level) == (1, 4)
    with pytest.raises(ValueError, match="not 'strategy'"):
        ServerPerMessageDeflateFactory(compress_settings={"strategy": zlib.Z_FILTERED})


def test_repr_shows_negotiated_parameters():
    """The extension's repr shows what was negotiated."""
    extension = PerMessageDeflate(local_max_window_bits=12)
    assert repr(extension) == (
        "PerMessageDeflate(remote_no_context_takeover=False, local_no_context_takeover=False, "
        "remote_max_window_bits=15, local_max_window_bits=12)"
    )


def test_server_response_headers_negotiate_default_extension():
    """The default server factory answers the default client offer with 12 window bits."""
    client, server = pair()
    assert server.response.headers["Sec-WebSocket-Extensions"] == (
        "permessage-deflate; server_max_window_bits=12"
    )
    (client_extension,) = client.extensions
    (server_extension,) = server.extensions
    assert client_extension.remote_max_window_bits == server_extension.local_max_window_bits == 12
    assert client_extension.local_max_window_bits == server_extension.remote_max_window_bits == 15
