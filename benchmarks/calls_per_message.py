"""Count the Python function calls a syncws handler thread makes per 16-byte echo round trip.

Deterministic, unlike timings on a shared machine: use it to check that a change to the
message path does not add calls. ``python benchmarks/calls_per_message.py [TOP]`` prints the
calls per round trip and the TOP most frequent functions. For instruction counts, run it under
``valgrind --tool=callgrind`` at two values of N and take the difference.
"""

import cProfile
import pstats
import socket
import sys

import syncws
from syncws.protocol.frames import Opcode, serialize_frame

N = 3000
stats = {}


def handler(ws):
    prof = cProfile.Profile()
    prof.enable()
    try:
        for _ in range(N):
            ws.send(ws.recv())
    finally:
        prof.disable()
        st = pstats.Stats(prof)
        stats["calls"] = st.total_calls
        stats["prim"] = st.prim_calls
        stats["top"] = sorted(((v[1], f"{k[2]}") for k, v in st.stats.items()), reverse=True)[:25]


srv = syncws.Server(handler, "127.0.0.1", 0, compression=None).start()
sock = socket.create_connection(("127.0.0.1", srv.port))
sock.sendall(
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
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
print(f"calls per round trip: {stats['calls'] / N:.1f}")
for n, name in stats["top"][: int(sys.argv[1]) if len(sys.argv) > 1 else 0]:
    print(f"  {n / N:5.1f} {name}")
