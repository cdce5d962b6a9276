"""The database handle, migrations, and SQLite settings that make it behave like a server."""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from psycopg._preparing import PrepareManager
from psycopg.pq import TransactionStatus
from sqlalchemy import (
    ClauseElement,
    CursorResult,
    Dialect,
    Engine,
    Executable,
    Insert,
    MetaData,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.compiler import SQLCompiler

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


def execute_core(
    statement: Executable, params: Mapping[str, Any]
) -> CursorResult[*tuple[Any, ...]]:
    """Run a Core statement on the session's connection, in its transaction, after flushing
    what the session holds; rows, not ORM objects.

    For the busiest requests: the same statement through the ORM costs two to several times
    the CPU. The flush keeps the ORM's promise that a statement sees every pending change (an
    opt-out just added, say); like an ORM UPDATE with synchronize_session=False, it does not
    refresh objects already loaded.
    """
    db.session.flush()
    return db.session.connection().execute(statement, params)


@cache
def insert_new(model: type[Model], *unique: str) -> Insert:
    """INSERT of one `model` row that does nothing when a row with the same `unique` columns
    exists; it returns the new row's id, or no row. Built once per model and columns.

    ON CONFLICT rather than catching the unique violation: a duplicate is ordinary here (a
    retried webhook, an opt-out recorded twice at once), PostgreSQL logs every violation as an
    error, and the savepoint that catching needs costs two more round trips. (SQLite compiles
    PostgreSQL's ON CONFLICT clause the same way.)
    """
    return (
        postgresql.insert(model)
        .on_conflict_do_nothing(index_elements=list(unique))
        .returning(model.__table__.c.id)
    )


class RawContext:
    """What the engine's statement listeners get for a Raw statement in place of SQLAlchemy's
    execution context: its dialect, and room for what a listener keeps from `before` to
    `after` (Sentry's SQLAlchemy integration keeps its span there, and reads the dialect's
    paramstyle)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect


class Raw:
    """One of the busiest statements (the webhooks', the send's), run straight on the session's
    DBAPI connection, in the session's transaction, without SQLAlchemy's work per execution.

    SQLAlchemy spends more on a statement's parameters, execution context and result wrapper
    than the round trip itself costs (docs/benchmarks.md). A Raw statement is compiled once per
    database. Its parameters go to the driver as they are, so they must be plain values (str,
    int, bool, None, an enum of str, a datetime); its rows come back as named tuples of what
    the driver returns (SQLite gives booleans as 0 and 1, and enums come back as their str).
    Unlike the ORM's queries it does not flush the session first: run it before adding objects
    whose rows it must see, or use execute_core. A unique or other constraint it breaks raises
    SQLAlchemy's IntegrityError, as execute_core would; the engine's `before_cursor_execute`
    listeners are told of it.
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, dict[str, Any]]] = {}
        # (Not the cursor's description: psycopg builds it anew, at some cost, on every call.)
        names = [column.key for column in getattr(statement, "exported_columns", ())]
        self._row: Any = namedtuple("Row", names) if names else None

    def rows(self, params: Mapping[str, Any], *, alone: bool = False) -> list[Any]:
        """Run the statement with `params` (and the values it holds itself); all its rows.

        `alone`: the statement is a transaction of its own, committed when this returns.
        When the session has sent nothing yet in its transaction (a webhook's case), the
        statement commits itself: one round trip to PostgreSQL instead of three (BEGIN, the
        statement, COMMIT), each of which costs a context switch on both sides. Otherwise the
        session commits it, with whatever else it holds.
        """
        connection = db.session.connection()
        sql, defaults = self._compile(connection.dialect)
        driver = connection.connection.driver_connection
        assert driver is not None
        autocommit = alone and _idle(driver)
        if autocommit:
            driver.autocommit = True
        parameters = {**defaults, **params}
        try:
            cursor = driver.cursor()
            # Listeners of the engine's statements (tests counting them, Sentry's spans) see
            # these too, before and after, with a context of their own to write on.
            context = RawContext(connection.dialect)
            dispatch = connection.dispatch
            dispatch.before_cursor_execute(connection, cursor, sql, parameters, context, False)
            try:
                cursor.execute(sql, parameters)
            except connection.dialect.loaded_dbapi.IntegrityError as error:
                raise IntegrityError(sql, parameters, error) from error
            finally:
                dispatch.after_cursor_execute(connection, cursor, sql, parameters, context, False)
            rows = [self._row._make(values) for values in cursor.fetchall()] if self._row else []
        finally:
            if autocommit:
                driver.autocommit = False
        if alone and not autocommit:
            db.session.commit()
        return rows

    def first(self, params: Mapping[str, Any], *, alone: bool = False) -> Any:
        """The statement's first row, or None (see `rows`)."""
        rows = self.rows(params, alone=alone)
        return rows[0] if rows else None

    def _compile(self, dialect: Dialect) -> tuple[str, dict[str, Any]]:
        if dialect.name not in self._compiled:
            if dialect.name == "sqlite":  # sqlite3 takes :name parameters from a dict
                dialect = sqlite.dialect(paramstyle="named")
            compiled = self.statement.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)
            defaults = {
                name: bind.effective_value
                for name, bind in compiled.binds.items()
                if bind.effective_value is not None
            }
            self._compiled[dialect.name] = (compiled.string, defaults)
        return self._compiled[dialect.name]


def _idle(driver: Any) -> bool:
    """True when `driver` is a PostgreSQL connection with no transaction open."""
    info = getattr(driver, "info", None)  # (psycopg's; SQLite has no round trips to save)
    return info is not None and info.transaction_status == TransactionStatus.IDLE


def init_app(app: Flask) -> None:
    """Bind the database and migrations to `app`."""
    pool_size = app.config.get("DATABASE_POOL_SIZE")
    if pool_size and not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # Requests take turns for DATABASE_POOL_SIZE; streamed downloads have a budget of their
        # own, EXPORTS_PER_PROCESS connections on top (gotv/web/admission.py).
        pool_size += app.config.get("EXPORTS_PER_PROCESS") or 0
        # (SQLite's in-memory and file engines use pools that take no size.) Python threads
        # take turns on one core, so a process rarely has more than a few queries running:
        # at most `pool_size` connections, kept open once opened, so that the Procfile's 4 web
        # processes stay well below PostgreSQL's 100. No overflow: SQLAlchemy closes an
        # overflow connection as soon as it comes back to a full pool, so a process busy
        # around its pool size would open a new PostgreSQL backend (cold caches and all) on
        # request after request. Requests take turns for the connections instead (see
        # gotv/web/admission.py); any other thread past the pool waits for one.
        options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
        options.setdefault("pool_size", pool_size)
        options.setdefault("max_overflow", 0)
    db.init_app(app)
    migrate.init_app(app, db)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine)
        elif db.engine.dialect.driver == "psycopg":
            keep_prepared_statements(db.engine)


class KeepPreparedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose prepared statements outlive a rollback.

    psycopg prepares a statement run often enough on a connection (its `prepare_threshold`),
    so PostgreSQL plans it once; but it deallocates them all at every rollback, in case the
    transaction made or dropped what they refer to. Every request that writes nothing ends
    with a rollback (the session's close), so on a web process they never lived long enough to
    be used, and each busy statement was planned anew every time (docs/benchmarks.md). gotv
    changes its schema only in migrations, which commit, so the rollback keeps them. (The
    server keeps a prepared statement across a rollback: PREPARE is not transactional.)
    """

    def rollback(self) -> None:
        kept, self._prepared = self._prepared, PrepareManager()
        try:
            super().rollback()
        finally:
            self._prepared = kept


def keep_prepared_statements(engine: Engine) -> None:
    """Connect `engine` with `KeepPreparedConnection`s."""

    @event.listens_for(engine, "do_connect")
    def connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return KeepPreparedConnection.connect(*cargs, **cparams)


def configure_sqlite(engine: Engine) -> None:
    """Make SQLite enforce foreign keys, wait on locks, and honour SAVEPOINTs.

    pysqlite begins transactions lazily on its own, which breaks SAVEPOINT (and so the test
    rollbacks); SQLAlchemy's documented fix is to disable that and emit BEGIN ourselves.
    """

    # Raw statements hand datetimes to sqlite3 itself: store them as SQLAlchemy does (UTC).
    sqlite3.register_adapter(datetime, _sqlite_timestamp)

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


def _sqlite_timestamp(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


# --- For migrations --------------------------------------------------------------------------


def create_index_concurrently(name: str, table: str, columns: list[str], **options: Any) -> None:
    """In a migration: build an index without locking writes out of the table meanwhile.

    PostgreSQL: CREATE INDEX CONCURRENTLY, which cannot run in a transaction, so in an
    autocommit block (the migration's transaction so far is committed first). A concurrent
    build cut short leaves an INVALID index of that name behind, dropped here before building.
    SQLite: a plain CREATE INDEX (never a batch rebuild, which would drop message's triggers).
    Every index on a big table (message, contact, opt_out...) is built this way
    (CONTRIBUTING.md, Migrations).
    """
    from alembic import op

    if op.get_bind().dialect.name != "postgresql":
        op.create_index(name, table, columns, **options)
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        op.create_index(name, table, columns, postgresql_concurrently=True, **options)


def drop_index_concurrently(name: str, table: str) -> None:
    """In a migration: drop an index without locking the table (see create_index_concurrently)."""
    from alembic import op

    if op.get_bind().dialect.name != "postgresql":
        op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
