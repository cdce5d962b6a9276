"""Texting: the scripts volunteers send, whom they may text, and queueing their texts once.

Plain functions on the database session. The three rules (never text an opted-out number,
never outside the recipient's hours, never the same message twice) are checked when a
volunteer clicks, here, and again at the last step before Twilio, by the outbox's gate
(outbox.py). Voters' replies and Twilio's status callbacks are replies.py's.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    bindparam,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    type_coerce,
    update,
)

from gotv.compliance import hours, numbers, optouts
from gotv.db import Raw, db, execute_core
from gotv.models import (
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    Direction,
    Message,
    MessageKind,
    MessageMedia,
    MessageStatus,
    Organization,
    Sender,
    User,
    utcnow,
)

log = logging.getLogger(__name__)

MERGE_TAG = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
STANDARD_MERGE_FIELDS = ("first_name", "last_name", "texter_name", "zip", "state")

MAX_VALIDITY_SECONDS = 4 * 60 * 60
CONFIRMATION_SECONDS = 5 * 60  # 47 CFR 64.1200(a)(12): a confirmation within five minutes
# A volunteer reads each first text before sending it: that is what makes it peer to peer. The
# send screen's Send answers only once a contact has been on screen MIN_READ, and the database
# refuses a volunteer's initial text sooner than MIN_SEND_GAP after their previous one (a
# little less than MIN_READ, so that the network's jitter between two sends never refuses a
# text the page allowed). README, "Texting, for volunteers".
MIN_READ = timedelta(milliseconds=500)
MIN_SEND_GAP = timedelta(milliseconds=400)
# The inbox's preview of a conversation's latest message, in characters.
PREVIEW_LENGTH = 160


def N_(message: str) -> str:
    """Mark `message` for translation: the rules speak English, the pages translate what they
    show (gotv/web/i18n.py); the rules import no Flask."""
    return message


# Core rows, read where ORM objects cost too much (the send loop's statements, threads), typed
# by what they hold.


class ContactRow(Protocol):
    """A contact's `MERGE_COLUMNS` and its cell."""

    @property
    def id(self) -> int: ...
    @property
    def first_name(self) -> str: ...
    @property
    def last_name(self) -> str: ...
    @property
    def zip(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def custom_fields(self) -> dict[str, str]: ...
    @property
    def time_zones(self) -> str: ...
    @property
    def rule_states(self) -> str: ...
    @property
    def cell(self) -> str: ...


class CampaignRow(Protocol):
    """A campaign's `SENDING_COLUMNS`: what sending an initial text reads of it."""

    @property
    def id(self) -> int: ...
    @property
    def organization_id(self) -> int: ...
    @property
    def is_active(self) -> bool: ...
    @property
    def script(self) -> str: ...
    @property
    def window_start_hour(self) -> int: ...
    @property
    def window_end_hour(self) -> int: ...
    @property
    def smart_encoding(self) -> bool: ...
    @property
    def trust_zip_alone(self) -> bool: ...
    @property
    def texts_us_territories(self) -> bool: ...


class ThreadRow(Protocol):
    """What a conversation page shows of a message (`_THREAD_ROWS`)."""

    @property
    def id(self) -> int: ...
    @property
    def direction(self) -> Direction: ...
    @property
    def kind(self) -> MessageKind: ...
    @property
    def body(self) -> str: ...
    @property
    def status(self) -> MessageStatus: ...
    @property
    def refusal_reason(self) -> str | None: ...
    @property
    def error_code(self) -> int | None: ...
    @property
    def created_at(self) -> datetime: ...


class CannotText(Exception):
    """The text was not queued; `str(error)` says why, in words a volunteer understands.

    `message` is those words marked with N_ (the page translates it), with "%(name)s" where
    `values` go: CannotText(N_("... %(why)s."), why=...).
    """

    def __init__(self, message: str, **values: Any) -> None:
        super().__init__(message % values if values else message)
        self.message = message
        self.values = values


class TooSoon(CannotText):
    """The volunteer's previous initial text was less than MIN_SEND_GAP ago."""


TOO_SOON = N_("Take a moment to read each message before you send it.")


# --- Scripts -------------------------------------------------------------------------------


def merge_fields(script: str) -> list[str]:
    """The merge tags a script uses, in order of first appearance."""
    return list(dict.fromkeys(MERGE_TAG.findall(script)))


def unknown_merge_fields(script: str, custom_field_names: list[str]) -> list[str]:
    """The merge tags in `script` that neither we nor the uploaded list can fill."""
    known = set(STANDARD_MERGE_FIELDS) | set(custom_field_names)
    return [name for name in merge_fields(script) if name not in known]


def render(script: str, contact: Contact | ContactRow, texter: User) -> str:
    """The script with every merge tag filled for this contact (or a row of its
    `MERGE_COLUMNS`) and volunteer."""
    values = {
        **contact.custom_fields,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "zip": contact.zip,
        "state": contact.state,
        "texter_name": texter.name,
    }
    return MERGE_TAG.sub(lambda match: values.get(match.group(1), match.group(0)), script)


# --- Choosing whom to text -----------------------------------------------------------------


def open_places(campaign: Campaign, now: datetime) -> list[tuple[str, str]]:
    """The distinct (zones, state) of untexted contacts that may get an initial text now."""
    return hours.open_pairs(
        untexted_places(campaign.id),
        now,
        campaign.window_start_hour,
        campaign.window_end_hour,
        trust_zip=campaign.trust_zip_alone,
    )


# A skip scan over ix_contact_new_places: each step is one index probe for the next place
# after the last, so a million contacts in 40 places cost 40 probes, not a million-row DISTINCT
# (PostgreSQL has no skip scan of its own).
_PLACES_SKIP_SCAN = text(
    """
    WITH RECURSIVE places AS (
        (SELECT time_zones, rule_states FROM contact
         WHERE campaign_id = :campaign AND status = 'new'
         ORDER BY time_zones, rule_states LIMIT 1)
        UNION ALL
        SELECT following.time_zones, following.rule_states FROM places
        CROSS JOIN LATERAL (
            SELECT c.time_zones, c.rule_states FROM contact AS c
            WHERE c.campaign_id = :campaign AND c.status = 'new'
              AND (c.time_zones, c.rule_states) > (places.time_zones, places.rule_states)
            ORDER BY c.time_zones, c.rule_states LIMIT 1
        ) AS following
    )
    SELECT time_zones, rule_states FROM places
    """
)


def untexted_places(campaign_id: int) -> list[tuple[str, str]]:
    """The distinct (zones, state) of the campaign's untexted contacts, in order.

    A few index probes per place on PostgreSQL whatever the campaign's size; SQLite (one
    process, development and tests) runs the plain DISTINCT.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        rows = db.session.execute(_PLACES_SKIP_SCAN, {"campaign": campaign_id})
    else:
        rows = db.session.execute(
            select(Contact.time_zones, Contact.rule_states)
            .where(Contact.campaign_id == campaign_id, Contact.status == ContactStatus.NEW)
            .distinct()
            .order_by(Contact.time_zones, Contact.rule_states)
        )
    return [(zones, state) for zones, state in rows]


# --- Queueing texts ------------------------------------------------------------------------


def queue_initial(
    campaign: Campaign | CampaignRow,
    contact_id: int,
    texter: User,
    idempotency_key: str,
    now: datetime,
    min_gap: timedelta = MIN_SEND_GAP,
    contact: SendingContactRow | None = None,
) -> int:
    """Write the initial message for one contact, once; its id. The caller enqueues it after
    commit.

    The contact's row (`contact`, read with `SENDING_CONTACT_COLUMNS` in this transaction, or
    read here) says whether it may be claimed, and is checked against the number policy and
    quiet hours and rendered; then `claim_and_insert` claims it, at the moment of writing, only
    if it still may be and its number and places are still those checked, and writes the text
    (one statement on PostgreSQL). Core statements on the session's connection (the send loop
    runs this for every click; the ORM costs more, docs/benchmarks.md). Loaded ORM objects of
    the contact are not refreshed by it.

    The claim also passes `read_gate`: the volunteer's previous initial text was at least
    `min_gap` ago.

    :raise CannotText: when the campaign is not active, the contact is not this volunteer's to
        text, was already texted, has opted out or is outside their texting hours; TooSoon
        when the volunteer's previous initial text was less than `min_gap` ago. Something may
        already be written then: the caller rolls back.
    :raise IntegrityError: when the idempotency key was used already (the caller rolls back).
    """
    if not campaign.is_active:
        raise CannotText(N_("This campaign is not active."))
    if contact is None:
        contact = read_contact(campaign, contact_id, texter)
    if contact is None or not contact.claimable:
        raise why_not_claimed(campaign, contact_id)
    check_textable_now(campaign, contact, now)
    body = render(campaign.script, contact, texter)
    return claim_and_insert(campaign, contact, texter, body, idempotency_key, now, min_gap)


class SendingContactRow(ContactRow, Protocol):
    """A contact's `SENDING_CONTACT_COLUMNS`: `ContactRow`, and whether the volunteer may claim
    it (in the campaign, untexted, free or theirs, neither opted out nor blocked)."""

    @property
    def claimable(self) -> bool: ...


def sending_contact_columns(texter: Any, organization: Any) -> tuple[Any, ...]:
    """What `queue_initial` reads of the contact it sends to (`SendingContactRow`), for the
    volunteer and organization given (values or bound parameters)."""
    claimable = (
        UNTEXTED
        & (Contact.texter_id.is_(None) | (Contact.texter_id == texter))
        & optouts.may_be_texted(organization, Contact.cell)
    )
    return (*MERGE_COLUMNS, Contact.cell, claimable.label("claimable"))


def read_contact(
    campaign: Campaign | CampaignRow, contact_id: int, texter: User
) -> SendingContactRow | None:
    """The contact's `SENDING_CONTACT_COLUMNS`, if it is in the campaign."""
    found: SendingContactRow | None = execute_core(
        _SENDING_CONTACT,
        {
            "contact": contact_id,
            "campaign": campaign.id,
            "texter": texter.id,
            "organization": campaign.organization_id,
        },
    ).first()
    return found


def check_textable_now(
    campaign: Campaign | CampaignRow, contact: ContactRow, now: datetime
) -> None:
    """The rules that live in Python, on a contact's row: the textable-number policy and quiet
    hours (the database checks the opt-outs, at the moment of writing).

    :raise CannotText: saying why.
    """
    untextable = numbers.check_stored(contact.cell, campaign.texts_us_territories)
    if untextable is not None:
        raise CannotText(N_("This number is not texted: %(why)s."), why=untextable.explanation)
    if not is_open(campaign, contact.time_zones, contact.rule_states, now):
        raise CannotText(N_("It is outside this person's texting hours."))


def is_open(campaign: Campaign | CampaignRow, zones: str, states: str, now: datetime) -> bool:
    """Whether the campaign's window is open now for contacts of this place (zones, states)."""
    return hours.is_open(
        zones,
        now,
        campaign.window_start_hour,
        campaign.window_end_hour,
        state=states,
        trust_zip=campaign.trust_zip_alone,
    )


def claim_and_insert(
    campaign: Campaign | CampaignRow,
    contact: ContactRow,
    texter: User,
    body: str,
    idempotency_key: str,
    now: datetime,
    min_gap: timedelta = MIN_SEND_GAP,
) -> int:
    """Pass the volunteer's read gate, claim the contact and queue its initial text `body`;
    the message's id.

    The claim is one conditional UPDATE: at the moment of writing, the contact is in the
    campaign, untexted, free or the volunteer's, neither opted out nor blocked, and its number
    and places are still `contact`'s (those the caller checked). On PostgreSQL the gate, the
    claim and the insert are one statement (data-modifying WITHs: the insert writes only what
    the claim claimed); elsewhere three.

    :raise CannotText: saying why nothing was claimed; TooSoon for the read gate. The caller
        rolls back.
    :raise IntegrityError: when the idempotency key was used already.
    """
    parameters = {
        "contact": contact.id,
        "campaign": campaign.id,
        "organization": campaign.organization_id,
        "texter": texter.id,
        "now": utcnow(),
        "earliest": now - min_gap,
        "gate_now": now,
        "checked_cell": contact.cell,
        "checked_zones": contact.time_zones,
        "checked_states": contact.rule_states,
        "initial": True,
        "body": body,
        "key": idempotency_key,
        "created": now,
    }
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.flush()  # (the claim sees an opt-out just added, as execute_core's would)
        written = _GATED_CLAIM_AND_INSERT.first(parameters)
        message_id = written.id if written is not None else None
        if message_id is None and not passed_gate(texter, now):
            raise TooSoon(TOO_SOON)
    else:
        read_gate(texter, now, min_gap)
        claimed = execute_core(_CLAIM, parameters).first()
        message_id = None
        if claimed is not None:
            message_id = insert_text(campaign, contact, texter, body, idempotency_key, now, True)
    if message_id is None:
        raise why_not_claimed(campaign, contact.id)
    return int(message_id)


def read_gate(texter: User, now: datetime, min_gap: timedelta) -> None:
    """Let the volunteer's initial text through if their previous one was `min_gap` ago or more,
    and record this one's moment: one conditional UPDATE of their row, whose lock makes two
    sends of the same volunteer at once take turns (the second then sees the first's moment).

    :raise TooSoon: otherwise (the caller rolls back).
    """
    passed = execute_core(
        _READ_GATE, {"texter": texter.id, "now": now, "earliest": now - min_gap}
    ).first()
    if passed is None:
        raise TooSoon(TOO_SOON)


_READ_GATE = (
    update(User)
    .where(
        User.id == bindparam("texter"),
        User.last_initial_at.is_(None) | (User.last_initial_at <= bindparam("earliest")),
    )
    .values(last_initial_at=bindparam("now"))
    .returning(User.id)
)


def passed_gate(texter: User, now: datetime) -> bool:
    """Whether `_GATED_CLAIM` passed the read gate (it wrote `now` then), for a claim that
    found nothing to claim."""
    last = db.session.scalar(select(User.last_initial_at).where(User.id == texter.id))
    return last is not None and last == now


# An untexted contact, the status written as a literal: the plan PostgreSQL keeps for a prepared
# statement can then use the partial indexes on `status = 'new'` (a bound parameter's would not
# match their predicate, and the send's top-up would read the volunteer's every contact).
UNTEXTED = Contact.status == literal_column(f"'{ContactStatus.NEW.value}'")

# What rendering a script reads of a contact, and where its places are (the hours check).
MERGE_COLUMNS = (
    Contact.id,
    Contact.first_name,
    Contact.last_name,
    Contact.zip,
    Contact.state,
    Contact.custom_fields,
    Contact.time_zones,
    Contact.rule_states,
)

# What sending an initial text reads of its campaign, named as the ORM's attributes.
SENDING_COLUMNS = (
    Campaign.id,
    Campaign.organization_id,
    (Campaign.status == CampaignStatus.ACTIVE).label("is_active"),
    Campaign.script,
    Campaign.window_start_hour,
    Campaign.window_end_hour,
    Campaign.smart_encoding,
    Campaign.trust_zip_alone,
    select(Organization.texts_us_territories)
    .where(Organization.id == Campaign.organization_id)
    .scalar_subquery()
    .label("texts_us_territories"),
)

# Built once: every send runs them.
_SENDING_CONTACT = select(
    *sending_contact_columns(bindparam("texter"), bindparam("organization"))
).where(Contact.id == bindparam("contact"), Contact.campaign_id == bindparam("campaign"))
_CLAIM = (
    update(Contact)
    .where(
        Contact.id == bindparam("contact"),
        Contact.campaign_id == bindparam("campaign"),
        UNTEXTED,
        (Contact.texter_id.is_(None)) | (Contact.texter_id == bindparam("texter")),
        optouts.may_be_texted(bindparam("organization"), Contact.cell),
        # What the caller checked (the number policy, quiet hours) is what is claimed.
        Contact.cell == bindparam("checked_cell"),
        Contact.time_zones == bindparam("checked_zones"),
        Contact.rule_states == bindparam("checked_states"),
    )
    .values(status=ContactStatus.TEXTED, texter_id=bindparam("texter"), updated_at=bindparam("now"))
    .returning(Contact.id)
)
# PostgreSQL: the read gate and the claim in one statement. The gate's UPDATE runs whether or
# not the claim finds its contact; the claim goes ahead only if the gate let it through.
_GATE = (
    update(User)
    .where(
        User.id == bindparam("texter"),
        User.last_initial_at.is_(None) | (User.last_initial_at <= bindparam("earliest")),
    )
    .values(last_initial_at=bindparam("gate_now"))
    .returning(User.id)
    .cte("gate")
)
_GATED_CLAIM = _CLAIM.where(select(_GATE.c.id).exists()).add_cte(_GATE).cte("claim")
# A volunteer's text, initial or reply. The campaign's sender is read by the INSERT itself (""
# for the deployment's default sender), as `Message.queued_to` does for the ORM's callers.
_CAMPAIGN_SENDER = (
    select(Sender.address)
    .join(Campaign, Campaign.sender_id == Sender.id)
    .where(Campaign.id == bindparam("campaign"))
    .scalar_subquery()
)
_INSERT_TEXT = (
    insert(Message)
    .values(
        organization_id=bindparam("organization"),
        campaign_id=bindparam("campaign"),
        contact_id=bindparam("contact"),
        texter_id=bindparam("texter"),
        direction=Direction.OUTBOUND,
        kind=MessageKind.TEXT,
        is_initial=bindparam("initial"),
        body=bindparam("body"),
        to_number=bindparam("cell"),
        sender=func.coalesce(_CAMPAIGN_SENDER, ""),
        status=MessageStatus.QUEUED,
        idempotency_key=bindparam("key"),
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(Message.id)
)
# PostgreSQL: the gate, the claim and `_INSERT_TEXT`'s row, written only for a claimed contact.
_CLAIMED_TEXT = {
    "organization_id": bindparam("organization"),
    "campaign_id": bindparam("campaign"),
    "contact_id": _GATED_CLAIM.c.id,
    "texter_id": bindparam("texter"),
    "direction": Direction.OUTBOUND,
    "kind": MessageKind.TEXT,
    "is_initial": bindparam("initial"),
    "body": bindparam("body"),
    "to_number": bindparam("checked_cell"),
    "sender": func.coalesce(_CAMPAIGN_SENDER, ""),
    "status": MessageStatus.QUEUED,
    "idempotency_key": bindparam("key"),
    "created_at": bindparam("created"),
    "updated_at": bindparam("created"),
    "from_number": "",  # (the columns' defaults, which an INSERT from a SELECT leaves out)
    "attempts": 0,
}
_GATED_CLAIM_AND_INSERT = Raw(
    insert(Message)
    .from_select(
        list(_CLAIMED_TEXT),
        select(
            *(
                type_coerce(
                    value if isinstance(value, ColumnElement) else literal(value),
                    Message.__table__.c[name].type,
                ).label(name)
                for name, value in _CLAIMED_TEXT.items()
            )
        ).select_from(_GATED_CLAIM),
    )
    .returning(Message.id)
)


def why_not_claimed(campaign: Campaign | CampaignRow, contact_id: int) -> CannotText:
    """Why `claim_contact` found nothing to claim (a refusal costs a few more queries)."""
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.campaign_id != campaign.id:
        return CannotText(N_("That contact is not in this campaign."))
    if optouts.is_opted_out(campaign.organization_id, contact.cell):
        return CannotText(N_("This person has opted out."))
    if optouts.is_blocked(campaign.organization_id, contact.cell):
        return CannotText(N_("The carrier says this number cannot receive texts."))
    return CannotText(N_("This person has already been texted."))


def queue_reply(contact: Contact, texter: User, body: str, idempotency_key: str) -> int:
    """Write a volunteer's reply in a conversation (no reply needed any more); its id. The
    caller enqueues it after commit.

    Two Core statements, as for `queue_initial`: the conversation's UPDATE, which checks the
    opt-out at the moment of writing, and the insert. The loaded `contact` is not refreshed.

    :raise CannotText: when the body is empty, the conversation is not theirs, the campaign is
        not active or the person opted out.
    :raise IntegrityError: when the idempotency key was used already (the caller rolls back).
    """
    body = body.strip()
    if not body:
        raise CannotText(N_("The message is empty."))
    if contact.texter_id != texter.id and not texter.is_organizer:
        raise CannotText(N_("This conversation belongs to another volunteer."))
    campaign = contact.campaign
    if not campaign.is_active:
        raise CannotText(N_("This campaign is not active."))
    now = utcnow()
    answered = execute_core(
        _ANSWERED,
        {
            "contact": contact.id,
            "organization": campaign.organization_id,
            "now": now,
            "preview": preview(body),
        },
    ).first()
    if answered is None:
        raise CannotText(N_("This person has opted out."))
    return insert_text(campaign, contact, texter, body, idempotency_key, now, initial=False)


def insert_text(
    campaign: Campaign | CampaignRow,
    contact: Any,
    texter: User,
    body: str,
    idempotency_key: str,
    now: datetime,
    initial: bool,
) -> int:
    """Queue a volunteer's text to `contact` (a row or object with id and cell); its id."""
    message_id: int = execute_core(
        _INSERT_TEXT,
        {
            "organization": campaign.organization_id,
            "campaign": campaign.id,
            "contact": contact.id,
            "texter": texter.id,
            "initial": initial,
            "body": body,
            "cell": contact.cell,
            "key": idempotency_key,
            "now": now,
        },
    ).scalar_one()
    return message_id


def preview(body: str) -> str:
    """A message as the inbox previews it: on one line, cut to PREVIEW_LENGTH."""
    flat = " ".join(body.split())
    return flat if len(flat) <= PREVIEW_LENGTH else flat[: PREVIEW_LENGTH - 1] + "…"


# A reply was written: the conversation needs none (nobody waits), and it is the latest
# message; unless the number opted out (no row).
_ANSWERED = (
    update(Contact)
    .where(
        Contact.id == bindparam("contact"),
        ~optouts.opted_out(bindparam("organization"), Contact.cell),
    )
    .values(
        needs_reply=False,
        waiting_since=None,
        last_message=bindparam("preview"),
        last_message_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(Contact.id)
)


def thread(contact: Contact) -> list[Message]:
    """Every message to and from the contact, oldest first: a conversation as people read it."""
    return list(
        db.session.scalars(
            select(Message)
            .where(Message.contact_id == contact.id)
            .order_by(Message.created_at, Message.id)
        )
    )


def thread_rows(contact_id: int) -> list[ThreadMessage]:
    """`thread` as plain rows of what a conversation page shows of each message (its id,
    direction, kind, body, status, refusal reason, error code, and the ids of the pictures a
    voter sent with it): one query, and a page with many messages builds no ORM objects."""
    messages: list[ThreadMessage] = []
    for row in execute_core(_THREAD_ROWS, {"contact": contact_id}):
        if messages and messages[-1].id == row.id:
            messages[-1].media.append(row.media_id)  # the same message, another picture
            continue
        messages.append(
            ThreadMessage(
                id=row.id,
                direction=row.direction,
                kind=row.kind,
                body=row.body,
                status=row.status,
                refusal_reason=row.refusal_reason,
                error_code=row.error_code,
                created_at=row.created_at,
                media=[row.media_id] if row.media_id is not None else [],
            )
        )
    return messages


@dataclass
class ThreadMessage:
    """A message of a thread as a conversation page shows it (`ThreadRow`)."""

    id: int
    direction: Direction
    kind: MessageKind
    body: str
    status: MessageStatus
    refusal_reason: str | None
    error_code: int | None
    created_at: datetime
    media: list[int] = field(default_factory=list)  # MessageMedia ids, in the voter's order


_THREAD_ROWS = (
    select(
        Message.id,
        Message.direction,
        Message.kind,
        Message.body,
        Message.status,
        Message.refusal_reason,
        Message.error_code,
        MessageMedia.id.label("media_id"),
        Message.created_at,
    )
    .outerjoin(MessageMedia, MessageMedia.message_id == Message.id)
    .where(Message.contact_id == bindparam("contact"))
    .order_by(Message.created_at, Message.id, MessageMedia.position)
)


def media_by_message(contact_id: int) -> dict[int, list[int]]:
    """The pictures voters sent in the contact's thread: message id -> MessageMedia ids."""
    rows = db.session.execute(
        select(MessageMedia.message_id, MessageMedia.id)
        .join(Message, Message.id == MessageMedia.message_id)
        .where(Message.contact_id == contact_id)
        .order_by(MessageMedia.message_id, MessageMedia.position)
    )
    found: dict[int, list[int]] = {}
    for message_id, media_id in rows:
        found.setdefault(message_id, []).append(media_id)
    return found


def message_for_key(idempotency_key: str) -> Message | None:
    """The message a form submission with this key already created, if any."""
    return db.session.scalars(
        select(Message).where(Message.idempotency_key == idempotency_key)
    ).first()
