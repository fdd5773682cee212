"""The examples in syncws's docstrings, which the API reference renders, use the API as it
is.

A docstring example is not a program a test can run (it uses names of your application:
``handler``, ``app``), so each one is checked for what drifts: every name it takes from
syncws must exist, and every call of a syncws function, class or method must fit its
signature (the number of positional arguments, the keyword names). ``>>>`` examples run as
doctests, and the exception hierarchy drawn in :mod:`syncws.exceptions` must be the real
one. tests/test_docs.py checks the pages themselves.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import pkgutil
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from doc_blocks import ROOT, Block, rst_blocks

import syncws
import syncws.exceptions

#: Modules without docstring examples that cannot be imported everywhere.
SKIP = {"syncws._mask_build", "syncws._mask_cffi", "syncws.runtime._send", "syncws.__main__"}


def modules() -> list[ModuleType]:
    names = [m.name for m in pkgutil.walk_packages(syncws.__path__, "syncws.")]
    return [importlib.import_module(name) for name in ["syncws", *names] if name not in SKIP]


def docstring_blocks(module: ModuleType) -> Iterator[Block]:
    """The literal blocks of every docstring of ``module``'s source (module, classes,
    functions, methods)."""
    path = Path(module.__file__ or "")
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node)  # cleaned: indentation removed
            if docstring and node.body:
                first_line = node.body[0].lineno  # the line of the opening quotes
                yield from rst_blocks(path, docstring, first_line)


def python_examples() -> list[tuple[ModuleType, Block]]:
    examples = []
    for module in modules():
        for block in docstring_blocks(module):
            if block.kind == "code":
                try:
                    ast.parse(block.text)
                except SyntaxError:
                    continue  # not Python: the exception tree, a grammar
                examples.append((module, block))
    return examples


class Instance:
    """What a call of a class returns, for resolving the methods called on it."""

    def __init__(self, cls: type) -> None:
        self.cls = cls


UNKNOWN = object()  # a name of the reader's (``handler``, ``app``): nothing to check


def forwards() -> dict[object, object]:
    """The callables whose ``**options`` are another one's keyword arguments, as their
    docstrings say."""
    from syncws.integrations.flask import Sock
    from syncws.integrations.sidecar import Sidecar
    from syncws.integrations.wsgi import Upgrader, WebSocketApp

    return {
        syncws.serve: syncws.Server,
        syncws.route: syncws.Server,
        Sidecar: syncws.Server,
        WebSocketApp: Upgrader,
        Sock: Upgrader,
        syncws.reconnect: syncws.connect,
    }


class Checker(ast.NodeVisitor):
    """Resolves the names an example takes from syncws, and checks its calls of them."""

    def __init__(self, namespace: dict[str, object]) -> None:
        self.namespace = dict(namespace)
        self.problems: list[str] = []

    def resolve(self, node: ast.expr) -> object:
        if isinstance(node, ast.Name):
            return self.namespace.get(node.id, UNKNOWN)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            if base is UNKNOWN:
                return UNKNOWN
            if isinstance(base, Instance):  # attributes set in __init__ are not on the class
                return getattr(base.cls, node.attr, UNKNOWN)
            if not hasattr(base, node.attr):
                self.problems.append(f"{ast.unparse(node)}: no such attribute")
                return UNKNOWN
            return getattr(base, node.attr)
        if isinstance(node, ast.Call):
            return self.call(node)
        return UNKNOWN

    def call(self, node: ast.Call) -> object:
        for argument in [*node.args, *(k.value for k in node.keywords)]:
            self.visit(argument)  # calls nested in the arguments
        if isinstance(node.func, ast.Attribute):
            base = self.resolve(node.func.value)
            if isinstance(base, Instance) and not hasattr(base.cls, node.func.attr):
                self.problems.append(f"{ast.unparse(node.func)}: no such method")
                return UNKNOWN
        function = self.resolve(node.func)
        if function is UNKNOWN or not callable(function):
            return UNKNOWN
        positional = [None] * sum(not isinstance(a, ast.Starred) for a in node.args)
        keywords = {k.arg: None for k in node.keywords if k.arg is not None}
        is_method = isinstance(node.func, ast.Attribute) and isinstance(
            self.resolve(node.func.value), Instance
        )
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return UNKNOWN
        try:
            signature.bind_partial(*([None] if is_method else []), *positional, **keywords)
        except TypeError as exc:
            self.problems.append(f"{ast.unparse(node)}: {exc}")
        target = forwards().get(function)
        if target is not None:  # **options: they must be the target's
            options = set(keywords) - set(signature.parameters)
            unknown = options - set(inspect.signature(target).parameters)  # type: ignore[arg-type]
            if unknown:
                self.problems.append(f"{ast.unparse(node)}: no option {sorted(unknown)}")
        if isinstance(function, type):
            return Instance(function)
        try:
            returned = typing.get_type_hints(function).get("return")
        except Exception:  # an annotation that does not evaluate here
            return UNKNOWN
        return Instance(returned) if isinstance(returned, type) else UNKNOWN

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            module = importlib.import_module(alias.name)
            self.namespace[alias.asname or alias.name.partition(".")[0]] = (
                module if alias.asname else importlib.import_module(alias.name.partition(".")[0])
            )

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = importlib.import_module(node.module or "")
        for alias in node.names:
            if not hasattr(module, alias.name):
                self.problems.append(f"from {node.module} import {alias.name}: no such name")
            self.namespace[alias.asname or alias.name] = getattr(module, alias.name, UNKNOWN)

    def visit_Assign(self, node: ast.Assign) -> None:
        value = self.resolve(node.value)
        for target in node.targets:
            if isinstance(target, ast.Name):
                self.namespace[target.id] = value

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        for name in [a.arg for a in node.args.args] + [node.name]:
            self.namespace[name] = UNKNOWN  # the reader's names shadow syncws's
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        self.call(node)


EXAMPLES = python_examples()


def test_docstrings_have_examples_to_check() -> None:
    """The collection finds the docstring examples (so that the test below checks some)."""
    assert len(EXAMPLES) >= 9


@pytest.mark.parametrize(("module", "block"), EXAMPLES, ids=[block.where for _, block in EXAMPLES])
def test_docstring_example_uses_the_api_as_it_is(module: ModuleType, block: Block) -> None:
    """Every syncws name the example uses exists; every call of syncws fits its signature."""
    checker = Checker({**vars(module), "syncws": syncws})
    checker.visit(ast.parse(block.text))
    assert checker.problems == []


def test_the_checker_catches_a_drifted_example() -> None:
    """A renamed function, an unknown keyword, too many positional arguments, a method that
    does not exist, an import of a name that is gone: all reported."""
    drifted = [
        "syncws.serve_forever(echo)",
        'syncws.serve(echo, "localhost", 8765, no_such_option=1)',
        'syncws.connect("ws://localhost/", 1, 2, 3)',
        'syncws.reconnect("ws://localhost/", no_such_option=1)',
        'server = syncws.Server(echo, "localhost", 8765)\nserver.no_such_method()',
        'server = syncws.Server(echo, "localhost", 8765)\nserver.shutdown(no_such=1)',
        "from syncws.integrations.wsgi import NoSuchApp",
        'server = syncws.Server(echo, process_request=syncws.basic_auth(("a", "b"), 1, 2))',
    ]
    for text in drifted:
        checker = Checker({"syncws": syncws})
        checker.visit(ast.parse(text))
        assert checker.problems, text
    fine = Checker({"syncws": syncws})
    fine.visit(ast.parse('with syncws.connect("ws://localhost/", open_timeout=5) as ws:\n    pass'))
    assert fine.problems == []


@pytest.mark.parametrize("module", modules(), ids=lambda m: m.__name__)
def test_docstring_doctests_pass(module: ModuleType) -> None:
    """``>>>`` examples in docstrings give the output they show."""
    result = doctest.testmod(module, report=False)
    assert result.failed == 0


def test_the_exception_tree_is_the_real_hierarchy() -> None:
    """The tree drawn in the docstring of syncws.exceptions: each name is an exception of
    the module, whose direct base is the name it hangs from, and none is missing."""
    path = ROOT / "syncws" / "exceptions.py"
    [tree] = [
        block.text
        for block in rst_blocks(path, syncws.exceptions.__doc__ or "")
        if block.text.startswith("WebSocketException")
    ]
    parents: list[str] = []
    drawn = set()
    for line in tree.splitlines():
        name = line.lstrip("│├└─ ").split()[0]
        depth = (len(line) - len(line.lstrip("│├└─ "))) // 4
        del parents[depth:]
        cls = getattr(syncws.exceptions, name)
        if parents:
            assert getattr(syncws.exceptions, parents[-1]) in cls.__bases__, line
        parents.append(name)
        drawn.add(name)
    public = {
        name
        for name, value in vars(syncws.exceptions).items()
        if isinstance(value, type)
        and issubclass(value, syncws.exceptions.WebSocketException)
        and not name.startswith("_")
    }
    assert drawn == public
