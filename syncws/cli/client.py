"""The interactive client: ``python -m syncws URI`` (or ``syncws URI``).

Three threads share one connection: the main thread reads input lines and sends them, a
reader thread is the connection's only ``recv()`` caller and prints what arrives, and with
``--ping`` a third one pings. Output goes through :class:`~syncws.cli.terminal.Console`,
which keeps incoming lines from garbling the line being typed.

The main thread may be blocked reading stdin when the connection ends (the server closed
it). The reader thread then wakes it with ``SIGINT`` aimed at the main thread, as if the
user pressed Ctrl-C (see :class:`~syncws.cli.signals.MainThreadWaker`). The handler turns
it into :exc:`KeyboardInterrupt` *only while the main thread waits for input*: elsewhere
(in ``send()``, in ``close()``) an exception could leave a frame half-written, so the
handler only records the request there.
"""

from __future__ import annotations

import _thread
import argparse
import getpass
import os
import re
import signal
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from .. import __version__
from ..exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidURI,
    WebSocketException,
)
from ..protocol.frames import Close, CloseCode
from ..protocol.http11 import Headers
from ..protocol.uri import parse_uri
from ..runtime.client import ClientConnection, connect
from ..runtime.connection import Data
from ..runtime.options import ConnectionOptions
from ..runtime.reconnect import backoff, process_exception
from .signals import MainThreadWaker, signals_blocked
from .terminal import (
    Console,
    close_line,
    describe_failure,
    escape,
    format_message,
    is_interactive,
)

__all__ = ["build_parser", "main"]

#: Default for ``--wait``: seconds the server has to answer once piped input ends.
DEFAULT_WAIT = 1.0
#: Seconds to wait for the reader thread once the connection is closed (it is then only
#: returning from ``recv()``).
READER_JOIN_TIMEOUT = 5.0

#: What ``/help`` prints (narrower than 80 columns).
COMMANDS_HELP = (
    "Commands (a line that starts with a slash is not sent):",
    "  /ping [DATA]            ping, and show the round trip when the pong comes",
    "  /close [CODE [REASON]]  close with CODE (1000) and REASON, and exit",
    "  /help                   show this list",
    "  //TEXT                  send the message /TEXT",
)

_OK = (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the client's command line."""
    defaults = ConnectionOptions()
    parser = argparse.ArgumentParser(
        prog="syncws",
        description=(
            "Interactive WebSocket client: send each input line as a message and print the "
            "messages received. Works in a terminal and with piped input."
        ),
        epilog=(
            "In a terminal, a line that starts with a slash is a command: /help lists them. "
            "Exit status: 0 after a normal closure (1000 or 1001), 1 when the connection "
            "fails or closes abnormally, 2 for usage errors. "
            "'syncws serve --help' describes the demo server."
        ),
    )
    parser.add_argument("uri", help="ws:// or wss:// URI to connect to")
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        type=_header,
        metavar="'NAME: VALUE'",
        help="add a header to the opening handshake (repeatable)",
    )
    parser.add_argument(
        "--subprotocol",
        action="append",
        default=[],
        metavar="NAME",
        help="offer a subprotocol (repeatable, by preference)",
    )
    parser.add_argument("--origin", help="the Origin header, as a browser would send it")
    verify = parser.add_mutually_exclusive_group()
    verify.add_argument(
        "--insecure",
        action="store_true",
        help="wss:// only: do not verify the server's certificate (for self-signed ones)",
    )
    verify.add_argument(
        "--ca",
        metavar="FILE",
        help="wss:// only: verify the server's certificate with these CA certificates (PEM) "
        "instead of the system's",
    )
    parser.add_argument(
        "--cert",
        metavar="FILE",
        help="wss:// only: the client certificate (PEM), for servers that require one; "
        "with its private key unless --key gives it",
    )
    parser.add_argument("--key", metavar="FILE", help="the private key of --cert (PEM)")
    parser.add_argument(
        "--no-compression",
        action="store_true",
        help="do not negotiate permessage-deflate",
    )
    parser.add_argument(
        "--ping",
        type=_positive,
        metavar="SECONDS",
        help="send a ping every SECONDS and print the latency",
    )
    parser.add_argument(
        "--binary",
        action="store_true",
        help="send input lines as binary messages, decoded from hex ('01 ff' or '01ff')",
    )
    parser.add_argument(
        "--max-size",
        type=_non_negative_int,
        default=defaults.max_size,
        metavar="BYTES",
        help="largest incoming message; 0 for no limit (default: 1 MiB)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=defaults.open_timeout,
        metavar="SECONDS",
        help="time allowed to open the connection (default: 10)",
    )
    proxy = parser.add_mutually_exclusive_group()
    proxy.add_argument(
        "--proxy",
        metavar="URL",
        help=(
            "connect through this proxy: http://[user:pass@]host:port, https://..., "
            "socks5://, socks5h://, socks4://, socks4a:// (default: from the environment, "
            "https_proxy / http_proxy / all_proxy / socks_proxy, unless no_proxy matches)"
        ),
    )
    proxy.add_argument(
        "--no-proxy",
        action="store_true",
        help="connect directly, whatever the environment says",
    )
    parser.add_argument(
        "--max-redirects",
        type=_non_negative_int,
        default=10,
        metavar="N",
        help="redirects to follow, each printed as 'Redirected to URI.' (default: 10)",
    )
    parser.add_argument(
        "--reconnect",
        action="store_true",
        help=(
            "when the connection fails or the server ends it, connect again with "
            "exponential backoff (a line per attempt); Ctrl-C or the end of input stops"
        ),
    )
    parser.add_argument(
        "--wait",
        type=_non_negative,
        default=DEFAULT_WAIT,
        metavar="SECONDS",
        help=(
            "piped input: once it ends, time the server has to answer before the client "
            f"closes the connection (default: {DEFAULT_WAIT:g})"
        ),
    )
    parser.add_argument("--version", action="version", version=f"syncws {__version__}")
    return parser


def _header(value: str) -> tuple[str, str]:
    name, colon, rest = value.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {value!r}")
    pair = (name.strip(), rest.strip())
    try:
        Headers([pair])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return pair


def _number(value: str, minimum: float, strict: bool) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number < minimum or (strict and number == minimum) or number != number:
        raise argparse.ArgumentTypeError(
            f"must be {'greater than' if strict else 'at least'} {minimum:g}: {value}"
        )
    return number


def _positive(value: str) -> float:
    return _number(value, 0, strict=True)


def _non_negative(value: str) -> float:
    return _number(value, 0, strict=False)


def _non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0: {value}")
    return number


class Session:
    """One connection driven by the command line: the state the threads share."""

    def __init__(self, ws: ClientConnection, console: Console, args: argparse.Namespace) -> None:
        self.ws = ws
        self.console = console
        self.args = args
        self.closed: ConnectionClosed | None = None
        self.finished = threading.Event()  # the reader thread is done: connection closed
        self.wake = threading.Event()  # time to stop sending: closed, Ctrl-C, stdout gone
        self.input_active = False  # the main thread waits for input: interruptible
        self.closing = False
        # The server ended the connection while we still had input to send: the case in
        # which --reconnect connects again (not after the input ended, or Ctrl-C).
        self.ended_by_peer = False
        self.input_ended = False  # Ctrl-D, or the end of piped input
        self.close_with: tuple[int, str] = (CloseCode.NORMAL_CLOSURE, "")  # /close CODE REASON
        self._waker = MainThreadWaker(lambda: self.input_active)

    def run(self) -> int:
        """Send input until it ends or the connection does; close; return the exit code."""
        previous = self._install_signal_handlers()
        try:
            for uri in self.ws.redirects:
                self.console.print(f"Redirected to {escape(uri)}.")
            where = self.ws.redirects[-1] if self.ws.redirects else _shown(self.args.uri)
            self.console.print(f"Connected to {escape(where)}.")
            if self.args.subprotocol:
                self.console.print(f"Subprotocol: {self.ws.subprotocol or '(none)'}.")
            reader = threading.Thread(target=self.receive, name="syncws-cli-reader", daemon=True)
            with signals_blocked():
                reader.start()
                if self.args.ping is not None:
                    threading.Thread(target=self.ping, name="syncws-cli-ping", daemon=True).start()
            self.send_input()
            self.ended_by_peer = self.finished.is_set() and not self.input_ended
            if not self.console.interactive and not self.finished.is_set():
                self.wake.wait(self.args.wait)
            self.closing = True
            self.ws.close(*self.close_with)
        finally:
            self._waker.uninstall()
            for signum, handler in previous.items():
                if handler is not None:  # None: installed outside Python, cannot restore
                    signal.signal(signum, handler)
        reader.join(READER_JOIN_TIMEOUT)
        self.console.end_input()
        closed = self.closed
        if closed is None:  # the reader thread is stuck; report what the protocol knows
            code = self.ws.close_code or CloseCode.ABNORMAL_CLOSURE
            self.console.print(close_line(code, self.ws.close_reason or ""))
            return 1
        code, reason = closed.code, closed.reason
        if closed.rcvd is None and closed.sent is not None and closed.sent.code not in _OK:
            # We failed the connection (e.g. 1009) and did not wait for the echo: the
            # code we sent says what happened better than 1006.
            code, reason = closed.sent.code, closed.sent.reason
        self.console.print(close_line(code, reason))
        return 0 if isinstance(closed, ConnectionClosedOK) else 1

    def send_input(self) -> None:
        """Main thread: send each input line until the input or the connection ends."""
        try:
            while True:
                self.input_active = True
                if self.wake.is_set():
                    return
                try:
                    line = self.console.read_line()
                except UnicodeDecodeError:
                    self.console.error("Invalid UTF-8 in the input: line not sent.")
                    continue
                self.input_active = False
                if line.startswith("/") and self.console.interactive:
                    if not line.startswith("//"):
                        if self.command(line):
                            return
                        continue
                    line = line[1:]
                message: Data = line
                if self.args.binary:
                    try:
                        message = bytes.fromhex(line)
                    except ValueError:
                        self.console.error(f"Invalid hex: {escape(line)!r} not sent.")
                        continue
                try:
                    self.ws.send(message)
                except ConnectionClosed:
                    return
                except UnicodeError:  # lone surrogates from a terminal's undecodable bytes
                    self.console.error("Invalid text in the input: line not sent.")
        except EOFError:  # Ctrl-D, or the end of piped input
            self.input_ended = True
        except KeyboardInterrupt:  # Ctrl-C, or woken up by the reader
            pass
        finally:
            self.input_active = False

    def receive(self) -> None:
        """Reader thread: print every message until the connection closes."""
        try:
            while True:
                message = self.ws.recv()
                self.console.print(format_message(message))
                if self.console.broken.is_set():
                    self._stop()
        except ConnectionClosed as exc:
            self.closed = exc
        finally:
            self.finished.set()
            self._stop()

    def ping(self) -> None:
        """Ping thread: ping every ``--ping`` seconds and print the round-trip time."""
        while not self.finished.wait(self.args.ping):
            start = time.monotonic()
            try:
                pong = self.ws.ping(ack_on_close=True)
            except ConnectionClosed:
                return
            if not self._await_pong(pong, start, "Latency: {:.2f} ms"):
                return

    def _await_pong(self, pong: threading.Event, start: float, line: str) -> bool:
        """Wait for ``pong`` (a ping's, with ``ack_on_close``), then print ``line`` with
        the round-trip time in ms; ``False`` if the connection closed first."""
        pong.wait()
        if self.finished.is_set() or self.closing:
            return False
        self.console.print(line.format((time.monotonic() - start) * 1000))
        return True

    def command(self, line: str) -> bool:
        """Main thread: run the slash command ``line`` (in a terminal only: piped lines
        that start with a slash are messages); ``True`` when the client must stop sending
        and close (``/close``)."""
        name, _, argument = line.partition(" ")
        argument = argument.strip()
        if name == "/ping":
            self._slash_ping(argument)
        elif name == "/close":
            return self._slash_close(argument)
        elif name == "/help":
            for help_line in COMMANDS_HELP:
                self.console.print(help_line)
        else:
            name = escape(name)
            self.console.error(
                f"Unknown command: {name} (/help lists them; /{name} sends {name} as a message)."
            )
        return False

    def _slash_ping(self, data: str) -> None:
        """``/ping [DATA]``: ping, and print the round-trip time once the pong arrives."""
        start = time.monotonic()
        try:
            pong = self.ws.ping(data or None, ack_on_close=True)
        except ConnectionClosed:
            return  # the reader thread reports the closing
        except (ValueError, ConcurrencyError, UnicodeError) as exc:
            self.console.error(f"Ping not sent: {escape(str(exc))}.")
            return
        waiter = threading.Thread(
            target=self._await_pong,
            args=(pong, start, "Pong after {:.2f} ms."),
            name="syncws-cli-pong",
            daemon=True,
        )
        with signals_blocked():
            waiter.start()

    def _slash_close(self, argument: str) -> bool:
        """``/close [CODE [REASON]]``: check them, and have the client close with them."""
        code_text, _, reason = argument.partition(" ")
        reason = reason.strip()
        if not code_text.isdigit() and code_text:
            self.console.error(f"Not closed: {escape(code_text)!r} is not a close code.")
            return False
        code = int(code_text) if code_text else int(CloseCode.NORMAL_CLOSURE)
        try:
            Close(code, reason).serialize()  # as close() will: a code it may not send, ...
        except ValueError as exc:
            self.console.error(f"Not closed: {escape(str(exc))}.")
            return False
        self.close_with = (code, reason)
        return True

    def _stop(self) -> None:
        """Have the main thread stop sending, waking it if it waits for input."""
        self.wake.set()
        if self._waker.installed:
            self._waker.wake(signal.SIGINT)
        elif self.input_active:  # pragma: no cover - Windows: effective once the read returns
            _thread.interrupt_main()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Ctrl-C, SIGTERM, or the reader thread's wake-up: stop sending and close."""
        if self.closing:
            if self._waker.kicked:
                return  # possibly a late wake-up, not a second Ctrl-C
            # Ctrl-C again while waiting for the server to acknowledge the close: give up.
            raise KeyboardInterrupt
        self.wake.set()
        if self.input_active:
            raise KeyboardInterrupt

    def _install_signal_handlers(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous  # signals are for the main thread; ends by input and close only
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, self._on_signal)
        self._waker.install()
        return previous


def _connect_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {
        "origin": args.origin,
        "subprotocols": args.subprotocol or None,
        "additional_headers": args.header or None,
        "open_timeout": args.timeout,
        "max_size": args.max_size or None,
        "compression": None if args.no_compression else "deflate",
        "max_redirects": args.max_redirects,
    }
    if args.no_proxy:
        options["proxy"] = None
    elif args.proxy is not None:
        options["proxy"] = args.proxy
    context = _tls_context(args)
    if context is not None:
        options["ssl"] = context
    return options


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context that ``--insecure``, ``--ca``, ``--cert`` and ``--key`` ask for, or
    ``None`` for the default one.

    Raises:
        ValueError: An option that does not apply, or a file that cannot be loaded; the
            message names the option and the file.
    """
    given = [f"--{name}" for name in ("ca", "cert", "key") if getattr(args, name)]
    if not args.uri.lower().startswith("wss:"):
        if given:
            raise ValueError(f"{given[0]} is for wss:// URIs")
        return None  # --insecure is harmless there: kept so for scripts that always pass it
    if args.key and not args.cert:
        raise ValueError("--key goes with --cert")
    if not (given or args.insecure):
        return None
    try:
        context = ssl.create_default_context(cafile=args.ca)
    except ssl.SSLError:
        raise ValueError(f"--ca {args.ca}: no PEM certificate in it") from None
    except OSError as exc:
        raise ValueError(f"--ca {args.ca}: {exc.strerror}") from None
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if args.cert:
        # Opened first to say which file is missing: load_cert_chain() does not.
        for option, path in (("--cert", args.cert), ("--key", args.key)):
            try:
                if path is not None:
                    with open(path, "rb"):
                        pass
            except OSError as exc:
                raise ValueError(f"{option} {path}: {exc.strerror}") from None
        where = f"--key {args.key}" if args.key else f"--cert {args.cert}"
        passphrase = _Passphrase(where)
        try:
            context.load_cert_chain(args.cert, args.key, password=passphrase.ask)
        except ssl.SSLError as exc:
            if passphrase.asked:
                raise ValueError(f"{where}: wrong passphrase") from None
            if exc.reason == "KEY_VALUES_MISMATCH":
                raise ValueError(f"{where}: not the key of the certificate") from None
            raise ValueError(f"--cert {args.cert}: not a PEM certificate and its key") from None
    return context


class _Passphrase:
    """The passphrase of an encrypted private key, asked on the terminal (never echoed)
    when OpenSSL needs it. Not from standard input, which carries the messages."""

    def __init__(self, where: str) -> None:
        self.where = where  # "--key FILE", as messages name it
        self.asked = False

    def ask(self) -> str:
        # getpass() asks on the controlling terminal, else on standard input if that is a
        # terminal; else it would read a message line, echoed.
        if not (sys.stdin is not None and sys.stdin.isatty()):
            try:
                os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
            except (OSError, AttributeError):  # AttributeError: no O_NOCTTY (Windows)
                message = (
                    f"{self.where}: an encrypted key, and no terminal to ask its passphrase on"
                )
                raise ValueError(message) from None
        self.asked = True
        return getpass.getpass(f"Passphrase for {self.where}: ")


def _connect(uri: str, options: dict[str, Any]) -> ClientConnection:
    """Call :func:`~syncws.connect` in a thread that keeps signals blocked.

    The heartbeat thread that ``connect()`` starts inherits that mask, so Ctrl-C always
    reaches the main thread (see :mod:`syncws.cli.signals`); meanwhile the main thread
    waits in ``join()``, which Ctrl-C interrupts at once.
    """
    outcome: list[ClientConnection | BaseException] = []

    def run() -> None:
        try:
            outcome.append(connect(uri, **options))
        except BaseException as exc:  # handed over to the main thread
            outcome.append(exc)

    thread = threading.Thread(target=run, name="syncws-cli-connect", daemon=True)
    with signals_blocked():
        thread.start()
    thread.join()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _shown(uri: str) -> str:
    """``uri`` as the client prints it: a password in its user info is masked (it would
    stay on the screen and in the terminal's scrollback, once per reconnection)."""
    return re.sub(r"^([a-zA-Z]+://[^/@:]*):[^/@]*@", r"\1:***@", uri)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the client with the command-line arguments ``argv``; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        parse_uri(args.uri)
    except InvalidURI as exc:
        parser.error(str(exc))
    try:
        options = _connect_options(args)
    except ValueError as exc:
        parser.error(str(exc))
    console = Console(is_interactive(sys.stdin, sys.stdout), sys.stdout, sys.stderr)
    delays = backoff()
    try:
        while True:
            try:
                ws = _connect(args.uri, options)
            except (OSError, WebSocketException, ValueError, ImportError) as exc:
                message = describe_failure(exc, args.timeout)
                failed = f"Failed to connect to {escape(_shown(args.uri))}: {message}"
                if not args.reconnect or process_exception(exc) is not None:
                    print(f"{failed}.", file=sys.stderr)
                    return 1
                delay = next(delays)
                print(f"{failed}; retrying in {delay:.1f} s.", file=sys.stderr)
                time.sleep(delay)  # in the main thread: Ctrl-C ends it at once
                continue
            delays = backoff()  # connected: the delays start over
            session = Session(ws, console, args)
            status = session.run()
            if not (args.reconnect and session.ended_by_peer):
                return status
            delay = next(delays)
            console.print(f"Reconnecting in {delay:.1f} s.")
            time.sleep(delay)
    except KeyboardInterrupt:  # while connecting, or a second Ctrl-C while closing
        console.end_input()
        print("Interrupted.", file=sys.stderr)
        return 1
