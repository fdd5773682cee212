"""Several endpoints on one server: :func:`route` dispatches connections by URL.

The URL patterns are a :class:`werkzeug.routing.Map` (Werkzeug is an optional dependency:
``pip install werkzeug``, or ``syncws[flask]``), as for websockets' ``route()``: a program
written for ``websockets.sync.router.route`` runs once its import is changed. The match is
made in ``process_request``, before the handshake: an unknown path gets HTTP 404 and a
rule with ``redirect_to`` a 302, and no WebSocket connection is opened for them.
"""

from __future__ import annotations

import http
import ssl as ssl_module
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from ..protocol.http11 import Request, Response
from .server import Server, ServerConnection

if TYPE_CHECKING:
    from werkzeug.routing import Map

__all__ = ["Router", "route"]


class Router:
    """Matches handshake requests against ``url_map`` and runs the matched handler.

    :func:`route` makes one; subclass it (and pass the subclass as ``create_router``) to
    change how a request is matched or answered.

    Args:
        url_map: Rules whose endpoints are the handlers, ``handler(ws, **arguments)``.
            Every rule is marked ``websocket=True`` (Werkzeug matches those only for
            WebSocket requests).
        server_name: The host name the rules are matched for; ``None`` takes each
            request's ``Host`` header.
        url_scheme: ``"ws"`` or ``"wss"``: the scheme of the URLs that redirects build.
    """

    def __init__(self, url_map: Map, server_name: str | None = None, url_scheme: str = "ws"):
        self.url_map = url_map
        self.server_name = server_name
        self.url_scheme = url_scheme
        for rule in url_map.iter_rules():
            rule.websocket = True

    def route_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """A ``process_request`` hook: find the handler of ``request``, or answer 404 (no
        rule matches) or 302 (a rule redirects). The handler and the arguments taken from
        the URL are kept on the connection as ``handler`` and ``handler_kwargs``."""
        from werkzeug.exceptions import NotFound
        from werkzeug.routing import RequestRedirect

        server_name = self.server_name
        if server_name is None:
            server_name = request.headers.get("Host") or "localhost"
        adapter = self.url_map.bind(server_name, url_scheme=self.url_scheme)
        target = urllib.parse.urlsplit(request.path)
        try:
            handler, kwargs = adapter.match(path_info=target.path, query_args=target.query)
        except RequestRedirect as redirect:
            response = connection.respond(http.HTTPStatus.FOUND, f"Found at {redirect.new_url}\n")
            response.headers["Location"] = redirect.new_url
            return response
        except NotFound:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "Not Found\n")
        connection.handler = handler
        connection.handler_kwargs = dict(kwargs)
        return None

    def handler(self, connection: ServerConnection) -> Any:
        """The server's handler: call the one :meth:`route_request` found."""
        return connection.handler(connection, **connection.handler_kwargs)


def route(
    url_map: Map,
    host: str | None = None,
    port: int | None = None,
    *,
    server_name: str | None = None,
    ssl: ssl_module.SSLContext | Literal[True] | None = None,
    create_router: type[Router] | None = None,
    process_request: Callable[[ServerConnection, Request], Response | None] | None = None,
    **options: Any,
) -> Server:
    """Make a :class:`~syncws.Server` that dispatches connections by URL.

    ``url_map`` maps URL patterns to handlers, which get the connection and the variables
    of the URL as keyword arguments::

        from werkzeug.routing import Map, Rule
        import syncws

        def echo(ws):
            for message in ws:
                ws.send(message)

        def room(ws, name):
            ws.send(f"welcome to {name}")

        url_map = Map([Rule("/echo", endpoint=echo), Rule("/rooms/<name>", endpoint=room)])
        with syncws.route(url_map, "localhost", 8765) as server:
            server.serve_forever()

    A request for a path that no rule matches gets HTTP 404 before any WebSocket
    connection opens; a rule with ``redirect_to`` answers 302 with ``Location``.

    Like websockets' ``route()``, it returns the server, to serve with
    :meth:`~syncws.Server.serve_forever` (or :meth:`~syncws.Server.start`); it takes
    :class:`~syncws.Server`'s options, but no handler.

    Args:
        url_map: A :class:`werkzeug.routing.Map` whose endpoints are the handlers.
        host: As for :class:`~syncws.Server`.
        port: As for :class:`~syncws.Server`.
        server_name: The host name clients use, for the rules that match a host or
            build a redirect; ``None`` takes each request's ``Host`` header (behind a
            proxy that rewrites it, set it).
        ssl: A server-side :class:`ssl.SSLContext` serves ``wss://``; ``True`` only makes
            redirects ``wss://`` URLs, for a server behind a proxy that terminates TLS.
        create_router: A :class:`Router` subclass to use instead.
        process_request: Runs before the routing; a response it returns is sent instead.
        options: Other options of :class:`~syncws.Server`.

    Raises:
        ImportError: Werkzeug is not installed.
    """
    try:
        import werkzeug.routing  # noqa: F401
    except ImportError:
        raise ImportError("route() needs Werkzeug: pip install werkzeug") from None
    router = (create_router or Router)(url_map, server_name, "ws" if ssl is None else "wss")
    hook = router.route_request
    if process_request is not None:
        first = process_request

        def hook(connection: ServerConnection, request: Request) -> Response | None:
            response = first(connection, request)
            if response is not None:
                return response
            return router.route_request(connection, request)

    return Server(
        router.handler,
        host,
        port,
        ssl=None if ssl is True else ssl,
        process_request=hook,
        **options,
    )
