"""The connection options (:class:`syncws.ConnectionOptions`): one set of
defaults for Server, connect() and the WSGI Upgrader, checked once, read by connections."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import socket
import typing
from collections.abc import Callable
from typing import Any

import pytest
from conftest import ServerFactory
from timing import TIMEOUT

import syncws
from syncws import ConnectionOptions
from syncws.cli.client import build_parser as client_parser
from syncws.cli.run import build_parser as run_parser
from syncws.integrations.wsgi import Upgrader

UriFactory = Callable[..., str]
FIELDS = [field.name for field in dataclasses.fields(ConnectionOptions)]
DEFAULTS = ConnectionOptions()

ENTRY_POINTS: dict[str, Callable[..., Any]] = {
    "Server": syncws.Server,
    "connect": syncws.connect,
    "Upgrader": Upgrader,
}


@pytest.mark.parametrize("entry_point", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_documented_defaults_are_the_options_defaults(entry_point: Callable[..., Any]) -> None:
    """Each entry point takes every option as a keyword argument whose default, the one
    its signature documents, is the ConnectionOptions default: they cannot drift apart."""
    parameters = inspect.signature(entry_point).parameters
    for name in FIELDS:
        assert name in parameters, name
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert parameters[name].default == getattr(DEFAULTS, name), name


def test_command_line_defaults_are_the_options_defaults() -> None:
    """syncws run and the client command line start from the same defaults."""
    run = run_parser().parse_args(["app:handler"])
    assert (run.max_size, run.ping_interval, run.ping_timeout, run.close_timeout) == (
        DEFAULTS.max_size,
        DEFAULTS.ping_interval,
        DEFAULTS.ping_timeout,
        DEFAULTS.close_timeout,
    )
    client = client_parser().parse_args(["ws://localhost/"])
    assert (client.max_size, client.timeout) == (DEFAULTS.max_size, DEFAULTS.open_timeout)


def test_defaults() -> None:
    """The defaults the docs give (a change here is a change of the public defaults)."""
    assert dataclasses.asdict(DEFAULTS) == {
        "max_size": 2**20,
        "max_queue": 16,
        "compression": "deflate",
        "ping_interval": 20,
        "ping_timeout": 20,
        "close_timeout": 10,
        "open_timeout": 10,
        "write_timeout": None,
    }


def test_options_cannot_be_changed() -> None:
    """The options are frozen; dataclasses.replace() makes new ones, checked again."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.ping_interval = 5  # type: ignore[misc]
    assert dataclasses.replace(DEFAULTS, ping_interval=None).ping_interval is None
    with pytest.raises(ValueError, match="ping_interval"):
        dataclasses.replace(DEFAULTS, ping_interval=-1)


BAD: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"max_size": 0}, ValueError, "max_size must be at least 1, or None for no limit, got 0"),
    ({"max_size": -5}, ValueError, "max_size must be at least 1, or None for no limit, got -5"),
    ({"max_size": 1.5}, TypeError, "max_size must be an integer or None, got float"),
    ({"max_queue": 0}, ValueError, "max_queue must be at least 1, got 0"),
    ({"max_queue": None}, TypeError, "max_queue must be an integer, got NoneType"),
    ({"max_queue": True}, TypeError, "max_queue must be an integer, got bool"),
    ({"compression": "gzip"}, ValueError, "compression must be \"deflate\" or None, got 'gzip'"),
    (
        {"ping_interval": 0},
        ValueError,
        "ping_interval must be more than 0 seconds (finite) or None, got 0",
    ),
    (
        {"ping_timeout": -1},
        ValueError,
        "ping_timeout must be 0 or more seconds (finite) or None, got -1",
    ),
    (
        {"close_timeout": math.inf},
        ValueError,
        "close_timeout must be 0 or more seconds (finite) or None, got inf",
    ),
    (
        {"open_timeout": math.nan},
        ValueError,
        "open_timeout must be 0 or more seconds (finite) or None, got nan",
    ),
    (
        {"write_timeout": "5"},
        TypeError,
        "write_timeout must be a number of seconds or None, got str",
    ),
    (
        {"ping_interval": True},
        TypeError,
        "ping_interval must be a number of seconds or None, got bool",
    ),
]


@pytest.mark.parametrize(("options", "error", "message"), BAD)
@pytest.mark.parametrize("entry_point", ENTRY_POINTS, ids=ENTRY_POINTS.keys())
def test_bad_options_raise_before_anything_opens(
    entry_point: str, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """A bad value raises TypeError or ValueError naming the option, from every entry point,
    before a socket is bound or a connection attempted (port 1: nothing listens there)."""
    port = _free_port()
    with pytest.raises(error) as info:
        if entry_point == "Server":
            syncws.Server(lambda ws: None, "127.0.0.1", port, **options)
        elif entry_point == "connect":
            syncws.connect("ws://127.0.0.1:1/", **options)
        else:
            Upgrader(**options)
    assert str(info.value) == message
    # Nothing was bound: the port is still free.
    with socket.create_server(("127.0.0.1", port)):
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_zero_timeouts_are_accepted() -> None:
    """0 is a valid timeout (do not wait), unlike a ping interval of 0."""
    options = ConnectionOptions(
        ping_timeout=0, close_timeout=0, open_timeout=0, write_timeout=0.0, max_size=None
    )
    assert (options.close_timeout, options.write_timeout, options.max_size) == (0, 0.0, None)


def test_connections_take_their_options_from_the_server_and_the_client(
    server: ServerFactory, uri: UriFactory
) -> None:
    """A server's options are its connections' settings, and connect()'s the client's."""
    seen: list[tuple[Any, ...]] = []

    def handler(ws: syncws.ServerConnection) -> None:
        options = ws.server.options
        seen.append((options, ws.ping_interval, ws.close_timeout, ws.max_queue))
        ws.send(str(ws.protocol.max_size))
        ws.recv()

    srv = server(handler, ping_interval=None, close_timeout=3, max_queue=2, max_size=500)
    assert srv.options == ConnectionOptions(
        ping_interval=None, close_timeout=3, max_queue=2, max_size=500
    )
    with syncws.connect(
        uri(srv), ping_timeout=7, write_timeout=2.5, max_queue=3, max_size=100
    ) as ws:
        assert ws.recv(timeout=TIMEOUT) == "500"
        assert (ws.ping_timeout, ws.write_timeout, ws.max_queue) == (7, 2.5, 3)
        assert ws.protocol.max_size == 100
        ws.send("done")
    [(options, ping_interval, close_timeout, max_queue)] = seen
    assert options is srv.options
    assert (ping_interval, close_timeout, max_queue) == (None, 3, 2)


@pytest.mark.parametrize(
    "entry_point",
    [syncws.Server.__init__, syncws.connect, syncws.reconnect, Upgrader.__init__],
    ids=["Server", "connect", "reconnect", "Upgrader"],
)
def test_logger_accepts_a_logger_adapter(entry_point: Callable[..., Any]) -> None:
    """``logger=`` is annotated to take a LoggerAdapter too, as the logging guide shows
    (a type checker flagged ``logger=LoggerAdapter(...)`` before)."""
    hint = typing.get_type_hints(entry_point)["logger"]
    assert logging.LoggerAdapter[Any] in typing.get_args(hint)
    assert logging.Logger in typing.get_args(hint)


def test_a_logger_adapter_adds_its_context_to_syncws_lines(
    server: ServerFactory, uri: UriFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """syncws's own lines go through the adapter given as ``logger=``: its ``extra`` is on
    each record."""
    adapter = logging.LoggerAdapter(logging.getLogger("chat.ws"), {"service": "chat"})
    with caplog.at_level(logging.INFO, logger="chat.ws"):
        srv = server(lambda ws: ws.recv(), logger=adapter)
        with syncws.connect(uri(srv)) as ws:
            ws.send("bye")
        srv.shutdown(timeout=TIMEOUT)
    opened = [r for r in caplog.records if "connection open" in r.getMessage()]
    assert opened and all(getattr(r, "service", None) == "chat" for r in opened)
