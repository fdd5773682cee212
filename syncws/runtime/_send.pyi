# The C module of syncws/runtime/_send.c.

def send(fd: int, data: bytes, flags: int, /) -> int:
    """One non-blocking send() with the GIL held: the bytes written, or -1 if it failed."""
