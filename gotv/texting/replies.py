"""Twilio's callbacks, recorded: voters' replies and what they mean, and delivery statuses.

Each is idempotent (Twilio retries) and never moves a message backwards. The busiest statements
are Raw (gotv.db): a webhook answers thousands of times a minute on election day.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Update,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import joinedload

from gotv import ids
from gotv.compliance import keywords, optouts
from gotv.compliance.keywords import Intent
from gotv.db import Raw, db, execute_core
from gotv.edge import queue, sms
from gotv.models import (
    Campaign,
    Contact,
    Direction,
    Message,
    MessageKind,
    MessageMedia,
    MessageStatus,
    utcnow,
)
from gotv.texting import live, outbox, senders, texts

log = logging.getLogger(__name__)

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


def record_status(
    params: Mapping[str, str], account_sid: str, message_id: str | None = None
) -> None:
    """Apply a Twilio status callback from the account `account_sid` (its signature checked);
    repeated or late callbacks never move a message back, and a callback only ever touches a
    message that went out through that account.

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
    by_id = ids.parse(message_id)
    target = {
        "sid": sid,
        "message_id": by_id,
        "account": account_sid,
        "instance": sms.default_credentials().account_sid,
    }
    advance, first_error = _STATUS_BY_ID if by_id is not None else _STATUS_BY_SID
    error_code = ids.parse(params.get("ErrorCode"))  # a number, as ids are
    now = utcnow()
    moved = advance.first(
        {**target, "rank": STATUS_RANK[status], "status": status.value, "now": now},
        alone=error_code is None,
    )
    if error_code is not None:
        first = execute_core(first_error, {**target, "code": error_code}).scalar()
        if first is not None:
            message = db.session.get(Message, first)
            assert message is not None
            action = optouts.apply_carrier_error(message, error_code)
            outbox.heed(account_sid, action, now)
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


# Sent through the callback's account (messages claimed before accounts were recorded went
# through the instance's).
_THROUGH_ITS_ACCOUNT = func.coalesce(Message.account_sid, bindparam("instance")) == bindparam(
    "account"
)
# By our id, from the signed callback URL; a SID we stored already must agree with the callback.
_STATUS_BY_ID = _status_statements(
    (Message.id == bindparam("message_id"))
    & (Message.twilio_sid.is_(None) | (Message.twilio_sid == bindparam("sid")))
    & _THROUGH_ITS_ACCOUNT
)
_STATUS_BY_SID = _status_statements((Message.twilio_sid == bindparam("sid")) & _THROUGH_ITS_ACCOUNT)


def record_inbound(
    params: Mapping[str, str], account_sid: str, recipient: senders.Recipient | None
) -> int | None:
    """Store a voter's reply in its conversation and act on what it means; returns its id.

    `account_sid` is the Twilio account that received it (its signature checked) and
    `recipient` whose sender it came to (`senders.recipient_of`): the conversation is that
    organization's latest with the voter from that sender, and an opt-out is recorded there.
    A reply to a number no organization uses (None) records nothing anywhere.

    Idempotent on MessageSid: a retried webhook returns None and changes nothing. A reply that
    is none of opt out, opt in, help or a bare "yes" (nearly all of them) costs three
    statements: find the conversation, insert the reply, and one UPDATE of the contact that
    raises its unread count and, unless the number is opted out, asks for a volunteer's reply.
    """
    sid, cell, body = params.get("MessageSid", ""), params.get("From", ""), params.get("Body", "")
    if not sid:
        return None
    if recipient is None:
        log.warning(
            "reply %s to %s, which no organization uses (account %s): nothing recorded",
            sid,
            params.get("To", ""),
            account_sid,
        )
        return None
    # Raw statements in the session's transaction: a fraction of the CPU of the same through
    # the ORM, and the rarer replies still use the ORM after them.
    contact = conversation_for(cell, recipient)
    now = utcnow()
    stored = _INSERT_REPLY.first(
        {
            "organization_id": contact.organization_id if contact else recipient.organization_id,
            "campaign_id": contact.campaign_id if contact else None,
            "contact_id": contact.id if contact else None,
            "body": body,
            "from_number": cell,
            "to_number": params.get("To", ""),
            "sid": sid,
            "sender": recipient.sender,
            "account_sid": account_sid,
            "now": now,
        }
    )
    message_id = stored.id if stored else None
    if message_id is None:
        db.session.rollback()
        return None  # the same webhook again (Twilio retries), maybe at the same moment
    media = store_media(message_id, params)
    meaning = Meaning.of(body, params.get("OptOutType", ""))
    replies: list[Message] = []
    event: dict[str, object] = {}
    if contact is None:
        opt_out_stranger(message_id, cell, recipient, meaning)
    elif meaning.verdict.intent in (Intent.NONE, Intent.POSSIBLE_OPT_OUT) and not meaning.bare_yes:
        row = _AWAIT_REPLY.first(
            {
                "contact_id": contact.id,
                "organization_id": contact.organization_id,
                "opted_out_cell": contact.cell,
                "suggested": meaning.verdict.intent == Intent.POSSIBLE_OPT_OUT,
                "now": now,
                "preview": texts.preview(body),
            },
        )
        event = live.inbound_event(row, message_id, body, media)
    else:
        event, replies = _act_in_full(contact.id, message_id, body, media, meaning, recipient)
    db.session.commit()
    if replies:
        queue.wake_senders()
    live.publish(contact.texter_id if contact else None, event)
    return int(message_id)


@dataclass(frozen=True)
class Meaning:
    """What a reply asks of us, and whether Twilio already answered it itself.

    Twilio says so with OptOutType (STOP, START or HELP) when the number is in a Messaging
    Service with Advanced Opt-Out; otherwise it answers its default keywords alone.
    """

    verdict: keywords.Verdict
    twilio_answered: bool
    bare_yes: bool  # a plain YES: it lifts an opt-out (as Twilio's does): the full path

    @classmethod
    def of(cls, body: str, opt_out_type: str) -> Meaning:
        by_twilio = TWILIO_OPT_OUT_TYPES.get(opt_out_type.strip().upper())
        if by_twilio is not None:
            verdict = keywords.Verdict(by_twilio, "twilio_opt_out_type")
            return cls(verdict, twilio_answered=True, bare_yes=False)
        return cls(
            keywords.explain(body),
            twilio_answered=keywords.twilio_answers(body),
            bare_yes=keywords.normalize(body) == "yes",
        )


# Twilio's Advanced Opt-Out names the keyword class it matched.
TWILIO_OPT_OUT_TYPES = {"STOP": Intent.OPT_OUT, "START": Intent.OPT_IN, "HELP": Intent.HELP}
# At most this many pictures of one reply are kept (Twilio sends up to ten).
MAX_MEDIA = 10


def store_media(message_id: int, params: Mapping[str, str]) -> int:
    """List the pictures of an MMS reply (NumMedia, MediaUrl<n>, MediaContentType<n>); how
    many. They stay at Twilio; a thread shows them through gotv."""
    count = params.get("NumMedia", "0")
    listed = min(int(count), MAX_MEDIA) if count.isdigit() else 0
    for position in range(listed):
        url = params.get(f"MediaUrl{position}", "")
        kind = params.get(f"MediaContentType{position}", "")[:100]
        if url and len(url) <= 500:
            db.session.add(
                MessageMedia(message_id=message_id, position=position, content_type=kind, url=url)
            )
    return listed


# A reply that asks nothing of us: one more unread, and unless the number is opted out, waiting
# for a volunteer (flagged when it looks like a request to stop). Returns what the inbox shows.
_opted_out = optouts.opted_out(bindparam("organization_id"), bindparam("opted_out_cell")).correlate(
    None
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
        sender=bindparam("sender"),
        account_sid=bindparam("account_sid"),
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
        last_message=bindparam("preview"),
        last_message_at=bindparam("now"),
        needs_reply=case((_opted_out, Contact.needs_reply), else_=True),
        waiting_since=case(
            (_opted_out, Contact.waiting_since),
            else_=func.coalesce(Contact.waiting_since, bindparam("now")),
        ),
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
        Contact.waiting_since,
    )
    .execution_options(synchronize_session=False)
)


def _act_in_full(
    contact_id: int,
    message_id: int,
    body: str,
    media: int,
    meaning: Meaning,
    recipient: senders.Recipient,
) -> tuple[dict[str, object], list[Message]]:
    """The rarer replies (opt out, opt in, help, a bare yes), through the ORM: act on the
    reply, raise the unread count; returns the live event and the automatic replies queued."""
    contact = db.session.get(Contact, contact_id, options=[joinedload(Contact.campaign)])
    assert contact is not None
    contact.unread = Contact.unread + 1
    contact.last_message = texts.preview(body)
    contact.last_message_at = utcnow()
    replies = act_on_reply(contact, message_id, body, meaning)
    if meaning.verdict.intent == Intent.OPT_OUT and recipient.organization_id is None:
        also_opt_out(contact.campaign.organization_id, contact.cell, message_id, meaning)
    db.session.flush()
    opted_out = optouts.is_opted_out(contact.campaign.organization_id, contact.cell)
    # Read before the commit, which would expire the row and cost another query.
    return live.inbound_event(contact, message_id, body, media, opted_out=opted_out), replies


def opt_out_stranger(
    message_id: int, cell: str, recipient: senders.Recipient, meaning: Meaning
) -> None:
    """Honour an opt-out from a number none of the recipient's conversations texted: it is
    recorded for the organization owning the sender it came to (the shared default sender
    belongs to none, and its organizations never texted this number). Twilio's own block
    already stops its keywords; this also covers the phrases."""
    if meaning.verdict.intent != Intent.OPT_OUT or recipient.organization_id is None:
        return
    optouts.record_opt_out(
        recipient.organization_id,
        cell,
        source_of(meaning.verdict),
        message_id,
        rule=meaning.verdict.rule,
    )


def also_opt_out(organization_id: int, cell: str, message_id: int, meaning: Meaning) -> None:
    """A stop to the instance's shared default sender: the voter cannot tell apart the
    organizations that texted them from it, so every one of them stops."""
    others = db.session.scalars(
        select(Message.organization_id)
        .where(
            Message.to_number == cell,
            Message.direction == Direction.OUTBOUND,
            Message.sender == "",
            Message.organization_id != organization_id,
        )
        .distinct()
    )
    for other in list(others):
        if other is not None:
            optouts.record_opt_out(
                other, cell, source_of(meaning.verdict), message_id, rule=meaning.verdict.rule
            )


def source_of(verdict: keywords.Verdict) -> str:
    """How an opt-out reply is recorded: a keyword (ours or Twilio's), or a phrase."""
    keyword = verdict.rule.startswith("keyword") or verdict.rule == "twilio_opt_out_type"
    return "inbound_keyword" if keyword else "inbound_phrase"


def conversation_for(cell: str, recipient: senders.Recipient) -> Any:
    """The conversation a reply from `cell` to the recipient's sender belongs to: the latest
    in which the organization texted that number from that sender (any organization's, for
    the shared default sender).

    A named tuple of its id, cell, campaign_id, organization_id and texter_id, or None.
    """
    return _CONVERSATION.first(
        {"cell": cell, "sender": recipient.sender, "organization": recipient.organization_id}
    )


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
    .where(
        Message.to_number == bindparam("cell"),
        Message.direction == Direction.OUTBOUND,
        Message.sender == bindparam("sender"),
        cast(bindparam("organization"), Integer).is_(None)
        | (Message.organization_id == bindparam("organization")),
    )
    .order_by(Message.created_at.desc(), Message.id.desc())
    .limit(1)
)


def act_on_reply(
    contact: Contact, message_id: int, body: str, meaning: Meaning | None = None
) -> list[Message]:
    """Act on what a reply means: opt out, opt back in, ask for help, or wait for a volunteer.

    Returns the automatic replies it queued (an opt-out confirmation or the help text), which
    are sent only where Twilio has not already answered the same keyword itself: no voter ever
    gets two confirmations.
    """
    organization_id, cell = contact.campaign.organization_id, contact.cell
    meaning = meaning or Meaning.of(body, "")
    verdict = meaning.verdict
    intent = verdict.intent
    contact.updated_at = utcnow()
    if intent == Intent.OPT_OUT:
        opt_out_id = optouts.record_opt_out(
            organization_id, cell, source_of(verdict), message_id, rule=verdict.rule
        )
        if opt_out_id is None or meaning.twilio_answered:
            return []
        confirmation = optouts.queue_confirmation(opt_out_id, contact, body)
        return [confirmation] if confirmation else []
    opted_out = optouts.is_opted_out(organization_id, cell)
    # Twilio lifts its own block on YES (in English only), so ours follows it exactly.
    if intent == Intent.OPT_IN or (opted_out and meaning.bare_yes):
        optouts.lift_opt_out(organization_id, cell, why=f"voter replied {body!r}")
        return []
    if intent == Intent.HELP and not opted_out and not meaning.twilio_answered:
        return [optouts.queue_help_reply(contact)]
    if not opted_out:
        contact.needs_reply = True
        contact.waiting_since = contact.waiting_since or contact.updated_at
        contact.opt_out_suggested = intent == Intent.POSSIBLE_OPT_OUT
    return []


def picture(media: MessageMedia, account_sid: str | None) -> tuple[str, bytes]:
    """The picture `media` a voter sent to the account `account_sid` (None: the instance's):
    its type and bytes, fetched from Twilio with that account's credentials.

    :raise sms.MediaRefused: when it cannot be fetched, or is not a picture of a fit size.
    """
    credentials = senders.credentials_for(account_sid) if account_sid else None
    if account_sid is None:
        credentials = sms.default_credentials()
    if credentials is None:
        raise sms.MediaRefused(f"the Twilio account {account_sid} is no longer connected")
    return sms.fetch_media(credentials, media.url)
