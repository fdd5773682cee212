#!/usr/bin/env python
"""Send messages to a WebSocket server, print the answers, then why the connection closed.

``python examples/why_closed.py URI [MESSAGE ...]``: after the messages, it waits for
answers until the connection closes, or for 5 s after the last one, then closes itself.
``ConnectionClosed`` says which close frames went each way: ``received 1009 (message too
big) ...; then sent 1009 ...`` means the peer closed first, with that code and reason.
"""

from __future__ import annotations

import sys

import syncws


def talk(uri: str, messages: list[str]) -> str:
    """Send ``messages``, print what comes back; return how the connection ended."""
    with syncws.connect(uri) as ws:
        try:
            for message in messages:
                ws.send(message)
            while True:
                print("<", ws.recv(timeout=5))
        except TimeoutError:
            return "still open after 5 s without a message: closed it with 1000"
        except syncws.ConnectionClosed as exc:
            # exc.rcvd and exc.sent: the close frames received and sent (Close objects
            # with .code and .reason), None where there was none; str(exc) tells both.
            # ws.close_code is the code received: 1006 when no close frame came.
            return f"closed: {exc} (close_code={ws.close_code})"


if __name__ == "__main__":
    print(talk(sys.argv[1], sys.argv[2:]))
