"""Instructions a benchmark server executes per 16 B echo round trip, under callgrind.

Deterministic where timings are not: valgrind counts instructions, the same for the same
code and inputs whatever else the machine is doing. The server runs twice under
``valgrind --tool=callgrind``, for N1 and N2 round trips on one connection; the difference
of the two totals, divided by N2 - N1, cancels start-up and shutdown.

``python benchmarks/instructions_per_message.py [SERVER] [N1 N2] [--inflight K]``, SERVER
being a script of ``benchmarks/servers/`` (default ``syncws_server.py``; ``tcp_server.py``
is the ceiling); ``--inflight K`` sends K frames at a time before reading the K echoes (the
pipelining scenario; N1 and N2 should then be multiples of K). Needs valgrind (``apt-get
install valgrind``); takes about a minute.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import socket
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REQUEST = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
FRAME = bytes((0x82, 0x90)) + b"\0\0\0\0" + b"x" * 16  # masked with a zero key


def total_instructions(server: str, n: int, inflight: int = 1) -> int:
    """Run ``server`` under callgrind for ``n`` round trips, ``inflight`` frames sent at a
    time; return its instruction total."""
    raw = server == "tcp_server.py"
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=ROOT)
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.%p",
             sys.executable, os.path.join(HERE, "servers", server)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )  # fmt: skip
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(REQUEST)
            head = b""
            while (len(head) < len(REQUEST)) if raw else (b"\r\n\r\n" not in head):
                head += sock.recv(4096)
            reply = (len(FRAME) if raw else 18) * inflight
            for _ in range(n // inflight):
                sock.sendall(FRAME * inflight)
                got = 0
                while got < reply:
                    got += len(sock.recv(4096))
            if not raw:
                sock.sendall(b"\x88\x82\0\0\0\0\x03\xe8")  # close, 1000
        proc.terminate()
        proc.wait(60)
        out = subprocess.run(
            ["callgrind_annotate", *glob.glob(f"{tmp}/cg.*")],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    match = re.search(r"^\s*([\d,]+) \([^)]*\)\s+PROGRAM TOTALS", out, re.MULTILINE)
    assert match, "no totals in callgrind's output"
    return int(match.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("server", nargs="?", default="syncws_server.py")
    parser.add_argument("counts", nargs="*", type=int, default=[512, 1536], metavar="N1 N2")
    parser.add_argument("--inflight", type=int, default=1, metavar="K")
    args = parser.parse_args()
    n1, n2 = args.counts
    a = total_instructions(args.server, n1, args.inflight)
    b = total_instructions(args.server, n2, args.inflight)
    what = "round trip" if args.inflight == 1 else f"message, {args.inflight} in flight"
    print(f"{args.server}: {(b - a) / (n2 - n1):,.0f} instructions per {what}")


if __name__ == "__main__":
    main()
