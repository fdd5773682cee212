"""The options every connection has, whichever side opened it: :class:`ConnectionOptions`.

:class:`~syncws.Server`, :func:`~syncws.connect` and
:class:`~syncws.integrations.wsgi.Upgrader` keep their explicit keyword arguments (the ones
the docs list) and build one :class:`ConnectionOptions` from them, which checks them once;
each connection takes its settings from that object. The defaults are written here and in
those three signatures, which a test holds equal.

Also here, what a :class:`~syncws.Server` and an
:class:`~syncws.integrations.wsgi.Upgrader` share by composition: the protocol each
connection they open starts with (:func:`_server_protocols`), and the set of those
connections (:class:`_OpenConnections`).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from ..protocol.connection import DEFAULT_MAX_SIZE
from ..protocol.deflate import _check_compression, server_extensions
from ..protocol.events import State
from ..protocol.extensions import ServerExtensionFactory
from ..protocol.handshake import OriginRule
from ..protocol.server import ServerProtocol

if TYPE_CHECKING:
    from .server_connection import ServerConnection

__all__ = ["ConnectionOptions", "LoggerLike"]

#: What ``logger=`` accepts: a :class:`logging.Logger`, or a :class:`logging.LoggerAdapter`
#: that adds context to every record (see :doc:`/topics/logging`).
LoggerLike: TypeAlias = logging.Logger | logging.LoggerAdapter[Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionOptions:
    """The options of a connection, with their defaults, checked when it is made.

    :class:`~syncws.Server`, :func:`~syncws.connect` (and :func:`~syncws.reconnect`) and
    :class:`~syncws.integrations.wsgi.Upgrader` make one from their keyword arguments of
    the same names, where each is documented; read it as ``server.options``,
    ``upgrader.options``, or ``ws.server.options`` in a handler. It cannot be changed:
    ``dataclasses.replace(options, ping_interval=None)`` makes another (checked again).

    Raises:
        TypeError: An option has the wrong type (``max_queue="16"``, ``ping_interval=True``).
        ValueError: An option is out of range: a negative or infinite timeout, a
            ``ping_interval`` of 0, ``max_size`` or ``max_queue`` below 1, ``compression``
            neither ``"deflate"`` nor ``None``.
    """

    #: Largest incoming message, in bytes (after decompression); ``None`` for no limit.
    max_size: int | None = DEFAULT_MAX_SIZE
    #: Messages buffered while nobody reads, before the socket is no longer read.
    max_queue: int = 16
    #: ``"deflate"`` for permessage-deflate with syncws' settings, ``None`` for none.
    compression: str | None = "deflate"
    #: Seconds between keepalive pings; ``None`` sends none.
    ping_interval: float | None = 20
    #: Seconds to wait for the pong of a keepalive ping; ``None`` waits forever.
    ping_timeout: float | None = 20
    #: Seconds to wait for the closing handshake; ``None`` waits forever.
    close_timeout: float | None = 10
    #: Seconds for the opening handshake; ``None`` waits forever.
    open_timeout: float | None = 10
    #: Seconds a send may block on a peer that does not read; ``None`` blocks.
    write_timeout: float | None = None

    def __post_init__(self) -> None:
        _check_count("max_size", self.max_size, none="for no limit")
        _check_count("max_queue", self.max_queue, none=None)
        _check_compression(self.compression)
        _check_seconds("ping_interval", self.ping_interval, zero=False)
        for name in ("ping_timeout", "close_timeout", "open_timeout", "write_timeout"):
            _check_seconds(name, getattr(self, name), zero=True)


def _check_count(name: str, value: object, *, none: str | None) -> None:
    """``value`` is an integer of at least 1, or ``None`` when ``none`` says what it means."""
    if value is None and none is not None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        also = " or None" if none is not None else ""
        raise TypeError(f"{name} must be an integer{also}, got {type(value).__name__}")
    if value < 1:
        also = f", or None {none}" if none is not None else ""
        raise ValueError(f"{name} must be at least 1{also}, got {value}")


def _check_seconds(name: str, value: object, *, zero: bool) -> None:
    """``value`` is ``None`` or a finite number of seconds, positive (or 0 if ``zero``)."""
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number of seconds or None, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        least = "0 or more" if zero else "more than 0"
        raise ValueError(f"{name} must be {least} seconds (finite) or None, got {value}")


def _server_protocols(
    options: ConnectionOptions,
    *,
    origins: Sequence[OriginRule] | None,
    subprotocols: Sequence[str] | None,
    select_subprotocol: Callable[[Sequence[str], Sequence[str]], str | None] | None,
    server_header: str | None,
    extensions: Iterable[ServerExtensionFactory] | None,
) -> Callable[[], ServerProtocol]:
    """What makes the Sans-I/O protocol of each connection a server opens (the handshake
    options, the extension factories made once).

    Raises:
        TypeError: ``extensions`` is not a list of server extension factories.
    """
    return functools.partial(
        ServerProtocol,
        origins=origins,
        subprotocols=subprotocols,
        select_subprotocol=select_subprotocol,
        server_header=server_header,
        max_size=options.max_size,
        extensions=server_extensions(options.compression, extensions),
    )


class _OpenConnections:
    """The connections a :class:`~syncws.Server` (or an
    :class:`~syncws.integrations.wsgi.Upgrader`) opened, from the moment they are listed
    until they are closed, under a lock of their own."""

    __slots__ = ("_connections", "_lock")

    def __init__(self) -> None:
        self._connections: set[ServerConnection] = set()
        self._lock = threading.Lock()

    def add(self, conn: ServerConnection) -> None:
        with self._lock:
            self._connections.add(conn)

    def discard(self, conn: ServerConnection) -> None:
        with self._lock:
            self._connections.discard(conn)

    def listed(self) -> list[ServerConnection]:
        """All of them, whatever their state (a copy)."""
        with self._lock:
            return list(self._connections)

    def open(self) -> set[ServerConnection]:
        """Those that are open (a copy: safe to iterate while connections come and go)."""
        with self._lock:
            return {conn for conn in self._connections if conn.state is State.OPEN}
