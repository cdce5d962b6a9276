"""gunicorn's entry for scripts/bench_inbox.py: the app, each response telling how many database
queries its request ran (X-DB-Queries), counted by a SQLAlchemy event per thread (which gotv's
Raw statements announce too), the CPU time its thread spent on it (X-CPU-Ms: what the request
costs, however busy the box) and the time from the view's start to its end (X-Server-Ms:
without the wait for a free thread and the GIL before it starts).

With BENCH_FLOOR=1 (scripts/bench inbox --floor) it also serves the floor: /bench/floor, a
signed-in GET or POST (CSRF checked as for every view) that does nothing but answer a small
JSON, and /bench/floor/webhook, a POST that neither signs in nor checks CSRF, as Twilio's
webhooks. They exist only here, never in gotv/.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import sqlalchemy as sa
from flask import Response
from flask_login import login_required

from gotv.db import db
from gotv.web.auth import csrf
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
    _counts.cpu, _counts.wall = time.thread_time(), time.perf_counter()


@app.after_request
def _tell(response: Response) -> Response:
    response.headers["X-DB-Queries"] = str(getattr(_counts, "queries", 0))
    # A request refused by an earlier before_request hook (CSRF) never reached _start: no
    # clocks to read, rather than another request's.
    if getattr(_counts, "cpu", None) is not None:
        response.headers["X-CPU-Ms"] = f"{(time.thread_time() - _counts.cpu) * 1000:.2f}"
        response.headers["X-Server-Ms"] = f"{(time.perf_counter() - _counts.wall) * 1000:.2f}"
    _counts.cpu = None
    return response


if os.environ.get("BENCH_FLOOR") == "1":

    @app.route("/bench/floor", methods=["GET", "POST"])
    @login_required
    def _floor() -> dict[str, bool]:
        """A signed-in request, and nothing else."""
        return {"ok": True}

    @app.post("/bench/floor/webhook")
    @csrf.exempt
    def _floor_webhook() -> dict[str, bool]:
        """A request as a webhook's: not signed in, no CSRF token, and nothing else."""
        return {"ok": True}
