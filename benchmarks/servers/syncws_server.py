"""syncws echo server for the benchmarks: ``python syncws_server.py [PORT] [--procs N]``.

Compression off, keepalive at its defaults, max_size 16 MiB, and a pool large enough for
the idle-connection scenarios (the default ``max_connections`` is 1024). Prints
``PORT <n>`` once listening.

``--procs N`` runs N processes on the port (``reuse_port=True``, as
``examples/multicore_server.py`` does): this one and N - 1 children, which stop with it.
The load generator counts the children's CPU time with this process's.
"""

import signal
import subprocess
import sys

import syncws


def echo(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def main() -> None:
    args = sys.argv[1:]
    procs = 1
    if "--procs" in args:
        i = args.index("--procs")
        procs = int(args[i + 1])
        del args[i : i + 2]
    port = int(args[0]) if args else 0
    server = syncws.Server(
        echo,
        "127.0.0.1",
        port,
        compression=None,
        max_size=16 << 20,
        max_connections=10_000,
        backlog=1024,
        reuse_port=True,
    )
    children = [
        subprocess.Popen([sys.executable, __file__, str(server.port)], stdout=subprocess.PIPE)
        for _ in range(procs - 1)
    ]
    for child in children:
        assert child.stdout is not None
        child.stdout.readline()  # its PORT line: it listens

    def stop(signum: int, frame: object) -> None:
        for child in children:
            child.terminate()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("PORT", server.port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
