"""The audit log: `record` adds an entry; `page` reads an organization's back, newest first.

Entries are only ever added (by `record`, in the transaction of the change they record); no
code path updates or deletes one. Texts sent are not entries: each message row records the
volunteer who sent it (`Message.texter_id`), which at a million sends is the audit trail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from gotv.db import db
from gotv.models import AuditEvent, User

PAGE_SIZE = 50


def record(
    organization_id: int,
    action: str,
    subject: str = "",
    user_id: int | None = None,
    **details: Any,
) -> None:
    """Append an entry to the organization's audit log, in this transaction: `user_id` did
    `action` to `subject` (a number, "campaign 7"...), with `details` as plain JSON values."""
    db.session.add(
        AuditEvent(
            organization_id=organization_id,
            user_id=user_id,
            action=action,
            subject=subject,
            details=details,
        )
    )


@dataclass(frozen=True)
class Entry:
    id: int
    created_at: datetime
    action: str
    user_name: str | None
    subject: str
    details: dict[str, Any]

    @property
    def readable_details(self) -> list[tuple[str, str]]:
        """The details as (label, text) pairs a person can read."""
        return [(key.replace("_", " "), readable(value)) for key, value in self.details.items()]


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    next_before: int | None  # pass as `before` for older entries; None on the last page


def readable(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {readable(item)}" for key, item in value.items()) or "—"
    if isinstance(value, list):
        return ", ".join(readable(item) for item in value) or "—"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, default=str)


def page(
    organization_id: int, action: str = "", user_id: int | None = None, before: int | None = None
) -> Page:
    """Up to PAGE_SIZE of the organization's entries, newest first, older than `before`."""
    query = (
        select(AuditEvent, User.name)
        .outerjoin(User, User.id == AuditEvent.user_id)
        .where(AuditEvent.organization_id == organization_id)
        .order_by(AuditEvent.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    if action:
        query = query.where(AuditEvent.action == action)
    if user_id is not None:
        query = query.where(AuditEvent.user_id == user_id)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    rows = db.session.execute(query).all()
    entries = [
        Entry(
            id=event.id,
            created_at=event.created_at,
            action=event.action,
            user_name=name,
            subject=event.subject,
            details=dict(event.details or {}),
        )
        for event, name in rows[:PAGE_SIZE]
    ]
    return Page(entries, entries[-1].id if len(rows) > PAGE_SIZE else None)


def actions(organization_id: int) -> list[str]:
    """The actions the organization's log holds, for the filter."""
    return list(
        db.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.organization_id == organization_id)
            .distinct()
            .order_by(AuditEvent.action)
        )
    )
