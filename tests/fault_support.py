"""Servers a fault test may kill: a private Redis, a private PostgreSQL, a real worker process.

None of them is the shared development or test server: each runs on a free port of its own, so
a test can `kill -9` it or stop it without disturbing anything else, and stops it afterwards.
"""

from __future__ import annotations

import gc
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis
from redis.exceptions import RedisError

from gotv import create_app
from gotv.db import db
from gotv.edge import storage
from tests.conftest import config_like

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def wait_until(condition: Callable[[], Any], seconds: float = 10.0, what: str = "") -> Any:
    """Poll `condition` every 20 ms until it returns something truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what or condition}")
        time.sleep(0.02)


class PrivateRedis:
    """A redis-server process of our own, without persistence (as a crash would leave it)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        """Start (or restart, on the same port) and wait until it answers."""
        self.kill()  # never leave a server behind by starting another
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        connection = Redis.from_url(self.url)
        wait_until(lambda: _pings(connection), what="redis-server to answer")
        connection.close()
        return self

    def kill(self) -> None:
        """SIGKILL the server: everything it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


def _pings(connection: Redis) -> bool:
    try:
        return bool(connection.ping())
    except RedisError:
        return False


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis().start()
    yield server
    server.kill()


# --- PostgreSQL -----------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, None when there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if found and os.path.exists(os.path.join(found[-1], "initdb")):
        return Path(found[-1])
    return None


class PrivatePostgres:
    """A PostgreSQL cluster in a temporary directory on a free port, as scripts/lib.sh starts one.

    PostgreSQL refuses to run as root, so as root it runs as the `postgres` user (runuser).
    `crash()` stops it the way a power cut would (immediate shutdown, no checkpoint).
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.port = free_port()
        self.work = Path(tempfile.mkdtemp(prefix="gotv-faults-pg-"))
        os.chmod(self.work, 0o755)
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.work, "postgres")
            self.as_postgres = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://gotv@127.0.0.1:{self.port}/gotv_faults?connect_timeout=2"

    def run(self, *command: str) -> None:
        subprocess.run(
            [*self.as_postgres, *command], check=True, capture_output=True, cwd=self.work
        )

    def create(self) -> PrivatePostgres:
        self.run(str(self.bin / "initdb"), "-D", f"{self.work}/pg", "-U", "gotv", "-A", "trust")
        self.start()
        subprocess.run(
            [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "gotv"]
            + ["gotv_faults"],
            check=True,
            capture_output=True,
        )
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.work} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(
            str(self.bin / "pg_ctl"),
            "-D",
            f"{self.work}/pg",
            "-l",
            f"{self.work}/pg.log",
            "-w",
            "-o",
            options,
            "start",
        )

    def crash(self) -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", f"{self.work}/pg", "-m", "immediate", "stop")

    def remove(self) -> None:
        try:
            self.crash()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.work, ignore_errors=True)


# --- An app on a database of its own -------------------------------------------------------


@contextmanager
def private_app(
    app: Flask,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    upgrade: bool = True,
    **changes: Any,
) -> Iterator[Flask]:
    """An app like the test app on a migrated database of its own (an empty one, without
    `upgrade`), its context pushed.

    Other processes (a real worker) see what it commits, which the test's rolled-back
    transaction would hide. SQLite: a new file. PostgreSQL: a new schema in the test database
    (search_path set on every connection), dropped afterwards. `changes` may name another
    SQLALCHEMY_DATABASE_URI (a private server), used as it is.
    """
    monkeypatch.setattr(db, "session", db._make_scoped_session({}))
    url = changes.pop("SQLALCHEMY_DATABASE_URI", None)
    schema = None
    if url is None:
        url, schema = private_database_url(app, tmp_path)
    other = create_app(config_like(app, SQLALCHEMY_DATABASE_URI=url, **changes))
    try:
        with other.app_context():
            if upgrade:
                flask_migrate.upgrade()
            yield other
            db.session.remove()
    finally:
        close_every_session()
        with other.app_context():
            db.engine.dispose()
        storage.dispose(other)
        collect_orphaned_connections()
        if schema:
            drop_schema(app, schema)


def close_every_session() -> None:
    """Close the sessions other threads left in this scoped session (a server's threads, whose
    app contexts ended elsewhere): their connections are checked out, so `dispose` cannot close
    them, and they would be collected, still open, in a later test."""
    for session in list(db.session.registry.registry.values()):
        session.close()


def collect_orphaned_connections() -> None:
    """Collect, now, connections an app's engine no longer owns (a pool disposed while a
    server thread still held one): at the end of the test that made them, quietly, rather than
    as a ResourceWarning in whichever later test the garbage collector happens to run in."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def private_database_url(app: Flask, tmp_path: Path) -> tuple[str, str | None]:
    url = sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "postgresql":
        return f"sqlite:///{tmp_path / 'private.sqlite3'}", None
    schema = f"faults_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine.dispose()
    private = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return private.render_as_string(hide_password=False), schema


def drop_schema(app: Flask, schema: str) -> None:
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


# --- A real worker process ------------------------------------------------------------------


S3_SETTINGS = (
    "UPLOAD_S3_BUCKET",
    "UPLOAD_S3_PREFIX",
    "UPLOAD_S3_ENDPOINT_URL",
    "UPLOAD_S3_REGION",
    "UPLOAD_S3_ACCESS_KEY_ID",
    "UPLOAD_S3_SECRET_ACCESS_KEY",
)


def start_worker(app: Flask, *queues: str, concurrency: int = 10) -> subprocess.Popen[bytes]:
    """`python -m workers` configured like `app` through its environment, as in production."""
    config = app.config
    environment = {
        **os.environ,
        "GOTV_ENV": "production",
        "SECRET_KEY": config["SECRET_KEY"],
        "ENCRYPTION_KEYS": ",".join(config["ENCRYPTION_KEYS"]),
        "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": config["REDIS_URL"],
        "PUBLIC_URL": config["PUBLIC_URL"],
        "TWILIO_ACCOUNT_SID": config["TWILIO_ACCOUNT_SID"],
        "TWILIO_AUTH_TOKEN": config["TWILIO_AUTH_TOKEN"],
        "TWILIO_FROM_NUMBER": config["TWILIO_FROM_NUMBER"],
        "TWILIO_API_URL": config["TWILIO_API_URL"],
        "SEND_CONCURRENCY": str(concurrency),
        # Where uploads are: a worker on another host reads them from the same store.
        **{
            name: str(config[name])
            for name in ("UPLOAD_STORAGE", "UPLOAD_DIR") + S3_SETTINGS
            if config.get(name)
        },
    }
    return subprocess.Popen(
        [sys.executable, "-m", "workers", *queues],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def sigkill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait()
