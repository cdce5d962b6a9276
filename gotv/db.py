"""The database handle, migrations, and SQLite settings that make it behave like a server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, MetaData, event
from sqlalchemy.orm import DeclarativeBase

# Named constraints so Alembic can alter them on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Model(DeclarativeBase):
    """The base of every model (typed, so mypy sees the columns)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Model)
MIGRATIONS_DIR = str(Path(__file__).parent / "migrations")
migrate = Migrate(directory=MIGRATIONS_DIR, render_as_batch=True)


def init_app(app: Flask) -> None:
    """Bind the database and migrations to `app`."""
    pool_size = app.config.get("DATABASE_POOL_SIZE")
    if pool_size and not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # (SQLite's in-memory and file engines use pools that take no size.) Python threads
        # take turns on one core, so a process rarely has more than a few queries running:
        # `pool_size` kept open, half as many again at a peak, and at most 1.5 x pool_size
        # per process, so the Procfile's 4 web processes stay far below PostgreSQL's 100.
        options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
        options.setdefault("pool_size", pool_size)
        options.setdefault("max_overflow", pool_size // 2)
    db.init_app(app)
    migrate.init_app(app, db)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine)


def configure_sqlite(engine: Engine) -> None:
    """Make SQLite enforce foreign keys, wait on locks, and honour SAVEPOINTs.

    pysqlite begins transactions lazily on its own, which breaks SAVEPOINT (and so the test
    rollbacks); SQLAlchemy's documented fix is to disable that and emit BEGIN ourselves.
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
