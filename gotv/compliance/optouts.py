"""Opt-outs and the numbers that cannot be texted: who may be texted, and recording who may not.

`may_be_texted` is the one predicate every path that texts asks (the click's claim, batches,
replies, the outbox's last gate); quiet hours (`hours`) are asked beside it. Plain functions
on the database session; callers commit. An opt-out is organization-wide and takes effect
inside the transaction that records it: queued texts to the number are refused at once, and the
last gate asks again before every send.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import ColumnElement, Exists, Select, bindparam, exists, select, update
from sqlalchemy.orm import QueryableAttribute

from gotv.compliance import carrier_errors, keywords
from gotv.compliance.carrier_errors import Action
from gotv.db import db, execute_core, insert_new
from gotv.models import (
    BlockedNumber,
    Campaign,
    Contact,
    Direction,
    Message,
    MessageKind,
    MessageStatus,
    OptOut,
)
from gotv.people import audit

log = logging.getLogger(__name__)

# The one confirmation an opt-out may get (47 CFR 64.1200(a)(12)): it merely confirms, in the
# voter's language, naming the organization. The Spanish has no accented letter, so it stays
# in GSM-7 like the English (an "á" would make it a 70-character UCS-2 text).
CONFIRMATIONS = {
    "en": "{organization}: you are unsubscribed and will get no more texts from us.",
    "es": "{organization}: se dio de baja. Ya no le enviaremos mensajes.",
}


# A value, a column (Contact.cell, Message.to_number) or a bound parameter: one definition of
# each rule serves queries built per call and statements built once.
Operand = int | str | ColumnElement[Any] | QueryableAttribute[Any]


# --- Who may be texted ---------------------------------------------------------------------


def may_be_texted(organization_id: Operand, cell: Operand) -> ColumnElement[bool]:
    """SQL: the organization may text `cell`: it has not opted out, and the carrier has not
    told us it cannot receive texts."""
    return ~opted_out(organization_id, cell) & ~blocked(organization_id, cell)


def opted_out(organization_id: Operand, cell: Operand) -> Exists:
    """SQL: `cell` has opted out of everything the organization sends."""
    return exists().where(OptOut.organization_id == organization_id, OptOut.cell == cell)


def blocked(organization_id: Operand, cell: Operand) -> Exists:
    """SQL: the carrier told us `cell` cannot receive the organization's texts."""
    return exists().where(
        BlockedNumber.organization_id == organization_id, BlockedNumber.cell == cell
    )


def is_opted_out(organization_id: int, cell: str) -> bool:
    """True when `cell` has opted out of this organization's texts."""
    return bool(db.session.scalar(select(opted_out(organization_id, cell))))


def is_blocked(organization_id: int, cell: str) -> bool:
    """True when the carrier told us this number cannot receive our texts."""
    return bool(db.session.scalar(select(blocked(organization_id, cell))))


# --- Opt-outs ------------------------------------------------------------------------------


def opt_out_of(organization_id: int, cell: str) -> OptOut | None:
    """The number's opt-out from this organization, if it has one."""
    return db.session.scalars(
        select(OptOut).where(OptOut.organization_id == organization_id, OptOut.cell == cell)
    ).first()


def record_opt_out(
    organization_id: int,
    cell: str,
    source: str,
    message_id: int | None = None,
    user_id: int | None = None,
    rule: str = "",
) -> int | None:
    """Opt `cell` out of everything this organization sends, at once (in this transaction).

    `source` says what decided it: inbound_keyword, inbound_phrase, texter, carrier_21610,
    import, admin; `rule`, for a reply, which of the detector's rules matched (audited).
    Returns the new opt-out's id, or None when the number was already opted out (by an earlier
    or a concurrent request: the outcome is the same).
    Queued texts to the number are refused now rather than left for the send gate.
    """
    opt_out_id = execute_core(
        insert_new(OptOut, "organization_id", "cell"),
        {
            "organization_id": organization_id,
            "cell": cell,
            "source": source,
            "message_id": message_id,
            "user_id": user_id,
        },
    ).scalar()
    if opt_out_id is not None:
        audit.record(
            organization_id,
            "opt_out",
            cell,
            user_id,
            source=source,
            message_id=message_id,
            rule=rule,
        )
    refuse_queued(organization_id, cell, "opted_out")
    execute_core(_STOP_WAITING, {"organization": organization_id, "number": cell})
    return opt_out_id


def refuse_queued(organization_id: int, cell: str, reason: str) -> None:
    """Refuse every text still queued to `cell` by this organization."""
    execute_core(
        _REFUSE_QUEUED, {"organization": organization_id, "number": cell, "reason": reason}
    )


# Built once (a statement's cache key costs more to compute than to look up): opting out is
# what a STOP reply does, and is the busiest path after the plain reply.
_REFUSE_QUEUED = (
    update(Message)
    .where(
        Message.organization_id == bindparam("organization"),
        Message.to_number == bindparam("number"),
        Message.status == MessageStatus.QUEUED,
    )
    .values(status=MessageStatus.REFUSED, refusal_reason=bindparam("reason"))
)
# The number's conversations no longer wait for a volunteer.
_STOP_WAITING = (
    update(Contact)
    .where(
        Contact.cell == bindparam("number"),
        Contact.campaign_id.in_(
            select(Campaign.id).where(Campaign.organization_id == bindparam("organization"))
        ),
    )
    .values(needs_reply=False, opt_out_suggested=False, waiting_since=None)
)


def campaign_ids(organization_id: int) -> Select[int]:
    """A subquery: the ids of the organization's campaigns."""
    return select(Campaign.id).where(Campaign.organization_id == organization_id)


def lift_opt_out(organization_id: int, cell: str, why: str, user_id: int | None = None) -> bool:
    """Remove the number's opt-out (the voter texted START, or an admin reversed it), audited.

    Returns False when the number was not opted out.
    """
    opt_out = opt_out_of(organization_id, cell)
    if opt_out is None:
        return False
    audit.record(
        organization_id,
        "opt_out_lifted",
        cell,
        user_id,
        why=why,
        source=opt_out.source,
        opted_out_at=opt_out.created_at.isoformat(),
    )
    db.session.delete(opt_out)
    db.session.flush()
    return True


def confirmation_text(organization_name: str, reply_body: str = "") -> str:
    """The confirmation of an opt-out, in the language of the reply that asked for it
    (`keywords.language`: Spanish or English)."""
    template = CONFIRMATIONS[keywords.language(reply_body)]
    return template.format(organization=organization_name)


def queue_confirmation(
    opt_out_id: int, contact: Contact, reply_body: str | None = None
) -> Message | None:
    """Queue the one text confirming opt-out `opt_out_id`; None when it already has one.

    It is written in the language of `reply_body`, the reply that asked to stop (by default
    the contact's latest reply). The caller decides whether Twilio has already confirmed it
    (its own keywords).
    """
    if reply_body is None:
        reply_body = latest_reply(contact.id)
    message = add_auto_reply(
        contact,
        MessageKind.OPT_OUT_CONFIRMATION,
        confirmation_text(contact.campaign.organization.name, reply_body),
    )
    claimed = db.session.execute(
        update(OptOut)
        .where(OptOut.id == opt_out_id, OptOut.confirmation_message_id.is_(None))
        .values(confirmation_message_id=message.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        db.session.delete(message)
        return None
    return message


def opt_out_contact(
    contact: Contact, source: str, user_id: int | None, confirm: bool
) -> Message | None:
    """Opt a conversation's number out on a person's word (a volunteer or an admin).

    With `confirm`, queue the one confirmation text too; returns it so the caller can enqueue
    it after the commit.
    """
    opt_out_id = record_opt_out(
        contact.campaign.organization_id, contact.cell, source, None, user_id
    )
    if opt_out_id is None or not confirm:
        return None
    return queue_confirmation(opt_out_id, contact)


def latest_reply(contact_id: int) -> str:
    """The body of the contact's latest reply ("" when it has none)."""
    body = db.session.scalar(
        select(Message.body)
        .where(Message.contact_id == contact_id, Message.direction == Direction.INBOUND)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    )
    return body or ""


def queue_help_reply(contact: Contact) -> Message:
    """Queue the organization's help text to the contact."""
    organization = contact.campaign.organization
    return add_auto_reply(
        contact,
        MessageKind.HELP_REPLY,
        organization.help_text.format(organization=organization.name),
    )


def add_auto_reply(contact: Contact, kind: MessageKind, body: str) -> Message:
    message = Message.queued_to(contact, body, kind=kind)
    db.session.add(message)
    db.session.flush()
    return message


# --- Numbers that cannot be texted and carrier errors -------------------------------------


def block_number(organization_id: int, cell: str, code: int, reason: str) -> None:
    """Never text this number again (invalid, landline, blocking us); refuse what is queued."""
    db.session.execute(
        insert_new(BlockedNumber, "organization_id", "cell"),
        {"organization_id": organization_id, "cell": cell, "error_code": code, "reason": reason},
    )
    refuse_queued(organization_id, cell, "undeliverable")


def apply_carrier_error(message: Message, code: int | None) -> Action:
    """Act on a Twilio error code for this message, as the carrier error table says."""
    entry = carrier_errors.lookup(code)
    if entry is None or message.organization_id is None or code is None:
        return Action.NONE
    organization_id, cell = message.organization_id, message.to_number
    if entry.action == Action.OPT_OUT:
        record_opt_out(organization_id, cell, "carrier_21610", message.id)
    elif entry.action == Action.BLOCK_NUMBER:
        block_number(organization_id, cell, code, entry.reason)
    elif entry.action in (Action.ALERT, Action.SLOW_DOWN, Action.PAUSE_FOR_THE_DAY):
        audit.record(organization_id, "carrier_alert", cell, code=code, reason=entry.reason)
        log.warning("carrier alert %s on message %s: %s", code, message.id, entry.reason)
    return entry.action
