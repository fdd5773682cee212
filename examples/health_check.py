#!/usr/bin/env python
"""An echo server that also answers plain HTTP: a health check, and a page for browsers.

``python examples/health_check.py [PORT]`` (default 8765), then
``curl http://localhost:8765/health``, or open http://localhost:8765/ in a browser.
"""

from __future__ import annotations

import sys

import syncws


def health_check(ws: syncws.ServerConnection, request: syncws.Request) -> syncws.Response | None:
    if request.path == "/health":
        return ws.respond(200, "OK\n")
    return None


PAGE = b"""<!DOCTYPE html>
<title>Echo</title>
<script>
  const ws = new WebSocket(`ws://${location.host}/`);
  ws.onopen = () => ws.send("Hello from the browser");
  ws.onmessage = (event) => document.body.append(event.data);
</script>
"""


def page(ws: syncws.ServerConnection, request: syncws.Request) -> syncws.Response | None:
    # A browser asking for the page, not for a WebSocket connection.
    if request.path == "/" and "websocket" not in request.headers.get("Upgrade", "").lower():
        headers = syncws.Headers(
            {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(PAGE))}
        )
        return syncws.Response(200, "OK", headers, PAGE)
    return health_check(ws, request)


def echo(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    syncws.serve(echo, "localhost", port, process_request=page)


if __name__ == "__main__":
    main()
