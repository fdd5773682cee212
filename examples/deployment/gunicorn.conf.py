"""gunicorn settings for a Flask app with WebSocket routes (``@sock.route``).

    gunicorn -c examples/deployment/gunicorn.conf.py app:app

On SIGTERM, the hook closes every WebSocket connection of the worker with 1001 (going away)
so that clients can tell a restart from a failure and reconnect; the views return and the
worker exits without waiting for the graceful timeout.
"""

from syncws.integrations.gunicorn import post_worker_init  # noqa: F401 - a gunicorn hook

worker_class = "gthread"
threads = 32  # each open WebSocket holds one thread: see the Flask guide on sizing
graceful_timeout = 15  # above the routes' close_timeout (10 s by default)
