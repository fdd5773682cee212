#!/usr/bin/env python
"""Tutorial, step 3: the chat rooms inside a Flask app, for logged-in users only.

The page, the login and the WebSocket rooms share the app's port: ``@sock.route`` serves
``/rooms/<room>`` in Flask's request context, so the user's name comes from the session
instead of a first message. Needs Flask (``pip install 'syncws[flask]'``).

``python examples/chat/step3.py [PORT]`` (default 5000), then open
http://localhost:5000/ in two browsers (or a private window), log in with two names, and
join a room.
"""

from __future__ import annotations

import os
import re
import secrets
import sys

import flask

import syncws
from syncws.integrations.flask import Sock

app = flask.Flask(__name__)
# A fixed secret from the configuration in a real app: sessions die with this one.
app.secret_key = os.environ.get("SECRET_KEY") or secrets.token_hex(32)

# Pages allowed to open WebSockets (cross-site WebSocket hijacking): this app's, which is on
# localhost here; in production, your site's origin, "https://chat.example.com".
sock = Sock(app, origins=[re.compile(r"http://(localhost|127\.0\.0\.1)(:\d+)?")])


def members(room: str) -> list[syncws.ServerConnection]:
    return [ws for ws in sock.connections if getattr(ws, "room", None) == room]


@app.before_request
def websockets_need_a_login() -> None:
    if flask.request.path.startswith("/rooms/") and "name" not in flask.session:
        flask.abort(401)  # before the handshake: the WebSocket never opens


@sock.route("/rooms/<room>")
def chat(ws: syncws.ServerConnection, room: str) -> None:
    name = flask.session["name"]
    others = [peer.name for peer in members(room)]
    ws.name, ws.room = name, room
    ws.send(f"Welcome to {room}, {name}! Here: {', '.join(others) or 'nobody yet'}")
    syncws.broadcast(members(room), f"{name} joined")
    try:
        for message in ws:
            if isinstance(message, str):
                syncws.broadcast(members(room), f"{name}: {message}")
    finally:
        syncws.broadcast(members(room), f"{name} left")


@app.post("/login")
def login() -> flask.Response:
    # A real application checks a password here.
    name = flask.request.form.get("name", "").strip()[:32]
    if name:
        flask.session["name"] = name
    return flask.redirect("/")


@app.post("/logout")
def logout() -> flask.Response:
    flask.session.clear()
    return flask.redirect("/")


LOGIN = """<!doctype html>
<meta charset="utf-8">
<title>Chat</title>
<form method="post" action="/login">name <input name="name"> <button>log in</button></form>
"""

CHAT = """<!doctype html>
<meta charset="utf-8">
<title>Chat</title>
<form method="post" action="/logout">{{ name }} <button>log out</button></form>
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


@app.get("/")
def index() -> str:
    if "name" not in flask.session:
        return LOGIN
    return flask.render_template_string(CHAT, name=flask.session["name"])


if __name__ == "__main__":
    app.run(port=int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
