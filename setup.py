"""Build hook for the optional C extensions; all metadata lives in pyproject.toml.

* ``syncws._mask_cffi`` (cffi, ``syncws/_mask.c``): payload masking.
* ``syncws.runtime._send`` (the limited C API, ``syncws/runtime/_send.c``, POSIX only): a
  short, non-blocking ``send()`` made without releasing the GIL, which cffi cannot do.

A failure to compile either (no compiler, missing headers, ...) is not fatal: a warning is
printed, the package installs anyway and syncws falls back to pure Python (masking) or to
``socket.send()`` (writes).

Both use only the limited C API, so the wheel is tagged ``cp311-abi3-<platform>``: one wheel
for CPython 3.11 and every later version (see _wheel_options).
"""

from __future__ import annotations

import contextlib
import os
import sys
import sysconfig
from collections.abc import Iterator
from typing import Any

from setuptools import Extension, setup  # type: ignore[import-untyped, unused-ignore]
from setuptools.command.build_ext import (  # type: ignore[import-untyped, unused-ignore]
    build_ext,
)


def _warn(message: str) -> None:
    bar = "*" * 78
    sys.stderr.write(f"\n{bar}\nWARNING: {message}\n{bar}\n\n")


class OptionalBuildExt(build_ext):  # type: ignore[misc, unused-ignore]
    """build_ext that turns a failed extension build into a warning."""

    def initialize_options(self) -> None:
        """Set the defaults, including the (empty) set of failed extensions."""
        super().initialize_options()
        self.failed_extensions: set[str] = set()

    def run(self) -> None:
        """Build all extensions, tolerating failures (see build_extension)."""
        try:
            super().run()
        except Exception as exc:  # e.g. no compiler found at all
            _warn(f"building the C extensions failed ({exc!r}); using pure-Python fallbacks")
            self.failed_extensions.update(ext.name for ext in self._all_extensions())

    def build_extension(self, ext: Any) -> None:
        """Build one extension; on failure, warn and remember it instead of raising."""
        try:
            super().build_extension(ext)
        except Exception as exc:
            _warn(
                f"could not compile {ext.name} ({exc!r}); syncws will use its slower "
                "pure-Python fallback. Install a C compiler and Python headers to get it."
            )
            self.failed_extensions.add(ext.name)
            path = self.get_ext_fullpath(ext.name)  # no half-written module left behind
            if os.path.exists(path):
                os.remove(path)

    def copy_extensions_to_source(self) -> None:
        """Copy built modules into the source tree (inplace/editable), skipping failed ones."""
        with self._only_built():
            super().copy_extensions_to_source()

    def get_outputs(self) -> list[str]:
        """Report only the modules that were actually built."""
        with self._only_built():
            return list(super().get_outputs())

    def _all_extensions(self) -> list[Any]:
        return list(self.extensions or ())

    @contextlib.contextmanager
    def _only_built(self) -> Iterator[None]:
        """Hide the failed extensions from self.extensions for the duration."""
        extensions = self._all_extensions()
        self.extensions = [e for e in extensions if e.name not in self.failed_extensions]
        try:
            yield
        finally:
            self.extensions = extensions


_SEND = Extension(
    "syncws.runtime._send",
    ["syncws/runtime/_send.c"],
    py_limited_api=True,  # one build (abi3) for Python 3.11 and later
    extra_compile_args=["-O2"],
)


def _wheel_options() -> dict[str, dict[str, Any]]:
    """Tag the wheel abi3 wherever both extensions are built for the stable ABI.

    ``_send.c`` defines ``Py_LIMITED_API`` 3.11 and cffi defines ``Py_LIMITED_API`` in the
    module it generates (and names both ``*.abi3.so``), except in a debug build of Python.
    Free-threaded builds before 3.15 have no limited API (setuptools refuses the option
    there), and other interpreters have no abi3: those keep the interpreter's own tag. A
    wheel whose extensions failed to compile is pure Python with the same tag: it still
    installs on every CPython >= 3.11 of that platform and uses the fallbacks.
    """
    if (
        sys.implementation.name != "cpython"
        or hasattr(sys, "gettotalrefcount")  # a debug build: cffi drops the limited API
        or (sysconfig.get_config_var("Py_GIL_DISABLED") and sys.version_info < (3, 15))
    ):
        return {}
    return {"bdist_wheel": {"py_limited_api": "cp311"}}


setup(
    cffi_modules=["syncws/_mask_build.py:ffibuilder"],
    ext_modules=[_SEND] if os.name == "posix" else [],
    cmdclass={"build_ext": OptionalBuildExt},
    options=_wheel_options(),
)
