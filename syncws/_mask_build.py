"""cffi build script (out-of-line API mode) for the ``syncws._mask_cffi`` extension.

Used by ``setup.py`` through ``cffi_modules=["syncws/_mask_build.py:ffibuilder"]``. To build
the module into the source tree, use an editable install (``pip install -e .``) or
``python setup.py build_ext --inplace``. The C code lives in ``syncws/_mask.c``.
"""

from __future__ import annotations

import sys

import cffi  # type: ignore[import-untyped, unused-ignore]

# The C signature, shared by cdef() and the module source. cffi passes a bytes object to a
# pointer argument without copying; other buffers go through ffi.from_buffer().
_DECL = """
void syncws_mask(const unsigned char *src, unsigned char *dst, size_t n,
                 const unsigned char *mask, size_t offset);
"""

# Portable optimisation flags only: no -march=native, the wheel may run on another machine.
_EXTRA_COMPILE_ARGS = ["/O2"] if sys.platform == "win32" else ["-O3"]

ffibuilder = cffi.FFI()
ffibuilder.cdef(_DECL)
ffibuilder.set_source(
    "syncws._mask_cffi",
    "#include <stddef.h>\n" + _DECL,
    # Relative to the project root: setuptools runs build_ext from there and wants relative
    # source paths.
    sources=["syncws/_mask.c"],
    extra_compile_args=_EXTRA_COMPILE_ARGS,
)
