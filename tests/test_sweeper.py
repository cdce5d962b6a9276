"""The sweeps: one worker at a time runs each, once in its interval, however many there are."""

from __future__ import annotations

import io
import threading
from collections import Counter
from datetime import timedelta

import pytest
from flask import Flask
from redis import Redis

from gotv.db import db
from gotv.edge import queue, storage
from gotv.lists import imports
from gotv.models import ContactImport, ImportMode, ImportStatus, User, utcnow
from tests.factories import make_campaign
from workers.sweeper import Sweep, sweep_once


def counting_sweeps(ran: Counter[str], every: float = 60) -> tuple[Sweep, ...]:
    return tuple(Sweep(name, every, lambda name=name: ran.update([name])) for name in ("a", "b"))


def test_ten_workers_sweeping_at_once_run_each_sweep_once_in_its_interval(app: Flask) -> None:
    redis: Redis = app.extensions["gotv.redis"]
    ran: Counter[str] = Counter()
    sweeps = counting_sweeps(ran)
    start = threading.Barrier(10)

    def worker() -> None:
        start.wait()
        for _ in range(5):  # five ticks each, well within the interval
            sweep_once(app, redis, sweeps)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert ran == {"a": 1, "b": 1}


def test_a_sweep_still_running_elsewhere_is_not_started_again(app: Flask) -> None:
    redis: Redis = app.extensions["gotv.redis"]
    ran: Counter[str] = Counter()
    held = redis.lock("gotv:sweep:a:lock", timeout=30)
    assert held.acquire(blocking=False)  # another worker's run of it, longer than its interval

    sweep_once(app, redis, counting_sweeps(ran))  # b only
    held.release()
    redis.delete("gotv:sweep:a:due")  # a's interval passes
    sweep_once(app, redis, counting_sweeps(ran))  # a only: b's interval has not

    assert ran == {"b": 1, "a": 1}


def test_a_failing_sweep_leaves_the_others_to_run(app: Flask) -> None:
    redis: Redis = app.extensions["gotv.redis"]
    ran: Counter[str] = Counter()

    def broken() -> None:
        raise RuntimeError("database unreachable")

    sweeps = (Sweep("broken", 60, broken), *counting_sweeps(ran))

    assert sweep_once(app, redis, sweeps) == ["a", "b"]


def test_the_sweeps_take_back_a_dead_workers_import_and_expire_an_abandoned_upload(
    app: Flask, organizer: User
) -> None:
    """Part of the sweeps every worker runs (workers.sweeper.SWEEPS), under the same lock: a
    second worker sweeping right after finds nothing due."""
    redis: Redis = app.extensions["gotv.redis"]
    campaign = make_campaign(organizer.organization)
    dead = imports.receive_upload(campaign, organizer, "a.csv", io.BytesIO(b"cell\n+12125550200\n"))
    imports.start(dead, dict(dead.mapping), ImportMode.APPEND, [])
    dead.status, dead.attempts = ImportStatus.RUNNING, 1  # no load holds it: its worker died
    left = imports.receive_upload(campaign, organizer, "b.csv", io.BytesIO(b"cell\n+12125550201\n"))
    left.created_at = utcnow() - timedelta(hours=25)
    db.session.commit()
    dead_id, left_id, left_key = dead.id, left.id, left.upload_key

    first = sweep_once(app, redis)
    second = sweep_once(app, redis)

    assert {"stranded_imports", "uploads"} <= set(first) and second == []
    assert status(dead_id) is ImportStatus.QUEUED and queue.import_job_exists(dead_id, 1)
    assert status(left_id) is ImportStatus.CANCELLED
    with pytest.raises(FileNotFoundError):
        storage.uploads().open(left_key)


def status(import_id: int) -> ImportStatus:
    imp = db.session.get(ContactImport, import_id)
    assert imp is not None
    return imp.status
