"""Automatic reconnection: ``for ws in syncws.reconnect(uri): ...``.

The generator runs in the caller's thread and starts no thread of its own: between
attempts it sleeps in :func:`time.sleep`, which Ctrl-C (``SIGINT`` to the main thread)
interrupts at once with :exc:`KeyboardInterrupt`.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..exceptions import (
    InvalidHandshake,
    InvalidMessage,
    InvalidProxyMessage,
    InvalidProxyStatus,
    InvalidRedirect,
    InvalidStatus,
    ProxyError,
)
from ..protocol.uri import parse_uri
from .client import ClientConnection, connect, redact_uri
from .options import LoggerLike

__all__ = ["backoff", "process_exception", "reconnect"]

#: Defaults of :func:`backoff`: the first delay is drawn from 0 to ``INITIAL_DELAY``
#: (clients that lost the same server spread out), the next ones grow by ``FACTOR``,
#: up to ``MAX_DELAY``.
INITIAL_DELAY = 1.0
FACTOR = 1.618
MAX_DELAY = 60.0
#: Seconds a connection must stay open for the delays to start over (see reconnect()).
STABLE_AFTER = 10.0
# TLS alerts with which a server refuses the client's certificate, or asks for one (TLS
# 1.3, RFC 8446 §6.2: "certificate_required"): a configuration to fix, not a network to
# wait for. (TLS 1.2 says "handshake failure" for a missing one, as for much else.)
_CERTIFICATE_REFUSALS = frozenset(
    {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    }
)
# SOCKS5 replies 1 (general failure), 3, 4 (network, host unreachable), 5 (refused), 6 (TTL
# expired); SOCKS4 0x5B (rejected or failed).
_SOCKS_UNREACHABLE = frozenset({1, 3, 4, 5, 6, 0x5B})


def backoff(
    initial_delay: float = INITIAL_DELAY, factor: float = FACTOR, max_delay: float = MAX_DELAY
) -> Iterator[float]:
    """The default delays of :func:`reconnect`, in seconds: exponential backoff with jitter.

    The first delay is random between 0 and ``initial_delay``; then each is ``factor``
    times the previous bound, capped at ``max_delay``, and drawn between half the bound
    and the bound, so that clients that lost the same server do not come back at once.
    Never ends.
    """
    yield random.uniform(0, initial_delay)
    bound = initial_delay
    while True:
        bound = min(bound * factor, max_delay)
        yield random.uniform(bound / 2, bound)


def process_exception(exc: Exception) -> Exception | None:
    """Tell :func:`reconnect` whether a failure to connect is worth retrying.

    Returns ``None`` to retry, or the exception to raise out of the loop. Transient:
    network errors and timeouts (:exc:`OSError`, :exc:`TimeoutError`), a connection that
    ended during the handshake (:exc:`~syncws.InvalidMessage`: a server restarting), HTTP
    5xx from the server or the proxy. Fatal: HTTP 4xx, redirects that cannot be followed,
    an invalid URI, a certificate that fails verification, a server that refuses the
    client's certificate or requires one (its TLS alert), a SOCKS proxy's refusal, and
    anything else (a bug is not fixed by retrying).

    Pass your own to :func:`reconnect` to change that; it may call this one.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc
    if isinstance(exc, ssl.SSLError) and exc.reason in _CERTIFICATE_REFUSALS:
        return exc
    if isinstance(exc, InvalidRedirect):
        return exc
    if isinstance(exc, InvalidStatus | InvalidProxyStatus):
        return None if 500 <= exc.response.status_code <= 599 else exc
    if isinstance(exc, InvalidMessage | InvalidProxyMessage):
        return None  # the server or the proxy closed (restarting) or garbled its answer
    if isinstance(exc, ProxyError):
        # SOCKS replies that say the server is unreachable, as a 502 would: transient.
        code = getattr(exc.__cause__, "error_code", None)
        return None if code in _SOCKS_UNREACHABLE else exc
    if isinstance(exc, ProxyError | InvalidHandshake):
        return exc
    if isinstance(exc, OSError):  # TimeoutError, ConnectionRefusedError, ssl.SSLError...
        return None
    return exc


def reconnect(
    uri: str,
    *,
    process_exception: Callable[[Exception], Exception | None] = process_exception,
    reconnect_delays: Iterable[float] | None = None,
    logger: LoggerLike | None = None,
    **options: Any,
) -> Iterator[ClientConnection]:
    """Connect to ``uri``, and again each time the connection ends::

        for ws in syncws.reconnect("wss://example.com/feed"):
            try:
                for message in ws:
                    print(message)
            except syncws.ConnectionClosedError:
                continue  # the connection broke: reconnect

    Each iteration gets a new, open connection, which is closed when the iteration ends
    (a ``break`` out of the loop included). A failure to connect is passed to
    ``process_exception``: when it returns ``None``, the next attempt comes after the
    next delay of ``reconnect_delays``; else what it returns is raised out of the loop.
    Once a connection has stayed open for :data:`STABLE_AFTER` seconds, the delays start
    over; a connection that ends sooner counts as a failure for the delays.

    Args:
        uri: As for :func:`~syncws.connect`.
        process_exception: Decides what is transient (return ``None``) and what is fatal
            (return the exception to raise); :func:`process_exception` by default.
        reconnect_delays: Seconds to wait before each attempt after a failure, and before
            reconnecting after a connection ended; iterated anew (``iter()``) each time a
            connection has stayed open for :data:`STABLE_AFTER` seconds, so a list restarts
            from its first delay. When it runs
            out, the last failure is raised. Default: :func:`backoff`, exponential with
            jitter, capped at 60 s.
        logger: Logger, ``logging.getLogger("syncws.client")`` by default. Each retry is
            logged at INFO with its delay and the reason (the URI without user info or
            query string).
        options: Passed to :func:`~syncws.connect` (``unix_path``, ``proxy``, ``ssl``,
            ``open_timeout``...).

    Yields:
        Open connections, one at a time.

    Raises:
        Exception: What ``process_exception`` returned for a fatal failure.
        KeyboardInterrupt: Ctrl-C, also during a delay, which it ends at once.
    """
    wsuri = parse_uri(uri)  # InvalidURI: fatal before any attempt
    logger = logger or logging.getLogger("syncws.client")
    options["logger"] = logger
    delays = iter(backoff() if reconnect_delays is None else reconnect_delays)
    where = redact_uri(wsuri)
    while True:
        try:
            ws = connect(uri, **options)
        except Exception as exc:
            fatal = process_exception(exc)
            if fatal is exc:
                raise
            if fatal is not None:
                raise fatal from exc
            delay = next(delays, None)
            if delay is None:
                raise
            logger.info(
                "connection to %s failed (%s); retrying in %.2f s", where, _describe(exc), delay
            )
            time.sleep(delay)
            continue
        opened = time.monotonic()
        with ws:
            yield ws
        if time.monotonic() - opened >= STABLE_AFTER:
            # It held: the delays start over, and the next attempt waits the first of them.
            # (A server that accepts and drops each connection at once gets the growing
            # delays of one that refuses them, not a reconnection a second forever.)
            delays = iter(backoff() if reconnect_delays is None else reconnect_delays)
        delay = next(delays, None)
        if delay is None:
            return
        logger.info("connection to %s ended; reconnecting in %.2f s", where, delay)
        time.sleep(delay)


def _describe(exc: Exception) -> str:
    """``exc`` for a log line: its class and message."""
    text = str(exc)
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
