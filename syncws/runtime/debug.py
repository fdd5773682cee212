"""Introspection for soak tests and leak hunting: what a process still holds.

Nothing here is on the message path: each function walks the garbage collector's objects,
which costs milliseconds per call in a busy process. Call :func:`gc.collect` first when
the question is "what is still *referenced*" rather than "what has not been freed yet".
"""

from __future__ import annotations

import gc

from .connection import Connection

__all__ = ["live_connections"]


def live_connections() -> list[Connection]:
    """Every :class:`~syncws.Connection` object that the garbage collector still tracks,
    open or closed, server or client side.

    A server whose clients have all left, and whose closing handshakes are over, should
    hold none once :func:`gc.collect` has run: a connection that stays listed is
    referenced from somewhere it should not be.
    """
    return [obj for obj in gc.get_objects() if isinstance(obj, Connection)]
