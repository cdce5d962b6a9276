"""gotv.db's Raw statements (what they return, when what they write is committed, how they fail
and who hears of them) and PostgreSQL's prepared statements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from gotv.db import Raw, db
from gotv.models import Organization, User
from tests.factories import make_user

RENAME = Raw(
    sa.update(Organization)
    .where(Organization.id == sa.bindparam("id"))
    .values(name=sa.bindparam("name"))
    .returning(Organization.id, Organization.name)
)


@pytest.fixture
def committed_organization(app: Flask) -> Iterator[int]:
    """An organization committed for real (the test runs outside any test transaction)."""
    with app.app_context():
        with db.engine.begin() as connection:
            organization_id = connection.execute(
                sa.insert(Organization).values(name="Before").returning(Organization.id)
            ).scalar_one()
        yield organization_id
        db.session.remove()
        with db.engine.begin() as connection:
            connection.execute(sa.delete(Organization).where(Organization.id == organization_id))


def name_seen_elsewhere(organization_id: int) -> str:
    """The organization's name as another connection sees it: only what was committed."""
    with db.engine.connect() as connection:
        return str(
            connection.execute(
                sa.select(Organization.name).where(Organization.id == organization_id)
            ).scalar_one()
        )


@pytest.mark.committing
def test_a_raw_statement_alone_is_committed_when_it_returns(
    app: Flask, committed_organization: int
) -> None:
    with app.app_context():
        row = RENAME.first({"id": committed_organization, "name": "After"}, alone=True)

        assert (row.id, row.name) == (committed_organization, "After")
        assert name_seen_elsewhere(committed_organization) == "After"
        db.session.remove()


@pytest.mark.committing
def test_a_raw_statement_in_a_transaction_waits_for_the_session_to_commit(
    app: Flask, committed_organization: int
) -> None:
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            pytest.skip("SQLite's every transaction takes the write lock: none can look meanwhile")
        RENAME.first({"id": committed_organization, "name": "After"})
        before_commit = name_seen_elsewhere(committed_organization)
        db.session.commit()

        assert (before_commit, name_seen_elsewhere(committed_organization)) == ("Before", "After")
        db.session.remove()


def test_a_raw_statement_returns_named_rows_and_fills_in_the_values_it_holds(
    app: Flask,
) -> None:
    organization = Organization(name="Ward 7")
    db.session.add(organization)
    db.session.flush()
    named = Raw(
        sa.select(Organization.id, Organization.name).where(
            Organization.name == "Ward 7", Organization.id == sa.bindparam("id")
        )
    )

    assert named.rows({"id": organization.id}) == [(organization.id, "Ward 7")]
    assert named.first({"id": organization.id}).name == "Ward 7"
    assert named.first({"id": -1}) is None


def test_statements_postgresql_prepared_outlive_a_rollback(app: Flask) -> None:
    """A request that writes nothing ends with a rollback: the busy statements stay prepared."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("prepared statements are PostgreSQL's")
        statement = sa.select(Organization.id).where(Organization.id == sa.bindparam("id"))
        prepared = sa.text("SELECT count(*) FROM pg_prepared_statements")
        with db.engine.connect() as connection:
            for _ in range(6):  # (psycopg prepares a statement at its fifth run)
                connection.execute(statement, {"id": 1}).all()
            connection.rollback()

            assert connection.execute(prepared).scalar_one() >= 1
            connection.rollback()


RENAME_USER = Raw(
    sa.update(User).where(User.id == sa.bindparam("id")).values(email=sa.bindparam("new_email"))
)


def test_a_raw_statement_breaking_a_unique_constraint_raises_sqlalchemys_integrity_error(
    app: Flask,
) -> None:
    with app.app_context():
        taken, renamed = make_user(), make_user()

        with pytest.raises(sa.exc.IntegrityError):
            RENAME_USER.rows({"id": renamed.id, "new_email": taken.email})
        db.session.rollback()


def test_the_engines_statement_listeners_hear_of_raw_statements(app: Flask) -> None:
    with app.app_context():
        heard: list[str] = []

        def listen(*args: object) -> None:
            heard.append(str(args[2]))

        sa.event.listen(db.engine, "before_cursor_execute", listen)
        try:
            RENAME.rows({"id": 0, "name": "Nobody"})
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", listen)

        # (and the test's savepoint, which the session opens first)
        assert [sql for sql in heard if not sql.startswith("SAVEPOINT")] == [heard[-1]]
        assert heard[-1].startswith("UPDATE organization SET name=")


def test_listeners_keep_what_they_like_on_a_raw_statements_context_from_before_to_after(
    app: Flask,
) -> None:
    """As Sentry's SQLAlchemy integration does with its spans (it failed on every Raw
    statement once Sentry was set up, when the context was None)."""
    with app.app_context():
        spans: list[tuple[str, str]] = []

        def before(*args: Any) -> None:
            context = args[4]
            context.span = context.dialect.paramstyle

        def after(*args: Any) -> None:
            spans.append((args[2], args[4].span))

        sa.event.listen(db.engine, "before_cursor_execute", before)
        sa.event.listen(db.engine, "after_cursor_execute", after)
        try:
            RENAME.rows({"id": 0, "name": "Nobody"})
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", before)
            sa.event.remove(db.engine, "after_cursor_execute", after)

        assert spans[-1][0].startswith("UPDATE organization SET name=")
        assert spans[-1][1] == db.engine.dialect.paramstyle
