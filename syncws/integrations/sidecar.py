"""A WebSocket server in a background thread of a WSGI process: the sidecar.

:class:`Sidecar` is ``syncws.Server(...).start()`` plus what running inside someone else's
process needs:

* **One server per serving process.** Werkzeug's reloader (``flask run --debug``,
  ``app.run(debug=True)``) imports the app in a parent process that only watches files, and
  again in the child that serves (``WERKZEUG_RUN_MAIN=true``). Binding in both fails with
  "address already in use"; :func:`should_serve` says whether this process is the one.
* **Shutdown with the process**: at interpreter exit (``atexit``, which covers Ctrl-C and
  the reloader restarting the child) and on SIGTERM (the handler closes the connections with
  1001, then calls the previous handler, or dies of the signal as before).

Under gunicorn every worker imports the app: use one worker, or ``reuse_port=True`` so that
the workers share the port (each one then serves, and broadcasts to, its own clients). Do
not start it in a ``--preload``-ed app: the server's threads would live in the master.
"""

from __future__ import annotations

import atexit
import errno
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..protocol.frames import CloseCode
from ..runtime.server import Server, ServerConnection

__all__ = ["Sidecar", "should_serve"]


def _flask_cli_reloads() -> bool:
    """Whether this process runs ``flask run`` with the reloader (as its parent or child)."""
    click = sys.modules.get("click")
    if click is None:
        return False
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.command.name == "run" and "reload" in ctx.params:
            reload = ctx.params["reload"]
            if reload is None:  # flask run: the reloader follows --debug / FLASK_DEBUG
                reload = os.environ.get("FLASK_DEBUG", "").lower() not in ("", "0", "false", "no")
            return bool(reload)
        ctx = ctx.parent
    return False


def should_serve(reloader: bool | None = None) -> bool:
    """Whether this process should run the WebSocket server.

    False only in the parent process of Werkzeug's reloader, which never serves requests:
    the child it starts has ``WERKZEUG_RUN_MAIN=true`` and serves.

    Args:
        reloader: Whether the app runs under Werkzeug's reloader. ``None`` finds out for
            ``flask run`` (``--reload``, ``--debug``, ``FLASK_DEBUG``). Pass ``True`` for
            ``app.run(debug=True)``, which cannot be detected before it is called.
    """
    if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
        return True
    if reloader is None:
        reloader = _flask_cli_reloads()
    return not reloader


class Sidecar:
    """A :class:`~syncws.Server` for a WSGI process, started by :meth:`start`.

    Args:
        handler: The connection handler, as for :class:`~syncws.Server`.
        host: Interface to bind.
        port: Port to bind (its own: not the WSGI server's).
        reloader: See :func:`should_serve`.
        shutdown_timeout: Seconds :meth:`shutdown` waits for handlers at process exit.
        options: Other options of :class:`~syncws.Server` (``reuse_port``, ``ping_interval``,
            ``max_connections``, ...).

    Attributes:
        server: The running :class:`~syncws.Server`, or ``None`` (not started, or a reloader
            parent).

    Example::

        sidecar = Sidecar(handler, "localhost", 8001).start()

        @app.post("/publish")
        def publish():
            syncws.broadcast(sidecar.connections, request.get_data(as_text=True))
            return "", 204
    """

    def __init__(
        self,
        handler: Callable[[ServerConnection], Any],
        host: str | None = None,
        port: int | None = None,
        *,
        reloader: bool | None = None,
        shutdown_timeout: float | None = 5.0,
        **options: Any,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.reloader = reloader
        self.shutdown_timeout = shutdown_timeout
        self.options = options
        self.server: Server | None = None
        self._lock = threading.Lock()

    @property
    def serving(self) -> bool:
        """Whether this process runs the server."""
        return self.server is not None

    @property
    def connections(self) -> set[ServerConnection]:
        """The open connections; empty in a process that does not serve."""
        server = self.server
        return set() if server is None else server.connections

    def start(self) -> Sidecar:
        """Bind and serve in a background thread, unless :func:`should_serve` says no.

        Idempotent. Registers the shutdown at interpreter exit, and on SIGTERM when called
        from the main thread.

        Raises:
            OSError: The port is taken; with ``errno.EADDRINUSE``, the message says why
                that happens under a reloader or several gunicorn workers.
        """
        with self._lock:
            if self.server is not None or not should_serve(self.reloader):
                return self
            try:
                server = Server(self.handler, self.host, self.port, **self.options)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise OSError(
                    exc.errno,
                    f"{exc.strerror}: port {self.port} is taken. Under Werkzeug's reloader, "
                    "pass reloader=True (only the serving child binds); under gunicorn with "
                    "several workers, run one worker or pass reuse_port=True.",
                ) from exc
            self.server = server.start()
        atexit.register(self.shutdown, timeout=self.shutdown_timeout)
        if threading.current_thread() is threading.main_thread():
            self._chain_signal(signal.SIGTERM)
        server.logger.info("WebSocket sidecar listening on port %s", server.port)
        return self

    def _chain_signal(self, signum: signal.Signals) -> None:
        previous = signal.getsignal(signum)

        def stop(received: int, frame: FrameType | None) -> None:
            self.shutdown(timeout=self.shutdown_timeout)
            if callable(previous):
                previous(received, frame)
            elif previous != signal.SIG_IGN:
                # The default action: die of the signal, as without the sidecar.
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        signal.signal(signum, stop)

    def shutdown(
        self, code: int = CloseCode.GOING_AWAY, reason: str = "", timeout: float | None = None
    ) -> None:
        """Shut the server down (see :meth:`syncws.Server.shutdown`); idempotent."""
        server = self.server
        if server is not None:
            server.shutdown(code, reason, timeout)
