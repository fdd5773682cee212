"""HTTP Basic authentication for the opening handshake (RFC 7617)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable

from ..exceptions import InvalidHeader
from ..protocol.headers import parse_authorization_basic
from ..protocol.http11 import Request, Response
from .server import ServerConnection

__all__ = ["basic_auth"]


def basic_auth(
    credentials: tuple[str, str] | Iterable[tuple[str, str]] | None = None,
    *,
    check_credentials: Callable[[str, str], bool] | None = None,
    realm: str = "",
) -> Callable[[ServerConnection, Request], Response | None]:
    """Build a ``process_request`` hook that requires HTTP Basic authentication.

    Give either ``credentials`` (one ``(username, password)`` pair or several), compared in
    constant time, or ``check_credentials(username, password) -> bool``. A request without
    valid credentials gets HTTP 401 with ``WWW-Authenticate: Basic``; an authenticated
    connection has the user name in ``ws.username``.

    Example::

        server = syncws.Server(handler, "localhost", 8765,
                               process_request=syncws.basic_auth(("alice", "s3cret")))

    Basic authentication sends the password in clear: use it over ``wss://`` only.

    Raises:
        TypeError: Neither or both of ``credentials`` and ``check_credentials`` are given.
    """
    if (credentials is None) == (check_credentials is None):
        raise TypeError("give either credentials or check_credentials")
    if credentials is not None:
        pairs: list[tuple[str, str]]
        if (
            isinstance(credentials, tuple)
            and len(credentials) == 2
            and all(isinstance(item, str) for item in credentials)
        ):
            pairs = [credentials]  # type: ignore[list-item]
        else:
            pairs = list(credentials)  # type: ignore[arg-type]
        table = {user.encode(): password.encode() for user, password in pairs}

        def check(username: str, password: str) -> bool:
            expected = table.get(username.encode())
            # Compare against something even for an unknown user, to keep timing flat.
            ok = hmac.compare_digest(password.encode(), expected or b"\0" * 32)
            return ok and expected is not None

        check_credentials = check
    assert check_credentials is not None
    verify = check_credentials
    challenge = f'Basic realm="{realm}", charset="UTF-8"'

    def process_request(ws: ServerConnection, request: Request) -> Response | None:
        # Several Authorization headers are malformed (it is a singleton field): they are
        # no credentials, as for websockets, rather than an error of this hook.
        values = request.headers.get_all("Authorization")
        value = values[0] if len(values) == 1 else None
        username = None
        if value is not None:
            try:
                username, password = parse_authorization_basic(value)
            except InvalidHeader:
                username = None
            else:
                if not verify(username, password):
                    username = None
        if username is None:
            response = ws.respond(401, "Missing or invalid credentials.\n")
            response.headers["WWW-Authenticate"] = challenge
            return response
        ws.username = username
        return None

    return process_request
