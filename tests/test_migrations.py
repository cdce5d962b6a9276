"""The Alembic migrations: one line of history, a schema that matches the models, and every
migration down and up again on both databases."""

from __future__ import annotations

import ast
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask

from gotv import create_app, encryption
from gotv.db import MIGRATIONS_DIR, db
from tests.conftest import config_like
from tests.fault_support import private_app


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


# Tables that may hold millions of rows, or take writes all the time: an index built on one
# without CONCURRENTLY would hold its writes for the whole build (CONTRIBUTING.md, Migrations).
BIG_TABLES = {
    "message",
    "contact",
    "opt_out",
    "import_rejection",
    "audit_event",
    "contact_import",
    "contact_tag",
    "survey_answer",
    "message_media",
}
# Migrations before this one ran before the rule: on the databases that ran them they are
# history, and on a new database their tables are empty.
FIRST_HELD_TO_IT = 16


def test_indexes_on_big_tables_are_built_concurrently() -> None:
    plain = [
        f"{path.name}: {table}"
        for path in sorted(Path(MIGRATIONS_DIR, "versions").glob("*.py"))
        if int(path.name[:4]) >= FIRST_HELD_TO_IT
        for table in plain_index_tables(ast.parse(path.read_text(encoding="utf-8")))
        if table in BIG_TABLES
    ]

    assert plain == []


def plain_index_tables(tree: ast.Module) -> list[str]:
    """The tables of every op.create_index / batch_op.create_index in a migration (the tables
    gotv.db.create_index_concurrently indexes are not among them)."""
    tables = []
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            batch = [
                item.context_expr.args[0]
                for item in node.items
                if isinstance(item.context_expr, ast.Call)
                and isinstance(item.context_expr.func, ast.Attribute)
                and item.context_expr.func.attr == "batch_alter_table"
            ]
            for table in batch:
                tables += [
                    str(ast.literal_eval(table))
                    for inner in node.body
                    for call in ast.walk(inner)
                    if is_call_of(call, "create_index")
                ]
        elif is_call_of(node, "create_index") and isinstance(node, ast.Call):
            receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
            if isinstance(receiver, ast.Name) and receiver.id == "op" and len(node.args) > 1:
                tables.append(str(ast.literal_eval(node.args[1])))
    return tables


def is_call_of(node: ast.AST, method: str) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == method
    )


def test_every_migration_downgrades_to_the_base_and_upgrades_again_to_the_same_schema(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One revision at a time, down to nothing and up again, on a database of its own; the
    schema at the end is the one the migrations first built, triggers included (a table
    rebuilt on SQLite loses its triggers), and matches the models."""
    revisions = [script.revision for script in script_directory().walk_revisions()][::-1]
    with private_app(app, tmp_path, monkeypatch):
        built = schema()
        for _ in revisions:
            flask_migrate.downgrade(revision="-1")
        emptied = schema()
        for revision in revisions:
            flask_migrate.upgrade(revision=revision)
        rebuilt = schema()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            differences = compare_metadata(context, db.metadata)

    assert {key.split()[-1] for key in emptied} == {"alembic_version"}
    assert rebuilt == built
    assert differences == []
    assert {"trigger campaign_tally_insert", "trigger campaign_tally_update"} <= set(built)


def schema() -> dict[str, object]:
    """The database's tables, columns, indexes, foreign keys and triggers, comparable."""
    shape: dict[str, object] = {}
    with db.engine.connect() as connection:
        inspector = sa.inspect(connection)
        for table in inspector.get_table_names():
            shape[f"table {table}"] = True
            shape[f"columns {table}"] = [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ]
            shape[f"indexes {table}"] = sorted(
                (i["name"] or "", tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            )
            shape[f"foreign keys {table}"] = sorted(
                (f["name"] or "", tuple(f["constrained_columns"]), f["referred_table"])
                for f in inspector.get_foreign_keys(table)
            )
        for name, definition in triggers(connection):
            shape[f"trigger {name}"] = definition
    return shape


def triggers(connection: sa.Connection) -> list[tuple[str, str]]:
    if connection.dialect.name == "sqlite":
        found = connection.execute(
            sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        )
    else:
        found = connection.execute(
            sa.text(
                "SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t"
                " JOIN pg_class c ON c.oid = t.tgrelid"
                " WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
            )
        )
    return [(str(name), str(definition)) for name, definition in found]


def test_two_step_secrets_are_encrypted_on_the_way_up_and_decrypted_on_the_way_down(
    app: Flask, tmp_path: Path
) -> None:
    """On a database of its own (SQLite; scripts/test runs the same on PostgreSQL at startup)."""
    own = create_app(config_like(app, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/m.db"))
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    before = script_directory().get_revision("0018").down_revision
    assert isinstance(before, str)
    with own.app_context():
        flask_migrate.upgrade(revision=before)
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO organization (name, created_at, help_text)"
                    " VALUES ('O', '2026-01-01', 'h')"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO user (organization_id, email, name, password_hash, role,"
                    " created_at, totp_secret) VALUES (1, 'a@b.test', 'A', 'x', 'owner',"
                    " '2026-01-01', :secret)"
                ),
                {"secret": secret},
            )
        flask_migrate.upgrade(revision="0018")
        stored = stored_secret()
        flask_migrate.downgrade(revision=before)
        plain_again = stored_secret()
        db.engine.dispose()

    assert stored != secret and encryption.decrypt(stored) == secret
    assert plain_again == secret


def stored_secret() -> str:
    with db.engine.connect() as connection:
        value: str = connection.execute(sa.text("SELECT totp_secret FROM user")).scalar_one()
        return value
