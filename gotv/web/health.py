"""For the platform and the operators: is the process up, can it serve, and its metrics.

`/healthz` says the process answers (a platform restarts it when it does not); `/readyz` that
it can reach the database and Redis (a load balancer sends it no traffic while it cannot);
`/metrics` is Prometheus' view, for whoever holds METRICS_TOKEN. None of them signs in, and
none waits its turn behind the requests (gotv/web/admission.py).
"""

from __future__ import annotations

import hmac
from datetime import datetime

from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from gotv.db import db
from gotv.edge import metrics
from gotv.models import Message, MessageStatus, utcnow

bp = Blueprint("health", __name__)

# /readyz must answer within a platform's probe timeout, even when Redis does not.
PROBE_SECONDS = 2.0


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    checks = {"database": database_answers(), "redis": redis_answers()}
    ready = all(checks.values())
    body = {name: "ok" if fine else "unreachable" for name, fine in checks.items()}
    response = jsonify(status="ready" if ready else "not ready", **body)
    response.status_code = 200 if ready else 503
    if not ready:
        response.headers["Retry-After"] = "5"
    return response


def database_answers() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        return False
    finally:
        db.session.rollback()


def redis_answers() -> bool:
    probe: Redis = Redis.from_url(
        current_app.config["REDIS_URL"],
        socket_timeout=PROBE_SECONDS,
        socket_connect_timeout=PROBE_SECONDS,
    )
    try:
        return bool(probe.ping())
    except RedisError:
        return False
    finally:
        probe.close()


@bp.get("/metrics")
def prometheus() -> ResponseReturnValue:
    token = current_app.config.get("METRICS_TOKEN")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        abort(404)  # not served, or not to this caller: nothing to tell
    collector = metrics.OutboxCollector(outbox_depth, utcnow())
    body = metrics.exposition(collector, current_app.config.get("PROMETHEUS_MULTIPROC_DIR"))
    return Response(body, mimetype=metrics.CONTENT_TYPE)


def outbox_depth() -> tuple[int, datetime | None]:
    """How many texts are queued and due, and when the oldest was queued."""
    now = utcnow()
    due = (Message.status == MessageStatus.QUEUED) & (
        Message.next_attempt_at.is_(None) | (Message.next_attempt_at <= now)
    )
    count, oldest = db.session.execute(
        select(func.count(), func.min(Message.created_at)).where(due)
    ).one()
    return int(count), oldest
