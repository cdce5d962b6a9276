"""The sweeps: work no job asks for, done by one worker of them all at a time.

Every worker process runs a sweeper thread, so that any of them may die and the others still
sweep; but each sweep is taken by one worker only (a Redis lock), at most once in its interval
(a Redis key that expires with it), so ten workers on five hosts cost what one does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from redis import Redis
from redis.exceptions import LockError

from gotv.db import db
from workers.imports import expire_uploads, recover_imports, sweep_imports
from workers.texting import release_idle_batches, settle_abandoned, sweep_outbox

log = logging.getLogger(__name__)

# A sweep holds its lock at most this long: longer than any sweep takes, short enough that a
# worker killed mid-sweep does not hold it up for long.
LOCK_SECONDS = 120
# How often each sweeper thread looks for a sweep that is due.
TICK_SECONDS = 1.0


@dataclass(frozen=True)
class Sweep:
    name: str
    every: float  # seconds between runs, across every worker
    run: Callable[[], object]


SWEEPS = (
    # Retries come due on their own; a pump must notice within seconds, not minutes.
    Sweep("outbox", 5, sweep_outbox),
    Sweep("imports", 5, sweep_imports),
    # Imports whose worker died mid-load: loaded again, or ended saying to start again.
    Sweep("stranded_imports", 15, recover_imports),
    # Messages a dead worker left in `sending`, settled against Twilio's own list.
    Sweep("abandoned", 30, settle_abandoned),
    # Idle batches are measured in minutes.
    Sweep("batches", 60, release_idle_batches),
    # Uploads expire after hours (UPLOAD_EXPIRY_HOURS); this one lists the upload store.
    Sweep("uploads", 600, expire_uploads),
)


def sweep_once(app: Flask, redis: Redis, sweeps: tuple[Sweep, ...] = SWEEPS) -> list[str]:
    """Run every sweep that is due and that no other worker is running; their names."""
    ran = []
    for sweep in sweeps:
        if not redis.set(f"gotv:sweep:{sweep.name}:due", 1, nx=True, px=int(sweep.every * 1000)):
            continue  # swept by some worker within its interval
        lock = redis.lock(f"gotv:sweep:{sweep.name}:lock", timeout=LOCK_SECONDS)
        if not lock.acquire(blocking=False):
            continue  # a slow run of it is still going on elsewhere
        try:
            with app.app_context():
                try:
                    sweep.run()
                    ran.append(sweep.name)
                except Exception:  # a sweep must outlive a database or Redis outage
                    log.exception("sweep %s failed", sweep.name)
                finally:
                    db.session.remove()
        finally:
            try:
                lock.release()
            except LockError:
                log.warning("sweep %s outlived its lock", sweep.name)
    return ran


def sweep_forever(app: Flask, redis: Redis, stop: threading.Event) -> None:
    """Look for due sweeps every TICK_SECONDS until `stop` is set."""
    while not stop.wait(TICK_SECONDS):
        try:
            sweep_once(app, redis)
        except Exception:  # Redis unreachable: try again at the next tick
            log.exception("sweeper could not reach Redis")
