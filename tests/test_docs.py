"""The documentation cannot drift from the code: every code block it shows is tested.

The rule (docs/ and README.md), one mechanism per kind of block:

- **Python** is included from a file under ``examples/`` (``literalinclude``) that a test
  runs; README.md, which cannot include files, shows parts of such files verbatim. The one
  exception is an interactive session (``>>>`` lines), where the printed values are the
  point: those are doctests, run here with the standard library's :mod:`doctest`.
- **Configuration files** (nginx, systemd, HAProxy) are included from ``examples/deployment/``,
  whose tests run or check them (tests/test_deployment.py, tests/integrations/test_nginx.py).
- **Shell commands** are ``console`` blocks with ``$`` prompts; each command must exist with
  the options it names: the CLI's own parsers, pip's options and this project's extras, the
  scripts of this repository and their options, ``python -c`` run for real.
- **text** blocks are output (log lines, messages, usage synopses); a synopsis's options
  must exist, and a text block that holds Python fails.

A block that fits none of these fails :func:`test_every_code_block_is_tested`, with where it
is and what to do.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import doctest
import functools
import importlib.util
import io
import os
import re
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

import pytest
from doc_blocks import (
    DOCS,
    README,
    ROOT,
    Block,
    Command,
    console_commands,
    readme_blocks,
    rst_blocks,
    rst_files,
    script_commands,
)
from timing import TIMEOUT

import syncws
from syncws.cli import client, demo, run

EXAMPLES = ROOT / "examples"
TESTS = ROOT / "tests"

#: Blocks exempt from the rule, by ``"path:line"``, each with the reason. Keep it empty.
ALLOWED: dict[str, str] = {}

PYTHON = {"python", "python3", "py", "pycon"}

#: Programs that commands may run although this repository cannot check them, and why.
EXTERNAL = {
    "openssl": "tests/test_examples.py runs the TLS guide's openssl command for its certificate",
    "curl": "the health-check example's test sends the same request with http.client",
    "printf": "a shell built-in, feeding the CLI's standard input",
    "echo": "a shell built-in, feeding the CLI's standard input",
    "grep": "reads the CLI's standard output",
    "tee": "copies a command's output to a file",
    "nice": "runs the command after it at a lower priority (checked as a command too)",
    "mkdir": "makes a scratch directory",
}

#: Environment variables that commands set although neither syncws nor the program they
#: run reads them, and who does.
EXTERNAL_ENVIRONMENT = {
    "MALLOC_MMAP_THRESHOLD_": "glibc's malloc (mallopt(3)), as docs/topics/performance.rst says",
    "MALLOC_TRIM_THRESHOLD_": "glibc's malloc (mallopt(3)), as docs/topics/performance.rst says",
    "PYTHONFAULTHANDLER": "Python itself",
}


def all_blocks() -> list[Block]:
    return [block for path in rst_files() for block in rst_blocks(path)] + list(readme_blocks())


@functools.cache
def sources_of_tests() -> str:
    """The text of every test module but this one and its helper: to find what they run."""
    skip = {Path(__file__).resolve(), TESTS / "doc_blocks.py"}
    return "\n".join(p.read_text() for p in sorted(TESTS.rglob("*.py")) if p not in skip)


def run_by_a_test(path: Path) -> bool:
    """Whether a test names ``path`` (an example) in a string: its file name, its path
    under examples/ with or without ``.py`` (``example("chat/step1")``), or a
    ``module:attribute`` target. An included file's name must be unique under examples/, so
    that a test of another one cannot count."""
    if [p.name for p in example_files()].count(path.name) > 1:
        return False
    relative = path.relative_to(EXAMPLES).as_posix()
    names = {re.escape(name) for name in (path.name, relative, relative.removesuffix(".py"))}
    if path.suffix == ".py":
        names.add(re.escape(path.stem) + r":\w+")  # module:attribute, for gunicorn or syncws run
    # A string of its own: EXAMPLES / "tls_server.py", example("chat/step1"), "handlers:echo".
    return any(re.search(rf"[\"']({name})[\"']", sources_of_tests()) for name in names)


def example_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def looks_like_python(text: str) -> bool:
    """Whether ``text`` parses as Python that does something (not a bare literal: JSON)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return False
    kinds = (ast.Call, ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign)
    return any(isinstance(node, kinds) for node in ast.walk(tree))


def problem(block: Block) -> str | None:
    """What is wrong with ``block`` under the rule of this module, or ``None``."""
    if block.kind == "literalinclude":
        target = (block.path.parent / block.text).resolve()
        if not target.is_relative_to(EXAMPLES):
            return f"includes {block.text}, which is not under examples/"
        if not run_by_a_test(target):
            return f"includes {target.relative_to(ROOT)}, which no test runs"
        return None
    if block.kind == "doctest":
        return None  # test_doctests_pass runs every one
    language = block.language
    if block.path == README:
        if language == "python":
            owners = [p for p in example_files() if block.text + "\n" in p.read_text()]
            if not any(run_by_a_test(owner) for owner in owners):
                return "README Python that is not, verbatim, part of a tested file under examples/"
            return None
        return None if language in {"sh", ""} else f"README block in {language!r}"
    if language in PYTHON or language == "":
        return (
            "Python in the page: move it into a file under examples/ that a test runs, and "
            "show it with literalinclude (or make it a >>> doctest)"
        )
    if language == "console":
        return None  # test_console_commands_exist checks each command
    if language == "text":
        if looks_like_python(block.text):
            return "Python in a text block: include it from examples/ instead"
        return None
    if language in {"sh", "bash", "shell"}:
        return "a shell block: make it a console block, with '$ ' before each command"
    return (
        f"a {language} file in the page: put it under examples/deployment/, with a test "
        "that checks it, and show it with literalinclude"
    )


def test_every_code_block_is_tested() -> None:
    """Every block of docs/ and README.md is included from a tested example, a doctest, a
    checked command or output; ALLOWED names the exceptions (none)."""
    blocks = all_blocks()
    assert len(blocks) > 100  # the scanner finds the blocks that are there
    problems = [
        f"{block.where}: {reason}"
        for block in blocks
        if (reason := problem(block)) is not None and block.where not in ALLOWED
    ]
    assert problems == []
    stale = set(ALLOWED) - {block.where for block in blocks}
    assert not stale, f"ALLOWED lists blocks that are gone: {stale}"


def test_the_scanner_catches_untested_blocks(tmp_path: Path) -> None:
    """The scanner finds a Python snippet in every form reStructuredText allows, a config
    file, a shell block, Python hidden in a text block, and an include of an untested file."""
    page = tmp_path / "page.rst"
    page.write_text(
        "Title\n=====\n\nA paragraph::\n\n   syncws.serve(echo, 'localhost', 8765)\n\n"
        ".. code-block:: python\n   :caption: x\n\n   import syncws\n\n"
        ".. note::\n\n   Nested:\n\n   .. code:: ini\n\n      [Service]\n\n"
        ".. code-block:: sh\n\n   pip install syncws\n\n"
        ".. code-block:: text\n\n   print('hi')\n\n"
        ".. code-block:: text\n\n   2026-01-01 INFO syncws.server server listening\n\n"
        ">>> 1 + 1\n2\n\n"
        f".. literalinclude:: {ROOT / 'setup.py'}\n"
    )
    found = list(rst_blocks(page))
    verdicts = [(block.line, block.kind, problem(block) is not None) for block in found]
    assert verdicts == [
        (4, "code", True),
        (8, "code", True),
        (17, "code", True),
        (21, "code", True),
        (25, "code", True),
        (29, "code", False),
        (33, "doctest", False),
        (36, "literalinclude", True),
    ]


def doctest_pages() -> list[Path]:
    return sorted({block.path for block in all_blocks() if block.kind == "doctest"})


@pytest.mark.parametrize("path", doctest_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_doctests_pass(path: Path) -> None:
    """Each page's ``>>>`` sessions give the output the page shows (run in order, as a
    reader would type them, in one namespace per page)."""
    examples = sum(
        block.text.count("\n>>> ") + 1 for block in rst_blocks(path) if block.kind == "doctest"
    )
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        result = doctest.testfile(str(path), module_relative=False, encoding="utf-8")
    assert result.failed == 0, output.getvalue()
    assert result.attempted == examples


# Commands.


def cli_parser(args: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser of ``syncws ARGS`` (the client, ``serve`` or ``run``) and its arguments,
    dispatched as :func:`syncws.cli.main` does."""
    if args[:1] == ["serve"]:
        return demo.build_parser(), args[1:]
    if args[:1] == ["run"]:
        return run.build_parser(), args[1:]
    return client.build_parser(), args


def check_cli(args: list[str]) -> list[str]:
    """Problems of ``syncws ARGS``: the CLI's parser must accept the arguments; a ``run``
    target must be a function of a module under examples/."""
    parser, rest = cli_parser(args)
    parser.allow_abbrev = False  # the docs spell options out: --work is not --workers
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            namespace = parser.parse_args(rest)
    except SystemExit as exc:
        return [] if exc.code == 0 else [f"syncws {' '.join(args)}: {errors.getvalue()}"]
    if args[:1] == ["run"]:
        module, _, function = namespace.target.partition(":")
        path = EXAMPLES / f"{module}.py"
        if not path.exists():
            return [f"syncws run {namespace.target}: no examples/{module}.py"]
        defined = {node.name for node in ast.parse(path.read_text()).body if hasattr(node, "name")}
        if function not in defined:
            return [f"syncws run {namespace.target}: examples/{module}.py has no {function}"]
    return []


def has_option(help_text: str, option: str) -> bool:
    """Whether ``option`` appears whole in ``help_text`` (``--no-cache`` is not
    ``--no-cache-dir``)."""
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text) is not None


@functools.cache
def pip_install_help() -> str:
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=12 * TIMEOUT,
    ).stdout


def extras() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["optional-dependencies"])


def check_pip(args: list[str]) -> list[str]:
    """Problems of ``pip ARGS``: pip's own options, and requirements that are syncws (or
    this checkout, ``.``) with extras it has, or a requirements file of this repository."""
    if args[:1] != ["install"]:
        return [f"pip {' '.join(args)}: only pip install is checked"]
    problems = []
    words = iter(args[1:])
    for word in words:
        if word in {"-r", "--requirement"}:
            requirements = next(words)
            if not (ROOT / requirements).is_file():
                problems.append(f"pip install -r {requirements}: no such file")
        elif word.startswith("-"):
            if not has_option(pip_install_help(), word):
                problems.append(f"pip install {word}: not an option of pip install")
        else:
            name, _, rest = word.partition("[")
            if name not in {"syncws", "."}:
                problems.append(f"pip install {word}: not syncws")
            unknown = set(filter(None, rest.rstrip("]").split(","))) - extras()
            if unknown:
                problems.append(f"pip install {word}: no extra {sorted(unknown)} in pyproject.toml")
    return problems


@functools.cache
def script_help(script: Path) -> str:
    return subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=12 * TIMEOUT,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout


def check_script(script: str, args: list[str]) -> list[str]:
    """Problems of ``python SCRIPT ARGS``: the script must be in this repository, and each
    option must be one it knows: in its ``--help`` when it uses argparse, else in the code of
    its directory (the fuzz targets take libFuzzer's ``-name=value`` options)."""
    path = ROOT / script
    if not path.is_file():
        return [f"python {script}: no such file in the repository"]
    options = [word.split("=")[0] for word in args if word.startswith("-")]
    if "argparse" in path.read_text():
        known = script_help(path)
        return [
            f"python {script} {o}: not in its --help" for o in options if not has_option(known, o)
        ]
    code = "\n".join(p.read_text() for p in path.parent.glob("*.py"))
    return [f"python {script} {o}: unknown to it" for o in options if o.lstrip("-") not in code]


@functools.cache
def c_parts_built() -> bool:
    return all(importlib.util.find_spec(m) for m in ("syncws._mask_cffi", "syncws.runtime._send"))


def check_python_c(code: str, environment: dict[str, str], output: list[str]) -> list[str]:
    """``python -c CODE``, run: it must succeed and print the output the page shows (which
    shows an installation with the C parts: without them, or with them switched off,
    ``cffi`` reads ``python``; importing them fails with ImportError when they were not
    built, as docs/install.rst says)."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=12 * TIMEOUT,
        cwd=ROOT,
        env={**os.environ, **environment},
    )
    if result.returncode != 0:
        if not c_parts_built() and "ImportError" in result.stderr:
            return []
        return [f"python -c {code!r} failed: {result.stderr.strip()}"]
    # What this process uses is what a command run in its environment prints.
    expected = [line.replace("cffi", syncws.MASK_IMPLEMENTATION) for line in output]
    if output and result.stdout.splitlines() != expected:
        return [f"python -c {code!r} printed {result.stdout!r}, the page shows {output}"]
    return []


def check_python(args: list[str], environment: dict[str, str], command: Command) -> list[str]:
    if args[:2] == ["-m", "syncws"]:
        return check_cli(args[2:])
    if args[:2] == ["-m", "pip"]:
        return check_pip(args[2:])
    if args[:2] in (["-m", "venv"], ["-m", "pytest"]):
        return []
    if args[:1] == ["-c"]:
        return check_python_c(args[1], environment, command.output)
    if args and not args[0].startswith("-"):
        return check_script(args[0], args[1:])
    return [f"python {' '.join(args)}: not checked"]


def check_environment(names: list[str], program: list[str]) -> list[str]:
    """Variables set for a command must be read by syncws, by the script the command runs,
    or by someone named in EXTERNAL_ENVIRONMENT."""
    sources = "\n".join(p.read_text() for p in (ROOT / "syncws").rglob("*.py"))
    scripts = [ROOT / word for word in program if word.endswith(".py")]
    sources += "\n".join(p.read_text() for p in scripts if p.is_file())
    return [
        f"{name}: read by neither syncws nor {' '.join(program)}"
        for name in names
        if name not in EXTERNAL_ENVIRONMENT and name.lower() not in sources.lower()
    ]


def check_command(command: Command) -> list[str]:
    problems = []
    for argv in command.pipeline():
        environment = {}
        while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
            name, _, value = argv.pop(0).partition("=")
            environment[name] = value
        if argv[:1] == ["nice"]:
            argv = argv[3:] if argv[1:2] == ["-n"] else argv[1:]
        program = Path(argv[0]).name if argv else ""
        problems += check_environment(list(environment), argv)
        if program in {"python", "python3"}:
            problems += check_python(argv[1:], environment, command)
        elif program == "pip":
            problems += check_pip(argv[1:])
        elif program == "syncws":
            problems += check_cli(argv[1:])
        elif program == "export":
            names = [word.partition("=")[0] for word in argv[1:]]
            problems += check_environment(names, [])
        elif program not in EXTERNAL:
            problems.append(f"{program}: a program no test checks (see EXTERNAL)")
    return [f"{command.block.where}: $ {command.text}: {p}" for p in problems]


def shown_commands() -> list[Command]:
    commands = []
    for block in all_blocks():
        if block.kind == "code" and block.language == "console":
            commands += console_commands(block)
        elif block.path == README and block.language == "sh":
            commands += script_commands(block)
    return commands


def test_console_commands_exist() -> None:
    """Every command of docs/ and README.md names programs, options, extras and files that
    exist; ``python -c`` commands run and print what the page shows."""
    commands = shown_commands()
    assert len(commands) > 40
    problems = [problem for command in commands for problem in check_command(command)]
    assert problems == []


def test_the_command_checker_catches_what_does_not_exist() -> None:
    """Misspelt options, extras, scripts, run targets, environment variables and programs
    are all reported."""
    page = Block(DOCS / "x.rst", 1, "code", "console", "")
    bad = [
        "python -m syncws --no-such-option ws://localhost:8765/",
        "syncws serve --workers 2",
        "python -m syncws run app:nothing",
        "python -m syncws run nowhere:echo",
        "pip install 'syncws[nosuchextra]'",
        "pip install --no-such-flag syncws",
        "pip install --no-cache syncws",
        "python -m syncws run handlers:echo --work 2",
        "python tests/soak/run.py --dur 60",
        "python examples/no_such_example.py",
        "python tests/soak/run.py --no-such-option",
        "python tests/fuzz/fuzz_request.py -no_such_option=1",
        "NO_SUCH_VARIABLE=1 python -c 'pass'",
        "python -c 'import no_such_module'",
        "python -c 'print(1)'\n2",
        "make docs",
    ]
    for text in bad:
        line, *output = text.split("\n")
        assert check_command(Command(page, line, output)), text
    good = Command(page, "SYNCWS_NO_SPEEDUPS=1 python -c 'import syncws; print(1)'", ["1"])
    assert check_command(good) == []


def test_synopses_name_existing_options() -> None:
    """The usage lines of docs/reference/cli.rst (``syncws [options] URI``...) name options
    that the parsers have."""
    synopses = [
        block
        for block in all_blocks()
        if block.kind == "code" and block.language == "text" and block.text.startswith("syncws ")
    ]
    assert len(synopses) == 3
    for block in synopses:
        parser, _ = cli_parser(block.text.split()[1:2])
        known = {option for action in parser._actions for option in action.option_strings}
        named = set(re.findall(r"--[a-z-]+", block.text))
        assert named <= known, block.where


# Links and the table of contents.


def test_links_to_the_hosted_docs_name_existing_pages() -> None:
    """The README's and the package metadata's links into the documentation (Install,
    Changelog) point to pages that exist."""
    texts = README.read_text() + (ROOT / "pyproject.toml").read_text()
    pages = re.findall(r"https://syncws\.readthedocs\.io/en/latest/([\w/]+)\.html", texts)
    assert "install" in pages
    assert [page for page in pages if not (DOCS / f"{page}.rst").is_file()] == []


def toctrees() -> dict[Path, list[str]]:
    """Each page's toctree entries, as document names relative to docs/."""
    trees: dict[Path, list[str]] = {}
    for path in sorted(DOCS.rglob("*.rst")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() == ".. toctree::":
                for entry in lines[i + 1 :]:
                    if entry.strip() and not entry.startswith("   "):
                        break
                    name = entry.strip()
                    if name and not name.startswith(":"):
                        document = (path.parent / name).relative_to(DOCS).as_posix()
                        trees.setdefault(path, []).append(document)
    return trees


def test_every_page_is_in_the_table_of_contents_once() -> None:
    """The sidebar lists every page once: each page but the root is in exactly one
    toctree, and no toctree has a caption (the root's sections are the pages themselves)."""
    entries = Counter(entry for tree in toctrees().values() for entry in tree)
    pages = {p.relative_to(DOCS).with_suffix("").as_posix() for p in DOCS.rglob("*.rst")}
    assert set(entries) == pages - {"index"}
    assert [entry for entry, count in entries.items() if count > 1] == []
    captions = [p for p in DOCS.rglob("*.rst") if ":caption:" in p.read_text()]
    assert captions == []
