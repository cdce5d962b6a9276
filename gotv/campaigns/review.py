"""Message review: organizers search the organization's conversations and hand them over.

A conversation is a contact that has been texted. Plain functions on the database session
(no Flask); callers commit.

Filters are small functions, one per query parameter, each turning the parameter's text into a
SQL condition on `Contact` (see FILTERS). The same conditions drive the page of results and the
set-based UPDATE that reassigns everything matching, so what an organizer sees is what moves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, select, update

from gotv import ids
from gotv.compliance import optouts
from gotv.db import db
from gotv.models import (
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    ContactTag,
    Direction,
    Message,
    Tag,
    User,
)
from gotv.people import audit
from gotv.texting import live

PAGE_SIZE = 50
UNASSIGNED = "none"  # the volunteer filter's value for conversations nobody holds
# A reassignment of a selection records the ids it named, up to this many.
AUDITED_IDS = 500

Condition = ColumnElement[bool]
# A filter: the parameter's text and the organization's id -> a condition on Contact.
FilterFunction = Callable[[str, int], Condition]

STATUSES = {
    "needs_reply": "Needs a reply",
    "replied": "Replied to",
    "no_reply": "No reply yet",
    "opted_out": "Opted out",
    "closed": "Closed",
}


class CannotReassign(Exception):
    """The reassignment was refused; `str(error)` says why, for the organizer."""


class BadFilter(ValueError):
    """A filter that takes an id (or a number) holds something else; `str(error)` says which."""


# --- Filters ---------------------------------------------------------------------------------


def nothing() -> Condition:
    """A value a filter cannot read matches nothing: it must never widen a bulk reassignment."""
    return false()


def by_campaign(value: str, organization_id: int) -> Condition:
    campaign_id = ids.parse(value)
    return Contact.campaign_id == campaign_id if campaign_id is not None else nothing()


def by_texter(value: str, organization_id: int) -> Condition:
    if value == UNASSIGNED:
        return Contact.texter_id.is_(None)
    texter_id = ids.parse(value)
    return Contact.texter_id == texter_id if texter_id is not None else nothing()


def opted_out(organization_id: int) -> Condition:
    return optouts.opted_out(organization_id, Contact.cell)


def has_replied() -> Condition:
    """The voter has texted back at least once (the index of messages by contact)."""
    return exists().where(Message.contact_id == Contact.id, Message.direction == Direction.INBOUND)


def closed(organization_id: int) -> Condition:
    """Over: the campaign is archived, or the carrier says the number cannot get texts."""
    archived = select(Campaign.id).where(
        Campaign.organization_id == organization_id, Campaign.status == CampaignStatus.ARCHIVED
    )
    return Contact.campaign_id.in_(archived) | optouts.blocked(organization_id, Contact.cell)


def by_status(value: str, organization_id: int) -> Condition:
    if value == "needs_reply":
        return Contact.needs_reply.is_(True)
    if value == "replied":
        return Contact.needs_reply.is_(False) & has_replied() & ~opted_out(organization_id)
    if value == "no_reply":
        return ~has_replied() & ~opted_out(organization_id)
    if value == "opted_out":
        return opted_out(organization_id)
    if value == "closed":
        return closed(organization_id)
    return nothing()


def last_message(column: Any) -> Any:
    """A scalar subquery: `column` of the contact's latest message (index by contact, time)."""
    return (
        select(column)
        .where(Message.contact_id == Contact.id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def by_error_code(value: str, organization_id: int) -> Condition:
    """The conversation's latest message has this error code.

    The few contacts with any message of that code are found first in one pass (a hashed
    semi-join), so the latest-message lookup runs for them, not for every conversation.
    """
    code = ids.parse(value)
    if code is None:
        return nothing()
    with_code = select(Message.contact_id).where(
        Message.organization_id == organization_id, Message.error_code == code
    )
    return Contact.id.in_(with_code) & (last_message(Message.error_code) == code)


def by_person(value: str, organization_id: int) -> Condition:
    """A number (any run of its digits) or a name (every word in the first or last name)."""
    if not any(character.isalpha() for character in value):
        digits = "".join(character for character in value if character.isdigit())
        return Contact.cell.contains(digits, autoescape=True) if digits else nothing()
    return and_(
        *(
            Contact.first_name.icontains(word, autoescape=True)
            | Contact.last_name.icontains(word, autoescape=True)
            for word in value.split()
        )
    )


def by_text(value: str, organization_id: int) -> Condition:
    """Any message of the conversation contains the text, in any case.

    lower() LIKE on both databases (SQLite folds ASCII letters only). No B-tree index can serve
    a substring, so this reads the messages of the conversations the other filters leave, one
    contact at a time through the index of messages by contact.
    """
    return exists().where(
        Message.contact_id == Contact.id, Message.body.icontains(value, autoescape=True)
    )


def by_tag(value: str, organization_id: int) -> Condition:
    """The contact carries this tag of the organization's (another's tag id matches nothing)."""
    tag_id = ids.parse(value)
    if tag_id is None:
        return nothing()
    return exists().where(
        ContactTag.contact_id == Contact.id,
        ContactTag.tag_id == tag_id,
        ContactTag.tag_id.in_(select(Tag.id).where(Tag.organization_id == organization_id)),
    )


# Query parameter -> filter. The page, the bulk reassignment and its audit entry pick a new
# one up by its name (it needs a field in the review form too).
FILTERS: dict[str, FilterFunction] = {
    "campaign": by_campaign,
    "texter": by_texter,
    "status": by_status,
    "tag": by_tag,
    "error": by_error_code,
    "who": by_person,
    "text": by_text,
}
# The filters holding a number (an id; the error filter an error code, an INTEGER column too).
NUMBER_FILTERS = {"campaign", "texter", "tag", "error"}


def clean_filters(args: Mapping[str, str]) -> dict[str, str]:
    """The known, non-empty filters among `args`, trimmed, in FILTERS order.

    :raise BadFilter: for a filter of NUMBER_FILTERS that does not hold a number (an id, or
        an error code) the database can hold.
    """
    cleaned = {name: (args.get(name) or "").strip()[:200] for name in FILTERS}
    filters = {name: value for name, value in cleaned.items() if value}
    for name in NUMBER_FILTERS & set(filters):
        value = filters[name]
        if ids.parse(value) is None and not (name == "texter" and value == UNASSIGNED):
            raise BadFilter(f"The {name} filter must be a number, not {value[:40]!r}.")
    return filters


def conversation_conditions(organization_id: int, filters: Mapping[str, str]) -> list[Condition]:
    """The organization's conversations that match every filter, as conditions on Contact."""
    conditions = [
        Contact.campaign_id.in_(optouts.campaign_ids(organization_id)),
        Contact.status == ContactStatus.TEXTED,
    ]
    conditions += [FILTERS[name](value, organization_id) for name, value in filters.items()]
    return conditions


# --- A page of conversations -----------------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    id: int
    name: str
    cell: str
    campaign_name: str
    texter_name: str | None
    needs_reply: bool
    opted_out: bool
    last_body: str = ""
    last_direction: str = ""
    last_at: datetime | None = None
    last_error: int | None = None


@dataclass(frozen=True)
class Page:
    conversations: list[Conversation]
    # Pass as `before` for the next page; None on the last page.
    next_before: int | None


def page(organization_id: int, filters: Mapping[str, str], before: int | None = None) -> Page:
    """Up to PAGE_SIZE matching conversations, newest contact first, below the `before` id.

    Keyset pagination on the contact id: each page is one index range, however deep, and no
    count of the whole result is ever taken.
    """
    conditions = conversation_conditions(organization_id, filters)
    if before is not None:
        conditions.append(Contact.id < before)
    rows = db.session.execute(
        select(
            Contact.id,
            Contact.first_name,
            Contact.last_name,
            Contact.cell,
            Contact.needs_reply,
            Campaign.name.label("campaign_name"),
            User.name.label("texter_name"),
            opted_out(organization_id).label("opted_out"),
            last_message(Message.id).label("last_id"),
        )
        .join(Campaign, Campaign.id == Contact.campaign_id)
        .outerjoin(User, User.id == Contact.texter_id)
        .where(*conditions)
        .order_by(Contact.id.desc())
        .limit(PAGE_SIZE + 1)
    ).all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    last = latest_messages([row.last_id for row in rows if row.last_id is not None])
    conversations = []
    for row in rows:
        message = last.get(row.last_id)
        conversations.append(
            Conversation(
                id=row.id,
                name=f"{row.first_name} {row.last_name}".strip(),
                cell=row.cell,
                campaign_name=row.campaign_name,
                texter_name=row.texter_name,
                needs_reply=row.needs_reply,
                opted_out=bool(row.opted_out),
                **(
                    {
                        "last_body": message.body,
                        "last_direction": message.direction.value,
                        "last_at": message.created_at,
                        "last_error": message.error_code,
                    }
                    if message is not None
                    else {}
                ),
            )
        )
    return Page(conversations, rows[-1].id if more else None)


def latest_messages(message_ids: list[int]) -> dict[int, Any]:
    """id -> row (body, direction, created_at, error_code) of these messages."""
    if not message_ids:
        return {}
    rows = db.session.execute(
        select(
            Message.id, Message.body, Message.direction, Message.created_at, Message.error_code
        ).where(Message.id.in_(message_ids))
    )
    return {row.id: row for row in rows}


# --- Reassigning -----------------------------------------------------------------------------


def assignable_users(organization_id: int) -> list[User]:
    """Who may be handed conversations: the organization's users who are not suspended, by name.

    The one place that says so (the review form's choices and every reassignment use it).
    """
    query = (
        select(User)
        .where(User.organization_id == organization_id, User.suspended_at.is_(None))
        .order_by(User.name)
    )
    return list(db.session.scalars(query))


def new_holder(organization_id: int, user_id: int | None) -> User | None:
    """The user conversations are to go to (None: unassign them).

    :raise CannotReassign: for a user who is not one of `assignable_users`.
    """
    if user_id is None:
        return None
    holder = next((user for user in assignable_users(organization_id) if user.id == user_id), None)
    if holder is None:
        raise CannotReassign("Choose a volunteer of your organization.")
    return holder


def reassign_selected(
    organization_id: int, contact_ids: Iterable[int], to_user_id: int | None, by_user_id: int
) -> int:
    """Hand the named conversations to `to_user_id` (None: unassign); returns how many moved.

    Ids of other organizations' contacts, or of contacts never texted, are left alone.
    :raise CannotReassign: when nothing is named or the new holder is not acceptable.
    """
    ids = sorted(set(contact_ids))
    if not ids:
        raise CannotReassign("Select at least one conversation.")
    holder = new_holder(organization_id, to_user_id)
    conditions = conversation_conditions(organization_id, {}) + [Contact.id.in_(ids)]
    moved = move(conditions, holder)
    audit_reassignment(organization_id, by_user_id, holder, moved, contact_ids=ids[:AUDITED_IDS])
    return moved


def reassign_matching(
    organization_id: int, filters: Mapping[str, str], to_user_id: int | None, by_user_id: int
) -> int:
    """Hand every conversation matching `filters` to `to_user_id`, in one UPDATE; returns how
    many moved. One audit entry records the filters and the count.

    :raise CannotReassign: when the new holder is not acceptable.
    """
    holder = new_holder(organization_id, to_user_id)
    moved = move(conversation_conditions(organization_id, filters), holder)
    audit_reassignment(organization_id, by_user_id, holder, moved, filters=dict(filters))
    return moved


# Conversations whose previous holders hear live that they moved, at most (the rest learn it
# when they next load a page).
ANNOUNCED_MOVES = 2000


def move(conditions: list[Condition], holder: User | None) -> int:
    """One set-based UPDATE of every contact meeting `conditions` (correlated to the row).

    Their previous volunteers' open pages hear of it once the caller commits (a reply they were
    typing is kept, and offered back): the first ANNOUNCED_MOVES are read before the UPDATE.
    """
    new_id = holder.id if holder else None
    moving = db.session.execute(
        select(Contact.id, Contact.texter_id)
        .where(*conditions, Contact.texter_id.is_not(None))
        .limit(ANNOUNCED_MOVES)
    ).all()
    by_holder: dict[int, list[int]] = {}
    for contact_id, texter_id in moving:
        if texter_id is not None and texter_id != new_id:
            by_holder.setdefault(texter_id, []).append(contact_id)
    for texter_id, contact_ids in by_holder.items():
        live.after_commit(
            db.session(), texter_id, live.conversation_event(contact_ids, "reassigned")
        )
    result = db.session.execute(
        update(Contact)
        .where(*conditions)
        .values(texter_id=holder.id if holder else None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def audit_reassignment(
    organization_id: int, by_user_id: int, holder: User | None, moved: int, **what: Any
) -> None:
    audit.record(
        organization_id,
        "conversations_reassigned",
        f"{moved} conversation{'' if moved == 1 else 's'}",
        by_user_id,
        to_user_id=holder.id if holder else None,
        to=holder.name if holder else "nobody (unassigned)",
        count=moved,
        **what,
    )
