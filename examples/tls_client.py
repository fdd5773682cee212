#!/usr/bin/env python
"""Send a message to a TLS echo server and print the answer.

By default the server's certificate is verified against the system's trusted CAs. For the
self-signed certificate of ``examples/tls_server.py``, trust that certificate instead::

    python examples/tls_client.py --cafile cert.pem

``--server-hostname`` is the name to verify in the certificate when it is not the URI's
host (an IP address, a tunnel).
"""

import argparse
import ssl

import syncws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri", nargs="?", default=None, help="default: wss://localhost:PORT/")
    parser.add_argument("--cafile", help="CA certificate(s) to trust, PEM")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--server-hostname", help="name expected in the certificate")
    parser.add_argument("--message", default="Hello over TLS!")
    args = parser.parse_args()

    uri = args.uri or f"wss://localhost:{args.port}/"
    # None is the default context: the system's CAs, and the certificate must match the
    # URI's host (or --server-hostname). Trust your own instead: never switch it off.
    context = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    with syncws.connect(uri, ssl=context, server_hostname=args.server_hostname) as ws:
        ws.send(args.message)
        print("<", ws.recv())


if __name__ == "__main__":
    main()
