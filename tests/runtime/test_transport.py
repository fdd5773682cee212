"""Tests for syncws.runtime.transport: the adaptive read size, vectored writes, and TLS
writes and reads of large messages in pieces."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import tls_contexts
from timing import TIMEOUT

import syncws
import syncws.runtime.transport as transport_module
from syncws.protocol.events import PayloadRead
from syncws.runtime.transport import (
    _MAX_READ,
    _MIN_READ,
    _SHORT_FLAGS,
    _SHORT_WRITE,
    TLSTransport,
    Transport,
    send_short,
)


def run_in_subprocess(code: str, **env: str) -> str:
    """Run Python code in a fresh interpreter that imports syncws from the same place,
    with SYNCWS_NO_SPEEDUPS unset unless ``env`` sets it; return its output."""
    root = str(Path(transport_module.__file__).resolve().parents[2])
    full_env = {k: v for k, v in os.environ.items() if k != "SYNCWS_NO_SPEEDUPS"}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    full_env.update(env)
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=6 * TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def read_exactly(transport: Transport, count: int) -> list[int]:
    """Read ``count`` bytes; return the size of each read."""
    sizes = []
    while count:
        data = transport.recv(TIMEOUT)
        assert data
        sizes.append(len(data))
        count -= len(data)
    return sizes


def test_reads_start_small_grow_for_bulk_data_and_shrink_back() -> None:
    """An idle connection waits with a small buffer; a bulk transfer grows the reads up to
    the maximum, and small messages afterwards shrink them again."""
    a, b = socket.socketpair()
    with a, b:
        b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        transport = Transport(a)
        assert transport._read_size == _MIN_READ
        b.sendall(b"x" * (2 * _MAX_READ))
        sizes = read_exactly(transport, 2 * _MAX_READ)
        assert max(sizes) > _MIN_READ
        assert transport._read_size > _MIN_READ
        for _ in range(40):  # two small reads in a row halve the size
            b.sendall(b"small")
            assert transport.recv(TIMEOUT) == b"small"
        assert transport._read_size == _MIN_READ


def test_smallest_read_comes_from_the_small_object_allocator() -> None:
    """The bytes object of a read of _MIN_READ bytes (what an idle connection holds while
    blocked) fits CPython's small-object allocator (512 bytes): one from malloc is shrunk
    by realloc() after the read, which fragments memory at every wake-up."""
    assert sys.getsizeof(bytes(_MIN_READ)) <= 512


def test_a_message_just_over_the_read_size_keeps_one_read_per_message() -> None:
    """The read right after a full one (the rest of the same data) does not shrink the
    size: messages a little larger than it then take one read each, even with small ones
    in between."""
    a, b = socket.socketpair()
    with a, b:
        transport = Transport(a)
        message = b"m" * (_MIN_READ + 20)
        b.sendall(message)
        assert read_exactly(transport, len(message)) == [_MIN_READ, 20]
        for _ in range(10):
            b.sendall(message)
            assert read_exactly(transport, len(message)) == [len(message)]
            b.sendall(b"small")
            assert transport.recv(TIMEOUT) == b"small"


def test_nonblocking_reads_adapt_too() -> None:
    """recv_nowait grows the read size like recv, and returns None when nothing waits."""
    a, b = socket.socketpair()
    with a, b:
        transport = Transport(a)
        assert transport.recv_nowait() is None
        b.sendall(b"y" * (4 * _MIN_READ))
        assert transport.recv_nowait() == b"y" * _MIN_READ
        assert transport._read_size == 2 * _MIN_READ


def read_into(sock: socket.socket, count: int, out: list[bytes]) -> None:
    """Read ``count`` bytes from ``sock`` and append them to ``out``."""
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(65536)
        assert chunk
        data += chunk
    out.append(bytes(data))


def test_send_buffers_writes_every_buffer_in_order_across_partial_writes() -> None:
    """send_buffers writes several buffers in order, finishing the partial writes a small
    socket buffer forces, with and without a deadline."""
    for deadline in (None, time.monotonic() + 2 * TIMEOUT):
        a, b = socket.socketpair()
        with a, b:
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            buffers = [b"head", bytes(range(256)) * 4096, b"", b"tail"]
            expected = b"".join(buffers)
            received: list[bytes] = []
            reader = threading.Thread(target=read_into, args=(b, len(expected), received))
            reader.start()
            Transport(a).send_buffers(buffers, deadline)
            reader.join(2 * TIMEOUT)
            assert received == [expected]


def test_send_buffers_times_out_when_the_peer_does_not_read() -> None:
    """With a deadline, send_buffers gives up with TimeoutError on a peer that stops reading."""
    a, b = socket.socketpair()
    with a, b:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        with pytest.raises(TimeoutError):
            Transport(a).send_buffers([b"x" * 16, b"y" * (8 << 20)], time.monotonic() + 0.2)


def _tls_pair(a: socket.socket, b: socket.socket) -> tuple[TLSTransport, TLSTransport]:
    """TLS transports over a connected pair, handshake done: (server, client)."""
    server_ctx, client_ctx = tls_contexts()
    server = TLSTransport(a, server_ctx, server_side=True)
    client = TLSTransport(b, client_ctx, server_side=False, server_hostname="localhost")
    thread = threading.Thread(target=server.handshake, args=(time.monotonic() + 2 * TIMEOUT,))
    thread.start()
    client.handshake(time.monotonic() + 2 * TIMEOUT)
    thread.join(2 * TIMEOUT)
    return server, client


def test_tls_encrypts_a_large_message_a_piece_at_a_time() -> None:
    """A large write is encrypted 64 KiB of plaintext at a time, small buffers joined,
    and the pieces decrypt to the buffers in order."""
    a, b = socket.socketpair()
    with a, b:
        server, client = _tls_pair(a, b)
        header, payload = b"\x82\x7f" + bytes(8), os.urandom(200_000)
        pieces = list(client.encrypt([header, memoryview(payload), b"tail"]))
        assert len(pieces) == 4  # 200,014 bytes in pieces of 65,536 at most
        assert all(len(piece) < 65536 + 1024 for piece in pieces)  # records' overhead
        received = bytearray()

        def read() -> None:
            while len(received) < 200_014:
                data = server.recv(TIMEOUT)
                assert data
                received.extend(data)

        thread = threading.Thread(target=read)
        thread.start()
        for piece in pieces:
            b.sendall(piece)
        thread.join(2 * TIMEOUT)
        assert bytes(received) == header + payload + b"tail"


def test_tls_reads_a_payload_straight_into_its_buffer() -> None:
    """read_payload() decrypts the rest of a payload into the message and leaves what
    follows it for the next read."""
    a, b = socket.socketpair()
    with a, b:
        server, client = _tls_pair(a, b)
        payload = os.urandom(300_000)
        wire = b"".join(client.encrypt([payload[1000:], b"next"]))
        thread = threading.Thread(target=b.sendall, args=(wire,))
        thread.start()
        read = PayloadRead(len(payload), payload[:1000], None)
        assert server.read_payload(read) == payload
        assert server.recv(TIMEOUT) == b"next"
        thread.join(2 * TIMEOUT)


# send_short(): the first, non-blocking write of a message, with the GIL held (the C module
# syncws/runtime/_send.c) or through socket.send() when that module is not available.

needs_send_c = pytest.mark.skipif(
    transport_module._send_holding_gil is None, reason="syncws.runtime._send not built or disabled"
)


@pytest.fixture(params=["c", "socket"])
def short_writes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with each implementation of send_short()."""
    if request.param == "c":
        if transport_module._send_holding_gil is None:
            pytest.skip("syncws.runtime._send not built or disabled")
        _hold_gil_from(monkeypatch, 0)  # any number of connections
    else:
        monkeypatch.setattr(transport_module, "_send_holding_gil", None)
        _hold_gil_from(monkeypatch, 0)  # and none to use
    return str(request.param)


def _hold_gil_from(monkeypatch: pytest.MonkeyPatch, convoy: int) -> None:
    """Make send_short() keep the GIL from ``convoy`` open connections on, for this test
    (connections of earlier tests that close meanwhile decide again with the same setting)."""
    monkeypatch.setattr(transport_module, "_holding", transport_module._holding)  # restored
    monkeypatch.setattr(transport_module, "_CONVOY", convoy)
    transport_module.count_connections(0)


def test_send_module_is_built_and_used() -> None:
    """On POSIX the C module is in use unless SYNCWS_NO_SPEEDUPS disables it: a broken
    build fails here instead of silently costing the GIL hand-offs."""
    code = "import syncws.runtime.transport as t; print(t._send_holding_gil is not None)"
    expected = "True" if os.name == "posix" else "False"
    assert run_in_subprocess(code) == expected
    assert run_in_subprocess(code, SYNCWS_NO_SPEEDUPS="1") == "False"


def test_send_short_writes_a_short_frame_whole(short_writes: str) -> None:
    a, b = socket.socketpair()
    with a, b:
        wire = bytes(range(256)) * 4
        assert send_short(a, wire) == len(wire)
        received: list[bytes] = []
        read_into(b, len(wire), received)
        assert received == [wire]


def test_send_short_on_a_full_socket_returns_what_it_wrote(short_writes: str) -> None:
    """A write that does not fit returns a partial count, then 0: never an exception, never
    a block, and every byte it reported as written arrives."""
    a, b = socket.socketpair()
    with a, b:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        chunk = bytes(range(256)) * 16  # 4 KiB, under _SHORT_WRITE
        written = []
        for _ in range(1000):  # bounded: a 4 KiB buffer fills long before
            sent = send_short(a, chunk)
            written.append(chunk[:sent])
            if sent == 0:
                break
        assert written[-1] == b""
        expected = b"".join(written)
        received: list[bytes] = []
        read_into(b, len(expected), received)
        assert received == [expected]


def test_send_short_on_a_closed_socket_returns_0(short_writes: str) -> None:
    a, b = socket.socketpair()
    with b:
        a.close()  # fileno() is now -1
        assert send_short(a, b"\x82\x00") == 0


def test_send_short_after_a_reset_returns_0_without_sigpipe() -> None:
    """A peer that reset the connection: 0, in a process where SIGPIPE is not ignored (an
    application embedding Python may restore it), with each implementation."""
    code = (
        "import signal, socket, struct\n"
        "import syncws.runtime.transport as t\n"
        "signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n"
        "results = []\n"
        "for impl in (t._send_holding_gil, None):\n"
        "    t._holding = impl\n"
        "    listener = socket.create_server(('127.0.0.1', 0))\n"
        "    a = socket.create_connection(listener.getsockname())\n"
        "    b, _ = listener.accept()\n"
        "    b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n"
        "    b.close()  # an RST\n"
        "    results.append(max(t.send_short(a, b'x' * 100) for _ in range(3)))\n"
        "    a.close(); listener.close()\n"
        "print(results)\n"
    )
    assert run_in_subprocess(code) == "[0, 0]"


def test_send_short_leaves_large_writes_to_the_socket_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above _SHORT_WRITE the GIL is released for the write, as the socket module does:
    copying that much holds it longer than a hand-off costs."""
    calls: list[int] = []
    monkeypatch.setattr(
        transport_module,
        "_send_holding_gil",
        lambda fd, data, flags: calls.append(len(data)) or 0,
    )
    _hold_gil_from(monkeypatch, 0)
    a, b = socket.socketpair()
    with a, b:
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        assert send_short(a, b"x" * _SHORT_WRITE) == 0  # the stand-in wrote nothing
        assert send_short(a, b"y" * (_SHORT_WRITE + 1)) > 0
        assert calls == [_SHORT_WRITE]


@needs_send_c
def test_send_c_validates_its_arguments() -> None:
    from syncws.runtime._send import send

    a, b = socket.socketpair()
    with a, b:
        fd = a.fileno()
        with pytest.raises(TypeError):
            send(fd, b"x")  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            send(fd, bytearray(b"x"), _SHORT_FLAGS)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            send("3", b"x", _SHORT_FLAGS)  # type: ignore[arg-type]
        with pytest.raises(OverflowError):
            send(fd, b"x", 1 << 40)
        # A file number out of range is never truncated into another (valid) one.
        assert send(fd + (1 << 32), b"x", _SHORT_FLAGS) == -1
        assert send(-1, b"x", _SHORT_FLAGS) == -1
        b.setblocking(False)
        with pytest.raises(BlockingIOError):
            b.recv(10)
        assert send(fd, b"xyz", _SHORT_FLAGS) == 3
        assert b.recv(10) == b"xyz"


@needs_send_c
def test_send_c_takes_a_socket_and_reads_its_number_itself() -> None:
    """Given the socket, the C call reads its file number and writes in one call, so that
    no other thread can close it in between; a closed socket gives -1, as a failed send."""
    from syncws.runtime._send import send

    a, b = socket.socketpair()
    with a, b:
        assert send(a, b"xyz", 0) == 3
        assert b.recv(10) == b"xyz"
        with pytest.raises(TypeError):
            send(object(), b"x", 0)  # type: ignore[arg-type]
        a.close()
        assert send(a, b"x", 0) == -1


@needs_send_c
def test_send_nowait_keeps_the_gil_for_short_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """broadcast() and the heartbeat write with Transport.send_nowait(): a short ``bytes``
    write keeps the GIL whatever the number of connections; a pending tail (a memoryview)
    and a large write go through the socket module."""
    real = transport_module._send_holding_gil
    assert real is not None
    calls: list[int] = []

    def recording(sock: socket.socket, data: bytes, flags: int) -> int:
        calls.append(len(data))
        return real(sock, data, flags)

    monkeypatch.setattr(transport_module, "_send_holding_gil", recording)
    _hold_gil_from(monkeypatch, 1 << 30)  # the message path would release it
    a, b = socket.socketpair()
    with a, b:
        for s in (a, b):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        transport = Transport(a)
        large = b"z" * (_SHORT_WRITE + 1)
        assert transport.send_nowait(b"abc") == 3
        assert transport.send_nowait(memoryview(b"defg")) == 4
        assert transport.send_nowait(large) == len(large)
        assert calls == [3]
        expected = b"abcdefg" + large
        received = b""
        while len(received) < len(expected):
            received += b.recv(1 << 20)
        assert received == expected


def test_send_nowait_tells_a_full_socket_from_a_broken_one(short_writes: str) -> None:
    """A full socket gives 0 (after the C call's -1, the socket module's EAGAIN); a broken
    connection raises OSError, as socket.send() does, so that the connection is aborted."""
    a, b = socket.socketpair()
    with a, b:
        transport = Transport(a)
        chunk = b"x" * 4096
        for _ in range(10_000):  # a socketpair holds a few hundred KiB at most
            if transport.send_nowait(chunk) == 0:
                break
        assert transport.send_nowait(b"y") == 0
        b.close()
        with pytest.raises(OSError):
            transport.send_nowait(b"y")


def test_the_gil_is_kept_from_convoy_connections_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """send_short() keeps the GIL once the process has _CONVOY connections open, and stops
    when they close again."""
    if transport_module._send_holding_gil is None:
        pytest.skip("syncws.runtime._send not built or disabled")
    # Relative to the connections open now (earlier tests' may still be closing).
    _hold_gil_from(monkeypatch, transport_module._open_connections + 2)
    assert transport_module._holding is None
    transport_module.count_connections(1)
    assert transport_module._holding is None
    transport_module.count_connections(1)
    assert transport_module._holding is transport_module._send_holding_gil
    transport_module.count_connections(-1)
    assert transport_module._holding is None
    transport_module.count_connections(-1)


def test_a_forked_child_starts_with_no_connections() -> None:
    """The parent's connections are not the child's: it does not keep the GIL for them."""
    code = (
        "import os, syncws.runtime.transport as t\n"
        "t.count_connections(t._CONVOY)\n"
        "assert t._holding is t._send_holding_gil\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if t._open_connections == 0 and t._holding is None else 1)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status), t._open_connections == t._CONVOY)\n"
    )
    assert run_in_subprocess(code) == "0 True"


@needs_send_c
def test_send_c_never_blocks_nor_raises_sigpipe() -> None:
    """The C call adds MSG_DONTWAIT and MSG_NOSIGNAL itself: a call without them on a full
    socket returns -1 at once (blocking here, with the GIL held, would stall every thread),
    and one on a reset connection does not kill the process."""
    code = (
        "import signal, socket, struct\n"
        "from syncws.runtime._send import send\n"
        "signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n"
        "a, b = socket.socketpair()\n"
        "a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)\n"
        "results = [send(a.fileno(), b'x' * 4096, 0) for _ in range(200)]\n"
        "listener = socket.create_server(('127.0.0.1', 0))\n"
        "c = socket.create_connection(listener.getsockname())\n"
        "d, _ = listener.accept()\n"
        "d.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n"
        "d.close()\n"
        "reset = [send(c.fileno(), b'x', 0) for _ in range(3)]\n"
        "print(results[-1], reset[-1])\n"
    )
    assert run_in_subprocess(code) == "-1 -1"


@pytest.mark.parametrize("messages", [0, 2])
def test_tls_close_is_answered_while_the_application_is_not_reading(
    server: Callable[..., syncws.Server], messages: int
) -> None:
    """Over TLS, a close frame that arrives in the same socket read as messages, while the
    client's application is not in recv(), is answered at once by the heartbeat thread: it
    reads every complete TLS record, not one per readiness event (the server waited its
    whole close_timeout: found by a review)."""
    server_ctx, client_ctx = tls_contexts("127.0.0.1")
    took: list[float] = []

    def handler(ws: syncws.ServerConnection) -> None:
        for i in range(messages):
            ws.send(f"message {i}")
        start = time.monotonic()
        ws.close()
        took.append(time.monotonic() - start)

    srv = server(handler, ssl=server_ctx, close_timeout=4)
    ws = syncws.connect(f"wss://127.0.0.1:{srv.port}/", ssl=client_ctx, proxy=None)
    with ws:
        deadline = time.monotonic() + 4 + TIMEOUT
        while not took and time.monotonic() < deadline:
            time.sleep(0.05)  # not in recv(): the heartbeat reads
        assert took and took[0] < 1.0
        assert [ws.recv(timeout=TIMEOUT) for _ in range(messages)] == [
            f"message {i}" for i in range(messages)
        ]


_PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"


def _newer_headers() -> Path | None:
    """The headers of a Python 3.12+ on this machine: this one's, or pyenv's."""
    if sys.version_info >= (3, 12):
        return Path(sysconfig.get_paths()["include"])
    for include in sorted(_PYENV.glob("3.1[2-9]*/include/python3.1[2-9]")):
        if (include / "Python.h").exists():
            return include
    return None


def _python_311() -> str | None:
    """A Python 3.11 interpreter: this one, or pyenv's."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = sorted(_PYENV.glob("3.11*/bin/python3.11"))
    return str(found[-1]) if found else None


# Loads the module built from _send.c and counts None's references around 10,000 calls
# that return None; run by a Python 3.11, where None's count is real (later: immortal).
_NONE_COUNT = """
import importlib.util, socket, sys
spec = importlib.util.spec_from_file_location("_send", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
a, b = socket.socketpair()
a.setblocking(False)
before = sys.getrefcount(None)
for _ in range(10_000):
    assert module.recv(a, 16) is None  # nothing to read: None
print(before - sys.getrefcount(None))
"""


@pytest.mark.skipif(
    _newer_headers() is None or _python_311() is None,
    reason="needs Python 3.12+ headers and a Python 3.11 (pyenv has both on this machine)",
)
def test_send_module_built_with_newer_headers_keeps_none_alive(tmp_path: Path) -> None:
    """_send.c built with Python 3.12+ headers (an abi3 module, as a newer interpreter's
    editable install builds it in place) and loaded by 3.11 returns None as a new
    reference: Py_RETURN_NONE, which no longer increments None there, made each call take
    a reference from None, until "Fatal Python error: none_dealloc" (the soak, in CI).
    Run under either Python: the check runs in a 3.11 subprocess."""
    source = Path(transport_module.__file__).resolve().parent / "_send.c"
    built = tmp_path / "_send.abi3.so"
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    flags = ["-shared", "-fPIC", "-O1", f"-I{_newer_headers()}"]
    compiled = subprocess.run(
        [*cc, *flags, str(source), "-o", str(built)],
        capture_output=True,
        text=True,
        timeout=12 * TIMEOUT,
    )
    assert compiled.returncode == 0, compiled.stderr
    python = _python_311()
    assert python is not None
    counted = subprocess.run(
        [python, "-c", _NONE_COUNT, str(built)],
        capture_output=True,
        text=True,
        timeout=12 * TIMEOUT,
    )
    assert counted.returncode == 0, counted.stderr
    assert int(counted.stdout) <= 10  # references None lost in 10,000 calls


def test_importing_syncws_loads_the_idna_codec() -> None:
    """Host names are resolved from several threads (clients, a Redis hub's subscriber,
    proxies): the codec that getaddrinfo() loads on first use is loaded at import, in one
    thread, since two threads loading it at once can fail with "unknown encoding: idna"
    (CPython bpo-29288; seen in a forked gunicorn worker)."""
    code = "import sys, syncws; print('encodings.idna' in sys.modules)"
    assert run_in_subprocess(code) == "True"
