"""picows (Cython, asyncio) echoing: ``python picows_server.py [PORT]``.

picows hands over frames, not messages: the benchmarks send unfragmented messages, so
echoing each data frame echoes each message. No compression (picows has none), its own
keepalive left at its default (off), max_frame_size 16 MiB. Prints ``PORT <n>`` once
listening.
"""

import asyncio
import sys

from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server


class Echo(WSListener):  # type: ignore[misc]
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            transport.send(frame.msg_type, frame.get_payload_as_memoryview())


def listener(request: WSUpgradeRequest) -> Echo:
    return Echo()


async def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = await ws_create_server(
        listener, "127.0.0.1", port, max_frame_size=16 << 20, backlog=1024
    )
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
