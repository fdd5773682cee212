# syncws version of miguelgrinberg/flask-sock: examples/blueprints/run.py
# (MIT license, Copyright (c) 2021 Miguel Grinberg). Unchanged.
from blueprints.app import create_app

app = create_app()
