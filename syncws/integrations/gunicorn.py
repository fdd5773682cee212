"""gunicorn settings for WebSocket routes: clients get 1001 when a worker stops gracefully.

On SIGTERM (``kill``, a deploy, ``systemctl stop``, Kubernetes), a gunicorn worker stops
accepting requests and waits up to ``--graceful-timeout`` for the running ones to end. A
WebSocket view never ends by itself, so without help its client sees the connection drop
when the worker exits (close code 1006, after the whole graceful timeout). With this
module's :func:`post_worker_init` hook, SIGTERM first starts the closing handshake of every
WebSocket connection of the worker (:func:`~syncws.integrations.wsgi.shutdown_all`): each
client gets a close frame with 1001 (going away), each view's ``recv()`` raises
:exc:`~syncws.exceptions.ConnectionClosedOK` once the client has answered, the views return,
and the worker exits as soon as they have, well within the graceful timeout when
``close_timeout`` is below it. New WebSocket handshakes meanwhile get HTTP 503.

Use it as a config module::

    gunicorn -c python:syncws.integrations.gunicorn -k gthread --threads 32 app:app

or import the hook into your own ``gunicorn.conf.py``
(``from syncws.integrations.gunicorn import post_worker_init``), or call
:func:`install` from your own ``post_worker_init``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

from ..protocol.frames import CloseCode
from .wsgi import shutdown_all

__all__ = ["install", "post_worker_init"]

_logger = logging.getLogger("syncws.wsgi")


def install(code: int = CloseCode.GOING_AWAY, reason: str = "") -> None:
    """Close this process's WebSocket connections with ``code`` and ``reason`` on SIGTERM,
    then let the signal do what it did before (gunicorn's graceful stop).

    Call it from the main thread, after the server installed its own SIGTERM handler
    (in gunicorn: from ``post_worker_init``).

    The closing runs in a thread of its own: the signal handler runs in the main thread,
    between two steps of whatever it was doing (under gunicorn's sync worker, the view
    itself, maybe holding a lock the closing needs), so it must not wait for anything.
    """
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        threading.Thread(
            target=_close_all, args=(code, reason), name="syncws-wsgi-shutdown", daemon=True
        ).start()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            # The default action: die of the signal, as without this handler.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, on_sigterm)


def _close_all(code: int, reason: str) -> None:
    _logger.info("SIGTERM: closing the WebSocket connections with %d", code)
    shutdown_all(code, reason)


def post_worker_init(worker: Any) -> None:
    """gunicorn's server hook, run in each worker once it is set up: :func:`install`."""
    install()
