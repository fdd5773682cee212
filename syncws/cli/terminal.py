"""Terminal output for the interactive client: the lines it shows, and how they get there.

The main thread sits in :func:`input` (with :mod:`readline` line editing when available)
while other threads print what arrives. Printing a message at the cursor would split the
line being typed, so in a terminal a message is *inserted above* that line instead:

1. save the cursor (``ESC 7``);
2. write as many line feeds as the message needs rows, which scrolls the screen when the
   input line is at the bottom, then move back up to the input line (``ESC [ n A``);
3. insert that many blank lines there (``ESC [ n L``), which pushes the input line down,
   and write the message into them;
4. restore the cursor (``ESC 8``) and move down by the same count (``ESC [ n B``): the
   cursor is back where it was *within the input line*, at any column.

Neither the text typed so far nor the cursor position needs to be known, so this works
with readline, with libedit and with the kernel's line editing alike, and never fights
readline over its idea of the screen. The downward move is clamped at the bottom row,
which is exactly where the input line is when step 2 scrolled. A message taller than the
screen cannot be inserted that way; it is printed, then the prompt and the line buffer are
re-displayed (the cursor then sits at the end of the line).

Without a terminal (a pipe or a file on either side) lines are written plainly: no
prompt, no escape sequence.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import sys
import threading
import unicodedata
from typing import TextIO

from ..exceptions import InvalidRedirect, InvalidStatus
from ..protocol.frames import CLOSE_CODE_EXPLANATIONS
from ..runtime.connection import Data
from ..runtime.reconnect import _CERTIFICATE_REFUSALS

__all__ = [
    "Console",
    "close_line",
    "describe_failure",
    "escape",
    "format_message",
    "is_interactive",
]

PROMPT = "> "

# Code points that would move the cursor or change the terminal's state if printed as is:
# C0 and C1 controls (category Cc: ESC, CR, tab, ...), the line and paragraph separators,
# and the bidirectional overrides and isolates, which can reorder what follows them.
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """Replace control characters in ``text`` with Python-style escapes (``\\n``, ``\\x1b``)."""
    if text.isprintable():  # the common case, checked in C
        return text
    out = []
    for char in text:
        if char in _NAMED:
            out.append(_NAMED[char])
        elif unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def format_message(message: Data) -> str:
    """The line shown for an incoming message: ``< text`` or ``< (binary) 0aff`` (as the
    websockets CLI prints it, which scripts parse)."""
    if isinstance(message, str):
        return f"< {escape(message)}"
    return f"< (binary) {message.hex()}"


def close_line(code: int, reason: str) -> str:
    """The last line: ``Connection closed: 1000 (OK).``, with the reason if there is one."""
    explanation = CLOSE_CODE_EXPLANATIONS.get(code)
    if explanation is None:
        if 3000 <= code <= 3999:
            explanation = "registered"
        elif 4000 <= code <= 4999:
            explanation = "private use"
        else:
            explanation = "unknown"
    line = f"Connection closed: {code} ({explanation})"
    if reason and reason.lower() != explanation.lower():  # "1011 (internal error)" once
        line += f": {escape(reason)}"
    return line + "."


def describe_failure(exc: BaseException, timeout: float) -> str:
    """One readable line for an exception raised by :func:`~syncws.connect`."""
    if isinstance(exc, InvalidRedirect):
        return str(exc)
    if isinstance(exc, InvalidStatus):
        response = exc.response
        text = f"server rejected WebSocket connection: HTTP {response.status_code}"
        if response.reason_phrase:
            text += f" {escape(response.reason_phrase)}"
        try:
            body = response.body.decode().strip()
        except UnicodeDecodeError:
            body = ""
        if body and "<" not in body[:1]:  # a line of plain text, not an HTML page
            first = escape(body.splitlines()[0])
            text += f" ({first[:120]}{'...' if len(first) > 120 else ''})"
        return text
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"certificate verification failed: {exc.verify_message} (--insecure skips verification)"
        )
    if isinstance(exc, ssl.SSLError) and exc.reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED":
        return "the server requires a client certificate (--cert, --key)"
    if isinstance(exc, ssl.SSLError) and exc.reason in _CERTIFICATE_REFUSALS:
        return f"the server refused the client certificate: {_alert(exc)}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"TLS failed: {_alert(exc)}"
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g} seconds"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name: {exc.strerror}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _alert(exc: ssl.SSLError) -> str:
    """OpenSSL's text of ``exc`` without the codes around it: ``tlsv1 alert unknown ca``
    out of ``[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:2580)``."""
    text = str(exc.args[1] if len(exc.args) > 1 else exc)
    return re.sub(r"^\[[^]]*\] | \(_ssl\.c:\d+\)$", "", text)


def _width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide East Asian characters take two)."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def is_interactive(stdin: TextIO, stdout: TextIO) -> bool:
    """Whether a person types at a terminal that understands ANSI escape sequences."""
    try:
        ttys = stdin.isatty() and stdout.isatty()
    except ValueError:  # closed streams
        return False
    return ttys and os.environ.get("TERM") != "dumb"


class Console:
    """Writes lines to the terminal, from any thread, without garbling the input line.

    Args:
        interactive: Whether to prompt and insert messages above the input line (see the
            module docstring); otherwise lines are written plainly.
        stdout: Where messages go.
        stderr: Where errors go when not ``interactive`` (in a terminal they are shown
            like messages, so they do not garble the input line either).
    """

    def __init__(self, interactive: bool, stdout: TextIO, stderr: TextIO) -> None:
        self.interactive = interactive
        self.stdout = stdout
        self.stderr = stderr
        self.broken = threading.Event()
        """Set when stdout is gone (``syncws URI | head -1``): time to stop."""
        self._lock = threading.Lock()
        self._readline: object | None = None
        if interactive:
            try:
                # Importing readline is what gives input() line editing and history.
                import readline
            except ImportError:  # pragma: no cover - Windows, or Python built without it
                pass
            else:
                self._readline = readline

    def read_line(self) -> str:
        """Read one input line (without its line ending); raise :exc:`EOFError` at the end."""
        if self.interactive:
            return input(PROMPT)
        data = sys.stdin.buffer.readline() if sys.stdin is not None else b""
        if not data:
            raise EOFError
        if data.endswith(b"\n"):
            data = data[:-2] if data.endswith(b"\r\n") else data[:-1]
        return data.decode()  # UnicodeDecodeError: the caller reports it

    def print(self, line: str) -> None:
        """Show ``line`` (already escaped) on its own line."""
        with self._lock:
            if self.interactive:
                self._write(self.stdout, self._above_input(line))
            else:
                self._write(self.stdout, line + "\n")

    def error(self, line: str) -> None:
        """Show an error that does not end the program."""
        if self.interactive:
            self.print(line)
        else:
            with self._lock:
                self._write(self.stderr, line + "\n")

    def end_input(self) -> None:
        """Erase the prompt line, before the final lines are printed below it."""
        if self.interactive:
            with self._lock:
                self._write(self.stdout, "\r\x1b[K")

    def _above_input(self, line: str) -> str:
        columns, rows = shutil.get_terminal_size()
        count = max(1, -(-_width(line) // max(1, columns)))  # rows the line takes
        if count < rows - 1:
            return f"\x1b7{chr(10) * count}\x1b[{count}A\r\x1b[{count}L{line}\x1b8\x1b[{count}B"
        # Taller than the screen: print it, then show the prompt and the typed text again.
        buffer = self._line_buffer()
        return f"\r\x1b[K{line}\r\n{PROMPT}{buffer}"

    def _line_buffer(self) -> str:
        get_line_buffer = getattr(self._readline, "get_line_buffer", None)
        return str(get_line_buffer()) if get_line_buffer is not None else ""

    def _write(self, stream: TextIO, text: str) -> None:
        if self.broken.is_set():
            return
        try:
            stream.write(text)
            stream.flush()
        except BrokenPipeError:
            # The reader of our output went away. Point the descriptor at /dev/null so that
            # the interpreter's final flush does not complain, and let the client stop.
            self.broken.set()
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass
