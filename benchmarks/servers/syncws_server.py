"""syncws echo server for the benchmarks: ``python syncws_server.py [PORT]``.

Compression off, keepalive at its defaults, max_size 16 MiB, and a pool large enough for
the idle-connection scenarios (the default ``max_connections`` is 1024). Prints
``PORT <n>`` once listening.
"""

import sys

import syncws


def echo(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = syncws.Server(
        echo,
        "127.0.0.1",
        port,
        compression=None,
        max_size=16 << 20,
        max_connections=10_000,
        backlog=1024,
    )
    print("PORT", server.port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
