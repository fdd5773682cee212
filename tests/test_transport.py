"""Tests for syncws.runtime.transport: the adaptive read size, vectored writes, and TLS
writes and reads of large messages in pieces."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

import pytest
from conftest import tls_contexts

from syncws.protocol.events import PayloadRead
from syncws.runtime.transport import _MAX_READ, _MIN_READ, TLSTransport, Transport


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
        for _ in range(40):  # two small reads in a row halve the size
            b.sendall(b"small")
            assert transport.recv(5) == b"small"
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
            assert transport.recv(5) == b"small"


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


def _tls_pair(a: socket.socket, b: socket.socket) -> tuple[TLSTransport, TLSTransport]:
    """TLS transports over a connected pair, handshake done: (server, client)."""
    server_ctx, client_ctx = tls_contexts()
    server = TLSTransport(a, server_ctx, server_side=True)
    client = TLSTransport(b, client_ctx, server_side=False, server_hostname="localhost")
    thread = threading.Thread(target=server.handshake, args=(time.monotonic() + 10,))
    thread.start()
    client.handshake(time.monotonic() + 10)
    thread.join(10)
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
                data = server.recv(5)
                assert data
                received.extend(data)

        thread = threading.Thread(target=read)
        thread.start()
        for piece in pieces:
            b.sendall(piece)
        thread.join(10)
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
        assert server.recv(5) == b"next"
        thread.join(10)
