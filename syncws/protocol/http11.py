"""HTTP/1.1 for the opening handshake (RFC 9110, RFC 9112): headers, messages, parsers.

The opening handshake of RFC 6455 is one HTTP/1.1 ``GET`` request and one response; this
module implements that subset, Sans-I/O: parsers are fed bytes as they arrive and return a
:class:`Request` or :class:`Response` once complete.

Parsing is strict where leniency opens doors (request smuggling, header injection, slowloris):

* Lines must end with CRLF. RFC 9112 §2.2 lets a recipient accept a bare LF; we answer 400,
  like strict servers: no WebSocket client sends bare LFs.
* obs-fold (RFC 9112 §5.2), whitespace before a header's colon (RFC 9112 §5.1), names that
  aren't tokens and values with control characters (RFC 9110 §5.5) are rejected.
* Lines, headers and the whole head are capped (:data:`MAX_LINE`, :data:`MAX_NUM_HEADERS`,
  :data:`MAX_HEAD`); an oversize line or head fails as soon as the buffer exceeds the limit
  without a line end, so slowloris can't grow it.
* Response bodies are capped by :data:`MAX_BODY`. Requests cannot have a body.

Header values are decoded as ISO-8859-1, which maps every byte to a character (RFC 9110 §5.5
allows ``obs-text``), and encoded back the same way.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeAlias, TypeVar

from ..exceptions import InvalidMessage

__all__ = [
    "MAX_BODY",
    "MAX_HEAD",
    "MAX_LINE",
    "MAX_NUM_HEADERS",
    "Headers",
    "HeadersLike",
    "MultipleValuesError",
    "Request",
    "RequestParser",
    "Response",
    "ResponseParser",
    "redact_target",
]

MAX_LINE = 8192
"""Maximum length of a request, status or header line in bytes, CRLF excluded: a longer
request line is answered with HTTP 414 (URI Too Long), a header line with 431."""

MAX_NUM_HEADERS = 128
"""Maximum number of header lines in a message; one more is answered with HTTP 431."""

MAX_HEAD = 16384
"""Maximum size of a message's head in bytes: its request or status line and its header
lines, CRLFs included, up to the blank line that ends them (as Node's HTTP parser and h11
do). A larger request head is answered with HTTP 431. Without it, :data:`MAX_NUM_HEADERS`
lines of :data:`MAX_LINE` bytes would let each handshake hold about 2 MiB before the
server decides whether to accept it."""

MAX_BODY = 2**20
"""Maximum size of a response body, in bytes (1 MiB); a larger one fails the handshake."""

# RFC 9110 §5.6.2: token = 1*tchar.
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: field values are VCHAR / obs-text with SP / HTAB inside, never at either end.
_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]|\A[ \t]|[ \t]\Z")
# Control characters (HTAB allowed), for the request line and the reason phrase.
_CTL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 9112 §3.2.1: origin-form, the only request-target a WebSocket handshake uses
# (RFC 6455 §4.1 sends the /resource name/ there).
_TARGET_RE = re.compile(r"/[\x21-\x7e]*")
_STATUS_RE = re.compile(r"[1-5][0-9][0-9]")
_CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS_RE = re.compile(r"[0-9]{1,19}")
_EOF_MESSAGE = "connection closed before the end of the HTTP message"
_HEAD_TOO_LARGE = "header section too large"
# Credentials: their values never go into an exception message (which ends up in logs).
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
# Printable ASCII, SP included: the bytes a request line or header line usually holds.
_PRINTABLE = bytes(range(0x20, 0x7F))


def redact_target(target: str) -> str:
    """``target`` (a request target, or a request line) as syncws logs it: without its
    query string, where browsers put the credentials of a WebSocket (``?token=...``).

    >>> redact_target("/chat?token=s3cret&room=1")
    '/chat?[redacted]'
    """
    path, question, _ = target.partition("?")
    return path + "?[redacted]" if question else path


def _invalid_value(name: str, value: str) -> str:
    """The message for an invalid header value: quoted, or left out for credentials."""
    if name.lower() in _SECRET_HEADERS:
        return f"invalid value for header {name}"
    return f"invalid value for header {name}: {value!r}"


def _is_token(name: str) -> bool:
    """Whether ``name`` is a token (RFC 9110 §5.6.2), as ``_TOKEN_RE`` decides.

    Letters, digits and dashes (every usual header name) are told apart without a regex.
    """
    return (name.isascii() and name.replace("-", "").isalnum()) or (
        _TOKEN_RE.fullmatch(name) is not None
    )


def _is_field_value(value: str) -> bool:
    """Whether ``value`` is a valid field value (RFC 9110 §5.5), as ``_BAD_VALUE_RE`` decides.

    Printable ASCII not starting or ending with SP (every usual value) is told apart
    without a regex; anything else (HTAB, obs-text, ...) goes to the regex.
    """
    if value.isascii() and value.isprintable():
        return value[:1] != " " and value[-1:] != " "
    return _BAD_VALUE_RE.search(value) is None


class MultipleValuesError(KeyError):
    """Raised by ``headers[name]`` for a header with several values; see :meth:`Headers.get_all`."""

    def __str__(self) -> str:
        return f"multiple values for header {self.args[0]!r}"


class Headers:
    """HTTP header fields: a case-insensitive, multi-valued, order-preserving mapping.

    Header names are matched case-insensitively and keep their original case on the wire.
    Headers that repeat (and list-valued ones) are read with :meth:`get_all`; item access
    returns the single value and raises :class:`MultipleValuesError` if there are several.

    **Assignment appends**: ``headers["Set-Cookie"] = "a=1"`` adds a value next to existing
    ones rather than replacing them. To replace, ``del headers[name]`` first.

    Construction and :meth:`update` accept another :class:`Headers`, a mapping or an
    iterable of ``(name, value)`` pairs. Names must be tokens and values must not contain
    control characters or start or end with whitespace (RFC 9110 §5), otherwise
    :exc:`ValueError` is raised: this is what prevents header injection.
    """

    __slots__ = ("_index", "_packed", "_pairs")
    _packed: str  # set by _pack() only

    def __init__(self, headers: HeadersLike | None = None, /) -> None:
        self._pairs: list[tuple[str, str]] = []
        self._index: dict[str, list[str]] = {}
        if headers is not None:
            self.update(headers)

    def _pack(self) -> Headers:
        """Return an equal copy that holds its fields in one string until they are used.

        For the headers of a handshake, which a connection keeps for its whole life and
        seldom reads again: the string costs about a tenth of the pairs and their index.
        The first use rebuilds them (see ``__getattr__``). Returns ``self`` when there is
        nothing to save, or for a subclass.
        """
        pairs = self._pairs
        if not pairs or type(self) is not Headers:
            return self
        packed = "\n".join([item for pair in pairs for item in pair])
        if packed.count("\n") != 2 * len(pairs) - 1:
            return self  # a newline in a name or value: invalid, but _append() allows it
        copy = Headers.__new__(Headers)
        copy._packed = packed
        return copy

    if not TYPE_CHECKING:  # for mypy, the slots are always set

        def __getattr__(self, name: str) -> object:
            # Called only for a slot that is not set: _pairs and _index of a copy made by
            # _pack(), rebuilt here on first use. _packed stays: threads that rebuild them
            # at once each get the same result.
            if name != "_pairs" and name != "_index":
                raise AttributeError(f"'Headers' object has no attribute {name!r}")
            items = self._packed.split("\n")
            pairs = list(zip(items[::2], items[1::2], strict=True))
            index: dict[str, list[str]] = {}
            for key, value in pairs:
                index.setdefault(key.lower(), []).append(value)
            self._pairs = pairs
            self._index = index
            return pairs if name == "_pairs" else index

    def _append(self, name: str, value: str) -> None:
        # No validation: for parsers and copies of values that were validated already.
        self._pairs.append((name, value))
        self._index.setdefault(name.lower(), []).append(value)

    def __setitem__(self, name: str, value: str) -> None:
        """Append a value for ``name`` (existing values are kept).

        Raises:
            ValueError: ``name`` is not a token or ``value`` is not a valid field value.
        """
        if not _is_token(name):
            raise ValueError(f"invalid header name: {name!r}")
        if not _is_field_value(value):
            raise ValueError(_invalid_value(name, value))
        self._append(name, value)

    def __getitem__(self, name: str) -> str:
        """Return the single value of ``name``.

        Raises:
            KeyError: There is no such header.
            MultipleValuesError: The header has more than one value.
        """
        try:
            values = self._index[name.lower()]
        except KeyError:
            raise KeyError(name) from None
        if len(values) > 1:
            raise MultipleValuesError(name)
        return values[0]

    def __delitem__(self, name: str) -> None:
        """Remove every value of ``name``.

        Raises:
            KeyError: There is no such header.
        """
        key = name.lower()
        if self._index.pop(key, None) is None:
            raise KeyError(name)
        self._pairs = [pair for pair in self._pairs if pair[0].lower() != key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        """Iterate over distinct names, in order of first appearance, in their original case."""
        seen: set[str] = set()
        for name, _ in self._pairs:
            key = name.lower()
            if key not in seen:
                seen.add(key)
                yield name

    def __len__(self) -> int:
        """Return the number of distinct header names."""
        return len(self._index)

    def __eq__(self, other: object) -> bool:
        """Compare names case-insensitively and each name's values in order."""
        if not isinstance(other, Headers):
            return NotImplemented
        return self._index == other._index

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._pairs!r})"

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the single value of ``name``, or ``default`` if there is none.

        Raises:
            MultipleValuesError: The header has more than one value.
        """
        return self[name] if name.lower() in self._index else default

    def get_all(self, name: str) -> list[str]:
        """Return every value of ``name`` in order (an empty list if there is none)."""
        return list(self._index.get(name.lower(), ()))

    def items(self) -> list[tuple[str, str]]:
        """Return every ``(name, value)`` pair in order, names in their original case."""
        return list(self._pairs)

    def update(self, headers: HeadersLike, /) -> None:
        """Append every header of ``headers`` (never replacing values); see :meth:`__setitem__`."""
        if isinstance(headers, Headers):
            for name, value in headers._pairs:
                self._append(name, value)
            return
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in pairs:
            self[name] = value

    def copy(self) -> Headers:
        """Return an independent copy."""
        return Headers(self)

    def serialize(self) -> bytes:
        """Return the header section for the wire: one line per value, then an empty line."""
        lines = [f"{name}: {value}\r\n" for name, value in self._pairs]
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")


HeadersLike: TypeAlias = Headers | Mapping[str, str] | Iterable[tuple[str, str]]
"""What :class:`Headers` and APIs taking headers accept."""


@dataclass
class Request:
    """An opening handshake request: ``GET <path> HTTP/1.1`` (RFC 6455 §4.1), always a GET.

    Attributes:
        path: The request target, with the query string (e.g. ``"/chat?room=1"``).
        headers: The header fields.
    """

    path: str
    headers: Headers

    def serialize(self) -> bytes:
        """Return the request for the wire.

        Raises:
            ValueError: ``path`` is not an origin-form request target (RFC 9112 §3.2.1).
        """
        if not _TARGET_RE.fullmatch(self.path):
            raise ValueError(f"invalid request target: {self.path!r}")
        return f"GET {self.path} HTTP/1.1\r\n".encode() + self.headers.serialize()


@dataclass
class Response:
    """An HTTP response: a ``101 Switching Protocols`` or a rejection of the handshake.

    :meth:`serialize` adds no header: a body needs ``Content-Length``, or the connection must
    be closed after it (RFC 9112 §6.3).

    Attributes:
        status_code: The status, 100 to 599.
        reason_phrase: The reason phrase, e.g. ``"Forbidden"``.
        headers: The header fields.
        body: The body, empty for a 101.
    """

    status_code: int
    reason_phrase: str
    headers: Headers
    body: bytes = b""

    def serialize(self) -> bytes:
        """Return the response for the wire.

        Raises:
            ValueError: The status code or the reason phrase is invalid.
        """
        if not 100 <= self.status_code <= 599:
            raise ValueError(f"invalid status code: {self.status_code}")
        if not self.reason_phrase.isprintable() and _CTL_RE.search(self.reason_phrase):
            raise ValueError(f"invalid reason phrase: {self.reason_phrase!r}")
        status_line = f"HTTP/1.1 {self.status_code} {self.reason_phrase}\r\n"
        return status_line.encode("latin-1") + self.headers.serialize() + self.body


_T = TypeVar("_T")


class _Parser(Generic[_T]):
    """Incremental parsing: the ``_parse`` generator pulls lines and bytes from a buffer and
    yields when it needs more. Scans resume where the previous one stopped, so byte-at-a-time
    input costs O(n) in total, not O(n²)."""

    def __init__(self, max_line: int, max_num_headers: int, max_head: int) -> None:
        self._max_line = max_line
        self._max_head = max_head
        self._in_head = True  # max_head bounds the start line and the headers, not a body
        self._max_num_headers = max_num_headers
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self._done = False
        # Made on first use: a request that arrives whole may never need it.
        self._gen: Generator[None, None, _T] | None = None
        self.remainder = b""
        """Bytes received after the end of the message, once it is complete (e.g. the first
        WebSocket frames, when they arrive in the same packet as the handshake)."""

    def _parse(self) -> Generator[None, None, _T]:
        raise NotImplementedError

    def feed(self, data: bytes) -> _T | None:
        """Add received bytes; return the message once it is complete, else ``None``.

        Raises:
            InvalidMessage: The message is malformed or exceeds a limit; ``status_code``
                tells a server how to answer.
            RuntimeError: The parser returned a message or raised already.
        """
        self._buf += data
        return self._step()

    def feed_eof(self) -> _T:
        """Signal the end of the stream; return the message if the end completes it.

        Raises:
            InvalidMessage: The stream ended before the end of the message.
            RuntimeError: The parser returned a message or raised already.
        """
        self._eof = True
        message = self._step()
        assert message is not None  # with _eof set, _parse returns or raises
        return message

    def _step(self) -> _T | None:
        if self._done:
            raise RuntimeError("the parser is done")
        gen = self._gen
        if gen is None:
            gen = self._gen = self._parse()
        try:
            next(gen)
        except StopIteration as done:
            self._done = True
            self.remainder = bytes(self._buf[self._pos :])
            self._buf = bytearray()
            message: _T = done.value
            return message
        except Exception:
            self._done = True
            raise
        return None

    def _read_line(self, what: str, status_code: int) -> Generator[None, None, bytes]:
        """Return the next line without its CRLF; raise ``status_code`` if it is too long."""
        start = scan = self._pos
        # The pending line may hold max_line bytes plus the CR of its CRLF.
        limit = self._max_line + 1
        while (end := self._buf.find(b"\n", scan)) < 0:
            scan = len(self._buf)
            if scan - start > limit:
                raise InvalidMessage(f"{what} too long", status_code=status_code)
            if self._in_head and scan > self._max_head:
                raise InvalidMessage(_HEAD_TOO_LARGE, status_code=431)
            if self._eof:
                raise InvalidMessage(_EOF_MESSAGE) from EOFError()
            yield
        if end - start > limit:
            raise InvalidMessage(f"{what} too long", status_code=status_code)
        # The message starts at 0: its head is end + 1 bytes so far.
        if self._in_head and end >= self._max_head:
            raise InvalidMessage(_HEAD_TOO_LARGE, status_code=431)
        if end == start or self._buf[end - 1] != 0x0D:
            raise InvalidMessage("line ending is a bare LF, not CRLF")
        self._pos = end + 1
        return bytes(self._buf[start : end - 1])

    def _read_headers(self) -> Generator[None, None, Headers]:
        headers = Headers()
        count = 0
        while line := (yield from self._read_line("header line", 431)):
            count += 1
            if count > self._max_num_headers:
                raise InvalidMessage("too many header lines", status_code=431)
            text = line.decode("latin-1")
            if text[0] in " \t":
                raise InvalidMessage("obsolete line folding is not supported")
            name, colon, value = text.partition(":")
            if not colon or not _is_token(name):
                if name.strip(" \t").lower() in _SECRET_HEADERS:
                    raise InvalidMessage(f"invalid {name.strip()} header line")
                raise InvalidMessage(f"invalid header line: {text!r}")
            value = value.strip(" \t")
            if not _is_field_value(value):
                raise InvalidMessage(_invalid_value(name, value))
            headers._append(name, value)
        return headers

    def _read_exact(self, size: int) -> Generator[None, None, bytes]:
        while len(self._buf) - self._pos < size:
            if self._eof:
                raise InvalidMessage(_EOF_MESSAGE) from EOFError()
            yield
        data = bytes(self._buf[self._pos : self._pos + size])
        self._pos += size
        return data


class RequestParser(_Parser[Request]):
    """Parses an opening handshake request fed in pieces (RFC 9112 §2-§5).

    Failures raise :exc:`~syncws.exceptions.InvalidMessage` with ``status_code``: 400 for
    malformed lines or headers, bare LF, obs-fold or a body (``Transfer-Encoding``, non-zero
    ``Content-Length``); 505 for a version other than ``HTTP/1.1``; 405 with ``Allow: GET``
    for a method other than ``GET`` (request line checks: syntax, version, method); 414 for
    a request line over ``max_line`` bytes; 431 for a longer header line, more than
    ``max_num_headers`` headers, or a head (request line and headers) over ``max_head``
    bytes. Once :meth:`feed` returns the request, :attr:`remainder`
    holds the bytes that followed it.
    """

    def __init__(
        self,
        *,
        max_line: int = MAX_LINE,
        max_num_headers: int = MAX_NUM_HEADERS,
        max_head: int = MAX_HEAD,
    ):
        super().__init__(max_line, max_num_headers, max_head)

    def feed(self, data: bytes) -> Request | None:
        if self._gen is None and not self._buf and not self._done and type(data) is bytes:
            # Nothing parsed yet: the request usually arrives whole, in one read.
            request = self._parse_whole(data)
            if request is not None:
                self._done = True
                return request
        return super().feed(data)

    def _parse_whole(self, data: bytes) -> Request | None:
        """Parse a request that ``data`` holds whole, in one pass, if it is a plain one.

        Plain: every line is printable ASCII (no HTAB, no obs-text, no stray CR or LF) and
        within the limits, the request line is ``GET /... HTTP/1.1``, names are tokens and
        there is no body. Then the result is the one :meth:`_parse` would return. Anything
        else returns ``None``, and :meth:`_parse` runs on the same bytes: it alone decides
        what is malformed and how to answer, so errors do not depend on this shortcut.
        """
        end = data.find(b"\r\n\r\n")
        if end < 0 or end + 4 > self._max_head:
            return None
        head = data[:end]
        # Bytes other than printable ASCII must all be the CRLFs between lines.
        if len(head.translate(None, _PRINTABLE)) != 2 * head.count(b"\r\n"):
            return None
        lines = head.decode("latin-1").split("\r\n")
        max_line = self._max_line
        if len(lines) > self._max_num_headers + 1:
            return None
        request_line = lines[0]
        parts = request_line.split(" ")
        if (
            len(parts) != 3
            or parts[0] != "GET"
            or parts[2] != "HTTP/1.1"
            or parts[1][:1] != "/"  # then it matches _TARGET_RE: printable ASCII, no SP
            or len(request_line) > max_line
        ):
            return None
        headers = Headers()
        pairs = headers._pairs
        index = headers._index
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            # A line starting with SP (obs-fold) has no token before its colon. The name is
            # ASCII: see _is_token.
            if (
                not colon
                or len(line) > max_line
                or not (name.replace("-", "").isalnum() or _TOKEN_RE.fullmatch(name))
            ):
                return None
            value = value.strip(" ")  # printable ASCII: no HTAB, nothing else to check
            pairs.append((name, value))
            index.setdefault(name.lower(), []).append(value)
        if "transfer-encoding" in index or index.get("content-length", ["0"]) != ["0"]:
            return None
        self.remainder = data[end + 4 :]
        return Request(parts[1], headers)

    def _parse(self) -> Generator[None, None, Request]:
        line = yield from self._read_line("request line", 414)
        text = line.decode("latin-1")
        parts = text.split(" ")
        if (
            _CTL_RE.search(text)
            or len(parts) != 3
            or not _TOKEN_RE.fullmatch(parts[0])
            or not _TARGET_RE.fullmatch(parts[1])
        ):
            raise InvalidMessage(f"invalid request line: {redact_target(text)!r}")
        method, path, version = parts
        if version != "HTTP/1.1":
            raise InvalidMessage(f"unsupported HTTP version: {version!r}", status_code=505)
        if method != "GET":
            raise InvalidMessage(
                f"unsupported HTTP method: {method}", status_code=405, headers=[("Allow", "GET")]
            )
        headers = yield from self._read_headers()
        # Bytes after the headers are WebSocket frames; a body would be read as frames.
        if "Transfer-Encoding" in headers or headers.get_all("Content-Length") not in ([], ["0"]):
            raise InvalidMessage("a handshake request cannot have a body")
        return Request(path, headers)


class ResponseParser(_Parser[Response]):
    """Parses the response to a handshake request fed in pieces (RFC 9112 §4, §6).

    A ``101`` (like any 1xx, 204 or 304) ends with its headers; :attr:`remainder` then holds
    the first WebSocket frames if they arrived with it. Other bodies are read per RFC 9112
    §6.3: ``Transfer-Encoding: chunked`` (the only coding supported; chunk extensions and
    trailers are ignored), else ``Content-Length``, else until the end of the stream (call
    :meth:`feed_eof`), up to ``max_body`` bytes. HTTP/1.0 responses are accepted, so that a
    client can report an old proxy's rejection. Failures raise
    :exc:`~syncws.exceptions.InvalidMessage`.

    With ``tunnel=True`` it parses a proxy's answer to ``CONNECT``: a 2xx then ends with its
    headers, since the tunnel starts right after them (RFC 9110 §9.3.6: "A server MUST NOT
    send any Transfer-Encoding or Content-Length header fields in a 2xx (Successful)
    response to CONNECT"); other statuses have a body as usual.
    """

    def __init__(
        self,
        *,
        max_line: int = MAX_LINE,
        max_num_headers: int = MAX_NUM_HEADERS,
        max_head: int = MAX_HEAD,
        max_body: int = MAX_BODY,
        tunnel: bool = False,
    ):
        self._max_body = max_body
        self._tunnel = tunnel
        super().__init__(max_line, max_num_headers, max_head)

    def _parse(self) -> Generator[None, None, Response]:
        line = yield from self._read_line("status line", 400)
        text = line.decode("latin-1")
        version, _, rest = text.partition(" ")
        status, _, reason = rest.partition(" ")
        if version not in ("HTTP/1.1", "HTTP/1.0") or not _STATUS_RE.fullmatch(status):
            raise InvalidMessage(f"invalid status line: {text!r}")
        if _CTL_RE.search(reason):
            raise InvalidMessage(f"invalid reason phrase: {reason!r}")
        status_code = int(status)
        headers = yield from self._read_headers()
        self._in_head = False  # chunk-size lines and trailers are the body's
        body = b""
        if status_code >= 200 and status_code not in (204, 304):
            if self._tunnel and status_code < 300:
                pass
            elif "Transfer-Encoding" in headers:
                body = yield from self._read_chunked(headers)
            elif "Content-Length" in headers:
                body = yield from self._read_exact(self._content_length(headers))
            else:
                body = yield from self._read_until_eof()
        return Response(status_code, reason, headers, body)

    def _content_length(self, headers: Headers) -> int:
        values = headers.get_all("Content-Length")
        # RFC 9112 §6.3: repeated identical values may be accepted; anything else is an error.
        if len(set(values)) != 1 or not _DIGITS_RE.fullmatch(values[0]):
            raise InvalidMessage(f"invalid Content-Length: {', '.join(values)!r}")
        size = int(values[0])
        if size > self._max_body:
            raise InvalidMessage(f"body too large: {size} bytes")
        return size

    def _read_chunked(self, headers: Headers) -> Generator[None, None, bytes]:
        # RFC 9112 §6.1: Content-Length with Transfer-Encoding smells of smuggling; refuse.
        codings = headers.get_all("Transfer-Encoding")
        if [coding.lower() for coding in codings] != ["chunked"] or "Content-Length" in headers:
            raise InvalidMessage(f"unsupported Transfer-Encoding: {', '.join(codings)!r}")
        body = bytearray()
        while True:
            line = yield from self._read_line("chunk size line", 400)
            size_field = line.partition(b";")[0].strip(b" \t")
            if not _CHUNK_SIZE_RE.fullmatch(size_field):
                raise InvalidMessage(f"invalid chunk size: {line!r}")
            size = int(size_field, 16)
            if len(body) + size > self._max_body:
                raise InvalidMessage("body too large")
            if size == 0:
                break
            body += yield from self._read_exact(size)
            if (yield from self._read_exact(2)) != b"\r\n":
                raise InvalidMessage("chunk data doesn't end with CRLF")
        yield from self._read_headers()  # the trailer section, same limits as headers
        return bytes(body)

    def _read_until_eof(self) -> Generator[None, None, bytes]:
        while len(self._buf) - self._pos <= self._max_body:
            if self._eof:
                data = bytes(self._buf[self._pos :])
                self._pos = len(self._buf)
                return data
            yield
        raise InvalidMessage("body too large")
