"""The tests' one unit of time.

:data:`TIMEOUT` bounds every wait for something that should happen (a message, a close, a
thread's end): 5 seconds, times ``SYNCWS_TESTS_TIMEOUT_FACTOR`` from the environment (1 by
default) for slow or loaded machines, e.g. ``SYNCWS_TESTS_TIMEOUT_FACTOR=4`` under a
sanitizer or on a busy CI runner. A passing test never waits that long: it only bounds the
failing ones. Waits meant to expire (checking that nothing happens) and the timeouts under
test (``close_timeout=0.2``) are not scaled.
"""

from __future__ import annotations

import math
import os

__all__ = ["FACTOR", "TIMEOUT"]


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
