"""websockets' asyncio server echoing: ``python websockets_asyncio_server.py [PORT]``.

Compression off, keepalive at its defaults, max_size 16 MiB. Prints ``PORT <n>`` once
listening.
"""

import asyncio
import sys

from websockets.asyncio.server import ServerConnection, serve


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    async with serve(
        echo, "127.0.0.1", port, compression=None, max_size=16 << 20, backlog=1024
    ) as server:
        print("PORT", next(iter(server.sockets)).getsockname()[1], flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
