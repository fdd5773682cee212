"""Fuzz target: the handshake response parser (``ResponseParser``) and the client's checks.

Input: one byte of settings, then the bytes a server sends. Bits 0-1 pick ``max_line``
(8192, 16, 40, 200), bits 2-3 ``max_num_headers`` (128, 0, 2, 6), bits 4-5 ``max_body``
(1 MiB, 0, 16, 1000), bits 6-7 the client's permessage-deflate offer (none, the default
one, one requiring ``server_no_context_takeover`` and ``server_max_window_bits=10``, one
with ``client_max_window_bits=9``). The client's key is the one of RFC 6455 §1.3, so
seeds carry its ``Sec-WebSocket-Accept``.

Oracles:

* The stream fed whole, byte by byte and in random chunks, then the end of the stream,
  gives the same response (status, reason, headers, body, bytes after it) or the same
  ``InvalidMessage`` (the only exception the parser is documented to raise).
* A response without a body (1xx, 204, 304), serialized and parsed again, is the same.
* The client's checks (``process_response``) raise nothing but ``InvalidHandshake``; what
  they accept grants what the offer required (RFC 7692 §7.1).
"""

from __future__ import annotations

import fuzzing

with fuzzing.instrumented():
    from syncws.exceptions import InvalidHandshake, InvalidMessage
    from syncws.protocol.deflate import ClientPerMessageDeflateFactory, PerMessageDeflate
    from syncws.protocol.handshake import process_response
    from syncws.protocol.http11 import Response, ResponseParser

MAX_LINES = (8192, 16, 40, 200)
MAX_HEADERS = (128, 0, 2, 6)
MAX_BODIES = (2**20, 0, 16, 1000)
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3; its accept is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
SUBPROTOCOLS = ["chat"]

Outcome = tuple[object, ...]


def factories(config: int) -> list[ClientPerMessageDeflateFactory]:
    """The client's extension factories that bits 6-7 of the first byte select."""
    variant = config >> 6 & 3
    if variant == 0:
        return []
    if variant == 1:
        return [ClientPerMessageDeflateFactory()]
    if variant == 2:
        return [
            ClientPerMessageDeflateFactory(
                server_no_context_takeover=True, server_max_window_bits=10
            )
        ]
    return [ClientPerMessageDeflateFactory(client_max_window_bits=9)]


def parse(pieces: list[bytes], **limits: int) -> tuple[Outcome, Response | None]:
    """Feed ``pieces`` one by one, then the end of the stream if the response is incomplete."""
    parser = ResponseParser(**limits)
    fed = 0
    try:
        response = None
        while response is None and fed < len(pieces):
            response = parser.feed(pieces[fed])
            fed += 1
        if response is None:
            response = parser.feed_eof()
    except InvalidMessage as exc:
        return ("error", str(exc)), None
    rest = parser.remainder + b"".join(pieces[fed:])
    fields = (response.status_code, response.reason_phrase, response.headers.items())
    return ("response", *fields, response.body, rest), response


def one_input(data: bytes) -> str:
    if not data:
        return "empty"
    config, stream = data[0], data[1:]
    limits = {
        "max_line": MAX_LINES[config & 3],
        "max_num_headers": MAX_HEADERS[config >> 2 & 3],
        "max_body": MAX_BODIES[config >> 4 & 3],
    }
    outcomes: dict[str, Outcome] = {}
    response = None
    for mode, lengths in fuzzing.chunk_plans(data, len(stream)).items():
        outcomes[mode], parsed = parse(fuzzing.split(stream, lengths), **limits)
        response = response or parsed
    if len(set(map(repr, outcomes.values()))) != 1:
        raise fuzzing.Finding(f"the response parses differently by chunking: {outcomes!r}")
    if response is None:
        return f"error {str(outcomes['whole'][1])[:24]}"

    if response.status_code < 200 or response.status_code in (204, 304):
        limits["max_line"] += 2  # "Name:value" is serialized "Name: value"
        again, _ = parse([response.serialize()], **limits)
        if again[1:4] != outcomes["whole"][1:4]:
            raise fuzzing.Finding(f"a response does not survive a round trip: {again!r}")

    offered = factories(config)
    try:
        subprotocol, extensions = process_response(
            response, key=KEY, subprotocols=SUBPROTOCOLS, extensions=offered
        )
    except InvalidHandshake as exc:
        return f"refused {type(exc).__name__} {str(exc)[:20]}"
    if subprotocol not in (None, *SUBPROTOCOLS):
        raise fuzzing.Finding(f"accepted a subprotocol that was not offered: {subprotocol}")
    if len(extensions) > len(offered):
        raise fuzzing.Finding(f"accepted more extensions than offered: {extensions}")
    for factory, extension in zip(offered, extensions, strict=False):
        assert isinstance(extension, PerMessageDeflate)
        if factory.server_no_context_takeover and not extension.remote_no_context_takeover:
            raise fuzzing.Finding("accepted an answer without server_no_context_takeover")
        limit = factory.server_max_window_bits
        if limit is not None and extension.remote_max_window_bits > limit:
            raise fuzzing.Finding("accepted a larger server window than required")
        limit = factory.client_max_window_bits
        if limit is not None and extension.local_max_window_bits > limit:
            raise fuzzing.Finding("compresses with a larger window than offered")
    return f"accepted {subprotocol} {extensions}"


DICTIONARY = [
    b"HTTP/1.1 101 Switching Protocols\r\n",
    b"HTTP/1.0 ",
    b"\r\n",
    b"\r\n\r\n",
    b": ",
    b"Upgrade: websocket\r\n",
    b"Connection: Upgrade\r\n",
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
    b"Sec-WebSocket-Extensions: permessage-deflate\r\n",
    b"; server_no_context_takeover",
    b"; client_no_context_takeover",
    b"; server_max_window_bits=10",
    b"; client_max_window_bits=9",
    b"Sec-WebSocket-Protocol: chat\r\n",
    b"Content-Length: 5\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"0\r\n\r\n",
    b"5;ext=1\r\nhello\r\n",
    b"\x81\x05hello",
]

TARGET = fuzzing.Target("response", one_input, DICTIONARY)

if __name__ == "__main__":
    fuzzing.main(TARGET)
