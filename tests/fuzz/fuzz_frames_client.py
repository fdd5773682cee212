"""Fuzz target: the frame parser and state machine of a client (``ClientProtocol``).

Input: one byte of settings, then the bytes a server sends after its ``101`` response
(unmasked frames). See ``frames_harness.py`` for the settings and the oracles: the same
bytes fed whole through the fast paths, byte by byte and in random chunks must give the
same events, frames sent (compared unmasked: a client's masks are random), close codes
and errors, and no exception may escape.
"""

from __future__ import annotations

import fuzzing

with fuzzing.instrumented():
    import frames_harness


def one_input(data: bytes) -> str:
    return frames_harness.check("client", data)


DICTIONARY = [
    b"\x81\x00",  # text frame headers, then binary, continuations
    b"\x81\x05",
    b"\x82\x7e\x00\x80",
    b"\x82\x7f\x00\x00\x00\x00\x00\x00\x01\x00",
    b"\x01\x01",
    b"\x00\x01",
    b"\x80\x01",
    b"\xc1\x05",  # RSV1: compressed
    b"\x41\x05",
    b"\x89\x00",  # ping, pong, close
    b"\x8a\x00",
    b"\x88\x02\x03\xe8",
    b"\x88\x00",
    b"\x00\x00\xff\xff",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xc3\xa9",
]

TARGET = fuzzing.Target("frames_client", one_input, DICTIONARY)

if __name__ == "__main__":
    fuzzing.main(TARGET)
