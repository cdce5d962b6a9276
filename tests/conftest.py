"""Fixtures: the real app on a real database and Redis, and the fake carrier on a real port.

GOTV_TEST_DATABASE_URL picks the database ("sqlite" for a temporary file, or a PostgreSQL URL);
GOTV_TEST_REDIS_URL the Redis server. scripts/test sets both. Every test runs inside a
transaction that is rolled back afterwards, so the code under test may commit freely.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import flask_migrate
import pytest
import sqlalchemy as sa
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue

from gotv import create_app
from gotv.db import db
from gotv.edge import queue
from gotv.fakecarrier import CarrierServer, FakeCarrier
from gotv.models import Organization, Role, User
from gotv.people import passwords
from gotv.texting import outbox, senders
from tests import factories, twilio_contract
from workers.worker import Worker

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "test-auth-token"
# Encrypts the test databases' secrets (a Fernet key; gotv/encryption.py).
ENCRYPTION_KEY = "7eNhgs-o2TXQ6xDvfXWsVL1Jb38-2C8nqjRq2XRtN8s="
FROM_NUMBER = "+15005550006"
PUBLIC_URL = "https://gotv.test"
# A Tuesday, 11:00 in New York: inside every US recipient's default texting window.
WEEKDAY_MORNING_ET = datetime.fromisoformat("2026-11-03T16:00:00+00:00")


def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("GOTV_TEST_DATABASE_URL", "sqlite")
    if url == "sqlite":
        return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "gotv.sqlite3")
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("GOTV_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def carrier_server() -> Iterator[CarrierServer]:
    """The fake carrier's HTTP server, on a free local port; tests swap in a fresh carrier."""
    with CarrierServer(FakeCarrier(ACCOUNT_SID, AUTH_TOKEN)) as server:
        yield server


@pytest.fixture
def carrier(carrier_server: CarrierServer) -> FakeCarrier:
    """A fresh fake carrier for each test, whose webhooks the test delivers itself."""
    fake = FakeCarrier(ACCOUNT_SID, AUTH_TOKEN, inbound_url=PUBLIC_URL + "/twilio/inbound")
    carrier_server.carrier = fake
    return fake


@pytest.fixture(scope="session")
def app(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, carrier_server: CarrierServer
) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "ENCRYPTION_KEYS": [ENCRYPTION_KEY],
            "SQLALCHEMY_DATABASE_URI": database_url(tmp_path_factory),
            "REDIS_URL": redis_url,
            "PUBLIC_URL": PUBLIC_URL,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": FROM_NUMBER,
            "TWILIO_API_URL": carrier_server.url,
            "DEFAULT_REGION": "US",
            # Tests send many initial texts in a row (tests/test_volunteer_screens.py puts it back).
            "SEND_MIN_GAP_MS": 0,
            # Deployed as production usually is, behind one TLS proxy that sets X-Forwarded-*
            # (the tests of an app with no proxy build one: tests/test_security.py).
            "PROXY_COUNT": 1,
        }
    )
    # An unknown email's sign-in checks a stand-in hash as costly as the users' hashes, which
    # the factories make cheap (tests/factories.py): so the stand-in is cheap too.
    passwords.STAND_IN_METHOD = factories.CHEAP_HASH
    with app.app_context():
        reset_schema()
        flask_migrate.upgrade()
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


def reset_schema() -> None:
    """Start from an empty database, so the migrations build the whole schema."""
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        else:
            metadata = sa.MetaData()
            metadata.reflect(connection)
            metadata.drop_all(connection)


@pytest.fixture(autouse=True)
def database(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test in one outer transaction, rolled back at the end (savepoints inside).

    Except the browser tests and the `committing` ones, which commit for real (and clean up).
    """
    if "browser" in request.keywords or "committing" in request.keywords:
        yield
        return
    app: Flask = request.getfixturevalue("app")
    with app.app_context():
        connection = db.engine.connect()
        transaction = connection.begin()
        original = db.session
        db.session = sa.orm.scoped_session(
            sa.orm.sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
        )
        try:
            queue.redis().flushdb()
            forget_cached_settings()
            yield
        finally:
            db.session.remove()
            db.session = original
            transaction.rollback()
            connection.close()


def forget_cached_settings() -> None:
    """Drop what a process caches of senders and accounts for a few seconds: ids come back
    between tests (each rolls back), and a cached row of the last test would answer for them."""
    senders.forget()
    outbox._limits_cache.clear()


@pytest.fixture(scope="session")
def contract() -> dict[str, Any]:
    """Twilio's OpenAPI contract for the Messages API."""
    return twilio_contract.load_contract()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def weekday_morning() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(WEEKDAY_MORNING_ET, tick=True) as traveller:
        yield traveller


@pytest.fixture
def organization() -> Organization:
    return factories.make_org(name="Vote Together")


@pytest.fixture
def organizer(organization: Organization) -> User:
    return factories.make_user(organization, name="Olivia", role=Role.OWNER)


@pytest.fixture
def volunteer(organization: Organization) -> User:
    return factories.make_user(organization, name="Val", role=Role.TEXTER)


@pytest.fixture
def other_org_organizer() -> User:
    return factories.make_user(factories.make_org(name="Elsewhere"), role=Role.OWNER)


def login(client: FlaskClient, user: User) -> None:
    """Log `user` in through the real login form (CSRF is on, as in production)."""
    page = client.get("/login")
    token = csrf_token(page.get_data(as_text=True))
    response = client.post(
        "/login",
        data={"email": user.email, "password": factories.PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def csrf_token(html: str) -> str:
    """The CSRF token from any form on a page (all of one session's tokens are valid)."""
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def take_batch(client: FlaskClient, campaign_id: int) -> None:
    """Press "Get N contacts" on the send screen, as a volunteer does before sending."""
    page = client.get(f"/texting/{campaign_id}/send").get_data(as_text=True)
    taken = client.post(f"/texting/{campaign_id}/batch", data={"csrf_token": csrf_token(page)})
    assert taken.status_code == 302


def run_jobs(app: Flask) -> None:
    """Run every queued job in this process (and this test's transaction), as a worker would."""
    connection: Redis = app.extensions["gotv.redis"]
    queues = [Queue(name, connection=connection) for name in queue.QUEUES]
    Worker(queues, connection=connection).work(burst=True)


def deliver_webhooks(client: FlaskClient, carrier: FakeCarrier) -> list[int]:
    """Post every webhook the carrier has queued to the app; returns the status codes."""
    return [
        client.post(hook.url, data=hook.params, headers=hook.headers).status_code
        for hook in carrier.take_webhooks()
    ]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and reads requests but never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for connection in accepted:
        connection.close()


def closed_port() -> int:
    """A local port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def config_like(app: Flask, **changes: Any) -> dict[str, Any]:
    """The test app's own settings with `changes`, for create_app() of a variant app."""
    keys = (
        "TESTING",
        "SECRET_KEY",
        "ENCRYPTION_KEYS",
        "SQLALCHEMY_DATABASE_URI",
        "REDIS_URL",
        "PUBLIC_URL",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_FROM_NUMBER",
        "TWILIO_API_URL",
        "DEFAULT_REGION",
        "SEND_MIN_GAP_MS",
        "PROXY_COUNT",
    )
    return {**{key: app.config[key] for key in keys}, **changes}
