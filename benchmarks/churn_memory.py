"""What a server's memory does under connection churn: what it holds, what the allocator keeps.

A soak found a server's RSS going from 23 MB to 277 MB under churn, and staying at 178 MB
once the clients had left (84 MB after ``malloc_trim``). This measures, in a server
process of its own, after each phase of churn:

* ``live``: the connection objects still referenced (:func:`syncws.runtime.debug.live_connections`
  after ``gc.collect()``): what syncws holds. It must come back to 0 once clients are gone.
* ``traced``: the bytes Python's allocators hold for live objects (``tracemalloc``, started
  before the server; it slows the server, not the counts).
* ``rss``: the resident set size, then again after ``malloc_trim(0)`` (glibc): the difference
  is memory that glibc's allocator kept for reuse, not memory anything references.

``python benchmarks/churn_memory.py [--rounds R] [--clients C] [--size BYTES] [--idle-wait]``:
R rounds of
C concurrent clients, each opening a connection (compressed or not, alternately), echoing
messages of 1 B to SIZE bytes, and leaving (half close normally, half vanish). Bounded in
count and time; loopback only.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import struct
import subprocess
import sys
import threading
import time

import syncws
from syncws.runtime.pool import IDLE_TIMEOUT

SERVER = r"""
import ctypes, gc, json, sys, threading, tracemalloc
tracemalloc.start()
import syncws
from syncws.runtime.pool import IDLE_TIMEOUT
from syncws.runtime.debug import live_connections

def echo(ws):
    for message in ws:
        ws.send(message)

server = syncws.Server(echo, "127.0.0.1", 0, max_connections=512, close_timeout=2).start()
print(server.port, flush=True)
try:
    libc = ctypes.CDLL("libc.so.6")
except OSError:
    libc = None

def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096

for line in sys.stdin:
    gc.collect()
    report = {"live": len(live_connections()), "threads": threading.active_count(),
              "traced": tracemalloc.get_traced_memory()[0], "rss": rss()}
    if libc is not None:
        libc.malloc_trim(0)
        report["rss_trimmed"] = rss()
    print(json.dumps(report), flush=True)
server.shutdown()
"""


def client(port: int, size: int, compressed: bool, vanish: bool, rng: random.Random) -> None:
    compression = "deflate" if compressed else None
    try:
        ws = syncws.connect(f"ws://127.0.0.1:{port}/", compression=compression, open_timeout=10)
    except OSError:
        return
    try:
        for _ in range(rng.randint(1, 5)):
            message = rng.randbytes(rng.randint(1, size))
            ws.send(message)
            assert ws.recv(timeout=10) == message
    finally:
        if vanish:  # RST, no closing handshake
            ws.transport.sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            ws.transport.sock.close()
        ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--size", type=int, default=256 * 1024)
    parser.add_argument(
        "--idle-wait",
        action="store_true",
        help="then wait for idle pool threads to exit (IDLE_TIMEOUT, 60 s) and report again",
    )
    args = parser.parse_args()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    port = int(proc.stdout.readline())

    def report(label: str) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("report\n")
        proc.stdin.flush()
        figures = json.loads(proc.stdout.readline())
        counts = f"live {figures.pop('live'):4}  threads {figures.pop('threads'):4}"
        mib = "  ".join(f"{k} {v / 2**20:6.1f} MiB" for k, v in figures.items())
        print(f"{label:24} {counts}  {mib}")

    report("before")
    rng = random.Random(1)
    started = time.monotonic()
    for round_ in range(args.rounds):
        threads = [
            threading.Thread(
                target=client,
                args=(port, args.size, i % 2 == 0, i % 4 == 1, random.Random(rng.random())),
            )
            for i in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        report(f"after round {round_ + 1}")
        if time.monotonic() - started > 300:
            break
    time.sleep(3)  # closing handshakes and close_timeout (2 s) of the vanished ones
    report("clients gone, +3 s")
    if args.idle_wait:
        time.sleep(IDLE_TIMEOUT + 2)
        report("idle threads gone")
    proc.stdin.close()
    proc.wait(30)


if __name__ == "__main__":
    main()
