"""A syncws server process for the nginx tests (``python tests/nginx_apps.py PING DIR``).

Serves on 127.0.0.1 (free port), with ``ping_interval`` PING seconds (``none`` disables
pings), messages up to 8 MiB, and ``trusted_proxies=["127.0.0.1"]``. Prints
``ready PORT`` on standard error. Paths:

- ``/healthz``: a plain HTTP 200 ``OK`` (``process_request``), for health checks;
- ``/whoami``: sends the process id and the client's address, then holds;
- ``/close``: closes with the code and reason of the first message (``"4001 bye"``);
- ``/report``: holds, then writes ``CODE REASON`` of the client's close to ``DIR/closes``;
- anything else: echo.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import syncws


def main(ping: str, directory: str) -> None:
    def health(ws: syncws.ServerConnection, request: syncws.Request) -> syncws.Response | None:
        return ws.respond(200, "OK\n") if request.path == "/healthz" else None

    def handler(ws: syncws.ServerConnection) -> None:
        path = ws.request.path if ws.request else ""
        if path == "/whoami":
            ws.send(f"{os.getpid()} {ws.remote_address!r}")
            for _ in ws:
                pass
        elif path == "/close":
            code, _, reason = str(ws.recv()).partition(" ")
            ws.close(int(code), reason)
        elif path == "/report":
            try:
                for _ in ws:
                    pass
            except syncws.ConnectionClosed:  # iterating raises for codes but 1000, 1001
                pass
            with open(Path(directory) / "closes", "a") as file:
                file.write(f"{ws.close_code} {ws.close_reason}\n")
        else:
            for message in ws:
                ws.send(message)

    with syncws.Server(
        handler,
        "127.0.0.1",
        0,
        ping_interval=None if ping == "none" else float(ping),
        max_size=8 * 2**20,
        process_request=health,
        trusted_proxies=["127.0.0.1"],
    ) as server:
        print(f"ready {server.port}", file=sys.stderr, flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
