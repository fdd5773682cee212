"""Programs for the Redis tests, run in subprocesses (``python tests/redis_apps.py ...``).

- ``server URL``: a syncws server on 127.0.0.1 (free port) whose handler joins the topic
  named by the request path (``/room`` joins ``room``), says ``joined`` once Redis has
  confirmed the subscription, then reads until the client closes. Prints ``ready PORT``
  on standard error.
- ``publish URL TOPIC NAME COUNT``: publishes ``NAME:0`` .. ``NAME:COUNT-1`` to TOPIC, text
  for even numbers and binary for odd ones, from a process without a server; exits 0.
"""

from __future__ import annotations

import sys

import syncws
from syncws.integrations.redis import Hub


def server(url: str) -> None:
    hub = Hub(url)

    def handler(ws: syncws.ServerConnection) -> None:
        hub.join(ws, ws.request.path.lstrip("/") if ws.request else "")
        if not hub.wait_subscribed(10):
            ws.close(1011, "not subscribed")
            return
        ws.send("joined")
        for _ in ws:
            pass

    with syncws.Server(handler, "127.0.0.1", 0) as srv:
        hub.attach(srv)
        print(f"ready {srv.port}", file=sys.stderr, flush=True)
        srv.serve_forever()


def publish(url: str, topic: str, name: str, count: int) -> None:
    with Hub(url) as hub:
        for n in range(count):
            message = f"{name}:{n}"
            hub.publish(topic, message if n % 2 == 0 else message.encode())


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2])
    else:
        publish(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
