"""The upload store: one contract for its three kinds, and uploads read across "hosts".

Every store is tested for real: the local folder, PostgreSQL (when the tests run on it), and an
S3-compatible server (moto's, which scripts/test starts and names in GOTV_TEST_S3_URL).
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gotv import create_app
from gotv.config import ConfigError, from_environment
from gotv.db import db
from gotv.edge import storage
from gotv.lists import imports
from gotv.models import Contact, ContactImport, ImportStatus, Role, utcnow
from tests.conftest import config_like, csrf_token, login, run_jobs
from tests.factories import make_campaign, make_org, make_user
from tests.fault_support import private_app

S3_URL = os.environ.get("GOTV_TEST_S3_URL")
VOTERS = "first_name,cell,zip\nAnn,602-555-0201,85001\nBob,602-555-0202,85001\n"


def s3_settings(bucket: str) -> dict[str, Any]:
    return {
        "UPLOAD_STORAGE": "s3",
        "UPLOAD_S3_BUCKET": bucket,
        "UPLOAD_S3_ENDPOINT_URL": S3_URL,
        "UPLOAD_S3_REGION": "us-east-1",
        "UPLOAD_S3_ACCESS_KEY_ID": "test",
        "UPLOAD_S3_SECRET_ACCESS_KEY": "test",
    }


@pytest.fixture(scope="module")
def s3_bucket() -> str:
    """A bucket of this module's own on the S3-compatible test server."""
    if not S3_URL:
        pytest.skip("GOTV_TEST_S3_URL names no S3-compatible server (scripts/test starts one)")
    bucket = f"gotv-test-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", **s3_client_settings())
    client.create_bucket(Bucket=bucket)
    return bucket


def s3_client_settings() -> dict[str, Any]:
    return {
        "endpoint_url": S3_URL,
        "region_name": "us-east-1",
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
    }


def database_store_settings(app: Flask) -> dict[str, Any]:
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("the database store keeps uploads in PostgreSQL")
    return {"UPLOAD_STORAGE": "database"}


@pytest.fixture(params=["local", "database", "s3"])
def store_settings(request: pytest.FixtureRequest, app: Flask, tmp_path: Path) -> dict[str, Any]:
    if request.param == "database":
        return database_store_settings(app)
    if request.param == "s3":
        return s3_settings(request.getfixturevalue("s3_bucket"))
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("the local folder store is for the embedded SQLite setup only")
    return {"UPLOAD_STORAGE": "local", "UPLOAD_DIR": str(tmp_path)}


@pytest.fixture
def store_app(app: Flask, store_settings: dict[str, Any]) -> Iterator[Flask]:
    """An app like the test app, its uploads in the store under test."""
    other = create_app(config_like(app, **store_settings))
    with other.app_context():
        yield other
    storage.dispose(other)


@pytest.fixture
def store(store_app: Flask) -> storage.Uploads:
    return storage.uploads()


def every_key(store: storage.Uploads) -> set[str]:
    return set(store.saved_before(utcnow() + timedelta(minutes=5)))


# --- The contract --------------------------------------------------------------------------


def test_a_saved_upload_reads_back_whole_in_pieces_and_counts_what_was_read(
    store: storage.Uploads,
) -> None:
    data = os.urandom(storage.CHUNK_BYTES * 2 + 12345)  # three chunks, the last one short
    key = store.save(io.BytesIO(data))

    with store.open(key) as stream:
        first = stream.read(1000)
        after_first = stream.tell()
        rest = stream.read()

    assert first + rest == data
    assert after_first == 1000
    store.delete(key)


def test_a_deleted_or_unknown_upload_cannot_be_opened_and_deleting_again_is_quiet(
    store: storage.Uploads,
) -> None:
    key = store.save(io.BytesIO(b"a,b\n"))

    store.delete(key)
    store.delete(key)

    for missing in (key, "never-saved.upload"):
        with pytest.raises(FileNotFoundError):
            store.open(missing)


def test_uploads_are_listed_by_when_they_were_saved(store: storage.Uploads) -> None:
    key = store.save(io.BytesIO(b"a,b\n"))

    assert key in store.saved_before(utcnow() + timedelta(minutes=1))
    assert key not in store.saved_before(utcnow() - timedelta(minutes=1))
    store.delete(key)


class Broken(io.RawIOBase):
    """A stream that gives 3 MB and then fails, as a dropped connection does."""

    def __init__(self) -> None:
        self.given = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.given >= 3 * 1024 * 1024:
            raise ConnectionResetError("the client went away")
        buffer[: len(buffer)] = b"x" * len(buffer)
        self.given += len(buffer)
        return len(buffer)


def test_an_upload_cut_short_leaves_nothing_stored(store: storage.Uploads) -> None:
    before = every_key(store)

    with pytest.raises(ConnectionResetError):
        store.save(io.BufferedReader(Broken()))

    assert every_key(store) == before


# --- Choosing the store --------------------------------------------------------------------

REQUIRED = {
    "SECRET_KEY": "s",
    "ENCRYPTION_KEYS": "7eNhgs-o2TXQ6xDvfXWsVL1Jb38-2C8nqjRq2XRtN8s=",
    "REDIS_URL": "redis://r",
    "PUBLIC_URL": "https://p",
    "TWILIO_ACCOUNT_SID": "AC1",
    "TWILIO_AUTH_TOKEN": "t",
    "TWILIO_FROM_NUMBER": "+15005550006",
}


def test_postgresql_keeps_uploads_in_the_database_and_sqlite_in_a_folder_by_default() -> None:
    on_postgres = from_environment({**REQUIRED, "DATABASE_URL": "postgres://h/db"})
    on_sqlite = from_environment({**REQUIRED, "DATABASE_URL": "sqlite:////tmp/x.db"})

    assert on_postgres["UPLOAD_STORAGE"] == "database"
    assert on_sqlite["UPLOAD_STORAGE"] == "local"
    assert on_postgres["UPLOAD_EXPIRY_HOURS"] == 24


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"UPLOAD_STORAGE": "local"}, "only the embedded SQLite setup"),
        ({"UPLOAD_STORAGE": "s3"}, "needs UPLOAD_S3_BUCKET"),
        ({"UPLOAD_STORAGE": "disk"}, "must be one of database, s3, local"),
    ],
)
def test_a_store_some_host_could_not_read_is_refused_at_startup(
    settings: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint):
        from_environment({**REQUIRED, "DATABASE_URL": "postgres://h/db", **settings})


def test_the_database_store_needs_postgresql() -> None:
    with pytest.raises(ConfigError, match="needs a PostgreSQL DATABASE_URL"):
        from_environment(
            {**REQUIRED, "DATABASE_URL": "sqlite:////tmp/x.db", "UPLOAD_STORAGE": "database"}
        )


# --- Hosts that share no disk --------------------------------------------------------------


@pytest.fixture(params=["database", "s3"])
def shared_store(request: pytest.FixtureRequest, app: Flask) -> dict[str, Any]:
    if request.param == "database":
        return database_store_settings(app)
    return s3_settings(request.getfixturevalue("s3_bucket"))


@pytest.fixture
def hosts(
    app: Flask, shared_store: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[Flask]]:
    """Three "hosts" on one database and Redis: two web apps and a worker's, each with an upload
    folder of its own that does not even exist (nothing may be read from one)."""
    with private_app(app, tmp_path, monkeypatch, **shared_store) as private:
        made = [
            create_app(
                config_like(
                    private, UPLOAD_DIR=str(tmp_path / f"host-{name}" / "uploads"), **shared_store
                )
            )
            for name in ("a", "b", "worker")
        ]
        yield made
        for host in made:
            with host.app_context():
                db.engine.dispose()
            storage.dispose(host)


def test_an_upload_taken_by_one_web_host_is_mapped_on_another_and_loaded_by_a_worker(
    hosts: list[Flask], tmp_path: Path
) -> None:
    web_a, web_b, worker = hosts
    organizer = make_user(make_org(), role=Role.OWNER)
    campaign = make_campaign(organizer.organization, name="Ward 7")
    let_go(organizer, campaign)
    on_a, on_b = web_a.test_client(), web_b.test_client()
    login(on_a, organizer)
    login(on_b, organizer)

    page = on_a.get(f"/campaigns/{campaign.id}").text
    uploaded = on_a.post(
        f"/campaigns/{campaign.id}/imports",
        data={"csrf_token": csrf_token(page), "contacts": (io.BytesIO(VOTERS.encode()), "v.csv")},
        content_type="multipart/form-data",
    )
    mapping = on_b.get(uploaded.headers["Location"])
    started = start_import(on_b, uploaded.headers["Location"], mapping.text)
    with worker.app_context():
        run_jobs(worker)
    imp = db.session.scalars(select(ContactImport)).one()
    loaded = sorted(db.session.scalars(select(Contact.first_name)))
    db.session.commit()

    assert uploaded.status_code == 302
    assert mapping.status_code == 200 and "Ann" in mapping.text and "602-555-0202" in mapping.text
    assert started.status_code == 302
    assert (imp.status, imp.loaded) == (ImportStatus.DONE, 2)
    assert loaded == ["Ann", "Bob"]
    assert not any((tmp_path / f"host-{name}").exists() for name in ("a", "b", "worker"))
    with web_a.app_context(), pytest.raises(FileNotFoundError):
        storage.uploads().open(imp.upload_key)  # deleted once loaded


def let_go(*objects: Any) -> None:
    """Commit, keeping `objects` readable without a transaction: on SQLite, one left open by
    the test would hold the database's write lock while the hosts' requests need it."""
    db.session.commit()
    for thing in objects:
        db.session.refresh(thing)
        db.session.expunge(thing)
    db.session.commit()


def start_import(client: FlaskClient, url: str, page: str) -> Any:
    return client.post(
        url,
        data={
            "csrf_token": csrf_token(page),
            "cell": "cell",
            "first_name": "first_name",
            "last_name": "",
            "zip": "zip",
            "mode": "append",
        },
    )


# --- Expiry ----------------------------------------------------------------------------------


def test_an_upload_left_at_the_mapping_step_expires_and_says_why(
    app: Flask, client: FlaskClient, organizer: Any
) -> None:
    campaign = make_campaign(organizer.organization)
    waiting = imports.receive_upload(campaign, organizer, "v.csv", io.BytesIO(VOTERS.encode()))
    fresh = imports.receive_upload(campaign, organizer, "w.csv", io.BytesIO(VOTERS.encode()))
    waiting.created_at = utcnow() - timedelta(hours=25)
    db.session.commit()
    login(client, organizer)

    imports.expire_uploads(timedelta(hours=24))
    page = client.get(f"/campaigns/{campaign.id}/imports/{waiting.id}").text

    assert (waiting.status, fresh.status) == (ImportStatus.CANCELLED, ImportStatus.UPLOADED)
    assert "were not checked within 24 hours of the upload" in page
    with pytest.raises(FileNotFoundError):
        storage.uploads().open(waiting.upload_key)
    storage.uploads().open(fresh.upload_key).close()
    storage.uploads().delete(fresh.upload_key)


def test_a_stored_file_no_import_names_is_deleted_once_it_is_old(store: storage.Uploads) -> None:
    orphan = store.save(io.BytesIO(b"a,b\n"))

    imports.expire_uploads(timedelta(hours=24), now=utcnow() + timedelta(hours=23))
    store.open(orphan).close()
    imports.expire_uploads(timedelta(hours=24), now=utcnow() + timedelta(hours=25))

    with pytest.raises(FileNotFoundError):
        store.open(orphan)
