"""Build the sdist and the wheel, check them, and try the wheel as a user would.

    python tests/packaging/check_dist.py [--python PYTHON ...]

Run by CI (``.ci/run``), not by pytest: it builds twice and creates fresh virtual
environments, which takes a minute or more and needs PyPI (for the build requirements and
cffi). It needs ``build`` and ``twine`` in the running interpreter (the ``dev`` extra).

1. ``python -m build``: the sdist, then a wheel built from that sdist.
2. ``twine check --strict`` on both (the metadata and the README render on PyPI).
3. The sdist holds every file of the checkout that the tests and the docs need (every
   tracked file, when this is a git checkout, but .ci/ and .gitignore) and no build output.
4. The wheel is tagged ``cp311-abi3-<platform>``, holds LICENSE and both compiled modules.
5. For this interpreter and each ``--python``: a fresh venv, ``pip install`` of the wheel
   alone, then an echo round trip (text, and binary large enough for the C masking paths)
   from outside the checkout, once with the C parts (``MASK_IMPLEMENTATION == "cffi"``, the
   GIL-holding send loaded) and once with ``SYNCWS_NO_SPEEDUPS=1`` (pure Python).
6. A wheel built from the sdist without a compiler (``CC=false``): it builds with warnings,
   holds no compiled module, installs, and the round trip passes in pure Python.

Exits with status 1 and a message at the first failure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Paths of the checkout that the sdist leaves out on purpose: CI configuration and git's.
NOT_IN_SDIST = (".ci/", ".gitignore")

# Never in the sdist: build output and local state (MANIFEST.in excludes them).
ARTEFACT_SUFFIXES = (".so", ".pyd", ".o", ".pyc")
ARTEFACT_DIRS = {"__pycache__", "_build", "build", "dist", ".venv", ".hypothesis"}

# Run in the fresh venv, from a directory outside the checkout. argv[1] is the expected
# implementation: "cffi" (and the C send loaded) or "python" (and socket.send()).
ROUND_TRIP = textwrap.dedent(
    """
    import os, sys
    import syncws
    from syncws.runtime import transport

    expected = sys.argv[1]
    assert not syncws.__file__.startswith(sys.argv[2]), f"from the checkout: {syncws.__file__}"
    assert syncws.MASK_IMPLEMENTATION == expected, syncws.MASK_IMPLEMENTATION
    has_send = transport._send_holding_gil is not None
    assert has_send == (expected == "cffi"), f"C send loaded: {has_send}"

    def echo(ws):
        for message in ws:
            ws.send(message)

    server = syncws.Server(echo, "127.0.0.1", 0).start()
    try:
        with syncws.connect(f"ws://127.0.0.1:{server.port}/", open_timeout=10) as ws:
            for message in ["Hello", os.urandom(200), os.urandom(1 << 16)]:
                ws.send(message)
                assert ws.recv(timeout=10) == message
    finally:
        server.shutdown(timeout=5)
    print(f"  ok: Python {sys.version.split()[0]}: masking {expected}, C send {has_send}")
    """
)


class CheckFailed(Exception):
    """A check failed; the message says which and why."""


def run(
    args: list[str | Path], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command, echoing it; raise CheckFailed with its output if it fails."""
    print("$", " ".join(str(a) for a in args), flush=True)
    result = subprocess.run(
        [str(a) for a in args],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
        env=env,
        cwd=cwd,
    )
    if result.returncode:
        raise CheckFailed(f"exit status {result.returncode}:\n{result.stdout}")
    return result


def build(outdir: Path) -> tuple[Path, Path]:
    """Build the sdist and, from it, the wheel; return their paths."""
    run([sys.executable, "-m", "build", "--outdir", outdir, ROOT])
    (sdist,) = outdir.glob("syncws-*.tar.gz")
    (wheel,) = outdir.glob("syncws-*.whl")
    run([sys.executable, "-m", "twine", "check", "--strict", sdist, wheel])
    return sdist, wheel


def tracked_files() -> list[str] | None:
    """The files of the git checkout, or None if this is not one (e.g. an unpacked sdist)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.splitlines()


def check_sdist(sdist: Path) -> None:
    """The sdist has what the tests and the docs need, and no build output."""
    with tarfile.open(sdist) as tar:
        top, *_ = tar.getnames()
        names = {name.partition("/")[2] for name in tar.getnames()}
    required = {"LICENSE", "MANIFEST.in", "tests/conftest.py", "tests/rawws.py"}
    tracked = tracked_files()
    if tracked is None:
        print("  (not a git checkout: checking a few files only)")
    else:
        required.update(f for f in tracked if not f.startswith(NOT_IN_SDIST))
    missing = sorted(required - names)
    if missing:
        raise CheckFailed(f"{sdist.name} lacks {len(missing)} files: {missing[:20]}")
    artefacts = sorted(
        n for n in names if n.endswith(ARTEFACT_SUFFIXES) or ARTEFACT_DIRS & set(n.split("/"))
    )
    if artefacts:
        raise CheckFailed(f"{sdist.name} holds build output: {artefacts[:20]}")
    print(f"  ok: {sdist.name}, {len(names)} entries under {top}/")


def abi3() -> bool:
    """Whether setup.py tags the wheel cp311-abi3 on this interpreter (see _wheel_options)."""
    return (
        sys.implementation.name == "cpython"
        and not hasattr(sys, "gettotalrefcount")
        and not (sysconfig.get_config_var("Py_GIL_DISABLED") and sys.version_info < (3, 15))
    )


def check_wheel(wheel: Path, compiled: bool) -> None:
    """The wheel's tag, its LICENSE, and its compiled modules (all or none)."""
    if abi3() and "-cp311-abi3-" not in wheel.name:
        raise CheckFailed(f"{wheel.name} is not tagged cp311-abi3")
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        raise CheckFailed(f"{wheel.name} lacks LICENSE")
    modules = sorted(n for n in names if n.endswith((".so", ".pyd")))
    if compiled and len(modules) != 2:
        raise CheckFailed(f"{wheel.name}: expected 2 compiled modules, found {modules}")
    if not compiled and modules:
        raise CheckFailed(f"{wheel.name} was built without a compiler but holds {modules}")
    print(f"  ok: {wheel.name}, compiled modules: {modules or 'none'}")


def try_wheel(wheel: Path, python: str, work: Path, compiled: bool) -> None:
    """Install the wheel in a fresh venv of ``python``; run the round trip both ways."""
    env_dir = Path(tempfile.mkdtemp(prefix="venv-", dir=work))
    run([python, "-m", "venv", env_dir])
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SYNCWS_NO_SPEEDUPS")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    run([bin_dir / "python", "-m", "pip", "install", "-q", wheel], env=env)
    script = work / "round_trip.py"
    script.write_text(ROUND_TRIP)
    checks: list[tuple[str, dict[str, str]]] = [
        ("cffi" if compiled else "python", {}),
        ("python", {"SYNCWS_NO_SPEEDUPS": "1"}),
    ]
    for expected, extra in checks:
        result = run(
            [bin_dir / "python", script, expected, str(ROOT)], env={**env, **extra}, cwd=work
        )
        print(result.stdout, end="")


def build_without_compiler(sdist: Path, work: Path) -> Path:
    """Build a wheel from the unpacked sdist with a compiler that always fails."""
    source = work / "no-compiler"
    with tarfile.open(sdist) as tar:
        tar.extractall(source, filter="data")
    (unpacked,) = source.iterdir()
    outdir = work / "no-compiler-dist"
    env = {**os.environ, "CC": "false"}
    result = run([sys.executable, "-m", "build", "--wheel", "--outdir", outdir, unpacked], env=env)
    if "WARNING: could not compile" not in result.stdout:
        raise CheckFailed(f"no warning about the failed compilation:\n{result.stdout}")
    (wheel,) = outdir.glob("syncws-*.whl")
    return wheel


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="PYTHON",
        help="another interpreter to install the wheel for (repeatable)",
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="syncws-dist-") as tmp:
        work = Path(tmp)
        outdir = work / "dist"
        try:
            print("== build, twine check")
            sdist, wheel = build(outdir)
            print("== sdist contents")
            check_sdist(sdist)
            print("== wheel")
            check_wheel(wheel, compiled=True)
            for python in [sys.executable, *options.python]:
                print(f"== the wheel in a fresh venv of {python}")
                try_wheel(wheel, python, work, compiled=True)
            print("== a wheel built without a compiler")
            plain = build_without_compiler(sdist, work)
            check_wheel(plain, compiled=False)
            try_wheel(plain, sys.executable, work, compiled=False)
        except CheckFailed as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1
    print("dist checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
