"""Client-side benchmark: round trips through one client library, in threads.

``python benchmarks/clients.py LIBRARY --port P --pid SERVER_PID --threads N --size S``

LIBRARY is ``syncws`` (:func:`syncws.connect`), ``websockets`` (``websockets.sync.client``)
or ``websocket-client`` (``websocket.create_connection``). Each thread opens its own
connection (compression off) and does send-then-recv round trips with a binary message of
``--size`` bytes. Prints one JSON object: messages/s, p50/p99 latency, this process's CPU
time per message (the client's cost) and the server's (from ``/proc/<pid>``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from measure import cpu_seconds, percentile

Pair = tuple[Callable[[bytes], object], Callable[[], object], Callable[[], object]]


def open_client(library: str, uri: str, stack: contextlib.ExitStack) -> Pair:
    """Connect; return (send, recv, close)."""
    if library == "syncws":
        import syncws

        ws = stack.enter_context(syncws.connect(uri, compression=None, max_size=16 << 20))
        return ws.send, ws.recv, ws.close
    if library == "websockets":
        from websockets.sync.client import connect

        wc = stack.enter_context(connect(uri, compression=None, max_size=16 << 20))
        return wc.send, wc.recv, wc.close
    if library == "websocket-client":
        import websocket

        wsc = websocket.create_connection(uri)
        return wsc.send_binary, wsc.recv, wsc.close
    raise ValueError(library)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("library", choices=["syncws", "websockets", "websocket-client"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.3)
    args = parser.parse_args()
    uri = f"ws://127.0.0.1:{args.port}/"
    payload = os.urandom(args.size)
    stack = contextlib.ExitStack()
    clients = [open_client(args.library, uri, stack) for _ in range(args.threads)]
    counts = [0] * args.threads
    lats: list[list[int]] = [[] for _ in range(args.threads)]
    start = time.perf_counter_ns()
    warm_end = start + int(args.warmup * 1e9)
    end = warm_end + int(args.duration * 1e9)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        send, recv, _ = clients[i]
        perf = time.perf_counter_ns
        mine = lats[i]
        n = 0
        try:
            while True:
                t = perf()
                if t >= end:
                    break
                send(payload)
                reply = recv()
                now = perf()
                if len(reply) != len(payload):
                    raise RuntimeError("bad echo")
                if t >= warm_end:
                    n += 1
                    mine.append(now - t)
        except BaseException as exc:
            errors.append(exc)
        counts[i] = n

    threads = [threading.Thread(target=work, args=(i,)) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, (warm_end - time.perf_counter_ns()) / 1e9))
    cpu0, server0 = time.process_time(), cpu_seconds(args.pid)
    time.sleep(max(0.0, (end - time.perf_counter_ns()) / 1e9))
    cpu1, server1 = time.process_time(), cpu_seconds(args.pid)
    for thread in threads:
        thread.join(30)
    for _, _, close in clients:
        try:
            close()
        except Exception:
            pass
    stack.close()
    if errors:
        raise errors[0]
    count = sum(counts)
    all_lats = sorted(x for mine in lats for x in mine)
    json.dump(
        {
            "msgs": count,
            "seconds": args.duration,
            "rate": count / args.duration,
            "p50_us": percentile(all_lats, 0.5),
            "p99_us": percentile(all_lats, 0.99),
            "cpu_us": (server1 - server0) / max(count, 1) * 1e6,
            "client_cpu_us": (cpu1 - cpu0) / max(count, 1) * 1e6,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
