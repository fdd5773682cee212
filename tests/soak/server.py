"""The soak's server: a syncws echo server in its own process, driven over stdin/stdout.

``python tests/soak/server.py [options]`` binds 127.0.0.1 on a free port, prints one JSON
line ``{"port": N, "pid": P}`` on standard output, then answers one JSON line per command
line on standard input:

* ``stats``: ``gc.collect()``, then the live :class:`~syncws.Connection` objects (from the
  debug hook :func:`syncws.runtime.debug.live_connections`, never from private state), the
  open connections, the threads, and every ``syncws`` log record counted by level, with
  the text of the first WARNING and ERROR records;
* ``quit``: shut the server down and exit (also at EOF on standard input, so the server
  never outlives the harness).

Paths (each handler echoes every message, in order):

* ``/echo``: ``for message in ws: ws.send(message)``;
* ``/mixed``: reassembles one message in ten from :meth:`~syncws.Connection.recv_streaming`,
  fragments one echo in three (``send`` of an iterable), and pings the client every seven
  messages, so that clients receive fragmented messages and control frames in between.

A message that starts with :data:`SENTINEL` ends a client's session; it is echoed like the
others, but never touched by a fault (below).

``--fault`` (comma-separated) injects bugs on purpose, so that the harness's self-test can
check that each of its checks fails when it should. On one message in
:data:`FAULT_EVERY` of each connection, in turn among those chosen: ``reorder`` swaps two
echoes, ``drop`` loses one, ``corrupt`` flips a bit. Once per connection: ``leak`` keeps a
reference to it, ``error`` logs an ERROR record, ``fd`` opens a file and never closes it,
``thread`` starts a thread that never ends.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import logging
import os
import sys
import threading
from collections import Counter
from typing import Any

import syncws
import syncws.runtime.pool
from syncws.runtime.debug import live_connections

#: Messages that start with this end a client's session; faults never touch them.
SENTINEL = "END "

#: A fault hits one message in this many (per connection).
FAULT_EVERY = 5

#: The faults that the server can inject (see the module docstring).
FAULTS = ("reorder", "drop", "corrupt", "leak", "error", "fd", "thread")
MESSAGE_FAULTS = ("reorder", "drop", "corrupt")

#: Records of each level whose text is kept for the report (the rest are only counted).
KEEP_RECORDS = 20


class Capture(logging.Handler):
    """Counts every record by level and by message template (what happened how often),
    and keeps the text of the first WARNING and ERROR records."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: Counter[str] = Counter()
        self.templates: Counter[str] = Counter()
        self.kept: dict[str, list[str]] = {"WARNING": [], "ERROR": []}
        self.formatter_ = logging.Formatter("%(name)s %(levelname)s %(threadName)s: %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        level = "ERROR" if record.levelno >= logging.ERROR else record.levelname
        self.counts[level] += 1
        self.templates[f"{level} {record.msg}"] += 1
        kept = self.kept.get(level)
        if kept is not None and len(kept) < KEEP_RECORDS:
            try:
                kept.append(self.formatter_.format(record))
            except Exception:  # a record that cannot be formatted is itself a finding
                kept.append(f"unformattable record: {record.msg!r}")


def capture_logs(logger_name: str = "syncws") -> Capture:
    """Capture every record of ``logger_name`` and its children from INFO up."""
    capture = Capture()
    logger = logging.getLogger(logger_name)
    logger.setLevel(logging.INFO)
    logger.addHandler(capture)
    logger.propagate = False
    return capture


def capture_thread_crashes() -> None:
    """Log an exception that ends a thread as an ERROR record of ``syncws.soak``: it is
    a bug, whoever's thread it is."""
    log = logging.getLogger("syncws.soak")

    def hook(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "?"
        log.error("uncaught exception in thread %s", name, exc_info=args.exc_value)

    threading.excepthook = hook


def who_holds(obj: object, ignore: list[object]) -> list[str]:
    """Describe what refers to ``obj`` (two levels up), to tell where a leak sits."""
    skip = {id(ignore), id(sys._getframe())}
    found = []
    for ref in gc.get_referrers(obj):
        if id(ref) in skip or ref is ignore:
            continue
        what = type(ref).__qualname__
        if isinstance(ref, tuple):
            what += repr(
                tuple(x if isinstance(x, (int, float, str, bytes)) else "..." for x in ref)
            )
        if isinstance(ref, (dict, list, set, tuple)):
            owners = [
                type(owner).__qualname__
                for owner in gc.get_referrers(ref)
                if id(owner) not in skip
                and owner is not ignore
                and type(owner) is not type(sys._getframe())
            ][:3]
            what += f" in {owners}"
        found.append(what)
    return found[:6]


def describe_live(live: list[syncws.Connection]) -> list[str]:
    """The state and holders of the first few live connections."""
    return [
        f"{type(c).__name__} {c.state!s}: held by {who_holds(c, live)}"
        for c in itertools.islice(live, 3)
    ]


def reassemble(fragments: list[syncws.Data]) -> syncws.Data:
    """The message that ``recv_streaming()`` yielded as ``fragments``."""
    if fragments and isinstance(fragments[0], str):
        return "".join(fragments)  # type: ignore[arg-type]
    return b"".join(fragments)  # type: ignore[arg-type]


def pieces(message: syncws.Data, count: int) -> list[syncws.Data]:
    """``message`` cut into ``count`` pieces (fewer if it is short), for a fragmented send."""
    step = max(1, -(-len(message) // count))
    return [message[i : i + step] for i in range(0, len(message), step)]


class Handlers:
    """The echo handlers, with the fault chosen on the command line."""

    def __init__(self, faults: set[str]) -> None:
        self.faults = faults
        self.message_faults = [f for f in MESSAGE_FAULTS if f in faults]
        self.leaked: list[Any] = []
        self.never = threading.Event()
        self.log = logging.getLogger("syncws.soak")

    def __call__(self, ws: syncws.ServerConnection) -> None:
        if "leak" in self.faults:
            self.leaked.append(ws)
        if "error" in self.faults:
            self.log.error("%s: an ERROR record injected by --fault error", ws.id)
        if "fd" in self.faults:
            self.leaked.append(open(os.devnull, "rb"))  # noqa: SIM115 (leaked on purpose)
        if "thread" in self.faults:
            threading.Thread(target=self.never.wait, daemon=True).start()
        assert ws.request is not None
        mixed = ws.request.path.startswith("/mixed")
        count = 0
        held: syncws.Data | None = None  # the echo that a reorder fault delays
        while True:
            count += 1
            if mixed and count % 10 == 0:
                message = reassemble(list(ws.recv_streaming()))
            else:
                message = ws.recv()
            if mixed and count % 7 == 0:
                ws.ping()
            sentinel = isinstance(message, str) and message.startswith(SENTINEL)
            if sentinel and held is not None:
                self.echo(ws, held, count, mixed)  # never lost: only late
                held = None
            elif not sentinel and self.message_faults and count % FAULT_EVERY == 0:
                fault = self.message_faults[(count // FAULT_EVERY) % len(self.message_faults)]
                if fault == "drop":
                    continue
                if fault == "reorder":
                    held = message
                    continue
                if fault == "corrupt" and len(message) > 0:
                    if isinstance(message, str):
                        message = chr(ord(message[0]) ^ 1) + message[1:]
                    else:
                        message = bytes([message[0] ^ 1]) + message[1:]
            self.echo(ws, message, count, mixed)
            if held is not None:
                self.echo(ws, held, count, mixed)
                held = None

    @staticmethod
    def echo(ws: syncws.ServerConnection, message: syncws.Data, count: int, mixed: bool) -> None:
        """Send ``message`` back; on ``/mixed``, one echo in three is fragmented."""
        if mixed and count % 3 == 0 and len(message) > 1:
            ws.send(pieces(message, 2 + count % 5))
        else:
            ws.send(message)


def faults(text: str) -> set[str]:
    """Parse ``--fault``: a comma-separated subset of :data:`FAULTS`."""
    chosen = {f for f in text.split(",") if f and f != "none"}
    if not chosen <= set(FAULTS):
        raise argparse.ArgumentTypeError(f"unknown fault in {text!r}; choose among {FAULTS}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ping-interval", type=float, default=2.0)
    parser.add_argument("--ping-timeout", type=float, default=10.0)
    parser.add_argument("--close-timeout", type=float, default=3.0)
    parser.add_argument("--open-timeout", type=float, default=3.0)
    parser.add_argument("--max-connections", type=int, default=1024)
    parser.add_argument(
        "--pool-idle-timeout",
        type=float,
        default=2.0,
        help="seconds an idle pool thread lives (syncws.runtime.pool.IDLE_TIMEOUT, 60 s by "
        "default), so that the thread count comes back to its baseline within the soak",
    )
    parser.add_argument("--fault", type=faults, default=set(), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    capture = capture_logs()
    capture_thread_crashes()
    syncws.runtime.pool.IDLE_TIMEOUT = args.pool_idle_timeout
    server = syncws.Server(
        Handlers(args.fault),
        "127.0.0.1",
        0,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        close_timeout=args.close_timeout,
        open_timeout=args.open_timeout,
        max_connections=args.max_connections,
        backlog=1024,
    )
    server.start()
    print(json.dumps({"port": server.port, "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "stats":
            gc.collect()
            live = live_connections()
            reply = {
                "live": len(live),
                "live_states": sorted(Counter(str(c.state) for c in live).items()),
                "live_holders": describe_live(live),
                "open": len(server.connections),
                "threads": sorted(Counter(_kind(t.name) for t in threading.enumerate()).items()),
                "log_counts": dict(capture.counts),
                "log_kept": capture.kept,
                "log_templates": capture.templates.most_common(12),
            }
            del live
            print(json.dumps(reply), flush=True)
        elif command == "quit":
            break
    server.shutdown(timeout=10)
    print(json.dumps({"bye": True}), flush=True)
    return 0


def _kind(thread_name: str) -> str:
    """A thread's name without its number: ``syncws-server-12`` -> ``syncws-server``."""
    return thread_name.rstrip("0123456789").rstrip("-_ ")


if __name__ == "__main__":
    sys.exit(main())
