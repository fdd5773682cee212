# syncws version of miguelgrinberg/flask-sock: examples/blueprints/blueprints/ws.py
# (MIT license, Copyright (c) 2021 Miguel Grinberg). Changed: the import.
from syncws.integrations.flask import Sock

sock = Sock()


@sock.route("/echo")
def echo(ws):
    while True:
        data = ws.receive()
        if data == "close":
            break
        ws.send(data)
