"""What a masking call through cffi cannot go below: the cost of each piece.

Builds a throwaway cffi module of no-op C functions (API mode, like ``syncws._mask_cffi``)
in a temporary directory, then times, best of interleaved rounds:

* at 16 bytes: the calls themselves by number and type of arguments, the same calls with
  the GIL kept (the generated wrapper patched, for this measurement only: cffi always
  releases the GIL), the pieces that turn a C result into a bytes object, the integer
  method's operations, and ``websockets.speedups.apply_mask`` when installed;
* at 64 KiB (and the size given as second argument), medians of best-of-3 rounds: the C
  loop of ``syncws._mask_cffi`` alone (a call into a ready buffer, minus the same call to a
  no-op), out of place and in place; the fixed cost of
  ``apply_mask`` (the same call with the C routine replaced by the no-op: the one-pass path,
  ``BufferedReader``, ``readinto()``, ``ffi.from_buffer()``, the cffi call, the allocation of
  the result); ``apply_mask`` itself and websockets. The result says how small the fixed
  cost would have to be for ``apply_mask`` to match websockets.

Needs a C compiler, and ``syncws._mask_cffi`` for the second part.

Usage: ``python benchmarks/mask_floor.py [rounds, default 20] [size, default 65536]``

Measured on an AMD EPYC (Zen 4, 2 vCPUs of a shared VM), CPython 3.11.7, at 64 KiB:
websockets takes 1,260 ns; syncws' SSE2 loop alone takes 1,140-1,205 ns out of place (from
64 KiB, out of place, the loop is bound by memory traffic, not by instructions: a portable
loop and an AVX2 one, tried, took as long, and so does websockets' SSE2 loop in a C
benchmark). So apply_mask could match websockets only with a fixed cost of 70-120 ns, less
than a bare cffi call with five arguments (160-200 ns): at 64 KiB, parity is out of reach
through cffi, whatever the loop. apply_mask's fixed cost
is 1,170-1,210 ns there (the one-pass path: it costs less than the copy it saves from
32 KiB up). At 1 MiB: loop 21.7-21.9 µs, websockets 22.05 µs, the same fixed cost, so
apply_mask takes 1.08-1.09 times as long.
"""

from __future__ import annotations

import gc
import os
import re
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import timeit
from collections.abc import Callable

import cffi  # type: ignore[import-untyped, unused-ignore]

_ARGS5 = "const unsigned char *s, unsigned char *d, size_t n, const unsigned char *m, size_t o"
_FUNCS = {
    "noop0": "void",
    "noop0_gil": "void",
    "noop1": "const unsigned char *s",
    "noop2": "const unsigned char *s, size_t n",
    "noop5": _ARGS5,
    "noop5_gil": _ARGS5,
}


def build(tmp: str) -> object:
    """Compile the module in ``tmp`` and return it."""
    ffi = cffi.FFI()
    ffi.cdef("".join(f"void {name}({args});\n" for name, args in _FUNCS.items()))
    ffi.set_source("_mask_floor", "".join(f"void {n}({a}) {{}}\n" for n, a in _FUNCS.items()))
    c_file = os.path.join(tmp, "_mask_floor.c")
    ffi.emit_c_code(c_file)
    with open(c_file) as f:
        code = f.read()
    # Keep the GIL in the *_gil wrappers: the only change is dropping the release.
    code = re.sub(
        r"_cffi_f_noop\d_gil\(PyObject \*self.*?\n}\n",
        lambda m: re.sub(r"Py_(BEGIN|END)_ALLOW_THREADS", "", m.group(0)),
        code,
        flags=re.S,
    )
    with open(c_file, "w") as f:
        f.write(code)
    so = os.path.join(tmp, "_mask_floor" + sysconfig.get_config_var("EXT_SUFFIX"))
    include = sysconfig.get_paths()["include"]
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", f"-I{include}", c_file, "-o", so], check=True)
    sys.path.insert(0, tmp)
    import _mask_floor  # type: ignore[import-not-found]

    return _mask_floor


def _median_ns(
    stmts: dict[str, Callable[[], object]],
    rounds: int,
    number: int,
    patches: dict[str, Callable[[bool], None]] | None = None,
) -> dict[str, float]:
    """Median over interleaved rounds of each callable's best-of-3 time per call, in ns.

    ``patches[name](True)`` is called before timing ``name``, ``patches[name](False)`` after.
    """
    patches = patches or {}
    times: dict[str, list[float]] = {name: [] for name in stmts}
    for _ in range(rounds):
        for name, f in stmts.items():
            patch = patches.get(name)
            if patch:
                patch(True)
            try:
                times[name].append(min(timeit.repeat(f, number=number, repeat=3)) / number * 1e9)
            finally:
                if patch:
                    patch(False)
    return {name: statistics.median(t) for name, t in times.items()}


def large(noop5: Callable[..., None], rounds: int, n: int) -> None:
    """Print the pieces of a masking call at ``n`` bytes: the C loop against the fixed cost."""
    try:
        from syncws.protocol import mask as m
    except ImportError:  # run from elsewhere than the project root
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from syncws.protocol import mask as m
    if m._lib is None or not m._USE_C:
        print(f"\nThe C routine is not in use: no figures at {n} bytes")
        return
    ffi, c_mask = m._ffi, m._lib.syncws_mask
    data, key = os.urandom(n), os.urandom(4)
    out = ffi.from_buffer(bytearray(n), require_writable=True)
    number = max(20, 2_000_000 // max(n, 1))

    def noop_c(on: bool) -> None:
        m._c_mask = noop5 if on else c_mask

    def call_noop() -> None:
        noop5(data, out, n, key, 0)

    print(f"\nAt {n} bytes, ns per call, median of {rounds} rounds of best-of-3:")
    t = _median_ns({"in": lambda: c_mask(out, out, n, key, 0), "noop": call_noop}, rounds, number)
    print(f"{t['in'] - t['noop']:8.0f}  the C loop alone, in place")
    stmts: dict[str, Callable[[], object]] = {
        "noop": call_noop,
        "loop": lambda: c_mask(data, out, n, key, 0),
        "fixed": lambda: m.apply_mask(data, key),  # with the no-op, see patches
        "apply": lambda: m.apply_mask(data, key),
    }
    try:
        from websockets.speedups import apply_mask as ws_mask
    except ImportError:
        pass
    else:
        stmts["ws"] = lambda: ws_mask(data, key)
    t = _median_ns(stmts, rounds, number, {"fixed": noop_c})
    loop = t["loop"] - t["noop"]
    print(f"{t['noop']:8.0f}  a cffi call with five arguments, to a no-op")
    print(f"{loop:8.0f}  the C loop alone, out of place, into a ready buffer")
    print(f"{t['fixed']:8.0f}  apply_mask's fixed cost: apply_mask with the C routine a no-op")
    print(f"{t['apply']:8.0f}  apply_mask")
    if "ws" in t:
        print(f"{t['ws']:8.0f}  websockets.speedups.apply_mask")
        print(
            f"{t['ws'] - loop:8.0f}  the most that apply_mask's fixed cost could be, with this "
            f"loop, to match websockets (apply_mask / websockets now: {t['apply'] / t['ws']:.2f})"
        )


def main() -> None:
    """Print the tables."""
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 65536
    with tempfile.TemporaryDirectory() as tmp:
        mod = build(tmp)
        ffi, lib = mod.ffi, mod.lib  # type: ignore[attr-defined]
        data, key, buf = os.urandom(16), os.urandom(4), bytearray(16)
        out = ffi.from_buffer(buf)

        def python_function(data: bytes, mask: bytes, offset: int = 0) -> bytes:
            return data

        ns = dict(
            data=data, key=key, buf=buf, out=out, f=python_function,
            **{name: getattr(lib, name) for name in _FUNCS},  # bound, as syncws binds its own
            from_buffer=ffi.from_buffer, unpack=ffi.unpack, from_bytes=int.from_bytes,
            K=int.from_bytes(key * 4, "little"), isenabled=gc.isenabled,
            alloc=ffi.new_allocator(should_clear_after_alloc=False), CHAR=ffi.typeof("char[]"),
        )  # fmt: skip
        stmts = {
            "a bare C builtin call (gc.isenabled())": "isenabled()",
            "a Python function call f(data, mask)": "f(data, key)",
            "cffi f()": "noop0()",
            "cffi f(), GIL kept": "noop0_gil()",
            "cffi f(bytes)": "noop1(data)",
            "cffi f(bytes, int)": "noop2(data, 16)",
            "cffi f(bytes, cdata, int, bytes, int)": "noop5(data, out, 16, key, 0)",
            "  the same, GIL kept": "noop5_gil(data, out, 16, key, 0)",
            "ffi.new_allocator(no memset)(char[], 16)": "alloc(CHAR, 16)",
            "ffi.from_buffer(char[], bytearray, True)": "from_buffer(CHAR, buf, True)",
            "ffi.unpack(cdata, 16) -> bytes": "unpack(out, 16)",
            "bytes(bytearray(16)) (a memcpy)": "bytes(buf)",
            "(from_bytes(data) ^ K).to_bytes(16) (K given)": (
                "(from_bytes(data, 'little') ^ K).to_bytes(16, 'little')"
            ),
        }
        try:
            from websockets.speedups import apply_mask
        except ImportError:
            pass
        else:
            ns["ws"] = apply_mask
            stmts["websockets.speedups.apply_mask(data, mask)"] = "ws(data, key)"
        best = dict.fromkeys(stmts, float("inf"))
        number = 100_000
        for _ in range(rounds):
            for name, stmt in stmts.items():
                t = timeit.timeit(stmt, globals=ns, number=number) / number * 1e9
                best[name] = min(best[name], t)
        loop = min(timeit.repeat("pass", number=number, repeat=rounds)) / number * 1e9
        print(
            f"At 16 bytes, ns per call, best of {rounds} rounds "
            f"(timeit's own {loop:.0f} ns included)"
        )
        for name, t in best.items():
            print(f"{t:6.0f}  {name}")
        large(lib.noop5, rounds, size)


if __name__ == "__main__":
    main()
