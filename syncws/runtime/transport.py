"""Byte transports under a connection: a plain socket, or TLS over a socket.

TLS runs through :class:`ssl.SSLObject` and two :class:`ssl.MemoryBIO` rather than
:class:`ssl.SSLSocket`, so that every system call on the socket is ours to choose: the
heartbeat thread must read without blocking while a handler thread may be blocked writing,
which an ``SSLSocket`` can only offer by switching the whole socket's timeout under the
writer's feet. OpenSSL objects are not safe for concurrent use, so every call into the
``SSLObject`` holds :attr:`TLSTransport._tls_lock`; socket I/O happens outside it.

Ownership (enforced by :class:`~syncws.runtime.connection.Connection`): one reader at a time
(the handler inside ``recv()``, or the heartbeat thread while the handler is elsewhere) and
one writer at a time (whoever holds the connection's writer token).
"""

from __future__ import annotations

import io
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from ..protocol.events import PayloadRead, State
from ..protocol.mask import apply_mask_inplace

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

    from ..protocol.connection import Protocol

__all__ = ["NestedTLSTransport", "TLSTransport", "Transport", "count_connections", "send_short"]

_RECV_SIZE = 65536  # for TLS records, which the TLS layer reads whole anyway

# A blocked recv(n) holds an n-byte buffer for as long as it waits, on every idle
# connection: reads start small and grow while they come back full (bulk transfers),
# then shrink again when they come back small (see Transport._read). The smallest fits
# CPython's small-object allocator (512 bytes with the bytes header). A larger one comes
# from malloc, and recv() shrinks it to the size read with realloc(), which leaves a hole
# behind each time: with 1 KiB, 1,000 idle connections took 2 KiB more each after one
# round of keepalive pings and 7.5 KiB more after six.
_MIN_READ = 448
_MAX_READ = 262144
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)

# send_short() makes writes up to this size with the GIL held. A loopback send() costs
# about 4 us up to 16 KiB here (the receiver's TCP processing included), 8 us at 64 KiB.
_SHORT_WRITE = 16384
_SHORT_FLAGS = _DONTWAIT | getattr(socket, "MSG_NOSIGNAL", 0)

# syncws/runtime/_send.c: send(sock or fd, data, flags) with the GIL held; None if not built
# (no compiler, not POSIX) or SYNCWS_NO_SPEEDUPS disables the C code (as for masking).
_send_holding_gil: Callable[[int | socket.socket, bytes, int], int] | None = None
# The same module's recv(sock, size) with MSG_DONTWAIT, for the heartbeat thread's reads
# (see Transport.recv_nowait), and epoll_ctl() (heartbeat.py); None where _send is not.
_recv_holding_gil: Callable[[socket.socket, int], bytes | None] | None = None
if _DONTWAIT and os.environ.get("SYNCWS_NO_SPEEDUPS", "") in ("", "0"):
    try:
        from ._send import recv as _recv_holding_gil
        from ._send import send as _send_holding_gil
    except ImportError:  # pragma: no cover - not compiled
        pass


# From this many open connections in the process (every server's and every client's),
# send_short() keeps the GIL. Below, releasing it lets another thread run Python while
# this one is in the kernel; above, the threads convoy on the GIL and every release costs
# context switches. Measured on 2 cores, 16 B echoes: at 8 connections releasing gives
# 1.3x the messages/s, at 16 they are level, from 32 on keeping it gives 1.3x.
_CONVOY = 16
_open_lock = threading.Lock()
_open_connections = 0
# _send_holding_gil while send_short() keeps the GIL (see count_connections), else None.
_holding: Callable[[int | socket.socket, bytes, int], int] | None = None


def _forget_connections() -> None:
    """In a forked child: the parent's connections are not this process's."""
    global _open_connections, _holding
    _open_connections, _holding = 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_connections)


def count_connections(delta: int) -> None:
    """Note that ``delta`` connections opened (or closed, if negative): the heartbeat
    threads call this as they start and stop serving one. It decides whether
    :func:`send_short` keeps the GIL."""
    global _open_connections, _holding
    with _open_lock:
        _open_connections += delta
        _holding = _send_holding_gil if _open_connections >= _CONVOY else None


def send_short(sock: socket.socket, wire: bytes) -> int:
    """Write as much of ``wire`` as fits without blocking; return how much, ``0`` also when
    the socket failed (the blocking write that follows meets the error again, and reports
    it). Never raises ``SIGPIPE`` where ``MSG_NOSIGNAL`` exists (Linux).

    Up to ``_SHORT_WRITE`` bytes, and when the process has ``_CONVOY`` connections or
    more, the system call is made with the GIL held. The socket module releases the GIL
    around every call, and when many threads wait for it, this thread must then wait for
    its turn to take it back, after a context switch: that costs more than the write
    itself. At 64 busy connections this takes a third off the server's CPU time per
    message (see the Performance page). A short, non-blocking write holds the GIL no
    longer than a few dozen bytecodes do.
    """
    send = _holding
    if send is not None and len(wire) <= _SHORT_WRITE:
        sent = send(sock.fileno(), wire, _SHORT_FLAGS)
        return sent if sent > 0 else 0  # -1: EAGAIN, or an error
    try:
        return sock.send(wire, _SHORT_FLAGS)
    except OSError:  # BlockingIOError included
        return 0


def _wait(sock: socket.socket, events: int, timeout: float | None) -> bool:
    """Wait until ``sock`` is ready for ``events`` (POLLIN/POLLOUT) or an error occurs."""
    poller = select.poll()
    poller.register(sock, events)
    return bool(poller.poll(None if timeout is None else max(0.0, timeout) * 1000))


def _socket_addresses(
    sock: socket.socket, local: Any = None, remote: Any = None
) -> tuple[Any, Any]:
    """The local and remote addresses of a connection's socket, ``(None, None)`` once it
    is closed. Both are asked of the socket, unless the caller knows them (a WSGI server's
    environ tells them): a known ``local`` and ``remote`` are returned as they are, and a
    known ``remote`` saves a system call."""
    if local is not None and remote is not None:
        return local, remote
    try:
        return sock.getsockname(), (sock.getpeername() if remote is None else remote)
    except OSError:
        return None, None


class Transport:
    """A plain TCP or Unix socket; :class:`TLSTransport` adds TLS.

    Writing is two steps so that the connection can finish a write later, from another
    thread, without re-encrypting: :meth:`encode` turns plaintext into wire bytes (in
    order), then :meth:`send` or :meth:`send_nowait` puts wire bytes on the socket.
    """

    #: Whether :meth:`encode` and :meth:`has_output` do anything (TLS) or not (plain).
    tls = False

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._read_size = _MIN_READ
        self._small_reads = 0  # consecutive reads under a quarter of the read size
        if sock.gettimeout() is not None:
            sock.setblocking(True)

    def recv(self, timeout: float | None = None) -> bytes | None:
        """Read what is available, waiting up to ``timeout`` seconds (forever if ``None``).

        Returns:
            The bytes read, ``b""`` at EOF, or ``None`` when the timeout expired.
        """
        if timeout is not None and not _wait(self.sock, select.POLLIN, timeout):
            return None
        return self.recv_raw()

    def recv_nowait(self) -> bytes | None:
        """Read what is available without blocking; ``None`` if nothing is.

        This is how the heartbeat thread reads, one parked socket after another. With the
        C module, the system call keeps the GIL, as :meth:`send_nowait` does: the socket
        module's ``recv()`` releases it, and while other threads run Python, taking it
        back waited up to the switch interval (5 ms) or more, for every socket. That one
        thread then fell behind, and the peers' pings went unanswered (the benchmark
        ``benchmarks/keepalive_under_load.py`` measures it). A read that never blocks
        holds the GIL no longer than a few dozen bytecodes do.
        """
        recv = _recv_holding_gil
        if recv is None:
            return self.recv_raw(_DONTWAIT)
        size = self._read_size
        try:
            data = recv(self.sock, size)
        except (ConnectionResetError, ConnectionAbortedError, ValueError):
            return b""  # ValueError: the socket is closed
        if data is not None:
            n = len(data)
            if n == size or size > _MIN_READ:
                self._adapt_read_size(n, size)
        return data

    def recv_raw(self, flags: int = 0) -> bytes | None:
        """One ``recv()`` on the socket (blocking unless ``flags`` has ``MSG_DONTWAIT``),
        whose size adapts to the previous ones (see ``_MIN_READ``).

        A full read doubles the size. Two small reads in a row halve it, the one right
        after a full read not counting (it is likely the rest of the same data): a size
        that keeps a message whole is kept while smaller ones come in between.

        The bytes are the socket's own, TLS records under TLS: this is :meth:`recv` with no
        timeout for a plain transport, with one call less (the message path uses it).

        Returns:
            The bytes read, ``b""`` at EOF, or ``None`` if nothing was available without
            blocking.
        """
        size = self._read_size
        try:
            data = self.sock.recv(size, flags)
        except BlockingIOError:
            return None
        except (ConnectionResetError, ConnectionAbortedError):
            return b""
        n = len(data)
        if n == size or size > _MIN_READ:  # else a small read at the smallest size
            self._adapt_read_size(n, size)
        return data

    def _adapt_read_size(self, n: int, size: int) -> None:
        """Adapt the read size after a read of ``n`` bytes of ``size`` (see recv_raw)."""
        if n == size:
            if size < _MAX_READ:
                self._read_size = min(size * 2, _MAX_READ)
            self._small_reads = -1
        elif n >= size // 4:
            self._small_reads = 0
        elif self._small_reads < 1:
            self._small_reads += 1
        else:
            self._read_size = max(size // 2, _MIN_READ)
            self._small_reads = 0

    def read_payload(self, read: PayloadRead) -> bytes | None:
        """Read the rest of a large payload straight into the ``bytes`` object that holds
        the message, unmasking it there: no intermediate buffer, one pass of our own over
        the data (see :meth:`~syncws.protocol.shortcuts.Shortcuts.start_payload_read`).

        Blocks until the whole payload is read. Returns the unmasked payload, or ``None``
        if the connection ended first (the partial payload is dropped).
        """
        stream = _PayloadStream(self, read)
        # With a buffer size of 1, read(n) creates the result of n bytes and passes views of
        # its storage to stream.readinto() until it is full or at EOF (CPython; any other
        # way of calling readinto() gives the same bytes, with copies).
        payload = io.BufferedReader(stream, 1).read(read.size)
        return payload if len(payload) == read.size else None

    def read_into(self, view: memoryview) -> int:
        """Read what is available into ``view``, blocking until something is; the number
        of bytes read, 0 at EOF (a reset included). For :meth:`read_payload`."""
        try:
            return self.sock.recv_into(view)
        except (ConnectionResetError, ConnectionAbortedError):
            return 0

    def encode(self, data: bytes) -> bytes:
        """Turn plaintext into the bytes to write on the socket."""
        return data

    def has_output(self) -> bool:
        """Whether the transport itself has bytes to write (a TLS key update, ...)."""
        return False

    def send(self, wire: bytes | memoryview, deadline: float | None = None) -> None:
        """Write all of ``wire``, blocking until done or ``deadline`` (``time.monotonic``).

        Raises:
            TimeoutError: The deadline passed with data still unwritten.
            OSError: The socket failed or was shut down.
        """
        sock = self.sock
        if deadline is None:
            sock.sendall(wire)
            return
        view = memoryview(wire)
        while view:
            try:
                sent = sock.send(view, _DONTWAIT)
            except BlockingIOError:
                sent = 0
            view = view[sent:]
            if view and not _wait(sock, select.POLLOUT, deadline - time.monotonic()):
                raise TimeoutError("write timed out: the peer is not reading")

    def send_buffers(
        self, buffers: Sequence[bytes | memoryview], deadline: float | None = None
    ) -> None:
        """Write all of ``buffers`` in order, with as few system calls and copies as
        possible (``sendmsg``); otherwise as :meth:`send`."""
        if len(buffers) == 1:
            self.send(buffers[0], deadline)
            return
        sock = self.sock
        flags = 0 if deadline is None else _DONTWAIT
        views = [memoryview(buffer) for buffer in buffers]
        while views:
            try:
                sent = sock.sendmsg(views, [], flags)
            except BlockingIOError:
                sent = 0
            while sent:  # drop what went out; a partial write leaves a tail
                if sent >= len(views[0]):
                    sent -= len(views.pop(0))
                else:
                    views[0] = views[0][sent:]
                    sent = 0
            if (
                views
                and deadline is not None
                and not _wait(sock, select.POLLOUT, deadline - time.monotonic())
            ):
                raise TimeoutError("write timed out: the peer is not reading")

    def send_nowait(self, wire: bytes | memoryview) -> int:
        """Write as much of ``wire`` as fits without blocking; return how much.

        This is how :func:`~syncws.broadcast` and the heartbeat thread write: one socket
        after another. A short write keeps the GIL (the C call of :func:`send_short`,
        whatever the number of connections): a thread that released it for each socket
        would have to take it back each time, and while other threads run Python, that
        waits for the switch interval (5 ms), for every connection of a broadcast.
        """
        send = _send_holding_gil
        if send is not None and wire.__class__ is bytes and len(wire) <= _SHORT_WRITE:
            # The socket itself, not its fileno(): no other thread can close it between
            # the two, in this one call (the caller does not hold the connection's lock).
            sent = send(self.sock, wire, 0)
            if sent >= 0:
                return sent
            # EAGAIN or an error (rare: a slow peer, a broken connection): let the socket
            # module's call tell which, and raise for an error.
        try:
            return self.sock.send(wire, _DONTWAIT)
        except BlockingIOError:
            return 0

    def shutdown(self) -> None:
        """Shut the socket down both ways, which wakes any thread blocked on it."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


class _PayloadStream(io.RawIOBase):
    """The payload of a frame, as a raw stream: what was received already, then the
    transport (:meth:`Transport.read_into`); unmasked as it is read (see
    :meth:`Transport.read_payload`)."""

    def __init__(self, transport: Transport, read: PayloadRead) -> None:
        super().__init__()
        self._transport = transport
        self._read = read
        self._pos = 0  # payload bytes read so far

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        pos = self._pos
        received = self._read.received
        if pos < len(received):
            n = min(len(view), len(received) - pos)
            view[:n] = received[pos : pos + n]
        else:
            n = self._transport.read_into(view)
            if not n:
                return 0
        mask = self._read.mask
        if mask is not None:
            apply_mask_inplace(view[:n], mask, pos)
        self._pos = pos + n
        return n


class TLSTransport(Transport):
    """TLS over a socket, through an :class:`ssl.SSLObject`.

    Args:
        sock: The connected socket.
        context: The TLS context.
        server_side: ``True`` on the server.
        server_hostname: The name to verify and send in SNI, on the client.
    """

    tls = True
    #: The TLS error that ended reading (reads return EOF after it): a corrupt record, or
    #: the peer's alert, such as the "certificate required" with which a TLS 1.3 server
    #: refuses a client without a certificate, after the handshake as the client sees it.
    tls_error: ssl.SSLError | None = None

    def __init__(
        self,
        sock: socket.socket,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
    ) -> None:
        super().__init__(sock)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side, server_hostname)
        self._tls_lock = threading.Lock()
        # read_into()'s buffer for raw bytes, during read_payload() only.
        self._raw_buffer: memoryview | None = None

    def handshake(self, deadline: float | None) -> None:
        """Run the TLS handshake; the calling thread owns the socket meanwhile.

        Raises:
            TimeoutError: Not done by ``deadline``.
            ssl.SSLError: The handshake failed (bad certificate, no common protocol, ...).
            ConnectionError: The peer closed the connection.
        """
        while True:
            try:
                self._tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            except ssl.SSLError:
                self._send_alert(deadline)
                raise
            pending = self._outgoing.read()
            if pending:
                self._send_handshake(pending, deadline)
            if done:
                return
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                raise TimeoutError("TLS handshake timed out")
            data = self._ciphertext(timeout)
            if data is None:
                raise TimeoutError("TLS handshake timed out")
            if not data:
                raise ConnectionError("connection closed during the TLS handshake")
            self._incoming.write(data)

    def _send_alert(self, deadline: float | None) -> None:
        """Send the alert with which OpenSSL ends a failed handshake, if any: it tells the
        peer why ("certificate required", "unknown CA"), where a bare close tells nothing."""
        alert = self._outgoing.read()
        if alert:
            try:
                self._send_handshake(alert, deadline)
            except (OSError, TimeoutError):
                pass  # the peer is gone: it needs no reason

    @property
    def ssl_object(self) -> ssl.SSLObject:
        """The TLS session: peer certificate, cipher, ALPN protocol, ..."""
        return self._tls

    def _decrypt(self) -> bytes | None:
        with self._tls_lock:
            try:
                return self._tls.read(_RECV_SIZE)
            except ssl.SSLWantReadError:
                return None
            except ssl.SSLZeroReturnError:
                return b""  # the peer's close_notify
            except ssl.SSLError as exc:
                self.tls_error = exc
                return b""  # an alert or a corrupt record: nothing more can be read

    def _feed(self, raw: bytes) -> None:
        """Pass raw bytes (never the EOF) to OpenSSL.

        The callers return EOF themselves: OpenSSL would take a missing ``close_notify`` as
        a fatal error and refuse to encrypt anything more, when the server still has a 503
        to send on a handshake that its shutdown interrupted (see
        ``_AwaitedRequests.interrupt`` in ``server_connection.py``). Nothing is lost: a
        complete record would have been decrypted before the read that met the EOF.
        """
        with self._tls_lock:
            self._incoming.write(raw)

    def recv(self, timeout: float | None = None) -> bytes | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            data = self._decrypt()
            if data is not None:
                return data
            raw = self._ciphertext(None if deadline is None else deadline - time.monotonic())
            if not raw:  # None (nothing yet) or b"" (EOF: see _feed)
                return raw
            self._feed(raw)

    def read_payload(self, read: PayloadRead) -> bytes | None:
        try:
            return super().read_payload(read)
        finally:
            self._raw_buffer = None

    def read_into(self, view: memoryview) -> int:
        # Decrypt straight into the payload, one TLS record at most per call; the raw
        # bytes go through a buffer of this transport's, reused, rather than fresh objects
        # the size of the reads (large ones cost page faults every time).
        while True:
            with self._tls_lock:
                try:
                    # With a buffer, the count read (typeshed says bytes).
                    return cast("int", self._tls.read(len(view), view))
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError:  # the peer's close_notify included
                    return 0
            if not self._ciphertext_to_bio():
                return 0

    def _ciphertext_to_bio(self) -> bool:
        """Read ciphertext for :meth:`read_into` into the TLS session, blocking; ``False``
        at EOF."""
        buffer = self._raw_buffer
        if buffer is None:
            buffer = self._raw_buffer = memoryview(bytearray(_RECV_SIZE))
        n = Transport.read_into(self, buffer)
        if not n:
            return False
        with self._tls_lock:
            self._incoming.write(buffer[:n])
        return True

    def recv_nowait(self) -> bytes | None:
        # Drain every complete record: the heartbeat reads once per readiness event, and a
        # record left in the BIO (several arrived in one socket read) waits for the next.
        chunks: list[bytes] = []
        while True:
            data = self._decrypt()
            if data:
                chunks.append(data)
                continue
            if chunks:
                return b"".join(chunks)
            if data is not None:  # b"": close_notify
                return data
            raw = self._ciphertext_nowait()
            if not raw:  # None (nothing yet) or b"" (EOF: see _feed)
                return raw
            self._feed(raw)

    # Where the ciphertext comes from and goes to: the socket here, the outer TLS session
    # in NestedTLSTransport (the rest of the TLS logic is shared).

    def _ciphertext_nowait(self) -> bytes | None:
        """What :meth:`recv_nowait` decrypts: the socket's bytes, without blocking."""
        return Transport.recv_nowait(self)

    def _ciphertext(self, timeout: float | None) -> bytes | None:
        """What :meth:`recv` and :meth:`handshake` decrypt, waiting up to ``timeout``."""
        return Transport.recv(self, timeout)

    def _send_handshake(self, data: bytes, deadline: float | None) -> None:
        """Write the handshake's ``data``."""
        self.sock.sendall(data)

    def encrypt(self, buffers: Sequence[bytes | memoryview]) -> Iterator[bytes]:
        """Encrypt ``buffers`` in order, yielding the wire bytes of at most 64 KiB of
        plaintext at a time (with any TLS output queued before them), for the caller to
        write before asking for more: a large message's ciphertext is never in memory
        whole, and its pieces, unlike 1 MiB objects, come from memory the C allocator
        reuses instead of fresh pages."""
        pending: list[bytes | memoryview] = []
        room = _RECV_SIZE
        for buffer in buffers:
            view = memoryview(buffer)
            while len(view) >= room:
                pending.append(view[:room])
                yield self.encode(pending[0] if len(pending) == 1 else b"".join(pending))
                view = view[room:]
                pending, room = [], _RECV_SIZE
            if view:
                pending.append(view)
                room -= len(view)
        if pending:
            yield self.encode(pending[0] if len(pending) == 1 else b"".join(pending))

    def encode(self, data: bytes | memoryview) -> bytes:
        # Reading may have queued TLS output (e.g. answering a TLS 1.3 key update); it sits
        # in the BIO ahead of this record, so draining the BIO keeps the stream in order.
        with self._tls_lock:
            if data:
                self._tls.write(data)
            return self._outgoing.read()

    def has_output(self) -> bool:
        return self._outgoing.pending > 0


class NestedTLSTransport(TLSTransport):
    """TLS inside TLS: a ``wss://`` connection through an ``https://`` proxy, whose tunnel
    runs in the TLS session with the proxy (``outer``).

    The inner session's records are the outer one's plaintext: :meth:`encode` encrypts
    twice, reads decrypt twice. Lock order is inner, then outer (``encode``); the outer
    transport never calls into this one.

    Args:
        outer: The TLS transport to the proxy, tunnel open.
        context: The TLS context for the server.
        server_hostname: The name to verify and send in SNI.
    """

    def __init__(
        self, outer: TLSTransport, context: ssl.SSLContext, *, server_hostname: str
    ) -> None:
        super().__init__(outer.sock, context, server_side=False, server_hostname=server_hostname)
        self._outer = outer

    def recv_raw(self, flags: int = 0) -> bytes | None:
        return self._outer.recv_nowait() if flags else self._outer.recv()

    def _ciphertext_nowait(self) -> bytes | None:
        return self._outer.recv_nowait()

    def _ciphertext(self, timeout: float | None) -> bytes | None:
        return self._outer.recv(timeout)

    def _send_handshake(self, data: bytes, deadline: float | None) -> None:
        self._outer.send(self._outer.encode(data), deadline)

    def _ciphertext_to_bio(self) -> bool:
        raw = self._outer.recv()
        if not raw:
            return False
        self._feed(raw)
        return True

    def encode(self, data: bytes | memoryview) -> bytes:
        return self._outer.encode(super().encode(data))

    def has_output(self) -> bool:
        return self._outgoing.pending > 0 or self._outer.has_output()


def _handshaken(
    transport: Transport | socket.socket, protocol: Protocol, side: type[Protocol]
) -> Transport:
    """Check what ``from_handshake()`` was given: a protocol of ``side`` whose opening
    handshake is complete, and a transport or a plain connected socket (wrapped in a
    :class:`~syncws.runtime.transport.Transport`)."""
    if not isinstance(protocol, side):
        raise TypeError(f"protocol must be a {side.__name__}, got {type(protocol).__name__}")
    if protocol.state is State.CONNECTING:
        raise ValueError("the opening handshake is not complete: the protocol is CONNECTING")
    if isinstance(transport, Transport):
        return transport
    if isinstance(transport, ssl.SSLSocket):
        raise TypeError(
            "an ssl.SSLSocket cannot be used: pass a TLSTransport over the plain socket"
        )
    if not isinstance(transport, socket.socket):
        raise TypeError(
            f"transport must be a Transport or a socket, got {type(transport).__name__}"
        )
    transport.settimeout(None)  # the runtime's sockets block (deadlines are its own)
    return Transport(transport)
