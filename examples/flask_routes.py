#!/usr/bin/env python
"""WebSocket routes inside a Flask app, on the app's own port: ``@sock.route``.

Each open WebSocket holds one worker thread of the WSGI server. Works with Werkzeug's
server and gunicorn's gthread (or sync) worker; not with servers that hide their socket
(waitress, mod_wsgi): use the sidecar (``examples/flask_sidecar.py``) there.

Run (needs ``pip install syncws[flask]``)::

    flask --app examples/flask_routes.py run --debug
    gunicorn -k gthread --threads 32 -w 1 --chdir examples flask_routes:app

then::

    python -m syncws ws://localhost:5000/echo
    python -m syncws ws://localhost:5000/feed
    curl -d "hello everyone" http://localhost:5000/publish
"""

from __future__ import annotations

import os

import flask

import syncws
from syncws.integrations.flask import Sock  # was: from flask_sock import Sock

app = flask.Flask(__name__)
sock = Sock(app, ping_interval=20, max_size=2**20)  # options of syncws.Server


@sock.route("/echo")
def echo(ws: syncws.ServerConnection) -> None:
    """Send every message back; returns (closing with 1000) when the client closes."""
    for message in ws:
        ws.send(message)


@sock.route("/feed")
def feed(ws: syncws.ServerConnection) -> None:
    """Stay connected, receiving what /publish broadcasts."""
    for _ in ws:
        pass


@app.post("/publish")
def publish() -> str:
    """A normal route that broadcasts to the WebSocket clients of this process."""
    sent = syncws.broadcast(sock.connections, flask.request.get_data(as_text=True))
    return f"sent to {sent} clients\n"


if __name__ == "__main__":
    app.run(port=int(os.environ.get("HTTP_PORT", "5000")), threaded=True)
