"""Imports survive their worker: a load killed mid-way is rolled back and taken back by the
sweep (loaded again, or ended saying to start again), and Cancel stops a running load.

The sweep's half is `imports.recover_stranded` (workers.imports.recover_imports). The fault runs
use real `python -m workers` processes, killed with SIGKILL mid-load, or told to stop with
SIGTERM (the load then hands its import back). To reach one mid-load, not before or after, the
load is held up on purpose, never timed: on PostgreSQL one of the list's numbers is being added
to the campaign by another transaction, so the load's COPY waits on that row's lock (or, to
stop it before its rows, the opt-out table is locked); on SQLite (whose uploads are files) the
stored file is a pipe the test writes the first rows into, and the load waits for the rest.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from rq import Worker
from rq.job import Job, JobStatus
from sqlalchemy import func, insert, select

from gotv.db import db
from gotv.edge import queue, storage
from gotv.lists import imports
from gotv.models import (
    Campaign,
    Contact,
    ContactImport,
    ImportMode,
    ImportRejection,
    ImportStatus,
    Role,
    User,
)
from tests.conftest import csrf_token, login, run_jobs
from tests.factories import make_campaign, make_contact, make_org, make_user
from tests.fault_support import (
    PrivateRedis,
    private_app,
    private_redis,
    sigkill,
    start_worker,
    wait_until,
)
from tests.test_storage import let_go
from workers.imports import recover_imports

pytestmark = pytest.mark.heavy  # (scripts/test runs these in a pass of their own)

__all__ = ["private_redis"]  # a fixture, used by name

ROWS = 20_000
HELD_AT = 12_000  # the row the load waits at
WORKER_STARTS = 180.0  # seconds a worker process may take to start on a busy machine


def voter_file(rows: int = ROWS) -> bytes:
    lines = ["first_name,cell,zip"]
    lines += [f"Voter{n},{cell(n)},85001" for n in range(rows)]
    lines.append("Nobody,555-12,85001")  # one rejected row, to show rejections load once too
    return ("\n".join(lines) + "\n").encode()


def cell(n: int) -> str:
    """The n-th voter's number (exchange 556: 555-0100 to 0199 are fictional, never loaded)."""
    return f"+1{(602, 480, 520)[n // 10000]}556{n % 10000:04d}"


def count(model: type, *where: object) -> int:
    number = db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0
    db.session.commit()  # (SQLite: a transaction left open holds the database's write lock)
    return number


def status_of(import_id: int) -> ContactImport:
    imp = db.session.get(ContactImport, import_id)
    assert imp is not None
    db.session.refresh(imp)
    db.session.commit()
    return imp


# --- The sweep, in this process -------------------------------------------------------------


@pytest.fixture
def campaign(organizer: User) -> Campaign:
    return make_campaign(organizer.organization)


def stranded(campaign: Campaign, organizer: User, **columns: object) -> ContactImport:
    """An import left RUNNING by a worker that died (no load holds it)."""
    imp = imports.receive_upload(campaign, organizer, "v.csv", io.BytesIO(voter_file(3)))
    imports.start(imp, dict(imp.mapping), ImportMode.APPEND, [])
    imp.status = ImportStatus.RUNNING
    imp.attempts = 1
    for name, value in columns.items():
        setattr(imp, name, value)
    db.session.commit()
    return imp


def test_a_running_import_whose_worker_died_is_queued_again_and_loads_once(
    app: Flask, campaign: Campaign, organizer: User
) -> None:
    imp = stranded(campaign, organizer)

    taken = recover_imports()
    queued = imp.status
    job_queued = queue.import_job_exists(imp.id, attempt=1)
    imports.run(imp.id)

    assert (taken, queued, job_queued) == (1, ImportStatus.QUEUED, True)
    assert (imp.status, imp.loaded, imp.attempts) == (ImportStatus.DONE, 3, 2)
    assert count(Contact, Contact.campaign_id == campaign.id) == 3


def test_an_import_whose_loads_keep_dying_ends_failed_saying_to_start_again(
    campaign: Campaign, organizer: User
) -> None:
    imp = stranded(campaign, organizer, attempts=imports.MAX_ATTEMPTS)

    recover_imports()

    assert imp.status is ImportStatus.FAILED
    assert "upload the list again to start it again" in imp.error
    with pytest.raises(FileNotFoundError):
        storage.uploads().open(imp.upload_key)


def test_a_cancel_asked_of_an_import_whose_worker_died_cancels_it(
    campaign: Campaign, organizer: User
) -> None:
    imp = stranded(campaign, organizer)
    imports.request_cancel(imp)  # Redis takes it: nothing is written to the row
    db.session.commit()

    recover_imports()

    assert imp.status is ImportStatus.CANCELLED


def test_a_cancel_kept_in_the_database_while_redis_was_down_is_passed_on_to_the_load(
    campaign: Campaign, organizer: User
) -> None:
    """The load reads cancels from Redis (its connection is busy with the load); one that could
    only be written to the row is passed on by the sweep."""
    imp = stranded(campaign, organizer, cancel_requested=True)

    imports.relay_cancels()

    assert imports.cancel_requested(imp.id)


# --- Real workers, killed mid-load -----------------------------------------------------------


@pytest.fixture
def private(
    app: Flask, private_redis: PrivateRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    with private_app(app, tmp_path, monkeypatch, REDIS_URL=private_redis.url) as made:
        yield made


def on_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


@contextmanager
def held_mid_load(
    private: Flask, campaign_id: int, imp: ContactImport, before_rows: bool = False
) -> Iterator[object]:
    """Hold the import's load at row HELD_AT until the block ends (see the module); inside it,
    the yielded function says whether the load is waiting there. `before_rows` (PostgreSQL):
    hold it once its transaction has begun (REPLACE's deletes done), before its first row."""
    if on_postgresql():
        with db.engine.connect() as other:
            if before_rows:
                other.exec_driver_sql("LOCK TABLE opt_out IN ACCESS EXCLUSIVE MODE")
            else:
                other.execute(insert(Contact).values(campaign_id=campaign_id, cell=cell(HELD_AT)))
            yield lambda: count_waiting("%" if before_rows else "COPY contact%") > 0
            other.rollback()
        return
    path = Path(storage.LocalUploads(private.config["UPLOAD_DIR"]).path(imp.upload_key))
    whole = path.read_bytes()
    head = b"".join(whole.splitlines(keepends=True)[: HELD_AT + 1])
    path.unlink()
    os.mkfifo(path)
    release = threading.Event()

    def feed() -> None:
        with open(path, "wb") as pipe:
            pipe.write(head)
            pipe.flush()
            release.wait(WORKER_STARTS)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    yield lambda: imports.live_numbers(imp.id).get("rows_read", 0) >= 10_000
    release.set()
    feeder.join(10)
    path.unlink()
    path.write_bytes(whole)


def count_waiting(statement: str) -> int:
    """PostgreSQL: the statements LIKE `statement` waiting on a lock."""
    waiting = db.session.scalar(
        sa.text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND query LIKE :statement"
        ),
        {"statement": statement},
    )
    db.session.commit()
    return int(waiting or 0)


def uploaded(campaign: Campaign, organizer: User, mode: ImportMode) -> ContactImport:
    imp = imports.receive_upload(campaign, organizer, "voters.csv", io.BytesIO(voter_file()))
    imports.start(imp, dict(imp.mapping), mode, [])
    db.session.commit()
    return imp


def test_an_import_whose_worker_is_killed_mid_load_is_rolled_back_then_loaded_once(
    private: Flask,
) -> None:
    organizer = make_user(make_org(), role=Role.OWNER)
    campaign = make_campaign(organizer.organization)
    imp = uploaded(campaign, organizer, ImportMode.APPEND)
    import_id, campaign_id = imp.id, campaign.id
    let_go(imp)

    with held_mid_load(private, campaign_id, imp) as waiting:
        first = start_worker(private, "import")
        try:
            queue.enqueue_import(import_id)
            wait_until(waiting, WORKER_STARTS, "the load to reach the held row")
            # On PostgreSQL the sweep passes over a live load (on SQLite it would wait for it).
            alive = recover_imports() if on_postgresql() else 0
            sigkill(first)
        finally:
            sigkill(first)
    taken = wait_until(recover_imports, 30, "the sweep to take the import back")
    after_the_kill = (
        status_of(import_id).status,
        count(Contact, Contact.campaign_id == campaign_id),
    )
    second = start_worker(private, "import")
    try:
        # The job's end (in Redis): on SQLite the load holds the database until it commits.
        wait_until(
            lambda: job_finished(queue.import_job_id(import_id, 1)), WORKER_STARTS, "the load"
        )
    finally:
        sigkill(second)
    done = status_of(import_id)

    assert alive == 0
    assert taken == 1 and after_the_kill == (ImportStatus.QUEUED, 0)
    assert (done.loaded, done.rejected, done.attempts) == (ROWS, 1, 2)
    assert count(Contact, Contact.campaign_id == campaign_id) == ROWS  # none twice
    assert count(ImportRejection, ImportRejection.import_id == import_id) == 1


def test_cancel_stops_a_running_load_and_rolls_it_back(private: Flask) -> None:
    """The organizer's button, while the load runs in a real worker (PostgreSQL: on SQLite a
    load holds the whole database, so no page answers until it ends; the same cancel then
    reaches the load through Redis, as tests/test_imports.py shows)."""
    if not on_postgresql():
        pytest.skip("on SQLite a running load holds the database: no page answers meanwhile")
    organizer = make_user(make_org(), role=Role.OWNER)
    campaign = make_campaign(organizer.organization)
    make_contact(campaign, cell="+12125550200")
    imp = uploaded(campaign, organizer, ImportMode.REPLACE)
    import_id, campaign_id = imp.id, campaign.id
    let_go(imp, organizer)
    client = private.test_client()
    login(client, organizer)
    url = f"/campaigns/{campaign_id}/imports/{import_id}"

    with held_mid_load(private, campaign_id, imp) as waiting:
        worker = start_worker(private, "import")
        try:
            queue.enqueue_import(import_id)
            wait_until(waiting, WORKER_STARTS, "the load to reach the held row")
            page = client.get(url).text
            cancelled = client.post(url + "/cancel", data={"csrf_token": csrf_token(page)})
        except BaseException:
            sigkill(worker)
            raise
    try:
        # The job's end, not the status: the load deletes the upload after committing it.
        wait_until(lambda: job_finished(queue.import_job_id(import_id)), 60, "the cancel")
    finally:
        sigkill(worker)
    shown = client.get(url).text
    cells = sorted(
        db.session.scalars(select(Contact.cell).where(Contact.campaign_id == campaign_id))
    )
    db.session.commit()

    assert cancelled.status_code == 302
    assert "Nothing from this list was loaded" in shown
    assert cells == ["+12125550200"]  # REPLACE's delete rolled back too
    assert count(ImportRejection, ImportRejection.import_id == import_id) == 0
    with pytest.raises(FileNotFoundError):
        storage.uploads().open(imp.upload_key)


# --- Real workers, told to stop mid-load ----------------------------------------------------


def test_a_load_whose_worker_is_stopping_is_rolled_back_and_queued_for_another(
    campaign: Campaign, organizer: User
) -> None:
    """The worker's STOPPING event (workers.worker), set by SIGTERM: the load stops, REPLACE's
    deletes rolled back with it, and the import is queued again under a job of its own."""
    make_contact(campaign, cell="+12125550200")
    imp = uploaded(campaign, organizer, ImportMode.REPLACE)
    stopping = threading.Event()
    stopping.set()

    imports.run(imp.id, stop=stopping)
    handed_back = (imp.status, imp.attempts, queue.import_job_exists(imp.id, attempt=1))
    cells_then = db.session.scalars(select(Contact.cell).where(Contact.campaign_id == campaign.id))
    kept = list(cells_then)
    imports.run(imp.id)  # the next worker's load

    assert handed_back == (ImportStatus.QUEUED, 1, True) and kept == ["+12125550200"]
    assert (imp.status, imp.loaded, imp.rejected, imp.attempts) == (ImportStatus.DONE, ROWS, 1, 2)
    assert count(Contact, Contact.campaign_id == campaign.id) == ROWS


def job_finished(job_id: str) -> bool:
    return Job.fetch(job_id, connection=queue.redis()).get_status() == JobStatus.FINISHED


def stop_recorded() -> bool:
    """Whether a worker has taken a SIGTERM (RQ records it once its job is told to stop)."""
    return any(worker.shutdown_requested_date for worker in Worker.all(connection=queue.redis()))


def test_a_worker_told_to_stop_mid_load_hands_the_import_back_and_exits_in_time(
    private: Flask,
) -> None:
    """SIGTERM, as a deploy sends it, to a real worker mid-load (SQLite: 12,000 rows read,
    two chunks written; PostgreSQL: REPLACE's deletes done): it rolls the load back, queues the
    import again and exits within 20 s; the job it queued loads every row once."""
    organizer = make_user(make_org(), role=Role.OWNER)
    campaign = make_campaign(organizer.organization)
    make_contact(campaign, cell="+12125550200")
    imp = uploaded(campaign, organizer, ImportMode.REPLACE)
    import_id, campaign_id = imp.id, campaign.id
    let_go(imp)

    with held_mid_load(private, campaign_id, imp, before_rows=True) as waiting:
        first = start_worker(private, "import")
        try:
            queue.enqueue_import(import_id)
            wait_until(waiting, WORKER_STARTS, "the load to be held")
            told = time.monotonic()
            first.send_signal(signal.SIGTERM)
            wait_until(stop_recorded, 20, "the worker to take the SIGTERM")
        except BaseException:
            sigkill(first)
            raise
    try:
        first.wait(timeout=20)
        took = time.monotonic() - told
    finally:
        sigkill(first)
    handed_back = status_of(import_id)
    after_the_stop = (handed_back.status, handed_back.attempts)
    cells_then = sorted(
        db.session.scalars(select(Contact.cell).where(Contact.campaign_id == campaign_id))
    )
    db.session.commit()
    job_queued = queue.import_job_exists(import_id, attempt=1)
    run_jobs(private)  # the queued job, run by a worker in this process
    done = status_of(import_id)

    assert first.returncode == 0 and took < 20
    assert after_the_stop == (ImportStatus.QUEUED, 1) and job_queued
    assert cells_then == ["+12125550200"]  # the load and REPLACE's delete rolled back
    assert (done.loaded, done.rejected, done.attempts) == (ROWS, 1, 2)
    assert count(Contact, Contact.campaign_id == campaign_id) == ROWS  # none twice
    assert count(ImportRejection, ImportRejection.import_id == import_id) == 1
