"""Integrations with WSGI applications: WebSockets next to Flask, Django, ... without asyncio.

Two ways, documented in :doc:`/howto/flask`:

* :mod:`syncws.integrations.sidecar`: a :class:`~syncws.Server` in a background thread of
  the WSGI process, on its own port, sharing the app's objects.
* :mod:`syncws.integrations.wsgi` (any WSGI app) and :mod:`syncws.integrations.flask`
  (``@sock.route``): WebSocket routes inside the app, upgrading the request by taking over
  the socket of the WSGI server (Werkzeug's dev server, gunicorn's sync and gthread workers),
  with :mod:`syncws.integrations.gunicorn` for gunicorn's graceful stop (1001, not 1006).

And :mod:`syncws.integrations.redis`: messages to topics across processes and hosts over
Redis pub/sub (:doc:`/howto/redis`).

Nothing here is imported by ``import syncws``; :mod:`syncws.integrations.flask` needs Flask
(``pip install syncws[flask]``), :mod:`syncws.integrations.redis` redis-py
(``pip install syncws[redis]``).
"""
