"""Count the bytecodes syncws runs per echo round trip, by function: the server's handler
thread or the client's thread.

Deterministic where timings are not, and finer than calls_per_message.py: a tracing
function counts every bytecode instruction (``f_trace_opcodes``) of the measured thread
during N round trips, and prints them per round trip, by function (``--lines``: by line).
Use it to see where a change to the message path adds or saves work; instructions_per_message.py
gives the cost in machine instructions.

``python benchmarks/bytecodes_per_message.py [server|client] [SIZE] [--lines] [--inflight=K]``
(default: server, 16 bytes); ``--inflight=K`` has the server's peer send K frames at a time
before it reads their K echoes (the pipelining scenario).
"""

from __future__ import annotations

import collections
import socket
import sys
import threading
from types import FrameType
from typing import Any

import syncws

N = 192  # a multiple of every --inflight up to 64 that divides it
REQUEST = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)

by_function: collections.Counter[str] = collections.Counter()
by_line: collections.Counter[tuple[str, int]] = collections.Counter()


def tracer(frame: FrameType, event: str, arg: Any) -> Any:
    """The global trace function: count the opcodes of every frame it is called for."""
    frame.f_trace_opcodes = True

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            by_function[frame.f_code.co_name] += 1
            by_line[(frame.f_code.co_name, frame.f_lineno or 0)] += 1
        return local

    return local


def measure_server(size: int, inflight: int = 1) -> None:
    """Trace the server's handler thread while a raw socket client echoes ``size`` bytes,
    ``inflight`` frames at a time."""
    done = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        ws.send(ws.recv())  # warm-up, not counted
        sys.settrace(tracer)
        for _ in range(N):
            ws.send(ws.recv())
        sys.settrace(None)
        done.set()

    server = syncws.Server(handler, "127.0.0.1", 0, compression=None).start()
    with server, socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(REQUEST)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        header = bytes((0x82, 0x80 | size)) if size < 126 else b"\x82\xfe" + size.to_bytes(2)
        frame = header + b"\1\2\3\4" + b"x" * size  # masked with a non-zero key
        reply = len(header) + size  # the echo: the same header, unmasked, no key
        batches = [frame] + [frame * inflight] * (N // inflight)
        for batch in batches:
            sock.sendall(batch)
            got = 0
            while got < reply * (len(batch) // len(frame)):
                got += len(sock.recv(65536))
        done.wait(10)


def measure_client(size: int) -> None:
    """Trace this thread's client round trips of ``size`` bytes against a syncws server."""

    def echo(ws: syncws.ServerConnection) -> None:
        for message in ws:
            ws.send(message)

    server = syncws.Server(echo, "127.0.0.1", 0, compression=None).start()
    with server, syncws.connect(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
        message = b"x" * size
        ws.send(message)
        ws.recv()
        sys.settrace(tracer)
        for _ in range(N):
            ws.send(message)
            ws.recv()
        sys.settrace(None)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    side = args[0] if args else "server"
    size = int(args[1]) if len(args) > 1 else 16
    if side not in ("server", "client") or not 0 <= size < 65536:
        sys.exit(__doc__)
    inflight = 1
    for a in sys.argv[1:]:
        if a.startswith("--inflight="):
            inflight = int(a.partition("=")[2])
    if N % inflight or (inflight > 1 and side != "server"):
        sys.exit(__doc__)
    if side == "server":
        measure_server(size, inflight)
    else:
        measure_client(size)
    what = "round trip" if inflight == 1 else f"message, {inflight} in flight"
    print(f"{side}, {size} B: {sum(by_function.values()) / N:.1f} bytecodes per {what}")
    for name, count in by_function.most_common():
        print(f"{count / N:8.1f}  {name}")
    if "--lines" in sys.argv:
        print()
        for (name, line), count in sorted(by_line.items()):
            print(f"{count / N:8.1f}  {name}:{line}")


if __name__ == "__main__":
    main()
