"""The opening handshake of RFC 6455 §4, in three modules by idea:

* :mod:`~syncws.protocol.handshake.keys`: ``Sec-WebSocket-Key`` and
  ``Sec-WebSocket-Accept``;
* :mod:`~syncws.protocol.handshake.server`: a server validates a request with
  :func:`~.server.process_request` and gets the ``101`` to send, or builds an error response with
  :func:`~.server.reject_handshake`;
* :mod:`~syncws.protocol.handshake.client`: a client builds its request with
  :func:`~.client.build_request` and checks the answer with :func:`~.client.process_response`.

Both sides are plain functions over :class:`~syncws.protocol.http11.Request` and
:class:`~syncws.protocol.http11.Response`. The grammars of the headers they read are in
:mod:`~syncws.protocol.headers`, URIs in :mod:`~syncws.protocol.uri`. This package exports
the public names of the three modules.

Failures raise :exc:`~syncws.exceptions.InvalidHandshake` subclasses whose ``status_code``
and ``headers`` say how a server answers (:func:`~.server.reject_handshake` builds that answer).
"""

from __future__ import annotations

from .client import build_request, process_response
from .keys import GUID, accept_key, generate_key
from .server import OriginRule, process_request, reject, reject_handshake

__all__ = [
    "GUID",
    "OriginRule",
    "accept_key",
    "build_request",
    "generate_key",
    "process_request",
    "process_response",
    "reject",
    "reject_handshake",
]
