"""The contract of a Connection, on socket pairs: no server, no connect(), no port
(the ``pairs`` fixture, tests/pairs.py). Every wait is bounded by TIMEOUT; no test sleeps
to let something happen."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest
from pairs import Pairs, handshake
from rawws import FrameReader, close_frame, frame, parse_close, wait_for
from timing import TIMEOUT

import syncws
from syncws.protocol.client import ClientProtocol
from syncws.protocol.uri import parse_uri
from syncws.runtime.transport import Transport


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_messages_go_both_ways_as_sent(pairs: Pairs, tls: bool) -> None:
    """Text arrives as str and binary as bytes, in order, both ways (over TLS too); an
    empty message is a message."""
    server, client = pairs(tls=tls)
    for message in ("café", b"\x00\xff", "", b"x" * 100_000):
        client.send(message)
        assert server.recv(timeout=TIMEOUT) == message
        server.send(message)
        assert client.recv(timeout=TIMEOUT) == message
    client.send("no timeout")  # recv() without a timeout: the plain socket's fast path
    assert server.recv() == "no timeout"


def test_from_handshake_lists_the_connection_and_refuses_what_it_cannot_serve(
    pairs: Pairs,
) -> None:
    """A server connection made without a server has a stand-in ``server`` with its
    options and its connection while open; a protocol of the wrong side, an unfinished
    handshake or something that is not a socket are refused."""
    server, client = pairs(max_queue=4)
    assert server.server.connections == {server}
    assert server.server.options.max_queue == 4 == server.max_queue
    assert client.redirects == []
    unfinished = ClientProtocol(parse_uri("ws://pair.invalid/"))
    a, b = socket.socketpair()
    with a, b:
        with pytest.raises(ValueError, match="not complete"):
            syncws.ClientConnection.from_handshake(a, unfinished, heartbeat=pairs.heartbeat)
        with pytest.raises(TypeError, match="ServerProtocol"):
            syncws.ServerConnection.from_handshake(
                a,
                unfinished,  # type: ignore[arg-type]
                heartbeat=pairs.heartbeat,
            )
        with pytest.raises(TypeError, match="Transport or a socket"):
            syncws.ClientConnection.from_handshake(
                a.fileno(),  # type: ignore[arg-type]
                handshake(syncws.ConnectionOptions())[1],
                heartbeat=pairs.heartbeat,
            )
    client.close()
    assert server.wait_closed(TIMEOUT)
    assert server.server.connections == set()


def test_recv_decode_converts_messages(pairs: Pairs) -> None:
    """decode=False gives text as UTF-8 bytes, decode=True gives binary decoded from
    UTF-8, decode=None keeps the frame's type."""
    server, client = pairs()
    for message, decode, expected in [
        ("café", False, "café".encode()),
        ("café".encode(), True, "café"),
        ("café", True, "café"),
        (b"\xff", False, b"\xff"),
        (b"\x00", None, b"\x00"),
    ]:
        server.send(message)
        assert client.recv(timeout=TIMEOUT, decode=decode) == expected


def test_recv_with_a_timeout(pairs: Pairs) -> None:
    """recv(timeout) raises TimeoutError after about that long, recv(timeout=0) at once,
    and the connection stays usable; timeout=0 returns a message that has arrived."""
    server, client = pairs()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        client.recv(timeout=0.1)
    assert 0.09 < time.monotonic() - start < TIMEOUT
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        client.recv(timeout=0)
    assert time.monotonic() - start < 0.1
    server.send("arrived")
    assert server.ping().wait(TIMEOUT)  # answered by the client after it queued "arrived"
    assert client.recv(timeout=0) == "arrived"


def test_a_second_reader_raises_concurrency_error(pairs: Pairs) -> None:
    """While a thread is in recv(), recv() and recv_streaming() from another thread raise
    ConcurrencyError; the first reader is unaffected."""
    server, client = pairs()
    results: list[syncws.Data] = []
    thread = threading.Thread(target=lambda: results.append(client.recv(timeout=TIMEOUT)))
    thread.start()
    try:
        assert wait_for(lambda: client.hb_recv_count is None, TIMEOUT)  # it is in recv()
        with pytest.raises(syncws.ConcurrencyError):
            client.recv()
        with pytest.raises(syncws.ConcurrencyError):
            next(client.recv_streaming())
    finally:
        server.send("release")
        thread.join(TIMEOUT)
    assert results == ["release"]


def test_a_fragmented_send_is_streamed_fragment_by_fragment(pairs: Pairs) -> None:
    """send() of an iterable sends one frame per item, which recv_streaming() yields as
    each arrives (before the sender produced the next one), and recv() assembles."""
    server, client = pairs()
    seen = [threading.Event() for _ in range(3)]

    def pieces() -> Iterator[str]:
        for i, piece in enumerate(["Hel", "lo, ", "world"]):
            yield piece
            assert seen[i].wait(TIMEOUT)

    sender = threading.Thread(target=server.send, args=(pieces(),))
    sender.start()
    received = []
    for i, fragment in enumerate(client.recv_streaming()):
        received.append(fragment)
        if i < len(seen):
            seen[i].set()
    sender.join(TIMEOUT)
    assert received[:3] == ["Hel", "lo, ", "world"]  # then an empty last frame
    assert "".join(received) == "Hello, world"
    server.send([b"a", b"b", b"c"])
    assert client.recv(timeout=TIMEOUT) == b"abc"
    server.send("whole")  # a whole message is streamed in one piece
    assert list(client.recv_streaming(decode=False)) == [b"whole"]


def test_leaving_recv_streaming_early_drops_the_rest_of_the_message(pairs: Pairs) -> None:
    """An iteration left after the first fragment drops the rest of that message, even
    fragments sent after it left; the next recv() gets the next message."""
    server, client = pairs()
    left = threading.Event()

    def pieces() -> Iterator[bytes]:
        yield b"first"
        assert left.wait(TIMEOUT)
        yield b"second"
        yield b"third"

    sender = threading.Thread(target=server.send, args=(pieces(),))
    sender.start()
    for fragment in client.recv_streaming():
        assert fragment == b"first"
        break
    left.set()
    sender.join(TIMEOUT)
    server.send("next")
    assert client.recv(timeout=TIMEOUT) == "next"


def test_iteration_ends_on_a_normal_close(pairs: Pairs) -> None:
    """Iterating yields the messages, then stops when the peer closes with 1000; with
    another code, it raises ConnectionClosedError."""
    server, client = pairs()
    server.send("one")
    server.send(b"two")
    closer = threading.Thread(target=server.close)
    closer.start()
    assert list(client) == ["one", b"two"]
    closer.join(TIMEOUT)
    assert client.close_code == 1000

    server, client = pairs()
    server.send("before")
    closer = threading.Thread(target=server.close, args=(1011, "crash"))
    closer.start()
    received = []
    with pytest.raises(syncws.ConnectionClosedError) as info:
        for message in client:
            received.append(message)
    closer.join(TIMEOUT)
    assert received == ["before"] and info.value.rcvd == syncws.Close(1011, "crash")


@pytest.mark.parametrize("closing", ["server", "client"])
def test_close_code_and_reason_reach_the_peer_which_echoes_them(pairs: Pairs, closing: str) -> None:
    """close(4000, "bye") on either side: the peer's recv() raises with rcvd = that close,
    and the peer echoes its code and reason (RFC 6455 §5.5.1); both end with them."""
    server, client = pairs()
    closer, peer = (server, client) if closing == "server" else (client, server)
    thread = threading.Thread(target=closer.close, args=(4000, "bye"))
    thread.start()
    with pytest.raises(syncws.ConnectionClosedError) as info:
        peer.recv(timeout=TIMEOUT)
    thread.join(TIMEOUT)
    assert info.value.rcvd == syncws.Close(4000, "bye")
    assert info.value.sent == syncws.Close(4000, "bye")
    assert info.value.rcvd_then_sent is True
    for conn in (closer, peer):
        assert conn.wait_closed(TIMEOUT)
        assert (conn.close_code, conn.close_reason) == (4000, "bye")
        assert conn.state is syncws.State.CLOSED


def test_close_of_an_idle_peer_is_answered_by_its_heartbeat(pairs: Pairs) -> None:
    """close() returns once the closing handshake is done, although no thread of the
    peer reads: the heartbeat does, and the peer's recv() then raises ConnectionClosedOK."""
    server, client = pairs()
    server.send("queued before the close")
    client.close()
    assert client.close_code == 1000 and server.wait_closed(TIMEOUT)
    assert client.recv(timeout=0) == "queued before the close"  # sent while open
    with pytest.raises(syncws.ConnectionClosedOK):
        client.recv(timeout=0)
    assert server.close_code == 1000


def test_messages_before_the_close_are_received_first(pairs: Pairs) -> None:
    """Messages that arrived before the peer closed are returned first, then
    ConnectionClosedOK."""
    server, client = pairs()
    for i in range(3):
        server.send(f"message {i}")
    server.close()  # nobody reads the client: its heartbeat completes the handshake
    assert client.wait_closed(TIMEOUT)
    assert [client.recv(timeout=0) for _ in range(3)] == [f"message {i}" for i in range(3)]
    with pytest.raises(syncws.ConnectionClosedOK):
        client.recv(timeout=0)


def test_wait_closed_waits_for_the_tcp_connection(pairs: Pairs) -> None:
    """wait_closed() is False while the connection is open (after its timeout) and True
    once it is closed, from any thread."""
    server, client = pairs()
    assert not client.wait_closed(0.05)
    waiter_result: list[bool] = []
    waiter = threading.Thread(target=lambda: waiter_result.append(client.wait_closed(TIMEOUT)))
    waiter.start()
    server.close()
    waiter.join(TIMEOUT)
    assert waiter_result == [True]


def test_send_after_close_raises_and_nothing_is_sent(pairs: Pairs) -> None:
    """send(), ping() and pong() on a closed connection raise ConnectionClosed (OK after a
    normal close); close() again does nothing."""
    _, client = pairs()
    client.close()
    with pytest.raises(syncws.ConnectionClosedOK):
        client.send("too late")
    with pytest.raises(syncws.ConnectionClosedOK):
        client.send(["too", "late"])
    with pytest.raises(syncws.ConnectionClosed):
        client.ping()
    with pytest.raises(syncws.ConnectionClosed):
        client.pong()
    client.close()


@pytest.mark.parametrize(
    ("message", "text", "received"),
    [
        ("é", None, "é"),
        ("é", True, "é"),
        ("é", False, "é".encode()),
        (b"\xc3\xa9", None, b"\xc3\xa9"),
        (b"\xc3\xa9", True, "é"),
        (b"\xc3\xa9", False, b"\xc3\xa9"),
        (bytearray(b"ab"), None, b"ab"),
        (memoryview(b"abcd")[1:3], None, b"bc"),
        (memoryview(b"ab"), True, "ab"),
        (["a", "b"], None, "ab"),
        ([b"a", bytearray(b"b")], None, b"ab"),
        ((s for s in ("a", "b")), False, b"ab"),
    ],
)
def test_send_frames_each_type_as_text_or_binary(
    pairs: Pairs, message: object, text: bool | None, received: str | bytes
) -> None:
    """str is sent as text and bytes-like as binary, an iterable as one fragmented message
    of its items' kind, and ``text`` overrides the kind; the peer receives it so."""
    server, client = pairs()
    client.send(message, text=text)  # type: ignore[arg-type]
    assert server.recv(timeout=TIMEOUT) == received


@pytest.mark.parametrize("message", [42, 3.14, None, {"key": "value"}, [1, 2]])
def test_send_an_unsupported_type_raises_type_error(pairs: Pairs, message: object) -> None:
    """send() rejects what is neither str, bytes-like nor an iterable of them, and the
    connection stays usable."""
    server, client = pairs()
    with pytest.raises(TypeError):
        client.send(message)  # type: ignore[arg-type]
    client.send("still usable")
    assert server.recv(timeout=TIMEOUT) == "still usable"


def test_ping_event_is_set_by_its_pong_and_measures_latency(pairs: Pairs) -> None:
    """ping() returns an event that the peer's pong sets (the peer's heartbeat answers
    while nobody reads it), and latency is then known; an idle peer's ping too."""
    server, client = pairs()
    assert client.latency == 0
    assert client.ping(b"payload").wait(TIMEOUT)
    assert 0 < client.latency < TIMEOUT
    assert server.ping("text payload").wait(TIMEOUT)
    assert server.latency > 0


def test_unsolicited_pong_reaches_the_peer_and_acknowledges_nothing(pairs: Pairs) -> None:
    """pong() sends a pong frame that the peer takes as a heartbeat: it sets no event of a
    ping with another payload, and messages flow on."""
    server, client = pairs()
    waiting = server.ping(b"mine")
    client.pong(b"other")  # unsolicited: its payload matches no ping
    client.send("after the pong")
    assert server.recv(timeout=TIMEOUT) == "after the pong"
    assert waiting.wait(TIMEOUT)  # set by the client's own answer to "mine", not "other"
    with pytest.raises(ValueError):
        client.pong(b"x" * 126)


def test_max_queue_stops_reading_the_socket(pairs: Pairs) -> None:
    """While nobody reads, the heartbeat queues messages up to max_queue and then stops
    reading: the peer's pings go unanswered (backpressure) until recv() catches up."""
    server, client = pairs(max_queue=2)
    for i in range(3):
        server.send(f"m{i}")
    assert server.ping().wait(TIMEOUT)  # the client's heartbeat read the three messages
    server.send("beyond the queue")
    stalled = server.ping()
    assert not stalled.wait(0.5)  # the queue is full: the client reads no more
    assert [client.recv(timeout=TIMEOUT) for _ in range(4)] == [
        "m0",
        "m1",
        "m2",
        "beyond the queue",
    ]
    assert stalled.wait(TIMEOUT)


def test_close_timeout_aborts_against_a_peer_that_never_answers(pairs: Pairs) -> None:
    """close() waits close_timeout for a peer that reads the close frame but never
    answers it, then closes TCP: the connection ends with 1006."""
    client, raw = pairs.client_facing_raw(close_timeout=0.3)
    start = time.monotonic()
    client.close(1001, "leaving")
    assert 0.25 < time.monotonic() - start < 0.3 + TIMEOUT
    assert client.wait_closed(0)
    assert client.close_code == 1006
    frames = FrameReader(raw).read_until_eof()
    assert [(opcode, parse_close(payload)) for opcode, payload in frames] == [
        (0x8, (1001, "leaving"))
    ]


def test_messages_and_close_from_a_raw_peer(pairs: Pairs) -> None:
    """Frames written by an independent peer (masked, as a client's are) come out as
    messages; its close in the same segment is answered and ends the iteration."""
    server, raw = pairs.server_facing_raw()
    texts = [frame(0x1, text.encode(), mask=True, key=b"abcd") for text in ("a", "b")]
    raw.sendall(b"".join(texts) + close_frame(1000, "done", mask=True))
    assert list(server) == ["a", "b"]
    assert FrameReader(raw).read() == (0x8, close_frame(1000, "done", mask=False)[2:])
    raw.shutdown(socket.SHUT_WR)
    assert server.wait_closed(TIMEOUT)
    assert (server.close_code, server.close_reason) == (1000, "done")


@pytest.mark.parametrize(("fails", "code"), [(False, 1000), (True, 1011)])
def test_context_manager_closes_with_1000_or_1011(pairs: Pairs, fails: bool, code: int) -> None:
    """Leaving a with block closes the connection: 1000 normally, 1011 on an exception
    (which propagates)."""
    server, client = pairs()
    with pytest.raises(LookupError) if fails else _nothing(), client as ws:
        assert ws is client
        if fails:
            raise LookupError("in the block")
    assert client.close_code == code
    with pytest.raises(syncws.ConnectionClosed) as info:
        server.recv(timeout=TIMEOUT)
    assert info.value.rcvd is not None and info.value.rcvd.code == code


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def test_a_transport_given_as_is_is_used(pairs: Pairs) -> None:
    """from_handshake() takes a runtime transport as well as a socket."""
    server_protocol, client_protocol = handshake(syncws.ConnectionOptions(compression=None))
    a, b = socket.socketpair()
    server = syncws.ServerConnection.from_handshake(
        Transport(a), server_protocol, heartbeat=pairs.heartbeat
    )
    client = syncws.ClientConnection.from_handshake(b, client_protocol, heartbeat=pairs.heartbeat)
    try:
        client.send("over a Transport")
        assert server.recv(timeout=TIMEOUT) == "over a Transport"
    finally:
        threads = [threading.Thread(target=conn.close) for conn in (server, client)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
    assert server.wait_closed(TIMEOUT) and client.wait_closed(TIMEOUT)


def test_a_tls_failure_in_a_nonblocking_write_gives_the_writer_token_back(
    pairs: Pairs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When TLS fails to encrypt a frame written without blocking (a pong here), the
    connection is aborted and the writer token given back: a later send() raises
    ConnectionClosed at once instead of waiting for the token forever (no write_timeout)."""
    server, client = pairs(tls=True)

    def broken(data: bytes | memoryview) -> bytes:
        raise ssl.SSLError("the TLS session broke")

    monkeypatch.setattr(server.transport, "encode", broken)
    server.pong(b"beat")  # the failure aborts the connection; pong() itself returns
    outcome: list[BaseException] = []

    def send() -> None:
        try:
            server.send("after")
        except BaseException as exc:  # recorded for the assertion
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    sender.join(TIMEOUT)
    assert not sender.is_alive(), "send() waited for a token nobody would give back"
    assert len(outcome) == 1 and isinstance(outcome[0], syncws.ConnectionClosed)
    monkeypatch.undo()
    assert client.wait_closed(TIMEOUT)
