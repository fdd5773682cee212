#!/usr/bin/env python3
"""Run the Autobahn|Testsuite against syncws, as a server and as a client.

Usage (from the repository root)::

    python compliance/run.py --role both            # all cases, ~10 minutes per role
    python compliance/run.py --role server --cases '1.*,2.*,3.*,4.*,5.*,6.*,7.*,10.*'
    python compliance/run.py --install-only

The Autobahn|Testsuite (``wstest``) needs Python 2.7: this script finds it with pyenv (or
``$WSTEST_PYTHON``) and installs ``autobahntestsuite`` into ``compliance/_autobahn/``, a
private folder. Reports go to ``compliance/reports/`` (both folders are gitignored).

A full run (every case of the role, the default ``--cases``) records its summary in
``compliance/results.json`` and regenerates ``compliance/RESULTS.md`` and
``docs/topics/conformance_results.rst`` from it; a run on a subset of the cases only prints
its summary, unless ``--write`` is given.

Exits with status 1 if any case is not OK other than the three explained in README.md
(:data:`EXPECTED_NOT_OK`), or if wstest did not finish: a new NON-STRICT is a regression.

Standard library and syncws only.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import glob
import json
import logging
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import syncws  # noqa: E402

AUTOBAHN_DIR = HERE / "_autobahn"
REPORTS_DIR = HERE / "reports"
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "RESULTS.md"
# Included by docs/topics/conformance.rst; not a .rst, so that Sphinx does not build it alone.
RESULTS_RST = ROOT / "docs" / "topics" / "conformance_results.inc"

AGENT = "syncws"
MAX_SIZE = 16 * 2**20
BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
#: The cases that are not OK by design, each explained in compliance/README.md. Any other
#: case that is not OK is a regression and makes the run fail.
EXPECTED_NOT_OK = frozenset({"7.1.6", "7.13.1", "7.13.2"})
# The fast subset suggested for CI: everything but the slow limits (9.*) and the compression
# cases (12.*, 13.*).
CI_CASES = "1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.1.*,10.*,12.1.*"


# Installing wstest.


def find_python2() -> str:
    """The Python 2.7 interpreter for wstest: ``$WSTEST_PYTHON``, else pyenv's 2.7.x."""
    env = os.environ.get("WSTEST_PYTHON")
    if env:
        return env
    roots = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.strip():
                roots.append(out.stdout.strip())
    roots.append(os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv")))
    for root in roots:
        candidates = sorted(glob.glob(os.path.join(root, "versions", "2.7*", "bin", "python")))
        if candidates:
            return candidates[-1]
    raise SystemExit(
        "Python 2.7 not found: install it with pyenv (pyenv install 2.7.18) "
        "or set WSTEST_PYTHON to a python2.7 interpreter"
    )


def install(python2: str) -> None:
    """Install autobahntestsuite into compliance/_autobahn/ unless it is already there."""
    marker = AUTOBAHN_DIR / ".installed"
    if marker.exists():
        return
    print(f"Installing autobahntestsuite into {AUTOBAHN_DIR} with {python2} ...", flush=True)
    started = time.monotonic()
    AUTOBAHN_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            python2,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(AUTOBAHN_DIR),
            "autobahntestsuite",
        ],
        check=True,
        timeout=900,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")},
    )
    # zope is a namespace package, not importable from a --target install without this.
    (AUTOBAHN_DIR / "zope" / "__init__.py").touch()
    marker.write_text(python2 + "\n")
    print(f"Installed in {time.monotonic() - started:.0f} s.", flush=True)


def wstest_command(python2: str, mode: str, spec: Path) -> list[str]:
    command = [python2, "-m", "autobahntestsuite.wstest", "-m", mode, "-s", str(spec)]
    if mode == "fuzzingserver":
        command += ["-u", "0"]  # no web server for the reports
    return command


def wstest_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(AUTOBAHN_DIR)
    env.pop("PYTHONHOME", None)
    return env


def wstest_version(python2: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [python2, "-c", "import autobahntestsuite; print(autobahntestsuite.__version__)"],
            env=wstest_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if out.returncode == 0:
            return out.stdout.strip()
    return "unknown"


# The testees.


def echo(ws: syncws.ServerConnection | syncws.ClientConnection) -> None:
    """Echo every message until the connection closes."""
    try:
        for message in ws:
            ws.send(message)
    except syncws.ConnectionClosed:
        pass


def options() -> dict[str, Any]:
    return {"max_size": MAX_SIZE, "ping_interval": None, "compression": "deflate"}


@contextlib.contextmanager
def echo_server() -> Iterator[syncws.Server]:
    """The syncws echo server, serving in a background thread."""
    server = syncws.Server(echo, "127.0.0.1", 0, **options())
    server.start()
    try:
        yield server
    finally:
        server.shutdown(timeout=5)


def run_client(url: str, deadline: float) -> None:
    """The client side of fuzzingserver mode: run every case, then update the reports."""
    with syncws.connect(f"{url}/getCaseCount", ping_interval=None) as ws:
        count = int(ws.recv(timeout=30))
    print(f"fuzzingserver has {count} cases", flush=True)
    for case in range(1, count + 1):
        if time.monotonic() > deadline:
            raise TimeoutError("client role timed out")
        try:
            ws = syncws.connect(
                f"{url}/runCase?case={case}&agent={AGENT}", open_timeout=30, **options()
            )
        except (OSError, syncws.WebSocketException) as exc:
            print(f"case {case}: connection failed: {exc!r}", flush=True)
            continue
        with contextlib.suppress(syncws.ConnectionClosed, OSError):
            echo(ws)
            ws.close()
        if case % 50 == 0:
            print(f"... {case}/{count}", flush=True)
    with syncws.connect(f"{url}/updateReports?agent={AGENT}", ping_interval=None) as ws:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"wstest exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise TimeoutError(f"wstest is not listening on port {port}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Running a role.


def run_role(
    role: str, cases: list[str], exclude: list[str], python2: str, timeout: float
) -> dict[str, Any]:
    REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    outdir = Path(tempfile.mkdtemp(prefix=f"{role}-", dir=REPORTS_DIR))
    spec_path = outdir / "spec.json"
    log_path = outdir / "wstest.log"
    spec: dict[str, Any] = {
        "outdir": str(outdir),
        "cases": cases,
        "exclude-cases": exclude,
        "exclude-agent-cases": {},
    }
    print(
        f"\n== {role} role: cases {','.join(cases)}"
        + (f" (excluding {','.join(exclude)})" if exclude else "")
        + f"; reports in {outdir.relative_to(ROOT)}",
        flush=True,
    )
    started = time.monotonic()
    own_cpu, wstest_cpu = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    with open(log_path, "wb") as log:
        if role == "server":
            with echo_server() as server:
                spec["servers"] = [{"agent": AGENT, "url": f"ws://127.0.0.1:{server.port}"}]
                spec_path.write_text(json.dumps(spec, indent=2))
                process = subprocess.Popen(
                    wstest_command(python2, "fuzzingclient", spec_path),
                    env=wstest_env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=outdir,
                )
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    stop(process)
                    raise SystemExit(
                        f"wstest timed out after {timeout} s; see {log_path}"
                    ) from None
        else:
            port = free_port()
            url = f"ws://127.0.0.1:{port}"
            spec["url"] = url
            spec_path.write_text(json.dumps(spec, indent=2))
            process = subprocess.Popen(
                wstest_command(python2, "fuzzingserver", spec_path),
                env=wstest_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=outdir,
            )
            try:
                wait_for_port(port, process, 60)
                run_client(url, time.monotonic() + timeout)
            finally:
                stop(process)
    duration = time.monotonic() - started
    cpu = {
        "syncws": round(_cpu(resource.RUSAGE_SELF) - own_cpu, 1),
        "wstest": round(_cpu(resource.RUSAGE_CHILDREN) - wstest_cpu, 1),
    }
    index_path = outdir / "index.json"
    if not index_path.exists():
        raise SystemExit(f"wstest wrote no {index_path}; see {log_path}")
    index = json.loads(index_path.read_text())
    results = index.get(AGENT, {})
    summary = summarize(role, cases, exclude, results, outdir, duration)
    summary["cpu"] = cpu
    return summary


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def case_key(case: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case.split("."))


def summarize(
    role: str,
    cases: list[str],
    exclude: list[str],
    results: dict[str, Any],
    outdir: Path,
    duration: float,
) -> dict[str, Any]:
    counts = dict.fromkeys(BEHAVIORS, 0)
    not_ok = []
    for case in sorted(results, key=case_key):
        result = results[case]
        behavior = result["behavior"]
        counts[behavior] = counts.get(behavior, 0) + 1
        close_behavior = result.get("behaviorClose", "")
        if behavior != "OK" or close_behavior not in ("OK", "INFORMATIONAL"):
            detail = {}
            report = outdir / result.get("reportfile", "")
            if report.is_file():
                with contextlib.suppress(ValueError, OSError):
                    detail = json.loads(report.read_text())
            not_ok.append(
                {
                    "case": case,
                    "behavior": behavior,
                    "behaviorClose": close_behavior,
                    "remoteCloseCode": result.get("remoteCloseCode"),
                    "description": _one_line(detail.get("description", "")),
                    "result": _one_line(detail.get("result", "")),
                }
            )
    return {
        "role": role,
        "cases": cases,
        "exclude": exclude,
        "total": len(results),
        "counts": counts,
        "not_ok": not_ok,
        "duration": round(duration),
        "date": datetime.date.today().isoformat(),
        "syncws": syncws.__version__,
        "compression": True,
    }


def _one_line(text: str) -> str:
    text = re.sub(r"<[^>]+>", "", str(text))
    return " ".join(text.split())


def print_summary(summary: dict[str, Any]) -> None:
    counts = summary["counts"]
    cpu = summary.get("cpu", {})
    print(
        f"\n{summary['role']}: {summary['total']} cases in {summary['duration']} s "
        f"(CPU: syncws {cpu.get('syncws')} s, wstest {cpu.get('wstest')} s)"
    )
    for behavior in BEHAVIORS:
        print(f"  {behavior:<14}{counts.get(behavior, 0):>5}")
    if summary["not_ok"]:
        print("  not OK:")
        for item in summary["not_ok"]:
            print(
                f"    {item['case']:<10}{item['behavior']:<14}close {item['behaviorClose']:<14}"
                f"{item['result'][:90]}"
            )
    sys.stdout.flush()


# Writing the results.


def write_results(summaries: dict[str, dict[str, Any]], wstest: str) -> None:
    stored: dict[str, Any] = {}
    if RESULTS_JSON.exists():
        stored = json.loads(RESULTS_JSON.read_text())
    stored.setdefault("roles", {}).update(summaries)
    stored["wstest"] = wstest
    RESULTS_JSON.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    roles = [stored["roles"][r] for r in ("server", "client") if r in stored["roles"]]
    RESULTS_MD.write_text(render_markdown(roles, wstest))
    RESULTS_RST.write_text(render_rst(roles, wstest))
    print(
        f"\nWrote {RESULTS_JSON.relative_to(ROOT)}, {RESULTS_MD.relative_to(ROOT)} and "
        f"{RESULTS_RST.relative_to(ROOT)}."
    )


def _scope(summary: dict[str, Any]) -> str:
    scope = "all" if summary["cases"] == ["*"] else ", ".join(summary["cases"])
    if summary["exclude"]:
        scope += " except " + ", ".join(summary["exclude"])
    return scope


def _timing(summary: dict[str, Any]) -> str:
    text = f"{summary['duration']} s"
    cpu = summary.get("cpu")
    if cpu:
        text += f", CPU time: syncws {cpu['syncws']} s, wstest {cpu['wstest']} s"
    return text


def render_markdown(roles: list[dict[str, Any]], wstest: str) -> str:
    lines = [
        "# Autobahn|Testsuite results",
        "",
        "Generated by `python compliance/run.py` (do not edit by hand); "
        f"Autobahn|Testsuite {wstest}. Why each case is not OK: [README.md](README.md).",
        "",
        "| role | cases | " + " | ".join(BEHAVIORS) + " | run on |",
        "|---|---|" + "---|" * len(BEHAVIORS) + "---|",
    ]
    for s in roles:
        counts = " | ".join(str(s["counts"].get(b, 0)) for b in BEHAVIORS)
        lines.append(f"| {s['role']} | {s['total']} | {counts} | {s['date']} |")
    for s in roles:
        lines += [
            "",
            f"## {s['role'].capitalize()}",
            "",
            f"Cases run: {_scope(s)} ({s['total']} cases, {_timing(s)}); "
            f"syncws {s['syncws']}, permessage-deflate "
            f"{'enabled' if s['compression'] else 'not available'}.",
            "",
        ]
        if not s["not_ok"]:
            lines.append("Every case is OK.")
            continue
        lines += [
            "| case | behavior | close behavior | close code sent by syncws | result |",
            "|---|---|---|---|---|",
        ]
        for item in s["not_ok"]:
            result = item["result"].replace("|", "\\|")
            lines.append(
                f"| {item['case']} | {item['behavior']} | {item['behaviorClose']} | "
                f"{item['remoteCloseCode']} | {result} |"
            )
    return "\n".join(lines) + "\n"


def render_rst(roles: list[dict[str, Any]], wstest: str) -> str:
    lines = [
        ".. Generated by compliance/run.py from compliance/results.json: do not edit.",
        "",
        f"Autobahn|Testsuite {wstest}.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - Role",
        "     - Cases",
    ]
    lines += [f"     - {b}" for b in BEHAVIORS]
    lines.append("     - Run on")
    for s in roles:
        lines += [f"   * - {s['role']}", f"     - {s['total']}"]
        lines += [f"     - {s['counts'].get(b, 0)}" for b in BEHAVIORS]
        lines.append(f"     - {s['date']}")
    for s in roles:
        title = f"{s['role'].capitalize()} role"
        scope = _scope(s).replace("*", "\\*")
        lines += [
            "",
            title,
            "~" * len(title),
            "",
            f"Cases run: {scope} ({s['total']} cases, "
            f"{_timing(s)}); permessage-deflate "
            f"{'enabled' if s['compression'] else 'not available'}.",
            "",
        ]
        if not s["not_ok"]:
            lines.append("Every case is OK.")
            continue
        lines += [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 10 15 15 10 50",
            "",
            "   * - Case",
            "     - Behavior",
            "     - Close behavior",
            "     - Close code sent by syncws",
            "     - Result",
        ]
        for item in s["not_ok"]:
            lines += [
                f"   * - {item['case']}",
                f"     - {item['behavior']}",
                f"     - {item['behaviorClose']}",
                f"     - {item['remoteCloseCode']}",
                f"     - {_rst_text(item['result'])}",
            ]
    return "\n".join(lines) + "\n"


def _rst_text(text: str) -> str:
    text = re.sub(r"([*`|_\\])", r"\\\1", text)
    return text or "(none)"


# Command line.


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=("server", "client", "both"), default="both")
    parser.add_argument(
        "--cases",
        default="*",
        help="comma-separated case globs, e.g. '1.*,2.*' (default: all; the compression "
        f"cases are skipped when syncws has no compression option). CI subset: '{CI_CASES}'",
    )
    parser.add_argument("--exclude", default="", help="comma-separated case globs to skip")
    parser.add_argument("--install-only", action="store_true", help="install wstest and exit")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per role")
    write = parser.add_mutually_exclusive_group()
    write.add_argument(
        "--write",
        action="store_true",
        dest="write",
        default=None,
        help="record the results even for a subset of the cases",
    )
    write.add_argument(
        "--no-write", action="store_false", dest="write", help="only print the results"
    )
    args = parser.parse_args(argv)

    python2 = find_python2()
    install(python2)
    if args.install_only:
        return 0
    logging.basicConfig(level=logging.CRITICAL)  # wstest provokes errors on purpose

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    exclude = [c.strip() for c in args.exclude.split(",") if c.strip()]
    roles = ["server", "client"] if args.role == "both" else [args.role]
    summaries = {}
    for role in roles:
        summary = run_role(role, cases, exclude, python2, args.timeout)
        print_summary(summary)
        summaries[role] = summary
    write_results_now = args.write if args.write is not None else cases == ["*"]
    if write_results_now:
        write_results(summaries, wstest_version(python2))
    unexpected = [
        f"{role} {item['case']} {item['behavior']}"
        for role, summary in summaries.items()
        for item in summary["not_ok"]
        if item["case"] not in EXPECTED_NOT_OK
    ]
    if unexpected:
        print("not OK and not explained in compliance/README.md: " + ", ".join(unexpected))
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
