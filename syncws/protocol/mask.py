"""Payload masking of RFC 6455 §5.3: XOR with a 4-byte key that repeats over the payload.

Every frame a client sends is masked and every frame a server receives must be unmasked, so
this is on the hot path of both sides. Two implementations exist:

* ``"cffi"``: the C routine of ``syncws/_mask.c``, compiled at install time into
  ``syncws._mask_cffi``. Even then, :func:`apply_mask` masks payloads of at most 125 bytes
  with Python integers, which is cheaper than the overhead of a cffi call at that size.
  From 32 KiB up, the C routine writes straight into the bytes object that
  :func:`apply_mask` returns (one pass over the payload); in between, it writes into a
  reused buffer that is then copied into a new bytes object.
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

import io
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

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
# available. A cffi call has a fixed cost that the integer method reaches at 90-125 bytes:
# the call itself (about 160 ns with five arguments, of which about 30 ns release and take
# back the GIL, 65 ns with one), an output buffer (40 ns reused, 130 ns new) and its copy
# into a bytes object (ffi.unpack, about 80 ns); measured with CPython 3.11 on x86-64, see
# benchmarks/mask_quick.py and benchmarks/mask_floor.py. The integer method also keeps the
# GIL, where a cffi call lets waiting threads take it. 125 covers every control frame, and
# is the most that the key cut from ``mask * 32`` allows. Without the C routine, larger
# payloads use integers too. In place, the C routine is always the cheaper one.
_PY_MAX = 125

# From this size up, apply_mask() has the C routine write straight into the bytes object it
# returns (see _MaskedStream). That costs about 0.6 µs more per call than masking into a
# reused buffer and copying the result, and the copy it saves is worth more from 32 KiB up.
# The result is then the only large block allocated, as with websockets.speedups: no second
# one whose release makes glibc trim the heap, and the next call fault its pages back in.
_INTO_MIN = 1 << 15

# The longest frame header: 2 bytes, a 64-bit length and the masking key. The reused buffers
# (see _buffers) have room for one before a payload of _INTO_MIN bytes, for _mask_frame().
_HEADER_MAX = 14
_BUFFER_SIZE = _INTO_MIN + _HEADER_MAX

_from_bytes = int.from_bytes

if _lib is not None:  # pragma: no branch - depends on the build
    _c_mask = _lib.syncws_mask
    _from_buffer = _ffi.from_buffer
    _release = _ffi.release
    _unpack = _ffi.unpack
    _CHAR_ARRAY = _ffi.typeof("char[]")
    # The output is entirely overwritten, so do not spend a memset on it.
    _new_uninitialized = _ffi.new_allocator(should_clear_after_alloc=False)


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


def _mask_short(data: _Data, mask: bytes | bytearray, length: int) -> bytes:
    """Return ``data`` XORed with ``mask`` (the payload's first byte with the key's first
    byte), for a payload of at most 125 bytes: the masking of every small frame.

    This is the piece of the codec that the message path calls (the shortcuts of
    :mod:`~syncws.protocol.shortcuts`, and :func:`apply_mask` for short payloads): the XOR
    of two Python integers, cheaper than a call into C at that size (see ``_PY_MAX``). It
    checks nothing, as befits the message path: the caller passes a byte buffer of exactly
    ``length`` bytes, with ``length <= 125``, and a 4-byte ``mask``.

    Args:
        data: The payload: ``length`` bytes.
        mask: The 4-byte masking key.
        length: ``len(data)``, which the caller always knows from the frame's header.
    """
    # Big-endian, the default byte order of both calls: no argument to pass.
    return (_from_bytes(data) ^ _from_bytes((mask * 32)[:length])).to_bytes(length)


# Payloads above this size are unmasked through a memoryview of the receive buffer, which
# saves one copy; below it, slicing is cheaper than creating the view.
_VIEW_THRESHOLD = 4096


def _unmask_slice(buf: bytes | bytearray, start: int, stop: int, mask: bytes | None) -> bytes:
    """``buf[start:stop]``, a payload in a receive buffer, unmasked with ``mask`` (``None``:
    not masked) as a new ``bytes``: the readers' one way to take a payload of any size out
    of their buffer (the message path takes payloads of up to 125 bytes with
    :func:`_mask_short` instead)."""
    if mask is None:
        return bytes(buf[start:stop])
    if stop - start > _VIEW_THRESHOLD:
        with memoryview(buf) as view:
            return apply_mask(view[start:stop], mask)
    return apply_mask(buf[start:stop], mask)


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


class _MaskedStream(io.RawIOBase):
    """A raw stream that reads as a payload masked on the fly, for :func:`_c_mask_into_bytes`.

    ``io.BufferedReader(stream, 1).read(n)`` creates an uninitialized bytes object of ``n``
    bytes and passes a writable view of its storage to :meth:`readinto`, which the C routine
    fills: the payload is masked straight into the bytes object that ``read()`` returns, in
    one pass, as ``websockets.speedups`` does with the C API. No other code can see that
    object before ``read()`` returns it, and no existing bytes object is ever written to.
    Only the speed depends on this detail of CPython's ``BufferedReader``: called in any
    other way (several calls, into its own buffer), :meth:`readinto` still gives the right
    bytes.
    """

    # Slots: attributes of io objects are slower to reach through their instance dict.
    __slots__ = ("job", "pos")

    def __init__(self) -> None:
        super().__init__()
        #: (payload, mask, offset % 4, length): the payload is a bytes object, or a cffi
        #: ``char[]`` over its buffer. None between calls.
        self.job: tuple[Any, bytes, int, int] | None = None
        self.pos = 0  # bytes of the payload already read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        assert self.job is not None
        src, mask, offset, size = self.job
        pos = self.pos
        dst = _from_buffer(_CHAR_ARRAY, buffer, True)
        try:
            k = len(dst)
            if k > size - pos:
                k = size - pos
                if k <= 0:
                    return 0
            if pos:  # not with CPython's BufferedReader, which asks for everything at once
                src = (_from_buffer(src) if src.__class__ is bytes else src) + pos
            _c_mask(src, dst, k, mask, offset + pos)
        finally:
            _release(dst)
        self.pos = pos + k
        return k


# Idle output buffers of _BUFFER_SIZE bytes for smaller payloads, which are masked into one
# and then copied into a bytes object: reusing one saves about 90 ns (ffi.new_allocator),
# 15 % at 1 KiB. A buffer serves one call at a time; at most _BUFFERS_MAX are kept.
_buffers: list[Any] = []
_BUFFERS_MAX = 4

# Idle (reader, stream) pairs: a pair serves one call at a time, and list.pop()/append() are
# atomic, so threads need no lock. A new pair costs about 2 µs; at most _STREAMS_MAX are kept.
_streams: list[tuple[io.BufferedReader, _MaskedStream]] = []
_STREAMS_MAX = 4


def _c_mask_into_bytes(data: bytes | bytearray | memoryview, n: int, mask: bytes, r: int) -> bytes:
    """Mask the ``n`` bytes of ``data`` with C, straight into the returned bytes object."""
    try:
        reader, stream = _streams.pop()
    except IndexError:
        stream = _MaskedStream()
        reader = io.BufferedReader(stream, 1)  # 1: read() asks the stream for all n bytes
    stream.job = (data if data.__class__ is bytes else _from_buffer(data), mask, r, n)
    stream.pos = 0
    try:
        result = reader.read(n)
    finally:
        stream.job = None  # do not keep the payload (or a lock on its buffer) alive
    if len(_streams) < _STREAMS_MAX:
        _streams.append((reader, stream))
    return result


def _c_mask_copy(data: _Data, n: int, mask: bytes, r: int) -> bytes:
    """Mask ``n`` < _INTO_MIN bytes of ``data`` with C into a reused buffer; return a copy."""
    try:
        out = _buffers.pop()
    except IndexError:
        out = _new_uninitialized(_CHAR_ARRAY, _BUFFER_SIZE)
    _c_mask(data if data.__class__ is bytes else _from_buffer(data), out, n, mask, r)
    result: bytes = _unpack(out, n)
    if len(_buffers) < _BUFFERS_MAX:
        _buffers.append(out)
    return result


def _c_apply_mask_impl(data: _Data, mask: bytes, offset: int = 0) -> bytes:
    """Mask ``data`` with the C routine, whatever its size (see :func:`apply_mask`)."""
    cls = data.__class__
    if cls is not bytes and cls is not bytearray:
        data = _byte_view(data)
    if mask.__class__ is not bytes or len(mask) != 4:
        mask = _check_mask(mask)
    n = len(data)
    if n >= _INTO_MIN:
        return _c_mask_into_bytes(data, n, mask, offset & 3)
    return _c_mask_copy(data, n, mask, offset & 3)


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
        return _mask_short(data, (mask * 2)[r : r + 4] if r else mask, n)
    if not _USE_C:
        r = offset & 3
        key = (mask * ((n >> 2) + 2))[r : r + n]
        return (_from_bytes(data, "little") ^ _from_bytes(key, "little")).to_bytes(n, "little")
    if n >= _INTO_MIN:
        return _c_mask_into_bytes(data, n, mask, offset & 3)
    return _c_mask_copy(data, n, mask, offset & 3)


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


def _mask_frame(header: bytes, data: _Data, mask: bytes) -> bytes:
    """Return the frame ``header + apply_mask(data, mask)``, building it in one buffer.

    For the client's frames (``Protocol._frame``). With the C routine and a ``bytes``
    payload of _PY_MAX + 1 up to _INTO_MIN bytes, ``header`` is copied into a reused buffer
    and the payload masked right after it, and the whole frame is copied out once: the
    masked payload does not become a bytes object of its own, copied again into the frame.
    Anything else is ``header + apply_mask(data, mask)``.

    Args:
        header: The frame's header, which ends with ``mask``, as a masked frame's header
            does (RFC 6455 §5.2).
        data: The payload: any contiguous buffer, as for :func:`apply_mask`.
        mask: The masking key: 4 bytes, as ``bytes``. The one-buffer path does not check
            it (the protocol's keys always are), the others do as :func:`apply_mask`.
    """
    n = len(data)
    k = len(header)
    end = k + n
    if data.__class__ is not bytes or n <= _PY_MAX or end > _BUFFER_SIZE or not _USE_C:
        return header + apply_mask(data, mask)
    try:
        out = _buffers.pop()
    except IndexError:
        out = _new_uninitialized(_CHAR_ARRAY, _BUFFER_SIZE)
    out[0:k] = header
    _c_mask(data, out + k, n, mask, 0)
    result: bytes = _unpack(out, end)
    if len(_buffers) < _BUFFERS_MAX:
        _buffers.append(out)
    return result
