"""The WSGI entry point: `gunicorn wsgi:app`."""

from gotv import create_app

app = create_app()
