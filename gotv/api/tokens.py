"""API tokens: create, authenticate, revoke. Plain functions on the session; callers commit.

A token reads `gotv_<prefix>_<secret>`. The prefix is public: it finds the row and is shown in
the settings list. Only the SHA-256 of the whole token is stored (the secret is 256 random bits,
so a slow password hash would add nothing), and it is compared in constant time.

A token acts with its creator's access, so it works only while its creator may use it: an
organizer (owner or admin) of the token's organization who is not suspended. Suspending the
creator, or making them a texter, stops their tokens at once; reinstating them lets the tokens
work again (revoking is what ends a token for good).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from gotv.db import db
from gotv.models import ApiToken, User, utcnow
from gotv.people import audit

TOKEN_START = "gotv_"
# Scope -> what it lets a program do, as the settings page says it.
SCOPES = {
    "campaigns:read": "Read campaigns",
    "campaigns:write": "Create campaigns and change their status",
    "contacts:write": "Upload contact lists and follow their imports",
    "stats:read": "Read campaign statistics",
    "conversations:read": "Read conversations and their messages",
    "optouts:read": "Read and export the opt-out list",
    "optouts:write": "Add numbers to the opt-out list",
}
# How stale last_used_at may get: one write a minute per token at most, however busy it is.
LAST_USED_PRECISION = timedelta(minutes=1)
PREFIX_BYTES = 6
PREFIX = re.compile(f"[0-9a-f]{{{PREFIX_BYTES * 2}}}")
NAME_LENGTH = 100


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    organization_id: int, name: str, scopes: list[str], user_id: int | None
) -> tuple[ApiToken, str]:
    """Add (and flush) a token; returns it with its secret, which is never shown again.

    :raise ValueError: for an empty name or an unknown scope.
    """
    name = name.strip()[:NAME_LENGTH]
    unknown = sorted(set(scopes) - set(SCOPES))
    if not name:
        raise ValueError("a token needs a name")
    if unknown:
        raise ValueError(f"unknown scope: {', '.join(unknown)}")
    prefix = secrets.token_hex(PREFIX_BYTES)
    secret = f"{TOKEN_START}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        organization_id=organization_id,
        name=name,
        prefix=prefix,
        secret_hash=hash_token(secret),
        scopes=[scope for scope in SCOPES if scope in scopes],
        created_by_id=user_id,
    )
    db.session.add(token)
    db.session.flush()
    audit.record(
        organization_id, "api_token_created", name, user_id, prefix=prefix, scopes=token.scopes
    )
    return token, secret


def prefix_of(secret: str) -> str | None:
    """The public prefix of a well-formed token, else None."""
    if not secret.startswith(TOKEN_START):
        return None
    prefix, _, rest = secret[len(TOKEN_START) :].partition("_")
    return prefix if PREFIX.fullmatch(prefix) and rest else None


def authenticate(secret: str, now: datetime | None = None) -> ApiToken | None:
    """The live token `secret` is, or None: unknown, revoked, or its creator may no longer
    use it (`creator_may_use`). Notes its use at most once a minute.

    The token and its creator are read in one query.
    """
    prefix = prefix_of(secret)
    if prefix is None:
        return None
    row = db.session.execute(
        select(ApiToken, User)
        .outerjoin(User, User.id == ApiToken.created_by_id)
        .where(ApiToken.prefix == prefix)
    ).first()
    if row is None or not hmac.compare_digest(row[0].secret_hash, hash_token(secret)):
        return None
    token, creator = row
    if token.revoked_at is not None or not creator_may_use(token, creator):
        return None
    note_use(token, now or utcnow())
    return token


def creator_may_use(token: ApiToken, creator: User | None) -> bool:
    """Whether the token's creator still has the access a token acts with: an organizer of
    the token's organization, not suspended."""
    return (
        creator is not None
        and creator.organization_id == token.organization_id
        and creator.is_active
        and creator.is_organizer
    )


def note_use(token: ApiToken, now: datetime) -> None:
    """Set last_used_at, unless it was set less than a minute ago (a conditional UPDATE).

    The caller commits; a read-only request commits nothing else.
    """
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_PRECISION:
        return
    db.session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token.id,
            or_(
                ApiToken.last_used_at.is_(None),
                ApiToken.last_used_at < now - LAST_USED_PRECISION,
            ),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )


def revoke(token: ApiToken, user_id: int | None) -> bool:
    """Revoke the token for good (audited); False when it already was."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    audit.record(
        token.organization_id, "api_token_revoked", token.name, user_id, prefix=token.prefix
    )
    return True


def organization_tokens(organization_id: int) -> list[ApiToken]:
    """The organization's tokens, live ones first, newest first."""
    return list(
        db.session.scalars(
            select(ApiToken)
            .where(ApiToken.organization_id == organization_id)
            .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id)
        )
    )


def organization_token(organization_id: int, token_id: int) -> ApiToken | None:
    """The token, if it belongs to the organization."""
    token = db.session.get(ApiToken, token_id)
    return token if token is not None and token.organization_id == organization_id else None
