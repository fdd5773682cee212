# The C module of syncws/runtime/_send.c.

from typing import Protocol

class _HasFileno(Protocol):
    def fileno(self) -> int: ...

def send(sock: int | _HasFileno, data: bytes, flags: int, /) -> int:
    """One non-blocking send() with the GIL held: the bytes written, or -1 if it failed."""

def recv(sock: _HasFileno, size: int, /) -> bytes | None:
    """One non-blocking recv() with the GIL held: the bytes (b"" at EOF), or None if none."""

def epoll_ctl(epfd: int, op: int, fd: int, events: int, /) -> None:
    """The epoll_ctl() system call with the GIL held (Linux)."""
