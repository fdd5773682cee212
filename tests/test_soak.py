"""The soak harness (tests/soak/run.py), run for a few seconds: it passes on syncws as it
is, and each of its checks fails when a fault is injected on purpose.

Both runs go at once (each is a harness process and a server process), to keep this file
within about 15 seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from timing import TIMEOUT

RUN = Path(__file__).resolve().parent / "soak" / "run.py"

#: Short timeouts everywhere, so that a few seconds see pings, ping timeouts, dropped
#: handshakes, closing handshakes and idle pool threads exit.
FAST = [
    "--ping-interval=0.5",
    "--ping-timeout=1",
    "--open-timeout=1",
    "--pool-idle-timeout=0.5",
]

#: Generous bounds where only a bug (or a starved machine) would reach them: the test
#: suite may share two cores with other runs.
CLEAN = [
    "--duration=3",
    "--clients=12",
    "--close-timeout=3",
    f"--recv-timeout={4 * TIMEOUT:g}",
    f"--settle={3 + TIMEOUT:g}",  # the close timeout above, then TIMEOUT to settle
    *FAST,
]

#: Every fault the harness can inject: all its checks must fail at once.
FAULTY = [
    "--duration=2",
    "--clients=4",
    "--no-misbehaving",
    "--close-timeout=1",
    "--recv-timeout=1",
    "--settle=1.5",
    "--rss-limit=1",
    "--fault=reorder,drop,corrupt,leak,error,fd,thread,client-leak",
    *FAST,
]

#: Seconds either run may take, at most.
BOUND = 12 * TIMEOUT


class Outcome:
    """How a harness run ended: its exit status, its summary and its numbers."""

    def __init__(self, code: int, output: str, numbers: dict[str, Any]) -> None:
        self.code = code
        self.output = output
        self.numbers = numbers

    def failed(self, words: str) -> bool:
        """Whether a failed check's description starts with ``words``."""
        return any(check.startswith(words) for check in self.numbers["failed"])


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    """Run the clean and the faulty soak side by side; their outcomes by name."""
    tmp = tmp_path_factory.mktemp("soak")
    runs = {}
    for name, options in (("clean", CLEAN), ("faulty", FAULTY)):
        path = tmp / f"{name}.json"
        proc = subprocess.Popen(
            [sys.executable, str(RUN), f"--json={path}", "--seed=21", *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        runs[name] = proc, path
    results = {}
    try:
        for name, (proc, path) in runs.items():
            output, _ = proc.communicate(timeout=BOUND)
            numbers = json.loads(path.read_text()) if path.exists() else {}
            results[name] = Outcome(proc.returncode, output, numbers)
        yield results
    finally:
        for proc, _ in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(2 * TIMEOUT)


def test_soak_passes_on_a_short_run(outcomes: dict[str, Outcome]) -> None:
    """A few seconds of the whole mix, every kind of client, pass every check."""
    clean = outcomes["clean"]
    assert clean.code == 0, clean.output
    totals = clean.numbers["totals"]
    assert totals["echo.echoes"] > 100, clean.output
    for kind in ("rst", "midfrag", "noread", "nopong", "trickle"):
        assert totals[f"{kind}.connections"] > 0, clean.output


def test_soak_detects_every_injected_fault(outcomes: dict[str, Outcome]) -> None:
    """Echoes reordered, dropped and corrupted, connections leaked on both sides, an
    ERROR record, leaked fds and threads, and an RSS bound too low each fail a check."""
    faulty = outcomes["faulty"]
    assert faulty.code == 1, faulty.output
    numbers = faulty.numbers
    for failure in ("lost", "reordered", "corrupted"):
        assert numbers["failures"].get(f"echo: {failure}", 0) > 0, faulty.output
    assert numbers["server_live"] > 0
    assert numbers["client_live"] > 0
    assert numbers["server_log"].get("ERROR", 0) > 0
    for check in (
        "well-behaved echoes",
        "server threads",
        "server file descriptors",
        "server live connections",
        "client live connections",
        "no ERROR log record",
        "server RSS",
    ):
        assert faulty.failed(check), (check, faulty.output)
    assert not faulty.failed("server exited cleanly"), faulty.output
