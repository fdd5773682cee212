"""The client API against a server: connect() failures, streaming from raw peers, closing.

The contract of a connection on its own (recv variants, decode, iteration, close codes,
sending after close) is tested on socket pairs in test_connection_contract.py."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import trustme
from rawws import (
    FrameReader,
    close_frame,
    frame,
    parse_close,
    raw_server,
    read_request,
)
from timing import TIMEOUT

import syncws

ServerFactory = Callable[..., syncws.Server]
UriFactory = Callable[..., str]


# Opening.


def test_connect_to_an_http_server_raises_invalid_status() -> None:
    """A server answering plain HTTP 200 makes connect() raise InvalidStatus carrying the
    response and its body."""

    def http(sock: socket.socket, rest: bytes) -> None:
        if read_request(sock) is not None:
            sock.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n"
                b"Hello, HTTP!"
            )

    with raw_server(http, handshake=False) as ws_uri, pytest.raises(syncws.InvalidStatus) as info:
        syncws.connect(ws_uri, open_timeout=TIMEOUT)
    response = info.value.response
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain"
    assert response.body == b"Hello, HTTP!"
    assert "200" in str(info.value)


@pytest.mark.parametrize(
    "bad_uri",
    ["http://localhost/", "ws://", "ws://localhost/#fragment", "localhost:8765"],
)
def test_connect_to_an_invalid_uri_raises_invalid_uri(bad_uri: str) -> None:
    """URIs that are not ws:// or wss://, lack a host or have a fragment raise InvalidURI."""
    with pytest.raises(syncws.InvalidURI):
        syncws.connect(bad_uri)


def test_connect_to_a_closed_port_raises_connection_refused() -> None:
    """Nothing listening on the port: connect() raises ConnectionRefusedError."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        syncws.connect(f"ws://127.0.0.1:{port}/", open_timeout=TIMEOUT)


def test_connect_to_a_silent_server_times_out() -> None:
    """A server that accepts and never answers makes connect() raise TimeoutError after
    open_timeout."""
    with raw_server(lambda sock, rest: None, handshake=False) as ws_uri:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            syncws.connect(ws_uri, open_timeout=0.3)
        assert 0.25 < time.monotonic() - start < 1.5


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["TLSv1.3", "TLSv1.2"]
)
def test_client_certificate_refused_or_missing_is_the_servers_alert(
    server: ServerFactory, version: ssl.TLSVersion, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that requires a client certificate sends the TLS alert that says why it
    ends the handshake, and connect() raises it as ssl.SSLError: "certificate required"
    (TLS 1.3, where the client has finished its handshake and reads it in place of the
    101: not "connection closed"), "handshake failure" (TLS 1.2), "unknown ca" for a
    certificate from another CA. With the right certificate, it connects."""
    caplog.set_level(logging.INFO, logger="syncws")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    ca.configure_trust(server_ctx)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.maximum_version = version
    srv = server(ssl=server_ctx)

    def client(issuer: trustme.CA | None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        if issuer is not None:
            issuer.issue_cert("client.example").configure_cert(context)
        return context

    missing = (
        "TLSV13_ALERT_CERTIFICATE_REQUIRED"
        if version is ssl.TLSVersion.TLSv1_3
        else ("SSLV3_ALERT_HANDSHAKE_FAILURE")
    )
    for issuer, reason in ((None, missing), (trustme.CA(), "TLSV1_ALERT_UNKNOWN_CA")):
        with pytest.raises(ssl.SSLError) as exc_info:
            syncws.connect(f"wss://localhost:{srv.port}/", ssl=client(issuer), open_timeout=TIMEOUT)
        assert exc_info.value.reason == reason
    with syncws.connect(f"wss://localhost:{srv.port}/", ssl=client(ca)) as ws:
        ws.send("hello")
        assert ws.recv(timeout=TIMEOUT) == "hello"
    assert "TLS handshake with" in caplog.text  # the server logs its side


# Receiving.


def test_recv_streaming_leaves_the_next_message_intact() -> None:
    """Fragments of the next message, read in the same chunk as the end of a streamed
    message, are received as that next message."""
    first_seen = threading.Event()

    def burst(sock: socket.socket, rest: bytes) -> None:
        sock.sendall(frame(0x1, b"one, ", mask=False, fin=False))
        assert first_seen.wait(TIMEOUT)
        sock.sendall(  # one segment: the end of this message and the next two
            frame(0x0, b"two", mask=False)
            + frame(0x2, b"thr", mask=False, fin=False)
            + frame(0x0, b"ee", mask=False)
            + frame(0x1, b"four", mask=False)
        )
        FrameReader(sock, rest).read()  # until the client closes

    with raw_server(burst) as ws_uri, syncws.connect(ws_uri, close_timeout=0.2) as ws:
        fragments = []
        for fragment in ws.recv_streaming():
            fragments.append(fragment)
            first_seen.set()
        assert fragments == ["one, ", "two"]
        assert ws.recv(timeout=TIMEOUT) == b"three"
        assert ws.recv(timeout=TIMEOUT) == "four"


@pytest.mark.parametrize("tail", [1, 2], ids=["first-fragment", "two-fragments"])
def test_recv_streaming_a_whole_message_read_with_the_next_ones_start(tail: int) -> None:
    """A whole message read in the same chunk as the first fragment(s) of the next one is
    what recv_streaming() yields, alone; the next message is received whole afterwards
    (issue 21: it yielded the next message's first fragment, then this one)."""

    streaming = threading.Event()

    def burst(sock: socket.socket, rest: bytes) -> None:
        assert streaming.wait(TIMEOUT)
        pieces = [frame(0x1, b"A", mask=False), frame(0x1, b"B1", mask=False, fin=False)]
        if tail == 2:
            pieces.append(frame(0x0, b"B2", mask=False, fin=False))
        sock.sendall(b"".join(pieces))  # one segment
        time.sleep(0.05)
        sock.sendall(frame(0x0, b"-end", mask=False) + frame(0x2, b"C", mask=False))
        FrameReader(sock, rest).read()  # until the client closes

    with raw_server(burst) as ws_uri, syncws.connect(ws_uri, close_timeout=0.2) as ws:
        fragments = ws.recv_streaming()
        threading.Timer(0.05, streaming.set).start()  # once the generator reads the socket
        assert list(fragments) == ["A"]
        assert ws.recv(timeout=TIMEOUT) == ("B1-end" if tail == 1 else "B1B2-end")
        assert ws.recv(timeout=TIMEOUT) == b"C"


def test_recv_during_an_unfinished_recv_streaming_names_it() -> None:
    """recv() while a recv_streaming() iteration of the same thread is suspended mid-message
    raises ConcurrencyError, naming that iteration as a possible cause."""

    def two_fragments(sock: socket.socket, rest: bytes) -> None:
        sock.sendall(frame(0x1, b"one, ", mask=False, fin=False))
        FrameReader(sock, rest).read()  # until the client closes

    with raw_server(two_fragments) as ws_uri, syncws.connect(ws_uri, close_timeout=0.2) as ws:
        fragments = ws.recv_streaming()
        assert next(fragments) == "one, "
        with pytest.raises(syncws.ConcurrencyError, match="recv_streaming"):
            ws.recv(timeout=TIMEOUT)
        fragments.close()


# Leaving recv_streaming() before the end of a message.


def _leave(ws: syncws.ClientConnection, how: str) -> syncws.Data:
    """Receive the first fragment of a message with recv_streaming() and leave the rest:
    by ``break``, by closing the generator, or by an exception in the loop."""
    first: list[syncws.Data] = []
    if how == "close":
        fragments = ws.recv_streaming()
        first.append(next(fragments))
        fragments.close()
    elif how == "break":
        for fragment in ws.recv_streaming():
            first.append(fragment)
            break
    else:
        with pytest.raises(LookupError):
            for fragment in ws.recv_streaming():
                first.append(fragment)
                raise LookupError
    return first[0]


@pytest.mark.parametrize("how", ["break", "close", "raise"])
def test_recv_streaming_left_early_discards_the_rest_of_the_message(how: str) -> None:
    """Leaving recv_streaming() after the first fragment drops the fragments still to
    come, up to the last one: recv() then returns the next message, whole."""
    left = threading.Event()

    def behaviour(sock: socket.socket, rest: bytes) -> None:
        sock.sendall(frame(0x1, b"part1-", mask=False, fin=False))
        assert left.wait(TIMEOUT)
        sock.sendall(frame(0x0, b"part2-", mask=False, fin=False))
        sock.sendall(frame(0x0, b"part3", mask=False))
        sock.sendall(frame(0x1, b"next", mask=False))
        FrameReader(sock, rest).read()  # until the client closes

    with raw_server(behaviour) as ws_uri, syncws.connect(ws_uri, close_timeout=0.2) as ws:
        assert _leave(ws, how) == "part1-"
        left.set()
        assert ws.recv(timeout=TIMEOUT) == "next"


@pytest.mark.parametrize("last_read", [True, False], ids=["last-read", "last-to-come"])
def test_recv_streaming_left_early_discards_fragments_already_read(last_read: bool) -> None:
    """Fragments of the abandoned message read in the same chunk as the one yielded are
    dropped too, whether its last fragment was among them or is still to come: the next
    recv_streaming() streams the next message."""
    first_seen = threading.Event()
    left = threading.Event()
    frames = [
        frame(0x0, b"two", mask=False, fin=False),
        frame(0x0, b"three", mask=False, fin=last_read),
        frame(0x2, b"ne", mask=False, fin=False),
        frame(0x0, b"xt", mask=False),
    ]
    if not last_read:
        frames.insert(2, frame(0x0, b"four", mask=False))
    cut = 3 if last_read else 2  # the rest comes after the client left

    def behaviour(sock: socket.socket, rest: bytes) -> None:
        sock.sendall(frame(0x2, b"one", mask=False, fin=False))
        assert first_seen.wait(TIMEOUT)
        sock.sendall(b"".join(frames[:cut]))  # one segment, read by recv_streaming()
        assert left.wait(TIMEOUT)
        sock.sendall(b"".join(frames[cut:]))
        FrameReader(sock, rest).read()

    with raw_server(behaviour) as ws_uri, syncws.connect(ws_uri, close_timeout=0.2) as ws:
        fragments = ws.recv_streaming()
        assert next(fragments) == b"one"
        first_seen.set()
        assert next(fragments) == b"two"
        fragments.close()
        left.set()
        assert b"".join(ws.recv_streaming()) == b"next"


def test_recv_streaming_left_early_rest_read_by_the_heartbeat() -> None:
    """The rest of an abandoned message is dropped by the heartbeat thread too, when it
    reads the connection while the handler is elsewhere."""
    left = threading.Event()

    def behaviour(sock: socket.socket, rest: bytes) -> None:
        sock.sendall(frame(0x1, b"part1-", mask=False, fin=False))
        assert left.wait(TIMEOUT)
        reader = FrameReader(sock, rest)
        item = reader.read()  # the client's ping
        assert item is not None and item[0] == 0x9
        sock.sendall(  # the pong comes after the rest: once it is read, all of it is
            frame(0x0, b"part2-", mask=False, fin=False)
            + frame(0x0, b"part3", mask=False)
            + frame(0x1, b"next", mask=False)
            + frame(0xA, item[1], mask=False)
        )
        reader.read()

    with raw_server(behaviour) as ws_uri, syncws.connect(ws_uri, close_timeout=0.2) as ws:
        assert _leave(ws, "close") == "part1-"
        left.set()
        # Nobody is in recv(): ping() has the heartbeat read the connection.
        assert ws.ping().wait(TIMEOUT)
        assert ws.recv(timeout=0) == "next"


def test_recv_streaming_left_early_then_recv_streaming_streams_the_next_message() -> None:
    """After an abandoned message, recv_streaming() streams the next message, not the
    rest of the abandoned one."""
    left = threading.Event()

    def behaviour(sock: socket.socket, rest: bytes) -> None:
        sock.sendall(frame(0x1, b"part1-", mask=False, fin=False))
        assert left.wait(TIMEOUT)
        sock.sendall(
            frame(0x0, b"part2-", mask=False, fin=False)
            + frame(0x0, b"part3", mask=False)
            + frame(0x1, b"ne", mask=False, fin=False)
            + frame(0x0, b"xt", mask=False)
        )
        FrameReader(sock, rest).read()

    with raw_server(behaviour) as ws_uri, syncws.connect(ws_uri, close_timeout=0.2) as ws:
        assert _leave(ws, "close") == "part1-"
        fragments = ws.recv_streaming()
        left.set()  # the rest arrives while this recv_streaming() reads
        assert "".join(fragments) == "next"


def test_recv_streaming_left_early_then_the_peer_closes() -> None:
    """When the abandoned message was the last one, recv() raises ConnectionClosedOK once
    the peer closes, instead of returning the rest as a message."""
    left = threading.Event()

    def behaviour(sock: socket.socket, rest: bytes) -> None:
        sock.sendall(frame(0x2, b"part1-", mask=False, fin=False))
        assert left.wait(TIMEOUT)
        sock.sendall(
            frame(0x0, b"part2-", mask=False, fin=False)
            + frame(0x0, b"part3", mask=False)
            + close_frame(1000, mask=False)
        )
        reader = FrameReader(sock, rest)
        while (item := reader.read()) is not None and item[0] != 0x8:
            pass
        sock.shutdown(socket.SHUT_RDWR)  # the server closes TCP first (RFC 6455 §7.1.1)

    with raw_server(behaviour) as ws_uri, syncws.connect(ws_uri, close_timeout=TIMEOUT) as ws:
        assert _leave(ws, "break") == b"part1-"
        left.set()
        with pytest.raises(syncws.ConnectionClosedOK):
            ws.recv(timeout=TIMEOUT)
        assert ws.close_code == 1000


def test_recv_streaming_left_early_still_checks_utf8() -> None:
    """Invalid UTF-8 in the discarded rest of a text message fails the connection with
    1007, as in a message that is read."""
    left = threading.Event()
    closes: list[tuple[int, str]] = []

    def behaviour(sock: socket.socket, rest: bytes) -> None:
        sock.sendall(frame(0x1, b"caf\xc3", mask=False, fin=False))
        assert left.wait(TIMEOUT)
        sock.sendall(frame(0x0, b"\xa9!", mask=False, fin=False))
        sock.sendall(frame(0x0, b"\xff", mask=False))
        frames = FrameReader(sock, rest).read_until_eof()
        closes.extend(parse_close(payload) for opcode, payload in frames if opcode == 0x8)

    with raw_server(behaviour) as ws_uri, syncws.connect(ws_uri, close_timeout=0.5) as ws:
        assert _leave(ws, "close") == "caf"
        left.set()
        with pytest.raises(syncws.ConnectionClosedError):
            ws.recv(timeout=TIMEOUT)
    assert closes and closes[0][0] == 1007


def test_handler_leaving_recv_streaming_early_gets_the_next_message(
    server: ServerFactory, uri: UriFactory
) -> None:
    """On the server side too: a handler that abandons a fragmented message after its
    first fragment receives the next message whole."""
    received: list[syncws.Data] = []
    first_seen = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        fragments = ws.recv_streaming()
        received.append(next(fragments))
        fragments.close()
        first_seen.set()
        received.append(ws.recv(timeout=TIMEOUT))
        ws.send("done")

    def pieces() -> Iterator[str]:
        yield "part1-"
        assert first_seen.wait(TIMEOUT)
        yield "part2-"
        yield "part3"

    with syncws.connect(uri(server(handler, compression=None)), compression=None) as ws:
        ws.send(pieces())
        ws.send("second message")
        assert ws.recv(timeout=TIMEOUT) == "done"
    assert received == ["part1-", "second message"]


# Iteration and closing.


def test_iteration_raises_on_error_close(server: ServerFactory, uri: UriFactory) -> None:
    """Iterating raises ConnectionClosedError when the handler fails (1011)."""

    def handler(ws: syncws.ServerConnection) -> None:
        ws.send("before the crash")
        raise RuntimeError("handler bug (expected by the test)")

    with syncws.connect(uri(server(handler))) as ws:
        received = []
        with pytest.raises(syncws.ConnectionClosedError) as info:
            for message in ws:
                received.append(message)
    assert received == ["before the crash"]
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1011


def test_client_close_ends_the_handler_with_connection_closed_ok(
    server: ServerFactory, uri: UriFactory
) -> None:
    """close() from the client ends the server handler's recv loop with
    ConnectionClosedOK."""
    outcome: list[BaseException] = []
    ended = threading.Event()

    def handler(ws: syncws.ServerConnection) -> None:
        try:
            while True:
                ws.send(ws.recv())
        except BaseException as exc:
            outcome.append(exc)
            raise
        finally:
            ended.set()

    ws = syncws.connect(uri(server(handler)))
    ws.send("hi")
    assert ws.recv(timeout=TIMEOUT) == "hi"
    ws.close()
    assert ws.state is syncws.State.CLOSED
    assert ended.wait(TIMEOUT)
    [exc] = outcome
    assert isinstance(exc, syncws.ConnectionClosedOK)
    assert exc.rcvd == syncws.Close(1000, "")


def test_messages_before_an_abrupt_close_are_received_first() -> None:
    """Messages followed by a close frame and EOF in one segment are all returned before
    ConnectionClosed."""

    def burst(sock: socket.socket, rest: bytes) -> None:
        texts = [frame(0x1, text.encode(), mask=False) for text in ("a", "b", "c")]
        sock.sendall(b"".join(texts) + close_frame(1000, mask=False))
        sock.shutdown(socket.SHUT_WR)

    with raw_server(burst) as ws_uri, syncws.connect(ws_uri, close_timeout=0.5) as ws:
        assert [ws.recv(timeout=TIMEOUT) for _ in range(3)] == ["a", "b", "c"]
        with pytest.raises(syncws.ConnectionClosedOK):
            ws.recv(timeout=TIMEOUT)
