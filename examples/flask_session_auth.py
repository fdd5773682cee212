#!/usr/bin/env python
"""WebSockets for the users of a Flask app, authenticated by the Flask session.

The browser sends its cookies with the WebSocket handshake, the session cookie among them:

* to ``@sock.route`` views, on the app's port: the view runs in the request context, so
  ``flask.session`` works as in any view, and a ``before_request`` function can refuse
  the handshake with 401 before the WebSocket opens;
* to the sidecar, on its own port too, since cookies belong to a host, whatever its port
  (RFC 6265 §8.5): ``session_auth`` reads the cookie in ``process_request`` and checks its
  signature as Flask does.

Both check ``Origin``: a browser sends the cookie with a handshake that a page of *another*
site starts, unless the cookie is ``SameSite=Lax`` or ``Strict``; only the ``Origin``
header tells that page apart from yours (cross-site WebSocket hijacking).

Run (needs ``pip install syncws[flask]``)::

    python examples/flask_session_auth.py

open http://localhost:5000/, log in with any name, and chat. ``HTTP_PORT`` and ``WS_PORT``
choose the ports (5000 and 8001).
"""

from __future__ import annotations

import os
import secrets

import flask
import itsdangerous
from flask.sessions import SecureCookieSessionInterface
from werkzeug.http import parse_cookie

import syncws
from syncws.integrations.flask import Sock
from syncws.integrations.sidecar import Sidecar

HTTP_PORT = int(os.environ.get("HTTP_PORT", "5000"))
WS_PORT = int(os.environ.get("WS_PORT", "8001"))

app = flask.Flask(__name__)
# A fixed secret from the configuration in a real app: sessions die with this one.
app.secret_key = os.environ.get("SECRET_KEY") or secrets.token_hex(32)

# The pages that may open WebSockets: this app's. No None: browsers always send Origin.
ORIGINS = [f"http://localhost:{HTTP_PORT}", f"http://127.0.0.1:{HTTP_PORT}"]

sock = Sock(app, origins=ORIGINS)


@app.post("/login")
def login() -> flask.Response:
    # A real application checks a password here.
    flask.session["user"] = flask.request.form["user"]
    return flask.redirect("/")


# 1. @sock.route: the session is there, as in any view.


@app.before_request
def websockets_need_a_user() -> None:
    """Refuse the handshake (HTTP 401) to a client without a session."""
    if flask.request.path == "/chat" and "user" not in flask.session:
        flask.abort(401)


@sock.route("/chat")
def chat(ws: syncws.ServerConnection) -> None:
    user = flask.session["user"]
    ws.send(f"Hello, {user}!")
    for message in ws:
        syncws.broadcast(sock.connections, f"{user}: {message}")


# 2. The sidecar: read the session cookie in process_request.


def session_user(request: syncws.Request) -> str | None:
    """The user of the Flask session in the handshake's cookies, as Flask would load it."""
    cookies = parse_cookie("; ".join(request.headers.get_all("Cookie")))
    value = cookies.get(app.config["SESSION_COOKIE_NAME"])
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    if value is None or serializer is None:
        return None
    max_age = int(app.permanent_session_lifetime.total_seconds())
    try:
        session = serializer.loads(value, max_age=max_age)
    except itsdangerous.BadSignature:  # forged, or expired
        return None
    user = session.get("user")
    return user if isinstance(user, str) else None


def session_auth(ws: syncws.ServerConnection, request: syncws.Request) -> syncws.Response | None:
    """``process_request`` of the sidecar: HTTP 401 without a logged-in session."""
    user = session_user(request)
    if user is None:
        return ws.respond(401, "Log in first.\n")
    ws.username = user
    return None


def sidecar_chat(ws: syncws.ServerConnection) -> None:
    ws.send(f"Hello, {ws.username}!")
    for message in ws:
        syncws.broadcast(sidecar.connections, f"{ws.username}: {message}")


sidecar = Sidecar(
    sidecar_chat, "localhost", WS_PORT, process_request=session_auth, origins=ORIGINS
).start()


PAGE = """<!doctype html>
<title>syncws: session</title>
<form method="post" action="/login"><input name="user"><button>log in</button></form>
<p><button id="route">chat on /chat</button> <button id="sidecar">chat on the sidecar</button>
<form id="send"><input id="text" autocomplete="off"><button>send</button></form>
<ul id="log"></ul>
<script>
let ws;
const log = (text) => document.getElementById("log").append(
    Object.assign(document.createElement("li"), {textContent: text}));
const open = (url) => {
    ws = new WebSocket(url);
    ws.onmessage = (event) => log(event.data);
    ws.onclose = (event) => log(`closed: ${event.code}`);
};
document.getElementById("route").onclick = () => open(`ws://${location.host}/chat`);
document.getElementById("sidecar").onclick = () => open(`ws://${location.hostname}:WS_PORT/`);
document.getElementById("send").onsubmit = (event) => {
    event.preventDefault();
    ws.send(document.getElementById("text").value);
};
</script>
"""


@app.get("/")
def index() -> str:
    return PAGE.replace("WS_PORT", str(WS_PORT))


if __name__ == "__main__":
    app.run(port=HTTP_PORT)
