# syncws version of miguelgrinberg/flask-sock: examples/echo.py
# (MIT license, Copyright (c) 2021 Miguel Grinberg). Changed: the import.
from flask import Flask, render_template
from syncws.integrations.flask import Sock

app = Flask(__name__)
app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": 25}

sock = Sock(app)


@app.route("/")
def index():
    return render_template("index.html")


@sock.route("/echo")
def echo(ws):
    while True:
        data = ws.receive()
        if data == "close":
            break
        ws.send(data)


if __name__ == "__main__":
    app.run()
