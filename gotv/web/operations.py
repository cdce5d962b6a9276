"""Organizers: the outbox's health, messages that need a person, and failed background jobs."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import func, select

from gotv.db import db
from gotv.edge import queue, sms
from gotv.models import Message, MessageStatus, utcnow
from gotv.texting import outbox
from gotv.web.auth import get_owned, organizer_required

bp = Blueprint("operations", __name__, url_prefix="/operations")


@bp.get("")
@organizer_required
def index() -> ResponseReturnValue:
    organization_id = current_user.organization_id
    now = utcnow()
    return render_template(
        "operations/index.html",
        outbox=outbox_counts(organization_id),
        stuck=outbox.stuck_messages(organization_id, now),
        failed_jobs=queue.failed_jobs(organization_id),
        stuck_minutes=int(outbox.STUCK_AFTER.total_seconds() // 60),
    )


def outbox_counts(organization_id: int) -> dict[str, int]:
    """The organization's messages waiting to go: queued now, waiting for a retry, sending."""
    now = utcnow()
    waiting = (Message.next_attempt_at.is_not(None)) & (Message.next_attempt_at > now)
    rows = db.session.execute(
        select(Message.status, waiting, func.count())
        .where(
            Message.organization_id == organization_id,
            Message.status.in_([MessageStatus.QUEUED, MessageStatus.SENDING]),
        )
        .group_by(Message.status, waiting)
    )
    counts = {"queued": 0, "retrying": 0, "sending": 0}
    for status, is_waiting, count in rows:
        key = "retrying" if status == MessageStatus.QUEUED and is_waiting else status.value
        counts[key] += count
    return counts


@bp.post("/messages/<int:message_id>/settle")
@organizer_required
def settle(message_id: int) -> ResponseReturnValue:
    """Ask Twilio whether it holds a message left in `sending`, and record the answer."""
    message = get_owned(Message, message_id)
    try:
        status = outbox.settle_stuck(message.id, current_user.id)
    except sms.SendError as error:
        flash(f"Twilio could not be asked just now ({error}); try again later.", "error")
        return redirect(url_for("operations.index"))
    if status == MessageStatus.ACCEPTED:
        flash(f"Twilio has message {message_id}: it was sent, and is recorded so.", "success")
    elif status == MessageStatus.QUEUED:
        queue.wake_senders()
        flash(f"Twilio never got message {message_id}: it is queued to send again.", "success")
    else:
        flash(f"Message {message_id} is no longer waiting to be settled.", "success")
    return redirect(url_for("operations.index"))
