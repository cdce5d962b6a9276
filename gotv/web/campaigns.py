"""Organizers: create campaigns and build them section by section (web/builder.py), launch,
and read their dashboards."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from sqlalchemy import select
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange

from gotv.campaigns import builder as rules
from gotv.campaigns import dashboard
from gotv.compliance import hours, lint
from gotv.db import db
from gotv.models import Campaign, CampaignStatus
from gotv.people import audit, zones
from gotv.texting import assignment, texts
from gotv.texting import senders as sending
from gotv.web import builder
from gotv.web.auth import get_owned, organizer_required

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")


class CampaignForm(FlaskForm):
    name = StringField("Campaign name", validators=[DataRequired(), Length(max=200)])


class ScriptForm(FlaskForm):
    script = TextAreaField("Script", validators=[DataRequired(), Length(max=1600)])


class UploadForm(FlaskForm):
    contacts = FileField(
        "Voter list (CSV or TSV)",
        validators=[FileRequired(), FileAllowed(["csv", "tsv", "txt"])],
    )


class AppendOptOutForm(FlaskForm):
    pass


class StatusForm(FlaskForm):
    status = SelectField("Status", choices=[s.value for s in CampaignStatus])


class SmartEncodingForm(FlaskForm):
    smart_encoding = BooleanField("Smart Encoding")


class TimeZoneForm(FlaskForm):
    trust_zip_alone = BooleanField("Use the ZIP code alone for each voter's time zone")


class BatchSettingsForm(FlaskForm):
    batch_size = IntegerField("Batch size", validators=[NumberRange(1, assignment.MAX_BATCH_SIZE)])
    batch_while_replies_wait = BooleanField("Allow a new batch while replies wait")
    release_after_minutes = IntegerField(
        "Release after idle (minutes)", validators=[NumberRange(5, 24 * 60)]
    )


def audit_change(campaign: Campaign, event: str, **details: Any) -> None:
    """Record the signed-in organizer's change to the campaign in the audit log."""
    audit.record(
        campaign.organization_id, event, f"campaign {campaign.id}", current_user.id, **details
    )


@bp.get("")
@organizer_required
def index() -> ResponseReturnValue:
    campaigns = db.session.scalars(
        select(Campaign)
        .where(Campaign.organization_id == current_user.organization_id)
        .where(Campaign.deleted_at.is_(None))
        .order_by(Campaign.created_at.desc())
    ).all()
    return render_template("campaigns/index.html", campaigns=campaigns, form=CampaignForm())


@bp.post("")
@organizer_required
def create() -> ResponseReturnValue:
    form = CampaignForm()
    if not form.validate_on_submit():
        flash("A campaign needs a name.", "error")
        return redirect(url_for("campaigns.index"))
    campaign = Campaign(organization_id=current_user.organization_id, name=form.name.data)
    db.session.add(campaign)
    db.session.commit()
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


@bp.get("/<int:campaign_id>")
@organizer_required
def show(campaign_id: int) -> ResponseReturnValue:
    """The campaign builder: its sections, each with a completion mark, saved in place."""
    return builder.render_page(get_owned(Campaign, campaign_id))


@bp.get("/<int:campaign_id>/dashboard")
@organizer_required
def show_dashboard(campaign_id: int) -> ResponseReturnValue:
    """The campaign's live numbers, breakdowns and charts; dashboard.js keeps them fresh."""
    campaign = get_owned(Campaign, campaign_id)
    zone = organization_zone()
    board = dashboard.build(db.session, campaign, zone=zone)
    return render_template(
        "campaigns/dashboard.html",
        campaign=campaign,
        board=board,
        chart=dashboard.chart(board.timeline),
        survey_charts=dashboard.survey_charts(board.survey),
        meanings=dashboard.MEANINGS,
    )


@bp.get("/<int:campaign_id>/dashboard.json")
@organizer_required
def dashboard_json(campaign_id: int) -> ResponseReturnValue:
    """The dashboard's live numbers, for the page to poll."""
    campaign = get_owned(Campaign, campaign_id)
    live = dashboard.live(db.session, campaign)
    response = jsonify(live.as_json(organization_zone()))
    response.headers["Cache-Control"] = "no-store"
    return response


def organization_zone() -> ZoneInfo:
    return zones.organization_zone(current_user.organization)


# --- Saving the builder's sections ---------------------------------------------------------


@bp.post("/<int:campaign_id>/name")
@organizer_required
def rename(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = CampaignForm()
    if not form.validate_on_submit():
        return builder.refused(
            campaign, "basics", "A campaign needs a name of up to 200 characters.", "name"
        )
    old, campaign.name = campaign.name, (form.name.data or "").strip()
    audit_change(
        campaign,
        "campaign_renamed",
        old=old,
        new=campaign.name,
    )
    db.session.commit()
    return builder.saved(campaign, "basics", "Name saved.")


@bp.post("/<int:campaign_id>/sender")
@organizer_required
def save_sender(campaign_id: int) -> ResponseReturnValue:
    """Choose the sender for the campaign's texts queued from now on."""
    campaign = get_owned(Campaign, campaign_id)
    form = sender_form(campaign)
    if not form.validate_on_submit():
        return builder.refused(campaign, "sender", "Choose one of the organization's senders.")
    campaign.sender_id = form.sender_id.data or None
    audit_change(
        campaign,
        "campaign_sender_changed",
        sender_id=campaign.sender_id,
        sender=campaign.sender.address if campaign.sender else "the default sender",
    )
    db.session.commit()
    return builder.saved(
        campaign, "sender", "Sender saved: texts queued from now on go out from it."
    )


class SenderChoiceForm(FlaskForm):
    sender_id = SelectField("Sends from", coerce=int)


def sender_form(campaign: Campaign) -> SenderChoiceForm:
    """The campaign's sender choice: one of the organization's senders, or the instance's
    default sender (0) for an organization without a Twilio account of its own."""
    form = SenderChoiceForm(sender_id=campaign.sender_id or 0)
    default = [] if sending.own_account(campaign.organization_id) else [(0, "The default sender")]
    form.sender_id.choices = default + [
        (sender.id, f"{sender.address} {sender.label}".strip())
        for sender in builder.organization_senders(campaign.organization_id)
    ]
    return form


@bp.post("/<int:campaign_id>/script")
@organizer_required
def save_script(campaign_id: int) -> ResponseReturnValue:
    """Save the first message. A refused one is kept as typed (the page is not reloaded, or is
    rendered again with it), never replaced by the saved script."""
    campaign = get_owned(Campaign, campaign_id)
    form = ScriptForm()
    if not form.validate_on_submit():
        return builder.refused(
            campaign,
            "message",
            "The first message cannot be empty or longer than 1,600 characters.",
            "script",
        )
    script = form.script.data or ""
    unknown = texts.unknown_merge_fields(script, campaign.custom_field_names)
    if unknown:
        names = ", ".join("{" + name + "}" for name in unknown)
        return builder.refused(
            campaign,
            "message",
            f"The script uses merge fields this list does not have: {names}.",
            "script",
        )
    campaign.script = script
    audit_script(campaign)
    db.session.commit()
    return builder.saved(campaign, "message", "Script saved.", redraw=("launch",))


def audit_script(campaign: Campaign) -> None:
    audit_change(
        campaign,
        "script_changed",
        script=campaign.script,
    )


@bp.post("/<int:campaign_id>/script/opt-out-language")
@organizer_required
def append_opt_out_language(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    if not AppendOptOutForm().validate_on_submit():
        return builder.refused(campaign, "message", "The form expired: reload the page.")
    campaign.script = lint.with_opt_out_language(campaign.script)
    audit_script(campaign)
    db.session.commit()
    return builder.saved(
        campaign,
        "message",
        "Added opt-out language to the script.",
        redraw=("launch",),
        fields={"script": campaign.script},
    )


class HoursForm(FlaskForm):
    start_hour = IntegerField(
        "From", validators=[NumberRange(hours.FEDERAL_START_HOUR, hours.FEDERAL_END_HOUR)]
    )
    end_hour = IntegerField(
        "Until", validators=[NumberRange(hours.FEDERAL_START_HOUR, hours.FEDERAL_END_HOUR)]
    )


@bp.post("/<int:campaign_id>/hours")
@organizer_required
def save_hours(campaign_id: int) -> ResponseReturnValue:
    """The campaign's texting hours in each voter's local time, inside the federal limits;
    the state rules narrow them further for their residents."""
    campaign = get_owned(Campaign, campaign_id)
    form = HoursForm()
    start, end = form.start_hour.data, form.end_hour.data
    try:
        if not form.validate_on_submit() or start is None or end is None:
            raise ValueError(hours.WINDOW_RULE)
        rules.set_hours(campaign, start, end, current_user.id)
    except ValueError as error:
        return builder.refused(campaign, "hours", str(error), "start_hour")
    db.session.commit()
    return builder.saved(
        campaign, "hours", f"Texting hours saved: {start}:00–{end}:00 in each voter's local time."
    )


@bp.get("/<int:campaign_id>/hours/preview")
@organizer_required
def preview_hours(campaign_id: int) -> ResponseReturnValue:
    """The per-state table for hours not yet saved (the page shows it as they change)."""
    campaign = get_owned(Campaign, campaign_id)
    start = request.args.get("start_hour", campaign.window_start_hour, type=int)
    end = request.args.get("end_hour", campaign.window_end_hour, type=int)
    try:
        hours.check_campaign_window(start, end)
    except ValueError as error:
        return jsonify(ok=False, message=str(error)), 422
    table = render_template(
        "campaigns/builder/_state_hours.html",
        state_hours=hours.state_hours(start, end),
        list_states=builder.list_states(campaign),
    )
    return jsonify(ok=True, html=table)


@bp.post("/<int:campaign_id>/status")
@organizer_required
def change_status(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = StatusForm()
    if not form.validate_on_submit():
        return builder.refused(campaign, "launch", "Choose a status.")
    new_status = CampaignStatus(form.status.data)
    if new_status == CampaignStatus.ACTIVE:
        unknown = texts.unknown_merge_fields(campaign.script, campaign.custom_field_names)
        blockers = rules.launch_blockers(campaign, unknown)
        if blockers:
            return builder.refused(campaign, "launch", "Not launched: " + " ".join(blockers))
    elif campaign.deleted_at is not None:
        return builder.refused(campaign, "launch", "This campaign is deleted: restore it first.")
    campaign.status = new_status
    audit_change(
        campaign,
        "campaign_status_changed",
        status=new_status.value,
    )
    db.session.commit()
    return builder.saved(
        campaign, "launch", f"Campaign is now {new_status.value}.", redraw=("launch",)
    )


@bp.post("/<int:campaign_id>/smart-encoding")
@organizer_required
def save_smart_encoding(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = SmartEncodingForm()
    if not form.validate_on_submit():
        return builder.refused(campaign, "message", "The form expired: reload the page.")
    campaign.smart_encoding = bool(form.smart_encoding.data)
    audit_change(
        campaign,
        "smart_encoding_changed",
        smart_encoding=campaign.smart_encoding,
    )
    db.session.commit()
    return builder.saved(
        campaign,
        "message",
        f"Smart Encoding is {'on' if campaign.smart_encoding else 'off'}.",
        redraw=("message",),
    )


@bp.post("/<int:campaign_id>/batches")
@organizer_required
def save_batch_settings(campaign_id: int) -> ResponseReturnValue:
    """How volunteers take contacts: batch size, batches while replies wait, idle release."""
    campaign = get_owned(Campaign, campaign_id)
    form = BatchSettingsForm()
    if not form.validate_on_submit():
        return builder.refused(
            campaign,
            "basics",
            "Batches hold 1 to 1,000 contacts; idle release is 5 to 1,440 minutes.",
            "batch_size",
        )
    campaign.batch_size = form.batch_size.data or campaign.batch_size
    campaign.batch_while_replies_wait = bool(form.batch_while_replies_wait.data)
    campaign.release_after_minutes = form.release_after_minutes.data or 60
    audit_change(
        campaign,
        "batch_settings_changed",
        batch_size=campaign.batch_size,
        batch_while_replies_wait=campaign.batch_while_replies_wait,
        release_after_minutes=campaign.release_after_minutes,
    )
    db.session.commit()
    return builder.saved(campaign, "basics", "Batch settings saved.")


@bp.post("/<int:campaign_id>/time-zones")
@organizer_required
def save_time_zones(campaign_id: int) -> ResponseReturnValue:
    """Whether quiet hours follow the ZIP's time zone alone, or also the area code's (audited)."""
    campaign = get_owned(Campaign, campaign_id)
    form = TimeZoneForm()
    if not form.validate_on_submit():
        return builder.refused(campaign, "hours", "The form expired: reload the page.")
    campaign.trust_zip_alone = bool(form.trust_zip_alone.data)
    audit_change(
        campaign,
        "time_zone_rule_changed",
        trust_zip_alone=campaign.trust_zip_alone,
    )
    db.session.commit()
    if campaign.trust_zip_alone:
        message = "Texts now follow each voter's ZIP code alone for the time zone."
    else:
        message = "Texts wait until it is allowed in both the ZIP's and the phone's zone."
    return builder.saved(campaign, "hours", message)
