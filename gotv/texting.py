"""The texting rules: who may be texted, what they are sent, and what their replies mean.

Plain functions with no Flask imports beyond the database session. The three rules (never text an
opted-out number, never outside the recipient's hours, never the same message twice) are checked
when a volunteer clicks and again, in `deliver`, at the last step before Twilio.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, exists, select, update
from sqlalchemy.exc import IntegrityError

from gotv import hours, keywords, sms
from gotv.db import db
from gotv.models import (
    Campaign,
    Contact,
    ContactStatus,
    Direction,
    Message,
    MessageStatus,
    OptOut,
    User,
    utcnow,
)

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
UNSUBSCRIBED_RECIPIENT = 21610  # Twilio: the recipient replied STOP to this sender
MAX_VALIDITY_SECONDS = 4 * 60 * 60


class CannotText(Exception):
    """The text was not queued; `str(error)` says why, in words a volunteer understands."""


class RetryLater(Exception):
    """Twilio is unreachable; the message is queued again and the job should be retried."""


# --- Scripts -------------------------------------------------------------------------------


def merge_fields(script: str) -> list[str]:
    """The merge tags a script uses, in order of first appearance."""
    return list(dict.fromkeys(MERGE_TAG.findall(script)))


def unknown_merge_fields(script: str, custom_field_names: list[str]) -> list[str]:
    """The merge tags in `script` that neither we nor the uploaded list can fill."""
    known = set(STANDARD_MERGE_FIELDS) | set(custom_field_names)
    return [name for name in merge_fields(script) if name not in known]


def render(script: str, contact: Contact, texter: User) -> str:
    """The script with every merge tag filled for this contact and volunteer."""
    values = {
        **contact.custom_fields,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "zip": contact.zip,
        "state": contact.state,
        "texter_name": texter.name,
    }
    return MERGE_TAG.sub(lambda match: values.get(match.group(1), match.group(0)), script)


# --- Opt-outs ------------------------------------------------------------------------------


def is_opted_out(organization_id: int, cell: str) -> bool:
    """True when `cell` has opted out of this organization's texts."""
    query = select(OptOut.id).where(OptOut.organization_id == organization_id, OptOut.cell == cell)
    return db.session.execute(query).first() is not None


def record_opt_out(
    organization_id: int,
    cell: str,
    source: str,
    message_id: int | None = None,
    user_id: int | None = None,
) -> None:
    """Opt `cell` out of everything this organization sends, at once (in this transaction).

    Queued messages to the number are refused now rather than left for the send gate.
    """
    if not is_opted_out(organization_id, cell):
        try:
            with db.session.begin_nested():
                db.session.add(
                    OptOut(
                        organization_id=organization_id,
                        cell=cell,
                        source=source,
                        message_id=message_id,
                        user_id=user_id,
                    )
                )
        except IntegrityError:
            pass  # recorded by a concurrent request: the outcome is the same
    db.session.execute(
        update(Message)
        .where(
            Message.organization_id == organization_id,
            Message.to_number == cell,
            Message.status == MessageStatus.QUEUED,
        )
        .values(status=MessageStatus.REFUSED, refusal_reason="opted_out")
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(Contact)
        .where(Contact.cell == cell, Contact.campaign_id.in_(campaign_ids(organization_id)))
        .values(needs_reply=False)
        .execution_options(synchronize_session=False)
    )


def campaign_ids(organization_id: int) -> Select[int]:
    """A subquery: the ids of the organization's campaigns."""
    return select(Campaign.id).where(Campaign.organization_id == organization_id)


def lift_opt_out(organization_id: int, cell: str) -> None:
    """The number asked to be texted again (START/UNSTOP)."""
    for opt_out in db.session.scalars(
        select(OptOut).where(OptOut.organization_id == organization_id, OptOut.cell == cell)
    ):
        db.session.delete(opt_out)


# --- Choosing whom to text -----------------------------------------------------------------


def not_opted_out(campaign: Campaign) -> ColumnElement[bool]:
    """A SQL condition: the contact's number is not on the organization's opt-out list."""
    return ~exists().where(
        OptOut.organization_id == campaign.organization_id, OptOut.cell == Contact.cell
    )


def textable_zone_lists(campaign: Campaign, now: datetime) -> list[str]:
    """The distinct zone lists of this campaign's untexted contacts that are open right now."""
    zone_lists = db.session.scalars(
        select(Contact.time_zones)
        .where(Contact.campaign_id == campaign.id, Contact.status == ContactStatus.NEW)
        .distinct()
    )
    return hours.open_zone_lists(
        zone_lists, now, campaign.window_start_hour, campaign.window_end_hour
    )


def untexted(campaign: Campaign, texter: User) -> Select[Contact]:
    """A query for the untexted, not opted-out contacts this volunteer may text, in list order."""
    return (
        select(Contact)
        .where(
            Contact.campaign_id == campaign.id,
            Contact.status == ContactStatus.NEW,
            (Contact.texter_id.is_(None)) | (Contact.texter_id == texter.id),
            not_opted_out(campaign),
        )
        .order_by(Contact.id)
    )


def next_contact(campaign: Campaign, texter: User, now: datetime) -> Contact | None:
    """The next contact this volunteer should text now, or None when none may be texted."""
    open_lists = textable_zone_lists(campaign, now)
    if not open_lists:
        return None
    query = untexted(campaign, texter).where(Contact.time_zones.in_(open_lists)).limit(1)
    return db.session.scalars(query).first()


def next_opening(campaign: Campaign, texter: User, now: datetime) -> datetime | None:
    """When the next contact held back by quiet hours may be texted (None if nobody waits)."""
    waiting = db.session.scalars(
        untexted(campaign, texter).with_only_columns(Contact.time_zones).distinct()
    )
    openings = [
        hours.next_opening(zones, now, campaign.window_start_hour, campaign.window_end_hour)
        for zones in waiting
    ]
    return min(openings, default=None)


# --- Queueing texts ------------------------------------------------------------------------


def queue_initial_message(
    campaign: Campaign, contact_id: int, texter: User, idempotency_key: str, now: datetime
) -> Message:
    """Write the initial message for one contact, once; the caller enqueues it after commit.

    :raise CannotText: when the campaign is not active, the contact is not this volunteer's to
        text, was already texted, has opted out or is outside their texting hours.
    """
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.campaign_id != campaign.id:
        raise CannotText("That contact is not in this campaign.")
    if not campaign.is_active:
        raise CannotText("This campaign is not active.")
    if is_opted_out(campaign.organization_id, contact.cell):
        raise CannotText("This person has opted out.")
    if not hours.is_open(
        contact.time_zones, now, campaign.window_start_hour, campaign.window_end_hour
    ):
        raise CannotText("It is outside this person's texting hours.")
    claim_contact(contact, texter)
    body = render(campaign.script, contact, texter)
    return add_outbound(contact, texter, body, idempotency_key, is_initial=True)


def claim_contact(contact: Contact, texter: User) -> None:
    """Mark the contact texted by this volunteer, unless someone got there first.

    :raise CannotText: when the contact was already texted or belongs to another volunteer.
    """
    claimed = db.session.execute(
        update(Contact)
        .where(
            Contact.id == contact.id,
            Contact.status == ContactStatus.NEW,
            (Contact.texter_id.is_(None)) | (Contact.texter_id == texter.id),
        )
        .values(status=ContactStatus.TEXTED, texter_id=texter.id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise CannotText("This person has already been texted.")
    db.session.refresh(contact)


def queue_reply(contact: Contact, texter: User, body: str, idempotency_key: str) -> Message:
    """Write a volunteer's reply in a conversation; the caller enqueues it after commit.

    :raise CannotText: when the body is empty, the conversation is not theirs, the campaign is
        not active or the person opted out.
    """
    body = body.strip()
    if not body:
        raise CannotText("The message is empty.")
    if contact.texter_id != texter.id and not texter.is_organizer:
        raise CannotText("This conversation belongs to another volunteer.")
    if not contact.campaign.is_active:
        raise CannotText("This campaign is not active.")
    if is_opted_out(contact.campaign.organization_id, contact.cell):
        raise CannotText("This person has opted out.")
    contact.needs_reply = False
    return add_outbound(contact, texter, body, idempotency_key)


def add_outbound(
    contact: Contact, texter: User, body: str, idempotency_key: str, is_initial: bool = False
) -> Message:
    """Add a queued outbound message to the session (the outbox row a send job picks up)."""
    message = Message(
        organization_id=contact.campaign.organization_id,
        campaign_id=contact.campaign_id,
        contact_id=contact.id,
        texter_id=texter.id,
        direction=Direction.OUTBOUND,
        is_initial=is_initial,
        body=body,
        to_number=contact.cell,
        status=MessageStatus.QUEUED,
        idempotency_key=idempotency_key,
    )
    db.session.add(message)
    db.session.flush()
    return message


def message_for_key(idempotency_key: str) -> Message | None:
    """The message a form submission with this key already created, if any."""
    return db.session.scalars(
        select(Message).where(Message.idempotency_key == idempotency_key)
    ).first()


# --- The last gate and the send ------------------------------------------------------------


def claim_message(message_id: int) -> bool:
    """Move a queued message to `sending`; only the one caller that gets True may send it."""
    claimed = db.session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == MessageStatus.QUEUED)
        .values(status=MessageStatus.SENDING, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return claimed.rowcount == 1  # type: ignore[attr-defined]


def refusal_reason(message: Message, now: datetime) -> str | None:
    """Why this message must not go out right now, checked against the database; None if it may."""
    contact = message.contact
    if contact is None or message.organization_id is None:
        return "no_contact"
    campaign = contact.campaign
    if is_opted_out(message.organization_id, contact.cell):
        return "opted_out"
    if not campaign.is_active:
        return "campaign_not_active"
    if contact.texter_id != message.texter_id and not (
        message.texter and message.texter.is_organizer
    ):
        return "contact_reassigned"
    if not hours.is_open(
        contact.time_zones, now, campaign.window_start_hour, campaign.window_end_hour, initial=False
    ):
        return "quiet_hours"
    return None


def validity_seconds(message: Message, now: datetime) -> int:
    """How long Twilio may hold the message before it would arrive after the window closes."""
    assert message.contact is not None
    campaign = message.contact.campaign
    closes = min(
        now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        + timedelta(hours=campaign.window_end_hour)
        for zone in hours.zones_of(message.contact.time_zones)
    )
    return max(1, min(MAX_VALIDITY_SECONDS, int((closes - now).total_seconds())))


def deliver(message_id: int, status_callback: str, now: datetime) -> MessageStatus | None:
    """Send one queued message through Twilio, exactly once.

    Claims the row first, so a second job for the same message does nothing; re-checks opt-out,
    campaign, assignment and quiet hours; records Twilio's answer. Returns the new status, or
    None when another job had already claimed the message.

    :raise RetryLater: when Twilio is unreachable; the message is back in `queued`.
    """
    if not claim_message(message_id):
        return None
    message = db.session.get(Message, message_id)
    assert message is not None
    reason = refusal_reason(message, now)
    if reason:
        message.status, message.refusal_reason = MessageStatus.REFUSED, reason
        db.session.commit()
        log.info("message %s refused: %s", message_id, reason)
        return message.status
    try:
        accepted = sms.send(
            message.to_number, message.body, status_callback, validity_seconds(message, now)
        )
    except sms.SendError as error:
        return record_send_error(message, error)
    message.status = MessageStatus.ACCEPTED
    message.twilio_sid, message.from_number = accepted.sid, accepted.from_number
    message.sent_at = now
    db.session.commit()
    return message.status


def record_send_error(message: Message, error: sms.SendError) -> MessageStatus:
    """Record what Twilio's refusal means for the message (and the number).

    :raise RetryLater: for an outage, after putting the message back in the queue.
    """
    message.error_code = error.code
    if error.retryable:
        message.status = MessageStatus.QUEUED
        db.session.commit()
        raise RetryLater(str(error))
    if error.uncertain:
        # Twilio may have taken it: leave it in `sending` for a person to check, never resend.
        log.error("message %s may or may not have been sent: %s", message.id, error)
        db.session.commit()
        return message.status
    message.status = MessageStatus.FAILED
    if error.code == UNSUBSCRIBED_RECIPIENT and message.organization_id is not None:
        record_opt_out(message.organization_id, message.to_number, "carrier_21610", message.id)
    db.session.commit()
    return message.status


# --- Webhooks ------------------------------------------------------------------------------


def record_status(params: Mapping[str, str]) -> None:
    """Apply a Twilio status callback; repeated or late callbacks never move a message back."""
    sid = params.get("MessageSid", "")
    status = TWILIO_STATUS.get(params.get("MessageStatus", ""))
    message = db.session.scalars(select(Message).where(Message.twilio_sid == sid)).first()
    if message is None or status is None:
        log.info("status callback for unknown message %s (%s)", sid, params.get("MessageStatus"))
        return
    if STATUS_RANK.get(status, 0) > STATUS_RANK.get(message.status, 99):
        message.status = status
    error_code = params.get("ErrorCode", "")
    if error_code.isdigit():
        message.error_code = int(error_code)
        if int(error_code) == UNSUBSCRIBED_RECIPIENT and message.organization_id is not None:
            record_opt_out(message.organization_id, message.to_number, "carrier_21610", message.id)
    db.session.commit()


def record_inbound(params: Mapping[str, str]) -> Message | None:
    """Store a voter's reply in its conversation and act on opt-out/opt-in keywords.

    Idempotent on MessageSid: a retried webhook returns None and changes nothing.
    """
    sid, cell, body = params.get("MessageSid", ""), params.get("From", ""), params.get("Body", "")
    if not sid or db.session.scalars(select(Message.id).where(Message.twilio_sid == sid)).first():
        return None
    contact = conversation_for(cell)
    message = Message(
        organization_id=contact.campaign.organization_id if contact else None,
        campaign_id=contact.campaign_id if contact else None,
        contact_id=contact.id if contact else None,
        direction=Direction.INBOUND,
        body=body,
        from_number=cell,
        to_number=params.get("To", ""),
        status=MessageStatus.RECEIVED,
        twilio_sid=sid,
    )
    try:
        with db.session.begin_nested():
            db.session.add(message)
    except IntegrityError:
        return None  # the same webhook, delivered twice at once
    if contact is not None:
        act_on_reply(contact, message)
    db.session.commit()
    return message


def conversation_for(cell: str) -> Contact | None:
    """The contact a reply from `cell` belongs to: whoever we texted last at that number."""
    return db.session.scalars(
        select(Contact)
        .join(Message, Message.contact_id == Contact.id)
        .where(Message.to_number == cell, Message.direction == Direction.OUTBOUND)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    ).first()


def act_on_reply(contact: Contact, message: Message) -> None:
    organization_id = contact.campaign.organization_id
    if keywords.is_opt_out(message.body):
        record_opt_out(organization_id, contact.cell, "inbound_keyword", message.id)
    elif keywords.is_opt_in(message.body):
        lift_opt_out(organization_id, contact.cell)
    else:
        contact.needs_reply = True
    contact.updated_at = utcnow()


def stale_queued_messages(older_than: datetime, limit: int = 1000) -> list[int]:
    """Ids of messages still queued since before `older_than`: their job was lost or is late."""
    return list(
        db.session.scalars(
            select(Message.id)
            .where(Message.status == MessageStatus.QUEUED, Message.updated_at < older_than)
            .order_by(Message.id)
            .limit(limit)
        )
    )
