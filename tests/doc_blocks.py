"""The code blocks of the documentation (``docs/**/*.rst``) and of README.md, found without
Sphinx (the test extras do not install it): enough reStructuredText to find directives,
``::`` literal blocks and doctest blocks, and Markdown's fenced blocks.

Used by tests/test_docs.py, which checks that each block is tested, and by the tests that
run a command the documentation shows (tests/test_examples.py).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"

_DIRECTIVE = re.compile(r"^(\s*)\.\. ([a-z-]+)::(.*)$")


@dataclass
class Block:
    """A block of code or text shown as it is.

    ``kind`` is ``"literalinclude"`` (``text`` is then the included path), ``"code"`` (a
    ``code-block`` directive, a ``::`` literal block or a Markdown fence: ``language`` is
    ``""`` where none is given) or ``"doctest"`` (a paragraph of ``>>>`` lines).
    """

    path: Path
    line: int
    kind: str
    language: str
    text: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def rst_files() -> list[Path]:
    """Every reStructuredText source of the documentation: its pages, and the files they
    ``.. include::`` (``.inc`` files, benchmark results)."""
    pages = sorted(DOCS.rglob("*.rst"))
    included = {
        (page.parent / match[1].strip()).resolve()
        for page in pages
        for match in re.finditer(r"^\s*\.\. include::(.*)$", page.read_text(), re.MULTILINE)
    }
    return pages + sorted(included - set(pages))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _body(lines: list[str], start: int, indent: int) -> tuple[str, int]:
    """The lines from ``start`` on that are blank or indented deeper than ``indent``,
    dedented, without the blank lines around them; and the index after them."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    body = lines[start:end]
    while body and not body[-1].strip():
        body.pop()
    while body and not body[0].strip():
        body.pop(0)
    depth = min((_indent(line) for line in body if line.strip()), default=0)
    return "\n".join(line[depth:] for line in body), end


def rst_blocks(path: Path, text: str | None = None, first_line: int = 1) -> Iterator[Block]:
    """The literal blocks, code blocks, doctest blocks and literalincludes of ``path`` (or
    of ``text``, found in ``path`` at ``first_line``: a docstring)."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    offset = first_line - 1
    i = 0
    previous_blank = True
    while i < len(lines):
        line = lines[i]
        directive = _DIRECTIVE.match(line)
        if directive and directive[2] in {"code-block", "code", "sourcecode", "literalinclude"}:
            indent = _indent(line)
            options: dict[str, str] = {}
            j = i + 1
            while (
                j < len(lines) and lines[j].strip().startswith(":") and _indent(lines[j]) > indent
            ):
                name, _, value = lines[j].strip()[1:].partition(":")
                options[name] = value.strip()
                j += 1
            body, end = _body(lines, j, indent)
            if directive[2] == "literalinclude":
                yield Block(
                    path, offset + i + 1, "literalinclude", "", directive[3].strip(), options
                )
            else:
                yield Block(path, offset + i + 1, "code", directive[3].strip(), body, options)
            i, previous_blank = end, True
            continue
        if line.rstrip().endswith("::") and not directive and not line.lstrip().startswith(".."):
            body, end = _body(lines, i + 1, _indent(line))
            if body:
                kind = "doctest" if body.startswith(">>>") else "code"
                yield Block(path, offset + i + 1, kind, "", body)
                i, previous_blank = end, True
                continue
        if previous_blank and line.lstrip().startswith(">>> "):
            start = i
            while i < len(lines) and lines[i].strip():
                i += 1
            yield Block(path, offset + start + 1, "doctest", "", "\n".join(lines[start:i]))
            continue
        previous_blank = not line.strip()
        i += 1


def readme_blocks() -> Iterator[Block]:
    """The fenced code blocks of README.md."""
    lines = README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\S*)\s*$", lines[i])
        if fence:
            end = lines.index("```", i + 1)
            yield Block(README, i + 1, "code", fence[1], "\n".join(lines[i + 1 : end]))
            i = end
        i += 1


@dataclass
class Command:
    """A shell command of a ``console`` block (``$ ...``), with the output shown after it."""

    block: Block
    text: str
    output: list[str]

    def pipeline(self) -> list[list[str]]:
        """The commands of ``text`` split on ``|``, ``&&`` and ``;``, as argument lists
        (comments and redirections dropped, quotes removed)."""
        text = re.sub(r"\s\d*>&\d+|\s\d*>>?\s*\S+", "", self.text)  # redirections
        lexer = shlex.shlex(text, posix=True, punctuation_chars="|&;")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        commands: list[list[str]] = [[]]
        for token in lexer:
            if token in {"|", "&&", ";"}:
                commands.append([])
            else:
                commands[-1].append(token)
        return [command for command in commands if command]


def console_commands(block: Block) -> list[Command]:
    """The ``$`` commands of a console block, continuation lines (``\\``) joined."""
    commands: list[Command] = []
    pending: str | None = None
    for line in block.text.splitlines():
        if pending is not None:
            pending += " " + line.strip()
        elif line.startswith("$ "):
            pending = line[2:]
        elif commands:
            commands[-1].output.append(line)
            continue
        else:
            raise AssertionError(f"{block.where}: output before any command: {line!r}")
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
        else:
            commands.append(Command(block, pending, []))
            pending = None
    assert pending is None, f"{block.where}: the last command is continued (\\) by nothing"
    return commands


def script_commands(block: Block) -> list[Command]:
    """The commands of a shell block without prompts (README's ``sh`` blocks)."""
    lines: list[str] = []
    continued = False
    for line in block.text.splitlines():
        if line.strip():
            lines.append(line if continued else "$ " + line)
            continued = line.endswith("\\")
    return console_commands(replace(block, language="console", text="\n".join(lines)))


def commands_in(page: str, program: str) -> list[Command]:
    """The commands of the console blocks of ``docs/PAGE`` that run ``program``."""
    return [
        command
        for block in rst_blocks(DOCS / page)
        if block.kind == "code" and block.language == "console"
        for command in console_commands(block)
        if command.pipeline()[0][0] == program
    ]
