"""The harness of the frame targets (``fuzz_frames_server.py``, ``fuzz_frames_client.py``).

An input is one byte of settings (:class:`Config`) and the bytes the peer sends after the
opening handshake. The harness opens a connection with the real handshake code of both
sides (the side under test is a :class:`~syncws.protocol.server.ServerProtocol` or a
:class:`~syncws.protocol.client.ClientProtocol`, permessage-deflate negotiated or not), feeds
it the stream in several ways, lets the application send a few frames, then ends the TCP
connection. The ways (:data:`MODES`):

* ``whole``: one read, through the fast paths as the runtime takes them
  (``receive_message``, then ``receive_data`` and its multi-message loop, then
  ``start_payload_read`` / ``finish_payload_read`` for a large message, whose rest is read
  from the next reads);
* ``bytes``: one byte per read, ``receive_data`` only;
* ``chunks``: random reads (cut the same way for the same input), fast paths;
* ``chunks-general``: the same reads, ``receive_data`` only.

Oracles:

* No exception escapes the protocol: errors of the peer fail the connection instead
  (the contract of :mod:`syncws.protocol.connection`); the application's sends raise only
  what they document (``ConnectionClosed``, ``RuntimeError``, ``ValueError``).
* Every way gives the same events, the same frames sent (compared unmasked: a client's
  masks are random), the same exceptions of the sends, the same close codes, reasons and
  final state, and the same error. One difference is allowed, by design: an invalid UTF-8
  sequence in a text frame that the stream ends inside fails the connection (1007) when
  the frame arrives in pieces (fail fast, Autobahn|Testsuite 6.4.3) and not when it is
  in one read.
* What the side under test sends is valid for its peer: well-formed frames, masked only by
  a client, control frames of 125 bytes at most, nothing after a close frame, and the
  peer (a ``Protocol`` with the negotiated extension) receives them without failing.
* Output stays proportional to input (no amplification beyond a pong's mask).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections import deque
from collections.abc import Callable, Iterator
from typing import Literal

import fuzzing

from syncws.exceptions import ConnectionClosed, InvalidHandshake, ProtocolError
from syncws.protocol import mask as mask_module
from syncws.protocol import shortcuts as shortcuts_module
from syncws.protocol.client import ClientProtocol
from syncws.protocol.connection import Protocol
from syncws.protocol.deflate import ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory
from syncws.protocol.events import (
    Event,
    Fragment,
    Message,
    Ping,
    Pong,
    RequestReceived,
    ResponseReceived,
    State,
)
from syncws.protocol.extensions import Extension
from syncws.protocol.frames import MAX_CONTROL_PAYLOAD, Close, Opcode, parse_frame
from syncws.protocol.handshake import build_request, process_request, process_response
from syncws.protocol.mask import apply_mask
from syncws.protocol.server import ServerProtocol
from syncws.protocol.uri import parse_uri

Role = Literal["server", "client"]

MAX_SIZES: tuple[int | None, ...] = (2**20, None, 64, 1000)
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
URI = parse_uri("ws://fuzz.example/chat")

#: (name of the reads, whether the fast paths are used)
MODES = (("whole", True), ("bytes", False), ("chunks", True), ("chunks-general", False))


@dataclasses.dataclass(frozen=True)
class Config:
    """The settings that the first byte of an input selects.

    Attributes:
        deflate: Bit 0: permessage-deflate is negotiated.
        variant: Bits 1-2: the factories' options (see :func:`factories`).
        max_size: Bits 3-4: ``max_size`` of the side under test (1 MiB, none, 64, 1000).
        in_stream: Bit 5: the handshake bytes are part of the stream (so they share reads
            with the first frames), instead of being processed before it.
        small: Bit 6: lower the fast paths' size thresholds (``BULK_THRESHOLD`` to 130,
            the memoryview threshold to 40), so that small inputs take every path.
        close_first: Bit 7: the side under test starts the closing handshake as soon as the
            connection is open, before the stream (ignored for a client whose handshake
            is in the stream: its first frames come in the same read as the response).
    """

    deflate: bool = False
    variant: int = 0
    max_size: int | None = 2**20
    in_stream: bool = False
    small: bool = False
    close_first: bool = False

    @classmethod
    def from_byte(cls, byte: int) -> Config:
        return cls(
            deflate=bool(byte & 1),
            variant=byte >> 1 & 3,
            max_size=MAX_SIZES[byte >> 3 & 3],
            in_stream=bool(byte & 0x20),
            small=bool(byte & 0x40),
            close_first=bool(byte & 0x80),
        )

    def to_byte(self) -> int:
        return (
            int(self.deflate)
            | self.variant << 1
            | MAX_SIZES.index(self.max_size) << 3
            | int(self.in_stream) << 5
            | int(self.small) << 6
            | int(self.close_first) << 7
        )


def factories(
    config: Config,
) -> tuple[list[ClientPerMessageDeflateFactory], list[ServerPerMessageDeflateFactory]]:
    """The client's and the server's extension factories for ``config``."""
    if not config.deflate:
        return [], []
    client: ClientPerMessageDeflateFactory
    server: ServerPerMessageDeflateFactory
    if config.variant == 0:  # the defaults of compression="deflate"
        client, server = ClientPerMessageDeflateFactory(), ServerPerMessageDeflateFactory()
    elif config.variant == 1:  # no context takeover, asked by the client
        client = ClientPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True
        )
        server = ServerPerMessageDeflateFactory()
    elif config.variant == 2:  # the smallest windows
        client = ClientPerMessageDeflateFactory(server_max_window_bits=8, client_max_window_bits=8)
        server = ServerPerMessageDeflateFactory(server_max_window_bits=8)
    else:  # no context takeover imposed by the server, everything compressed
        client = ClientPerMessageDeflateFactory(min_size=0)
        server = ServerPerMessageDeflateFactory(
            server_no_context_takeover=True,
            client_no_context_takeover=True,
            client_max_window_bits=10,
            compress_level=1,
            min_size=0,
        )
    return [client], [server]


@functools.cache
def request_bytes(config: Config) -> bytes:
    """The handshake request the server under test receives: always the same bytes."""
    client_factories, _ = factories(config)
    request = build_request(
        URI.host_header, URI.resource_name, key=KEY, extensions=client_factories
    )
    return request.serialize()


def negotiate(config: Config) -> tuple[list[Extension], list[Extension]]:
    """Run the handshake functions of both sides; return the client's and the server's
    active extensions (fresh objects)."""
    client_factories, server_factories = factories(config)
    request = build_request(
        URI.host_header, URI.resource_name, key=KEY, extensions=client_factories
    )
    response, _, server_extensions = process_request(request, extensions=server_factories)
    _, client_extensions = process_response(response, key=KEY, extensions=client_factories)
    return client_extensions, server_extensions


def peer(config: Config, role: Role) -> Protocol:
    """An open protocol for the peer of the side under test, with its negotiated
    extensions: it builds seed frames (``make_corpus.py``) and checks what is sent."""
    client_extensions, server_extensions = negotiate(config)
    if role == "server":
        return Protocol(is_client=True, extensions=client_extensions, max_size=None)
    return Protocol(is_client=False, extensions=server_extensions, max_size=None)


@contextlib.contextmanager
def thresholds(small: bool) -> Iterator[None]:
    """Lower the size thresholds of the fast paths for the duration (:attr:`Config.small`).

    They are module constants read at each call; lowering them only moves which path a
    frame takes, which the comparison of the ways of feeding must not notice.
    """
    if not small:
        yield
        return
    patches = [
        (shortcuts_module, "BULK_THRESHOLD", 130),
        (mask_module, "_VIEW_THRESHOLD", 40),  # read by mask._unmask_slice, for every reader
    ]
    saved = [getattr(module, name) for module, name, _ in patches]
    for module, name, value in patches:
        setattr(module, name, value)
    try:
        yield
    finally:
        for (module, name, _), value in zip(patches, saved, strict=True):
            setattr(module, name, value)


def _event(event: Event) -> tuple[object, ...]:
    if isinstance(event, Message):
        return ("message", event.data)
    if isinstance(event, Fragment):
        return ("fragment", event.data, event.final)
    if isinstance(event, Ping):
        return ("ping", event.data)
    if isinstance(event, Pong):
        return ("pong", event.data)
    if isinstance(event, Close):
        return ("close", event.code, event.reason)
    if isinstance(event, RequestReceived):
        return ("request",)
    if isinstance(event, ResponseReceived):
        return ("response", event.response.status_code)
    raise fuzzing.Finding(f"unknown event {event!r}")


def _error(exc: BaseException | None) -> tuple[object, ...] | None:
    if exc is None:
        return None
    return (type(exc).__name__, str(exc), getattr(exc, "code", None))


SentFrame = tuple[int, bool, bool, bool, bool, bytes]  # opcode, fin, rsv1-3, payload


def sent_frames(data: bytes, masked: bool) -> list[SentFrame]:
    """Parse what a side sent into frames, unmasked; check each is valid to send."""
    frames: list[SentFrame] = []
    pos = 0
    closed = False
    while pos < len(data):
        try:
            parsed = parse_frame(data[pos:])
        except ProtocolError as exc:
            raise fuzzing.Finding(f"sent an invalid frame: {exc}: {data[pos:]!r}") from exc
        if parsed is None:
            raise fuzzing.Finding(f"sent an incomplete frame: {data[pos:]!r}")
        frame, mask, size = parsed
        if (mask is not None) != masked:
            raise fuzzing.Finding(f"sent a frame {'un' if masked else ''}masked")
        if closed:
            raise fuzzing.Finding(f"sent a frame after a close frame: {frame!r}")
        if frame.opcode >= 8 and (len(frame.data) > MAX_CONTROL_PAYLOAD or not frame.fin):
            raise fuzzing.Finding(f"sent an invalid control frame: {frame!r}")
        closed = frame.opcode == Opcode.CLOSE
        frames.append((frame.opcode, frame.fin, frame.rsv1, frame.rsv2, frame.rsv3, frame.data))
        pos += size
    return frames


def _send_text(p: Protocol) -> None:
    p.send_text(("héllo wörld, " * 8).encode())


def _send_fragments(p: Protocol) -> None:
    p.send_binary(bytes(40), fin=False)
    p.send_continuation(b"abc" * 20, fin=True)


def _send_ping(p: Protocol) -> None:
    p.send_ping(b"ping")


def _send_close(p: Protocol) -> None:
    p.send_close(1000, "bye")


#: What the application does once the stream is fed, before the TCP connection ends.
ACTIONS: tuple[tuple[str, Callable[[Protocol], None]], ...] = (
    ("text", _send_text),
    ("fragments", _send_fragments),
    ("ping", _send_ping),
    ("close", _send_close),
)


@dataclasses.dataclass
class Record:
    """What happened in one way of feeding a stream."""

    events: list[tuple[object, ...]] = dataclasses.field(default_factory=list)
    received_sent: list[SentFrame] = dataclasses.field(default_factory=list)
    actions: list[str] = dataclasses.field(default_factory=list)
    action_sent: list[SentFrame] = dataclasses.field(default_factory=list)
    final: tuple[object, ...] = ()
    # Not compared: whether the stream ended inside a frame, and the protocol's error.
    unfinished: bool = False
    error: tuple[object, ...] | None = None

    def compared(self) -> tuple[object, ...]:
        return (self.events, self.received_sent, self.actions, self.action_sent, self.final)


class Session:
    """One connection of the side under test, fed one way."""

    def __init__(self, role: Role, config: Config, fast: bool) -> None:
        self.role = role
        self.config = config
        self.fast = fast
        self.record = Record()
        self.peer: Protocol | None = None
        self.proto: Protocol
        client_factories, server_factories = factories(config)
        if role == "server":
            self.proto = ServerProtocol(
                extensions=server_factories, max_size=config.max_size, server_header=None
            )
            self.handshake = request_bytes(config)
        else:
            client = ClientProtocol(URI, extensions=client_factories, max_size=config.max_size)
            request = client.connect()
            client.send_request(request)
            client.data_to_send()
            response, _, server_extensions = process_request(request, extensions=server_factories)
            self.handshake = response.serialize()
            self.peer = Protocol(is_client=False, extensions=server_extensions, max_size=None)
            self.proto = client

    def _opened(self) -> None:
        if self.config.close_first:
            self.proto.send_close(1000)

    def _events(self, events: list[Event]) -> None:
        for event in events:
            self.record.events.append(_event(event))
            if isinstance(event, RequestReceived):
                self._answer(event)
        if self.proto.pending_failure is not None:
            # What the runtime does once the application consumed the messages before
            # an error of the peer (see Protocol.fail_pending).
            self.proto.fail_pending()

    def _answer(self, event: RequestReceived) -> None:
        server = self.proto
        assert isinstance(server, ServerProtocol)
        response = server.accept(event.request)
        if response.status_code != 101:
            raise fuzzing.Finding(f"the server refused the harness' request: {response!r}")
        server.send_response(response)
        server.data_to_send()
        try:
            _, client_extensions = process_response(
                response, key=KEY, extensions=factories(self.config)[0]
            )
        except InvalidHandshake as exc:
            raise fuzzing.Finding(f"the client refuses the server's 101: {exc}") from exc
        self.peer = Protocol(is_client=True, extensions=client_extensions, max_size=None)
        self._opened()
        # Frames that came with the request, as the runtime processes them.
        self._events(server.receive_data(b""))

    def feed(self, pieces: list[bytes]) -> None:
        proto = self.proto
        reads = deque(pieces)
        while reads:
            data = reads.popleft()
            if self.fast and proto.state is State.OPEN and data:
                message = proto.receive_message(data)
                if message is not None:
                    self.record.events.append(("message", message))
                    continue
            self._events(proto.receive_data(data))
            bulk = proto.start_payload_read() if self.fast else None
            if bulk is not None:
                # The runtime reads the rest of the payload into its final buffer.
                need = bulk.size - len(bulk.received)
                rest = bytearray()
                while len(rest) < need and reads:
                    rest += reads.popleft()
                if len(rest) < need:
                    self.record.unfinished = True  # the stream ends inside the payload
                    break
                if len(rest) > need:
                    reads.appendleft(bytes(rest[need:]))
                    del rest[need:]
                payload = bulk.received + bytes(rest)
                if bulk.mask is not None:
                    payload = apply_mask(payload, bulk.mask)
                self._events(proto.finish_payload_read(bulk, payload))

    def run(self, stream: bytes, lengths: list[int]) -> Record:
        """Feed ``stream`` (preceded by :attr:`handshake` unless the configuration puts it
        in the stream) in reads of ``lengths``, act, end the connection; return what
        happened."""
        proto = self.proto
        if not self.config.in_stream:
            self._events(proto.receive_data(self.handshake))
            if self.role == "client":
                self._opened()
            if proto.state is not State.OPEN and proto.close_sent is None:
                raise fuzzing.Finding(f"the handshake failed: {proto.state!r}")
        received_before = proto.data_to_send()
        assert not received_before or self.config.close_first
        self.feed(fuzzing.split(stream, lengths))
        # The protocol's receive buffer: whether the stream ended inside a frame.
        self.record.unfinished |= bool(proto._buf)
        received_sent = received_before + proto.data_to_send()
        for name, action in ACTIONS:
            try:
                action(proto)
            except (ConnectionClosed, RuntimeError, ValueError) as exc:
                self.record.actions.append(f"{name}: {type(exc).__name__}: {exc}")
            else:
                self.record.actions.append(f"{name}: ok")
        action_sent = proto.data_to_send()
        if proto.receive_eof():
            raise fuzzing.Finding("receive_eof() returned events")
        masked = self.role == "client"
        self.record.received_sent = sent_frames(received_sent, masked)
        self.record.action_sent = sent_frames(action_sent, masked)
        self._check_peer(received_sent + action_sent, len(stream))
        self.record.error = _error(proto.exc)
        handshake_exc = getattr(proto, "handshake_exc", None)
        self.record.final = (
            proto.state,
            proto.close_code,
            proto.close_reason,
            proto.close_rcvd,
            proto.close_sent,
            proto.close_rcvd_then_sent,
            proto.should_close_transport(),
            self.record.error,
            _error(handshake_exc),
            proto.subprotocol,
        )
        return self.record

    def _check_peer(self, sent: bytes, received: int) -> None:
        # A pong is a ping's payload with a mask added: at most 3 times a 2-byte ping.
        actions = 512 + 6 * len(ACTIONS)
        if len(sent) > 3 * received + MAX_CONTROL_PAYLOAD + 6 + actions:
            raise fuzzing.Finding(f"sent {len(sent)} bytes for {received} received")
        if self.peer is None:
            return
        self.peer.receive_data(sent)
        exc = self.peer.exc or self.peer.pending_failure
        if exc is not None:
            raise fuzzing.Finding(f"the peer fails on what was sent: {exc!r}: {sent!r}")


def _tolerated(ref: Record, other: Record) -> bool:
    """The allowed difference: ``other`` failed with 1007 inside a text frame that the
    stream ends in, which ``ref`` received in one read and never completed."""
    if ref.unfinished is False or ref.error is not None or other.error is None:
        return False
    if other.error[2] != 1007 or ref.events != other.events:
        return False
    n = len(ref.received_sent)
    extra = other.received_sent[n:]
    return other.received_sent[:n] == ref.received_sent and all(
        frame[0] == Opcode.CLOSE and frame[5][:2] == b"\x03\xef" for frame in extra
    )


def check(role: Role, data: bytes) -> str:
    """Run the oracles on one input; return a signature of the outcome."""
    if not data:
        return "empty"
    config = Config.from_byte(data[0])
    stream = data[1:]
    records: dict[str, Record] = {}
    with thresholds(config.small):
        for name, fast in MODES:
            session = Session(role, config, fast)
            full = session.handshake + stream if config.in_stream else stream
            plans = fuzzing.chunk_plans(data, len(full))
            records[name] = session.run(full, plans[name.removesuffix("-general")])
    ref = records["whole"]
    for name, record in records.items():
        if record.compared() == ref.compared():
            continue
        if _tolerated(ref, record) or _tolerated(record, ref):
            continue
        if any(_tolerated(r, record) for r in records.values()):
            continue
        raise fuzzing.Finding(
            f"{role}: {name} differs from whole:\n  whole: {ref.compared()!r}\n"
            f"  {name}: {record.compared()!r}"
        )
    kinds = "".join(sorted({str(e[0])[0] for e in ref.events}))
    return f"{config.to_byte():02x} {kinds} {ref.error and ref.error[:2]}"
