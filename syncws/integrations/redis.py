"""Fan-out across processes and hosts over Redis pub/sub: :class:`Hub`.

Each process (a server, a gunicorn worker, a cron script) makes one :class:`Hub` on the
same Redis. :meth:`Hub.publish` sends a message to a *topic*; every connection that
joined that topic (:meth:`Hub.join`), in every process, receives it, text or binary as
published. The topic :data:`EVERYONE` also reaches every connection of the servers
attached to a hub (:meth:`Hub.attach`).

How it works, and what it costs:

* **One Redis connection per hub**, whatever the number of topics and connections, and
  whether the process publishes, subscribes or both. It speaks RESP3 (``HELLO 3``, Redis
  6 or later), where a subscribed connection accepts any command and the messages of its
  subscriptions are told apart from replies. It is named ``syncws-hub-PID`` (``CLIENT
  LIST`` shows it). A process that publishes without subscribing (a cron script, a view
  in a process without a server) connects on its first :meth:`~Hub.publish`, and the
  publishing thread reads its own reply.
* **One subscriber thread per hub**, started by the first :meth:`~Hub.join` or
  :meth:`~Hub.attach`. From then on it alone reads the connection: it delivers the
  messages, and hands each reply to the thread that waits for it (replies come in the
  order of the commands). :meth:`~Hub.publish` writes its ``PUBLISH`` itself, under a
  lock, and waits for that reply; :meth:`~Hub.join` and :meth:`~Hub.leave` change the set
  of wanted topics and wake the thread, which sends ``SUBSCRIBE`` and ``UNSUBSCRIBE``.
* **Local delivery is** :func:`syncws.broadcast`: a message is queued on each member
  without waiting; a peer that does not keep up is skipped (logged at WARNING), so the
  subscriber thread never blocks on a peer and one slow client never delays the others.
* **Faults**: when the link to Redis drops (a restart, a network failure, no answer to
  a PING within :data:`HEALTH_CHECK_INTERVAL` twice), the thread logs one WARNING,
  reconnects with exponential back-off (:data:`RECONNECT_DELAYS`), logs one INFO once
  back and subscribes again to every wanted topic. Messages published meanwhile are lost:
  Redis pub/sub keeps nothing for absent subscribers. :meth:`~Hub.publish` while Redis is
  unreachable raises :exc:`RedisUnavailable` within ``timeout`` seconds; a publish whose
  reply was still due when the link dropped raises it too, at once.

The hub speaks the protocol itself, so it needs no client library: redis-py's
connection does not support being read by one thread while others write to it, and under
TLS nothing may use its socket from two threads (``syncws/integrations/_resp3.py`` gives
the details). See :doc:`/howto/redis`.
"""

from __future__ import annotations

import logging
import os
import random
import select
import socket
import threading
import time
import weakref
from collections.abc import Iterable
from ssl import SSLContext, SSLError
from types import TracebackType
from typing import Protocol
from urllib.parse import urlsplit

from ..runtime.broadcast import broadcast
from ..runtime.connection import Data
from ..runtime.options import LoggerLike
from ..runtime.server import ServerConnection
from ._resp3 import Address, Link, LinkLost, ProtocolError, Push, ReplyError, command

__all__ = [
    "EVERYONE",
    "HEALTH_CHECK_INTERVAL",
    "RECONNECT_DELAYS",
    "Hub",
    "RedisRefused",
    "RedisUnavailable",
]

#: The topic that reaches every connection of every server attached to a hub
#: (:meth:`Hub.attach`), besides the connections that joined it.
EVERYONE = "*"

#: Seconds without anything from Redis after which the subscriber sends a PING; with no
#: answer after as long again, the link is considered lost.
HEALTH_CHECK_INTERVAL = 15.0

#: Back-off between reconnection attempts, in seconds: the first, the factor, the most.
#: Each delay is randomised by +/- 20 % so that many processes do not reconnect at once.
RECONNECT_DELAYS = (0.05, 2.0, 5.0)

# A message on a channel: one byte for the type, then the payload (UTF-8 for text).
_TEXT, _BINARY = b"t", b"b"


class RedisUnavailable(ConnectionError):
    """Redis could not be reached, did not answer within the hub's ``timeout``, or the
    link dropped before it answered; or the hub is closed."""


class RedisRefused(Exception):
    """Redis answered a command with an error, e.g. ``NOPERM`` when its ACL does not let
    the hub's user publish to the channel."""


class _Owner(Protocol):
    """What :meth:`Hub.attach` takes: a :class:`~syncws.Server`, a
    :class:`~syncws.integrations.sidecar.Sidecar`, a Flask
    :class:`~syncws.integrations.flask.Sock`, a WSGI
    :class:`~syncws.integrations.wsgi.WebSocketApp`..."""

    @property
    def connections(self) -> set[ServerConnection]: ...


def _redacted(url: str) -> str:
    """``url`` without its user name and password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.hostname is None:  # unix:///path: no credentials in the netloc
        return f"{parts.scheme}://{parts.path}"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _encode(message: Data, text: bool | None) -> bytes:
    if isinstance(message, str):
        return (_BINARY if text is False else _TEXT) + message.encode()
    if isinstance(message, (bytes, bytearray, memoryview)):
        return (_TEXT if text else _BINARY) + bytes(message)
    raise TypeError("publish sends str or bytes-like messages")


class Hub:
    """Topics shared by every process connected to one Redis (see the module docstring).

    Thread-safe: any thread may publish, join and leave. Make one per process (the
    subscriber thread and the connection are per hub), after forking: in a child process,
    a hub inherited from its parent starts afresh, with no topics, thread or connection.

    Args:
        url: The Redis URL (``redis://[[user]:password@]host[:port][/db]``,
            ``rediss://`` for TLS, ``unix:///path``; as in redis-py, ``?db=``,
            ``?username=`` and ``?password=`` may be given as parameters). Logs and errors
            show it without credentials.
        prefix: Prepended to topic names to make Redis channel names, so that several
            applications can share a Redis.
        timeout: Seconds for connecting to Redis and for each command: the bound on
            :meth:`publish` when Redis is unreachable or does not answer.
        ssl: The TLS context for ``rediss://`` (certificate authorities, client
            certificate...); by default, :func:`ssl.create_default_context`, which checks
            the server's certificate and host name.
        logger: Logger, ``logging.getLogger("syncws.redis")`` by default.

    Raises:
        ValueError: The URL is not a Redis URL, or has a parameter the hub does not know.

    Example::

        hub = Hub("redis://localhost:6379/0")

        def chat(ws):
            hub.join(ws, "lobby")           # left automatically when ws closes
            for message in ws:
                hub.publish("lobby", message)
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        prefix: str = "syncws:",
        timeout: float = 2.0,
        ssl: SSLContext | None = None,
        logger: LoggerLike | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.logger = logger or logging.getLogger("syncws.redis")
        self._address = Address.parse(url)
        self._ssl = ssl
        self._where = _redacted(url)
        self._reset([])
        # A hub inherited through fork() must not believe it has a thread, a connection
        # and members: they are the parent's. What it is attached to and serves nobody
        # yet stays attached (a Sock or a Sidecar made at import in gunicorn's arbiter,
        # with --preload, serves in each worker), and the child subscribes at once; the
        # connections of the others are the parent's, not for the child to write to.
        ref = weakref.ref(self)

        def before() -> None:
            hub = ref()
            if hub is not None:
                hub._before_fork()

        def in_child() -> None:
            hub = ref()
            if hub is not None:
                hub._after_fork_in_child()

        os.register_at_fork(before=before, after_in_child=in_child)

    def _reset(self, owners: list[_Owner]) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._members: dict[str, set[ServerConnection]] = {}
        self._topics_of: dict[ServerConnection, set[str]] = {}
        self._owners = owners
        self._idle_owners: list[_Owner] = []  # those of _owners without connections
        # Channels Redis confirmed on the current link (the subscriber updates it).
        self._confirmed: set[bytes] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        # The connection to Redis, set under _changed; one thread connects at a time.
        self._link: Link | None = None
        self._connect_lock = threading.Lock()

    # Fork (see __init__).

    def _before_fork(self) -> None:
        """Remember the owners that serve nobody yet: they stay attached in a child."""
        with self._lock:
            owners = list(self._owners)
        self._idle_owners = [owner for owner in owners if not owner.connections]

    def _after_fork_in_child(self) -> None:
        """Forget the parent's thread, connection and members; subscribe again at once if
        an owner stayed attached (see :meth:`_before_fork`)."""
        # The child's copies of the parent's sockets: closing them leaves the parent's
        # open (shutting the link down would cut the parent's).
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        if self._link is not None:
            self._link.transport.close()
        closed = self._closed
        self._reset(self._idle_owners)
        self._closed = closed  # a closed hub stays closed
        if self._owners:
            with self._lock:
                self._start()

    # Publishing.

    def publish(self, topic: str, message: Data, text: bool | None = None) -> int:
        """Send ``message`` to every connection subscribed to ``topic``, in every process.

        Messages from one thread arrive in the order published. Works in any process,
        with or without a server, and starts no thread; it takes at most about
        ``timeout`` seconds.

        Args:
            topic: The topic (room), or :data:`EVERYONE`.
            message: ``str`` for a text message, bytes-like for binary.
            text: Override the message type, as in :meth:`~syncws.ServerConnection.send`.

        Returns:
            How many hubs (processes) subscribed to the topic received it, as Redis counts.

        Raises:
            RedisUnavailable: Redis cannot be reached (the message is not sent); or it did
                not answer within ``timeout`` seconds, or the link dropped before it
                answered (the message may have been delivered, or not); or the hub is
                closed.
            RedisRefused: Redis answered with an error (the message is not sent).
            TypeError: ``message`` is neither ``str`` nor bytes-like.
        """
        data = command(b"PUBLISH", self._channel(topic), _encode(message, text))
        deadline = time.monotonic() + self.timeout
        retry = True
        while True:
            link = self._link_for(deadline)
            try:
                return int(link.call(data, deadline))
            except LinkLost as exc:
                # A link found dead before writing (Redis restarted since the last
                # command): the message did not go; once more, on a new link.
                if exc.unsent and retry:
                    retry = False
                    continue
                raise RedisUnavailable(
                    f"lost the link to Redis at {self._where}: {exc} "
                    "(the message may or may not have been delivered)"
                ) from None
            except TimeoutError:
                raise RedisUnavailable(
                    f"Redis at {self._where} did not answer within {self.timeout} s "
                    "(the message may still be delivered)"
                ) from None
            except ReplyError as exc:
                raise RedisRefused(f"Redis at {self._where} refused to publish: {exc}") from None

    # Topics.

    def join(self, connection: ServerConnection, topic: str) -> None:
        """Subscribe ``connection`` to ``topic``; it leaves when it closes.

        Returns at once: the subscription reaches Redis shortly after (see
        :meth:`wait_subscribed`). Joining a closed connection does nothing.
        """
        self._channel(topic)  # checks the name
        with self._lock:
            topics = self._topics_of.get(connection)
            if topics is None:
                if not connection._call_when_closed(lambda: self.leave_all(connection)):
                    return
                topics = self._topics_of[connection] = set()
            topics.add(topic)
            members = self._members.setdefault(topic, set())
            members.add(connection)
            new = len(members) == 1
            self._start()
        if new:
            self._wake()

    def leave(self, connection: ServerConnection, topic: str) -> None:
        """Unsubscribe ``connection`` from ``topic`` (nothing if it is not subscribed)."""
        with self._lock:
            topics = self._topics_of.get(connection)
            if topics is None or topic not in topics:
                return
            topics.discard(topic)
            gone = self._remove_member(connection, topic)
        if gone:
            self._wake()

    def leave_all(self, connection: ServerConnection) -> None:
        """Unsubscribe ``connection`` from every topic. Called when it closes."""
        with self._lock:
            topics = self._topics_of.pop(connection, set())
            gone = [self._remove_member(connection, topic) for topic in topics]
        if any(gone):
            self._wake()

    def _remove_member(self, connection: ServerConnection, topic: str) -> bool:
        """Under ``_lock``: remove a member; whether the topic has none left."""
        members = self._members.get(topic)
        if members is None:
            return False
        members.discard(connection)
        if members:
            return False
        del self._members[topic]
        return True

    def topics(self, connection: ServerConnection) -> frozenset[str]:
        """The topics ``connection`` joined."""
        with self._lock:
            return frozenset(self._topics_of.get(connection, ()))

    def members(self, topic: str) -> set[ServerConnection]:
        """The connections of this process that joined ``topic``."""
        with self._lock:
            return set(self._members.get(topic, ()))

    def attach(self, owner: _Owner) -> None:
        """Deliver :data:`EVERYONE` to every connection of ``owner``: a
        :class:`~syncws.Server`, a :class:`~syncws.integrations.sidecar.Sidecar` (started
        or not), a Flask :class:`~syncws.integrations.flask.Sock` (rather than its
        ``upgrader``, which :meth:`~syncws.integrations.flask.Sock.init_app` may replace),
        or anything with a ``connections`` set.

        Starts the subscriber thread. In a process forked afterwards (gunicorn's
        ``--preload``), ``owner`` stays attached if it had no connection at the fork.
        """
        with self._lock:
            if owner not in self._owners:
                self._owners.append(owner)
            self._start()
        self._wake()

    def detach(self, owner: _Owner) -> None:
        """Undo :meth:`attach`."""
        with self._lock:
            if owner in self._owners:
                self._owners.remove(owner)
        self._wake()

    def wait_subscribed(self, timeout: float | None = None) -> bool:
        """Wait until Redis has confirmed every subscription made so far in this process.

        A message published before a subscription reached Redis does not reach it: wait
        for this when it matters (e.g. before telling a client it has joined).

        Returns:
            Whether every subscription was confirmed within ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not self._wanted() <= self._confirmed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    # Life cycle.

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the subscriber thread and close the Redis connection. Idempotent.

        Connections stay open; they no longer receive what is published. A
        :meth:`publish` waiting for its reply raises :exc:`RedisUnavailable`, and so
        does every later one.
        """
        with self._changed:
            self._closed = True
            thread = self._thread
            self._changed.notify_all()
        self._stop.set()
        self._wake()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._connect_lock:  # no link appears after this
            link = self._link
        if link is not None:
            link.drop("the hub is closed")
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()

    def __enter__(self) -> Hub:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # Internals.

    def _channel(self, topic: str) -> bytes:
        if not isinstance(topic, str) or not topic:
            raise ValueError("a topic is a non-empty str")
        return (self.prefix + topic).encode()

    def _link_for(self, deadline: float) -> Link:
        """The connection to Redis, connecting now (once at a time) if there is none.

        Raises:
            RedisUnavailable: Connecting failed, or did not end by ``deadline``, or the
                hub is closed.
        """
        link = self._link
        if link is not None and link.lost is None:
            return link
        if not self._connect_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise RedisUnavailable(f"cannot reach Redis at {self._where}: connecting timed out")
        try:
            link = self._link
            if link is not None and link.lost is None:
                return link  # another thread connected meanwhile
            if self._closed:
                raise RedisUnavailable("the hub is closed")
            name = f"syncws-hub-{os.getpid()}"
            try:
                link = Link.open(self._address, deadline, self._ssl, name)
            except ReplyError as exc:
                hint = " (the hub needs Redis 6 or later)" if "HELLO" in str(exc) else ""
                raise RedisUnavailable(f"Redis at {self._where} refused: {exc}{hint}") from exc
            except (OSError, SSLError, LinkLost, ProtocolError) as exc:
                raise RedisUnavailable(f"cannot reach Redis at {self._where}: {exc}") from exc
            with self._changed:
                self._link = link
                self._changed.notify_all()  # a subscriber waiting to reconnect takes it
            return link
        finally:
            self._connect_lock.release()

    def _wanted(self) -> set[bytes]:
        """Under ``_lock``: the channels this process needs."""
        wanted = {self._channel(topic) for topic in self._members}
        if self._owners:
            wanted.add(self._channel(EVERYONE))
        return wanted

    def _start(self) -> None:
        """Under ``_lock``: start the subscriber thread if it is not running."""
        if self._thread is not None or self._closed:
            return
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="syncws-redis-hub", daemon=True)
        self._thread.start()

    def _wake(self) -> None:
        wake_w = self._wake_w
        if wake_w is None:
            return
        try:
            wake_w.send(b"\0")
        except OSError:
            pass  # the buffer is full (a wake-up is pending anyway) or the hub closed

    # The subscriber thread.

    def _run(self) -> None:
        first, factor, most = RECONNECT_DELAYS
        delay = 0.0
        down = False  # the link is lost, and that was logged
        ever = False  # connected at least once
        while not self._stop.is_set():
            link: Link | None = None
            reason = "the hub is closed"
            try:
                link = self._link_for(time.monotonic() + self.timeout)
                link.adopt()
                if down:
                    self.logger.info("reconnected to Redis at %s", self._where)
                    down = False
                ever = True
                delay = 0.0
                self._listen(link)
            except (RedisUnavailable, LinkLost, ProtocolError, OSError) as exc:
                # RedisUnavailable says where already; its cause says what happened.
                reason = str(exc.__cause__ or exc)
                if not down and not self._stop.is_set():
                    self.logger.warning(
                        "%s Redis at %s: %s; reconnecting (what is published meanwhile is lost)",
                        "lost the link to" if ever else "cannot reach",
                        self._where,
                        reason,
                    )
                    down = True
            except Exception:
                # A bug, not a fault of Redis: log it, and keep the thread alive.
                self.logger.error("the Redis subscriber failed", exc_info=True)
                reason = "the subscriber failed"
                down = True
            finally:
                if link is not None:
                    link.drop(reason)
                    with self._changed:
                        if self._link is link:
                            self._link = None
                        self._confirmed.clear()
                        self._changed.notify_all()
            if self._stop.is_set():
                break
            delay = min(most, delay * factor if delay else first)
            with self._changed:
                # Until the delay ends, or a publisher connected again meanwhile.
                self._changed.wait_for(self._link_usable, delay * random.uniform(0.8, 1.2))

    def _link_usable(self) -> bool:
        """Under ``_lock``: whether the subscriber should stop waiting to reconnect."""
        link = self._link
        return self._closed or (link is not None and link.lost is None)

    def _listen(self, link: Link) -> None:
        """Read and deliver messages until the hub closes; raise when the link is lost."""
        assert self._wake_r is not None
        # poll(), not select(): a busy server's descriptors go past select()'s 1024.
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        sock = link.transport.sock.fileno()
        poller.register(sock, select.POLLIN)
        subscribed: set[bytes] = set()
        heard = time.monotonic()  # when Redis last sent something
        pinged = False
        while not self._stop.is_set():
            subscribed = self._reconcile(link, subscribed)
            interval = HEALTH_CHECK_INTERVAL
            quiet = time.monotonic() - heard
            if quiet >= 2 * interval:
                raise LinkLost("no answer to PING")
            if quiet >= interval and not pinged:
                link.check(b"", "PING", time.monotonic() + self.timeout)
                pinged = True
            wait = (2 if pinged else 1) * interval - quiet
            for fd, _ in poller.poll(max(0.0, wait) * 1000):
                if fd != sock:
                    try:
                        self._wake_r.recv(4096)
                    except BlockingIOError:
                        pass
                    continue
                read = link.read()
                if read is None:
                    continue
                heard, pinged = time.monotonic(), False
                pushes, refusals = read
                for refusal in refusals:
                    self.logger.error("Redis at %s refused %s", self._where, refusal)
                for push in pushes:
                    self._on_push(push)

    def _reconcile(self, link: Link, subscribed: set[bytes]) -> set[bytes]:
        """Subscribe to the channels now wanted, unsubscribe from the others."""
        with self._lock:
            wanted = self._wanted()
        added, removed = sorted(wanted - subscribed), sorted(subscribed - wanted)
        if added or removed:
            data = b""
            if added:
                data += command(b"SUBSCRIBE", *added)
            if removed:
                data += command(b"UNSUBSCRIBE", *removed)
            names = b", ".join([*added, *removed][:5]).decode(errors="replace")
            more = len(added) + len(removed) - 5
            label = f"(UN)SUBSCRIBE {names}" + (f" and {more} more" if more > 0 else "")
            link.check(data, label, time.monotonic() + self.timeout)
        return wanted

    def _on_push(self, push: Push) -> None:
        kind = push[0] if push else None
        if kind in (b"subscribe", b"unsubscribe") and len(push) == 3:
            with self._changed:
                if kind == b"subscribe":
                    self._confirmed.add(push[1])
                else:
                    self._confirmed.discard(push[1])
                self._changed.notify_all()
        elif kind == b"message" and len(push) == 3:
            self._deliver(push[1], push[2])

    def _deliver(self, channel: bytes, data: bytes) -> None:
        topic = channel[len(self.prefix) :].decode(errors="replace")
        body: Data
        if data[:1] == _TEXT:
            try:
                body = data[1:].decode()
            except UnicodeDecodeError:
                self.logger.warning("dropped a text message with invalid UTF-8 on %r", topic)
                return
        elif data[:1] == _BINARY:
            body = data[1:]
        else:
            self.logger.warning("dropped a message not published by a hub on %r", topic)
            return
        with self._lock:
            targets: Iterable[ServerConnection] = set(self._members.get(topic, ()))
            owners = list(self._owners) if topic == EVERYONE else []
        if owners:
            everyone = set(targets)
            for owner in owners:
                everyone |= owner.connections
            targets = everyone
        broadcast(targets, body)
