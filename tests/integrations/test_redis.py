"""Tests for syncws.integrations.redis: fan-out over a real redis-server."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import trustme
from conftest import ServerFactory, program
from rawws import raw_client, wait_for
from services import RedisServer, running_redis
from timing import TIMEOUT
from wsgi_servers import Process, free_port, gunicorn_options, wait_listening

import syncws
from syncws.integrations import redis as redis_module
from syncws.integrations.redis import EVERYONE, Hub, RedisRefused, RedisUnavailable, _redacted

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
        assert hub.wait_subscribed(2 * TIMEOUT)
        ws.send("joined")
        for _ in ws:
            pass

    return handler


def join(url: str, **options: object) -> syncws.ClientConnection:
    """A client of the ``rooms`` handler, once it has joined."""
    client = syncws.connect(url, **options)  # type: ignore[arg-type]
    assert client.recv(timeout=2 * TIMEOUT) == "joined"
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
        assert a.recv(timeout=TIMEOUT) == "text"
        assert a.recv(timeout=TIMEOUT) == b"\x00\xff"
        assert a.recv(timeout=TIMEOUT) == b"forced"
        with pytest.raises(TimeoutError):
            b.recv(timeout=0.3)


def test_everyone_reaches_every_connection_of_an_attached_server(
    hub: Hub, server: ServerFactory, uri: UriFactory
) -> None:
    """EVERYONE reaches each connection of an attached server once, members or not."""
    srv = server(rooms(hub))
    hub.attach(srv)
    assert hub.wait_subscribed(2 * TIMEOUT)
    with join(uri(srv, "/a")) as a, join(uri(srv, "/*")) as star:
        hub.publish(EVERYONE, "all")
        assert a.recv(timeout=TIMEOUT) == "all"
        assert star.recv(timeout=TIMEOUT) == "all"
        with pytest.raises(TimeoutError):
            star.recv(timeout=0.3)  # a member of "*" too, but once
        hub.detach(srv)
        hub.publish(EVERYONE, "again")
        assert star.recv(timeout=TIMEOUT) == "again"
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
        assert wait_for(lambda: not hub.members("x") and not hub.members("y"), TIMEOUT)
        assert hub.topics(conn) == frozenset()
        assert wait_for(lambda: not check.pubsub_channels("syncws:[xy]"), TIMEOUT)
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
        assert client.recv(timeout=TIMEOUT) == "kept"
        hub.leave_all(conn)
        hub.publish("y", "lost")
        with pytest.raises(TimeoutError):
            client.recv(timeout=0.3)


def hub_clients(check: redis.Redis) -> list[dict[str, str]]:
    """The connections of this process's hubs, as Redis lists them (``CLIENT LIST``)."""
    return [c for c in check.client_list() if c["name"] == f"syncws-hub-{os.getpid()}"]


def test_one_thread_and_one_redis_connection(
    hub: Hub, redis_server: RedisServer, server: ServerFactory, uri: UriFactory
) -> None:
    """Whatever the number of topics and connections, a process that publishes and
    subscribes has one subscriber thread and one Redis connection; replies reach the
    right threads when several publish at once."""
    check = redis.Redis.from_url(redis_server.url)
    try:
        assert hub.publish("nobody", "x") == 0  # a publisher only, so far: it connects
        (publisher,) = hub_clients(check)
        srv = server(rooms(hub))
        hub.attach(srv)
        clients = [join(uri(srv, "/t0,t1,common"))]
        before = threading.active_count()
        clients += [join(uri(srv, f"/t{n},t{n + 1},common")) for n in range(1, 20)]
        wrong: list[tuple[str, int]] = []

        def publish(name: str) -> None:
            for n in range(50):
                topic = "common" if n % 2 == 0 else "nobody"
                received_by = hub.publish(topic, f"{name}:{n}")
                if received_by != (topic == "common"):
                    wrong.append((topic, received_by))

        threads = [threading.Thread(target=publish, args=(name,)) for name in "abcd"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(6 * TIMEOUT)
        assert not wrong
        for client in clients:
            received = [client.recv(timeout=TIMEOUT) for _ in range(4 * 25)]
            for name in "abcd":
                assert [m for m in received if m[0] == name] == [
                    f"{name}:{n}" for n in range(0, 50, 2)
                ]
        hubs = [t for t in threading.enumerate() if t.name == "syncws-redis-hub"]
        assert len(hubs) == 1
        # A pool thread per connection; nothing per topic.
        assert threading.active_count() == before + 19
        (link,) = hub_clients(check)
        assert link["id"] == publisher["id"]  # the publisher's connection, subscribed
        assert int(link["sub"]) == 21 + 1 + 1  # t0..t20, common, EVERYONE
        others = [c["id"] for c in check.client_list() if c["id"] != str(check.client_id())]
        assert others == [link["id"]]
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
        assert wait_for(lambda: len(hub.members("room")) == 3, TIMEOUT)
        payload = b"x" * 16384
        start = time.monotonic()
        for n in range(200):
            hub.publish("room", payload + n.to_bytes(2, "big"))
        for client in fast:
            for n in range(200):
                assert client.recv(timeout=TIMEOUT) == payload + n.to_bytes(2, "big")
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
            line = proc.line(timeout=4 * TIMEOUT)
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
            assert publisher.wait(6 * TIMEOUT) == 0
        for client in clients:
            received = [client.recv(timeout=2 * TIMEOUT) for _ in range(2 * count)]
            with pytest.raises(TimeoutError):
                client.recv(timeout=0.2)
            for name in ("p", "q"):
                mine = [m for m in received if (m if isinstance(m, str) else m.decode())[0] == name]
                expected = [f"{name}:{n}" if n % 2 == 0 else f"{name}:{n}".encode()
                            for n in range(count)]  # fmt: skip
                assert mine == expected


def wait_log(caplog: pytest.LogCaptureFixture, level: int, text: str) -> bool:
    return wait_for(
        lambda: any(r.levelno == level and text in r.getMessage() for r in caplog.records),
        3 * TIMEOUT,
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
        assert client.recv(timeout=TIMEOUT) == "before"
        redis_server.stop()
        assert wait_log(caplog, logging.WARNING, "lost the link to Redis")
        start = time.monotonic()
        with pytest.raises(RedisUnavailable):
            hub.publish("room", "lost")
        assert time.monotonic() - start < hub.timeout
        time.sleep(0.5)  # a few reconnection attempts fail meanwhile
        redis_server.start()
        assert wait_log(caplog, logging.INFO, "reconnected to Redis")
        assert hub.wait_subscribed(2 * TIMEOUT)
        hub.publish("room", "after")
        hub.publish(EVERYONE, "everyone")
        assert client.recv(timeout=TIMEOUT) == "after"
        assert client.recv(timeout=TIMEOUT) == "everyone"
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
    POSTed over HTTP reaches them all, to the room or to EVERYONE."""
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
        assert wait_for(lambda: server.output().count("Booting worker") == 2, 4 * TIMEOUT)
        by_worker: dict[str, list[syncws.ClientConnection]] = {}
        # A gthread worker with --worker-connections open connections stops accepting:
        # of four clients, each worker gets at least one.
        for _ in range(4):
            client = syncws.connect(f"ws://127.0.0.1:{port}/chat/lobby")
            clients.append(client)
            hello = client.recv(timeout=2 * TIMEOUT)
            assert isinstance(hello, str)
            match = re.fullmatch(r"joined lobby \(worker (\d+)\)", hello)
            assert match, hello
            by_worker.setdefault(match[1], []).append(client)
        assert len(by_worker) == 2, "every connection went to one worker"
        (first, *_), (second, *_) = by_worker.values()
        first.send("from one worker")
        for client in clients:
            assert client.recv(timeout=2 * TIMEOUT) == "from one worker"
        second.send(b"\x00binary")
        for client in clients:
            assert client.recv(timeout=2 * TIMEOUT) == b"\x00binary"
        for path, body in [("/rooms/lobby", "over HTTP"), ("/announce", "to everyone")]:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}", data=body.encode(), method="POST"
            )
            with urllib.request.urlopen(request, timeout=2 * TIMEOUT) as response:
                assert response.status == 204
            for client in clients:
                assert client.recv(timeout=2 * TIMEOUT) == body
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
        assert client.recv(timeout=TIMEOUT) == "before"
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
        assert hub.wait_subscribed(2 * TIMEOUT)
        hub.publish("room", "after")
        # A PUBLISH that timed out may still run once Redis resumes: "maybe" or not.
        message = client.recv(timeout=TIMEOUT)
        if message == "maybe":
            message = client.recv(timeout=TIMEOUT)
        assert message == "after"
    records = [r for r in caplog.records if r.name == "syncws.redis"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.INFO]


def unread_by_redis(redis_port: int, client_port: int) -> int:
    """Bytes that Redis's end of the TCP connection from ``client_port`` received and Redis
    has not read yet (Linux's ``/proc/net/tcp``)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        if (int(local.split(":")[1], 16), int(remote.split(":")[1], 16)) == (
            redis_port,
            client_port,
        ):
            return int(queues.split(":")[1], 16)
    return 0


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
@pytest.mark.parametrize("subscriber", [False, True], ids=["publisher-only", "subscriber"])
def test_publish_in_flight_when_the_link_drops_raises(
    redis_server: RedisServer, server: ServerFactory, subscriber: bool
) -> None:
    """A publish whose reply is due when the link drops raises RedisUnavailable at once,
    saying that the message may or may not have been delivered: no hang, no success. With
    a subscriber thread, it is the one that reads the reply; without, the publisher."""
    with Hub(redis_server.url, timeout=30) as hub:
        if subscriber:
            hub.attach(server())
            assert hub.wait_subscribed(2 * TIMEOUT)
        else:
            hub.publish("t", "connects")
        check = redis.Redis.from_url(redis_server.url)
        (link,) = hub_clients(check)
        check.close()
        client_port = int(link["addr"].rsplit(":", 1)[1])
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal.SIGSTOP)
        outcome: list[object] = []

        def publish() -> None:
            try:
                outcome.append(hub.publish("t", "in flight"))
            except RedisUnavailable as exc:
                outcome.append(exc)

        thread = threading.Thread(target=publish)
        thread.start()
        try:
            # The PUBLISH reached Redis's socket: the reply is due.
            assert wait_for(
                lambda: unread_by_redis(redis_server.port, client_port) > 0, 2 * TIMEOUT
            )
        finally:
            redis_server.proc.kill()  # a stopped process dies of SIGKILL: the link drops
        start = time.monotonic()
        thread.join(2 * TIMEOUT)
        assert time.monotonic() - start < 5  # not the 30 s timeout
        (exc,) = outcome
        assert isinstance(exc, RedisUnavailable)
        assert "may or may not have been delivered" in str(exc)


@pytest.mark.parametrize("same_hub", [True, False], ids=["subscriber", "publisher-only"])
def test_late_reply_does_not_shift_the_next_ones(
    hub: Hub, redis_server: RedisServer, server: ServerFactory, uri: UriFactory, same_hub: bool
) -> None:
    """A publish whose reply comes after ``timeout`` raises RedisUnavailable in time; once
    Redis answers again, the next publish gets its own reply, not the late one (with a
    subscriber thread, the late reply is dropped; without, the link is replaced)."""
    srv = server(rooms(hub))
    with (
        join(uri(srv, "/room")) as client,
        Hub(redis_server.url, timeout=0.5) if not same_hub else contextlib.nullcontext(hub) as pub,
    ):
        pub.timeout = 0.5
        assert pub.publish("nobody", "connects") == 0
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal.SIGSTOP)
        try:
            start = time.monotonic()
            with pytest.raises(RedisUnavailable, match=r"did not answer within 0\.5 s"):
                pub.publish("nobody", "late")
            assert time.monotonic() - start < 2
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
        assert pub.publish("room", "next") == 1  # the late reply said 0
        assert client.recv(timeout=TIMEOUT) == "next"


def test_publisher_only_hub_after_a_redis_restart(redis_server: RedisServer) -> None:
    """A hub that only publishes, whose Redis restarted since its last publish, sends the
    next message on a new connection, without an error (the old one is found closed
    before anything is written to it)."""
    with Hub(redis_server.url) as hub:
        assert hub.publish("t", "before") == 0
        redis_server.restart()
        check = redis.Redis.from_url(redis_server.url)
        pubsub = check.pubsub()
        try:
            pubsub.subscribe("syncws:t")
            assert pubsub.get_message(timeout=TIMEOUT)["type"] == "subscribe"  # type: ignore[index]
            assert hub.publish("t", "after") == 1
            message = pubsub.get_message(timeout=TIMEOUT)
            assert message is not None and message["data"] == b"tafter"
        finally:
            pubsub.close()
            check.close()


def test_descriptors_past_1024(hub: Hub, server: ServerFactory, uri: UriFactory) -> None:
    """The subscriber works when its descriptors are past select()'s limit of 1024, as
    in a busy server: it waits with poll()."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        srv = server(rooms(hub))
        with join(uri(srv, "/room")) as client:
            assert hub.publish("room", "high") == 1
            assert client.recv(timeout=TIMEOUT) == "high"
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_acl_user_and_refused_channels(
    redis_server: RedisServer,
    server: ServerFactory,
    uri: UriFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hub logs in as the URL's ACL user. A channel that the user may not use:
    publishing to it raises RedisRefused, joining it logs one ERROR and is never
    confirmed, and the other topics keep working. A wrong password is RedisUnavailable,
    without the password."""
    admin = redis.Redis.from_url(redis_server.url)
    admin.execute_command(
        "ACL", "SETUSER", "chat", "on", ">s3cr3t", "resetchannels", "&syncws:ok*", "+@all"
    )
    admin.close()
    url = f"redis://chat:s3cr3t@127.0.0.1:{redis_server.port}/0"

    def holder(ws: syncws.ServerConnection) -> None:
        for _ in ws:
            pass

    with Hub(url) as hub:
        srv = server(holder)
        with syncws.connect(uri(srv)) as client:
            assert wait_for(lambda: srv.connections, TIMEOUT)
            (conn,) = srv.connections
            hub.join(conn, "ok-room")
            assert hub.wait_subscribed(2 * TIMEOUT)
            hub.join(conn, "forbidden")
            assert wait_log(caplog, logging.ERROR, "refused (UN)SUBSCRIBE syncws:forbidden")
            assert "NOPERM" in caplog.text
            assert not hub.wait_subscribed(0.2)
            with pytest.raises(RedisRefused, match="NOPERM"):
                hub.publish("forbidden", "x")
            assert hub.publish("ok-room", "still fine") == 1
            assert client.recv(timeout=TIMEOUT) == "still fine"
    with Hub(url.replace("s3cr3t", "n0t-1t")) as hub:
        with pytest.raises(RedisUnavailable, match="WRONGPASS") as raised:
            hub.publish("ok-room", "x")
        assert "n0t-1t" not in str(raised.value)


def test_tls(tmp_path: Path, server: ServerFactory, uri: UriFactory) -> None:
    """rediss:// with an SSL context that trusts the server's CA: publishing from two
    threads while the subscriber reads, over one TLS connection. With the default
    context, the unknown CA is refused."""
    ca = trustme.CA()
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with running_redis(tmp_path, tls=ca.issue_cert("localhost")) as tls_redis:
        with Hub(tls_redis.url, ssl=context) as hub:
            srv = server(rooms(hub))
            with join(uri(srv, "/room")) as client:

                def publish(name: str) -> None:
                    for n in range(50):
                        hub.publish("room", f"{name}{n}" if n % 2 else f"{name}{n}".encode())

                threads = [threading.Thread(target=publish, args=(name,)) for name in "ab"]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(6 * TIMEOUT)
                received = [client.recv(timeout=TIMEOUT) for _ in range(100)]
                for name in "ab":
                    assert [m for m in received if m[:1] in (name, name.encode())] == [
                        f"{name}{n}" if n % 2 else f"{name}{n}".encode() for n in range(50)
                    ]
        with (
            Hub(tls_redis.url) as untrusted,
            pytest.raises(RedisUnavailable, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            untrusted.publish("room", "x")


def test_unix_socket_and_database(server: ServerFactory, uri: UriFactory) -> None:
    """unix:///path?db=N connects through the Unix socket and selects database N."""
    directory = Path(tempfile.mkdtemp(prefix="redis-"))  # short: a socket path has a limit
    path = directory / "redis.sock"
    try:
        with (
            running_redis(directory, "--unixsocket", str(path), "--unixsocketperm", "700"),
            Hub(f"unix://{path}?db=3") as hub,
        ):
            srv = server(rooms(hub))
            with join(uri(srv, "/room")) as client:
                assert hub.publish("room", "local") == 1
                assert client.recv(timeout=TIMEOUT) == "local"
            check = redis.Redis(unix_socket_path=str(path))
            (link,) = hub_clients(check)
            check.close()
            assert link["db"] == "3"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_fork_keeps_only_idle_attachments(redis_server: RedisServer) -> None:
    """In a process forked from one with a hub, what the hub is attached to and serves
    nobody yet stays attached, and the child subscribes to EVERYONE; what serves clients
    does not, for those clients are the parent's."""
    result = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", APPS, "fork", redis_server.url],
        capture_output=True,
        text=True,
        timeout=12 * TIMEOUT,
    )
    assert result.returncode == 0, result.stderr


def test_redis_without_resp3() -> None:
    """A Redis older than 6 answers HELLO with an error: publish() raises
    RedisUnavailable saying which version is needed. (No Redis 5 is at hand: a socket
    answers as one does.)"""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(2 * TIMEOUT)

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(2 * TIMEOUT)
                conn.recv(4096)
                conn.sendall(b"-ERR unknown command 'HELLO'\r\n")

        thread = threading.Thread(target=answer)
        thread.start()
        with (
            Hub(f"redis://127.0.0.1:{listener.getsockname()[1]}/0") as hub,
            pytest.raises(RedisUnavailable, match=r"unknown command 'HELLO'.*Redis 6"),
        ):
            hub.publish("t", "x")
        thread.join(2 * TIMEOUT)
