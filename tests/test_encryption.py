"""Secrets at rest: stored encrypted, read back plain, re-encrypted when the keys rotate."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from gotv import create_app, encryption
from gotv.config import ConfigError
from gotv.db import db
from tests.conftest import ENCRYPTION_KEY, config_like

NEW_KEY = "x2m2QDp6m0fM4h7Vj2o6fG1Ql3dc6lJX5n0wqz4v9gE="

# A table of our own, so the test needs no model that stores a secret.
SECRETS = sa.Table(
    "test_secret",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("value", encryption.Encrypted()),
)


@pytest.fixture
def secrets_table(app: Flask) -> Iterator[sa.Table]:
    SECRETS.create(db.session.connection())
    yield SECRETS


def stored(row_id: int) -> str:
    """The value as the database holds it, not decrypted."""
    column = sa.type_coerce(SECRETS.c.value, sa.Text)
    return str(db.session.execute(sa.select(column).where(SECRETS.c.id == row_id)).scalar_one())


def test_a_secret_is_stored_encrypted_and_read_back_plain(secrets_table: sa.Table) -> None:
    db.session.execute(secrets_table.insert().values(id=1, value="twilio-auth-token"))

    assert "twilio-auth-token" not in stored(1)
    assert db.session.execute(sa.select(secrets_table.c.value)).scalar_one() == (
        "twilio-auth-token"
    )


def test_rotating_the_keys_re_encrypts_old_secrets_with_the_new_key(
    app: Flask, secrets_table: sa.Table
) -> None:
    db.session.execute(secrets_table.insert().values(id=1, value="old secret"))
    before = stored(1)
    rotated = Flask(__name__)
    rotated.config["ENCRYPTION_KEYS"] = [NEW_KEY, ENCRYPTION_KEY]
    encryption.init_app(rotated)
    app.extensions["gotv.encryption"], original = (
        rotated.extensions["gotv.encryption"],
        app.extensions["gotv.encryption"],
    )
    try:
        first = encryption.rotate_all(db.session, [secrets_table])
        again = encryption.rotate_all(db.session, [secrets_table])
        value = db.session.execute(sa.select(secrets_table.c.value)).scalar_one()
    finally:
        app.extensions["gotv.encryption"] = original

    assert (first, again, value) == (1, 0, "old secret")
    assert stored(1) != before
    new_key_alone = encryption.Fernet(NEW_KEY.encode())
    assert new_key_alone.decrypt(stored(1).encode()) == b"old secret"


def test_the_rotate_secrets_command_runs_on_every_encrypted_table(app: Flask) -> None:
    runner: FlaskCliRunner = app.test_cli_runner()

    result = runner.invoke(args=["rotate-secrets"])

    assert result.exit_code == 0, result.output
    assert "re-encrypted 0 secrets" in result.output


def test_a_key_that_is_not_a_fernet_key_stops_startup(app: Flask) -> None:
    with pytest.raises(ConfigError, match="ENCRYPTION_KEYS: key 2 is not a Fernet key"):
        create_app(config_like(app, ENCRYPTION_KEYS=[ENCRYPTION_KEY, "not-a-key"]))
