#!/usr/bin/env python
"""Send a message through a proxy and print the answer, or why the proxy failed.

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
    try:
        with syncws.connect(uri, proxy=proxy, open_timeout=10) as ws:
            ws.send("Hello")
            print("<", ws.recv(timeout=10))
    except syncws.InvalidProxyStatus as exc:  # an HTTP proxy: 403, 407, 502...
        sys.exit(f"The proxy refused the tunnel: HTTP {exc.response.status_code}.")
    except syncws.ProxyAuthenticationError as exc:  # a SOCKS5 proxy
        sys.exit(f"Check the proxy's username and password: {exc}.")
    except syncws.ProxyError as exc:  # any other refusal, or an answer that makes no sense
        sys.exit(f"The proxy failed: {exc}.")
    except TimeoutError:  # the proxy, the tunnel, TLS and the handshake took 10 s in all
        sys.exit("No connection within 10 seconds.")
    except OSError as exc:  # the message names the proxy when it is the proxy
        sys.exit(f"Cannot connect: {exc}.")


if __name__ == "__main__":
    main()
