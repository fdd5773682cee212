"""Run the benchmarks: syncws next to its peers, side by side, on this machine.

``python benchmarks/run.py [--quick] [--only SCENARIO ...] [--reps N] [--out FILE.md]``

Every server is a subprocess (``benchmarks/servers/``) with compression off, keepalive at
its defaults and ``max_size`` 16 MiB; the load comes from ``benchmarks/loadgen.py`` (raw
sockets, pre-masked frames, one thread) or, for the client scenarios, from
``benchmarks/clients.py``. In each comparison the servers take turns (A B C A B C ...)
for ``--reps`` repetitions; the tables give the median and the min-max of each, and
ratios computed repetition by repetition (then the median of those), which cancels most
of the drift of a noisy machine. Server CPU time per message (from ``/proc``) is the
figure least disturbed by other load. The 16 B echo scenarios also run the "design sketch"
(``servers/sketch_server.py``): not a WebSocket server, but the floor of syncws's design,
which tells whether a target is reachable in Python on this machine at all; 64 connections
also run syncws as two processes sharing the port, and as ``python -m syncws run --workers
2``. The ``floor64`` scenario runs variants of the sketch at 64 connections, with a little
Python work added per message, with the GIL released or held for the send: how far the
floor falls once a server does anything at all.

A full run (no ``--only``, no ``--quick``) writes ``benchmarks/RESULTS.md`` and
``benchmarks/RESULTS.rst`` (included by ``docs/topics/performance.rst``); otherwise the
tables go to stdout only, unless ``--out`` is given. Scenarios: {scenarios}.

``peers.py`` lists the servers and client libraries compared and runs their processes;
``report.py`` holds the tables and checks, and writes them out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from peers import (
    CEILING,
    CLIENT_REFERENCE,
    CLIENTS,
    HERE,
    PROCS2,
    REFERENCE,
    RUN2,
    SERVERS,
    SKETCH,
    ServerProcess,
    client_server,
    run_json,
    server_names,
)
from report import (
    Report,
    Table,
    loadavg,
    machine,
    med,
    ratios,
    size_label,
    spread,
    to_markdown,
    to_rst,
)

# Scenarios.


@dataclass
class Settings:
    reps: int
    duration: float
    warmup: float
    idle_window: float
    idle_counts: tuple[int, int]
    mask_seconds: float


FULL = Settings(reps=5, duration=1.5, warmup=0.3, idle_window=25.0,
                idle_counts=(1000, 5000), mask_seconds=1.0)  # fmt: skip
QUICK = Settings(reps=2, duration=0.3, warmup=0.1, idle_window=1.0,
                 idle_counts=(200, 500), mask_seconds=0.1)  # fmt: skip


def alternate(
    names: list[str], reps: int, measure: Callable[[str, int], dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Run ``measure(name, rep)`` as A B C A B C ...; collect the results by name."""
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for rep in range(reps):
        for name in names:
            results[name].append(measure(name, rep))
            print(f"  {name:<20} rep {rep + 1}: {_brief(results[name][-1])}", flush=True)
    return results


def _brief(r: dict[str, Any]) -> str:
    return f"{r['rate']:,.0f}/s  p50 {r['p50_us']:.0f} us  server CPU {r['cpu_us']:.1f} us/msg" + (
        f"  client CPU {r['client_cpu_us']:.1f} us/msg" if "client_cpu_us" in r else ""
    )


def echo_table(
    title: str,
    loadgen_args: list[str],
    settings: Settings,
    report: Report,
    mode: str = "echo",
    unit: str = "msgs/s",
    extra: tuple[str, ...] = (),
    only: tuple[str, ...] = (),
) -> dict[str, list[dict[str, Any]]]:
    names = [n for n in server_names(extra=extra) if not only or n in only]
    servers: dict[str, ServerProcess] = {}
    try:
        for name in names:  # in the try: one that fails to start stops the others
            servers[name] = ServerProcess(name)

        def measure(name: str, rep: int) -> dict[str, Any]:
            server = servers[name]
            args = [
                os.path.join(HERE, "loadgen.py"),
                mode,
                "--port",
                str(server.port),
                "--pid",
                str(server.pid),
                "--duration",
                str(settings.duration),
                "--warmup",
                str(settings.warmup),
                *loadgen_args,
            ]
            if server.raw:
                args.append("--raw")
            return run_json(args, timeout=120)

        print(f"{title}:", flush=True)
        results = alternate(names, settings.reps, measure)
    finally:
        for server in servers.values():
            server.stop()
    ref = [r["rate"] for r in results[REFERENCE]]
    ceiling_cpu = [r["cpu_us"] for r in results[CEILING]]
    rows = []
    for name in names:
        rates = [r["rate"] for r in results[name]]
        cpu = [r["cpu_us"] for r in results[name]]
        rows.append(
            [
                name,
                spread(rates, "{:,.0f}"),
                f"{med(ratios(rates, ref)):.2f}",
                f"{med([r['p50_us'] for r in results[name]]):,.0f}",
                f"{med([r['p99_us'] for r in results[name]]):,.0f}",
                spread(cpu, "{:.1f}"),
                f"{med(ratios(cpu, ceiling_cpu)):.2f}",
            ]
        )
    header = [
        "server",
        f"{unit} median (min-max)",
        f"vs {REFERENCE}",
        "p50 us",
        "p99 us",
        f"server CPU us/{'msg' if mode == 'echo' else 'handshake'}",
        f"CPU vs {CEILING}",
    ]
    report.tables.append(Table(title, header, rows))
    return results


def scenario_rt(size: int, label: str) -> Callable[[Settings, Report], None]:
    def run(settings: Settings, report: Report) -> None:
        title = f"Round trips, 1 connection, {label} messages"
        extra = (SKETCH,) if size == 16 else ()
        results = echo_table(title, ["--size", str(size)], settings, report, extra=extra)
        _check_vs_ref(report, results, f"1 conn {label} msgs/s vs {REFERENCE}", size)

    return run


def _rate_ratio(results: dict[str, list[dict[str, Any]]], a: str, b: str) -> float:
    return med(ratios([r["rate"] for r in results[a]], [r["rate"] for r in results[b]]))


def _cpu_ratio(results: dict[str, list[dict[str, Any]]], a: str, b: str) -> float:
    return med(ratios([r["cpu_us"] for r in results[a]], [r["cpu_us"] for r in results[b]]))


def _check_vs_ref(
    report: Report, results: dict[str, list[dict[str, Any]]], what: str, size: int
) -> None:
    ratio = _rate_ratio(results, "syncws", REFERENCE)
    if size == 16:
        tcp = _rate_ratio(results, "syncws", CEILING)
        cpu = _cpu_ratio(results, "syncws", CEILING)
        report.check(f"1 conn 16 B msgs/s >= 0.95 x {CEILING}", tcp, tcp >= 0.95)
        report.check(f"1 conn 16 B server CPU/msg <= 1.2 x {CEILING}", cpu, cpu <= 1.2)
        report.check(f"({what}: no target)", ratio, True)
        _check_sketch(report, results, "1 conn 16 B")
    elif size == 1 << 20:
        report.check(f"1 conn 1 MiB msgs/s >= 2.0 x {REFERENCE}", ratio, ratio >= 2.0)
    else:
        report.check(f"({what}: no target)", ratio, True)


def scenario_conns64(settings: Settings, report: Report) -> None:
    results = echo_table(
        "Round trips, 64 connections at once, 16 B messages",
        ["--conns", "64", "--size", "16"],
        settings,
        report,
        extra=(SKETCH, PROCS2, RUN2),
    )
    ratio = _rate_ratio(results, "syncws", REFERENCE)
    cpu = _cpu_ratio(results, "syncws", CEILING)
    report.check(f"64 conns 16 B msgs/s >= 6.0 x {REFERENCE}", ratio, ratio >= 6.0)
    report.check(f"64 conns 16 B server CPU/msg <= 1.5 x {CEILING}", cpu, cpu <= 1.5)
    _check_sketch(report, results, "64 conns 16 B")
    procs = _rate_ratio(results, PROCS2, REFERENCE)
    report.check(f"(64 conns 16 B, {PROCS2}: msgs/s x {REFERENCE}; no target)", procs, True)
    run2 = _rate_ratio(results, RUN2, REFERENCE)
    report.check(f"64 conns 16 B, {RUN2}: msgs/s >= 6.0 x {REFERENCE}", run2, run2 >= 6.0)
    # The runner's own cost: it runs right after the hand-made setup in every repetition,
    # so this ratio hardly moves with the machine's load, unlike those to websockets.sync.
    own = _rate_ratio(results, RUN2, PROCS2)
    report.check(f"(64 conns 16 B, {RUN2}: msgs/s x {PROCS2}; no target)", own, True)
    own_cpu = _cpu_ratio(results, RUN2, PROCS2)
    report.check(f"(64 conns 16 B, {RUN2}: CPU/msg x {PROCS2}; no target)", own_cpu, True)
    report.tables[-1].notes.append(
        f"{PROCS2}: two syncws processes share the port (reuse_port=True, as "
        "examples/multicore_server.py runs them); its CPU is both processes'."
    )
    report.tables[-1].notes.append(
        f"{RUN2}: python -m syncws run with two workers (SO_REUSEPORT); its CPU is the "
        "supervisor's and both workers'."
    )


#: The floor64 scenario's servers: the sketch with more and more Python work per message,
#: with the GIL released for the send (as the sketch does) or held (as syncws does).
FLOOR = [n for n in SERVERS if n.startswith("sketch")]


def scenario_floor64(settings: Settings, report: Report) -> None:
    """How the 64-connection floor moves once a server runs Python code of its own."""
    title = "64 connections at once, 16 B: the design sketch with Python work added"
    results = echo_table(
        title,
        ["--conns", "64", "--size", "16"],
        settings,
        report,
        extra=(SKETCH, *FLOOR),
        only=("syncws", REFERENCE, CEILING, SKETCH, *FLOOR),
    )
    for name in (SKETCH, *FLOOR):
        if name in results:
            ratio = _rate_ratio(results, name, REFERENCE)
            report.check(f"(64 conns 16 B, {name}: msgs/s x {REFERENCE}; no target)", ratio, True)
    report.tables[-1].notes.append(
        "Each call is of an empty Python function (about 9 bytecodes), made before the answer "
        "is sent; syncws runs about 340 bytecodes per message (bytecodes_per_message.py). "
        '"GIL held": the answer is sent by the C call syncws uses (syncws.runtime._send) '
        "instead of sendall(), which releases the GIL."
    )


def _check_sketch(report: Report, results: dict[str, list[dict[str, Any]]], what: str) -> None:
    """Report the design sketch's own ratios (no target: it is the floor) and syncws's
    ratio to it."""
    ratio = _rate_ratio(results, SKETCH, REFERENCE)
    cpu = _cpu_ratio(results, SKETCH, CEILING)
    share = _rate_ratio(results, "syncws", SKETCH)
    report.check(f"({what}, {SKETCH}: msgs/s x {REFERENCE}; no target)", ratio, True)
    report.check(f"({what}, {SKETCH}: server CPU/msg x {CEILING}; no target)", cpu, True)
    report.check(f"({what}: syncws msgs/s x {SKETCH}; no target)", share, True)


def scenario_inflight64(settings: Settings, report: Report) -> None:
    results = echo_table(
        "Pipelining: 64 messages in flight on 1 connection, 16 B",
        ["--inflight", "64", "--size", "16"],
        settings,
        report,
    )
    ratio = _rate_ratio(results, "syncws", REFERENCE)
    report.check(f"1 conn 64 in flight 16 B msgs/s >= 2.0 x {REFERENCE}", ratio, ratio >= 2.0)
    report.tables[-1].notes.append(
        f"{CEILING} echoes the bytes in bulk, without framing: not comparable here."
    )


def scenario_broadcast(settings: Settings, report: Report) -> None:
    """One message to many connections, with the broadcaster alone or sharing the GIL."""
    conns, messages = (1000, 20) if settings is FULL else (100, 5)
    names = ["syncws broadcast", "websockets.sync broadcast"]
    busy = (0, 2)
    servers: dict[str, ServerProcess] = {}
    results: dict[tuple[str, int], list[dict[str, Any]]] = {(n, b): [] for n in names for b in busy}
    print(f"Broadcast to {conns:,} connections:", flush=True)
    try:
        for name in names:
            servers[name] = ServerProcess(name)
        for rep in range(min(settings.reps, 3)):
            for name in names:
                for b in busy:
                    server = servers[name]
                    args = [os.path.join(HERE, "broadcast.py"), "--port", str(server.port),
                            "--pid", str(server.pid), "--conns", str(conns),
                            "--messages", str(messages), "--busy", str(b)]  # fmt: skip
                    r = run_json(args, timeout=300)
                    results[(name, b)].append(r)
                    print(f"  {name:<26} busy {b} rep {rep + 1}: "
                          f"{r['ms_per_broadcast']:.1f} ms/broadcast", flush=True)  # fmt: skip
    finally:
        for server in servers.values():
            server.stop()
    rows = []
    for b in busy:
        ref = [r["ms_per_broadcast"] for r in results[("websockets.sync broadcast", b)]]
        for name in names:
            ms = [r["ms_per_broadcast"] for r in results[(name, b)]]
            rows.append([
                name.removesuffix(" broadcast"),
                str(b),
                spread(ms, "{:,.1f}"),
                f"{med(ratios(ref, ms)):.2f}",
                f"{med([r['deliveries_per_s'] for r in results[(name, b)]]):,.0f}",
                f"{med([r['cpu_us'] for r in results[(name, b)]]):.1f}" if not b else "-",
                f"{min(r['delivered'] for r in results[(name, b)]):.0%}",
            ])  # fmt: skip
            if name.startswith("syncws"):
                speed = med(ratios(ref, ms))
                what = f"(broadcast to {conns:,} connections, {b} busy threads: x websockets.sync"
                report.check(f"{what} speed; no target)", speed, True)
    header = ["library", "busy threads", "ms per broadcast median (min-max)",
              "speed vs websockets.sync", "deliveries/s", "server CPU us/delivery",
              "delivered"]  # fmt: skip
    notes = [
        f"One handler calls the library's broadcast() {messages} times with 16 B; the time "
        "runs until all of the connections (read by benchmarks/broadcast.py) have every "
        "message. Busy threads run Python code without pause meanwhile, as busy handlers "
        "would (their CPU is not counted: server CPU only without them)."
    ]
    report.tables.append(Table(f"Broadcast, 16 B to {conns:,} connections", header, rows, notes))


def scenario_handshakes(n: int, target: float) -> Callable[[Settings, Report], None]:
    def run(settings: Settings, report: Report) -> None:
        results = echo_table(
            f"Handshakes, {n} at a time (connect, upgrade, closing handshake, TCP close)",
            ["--conns", str(n)],
            settings,
            report,
            mode="handshake",
            unit="handshakes/s",
        )
        ratio = _rate_ratio(results, "syncws", REFERENCE)
        report.check(
            f"handshakes/s {n} at a time >= {target} x {REFERENCE}", ratio, ratio >= target
        )
        report.tables[-1].notes.append(
            f"{CEILING}: connect, one echo of the request, close; p50/p99: connect to 101."
        )

    return run


def scenario_idle(index: int) -> Callable[[Settings, Report], None]:
    def run(settings: Settings, report: Report) -> None:
        n = settings.idle_counts[index]
        title = f"{n:,} idle connections, keepalive on, 1 active connection at 50 round trips/s"
        print(f"{title}:", flush=True)
        rows = []
        results = {}
        for name in server_names():
            server = ServerProcess(name)
            try:
                args = [
                    os.path.join(HERE, "loadgen.py"),
                    "idle",
                    "--port",
                    str(server.port),
                    "--pid",
                    str(server.pid),
                    "--conns",
                    str(n),
                    "--duration",
                    str(settings.idle_window),
                ]
                if server.raw:
                    args.append("--raw")
                r = run_json(args, timeout=300)
            except RuntimeError as exc:
                error = str(exc).strip().splitlines()[-1]
                print(f"  {name:<20} FAILED: {error}", flush=True)
                rows.append([name, f"failed: {error}", *["n/a"] * 8])
                continue
            finally:
                server.stop()
            results[name] = r
            print(f"  {name:<20} {json.dumps(r)}", flush=True)
            pings = "n/a" if server.raw else f"{r['answered_pings']:,}/{n - r['dropped']:,}"
            rows.append(
                [
                    name,
                    f"{r['rss_per_conn_kib']:.1f}",
                    f"{r['rss_base_kib'] / 1024:.1f} -> {r['rss_kib'] / 1024:.1f}",
                    f"{r['threads']:,}",
                    f"{r['idle_cpu_ms_per_s']:.1f}",
                    f"{r['p50_us']:,.0f}",
                    f"{r['p99_us']:,.0f}",
                    f"{r['pinged_conns']:,}",
                    pings,
                    str(r["dropped"]),
                ]
            )
        header = [
            "server",
            "RSS KiB/conn",
            "RSS MiB before -> with conns",
            "threads",
            "idle CPU ms/s",
            "active p50 us",
            "active p99 us",
            "conns pinged by server",
            "our pings answered",
            "conns dropped",
        ]
        notes = [
            f"One run per server (memory and thread counts hardly vary); the window is "
            f"{settings.idle_window:g} s, so servers with 20 s keepalive ping every connection."
        ]
        report.tables.append(Table(title, header, rows, notes))
        if "syncws" not in results:
            report.check(f"{n:,} idle conns: syncws ran", 0, False, "failed")
            return
        r = results["syncws"]
        threads_ok = r["threads"] <= n + 1 + 10
        if index == 0:
            report.check(
                f"{n:,} idle conns: RSS/conn <= 28 KiB", r["rss_per_conn_kib"],
                r["rss_per_conn_kib"] <= 28, "{:.1f} KiB",
            )  # fmt: skip
            report.check(
                f"{n:,} idle conns: threads <= conns + 10", r["threads"], threads_ok, "{:,.0f}"
            )
            all_answered = r["answered_pings"] == n and r["dropped"] == 0
            report.check(
                f"{n:,} idle conns: every ping answered", r["answered_pings"], all_answered,
                "{:,.0f} answered",
            )  # fmt: skip
        else:
            report.check(
                f"({n:,} idle conns: RSS/conn, no target)", r["rss_per_conn_kib"], True,
                "{:.1f} KiB",
            )  # fmt: skip

    return run


def scenario_mask(settings: Settings, report: Report) -> None:
    print("Masking:", flush=True)
    r = run_json([os.path.abspath(__file__), "--mask-worker", str(settings.mask_seconds)], 600)
    columns = ["apply_mask", "cffi", "python", "websockets.speedups", "memcpy"]
    rows = []
    for size, best in r["rows"]:
        cells = [size_label(size)]
        for col in columns:
            ns = best.get(col)
            cells.append("n/a" if ns is None else f"{ns:,.0f} ns ({size / ns:.2f} GB/s)")
        ws = best.get("websockets.speedups")
        cells.append("n/a" if not ws else f"{best['cffi'] / ws:.2f}")
        rows.append(cells)
        if size >= 1 << 16 and ws:
            ratio = best["cffi"] / ws
            report.check(
                f"masking {size_label(size)}: cffi <= 1.0 x websockets.speedups time", ratio,
                ratio <= 1.0,
            )  # fmt: skip
        if size == 16:
            report.check("masking 16 B (apply_mask) <= 120 ns", best["apply_mask"],
                         best["apply_mask"] <= 120, "{:.0f} ns")  # fmt: skip
    header = ["size", "syncws apply_mask", "syncws cffi", "pure Python", "websockets.speedups",
              "memcpy", "cffi / speedups"]  # fmt: skip
    notes = [
        f"IMPLEMENTATION={r['implementation']}; apply_mask uses Python integers up to "
        f"{r['py_max']} bytes, the C routine above (from {size_label(r['into_min'])} up, writing "
        "straight into the bytes object it returns). Best of interleaved rounds, new bytes "
        "out (memcpy: bytes(bytearray)). From 256 KiB up the figures depend on the C "
        "allocator's state (see benchmarks/mask_quick.py)."
    ]
    report.tables.append(Table("Masking (ns per call)", header, rows, notes))


def mask_worker(seconds: float) -> None:
    """Run in a subprocess: time the masking routines, print JSON."""
    from functools import partial

    from mask_quick import SIZES, _best_ns  # the same timing loop as mask_quick.py

    from syncws.protocol import mask as m

    try:
        from websockets.speedups import apply_mask as ws_mask
    except ImportError:
        ws_mask = None
    key = os.urandom(4)
    rows = []
    for n in SIZES:
        data = os.urandom(n)
        buf = bytearray(data)
        funcs: dict[str, Callable[[], object]] = {
            "apply_mask": partial(m.apply_mask, data, key),
            "python": partial(m._py_apply_mask, data, key),
            "memcpy": partial(bytes, buf),
        }
        if m._c_apply_mask is not None:
            funcs["cffi"] = partial(m._c_apply_mask, data, key, 0)
        if ws_mask is not None:
            funcs["websockets.speedups"] = partial(ws_mask, data, key)
        rows.append((n, _best_ns(funcs, seconds * (0.5 if n >= 1 << 20 else 1.0))))
    info = {"implementation": m.IMPLEMENTATION, "py_max": m._PY_MAX, "into_min": m._INTO_MIN}
    json.dump({**info, "rows": rows}, sys.stdout)
    print()


def scenario_client(threads: int, size: int, target: float) -> Callable[[Settings, Report], None]:
    def run(settings: Settings, report: Report) -> None:
        server_name = client_server()
        title = (
            f"Clients, {threads} thread{'s' if threads > 1 else ''} "
            f"(1 connection each), {size_label(size)} round trips, against {server_name}"
        )
        print(f"{title}:", flush=True)
        server = ServerProcess(server_name)
        try:

            def measure(name: str, rep: int) -> dict[str, Any]:
                args = [
                    os.path.join(HERE, "clients.py"),
                    name,
                    "--port",
                    str(server.port),
                    "--pid",
                    str(server.pid),
                    "--threads",
                    str(threads),
                    "--size",
                    str(size),
                    "--duration",
                    str(settings.duration),
                    "--warmup",
                    str(settings.warmup),
                ]
                return run_json(args, timeout=120)

            results = alternate(CLIENTS, settings.reps, measure)
        finally:
            server.stop()
        ref = [r["rate"] for r in results[CLIENT_REFERENCE]]
        rows = []
        for name in CLIENTS:
            rates = [r["rate"] for r in results[name]]
            rows.append(
                [
                    name,
                    spread(rates, "{:,.0f}"),
                    f"{med(ratios(rates, ref)):.2f}",
                    f"{med([r['p50_us'] for r in results[name]]):,.0f}",
                    f"{med([r['p99_us'] for r in results[name]]):,.0f}",
                    spread([r["client_cpu_us"] for r in results[name]], "{:.1f}"),
                    spread([r["cpu_us"] for r in results[name]], "{:.1f}"),
                ]
            )
        header = ["client", "msgs/s median (min-max)", "vs websockets.sync.client", "p50 us",
                  "p99 us", "client CPU us/msg", "server CPU us/msg"]  # fmt: skip
        report.tables.append(Table(title, header, rows))
        ratio = _rate_ratio(results, "syncws", CLIENT_REFERENCE)
        report.check(
            f"client {threads} thread{'s' if threads > 1 else ''} {size_label(size)} msgs/s "
            f">= {target} x websockets.sync.client",
            ratio,
            ratio >= target,
        )

    return run


SCENARIOS: dict[str, Callable[[Settings, Report], None]] = {
    "rt16": scenario_rt(16, "16 B"),
    "rt1k": scenario_rt(1024, "1 KiB"),
    "rt1m": scenario_rt(1 << 20, "1 MiB"),
    "conns64": scenario_conns64,
    "floor64": scenario_floor64,
    "inflight64": scenario_inflight64,
    "hs1": scenario_handshakes(1, 2.5),
    "hs16": scenario_handshakes(16, 4.0),
    "idle1000": scenario_idle(0),
    "idle5000": scenario_idle(1),
    "mask": scenario_mask,
    "broadcast": scenario_broadcast,
    "client1": scenario_client(1, 16, 1.2),
    "client8": scenario_client(8, 1024, 4.0),
}

__doc__ = __doc__.format(scenarios=", ".join(SCENARIOS))


def main() -> None:
    parser = argparse.ArgumentParser(
        description="syncws benchmarks", formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="every scenario, briefly")
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS), metavar="SCENARIO",
                        help=f"run these only: {', '.join(SCENARIOS)}")  # fmt: skip
    parser.add_argument("--reps", type=int, help="repetitions per comparison")
    parser.add_argument("--out", help="write the Markdown here (and an .rst next to it)")
    parser.add_argument("--mask-worker", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mask_worker is not None:
        mask_worker(args.mask_worker)
        return
    settings = QUICK if args.quick else FULL
    if args.reps:
        settings.reps = args.reps
    out = args.out
    if out is None and not args.quick and not args.only:
        out = os.path.join(HERE, "RESULTS.md")
    info = machine()
    info["Load (1, 5, 15 min) at start"] = loadavg()
    info["Command"] = "python benchmarks/run.py" + " ".join(["", *sys.argv[1:]]).rstrip()
    print("\n".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    report = Report()
    start = time.monotonic()
    for name in args.only or list(SCENARIOS):
        t = time.monotonic()
        try:
            SCENARIOS[name](settings, report)
        except Exception as exc:  # one broken scenario must not lose the others
            error = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
            print(f"  {name} FAILED: {error}", flush=True)
            report.checks.append((f"scenario {name} ran", f"failed: {error}", False))
        print(f"  ({name}: {time.monotonic() - t:.0f} s)", flush=True)
    info["Load (1, 5, 15 min) at end"] = loadavg()
    info["Duration"] = f"{(time.monotonic() - start) / 60:.1f} min"
    info["Date"] = time.strftime("%Y-%m-%d %H:%M %Z")
    markdown = to_markdown(report, info)
    print()
    print(markdown)
    if out:
        with open(out, "w") as f:
            f.write(markdown)
        with open(os.path.splitext(out)[0] + ".rst", "w") as f:
            f.write(to_rst(report, info))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
