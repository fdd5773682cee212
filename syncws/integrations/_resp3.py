"""One connection to Redis, in RESP3, that any thread writes to and one thread reads.

This is what :class:`~syncws.integrations.redis.Hub` needs to publish and subscribe over a
single connection, and no more: the commands it sends (``HELLO``, ``SELECT``,
``(UN)SUBSCRIBE``, ``PUBLISH``, ``PING``) and every RESP3 reply type. With RESP3 (Redis 6
and later) a subscribed connection accepts every command, and the messages of its
subscriptions come as *push* items, told apart from replies by their first byte (``>``).
Replies come in the order of the commands, so a queue of waiters, one per command that
has a reply, pairs them.

Why not redis-py, although the hub used it before (and tests still use it): a link that
one thread reads while others write is not something its ``Connection`` supports.

* ``send_packed_command()`` connects again by itself when the socket is gone, and may
  first run a health check that *reads* a reply: a writer racing with the reader that
  just dropped a lost link would open a second connection, with no subscription, or
  consume a reply that belongs to another thread.
* A read with a timeout (``can_read(timeout)``, ``read_response(timeout=...)``) calls
  ``settimeout()`` on the shared socket, which changes the timeout of a write blocked in
  another thread; a read that times out disconnects.
* Its RESP3 parser either hands push items to a callback and then blocks until the next
  reply, or returns them as lists that look like array replies.
* Under TLS its socket is an :class:`ssl.SSLSocket`, whose OpenSSL session must not be
  read and written by two threads at once.

So the hub speaks the protocol itself, on top of syncws's own
:class:`~syncws.runtime.transport.Transport` (plain or TLS through a memory BIO, made for
one reader and one writer at a time), and the codec below is about a hundred lines.
"""

from __future__ import annotations

import collections
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..runtime.transport import TLSTransport, Transport

__all__: list[str] = []

_CRLF = b"\r\n"
# Query parameters of a Redis URL that the hub understands (redis-py's names).
_QUERY = {"db", "username", "password"}


class ReplyError(Exception):
    """An error reply (``-ERR ...``, ``-NOPERM ...``); its message is Redis's."""


class ProtocolError(Exception):
    """What came from the server is not RESP3: not Redis, or not Redis 6 or later."""


class LinkLost(Exception):
    """The link failed, or was dropped; its message says why.

    Attributes:
        unsent: The link was found lost before the command was written: it did not run.
    """

    def __init__(self, reason: str, *, unsent: bool = False) -> None:
        super().__init__(reason)
        self.unsent = unsent


class Push(list[Any]):
    """A push item (``>``): a message of a subscription, or its confirmation."""


class _Incomplete(Exception):
    """The buffer ends in the middle of an item."""


def command(*args: bytes | str | int) -> bytes:
    """A command as Redis reads it: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts += (b"$%d\r\n" % len(data), data, _CRLF)
    return b"".join(parts)


def _parse(buffer: bytearray, pos: int) -> tuple[Any, int]:
    """The item that starts at ``pos`` and where the next one starts."""
    end = buffer.find(_CRLF, pos)
    if end < 0:
        raise _Incomplete
    kind, line, pos = buffer[pos], bytes(buffer[pos + 1 : end]), end + 2
    if kind in b"$!=":  # blob string, blob error, verbatim string
        size = int(line)
        if size < 0:
            return None, pos  # RESP2's null
        if len(buffer) < pos + size + 2:
            raise _Incomplete
        data = bytes(buffer[pos : pos + size])
        pos += size + 2
        if kind == ord("!"):
            return ReplyError(data.decode(errors="replace")), pos
        return (data[4:] if kind == ord("=") else data), pos  # "txt:" before verbatim text
    if kind in b"*>~%|":  # array, push, set, map, attribute
        count = int(line)
        if count < 0:
            return None, pos
        items = []
        for _ in range(count * 2 if kind in b"%|" else count):
            item, pos = _parse(buffer, pos)
            items.append(item)
        if kind == ord("|"):  # attributes describe the next item: skip them
            return _parse(buffer, pos)
        if kind == ord("%"):
            return dict(zip(items[::2], items[1::2], strict=True)), pos
        return (Push(items) if kind == ord(">") else items), pos
    if kind == ord("+"):
        return line, pos
    if kind == ord("-"):
        return ReplyError(line.decode(errors="replace")), pos
    if kind in b":(":
        return int(line), pos
    if kind == ord(","):
        return float(line), pos
    if kind == ord("#"):
        return line == b"t", pos
    if kind == ord("_"):
        return None, pos
    raise ProtocolError(f"unexpected reply type {chr(kind)!r}")


class Parser:
    """Turns the bytes read into complete items, keeping the rest for later."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """The items that ``data`` completes, in order.

        Raises:
            ProtocolError: The bytes are not RESP.
        """
        buffer = self._buffer
        buffer += data
        items, pos = [], 0
        try:
            while pos < len(buffer):
                item, pos_after = _parse(buffer, pos)
                items.append(item)
                pos = pos_after
        except _Incomplete:
            pass
        except (ValueError, IndexError) as exc:
            raise ProtocolError(f"malformed reply: {exc}") from None
        del buffer[:pos]
        return items


@dataclass(frozen=True)
class Address:
    """Where Redis is, and how to log in: a parsed Redis URL."""

    tls: bool
    host: str
    port: int
    path: str | None  # a Unix socket
    username: str | None
    password: str | None
    db: int

    @classmethod
    def parse(cls, url: str) -> Address:
        """Parse ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS) or
        ``unix:///path``, with redis-py's ``?db=``, ``?username=`` and ``?password=``.

        Raises:
            ValueError: Another scheme, a bad port or database number, or another query
                parameter; the message never shows the password.
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError("a Redis URL starts with redis://, rediss:// or unix://")
        query = dict(parse_qsl(parts.query))
        unknown = sorted(query.keys() - _QUERY)
        if unknown:
            raise ValueError(
                f"unsupported parameter {unknown[0]!r} in the Redis URL "
                "(only db, username and password; TLS settings go in Hub(ssl=...))"
            )
        username = query.get("username") or (unquote(parts.username) if parts.username else None)
        password = query.get("password") or (unquote(parts.password) if parts.password else None)
        try:
            port = parts.port or 6379
            if "db" in query:
                db = int(query["db"])
            elif scheme != "unix" and parts.path.strip("/"):
                db = int(unquote(parts.path).strip("/"))
            else:
                db = 0
        except ValueError:
            raise ValueError("bad port or database number in the Redis URL") from None
        if scheme == "unix":
            if not parts.path:
                raise ValueError("a unix:// Redis URL needs a path: unix:///run/redis.sock")
            return cls(False, "", 0, unquote(parts.path), username, password, db)
        host = parts.hostname or "localhost"
        return cls(scheme == "rediss", host, port, None, username, password, db)


class _Waiter:
    """The reply to one command, for the thread that waits for it.

    ``label`` marks a *check*: a ``PING`` sent after commands whose only answers are push
    items unless Redis refuses them (``(UN)SUBSCRIBE``). An error reply while a check is
    first in line is that refusal: it is reported, and the check waits for its ``PONG``.
    """

    __slots__ = ("_done", "error", "label", "value")

    def __init__(self, label: str | None = None) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self.label = label
        self.value: Any = None
        self.error: BaseException | None = None

    def resolve(self, value: Any, error: BaseException | None = None) -> None:
        self.value, self.error = value, error
        self._done.release()

    def wait(self, timeout: float) -> bool:
        return self._done.acquire(timeout=max(0.0, timeout))


class Link:
    """A connection to Redis: any thread sends commands; replies are read either by the
    sender itself, holding :attr:`lock` until it has its reply (*synchronous* mode), or,
    once a thread called :meth:`adopt`, by that thread alone, which hands each reply to the
    waiter queued when the command was sent.

    Ownership: :attr:`lock` serialises writers, the queue of waiters and the mode; only
    the reader (the synchronous sender, or the adopting thread) reads; only the reader
    closes the socket (:meth:`drop`), anyone may shut it down (which wakes the reader).
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.parser = Parser()
        self.lock = threading.Lock()
        self.lost: str | None = None  # why this link is unusable, once it is
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._adopted = False

    @classmethod
    def open(
        cls, address: Address, deadline: float, context: ssl.SSLContext | None, name: str
    ) -> Link:
        """Connect, log in with ``HELLO 3`` (naming the connection ``name``) and select the
        database, all before ``deadline``.

        Raises:
            OSError: Connecting failed (``TimeoutError`` past the deadline).
            ssl.SSLError: The TLS handshake failed.
            ReplyError: Redis refused the login (wrong password...), or does not know
                ``HELLO`` (Redis 5 or older).
            LinkLost: Redis closed the connection.
            ProtocolError: It is not Redis that answered.
        """
        timeout = max(0.001, deadline - time.monotonic())
        if address.path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(address.path)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection((address.host, address.port), timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        try:
            transport: Transport
            if address.tls:
                transport = TLSTransport(
                    sock,
                    context or ssl.create_default_context(),
                    server_side=False,
                    server_hostname=address.host,
                )
                transport.handshake(deadline)
            else:
                transport = Transport(sock)
            link = cls(transport)
            hello: list[bytes | str | int] = [b"HELLO", 3]
            if address.password is not None:
                hello += [b"AUTH", address.username or "default", address.password]
            link.call(command(*hello, b"SETNAME", name), deadline)
            if address.db:
                link.call(command(b"SELECT", address.db), deadline)
        except BaseException:
            sock.close()
            raise
        return link

    def call(self, data: bytes, deadline: float) -> Any:
        """Send a command and return its reply.

        Raises:
            ReplyError: Redis answered with an error.
            TimeoutError: No reply by ``deadline`` (the command may still run); in
                synchronous mode the link is then lost, for a late reply would be taken
                for the next command's.
            LinkLost: The link is, or got, lost: whether the command ran is unknown.
        """
        waiter = _Waiter()
        if not self.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise TimeoutError("another command is still waiting for Redis")
        try:
            if self._adopted:
                self._send(data, deadline, waiter)
            else:
                self._send(data, deadline)
                return _value(self._read_reply(deadline))
        finally:
            self.lock.release()
        if not waiter.wait(deadline - time.monotonic()):
            raise TimeoutError("Redis did not answer in time")  # the reader drops the reply
        if waiter.error is not None:
            raise waiter.error
        return _value(waiter.value)

    def check(self, data: bytes, label: str, deadline: float) -> None:
        """For the reader: send ``data`` and a ``PING`` (see :class:`_Waiter`), without
        waiting for the answers.

        Raises:
            LinkLost: The link is lost.
            TimeoutError: ``data`` could not be written by ``deadline``.
        """
        if not self.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise TimeoutError("writing to Redis is stuck")
        try:
            self._send(data + command(b"PING"), deadline, _Waiter(label))
        finally:
            self.lock.release()

    def adopt(self) -> None:
        """Make the calling thread the only reader: from now on it reads every reply, with
        :meth:`read`, and hands them to their waiters.

        Raises:
            LinkLost: The link is lost.
        """
        with self.lock:  # no synchronous caller is waiting for its reply meanwhile
            if self.lost is not None:
                raise LinkLost(self.lost)
            self._adopted = True

    def read(self) -> tuple[list[Push], list[str]] | None:
        """For the reader, once the socket is readable: the push items read (the replies
        go to their waiters) and the refusals found by checks; ``None`` if nothing was
        there to read after all.

        Raises:
            LinkLost: Redis closed the connection, or sent a reply nobody waits for.
            ProtocolError: It is not RESP.
            OSError: The socket failed.
        """
        data = self.transport.recv_nowait()
        if data is None:
            return None
        if not data:
            raise LinkLost(self.lost or "Redis closed the connection")
        pushes: list[Push] = []
        refusals: list[str] = []
        for item in self.parser.feed(data):
            if isinstance(item, Push):
                pushes.append(item)
                continue
            with self.lock:
                if not self._waiters:
                    raise LinkLost("Redis sent a reply to no command")
                waiter = self._waiters[0]
                if waiter.label is not None and isinstance(item, ReplyError):
                    refusals.append(f"{waiter.label}: {item}")
                    continue
                self._waiters.popleft()
            waiter.resolve(item)
        return pushes, refusals

    def shutdown(self, reason: str) -> None:
        """Mark the link lost and wake its reader (it reads end of file), from any thread."""
        if self.lost is None:
            self.lost = reason
        self.transport.shutdown()

    def drop(self, reason: str) -> None:
        """For the reader: close the link; whoever waits for a reply gets :exc:`LinkLost`."""
        self.shutdown(reason)  # first: a writer blocked on the socket lets go of the lock
        with self.lock:
            waiters = list(self._waiters)
            self._waiters.clear()
            self.transport.close()
        lost = LinkLost(f"{self.lost}, before Redis answered")
        for waiter in waiters:
            waiter.resolve(None, lost)

    def _send(self, data: bytes, deadline: float, waiter: _Waiter | None = None) -> None:
        """Under :attr:`lock`: write ``data``, queueing ``waiter`` first; on failure the
        stream is broken (part of a command may be out), so the link is lost."""
        if self.lost is not None:
            raise LinkLost(self.lost, unsent=True)
        if not self._adopted:
            stale = self._stale()
            if stale is not None:
                raise LinkLost(self._fail(stale), unsent=True)
        if waiter is not None:
            self._waiters.append(waiter)
        try:
            transport = self.transport
            transport.send(transport.encode(data), deadline)
        except (OSError, ValueError) as exc:
            raise LinkLost(self._fail(f"writing to Redis failed: {exc}")) from None
        except TimeoutError:
            self._fail("writing to Redis timed out")
            raise

    def _stale(self) -> str | None:
        """Synchronous mode, under :attr:`lock`: why the link is dead, if it is.

        No reply is due, so what can be read now is the end of a connection that Redis
        closed (a restart) since the last command, or TLS records without data (session
        tickets).
        """
        try:
            data = self.transport.recv_nowait()
            if data is None:
                return None
            if not data:
                return "Redis closed the connection"
            if all(isinstance(item, Push) for item in self.parser.feed(data)):
                return None
        except (OSError, ProtocolError) as exc:
            return f"reading from Redis failed: {exc}"
        return "Redis sent a reply to no command"

    def _read_reply(self, deadline: float) -> Any:
        """Under :attr:`lock`, synchronous mode: read until the reply (the only one due)."""
        while True:
            try:
                data = self.transport.recv(max(0.0, deadline - time.monotonic()))
            except OSError as exc:
                raise LinkLost(self._fail(f"reading from Redis failed: {exc}")) from None
            if data is None:
                self._fail("Redis did not answer in time")
                raise TimeoutError("Redis did not answer in time")
            if not data:
                raise LinkLost(self._fail("Redis closed the connection"))
            try:
                items = self.parser.feed(data)
            except ProtocolError:
                self._fail("not a RESP3 reply")
                raise
            for item in items:
                if not isinstance(item, Push):  # no subscription here: no push either
                    return item

    def _fail(self, reason: str) -> str:
        """Under :attr:`lock`: the link is lost (why: returned); without a reader, close
        it here."""
        self.shutdown(reason)
        if not self._adopted:
            self.transport.close()
        return self.lost or reason


def _value(reply: Any) -> Any:
    if isinstance(reply, ReplyError):
        raise reply
    return reply
