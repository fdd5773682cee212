"""The tests' unit of time scales pytest-timeout's limits as well as the tests' own bounds:
on a machine slow enough to need ``SYNCWS_TESTS_TIMEOUT_FACTOR``, a test is not killed
before its scaled bounds expire."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from timing import TIMEOUT

TESTS = Path(__file__).parent

SLOW_TESTS = """
import time

import pytest


def test_unmarked():
    time.sleep(0.8)


@pytest.mark.timeout(0.4)
def test_marked():
    time.sleep(0.8)
"""

CONFTEST = """
from timing import FACTOR, scale_timeout_marks


def pytest_collection_modifyitems(config, items):
    scale_timeout_marks(items, float(config.getini("timeout") or 0), FACTOR)
"""


def run_slow_tests(tmp_path: Path, factor: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_slow.py").write_text(SLOW_TESTS)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\ntimeout = 0.4\n")
    env = dict(os.environ, PYTHONPATH=str(TESTS), SYNCWS_TESTS_TIMEOUT_FACTOR=factor)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=4 * TIMEOUT,
    )


@pytest.mark.parametrize(("factor", "outcome"), [("1", "2 failed"), ("4", "2 passed")])
def test_pytest_timeout_limits_grow_with_the_factor(
    tmp_path: Path, factor: str, outcome: str
) -> None:
    """Both the ``timeout`` setting and a ``timeout`` mark are multiplied by the factor:
    0.4 s kills both 0.8 s tests, 1.6 s lets them pass."""
    result = run_slow_tests(tmp_path, factor)
    assert outcome in result.stdout, result.stdout + result.stderr
