"""The demo server: ``python -m syncws serve``.

One port serves three things:

* ``GET /`` without ``Upgrade`` (a browser): a small self-contained HTML page, answered by
  :func:`process_request` before any WebSocket handshake, that connects back and lets a
  person type messages and see the answers;
* WebSocket ``/chat``: every message goes to everyone connected to ``/chat``, prefixed
  with the sender's address;
* WebSocket on any other path: every message is sent back (echo).

Other plain HTTP requests get 404, so a browser's ``/favicon.ico`` does not turn into a
failed WebSocket handshake in the log.
"""

from __future__ import annotations

import argparse
import logging
import signal
import ssl
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from ..protocol.http11 import Headers, Request, Response
from ..runtime.broadcast import broadcast
from ..runtime.server import Server, ServerConnection
from .signals import signals_blocked

__all__ = ["PAGE", "handler", "main", "make_server", "process_request"]

logger = logging.getLogger("syncws.demo")

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 8765
CHAT_PATH = "/chat"


#: The page served at ``/``: no external resources, so it works offline.
PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>syncws demo</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto;
         padding: 0 1rem; }
  #log { height: 22rem; overflow-y: auto; border: 1px solid #bbb; border-radius: 4px;
         padding: .5rem; font: 14px/1.4 ui-monospace, monospace; white-space: pre-wrap; }
  .in { color: #05603a; } .out { color: #1849a9; } .info { color: #777; }
  form { display: flex; gap: .5rem; margin-top: .5rem; }
  #text { flex: 1; font: inherit; padding: .3rem; }
</style>
</head>
<body>
<h1>syncws demo</h1>
<p>
  <label><input type="radio" name="room" value="/" checked> echo</label>
  <label><input type="radio" name="room" value="/chat"> chat (open this page twice)</label>
  <span id="status" class="info"></span>
</p>
<div id="log" aria-live="polite"></div>
<form id="form">
  <input id="text" autocomplete="off" placeholder="Type a message, then Enter" autofocus>
  <button>Send</button>
</form>
<script>
"use strict";
const log = document.getElementById("log");
const text = document.getElementById("text");
const status = document.getElementById("status");
let ws = null;

function show(line, kind) {
  const div = document.createElement("div");
  div.className = kind;
  div.textContent = line;
  log.append(div);
  log.scrollTop = log.scrollHeight;
}

function open(path) {
  if (ws) { ws.onclose = null; ws.close(1000); }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const uri = `${scheme}://${location.host}${path}`;
  ws = new WebSocket(uri);
  status.textContent = "connecting...";
  ws.onopen = () => { status.textContent = ""; show(`Connected to ${uri}.`, "info"); };
  ws.onmessage = (event) => show(`< ${event.data}`, "in");
  ws.onclose = (event) => {
    status.textContent = "";
    show(`Connection closed: ${event.code}${event.reason ? " " + event.reason : ""}.`,
         "info");
  };
}

for (const radio of document.querySelectorAll("input[name=room]")) {
  radio.addEventListener("change", () => open(radio.value));
}
document.getElementById("form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    show("Not connected.", "info");
    return;
  }
  ws.send(text.value);
  show(`> ${text.value}`, "out");
  text.value = "";
});
open("/");
</script>
</body>
</html>
"""


def _path(request: Request | None) -> str:
    return "/" if request is None else request.path.partition("?")[0]


def process_request(ws: ServerConnection, request: Request) -> Response | None:
    """Answer plain HTTP: the page at ``/``, 404 elsewhere; ``None`` for WebSocket."""
    if request.headers.get("Upgrade") is not None:
        return None  # a WebSocket handshake (the library validates it)
    if _path(request) in ("/", "/index.html"):
        body = PAGE.encode()
        headers = Headers(
            {
                "Content-Type": "text/html; charset=utf-8",
                "Content-Length": str(len(body)),
                "Cache-Control": "no-store",
                "Connection": "close",
            }
        )
        return Response(200, "OK", headers, body)
    if _path(request) == CHAT_PATH:
        return None  # a WebSocket endpoint: the library answers 426 Upgrade Required
    return ws.respond(404, "Not Found. The syncws demo page is at /.\n")


def handler(ws: ServerConnection) -> None:
    """Chat on ``/chat``, echo on any other path."""
    if _path(ws.request) == CHAT_PATH:
        _chat(ws)
    else:
        for message in ws:
            ws.send(message)


def _chat(ws: ServerConnection) -> None:
    host, port = ws.remote_address[:2] if ws.remote_address else ("?", 0)
    name = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    logger.info("%s joined the chat", name)
    try:
        for message in ws:
            room = [conn for conn in ws.server.connections if _path(conn.request) == CHAT_PATH]
            broadcast(room, f"{name}: {message}" if isinstance(message, str) else message)
    finally:
        logger.info("%s left the chat", name)


def make_server(host: str | None, port: int, ssl_context: ssl.SSLContext | None = None) -> Server:
    """Bind the demo server (not serving yet: call ``start()`` or ``serve_forever()``)."""
    return Server(handler, host, port, ssl=ssl_context, process_request=process_request)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``syncws serve``."""
    parser = argparse.ArgumentParser(
        prog="syncws serve",
        description=(
            "Demo server: a web page at http://HOST:PORT/ that talks to a WebSocket echo "
            f"endpoint (any path) and a chat room ({CHAT_PATH})."
        ),
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"interface to bind (default: {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on, 0 for any free one (default: {DEFAULT_PORT})",
    )
    parser.add_argument("--tls-cert", metavar="FILE", help="certificate chain (PEM): serve TLS")
    parser.add_argument("--tls-key", metavar="FILE", help="private key (PEM) of --tls-cert")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo server until Ctrl-C or SIGTERM; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535: {args.port}")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    context = None
    if args.tls_cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            print(f"Cannot load the TLS certificate and key: {exc}.", file=sys.stderr)
            return 1
    try:
        server = make_server(args.host, args.port, context)
    except OSError as exc:
        print(f"Cannot listen on {args.host}:{args.port}: {exc.strerror or exc}.", file=sys.stderr)
        return 1
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)
    try:
        # The server's threads inherit a mask that leaves Ctrl-C to this thread, which
        # waits for it with sigwait(): no signal can slip in before the wait starts.
        with signals_blocked(), server:
            host = args.host if ":" not in args.host else f"[{args.host}]"
            http, ws = ("https", "wss") if context else ("http", "ws")
            base = f"{host}:{server.port}"
            logger.info(
                "Demo server: open %s://%s/ in a browser; echo at %s://%s/, chat at %s://%s%s. "
                "Ctrl-C stops it.",
                *(http, base, ws, base, ws, base, CHAT_PATH),
            )
            # After that line (the socket listens already): the server logs its own too.
            server.start()
            if hasattr(signal, "sigwait") and previous:
                signal.sigwait({signal.SIGINT, signal.SIGTERM})
            else:  # pragma: no cover - Windows, or not the main thread
                stop.wait()
            logger.info("Shutting down")
    finally:
        for number, previous_handler in previous.items():
            if previous_handler is not None:
                signal.signal(number, previous_handler)
    return 0
