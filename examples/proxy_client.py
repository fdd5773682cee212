#!/usr/bin/env python
"""Send a message through a proxy and print the answer.

``python examples/proxy_client.py URI [PROXY]``, where PROXY is a proxy's URL, or ``none``
for a direct connection. Without PROXY, the proxy comes from the environment
(``https_proxy`` for ``wss://``, ``http_proxy`` for ``ws://``, then ``all_proxy``;
``no_proxy`` lists the hosts to reach directly).
"""

from __future__ import annotations

import sys

import syncws


def main() -> None:
    uri = sys.argv[1]
    # True (the default): from the environment; None: no proxy; else the proxy's URL.
    proxy: str | bool | None = True
    if len(sys.argv) > 2:
        proxy = None if sys.argv[2] == "none" else sys.argv[2]
    with syncws.connect(uri, proxy=proxy) as ws:
        ws.send("Hello")
        print("<", ws.recv())


if __name__ == "__main__":
    main()
