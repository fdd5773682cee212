"""The console transcripts of the command-line page (docs/reference/cli.rst) that tests
replay, so that the page shows what the client prints.

A transcript is the ``console`` code block that follows a comment line
``.. transcript: NAME (...)`` in the page.
"""

from __future__ import annotations

import re
from pathlib import Path

CLI_PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "cli.rst"


def transcript(name: str) -> list[str]:
    """The lines of transcript ``name``, without their indentation."""
    text = CLI_PAGE.read_text()
    match = re.search(
        rf"^( *)\.\. transcript: {re.escape(name)}\b.*\n\n\1\.\. code-block:: console\n\n"
        rf"((?:\1   .*\n|\n)+)",
        text,
        re.MULTILINE,
    )
    assert match is not None, f"no transcript {name!r} in {CLI_PAGE}"
    indent = len(match[1]) + 3
    return [line[indent:] for line in match[2].rstrip("\n").split("\n")]


def normalize(line: str, replacements: dict[str, str]) -> str:
    """``line`` with ``replacements`` made (the test's files and URIs for the page's) and
    round-trip times masked."""
    for old, new in replacements.items():
        line = line.replace(old, new)
    return re.sub(r"\d+\.\d\d ms", "N ms", line)
