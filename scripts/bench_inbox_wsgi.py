"""gunicorn's entry for scripts/bench_inbox.py: the app, each response telling how many database
queries its request ran (X-DB-Queries), counted by a SQLAlchemy event per thread."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from flask import Response

from gotv.db import db
from wsgi import app

_counts = threading.local()
# The benchmark talks plain HTTP on loopback: production's Secure cookies would never come back.
app.config["SESSION_COOKIE_SECURE"] = False

with app.app_context():
    engine = db.engine


@sa.event.listens_for(engine, "before_cursor_execute")
def _count(*_args: Any) -> None:
    _counts.queries = getattr(_counts, "queries", 0) + 1


@app.before_request
def _start() -> None:
    _counts.queries = 0


@app.after_request
def _tell(response: Response) -> Response:
    response.headers["X-DB-Queries"] = str(getattr(_counts, "queries", 0))
    return response
