"""gunicorn's graceful stop with :mod:`syncws.integrations.gunicorn`: route clients get 1001."""

from __future__ import annotations

import os
import signal
import time

import flask
import pytest
from timing import TIMEOUT
from wsgi_servers import PROCESS_TIMEOUT, ROOT, gunicorn_server, werkzeug_server

import syncws
from syncws.exceptions import ConnectionClosedOK, InvalidStatus
from syncws.integrations.flask import Sock

pytestmark = pytest.mark.timeout(60)

#: The two ways to use the hook: the documented example config file, and the module itself.
CONFIGS = {
    "gthread": str(ROOT / "examples" / "deployment" / "gunicorn.conf.py"),
    "sync": "python:syncws.integrations.gunicorn",
}


@pytest.mark.parametrize("worker", ["gthread", "sync"])
def test_sigterm_closes_route_clients_with_1001(worker: str) -> None:
    """SIGTERM: the client gets a close frame with 1001 at once, not a dropped connection
    after the graceful timeout (3 s here), and gunicorn exits 0."""
    threads = "16" if worker == "gthread" else "1"  # more than 1 turns sync into gthread
    with gunicorn_server(
        "wsgi_apps:flask_app", "-c", CONFIGS[worker], "-k", worker, "--threads", threads
    ) as server:
        ws = syncws.connect(f"ws://127.0.0.1:{server.port}/echo", open_timeout=TIMEOUT)
        ws.send("before")
        assert ws.recv(TIMEOUT) == "before"
        started = time.monotonic()
        os.killpg(server.process.pid, signal.SIGTERM)
        with pytest.raises(ConnectionClosedOK):
            ws.recv(2 * TIMEOUT)
        assert time.monotonic() - started < 2.5, "closed by the graceful timeout, not the hook"
        assert ws.close_code == 1001
        assert server.process.wait(PROCESS_TIMEOUT) == 0


def test_upgrades_during_shutdown_get_503() -> None:
    """Once the routes' shutdown has begun, a new handshake is answered 503."""
    app = flask.Flask(__name__)
    sock = Sock(app)

    @sock.route("/echo")
    def echo(ws: syncws.ServerConnection) -> None:
        for message in ws:
            ws.send(message)

    with werkzeug_server(app) as address:
        ws = syncws.connect(f"ws://{address}/echo", open_timeout=TIMEOUT)
        assert sock.upgrader.shutdown(reason="bye", timeout=TIMEOUT)
        with pytest.raises(ConnectionClosedOK):
            ws.recv(TIMEOUT)
        assert (ws.close_code, ws.close_reason) == (1001, "bye")
        with pytest.raises(InvalidStatus) as info:
            syncws.connect(f"ws://{address}/echo", open_timeout=TIMEOUT)
        assert info.value.response.status_code == 503
