"""Payload masking of RFC 6455 §5.3: XOR with a 4-byte key that repeats over the payload.

Every frame a client sends is masked and every frame a server receives must be unmasked, so
this is on the hot path of both sides. Two implementations exist:

* ``"cffi"``: the C routine of ``syncws/_mask.c``, compiled at install time into
  ``syncws._mask_cffi``. Even then, :func:`apply_mask` masks payloads of at most 125 bytes
  with Python integers, which is cheaper than the overhead of a cffi call at that size.
* ``"python"``: XOR of two Python integers over the whole payload (no per-byte loop), used
  when the C module could not be built, or when the environment variable
  ``SYNCWS_NO_SPEEDUPS`` is set to a non-empty value other than ``0`` when this module is
  first imported.

:data:`IMPLEMENTATION` tells which one is in use. Masking is its own inverse, so the same
functions unmask. ``offset`` is the number of payload bytes already processed, so that a
payload arriving in pieces can be unmasked piece by piece: byte ``i`` of ``data`` is XORed
with ``mask[(offset + i) % 4]``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["IMPLEMENTATION", "apply_mask", "apply_mask_inplace"]

#: Bytes-like payloads accepted by the functions of this module. Any other object with the
#: buffer protocol works too; a memoryview is taken as its raw bytes whatever its format.
_Data = bytes | bytearray | memoryview

_ffi: Any = None
_lib: Any = None
try:
    from syncws._mask_cffi import ffi as _cffi_ffi
    from syncws._mask_cffi import lib as _cffi_lib
except ImportError:  # pragma: no cover - not compiled (no compiler at install time)
    pass
else:
    _ffi, _lib = _cffi_ffi, _cffi_lib

_DISABLED = os.environ.get("SYNCWS_NO_SPEEDUPS", "") not in ("", "0")

_USE_C = _lib is not None and not _DISABLED

#: ``"cffi"`` when the compiled module is in use, else ``"python"``.
IMPLEMENTATION = "cffi" if _USE_C else "python"

# Largest payload that apply_mask() masks with Python integers even when the C routine is
# available: a cffi call has a fixed cost (allocating the output, the call, which releases
# the GIL, conversion to bytes) that the integer method only reaches at 120-130 bytes
# (measured with CPython 3.11 on x86-64; see benchmarks/mask_quick.py). 125 also covers
# every control frame. In place, the C routine is always the cheaper one.
_PY_MAX = 125 if _USE_C else 1 << 62

_from_bytes = int.from_bytes

if _lib is not None:  # pragma: no branch - depends on the build
    _c_mask = _lib.syncws_mask
    _from_buffer = _ffi.from_buffer
    _unpack = _ffi.unpack
    _CHAR_ARRAY = _ffi.typeof("char[]")
    # The output is entirely overwritten, so do not spend a memset on it.
    _new_uninitialized = _ffi.new_allocator(should_clear_after_alloc=False)

# Above _SCRATCH_MIN bytes, apply_mask() writes into a recycled scratch buffer before copying
# the result into a bytes object. A fresh scratch buffer per call means two large blocks
# alive at once, freed together, which glibc's malloc gives back to the OS each time (heap
# trimming): every call then pays page faults for both, measured 10-20x slower from 256 KiB
# up. At most _SCRATCH_SLOTS buffers of at most _SCRATCH_MAX bytes are kept (8 MiB at worst,
# and only once payloads that large were masked); larger payloads use a fresh buffer.
_SCRATCH_MIN = 1 << 17
_SCRATCH_MAX = 1 << 22
_SCRATCH_SLOTS = 2
_scratch: list[Any] = []  # list.pop()/append() are atomic: safe without a lock


def _check_mask(mask: object) -> bytes:
    """Return ``mask`` as a ``bytes`` object of length 4, or raise."""
    try:
        key = memoryview(mask).tobytes()  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"mask must be a bytes-like object, not {type(mask).__name__}") from None
    if len(key) != 4:
        raise ValueError(f"mask must be 4 bytes long, not {len(key)}")
    return key


def _byte_view(data: object) -> bytes | memoryview:
    """Return a 1-D unsigned-byte view of the buffer ``data`` (copying only if not contiguous)."""
    view = memoryview(data)  # type: ignore[arg-type]
    if not view.c_contiguous:
        return view.tobytes()
    if view.format == "B" and view.ndim == 1:
        return view
    return view.cast("B")


def _writable_byte_view(buf: object) -> memoryview:
    """Return a writable 1-D unsigned-byte view of the buffer ``buf``, or raise TypeError."""
    view = memoryview(buf)  # type: ignore[arg-type]
    if view.readonly:
        raise TypeError(f"cannot mask a read-only buffer in place: {type(buf).__name__}")
    if not view.c_contiguous:
        raise TypeError("cannot mask a non-contiguous buffer in place")
    if view.format == "B" and view.ndim == 1:
        return view
    return view.cast("B")


def _py_apply_mask(data: _Data, mask: bytes, offset: int = 0) -> bytes:
    """Mask ``data`` with Python integers (the fallback; see :func:`apply_mask`)."""
    cls = data.__class__
    if cls is not bytes and cls is not bytearray:
        data = _byte_view(data)
    if mask.__class__ is not bytes or len(mask) != 4:
        mask = _check_mask(mask)
    n = len(data)
    r = offset & 3
    key = (mask * ((n >> 2) + 2))[r : r + n]
    return (_from_bytes(data, "little") ^ _from_bytes(key, "little")).to_bytes(n, "little")


def _py_apply_mask_inplace(buf: bytearray | memoryview, mask: bytes, offset: int = 0) -> None:
    """Mask ``buf`` in place with Python integers (the fallback; see :func:`apply_mask`)."""
    if buf.__class__ is not bytearray:
        buf = _writable_byte_view(buf)
    buf[:] = _py_apply_mask(buf, mask, offset)


def _c_mask_large(data: bytes | bytearray | memoryview, n: int, mask: bytes, r: int) -> bytes:
    """Mask ``n`` > _SCRATCH_MIN bytes of ``data`` with C, through a recycled scratch buffer."""
    try:
        out = _scratch.pop()
    except IndexError:
        out = None
    if out is None or len(out) < n:
        if out is not None and n > _SCRATCH_MAX:
            _scratch.append(out)  # keep it for the next payload that fits
        out = _new_uninitialized(_CHAR_ARRAY, n)
    _c_mask(data if data.__class__ is bytes else _from_buffer(data), out, n, mask, r)
    result: bytes = _unpack(out, n)
    if len(out) <= _SCRATCH_MAX and len(_scratch) < _SCRATCH_SLOTS:
        _scratch.append(out)
    return result


def _c_apply_mask_impl(data: _Data, mask: bytes, offset: int = 0) -> bytes:
    """Mask ``data`` with the C routine, whatever its size (see :func:`apply_mask`)."""
    cls = data.__class__
    if cls is not bytes and cls is not bytearray:
        data = _byte_view(data)
    if mask.__class__ is not bytes or len(mask) != 4:
        mask = _check_mask(mask)
    n = len(data)
    if n > _SCRATCH_MIN:
        return _c_mask_large(data, n, mask, offset & 3)
    out = _new_uninitialized(_CHAR_ARRAY, n)
    _c_mask(data if data.__class__ is bytes else _from_buffer(data), out, n, mask, offset & 3)
    return _unpack(out, n)  # type: ignore[no-any-return]


def _c_apply_mask_inplace_impl(buf: bytearray | memoryview, mask: bytes, offset: int = 0) -> None:
    """Mask ``buf`` in place with the C routine (see :func:`apply_mask_inplace`)."""
    if mask.__class__ is not bytes or len(mask) != 4:
        mask = _check_mask(mask)
    if buf.__class__ is not bytearray:
        buf = _writable_byte_view(buf)
    ptr = _from_buffer(_CHAR_ARRAY, buf, True)
    _c_mask(ptr, ptr, len(ptr), mask, offset & 3)


#: The C implementations, or ``None`` when ``syncws._mask_cffi`` is not importable (they are
#: available even when ``SYNCWS_NO_SPEEDUPS`` disables them, so that tests can compare).
_c_apply_mask: Callable[[_Data, bytes, int], bytes] | None = None
_c_apply_mask_inplace: Callable[[bytearray | memoryview, bytes, int], None] | None = None
if _lib is not None:  # pragma: no branch - depends on the build
    _c_apply_mask = _c_apply_mask_impl
    _c_apply_mask_inplace = _c_apply_mask_inplace_impl


def apply_mask(data: _Data, mask: bytes, offset: int = 0) -> bytes:
    """Return ``data`` XORed with the repeating 4-byte ``mask``, as new ``bytes``.

    Args:
        data: The payload, or a piece of it; any contiguous buffer is accepted, and a
            memoryview is taken as its raw bytes. It is not modified.
        mask: The 4-byte masking key.
        offset: How many bytes of the payload come before ``data`` (only ``offset % 4``
            matters): byte ``i`` of ``data`` is XORed with ``mask[(offset + i) % 4]``.

    Returns:
        The masked (or, equivalently, unmasked) bytes; ``b""`` for an empty ``data``.

    Raises:
        ValueError: If ``mask`` is not 4 bytes long.
        TypeError: If ``data`` or ``mask`` is not a bytes-like object.
    """
    cls = data.__class__
    if cls is not bytes and cls is not bytearray:
        data = _byte_view(data)
    if mask.__class__ is not bytes or len(mask) != 4:
        mask = _check_mask(mask)
    n = len(data)
    if n <= _PY_MAX:
        r = offset & 3
        key = (mask * ((n >> 2) + 2))[r : r + n]
        return (_from_bytes(data, "little") ^ _from_bytes(key, "little")).to_bytes(n, "little")
    if n > _SCRATCH_MIN:
        return _c_mask_large(data, n, mask, offset & 3)
    out = _new_uninitialized(_CHAR_ARRAY, n)
    _c_mask(data if data.__class__ is bytes else _from_buffer(data), out, n, mask, offset & 3)
    return _unpack(out, n)  # type: ignore[no-any-return]


def apply_mask_inplace(buf: bytearray | memoryview, mask: bytes, offset: int = 0) -> None:
    """XOR the writable buffer ``buf`` with the repeating 4-byte ``mask``, in place.

    This saves the allocation and the copy of :func:`apply_mask`, which matters for large
    payloads that already sit in a buffer the caller owns.

    Args:
        buf: A writable contiguous buffer (a bytearray, or a writable memoryview, which is
            taken as its raw bytes whatever its format).
        mask: The 4-byte masking key.
        offset: How many bytes of the payload come before ``buf`` (only ``offset % 4``
            matters): byte ``i`` of ``buf`` is XORed with ``mask[(offset + i) % 4]``.

    Raises:
        ValueError: If ``mask`` is not 4 bytes long.
        TypeError: If ``buf`` is read-only (e.g. ``bytes``), not contiguous, or not a
            buffer, or if ``mask`` is not a bytes-like object.
    """
    if not _USE_C:
        _py_apply_mask_inplace(buf, mask, offset)
        return
    if mask.__class__ is not bytes or len(mask) != 4:
        mask = _check_mask(mask)
    if buf.__class__ is not bytearray:
        buf = _writable_byte_view(buf)
    ptr = _from_buffer(_CHAR_ARRAY, buf, True)
    _c_mask(ptr, ptr, len(ptr), mask, offset & 3)
