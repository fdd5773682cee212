"""The worker runner: ``python -m syncws run MODULE:HANDLER --workers N``.

With ``--workers 1`` (the default) the handler is served in this process, as
:func:`syncws.serve` does. With more, a supervising parent forks N worker processes that
share the port and watches them:

* **Sharing the port.** Where the system has ``SO_REUSEPORT`` (Linux, the BSDs), each
  worker binds its own socket to the port and the kernel spreads new connections among
  them; the parent holds a bound, non-listening socket of its own, which reserves the
  port and finds it when ``--port 0``. Elsewhere, and for ``--unix-path``, the parent binds
  and listens before forking (every address of the host, as a :class:`~syncws.Server`
  does), and the workers accept on those sockets; which worker accepts a connection is
  the kernel's pick.
* **Importing the handler** happens in the parent, before any worker starts: a mistake is
  one line on standard error and exit status 2. Workers inherit the imported module (as
  gunicorn's ``--preload``): what the module starts at import (threads, connections) is
  the parent's, not the workers'.
* **A worker that dies** is logged (one line) and restarted, at once if it ran for a while
  (:data:`STABLE_AFTER`), else after a delay that doubles up to :data:`MAX_RESTART_DELAY`,
  against crash loops.
* **SIGTERM or Ctrl-C** stops every worker gracefully (its clients get 1001 within
  ``--close-timeout``), then the parent exits with status 0. Workers still running
  ``--close-timeout`` plus :data:`KILL_GRACE` seconds later are killed; a second Ctrl-C or
  SIGTERM kills them at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import select
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from ..runtime.server import Server, _bind, serve

__all__ = ["KILL_GRACE", "MAX_RESTART_DELAY", "STABLE_AFTER", "main"]

logger = logging.getLogger("syncws.run")

#: A worker that ran this many seconds before dying is restarted at once.
STABLE_AFTER = 10.0
#: The longest delay before restarting a worker that keeps dying young, in seconds.
MAX_RESTART_DELAY = 10.0
#: Seconds granted beyond ``--close-timeout`` before workers that did not stop are killed.
KILL_GRACE = 5.0

_FIRST_RESTART_DELAY = 0.1
_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}


class _UsageError(Exception):
    """A mistake in the command line or the handler; its message is the one line shown."""


def load_handler(target: str) -> Callable[..., Any]:
    """Import ``MODULE:ATTRIBUTE`` (the attribute may be dotted) from the current directory
    or ``sys.path``.

    Raises:
        _UsageError: The target is malformed, the module fails to import, or the attribute
            is missing or not callable; the message names which.
    """
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise _UsageError(f"expected MODULE:HANDLER, got {target!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, "")  # as python -m and gunicorn do: the current directory
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise _UsageError(
            f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _UsageError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not callable(obj):
        raise _UsageError(f"{target} is not callable: {type(obj).__name__}")
    handler: Callable[..., Any] = obj
    return handler


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``syncws run``."""
    parser = argparse.ArgumentParser(
        prog="syncws run",
        description="Serve HANDLER (a function of MODULE) with N worker processes.",
    )
    parser.add_argument("target", metavar="MODULE:HANDLER", help="e.g. app:echo")
    parser.add_argument("--host", default="localhost", help="interface (default: localhost)")
    parser.add_argument("--port", type=int, default=8765, help="0 for a free one (8765)")
    parser.add_argument("--unix-path", metavar="PATH", help="a Unix socket instead of TCP")
    parser.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    parser.add_argument("--tls-cert", metavar="FILE", help="certificate chain (PEM): TLS")
    parser.add_argument("--tls-key", metavar="FILE", help="private key (PEM) of --tls-cert")
    parser.add_argument("--max-connections", type=int, default=1024, help="per worker")
    parser.add_argument("--max-size", type=int, default=2**20, help="bytes per message")
    parser.add_argument(
        "--compression", choices=["deflate", "none"], default="deflate", help="default: deflate"
    )
    parser.add_argument("--backlog", type=int, default=128, help="listen backlog (128)")
    parser.add_argument("--ping-interval", type=float, default=20.0, help="seconds")
    parser.add_argument("--ping-timeout", type=float, default=20.0, help="seconds")
    parser.add_argument("--close-timeout", type=float, default=10.0, help="seconds")
    parser.add_argument(
        "--trusted-proxies",
        metavar="LIST",
        help="comma-separated addresses or networks of reverse proxies (trusted_proxies)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="default: info",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``syncws run``; return the exit status (2 for usage errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.workers < 1:
        parser.error("--workers must be 1 or more")
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(process)d %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        handler = load_handler(args.target)
    except _UsageError as exc:
        print(f"syncws run: error: {exc}", file=sys.stderr)
        return 2
    options: dict[str, Any] = {
        "max_connections": args.max_connections,
        "max_size": args.max_size,
        "ping_interval": args.ping_interval,
        "ping_timeout": args.ping_timeout,
        "close_timeout": args.close_timeout,
        "compression": None if args.compression == "none" else args.compression,
        "backlog": args.backlog,
    }
    if args.trusted_proxies:
        options["trusted_proxies"] = [p.strip() for p in args.trusted_proxies.split(",")]
    if args.tls_cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            print(f"syncws run: cannot load the TLS certificate and key: {exc}", file=sys.stderr)
            return 1
        options["ssl"] = context
    host = None if args.unix_path else args.host
    port = None if args.unix_path else args.port
    try:
        if args.workers == 1:
            if args.unix_path:
                options["unix_path"] = args.unix_path
            serve(handler, host, port, **options)
            return 0
        return _Supervisor(handler, host, port, args.unix_path, args.workers, options).run()
    except (OSError, ValueError) as exc:
        where = args.unix_path or f"{args.host}:{args.port}"
        print(f"syncws run: cannot listen on {where}: {exc}", file=sys.stderr)
        return 1


class _Supervisor:
    """The parent process of ``--workers N`` (see the module docstring)."""

    def __init__(
        self,
        handler: Callable[..., Any],
        host: str | None,
        port: int | None,
        unix_path: str | None,
        workers: int,
        options: dict[str, Any],
    ) -> None:
        self.handler = handler
        self.count = workers
        self.options = options
        self.unix_path = unix_path
        self.close_timeout: float = options["close_timeout"]
        self.stopping = False
        self.kill_at: float | None = None
        self.workers: dict[int, float] = {}  # pid -> when it started
        self.delay = 0.0  # before the next restart
        self.restart_at: list[float] = []  # when to start each missing worker
        # The parent's sockets: a port reservation (SO_REUSEPORT) or the shared listener.
        self.held: list[socket.socket] = []
        # Workers read this pipe, whose write end only the parent holds: end of file
        # means the parent died (even of SIGKILL), and the worker stops gracefully.
        self.lifeline = os.pipe()
        self.worker_options: dict[str, Any]
        if unix_path is None and hasattr(socket, "SO_REUSEPORT"):
            self.held = self._reserve(host, port)
            bound = self.held[0].getsockname()[1]
            self.worker_options = {"host": host, "port": bound, "reuse_port": True}
            self.where = f"{host}:{bound} (SO_REUSEPORT)"
        else:
            # As a Server binds: every address of the host (localhost: ::1 and 127.0.0.1).
            self.held = _bind(host, port, unix_path, False, options["backlog"], logger)
            self.worker_options = {"sock": self.held}
            if unix_path is not None:
                self.where = f"unix:{unix_path}"
            else:
                self.where = f"{host}:{self.held[0].getsockname()[1]}"

    @staticmethod
    def _reserve(host: str | None, port: int | None) -> list[socket.socket]:
        """Bind (without listening) every address of ``host`` with SO_REUSEPORT: the port
        is checked (and picked, for 0) before any worker starts, and stays reserved."""
        sockets: list[socket.socket] = []
        infos = socket.getaddrinfo(
            host or None, port or 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        try:
            for family, type_, proto, _, address in infos:
                sock = socket.socket(family, type_, proto)
                sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                if len(sockets) > 1:
                    address = (address[0], sockets[0].getsockname()[1], *address[2:])
                sock.bind(address)
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        return sockets

    def run(self) -> int:
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        previous_fd = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        previous = {
            signum: signal.signal(signum, handler)
            for signum, handler in [
                (signal.SIGTERM, self._stop),
                (signal.SIGINT, self._stop),
                (signal.SIGCHLD, lambda signum, frame: None),  # for the wake-up fd
            ]
        }
        try:
            logger.info("starting %d workers on %s", self.count, self.where)
            for _ in range(self.count):
                self._spawn(wake_r, wake_w)
            while self.workers or not self.stopping:
                self._reap()
                now = time.monotonic()
                if self.stopping:
                    self.restart_at.clear()
                    if self.kill_at is not None and now >= self.kill_at:
                        self._signal_all(signal.SIGKILL)
                        self.kill_at = None
                while self.restart_at and self.restart_at[0] <= now and not self.stopping:
                    self.restart_at.pop(0)
                    self._spawn(wake_r, wake_w)
                deadlines = [*self.restart_at[:1]]
                if self.kill_at is not None:
                    deadlines.append(self.kill_at)
                timeout = max(0.0, min(deadlines) - now) if deadlines else None
                if self.workers or not self.stopping:
                    select.select([wake_r], [], [], timeout)
                    try:
                        wake_r.recv(4096)
                    except BlockingIOError:
                        pass
            logger.info("stopped")
            return 0
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            signal.set_wakeup_fd(previous_fd)
            wake_r.close()
            wake_w.close()
            for sock in self.held:
                sock.close()
            for fd in self.lifeline:
                os.close(fd)
            if self.unix_path is not None:
                try:
                    os.unlink(self.unix_path)
                except OSError:
                    pass

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            logger.warning("stopping again: killing %d workers", len(self.workers))
            self._signal_all(signal.SIGKILL)
            return
        self.stopping = True
        self.kill_at = time.monotonic() + self.close_timeout + KILL_GRACE
        logger.info("stopping %d workers", len(self.workers))
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, signum: int) -> None:
        for pid in self.workers:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def _reap(self) -> None:
        """Collect the workers that exited; schedule their restart unless stopping."""
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            started = self.workers.pop(pid, None)
            if started is None or self.stopping:
                continue
            lived = time.monotonic() - started
            if lived >= STABLE_AFTER:
                self.delay = 0.0
            else:
                self.delay = min(MAX_RESTART_DELAY, max(_FIRST_RESTART_DELAY, self.delay * 2))
            logger.warning(
                "worker %d %s after %.1f s; restarting it in %.1f s",
                pid,
                _describe(status),
                lived,
                self.delay,
            )
            self.restart_at.append(time.monotonic() + self.delay)
            self.restart_at.sort()

    def _spawn(self, wake_r: socket.socket, wake_w: socket.socket) -> None:
        # Signals wait until the child has dropped the parent's handlers: run in the
        # child, _stop would signal the child's copy of the worker list, its siblings.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            self.workers[pid] = time.monotonic()
            logger.debug("worker %d started", pid)
            return
        # The child: never returns into the parent's loop.
        status = 1
        try:
            signal.set_wakeup_fd(-1)
            for signum in _SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            wake_r.close()
            wake_w.close()
            os.close(self.lifeline[1])
            threading.Thread(target=_watch_parent, args=(self.lifeline[0],), daemon=True).start()
            if "sock" not in self.worker_options:
                for sock in self.held:
                    sock.close()
            options = {**self.options, **self.worker_options}
            with Server(self.handler, **options) as server:
                # serve()'s handling of SIGINT and SIGTERM, around serve_forever().
                for signum in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(signum, server._request_stop)
                server.serve_forever()
            status = 0
        except BaseException:
            logger.exception("worker failed")
        finally:
            logging.shutdown()
            os._exit(status)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def _watch_parent(lifeline: int) -> None:
    """In a worker: stop gracefully once the parent is gone (the pipe reads end of file)."""
    while os.read(lifeline, 1):
        pass
    os.kill(os.getpid(), signal.SIGTERM)
