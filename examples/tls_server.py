#!/usr/bin/env python
r"""A TLS echo server: every message comes back to its sender, over wss://.

It needs a certificate and its private key. For a local test, make a self-signed one,
valid for a week, for the name ``localhost``::

    openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem \
        -days 7 -subj /CN=localhost

then run::

    python examples/tls_server.py --cert cert.pem --key key.pem

and talk to it with ``python examples/tls_client.py --cafile cert.pem``. Ctrl-C stops it
gracefully.
"""

import argparse
import logging
import ssl

import syncws


def echo(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True, help="certificate chain, PEM")
    parser.add_argument("--key", required=True, help="private key, PEM")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
    print(f"TLS echo server on wss://{args.host}:{args.port}/", flush=True)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    syncws.serve(echo, args.host, args.port, ssl=context)


if __name__ == "__main__":
    main()
