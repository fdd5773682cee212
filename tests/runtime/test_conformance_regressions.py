"""Regressions found with the Autobahn|Testsuite (compliance/run.py).

Each test names the cases it stands for. The suite itself runs outside the unit tests:
``python compliance/run.py --role both``.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from rawws import (
    FrameReader,
    close_frame,
    frame,
    parse_close,
    raw_client,
    read_request,
    switching_protocols,
)
from timing import TIMEOUT

import syncws
from syncws.exceptions import ProtocolError
from syncws.protocol.connection import Protocol
from syncws.protocol.events import Fragment, Message, State
from syncws.protocol.frames import Close, Opcode, parse_frame, serialize_frame

MASK = b"\x11\x22\x33\x44"


def client_frame(opcode, data, *, fin=True, rsv2=False):
    return serialize_frame(opcode, data, fin=fin, rsv2=rsv2, mask=MASK)


def frames_out(protocol):
    data = protocol.data_to_send()
    frames = []
    while data:
        parsed, _, size = parse_frame(data)
        frames.append(parsed)
        data = data[size:]
    return frames


def server():
    return Protocol(is_client=False)


# Messages before an error of the peer are delivered, and may be answered, before the
# connection fails (3.2, 3.3, 4.1.3, 4.1.4, 4.2.3, 4.2.4, 5.15).


def test_error_after_message_is_held_until_fail_pending():
    protocol = server()
    data = client_frame(Opcode.TEXT, b"Hello") + client_frame(Opcode.TEXT, b"x", rsv2=True)
    data += client_frame(Opcode.PING, b"")
    assert protocol.receive_data(data) == [Message("Hello")]
    assert protocol.state is State.OPEN
    assert protocol.data_to_send() == b""  # no close frame yet, no pong for the ping after
    assert not protocol.should_close_transport()
    protocol.send_text(b"Hello")  # the application answers the message
    assert protocol.receive_data(client_frame(Opcode.TEXT, b"ignored")) == []
    assert protocol.fail_pending()
    echo, close = frames_out(protocol)
    assert (echo.opcode, echo.data) == (Opcode.TEXT, b"Hello")
    assert close.opcode is Opcode.CLOSE and Close.parse(close.data).code == 1002
    assert protocol.state is State.CLOSING
    assert protocol.should_close_transport()
    assert isinstance(protocol.exc, ProtocolError)
    assert not protocol.fail_pending()


def test_error_without_message_before_fails_at_once():
    protocol = server()
    assert protocol.receive_data(client_frame(Opcode.TEXT, b"x", rsv2=True)) == []
    assert not protocol.fail_pending()
    (close,) = frames_out(protocol)
    assert Close.parse(close.data).code == 1002
    assert protocol.should_close_transport()


def test_fragmented_message_then_error_is_held():
    # 5.15: two fragments, then a continuation with nothing to continue.
    protocol = server()
    data = client_frame(Opcode.TEXT, b"frag1", fin=False) + client_frame(Opcode.CONT, b"frag2")
    data += client_frame(Opcode.CONT, b"frag3", fin=False) + client_frame(Opcode.TEXT, b"x")
    events = protocol.receive_data(data)
    assert events == [Fragment("frag1", False), Fragment("frag2", True)]
    assert protocol.data_to_send() == b""
    assert protocol.fail_pending()
    (close,) = frames_out(protocol)
    assert Close.parse(close.data).code == 1002


def test_send_close_applies_pending_failure():
    protocol = server()
    data = client_frame(Opcode.BINARY, b"\x00") + client_frame(0x5, b"")  # reserved opcode
    assert protocol.receive_data(data) == [Message(b"\x00")]
    protocol.send_close(1000)
    (close,) = frames_out(protocol)
    assert Close.parse(close.data).code == 1002
    assert protocol.close_sent == Close(1002, protocol.close_sent.reason)
    assert protocol.should_close_transport()


def test_eof_with_pending_failure_records_it():
    protocol = server()
    data = client_frame(Opcode.TEXT, b"a") + client_frame(Opcode.TEXT, b"\xff")
    assert protocol.receive_data(data) == [Message("a")]
    protocol.receive_eof()
    assert protocol.state is State.CLOSED
    assert isinstance(protocol.exc, ProtocolError) and protocol.exc.code == 1007
    assert protocol.close_code == 1006
    assert not protocol.fail_pending()


# UTF-8 is validated inside a frame as its payload arrives (6.4.3, 6.4.4).


def chops(data, *sizes):
    out, pos = [], 0
    for size in sizes:
        out.append(data[pos : pos + size])
        pos += size
    out.append(data[pos:])
    return out


PART1 = bytes.fromhex("cebae1bdb9cf83cebcceb5")
PART2 = bytes.fromhex("f4908080")
PART3 = bytes.fromhex("656469746564")


def test_invalid_utf8_in_partial_frame_fails_fast():
    protocol = server()
    data = client_frame(Opcode.TEXT, PART1 + PART2 + PART3)
    header = len(data) - len(PART1 + PART2 + PART3)
    first, second, _ = chops(data, header + len(PART1), len(PART2))
    assert protocol.receive_data(first) == []
    assert protocol.data_to_send() == b""
    assert protocol.receive_data(second) == []
    (close,) = frames_out(protocol)
    assert Close.parse(close.data).code == 1007
    assert protocol.should_close_transport()


@pytest.mark.parametrize("split", [1, 2, 3, 5, 7])
def test_invalid_utf8_found_at_any_mask_offset(split):
    # 6.4.4: the invalid byte first; the masking key must be rotated by the offset.
    protocol = server()
    payload = PART1 + PART2 + PART3
    data = client_frame(Opcode.TEXT, payload)
    header = len(data) - len(payload)
    pieces = chops(data, header + split, len(PART1) - split, 1)
    assert protocol.receive_data(pieces[0]) == []
    assert protocol.receive_data(pieces[1]) == []
    assert protocol.data_to_send() == b""
    protocol.receive_data(pieces[2])  # 0xF4 0x90 may still start a valid character
    protocol.receive_data(pieces[3][:1])  # 0xF4 0x90 0x80 0x80 is above U+10FFFF
    (close,) = frames_out(protocol)
    assert Close.parse(close.data).code == 1007


def test_partial_frame_without_new_bytes_is_not_checked_again():
    protocol = server()
    data = client_frame(Opcode.TEXT, PART1 + PART2 + PART3)
    header = len(data) - len(PART1 + PART2 + PART3)
    assert protocol.receive_data(data[: header + 4]) == []
    assert protocol.receive_data(b"") == []
    assert protocol._partial_checked == 4
    assert protocol.receive_data(data[header + 4 :]) == []  # the rest, with the bad bytes
    (close,) = frames_out(protocol)
    assert Close.parse(close.data).code == 1007


def test_surrogate_in_partial_frame_fails_fast():
    protocol = server()
    data = client_frame(Opcode.TEXT, b"ab\xed\xa0\x80cd")
    assert protocol.receive_data(data[:-3]) == []  # up to ED A0
    (close,) = frames_out(protocol)
    assert Close.parse(close.data).code == 1007


def test_valid_text_frame_in_many_chops():
    protocol = server()
    payload = ("κόσμε€😀" * 5000).encode()
    data = client_frame(Opcode.TEXT, payload)
    events = []
    for pos in range(0, len(data), 997):
        events += protocol.receive_data(data[pos : pos + 997])
    assert events == [Message(payload.decode())]
    assert protocol.data_to_send() == b""
    assert protocol._partial_decoder is None


def test_partial_continuation_frame_continues_the_character():
    # The first fragment ends inside a 4-byte character; the continuation frame completes it
    # and arrives in chops: its partial check must start from the message's decoder state.
    protocol = server()
    char = "😀".encode()
    first = client_frame(Opcode.TEXT, b"a" + char[:1], fin=False)
    cont = client_frame(Opcode.CONT, char[1:] + b"bcd")
    assert protocol.receive_data(first) == [Fragment("a", False)]
    header = len(cont) - 6
    assert protocol.receive_data(cont[: header + 2]) == []
    assert protocol.data_to_send() == b""
    assert protocol.receive_data(cont[header + 2 :]) == [Fragment("😀bcd", True)]
    assert protocol.data_to_send() == b""


def test_invalid_partial_continuation_frame_fails_fast():
    protocol = server()
    first = client_frame(Opcode.TEXT, b"ok", fin=False)
    cont = client_frame(Opcode.CONT, b"x\xc0\xafmore")
    assert protocol.receive_data(first) == [Fragment("ok", False)]
    header = len(cont) - 7
    assert protocol.receive_data(cont[: header + 3]) == []
    (close,) = frames_out(protocol)
    assert Close.parse(close.data).code == 1007


# Over a socket: the echo server answers the message, then fails with 1002.


def test_server_echoes_message_before_failing(server):
    srv = server(max_size=2**20, ping_interval=None)
    sock, rest = raw_client(srv)
    with sock:
        bad = bytes([0x80 | 0x20 | 0x1, 0x80 | 1]) + b"\0\0\0\0" + b"x"  # RSV2 set
        sock.sendall(frame(0x1, b"Hello", mask=True) + bad + frame(0x9, b"", mask=True))
        reader = FrameReader(sock, rest)
        assert reader.read() == (0x1, b"Hello")
        opcode, payload = reader.read()
        assert opcode == 0x8 and parse_close(payload)[0] == 1002
        assert reader.read_until_eof() == []  # no pong; the server closes TCP


def test_server_fails_fast_inside_a_text_frame(server):
    srv = server(max_size=2**20, ping_interval=None)
    sock, rest = raw_client(srv)
    with sock:
        payload = PART1 + PART2 + PART3
        data = frame(0x1, payload, mask=True)
        header = len(data) - len(payload)
        sock.sendall(data[: header + len(PART1)])
        time.sleep(0.1)
        sock.sendall(data[header + len(PART1) : header + len(PART1) + len(PART2)])
        reader = FrameReader(sock, rest)
        opcode, payload = reader.read()  # before the rest of the frame is sent
        assert opcode == 0x8 and parse_close(payload)[0] == 1007
        try:
            sock.sendall(close_frame(1007, mask=True))
        except OSError:
            pass
        assert reader.read_until_eof() == []


def test_client_echoes_message_before_failing():
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        port = listener.getsockname()[1]
        seen = []

        def peer():
            sock, _ = listener.accept()
            with sock:
                sock.settimeout(TIMEOUT)
                head, rest = read_request(sock)
                sock.sendall(switching_protocols(head))
                bad = bytes([0x80 | 0x3, 0])  # reserved opcode 3
                sock.sendall(frame(0x2, b"\x01\x02", mask=False) + bad)
                reader = FrameReader(sock, rest)
                seen.append(reader.read())
                seen.append(reader.read())

        thread = threading.Thread(target=peer)
        thread.start()
        with syncws.connect(f"ws://127.0.0.1:{port}/", ping_interval=None) as ws:
            assert ws.recv(timeout=TIMEOUT) == b"\x01\x02"
            ws.send(b"\x01\x02")
            with pytest.raises(syncws.ConnectionClosedError):
                ws.recv(timeout=TIMEOUT)
            assert ws.protocol.close_sent.code == 1002
        thread.join(TIMEOUT)
        assert seen[0] == (0x2, b"\x01\x02")
        assert seen[1][0] == 0x8 and parse_close(seen[1][1])[0] == 1002
