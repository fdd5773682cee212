# syncws version of websocket-client/websocket-client: README.md, "Short-lived Connection"
# (Apache-2.0, Copyright 2025 engn33r). Changed: the import; create_connection -> connect.
from syncws import connect

ws = connect("ws://echo.websocket.events/")
print(ws.recv())
print("Sending 'Hello, World'...")
ws.send("Hello, World")
print("Sent")
print("Receiving...")
result = ws.recv()
print("Received '%s'" % result)
ws.close()
