"""The load side of the ``broadcast`` scenario of ``run.py``: how long a server takes to
deliver a broadcast to many connections.

``python benchmarks/broadcast.py --port P --pid PID [--conns 1000] [--messages 20]
[--busy N]``

It opens ``--conns`` connections to ``servers/broadcast_server.py`` and reads them all in
one thread (``rawclient.py``'s connections, as ``loadgen.py`` uses them, and an epoll
loop). One connection asks for ``--messages`` broadcasts of 16 bytes (``go K``); the clock
runs from that request until every connection has every message. A first round of one
broadcast warms the server up. ``--busy N`` has N threads of the server run Python code
meanwhile (``busy N``, sent once the connections are open, and ``busy 0`` at the end), as
busy handlers would.

Prints one JSON object: ``seconds``, ``ms_per_broadcast``, ``deliveries_per_s``,
``delivered`` (the fraction of the messages that arrived within the time limit: a server
may skip a peer it finds slow) and the server's ``cpu_us`` per delivery (from ``/proc``).
"""

from __future__ import annotations

import argparse
import json
import select
import sys
import time

from measure import cpu_seconds
from rawclient import IN, RECV_SIZE, Conn, client_frame, close_all, handshake, serve_ready


def deliver(conns: list[Conn], ep: select.epoll, k: int, timeout: float) -> tuple[float, int]:
    """Ask for ``k`` broadcasts; read until every connection has them all, or ``timeout``.
    Returns the seconds taken and the messages delivered."""
    by_fd = {conn.fd: conn for conn in conns}
    counts = dict.fromkeys(by_fd, 0)
    remaining = len(conns)
    buf = bytearray(RECV_SIZE)
    start = time.perf_counter()
    conns[0].write(ep, client_frame(f"go {k}".encode(), 1))
    deadline = start + timeout
    while remaining and time.perf_counter() < deadline:
        for fd, ev in ep.poll(0.5):
            conn = by_fd[fd]
            n = serve_ready(ep, conn, ev, buf)
            if not n:
                continue
            done, answers = conn.parse(memoryview(buf)[:n], False)
            for answer in answers:  # pongs to the server's keepalive pings
                conn.write(ep, answer)
            before = counts[fd]
            counts[fd] = before + done
            if before < k <= counts[fd]:
                remaining -= 1
    elapsed = time.perf_counter() - start
    return elapsed, sum(min(count, k) for count in counts.values())


def run(args: argparse.Namespace) -> dict[str, object]:
    conns = [handshake(args.port, False) for _ in range(args.conns)]
    ep = select.epoll()
    try:
        for conn in conns:
            ep.register(conn.fd, IN)
        conns[0].write(ep, client_frame(f"busy {args.busy}".encode(), 1))
        deliver(conns, ep, 1, args.timeout)  # warm-up
        cpu = cpu_seconds(args.pid)
        seconds, delivered = deliver(conns, ep, args.messages, args.timeout)
        cpu = cpu_seconds(args.pid) - cpu
        conns[0].write(ep, client_frame(b"busy 0", 1))
    finally:
        ep.close()
        close_all(conns, raw=False)
    total = args.conns * args.messages
    return {
        "seconds": seconds,
        "ms_per_broadcast": seconds / args.messages * 1e3,
        "deliveries_per_s": delivered / seconds,
        "delivered": delivered / total,
        "cpu_us": cpu / max(delivered, 1) * 1e6,
        "busy": args.busy,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True, help="the server's process id")
    parser.add_argument("--conns", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--busy", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30.0)
    json.dump(run(parser.parse_args()), sys.stdout)
    print()


if __name__ == "__main__":
    main()
