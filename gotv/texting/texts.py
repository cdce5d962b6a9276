"""The texting rules: who may be texted, what they are sent, and what their replies mean.

Plain functions with no Flask imports beyond the database session. The three rules (never text an
opted-out number, never outside the recipient's hours, never the same message twice) are checked
when a volunteer clicks and again, in `deliver`, at the last step before Twilio.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Row,
    Select,
    Update,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import joinedload

from gotv.compliance import hours, keywords, optouts
from gotv.compliance.keywords import Intent
from gotv.compliance.optouts import is_opted_out
from gotv.db import Raw, db, execute_core
from gotv.edge import queue
from gotv.models import (
    BlockedNumber,
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    Direction,
    Message,
    MessageKind,
    MessageStatus,
    OptOut,
    Organization,
    Sender,
    User,
    utcnow,
)
from gotv.texting import live

log = logging.getLogger(__name__)

MERGE_TAG = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
STANDARD_MERGE_FIELDS = ("first_name", "last_name", "texter_name", "zip", "state")

# Our statuses in the order they happen; a status callback never moves a message backwards.
STATUS_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.ACCEPTED: 2,
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.UNDELIVERED: 4,
    MessageStatus.FAILED: 4,
}
# Twilio's MessageStatus values as we store them.
TWILIO_STATUS = {
    "queued": MessageStatus.ACCEPTED,
    "accepted": MessageStatus.ACCEPTED,
    "scheduled": MessageStatus.ACCEPTED,
    "sending": MessageStatus.ACCEPTED,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}
MAX_VALIDITY_SECONDS = 4 * 60 * 60
CONFIRMATION_SECONDS = 5 * 60  # 47 CFR 64.1200(a)(12): a confirmation within five minutes
# A Core row of a contact's columns (at least `MERGE_COLUMNS`), read where ORM objects cost too
# much: the send loop's statements.
ContactRow = Row[*tuple[Any, ...]]
# The same for a campaign: a row of (at least) `SENDING_COLUMNS`.
CampaignRow = Row[*tuple[Any, ...]]


class CannotText(Exception):
    """The text was not queued; `str(error)` says why, in words a volunteer understands."""


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


def textable_number(campaign: Campaign) -> ColumnElement[bool]:
    """A SQL condition: the contact's number is neither opted out nor blocked by the carrier."""
    return textable_in(campaign.organization_id)


def textable_in(organization_id: int | BindParameter[int]) -> ColumnElement[bool]:
    """`textable_number` for an organization id, or a bound parameter standing for one (in a
    statement built once)."""
    opted_out = exists().where(
        OptOut.organization_id == organization_id, OptOut.cell == Contact.cell
    )
    blocked = exists().where(
        BlockedNumber.organization_id == organization_id, BlockedNumber.cell == Contact.cell
    )
    return ~opted_out & ~blocked


def open_places(campaign: Campaign, now: datetime) -> list[tuple[str, str]]:
    """The distinct (zones, state) of untexted contacts that may get an initial text now."""
    return hours.open_pairs(
        untexted_places(campaign.id), now, campaign.window_start_hour, campaign.window_end_hour
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


def untexted(campaign: Campaign, texter: User) -> Select[Contact]:
    """A query for the untexted, not opted-out contacts this volunteer may text, in list order."""
    return (
        select(Contact)
        .where(
            Contact.campaign_id == campaign.id,
            Contact.status == ContactStatus.NEW,
            (Contact.texter_id.is_(None)) | (Contact.texter_id == texter.id),
            textable_number(campaign),
        )
        .order_by(Contact.id)
    )


def next_opening(campaign: Campaign, texter: User, now: datetime) -> datetime | None:
    """When the next contact the volunteer could take may be texted: `now` if someone may be
    texted now, None if nobody untexted is left.

    Places are tried soonest first, each with one indexed existence check (someone untexted,
    free or the volunteer's, neither opted out nor blocked), so the cost grows with the number
    of places, not of contacts. Contacts whose state never allows the campaign's window (say,
    an evening-only campaign in Rhode Island) never open, and are left out.
    """
    openings = []
    for zones, state in untexted_places(campaign.id):
        try:
            opens = hours.next_opening(
                zones, now, campaign.window_start_hour, campaign.window_end_hour, state=state
            )
        except ValueError:
            continue
        openings.append((opens, zones, state))
    for opens, zones, state in sorted(openings):
        someone = (
            untexted(campaign, texter)
            .where(Contact.time_zones == zones, Contact.rule_states == state)
            .with_only_columns(Contact.id)
            .order_by(None)
            .limit(1)
        )
        if db.session.execute(someone).first() is not None:
            return opens
    return None


# --- Queueing texts ------------------------------------------------------------------------


def queue_initial(
    campaign: Campaign | CampaignRow,
    contact_id: int,
    texter: User,
    idempotency_key: str,
    now: datetime,
) -> int:
    """Write the initial message for one contact, once; its id. The caller enqueues it after
    commit.

    Two statements when the text may be sent: the claim (`claim_contact`) and the insert, both
    Core statements on the session's connection (the send loop runs this once a second per
    volunteer; through the ORM it cost twice the CPU). Loaded ORM objects of the contact are
    not refreshed by it.

    :raise CannotText: when the campaign is not active, the contact is not this volunteer's to
        text, was already texted, has opted out or is outside their texting hours. The claim
        may already be written then: the caller rolls back.
    :raise IntegrityError: when the idempotency key was used already (the caller rolls back).
    """
    if not campaign.is_active:
        raise CannotText("This campaign is not active.")
    contact = claim_contact(campaign, contact_id, texter, now)
    body = render(campaign.script, contact, texter)
    return insert_text(campaign, contact, texter, body, idempotency_key, now, initial=True)


def claim_contact(
    campaign: Campaign | CampaignRow, contact_id: int, texter: User, now: datetime
) -> ContactRow:
    """Mark the contact texted by this volunteer, unless someone got there first; the contact's
    row (what `render` and the hours check read, and its cell).

    One conditional UPDATE checks, at the moment of writing, that the contact is in the
    campaign, untexted, free or the volunteer's, and neither opted out nor blocked; quiet hours
    (zone rules live in Python) are then checked on the row it returns. outbox.py checks all of
    it again before Twilio.

    :raise CannotText: saying why; when it is quiet hours the claim is already written, and the
        caller must roll back.
    """
    contact = execute_core(
        _CLAIM,
        {
            "contact": contact_id,
            "campaign": campaign.id,
            "organization": campaign.organization_id,
            "texter": texter.id,
            "now": utcnow(),
        },
    ).first()
    if contact is None:
        raise why_not_claimed(campaign, contact_id)
    if not hours.is_open(
        contact.time_zones,
        now,
        campaign.window_start_hour,
        campaign.window_end_hour,
        state=contact.rule_states,
    ):
        raise CannotText("It is outside this person's texting hours.")
    return contact


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
)

# Built once: every send runs them.
_CLAIM = (
    update(Contact)
    .where(
        Contact.id == bindparam("contact"),
        Contact.campaign_id == bindparam("campaign"),
        Contact.status == ContactStatus.NEW,
        (Contact.texter_id.is_(None)) | (Contact.texter_id == bindparam("texter")),
        textable_in(bindparam("organization")),
    )
    .values(status=ContactStatus.TEXTED, texter_id=bindparam("texter"), updated_at=bindparam("now"))
    .returning(*MERGE_COLUMNS, Contact.cell)
)
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


def why_not_claimed(campaign: Campaign | CampaignRow, contact_id: int) -> CannotText:
    """Why `claim_contact` found nothing to claim (a refusal costs a few more queries)."""
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.campaign_id != campaign.id:
        return CannotText("That contact is not in this campaign.")
    if is_opted_out(campaign.organization_id, contact.cell):
        return CannotText("This person has opted out.")
    if optouts.is_blocked(campaign.organization_id, contact.cell):
        return CannotText("The carrier says this number cannot receive texts.")
    return CannotText("This person has already been texted.")


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
        raise CannotText("The message is empty.")
    if contact.texter_id != texter.id and not texter.is_organizer:
        raise CannotText("This conversation belongs to another volunteer.")
    campaign = contact.campaign
    if not campaign.is_active:
        raise CannotText("This campaign is not active.")
    now = utcnow()
    answered = execute_core(
        _ANSWERED,
        {"contact": contact.id, "organization": campaign.organization_id, "now": now},
    ).first()
    if answered is None:
        raise CannotText("This person has opted out.")
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


# A reply was written: the conversation needs none, unless the number opted out (no row).
_ANSWERED = (
    update(Contact)
    .where(
        Contact.id == bindparam("contact"),
        ~exists().where(
            OptOut.organization_id == bindparam("organization"), OptOut.cell == Contact.cell
        ),
    )
    .values(needs_reply=False, updated_at=bindparam("now"))
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


def thread_rows(contact_id: int) -> list[ContactRow]:
    """`thread` as Core rows of what a conversation page shows of each message (its id,
    direction, kind, body, status, refusal reason and error code): a page with many messages
    builds no ORM objects."""
    return list(execute_core(_THREAD_ROWS, {"contact": contact_id}))


_THREAD_ROWS = (
    select(
        Message.id,
        Message.direction,
        Message.kind,
        Message.body,
        Message.status,
        Message.refusal_reason,
        Message.error_code,
    )
    .where(Message.contact_id == bindparam("contact"))
    .order_by(Message.created_at, Message.id)
)


def message_for_key(idempotency_key: str) -> Message | None:
    """The message a form submission with this key already created, if any."""
    return db.session.scalars(
        select(Message).where(Message.idempotency_key == idempotency_key)
    ).first()


# --- The last gate and the send ------------------------------------------------------------


# --- Webhooks ------------------------------------------------------------------------------


def record_status(params: Mapping[str, str], message_id: str | None = None) -> None:
    """Apply a Twilio status callback; repeated or late callbacks never move a message back.

    `message_id` comes from the callback URL the send gave Twilio, so a callback that arrives
    before the send recorded Twilio's answer still finds its message (and stores the SID).
    One conditional UPDATE does it: the database serializes callbacks for one message, and
    each compares its status with the row as it is then, so the furthest status always wins.
    """
    sid = params.get("MessageSid", "")
    status = TWILIO_STATUS.get(params.get("MessageStatus", ""))
    if status is None or not sid:
        log.info("status callback we cannot apply: %s (%s)", sid, params.get("MessageStatus"))
        return
    by_id = message_id is not None and message_id.isdigit()
    target = {"sid": sid, "message_id": int(message_id) if by_id and message_id else None}
    advance, first_error = _STATUS_BY_ID if by_id else _STATUS_BY_SID
    error_code = params.get("ErrorCode", "")
    moved = advance.first(
        {**target, "rank": STATUS_RANK[status], "status": status.value, "now": utcnow()},
        alone=not error_code.isdigit(),
    )
    if error_code.isdigit():
        first = execute_core(first_error, {**target, "code": int(error_code)}).scalar()
        if first is not None:
            message = db.session.get(Message, first)
            assert message is not None
            optouts.apply_carrier_error(message, int(error_code))
        db.session.commit()
    if moved is not None:
        live.publish(moved.texter_id, live.status_event(moved.contact_id, moved.id, moved.status))


def _status_statements(target: ColumnElement[bool]) -> tuple[Raw, Update]:
    """For the messages `target` picks: the UPDATE that moves a status forward (and stores a
    missing SID), returning what a live update needs, and the UPDATE that stores the first
    error code, returning the message id.

    Built once: a status callback is the busiest request we serve, so the first is Raw, and
    the second (rare) a Core statement. Nothing in the session needs to hear of either.
    """
    # STATUS_RANK in SQL; the statuses outside it (refused, received) are final. Written into
    # the SQL (they are our own constants) rather than sent as a dozen parameters every time.
    rank = case(
        {
            literal_column(f"'{key.value}'"): literal_column(str(rank))
            for key, rank in STATUS_RANK.items()
        },
        value=Message.status,
        else_=literal_column("99"),
    )
    moves_forward = rank < bindparam("rank")
    advance = (
        update(Message)
        .where(target, moves_forward | Message.twilio_sid.is_(None))
        .values(
            twilio_sid=func.coalesce(Message.twilio_sid, bindparam("sid")),
            status=case((moves_forward, bindparam("status")), else_=Message.status),
            updated_at=bindparam("now"),
        )
        .returning(Message.id, Message.texter_id, Message.contact_id, Message.status)
        .execution_options(synchronize_session=False)
    )
    first_error = (
        update(Message)
        .where(target, Message.error_code.is_(None))
        .values(error_code=bindparam("code"))
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return Raw(advance), first_error


# By our id, from the signed callback URL; a SID we stored already must agree with the callback.
_STATUS_BY_ID = _status_statements(
    (Message.id == bindparam("message_id"))
    & (Message.twilio_sid.is_(None) | (Message.twilio_sid == bindparam("sid")))
)
_STATUS_BY_SID = _status_statements(Message.twilio_sid == bindparam("sid"))


def record_inbound(params: Mapping[str, str]) -> int | None:
    """Store a voter's reply in its conversation and act on what it means; returns its id.

    Idempotent on MessageSid: a retried webhook returns None and changes nothing. A reply that
    is none of opt out, opt in, help or a bare "yes" (nearly all of them) costs three
    statements: find the conversation, insert the reply, and one UPDATE of the contact that
    raises its unread count and, unless the number is opted out, asks for a volunteer's reply.
    """
    sid, cell, body = params.get("MessageSid", ""), params.get("From", ""), params.get("Body", "")
    if not sid:
        return None
    # Raw statements in the session's transaction: a fraction of the CPU of the same through
    # the ORM, and the rarer replies still use the ORM after them.
    contact = conversation_for(cell)
    now = utcnow()
    stored = _INSERT_REPLY.first(
        {
            "organization_id": contact.organization_id if contact else None,
            "campaign_id": contact.campaign_id if contact else None,
            "contact_id": contact.id if contact else None,
            "body": body,
            "from_number": cell,
            "to_number": params.get("To", ""),
            "sid": sid,
            "now": now,
        }
    )
    message_id = stored.id if stored else None
    if message_id is None:
        db.session.rollback()
        return None  # the same webhook again (Twilio retries), maybe at the same moment
    replies: list[Message] = []
    event: dict[str, object] = {}
    if contact is None:
        opt_out_stranger(message_id, cell, params.get("To", ""), body)
    else:
        verdict = keywords.explain(body)
        if verdict.intent in (Intent.NONE, Intent.POSSIBLE_OPT_OUT) and not _is_bare_yes(body):
            row = _AWAIT_REPLY.first(
                {
                    "contact_id": contact.id,
                    "organization_id": contact.organization_id,
                    "opted_out_cell": contact.cell,
                    "suggested": verdict.intent == Intent.POSSIBLE_OPT_OUT,
                    "now": now,
                },
            )
            event = live.inbound_event(row, message_id, body)
        else:
            event, replies = _act_in_full(contact.id, message_id, body)
    db.session.commit()
    if replies:
        queue.wake_senders()
    live.publish(contact.texter_id if contact else None, event)
    return int(message_id)


def _is_bare_yes(body: str) -> bool:
    """A plain YES: it lifts an opt-out (as Twilio's does), so it takes the full path."""
    return keywords.normalize(body) == "yes"


# A reply that asks nothing of us: one more unread, and unless the number is opted out, waiting
# for a volunteer (flagged when it looks like a request to stop). Returns what the inbox shows.
_opted_out = (
    exists()
    .where(
        OptOut.organization_id == bindparam("organization_id"),
        OptOut.cell == bindparam("opted_out_cell"),
    )
    .correlate(None)
)
# ON CONFLICT rather than catching the unique violation: a retried webhook is ordinary, and
# PostgreSQL logs every violation as an error. (SQLite reads the clause the same way.)
_INSERT_REPLY = Raw(
    postgresql.insert(Message)
    .values(
        organization_id=bindparam("organization_id"),
        campaign_id=bindparam("campaign_id"),
        contact_id=bindparam("contact_id"),
        direction=Direction.INBOUND,
        kind=MessageKind.TEXT,
        is_initial=False,
        body=bindparam("body"),
        from_number=bindparam("from_number"),
        to_number=bindparam("to_number"),
        status=MessageStatus.RECEIVED,
        twilio_sid=bindparam("sid"),
        sender="",
        attempts=0,
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .on_conflict_do_nothing(index_elements=[Message.twilio_sid])
    .returning(Message.id)
)

_AWAIT_REPLY = Raw(
    update(Contact)
    .where(Contact.id == bindparam("contact_id"))
    .values(
        unread=Contact.unread + 1,
        updated_at=bindparam("now"),
        needs_reply=case((_opted_out, Contact.needs_reply), else_=True),
        opt_out_suggested=case(
            (_opted_out, Contact.opt_out_suggested), else_=bindparam("suggested")
        ),
    )
    .returning(
        Contact.id,
        Contact.campaign_id,
        Contact.first_name,
        Contact.last_name,
        Contact.unread,
        Contact.needs_reply,
        Contact.opt_out_suggested,
    )
    .execution_options(synchronize_session=False)
)


def _act_in_full(
    contact_id: int, message_id: int, body: str
) -> tuple[dict[str, object], list[Message]]:
    """The rarer replies (opt out, opt in, help, a bare yes), through the ORM: act on the
    reply, raise the unread count; returns the live event and the automatic replies queued."""
    contact = db.session.get(Contact, contact_id, options=[joinedload(Contact.campaign)])
    assert contact is not None
    contact.unread = Contact.unread + 1
    replies = act_on_reply(contact, message_id, body)
    db.session.flush()
    # Read before the commit, which would expire the row and cost another query.
    return live.inbound_event(contact, message_id, body), replies


def opt_out_stranger(message_id: int, cell: str, to_number: str, body: str) -> None:
    """Honour an opt-out from a number we never texted, for every organization it could mean.

    That is the organizations with a sender at the number it was sent to (`to_number`); when
    none has one, the number is the deployment's default sender, which every organization may
    text from. Twilio's own block already stops its keywords; this also covers the phrases.
    """
    verdict = keywords.explain(body)
    if verdict.intent != Intent.OPT_OUT:
        return
    organization_ids = list(
        db.session.scalars(select(Sender.organization_id).where(Sender.address == to_number))
    ) or list(db.session.scalars(select(Organization.id)))
    source = "inbound_keyword" if verdict.rule.startswith("keyword") else "inbound_phrase"
    for organization_id in organization_ids:
        optouts.record_opt_out(organization_id, cell, source, message_id, rule=verdict.rule)


def conversation_for(cell: str) -> Any:
    """The contact a reply from `cell` belongs to: whoever we texted last at that number.

    A named tuple of its id, cell, campaign_id, organization_id and texter_id, or None.
    """
    return _CONVERSATION.first({"cell": cell})


_CONVERSATION = Raw(
    select(
        Contact.id,
        Contact.cell,
        Contact.campaign_id,
        Campaign.organization_id,
        Contact.texter_id,
    )
    .join(Message, Message.contact_id == Contact.id)
    .join(Campaign, Campaign.id == Contact.campaign_id)
    .where(Message.to_number == bindparam("cell"), Message.direction == Direction.OUTBOUND)
    .order_by(Message.created_at.desc(), Message.id.desc())
    .limit(1)
)


def act_on_reply(contact: Contact, message_id: int, body: str) -> list[Message]:
    """Act on what a reply means: opt out, opt back in, ask for help, or wait for a volunteer.

    Returns the automatic replies it queued (an opt-out confirmation or the help text), which
    are sent only where Twilio has not already answered the same keyword itself.
    """
    organization_id, cell = contact.campaign.organization_id, contact.cell
    verdict = keywords.explain(body)
    intent = verdict.intent
    contact.updated_at = utcnow()
    if intent == Intent.OPT_OUT:
        source = "inbound_keyword" if verdict.rule.startswith("keyword") else "inbound_phrase"
        opt_out_id = optouts.record_opt_out(
            organization_id, cell, source, message_id, rule=verdict.rule
        )
        if opt_out_id is None or keywords.twilio_answers(body):
            return []
        confirmation = optouts.queue_confirmation(opt_out_id, contact)
        return [confirmation] if confirmation else []
    opted_out = is_opted_out(organization_id, cell)
    # Twilio lifts its own block on YES (in English only), so ours follows it exactly.
    if intent == Intent.OPT_IN or (opted_out and keywords.normalize(body) == "yes"):
        optouts.lift_opt_out(organization_id, cell, why=f"voter replied {body!r}")
        return []
    if intent == Intent.HELP and not opted_out and not keywords.twilio_answers(body):
        return [optouts.queue_help_reply(contact)]
    if not opted_out:
        contact.needs_reply = True
        contact.opt_out_suggested = intent == Intent.POSSIBLE_OPT_OUT
    return []
