"""Plain TCP echo server, one thread per connection, no WebSocket framing: the ceiling for
any blocking Python server. ``python tcp_server.py [PORT]``; prints ``PORT <n>``.

It echoes bytes as they come, so a WebSocket client frame comes back unchanged (masked):
the load generator accepts that from this server only.
"""

import socket
import sys
import threading
from collections.abc import Callable


def echo(sock: socket.socket) -> None:
    with sock:
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                sock.sendall(data)
            except OSError:
                return


def main(handler: Callable[[socket.socket], None] = echo) -> None:
    """Serve ``handler(sock)`` in a thread per connection (``sketch_server.py`` uses it)."""
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    print("PORT", listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handler, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
