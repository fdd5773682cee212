# The C module of syncws/runtime/_send.c.

from typing import Protocol

class _HasFileno(Protocol):
    def fileno(self) -> int: ...

def send(sock: int | _HasFileno, data: bytes, flags: int, /) -> int:
    """One non-blocking send() with the GIL held: the bytes written, or -1 if it failed."""
