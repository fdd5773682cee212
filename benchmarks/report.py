"""What ``run.py`` reports, and in which forms: tables, targets, the machine, Markdown, reST.

Each scenario adds a :class:`Table` per comparison to the :class:`Report`, and a check per
target; ``med``, ``spread`` and ``ratios`` make the figures of the cells, ``size_label``
the sizes. ``machine`` and ``loadavg`` describe where it ran, for the header;
``to_markdown`` and ``to_rst`` write the whole (``RESULTS.md``, and ``RESULTS.rst``, which
the documentation includes).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import dataclass, field

from peers import PYTHON, child_env


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    tables: list[Table] = field(default_factory=list)
    #: (target, measured, met) lines
    checks: list[tuple[str, str, bool]] = field(default_factory=list)

    def check(self, target: str, value: float, ok: bool, fmt: str = "{:.2f}") -> None:
        self.checks.append((target, fmt.format(value), ok))


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float], fmt: str) -> str:
    if not values:
        return "n/a"
    m = med(values)
    if len(values) == 1:
        return fmt.format(m)
    return f"{fmt.format(m)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def ratios(a: list[float], b: list[float]) -> list[float]:
    """Repetition-by-repetition ratios a/b (the runs were interleaved)."""
    return [x / y for x, y in zip(a, b, strict=False) if y]


def size_label(n: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.partition(":")[2].strip()
                    break
    except OSError:
        pass
    versions = {}
    for dist in ("websockets", "websocket-client", "aiohttp", "picows"):
        try:
            from importlib.metadata import version

            versions[dist] = version(dist)
        except Exception:
            versions[dist] = "not installed"
    out = subprocess.run(
        [
            PYTHON,
            "-c",
            "import syncws, syncws.runtime.transport as t; print(syncws.__version__, "
            "syncws.MASK_IMPLEMENTATION, 'C' if t._send_holding_gil else 'socket.send')",
        ],
        capture_output=True,
        text=True,
        env=child_env(),
        check=False,
    ).stdout.split()
    return {
        "CPU": f"{model}, {os.cpu_count()} cores (nproc)",
        "System": f"{platform.system()} {platform.release()}, {platform.machine()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "syncws": f"{out[0]} (masking: {out[1]}, short writes: {out[2]})" if len(out) == 3 else "?",
        "Peers": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def to_markdown(report: Report, info: dict[str, str]) -> str:
    lines = ["# syncws benchmark results", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines.append("")
    if report.checks:
        lines += ["## Targets", "", "| target | syncws | met |", "|---|---|---|"]
        lines += [f"| {t} | {v} | {'yes' if ok else '**no**'} |" for t, v, ok in report.checks]
        lines.append("")
    for table in report.tables:
        lines += [f"## {table.title}", ""]
        lines.append("| " + " | ".join(table.header) + " |")
        lines.append("|" + "---|" * len(table.header))
        lines += ["| " + " | ".join(row) + " |" for row in table.rows]
        lines.append("")
        lines += [f"{note}\n" for note in table.notes]
    return "\n".join(lines)


def _rst_table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    lines = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    lines.append("")
    return lines


def to_rst(report: Report, info: dict[str, str]) -> str:
    lines = [
        ".. Written by benchmarks/run.py: do not edit; run the benchmarks again instead.",
        "",
    ]
    lines += [f"* {k}: {v}" for k, v in info.items()]
    lines.append("")
    if report.checks:
        rows = [[t, v, "yes" if ok else "**no**"] for t, v, ok in report.checks]
        lines += _rst_table("Targets (ratios from this run)", ["target", "syncws", "met"], rows)
    for table in report.tables:
        lines += _rst_table(table.title, table.header, table.rows)
        for note in table.notes:
            lines += [note, ""]
    return "\n".join(lines)
