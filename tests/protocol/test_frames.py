"""Tests for syncws.protocol.frames: the wire format of one frame and close payloads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncws.exceptions import ProtocolError
from syncws.protocol.frames import (
    Close,
    CloseCode,
    Frame,
    Opcode,
    encode_header,
    parse_frame,
    parse_header,
    serialize_frame,
    size_limit,
)

MASK = b"\x37\xfa\x21\x3d"


def test_rfc_example_unmasked_text():
    """The RFC 6455 §5.7 example of an unmasked "Hello" frame."""
    assert serialize_frame(Opcode.TEXT, b"Hello") == b"\x81\x05\x48\x65\x6c\x6c\x6f"


def test_rfc_example_masked_text():
    """The RFC 6455 §5.7 example of a masked "Hello" frame."""
    data = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert serialize_frame(Opcode.TEXT, b"Hello", mask=MASK) == data
    assert parse_frame(data) == (Frame(Opcode.TEXT, b"Hello"), MASK, len(data))


@pytest.mark.parametrize(
    ("length", "header"),
    [
        (0, b"\x82\x00"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_length_encodings(length, header):
    """Lengths use the 7-, 16- and 64-bit forms at the RFC 6455 §5.2 boundaries."""
    data = serialize_frame(Opcode.BINARY, b"x" * length)
    assert data[: len(header)] == header
    assert len(data) == len(header) + length


@pytest.mark.parametrize(
    ("length", "mask", "header"),
    [
        (0, None, b"\x82\x00"),
        (125, None, b"\x82\x7d"),
        (126, None, b"\x82\x7e\x00\x7e"),
        (65535, None, b"\x82\x7e\xff\xff"),
        (65536, None, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        (5, MASK, b"\x82\x85" + MASK),
        (126, MASK, b"\x82\xfe\x00\x7e" + MASK),
        (65536, MASK, b"\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00" + MASK),
    ],
)
def test_encode_header(length, mask, header):
    """The header alone: the shortest length form, then the masking key if any."""
    assert encode_header(0x82, length, mask) == header


@given(
    b0=st.integers(min_value=0, max_value=255),
    length=st.integers(min_value=0, max_value=2**63 - 1)
    | st.sampled_from([125, 126, 127, 65535, 65536]),
    mask=st.none() | st.binary(min_size=4, max_size=4),
)
def test_encode_header_parses_back(b0, length, mask):
    """parse_header reads what encode_header writes, whatever the length."""
    header = encode_header(b0, length, mask)
    assert parse_header(header) == (b0, length, mask, len(header))


def test_size_limit():
    """The rule of max_size: the message may have max_size bytes; before inflating, a
    compressed message may be 1/8 + 1 KiB larger; None is above any length and size."""
    assert size_limit(1000) == 1000
    assert size_limit(0) == 0
    assert size_limit(1000, compressed=True) == 1000 + 125 + 1024
    assert size_limit(None) == size_limit(None, compressed=True) > 2 * (2**63 - 1)


def test_rsv_bits_and_fin_serialized():
    """FIN and RSV bits land in the first byte."""
    data = serialize_frame(Opcode.CONT, b"", fin=False, rsv1=True, rsv2=True, rsv3=True)
    assert data == b"\x70\x00"


@pytest.mark.parametrize("data", [b"", b"\x81", b"\x81\x7e\x00", b"\x81\x7f" + b"\0" * 7])
def test_parse_header_incomplete(data):
    """An incomplete header parses as None, whatever length form it uses."""
    assert parse_header(data) is None


def test_parse_header_incomplete_mask():
    """A header whose masking key has not fully arrived parses as None."""
    assert parse_header(b"\x81\x85\x37\xfa") is None


def test_parse_header_at_offset():
    """parse_header reads the frame that starts at the given position."""
    data = b"junk" + serialize_frame(Opcode.PING, b"ab", mask=MASK)
    assert parse_header(data, 4) == (0x89, 2, MASK, 10)


def test_parse_frame_incomplete_payload():
    """A frame whose payload has not fully arrived parses as None."""
    assert parse_frame(b"\x81\x05Hell") is None
    assert parse_frame(b"\x81") is None


def test_64_bit_length_with_msb_set_is_protocol_error():
    """RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0."""
    with pytest.raises(ProtocolError):
        parse_header(b"\x82\x7f\x80" + b"\0" * 7)


def test_parse_frame_reserved_opcode():
    """The reference reader rejects reserved opcodes."""
    with pytest.raises(ProtocolError, match="reserved opcode 3"):
        parse_frame(b"\x83\x00")


@given(
    opcode=st.sampled_from(list(Opcode)),
    data=st.binary(max_size=70000),
    fin=st.booleans(),
    rsv=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    mask=st.none() | st.binary(min_size=4, max_size=4),
)
def test_frame_round_trip(opcode, data, fin, rsv, mask):
    """Any frame serializes and parses back to itself."""
    wire = serialize_frame(opcode, data, fin=fin, rsv1=rsv[0], rsv2=rsv[1], rsv3=rsv[2], mask=mask)
    frame = Frame(opcode, data, fin=fin, rsv1=rsv[0], rsv2=rsv[1], rsv3=rsv[2])
    assert parse_frame(wire) == (frame, mask, len(wire))
    assert parse_frame(wire + b"more") == (frame, mask, len(wire))


def test_close_parse_empty_is_1005():
    """An empty close payload means "no status received" (1005)."""
    assert Close.parse(b"") == Close(CloseCode.NO_STATUS_RCVD, "")


def test_close_parse_one_byte_is_protocol_error():
    """A one-byte close payload is invalid (RFC 6455 §5.5.1)."""
    with pytest.raises(ProtocolError) as info:
        Close.parse(b"\x03")
    assert info.value.code == 1002


@pytest.mark.parametrize(
    "code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
)
def test_close_codes_allowed_on_wire(code):
    """Registered codes and the 3000-4999 ranges parse and serialize."""
    payload = code.to_bytes(2, "big") + "bye ☃".encode()
    assert Close.parse(payload) == Close(code, "bye ☃")
    assert Close(code, "bye ☃").serialize() == payload


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_close_codes_not_allowed_on_wire(code):
    """Reserved, local-only and unassigned codes are a protocol error when received."""
    with pytest.raises(ProtocolError) as info:
        Close.parse(code.to_bytes(2, "big"))
    assert info.value.code == 1002


@pytest.mark.parametrize("code", [999, 1006, 1015, 5000])
def test_close_codes_not_allowed_to_send(code):
    """Local-only and unassigned codes cannot be sent."""
    with pytest.raises(ValueError):
        Close(code).serialize()


def test_close_invalid_utf8_reason_is_1007():
    """A close reason that is not UTF-8 fails with 1007."""
    with pytest.raises(ProtocolError) as info:
        Close.parse(b"\x03\xe8\xff")
    assert info.value.code == 1007


def test_close_1005_serializes_empty():
    """Close code 1005 is sent as an empty close payload."""
    assert Close(1005).serialize() == b""


def test_close_1005_with_reason_cannot_be_sent():
    """A reason needs a code."""
    with pytest.raises(ValueError):
        Close(1005, "why").serialize()


def test_close_reason_at_most_123_bytes():
    """A close frame's payload fits in 125 bytes: 2 for the code, 123 for the reason."""
    assert len(Close(1000, "x" * 123).serialize()) == 125
    with pytest.raises(ValueError):
        Close(1000, "x" * 124).serialize()


@pytest.mark.parametrize(
    ("close", "text"),
    [
        (Close(1000), "1000 (OK)"),
        (Close(1001, "bye"), "1001 (going away) bye"),
        (Close(3001), "3001 (registered)"),
        (Close(4001), "4001 (private use)"),
        (Close(2001), "2001 (unknown)"),
    ],
)
def test_close_str(close, text):
    """Close frames print with the meaning of their code."""
    assert str(close) == text
