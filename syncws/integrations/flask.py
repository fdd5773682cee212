"""WebSocket routes in a Flask app: ``@sock.route("/ws")`` on ``def view(ws)``.

The API is flask-sock's, so that migrating is a one-line import change::

    from syncws.integrations.flask import Sock    # was: from flask_sock import Sock

    app = Flask(__name__)
    sock = Sock(app)

    @sock.route("/echo")
    def echo(ws):
        while True:
            ws.send(ws.receive())

The view runs in the WSGI worker thread, inside Flask's request context (``request``, ``g``,
``current_app``, the session), with a :class:`WebSocket`: a
:class:`~syncws.ServerConnection` (``recv``, ``send``, iteration, ``close(code, reason)``,
``ping``, keepalive, limits, permessage-deflate) that also answers to simple-websocket's
``receive(timeout)``, ``connected`` and ``close(reason=code, message=text)``. How the request
is upgraded and handed back is explained in :mod:`syncws.integrations.wsgi`.

Needs Flask (``pip install syncws[flask]``) and a server that exposes its socket: Werkzeug's
(``flask run``) or gunicorn's sync or gthread worker. Every open WebSocket holds one worker
thread: see :doc:`/howto/flask`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import flask

from ..exceptions import ConnectionClosed
from ..protocol.events import State
from ..protocol.frames import CloseCode
from ..runtime.connection import Data
from ..runtime.server import ServerConnection
from .wsgi import (
    Environ,
    HandshakeRejected,
    SocketUnavailable,
    StartResponse,
    Upgrader,
    handed_back,
)

__all__ = ["ConnectionClosed", "Sock", "SocketUnavailable", "WebSocket"]

_View = TypeVar("_View", bound=Callable[..., Any])


class WebSocket(ServerConnection):
    """The connection passed to views: a :class:`~syncws.ServerConnection` that also
    speaks simple-websocket's names, for code written for flask-sock."""

    @property
    def connected(self) -> bool:
        """Whether the connection is open (simple-websocket's name)."""
        return self.state is State.OPEN

    def receive(self, timeout: float | None = None) -> Data | None:
        """Receive the next message; ``None`` if none came within ``timeout`` seconds.

        simple-websocket's name; :meth:`~syncws.ServerConnection.recv` raises
        :exc:`TimeoutError` instead of returning ``None``.

        Raises:
            ConnectionClosed: The connection is closed.
        """
        try:
            return self.recv(timeout)
        except TimeoutError:
            return None

    def close(
        self,
        code: int = CloseCode.NORMAL_CLOSURE,
        reason: str | int = "",
        message: str | None = None,
    ) -> None:
        """Close the connection (see :meth:`~syncws.ServerConnection.close`).

        Also accepts simple-websocket's keywords, where ``reason`` is the close code and
        ``message`` the reason: ``ws.close(reason=1001, message="bye")``.
        """
        if isinstance(reason, int):
            code, reason = reason, message or ""
        super().close(code, reason)


class _HandedBack(flask.Response):
    """The view's response after an upgrade: see :func:`~syncws.integrations.wsgi.handed_back`."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return handed_back(start_response)


def _rejected(exc: HandshakeRejected) -> flask.Response:
    response = exc.response
    headers = [
        (name, value)
        for name, value in response.headers.items()
        if name.lower() not in ("connection", "content-length", "content-type")
    ]
    return flask.Response(
        response.body,
        status=response.status_code,
        headers=headers,
        content_type=response.headers.get("Content-Type", "text/plain; charset=utf-8"),
    )


#: flask-sock's ``SOCK_SERVER_OPTIONS`` (simple-websocket's ``Server`` options) that have
#: an equivalent here, and its name.
FLASK_SOCK_OPTIONS = {
    "ping_interval": "ping_interval",
    "max_message_size": "max_size",
    "subprotocols": "subprotocols",
}


class Sock:
    """WebSocket routes for a Flask app, like flask-sock's ``Sock``.

    The app's ``SOCK_SERVER_OPTIONS`` config, flask-sock's, applies too when the app is
    attached (:meth:`init_app`): ``ping_interval``, ``max_message_size`` (``max_size``
    here) and ``subprotocols``. Options it has no equivalent for (``receive_bytes``,
    ``thread_class``, ``event_class``, ``selector_class``...) are logged once, at WARNING,
    and ignored. Options given to ``Sock`` itself take precedence over the config.

    Args:
        app: The app; or call :meth:`init_app` later (application factories).
        options: Connection options, those of :class:`~syncws.integrations.wsgi.Upgrader`
            (``ping_interval``, ``max_size``, ``compression``, ``origins``, ...).

    Attributes:
        upgrader: The :class:`~syncws.integrations.wsgi.Upgrader` doing the work.
    """

    def __init__(self, app: flask.Flask | None = None, **options: Any) -> None:
        self._options = options
        self.upgrader = Upgrader(**options)
        self.app: flask.Flask | None = None
        self.bp: flask.Blueprint | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        """Attach to ``app``; routes declared before are registered with it, and its
        ``SOCK_SERVER_OPTIONS`` apply (see above)."""
        self.app = app
        config = app.config.get("SOCK_SERVER_OPTIONS") or {}
        if config:
            options: dict[str, Any] = {}
            for name, value in config.items():
                if name in FLASK_SOCK_OPTIONS:
                    options[FLASK_SOCK_OPTIONS[name]] = value
                else:
                    self.upgrader.logger.warning(
                        "SOCK_SERVER_OPTIONS: %r has no equivalent in syncws; ignored", name
                    )
            self.upgrader = Upgrader(**{**options, **self._options})
        if self.bp is not None:
            app.register_blueprint(self.bp)

    @property
    def connections(self) -> set[ServerConnection]:
        """The open WebSocket connections of this process, e.g. for :func:`~syncws.broadcast`."""
        return self.upgrader.connections

    def route(
        self, path: str, bp: flask.Blueprint | None = None, **kwargs: Any
    ) -> Callable[[_View], _View]:
        """Decorate ``view(ws, **url_arguments)`` to serve WebSocket connections at ``path``.

        A request that is not a WebSocket handshake gets a plain HTTP answer (426 for a
        browser visiting the URL, 400, 403, ...). When the view returns, the connection is
        closed with 1000; when it raises, with 1011 (logged with the traceback).

        Args:
            path: The URL rule, with variables as for ``app.route``.
            bp: Register on this blueprint rather than on the app.
            kwargs: Options of ``app.route`` (``endpoint``, ``defaults``, ...).

        Raises:
            SocketUnavailable: At request time, under a WSGI server that does not expose its
                socket (waitress, mod_wsgi, ...): use the sidecar there.
        """

        def decorator(view: _View) -> _View:
            def websocket_route(*args: Any, **url_arguments: Any) -> flask.Response:
                try:
                    ws = self.upgrader.accept(flask.request.environ, WebSocket)
                except HandshakeRejected as exc:
                    return _rejected(exc)
                except ConnectionError as exc:
                    self.upgrader.logger.info("opening handshake failed: %s", exc)
                    return _HandedBack()
                self.upgrader.run(ws, view, *args, **url_arguments)
                return _HandedBack()

            functools.update_wrapper(websocket_route, view)
            target: flask.Flask | flask.Blueprint | None = bp or self.app
            if target is None:
                if self.bp is None:
                    self.bp = flask.Blueprint("syncws_sock", __name__)
                target = self.bp
            endpoint = kwargs.pop("endpoint", None) or view.__name__
            kwargs.pop("websocket", None)
            # Werkzeug routes Upgrade requests only to rules marked websocket=True (and
            # answers 400 otherwise); the second rule lets plain HTTP reach the view, which
            # answers 426 with a readable body.
            target.add_url_rule(path, endpoint, websocket_route, websocket=True, **kwargs)
            target.add_url_rule(path, f"{endpoint}_http", websocket_route, **kwargs)
            return view

        return decorator
