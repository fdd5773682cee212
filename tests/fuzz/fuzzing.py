"""The shared driver of the fuzz targets: atheris when it is installed, else a built-in one.

Each target module (``fuzz_*.py`` next to this file) defines ``TARGET``, a :class:`Target`
whose ``one_input(data)`` runs the target's oracles on one input and raises on a finding,
and ends with ``fuzzing.main(TARGET)``. Run as a script, a target then works like a
libFuzzer binary::

    python tests/fuzz/fuzz_request.py /tmp/new tests/fuzz/corpus/request -atheris_runs=100000
    python tests/fuzz/fuzz_request.py crash-0123abcd   # run one input (a reproducer) once

With atheris, the arguments go to libFuzzer (which writes new inputs to the *first* corpus
directory: give it a scratch one, not the committed seed corpus). Without atheris, or with
``--builtin``, the built-in driver runs instead: a deterministic mutation fuzzer (bit flips,
interesting bytes, inserts, deletes, duplications, splices and the target's dictionary
over the corpus) without coverage feedback; it keeps a mutated input in its pool when it
gives an outcome not seen before (the target's ``one_input`` returns a short signature of
what happened). It understands ``-runs=N`` / ``-atheris_runs=N``, ``-seed=N``,
``-max_total_time=S`` and ``-timeout=S``, never writes to the corpus directories, and on a
finding writes the input to ``crash-<sha1>`` (in ``-artifact_prefix``, else the current
directory) and exits with status 1.

``run.py`` runs every target with the built-in driver (what CI does).

This module imports nothing from syncws, so that atheris can instrument syncws on import
(see :func:`main`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

__all__ = [
    "CORPUS_ROOT",
    "Finding",
    "Target",
    "chunk_plans",
    "fuzz",
    "instrumented",
    "load_corpus",
    "main",
    "mutate",
]

#: Where the seed corpus of each target lives: ``corpus/<target name>/``.
CORPUS_ROOT = Path(__file__).resolve().parent / "corpus"

#: Inputs longer than this are cut by the built-in mutator (libFuzzer's -max_len is separate).
MAX_LEN = 4096

# Bytes that change a parser's path when they appear: frame first bytes (FIN + opcode),
# lengths at the 7-bit / 16-bit boundaries, HTTP separators.
_INTERESTING = (
    b"\x00\x01\x7d\x7e\x7f\x80\x81\x82\x88\x89\x8a\xc1\xfe\xff"
    b"\x09\x0a\x0d\x20\x22\x2c\x3a\x3b\x3d\x5c\xe9\xed\xf4"
)


class Finding(AssertionError):
    """An oracle failed: the input shows a bug (or a wrong oracle)."""


class Hang(Exception):
    """An input took longer than the time limit."""


@dataclass(frozen=True)
class Target:
    """One fuzz target.

    Attributes:
        name: The target's name, also the name of its corpus directory.
        one_input: Runs the oracles on one input; raises :class:`Finding` (or any other
            exception, which is a finding too) on a bug; returns a short signature of the
            outcome, which the built-in driver uses as a poor man's coverage signal.
        dictionary: Tokens the built-in mutator inserts (like libFuzzer's -dict).
    """

    name: str
    one_input: Callable[[bytes], str]
    dictionary: Sequence[bytes] = field(default=())

    @property
    def corpus_dir(self) -> Path:
        return CORPUS_ROOT / self.name


def load_corpus(directory: Path) -> list[bytes]:
    """Return the contents of every file in ``directory``, sorted by file name."""
    return [path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file()]


def chunk_plans(data: bytes, size: int) -> dict[str, list[int]]:
    """Ways to cut a stream of ``size`` bytes into reads, as lists of chunk lengths.

    ``whole`` is one read, ``bytes`` one byte per read, ``chunks`` random lengths from a
    generator seeded by ``data`` (so that one input always gives the same cuts, under
    atheris too), mostly small, sometimes long.
    """
    rng = random.Random(zlib.crc32(data))
    cuts: list[int] = []
    left = size
    while left > 0:
        n = rng.choice((1, 2, 3, 5, 8, 13, rng.randint(1, 64), rng.randint(1, 1024)))
        n = min(n, left)
        cuts.append(n)
        left -= n
    return {"whole": [size] if size else [], "bytes": [1] * size, "chunks": cuts}


def split(stream: bytes, lengths: Sequence[int]) -> list[bytes]:
    """Cut ``stream`` into pieces of the given lengths."""
    pieces = []
    pos = 0
    for n in lengths:
        pieces.append(stream[pos : pos + n])
        pos += n
    assert pos == len(stream)
    return pieces


def mutate(
    data: bytes, rng: random.Random, pool: Sequence[bytes], dictionary: Sequence[bytes]
) -> bytes:
    """Return a mutation of ``data``: one to four edits, as libFuzzer's default mutators do."""
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 4))):
        op = rng.randrange(11)
        n = len(buf)
        if op == 0 and n:  # flip a bit
            buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # an interesting byte
            buf[rng.randrange(n)] = rng.choice(_INTERESTING)
        elif op == 2 and n:  # add or subtract a little
            i = rng.randrange(n)
            buf[i] = (buf[i] + rng.choice((-2, -1, 1, 2))) & 0xFF
        elif op == 3:  # insert random bytes
            i = rng.randint(0, n)
            buf[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 4 and dictionary:  # insert or overwrite with a dictionary token
            token = rng.choice(dictionary)
            i = rng.randint(0, n)
            if rng.random() < 0.5:
                buf[i:i] = token
            else:
                buf[i : i + len(token)] = token
        elif op == 5 and n:  # delete a range
            i = rng.randrange(n)
            del buf[i : i + rng.randint(1, max(1, min(64, n - i)))]
        elif op == 6 and n:  # duplicate a range somewhere else
            i = rng.randrange(n)
            piece = buf[i : i + rng.randint(1, 64)]
            j = rng.randint(0, n)
            buf[j:j] = piece
        elif op == 7 and pool:  # splice with another input
            other = rng.choice(pool)
            i = rng.randint(0, n)
            j = rng.randint(0, len(other))
            buf = buf[:i] + other[j:]
        elif op == 8 and n:  # truncate
            del buf[rng.randint(0, n) :]
        elif op == 9 and n:  # overwrite a range with one byte
            i = rng.randrange(n)
            value = rng.choice(_INTERESTING)
            buf[i : i + rng.randint(1, 16)] = bytes([value]) * min(16, n - i)
        elif op == 10 and n >= 2:  # swap two bytes
            i, j = rng.randrange(n), rng.randrange(n)
            buf[i], buf[j] = buf[j], buf[i]
    return bytes(buf[:MAX_LEN])


@dataclass
class Stats:
    """What a run of the built-in driver did."""

    runs: int = 0
    outcomes: set[str] = field(default_factory=set)
    seconds: float = 0.0
    slowest: float = 0.0


def fuzz(
    target: Target,
    corpus: Sequence[bytes],
    runs: int,
    *,
    seed: int = 0,
    max_total_time: float | None = None,
    on_input: Callable[[bytes], None] | None = None,
) -> Stats:
    """Run ``target`` over ``corpus``, then over ``runs`` mutated inputs (built-in driver).

    Raises whatever the target raises, with the input in ``exc.fuzz_input``.
    """
    rng = random.Random(seed)
    pool = list(corpus) or [b""]
    stats = Stats()
    start = time.perf_counter()

    def one(data: bytes) -> str:
        if on_input is not None:
            on_input(data)
        t0 = time.perf_counter()
        try:
            signature = target.one_input(data)
        except BaseException as exc:
            exc.fuzz_input = data  # type: ignore[attr-defined]
            raise
        elapsed = time.perf_counter() - t0
        stats.slowest = max(stats.slowest, elapsed)
        stats.runs += 1
        return signature

    for data in corpus:
        stats.outcomes.add(one(data))
    for _ in range(runs):
        if max_total_time is not None and time.perf_counter() - start > max_total_time:
            break
        data = mutate(rng.choice(pool), rng, pool, target.dictionary)
        signature = one(data)
        if signature not in stats.outcomes:
            stats.outcomes.add(signature)
            pool.append(data)
    stats.seconds = time.perf_counter() - start
    return stats


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[Callable[[], None]]:
    """Raise :class:`Hang` in the main thread once ``seconds`` pass without a call of the
    function this yields (which restarts the clock: call it before each input)."""

    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"an input ran longer than {seconds} s")

    def restart() -> None:
        signal.setitimer(signal.ITIMER_REAL, seconds)

    previous = signal.signal(signal.SIGALRM, alarm)
    restart()
    try:
        yield restart
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _options(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Split libFuzzer-style ``-name=value`` options from positional arguments."""
    options: dict[str, str] = {}
    paths: list[str] = []
    for arg in argv:
        if arg.startswith("-") and "=" in arg:
            name, _, value = arg.lstrip("-").partition("=")
            options[name] = value
        elif not arg.startswith("-"):
            paths.append(arg)
    return options, paths


def save_crash(data: bytes, prefix: str = "") -> Path:
    """Write a finding's input as ``<prefix>crash-<sha1>``, like libFuzzer."""
    path = Path(f"{prefix}crash-{hashlib.sha1(data).hexdigest()}")
    path.write_bytes(data)
    return path


def run_builtin(target: Target, argv: Sequence[str]) -> int:
    """The command line of the built-in driver; returns the exit status."""
    options, paths = _options(argv)
    files = [Path(p) for p in paths if Path(p).is_file()]
    dirs = [Path(p) for p in paths if Path(p).is_dir()]
    timeout = float(options.get("timeout", "10"))
    if files:  # libFuzzer's convention: files are inputs to run once each
        for path in files:
            with time_limit(timeout):
                signature = target.one_input(path.read_bytes())
            print(f"{path}: ok ({signature})")
        return 0
    corpus = [data for d in dirs or [target.corpus_dir] for data in load_corpus(d)]
    runs = int(options.get("runs", options.get("atheris_runs", "10000")))
    max_time = options.get("max_total_time")
    try:
        with time_limit(timeout) as restart:
            stats = fuzz(
                target,
                corpus,
                runs,
                seed=int(options.get("seed", "0")),
                max_total_time=None if max_time is None else float(max_time),
                on_input=lambda data: restart(),
            )
    except Exception as exc:
        data: bytes = getattr(exc, "fuzz_input", b"")
        path = save_crash(data, options.get("artifact_prefix", ""))
        print(f"== {target.name}: FINDING {type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"== input written to {path}; reproduce with:", file=sys.stderr)
        script = Path(__file__).parent / f"fuzz_{target.name}.py"
        print(f"   python {script} {path}", file=sys.stderr)
        raise
    print(
        f"{target.name}: {stats.runs} inputs in {stats.seconds:.1f} s, "
        f"{len(stats.outcomes)} distinct outcomes, slowest {stats.slowest * 1000:.0f} ms"
    )
    return 0


def _atheris() -> object | None:
    """The atheris module when this process runs a target under it, else ``None``: a
    target run as a script (``fuzz_*.py``), atheris installed, no ``--builtin``."""
    if not Path(sys.argv[0]).name.startswith("fuzz_"):
        return None  # imported by run.py or by the tests
    if "--builtin" in sys.argv or os.environ.get("SYNCWS_FUZZ_BUILTIN") == "1":
        return None
    try:
        import atheris  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        return None
    return atheris  # type: ignore[no-any-return, unused-ignore]


def instrumented() -> contextlib.AbstractContextManager[object]:
    """The context in which a target imports syncws: atheris instruments syncws' modules
    for coverage feedback when it will run the target, else it changes nothing."""
    atheris = _atheris()
    if atheris is None:
        return contextlib.nullcontext()
    instrument: Callable[..., contextlib.AbstractContextManager[object]]
    instrument = atheris.instrument_imports  # type: ignore[attr-defined]
    return instrument(include=["syncws"])


def main(target: Target) -> None:
    """Run ``target`` as a script: under atheris if it is installed (and no ``--builtin``),
    else with the built-in driver."""
    atheris = _atheris()
    if atheris is None:
        sys.exit(run_builtin(target, [a for a in sys.argv[1:] if a != "--builtin"]))

    def one_input(data: bytes) -> None:
        target.one_input(data)

    atheris.Setup(sys.argv, one_input)  # type: ignore[attr-defined]
    atheris.Fuzz()  # type: ignore[attr-defined]
