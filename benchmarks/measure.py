"""What the load generators measure of a server, and when: /proc, percentiles, windows.

``cpu_seconds`` and ``status`` read a server process's CPU time (its children's too), RSS
and threads from ``/proc/<pid>``; ``percentile`` reads latencies in nanoseconds as
microseconds; a :class:`Window` is a load loop's warm-up, then its measurement.
"""

from __future__ import annotations

import argparse
import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


# The server process, from /proc.


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the whole process (all threads, live or exited), and of
    the live child processes of its main thread (a server of several processes)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    total = (int(fields[11]) + int(fields[12])) / CLK_TCK
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(child) for child in f.read().split()]
    except OSError:
        children = []
    for child in children:
        try:
            total += cpu_seconds(child)
        except OSError:
            pass  # it ended meanwhile
    return total


def status(pid: int) -> dict[str, int]:
    """VmRSS (KiB) and Threads of a process."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                out[key] = int(value.split()[0])
    return out


def percentile(sorted_values: list[int], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))] / 1000


class Window:
    """A load loop's warm-up, then its measurement, which ends at :attr:`end` (ns, on
    ``time.perf_counter_ns``): the loop calls :meth:`start` until it returns ``True``, then
    counts, and :meth:`figures` gives the time and CPU since."""

    def __init__(self, args: argparse.Namespace, now: int) -> None:
        self.pid = args.pid
        self.warm_end = now + int(args.warmup * 1e9)
        self.end = self.warm_end + int(args.duration * 1e9)
        self.t0 = now
        self.cpu0 = self.my_cpu0 = 0.0

    def start(self, now: int) -> bool:
        """Start measuring if the warm-up is over; return whether it started."""
        if now < self.warm_end:
            return False
        self.cpu0 = cpu_seconds(self.pid)
        self.my_cpu0 = time.process_time()
        self.t0 = now
        return True

    def figures(self, now: int) -> tuple[float, float, float]:
        """Seconds elapsed, server CPU seconds, and this process's, since :meth:`start`."""
        return (
            (now - self.t0) / 1e9,
            cpu_seconds(self.pid) - self.cpu0,
            time.process_time() - self.my_cpu0,
        )
