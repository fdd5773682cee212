#!/usr/bin/env python
"""The server that the configurations of this directory run: an echo with a health check,
behind a reverse proxy.

    python examples/deployment/service.py [--host HOST] [--port PORT]

Listens on 127.0.0.1:8001 by default, where nginx.conf and haproxy.cfg send connections
(a second process on 8002: ``syncws@.service`` runs one per port). ``GET /healthz`` is
answered with 200 for the proxy's health checks; ``X-Forwarded-For`` is believed from the
proxy on 127.0.0.1 only. SIGTERM or Ctrl-C stops it gracefully: clients get 1001.
"""

from __future__ import annotations

import argparse
import logging

import syncws


def health_check(ws: syncws.ServerConnection, request: syncws.Request) -> syncws.Response | None:
    if request.path == "/healthz":
        return ws.respond(200, "OK\n")
    return None


def handler(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 in a container")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    logging.basicConfig(format="%(levelname)s %(name)s %(message)s", level=logging.INFO)
    syncws.serve(
        handler,
        args.host,
        args.port,
        process_request=health_check,
        trusted_proxies=["127.0.0.1"],  # the reverse proxy: X-Forwarded-For from it only
    )


if __name__ == "__main__":
    main()
