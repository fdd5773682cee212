"""websockets' threaded server (``websockets.sync.server``) echoing: ``python
websockets_sync_server.py [PORT]``. Compression off, keepalive at its defaults, max_size
16 MiB. Prints ``PORT <n>`` once listening.
"""

import sys

from websockets.sync.server import ServerConnection, serve


def echo(ws: ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with serve(echo, "127.0.0.1", port, compression=None, max_size=16 << 20) as server:
        print("PORT", server.socket.getsockname()[1], flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
