#!/usr/bin/env python
"""An echo server that logs what it does: the standard library's logging, at INFO.

``python examples/logging_setup.py [PORT]`` (default 8765) logs to standard error: the
addresses it listens on, then a line for each connection that opens.
"""

import logging
import sys

import syncws


def echo(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def main() -> None:
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        level=logging.INFO,
    )
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    syncws.serve(echo, "localhost", port)


if __name__ == "__main__":
    main()
