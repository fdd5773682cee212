"""Fuzz target: ``Sec-WebSocket-Extensions`` parsing and negotiation, on both sides.

Input: one byte of client options, one byte of server options (see :func:`client_factory`
and :func:`server_factory`), then header values, one per line (``\\n`` separates them),
decoded as ISO-8859-1 like every header value.

Oracles:

* ``parse_extension_header`` raises nothing but ``InvalidHeader``; what it parses,
  serialized and parsed again, is the same; a value parses as the concatenation of its
  comma-separated elements parsed one by one (RFC 9110 §5.6.1: a list may be split into
  several header lines), empty elements ignored.
* Server side: the values as the client's offer. ``process_request`` raises nothing but
  ``InvalidHandshake``, and ``InvalidHeader`` when a value does not parse. When it
  accepts, a syncws client with the default offer accepts its answer, and both ends
  then exchange compressed messages both ways without error (the windows and context
  takeover that they agreed on match).
* Client side: the values as the server's answer. ``process_response`` raises nothing
  but ``InvalidHandshake``; when it accepts, the extension grants what the offer required
  (RFC 7692 §7.1) and exchanges messages with a server configured as the answer says.
"""

from __future__ import annotations

import random

import fuzzing

with fuzzing.instrumented():
    from syncws.exceptions import InvalidHandshake, InvalidHeader, InvalidMessage
    from syncws.protocol.connection import Protocol
    from syncws.protocol.deflate import (
        ClientPerMessageDeflateFactory,
        PerMessageDeflate,
        ServerPerMessageDeflateFactory,
    )
    from syncws.protocol.events import Fragment, Message
    from syncws.protocol.extensions import Extension
    from syncws.protocol.handshake import accept_key, process_request, process_response
    from syncws.protocol.headers import parse_extension_header, serialize_extension_header
    from syncws.protocol.http11 import Headers, RequestParser, Response

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
CLIENT_SERVER_BITS = (None, 8, 10, 15)
CLIENT_CLIENT_BITS = (None, 8, 12, 15)
SERVER_SERVER_BITS = (12, None, 8, 10)
SERVER_CLIENT_BITS = (None, 8, 9, 15)

_rng = random.Random(7)
# Matches at distances of 260 to 300 bytes: beyond a 256-byte window (8 window bits).
_FAR = b"".join(_rng.randbytes(280) + b"0123456789abcdef" for _ in range(8))
MESSAGES = [
    b"hello hello hello hello hello hello hello hello",
    _FAR,
    b"hello hello hello hello hello hello hello hello",
    bytes(1000),
    _FAR[::-1],
]


def client_factory(options: int) -> ClientPerMessageDeflateFactory:
    """Bit 0: server_no_context_takeover, bit 1: client_no_context_takeover, bits 2-3:
    server_max_window_bits (none, 8, 10, 15), bits 4-5: client_max_window_bits (none, 8,
    12, 15), bit 6: min_size 0."""
    return ClientPerMessageDeflateFactory(
        server_no_context_takeover=bool(options & 1),
        client_no_context_takeover=bool(options & 2),
        server_max_window_bits=CLIENT_SERVER_BITS[options >> 2 & 3],
        client_max_window_bits=CLIENT_CLIENT_BITS[options >> 4 & 3],
        min_size=0 if options & 0x40 else 32,
    )


def server_factory(options: int) -> ServerPerMessageDeflateFactory:
    """Bit 0: server_no_context_takeover, bit 1: client_no_context_takeover, bits 2-3:
    server_max_window_bits (12, none, 8, 10), bits 4-5: client_max_window_bits (none, 8,
    9, 15), bit 6: min_size 0."""
    return ServerPerMessageDeflateFactory(
        server_no_context_takeover=bool(options & 1),
        client_no_context_takeover=bool(options & 2),
        server_max_window_bits=SERVER_SERVER_BITS[options >> 2 & 3],
        client_max_window_bits=SERVER_CLIENT_BITS[options >> 4 & 3],
        min_size=0 if options & 0x40 else 32,
    )


def parse(value: str) -> object:
    """The parse of a value, or ``"invalid"``."""
    try:
        return parse_extension_header(value)
    except InvalidHeader:
        return "invalid"


def check_grammar(value: str) -> bool:
    """The oracles of the parser on one value; return whether it parses."""
    parsed = parse(value)
    if parsed != "invalid":
        assert isinstance(parsed, list)
        try:
            again = parse(serialize_extension_header(parsed))
        except ValueError as exc:
            raise fuzzing.Finding(f"cannot serialize what was parsed: {parsed!r}") from exc
        if again != parsed:
            raise fuzzing.Finding(f"no round trip: {value!r} -> {parsed!r} -> {again!r}")
    elements = [element for element in value.split(",") if element.strip(" \t")]
    pieces = [parse(element) for element in elements]
    if not elements or "invalid" in pieces:
        joined: object = "invalid"
    else:
        joined = [item for piece in pieces for item in piece]  # type: ignore[attr-defined]
    if joined != parsed:
        raise fuzzing.Finding(f"{value!r} parses as {parsed!r}, its elements as {joined!r}")
    return parsed != "invalid"


def exchange(client_extension: Extension, server_extension: Extension) -> None:
    """Send :data:`MESSAGES` both ways between ends with these extensions."""
    client = Protocol(is_client=True, extensions=[client_extension], max_size=None)
    server = Protocol(is_client=False, extensions=[server_extension], max_size=None)
    for sender, receiver in ((client, server), (server, client), (client, server)):
        for message in MESSAGES:
            sender.send_binary(message)
        sender.send_text(b"frag", fin=False)
        sender.send_continuation(b"mented " * 20, fin=True)
        events = receiver.receive_data(sender.data_to_send())
        expected: list[Message | Fragment] = [Message(m) for m in MESSAGES]
        expected += [Fragment("frag", False), Fragment("mented " * 20, True)]
        if receiver.exc is not None or events != expected:
            raise fuzzing.Finding(
                f"{client_extension} and {server_extension} cannot talk: {receiver.exc!r}"
            )


def check_server(options: tuple[int, int], values: list[str]) -> str:
    lines = "".join(f"Sec-WebSocket-Extensions: {value}\r\n" for value in values)
    wire = (
        "GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{lines}\r\n"
    ).encode("latin-1")
    try:
        request = RequestParser().feed(wire)
    except InvalidMessage:
        return "not a header"
    assert request is not None
    values = request.headers.get_all("Sec-WebSocket-Extensions")  # as the server sees them
    valid = all(parse(value) != "invalid" for value in values)
    try:
        response, _, extensions = process_request(request, extensions=[server_factory(options[1])])
    except InvalidHandshake as exc:
        if valid or not isinstance(exc, InvalidHeader):
            raise fuzzing.Finding(f"the server refuses a valid offer: {exc!r}") from exc
        return "server: invalid"
    if not valid:
        raise fuzzing.Finding(f"the server accepts invalid offers: {values!r}")
    try:
        _, accepted = process_response(
            response, key=KEY, extensions=[ClientPerMessageDeflateFactory()]
        )
    except InvalidHandshake as exc:
        raise fuzzing.Finding(f"the client refuses the server's answer: {exc!r}") from exc
    if len(accepted) != len(extensions):
        raise fuzzing.Finding(f"client {accepted!r} and server {extensions!r} disagree")
    if extensions:
        exchange(accepted[0], extensions[0])
    return f"server: {len(extensions)}"


def check_client(options: tuple[int, int], values: list[str]) -> str:
    headers = Headers([("Upgrade", "websocket"), ("Connection", "Upgrade")])
    headers["Sec-WebSocket-Accept"] = accept_key(KEY)
    try:
        for value in values:
            headers["Sec-WebSocket-Extensions"] = value
    except ValueError:
        return "client: not a header value"
    factory = client_factory(options[0])
    try:
        _, accepted = process_response(
            Response(101, "Switching Protocols", headers), key=KEY, extensions=[factory]
        )
    except InvalidHandshake as exc:
        return f"client: {type(exc).__name__}"
    if not accepted:
        return "client: 0"
    (extension,) = accepted
    assert isinstance(extension, PerMessageDeflate)
    if factory.server_no_context_takeover and not extension.remote_no_context_takeover:
        raise fuzzing.Finding(f"accepted without server_no_context_takeover: {values!r}")
    bits = factory.server_max_window_bits
    if bits is not None and extension.remote_max_window_bits > bits:
        raise fuzzing.Finding(f"accepted a larger server window than required: {values!r}")
    bits = factory.client_max_window_bits
    if bits is not None and extension.local_max_window_bits > bits:
        raise fuzzing.Finding(f"compresses with a larger window than offered: {values!r}")
    if factory.client_no_context_takeover and not extension.local_no_context_takeover:
        raise fuzzing.Finding(f"keeps its context against its offer: {values!r}")
    mirror = PerMessageDeflate(
        remote_no_context_takeover=extension.local_no_context_takeover,
        local_no_context_takeover=extension.remote_no_context_takeover,
        remote_max_window_bits=extension.local_max_window_bits,
        local_max_window_bits=extension.remote_max_window_bits,
    )
    exchange(extension, mirror)
    return "client: 1"


def one_input(data: bytes) -> str:
    if len(data) < 2:
        return "short"
    options = (data[0], data[1])
    values = data[2:].decode("latin-1").split("\n")
    valid = [check_grammar(value) for value in values]
    server = check_server(options, values)
    client = check_client(options, values)
    return f"{sum(valid)}/{len(valid)} {server} {client}"


DICTIONARY = [
    b"permessage-deflate",
    b"x-webkit-deflate-frame",
    b"; ",
    b", ",
    b"=",
    b'"',
    b"\\",
    b"\t",
    b"\n",
    b"server_no_context_takeover",
    b"client_no_context_takeover",
    b"server_max_window_bits=8",
    b"client_max_window_bits",
    b"client_max_window_bits=15",
    b'"10"',
    b"08",
    b"16",
]

TARGET = fuzzing.Target("extensions", one_input, DICTIONARY)

if __name__ == "__main__":
    fuzzing.main(TARGET)
