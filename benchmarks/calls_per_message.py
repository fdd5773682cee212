"""Count the Python function calls syncws makes per 16-byte echo round trip: in the server's
handler thread, or in the client's thread.

Deterministic, unlike timings on a shared machine: use it to check that a change to the
message path does not add calls. ``python benchmarks/calls_per_message.py [server|client]
[TOP]`` (default: server) prints the calls per round trip and the TOP most frequent
functions. For instruction counts, see instructions_per_message.py; for bytecodes,
bytecodes_per_message.py. ``benchmarks/budget.py`` holds both counts to a budget in CI.
"""

from __future__ import annotations

import cProfile
import pstats
import socket
import sys
from typing import Any

import syncws
from syncws.protocol.frames import Opcode, serialize_frame

N = 3000
REQUEST = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
stats: dict[str, Any] = {}


def record(prof: cProfile.Profile) -> None:
    st = pstats.Stats(prof)
    stats["calls"] = st.total_calls  # type: ignore[attr-defined]
    stats["top"] = sorted(
        ((v[1], k[2]) for k, v in st.stats.items()),  # type: ignore[attr-defined]
        reverse=True,
    )[:25]


def measure_server() -> None:
    """Profile the handler thread while a raw socket client echoes 16 bytes N times."""

    def handler(ws: syncws.ServerConnection) -> None:
        prof = cProfile.Profile()
        prof.enable()
        try:
            for _ in range(N):
                ws.send(ws.recv())
        finally:
            prof.disable()
            record(prof)

    srv = syncws.Server(handler, "127.0.0.1", 0, compression=None).start()
    sock = socket.create_connection(("127.0.0.1", srv.port))
    sock.sendall(REQUEST)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(4096)
    frame = serialize_frame(Opcode.TEXT, b"x" * 16, mask=b"abcd")
    for _ in range(N):
        sock.sendall(frame)
        got = b""
        while len(got) < 18:
            got += sock.recv(64)
    sock.close()
    srv.shutdown(timeout=2)


def measure_client() -> None:
    """Profile this thread's client round trips of 16 bytes against a syncws server."""

    def echo(ws: syncws.ServerConnection) -> None:
        for message in ws:
            ws.send(message)

    server = syncws.Server(echo, "127.0.0.1", 0, compression=None).start()
    with server, syncws.connect(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
        message = b"x" * 16
        ws.send(message)
        ws.recv()
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(N):
            ws.send(message)
            ws.recv()
        prof.disable()
        record(prof)


def main() -> None:
    args = sys.argv[1:]
    side = "server"
    if args and args[0] in ("server", "client"):
        side = args.pop(0)
    top = int(args[0]) if args else 0
    (measure_server if side == "server" else measure_client)()
    # The profiler counts its own disable() call once: not a call of the message path.
    print(f"{side}: calls per round trip: {(stats['calls'] - 1) / N:.1f}")
    for n, name in stats["top"][:top]:
        print(f"  {n / N:5.1f} {name}")


if __name__ == "__main__":
    main()
