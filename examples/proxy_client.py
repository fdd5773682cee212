#!/usr/bin/env python
"""Send a message through a proxy and print the answer, or why the proxy failed.

Usage::

    python examples/proxy_client.py URI [PROXY]

    python examples/proxy_client.py ws://localhost:8765/ http://alice:s3cret@proxy:3128
    python examples/proxy_client.py wss://example.com/feed socks5h://127.0.0.1:1080
    https_proxy=http://[::1]:3128 python examples/proxy_client.py wss://example.com/feed

Without PROXY, the proxy comes from the environment, as curl and urllib read it.
"""

import sys

import syncws

uri = sys.argv[1]
# True: from the environment (https_proxy, http_proxy, all_proxy, socks_proxy, no_proxy).
proxy = sys.argv[2] if len(sys.argv) > 2 else True

try:
    with syncws.connect(uri, proxy=proxy, open_timeout=10) as ws:
        ws.send("Hello through the proxy!")
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
