"""Redis and RQ: named queues and enqueueing jobs by their dotted name.

Jobs are enqueued by name ("workers.texting.pump_outbox") so the web app never imports the
worker package; they take ids, never ORM objects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job

log = logging.getLogger(__name__)

SEND = "send"
IMPORT = "import"
DEFAULT = "default"
QUEUES = (SEND, IMPORT, DEFAULT)


def init_app(app: Flask) -> None:
    """Create the app's Redis connection (connects lazily)."""
    app.extensions["gotv.redis"] = Redis.from_url(app.config["REDIS_URL"])


def redis() -> Redis:
    """The current app's Redis connection."""
    connection: Redis = current_app.extensions["gotv.redis"]
    return connection


def queue(name: str) -> Queue:
    """The RQ queue called `name` on the current app's Redis."""
    return Queue(name, connection=redis())


def enqueue(
    function: str,
    *args: Any,
    queue_name: str = DEFAULT,
    job_timeout: int = 120,
    job_id: str | None = None,
    organization_id: int | None = None,
) -> bool:
    """Enqueue `function` (a dotted name) with `args`; call only after the commit it depends on.
    A job done for one organization says so (`organization_id`): its failure is shown to that
    organization's organizers, and to no other.

    Returns False, and logs, when Redis is unreachable: the database row is the source of truth
    and the sweeper re-enqueues it later, so a Redis outage delays work but never loses it.
    """
    meta = {"organization_id": organization_id} if organization_id is not None else None
    try:
        queue(queue_name).enqueue(
            function, *args, job_timeout=job_timeout, job_id=job_id, meta=meta
        )
    except RedisError:
        log.warning("redis unavailable; %s%r left for the sweeper", function, args)
        return False
    return True


# While this key exists a pump is already waiting in the send queue: clicks need not add more.
WAKE_KEY = "gotv:send:wake"
WAKE_SECONDS = 10
# A pump stops claiming after a minute (PumpSettings.run_seconds); leave it time to finish.
PUMP_TIMEOUT_SECONDS = 180


def wake_senders() -> bool:
    """Make sure a send pump will look at the outbox soon; call after the commit that queued.

    At most one pump waits in the send queue at a time: the pump clears WAKE_KEY when it starts,
    so work queued while it runs wakes one more. False when Redis is unreachable (the sweeper
    wakes a pump later).
    """
    try:
        if not redis().set(WAKE_KEY, 1, nx=True, ex=WAKE_SECONDS):
            return True
    except RedisError:
        log.warning("redis unavailable; queued messages left for the sweeper")
        return False
    return enqueue("workers.texting.pump_outbox", queue_name=SEND, job_timeout=PUMP_TIMEOUT_SECONDS)


@dataclass(frozen=True)
class FailedJob:
    """A job RQ gave up on: where, what, when, and the kind of error (not its details)."""

    queue: str
    function: str
    ended_at: datetime | None
    error: str


# `failed_jobs` of every organization, for the instance's operators (`flask failed-jobs`).
EVERY_ORGANIZATION = -1


def failed_jobs(organization_id: int, limit: int = 50) -> list[FailedJob] | None:
    """The most recent failed jobs of every queue done for the organization (or for every
    organization and none, with EVERY_ORGANIZATION); None when Redis cannot be reached.

    Only the exception's type is shown: a traceback could carry data the reader may not see.
    """
    found = []
    try:
        for name in QUEUES:
            registry = queue(name).failed_job_registry
            for job in Job.fetch_many(registry.get_job_ids(0, 10 * limit - 1), connection=redis()):
                if job is not None and organization_id in (
                    EVERY_ORGANIZATION,
                    (job.meta or {}).get("organization_id"),
                ):
                    result = job.latest_result()
                    error = ((result and result.exc_string) or "").strip().splitlines()
                    kind = error[-1].split(":")[0] if error else ""
                    found.append(FailedJob(name, job.func_name or "", job.ended_at, kind))
    except RedisError:
        return None
    return sorted(
        found, key=lambda job: job.ended_at.timestamp() if job.ended_at else 0, reverse=True
    )[:limit]


# Far more than a million-row import takes (docs/benchmarks.md): room for a slow box.
IMPORT_TIMEOUT_SECONDS = 3600


def import_job_id(import_id: int, attempt: int = 0) -> str:
    """The job of an import's first load, or of its load after `attempt` died (a job id of its
    own: RQ may still list the dead one's, until it gives up on it)."""
    return f"import-{import_id}" + (f"-{attempt}" if attempt else "")


def enqueue_import(import_id: int, organization_id: int | None = None, attempt: int = 0) -> bool:
    """Enqueue the job for a committed, queued contact import (`attempt`: loads that died)."""
    return enqueue(
        "workers.imports.import_contacts",
        import_id,
        queue_name=IMPORT,
        job_timeout=IMPORT_TIMEOUT_SECONDS,
        job_id=import_job_id(import_id, attempt),
        organization_id=organization_id,
    )


def import_job_exists(import_id: int, attempt: int = 0) -> bool:
    """True while Redis still knows the import's job (queued, running, finished or failed)."""
    return Job.exists(import_job_id(import_id, attempt), connection=redis())
