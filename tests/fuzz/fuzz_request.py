"""Fuzz target: the handshake request parser (``RequestParser``) and the server's checks.

Input: one byte of limits, then the bytes a client sends. The low two bits of the first
byte pick ``max_line`` (8192, 16, 40, 200), the next two ``max_num_headers`` (128, 0, 2,
6): small limits reach the 414 and 431 answers with small inputs.

Oracles:

* The stream fed whole (``RequestParser.feed`` takes its one-pass fast path), byte by
  byte and in random chunks gives the same request (path, headers, bytes after it) or the
  same error (``InvalidMessage``, with the same status, text and headers): the parser is
  documented to raise nothing else.
* A parsed request, serialized and parsed again, is the same request.
* The server's validation (``process_request``, with permessage-deflate and two
  subprotocols) raises nothing but ``InvalidHandshake``; when it accepts, its ``101``
  serializes, parses back as the same response, and the syncws client accepts it.
"""

from __future__ import annotations

import fuzzing

with fuzzing.instrumented():
    from syncws.exceptions import InvalidHandshake, InvalidMessage
    from syncws.protocol.deflate import (
        ClientPerMessageDeflateFactory,
        ServerPerMessageDeflateFactory,
    )
    from syncws.protocol.handshake import process_request, process_response
    from syncws.protocol.http11 import Request, RequestParser, ResponseParser

MAX_LINES = (8192, 16, 40, 200)
MAX_HEADERS = (128, 0, 2, 6)
SUBPROTOCOLS = ["chat", "superchat"]

Outcome = tuple[object, ...]


def limits(config: int) -> dict[str, int]:
    """The parser's limits that the first byte of an input selects."""
    return {"max_line": MAX_LINES[config & 3], "max_num_headers": MAX_HEADERS[config >> 2 & 3]}


def parse(pieces: list[bytes], **limits: int) -> tuple[Outcome, Request | None]:
    """Feed ``pieces`` one by one, then the end of the stream if the request is incomplete."""
    parser = RequestParser(**limits)
    try:
        for i, piece in enumerate(pieces):
            request = parser.feed(piece)
            if request is not None:
                rest = parser.remainder + b"".join(pieces[i + 1 :])
                return ("request", request.path, request.headers.items(), rest), request
        parser.feed_eof()
    except InvalidMessage as exc:
        return ("error", exc.status_code, str(exc), exc.headers), None
    raise fuzzing.Finding("feed_eof() returned instead of raising on an incomplete request")


def one_input(data: bytes) -> str:
    if not data:
        return "empty"
    config, stream = data[0], data[1:]
    lim = limits(config)
    outcomes: dict[str, Outcome] = {}
    request = None
    for mode, lengths in fuzzing.chunk_plans(data, len(stream)).items():
        outcomes[mode], parsed = parse(fuzzing.split(stream, lengths), **lim)
        request = request or parsed
    if len(set(map(repr, outcomes.values()))) != 1:
        raise fuzzing.Finding(f"the request parses differently by chunking: {outcomes!r}")
    outcome = outcomes["whole"]
    if request is None:
        return f"error {outcome[1]} {str(outcome[2])[:24]}"

    # Round trip: what we serialize, we parse back the same. The serializer may write a
    # line one byte longer than it came ("Name:value" gets a space): relax the limits.
    again, _ = parse(
        [request.serialize()], max_line=lim["max_line"] + 2, max_num_headers=lim["max_num_headers"]
    )
    if again[:3] != outcome[:3] or again[3] != b"":
        raise fuzzing.Finding(f"a request does not survive a round trip: {outcome!r} {again!r}")

    # The server's checks, and the client's view of the server's answer.
    try:
        response, subprotocol, extensions = process_request(
            request,
            available_subprotocols=SUBPROTOCOLS,
            extensions=[ServerPerMessageDeflateFactory()],
        )
    except InvalidHandshake as exc:
        return f"rejected {exc.status_code} {type(exc).__name__}"
    wire = response.serialize()
    parser = ResponseParser()
    parsed_response = parser.feed(wire)
    if parsed_response is None or parsed_response != response or parser.remainder:
        raise fuzzing.Finding(f"the 101 does not parse back: {wire!r}")
    try:
        chosen, accepted = process_response(
            parsed_response,
            key=request.headers["Sec-WebSocket-Key"],
            subprotocols=SUBPROTOCOLS,
            extensions=[ClientPerMessageDeflateFactory()],
        )
    except InvalidHandshake as exc:
        raise fuzzing.Finding(f"the syncws client refuses the syncws server's 101: {exc}") from exc
    if chosen != subprotocol or [e.name for e in accepted] != [e.name for e in extensions]:
        raise fuzzing.Finding(f"client and server disagree: {chosen} {accepted} {extensions}")
    return f"accepted {subprotocol} {len(extensions)}"


DICTIONARY = [
    b"GET / HTTP/1.1\r\n",
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b": ",
    b" ",
    b"\t",
    b"Host: example.com\r\n",
    b"Upgrade: websocket\r\n",
    b"Connection: Upgrade\r\n",
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    b"Sec-WebSocket-Version: 13\r\n",
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
    b"Sec-WebSocket-Protocol: chat, superchat\r\n",
    b"Content-Length: 0\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"HTTP/1.0",
    b"POST",
    b"\xe9",
    b"\x7f",
    b"\x00",
]

TARGET = fuzzing.Target("request", one_input, DICTIONARY)

if __name__ == "__main__":
    fuzzing.main(TARGET)
