"""A module with a handler, for the runner: ``python -m syncws run handlers:echo`` in this
directory serves ``echo`` (with ``--workers N``, in N processes on one port).

The runner imports the module in each worker and calls the handler with each connection,
as ``syncws.serve()`` would: the module itself starts no server.
"""

import syncws


def echo(ws: syncws.ServerConnection) -> None:
    for message in ws:
        ws.send(message)
