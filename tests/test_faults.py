"""Fault runs: Redis, PostgreSQL, a worker or Twilio dying mid-send, and a full disk mid-import.

Each kills or stops a real thing (a private redis-server or PostgreSQL of its own, a real
`python -m workers` process, the fake carrier's API) and checks the three outbox promises from
the carrier's own record: every message sent, none twice, none silently lost. Time is travelled
(time_machine), not waited for, so each run takes seconds. docs/reliability.md reports them.
"""

from __future__ import annotations

import asyncio
import io
import resource
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from redis.exceptions import RedisError
from rq.job import JobStatus
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from gotv import create_app
from gotv.db import db
from gotv.edge import queue, storage
from gotv.fakecarrier import CarrierServer, FakeCarrier
from gotv.lists import imports
from gotv.models import (
    Contact,
    ContactImport,
    ContactStatus,
    ImportMode,
    ImportStatus,
    Message,
    MessageKind,
    MessageStatus,
    Role,
    User,
    utcnow,
)
from gotv.texting import outbox
from tests.conftest import closed_port, config_like, csrf_token, login, run_jobs
from tests.factories import make_campaign, make_contact, make_message, make_org, make_user
from tests.fault_support import (
    PrivatePostgres,
    PrivateRedis,
    postgres_bin,
    private_app,
    private_redis,
    sigkill,
    start_worker,
    wait_until,
)
from tests.test_imports import is_stored
from tests.test_outbox import make_sender, queued_messages, run_pump, status_of
from tests.test_webhooks import VOTER, inbound_params, post_signed
from workers.texting import pump_settings, sweep_outbox

pytestmark = pytest.mark.heavy  # (scripts/test runs these in a pass of their own)

__all__ = ["private_redis"]  # a fixture, used by name


def zone_at_noon() -> str:
    """A time zone where it is about noon now: a real worker process runs on the real clock."""
    offset = (12 - utcnow().hour + 12) % 24 - 12  # hours east of UTC, -12..11
    return f"Etc/GMT{-offset:+d}"  # Etc/GMT-9 is UTC+9 (POSIX signs)


def textable_now(volunteer: User, count: int) -> list[Message]:
    """`count` committed queued texts to contacts inside their texting window right now."""
    campaign = make_campaign(volunteer.organization)
    messages = []
    for _ in range(count):
        contact = make_contact(
            campaign,
            texter_id=volunteer.id,
            status=ContactStatus.TEXTED,
            state="",
            rule_states="",
            time_zones=zone_at_noon(),
        )
        messages.append(make_message(contact, is_initial=True))
    db.session.commit()
    return messages


def statuses_now(messages: list[Message]) -> Counter[MessageStatus]:
    """The messages' statuses as another process committed them, read in a transaction that
    ends at once: on SQLite every transaction takes the write lock (gotv/db.py), so a poll that
    kept one open would stop the worker from recording what the poll waits for."""
    query = select(Message.status).where(Message.id.in_([message.id for message in messages]))
    statuses = Counter(db.session.scalars(query))
    db.session.rollback()
    return statuses


def sent_once(carrier: FakeCarrier, messages: list[Message] | list[str]) -> tuple[int, int, int]:
    """(messages the carrier holds, numbers it got more than once, ours it never got)."""
    received = Counter(record["to"] for record in carrier.messages)
    duplicates = sum(1 for count in received.values() if count > 1)
    numbers = [m if isinstance(m, str) else m.to_number for m in messages]
    lost = sum(1 for number in numbers if number not in received)
    return len(carrier.messages), duplicates, lost


# --- Redis killed mid-send -------------------------------------------------------------------


def kill_when_carrier_holds(carrier: FakeCarrier, count: int, redis: PrivateRedis) -> None:
    """SIGKILL the private Redis (from another thread) once the carrier holds `count` sends."""

    def kill() -> None:
        assert carrier.wait_for(lambda held: len(held.messages) >= count, timeout=10)
        redis.kill()

    threading.Thread(target=kill, daemon=True).start()


def test_redis_killed_mid_send_and_restarted_loses_and_repeats_no_message(
    app: Flask,
    volunteer: User,
    carrier: FakeCarrier,
    carrier_server: CarrierServer,
    private_redis: PrivateRedis,
    monkeypatch: pytest.MonkeyPatch,
    weekday_morning: time_machine.Traveller,
) -> None:
    """300 messages from a paced sender (every claim asks Redis for tokens); redis-server gets
    SIGKILL once the carrier holds 100, with 20 requests in flight; it restarts empty on the
    same port and the sweeper wakes a pump through the real RQ job."""
    monkeypatch.setitem(app.extensions, "gotv.redis", Redis.from_url(private_redis.url))
    monkeypatch.setattr(carrier_server, "latency", 0.02)
    sender = make_sender(volunteer, "+14155550250", per_second=1000)
    messages = queued_messages(volunteer, 300, sender)

    kill_when_carrier_holds(carrier, 100, private_redis)
    with pytest.raises(RedisError):
        asyncio.run(outbox.pump(app.config, outbox.PumpSettings("https://gotv.test/s", 20)))
    sent_before_restart = len(carrier.messages)
    private_redis.start()
    assert sweep_outbox() is True
    run_jobs(app)

    assert 100 <= sent_before_restart < 300
    assert sent_once(carrier, messages) == (300, 0, 0)
    assert {status_of(message) for message in messages} == {MessageStatus.ACCEPTED}


def test_a_pump_that_loses_redis_records_the_answers_already_in_flight(
    app: Flask,
    volunteer: User,
    carrier: FakeCarrier,
    carrier_server: CarrierServer,
    private_redis: PrivateRedis,
    monkeypatch: pytest.MonkeyPatch,
    weekday_morning: time_machine.Traveller,
) -> None:
    monkeypatch.setitem(app.extensions, "gotv.redis", Redis.from_url(private_redis.url))
    monkeypatch.setattr(carrier_server, "latency", 0.3)
    sender = make_sender(volunteer, "+14155550251", per_second=1000)
    messages = queued_messages(volunteer, 20, sender)
    settings = outbox.PumpSettings("https://gotv.test/s", concurrency=8)
    kill_when_carrier_holds(carrier, 8, private_redis)

    with pytest.raises(RedisError):
        asyncio.run(outbox.pump(app.config, settings))

    statuses = Counter(status_of(message) for message in messages)
    assert statuses == {MessageStatus.ACCEPTED: 8, MessageStatus.QUEUED: 12}
    assert len(carrier.messages) == 8


# --- Twilio down, then back ------------------------------------------------------------------


def run_pumps_for(
    app: Flask, traveller: time_machine.Traveller, minutes: int, step_seconds: int, twilio: str
) -> None:
    """Run a pump every `step_seconds` of travelled time for `minutes`, against `twilio`."""
    config = {**app.config, "TWILIO_API_URL": twilio}
    for _ in range(minutes * 60 // step_seconds):
        asyncio.run(outbox.pump(config, pump_settings()))
        traveller.shift(timedelta(seconds=step_seconds))


@pytest.fixture(params=["503", "connection refused"])
def twilio_down(request: pytest.FixtureRequest, carrier: FakeCarrier, app: Flask) -> Iterator[str]:
    """Twilio's API answering 503 to everything, or refusing connections; the URL to use."""
    if request.param == "503":
        carrier.fail_all_sends(503)
        yield app.config["TWILIO_API_URL"]
        carrier.recover()
    else:
        yield f"http://127.0.0.1:{closed_port()}"


def test_twilio_down_for_ten_minutes_is_retried_with_backoff_and_sent_once_when_back(
    app: Flask,
    volunteer: User,
    carrier: FakeCarrier,
    weekday_morning: time_machine.Traveller,
    twilio_down: str,
) -> None:
    messages = queued_messages(volunteer, 20)
    confirmation = make_contact(messages[0].campaign)
    late = make_message(confirmation, kind=MessageKind.OPT_OUT_CONFIRMATION)
    db.session.commit()

    run_pumps_for(app, weekday_morning, minutes=10, step_seconds=10, twilio=twilio_down)
    attempts_while_down = [message.attempts for message in messages if refresh(message)]
    carrier.recover()
    run_pump(app)

    # Backoff 5, 15, 30, then 60 s: about 12 attempts in 10 minutes, not one every 10 s (60).
    assert set(attempts_while_down) <= {11, 12, 13}
    assert sent_once(carrier, messages) == (20, 0, 0)
    assert {status_of(message) for message in messages} == {MessageStatus.ACCEPTED}
    # An opt-out confirmation must reach the voter within 5 minutes or not at all.
    assert (status_of(late), late.refusal_reason) == (MessageStatus.REFUSED, "expired")


def test_texts_queued_before_an_outage_longer_than_an_hour_are_refused_not_sent_late(
    app: Flask,
    volunteer: User,
    carrier: FakeCarrier,
    weekday_morning: time_machine.Traveller,
) -> None:
    messages = queued_messages(volunteer, 10)
    carrier.fail_all_sends(503)

    run_pumps_for(app, weekday_morning, minutes=62, step_seconds=60, twilio=carrier_url(app))
    carrier.recover()
    run_pump(app)

    assert carrier.messages == []
    assert {(status_of(m), m.refusal_reason) for m in messages} == {
        (MessageStatus.REFUSED, "expired")
    }


def carrier_url(app: Flask) -> str:
    return str(app.config["TWILIO_API_URL"])


def refresh(message: Message) -> bool:
    db.session.refresh(message)
    return True


# --- A worker killed mid-batch ---------------------------------------------------------------


def test_a_worker_killed_mid_batch_sends_nothing_twice_and_its_claimed_messages_are_settled(
    app: Flask,
    carrier: FakeCarrier,
    carrier_server: CarrierServer,
    private_redis: PrivateRedis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real `python -m workers` with 5 requests in flight to a carrier answering in 2 s gets
    SIGKILL; a second worker takes over the queue. The 5 it held stay `sending` (Twilio may
    have them) until an organizer settles them against the carrier's list."""
    monkeypatch.setattr(carrier_server, "latency", 2.0)
    with private_app(app, tmp_path, monkeypatch, REDIS_URL=private_redis.url) as private:
        volunteer = make_user(make_org(), role=Role.TEXTER)
        messages = textable_now(volunteer, 20)
        first = start_worker(private, "send", concurrency=5)
        try:
            queue.wake_senders()
            assert carrier.wait_for(lambda held: len(held.requests) >= 5, timeout=60)
            sigkill(first)
        finally:
            sigkill(first)
        carrier_server.latency = 0.0
        second = start_worker(private, "send", concurrency=5)
        try:
            queue.wake_senders()
            assert carrier.wait_for(lambda held: len(held.messages) >= 20, timeout=60)
            # ...and their answers recorded (the pump writes them every few milliseconds).
            wait_until(
                lambda: statuses_now(messages)[MessageStatus.ACCEPTED] >= 15,
                what="the other 15 recorded",
            )
        finally:
            sigkill(second)
        claimed_by_the_dead = [m for m in messages if status_of(m) == MessageStatus.SENDING]

        with time_machine.travel(utcnow() + outbox.STUCK_AFTER + timedelta(minutes=1)):
            stuck = outbox.stuck_messages(volunteer.organization_id, utcnow())
            settled = {outbox.settle_stuck(message.id) for message in stuck}

        assert len(claimed_by_the_dead) == 5 and len(stuck) == 5
        assert settled == {MessageStatus.ACCEPTED}  # the carrier had them: not sent again
        assert sent_once(carrier, messages) == (20, 0, 0)
        assert {status_of(message) for message in messages} == {MessageStatus.ACCEPTED}


def waiting_for_work(connection: Redis) -> bool:
    """Whether some worker's connection is blocked in Redis, waiting for a job."""
    return any(client["cmd"] == "blpop" for client in connection.client_list())


def test_a_job_queued_after_a_worker_is_killed_goes_to_the_next_worker_not_the_dead_one(
    app: Flask, private_redis: PrivateRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real `python -m workers` waiting for work gets SIGKILL. Its place in the queue must go
    with it: rq's scheduler, forked from the worker, kept the worker's Redis sockets open, so
    Redis handed the next job to the dead worker's wait and the job was never run."""
    with private_app(app, tmp_path, monkeypatch, REDIS_URL=private_redis.url) as private:
        connection = queue.redis()
        worker = start_worker(private)
        try:
            wait_until(lambda: waiting_for_work(connection), 120, "the worker to wait for work")
        finally:
            sigkill(worker)
        wait_until(lambda: not waiting_for_work(connection), 10, "the dead worker's wait to end")
        job = queue.queue(queue.DEFAULT).enqueue("os.getpid")
        run_jobs(private)

        assert job.get_status(refresh=True) == JobStatus.FINISHED


def test_a_worker_told_to_stop_mid_batch_finishes_its_sends_within_the_grace_and_claims_no_more(
    app: Flask,
    carrier: FakeCarrier,
    carrier_server: CarrierServer,
    private_redis: PrivateRedis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real `python -m workers` with 5 requests in flight to a carrier answering in 2 s gets
    SIGTERM, as a platform's deploy sends it: it records those 5 answers, claims nothing more
    and exits well within 20 s; a second worker sends the rest, none twice."""
    monkeypatch.setattr(carrier_server, "latency", 2.0)
    with private_app(app, tmp_path, monkeypatch, REDIS_URL=private_redis.url) as private:
        volunteer = make_user(make_org(), role=Role.TEXTER)
        messages = textable_now(volunteer, 20)
        first = start_worker(private, "send", concurrency=5)
        try:
            queue.wake_senders()
            assert carrier.wait_for(lambda held: len(held.requests) >= 5, timeout=60)
            told = time.monotonic()
            first.send_signal(signal.SIGTERM)
            first.wait(timeout=20)
            took = time.monotonic() - told
        finally:
            sigkill(first)
        left = statuses_now(messages)
        carrier_server.latency = 0.0
        second = start_worker(private, "send", concurrency=5)
        try:
            queue.wake_senders()
            # (A worker takes seconds to start on a busy machine: wait for the sends themselves.)
            assert carrier.wait_for(lambda held: len(held.messages) >= 20, timeout=60)
            wait_until(
                lambda: statuses_now(messages)[MessageStatus.ACCEPTED] == 20,
                seconds=30,
                what="the rest recorded",
            )
        finally:
            sigkill(second)

        assert first.returncode == 0 and took < 20
        assert left == {MessageStatus.ACCEPTED: 5, MessageStatus.QUEUED: 15}
        assert sent_once(carrier, messages) == (20, 0, 0)


def test_messages_a_killed_worker_left_in_sending_are_settled_by_the_sweep(
    app: Flask, volunteer: User, carrier: FakeCarrier, weekday_morning: time_machine.Traveller
) -> None:
    """One Twilio holds (sent before the worker died) is recorded as sent, not sent again; one
    it never got goes back to the queue and is sent once."""
    held, lost = queued_messages(volunteer, 2)
    asyncio.run(outbox.pump(app.config, pump_settings(), only_ids=[held.id]))
    for message in (held, lost):
        db.session.refresh(message)
    held.status, held.twilio_sid = MessageStatus.SENDING, None  # died before recording it
    lost.status = MessageStatus.SENDING  # died before sending it
    db.session.commit()

    early = outbox.settle_abandoned(utcnow())
    weekday_morning.shift(outbox.SETTLE_AFTER + timedelta(seconds=1))
    settled = outbox.settle_abandoned(utcnow())
    run_pump(app)

    assert (early, settled) == (0, 2)
    assert sent_once(carrier, [held, lost]) == (2, 0, 0)
    assert {status_of(held), status_of(lost)} == {MessageStatus.ACCEPTED}


# --- A full disk during an import ------------------------------------------------------------

FILE_LIMIT = 64 * 1024


@contextmanager
def disk_full_after(limit: int) -> Iterator[None]:
    """Writes past `limit` bytes into any file fail, as on a disk with that much room left.

    RLIMIT_FSIZE makes the kernel refuse the write (EFBIG where a full disk gives ENOSPC; gotv
    treats both alike), with SIGXFSZ ignored so the process gets the error instead of dying.
    Only the soft limit is lowered, so it can be raised back. Mounting a tiny tmpfs would need
    privileges the test suite does not assume.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def big_list(rows: int, cell: str = "602-555-{:04d}") -> bytes:
    lines = ["first_name,cell,zip"] + [
        f"Voter{n:05d}-{'x' * 30},{cell.format(n % 10000)},85001" for n in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def test_an_upload_onto_a_full_disk_is_refused_with_a_clear_message_and_leaves_nothing(
    client: FlaskClient, organizer: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local folder store (the embedded SQLite setup) writes uploads on this host's disk;
    the others send them to PostgreSQL or S3, whose full disks are theirs to report."""
    if storage.storage_kind(client.application.config) != "local":
        pytest.skip("only the local folder store writes an upload to this host's disk")
    monkeypatch.setitem(client.application.config, "UPLOAD_DIR", str(tmp_path / "uploads"))
    campaign = make_campaign(organizer.organization)
    make_contact(campaign, cell="+12125550200")
    db.session.commit()
    login(client, organizer)
    page = client.get(f"/campaigns/{campaign.id}").text

    with disk_full_after(FILE_LIMIT):
        response = client.post(
            f"/campaigns/{campaign.id}/imports",
            data={
                "csrf_token": csrf_token(page),
                "contacts": (io.BytesIO(big_list(3000)), "v.csv"),
            },
            content_type="multipart/form-data",
        )
    shown = client.get(response.headers["Location"]).text

    assert response.status_code == 302
    assert "disk is full, so the list could not be stored and nothing was imported" in shown
    assert db.session.scalar(select(func.count()).select_from(ContactImport)) == 0
    assert cells_of(campaign.id) == ["+12125550200"]
    assert list((tmp_path / "uploads").iterdir()) == []


def test_a_disk_filling_up_during_an_import_fails_it_cleanly_and_loads_nothing(
    app: Flask, client: FlaskClient, organizer: User, tmp_path: Path
) -> None:
    """On PostgreSQL the loader spools rejected rows to a temporary file while it COPYs the
    contacts; a full disk fails that write mid-load. (SQLite's loader writes no file of its
    own: a full disk there is the database's own error, which the same handler reports.)"""
    if db.session.get_bind().dialect.name != "postgresql":
        pytest.skip("only the PostgreSQL loader writes a temporary file during the load")
    campaign = make_campaign(organizer.organization)
    make_contact(campaign, cell="+12125550200")
    imp = imports.receive_upload(
        campaign, organizer, "v.csv", io.BytesIO(big_list(4000, cell="555-{:04d}"))
    )
    imports.start(imp, dict(imp.mapping), ImportMode.REPLACE, [])
    db.session.commit()

    with disk_full_after(FILE_LIMIT):
        imports.run(imp.id)
    db.session.refresh(imp)
    login(client, organizer)
    page = client.get(f"/campaigns/{campaign.id}/imports/{imp.id}").text

    assert imp.status is ImportStatus.FAILED
    assert "ran out of disk space while importing, so nothing was loaded" in page
    assert cells_of(campaign.id) == ["+12125550200"]  # REPLACE's deletes rolled back too
    assert not is_stored(imp)


def cells_of(campaign_id: int) -> list[str]:
    return sorted(
        db.session.scalars(select(Contact.cell).where(Contact.campaign_id == campaign_id))
    )


# --- PostgreSQL restarted mid-send -----------------------------------------------------------


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
    server = PrivatePostgres(bin_dir).create()
    yield server
    server.remove()


def crash_when_carrier_holds(carrier: FakeCarrier, count: int, server: PrivatePostgres) -> None:
    def crash() -> None:
        assert carrier.wait_for(lambda held: len(held.messages) >= count, timeout=10)
        server.crash()

    threading.Thread(target=crash, daemon=True).start()


def test_postgresql_restarted_mid_send_answers_503_meanwhile_and_loses_or_repeats_nothing(
    app: Flask,
    carrier: FakeCarrier,
    carrier_server: CarrierServer,
    private_postgres: PrivatePostgres,
    private_redis: PrivateRedis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Runs in both passes, on a PostgreSQL server of its own (initdb in a temporary directory,
    as scripts/lib.sh does), because the test must stop the server under the app; the shared
    test database cannot be stopped. 60 messages; the server crashes (immediate shutdown) once
    the carrier holds 20, with 10 requests in flight whose answers cannot be recorded."""
    monkeypatch.setattr(carrier_server, "latency", 0.2)
    changes = {"SQLALCHEMY_DATABASE_URI": private_postgres.url, "REDIS_URL": private_redis.url}
    with private_app(app, tmp_path, monkeypatch, **changes) as private:
        organizer = make_user(make_org(), role=Role.OWNER)
        volunteer = make_user(organizer.organization, role=Role.TEXTER)
        messages = textable_now(volunteer, 60)
        ids, numbers = [m.id for m in messages], [m.to_number for m in messages]
        organization_id = organizer.organization_id
        web = create_app(config_like(private))  # the web process: an app of its own
        client = web.test_client()
        login(client, organizer)

        crash_when_carrier_holds(carrier, 20, private_postgres)
        with pytest.raises(OperationalError):
            asyncio.run(outbox.pump(private.config, outbox.PumpSettings("https://gotv.test/s", 10)))
        db.session.remove()
        down_page = client.get("/campaigns")
        down_webhook = post_signed(client, "/twilio/inbound", inbound_params(From=VOTER))
        with pytest.raises(OperationalError):  # the sweeper logs this and tries again in 5 s
            sweep_outbox()
        db.session.remove()

        private_postgres.start()
        carrier_server.latency = 0.0
        up_page = client.get("/campaigns")
        retried_webhook = post_signed(client, "/twilio/inbound", inbound_params(From=VOTER))
        assert sweep_outbox() is True
        run_jobs(private)
        with time_machine.travel(utcnow() + outbox.STUCK_AFTER + timedelta(minutes=1)):
            stuck = outbox.stuck_messages(organization_id, utcnow())
            settled = Counter(outbox.settle_stuck(message.id) for message in stuck)
        final = Counter(db.session.scalars(select(Message.status).where(Message.id.in_(ids))).all())
        replies = db.session.scalar(select(func.count()).where(Message.from_number == VOTER))
        with web.app_context():
            db.engine.dispose()

    assert (down_page.status_code, down_webhook.status_code) == (503, 503)
    assert "gotv can't reach its database right now" in down_page.text
    assert (up_page.status_code, retried_webhook.status_code) == (200, 200)
    assert settled == {MessageStatus.ACCEPTED: len(stuck)} and len(stuck) > 0
    assert final == {MessageStatus.ACCEPTED: 60}
    assert sent_once(carrier, numbers) == (60, 0, 0)
    assert replies == 1
