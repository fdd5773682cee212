"""Loopback tests of the server's messages: real sockets, a server thread, real clients.

The echo of every kind and size of message, whole or fragmented, also over a Unix socket,
IPv6 and TLS; recv_streaming() when one read brings a message and the next one's start;
max_size (1009) and invalid UTF-8 (1007) from a raw client; and messages sent by several
threads on one connection, never interleaved.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import ServerFactory, ipv6_loopback, tls_contexts
from server_helpers import FrameReader, Uri, close_code, raw_handshake
from timing import TIMEOUT

import syncws
from syncws.protocol.frames import Opcode, serialize_frame

MASK = b"\x01\x02\x03\x04"


def masked(opcode: int, data: bytes, *, fin: bool = True) -> bytes:
    """A frame as a client sends it (masked)."""
    return serialize_frame(opcode, data, fin=fin, mask=os.urandom(4))


# Echo.


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("Hello, wörld! 👋", id="text"),
        pytest.param(bytes(range(256)), id="binary"),
        pytest.param("", id="empty-text"),
        pytest.param(b"", id="empty-binary"),
        pytest.param(b"\xab" * 2**20, id="1MiB"),
    ],
)
def test_echo_returns_message_unchanged(
    server: ServerFactory, message: str | bytes, uri: Uri
) -> None:
    """The echo handler sends back text, binary, empty and 1 MiB messages unchanged."""
    srv = server()
    with syncws.connect(uri(srv)) as ws:
        ws.send(message)
        assert ws.recv(timeout=TIMEOUT) == message


@pytest.mark.parametrize(
    ("fragments", "expected"),
    [
        pytest.param(["Hel", "lo", ", wörld"], "Hello, wörld", id="text"),
        pytest.param([b"\x00\x01", b"", b"\x02"], b"\x00\x01\x02", id="binary"),
    ],
)
def test_echo_reassembles_fragmented_message(
    server: ServerFactory, fragments: list[str] | list[bytes], expected: str | bytes, uri: Uri
) -> None:
    """A message sent as an iterable of fragments arrives as one message."""
    srv = server()
    with syncws.connect(uri(srv)) as ws:
        ws.send(iter(fragments))
        assert ws.recv(timeout=TIMEOUT) == expected


def test_recv_streaming_a_whole_message_read_with_the_next_ones_start(
    server: ServerFactory,
) -> None:
    """A handler's recv_streaming() yields the whole message A alone when one read brings
    A and the first fragment of B; recv() then returns B whole (issue 21)."""
    streaming = threading.Event()
    results: queue.Queue[object] = queue.Queue()

    def handler(ws: syncws.ServerConnection) -> None:
        fragments = ws.recv_streaming()
        threading.Timer(0.05, streaming.set).start()  # once the generator reads the socket
        results.put(list(fragments))
        results.put(ws.recv(timeout=TIMEOUT))

    srv = server(handler)
    sock, _ = raw_handshake(srv)
    with sock:
        assert streaming.wait(TIMEOUT)
        sock.sendall(
            serialize_frame(Opcode.TEXT, b"A", mask=MASK)
            + serialize_frame(Opcode.BINARY, b"B1", fin=False, mask=MASK)
        )
        time.sleep(0.05)
        sock.sendall(serialize_frame(Opcode.CONT, b"-B2", mask=MASK))
        assert results.get(timeout=TIMEOUT) == ["A"]
        assert results.get(timeout=TIMEOUT) == b"B1-B2"


# Limits and protocol errors.


def test_message_over_max_size_closes_with_1009(server: ServerFactory, uri: Uri) -> None:
    """A message larger than the server's max_size gets close code 1009."""
    srv = server(max_size=1024)
    with syncws.connect(uri(srv)) as ws:
        ws.send(b"x" * 1025)
        with pytest.raises(syncws.ConnectionClosedError) as excinfo:
            ws.recv(timeout=TIMEOUT)
    assert excinfo.value.rcvd is not None
    assert excinfo.value.rcvd.code == 1009


def test_message_at_max_size_is_accepted(server: ServerFactory, uri: Uri) -> None:
    """A message of exactly max_size bytes is accepted."""
    srv = server(max_size=1024)
    with syncws.connect(uri(srv)) as ws:
        ws.send(b"x" * 1024)
        assert ws.recv(timeout=TIMEOUT) == b"x" * 1024


def test_invalid_utf8_closes_with_1007(server: ServerFactory) -> None:
    """A text frame with invalid UTF-8 from a raw client gets close code 1007."""
    srv = server()
    sock, rest = raw_handshake(srv)
    with sock:
        sock.sendall(masked(Opcode.TEXT, b"caf\xc3"))  # truncated "é"
        opcode, payload = FrameReader(sock, rest).frame()
        assert opcode == Opcode.CLOSE
        assert close_code(payload) == 1007


def test_invalid_utf8_detected_on_first_fragment(server: ServerFactory) -> None:
    """Invalid UTF-8 in the first fragment of a text message closes with 1007 at once."""
    srv = server()
    sock, rest = raw_handshake(srv)
    with sock:
        sock.sendall(masked(Opcode.TEXT, b"\xff", fin=False))  # never finished
        opcode, payload = FrameReader(sock, rest).frame()
        assert opcode == Opcode.CLOSE
        assert close_code(payload) == 1007


# Transports: Unix socket, IPv6, TLS.


def test_unix_socket_echo(server: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A server on a Unix socket echoes to a client connected with unix_path."""
    # A short directory: Unix socket paths are limited to ~100 bytes.
    path = str(tmp_path_factory.mktemp("ws") / "s.sock")
    server(unix_path=path)
    with syncws.connect("ws://localhost/", unix_path=path) as ws:
        ws.send("over a unix socket")
        assert ws.recv(timeout=TIMEOUT) == "over a unix socket"


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_echo(server: ServerFactory, uri: Uri) -> None:
    """A server bound to ::1 echoes to a client connecting to ws://[::1]:PORT."""
    srv = server(host="::1")
    assert uri(srv).startswith("ws://[::1]:")
    with syncws.connect(uri(srv)) as ws:
        ws.send("over IPv6")
        assert ws.recv(timeout=TIMEOUT) == "over IPv6"


def test_tls_echo(server: ServerFactory) -> None:
    """A server with an ssl context echoes to a wss:// client trusting its certificate."""
    server_ctx, client_ctx = tls_contexts()
    srv = server(ssl=server_ctx)
    with syncws.connect(f"wss://localhost:{srv.port}/", ssl=client_ctx) as ws:
        for message in ("secure", b"\x00" * 100_000):
            ws.send(message)
            assert ws.recv(timeout=TIMEOUT) == message


# Concurrency.


def test_concurrent_senders_never_interleave_frames(server: ServerFactory, uri: Uri) -> None:
    """Messages sent from 8 threads on one connection all arrive intact."""
    threads_count, per_thread = 8, 200
    # Sizes that exercise the three payload length encodings, and fragmented sends.
    sizes = [10, 300, 70_000]

    def message(t: int, i: int) -> str:
        prefix = f"{t}:{i}:"
        return prefix + chr(ord("a") + t) * sizes[i % len(sizes)]

    def handler(ws: syncws.ServerConnection) -> None:
        errors: list[BaseException] = []

        def sender(t: int) -> None:
            try:
                for i in range(per_thread):
                    text = message(t, i)
                    if i % 7 == 0:
                        ws.send([text[:5], text[5:]])  # fragmented
                    else:
                        ws.send(text)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=sender, args=(t,)) for t in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        ws.send("done" if not errors else f"error: {errors[0]!r}")

    srv = server(handler)
    received: dict[int, list[int]] = {t: [] for t in range(threads_count)}
    with syncws.connect(uri(srv)) as ws:
        while True:
            text = ws.recv(timeout=TIMEOUT)
            assert isinstance(text, str)
            if text == "done" or text.startswith("error"):
                break
            t_str, i_str, _ = text.split(":", 2)
            t, i = int(t_str), int(i_str)
            assert text == message(t, i), f"corrupted message from thread {t}"
            received[t].append(i)
    assert text == "done"
    for t in range(threads_count):
        assert received[t] == list(range(per_thread)), f"thread {t}: lost or reordered"


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_a_message_sent_during_another_threads_fragmented_message_waits_for_its_end(
    server: ServerFactory, uri: Uri, compression: str | None
) -> None:
    """A whole message takes no send lock, unless it finds another thread in the middle of
    a fragmented message: it then waits for that message's end and goes out after it."""
    received: queue.Queue[object] = queue.Queue()

    def handler(ws: syncws.ServerConnection) -> None:
        for message in ws:
            received.put(message)

    srv = server(handler)
    with syncws.connect(uri(srv), compression=compression) as ws:
        first_sent, resume = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def fragments() -> Iterator[str]:
            yield "first half, "
            first_sent.set()  # the first frame is written: the message is in progress
            resume.wait(TIMEOUT)
            yield "second half"

        def send(message: object) -> None:
            try:
                ws.send(message)  # type: ignore[arg-type]
            except BaseException as exc:
                errors.append(exc)

        fragmented = threading.Thread(target=send, args=(fragments(),))
        fragmented.start()
        assert first_sent.wait(TIMEOUT)
        whole = threading.Thread(target=send, args=("whole",))
        whole.start()
        whole.join(0.2)
        assert whole.is_alive(), errors  # waiting for the fragmented message
        resume.set()
        fragmented.join(TIMEOUT)
        whole.join(TIMEOUT)
        assert not errors
        assert received.get(timeout=TIMEOUT) == "first half, second half"
        assert received.get(timeout=TIMEOUT) == "whole"
