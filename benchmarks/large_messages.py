"""Page faults and CPU of a syncws handler thread per 1 MiB echo round trip.

Page faults are nearly deterministic, unlike timings on a shared machine, and large messages
are dominated by them (fresh 1 MiB buffers are mmapped and unmapped by the C allocator).
``python benchmarks/large_messages.py [LABEL] [--text] [--tls]`` (binary messages, or
text ones; over TLS, with a throwaway certificate from ``trustme``, which the test extra
installs); compare two trees by running it with each on ``PYTHONPATH``, interleaved.
"""

import resource
import socket
import ssl
import sys

import syncws
from syncws.protocol.frames import Opcode, serialize_frame

N = 300
SIZE = 1 << 20
out = {}


def handler(ws):
    for _ in range(20):
        ws.send(ws.recv())
    r0 = resource.getrusage(resource.RUSAGE_THREAD)
    for _ in range(N):
        ws.send(ws.recv())
    r1 = resource.getrusage(resource.RUSAGE_THREAD)
    out["flt"] = (r1.ru_minflt - r0.ru_minflt) / N
    out["cpu"] = ((r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)) / N * 1e6


server_ctx = client_ctx = None
if "--tls" in sys.argv:
    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
srv = syncws.Server(
    handler, "127.0.0.1", 0, compression=None, max_size=16 << 20, ssl=server_ctx
).start()
sock = socket.create_connection(("127.0.0.1", srv.port))
if client_ctx is not None:
    sock = client_ctx.wrap_socket(sock, server_hostname="localhost")
sock.sendall(
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
buf = b""
while b"\r\n\r\n" not in buf:
    buf += sock.recv(4096)
opcode = Opcode.TEXT if "--text" in sys.argv else Opcode.BINARY
frame = serialize_frame(opcode, b"x" * SIZE, mask=b"abcd")
want = SIZE + 10
rbuf = bytearray(want)
for _ in range(N + 20):
    sock.sendall(frame)
    view = memoryview(rbuf)
    got = 0
    while got < want:
        got += sock.recv_into(view[got:])
sock.close()
srv.shutdown(timeout=2)
label = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else "syncws"
print(f"{label}: per 1 MiB round trip: {out['flt']:.0f} minor faults, {out['cpu']:.0f} us CPU")
