"""Tests for syncws.runtime.transport: the adaptive read size and vectored writes."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from syncws.runtime.transport import _MAX_READ, _MIN_READ, Transport


def read_exactly(transport: Transport, count: int) -> list[int]:
    """Read ``count`` bytes; return the size of each read."""
    sizes = []
    while count:
        data = transport.recv(5)
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
        for _ in range(20):
            b.sendall(b"small")
            assert transport.recv(5) == b"small"
        assert transport._read_size == _MIN_READ


def test_messages_just_over_the_read_size_settle_to_one_read_each() -> None:
    """Messages a little larger than the first read size are read in one recv() each once
    the size has grown: the small tail of a split message does not shrink it back."""
    a, b = socket.socketpair()
    with a, b:
        transport = Transport(a)
        message = b"m" * (_MIN_READ + 4)  # e.g. a 1 KiB payload and its frame header
        sizes = []
        for _ in range(10):
            b.sendall(message)
            sizes.append(read_exactly(transport, len(message)))
        assert sizes[0] == [_MIN_READ, 4]
        assert all(split == [len(message)] for split in sizes[1:])
        assert transport._read_size == 2 * _MIN_READ


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
    for deadline in (None, time.monotonic() + 10):
        a, b = socket.socketpair()
        with a, b:
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            buffers = [b"head", bytes(range(256)) * 4096, b"", b"tail"]
            expected = b"".join(buffers)
            received: list[bytes] = []
            reader = threading.Thread(target=read_into, args=(b, len(expected), received))
            reader.start()
            Transport(a).send_buffers(buffers, deadline)
            reader.join(10)
            assert received == [expected]


def test_send_buffers_times_out_when_the_peer_does_not_read() -> None:
    """With a deadline, send_buffers gives up with TimeoutError on a peer that stops reading."""
    a, b = socket.socketpair()
    with a, b:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        with pytest.raises(TimeoutError):
            Transport(a).send_buffers([b"x" * 16, b"y" * (8 << 20)], time.monotonic() + 0.2)
