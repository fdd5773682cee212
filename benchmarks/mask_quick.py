"""Quick timing of payload masking: ns per call and GB/s, by payload size.

Columns: the public ``apply_mask`` (whatever it dispatches to), the C routine through cffi
at every size (``_c_apply_mask``), the pure-Python integer method (``_py_apply_mask``), the
C routine in place (``apply_mask_inplace`` on a bytearray), ``websockets.speedups`` when
websockets is installed (C-API code that writes straight into a new bytes object) and, as a
yardstick, a plain memory copy ``bytes(bytearray)``; "ratio" is apply_mask / websockets.
Each figure is the best of several interleaved rounds.

Usage: ``python benchmarks/mask_quick.py [seconds per size, default 2]``

Before and after issue 7 (apply_mask writing into its result from 32 KiB up), CPython
3.11.7, AMD EPYC with 2 cores (a shared VM), ns per call, best of interleaved rounds of the
previous and the current apply_mask with this script's timing loop; 16 MiB from fresh
processes that mask only that size (``python benchmarks/mask_quick.py 3`` gives 0.86-1.2
for that row, see below)::

    size        before       after  websockets      memcpy  before/ws  after/ws
    16 B           367         358          69          76       5.3       5.2
    125 B          556         537          69          70       8.1       7.8
    1 KiB          680         560          97          86       7.0       5.8
    64 KiB       3,455       2,526       1,255       2,042       2.8       2.0
    1 MiB       44,725      23,401      21,858      22,297       2.0       1.07
    16 MiB  15,846,000     632,000     652,000     635,000      24         0.97

At 16 bytes, nothing through cffi comes near websockets' 70 ns: a bare Python function
call costs 30-50 ns, a cffi call with syncws_mask's five arguments about 160 ns (65 ns with
one argument; about 30 ns of each is the GIL's release and retake), and turning C memory
into a bytes object another 77 ns (``ffi.unpack``), see ``benchmarks/mask_floor.py``. The
integer method (from_bytes, XOR, to_bytes) needs 100-110 ns even with the key ready.

From 32 KiB up, the C routine writes straight into the bytes object that apply_mask
returns, in one pass, but reaching it costs about 1.1 µs more per call than websockets
(``io.BufferedReader``, a Python ``readinto``, ``ffi.from_buffer``): twice websockets'
time at 64 KiB, where even a bare cffi call into a ready buffer takes 1.05-1.1 times as
long, 1.0-1.09 times at 1 MiB depending on the run, the same time at 16 MiB.

From about 256 KiB up, the figures depend on the state of the C allocator (glibc returns
freed memory to the OS and page faults follow), so they vary from run to run, and a fresh
process that masks only one size can see other numbers: the 16 MiB row above comes from
such processes (before: 8,160 page faults per call, for its two 16 MiB blocks; after and
websockets: none).
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
    try:
        from websockets.speedups import apply_mask as ws_mask
    except ImportError:
        ws_mask = None
    header = ["size", "apply_mask", "cffi", "python", "cffi inplace", "websockets", "memcpy"]
    print(" | ".join(f"{h:>23}" if i else f"{h:>7}" for i, h in enumerate(header)) + " | ratio")
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
        if ws_mask is not None:
            funcs["websockets"] = partial(ws_mask, data, mask)
        best = _best_ns(funcs, seconds * (0.5 if n >= 1 << 20 else 1.0))
        cells = [f"{_label(n):>7}"]
        for name in header[1:]:
            ns = best.get(name)
            cells.append(f"{'n/a':>23}" if ns is None else f"{ns:>9.0f} ns {n / ns:>5.2f} GB/s")
        ws_ns = best.get("websockets")
        cells.append("n/a" if ws_ns is None else f"{best['apply_mask'] / ws_ns:5.2f}")
        print(" | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
