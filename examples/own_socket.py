"""Hand a socket whose WebSocket handshake you ran yourself to the runtime.

Both ends of a socket pair, in one process: the handshake runs between the two Sans-I/O
protocols, then each socket becomes a connection with ``from_handshake()``, served by the
runtime (keepalive pings, the closing handshake) as if ``Server`` or ``connect()`` had
opened it.
"""

import socket

import syncws
from syncws.protocol.client import ClientProtocol
from syncws.protocol.server import ServerProtocol
from syncws.protocol.uri import parse_uri


def open_pair() -> tuple[syncws.ServerConnection, syncws.ClientConnection]:
    # The opening handshake, in memory: the request, then the response.
    client_protocol = ClientProtocol(parse_uri("ws://localhost/chat"))
    server_protocol = ServerProtocol()
    client_protocol.send_request(client_protocol.connect())
    [event] = server_protocol.receive_data(client_protocol.data_to_send())
    server_protocol.send_response(server_protocol.accept(event.request))
    client_protocol.receive_data(server_protocol.data_to_send())

    # Each end of a connected socket pair becomes a connection.
    server_sock, client_sock = socket.socketpair()
    server = syncws.ServerConnection.from_handshake(server_sock, server_protocol)
    client = syncws.ClientConnection.from_handshake(client_sock, client_protocol)
    return server, client


def main() -> None:
    server, client = open_pair()
    client.send("Hello")
    print(server.recv(timeout=5))
    with client:  # closes with 1000 on the way out
        server.send("Hello back")
        print(client.recv(timeout=5))
    print(server.wait_closed(5), server.close_code)


if __name__ == "__main__":
    main()
