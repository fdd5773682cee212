#!/usr/bin/env python
"""Tutorial, step 2: chat rooms, and a page to chat from a browser.

``ws://localhost:8765/rooms/NAME`` joins the room NAME, created on first use; each room
has its own members. http://localhost:8765/ is a page that joins a room. Needs Werkzeug
for the URL map (``pip install 'syncws[flask]'``).

``python examples/chat/step2.py [PORT]``. Ctrl-C stops the server.
"""

from __future__ import annotations

import logging
import sys

from werkzeug.routing import Map, Rule

import syncws


def members(server: syncws.Server, room: str) -> list[syncws.ServerConnection]:
    """The people in ``room``: connections that gave a name and joined it."""
    return [
        ws for ws in server.connections if getattr(ws, "room", None) == room and hasattr(ws, "name")
    ]


def chat(ws: syncws.ServerConnection, room: str) -> None:
    """The handler of /rooms/<room>: the room comes from the URL."""
    ws.send(f"Welcome to {room}! What is your name?")
    try:
        name = ws.recv(timeout=60)
    except TimeoutError:
        ws.close(syncws.CloseCode.POLICY_VIOLATION, "no name given")
        return
    if not isinstance(name, str) or not name.strip():
        ws.close(syncws.CloseCode.POLICY_VIOLATION, "a name is some text")
        return
    ws.name, ws.room = name.strip()[:32], room

    others = [peer.name for peer in members(ws.server, room) if peer is not ws]
    ws.send(f"Here: {', '.join(others) or 'nobody yet'}")
    syncws.broadcast(members(ws.server, room), f"{ws.name} joined")
    try:
        for message in ws:
            if isinstance(message, str):
                syncws.broadcast(members(ws.server, room), f"{ws.name}: {message}")
    finally:
        syncws.broadcast(members(ws.server, room), f"{ws.name} left")


url_map = Map([Rule("/rooms/<room>", endpoint=chat)])

PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>Chat</title>
<form id="join">room <input id="room" value="lobby"> <button>join</button></form>
<form id="say" hidden><input id="text" autocomplete="off"> <button>send</button></form>
<ul id="log"></ul>
<script>
let ws;
const $ = (id) => document.getElementById(id);
const log = (text) => $("log").append(
    Object.assign(document.createElement("li"), {textContent: text}));
$("join").onsubmit = (event) => {
    event.preventDefault();
    ws?.close();
    ws = new WebSocket(`ws://${location.host}/rooms/${encodeURIComponent($("room").value)}`);
    ws.onmessage = (event) => log(event.data);
    ws.onclose = (event) => log(`closed (${event.code})`);
    $("say").hidden = false;
};
$("say").onsubmit = (event) => {
    event.preventDefault();
    ws.send($("text").value);
    $("text").value = "";
};
</script>
"""


def page(ws: syncws.ServerConnection, request: syncws.Request) -> syncws.Response | None:
    """``process_request``: answer a plain GET / with the page; anything else goes on."""
    if request.path == "/" and "Upgrade" not in request.headers:
        headers = syncws.Headers({"Content-Type": "text/html; charset=utf-8"})
        headers["Content-Length"] = str(len(PAGE))
        return syncws.Response(200, "OK", headers, PAGE)
    return None


def main() -> None:
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    with syncws.route(url_map, "localhost", port, process_request=page) as server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass  # leaving the with block shuts the server down


if __name__ == "__main__":
    main()
