"""Fuzz target: a proxy's answer to ``CONNECT``, read as the client reads it (the
``tunnel=True`` path of ``ResponseParser`` and the interim 1xx answers it skips, in
``syncws.runtime.proxy._ConnectAnswer``).

Input: one byte of settings, then the bytes a proxy sends. Bit 0 set: the proxy closes the
connection after them (the end of the stream is fed too); clear: it keeps the connection
open, and an answer that is not complete yet is no outcome at all. The other bits are
free (seeds leave them clear).

Oracles:

* The stream fed whole, byte by byte and in random chunks gives the same outcome: the
  tunnel open with the same 2xx status, reason and headers, followed by the same bytes
  (what comes after the answer is the tunnel's); the same refusal
  (``InvalidProxyStatus``, with the same response, body included); or the same
  ``InvalidProxyMessage``. Nothing else may be raised.
* An open tunnel's status is 2xx, a refusal's 3xx to 5xx (never an interim 1xx); an open
  tunnel's answer, serialized and read again, is the same.
"""

from __future__ import annotations

import fuzzing

with fuzzing.instrumented():
    from syncws.exceptions import InvalidProxyMessage, InvalidProxyStatus
    from syncws.protocol.http11 import Response
    from syncws.runtime.proxy import _ConnectAnswer

ADDRESS = "proxy.test:3128"
PREFIX = f"invalid answer from proxy {ADDRESS}: "

Outcome = tuple[object, ...]


def fields(response: Response) -> Outcome:
    return response.status_code, response.reason_phrase, response.headers.items()


def read(pieces: list[bytes], eof: bool) -> tuple[Outcome, Response | None]:
    """Feed ``pieces`` one by one (then the end of the stream if ``eof``), as the client
    does, until the answer is complete; return the outcome and the open tunnel's answer."""
    answer = _ConnectAnswer(ADDRESS)
    try:
        for i, piece in enumerate(pieces):
            response = answer.feed(piece)
            if response is not None:
                after = answer.remainder + b"".join(pieces[i + 1 :])
                return ("open", *fields(response), after), response
        if not eof:
            return ("incomplete",), None
        response = answer.feed(b"")
    except InvalidProxyStatus as exc:
        refusal = exc.response
        if not 300 <= refusal.status_code <= 599:
            raise fuzzing.Finding(f"refused with status {refusal.status_code}") from exc
        return ("refused", *fields(refusal), refusal.body), None
    except InvalidProxyMessage as exc:
        return ("invalid", str(exc)), None
    if response is None:
        raise fuzzing.Finding("the end of the stream left the answer undecided")
    return ("open", *fields(response), answer.remainder), response


def one_input(data: bytes) -> str:
    if not data:
        return "empty"
    eof, stream = bool(data[0] & 1), data[1:]
    outcomes: dict[str, Outcome] = {}
    response = None
    for mode, lengths in fuzzing.chunk_plans(data, len(stream)).items():
        outcomes[mode], response = read(fuzzing.split(stream, lengths), eof)
    if len(set(map(repr, outcomes.values()))) != 1:
        raise fuzzing.Finding(f"the answer reads differently by chunking: {outcomes!r}")
    outcome = outcomes["whole"]
    if response is not None:
        if not 200 <= response.status_code <= 299:
            raise fuzzing.Finding(f"tunnel open with status {response.status_code}")
        again, _ = read([response.serialize()], eof=False)
        if again != (*outcome[:4], b""):
            raise fuzzing.Finding(f"an answer does not survive a round trip: {again!r}")
        return f"open {response.status_code} {'with data' if outcome[4] else ''}"
    if outcome[0] == "invalid":
        return f"invalid {str(outcome[1]).removeprefix(PREFIX)[:24]}"
    return " ".join(map(str, outcome[:2]))


DICTIONARY = [
    b"HTTP/1.1 200 Connection established\r\n",
    b"HTTP/1.0 200 OK\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 407 Proxy Authentication Required\r\n",
    b"HTTP/1.1 403 Filtered\r\n",
    b"HTTP/1.1 502 Bad Gateway\r\n",
    b"\r\n",
    b"\r\n\r\n",
    b": ",
    b'Proxy-Authenticate: Basic realm="proxy"\r\n',
    b"Content-Length: 5\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"0\r\n\r\n",
    b"5;ext=1\r\nhello\r\n",
    b"\x16\x03\x01\x00\x05",  # the start of a TLS record, from inside the tunnel
]

TARGET = fuzzing.Target("proxy_response", one_input, DICTIONARY)

if __name__ == "__main__":
    fuzzing.main(TARGET)
