#!/usr/bin/env python
"""Flask app + syncws WebSocket server in the same process (the sidecar).

The WebSocket server runs in background threads on its own port and shares the app's
objects: the ``/publish`` route broadcasts to every WebSocket client.

Run (needs ``pip install syncws[flask]``)::

    flask --app examples/flask_sidecar.py run --debug      # reloader: one server, in the child
    gunicorn -k gthread --threads 8 -w 1 --chdir examples flask_sidecar:app

then open http://localhost:5000/ in a browser, or::

    python -m syncws ws://localhost:8001/
    curl -d "hello everyone" http://localhost:5000/publish

``WS_HOST`` and ``WS_PORT`` choose the WebSocket address (default localhost:8001).
"""

from __future__ import annotations

import os

import flask

import syncws
from syncws.integrations.sidecar import Sidecar

app = flask.Flask(__name__)


def feed(ws: syncws.ServerConnection) -> None:
    """Keep the client connected; what it sends is broadcast to everybody."""
    for message in ws:
        syncws.broadcast(sidecar.connections, message)


# Binds only in the process that serves: not in the parent of Werkzeug's reloader. Closes
# the connections with 1001 at exit and on SIGTERM. With several gunicorn workers, pass
# reuse_port=True (each worker then broadcasts to its own clients only).
sidecar = Sidecar(
    feed, os.environ.get("WS_HOST", "localhost"), int(os.environ.get("WS_PORT", "8001"))
).start()


@app.post("/publish")
def publish() -> str:
    """Send the request body to every WebSocket client."""
    sent = syncws.broadcast(sidecar.connections, flask.request.get_data(as_text=True))
    return f"sent to {sent} clients\n"


PAGE = """<!doctype html>
<title>syncws sidecar</title>
<form><input id="text" autocomplete="off" autofocus><button>send</button></form>
<ul id="log"></ul>
<script>
const ws = new WebSocket(`ws://${location.hostname}:PORT/`);
const log = (text) => document.getElementById("log").append(
    Object.assign(document.createElement("li"), {textContent: text}));
ws.onmessage = (event) => log(event.data);
ws.onclose = (event) => log(`closed: ${event.code}`);
document.forms[0].onsubmit = (event) => {
    event.preventDefault();
    ws.send(document.getElementById("text").value);
};
</script>
"""


@app.get("/")
def index() -> str:
    """A page that connects to the sidecar."""
    return PAGE.replace("PORT", str(sidecar.server.port if sidecar.server else ""))


if __name__ == "__main__":
    # No reloader here: its parent process would run the line above too. For the reloader,
    # use "flask run --debug", or pass reloader=True to Sidecar.
    app.run(port=int(os.environ.get("HTTP_PORT", "5000")))
