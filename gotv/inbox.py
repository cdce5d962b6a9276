"""Volunteers: the send loop for initial texts, and their conversations."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import BooleanField, HiddenField, IntegerField, TextAreaField
from wtforms.validators import DataRequired, Length

from gotv import consent, queue, texting
from gotv.auth import get_owned
from gotv.db import db
from gotv.models import Campaign, CampaignStatus, Contact, Message, utcnow

bp = Blueprint("inbox", __name__, url_prefix="/texting")


class SendForm(FlaskForm):
    contact_id = IntegerField(validators=[DataRequired()])
    idempotency_key = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])


class ReplyForm(FlaskForm):
    body = TextAreaField("Reply", validators=[DataRequired(), Length(max=1600)])
    idempotency_key = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])


class OptOutForm(FlaskForm):
    confirm = BooleanField("Send the one confirmation text", default=True)


class DismissForm(FlaskForm):
    pass


def new_key() -> str:
    """A fresh key for a send form: resubmitting the same form cannot send twice."""
    return secrets.token_urlsafe(24)


def get_conversation(contact_id: int) -> Contact:
    """A contact the user may converse with. :raise 404: for others' or other orgs' contacts."""
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.campaign.organization_id != current_user.organization_id:
        abort(404)
    if contact.texter_id != current_user.id and not current_user.is_organizer:
        abort(404)
    return contact


def queue_once(idempotency_key: str, queue_message: Callable[[], Message]) -> None:
    """Queue a text unless this form was already submitted, then wake a send pump after commit.

    When the text may not be sent, nothing is written and the reason is flashed.
    """
    if texting.message_for_key(idempotency_key) is not None:
        return
    try:
        queue_message()
    except texting.CannotText as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
        return
    db.session.commit()
    queue.wake_senders()


@bp.get("")
@login_required
def index() -> ResponseReturnValue:
    campaigns = db.session.scalars(
        select(Campaign)
        .where(
            Campaign.organization_id == current_user.organization_id,
            Campaign.status == CampaignStatus.ACTIVE,
        )
        .order_by(Campaign.created_at.desc())
    ).all()
    waiting = dict(
        db.session.execute(
            select(Contact.campaign_id, func.count())
            .where(Contact.texter_id == current_user.id, Contact.needs_reply.is_(True))
            .group_by(Contact.campaign_id)
        ).all()
    )
    return render_template("inbox/index.html", campaigns=campaigns, waiting=waiting)


@bp.get("/<int:campaign_id>/send")
@login_required
def send_loop(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    now = utcnow()
    contact = texting.next_contact(campaign, current_user, now) if campaign.is_active else None
    return render_template(
        "inbox/send.html",
        campaign=campaign,
        contact=contact,
        body=texting.render(campaign.script, contact, current_user) if contact else "",
        form=SendForm(contact_id=contact.id if contact else None, idempotency_key=new_key()),
        later=None if contact else texting.next_opening(campaign, current_user, now),
    )


@bp.post("/<int:campaign_id>/send")
@login_required
def send_initial(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = SendForm()
    if not form.validate_on_submit():
        abort(400)
    key = form.idempotency_key.data or ""
    queue_once(
        key,
        lambda: texting.queue_initial_message(
            campaign, form.contact_id.data or 0, current_user, key, utcnow()
        ),
    )
    return redirect(url_for("inbox.send_loop", campaign_id=campaign.id))


@bp.get("/<int:campaign_id>/conversations")
@login_required
def conversations(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    contacts = db.session.scalars(
        select(Contact)
        .where(Contact.campaign_id == campaign.id, Contact.texter_id == current_user.id)
        .order_by(Contact.needs_reply.desc(), Contact.updated_at.desc())
        .limit(200)
    ).all()
    return render_template("inbox/conversations.html", campaign=campaign, contacts=contacts)


@bp.get("/conversations/<int:contact_id>")
@login_required
def conversation(contact_id: int) -> ResponseReturnValue:
    contact = get_conversation(contact_id)
    messages = db.session.scalars(
        select(Message)
        .where(Message.contact_id == contact.id)
        .order_by(Message.created_at, Message.id)
    ).all()
    opted_out = consent.opt_out_of(contact.campaign.organization_id, contact.cell)
    return render_template(
        "inbox/conversation.html",
        contact=contact,
        messages=messages,
        opted_out=opted_out,
        form=ReplyForm(idempotency_key=new_key()),
        opt_out_form=OptOutForm(),
        dismiss_form=DismissForm(),
    )


@bp.post("/conversations/<int:contact_id>/reply")
@login_required
def reply(contact_id: int) -> ResponseReturnValue:
    contact = get_conversation(contact_id)
    form = ReplyForm()
    if not form.validate_on_submit():
        flash("Write a reply of up to 1,600 characters.", "error")
    else:
        key = form.idempotency_key.data or ""
        queue_once(
            key, lambda: texting.queue_reply(contact, current_user, form.body.data or "", key)
        )
    return redirect(url_for("inbox.conversation", contact_id=contact.id))


@bp.post("/conversations/<int:contact_id>/opt-out")
@login_required
def opt_out(contact_id: int) -> ResponseReturnValue:
    contact = get_conversation(contact_id)
    form = OptOutForm()
    if form.validate_on_submit():
        confirmation = consent.opt_out_contact(
            contact, "texter", current_user.id, confirm=bool(form.confirm.data)
        )
        db.session.commit()
        if confirmation is not None:
            queue.wake_senders()
        flash("Opted out. Nobody in your organization can text this number again.", "success")
    return redirect(url_for("inbox.conversation", contact_id=contact.id))


@bp.post("/conversations/<int:contact_id>/not-an-opt-out")
@login_required
def dismiss_suggestion(contact_id: int) -> ResponseReturnValue:
    """The volunteer read the reply and it is not a request to stop."""
    contact = get_conversation(contact_id)
    if DismissForm().validate_on_submit():
        contact.opt_out_suggested = False
        consent.audit(
            contact.campaign.organization_id,
            "opt_out_suggestion_dismissed",
            contact.cell,
            current_user.id,
        )
        db.session.commit()
    return redirect(url_for("inbox.conversation", contact_id=contact.id))
