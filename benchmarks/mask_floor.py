"""What a masking call through cffi cannot go below: the cost of each piece, at 16 bytes.

Builds a throwaway cffi module of no-op C functions (API mode, like ``syncws._mask_cffi``)
in a temporary directory, then times, best of interleaved rounds: the calls themselves by
number and type of arguments, the same calls with the GIL kept (the generated wrapper
patched, for this measurement only: cffi always releases the GIL), the pieces that turn a
C result into a bytes object, the integer method's operations, and
``websockets.speedups.apply_mask`` when installed. Needs a C compiler.

Usage: ``python benchmarks/mask_floor.py [rounds, default 20]``
"""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
import timeit

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


def main() -> None:
    """Print the table."""
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
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
        print(f"ns per call, best of {rounds} rounds (timeit's own {loop:.0f} ns included)")
        for name, t in best.items():
            print(f"{t:6.0f}  {name}")


if __name__ == "__main__":
    main()
