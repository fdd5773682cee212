# syncws version of miguelgrinberg/flask-sock: examples/blueprints/blueprints/__init__.py (empty).
