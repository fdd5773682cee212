"""The Sans-I/O core on its own: a client and a server protocol talking through bytes."""

import syncws
from syncws.protocol.client import ClientProtocol
from syncws.protocol.handshake import parse_uri
from syncws.protocol.server import ServerProtocol

client = ClientProtocol(parse_uri("ws://example.com/chat"))
server = ServerProtocol()
client.send_request(client.connect())
(request_event,) = server.receive_data(client.data_to_send())
server.send_response(server.accept(request_event.request))
print("handshake:", client.receive_data(server.data_to_send()))
client.send_text(b"Hello, server")
wire = client.data_to_send()
print("client frame on the wire:", wire.hex(" "))
print("server got:", server.receive_data(wire))
print("masking implementation:", syncws.MASK_IMPLEMENTATION)
