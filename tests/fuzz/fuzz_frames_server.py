"""Fuzz target: the frame parser and state machine of a server (``ServerProtocol``).

Input: one byte of settings, then the bytes a client sends after its handshake request
(masked frames). See ``frames_harness.py`` for the settings and the oracles: the same
bytes fed whole through the fast paths, byte by byte and in random chunks must give the
same events, frames sent, close codes and errors, and no exception may escape.
"""

from __future__ import annotations

import fuzzing

with fuzzing.instrumented():
    import frames_harness


def one_input(data: bytes) -> str:
    return frames_harness.check("server", data)


DICTIONARY = [
    b"\x81\x80\x00\x00\x00\x00",  # masked text frame headers, then binary, continuations
    b"\x81\x85",
    b"\x82\xfe\x00\x80",
    b"\x82\xff\x00\x00\x00\x00\x00\x00\x01\x00",
    b"\x01\x81",
    b"\x00\x81",
    b"\x80\x81",
    b"\xc1\x85",  # RSV1: compressed
    b"\x41\x85",
    b"\x89\x80\x00\x00\x00\x00",  # ping, pong, close
    b"\x8a\x80\x00\x00\x00\x00",
    b"\x88\x82\x00\x00\x00\x00\x03\xe8",
    b"\x88\x80\x00\x00\x00\x00",
    b"\x00\x00\xff\xff",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xc3\xa9",
]

TARGET = fuzzing.Target("frames_server", one_input, DICTIONARY)

if __name__ == "__main__":
    fuzzing.main(TARGET)
