"""gunicorn's entry for scripts/bench_inbox.py: the app, each response telling how many database
queries its request ran (X-DB-Queries), counted by a SQLAlchemy event per thread (and, for the
webhooks' Raw statements, which run on the driver past SQLAlchemy's events, here), the CPU time
its thread spent on it (X-CPU-Ms: what the request costs, however busy the box) and the time
from the view's start to its end (X-Server-Ms: without the wait for a free thread and the GIL
before it starts)."""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlalchemy as sa
from flask import Response

from gotv.db import Raw, db
from wsgi import app

_counts = threading.local()
# The benchmark talks plain HTTP on loopback: production's Secure cookies would never come back.
app.config["SESSION_COOKIE_SECURE"] = False

with app.app_context():
    engine = db.engine


@sa.event.listens_for(engine, "before_cursor_execute")
def _count(*_args: Any) -> None:
    _counts.queries = getattr(_counts, "queries", 0) + 1


_run_raw = Raw.rows


def _counted_raw(self: Raw, *args: Any, **kwargs: Any) -> list[Any]:
    _count()
    return _run_raw(self, *args, **kwargs)


Raw.rows = _counted_raw  # type: ignore[method-assign]


@app.before_request
def _start() -> None:
    _counts.queries = 0
    _counts.cpu, _counts.wall = time.thread_time(), time.perf_counter()


@app.after_request
def _tell(response: Response) -> Response:
    response.headers["X-DB-Queries"] = str(getattr(_counts, "queries", 0))
    response.headers["X-CPU-Ms"] = f"{(time.thread_time() - _counts.cpu) * 1000:.2f}"
    response.headers["X-Server-Ms"] = f"{(time.perf_counter() - _counts.wall) * 1000:.2f}"
    return response
