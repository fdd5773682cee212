"""Accepting connections: addresses, TCP_NODELAY, bursts, and frames that come with the
request (what the acceptor and the handshake learn once instead of asking each socket)."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ipv6_loopback, program
from rawws import REQUEST, FrameReader, frame, raw_client, wait_for
from timing import TIMEOUT

import syncws

ServerFactory = Callable[..., syncws.Server]
UriFactory = Callable[..., str]


def recorder() -> tuple[list[syncws.ServerConnection], Callable[[syncws.ServerConnection], None]]:
    """A handler that records its connection, then echoes until the client closes."""
    conns: list[syncws.ServerConnection] = []

    def handler(ws: syncws.ServerConnection) -> None:
        conns.append(ws)
        for message in ws:
            ws.send(message)

    return conns, handler


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_addresses_of_tcp_connections(server: ServerFactory, host: str) -> None:
    """local_address and remote_address are the two ends of the TCP connection, for a
    server bound to one interface and for one bound to all of them."""
    conns, handler = recorder()
    srv = server(handler, host=host)
    for _ in range(2):
        with syncws.connect(f"ws://127.0.0.1:{srv.port}/") as ws:
            ws.send("ping")
            assert ws.recv(timeout=TIMEOUT) == "ping"
            assert conns[-1].local_address == ("127.0.0.1", srv.port)
            assert conns[-1].remote_address == ws.local_address
            assert conns[-1].local_address == ws.remote_address


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_addresses_of_ipv6_connections(server: ServerFactory) -> None:
    """Over IPv6, the addresses are the socket's own 4-tuples."""
    conns, handler = recorder()
    try:
        srv = server(handler, host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    with syncws.connect(f"ws://[::1]:{srv.port}/") as ws:
        ws.send("ping")
        assert ws.recv(timeout=TIMEOUT) == "ping"
        assert conns[0].local_address == ws.remote_address
        assert conns[0].remote_address == ws.local_address
        assert conns[0].local_address[:2] == ("::1", srv.port)


def test_addresses_of_unix_connections(server: ServerFactory) -> None:
    """Over a Unix socket, the local address is the path and the client has none."""
    conns, handler = recorder()
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "ws.sock")
        server(handler, unix_path=path)
        with syncws.connect("ws://localhost/", unix_path=path) as ws:
            ws.send("ping")
            assert ws.recv(timeout=TIMEOUT) == "ping"
            assert conns[0].local_address == path
            assert conns[0].remote_address in ("", None)


def test_accepted_sockets_have_tcp_nodelay(server: ServerFactory, uri: UriFactory) -> None:
    """Every accepted TCP socket has TCP_NODELAY, set on it or inherited from the listening
    socket."""
    conns, handler = recorder()
    srv = server(handler)
    for _ in range(3):
        with syncws.connect(uri(srv)) as ws:
            ws.send("ping")
            assert ws.recv(timeout=TIMEOUT) == "ping"
            sock = conns[-1].transport.sock
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_burst_of_connections_is_accepted(server: ServerFactory, uri: UriFactory) -> None:
    """Connections that arrive together (accepted one per wake-up) are all served."""
    srv = server()
    n = 40
    barrier = threading.Barrier(n)
    results: list[object] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        try:
            barrier.wait(2 * TIMEOUT)
            with syncws.connect(uri(srv), open_timeout=2 * TIMEOUT) as ws:
                ws.send(f"hello {i}")
                result: object = ws.recv(timeout=2 * TIMEOUT)
        except Exception as exc:
            result = exc
        with lock:
            results.append(result)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(6 * TIMEOUT)
    assert sorted(map(str, results)) == sorted(f"hello {i}" for i in range(n))


@pytest.mark.parametrize("with_frames", [False, True])
def test_frames_sent_with_the_request_are_processed(
    server: ServerFactory, with_frames: bool
) -> None:
    """Frames in the same packet as the request are answered at once; without any, the
    connection just waits for them."""
    srv = server()
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT)
    with sock:
        first = frame(0x1, b"early", mask=True)
        sock.sendall(REQUEST % b"/" + (first if with_frames else b""))
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = sock.recv(4096)
            assert data
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        if not with_frames:
            sock.sendall(first)
        reader = FrameReader(sock, rest)
        assert reader.read() == (0x1, b"early")


def test_connection_closed_before_the_request(server: ServerFactory) -> None:
    """A client that connects and leaves without a request costs the server nothing lasting:
    the pool thread is free again."""
    srv = server()
    for _ in range(3):
        sock, _ = raw_client(srv, handshake=False)
        sock.close()
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT)
    sock.close()
    assert wait_for(lambda: srv._pool.busy == 0, TIMEOUT)


# Out of file descriptors (issue 21, item 3).

_FD_LIMITED_SERVER = """
import logging, os, resource, sys, time
import syncws

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

def echo(ws):
    for message in ws:
        ws.send(message)

server = syncws.Server(echo, "127.0.0.1", 0, open_timeout=30).start()
time.sleep(0.2)  # the pool's first thread, the heartbeat: what a server holds at rest
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 2, hard))
print("PORT", server.port, file=sys.stderr, flush=True)
time.sleep(60)
"""


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux's /proc")
def test_out_of_file_descriptors_pauses_accepting_and_logs_once(tmp_path: Path) -> None:
    """At the file descriptor limit, the acceptor logs one ERROR and retries every
    ACCEPT_RETRY_DELAY instead of spinning on a listening socket that stays readable;
    once descriptors are free again, it accepts again and says so."""
    script = tmp_path / "server.py"
    script.write_text(_FD_LIMITED_SERVER)
    with program([str(script)]) as running:
        line = ""
        while not line.startswith("PORT"):
            line = running.line(2 * TIMEOUT)
        port = int(line.split()[1])
        hogs = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) for _ in range(6)]
        time.sleep(0.3)  # the first ones are accepted; then accept() fails with EMFILE
        cpu = _cpu_seconds(running.proc.pid)
        time.sleep(1.5)
        assert _cpu_seconds(running.proc.pid) - cpu < 0.5
        for hog in hogs:
            hog.close()
        lines: list[str] = []
        deadline = time.monotonic() + 2 * TIMEOUT
        while not any(line.startswith("WARNING accepting again") for line in lines):
            lines.append(running.line(deadline - time.monotonic()))
        with syncws.connect(f"ws://127.0.0.1:{port}/", open_timeout=TIMEOUT) as ws:
            ws.send("back")
            assert ws.recv(timeout=TIMEOUT) == "back"
        failures = [line for line in lines if "accept failed" in line]
        assert len(failures) == 1, lines
        assert failures[0].startswith("ERROR") and "Too many open files" in failures[0]
        assert any(line.startswith("WARNING accepting again") for line in lines), lines


# A host name with several addresses (issue 19).


def _resolving(monkeypatch: pytest.MonkeyPatch, name: str, *ips: str) -> None:
    """Make ``name`` resolve to ``ips``, in order, whatever this machine's hosts file says."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (ip, port or 0, 0, 0) if ":" in ip else (ip, port or 0),
            )
            for ip in ips
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.skipif(not ipv6_loopback(), reason="needs IPv6 on the loopback interface")
def test_a_host_name_binds_every_address_on_one_port(
    server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host name that resolves to ::1 and 127.0.0.1 (Debian's "localhost") is served on
    both, on the same port, as asyncio's create_server does: ws://127.0.0.1:PORT/ is not
    refused (it was: only the first address was bound)."""
    _resolving(monkeypatch, "dual.test", "::1", "127.0.0.1")
    conns, handler = recorder()
    srv = server(handler, host="dual.test")
    assert [s.getsockname()[0] for s in srv.sockets] == ["::1", "127.0.0.1"]
    assert srv.socket is srv.sockets[0]
    for host in ("[::1]", "127.0.0.1"):
        with syncws.connect(f"ws://{host}:{srv.port}/") as ws:
            ws.send(host)
            assert ws.recv(timeout=TIMEOUT) == host
    assert [conn.local_address[0] for conn in conns] == ["::1", "127.0.0.1"]
    srv.shutdown()
    assert all(s.fileno() == -1 for s in srv.sockets)


def test_an_address_that_cannot_be_bound_is_skipped_after_the_first(
    server: ServerFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An address the system cannot bind (IPv6 disabled while the hosts file maps the
    name to ::1: here an address of no local interface) is skipped, at INFO, once one
    address is bound; the first one failing fails the server."""
    _resolving(monkeypatch, "odd.test", "127.0.0.1", "192.0.2.1")
    caplog.set_level(logging.INFO, "syncws")
    srv = server(host="odd.test")
    assert [s.getsockname()[0] for s in srv.sockets] == ["127.0.0.1"]
    assert any("cannot listen on 192.0.2.1" in r.getMessage() for r in caplog.records)
    _resolving(monkeypatch, "odd.test", "192.0.2.1", "127.0.0.1")
    with pytest.raises(OSError):
        syncws.Server(lambda ws: None, "odd.test", 0)
