"""Secrets encrypted at rest: organizations' Twilio credentials, two-step sign-in secrets.

A column of type `Encrypted` holds Fernet tokens (AES-128-CBC with HMAC-SHA256, from the
`cryptography` package) and reads back as plain text. ENCRYPTION_KEYS is a list of Fernet keys,
newest first: the first encrypts, any of them decrypts (MultiFernet). To rotate, put a new key
first and deploy, run `flask rotate-secrets` (every stored secret re-encrypted with the new
key), then drop the old key. `python -m gotv.encryption` prints a new key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app
from sqlalchemy import Dialect, Table, Text, TypeDecorator, select, type_coerce, update
from sqlalchemy.orm import Session, scoped_session

__all__ = ["Encrypted", "InvalidToken", "generate_key", "init_app", "rotate_all"]


def init_app(app: Flask) -> None:
    """Keep the app's keys (ENCRYPTION_KEYS: one or more, newest first).

    :raise ValueError: for a key that is not a Fernet key.
    """
    keys = [Fernet(key.encode()) for key in app.config["ENCRYPTION_KEYS"]]
    app.extensions["gotv.encryption"] = (MultiFernet(keys), keys[0])


def generate_key() -> str:
    """A new key, for ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode()


def _keys() -> MultiFernet:
    keys: MultiFernet = current_app.extensions["gotv.encryption"][0]
    return keys


def _newest() -> Fernet:
    newest: Fernet = current_app.extensions["gotv.encryption"][1]
    return newest


def encrypt(plain: str) -> str:
    """`plain` encrypted with the newest key."""
    return _keys().encrypt(plain.encode()).decode()


def decrypt(token: str, ttl: int | None = None) -> str:
    """The plain text of `token`, encrypted with any of the keys (and, with `ttl`, at most
    that many seconds ago).

    :raise InvalidToken: when none of the keys made it (or it was altered, or is too old).
    """
    return _keys().decrypt(token.encode(), ttl).decode()


def sealed(plain: str) -> str:
    """`plain` encrypted, for the session cookie: signed is not secret, as anyone holding the
    cookie reads what it carries."""
    return encrypt(plain)


def unsealed(token: object, ttl: int) -> str | None:
    """What `sealed` sealed at most `ttl` seconds ago; None for anything else (absent, altered,
    too old, or a value from before it was sealed)."""
    if not isinstance(token, str):
        return None
    try:
        return decrypt(token, ttl)
    except InvalidToken:
        return None


class Encrypted(TypeDecorator[str]):
    """A text column stored encrypted with the app's keys; None stays None."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else encrypt(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else decrypt(str(value))


def rotate_all(session: Session | scoped_session[Any], tables: Sequence[Table]) -> int:
    """Re-encrypt with the newest key every secret in `tables`' Encrypted columns that an
    older key made; how many. The caller commits.

    :raise InvalidToken: for a secret none of the keys made (a key dropped too soon).
    """
    keys, newest, rotated = _keys(), _newest(), 0
    for table in tables:
        for column in [c for c in table.columns if isinstance(c.type, Encrypted)]:
            stored = type_coerce(column, Text)  # the token as stored, not decrypted
            rows = session.execute(select(table.c.id, stored).where(column.is_not(None))).all()
            for row_id, token in rows:
                try:
                    newest.decrypt(token.encode())
                    continue  # made by the newest key already
                except InvalidToken:
                    pass
                again = keys.rotate(token.encode()).decode()
                session.execute(
                    update(table)
                    .where(table.c.id == row_id)
                    .values({column.name: type_coerce(again, Text)})
                )
                rotated += 1
    return rotated


if __name__ == "__main__":
    print(generate_key())
