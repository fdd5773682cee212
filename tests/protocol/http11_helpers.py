"""Helpers shared by the tests of syncws.protocol.http11.

``parse_request`` and ``parse_response`` feed bytes to a fresh parser at once; ``SWITCHING``
is a server's 101 response, whole.
"""

from __future__ import annotations

from syncws.protocol.http11 import Request, RequestParser, Response, ResponseParser


def parse_request(data: bytes) -> Request | None:
    return RequestParser().feed(data)


def parse_response(data: bytes, *, eof: bool = False) -> Response | None:
    parser = ResponseParser()
    response = parser.feed(data)
    if eof:
        return parser.feed_eof()
    return response


SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"\r\n"
)
