"""Organizers: the organization's name, the help text voters get for HELP, its time zone and
re-texting guard, and its senders; owners: its own Twilio account. Also the template filters
that show times in that zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from wtforms import BooleanField, FloatField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from gotv.compliance import numbers
from gotv.db import db
from gotv.edge import sms
from gotv.models import Organization, Sender
from gotv.people import audit, zones
from gotv.texting import assignment
from gotv.texting import senders as sending
from gotv.web.auth import get_owned, organizer_required, owner_required

bp = Blueprint("settings", __name__, url_prefix="/settings")

RETEXT_GUARD_MAX_DAYS = 365


class OrganizationForm(FlaskForm):
    name = StringField("Organization name", validators=[DataRequired(), Length(max=200)])
    help_text = TextAreaField(
        "Help text (sent when a voter asks for help; {organization} is your name)",
        validators=[DataRequired(), Length(max=320)],
    )
    # Optional: a form without them (an older page, a script) leaves them as they are.
    time_zone = SelectField("Time zone for your screens and exports", validators=[Optional()])
    retext_guard_days = IntegerField(
        "Leave out numbers texted in the last … days when a list is uploaded (0: never)",
        validators=[Optional(), NumberRange(0, RETEXT_GUARD_MAX_DAYS)],
    )
    texts_us_territories = BooleanField(
        "Text voters in the US territories (Puerto Rico, the US Virgin Islands, Guam, the "
        "Northern Mariana Islands, American Samoa)"
    )


@bp.route("", methods=["GET", "POST"])
@organizer_required
def organization() -> ResponseReturnValue:
    organization = current_user.organization
    form = OrganizationForm(obj=organization)
    form.time_zone.choices = zones.zone_choices()
    if form.validate_on_submit():
        changes = {
            name: value
            for name, value in form.data.items()
            if name in ("name", "help_text", "time_zone", "retext_guard_days")
            and value not in (None, "")
            and value != getattr(organization, name)
        }
        territories = bool(form.texts_us_territories.data)
        if territories != organization.texts_us_territories:
            changes["texts_us_territories"] = territories
        audit.record(organization.id, "settings_changed", user_id=current_user.id, **changes)
        for name, value in changes.items():
            setattr(organization, name, value)
        if changes.get("texts_us_territories"):
            assignment.readmit(organization.id, numbers.Reason.US_TERRITORY)
        db.session.commit()
        flash("Settings saved.", "success")
        return redirect(url_for("settings.organization"))
    return render_template("settings/organization.html", form=form)


# --- Times as organizers read them: in the organization's zone -----------------------------


def viewer_zone() -> ZoneInfo:
    """The signed-in person's organization's zone (UTC for nobody), once per request."""
    if "viewer_zone" not in g:
        signed_in = current_user and current_user.is_authenticated
        g.viewer_zone = (
            zones.organization_zone(current_user.organization) if signed_in else ZoneInfo("UTC")
        )
    zone: ZoneInfo = g.viewer_zone
    return zone


@bp.app_template_filter("local_time")
def local_time(moment: datetime | None, form: str = "%Y-%m-%d %H:%M") -> str:
    """A time for a page: the wall clock in the organization's zone, with its abbreviation."""
    return zones.shown(moment, viewer_zone(), form)


@bp.app_template_filter("local_iso")
def local_iso(moment: datetime | None) -> str:
    """A time for a <time datetime>: ISO 8601 with the organization's offset."""
    return zones.iso(moment, viewer_zone())


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
    own = sending.own_account(organization.id)
    return render_template(
        "settings/senders.html",
        senders=organization_senders(organization.id),
        form=SenderForm(),
        limit_form=OrganizationLimitForm(obj=organization),
        account_sid=own.account_sid if own else sms.default_credentials().account_sid,
        own_account=own is not None,
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
    try:
        sender = sending.add_sender(
            current_user.organization_id,
            form.address.data or "",
            current_user.id,
            label=form.label.data or "",
            per_second=form.per_second.data,
            daily_cap=form.daily_cap.data,
        )
    except sending.SenderRefused as refusal:  # (refused before anything is written)
        flash(str(refusal), "error")
        return redirect(url_for("settings.senders"))
    except IntegrityError:  # added elsewhere a moment ago: the unique address says no
        db.session.rollback()
        flash("That sender was just added by someone else.", "error")
        return redirect(url_for("settings.senders"))
    db.session.commit()
    flash(f"Sender {sender.address} added: Twilio confirmed your account holds it.", "success")
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


def form_errors(form: FlaskForm, page: str = "settings.senders") -> ResponseReturnValue:
    for field, errors in form.errors.items():
        for error in errors:
            label = form[field].label.text if field in form else field
            flash(f"{label}: {error}", "error")
    return redirect(url_for(page))


# --- The organization's own Twilio account (owners) ---------------------------------------


class TwilioAccountForm(FlaskForm):
    account_sid = StringField(
        "Account SID (AC...)",
        validators=[DataRequired(), Regexp(r"^AC[0-9a-f]{32}$", message="Use AC and 32 hex")],
    )
    auth_token = StringField(
        "Auth token (it signs Twilio's webhooks to gotv)",
        validators=[DataRequired(), Length(min=32, max=64)],
    )
    api_key_sid = StringField(
        "API key SID (SK..., optional: gotv then calls Twilio with the key)",
        validators=[Optional(), Regexp(r"^SK[0-9a-f]{32}$", message="Use SK and 32 hex")],
    )
    api_key_secret = StringField("API key secret", validators=[Optional(), Length(min=16, max=64)])


class TwilioLimitsForm(FlaskForm):
    concurrency = IntegerField(
        "Requests to Twilio in flight at once (empty: the instance's default)",
        validators=[Optional(), NumberRange(min=1, max=1000)],
    )
    per_second = FloatField(
        "Messages per second across the account (empty: no limit)",
        validators=[Optional(), NumberRange(min=0.01, max=10000)],
    )
    daily_cap = IntegerField(
        "Messages per day for your 10DLC brand, reset at midnight Pacific (empty: no cap)",
        validators=[Optional(), NumberRange(min=1)],
    )


@bp.get("/twilio")
@owner_required
def twilio() -> ResponseReturnValue:
    own = sending.own_account(current_user.organization_id)
    return render_template(
        "settings/twilio.html",
        own=own,
        instance_sid=sms.default_credentials().account_sid,
        form=TwilioAccountForm(),
        limits_form=TwilioLimitsForm(obj=own),
    )


@bp.post("/twilio")
@owner_required
def connect_twilio() -> ResponseReturnValue:
    form = TwilioAccountForm()
    if not form.validate_on_submit():
        return form_errors(form, "settings.twilio")
    try:
        sending.connect(
            current_user.organization_id,
            form.account_sid.data or "",
            form.auth_token.data or "",
            form.api_key_sid.data or None,
            form.api_key_secret.data or None,
            current_user.id,
        )
    except sending.SenderRefused as refusal:  # (refused before anything is written)
        flash(str(refusal), "error")
        return redirect(url_for("settings.twilio"))
    db.session.commit()
    flash("Twilio confirmed these credentials: your texts now go through your account.", "success")
    return redirect(url_for("settings.twilio"))


@bp.post("/twilio/limits")
@owner_required
def twilio_limits() -> ResponseReturnValue:
    form = TwilioLimitsForm()
    if not form.validate_on_submit():
        return form_errors(form, "settings.twilio")
    try:
        sending.set_limits(
            current_user.organization_id,
            form.concurrency.data,
            form.per_second.data,
            form.daily_cap.data,
            current_user.id,
        )
    except sending.SenderRefused as refusal:
        flash(str(refusal), "error")
        return redirect(url_for("settings.twilio"))
    db.session.commit()
    flash("Limits saved; workers use them within seconds.", "success")
    return redirect(url_for("settings.twilio"))


@bp.post("/twilio/disconnect")
@owner_required
def disconnect_twilio() -> ResponseReturnValue:
    try:
        sending.disconnect(current_user.organization_id, current_user.id)
    except sending.SenderRefused as refusal:
        flash(str(refusal), "error")
        return redirect(url_for("settings.twilio"))
    db.session.commit()
    flash("Your Twilio account is disconnected.", "success")
    return redirect(url_for("settings.twilio"))
