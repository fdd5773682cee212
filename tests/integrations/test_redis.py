"""Tests for syncws.integrations.redis: fan-out over a real redis-server."""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from conftest import ServerFactory, program
from rawws import raw_client, wait_for
from services import RedisServer
from wsgi_servers import Process, free_port, gunicorn_options, wait_listening

import syncws
from syncws.integrations import redis as redis_module
from syncws.integrations.redis import EVERYONE, Hub, RedisUnavailable, _redacted

UriFactory = Callable[..., str]
APPS = str(Path(__file__).resolve().parents[1] / "redis_apps.py")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def hub(redis_server: RedisServer) -> Iterator[Hub]:
    """A hub on the test's redis-server, closed at teardown."""
    with Hub(redis_server.url) as instance:
        yield instance


def rooms(hub: Hub) -> Callable[[syncws.ServerConnection], None]:
    """A handler that joins the topic named by the path, says ``joined``, then holds."""

    def handler(ws: syncws.ServerConnection) -> None:
        assert ws.request is not None
        for topic in ws.request.path.lstrip("/").split(","):
            hub.join(ws, topic)
        assert hub.wait_subscribed(10)
        ws.send("joined")
        for _ in ws:
            pass

    return handler


def join(url: str, **options: object) -> syncws.ClientConnection:
    """A client of the ``rooms`` handler, once it has joined."""
    client = syncws.connect(url, **options)  # type: ignore[arg-type]
    assert client.recv(timeout=10) == "joined"
    return client


def test_publish_reaches_members_with_type_preserved(
    hub: Hub, server: ServerFactory, uri: UriFactory
) -> None:
    """A member of a topic gets text as str and binary as bytes; others get nothing."""
    srv = server(rooms(hub))
    with join(uri(srv, "/a")) as a, join(uri(srv, "/b")) as b:
        assert hub.publish("a", "text") == 1
        assert hub.publish("a", b"\x00\xff") == 1
        assert hub.publish("a", "forced", text=False) == 1
        assert a.recv(timeout=5) == "text"
        assert a.recv(timeout=5) == b"\x00\xff"
        assert a.recv(timeout=5) == b"forced"
        with pytest.raises(TimeoutError):
            b.recv(timeout=0.3)


def test_everyone_reaches_every_connection_of_an_attached_server(
    hub: Hub, server: ServerFactory, uri: UriFactory
) -> None:
    """EVERYONE reaches each connection of an attached server once, members or not."""
    srv = server(rooms(hub))
    hub.attach(srv)
    assert hub.wait_subscribed(10)
    with join(uri(srv, "/a")) as a, join(uri(srv, "/*")) as star:
        hub.publish(EVERYONE, "all")
        assert a.recv(timeout=5) == "all"
        assert star.recv(timeout=5) == "all"
        with pytest.raises(TimeoutError):
            star.recv(timeout=0.3)  # a member of "*" too, but once
        hub.detach(srv)
        hub.publish(EVERYONE, "again")
        assert star.recv(timeout=5) == "again"
        with pytest.raises(TimeoutError):
            a.recv(timeout=0.3)


def test_closed_connection_leaves_every_topic(
    hub: Hub, redis_server: RedisServer, server: ServerFactory, uri: UriFactory
) -> None:
    """A connection that closes leaves its topics, and the hub unsubscribes from Redis."""
    srv = server(rooms(hub))
    check = redis.Redis.from_url(redis_server.url)
    try:
        with join(uri(srv, "/x,y")):
            (conn,) = srv.connections
            assert hub.topics(conn) == {"x", "y"}
            assert set(check.pubsub_channels("syncws:[xy]")) == {b"syncws:x", b"syncws:y"}
        assert wait_for(lambda: not hub.members("x") and not hub.members("y"), 5)
        assert hub.topics(conn) == frozenset()
        assert wait_for(lambda: not check.pubsub_channels("syncws:[xy]"), 5)
        hub.join(conn, "z")  # closed: nothing happens
        assert hub.members("z") == set()
    finally:
        check.close()


def test_leave(hub: Hub, server: ServerFactory, uri: UriFactory) -> None:
    """A connection that leaves a topic gets nothing more from it, and stays in others."""
    srv = server(rooms(hub))
    with join(uri(srv, "/x,y")) as client:
        (conn,) = srv.connections
        hub.leave(conn, "x")
        hub.leave(conn, "never joined")
        hub.publish("x", "lost")
        hub.publish("y", "kept")
        assert client.recv(timeout=5) == "kept"
        hub.leave_all(conn)
        hub.publish("y", "lost")
        with pytest.raises(TimeoutError):
            client.recv(timeout=0.3)


def test_one_thread_and_one_subscribing_connection(
    hub: Hub, redis_server: RedisServer, server: ServerFactory, uri: UriFactory
) -> None:
    """Whatever the number of topics and connections: one thread, one subscriber link."""
    srv = server(rooms(hub))
    clients = [join(uri(srv, "/t0,t1,common"))]
    before = threading.active_count()
    clients += [join(uri(srv, f"/t{n},t{n + 1},common")) for n in range(1, 8)]
    check = redis.Redis.from_url(redis_server.url)
    try:
        hub.publish("common", "x")
        for client in clients:
            assert client.recv(timeout=5) == "x"
        hubs = [t for t in threading.enumerate() if t.name == "syncws-redis-hub"]
        assert len(hubs) == 1
        # A pool thread per connection; nothing per topic.
        assert threading.active_count() == before + 7
        subscribers = [c for c in check.client_list() if int(c.get("sub", 0)) > 0]
        assert len(subscribers) == 1
        assert int(subscribers[0]["sub"]) == 1 + 10  # control channel + t0..t8 + common
        others = [c for c in check.client_list() if c["id"] != str(check.client_id())]
        assert len(others) == 2  # the subscriber and the publisher
    finally:
        check.close()
        for client in clients:
            client.close()


def test_stalled_client_does_not_hold_up_the_others(
    hub: Hub, server: ServerFactory, uri: UriFactory
) -> None:
    """A member that stops reading is skipped; the others get every message, promptly."""
    srv = server(rooms(hub), compression=None)
    fast = [join(uri(srv, "/room"), compression=None) for _ in range(2)]
    stalled, _ = raw_client(srv, "/room", rcvbuf=4096)
    try:
        assert wait_for(lambda: len(hub.members("room")) == 3, 5)
        payload = b"x" * 16384
        start = time.monotonic()
        for n in range(200):
            hub.publish("room", payload + n.to_bytes(2, "big"))
        for client in fast:
            for n in range(200):
                assert client.recv(timeout=5) == payload + n.to_bytes(2, "big")
        assert time.monotonic() - start < 10
    finally:
        stalled.close()
        for client in fast:
            client.close()


def test_two_server_processes_and_publishers(redis_server: RedisServer) -> None:
    """Two server processes, two publisher processes: every client of both servers gets
    every message once, type preserved, in publish order per publisher."""
    count = 100
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(2):
            proc = stack.enter_context(program([APPS, "server", redis_server.url]))
            line = proc.line(timeout=20)
            assert line.startswith("ready "), line
            ports.append(int(line.split()[1]))
        clients = [
            stack.enter_context(join(f"ws://127.0.0.1:{port}/room"))
            for port in ports
            for _ in range(2)
        ]
        publishers = [
            subprocess.Popen([sys.executable, APPS, "publish", redis_server.url, "room", name,
                              str(count)])
            for name in ("p", "q")
        ]  # fmt: skip
        for publisher in publishers:
            assert publisher.wait(30) == 0
        for client in clients:
            received = [client.recv(timeout=10) for _ in range(2 * count)]
            with pytest.raises(TimeoutError):
                client.recv(timeout=0.2)
            for name in ("p", "q"):
                mine = [m for m in received if (m if isinstance(m, str) else m.decode())[0] == name]
                expected = [f"{name}:{n}" if n % 2 == 0 else f"{name}:{n}".encode()
                            for n in range(count)]  # fmt: skip
                assert mine == expected


def wait_log(caplog: pytest.LogCaptureFixture, level: int, text: str) -> bool:
    return wait_for(
        lambda: any(r.levelno == level and text in r.getMessage() for r in caplog.records), 15
    )


def test_redis_restart_then_delivery_again(
    hub: Hub,
    redis_server: RedisServer,
    server: ServerFactory,
    uri: UriFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis restarting: one WARNING, one INFO once back, every topic subscribed again,
    delivery again; publish() while it is down raises RedisUnavailable at once."""
    caplog.set_level(logging.INFO, logger="syncws.redis")
    srv = server(rooms(hub))
    hub.attach(srv)
    with join(uri(srv, "/room")) as client:
        hub.publish("room", "before")
        assert client.recv(timeout=5) == "before"
        redis_server.stop()
        assert wait_log(caplog, logging.WARNING, "lost the link to Redis")
        start = time.monotonic()
        with pytest.raises(RedisUnavailable):
            hub.publish("room", "lost")
        assert time.monotonic() - start < hub.timeout
        time.sleep(0.5)  # a few reconnection attempts fail meanwhile
        redis_server.start()
        assert wait_log(caplog, logging.INFO, "reconnected to Redis")
        assert hub.wait_subscribed(10)
        hub.publish("room", "after")
        hub.publish(EVERYONE, "everyone")
        assert client.recv(timeout=5) == "after"
        assert client.recv(timeout=5) == "everyone"
        # The server and its handler never noticed.
        assert client.state is syncws.State.OPEN
    records = [r for r in caplog.records if r.name == "syncws.redis"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.INFO]


def test_unreachable_redis(server: ServerFactory, caplog: pytest.LogCaptureFixture) -> None:
    """With nothing listening, publish() fails fast with RedisUnavailable, the subscriber
    warns once and retries, and neither shows the password of the URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        url = f"redis://user:s3cr3t@127.0.0.1:{port}/0"
        with Hub(url, timeout=1) as hub:
            start = time.monotonic()
            with pytest.raises(RedisUnavailable) as raised:
                hub.publish("t", "x")
            assert time.monotonic() - start < 1
            assert "s3cr3t" not in str(raised.value)
            assert f"redis://127.0.0.1:{port}/0" in str(raised.value)
            hub.attach(server())
            assert wait_log(caplog, logging.WARNING, "cannot reach Redis")
            assert not hub.wait_subscribed(0.2)
            time.sleep(0.3)  # several more attempts
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1
        assert "s3cr3t" not in caplog.text


def test_publish_times_out_on_a_silent_redis() -> None:
    """A Redis that accepts connections and never answers: publish() raises within about
    ``timeout`` seconds."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with Hub(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", timeout=0.5) as hub:
            start = time.monotonic()
            with pytest.raises(RedisUnavailable):
                hub.publish("t", "x")
            assert time.monotonic() - start < 2


def test_arguments_are_checked(hub: Hub) -> None:
    """Topics are non-empty strings; messages are str or bytes-like."""
    with pytest.raises(ValueError):
        hub.publish("", "x")
    with pytest.raises(TypeError):
        hub.publish("t", 1)  # type: ignore[arg-type]


def test_redacted() -> None:
    """URLs lose their credentials, and only those, in logs and errors."""
    assert _redacted("redis://u:p@host:1/2") == "redis://host:1/2"
    assert _redacted("rediss://:p@[::1]/0") == "rediss://[::1]/0"
    assert _redacted("unix:///run/redis.sock") == "unix:///run/redis.sock"


def test_flask_chat_example_across_gunicorn_workers(redis_server: RedisServer) -> None:
    """examples/flask_redis_chat.py under gunicorn -w 2: a message sent to a room by a
    client of one worker reaches the members held by the other worker, and a message
    POSTed over HTTP reaches them all."""
    port = free_port()
    args = [
        sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "4", "-w", "2",
        "--worker-connections", "3",
        "-b", f"127.0.0.1:{port}", "--graceful-timeout", "3", "--log-level", "info",
        *gunicorn_options(), "--chdir", str(EXAMPLES), "flask_redis_chat:app",
    ]  # fmt: skip
    server = Process(args, port, env={"REDIS_URL": redis_server.url})
    clients: list[syncws.ClientConnection] = []
    try:
        wait_listening(port, server.process)
        assert wait_for(lambda: server.output().count("Booting worker") == 2, 20)
        by_worker: dict[str, list[syncws.ClientConnection]] = {}
        # A gthread worker with --worker-connections open connections stops accepting:
        # of four clients, each worker gets at least one.
        for _ in range(4):
            client = syncws.connect(f"ws://127.0.0.1:{port}/chat/lobby")
            clients.append(client)
            hello = client.recv(timeout=10)
            assert isinstance(hello, str)
            match = re.fullmatch(r"joined lobby \(worker (\d+)\)", hello)
            assert match, hello
            by_worker.setdefault(match[1], []).append(client)
        assert len(by_worker) == 2, "every connection went to one worker"
        (first, *_), (second, *_) = by_worker.values()
        first.send("from one worker")
        for client in clients:
            assert client.recv(timeout=10) == "from one worker"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/rooms/lobby", data=b"over HTTP", method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 204
        for client in clients:
            assert client.recv(timeout=10) == "over HTTP"
        second.send(b"\x00binary")
        assert first.recv(timeout=10) == b"\x00binary"
    finally:
        for client in clients:
            client.close()
        server.stop()
        server.log.close()


def test_silent_redis_is_detected_by_ping(
    hub: Hub,
    redis_server: RedisServer,
    server: ServerFactory,
    uri: UriFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Redis that stops answering without closing (SIGSTOP, as a network partition
    looks): the unanswered PING drops the link (one WARNING), publish() times out, and
    once Redis answers again the link comes back (one INFO) and delivery resumes."""
    monkeypatch.setattr(redis_module, "HEALTH_CHECK_INTERVAL", 0.3)
    hub.timeout = 0.5
    caplog.set_level(logging.INFO, logger="syncws.redis")
    assert redis_server.proc is not None
    srv = server(rooms(hub))
    with join(uri(srv, "/room")) as client:
        hub.publish("room", "before")
        assert client.recv(timeout=5) == "before"
        redis_server.proc.send_signal(signal.SIGSTOP)
        try:
            assert wait_log(caplog, logging.WARNING, "lost the link to Redis")
            start = time.monotonic()
            with pytest.raises(RedisUnavailable):
                hub.publish("room", "maybe")
            assert time.monotonic() - start < 2
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
        assert wait_log(caplog, logging.INFO, "reconnected to Redis")
        assert hub.wait_subscribed(10)
        hub.publish("room", "after")
        # A PUBLISH that timed out may still run once Redis resumes: "maybe" or not.
        message = client.recv(timeout=5)
        if message == "maybe":
            message = client.recv(timeout=5)
        assert message == "after"
    records = [r for r in caplog.records if r.name == "syncws.redis"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.INFO]
