"""The WSGI entry point: `gunicorn wsgi:app`."""

from gotv import create_app, logs

app = create_app()
logs.configure(app.config["LOG_LEVEL"], as_json=app.config["LOG_FORMAT"] == "json")
