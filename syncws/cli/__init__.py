"""The command line: ``python -m syncws URI`` (the client), ``python -m syncws serve`` (the
demo server) and ``python -m syncws run MODULE:HANDLER`` (the worker runner).

Installed as the ``syncws`` console script. :func:`main` is the entry point of all; it
returns the exit status instead of exiting, so that it can be called from Python.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` by default).

    Returns:
        The exit status: 0 after a normal closure (or a clean demo server shutdown), 1 when
        the connection fails or closes abnormally, 2 for usage errors.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["serve"]:
            from .demo import main as demo_main

            return demo_main(args[1:])
        if args[:1] == ["run"]:
            from .run import main as run_main

            return run_main(args[1:])
        from .client import main as client_main

        return client_main(args)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
