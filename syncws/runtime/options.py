"""The options of the connections a server opens, which :class:`~syncws.Server` and
:class:`~syncws.integrations.wsgi.Upgrader` share, with the set of their open connections.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..protocol.deflate import server_extensions
from ..protocol.events import State
from ..protocol.handshake import OriginRule
from ..protocol.server import ServerProtocol

if TYPE_CHECKING:
    from .server import ServerConnection

__all__: list[str] = []


class _ConnectionOptions:
    """What :class:`Server` and :class:`~syncws.integrations.wsgi.Upgrader` share: the
    options of the connections they open, the protocol those options make, and the set of
    open connections.

    Each subclass keeps its own explicit keyword arguments, defaults and docstring (the ones
    the docs list) and passes them on here, which stores them as public attributes and
    checks ``compression``.

    Raises:
        ValueError: ``compression`` is neither ``"deflate"`` nor ``None``.
    """

    def __init__(
        self,
        *,
        origins: Sequence[OriginRule] | None,
        subprotocols: Sequence[str] | None,
        select_subprotocol: Callable[[Sequence[str], Sequence[str]], str | None] | None,
        server_header: str | None,
        max_size: int | None,
        compression: str | None,
        max_queue: int,
        ping_interval: float | None,
        ping_timeout: float | None,
        close_timeout: float | None,
        open_timeout: float | None,
        write_timeout: float | None,
        logger: logging.Logger,
    ) -> None:
        self.origins = origins
        self.subprotocols = subprotocols
        self.select_subprotocol = select_subprotocol
        self.server_header = server_header
        self.max_size = max_size
        self._extensions = server_extensions(compression)  # ValueError if unknown
        self.max_queue = max_queue
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.open_timeout = open_timeout
        self.write_timeout = write_timeout
        self.logger = logger
        self._connections: set[ServerConnection] = set()
        self._lock = threading.Lock()

    @property
    def connections(self) -> set[ServerConnection]:
        """The open connections (a copy: safe to iterate while connections come and go)."""
        with self._lock:
            return {conn for conn in self._connections if conn.state is State.OPEN}

    def _new_protocol(self) -> ServerProtocol:
        """The sans-I/O protocol of one connection, with these options."""
        return ServerProtocol(
            origins=self.origins,
            subprotocols=self.subprotocols,
            select_subprotocol=self.select_subprotocol,
            server_header=self.server_header,
            max_size=self.max_size,
            extensions=self._extensions,
        )
