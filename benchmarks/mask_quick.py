"""Quick timing of payload masking: ns per call and GB/s, by payload size.

Columns: the public ``apply_mask`` (whatever it dispatches to), the C routine through cffi
(``_c_apply_mask``), the pure-Python integer method (``_py_apply_mask``), the C routine in
place (``apply_mask_inplace`` on a bytearray) and, as a yardstick, a plain memory copy
``bytes(bytearray)``. Each figure is the best of several interleaved rounds.

From about 256 KiB up, the figures depend on the state of the C allocator (glibc returns
freed memory to the OS and page faults follow), so they vary from run to run, and a fresh
process that masks only one size can see other numbers.

Usage: ``python benchmarks/mask_quick.py [seconds per size, default 2]``
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from functools import partial

from syncws.protocol import mask as m

SIZES = [16, 64, 125, 256, 1024, 4096, 65536, 1 << 20, 16 << 20]


def _label(n: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"


def _best_ns(funcs: dict[str, Callable[[], object]], seconds: float) -> dict[str, float]:
    """Best time per call of each function, in ns, over interleaved rounds."""
    loops = {}
    for name, f in funcs.items():
        k = 1
        while True:  # about 2 ms per round
            t0 = time.perf_counter_ns()
            for _ in range(k):
                f()
            if time.perf_counter_ns() - t0 > 2_000_000 or k >= 1 << 20:
                break
            k *= 2
        loops[name] = k
    best = dict.fromkeys(funcs, float("inf"))
    deadline = time.monotonic() + seconds
    rounds = 0
    while rounds < 3 or time.monotonic() < deadline:
        rounds += 1
        for name, f in funcs.items():
            k = loops[name]
            t0 = time.perf_counter_ns()
            for _ in range(k):
                f()
            best[name] = min(best[name], (time.perf_counter_ns() - t0) / k)
    return best


def main() -> None:
    """Print the table."""
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    print(
        f"IMPLEMENTATION={m.IMPLEMENTATION}  (public apply_mask uses Python ints up to "
        f"{m._PY_MAX if m.IMPLEMENTATION == 'cffi' else 'any'} bytes)"
    )
    mask = os.urandom(4)
    c_mask = m._c_apply_mask
    c_inplace = m._c_apply_mask_inplace
    header = ["size", "apply_mask", "cffi", "python", "cffi inplace", "memcpy"]
    print(" | ".join(f"{h:>20}" if i else f"{h:>7}" for i, h in enumerate(header)))
    for n in SIZES:
        data = os.urandom(n)
        buf = bytearray(data)
        funcs: dict[str, Callable[[], object]] = {
            "apply_mask": partial(m.apply_mask, data, mask),
            "python": partial(m._py_apply_mask, data, mask),
            "memcpy": partial(bytes, buf),
        }
        if c_mask is not None and c_inplace is not None:
            funcs["cffi"] = partial(c_mask, data, mask, 0)
            funcs["cffi inplace"] = partial(c_inplace, buf, mask, 0)
        best = _best_ns(funcs, seconds * (0.5 if n >= 1 << 20 else 1.0))
        cells = [f"{_label(n):>7}"]
        for name in header[1:]:
            ns = best.get(name)
            cells.append(f"{'n/a':>20}" if ns is None else f"{ns:>9.0f} ns {n / ns:>5.2f} GB/s")
        print(" | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
