"""Real proxies for the client's tests: tinyproxy (HTTP CONNECT, with or without Basic
auth) and dante (``danted``, SOCKS5, with or without a username and password), the Debian
packages ``tinyproxy`` and ``dante-server``; on 127.0.0.1 or on ``::1``.

Each starts on a free loopback port with a configuration file written to a temporary
directory (never the system's), and is stopped at teardown. Without the binary a test
skips with a message naming the package, except under ``CI=true``, where it fails: CI
installs both (``.ci/run``), and a skip there would hide the tests.

dante checks usernames and passwords against the system's users (``/etc/passwd`` and
``/etc/shadow``), and has no file of its own for them. Rather than add a user to the
machine, the fixture runs danted in a mount namespace of its own (``unshare``; as root, or
else in a user namespace where the user is root), in which copies of both files, with the
test's user added, are mounted over the real ones: nothing outside that process changes,
and nothing is left to clean up once it exits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ipv6_loopback
from timing import TIMEOUT

#: Seconds a proxy has to start listening, and to exit once told to.
START_TIMEOUT = 2 * TIMEOUT

TINYPROXY = os.environ.get("SYNCWS_TINYPROXY", "/usr/bin/tinyproxy")
DANTED = os.environ.get("SYNCWS_DANTED", "/usr/sbin/danted")

#: The SOCKS5 user of ``dante(..., with_user=True)``, and its password.
SOCKS_USER = "syncws-test"
SOCKS_PASSWORD = "s3cret:pw"
#: Both, for a proxy URL (the password's ':' percent-encoded).
SOCKS_USER_INFO = "syncws-test:s3cret%3Apw"
# As in /etc/shadow: openssl passwd -6 -salt syncwstest 's3cret:pw'
_SOCKS_PASSWORD_HASH = (
    "$6$syncwstest$dzbSJG5D.1MYktQ98BIK2g4OstvPoShH1sfOWXmysLWVA4eefpBb20FU.rWqkk"
    "/I0IApwtAjRzMu1lhq7Dtwe1"
)


@dataclass
class RunningProxy:
    """A proxy process listening on ``host``:``port``."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path
    host: str = "127.0.0.1"

    def url(self, scheme: str = "http", user_info: str = "") -> str:
        at = f"{user_info}@" if user_info else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{at}{host}:{self.port}"


def require(binary: str, package: str) -> str:
    """``binary``'s path; skip (fail under CI=true) when it is not installed."""
    path = binary if os.access(binary, os.X_OK) else shutil.which(os.path.basename(binary))
    if path:
        return path
    message = f"{binary} not found: apt-get install {package}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI must run the proxy tests)")
    pytest.skip(message)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket(_family(host)) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(host: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"proxy exited with {process.returncode}: {text[-2000:]}")
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # polling a port not bound yet: nothing to wait on
    raise RuntimeError(f"proxy not listening on port {port} after {START_TIMEOUT} s")


@contextlib.contextmanager
def _run(args: list[str], host: str, port: int, log: Path) -> Iterator[RunningProxy]:
    process = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        _wait_listening(host, port, process, log)
        yield RunningProxy(port, process, log, host)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(START_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(START_TIMEOUT)


@contextlib.contextmanager
def tinyproxy(
    directory: Path, basic_auth: tuple[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[RunningProxy]:
    """tinyproxy on a free port of ``host``, allowing CONNECT to any port of 127.0.0.1 and
    ::1 (or localhost), from loopback."""
    binary = require(TINYPROXY, "tinyproxy")
    port = free_port(host)
    log = directory / "tinyproxy.log"
    lines = [
        f"Port {port}",
        f"Listen {host}",
        "Timeout 30",
        "MaxClients 50",
        "Allow 127.0.0.1",
        "Allow ::1",
        "LogLevel Info",
        f'LogFile "{log}"',
        f'PidFile "{directory / "tinyproxy.pid"}"',
        # Only these destinations: anything else gets 403 (tests rely on it).
        f'Filter "{directory / "filter"}"',
        "FilterDefaultDeny Yes",
        "FilterType ere",
    ]
    (directory / "filter").write_text("^127\\.0\\.0\\.1$\n^localhost$\n^::1$\n")
    if basic_auth is not None:
        lines.append(f"BasicAuth {basic_auth[0]} {basic_auth[1]}")
    config = directory / "tinyproxy.conf"
    config.write_text("\n".join(lines) + "\n")
    with _run([binary, "-d", "-c", str(config)], host, port, log) as running:
        yield running


@contextlib.contextmanager
def dante(
    directory: Path, host: str = "127.0.0.1", *, with_user: bool = False
) -> Iterator[RunningProxy]:
    """danted (SOCKS5 and SOCKS4) on a free port of ``host``, for loopback clients and
    destinations only; ``with_user``: SOCKS5 for :data:`SOCKS_USER` only, with its
    password (RFC 1929)."""
    binary = require(DANTED, "dante-server")
    namespace = _namespace() if with_user else []
    # As root, danted drops to nobody; in a user namespace, where the user is root, there
    # is no other user to drop to.
    root = os.geteuid() == 0 and "--user" not in namespace
    port = free_port(host)
    log = directory / "danted.log"
    lines = [
        f"logoutput: {log}",
        f"internal: {host} port = {port}",
        "external: 127.0.0.1",
        *(["external: ::1"] if ipv6_loopback() else []),
        "clientmethod: none",
        f"socksmethod: {'username' if with_user else 'none'}",
        # Settings before rules (dante's grammar).
        *(["user.privileged: root", "user.unprivileged: nobody"] if root else []),
        "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }",
        "client pass { from: ::1/128 to: ::/0 }",
        *(
            f"socks pass {{ from: {source} to: {destination} }}"
            for source in ("127.0.0.0/8", "::1/128")
            for destination in ("127.0.0.0/8", "::1/128")
        ),
        "socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 }",
        "socks block { from: ::/0 to: ::/0 }",
    ]
    config = directory / "danted.conf"
    config.write_text("\n".join(lines) + "\n")
    args = [binary, "-f", str(config), "-p", str(directory / "danted.pid"), "-N", "1"]
    if with_user:
        args = _with_user(directory, namespace, args)
    with _run(args, host, port, log) as running:
        yield running


def _namespace() -> list[str]:
    """``unshare`` and its options for a mount namespace: of the machine's root, else in a
    user namespace (also where root lacks CAP_SYS_ADMIN, as in some containers). Skips
    (fails under CI=true) where neither is possible."""
    unshare = shutil.which("unshare")
    for options in (["--mount"], ["--user", "--map-root-user", "--mount"]):
        if unshare is None or (options == ["--mount"] and os.geteuid() != 0):
            continue
        probe = [unshare, *options, "true"]
        if subprocess.run(probe, capture_output=True, timeout=START_TIMEOUT).returncode == 0:
            return [unshare, *options]
    message = "dante with a username needs unshare (util-linux) and mount namespaces"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI must run the proxy tests)")
    pytest.skip(message)


def _with_user(directory: Path, namespace: list[str], args: list[str]) -> list[str]:
    """``args`` run in a mount namespace where ``/etc/passwd`` and ``/etc/shadow`` list
    :data:`SOCKS_USER` too (see the module docstring)."""
    name, hashed = SOCKS_USER, _SOCKS_PASSWORD_HASH
    passwd, shadow = directory / "passwd", directory / "shadow"
    passwd.write_text(
        Path("/etc/passwd").read_text() + f"{name}:x:64999:64999::/nonexistent:/bin/false\n"
    )
    # /etc/shadow is readable by root only: otherwise the namespace's lists only our user.
    system = Path("/etc/shadow").read_text() if os.access("/etc/shadow", os.R_OK) else ""
    shadow.write_text(system + f"{name}:{hashed}:19000:0:99999:7:::\n")
    shadow.chmod(0o600)
    script = (
        'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/shadow && shift 2 && exec "$@"'
    )
    return [*namespace, "sh", "-c", script, "sh", str(passwd), str(shadow), *args]


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` to ``sink`` until either ends; then pass the end on."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class _LoopbackServer:
    """A test server on a free loopback port: a thread accepts, a thread per client runs
    :meth:`_serve` (bounded by the test's few connections); :meth:`close` stops them."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._listener = socket.create_server((host, 0), family=_family(host))
        self.port: int = self._listener.getsockname()[1]
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._closing.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone does not
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(START_TIMEOUT)


class TLSFront(_LoopbackServer):
    """A TLS terminator in front of a proxy, on a free loopback port: an ``https://``
    proxy made of tinyproxy (the CONNECT logic) and this (TLS)."""

    def __init__(self, context: ssl.SSLContext, backend_port: int) -> None:
        self._context = context
        self._backend = backend_port
        super().__init__()

    def _serve(self, client: socket.socket) -> None:
        try:
            tls = self._context.wrap_socket(client, server_side=True)
        except OSError:
            client.close()
            return
        backend = socket.create_connection(("127.0.0.1", self._backend))
        self._sockets += [tls, backend]
        threading.Thread(target=_pump, args=(backend, tls), daemon=True).start()
        _pump(tls, backend)


class TricklingProxy(_LoopbackServer):
    """A proxy on loopback that sends its answer one byte at a time, ``interval`` seconds
    apart, as an overloaded proxy or a slow link would: HTTP ``CONNECT`` (``"http"``) or
    SOCKS5 without authentication (``"socks5"``), on 127.0.0.1 or ``host``.

    Its answer opens the tunnel, which then goes to the destination asked for; with
    ``endless=True`` the answer never ends in practice (header after header for HTTP, a
    bound address of 255 bytes for SOCKS5): only the client's ``open_timeout`` ends it.
    ``close()`` stops everything: each trickle stops at the next byte.
    """

    def __init__(
        self, kind: str, interval: float, *, endless: bool = False, host: str = "127.0.0.1"
    ) -> None:
        self.kind, self.interval, self.endless = kind, interval, endless
        super().__init__(host)
        self.url = f"{kind}://{'[' + host + ']' if ':' in host else host}:{self.port}"

    def _trickle(self, sock: socket.socket, data: bytes) -> bool:
        """Send ``data`` a byte per interval; False if stopped or the client left."""
        for byte in data:
            if self._closing.wait(self.interval):
                return False
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return False
        return True

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(START_TIMEOUT)
        try:
            destination = self._http(client) if self.kind == "http" else self._socks5(client)
        except (OSError, ValueError):
            destination = None
        try:
            if destination is None:
                raise ConnectionError("no tunnel")
            upstream = socket.create_connection(destination, timeout=START_TIMEOUT)
        except OSError:
            client.close()
            return
        client.settimeout(None)
        upstream.settimeout(None)
        self._sockets.append(upstream)
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)

    def _http(self, client: socket.socket) -> tuple[str, int] | None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            data = client.recv(4096)
            if not data:
                return None
            head += data
        authority = head.split(b" ")[1].decode()
        host, _, port = authority.rpartition(":")
        if self.endless:
            answer = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: a\r\n" * 1000
        else:
            answer = b"HTTP/1.1 200 Connection established\r\n\r\n"
        if not self._trickle(client, answer):
            return None
        return host.strip("[]"), int(port)

    def _socks5(self, client: socket.socket) -> tuple[str, int] | None:
        client.recv(257)  # version, methods: "no authentication" is offered first
        if not self._trickle(client, b"\x05\x00"):
            return None
        request = client.recv(262)
        kind = request[3]
        if kind == 1:
            host = socket.inet_ntop(socket.AF_INET, request[4:8])
        elif kind == 4:
            host = socket.inet_ntop(socket.AF_INET6, request[4:20])
        else:
            host = request[5 : 5 + request[4]].decode()
        port = int.from_bytes(request[-2:], "big")
        if self.endless:
            answer = b"\x05\x00\x00\x03\xff" + b"a" * 255 + b"\x00\x00"
        else:
            answer = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00"
        if not self._trickle(client, answer):
            return None
        return host, port


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
