#!/usr/bin/env python
"""A WebSocket server next to a Django project, for the users logged in to the site.

It runs as a process of its own, with the project's settings, and uses the ORM and
Django's sessions from its handlers' threads::

    DJANGO_SETTINGS_MODULE=mysite.settings python examples/django_sidecar.py [PORT]

The browser sends the site's session cookie with the WebSocket handshake (same host,
another port: cookies do not care about ports), so ``authenticate`` finds the user as
Django's authentication middleware does. Without ``DJANGO_SETTINGS_MODULE``, a minimal
project is configured (SQLite at ``$DJANGO_DB``, default ``db.sqlite3``), enough to try it.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import django
from django.conf import settings
from django.contrib.auth import get_user
from django.db import close_old_connections
from django.http import HttpRequest, parse_cookie

import syncws


def setup() -> None:
    """Load the project's settings (or a minimal project), then Django's apps."""
    if not os.environ.get("DJANGO_SETTINGS_MODULE") and not settings.configured:
        settings.configure(
            INSTALLED_APPS=[
                "django.contrib.auth",
                "django.contrib.contenttypes",
                "django.contrib.sessions",
            ],
            DATABASES={
                "default": {
                    "ENGINE": "django.db.backends.sqlite3",
                    "NAME": os.environ.get("DJANGO_DB", "db.sqlite3"),
                }
            },
            SECRET_KEY=os.environ.get("SECRET_KEY", "change me"),
            USE_TZ=True,
        )
    django.setup()


def authenticate(ws: syncws.ServerConnection, request: syncws.Request) -> syncws.Response | None:
    """``process_request``: the Django user of the session cookie, or HTTP 401."""
    cookies = parse_cookie("; ".join(request.headers.get_all("Cookie")))
    session_key = cookies.get(settings.SESSION_COOKIE_NAME)
    if session_key is None:
        return ws.respond(401, "Log in first.\n")
    django_request = HttpRequest()
    django_request.session = importlib.import_module(settings.SESSION_ENGINE).SessionStore(
        session_key
    )
    try:
        user: Any = get_user(django_request)  # reads the session and the user: the ORM
    finally:
        close_old_connections()  # as at the end of a Django request: see the docs
    if not user.is_authenticated:
        return ws.respond(401, "Log in first.\n")
    ws.user = user
    return None


def handler(ws: syncws.ServerConnection) -> None:
    from django.contrib.auth.models import User  # once django.setup() has run

    name = ws.user.get_username()
    ws.send(f"Hello, {name}!")
    for message in ws:
        if message == "/users":
            try:
                count = User.objects.filter(is_active=True).count()
            finally:
                close_old_connections()
            ws.send(f"{count} users")
        else:
            syncws.broadcast(ws.server.connections, f"{name}: {message}")


def main() -> None:
    setup()
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8001
    # In production, the site's origin: the check matters as the session cookie
    # authenticates (see docs/howto/authentication.rst).
    origins = [os.environ.get("SITE_ORIGIN", "http://localhost:8000")]
    syncws.serve(handler, "localhost", port, process_request=authenticate, origins=origins)


if __name__ == "__main__":
    main()
