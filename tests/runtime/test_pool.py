"""The bounded thread pool: reuse, refusal when full, join."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from rawws import wait_for
from timing import TIMEOUT

from syncws.runtime.pool import Pool


@pytest.fixture
def pool() -> Iterator[Pool]:
    instance = Pool(2, "test-pool", logging.getLogger("test"))
    yield instance
    instance.join(TIMEOUT)
    instance.stop()


def test_full_pool_refuses_work(pool: Pool) -> None:
    """Two tasks run at once in a pool of two; a third is refused until one ends."""
    release = threading.Event()
    started = threading.Semaphore(0)

    def task() -> None:
        started.release()
        release.wait(TIMEOUT)

    assert pool.try_submit(task)
    assert pool.try_submit(task)
    assert started.acquire(timeout=TIMEOUT) and started.acquire(timeout=TIMEOUT)
    assert pool.busy == 2
    assert not pool.try_submit(task)
    release.set()
    assert pool.join(TIMEOUT)
    assert pool.busy == 0
    assert pool.try_submit(lambda: None)


def test_threads_are_reused(pool: Pool) -> None:
    """Tasks submitted one after the other run on the same thread."""
    names: list[str] = []
    for _ in range(5):
        assert pool.try_submit(lambda: names.append(threading.current_thread().name))
        assert pool.join(TIMEOUT)
    assert len(names) == 5
    assert len(set(names)) == 1


def test_join_waits_for_running_tasks(pool: Pool) -> None:
    """join() returns True once the tasks are done, False if its timeout expires first; only
    a join() in progress gets notified when a task ends."""
    release = threading.Event()
    notified: list[int] = []
    notify_all = pool._done.notify_all

    def counting_notify_all() -> None:
        notified.append(1)
        notify_all()

    pool._done.notify_all = counting_notify_all  # type: ignore[method-assign]
    assert pool.try_submit(lambda: None)
    assert wait_for(lambda: pool.busy == 0, TIMEOUT)
    assert notified == []  # nobody was waiting
    assert pool.try_submit(lambda: release.wait(TIMEOUT))
    assert not pool.join(0.05)
    result: list[bool] = []
    joiner = threading.Thread(target=lambda: result.append(pool.join(TIMEOUT)))
    joiner.start()
    assert wait_for(lambda: pool._joiners == 1, TIMEOUT)
    release.set()
    joiner.join(TIMEOUT)
    assert result == [True]
    assert notified == [1]
    assert pool._joiners == 0


@pytest.mark.parametrize("error", [ValueError, SystemExit])
def test_task_errors_are_logged(
    pool: Pool, caplog: pytest.LogCaptureFixture, error: type[BaseException]
) -> None:
    """An exception in a task is logged; the thread serves the next task. SystemExit too:
    a thread that died of it would stay counted as busy, and join() would never return."""

    def fail() -> None:
        raise error("boom")

    assert pool.try_submit(fail)
    assert pool.join(TIMEOUT)
    assert "unexpected error in test-pool-1" in caplog.text
    done = threading.Event()
    assert pool.try_submit(done.set)
    assert done.wait(TIMEOUT)


def test_pool_threads_report_their_state_like_any_thread(pool: Pool) -> None:
    """Pool threads are a Thread subclass that runs the pool's loop directly (less C stack):
    is_alive(), daemon, repr() and join() answer as for any thread."""
    release = threading.Event()
    threads: list[threading.Thread] = []

    def task() -> None:
        threads.append(threading.current_thread())
        release.wait(TIMEOUT)

    assert pool.try_submit(task) and pool.try_submit(task)
    assert wait_for(lambda: len(threads) == 2, TIMEOUT)
    for thread in threads:
        assert thread.is_alive() and thread.daemon
        assert "started" in repr(thread) and thread.name.startswith("test-pool-")
        thread.join(0.01)
        assert thread.is_alive()
    release.set()
    assert pool.join(TIMEOUT)
    pool.stop()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        assert "stopped" in repr(thread)
    assert not pool._threads
