"""Dynamic batches: which untexted contacts each volunteer holds, taken and given back.

A volunteer asks for a batch and gets up to the campaign's batch size of untexted, textable,
unheld contacts who may be texted now, locked to them (`Contact.texter_id`, `assigned_at`) by
a conditional UPDATE (two when a pick wraps around the end of the list), so two volunteers never
hold the same contact. The send loop offers only
the volunteer's own batch. Contacts still unsent go back to the pool when the volunteer says
they are done, or when they have been idle longer than the campaign allows (the worker's
sweeper calls `release_idle`). A contact whose number the policy refuses (`numbers`: loaded
before the policy, or in a territory the organization stopped texting) is set aside when a
batch first meets it (`Contact.refused`), and is in no batch after that.

Plain functions with no Flask imports beyond the database session.
"""

from __future__ import annotations

import json
import random
from collections import Counter, namedtuple
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    bindparam,
    false,
    func,
    select,
    text,
    true,
    tuple_,
    union_all,
    update,
)

from gotv.compliance import hours, numbers, optouts
from gotv.db import Raw, db, execute_core
from gotv.models import Campaign, CampaignStatus, Contact, ContactStatus, User
from gotv.texting import texts

# A volunteer's last activity is written at most this often, so a send costs no extra write.
ACTIVITY_GRANULARITY = timedelta(minutes=1)
MAX_BATCH_SIZE = 1000
# Rows the send loop's top-up looks at beyond those it wants: past a run of contacts in quiet
# hours it goes on from where it stopped at the next send (and queue.json recounts when the
# page's queue runs dry).
TOP_UP_SLACK = 4


# How many people of one place `pool_later` counts at most (the page says "1,000 or more").
POOL_COUNT_CAP = 1000


class BatchRefused(Exception):
    """No batch was given; `str(error)` says why, in words a volunteer understands (marked with
    N_: the page translates it)."""


class RepliesWaiting(BatchRefused):
    """Replies wait for the volunteer, and the campaign wants them answered first."""

    def __init__(self, waiting: int) -> None:
        people = "person is" if waiting == 1 else "people are"
        super().__init__(
            f"{waiting} {people} waiting for your reply. Answer them before taking more contacts."
        )
        self.waiting = waiting


@dataclass(frozen=True)
class Later:
    """Contacts of a batch held back by quiet hours, who all open at the same moment."""

    count: int
    opens_at: datetime  # UTC
    local_time: str  # the opening in the recipients' own time, e.g. "9:00 AM"


@dataclass
class Batch:
    """What a volunteer holds in a campaign: who may be texted now (in order) and who later."""

    ready: list[Contact] = field(default_factory=list)
    ready_count: int = 0
    later: list[Later] = field(default_factory=list)

    @property
    def held(self) -> int:
        return self.ready_count + sum(group.count for group in self.later)


def replies_waiting(campaign: Campaign, texter: User) -> int:
    """How many of the volunteer's conversations in this campaign wait for a reply."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Contact)
            .where(
                Contact.campaign_id == campaign.id,
                Contact.texter_id == texter.id,
                Contact.needs_reply.is_(True),
            )
        )
        or 0
    )


def held(campaign: Campaign, texter: User) -> int:
    """How many untexted, still textable contacts the volunteer holds in this campaign."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Contact)
            .where(
                *holding(campaign, texter),
                optouts.may_be_texted(campaign.organization_id, Contact.cell),
            )
        )
        or 0
    )


def holding(campaign: Campaign, texter: User) -> tuple[ColumnElement[bool], ...]:
    """The WHERE clauses of the volunteer's batch: their untexted contacts in the campaign."""
    return (
        Contact.campaign_id == campaign.id,
        Contact.texter_id == texter.id,
        Contact.status == ContactStatus.NEW,
        Contact.refused.is_(None),
    )


def take_batch(campaign: Campaign, texter: User, now: datetime) -> int:
    """Lock up to the batch size (less what they already hold) of free contacts to the volunteer.

    Only contacts who may be texted now are taken: a batch full of people in quiet hours would
    leave the volunteer idle. They are the first free contacts in list order, unless others
    are taking batches of the campaign at the same moment: then from a random place in the
    list on (`random_start`), wrapping around. Returns how many were taken; the caller commits.

    :raise BatchRefused: when the campaign is not active, or replies wait and the campaign
        does not allow a new batch until they are answered.
    """
    if not campaign.is_active:
        raise BatchRefused(texts.N_("This campaign is not active."))
    waiting = replies_waiting(campaign, texter)
    if waiting and not campaign.batch_while_replies_wait:
        raise RepliesWaiting(waiting)
    wanted = min(campaign.batch_size, MAX_BATCH_SIZE) - held(campaign, texter)
    touch(texter, now)
    places = texts.open_places(campaign, now)
    if wanted <= 0 or not places:
        return 0
    start = 0 if picking_alone(campaign) else random_start(campaign)
    taken = pick_textable(campaign, texter, now, places, wanted, after=start - 1)
    if taken < wanted and start > 0:  # wrap around to the start of the list
        taken += pick_textable(campaign, texter, now, places, wanted - taken, before=start)
    return taken


def pick_textable(
    campaign: Campaign,
    texter: User,
    now: datetime,
    places: list[tuple[str, str]],
    wanted: int,
    after: int = -1,
    before: int | None = None,
) -> int:
    """`pick`, setting aside the contacts whose numbers the policy refuses and picking others
    in their place; how many were kept."""
    kept = 0
    while kept < wanted:
        taken = pick(campaign, texter, now, places, wanted - kept, after, before)
        if not taken:
            break
        refused = set_aside_refused(campaign, taken)
        kept += len(taken) - len(refused)
        after = max(contact_id for contact_id, _ in taken)
    return kept


def picking_alone(campaign: Campaign) -> bool:
    """True unless another transaction is taking a batch of this campaign right now.

    PostgreSQL: a transaction advisory lock of the campaign, taken without waiting (and held
    until the caller commits). SQLite runs one writer at a time: always alone.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return True
    return bool(db.session.execute(_TRY_PICKER_LOCK, {"campaign": campaign.id}).scalar())


# In a key space of its own (the first key).
_TRY_PICKER_LOCK = text("SELECT pg_try_advisory_xact_lock(6, :campaign)")


def random_start(campaign: Campaign) -> int:
    """A contact id drawn uniformly from the campaign's id range (two index probes).

    Volunteers who ask at the same moment as others start their pick there instead of at the
    top of the list. Picking from the top, each concurrent pick steps over every row the
    others hold locked, and over every row they took (dead index entries until no open
    transaction can see them), and a rush of volunteers queued behind each other's locks
    (docs/benchmarks.md). From random places they rarely meet. A batch
    taken alone, the usual case, is still the first free contacts in list order.
    """
    low, high = db.session.execute(
        select(func.min(Contact.id), func.max(Contact.id)).where(Contact.campaign_id == campaign.id)
    ).one()
    return random.randint(low, high) if low is not None else 0


def pick(
    campaign: Campaign,
    texter: User,
    now: datetime,
    places: list[tuple[str, str]],
    wanted: int,
    after: int = -1,
    before: int | None = None,
) -> list[tuple[int, str]]:
    """Lock up to `wanted` free contacts in `places` with ids in (after, before) to the
    volunteer, first in list order; their ids and numbers."""
    free = (
        select(Contact.id)
        .where(
            Contact.campaign_id == campaign.id,
            Contact.status == ContactStatus.NEW,
            Contact.texter_id.is_(None),
            Contact.refused.is_(None),
            Contact.id > after,
            tuple_(Contact.time_zones, Contact.rule_states).in_(places),
            optouts.may_be_texted(campaign.organization_id, Contact.cell),
        )
        .order_by(Contact.id)
        .limit(wanted)
        # Rows another volunteer's request is taking are skipped, not waited for (PostgreSQL;
        # SQLite runs one writer at a time, and the UPDATE's own conditions suffice there).
        .with_for_update(skip_locked=True)
    )
    if before is not None:
        free = free.where(Contact.id < before)
    # MATERIALIZED: PostgreSQL picks the batch exactly once. As a plain IN (subquery) it may
    # re-run the pick for each row it updates and, skipping rows it just updated, take them all.
    picked = free.cte("picked").prefix_with("MATERIALIZED", dialect="postgresql")
    taken = db.session.execute(
        update(Contact)
        .where(
            Contact.id.in_(select(picked.c.id)),
            Contact.texter_id.is_(None),
            Contact.status == ContactStatus.NEW,
        )
        .values(texter_id=texter.id, assigned_at=now)
        .returning(Contact.id, Contact.cell)  # (SQLite reports no rowcount for a WITH)
        .execution_options(synchronize_session=False)
    )
    return [(contact_id, cell) for contact_id, cell in taken]


def set_aside_refused(
    campaign: Campaign | texts.CampaignRow, contacts: Iterable[tuple[int, str]]
) -> set[int]:
    """Of these (id, number) of untexted contacts, set aside those whose numbers the policy
    refuses: out of their volunteer's batch and of every batch after (`Contact.refused`, until
    `readmit`). Their ids; a statement only when there are some."""
    territories = campaign.texts_us_territories
    refused: dict[str, list[int]] = {}
    for contact_id, cell in contacts:
        refusal = numbers.check_stored(cell, territories)
        if refusal is not None:
            refused.setdefault(refusal.value, []).append(contact_id)
    for why, ids in refused.items():
        db.session.execute(
            update(Contact)
            .where(Contact.id.in_(ids), Contact.status == ContactStatus.NEW)
            .values(refused=why, texter_id=None, assigned_at=None)
            .execution_options(synchronize_session=False)
        )
    return {contact_id for ids in refused.values() for contact_id in ids}


def readmit(organization_id: int, reason: numbers.Reason) -> int:
    """Put the organization's contacts set aside for `reason` back in the pool (it texts the
    territories again); how many. The caller commits."""
    readmitted = db.session.execute(
        update(Contact)
        .where(
            Contact.refused == reason.value,
            Contact.campaign_id.in_(
                select(Campaign.id).where(Campaign.organization_id == organization_id)
            ),
        )
        .values(refused=None)
        .execution_options(synchronize_session=False)
    )
    return int(readmitted.rowcount)  # type: ignore[attr-defined]


def release(campaign: Campaign, texter: User) -> int:
    """Give the volunteer's untexted contacts back to the pool ("I'm done for now")."""
    released = db.session.execute(
        update(Contact)
        .where(*holding(campaign, texter))
        .values(texter_id=None, assigned_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(released.rowcount)  # type: ignore[attr-defined]


def release_idle(now: datetime) -> int:
    """Give back the untexted contacts of volunteers idle longer than their campaign allows.

    Idle means no texting action (batch, send, reply) since the cutoff, and the contact was
    taken before it. Returns how many contacts went back; the caller commits.
    """
    released = 0
    campaigns = db.session.execute(
        select(Campaign.id, Campaign.release_after_minutes).where(
            Campaign.status != CampaignStatus.ARCHIVED
        )
    ).all()
    for campaign_id, minutes in campaigns:
        cutoff = now - timedelta(minutes=minutes)
        idle = select(User.id).where(
            (User.last_active_at.is_(None)) | (User.last_active_at < cutoff)
        )
        result = db.session.execute(
            update(Contact)
            .where(
                Contact.campaign_id == campaign_id,
                Contact.status == ContactStatus.NEW,
                Contact.texter_id.in_(idle.scalar_subquery()),
                (Contact.assigned_at.is_(None)) | (Contact.assigned_at < cutoff),
            )
            .values(texter_id=None, assigned_at=None)
            .execution_options(synchronize_session=False)
        )
        released += int(result.rowcount)  # type: ignore[attr-defined]
    return released


def touch(texter: User, now: datetime) -> None:
    """Record a texting action, at most once a minute (it keeps the volunteer's batch)."""
    if texter.last_active_at is None or now - texter.last_active_at >= ACTIVITY_GRANULARITY:
        texter.last_active_at = now


def batch(campaign: Campaign, texter: User, now: datetime, ready_limit: int = 5) -> Batch:
    """The volunteer's batch: the first `ready_limit` contacts who may be texted now, in list
    order, how many may be, and the rest grouped by when quiet hours let them be texted.

    Two queries over the batch's index, whatever the campaign's size: the batch counted by
    place (zones, state rules), then the first ready contacts of the places open now. Opted-out
    and blocked numbers are left out.
    """
    counts = db.session.execute(
        select(Contact.time_zones, Contact.rule_states, func.count())
        .where(
            *holding(campaign, texter),
            optouts.may_be_texted(campaign.organization_id, Contact.cell),
        )
        .group_by(Contact.time_zones, Contact.rule_states)
    ).all()
    found = Batch()
    open_places: list[tuple[str, str]] = []
    closed: Counter[tuple[str, str]] = Counter()
    for zones, states, count in counts:
        if texts.is_open(campaign, zones, states, now):
            found.ready_count += count
            open_places.append((zones, states))
        else:
            closed[(zones, states)] += count
    if open_places and ready_limit > 0:
        ready = db.session.scalars(
            select(Contact)
            .where(
                *holding(campaign, texter),
                tuple_(Contact.time_zones, Contact.rule_states).in_(open_places),
                optouts.may_be_texted(campaign.organization_id, Contact.cell),
            )
            .order_by(Contact.id)
            .limit(ready_limit)
        ).all()
        # Numbers the policy refuses are not offered (the click would refuse them): set aside.
        refused = set_aside_refused(campaign, [(c.id, c.cell) for c in ready])
        found.ready = [c for c in ready if c.id not in refused]
        found.ready_count -= len(refused)
    found.later = later_groups(campaign, closed, now)
    return found


def next_ready(
    campaign: Campaign | texts.CampaignRow,
    texter: User,
    now: datetime,
    after: int,
    limit: int,
    leaving_out: int | None = None,
) -> tuple[list[texts.ContactRow], int]:
    """Up to `limit` contacts of the volunteer's batch with ids above `after` who may be texted
    now, in list order (`leaving_out` aside), as rows of `texts.MERGE_COLUMNS`, and the id to
    continue after next time.

    What the send loop needs after each send to keep its queue full: one query over at most
    `limit` + TOP_UP_SLACK rows of the batch index (ix_contact_new_by_texter), whatever the
    batch's or the campaign's size. Contacts in quiet hours are passed over (`batch` lists
    them as later).
    """
    if limit <= 0:
        return [], after
    rows = execute_core(
        _TOP_UP,
        {
            "campaign": campaign.id,
            "texter": texter.id,
            "organization": campaign.organization_id,
            "after": after,
            "leaving_out": leaving_out if leaving_out is not None else after,
            "rows": limit + TOP_UP_SLACK,
        },
    )
    return ready_among(campaign, rows, now, after, limit)


def ready_among(
    campaign: Campaign | texts.CampaignRow,
    rows: Iterable[texts.ContactRow],
    now: datetime,
    after: int,
    limit: int,
) -> tuple[list[texts.ContactRow], int]:
    """The first `limit` of the top-up's `rows` (in id order) who may be texted now, and the
    id to continue after next time (`next_ready`)."""
    ready: list[texts.ContactRow] = []
    refused: list[tuple[int, str]] = []
    last = after
    open_now: dict[tuple[str, str], bool] = {}
    territories = campaign.texts_us_territories
    for contact in rows:
        last = contact.id
        place = (contact.time_zones, contact.rule_states)
        if place not in open_now:
            open_now[place] = texts.is_open(campaign, *place, now)
        if numbers.check_stored(contact.cell, territories) is not None:
            refused.append((contact.id, contact.cell))  # the click would refuse it
        elif open_now[place]:
            ready.append(contact)
            if len(ready) == limit:
                break
    if refused:
        set_aside_refused(campaign, refused)
    return ready, last


@dataclass
class Sending:
    """What a click on Send reads before it writes (`read_for_send`)."""

    campaign: texts.CampaignRow
    contact: texts.SendingContactRow | None  # None: not in the campaign
    top_up: list[texts.ContactRow]  # the top-up's rows, before `ready_among`


def read_for_send(
    campaign_id: int, organization_id: int, texter: User, contact_id: int, after: int, limit: int
) -> Sending | None:
    """The campaign's `texts.SENDING_COLUMNS` (None when it is not the organization's), the
    contact to send to (`texts.SENDING_CONTACT_COLUMNS`) and `next_ready`'s rows for up to
    `limit` contacts after `after` (the contact aside), in one query: the send loop reads all
    three on every click. The top-up is its own ordered subquery, so it still reads at most
    the rows it wants from the batch index, in order.
    """
    db.session.flush()  # (Raw: it would not see what the session holds otherwise)
    rows = _READ_FOR_SEND.rows(
        {
            "campaign": campaign_id,
            "organization": organization_id,
            "texter": texter.id,
            "contact": contact_id,
            "after": after,
            "leaving_out": contact_id,
            "rows": limit + TOP_UP_SLACK if limit > 0 else 0,
        },
    )
    if not rows:
        return None
    campaigns, contacts = len(_CampaignRow._fields), len(_ContactRow._fields)
    campaign = _CampaignRow._make(rows[0][:campaigns])
    contact: texts.SendingContactRow | None = None
    top_up = []
    for row in rows:
        if row.contact_id is None:
            continue
        found = _ContactRow._make(row[campaigns : campaigns + contacts])
        if isinstance(found.custom_fields, str):  # (SQLite gives JSON as its text)
            found = found._replace(custom_fields=json.loads(found.custom_fields))
        if row.contact_sending:
            contact = found
        else:
            top_up.append(found)
    top_up.sort(key=lambda found: found.id)
    return Sending(campaign, contact, top_up)


# Built once: every send runs it. Core rows of the columns the page shows, not ORM objects.
_TOP_UP = (
    select(*texts.MERGE_COLUMNS, Contact.cell)
    .where(
        Contact.campaign_id == bindparam("campaign"),
        Contact.texter_id == bindparam("texter"),
        texts.UNTEXTED,
        Contact.refused.is_(None),
        Contact.id > bindparam("after"),
        Contact.id != bindparam("leaving_out"),
        optouts.may_be_texted(bindparam("organization"), Contact.cell),
    )
    .order_by(Contact.id)
    .limit(bindparam("rows"))
)


def row_type(name: str, fields: list[str]) -> Any:
    """A named tuple type of `fields`: rows taken apart from a joined query's."""
    return namedtuple(name, fields)


_SENDING_NAMES = [column.key for column in texts.SENDING_COLUMNS]
_CONTACT_NAMES = [*(column.key for column in texts.MERGE_COLUMNS), "cell", "claimable"]
_CampaignRow = row_type("_CampaignRow", _SENDING_NAMES)
_ContactRow = row_type("_ContactRow", _CONTACT_NAMES)
_CONTACTS_FOR_SEND = union_all(
    select(
        *texts.sending_contact_columns(bindparam("texter"), bindparam("organization")),
        true().label("sending"),
    ).where(Contact.id == bindparam("contact"), Contact.campaign_id == bindparam("campaign")),
    select(*_TOP_UP.subquery().c, true().label("claimable"), false().label("sending")),
).subquery("contacts")
_READ_FOR_SEND = Raw(
    select(
        *texts.SENDING_COLUMNS,
        *(
            column.label("contact_" + name)
            for name, column in zip(_CONTACT_NAMES, _CONTACTS_FOR_SEND.c, strict=False)
        ),
        _CONTACTS_FOR_SEND.c.sending.label("contact_sending"),
    )
    .select_from(Campaign.__table__.outerjoin(_CONTACTS_FOR_SEND, true()))
    .where(
        Campaign.id == bindparam("campaign"), Campaign.organization_id == bindparam("organization")
    )
)


def pool_later(campaign: Campaign, texter: User, now: datetime) -> list[Later]:
    """Who the volunteer could take later, if nobody may be taken now: the campaign's untexted
    contacts, free or theirs, in places whose texting hours have not begun, counted by when
    they open (at most POOL_COUNT_CAP a place; opted-out numbers, which are few, are counted
    too). Empty when someone may be taken now.

    A probe per place (`texts.untexted_places`), so the cost grows with the places, not the
    contacts: the send screen asks only when the volunteer's batch is empty.
    """
    closed: Counter[tuple[str, str]] = Counter()
    for zones, states in texts.untexted_places(campaign.id):
        takeable = (
            Contact.campaign_id == campaign.id,
            Contact.status == ContactStatus.NEW,
            Contact.time_zones == zones,
            Contact.rule_states == states,
            (Contact.texter_id.is_(None)) | (Contact.texter_id == texter.id),
            Contact.refused.is_(None),
        )
        if texts.is_open(campaign, zones, states, now):
            if db.session.execute(select(Contact.id).where(*takeable).limit(1)).first():
                return []  # someone may be taken now: later is for later
            continue
        someone = (
            select(Contact.id)
            .where(
                Contact.campaign_id == campaign.id,
                Contact.status == ContactStatus.NEW,
                Contact.time_zones == zones,
                Contact.rule_states == states,
                (Contact.texter_id.is_(None)) | (Contact.texter_id == texter.id),
                Contact.refused.is_(None),
            )
            .limit(POOL_COUNT_CAP)
            .subquery()
        )
        count = db.session.scalar(select(func.count()).select_from(someone)) or 0
        if count:
            closed[(zones, states)] += count
    return later_groups(campaign, closed, now)


def later_groups(
    campaign: Campaign, closed: Counter[tuple[str, str]], now: datetime
) -> list[Later]:
    """Contacts in quiet hours, counted by the moment they open, soonest first."""
    counts: Counter[tuple[datetime, str]] = Counter()
    for (zones, states), count in closed.items():
        try:
            opens = hours.next_opening(
                zones,
                now,
                campaign.window_start_hour,
                campaign.window_end_hour,
                state=states,
                trust_zip=campaign.trust_zip_alone,
            )
        except ValueError:
            continue  # their state never allows this campaign's window
        local = opens.astimezone(hours.zones_of(zones, campaign.trust_zip_alone)[0])
        counts[(opens.astimezone(now.tzinfo), local_clock(local))] += count
    return [
        Later(count, opens_at, local_time)
        for (opens_at, local_time), count in sorted(counts.items())
    ]


def local_clock(moment: datetime) -> str:
    """ "9:00 AM": a wall-clock time as volunteers read it."""
    return moment.strftime("%I:%M %p").lstrip("0")
