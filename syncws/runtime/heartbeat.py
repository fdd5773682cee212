"""The heartbeat thread: one ``selectors`` loop and one deadline heap for many connections.

One runs per :class:`~syncws.Server`, one per process for all client connections, and one
per process for the connections upgraded inside a WSGI app. It

* sends keepalive pings every ``ping_interval`` and fails a connection with 1011 when the
  pong does not come within ``ping_timeout``;
* bounds the closing handshake by ``close_timeout``;
* *parks* connections whose handler has been out of ``recv()`` for a while
  (:data:`PARK_DELAY`): it reads them without blocking, answering pings, completing closes
  and queueing up to ``max_queue`` messages, and gives reading back as soon as the handler
  calls ``recv()`` again;
* finishes writes that a non-blocking flush left half done (a pong or a close frame to a
  peer that is slow to read);
* closes the sockets it watched, after unregistering them, so that a socket number is never
  reused while the selector still maps it.

Why parking is lazy: a handler inside ``recv()`` reads its own socket, so watching every
socket all the time would wake this thread for every message. Instead, a periodic check,
which runs only while connections exist, parks the connections whose handler has been
elsewhere for :data:`PARK_DELAY` seconds. The cost on the message path is one counter,
which ``recv()`` increments as it returns: a connection whose count has not moved since the
previous check, and whose handler is not in ``recv()``, has been elsewhere since then.

Selector registrations change only on this thread; other threads post commands and wake it
through a socket pair.

Most connections never need this thread: a short one (a handshake, a few messages, a close)
ends before its first ping is due and its handler reads it all the time. So adding and
removing a connection cost no wake-up: :meth:`Heartbeat.add` queues the first ping, which
the thread schedules at its next periodic check, and :meth:`Heartbeat.remove` closes the
socket itself unless the thread ever *claimed* the connection (to watch, read, write or
ping it). A claim and a removal exclude each other under the heartbeat's lock, so the
thread never touches a socket that another thread may have closed.

The thread uses a connection only through :class:`Served`, the public methods that a
:class:`~syncws.Connection` offers it (``hb_*``), and keeps its own bookkeeping of each
claimed connection (:class:`_Watch`: the events its selector watches, and whether it reads
the connection): it never changes a connection's state but through those methods (rule 6
of :mod:`syncws.runtime`).
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import math
import os
import select
import selectors
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from .options import LoggerLike
from .transport import _recv_holding_gil, _send_holding_gil, count_connections

__all__ = [
    "PARK_DELAY",
    "Heartbeat",
    "Served",
    "ServedTransport",
    "client_heartbeat",
    "wsgi_heartbeat",
]

#: Seconds a handler may stay out of ``recv()`` before the heartbeat reads for it.
#: Checked every PARK_DELAY, so a busy handler's connection is read again (and the peer's
#: pings answered) at most 2 * PARK_DELAY after it left ``recv()``: this must stay well
#: below the peers' ping timeouts. Each check costs about 1 ms per 10,000 connections.
PARK_DELAY = 0.2

_PING, _PONG, _CLOSE, _LINGER = 0, 1, 2, 3

#: Removed connections after which the heap is rebuilt without them (plus half the number
#: of live ones, so that rebuilding costs O(1) per removal): see Heartbeat._compact.
_COMPACT_AFTER = 64

#: Seconds a rejected socket is read (and its input discarded) before it is closed.
LINGER_TIMEOUT = 2.0


# epoll_ctl() with the GIL held (syncws/runtime/_send.c, Linux), where the C module's recv
# and send are used too; else None.
_epoll_ctl: Callable[[int, int, int, int], None] | None = None
if _recv_holding_gil is not None:
    try:
        from ._send import epoll_ctl as _epoll_ctl
    except ImportError:  # pragma: no cover - not Linux
        pass


class _Epoll:
    """A ``select.epoll`` whose changes keep the GIL, for :func:`_make_selector`.

    ``selectors.EpollSelector`` calls ``register``, ``modify`` and ``unregister`` of its
    ``select.epoll``, which release the GIL around a system call that never blocks. When
    other threads run Python, each of them then waited for the GIL again, up to the switch
    interval (5 ms) or more: parking or unparking many connections in a row (every
    ``PARK_DELAY``, or when many handlers call ``ping()``) made this one thread fall behind
    everything else it has to do, answering pings first.
    """

    __slots__ = ("_ctl", "close", "fileno", "poll")

    def __init__(self, epoll: Any, ctl: Callable[[int, int, int, int], None]) -> None:
        # The epoll's number is asked for at each change, not kept: once closed it is -1,
        # which epoll_ctl() refuses, where a kept one might name a reused descriptor.
        self.poll = epoll.poll
        self.close = epoll.close
        self.fileno = epoll.fileno
        self._ctl = ctl

    def register(self, fd: int, events: int) -> None:
        self._ctl(self.fileno(), 1, fd, events)  # EPOLL_CTL_ADD

    def unregister(self, fd: int) -> None:
        self._ctl(self.fileno(), 2, fd, 0)  # EPOLL_CTL_DEL

    def modify(self, fd: int, events: int) -> None:
        self._ctl(self.fileno(), 3, fd, events)  # EPOLL_CTL_MOD


def _make_selector() -> selectors.BaseSelector:
    """The heartbeat's selector: the default one, with :class:`_Epoll` inside if it can."""
    selector = selectors.DefaultSelector()
    epoll = getattr(selector, "_selector", None)
    if _epoll_ctl is not None and type(epoll) is getattr(select, "epoll", None):
        selector._selector = _Epoll(epoll, _epoll_ctl)  # type: ignore[attr-defined]
    return selector


class ServedTransport(Protocol):
    """What the heartbeat uses of a served connection's transport."""

    @property
    def sock(self) -> socket.socket:
        """The socket, which the heartbeat's selector watches."""

    def close(self) -> None:
        """Close the socket (the heartbeat does, after unregistering it)."""


class Served(Protocol):
    """What the heartbeat thread uses of a connection it serves, and nothing else: the
    options that time it, the socket to watch, and the ``hb_*`` methods, which do the
    work under the connection's own lock. :class:`~syncws.Connection` is one.

    The heartbeat calls them on its own thread, and never writes an attribute of the
    connection: what it keeps about a connection is its own (:class:`_Watch`).
    """

    @property
    def id(self) -> uuid.UUID:
        """For the log."""

    @property
    def transport(self) -> ServedTransport:
        """The socket's transport."""

    @property
    def ping_interval(self) -> float | None:
        """Seconds between keepalive pings; ``None``: none."""

    @property
    def ping_timeout(self) -> float | None:
        """Seconds a keepalive pong may take; ``None``: forever."""

    @property
    def close_timeout(self) -> float | None:
        """Seconds the closing handshake may take; ``None``: forever."""

    @property
    def hb_recv_count(self) -> int | None:
        """How many times the handler left ``recv()``, or ``None`` while it is inside."""

    def hb_wants_read(self) -> bool:
        """Whether the heartbeat should read the connection now (the handler is elsewhere)."""

    def hb_read(self, unpark: Callable[[], object]) -> bool:
        """The socket is readable: read without blocking; whether to keep watching it.
        ``unpark()`` is called, under the connection's lock, when the heartbeat must stop
        reading it (see :meth:`Heartbeat.want_read`)."""

    def hb_writable(self) -> bool:
        """The socket is writable: go on with the write the heartbeat holds the writer
        token for; whether to keep watching it."""

    def hb_ping(self) -> bytes | None:
        """Send a keepalive ping; its payload, or ``None`` if the connection is not open."""

    def hb_pong_overdue(self, payload: bytes) -> bool:
        """Whether the keepalive ping with ``payload`` is still unanswered."""

    def hb_ping_timed_out(self) -> None:
        """The keepalive pong did not come within ``ping_timeout``: fail the connection."""

    def hb_close_timed_out(self) -> None:
        """The closing handshake did not complete within ``close_timeout``: abort."""


class _Watch:
    """The heartbeat's bookkeeping of a connection it claimed (touched by its thread only):
    the selector events it watches on the socket, and whether it reads the connection for
    its handler (*parked*).

    ``parked`` is read without a lock by other threads too (:meth:`Heartbeat.want_read`);
    the connection clears it through :meth:`unpark`, under its own lock, when it hands
    reading back (see ``Connection.hb_read``).
    """

    __slots__ = ("events", "parked")

    def __init__(self) -> None:
        self.events = 0
        self.parked = False

    def unpark(self) -> None:
        self.parked = False


class _Lingering:
    """A socket that was answered (e.g. HTTP 503) and shut down for writing.

    Closing a socket with unread input makes the kernel send a reset, which can destroy
    the answer before the client reads it; so the heartbeat reads until EOF first.
    """

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock


class Heartbeat:
    """The shared heartbeat thread.

    Args:
        name: The thread's name.
        logger: Where to log keepalive failures.
    """

    def __init__(self, name: str, logger: LoggerLike) -> None:
        self.name = name
        self.logger = logger
        self._selector = _make_selector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._commands: collections.deque[Callable[[], None]] = collections.deque()
        self._heap: list[tuple[float, int, int, Any, bytes]] = []
        self._seq = itertools.count()
        self._conns: set[Served] = set()
        self._closing: set[Served] = set()
        # Connections this thread may touch (see _claim), with its bookkeeping of each.
        self._claimed: dict[Served, _Watch] = {}
        # The hb_recv_count of each connection out of recv() at the last periodic check,
        # and not parked: this thread's own (see _check_idle).
        self._recv_counts: dict[Served, int] = {}
        self._new: list[tuple[float, Served]] = []  # first pings not scheduled yet
        # Connections removed since the heap was last rid of their entries (see _compact).
        self._removed = 0
        self._sleep_until = math.inf
        self._next_check = math.inf
        self._thread: threading.Thread | None = None
        self._ident: int | None = None  # the thread's, once it runs
        self._stopped = False

    # Called from any thread.

    def add(self, conn: Served) -> None:
        """Start serving a connection: keepalive pings from now on.

        The thread is woken only if it sleeps past the first check or ping now due: the
        first ping is handed over in a list, which the thread moves to its heap on its
        next iteration (at the latest the periodic check, :data:`PARK_DELAY` away) if
        the connection still exists then.
        """
        now = time.monotonic()
        with self._lock:
            if self._stopped:
                raise RuntimeError("the heartbeat thread is stopped")
            added = conn not in self._conns
            self._conns.add(conn)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            if self._next_check == math.inf:
                self._next_check = now + PARK_DELAY
            wake = self._next_check < self._sleep_until
            if conn.ping_interval is not None:
                due = now + conn.ping_interval
                self._new.append((due, conn))
                wake = wake or due < self._sleep_until
        if added:
            count_connections(1)
        if wake:
            self._wake()

    def remove(self, conn: Served) -> None:
        """Stop serving a connection and close its socket (after unregistering it).

        A connection this thread never claimed is not registered and never will be: its
        socket is closed here and now, without waking the thread.
        """
        wake = removed = False
        with self._lock:
            claimed = conn in self._claimed
            if not claimed:
                removed = conn in self._conns
                self._conns.discard(conn)
                self._closing.discard(conn)
                self._removed += removed
                wake = self._stopped and not self._conns  # the thread may exit now
        if claimed:
            self._post(lambda: self._forget(conn))
            return
        if removed:
            count_connections(-1)
        conn.transport.close()
        if wake:
            self._wake()

    def take_over(self, conn: Served) -> None:
        """Read this connection now, e.g. after its handler returned or it was aborted."""
        self._post(lambda: self._park(conn))

    def want_read(self, conn: Served) -> None:
        """Read this connection soon (e.g. for the pong of a ``ping()``), unless this thread
        reads it already.

        Whether it does is read without the lock, from the calling thread: at worst a
        wake-up too many, never one too few, for a caller that took the connection's lock
        after the heartbeat last handed reading back (see ``Connection.hb_read``). Under
        load, waking this thread for every ``ping()`` of every connection made up most of
        its work.
        """
        watch = self._claimed.get(conn)
        if watch is None or not watch.parked:
            self.take_over(conn)

    def want_write(self, conn: Served) -> None:
        """Finish a write left pending by a non-blocking flush when the socket is writable."""
        self._post(lambda: self._watch(conn, selectors.EVENT_WRITE))

    def expect_close(self, conn: Served) -> None:
        """Bound the closing handshake of a connection by its ``close_timeout``.

        Does nothing for a connection that is not served (any more): one removed while its
        closing handshake was being started must not be remembered forever.
        """
        now = time.monotonic()
        wake = False
        with self._lock:  # one hold: a removal comes before all of it, or after it
            if conn in self._closing or conn not in self._conns:
                return
            self._closing.add(conn)
            if conn.close_timeout is not None:
                when = now + conn.close_timeout
                heapq.heappush(self._heap, (when, next(self._seq), _CLOSE, conn, b""))
                wake = when < self._sleep_until
        if wake:
            self._wake()
        self.take_over(conn)

    def linger(self, sock: socket.socket) -> None:
        """Discard a rejected socket's input until EOF (at most :data:`LINGER_TIMEOUT`
        seconds), then close it."""
        sock.setblocking(False)
        item = _Lingering(sock)

        def start() -> None:
            try:
                self._selector.register(sock, selectors.EVENT_READ, item)
            except (KeyError, ValueError, OSError):
                sock.close()

        with self._lock:
            if self._stopped and self._thread is None:
                sock.close()
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        self._schedule(time.monotonic() + LINGER_TIMEOUT, _LINGER, item)
        self._post(start)

    def _end_linger(self, item: _Lingering) -> None:
        if item.sock.fileno() == -1:
            return
        try:
            self._selector.unregister(item.sock)
        except (KeyError, ValueError):
            pass
        item.sock.close()

    def stop(self) -> None:
        """Stop the thread once every connection is gone (used by tests and shutdown)."""
        with self._lock:
            self._stopped = True
            started = self._thread is not None
        if not started:
            # No thread will ever run to close these (e.g. a server that only answered
            # HTTP errors): close them here, or they leak.
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()
            return
        self._wake()

    def _schedule(self, when: float, kind: int, conn: Any, arg: bytes = b"") -> None:
        with self._lock:
            heapq.heappush(self._heap, (when, next(self._seq), kind, conn, arg))
            wake = when < self._sleep_until
        if wake:
            self._wake()

    def _post(self, command: Callable[[], None]) -> None:
        self._commands.append(command)
        if threading.get_ident() != self._ident:
            self._wake()  # the thread itself runs commands before it sleeps again

    def _claim(self, conn: Served) -> _Watch | None:
        """Before this thread touches a connection's socket: its bookkeeping, or ``None`` if
        it may not (the connection is removed).

        Once claimed, a connection is closed by this thread (:meth:`_forget`); before, by
        whoever removes it. Called on the heartbeat thread only, which alone adds to
        ``_claimed``.
        """
        watch = self._claimed.get(conn)
        if watch is not None:
            return watch
        with self._lock:
            if conn not in self._conns:
                return None
            watch = self._claimed[conn] = _Watch()
        return watch

    def _wake(self) -> None:
        send = _send_holding_gil  # the GIL kept: see Transport.send_nowait
        if send is not None:
            send(self._wake_w, b"\0", 0)  # -1 if already woken, or stopped
            return
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already woken, or stopped

    # The thread.

    def _run(self) -> None:
        self._ident = threading.get_ident()
        selector = self._selector
        while True:
            with self._lock:
                if self._new:
                    self._schedule_new()
                if self._removed and (
                    not self._conns or self._removed >= _COMPACT_AFTER + len(self._conns) // 2
                ):
                    self._compact()
                now = time.monotonic()
                until = min(self._heap[0][0] if self._heap else math.inf, self._next_check)
                if (
                    self._stopped
                    and not self._conns
                    and not self._commands
                    and not any(kind == _LINGER for _, _, kind, _, _ in self._heap)
                ):
                    break
                if self._commands:
                    until = now  # posted by this thread (it doesn't wake itself): run them
                self._sleep_until = until
            timeout = None if until == math.inf else max(0.0, until - now)
            # In a method of its own: no local of this frame may keep the last connection
            # served alive while the thread sleeps.
            self._dispatch(selector.select(timeout))
            while self._commands:
                try:
                    self._commands.popleft()()
                except Exception:
                    self.logger.exception("error in heartbeat thread")
            self._run_deadlines()
            now = time.monotonic()
            if now >= self._next_check:
                self._check_idle(now)
        # The last check may have recorded connections gone since: keep none of them.
        self._recv_counts = {}
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _schedule_new(self) -> None:
        """Move the first pings of connections that still exist to the heap; under _lock."""
        for due, conn in self._new:
            if conn in self._conns:
                heapq.heappush(self._heap, (due, next(self._seq), _PING, conn, b""))
        self._new.clear()

    def _dispatch(self, ready: list[tuple[selectors.SelectorKey, int]]) -> None:
        """Serve the sockets that ``select`` found ready."""
        with self._lock:
            self._sleep_until = -math.inf  # awake: nobody needs to wake us
        for key, mask in ready:
            conn = key.data
            if conn is None:
                self._drain_wake()
                continue
            if type(conn) is _Lingering:
                try:
                    if conn.sock.recv(4096):
                        continue
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                self._end_linger(conn)
                continue
            try:
                self._serve(conn, mask)
            except Exception:
                self.logger.exception("error in heartbeat thread")

    def _compact(self) -> None:
        """Drop the deadlines of removed connections; under _lock.

        A removed connection's next ping and its close deadline stay in the heap until due
        (``ping_interval``, ``close_timeout``), each holding the connection with its buffers
        and compression state. Under churn that is thousands of closed connections; so the
        heap is rebuilt once the removed ones could make up a third of it, and when the
        last connection goes.
        """
        conns = self._conns
        self._heap = [entry for entry in self._heap if entry[2] == _LINGER or entry[3] in conns]
        heapq.heapify(self._heap)
        self._removed = 0

    def _drain_wake(self) -> None:
        recv = _recv_holding_gil  # the GIL kept: see Transport.recv_nowait
        try:
            if recv is not None:
                while recv(self._wake_r, 4096):
                    pass
                return
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError, ValueError):
            pass

    def _serve(self, conn: Served, mask: int) -> None:
        watch = self._claimed.get(conn)
        if watch is None:
            return  # forgotten since
        interest = watch.events
        if mask & selectors.EVENT_WRITE and not conn.hb_writable():
            interest &= ~selectors.EVENT_WRITE
        if mask & selectors.EVENT_READ and not conn.hb_read(watch.unpark):
            interest &= ~selectors.EVENT_READ
            watch.parked = False
        self._set_interest(conn, watch, interest)

    def _watch(self, conn: Served, events: int) -> None:
        """Have the selector watch ``events`` on the socket too (claiming the connection)."""
        watch = self._claim(conn)
        if watch is not None:
            self._set_interest(conn, watch, watch.events | events)

    def _set_interest(self, conn: Served, watch: _Watch, events: int) -> None:
        if conn not in self._conns:
            return
        old = watch.events
        if events == old:
            return
        sock = conn.transport.sock
        try:
            if not old:
                self._selector.register(sock, events, conn)
            elif not events:
                self._selector.unregister(sock)
            else:
                self._selector.modify(sock, events, conn)
        except (KeyError, ValueError, OSError):
            # Not watched at all now: not parked either, or ping() and the periodic check
            # would take it for read by this thread and never park it again.
            events = 0
            watch.parked = False
        watch.events = events

    def _park(self, conn: Served) -> None:
        watch = self._claim(conn)
        if watch is None:
            return
        watch.parked = True
        self._set_interest(conn, watch, watch.events | selectors.EVENT_READ)
        # Data may already wait in buffers the selector cannot see (TLS, the protocol's).
        self._serve(conn, selectors.EVENT_READ)

    def _forget(self, conn: Served) -> None:
        watch = self._claimed.get(conn)
        if watch is not None:
            self._set_interest(conn, watch, 0)
        with self._lock:
            removed = conn in self._conns
            self._conns.discard(conn)
            self._closing.discard(conn)
            self._claimed.pop(conn, None)
            self._removed += removed
        if removed:
            count_connections(-1)
        # _check_idle stops the periodic checks once no connection is left: stopping them
        # here would cost a wake-up in add() whenever connections come one at a time.
        conn.transport.close()

    def _check_idle(self, now: float) -> None:
        """Park the connections whose handler has been out of ``recv()`` since the previous
        check, :data:`PARK_DELAY` ago: out of it now, and not back in it meanwhile, which
        would have moved its count."""
        previous = self._recv_counts
        counts: dict[Served, int] = {}
        for conn in list(self._conns):
            watch = self._claimed.get(conn)
            if watch is not None and watch.parked:
                continue
            count = conn.hb_recv_count
            if count is None:
                continue
            if previous.get(conn) == count and conn.hb_wants_read():
                self._park(conn)
            else:
                counts[conn] = count
        # Rebuilt at each check: connections removed since are forgotten with it.
        self._recv_counts = counts
        with self._lock:
            self._next_check = now + PARK_DELAY if self._conns else math.inf

    def _run_deadlines(self) -> None:
        while True:
            with self._lock:
                if not self._heap or self._heap[0][0] > time.monotonic():
                    return
                _, _, kind, conn, arg = heapq.heappop(self._heap)
            if kind == _LINGER:
                self._end_linger(conn)
                continue
            if not self._claim(conn):
                continue
            try:
                if kind == _PING:
                    self._keepalive(conn)
                elif kind == _PONG:
                    if conn.hb_pong_overdue(arg):
                        self.logger.info("%s: keepalive ping timeout; failing connection", conn.id)
                        conn.hb_ping_timed_out()
                elif kind == _CLOSE:
                    conn.hb_close_timed_out()
            except Exception:
                self.logger.exception("error in heartbeat thread")

    def _keepalive(self, conn: Served) -> None:
        assert conn.ping_interval is not None
        payload = conn.hb_ping()
        if payload is None:
            return
        watch = self._claimed.get(conn)  # claimed before the deadline ran
        if not (watch is not None and watch.parked) and conn.hb_wants_read():
            self._park(conn)  # read the pong even if the handler is busy elsewhere
        now = time.monotonic()
        if conn.ping_timeout is not None:
            self._schedule(now + conn.ping_timeout, _PONG, conn, payload)
        self._schedule(now + conn.ping_interval, _PING, conn)


_client_heartbeat: Heartbeat | None = None
_client_heartbeat_lock = threading.Lock()


def client_heartbeat() -> Heartbeat:
    """The heartbeat thread shared by every client connection of this process."""
    global _client_heartbeat
    with _client_heartbeat_lock:
        if _client_heartbeat is None:
            _client_heartbeat = Heartbeat(
                "syncws-client-heartbeat", logging.getLogger("syncws.client")
            )
        return _client_heartbeat


_wsgi_heartbeat: tuple[int, Heartbeat] | None = None


def wsgi_heartbeat() -> Heartbeat:
    """The heartbeat thread shared by the server connections that no
    :class:`~syncws.Server` serves: those upgraded inside a WSGI app, and those made by
    :meth:`~syncws.ServerConnection.from_handshake` without a heartbeat of their own.

    Made on first use and remade in a forked child (a gunicorn worker forked from a master
    that preloaded the app): a selector must not be shared across processes.
    """
    global _wsgi_heartbeat
    with _client_heartbeat_lock:
        if _wsgi_heartbeat is None or _wsgi_heartbeat[0] != os.getpid():
            _wsgi_heartbeat = (
                os.getpid(),
                Heartbeat("syncws-wsgi-heartbeat", logging.getLogger("syncws.wsgi")),
            )
        return _wsgi_heartbeat[1]
