"""The Alembic migrations: one line of history, and a schema that matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from gotv.db import MIGRATIONS_DIR, db


def script_directory() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    return ScriptDirectory.from_config(config)


def test_the_migration_history_has_a_single_head() -> None:
    assert len(script_directory().get_heads()) == 1


def test_the_test_database_is_migrated_to_the_head() -> None:
    context = MigrationContext.configure(db.session.connection())

    assert context.get_current_heads() == tuple(script_directory().get_heads())


def test_the_migrated_schema_matches_the_models() -> None:
    # On the test's own connection: a second one would wait on SQLite's write lock.
    context = MigrationContext.configure(
        db.session.connection(), opts={"compare_type": True, "compare_server_default": True}
    )

    assert compare_metadata(context, db.metadata) == []
