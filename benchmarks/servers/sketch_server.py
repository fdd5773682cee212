"""The floor of syncws's design: the issue's "60-line sketch", as a benchmark server.

``python sketch_server.py [PORT]``; prints ``PORT <n>``.

One thread per connection, which reads its own socket and answers on it, with masking in
C (``websockets.speedups``, a CPython C-API extension: the cheapest call there is). It is
*not* a WebSocket server: it checks nothing, has no limits, locks, heartbeat, pool, close
handshake or fragmentation, and only echoes frames of 0..125 bytes that arrive one per
read (it drops the connection on anything else). It answers "how fast can this design be
in Python at all?": a target this sketch cannot reach on the machine, syncws cannot either.
"""

import base64
import hashlib
import socket

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


if __name__ == "__main__":
    tcp_server.main(echo)
