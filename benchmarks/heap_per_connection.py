"""Python heap allocated per idle server connection, by tracemalloc, with its top sources.

Deterministic where RSS is not: ``python benchmarks/heap_per_connection.py [TOP]``. RSS per
connection, the figure of the performance targets, comes from ``benchmarks/run.py --only
idle1000``.
"""

import gc
import socket
import sys
import time
import tracemalloc

import syncws

N = 200


def hold(ws):
    for _ in ws:
        pass


srv = syncws.Server(hold, "127.0.0.1", 0, compression=None, max_connections=N + 10).start()
req = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def open_many(n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        socks.append(s)
    deadline = time.monotonic() + 10
    while len(srv.connections) < len(socks) and time.monotonic() < deadline:
        time.sleep(0.01)
    return socks


warm = open_many(10)  # pool threads and caches warmed up
time.sleep(0.3)
gc.collect()
tracemalloc.start(1)
before = tracemalloc.take_snapshot()
socks = open_many(N)
time.sleep(0.5)
gc.collect()
after = tracemalloc.take_snapshot()
diff = after.compare_to(before, "filename")
total = sum(d.size_diff for d in diff)
print(f"Python heap per idle connection: {total / N / 1024:.2f} KiB")
for d in sorted(diff, key=lambda d: -d.size_diff)[: int(sys.argv[1]) if len(sys.argv) > 1 else 0]:
    print(f"  {d.size_diff / N:8.0f} B  {d.traceback[0].filename.split('/')[-1]}")
for s in socks + warm:
    s.close()
srv.shutdown(timeout=3)
