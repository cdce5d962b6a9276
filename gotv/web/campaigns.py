"""Organizers: create campaigns, upload voter lists, write the script, launch."""

from __future__ import annotations

from decimal import Decimal

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from sqlalchemy import func, select
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange

from gotv.campaigns import dashboard
from gotv.compliance import lint, optouts
from gotv.db import db
from gotv.models import (
    Campaign,
    CampaignStatus,
    Contact,
    ContactImport,
    ContactStatus,
    Message,
    MessageStatus,
    Sender,
)
from gotv.people import audit
from gotv.texting import assignment, segments, texts
from gotv.texting import senders as sending
from gotv.web.auth import get_owned, organizer_required

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

FILTERED_BY_CARRIER = 30007
RECENT_IMPORTS = 5
# Enough contacts to catch the odd "Zoë" in a list, few enough to render on every page view.
SAMPLE_SIZE = 200


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
    campaign = get_owned(Campaign, campaign_id)
    return render_template(
        "campaigns/show.html",
        campaign=campaign,
        counts=campaign_counts(campaign),
        script_form=ScriptForm(script=campaign.script),
        upload_form=UploadForm(),
        status_form=StatusForm(status=campaign.status.value),
        merge_fields=texts.STANDARD_MERGE_FIELDS + tuple(campaign.custom_field_names),
        script_warnings=lint.warnings(campaign.script, campaign.organization.name),
        append_form=AppendOptOutForm(),
        filtered=filtered_count(campaign),
        recent_imports=recent_imports(campaign),
        cost=script_report(campaign),
        smart_form=SmartEncodingForm(smart_encoding=campaign.smart_encoding),
        describe_risk=segments.describe,
        sender_form=sender_form(campaign),
        batch_form=BatchSettingsForm(obj=campaign),
        zone_form=TimeZoneForm(obj=campaign),
    )


@bp.get("/<int:campaign_id>/dashboard")
@organizer_required
def show_dashboard(campaign_id: int) -> ResponseReturnValue:
    """The campaign's live numbers, breakdowns and chart; dashboard.js keeps the totals fresh."""
    campaign = get_owned(Campaign, campaign_id)
    board = dashboard.build(db.session, campaign)
    return render_template(
        "campaigns/dashboard.html",
        campaign=campaign,
        board=board,
        chart=dashboard.chart(board.hours),
        window_hours=dashboard.WINDOW_HOURS,
    )


@bp.get("/<int:campaign_id>/dashboard.json")
@organizer_required
def dashboard_json(campaign_id: int) -> ResponseReturnValue:
    """The dashboard's numbers, for the page to poll."""
    campaign = get_owned(Campaign, campaign_id)
    response = jsonify(dashboard.build(db.session, campaign).as_json())
    response.headers["Cache-Control"] = "no-store"
    return response


class SenderChoiceForm(FlaskForm):
    sender_id = SelectField("Sends from", coerce=int)


def sender_form(campaign: Campaign) -> SenderChoiceForm:
    """The campaign's sender choice: one of the organization's senders, or the instance's
    default sender (0) for an organization without a Twilio account of its own."""
    form = SenderChoiceForm(sender_id=campaign.sender_id or 0)
    senders = db.session.scalars(
        select(Sender).where(Sender.organization_id == campaign.organization_id).order_by(Sender.id)
    )
    default = [] if sending.own_account(campaign.organization_id) else [(0, "The default sender")]
    form.sender_id.choices = default + [
        (sender.id, f"{sender.address} {sender.label}".strip()) for sender in senders
    ]
    return form


@bp.post("/<int:campaign_id>/sender")
@organizer_required
def save_sender(campaign_id: int) -> ResponseReturnValue:
    """Choose the sender for the campaign's texts queued from now on."""
    campaign = get_owned(Campaign, campaign_id)
    form = sender_form(campaign)
    if form.validate_on_submit():
        campaign.sender_id = form.sender_id.data or None
        audit.record(
            campaign.organization_id,
            "campaign_sender_changed",
            f"campaign {campaign.id}",
            current_user.id,
            sender_id=campaign.sender_id,
        )
        db.session.commit()
        flash("Sender saved: texts queued from now on go out from it.", "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


def script_report(campaign: Campaign) -> segments.ScriptReport:
    """The script rendered for a sample of the contacts not yet texted, counted and priced.

    The organizer viewing the page stands in for the volunteer in {texter_name}.
    """
    return segments.report(
        campaign.script,
        sample_contacts(campaign),
        current_user,
        smart_encoding=campaign.smart_encoding,
        recipients=untexted_count(campaign),
        price_per_segment=price_per_segment(),
    )


def price_per_segment() -> Decimal:
    """The deployment's PRICE_PER_SEGMENT, else Twilio's US list price."""
    return Decimal(str(current_app.config.get("PRICE_PER_SEGMENT", segments.US_PRICE_PER_SEGMENT)))


def sample_contacts(campaign: Campaign) -> list[Contact]:
    """Up to SAMPLE_SIZE contacts not yet texted, in list order."""
    return list(
        db.session.scalars(
            select(Contact)
            .where(Contact.campaign_id == campaign.id, Contact.status == ContactStatus.NEW)
            .order_by(Contact.id)
            .limit(SAMPLE_SIZE)
        )
    )


def untexted_count(campaign: Campaign) -> int:
    """Contacts still to get the initial text: not texted, not opted out, not blocked."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Contact)
            .where(
                Contact.campaign_id == campaign.id,
                Contact.status == ContactStatus.NEW,
                optouts.may_be_texted(campaign.organization_id, Contact.cell),
            )
        )
        or 0
    )


def recent_imports(campaign: Campaign) -> list[ContactImport]:
    """The campaign's latest list uploads, newest first."""
    return list(
        db.session.scalars(
            select(ContactImport)
            .where(ContactImport.campaign_id == campaign.id)
            .order_by(ContactImport.created_at.desc(), ContactImport.id.desc())
            .limit(RECENT_IMPORTS)
        )
    )


def filtered_count(campaign: Campaign) -> int:
    """Messages carriers filtered as spam (30007): the organizer must review the script."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.campaign_id == campaign.id, Message.error_code == FILTERED_BY_CARRIER)
        )
        or 0
    )


def campaign_counts(campaign: Campaign) -> dict[str, int]:
    """Contacts, texted, and messages by direction for the campaign page.

    Message counts come from the triggers' tally: every message not received is outbound.
    """
    contacts, texted = dashboard.contact_counts(db.session, campaign)
    by_status = dashboard.tally(db.session, campaign)
    replies = by_status.get(MessageStatus.RECEIVED.value, 0)
    return {
        "contacts": contacts,
        "texted": texted,
        "sent": sum(by_status.values()) - replies,
        "replies": replies,
    }


@bp.post("/<int:campaign_id>/script")
@organizer_required
def save_script(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = ScriptForm()
    if not form.validate_on_submit():
        flash("The script cannot be empty or longer than 1,600 characters.", "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    script = form.script.data or ""
    unknown = texts.unknown_merge_fields(script, campaign.custom_field_names)
    if unknown:
        names = ", ".join("{" + name + "}" for name in unknown)
        flash(f"The script uses merge fields this list does not have: {names}", "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    campaign.script = script
    audit_script(campaign)
    db.session.commit()
    flash("Script saved.", "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


def audit_script(campaign: Campaign) -> None:
    audit.record(
        campaign.organization_id,
        "script_changed",
        f"campaign {campaign.id}",
        current_user.id,
        script=campaign.script,
    )


@bp.post("/<int:campaign_id>/script/opt-out-language")
@organizer_required
def append_opt_out_language(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    if AppendOptOutForm().validate_on_submit():
        campaign.script = lint.with_opt_out_language(campaign.script)
        audit_script(campaign)
        db.session.commit()
        flash("Added opt-out language to the script.", "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


@bp.post("/<int:campaign_id>/status")
@organizer_required
def change_status(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = StatusForm()
    if form.validate_on_submit():
        new_status = CampaignStatus(form.status.data)
        if campaign.deleted_at is not None:
            flash("This campaign is deleted: restore it first.", "error")
        elif new_status == CampaignStatus.ACTIVE and not campaign.script.strip():
            flash("Write a script before launching.", "error")
        elif new_status == CampaignStatus.ACTIVE and (
            refusal := sending.launch_refusal(
                campaign.organization_id, campaign.sender.address if campaign.sender else ""
            )
        ):
            flash(refusal, "error")
        else:
            campaign.status = new_status
            audit.record(
                campaign.organization_id,
                "campaign_status_changed",
                f"campaign {campaign.id}",
                current_user.id,
                status=new_status.value,
            )
            db.session.commit()
            flash(f"Campaign is now {new_status.value}.", "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


@bp.post("/<int:campaign_id>/smart-encoding")
@organizer_required
def save_smart_encoding(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = SmartEncodingForm()
    if form.validate_on_submit():
        campaign.smart_encoding = bool(form.smart_encoding.data)
        audit.record(
            campaign.organization_id,
            "smart_encoding_changed",
            f"campaign {campaign.id}",
            current_user.id,
            smart_encoding=campaign.smart_encoding,
        )
        db.session.commit()
        flash(f"Smart Encoding is {'on' if campaign.smart_encoding else 'off'}.", "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


@bp.post("/<int:campaign_id>/batches")
@organizer_required
def save_batch_settings(campaign_id: int) -> ResponseReturnValue:
    """How volunteers take contacts: batch size, batches while replies wait, idle release."""
    campaign = get_owned(Campaign, campaign_id)
    form = BatchSettingsForm()
    if form.validate_on_submit():
        campaign.batch_size = form.batch_size.data or campaign.batch_size
        campaign.batch_while_replies_wait = bool(form.batch_while_replies_wait.data)
        campaign.release_after_minutes = form.release_after_minutes.data or 60
        db.session.commit()
        flash("Batch settings saved.", "success")
    else:
        flash("Batches hold 1 to 1,000 contacts; idle release is 5 to 1,440 minutes.", "error")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


@bp.post("/<int:campaign_id>/time-zones")
@organizer_required
def save_time_zones(campaign_id: int) -> ResponseReturnValue:
    """Whether quiet hours follow the ZIP's time zone alone, or also the area code's (audited)."""
    campaign = get_owned(Campaign, campaign_id)
    form = TimeZoneForm()
    if form.validate_on_submit():
        campaign.trust_zip_alone = bool(form.trust_zip_alone.data)
        audit.record(
            campaign.organization_id,
            "time_zone_rule_changed",
            f"campaign {campaign.id}",
            current_user.id,
            trust_zip_alone=campaign.trust_zip_alone,
        )
        db.session.commit()
        if campaign.trust_zip_alone:
            flash("Texts now follow each voter's ZIP code alone for the time zone.", "success")
        else:
            flash(
                "Texts wait until it is allowed in both the ZIP's and the phone's zone.", "success"
            )
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))
