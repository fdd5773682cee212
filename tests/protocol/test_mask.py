"""Tests of payload masking (syncws.protocol.mask): C and pure-Python implementations."""

from __future__ import annotations

import array
import io
import os
import random
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from timing import TIMEOUT

from syncws.protocol import mask as m

Masker = Callable[[bytes | bytearray | memoryview, bytes, int], bytes]
InPlaceMasker = Callable[[bytearray | memoryview, bytes, int], None]

# The implementations to check against each other: the public functions, the Python
# fallback, and the C routine whenever it was compiled (even if SYNCWS_NO_SPEEDUPS is set).
MASKERS: dict[str, Masker] = {"public": m.apply_mask, "python": m._py_apply_mask}
INPLACE_MASKERS: dict[str, InPlaceMasker] = {
    "public": m.apply_mask_inplace,
    "python": m._py_apply_mask_inplace,
}
if m._c_apply_mask is not None and m._c_apply_mask_inplace is not None:
    MASKERS["cffi"] = m._c_apply_mask
    INPLACE_MASKERS["cffi"] = m._c_apply_mask_inplace

masker = pytest.mark.parametrize("apply", MASKERS.values(), ids=list(MASKERS))
inplace_masker = pytest.mark.parametrize(
    "apply", INPLACE_MASKERS.values(), ids=list(INPLACE_MASKERS)
)

# Few examples and no deadline: test_all_lengths_agree already sweeps sizes exhaustively, and
# these tests run for three implementations each; keep the whole file to a few seconds.
hypothesis_settings = settings(max_examples=50, deadline=None)

masks = st.binary(min_size=4, max_size=4)
offsets = st.integers(min_value=0, max_value=2**64)
payloads = st.binary(max_size=1500)


def reference(data: bytes, mask: bytes, offset: int = 0) -> bytes:
    """RFC 6455 §5.3, byte by byte."""
    return bytes(b ^ mask[(offset + i) % 4] for i, b in enumerate(data))


def speedups_disabled() -> bool:
    """Whether SYNCWS_NO_SPEEDUPS asks for the pure-Python implementation."""
    return os.environ.get("SYNCWS_NO_SPEEDUPS", "") not in ("", "0")


def run_in_subprocess(code: str, **env: str) -> str:
    """Run Python code in a fresh interpreter that imports syncws from the same place."""
    root = str(Path(m.__file__).resolve().parents[2])
    full_env = {k: v for k, v in os.environ.items() if k != "SYNCWS_NO_SPEEDUPS"}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    full_env.update(env)
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=6 * TIMEOUT,
        check=True,
    )
    return result.stdout.strip()


def test_compiled_module_active() -> None:
    """The C routine is in use, unless SYNCWS_NO_SPEEDUPS disables it: a broken build fails."""
    if speedups_disabled():
        assert m.IMPLEMENTATION == "python"
    else:
        assert m.IMPLEMENTATION == "cffi", "syncws._mask_cffi did not build or import"
        assert m._c_apply_mask is not None


def test_env_var_selects_fallback() -> None:
    """SYNCWS_NO_SPEEDUPS=1 selects the Python implementation; 0 and empty do not."""
    code = "import syncws.protocol.mask as m; print(m.IMPLEMENTATION)"
    assert run_in_subprocess(code, SYNCWS_NO_SPEEDUPS="1") == "python"
    normal = "python" if m._c_apply_mask is None else "cffi"
    assert run_in_subprocess(code, SYNCWS_NO_SPEEDUPS="0") == normal
    assert run_in_subprocess(code, SYNCWS_NO_SPEEDUPS="") == normal


def test_fallback_in_subprocess_masks_correctly() -> None:
    """With SYNCWS_NO_SPEEDUPS set, the public functions still mask correctly at all sizes."""
    code = (
        "import syncws.protocol.mask as m\n"
        "d = bytes(range(256)) * 20\n"
        "b = bytearray(d); m.apply_mask_inplace(b, b'abcd', 3)\n"
        "print(m.apply_mask(d, b'abcd', 3) == bytes(b), m.apply_mask(d[:5], b'abcd') == "
        "bytes(x ^ y for x, y in zip(d, b'abcda')))"
    )
    assert run_in_subprocess(code, SYNCWS_NO_SPEEDUPS="yes") == "True True"


def test_public_functions_without_c(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the C routine switched off, the public functions take the Python path at all sizes."""
    monkeypatch.setattr(m, "_USE_C", False)
    monkeypatch.setattr(m, "_c_mask", None, raising=False)  # any use of C would now fail
    mask = b"\x00\x7f\x80\xff"
    for n in (0, 5, m._PY_MAX, m._PY_MAX + 1, 200, 5000, m._INTO_MIN + 3):
        data = random.Random(n).randbytes(n)
        result = m.apply_mask(data, mask, 1)
        assert result == m._py_apply_mask(data, mask, 1)
        if n <= 5000:
            assert result == reference(data, mask, 1)
        buf = bytearray(data)
        m.apply_mask_inplace(buf, mask, 1)
        assert buf == result


def test_all_lengths_agree() -> None:
    """Every implementation gives the same result for random data of each length 0..4096."""
    rng = random.Random(6455)
    blob = rng.randbytes(4096 + 8)
    for n in range(4097):
        start = rng.randrange(8)
        data = blob[start : start + n]
        mask = rng.randbytes(4)
        offset = rng.randrange(1 << 20)
        expected = m._py_apply_mask(data, mask, offset)
        if n <= 300:
            assert expected == reference(data, mask, offset), n
        for name, apply in MASKERS.items():
            assert apply(data, mask, offset) == expected, (name, n)


def test_unaligned_views() -> None:
    """Slices at every start offset (unaligned for the C loads and stores) mask correctly."""
    rng = random.Random(1)
    blob = bytearray(rng.randbytes(600))
    mask = rng.randbytes(4)
    for start in range(16):
        for n in (0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 200, 333, 584):
            view = memoryview(blob)[start : start + n]
            expected = reference(bytes(view), mask, start)
            for apply in MASKERS.values():
                assert apply(view, mask, start) == expected
            for apply_inplace in INPLACE_MASKERS.values():
                copy = bytearray(blob)
                apply_inplace(memoryview(copy)[start : start + n], mask, start)
                assert copy[start : start + n] == expected
                assert copy[:start] == blob[:start]
                assert copy[start + n :] == blob[start + n :]


@masker
def test_empty(apply: Masker) -> None:
    """Empty input gives b"" for bytes, bytearray and memoryview, with any offset."""
    for data in (b"", bytearray(), memoryview(b"")):
        for offset in range(5):
            result = apply(data, b"abcd", offset)
            assert result == b""
            assert type(result) is bytes


@masker
@pytest.mark.parametrize("n", [1, 16, 125, 128, 129, 4096, m._INTO_MIN, 100_000])
def test_returns_new_bytes(apply: Masker, n: int) -> None:
    """The result is a new bytes object and the input is left untouched."""
    data = bytearray(os.urandom(n))
    before = bytes(data)
    result = apply(data, b"\x01\x02\x03\x04", 0)
    assert type(result) is bytes
    assert result is not data
    assert data == before
    assert result == m._py_apply_mask(before, b"\x01\x02\x03\x04")
    if n <= 4096:
        assert result == reference(before, b"\x01\x02\x03\x04")


@masker
@hypothesis_settings
@given(data=payloads, mask=masks, offset=offsets)
def test_matches_reference(apply: Masker, data: bytes, mask: bytes, offset: int) -> None:
    """Each implementation matches the byte-by-byte definition for any mask and offset."""
    assert apply(data, mask, offset) == reference(data, mask, offset)


@masker
@hypothesis_settings
@given(data=payloads, mask=masks, offset=offsets)
def test_involution(apply: Masker, data: bytes, mask: bytes, offset: int) -> None:
    """Masking twice with the same mask and offset gives the input back."""
    assert apply(apply(data, mask, offset), mask, offset) == data


@masker
@hypothesis_settings
@given(data=payloads, mask=masks, offset=offsets, cut=st.floats(0, 1))
def test_offset_continuation(
    apply: Masker, data: bytes, mask: bytes, offset: int, cut: float
) -> None:
    """Masking a payload in two pieces (second one at the right offset) equals masking it whole."""
    k = int(len(data) * cut)
    pieces = apply(data[:k], mask, offset) + apply(data[k:], mask, offset + k)
    assert pieces == apply(data, mask, offset)


@masker
@hypothesis_settings
@given(data=payloads, mask=masks, offset=offsets)
def test_buffer_types(apply: Masker, data: bytes, mask: bytes, offset: int) -> None:
    """bytes, bytearray and memoryview inputs (of bytes and bytearray) give the same result."""
    expected = apply(data, mask, offset)
    for variant in (bytearray(data), memoryview(data), memoryview(bytearray(data))):
        assert apply(variant, mask, offset) == expected


@masker
def test_memoryview_formats(apply: Masker) -> None:
    """A memoryview of another format or shape is masked as its raw bytes."""
    words = array.array("I", range(1000, 1100))
    raw = words.tobytes()
    expected = reference(raw, b"wxyz", 1)
    assert apply(memoryview(words), b"wxyz", 1) == expected
    assert apply(memoryview(raw).cast("B", (20, len(raw) // 20)), b"wxyz", 1) == expected
    assert apply(memoryview(raw).cast("c"), b"wxyz", 1) == expected  # type: ignore[arg-type]
    strided = memoryview(raw)[::2]
    assert apply(strided, b"wxyz", 1) == reference(raw[::2], b"wxyz", 1)


@masker
def test_mask_argument(apply: Masker) -> None:
    """A bytes-like mask is accepted; a mask that is not 4 bytes long or not bytes-like is not."""
    for data in (b"x" * 10, b"x" * 1000, b"x" * m._INTO_MIN):
        assert apply(data, bytearray(b"abcd"), 0) == apply(data, b"abcd", 0)  # type: ignore[arg-type]
        assert apply(data, memoryview(b"abcd"), 0) == apply(data, b"abcd", 0)  # type: ignore[arg-type]
        for bad in (b"", b"abc", b"abcde"):
            with pytest.raises(ValueError, match="4 bytes"):
                apply(data, bad, 0)
        with pytest.raises(TypeError):
            apply(data, 1234, 0)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            apply(data, "abcd", 0)  # type: ignore[arg-type]


@inplace_masker
@hypothesis_settings
@given(data=payloads, mask=masks, offset=offsets)
def test_inplace_equals_out_of_place(
    apply: InPlaceMasker, data: bytes, mask: bytes, offset: int
) -> None:
    """Masking a bytearray or writable memoryview in place equals apply_mask."""
    expected = m._py_apply_mask(data, mask, offset)
    buf = bytearray(data)
    apply(buf, mask, offset)
    assert buf == expected
    buf = bytearray(data)
    apply(memoryview(buf), mask, offset)
    assert buf == expected


@inplace_masker
def test_inplace_rejects_readonly(apply: InPlaceMasker) -> None:
    """Read-only buffers and bad masks are refused, and nothing is modified."""
    data = b"payload!" * 100
    with pytest.raises(TypeError):
        apply(data, b"abcd", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        apply(memoryview(data), b"abcd", 0)
    assert data == b"payload!" * 100
    buf = bytearray(data)
    with pytest.raises(ValueError, match="4 bytes"):
        apply(buf, b"abc", 0)
    assert buf == data


@inplace_masker
def test_inplace_formats(apply: InPlaceMasker) -> None:
    """In place, other formats are masked as raw bytes; non-contiguous buffers are refused."""
    words = array.array("H", range(500))
    expected = reference(words.tobytes(), b"\xff\x00\x0f\xf0", 2)
    apply(memoryview(words), b"\xff\x00\x0f\xf0", 2)
    assert words.tobytes() == expected
    empty = bytearray()
    apply(empty, b"abcd", 0)
    assert empty == b""
    strided = memoryview(bytearray(10))[::2]
    with pytest.raises(TypeError, match="contiguous"):
        apply(strided, b"abcd", 0)


def test_large_payload() -> None:
    """A multi-megabyte payload gives the same result with every implementation."""
    data = random.Random(2).randbytes(3 * 2**20 + 3)
    expected = m._py_apply_mask(data, b"\x9a\xbc\xde\xf0", 7)
    for apply in MASKERS.values():
        assert apply(data, b"\x9a\xbc\xde\xf0", 7) == expected
    for apply_inplace in INPLACE_MASKERS.values():
        buf = bytearray(data)
        apply_inplace(buf, b"\x9a\xbc\xde\xf0", 7)
        assert buf == expected


# Sizes around each switch between methods in apply_mask(): the integer method up to
# _PY_MAX, then the C routine into a cffi buffer, then straight into the result from _INTO_MIN.
BOUNDARY_SIZES = sorted(
    {0, 1, 3, 4, 5, 15, 16, 17, 125, 126, 127, 128, 129}
    | {m._PY_MAX + d for d in (-1, 0, 1)}
    | {m._INTO_MIN + d for d in (-1, 0, 1)}
    | {65536 + d for d in (-1, 0, 1)}
)


@pytest.mark.parametrize("n", BOUNDARY_SIZES)
def test_boundaries(n: int) -> None:
    """At each size around a switch of method, all implementations, offsets and buffer types
    agree with the byte-by-byte definition, and the result is a new bytes object."""
    rng = random.Random(n)
    data = rng.randbytes(n)
    mask = rng.randbytes(4)
    for offset in range(8):
        expected = reference(data, mask, offset)
        for variant in (data, bytearray(data), memoryview(data), memoryview(bytearray(data))):
            for name, apply in MASKERS.items():
                result = apply(variant, mask, offset)
                assert type(result) is bytes, (name, n, offset)
                assert result == expected, (name, n, offset, type(variant))
        buf = bytearray(data)
        m.apply_mask_inplace(buf, mask, offset)
        assert buf == expected


@pytest.mark.parametrize("n", [m._INTO_MIN - 1, m._INTO_MIN, 65536])
def test_non_contiguous_input(n: int) -> None:
    """A strided memoryview is masked as its items (copied first), at every method's sizes."""
    raw = random.Random(n).randbytes(2 * n)
    view = memoryview(raw)[::2]
    expected = reference(raw[::2], b"\x01\xfe\x7f\x80", 3)
    for apply in MASKERS.values():
        assert apply(view, b"\x01\xfe\x7f\x80", 3) == expected


needs_c = pytest.mark.skipif(m._c_apply_mask is None, reason="syncws._mask_cffi not built")


@needs_c
@pytest.mark.skipif(sys.implementation.name != "cpython", reason="CPython's BufferedReader")
def test_large_payload_masked_into_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """From _INTO_MIN up, the C routine writes straight into the storage of the bytes object
    that is returned (one pass, no copy), in a single call; below, into a separate buffer."""
    ffi = m._ffi
    calls: list[tuple[int, int]] = []
    c_mask = m._c_mask

    def spy(src: object, dst: object, n: int, mask: bytes, offset: int) -> None:
        calls.append((int(ffi.cast("uintptr_t", dst)), n))
        c_mask(src, dst, n, mask, offset)

    monkeypatch.setattr(m, "_c_mask", spy)
    appliers = [m._c_apply_mask] + ([m.apply_mask] if m._USE_C else [])
    for n in (m._INTO_MIN, 65536, 1 << 20):
        for data in (os.urandom(n), bytearray(os.urandom(n))):
            for apply in appliers:
                assert apply is not None
                calls.clear()
                result = apply(data, b"abcd", 1)
                assert result == m._py_apply_mask(data, b"abcd", 1)
                assert calls == [(int(ffi.cast("uintptr_t", ffi.from_buffer(result))), n)]
    calls.clear()
    result = appliers[-1](os.urandom(m._INTO_MIN - 1), b"abcd", 0)
    assert len(calls) == 1
    assert calls[0][0] != int(ffi.cast("uintptr_t", ffi.from_buffer(result)))


@needs_c
@pytest.mark.parametrize("buffer_size", [1, 2, 7, 4096])
def test_masked_stream_any_reads(buffer_size: int) -> None:
    """The stream behind the one-pass path gives the right bytes however it is read: in
    pieces through a buffer (as another BufferedReader might), or with readinto() directly."""
    rng = random.Random(buffer_size)
    for n in (0, 1, 5, 4096, 10_001):
        data = rng.randbytes(n)
        for source in (data, m._ffi.from_buffer(bytearray(data))):
            for offset in range(4):
                stream = m._MaskedStream()
                stream.job = (source, b"\x11\x22\x33\x44", offset, n)
                reader = io.BufferedReader(stream, buffer_size)
                pieces = [reader.read(rng.randrange(1, 3000)) for _ in range(12)]
                assert b"".join(pieces) == reference(data, b"\x11\x22\x33\x44", offset)
    stream = m._MaskedStream()
    stream.job = (b"0123456789", b"abcd", 2, 10)
    buf = bytearray(4)
    assert [stream.readinto(buf) for _ in range(3)] == [4, 4, 2]
    assert stream.readinto(buf) == 0
    assert bytes(buf[:2]) == reference(b"0123456789", b"abcd", 2)[8:]


@needs_c
def test_one_pass_path_releases_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """After masking a large bytearray, nothing keeps its buffer exported (it can be resized)
    or the payload alive, even if the C call fails; at most _STREAMS_MAX streams are kept."""
    apply = m.apply_mask if m._USE_C else m._c_apply_mask
    assert apply is not None
    data = bytearray(os.urandom(m._INTO_MIN + 5))
    expected = m._py_apply_mask(data, b"wxyz")
    assert apply(data, b"wxyz", 0) == expected
    data.extend(b"more")  # BufferError if an export were still alive
    assert all(stream.job is None for _, stream in m._streams)

    def failing(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(m, "_c_mask", failing)
    with pytest.raises(RuntimeError, match="boom"):
        apply(data, b"wxyz", 0)
    data.extend(b"again")
    assert all(stream.job is None for _, stream in m._streams)
    monkeypatch.undo()

    def work() -> None:
        for _ in range(20):
            assert apply(bytes(data[: m._INTO_MIN]), b"wxyz", 0) == expected[: m._INTO_MIN]

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(m._streams) <= m._STREAMS_MAX


def test_threads() -> None:
    """Threads masking large and small payloads concurrently (GIL released in C) get their own."""
    errors: list[str] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(15):
            data = rng.randbytes(rng.choice([16, 1000, m._INTO_MIN + rng.randrange(99_999)]))
            mask = rng.randbytes(4)
            if m.apply_mask(data, mask) != m._py_apply_mask(data, mask):
                errors.append(f"thread {seed}, {len(data)} bytes")
            header = b"\x82\xfe" + mask  # the length does not matter here
            if m._mask_frame(header, data, mask) != header + m._py_apply_mask(data, mask):
                errors.append(f"thread {seed}, frame of {len(data)} bytes")

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(m._buffers) <= m._BUFFERS_MAX
    assert all(len(buf) == m._BUFFER_SIZE for buf in m._buffers)
    assert len(m._streams) <= m._STREAMS_MAX


# _mask_frame(): a client's frame, header and masked payload, built in one buffer.

# Around each switch of method in _mask_frame(): the integer method up to _PY_MAX, then one
# buffer while the frame fits in _BUFFER_SIZE, then apply_mask()'s own methods.
FRAME_SIZES = sorted(
    {0, 1, 4, 5, m._PY_MAX, m._PY_MAX + 1, 1024, m._INTO_MIN - 1, m._INTO_MIN, m._INTO_MIN + 1}
    | {m._BUFFER_SIZE - 8 + d for d in (-1, 0, 1)}
    | {m._BUFFER_SIZE - m._HEADER_MAX + d for d in (0, 1)}
    | {65535, 65536, 100_003}
)


def use_c_or_not(monkeypatch: pytest.MonkeyPatch, use_c: bool) -> None:
    """Make the module use the C routine, or not (any use of C then fails)."""
    if use_c and m._c_apply_mask is None:
        pytest.skip("syncws._mask_cffi not built")
    monkeypatch.setattr(m, "_USE_C", use_c)
    if not use_c:
        monkeypatch.setattr(m, "_c_mask", None, raising=False)


def frame_header(n: int, mask: bytes, opcode: int = 2) -> bytes:
    """The header of a masked frame of ``n`` bytes, as the protocol builds it."""
    if n < 126:
        return bytes((0x80 | opcode, 0x80 | n)) + mask
    if n < 65536:
        return bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big") + mask
    return bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big") + mask


@pytest.mark.parametrize("use_c", [True, False], ids=["cffi", "python"])
@pytest.mark.parametrize("n", FRAME_SIZES)
def test_mask_frame(monkeypatch: pytest.MonkeyPatch, use_c: bool, n: int) -> None:
    """The frame is the header followed by the masked payload, a new bytes object, for every
    buffer type and with headers of each length form (and a longer one than any)."""
    use_c_or_not(monkeypatch, use_c)
    rng = random.Random(n)
    data = rng.randbytes(n)
    mask = rng.randbytes(4)
    expected = reference(data, mask)
    variants = (data, bytearray(data), memoryview(data), memoryview(bytearray(data)))
    for header in (frame_header(n, mask), b"\x81\xfe\x00\x00" + mask, b"h" * 100 + mask):
        for variant in variants:
            result = m._mask_frame(header, variant, mask)
            assert type(result) is bytes
            assert result == header + expected, (n, len(header), type(variant))
    if n % 4 == 0 and n:  # a memoryview is taken as its raw bytes, whatever its format
        words = memoryview(bytearray(data)).cast("I")
        assert m._mask_frame(b"head" + mask, words, mask) == b"head" + mask + expected
    raw = rng.randbytes(2 * n)  # not contiguous: masked as its items
    header = frame_header(n, mask)
    strided = memoryview(raw)[::2]
    assert m._mask_frame(header, strided, mask) == header + reference(raw[::2], mask)


@needs_c
def test_mask_frame_in_one_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    """With C, a frame of _PY_MAX + 1 bytes up to what fits in a reused buffer is masked
    straight after its header in that buffer, with one C call; larger ones as apply_mask()."""
    monkeypatch.setattr(m, "_USE_C", True)
    ffi = m._ffi
    calls: list[tuple[object, int]] = []
    c_mask = m._c_mask

    def spy(src: object, dst: object, n: int, mask: bytes, offset: int) -> None:
        calls.append((dst, n))
        c_mask(src, dst, n, mask, offset)

    monkeypatch.setattr(m, "_c_mask", spy)
    mask = b"\x10\x20\x30\x40"
    for n in (m._PY_MAX + 1, 1024, m._BUFFER_SIZE - 8):
        data = os.urandom(n)
        header = frame_header(n, mask)
        calls.clear()
        assert m._mask_frame(header, data, mask) == header + reference(data, mask)
        ((dst, size),) = calls
        buffer = m._buffers[-1]  # back in the pool, with the frame in it
        assert size == n
        assert ffi.cast("char *", dst) == ffi.cast("char *", buffer) + len(header)
        assert ffi.unpack(buffer, len(header) + n) == header + reference(data, mask)
    data = os.urandom(m._BUFFER_SIZE - 7)
    expected = reference(data, mask)
    calls.clear()
    assert m._mask_frame(frame_header(len(data), mask), data, mask)[8:] == expected
    ((dst, size),) = calls  # masked straight into a bytes object, then concatenated
    assert size == len(data)
    assert all(dst != ffi.cast("char *", buffer) + 8 for buffer in m._buffers)


def test_short_branch_every_length_and_buffer_type() -> None:
    """The short branch that the message path calls (``_mask_short``, up to 125 bytes) masks
    bytes and bytearrays of every length as the reference does, and it is apply_mask's
    own branch for short payloads at every offset."""
    rng = random.Random(125)
    for n in range(m._PY_MAX + 1):
        data = rng.randbytes(n)
        mask = rng.randbytes(4)
        expected = reference(data, mask, 0)
        assert m._mask_short(data, mask, n) == expected
        assert m._mask_short(bytearray(data), bytearray(mask), n) == expected
        assert type(m._mask_short(bytearray(data), mask, n)) is bytes
        for offset in range(4):
            assert m.apply_mask(data, mask, offset) == reference(data, mask, offset)
