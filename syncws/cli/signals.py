"""Keeping process signals (Ctrl-C, SIGTERM) for the main thread.

Python runs signal handlers in the main thread, but the kernel delivers a signal sent to
the process to *any* thread that does not block it. When another thread gets it, the
main thread is not interrupted: blocked in :func:`input` (readline's ``select()``) or in
:meth:`threading.Event.wait`, it would not notice Ctrl-C until it wakes up for another
reason, such as the next key press. Threads started inside :func:`signals_blocked`
inherit a signal mask that blocks these signals, so they all go to the main thread.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["MainThreadWaker", "signals_blocked"]

_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def signals_blocked() -> Iterator[None]:
    """Block SIGINT and SIGTERM in the calling thread for the block.

    Threads started within the block keep them blocked for good; a signal that arrives
    meanwhile is delivered to the main thread when the block ends. No-op where
    :func:`signal.pthread_sigmask` does not exist, and outside the main thread.
    """
    if not hasattr(signal, "pthread_sigmask") or (
        threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class MainThreadWaker:
    """Gets the main thread out of a blocking read of the input, reliably.

    A signal interrupts the main thread's ``select()`` or ``read()`` only if it arrives
    while the thread is blocked there. One that arrives a moment before (readline is
    still handling the previous key press) is recorded at the C level, but its Python
    handler does not run until the read returns, i.e. until the next key press. So:

    * :meth:`wake` sends the signal to the main thread, again every 50 ms for as long as
      ``waiting()`` says it is still reading;
    * a helper thread watches :func:`signal.set_wakeup_fd`, where the C-level handler
      writes every signal received, and calls :meth:`wake` for Ctrl-C and SIGTERM.

    Args:
        waiting: Whether the main thread is (still) blocked reading the input.
    """

    RETRY_INTERVAL = 0.05
    MAX_RETRIES = 100

    def __init__(self, waiting: Callable[[], bool]) -> None:
        self._waiting = waiting
        self._main = threading.main_thread().ident
        self._stopped = threading.Event()
        self._sending = threading.Lock()
        self._reader: socket.socket | None = None
        self._writer: socket.socket | None = None
        self._previous_fd = -1
        self.kicked = False
        """Whether :meth:`wake` sent a signal: the handler may then see more of them than
        the user sent."""

    @property
    def installed(self) -> bool:
        """Whether :meth:`install` did install (main thread, POSIX)."""
        return self._reader is not None

    def install(self) -> None:
        """Watch signals (from the main thread, once its handlers are installed)."""
        if not hasattr(signal, "pthread_kill"):
            return
        if threading.current_thread() is not threading.main_thread():
            return
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        watcher = threading.Thread(target=self._watch, name="syncws-cli-signals", daemon=True)
        with signals_blocked():
            watcher.start()

    def uninstall(self) -> None:
        """Stop watching (from the main thread)."""
        self._stopped.set()
        if self._reader is None or self._writer is None:
            return
        signal.set_wakeup_fd(self._previous_fd)
        self._reader.shutdown(socket.SHUT_RDWR)  # wakes the watcher up: it ends
        self._writer.close()

    def wake(self, signum: int = signal.SIGINT, *, delay: bool = False) -> None:
        """Send ``signum`` to the main thread until it stops waiting for input (bounded).

        Args:
            delay: Wait one interval before the first signal: for a signal that was
                already sent, which normally does the job by itself.
        """
        if self._main is None or not self.installed:
            return
        # One sender at a time: two of them in step could signal the main thread twice
        # within a few microseconds, and the second signal would run the handler again
        # while the first one's KeyboardInterrupt is pending (CPython raises SystemError).
        if not self._sending.acquire(blocking=False):
            return  # another thread is at it, until the main thread stops waiting
        try:
            for _ in range(self.MAX_RETRIES):
                if delay:
                    self._stopped.wait(self.RETRY_INTERVAL)
                delay = True
                if not self._waiting() or self._stopped.is_set():
                    return
                self.kicked = True
                signal.pthread_kill(self._main, signum)
        finally:
            self._sending.release()

    def _watch(self) -> None:
        assert self._reader is not None
        try:
            while data := self._reader.recv(64):
                for signum in set(data) & _SIGNALS:
                    # Usually the signal interrupted the read already, and signalling
                    # again before the main thread is back from input() would be the
                    # double signal wake() avoids: only a read that is still blocked
                    # one interval later missed the signal.
                    self.wake(signum, delay=True)
        finally:
            self._reader.close()
