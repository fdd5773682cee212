"""The command-line client in a terminal: messages arrive without garbling the typed line.

The client runs under a pseudo-terminal; what it writes is fed to :class:`Screen`, a
minimal VT100 emulator, so that the tests check what a person would see rather than
particular escape sequences.
"""

from __future__ import annotations

import codecs
import fcntl
import os
import queue
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_cli_tls import (
    ClientCertServer,
    cli_page,
    client_cert_server,  # noqa: F401 (a fixture)
    encrypt_key,
    normalize,
)
from timing import TIMEOUT

import syncws

ServerFactory = Callable[..., syncws.Server]
UriFactory = Callable[..., str]

ROOT = Path(__file__).resolve().parents[2]
ROWS, COLUMNS = 24, 80
#: Upper bound for each wait on the terminal, in seconds.
SCREEN_TIMEOUT = 2 * TIMEOUT

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX terminal")


class Screen:
    """Just enough of a VT100 for readline and the client: printing with wrap, CR, LF,
    BS, save/restore cursor, and the CSI cursor movements and erase/insert commands."""

    def __init__(self, rows: int = ROWS, columns: int = COLUMNS) -> None:
        self.rows, self.columns = rows, columns
        self.cells = [[" "] * columns for _ in range(rows)]
        self.row = self.col = 0
        self.saved = (0, 0)
        self._pending = ""  # an incomplete escape sequence
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def lines(self) -> list[str]:
        """The text of every row, without trailing blanks."""
        return ["".join(row).rstrip() for row in self.cells]

    @property
    def cursor_line(self) -> str:
        """The row the cursor is on."""
        return self.lines()[self.row]

    def feed(self, data: bytes) -> None:
        """Interpret output of the program."""
        text = self._pending + self._decoder.decode(data)
        self._pending = ""
        i = 0
        while i < len(text):
            char = text[i]
            if char == "\x1b":
                end = self._escape(text, i)
                if end is None:
                    self._pending = text[i:]
                    return
                i = end
                continue
            if char == "\r":
                self.col = 0
            elif char == "\n":
                self._linefeed()
            elif char == "\b":
                self.col = max(0, min(self.col, self.columns - 1) - 1)
            elif char >= " ":
                if self.col >= self.columns:  # pending wrap
                    self.col = 0
                    self._linefeed()
                self.cells[self.row][self.col] = char
                self.col += 1
            i += 1

    def _linefeed(self) -> None:
        if self.row == self.rows - 1:
            del self.cells[0]
            self.cells.append([" "] * self.columns)
        else:
            self.row += 1

    def _escape(self, text: str, i: int) -> int | None:
        """Apply the sequence at ``text[i]``; return where it ends (None: incomplete)."""
        if i + 1 >= len(text):
            return None
        kind = text[i + 1]
        if kind == "7":
            self.saved = (self.row, self.col)
        elif kind == "8":
            self.row, self.col = self.saved
        if kind != "[":
            return i + 2  # ESC 7, ESC 8, ESC =, ESC >, ...
        j = i + 2
        while j < len(text) and not ("@" <= text[j] <= "~"):
            j += 1
        if j == len(text):
            return None
        params, final = text[i + 2 : j], text[j]
        if not params.startswith("?"):
            self._csi(params, final)
        return j + 1

    def _csi(self, params: str, final: str) -> None:
        args = [int(p) if p else 0 for p in params.split(";")] if params else []
        n = max(1, args[0]) if args else 1
        col = min(self.col, self.columns - 1)
        if final == "A":
            self.row, self.col = max(0, self.row - n), col
        elif final == "B":
            self.row, self.col = min(self.rows - 1, self.row + n), col
        elif final == "C":
            self.col = min(self.columns - 1, col + n)
        elif final == "D":
            self.col = max(0, col - n)
        elif final == "K":
            mode = args[0] if args else 0
            line = self.cells[self.row]
            start, stop = {0: (col, self.columns), 1: (0, col + 1)}.get(mode, (0, self.columns))
            line[start:stop] = [" "] * (stop - start)
        elif final == "L":
            for _ in range(min(n, self.rows - self.row)):
                self.cells.insert(self.row, [" "] * self.columns)
                del self.cells[self.rows]
            self.col = 0
        elif final == "P":
            line = self.cells[self.row]
            del line[col : col + n]
            line.extend([" "] * (self.columns - len(line)))
        elif final == "@":
            line = self.cells[self.row]
            line[col:col] = [" "] * n
            del line[self.columns :]
        elif final == "J" and (args[:1] or [0])[0] == 2:
            self.cells = [[" "] * self.columns for _ in range(self.rows)]


class Terminal:
    """The client running under a pseudo-terminal, and what its screen shows."""

    def __init__(self, *args: str) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env.update(PYTHONPATH=str(ROOT), TERM="xterm", INPUTRC=os.devnull)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncws", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.screen = Screen()
        self.eof = False

    def type(self, keys: bytes) -> None:
        """Send keystrokes."""
        os.write(self.master, keys)

    def wait_for(self, predicate: Callable[[Screen], bool], what: str) -> None:
        """Read the output until ``predicate(screen)`` holds (bounded by SCREEN_TIMEOUT)."""
        deadline = time.monotonic() + SCREEN_TIMEOUT
        while not predicate(self.screen):
            remaining = deadline - time.monotonic()
            assert remaining > 0 and not self.eof, f"{what}; screen:\n" + "\n".join(
                self.screen.lines()
            )
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:  # EIO: the client exited and the terminal is gone
                    data = b""
                if data:
                    self.screen.feed(data)
                else:
                    self.eof = True

    def wait_for_prompt(self, typed: str = "") -> None:
        """Wait until the cursor is at the end of the input line ``> typed``."""
        line = f"> {typed}"
        self.wait_for(
            lambda s: s.cursor_line == line.rstrip() and s.col == len(line), f"no {line!r} prompt"
        )

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(SCREEN_TIMEOUT)
        os.close(self.master)


@pytest.fixture
def terminal() -> Iterator[Callable[..., Terminal]]:
    """Factory: ``terminal(*args)`` starts the client with ``args`` (options and the URI) in
    a pseudo-terminal; killed at teardown if still running."""
    started: list[Terminal] = []

    def start(*args: str) -> Terminal:
        started.append(Terminal(*args))
        return started[-1]

    yield start
    for term in started:
        term.close()


def pushing_server(
    server: ServerFactory, message: str
) -> tuple[syncws.Server, threading.Event, queue.Queue[syncws.Data]]:
    """A server that sends ``message`` when the returned event is set, then queues what
    the client sends."""
    push = threading.Event()
    received: queue.Queue[syncws.Data] = queue.Queue()

    def handler(ws: syncws.ServerConnection) -> None:
        if push.wait(SCREEN_TIMEOUT):
            ws.send(message)
        for item in ws:
            received.put(item)

    return server(handler), push, received


def test_incoming_message_does_not_corrupt_the_typed_line(
    server: ServerFactory, uri: UriFactory, terminal: Callable[..., Terminal]
) -> None:
    """A message arriving while a line is half typed shows up above it; the line and the
    cursor stay where they were, and typing on sends the whole line."""
    srv, push, received = pushing_server(server, "pushed message")
    term = terminal(uri(srv))
    term.wait_for_prompt()
    term.type(b"partial")
    term.wait_for_prompt("partial")
    push.set()
    term.wait_for(lambda s: "< pushed message" in s.lines(), "no message")
    term.wait_for_prompt("partial")
    lines = term.screen.lines()
    row = term.screen.row
    assert lines[row - 2 : row + 1] == [
        f"Connected to {uri(srv)}.",
        "< pushed message",
        "> partial",
    ]
    term.type(b" line\r")
    assert received.get(timeout=SCREEN_TIMEOUT) == "partial line"
    term.wait_for_prompt()
    term.type(b"\x04")  # Ctrl-D
    term.wait_for(lambda s: "Connection closed: 1000 (OK)." in s.lines(), "no closing line")
    assert term.proc.wait(SCREEN_TIMEOUT) == 0
    assert "> partial line" in term.screen.lines()


def test_cursor_in_the_middle_of_the_line_stays_put(
    server: ServerFactory, uri: UriFactory, terminal: Callable[..., Terminal]
) -> None:
    """With the cursor moved back into the line (readline editing), a message does not
    move it: the next key is inserted where the cursor was."""
    srv, push, received = pushing_server(server, "hello")
    term = terminal(uri(srv))
    term.wait_for_prompt()
    term.type(b"abc\x1b[D\x1b[D")  # two Left arrows: the cursor is after "a"
    term.wait_for(lambda s: s.cursor_line == "> abc" and s.col == 3, "cursor not moved")
    push.set()
    term.wait_for(lambda s: "< hello" in s.lines(), "no message")
    term.wait_for(lambda s: s.cursor_line == "> abc" and s.col == 3, "cursor moved")
    term.type(b"X\r")
    assert received.get(timeout=SCREEN_TIMEOUT) == "aXbc"


def test_long_message_is_inserted_whole(
    server: ServerFactory, uri: UriFactory, terminal: Callable[..., Terminal]
) -> None:
    """A message wider than the terminal takes as many rows as it needs above the line."""
    long = "x" * 150
    srv, push, _ = pushing_server(server, long)
    term = terminal(uri(srv))
    term.wait_for_prompt()
    term.type(b"typed")
    term.wait_for_prompt("typed")
    push.set()
    term.wait_for(lambda s: ("< " + long)[:COLUMNS] in s.lines(), "no message")
    term.wait_for_prompt("typed")
    lines, row = term.screen.lines(), term.screen.row
    assert lines[row - 2 : row] == [("< " + long)[:COLUMNS], ("< " + long)[COLUMNS:]]


def test_ctrl_c_closes_normally(
    server: ServerFactory, uri: UriFactory, terminal: Callable[..., Terminal]
) -> None:
    """Ctrl-C (SIGINT) at the prompt closes with 1000, replaces the prompt with the closing
    line and exits 0."""
    term = terminal(uri(server()))
    term.wait_for_prompt()
    term.type(b"not sent")
    term.wait_for_prompt("not sent")
    term.proc.send_signal(signal.SIGINT)
    term.wait_for(lambda s: "Connection closed: 1000 (OK)." in s.lines(), "no closing line")
    assert term.proc.wait(SCREEN_TIMEOUT) == 0
    assert not any(line.startswith(">") for line in term.screen.lines())


def test_server_closing_ends_the_client_at_the_prompt(
    server: ServerFactory, uri: UriFactory, terminal: Callable[..., Terminal]
) -> None:
    """When the server closes while the person is typing, the client stops waiting for the
    line, prints the closing line and exits."""

    def handler(ws: syncws.ServerConnection) -> None:
        ws.recv()
        ws.close(1001, "bye")

    term = terminal(uri(server(handler)))
    term.wait_for_prompt()
    term.type(b"first\r")
    term.wait_for(
        lambda s: "Connection closed: 1001 (going away): bye." in s.lines(), "no closing line"
    )
    assert term.proc.wait(SCREEN_TIMEOUT) == 0


# Slash commands (in a terminal only).


def recording_echo(
    server: ServerFactory,
) -> tuple[syncws.Server, queue.Queue[syncws.Data], queue.Queue[syncws.Close | None]]:
    """An echo server that queues what it receives, and the close frame that ended each
    connection."""
    received: queue.Queue[syncws.Data] = queue.Queue()
    closes: queue.Queue[syncws.Close | None] = queue.Queue()

    def handler(ws: syncws.ServerConnection) -> None:
        try:
            for message in ws:  # a close code other than 1000 and 1001 raises
                received.put(message)
                ws.send(message)
        finally:
            closes.put(ws.protocol.close_rcvd)

    return server(handler), received, closes


def test_slash_commands(
    server: ServerFactory, uri: UriFactory, terminal: Callable[..., Terminal]
) -> None:
    """/help lists the commands, /ping prints the round trip when the pong arrives, //
    sends a line that starts with a slash, an unknown command or a bad /close is reported
    and nothing is sent; /close CODE REASON closes with them and exits (1 for 4000)."""
    srv, received, closes = recording_echo(server)
    term = terminal(uri(srv))
    term.wait_for_prompt()
    term.type(b"/help\r")
    term.wait_for(
        lambda s: "  //TEXT                  send the message /TEXT" in s.lines(), "no help"
    )
    term.wait_for_prompt()
    term.type(b"/ping\r")
    term.wait_for(lambda s: any(re.fullmatch(PONG, line) for line in s.lines()), "no pong")
    term.type(b"/ping some data\r")
    term.wait_for(
        lambda s: sum(bool(re.fullmatch(PONG, line)) for line in s.lines()) == 2, "no 2nd pong"
    )
    term.type(b"/nope\r")
    term.wait_for(
        lambda s: (
            "Unknown command: /nope (/help lists them; //nope sends /nope as a message)."
            in s.lines()
        ),
        "no error",
    )
    term.type(b"/close 999\r")
    term.wait_for(lambda s: "Not closed: close code 999 may not be sent." in s.lines(), "no error")
    term.type(b"//users\r")
    term.wait_for(lambda s: "< /users" in s.lines(), "no echo")
    assert received.get(timeout=SCREEN_TIMEOUT) == "/users"  # the first message: nothing before it
    term.type(b"/close 4000 see you\r")
    term.wait_for(
        lambda s: "Connection closed: 4000 (private use): see you." in s.lines(), "no closing"
    )
    assert term.proc.wait(SCREEN_TIMEOUT) == 1  # not 1000 nor 1001
    assert closes.get(timeout=SCREEN_TIMEOUT) == syncws.Close(4000, "see you")
    assert received.empty()


PONG = r"Pong after \d+\.\d\d ms\."


def test_close_command_defaults_to_1000(
    server: ServerFactory, uri: UriFactory, terminal: Callable[..., Terminal]
) -> None:
    """/close alone closes with 1000: the closing line, exit status 0."""
    srv, _, closes = recording_echo(server)
    term = terminal(uri(srv))
    term.wait_for_prompt()
    term.type(b"/close\r")
    term.wait_for(lambda s: "Connection closed: 1000 (OK)." in s.lines(), "no closing line")
    assert term.proc.wait(SCREEN_TIMEOUT) == 0
    assert closes.get(timeout=SCREEN_TIMEOUT) == syncws.Close(1000, "")


def test_client_certificate_with_a_passphrase(
    client_cert_server: ClientCertServer,  # noqa: F811 (the fixture imported above)
    terminal: Callable[..., Terminal],
    tmp_path: Path,
) -> None:
    """--cert with an encrypted --key: the passphrase is asked on the terminal, not
    echoed; then the server, which requires the certificate, greets the client by name."""
    tls = client_cert_server
    key = encrypt_key(tls.key, b"open sesame", tmp_path)
    term = terminal("--ca", tls.ca, "--cert", tls.cert, "--key", str(key), tls.uri)
    prompt = f"Passphrase for --key {key}:"  # wider than the terminal: joined rows
    term.wait_for(lambda s: "".join(s.lines()).startswith(prompt), "no passphrase prompt")
    term.type(b"open sesame\r")
    term.wait_for(lambda s: "< hello alice" in s.lines(), "no greeting")
    assert not any("open sesame" in line for line in term.screen.lines())
    term.wait_for_prompt()
    term.type(b"hi\r")
    term.wait_for(lambda s: "Connection closed: 1000 (OK)." in s.lines(), "no closing line")
    assert "< hi" in term.screen.lines()
    assert term.proc.wait(SCREEN_TIMEOUT) == 0


def test_the_pages_session_is_what_the_terminal_shows(
    server: ServerFactory, uri: UriFactory, terminal: Callable[..., Terminal]
) -> None:
    """The slash command session of docs/reference/cli.rst, typed in a terminal against an
    echo server: the screen shows the page's lines, round-trip times aside."""
    [command] = cli_page("> /help")
    assert command.text == "syncws ws://localhost:8765/"
    expected = [normalize(line, {}) for line in command.output]
    srv, _, _ = recording_echo(server)
    term = terminal(uri(srv))
    shown = {uri(srv): "ws://localhost:8765/"}

    def screen(s: Screen) -> list[str]:
        return [normalize(line, shown) for line in s.lines() if line]

    for i, line in enumerate(expected):
        if line.startswith("> "):  # typed once what comes before it is on the screen
            before = [*expected[:i], ">"]
            term.wait_for(lambda s, before=before: screen(s) == before, f"not {before}")
            term.type(line[2:].encode() + b"\r")
    term.wait_for(lambda s: screen(s) == expected, "the session differs from the page")
    assert term.proc.wait(SCREEN_TIMEOUT) == 1  # closed with 4000
