"""Run fuzz targets with the built-in driver: what CI runs.

Usage::

    python tests/fuzz/run.py --target all --runs 20000 [--seed 0] [--max-time SECONDS]

Each target runs over its whole seed corpus (``tests/fuzz/corpus/<target>/``), then over
``--runs`` mutated inputs (deterministic for a given ``--seed``; ``--runs`` is scaled by
each target's cost, see :data:`WEIGHTS`). On a finding, the input is written to
``crash-<sha1>`` in the current directory and the command exits with status 1; reproduce
it with ``python tests/fuzz/fuzz_<target>.py crash-<sha1>``. Runs without atheris.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

import fuzzing

TARGETS = (
    "request",
    "response",
    "proxy_response",
    "frames_server",
    "frames_client",
    "extensions",
)

#: Share of ``--runs`` each target gets: the frame targets feed every input four ways
#: (and the handshake with it), so they cost about 20 times as much per input as the
#: parsers; these weights give each target a similar share of the time.
WEIGHTS = {
    "request": 1.0,
    "response": 1.0,
    "proxy_response": 1.0,
    "frames_server": 0.25,
    "frames_client": 0.25,
    "extensions": 0.4,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--target", default="all", help=f"all, or one of {', '.join(TARGETS)}")
    parser.add_argument("--runs", type=int, default=20000, help="mutated inputs, before weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-time", type=float, default=None, help="seconds per target")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per input")
    args = parser.parse_args(argv)
    names = TARGETS if args.target == "all" else tuple(args.target.split(","))
    for name in names:
        if name not in TARGETS:
            parser.error(f"unknown target {name!r}")
    start = time.perf_counter()
    for name in names:
        target: fuzzing.Target = importlib.import_module(f"fuzz_{name}").TARGET
        runs = int(args.runs * WEIGHTS[name])
        options = [f"-runs={runs}", f"-seed={args.seed}", f"-timeout={args.timeout}"]
        if args.max_time is not None:
            options.append(f"-max_total_time={args.max_time}")
        try:
            fuzzing.run_builtin(target, options)
        except Exception:
            return 1
    print(f"all done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
