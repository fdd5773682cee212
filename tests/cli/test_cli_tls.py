"""The command-line client and TLS options: a server that requires a client certificate
(--cert, --key, --ca), what is printed when it refuses one or wants one, and the usage
errors for files that cannot be loaded. The client runs in a subprocess, as users run it.
"""

from __future__ import annotations

import re
import ssl
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from doc_blocks import DOCS, Command, console_commands, rst_blocks
from test_cli import ENV, RUN_TIMEOUT, WAIT, run_cli

import syncws
from syncws.cli import main

ServerFactory = Callable[..., syncws.Server]


@dataclass
class ClientCertServer:
    """A ``wss://`` server that requires a client certificate, and the PEM files to
    talk to it: ``ca`` signed the server's certificate and ``cert``/``key``; ``both`` holds
    that certificate and key in one file; ``stranger`` is a certificate and key from
    another CA."""

    uri: str
    ca: str
    cert: str
    key: str
    both: str
    stranger: str


def greet_then_echo_once(ws: syncws.ServerConnection) -> None:
    """Say which client certificate came (its common name), echo one message, and close
    (the client then ends at once, whatever --wait says)."""
    peer = ws.transport.ssl_object.getpeercert()  # type: ignore[attr-defined]
    subject = dict(field for rdn in peer["subject"] for field in rdn)
    ws.send(f"hello {subject['commonName']}")
    ws.send(ws.recv())


@pytest.fixture
def client_cert_server(server: ServerFactory, tmp_path: Path) -> ClientCertServer:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    srv = server(greet_then_echo_once, ssl=context)
    client = ca.issue_cert("alice@example.org", common_name="alice")
    paths = {name: str(tmp_path / f"{name}.pem") for name in ("ca", "cert", "key", "both")}
    ca.cert_pem.write_to_path(paths["ca"])
    client.cert_chain_pems[0].write_to_path(paths["cert"])
    client.private_key_pem.write_to_path(paths["key"])
    client.private_key_and_cert_chain_pem.write_to_path(paths["both"])
    stranger = str(tmp_path / "stranger.pem")
    trustme.CA().issue_cert("mallory@example.org").private_key_and_cert_chain_pem.write_to_path(
        stranger
    )
    return ClientCertServer(f"wss://localhost:{srv.port}/", **paths, stranger=stranger)


def test_client_certificate_with_cert_key_and_ca(client_cert_server: ClientCertServer) -> None:
    """--cert and --key present the client certificate, --ca verifies the server's: the
    server sees who the client is, and messages go both ways; --cert alone takes a file
    that holds the key too."""
    tls = client_cert_server
    for files in (["--cert", tls.cert, "--key", tls.key], ["--cert", tls.both]):
        result = run_cli("--ca", tls.ca, *files, tls.uri, "--wait", WAIT, stdin="hi\n")
        assert result.stdout.splitlines()[1:3] == ["< hello alice", "< hi"], result.stderr
        assert result.returncode == 0


def test_no_client_certificate_is_one_line(client_cert_server: ClientCertServer) -> None:
    """Without --cert, the server's TLS alert (TLS 1.3: after the client's handshake) is
    reported as such, not as a connection closed; with --reconnect too, it is final."""
    tls = client_cert_server
    for args in ([], ["--reconnect"]):
        result = run_cli("--ca", tls.ca, *args, tls.uri)
        assert result.stderr == (
            f"Failed to connect to {tls.uri}: the server requires a client certificate "
            "(--cert, --key).\n"
        )
        assert result.returncode == 1


def test_client_certificate_from_another_ca_is_refused(
    client_cert_server: ClientCertServer,
) -> None:
    """A certificate the server does not trust: its alert, in one line, exit status 1."""
    tls = client_cert_server
    result = run_cli("--ca", tls.ca, "--cert", tls.stranger, tls.uri)
    assert result.stderr == (
        f"Failed to connect to {tls.uri}: the server refused the client certificate: "
        "tlsv1 alert unknown ca.\n"
    )
    assert result.returncode == 1


def test_insecure_with_a_client_certificate(client_cert_server: ClientCertServer) -> None:
    """--insecure skips the server's verification and still presents --cert; without --ca
    nor --insecure, the test CA's server certificate fails verification."""
    tls = client_cert_server
    result = run_cli("--insecure", "--cert", tls.both, tls.uri)
    assert "< hello alice\n" in result.stdout, result.stderr
    result = run_cli("--cert", tls.both, tls.uri)
    assert "certificate verification failed" in result.stderr


def test_tls_files_that_cannot_be_used_are_usage_errors(
    client_cert_server: ClientCertServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file, a file that is not PEM, a key of another certificate, --key without
    --cert, --cert on ws://, --insecure with --ca: one line naming the option, exit 2,
    before connecting (main() in this process: nothing is connected)."""
    tls = client_cert_server
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    missing = str(tmp_path / "missing.pem")
    other_key = tmp_path / "other-key.pem"
    trustme.CA().issue_cert("x.example").private_key_pem.write_to_path(other_key)
    cases = [
        (["--ca", missing], f"--ca {missing}: No such file or directory"),
        (["--ca", str(junk)], f"--ca {junk}: no PEM certificate in it"),
        (["--cert", missing], f"--cert {missing}: No such file or directory"),
        (["--cert", tls.cert, "--key", missing], f"--key {missing}: No such file or directory"),
        (["--cert", str(junk)], f"--cert {junk}: not a PEM certificate and its key"),
        (["--cert", tls.cert], f"--cert {tls.cert}: not a PEM certificate and its key"),
        (
            ["--cert", tls.cert, "--key", str(other_key)],
            f"--key {other_key}: not the key of the certificate",
        ),
        (["--key", tls.key], "--key goes with --cert"),
        (["--insecure", "--ca", tls.ca], "argument --ca: not allowed with argument --insecure"),
    ]
    cases.append((["--cert", tls.both, "ws://localhost:9/"], "--cert is for wss:// URIs"))
    for args, message in cases:
        assert main([*args, tls.uri] if "ws://localhost:9/" not in args else args) == 2
        error = capsys.readouterr().err
        assert error.endswith(f"syncws: error: {message}\n"), (args, error)


def encrypt_key(path: str, passphrase: bytes, directory: Path) -> Path:
    """A copy of the key in ``path``, encrypted with ``passphrase`` (PKCS#8, PEM)."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    encrypted = directory / "encrypted-key.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
    )
    return encrypted


def test_encrypted_key_without_a_terminal_fails_cleanly(
    client_cert_server: ClientCertServer, tmp_path: Path
) -> None:
    """A key protected by a passphrase, with no terminal to ask it on (standard input
    carries the messages): a usage error, not a hang nor a traceback."""
    tls = client_cert_server
    encrypted = encrypt_key(tls.key, b"passphrase", tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "syncws", "--cert", tls.cert, "--key", str(encrypted), tls.uri],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=RUN_TIMEOUT,
        start_new_session=True,  # no controlling terminal for OpenSSL to prompt on
    )
    assert result.returncode == 2
    assert result.stderr.endswith(
        f"syncws: error: --key {encrypted}: an encrypted key, and no terminal to ask its "
        "passphrase on\n"
    )


def cli_page(where: str) -> list[Command]:
    """The commands of docs/reference/cli.rst's console blocks, with the output shown after
    each, of the blocks in which ``where`` appears."""
    return [
        command
        for block in rst_blocks(DOCS / "reference" / "cli.rst")
        if block.kind == "code" and block.language == "console" and where in block.text
        for command in console_commands(block)
    ]


def normalize(line: str, replacements: dict[str, str]) -> str:
    """``line`` with ``replacements`` made (the test's URIs for the page's), and
    round-trip times masked."""
    for old, new in replacements.items():
        line = line.replace(old, new)
    return re.sub(r"\d+\.\d\d ms", "N ms", line)


def test_the_pages_client_certificate_commands(client_cert_server: ClientCertServer) -> None:
    """The client certificate commands of docs/reference/cli.rst, run with this test's
    files and server, print the page's lines."""
    tls = client_cert_server
    files = {
        "ca.pem": tls.ca,
        "client.pem": tls.cert,
        "client.key": tls.key,
        "mallory.pem": tls.stranger,
        "wss://localhost:8443/": tls.uri,
    }
    commands = cli_page("--cert client.pem")
    assert len(commands) == 3
    for command in commands:
        *before, args = command.pipeline()
        assert args[0] == "syncws"
        stdin = "".join(" ".join(echo[1:]) + "\n" for echo in before)  # echo hi |
        result = run_cli(*(files.get(arg, arg) for arg in args[1:]), stdin=stdin)
        printed = (result.stdout + result.stderr).splitlines()
        shown = {tls.uri: "wss://localhost:8443/"}
        assert [normalize(line, shown) for line in printed] == command.output, command.text
