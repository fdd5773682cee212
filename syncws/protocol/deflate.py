"""permessage-deflate: per-message compression (RFC 7692).

:class:`PerMessageDeflate` is the :class:`~syncws.protocol.extensions.Extension` active on
a connection once the handshake negotiated it; :class:`ServerPerMessageDeflateFactory` and
:class:`ClientPerMessageDeflateFactory` negotiate it (RFC 7692 §5, §7.1).
:func:`server_extensions` and :func:`client_extensions` turn the runtime's
``compression`` and ``extensions`` options into the list of factories to negotiate.

Defaults are chosen for servers holding many connections. zlib's defaults (15 window bits,
memLevel 8) allocate about 300 KiB per connection (compressor plus decompressor, measured
with ``tracemalloc``); a server compressing with 12 window bits and memLevel 5 allocates
about 77 KiB, for about 11% more bytes on the wire on JSON messages with context takeover
(see ``docs/topics/compression.rst`` for the measurements). Compressors and decompressors
are created on first use, so a connection that only exchanges small messages pays nothing.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..exceptions import NegotiationError, PayloadTooBig, ProtocolError
from .extensions import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    ServerExtensionFactory,
)
from .frames import Frame, Opcode

__all__ = [
    "COMPRESS_LEVEL",
    "MEM_LEVEL",
    "MIN_COMPRESS_SIZE",
    "SERVER_MAX_WINDOW_BITS",
    "ClientPerMessageDeflateFactory",
    "PerMessageDeflate",
    "ServerPerMessageDeflateFactory",
    "client_extensions",
    "server_extensions",
]

#: The extension name registered by RFC 7692 §9.
NAME = "permessage-deflate"

#: Window bits a server compresses with unless the client asks for less (RFC 7692
#: §7.1.2.1): a 4 KiB window instead of 32 KiB. With :data:`MEM_LEVEL`, the compressor
#: allocates about 38 KiB instead of 262 KiB, for ~11% more bytes on JSON messages.
SERVER_MAX_WINDOW_BITS = 12

#: zlib memLevel of compressors (1-9, zlib's default is 8). 5 sizes the hash table and the
#: pending buffer for 4 KiB windows; with a 32 KiB window it still saves 112 KiB per
#: compressor for a 1% larger output on JSON messages.
MEM_LEVEL = 5

#: zlib compression level (0-9, or -1 for zlib's default, which is 6).
COMPRESS_LEVEL = 6

#: Whole messages shorter than this are sent uncompressed (RSV1 clear), which RFC 7692 §6
#: allows message by message. Below 32 bytes, deflate saves at most a dozen bytes (on
#: repetitive text with context takeover) or adds a few (on anything else), for ~2 µs of
#: CPU per message; the first frame of a fragmented message is always compressed, since
#: the size of the whole message isn't known then.
MIN_COMPRESS_SIZE = 32

# Whole messages at least this large are sent uncompressed if deflate doesn't shrink them,
# even with context takeover (see PerMessageDeflate.encode). Compressing 4 KiB takes 50 to
# 100 us, so the copy of the compressor this needs costs a few percent at most.
_ROLLBACK_SIZE = 4096

# The end of a Z_SYNC_FLUSH: an empty stored block. RFC 7692 §7.2.1 removes it from the
# end of each compressed message; §7.2.2 appends it back before decompressing.
_EMPTY_BLOCK = b"\x00\x00\xff\xff"

# A window-bits value: a decimal integer 8-15 without leading zeros (RFC 7692 §7.1.2).
_WINDOW_BITS_RE = re.compile(r"[89]|1[0-5]")

_PARAMS = frozenset(
    {
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits",
        "client_max_window_bits",
    }
)


class PerMessageDeflate:
    """The permessage-deflate extension on one connection (RFC 7692 §6, §7.2).

    A compressed message has RSV1 set on its first frame; its frames' payloads, joined,
    are one raw DEFLATE stream flushed with ``Z_SYNC_FLUSH`` whose final ``00 00 FF FF``
    is removed (§7.2.1). Each frame is flushed, so that the peer can decompress a
    fragmented message frame by frame. Messages without RSV1 pass through unchanged.

    With context takeover (the default), a direction keeps one compressor and one
    decompressor for the whole connection, so a message can refer to earlier ones
    (§7.1.1). Without it, the sender ends each message with ``Z_FULL_FLUSH``, which
    makes zlib forget the history exactly like a new compressor, without reallocating it;
    the receiving decompressor needs no reset, since such data never refers to earlier
    messages.

    Args:
        remote_no_context_takeover: The peer doesn't use context takeover.
        local_no_context_takeover: Don't use context takeover when compressing.
        remote_max_window_bits: Window bits of the peer's compressor (8-15): the window
            the decompressor allocates.
        local_max_window_bits: Window bits to compress with (8-15). zlib can't compress
            raw DEFLATE with an 8-bit window, so 8 compresses with 9: zlib never emits a
            match distance above the window size minus 262 bytes, i.e. 250 bytes for a
            512-byte window, so the output is valid for a peer with a 256-byte window.
        compress_level: zlib compression level.
        mem_level: zlib memLevel of the compressor.
        min_size: Whole messages shorter than this many bytes are sent uncompressed.
    """

    name = NAME
    rsv_bits = frozenset({1})
    #: A message without RSV1 is not compressed: decoding returns it as it is.
    plain_messages_unchanged = True

    def __init__(
        self,
        *,
        remote_no_context_takeover: bool = False,
        local_no_context_takeover: bool = False,
        remote_max_window_bits: int = 15,
        local_max_window_bits: int = 15,
        compress_level: int = COMPRESS_LEVEL,
        mem_level: int = MEM_LEVEL,
        min_size: int = MIN_COMPRESS_SIZE,
    ) -> None:
        _check_window_bits(remote_max_window_bits, "remote_max_window_bits")
        _check_window_bits(local_max_window_bits, "local_max_window_bits")
        _check_zlib_settings(compress_level, mem_level, min_size)
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_max_window_bits = remote_max_window_bits
        self.local_max_window_bits = local_max_window_bits
        self.compress_level = compress_level
        self.mem_level = mem_level
        self.min_size = min_size
        self._end_flush = zlib.Z_FULL_FLUSH if local_no_context_takeover else zlib.Z_SYNC_FLUSH
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        self._encoding = False  # sending a compressed fragmented message
        self._decoding = False  # receiving a compressed fragmented message

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflate(remote_no_context_takeover={self.remote_no_context_takeover}, "
            f"local_no_context_takeover={self.local_no_context_takeover}, "
            f"remote_max_window_bits={self.remote_max_window_bits}, "
            f"local_max_window_bits={self.local_max_window_bits})"
        )

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Decompress an incoming frame of a compressed message (RFC 7692 §7.2.2).

        Decompression stops after ``max_size + 1`` bytes of output, so a small frame that
        inflates to gigabytes costs at most that much memory before it fails.

        Args:
            frame: A data frame or continuation, as received.
            max_size: How many bytes the decompressed payload may have at most.

        Raises:
            PayloadTooBig: The payload decompresses to more than ``max_size`` bytes.
            ProtocolError: RSV1 is set on a continuation frame (§6) or on a control
                frame, or the data is not valid DEFLATE.
        """
        if frame.opcode == Opcode.CONT:
            if frame.rsv1:
                raise ProtocolError("RSV1 set on a continuation frame")
            if not self._decoding:
                return frame
        elif frame.opcode >= 8:
            if frame.rsv1:
                raise ProtocolError("RSV1 set on a control frame")
            return frame
        elif not frame.rsv1:
            return frame
        self._decoding = not frame.fin
        data = frame.data + _EMPTY_BLOCK if frame.fin else frame.data
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = zlib.decompressobj(wbits=-self.remote_max_window_bits)
            self._decompressor = decompressor
        try:
            if max_size is None:
                output = decompressor.decompress(data)
            else:
                # max_length=0 means "no limit" to zlib, hence the + 1. Output stops at
                # max_size + 1 bytes and the rest of the input stays in unconsumed_tail:
                # that tail is non-empty only when the output reached the limit, so the
                # length check covers both cases.
                output = decompressor.decompress(data, max_size + 1)
        except zlib.error as exc:
            raise ProtocolError(f"invalid compressed data: {exc}") from None
        if max_size is not None and len(output) > max_size:
            self._decompressor = None  # its state is now useless: free it
            raise PayloadTooBig(f"frame exceeds {max_size} bytes once decompressed")
        if decompressor.eof:
            # The peer ended the DEFLATE stream (a block with BFINAL set, which §7.2.3.4
            # permits): what follows is a new stream, for a new decompressor.
            self._decompressor = None
        return Frame(frame.opcode, output, fin=frame.fin, rsv2=frame.rsv2, rsv3=frame.rsv3)

    def encode(self, frame: Frame) -> Frame:
        """Compress an outgoing frame (RFC 7692 §7.2.1).

        Control frames, whole messages shorter than ``min_size``, and whole messages that
        deflate doesn't shrink (checked from 4 KiB, or from ``min_size`` without context
        takeover) go out unchanged. Otherwise every frame of the message is compressed,
        and the first one gets RSV1; a fragmented message is always compressed.
        """
        opcode = frame.opcode
        if opcode == Opcode.CONT:
            if not self._encoding:
                return frame
        elif opcode >= 8 or (frame.fin and len(frame.data) < self.min_size):
            return frame
        compressor = self._compressor
        if compressor is None:
            compressor = zlib.compressobj(
                self.compress_level,
                zlib.DEFLATED,
                # zlib rejects an 8-bit window for raw DEFLATE: see the class docstring.
                -max(self.local_max_window_bits, 9),
                self.mem_level,
            )
            self._compressor = compressor
        # A whole message that doesn't shrink goes out as it is (RFC 7692 §6 lets each
        # message choose): it costs the peer no decompression, and it can't exceed a limit
        # the peer applies to frames on the wire (websockets refuses a 1 MiB frame at its
        # default max_size, and 1 MiB of random data deflates to 1 MiB + 2.5 KiB). With
        # context takeover, the compressor must then forget the message, which the peer
        # never sees: it is restored from a copy (~1.4 us at 12 window bits, 3 us at 15),
        # taken only for messages large enough for that to be noise. Without context
        # takeover, Z_FULL_FLUSH forgets it anyway.
        may_skip = (
            frame.fin
            and opcode != Opcode.CONT
            and (self.local_no_context_takeover or len(frame.data) >= _ROLLBACK_SIZE)
        )
        snapshot = compressor.copy() if may_skip and not self.local_no_context_takeover else None
        data = compressor.compress(frame.data)
        if frame.fin:
            self._encoding = False
            # The flush always emits the whole 4-byte empty block, so it is at its end.
            data += compressor.flush(self._end_flush)[:-4]
            if may_skip and len(data) >= len(frame.data):
                if snapshot is not None:
                    self._compressor = snapshot
                return frame
        else:
            self._encoding = True
            data += compressor.flush(zlib.Z_SYNC_FLUSH)
        return Frame(
            opcode,
            data,
            fin=frame.fin,
            rsv1=opcode != Opcode.CONT,
            rsv2=frame.rsv2,
            rsv3=frame.rsv3,
        )


def _check_window_bits(value: int | None, name: str) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise TypeError(f"{name} must be an integer or None, got {type(value).__name__}")
    if value is not None and not 8 <= value <= 15:
        raise ValueError(f"{name} must be between 8 and 15, got {value!r}")


def _check_zlib_settings(compress_level: int, mem_level: int, min_size: int) -> None:
    for name, value in (
        ("compress_level", compress_level),
        ("mem_level", mem_level),
        ("min_size", min_size),
    ):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not -1 <= compress_level <= 9:
        raise ValueError(f"compress_level must be between -1 and 9, got {compress_level!r}")
    if not 1 <= mem_level <= 9:
        raise ValueError(f"mem_level must be between 1 and 9, got {mem_level!r}")
    if min_size < 0:
        raise ValueError(f"min_size must be positive or 0, got {min_size!r}")


def _parse_params(params: Sequence[ExtensionParameter], *, is_offer: bool) -> dict[str, int | None]:
    """Validate the parameters of an offer or a response (RFC 7692 §7.1).

    Returns:
        The parameters by name: ``None`` for a flag (or for ``client_max_window_bits``
        without a value in an offer), else the window bits.

    Raises:
        NegotiationError: An unknown or repeated parameter, a flag with a value, or a
            window bits value that is missing or not 8-15 written without leading zeros.
    """
    parsed: dict[str, int | None] = {}
    for name, value in params:
        if name not in _PARAMS:
            raise NegotiationError(f"unknown {NAME} parameter: {name}")
        if name in parsed:
            raise NegotiationError(f"duplicate {NAME} parameter: {name}")
        if name.endswith("_no_context_takeover"):
            if value is not None:
                raise NegotiationError(f"{name} takes no value, got {value!r}")
            parsed[name] = None
        elif value is None:
            # Only a client's offer may omit client_max_window_bits' value (§7.1.2.2).
            if not is_offer or name == "server_max_window_bits":
                raise NegotiationError(f"{name} needs a value")
            parsed[name] = None
        elif _WINDOW_BITS_RE.fullmatch(value):
            parsed[name] = int(value)
        else:
            raise NegotiationError(f"invalid {name}: {value!r}")
    return parsed


def _already_accepted(accepted: Sequence[Extension]) -> bool:
    # Both would claim RSV1 (RFC 7692 §5: a client may offer alternatives, of which
    # the server accepts one at most).
    return any(extension.name == NAME for extension in accepted)


# websockets' compress_settings keys (zlib.compressobj's arguments) that have a setting here.
_COMPRESS_SETTINGS = {"level": "compress_level", "memLevel": "mem_level"}


class _FactoryOptions:
    """The settings both factories share; checked once, here."""

    name = NAME

    def __init__(
        self,
        *,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | None = None,
        compress_level: int = COMPRESS_LEVEL,
        mem_level: int = MEM_LEVEL,
        min_size: int = MIN_COMPRESS_SIZE,
        compress_settings: Mapping[str, int] | None = None,
    ) -> None:
        if compress_settings:
            for key, value in compress_settings.items():
                if key not in _COMPRESS_SETTINGS:
                    raise ValueError(
                        f"compress_settings may set 'level' and 'memLevel' only, not {key!r}"
                        + (" (the window bits are negotiated)" if key == "wbits" else "")
                    )
                if key == "level":
                    compress_level = value
                else:
                    mem_level = value
        _check_window_bits(server_max_window_bits, "server_max_window_bits")
        _check_window_bits(client_max_window_bits, "client_max_window_bits")
        _check_zlib_settings(compress_level, mem_level, min_size)
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_level = compress_level
        self.mem_level = mem_level
        self.min_size = min_size


class ServerPerMessageDeflateFactory(_FactoryOptions):
    """Accepts a client's permessage-deflate offer (RFC 7692 §5, §7.1).

    Offers with unknown, repeated or invalid parameters are declined: the handshake goes on
    without this offer (RFC 7692 §5). Flags the client offers are echoed; window bits are
    answered with the smaller of the client's request and the server's setting.

    Args:
        server_no_context_takeover: Compress every message independently (§7.1.1.1),
            even if the client doesn't ask for it. Saves nothing in memory here (the
            compressor is kept), but makes messages independent.
        client_no_context_takeover: Ask the client to compress every message
            independently (§7.1.1.2).
        server_max_window_bits: Largest window to compress with (8-15; §7.1.2.1);
            ``None`` for 15, or for what the client asks. Sent in every answer.
        client_max_window_bits: Ask the client to compress with this window at most
            (8-15; §7.1.2.2), which shrinks the server's decompressor: 12 saves 28 KiB
            per connection. Only possible when the client offers
            ``client_max_window_bits``; otherwise the offer is still accepted, and the
            client compresses with up to 15 bits.
        compress_level: zlib compression level (-1 to 9).
        mem_level: zlib memLevel of the compressor (1-9).
        min_size: Whole messages shorter than this many bytes are sent uncompressed (Node
            ws calls it ``threshold``); ``0`` compresses every message.
        compress_settings: websockets' spelling of ``compress_level`` and ``mem_level``:
            ``{"level": 9, "memLevel": 4}`` (keys it has, over the keyword arguments).

    Raises:
        ValueError: An option is out of range, or ``compress_settings`` has another key.
        TypeError: An option is not an integer.
    """

    def __init__(
        self, *, server_max_window_bits: int | None = SERVER_MAX_WINDOW_BITS, **options: Any
    ) -> None:
        # Only this default differs from the client's: see the module's memory table.
        super().__init__(server_max_window_bits=server_max_window_bits, **options)

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        """Accept an offer: return the answer's parameters and the extension.

        Raises:
            NegotiationError: The offer is declined: permessage-deflate is already
                accepted, or the offer's parameters are invalid.
        """
        if _already_accepted(accepted):
            raise NegotiationError(f"{NAME} is already accepted")
        offer = _parse_params(params, is_offer=True)
        answer: list[ExtensionParameter] = []

        server_no_context_takeover = (
            self.server_no_context_takeover or "server_no_context_takeover" in offer
        )
        if server_no_context_takeover:
            answer.append(("server_no_context_takeover", None))
        client_no_context_takeover = (
            self.client_no_context_takeover or "client_no_context_takeover" in offer
        )
        if client_no_context_takeover:
            answer.append(("client_no_context_takeover", None))

        # §7.1.2.1: the answer may always carry server_max_window_bits, and must carry a
        # value no larger than the client's when the client asked for one.
        server_bits = _smaller(offer.get("server_max_window_bits"), self.server_max_window_bits)
        if server_bits is not None:
            answer.append(("server_max_window_bits", str(server_bits)))

        # §7.1.2.2: client_max_window_bits may be in the answer only if the offer has it.
        client_bits: int | None = None
        if "client_max_window_bits" in offer:
            client_bits = _smaller(offer["client_max_window_bits"], self.client_max_window_bits)
            if client_bits is not None:
                answer.append(("client_max_window_bits", str(client_bits)))

        extension = PerMessageDeflate(
            remote_no_context_takeover=client_no_context_takeover,
            local_no_context_takeover=server_no_context_takeover,
            remote_max_window_bits=client_bits or 15,
            local_max_window_bits=server_bits or 15,
            compress_level=self.compress_level,
            mem_level=self.mem_level,
            min_size=self.min_size,
        )
        return answer, extension


def _smaller(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


class ClientPerMessageDeflateFactory(_FactoryOptions):
    """Offers permessage-deflate and checks the server's answer (RFC 7692 §5, §7.1).

    The offer always carries ``client_max_window_bits``, so that the server may choose the
    window the client compresses with (§7.1.2.2).

    Args:
        server_no_context_takeover: Ask the server to compress every message
            independently (§7.1.1.1).
        client_no_context_takeover: Compress every message independently, and tell the
            server (§7.1.1.2).
        server_max_window_bits: Ask the server to compress with this window at most
            (8-15; §7.1.2.1), which shrinks the client's decompressor.
        client_max_window_bits: Compress with this window at most (8-15), and tell the
            server; ``None`` offers the parameter without a value: 15 bits, unless the
            server asks for less.
        compress_level: zlib compression level (-1 to 9).
        mem_level: zlib memLevel of the compressor (1-9).
        min_size: Whole messages shorter than this many bytes are sent uncompressed (Node
            ws calls it ``threshold``); ``0`` compresses every message.
        compress_settings: websockets' spelling of ``compress_level`` and ``mem_level``:
            ``{"level": 9, "memLevel": 4}`` (keys it has, over the keyword arguments).

    Raises:
        ValueError: An option is out of range, or ``compress_settings`` has another key.
        TypeError: An option is not an integer.
    """

    def get_request_params(self) -> list[ExtensionParameter]:
        """The parameters of the offer, e.g. ``[("client_max_window_bits", None)]``."""
        params: list[ExtensionParameter] = []
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_max_window_bits is not None:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        client_bits = self.client_max_window_bits
        params.append(("client_max_window_bits", None if client_bits is None else str(client_bits)))
        return params

    def process_response_params(
        self, params: Sequence[ExtensionParameter], accepted: Sequence[Extension]
    ) -> PerMessageDeflate:
        """Check the server's answer and build the extension.

        Raises:
            NegotiationError: The answer is invalid (unknown, repeated or malformed
                parameters), doesn't grant what the offer required (§7.1.1.1,
                §7.1.2.1), or grants a larger client window than offered (§7.1.2.2).
        """
        if _already_accepted(accepted):
            raise NegotiationError(f"{NAME} is already accepted")
        answer = _parse_params(params, is_offer=False)
        if self.server_no_context_takeover and "server_no_context_takeover" not in answer:
            raise NegotiationError("the server didn't accept server_no_context_takeover")
        server_bits = answer.get("server_max_window_bits")
        if self.server_max_window_bits is not None and (
            server_bits is None or server_bits > self.server_max_window_bits
        ):
            raise NegotiationError(
                f"the server didn't accept server_max_window_bits={self.server_max_window_bits}"
            )
        client_bits = answer.get("client_max_window_bits")
        if (
            client_bits is not None
            and self.client_max_window_bits is not None
            and client_bits > self.client_max_window_bits
        ):
            raise NegotiationError(f"client_max_window_bits={client_bits} is larger than offered")
        return PerMessageDeflate(
            remote_no_context_takeover="server_no_context_takeover" in answer,
            local_no_context_takeover=(
                self.client_no_context_takeover or "client_no_context_takeover" in answer
            ),
            remote_max_window_bits=server_bits or 15,
            local_max_window_bits=client_bits or self.client_max_window_bits or 15,
            compress_level=self.compress_level,
            mem_level=self.mem_level,
            min_size=self.min_size,
        )


def _check_compression(compression: str | None) -> None:
    if compression is not None and compression != "deflate":
        raise ValueError(f'compression must be "deflate" or None, got {compression!r}')


def _check_factories(extensions: object, side: str, method: str) -> list[Any]:
    """``extensions`` as a list, each checked to be a ``side`` extension factory (it has
    ``name`` and ``method``): a client factory given to a server fails here, not at the
    first handshake."""
    if isinstance(extensions, (str, bytes)) or not isinstance(extensions, Iterable):
        raise TypeError(
            f"extensions must be a list of {side} extension factories, "
            f"got {type(extensions).__name__}"
        )
    factories = list(extensions)
    for factory in factories:
        if not isinstance(getattr(factory, "name", None), str) or not callable(
            getattr(factory, method, None)
        ):
            raise TypeError(
                f"extensions of a {side} are {side} extension factories (with a name and "
                f"{method}()), got {type(factory).__name__}"
            )
    return factories


def _with_default(factories: list[Any], compression: str | None, default: type) -> list[Any]:
    # As websockets: the default factory comes last, unless one of the same name is given.
    _check_compression(compression)
    if compression is not None and not any(factory.name == NAME for factory in factories):
        factories.append(default())
    return factories


def server_extensions(
    compression: str | None, extensions: Iterable[ServerExtensionFactory] | None = None
) -> list[ServerExtensionFactory]:
    """The extension factories of a server's ``compression`` and ``extensions`` options.

    Args:
        compression: ``"deflate"`` adds permessage-deflate with the defaults of
            :class:`ServerPerMessageDeflateFactory`, unless ``extensions`` has a
            permessage-deflate factory already; ``None`` adds nothing.
        extensions: Factories to negotiate, in order of preference.

    Raises:
        ValueError: ``compression`` is neither ``"deflate"`` nor ``None``.
        TypeError: ``extensions`` is not a list of server extension factories.
    """
    factories = _check_factories(extensions or (), "server", "process_request_params")
    return _with_default(factories, compression, ServerPerMessageDeflateFactory)


def client_extensions(
    compression: str | None, extensions: Iterable[ClientExtensionFactory] | None = None
) -> list[ClientExtensionFactory]:
    """The extension factories of a client's ``compression`` and ``extensions`` options.

    Args:
        compression: ``"deflate"`` adds an offer of permessage-deflate with the defaults
            of :class:`ClientPerMessageDeflateFactory`, unless ``extensions`` has a
            permessage-deflate factory already; ``None`` adds nothing.
        extensions: Factories whose offers to make, in order.

    Raises:
        ValueError: ``compression`` is neither ``"deflate"`` nor ``None``.
        TypeError: ``extensions`` is not a list of client extension factories.
    """
    factories = _check_factories(extensions or (), "client", "process_response_params")
    return _with_default(factories, compression, ClientPerMessageDeflateFactory)
