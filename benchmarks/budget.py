"""Hold the message path to its budget: bytecodes and Python calls per 16-byte echo.

Timings on a shared 2-core machine move by 10 % from one run to the next; these counts do
not move at all unless the code does. CI runs ``python benchmarks/budget.py``, which measures
each count (``bytecodes_per_message.py`` and ``calls_per_message.py``, on the server's
handler thread and on a client's thread), compares it with ``budget.json``, and fails when
one exceeds its budget by more than the tolerance (3 %).

A change that raises a count on purpose records the new figures with
``python benchmarks/budget.py --record`` and says why in its commit message. A change that
lowers one should record it too, so that the saving is kept.

The counts depend on the interpreter's bytecode: the budget is for the Python version it
names, and other versions are refused.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUDGET = HERE / "budget.json"
TOLERANCE = 0.03

#: name -> (script, side, pattern of the figure in its first line of output)
MEASURES = {
    "server_bytecodes": ("bytecodes_per_message.py", "server", r"([\d.]+) bytecodes"),
    "client_bytecodes": ("bytecodes_per_message.py", "client", r"([\d.]+) bytecodes"),
    "server_calls": ("calls_per_message.py", "server", r"calls per round trip: ([\d.]+)"),
    "client_calls": ("calls_per_message.py", "client", r"calls per round trip: ([\d.]+)"),
}


def measure(name: str) -> float:
    script, side, pattern = MEASURES[name]
    out = subprocess.run(
        [sys.executable, str(HERE / script), side],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    match = re.search(pattern, out)
    if match is None:
        raise SystemExit(f"{script} {side}: no figure in its output:\n{out}")
    return float(match.group(1))


def main() -> int:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    figures = {name: measure(name) for name in MEASURES}
    if "--record" in sys.argv:
        BUDGET.write_text(json.dumps({"python": version, **figures}, indent=2) + "\n")
        print(f"recorded for Python {version}: {figures}")
        return 0
    budget = json.loads(BUDGET.read_text())
    if budget["python"] != version:
        print(f"the budget is for Python {budget['python']}, not {version}: run it with that")
        return 2
    failed = False
    for name, value in figures.items():
        limit = budget[name] * (1 + TOLERANCE)
        change = value / budget[name] - 1
        verdict = "over budget" if value > limit else "ok"
        failed |= value > limit
        print(f"{name:18} {value:7.1f}  budget {budget[name]:7.1f}  {change:+6.1%}  {verdict}")
        if change < -TOLERANCE:
            print(f"{'':18} below budget: record it (python benchmarks/budget.py --record)")
    if failed:
        print(
            f"FAILED: the message path costs more than its budget (+{TOLERANCE:.0%}); if on "
            "purpose, record the new figures and say why in the commit message"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
