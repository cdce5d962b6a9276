"""Organizers: the organization's name, the help text voters get for HELP, and its senders."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import FloatField, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from gotv.db import db
from gotv.models import Organization, Sender
from gotv.people import audit
from gotv.web.auth import get_owned, organizer_required

bp = Blueprint("settings", __name__, url_prefix="/settings")


class OrganizationForm(FlaskForm):
    name = StringField("Organization name", validators=[DataRequired(), Length(max=200)])
    help_text = TextAreaField(
        "Help text (sent when a voter asks for help; {organization} is your name)",
        validators=[DataRequired(), Length(max=320)],
    )


@bp.route("", methods=["GET", "POST"])
@organizer_required
def organization() -> ResponseReturnValue:
    organization = current_user.organization
    form = OrganizationForm(obj=organization)
    if form.validate_on_submit():
        audit.record(
            organization.id,
            "settings_changed",
            user_id=current_user.id,
            name=form.name.data,
            help_text=form.help_text.data,
        )
        form.populate_obj(organization)
        db.session.commit()
        flash("Settings saved.", "success")
        return redirect(url_for("settings.organization"))
    return render_template("settings/organization.html", form=form)


# --- Senders -------------------------------------------------------------------------------


class SenderForm(FlaskForm):
    address = StringField(
        "Number (+1...) or Messaging Service SID (MG...)",
        validators=[
            DataRequired(),
            Regexp(r"^(\+[1-9][0-9]{7,14}|MG[0-9a-f]{32})$", message="Use +15551234567 or MG..."),
        ],
    )
    label = StringField("Label", validators=[Optional(), Length(max=100)])
    per_second = FloatField(
        "Messages per second (empty: no limit)",
        validators=[Optional(), NumberRange(min=0.01, max=1000)],
    )
    daily_cap = IntegerField(
        "Messages per day (empty: no cap)", validators=[Optional(), NumberRange(min=1)]
    )


class OrganizationLimitForm(FlaskForm):
    per_second = FloatField(
        "Messages per second across all senders (empty: no limit)",
        validators=[Optional(), NumberRange(min=0.01, max=10000)],
    )


@bp.get("/senders")
@organizer_required
def senders() -> ResponseReturnValue:
    organization: Organization = current_user.organization
    return render_template(
        "settings/senders.html",
        senders=organization_senders(organization.id),
        form=SenderForm(),
        limit_form=OrganizationLimitForm(obj=organization),
    )


def organization_senders(organization_id: int) -> list[Sender]:
    return list(
        db.session.scalars(
            select(Sender).where(Sender.organization_id == organization_id).order_by(Sender.id)
        )
    )


@bp.post("/senders")
@organizer_required
def add_sender() -> ResponseReturnValue:
    form = SenderForm()
    if not form.validate_on_submit():
        return form_errors(form)
    organization_id = current_user.organization_id
    if any(sender.address == form.address.data for sender in organization_senders(organization_id)):
        flash(f"{form.address.data} is already a sender.", "error")
        return redirect(url_for("settings.senders"))
    sender = Sender(organization_id=organization_id)
    save_sender(sender, form, "sender_added")
    return redirect(url_for("settings.senders"))


@bp.post("/senders/<int:sender_id>")
@organizer_required
def edit_sender(sender_id: int) -> ResponseReturnValue:
    sender = get_owned(Sender, sender_id)
    form = SenderForm(address=sender.address)
    if not form.validate_on_submit():
        return form_errors(form)
    form.address.data = sender.address  # a sender's address never changes; add another instead
    save_sender(sender, form, "sender_changed")
    return redirect(url_for("settings.senders"))


def save_sender(sender: Sender, form: SenderForm, action: str) -> None:
    form.populate_obj(sender)
    sender.label = sender.label or ""
    db.session.add(sender)
    audit.record(
        current_user.organization_id,
        action,
        sender.address,
        current_user.id,
        per_second=sender.per_second,
        daily_cap=sender.daily_cap,
    )
    db.session.commit()
    flash(f"Sender {sender.address} saved; workers use the new pace within seconds.", "success")


@bp.post("/senders/limit")
@organizer_required
def organization_limit() -> ResponseReturnValue:
    form = OrganizationLimitForm()
    if not form.validate_on_submit():
        return form_errors(form)
    organization: Organization = current_user.organization
    organization.per_second = form.per_second.data
    audit.record(
        organization.id,
        "rate_limit_changed",
        user_id=current_user.id,
        per_second=form.per_second.data,
    )
    db.session.commit()
    flash("Organization limit saved.", "success")
    return redirect(url_for("settings.senders"))


def form_errors(form: FlaskForm) -> ResponseReturnValue:
    for field, errors in form.errors.items():
        for error in errors:
            label = form[field].label.text if field in form else field
            flash(f"{label}: {error}", "error")
    return redirect(url_for("settings.senders"))
