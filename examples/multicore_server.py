#!/usr/bin/env python
"""An echo server on every core: several processes share one port.

A process runs one Python thread at a time (the GIL), so a server with many busy
connections uses one core, however many threads it has. With ``reuse_port=True``
(``SO_REUSEPORT``: Linux and the BSDs) several processes listen on the same port and the
kernel spreads new connections among them.

``python examples/multicore_server.py [PORT] [PROCESSES]`` (defaults: 8765, one process per
core). Ctrl-C or SIGTERM stops every process gracefully.

Each process has its own connections: ``server.connections`` and :func:`syncws.broadcast`
see those of their own process only. Messages between the clients of different processes
need a channel shared by the processes (Redis pub/sub, a database, ...).
"""

import logging
import multiprocessing
import os
import signal
import sys

import syncws


def echo(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def worker(port: int) -> None:
    # serve() logs "server listening on ..." once bound, and handles SIGINT and SIGTERM.
    logging.basicConfig(format="%(process)d %(message)s", level=logging.INFO)
    syncws.serve(echo, "localhost", port, reuse_port=True)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    count = int(sys.argv[2]) if len(sys.argv) > 2 else os.cpu_count() or 1
    workers = [multiprocessing.Process(target=worker, args=(port,)) for _ in range(count)]
    for process in workers:
        process.start()

    def stop(signum: int, frame: object) -> None:
        for process in workers:
            if process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)

    # Ctrl-C reaches every process of the terminal's group; SIGTERM only this one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop)
    for process in workers:
        process.join()
    sys.exit(0 if all(process.exitcode == 0 for process in workers) else 1)


if __name__ == "__main__":
    main()
