# syncws version of miguelgrinberg/flask-sock: examples/blueprints/blueprints/main.py
# (MIT license, Copyright (c) 2021 Miguel Grinberg). Unchanged.
from flask import Blueprint, render_template

main = Blueprint("main", __name__)


@main.route("/")
def index():
    return render_template("index.html")
