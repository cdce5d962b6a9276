"""Downloads and long requests never take the connections pages need.

A CSV download holds a database connection until its last byte; it has its own budget
(EXPORTS_PER_PROCESS slots, each a connection on top of DATABASE_POOL_SIZE; gotv/web/admission.py)
and past it answers 503 with Retry-After. A request that gets no connection in the pool's time
answers the 503 page too, not a 500. Each runs on a database of its own (`private_app`), with
the pool as small as the Procfile's would be under load, against real concurrent requests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from gotv import create_app
from gotv.db import db
from gotv.edge import storage
from gotv.models import AuditEvent, Role, User
from tests.conftest import config_like, login
from tests.factories import insert_contacts, make_api_token, make_campaign, make_org, make_user
from tests.fault_support import private_app
from tests.test_storage import let_go

POOL = {"DATABASE_POOL_SIZE": 2, "EXPORTS_PER_PROCESS": 2}


@pytest.fixture
def private(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    with private_app(app, tmp_path, monkeypatch) as made:
        yield made


def web_process(private: Flask, **changes: Any) -> Flask:
    """A web app on `private`'s database, as one process of the Procfile's web would be; a
    page waits at most 3 s for a connection (SQLAlchemy's default is 30)."""
    options = {"pool_timeout": 3, **changes.pop("SQLALCHEMY_ENGINE_OPTIONS", {})}
    return create_app(config_like(private, SQLALCHEMY_ENGINE_OPTIONS=options, **changes))


class SlowDownload:
    """A download that has sent its first piece and waits, as a slow client keeps it open, in a
    thread of its own (as a server's thread would hold it)."""

    def __init__(self, web: Flask, user: User, url: str) -> None:
        self.web, self.user, self.url = web, user, url
        self.started = threading.Event()
        self.finish = threading.Event()
        self.status = 0
        self.body = b""
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        assert self.started.wait(60), "the download did not start"

    def run(self) -> None:
        client = self.web.test_client()
        login(client, self.user)
        response = client.get(self.url, buffered=False)
        self.status = response.status_code
        self.started.set()
        self.finish.wait(60)
        self.body = response.get_data()
        response.close()

    def end(self) -> bytes:
        self.finish.set()
        self.thread.join(60)
        return self.body


def test_two_slow_downloads_leave_pages_their_connections_and_a_third_gets_503(
    private: Flask,
) -> None:
    """On PostgreSQL: on SQLite every transaction takes the database's one write lock, so
    downloads there queue behind each other anyway (the embedded setup serves one organizer)."""
    if db.session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite's downloads hold its one write lock: they queue whatever the budget")
    organizer = make_user(make_org(), role=Role.OWNER)
    campaign = make_campaign(organizer.organization)
    insert_contacts(campaign, 3000)  # a CSV of several pieces (64 KB each)
    secret = make_api_token(organizer.organization, organizer)
    let_go(organizer, campaign)
    web = web_process(private, **POOL)
    contacts = f"/campaigns/{campaign.id}/export/contacts.csv"

    first = SlowDownload(web, organizer, contacts)
    second = SlowDownload(web, organizer, f"/campaigns/{campaign.id}/export/messages.csv")
    page_client = web.test_client()
    login(page_client, organizer)
    pages = [page_client.get(f"/campaigns/{campaign.id}") for _ in range(3)]
    third = page_client.get(contacts)
    from_the_api = page_client.get(
        "/api/v1/opt-outs/export.csv", headers={"Authorization": f"Bearer {secret}"}
    )
    bodies = [first.end(), second.end()]
    after = page_client.get(contacts)
    with web.app_context():
        db.engine.dispose()
    storage.dispose(web)

    assert (first.status, second.status) == (200, 200)
    assert [page.status_code for page in pages] == [200, 200, 200]
    assert third.status_code == 503 and third.headers["Retry-After"] == "30"
    assert "Too many downloads at once" in third.text
    assert from_the_api.status_code == 503 and from_the_api.headers["Retry-After"] == "30"
    assert from_the_api.json == {
        "error": {
            "code": "downloads_busy",
            "message": "Too many downloads are running right now; try again in a minute.",
        }
    }
    assert bodies[0].count(b"\n") == 3001
    assert after.status_code == 200 and after.get_data().count(b"\n") == 3001


def test_a_page_that_gets_no_database_connection_in_time_answers_the_503_page(
    private: Flask,
) -> None:
    organizer = make_user(make_org(), role=Role.OWNER)
    secret = make_api_token(organizer.organization, organizer)
    let_go(organizer)
    web = web_process(
        private,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.5},
    )
    client = web.test_client()
    login(client, organizer)

    with web.app_context():
        held = db.engine.connect()  # the pool's only connection, held by something else
        try:
            page = client.get("/campaigns")
            api = client.get("/api/v1/campaigns", headers={"Authorization": f"Bearer {secret}"})
        finally:
            held.close()
            db.engine.dispose()
    storage.dispose(web)

    assert page.status_code == 503 and page.headers["Retry-After"] == "60"
    assert "gotv is busy right now" in page.text
    assert api.status_code == 503 and api.json is not None
    assert api.json["error"]["code"] == "busy"


def test_every_csv_route_takes_a_download_slot(app: Flask) -> None:
    csv_routes = [rule for rule in app.url_map.iter_rules() if rule.rule.endswith(".csv")]

    untaken = [
        rule.rule
        for rule in csv_routes
        if not getattr(app.view_functions[rule.endpoint], "takes_a_download_slot", False)
    ]

    assert len(csv_routes) >= 7 and untaken == []


@pytest.mark.parametrize("download", ["van-do-not-text.csv", "van-survey-responses.csv"])
def test_a_van_download_when_every_slot_is_taken_gets_503_before_it_is_audited(
    app: Flask, download: str
) -> None:
    organizer = make_user(make_org(), role=Role.OWNER)
    campaign = make_campaign(organizer.organization)
    client = app.test_client()
    login(client, organizer)
    slots = app.extensions["gotv.downloads"]
    taken = 0
    while slots.acquire(blocking=False):
        taken += 1
    try:
        response = client.get(f"/campaigns/{campaign.id}/export/{download}")
    finally:
        for _ in range(taken):
            slots.release()

    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "export")) is None
