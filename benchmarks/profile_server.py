"""The syncws echo server of the benchmarks, under cProfile in every thread that matters.

``python benchmarks/profile_server.py STATS_FILE [PORT]`` prints ``PORT <n>`` like the
other servers (so ``loadgen.py`` can drive it), profiles each connection's pool thread
(handshake, handler, close) and the heartbeat thread, and on SIGTERM or SIGINT writes the
merged profile to STATS_FILE (read it with ``python -m pstats STATS_FILE``) and prints the
top functions by own time, per message (``Connection.send`` calls) and per connection.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import signal
import sys
import threading

import syncws
from syncws.runtime import heartbeat, server

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()


def _profiled(method):  # type: ignore[no-untyped-def]
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        profile = cProfile.Profile()
        profile.enable()
        try:
            return method(*args, **kwargs)
        finally:
            profile.disable()
            with _lock:
                _profiles.append(profile)

    return wrapper


server.Server._handle = _profiled(server.Server._handle)  # type: ignore[method-assign]
heartbeat.Heartbeat._run = _profiled(heartbeat.Heartbeat._run)  # type: ignore[method-assign]


def echo(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def main() -> None:
    path = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    srv = syncws.Server(
        echo, "127.0.0.1", port, compression=None, max_size=16 << 20, max_connections=10_000
    )
    signal.signal(signal.SIGTERM, srv._request_stop)
    signal.signal(signal.SIGINT, srv._request_stop)
    print("PORT", srv.port, flush=True)
    srv.serve_forever()  # returns after a graceful shutdown
    with _lock:
        profiles = list(_profiles)
    if not profiles:
        return
    stats = pstats.Stats(profiles[0])
    for profile in profiles[1:]:
        stats.add(profile)
    stats.dump_stats(path)
    sends = sum(n for (f, _, name), (_, n, *_) in stats.stats.items() if name == "send"  # type: ignore[attr-defined]
                and f.endswith("runtime/connection.py"))  # fmt: skip
    conns = len([p for p in profiles]) - 1
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(25)
    print(f"messages echoed: {sends}, connections: {conns}", file=sys.stderr)
    print(out.getvalue(), file=sys.stderr)


if __name__ == "__main__":
    main()
