"""The peers that ``run.py`` compares syncws with, and how their processes run.

``SERVERS`` names every server (a script of ``servers/`` and its arguments) and ``CLIENTS``
every client library; the tables compare them with ``REFERENCE`` and ``CEILING``, and some
scenarios add the rows of ``EXTRA`` (the design sketch, syncws on two processes...). A peer
joins only when its package is installed (``OPTIONAL``). ``ServerProcess`` runs a server
and reads its port; ``run_json`` runs a measuring script and reads the JSON object it
prints last. Both run with this checkout first on ``PYTHONPATH`` (``child_env``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = sys.executable

#: name -> (script in servers/ and its arguments, speaks raw TCP only)
SERVERS: dict[str, tuple[str, bool]] = {
    "syncws": ("syncws_server.py", False),
    "websockets.sync": ("websockets_sync_server.py", False),
    "websockets asyncio": ("websockets_asyncio_server.py", False),
    "aiohttp": ("aiohttp_server.py", False),
    "picows": ("picows_server.py", False),
    "plain TCP": ("tcp_server.py", True),
    # Only where a scenario names them (see EXTRA).
    "design sketch": ("sketch_server.py", False),
    "syncws, 2 processes": ("syncws_server.py --procs 2", False),
    "syncws run --workers 2": ("syncws_run_server.py --workers 2", False),
    # The floor64 scenario's variants of the sketch (see servers/sketch_server.py).
    "sketch + 2 calls": ("sketch_server.py --calls 2", False),
    "sketch + 8 calls": ("sketch_server.py --calls 8", False),
    "sketch + 32 calls": ("sketch_server.py --calls 32", False),
    "sketch, GIL held": ("sketch_server.py --held", False),
    "sketch, GIL held + 32 calls": ("sketch_server.py --held --calls 32", False),
    # The broadcast scenario's servers (see servers/broadcast_server.py).
    "syncws broadcast": ("broadcast_server.py syncws", False),
    "websockets.sync broadcast": ("broadcast_server.py websockets.sync", False),
}
REFERENCE = "websockets.sync"
CEILING = "plain TCP"
SKETCH = "design sketch"
PROCS2 = "syncws, 2 processes"
RUN2 = "syncws run --workers 2"
#: Rows of some scenarios only: the design's floor (not a WebSocket server: it echoes 16 B
#: messages and nothing else), and syncws on both cores (reuse_port), for 64 connections.
EXTRA = (
    SKETCH,
    PROCS2,
    RUN2,
    *(name for name in SERVERS if name.startswith("sketch") or name.endswith(" broadcast")),
)
CLIENTS = ["syncws", "websockets", "websocket-client"]
CLIENT_REFERENCE = "websockets"
#: The server every client library talks to in the client scenarios: the fastest one
#: here, so that the clients are what is measured (see client_server()).
CLIENT_SERVERS = ("picows", "websockets asyncio")


def child_env() -> dict[str, str]:
    """The environment of the subprocesses: this checkout first on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    return env


#: Peers that join the comparisons only when their package is installed: name -> module.
OPTIONAL = {
    "aiohttp": "aiohttp",
    "picows": "picows",
    "sketch, GIL held": "syncws.runtime._send",  # the C call: POSIX, built at install
    "sketch, GIL held + 32 calls": "syncws.runtime._send",
}


def installed(name: str) -> bool:
    """Whether the server ``name`` can run: its package is installed, if it needs one."""
    module = OPTIONAL.get(name)
    return module is None or importlib.util.find_spec(module) is not None


def client_server() -> str:
    """The server of the client scenarios: picows, if installed. websockets' asyncio server
    uses a whole core at about 37,000 messages/s, which is where syncws's client with 8
    threads is, so that measured the server, not the clients; picows serves the same load
    at half its CPU per message."""
    return next(name for name in CLIENT_SERVERS if installed(name))


def server_names(quick_ceiling: bool = True, extra: tuple[str, ...] = ()) -> list[str]:
    names = [n for n in SERVERS if installed(n) and (n not in EXTRA or n in extra)]
    return names if quick_ceiling else [n for n in names if n != CEILING]


class ServerProcess:
    """A server subprocess; the port is read from its ``PORT <n>`` line."""

    def __init__(self, name: str) -> None:
        self.name = name
        command, self.raw = SERVERS[name]
        script, *args = command.split()
        self.proc = subprocess.Popen(
            [PYTHON, os.path.join(HERE, "servers", script), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=child_env(),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()  # the servers print it at once
        if line[:1] != ["PORT"]:
            self.stop()
            raise RuntimeError(f"{name} server did not start")
        self.port = int(line[1])
        self.pid = self.proc.pid

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def run_json(args: list[str], timeout: float) -> dict[str, Any]:
    out = subprocess.run(
        [PYTHON, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"{' '.join(args[:2])} failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
