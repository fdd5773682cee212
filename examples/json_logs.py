#!/usr/bin/env python
"""An echo server that logs JSON lines, with the connection's id on each line about one.

syncws's own lines about a connection begin with the connection's id (``ws.id``, a UUID),
which is the first argument of the log record: the formatter copies it into a field. The
handler logs its own lines through a :class:`logging.LoggerAdapter` that adds the same id,
so that every line about a connection can be found by it. syncws's own lines go through
an adapter too (``logger=``), which adds the name of the service. Only the standard
library.

``python examples/json_logs.py [PORT]`` (default 8765) logs to standard error.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import uuid
from typing import Any

import syncws
from syncws.protocol.http11 import redact_target

# Attributes every LogRecord has; any other attribute came from extra= (or an adapter).
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, connection, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # syncws's lines about a connection: "<id>: connection open from ...", and so on.
        args = record.args
        if isinstance(args, tuple) and args and isinstance(args[0], uuid.UUID):
            entry["connection"] = str(args[0])
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


logger = logging.getLogger("echo")


def echo(ws: syncws.ServerConnection) -> None:
    # redact_target: never log a query string, where browsers put tokens.
    log = logging.LoggerAdapter(
        logger, {"connection": str(ws.id), "path": redact_target(ws.request.path)}
    )
    count = 0
    try:
        for message in ws:
            count += 1
            ws.send(message)
    finally:
        # syncws does not log a normal close at INFO: say it here, with what matters.
        log.info("closed after %d messages: code %s", count, ws.close_code)


def main() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter())
    logging.basicConfig(handlers=[handler], level=logging.INFO)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    # Context on syncws's own lines too: every record of this server gets a "service" field.
    server_log = logging.LoggerAdapter(logging.getLogger("syncws.server"), {"service": "echo"})
    syncws.serve(echo, "localhost", port, logger=server_log)


if __name__ == "__main__":
    main()
