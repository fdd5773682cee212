"""The tests' one unit of time.

:data:`TIMEOUT` bounds every wait for something that should happen (a message, a close, a
thread's end): 5 seconds, times ``SYNCWS_TESTS_TIMEOUT_FACTOR`` from the environment (1 by
default) for slow or loaded machines, e.g. ``SYNCWS_TESTS_TIMEOUT_FACTOR=4`` under a
sanitizer or on a busy CI runner. A passing test never waits that long: it only bounds the
failing ones. Waits meant to expire (checking that nothing happens) and the timeouts under
test (``close_timeout=0.2``) are not scaled. pytest-timeout's limits (the ``timeout``
setting, the ``timeout`` marks) grow with the factor too: see :func:`scale_timeout_marks`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

import pytest

__all__ = ["FACTOR", "TIMEOUT", "scale_timeout_marks"]


def _factor() -> float:
    raw = os.environ.get("SYNCWS_TESTS_TIMEOUT_FACTOR", "1")
    try:
        factor = float(raw)
    except ValueError:
        factor = math.nan
    if not math.isfinite(factor) or factor <= 0:
        raise ValueError(f"SYNCWS_TESTS_TIMEOUT_FACTOR must be a number above 0, got {raw!r}")
    return factor


#: What multiplies every bound (``SYNCWS_TESTS_TIMEOUT_FACTOR``).
FACTOR = _factor()

#: Seconds that anything a test waits for may take.
TIMEOUT = 5 * FACTOR


def scale_timeout_marks(items: Iterable[pytest.Item], default: float, factor: float) -> None:
    """Give each test a pytest-timeout limit ``factor`` times its own (its ``timeout``
    mark's, else ``default``, the ``timeout`` setting), so that a loaded machine's bounds
    never outlast the limit that kills the test. Called at collection by conftest.py."""
    if factor == 1:
        return
    for item in items:
        mark = item.get_closest_marker("timeout")
        seconds = default
        if mark is not None:
            seconds = mark.args[0] if mark.args else mark.kwargs.get("timeout", default)
        if seconds:
            item.add_marker(pytest.mark.timeout(float(seconds) * factor), append=False)
