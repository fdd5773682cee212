"""Tests for the service fixtures' policy: skip locally without the program, fail in CI."""

from __future__ import annotations

import pytest
from services import find_program


def test_missing_program_skips_locally_naming_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without CI=true, a missing program skips the test, naming the Debian package."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install some-package"):
        find_program("no-such-program-here", "some-package")


def test_missing_program_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under CI=true, a missing program fails the test: CI must run every test."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install some-package"):
        find_program("no-such-program-here", "some-package")
