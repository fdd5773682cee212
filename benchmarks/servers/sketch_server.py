"""The floor of syncws's design: the issue's "60-line sketch", as a benchmark server.

``python sketch_server.py [PORT] [--calls N] [--held]``; prints ``PORT <n>``.

One thread per connection, which reads its own socket and answers on it, with masking in
C (``websockets.speedups``, a CPython C-API extension: the cheapest call there is). It is
*not* a WebSocket server: it checks nothing, has no limits, locks, heartbeat, pool, close
handshake or fragmentation, and only echoes frames of 0..125 bytes that arrive one per
read (it drops the connection on anything else). It answers "how fast can this design be
in Python at all?": a target this sketch cannot reach on the machine, syncws cannot either.

Two options make variants of it for the ``floor64`` scenario of ``run.py``, which asks how
the floor moves once a server does any Python work of its own per message:

``--calls N``
    Call an empty function N times per message, before the answer is sent: a stand-in for
    the checks, locks and bookkeeping that a real server adds (about 9 bytecodes a call).
``--held``
    Send the answer with the GIL held (``syncws.runtime._send``, the C call that syncws's
    message path uses from 16 connections on), instead of ``sendall()``, which releases it.
"""

import argparse
import base64
import hashlib
import socket
import sys
from collections.abc import Callable

import tcp_server  # this folder: its thread-per-connection loop
from websockets.speedups import apply_mask

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def handshake(sock: socket.socket) -> bool:
    request = b""
    while b"\r\n\r\n" not in request:
        data = sock.recv(4096)
        if not data:
            return False
        request += data
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            accept = base64.b64encode(hashlib.sha1(value.strip() + GUID).digest())
            sock.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            return True
    return False


def echo(sock: socket.socket) -> None:
    with sock:
        try:
            if not handshake(sock):
                return
            while True:
                data = sock.recv(65536)
                n = len(data) - 6
                # One whole masked frame of 0..125 bytes, or the connection is dropped.
                if n < 0 or n > 125 or data[1] != 0x80 | n:
                    return
                sock.sendall(bytes((data[0], n)) + apply_mask(data[6:], data[2:6]))
        except OSError:
            return


def nothing() -> None:
    """Nothing: ``--calls`` calls it, as a server calls its own Python code."""


def variant(calls: int, held: bool) -> Callable[[socket.socket], None]:
    """:func:`echo` with ``calls`` calls of :func:`nothing` per message, and its answer sent
    with the GIL held if ``held``. A separate loop, so that :func:`echo` stays bare."""
    extra = range(calls)
    if held:
        from syncws.runtime._send import send as send_holding_gil

    def echo_variant(sock: socket.socket) -> None:
        with sock:
            try:
                if not handshake(sock):
                    return
                fd = sock.fileno()
                while True:
                    data = sock.recv(65536)
                    n = len(data) - 6
                    if n < 0 or n > 125 or data[1] != 0x80 | n:
                        return
                    for _ in extra:
                        nothing()
                    frame = bytes((data[0], n)) + apply_mask(data[6:], data[2:6])
                    if held:
                        sent = send_holding_gil(fd, frame, 0)  # -1: EAGAIN or an error
                        if sent < len(frame):
                            sock.sendall(frame[max(sent, 0) :])
                    else:
                        sock.sendall(frame)
            except OSError:
                return

    return echo_variant


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", nargs="?", default="0")
    parser.add_argument("--calls", type=int, default=0)
    parser.add_argument("--held", action="store_true")
    args = parser.parse_args()
    sys.argv[1:] = [args.port]  # tcp_server.main() reads it there
    tcp_server.main(variant(args.calls, args.held) if args.calls or args.held else echo)
