"""Fan-out across processes and hosts over Redis pub/sub: :class:`Hub`.

Each process (a server, a gunicorn worker, a cron script) makes one :class:`Hub` on the
same Redis. :meth:`Hub.publish` sends a message to a *topic*; every connection that
joined that topic (:meth:`Hub.join`), in every process, receives it, text or binary as
published. The topic :data:`EVERYONE` also reaches every connection of the servers
attached to a hub (:meth:`Hub.attach`).

How it works, and what it costs:

* **One subscriber thread and one subscribing Redis connection per hub**, whatever the
  number of topics and connections, started by the first :meth:`~Hub.join` or
  :meth:`~Hub.attach`. The thread alone owns that connection: :meth:`~Hub.join` and
  :meth:`~Hub.leave` change the set of wanted topics under a lock and wake it up; it
  sends the ``SUBSCRIBE`` and ``UNSUBSCRIBE`` commands itself. A process that publishes
  opens one more connection, on its first :meth:`~Hub.publish` (Redis accepts no other
  command than (UN)SUBSCRIBE and PING on a subscribed connection, in RESP2).
* **Local delivery is** :func:`syncws.broadcast`: a message is queued on each member
  without waiting; a peer that does not keep up is skipped (logged at WARNING), so the
  subscriber thread never blocks on a peer and one slow client never delays the others.
* **Faults**: when the link to Redis drops (a restart, a network failure, no answer to
  a PING within :data:`HEALTH_CHECK_INTERVAL` twice), the thread logs one WARNING,
  reconnects with exponential back-off (:data:`RECONNECT_DELAYS`), logs one INFO once
  back and subscribes again to every wanted topic. Messages published meanwhile are lost:
  Redis pub/sub keeps nothing for absent subscribers. :meth:`~Hub.publish` while Redis is
  unreachable raises :exc:`RedisUnavailable` within ``timeout`` seconds.

Needs redis-py: ``pip install syncws[redis]``. See :doc:`/howto/redis`.
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
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.retry import Retry

from ..runtime.broadcast import broadcast
from ..runtime.connection import Data
from ..runtime.server import ServerConnection

__all__ = [
    "EVERYONE",
    "HEALTH_CHECK_INTERVAL",
    "RECONNECT_DELAYS",
    "Hub",
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
# Subscribed whatever the topics, so that the subscribing connection exists (and is
# checked) from the start; nobody publishes on it.
_CONTROL = "\x00hub"


class RedisUnavailable(ConnectionError):
    """Redis could not be reached, or did not answer within the hub's ``timeout``."""


class _Owner(Protocol):
    """What :meth:`Hub.attach` takes: a :class:`~syncws.Server`, a
    :class:`~syncws.integrations.sidecar.Sidecar`, a WSGI
    :class:`~syncws.integrations.wsgi.Upgrader`..."""

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
    subscriber thread and connection are per hub), after forking: in a child process, a
    hub inherited from its parent starts afresh, with no topics and no thread.

    Args:
        url: The Redis URL (``redis://[[user]:password@]host[:port][/db]``,
            ``rediss://`` for TLS, ``unix:///path``). Logs and errors show it without
            credentials.
        prefix: Prepended to topic names to make Redis channel names, so that several
            applications can share a Redis.
        timeout: Seconds for connecting to Redis and for each command: the bound on
            :meth:`publish` when Redis is unreachable.
        logger: Logger, ``logging.getLogger("syncws.redis")`` by default.

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
        logger: logging.Logger | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.logger = logger or logging.getLogger("syncws.redis")
        self._where = _redacted(url)
        self._reset()
        # A hub inherited through fork() must not believe it has a thread and members.
        ref = weakref.ref(self)

        def in_child() -> None:
            hub = ref()
            if hub is not None:
                # The child's copies of the parent's wake-up sockets: closing them leaves
                # the parent's open. (redis-py closes its inherited connections itself.)
                for sock in (hub._wake_r, hub._wake_w):
                    if sock is not None:
                        sock.close()
                hub._reset()

        os.register_at_fork(after_in_child=in_child)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._members: dict[str, set[ServerConnection]] = {}
        self._topics_of: dict[ServerConnection, set[str]] = {}
        self._owners: list[_Owner] = []
        # Channels Redis confirmed on the current link (the subscriber updates it).
        self._confirmed: set[bytes] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._publisher: redis.Redis | None = None
        self._publish_lock = threading.Lock()

    # Publishing.

    def publish(self, topic: str, message: Data, text: bool | None = None) -> int:
        """Send ``message`` to every connection subscribed to ``topic``, in every process.

        Messages from one thread arrive in the order published. Works in any process,
        with or without a server, and starts no thread.

        Args:
            topic: The topic (room), or :data:`EVERYONE`.
            message: ``str`` for a text message, bytes-like for binary.
            text: Override the message type, as in :meth:`~syncws.ServerConnection.send`.

        Returns:
            How many hubs (processes) subscribed to the topic received it, as Redis counts.

        Raises:
            RedisUnavailable: Redis cannot be reached (the message is not sent), or did not
                answer within ``timeout`` seconds (it may still be delivered, if Redis was
                only slow).
            TypeError: ``message`` is neither ``str`` nor bytes-like.
        """
        payload = _encode(message, text)
        channel = self._channel(topic)
        with self._publish_lock:
            try:
                if self._publisher is None:
                    # With single_connection_client, the constructor connects.
                    self._publisher = self._client(socket_timeout=self.timeout)
                return int(self._publisher.publish(channel, payload))
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                raise RedisUnavailable(f"cannot publish to Redis at {self._where}: {exc}") from exc

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
        :class:`~syncws.Server`, or anything with a ``connections`` set."""
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
        """Stop the subscriber thread and close the Redis connections. Idempotent.

        Connections stay open; they no longer receive what is published.
        """
        with self._lock:
            self._closed = True
            thread = self._thread
        self._stop.set()
        self._wake()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._publish_lock:
            if self._publisher is not None:
                self._publisher.close()
                self._publisher = None
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

    def _client(self, *, socket_timeout: float | None, single: bool = True) -> redis.Redis:
        # The subscriber: no retries, or redis-py would reconnect silently, and messages
        # would be lost unlogged. The publisher: one retry on a connection error (fast:
        # refused, or closed by a Redis that restarted since the last publish), none on a
        # timeout, so that publish() takes at most about ``timeout``.
        retry = Retry(NoBackoff(), 1 if single else 0, supported_errors=(redis.ConnectionError,))
        return redis.Redis.from_url(
            self.url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=self.timeout,
            socket_keepalive=True,
            retry=retry,
            single_connection_client=single,
        )

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
            # The client owns the connection pool: it must live as long as the PubSub,
            # whose connection its finaliser would close.
            client = self._client(socket_timeout=max(self.timeout, 5.0), single=False)
            pubsub = client.pubsub()
            try:
                with self._lock:
                    wanted = self._wanted()
                pubsub.subscribe(self._channel(_CONTROL), *wanted)
                if down:
                    self.logger.info("reconnected to Redis at %s", self._where)
                    down = False
                ever = True
                delay = 0.0
                self._listen(pubsub)
            except (redis.RedisError, OSError) as exc:
                if not down and not self._stop.is_set():
                    self.logger.warning(
                        "%s Redis at %s: %s; reconnecting (what is published meanwhile is lost)",
                        "lost the link to" if ever else "cannot reach",
                        self._where,
                        exc,
                    )
                    down = True
            except Exception:
                # A bug, not a fault of Redis: log it, and keep the thread alive.
                self.logger.error("the Redis subscriber failed", exc_info=True)
                down = True
            finally:
                try:
                    pubsub.close()
                    client.close()
                except (redis.RedisError, OSError):
                    pass
                with self._changed:
                    self._confirmed.clear()
            if self._stop.is_set():
                break
            delay = min(most, delay * factor if delay else first)
            self._stop.wait(delay * random.uniform(0.8, 1.2))

    def _listen(self, pubsub: PubSub) -> None:
        """Read and deliver messages until the hub closes; raise when the link is lost."""
        assert self._wake_r is not None and pubsub.connection is not None
        # The socket, to wait on it and on the wake-up socket at once: redis-py offers no
        # such wait, and polling with a short timeout would cost CPU while idle.
        sock = pubsub.connection._sock
        assert sock is not None
        subscribed = {self._channel(_CONTROL), *pubsub.channels}
        heard = time.monotonic()
        while not self._stop.is_set():
            subscribed = self._reconcile(pubsub, subscribed)
            ready, _, _ = select.select([self._wake_r, sock], [], [], HEALTH_CHECK_INTERVAL)
            if self._wake_r in ready:
                try:
                    self._wake_r.recv(4096)
                except BlockingIOError:
                    pass
            if sock in ready:
                heard = time.monotonic()
                while (message := pubsub.get_message(timeout=0)) is not None:
                    self._dispatch(message)
            elif not ready:
                if time.monotonic() - heard > 2 * HEALTH_CHECK_INTERVAL:
                    raise redis.TimeoutError("no answer to PING")
                pubsub.ping()

    def _reconcile(self, pubsub: PubSub, subscribed: set[bytes]) -> set[bytes]:
        """Subscribe to the channels now wanted, unsubscribe from the others."""
        with self._lock:
            wanted = self._wanted() | {self._channel(_CONTROL)}
        added, removed = wanted - subscribed, subscribed - wanted
        if added:
            pubsub.subscribe(*added)
        if removed:
            pubsub.unsubscribe(*removed)  # type: ignore[no-untyped-call]
        return wanted

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind, channel = message["type"], message["channel"]
        if kind in ("subscribe", "unsubscribe"):
            with self._changed:
                if kind == "subscribe":
                    self._confirmed.add(channel)
                else:
                    self._confirmed.discard(channel)
                self._changed.notify_all()
            return
        if kind != "message":
            return  # the answer to a PING
        topic = channel[len(self.prefix) :].decode(errors="replace")
        data: bytes = message["data"]
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
