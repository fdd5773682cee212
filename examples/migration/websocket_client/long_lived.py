# syncws version of websocket-client/websocket-client: README.md, "Long-lived Connection"
# (Apache-2.0, Copyright 2025 engn33r). Changed: the imports; WebSocketApp.run_forever() and
# its rel dispatcher -> a loop over syncws.connect() that calls the same callbacks.
import time

import syncws


def on_message(ws, message):
    print(message)


def on_error(ws, error):
    print(error)


def on_close(ws, close_status_code, close_msg):
    print("### closed ###")


def on_open(ws):
    print("Opened connection")


def run_forever(url, reconnect=5):
    """Like WebSocketApp(url, on_...).run_forever(reconnect=5): after an error, connect
    again in `reconnect` seconds; after a normal close (1000, 1001), return."""
    while True:
        ws = None
        try:
            with syncws.connect(url) as ws:
                on_open(ws)
                for message in ws:  # ends on a normal close, raises on an abnormal one
                    on_message(ws, message)
            on_close(ws, ws.close_code, ws.close_reason)
            return
        except (OSError, syncws.WebSocketException) as error:
            on_error(ws, error)
            if ws is not None:
                on_close(ws, ws.close_code, ws.close_reason)
        time.sleep(reconnect)


if __name__ == "__main__":
    run_forever("wss://api.gemini.com/v1/marketdata/BTCUSD", reconnect=5)  # Ctrl-C stops
