"""Keepalive under load: do a busy process's client connections answer pings in time?

``python benchmarks/keepalive_under_load.py [--scenario S ...] [--library L ...] [--conns N]
[--burners M] [--reps R] [--duration D] [--interval I] [--timeout T] [--no-fail]
[--switch-interval S]``

One process holds ``--conns`` client connections (syncws, or ``websockets.sync`` for
comparison) while ``--burners`` threads run Python in a loop in that same process. The
server, in a subprocess of its own and otherwise idle, is a ``websockets`` asyncio server
that does the keepalive itself: it pings every connection every ``--interval`` seconds,
measures each pong's delay, and closes a connection whose pong has not come within
``--timeout`` with 1011 "keepalive ping timeout" (as any peer's keepalive would); the
client then reconnects, so the load stays the same. Scenarios (what the client threads do):

``recv``
    each thread sits in ``recv()`` (the server sends nothing);
``idle``
    each thread sleeps, out of ``recv()`` (syncws's heartbeat thread reads for it);
``busy``
    each thread sends a message, receives its echo, then runs Python for 50-300 ms, and
    again (a handler busy between ``recv()`` calls);
``ping``
    each thread waits in ``ws.ping().wait()``, again and again, 20 ms apart.

Libraries take turns (syncws, websockets, syncws, ...) for ``--reps`` repetitions, each
run with a fresh server and client process. The table gives, per scenario and library, the
pings sent and the share of pongs late (not in ``--timeout``: lost as far as the server's
keepalive is concerned), the connections failed with 1011, and the pong delay's
percentiles, summed or pooled over the repetitions; the ratio column compares the shares
lost, repetition by repetition (the first library against each other one). ``--no-fail``
lets the server wait for late pongs (up to 10 s) instead of failing their connection, to
measure the whole distribution. ``--library syncws=DIR`` runs the syncws package found in
DIR (another checkout, C extensions built): a before/after on the same machine, in turns.
It never asserts anything: timings depend on the machine and on whatever else runs on it
(``--json`` prints every run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

HERE = os.path.abspath(__file__)
LIBRARIES = ("syncws", "websockets")
SCENARIOS = ("recv", "idle", "busy", "ping")


# The server: a subprocess, idle apart from the keepalive it measures.


def run_server(interval: float, timeout: float, fail: bool) -> None:
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    delays: list[float] = []  # of every pong (with --no-fail, the late ones too)
    stats = {"pings": 0, "late": 0, "failed": 0}

    async def keepalive(ws: Any) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            try:
                waiter = await ws.ping()
            except ConnectionClosed:
                return
            sent = loop.time()
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout if fail else 10.0)
            except TimeoutError:
                if ws.state.name != "OPEN":
                    return  # closed meanwhile: not a keepalive failure
                stats["pings"] += 1
                stats["late"] += 1
                stats["failed"] += 1
                await ws.close(1011, "keepalive ping timeout")
                return
            except ConnectionClosed:
                return
            stats["pings"] += 1
            delay = loop.time() - sent
            stats["late"] += delay > timeout
            delays.append(delay)

    async def handler(ws: Any) -> None:
        task = asyncio.create_task(keepalive(ws))
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            task.cancel()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, ping_interval=None, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            print(port, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            delays.sort()
            print(json.dumps({**stats, "delays": [round(d, 5) for d in delays]}), flush=True)

    asyncio.run(main())


# The client process: N connections and M burners.


def burn(stop: threading.Event) -> None:
    while not stop.is_set():
        total = 0
        for i in range(20000):
            total += i


def burn_for(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        total = 0
        for i in range(2000):
            total += i


def run_clients(
    library: str,
    scenario: str,
    port: int,
    conns: int,
    burners: int,
    duration: float,
    switch_interval: float,
) -> None:
    uri = f"ws://127.0.0.1:{port}/"
    if library.startswith("syncws"):
        # "syncws=DIR": the syncws package in DIR (another checkout), for a before/after.
        sys.path.insert(0, library.partition("=")[2] or os.path.dirname(os.path.dirname(HERE)))
        import syncws

        def connect() -> Any:
            return syncws.connect(uri, compression=None)

        closed_error: Any = syncws.ConnectionClosed
    else:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect as ws_connect

        def connect() -> Any:
            return ws_connect(uri, compression=None)

        closed_error = ConnectionClosed

    if switch_interval:
        sys.setswitchinterval(switch_interval)
    stop = threading.Event()
    end = time.monotonic() + duration
    counts: dict[str, Any] = {"connections": 0, "closed_1011": 0, "errors": 0}
    kinds: dict[str, int] = {}
    counts["error_kinds"] = kinds
    lock = threading.Lock()
    ready = threading.Barrier(conns + 1)

    def client() -> None:
        first = True
        rng = random.Random()
        while time.monotonic() < end:
            try:
                ws = connect()
            except Exception as exc:
                with lock:
                    counts["errors"] += 1
                    kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1
                time.sleep(0.05)
                continue
            with lock:
                counts["connections"] += 1
            if first:
                first = False
                ready.wait()
            try:
                while True:
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    if scenario == "recv":
                        try:
                            ws.recv(timeout=left)
                        except TimeoutError:
                            break
                    elif scenario == "idle":
                        if stop.wait(min(left, 0.5)):
                            break
                        ws.send(b"")  # notices a connection the server closed
                        ws.recv(timeout=5)
                    elif scenario == "busy":
                        ws.send(b"x")
                        ws.recv(timeout=5)
                        burn_for(rng.uniform(0.05, 0.3))
                    else:
                        ws.ping().wait(min(left, 5))
                        time.sleep(0.02)
            except closed_error as exc:
                # The close frame received: the connection may not be closed yet.
                code = exc.rcvd.code if exc.rcvd is not None else None
                with lock:
                    if code == 1011:
                        counts["closed_1011"] += 1
                    else:
                        counts["errors"] += 1
                        kinds[f"closed {code}"] = kinds.get(f"closed {code}", 0) + 1
                continue
            except Exception as exc:
                with lock:
                    counts["errors"] += 1
                    kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1
            try:
                ws.close()
            except Exception:
                pass

    threads = [threading.Thread(target=client, daemon=True) for _ in range(conns)]
    for thread in threads:
        thread.start()
    ready.wait()  # every client connected: now the load starts
    burning = [threading.Thread(target=burn, args=(stop,), daemon=True) for _ in range(burners)]
    for thread in burning:
        thread.start()
    for thread in threads:
        thread.join(duration + 30)
    stop.set()
    print(json.dumps(counts), flush=True)


# The driver.


def one_run(args: argparse.Namespace, library: str, scenario: str) -> dict[str, Any]:
    server = subprocess.Popen(
        [sys.executable, HERE, "--serve", str(args.interval), str(args.timeout), str(args.fail)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdin is not None
        port = int(server.stdout.readline())
        client = subprocess.run(
            [
                sys.executable,
                HERE,
                "--client",
                library,
                scenario,
                str(port),
                str(args.conns),
                str(args.burners),
                str(args.duration),
                str(args.switch_interval),
            ],
            capture_output=True,
            text=True,
            timeout=args.duration + 120,
            check=True,
        )
        counts = json.loads(client.stdout.splitlines()[-1])
        server.stdin.write("report\n")
        server.stdin.flush()
        report = json.loads(server.stdout.readline())
    finally:
        server.kill()
        server.wait()
    return {"library": library, "scenario": scenario, **counts, **report}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        run_server(float(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "True")
        return
    if sys.argv[1:2] == ["--client"]:
        lib, scenario, port, conns, burners, duration, switch = sys.argv[2:9]
        run_clients(
            lib, scenario, int(port), int(conns), int(burners), float(duration), float(switch)
        )
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument(
        "--library",
        nargs="+",
        default=list(LIBRARIES),
        help="syncws, websockets, or syncws=DIR: the syncws package found in DIR (e.g. a "
        "worktree of another commit, with its C extensions built), for a before/after",
    )
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--burners", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=0.5)
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=0.0,
        help="sys.setswitchinterval() in the client process (default: Python's, 5 ms)",
    )
    parser.add_argument(
        "--no-fail",
        dest="fail",
        action="store_false",
        help="measure late pongs instead of failing their connection (up to 10 s)",
    )
    parser.add_argument("--json", action="store_true", help="print every run as JSON")
    args = parser.parse_args()
    print(
        f"{args.conns} connections, {args.burners} burner threads, ping every "
        f"{args.interval} s, timeout {args.timeout} s, {args.duration} s per run, "
        f"{args.reps} repetitions, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    runs: list[dict[str, Any]] = []
    for _ in range(args.reps):
        for scenario in args.scenario:
            for library in args.library:
                run = one_run(args, library, scenario)
                runs.append(run)
                if args.json:
                    print(json.dumps({k: v for k, v in run.items() if k != "delays"}))
    header = (
        f"{'scenario':<8} {'library':<11} {'pings':>6} {'late':>6} {'late %':>7} "
        f"{'1011':>5} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7}  late % per run"
    )
    print(header)
    print("-" * len(header))
    for scenario in args.scenario:
        for library in args.library:
            mine = [r for r in runs if r["scenario"] == scenario and r["library"] == library]
            pings = sum(r["pings"] for r in mine)
            late = sum(r["late"] for r in mine)
            delays = sorted(d for r in mine for d in r["delays"])
            shares = [100 * r["late"] / r["pings"] if r["pings"] else 0.0 for r in mine]
            print(
                f"{scenario:<8} {library:<11.11} {pings:>6} {late:>6} "
                f"{100 * late / max(pings, 1):>7.1f} {sum(r['failed'] for r in mine):>5} "
                f"{1000 * pct(delays, 0.5):>7.1f} {1000 * pct(delays, 0.9):>7.1f} "
                f"{1000 * pct(delays, 0.99):>7.1f} {1000 * (delays[-1] if delays else 0):>7.1f}"
                f"  {' '.join(f'{s:.1f}' for s in shares)}"
            )
        base = args.library[0]
        for other in args.library[1:]:
            ratios = []
            for a, b in zip(
                [r for r in runs if r["scenario"] == scenario and r["library"] == base],
                [r for r in runs if r["scenario"] == scenario and r["library"] == other],
                strict=True,
            ):
                la, lb = a["late"] / max(a["pings"], 1), b["late"] / max(b["pings"], 1)
                ratios.append((la + 0.001) / (lb + 0.001))
            print(
                f"{'':<8} late-share ratio {base} / {other}, median of the repetitions: "
                f"{statistics.median(ratios):.2f}"
            )


if __name__ == "__main__":
    main()
